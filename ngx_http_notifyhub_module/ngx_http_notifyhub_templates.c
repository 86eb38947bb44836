
/*
 * Templates: versioned subject, body and html with {{path}} variables,
 * rendered by common/nh_template.c. The module parses every text before it
 * is stored, so a stored template is always well formed, and it stores the
 * variable paths beside the texts.
 */


#include "ngx_http_notifyhub_module.h"
#include "nh_template.h"


#define NGX_HTTP_NOTIFYHUB_TEMPLATE_NAME_MAX   200
/* RFC 5322 limits a header line to 998 characters. */
#define NGX_HTTP_NOTIFYHUB_TEMPLATE_SUBJECT_MAX  998
/* A push title, as in a notification with inline content. */
#define NGX_HTTP_NOTIFYHUB_TEMPLATE_TITLE_MAX  256
/* The body and the html of a template, in bytes each. */
#define NGX_HTTP_NOTIFYHUB_TEMPLATE_TEXT_MAX   (64 * 1024)


/* The checked fields of a create or update request. */
typedef struct {
    ngx_int_t     channel;
    const char   *name;
    const char   *subject;
    const char   *body;
    const char   *html;
    cJSON        *variables;    /* distinct paths, in order of first use */
} ngx_http_notifyhub_template_input_t;


static void ngx_http_notifyhub_template_insert(ngx_http_request_t *r,
    ngx_http_notifyhub_key_t *key);
static void ngx_http_notifyhub_template_replace(ngx_http_request_t *r,
    ngx_http_notifyhub_key_t *key);
static void ngx_http_notifyhub_template_store(ngx_http_request_t *r,
    ngx_http_notifyhub_key_t *key, ngx_uint_t update);
static void ngx_http_notifyhub_template_validate(
    ngx_http_notifyhub_ctx_t *ctx, ngx_http_notifyhub_template_input_t *in);
static const char *ngx_http_notifyhub_template_text(
    ngx_http_notifyhub_ctx_t *ctx, const char *name, ngx_uint_t required,
    size_t max_len, cJSON *variables);
static char *ngx_http_notifyhub_text_array(ngx_http_request_t *r,
    cJSON *strings);
static void ngx_http_notifyhub_template_select(ngx_http_request_t *r,
    ngx_http_notifyhub_key_t *key);
static void ngx_http_notifyhub_template_listed(ngx_http_request_t *r,
    PGresult *res, void *data);
static void ngx_http_notifyhub_template_fetch(ngx_http_request_t *r,
    ngx_http_notifyhub_key_t *key);
static void ngx_http_notifyhub_template_remove(ngx_http_request_t *r,
    ngx_http_notifyhub_key_t *key);
static void ngx_http_notifyhub_template_preview(ngx_http_request_t *r,
    ngx_http_notifyhub_key_t *key);
static void ngx_http_notifyhub_template_previewed(ngx_http_request_t *r,
    PGresult *res, void *data);
static ngx_int_t ngx_http_notifyhub_template_query(ngx_http_request_t *r,
    ngx_http_notifyhub_key_t *key, const char *sql,
    ngx_http_notifyhub_pg_handler_pt handler, void *data);
static ngx_int_t ngx_http_notifyhub_missing_details(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx, cJSON *missing, const char **message);


static const char  *ngx_http_notifyhub_template_channels[] = {
    "EMAIL", "SMS", "PUSH", NULL
};

/* The texts of a template, in the order their variables are listed. */
static const char  *ngx_http_notifyhub_template_parts[] = {
    "subject", "body", "html"
};


void
ngx_http_notifyhub_template_create(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx)
{
    ngx_http_notifyhub_authenticate(r,
                                    NGX_HTTP_NOTIFYHUB_SCOPE_TEMPLATES_WRITE,
                                    ngx_http_notifyhub_template_insert);
}


void
ngx_http_notifyhub_template_update(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx)
{
    ngx_http_notifyhub_authenticate(r,
                                    NGX_HTTP_NOTIFYHUB_SCOPE_TEMPLATES_WRITE,
                                    ngx_http_notifyhub_template_replace);
}


