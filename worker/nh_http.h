#ifndef NH_HTTP_H
#define NH_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

/*
 * HTTP client engine on one libcurl multi handle. Requests run
 * concurrently on the calling thread: nh_http_run() waits for network
 * activity, advances every transfer and calls each finished request's done
 * callback. Connections are kept alive and reused between requests.
 */

typedef struct nh_http_s          nh_http_t;
typedef struct nh_http_request_s  nh_http_request_t;

typedef void (*nh_http_done_pt)(nh_http_request_t *req);

struct nh_http_request_s {
    /* Set by the caller before nh_http_submit(). */
    char             *url;
    char             *username;
    char             *password;     /* zeroed before it is freed */
    /* Extra header lines; each is zeroed before it is freed, because an
     * Authorization header contains a credential. */
    struct curl_slist *headers;
    nh_http_done_pt   done;
    void             *data;

    /* Set before done is called. */
    long              status;       /* HTTP status, 0 when none arrived */
    CURLcode          code;         /* CURLE_OK when a response arrived */
    char              error[CURL_ERROR_SIZE];
    char             *body;         /* response body, NUL-terminated */
    /* The Retry-After header of the response, "" when there was none. */
    char              retry_after[64];
    size_t            body_len;
    int64_t           duration_ms;

    /* Private to nh_http.c. */
    char             *form;
    size_t            form_len;
    size_t            form_size;
    size_t            body_size;
    int               body_truncated;
    int64_t           started_ms;
    CURL             *easy;
    nh_http_t        *http;
};

/*
 * Creates an engine whose requests use the given connect and total
 * timeouts (milliseconds) and User-Agent. Returns 0, or NH_ENOMEM or
 * NH_ERROR when libcurl cannot be set up. curl_global_init() must have
 * been called.
 */
int nh_http_create(nh_http_t **out, long connect_timeout_ms,
    long timeout_ms, const char *user_agent);

/*
 * Destroys the engine. Requests still in flight must have been freed
 * first with nh_http_request_free(), which aborts them.
 */
void nh_http_destroy(nh_http_t *http);

/* Allocates an empty POST request. Returns 0 or NH_ENOMEM. */
int nh_http_request_create(nh_http_request_t **out);

/*
 * Sets url, username and password (each copied; username and password
 * may be NULL for no authentication). Returns 0 or NH_ENOMEM.
 */
int nh_http_request_set_target(nh_http_request_t *req, const char *url,
    const char *username, const char *password);

/*
 * Appends name=value to the application/x-www-form-urlencoded body,
 * percent-encoding both. A NULL value adds nothing. Returns 0 or
 * NH_ENOMEM.
 */
int nh_http_request_add_field(nh_http_request_t *req, const char *name,
    const char *value);

/*
 * Appends the header line "name: value" to req. Returns 0 or NH_ENOMEM.
 */
int nh_http_request_add_header(nh_http_request_t *req, const char *name,
    const char *value);

/*
 * Replaces the request body by a copy of len bytes of data, sent with the
 * given Content-Type (a header line added with nh_http_request_add_header)
 * instead of a form body. Returns 0 or NH_ENOMEM.
 */
int nh_http_request_set_content(nh_http_request_t *req,
    const char *content_type, const char *data, size_t len);

/*
 * Frees a request. A request still in flight is aborted first and its
 * done callback is not called. Accepts NULL.
 */
void nh_http_request_free(nh_http_request_t *req);

/*
 * Starts req as a POST of its form body. Returns 0, or NH_ERROR or
 * NH_ENOMEM when libcurl cannot start it; then done is not called.
 */
int nh_http_submit(nh_http_t *http, nh_http_request_t *req);

/*
 * Waits up to timeout_ms for activity on the transfers or on the extra
 * descriptors (which may be NULL), advances the transfers and calls done
 * for each request that finished, successfully or not. A done callback
 * may free its request. Returns 0, or NH_ERROR when the multi handle
 * fails.
 */
int nh_http_run(nh_http_t *http, int timeout_ms, struct curl_waitfd *extra,
    unsigned n_extra);

/*
 * Returns the minimum delay before the next request that the Retry-After
 * header of a finished request sets, in milliseconds (see
 * nh_backoff_parse_retry_after()), or 0 when the header is missing or
 * invalid.
 */
int64_t nh_http_retry_after_ms(const nh_http_request_t *req);

/* Returns the number of requests in flight. */
size_t nh_http_in_flight(const nh_http_t *http);

#endif /* NH_HTTP_H */
