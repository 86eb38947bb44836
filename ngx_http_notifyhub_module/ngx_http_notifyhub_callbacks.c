
/*
 * Provider callbacks: Mailgun's event webhooks and Twilio's message status
 * callbacks move a SENT notification to DELIVERED or FAILED. Each request
 * is authenticated by the provider's signature, not by an API key, and a
 * request whose signature does not verify changes nothing.
 */


#include "ngx_http_notifyhub_module.h"
#include "nh_callback.h"


/* Mailgun webhooks older or newer than this are rejected as replays. */
#define NGX_HTTP_NOTIFYHUB_MAILGUN_MAX_AGE  (15 * 60)
/* The maximum lengths of a stored provider message id and error text. */
#define NGX_HTTP_NOTIFYHUB_EVENT_ID_MAX     256
#define NGX_HTTP_NOTIFYHUB_EVENT_ERROR_MAX  500


static ngx_int_t ngx_http_notifyhub_mailgun_event(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx, const char **message_id,
    const char **status, char *error, size_t error_size);
static ngx_int_t ngx_http_notifyhub_twilio_url(ngx_http_request_t *r,
    ngx_http_notifyhub_main_conf_t *nmcf, ngx_str_t *url);
static void ngx_http_notifyhub_provider_event(ngx_http_request_t *r,
    const char *provider, const char *message_id, const char *status,
    const char *error);
static void ngx_http_notifyhub_provider_event_done(ngx_http_request_t *r,
    PGresult *res, void *data);
static void ngx_http_notifyhub_callback_reply(ngx_http_request_t *r,
    ngx_uint_t updated);
static void ngx_http_notifyhub_callback_reject(ngx_http_request_t *r,
    const char *provider, const char *reason);
static char *ngx_http_notifyhub_cstring(ngx_http_request_t *r,
    ngx_str_t *s);


/*
 * POST /api/providers/mailgun/events: a JSON body with "signature"
 * {timestamp, token, signature} and "event-data". "delivered" makes the
 * notification DELIVERED and a permanent "failed" makes it FAILED; other
 * events are acknowledged and change nothing.
 */
void
ngx_http_notifyhub_mailgun_events(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx)
{
    char                            *key, error[NGX_HTTP_NOTIFYHUB_EVENT_ERROR_MAX + 1];
    cJSON                           *sig;
    time_t                           timestamp;
    ngx_int_t                        rc;
    const char                      *ts, *token, *signature;
    const char                      *message_id, *status;
    ngx_http_notifyhub_main_conf_t  *nmcf;

    nmcf = ngx_http_get_module_main_conf(r, ngx_http_notifyhub_module);

    if (nmcf->mailgun_signing_key.len == 0) {
        ngx_http_notifyhub_callback_reject(r, "mailgun",
                             "notifyhub_mailgun_signing_key is not set");
        return;
    }

    /* The signature comes first: nothing else is read from a forgery. */

    sig = cJSON_GetObjectItemCaseSensitive(ctx->json, "signature");
    ts = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(sig,
                                                               "timestamp"));
    token = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(sig,
                                                                  "token"));
    signature = cJSON_GetStringValue(
                    cJSON_GetObjectItemCaseSensitive(sig, "signature"));

    key = ngx_http_notifyhub_cstring(r, &nmcf->mailgun_signing_key);
    if (key == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (ts == NULL || token == NULL || signature == NULL
        || !nh_mailgun_signature_valid(key, ts, token, signature))
    {
        ngx_http_notifyhub_callback_reject(r, "mailgun",
                                           "missing or invalid signature");
        return;
    }

    timestamp = ngx_atotm((u_char *) ts, ngx_strlen(ts));

    if (timestamp == NGX_ERROR
        || ngx_abs(ngx_time() - timestamp)
           > NGX_HTTP_NOTIFYHUB_MAILGUN_MAX_AGE)
    {
        ngx_http_notifyhub_callback_reject(r, "mailgun",
                                           "timestamp out of range");
        return;
    }

    rc = ngx_http_notifyhub_mailgun_event(r, ctx, &message_id, &status,
                                          error, sizeof(error));

    if (rc == NGX_DECLINED) {
        ngx_http_finalize_request(r, ngx_http_notifyhub_send_invalid(r, ctx));
        return;
    }

    if (status == NULL) {
        ngx_http_notifyhub_callback_reply(r, 0);
        return;
    }

    ngx_http_notifyhub_provider_event(r, "mailgun", message_id, status,
                                      error[0] ? error : NULL);
}


/*
 * Reads the event of a verified Mailgun webhook. Sets status to DELIVERED
 * or FAILED, or to NULL for an event that changes nothing, and error to
 * the reason of a failure. Returns NGX_OK, or NGX_DECLINED with the
 * invalid fields in ctx->details.
 */
