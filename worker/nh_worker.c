#include "nh_worker.h"

#include "nh_backoff.h"
#include "nh_db.h"
#include "nh_delivery.h"
#include "nh_error.h"
#include "nh_events.h"
#include "nh_http.h"
#include "nh_kafka.h"
#include "nh_offsets.h"
#include "nh_outbox.h"
#include "nh_prefs.h"
#include "nh_providers.h"
#include "nh_time.h"
#include "nh_uuid.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <librdkafka/rdkafka.h>


/* Maximum wait of one loop turn, so timers run without a wake-up. */
#define NH_WORKER_TICK_MS            100
/* Messages taken from Kafka per loop turn before serving the requests. */
#define NH_WORKER_BATCH              256
/* Retry delays of a job whose database call failed. */
#define NH_WORKER_RETRY_MIN_MS       100
#define NH_WORKER_RETRY_MAX_MS       10000
/* Rows claimed by one outbox sweep. */
#define NH_WORKER_SWEEP_LIMIT        500
#define NH_WORKER_TOPIC_TIMEOUT_MS   10000
#define NH_WORKER_TOPIC_RETRY_MS     5000
/* At shutdown: time left for writing outcomes after the HTTP timeout,
 * for the offset commit, and for flushing the producer. */
#define NH_WORKER_WRITE_GRACE_MS     5000
#define NH_WORKER_COMMIT_TIMEOUT_MS  5000
#define NH_WORKER_FLUSH_TIMEOUT_MS   5000
/* Identical consume errors within this interval are counted, not logged. */
#define NH_WORKER_ERROR_REPEAT_MS    10000
/* Characters of a delivery target (a device token) shown in log lines. */
#define NH_WORKER_TARGET_LOG_CHARS   8
/* Consumed messages held per request slot (see max_jobs), and the most
 * held beyond the request slots, which bounds the memory they take. */
#define NH_WORKER_BACKLOG            16
#define NH_WORKER_BACKLOG_MAX        1024
/* The dead letter's reason: the error and a prefix. The record functions
 * cut it to NH_OUTCOME_ERROR_MAX. */
#define NH_WORKER_REASON_MAX         (NH_OUTCOME_ERROR_MAX + 64)
/* Time zones of quiet hours kept loaded. */
#define NH_WORKER_ZONES              256


typedef enum {
    NH_JOB_LEASE = 0,    /* waiting for its lease */
    NH_JOB_SEND,         /* provider request in flight */
    NH_JOB_RECORD        /* outcome waiting to be written */
} nh_job_state_e;

typedef struct nh_worker_s  nh_worker_t;

/* A topic that the worker creates unless it exists. */
typedef struct {
    const char  *name;
    int          ready;
    int          pending;      /* a creation request is in flight */
    int64_t      retry_at_ms;
} nh_worker_topic_t;
typedef struct nh_job_s     nh_job_t;

/* One request of a job: the job's only one, or one per target that the
 * provider's targets() listed. */
typedef struct {
    nh_job_t            *job;
    char                *name;       /* NULL without targets() */
    nh_http_request_t   *req;        /* in flight, else NULL */
    nh_outcome_t         outcome;
    int                  resent;     /* sent once more after a resend */
} nh_worker_target_t;

/* One consumed Kafka message, from its lease to its stored outcome. */
struct nh_job_s {
    nh_job_t            *prev;
    nh_job_t            *next;
    nh_worker_t         *worker;
    nh_job_state_e       state;
    int32_t              partition;
    int64_t              offset;
    uint64_t             generation;
    char                 id[NH_UUID_STR_LEN + 1];
    char                 tenant_id[NH_UUID_STR_LEN + 1];
    int                  attempt;
    /* Held from the lease until the job is freed, because a target that
     * is sent once more is built again from it. */
    nh_lease_t           lease;
    nh_worker_target_t  *targets;    /* &single, or an array of n_targets */
    nh_worker_target_t   single;
    size_t               n_targets;
    size_t               sending;    /* targets with a request in flight */
    /* The notification's outcome: the first sent target's, else the last
     * target's. */
    nh_outcome_t         outcome;
    /* Whether the recipient's preferences let it be sent now. */
    nh_gate_t            gate;
    /* The provider instance it goes to, or its deferral while the
     * circuits are open (route.until_ms set). */
    nh_route_t           route;
    int64_t              retry_at_ms;
    int64_t              backoff_ms;
    int                  active;     /* counted in the worker's active */
};

struct nh_worker_s {
    const nh_worker_conf_t  *conf;
    /* The primary instance's adapter. A job sends through the adapter of
     * its route. */
    const nh_provider_t     *provider;
    nh_providers_t          *providers;
    nh_db_t                 *db;
    nh_http_t               *http;
    nh_offsets_t            *offsets;
    nh_zone_cache_t         *zones;
    rd_kafka_t              *consumer;
    rd_kafka_t              *producer;
    rd_kafka_queue_t        *consumer_queue;
    rd_kafka_queue_t        *admin_queue;
    nh_events_relayer_t     *relayer;

    nh_job_t                *head;
    nh_job_t                *tail;
    size_t                   jobs;
    /* Offsets tracked (unfinished, or finished behind an unfinished one)
     * above which the partitions are paused. */
    size_t                   max_tracked;
    /* Consumed messages held at most: a backlog of leases waiting for a
     * free request slot, so that a resumed partition's refetch does not
     * leave the requests idle. */
    size_t                   max_jobs;
    /* Jobs past their lease, with requests in flight or outcomes to
     * write; at most max_in_flight. */
    size_t                   active;
    int                      paused;
    /* Set after a failed batch: the next turn writes job by job. */
    int                      no_batch;
    int                      more;       /* the last batch was cut short */
    int                      failed;     /* a fatal error stops the loop */

    /* The channel's topic, then the dead-letter topic, created in that
     * order, one request at a time. */
    nh_worker_topic_t        topics[2];
    int64_t                  next_sweep_ms;

    int                      last_consume_error;
    int64_t                  last_consume_error_ms;
    unsigned                 consume_errors_suppressed;

    int                      wake[2];
};


static volatile sig_atomic_t  nh_worker_stop;
static int                    nh_worker_wake_fd = -1;


static int nh_worker_start(nh_worker_t *w);
static void nh_worker_loop(nh_worker_t *w);
static void nh_worker_drain(nh_worker_t *w);
static void nh_worker_close(nh_worker_t *w);
static void nh_worker_log_conf(const nh_worker_conf_t *conf);
static void nh_worker_signal(int signo);
static int nh_worker_signals(void);
static void nh_worker_wait(nh_worker_t *w, int timeout_ms);
static int nh_worker_wait_ms(nh_worker_t *w);
static void nh_worker_flow_control(nh_worker_t *w);
static int nh_worker_full(const nh_worker_t *w);
static void nh_worker_set_paused(nh_worker_t *w, int pause);
static void nh_worker_consume(nh_worker_t *w);
static void nh_worker_on_message(nh_worker_t *w,
    const rd_kafka_message_t *msg);
static void nh_worker_consume_error(nh_worker_t *w,
    const rd_kafka_message_t *msg);
static int nh_worker_message_id(const rd_kafka_message_t *msg,
    char id[NH_UUID_STR_LEN + 1]);
static void nh_worker_run_jobs(nh_worker_t *w);
static void nh_worker_run_batch(nh_worker_t *w, nh_job_state_e state,
    int64_t now);
static int nh_worker_lease_jobs(nh_worker_t *w, nh_job_t **jobs, size_t n);
static int nh_worker_record_jobs(nh_worker_t *w, nh_job_t **jobs, size_t n);
static int nh_worker_record_each(nh_worker_t *w, nh_job_t **jobs, size_t n);
static void nh_worker_outcome_item(nh_worker_t *w, nh_job_t *job,
    nh_outcome_item_t *item, char *reason);
static int nh_worker_batchable(const nh_job_t *job, nh_job_state_e state,
    int64_t now);
static void nh_worker_lease(nh_worker_t *w, nh_job_t *job);
static int nh_worker_lease_rc(const nh_lease_t *lease);
static void nh_worker_leased(nh_worker_t *w, nh_job_t *job, int rc,
    nh_lease_t *leased);
static void nh_worker_start_targets(nh_worker_t *w, nh_job_t *job);
static int nh_worker_send(nh_worker_t *w, nh_worker_target_t *target);
static void nh_worker_on_response(nh_http_request_t *req);
static void nh_worker_record(nh_worker_t *w, nh_job_t *job);
static int nh_worker_record_query(nh_worker_t *w, nh_job_t *job,
    nh_record_t *record, int64_t *retry_in_ms);
static void nh_worker_recorded(nh_worker_t *w, nh_job_t *job, int rc,
    nh_record_t *record_in, int64_t retry_in_ms);
static void nh_worker_record_decision(nh_worker_t *w, nh_job_t *job);
static void nh_worker_record_deferral(nh_worker_t *w, nh_job_t *job);
static const nh_provider_t *nh_worker_job_provider(const nh_worker_t *w,
    const nh_job_t *job);
static int nh_worker_record_targets(nh_worker_t *w, nh_job_t *job,
    int64_t retry_in_ms, const char *reason, nh_record_t *record);
static size_t nh_worker_drop_failed_targets(nh_job_t *job, char **names,
    size_t n);
static void nh_worker_summarize(nh_job_t *job);
static void nh_worker_log_outcome(nh_job_t *job, const nh_record_t *record,
    int64_t retry_in_ms);
static void nh_worker_log_targets(nh_job_t *job, int deactivated);
static const char *nh_worker_target_label(const char *name, char *buf,
    size_t size);
static void nh_worker_fail_job(nh_job_t *job, int transient,
    const char *error);
static void nh_worker_fail_target(nh_worker_target_t *target,
    int transient, const char *error);
static void nh_worker_retry_later(nh_job_t *job);
static void nh_worker_finish(nh_worker_t *w, nh_job_t *job);
static void nh_worker_mark_done(nh_worker_t *w, int32_t partition,
    uint64_t generation, int64_t offset);
static void nh_worker_store_offset(nh_worker_t *w, int32_t partition,
    int64_t offset);
