#include "nh_providers.h"

#include "nh_error.h"
#include "nh_log.h"
#include "nh_time.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* The shared state is read at least this often, and with counts waiting
 * to be written at most this often. */
#define NH_PROVIDERS_SYNC_MS           250
#define NH_PROVIDERS_SYNC_MIN_MS       25
/* Tries of a breaker write that lost a race with another process. */
#define NH_PROVIDERS_WRITE_TRIES       5
/* One token request takes at most this much of the rate. */
#define NH_PROVIDERS_CHUNK_MS          100
/* Shortest wait after a token request that got fewer than it asked for. */
#define NH_PROVIDERS_TOKEN_WAIT_MIN_MS 5
/* Identical sync failures within this interval are counted, not logged. */
#define NH_PROVIDERS_ERROR_REPEAT_MS   10000


struct nh_instance_s {
    nh_providers_t       *set;
    const char           *role;          /* "primary" or "fallback" */
    char                  name[NH_PROVIDERS_NAME_MAX + 1];
    /* The adapter's functions with name set to the instance's name. */
    nh_provider_t         provider;
    const char           *adapter;       /* the adapter's own name */
    /* The state last read or written, and the row version it had. */
    nh_breaker_t          breaker;
    int64_t               version;
    int                   known;
    /* Counts of this process that are not written yet. */
    nh_breaker_counts_t   counts;
    int64_t               last_claim_ms; /* monotonic */
    /* Tokens held. A push to several devices may leave a debt (a
     * negative number), which later token requests pay first. */
    int64_t               tokens;
    int64_t               tokens_retry_ms;   /* monotonic */
};

struct nh_providers_s {
    nh_instance_t         primary;
    nh_instance_t         fallback;
    int                   has_fallback;
    nh_breaker_conf_t     breaker;
    long                  rate;
    long                  burst;
    nh_db_t              *db;
    int64_t               last_sync_ms;      /* monotonic */
    int64_t               last_error_ms;
    unsigned              errors_suppressed;
};


static int nh_providers_name(const nh_config_t *cfg, const char *key,
    const char *def, char *out, char *err, size_t errlen);
static void nh_providers_init_instance(nh_providers_t *p, nh_instance_t *inst,
    const char *role, const nh_provider_t *adapter);
static int nh_providers_pending(const nh_instance_t *inst);
static void nh_providers_clear_counts(nh_instance_t *inst);
static int nh_providers_sync(nh_instance_t *inst, int claim, int *claimed);
static int nh_providers_read(nh_instance_t *inst, nh_breaker_t *b,
    int64_t *version);
static int nh_providers_write(nh_instance_t *inst, int64_t version,
    const nh_breaker_t *b, int64_t *new_version, int *written);
static int nh_providers_same(const nh_breaker_t *a, const nh_breaker_t *b);
static void nh_providers_log_event(const nh_instance_t *inst,
    const nh_breaker_event_t *ev);
static void nh_providers_sync_failed(nh_instance_t *inst, const char *what);
static int nh_providers_usable(const nh_instance_t *inst, int64_t now_ms);
static int nh_providers_probe_due(const nh_instance_t *inst, int64_t now_ms);
static int nh_providers_try_probe(nh_instance_t *inst);
static nh_instance_t *nh_providers_target(nh_providers_t *p, int64_t now_ms);
static void nh_providers_take_tokens(nh_instance_t *inst, size_t n);


int
nh_providers_fallback_configured(const nh_config_t *cfg,
    const char *const *keys)
{
    char  key[128];

    for (; *keys != NULL; keys++) {
        snprintf(key, sizeof(key), "NH_FALLBACK_%s", *keys);

        if (nh_config_get(cfg, key, NULL) != NULL) {
            return 1;
        }
    }

    return 0;
}


