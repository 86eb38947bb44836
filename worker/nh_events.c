#include "nh_events.h"

#include "nh_error.h"
#include "nh_log.h"

#include "nh_kafka.h"
#include "nh_outbox.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>


/* The maximum wait for Kafka to acknowledge one batch. */
#define NH_EVENTS_FLUSH_MS  5000


/* The relayer's pause between rounds, its batch, and the batches of one
 * round. */
#define NH_EVENTS_INTERVAL_MS  200
#define NH_EVENTS_BATCH        1000
#define NH_EVENTS_BATCHES      10

struct nh_events_relayer_s {
    pthread_t         thread;
    pthread_mutex_t   lock;
    pthread_cond_t    wake;
    int               stop;        /* under lock */
    nh_db_t          *db;
    rd_kafka_t       *producer;
    char             *topic;
};


static int nh_events_end(nh_db_t *db, int commit);
static void *nh_events_relayer_run(void *arg);
static int nh_events_relayer_round(nh_events_relayer_t *r);
static void nh_events_relayer_free(nh_events_relayer_t *r);


int
nh_events_relay(nh_db_t *db, rd_kafka_t *producer, const char *topic,
    int limit, int *relayed)
{
    PGresult             *res, *lock;
    rd_kafka_resp_err_t   err;
    const char           *values[1];
    nh_db_array_t         list;
    char                  max[24], *ids;
    int                   rc, i, n, failed;

    *relayed = 0;
    res = NULL;
    ids = NULL;

    rc = nh_db_command(db, "BEGIN");
    if (rc != NH_OK) {
        return rc;
    }

    rc = nh_db_exec(db, "SELECT pg_try_advisory_xact_lock(nh_events_lock())",
                    0, NULL, &lock);
    if (rc != NH_OK) {
        goto failed;
    }

    if (strcmp(PQgetvalue(lock, 0, 0), "t") != 0) {
        PQclear(lock);
        return nh_events_end(db, 0);
    }

    PQclear(lock);

    snprintf(max, sizeof(max), "%d", limit);
    values[0] = max;

    rc = nh_db_exec(db, "SELECT id, notification_id, value"
                    " FROM nh_events_claim($1)", 1, values, &res);
    if (rc != NH_OK) {
        goto failed;
    }

    n = PQntuples(res);
    if (n == 0) {
        PQclear(res);
        return nh_events_end(db, 0);
    }

    /* The delivery report callback counts failures in the opaque. */
    failed = 0;

    for (i = 0; i < n; i++) {
        err = rd_kafka_producev(producer,
                  RD_KAFKA_V_TOPIC(topic),
                  RD_KAFKA_V_KEY(PQgetvalue(res, i, 1),
                                 (size_t) PQgetlength(res, i, 1)),
                  RD_KAFKA_V_VALUE(PQgetvalue(res, i, 2),
                                   (size_t) PQgetlength(res, i, 2)),
                  RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                  RD_KAFKA_V_OPAQUE(&failed),
                  RD_KAFKA_V_END);

        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            nh_log(NH_LOG_WARN, "event relay stopped, producer refused",
                   "topic=%s error=%s", nh_log_quote(topic),
                   nh_log_quote(rd_kafka_err2str(err)));
            failed++;
            break;
        }
    }

    /* The messages handed over must be acknowledged before the delete. */
    err = rd_kafka_flush(producer, NH_EVENTS_FLUSH_MS);

    if (err != RD_KAFKA_RESP_ERR_NO_ERROR || failed > 0) {
        nh_log(NH_LOG_WARN, "event relay not acknowledged, retrying later",
               "topic=%s events=%d failed=%d error=%s", nh_log_quote(topic),
               n, failed, nh_log_quote(rd_kafka_err2str(err)));
        PQclear(res);
        return nh_events_end(db, 0) == NH_OK ? NH_EAGAIN : NH_ERROR;
    }

    memset(&list, 0, sizeof(nh_db_array_t));
    for (i = 0; i < n; i++) {
        nh_db_array_add(&list, PQgetvalue(res, i, 0));
    }

    ids = nh_db_array_finish(&list);
    if (ids == NULL) {
        rc = NH_ERROR;
        goto failed;
    }

    PQclear(res);
    res = NULL;

    values[0] = ids;

    rc = nh_db_exec(db, "DELETE FROM notification_events"
                    " WHERE id = ANY ($1::bigint[])", 1, values, &res);
    free(ids);
    ids = NULL;

    if (rc != NH_OK) {
        goto failed;
    }

    PQclear(res);
    res = NULL;

    rc = nh_events_end(db, 1);
    if (rc == NH_OK) {
        *relayed = n;
    }

    return rc;

failed:

    nh_log(NH_LOG_WARN, "event relay failed", "error=%s",
           nh_log_quote(nh_db_error(db)));
    PQclear(res);
    free(ids);
    (void) nh_events_end(db, 0);

    return rc;
}


