#ifndef NH_PROVIDERS_H
#define NH_PROVIDERS_H

#include <stddef.h>
#include <stdint.h>

#include "nh_breaker.h"
#include "nh_config.h"
#include "nh_db.h"
#include "nh_provider.h"

/*
 * The provider instances of a channel worker: the primary and an optional
 * fallback, each a provider adapter with a name of its own, a circuit
 * breaker and a send-rate bucket. Breaker and bucket live in the
 * instance's row of the providers table (sql/0022_providers.sql), shared
 * by every worker process. Each process keeps its last known breaker
 * state and its counts since it last wrote the row, and syncs them in
 * nh_providers_tick(). While PostgreSQL is unreachable the process keeps
 * its last known state and its counts.
 *
 * A delivery goes to the primary while its breaker is CLOSED, and else to
 * the fallback while the fallback's breaker is CLOSED. An instance whose
 * breaker is HALF_OPEN gets the delivery as a probe when this process
 * claims one. Otherwise the delivery is deferred until the primary's
 * cool-down ends.
 */

#define NH_PROVIDERS_NAME_MAX    64
#define NH_PROVIDERS_ERROR_MAX   256

typedef struct nh_providers_s  nh_providers_t;
typedef struct nh_instance_s   nh_instance_t;

/* Where one delivery goes. */
typedef struct {
    /* The instance and its adapter, or NULL when the delivery is
     * deferred. provider->name is the instance's name. */
    nh_instance_t        *instance;
    const nh_provider_t  *provider;
    int                   probe;        /* the instance's HALF_OPEN probe */
    /* A deferred delivery's next attempt, in Unix milliseconds, and the
     * error that its delivery-log row gets. */
    int64_t               until_ms;
    char                  error[NH_PROVIDERS_ERROR_MAX];
} nh_route_t;

/*
 * Returns 1 when any NH_FALLBACK_<key> of keys (a NULL-terminated list
 * such as "MAILGUN_URL", "MAILGUN_DOMAIN") is set in cfg, which means a
 * fallback instance is configured.
 */
int nh_providers_fallback_configured(const nh_config_t *cfg,
    const char *const *keys);

/*
 * Creates the instances: primary, and fallback unless it is NULL. Both
 * adapters must outlive the set. Reads NH_PROVIDER_NAME (default: the
 * primary adapter's name), NH_FALLBACK_PROVIDER_NAME (default: the
 * fallback adapter's name and "-fallback"), the NH_BREAKER_* settings
 * (nh_breaker_conf_load()), NH_RATE_LIMIT (requests per second per
 * instance, 0 for no limit) and NH_RATE_BURST (default: NH_RATE_LIMIT).
 * Returns 0, NH_ERROR with a message in err that names the invalid
 * variable, or NH_ENOMEM.
 */
int nh_providers_create(const nh_config_t *cfg, const nh_provider_t *primary,
    const nh_provider_t *fallback, long http_timeout_ms,
    nh_providers_t **out, char *err, size_t errlen);

/* Frees the set. Accepts NULL. */
void nh_providers_destroy(nh_providers_t *p);

/* Logs the instances and the breaker and rate settings at info level. */
void nh_providers_log_config(const nh_providers_t *p);

/* The primary's adapter, named after the primary instance. */
const nh_provider_t *nh_providers_primary(const nh_providers_t *p);

/* Sets the connection the instances' rows are read and written with. */
void nh_providers_attach(nh_providers_t *p, nh_db_t *db);

/*
 * Writes the counts and reads the shared state of every instance when
 * NH_PROVIDERS_SYNC_MS passed since the last sync, or sooner (at most
 * every NH_PROVIDERS_SYNC_MIN_MS) when counts are waiting. Call it once
 * per loop turn, outside a transaction.
 */
void nh_providers_tick(nh_providers_t *p);

/*
 * Returns how many of n deliveries may be leased now: all of them without
 * a rate limit, else as many as the instance they would go to holds
 * tokens for. Takes tokens from the shared bucket (one SQL call) when too
 * few are held. Tokens are spent per request by nh_providers_spend().
 */
size_t nh_providers_admit(nh_providers_t *p, size_t n);

/*
 * Chooses the instance for one delivery and fills route. A probe claim is
 * written to the instance's row at once. Call it outside a transaction.
 */
void nh_providers_route(nh_providers_t *p, nh_route_t *route);

/* Spends one token of the route's instance for one request. */
void nh_providers_spend(const nh_route_t *route);

/*
 * Counts the outcome of one request made on route as a request, and as a
 * failure when the outcome is transient (429, 5xx, timeouts, connection
 * errors). The outcome of a probe counts as the probe's result instead.
 */
void nh_providers_count(const nh_route_t *route, const nh_outcome_t *o);

/* Gives back the probe claim of a route that made no request. */
void nh_providers_release(const nh_route_t *route);

/*
 * Records a deferred delivery with nh_delivery_defer(): RETRYING until
 * route->until_ms without using up an attempt. Returns 0 and sets
 * *stored (0 when the notification was no longer PROCESSING); NH_EAGAIN
 * or NH_ERROR as nh_db_exec() does.
 */
int nh_providers_defer(nh_providers_t *p, const char *id,
    const nh_route_t *route, int *stored);

#endif /* NH_PROVIDERS_H */