static void
ngx_http_notifyhub_template_insert(ngx_http_request_t *r,
    ngx_http_notifyhub_key_t *key)
{
    ngx_http_notifyhub_template_store(r, key, 0);
}


static void
ngx_http_notifyhub_template_replace(ngx_http_request_t *r,
    ngx_http_notifyhub_key_t *key)
{
    ngx_http_notifyhub_template_store(r, key, 1);
}


/*
 * Checks a create or update request and stores it: a new template, or the
 * next version of the template in the path.
 */
static void
ngx_http_notifyhub_template_store(ngx_http_request_t *r,
    ngx_http_notifyhub_key_t *key, ngx_uint_t update)
{
    char                                 id[NH_UUID_STR_LEN + 1];
    char                                 tenant_id[NH_UUID_STR_LEN + 1];
    char                                *variables;
    u_char                               uuid[NH_UUID_LEN];
    ngx_int_t                            rc;
    const char                          *values[8];
    ngx_http_notifyhub_ctx_t            *ctx;
    ngx_http_notifyhub_template_input_t  in;

    ctx = ngx_http_get_module_ctx(r, ngx_http_notifyhub_module);

    if (update) {
        if (ngx_http_notifyhub_path_uuid(r, ctx, 0, id, "template not found")
            != NGX_OK)
        {
            return;
        }

    } else {
        if (nh_uuid7_generate(uuid) != 0) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        nh_uuid_format(uuid, id);
    }

    ngx_http_notifyhub_template_validate(ctx, &in);

    if (in.variables == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (ctx->details) {
        cJSON_Delete(in.variables);
        ngx_http_finalize_request(r, ngx_http_notifyhub_send_invalid(r, ctx));
        return;
    }

    variables = ngx_http_notifyhub_text_array(r, in.variables);
    cJSON_Delete(in.variables);

    if (variables == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    nh_uuid_format(key->tenant_id, tenant_id);

    values[0] = tenant_id;
    values[1] = id;
    values[2] = in.name;
    values[3] = ngx_http_notifyhub_template_channels[in.channel];
    values[4] = in.subject;
    values[5] = in.body;
    values[6] = in.html;
    values[7] = variables;

    if (update) {
        rc = ngx_http_notifyhub_pg_query(r,
                 "SELECT status, body "
                 "FROM nh_template_update($1, $2, $3, $4, $5, $6, $7, $8)",
                 8, values, NULL, NULL,
                 ngx_http_notifyhub_reply_done,
                 (void *) "nh_template_update");

    } else {
        rc = ngx_http_notifyhub_pg_query(r,
                 "SELECT status, body "
                 "FROM nh_template_create($1, $2, $3, $4, $5, $6, $7, $8)",
                 8, values, NULL, NULL,
                 ngx_http_notifyhub_reply_done,
                 (void *) "nh_template_create");
    }

    if (rc != NGX_OK) {
        ngx_http_notifyhub_start_failed(r, rc);
    }
}


/*
 * Reads name, channel, subject, body and html into in, and parses the
 * texts. An email needs a subject and may have html. A push may have a
 * subject (its title) but no html. An SMS has a body only.
 * in->variables is NULL only when memory runs out.
 */
static void
ngx_http_notifyhub_template_validate(ngx_http_notifyhub_ctx_t *ctx,
    ngx_http_notifyhub_template_input_t *in)
{
    cJSON  *json;

    json = ctx->json;

    ngx_memzero(in, sizeof(ngx_http_notifyhub_template_input_t));

    in->variables = cJSON_CreateArray();
    if (in->variables == NULL) {
        return;
    }

    in->name = ngx_http_notifyhub_string_field(ctx, json, "name", "name", 1,
                                    1, NGX_HTTP_NOTIFYHUB_TEMPLATE_NAME_MAX);
    in->channel = ngx_http_notifyhub_enum_field(ctx, json, "channel",
                                    "channel",
                                    ngx_http_notifyhub_template_channels, -1);

    switch (in->channel) {

    case NGX_HTTP_NOTIFYHUB_EMAIL:
        in->subject = ngx_http_notifyhub_template_text(ctx, "subject", 1,
                                    NGX_HTTP_NOTIFYHUB_TEMPLATE_SUBJECT_MAX,
                                    in->variables);
        break;

    case NGX_HTTP_NOTIFYHUB_PUSH:
        in->subject = ngx_http_notifyhub_template_text(ctx, "subject", 0,
                                    NGX_HTTP_NOTIFYHUB_TEMPLATE_TITLE_MAX,
                                    in->variables);
        break;

    case NGX_HTTP_NOTIFYHUB_SMS:
        if (cJSON_GetObjectItemCaseSensitive(json, "subject")) {
            ngx_http_notifyhub_invalid(ctx, "subject", "not_allowed");
        }
        break;

    default:
        /* Without a valid channel the subject is only checked as text. */
        (void) ngx_http_notifyhub_template_text(ctx, "subject", 0,
                                    NGX_HTTP_NOTIFYHUB_TEMPLATE_SUBJECT_MAX,
                                    in->variables);
        break;
    }

    in->body = ngx_http_notifyhub_template_text(ctx, "body", 1,
                                    NGX_HTTP_NOTIFYHUB_TEMPLATE_TEXT_MAX,
                                    in->variables);

    if (in->channel == NGX_HTTP_NOTIFYHUB_SMS
        || in->channel == NGX_HTTP_NOTIFYHUB_PUSH)
    {
        if (cJSON_GetObjectItemCaseSensitive(json, "html")) {
            ngx_http_notifyhub_invalid(ctx, "html", "not_allowed");
        }

    } else {
        in->html = ngx_http_notifyhub_template_text(ctx, "html", 0,
                                    NGX_HTTP_NOTIFYHUB_TEMPLATE_TEXT_MAX,
                                    in->variables);
    }
}


/*
 * Reads a template text of at most max_len characters and max_len bytes,
 * parses it and appends its new variable paths to variables. A malformed
 * text is recorded as "invalid_template" with the position and reason.
 */
static const char *
ngx_http_notifyhub_template_text(ngx_http_notifyhub_ctx_t *ctx,
    const char *name, ngx_uint_t required, size_t max_len, cJSON *variables)
{
    int                   rc;
    cJSON                *detail, *position, *path;
    size_t                i, n, len;
    const char           *text;
    nh_template_t        *tpl;
    nh_template_error_t   err;

    text = ngx_http_notifyhub_string_field(ctx, ctx->json, name, name,
                                           required, required ? 1 : 0,
                                           max_len);
    if (text == NULL) {
        return NULL;
    }

    len = ngx_strlen(text);

    if (len > max_len) {
        ngx_http_notifyhub_invalid(ctx, name, "too_long");
        return NULL;
    }

    rc = nh_template_parse(text, len, &tpl, &err);

    if (rc == -1) {
        ngx_http_notifyhub_invalid(ctx, name, "invalid_template");

        /* The entry just added gets the position and the reason. */
        detail = cJSON_GetArrayItem(ctx->details,
                                    cJSON_GetArraySize(ctx->details) - 1);
        position = cJSON_AddObjectToObject(detail, "position");

        if (position) {
            cJSON_AddNumberToObject(position, "offset", (double) err.offset);
            cJSON_AddNumberToObject(position, "line", (double) err.line);
            cJSON_AddNumberToObject(position, "column", (double) err.column);
        }

        cJSON_AddStringToObject(detail, "reason", err.reason);
        return NULL;
    }

    if (rc != 0) {
        ngx_http_notifyhub_invalid(ctx, name, "invalid_template");
        return NULL;
    }

    n = nh_template_variable_count(tpl);

    for (i = 0; i < n; i++) {
        text = nh_template_variable(tpl, i);

        cJSON_ArrayForEach(path, variables) {
            if (ngx_strcmp(path->valuestring, text) == 0) {
                break;
            }
        }

        if (path == NULL) {
            cJSON_AddItemToArray(variables, cJSON_CreateString(text));
        }
    }

    nh_template_free(tpl);

    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ctx->json,
                                                                 name));
}


