
/*
 * Keyset pagination: the ?limit= and ?cursor= arguments of the lists and
 * the opaque cursors in "nextCursor".
 *
 * A cursor is the position of the last row of a page: its created_at in
 * microseconds since the Unix epoch and its id. It is sent as base64url of
 * a version byte, the time (8 bytes, big-endian), the id (16 bytes) and an
 * HMAC-SHA256 tag over the list's scope name and those bytes. The tag
 * stops clients from forging positions and from using one list's cursor
 * in another list.
 */


#include "ngx_http_notifyhub_module.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>


#define NGX_HTTP_NOTIFYHUB_CURSOR_VERSION      1
#define NGX_HTTP_NOTIFYHUB_CURSOR_PAYLOAD_LEN  (1 + 8 + NH_UUID_LEN)
#define NGX_HTTP_NOTIFYHUB_CURSOR_RAW_LEN                                    \
    (NGX_HTTP_NOTIFYHUB_CURSOR_PAYLOAD_LEN + NH_SHA256_LEN)
/* base64url without padding of the 57 raw bytes. */
#define NGX_HTTP_NOTIFYHUB_CURSOR_LEN                                        \
    ((NGX_HTTP_NOTIFYHUB_CURSOR_RAW_LEN * 4 + 2) / 3)
/* The secret that notifyhub_cursor_secret must at least have, in bytes. */
#define NGX_HTTP_NOTIFYHUB_CURSOR_SECRET_MIN   32


static ngx_int_t ngx_http_notifyhub_cursor_tag(ngx_http_request_t *r,
    const char *scope, const u_char *payload, u_char tag[NH_SHA256_LEN]);


/*
 * Checks notifyhub_cursor_secret, or makes a random secret when it is not
 * set. A random secret lives as long as the configuration, so cursors
 * issued before a reload are rejected after it. Logs the reason of an
 * error itself.
 */
char *
ngx_http_notifyhub_cursor_init_conf(ngx_conf_t *cf,
    ngx_http_notifyhub_main_conf_t *nmcf)
{
    u_char  *secret;

    if (nmcf->cursor_secret.len) {
        if (nmcf->cursor_secret.len < NGX_HTTP_NOTIFYHUB_CURSOR_SECRET_MIN) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "notifyhub_cursor_secret must be at least "
                               "%d characters",
                               NGX_HTTP_NOTIFYHUB_CURSOR_SECRET_MIN);
            return NGX_CONF_ERROR;
        }

        return NGX_CONF_OK;
    }

    secret = ngx_pnalloc(cf->pool, NGX_HTTP_NOTIFYHUB_CURSOR_SECRET_MIN);
    if (secret == NULL) {
        return NGX_CONF_ERROR;
    }

    if (RAND_bytes(secret, NGX_HTTP_NOTIFYHUB_CURSOR_SECRET_MIN) != 1) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "making a random cursor secret failed");
        return NGX_CONF_ERROR;
    }

    nmcf->cursor_secret.data = secret;
    nmcf->cursor_secret.len = NGX_HTTP_NOTIFYHUB_CURSOR_SECRET_MIN;

    return NGX_CONF_OK;
}


/*
 * Reads ?limit= (1 to 100, default 20) and ?cursor= into page. An invalid
 * or empty value is recorded in ctx->details as "limit" or "cursor" with
 * the issue "invalid_value". Returns NGX_OK, or NGX_ERROR when memory
 * runs out.
 */
ngx_int_t
ngx_http_notifyhub_page_args(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx, const char *scope,
    ngx_http_notifyhub_page_t *page)
{
    ngx_int_t  n, rc;
    ngx_str_t  value;

    ngx_memzero(page, sizeof(ngx_http_notifyhub_page_t));
    page->limit = NGX_HTTP_NOTIFYHUB_PAGE_DEFAULT;

    rc = ngx_http_notifyhub_query_arg(r, "limit", &value);

    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (rc == NGX_OK) {
        n = ngx_atoi(value.data, value.len);

        if (n < 1 || n > NGX_HTTP_NOTIFYHUB_PAGE_MAX) {
            ngx_http_notifyhub_invalid(ctx, "limit", "invalid_value");

        } else {
            page->limit = (ngx_uint_t) n;
        }
    }

    rc = ngx_http_notifyhub_query_arg(r, "cursor", &value);

    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (rc == NGX_OK) {
        if (ngx_http_notifyhub_cursor_decode(r, scope, &value,
                                             &page->after_usec,
                                             page->after_id)
            != NGX_OK)
        {
            ngx_http_notifyhub_invalid(ctx, "cursor", "invalid_value");

        } else {
            page->has_cursor = 1;
        }
    }

    return NGX_OK;
}


