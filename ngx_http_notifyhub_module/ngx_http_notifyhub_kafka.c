
/*
 * The librdkafka producer of one nginx worker process. librdkafka writes a
 * byte to a pipe when its main queue becomes non-empty. nginx watches the
 * read end and serves delivery reports and logs with rd_kafka_poll(rk, 0),
 * so nothing waits on Kafka inside the event loop.
 */


#include "ngx_http_notifyhub_module.h"

#include <librdkafka/rdkafka.h>


/* A timer also polls, in case a wake-up byte was lost to a full pipe. */
#define NGX_HTTP_NOTIFYHUB_KAFKA_POLL_INTERVAL  1000
#define NGX_HTTP_NOTIFYHUB_KAFKA_FLUSH_TIMEOUT  3000


typedef struct {
    rd_kafka_t             *rk;
    rd_kafka_topic_t       *topics[NGX_HTTP_NOTIFYHUB_NCHANNELS];
    ngx_uint_t              queue_size;
    int                     pipe[2];
    ngx_connection_t       *connection;
    ngx_event_t             poll_timer;
    ngx_connection_t        dummy;
    ngx_log_t              *log;
    ngx_uint_t              broker_up;
} ngx_http_notifyhub_kafka_t;


static void ngx_http_notifyhub_kafka_delivered(rd_kafka_t *rk,
    const rd_kafka_message_t *msg, void *opaque);
static void ngx_http_notifyhub_kafka_log(const rd_kafka_t *rk, int level,
    const char *fac, const char *buf);
static void ngx_http_notifyhub_kafka_error(rd_kafka_t *rk, int err,
    const char *reason, void *opaque);
static int ngx_http_notifyhub_kafka_stats(rd_kafka_t *rk, char *json,
    size_t len, void *opaque);
static void ngx_http_notifyhub_kafka_read_handler(ngx_event_t *rev);
static void ngx_http_notifyhub_kafka_poll_handler(ngx_event_t *ev);
static void ngx_http_notifyhub_kafka_poll(void);
static ngx_int_t ngx_http_notifyhub_kafka_set(rd_kafka_conf_t *conf,
    ngx_log_t *log, const char *name, const char *value);


static ngx_http_notifyhub_kafka_t  *ngx_http_notifyhub_kafka;

static const char  *ngx_http_notifyhub_channel_topics[] = {
    "email", "sms", "push"
};