static void nh_worker_unlink(nh_worker_t *w, nh_job_t *job);
static void nh_worker_free_job(nh_worker_t *w, nh_job_t *job);
static void nh_worker_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
    rd_kafka_topic_partition_list_t *partitions, void *opaque);
static void nh_worker_ensure_topic(nh_worker_t *w, int wait_ms);
static void nh_worker_schedule_retries(nh_worker_t *w);
static int64_t nh_worker_retry_in_ms(nh_worker_t *w, nh_job_t *job,
    char *reason, size_t size);
static void nh_worker_sweep(nh_worker_t *w);
static int nh_worker_lagging(nh_worker_t *w);
static void nh_worker_commit(nh_worker_t *w);


int
nh_worker_run(const nh_worker_conf_t *conf, nh_providers_t *providers)
{
    nh_worker_t  w;
    int          rc;

    memset(&w, 0, sizeof(nh_worker_t));
    w.conf = conf;
    w.providers = providers;
    w.provider = nh_providers_primary(providers);
    w.wake[0] = -1;
    w.wake[1] = -1;
    w.topics[0].name = conf->topic;
    w.topics[1].name = conf->dlq_topic;
    w.max_jobs = (size_t) conf->max_in_flight * NH_WORKER_BACKLOG;
    if (w.max_jobs > (size_t) conf->max_in_flight + NH_WORKER_BACKLOG_MAX) {
        w.max_jobs = (size_t) conf->max_in_flight + NH_WORKER_BACKLOG_MAX;
    }
    w.max_tracked = (size_t) conf->max_in_flight * 16;
    if (w.max_tracked < 1024) {
        w.max_tracked = 1024;
    }

    nh_worker_log_conf(conf);

    rc = nh_worker_start(&w);
    if (rc != NH_OK) {
        goto failed;
    }

    nh_log(NH_LOG_INFO, "worker started", "topic=%s group=%s",
           nh_log_quote(conf->topic), nh_log_quote(conf->group));

    nh_worker_loop(&w);
    nh_worker_drain(&w);

    rc = w.failed ? NH_ERROR : NH_OK;

failed:

    nh_worker_close(&w);

    nh_log(rc == NH_OK ? NH_LOG_INFO : NH_LOG_ERROR, "worker stopped",
           "clean=%s", rc == NH_OK ? "true" : "false");

    return rc;
}


/* Creates the clients, the topic and the subscription. */
static int
nh_worker_start(nh_worker_t *w)
{
    const nh_worker_conf_t           *conf = w->conf;
    rd_kafka_topic_partition_list_t  *topics;
    rd_kafka_resp_err_t               err;
    char                              topic[NH_WORKER_TOPIC_MAX + 1];

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        nh_log(NH_LOG_ERROR, "libcurl initialisation failed", NULL);
        return NH_ERROR;
    }

    if (pipe(w->wake) != 0
        || fcntl(w->wake[0], F_SETFL, O_NONBLOCK) != 0
        || fcntl(w->wake[1], F_SETFL, O_NONBLOCK) != 0
        || fcntl(w->wake[0], F_SETFD, FD_CLOEXEC) != 0
        || fcntl(w->wake[1], F_SETFD, FD_CLOEXEC) != 0)
    {
        nh_log(NH_LOG_ERROR, "wake-up pipe creation failed", "error=%s",
               nh_log_quote(strerror(errno)));
        return NH_ERROR;
    }

    nh_worker_wake_fd = w->wake[1];

    if (nh_worker_signals() != NH_OK) {
        return NH_ERROR;
    }

    if (nh_offsets_create(&w->offsets) != NH_OK
        || nh_zone_cache_create(NULL, NH_WORKER_ZONES, &w->zones) != NH_OK
        || nh_http_create(&w->http, conf->http_connect_timeout_ms,
                          conf->http_timeout_ms, conf->name) != NH_OK
        || nh_db_create(conf->pg_dsn, &w->db) != NH_OK)
    {
        nh_log(NH_LOG_ERROR, "worker initialisation failed",
               "error=\"out of memory\"");
        return NH_ERROR;
    }

    nh_providers_attach(w->providers, w->db);

    if (nh_kafka_producer_create(conf->brokers, conf->name,
                                 nh_outbox_delivered, w, &w->producer)
        != NH_OK)
    {
        return NH_ERROR;
    }

    snprintf(topic, sizeof(topic), "%sevents", conf->topic_prefix);

    if (nh_events_relayer_start(conf->pg_dsn, conf->brokers, conf->name,
                                topic, &w->relayer)
        != NH_OK)
    {
        return NH_ERROR;
    }

    w->admin_queue = rd_kafka_queue_new(w->producer);
    if (w->admin_queue == NULL) {
        nh_log(NH_LOG_ERROR, "kafka admin queue creation failed", NULL);
        return NH_ERROR;
    }

    /* Subscribing to a topic that does not exist yet delays the first
     * assignment until the next metadata refresh, so wait a little. */
    nh_worker_ensure_topic(w, NH_WORKER_TOPIC_TIMEOUT_MS / 2);

    if (nh_kafka_consumer_create(conf->brokers, conf->group, conf->name,
                                 nh_worker_rebalance, w, &w->consumer)
        != NH_OK)
    {
        return NH_ERROR;
    }

    w->consumer_queue = rd_kafka_queue_get_consumer(w->consumer);
    if (w->consumer_queue == NULL) {
        nh_log(NH_LOG_ERROR, "kafka consumer queue is missing", NULL);
        return NH_ERROR;
    }

    /* librdkafka writes a byte to the pipe when the queue gets an event,
     * which ends the wait in curl_multi_poll(). */
    rd_kafka_queue_io_event_enable(w->consumer_queue, w->wake[1], "k", 1);

    topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, conf->topic,
                                      RD_KAFKA_PARTITION_UA);
    err = rd_kafka_subscribe(w->consumer, topics);
    rd_kafka_topic_partition_list_destroy(topics);

    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        nh_log(NH_LOG_ERROR, "kafka subscribe failed", "topic=%s error=%s",
               nh_log_quote(conf->topic),
               nh_log_quote(rd_kafka_err2str(err)));
        return NH_ERROR;
    }

    w->next_sweep_ms = nh_time_monotonic_ms() + conf->sweep_interval_ms;

    return NH_OK;
}


static void
nh_worker_loop(nh_worker_t *w)
{
    while (!nh_worker_stop && !w->failed) {
        nh_worker_flow_control(w);
        nh_worker_consume(w);
        nh_providers_tick(w->providers);
        nh_worker_run_jobs(w);
        nh_worker_ensure_topic(w, 0);
        nh_worker_sweep(w);
        rd_kafka_poll(w->producer, 0);

        nh_worker_wait(w, nh_worker_wait_ms(w));
    }
}


/*
 * Stops taking messages and finishes the jobs in flight: requests finish
 * or time out within NH_HTTP_TIMEOUT_MS, and their outcomes get
 * NH_WORKER_WRITE_GRACE_MS more to reach PostgreSQL. Jobs that never got
 * their lease are dropped unfinished, so their offsets are not stored and
 * the messages are consumed again after a restart.
 */
static void
nh_worker_drain(nh_worker_t *w)
{
    rd_kafka_message_t  *msg;
    nh_job_t            *job, *next;
    int64_t              deadline, left;
    int                  timeout;

    nh_log(NH_LOG_INFO, "worker stopping", "jobs=%zu requests=%zu", w->jobs,
           nh_http_in_flight(w->http));

    nh_worker_set_paused(w, 1);

    for (job = w->head; job != NULL; job = next) {
        next = job->next;

        if (job->state == NH_JOB_LEASE) {
            nh_worker_free_job(w, job);
        }
    }

    deadline = nh_time_monotonic_ms() + w->conf->http_timeout_ms
               + NH_WORKER_WRITE_GRACE_MS;

    while (w->jobs > 0) {
        left = deadline - nh_time_monotonic_ms();
        if (left <= 0) {
            break;
        }

        /* Serve rebalance events; a message is not taken any more, and
         * its offset is not stored. */
        msg = rd_kafka_consumer_poll(w->consumer, 0);
        if (msg != NULL) {
            rd_kafka_message_destroy(msg);
        }

        nh_worker_run_jobs(w);

        timeout = nh_worker_wait_ms(w);
        if (timeout > left) {
            timeout = (int) left;
        }

        nh_worker_wait(w, timeout);
    }

    for (job = w->head; job != NULL; job = next) {
        next = job->next;

        nh_log(NH_LOG_WARN, "outcome not stored before shutdown",
               "notification_id=%s tenant_id=%s state=%s", job->id,
               job->tenant_id[0] ? job->tenant_id : "null",
               job->state == NH_JOB_SEND ? "sending" : "recording");
        nh_worker_free_job(w, job);
    }

    nh_worker_commit(w);
}


/* Closes and frees whatever nh_worker_start() created. */
static void
nh_worker_close(nh_worker_t *w)
{
    rd_kafka_resp_err_t  err;

    nh_events_relayer_stop(w->relayer);

    while (w->head != NULL) {
        nh_worker_free_job(w, w->head);
    }

    if (w->consumer_queue != NULL) {
        rd_kafka_queue_io_event_enable(w->consumer_queue, -1, NULL, 0);
        rd_kafka_queue_destroy(w->consumer_queue);
    }

    if (w->consumer != NULL) {
        err = rd_kafka_consumer_close(w->consumer);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            nh_log(NH_LOG_WARN, "kafka consumer close failed", "error=%s",
                   nh_log_quote(rd_kafka_err2str(err)));
        }

        rd_kafka_destroy(w->consumer);
    }

    if (w->admin_queue != NULL) {
        rd_kafka_queue_destroy(w->admin_queue);
    }

    if (w->producer != NULL) {
        rd_kafka_flush(w->producer, NH_WORKER_FLUSH_TIMEOUT_MS);

        if (rd_kafka_outq_len(w->producer) > 0) {
            nh_log(NH_LOG_WARN, "kafka producer not flushed, purging",
                   "messages=%d", rd_kafka_outq_len(w->producer));
            rd_kafka_purge(w->producer,
                           RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
            rd_kafka_poll(w->producer, 0);
        }

        rd_kafka_destroy(w->producer);
    }

    nh_http_destroy(w->http);
    nh_db_destroy(w->db);
    nh_zone_cache_destroy(w->zones);
    nh_offsets_destroy(w->offsets);

    nh_worker_wake_fd = -1;

    if (w->wake[0] >= 0) {
        close(w->wake[0]);
        close(w->wake[1]);
    }

    curl_global_cleanup();
}


