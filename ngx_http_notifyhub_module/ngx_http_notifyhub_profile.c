
/*
 * The owner's profile: read and change name, email and password. A new
 * password needs the current one, which is checked in the password thread
 * pool like a login, and its failures count towards the login throttle of
 * the owner's email.
 */


#include "ngx_http_notifyhub_module.h"
#include "nh_validate.h"


#define NGX_HTTP_NOTIFYHUB_PASSWORD_MIN   10
#define NGX_HTTP_NOTIFYHUB_PASSWORD_MAX   1024
#define NGX_HTTP_NOTIFYHUB_NAME_MAX       200


/* What a profile change carries from one step to the next. */
typedef struct {
    u_char        token_hash[NH_SHA256_LEN];
    const char   *name;
    char         *email;             /* the new email, lower-cased */
    const char   *password;          /* the new password */
    const char   *current_password;
    char         *account_email;     /* the stored email, for the throttle */
    char          expected_hash[NH_PASSWORD_HASH_MAX];
} ngx_http_notifyhub_profile_t;


static ngx_int_t ngx_http_notifyhub_profile_fields(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx, ngx_http_notifyhub_profile_t *p);
static void ngx_http_notifyhub_profile_checked(ngx_http_request_t *r,
    PGresult *res, void *data);
static void ngx_http_notifyhub_profile_verified(ngx_http_request_t *r,
    ngx_http_notifyhub_kdf_t *kdf);
static void ngx_http_notifyhub_profile_failure_recorded(ngx_http_request_t *r,
    PGresult *res, void *data);
static void ngx_http_notifyhub_profile_hashed(ngx_http_request_t *r,
    ngx_http_notifyhub_kdf_t *kdf);
static void ngx_http_notifyhub_profile_store(ngx_http_request_t *r,
    ngx_http_notifyhub_profile_t *p, const char *password_hash);


void
ngx_http_notifyhub_profile_get(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx)
{
    u_char  token_hash[NH_SHA256_LEN];

    if (ngx_http_notifyhub_session_hash(r, token_hash) != NGX_OK) {
        return;
    }

    ngx_http_notifyhub_owner_query(r,
             "SELECT status, body FROM nh_profile_get($1)",
             "nh_profile_get", token_hash, NULL, NULL);
}


/*
 * Changes any of name, email and password. Without a new password this is
 * one query. With one, the current password is looked up and checked, and
 * the new one is hashed, before the query that stores the change.
 */