ngx_int_t
ngx_http_notifyhub_kafka_init_process(ngx_cycle_t *cycle,
    ngx_http_notifyhub_main_conf_t *nmcf)
{
    char                        errstr[512], value[64], *brokers, *topic;
    ngx_uint_t                  i;
    ngx_keyval_t               *kv;
    rd_kafka_conf_t            *conf;
    rd_kafka_queue_t           *queue;
    ngx_connection_t           *c;
    ngx_http_notifyhub_kafka_t  *kf;

    kf = ngx_pcalloc(cycle->pool, sizeof(ngx_http_notifyhub_kafka_t));
    if (kf == NULL) {
        return NGX_ERROR;
    }

    kf->log = cycle->log;
    kf->queue_size = nmcf->kafka_queue_size;
    kf->pipe[0] = -1;
    kf->pipe[1] = -1;

    conf = rd_kafka_conf_new();

    brokers = ngx_pnalloc(cycle->pool, nmcf->kafka_brokers.len + 1);
    if (brokers == NULL) {
        goto failed;
    }

    (void) ngx_cpystrn((u_char *) brokers, nmcf->kafka_brokers.data,
                       nmcf->kafka_brokers.len + 1);

    ngx_sprintf((u_char *) value, "%ui%Z", nmcf->kafka_queue_size);

    if (ngx_http_notifyhub_kafka_set(conf, cycle->log, "bootstrap.servers",
                                     brokers) != NGX_OK
        || ngx_http_notifyhub_kafka_set(conf, cycle->log,
                                        "enable.idempotence", "true")
           != NGX_OK
        || ngx_http_notifyhub_kafka_set(conf, cycle->log, "linger.ms", "5")
           != NGX_OK
        || ngx_http_notifyhub_kafka_set(conf, cycle->log,
                                        "queue.buffering.max.messages", value)
           != NGX_OK
        || ngx_http_notifyhub_kafka_set(conf, cycle->log, "log.queue", "true")
           != NGX_OK
        || ngx_http_notifyhub_kafka_set(conf, cycle->log, "client.id",
                                        "notifyhub-nginx")
           != NGX_OK
        || ngx_http_notifyhub_kafka_set(conf, cycle->log,
                                        "statistics.interval.ms", "1000")
           != NGX_OK)
    {
        goto failed;
    }

    if (nmcf->kafka_properties) {
        kv = nmcf->kafka_properties->elts;

        for (i = 0; i < nmcf->kafka_properties->nelts; i++) {
            if (ngx_http_notifyhub_kafka_set(conf, cycle->log,
                                             (char *) kv[i].key.data,
                                             (char *) kv[i].value.data)
                != NGX_OK)
            {
                goto failed;
            }
        }
    }

    rd_kafka_conf_set_dr_msg_cb(conf, ngx_http_notifyhub_kafka_delivered);
    rd_kafka_conf_set_log_cb(conf, ngx_http_notifyhub_kafka_log);
    rd_kafka_conf_set_error_cb(conf, ngx_http_notifyhub_kafka_error);
    rd_kafka_conf_set_stats_cb(conf, ngx_http_notifyhub_kafka_stats);

    kf->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (kf->rk == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "notifyhub: rd_kafka_new() failed: %s", errstr);
        goto failed;
    }

    conf = NULL;

    /* Logs go to the main queue, so they are written from this thread. */
    if (rd_kafka_set_log_queue(kf->rk, NULL) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "notifyhub: rd_kafka_set_log_queue() failed");
        goto failed;
    }

    for (i = 0; i < NGX_HTTP_NOTIFYHUB_NCHANNELS; i++) {
        topic = ngx_pnalloc(cycle->pool, nmcf->kafka_topic_prefix.len + 8);
        if (topic == NULL) {
            goto failed;
        }

        ngx_sprintf((u_char *) topic, "%V%s%Z", &nmcf->kafka_topic_prefix,
                    ngx_http_notifyhub_channel_topics[i]);

        kf->topics[i] = rd_kafka_topic_new(kf->rk, topic, NULL);
        if (kf->topics[i] == NULL) {
            ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                          "notifyhub: rd_kafka_topic_new(\"%s\") failed: %s",
                          topic, rd_kafka_err2str(rd_kafka_last_error()));
            goto failed;
        }
    }

    if (pipe2(kf->pipe, O_NONBLOCK|O_CLOEXEC) == -1) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, ngx_errno,
                      "notifyhub: pipe2() failed");
        goto failed;
    }

    c = ngx_get_connection(kf->pipe[0], cycle->log);
    if (c == NULL) {
        goto failed;
    }

    kf->connection = c;
    c->data = kf;
    c->read->handler = ngx_http_notifyhub_kafka_read_handler;
    c->read->log = cycle->log;

    if (ngx_add_event(c->read, NGX_READ_EVENT, NGX_LEVEL_EVENT) != NGX_OK) {
        goto failed;
    }

    queue = rd_kafka_queue_get_main(kf->rk);
    rd_kafka_queue_io_event_enable(queue, kf->pipe[1], "1", 1);
    rd_kafka_queue_destroy(queue);

    kf->dummy.fd = (ngx_socket_t) -1;
    kf->poll_timer.handler = ngx_http_notifyhub_kafka_poll_handler;
    kf->poll_timer.data = &kf->dummy;
    kf->poll_timer.log = cycle->log;
    kf->poll_timer.cancelable = 1;
    ngx_add_timer(&kf->poll_timer, NGX_HTTP_NOTIFYHUB_KAFKA_POLL_INTERVAL);

    ngx_http_notifyhub_kafka = kf;

    return NGX_OK;

failed:

    if (conf) {
        rd_kafka_conf_destroy(conf);
    }

    ngx_http_notifyhub_kafka = kf;
    ngx_http_notifyhub_kafka_exit_process(cycle);

    return NGX_ERROR;
}


/*
 * Flushes what is queued for at most a few seconds, purges the rest (the
 * rows stay PENDING and the outbox sweeper republishes them), destroys.
 */
