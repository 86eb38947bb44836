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
 * Runs the retry scheduler of channel (nh_retry_claim), which does nothing
 * unless this process gets the scheduler's advisory lock. Then expired
 * leases become RETRYING, or FAILED with a dead letter after max_attempts.
 * Up to limit due RETRYING notifications are produced to topic as
 * nh_outbox_sweep does, and their next_attempt_at moves republish_seconds
 * ahead. The messages of new dead letters go to dlq_topic. Returns 0 with the counts in *produced
 * and *dead_lettered; NH_EAGAIN or NH_ERROR when the call failed
 * (logged). A claimed row whose produce fails is produced again after
 * republish_seconds.
 */
int nh_outbox_schedule_retries(nh_db_t *db, rd_kafka_t *producer,
    const char *topic, const char *dlq_topic, const char *channel,
    long republish_seconds, long max_attempts, int limit, int *produced,
    int *dead_lettered);

/*
 * Produces a dead letter's message (the JSON text of
 * nh_dead_letter_message) to dlq_topic, keyed by notification_id. Returns
 * 0, or NH_ERROR when the producer rejected it (logged).
 */
int nh_outbox_produce_dead_letter(rd_kafka_t *producer,
    const char *dlq_topic, const char *notification_id, const char *message);

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
