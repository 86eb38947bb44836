#include <stdint.h>
#include <string.h>

#include <check.h>

#include "../../common/nh_quiet.h"
#include "check_suites.h"


#define ARRAY_LEN(a)  (sizeof(a) / sizeof((a)[0]))

#define HOUR    3600
#define MINUTE  60

/* Transition instants from "zdump -v" of tzdata 2025b. */
#define NEW_YORK_SPRING_2026    1772953200LL   /* 03-08 07:00Z, to EDT */
#define NEW_YORK_FALL_2026      1793512800LL   /* 11-01 06:00Z, to EST */
#define BERLIN_SPRING_2026      1774746000LL   /* 03-29 01:00Z, to CEST */
#define BERLIN_FALL_2026        1792890000LL   /* 10-25 01:00Z, to CET */
#define LORD_HOWE_APRIL_2026    1775314800LL   /* 04-04 15:00Z, to +1030 */
#define LORD_HOWE_OCTOBER_2026  1791041400LL   /* 10-03 15:30Z, to +11 */
#define NEW_YORK_SPRING_2100    4108690800LL   /* 03-14 07:00Z, to EDT */

#define JANUARY_15_2026_NOON    1768478400LL   /* 2026-01-15 12:00Z */

/* Window ends in minutes after midnight. */
#define AT(h, m)  ((h) * 60 + (m))


static nh_tz_t *load_zone(const char *name);
static void assert_inside(const nh_tz_t *tz, int start, int end, int64_t now,
    int64_t expected_end);
static void assert_outside(const nh_tz_t *tz, int start, int end,
    int64_t now);


/* "HH:MM" */


START_TEST(hhmm_parses_valid_times)
{
    static const struct {
        const char  *text;
        int          minutes;
    } cases[] = {
        { "00:00", 0 },
        { "00:01", 1 },
        { "07:00", 420 },
        { "12:30", 750 },
        { "22:00", 1320 },
        { "23:59", 1439 },
    };
    size_t  i;
    int     minutes;

    for (i = 0; i < ARRAY_LEN(cases); i++) {
        minutes = -1;
        ck_assert_msg(nh_quiet_parse_hhmm(cases[i].text,
                                          strlen(cases[i].text),
                                          &minutes) == 0,
                      "rejected \"%s\"", cases[i].text);
        ck_assert_int_eq(minutes, cases[i].minutes);
    }
}
END_TEST


START_TEST(hhmm_rejects_invalid_times)
{
    static const char  *texts[] = {
        "24:00",
        "25:00",
        "23:60",
        "7:00",
        "07:0",
        "07:00:00",
        "07-00",
        "0700",
        "0a:00",
        "07:0a",
        " 7:00",
        "07:00 ",
        "-1:00",
        "+7:00",
        "",
        "07:",
        "\xd9\xa0\xd9\xa7:00",
    };
    size_t              i;
    int                 minutes;

    for (i = 0; i < ARRAY_LEN(texts); i++) {
        ck_assert_msg(nh_quiet_parse_hhmm(texts[i], strlen(texts[i]),
                                          &minutes) == NH_TZ_EINVAL,
                      "accepted \"%s\"", texts[i]);
    }

    ck_assert_int_eq(nh_quiet_parse_hhmm(NULL, 0, &minutes), NH_TZ_EINVAL);
}
END_TEST


START_TEST(hhmm_reads_exactly_len_bytes)
{
    int  minutes;

    ck_assert_int_eq(nh_quiet_parse_hhmm("07:30:00", 5, &minutes), 0);
    ck_assert_int_eq(minutes, 450);
    ck_assert_int_eq(nh_quiet_parse_hhmm("07:30", 4, &minutes),
                     NH_TZ_EINVAL);
}
END_TEST


