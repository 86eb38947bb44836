#include <stdint.h>

#include <check.h>

#include "../../common/nh_backoff.h"
#include "check_suites.h"


/* A random source that returns the value ctx points to. */
static uint64_t
fixed_random(void *ctx)
{
    return *(uint64_t *) ctx;
}


START_TEST(cap_doubles_per_attempt)
{
    ck_assert_int_eq(nh_backoff_cap_ms(1, 1000, 300000), 1000);
    ck_assert_int_eq(nh_backoff_cap_ms(2, 1000, 300000), 2000);
    ck_assert_int_eq(nh_backoff_cap_ms(3, 1000, 300000), 4000);
    ck_assert_int_eq(nh_backoff_cap_ms(9, 1000, 300000), 256000);
}
END_TEST


START_TEST(cap_stops_at_maximum)
{
    ck_assert_int_eq(nh_backoff_cap_ms(10, 1000, 300000), 300000);
    ck_assert_int_eq(nh_backoff_cap_ms(64, 1000, 300000), 300000);
    ck_assert_int_eq(nh_backoff_cap_ms(1000000, 1000, 300000), 300000);
    ck_assert_int_eq(nh_backoff_cap_ms(80, INT64_MAX / 2, INT64_MAX),
                     INT64_MAX);
    ck_assert_int_eq(nh_backoff_cap_ms(1, 5000, 300), 300);
}
END_TEST


START_TEST(cap_clamps_bad_arguments)
{
    ck_assert_int_eq(nh_backoff_cap_ms(0, 1000, 300000), 1000);
    ck_assert_int_eq(nh_backoff_cap_ms(-5, 1000, 300000), 1000);
    ck_assert_int_eq(nh_backoff_cap_ms(3, -1, 300000), 0);
    ck_assert_int_eq(nh_backoff_cap_ms(3, 1000, -1), 0);
}
END_TEST


START_TEST(delay_is_random_up_to_cap)
{
    uint64_t  r;

    r = 0;
    ck_assert_int_eq(nh_backoff_delay_ms(3, 1000, 300000, 0, fixed_random,
                                         &r), 0);

    /* The range [0, 4000] has 4001 values. */
    r = 4000;
    ck_assert_int_eq(nh_backoff_delay_ms(3, 1000, 300000, 0, fixed_random,
                                         &r), 4000);
    r = 4001;
    ck_assert_int_eq(nh_backoff_delay_ms(3, 1000, 300000, 0, fixed_random,
                                         &r), 0);
    r = 12345;
    ck_assert_int_eq(nh_backoff_delay_ms(3, 1000, 300000, 0, fixed_random,
                                         &r), 12345 % 4001);
    r = UINT64_MAX;
    ck_assert_int_le(nh_backoff_delay_ms(20, 1000, 300000, 0, fixed_random,
                                         &r), 300000);
}
END_TEST


START_TEST(delay_honours_retry_after)
{
    uint64_t  r;

    r = 100;
    ck_assert_int_eq(nh_backoff_delay_ms(1, 1000, 300000, 1000,
                                         fixed_random, &r), 1000);

    /* Retry-After is a lower bound even above the backoff maximum. */
    ck_assert_int_eq(nh_backoff_delay_ms(1, 1000, 300000, 600000,
                                         fixed_random, &r), 600000);

    r = 900;
    ck_assert_int_eq(nh_backoff_delay_ms(1, 1000, 300000, 500,
                                         fixed_random, &r), 900);
}
END_TEST


START_TEST(delay_with_real_random_stays_in_range)
{
    int64_t  delay;
    int      i;

    for (i = 0; i < 1000; i++) {
        delay = nh_backoff_delay_ms(4, 100, 300000, 0, nh_backoff_random,
                                    NULL);
        ck_assert_int_ge(delay, 0);
        ck_assert_int_le(delay, 800);
    }
}
END_TEST


