
/*
 * A per-worker-process pool of non-blocking libpq connections driven by
 * nginx events. Sockets are registered level-triggered. The read event
 * stays on for the life of the connection. The write event is on only
 * while libpq has output it could not flush. So no wake-up is lost to an
 * edge that fired before libpq was ready for it.
 */


#include "ngx_http_notifyhub_module.h"


/* The pause between reconnection rounds doubles from MIN up to MAX ms. */
#define NGX_HTTP_NOTIFYHUB_PG_BACKOFF_MIN  100
#define NGX_HTTP_NOTIFYHUB_PG_BACKOFF_MAX  1000


typedef enum {
    NGX_HTTP_NOTIFYHUB_PG_DOWN = 0,
    NGX_HTTP_NOTIFYHUB_PG_CONNECTING,
    NGX_HTTP_NOTIFYHUB_PG_IDLE,
    NGX_HTTP_NOTIFYHUB_PG_BUSY
} ngx_http_notifyhub_pg_state_e;


typedef struct ngx_http_notifyhub_pg_conn_s  ngx_http_notifyhub_pg_conn_t;


/*
 * The statements a connection keeps prepared, so that PostgreSQL parses
 * and plans the module's queries once per connection instead of once per
 * query. The module sends a bounded set of query texts: literals, and the
 * list queries built from a fixed set of filters. A connection that has
 * prepared this many sends any further text unnamed.
 */
#define NGX_HTTP_NOTIFYHUB_PG_STATEMENTS  128


typedef struct {
    u_char                           *sql;        /* ngx_alloc()ed copy */
    size_t                            len;
    ngx_uint_t                        hash;
    char                              name[NGX_INT_T_LEN + 4];
} ngx_http_notifyhub_pg_statement_t;


/*
 * A query of one request, in the request's pool, or a background query
 * (request NULL) in a pool of its own that is destroyed after its handler.
 */
typedef struct {
    ngx_queue_t                       queue;
    ngx_http_request_t               *request;
    ngx_pool_t                       *own_pool;
    ngx_http_notifyhub_pg_handler_pt  handler;
    void                             *data;

    const char                       *sql;
    int                               nparams;
    char                            **values;
    int                              *lengths;
    int                              *formats;

    ngx_msec_t                        deadline;
    ngx_http_notifyhub_pg_conn_t     *conn;

    unsigned                          queued:1;
    unsigned                          done:1;
} ngx_http_notifyhub_pg_query_t;


struct ngx_http_notifyhub_pg_conn_s {
    PGconn                           *pg;
    ngx_connection_t                 *connection;
    ngx_http_notifyhub_pg_state_e     state;

    /* The running query, or NULL once its request has gone. */
    ngx_http_notifyhub_pg_query_t    *query;
    PGresult                         *result;

    ngx_http_notifyhub_pg_statement_t  statements[
                                       NGX_HTTP_NOTIFYHUB_PG_STATEMENTS];
    ngx_uint_t                        nstatements;
    /* Names are never reused on a connection: "nh1", "nh2", ... */
    ngx_uint_t                        next_name;
    /*
     * The statement being prepared for the running query, which is sent
     * when the preparation succeeds; NULL when the query itself is sent.
     */
    ngx_http_notifyhub_pg_statement_t  *preparing;
};


typedef struct {
    ngx_http_notifyhub_main_conf_t   *conf;
    ngx_log_t                        *log;

    ngx_http_notifyhub_pg_conn_t     *conns;
    ngx_uint_t                        nconns;
    ngx_uint_t                        nalive;      /* idle or busy */

    ngx_queue_t                       waiting;
    ngx_uint_t                        nwaiting;
    ngx_event_t                       queue_timer;

    ngx_msec_t                        retry_at;
    ngx_msec_t                        backoff;
    ngx_event_t                       retry_timer;
    ngx_connection_t                  dummy;       /* for the timers' data */
} ngx_http_notifyhub_pg_pool_t;


static void ngx_http_notifyhub_pg_connect(ngx_http_notifyhub_pg_conn_t *pc);
static ngx_int_t ngx_http_notifyhub_pg_wrap_socket(
    ngx_http_notifyhub_pg_conn_t *pc);
static void ngx_http_notifyhub_pg_release_socket(
    ngx_http_notifyhub_pg_conn_t *pc, ngx_uint_t closed);
static void ngx_http_notifyhub_pg_poll_connect(
    ngx_http_notifyhub_pg_conn_t *pc);
static void ngx_http_notifyhub_pg_connect_failed(
    ngx_http_notifyhub_pg_conn_t *pc, const char *reason);
static void ngx_http_notifyhub_pg_close(ngx_http_notifyhub_pg_conn_t *pc);
static void ngx_http_notifyhub_pg_read_handler(ngx_event_t *rev);
static void ngx_http_notifyhub_pg_write_handler(ngx_event_t *wev);
static ngx_int_t ngx_http_notifyhub_pg_want_write(
    ngx_http_notifyhub_pg_conn_t *pc, ngx_uint_t on);
static ngx_int_t ngx_http_notifyhub_pg_send(ngx_http_notifyhub_pg_conn_t *pc,
    ngx_http_notifyhub_pg_query_t *q);
static void ngx_http_notifyhub_pg_receive(ngx_http_notifyhub_pg_conn_t *pc);
static void ngx_http_notifyhub_pg_complete(ngx_http_notifyhub_pg_conn_t *pc,
    PGresult *res);
static void ngx_http_notifyhub_pg_fail_query(
    ngx_http_notifyhub_pg_query_t *q);
static void ngx_http_notifyhub_pg_call(ngx_http_notifyhub_pg_query_t *q,
    PGresult *res);