static void
nh_worker_log_conf(const nh_worker_conf_t *conf)
{
    char  dsn[512];

    if (nh_db_redact_dsn(conf->pg_dsn, dsn, sizeof(dsn)) != NH_OK) {
        snprintf(dsn, sizeof(dsn), "(unparsable)");
    }

    nh_log(NH_LOG_INFO, "worker starting", "name=%s channel=%s pg_dsn=%s "
           "kafka_brokers=%s kafka_topic=%s kafka_group=%s "
           "kafka_partitions=%ld max_in_flight=%ld "
           "http_connect_timeout_ms=%ld http_timeout_ms=%ld "
           "lease_seconds=%ld sweep_interval_ms=%ld "
           "sweep_after_seconds=%ld max_attempts=%ld retry_base_ms=%ld "
           "retry_max_ms=%ld kafka_dlq_topic=%s log_level=%s",
           conf->name, conf->channel, nh_log_quote(dsn),
           nh_log_quote(conf->brokers), nh_log_quote(conf->topic),
           nh_log_quote(conf->group), conf->partitions, conf->max_in_flight,
           conf->http_connect_timeout_ms, conf->http_timeout_ms,
           conf->lease_seconds, conf->sweep_interval_ms,
           conf->sweep_after_seconds, conf->max_attempts,
           conf->retry_base_ms, conf->retry_max_ms,
           nh_log_quote(conf->dlq_topic), conf->log_level_name);

    if (conf->lease_seconds * 1000 <= conf->http_timeout_ms) {
        nh_log(NH_LOG_WARN, "lease shorter than the HTTP timeout",
               "lease_seconds=%ld http_timeout_ms=%ld detail=%s",
               conf->lease_seconds, conf->http_timeout_ms,
               nh_log_quote("a lease can expire while its request is in "
                            "flight, and the notification be sent twice"));
    }
}


static void
nh_worker_signal(int signo)
{
    int   saved = errno;
    char  c = 's';

    (void) signo;

    nh_worker_stop = 1;

    if (nh_worker_wake_fd >= 0 && write(nh_worker_wake_fd, &c, 1) < 0) {
        /* The pipe is full, so the loop wakes up anyway. */
    }

    errno = saved;
}


static int
nh_worker_signals(void)
{
    struct sigaction  sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = nh_worker_signal;
    sigemptyset(&sa.sa_mask);

    if (sigaction(SIGTERM, &sa, NULL) != 0
        || sigaction(SIGINT, &sa, NULL) != 0)
    {
        nh_log(NH_LOG_ERROR, "signal handler setup failed", "error=%s",
               nh_log_quote(strerror(errno)));
        return NH_ERROR;
    }

    sa.sa_handler = SIG_IGN;
    if (sigaction(SIGPIPE, &sa, NULL) != 0) {
        nh_log(NH_LOG_ERROR, "signal handler setup failed", "error=%s",
               nh_log_quote(strerror(errno)));
        return NH_ERROR;
    }

    return NH_OK;
}


/*
 * Waits for a provider response, a Kafka event or a signal, at most
 * timeout_ms, and calls the done callbacks of finished requests.
 */
static void
nh_worker_wait(nh_worker_t *w, int timeout_ms)
{
    struct curl_waitfd  wake;
    char                buf[64];

    wake.fd = w->wake[0];
    wake.events = CURL_WAIT_POLLIN;
    wake.revents = 0;

    if (nh_http_run(w->http, timeout_ms, &wake, 1) != NH_OK) {
        nh_log(NH_LOG_ERROR, "http engine failed", NULL);
        w->failed = 1;
        return;
    }

    while (read(w->wake[0], buf, sizeof(buf)) > 0) {
        /* Emptied so that the next event wakes the loop again. */
    }
}


/* Returns how long the loop may sleep before something is due. */
static int
nh_worker_wait_ms(nh_worker_t *w)
{
    nh_job_t  *job;
    int64_t    now, due, wait;
    int        full;

    if (w->more) {
        return 0;
    }

    now = nh_time_monotonic_ms();
    wait = NH_WORKER_TICK_MS;

    due = w->next_sweep_ms - now;
    if (!nh_worker_stop && due < wait) {
        wait = due;
    }

    full = w->active >= (size_t) w->conf->max_in_flight;

    for (job = w->head; job != NULL; job = job->next) {
        /* A lease waits for a free request slot, and a finished request
         * wakes the loop. */
        if (job->state == NH_JOB_SEND
            || (job->state == NH_JOB_LEASE && full))
        {
            continue;
        }

        due = job->retry_at_ms - now;
        if (due < nh_db_retry_in_ms(w->db)) {
            due = nh_db_retry_in_ms(w->db);
        }

        if (due < wait) {
            wait = due;
        }
    }

    return wait > 0 ? (int) wait : 0;
}


/*
 * Pauses the assigned partitions while the worker has max_jobs
 * consumed messages (a backlog of up to NH_WORKER_BACKLOG_MAX) or
 * too many tracked offsets, and resumes them when half of that is left.
 * The consumer keeps being polled while paused, for rebalance events.
 */
static void
nh_worker_flow_control(nh_worker_t *w)
{
    int  full;

    full = nh_worker_full(w);

    if (full != w->paused) {
        nh_worker_set_paused(w, full);
    }
}


static int
nh_worker_full(const nh_worker_t *w)
{
    /* Paused partitions resume only at half the bounds, because each
     * resume costs a refetch from the broker. */
    if (w->paused) {
        return w->jobs > w->max_jobs / 2
               || nh_offsets_count(w->offsets) > w->max_tracked / 2;
    }

    return w->jobs >= w->max_jobs
           || nh_offsets_count(w->offsets) >= w->max_tracked;
}


static void
nh_worker_set_paused(nh_worker_t *w, int pause)
{
    rd_kafka_topic_partition_list_t  *assignment;
    rd_kafka_resp_err_t               err;

    assignment = NULL;
    err = rd_kafka_assignment(w->consumer, &assignment);

    if (err == RD_KAFKA_RESP_ERR_NO_ERROR && assignment->cnt > 0) {
        err = pause ? rd_kafka_pause_partitions(w->consumer, assignment)
                    : rd_kafka_resume_partitions(w->consumer, assignment);
    }

    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        nh_log(NH_LOG_WARN, pause ? "kafka pause failed"
                                  : "kafka resume failed",
               "error=%s", nh_log_quote(rd_kafka_err2str(err)));
    } else {
        nh_log(NH_LOG_DEBUG, pause ? "partitions paused"
                                   : "partitions resumed",
               "jobs=%zu tracked_offsets=%zu", w->jobs,
               nh_offsets_count(w->offsets));
    }

    if (assignment != NULL) {
        rd_kafka_topic_partition_list_destroy(assignment);
    }

    w->paused = pause;
}


/*
 * Takes the messages that are ready, up to one batch or until the worker
 * is full. The first poll runs even while paused, because it also serves
 * rebalance events.
 */
static void
nh_worker_consume(nh_worker_t *w)
{
    rd_kafka_message_t  *msg;
    int                  n;

    w->more = 0;

    for (n = 1; ; n++) {
        msg = rd_kafka_consumer_poll(w->consumer, 0);
        if (msg == NULL) {
            return;
        }

        nh_worker_on_message(w, msg);
        rd_kafka_message_destroy(msg);

        if (w->failed || nh_worker_full(w)) {
            return;
        }

        if (n == NH_WORKER_BATCH) {
            w->more = 1;
            return;
        }
    }
}


static void
nh_worker_on_message(nh_worker_t *w, const rd_kafka_message_t *msg)
{
    nh_job_t  *job;
    uint64_t   generation;
    char       id[NH_UUID_STR_LEN + 1];
    int        rc;

    if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        nh_worker_consume_error(w, msg);
        return;
    }

    rc = nh_offsets_begin(w->offsets, msg->partition, msg->offset,
                          &generation);

    if (rc == NH_ENOENT) {
        /* Not seen in a rebalance callback; track it from here on. */
        rc = nh_offsets_assign(w->offsets, msg->partition, &generation);
        if (rc == NH_OK) {
            rc = nh_offsets_begin(w->offsets, msg->partition, msg->offset,
                                  &generation);
        }
    }

    if (rc == NH_EEXIST) {
        nh_log(NH_LOG_DEBUG, "message already in flight", "partition=%d "
               "offset=%lld", (int) msg->partition, (long long) msg->offset);
        return;
    }

    if (rc != NH_OK) {
        nh_log(NH_LOG_ERROR, "offset tracking failed",
               "error=\"out of memory\"");
        w->failed = 1;
        return;
    }

    if (nh_worker_message_id(msg, id) != NH_OK) {
        nh_log(NH_LOG_WARN, "message without a notification id skipped",
               "topic=%s partition=%d offset=%lld",
               nh_log_quote(w->conf->topic), (int) msg->partition,
               (long long) msg->offset);
        nh_worker_mark_done(w, msg->partition, generation, msg->offset);
        return;
    }

    job = calloc(1, sizeof(nh_job_t));
    if (job == NULL) {
        nh_log(NH_LOG_ERROR, "job allocation failed", "notification_id=%s",
               id);
        w->failed = 1;
        return;
    }

    job->worker = w;
    job->state = NH_JOB_LEASE;
    job->partition = msg->partition;
    job->offset = msg->offset;
    job->generation = generation;
    job->backoff_ms = NH_WORKER_RETRY_MIN_MS;
    memcpy(job->id, id, sizeof(job->id));

    job->prev = w->tail;
    if (w->tail != NULL) {
        w->tail->next = job;
    } else {
        w->head = job;
    }

    w->tail = job;
    w->jobs++;

    nh_log(NH_LOG_DEBUG, "message received", "notification_id=%s "
           "partition=%d offset=%lld", id, (int) msg->partition,
           (long long) msg->offset);
}


