
/*
 * Owners: signup, login and logout. Password hashing (PBKDF2) runs in an
 * nginx thread pool; the event loop only posts the task and takes the
 * result. Failed logins are counted per email in PostgreSQL, and from the
 * fifth one on a login for that email must wait (429) until its back-off
 * passes.
 */


#include "ngx_http_notifyhub_module.h"
#include "nh_validate.h"


#define NGX_HTTP_NOTIFYHUB_PASSWORD_MIN   10
#define NGX_HTTP_NOTIFYHUB_PASSWORD_MAX   1024
#define NGX_HTTP_NOTIFYHUB_NAME_MAX       200


/* What signup and login carry from one step to the next. */
typedef struct {
    char                             *email;
    const char                       *name;
    const char                       *password;    /* login only */
    ngx_uint_t                        user_found;
    char                              user_id[NH_UUID_STR_LEN + 1];
    char                              token[NH_TOKEN_MAX];
} ngx_http_notifyhub_owner_t;


static void ngx_http_notifyhub_signup_hashed(ngx_http_request_t *r,
    ngx_http_notifyhub_kdf_t *kdf);
static void ngx_http_notifyhub_signup_done(ngx_http_request_t *r,
    PGresult *res, void *data);
static void ngx_http_notifyhub_login_found(ngx_http_request_t *r,
    PGresult *res, void *data);
static void ngx_http_notifyhub_login_checked(ngx_http_request_t *r,
    ngx_http_notifyhub_kdf_t *kdf);
static void ngx_http_notifyhub_login_failed(ngx_http_request_t *r,
    PGresult *res, void *data);
static void ngx_http_notifyhub_login_done(ngx_http_request_t *r,
    PGresult *res, void *data);
static void ngx_http_notifyhub_logout_done(ngx_http_request_t *r,
    PGresult *res, void *data);
static ngx_int_t ngx_http_notifyhub_new_session(ngx_http_request_t *r,
    ngx_http_notifyhub_owner_t *owner, char *session_id,
    u_char token_hash[NH_SHA256_LEN]);
static void ngx_http_notifyhub_reply_with_token(ngx_http_request_t *r,
    PGresult *res, ngx_http_notifyhub_owner_t *owner);
static char *ngx_http_notifyhub_lower_email(ngx_http_request_t *r,
    const char *email);