/*
 * Encodes the position (usec, id) in the list named scope into cursor,
 * allocated in the request pool.
 */
ngx_int_t
ngx_http_notifyhub_cursor_encode(ngx_http_request_t *r, const char *scope,
    int64_t usec, const u_char id[NH_UUID_LEN], ngx_str_t *cursor)
{
    u_char     raw[NGX_HTTP_NOTIFYHUB_CURSOR_RAW_LEN], *tag;
    uint64_t   u;
    ngx_int_t  i;

    raw[0] = NGX_HTTP_NOTIFYHUB_CURSOR_VERSION;

    u = (uint64_t) usec;
    for (i = 0; i < 8; i++) {
        raw[1 + i] = (u_char) (u >> (56 - 8 * i));
    }

    ngx_memcpy(raw + 9, id, NH_UUID_LEN);

    tag = raw + NGX_HTTP_NOTIFYHUB_CURSOR_PAYLOAD_LEN;

    if (ngx_http_notifyhub_cursor_tag(r, scope, raw, tag) != NGX_OK) {
        return NGX_ERROR;
    }

    cursor->data = ngx_pnalloc(r->pool, NGX_HTTP_NOTIFYHUB_CURSOR_LEN + 1);
    if (cursor->data == NULL) {
        return NGX_ERROR;
    }

    cursor->len = nh_base64url_encode(raw, sizeof(raw),
                                      (char *) cursor->data);

    return NGX_OK;
}


/*
 * Decodes a cursor of the list named scope. Returns NGX_OK with the
 * position, or NGX_DECLINED when the text is not a cursor that this
 * server issued for this list.
 */
ngx_int_t
ngx_http_notifyhub_cursor_decode(ngx_http_request_t *r, const char *scope,
    ngx_str_t *cursor, int64_t *usec, u_char id[NH_UUID_LEN])
{
    u_char     raw[NGX_HTTP_NOTIFYHUB_CURSOR_RAW_LEN];
    u_char     tag[NH_SHA256_LEN];
    uint64_t   u;
    ngx_int_t  i;

    /* The fixed length also bounds what the decoder writes into raw. */
    if (cursor->len != NGX_HTTP_NOTIFYHUB_CURSOR_LEN) {
        return NGX_DECLINED;
    }

    if (nh_base64url_decode((const char *) cursor->data, cursor->len, raw)
        != (long) sizeof(raw))
    {
        return NGX_DECLINED;
    }

    if (ngx_http_notifyhub_cursor_tag(r, scope, raw, tag) != NGX_OK) {
        return NGX_DECLINED;
    }

    if (!nh_const_time_eq(tag, raw + NGX_HTTP_NOTIFYHUB_CURSOR_PAYLOAD_LEN,
                          NH_SHA256_LEN)
        || raw[0] != NGX_HTTP_NOTIFYHUB_CURSOR_VERSION)
    {
        return NGX_DECLINED;
    }

    u = 0;
    for (i = 0; i < 8; i++) {
        u = (u << 8) | raw[1 + i];
    }

    *usec = (int64_t) u;
    ngx_memcpy(id, raw + 9, NH_UUID_LEN);

    return NGX_OK;
}


/*
 * Sends a page from the row of an nh_*_list function: status, body (the
 * JSON array of the page's items), next_usec and next_id (the position of
 * the page's last row, NULL on the last page). An error row is sent as an
 * error. Finalizes the request.
 */
