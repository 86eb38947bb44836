#include "nh_kafka.h"

#include "nh_error.h"
#include "nh_log.h"
#include "nh_time.h"

#include <stdio.h>
#include <string.h>


/* Identical client errors within this interval are counted, not logged. */
#define NH_KAFKA_ERROR_REPEAT_MS  10000


typedef struct {
    const char  *name;
    const char  *value;
} nh_kafka_setting_t;


static rd_kafka_conf_t *nh_kafka_conf(const nh_kafka_setting_t *settings,
    size_t n);
static void nh_kafka_log(const rd_kafka_t *rk, int level, const char *fac,
    const char *buf);
static void nh_kafka_error(rd_kafka_t *rk, int err, const char *reason,
    void *opaque);


int
nh_kafka_consumer_create(const char *brokers, const char *group,
    const char *client_id, nh_kafka_rebalance_pt rebalance, void *opaque,
    rd_kafka_t **out)
{
    rd_kafka_conf_t           *conf;
    rd_kafka_t                *rk;
    rd_kafka_resp_err_t        err;
    char                       errstr[512];
    const nh_kafka_setting_t   settings[] = {
        { "bootstrap.servers", brokers },
        { "group.id", group },
        { "client.id", client_id },
        { "enable.auto.offset.store", "false" },
        { "enable.auto.commit", "true" },
        { "auto.offset.reset", "earliest" },
        /* A subscribed topic that did not exist yet is found this soon
         * after it is created. */
        { "topic.metadata.refresh.interval.ms", "10000" },
    };

    conf = nh_kafka_conf(settings, sizeof(settings) / sizeof(settings[0]));
    if (conf == NULL) {
        return NH_ERROR;
    }

    rd_kafka_conf_set_rebalance_cb(conf, rebalance);
    rd_kafka_conf_set_opaque(conf, opaque);

    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        nh_log(NH_LOG_ERROR, "kafka consumer creation failed", "error=%s",
               nh_log_quote(errstr));
        rd_kafka_conf_destroy(conf);
        return NH_ERROR;
    }

    err = rd_kafka_poll_set_consumer(rk);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        nh_log(NH_LOG_ERROR, "kafka consumer queue setup failed", "error=%s",
               nh_log_quote(rd_kafka_err2str(err)));
        rd_kafka_destroy(rk);
        return NH_ERROR;
    }

    *out = rk;
    return NH_OK;
}


int
nh_kafka_producer_create(const char *brokers, const char *client_id,
    nh_kafka_delivered_pt delivered, void *opaque, rd_kafka_t **out)
{
    rd_kafka_conf_t           *conf;
    rd_kafka_t                *rk;
    char                       errstr[512];
    const nh_kafka_setting_t   settings[] = {
        { "bootstrap.servers", brokers },
        { "client.id", client_id },
        { "enable.idempotence", "true" },
        { "linger.ms", "5" },
        /* A message not delivered by then is reported failed; its
         * notification is still PENDING, so a later sweep sends it. */
        { "message.timeout.ms", "30000" },
    };

    conf = nh_kafka_conf(settings, sizeof(settings) / sizeof(settings[0]));
    if (conf == NULL) {
        return NH_ERROR;
    }

    rd_kafka_conf_set_dr_msg_cb(conf, delivered);
    rd_kafka_conf_set_opaque(conf, opaque);

    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        nh_log(NH_LOG_ERROR, "kafka producer creation failed", "error=%s",
               nh_log_quote(errstr));
        rd_kafka_conf_destroy(conf);
        return NH_ERROR;
    }

    *out = rk;
    return NH_OK;
}


int
nh_kafka_create_topic(rd_kafka_t *rk, const char *topic, int partitions,
    int timeout_ms, rd_kafka_queue_t *queue)
{
    rd_kafka_NewTopic_t      *new_topic;
    rd_kafka_AdminOptions_t  *options;
    char                      errstr[512];
    int                       rc;

    rc = NH_ERROR;
    options = NULL;

    /* A replication factor of -1 takes the broker's default. */
    new_topic = rd_kafka_NewTopic_new(topic, partitions, -1, errstr,
                                      sizeof(errstr));
    if (new_topic == NULL) {
        nh_log(NH_LOG_ERROR, "kafka topic creation failed", "topic=%s "
               "error=%s", nh_log_quote(topic), nh_log_quote(errstr));
        return NH_ERROR;
    }

    options = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    if (options == NULL) {
        nh_log(NH_LOG_ERROR, "kafka topic creation failed", "topic=%s "
               "error=\"cannot allocate admin options\"",
               nh_log_quote(topic));
        goto failed;
    }

    if (rd_kafka_AdminOptions_set_request_timeout(options, timeout_ms,
                                                  errstr, sizeof(errstr))
        != RD_KAFKA_RESP_ERR_NO_ERROR)
    {
        nh_log(NH_LOG_ERROR, "kafka topic creation failed", "topic=%s "
               "error=%s", nh_log_quote(topic), nh_log_quote(errstr));
        goto failed;
    }

    rd_kafka_CreateTopics(rk, &new_topic, 1, options, queue);
    rc = NH_OK;

failed:

    rd_kafka_AdminOptions_destroy(options);
    rd_kafka_NewTopic_destroy(new_topic);
    return rc;
}


