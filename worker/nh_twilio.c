#include "nh_twilio.h"

#include "nh_error.h"
#include "nh_log.h"
#include "nh_twilio_errors.h"
#include "nh_validate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>


#define NH_TWILIO_DEFAULT_URL      "http://127.0.0.1:8483"
/* The local fake's test account; Twilio has no account with this SID. */
#define NH_TWILIO_DEFAULT_ACCOUNT  "AC0123456789abcdef0123456789abcdef"
#define NH_TWILIO_DEFAULT_TOKEN    "local-sandbox-auth-token"
/* Twilio's magic test number that is accepted as a valid From. */
#define NH_TWILIO_DEFAULT_FROM     "+15005550006"

/* A SID is two letters that name the resource type and 32 hex digits. */
#define NH_TWILIO_SID_LEN          34
#define NH_TWILIO_SENDER_ID_MAX    11

/* The part of a non-JSON error body that goes into the error text. */
#define NH_TWILIO_BODY_EXCERPT     200


struct nh_twilio_s {
    char  *base_url;           /* NH_TWILIO_URL without a trailing '/' */
    char  *messages_url;
    char  *account_sid;
    char  *auth_token;
    char  *from;               /* NULL when a messaging service is used */
    char  *messaging_service;  /* NULL when From is used */
    char  *status_callback;    /* NULL when not set */
};


static int nh_twilio_check_url(const char *url, int allow_userinfo);
static int nh_twilio_check_sid(const char *sid, const char *prefix);
static int nh_twilio_check_from(const char *from);
static int nh_twilio_sender(const nh_config_t *cfg, const char **from,
    const char **service, char *err, size_t errlen);
static int nh_twilio_phone(const nh_delivery_t *d, char *phone,
    size_t size);
static void nh_twilio_error_text(const nh_http_request_t *req, long code,
    const char *message, char *out, size_t size);


int
nh_twilio_create(const nh_config_t *cfg, nh_twilio_t **out, char *err,
    size_t errlen)
{
    nh_twilio_t  *tw;
    const char   *url, *account, *token, *from, *service, *callback;
    size_t        len;

    url = nh_config_get(cfg, "NH_TWILIO_URL", NH_TWILIO_DEFAULT_URL);
    account = nh_config_get(cfg, "NH_TWILIO_ACCOUNT_SID",
                            NH_TWILIO_DEFAULT_ACCOUNT);
    token = nh_config_get(cfg, "NH_TWILIO_AUTH_TOKEN",
                          NH_TWILIO_DEFAULT_TOKEN);
    callback = nh_config_get(cfg, "NH_TWILIO_STATUS_CALLBACK", "");

    if (nh_twilio_check_url(url, 0) != 0) {
        /* A URL with user information may contain a password, so only
         * a URL without '@' is quoted back. */
        snprintf(err, errlen, "NH_TWILIO_URL \"%s\" is invalid: expected "
                 "http:// or https:// and a host, without user "
                 "information", strchr(url, '@') == NULL ? url : "...");
        return NH_ERROR;
    }

    if (nh_twilio_check_sid(account, "AC") != 0) {
        snprintf(err, errlen, "NH_TWILIO_ACCOUNT_SID \"%s\" is invalid: "
                 "expected \"AC\" and 32 hex digits", account);
        return NH_ERROR;
    }

    if (token[0] == '\0') {
        snprintf(err, errlen, "NH_TWILIO_AUTH_TOKEN is empty");
        return NH_ERROR;
    }

    if (nh_twilio_sender(cfg, &from, &service, err, errlen) != NH_OK) {
        return NH_ERROR;
    }

    /* The callback may carry credentials for the tenant's endpoint in its
     * user information, so it is never quoted back. */
    if (callback[0] != '\0' && nh_twilio_check_url(callback, 1) != 0) {
        snprintf(err, errlen, "NH_TWILIO_STATUS_CALLBACK is invalid: "
                 "expected an http:// or https:// URL with a host");
        return NH_ERROR;
    }

    tw = calloc(1, sizeof(nh_twilio_t));
    if (tw == NULL) {
        snprintf(err, errlen, "out of memory");
        return NH_ENOMEM;
    }

    tw->base_url = strdup(url);
    tw->account_sid = strdup(account);
    tw->auth_token = strdup(token);
    tw->from = from != NULL ? strdup(from) : NULL;
    tw->messaging_service = service != NULL ? strdup(service) : NULL;
    tw->status_callback = callback[0] != '\0' ? strdup(callback) : NULL;

    if (tw->base_url == NULL || tw->account_sid == NULL
        || tw->auth_token == NULL
        || (from != NULL && tw->from == NULL)
        || (service != NULL && tw->messaging_service == NULL)
        || (callback[0] != '\0' && tw->status_callback == NULL))
    {
        goto failed;
    }

    len = strlen(tw->base_url);
    while (len > 0 && tw->base_url[len - 1] == '/') {
        tw->base_url[--len] = '\0';
    }

    len += sizeof("/2010-04-01/Accounts/") + NH_TWILIO_SID_LEN
           + sizeof("/Messages.json");
    tw->messages_url = malloc(len);
    if (tw->messages_url == NULL) {
        goto failed;
    }

    snprintf(tw->messages_url, len, "%s/2010-04-01/Accounts/%s/Messages.json",
             tw->base_url, tw->account_sid);

    *out = tw;
    return NH_OK;

failed:

    snprintf(err, errlen, "out of memory");
    nh_twilio_destroy(tw);
    return NH_ENOMEM;
}