void
ngx_http_notifyhub_profile_update(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx)
{
    int                            lengths[1], formats[1];
    ngx_int_t                      rc;
    const char                    *values[1];
    ngx_http_notifyhub_profile_t  *p;

    p = ngx_pcalloc(r->pool, sizeof(ngx_http_notifyhub_profile_t));
    if (p == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (ngx_http_notifyhub_session_hash(r, p->token_hash) != NGX_OK
        || ngx_http_notifyhub_profile_fields(r, ctx, p) != NGX_OK)
    {
        return;
    }

    ctx->state = p;

    if (p->password == NULL) {
        ngx_http_notifyhub_profile_store(r, p, NULL);
        return;
    }

    values[0] = (const char *) p->token_hash;
    lengths[0] = NH_SHA256_LEN;
    formats[0] = 1;

    rc = ngx_http_notifyhub_pg_query(r,
             "SELECT status, body, email, password_hash, retry_after "
             "FROM nh_profile_password($1)",
             1, values, lengths, formats,
             ngx_http_notifyhub_profile_checked, p);

    if (rc != NGX_OK) {
        ngx_http_notifyhub_start_failed(r, rc);
    }
}


/*
 * Validates the fields of a profile change into p. Returns NGX_OK, or
 * NGX_DONE after it has sent the 400 reply.
 */
static ngx_int_t
ngx_http_notifyhub_profile_fields(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx, ngx_http_notifyhub_profile_t *p)
{
    size_t       len;
    cJSON       *item, *current;
    ngx_int_t    rc;
    const char  *email;

    static u_char  empty[] =
        "{\"code\":\"invalid_request\","
        "\"message\":\"the request must change at least one of name, "
        "email, password\","
        "\"details\":[{\"field\":\"body\",\"issue\":\"required\"}]}";

    p->name = ngx_http_notifyhub_string_field(ctx, ctx->json, "name", "name",
                                    0, 1, NGX_HTTP_NOTIFYHUB_NAME_MAX);

    email = ngx_http_notifyhub_string_field(ctx, ctx->json, "email", "email",
                                            0, 1, NH_EMAIL_MAX);
    if (email && !nh_email_is_valid(email, ngx_strlen(email))) {
        ngx_http_notifyhub_invalid(ctx, "email", "invalid_format");
        email = NULL;
    }

    p->password = ngx_http_notifyhub_string_field(ctx, ctx->json, "password",
                                    "password", 0,
                                    NGX_HTTP_NOTIFYHUB_PASSWORD_MIN,
                                    NGX_HTTP_NOTIFYHUB_PASSWORD_MAX);

    p->current_password = ngx_http_notifyhub_string_field(ctx, ctx->json,
                                    "currentPassword", "currentPassword", 0,
                                    1, NGX_HTTP_NOTIFYHUB_PASSWORD_MAX);

    /* A new password, even an invalid one, needs the current one. */
    item = cJSON_GetObjectItemCaseSensitive(ctx->json, "password");
    current = cJSON_GetObjectItemCaseSensitive(ctx->json, "currentPassword");

    if (item && !cJSON_IsNull(item)
        && (current == NULL || cJSON_IsNull(current)))
    {
        ngx_http_notifyhub_invalid(ctx, "currentPassword", "required");
    }

    if (ctx->details) {
        ngx_http_finalize_request(r, ngx_http_notifyhub_send_invalid(r, ctx));
        return NGX_DONE;
    }

    if (p->name == NULL && email == NULL && p->password == NULL) {
        rc = ngx_http_notifyhub_send_error_object(r, NGX_HTTP_BAD_REQUEST,
                                                  empty, sizeof(empty) - 1);
        ngx_http_finalize_request(r, rc);
        return NGX_DONE;
    }

    if (email) {
        len = ngx_strlen(email);

        p->email = ngx_pnalloc(r->pool, len + 1);
        if (p->email == NULL) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return NGX_DONE;
        }

        ngx_strlow((u_char *) p->email, (u_char *) email, len);
        p->email[len] = '\0';
    }

    return NGX_OK;
}


/* Checks the current password against the stored hash it returned. */
static void
ngx_http_notifyhub_profile_checked(ngx_http_request_t *r, PGresult *res,
    void *data)
{
    ngx_http_notifyhub_profile_t  *p = data;

    size_t      len;
    ngx_int_t   rc, retry_after;

    if (ngx_http_notifyhub_pg_status(r, res, 5, "nh_profile_password")
        != NGX_OK)
    {
        return;
    }

    if (ngx_atoi((u_char *) PQgetvalue(res, 0, 0), PQgetlength(res, 0, 0))
        != 0)
    {
        ngx_http_finalize_request(r, ngx_http_notifyhub_reply_result(r, res));
        return;
    }

    retry_after = ngx_atoi((u_char *) PQgetvalue(res, 0, 4),
                           PQgetlength(res, 0, 4));

    if (retry_after > 0) {
        ngx_http_notifyhub_send_login_throttled(r, retry_after);
        return;
    }

    len = PQgetlength(res, 0, 2);

    p->account_email = ngx_pnalloc(r->pool, len + 1);
    if (p->account_email == NULL
        || (size_t) PQgetlength(res, 0, 3) >= sizeof(p->expected_hash))
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_cpystrn((u_char *) p->account_email, (u_char *) PQgetvalue(res, 0, 2),
                len + 1);
    ngx_cpystrn((u_char *) p->expected_hash, (u_char *) PQgetvalue(res, 0, 3),
                sizeof(p->expected_hash));

    rc = ngx_http_notifyhub_kdf_start(r, p->current_password,
                                      p->expected_hash,
                                      ngx_http_notifyhub_profile_verified);
    if (rc != NGX_OK) {
        ngx_http_notifyhub_start_failed(r, rc);
    }
}


