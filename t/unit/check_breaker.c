#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "../../common/nh_breaker.h"
#include "check_suites.h"


#define ARRAY_LEN(a)  (sizeof(a) / sizeof((a)[0]))

/* An arbitrary Unix time in milliseconds, so that 0 is never "now". */
#define T0  1700000000000LL


static const char  *breaker_variables[] = {
    "NH_CONFIG_FILE",
    "NH_BREAKER_WINDOW_SECONDS",
    "NH_BREAKER_MIN_REQUESTS",
    "NH_BREAKER_FAILURE_PERCENT",
    "NH_BREAKER_COOLDOWN_SECONDS",
    "NH_BREAKER_PROBES",
};


static void
clear_variables(void)
{
    size_t  i;

    for (i = 0; i < ARRAY_LEN(breaker_variables); i++) {
        unsetenv(breaker_variables[i]);
    }
}


/* The defaults: a 30 s window, 20 requests, 50 %, 30 s, one probe. */
static nh_breaker_conf_t
default_conf(void)
{
    nh_breaker_conf_t  conf;

    conf.window_ms = 30000;
    conf.min_requests = 20;
    conf.failure_percent = 50;
    conf.cooldown_ms = 30000;
    conf.probes = 1;
    conf.probe_timeout_ms = 15000;

    return conf;
}


static nh_breaker_counts_t
counts_of(int64_t requests, int64_t failures)
{
    nh_breaker_counts_t  c;

    memset(&c, 0, sizeof(c));
    c.requests = requests;
    c.failures = failures;

    return c;
}


static nh_breaker_counts_t
probe_result(int64_t round, int64_t successes, int64_t failures)
{
    nh_breaker_counts_t  c;

    memset(&c, 0, sizeof(c));
    c.probe_round = round;
    c.probe_successes = successes;
    c.probe_failures = failures;

    return c;
}


/* Drives b from CLOSED to OPEN at now_ms with 20 failed requests. */
static void
trip(const nh_breaker_conf_t *conf, nh_breaker_t *b, int64_t now_ms)
{
    nh_breaker_counts_t  c = counts_of(20, 20);
    nh_breaker_event_t   ev;

    nh_breaker_update(conf, b, &c, now_ms, &ev);
    ck_assert_int_eq(ev.transition, NH_BREAKER_OPENED);
}


START_TEST(conf_defaults)
{
    nh_breaker_conf_t  conf;
    char               err[256];

    clear_variables();

    ck_assert_int_eq(nh_breaker_conf_load(NULL, 10000, &conf, err,
                                          sizeof(err)), 0);
    ck_assert_int_eq(conf.window_ms, 30000);
    ck_assert_int_eq(conf.min_requests, 20);
    ck_assert_int_eq(conf.failure_percent, 50);
    ck_assert_int_eq(conf.cooldown_ms, 30000);
    ck_assert_int_eq(conf.probes, 1);
    ck_assert_int_eq(conf.probe_timeout_ms, 15000);
}
END_TEST


START_TEST(conf_reads_environment)
{
    nh_breaker_conf_t  conf;
    char               err[256];

    clear_variables();
    setenv("NH_BREAKER_WINDOW_SECONDS", "5", 1);
    setenv("NH_BREAKER_MIN_REQUESTS", "10", 1);
    setenv("NH_BREAKER_FAILURE_PERCENT", "100", 1);
    setenv("NH_BREAKER_COOLDOWN_SECONDS", "3", 1);
    setenv("NH_BREAKER_PROBES", "2", 1);

    ck_assert_int_eq(nh_breaker_conf_load(NULL, 1000, &conf, err,
                                          sizeof(err)), 0);
    ck_assert_int_eq(conf.window_ms, 5000);
    ck_assert_int_eq(conf.min_requests, 10);
    ck_assert_int_eq(conf.failure_percent, 100);
    ck_assert_int_eq(conf.cooldown_ms, 3000);
    ck_assert_int_eq(conf.probes, 2);

    clear_variables();
}
END_TEST


START_TEST(conf_rejects_out_of_range)
{
    static const char  *bad[][2] = {
        { "NH_BREAKER_WINDOW_SECONDS", "-1" },
        { "NH_BREAKER_WINDOW_SECONDS", "0" },
        { "NH_BREAKER_MIN_REQUESTS", "0" },
        { "NH_BREAKER_FAILURE_PERCENT", "101" },
        { "NH_BREAKER_FAILURE_PERCENT", "0" },
        { "NH_BREAKER_COOLDOWN_SECONDS", "-5" },
        { "NH_BREAKER_PROBES", "0" },
        { "NH_BREAKER_PROBES", "one" },
    };
    nh_breaker_conf_t   conf;
    char                err[256];
    size_t              i;

    for (i = 0; i < ARRAY_LEN(bad); i++) {
        clear_variables();
        setenv(bad[i][0], bad[i][1], 1);
        err[0] = '\0';

        ck_assert_msg(nh_breaker_conf_load(NULL, 1000, &conf, err,
                                           sizeof(err)) == -1,
                      "accepted %s=%s", bad[i][0], bad[i][1]);
        ck_assert_msg(strstr(err, bad[i][0]) != NULL,
                      "message \"%s\" does not name %s", err, bad[i][0]);
    }

    clear_variables();
}
END_TEST