static ngx_int_t
ngx_http_notifyhub_mailgun_event(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx, const char **message_id,
    const char **status, char *error, size_t error_size)
{
    cJSON       *data, *headers, *delivery;
    const char  *event, *severity, *reason;

    *status = NULL;
    error[0] = '\0';

    data = cJSON_GetObjectItemCaseSensitive(ctx->json, "event-data");
    event = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(data,
                                                                  "event"));
    headers = cJSON_GetObjectItemCaseSensitive(
                  cJSON_GetObjectItemCaseSensitive(data, "message"),
                  "headers");
    *message_id = cJSON_GetStringValue(
                      cJSON_GetObjectItemCaseSensitive(headers,
                                                       "message-id"));

    if (event == NULL) {
        ngx_http_notifyhub_invalid(ctx, "event-data.event", "required");
    }

    if (*message_id == NULL || **message_id == '\0'
        || ngx_strlen(*message_id) > NGX_HTTP_NOTIFYHUB_EVENT_ID_MAX)
    {
        ngx_http_notifyhub_invalid(ctx, "event-data.message.headers."
                                   "message-id", "invalid_value");
    }

    if (ctx->details) {
        return NGX_DECLINED;
    }

    if (ngx_strcmp(event, "delivered") == 0) {
        *status = "DELIVERED";
        return NGX_OK;
    }

    if (ngx_strcmp(event, "failed") != 0) {
        return NGX_OK;
    }

    /* Mailgun retries a temporary failure itself. */
    severity = cJSON_GetStringValue(
                   cJSON_GetObjectItemCaseSensitive(data, "severity"));

    if (severity == NULL || ngx_strcmp(severity, "permanent") != 0) {
        return NGX_OK;
    }

    delivery = cJSON_GetObjectItemCaseSensitive(data, "delivery-status");
    reason = cJSON_GetStringValue(
                 cJSON_GetObjectItemCaseSensitive(delivery, "description"));

    if (reason == NULL || reason[0] == '\0') {
        reason = cJSON_GetStringValue(
                     cJSON_GetObjectItemCaseSensitive(delivery, "message"));
    }

    if (reason == NULL || reason[0] == '\0') {
        reason = cJSON_GetStringValue(
                     cJSON_GetObjectItemCaseSensitive(data, "reason"));
    }

    ngx_snprintf((u_char *) error, error_size - 1,
                 "mailgun: permanent failure: %s%Z",
                 reason ? reason : "no reason given");
    error[error_size - 1] = '\0';

    *status = "FAILED";

    return NGX_OK;
}


/*
 * POST /api/providers/twilio/status: Twilio's message status callback, a
 * form with MessageSid and MessageStatus. "delivered" makes the
 * notification DELIVERED; "undelivered" and "failed" make it FAILED with
 * the ErrorCode. Other statuses are acknowledged and change nothing.
 */