int
nh_kafka_create_topic_result(rd_kafka_event_t *ev, const char *topic)
{
    const rd_kafka_CreateTopics_result_t  *result;
    const rd_kafka_topic_result_t        **topics;
    rd_kafka_resp_err_t                    err;
    const char                            *message;
    size_t                                 n;

    if (rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        nh_log(NH_LOG_WARN, "kafka topic creation failed", "topic=%s "
               "error=%s", nh_log_quote(topic),
               nh_log_quote(rd_kafka_event_error_string(ev)));
        return NH_ERROR;
    }

    result = rd_kafka_event_CreateTopics_result(ev);
    if (result == NULL) {
        nh_log(NH_LOG_WARN, "kafka topic creation failed", "topic=%s "
               "error=\"unexpected admin result event\"",
               nh_log_quote(topic));
        return NH_ERROR;
    }

    topics = rd_kafka_CreateTopics_result_topics(result, &n);
    err = n == 1 ? rd_kafka_topic_result_error(topics[0])
                 : RD_KAFKA_RESP_ERR__FAIL;

    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        nh_log(NH_LOG_INFO, "kafka topic created", "topic=%s",
               nh_log_quote(topic));
        return NH_OK;
    }

    if (err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
        nh_log(NH_LOG_DEBUG, "kafka topic exists", "topic=%s",
               nh_log_quote(topic));
        return NH_OK;
    }

    message = n == 1 ? rd_kafka_topic_result_error_string(topics[0]) : NULL;
    nh_log(NH_LOG_WARN, "kafka topic creation failed", "topic=%s error=%s",
           nh_log_quote(topic),
           nh_log_quote(message != NULL ? message : rd_kafka_err2str(err)));

    return NH_ERROR;
}


/* Builds a configuration with the shared callbacks and the settings. */
static rd_kafka_conf_t *
nh_kafka_conf(const nh_kafka_setting_t *settings, size_t n)
{
    rd_kafka_conf_t  *conf;
    char              errstr[512];
    size_t            i;

    conf = rd_kafka_conf_new();
    if (conf == NULL) {
        nh_log(NH_LOG_ERROR, "kafka configuration failed",
               "error=\"out of memory\"");
        return NULL;
    }

    for (i = 0; i < n; i++) {
        if (rd_kafka_conf_set(conf, settings[i].name, settings[i].value,
                              errstr, sizeof(errstr))
            != RD_KAFKA_CONF_OK)
        {
            nh_log(NH_LOG_ERROR, "kafka configuration failed",
                   "setting=%s error=%s", settings[i].name,
                   nh_log_quote(errstr));
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
    }

    rd_kafka_conf_set_log_cb(conf, nh_kafka_log);
    rd_kafka_conf_set_error_cb(conf, nh_kafka_error);

    return conf;
}


/*
 * Writes librdkafka's own log lines. Its syslog levels 0-2 become errors;
 * 3 (LOG_ERR) becomes a warning, because librdkafka recovers from those
 * conditions itself (a broker connection refused, for example).
 */
static void
nh_kafka_log(const rd_kafka_t *rk, int level, const char *fac,
    const char *buf)
{
    nh_log_level_e  ours;

    if (level <= 2) {
        ours = NH_LOG_ERROR;
    } else if (level <= 4) {
        ours = NH_LOG_WARN;
    } else if (level <= 6) {
        ours = NH_LOG_INFO;
    } else {
        ours = NH_LOG_DEBUG;
    }

    nh_log(ours, "librdkafka", "client=%s facility=%s text=%s",
           nh_log_quote(rd_kafka_name(rk)), nh_log_quote(fac),
           nh_log_quote(buf));
}


/*
 * Logs client-level errors (all brokers down, authentication), which
 * librdkafka retries on its own. Called from rd_kafka_poll() and
 * rd_kafka_consumer_poll() on the main thread.
 */
static void
nh_kafka_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    static int       last_err;
    static int64_t   last_ms;
    static unsigned  suppressed;
    int64_t          now;

    (void) opaque;

    now = nh_time_monotonic_ms();

    if (err == last_err && now - last_ms < NH_KAFKA_ERROR_REPEAT_MS) {
        suppressed++;
        return;
    }

    nh_log(err == RD_KAFKA_RESP_ERR__FATAL ? NH_LOG_ERROR : NH_LOG_WARN,
           "kafka client error", "client=%s error=%s reason=%s "
           "suppressed=%u", nh_log_quote(rd_kafka_name(rk)),
           nh_log_quote(rd_kafka_err2name((rd_kafka_resp_err_t) err)),
           nh_log_quote(reason), suppressed);

    last_err = err;
    last_ms = now;
    suppressed = 0;
}
