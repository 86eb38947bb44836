#ifndef NH_DB_H
#define NH_DB_H

#include <stddef.h>

#include <libpq-fe.h>

/*
 * One blocking libpq connection that survives PostgreSQL restarts. A
 * dropped connection is reset with exponential backoff (100 ms doubling
 * to 5 s) the next time the caller asks for it with nh_db_ready().
 */

typedef struct nh_db_s  nh_db_t;

/*
 * Checks that dsn is a valid libpq connection string. Returns 0, or
 * NH_ERROR and libpq's message in err.
 */
int nh_db_check_dsn(const char *dsn, char *err, size_t errlen);

/*
 * Writes dsn as "key=value" pairs without the password, for logs. Returns
 * 0, or NH_ERROR when dsn does not parse.
 */
int nh_db_redact_dsn(const char *dsn, char *out, size_t size);

/*
 * Creates the handle and tries to connect once. A server that is down is
 * not an error: nh_db_ready() keeps trying. Returns 0, or NH_ENOMEM.
 */
int nh_db_create(const char *dsn, nh_db_t **out);

/* Closes the connection and frees db. Accepts NULL. */
void nh_db_destroy(nh_db_t *db);

/*
 * Returns 1 when the connection is usable. When it is not and the backoff
 * delay has passed, resets it first (a blocking connect). Returns 0 while
 * PostgreSQL is unreachable; the connection loss and the reconnect are
 * logged once each.
 */
int nh_db_ready(nh_db_t *db);

/*
 * Returns the milliseconds until nh_db_ready() will try to connect again,
 * 0 when it is connected or may try now.
 */
int nh_db_retry_in_ms(const nh_db_t *db);

/*
 * Runs a parameterised statement (text parameters, NULL for SQL NULL) and
 * stores the result in *out on success; the caller PQclear()s it. Returns
 * 0 on success. Returns NH_EAGAIN when the connection is unusable or the
 * error is one that a retry may clear: connection, resources, operator
 * intervention, serialisation and deadlock failures. Returns NH_ERROR for
 * any other SQL error. On failure nh_db_error() and nh_db_sqlstate()
 * describe it.
 */
int nh_db_exec(nh_db_t *db, const char *sql, int n, const char *const *values,
    PGresult **out);

/*
 * Runs a statement without parameters whose result has no rows, such as
 * BEGIN or COMMIT. Returns as nh_db_exec() does.
 */
int nh_db_command(nh_db_t *db, const char *sql);

/* The message of the last failure, without a trailing newline. */
const char *nh_db_error(const nh_db_t *db);

/* The SQLSTATE of the last failure, "" when there was none. */
const char *nh_db_sqlstate(const nh_db_t *db);

/*
 * A PostgreSQL array literal being built, for a parameter of array type.
 * Start from a zeroed one.
 */
typedef struct {
    char    *data;
    size_t   len;
    size_t   size;
    int      failed;     /* an allocation failed */
} nh_db_array_t;

/*
 * Adds an element: NULL, or value in double quotes with its quotes and
 * backslashes escaped, so that any text is one element.
 */
void nh_db_array_add(nh_db_array_t *a, const char *value);

/* Adds value as a decimal element, or NULL when null is set. */
void nh_db_array_add_number(nh_db_array_t *a, long long value, int null);

/*
 * Returns the literal, which the caller frees, or NULL when an allocation
 * failed (the array is freed then). An array without elements is "{}".
 */
char *nh_db_array_finish(nh_db_array_t *a);

#endif /* NH_DB_H */
