#ifndef NH_MAILGUN_H
#define NH_MAILGUN_H

#include <stddef.h>

#include "nh_config.h"
#include "nh_provider.h"

/*
 * Mailgun adapter: sends an email notification as POST
 * <NH_MAILGUN_URL>/v3/<NH_MAILGUN_DOMAIN>/messages with HTTP Basic auth
 * (user "api", password NH_MAILGUN_API_KEY) and form fields from, to,
 * subject, text, html, v:notification_id and v:tenant_id.
 */

typedef struct nh_mailgun_s  nh_mailgun_t;

/*
 * Reads NH_MAILGUN_URL, NH_MAILGUN_API_KEY, NH_MAILGUN_DOMAIN and
 * NH_MAILGUN_FROM from cfg, with the local sandbox's values as defaults.
 * Returns 0 and a new adapter, or NH_ERROR and a message in err that names
 * the invalid variable (never the key's value), or NH_ENOMEM.
 */
int nh_mailgun_create(const nh_config_t *cfg, nh_mailgun_t **out, char *err,
    size_t errlen);

/* Frees mg, zeroing the API key first. Accepts NULL. */
void nh_mailgun_destroy(nh_mailgun_t *mg);

/* Fills provider with the adapter's functions; mg must outlive it. */
void nh_mailgun_provider(nh_mailgun_t *mg, nh_provider_t *provider);

/* Logs the effective settings at info level, without the API key. */
void nh_mailgun_log_config(const nh_mailgun_t *mg);

/*
 * Builds the request for d. Returns 0; NH_ERROR with a permanent failure
 * in out when d has no recipient, no subject or no body; or NH_ENOMEM.
 */
int nh_mailgun_build(void *ctx, const nh_delivery_t *d,
    nh_http_request_t *req, nh_outcome_t *out);

/*
 * Classifies a finished request. A 2xx response is SENT, with the "id" of
 * Mailgun's JSON reply as the provider message id. Anything else is
 * FAILED, and the error text is the HTTP status with Mailgun's "message",
 * or the libcurl error. 429, 5xx and transport errors are transient.
 */
void nh_mailgun_classify(void *ctx, const nh_http_request_t *req,
    nh_outcome_t *out);

#endif /* NH_MAILGUN_H */
