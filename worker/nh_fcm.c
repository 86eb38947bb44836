#include "nh_fcm.h"

#include "nh_crypto.h"
#include "nh_error.h"
#include "nh_fcm_errors.h"
#include "nh_json.h"
#include "nh_log.h"
#include "nh_time.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>


#define NH_FCM_DEFAULT_URL        "http://127.0.0.1:8482"
#define NH_FCM_SCOPE              \
    "https://www.googleapis.com/auth/firebase.messaging"
/* The grant type of RFC 7523, percent-encoded for a form body. */
#define NH_FCM_GRANT_TYPE         \
    "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer"
/* Lifetime asked for in the JWT; Google's token endpoint allows at most
 * one hour. */
#define NH_FCM_JWT_LIFETIME_S     3600
#define NH_FCM_TOKEN_TIMEOUT_MS   5000
#define NH_FCM_TOKEN_CONNECT_MS   2000
/* A token is renewed this long before it expires, or at half its lifetime
 * when that is shorter than twice this. */
#define NH_FCM_TOKEN_MARGIN_S     60
/* After a failed token fetch, no new fetch starts for this long. */
#define NH_FCM_FETCH_RETRY_MS     1000
/* Largest service-account file and token reply read. */
#define NH_FCM_FILE_MAX           (64 * 1024)
#define NH_FCM_REPLY_MAX          (64 * 1024)
#define NH_FCM_BODY_EXCERPT       200


struct nh_fcm_s {
    char      *base_url;          /* NH_FCM_URL without a trailing '/' */
    char      *send_url;
    char      *credentials_file;
    char      *project_id;
    char      *client_email;
    char      *token_uri;
    char      *user_agent;
    EVP_PKEY  *key;

    char      *access_token;      /* NULL when none is cached */
    int64_t    token_refresh_ms;  /* monotonic time to fetch a new one */
    int64_t    fetch_retry_ms;    /* no fetch before this after a failure */
    char       fetch_error[NH_OUTCOME_ERROR_MAX];
};

typedef struct {
    char    *data;
    size_t   len;
    size_t   size;
} nh_fcm_buffer_t;


static int nh_fcm_check_url(const char *url);
static int nh_fcm_read_credentials(nh_fcm_t *fcm, const char *path,
    char *err, size_t errlen);
static char *nh_fcm_read_file(const char *path, char *err, size_t errlen);
static int nh_fcm_access_token(nh_fcm_t *fcm, const char **token);
static int nh_fcm_fetch_token(nh_fcm_t *fcm);
static char *nh_fcm_make_jwt(nh_fcm_t *fcm);
static char *nh_fcm_base64url(const unsigned char *in, size_t len);
static int nh_fcm_parse_token_reply(nh_fcm_t *fcm, long status,
    const nh_fcm_buffer_t *reply);
static size_t nh_fcm_write(char *data, size_t size, size_t n, void *ctx);
static void nh_fcm_drop_token(nh_fcm_t *fcm);
static int nh_fcm_data_strings(const char *data, const char *id,
    cJSON **out);
static const char *nh_fcm_request_token(const nh_http_request_t *req);
static void nh_fcm_excerpt(const char *body, size_t len, char *out,
    size_t size);
static void nh_fcm_free_secret(char *s);


