#include <stdint.h>
#include <string.h>
#include <time.h>

#include <check.h>

#include "../../common/nh_time.h"
#include "check_suites.h"


#define ARRAY_LEN(a)  (sizeof(a) / sizeof((a)[0]))


/* Each Unix time was computed independently with Python's datetime. */
static const struct {
    int64_t      unix_ms;
    const char  *text;
} instants[] = {
    { 1796411705123LL, "2026-12-04T19:15:05.123Z" },
    { 0, "1970-01-01T00:00:00.000Z" },
    { -1, "1969-12-31T23:59:59.999Z" },
    { 1709208000000LL, "2024-02-29T12:00:00.000Z" },
    { 951782400000LL, "2000-02-29T00:00:00.000Z" },
    { -2203891200000LL, "1900-03-01T00:00:00.000Z" },
    { 253402300799999LL, "9999-12-31T23:59:59.999Z" },
    { -62167219200000LL, "0000-01-01T00:00:00.000Z" },
};


START_TEST(format_writes_fixed_instants)
{
    char    text[NH_RFC3339_LEN + 1];
    size_t  i;

    for (i = 0; i < ARRAY_LEN(instants); i++) {
        memset(text, 'x', sizeof(text));
        ck_assert_uint_eq(nh_time_format_rfc3339(instants[i].unix_ms, text),
                          NH_RFC3339_LEN);
        ck_assert_str_eq(text, instants[i].text);
    }
}
END_TEST


START_TEST(format_clamps_to_years_0000_to_9999)
{
    char  text[NH_RFC3339_LEN + 1];

    nh_time_format_rfc3339(INT64_MAX, text);
    ck_assert_str_eq(text, "9999-12-31T23:59:59.999Z");

    nh_time_format_rfc3339(253402300800000LL, text);
    ck_assert_str_eq(text, "9999-12-31T23:59:59.999Z");

    nh_time_format_rfc3339(INT64_MIN, text);
    ck_assert_str_eq(text, "0000-01-01T00:00:00.000Z");
}
END_TEST


START_TEST(parse_reads_fixed_instants)
{
    int64_t  unix_ms;
    size_t   i;

    for (i = 0; i < ARRAY_LEN(instants); i++) {
        unix_ms = 42;
        ck_assert_int_eq(nh_time_parse_rfc3339(instants[i].text,
                                               strlen(instants[i].text),
                                               &unix_ms), 0);
        ck_assert_int_eq(unix_ms, instants[i].unix_ms);
    }
}
END_TEST


START_TEST(parse_round_trips_format)
{
    /* 1900-01-01 and the span from there to 2100-01-01. */
    const int64_t  first = -2208988800000LL;
    const int64_t  span = 6311433600000LL;
    char           text[NH_RFC3339_LEN + 1];
    int64_t        unix_ms, parsed;
    int64_t        i;

    /* A step that is not a whole number of seconds spreads the instants. */
    for (i = 0; i < 5000; i++) {
        unix_ms = first + (i * 1262304000037LL) % span;

        nh_time_format_rfc3339(unix_ms, text);
        ck_assert_int_eq(nh_time_parse_rfc3339(text, NH_RFC3339_LEN, &parsed),
                         0);
        ck_assert_int_eq(parsed, unix_ms);
    }
}
END_TEST


START_TEST(parse_reads_fractions)
{
    static const struct {
        const char  *text;
        int64_t      unix_ms;
    } cases[] = {
        { "2026-12-04T19:15:05Z", 1796411705000LL },
        { "2026-12-04T19:15:05.1Z", 1796411705100LL },
        { "2026-12-04T19:15:05.12Z", 1796411705120LL },
        { "2026-12-04T19:15:05.123Z", 1796411705123LL },
        { "2026-12-04T19:15:05.1239Z", 1796411705123LL },
        { "2026-12-04T19:15:05.123999999Z", 1796411705123LL },
        { "2026-12-04T19:15:05.000000001Z", 1796411705000LL },
    };
    int64_t  unix_ms;
    size_t   i;

    for (i = 0; i < ARRAY_LEN(cases); i++) {
        ck_assert_msg(nh_time_parse_rfc3339(cases[i].text,
                                            strlen(cases[i].text), &unix_ms)
                          == 0, "rejected \"%s\"", cases[i].text);
        ck_assert_int_eq(unix_ms, cases[i].unix_ms);
    }
}
END_TEST