int
nh_providers_create(const nh_config_t *cfg, const nh_provider_t *primary,
    const nh_provider_t *fallback, long http_timeout_ms,
    nh_providers_t **out, char *err, size_t errlen)
{
    nh_providers_t  *p;
    char             def[NH_PROVIDERS_NAME_MAX + 1];
    long             burst;

    p = calloc(1, sizeof(nh_providers_t));
    if (p == NULL) {
        snprintf(err, errlen, "out of memory");
        return NH_ENOMEM;
    }

    if (nh_breaker_conf_load(cfg, http_timeout_ms, &p->breaker, err, errlen)
        != 0
        || nh_config_get_long(cfg, "NH_RATE_LIMIT", 0, 0, 1000000, &p->rate,
                              err, errlen) != 0)
    {
        goto failed;
    }

    /* A burst below one token would never let a request through. */
    burst = p->rate;
    if (nh_config_get_long(cfg, "NH_RATE_BURST", p->rate, p->rate > 0 ? 1 : 0,
                           100000000, &burst, err, errlen)
        != 0)
    {
        goto failed;
    }

    p->burst = burst;

    nh_providers_init_instance(p, &p->primary, "primary", primary);

    if (nh_providers_name(cfg, "NH_PROVIDER_NAME", primary->name,
                          p->primary.name, err, errlen)
        != NH_OK)
    {
        goto failed;
    }

    if (fallback != NULL) {
        nh_providers_init_instance(p, &p->fallback, "fallback", fallback);
        p->has_fallback = 1;

        snprintf(def, sizeof(def), "%s-fallback", fallback->name);

        if (nh_providers_name(cfg, "NH_FALLBACK_PROVIDER_NAME", def,
                              p->fallback.name, err, errlen)
            != NH_OK)
        {
            goto failed;
        }

        if (strcmp(p->primary.name, p->fallback.name) == 0) {
            snprintf(err, errlen, "NH_FALLBACK_PROVIDER_NAME \"%s\" is the "
                     "primary's name: the fallback needs a name of its own",
                     p->fallback.name);
            goto failed;
        }
    }

    *out = p;
    return NH_OK;

failed:

    free(p);
    return NH_ERROR;
}


void
nh_providers_destroy(nh_providers_t *p)
{
    free(p);
}


void
nh_providers_log_config(const nh_providers_t *p)
{
    const nh_breaker_conf_t  *b = &p->breaker;

    nh_log(NH_LOG_INFO, "provider instances", "primary=%s fallback=%s "
           "breaker_window_seconds=%" PRId64 " breaker_min_requests=%" PRId64
           " breaker_failure_percent=%" PRId64 " breaker_cooldown_seconds=%"
           PRId64 " breaker_probes=%" PRId64 " rate_limit=%ld rate_burst=%ld",
           nh_log_quote(p->primary.name),
           nh_log_quote(p->has_fallback ? p->fallback.name : NULL),
           b->window_ms / 1000, b->min_requests, b->failure_percent,
           b->cooldown_ms / 1000, b->probes, p->rate, p->burst);
}


const nh_provider_t *
nh_providers_primary(const nh_providers_t *p)
{
    return &p->primary.provider;
}


void
nh_providers_attach(nh_providers_t *p, nh_db_t *db)
{
    p->db = db;
}


void
nh_providers_tick(nh_providers_t *p)
{
    int64_t  now, since;
    int      claimed;

    now = nh_time_monotonic_ms();
    since = now - p->last_sync_ms;

    if (since < NH_PROVIDERS_SYNC_MS
        && !(since >= NH_PROVIDERS_SYNC_MIN_MS
             && (nh_providers_pending(&p->primary)
                 || nh_providers_pending(&p->fallback))))
    {
        return;
    }

    p->last_sync_ms = now;

    if (p->db == NULL || !nh_db_ready(p->db)) {
        return;
    }

    (void) nh_providers_sync(&p->primary, 0, &claimed);

    if (p->has_fallback) {
        (void) nh_providers_sync(&p->fallback, 0, &claimed);
    }
}


