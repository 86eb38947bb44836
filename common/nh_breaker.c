#include "nh_breaker.h"

#include <stdio.h>
#include <string.h>


/* Time a probe may take beyond the HTTP timeout before its claim is
 * dropped: the wait for the result to reach the row. */
#define NH_BREAKER_PROBE_GRACE_MS  5000


typedef struct {
    const char  *key;
    long         def;
    long         min;
    long         max;
    int64_t      scale;     /* 1000 for a setting in seconds */
    size_t       offset;
} nh_breaker_setting_t;


static const nh_breaker_setting_t  nh_breaker_settings[] = {
    { "NH_BREAKER_WINDOW_SECONDS", 30, 1, 86400, 1000,
      offsetof(nh_breaker_conf_t, window_ms) },
    { "NH_BREAKER_MIN_REQUESTS", 20, 1, 1000000, 1,
      offsetof(nh_breaker_conf_t, min_requests) },
    { "NH_BREAKER_FAILURE_PERCENT", 50, 1, 100, 1,
      offsetof(nh_breaker_conf_t, failure_percent) },
    { "NH_BREAKER_COOLDOWN_SECONDS", 30, 1, 86400, 1000,
      offsetof(nh_breaker_conf_t, cooldown_ms) },
    { "NH_BREAKER_PROBES", 1, 1, 1000, 1,
      offsetof(nh_breaker_conf_t, probes) },
};


static void nh_breaker_open(const nh_breaker_conf_t *conf, nh_breaker_t *b,
    int64_t now_ms);
static void nh_breaker_update_closed(const nh_breaker_conf_t *conf,
    nh_breaker_t *b, const nh_breaker_counts_t *counts, int64_t now_ms,
    nh_breaker_event_t *ev);
static void nh_breaker_update_half_open(const nh_breaker_conf_t *conf,
    nh_breaker_t *b, const nh_breaker_counts_t *counts, int64_t now_ms,
    nh_breaker_event_t *ev);
static void nh_breaker_expire_probes(nh_breaker_t *b, int64_t now_ms);


int
nh_breaker_conf_load(const nh_config_t *cfg, int64_t http_timeout_ms,
    nh_breaker_conf_t *out, char *err, size_t errlen)
{
    const nh_breaker_setting_t  *setting;
    size_t                       i;
    long                         value;

    memset(out, 0, sizeof(nh_breaker_conf_t));

    for (i = 0;
         i < sizeof(nh_breaker_settings) / sizeof(nh_breaker_settings[0]);
         i++)
    {
        setting = &nh_breaker_settings[i];

        if (nh_config_get_long(cfg, setting->key, setting->def, setting->min,
                               setting->max, &value, err, errlen)
            != 0)
        {
            return -1;
        }

        *(int64_t *) ((char *) out + setting->offset) =
            (int64_t) value * setting->scale;
    }

    out->probe_timeout_ms = http_timeout_ms + NH_BREAKER_PROBE_GRACE_MS;

    return 0;
}


void
nh_breaker_init(nh_breaker_t *b)
{
    memset(b, 0, sizeof(nh_breaker_t));
    b->state = NH_BREAKER_CLOSED;
}


void
nh_breaker_update(const nh_breaker_conf_t *conf, nh_breaker_t *b,
    const nh_breaker_counts_t *counts, int64_t now_ms,
    nh_breaker_event_t *ev)
{
    nh_breaker_counts_t  none;

    if (counts == NULL) {
        memset(&none, 0, sizeof(none));
        counts = &none;
    }

    memset(ev, 0, sizeof(nh_breaker_event_t));
    ev->transition = NH_BREAKER_UNCHANGED;

    switch (b->state) {

    case NH_BREAKER_CLOSED:
        nh_breaker_update_closed(conf, b, counts, now_ms, ev);
        break;

    case NH_BREAKER_OPEN:
        /* Counts gathered before the breaker opened are stale now, and
         * probe results belong to an earlier round. */
        if (now_ms >= b->open_until_ms) {
            b->state = NH_BREAKER_HALF_OPEN;
            b->probe_round++;
            b->probes = 0;
            b->probe_expires_ms = 0;
            ev->transition = NH_BREAKER_HALF_OPENED;
        }

        break;

    case NH_BREAKER_HALF_OPEN:
        nh_breaker_update_half_open(conf, b, counts, now_ms, ev);
        break;
    }

    ev->open_until_ms = b->open_until_ms;
}


