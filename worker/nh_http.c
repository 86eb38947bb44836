#include "nh_http.h"

#include "nh_backoff.h"
#include "nh_error.h"
#include "nh_time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* Provider replies are small JSON documents; the rest is dropped. */
#define NH_HTTP_BODY_MAX  (64 * 1024)


struct nh_http_s {
    CURLM              *multi;
    size_t              in_flight;
    long                connect_timeout_ms;
    long                timeout_ms;
    char               *user_agent;
    struct curl_slist  *headers;
};


static size_t nh_http_write(char *data, size_t size, size_t n, void *ctx);
static int nh_http_append(nh_http_request_t *req, const char *s,
    int encode);
static int nh_http_configure(nh_http_t *http, nh_http_request_t *req);
static void nh_http_finish(nh_http_t *http, CURL *easy, CURLcode code);
static void nh_http_free_secret(char *s);
static void nh_http_free_headers(struct curl_slist *headers);


int
nh_http_create(nh_http_t **out, long connect_timeout_ms, long timeout_ms,
    const char *user_agent)
{
    nh_http_t  *http;

    http = calloc(1, sizeof(nh_http_t));
    if (http == NULL) {
        return NH_ENOMEM;
    }

    http->connect_timeout_ms = connect_timeout_ms;
    http->timeout_ms = timeout_ms;

    http->user_agent = strdup(user_agent);
    if (http->user_agent == NULL) {
        goto failed;
    }

    /* libcurl would wait for "100 Continue" before sending a large body;
     * provider requests gain nothing from the extra round trip. */
    http->headers = curl_slist_append(NULL, "Expect:");
    if (http->headers == NULL) {
        goto failed;
    }

    http->multi = curl_multi_init();
    if (http->multi == NULL) {
        goto failed;
    }

    *out = http;
    return NH_OK;

failed:

    curl_slist_free_all(http->headers);
    free(http->user_agent);
    free(http);
    return NH_ENOMEM;
}


void
nh_http_destroy(nh_http_t *http)
{
    if (http == NULL) {
        return;
    }

    curl_multi_cleanup(http->multi);
    curl_slist_free_all(http->headers);
    free(http->user_agent);
    free(http);
}


int
nh_http_request_create(nh_http_request_t **out)
{
    nh_http_request_t  *req;

    req = calloc(1, sizeof(nh_http_request_t));
    if (req == NULL) {
        return NH_ENOMEM;
    }

    *out = req;
    return NH_OK;
}


int
nh_http_request_set_target(nh_http_request_t *req, const char *url,
    const char *username, const char *password)
{
    free(req->url);
    free(req->username);
    nh_http_free_secret(req->password);
    req->url = NULL;
    req->username = NULL;
    req->password = NULL;

    req->url = strdup(url);
    if (req->url == NULL) {
        return NH_ENOMEM;
    }

    if (username != NULL) {
        req->username = strdup(username);
        req->password = strdup(password != NULL ? password : "");

        if (req->username == NULL || req->password == NULL) {
            return NH_ENOMEM;
        }
    }

    return NH_OK;
}


int
nh_http_request_add_field(nh_http_request_t *req, const char *name,
    const char *value)
{
    if (value == NULL) {
        return NH_OK;
    }

    if (req->form_len > 0 && nh_http_append(req, "&", 0) != NH_OK) {
        return NH_ENOMEM;
    }

    if (nh_http_append(req, name, 1) != NH_OK
        || nh_http_append(req, "=", 0) != NH_OK)
    {
        return NH_ENOMEM;
    }

    return nh_http_append(req, value, 1);
}


int
nh_http_request_add_header(nh_http_request_t *req, const char *name,
    const char *value)
{
    struct curl_slist  *list;
    size_t              len;
    char               *line;
    int                 rc;

    len = strlen(name) + strlen(value) + sizeof(": ");
    line = malloc(len);
    if (line == NULL) {
        return NH_ENOMEM;
    }

    snprintf(line, len, "%s: %s", name, value);
    rc = NH_ENOMEM;

    /* The per-request list replaces the engine's, so it repeats the
     * engine's "Expect:" line. */
    if (req->headers == NULL) {
        req->headers = curl_slist_append(NULL, "Expect:");
        if (req->headers == NULL) {
            goto done;
        }
    }

    list = curl_slist_append(req->headers, line);
    if (list == NULL) {
        goto done;
    }

    req->headers = list;
    rc = NH_OK;

done:

    nh_http_free_secret(line);
    return rc;
}