START_TEST(parse_applies_offsets)
{
    static const char  *texts[] = {
        "2026-12-04T19:15:05.123+00:00",
        "2026-12-04T19:15:05.123-00:00",
        "2026-12-04T20:15:05.123+01:00",
        "2026-12-05T00:45:05.123+05:30",
        "2026-12-04T14:15:05.123-05:00",
        "2026-12-04T08:15:05.123-11:00",
        "2026-12-05T18:14:05.123+22:59",
        "2026-12-03T19:16:05.123-23:59",
    };
    int64_t             unix_ms;
    size_t              i;

    for (i = 0; i < ARRAY_LEN(texts); i++) {
        ck_assert_msg(nh_time_parse_rfc3339(texts[i], strlen(texts[i]),
                                            &unix_ms) == 0,
                      "rejected \"%s\"", texts[i]);
        ck_assert_int_eq(unix_ms, 1796411705123LL);
    }
}
END_TEST


START_TEST(parse_accepts_lower_case_t_and_z)
{
    int64_t  unix_ms;

    ck_assert_int_eq(nh_time_parse_rfc3339("2026-12-04t19:15:05.123z", 24,
                                           &unix_ms), 0);
    ck_assert_int_eq(unix_ms, 1796411705123LL);
}
END_TEST


START_TEST(parse_accepts_leap_days)
{
    static const char  *texts[] = {
        "2024-02-29T00:00:00Z",
        "2000-02-29T23:59:59Z",
        "1600-02-29T00:00:00Z",
        "2028-02-29T12:00:00Z",
    };
    int64_t             unix_ms;
    size_t              i;

    for (i = 0; i < ARRAY_LEN(texts); i++) {
        ck_assert_msg(nh_time_parse_rfc3339(texts[i], strlen(texts[i]),
                                            &unix_ms) == 0,
                      "rejected \"%s\"", texts[i]);
    }
}
END_TEST


START_TEST(parse_rejects_invalid_dates)
{
    static const char  *texts[] = {
        "2026-02-29T00:00:00Z",
        "2024-02-30T00:00:00Z",
        "1900-02-29T00:00:00Z",
        "2100-02-29T00:00:00Z",
        "2026-13-01T00:00:00Z",
        "2026-00-01T00:00:00Z",
        "2026-01-00T00:00:00Z",
        "2026-01-32T00:00:00Z",
        "2026-04-31T00:00:00Z",
        "2026-06-31T00:00:00Z",
        "2026-09-31T00:00:00Z",
        "2026-11-31T00:00:00Z",
    };
    int64_t             unix_ms;
    size_t              i;

    for (i = 0; i < ARRAY_LEN(texts); i++) {
        ck_assert_msg(nh_time_parse_rfc3339(texts[i], strlen(texts[i]),
                                            &unix_ms) == -1,
                      "accepted \"%s\"", texts[i]);
    }
}
END_TEST


START_TEST(parse_rejects_invalid_times)
{
    static const char  *texts[] = {
        "2026-12-04T24:00:00Z",
        "2026-12-04T19:60:00Z",
        "2026-12-04T23:59:60Z",
        "2026-12-04T19:15:61Z",
        "2026-12-04T19:15:05+24:00",
        "2026-12-04T19:15:05+01:60",
        "2026-12-04T19:15:05+0100",
        "2026-12-04T19:15:05+01",
        "2026-12-04T19:15:05+1:00",
        "2026-12-04T19:15:05 +01:00",
    };
    int64_t             unix_ms;
    size_t              i;

    for (i = 0; i < ARRAY_LEN(texts); i++) {
        ck_assert_msg(nh_time_parse_rfc3339(texts[i], strlen(texts[i]),
                                            &unix_ms) == -1,
                      "accepted \"%s\"", texts[i]);
    }
}
END_TEST