void
ngx_http_notifyhub_kafka_exit_process(ngx_cycle_t *cycle)
{
    int                          left;
    ngx_uint_t                   i;
    rd_kafka_resp_err_t          err;
    ngx_http_notifyhub_kafka_t  *kf;

    kf = ngx_http_notifyhub_kafka;
    if (kf == NULL) {
        return;
    }

    ngx_http_notifyhub_kafka = NULL;

    if (kf->poll_timer.timer_set) {
        ngx_del_timer(&kf->poll_timer);
    }

    if (kf->rk) {
        /* Blocks for at most the flush timeout, at process exit only. */
        err = rd_kafka_flush(kf->rk, NGX_HTTP_NOTIFYHUB_KAFKA_FLUSH_TIMEOUT);

        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            left = rd_kafka_outq_len(kf->rk);

            ngx_log_error(NGX_LOG_WARN, cycle->log, 0,
                          "notifyhub: kafka flush at exit failed: %s, "
                          "purging %d messages; their notifications stay "
                          "PENDING for the outbox sweeper",
                          rd_kafka_err2str(err), left);

            rd_kafka_purge(kf->rk, RD_KAFKA_PURGE_F_QUEUE
                                   |RD_KAFKA_PURGE_F_INFLIGHT);
            rd_kafka_poll(kf->rk, 0);
        }

        for (i = 0; i < NGX_HTTP_NOTIFYHUB_NCHANNELS; i++) {
            if (kf->topics[i]) {
                rd_kafka_topic_destroy(kf->topics[i]);
            }
        }

        rd_kafka_destroy(kf->rk);
    }

    if (kf->connection) {
        ngx_close_connection(kf->connection);
        kf->pipe[0] = -1;

    } else if (kf->pipe[0] != -1) {
        (void) close(kf->pipe[0]);
    }

    if (kf->pipe[1] != -1) {
        (void) close(kf->pipe[1]);
    }
}


/*
 * Returns 1 while the local queue has room. Callers check it before
 * storing a notification, so a full queue becomes a 503 before anything
 * is written.
 */
ngx_int_t
ngx_http_notifyhub_kafka_has_room(void)
{
    ngx_http_notifyhub_kafka_t  *kf;

    kf = ngx_http_notifyhub_kafka;

    return kf && (ngx_uint_t) rd_kafka_outq_len(kf->rk) < kf->queue_size;
}


/*
 * Returns how many more messages the local queue takes. A batch checks it
 * before storing, so a full queue becomes a 503 before anything is
 * written.
 */
ngx_uint_t
ngx_http_notifyhub_kafka_room(void)
{
    ngx_uint_t                   queued;
    ngx_http_notifyhub_kafka_t  *kf;

    kf = ngx_http_notifyhub_kafka;
    if (kf == NULL) {
        return 0;
    }

    queued = (ngx_uint_t) rd_kafka_outq_len(kf->rk);

    return queued < kf->queue_size ? kf->queue_size - queued : 0;
}


/*
 * Returns 1 when librdkafka's last statistics (once a second) showed a
 * connected broker, or a delivery succeeded since, and no "all brokers
 * down" error came after that.
 */
ngx_uint_t
ngx_http_notifyhub_kafka_ready(void)
{
    return ngx_http_notifyhub_kafka && ngx_http_notifyhub_kafka->broker_up;
}


/*
 * Queues the notification's message on its channel's topic, keyed by the
 * notification id. Returns NGX_OK, NGX_BUSY when the local queue is full,
 * or NGX_ERROR. The delivery report arrives later through the main queue.
 */
ngx_int_t
ngx_http_notifyhub_kafka_produce(ngx_log_t *log,
    ngx_http_notifyhub_channel_e channel, const char *id,
    const char *tenant_id)
{
    int                          n;
    char                         value[160];
    rd_kafka_resp_err_t          err;
    ngx_http_notifyhub_kafka_t  *kf;

    kf = ngx_http_notifyhub_kafka;
    if (kf == NULL) {
        return NGX_ERROR;
    }

    n = snprintf(value, sizeof(value),
                 "{\"id\":\"%s\",\"tenantId\":\"%s\",\"channel\":\"%s\"}",
                 id, tenant_id, channel == NGX_HTTP_NOTIFYHUB_EMAIL ? "EMAIL"
                                : channel == NGX_HTTP_NOTIFYHUB_SMS ? "SMS"
                                : "PUSH");

    if (rd_kafka_produce(kf->topics[channel], RD_KAFKA_PARTITION_UA,
                         RD_KAFKA_MSG_F_COPY, value, (size_t) n,
                         id, NH_UUID_STR_LEN, NULL)
        == -1)
    {
        err = rd_kafka_last_error();

        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "notifyhub: producing notification %s failed: %s; "
                      "the outbox sweeper will republish it",
                      id, rd_kafka_err2str(err));

        return err == RD_KAFKA_RESP_ERR__QUEUE_FULL ? NGX_BUSY : NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_http_notifyhub_kafka_delivered(rd_kafka_t *rk,
    const rd_kafka_message_t *msg, void *opaque)
{
    ngx_http_notifyhub_kafka_t  *kf;

    kf = ngx_http_notifyhub_kafka;

    if (kf == NULL) {
        return;
    }

    if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        kf->broker_up = 1;
        return;
    }

    ngx_log_error(NGX_LOG_WARN, kf->log, 0,
                  "notifyhub: delivery of notification %*s to %s failed: "
                  "%s; the outbox sweeper will republish it",
                  (int) msg->key_len, (const char *) msg->key,
                  rd_kafka_topic_name(msg->rkt), rd_kafka_err2str(msg->err));
}