START_TEST(closed_below_min_requests)
{
    nh_breaker_conf_t    conf = default_conf();
    nh_breaker_t         b;
    nh_breaker_counts_t  c = counts_of(19, 19);
    nh_breaker_event_t   ev;

    nh_breaker_init(&b);
    nh_breaker_update(&conf, &b, &c, T0, &ev);

    ck_assert_int_eq(ev.transition, NH_BREAKER_UNCHANGED);
    ck_assert_int_eq(b.state, NH_BREAKER_CLOSED);
    ck_assert_int_eq(b.requests, 19);
    ck_assert_int_eq(b.failures, 19);
    ck_assert_int_eq(b.window_start_ms, T0);
}
END_TEST


START_TEST(opens_at_failure_percent)
{
    nh_breaker_conf_t    conf = default_conf();
    nh_breaker_t         b;
    nh_breaker_counts_t  first = counts_of(12, 4);
    nh_breaker_counts_t  second = counts_of(8, 6);
    nh_breaker_event_t   ev;

    nh_breaker_init(&b);
    nh_breaker_update(&conf, &b, &first, T0, &ev);
    ck_assert_int_eq(ev.transition, NH_BREAKER_UNCHANGED);

    /* 20 requests and 10 failures: exactly 50 %. */
    nh_breaker_update(&conf, &b, &second, T0 + 1000, &ev);

    ck_assert_int_eq(ev.transition, NH_BREAKER_OPENED);
    ck_assert_int_eq(ev.requests, 20);
    ck_assert_int_eq(ev.failures, 10);
    ck_assert_int_eq(ev.open_until_ms, T0 + 1000 + 30000);
    ck_assert_int_eq(b.state, NH_BREAKER_OPEN);
    ck_assert_int_eq(b.requests, 0);
}
END_TEST


START_TEST(stays_closed_below_percent)
{
    nh_breaker_conf_t    conf = default_conf();
    nh_breaker_t         b;
    nh_breaker_counts_t  c = counts_of(100, 49);
    nh_breaker_event_t   ev;

    nh_breaker_init(&b);
    nh_breaker_update(&conf, &b, &c, T0, &ev);

    ck_assert_int_eq(ev.transition, NH_BREAKER_UNCHANGED);
    ck_assert_int_eq(b.state, NH_BREAKER_CLOSED);
}
END_TEST


START_TEST(requests_without_failures_keep_closed)
{
    nh_breaker_conf_t    conf = default_conf();
    nh_breaker_t         b;
    nh_breaker_counts_t  c = counts_of(1000, 0);
    nh_breaker_event_t   ev;

    /* Permanent rejections (4xx) are counted as requests only. */
    nh_breaker_init(&b);
    nh_breaker_update(&conf, &b, &c, T0, &ev);

    ck_assert_int_eq(ev.transition, NH_BREAKER_UNCHANGED);
    ck_assert_int_eq(b.requests, 1000);
    ck_assert_int_eq(b.failures, 0);
}
END_TEST


START_TEST(window_end_resets_counts)
{
    nh_breaker_conf_t    conf = default_conf();
    nh_breaker_t         b;
    nh_breaker_counts_t  c = counts_of(15, 15);
    nh_breaker_event_t   ev;

    nh_breaker_init(&b);
    nh_breaker_update(&conf, &b, &c, T0, &ev);

    /* The second 15 come after the window of the first ended. */
    nh_breaker_update(&conf, &b, &c, T0 + 30000, &ev);

    ck_assert_int_eq(ev.transition, NH_BREAKER_UNCHANGED);
    ck_assert_int_eq(b.requests, 15);
    ck_assert_int_eq(b.window_start_ms, T0 + 30000);

    nh_breaker_update(&conf, &b, NULL, T0 + 60000, &ev);

    ck_assert_int_eq(b.requests, 0);
    ck_assert_int_eq(b.window_start_ms, 0);
}
END_TEST


START_TEST(failures_above_requests_are_capped)
{
    nh_breaker_conf_t    conf = default_conf();
    nh_breaker_t         b;
    nh_breaker_counts_t  c = counts_of(5, 50);
    nh_breaker_event_t   ev;

    nh_breaker_init(&b);
    nh_breaker_update(&conf, &b, &c, T0, &ev);

    ck_assert_int_eq(b.failures, 5);
    ck_assert_int_eq(b.state, NH_BREAKER_CLOSED);
}
END_TEST