void
nh_twilio_destroy(nh_twilio_t *tw)
{
    if (tw == NULL) {
        return;
    }

    if (tw->auth_token != NULL) {
        memset(tw->auth_token, 0, strlen(tw->auth_token));
    }

    if (tw->status_callback != NULL) {
        memset(tw->status_callback, 0, strlen(tw->status_callback));
    }

    free(tw->base_url);
    free(tw->messages_url);
    free(tw->account_sid);
    free(tw->auth_token);
    free(tw->from);
    free(tw->messaging_service);
    free(tw->status_callback);
    free(tw);
}


void
nh_twilio_provider(nh_twilio_t *tw, nh_provider_t *provider)
{
    provider->name = "twilio";
    provider->channel = "SMS";
    provider->ctx = tw;
    provider->targets = NULL;
    provider->build = nh_twilio_build;
    provider->classify = nh_twilio_classify;
}


void
nh_twilio_log_config(const nh_twilio_t *tw)
{
    nh_log(NH_LOG_INFO, "twilio configured", "url=%s account_sid=%s "
           "from=%s messaging_service_sid=%s status_callback=%s",
           nh_log_quote(tw->base_url), nh_log_quote(tw->account_sid),
           nh_log_quote(tw->from), nh_log_quote(tw->messaging_service),
           tw->status_callback != NULL ? "set" : "null");
}


int
nh_twilio_build(void *ctx, const nh_delivery_t *d, nh_http_request_t *req,
    nh_outcome_t *out)
{
    nh_twilio_t  *tw = ctx;
    const char   *missing;
    char          phone[32];
    int           rc;

    missing = NULL;
    if (nh_twilio_phone(d, phone, sizeof(phone)) != 0) {
        missing = "to.phone in E.164";
    } else if (d->body == NULL || d->body[0] == '\0') {
        missing = "body";
    }

    if (missing != NULL) {
        memset(out, 0, sizeof(nh_outcome_t));
        out->status = NH_OUTCOME_FAILED;
        snprintf(out->error, sizeof(out->error),
                 "notification has no %s", missing);
        return NH_ERROR;
    }

    rc = nh_http_request_set_target(req, tw->messages_url, tw->account_sid,
                                    tw->auth_token);
    if (rc != NH_OK) {
        return rc;
    }

    /* add_field adds nothing for a NULL value, so exactly one of From and
     * MessagingServiceSid is sent. */
    if (nh_http_request_add_field(req, "To", phone) != NH_OK
        || nh_http_request_add_field(req, "From", tw->from) != NH_OK
        || nh_http_request_add_field(req, "MessagingServiceSid",
                                     tw->messaging_service) != NH_OK
        || nh_http_request_add_field(req, "Body", d->body) != NH_OK
        || nh_http_request_add_field(req, "StatusCallback",
                                     tw->status_callback) != NH_OK)
    {
        return NH_ENOMEM;
    }

    return NH_OK;
}


