#include "nh_delivery.h"

#include "nh_error.h"
#include "nh_validate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>


struct nh_lease_rows_s {
    PGresult  *res;
    size_t     refs;
};


static const char *nh_delivery_value(PGresult *res, int row,
    const char *column);
static void nh_delivery_to_utf8(const char *in, char *out, size_t size);
static int nh_delivery_result(PGresult *res, int row, nh_record_t *out);


int
nh_delivery_lease_many(nh_db_t *db, char *const *ids, size_t n,
    long lease_seconds, nh_lease_t *out)
{
    nh_lease_rows_t  *rows;
    nh_lease_t       *lease;
    nh_db_array_t        list;
    PGresult         *res;
    const char       *values[2];
    const char       *item, *attempts, *busy;
    char              seconds[24];
    char             *text;
    size_t            i;
    long              k;
    int               rc, row;

    memset(out, 0, n * sizeof(nh_lease_t));
    memset(&list, 0, sizeof(nh_db_array_t));

    for (i = 0; i < n; i++) {
        nh_db_array_add(&list, ids[i]);
    }

    text = nh_db_array_finish(&list);
    rows = malloc(sizeof(nh_lease_rows_t));

    if (text == NULL || rows == NULL) {
        free(text);
        free(rows);
        return NH_ENOMEM;
    }

    snprintf(seconds, sizeof(seconds), "%ld", lease_seconds);
    values[0] = text;
    values[1] = seconds;

    rc = nh_db_exec(db, "SELECT * FROM nh_delivery_lease_many($1, $2)", 2,
                    values, &res);
    free(text);

    if (rc != NH_OK) {
        free(rows);
        return rc;
    }

    rows->res = res;
    rows->refs = 0;

    for (row = 0; row < PQntuples(res); row++) {
        item = nh_delivery_value(res, row, "item");
        k = item != NULL ? strtol(item, NULL, 10) : 0;

        /* item is a position in ids, from 1. */
        if (k < 1 || (size_t) k > n || out[k - 1].rows != NULL) {
            continue;
        }

        lease = &out[k - 1];

        busy = nh_delivery_value(res, row, "busy");
        if (busy != NULL && strcmp(busy, "t") == 0) {
            lease->busy = 1;
            continue;
        }

        lease->rows = rows;
        rows->refs++;

        lease->channel = nh_delivery_value(res, row, "channel");
        lease->delivery.notification_id = ids[k - 1];
        lease->delivery.tenant_id = nh_delivery_value(res, row, "tenant_id");
        lease->delivery.to = nh_delivery_value(res, row, "to_email");
        lease->delivery.to_json = nh_delivery_value(res, row, "to_address");
        lease->delivery.subject = nh_delivery_value(res, row, "subject");
        lease->delivery.body = nh_delivery_value(res, row, "body");
        lease->delivery.html = nh_delivery_value(res, row, "html");
        lease->delivery.data = nh_delivery_value(res, row, "data");

        lease->priority = nh_delivery_value(res, row, "priority");
        lease->channel_enabled = nh_delivery_value(res, row,
                                                   "channel_enabled");
        lease->quiet_start = nh_delivery_value(res, row, "quiet_start");
        lease->quiet_end = nh_delivery_value(res, row, "quiet_end");
        lease->quiet_timezone = nh_delivery_value(res, row,
                                                  "quiet_timezone");
        lease->failed_targets = nh_delivery_value(res, row,
                                                  "failed_targets");

        attempts = nh_delivery_value(res, row, "attempts");
        lease->delivery.attempts = attempts != NULL ? atoi(attempts) : 0;
    }

    if (rows->refs == 0) {
        PQclear(res);
        free(rows);
    }

    return NH_OK;
}


void
nh_lease_release(nh_lease_t *lease)
{
    if (lease->rows != NULL && --lease->rows->refs == 0) {
        PQclear(lease->rows->res);
        free(lease->rows);
    }

    memset(lease, 0, sizeof(nh_lease_t));
}


int
nh_delivery_decide(nh_db_t *db, const char *id, const char *status,
    const char *reason, int64_t until_sec, int *stored)
{
    PGresult    *res;
    const char  *values[4];
    char         until[32];
    int          rc;

    snprintf(until, sizeof(until), "%lld", (long long) until_sec);

    values[0] = id;
    values[1] = status;
    values[2] = reason;
    values[3] = strcmp(status, "SCHEDULED") == 0 ? until : NULL;

    rc = nh_db_exec(db, "SELECT nh_delivery_decide($1, $2, $3,"
                    " to_timestamp($4::bigint))", 4, values, &res);
    if (rc != NH_OK) {
        return rc;
    }

    *stored = PQntuples(res) == 1 && !PQgetisnull(res, 0, 0);
    PQclear(res);

    return NH_OK;
}