START_TEST(open_ignores_counts)
{
    nh_breaker_conf_t    conf = default_conf();
    nh_breaker_t         b;
    nh_breaker_counts_t  c = counts_of(50, 50);
    nh_breaker_event_t   ev;

    nh_breaker_init(&b);
    trip(&conf, &b, T0);

    nh_breaker_update(&conf, &b, &c, T0 + 1000, &ev);

    ck_assert_int_eq(ev.transition, NH_BREAKER_UNCHANGED);
    ck_assert_int_eq(b.state, NH_BREAKER_OPEN);
    ck_assert_int_eq(b.requests, 0);
    ck_assert_int_eq(b.open_until_ms, T0 + 30000);
}
END_TEST


START_TEST(half_open_after_cooldown)
{
    nh_breaker_conf_t   conf = default_conf();
    nh_breaker_t        b;
    nh_breaker_event_t  ev;

    nh_breaker_init(&b);
    trip(&conf, &b, T0);

    nh_breaker_update(&conf, &b, NULL, T0 + 29999, &ev);
    ck_assert_int_eq(ev.transition, NH_BREAKER_UNCHANGED);
    ck_assert_int_eq(b.state, NH_BREAKER_OPEN);

    nh_breaker_update(&conf, &b, NULL, T0 + 30000, &ev);
    ck_assert_int_eq(ev.transition, NH_BREAKER_HALF_OPENED);
    ck_assert_int_eq(b.state, NH_BREAKER_HALF_OPEN);
    ck_assert_int_eq(b.probe_round, 1);
    ck_assert_int_eq(b.probes, 0);
}
END_TEST


START_TEST(claim_limited_to_probes)
{
    nh_breaker_conf_t   conf = default_conf();
    nh_breaker_t        b;
    nh_breaker_event_t  ev;

    nh_breaker_init(&b);
    ck_assert_int_eq(nh_breaker_claim_probe(&conf, &b, T0), 0);

    trip(&conf, &b, T0);
    ck_assert_int_eq(nh_breaker_claim_probe(&conf, &b, T0 + 1000), 0);

    nh_breaker_update(&conf, &b, NULL, T0 + 30000, &ev);

    ck_assert_int_eq(nh_breaker_claim_probe(&conf, &b, T0 + 30000), 1);
    ck_assert_int_eq(nh_breaker_claim_probe(&conf, &b, T0 + 30001), 0);
    ck_assert_int_eq(b.probes, 1);

    conf.probes = 2;
    ck_assert_int_eq(nh_breaker_claim_probe(&conf, &b, T0 + 30002), 1);
    ck_assert_int_eq(b.probes, 2);
}
END_TEST


START_TEST(claim_expires_after_timeout)
{
    nh_breaker_conf_t   conf = default_conf();
    nh_breaker_t        b;
    nh_breaker_event_t  ev;

    nh_breaker_init(&b);
    trip(&conf, &b, T0);
    nh_breaker_update(&conf, &b, NULL, T0 + 30000, &ev);

    ck_assert_int_eq(nh_breaker_claim_probe(&conf, &b, T0 + 30000), 1);
    ck_assert_int_eq(nh_breaker_claim_probe(&conf, &b, T0 + 44999), 0);
    ck_assert_int_eq(nh_breaker_claim_probe(&conf, &b, T0 + 45000), 1);
    ck_assert_int_eq(b.probes, 1);
}
END_TEST


START_TEST(probe_success_closes)
{
    nh_breaker_conf_t    conf = default_conf();
    nh_breaker_t         b;
    nh_breaker_counts_t  c;
    nh_breaker_event_t   ev;

    nh_breaker_init(&b);
    trip(&conf, &b, T0);
    nh_breaker_update(&conf, &b, NULL, T0 + 30000, &ev);
    ck_assert_int_eq(nh_breaker_claim_probe(&conf, &b, T0 + 30000), 1);

    c = probe_result(b.probe_round, 1, 0);
    nh_breaker_update(&conf, &b, &c, T0 + 30500, &ev);

    ck_assert_int_eq(ev.transition, NH_BREAKER_RECOVERED);
    ck_assert_int_eq(b.state, NH_BREAKER_CLOSED);
    ck_assert_int_eq(b.probes, 0);
    ck_assert_int_eq(b.requests, 0);
}
END_TEST