static void
nh_worker_consume_error(nh_worker_t *w, const rd_kafka_message_t *msg)
{
    int64_t  now;

    if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        return;
    }

    now = nh_time_monotonic_ms();

    if ((int) msg->err == w->last_consume_error
        && now - w->last_consume_error_ms < NH_WORKER_ERROR_REPEAT_MS)
    {
        w->consume_errors_suppressed++;
        return;
    }

    nh_log(NH_LOG_WARN, "kafka consume error", "topic=%s error=%s "
           "suppressed=%u",
           nh_log_quote(msg->rkt != NULL ? rd_kafka_topic_name(msg->rkt)
                                         : w->conf->topic),
           nh_log_quote(rd_kafka_message_errstr(msg)),
           w->consume_errors_suppressed);

    w->last_consume_error = (int) msg->err;
    w->last_consume_error_ms = now;
    w->consume_errors_suppressed = 0;
}


/*
 * Reads the notification id from the message key, or else from the "id"
 * member of the JSON value, in canonical lower-case form.
 */
static int
nh_worker_message_id(const rd_kafka_message_t *msg,
    char id[NH_UUID_STR_LEN + 1])
{
    unsigned char   uuid[NH_UUID_LEN];
    cJSON          *json, *value;
    int             rc;

    if (msg->key != NULL && msg->key_len == NH_UUID_STR_LEN
        && nh_uuid_parse(msg->key, msg->key_len, uuid) == 0)
    {
        nh_uuid_format(uuid, id);
        return NH_OK;
    }

    if (msg->payload == NULL) {
        return NH_ERROR;
    }

    json = cJSON_ParseWithLength(msg->payload, msg->len);
    value = cJSON_GetObjectItemCaseSensitive(json, "id");
    rc = NH_ERROR;

    if (cJSON_IsString(value)
        && strlen(value->valuestring) == NH_UUID_STR_LEN
        && nh_uuid_parse(value->valuestring, NH_UUID_STR_LEN, uuid) == 0)
    {
        nh_uuid_format(uuid, id);
        rc = NH_OK;
    }

    cJSON_Delete(json);
    return rc;
}


/*
 * Makes the database calls that are due: leases for new jobs and outcome
 * writes for jobs whose request finished, in arrival order. While
 * PostgreSQL is down the jobs wait, and so do their offsets.
 */
static void
nh_worker_run_jobs(nh_worker_t *w)
{
    nh_job_t  *job, *next;
    int64_t    now;
    int        batch;

    now = nh_time_monotonic_ms();
    batch = !w->no_batch;
    w->no_batch = 0;

    /* Outcomes first, because they free the request slots that leases
     * take. */
    if (batch) {
        nh_worker_run_batch(w, NH_JOB_RECORD, now);
        nh_worker_run_batch(w, NH_JOB_LEASE, now);
    }

    /* What the batches left: decisions of the recipient's preferences, or
     * every job after a failed batch. Leases that found no free slot wait
     * for the next turn's batch. */

    for (job = w->head; job != NULL; job = next) {
        next = job->next;

        if (job->state == NH_JOB_SEND || job->retry_at_ms > now
            || (batch && nh_worker_batchable(job, job->state, now)))
        {
            continue;
        }

        if (!nh_db_ready(w->db)) {
            return;
        }

        if (job->state == NH_JOB_LEASE) {
            /* A lease starts requests, so it waits for a free slot and
             * a token of the send-rate limit. */
            if (w->active < (size_t) w->conf->max_in_flight
                && nh_providers_admit(w->providers, 1) == 1)
            {
                nh_worker_lease(w, job);
            }

        } else {
            nh_worker_record(w, job);
        }
    }
}


/*
 * Leases, or writes the outcomes of, every due job in state with one
 * statement, so that the per-statement costs are paid once per loop turn.
 * Outcomes of several targets each take one statement per job, in one
 * transaction. Then it acts on each result. Decisions of the recipient's
 * preferences are left to the per-job path. When the write fails, the
 * jobs wait as when their own write fails, and the next turn runs them
 * one by one, so that one bad job cannot stop the others.
 */
static void
nh_worker_run_batch(nh_worker_t *w, nh_job_state_e state, int64_t now)
{
    nh_job_t  *job, **jobs;
    size_t     n, i, slots;
    int        rc;

    n = 0;

    for (job = w->head; job != NULL; job = job->next) {
        n += nh_worker_batchable(job, state, now);
    }

    /* Leases start requests, so they take only the free request slots. */
    if (state == NH_JOB_LEASE) {
        slots = w->active < (size_t) w->conf->max_in_flight
                ? (size_t) w->conf->max_in_flight - w->active : 0;
        n = n < slots ? n : slots;
        n = nh_providers_admit(w->providers, n);
    }

    if (n == 0 || !nh_db_ready(w->db)) {
        return;
    }

    jobs = calloc(n, sizeof(nh_job_t *));
    if (jobs == NULL) {
        return;
    }

    i = 0;
    for (job = w->head; job != NULL && i < n; job = job->next) {
        if (nh_worker_batchable(job, state, now)) {
            jobs[i++] = job;
        }
    }

    if (state == NH_JOB_LEASE) {
        rc = nh_worker_lease_jobs(w, jobs, n);

    } else if (w->provider->targets == NULL) {
        rc = nh_worker_record_jobs(w, jobs, n);

    } else {
        rc = nh_worker_record_each(w, jobs, n);
    }

    if (rc != NH_OK) {
        nh_log(NH_LOG_WARN, "batch write failed, writing one by one",
               "jobs=%zu state=%s error=%s", n,
               state == NH_JOB_LEASE ? "lease" : "record",
               nh_log_quote(nh_db_error(w->db)));

        for (i = 0; i < n; i++) {
            nh_worker_retry_later(jobs[i]);
        }

        w->no_batch = 1;
    }

    free(jobs);
}


/*
 * Leases the n jobs with one statement and acts on each result. Returns
 * 0, or the statement's failure, after which no job has changed.
 */
static int
nh_worker_lease_jobs(nh_worker_t *w, nh_job_t **jobs, size_t n)
{
    nh_lease_t   *leases;
    char        **ids;
    size_t        i;
    int           rc;

    leases = calloc(n, sizeof(nh_lease_t));
    ids = calloc(n, sizeof(char *));

    if (leases == NULL || ids == NULL) {
        free(leases);
        free(ids);
        return NH_ENOMEM;
    }

    for (i = 0; i < n; i++) {
        ids[i] = jobs[i]->id;
    }

    rc = nh_delivery_lease_many(w->db, ids, n, w->conf->lease_seconds,
                                leases);

    if (rc == NH_OK) {
        for (i = 0; i < n; i++) {
            nh_worker_leased(w, jobs[i], nh_worker_lease_rc(&leases[i]),
                             &leases[i]);
        }
    }

    free(leases);
    free(ids);

    return rc;
}


/*
 * Writes the outcomes of the n jobs, which went to one target each, with
 * one statement and acts on each result. Returns 0, or the statement's
 * failure, after which no job has changed.
 */
static int
nh_worker_record_jobs(nh_worker_t *w, nh_job_t **jobs, size_t n)
{
    nh_outcome_item_t  *items;
    nh_record_t        *records;
    char               *reasons;
    size_t              i;
    int                 rc;

    items = calloc(n, sizeof(nh_outcome_item_t));
    records = calloc(n, sizeof(nh_record_t));
    reasons = calloc(n, NH_WORKER_REASON_MAX);

    if (items == NULL || records == NULL || reasons == NULL) {
        free(items);
        free(records);
        free(reasons);
        return NH_ENOMEM;
    }

    for (i = 0; i < n; i++) {
        nh_worker_outcome_item(w, jobs[i], &items[i],
                               reasons + i * NH_WORKER_REASON_MAX);
    }

    rc = nh_delivery_record_many(w->db, items, n, records);

    if (rc == NH_OK) {
        for (i = 0; i < n; i++) {
            nh_worker_recorded(w, jobs[i],
                               records[i].busy ? NH_EAGAIN : NH_OK,
                               &records[i], items[i].retry_in_ms);
        }
    }

    free(items);
    free(records);
    free(reasons);

    return rc;
}


/*
 * Writes the outcomes of the n jobs, which went to several targets each,
 * in one transaction, and acts on each result once it is committed.
 * Returns 0, or the failure, after which the transaction is rolled back
 * and no job has changed.
 */
static int
nh_worker_record_each(nh_worker_t *w, nh_job_t **jobs, size_t n)
{
    nh_record_t  *records;
    int64_t      *retry_in_ms;
    int          *results;
    size_t        i, done;
    int           rc;

    records = calloc(n, sizeof(nh_record_t));
    retry_in_ms = calloc(n, sizeof(int64_t));
    results = calloc(n, sizeof(int));

    if (records == NULL || retry_in_ms == NULL || results == NULL) {
        free(records);
        free(retry_in_ms);
        free(results);
        return NH_ENOMEM;
    }

    done = 0;
    rc = nh_db_command(w->db, "BEGIN");

    /* A row that another transaction has locked is left for a later
     * turn. */
    for (i = 0; i < n && rc == NH_OK; i++) {
        results[i] = nh_worker_record_query(w, jobs[i], &records[i],
                                            &retry_in_ms[i]);
        done = i + 1;

        if (results[i] != NH_OK && !records[i].busy) {
            rc = results[i];
        }
    }

    if (rc == NH_OK) {
        rc = nh_db_command(w->db, "COMMIT");
    }

    if (rc != NH_OK) {
        (void) nh_db_command(w->db, "ROLLBACK");

        for (i = 0; i < done; i++) {
            nh_record_release(&records[i]);
        }

    } else {
        for (i = 0; i < n; i++) {
            nh_worker_recorded(w, jobs[i], results[i], &records[i],
                               retry_in_ms[i]);
        }
    }

    free(records);
    free(retry_in_ms);
    free(results);

    return rc;
}