int
nh_delivery_record_many(nh_db_t *db, const nh_outcome_item_t *items,
    size_t n, nh_record_t *out)
{
    const nh_outcome_t  *o;
    nh_db_array_t           arrays[9];
    PGresult            *res;
    const char          *values[9];
    char                 message_id[NH_OUTCOME_ID_MAX];
    char                 error[NH_OUTCOME_ERROR_MAX];
    char                 reason[NH_OUTCOME_ERROR_MAX];
    char                *texts[9];
    size_t               i, k;
    int                  rc, bad;

    memset(out, 0, n * sizeof(nh_record_t));
    memset(arrays, 0, sizeof(arrays));

    for (i = 0; i < n; i++) {
        o = items[i].outcome;

        /* Provider replies may hold any bytes; PostgreSQL rejects text
         * that is not valid UTF-8, and would then reject the outcome on
         * every retry. */
        nh_delivery_to_utf8(o->provider_message_id, message_id,
                            sizeof(message_id));
        nh_delivery_to_utf8(o->error, error, sizeof(error));
        nh_delivery_to_utf8(items[i].dead_letter_reason != NULL
                            ? items[i].dead_letter_reason : "",
                            reason, sizeof(reason));

        nh_db_array_add(&arrays[0], items[i].id);
        nh_db_array_add(&arrays[1], items[i].provider);
        nh_db_array_add(&arrays[2],
                     o->status == NH_OUTCOME_SENT ? "SENT" : "FAILED");
        nh_db_array_add_number(&arrays[3], o->http_status, o->http_status <= 0);
        nh_db_array_add(&arrays[4], message_id[0] != '\0' ? message_id : NULL);
        nh_db_array_add(&arrays[5], error[0] != '\0' ? error : NULL);
        nh_db_array_add_number(&arrays[6], o->duration_ms, 0);
        nh_db_array_add_number(&arrays[7], items[i].retry_in_ms,
                            items[i].retry_in_ms < 0);
        nh_db_array_add(&arrays[8], reason[0] != '\0' ? reason : NULL);
    }

    bad = 0;
    for (k = 0; k < 9; k++) {
        texts[k] = nh_db_array_finish(&arrays[k]);
        bad |= texts[k] == NULL;
    }

    if (bad) {
        for (k = 0; k < 9; k++) {
            free(texts[k]);
        }

        return NH_ENOMEM;
    }

    for (k = 0; k < 9; k++) {
        values[k] = texts[k];
    }

    rc = nh_db_exec(db, "SELECT status, dead_letter FROM "
                    "nh_delivery_record_many($1, $2, $3, $4, $5, $6, $7, $8,"
                    " $9)", 9, values, &res);

    for (k = 0; k < 9; k++) {
        free(texts[k]);
    }

    if (rc != NH_OK) {
        return rc;
    }

    /* The function returns one row per item, in the items' order. */
    for (i = 0; i < n && (int) i < PQntuples(res); i++) {
        (void) nh_delivery_result(res, (int) i, &out[i]);
    }

    PQclear(res);

    return NH_OK;
}


void
nh_record_release(nh_record_t *record)
{
    free(record->dead_letter);
    memset(record, 0, sizeof(nh_record_t));
}


