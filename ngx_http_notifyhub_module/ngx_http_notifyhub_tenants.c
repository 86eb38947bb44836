
/*
 * Tenants, managed by their owners with a session token, and the helpers
 * that every owner route shares. Another owner's tenant is reported as
 * not found.
 */


#include "ngx_http_notifyhub_module.h"


#define NGX_HTTP_NOTIFYHUB_TENANT_NAME_MAX  200
/* Longer text cannot be a plan name, so it is rejected before the query. */
#define NGX_HTTP_NOTIFYHUB_PLAN_MAX         64
/* The largest tenant settings object, as compact JSON, in bytes. */
#define NGX_HTTP_NOTIFYHUB_SETTINGS_MAX     (16 * 1024)


typedef struct {
    char   key[NH_TOKEN_MAX];
} ngx_http_notifyhub_tenant_t;


static const char *ngx_http_notifyhub_plan_field(
    ngx_http_notifyhub_ctx_t *ctx, ngx_uint_t required);
static void ngx_http_notifyhub_tenant_created(ngx_http_request_t *r,
    PGresult *res, void *data);
static void ngx_http_notifyhub_tenant_listed(ngx_http_request_t *r,
    PGresult *res, void *data);


static const char  *ngx_http_notifyhub_tenant_statuses[] = {
    "ACTIVE", "SUSPENDED", NULL
};


