
/*
 * Tenants, managed by their owners with a session token.
 */


#include "ngx_http_notifyhub_module.h"


#define NGX_HTTP_NOTIFYHUB_TENANT_NAME_MAX  200
/* "nh_" and the first 8 characters of the secret identify a key. */
#define NGX_HTTP_NOTIFYHUB_KEY_PREFIX_LEN   11


typedef struct {
    char   key[NH_TOKEN_MAX];
} ngx_http_notifyhub_tenant_t;


static void ngx_http_notifyhub_tenant_created(ngx_http_request_t *r,
    PGresult *res, void *data);


static const char  *ngx_http_notifyhub_plans[] = {
    "FREE", "STARTER", "BUSINESS", "ENTERPRISE", NULL
};


void
ngx_http_notifyhub_tenant_create(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx)
{
    int                           len, lengths[7], formats[7];
    char                          tenant_id[NH_UUID_STR_LEN + 1];
    char                          key_id[NH_UUID_STR_LEN + 1];
    char                          prefix[NGX_HTTP_NOTIFYHUB_KEY_PREFIX_LEN + 1];
    u_char                        uuid[NH_UUID_LEN], *token;
    u_char                        token_hash[NH_SHA256_LEN];
    u_char                        key_hash[NH_SHA256_LEN];
    size_t                        token_len;
    ngx_int_t                     rc, plan;
    const char                   *name, *values[7];
    ngx_http_notifyhub_tenant_t  *t;

    token = ngx_http_notifyhub_bearer(r, &token_len);
    if (token == NULL) {
        rc = ngx_http_notifyhub_send_error(r, NGX_HTTP_UNAUTHORIZED,
                         "unauthorized", "missing or invalid session token");
        ngx_http_finalize_request(r, rc);
        return;
    }

    name = ngx_http_notifyhub_string_field(ctx, ctx->json, "name", "name", 1,
                                    1, NGX_HTTP_NOTIFYHUB_TENANT_NAME_MAX);
    plan = ngx_http_notifyhub_enum_field(ctx, ctx->json, "plan", "plan",
                                         ngx_http_notifyhub_plans, 0);

    if (ctx->details) {
        ngx_http_finalize_request(r, ngx_http_notifyhub_send_invalid(r, ctx));
        return;
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
    nh_sha256(token, token_len, token_hash);

    ngx_memzero(lengths, sizeof(lengths));
    ngx_memzero(formats, sizeof(formats));

    values[0] = (const char *) token_hash;
    lengths[0] = NH_SHA256_LEN;
    formats[0] = 1;
    values[1] = tenant_id;
    values[2] = name;
    values[3] = ngx_http_notifyhub_plans[plan];
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
ngx_http_notifyhub_tenant_list(ngx_http_request_t *r, ngx_http_notifyhub_ctx_t *ctx)
{
    ngx_http_finalize_request(r, ngx_http_notifyhub_send_error(r,
                              NGX_HTTP_NOT_IMPLEMENTED, "not_implemented",
                              "this route is not implemented yet"));
}


void
ngx_http_notifyhub_tenant_get(ngx_http_request_t *r, ngx_http_notifyhub_ctx_t *ctx)
{
    ngx_http_finalize_request(r, ngx_http_notifyhub_send_error(r,
                              NGX_HTTP_NOT_IMPLEMENTED, "not_implemented",
                              "this route is not implemented yet"));
}


void
ngx_http_notifyhub_tenant_update(ngx_http_request_t *r, ngx_http_notifyhub_ctx_t *ctx)
{
    ngx_http_finalize_request(r, ngx_http_notifyhub_send_error(r,
                              NGX_HTTP_NOT_IMPLEMENTED, "not_implemented",
                              "this route is not implemented yet"));
}


void
ngx_http_notifyhub_tenant_delete(ngx_http_request_t *r, ngx_http_notifyhub_ctx_t *ctx)
{
    ngx_http_finalize_request(r, ngx_http_notifyhub_send_error(r,
                              NGX_HTTP_NOT_IMPLEMENTED, "not_implemented",
                              "this route is not implemented yet"));
}