void
ngx_http_notifyhub_send_page(ngx_http_request_t *r, PGresult *res,
    const char *scope, const char *what)
{
    u_char      *body, *p, id[NH_UUID_LEN];
    size_t       len;
    int64_t      usec;
    ngx_int_t    rc;
    ngx_str_t    cursor;
    ngx_uint_t   status;

    if (ngx_http_notifyhub_pg_status(r, res, 4, what) != NGX_OK) {
        return;
    }

    status = ngx_atoi((u_char *) PQgetvalue(res, 0, 0),
                      PQgetlength(res, 0, 0));

    if (status != NGX_HTTP_OK) {
        ngx_http_finalize_request(r, ngx_http_notifyhub_reply_result(r, res));
        return;
    }

    ngx_str_null(&cursor);

    if (!PQgetisnull(res, 0, 2) && !PQgetisnull(res, 0, 3)) {
        usec = ngx_atotm((u_char *) PQgetvalue(res, 0, 2),
                         PQgetlength(res, 0, 2));

        if (usec < 0
            || nh_uuid_parse(PQgetvalue(res, 0, 3), PQgetlength(res, 0, 3),
                             id)
               != 0
            || ngx_http_notifyhub_cursor_encode(r, scope, usec, id, &cursor)
               != NGX_OK)
        {
            ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                          "notifyhub: %s returned an invalid next position",
                          what);
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }
    }

    /* The null variant is the longer frame, so len fits both. */
    len = sizeof("{\"data\":,\"nextCursor\":null}") - 1
          + PQgetlength(res, 0, 1) + cursor.len;

    body = ngx_pnalloc(r->pool, len);
    if (body == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    p = ngx_cpymem(body, "{\"data\":", sizeof("{\"data\":") - 1);
    p = ngx_cpymem(p, PQgetvalue(res, 0, 1), PQgetlength(res, 0, 1));

    /* base64url needs no escaping inside a JSON string. */
    if (cursor.len) {
        p = ngx_cpymem(p, ",\"nextCursor\":\"",
                       sizeof(",\"nextCursor\":\"") - 1);
        p = ngx_cpymem(p, cursor.data, cursor.len);
        p = ngx_cpymem(p, "\"}", 2);

    } else {
        p = ngx_cpymem(p, ",\"nextCursor\":null}",
                       sizeof(",\"nextCursor\":null}") - 1);
    }

    rc = ngx_http_notifyhub_send_json(r, status, body, p - body);
    ngx_http_finalize_request(r, rc);
}


/* Computes the HMAC-SHA256 of scope, a NUL byte and the payload. */
static ngx_int_t
ngx_http_notifyhub_cursor_tag(ngx_http_request_t *r, const char *scope,
    const u_char *payload, u_char tag[NH_SHA256_LEN])
{
    u_char                          *data, *p;
    size_t                           scope_len;
    unsigned int                     tag_len;
    ngx_http_notifyhub_main_conf_t  *nmcf;

    nmcf = ngx_http_get_module_main_conf(r, ngx_http_notifyhub_module);

    scope_len = ngx_strlen(scope);

    data = ngx_pnalloc(r->pool,
                       scope_len + 1 + NGX_HTTP_NOTIFYHUB_CURSOR_PAYLOAD_LEN);
    if (data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(data, scope, scope_len + 1);
    p = ngx_cpymem(p, payload, NGX_HTTP_NOTIFYHUB_CURSOR_PAYLOAD_LEN);

    tag_len = 0;

    if (HMAC(EVP_sha256(), nmcf->cursor_secret.data,
             (int) nmcf->cursor_secret.len, data, p - data, tag, &tag_len)
        == NULL
        || tag_len != NH_SHA256_LEN)
    {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "notifyhub: HMAC-SHA256 of a cursor failed");
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * Finds the query argument name (its first occurrence, the name in any
 * case) and percent-decodes it into the request pool. Returns NGX_OK,
 * NGX_DECLINED when the argument is absent, or NGX_ERROR when memory runs
 * out.
 */
ngx_int_t
ngx_http_notifyhub_query_arg(ngx_http_request_t *r, const char *name,
    ngx_str_t *value)
{
    u_char     *dst, *src;
    ngx_str_t   raw;

    if (ngx_http_arg(r, (u_char *) name, ngx_strlen(name), &raw) != NGX_OK) {
        return NGX_DECLINED;
    }

    value->data = ngx_pnalloc(r->pool, raw.len + 1);
    if (value->data == NULL) {
        return NGX_ERROR;
    }

    dst = value->data;
    src = raw.data;
    ngx_unescape_uri(&dst, &src, raw.len, 0);

    value->len = dst - value->data;

    return NGX_OK;
}