/* Whether the job is due in state and can be written in a batch. */
static int
nh_worker_batchable(const nh_job_t *job, nh_job_state_e state, int64_t now)
{
    return job->state == state && job->retry_at_ms <= now
           && !(state == NH_JOB_RECORD
                && (job->gate.action != NH_GATE_SEND
                    || job->route.until_ms != 0));
}


static void
nh_worker_lease(nh_worker_t *w, nh_job_t *job)
{
    nh_lease_t   lease;
    char        *id;
    int          rc;

    id = job->id;
    rc = nh_delivery_lease_many(w->db, &id, 1, w->conf->lease_seconds,
                                &lease);
    if (rc == NH_OK) {
        rc = nh_worker_lease_rc(&lease);
    }

    nh_worker_leased(w, job, rc, &lease);
}


/*
 * Returns the result of one lease of nh_delivery_lease_many(): 0 when it
 * was leased, NH_EAGAIN when another transaction had locked the row, else
 * NH_ENOENT.
 */
static int
nh_worker_lease_rc(const nh_lease_t *lease)
{
    if (lease->rows != NULL) {
        return NH_OK;
    }

    return lease->busy ? NH_EAGAIN : NH_ENOENT;
}


/*
 * Acts on the result rc of the job's lease, once the lease is committed:
 * starts the delivery, or finishes or postpones the job.
 */
static void
nh_worker_leased(nh_worker_t *w, nh_job_t *job, int rc, nh_lease_t *leased)
{
    nh_lease_t   lease;
    const char  *sqlstate;
    char         error[NH_OUTCOME_ERROR_MAX];

    switch (rc) {

    case NH_OK:
        break;

    case NH_ENOENT:
        nh_log(NH_LOG_DEBUG, "notification not leasable, message skipped",
               "notification_id=%s", job->id);
        nh_worker_finish(w, job);
        return;

    case NH_EAGAIN:
        nh_log(NH_LOG_DEBUG, "notification lease postponed",
               "notification_id=%s retry_in_ms=%lld error=%s", job->id,
               (long long) job->backoff_ms,
               nh_log_quote(leased->busy ? "row held by another transaction"
                                         : nh_db_error(w->db)));
        nh_worker_retry_later(job);
        return;

    default:
        sqlstate = nh_db_sqlstate(w->db);

        /* Data exceptions (class 22) and constraint violations (23) come
         * from the notification itself and would fail on every retry. */
        if (strncmp(sqlstate, "22", 2) == 0
            || strncmp(sqlstate, "23", 2) == 0)
        {
            nh_log(NH_LOG_ERROR, "notification lease failed, message "
                   "skipped", "notification_id=%s sqlstate=%s error=%s",
                   job->id, sqlstate, nh_log_quote(nh_db_error(w->db)));
            nh_worker_finish(w, job);
            return;
        }

        nh_log(NH_LOG_ERROR, "notification lease failed",
               "notification_id=%s retry_in_ms=%lld sqlstate=%s error=%s",
               job->id, (long long) job->backoff_ms, sqlstate,
               nh_log_quote(nh_db_error(w->db)));
        nh_worker_retry_later(job);
        return;
    }

    lease = *leased;
    job->lease = lease;
    job->active = 1;
    w->active++;
    job->attempt = lease.delivery.attempts;
    if (lease.delivery.tenant_id != NULL) {
        snprintf(job->tenant_id, sizeof(job->tenant_id), "%s",
                 lease.delivery.tenant_id);
    }

    nh_log(NH_LOG_DEBUG, "notification leased", "notification_id=%s "
           "tenant_id=%s attempt=%d", job->id, job->tenant_id,
           job->attempt);

    job->state = NH_JOB_RECORD;
    job->retry_at_ms = 0;
    job->backoff_ms = NH_WORKER_RETRY_MIN_MS;

    if (lease.channel == NULL
        || strcmp(lease.channel, w->provider->channel) != 0)
    {
        snprintf(error, sizeof(error),
                 "channel %s is not delivered by the %s worker",
                 lease.channel != NULL ? lease.channel : "(none)",
                 w->provider->name);
        nh_worker_fail_job(job, 0, error);
        return;
    }

    /* A skipped or deferred notification is recorded without a request. */

    if (nh_gate_check(w->zones, &job->lease, nh_time_now_ms() / 1000,
                      &job->gate)
        != NH_OK)
    {
        nh_worker_fail_job(job, 1, "out of memory");
        return;
    }

    if (job->gate.action != NH_GATE_SEND) {
        return;
    }

    nh_worker_start_targets(w, job);
}


/*
 * Lists the job's targets and starts a request for each. The job waits in
 * NH_JOB_SEND while any request is in flight; targets whose request could
 * not be built or started have a FAILED outcome already.
 */
static void
nh_worker_start_targets(nh_worker_t *w, nh_job_t *job)
{
    const nh_provider_t  *provider;
    nh_worker_target_t   *targets;
    nh_outcome_t          failure;
    char                **names;
    size_t                n, i;
    int                   rc;

    /* With every circuit open, nh_worker_record() defers the job. */
    nh_providers_route(w->providers, &job->route);
    if (job->route.instance == NULL) {
        return;
    }

    provider = job->route.provider;
    names = NULL;
    n = 1;

    if (provider->targets != NULL) {
        memset(&failure, 0, sizeof(nh_outcome_t));

        rc = provider->targets(provider->ctx, &job->lease.delivery, &names,
                               &n, &failure);
        if (rc == NH_ERROR) {
            nh_worker_fail_job(job, 0, failure.error);
            return;
        }

        if (rc != NH_OK) {
            nh_worker_fail_job(job, 1, "out of memory");
            return;
        }

        n = nh_worker_drop_failed_targets(job, names, n);

        if (n == 0) {
            free(names);
            nh_worker_fail_job(job, 0, "every target failed permanently in "
                               "an earlier attempt");
            return;
        }
    }

    if (n == 1) {
        targets = &job->single;
        memset(targets, 0, sizeof(nh_worker_target_t));
    } else {
        targets = calloc(n, sizeof(nh_worker_target_t));
        if (targets == NULL) {
            for (i = 0; i < n; i++) {
                free(names[i]);
            }

            free(names);
            nh_worker_fail_job(job, 1, "out of memory");
            return;
        }
    }

    /* The target strings move into the targets. */
    for (i = 0; i < n; i++) {
        targets[i].job = job;
        targets[i].name = names != NULL ? names[i] : NULL;
    }

    free(names);

    job->targets = targets;
    job->n_targets = n;
    job->sending = 0;

    for (i = 0; i < n; i++) {
        if (nh_worker_send(w, &targets[i]) == NH_OK) {
            job->sending++;
        }
    }

    if (job->sending > 0) {
        job->state = NH_JOB_SEND;
    } else {
        nh_providers_release(&job->route);
    }
}


/*
 * Builds the provider request of one target and starts it. On failure the
 * target gets a FAILED outcome to record, and NH_ERROR is returned.
 */
static int
nh_worker_send(nh_worker_t *w, nh_worker_target_t *target)
{
    const nh_provider_t  *provider = target->job->route.provider;
    nh_http_request_t    *req;
    nh_delivery_t         d;
    int                   rc;

    if (nh_http_request_create(&req) != NH_OK) {
        nh_worker_fail_target(target, 1, "out of memory");
        return NH_ERROR;
    }

    d = target->job->lease.delivery;
    d.target = target->name;

    memset(&target->outcome, 0, sizeof(nh_outcome_t));
    rc = provider->build(provider->ctx, &d, req, &target->outcome);

    if (rc == NH_ERROR || rc == NH_EAGAIN) {
        nh_worker_fail_target(target, rc == NH_EAGAIN, NULL);
        goto failed;
    }

    if (rc != NH_OK) {
        nh_worker_fail_target(target, 1, "out of memory");
        goto failed;
    }

    req->done = nh_worker_on_response;
    req->data = target;

    if (nh_http_submit(w->http, req) != NH_OK) {
        nh_worker_fail_target(target, 1, "HTTP request could not be started");
        goto failed;
    }

    target->req = req;
    nh_providers_spend(&target->job->route);
    return NH_OK;

failed:

    nh_http_request_free(req);
    return NH_ERROR;
}


static void
nh_worker_on_response(nh_http_request_t *req)
{
    nh_worker_target_t  *target = req->data;
    nh_job_t            *job = target->job;
    nh_worker_t         *w = job->worker;
    char                 label[NH_WORKER_TARGET_LOG_CHARS + 4];

    job->route.provider->classify(job->route.provider->ctx, req,
                                  &target->outcome);
    nh_providers_count(&job->route, &target->outcome);

    nh_http_request_free(req);
    target->req = NULL;

    if (target->outcome.resend && !target->resent) {
        target->resent = 1;

        nh_log(NH_LOG_INFO, "provider rejected the credential, sending "
               "again", "notification_id=%s tenant_id=%s target=%s "
               "http_status=%ld error=%s", job->id, job->tenant_id,
               nh_worker_target_label(target->name, label, sizeof(label)),
               target->outcome.http_status,
               nh_log_quote(target->outcome.error));

        if (nh_worker_send(w, target) == NH_OK) {
            return;
        }
    }

    job->sending--;
    if (job->sending > 0) {
        return;
    }

    job->state = NH_JOB_RECORD;
    job->retry_at_ms = 0;
    job->backoff_ms = NH_WORKER_RETRY_MIN_MS;
}


static void
nh_worker_record(nh_worker_t *w, nh_job_t *job)
{
    nh_record_t  record;
    int64_t      retry_in_ms;
    int          rc;

    if (job->gate.action != NH_GATE_SEND) {
        nh_worker_record_decision(w, job);
        return;
    }

    if (job->route.until_ms != 0) {
        nh_worker_record_deferral(w, job);
        return;
    }

    memset(&record, 0, sizeof(nh_record_t));
    rc = nh_worker_record_query(w, job, &record, &retry_in_ms);
    nh_worker_recorded(w, job, rc, &record, retry_in_ms);
}


/*
 * Writes the job's outcome; the caller commits it. Returns 0; NH_EAGAIN
 * with record->busy set when another transaction held the row, so that
 * nothing was written; or the failure as nh_db_exec() does, or NH_ENOMEM.
 */