/* Commits or rolls back the relay's transaction. */
static int
nh_events_end(nh_db_t *db, int commit)
{
    return nh_db_command(db, commit ? "COMMIT" : "ROLLBACK");
}


int
nh_events_relayer_start(const char *pg_dsn, const char *brokers,
    const char *client_id, const char *topic, nh_events_relayer_t **out)
{
    nh_events_relayer_t  *r;
    sigset_t              all, old;
    int                   err;

    *out = NULL;

    r = calloc(1, sizeof(nh_events_relayer_t));
    if (r == NULL) {
        nh_log(NH_LOG_ERROR, "event relay start failed",
               "error=\"out of memory\"");
        return NH_ERROR;
    }

    r->topic = strdup(topic);

    if (r->topic == NULL || nh_db_create(pg_dsn, &r->db) != NH_OK) {
        nh_log(NH_LOG_ERROR, "event relay start failed",
               "error=\"out of memory\"");
        nh_events_relayer_free(r);
        return NH_ERROR;
    }

    if (nh_kafka_producer_create(brokers, client_id, nh_outbox_delivered,
                                 NULL, &r->producer)
        != NH_OK)
    {
        nh_events_relayer_free(r);
        return NH_ERROR;
    }

    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->wake, NULL);

    /* The thread inherits the mask, so signals go to the main loop. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    err = pthread_create(&r->thread, NULL, nh_events_relayer_run, r);
    pthread_sigmask(SIG_SETMASK, &old, NULL);

    if (err != 0) {
        nh_log(NH_LOG_ERROR, "event relay start failed", "error=%s",
               nh_log_quote(strerror(err)));
        pthread_cond_destroy(&r->wake);
        pthread_mutex_destroy(&r->lock);
        nh_events_relayer_free(r);
        return NH_ERROR;
    }

    *out = r;

    return NH_OK;
}


void
nh_events_relayer_stop(nh_events_relayer_t *r)
{
    if (r == NULL) {
        return;
    }

    pthread_mutex_lock(&r->lock);
    r->stop = 1;
    pthread_cond_signal(&r->wake);
    pthread_mutex_unlock(&r->lock);

    pthread_join(r->thread, NULL);

    pthread_cond_destroy(&r->wake);
    pthread_mutex_destroy(&r->lock);
    nh_events_relayer_free(r);
}


static void *
nh_events_relayer_run(void *arg)
{
    nh_events_relayer_t  *r = arg;
    struct timespec       until;
    int                   more;

    pthread_mutex_lock(&r->lock);

    while (!r->stop) {
        pthread_mutex_unlock(&r->lock);

        more = nh_events_relayer_round(r);
        rd_kafka_poll(r->producer, 0);

        pthread_mutex_lock(&r->lock);

        if (more || r->stop) {
            continue;
        }

        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += (long) NH_EVENTS_INTERVAL_MS * 1000000L;
        until.tv_sec += until.tv_nsec / 1000000000L;
        until.tv_nsec %= 1000000000L;

        while (!r->stop
               && pthread_cond_timedwait(&r->wake, &r->lock, &until)
                  != ETIMEDOUT)
        {
            /* A spurious wake-up waits again. */
        }
    }

    pthread_mutex_unlock(&r->lock);

    return NULL;
}


/*
 * Relays up to NH_EVENTS_BATCHES full batches. Returns 1 when every batch
 * was full, so that more events are likely waiting, else 0.
 */
static int
nh_events_relayer_round(nh_events_relayer_t *r)
{
    int  i, relayed, total;

    if (!nh_db_ready(r->db)) {
        return 0;
    }

    total = 0;

    for (i = 0; i < NH_EVENTS_BATCHES; i++) {
        if (nh_events_relay(r->db, r->producer, r->topic, NH_EVENTS_BATCH,
                            &relayed)
            != NH_OK)
        {
            return 0;
        }

        total += relayed;

        if (relayed < NH_EVENTS_BATCH) {
            break;
        }
    }

    if (total > 0) {
        nh_log(NH_LOG_DEBUG, "status events relayed", "topic=%s events=%d",
               nh_log_quote(r->topic), total);
    }

    return i == NH_EVENTS_BATCHES;
}


static void
nh_events_relayer_free(nh_events_relayer_t *r)
{
    /* Each batch waited for its acknowledgements already. The rows of a
     * batch that Kafka did not acknowledge are relayed again later. */
    if (r->producer != NULL) {
        rd_kafka_purge(r->producer,
                       RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_poll(r->producer, 0);
        rd_kafka_destroy(r->producer);
    }

    if (r->db != NULL) {
        nh_db_destroy(r->db);
    }

    free(r->topic);
    free(r);
}