START_TEST(hhmm_format_round_trips)
{
    char  text[6];
    int   minutes, parsed;

    for (minutes = 0; minutes < NH_QUIET_MINUTES_PER_DAY; minutes++) {
        ck_assert_int_eq(nh_quiet_format_hhmm(minutes, text), 0);
        ck_assert_uint_eq(strlen(text), 5);
        ck_assert_int_eq(nh_quiet_parse_hhmm(text, 5, &parsed), 0);
        ck_assert_int_eq(parsed, minutes);
    }

    ck_assert_int_eq(nh_quiet_format_hhmm(1439, text), 0);
    ck_assert_str_eq(text, "23:59");
    ck_assert_int_eq(nh_quiet_format_hhmm(1440, text), NH_TZ_EINVAL);
    ck_assert_int_eq(nh_quiet_format_hhmm(-1, text), NH_TZ_EINVAL);
}
END_TEST


/* Window checks */


START_TEST(window_rejects_start_equal_to_end)
{
    nh_tz_t  *tz;
    int64_t   end;
    int       inside;

    ck_assert(!nh_quiet_window_is_valid(AT(7, 0), AT(7, 0)));
    ck_assert(!nh_quiet_window_is_valid(0, 0));
    ck_assert(!nh_quiet_window_is_valid(-1, AT(7, 0)));
    ck_assert(!nh_quiet_window_is_valid(AT(22, 0), 1440));
    ck_assert(nh_quiet_window_is_valid(AT(22, 0), AT(7, 0)));
    ck_assert(nh_quiet_window_is_valid(0, 1439));

    tz = load_zone("UTC");

    ck_assert_int_eq(nh_quiet_check(tz, AT(7, 0), AT(7, 0),
                                    JANUARY_15_2026_NOON, &inside, &end),
                     NH_TZ_EINVAL);
    ck_assert_int_eq(nh_quiet_check(tz, AT(7, 0), 1440,
                                    JANUARY_15_2026_NOON, &inside, &end),
                     NH_TZ_EINVAL);

    nh_tz_free(tz);
}
END_TEST


START_TEST(window_rejects_out_of_range_instant)
{
    nh_tz_t  *tz;
    int64_t   end;
    int       inside;

    tz = load_zone("UTC");

    ck_assert_int_eq(nh_quiet_check(tz, AT(22, 0), AT(7, 0), INT64_MAX,
                                    &inside, &end), NH_TZ_ERANGE);
    ck_assert_int_eq(nh_quiet_check(tz, AT(22, 0), AT(7, 0), NH_TZ_TIME_MIN,
                                    &inside, &end), NH_TZ_ERANGE);

    nh_tz_free(tz);
}
END_TEST


START_TEST(utc_daytime_window)
{
    nh_tz_t  *tz;

    tz = load_zone("UTC");

    /* 09:00 to 17:00 on 2026-01-15. */
    assert_outside(tz, AT(9, 0), AT(17, 0),
                   JANUARY_15_2026_NOON - 3 * HOUR - 1);
    assert_inside(tz, AT(9, 0), AT(17, 0), JANUARY_15_2026_NOON - 3 * HOUR,
                  JANUARY_15_2026_NOON + 5 * HOUR);
    assert_inside(tz, AT(9, 0), AT(17, 0), JANUARY_15_2026_NOON,
                  JANUARY_15_2026_NOON + 5 * HOUR);
    assert_outside(tz, AT(9, 0), AT(17, 0), JANUARY_15_2026_NOON + 5 * HOUR);

    nh_tz_free(tz);
}
END_TEST


START_TEST(utc_window_of_23_hours_30_minutes)
{
    nh_tz_t  *tz;

    /* 07:00 to 06:30 the next day leaves out 06:30 to 07:00. */
    const int64_t  six_thirty = JANUARY_15_2026_NOON - 5 * HOUR - HOUR / 2;

    tz = load_zone("UTC");

    assert_inside(tz, AT(7, 0), AT(6, 30), six_thirty - 1, six_thirty);
    assert_outside(tz, AT(7, 0), AT(6, 30), six_thirty);
    assert_outside(tz, AT(7, 0), AT(6, 30), six_thirty + HOUR / 2 - 1);
    assert_inside(tz, AT(7, 0), AT(6, 30), six_thirty + HOUR / 2,
                  six_thirty + 24 * HOUR);
    assert_inside(tz, AT(7, 0), AT(6, 30), JANUARY_15_2026_NOON,
                  six_thirty + 24 * HOUR);

    nh_tz_free(tz);
}
END_TEST