int
nh_fcm_create(const nh_config_t *cfg, const char *user_agent,
    nh_fcm_t **out, char *err, size_t errlen)
{
    nh_fcm_t    *fcm;
    const char  *url, *path;
    size_t       len;
    int          rc;

    url = nh_config_get(cfg, "NH_FCM_URL", NH_FCM_DEFAULT_URL);
    path = nh_config_get(cfg, "NH_FCM_CREDENTIALS_FILE", "");

    if (nh_fcm_check_url(url) != 0) {
        /* A URL with user information may contain a password, so only
         * a URL without '@' is quoted back. */
        snprintf(err, errlen, "NH_FCM_URL \"%s\" is invalid: expected "
                 "http:// or https:// and a host, without user "
                 "information", strchr(url, '@') == NULL ? url : "...");
        return NH_ERROR;
    }

    if (path[0] == '\0') {
        snprintf(err, errlen, "NH_FCM_CREDENTIALS_FILE is not set: name "
                 "the service-account JSON file of the Firebase project");
        return NH_ERROR;
    }

    fcm = calloc(1, sizeof(nh_fcm_t));
    if (fcm == NULL) {
        snprintf(err, errlen, "out of memory");
        return NH_ENOMEM;
    }

    fcm->base_url = strdup(url);
    fcm->credentials_file = strdup(path);
    fcm->user_agent = strdup(user_agent);
    if (fcm->base_url == NULL || fcm->credentials_file == NULL
        || fcm->user_agent == NULL)
    {
        rc = NH_ENOMEM;
        snprintf(err, errlen, "out of memory");
        goto failed;
    }

    len = strlen(fcm->base_url);
    while (len > 0 && fcm->base_url[len - 1] == '/') {
        fcm->base_url[--len] = '\0';
    }

    rc = nh_fcm_read_credentials(fcm, path, err, errlen);
    if (rc != NH_OK) {
        goto failed;
    }

    len += sizeof("/v1/projects/") + strlen(fcm->project_id)
           + sizeof("/messages:send");
    fcm->send_url = malloc(len);
    if (fcm->send_url == NULL) {
        rc = NH_ENOMEM;
        snprintf(err, errlen, "out of memory");
        goto failed;
    }

    snprintf(fcm->send_url, len, "%s/v1/projects/%s/messages:send",
             fcm->base_url, fcm->project_id);

    *out = fcm;
    return NH_OK;

failed:

    nh_fcm_destroy(fcm);
    return rc;
}


void
nh_fcm_destroy(nh_fcm_t *fcm)
{
    if (fcm == NULL) {
        return;
    }

    nh_fcm_drop_token(fcm);
    EVP_PKEY_free(fcm->key);

    free(fcm->base_url);
    free(fcm->send_url);
    free(fcm->credentials_file);
    free(fcm->project_id);
    free(fcm->client_email);
    free(fcm->token_uri);
    free(fcm->user_agent);
    free(fcm);
}


void
nh_fcm_provider(nh_fcm_t *fcm, nh_provider_t *provider)
{
    provider->name = "fcm";
    provider->channel = "PUSH";
    provider->ctx = fcm;
    provider->targets = nh_fcm_targets;
    provider->build = nh_fcm_build;
    provider->classify = nh_fcm_classify;
}


void
nh_fcm_log_config(const nh_fcm_t *fcm)
{
    nh_log(NH_LOG_INFO, "fcm configured", "url=%s project_id=%s "
           "client_email=%s token_uri=%s credentials_file=%s",
           nh_log_quote(fcm->base_url), nh_log_quote(fcm->project_id),
           nh_log_quote(fcm->client_email), nh_log_quote(fcm->token_uri),
           nh_log_quote(fcm->credentials_file));
}


int
nh_fcm_targets(void *ctx, const nh_delivery_t *d, char ***targets,
    size_t *n, nh_outcome_t *out)
{
    cJSON       *to, *one, *many, *item;
    char       **list;
    const char  *problem;
    size_t       count, i, j;
    int          rc, seen;

    (void) ctx;

    memset(out, 0, sizeof(nh_outcome_t));
    out->status = NH_OUTCOME_FAILED;

    list = NULL;
    count = 0;
    problem = NULL;
    rc = NH_ERROR;

    to = d->to_json != NULL ? cJSON_Parse(d->to_json) : NULL;
    one = cJSON_GetObjectItemCaseSensitive(to, "deviceToken");
    many = cJSON_GetObjectItemCaseSensitive(to, "deviceTokens");

    if (cJSON_IsString(one)) {
        if (one->valuestring[0] == '\0') {
            problem = "an empty to.deviceToken";
            goto done;
        }

        many = NULL;
        count = 1;
    } else if (cJSON_IsArray(many)) {
        count = (size_t) cJSON_GetArraySize(many);
        if (count == 0) {
            problem = "an empty to.deviceTokens";
            goto done;
        }

        if (count > NH_FCM_TARGETS_MAX) {
            snprintf(out->error, sizeof(out->error), "notification has "
                     "%zu device tokens, more than the %d one notification "
                     "may have", count, NH_FCM_TARGETS_MAX);
            goto done;
        }
    } else {
        problem = "no to.deviceToken or to.deviceTokens";
        goto done;
    }

    list = calloc(count, sizeof(char *));
    if (list == NULL) {
        rc = NH_ENOMEM;
        goto done;
    }

    i = 0;
    item = many != NULL ? many->child : one;

    for ( ; item != NULL; item = many != NULL ? item->next : NULL) {
        if (!cJSON_IsString(item) || item->valuestring[0] == '\0') {
            problem = "a to.deviceTokens item that is not a non-empty string";
            goto done;
        }

        seen = 0;
        for (j = 0; j < i; j++) {
            seen |= strcmp(list[j], item->valuestring) == 0;
        }

        if (seen) {
            continue;
        }

        list[i] = strdup(item->valuestring);
        if (list[i] == NULL) {
            rc = NH_ENOMEM;
            goto done;
        }

        i++;
    }

    *targets = list;
    *n = i;
    list = NULL;
    rc = NH_OK;

done:

    if (problem != NULL) {
        snprintf(out->error, sizeof(out->error), "notification has %s",
                 problem);
    }

    if (list != NULL) {
        for (i = 0; i < count; i++) {
            free(list[i]);
        }

        free(list);
    }

    cJSON_Delete(to);
    return rc;
}


