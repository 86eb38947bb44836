
/*
 * JSON replies: every reply carries X-Request-Id, and every error uses the
 * envelope {"error": {"code", "message", "details"?}, "requestId"}.
 */


#include "ngx_http_notifyhub_module.h"
#include "nh_validate.h"


static ngx_str_t  ngx_http_notifyhub_json_type =
    ngx_string("application/json");


/* Takes the caller's X-Request-Id when it is sane, else makes a UUIDv7. */
void
ngx_http_notifyhub_request_id(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx)
{
    u_char            uuid[NH_UUID_LEN];
    ngx_table_elt_t  *h;

    h = ngx_http_notifyhub_find_header(r, "x-request-id",
                                       sizeof("x-request-id") - 1);

    if (h && nh_request_id_is_valid((const char *) h->value.data,
                                    h->value.len))
    {
        ngx_memcpy(ctx->request_id_data, h->value.data, h->value.len);
        ctx->request_id.len = h->value.len;

    } else {
        if (nh_uuid7_generate(uuid) != 0) {
            ngx_memzero(uuid, sizeof(uuid));
        }

        nh_uuid_format(uuid, (char *) ctx->request_id_data);
        ctx->request_id.len = NH_UUID_STR_LEN;
    }

    ctx->request_id.data = ctx->request_id_data;
}


/* Finds a request header by its lower-case name. */
ngx_table_elt_t *
ngx_http_notifyhub_find_header(ngx_http_request_t *r,
    const char *lowcase_name, size_t len)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NULL;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == len
            && ngx_strncmp(h[i].lowcase_key, lowcase_name, len) == 0)
        {
            return &h[i];
        }
    }
}


ngx_int_t
ngx_http_notifyhub_add_header(ngx_http_request_t *r, const char *name,
    const char *value)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    h->key.data = (u_char *) name;
    h->key.len = ngx_strlen(name);
    h->value.len = ngx_strlen(value);
    h->value.data = ngx_pnalloc(r->pool, h->value.len);
    if (h->value.data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(h->value.data, value, h->value.len);

    return NGX_OK;
}


/* Sends status and a JSON body; the body is copied. */
ngx_int_t
ngx_http_notifyhub_send_json(ngx_http_request_t *r, ngx_uint_t status,
    const u_char *body, size_t len)
{
    ngx_int_t                  rc;
    ngx_buf_t                 *b;
    ngx_chain_t                out;
    ngx_table_elt_t           *h;
    ngx_http_notifyhub_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_notifyhub_module);

    r->headers_out.status = status;

    /* nginx 1.22 has no reason phrase for 422 and words 405 its own way. */
    if (status == NGX_HTTP_NOTIFYHUB_UNPROCESSABLE) {
        ngx_str_set(&r->headers_out.status_line, "422 Unprocessable Entity");

    } else if (status == NGX_HTTP_NOT_ALLOWED) {
        ngx_str_set(&r->headers_out.status_line, "405 Method Not Allowed");
    }

    if (ctx && ctx->request_id.len) {
        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_ERROR;
        }

        h->hash = 1;
        ngx_str_set(&h->key, "X-Request-Id");
        h->value = ctx->request_id;
    }

    if (status == NGX_HTTP_NO_CONTENT) {
        r->header_only = 1;
        ngx_http_clear_content_length(r);
        return ngx_http_send_header(r);
    }

    r->headers_out.content_type = ngx_http_notifyhub_json_type;
    r->headers_out.content_type_len = ngx_http_notifyhub_json_type.len;
    r->headers_out.content_length_n = len + 1;

    if (r->method == NGX_HTTP_HEAD) {
        r->header_only = 1;
        return ngx_http_send_header(r);
    }

    b = ngx_create_temp_buf(r->pool, len + 1);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->last = ngx_cpymem(b->last, body, len);
    *b->last++ = '\n';
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    return ngx_http_output_filter(r, &out);
}


ngx_int_t
ngx_http_notifyhub_send_cjson(ngx_http_request_t *r, ngx_uint_t status,
    cJSON *json)
{
    char       *text;
    ngx_int_t   rc;

    text = cJSON_PrintUnformatted(json);
    if (text == NULL) {
        return NGX_ERROR;
    }

    rc = ngx_http_notifyhub_send_json(r, status, (u_char *) text,
                                      ngx_strlen(text));
    cJSON_free(text);

    return rc;
}


/*
 * Sends an error whose inner object ({"code", "message", ...}) is already
 * JSON text, as the SQL functions return it.
 */
ngx_int_t
ngx_http_notifyhub_send_error_object(ngx_http_request_t *r,
    ngx_uint_t status, const u_char *error, size_t len)
{
    u_char                    *body, *p;
    size_t                     size;
    ngx_http_notifyhub_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_notifyhub_module);

    if (status == NGX_HTTP_SERVICE_UNAVAILABLE
        || status == NGX_HTTP_TOO_MANY_REQUESTS)
    {
        if (ngx_http_notifyhub_add_header(r, "Retry-After", "1") != NGX_OK) {
            return NGX_ERROR;
        }
    }

    size = sizeof("{\"error\":,\"requestId\":\"\"}") + len
           + (ctx ? ctx->request_id.len : 0);

    body = ngx_pnalloc(r->pool, size);
    if (body == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(body, "{\"error\":", sizeof("{\"error\":") - 1);
    p = ngx_cpymem(p, error, len);
    p = ngx_cpymem(p, ",\"requestId\":\"", sizeof(",\"requestId\":\"") - 1);

    if (ctx) {
        /* The request id has only [A-Za-z0-9._:-], so it needs no escaping. */
        p = ngx_cpymem(p, ctx->request_id.data, ctx->request_id.len);
    }

    p = ngx_cpymem(p, "\"}", 2);

    return ngx_http_notifyhub_send_json(r, status, body, p - body);
}