START_TEST(berlin_window_across_midnight)
{
    nh_tz_t  *tz;

    /* 2026-01-15 22:00 CET is 21:00Z, and 07:00 the next day is 06:00Z. */
    const int64_t  start = JANUARY_15_2026_NOON + 9 * HOUR;
    const int64_t  end = JANUARY_15_2026_NOON + 18 * HOUR;

    tz = load_zone("Europe/Berlin");

    assert_outside(tz, AT(22, 0), AT(7, 0), start - 1);
    assert_inside(tz, AT(22, 0), AT(7, 0), start, end);
    assert_inside(tz, AT(22, 0), AT(7, 0), start + 3 * HOUR, end);
    assert_inside(tz, AT(22, 0), AT(7, 0), end - 1, end);
    assert_outside(tz, AT(22, 0), AT(7, 0), end);
    assert_outside(tz, AT(22, 0), AT(7, 0), JANUARY_15_2026_NOON);

    nh_tz_free(tz);
}
END_TEST


START_TEST(berlin_window_across_spring_change)
{
    nh_tz_t  *tz;

    /* 2026-03-28 22:00 CET is 21:00Z, 2026-03-29 07:00 CEST is 05:00Z. */
    const int64_t  start = BERLIN_SPRING_2026 - 4 * HOUR;
    const int64_t  end = BERLIN_SPRING_2026 + 4 * HOUR;

    tz = load_zone("Europe/Berlin");

    assert_outside(tz, AT(22, 0), AT(7, 0), start - 1);
    assert_inside(tz, AT(22, 0), AT(7, 0), start, end);
    assert_inside(tz, AT(22, 0), AT(7, 0), BERLIN_SPRING_2026 - 1, end);
    assert_inside(tz, AT(22, 0), AT(7, 0), BERLIN_SPRING_2026, end);
    assert_outside(tz, AT(22, 0), AT(7, 0), end);

    nh_tz_free(tz);
}
END_TEST


START_TEST(berlin_window_across_fall_change)
{
    nh_tz_t  *tz;

    /* 2026-10-24 22:00 CEST is 20:00Z, 2026-10-25 07:00 CET is 06:00Z. */
    const int64_t  start = BERLIN_FALL_2026 - 5 * HOUR;
    const int64_t  end = BERLIN_FALL_2026 + 5 * HOUR;

    tz = load_zone("Europe/Berlin");

    assert_outside(tz, AT(22, 0), AT(7, 0), start - 1);
    assert_inside(tz, AT(22, 0), AT(7, 0), start, end);

    /* 02:30 happens twice, and both are inside. */
    assert_inside(tz, AT(22, 0), AT(7, 0), BERLIN_FALL_2026 - HOUR / 2, end);
    assert_inside(tz, AT(22, 0), AT(7, 0), BERLIN_FALL_2026 + HOUR / 2, end);
    assert_outside(tz, AT(22, 0), AT(7, 0), end);

    nh_tz_free(tz);
}
END_TEST


START_TEST(new_york_window_ends_in_gap)
{
    nh_tz_t  *tz;

    /* 01:00 EST on 2026-03-08 is 06:00Z, and 02:30 does not exist. */
    const int64_t  start = NEW_YORK_SPRING_2026 - HOUR;

    tz = load_zone("America/New_York");

    assert_outside(tz, AT(1, 0), AT(2, 30), start - 1);
    assert_inside(tz, AT(1, 0), AT(2, 30), start, NEW_YORK_SPRING_2026);
    assert_inside(tz, AT(1, 0), AT(2, 30), NEW_YORK_SPRING_2026 - 1,
                  NEW_YORK_SPRING_2026);
    assert_outside(tz, AT(1, 0), AT(2, 30), NEW_YORK_SPRING_2026);

    nh_tz_free(tz);
}
END_TEST


