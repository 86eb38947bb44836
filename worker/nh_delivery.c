#include "nh_delivery.h"

#include "nh_error.h"
#include "nh_validate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>


static const char *nh_delivery_value(PGresult *res, const char *column);
static void nh_delivery_to_utf8(const char *in, char *out, size_t size);
static int nh_delivery_result(PGresult *res, nh_record_t *out);


int
nh_delivery_lease(nh_db_t *db, const char *id, long lease_seconds,
    nh_lease_t *out)
{
    PGresult    *res;
    const char  *values[2];
    const char  *attempts;
    char         seconds[24];
    int          rc;

    snprintf(seconds, sizeof(seconds), "%ld", lease_seconds);
    values[0] = id;
    values[1] = seconds;

    rc = nh_db_exec(db, "SELECT * FROM nh_delivery_lease($1, $2)", 2, values,
                    &res);
    if (rc != NH_OK) {
        return rc;
    }

    if (PQntuples(res) == 0) {
        PQclear(res);
        return NH_ENOENT;
    }

    memset(out, 0, sizeof(nh_lease_t));
    out->res = res;
    out->channel = nh_delivery_value(res, "channel");
    out->delivery.notification_id = id;
    out->delivery.tenant_id = nh_delivery_value(res, "tenant_id");
    out->delivery.to = nh_delivery_value(res, "to_email");
    out->delivery.to_json = nh_delivery_value(res, "to_address");
    out->delivery.subject = nh_delivery_value(res, "subject");
    out->delivery.body = nh_delivery_value(res, "body");
    out->delivery.html = nh_delivery_value(res, "html");
    out->delivery.data = nh_delivery_value(res, "data");

    out->priority = nh_delivery_value(res, "priority");
    out->channel_enabled = nh_delivery_value(res, "channel_enabled");
    out->quiet_start = nh_delivery_value(res, "quiet_start");
    out->quiet_end = nh_delivery_value(res, "quiet_end");
    out->quiet_timezone = nh_delivery_value(res, "quiet_timezone");

    attempts = nh_delivery_value(res, "attempts");
    out->delivery.attempts = attempts != NULL ? atoi(attempts) : 0;

    return NH_OK;
}


void
nh_lease_release(nh_lease_t *lease)
{
    PQclear(lease->res);
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
nh_delivery_record(nh_db_t *db, const char *id, const char *provider,
    const nh_outcome_t *outcome, int64_t retry_in_ms,
    const char *dead_letter_reason, nh_record_t *out)
{
    PGresult    *res;
    const char  *values[9];
    char         http_status[24], duration[24], retry[24];
    char         message_id[NH_OUTCOME_ID_MAX], error[NH_OUTCOME_ERROR_MAX];
    char         reason[NH_OUTCOME_ERROR_MAX];
    int          rc;

    /* Provider replies may hold any bytes; PostgreSQL rejects text that is
     * not valid UTF-8, and would then reject the outcome on every retry. */
    nh_delivery_to_utf8(outcome->provider_message_id, message_id,
                        sizeof(message_id));
    nh_delivery_to_utf8(outcome->error, error, sizeof(error));
    nh_delivery_to_utf8(dead_letter_reason != NULL ? dead_letter_reason : "",
                        reason, sizeof(reason));

    snprintf(http_status, sizeof(http_status), "%ld", outcome->http_status);
    snprintf(duration, sizeof(duration), "%lld",
             (long long) outcome->duration_ms);
    snprintf(retry, sizeof(retry), "%lld", (long long) retry_in_ms);

    values[0] = id;
    values[1] = outcome->status == NH_OUTCOME_SENT ? "SENT" : "FAILED";
    values[2] = provider;
    values[3] = outcome->http_status > 0 ? http_status : NULL;
    values[4] = message_id[0] != '\0' ? message_id : NULL;
    values[5] = error[0] != '\0' ? error : NULL;
    values[6] = duration;
    values[7] = retry_in_ms >= 0 ? retry : NULL;
    values[8] = reason[0] != '\0' ? reason : NULL;

    rc = nh_db_exec(db, "SELECT status, dead_letter FROM "
                    "nh_delivery_record($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    9, values, &res);
    if (rc != NH_OK) {
        return rc;
    }

    rc = nh_delivery_result(res, out);
    PQclear(res);

    return rc;
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

    rc = nh_db_exec(db, "SELECT status, dead_letter, deactivated FROM "
                    "nh_delivery_record_targets($1, $2, $3, $4, $5)", 5,
                    values, &res);
    cJSON_free(text);

    if (rc != NH_OK) {
        return rc;
    }

    rc = nh_delivery_result(res, out);
    PQclear(res);

    return rc;
}


/*
 * Fills out from the first row of a record call's result: status,
 * dead_letter and, when present, deactivated. Returns 0.
 */
static int
nh_delivery_result(PGresult *res, nh_record_t *out)
{
    const char  *status, *dead_letter, *deactivated;

    memset(out, 0, sizeof(nh_record_t));

    if (PQntuples(res) != 1) {
        return NH_OK;
    }

    status = nh_delivery_value(res, "status");
    dead_letter = nh_delivery_value(res, "dead_letter");
    deactivated = nh_delivery_value(res, "deactivated");

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


/* Returns the first row's value of column, or NULL for SQL NULL. */
static const char *
nh_delivery_value(PGresult *res, const char *column)
{
    int  col;

    col = PQfnumber(res, column);
    if (col < 0 || PQgetisnull(res, 0, col)) {
        return NULL;
    }

    return PQgetvalue(res, 0, col);
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