void
ngx_http_notifyhub_twilio_status(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx)
{
    int                              rc;
    char                            *token, *body, *url_text;
    char                             error[NGX_HTTP_NOTIFYHUB_EVENT_ERROR_MAX];
    nh_form_t                        form;
    ngx_str_t                        url;
    const char                      *sid, *message_status, *code, *status;
    ngx_table_elt_t                 *h;
    ngx_http_notifyhub_main_conf_t  *nmcf;

    nmcf = ngx_http_get_module_main_conf(r, ngx_http_notifyhub_module);

    if (nmcf->twilio_auth_token.len == 0) {
        ngx_http_notifyhub_callback_reject(r, "twilio",
                             "notifyhub_twilio_auth_token is not set");
        return;
    }

    h = ngx_http_notifyhub_find_header(r, "x-twilio-signature",
                                       sizeof("x-twilio-signature") - 1);

    body = ngx_http_notifyhub_cstring(r, &ctx->body);
    token = ngx_http_notifyhub_cstring(r, &nmcf->twilio_auth_token);

    if (body == NULL || token == NULL
        || ngx_http_notifyhub_twilio_url(r, nmcf, &url) != NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    url_text = (char *) url.data;

    rc = nh_form_parse(body, ctx->body.len, &form);

    if (rc == -2) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    /* A body that is not a form cannot carry a valid signature either. */
    if (rc != 0 || h == NULL
        || !nh_twilio_signature_valid(token, url_text, &form,
                                      (const char *) h->value.data,
                                      h->value.len))
    {
        if (rc == 0) {
            nh_form_free(&form);
        }

        ngx_http_notifyhub_callback_reject(r, "twilio",
                                           "missing or invalid signature");
        return;
    }

    sid = nh_form_get(&form, "MessageSid");
    message_status = nh_form_get(&form, "MessageStatus");
    code = nh_form_get(&form, "ErrorCode");

    if (sid == NULL || sid[0] == '\0'
        || ngx_strlen(sid) > NGX_HTTP_NOTIFYHUB_EVENT_ID_MAX)
    {
        ngx_http_notifyhub_invalid(ctx, "MessageSid", "invalid_value");
    }

    if (message_status == NULL) {
        ngx_http_notifyhub_invalid(ctx, "MessageStatus", "required");
    }

    if (ctx->details) {
        nh_form_free(&form);
        ngx_http_finalize_request(r, ngx_http_notifyhub_send_invalid(r, ctx));
        return;
    }

    status = NULL;
    error[0] = '\0';

    if (ngx_strcmp(message_status, "delivered") == 0) {
        status = "DELIVERED";

    } else if (ngx_strcmp(message_status, "undelivered") == 0
               || ngx_strcmp(message_status, "failed") == 0)
    {
        status = "FAILED";
        ngx_snprintf((u_char *) error, sizeof(error) - 1,
                     "twilio: message %s, error code %s%Z", message_status,
                     (code && code[0]) ? code : "none");
        error[sizeof(error) - 1] = '\0';
    }

    if (status == NULL) {
        nh_form_free(&form);
        ngx_http_notifyhub_callback_reply(r, 0);
        return;
    }

    /* The query copies its parameters, so the form can go first. */
    ngx_http_notifyhub_provider_event(r, "twilio", sid, status,
                                      error[0] ? error : NULL);
    nh_form_free(&form);
}


/*
 * Builds the URL that Twilio signed: notifyhub_public_url, or the
 * request's scheme and Host header, followed by the request URI as it
 * arrived.
 */
static ngx_int_t
ngx_http_notifyhub_twilio_url(ngx_http_request_t *r,
    ngx_http_notifyhub_main_conf_t *nmcf, ngx_str_t *url)
{
    u_char     *p;
    size_t      len;
    ngx_str_t   base, host;

    ngx_str_null(&host);

    if (nmcf->public_url.len) {
        base = nmcf->public_url;

        while (base.len && base.data[base.len - 1] == '/') {
            base.len--;
        }

        len = base.len;

    } else {
        if (r->headers_in.host == NULL) {
            ngx_str_set(&host, "localhost");

        } else {
            host = r->headers_in.host->value;
        }

        ngx_str_set(&base, "http://");
#if (NGX_HTTP_SSL)
        if (r->connection->ssl) {
            ngx_str_set(&base, "https://");
        }
#endif
        len = base.len + host.len;
    }

    url->data = ngx_pnalloc(r->pool, len + r->unparsed_uri.len + 1);
    if (url->data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(url->data, base.data, base.len);

    if (host.len) {
        p = ngx_cpymem(p, host.data, host.len);
    }

    p = ngx_cpymem(p, r->unparsed_uri.data, r->unparsed_uri.len);
    *p = '\0';
    url->len = p - url->data;

    return NGX_OK;
}


/* Applies a verified provider event with nh_provider_event. */
static void
ngx_http_notifyhub_provider_event(ngx_http_request_t *r,
    const char *provider, const char *message_id, const char *status,
    const char *error)
{
    ngx_int_t    rc;
    const char  *values[4];

    values[0] = provider;
    values[1] = message_id;
    values[2] = status;
    values[3] = error;

    rc = ngx_http_notifyhub_pg_query(r,
             "SELECT updated FROM nh_provider_event($1, $2, $3, $4)",
             4, values, NULL, NULL,
             ngx_http_notifyhub_provider_event_done, NULL);

    if (rc != NGX_OK) {
        ngx_http_notifyhub_start_failed(r, rc);
    }
}


static void
ngx_http_notifyhub_provider_event_done(ngx_http_request_t *r, PGresult *res,
    void *data)
{
    if (ngx_http_notifyhub_pg_status(r, res, 1, "nh_provider_event")
        != NGX_OK)
    {
        return;
    }

    ngx_http_notifyhub_callback_reply(r,
        ngx_atoi((u_char *) PQgetvalue(res, 0, 0), PQgetlength(res, 0, 0)));
}


/*
 * Acknowledges a verified callback with 200, also when it changed nothing
 * (an event that moves no status, or a message id of no SENT
 * notification), so that the provider does not send it again.
 */
static void
ngx_http_notifyhub_callback_reply(ngx_http_request_t *r, ngx_uint_t updated)
{
    u_char  body[64], *p;

    p = ngx_sprintf(body, "{\"received\":true,\"updated\":%ui}", updated);

    ngx_http_finalize_request(r,
        ngx_http_notifyhub_send_json(r, NGX_HTTP_OK, body, p - body));
}


/* Rejects an unauthenticated callback with 401 and logs why. */
static void
ngx_http_notifyhub_callback_reject(ngx_http_request_t *r,
    const char *provider, const char *reason)
{
    ngx_http_notifyhub_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_notifyhub_module);

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "notifyhub: %s callback rejected: %s, request %V",
                  provider, reason, &ctx->request_id);

    ngx_http_finalize_request(r, ngx_http_notifyhub_send_error(r,
                              NGX_HTTP_UNAUTHORIZED, "unauthorized",
                              "the callback's signature is missing or "
                              "invalid"));
}


/* Copies s into the request pool as a C string. */
static char *
ngx_http_notifyhub_cstring(ngx_http_request_t *r, ngx_str_t *s)
{
    u_char  *p;

    p = ngx_pnalloc(r->pool, s->len + 1);
    if (p == NULL) {
        return NULL;
    }

    ngx_memcpy(p, s->data, s->len);
    p[s->len] = '\0';

    return (char *) p;
}