/*
 * Writes strings as a PostgreSQL text[] literal. Variable paths contain
 * only letters, digits, "_", "-" and ".", but each element is quoted and
 * escaped all the same.
 */
static char *
ngx_http_notifyhub_text_array(ngx_http_request_t *r, cJSON *strings)
{
    u_char      *text, *p;
    size_t       len;
    cJSON       *item;
    const char  *s;

    len = sizeof("{}");

    cJSON_ArrayForEach(item, strings) {
        len += 2 * ngx_strlen(item->valuestring) + sizeof("\"\",") - 1;
    }

    text = ngx_pnalloc(r->pool, len);
    if (text == NULL) {
        return NULL;
    }

    p = text;
    *p++ = '{';

    cJSON_ArrayForEach(item, strings) {
        if (p != text + 1) {
            *p++ = ',';
        }

        *p++ = '"';

        for (s = item->valuestring; *s; s++) {
            if (*s == '"' || *s == '\\') {
                *p++ = '\\';
            }
            *p++ = *s;
        }

        *p++ = '"';
    }

    *p++ = '}';
    *p = '\0';

    return (char *) text;
}


void
ngx_http_notifyhub_template_list(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx)
{
    ngx_http_notifyhub_authenticate(r,
                                    NGX_HTTP_NOTIFYHUB_SCOPE_TEMPLATES_READ,
                                    ngx_http_notifyhub_template_select);
}


