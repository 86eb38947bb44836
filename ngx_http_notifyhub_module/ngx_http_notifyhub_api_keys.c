
/*
 * A tenant's API keys, managed by its owner: create, list, revoke. A key
 * is shown once, in the reply that creates it. Only its SHA-256 hash is
 * stored.
 */


#include "ngx_http_notifyhub_module.h"
#include "nh_time.h"


#define NGX_HTTP_NOTIFYHUB_KEY_NAME_MAX  100


typedef struct {
    char   key[NH_TOKEN_MAX];
} ngx_http_notifyhub_new_key_t;


static char *ngx_http_notifyhub_scopes_field(ngx_http_notifyhub_ctx_t *ctx);
static const char *ngx_http_notifyhub_expires_field(
    ngx_http_notifyhub_ctx_t *ctx, char text[NH_RFC3339_LEN + 1]);
static void ngx_http_notifyhub_api_key_created(ngx_http_request_t *r,
    PGresult *res, void *data);


/* Every scope a key may have. "*" grants all of them. */
static const char  *ngx_http_notifyhub_scopes[] = {
    "notifications:read", "notifications:write",
    "templates:read", "templates:write",
    "recipients:read", "recipients:write",
    "webhooks:read", "webhooks:write",
    "metrics:read",
    "*",
    NULL
};

#define NGX_HTTP_NOTIFYHUB_NSCOPES                                           \
    (sizeof(ngx_http_notifyhub_scopes) / sizeof(ngx_http_notifyhub_scopes[0]) \
     - 1)