ngx_int_t
ngx_http_notifyhub_send_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *code, const char *message)
{
    char       *text;
    cJSON      *error;
    ngx_int_t   rc;

    error = cJSON_CreateObject();
    if (error == NULL
        || cJSON_AddStringToObject(error, "code", code) == NULL
        || cJSON_AddStringToObject(error, "message", message) == NULL)
    {
        cJSON_Delete(error);
        return NGX_ERROR;
    }

    text = cJSON_PrintUnformatted(error);
    cJSON_Delete(error);

    if (text == NULL) {
        return NGX_ERROR;
    }

    rc = ngx_http_notifyhub_send_error_object(r, status, (u_char *) text,
                                              ngx_strlen(text));
    cJSON_free(text);

    return rc;
}


/*
 * Sends 400 invalid_request with the validation failures gathered in
 * ctx->details; the message names the first one.
 */
ngx_int_t
ngx_http_notifyhub_send_invalid(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx)
{
    int     n;
    char    message[256];
    cJSON  *first, *field, *issue;

    n = cJSON_GetArraySize(ctx->details);
    first = cJSON_GetArrayItem(ctx->details, 0);
    field = cJSON_GetObjectItemCaseSensitive(first, "field");
    issue = cJSON_GetObjectItemCaseSensitive(first, "issue");

    if (cJSON_IsString(field) && cJSON_IsString(issue)) {
        snprintf(message, sizeof(message), "invalid field %s: %s%s",
                 field->valuestring, issue->valuestring,
                 n > 1 ? " (see details for the other fields)" : "");

    } else {
        snprintf(message, sizeof(message), "invalid request");
    }

    return ngx_http_notifyhub_send_error_details(r, NGX_HTTP_BAD_REQUEST,
                                                 "invalid_request", message,
                                                 ctx);
}


/* Sends an error whose "details" are the entries gathered in ctx. */
ngx_int_t
ngx_http_notifyhub_send_error_details(ngx_http_request_t *r,
    ngx_uint_t status, const char *code, const char *message,
    ngx_http_notifyhub_ctx_t *ctx)
{
    char       *text;
    cJSON      *error;
    ngx_int_t   rc;

    error = cJSON_CreateObject();
    if (error == NULL
        || cJSON_AddStringToObject(error, "code", code) == NULL
        || cJSON_AddStringToObject(error, "message", message) == NULL)
    {
        cJSON_Delete(error);
        return NGX_ERROR;
    }

    if (ctx->details) {
        cJSON_AddItemToObject(error, "details", ctx->details);
        ctx->details = NULL;
    }

    text = cJSON_PrintUnformatted(error);
    cJSON_Delete(error);

    if (text == NULL) {
        return NGX_ERROR;
    }

    rc = ngx_http_notifyhub_send_error_object(r, status, (u_char *) text,
                                              ngx_strlen(text));
    cJSON_free(text);

    return rc;
}


/* Finalizes a request after an asynchronous handler sent its reply. */
void
ngx_http_notifyhub_finish(ngx_http_request_t *r, ngx_int_t rc)
{
    if (rc == NGX_ERROR) {
        ngx_http_finalize_request(r, NGX_ERROR);
        return;
    }

    ngx_http_finalize_request(r, rc == NGX_AGAIN ? NGX_AGAIN : NGX_OK);
}


/*
 * Maps a status that nginx produced itself (error_page) to the error code
 * and message of the API.
 */
ngx_uint_t
ngx_http_notifyhub_error_status(ngx_http_request_t *r, const char **code,
    const char **message)
{
    ngx_uint_t  status;

    status = r->err_status ? r->err_status : r->headers_out.status;

    switch (status) {

    case NGX_HTTP_NOT_FOUND:
        *code = "not_found";
        *message = "no such route";
        break;

    case NGX_HTTP_NOT_ALLOWED:
        *code = "method_not_allowed";
        *message = "method not allowed on this route";
        break;

    case NGX_HTTP_REQUEST_TIME_OUT:
        *code = "request_timeout";
        *message = "the request was not received in time";
        break;

    case NGX_HTTP_LENGTH_REQUIRED:
        *code = "length_required";
        *message = "a request body needs Content-Length or chunked encoding";
        break;

    case NGX_HTTP_REQUEST_ENTITY_TOO_LARGE:
        *code = "payload_too_large";
        *message = "the request body is larger than the limit";
        break;

    case NGX_HTTP_REQUEST_URI_TOO_LARGE:
        *code = "uri_too_long";
        *message = "the request URI is too long";
        break;

    case NGX_HTTP_REQUEST_HEADER_TOO_LARGE:
        status = NGX_HTTP_BAD_REQUEST;
        *code = "invalid_request";
        *message = "a request header is too large";
        break;

    case NGX_HTTP_BAD_REQUEST:
        *code = "invalid_request";
        *message = "the HTTP request is malformed";
        break;

    case NGX_HTTP_BAD_GATEWAY:
    case NGX_HTTP_SERVICE_UNAVAILABLE:
    case NGX_HTTP_GATEWAY_TIME_OUT:
        status = NGX_HTTP_SERVICE_UNAVAILABLE;
        *code = "unavailable";
        *message = "the service is unavailable; retry later";
        break;

    default:
        if (status < NGX_HTTP_BAD_REQUEST) {
            status = NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        *code = status >= NGX_HTTP_INTERNAL_SERVER_ERROR ? "internal_error"
                                                        : "invalid_request";
        *message = status >= NGX_HTTP_INTERNAL_SERVER_ERROR
                   ? "internal error; the request id is in the log"
                   : "the request was rejected";
        break;
    }

    return status;
}