START_TEST(probe_failure_reopens)
{
    nh_breaker_conf_t    conf = default_conf();
    nh_breaker_t         b;
    nh_breaker_counts_t  c;
    nh_breaker_event_t   ev;

    nh_breaker_init(&b);
    trip(&conf, &b, T0);
    nh_breaker_update(&conf, &b, NULL, T0 + 30000, &ev);
    ck_assert_int_eq(nh_breaker_claim_probe(&conf, &b, T0 + 30000), 1);

    /* A failure wins over a success of the same round. */
    c = probe_result(b.probe_round, 1, 1);
    nh_breaker_update(&conf, &b, &c, T0 + 31000, &ev);

    ck_assert_int_eq(ev.transition, NH_BREAKER_REOPENED);
    ck_assert_int_eq(ev.failures, 1);
    ck_assert_int_eq(b.state, NH_BREAKER_OPEN);
    ck_assert_int_eq(b.open_until_ms, T0 + 31000 + 30000);
}
END_TEST


START_TEST(stale_probe_round_ignored)
{
    nh_breaker_conf_t    conf = default_conf();
    nh_breaker_t         b;
    nh_breaker_counts_t  c;
    nh_breaker_event_t   ev;

    nh_breaker_init(&b);
    trip(&conf, &b, T0);
    nh_breaker_update(&conf, &b, NULL, T0 + 30000, &ev);
    ck_assert_int_eq(nh_breaker_claim_probe(&conf, &b, T0 + 30000), 1);

    c = probe_result(b.probe_round - 1, 1, 0);
    nh_breaker_update(&conf, &b, &c, T0 + 30500, &ev);

    ck_assert_int_eq(ev.transition, NH_BREAKER_UNCHANGED);
    ck_assert_int_eq(b.state, NH_BREAKER_HALF_OPEN);
    ck_assert_int_eq(b.probes, 1);
}
END_TEST


START_TEST(probe_release_frees_claim)
{
    nh_breaker_conf_t    conf = default_conf();
    nh_breaker_t         b;
    nh_breaker_counts_t  c;
    nh_breaker_event_t   ev;

    nh_breaker_init(&b);
    trip(&conf, &b, T0);
    nh_breaker_update(&conf, &b, NULL, T0 + 30000, &ev);
    ck_assert_int_eq(nh_breaker_claim_probe(&conf, &b, T0 + 30000), 1);

    memset(&c, 0, sizeof(c));
    c.probe_round = b.probe_round;
    c.probe_releases = 1;
    nh_breaker_update(&conf, &b, &c, T0 + 30100, &ev);

    ck_assert_int_eq(ev.transition, NH_BREAKER_UNCHANGED);
    ck_assert_int_eq(b.state, NH_BREAKER_HALF_OPEN);
    ck_assert_int_eq(b.probes, 0);
    ck_assert_int_eq(nh_breaker_claim_probe(&conf, &b, T0 + 30200), 1);
}
END_TEST


START_TEST(state_names_round_trip)
{
    nh_breaker_state_e  states[] = {
        NH_BREAKER_CLOSED, NH_BREAKER_OPEN, NH_BREAKER_HALF_OPEN
    };
    nh_breaker_state_e  parsed;
    size_t              i;

    for (i = 0; i < ARRAY_LEN(states); i++) {
        ck_assert_int_eq(nh_breaker_state_parse(
                             nh_breaker_state_name(states[i]), &parsed), 0);
        ck_assert_int_eq(parsed, states[i]);
    }

    ck_assert_int_eq(nh_breaker_state_parse("open", &parsed), -1);
    ck_assert_int_eq(nh_breaker_state_parse("", &parsed), -1);
}
END_TEST


Suite *
nh_breaker_suite(void)
{
    Suite  *s;
    TCase  *tc;

    s = suite_create("breaker");

    tc = tcase_create("conf");
    tcase_add_test(tc, conf_defaults);
    tcase_add_test(tc, conf_reads_environment);
    tcase_add_test(tc, conf_rejects_out_of_range);
    suite_add_tcase(s, tc);

    tc = tcase_create("closed");
    tcase_add_test(tc, closed_below_min_requests);
    tcase_add_test(tc, opens_at_failure_percent);
    tcase_add_test(tc, stays_closed_below_percent);
    tcase_add_test(tc, requests_without_failures_keep_closed);
    tcase_add_test(tc, window_end_resets_counts);
    tcase_add_test(tc, failures_above_requests_are_capped);
    suite_add_tcase(s, tc);

    tc = tcase_create("open");
    tcase_add_test(tc, open_ignores_counts);
    tcase_add_test(tc, half_open_after_cooldown);
    suite_add_tcase(s, tc);

    tc = tcase_create("half_open");
    tcase_add_test(tc, claim_limited_to_probes);
    tcase_add_test(tc, claim_expires_after_timeout);
    tcase_add_test(tc, probe_success_closes);
    tcase_add_test(tc, probe_failure_reopens);
    tcase_add_test(tc, stale_probe_round_ignored);
    tcase_add_test(tc, probe_release_frees_claim);
    tcase_add_test(tc, state_names_round_trip);
    suite_add_tcase(s, tc);

    return s;
}