static int
nh_worker_record_query(nh_worker_t *w, nh_job_t *job, nh_record_t *record,
    int64_t *retry_in_ms)
{
    const nh_provider_t  *provider = nh_worker_job_provider(w, job);
    nh_outcome_item_t     item;
    char                  reason[NH_WORKER_REASON_MAX];
    int                   rc;

    nh_worker_outcome_item(w, job, &item, reason);
    *retry_in_ms = item.retry_in_ms;

    if (provider->targets == NULL) {
        rc = nh_delivery_record_many(w->db, &item, 1, record);

    } else {
        rc = nh_worker_record_targets(w, job, item.retry_in_ms,
                                      item.dead_letter_reason, record);
    }

    return rc == NH_OK && record->busy ? NH_EAGAIN : rc;
}


/*
 * Sets item from the job's outcome: the delay before its next attempt and
 * the reason of its dead letter, which is written to reason, a buffer of
 * NH_WORKER_REASON_MAX bytes.
 */
static void
nh_worker_outcome_item(nh_worker_t *w, nh_job_t *job,
    nh_outcome_item_t *item, char *reason)
{
    nh_worker_summarize(job);

    item->id = job->id;
    item->provider = nh_worker_job_provider(w, job)->name;
    item->outcome = &job->outcome;
    item->retry_in_ms = nh_worker_retry_in_ms(w, job, reason,
                                              NH_WORKER_REASON_MAX);
    item->dead_letter_reason = reason[0] != '\0' ? reason : NULL;
}


/*
 * Acts on the result rc of writing the job's outcome, once it is
 * committed: logs it, queues a dead letter's message and finishes the
 * job, or postpones the job.
 */
static void
nh_worker_recorded(nh_worker_t *w, nh_job_t *job, int rc,
    nh_record_t *record_in, int64_t retry_in_ms)
{
    nh_record_t  record;

    record = *record_in;

    if (rc == NH_EAGAIN) {
        nh_log(NH_LOG_DEBUG, "outcome write postponed", "notification_id=%s "
               "tenant_id=%s retry_in_ms=%lld error=%s", job->id,
               job->tenant_id, (long long) job->backoff_ms,
               nh_log_quote(record.busy ? "row held by another transaction"
                                        : nh_db_error(w->db)));
        nh_worker_retry_later(job);
        return;
    }

    if (rc != NH_OK) {
        nh_log(NH_LOG_ERROR, "outcome write failed", "notification_id=%s "
               "tenant_id=%s retry_in_ms=%lld sqlstate=%s error=%s",
               job->id, job->tenant_id, (long long) job->backoff_ms,
               nh_db_sqlstate(w->db), nh_log_quote(nh_db_error(w->db)));
        nh_worker_retry_later(job);
        return;
    }

    if (record.stored && w->provider->targets != NULL) {
        nh_worker_log_targets(job, record.deactivated);
    }

    nh_worker_log_outcome(job, &record, retry_in_ms);

    /* The dead letter is committed, so its message goes out now. */
    if (record.dead_letter != NULL) {
        nh_outbox_produce_dead_letter(w->producer, w->conf->dlq_topic,
                                      job->id, record.dead_letter);

    } else if (strcmp(record.status, "FAILED") == 0) {
        nh_log(NH_LOG_ERROR, "dead letter message not produced",
               "notification_id=%s tenant_id=%s error=\"out of memory\"",
               job->id, job->tenant_id);
    }

    nh_record_release(&record);
    nh_worker_finish(w, job);
}


/*
 * Decides what follows the job's failed attempt. Returns the delay before
 * the next attempt in milliseconds, or -1 for no retry: the outcome is
 * SENT, the failure is permanent, or this was attempt NH_MAX_ATTEMPTS. A
 * failure without a retry writes the dead letter's reason to reason, and
 * otherwise reason is "".
 */
static int64_t
nh_worker_retry_in_ms(nh_worker_t *w, nh_job_t *job, char *reason,
    size_t size)
{
    const nh_outcome_t  *o = &job->outcome;

    reason[0] = '\0';

    if (o->status == NH_OUTCOME_SENT) {
        return -1;
    }

    if (!o->transient) {
        snprintf(reason, size, "permanent failure on attempt %d: %s",
                 job->attempt, o->error);
        return -1;
    }

    if (job->attempt >= w->conf->max_attempts) {
        snprintf(reason, size, "retries exhausted after %d attempts: %s",
                 job->attempt, o->error);
        return -1;
    }

    return nh_backoff_delay_ms(job->attempt, w->conf->retry_base_ms,
                               w->conf->retry_max_ms, o->retry_after_ms,
                               nh_backoff_random, NULL);
}


/* Records a notification that the recipient's preferences hold back. */
static void
nh_worker_record_decision(nh_worker_t *w, nh_job_t *job)
{
    const char  *status;
    int          rc, stored;

    status = job->gate.action == NH_GATE_SKIP ? "SKIPPED" : "SCHEDULED";

    rc = nh_delivery_decide(w->db, job->id, status, job->gate.reason,
                            job->gate.until_sec, &stored);

    if (rc != NH_OK) {
        nh_log(rc == NH_EAGAIN ? NH_LOG_DEBUG : NH_LOG_ERROR,
               "outcome write postponed", "notification_id=%s tenant_id=%s "
               "status=%s retry_in_ms=%lld error=%s", job->id, job->tenant_id,
               status, (long long) job->backoff_ms,
               nh_log_quote(nh_db_error(w->db)));
        nh_worker_retry_later(job);
        return;
    }

    if (!stored) {
        nh_log(NH_LOG_WARN, "outcome not stored, notification no longer "
               "processing", "notification_id=%s tenant_id=%s status=%s",
               job->id, job->tenant_id, status);

    } else if (job->gate.action == NH_GATE_SKIP) {
        nh_log(NH_LOG_INFO, "notification skipped", "notification_id=%s "
               "tenant_id=%s reason=%s", job->id, job->tenant_id,
               nh_log_quote(job->gate.reason));

    } else {
        nh_log(NH_LOG_INFO, "notification deferred", "notification_id=%s "
               "tenant_id=%s until=%lld reason=%s", job->id, job->tenant_id,
               (long long) job->gate.until_sec,
               nh_log_quote(job->gate.reason));
    }

    nh_worker_finish(w, job);
}


/*
 * Records a job that no provider instance takes now, because their
 * circuits are open: RETRYING until the cool-down ends, without using up
 * an attempt.
 */
static void
nh_worker_record_deferral(nh_worker_t *w, nh_job_t *job)
{
    char  until[NH_RFC3339_LEN + 1];
    int   rc, stored;

    rc = nh_providers_defer(w->providers, job->id, &job->route, &stored);

    if (rc != NH_OK) {
        nh_log(rc == NH_EAGAIN ? NH_LOG_DEBUG : NH_LOG_ERROR,
               "outcome write postponed", "notification_id=%s tenant_id=%s "
               "status=RETRYING retry_in_ms=%lld error=%s", job->id,
               job->tenant_id, (long long) job->backoff_ms,
               nh_log_quote(nh_db_error(w->db)));
        nh_worker_retry_later(job);
        return;
    }

    nh_time_format_rfc3339(job->route.until_ms, until);

    if (!stored) {
        nh_log(NH_LOG_WARN, "outcome not stored, notification no longer "
               "processing", "notification_id=%s tenant_id=%s "
               "status=RETRYING", job->id, job->tenant_id);
    } else {
        nh_log(NH_LOG_INFO, "notification deferred, provider circuit open",
               "notification_id=%s tenant_id=%s next_attempt_at=%s "
               "reason=%s", job->id, job->tenant_id, until,
               nh_log_quote(job->route.error));
    }

    nh_worker_finish(w, job);
}


/* The adapter that sends the job: its route's, else the primary's. */
static const nh_provider_t *
nh_worker_job_provider(const nh_worker_t *w, const nh_job_t *job)
{
    return job->route.provider != NULL ? job->route.provider : w->provider;
}


/*
 * Records the outcomes of every target with nh_delivery_record_targets().
 * Returns its result, with NH_EAGAIN in place of NH_ENOMEM so that the
 * write is tried again later.
 */
static int
nh_worker_record_targets(nh_worker_t *w, nh_job_t *job, int64_t retry_in_ms,
    const char *reason, nh_record_t *record)
{
    nh_target_outcome_t  *list;
    size_t                i;
    int                   rc;

    list = calloc(job->n_targets, sizeof(nh_target_outcome_t));
    if (list == NULL) {
        return NH_EAGAIN;
    }

    for (i = 0; i < job->n_targets; i++) {
        list[i].target = job->targets[i].name;
        list[i].outcome = &job->targets[i].outcome;
    }

    rc = nh_delivery_record_targets(w->db, job->id,
                                    nh_worker_job_provider(w, job)->name, list,
                                    job->n_targets, retry_in_ms, reason,
                                    record);
    free(list);

    return rc == NH_ENOMEM ? NH_EAGAIN : rc;
}


/*
 * Removes from names the targets that failed permanently in an earlier
 * attempt of the job's notification, freeing them. Returns how many are
 * left, in their order.
 */
static size_t
nh_worker_drop_failed_targets(nh_job_t *job, char **names, size_t n)
{
    cJSON   *failed, *item;
    size_t   i, left;
    int      drop;

    if (job->lease.failed_targets == NULL) {
        return n;
    }

    failed = cJSON_Parse(job->lease.failed_targets);
    left = 0;

    for (i = 0; i < n; i++) {
        drop = 0;

        cJSON_ArrayForEach(item, failed) {
            if (cJSON_IsString(item)
                && strcmp(item->valuestring, names[i]) == 0)
            {
                drop = 1;
                break;
            }
        }

        if (drop) {
            nh_log(NH_LOG_DEBUG, "target left out, failed permanently "
                   "before", "notification_id=%s tenant_id=%s", job->id,
                   job->tenant_id);
            free(names[i]);
        } else {
            names[left++] = names[i];
        }
    }

    cJSON_Delete(failed);

    return left;
}