static void ngx_http_notifyhub_pg_dispatch(void);
static void ngx_http_notifyhub_pg_wake(void);
static void ngx_http_notifyhub_pg_fail_waiting(void);
static void ngx_http_notifyhub_pg_queue_timeout(ngx_event_t *ev);
static void ngx_http_notifyhub_pg_retry(ngx_event_t *ev);
static void ngx_http_notifyhub_pg_cleanup(void *data);
static char *ngx_http_notifyhub_pg_options(ngx_conf_t *cf,
    const char *options);
static ngx_http_notifyhub_pg_statement_t *ngx_http_notifyhub_pg_statement(
    ngx_http_notifyhub_pg_conn_t *pc, const char *sql, ngx_uint_t *found);
static ngx_int_t ngx_http_notifyhub_pg_prepared(
    ngx_http_notifyhub_pg_conn_t *pc, PGresult *res);
static void ngx_http_notifyhub_pg_forget(ngx_http_notifyhub_pg_conn_t *pc);


static ngx_http_notifyhub_pg_pool_t  *ngx_http_notifyhub_pg_pool;


ngx_int_t
ngx_http_notifyhub_pg_init_process(ngx_cycle_t *cycle,
    ngx_http_notifyhub_main_conf_t *nmcf)
{
    ngx_uint_t                     i;
    ngx_http_notifyhub_pg_pool_t  *pool;

    pool = ngx_pcalloc(cycle->pool, sizeof(ngx_http_notifyhub_pg_pool_t));
    if (pool == NULL) {
        return NGX_ERROR;
    }

    pool->conns = ngx_pcalloc(cycle->pool,
                      nmcf->pg_pool_size * sizeof(ngx_http_notifyhub_pg_conn_t));
    if (pool->conns == NULL) {
        return NGX_ERROR;
    }

    pool->conf = nmcf;
    pool->log = cycle->log;
    pool->nconns = nmcf->pg_pool_size;
    ngx_queue_init(&pool->waiting);

    pool->dummy.fd = (ngx_socket_t) -1;

    pool->queue_timer.handler = ngx_http_notifyhub_pg_queue_timeout;
    pool->queue_timer.data = &pool->dummy;
    pool->queue_timer.log = cycle->log;
    pool->queue_timer.cancelable = 1;

    pool->retry_timer.handler = ngx_http_notifyhub_pg_retry;
    pool->retry_timer.data = &pool->dummy;
    pool->retry_timer.log = cycle->log;
    pool->retry_timer.cancelable = 1;

    ngx_http_notifyhub_pg_pool = pool;

    for (i = 0; i < pool->nconns; i++) {
        ngx_http_notifyhub_pg_connect(&pool->conns[i]);
    }

    return NGX_OK;
}


void
ngx_http_notifyhub_pg_exit_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                     i;
    ngx_http_notifyhub_pg_pool_t  *pool;

    pool = ngx_http_notifyhub_pg_pool;
    if (pool == NULL) {
        return;
    }

    for (i = 0; i < pool->nconns; i++) {
        if (pool->conns[i].pg) {
            ngx_http_notifyhub_pg_close(&pool->conns[i]);
        }
    }

    ngx_http_notifyhub_pg_pool = NULL;
}


/* Returns 1 when at least one connection is established. */
ngx_uint_t
ngx_http_notifyhub_pg_ready(void)
{
    return ngx_http_notifyhub_pg_pool
           && ngx_http_notifyhub_pg_pool->nalive > 0;
}


/*
 * Queues a parameterised query for the request, or a background query when
 * r is NULL. The parameters are copied, so the caller's buffers may go
 * away. Returns NGX_OK when the handler will be called later, NGX_BUSY when
 * the wait queue is full, NGX_DECLINED when no connection can be had now
 * (the database is down), NGX_ERROR on an allocation failure. The handler
 * is never called when the return value is not NGX_OK.
 */
