#include "nh_outbox.h"

#include "nh_error.h"
#include "nh_log.h"
#include "nh_uuid.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static void nh_outbox_produce(PGresult *res, rd_kafka_t *producer,
    const char *topic, const char *channel, int *produced);
static int nh_outbox_claim(nh_db_t *db, const char *what, const char *sql,
    int nparams, const char *const *values, const char *channel,
    PGresult **res);


int
nh_outbox_sweep(nh_db_t *db, rd_kafka_t *producer, const char *topic,
    const char *channel, long older_than_seconds, int limit, int *produced)
{
    PGresult    *res;
    const char  *values[3];
    char         older[24], max[24];
    int          rc;

    *produced = 0;

    snprintf(older, sizeof(older), "%ld", older_than_seconds);
    snprintf(max, sizeof(max), "%d", limit);
    values[0] = channel;
    values[1] = older;
    values[2] = max;

    rc = nh_outbox_claim(db, "outbox claim failed",
                         "SELECT id, tenant_id FROM nh_outbox_claim($1, $2, "
                         "$3)", 3, values, channel, &res);
    if (rc != NH_OK) {
        return rc;
    }

    nh_outbox_produce(res, producer, topic, channel, produced);
    PQclear(res);

    return NH_OK;
}


int
nh_outbox_release_scheduled(nh_db_t *db, rd_kafka_t *producer,
    const char *topic, const char *channel, int limit, int *produced)
{
    PGresult    *res;
    const char  *values[2];
    char         max[24];
    int          rc;

    *produced = 0;

    snprintf(max, sizeof(max), "%d", limit);
    values[0] = channel;
    values[1] = max;

    rc = nh_outbox_claim(db, "schedule claim failed",
                         "SELECT id, tenant_id FROM nh_schedule_claim($1, $2)",
                         2, values, channel, &res);
    if (rc != NH_OK) {
        return rc;
    }

    nh_outbox_produce(res, producer, topic, channel, produced);
    PQclear(res);

    return NH_OK;
}


int
nh_outbox_schedule_retries(nh_db_t *db, rd_kafka_t *producer,
    const char *topic, const char *dlq_topic, const char *channel,
    long republish_seconds, long max_attempts, int limit, int *produced,
    int *dead_lettered)
{
    PGresult             *res;
    rd_kafka_resp_err_t   err;
    const char           *values[4], *id, *tenant_id, *kind, *message;
    char                  republish[24], attempts[24], max[24];
    char                  value[128];
    int                   rc, i, n, len, failed;

    *produced = 0;
    *dead_lettered = 0;

    snprintf(republish, sizeof(republish), "%ld", republish_seconds);
    snprintf(attempts, sizeof(attempts), "%ld", max_attempts);
    snprintf(max, sizeof(max), "%d", limit);
    values[0] = channel;
    values[1] = republish;
    values[2] = attempts;
    values[3] = max;

    rc = nh_outbox_claim(db, "retry claim failed",
                         "SELECT id, tenant_id, kind, dead_letter FROM "
                         "nh_retry_claim($1, $2, $3, $4)", 4, values,
                         channel, &res);
    if (rc != NH_OK) {
        return rc;
    }

    n = PQntuples(res);
    failed = 0;

    for (i = 0; i < n; i++) {
        id = PQgetvalue(res, i, 0);
        tenant_id = PQgetvalue(res, i, 1);
        kind = PQgetvalue(res, i, 2);

        if (strcmp(kind, "dead_letter") == 0) {
            message = PQgetvalue(res, i, 3);

            nh_log(NH_LOG_WARN, "notification dead-lettered, lease expired",
                   "notification_id=%s tenant_id=%s max_attempts=%ld", id,
                   tenant_id, max_attempts);

            if (nh_outbox_produce_dead_letter(producer, dlq_topic, id,
                                              message) == NH_OK)
            {
                (*dead_lettered)++;
            }

            continue;
        }

        /* After one failed produce the rest is left to a later sweep, as
         * the queue is full or the producer is failing. */
        if (failed) {
            continue;
        }

        len = snprintf(value, sizeof(value),
                       "{\"id\":\"%s\",\"tenantId\":\"%s\","
                       "\"channel\":\"%s\"}", id, tenant_id, channel);

        err = rd_kafka_producev(producer,
                                RD_KAFKA_V_TOPIC(topic),
                                RD_KAFKA_V_KEY(id, strlen(id)),
                                RD_KAFKA_V_VALUE(value, (size_t) len),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                RD_KAFKA_V_END);

        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            nh_log(NH_LOG_WARN, "retry produce failed", "topic=%s "
                   "notification_id=%s tenant_id=%s retry_in_seconds=%ld "
                   "error=%s", nh_log_quote(topic), id, tenant_id,
                   republish_seconds, nh_log_quote(rd_kafka_err2str(err)));
            failed = 1;
            continue;
        }

        nh_log(NH_LOG_DEBUG, "retry queued", "notification_id=%s "
               "tenant_id=%s", id, tenant_id);
        (*produced)++;
    }

    PQclear(res);
    rd_kafka_poll(producer, 0);

    return NH_OK;
}


