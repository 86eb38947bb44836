#ifndef NH_FCM_H
#define NH_FCM_H

#include <stddef.h>

#include "nh_config.h"
#include "nh_provider.h"

/*
 * Firebase Cloud Messaging HTTP v1 adapter: sends one push notification
 * per device token as POST <NH_FCM_URL>/v1/projects/<project_id>/
 * messages:send with "Authorization: Bearer <access token>" and the JSON
 * body {"message": {"token", "notification": {"title", "body"}, "data"}}.
 *
 * The access token comes from the OAuth2 JWT bearer grant: a JWT signed
 * with the service account's RSA key (RS256) is posted to its token_uri.
 * The token is cached until 60 seconds before it expires (half its
 * lifetime when that is under two minutes). build() fetches it when it
 * is missing or due, with a blocking libcurl call that times out after 5
 * seconds. A token lasts about an hour, so the worker's loop blocks about
 * once an hour, for one round trip to the token endpoint. After a
 * failed fetch, sends fail as transient for one second without a new
 * fetch, so an unreachable endpoint cannot block the loop on every build.
 * A 401 UNAUTHENTICATED from FCM drops the cached token and asks the
 * worker to build and send that request once more.
 */

typedef struct nh_fcm_s  nh_fcm_t;

/*
 * Reads NH_FCM_URL (default http://127.0.0.1:8482, the local fake) and
 * the service-account JSON file named by NH_FCM_CREDENTIALS_FILE, which
 * must have project_id, client_email, private_key (an RSA key in PEM) and
 * token_uri. Returns 0 and a new adapter, or NH_ERROR and a message in err
 * that names the variable or the field at fault (never the key), or
 * NH_ENOMEM.
 */
int nh_fcm_create(const nh_config_t *cfg, const char *user_agent,
    nh_fcm_t **out, char *err, size_t errlen);

/* Frees fcm, zeroing the cached access token first. Accepts NULL. */
void nh_fcm_destroy(nh_fcm_t *fcm);

/* Fills provider with the adapter's functions; fcm must outlive it. */
void nh_fcm_provider(nh_fcm_t *fcm, nh_provider_t *provider);

/* Logs the effective settings at info level, without the key. */
void nh_fcm_log_config(const nh_fcm_t *fcm);

/*
 * Lists the device tokens of d: the string in to.deviceToken, or the
 * strings in the array to.deviceTokens, without repeats. Returns as the
 * provider's targets() does. A missing or empty token list, a token that
 * is not a non-empty string, and more than NH_FCM_TARGETS_MAX tokens are
 * permanent failures.
 */
int nh_fcm_targets(void *ctx, const nh_delivery_t *d, char ***targets,
    size_t *n, nh_outcome_t *out);

/* Maximum device tokens of one notification. NOTE: chosen as a bound on
 * the requests of one job, not taken from an FCM limit. */
#define NH_FCM_TARGETS_MAX  500

/*
 * Builds the send request for d->target. Every member of d's data object
 * becomes a string, because FCM accepts only string values: strings as
 * they are, other values as their JSON text. "notificationId" is set to
 * d's id. Returns 0 or NH_ENOMEM. Returns NH_ERROR with a permanent
 * failure in out when d has no target or no body, or its data is not an
 * object. Returns NH_EAGAIN with a transient failure in out when no access
 * token could be fetched.
 */
int nh_fcm_build(void *ctx, const nh_delivery_t *d, nh_http_request_t *req,
    nh_outcome_t *out);

/*
 * Classifies a finished send. A 2xx reply is SENT, with the reply's
 * "name" (projects/<id>/messages/<message id>) as the provider message id.
 * Anything else is FAILED, classified by the rules of nh_fcm_errors.h.
 */
void nh_fcm_classify(void *ctx, const nh_http_request_t *req,
    nh_outcome_t *out);

#endif /* NH_FCM_H */