size_t
nh_providers_admit(nh_providers_t *p, size_t n)
{
    nh_instance_t  *inst;

    if (p->rate == 0 || n == 0) {
        return n;
    }

    /* A deferred delivery or a probe makes at most one request, so only
     * deliveries to a CLOSED instance wait for tokens. */
    inst = nh_providers_target(p, nh_time_now_ms());
    if (inst == NULL) {
        return n;
    }

    if (inst->tokens < (int64_t) n) {
        nh_providers_take_tokens(inst, n);
    }

    if (inst->tokens <= 0) {
        return 0;
    }

    return (int64_t) n < inst->tokens ? n : (size_t) inst->tokens;
}


void
nh_providers_route(nh_providers_t *p, nh_route_t *route)
{
    nh_instance_t  *prim = &p->primary;
    nh_instance_t  *fb = &p->fallback;
    int64_t         now;

    memset(route, 0, sizeof(nh_route_t));
    now = nh_time_now_ms();

    if (nh_providers_usable(prim, now)) {
        route->instance = prim;

    } else if (nh_providers_probe_due(prim, now)
               && nh_providers_try_probe(prim))
    {
        route->instance = prim;
        route->probe = prim->breaker.state == NH_BREAKER_HALF_OPEN;

    } else if (p->has_fallback && nh_providers_usable(fb, now)) {
        route->instance = fb;

    } else if (p->has_fallback && nh_providers_probe_due(fb, now)
               && nh_providers_try_probe(fb))
    {
        route->instance = fb;
        route->probe = fb->breaker.state == NH_BREAKER_HALF_OPEN;
    }

    if (route->instance != NULL) {
        route->provider = &route->instance->provider;
        return;
    }

    /* A HALF_OPEN breaker whose probe another process has claimed ends
     * that probe within a cool-down, whichever way it goes. */
    route->until_ms = prim->breaker.state == NH_BREAKER_OPEN
                      && prim->breaker.open_until_ms > now
                      ? prim->breaker.open_until_ms
                      : now + p->breaker.cooldown_ms;

    if (p->has_fallback) {
        snprintf(route->error, sizeof(route->error), "circuit breakers of "
                 "provider %s and fallback provider %s are open",
                 prim->name, fb->name);
    } else {
        snprintf(route->error, sizeof(route->error), "circuit breaker of "
                 "provider %s is open", prim->name);
    }
}


void
nh_providers_spend(const nh_route_t *route)
{
    if (route->instance != NULL && route->instance->set->rate > 0) {
        route->instance->tokens--;
    }
}


void
nh_providers_count(const nh_route_t *route, const nh_outcome_t *o)
{
    nh_breaker_counts_t  *c;
    int                   failed;

    if (route->instance == NULL) {
        return;
    }

    c = &route->instance->counts;
    failed = o->status == NH_OUTCOME_FAILED && o->transient;

    if (route->probe) {
        if (failed) {
            c->probe_failures++;
        } else {
            c->probe_successes++;
        }

        return;
    }

    c->requests++;
    c->failures += failed;
}


void
nh_providers_release(const nh_route_t *route)
{
    if (route->instance != NULL && route->probe) {
        route->instance->counts.probe_releases++;
    }
}


int
nh_providers_defer(nh_providers_t *p, const char *id,
    const nh_route_t *route, int *stored)
{
    PGresult    *res;
    const char  *values[4];
    char         until[32];
    int          rc;

    snprintf(until, sizeof(until), "%" PRId64, route->until_ms);

    values[0] = id;
    values[1] = p->primary.name;
    values[2] = until;
    values[3] = route->error;

    rc = nh_db_exec(p->db, "SELECT nh_delivery_defer($1, $2,"
                    " to_timestamp($3::bigint / 1000.0), $4)", 4, values,
                    &res);
    if (rc != NH_OK) {
        return rc;
    }

    *stored = PQntuples(res) == 1 && !PQgetisnull(res, 0, 0);
    PQclear(res);

    return NH_OK;
}