START_TEST(new_york_window_starts_in_gap)
{
    nh_tz_t  *tz;

    /* 02:30 to 04:00 on 2026-03-08 runs from 03:00 EDT to 04:00 EDT. */
    tz = load_zone("America/New_York");

    assert_outside(tz, AT(2, 30), AT(4, 0), NEW_YORK_SPRING_2026 - 1);
    assert_inside(tz, AT(2, 30), AT(4, 0), NEW_YORK_SPRING_2026,
                  NEW_YORK_SPRING_2026 + HOUR);
    assert_outside(tz, AT(2, 30), AT(4, 0), NEW_YORK_SPRING_2026 + HOUR);

    nh_tz_free(tz);
}
END_TEST


START_TEST(window_inside_gap_is_empty_that_day)
{
    nh_tz_t  *tz;

    tz = load_zone("America/New_York");

    /* 02:10 to 02:50 does not happen on 2026-03-08. */
    assert_outside(tz, AT(2, 10), AT(2, 50), NEW_YORK_SPRING_2026 - 1);
    assert_outside(tz, AT(2, 10), AT(2, 50), NEW_YORK_SPRING_2026);
    assert_outside(tz, AT(2, 10), AT(2, 50),
                   NEW_YORK_SPRING_2026 + 20 * MINUTE);

    /* On 2026-03-09 it is 06:10Z to 06:50Z. */
    assert_inside(tz, AT(2, 10), AT(2, 50),
                  NEW_YORK_SPRING_2026 + 23 * HOUR + 10 * MINUTE,
                  NEW_YORK_SPRING_2026 + 23 * HOUR + 50 * MINUTE);

    nh_tz_free(tz);
}
END_TEST


START_TEST(new_york_window_starts_in_overlap)
{
    nh_tz_t  *tz;

    /*
     * 01:00 to 02:30 on 2026-11-01 starts at the first 01:00 (05:00Z) and
     * ends at 02:30 EST (07:30Z), so it lasts 2 hours 30 minutes.
     */
    const int64_t  start = NEW_YORK_FALL_2026 - HOUR;
    const int64_t  end = NEW_YORK_FALL_2026 + HOUR + HOUR / 2;

    tz = load_zone("America/New_York");

    assert_outside(tz, AT(1, 0), AT(2, 30), start - 1);
    assert_inside(tz, AT(1, 0), AT(2, 30), start, end);
    assert_inside(tz, AT(1, 0), AT(2, 30), NEW_YORK_FALL_2026 - 1, end);
    assert_inside(tz, AT(1, 0), AT(2, 30), NEW_YORK_FALL_2026 + 15 * MINUTE,
                  end);
    assert_outside(tz, AT(1, 0), AT(2, 30), end);

    nh_tz_free(tz);
}
END_TEST


START_TEST(new_york_window_ends_in_overlap)
{
    nh_tz_t  *tz;

    /*
     * 00:00 to 01:30 on 2026-11-01 ends at the first 01:30 (05:30Z), so the
     * second pass through 01:00 to 01:30 (06:00Z to 06:30Z) is outside.
     */
    const int64_t  start = NEW_YORK_FALL_2026 - 2 * HOUR;
    const int64_t  end = NEW_YORK_FALL_2026 - HOUR / 2;

    tz = load_zone("America/New_York");

    assert_outside(tz, AT(0, 0), AT(1, 30), start - 1);
    assert_inside(tz, AT(0, 0), AT(1, 30), start, end);
    assert_outside(tz, AT(0, 0), AT(1, 30), end);
    assert_outside(tz, AT(0, 0), AT(1, 30), NEW_YORK_FALL_2026 + 15 * MINUTE);

    nh_tz_free(tz);
}
END_TEST


START_TEST(kolkata_window_across_midnight)
{
    nh_tz_t  *tz;

    /* 22:30 IST on 2026-01-15 is 17:00Z, and 07:00 IST next day 01:30Z. */
    const int64_t  now = JANUARY_15_2026_NOON + 5 * HOUR;
    const int64_t  end = JANUARY_15_2026_NOON + 13 * HOUR + HOUR / 2;

    tz = load_zone("Asia/Kolkata");

    assert_inside(tz, AT(22, 0), AT(7, 0), now, end);
    assert_inside(tz, AT(22, 0), AT(7, 0), now - 30 * MINUTE, end);
    assert_outside(tz, AT(22, 0), AT(7, 0), now - 30 * MINUTE - 1);
    assert_outside(tz, AT(22, 0), AT(7, 0), end);

    nh_tz_free(tz);
}
END_TEST