int
nh_fcm_build(void *ctx, const nh_delivery_t *d, nh_http_request_t *req,
    nh_outcome_t *out)
{
    nh_fcm_t    *fcm = ctx;
    cJSON       *root, *message, *notification, *data;
    const char  *token, *missing;
    char        *text, *bearer;
    size_t       len;
    int          rc;

    memset(out, 0, sizeof(nh_outcome_t));
    out->status = NH_OUTCOME_FAILED;

    missing = NULL;
    if (d->target == NULL || d->target[0] == '\0') {
        missing = "device token";
    } else if (d->body == NULL || d->body[0] == '\0') {
        missing = "body";
    }

    if (missing != NULL) {
        snprintf(out->error, sizeof(out->error), "notification has no %s",
                 missing);
        return NH_ERROR;
    }

    rc = nh_fcm_data_strings(d->data, d->notification_id, &data);
    if (rc == NH_ERROR) {
        snprintf(out->error, sizeof(out->error), "notification data is not "
                 "a JSON object");
        return NH_ERROR;
    }

    if (rc != NH_OK) {
        return rc;
    }

    rc = NH_ENOMEM;
    text = NULL;
    bearer = NULL;

    root = cJSON_CreateObject();
    message = cJSON_AddObjectToObject(root, "message");
    if (message == NULL
        || cJSON_AddStringToObject(message, "token", d->target) == NULL)
    {
        goto done;
    }

    notification = cJSON_AddObjectToObject(message, "notification");
    if (notification == NULL
        || (d->subject != NULL
            && cJSON_AddStringToObject(notification, "title", d->subject)
               == NULL)
        || cJSON_AddStringToObject(notification, "body", d->body) == NULL)
    {
        goto done;
    }

    cJSON_AddItemToObject(message, "data", data);
    data = NULL;

    text = cJSON_PrintUnformatted(root);
    if (text == NULL) {
        goto done;
    }

    rc = nh_fcm_access_token(fcm, &token);
    if (rc != NH_OK) {
        out->transient = 1;
        snprintf(out->error, sizeof(out->error), "%s", fcm->fetch_error);
        rc = NH_EAGAIN;
        goto done;
    }

    len = sizeof("Bearer ") + strlen(token);
    bearer = malloc(len);
    if (bearer == NULL) {
        rc = NH_ENOMEM;
        goto done;
    }

    snprintf(bearer, len, "Bearer %s", token);

    rc = NH_ENOMEM;
    if (nh_http_request_set_target(req, fcm->send_url, NULL, NULL) != NH_OK
        || nh_http_request_add_header(req, "Authorization", bearer) != NH_OK
        || nh_http_request_set_content(req, "application/json; charset=UTF-8",
                                       text, strlen(text)) != NH_OK)
    {
        goto done;
    }

    rc = NH_OK;

done:

    nh_fcm_free_secret(bearer);
    if (text != NULL) {
        /* The body contains the message content. */
        memset(text, 0, strlen(text));
        cJSON_free(text);
    }

    cJSON_Delete(data);
    cJSON_Delete(root);
    return rc;
}