/* Reads a provider name setting: letters, digits, '.', '_' and '-'. */
static int
nh_providers_name(const nh_config_t *cfg, const char *key, const char *def,
    char *out, char *err, size_t errlen)
{
    const char  *name, *c;
    size_t       len;

    name = nh_config_get(cfg, key, def);
    len = strlen(name);

    if (len == 0 || len > NH_PROVIDERS_NAME_MAX) {
        snprintf(err, errlen, "%s \"%s\" is invalid: expected 1 to %d "
                 "characters", key, name, NH_PROVIDERS_NAME_MAX);
        return NH_ERROR;
    }

    for (c = name; *c != '\0'; c++) {
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z')
              || (*c >= '0' && *c <= '9') || *c == '.' || *c == '_'
              || *c == '-'))
        {
            snprintf(err, errlen, "%s \"%s\" is invalid: use only letters, "
                     "digits, '.', '_' and '-'", key, name);
            return NH_ERROR;
        }
    }

    memcpy(out, name, len + 1);
    return NH_OK;
}


static void
nh_providers_init_instance(nh_providers_t *p, nh_instance_t *inst,
    const char *role, const nh_provider_t *adapter)
{
    inst->set = p;
    inst->role = role;
    inst->provider = *adapter;
    inst->provider.name = inst->name;
    inst->adapter = adapter->name;
    nh_breaker_init(&inst->breaker);
}


/*
 * Clears the counts that were written. The round of this process's probe
 * claim stays, because the probe's result may arrive after this write and
 * is counted for that round.
 */
static void
nh_providers_clear_counts(nh_instance_t *inst)
{
    int64_t  round;

    round = inst->counts.probe_round;
    memset(&inst->counts, 0, sizeof(nh_breaker_counts_t));
    inst->counts.probe_round = round;
}


static int
nh_providers_pending(const nh_instance_t *inst)
{
    const nh_breaker_counts_t  *c = &inst->counts;

    return c->requests > 0 || c->probe_successes > 0
           || c->probe_failures > 0 || c->probe_releases > 0;
}


/*
 * Applies the instance's counts and the time to its row, and claims a
 * probe when claim is set: the new state is computed from the last known
 * one and written only if the row's version did not change meanwhile.
 * After a lost race the row is read again and the counts applied to it.
 * Without counts or a change, the row is only read. Sets *claimed when a
 * probe was claimed.
 */
static int
nh_providers_sync(nh_instance_t *inst, int claim, int *claimed)
{
    const nh_breaker_conf_t  *conf = &inst->set->breaker;
    nh_breaker_event_t        ev;
    nh_breaker_t              base, next;
    int64_t                   version, new_version, now;
    int                       i, rc, fresh, written, claim_ok;

    *claimed = 0;
    base = inst->breaker;
    version = inst->version;
    fresh = 0;

    /* Without anything to write, the last known state may be stale, so
     * it is read first. */
    if (!inst->known || (!nh_providers_pending(inst) && !claim)) {
        rc = nh_providers_read(inst, &base, &version);
        if (rc != NH_OK) {
            return rc;
        }

        fresh = 1;
    }

    for (i = 0; i < NH_PROVIDERS_WRITE_TRIES; i++) {
        /* NOTE: the breaker's times are this host's clock, so skew
         * between worker hosts shifts windows and cool-downs by it. */
        now = nh_time_now_ms();
        next = base;

        nh_breaker_update(conf, &next, &inst->counts, now, &ev);
        claim_ok = claim && nh_breaker_claim_probe(conf, &next, now);

        if (fresh && nh_providers_same(&next, &base)) {
            inst->breaker = base;
            inst->version = version;
            inst->known = 1;
            nh_providers_clear_counts(inst);
            return NH_OK;
        }

        rc = nh_providers_write(inst, version, &next, &new_version,
                                &written);
        if (rc != NH_OK) {
            return rc;
        }

        if (written) {
            inst->breaker = next;
            inst->version = new_version;
            inst->known = 1;
            nh_providers_clear_counts(inst);

            if (claim_ok) {
                inst->counts.probe_round = next.probe_round;
                *claimed = 1;
            }

            nh_providers_log_event(inst, &ev);
            return NH_OK;
        }

        rc = nh_providers_read(inst, &base, &version);
        if (rc != NH_OK) {
            return rc;
        }

        fresh = 1;
    }

    nh_log(NH_LOG_WARN, "provider state not written, the row kept "
           "changing", "provider=%s tries=%d", nh_log_quote(inst->name),
           NH_PROVIDERS_WRITE_TRIES);

    inst->breaker = base;
    inst->version = version;
    return NH_EAGAIN;
}


