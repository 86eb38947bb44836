
/*
 * Reading notifications: the filtered keyset list and the delivery logs
 * of one notification, cancellation, and the readiness probe.
 */


#include "ngx_http_notifyhub_module.h"
#include "nh_time.h"


/* The names that bind a cursor to its list (see the cursor HMAC). */
#define NGX_HTTP_NOTIFYHUB_LIST_SCOPE   "notifications"
#define NGX_HTTP_NOTIFYHUB_LOGS_SCOPE   "notification_logs"

/*
 * Room for the longest status array literal: every status, the commas, the
 * braces and a NUL take 80 bytes.
 */
#define NGX_HTTP_NOTIFYHUB_STATUSES_MAX  128
/* The list query's parameters: tenant, limit, position, filters. */
#define NGX_HTTP_NOTIFYHUB_LIST_PARAMS   24
#define NGX_HTTP_NOTIFYHUB_LIST_WHERE_MAX  512


/* The filters of GET /api/notifications, as query parameters. */
typedef struct {
    /* A PostgreSQL array literal of distinct statuses, or NULL. */
    char                      *statuses;
    /* The same statuses as bits of ngx_http_notifyhub_statuses. */
    ngx_uint_t                 status_mask;
    const char                *channel;
    char                       recipient_id[NH_UUID_STR_LEN + 1];
    /* Microseconds since the Unix epoch. */
    int64_t                    from_usec;
    int64_t                    to_usec;
    ngx_uint_t                 has_recipient;
    ngx_uint_t                 has_from;
    ngx_uint_t                 has_to;
} ngx_http_notifyhub_filters_t;


static void ngx_http_notifyhub_list_authorized(ngx_http_request_t *r,
    ngx_http_notifyhub_key_t *key);
static ngx_int_t ngx_http_notifyhub_list_filters(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx, ngx_http_notifyhub_filters_t *f);
static ngx_int_t ngx_http_notifyhub_status_filter(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx, ngx_str_t *value,
    ngx_http_notifyhub_filters_t *f);
static ngx_int_t ngx_http_notifyhub_time_filter(ngx_http_notifyhub_ctx_t *ctx,
    ngx_str_t *value, const char *name, int64_t *usec);
static ngx_int_t ngx_http_notifyhub_match_value(ngx_str_t *value,
    const char *const *values);
static char *ngx_http_notifyhub_list_sql(ngx_http_request_t *r,
    ngx_http_notifyhub_filters_t *f, ngx_http_notifyhub_page_t *page,
    char *tenant_id, char *limit, const char **values, int *nvalues);
static void ngx_http_notifyhub_list_done(ngx_http_request_t *r,
    PGresult *res, void *data);
static void ngx_http_notifyhub_logs_authorized(ngx_http_request_t *r,
    ngx_http_notifyhub_key_t *key);
static void ngx_http_notifyhub_logs_done(ngx_http_request_t *r,
    PGresult *res, void *data);
static void ngx_http_notifyhub_cancel_authorized(ngx_http_request_t *r,
    ngx_http_notifyhub_key_t *key);


/* The notification statuses, as the notifications table spells them. */
static const char  *ngx_http_notifyhub_statuses[] = {
    "PENDING", "PROCESSING", "SENT", "DELIVERED", "RETRYING", "FAILED",
    "SKIPPED", "SCHEDULED", "CANCELLED", NULL
};

static const char  *ngx_http_notifyhub_list_channels[] = {
    "EMAIL", "SMS", "PUSH", NULL
};


void
ngx_http_notifyhub_notification_list(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx)
{
    ngx_http_notifyhub_authenticate(r,
        NGX_HTTP_NOTIFYHUB_SCOPE_NOTIFICATIONS_READ,
        ngx_http_notifyhub_list_authorized);
}