START_TEST(parse_rejects_malformed_text)
{
    static const char  *texts[] = {
        "",
        "2026-12-04",
        "2026-12-04T19:15:05",
        "2026-12-04T19:15:05.123",
        "2026-12-04 19:15:05Z",
        "2026-12-04T19:15Z",
        "2026-12-4T19:15:05Z",
        "26-12-04T19:15:05Z",
        "+2026-12-04T19:15:05Z",
        "20261204T191505Z",
        "2026/12/04T19:15:05Z",
        "2026-12-04T19.15.05Z",
        "2026-12-04T19:15:05.Z",
        "2026-12-04T19:15:05,123Z",
        "2026-12-04T19:15:05.1234567890Z",
        "2026-12-04T19:15:05.12aZ",
        "2026-12-04T19:15:05ZZ",
        "2026-12-04T19:15:05Z ",
        " 2026-12-04T19:15:05Z",
        "2026-12-04T19:15:05UTC",
        "2026-12-04T19:15:05GMT",
        "2O26-12-04T19:15:05Z",
        "2026-12-04T19:15:05.123Z\n",
    };
    int64_t             unix_ms;
    size_t              i;

    for (i = 0; i < ARRAY_LEN(texts); i++) {
        ck_assert_msg(nh_time_parse_rfc3339(texts[i], strlen(texts[i]),
                                            &unix_ms) == -1,
                      "accepted \"%s\"", texts[i]);
    }

    ck_assert_int_eq(nh_time_parse_rfc3339(NULL, 0, &unix_ms), -1);
}
END_TEST


START_TEST(parse_reads_exactly_len_bytes)
{
    int64_t  unix_ms;

    ck_assert_int_eq(nh_time_parse_rfc3339("2026-12-04T19:15:05Zjunk", 20,
                                           &unix_ms), 0);
    ck_assert_int_eq(unix_ms, 1796411705000LL);

    ck_assert_int_eq(nh_time_parse_rfc3339("2026-12-04T19:15:05.123Z", 23,
                                           &unix_ms), -1);
    ck_assert_int_eq(nh_time_parse_rfc3339("2026-12-04T19:15:05.123Z", 19,
                                           &unix_ms), -1);
}
END_TEST


START_TEST(now_ms_follows_wall_clock)
{
    int64_t  before, now, after;

    before = (int64_t) time(NULL) * 1000;
    now = nh_time_now_ms();
    after = (int64_t) time(NULL) * 1000 + 1000;

    ck_assert_int_ge(now, before);
    ck_assert_int_lt(now, after);
}
END_TEST


START_TEST(monotonic_ms_does_not_decrease)
{
    int64_t  previous, current;
    int      i;

    previous = nh_time_monotonic_ms();

    for (i = 0; i < 100000; i++) {
        current = nh_time_monotonic_ms();
        ck_assert_int_ge(current, previous);
        previous = current;
    }
}
END_TEST


Suite *
nh_time_suite(void)
{
    Suite  *suite;
    TCase  *tc;

    suite = suite_create("time");

    tc = tcase_create("format");
    tcase_add_test(tc, format_writes_fixed_instants);
    tcase_add_test(tc, format_clamps_to_years_0000_to_9999);
    suite_add_tcase(suite, tc);

    tc = tcase_create("parse");
    tcase_add_test(tc, parse_reads_fixed_instants);
    tcase_add_test(tc, parse_round_trips_format);
    tcase_add_test(tc, parse_reads_fractions);
    tcase_add_test(tc, parse_applies_offsets);
    tcase_add_test(tc, parse_accepts_lower_case_t_and_z);
    tcase_add_test(tc, parse_accepts_leap_days);
    tcase_add_test(tc, parse_rejects_invalid_dates);
    tcase_add_test(tc, parse_rejects_invalid_times);
    tcase_add_test(tc, parse_rejects_malformed_text);
    tcase_add_test(tc, parse_reads_exactly_len_bytes);
    suite_add_tcase(suite, tc);

    tc = tcase_create("clock");
    tcase_add_test(tc, now_ms_follows_wall_clock);
    tcase_add_test(tc, monotonic_ms_does_not_decrease);
    suite_add_tcase(suite, tc);

    return suite;
}