/* Sets the job's outcome from its targets' outcomes. */
static void
nh_worker_summarize(nh_job_t *job)
{
    size_t  i, last;

    last = job->n_targets - 1;

    for (i = 0; i < job->n_targets; i++) {
        if (job->targets[i].outcome.status == NH_OUTCOME_SENT) {
            job->outcome = job->targets[i].outcome;
            return;
        }

        /* A target that may succeed later makes the notification worth
         * retrying, even when another target failed for good. */
        if (job->targets[i].outcome.transient) {
            last = i;
        }
    }

    job->outcome = job->targets[last].outcome;
}


/* Logs each target's outcome and the devices deactivated. */
static void
nh_worker_log_targets(nh_job_t *job, int deactivated)
{
    const nh_outcome_t  *o;
    char                 label[NH_WORKER_TARGET_LOG_CHARS + 4];
    char                 http_status[24];
    size_t               i;

    for (i = 0; i < job->n_targets; i++) {
        o = &job->targets[i].outcome;

        if (o->http_status > 0) {
            snprintf(http_status, sizeof(http_status), "%ld",
                     o->http_status);
        } else {
            snprintf(http_status, sizeof(http_status), "null");
        }

        nh_log(o->status == NH_OUTCOME_SENT ? NH_LOG_INFO : NH_LOG_WARN,
               o->status == NH_OUTCOME_SENT ? "target sent"
                                            : "target failed",
               "notification_id=%s tenant_id=%s target=%s http_status=%s "
               "unregistered=%s error=%s", job->id, job->tenant_id,
               nh_worker_target_label(job->targets[i].name, label,
                                      sizeof(label)),
               http_status, o->unregistered ? "true" : "false",
               nh_log_quote(o->error[0] ? o->error : NULL));
    }

    if (deactivated > 0) {
        nh_log(NH_LOG_INFO, "devices deactivated", "notification_id=%s "
               "tenant_id=%s count=%d", job->id, job->tenant_id,
               deactivated);
    }
}


/*
 * Writes the first NH_WORKER_TARGET_LOG_CHARS characters of a target and
 * "...", because a device token is a delivery credential and is not
 * logged whole.
 */
static const char *
nh_worker_target_label(const char *name, char *buf, size_t size)
{
    if (name == NULL) {
        return "null";
    }

    if (strlen(name) <= NH_WORKER_TARGET_LOG_CHARS) {
        snprintf(buf, size, "%s", name);
    } else {
        snprintf(buf, size, "%.*s...", NH_WORKER_TARGET_LOG_CHARS, name);
    }

    return nh_log_quote(buf);
}


static void
nh_worker_log_outcome(nh_job_t *job, const nh_record_t *record,
    int64_t retry_in_ms)
{
    const nh_outcome_t  *o = &job->outcome;
    char                 http_status[24];

    if (o->http_status > 0) {
        snprintf(http_status, sizeof(http_status), "%ld", o->http_status);
    } else {
        snprintf(http_status, sizeof(http_status), "null");
    }

    if (!record->stored) {
        nh_log(NH_LOG_WARN, "outcome not stored, notification no longer "
               "processing", "notification_id=%s tenant_id=%s status=%s",
               job->id, job->tenant_id,
               o->status == NH_OUTCOME_SENT ? "SENT" : "FAILED");
        return;
    }

    if (o->status == NH_OUTCOME_SENT) {
        nh_log(NH_LOG_INFO, "notification sent", "notification_id=%s "
               "tenant_id=%s provider_message_id=%s http_status=%s "
               "attempt=%d duration_ms=%lld", job->id, job->tenant_id,
               nh_log_quote(o->provider_message_id[0]
                            ? o->provider_message_id : NULL),
               http_status, job->attempt, (long long) o->duration_ms);
        return;
    }

    if (strcmp(record->status, "RETRYING") == 0) {
        nh_log(NH_LOG_WARN, "notification failed, retrying",
               "notification_id=%s tenant_id=%s http_status=%s attempt=%d "
               "retry_in_ms=%lld retry_after_ms=%lld duration_ms=%lld "
               "error=%s", job->id, job->tenant_id, http_status,
               job->attempt, (long long) retry_in_ms,
               (long long) o->retry_after_ms, (long long) o->duration_ms,
               nh_log_quote(o->error));
        return;
    }

    nh_log(NH_LOG_WARN, "notification failed, dead-lettered",
           "notification_id=%s tenant_id=%s http_status=%s transient=%s "
           "attempt=%d duration_ms=%lld error=%s", job->id, job->tenant_id,
           http_status, o->transient ? "true" : "false", job->attempt,
           (long long) o->duration_ms, nh_log_quote(o->error));
}


/*
 * Gives the job one target without a request, with a FAILED outcome, so
 * that the failure is recorded like a provider's. A probe claim of the
 * job's route is given back, because no request tested the provider.
 */
static void
nh_worker_fail_job(nh_job_t *job, int transient, const char *error)
{
    nh_providers_release(&job->route);

    memset(&job->single, 0, sizeof(nh_worker_target_t));
    job->single.job = job;
    job->targets = &job->single;
    job->n_targets = 1;
    job->sending = 0;

    nh_worker_fail_target(&job->single, transient, error);
}


/*
 * Sets a FAILED outcome with no HTTP exchange. error NULL keeps the text
 * already in the outcome.
 */
static void
nh_worker_fail_target(nh_worker_target_t *target, int transient,
    const char *error)
{
    nh_outcome_t  *o = &target->outcome;

    o->status = NH_OUTCOME_FAILED;
    o->transient = transient;
    o->http_status = 0;
    o->provider_message_id[0] = '\0';
    o->duration_ms = 0;
    o->unregistered = 0;
    o->resend = 0;
    o->retry_after_ms = 0;

    if (error != NULL) {
        snprintf(o->error, sizeof(o->error), "%s", error);
    }
}


static void
nh_worker_retry_later(nh_job_t *job)
{
    job->retry_at_ms = nh_time_monotonic_ms() + job->backoff_ms;

    job->backoff_ms *= 2;
    if (job->backoff_ms > NH_WORKER_RETRY_MAX_MS) {
        job->backoff_ms = NH_WORKER_RETRY_MAX_MS;
    }
}


/* Marks the job's offset done and frees the job. */
static void
nh_worker_finish(nh_worker_t *w, nh_job_t *job)
{
    nh_worker_mark_done(w, job->partition, job->generation, job->offset);
    nh_worker_free_job(w, job);
}


static void
nh_worker_mark_done(nh_worker_t *w, int32_t partition, uint64_t generation,
    int64_t offset)
{
    int64_t  commit;

    if (nh_offsets_finish(w->offsets, partition, generation, offset, &commit)
        != NH_OK)
    {
        nh_log(NH_LOG_DEBUG, "offset of a revoked partition not stored",
               "partition=%d offset=%lld", (int) partition,
               (long long) offset);
        return;
    }

    if (commit >= 0) {
        nh_worker_store_offset(w, partition, commit);
    }
}


/* Stores offset, the next one to consume, for the background commit. */
static void
nh_worker_store_offset(nh_worker_t *w, int32_t partition, int64_t offset)
{
    rd_kafka_topic_partition_list_t  *list;
    rd_kafka_topic_partition_t       *entry;
    rd_kafka_resp_err_t               err;

    list = rd_kafka_topic_partition_list_new(1);
    entry = rd_kafka_topic_partition_list_add(list, w->conf->topic,
                                              partition);
    entry->offset = offset;

    err = rd_kafka_offsets_store(w->consumer, list);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        err = entry->err;
    }

    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        nh_log(NH_LOG_WARN, "kafka offset store failed", "partition=%d "
               "offset=%lld error=%s", (int) partition, (long long) offset,
               nh_log_quote(rd_kafka_err2str(err)));
    } else {
        nh_log(NH_LOG_DEBUG, "kafka offset stored", "partition=%d "
               "offset=%lld", (int) partition, (long long) offset);
    }

    rd_kafka_topic_partition_list_destroy(list);
}


static void
nh_worker_unlink(nh_worker_t *w, nh_job_t *job)
{
    if (job->prev != NULL) {
        job->prev->next = job->next;
    } else {
        w->head = job->next;
    }

    if (job->next != NULL) {
        job->next->prev = job->prev;
    } else {
        w->tail = job->prev;
    }

    w->jobs--;
}


/* Frees a job, aborting its requests that are in flight. */
static void
nh_worker_free_job(nh_worker_t *w, nh_job_t *job)
{
    size_t  i;

    nh_worker_unlink(w, job);

    if (job->active) {
        w->active--;
    }

    for (i = 0; i < job->n_targets; i++) {
        nh_http_request_free(job->targets[i].req);
        free(job->targets[i].name);
    }

    if (job->targets != &job->single) {
        free(job->targets);
    }

    nh_lease_release(&job->lease);
    free(job);
}


/*
 * Applies an assignment change. The messages of a revoked partition that
 * are still in flight here go on: their outcomes are still written to
 * PostgreSQL, but their offsets are no longer stored (the generation
 * check in nh_offsets_finish() drops them). The partition's next owner
 * consumes them again from the last committed offset. Its lease returns no
 * row for a notification that was recorded here or is still PROCESSING
 * under this worker's lease, so it does not send it twice. If this worker
 * dies before recording, the expired lease makes the notification
 * RETRYING again.
 */