void
nh_fcm_classify(void *ctx, const nh_http_request_t *req, nh_outcome_t *out)
{
    nh_fcm_t                   *fcm = ctx;
    const nh_fcm_error_rule_t  *rule;
    const char                 *detail, *used;
    cJSON                      *json, *name;
    char                        code[NH_FCM_CODE_MAX];
    /* Leaves room for "HTTP <status> <code>: " in the error text. */
    char                        message[NH_OUTCOME_ERROR_MAX - 100];

    memset(out, 0, sizeof(nh_outcome_t));
    out->http_status = req->status;
    out->duration_ms = req->duration_ms;

    if (req->code != CURLE_OK) {
        rule = nh_fcm_error_classify(0, NULL);
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
        name = cJSON_GetObjectItemCaseSensitive(json, "name");
        if (cJSON_IsString(name) && name->valuestring[0] != '\0') {
            snprintf(out->provider_message_id,
                     sizeof(out->provider_message_id), "%s",
                     name->valuestring);
        }

        cJSON_Delete(json);
        return;
    }

    out->status = NH_OUTCOME_FAILED;

    if (nh_fcm_error_parse(req->body, req->body_len, code, message,
                           sizeof(message)) != 0)
    {
        nh_fcm_excerpt(req->body, req->body_len, message, sizeof(message));
    }

    rule = nh_fcm_error_classify(req->status, code);
    out->transient = rule->transient;
    out->unregistered = rule->unregistered;
    out->retry_after_ms = nh_http_retry_after_ms(req);

    if (rule->reauthenticate) {
        /* Another request may have replaced the token already; only the
         * token this request used is dropped. */
        used = nh_fcm_request_token(req);
        if (used != NULL && fcm->access_token != NULL
            && strcmp(used, fcm->access_token) == 0)
        {
            nh_fcm_drop_token(fcm);
        }

        out->resend = 1;
    }

    if (code[0] != '\0' && message[0] != '\0') {
        snprintf(out->error, sizeof(out->error), "HTTP %ld %s: %s",
                 req->status, code, message);
    } else if (code[0] != '\0' || message[0] != '\0') {
        snprintf(out->error, sizeof(out->error), "HTTP %ld: %s",
                 req->status, code[0] != '\0' ? code : message);
    } else {
        snprintf(out->error, sizeof(out->error), "HTTP %ld", req->status);
    }
}


/*
 * Returns the access token, fetching a new one when none is cached or the
 * cached one is due. Returns 0, or NH_ERROR with the reason in
 * fcm->fetch_error.
 */
static int
nh_fcm_access_token(nh_fcm_t *fcm, const char **token)
{
    int64_t  now;

    now = nh_time_monotonic_ms();

    if (fcm->access_token != NULL && now < fcm->token_refresh_ms) {
        *token = fcm->access_token;
        return NH_OK;
    }

    if (now < fcm->fetch_retry_ms) {
        return NH_ERROR;
    }

    nh_fcm_drop_token(fcm);

    if (nh_fcm_fetch_token(fcm) != NH_OK) {
        fcm->fetch_retry_ms = nh_time_monotonic_ms() + NH_FCM_FETCH_RETRY_MS;
        nh_log(NH_LOG_ERROR, "fcm access token request failed",
               "token_uri=%s retry_in_ms=%d error=%s",
               nh_log_quote(fcm->token_uri), NH_FCM_FETCH_RETRY_MS,
               nh_log_quote(fcm->fetch_error));
        return NH_ERROR;
    }

    *token = fcm->access_token;
    return NH_OK;
}


/*
 * Posts a signed JWT to token_uri and caches the access token of the
 * reply. Blocks for at most NH_FCM_TOKEN_TIMEOUT_MS.
 */