void
ngx_http_notifyhub_signup(ngx_http_request_t *r, ngx_http_notifyhub_ctx_t *ctx)
{
    const char                  *email, *password;
    ngx_int_t                    rc;
    ngx_http_notifyhub_owner_t  *owner;

    email = ngx_http_notifyhub_string_field(ctx, ctx->json, "email", "email",
                                            1, 1, NH_EMAIL_MAX);
    if (email && !nh_email_is_valid(email, ngx_strlen(email))) {
        ngx_http_notifyhub_invalid(ctx, "email", "invalid_format");
        email = NULL;
    }

    password = ngx_http_notifyhub_string_field(ctx, ctx->json, "password",
                                   "password", 1,
                                   NGX_HTTP_NOTIFYHUB_PASSWORD_MIN,
                                   NGX_HTTP_NOTIFYHUB_PASSWORD_MAX);

    owner = ngx_pcalloc(r->pool, sizeof(ngx_http_notifyhub_owner_t));
    if (owner == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    owner->name = ngx_http_notifyhub_string_field(ctx, ctx->json, "name",
                                    "name", 1, 1,
                                    NGX_HTTP_NOTIFYHUB_NAME_MAX);

    if (ctx->details) {
        ngx_http_finalize_request(r, ngx_http_notifyhub_send_invalid(r, ctx));
        return;
    }

    owner->email = ngx_http_notifyhub_lower_email(r, email);
    if (owner->email == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ctx->state = owner;

    rc = ngx_http_notifyhub_kdf_start(r, password, NULL,
                                      ngx_http_notifyhub_signup_hashed);
    if (rc != NGX_OK) {
        ngx_http_notifyhub_start_failed(r, rc);
    }
}


static void
ngx_http_notifyhub_signup_hashed(ngx_http_request_t *r,
    ngx_http_notifyhub_kdf_t *kdf)
{
    char                         user_id[NH_UUID_STR_LEN + 1];
    char                         session_id[NH_UUID_STR_LEN + 1];
    char                         ttl[NGX_INT_T_LEN + 1];
    u_char                       uuid[NH_UUID_LEN];
    u_char                       token_hash[NH_SHA256_LEN];
    ngx_int_t                    rc;
    const char                  *values[7];
    int                          lengths[7], formats[7];
    ngx_http_notifyhub_ctx_t    *ctx;
    ngx_http_notifyhub_owner_t  *owner;
    ngx_http_notifyhub_main_conf_t  *nmcf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_notifyhub_module);
    owner = ctx->state;

    if (kdf->result != 0 || nh_uuid7_generate(uuid) != 0) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "notifyhub: hashing a password failed, request %V",
                      &ctx->request_id);
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    nh_uuid_format(uuid, user_id);

    if (ngx_http_notifyhub_new_session(r, owner, session_id, token_hash)
        != NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    nmcf = ngx_http_get_module_main_conf(r, ngx_http_notifyhub_module);
    ngx_sprintf((u_char *) ttl, "%T%Z", nmcf->session_ttl);

    ngx_memzero(formats, sizeof(formats));
    ngx_memzero(lengths, sizeof(lengths));

    values[0] = user_id;
    values[1] = owner->email;
    values[2] = kdf->encoded;
    values[3] = owner->name;
    values[4] = session_id;
    values[5] = (const char *) token_hash;
    lengths[5] = NH_SHA256_LEN;
    formats[5] = 1;
    values[6] = ttl;

    rc = ngx_http_notifyhub_pg_query(r,
             "SELECT status, body FROM nh_signup($1, $2, $3, $4, $5, $6, $7)",
             7, values, lengths, formats,
             ngx_http_notifyhub_signup_done, owner);

    if (rc != NGX_OK) {
        ngx_http_notifyhub_start_failed(r, rc);
    }
}


static void
ngx_http_notifyhub_signup_done(ngx_http_request_t *r, PGresult *res,
    void *data)
{
    if (ngx_http_notifyhub_pg_status(r, res, 2, "nh_signup") != NGX_OK) {
        return;
    }

    ngx_http_notifyhub_reply_with_token(r, res, data);
}


void
ngx_http_notifyhub_login(ngx_http_request_t *r, ngx_http_notifyhub_ctx_t *ctx)
{
    const char                  *email, *password;
    ngx_int_t                    rc;
    const char                  *values[1];
    ngx_http_notifyhub_owner_t  *owner;

    email = ngx_http_notifyhub_string_field(ctx, ctx->json, "email", "email",
                                            1, 1, NH_EMAIL_MAX);
    password = ngx_http_notifyhub_string_field(ctx, ctx->json, "password",
                                   "password", 1, 1,
                                   NGX_HTTP_NOTIFYHUB_PASSWORD_MAX);

    if (ctx->details) {
        ngx_http_finalize_request(r, ngx_http_notifyhub_send_invalid(r, ctx));
        return;
    }

    owner = ngx_pcalloc(r->pool, sizeof(ngx_http_notifyhub_owner_t));
    if (owner == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    owner->email = ngx_http_notifyhub_lower_email(r, email);
    if (owner->email == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    /* The password stays in the parsed body until the lookup returns. */
    owner->password = password;
    ctx->state = owner;

    values[0] = owner->email;

    /* The throttle is checked in the same round trip as the lookup. */
    rc = ngx_http_notifyhub_pg_query(r,
             "SELECT user_id, password_hash, retry_after "
             "FROM nh_login_begin($1)",
             1, values, NULL, NULL, ngx_http_notifyhub_login_found, owner);

    if (rc != NGX_OK) {
        ngx_http_notifyhub_start_failed(r, rc);
    }
}


static void
ngx_http_notifyhub_login_found(ngx_http_request_t *r, PGresult *res,
    void *data)
{
    ngx_http_notifyhub_owner_t  *owner = data;

    char                             dummy[NH_PASSWORD_HASH_MAX];
    ngx_int_t                        rc, retry_after;
    const char                      *encoded;
    ngx_http_notifyhub_main_conf_t  *nmcf;

    if (ngx_http_notifyhub_pg_status(r, res, 3, "nh_login_begin") != NGX_OK) {
        return;
    }

    retry_after = ngx_atoi((u_char *) PQgetvalue(res, 0, 2),
                           PQgetlength(res, 0, 2));

    /*
     * NOTE: a failure is recorded only after the password check, so
     * attempts sent in parallel all pass this check before any counts.
     */

    if (retry_after > 0) {
        ngx_http_notifyhub_send_login_throttled(r, retry_after);
        return;
    }

    if (!PQgetisnull(res, 0, 0)) {
        owner->user_found = 1;
        ngx_cpystrn((u_char *) owner->user_id,
                    (u_char *) PQgetvalue(res, 0, 0), NH_UUID_STR_LEN + 1);
        encoded = PQgetvalue(res, 0, 1);

    } else {

        /*
         * An unknown email still costs one hash with the configured
         * iteration count, so both failures take about the same time.
         */

        nmcf = ngx_http_get_module_main_conf(r, ngx_http_notifyhub_module);

        ngx_snprintf((u_char *) dummy, sizeof(dummy),
                     "pbkdf2-sha256$%ui$AAAAAAAAAAAAAAAAAAAAAA$"
                     "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA%Z",
                     nmcf->password_iterations);
        encoded = dummy;
    }

    rc = ngx_http_notifyhub_kdf_start(r, owner->password, encoded,
                                      ngx_http_notifyhub_login_checked);
    if (rc != NGX_OK) {
        ngx_http_notifyhub_start_failed(r, rc);
    }
}


static void
ngx_http_notifyhub_login_checked(ngx_http_request_t *r,
    ngx_http_notifyhub_kdf_t *kdf)
{
    char                         session_id[NH_UUID_STR_LEN + 1];
    char                         ttl[NGX_INT_T_LEN + 1];
    u_char                       token_hash[NH_SHA256_LEN];
    ngx_int_t                    rc;
    const char                  *values[5];
    int                          lengths[5], formats[5];
    ngx_http_notifyhub_ctx_t    *ctx;
    ngx_http_notifyhub_owner_t  *owner;
    ngx_http_notifyhub_main_conf_t  *nmcf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_notifyhub_module);
    owner = ctx->state;

    if (kdf->result != 1 || !owner->user_found) {
        if (kdf->result == -1 && owner->user_found) {
            ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                          "notifyhub: stored password hash of user %s is "
                          "malformed, request %V", owner->user_id,
                          &ctx->request_id);
        }

        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "notifyhub: failed login, request %V",
                      &ctx->request_id);

        /* Known and unknown emails are counted alike. */
        values[0] = owner->email;

        rc = ngx_http_notifyhub_pg_query(r, "SELECT nh_login_failed($1)",
                 1, values, NULL, NULL, ngx_http_notifyhub_login_failed,
                 owner);

        if (rc != NGX_OK) {
            ngx_http_notifyhub_login_failed(r, NULL, owner);
        }

        return;
    }

    if (ngx_http_notifyhub_new_session(r, owner, session_id, token_hash)
        != NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    nmcf = ngx_http_get_module_main_conf(r, ngx_http_notifyhub_module);
    ngx_sprintf((u_char *) ttl, "%T%Z", nmcf->session_ttl);

    ngx_memzero(formats, sizeof(formats));
    ngx_memzero(lengths, sizeof(lengths));

    values[0] = owner->email;
    values[1] = session_id;
    values[2] = owner->user_id;
    values[3] = (const char *) token_hash;
    lengths[3] = NH_SHA256_LEN;
    formats[3] = 1;
    values[4] = ttl;

    /* This also deletes the failed-login row of the email. */
    rc = ngx_http_notifyhub_pg_query(r,
             "SELECT status, body "
             "FROM nh_login_succeeded($1, $2, $3, $4, $5)",
             5, values, lengths, formats,
             ngx_http_notifyhub_login_done, owner);

    if (rc != NGX_OK) {
        ngx_http_notifyhub_start_failed(r, rc);
    }
}


/*
 * Sends the 401 of a failed login, also when the failure could not be
 * recorded (that is logged), because the credentials were wrong either way.
 */
static void
ngx_http_notifyhub_login_failed(ngx_http_request_t *r, PGresult *res,
    void *data)
{
    ngx_int_t                  rc;
    ngx_http_notifyhub_ctx_t  *ctx;

    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        ctx = ngx_http_get_module_ctx(r, ngx_http_notifyhub_module);

        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "notifyhub: nh_login_failed failed, request %V: %s",
                      &ctx->request_id,
                      res ? PQresultErrorMessage(res)
                          : "database unavailable");
    }

    rc = ngx_http_notifyhub_send_error(r, NGX_HTTP_UNAUTHORIZED,
                                       "unauthorized",
                                       "invalid email or password");
    ngx_http_finalize_request(r, rc);
}


