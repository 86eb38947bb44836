#include "nh_prefs.h"

#include "nh_error.h"
#include "nh_log.h"
#include "nh_quiet.h"
#include "nh_tz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


typedef struct {
    char      name[NH_TZ_NAME_MAX + 1];
    nh_tz_t  *tz;
} nh_zone_entry_t;

struct nh_zone_cache_s {
    char             *dir;
    nh_zone_entry_t  *entries;
    size_t            n;
    size_t            max;
    size_t            next;    /* the entry a full cache replaces next */
    nh_tz_t          *utc;
};


static nh_tz_t *nh_zone_cache_get(nh_zone_cache_t *cache, const char *name);


int
nh_zone_cache_create(const char *dir, size_t max_zones,
    nh_zone_cache_t **out)
{
    nh_zone_cache_t  *cache;

    cache = calloc(1, sizeof(nh_zone_cache_t));
    if (cache == NULL) {
        return NH_ENOMEM;
    }

    cache->max = max_zones > 0 ? max_zones : 1;
    cache->entries = calloc(cache->max, sizeof(nh_zone_entry_t));
    cache->dir = strdup(dir != NULL ? dir : NH_TZ_DEFAULT_DIR);

    if (cache->entries == NULL || cache->dir == NULL) {
        nh_zone_cache_destroy(cache);
        return NH_ENOMEM;
    }

    *out = cache;

    return NH_OK;
}


void
nh_zone_cache_destroy(nh_zone_cache_t *cache)
{
    size_t  i;

    if (cache == NULL) {
        return;
    }

    for (i = 0; i < cache->n; i++) {
        nh_tz_free(cache->entries[i].tz);
    }

    nh_tz_free(cache->utc);
    free(cache->entries);
    free(cache->dir);
    free(cache);
}


/*
 * Returns the zone called name, loading it on first use, or NULL when it
 * cannot be loaded (logged). A full cache replaces its entries in turn.
 */
static nh_tz_t *
nh_zone_cache_get(nh_zone_cache_t *cache, const char *name)
{
    nh_zone_entry_t  *e;
    nh_tz_t          *tz;
    size_t            i;
    int               rc;

    for (i = 0; i < cache->n; i++) {
        if (strcmp(cache->entries[i].name, name) == 0) {
            return cache->entries[i].tz;
        }
    }

    if (strlen(name) > NH_TZ_NAME_MAX) {
        nh_log(NH_LOG_WARN, "time zone name too long", "zone=%s",
               nh_log_quote(name));
        return NULL;
    }

    rc = nh_tz_load(cache->dir, name, &tz);
    if (rc != NH_TZ_OK) {
        nh_log(NH_LOG_WARN, "time zone load failed", "zone=%s error=%s",
               nh_log_quote(name), nh_log_quote(nh_tz_strerror(rc)));
        return NULL;
    }

    if (cache->n < cache->max) {
        e = &cache->entries[cache->n++];

    } else {
        e = &cache->entries[cache->next];
        cache->next = (cache->next + 1) % cache->max;
        nh_tz_free(e->tz);
    }

    snprintf(e->name, sizeof(e->name), "%s", name);
    e->tz = tz;

    return tz;
}


int
nh_gate_check(nh_zone_cache_t *cache, const nh_lease_t *lease,
    int64_t now_sec, nh_gate_t *out)
{
    const char  *zone;
    nh_tz_t     *tz;
    int64_t      end;
    int          start_min, end_min, inside, rc;

    memset(out, 0, sizeof(nh_gate_t));

    /* An opt-out applies to every priority. */
    if (lease->channel_enabled != NULL
        && strcmp(lease->channel_enabled, "f") == 0)
    {
        out->action = NH_GATE_SKIP;
        snprintf(out->reason, sizeof(out->reason),
                 "the recipient opted out of %s", lease->channel);
        return NH_OK;
    }

    if (lease->quiet_start == NULL || lease->quiet_end == NULL
        || (lease->priority != NULL
            && strcmp(lease->priority, "CRITICAL") == 0))
    {
        return NH_OK;
    }

    start_min = atoi(lease->quiet_start);
    end_min = atoi(lease->quiet_end);
    zone = lease->quiet_timezone != NULL ? lease->quiet_timezone : "UTC";

    tz = nh_zone_cache_get(cache, zone);

    if (tz == NULL) {
        if (cache->utc == NULL
            && nh_tz_load(cache->dir, "UTC", &cache->utc) != NH_TZ_OK)
        {
            nh_log(NH_LOG_ERROR, "time zone UTC load failed, quiet hours "
                   "ignored", "notification_id=%s",
                   lease->delivery.notification_id);
            return NH_OK;
        }

        tz = cache->utc;
    }

    rc = nh_quiet_check(tz, start_min, end_min, now_sec, &inside, &end);

    if (rc == NH_TZ_ENOMEM) {
        return NH_ENOMEM;
    }

    if (rc != NH_TZ_OK) {
        nh_log(NH_LOG_WARN, "quiet hours check failed, sending now",
               "notification_id=%s zone=%s start=%d end=%d error=%s",
               lease->delivery.notification_id, nh_log_quote(zone),
               start_min, end_min, nh_log_quote(nh_tz_strerror(rc)));
        return NH_OK;
    }

    if (inside) {
        out->action = NH_GATE_DEFER;
        out->until_sec = end;
        snprintf(out->reason, sizeof(out->reason),
                 "quiet hours %02d:%02d-%02d:%02d %s", start_min / 60,
                 start_min % 60, end_min / 60, end_min % 60, zone);
    }

    return NH_OK;
}