int
nh_breaker_claim_probe(const nh_breaker_conf_t *conf, nh_breaker_t *b,
    int64_t now_ms)
{
    if (b->state != NH_BREAKER_HALF_OPEN) {
        return 0;
    }

    nh_breaker_expire_probes(b, now_ms);

    if (b->probes >= conf->probes) {
        return 0;
    }

    b->probes++;
    b->probe_expires_ms = now_ms + conf->probe_timeout_ms;

    return 1;
}


const char *
nh_breaker_state_name(nh_breaker_state_e state)
{
    switch (state) {
    case NH_BREAKER_OPEN:
        return "OPEN";
    case NH_BREAKER_HALF_OPEN:
        return "HALF_OPEN";
    default:
        return "CLOSED";
    }
}


int
nh_breaker_state_parse(const char *name, nh_breaker_state_e *out)
{
    if (strcmp(name, "CLOSED") == 0) {
        *out = NH_BREAKER_CLOSED;
    } else if (strcmp(name, "OPEN") == 0) {
        *out = NH_BREAKER_OPEN;
    } else if (strcmp(name, "HALF_OPEN") == 0) {
        *out = NH_BREAKER_HALF_OPEN;
    } else {
        return -1;
    }

    return 0;
}


static void
nh_breaker_open(const nh_breaker_conf_t *conf, nh_breaker_t *b,
    int64_t now_ms)
{
    b->state = NH_BREAKER_OPEN;
    b->open_until_ms = now_ms + conf->cooldown_ms;
    b->window_start_ms = 0;
    b->requests = 0;
    b->failures = 0;
    b->probes = 0;
    b->probe_expires_ms = 0;
}


static void
nh_breaker_update_closed(const nh_breaker_conf_t *conf, nh_breaker_t *b,
    const nh_breaker_counts_t *counts, int64_t now_ms,
    nh_breaker_event_t *ev)
{
    int64_t  failures;

    /* A window ends window_ms after it started; the next one starts with
     * the next request. */
    if (b->window_start_ms != 0
        && now_ms - b->window_start_ms >= conf->window_ms)
    {
        b->window_start_ms = 0;
        b->requests = 0;
        b->failures = 0;
    }

    if (counts->requests <= 0) {
        return;
    }

    if (b->window_start_ms == 0) {
        b->window_start_ms = now_ms;
    }

    failures = counts->failures < counts->requests ? counts->failures
                                                   : counts->requests;

    b->requests += counts->requests;
    b->failures += failures > 0 ? failures : 0;

    if (b->requests < conf->min_requests
        || b->failures * 100 < conf->failure_percent * b->requests)
    {
        return;
    }

    ev->transition = NH_BREAKER_OPENED;
    ev->requests = b->requests;
    ev->failures = b->failures;

    nh_breaker_open(conf, b, now_ms);
}


static void
nh_breaker_update_half_open(const nh_breaker_conf_t *conf, nh_breaker_t *b,
    const nh_breaker_counts_t *counts, int64_t now_ms,
    nh_breaker_event_t *ev)
{
    int64_t  results;

    nh_breaker_expire_probes(b, now_ms);

    if (counts->probe_round != b->probe_round) {
        return;
    }

    results = counts->probe_successes + counts->probe_failures
              + counts->probe_releases;

    b->probes = b->probes > results ? b->probes - results : 0;

    /* A failure wins over a success reported with it, so that the
     * breaker closes only when no probe of the round failed. */
    if (counts->probe_failures > 0) {
        ev->transition = NH_BREAKER_REOPENED;
        ev->requests = counts->probe_successes + counts->probe_failures;
        ev->failures = counts->probe_failures;
        nh_breaker_open(conf, b, now_ms);
        return;
    }

    if (counts->probe_successes > 0) {
        ev->transition = NH_BREAKER_RECOVERED;
        ev->requests = counts->probe_successes;
        b->state = NH_BREAKER_CLOSED;
        b->window_start_ms = 0;
        b->requests = 0;
        b->failures = 0;
        b->probes = 0;
        b->probe_expires_ms = 0;
    }
}


static void
nh_breaker_expire_probes(nh_breaker_t *b, int64_t now_ms)
{
    if (b->probes > 0 && now_ms >= b->probe_expires_ms) {
        b->probes = 0;
        b->probe_expires_ms = 0;
    }
}