/*
 * Sends 429 rate_limited with Retry-After: seconds, for an email whose
 * failed logins are throttled, and finalizes the request.
 */
void
ngx_http_notifyhub_send_login_throttled(ngx_http_request_t *r,
    ngx_int_t seconds)
{
    u_char                     retry[NGX_INT_T_LEN + 1];
    char                       message[128];
    char                   request_id[NGX_HTTP_NOTIFYHUB_REQUEST_ID_MAX + 1];
    cJSON                     *json, *error;
    ngx_int_t                  rc;
    ngx_http_notifyhub_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_notifyhub_module);

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "notifyhub: login throttled for %i s, request %V",
                  seconds, &ctx->request_id);

    ngx_sprintf(retry, "%i%Z", seconds);
    ngx_cpystrn((u_char *) request_id, ctx->request_id.data,
                ctx->request_id.len + 1);
    ngx_snprintf((u_char *) message, sizeof(message),
                 "too many failed logins for this email; retry in %i s%Z",
                 seconds);

    /*
     * The envelope is built here because the shared error reply sets
     * "Retry-After: 1" for every 429.
     */

    json = cJSON_CreateObject();
    error = cJSON_AddObjectToObject(json, "error");

    if (error == NULL
        || cJSON_AddStringToObject(error, "code", "rate_limited") == NULL
        || cJSON_AddStringToObject(error, "message", message) == NULL
        || cJSON_AddStringToObject(json, "requestId", request_id) == NULL
        || ngx_http_notifyhub_add_header(r, "Retry-After", (char *) retry)
           != NGX_OK)
    {
        cJSON_Delete(json);
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    rc = ngx_http_notifyhub_send_cjson(r, NGX_HTTP_TOO_MANY_REQUESTS, json);
    cJSON_Delete(json);

    ngx_http_finalize_request(r, rc);
}


