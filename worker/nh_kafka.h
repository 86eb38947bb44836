#ifndef NH_KAFKA_H
#define NH_KAFKA_H

#include <librdkafka/rdkafka.h>

/* librdkafka set-up shared by the consumer loop and the outbox sweeper. */

typedef void (*nh_kafka_rebalance_pt)(rd_kafka_t *rk,
    rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *partitions,
    void *opaque);

typedef void (*nh_kafka_delivered_pt)(rd_kafka_t *rk,
    const rd_kafka_message_t *msg, void *opaque);

/*
 * Creates a high-level consumer in group, with offsets stored by the
 * application (enable.auto.offset.store=false) and committed in the
 * background (enable.auto.commit=true), starting at the earliest offset
 * of a partition without one. Events of the main queue are redirected to
 * the consumer queue. Returns 0, or NH_ERROR after logging librdkafka's
 * message.
 */
int nh_kafka_consumer_create(const char *brokers, const char *group,
    const char *client_id, nh_kafka_rebalance_pt rebalance, void *opaque,
    rd_kafka_t **out);

/*
 * Creates an idempotent producer whose delivery reports go to delivered
 * (with opaque) during rd_kafka_poll(). Returns 0, or NH_ERROR after
 * logging librdkafka's message.
 */
int nh_kafka_producer_create(const char *brokers, const char *client_id,
    nh_kafka_delivered_pt delivered, void *opaque, rd_kafka_t **out);

/*
 * Sends a CreateTopics request for topic with the broker's default
 * replication factor; the result event arrives on queue. Returns 0, or
 * NH_ERROR after logging why the request could not be made.
 */
int nh_kafka_create_topic(rd_kafka_t *rk, const char *topic, int partitions,
    int timeout_ms, rd_kafka_queue_t *queue);

/*
 * Checks a CreateTopics result event. Returns 0 when the topic was created
 * or already existed (both logged), or NH_ERROR after logging the error.
 */
int nh_kafka_create_topic_result(rd_kafka_event_t *ev, const char *topic);

#endif /* NH_KAFKA_H */
