
/*
 * Field validation that gathers every failure into ctx->details, and the
 * helpers that turn SQL function results into replies.
 */


#include "ngx_http_notifyhub_module.h"
#include "nh_validate.h"


/* Records one failed field: {"field": path, "issue": issue}. */
void
ngx_http_notifyhub_invalid(ngx_http_notifyhub_ctx_t *ctx, const char *field,
    const char *issue)
{
    cJSON  *item;

    if (ctx->details == NULL) {
        ctx->details = cJSON_CreateArray();
        if (ctx->details == NULL) {
            return;
        }
    }

    item = cJSON_CreateObject();
    if (item == NULL) {
        return;
    }

    cJSON_AddStringToObject(item, "field", field);
    cJSON_AddStringToObject(item, "issue", issue);
    cJSON_AddItemToArray(ctx->details, item);
}


/*
 * Reads a string field of len characters within [min_len, max_len],
 * counted in UTF-8 code points. Returns it, or NULL when it is absent
 * (recorded as "required" if required) or invalid (recorded).
 */
const char *
ngx_http_notifyhub_string_field(ngx_http_notifyhub_ctx_t *ctx, cJSON *object,
    const char *name, const char *path, ngx_uint_t required, size_t min_len,
    size_t max_len)
{
    size_t       chars;
    cJSON       *item;
    const char  *s, *p;

    item = cJSON_GetObjectItemCaseSensitive(object, name);

    if (item == NULL || cJSON_IsNull(item)) {
        if (required) {
            ngx_http_notifyhub_invalid(ctx, path, "required");
        }
        return NULL;
    }

    if (!cJSON_IsString(item)) {
        ngx_http_notifyhub_invalid(ctx, path, "invalid_type");
        return NULL;
    }

    s = item->valuestring;

    chars = 0;
    for (p = s; *p; p++) {
        if (((u_char) *p & 0xc0) != 0x80) {
            chars++;
        }
    }

    if (chars < min_len) {
        ngx_http_notifyhub_invalid(ctx, path, min_len == 1 ? "required"
                                                           : "too_short");
        return NULL;
    }

    if (chars > max_len) {
        ngx_http_notifyhub_invalid(ctx, path, "too_long");
        return NULL;
    }

    return s;
}


/* Reads an object field; NULL when absent or of another type (recorded). */
cJSON *
ngx_http_notifyhub_object_field(ngx_http_notifyhub_ctx_t *ctx, cJSON *object,
    const char *name, const char *path, ngx_uint_t required)
{
    cJSON  *item;

    item = cJSON_GetObjectItemCaseSensitive(object, name);

    if (item == NULL || cJSON_IsNull(item)) {
        if (required) {
            ngx_http_notifyhub_invalid(ctx, path, "required");
        }
        return NULL;
    }

    if (!cJSON_IsObject(item)) {
        ngx_http_notifyhub_invalid(ctx, path, "invalid_type");
        return NULL;
    }

    return item;
}


/*
 * Reads an enumerated string in any case. Returns its index in values,
 * dflt when absent (dflt -1 makes it required), or -2 when invalid.
 */
ngx_int_t
ngx_http_notifyhub_enum_field(ngx_http_notifyhub_ctx_t *ctx, cJSON *object,
    const char *name, const char *path, const char *const *values,
    ngx_int_t dflt)
{
    size_t      len;
    cJSON      *item;
    ngx_int_t   i;

    item = cJSON_GetObjectItemCaseSensitive(object, name);

    if (item == NULL || cJSON_IsNull(item)) {
        if (dflt < 0) {
            ngx_http_notifyhub_invalid(ctx, path, "required");
            return -2;
        }
        return dflt;
    }

    if (!cJSON_IsString(item)) {
        ngx_http_notifyhub_invalid(ctx, path, "invalid_type");
        return -2;
    }

    len = ngx_strlen(item->valuestring);

    for (i = 0; values[i]; i++) {
        if (len == ngx_strlen(values[i])
            && ngx_strncasecmp((u_char *) item->valuestring,
                               (u_char *) values[i], len) == 0)
        {
            return i;
        }
    }

    ngx_http_notifyhub_invalid(ctx, path, "invalid_value");
    return -2;
}