static int
nh_providers_read(nh_instance_t *inst, nh_breaker_t *b, int64_t *version)
{
    PGresult    *res;
    const char  *values[3];
    int          rc;

    values[0] = inst->name;
    values[1] = inst->provider.channel;
    values[2] = inst->adapter;

    rc = nh_db_exec(inst->set->db, "SELECT state, window_start_ms, requests,"
                    " failures, open_until_ms, probe_round, probes,"
                    " probe_expires_ms, version"
                    " FROM nh_provider_read($1, $2, $3)", 3, values, &res);
    if (rc != NH_OK) {
        nh_providers_sync_failed(inst, "read");
        return rc;
    }

    if (PQntuples(res) != 1 || PQgetisnull(res, 0, 0)
        || nh_breaker_state_parse(PQgetvalue(res, 0, 0), &b->state) != 0)
    {
        nh_log(NH_LOG_ERROR, "provider row is invalid", "provider=%s",
               nh_log_quote(inst->name));
        PQclear(res);
        return NH_ERROR;
    }

    b->window_start_ms = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    b->requests = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
    b->failures = strtoll(PQgetvalue(res, 0, 3), NULL, 10);
    b->open_until_ms = strtoll(PQgetvalue(res, 0, 4), NULL, 10);
    b->probe_round = strtoll(PQgetvalue(res, 0, 5), NULL, 10);
    b->probes = strtoll(PQgetvalue(res, 0, 6), NULL, 10);
    b->probe_expires_ms = strtoll(PQgetvalue(res, 0, 7), NULL, 10);
    *version = strtoll(PQgetvalue(res, 0, 8), NULL, 10);

    PQclear(res);
    return NH_OK;
}


static int
nh_providers_write(nh_instance_t *inst, int64_t version,
    const nh_breaker_t *b, int64_t *new_version, int *written)
{
    PGresult    *res;
    const char  *values[10];
    char         numbers[8][24];
    int          rc;

    snprintf(numbers[0], sizeof(numbers[0]), "%" PRId64, version);
    snprintf(numbers[1], sizeof(numbers[1]), "%" PRId64, b->window_start_ms);
    snprintf(numbers[2], sizeof(numbers[2]), "%" PRId64, b->requests);
    snprintf(numbers[3], sizeof(numbers[3]), "%" PRId64, b->failures);
    snprintf(numbers[4], sizeof(numbers[4]), "%" PRId64, b->open_until_ms);
    snprintf(numbers[5], sizeof(numbers[5]), "%" PRId64, b->probe_round);
    snprintf(numbers[6], sizeof(numbers[6]), "%" PRId64, b->probes);
    snprintf(numbers[7], sizeof(numbers[7]), "%" PRId64, b->probe_expires_ms);

    values[0] = inst->name;
    values[1] = numbers[0];
    values[2] = nh_breaker_state_name(b->state);
    values[3] = numbers[1];
    values[4] = numbers[2];
    values[5] = numbers[3];
    values[6] = numbers[4];
    values[7] = numbers[5];
    values[8] = numbers[6];
    values[9] = numbers[7];

    rc = nh_db_exec(inst->set->db, "SELECT nh_provider_write($1, $2, $3, $4,"
                    " $5, $6, $7, $8, $9, $10)", 10, values, &res);
    if (rc != NH_OK) {
        nh_providers_sync_failed(inst, "write");
        return rc;
    }

    *written = PQntuples(res) == 1 && !PQgetisnull(res, 0, 0);
    if (*written) {
        *new_version = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    }

    PQclear(res);
    return NH_OK;
}