int
nh_outbox_produce_dead_letter(rd_kafka_t *producer, const char *dlq_topic,
    const char *notification_id, const char *message)
{
    rd_kafka_resp_err_t  err;

    err = rd_kafka_producev(producer,
                            RD_KAFKA_V_TOPIC(dlq_topic),
                            RD_KAFKA_V_KEY(notification_id,
                                           strlen(notification_id)),
                            RD_KAFKA_V_VALUE((void *) message,
                                             strlen(message)),
                            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                            RD_KAFKA_V_END);

    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        nh_log(NH_LOG_ERROR, "dead letter produce failed", "topic=%s "
               "notification_id=%s error=%s detail=%s",
               nh_log_quote(dlq_topic), notification_id,
               nh_log_quote(rd_kafka_err2str(err)),
               nh_log_quote("the dead letter is stored in PostgreSQL, but "
                            "its message is lost"));
        return NH_ERROR;
    }

    nh_log(NH_LOG_INFO, "dead letter queued", "topic=%s notification_id=%s",
           nh_log_quote(dlq_topic), notification_id);

    return NH_OK;
}


int
nh_outbox_expire_idempotency(nh_db_t *db, int limit, int *deleted)
{
    PGresult    *res;
    const char  *values[1];
    char         max[24];
    int          rc;

    *deleted = 0;

    snprintf(max, sizeof(max), "%d", limit);
    values[0] = max;

    rc = nh_outbox_claim(db, "idempotency key expiry failed",
                         "SELECT nh_idempotency_expire($1)", 1, values, "all",
                         &res);
    if (rc != NH_OK) {
        return rc;
    }

    *deleted = atoi(PQgetvalue(res, 0, 0));
    PQclear(res);

    return NH_OK;
}


static int
nh_outbox_claim(nh_db_t *db, const char *what, const char *sql, int nparams,
    const char *const *values, const char *channel, PGresult **res)
{
    int  rc;

    rc = nh_db_exec(db, sql, nparams, values, res);

    if (rc == NH_ERROR) {
        nh_log(NH_LOG_ERROR, what, "channel=%s sqlstate=%s error=%s",
               channel, nh_db_sqlstate(db), nh_log_quote(nh_db_error(db)));
    }

    return rc;
}


/*
 * Produces one message for each claimed row (id, tenant_id). A row whose
 * produce fails is PENDING, so a later outbox sweep produces it.
 */
static void
nh_outbox_produce(PGresult *res, rd_kafka_t *producer, const char *topic,
    const char *channel, int *produced)
{
    rd_kafka_resp_err_t   err;
    const char           *id, *tenant_id;
    char                  value[128];
    int                   i, n, len;

    n = PQntuples(res);

    for (i = 0; i < n; i++) {
        id = PQgetvalue(res, i, 0);
        tenant_id = PQgetvalue(res, i, 1);

        len = snprintf(value, sizeof(value),
                       "{\"id\":\"%s\",\"tenantId\":\"%s\","
                       "\"channel\":\"%s\"}", id, tenant_id, channel);

        err = rd_kafka_producev(producer,
                                RD_KAFKA_V_TOPIC(topic),
                                RD_KAFKA_V_KEY(id, strlen(id)),
                                RD_KAFKA_V_VALUE(value, (size_t) len),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                RD_KAFKA_V_END);

        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            nh_log(NH_LOG_WARN, "outbox produce failed", "topic=%s "
                   "notification_id=%s tenant_id=%s not_produced=%d "
                   "error=%s", nh_log_quote(topic), id, tenant_id, n - i,
                   nh_log_quote(rd_kafka_err2str(err)));
            break;
        }

        (*produced)++;
    }

    /* Serve delivery reports of earlier sweeps. */
    rd_kafka_poll(producer, 0);
}


void
nh_outbox_delivered(rd_kafka_t *rk, const rd_kafka_message_t *msg,
    void *opaque)
{
    char  id[NH_UUID_STR_LEN + 1];
    int   len;

    (void) rk;
    (void) opaque;

    if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        return;
    }

    /* A message with an opaque counts its failure there (nh_events.c). */
    if (msg->_private != NULL) {
        (*(int *) msg->_private)++;
    }

    len = 0;
    if (msg->key != NULL) {
        len = msg->key_len < sizeof(id) ? (int) msg->key_len
                                        : (int) sizeof(id) - 1;
    }

    snprintf(id, sizeof(id), "%.*s", len,
             msg->key != NULL ? (const char *) msg->key : "");

    nh_log(NH_LOG_WARN, "outbox message not delivered", "topic=%s "
           "notification_id=%s error=%s",
           nh_log_quote(rd_kafka_topic_name(msg->rkt)), nh_log_quote(id),
           nh_log_quote(rd_kafka_err2str(msg->err)));
}