/* Lists the tenant's templates newest first, optionally of one channel. */
static void
ngx_http_notifyhub_template_select(ngx_http_request_t *r,
    ngx_http_notifyhub_key_t *key)
{
    char                        tenant_id[NH_UUID_STR_LEN + 1];
    char                        limit[NGX_INT_T_LEN + 1];
    char                        after_usec[NGX_INT64_LEN + 1];
    char                        after_id[NH_UUID_STR_LEN + 1];
    ngx_int_t                   rc, i;
    ngx_str_t                   value;
    const char                 *values[5];
    ngx_http_notifyhub_ctx_t   *ctx;
    ngx_http_notifyhub_page_t   page;

    ctx = ngx_http_get_module_ctx(r, ngx_http_notifyhub_module);

    if (ngx_http_notifyhub_page_args(r, ctx, "templates", &page) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    values[1] = NULL;

    if (ngx_http_arg(r, (u_char *) "channel", sizeof("channel") - 1, &value)
        == NGX_OK)
    {
        for (i = 0; ngx_http_notifyhub_template_channels[i]; i++) {
            if (value.len
                == ngx_strlen(ngx_http_notifyhub_template_channels[i])
                && ngx_strncasecmp(value.data, (u_char *)
                                   ngx_http_notifyhub_template_channels[i],
                                   value.len)
                   == 0)
            {
                values[1] = ngx_http_notifyhub_template_channels[i];
                break;
            }
        }

        if (values[1] == NULL) {
            ngx_http_notifyhub_invalid(ctx, "channel", "invalid_value");
        }
    }

    if (ctx->details) {
        ngx_http_finalize_request(r, ngx_http_notifyhub_send_invalid(r, ctx));
        return;
    }

    nh_uuid_format(key->tenant_id, tenant_id);
    ngx_sprintf((u_char *) limit, "%ui%Z", page.limit);

    values[0] = tenant_id;
    values[2] = limit;
    values[3] = NULL;
    values[4] = NULL;

    if (page.has_cursor) {
        ngx_sprintf((u_char *) after_usec, "%L%Z", page.after_usec);
        nh_uuid_format(page.after_id, after_id);
        values[3] = after_usec;
        values[4] = after_id;
    }

    rc = ngx_http_notifyhub_pg_query(r,
             "SELECT status, body, next_usec, next_id "
             "FROM nh_template_list($1, $2, $3, $4, $5)",
             5, values, NULL, NULL,
             ngx_http_notifyhub_template_listed, NULL);

    if (rc != NGX_OK) {
        ngx_http_notifyhub_start_failed(r, rc);
    }
}


static void
ngx_http_notifyhub_template_listed(ngx_http_request_t *r, PGresult *res,
    void *data)
{
    ngx_http_notifyhub_send_page(r, res, "templates", "nh_template_list");
}


void
ngx_http_notifyhub_template_get(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx)
{
    ngx_http_notifyhub_authenticate(r,
                                    NGX_HTTP_NOTIFYHUB_SCOPE_TEMPLATES_READ,
                                    ngx_http_notifyhub_template_fetch);
}


static void
ngx_http_notifyhub_template_fetch(ngx_http_request_t *r,
    ngx_http_notifyhub_key_t *key)
{
    ngx_int_t  rc;

    rc = ngx_http_notifyhub_template_query(r, key,
             "SELECT status, body FROM nh_template_get($1, $2)",
             ngx_http_notifyhub_reply_done, (void *) "nh_template_get");

    if (rc != NGX_OK && rc != NGX_DONE) {
        ngx_http_notifyhub_start_failed(r, rc);
    }
}


void
ngx_http_notifyhub_template_delete(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx)
{
    ngx_http_notifyhub_authenticate(r,
                                    NGX_HTTP_NOTIFYHUB_SCOPE_TEMPLATES_WRITE,
                                    ngx_http_notifyhub_template_remove);
}


static void
ngx_http_notifyhub_template_remove(ngx_http_request_t *r,
    ngx_http_notifyhub_key_t *key)
{
    ngx_int_t  rc;

    rc = ngx_http_notifyhub_template_query(r, key,
             "SELECT status, body FROM nh_template_delete($1, $2)",
             ngx_http_notifyhub_reply_done, (void *) "nh_template_delete");

    if (rc != NGX_OK && rc != NGX_DONE) {
        ngx_http_notifyhub_start_failed(r, rc);
    }
}


/*
 * Starts sql with the tenant id and the template id of the path as $1 and
 * $2. Returns NGX_DONE after replying 404 to an id that is not a UUID, or
 * the result of ngx_http_notifyhub_pg_query().
 */
static ngx_int_t
ngx_http_notifyhub_template_query(ngx_http_request_t *r,
    ngx_http_notifyhub_key_t *key, const char *sql,
    ngx_http_notifyhub_pg_handler_pt handler, void *data)
{
    char                       id[NH_UUID_STR_LEN + 1];
    char                       tenant_id[NH_UUID_STR_LEN + 1];
    const char                *values[2];
    ngx_http_notifyhub_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_notifyhub_module);

    if (ngx_http_notifyhub_path_uuid(r, ctx, 0, id, "template not found")
        != NGX_OK)
    {
        return NGX_DONE;
    }

    nh_uuid_format(key->tenant_id, tenant_id);

    values[0] = tenant_id;
    values[1] = id;

    return ngx_http_notifyhub_pg_query(r, sql, 2, values, NULL, NULL,
                                       handler, data);
}


