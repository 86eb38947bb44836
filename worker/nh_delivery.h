#ifndef NH_DELIVERY_H
#define NH_DELIVERY_H

#include "nh_db.h"
#include "nh_provider.h"

/* Delivery bookkeeping: the SQL calls around one provider request. */

/* The result of one nh_delivery_lease_many() call, shared by its leases. */
typedef struct nh_lease_rows_s  nh_lease_rows_t;

typedef struct {
    /* NULL when the notification was not leased. */
    nh_lease_rows_t  *rows;
    /* Set when it was not leased because another transaction held its
     * row, so that it may be leasable later. */
    int               busy;
    /* Strings point into the shared result; notification_id into the
     * caller's id. */
    nh_delivery_t     delivery;
    const char       *channel;
    const char       *priority;
    /* The recipient's preferences: "t", "f" or NULL (no preferences). */
    const char       *channel_enabled;
    /* Quiet hours in minutes after midnight, or NULL, and their zone. */
    const char       *quiet_start;
    const char       *quiet_end;
    const char       *quiet_timezone;
    /* The targets that failed permanently in an earlier attempt, as a
     * JSON array of strings, or NULL. */
    const char       *failed_targets;
} nh_lease_t;

/*
 * Calls nh_delivery_lease_many() for the n >= 1 notification ids in ids,
 * in one statement. Returns 0 and, for each i, the lease of ids[i] in
 * out[i]. A leased notification has out[i].rows set, and the caller frees
 * it with nh_lease_release(). The lease of a notification that was not
 * leasable (already handled, cancelled or gone, or an id repeated in ids)
 * is zeroed, with busy set when another transaction held the row. Returns NH_ENOMEM, or NH_EAGAIN or NH_ERROR as nh_db_exec()
 * does, with out zeroed.
 */
int nh_delivery_lease_many(nh_db_t *db, char *const *ids, size_t n,
    long lease_seconds, nh_lease_t *out);

/* Frees a lease's share of its result. Accepts a zeroed lease. */
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
    /* Set when another transaction held the notification's row, so that
     * nothing was written yet. */
    int    busy;
} nh_record_t;

/* One notification's outcome, for nh_delivery_record_many(). */
typedef struct {
    const char          *id;
    /* The name of the provider that was used, for the provider column. */
    const char          *provider;
    const nh_outcome_t  *outcome;
    /* The delay before the next attempt, or -1 for none; see below. */
    int64_t              retry_in_ms;
    /* The dead letter's reason; NULL for the outcome's error. */
    const char          *dead_letter_reason;
} nh_outcome_item_t;

/*
 * Calls nh_delivery_record_many() with the outcomes of n >= 1 attempts
 * that went to one target each, in one statement, and fills out[i] for
 * items[i]. A FAILED outcome with retry_in_ms >= 0 makes the notification
 * RETRYING that many milliseconds; with retry_in_ms < 0 it becomes FAILED
 * with a dead letter. Returns 0; NH_ENOMEM; NH_EAGAIN or NH_ERROR as
 * nh_db_exec() does, with out zeroed.
 */
int nh_delivery_record_many(nh_db_t *db, const nh_outcome_item_t *items,
    size_t n, nh_record_t *out);

/* Frees the strings of a record result. Accepts a zeroed result. */
void nh_record_release(nh_record_t *record);

/*
 * Calls nh_delivery_decide() for a notification that is not sent now:
 * status "SKIPPED" or "SCHEDULED" until until_sec, with the reason in its
 * delivery log. Returns 0 and sets *stored to 1, or to 0 when the
 * notification was no longer PROCESSING and nothing was written;
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
 * target's error, chosen by retry_in_ms as in nh_delivery_record_many(). The
 * function also deactivates the devices of targets whose outcome is
 * unregistered, and when the notification becomes RETRYING it keeps the
 * targets whose failure was permanent, which later leases return in
 * failed_targets. Returns 0 and fills out; NH_ENOMEM; NH_EAGAIN or NH_ERROR
 * as nh_db_exec() does.
 */
int nh_delivery_record_targets(nh_db_t *db, const char *id,
    const char *provider, const nh_target_outcome_t *targets, size_t n,
    int64_t retry_in_ms, const char *dead_letter_reason, nh_record_t *out);

#endif /* NH_DELIVERY_H */