static void
ngx_http_notifyhub_kafka_log(const rd_kafka_t *rk, int level, const char *fac,
    const char *buf)
{
    ngx_uint_t                   nlevel;
    ngx_http_notifyhub_kafka_t  *kf;

    kf = ngx_http_notifyhub_kafka;
    if (kf == NULL) {
        return;
    }

    /* syslog levels: 3 error, 4 warning, 5 notice, 6 info, 7 debug */
    nlevel = level <= 3 ? NGX_LOG_ERR
             : level == 4 ? NGX_LOG_WARN
             : level <= 6 ? NGX_LOG_INFO : NGX_LOG_DEBUG;

    ngx_log_error(nlevel, kf->log, 0, "notifyhub: librdkafka %s: %s",
                  fac, buf);
}


static void
ngx_http_notifyhub_kafka_error(rd_kafka_t *rk, int err, const char *reason,
    void *opaque)
{
    ngx_http_notifyhub_kafka_t  *kf;

    kf = ngx_http_notifyhub_kafka;
    if (kf == NULL) {
        return;
    }

    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
        kf->broker_up = 0;
    }

    ngx_log_error(NGX_LOG_WARN, kf->log, 0, "notifyhub: kafka error: %s: %s",
                  rd_kafka_err2str(err), reason);
}


/*
 * Reads the broker states from librdkafka's statistics: the producer is
 * ready when a broker known by its node id (not only the bootstrap
 * address) is "UP". Runs on the event loop, from rd_kafka_poll().
 */
static int
ngx_http_notifyhub_kafka_stats(rd_kafka_t *rk, char *json, size_t len,
    void *opaque)
{
    cJSON                       *stats, *brokers, *broker, *nodeid, *state;
    ngx_uint_t                   up;
    ngx_http_notifyhub_kafka_t  *kf;

    kf = ngx_http_notifyhub_kafka;
    if (kf == NULL) {
        return 0;
    }

    stats = cJSON_ParseWithLength(json, len);
    brokers = cJSON_GetObjectItemCaseSensitive(stats, "brokers");
    up = 0;

    cJSON_ArrayForEach(broker, brokers) {
        nodeid = cJSON_GetObjectItemCaseSensitive(broker, "nodeid");
        state = cJSON_GetObjectItemCaseSensitive(broker, "state");

        if (cJSON_IsNumber(nodeid) && nodeid->valuedouble >= 0
            && cJSON_IsString(state)
            && ngx_strcmp(state->valuestring, "UP") == 0)
        {
            up = 1;
            break;
        }
    }

    cJSON_Delete(stats);

    kf->broker_up = up;

    /* 0: librdkafka frees the JSON. */
    return 0;
}


static void
ngx_http_notifyhub_kafka_read_handler(ngx_event_t *rev)
{
    u_char             buf[64];
    ssize_t            n;
    ngx_connection_t  *c;

    c = rev->data;

    do {
        n = read(c->fd, buf, sizeof(buf));
    } while (n > 0);

    ngx_http_notifyhub_kafka_poll();
}


static void
ngx_http_notifyhub_kafka_poll_handler(ngx_event_t *ev)
{
    ngx_http_notifyhub_kafka_poll();

    if (ngx_http_notifyhub_kafka) {
        ngx_add_timer(ev, NGX_HTTP_NOTIFYHUB_KAFKA_POLL_INTERVAL);
    }
}


static void
ngx_http_notifyhub_kafka_poll(void)
{
    ngx_http_notifyhub_kafka_t  *kf;

    kf = ngx_http_notifyhub_kafka;
    if (kf == NULL) {
        return;
    }

    while (rd_kafka_poll(kf->rk, 0) > 0) {
        /* serve every queued report and log line */
    }
}


static ngx_int_t
ngx_http_notifyhub_kafka_set(rd_kafka_conf_t *conf, ngx_log_t *log,
    const char *name, const char *value)
{
    char  errstr[512];

    if (rd_kafka_conf_set(conf, name, value, errstr, sizeof(errstr))
        != RD_KAFKA_CONF_OK)
    {
        ngx_log_error(NGX_LOG_EMERG, log, 0,
                      "notifyhub: kafka property \"%s\": %s", name, errstr);
        return NGX_ERROR;
    }

    return NGX_OK;
}