ngx_int_t
ngx_http_notifyhub_pg_query(ngx_http_request_t *r, const char *sql,
    int nparams, const char *const *values, const int *lengths,
    const int *formats, ngx_http_notifyhub_pg_handler_pt handler, void *data)
{
    int                             i;
    size_t                          len;
    ngx_int_t                       rc;
    ngx_uint_t                      j;
    ngx_pool_t                     *mem;
    ngx_pool_cleanup_t             *cln;
    ngx_http_notifyhub_pg_pool_t   *pool;
    ngx_http_notifyhub_pg_conn_t   *pc;
    ngx_http_notifyhub_pg_query_t  *q;

    pool = ngx_http_notifyhub_pg_pool;

    if (pool == NULL) {
        return NGX_DECLINED;
    }

    if (r) {
        mem = r->pool;

    } else {
        mem = ngx_create_pool(1024, pool->log);
        if (mem == NULL) {
            return NGX_ERROR;
        }
    }

    q = ngx_pcalloc(mem, sizeof(ngx_http_notifyhub_pg_query_t));
    if (q == NULL) {
        rc = NGX_ERROR;
        goto failed;
    }

    q->request = r;
    q->own_pool = r ? NULL : mem;
    q->handler = handler;
    q->data = data;
    q->sql = sql;
    q->nparams = nparams;

    if (nparams > 0) {
        q->values = ngx_pcalloc(mem, nparams * sizeof(char *));
        q->lengths = ngx_pcalloc(mem, nparams * sizeof(int));
        q->formats = ngx_pcalloc(mem, nparams * sizeof(int));
        if (q->values == NULL || q->lengths == NULL || q->formats == NULL) {
            rc = NGX_ERROR;
            goto failed;
        }

        for (i = 0; i < nparams; i++) {
            if (values[i] == NULL) {
                continue;
            }

            q->formats[i] = formats ? formats[i] : 0;
            len = (q->formats[i] == 1) ? (size_t) lengths[i]
                                       : ngx_strlen(values[i]);

            q->values[i] = ngx_pnalloc(mem, len + 1);
            if (q->values[i] == NULL) {
                rc = NGX_ERROR;
                goto failed;
            }

            ngx_memcpy(q->values[i], values[i], len);
            q->values[i][len] = '\0';
            q->lengths[i] = (int) len;
        }
    }

    if (r) {
        cln = ngx_pool_cleanup_add(r->pool, 0);
        if (cln == NULL) {
            return NGX_ERROR;
        }

        cln->handler = ngx_http_notifyhub_pg_cleanup;
        cln->data = q;
    }

    for (j = 0; j < pool->nconns; j++) {
        pc = &pool->conns[j];

        if (pc->state == NGX_HTTP_NOTIFYHUB_PG_IDLE
            && ngx_http_notifyhub_pg_send(pc, q) == NGX_OK)
        {
            return NGX_OK;
        }
    }

    ngx_http_notifyhub_pg_wake();

    if (pool->nalive == 0) {
        for (j = 0; j < pool->nconns; j++) {
            if (pool->conns[j].state == NGX_HTTP_NOTIFYHUB_PG_CONNECTING) {
                break;
            }
        }

        if (j == pool->nconns) {
            q->done = 1;
            rc = NGX_DECLINED;
            goto failed;
        }
    }

    if (pool->nwaiting >= pool->conf->pg_queue_size) {
        ngx_log_error(NGX_LOG_WARN, pool->log, 0,
                      "notifyhub: postgresql wait queue is full (%ui queries)",
                      pool->nwaiting);
        q->done = 1;
        rc = NGX_BUSY;
        goto failed;
    }

    q->deadline = ngx_current_msec + pool->conf->pg_queue_timeout;
    q->queued = 1;
    ngx_queue_insert_tail(&pool->waiting, &q->queue);
    pool->nwaiting++;

    if (!pool->queue_timer.timer_set) {
        ngx_add_timer(&pool->queue_timer, pool->conf->pg_queue_timeout);
    }

    return NGX_OK;

failed:

    if (r == NULL) {
        ngx_destroy_pool(mem);
    }

    return rc;
}


static void
ngx_http_notifyhub_pg_connect(ngx_http_notifyhub_pg_conn_t *pc)
{
    ngx_http_notifyhub_pg_pool_t  *pool;

    pool = ngx_http_notifyhub_pg_pool;

    pc->pg = PQconnectStartParams(pool->conf->pg_keywords,
                                  pool->conf->pg_values, 0);
    if (pc->pg == NULL) {
        ngx_log_error(NGX_LOG_ERR, pool->log, 0,
                      "notifyhub: PQconnectStartParams() failed: "
                      "out of memory");
        ngx_http_notifyhub_pg_connect_failed(pc, NULL);
        return;
    }

    if (PQstatus(pc->pg) == CONNECTION_BAD) {
        ngx_http_notifyhub_pg_connect_failed(pc, PQerrorMessage(pc->pg));
        return;
    }

    if (PQsetnonblocking(pc->pg, 1) == -1) {
        ngx_http_notifyhub_pg_connect_failed(pc, PQerrorMessage(pc->pg));
        return;
    }

    pc->state = NGX_HTTP_NOTIFYHUB_PG_CONNECTING;

    if (ngx_http_notifyhub_pg_wrap_socket(pc) != NGX_OK) {
        ngx_http_notifyhub_pg_connect_failed(pc, "cannot register the socket");
        return;
    }

    ngx_add_timer(pc->connection->read, pool->conf->pg_connect_timeout);

    /* libpq starts by waiting for the socket to become writable. */
    if (ngx_http_notifyhub_pg_want_write(pc, 1) != NGX_OK) {
        ngx_http_notifyhub_pg_connect_failed(pc, "cannot register the socket");
    }
}