void
nh_twilio_classify(void *ctx, const nh_http_request_t *req,
    nh_outcome_t *out)
{
    const nh_twilio_error_rule_t  *rule;
    const char                    *detail;
    cJSON                         *json, *sid;
    long                           code;
    /* Leaves room for "HTTP <status> <code>: " in the error text. */
    char                           message[NH_OUTCOME_ERROR_MAX - 64];

    (void) ctx;

    memset(out, 0, sizeof(nh_outcome_t));
    out->http_status = req->status;
    out->duration_ms = req->duration_ms;

    if (req->code != CURLE_OK) {
        rule = nh_twilio_error_classify(0, 0);
        out->status = NH_OUTCOME_FAILED;
        out->transient = rule->transient;

        detail = curl_easy_strerror(req->code);
        if (req->error[0] != '\0' && strcmp(req->error, detail) != 0) {
            snprintf(out->error, sizeof(out->error), "%s: %s", detail,
                     req->error);
        } else {
            snprintf(out->error, sizeof(out->error), "%s", detail);
        }

        return;
    }

    if (req->status >= 200 && req->status < 300) {
        out->status = NH_OUTCOME_SENT;

        json = cJSON_ParseWithLength(req->body, req->body_len);
        sid = cJSON_GetObjectItemCaseSensitive(json, "sid");
        if (cJSON_IsString(sid) && sid->valuestring[0] != '\0') {
            snprintf(out->provider_message_id,
                     sizeof(out->provider_message_id), "%s",
                     sid->valuestring);
        }

        cJSON_Delete(json);
        return;
    }

    out->status = NH_OUTCOME_FAILED;

    if (nh_twilio_error_parse(req->body, req->body_len, &code, message,
                              sizeof(message)) != 0)
    {
        code = 0;
        message[0] = '\0';
    }

    rule = nh_twilio_error_classify(req->status, code);
    out->transient = rule->transient;

    nh_twilio_error_text(req, code, message, out->error, sizeof(out->error));
}


/*
 * Reads NH_TWILIO_FROM and NH_TWILIO_MESSAGING_SERVICE_SID into *from and
 * *service, and sets the other one to NULL. An empty variable counts as
 * unset. The two are one choice: a fallback's view that sets either one
 * takes neither from the primary.
 */
static int
nh_twilio_sender(const nh_config_t *cfg, const char **from,
    const char **service, char *err, size_t errlen)
{
    const char  *f, *s;

    f = nh_config_get_own(cfg, "NH_TWILIO_FROM");
    s = nh_config_get_own(cfg, "NH_TWILIO_MESSAGING_SERVICE_SID");

    if (f != NULL || s != NULL) {
        f = f != NULL ? f : "";
        s = s != NULL ? s : "";

    } else {
        f = nh_config_get(cfg, "NH_TWILIO_FROM", "");
        s = nh_config_get(cfg, "NH_TWILIO_MESSAGING_SERVICE_SID", "");
    }

    if (f[0] != '\0' && s[0] != '\0') {
        snprintf(err, errlen, "NH_TWILIO_FROM and "
                 "NH_TWILIO_MESSAGING_SERVICE_SID are both set: set only "
                 "one of them");
        return NH_ERROR;
    }

    if (s[0] != '\0') {
        if (nh_twilio_check_sid(s, "MG") != 0) {
            snprintf(err, errlen, "NH_TWILIO_MESSAGING_SERVICE_SID \"%s\" is "
                     "invalid: expected \"MG\" and 32 hex digits", s);
            return NH_ERROR;
        }

        *from = NULL;
        *service = s;
        return NH_OK;
    }

    if (f[0] == '\0') {
        f = NH_TWILIO_DEFAULT_FROM;
    }

    if (nh_twilio_check_from(f) != 0) {
        snprintf(err, errlen, "NH_TWILIO_FROM \"%s\" is invalid: expected "
                 "an E.164 number (+14155550100), a short code of 3 to 8 "
                 "digits or an alphanumeric sender ID of up to %d "
                 "characters", f, NH_TWILIO_SENDER_ID_MAX);
        return NH_ERROR;
    }

    *from = f;
    *service = NULL;
    return NH_OK;
}