void
ngx_http_notifyhub_template_render(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx)
{
    ngx_http_notifyhub_authenticate(r,
                                    NGX_HTTP_NOTIFYHUB_SCOPE_TEMPLATES_READ,
                                    ngx_http_notifyhub_template_preview);
}


/* Reads the current version, then renders it with "data" of the body. */
static void
ngx_http_notifyhub_template_preview(ngx_http_request_t *r,
    ngx_http_notifyhub_key_t *key)
{
    ngx_int_t                  rc;
    ngx_http_notifyhub_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_notifyhub_module);

    (void) ngx_http_notifyhub_object_field(ctx, ctx->json, "data", "data", 0);

    if (ctx->details) {
        ngx_http_finalize_request(r, ngx_http_notifyhub_send_invalid(r, ctx));
        return;
    }

    rc = ngx_http_notifyhub_template_query(r, key,
             "SELECT status, body FROM nh_template_get($1, $2)",
             ngx_http_notifyhub_template_previewed, NULL);

    if (rc != NGX_OK && rc != NGX_DONE) {
        ngx_http_notifyhub_start_failed(r, rc);
    }
}


static void
ngx_http_notifyhub_template_previewed(ngx_http_request_t *r, PGresult *res,
    void *data)
{
    cJSON                          *json, *reply;
    ngx_int_t                       rc;
    ngx_uint_t                      i;
    ngx_http_notifyhub_ctx_t       *ctx;
    ngx_http_notifyhub_rendered_t   out;

    if (ngx_http_notifyhub_pg_status(r, res, 2, "nh_template_get")
        != NGX_OK)
    {
        return;
    }

    if (ngx_atoi((u_char *) PQgetvalue(res, 0, 0), PQgetlength(res, 0, 0))
        != NGX_HTTP_OK)
    {
        ngx_http_finalize_request(r, ngx_http_notifyhub_reply_result(r, res));
        return;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_notifyhub_module);

    json = cJSON_ParseWithLength(PQgetvalue(res, 0, 1),
                                 PQgetlength(res, 0, 1));
    if (json == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    rc = ngx_http_notifyhub_template_apply(r, ctx, json,
                    cJSON_GetObjectItemCaseSensitive(ctx->json, "data"),
                    &out);
    cJSON_Delete(json);

    if (rc != NGX_OK) {
        return;
    }

    reply = cJSON_CreateObject();
    if (reply == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    for (i = 0; i < 3; i++) {
        if (out.parts[i]) {
            cJSON_AddStringToObject(reply, ngx_http_notifyhub_template_parts[i],
                                    out.parts[i]);

        } else {
            cJSON_AddNullToObject(reply, ngx_http_notifyhub_template_parts[i]);
        }
    }

    rc = ngx_http_notifyhub_send_cjson(r, NGX_HTTP_OK, reply);
    cJSON_Delete(reply);

    ngx_http_finalize_request(r, rc);
}


/*
 * Renders tpl as ngx_http_notifyhub_template_fill does, and replies to
 * a failure itself. Returns NGX_OK, or NGX_DONE after replying and
 * finalizing the request: 422 with the error that the render gave, or
 * 500.
 */
ngx_int_t
ngx_http_notifyhub_template_apply(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx, cJSON *tpl, const cJSON *data,
    ngx_http_notifyhub_rendered_t *out)
{
    ngx_int_t    rc;
    const char  *code, *message;

    rc = ngx_http_notifyhub_template_fill(r, ctx, tpl, data, out, &code,
                                          &message);

    if (rc == NGX_OK) {
        return NGX_OK;
    }

    if (rc == NGX_DECLINED) {
        rc = ngx_http_notifyhub_send_error_details(r,
                 NGX_HTTP_NOTIFYHUB_UNPROCESSABLE, code, message, ctx);
        ngx_http_finalize_request(r, rc);
        return NGX_DONE;
    }

    ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
    return NGX_DONE;
}


/*
 * Renders the subject, body and html of tpl, a template as nh_template_get
 * returns it, with data (an object or NULL) into out, allocated in the
 * request pool. Values are HTML-escaped in the html only. Returns NGX_OK;
 * NGX_DECLINED with the 422 error's code and message and its details in
 * ctx->details: "missing_variables" with every missing path of the three
 * texts, or "output_too_large" when a text renders to more than
 * NGX_HTTP_NOTIFYHUB_RENDER_MAX bytes; or NGX_ERROR.
 */
ngx_int_t
ngx_http_notifyhub_template_fill(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx, cJSON *tpl, const cJSON *data,
    ngx_http_notifyhub_rendered_t *out, const char **code,
    const char **message)
{
    int                   rc;
    char                 *text;
    cJSON                *item, *missing;
    size_t                len;
    u_char               *p;
    ngx_int_t             status;
    ngx_uint_t            i, too_large[3];
    nh_template_t        *parsed;
    nh_template_error_t   err;

    ngx_memzero(out, sizeof(ngx_http_notifyhub_rendered_t));
    ngx_memzero(too_large, sizeof(too_large));

    item = cJSON_GetObjectItemCaseSensitive(tpl, "version");
    out->version = cJSON_IsNumber(item) ? item->valueint : 0;
    out->channel = cJSON_GetStringValue(
                       cJSON_GetObjectItemCaseSensitive(tpl, "channel"));

    missing = cJSON_CreateArray();
    if (missing == NULL) {
        return NGX_ERROR;
    }

    status = NGX_OK;

    for (i = 0; i < 3; i++) {
        item = cJSON_GetObjectItemCaseSensitive(tpl,
                                       ngx_http_notifyhub_template_parts[i]);
        if (!cJSON_IsString(item)) {
            continue;
        }

        /* Stored texts were parsed before they were stored. */
        if (nh_template_parse(item->valuestring, ngx_strlen(item->valuestring),
                              &parsed, &err)
            != 0)
        {
            ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                          "notifyhub: the stored template %s does not parse",
                          ngx_http_notifyhub_template_parts[i]);
            status = NGX_ERROR;
            break;
        }

        rc = nh_template_render(parsed, data, i == 2,
                                NGX_HTTP_NOTIFYHUB_RENDER_MAX, &text, &len,
                                missing);
        nh_template_free(parsed);

        if (rc == 1) {
            continue;
        }

        if (rc == -1) {
            too_large[i] = 1;
            continue;
        }

        if (rc != 0) {
            status = NGX_ERROR;
            break;
        }

        p = ngx_pnalloc(r->pool, len + 1);
        if (p == NULL) {
            free(text);
            status = NGX_ERROR;
            break;
        }

        ngx_memcpy(p, text, len + 1);
        free(text);

        out->parts[i] = (char *) p;
    }

    if (status != NGX_OK) {
        cJSON_Delete(missing);
        return NGX_ERROR;
    }

    if (cJSON_GetArraySize(missing) > 0) {
        status = ngx_http_notifyhub_missing_details(r, ctx, missing, message);
        cJSON_Delete(missing);
        *code = "missing_variables";

        return (status == NGX_OK) ? NGX_DECLINED : NGX_ERROR;
    }

    cJSON_Delete(missing);

    if (too_large[0] || too_large[1] || too_large[2]) {
        for (i = 0; i < 3; i++) {
            if (too_large[i]) {
                ngx_http_notifyhub_invalid(ctx,
                                         ngx_http_notifyhub_template_parts[i],
                                         "too_large");
            }
        }

        *code = "output_too_large";
        *message = "the rendered template is over 524288 bytes; "
                   "send smaller values in data";

        return NGX_DECLINED;
    }

    return NGX_OK;
}


/*
 * Records one {"field": "data.<path>", "issue": "missing"} per path in
 * ctx->details and sets message to a text that names the paths.
 */
static ngx_int_t
ngx_http_notifyhub_missing_details(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx, cJSON *missing, const char **message)
{
    u_char  *text, *p, *field;
    size_t   len;
    cJSON   *item;

    len = sizeof("missing variables in data: ");

    cJSON_ArrayForEach(item, missing) {
        len += ngx_strlen(item->valuestring) + sizeof(", ") - 1;
    }

    text = ngx_pnalloc(r->pool, len);
    field = ngx_pnalloc(r->pool, sizeof("data.") + NH_TEMPLATE_PATH_MAX);

    if (text == NULL || field == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(text, "missing variables in data: ",
                   sizeof("missing variables in data: ") - 1);

    cJSON_ArrayForEach(item, missing) {
        if (item != missing->child) {
            p = ngx_cpymem(p, ", ", 2);
        }

        p = ngx_cpymem(p, item->valuestring, ngx_strlen(item->valuestring));

        ngx_snprintf(field, sizeof("data.") + NH_TEMPLATE_PATH_MAX,
                     "data.%s%Z", item->valuestring);
        ngx_http_notifyhub_invalid(ctx, (const char *) field, "missing");
    }

    *p = '\0';
    *message = (const char *) text;

    return NGX_OK;
}