static ngx_int_t
ngx_http_notifyhub_pg_wrap_socket(ngx_http_notifyhub_pg_conn_t *pc)
{
    int                            fd;
    ngx_connection_t              *c;
    ngx_http_notifyhub_pg_pool_t  *pool;

    pool = ngx_http_notifyhub_pg_pool;

    fd = PQsocket(pc->pg);
    if (fd == -1) {
        return NGX_ERROR;
    }

    c = ngx_get_connection(fd, pool->log);
    if (c == NULL) {
        return NGX_ERROR;
    }

    c->data = pc;
    c->read->handler = ngx_http_notifyhub_pg_read_handler;
    c->write->handler = ngx_http_notifyhub_pg_write_handler;
    c->read->log = pool->log;
    c->write->log = pool->log;
    c->log = pool->log;

    pc->connection = c;

    if (ngx_add_event(c->read, NGX_READ_EVENT, NGX_LEVEL_EVENT) != NGX_OK) {
        ngx_http_notifyhub_pg_release_socket(pc, 0);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * Forgets the nginx side of the socket. libpq owns the descriptor: it is
 * either closed already (closed = 1) or about to be closed by PQfinish(),
 * and either way the kernel drops it from epoll then.
 */
static void
ngx_http_notifyhub_pg_release_socket(ngx_http_notifyhub_pg_conn_t *pc,
    ngx_uint_t closed)
{
    ngx_connection_t  *c;

    c = pc->connection;
    if (c == NULL) {
        return;
    }

    if (c->read->timer_set) {
        ngx_del_timer(c->read);
    }

    if (c->write->timer_set) {
        ngx_del_timer(c->write);
    }

    if (c->read->posted) {
        ngx_delete_posted_event(c->read);
    }

    if (c->write->posted) {
        ngx_delete_posted_event(c->write);
    }

    if (closed) {
        c->read->active = 0;
        c->write->active = 0;

    } else {
        if (c->read->active) {
            ngx_del_event(c->read, NGX_READ_EVENT, NGX_CLOSE_EVENT);
        }

        if (c->write->active) {
            ngx_del_event(c->write, NGX_WRITE_EVENT, NGX_CLOSE_EVENT);
        }
    }

    c->read->closed = 1;
    c->write->closed = 1;

    ngx_free_connection(c);
    c->fd = (ngx_socket_t) -1;

    pc->connection = NULL;
}


static ngx_int_t
ngx_http_notifyhub_pg_want_write(ngx_http_notifyhub_pg_conn_t *pc,
    ngx_uint_t on)
{
    ngx_event_t  *wev;

    wev = pc->connection->write;

    if (on && !wev->active) {
        return ngx_add_event(wev, NGX_WRITE_EVENT, NGX_LEVEL_EVENT);
    }

    if (!on && wev->active) {
        return ngx_del_event(wev, NGX_WRITE_EVENT, 0);
    }

    return NGX_OK;
}


static void
ngx_http_notifyhub_pg_poll_connect(ngx_http_notifyhub_pg_conn_t *pc)
{
    int                            fd;
    PostgresPollingStatusType      rc;
    ngx_http_notifyhub_pg_pool_t  *pool;

    pool = ngx_http_notifyhub_pg_pool;

    for ( ;; ) {
        fd = pc->connection->fd;
        rc = PQconnectPoll(pc->pg);

        /* libpq opens a new socket when it tries another address. */
        if (PQsocket(pc->pg) != fd) {
            ngx_http_notifyhub_pg_release_socket(pc, 1);

            if (rc == PGRES_POLLING_FAILED) {
                break;
            }

            if (ngx_http_notifyhub_pg_wrap_socket(pc) != NGX_OK) {
                ngx_http_notifyhub_pg_connect_failed(pc,
                                                 "cannot register the socket");
                return;
            }

            ngx_add_timer(pc->connection->read,
                          pool->conf->pg_connect_timeout);
        }

        switch (rc) {

        case PGRES_POLLING_READING:
            if (ngx_http_notifyhub_pg_want_write(pc, 0) != NGX_OK) {
                break;
            }
            return;

        case PGRES_POLLING_WRITING:
            if (ngx_http_notifyhub_pg_want_write(pc, 1) != NGX_OK) {
                break;
            }
            return;

        case PGRES_POLLING_OK:
            if (pc->connection->read->timer_set) {
                ngx_del_timer(pc->connection->read);
            }

            if (ngx_http_notifyhub_pg_want_write(pc, 0) != NGX_OK) {
                break;
            }

            pc->state = NGX_HTTP_NOTIFYHUB_PG_IDLE;
            pool->nalive++;
            pool->backoff = 0;

            ngx_log_error(NGX_LOG_NOTICE, pool->log, 0,
                          "notifyhub: connected to postgresql, "
                          "%ui of %ui connections up",
                          pool->nalive, pool->nconns);

            ngx_http_notifyhub_pg_dispatch();
            return;

        default: /* PGRES_POLLING_FAILED */
            break;
        }

        break;
    }

    ngx_http_notifyhub_pg_connect_failed(pc, PQerrorMessage(pc->pg));
}


static void
ngx_http_notifyhub_pg_connect_failed(ngx_http_notifyhub_pg_conn_t *pc,
    const char *reason)
{
    ngx_uint_t                     i, new_round;
    ngx_http_notifyhub_pg_pool_t  *pool;

    pool = ngx_http_notifyhub_pg_pool;

    /*
     * All connections that fail within one backoff window count as one
     * failed round: the pause doubles once per round and one line is
     * logged per round.
     */
    new_round = pool->backoff == 0
                || (ngx_msec_int_t) (ngx_current_msec - pool->retry_at) >= 0;

    if (reason && new_round) {
        ngx_log_error(NGX_LOG_ERR, pool->log, 0,
                      "notifyhub: connecting to postgresql failed: %s",
                      reason);
    }

    ngx_http_notifyhub_pg_close(pc);

    if (new_round) {
        pool->backoff = pool->backoff
                        ? ngx_min(pool->backoff * 2,
                                  NGX_HTTP_NOTIFYHUB_PG_BACKOFF_MAX)
                        : NGX_HTTP_NOTIFYHUB_PG_BACKOFF_MIN;
        pool->retry_at = ngx_current_msec + pool->backoff;
    }

    if (!pool->retry_timer.timer_set) {
        ngx_add_timer(&pool->retry_timer,
                      (ngx_msec_t) ngx_max((ngx_msec_int_t)
                                           (pool->retry_at - ngx_current_msec),
                                           1));
    }

    if (pool->nalive > 0) {
        return;
    }

    for (i = 0; i < pool->nconns; i++) {
        if (pool->conns[i].state == NGX_HTTP_NOTIFYHUB_PG_CONNECTING) {
            return;
        }
    }

    /* No connection can serve the waiting queries soon, so they fail now. */
    ngx_http_notifyhub_pg_fail_waiting();
}


static void
ngx_http_notifyhub_pg_close(ngx_http_notifyhub_pg_conn_t *pc)
{
    ngx_http_notifyhub_pg_pool_t   *pool;
    ngx_http_notifyhub_pg_query_t  *q;

    pool = ngx_http_notifyhub_pg_pool;

    if (pc->state == NGX_HTTP_NOTIFYHUB_PG_IDLE
        || pc->state == NGX_HTTP_NOTIFYHUB_PG_BUSY)
    {
        pool->nalive--;
    }

    pc->state = NGX_HTTP_NOTIFYHUB_PG_DOWN;

    ngx_http_notifyhub_pg_release_socket(pc, 0);

    if (pc->result) {
        PQclear(pc->result);
        pc->result = NULL;
    }

    if (pc->pg) {
        PQfinish(pc->pg);
        pc->pg = NULL;
    }

    ngx_http_notifyhub_pg_forget(pc);

    q = pc->query;
    pc->query = NULL;

    if (q) {
        q->conn = NULL;
        ngx_http_notifyhub_pg_fail_query(q);
    }
}


static void
ngx_http_notifyhub_pg_read_handler(ngx_event_t *rev)
{
    ngx_connection_t              *c;
    ngx_http_notifyhub_pg_conn_t  *pc;

    c = rev->data;
    pc = c->data;

    if (rev->timedout) {
        rev->timedout = 0;

        if (pc->state == NGX_HTTP_NOTIFYHUB_PG_CONNECTING) {
            ngx_http_notifyhub_pg_connect_failed(pc, "connection timed out");

        } else {
            ngx_log_error(NGX_LOG_ERR, c->log, 0,
                          "notifyhub: postgresql query timed out, "
                          "closing the connection");
            ngx_http_notifyhub_pg_close(pc);
            ngx_http_notifyhub_pg_wake();
        }

        return;
    }

    switch (pc->state) {

    case NGX_HTTP_NOTIFYHUB_PG_CONNECTING:
        ngx_http_notifyhub_pg_poll_connect(pc);
        return;

    case NGX_HTTP_NOTIFYHUB_PG_BUSY:
        ngx_http_notifyhub_pg_receive(pc);
        return;

    case NGX_HTTP_NOTIFYHUB_PG_IDLE:

        /*
         * An idle connection becomes readable when the server goes away
         * (for example a restart) or sends a notice.
         */

        if (!PQconsumeInput(pc->pg) || PQstatus(pc->pg) != CONNECTION_OK) {
            ngx_log_error(NGX_LOG_WARN, c->log, 0,
                          "notifyhub: postgresql closed an idle connection: %s",
                          PQerrorMessage(pc->pg));
            ngx_http_notifyhub_pg_close(pc);
            ngx_http_notifyhub_pg_wake();
        }

        return;

    default:
        return;
    }
}


static void
ngx_http_notifyhub_pg_write_handler(ngx_event_t *wev)
{
    int                            rc;
    ngx_connection_t              *c;
    ngx_http_notifyhub_pg_conn_t  *pc;

    c = wev->data;
    pc = c->data;

    if (pc->state == NGX_HTTP_NOTIFYHUB_PG_CONNECTING) {
        ngx_http_notifyhub_pg_poll_connect(pc);
        return;
    }

    if (pc->state != NGX_HTTP_NOTIFYHUB_PG_BUSY) {
        (void) ngx_http_notifyhub_pg_want_write(pc, 0);
        return;
    }

    rc = PQflush(pc->pg);

    if (rc == -1) {
        ngx_log_error(NGX_LOG_ERR, c->log, 0,
                      "notifyhub: sending to postgresql failed: %s",
                      PQerrorMessage(pc->pg));
        ngx_http_notifyhub_pg_close(pc);
        ngx_http_notifyhub_pg_wake();
        return;
    }

    if (rc == 0) {
        (void) ngx_http_notifyhub_pg_want_write(pc, 0);
    }
}


static ngx_int_t
ngx_http_notifyhub_pg_send(ngx_http_notifyhub_pg_conn_t *pc,
    ngx_http_notifyhub_pg_query_t *q)
{
    int                                 rc, sent;
    ngx_uint_t                          found;
    ngx_http_notifyhub_pg_pool_t       *pool;
    ngx_http_notifyhub_pg_statement_t  *st;

    pool = ngx_http_notifyhub_pg_pool;

    st = ngx_http_notifyhub_pg_statement(pc, q->sql, &found);

    if (st && found) {
        sent = PQsendQueryPrepared(pc->pg, st->name, q->nparams,
                                   (const char *const *) q->values,
                                   q->lengths, q->formats, 0);

    } else if (st) {
        /* The query is sent once the preparation has succeeded. */
        sent = PQsendPrepare(pc->pg, st->name, q->sql, q->nparams, NULL);
        pc->preparing = st;

    } else {
        sent = PQsendQueryParams(pc->pg, q->sql, q->nparams, NULL,
                                 (const char *const *) q->values, q->lengths,
                                 q->formats, 0);
    }

    if (!sent) {
        ngx_log_error(NGX_LOG_WARN, pool->log, 0,
                      "notifyhub: sending a query failed: %s",
                      PQerrorMessage(pc->pg));
        ngx_http_notifyhub_pg_close(pc);
        return NGX_ERROR;
    }

    pc->state = NGX_HTTP_NOTIFYHUB_PG_BUSY;
    pc->query = q;
    q->conn = pc;

    ngx_add_timer(pc->connection->read, pool->conf->pg_query_timeout);

    rc = PQflush(pc->pg);

    if (rc == -1) {
        ngx_log_error(NGX_LOG_ERR, pool->log, 0,
                      "notifyhub: sending to postgresql failed: %s",
                      PQerrorMessage(pc->pg));
        ngx_http_notifyhub_pg_close(pc);
        ngx_http_notifyhub_pg_wake();

        /* The handler has already run with a NULL result. */
        return NGX_OK;
    }

    if (rc == 1 && ngx_http_notifyhub_pg_want_write(pc, 1) != NGX_OK) {
        ngx_http_notifyhub_pg_close(pc);
        ngx_http_notifyhub_pg_wake();
    }

    return NGX_OK;
}


static void
ngx_http_notifyhub_pg_receive(ngx_http_notifyhub_pg_conn_t *pc)
{
    PGresult          *res;
    ngx_connection_t  *c;

    c = pc->connection;

    if (!PQconsumeInput(pc->pg)) {
        ngx_log_error(NGX_LOG_ERR, c->log, 0,
                      "notifyhub: reading from postgresql failed: %s",
                      PQerrorMessage(pc->pg));
        ngx_http_notifyhub_pg_close(pc);
        ngx_http_notifyhub_pg_wake();
        return;
    }

    /* Results are read until libpq returns NULL, so the connection is
     * clean for the next query. The first result is the one kept. */

    while (!PQisBusy(pc->pg)) {
        res = PQgetResult(pc->pg);

        if (res == NULL) {
            res = pc->result;
            pc->result = NULL;

            if (pc->preparing) {
                if (ngx_http_notifyhub_pg_prepared(pc, res) == NGX_OK) {
                    return;
                }
            }

            ngx_http_notifyhub_pg_complete(pc, res);
            return;
        }

        if (pc->result == NULL) {
            pc->result = res;

        } else {
            PQclear(res);
        }
    }
}


static void
ngx_http_notifyhub_pg_complete(ngx_http_notifyhub_pg_conn_t *pc,
    PGresult *res)
{
    const char                     *state;
    ngx_http_notifyhub_pg_query_t  *q;

    if (pc->connection->read->timer_set) {
        ngx_del_timer(pc->connection->read);
    }

    q = pc->query;
    pc->query = NULL;
    pc->state = NGX_HTTP_NOTIFYHUB_PG_IDLE;

    /*
     * A prepared statement that the server no longer has (26000), or
     * whose result columns a migration changed (0A000), is prepared again
     * under a new name by the next query.
     */
    state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

    if (state && (ngx_strcmp(state, "26000") == 0
                  || ngx_strcmp(state, "0A000") == 0))
    {
        ngx_log_error(NGX_LOG_WARN, pc->connection->log, 0,
                      "notifyhub: postgresql dropped a prepared statement, "
                      "preparing the statements again: %s",
                      PQresultErrorMessage(res));
        ngx_http_notifyhub_pg_forget(pc);
    }

    if (q) {
        q->conn = NULL;
        q->done = 1;
        ngx_http_notifyhub_pg_call(q, res);
    }

    if (res) {
        PQclear(res);
    }

    ngx_http_notifyhub_pg_dispatch();
}


static void
ngx_http_notifyhub_pg_fail_query(ngx_http_notifyhub_pg_query_t *q)
{
    if (q->done) {
        return;
    }

    q->done = 1;
    ngx_http_notifyhub_pg_call(q, NULL);
}


/* Calls the handler, then frees a background query. */
static void
ngx_http_notifyhub_pg_call(ngx_http_notifyhub_pg_query_t *q, PGresult *res)
{
    ngx_pool_t  *own;

    own = q->own_pool;

    q->handler(q->request, res, q->data);

    if (own) {
        ngx_destroy_pool(own);
    }
}


/* Hands waiting queries to idle connections, oldest first. */
static void
ngx_http_notifyhub_pg_dispatch(void)
{
    ngx_uint_t                      i;
    ngx_queue_t                    *head;
    ngx_http_notifyhub_pg_pool_t   *pool;
    ngx_http_notifyhub_pg_conn_t   *pc;
    ngx_http_notifyhub_pg_query_t  *q;

    pool = ngx_http_notifyhub_pg_pool;

    for (i = 0; i < pool->nconns && !ngx_queue_empty(&pool->waiting); i++) {
        pc = &pool->conns[i];

        if (pc->state != NGX_HTTP_NOTIFYHUB_PG_IDLE) {
            continue;
        }

        head = ngx_queue_head(&pool->waiting);
        q = ngx_queue_data(head, ngx_http_notifyhub_pg_query_t, queue);

        ngx_queue_remove(head);
        pool->nwaiting--;
        q->queued = 0;

        if (ngx_http_notifyhub_pg_send(pc, q) != NGX_OK) {
            /* The connection broke; the query goes back to the front. */
            ngx_queue_insert_head(&pool->waiting, &q->queue);
            pool->nwaiting++;
            q->queued = 1;
        }
    }

    if (ngx_queue_empty(&pool->waiting) && pool->queue_timer.timer_set) {
        ngx_del_timer(&pool->queue_timer);
    }

    ngx_http_notifyhub_pg_wake();
}


/* Starts connecting the connections that are down, unless backing off. */
static void
ngx_http_notifyhub_pg_wake(void)
{
    ngx_uint_t                     i;
    ngx_http_notifyhub_pg_pool_t  *pool;

    pool = ngx_http_notifyhub_pg_pool;

    if (pool->backoff && (ngx_msec_int_t) (pool->retry_at - ngx_current_msec) > 0)
    {
        return;
    }

    for (i = 0; i < pool->nconns; i++) {
        if (pool->conns[i].state == NGX_HTTP_NOTIFYHUB_PG_DOWN) {
            ngx_http_notifyhub_pg_connect(&pool->conns[i]);
        }
    }
}


static void
ngx_http_notifyhub_pg_fail_waiting(void)
{
    ngx_queue_t                    *head;
    ngx_http_notifyhub_pg_pool_t   *pool;
    ngx_http_notifyhub_pg_query_t  *q;

    pool = ngx_http_notifyhub_pg_pool;

    while (!ngx_queue_empty(&pool->waiting)) {
        head = ngx_queue_head(&pool->waiting);
        q = ngx_queue_data(head, ngx_http_notifyhub_pg_query_t, queue);

        ngx_queue_remove(head);
        pool->nwaiting--;
        q->queued = 0;

        ngx_http_notifyhub_pg_fail_query(q);
    }

    if (pool->queue_timer.timer_set) {
        ngx_del_timer(&pool->queue_timer);
    }
}


static void
ngx_http_notifyhub_pg_queue_timeout(ngx_event_t *ev)
{
    ngx_queue_t                    *head;
    ngx_msec_int_t                  left;
    ngx_http_notifyhub_pg_pool_t   *pool;
    ngx_http_notifyhub_pg_query_t  *q;

    pool = ngx_http_notifyhub_pg_pool;

    while (!ngx_queue_empty(&pool->waiting)) {
        head = ngx_queue_head(&pool->waiting);
        q = ngx_queue_data(head, ngx_http_notifyhub_pg_query_t, queue);

        left = (ngx_msec_int_t) (q->deadline - ngx_current_msec);
        if (left > 0) {
            ngx_add_timer(&pool->queue_timer, (ngx_msec_t) left);
            return;
        }

        ngx_log_error(NGX_LOG_WARN, pool->log, 0,
                      "notifyhub: query waited %M ms for a postgresql "
                      "connection, giving up", pool->conf->pg_queue_timeout);

        ngx_queue_remove(head);
        pool->nwaiting--;
        q->queued = 0;

        ngx_http_notifyhub_pg_fail_query(q);
    }
}


static void
ngx_http_notifyhub_pg_retry(ngx_event_t *ev)
{
    ngx_http_notifyhub_pg_wake();
}


/* Runs when the request's pool is destroyed. */
static void
ngx_http_notifyhub_pg_cleanup(void *data)
{
    ngx_http_notifyhub_pg_query_t  *q = data;

    ngx_http_notifyhub_pg_pool_t  *pool;

    pool = ngx_http_notifyhub_pg_pool;

    if (q->done || pool == NULL) {
        return;
    }

    q->done = 1;

    if (q->queued) {
        ngx_queue_remove(&q->queue);
        pool->nwaiting--;
        q->queued = 0;
    }

    /* A running query is drained and its result dropped. */
    if (q->conn) {
        q->conn->query = NULL;
        q->conn = NULL;
    }
}


/*
 * Finds the prepared statement of sql on the connection (found = 1), or
 * adds an entry with a new name for it (found = 0). Returns NULL when the
 * connection already has NGX_HTTP_NOTIFYHUB_PG_STATEMENTS statements or
 * memory runs out, and the query is then sent unnamed.
 */
static ngx_http_notifyhub_pg_statement_t *
ngx_http_notifyhub_pg_statement(ngx_http_notifyhub_pg_conn_t *pc,
    const char *sql, ngx_uint_t *found)
{
    size_t                              len;
    ngx_uint_t                          i, hash;
    ngx_http_notifyhub_pg_statement_t  *st;

    len = ngx_strlen(sql);
    hash = ngx_hash_key((u_char *) sql, len);

    for (i = 0; i < pc->nstatements; i++) {
        st = &pc->statements[i];

        if (st->hash == hash && st->len == len
            && ngx_memcmp(st->sql, sql, len) == 0)
        {
            *found = 1;
            return st;
        }
    }

    *found = 0;

    if (pc->nstatements == NGX_HTTP_NOTIFYHUB_PG_STATEMENTS) {
        return NULL;
    }

    st = &pc->statements[pc->nstatements];

    st->sql = ngx_alloc(len, ngx_http_notifyhub_pg_pool->log);
    if (st->sql == NULL) {
        return NULL;
    }

    ngx_memcpy(st->sql, sql, len);
    st->len = len;
    st->hash = hash;
    ngx_sprintf((u_char *) st->name, "nh%ui%Z", ++pc->next_name);

    /* The entry counts once the preparation has succeeded. */
    return st;
}


/*
 * Handles the result of preparing the running query's statement: on
 * success keeps the statement and sends the query, and returns NGX_OK.
 * Returns NGX_DECLINED when the preparation failed or the query could not
 * be sent, and the caller completes the query with res.
 */
static ngx_int_t
ngx_http_notifyhub_pg_prepared(ngx_http_notifyhub_pg_conn_t *pc,
    PGresult *res)
{
    int                                 rc;
    ngx_http_notifyhub_pg_query_t      *q;
    ngx_http_notifyhub_pg_statement_t  *st;

    st = pc->preparing;
    pc->preparing = NULL;
    q = pc->query;

    if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK) {
        ngx_free(st->sql);
        st->sql = NULL;
        return NGX_DECLINED;
    }

    pc->nstatements++;

    /* The request has gone, so only the preparation was needed. */
    if (q == NULL) {
        return NGX_DECLINED;
    }

    PQclear(res);

    if (!PQsendQueryPrepared(pc->pg, st->name, q->nparams,
                             (const char *const *) q->values, q->lengths,
                             q->formats, 0))
    {
        ngx_log_error(NGX_LOG_WARN, pc->connection->log, 0,
                      "notifyhub: sending a prepared query failed: %s",
                      PQerrorMessage(pc->pg));
        ngx_http_notifyhub_pg_close(pc);
        ngx_http_notifyhub_pg_wake();
        return NGX_OK;
    }

    rc = PQflush(pc->pg);

    if (rc == -1) {
        ngx_log_error(NGX_LOG_ERR, pc->connection->log, 0,
                      "notifyhub: sending to postgresql failed: %s",
                      PQerrorMessage(pc->pg));
        ngx_http_notifyhub_pg_close(pc);
        ngx_http_notifyhub_pg_wake();
        return NGX_OK;
    }

    if (rc == 1 && ngx_http_notifyhub_pg_want_write(pc, 1) != NGX_OK) {
        ngx_http_notifyhub_pg_close(pc);
        ngx_http_notifyhub_pg_wake();
    }

    return NGX_OK;
}


/* Forgets the connection's prepared statements. */
static void
ngx_http_notifyhub_pg_forget(ngx_http_notifyhub_pg_conn_t *pc)
{
    ngx_uint_t  i;

    for (i = 0; i < pc->nstatements; i++) {
        ngx_free(pc->statements[i].sql);
        pc->statements[i].sql = NULL;
    }

    pc->nstatements = 0;

    if (pc->preparing) {
        ngx_free(pc->preparing->sql);
        pc->preparing->sql = NULL;
        pc->preparing = NULL;
    }
}


/*
 * Appends the session settings that the module's result parsing relies
 * on, times in UTC with the ISO date style, to the DSN's options.
 */
static char *
ngx_http_notifyhub_pg_options(ngx_conf_t *cf, const char *options)
{
    u_char  *p;
    size_t   len;

    static const char  settings[] = "-c TimeZone=UTC -c DateStyle=ISO";

    len = ngx_strlen(options);

    p = ngx_pnalloc(cf->pool, len + 1 + sizeof(settings));
    if (p == NULL) {
        return NULL;
    }

    ngx_sprintf(p, "%s%s%s%Z", options, len ? " " : "", settings);

    return (char *) p;
}


/*
 * Parses notifyhub_pg_dsn into libpq keywords and values. A host name
 * without a hostaddr is resolved here, at configuration time, so libpq
 * never resolves a name inside the event loop.
 */
char *
ngx_http_notifyhub_pg_parse_dsn(ngx_conf_t *cf,
    ngx_http_notifyhub_main_conf_t *nmcf)
{
    char               *err, *dsn, *host;
    size_t              len;
    u_char             *p;
    ngx_url_t           u;
    ngx_uint_t          n, i, has_hostaddr, has_options;
    PQconninfoOption   *opts, *o;

    dsn = (char *) ngx_pnalloc(cf->pool, nmcf->pg_dsn.len + 1);
    if (dsn == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memcpy(dsn, nmcf->pg_dsn.data, nmcf->pg_dsn.len);
    dsn[nmcf->pg_dsn.len] = '\0';

    err = NULL;
    opts = PQconninfoParse(dsn, &err);
    if (opts == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid notifyhub_pg_dsn \"%V\": %s",
                           &nmcf->pg_dsn, err ? err : "out of memory");
        if (err) {
            PQfreemem(err);
        }
        return NGX_CONF_ERROR;
    }

    n = 0;
    host = NULL;
    has_hostaddr = 0;
    has_options = 0;

    for (o = opts; o->keyword; o++) {
        if (o->val == NULL || o->val[0] == '\0') {
            continue;
        }

        n++;

        if (ngx_strcmp(o->keyword, "host") == 0) {
            host = o->val;

        } else if (ngx_strcmp(o->keyword, "hostaddr") == 0) {
            has_hostaddr = 1;
        }
    }

    /* Room for the options and hostaddr added below and the NULL. */
    nmcf->pg_keywords = ngx_pcalloc(cf->pool, (n + 3) * sizeof(char *));
    nmcf->pg_values = ngx_pcalloc(cf->pool, (n + 3) * sizeof(char *));
    if (nmcf->pg_keywords == NULL || nmcf->pg_values == NULL) {
        PQconninfoFree(opts);
        return NGX_CONF_ERROR;
    }

    i = 0;

    for (o = opts; o->keyword; o++) {
        if (o->val == NULL || o->val[0] == '\0') {
            continue;
        }

        nmcf->pg_keywords[i] = (char *) ngx_pstrdup(cf->pool,
                                   &(ngx_str_t) { ngx_strlen(o->keyword) + 1,
                                                  (u_char *) o->keyword });

        if (ngx_strcmp(o->keyword, "options") == 0) {
            has_options = 1;
            nmcf->pg_values[i] = ngx_http_notifyhub_pg_options(cf, o->val);

        } else {
            nmcf->pg_values[i] = (char *) ngx_pstrdup(cf->pool,
                                   &(ngx_str_t) { ngx_strlen(o->val) + 1,
                                                  (u_char *) o->val });
        }

        if (nmcf->pg_keywords[i] == NULL || nmcf->pg_values[i] == NULL) {
            PQconninfoFree(opts);
            return NGX_CONF_ERROR;
        }

        i++;
    }

    if (!has_options) {
        nmcf->pg_keywords[i] = "options";
        nmcf->pg_values[i] = ngx_http_notifyhub_pg_options(cf, "");

        if (nmcf->pg_values[i] == NULL) {
            PQconninfoFree(opts);
            return NGX_CONF_ERROR;
        }

        i++;
    }

    if (host && host[0] != '/' && !has_hostaddr) {
        if (ngx_strchr(host, ',')) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "notifyhub_pg_dsn with several hosts needs "
                               "a hostaddr for each");
            PQconninfoFree(opts);
            return NGX_CONF_ERROR;
        }

        ngx_memzero(&u, sizeof(ngx_url_t));
        u.url.data = (u_char *) host;
        u.url.len = ngx_strlen(host);
        u.default_port = 5432;
        u.no_port = 1;

        if (ngx_parse_url(cf->pool, &u) != NGX_OK || u.naddrs == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "cannot resolve the notifyhub_pg_dsn host "
                               "\"%s\": %s", host,
                               u.err ? u.err : "no address");
            PQconninfoFree(opts);
            return NGX_CONF_ERROR;
        }

        p = ngx_pnalloc(cf->pool, NGX_SOCKADDR_STRLEN + 1);
        if (p == NULL) {
            PQconninfoFree(opts);
            return NGX_CONF_ERROR;
        }

        len = ngx_sock_ntop(u.addrs[0].sockaddr, u.addrs[0].socklen, p,
                            NGX_SOCKADDR_STRLEN, 0);
        p[len] = '\0';

        nmcf->pg_keywords[i] = "hostaddr";
        nmcf->pg_values[i] = (char *) p;
    }

    PQconninfoFree(opts);

    return NGX_CONF_OK;
}
