#ifndef NH_PREFS_H
#define NH_PREFS_H

#include <stdint.h>

#include "nh_delivery.h"

/*
 * The delivery gate: before a leased notification is sent, the recipient's
 * preferences decide whether it is sent now, skipped because the recipient
 * opted out of the channel, or deferred to the end of the recipient's
 * quiet hours. CRITICAL notifications ignore quiet hours; nothing ignores
 * an opt-out.
 */

typedef enum {
    NH_GATE_SEND = 0,
    NH_GATE_SKIP,
    NH_GATE_DEFER
} nh_gate_action_e;

#define NH_GATE_REASON_MAX  256

typedef struct {
    nh_gate_action_e  action;
    int64_t           until_sec;   /* NH_GATE_DEFER: the window's end */
    char              reason[NH_GATE_REASON_MAX];
} nh_gate_t;

/* Loaded IANA zones, bounded, so each zone file is read once. */
typedef struct nh_zone_cache_s  nh_zone_cache_t;

/*
 * Creates a cache of at most max_zones zones read from dir (NULL: the
 * system's zoneinfo). Returns 0, or NH_ENOMEM.
 */
int nh_zone_cache_create(const char *dir, size_t max_zones,
    nh_zone_cache_t **out);

void nh_zone_cache_destroy(nh_zone_cache_t *cache);

/*
 * Decides what happens to the leased notification at now_sec (seconds
 * since the Unix epoch), from the preference columns of the lease. A
 * quiet-hours zone that cannot be loaded is logged and UTC is used in its
 * place. Returns 0 with the decision in out, or NH_ENOMEM.
 */
int nh_gate_check(nh_zone_cache_t *cache, const nh_lease_t *lease,
    int64_t now_sec, nh_gate_t *out);

#endif /* NH_PREFS_H */