static void
ngx_http_notifyhub_profile_verified(ngx_http_request_t *r,
    ngx_http_notifyhub_kdf_t *kdf)
{
    ngx_int_t                      rc;
    const char                    *values[1];
    ngx_http_notifyhub_ctx_t      *ctx;
    ngx_http_notifyhub_profile_t  *p;

    ctx = ngx_http_get_module_ctx(r, ngx_http_notifyhub_module);
    p = ctx->state;

    if (kdf->result == 1) {
        rc = ngx_http_notifyhub_kdf_start(r, p->password, NULL,
                                          ngx_http_notifyhub_profile_hashed);
        if (rc != NGX_OK) {
            ngx_http_notifyhub_start_failed(r, rc);
        }

        return;
    }

    if (kdf->result == -1) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "notifyhub: the stored password hash of the owner is "
                      "malformed, request %V", &ctx->request_id);
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "notifyhub: wrong current password in a password change, "
                  "request %V", &ctx->request_id);

    values[0] = p->account_email;

    rc = ngx_http_notifyhub_pg_query(r, "SELECT nh_login_failed($1)",
             1, values, NULL, NULL,
             ngx_http_notifyhub_profile_failure_recorded, p);

    if (rc != NGX_OK) {
        ngx_http_notifyhub_profile_failure_recorded(r, NULL, p);
    }
}


/*
 * Sends the 401 of a wrong current password, also when the failure could
 * not be recorded (that is logged).
 */
static void
ngx_http_notifyhub_profile_failure_recorded(ngx_http_request_t *r,
    PGresult *res, void *data)
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
                                       "current password is incorrect");
    ngx_http_finalize_request(r, rc);
}


static void
ngx_http_notifyhub_profile_hashed(ngx_http_request_t *r,
    ngx_http_notifyhub_kdf_t *kdf)
{
    ngx_http_notifyhub_ctx_t      *ctx;
    ngx_http_notifyhub_profile_t  *p;

    ctx = ngx_http_get_module_ctx(r, ngx_http_notifyhub_module);
    p = ctx->state;

    if (kdf->result != 0) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "notifyhub: hashing a password failed, request %V",
                      &ctx->request_id);
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_notifyhub_profile_store(r, p, kdf->encoded);
}


/*
 * Stores the change. password_hash is NULL when the password stays, and
 * then the stored hash is not compared either.
 */
static void
ngx_http_notifyhub_profile_store(ngx_http_request_t *r,
    ngx_http_notifyhub_profile_t *p, const char *password_hash)
{
    int          lengths[5], formats[5];
    ngx_int_t    rc;
    const char  *values[5];

    ngx_memzero(lengths, sizeof(lengths));
    ngx_memzero(formats, sizeof(formats));

    values[0] = (const char *) p->token_hash;
    lengths[0] = NH_SHA256_LEN;
    formats[0] = 1;
    values[1] = p->name;
    values[2] = p->email;
    values[3] = password_hash;
    values[4] = password_hash ? p->expected_hash : NULL;

    rc = ngx_http_notifyhub_pg_query(r,
             "SELECT status, body "
             "FROM nh_profile_update($1, $2, $3, $4, $5)",
             5, values, lengths, formats,
             ngx_http_notifyhub_reply_done, (void *) "nh_profile_update");

    if (rc != NGX_OK) {
        ngx_http_notifyhub_start_failed(r, rc);
    }
}
