#ifndef NH_EVENTS_H
#define NH_EVENTS_H

#include "nh_db.h"

#include <librdkafka/rdkafka.h>

/*
 * The relay of status events: rows of notification_events, written by a
 * trigger in the transaction of each status change, become messages on
 * the events topic, keyed by notification id, oldest first.
 */

/*
 * Relays at most limit events to topic in one transaction that holds the
 * relay's advisory lock, so that one process at a time relays them and
 * their order is kept. The rows are deleted only after Kafka acknowledged
 * every message; otherwise the transaction is rolled back and the same
 * events are relayed again later. Sets *relayed to the number sent, 0
 * when another process holds the lock. Returns 0, NH_EAGAIN or NH_ERROR
 * (logged).
 */
int nh_events_relay(nh_db_t *db, rd_kafka_t *producer, const char *topic,
    int limit, int *relayed);

typedef struct nh_events_relayer_s  nh_events_relayer_t;

/*
 * Starts a thread that relays the events with nh_events_relay() every
 * 200 ms, and at once again while batches come out full. It
 * has its own PostgreSQL connection and its own producer, so that waiting
 * for Kafka's acknowledgements never holds up the caller's loop. Signals
 * are blocked in the thread. Returns 0, or NH_ERROR (logged).
 */
int nh_events_relayer_start(const char *pg_dsn, const char *brokers,
    const char *client_id, const char *topic, nh_events_relayer_t **out);

/*
 * Stops the thread after its current batch, waits for it and frees
 * everything. Accepts NULL.
 */
void nh_events_relayer_stop(nh_events_relayer_t *r);

#endif /* NH_EVENTS_H */