static void
ngx_http_notifyhub_login_done(ngx_http_request_t *r, PGresult *res,
    void *data)
{
    if (ngx_http_notifyhub_pg_status(r, res, 2, "nh_login_succeeded")
        != NGX_OK)
    {
        return;
    }

    ngx_http_notifyhub_reply_with_token(r, res, data);
}


void
ngx_http_notifyhub_logout(ngx_http_request_t *r, ngx_http_notifyhub_ctx_t *ctx)
{
    u_char      *token, hash[NH_SHA256_LEN];
    size_t       len;
    ngx_int_t    rc;
    const char  *values[1];
    int          lengths[1], formats[1];

    token = ngx_http_notifyhub_bearer(r, &len);
    if (token == NULL) {
        rc = ngx_http_notifyhub_send_error(r, NGX_HTTP_UNAUTHORIZED,
                         "unauthorized", "missing or invalid session token");
        ngx_http_finalize_request(r, rc);
        return;
    }

    nh_sha256(token, len, hash);

    values[0] = (const char *) hash;
    lengths[0] = NH_SHA256_LEN;
    formats[0] = 1;

    rc = ngx_http_notifyhub_pg_query(r,
             "SELECT status, body FROM nh_logout($1)", 1, values, lengths,
             formats, ngx_http_notifyhub_logout_done, NULL);

    if (rc != NGX_OK) {
        ngx_http_notifyhub_start_failed(r, rc);
    }
}