static int
nh_providers_same(const nh_breaker_t *a, const nh_breaker_t *b)
{
    return a->state == b->state && a->window_start_ms == b->window_start_ms
           && a->requests == b->requests && a->failures == b->failures
           && a->open_until_ms == b->open_until_ms
           && a->probe_round == b->probe_round && a->probes == b->probes
           && a->probe_expires_ms == b->probe_expires_ms;
}


static void
nh_providers_log_event(const nh_instance_t *inst,
    const nh_breaker_event_t *ev)
{
    const nh_breaker_conf_t  *conf = &inst->set->breaker;
    char                      until[NH_RFC3339_LEN + 1];

    nh_time_format_rfc3339(ev->open_until_ms, until);

    switch (ev->transition) {

    case NH_BREAKER_OPENED:
        nh_log(NH_LOG_WARN, "provider circuit opened", "provider=%s role=%s "
               "requests=%" PRId64 " failures=%" PRId64 " window_seconds=%"
               PRId64 " failure_percent=%" PRId64 " open_until=%s",
               nh_log_quote(inst->name), inst->role, ev->requests,
               ev->failures, conf->window_ms / 1000, conf->failure_percent,
               until);
        break;

    case NH_BREAKER_HALF_OPENED:
        nh_log(NH_LOG_INFO, "provider circuit half-open", "provider=%s "
               "role=%s probes=%" PRId64, nh_log_quote(inst->name),
               inst->role, conf->probes);
        break;

    case NH_BREAKER_RECOVERED:
        nh_log(NH_LOG_INFO, "provider circuit closed", "provider=%s role=%s "
               "probe_successes=%" PRId64, nh_log_quote(inst->name),
               inst->role, ev->requests);
        break;

    case NH_BREAKER_REOPENED:
        nh_log(NH_LOG_WARN, "provider circuit opened again", "provider=%s "
               "role=%s probe_failures=%" PRId64 " open_until=%s",
               nh_log_quote(inst->name), inst->role, ev->failures, until);
        break;

    default:
        break;
    }
}


static void
nh_providers_sync_failed(nh_instance_t *inst, const char *what)
{
    nh_providers_t  *p = inst->set;
    int64_t          now;

    now = nh_time_monotonic_ms();

    if (p->last_error_ms != 0
        && now - p->last_error_ms < NH_PROVIDERS_ERROR_REPEAT_MS)
    {
        p->errors_suppressed++;
        return;
    }

    nh_log(NH_LOG_WARN, "provider state not synced, keeping the last known "
           "state", "provider=%s operation=%s state=%s suppressed=%u "
           "error=%s", nh_log_quote(inst->name), what,
           nh_breaker_state_name(inst->breaker.state), p->errors_suppressed,
           nh_log_quote(nh_db_error(p->db)));

    p->last_error_ms = now;
    p->errors_suppressed = 0;
}


/* Whether deliveries may go to the instance without a probe. */
static int
nh_providers_usable(const nh_instance_t *inst, int64_t now_ms)
{
    (void) now_ms;

    return inst->breaker.state == NH_BREAKER_CLOSED;
}


/* Whether the instance may take a probe: HALF_OPEN, or OPEN with the
 * cool-down over (the sync moves it to HALF_OPEN first). */
static int
nh_providers_probe_due(const nh_instance_t *inst, int64_t now_ms)
{
    return inst->breaker.state == NH_BREAKER_HALF_OPEN
           || (inst->breaker.state == NH_BREAKER_OPEN
               && now_ms >= inst->breaker.open_until_ms);
}