static int
nh_fcm_fetch_token(nh_fcm_t *fcm)
{
    nh_fcm_buffer_t   reply;
    CURL             *easy;
    CURLcode          code;
    char             *jwt, *form;
    char              error[CURL_ERROR_SIZE];
    size_t            len;
    long              status;
    int64_t           started;
    int               rc, bad;

    memset(&reply, 0, sizeof(nh_fcm_buffer_t));
    easy = NULL;
    form = NULL;
    rc = NH_ERROR;

    jwt = nh_fcm_make_jwt(fcm);
    if (jwt == NULL) {
        snprintf(fcm->fetch_error, sizeof(fcm->fetch_error),
                 "access token request failed: signing the JWT failed");
        goto done;
    }

    /* A JWT is base64url and '.', which need no percent-encoding. */
    len = sizeof("grant_type=" NH_FCM_GRANT_TYPE "&assertion=") + strlen(jwt);
    form = malloc(len);
    easy = curl_easy_init();
    if (form == NULL || easy == NULL) {
        snprintf(fcm->fetch_error, sizeof(fcm->fetch_error),
                 "access token request failed: out of memory");
        goto done;
    }

    snprintf(form, len, "grant_type=%s&assertion=%s", NH_FCM_GRANT_TYPE,
             jwt);

    error[0] = '\0';
    bad = 0;
    bad |= curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(easy, CURLOPT_URL, fcm->token_uri) != CURLE_OK;
    bad |= curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https")
           != CURLE_OK;
    bad |= curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
                            (long) NH_FCM_TOKEN_CONNECT_MS) != CURLE_OK;
    bad |= curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS,
                            (long) NH_FCM_TOKEN_TIMEOUT_MS) != CURLE_OK;
    bad |= curl_easy_setopt(easy, CURLOPT_USERAGENT, fcm->user_agent)
           != CURLE_OK;
    bad |= curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, error) != CURLE_OK;
    bad |= curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, nh_fcm_write)
           != CURLE_OK;
    bad |= curl_easy_setopt(easy, CURLOPT_WRITEDATA, &reply) != CURLE_OK;
    bad |= curl_easy_setopt(easy, CURLOPT_POSTFIELDS, form) != CURLE_OK;

    if (bad) {
        snprintf(fcm->fetch_error, sizeof(fcm->fetch_error),
                 "access token request failed: libcurl rejected an option");
        goto done;
    }

    nh_log(NH_LOG_INFO, "fcm access token requested", "token_uri=%s",
           nh_log_quote(fcm->token_uri));

    started = nh_time_monotonic_ms();
    code = curl_easy_perform(easy);

    if (code != CURLE_OK) {
        snprintf(fcm->fetch_error, sizeof(fcm->fetch_error),
                 "access token request failed: %s",
                 error[0] != '\0' ? error : curl_easy_strerror(code));
        goto done;
    }

    status = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);

    rc = nh_fcm_parse_token_reply(fcm, status, &reply);
    if (rc == NH_OK) {
        nh_log(NH_LOG_INFO, "fcm access token received", "duration_ms=%lld "
               "refresh_in_ms=%lld",
               (long long) (nh_time_monotonic_ms() - started),
               (long long) (fcm->token_refresh_ms - nh_time_monotonic_ms()));
    }

done:

    curl_easy_cleanup(easy);
    nh_fcm_free_secret(form);
    nh_fcm_free_secret(jwt);

    if (reply.data != NULL) {
        memset(reply.data, 0, reply.len);
        free(reply.data);
    }

    return rc;
}


/*
 * Reads the token endpoint's reply: 200 with {"access_token",
 * "expires_in", "token_type": "Bearer"}, or an OAuth2 error
 * {"error", "error_description"}.
 */
