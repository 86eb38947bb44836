#ifndef NH_BREAKER_H
#define NH_BREAKER_H

#include <stddef.h>
#include <stdint.h>

#include "nh_config.h"

/*
 * Circuit breaker of one provider instance, shared by every worker
 * process: the state lives in the provider's PostgreSQL row, and each
 * process applies its own counts and the passing time to a copy with
 * nh_breaker_update() before writing it back. The functions here are the
 * transition rules only. They take the time as an argument (Unix
 * milliseconds) and touch no database.
 *
 * CLOSED counts requests and retryable failures in a fixed window of
 * window_ms that starts with the first request after the previous window
 * ended. It opens when the window has at least min_requests requests and
 * failures are at least failure_percent percent of them. OPEN lasts
 * cooldown_ms, then the breaker is HALF_OPEN: up to probes requests may be
 * claimed at a time. A successful probe closes the breaker and a failed
 * one opens it for a new cool-down.
 */

typedef enum {
    NH_BREAKER_CLOSED = 0,
    NH_BREAKER_OPEN,
    NH_BREAKER_HALF_OPEN
} nh_breaker_state_e;

typedef enum {
    NH_BREAKER_UNCHANGED = 0,
    NH_BREAKER_OPENED,          /* CLOSED to OPEN: too many failures */
    NH_BREAKER_HALF_OPENED,     /* OPEN to HALF_OPEN: cool-down over */
    NH_BREAKER_RECOVERED,       /* HALF_OPEN to CLOSED: a probe succeeded */
    NH_BREAKER_REOPENED         /* HALF_OPEN to OPEN: a probe failed */
} nh_breaker_transition_e;

typedef struct {
    int64_t  window_ms;
    int64_t  min_requests;
    int64_t  failure_percent;
    int64_t  cooldown_ms;
    int64_t  probes;
    /* A claimed probe that reports no result within this time counts as
     * lost, so that a process that died while probing frees its claim. */
    int64_t  probe_timeout_ms;
} nh_breaker_conf_t;

/* The shared state, one provider row's breaker columns. */
typedef struct {
    nh_breaker_state_e  state;
    int64_t             window_start_ms;
    int64_t             requests;
    int64_t             failures;
    int64_t             open_until_ms;
    /* Counts the moves to HALF_OPEN, so that a probe result of an earlier
     * HALF_OPEN period is recognised and ignored. */
    int64_t             probe_round;
    int64_t             probes;           /* claimed, without a result */
    int64_t             probe_expires_ms;
} nh_breaker_t;

/* The counts of one process since it last wrote the row. */
typedef struct {
    int64_t  requests;
    /* Requests that failed in a way a retry may fix: timeouts, connection
     * errors, 429 and 5xx. */
    int64_t  failures;
    /* Results of the probes that this process claimed in probe_round. A
     * release is a claimed probe that sent no request. */
    int64_t  probe_round;
    int64_t  probe_successes;
    int64_t  probe_failures;
    int64_t  probe_releases;
} nh_breaker_counts_t;

/* A transition and the numbers behind it, for the log line. */
typedef struct {
    nh_breaker_transition_e  transition;
    int64_t                  requests;
    int64_t                  failures;
    int64_t                  open_until_ms;
} nh_breaker_event_t;

/*
 * Reads NH_BREAKER_WINDOW_SECONDS (default 30), NH_BREAKER_MIN_REQUESTS
 * (20), NH_BREAKER_FAILURE_PERCENT (50, from 1 to 100),
 * NH_BREAKER_COOLDOWN_SECONDS (30) and NH_BREAKER_PROBES (1) from cfg.
 * probe_timeout_ms is set to http_timeout_ms plus 5 seconds. Returns 0,
 * or -1 and a message in err that names the invalid variable.
 */
int nh_breaker_conf_load(const nh_config_t *cfg, int64_t http_timeout_ms,
    nh_breaker_conf_t *out, char *err, size_t errlen);

/* Sets b to a CLOSED breaker with an empty window. */
void nh_breaker_init(nh_breaker_t *b);

/*
 * Applies the passing time and then counts (NULL for none) to b at
 * now_ms, and stores the transition in ev (NH_BREAKER_UNCHANGED when
 * none). Plain requests count only while CLOSED, and probe results only
 * while HALF_OPEN in their own probe_round, so one call makes at most one
 * transition. The counts are used up either way.
 */
void nh_breaker_update(const nh_breaker_conf_t *conf, nh_breaker_t *b,
    const nh_breaker_counts_t *counts, int64_t now_ms,
    nh_breaker_event_t *ev);

/*
 * Claims a probe at now_ms: returns 1 and counts the claim in b when b is
 * HALF_OPEN with fewer than conf->probes claims, else 0. Claims older
 * than probe_timeout_ms are dropped first.
 */
int nh_breaker_claim_probe(const nh_breaker_conf_t *conf, nh_breaker_t *b,
    int64_t now_ms);

/* Returns "CLOSED", "OPEN" or "HALF_OPEN", as stored in the row. */
const char *nh_breaker_state_name(nh_breaker_state_e state);

/* Parses a stored state name. Returns 0, or -1 for an unknown name. */
int nh_breaker_state_parse(const char *name, nh_breaker_state_e *out);

#endif /* NH_BREAKER_H */
