#ifndef NH_WORKER_H
#define NH_WORKER_H

#include <stddef.h>

#include "nh_config.h"
#include "nh_log.h"
#include "nh_provider.h"
#include "nh_providers.h"

/*
 * The consumer loop shared by the channel workers. It consumes the
 * channel's Kafka topic, leases each notification in PostgreSQL, sends it
 * through the provider adapter with at most max_in_flight requests at
 * once, records the outcome, and only then marks the message's offset as
 * done. A failed attempt that may succeed later is retried after a
 * backoff, and a final failure is dead-lettered. A sweep in the same loop
 * republishes PENDING notifications whose Kafka message was lost,
 * schedules due retries and expires leases.
 */

#define NH_WORKER_TOPIC_MAX  249

/* Settings of SPEC's worker environment, after validation. */
typedef struct {
    const char      *name;           /* "notifyhub-email": client id */
    const char      *channel;        /* "EMAIL" */
    const char      *pg_dsn;
    const char      *brokers;
    const char      *topic_prefix;
    const char      *group;
    char             topic[NH_WORKER_TOPIC_MAX + 1];
    /* The dead-letter topic: the prefix and "dlq". */
    char             dlq_topic[NH_WORKER_TOPIC_MAX + 1];
    long             partitions;
    long             max_in_flight;
    long             http_connect_timeout_ms;
    long             http_timeout_ms;
    long             lease_seconds;
    long             sweep_interval_ms;
    long             sweep_after_seconds;
    long             max_attempts;
    long             retry_base_ms;
    long             retry_max_ms;
    nh_log_level_e   log_level;
    const char      *log_level_name;
} nh_worker_conf_t;

/*
 * Reads the NH_PG_*, NH_KAFKA_*, NH_MAX_IN_FLIGHT, NH_HTTP_*, NH_LEASE_*,
 * NH_SWEEP_*, NH_MAX_ATTEMPTS, NH_RETRY_* and NH_LOG_LEVEL settings from cfg with their defaults, for
 * the worker called name that delivers channel. Strings point into cfg
 * or are literals, so cfg must outlive out. Returns 0, or NH_ERROR and a
 * message in err that names the invalid variable.
 */
int nh_worker_conf_load(const nh_config_t *cfg, const char *name,
    const char *channel, nh_worker_conf_t *out, char *err, size_t errlen);

/*
 * Runs the worker until SIGTERM or SIGINT, then drains: no new messages
 * are taken, requests in flight finish or time out, their outcomes are
 * written, offsets are stored and committed, and the Kafka clients are
 * closed. Deliveries go through the provider instances of providers,
 * which must outlive the call. Returns 0 after a clean stop, or NH_ERROR
 * when the worker could not start or hit a fatal error (logged).
 */
int nh_worker_run(const nh_worker_conf_t *conf, nh_providers_t *providers);

#endif /* NH_WORKER_H */