static void
ngx_http_notifyhub_logout_done(ngx_http_request_t *r, PGresult *res,
    void *data)
{
    if (ngx_http_notifyhub_pg_status(r, res, 2, "nh_logout") != NGX_OK) {
        return;
    }

    ngx_http_finalize_request(r, ngx_http_notifyhub_reply_result(r, res));
}


/*
 * Hashes the caller's API key from X-API-Key or "Authorization: Bearer".
 * Returns NGX_OK, or NGX_DECLINED when the request carries no key.
 */
ngx_int_t
ngx_http_notifyhub_api_key_hash(ngx_http_request_t *r,
    u_char hash[NH_SHA256_LEN])
{
    u_char           *key;
    size_t            len;
    ngx_table_elt_t  *h;

    h = ngx_http_notifyhub_find_header(r, "x-api-key",
                                       sizeof("x-api-key") - 1);

    if (h && h->value.len) {
        key = h->value.data;
        len = h->value.len;

    } else {
        key = ngx_http_notifyhub_bearer(r, &len);
        if (key == NULL) {
            return NGX_DECLINED;
        }
    }

    nh_sha256(key, len, hash);

    return NGX_OK;
}


/* Makes a session id and token; the token's hash is what gets stored. */
static ngx_int_t
ngx_http_notifyhub_new_session(ngx_http_request_t *r,
    ngx_http_notifyhub_owner_t *owner, char *session_id,
    u_char token_hash[NH_SHA256_LEN])
{
    int     len;
    u_char  uuid[NH_UUID_LEN];

    if (nh_uuid7_generate(uuid) != 0) {
        return NGX_ERROR;
    }

    nh_uuid_format(uuid, session_id);

    len = nh_token_generate("nhs_", owner->token, sizeof(owner->token));
    if (len < 0) {
        return NGX_ERROR;
    }

    nh_sha256(owner->token, (size_t) len, token_hash);

    return NGX_OK;
}


/* Sends a successful (status, body) row with "token" added to the body. */
static void
ngx_http_notifyhub_reply_with_token(ngx_http_request_t *r, PGresult *res,
    ngx_http_notifyhub_owner_t *owner)
{
    cJSON       *json;
    ngx_int_t    rc;
    ngx_uint_t   status;

    status = ngx_atoi((u_char *) PQgetvalue(res, 0, 0),
                      PQgetlength(res, 0, 0));

    if (status >= NGX_HTTP_BAD_REQUEST) {
        ngx_http_finalize_request(r, ngx_http_notifyhub_reply_result(r, res));
        return;
    }

    json = cJSON_ParseWithLength(PQgetvalue(res, 0, 1),
                                 PQgetlength(res, 0, 1));
    if (json == NULL
        || cJSON_AddStringToObject(json, "token", owner->token) == NULL)
    {
        cJSON_Delete(json);
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    rc = ngx_http_notifyhub_send_cjson(r, status, json);
    cJSON_Delete(json);

    ngx_explicit_memzero(owner->token, sizeof(owner->token));

    ngx_http_finalize_request(r, rc);
}


static char *
ngx_http_notifyhub_lower_email(ngx_http_request_t *r, const char *email)
{
    size_t   len;
    u_char  *p;

    len = ngx_strlen(email);

    p = ngx_pnalloc(r->pool, len + 1);
    if (p == NULL) {
        return NULL;
    }

    ngx_strlow(p, (u_char *) email, len);
    p[len] = '\0';

    return (char *) p;
}