/* Copies the string to.phone of d into phone when it is valid E.164. */
static int
nh_twilio_phone(const nh_delivery_t *d, char *phone, size_t size)
{
    cJSON   *to, *item;
    size_t   len;
    int      rc;

    rc = -1;
    to = d->to_json != NULL ? cJSON_Parse(d->to_json) : NULL;
    item = cJSON_GetObjectItemCaseSensitive(to, "phone");

    if (cJSON_IsString(item)) {
        len = strlen(item->valuestring);
        if (len < size && nh_phone_is_e164(item->valuestring, len)) {
            memcpy(phone, item->valuestring, len + 1);
            rc = 0;
        }
    }

    cJSON_Delete(to);
    return rc;
}


/*
 * Writes "HTTP <status> <code>: <message>", leaving out what the reply did
 * not have. Without a JSON error body the reason is the first line of the
 * body.
 */
static void
nh_twilio_error_text(const nh_http_request_t *req, long code,
    const char *message, char *out, size_t size)
{
    char    excerpt[NH_TWILIO_BODY_EXCERPT + 1];
    size_t  i;

    if (code != 0 && message[0] != '\0') {
        snprintf(out, size, "HTTP %ld %ld: %s", req->status, code, message);
        return;
    }

    if (code != 0) {
        snprintf(out, size, "HTTP %ld %ld", req->status, code);
        return;
    }

    if (message[0] != '\0') {
        snprintf(out, size, "HTTP %ld: %s", req->status, message);
        return;
    }

    for (i = 0; i < req->body_len && i < NH_TWILIO_BODY_EXCERPT; i++) {
        if (req->body[i] == '\r' || req->body[i] == '\n') {
            break;
        }

        excerpt[i] = req->body[i];
    }

    excerpt[i] = '\0';

    if (i == 0) {
        snprintf(out, size, "HTTP %ld", req->status);
        return;
    }

    snprintf(out, size, "HTTP %ld: %s", req->status, excerpt);
}


static int
nh_twilio_check_url(const char *url, int allow_userinfo)
{
    const char  *host, *end, *at;

    if (strncasecmp(url, "http://", 7) == 0) {
        host = url + 7;
    } else if (strncasecmp(url, "https://", 8) == 0) {
        host = url + 8;
    } else {
        return -1;
    }

    end = host + strcspn(host, "/?#");
    at = memchr(host, '@', (size_t) (end - host));

    if (at != NULL) {
        /* User information would be a credential in the logged URL. */
        if (!allow_userinfo) {
            return -1;
        }

        host = at + 1;
    }

    if (end == host) {
        return -1;
    }

    return 0;
}


static int
nh_twilio_check_sid(const char *sid, const char *prefix)
{
    size_t  i;

    if (strlen(sid) != NH_TWILIO_SID_LEN || strncmp(sid, prefix, 2) != 0) {
        return -1;
    }

    for (i = 2; i < NH_TWILIO_SID_LEN; i++) {
        if (!((sid[i] >= '0' && sid[i] <= '9')
              || (sid[i] >= 'a' && sid[i] <= 'f')
              || (sid[i] >= 'A' && sid[i] <= 'F')))
        {
            return -1;
        }
    }

    return 0;
}


/*
 * Accepts an E.164 number, a short code (3 to 8 digits) or an
 * alphanumeric sender ID (1 to 11 letters, digits and spaces with at
 * least one letter). NOTE: Twilio's other sender forms, such as
 * "whatsapp:+..." channel addresses, are rejected.
 */
static int
nh_twilio_check_from(const char *from)
{
    size_t  len, i, digits, letters;

    len = strlen(from);

    if (from[0] == '+') {
        return nh_phone_is_e164(from, len) ? 0 : -1;
    }

    if (len == 0 || len > NH_TWILIO_SENDER_ID_MAX) {
        return -1;
    }

    digits = 0;
    letters = 0;

    for (i = 0; i < len; i++) {
        if (from[i] >= '0' && from[i] <= '9') {
            digits++;
        } else if ((from[i] >= 'a' && from[i] <= 'z')
                   || (from[i] >= 'A' && from[i] <= 'Z'))
        {
            letters++;
        } else if (from[i] != ' ') {
            return -1;
        }
    }

    if (letters == 0) {
        return (digits == len && len >= 3 && len <= 8) ? 0 : -1;
    }

    return 0;
}
