#ifndef NH_OUTBOX_H
#define NH_OUTBOX_H

#include <librdkafka/rdkafka.h>

#include "nh_db.h"

/*
 * Outbox sweeper. The API stores a notification as PENDING before it
 * produces the Kafka message, and a failed produce does not fail the
 * request. The sweeper finds PENDING notifications that were not updated
 * for a while and produces their messages again.
 */

/*
 * Claims up to limit PENDING notifications of channel not updated for
 * older_than_seconds (nh_outbox_claim) and produces one message for each
 * to topic: key the notification id, value
 * {"id":"<id>","tenantId":"<tenant id>","channel":"<channel>"}.
 * Returns 0 and the number of messages handed to the producer in
 * *produced; NH_EAGAIN or NH_ERROR when the claim failed (logged). A
 * claimed row whose produce fails stays PENDING for a later sweep.
 */
int nh_outbox_sweep(nh_db_t *db, rd_kafka_t *producer, const char *topic,
    const char *channel, long older_than_seconds, int limit, int *produced);

/*
 * Moves up to limit SCHEDULED notifications of channel whose scheduledAt
 * has passed to PENDING (nh_schedule_claim) and produces their messages as
 * nh_outbox_sweep does. Returns as nh_outbox_sweep returns.
 */
int nh_outbox_release_scheduled(nh_db_t *db, rd_kafka_t *producer,
    const char *topic, const char *channel, int limit, int *produced);

/*
 * Deletes up to limit idempotency keys past their 24-hour retention
 * (nh_idempotency_expire). Returns 0 and the count in *deleted, or
 * NH_EAGAIN or NH_ERROR when the call failed (logged).
 */
int nh_outbox_expire_idempotency(nh_db_t *db, int limit, int *deleted);

/*
 * Delivery report callback for the producer: logs messages that could not
 * be delivered, with their notification id.
 */
void nh_outbox_delivered(rd_kafka_t *rk, const rd_kafka_message_t *msg,
    void *opaque);

#endif /* NH_OUTBOX_H */