void
ngx_http_notifyhub_tenant_create(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx)
{
    int                           len, lengths[7], formats[7];
    char                          tenant_id[NH_UUID_STR_LEN + 1];
    char                          key_id[NH_UUID_STR_LEN + 1];
    char                          prefix[NGX_HTTP_NOTIFYHUB_KEY_PREFIX_LEN + 1];
    u_char                        uuid[NH_UUID_LEN];
    u_char                        token_hash[NH_SHA256_LEN];
    u_char                        key_hash[NH_SHA256_LEN];
    ngx_int_t                     rc;
    const char                   *name, *plan, *values[7];
    ngx_http_notifyhub_tenant_t  *t;

    if (ngx_http_notifyhub_session_hash(r, token_hash) != NGX_OK) {
        return;
    }

    name = ngx_http_notifyhub_string_field(ctx, ctx->json, "name", "name", 1,
                                    1, NGX_HTTP_NOTIFYHUB_TENANT_NAME_MAX);
    plan = ngx_http_notifyhub_plan_field(ctx, 0);

    if (ctx->details) {
        ngx_http_finalize_request(r, ngx_http_notifyhub_send_invalid(r, ctx));
        return;
    }

    if (plan == NULL) {
        plan = "FREE";
    }

    t = ngx_pcalloc(r->pool, sizeof(ngx_http_notifyhub_tenant_t));
    if (t == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (nh_uuid7_generate(uuid) != 0) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    nh_uuid_format(uuid, tenant_id);

    if (nh_uuid7_generate(uuid) != 0) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    nh_uuid_format(uuid, key_id);

    len = nh_token_generate("nh_", t->key, sizeof(t->key));
    if (len < 0) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_cpystrn((u_char *) prefix, (u_char *) t->key, sizeof(prefix));
    nh_sha256(t->key, (size_t) len, key_hash);

    ngx_memzero(lengths, sizeof(lengths));
    ngx_memzero(formats, sizeof(formats));

    values[0] = (const char *) token_hash;
    lengths[0] = NH_SHA256_LEN;
    formats[0] = 1;
    values[1] = tenant_id;
    values[2] = name;
    values[3] = plan;
    values[4] = key_id;
    values[5] = prefix;
    values[6] = (const char *) key_hash;
    lengths[6] = NH_SHA256_LEN;
    formats[6] = 1;

    rc = ngx_http_notifyhub_pg_query(r,
             "SELECT status, body "
             "FROM nh_tenant_create($1, $2, $3, $4, $5, $6, $7)",
             7, values, lengths, formats,
             ngx_http_notifyhub_tenant_created, t);

    if (rc != NGX_OK) {
        ngx_http_notifyhub_start_failed(r, rc);
    }
}


/* Adds the key, shown this once, to the reply's "apiKey". */
static void
ngx_http_notifyhub_tenant_created(ngx_http_request_t *r, PGresult *res,
    void *data)
{
    ngx_http_notifyhub_tenant_t  *t = data;

    cJSON       *json, *key;
    ngx_int_t    rc;
    ngx_uint_t   status;

    if (ngx_http_notifyhub_pg_status(r, res, 2, "nh_tenant_create")
        != NGX_OK)
    {
        return;
    }

    status = ngx_atoi((u_char *) PQgetvalue(res, 0, 0),
                      PQgetlength(res, 0, 0));

    if (status != NGX_HTTP_CREATED) {
        ngx_http_finalize_request(r, ngx_http_notifyhub_reply_result(r, res));
        return;
    }

    json = cJSON_ParseWithLength(PQgetvalue(res, 0, 1),
                                 PQgetlength(res, 0, 1));
    key = cJSON_GetObjectItemCaseSensitive(json, "apiKey");

    if (!cJSON_IsObject(key)
        || cJSON_AddStringToObject(key, "key", t->key) == NULL)
    {
        cJSON_Delete(json);
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    rc = ngx_http_notifyhub_send_cjson(r, status, json);
    cJSON_Delete(json);
    ngx_explicit_memzero(t->key, sizeof(t->key));

    ngx_http_finalize_request(r, rc);
}


void
ngx_http_notifyhub_tenant_list(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx)
{
    int                         lengths[4], formats[4];
    char                        limit[NGX_INT_T_LEN + 1];
    char                        after_usec[NGX_INT64_LEN + 1];
    char                        after_id[NH_UUID_STR_LEN + 1];
    u_char                      token_hash[NH_SHA256_LEN];
    ngx_int_t                   rc;
    const char                 *values[4];
    ngx_http_notifyhub_page_t   page;

    if (ngx_http_notifyhub_session_hash(r, token_hash) != NGX_OK) {
        return;
    }

    if (ngx_http_notifyhub_page_args(r, ctx, "tenants", &page) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (ctx->details) {
        ngx_http_finalize_request(r, ngx_http_notifyhub_send_invalid(r, ctx));
        return;
    }

    ngx_memzero(lengths, sizeof(lengths));
    ngx_memzero(formats, sizeof(formats));

    ngx_sprintf((u_char *) limit, "%ui%Z", page.limit);

    values[0] = (const char *) token_hash;
    lengths[0] = NH_SHA256_LEN;
    formats[0] = 1;
    values[1] = limit;
    values[2] = NULL;
    values[3] = NULL;

    if (page.has_cursor) {
        ngx_sprintf((u_char *) after_usec, "%L%Z", page.after_usec);
        nh_uuid_format(page.after_id, after_id);
        values[2] = after_usec;
        values[3] = after_id;
    }

    rc = ngx_http_notifyhub_pg_query(r,
             "SELECT status, body, next_usec, next_id "
             "FROM nh_tenant_list($1, $2, $3, $4)",
             4, values, lengths, formats,
             ngx_http_notifyhub_tenant_listed, NULL);

    if (rc != NGX_OK) {
        ngx_http_notifyhub_start_failed(r, rc);
    }
}


static void
ngx_http_notifyhub_tenant_listed(ngx_http_request_t *r, PGresult *res,
    void *data)
{
    ngx_http_notifyhub_send_page(r, res, "tenants", "nh_tenant_list");
}


void
ngx_http_notifyhub_tenant_get(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx)
{
    char    id[NH_UUID_STR_LEN + 1];
    u_char  token_hash[NH_SHA256_LEN];

    if (ngx_http_notifyhub_session_hash(r, token_hash) != NGX_OK
        || ngx_http_notifyhub_path_uuid(r, ctx, 0, id, "tenant not found")
           != NGX_OK)
    {
        return;
    }

    ngx_http_notifyhub_owner_query(r,
             "SELECT status, body FROM nh_tenant_get($1, $2)",
             "nh_tenant_get", token_hash, id, NULL);
}


/* Replaces name, plan, status and settings. Absent settings become {}. */
void
ngx_http_notifyhub_tenant_update(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx)
{
    int          lengths[6], formats[6];
    char         id[NH_UUID_STR_LEN + 1], *settings_text;
    cJSON       *settings;
    u_char       token_hash[NH_SHA256_LEN];
    ngx_int_t    rc, status;
    const char  *name, *plan, *values[6];

    if (ngx_http_notifyhub_session_hash(r, token_hash) != NGX_OK
        || ngx_http_notifyhub_path_uuid(r, ctx, 0, id, "tenant not found")
           != NGX_OK)
    {
        return;
    }

    name = ngx_http_notifyhub_string_field(ctx, ctx->json, "name", "name", 1,
                                    1, NGX_HTTP_NOTIFYHUB_TENANT_NAME_MAX);
    plan = ngx_http_notifyhub_plan_field(ctx, 1);
    status = ngx_http_notifyhub_enum_field(ctx, ctx->json, "status",
                                    "status",
                                    ngx_http_notifyhub_tenant_statuses, -1);
    settings = ngx_http_notifyhub_object_field(ctx, ctx->json, "settings",
                                               "settings", 0);

    settings_text = NULL;

    if (settings) {
        settings_text = cJSON_PrintUnformatted(settings);
        if (settings_text == NULL) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        if (ngx_strlen(settings_text) > NGX_HTTP_NOTIFYHUB_SETTINGS_MAX) {
            ngx_http_notifyhub_invalid(ctx, "settings", "too_long");
        }
    }

    if (ctx->details) {
        cJSON_free(settings_text);
        ngx_http_finalize_request(r, ngx_http_notifyhub_send_invalid(r, ctx));
        return;
    }

    ngx_memzero(lengths, sizeof(lengths));
    ngx_memzero(formats, sizeof(formats));

    values[0] = (const char *) token_hash;
    lengths[0] = NH_SHA256_LEN;
    formats[0] = 1;
    values[1] = id;
    values[2] = name;
    values[3] = plan;
    values[4] = ngx_http_notifyhub_tenant_statuses[status];
    values[5] = settings_text ? settings_text : "{}";

    rc = ngx_http_notifyhub_pg_query(r,
             "SELECT status, body "
             "FROM nh_tenant_update($1, $2, $3, $4, $5, $6)",
             6, values, lengths, formats,
             ngx_http_notifyhub_reply_done, (void *) "nh_tenant_update");

    cJSON_free(settings_text);

    if (rc != NGX_OK) {
        ngx_http_notifyhub_start_failed(r, rc);
    }
}


/*
 * Deletes the tenant with everything it owns. The API-key cache notices
 * the deletion through the auth generation that the delete bumps.
 */
void
ngx_http_notifyhub_tenant_delete(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx)
{
    char    id[NH_UUID_STR_LEN + 1];
    u_char  token_hash[NH_SHA256_LEN];

    if (ngx_http_notifyhub_session_hash(r, token_hash) != NGX_OK
        || ngx_http_notifyhub_path_uuid(r, ctx, 0, id, "tenant not found")
           != NGX_OK)
    {
        return;
    }

    ngx_http_notifyhub_owner_query(r,
             "SELECT status, body FROM nh_tenant_delete($1, $2)",
             "nh_tenant_delete", token_hash, id, NULL);
}


/*
 * Reads "plan" as a string and returns it in upper case, or NULL when it
 * is absent (recorded as "required" if required) or invalid (recorded).
 * Whether the plan exists is checked against the plans table by the query.
 */
static const char *
ngx_http_notifyhub_plan_field(ngx_http_notifyhub_ctx_t *ctx,
    ngx_uint_t required)
{
    size_t   len;
    cJSON   *item;
    u_char  *p;

    item = cJSON_GetObjectItemCaseSensitive(ctx->json, "plan");

    if (item == NULL || cJSON_IsNull(item)) {
        if (required) {
            ngx_http_notifyhub_invalid(ctx, "plan", "required");
        }
        return NULL;
    }

    if (!cJSON_IsString(item)) {
        ngx_http_notifyhub_invalid(ctx, "plan", "invalid_type");
        return NULL;
    }

    len = ngx_strlen(item->valuestring);

    if (len == 0 || len > NGX_HTTP_NOTIFYHUB_PLAN_MAX) {
        ngx_http_notifyhub_invalid(ctx, "plan", "invalid_value");
        return NULL;
    }

    /* The parsed body belongs to this request, so it is changed in place. */
    for (p = (u_char *) item->valuestring; *p; p++) {
        *p = ngx_toupper(*p);
    }

    return item->valuestring;
}


/*
 * Hashes the session token of "Authorization: Bearer". Without a token it
 * sends 401, finalizes the request and returns NGX_DONE.
 */
ngx_int_t
ngx_http_notifyhub_session_hash(ngx_http_request_t *r,
    u_char hash[NH_SHA256_LEN])
{
    u_char     *token;
    size_t      len;
    ngx_int_t   rc;

    token = ngx_http_notifyhub_bearer(r, &len);

    if (token == NULL) {
        rc = ngx_http_notifyhub_send_error(r, NGX_HTTP_UNAUTHORIZED,
                         "unauthorized", "missing or invalid session token");
        ngx_http_finalize_request(r, rc);
        return NGX_DONE;
    }

    nh_sha256(token, len, hash);

    return NGX_OK;
}


/*
 * Reads the n-th "*" segment of the route as a UUID in canonical form.
 * Anything else cannot name a resource, so it sends 404 with message,
 * finalizes the request and returns NGX_DONE.
 */
ngx_int_t
ngx_http_notifyhub_path_uuid(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx, ngx_uint_t n,
    char id[NH_UUID_STR_LEN + 1], const char *message)
{
    u_char     uuid[NH_UUID_LEN];
    ngx_int_t  rc;

    if (nh_uuid_parse((const char *) ctx->path_ids[n].data,
                      ctx->path_ids[n].len, uuid)
        != 0)
    {
        rc = ngx_http_notifyhub_send_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                           message);
        ngx_http_finalize_request(r, rc);
        return NGX_DONE;
    }

    nh_uuid_format(uuid, id);

    return NGX_OK;
}


/*
 * Sends the (status, body) row of an nh_* function as the reply. data is
 * the function's name for the log.
 */
void
ngx_http_notifyhub_reply_done(ngx_http_request_t *r, PGresult *res,
    void *data)
{
    if (ngx_http_notifyhub_pg_status(r, res, 2, data) != NGX_OK) {
        return;
    }

    ngx_http_finalize_request(r, ngx_http_notifyhub_reply_result(r, res));
}


/*
 * Runs an owner function that takes the session token hash and one or two
 * ids (id2 may be NULL), and sends its (status, body) row. what names the
 * function in the log.
 */
void
ngx_http_notifyhub_owner_query(ngx_http_request_t *r, const char *sql,
    const char *what, u_char *token_hash, const char *id1, const char *id2)
{
    int          lengths[3], formats[3], n;
    ngx_int_t    rc;
    const char  *values[3];

    ngx_memzero(lengths, sizeof(lengths));
    ngx_memzero(formats, sizeof(formats));

    values[0] = (const char *) token_hash;
    lengths[0] = NH_SHA256_LEN;
    formats[0] = 1;
    values[1] = id1;
    values[2] = id2;

    n = id1 == NULL ? 1 : (id2 == NULL ? 2 : 3);

    rc = ngx_http_notifyhub_pg_query(r, sql, n, values, lengths, formats,
                                     ngx_http_notifyhub_reply_done,
                                     (void *) what);

    if (rc != NGX_OK) {
        ngx_http_notifyhub_start_failed(r, rc);
    }
}
