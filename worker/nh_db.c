#include "nh_db.h"

#include "nh_error.h"
#include "nh_log.h"
#include "nh_time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#define NH_DB_BACKOFF_MIN_MS     100
#define NH_DB_BACKOFF_MAX_MS     5000
/* Used unless the DSN sets connect_timeout, so a reset cannot hang. */
#define NH_DB_CONNECT_TIMEOUT_S  "5"


struct nh_db_s {
    PGconn   *conn;
    int       connected;     /* the last check found the connection usable */
    int64_t   retry_at_ms;   /* monotonic time of the next reset */
    int64_t   backoff_ms;
    char      error[512];
    char      sqlstate[6];
};


static void nh_db_array_append(nh_db_array_t *a, const char *s, size_t n);
static void nh_db_lost(nh_db_t *db, const char *msg, const char *reason);
static void nh_db_set_error(nh_db_t *db, const char *message);


int
nh_db_check_dsn(const char *dsn, char *err, size_t errlen)
{
    PQconninfoOption  *options;
    char              *message;
    size_t             len;

    message = NULL;
    options = PQconninfoParse(dsn, &message);
    if (options == NULL) {
        snprintf(err, errlen, "%s",
                 message != NULL ? message : "out of memory");
        len = strlen(err);
        while (len > 0 && err[len - 1] == '\n') {
            err[--len] = '\0';
        }

        PQfreemem(message);
        return NH_ERROR;
    }

    PQconninfoFree(options);
    return NH_OK;
}


int
nh_db_redact_dsn(const char *dsn, char *out, size_t size)
{
    PQconninfoOption  *options, *o;
    size_t             len;
    int                n;

    options = PQconninfoParse(dsn, NULL);
    if (options == NULL) {
        return NH_ERROR;
    }

    len = 0;
    out[0] = '\0';

    for (o = options; o->keyword != NULL; o++) {
        if (o->val == NULL || strcmp(o->keyword, "password") == 0) {
            continue;
        }

        n = snprintf(out + len, size - len, "%s%s=%s", len ? " " : "",
                     o->keyword, o->val);
        if (n < 0 || (size_t) n >= size - len) {
            break;
        }

        len += (size_t) n;
    }

    PQconninfoFree(options);
    return NH_OK;
}


int
nh_db_create(const char *dsn, nh_db_t **out)
{
    nh_db_t     *db;
    const char  *keywords[] = { "connect_timeout", "dbname", NULL };
    const char  *values[] = { NH_DB_CONNECT_TIMEOUT_S, dsn, NULL };

    db = calloc(1, sizeof(nh_db_t));
    if (db == NULL) {
        return NH_ENOMEM;
    }

    /* With expand_dbname set, the settings in dsn override the
     * connect_timeout given before it. */
    db->conn = PQconnectdbParams(keywords, values, 1);
    if (db->conn == NULL) {
        free(db);
        return NH_ENOMEM;
    }

    db->backoff_ms = NH_DB_BACKOFF_MIN_MS;

    if (PQstatus(db->conn) == CONNECTION_OK) {
        db->connected = 1;
        nh_log(NH_LOG_INFO, "database connected", NULL);
    } else {
        nh_db_lost(db, "database connect failed", PQerrorMessage(db->conn));
    }

    *out = db;
    return NH_OK;
}


void
nh_db_destroy(nh_db_t *db)
{
    if (db == NULL) {
        return;
    }

    PQfinish(db->conn);
    free(db);
}


int
nh_db_ready(nh_db_t *db)
{
    if (PQstatus(db->conn) == CONNECTION_OK) {
        if (!db->connected) {
            db->connected = 1;
            db->backoff_ms = NH_DB_BACKOFF_MIN_MS;
        }

        return 1;
    }

    if (db->connected) {
        nh_db_lost(db, "database connection lost", PQerrorMessage(db->conn));
        return 0;
    }

    if (nh_time_monotonic_ms() < db->retry_at_ms) {
        return 0;
    }

    PQreset(db->conn);

    if (PQstatus(db->conn) != CONNECTION_OK) {
        nh_db_set_error(db, PQerrorMessage(db->conn));
        nh_log(NH_LOG_WARN, "database reconnect failed",
               "retry_in_ms=%lld error=%s", (long long) db->backoff_ms,
               nh_log_quote(db->error));

        db->retry_at_ms = nh_time_monotonic_ms() + db->backoff_ms;
        db->backoff_ms *= 2;
        if (db->backoff_ms > NH_DB_BACKOFF_MAX_MS) {
            db->backoff_ms = NH_DB_BACKOFF_MAX_MS;
        }

        return 0;
    }

    db->connected = 1;
    db->backoff_ms = NH_DB_BACKOFF_MIN_MS;
    nh_log(NH_LOG_INFO, "database reconnected", NULL);

    return 1;
}


int
nh_db_retry_in_ms(const nh_db_t *db)
{
    int64_t  left;

    if (PQstatus(db->conn) == CONNECTION_OK) {
        return 0;
    }

    left = db->retry_at_ms - nh_time_monotonic_ms();
    return left > 0 ? (int) left : 0;
}


