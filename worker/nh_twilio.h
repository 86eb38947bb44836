#ifndef NH_TWILIO_H
#define NH_TWILIO_H

#include <stddef.h>

#include "nh_config.h"
#include "nh_provider.h"

/*
 * Twilio Messages API adapter: sends an SMS notification as POST
 * <NH_TWILIO_URL>/2010-04-01/Accounts/<AccountSid>/Messages.json with HTTP
 * Basic auth (user NH_TWILIO_ACCOUNT_SID, password NH_TWILIO_AUTH_TOKEN)
 * and the form fields To (the notification's to.phone), From
 * (NH_TWILIO_FROM) or MessagingServiceSid
 * (NH_TWILIO_MESSAGING_SERVICE_SID), Body, and StatusCallback when
 * NH_TWILIO_STATUS_CALLBACK is set.
 */

typedef struct nh_twilio_s  nh_twilio_t;

/*
 * Reads NH_TWILIO_URL (default http://127.0.0.1:8483, the local fake),
 * NH_TWILIO_ACCOUNT_SID ("AC" and 32 hex digits), NH_TWILIO_AUTH_TOKEN,
 * NH_TWILIO_FROM (an E.164 number, a short code of 3 to 8 digits or an
 * alphanumeric sender ID of up to 11 characters),
 * NH_TWILIO_MESSAGING_SERVICE_SID ("MG" and 32 hex digits) and
 * NH_TWILIO_STATUS_CALLBACK (an http or https URL). At most one of
 * NH_TWILIO_FROM and NH_TWILIO_MESSAGING_SERVICE_SID may be set; when
 * neither is, From is the local fake's number. The account and token
 * default to the local fake's. Returns 0 and a new adapter, or NH_ERROR
 * and a message in err that names the invalid variable (never the
 * token's value), or NH_ENOMEM.
 */
int nh_twilio_create(const nh_config_t *cfg, nh_twilio_t **out, char *err,
    size_t errlen);

/* Frees tw, zeroing the auth token first. Accepts NULL. */
void nh_twilio_destroy(nh_twilio_t *tw);

/* Fills provider with the adapter's functions. tw must outlive it. */
void nh_twilio_provider(nh_twilio_t *tw, nh_provider_t *provider);

/* Logs the effective settings at info level, without the auth token. */
void nh_twilio_log_config(const nh_twilio_t *tw);

/*
 * Builds the request for d. Returns 0, NH_ERROR with a permanent failure
 * in out when d has no to.phone in E.164 or no body, or NH_ENOMEM.
 */
int nh_twilio_build(void *ctx, const nh_delivery_t *d,
    nh_http_request_t *req, nh_outcome_t *out);

/*
 * Classifies a finished request. A 2xx reply is SENT, with the reply's
 * "sid" (SM... or MM...) as the provider message id. Anything else is
 * FAILED, with the error text "HTTP <status> <code>: <message>" from
 * Twilio's JSON error body. The rules of nh_twilio_errors.h decide
 * whether the failure is transient.
 */
void nh_twilio_classify(void *ctx, const nh_http_request_t *req,
    nh_outcome_t *out);

#endif /* NH_TWILIO_H */
