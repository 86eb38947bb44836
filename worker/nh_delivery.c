#include "nh_delivery.h"

#include "nh_error.h"
#include "nh_validate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static const char *nh_delivery_value(PGresult *res, const char *column);
static void nh_delivery_to_utf8(const char *in, char *out, size_t size);


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
    out->delivery.subject = nh_delivery_value(res, "subject");
    out->delivery.body = nh_delivery_value(res, "body");
    out->delivery.html = nh_delivery_value(res, "html");

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
nh_delivery_record(nh_db_t *db, const char *id, const char *provider,
    const nh_outcome_t *outcome, int *stored)
{
    PGresult    *res;
    const char  *values[7];
    char         http_status[24], duration[24];
    char         message_id[NH_OUTCOME_ID_MAX], error[NH_OUTCOME_ERROR_MAX];
    int          rc;

    /* Provider replies may hold any bytes; PostgreSQL rejects text that is
     * not valid UTF-8, and would then reject the outcome on every retry. */
    nh_delivery_to_utf8(outcome->provider_message_id, message_id,
                        sizeof(message_id));
    nh_delivery_to_utf8(outcome->error, error, sizeof(error));

    snprintf(http_status, sizeof(http_status), "%ld", outcome->http_status);
    snprintf(duration, sizeof(duration), "%lld",
             (long long) outcome->duration_ms);

    values[0] = id;
    values[1] = outcome->status == NH_OUTCOME_SENT ? "SENT" : "FAILED";
    values[2] = provider;
    values[3] = outcome->http_status > 0 ? http_status : NULL;
    values[4] = message_id[0] != '\0' ? message_id : NULL;
    values[5] = error[0] != '\0' ? error : NULL;
    values[6] = duration;

    rc = nh_db_exec(db, "SELECT nh_delivery_record($1, $2, $3, $4, $5, $6, "
                    "$7)", 7, values, &res);
    if (rc != NH_OK) {
        return rc;
    }

    *stored = PQntuples(res) == 1 && !PQgetisnull(res, 0, 0);
    PQclear(res);

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