void
ngx_http_notifyhub_api_key_create(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx)
{
    int                            len, lengths[8], formats[8];
    char                           tenant_id[NH_UUID_STR_LEN + 1];
    char                           key_id[NH_UUID_STR_LEN + 1];
    char                       prefix[NGX_HTTP_NOTIFYHUB_KEY_PREFIX_LEN + 1];
    char                           expires[NH_RFC3339_LEN + 1];
    char                          *scopes;
    u_char                         uuid[NH_UUID_LEN];
    u_char                         token_hash[NH_SHA256_LEN];
    u_char                         key_hash[NH_SHA256_LEN];
    ngx_int_t                      rc;
    const char                    *name, *expires_at, *values[8];
    ngx_http_notifyhub_new_key_t  *k;

    if (ngx_http_notifyhub_session_hash(r, token_hash) != NGX_OK
        || ngx_http_notifyhub_path_uuid(r, ctx, 0, tenant_id,
                                        "tenant not found")
           != NGX_OK)
    {
        return;
    }

    name = ngx_http_notifyhub_string_field(ctx, ctx->json, "name", "name", 1,
                                    1, NGX_HTTP_NOTIFYHUB_KEY_NAME_MAX);
    scopes = ngx_http_notifyhub_scopes_field(ctx);
    expires_at = ngx_http_notifyhub_expires_field(ctx, expires);

    if (ctx->details) {
        cJSON_free(scopes);
        ngx_http_finalize_request(r, ngx_http_notifyhub_send_invalid(r, ctx));
        return;
    }

    if (scopes == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    k = ngx_pcalloc(r->pool, sizeof(ngx_http_notifyhub_new_key_t));
    if (k == NULL || nh_uuid7_generate(uuid) != 0) {
        cJSON_free(scopes);
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    nh_uuid_format(uuid, key_id);

    len = nh_token_generate("nh_", k->key, sizeof(k->key));
    if (len < 0) {
        cJSON_free(scopes);
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_cpystrn((u_char *) prefix, (u_char *) k->key, sizeof(prefix));
    nh_sha256(k->key, (size_t) len, key_hash);

    ngx_memzero(lengths, sizeof(lengths));
    ngx_memzero(formats, sizeof(formats));

    values[0] = (const char *) token_hash;
    lengths[0] = NH_SHA256_LEN;
    formats[0] = 1;
    values[1] = tenant_id;
    values[2] = key_id;
    values[3] = name;
    values[4] = prefix;
    values[5] = (const char *) key_hash;
    lengths[5] = NH_SHA256_LEN;
    formats[5] = 1;
    values[6] = scopes;
    values[7] = expires_at;

    rc = ngx_http_notifyhub_pg_query(r,
             "SELECT status, body "
             "FROM nh_api_key_create($1, $2, $3, $4, $5, $6, $7, $8)",
             8, values, lengths, formats,
             ngx_http_notifyhub_api_key_created, k);

    cJSON_free(scopes);

    if (rc != NGX_OK) {
        ngx_http_notifyhub_start_failed(r, rc);
    }
}


/* Adds the key, shown this once, to the reply. */
static void
ngx_http_notifyhub_api_key_created(ngx_http_request_t *r, PGresult *res,
    void *data)
{
    ngx_http_notifyhub_new_key_t  *k = data;

    cJSON       *json;
    ngx_int_t    rc;
    ngx_uint_t   status;

    if (ngx_http_notifyhub_pg_status(r, res, 2, "nh_api_key_create")
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

    if (!cJSON_IsObject(json)
        || cJSON_AddStringToObject(json, "key", k->key) == NULL)
    {
        cJSON_Delete(json);
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    rc = ngx_http_notifyhub_send_cjson(r, status, json);
    cJSON_Delete(json);
    ngx_explicit_memzero(k->key, sizeof(k->key));

    ngx_http_finalize_request(r, rc);
}


/* Lists every key of the tenant, without secrets, in one page. */
void
ngx_http_notifyhub_api_key_list(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx)
{
    char    tenant_id[NH_UUID_STR_LEN + 1];
    u_char  token_hash[NH_SHA256_LEN];

    if (ngx_http_notifyhub_session_hash(r, token_hash) != NGX_OK
        || ngx_http_notifyhub_path_uuid(r, ctx, 0, tenant_id,
                                        "tenant not found")
           != NGX_OK)
    {
        return;
    }

    ngx_http_notifyhub_owner_query(r,
             "SELECT status, body FROM nh_api_key_list($1, $2)",
             "nh_api_key_list", token_hash, tenant_id, NULL);
}


/*
 * Revokes a key. The API-key cache drops it when it polls the auth
 * generation that the status change bumps.
 */
void
ngx_http_notifyhub_api_key_revoke(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx)
{
    char    tenant_id[NH_UUID_STR_LEN + 1];
    char    key_id[NH_UUID_STR_LEN + 1];
    u_char  token_hash[NH_SHA256_LEN];

    if (ngx_http_notifyhub_session_hash(r, token_hash) != NGX_OK
        || ngx_http_notifyhub_path_uuid(r, ctx, 0, tenant_id,
                                        "tenant not found")
           != NGX_OK
        || ngx_http_notifyhub_path_uuid(r, ctx, 1, key_id,
                                        "API key not found")
           != NGX_OK)
    {
        return;
    }

    ngx_http_notifyhub_owner_query(r,
             "SELECT status, body FROM nh_api_key_revoke($1, $2, $3)",
             "nh_api_key_revoke", token_hash, tenant_id, key_id);
}


/*
 * Reads "scopes": a non-empty array of distinct known scopes. Returns them
 * as a compact JSON array (free with cJSON_free), or NULL when the field
 * is invalid (recorded per element as "scopes[i]") or memory runs out.
 */
static char *
ngx_http_notifyhub_scopes_field(ngx_http_notifyhub_ctx_t *ctx)
{
    int          i, j, n;
    char         path[sizeof("scopes[]") + NGX_INT_T_LEN];
    cJSON       *item, *scope, *other;
    ngx_uint_t   k, valid;

    item = cJSON_GetObjectItemCaseSensitive(ctx->json, "scopes");

    if (item == NULL || cJSON_IsNull(item)) {
        ngx_http_notifyhub_invalid(ctx, "scopes", "required");
        return NULL;
    }

    if (!cJSON_IsArray(item)) {
        ngx_http_notifyhub_invalid(ctx, "scopes", "invalid_type");
        return NULL;
    }

    n = cJSON_GetArraySize(item);

    if (n == 0) {
        ngx_http_notifyhub_invalid(ctx, "scopes", "required");
        return NULL;
    }

    /* An array of distinct known scopes is at most as long as the list. */
    if ((size_t) n > NGX_HTTP_NOTIFYHUB_NSCOPES) {
        ngx_http_notifyhub_invalid(ctx, "scopes", "too_long");
        return NULL;
    }

    valid = 1;

    for (i = 0; i < n; i++) {
        scope = cJSON_GetArrayItem(item, i);
        ngx_sprintf((u_char *) path, "scopes[%d]%Z", i);

        if (!cJSON_IsString(scope)) {
            ngx_http_notifyhub_invalid(ctx, path, "invalid_type");
            valid = 0;
            continue;
        }

        for (k = 0; ngx_http_notifyhub_scopes[k]; k++) {
            if (ngx_strcmp(scope->valuestring, ngx_http_notifyhub_scopes[k])
                == 0)
            {
                break;
            }
        }

        if (ngx_http_notifyhub_scopes[k] == NULL) {
            ngx_http_notifyhub_invalid(ctx, path, "invalid_value");
            valid = 0;
            continue;
        }

        for (j = 0; j < i; j++) {
            other = cJSON_GetArrayItem(item, j);

            if (cJSON_IsString(other)
                && ngx_strcmp(other->valuestring, scope->valuestring) == 0)
            {
                ngx_http_notifyhub_invalid(ctx, path, "duplicate");
                valid = 0;
                break;
            }
        }
    }

    if (!valid) {
        return NULL;
    }

    /* Only known strings are left, so the array prints as it came. */
    return cJSON_PrintUnformatted(item);
}


/*
 * Reads "expiresAt": an RFC 3339 time in the future, or absent for a key
 * that never expires. Returns text holding it as RFC 3339 in UTC with
 * milliseconds, or NULL when absent or invalid (recorded).
 */
static const char *
ngx_http_notifyhub_expires_field(ngx_http_notifyhub_ctx_t *ctx,
    char text[NH_RFC3339_LEN + 1])
{
    cJSON    *item;
    int64_t   ms;

    item = cJSON_GetObjectItemCaseSensitive(ctx->json, "expiresAt");

    if (item == NULL || cJSON_IsNull(item)) {
        return NULL;
    }

    if (!cJSON_IsString(item)) {
        ngx_http_notifyhub_invalid(ctx, "expiresAt", "invalid_type");
        return NULL;
    }

    if (nh_time_parse_rfc3339(item->valuestring,
                              ngx_strlen(item->valuestring), &ms)
        != 0)
    {
        ngx_http_notifyhub_invalid(ctx, "expiresAt", "invalid_format");
        return NULL;
    }

    if (ms <= nh_time_now_ms()) {
        ngx_http_notifyhub_invalid(ctx, "expiresAt", "in_past");
        return NULL;
    }

    nh_time_format_rfc3339(ms, text);

    return text;
}