static int
nh_fcm_parse_token_reply(nh_fcm_t *fcm, long status,
    const nh_fcm_buffer_t *reply)
{
    cJSON   *json, *token, *expires, *type, *error, *description;
    char     excerpt[NH_FCM_BODY_EXCERPT + 1];
    double   lifetime_s, refresh_s;
    int      rc;

    json = cJSON_ParseWithLength(reply->data != NULL ? reply->data : "",
                                 reply->len);
    rc = NH_ERROR;

    if (status != 200) {
        error = cJSON_GetObjectItemCaseSensitive(json, "error");
        description = cJSON_GetObjectItemCaseSensitive(json,
                                                       "error_description");

        if (cJSON_IsString(error)) {
            snprintf(fcm->fetch_error, sizeof(fcm->fetch_error),
                     "access token request failed: HTTP %ld: %s%s%s", status,
                     error->valuestring,
                     cJSON_IsString(description) ? ": " : "",
                     cJSON_IsString(description) ? description->valuestring
                                                 : "");
        } else {
            nh_fcm_excerpt(reply->data, reply->len, excerpt,
                           sizeof(excerpt));
            snprintf(fcm->fetch_error, sizeof(fcm->fetch_error),
                     "access token request failed: HTTP %ld%s%s", status,
                     excerpt[0] != '\0' ? ": " : "", excerpt);
        }

        goto done;
    }

    token = cJSON_GetObjectItemCaseSensitive(json, "access_token");
    expires = cJSON_GetObjectItemCaseSensitive(json, "expires_in");
    type = cJSON_GetObjectItemCaseSensitive(json, "token_type");

    if (!cJSON_IsString(token) || token->valuestring[0] == '\0'
        || !cJSON_IsNumber(expires) || expires->valuedouble <= 0
        || (type != NULL
            && (!cJSON_IsString(type)
                || strcasecmp(type->valuestring, "Bearer") != 0)))
    {
        snprintf(fcm->fetch_error, sizeof(fcm->fetch_error),
                 "access token request failed: the reply has no bearer "
                 "access_token and positive expires_in");
        goto done;
    }

    fcm->access_token = strdup(token->valuestring);
    if (fcm->access_token == NULL) {
        snprintf(fcm->fetch_error, sizeof(fcm->fetch_error),
                 "access token request failed: out of memory");
        goto done;
    }

    lifetime_s = expires->valuedouble;
    if (lifetime_s > 86400) {
        lifetime_s = 86400;
    }

    if (lifetime_s >= 2 * NH_FCM_TOKEN_MARGIN_S) {
        refresh_s = lifetime_s - NH_FCM_TOKEN_MARGIN_S;
    } else {
        refresh_s = lifetime_s / 2;
    }

    fcm->token_refresh_ms = nh_time_monotonic_ms()
                            + (int64_t) (refresh_s * 1000);
    fcm->fetch_error[0] = '\0';
    rc = NH_OK;

done:

    cJSON_Delete(json);
    return rc;
}


/* Returns the JWT assertion of the grant, or NULL when OpenSSL fails. */
static char *
nh_fcm_make_jwt(nh_fcm_t *fcm)
{
    static const char  header[] = "{\"alg\":\"RS256\",\"typ\":\"JWT\"}";
    EVP_MD_CTX        *md;
    cJSON             *claims;
    unsigned char     *signature;
    char              *claims_text, *header_b64, *claims_b64, *sig_b64;
    char              *jwt, *input;
    size_t             signature_len, len;
    time_t             now;

    md = NULL;
    signature = NULL;
    claims_text = NULL;
    header_b64 = NULL;
    claims_b64 = NULL;
    sig_b64 = NULL;
    input = NULL;
    jwt = NULL;

    now = time(NULL);

    claims = cJSON_CreateObject();
    if (claims == NULL
        || cJSON_AddStringToObject(claims, "iss", fcm->client_email) == NULL
        || cJSON_AddStringToObject(claims, "scope", NH_FCM_SCOPE) == NULL
        || cJSON_AddStringToObject(claims, "aud", fcm->token_uri) == NULL
        || cJSON_AddNumberToObject(claims, "iat", (double) now) == NULL
        || cJSON_AddNumberToObject(claims, "exp",
                                   (double) (now + NH_FCM_JWT_LIFETIME_S))
           == NULL)
    {
        goto done;
    }

    claims_text = cJSON_PrintUnformatted(claims);
    if (claims_text == NULL) {
        goto done;
    }

    header_b64 = nh_fcm_base64url((const unsigned char *) header,
                                  sizeof(header) - 1);
    claims_b64 = nh_fcm_base64url((const unsigned char *) claims_text,
                                  strlen(claims_text));
    if (header_b64 == NULL || claims_b64 == NULL) {
        goto done;
    }

    /* The signing input is "<header>.<claims>". */
    len = strlen(header_b64) + 1 + strlen(claims_b64) + 1;
    input = malloc(len);
    if (input == NULL) {
        goto done;
    }

    snprintf(input, len, "%s.%s", header_b64, claims_b64);

    md = EVP_MD_CTX_new();
    if (md == NULL
        || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, fcm->key) != 1
        || EVP_DigestSign(md, NULL, &signature_len,
                          (const unsigned char *) input, strlen(input)) != 1)
    {
        goto done;
    }

    signature = malloc(signature_len);
    if (signature == NULL
        || EVP_DigestSign(md, signature, &signature_len,
                          (const unsigned char *) input, strlen(input)) != 1)
    {
        goto done;
    }

    sig_b64 = nh_fcm_base64url(signature, signature_len);
    if (sig_b64 == NULL) {
        goto done;
    }

    len = strlen(input) + 1 + strlen(sig_b64) + 1;
    jwt = malloc(len);
    if (jwt != NULL) {
        snprintf(jwt, len, "%s.%s", input, sig_b64);
    }