int
nh_http_request_set_content(nh_http_request_t *req,
    const char *content_type, const char *data, size_t len)
{
    char  *form;

    form = malloc(len + 1);
    if (form == NULL) {
        return NH_ENOMEM;
    }

    memcpy(form, data, len);
    form[len] = '\0';

    if (nh_http_request_add_header(req, "Content-Type", content_type)
        != NH_OK)
    {
        free(form);
        return NH_ENOMEM;
    }

    if (req->form != NULL) {
        memset(req->form, 0, req->form_size);
        free(req->form);
    }

    req->form = form;
    req->form_len = len;
    req->form_size = len + 1;

    return NH_OK;
}


void
nh_http_request_free(nh_http_request_t *req)
{
    if (req == NULL) {
        return;
    }

    if (req->easy != NULL) {
        if (req->http != NULL) {
            curl_multi_remove_handle(req->http->multi, req->easy);
            req->http->in_flight--;
        }

        curl_easy_cleanup(req->easy);
    }

    free(req->url);
    free(req->username);
    nh_http_free_secret(req->password);
    nh_http_free_headers(req->headers);
    free(req->body);

    if (req->form != NULL) {
        /* The form contains the message content, which should not stay
         * in freed memory either. */
        memset(req->form, 0, req->form_size);
        free(req->form);
    }

    free(req);
}


int
nh_http_submit(nh_http_t *http, nh_http_request_t *req)
{
    CURLMcode  mc;
    int        rc;

    req->easy = curl_easy_init();
    if (req->easy == NULL) {
        return NH_ENOMEM;
    }

    rc = nh_http_configure(http, req);
    if (rc != NH_OK) {
        goto failed;
    }

    req->status = 0;
    req->code = CURLE_OK;
    req->error[0] = '\0';
    req->body_len = 0;
    req->body_truncated = 0;
    req->started_ms = nh_time_monotonic_ms();

    mc = curl_multi_add_handle(http->multi, req->easy);
    if (mc != CURLM_OK) {
        rc = NH_ERROR;
        goto failed;
    }

    req->http = http;
    http->in_flight++;

    return NH_OK;

failed:

    curl_easy_cleanup(req->easy);
    req->easy = NULL;
    return rc;
}


int
nh_http_run(nh_http_t *http, int timeout_ms, struct curl_waitfd *extra,
    unsigned n_extra)
{
    CURLMsg    *msg;
    CURLMcode   mc;
    int         running, queued;

    mc = curl_multi_poll(http->multi, extra, n_extra, timeout_ms, NULL);
    if (mc != CURLM_OK) {
        return NH_ERROR;
    }

    mc = curl_multi_perform(http->multi, &running);
    if (mc != CURLM_OK) {
        return NH_ERROR;
    }

    for ( ;; ) {
        msg = curl_multi_info_read(http->multi, &queued);
        if (msg == NULL) {
            break;
        }

        if (msg->msg == CURLMSG_DONE) {
            nh_http_finish(http, msg->easy_handle, msg->data.result);
        }
    }

    return NH_OK;
}


int64_t
nh_http_retry_after_ms(const nh_http_request_t *req)
{
    int64_t  delay;

    if (req->retry_after[0] == '\0'
        || nh_backoff_parse_retry_after(req->retry_after, nh_time_now_ms(),
                                        &delay) != 0)
    {
        return 0;
    }

    return delay;
}


size_t
nh_http_in_flight(const nh_http_t *http)
{
    return http->in_flight;
}


static int
nh_http_configure(nh_http_t *http, nh_http_request_t *req)
{
    CURL  *easy = req->easy;
    int    bad = 0;

    /* With several threads (librdkafka's), signals must not be used for
     * timeouts, and the name resolver then runs in its own thread. */
    bad |= curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(easy, CURLOPT_URL, req->url) != CURLE_OK;
    bad |= curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https")
           != CURLE_OK;
    bad |= curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
                            http->connect_timeout_ms) != CURLE_OK;
    bad |= curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, http->timeout_ms)
           != CURLE_OK;
    bad |= curl_easy_setopt(easy, CURLOPT_USERAGENT, http->user_agent)
           != CURLE_OK;
    bad |= curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, req->error)
           != CURLE_OK;
    bad |= curl_easy_setopt(easy, CURLOPT_PRIVATE, req) != CURLE_OK;
    bad |= curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, nh_http_write)
           != CURLE_OK;
    bad |= curl_easy_setopt(easy, CURLOPT_WRITEDATA, req) != CURLE_OK;
    bad |= curl_easy_setopt(easy, CURLOPT_HTTPHEADER,
                            req->headers != NULL ? req->headers
                                                 : http->headers)
           != CURLE_OK;
    bad |= curl_easy_setopt(easy, CURLOPT_POST, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(easy, CURLOPT_POSTFIELDS,
                            req->form != NULL ? req->form : "") != CURLE_OK;
    bad |= curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE,
                            (curl_off_t) req->form_len) != CURLE_OK;

    if (req->username != NULL) {
        bad |= curl_easy_setopt(easy, CURLOPT_HTTPAUTH, CURLAUTH_BASIC)
               != CURLE_OK;
        bad |= curl_easy_setopt(easy, CURLOPT_USERNAME, req->username)
               != CURLE_OK;
        bad |= curl_easy_setopt(easy, CURLOPT_PASSWORD, req->password)
               != CURLE_OK;
    }

    return bad ? NH_ERROR : NH_OK;
}