static void
ngx_http_notifyhub_list_authorized(ngx_http_request_t *r,
    ngx_http_notifyhub_key_t *key)
{
    int                            nvalues;
    char                          *sql;
    char                           limit[NGX_INT_T_LEN + 1];
    char                           tenant_id[NH_UUID_STR_LEN + 1];
    ngx_int_t                      rc;
    const char                    *values[NGX_HTTP_NOTIFYHUB_LIST_PARAMS];
    ngx_http_notifyhub_ctx_t      *ctx;
    ngx_http_notifyhub_page_t      page;
    ngx_http_notifyhub_filters_t   f;

    ctx = ngx_http_get_module_ctx(r, ngx_http_notifyhub_module);

    if (ngx_http_notifyhub_page_args(r, ctx, NGX_HTTP_NOTIFYHUB_LIST_SCOPE,
                                     &page)
        != NGX_OK
        || ngx_http_notifyhub_list_filters(r, ctx, &f) != NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (ctx->details) {
        ngx_http_finalize_request(r, ngx_http_notifyhub_send_invalid(r, ctx));
        return;
    }

    nh_uuid_format(key->tenant_id, tenant_id);
    ngx_sprintf((u_char *) limit, "%ui%Z", page.limit + 1);

    sql = ngx_http_notifyhub_list_sql(r, &f, &page, tenant_id, limit, values,
                                      &nvalues);
    if (sql == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    rc = ngx_http_notifyhub_pg_query(r, sql, nvalues, values, NULL, NULL,
                                     ngx_http_notifyhub_list_done,
                                     (void *) page.limit);

    if (rc != NGX_OK) {
        ngx_http_notifyhub_start_failed(r, rc);
    }
}


/*
 * Builds the query of one page: the rows of the tenant's notifications
 * that match the filters, newest first, after the cursor's position, with
 * one row past the page when a next page exists. Only the filters that
 * are given are in the text, so the planner picks the index that serves
 * them in list order, and a page stops after limit rows. Each status of a
 * list is a branch under UNION ALL with its own ORDER BY and LIMIT, which
 * the planner merges, so no branch reads more than one page. The text
 * depends only on which filters are given, so it is prepared once per
 * connection. Returns the text, with the parameters in values, or NULL
 * when memory runs out.
 */
static char *
ngx_http_notifyhub_list_sql(ngx_http_request_t *r,
    ngx_http_notifyhub_filters_t *f, ngx_http_notifyhub_page_t *page,
    char *tenant_id, char *limit, const char **values, int *nvalues)
{
    u_char      *sql, *p, *where, *w, *after_usec, *after_id;
    int64_t      usec;
    ngx_uint_t   i, n, nstatuses, keyset;

    static u_char  zero_id[NH_UUID_LEN];

    n = 0;
    values[n++] = tenant_id;
    values[n++] = limit;

    /*
     * The page starts after the cursor's position, or at "to", which as
     * the position (to, the smallest uuid) skips the newer rows in the
     * index instead of reading and rejecting them.
     */
    keyset = page->has_cursor || f->has_to;

    if (keyset) {
        after_usec = ngx_pnalloc(r->pool, NGX_INT64_LEN + 1);
        after_id = ngx_pnalloc(r->pool, NH_UUID_STR_LEN + 1);
        if (after_usec == NULL || after_id == NULL) {
            return NULL;
        }

        usec = page->has_cursor ? page->after_usec : f->to_usec;
        nh_uuid_format(page->has_cursor ? page->after_id : zero_id,
                       (char *) after_id);

        if (page->has_cursor && f->has_to && f->to_usec <= page->after_usec) {
            usec = f->to_usec;
            nh_uuid_format(zero_id, (char *) after_id);
        }

        ngx_sprintf(after_usec, "%L%Z", usec);
        values[n++] = (char *) after_usec;
        values[n++] = (char *) after_id;
    }

    where = ngx_pnalloc(r->pool, NGX_HTTP_NOTIFYHUB_LIST_WHERE_MAX);
    if (where == NULL) {
        return NULL;
    }

    w = ngx_sprintf(where, "n.tenant_id = $1");

    if (keyset) {
        w = ngx_sprintf(w, " AND (n.created_at, n.id) < (nh_usec_ts($3), $4)");
    }

    if (f->channel) {
        values[n] = f->channel;
        w = ngx_sprintf(w, " AND n.channel = $%ui", ++n);
    }

    if (f->has_recipient) {
        values[n] = f->recipient_id;
        w = ngx_sprintf(w, " AND n.recipient_id = $%ui", ++n);
    }

    if (f->has_from) {
        values[n] = ngx_pnalloc(r->pool, NGX_INT64_LEN + 1);
        if (values[n] == NULL) {
            return NULL;
        }

        ngx_sprintf((u_char *) values[n], "%L%Z", f->from_usec);
        w = ngx_sprintf(w, " AND n.created_at >= nh_usec_ts($%ui)", ++n);
    }

    *w = '\0';

    nstatuses = 0;

    for (i = 0; ngx_http_notifyhub_statuses[i]; i++) {
        nstatuses += (f->status_mask >> i) & 1;
    }

    sql = ngx_pnalloc(r->pool, (nstatuses + 1)
                               * (NGX_HTTP_NOTIFYHUB_LIST_WHERE_MAX + 512));
    if (sql == NULL) {
        return NULL;
    }

    if (nstatuses == 0) {
        p = ngx_sprintf(sql, "SELECT " NGX_HTTP_NOTIFYHUB_NOTIFICATION_COLUMNS
                        " FROM notifications n WHERE %s"
                        " ORDER BY n.created_at DESC, n.id DESC LIMIT $2",
                        where);

    } else {
        p = sql;

        for (i = 0; ngx_http_notifyhub_statuses[i]; i++) {
            if (!((f->status_mask >> i) & 1)) {
                continue;
            }

            values[n] = ngx_http_notifyhub_statuses[i];

            p = ngx_sprintf(p, "%s(SELECT "
                            NGX_HTTP_NOTIFYHUB_NOTIFICATION_COLUMNS
                            " FROM notifications n WHERE %s"
                            " AND n.status = $%ui"
                            " ORDER BY n.created_at DESC, n.id DESC"
                            " LIMIT $2)",
                            p == sql ? "" : " UNION ALL ", where, ++n);
        }

        if (nstatuses > 1) {
            p = ngx_sprintf(p, " ORDER BY created_at DESC, id DESC LIMIT $2");
        }
    }

    *p = '\0';
    *nvalues = (int) n;

    return (char *) sql;
}


/*
 * Reads the filters ?status= (one status or a comma-separated list, in
 * any case), ?channel= (in any case), ?recipientId= (a UUID), and ?from=
 * and ?to= (RFC 3339; from must not be after to). Each invalid one is
 * recorded in ctx->details. Returns NGX_OK, or NGX_ERROR when memory runs
 * out.
 */
static ngx_int_t
ngx_http_notifyhub_list_filters(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx, ngx_http_notifyhub_filters_t *f)
{
    u_char     uuid[NH_UUID_LEN];
    ngx_int_t  rc, i;
    ngx_str_t  value;

    ngx_memzero(f, sizeof(ngx_http_notifyhub_filters_t));

    rc = ngx_http_notifyhub_query_arg(r, "status", &value);

    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (rc == NGX_OK
        && ngx_http_notifyhub_status_filter(r, ctx, &value, f) != NGX_OK)
    {
        return NGX_ERROR;
    }

    rc = ngx_http_notifyhub_query_arg(r, "channel", &value);

    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (rc == NGX_OK) {
        i = ngx_http_notifyhub_match_value(&value,
                                           ngx_http_notifyhub_list_channels);
        if (i < 0) {
            ngx_http_notifyhub_invalid(ctx, "channel", "invalid_value");

        } else {
            f->channel = ngx_http_notifyhub_list_channels[i];
        }
    }

    rc = ngx_http_notifyhub_query_arg(r, "recipientId", &value);

    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (rc == NGX_OK) {
        if (nh_uuid_parse((const char *) value.data, value.len, uuid) != 0) {
            ngx_http_notifyhub_invalid(ctx, "recipientId", "invalid_format");

        } else {
            nh_uuid_format(uuid, f->recipient_id);
            f->has_recipient = 1;
        }
    }

    rc = ngx_http_notifyhub_query_arg(r, "from", &value);

    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (rc == NGX_OK) {
        f->has_from = ngx_http_notifyhub_time_filter(ctx, &value, "from",
                                                     &f->from_usec)
                      == NGX_OK;
    }

    rc = ngx_http_notifyhub_query_arg(r, "to", &value);

    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (rc == NGX_OK) {
        f->has_to = ngx_http_notifyhub_time_filter(ctx, &value, "to",
                                                   &f->to_usec)
                    == NGX_OK;
    }

    /* An equal from and to select nothing, which is not an error. */
    if (f->has_from && f->has_to && f->from_usec > f->to_usec) {
        ngx_http_notifyhub_invalid(ctx, "from", "after_to");
    }

    return NGX_OK;
}


/*
 * Reads ?status= as a comma-separated list of statuses in any case. A
 * status named twice counts once. An empty element or an unknown status
 * is recorded as invalid. Returns NGX_OK, or NGX_ERROR when memory runs
 * out.
 */
static ngx_int_t
ngx_http_notifyhub_status_filter(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx, ngx_str_t *value,
    ngx_http_notifyhub_filters_t *f)
{
    u_char      *p, *last, *comma;
    ngx_int_t    i;
    ngx_str_t    item;
    ngx_uint_t   seen;

    seen = 0;
    p = value->data;
    last = p + value->len;

    for ( ;; ) {
        comma = ngx_strlchr(p, last, ',');

        item.data = p;
        item.len = (comma ? comma : last) - p;

        i = ngx_http_notifyhub_match_value(&item,
                                           ngx_http_notifyhub_statuses);
        if (i < 0) {
            ngx_http_notifyhub_invalid(ctx, "status", "invalid_value");
            return NGX_OK;
        }

        seen |= (ngx_uint_t) 1 << i;

        if (comma == NULL) {
            break;
        }

        p = comma + 1;
    }

    f->status_mask = seen;

    f->statuses = ngx_pnalloc(r->pool, NGX_HTTP_NOTIFYHUB_STATUSES_MAX);
    if (f->statuses == NULL) {
        return NGX_ERROR;
    }

    p = (u_char *) f->statuses;
    *p++ = '{';

    for (i = 0; ngx_http_notifyhub_statuses[i]; i++) {
        if (seen & ((ngx_uint_t) 1 << i)) {
            if (p[-1] != '{') {
                *p++ = ',';
            }

            p = ngx_cpymem(p, ngx_http_notifyhub_statuses[i],
                           ngx_strlen(ngx_http_notifyhub_statuses[i]));
        }
    }

    *p++ = '}';
    *p = '\0';

    return NGX_OK;
}


/*
 * Parses an RFC 3339 time of a filter into microseconds since the Unix
 * epoch. Digits past the millisecond are dropped. Records an invalid time
 * as name and returns NGX_DECLINED.
 *
 * The query gets the time as a number because PostgreSQL rejects the text
 * of year 0000, which RFC 3339 allows.
 */
static ngx_int_t
ngx_http_notifyhub_time_filter(ngx_http_notifyhub_ctx_t *ctx,
    ngx_str_t *value, const char *name, int64_t *usec)
{
    int64_t  ms;

    if (nh_time_parse_rfc3339((const char *) value->data, value->len, &ms)
        != 0)
    {
        ngx_http_notifyhub_invalid(ctx, name, "invalid_format");
        return NGX_DECLINED;
    }

    *usec = ms * 1000;

    return NGX_OK;
}


/*
 * Returns the index of value in the NULL-terminated list values, compared
 * in any case, or -1.
 */
static ngx_int_t
ngx_http_notifyhub_match_value(ngx_str_t *value, const char *const *values)
{
    ngx_int_t  i;

    for (i = 0; values[i]; i++) {
        if (value->len == ngx_strlen(values[i])
            && ngx_strncasecmp(value->data, (u_char *) values[i], value->len)
               == 0)
        {
            return i;
        }
    }

    return -1;
}


/*
 * Sends the page: the query returned at most limit + 1 rows, and a row
 * past the page means a next page starts after the page's last row.
 */
static void
ngx_http_notifyhub_list_done(ngx_http_request_t *r, PGresult *res,
    void *data)
{
    int                         i, n, limit, last;
    u_char                      id[NH_UUID_LEN];
    int64_t                     usec;
    ngx_int_t                   rc;
    ngx_str_t                   cursor;
    ngx_http_notifyhub_jbuf_t   jb;

    limit = (int) (uintptr_t) data;

    if (ngx_http_notifyhub_pg_rows(r, res, "nh_notification_page") != NGX_OK)
    {
        return;
    }

    n = ngx_min(PQntuples(res), limit);

    if (ngx_http_notifyhub_jbuf_init(&jb, r->pool, 1024 + n * 1024)
        != NGX_OK
        || ngx_http_notifyhub_jbuf_raw(&jb, "{\"data\":[", 9) != NGX_OK)
    {
        goto failed;
    }

    for (i = 0; i < n; i++) {
        if ((i > 0 && ngx_http_notifyhub_jbuf_raw(&jb, ",", 1) != NGX_OK)
            || ngx_http_notifyhub_notification_row(&jb, res, i, 0) != NGX_OK)
        {
            goto failed;
        }
    }

    if (PQntuples(res) > limit) {
        last = n - 1;

        if (ngx_http_notifyhub_pg_time_usec(
                (u_char *) PQgetvalue(res, last,
                                      NGX_HTTP_NOTIFYHUB_NOTIFICATION_CREATED),
                PQgetlength(res, last,
                            NGX_HTTP_NOTIFYHUB_NOTIFICATION_CREATED),
                &usec)
            != NGX_OK
            || nh_uuid_parse(PQgetvalue(res, last,
                                        NGX_HTTP_NOTIFYHUB_NOTIFICATION_ID),
                             PQgetlength(res, last,
                                         NGX_HTTP_NOTIFYHUB_NOTIFICATION_ID),
                             id)
               != 0
            || ngx_http_notifyhub_cursor_encode(r,
                                                NGX_HTTP_NOTIFYHUB_LIST_SCOPE,
                                                usec, id, &cursor)
               != NGX_OK)
        {
            goto failed;
        }

        /* base64url needs no escaping inside a JSON string. */
        if (ngx_http_notifyhub_jbuf_raw(&jb, "],\"nextCursor\":\"", 16)
            != NGX_OK
            || ngx_http_notifyhub_jbuf_raw(&jb, cursor.data, cursor.len)
               != NGX_OK
            || ngx_http_notifyhub_jbuf_raw(&jb, "\"}", 2) != NGX_OK)
        {
            goto failed;
        }

    } else if (ngx_http_notifyhub_jbuf_raw(&jb, "],\"nextCursor\":null}", 20)
               != NGX_OK)
    {
        goto failed;
    }

    rc = ngx_http_notifyhub_send_json(r, NGX_HTTP_OK, jb.start,
                                      jb.pos - jb.start);
    ngx_http_finalize_request(r, rc);
    return;

failed:

    ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                  "notifyhub: cannot build a page of notifications");
    ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
}


void
ngx_http_notifyhub_notification_logs(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx)
{
    ngx_http_notifyhub_authenticate(r,
        NGX_HTTP_NOTIFYHUB_SCOPE_NOTIFICATIONS_READ,
        ngx_http_notifyhub_logs_authorized);
}


/*
 * The logs' cursor stores the last log row's id where a list cursor
 * stores a time, and the notification's id, so that the query can reject
 * a cursor of another notification's logs.
 */
static void
ngx_http_notifyhub_logs_authorized(ngx_http_request_t *r,
    ngx_http_notifyhub_key_t *key)
{
    char                        id[NH_UUID_STR_LEN + 1];
    char                        tenant_id[NH_UUID_STR_LEN + 1];
    char                        limit[NGX_INT_T_LEN + 1];
    char                        after_log[NGX_INT64_LEN + 1];
    char                        after_id[NH_UUID_STR_LEN + 1];
    ngx_int_t                   rc;
    const char                 *values[5];
    ngx_http_notifyhub_ctx_t   *ctx;
    ngx_http_notifyhub_page_t   page;

    ctx = ngx_http_get_module_ctx(r, ngx_http_notifyhub_module);

    if (ngx_http_notifyhub_path_uuid(r, ctx, 0, id, "notification not found")
        != NGX_OK)
    {
        return;
    }

    if (ngx_http_notifyhub_page_args(r, ctx, NGX_HTTP_NOTIFYHUB_LOGS_SCOPE,
                                     &page)
        != NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (ctx->details) {
        ngx_http_finalize_request(r, ngx_http_notifyhub_send_invalid(r, ctx));
        return;
    }

    nh_uuid_format(key->tenant_id, tenant_id);
    ngx_sprintf((u_char *) limit, "%ui%Z", page.limit);

    values[0] = tenant_id;
    values[1] = id;
    values[2] = limit;
    values[3] = NULL;
    values[4] = NULL;

    if (page.has_cursor) {
        ngx_sprintf((u_char *) after_log, "%L%Z", page.after_usec);
        nh_uuid_format(page.after_id, after_id);
        values[3] = after_log;
        values[4] = after_id;
    }

    rc = ngx_http_notifyhub_pg_query(r,
             "SELECT status, body, next_log, next_id "
             "FROM nh_notification_logs($1, $2, $3, $4, $5)",
             5, values, NULL, NULL, ngx_http_notifyhub_logs_done, NULL);

    if (rc != NGX_OK) {
        ngx_http_notifyhub_start_failed(r, rc);
    }
}


static void
ngx_http_notifyhub_logs_done(ngx_http_request_t *r, PGresult *res,
    void *data)
{
    ngx_http_notifyhub_send_page(r, res, NGX_HTTP_NOTIFYHUB_LOGS_SCOPE,
                                 "nh_notification_logs");
}


void
ngx_http_notifyhub_notification_cancel(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx)
{
    ngx_http_notifyhub_authenticate(r,
        NGX_HTTP_NOTIFYHUB_SCOPE_NOTIFICATIONS_WRITE,
        ngx_http_notifyhub_cancel_authorized);
}


static void
ngx_http_notifyhub_cancel_authorized(ngx_http_request_t *r,
    ngx_http_notifyhub_key_t *key)
{
    char                       id[NH_UUID_STR_LEN + 1];
    char                       tenant_id[NH_UUID_STR_LEN + 1];
    ngx_int_t                  rc;
    const char                *values[2];
    ngx_http_notifyhub_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_notifyhub_module);

    if (ngx_http_notifyhub_path_uuid(r, ctx, 0, id, "notification not found")
        != NGX_OK)
    {
        return;
    }

    nh_uuid_format(key->tenant_id, tenant_id);

    values[0] = tenant_id;
    values[1] = id;

    rc = ngx_http_notifyhub_pg_query(r,
             "SELECT status, body FROM nh_notification_cancel($1, $2)",
             2, values, NULL, NULL,
             ngx_http_notifyhub_reply_done,
             (void *) "nh_notification_cancel");

    if (rc != NGX_OK) {
        ngx_http_notifyhub_start_failed(r, rc);
    }
}


/*
 * Sends 200 when this worker process has a PostgreSQL connection and its
 * Kafka producer reports a broker as up, else 503 with Retry-After. The
 * body names the state of each.
 */
void
ngx_http_notifyhub_readyz(ngx_http_request_t *r, ngx_http_notifyhub_ctx_t *ctx)
{
    u_char      body[128], *p;
    ngx_uint_t  pg, kafka, status;

    pg = ngx_http_notifyhub_pg_ready();
    kafka = ngx_http_notifyhub_kafka_ready();

    status = NGX_HTTP_OK;

    if (!pg || !kafka) {
        status = NGX_HTTP_SERVICE_UNAVAILABLE;

        if (ngx_http_notifyhub_add_header(r, "Retry-After", "1") != NGX_OK) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "notifyhub: not ready: postgresql %ui, kafka %ui",
                       pg, kafka);
    }

    p = ngx_snprintf(body, sizeof(body),
                     "{\"status\":\"%s\","
                     "\"checks\":{\"postgresql\":\"%s\",\"kafka\":\"%s\"}}",
                     status == NGX_HTTP_OK ? "ready" : "not_ready",
                     pg ? "up" : "down", kafka ? "up" : "down");

    ngx_http_notifyhub_finish(r,
        ngx_http_notifyhub_send_json(r, status, body, p - body));
}