START_TEST(lord_howe_window_in_half_hour_overlap)
{
    nh_tz_t  *tz;

    /*
     * On 2026-04-05 clocks move from 02:00 (+11) back to 01:30 (+1030).
     * 01:00 to 01:45 runs from 14:00Z to the first 01:45 at 14:45Z.
     */
    tz = load_zone("Australia/Lord_Howe");

    assert_inside(tz, AT(1, 0), AT(1, 45), LORD_HOWE_APRIL_2026 - HOUR,
                  LORD_HOWE_APRIL_2026 - 15 * MINUTE);
    assert_inside(tz, AT(1, 0), AT(1, 45), LORD_HOWE_APRIL_2026 - 30 * MINUTE,
                  LORD_HOWE_APRIL_2026 - 15 * MINUTE);
    assert_outside(tz, AT(1, 0), AT(1, 45),
                   LORD_HOWE_APRIL_2026 - 15 * MINUTE);

    /* The second pass: 01:35 and 01:50 at +1030. */
    assert_outside(tz, AT(1, 0), AT(1, 45), LORD_HOWE_APRIL_2026 + 5 * MINUTE);
    assert_outside(tz, AT(1, 0), AT(1, 45),
                   LORD_HOWE_APRIL_2026 + 20 * MINUTE);

    nh_tz_free(tz);
}
END_TEST


START_TEST(lord_howe_window_ends_in_half_hour_gap)
{
    nh_tz_t  *tz;

    /*
     * On 2026-10-04 clocks move from 02:00 (+1030) to 02:30 (+11), so a
     * window from 22:00 (11:30Z the day before) to 02:15 ends at 15:30Z.
     */
    const int64_t  start = LORD_HOWE_OCTOBER_2026 - 4 * HOUR;

    tz = load_zone("Australia/Lord_Howe");

    assert_outside(tz, AT(22, 0), AT(2, 15), start - 1);
    assert_inside(tz, AT(22, 0), AT(2, 15), start, LORD_HOWE_OCTOBER_2026);
    assert_inside(tz, AT(22, 0), AT(2, 15), LORD_HOWE_OCTOBER_2026 - 1,
                  LORD_HOWE_OCTOBER_2026);
    assert_outside(tz, AT(22, 0), AT(2, 15), LORD_HOWE_OCTOBER_2026);

    nh_tz_free(tz);
}
END_TEST


START_TEST(window_across_gap_in_2100)
{
    nh_tz_t  *tz;

    /* 2100-03-13 22:00 EST is 03:00Z, and 07:00 EDT next day is 11:00Z. */
    const int64_t  start = NEW_YORK_SPRING_2100 - 4 * HOUR;
    const int64_t  end = NEW_YORK_SPRING_2100 + 4 * HOUR;

    tz = load_zone("America/New_York");

    assert_outside(tz, AT(22, 0), AT(7, 0), start - 1);
    assert_inside(tz, AT(22, 0), AT(7, 0), start, end);
    assert_inside(tz, AT(22, 0), AT(7, 0), NEW_YORK_SPRING_2100, end);
    assert_outside(tz, AT(22, 0), AT(7, 0), end);

    nh_tz_free(tz);
}
END_TEST