static void
nh_worker_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
    rd_kafka_topic_partition_list_t *partitions, void *opaque)
{
    nh_worker_t          *w = opaque;
    rd_kafka_error_t     *error;
    rd_kafka_resp_err_t   assign_err;
    uint64_t              generation;
    char                  list[512];
    size_t                len;
    int                   i, n, cooperative;

    cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE")
                  == 0;

    list[0] = '\0';
    len = 0;
    for (i = 0; i < partitions->cnt && len < sizeof(list); i++) {
        n = snprintf(list + len, sizeof(list) - len, "%s%d", i ? "," : "",
                     (int) partitions->elems[i].partition);
        if (n < 0) {
            break;
        }

        len += (size_t) n;
    }

    error = NULL;
    assign_err = RD_KAFKA_RESP_ERR_NO_ERROR;

    switch (err) {

    case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
        nh_log(NH_LOG_INFO, "partitions assigned", "topic=%s partitions=%s",
               nh_log_quote(w->conf->topic), list[0] ? list : "none");

        for (i = 0; i < partitions->cnt; i++) {
            if (nh_offsets_assign(w->offsets,
                                  partitions->elems[i].partition,
                                  &generation) != NH_OK)
            {
                nh_log(NH_LOG_ERROR, "offset tracking failed",
                       "error=\"out of memory\"");
                w->failed = 1;
            }
        }

        if (cooperative) {
            error = rd_kafka_incremental_assign(rk, partitions);
        } else {
            assign_err = rd_kafka_assign(rk, partitions);
        }

        /* New partitions start unpaused while partitions kept from an
         * incremental assignment may still be paused. Resuming all of them
         * makes the state uniform; the next loop turn pauses them again
         * when the worker is full. While stopping, the partitions stay
         * as they are, because no message is taken any more. */
        if (w->paused && !nh_worker_stop) {
            nh_worker_set_paused(w, 0);
        }

        break;

    case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
        nh_log(NH_LOG_INFO, "partitions revoked", "topic=%s partitions=%s",
               nh_log_quote(w->conf->topic), list[0] ? list : "none");

        for (i = 0; i < partitions->cnt; i++) {
            nh_offsets_revoke(w->offsets, partitions->elems[i].partition);
        }

        if (cooperative) {
            error = rd_kafka_incremental_unassign(rk, partitions);
        } else {
            assign_err = rd_kafka_assign(rk, NULL);
        }

        break;

    default:
        nh_log(NH_LOG_ERROR, "kafka rebalance failed", "error=%s",
               nh_log_quote(rd_kafka_err2str(err)));

        nh_offsets_revoke_all(w->offsets);
        assign_err = rd_kafka_assign(rk, NULL);
        break;
    }

    if (error != NULL) {
        nh_log(NH_LOG_ERROR, "kafka assignment change failed", "error=%s",
               nh_log_quote(rd_kafka_error_string(error)));
        rd_kafka_error_destroy(error);
    }

    if (assign_err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        nh_log(NH_LOG_ERROR, "kafka assignment change failed", "error=%s",
               nh_log_quote(rd_kafka_err2str(assign_err)));
    }
}


/*
 * Creates the channel's topic and then the dead-letter topic, each with
 * NH_KAFKA_PARTITIONS partitions, unless that already succeeded, and waits
 * up to wait_ms for the result of the pending request. A failure is
 * retried every NH_WORKER_TOPIC_RETRY_MS.
 */
static void
nh_worker_ensure_topic(nh_worker_t *w, int wait_ms)
{
    nh_worker_topic_t  *topic;
    rd_kafka_event_t   *ev;
    int64_t             now;
    size_t              i;

    topic = NULL;
    for (i = 0; i < sizeof(w->topics) / sizeof(w->topics[0]); i++) {
        if (!w->topics[i].ready) {
            topic = &w->topics[i];
            break;
        }
    }

    if (topic == NULL) {
        return;
    }

    now = nh_time_monotonic_ms();

    if (!topic->pending) {
        if (now < topic->retry_at_ms) {
            return;
        }

        if (nh_kafka_create_topic(w->producer, topic->name,
                                  (int) w->conf->partitions,
                                  NH_WORKER_TOPIC_TIMEOUT_MS,
                                  w->admin_queue)
            != NH_OK)
        {
            topic->retry_at_ms = now + NH_WORKER_TOPIC_RETRY_MS;
            return;
        }

        topic->pending = 1;
    }

    ev = rd_kafka_queue_poll(w->admin_queue, wait_ms);
    if (ev == NULL) {
        return;
    }

    topic->pending = 0;

    if (nh_kafka_create_topic_result(ev, topic->name) == NH_OK) {
        topic->ready = 1;
    } else {
        topic->retry_at_ms = nh_time_monotonic_ms()
                             + NH_WORKER_TOPIC_RETRY_MS;
    }

    rd_kafka_event_destroy(ev);
}


/*
 * Returns whether an assigned partition has messages beyond the
 * consumer's position. It reads the high watermarks of the last fetch
 * responses, so it sends no request to the broker.
 */
static int
nh_worker_lagging(nh_worker_t *w)
{
    rd_kafka_topic_partition_list_t  *list;
    rd_kafka_topic_partition_t       *p;
    int64_t                           low, high;
    int                               i, lagging;

    list = NULL;
    if (rd_kafka_assignment(w->consumer, &list) != RD_KAFKA_RESP_ERR_NO_ERROR)
    {
        return 0;
    }

    lagging = 0;

    if (rd_kafka_position(w->consumer, list) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        for (i = 0; i < list->cnt && !lagging; i++) {
            p = &list->elems[i];

            if (p->offset >= 0
                && rd_kafka_get_watermark_offsets(w->consumer, p->topic,
                                                  p->partition, &low, &high)
                   == RD_KAFKA_RESP_ERR_NO_ERROR
                && high > p->offset)
            {
                lagging = 1;
            }
        }
    }

    rd_kafka_topic_partition_list_destroy(list);

    return lagging;
}


/*
 * Runs the sweep when its interval has passed: scheduled releases, the
 * retry scheduler, the outbox sweeper and the idempotency-key expiry.
 */
static void
nh_worker_sweep(nh_worker_t *w)
{
    char     reason[512];
    int64_t  now;
    int      produced, deleted;

    now = nh_time_monotonic_ms();
    if (now < w->next_sweep_ms) {
        return;
    }

    w->next_sweep_ms = now + w->conf->sweep_interval_ms;

    if (rd_kafka_fatal_error(w->producer, reason, sizeof(reason))
        != RD_KAFKA_RESP_ERR_NO_ERROR)
    {
        nh_log(NH_LOG_ERROR, "kafka producer failed fatally", "error=%s",
               nh_log_quote(reason));
        w->failed = 1;
        return;
    }

    if (!nh_db_ready(w->db)) {
        return;
    }

    if (nh_outbox_release_scheduled(w->db, w->producer, w->conf->topic,
                                    w->conf->channel, NH_WORKER_SWEEP_LIMIT,
                                    &produced)
        != NH_OK)
    {
        return;
    }

    if (produced > 0) {
        nh_log(NH_LOG_INFO, "scheduled notifications queued",
               "topic=%s queued=%d", nh_log_quote(w->conf->topic), produced);
    }

    nh_worker_schedule_retries(w);

    /*
     * While the worker's partitions hold messages that it has not
     * consumed yet, a PENDING notification that waits that long is most
     * likely one of them. Producing it again would only add a duplicate
     * message per notification to the backlog, so the outbox waits until
     * the worker has caught up.
     */
    if (nh_worker_lagging(w)) {
        nh_log(NH_LOG_DEBUG, "outbox sweep skipped, consumer lagging",
               "topic=%s jobs=%zu", nh_log_quote(w->conf->topic), w->jobs);

    } else {
        if (nh_outbox_sweep(w->db, w->producer, w->conf->topic,
                            w->conf->channel, w->conf->sweep_after_seconds,
                            NH_WORKER_SWEEP_LIMIT, &produced)
            != NH_OK)
        {
            return;
        }

        nh_log(produced > 0 ? NH_LOG_INFO : NH_LOG_DEBUG, "outbox swept",
               "topic=%s republished=%d", nh_log_quote(w->conf->topic),
               produced);
    }

    if (nh_outbox_expire_idempotency(w->db, NH_WORKER_SWEEP_LIMIT, &deleted)
        == NH_OK && deleted > 0)
    {
        nh_log(NH_LOG_INFO, "expired idempotency keys deleted", "count=%d",
               deleted);
    }
}


/*
 * Runs the channel's retry scheduler. Due retries are produced again
 * after NH_SWEEP_AFTER_SECONDS (at least one second) unless their lease
 * took them, which is the outbox sweeper's wait for a lost message too.
 */
static void
nh_worker_schedule_retries(nh_worker_t *w)
{
    long  republish;
    int   produced, dead_lettered;

    republish = w->conf->sweep_after_seconds > 0
                ? w->conf->sweep_after_seconds : 1;

    if (nh_outbox_schedule_retries(w->db, w->producer, w->conf->topic,
                                   w->conf->dlq_topic, w->conf->channel,
                                   republish, w->conf->max_attempts,
                                   NH_WORKER_SWEEP_LIMIT, &produced,
                                   &dead_lettered)
        != NH_OK)
    {
        return;
    }

    if (produced > 0 || dead_lettered > 0) {
        nh_log(NH_LOG_INFO, "retries scheduled", "topic=%s queued=%d "
               "dead_lettered=%d", nh_log_quote(w->conf->topic), produced,
               dead_lettered);
    }
}


/*
 * Commits the stored offsets and waits for the broker's response, at most
 * NH_WORKER_COMMIT_TIMEOUT_MS so that an unreachable Kafka cannot hold
 * the shutdown.
 */
static void
nh_worker_commit(nh_worker_t *w)
{
    rd_kafka_queue_t     *queue;
    rd_kafka_event_t     *ev;
    rd_kafka_resp_err_t   err;

    queue = rd_kafka_queue_new(w->consumer);
    if (queue == NULL) {
        return;
    }

    err = rd_kafka_commit_queue(w->consumer, NULL, queue, NULL, NULL);

    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        ev = rd_kafka_queue_poll(queue, NH_WORKER_COMMIT_TIMEOUT_MS);

        if (ev == NULL) {
            err = RD_KAFKA_RESP_ERR__TIMED_OUT;
        } else {
            err = rd_kafka_event_error(ev);
            rd_kafka_event_destroy(ev);
        }
    }

    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        nh_log(NH_LOG_INFO, "kafka offsets committed", NULL);
    } else if (err == RD_KAFKA_RESP_ERR__NO_OFFSET) {
        nh_log(NH_LOG_INFO, "kafka offsets committed", "detail=%s",
               nh_log_quote("no new offsets to commit"));
    } else {
        nh_log(NH_LOG_WARN, "kafka offset commit failed", "error=%s",
               nh_log_quote(rd_kafka_err2str(err)));
    }

    rd_kafka_queue_destroy(queue);
}