/*
 * Claims a probe through the instance's row, at most once per
 * NH_PROVIDERS_SYNC_MIN_MS. Returns 1 when this process may send one
 * request to the instance: the probe, or a plain request when the sync
 * found the breaker CLOSED again.
 */
static int
nh_providers_try_probe(nh_instance_t *inst)
{
    int64_t  now;
    int      claimed;

    now = nh_time_monotonic_ms();
    if (now - inst->last_claim_ms < NH_PROVIDERS_SYNC_MIN_MS
        || inst->set->db == NULL || !nh_db_ready(inst->set->db))
    {
        return 0;
    }

    inst->last_claim_ms = now;

    if (nh_providers_sync(inst, 1, &claimed) != NH_OK) {
        return 0;
    }

    if (claimed) {
        nh_log(NH_LOG_INFO, "provider probe claimed", "provider=%s role=%s "
               "probe_round=%" PRId64, nh_log_quote(inst->name), inst->role,
               inst->breaker.probe_round);
        return 1;
    }

    return inst->breaker.state == NH_BREAKER_CLOSED;
}


/* The instance that plain deliveries go to now, or NULL. */
static nh_instance_t *
nh_providers_target(nh_providers_t *p, int64_t now_ms)
{
    if (nh_providers_usable(&p->primary, now_ms)) {
        return &p->primary;
    }

    if (p->has_fallback && nh_providers_usable(&p->fallback, now_ms)) {
        return &p->fallback;
    }

    return NULL;
}


/*
 * Takes tokens for n deliveries from the instance's shared bucket, and
 * the debt first: up to NH_PROVIDERS_CHUNK_MS of the rate per call, so
 * that tokens held by one process stay few.
 */
static void
nh_providers_take_tokens(nh_instance_t *inst, size_t n)
{
    nh_providers_t  *p = inst->set;
    PGresult        *res;
    const char      *values[4];
    char             want_text[24], rate_text[24], burst_text[24];
    int64_t          now, chunk, want, granted, wait;
    int              rc;

    now = nh_time_monotonic_ms();
    if (now < inst->tokens_retry_ms || p->db == NULL || !nh_db_ready(p->db)) {
        return;
    }

    chunk = (p->rate * NH_PROVIDERS_CHUNK_MS + 999) / 1000;
    want = (int64_t) n < chunk ? (int64_t) n : chunk;
    if (inst->tokens < 0) {
        want -= inst->tokens;
    }

    snprintf(want_text, sizeof(want_text), "%" PRId64, want);
    snprintf(rate_text, sizeof(rate_text), "%ld", p->rate);
    snprintf(burst_text, sizeof(burst_text), "%ld", p->burst);

    values[0] = inst->name;
    values[1] = want_text;
    values[2] = rate_text;
    values[3] = burst_text;

    rc = nh_db_exec(p->db, "SELECT granted, wait_ms FROM"
                    " nh_provider_take_tokens($1, $2, $3, $4)", 4, values,
                    &res);
    if (rc != NH_OK) {
        nh_providers_sync_failed(inst, "take tokens");
        inst->tokens_retry_ms = now + NH_PROVIDERS_SYNC_MS;
        return;
    }

    granted = 0;
    wait = 0;
    if (PQntuples(res) == 1) {
        granted = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        wait = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    }

    PQclear(res);

    inst->tokens += granted;

    if (granted < want) {
        /* The bucket is empty: the next token comes after wait_ms, or
         * after one token's time when a part was granted. */
        if (granted > 0 || wait <= 0) {
            wait = 1000 / p->rate;
        }

        if (wait < NH_PROVIDERS_TOKEN_WAIT_MIN_MS) {
            wait = NH_PROVIDERS_TOKEN_WAIT_MIN_MS;
        }

        inst->tokens_retry_ms = now + wait;
    }
}