static void
nh_http_finish(nh_http_t *http, CURL *easy, CURLcode code)
{
    nh_http_request_t  *req;
    struct curl_header *header;
    char               *private;
    long                status;

    private = NULL;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, &private);
    req = (nh_http_request_t *) private;

    status = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);

    /* The header of the last response, after any redirect. */
    req->retry_after[0] = '\0';
    if (code == CURLE_OK
        && curl_easy_header(easy, "Retry-After", 0, CURLH_HEADER, -1,
                            &header) == CURLHE_OK)
    {
        snprintf(req->retry_after, sizeof(req->retry_after), "%s",
                 header->value);
    }

    curl_multi_remove_handle(http->multi, easy);
    curl_easy_cleanup(easy);
    http->in_flight--;

    req->easy = NULL;
    req->http = NULL;
    req->code = code;
    req->status = (code == CURLE_OK) ? status : 0;
    req->duration_ms = nh_time_monotonic_ms() - req->started_ms;

    if (code != CURLE_OK && req->error[0] == '\0') {
        strncpy(req->error, curl_easy_strerror(code), sizeof(req->error) - 1);
        req->error[sizeof(req->error) - 1] = '\0';
    }

    if (req->body == NULL) {
        req->body = calloc(1, 1);
    }

    req->done(req);
}


static size_t
nh_http_write(char *data, size_t size, size_t n, void *ctx)
{
    nh_http_request_t  *req = ctx;
    size_t              len = size * n;
    size_t              keep, want;
    char               *body;

    keep = len;
    if (req->body_len + keep > NH_HTTP_BODY_MAX) {
        keep = NH_HTTP_BODY_MAX - req->body_len;
        req->body_truncated = 1;
    }

    if (req->body_len + keep + 1 > req->body_size) {
        want = req->body_size ? req->body_size : 1024;
        while (want < req->body_len + keep + 1) {
            want *= 2;
        }

        body = realloc(req->body, want);
        if (body == NULL) {
            /* A short count makes libcurl fail the transfer. */
            return 0;
        }

        req->body = body;
        req->body_size = want;
    }

    memcpy(req->body + req->body_len, data, keep);
    req->body_len += keep;
    req->body[req->body_len] = '\0';

    return len;
}


/*
 * Appends s to the form body, percent-encoded as form data when encode is
 * set, else unchanged (for the '&' and '=' separators).
 */
static int
nh_http_append(nh_http_request_t *req, const char *s, int encode)
{
    static const char  hex[] = "0123456789ABCDEF";
    size_t             need, want;
    char              *form, *p;
    unsigned char      c;

    /* Every byte becomes at most three; one more for the NUL. */
    need = req->form_len + strlen(s) * 3 + 1;

    if (need > req->form_size) {
        want = req->form_size ? req->form_size : 256;
        while (want < need) {
            want *= 2;
        }

        form = malloc(want);
        if (form == NULL) {
            return NH_ENOMEM;
        }

        if (req->form != NULL) {
            memcpy(form, req->form, req->form_len);
            memset(req->form, 0, req->form_size);
            free(req->form);
        }

        req->form = form;
        req->form_size = want;
    }

    p = req->form + req->form_len;

    for ( ; *s != '\0'; s++) {
        c = (unsigned char) *s;

        if (!encode
            || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
            || (c >= '0' && c <= '9')
            || c == '-' || c == '.' || c == '_' || c == '~')
        {
            *p++ = (char) c;
        } else if (c == ' ') {
            *p++ = '+';
        } else {
            *p++ = '%';
            *p++ = hex[c >> 4];
            *p++ = hex[c & 0xf];
        }
    }

    *p = '\0';
    req->form_len = (size_t) (p - req->form);

    return NH_OK;
}


static void
nh_http_free_secret(char *s)
{
    if (s == NULL) {
        return;
    }

    memset(s, 0, strlen(s));
    free(s);
}


static void
nh_http_free_headers(struct curl_slist *headers)
{
    struct curl_slist  *item;

    for (item = headers; item != NULL; item = item->next) {
        memset(item->data, 0, strlen(item->data));
    }

    curl_slist_free_all(headers);
}
