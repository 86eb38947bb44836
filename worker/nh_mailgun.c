#include "nh_mailgun.h"

#include "nh_error.h"
#include "nh_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>


#define NH_MAILGUN_DEFAULT_URL     "http://127.0.0.1:8481"
#define NH_MAILGUN_DEFAULT_KEY     "key-local-sandbox"
#define NH_MAILGUN_DEFAULT_DOMAIN  "sandbox.notifyhub.local"
#define NH_MAILGUN_DEFAULT_FROM    \
    "NotifyHub <noreply@sandbox.notifyhub.local>"

/* The part of a non-JSON error body that goes into the error text. */
#define NH_MAILGUN_BODY_EXCERPT    200


struct nh_mailgun_s {
    char  *base_url;      /* NH_MAILGUN_URL without a trailing '/' */
    char  *messages_url;
    char  *api_key;
    char  *domain;
    char  *from;
};


static int nh_mailgun_check_url(const char *url);
static int nh_mailgun_check_domain(const char *domain);
static void nh_mailgun_error_text(const nh_http_request_t *req, char *out,
    size_t size);


int
nh_mailgun_create(const nh_config_t *cfg, nh_mailgun_t **out, char *err,
    size_t errlen)
{
    nh_mailgun_t  *mg;
    const char    *url, *key, *domain, *from;
    size_t         len;
    int            rc;

    url = nh_config_get(cfg, "NH_MAILGUN_URL", NH_MAILGUN_DEFAULT_URL);
    key = nh_config_get(cfg, "NH_MAILGUN_API_KEY", NH_MAILGUN_DEFAULT_KEY);
    domain = nh_config_get(cfg, "NH_MAILGUN_DOMAIN",
                           NH_MAILGUN_DEFAULT_DOMAIN);
    from = nh_config_get(cfg, "NH_MAILGUN_FROM", NH_MAILGUN_DEFAULT_FROM);

    if (nh_mailgun_check_url(url) != 0) {
        /* A URL with user information may contain a password, so only
         * a URL without '@' is quoted back. */
        snprintf(err, errlen, "NH_MAILGUN_URL \"%s\" is invalid: expected "
                 "http:// or https:// and a host, without user "
                 "information", strchr(url, '@') == NULL ? url : "...");
        return NH_ERROR;
    }

    if (key[0] == '\0') {
        snprintf(err, errlen, "NH_MAILGUN_API_KEY is empty");
        return NH_ERROR;
    }

    if (nh_mailgun_check_domain(domain) != 0) {
        snprintf(err, errlen, "NH_MAILGUN_DOMAIN \"%s\" is invalid: "
                 "expected a domain name", domain);
        return NH_ERROR;
    }

    if (from[0] == '\0') {
        snprintf(err, errlen, "NH_MAILGUN_FROM is empty");
        return NH_ERROR;
    }

    mg = calloc(1, sizeof(nh_mailgun_t));
    if (mg == NULL) {
        snprintf(err, errlen, "out of memory");
        return NH_ENOMEM;
    }

    rc = NH_ENOMEM;

    mg->base_url = strdup(url);
    mg->api_key = strdup(key);
    mg->domain = strdup(domain);
    mg->from = strdup(from);
    if (mg->base_url == NULL || mg->api_key == NULL || mg->domain == NULL
        || mg->from == NULL)
    {
        goto failed;
    }

    len = strlen(mg->base_url);
    while (len > 0 && mg->base_url[len - 1] == '/') {
        mg->base_url[--len] = '\0';
    }

    len += sizeof("/v3/") + strlen(domain) + sizeof("/messages");
    mg->messages_url = malloc(len);
    if (mg->messages_url == NULL) {
        goto failed;
    }

    snprintf(mg->messages_url, len, "%s/v3/%s/messages", mg->base_url,
             domain);

    *out = mg;
    return NH_OK;

failed:

    snprintf(err, errlen, "out of memory");
    nh_mailgun_destroy(mg);
    return rc;
}


void
nh_mailgun_destroy(nh_mailgun_t *mg)
{
    if (mg == NULL) {
        return;
    }

    if (mg->api_key != NULL) {
        memset(mg->api_key, 0, strlen(mg->api_key));
    }

    free(mg->base_url);
    free(mg->messages_url);
    free(mg->api_key);
    free(mg->domain);
    free(mg->from);
    free(mg);
}


void
nh_mailgun_provider(nh_mailgun_t *mg, nh_provider_t *provider)
{
    provider->name = "mailgun";
    provider->channel = "EMAIL";
    provider->ctx = mg;
    provider->targets = NULL;
    provider->build = nh_mailgun_build;
    provider->classify = nh_mailgun_classify;
}