/* Returns the token of "Authorization: Bearer <token>", or NULL. */
u_char *
ngx_http_notifyhub_bearer(ngx_http_request_t *r, size_t *len)
{
    u_char           *p, *last;
    ngx_table_elt_t  *h;

    h = r->headers_in.authorization;
    if (h == NULL || h->value.len <= sizeof("Bearer ") - 1) {
        return NULL;
    }

    if (ngx_strncasecmp(h->value.data, (u_char *) "Bearer ",
                        sizeof("Bearer ") - 1) != 0)
    {
        return NULL;
    }

    p = h->value.data + sizeof("Bearer ") - 1;
    last = h->value.data + h->value.len;

    while (p < last && *p == ' ') {
        p++;
    }

    if (p == last) {
        return NULL;
    }

    *len = last - p;
    return p;
}


/*
 * Checks a query's result: NULL (no connection, timeout, full queue)
 * becomes 503 and a failed statement 500, both logged, and the request is
 * finalized. Returns NGX_OK when res contains rows, any number of them,
 * else NGX_DONE.
 */
ngx_int_t
ngx_http_notifyhub_pg_rows(ngx_http_request_t *r, PGresult *res,
    const char *what)
{
    ngx_int_t                  rc;
    ngx_http_notifyhub_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_notifyhub_module);

    if (res == NULL) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "notifyhub: %s: database unavailable, request %V",
                      what, &ctx->request_id);
        rc = ngx_http_notifyhub_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                         "unavailable",
                         "the database is unavailable; retry later");
        ngx_http_notifyhub_finish(r, rc);
        return NGX_DONE;
    }

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "notifyhub: %s failed, request %V: %s",
                      what, &ctx->request_id, PQresultErrorMessage(res));
        rc = ngx_http_notifyhub_send_error(r,
                         NGX_HTTP_INTERNAL_SERVER_ERROR, "internal_error",
                         "internal error; the request id is in the log");
        ngx_http_notifyhub_finish(r, rc);
        return NGX_DONE;
    }

    return NGX_OK;
}


/*
 * Checks a result from an nh_* SQL function as ngx_http_notifyhub_pg_rows
 * does. Returns NGX_OK when res has one row of at least ncols columns,
 * else NGX_DONE.
 */
ngx_int_t
ngx_http_notifyhub_pg_status(ngx_http_request_t *r, PGresult *res, int ncols,
    const char *what)
{
    ngx_int_t                  rc;
    ngx_http_notifyhub_ctx_t  *ctx;

    if (ngx_http_notifyhub_pg_rows(r, res, what) != NGX_OK) {
        return NGX_DONE;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_notifyhub_module);

    if (PQntuples(res) != 1 || PQnfields(res) < ncols) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "notifyhub: %s returned %d rows of %d columns, "
                      "request %V", what, PQntuples(res), PQnfields(res),
                      &ctx->request_id);
        rc = ngx_http_notifyhub_send_error(r,
                         NGX_HTTP_INTERNAL_SERVER_ERROR, "internal_error",
                         "internal error; the request id is in the log");
        ngx_http_notifyhub_finish(r, rc);
        return NGX_DONE;
    }

    return NGX_OK;
}


/*
 * Sends the (status, body) row of an nh_* SQL function: a success body as
 * it is, an error body inside the envelope.
 */
ngx_int_t
ngx_http_notifyhub_reply_result(ngx_http_request_t *r, PGresult *res)
{
    ngx_uint_t  status;

    status = ngx_atoi((u_char *) PQgetvalue(res, 0, 0),
                      PQgetlength(res, 0, 0));

    if (status >= NGX_HTTP_BAD_REQUEST) {
        return ngx_http_notifyhub_send_error_object(r, status,
                         (u_char *) PQgetvalue(res, 0, 1),
                         PQgetlength(res, 0, 1));
    }

    return ngx_http_notifyhub_send_json(r, status,
                                        (u_char *) PQgetvalue(res, 0, 1),
                                        PQgetlength(res, 0, 1));
}


/*
 * Replies to a request whose query or thread task could not be started.
 * NGX_BUSY (a full queue) and NGX_DECLINED (no database connection) become
 * 503 with Retry-After, anything else 500.
 */
void
ngx_http_notifyhub_start_failed(ngx_http_request_t *r, ngx_int_t rc)
{
    ngx_http_notifyhub_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_notifyhub_module);

    if (rc == NGX_BUSY) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "notifyhub: a bounded queue is full, request %V",
                      &ctx->request_id);
        rc = ngx_http_notifyhub_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                         "unavailable", "the server is busy; retry later");
        ngx_http_notifyhub_finish(r, rc);
        return;
    }

    if (rc == NGX_DECLINED) {
        (void) ngx_http_notifyhub_pg_status(r, NULL, 0, "starting a query");
        return;
    }

    ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
}