done:

    EVP_MD_CTX_free(md);
    cJSON_Delete(claims);
    cJSON_free(claims_text);
    free(signature);
    free(header_b64);
    free(claims_b64);
    free(sig_b64);
    free(input);

    return jwt;
}


static char *
nh_fcm_base64url(const unsigned char *in, size_t len)
{
    char  *out;

    out = malloc(4 * ((len + 2) / 3) + 1);
    if (out != NULL) {
        nh_base64url_encode(in, len, out);
    }

    return out;
}


static size_t
nh_fcm_write(char *data, size_t size, size_t n, void *ctx)
{
    nh_fcm_buffer_t  *buf = ctx;
    size_t            len = size * n;
    char             *grown;

    if (buf->len + len + 1 > NH_FCM_REPLY_MAX) {
        /* A short count makes libcurl fail the transfer. */
        return 0;
    }

    if (buf->len + len + 1 > buf->size) {
        grown = malloc(NH_FCM_REPLY_MAX);
        if (grown == NULL) {
            return 0;
        }

        if (buf->data != NULL) {
            memcpy(grown, buf->data, buf->len);
            memset(buf->data, 0, buf->len);
            free(buf->data);
        }

        buf->data = grown;
        buf->size = NH_FCM_REPLY_MAX;
    }

    memcpy(buf->data + buf->len, data, len);
    buf->len += len;
    buf->data[buf->len] = '\0';

    return len;
}


static void
nh_fcm_drop_token(nh_fcm_t *fcm)
{
    nh_fcm_free_secret(fcm->access_token);
    fcm->access_token = NULL;
    fcm->token_refresh_ms = 0;
}


/*
 * Makes FCM's data object from the notification's: each member's value as
 * a string, and "notificationId". Returns 0 and the object in *out,
 * NH_ERROR when data is not a JSON object, or NH_ENOMEM.
 */
static int
nh_fcm_data_strings(const char *data, const char *id, cJSON **out)
{
    cJSON  *in, *result, *item;
    char   *text;
    int     rc;

    in = NULL;
    rc = NH_ENOMEM;

    result = cJSON_CreateObject();
    if (result == NULL) {
        return NH_ENOMEM;
    }

    if (data != NULL) {
        in = cJSON_Parse(data);
        if (!cJSON_IsObject(in)) {
            rc = NH_ERROR;
            goto failed;
        }
    }

    cJSON_ArrayForEach(item, in) {
        if (strcmp(item->string, "notificationId") == 0) {
            continue;
        }

        if (cJSON_IsString(item)) {
            if (cJSON_AddStringToObject(result, item->string,
                                        item->valuestring) == NULL)
            {
                goto failed;
            }

            continue;
        }

        /* Numbers in the canonical spelling the API uses for idempotency;
         * true, false, null, arrays and objects as compact JSON. */
        if (nh_json_canonical(item, &text, NULL) != 0) {
            goto failed;
        }

        if (cJSON_AddStringToObject(result, item->string, text) == NULL) {
            free(text);
            goto failed;
        }

        free(text);
    }

    if (cJSON_AddStringToObject(result, "notificationId", id) == NULL) {
        goto failed;
    }

    cJSON_Delete(in);
    *out = result;
    return NH_OK;

failed:

    cJSON_Delete(in);
    cJSON_Delete(result);
    return rc;
}


/* Returns the bearer token in req's Authorization header, or NULL. */
static const char *
nh_fcm_request_token(const nh_http_request_t *req)
{
    static const char   prefix[] = "Authorization: Bearer ";
    struct curl_slist  *item;

    for (item = req->headers; item != NULL; item = item->next) {
        if (strncmp(item->data, prefix, sizeof(prefix) - 1) == 0) {
            return item->data + sizeof(prefix) - 1;
        }
    }

    return NULL;
}


/* Copies the first line of a reply body, at most size - 1 bytes. */
static void
nh_fcm_excerpt(const char *body, size_t len, char *out, size_t size)
{
    size_t  i;

    for (i = 0; body != NULL && i < len && i + 1 < size; i++) {
        if (body[i] == '\r' || body[i] == '\n') {
            break;
        }

        out[i] = body[i];
    }

    if (size > 0) {
        out[i] = '\0';
    }
}