void
nh_mailgun_log_config(const nh_mailgun_t *mg)
{
    nh_log(NH_LOG_INFO, "mailgun configured", "url=%s domain=%s from=%s",
           nh_log_quote(mg->base_url), nh_log_quote(mg->domain),
           nh_log_quote(mg->from));
}


int
nh_mailgun_build(void *ctx, const nh_delivery_t *d, nh_http_request_t *req,
    nh_outcome_t *out)
{
    nh_mailgun_t  *mg = ctx;
    const char    *missing;
    int            rc;

    missing = NULL;
    if (d->to == NULL || d->to[0] == '\0') {
        missing = "recipient email address";
    } else if (d->subject == NULL || d->subject[0] == '\0') {
        missing = "subject";
    } else if ((d->body == NULL || d->body[0] == '\0')
               && (d->html == NULL || d->html[0] == '\0'))
    {
        missing = "body";
    }

    if (missing != NULL) {
        memset(out, 0, sizeof(nh_outcome_t));
        out->status = NH_OUTCOME_FAILED;
        snprintf(out->error, sizeof(out->error),
                 "notification has no %s", missing);
        return NH_ERROR;
    }

    rc = nh_http_request_set_target(req, mg->messages_url, "api",
                                    mg->api_key);
    if (rc != NH_OK) {
        return rc;
    }

    if (nh_http_request_add_field(req, "from", mg->from) != NH_OK
        || nh_http_request_add_field(req, "to", d->to) != NH_OK
        || nh_http_request_add_field(req, "subject", d->subject) != NH_OK
        || nh_http_request_add_field(req, "text", d->body) != NH_OK
        || nh_http_request_add_field(req, "html", d->html) != NH_OK
        || nh_http_request_add_field(req, "v:notification_id",
                                     d->notification_id) != NH_OK
        || nh_http_request_add_field(req, "v:tenant_id", d->tenant_id)
           != NH_OK)
    {
        return NH_ENOMEM;
    }

    return NH_OK;
}


void
nh_mailgun_classify(void *ctx, const nh_http_request_t *req,
    nh_outcome_t *out)
{
    cJSON       *json, *id;
    const char  *detail;

    (void) ctx;

    memset(out, 0, sizeof(nh_outcome_t));
    out->http_status = req->status;
    out->duration_ms = req->duration_ms;

    if (req->code != CURLE_OK) {
        out->status = NH_OUTCOME_FAILED;
        out->transient = 1;

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
        id = cJSON_GetObjectItemCaseSensitive(json, "id");
        if (cJSON_IsString(id) && id->valuestring[0] != '\0') {
            snprintf(out->provider_message_id,
                     sizeof(out->provider_message_id), "%s",
                     id->valuestring);
        }

        cJSON_Delete(json);
        return;
    }

    out->status = NH_OUTCOME_FAILED;
    out->transient = (req->status == 429 || req->status >= 500);
    out->retry_after_ms = nh_http_retry_after_ms(req);
    nh_mailgun_error_text(req, out->error, sizeof(out->error));
}


/*
 * Writes "HTTP <status>: <reason>", the reason being the "message" member
 * of a JSON reply, or else the first line of the body.
 */
static void
nh_mailgun_error_text(const nh_http_request_t *req, char *out, size_t size)
{
    cJSON   *json, *message;
    char     excerpt[NH_MAILGUN_BODY_EXCERPT + 1];
    size_t   i;

    json = cJSON_ParseWithLength(req->body, req->body_len);
    message = cJSON_GetObjectItemCaseSensitive(json, "message");

    if (cJSON_IsString(message) && message->valuestring[0] != '\0') {
        snprintf(out, size, "HTTP %ld: %s", req->status,
                 message->valuestring);
        cJSON_Delete(json);
        return;
    }

    cJSON_Delete(json);

    for (i = 0; i < req->body_len && i < NH_MAILGUN_BODY_EXCERPT; i++) {
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
nh_mailgun_check_url(const char *url)
{
    const char  *host, *end;

    if (strncasecmp(url, "http://", 7) == 0) {
        host = url + 7;
    } else if (strncasecmp(url, "https://", 8) == 0) {
        host = url + 8;
    } else {
        return -1;
    }

    end = host + strcspn(host, "/?#");
    if (end == host) {
        return -1;
    }

    /* User information would be a credential in the logged URL. */
    if (memchr(host, '@', (size_t) (end - host)) != NULL) {
        return -1;
    }

    return 0;
}


static int
nh_mailgun_check_domain(const char *domain)
{
    const char  *p;

    if (domain[0] == '\0' || strlen(domain) > 253) {
        return -1;
    }

    for (p = domain; *p != '\0'; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
              || (*p >= '0' && *p <= '9') || *p == '.' || *p == '-'))
        {
            return -1;
        }
    }

    return 0;
}
