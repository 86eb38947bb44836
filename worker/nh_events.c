#include "nh_events.h"

#include "nh_error.h"
#include "nh_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* The maximum wait for Kafka to acknowledge one batch. */
#define NH_EVENTS_FLUSH_MS  5000


static int nh_events_end(nh_db_t *db, int commit);


int
nh_events_relay(nh_db_t *db, rd_kafka_t *producer, const char *topic,
    int limit, int *relayed)
{
    PGresult             *res, *lock;
    rd_kafka_resp_err_t   err;
    const char           *values[1];
    char                  max[24], *ids, *p;
    int                   rc, i, n, failed;
    size_t                size;

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

    /* The ids as an array literal: digits and commas only. */
    size = 3;
    for (i = 0; i < n; i++) {
        size += (size_t) PQgetlength(res, i, 0) + 1;
    }

    ids = malloc(size);
    if (ids == NULL) {
        rc = NH_ERROR;
        goto failed;
    }

    p = ids;
    *p++ = '{';
    for (i = 0; i < n; i++) {
        p += sprintf(p, "%s%s", i ? "," : "", PQgetvalue(res, i, 0));
    }
    *p++ = '}';
    *p = '\0';

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