START_TEST(retry_after_parses_seconds)
{
    int64_t  delay;

    ck_assert_int_eq(nh_backoff_parse_retry_after("1", 0, &delay), 0);
    ck_assert_int_eq(delay, 1000);
    ck_assert_int_eq(nh_backoff_parse_retry_after(" 120\t", 0, &delay), 0);
    ck_assert_int_eq(delay, 120000);
    ck_assert_int_eq(nh_backoff_parse_retry_after("0", 0, &delay), 0);
    ck_assert_int_eq(delay, 0);
}
END_TEST


START_TEST(retry_after_clamps_large_seconds)
{
    int64_t  delay;

    ck_assert_int_eq(nh_backoff_parse_retry_after("999999999999999999999",
                                                  0, &delay), 0);
    ck_assert_int_eq(delay, NH_BACKOFF_RETRY_AFTER_MAX_MS);
}
END_TEST


START_TEST(retry_after_parses_http_date)
{
    int64_t  delay, now;

    /* 1994-11-06T08:49:37Z is Unix time 784111777. */
    now = 784111777000LL - 30000;
    ck_assert_int_eq(nh_backoff_parse_retry_after(
                         "Sun, 06 Nov 1994 08:49:37 GMT", now, &delay), 0);
    ck_assert_int_eq(delay, 30000);

    /* A date in the past means now. */
    ck_assert_int_eq(nh_backoff_parse_retry_after(
                         "Sun, 06 Nov 1994 08:49:37 GMT", 784111777000LL
                         + 5000, &delay), 0);
    ck_assert_int_eq(delay, 0);

    /* 2024-02-29T00:00:00Z is Unix time 1709164800. */
    ck_assert_int_eq(nh_backoff_parse_retry_after(
                         "Thu, 29 Feb 2024 00:00:00 GMT", 1709164800000LL
                         - 1000, &delay), 0);
    ck_assert_int_eq(delay, 1000);
}
END_TEST


START_TEST(retry_after_rejects_invalid_values)
{
    static const char  *bad[] = {
        "", "  ", "-1", "1.5", "10s", "abc",
        "Sun, 06 Nov 1994 08:49:37 UTC",
        "Sun, 06 Nov 1994 08:49:37",
        "Sunday, 06-Nov-94 08:49:37 GMT",
        "Sun Nov  6 08:49:37 1994",
        "Sun, 31 Nov 1994 08:49:37 GMT",
        "Sun, 29 Feb 2023 08:49:37 GMT",
        "Sun, 06 Nov 1994 24:00:00 GMT",
        "Xyz, 06 Nov 1994 08:49:37 GMT",
        "Sun, 06 Abc 1994 08:49:37 GMT",
    };
    int64_t             delay;
    size_t              i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_msg(nh_backoff_parse_retry_after(bad[i], 0, &delay) == -1,
                      "accepted \"%s\"", bad[i]);
    }

    ck_assert_int_eq(nh_backoff_parse_retry_after(NULL, 0, &delay), -1);
}
END_TEST


Suite *
nh_backoff_suite(void)
{
    Suite  *s;
    TCase  *tc;

    s = suite_create("backoff");

    tc = tcase_create("cap");
    tcase_add_test(tc, cap_doubles_per_attempt);
    tcase_add_test(tc, cap_stops_at_maximum);
    tcase_add_test(tc, cap_clamps_bad_arguments);
    suite_add_tcase(s, tc);

    tc = tcase_create("delay");
    tcase_add_test(tc, delay_is_random_up_to_cap);
    tcase_add_test(tc, delay_honours_retry_after);
    tcase_add_test(tc, delay_with_real_random_stays_in_range);
    suite_add_tcase(s, tc);

    tc = tcase_create("retry_after");
    tcase_add_test(tc, retry_after_parses_seconds);
    tcase_add_test(tc, retry_after_clamps_large_seconds);
    tcase_add_test(tc, retry_after_parses_http_date);
    tcase_add_test(tc, retry_after_rejects_invalid_values);
    suite_add_tcase(s, tc);

    return s;
}