static int
nh_fcm_check_url(const char *url)
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


/*
 * Reads the service-account file: project_id, client_email, private_key
 * and token_uri. Messages name the file and the field, never the key.
 */
static int
nh_fcm_read_credentials(nh_fcm_t *fcm, const char *path, char *err,
    size_t errlen)
{
    static const char  *fields[] = {
        "project_id", "client_email", "private_key", "token_uri"
    };
    cJSON              *json, *item;
    char               *text;
    const char         *value[4];
    BIO                *bio;
    size_t              i;
    int                 rc;

    text = nh_fcm_read_file(path, err, errlen);
    if (text == NULL) {
        return NH_ERROR;
    }

    rc = NH_ERROR;
    json = cJSON_Parse(text);

    if (!cJSON_IsObject(json)) {
        snprintf(err, errlen, "NH_FCM_CREDENTIALS_FILE \"%s\" is not a JSON "
                 "object", path);
        goto done;
    }

    for (i = 0; i < 4; i++) {
        item = cJSON_GetObjectItemCaseSensitive(json, fields[i]);
        if (!cJSON_IsString(item) || item->valuestring[0] == '\0') {
            snprintf(err, errlen, "NH_FCM_CREDENTIALS_FILE \"%s\" has no "
                     "\"%s\" string", path, fields[i]);
            goto done;
        }

        value[i] = item->valuestring;
    }

    /* The project id goes into the URL path. */
    if (strspn(value[0], "abcdefghijklmnopqrstuvwxyz"
                         "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")
        != strlen(value[0]))
    {
        snprintf(err, errlen, "NH_FCM_CREDENTIALS_FILE \"%s\": project_id "
                 "\"%s\" is invalid: expected letters, digits, '-', '_' and "
                 "'.'", path, value[0]);
        goto done;
    }

    if (nh_fcm_check_url(value[3]) != 0) {
        snprintf(err, errlen, "NH_FCM_CREDENTIALS_FILE \"%s\": token_uri is "
                 "invalid: expected http:// or https:// and a host, without "
                 "user information", path);
        goto done;
    }

    bio = BIO_new_mem_buf(value[2], -1);
    fcm->key = bio != NULL ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL)
                           : NULL;
    BIO_free(bio);

    if (fcm->key == NULL || EVP_PKEY_get_base_id(fcm->key) != EVP_PKEY_RSA) {
        snprintf(err, errlen, "NH_FCM_CREDENTIALS_FILE \"%s\": private_key "
                 "is not an RSA private key in PEM", path);
        goto done;
    }

    fcm->project_id = strdup(value[0]);
    fcm->client_email = strdup(value[1]);
    fcm->token_uri = strdup(value[3]);
    if (fcm->project_id == NULL || fcm->client_email == NULL
        || fcm->token_uri == NULL)
    {
        snprintf(err, errlen, "out of memory");
        rc = NH_ENOMEM;
        goto done;
    }

    rc = NH_OK;

done:

    cJSON_Delete(json);
    nh_fcm_free_secret(text);
    return rc;
}


/* Returns the file's text (malloc'ed, NUL-terminated), or NULL and err. */
static char *
nh_fcm_read_file(const char *path, char *err, size_t errlen)
{
    FILE    *f;
    char    *text;
    size_t   len;

    f = fopen(path, "r");
    if (f == NULL) {
        snprintf(err, errlen, "NH_FCM_CREDENTIALS_FILE \"%s\" cannot be "
                 "opened: %s", path, strerror(errno));
        return NULL;
    }

    text = malloc(NH_FCM_FILE_MAX + 1);
    if (text == NULL) {
        fclose(f);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }

    len = fread(text, 1, NH_FCM_FILE_MAX + 1, f);

    if (ferror(f) || len > NH_FCM_FILE_MAX) {
        snprintf(err, errlen, "NH_FCM_CREDENTIALS_FILE \"%s\" cannot be "
                 "read: %s", path, ferror(f) ? strerror(errno)
                                             : "larger than 64 KiB");
        fclose(f);
        nh_fcm_free_secret(text);
        return NULL;
    }

    fclose(f);
    text[len] = '\0';
    return text;
}


static void
nh_fcm_free_secret(char *s)
{
    if (s == NULL) {
        return;
    }

    memset(s, 0, strlen(s));
    free(s);
}