int
nh_db_exec(nh_db_t *db, const char *sql, int n, const char *const *values,
    PGresult **out)
{
    PGresult    *res;
    const char  *state;

    db->error[0] = '\0';
    db->sqlstate[0] = '\0';

    if (!nh_db_ready(db)) {
        nh_db_set_error(db, "database connection is down");
        return NH_EAGAIN;
    }

    res = PQexecParams(db->conn, sql, n, NULL, values, NULL, NULL, 0);

    if (res != NULL && (PQresultStatus(res) == PGRES_TUPLES_OK
                        || PQresultStatus(res) == PGRES_COMMAND_OK))
    {
        *out = res;
        return NH_OK;
    }

    if (res == NULL) {
        nh_db_set_error(db, PQerrorMessage(db->conn));
    } else {
        nh_db_set_error(db, PQresultErrorMessage(res));

        state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        if (state != NULL) {
            snprintf(db->sqlstate, sizeof(db->sqlstate), "%s", state);
        }

        PQclear(res);
    }

    if (PQstatus(db->conn) != CONNECTION_OK) {
        nh_db_lost(db, "database connection lost", db->error);
        return NH_EAGAIN;
    }

    /* Classes 08 (connection exception), 40 (transaction rollback), 53
     * (insufficient resources), 57 (operator intervention) and 58 (system
     * error) describe the server's state, not the statement. */
    if (strncmp(db->sqlstate, "08", 2) == 0
        || strncmp(db->sqlstate, "40", 2) == 0
        || strncmp(db->sqlstate, "53", 2) == 0
        || strncmp(db->sqlstate, "57", 2) == 0
        || strncmp(db->sqlstate, "58", 2) == 0)
    {
        return NH_EAGAIN;
    }

    return NH_ERROR;
}


const char *
nh_db_error(const nh_db_t *db)
{
    return db->error;
}


const char *
nh_db_sqlstate(const nh_db_t *db)
{
    return db->sqlstate;
}


/* Marks the connection down, logs msg and schedules the first reset. */
static void
nh_db_lost(nh_db_t *db, const char *msg, const char *reason)
{
    char  message[sizeof(db->error)];

    snprintf(message, sizeof(message), "%s", reason);
    nh_db_set_error(db, message);

    db->connected = 0;
    db->backoff_ms = NH_DB_BACKOFF_MIN_MS;
    db->retry_at_ms = nh_time_monotonic_ms() + db->backoff_ms;

    nh_log(NH_LOG_WARN, msg, "retry_in_ms=%lld error=%s",
           (long long) db->backoff_ms, nh_log_quote(db->error));

    db->backoff_ms *= 2;
}


/*
 * Stores message on one line: libpq separates its lines with "\n\t",
 * and each run of whitespace becomes one space.
 */
static void
nh_db_set_error(nh_db_t *db, const char *message)
{
    const char  *in;
    char        *out, *end;
    int          space;

    if (message == NULL) {
        message = "unknown error";
    }

    out = db->error;
    end = db->error + sizeof(db->error) - 1;
    space = 0;

    for (in = message; *in != '\0' && out < end; in++) {
        if (*in == ' ' || *in == '\n' || *in == '\t' || *in == '\r') {
            space = 1;
            continue;
        }

        if (space && out > db->error) {
            *out++ = ' ';
            if (out == end) {
                break;
            }
        }

        space = 0;
        *out++ = *in;
    }

    *out = '\0';
}


int
nh_db_command(nh_db_t *db, const char *sql)
{
    PGresult  *res;
    int        rc;

    rc = nh_db_exec(db, sql, 0, NULL, &res);
    if (rc == NH_OK) {
        PQclear(res);
    }

    return rc;
}


static void
nh_db_array_append(nh_db_array_t *a, const char *s, size_t n)
{
    char    *data;
    size_t   size;

    if (a->failed) {
        return;
    }

    /* One byte more for the closing brace and one for the NUL. */
    if (a->len + n + 2 > a->size) {
        size = a->size != 0 ? a->size : 256;
        while (a->len + n + 2 > size) {
            size *= 2;
        }

        data = realloc(a->data, size);
        if (data == NULL) {
            a->failed = 1;
            return;
        }

        a->data = data;
        a->size = size;
    }

    memcpy(a->data + a->len, s, n);
    a->len += n;
}


void
nh_db_array_add(nh_db_array_t *a, const char *value)
{
    const char  *p;

    nh_db_array_append(a, a->len == 0 ? "{" : ",", 1);

    if (value == NULL) {
        nh_db_array_append(a, "NULL", 4);
        return;
    }

    nh_db_array_append(a, "\"", 1);

    for (p = value; *p != '\0'; p++) {
        if (*p == '"' || *p == '\\') {
            nh_db_array_append(a, "\\", 1);
        }

        nh_db_array_append(a, p, 1);
    }

    nh_db_array_append(a, "\"", 1);
}


void
nh_db_array_add_number(nh_db_array_t *a, long long value, int null)
{
    char  buf[24];

    if (null) {
        nh_db_array_add(a, NULL);
        return;
    }

    snprintf(buf, sizeof(buf), "%lld", value);
    nh_db_array_add(a, buf);
}


char *
nh_db_array_finish(nh_db_array_t *a)
{
    if (a->len == 0) {
        nh_db_array_append(a, "{", 1);
    }

    nh_db_array_append(a, "}", 1);

    if (a->failed) {
        free(a->data);
        return NULL;
    }

    a->data[a->len] = '\0';

    return a->data;
}
