#include "nh_worker.h"

#include "nh_db.h"
#include "nh_error.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>


typedef struct {
    const char  *key;
    long         def;
    long         min;
    long         max;
    size_t       offset;
} nh_worker_long_t;


static const nh_worker_long_t  nh_worker_longs[] = {
    { "NH_KAFKA_PARTITIONS", 3, 1, 10000,
      offsetof(nh_worker_conf_t, partitions) },
    { "NH_MAX_IN_FLIGHT", 64, 1, 10000,
      offsetof(nh_worker_conf_t, max_in_flight) },
    { "NH_HTTP_CONNECT_TIMEOUT_MS", 2000, 1, 600000,
      offsetof(nh_worker_conf_t, http_connect_timeout_ms) },
    { "NH_HTTP_TIMEOUT_MS", 10000, 1, 3600000,
      offsetof(nh_worker_conf_t, http_timeout_ms) },
    { "NH_LEASE_SECONDS", 60, 1, 86400,
      offsetof(nh_worker_conf_t, lease_seconds) },
    { "NH_SWEEP_INTERVAL_MS", 2000, 10, 86400000,
      offsetof(nh_worker_conf_t, sweep_interval_ms) },
    { "NH_SWEEP_AFTER_SECONDS", 10, 0, 86400,
      offsetof(nh_worker_conf_t, sweep_after_seconds) },
    { "NH_MAX_ATTEMPTS", 5, 1, 1000,
      offsetof(nh_worker_conf_t, max_attempts) },
    { "NH_RETRY_BASE_MS", 1000, 1, 86400000,
      offsetof(nh_worker_conf_t, retry_base_ms) },
    { "NH_RETRY_MAX_MS", 300000, 1, 86400000,
      offsetof(nh_worker_conf_t, retry_max_ms) },
};


static int nh_worker_topic_is_valid(const char *topic);


int
nh_worker_conf_load(const nh_config_t *cfg, const char *name,
    const char *channel, nh_worker_conf_t *out, char *err, size_t errlen)
{
    const nh_worker_long_t  *setting;
    char                     message[256];
    size_t                   i, len;
    int                      n;

    memset(out, 0, sizeof(nh_worker_conf_t));
    out->name = name;
    out->channel = channel;

    out->pg_dsn = nh_config_get(cfg, "NH_PG_DSN",
        "host=127.0.0.1 port=54320 dbname=notifyhub user=notifyhub");
    out->brokers = nh_config_get(cfg, "NH_KAFKA_BROKERS", "127.0.0.1:9492");
    out->topic_prefix = nh_config_get(cfg, "NH_KAFKA_TOPIC_PREFIX",
                                      "notifyhub.");
    out->group = nh_config_get(cfg, "NH_KAFKA_GROUP", name);
    out->log_level_name = nh_config_get(cfg, "NH_LOG_LEVEL", "info");

    for (i = 0; i < sizeof(nh_worker_longs) / sizeof(nh_worker_longs[0]);
         i++)
    {
        setting = &nh_worker_longs[i];

        if (nh_config_get_long(cfg, setting->key, setting->def, setting->min,
                               setting->max,
                               (long *) ((char *) out + setting->offset),
                               err, errlen)
            != 0)
        {
            return NH_ERROR;
        }
    }

    if (nh_db_check_dsn(out->pg_dsn, message, sizeof(message)) != NH_OK) {
        snprintf(err, errlen, "NH_PG_DSN is invalid: %s", message);
        return NH_ERROR;
    }

    if (out->brokers[0] == '\0') {
        snprintf(err, errlen, "NH_KAFKA_BROKERS is empty: expected "
                 "host:port[,host:port...]");
        return NH_ERROR;
    }

    if (out->group[0] == '\0') {
        snprintf(err, errlen, "NH_KAFKA_GROUP is empty");
        return NH_ERROR;
    }

    n = snprintf(out->topic, sizeof(out->topic), "%s%s", out->topic_prefix,
                 channel);
    if (n < 0 || (size_t) n >= sizeof(out->topic)) {
        snprintf(err, errlen, "NH_KAFKA_TOPIC_PREFIX \"%s\" is too long: "
                 "topic names have at most %d characters",
                 out->topic_prefix, NH_WORKER_TOPIC_MAX);
        return NH_ERROR;
    }

    len = strlen(out->topic_prefix);
    for (i = len; out->topic[i] != '\0'; i++) {
        out->topic[i] = (char) tolower((unsigned char) out->topic[i]);
    }

    if (!nh_worker_topic_is_valid(out->topic)) {
        snprintf(err, errlen, "NH_KAFKA_TOPIC_PREFIX \"%s\" is invalid: "
                 "topic names use only letters, digits, '.', '_' and '-'",
                 out->topic_prefix);
        return NH_ERROR;
    }

    n = snprintf(out->dlq_topic, sizeof(out->dlq_topic), "%sdlq",
                 out->topic_prefix);
    if (n < 0 || (size_t) n >= sizeof(out->dlq_topic)) {
        snprintf(err, errlen, "NH_KAFKA_TOPIC_PREFIX \"%s\" is too long: "
                 "topic names have at most %d characters",
                 out->topic_prefix, NH_WORKER_TOPIC_MAX);
        return NH_ERROR;
    }

    if (out->retry_base_ms > out->retry_max_ms) {
        snprintf(err, errlen, "NH_RETRY_BASE_MS (%ld) is greater than "
                 "NH_RETRY_MAX_MS (%ld)", out->retry_base_ms,
                 out->retry_max_ms);
        return NH_ERROR;
    }

    if (nh_log_level_parse(out->log_level_name, &out->log_level) != 0) {
        snprintf(err, errlen, "NH_LOG_LEVEL \"%s\" is invalid: expected "
                 "debug, info, warn or error", out->log_level_name);
        return NH_ERROR;
    }

    return NH_OK;
}


static int
nh_worker_topic_is_valid(const char *topic)
{
    const char  *p;

    if (strcmp(topic, ".") == 0 || strcmp(topic, "..") == 0) {
        return 0;
    }

    for (p = topic; *p != '\0'; p++) {
        if (!(isalnum((unsigned char) *p) || *p == '.' || *p == '_'
              || *p == '-'))
        {
            return 0;
        }
    }

    return 1;
}