START_TEST(window_end_is_next_end_wall_time)
{
    nh_tz_wall_t  wall;
    nh_tz_t      *tz;
    int64_t       now, end;
    int           inside, hour;

    tz = load_zone("Europe/Berlin");

    /*
     * Every 7 minutes for a year from 2026-01-15, 22:00 to 07:00 is 8 to
     * 10 hours long and ends at 07:00.
     */
    for (now = JANUARY_15_2026_NOON;
         now < JANUARY_15_2026_NOON + 365LL * 24 * HOUR;
         now += 7 * MINUTE)
    {
        ck_assert_int_eq(nh_quiet_check(tz, AT(22, 0), AT(7, 0), now,
                                        &inside, &end), 0);
        ck_assert_int_eq(nh_tz_utc_to_local(tz, now, &wall, NULL), NH_TZ_OK);

        hour = wall.hour;
        ck_assert_int_eq(inside, hour >= 22 || hour < 7);

        if (!inside) {
            ck_assert_int_eq(end, 0);
            continue;
        }

        ck_assert_int_gt(end, now);
        ck_assert_int_le(end - now, 10 * HOUR);
        ck_assert_int_eq(nh_tz_utc_to_local(tz, end, &wall, NULL), NH_TZ_OK);
        ck_assert_int_eq(wall.hour, 7);
        ck_assert_int_eq(wall.minute, 0);
        ck_assert_int_eq(wall.second, 0);
    }

    nh_tz_free(tz);
}
END_TEST


/* Helpers */


static nh_tz_t *
load_zone(const char *name)
{
    nh_tz_t  *tz;
    int       rc;

    rc = nh_tz_load(NULL, name, &tz);
    ck_assert_msg(rc == NH_TZ_OK, "loading \"%s\": %s", name,
                  nh_tz_strerror(rc));

    return tz;
}


static void
assert_inside(const nh_tz_t *tz, int start, int end, int64_t now,
    int64_t expected_end)
{
    int64_t  window_end;
    int      inside;

    ck_assert_int_eq(nh_quiet_check(tz, start, end, now, &inside,
                                    &window_end), 0);
    ck_assert_msg(inside, "%d to %d: %lld is outside", start, end,
                  (long long) now);
    ck_assert_int_eq(window_end, expected_end);
}


static void
assert_outside(const nh_tz_t *tz, int start, int end, int64_t now)
{
    int64_t  window_end;
    int      inside;

    ck_assert_int_eq(nh_quiet_check(tz, start, end, now, &inside,
                                    &window_end), 0);
    ck_assert_msg(!inside, "%d to %d: %lld is inside, until %lld", start, end,
                  (long long) now, (long long) window_end);
    ck_assert_int_eq(window_end, 0);
}


Suite *
nh_quiet_suite(void)
{
    Suite  *suite;
    TCase  *tc;

    suite = suite_create("quiet");

    tc = tcase_create("hhmm");
    tcase_add_test(tc, hhmm_parses_valid_times);
    tcase_add_test(tc, hhmm_rejects_invalid_times);
    tcase_add_test(tc, hhmm_reads_exactly_len_bytes);
    tcase_add_test(tc, hhmm_format_round_trips);
    suite_add_tcase(suite, tc);

    tc = tcase_create("window");
    tcase_add_test(tc, window_rejects_start_equal_to_end);
    tcase_add_test(tc, window_rejects_out_of_range_instant);
    tcase_add_test(tc, utc_daytime_window);
    tcase_add_test(tc, utc_window_of_23_hours_30_minutes);
    tcase_add_test(tc, berlin_window_across_midnight);
    tcase_add_test(tc, berlin_window_across_spring_change);
    tcase_add_test(tc, berlin_window_across_fall_change);
    tcase_add_test(tc, new_york_window_ends_in_gap);
    tcase_add_test(tc, new_york_window_starts_in_gap);
    tcase_add_test(tc, window_inside_gap_is_empty_that_day);
    tcase_add_test(tc, new_york_window_starts_in_overlap);
    tcase_add_test(tc, new_york_window_ends_in_overlap);
    tcase_add_test(tc, kolkata_window_across_midnight);
    tcase_add_test(tc, lord_howe_window_in_half_hour_overlap);
    tcase_add_test(tc, lord_howe_window_ends_in_half_hour_gap);
    tcase_add_test(tc, window_across_gap_in_2100);
    tcase_add_test(tc, window_end_is_next_end_wall_time);
    suite_add_tcase(suite, tc);

    return suite;
}
