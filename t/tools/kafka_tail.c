/*
 * kafka-tail: prints the messages of one Kafka topic, from the beginning,
 * as "key<TAB>value" lines, until no message arrived for the given idle
 * time. For tests that check what NotifyHub produced.
 *
 *   kafka-tail BROKERS TOPIC [IDLE_MS]
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>


int
main(int argc, char **argv)
{
    rd_kafka_t                       *rk;
    rd_kafka_conf_t                  *conf;
    rd_kafka_topic_partition_list_t  *topics;
    rd_kafka_message_t               *msg;
    char                              errstr[512], group[64];
    long                              idle_ms, idle;

    if (argc < 3) {
        fprintf(stderr, "usage: kafka-tail BROKERS TOPIC [IDLE_MS]\n");
        return 2;
    }

    idle_ms = argc > 3 ? atol(argv[3]) : 3000;

    /* A new group each run, so the topic is read from its beginning. */
    snprintf(group, sizeof(group), "kafka-tail-%ld-%d", (long) time(NULL),
             (int) getpid());

    conf = rd_kafka_conf_new();

    if (rd_kafka_conf_set(conf, "bootstrap.servers", argv[1], errstr,
                          sizeof(errstr)) != RD_KAFKA_CONF_OK
        || rd_kafka_conf_set(conf, "group.id", group, errstr, sizeof(errstr))
           != RD_KAFKA_CONF_OK
        || rd_kafka_conf_set(conf, "auto.offset.reset", "earliest", errstr,
                             sizeof(errstr)) != RD_KAFKA_CONF_OK
        || rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr,
                             sizeof(errstr)) != RD_KAFKA_CONF_OK)
    {
        fprintf(stderr, "kafka-tail: %s\n", errstr);
        return 1;
    }

    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        fprintf(stderr, "kafka-tail: %s\n", errstr);
        return 1;
    }

    rd_kafka_poll_set_consumer(rk);

    topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, argv[2], RD_KAFKA_PARTITION_UA);
    rd_kafka_subscribe(rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);

    idle = 0;

    /* The first messages wait for the group to form, so allow 15 s. */
    while (idle < idle_ms + 15000) {
        msg = rd_kafka_consumer_poll(rk, 100);

        if (msg == NULL) {
            idle += 100;
            continue;
        }

        if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            printf("%.*s\t%.*s\n", (int) msg->key_len,
                   msg->key ? (const char *) msg->key : "",
                   (int) msg->len, (const char *) msg->payload);
            fflush(stdout);
            idle = 15000;
        }

        rd_kafka_message_destroy(msg);
    }

    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);

    return 0;
}
