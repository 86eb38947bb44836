#ifndef NH_PROVIDER_H
#define NH_PROVIDER_H

#include "nh_http.h"

/*
 * A provider adapter turns a leased notification into one HTTP request and
 * the provider's response into a delivery outcome. The consumer loop in
 * nh_worker.c is the same for every channel; a channel's executable
 * differs only in its adapter and its main().
 */

/* A leased notification, as nh_delivery_lease() returned it. */
typedef struct {
    const char  *notification_id;
    const char  *tenant_id;
    const char  *to;          /* recipient email address; NULL when missing */
    const char  *to_json;     /* the whole stored "to" object as JSON text;
                                 NULL when missing */
    const char  *subject;     /* NULL when missing */
    const char  *body;        /* plain text; NULL when missing */
    const char  *html;        /* NULL when the notification has none */
    const char  *data;        /* the "data" object as JSON text; NULL when
                                 missing */
    /* The target of this request, one of the strings that the provider's
     * targets() listed; NULL for a provider without targets(). */
    const char  *target;
    int          attempts;    /* this attempt's number, from 1 */
} nh_delivery_t;

typedef enum {
    NH_OUTCOME_SENT = 0,
    NH_OUTCOME_FAILED
} nh_outcome_status_e;

#define NH_OUTCOME_ID_MAX     256
#define NH_OUTCOME_ERROR_MAX  512

/* The result of one delivery attempt, as written by nh_delivery_record(). */
typedef struct {
    nh_outcome_status_e  status;
    /* Set when the same request may succeed later: throttling (429),
     * server errors (5xx), timeouts and connection failures. */
    int                  transient;
    long                 http_status;   /* 0 when no response arrived */
    char                 provider_message_id[NH_OUTCOME_ID_MAX];
    char                 error[NH_OUTCOME_ERROR_MAX];   /* "" when sent */
    int64_t              duration_ms;
    /* The minimum delay before the next attempt from the provider's
     * Retry-After header, in milliseconds, or 0 when there was none. */
    int64_t              retry_after_ms;
    /* Set when the provider no longer accepts the target (an FCM device
     * token that is UNREGISTERED), so its device is deactivated. */
    int                  unregistered;
    /* Set by classify() when the request should be built and sent once
     * more at once, because the provider rejected a credential that build()
     * fetches again (an expired OAuth2 access token). */
    int                  resend;
} nh_outcome_t;

typedef struct {
    /* Stored in the provider column: "mailgun". */
    const char  *name;
    /* The notifications.channel value the adapter delivers: "EMAIL". */
    const char  *channel;
    void        *ctx;

    /*
     * Optional. Lists the targets of d, for a channel whose notification
     * goes to several addresses (the device tokens of a push). Each target
     * gets its own request, built with d->target set to it, and its own
     * delivery-log row. Returns 0 and an array of *n >= 1 malloc'ed
     * strings in *targets, which the caller frees; NH_ERROR with out set
     * to a permanent failure when d has no valid target; or NH_ENOMEM.
     * When NULL, d is one request with d->target NULL.
     */
    int (*targets)(void *ctx, const nh_delivery_t *d, char ***targets,
        size_t *n, nh_outcome_t *out);

    /*
     * Fills req (target and body) for delivery d. Returns 0 or NH_ENOMEM.
     * Returns NH_ERROR with out set to a permanent failure when d cannot
     * be sent by this provider (a missing recipient, for example), and
     * NH_EAGAIN with out set to a transient failure when a credential
     * could not be obtained now.
     */
    int (*build)(void *ctx, const nh_delivery_t *d, nh_http_request_t *req,
        nh_outcome_t *out);

    /* Fills out from a finished request: SENT or FAILED and the details. */
    void (*classify)(void *ctx, const nh_http_request_t *req,
        nh_outcome_t *out);
} nh_provider_t;

#endif /* NH_PROVIDER_H */
