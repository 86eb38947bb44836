#ifndef NH_DELIVERY_H
#define NH_DELIVERY_H

#include "nh_db.h"
#include "nh_provider.h"

/* Delivery bookkeeping: the SQL calls around one provider request. */

typedef struct {
    PGresult       *res;
    /* Strings point into res; notification_id into the caller's id. */
    nh_delivery_t   delivery;
    const char     *channel;
    const char     *priority;
    /* The recipient's preferences: "t", "f" or NULL (no preferences). */
    const char     *channel_enabled;
    /* Quiet hours in minutes after midnight, or NULL, and their zone. */
    const char     *quiet_start;
    const char     *quiet_end;
    const char     *quiet_timezone;
} nh_lease_t;

/*
 * Calls nh_delivery_lease(id, lease_seconds). Returns 0 and the leased
 * notification in out (free it with nh_lease_release()); NH_ENOENT when
 * the notification is not leasable (already handled, cancelled or gone);
 * NH_EAGAIN or NH_ERROR as nh_db_exec() does.
 */
int nh_delivery_lease(nh_db_t *db, const char *id, long lease_seconds,
    nh_lease_t *out);

/* Frees the result behind a lease. Accepts a zeroed lease. */
void nh_lease_release(nh_lease_t *lease);

/* What storing an attempt's outcome did. */
typedef struct {
    /* 0 when the notification was no longer PROCESSING and nothing was
     * written. */
    int    stored;
    /* The new status: "SENT", "RETRYING" or "FAILED"; "" when not
     * stored. */
    char   status[16];
    /* The notifyhub.dlq message of the dead letter written, or NULL (also
     * when copying it failed). Free it with nh_record_release(). */
    char  *dead_letter;
    /* The nh_device_deactivate() calls of nh_delivery_record_targets(). */
    int    deactivated;
} nh_record_t;

/*
 * Calls nh_delivery_record() with the outcome of one attempt. A FAILED
 * outcome with retry_in_ms >= 0 makes the notification RETRYING that many
 * milliseconds; with retry_in_ms < 0 it becomes FAILED with a dead letter
 * whose reason is dead_letter_reason (NULL: the outcome's error). Returns
 * 0 and fills out; NH_EAGAIN or NH_ERROR as nh_db_exec() does.
 */
int nh_delivery_record(nh_db_t *db, const char *id, const char *provider,
    const nh_outcome_t *outcome, int64_t retry_in_ms,
    const char *dead_letter_reason, nh_record_t *out);

/* Frees the strings of a record result. Accepts a zeroed result. */
void nh_record_release(nh_record_t *record);

/*
 * Calls nh_delivery_decide() for a notification that is not sent now:
 * status "SKIPPED" or "SCHEDULED" until until_sec, with the reason in its
 * delivery log. Returns 0 and sets *stored as nh_delivery_record() does;
 * NH_EAGAIN or NH_ERROR as nh_db_exec() does.
 */
int nh_delivery_decide(nh_db_t *db, const char *id, const char *status,
    const char *reason, int64_t until_sec, int *stored);

/* One target's outcome, for nh_delivery_record_targets(). */
typedef struct {
    const char          *target;    /* NULL when the failure came first */
    const nh_outcome_t  *outcome;
} nh_target_outcome_t;

/*
 * Calls nh_delivery_record_targets() with the outcomes of one attempt
 * that went to n >= 1 targets: one delivery-log row per target, SENT when
 * at least one target was sent, else RETRYING or FAILED with the last
 * target's error, chosen by retry_in_ms as in nh_delivery_record(). The
 * function also deactivates the devices of targets whose outcome is
 * unregistered. Returns 0 and fills out; NH_ENOMEM; NH_EAGAIN or NH_ERROR
 * as nh_db_exec() does.
 */
int nh_delivery_record_targets(nh_db_t *db, const char *id,
    const char *provider, const nh_target_outcome_t *targets, size_t n,
    int64_t retry_in_ms, const char *dead_letter_reason, nh_record_t *out);

#endif /* NH_DELIVERY_H */