int
nh_delivery_record_targets(nh_db_t *db, const char *id, const char *provider,
    const nh_target_outcome_t *targets, size_t n, int64_t retry_in_ms,
    const char *dead_letter_reason, nh_record_t *out)
{
    const nh_outcome_t  *o;
    PGresult            *res;
    cJSON               *list, *item;
    const char          *values[5];
    char                 message_id[NH_OUTCOME_ID_MAX];
    char                 error[NH_OUTCOME_ERROR_MAX];
    char                 reason[NH_OUTCOME_ERROR_MAX];
    char                 retry[24];
    char                *text;
    size_t               i;
    int                  rc, bad;

    list = cJSON_CreateArray();
    if (list == NULL) {
        return NH_ENOMEM;
    }

    bad = 0;

    for (i = 0; i < n; i++) {
        o = targets[i].outcome;

        nh_delivery_to_utf8(o->provider_message_id, message_id,
                            sizeof(message_id));
        nh_delivery_to_utf8(o->error, error, sizeof(error));

        item = cJSON_CreateObject();
        if (item == NULL || !cJSON_AddItemToArray(list, item)) {
            cJSON_Delete(item);
            bad = 1;
            break;
        }

        bad |= (targets[i].target != NULL
                ? cJSON_AddStringToObject(item, "target", targets[i].target)
                : cJSON_AddNullToObject(item, "target")) == NULL;
        bad |= cJSON_AddStringToObject(item, "status",
                   o->status == NH_OUTCOME_SENT ? "SENT" : "FAILED") == NULL;
        bad |= (o->http_status > 0
                ? cJSON_AddNumberToObject(item, "httpStatus",
                                          (double) o->http_status)
                : cJSON_AddNullToObject(item, "httpStatus")) == NULL;
        bad |= (message_id[0] != '\0'
                ? cJSON_AddStringToObject(item, "providerMessageId",
                                          message_id)
                : cJSON_AddNullToObject(item, "providerMessageId")) == NULL;
        bad |= (error[0] != '\0'
                ? cJSON_AddStringToObject(item, "error", error)
                : cJSON_AddNullToObject(item, "error")) == NULL;
        bad |= cJSON_AddNumberToObject(item, "durationMs",
                                       (double) o->duration_ms) == NULL;
        bad |= cJSON_AddBoolToObject(item, "unregistered",
                                     o->unregistered != 0) == NULL;
        bad |= cJSON_AddBoolToObject(item, "permanent",
                                     o->status == NH_OUTCOME_FAILED
                                     && !o->transient) == NULL;
    }

    text = bad ? NULL : cJSON_PrintUnformatted(list);
    cJSON_Delete(list);

    if (text == NULL) {
        return NH_ENOMEM;
    }

    nh_delivery_to_utf8(dead_letter_reason != NULL ? dead_letter_reason : "",
                        reason, sizeof(reason));
    snprintf(retry, sizeof(retry), "%lld", (long long) retry_in_ms);

    values[0] = id;
    values[1] = provider;
    values[2] = text;
    values[3] = retry_in_ms >= 0 ? retry : NULL;
    values[4] = reason[0] != '\0' ? reason : NULL;

    rc = nh_db_exec(db, "SELECT status, dead_letter, deactivated, busy FROM "
                    "nh_delivery_record_targets($1, $2, $3, $4, $5)", 5,
                    values, &res);
    cJSON_free(text);

    if (rc != NH_OK) {
        return rc;
    }

    memset(out, 0, sizeof(nh_record_t));

    if (PQntuples(res) == 1) {
        (void) nh_delivery_result(res, 0, out);
    }

    PQclear(res);

    return rc;
}


/*
 * Fills out from one row of a record call's result: status, dead_letter
 * and, when present, deactivated and busy. Returns 0.
 */
static int
nh_delivery_result(PGresult *res, int row, nh_record_t *out)
{
    const char  *status, *dead_letter, *deactivated, *busy;

    memset(out, 0, sizeof(nh_record_t));

    busy = nh_delivery_value(res, row, "busy");
    out->busy = busy != NULL && strcmp(busy, "t") == 0;

    status = nh_delivery_value(res, row, "status");
    dead_letter = nh_delivery_value(res, row, "dead_letter");
    deactivated = nh_delivery_value(res, row, "deactivated");

    if (status != NULL) {
        out->stored = 1;
        snprintf(out->status, sizeof(out->status), "%s", status);
    }

    out->deactivated = deactivated != NULL ? atoi(deactivated) : 0;

    /* The outcome is committed already, so a failed copy only loses the
     * notifyhub.dlq message, which the caller logs. */
    if (dead_letter != NULL) {
        out->dead_letter = strdup(dead_letter);
    }

    return NH_OK;
}


/* Returns the row's value of column, or NULL for SQL NULL. */
static const char *
nh_delivery_value(PGresult *res, int row, const char *column)
{
    int  col;

    col = PQfnumber(res, column);
    if (col < 0 || PQgetisnull(res, row, col)) {
        return NULL;
    }

    return PQgetvalue(res, row, col);
}


/* Copies in, replacing every byte outside ASCII by '?' unless in is UTF-8. */
static void
nh_delivery_to_utf8(const char *in, char *out, size_t size)
{
    size_t  i;

    snprintf(out, size, "%s", in);

    if (nh_utf8_is_valid(out, strlen(out))) {
        return;
    }

    for (i = 0; out[i] != '\0'; i++) {
        if ((unsigned char) out[i] >= 0x80) {
            out[i] = '?';
        }
    }
}
