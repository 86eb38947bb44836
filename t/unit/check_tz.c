/* nftw() is an X/Open function. */
#define _XOPEN_SOURCE  700

#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <check.h>

#include "../../common/nh_tz.h"
#include "check_suites.h"


#define ARRAY_LEN(a)  (sizeof(a) / sizeof((a)[0]))

/*
 * Transition instants of 2026 and 2100, from "zdump -v" of tzdata 2025b.
 * Debian's zone files of that version list transitions up to 2037 or
 * 2038, so the 2100 ones come from the footer's TZ string.
 */
#define NEW_YORK_SPRING_2026   1772953200LL   /* 03-08 07:00Z, to EDT */
#define NEW_YORK_FALL_2026     1793512800LL   /* 11-01 06:00Z, to EST */
#define BERLIN_SPRING_2026     1774746000LL   /* 03-29 01:00Z, to CEST */
#define BERLIN_FALL_2026       1792890000LL   /* 10-25 01:00Z, to CET */
#define LORD_HOWE_APRIL_2026   1775314800LL   /* 04-04 15:00Z, to +1030 */
#define LORD_HOWE_OCTOBER_2026 1791041400LL   /* 10-03 15:30Z, to +11 */
#define NEW_YORK_SPRING_2100   4108690800LL   /* 03-14 07:00Z, to EDT */
#define NEW_YORK_FALL_2100     4129250400LL   /* 11-07 06:00Z, to EST */
#define LORD_HOWE_APRIL_2100   4110447600LL   /* 04-03 15:00Z, to +1030 */

#define JANUARY_15_2026_NOON   1768478400LL   /* 2026-01-15 12:00Z */
#define JULY_15_2026_NOON      1784116800LL   /* 2026-07-15 12:00Z */

#define HOUR  3600


static nh_tz_t *load_zone(const char *name);
static int32_t offset_at(const nh_tz_t *tz, int64_t t);
static unsigned char *read_file(const char *path, size_t *len);
static void write_file(const char *path, const void *data, size_t len);
static void copy_zone(const char *dir, const char *name);
static void copy_zone_as(const char *dir, const char *name,
    const char *target);
static char *make_temp_dir(void);
static void remove_tree(const char *path);
static int remove_entry(const char *path, const struct stat *st, int flag,
    struct FTW *ftw);
static unsigned char *put_u32(unsigned char *p, uint32_t v);
static unsigned char *put_header(unsigned char *p, int version,
    size_t timecnt, size_t typecnt);
static unsigned char *put_block(unsigned char *p, size_t time_size,
    const int64_t *times, const uint8_t *indices, size_t timecnt,
    const int32_t *offsets, size_t typecnt);
static size_t build_tzif(unsigned char *buf, int version,
    const int64_t *times, const uint8_t *indices, size_t timecnt,
    const int32_t *offsets, size_t typecnt, const char *footer);
static nh_tz_t *parse_footer_only(const char *footer, int32_t offset);
static int64_t local_to_utc(const nh_tz_t *tz, int y, int mo, int d, int h,
    int mi, int s, nh_tz_overlap_e policy, nh_tz_match_e *match);


/* Zone names */


START_TEST(name_accepts_iana_names)
{
    static const char  *names[] = {
        "America/New_York",
        "UTC",
        "Etc/GMT+5",
        "Etc/GMT-14",
        "America/Port-au-Prince",
        "America/Argentina/ComodRivadavia",
        "Australia/Lord_Howe",
    };
    size_t              i;

    for (i = 0; i < ARRAY_LEN(names); i++) {
        ck_assert_msg(nh_tz_name_is_valid(names[i], strlen(names[i])),
                      "rejected \"%s\"", names[i]);
    }
}
END_TEST


START_TEST(name_rejects_dot_dot_and_bad_syntax)
{
    static const char  *names[] = {
        "",
        "..",
        "../etc/passwd",
        "America/../../etc/passwd",
        "America/..",
        "./UTC",
        "/etc/passwd",
        "America/",
        "America//New_York",
        "Europe Berlin",
        "Europe/Berl\xc3\xadn",
        "Europe\\Berlin",
        "UTC\n",
        "zone.tab",
        "A234567890123456789012345678901234567890123456789012345678901234X",
    };
    size_t              i;

    for (i = 0; i < ARRAY_LEN(names); i++) {
        ck_assert_msg(!nh_tz_name_is_valid(names[i], strlen(names[i])),
                      "accepted \"%s\"", names[i]);
    }

    ck_assert(!nh_tz_name_is_valid(NULL, 0));
    ck_assert(!nh_tz_name_is_valid("UTC\0x", 5));
}
END_TEST


START_TEST(name_checks_exactly_len_bytes)
{
    char  name[NH_TZ_NAME_MAX + 1];

    memset(name, 'A', sizeof(name));

    ck_assert(nh_tz_name_is_valid(name, NH_TZ_NAME_MAX));
    ck_assert(!nh_tz_name_is_valid(name, NH_TZ_NAME_MAX + 1));
    ck_assert(nh_tz_name_is_valid("Europe/Berlin/", 13));
}
END_TEST


/* Loading and parsing */


START_TEST(load_rejects_unknown_zone)
{
    nh_tz_t  *tz;

    tz = (nh_tz_t *) 1;
    ck_assert_int_eq(nh_tz_load(NULL, "Mars/Olympus_Mons", &tz),
                     NH_TZ_ENOENT);
    ck_assert_ptr_null(tz);

    /* A directory is not a zone. */
    ck_assert_int_eq(nh_tz_load(NULL, "America", &tz), NH_TZ_ENOENT);
    ck_assert_int_eq(nh_tz_load("/nonexistent-zoneinfo", "UTC", &tz),
                     NH_TZ_ENOENT);
}
END_TEST


START_TEST(load_rejects_dot_dot_name)
{
    nh_tz_t  *tz;

    tz = (nh_tz_t *) 1;
    ck_assert_int_eq(nh_tz_load(NULL, "../../../etc/passwd", &tz),
                     NH_TZ_EINVAL);
    ck_assert_ptr_null(tz);

    ck_assert_int_eq(nh_tz_load(NULL, "America/../UTC", &tz), NH_TZ_EINVAL);
    ck_assert_int_eq(nh_tz_load(NULL, NULL, &tz), NH_TZ_EINVAL);
}
END_TEST


START_TEST(load_reads_other_directory)
{
    nh_tz_t  *tz;
    char     *dir;

    dir = make_temp_dir();
    copy_zone(dir, "Europe/Berlin");

    ck_assert_int_eq(nh_tz_load(dir, "Europe/Berlin", &tz), NH_TZ_OK);
    ck_assert_int_eq(offset_at(tz, BERLIN_SPRING_2026), 7200);
    nh_tz_free(tz);

    ck_assert_int_eq(nh_tz_load(dir, "UTC", &tz), NH_TZ_ENOENT);

    remove_tree(dir);
    free(dir);
}
END_TEST


START_TEST(load_rejects_truncated_file)
{
    unsigned char  *data;
    nh_tz_t        *tz;
    size_t          len, i;
    char           *dir, path[256];
    size_t          cuts[] = { 0, 4, 43, 44, 45, 100, 0, 0, 0, 0, 0 };

    data = read_file(NH_TZ_DEFAULT_DIR "/America/New_York", &len);

    cuts[6] = len / 2;
    cuts[7] = len - 30;
    cuts[8] = len - 2;
    cuts[9] = len - 1;
    cuts[10] = len - 10;

    for (i = 0; i < ARRAY_LEN(cuts); i++) {
        tz = (nh_tz_t *) 1;
        ck_assert_msg(nh_tz_parse(data, cuts[i], &tz) == NH_TZ_EFORMAT,
                      "accepted the first %zu of %zu bytes", cuts[i], len);
        ck_assert_ptr_null(tz);
    }

    dir = make_temp_dir();
    snprintf(path, sizeof(path), "%s/Truncated", dir);
    write_file(path, data, len / 2);

    ck_assert_int_eq(nh_tz_load(dir, "Truncated", &tz), NH_TZ_EFORMAT);
    ck_assert_ptr_null(tz);

    remove_tree(dir);
    free(dir);
    free(data);
}
END_TEST


START_TEST(load_rejects_wrong_magic)
{
    unsigned char  *data;
    nh_tz_t        *tz;
    size_t          len;

    data = read_file(NH_TZ_DEFAULT_DIR "/Europe/Berlin", &len);

    ck_assert_int_eq(nh_tz_parse(data, len, &tz), NH_TZ_OK);
    nh_tz_free(tz);

    data[0] = 'X';
    ck_assert_int_eq(nh_tz_parse(data, len, &tz), NH_TZ_EFORMAT);
    data[0] = 'T';

    /* Versions above 4 are rejected. */
    data[4] = '5';
    ck_assert_int_eq(nh_tz_parse(data, len, &tz), NH_TZ_EFORMAT);

    ck_assert_int_eq(nh_tz_parse((const unsigned char *) "not a zone", 10,
                                 &tz), NH_TZ_EFORMAT);
    ck_assert_int_eq(nh_tz_parse(NULL, 0, &tz), NH_TZ_EFORMAT);

    free(data);
}
END_TEST


START_TEST(load_rejects_trailing_bytes)
{
    unsigned char  *data;
    nh_tz_t        *tz;
    size_t          len;

    data = read_file(NH_TZ_DEFAULT_DIR "/Asia/Kolkata", &len);
    data = realloc(data, len + 1);
    ck_assert_ptr_nonnull(data);
    data[len] = '\n';

    ck_assert_int_eq(nh_tz_parse(data, len + 1, &tz), NH_TZ_EFORMAT);

    free(data);
}
END_TEST


START_TEST(parse_rejects_bad_indices_and_order)
{
    unsigned char  buf[1024];
    nh_tz_t       *tz;
    size_t         len;
    int64_t        times[2] = { 1000, 2000 };
    int64_t        unordered[2] = { 2000, 1000 };
    uint8_t        indices[2] = { 0, 1 };
    uint8_t        bad_indices[2] = { 0, 2 };
    int32_t        offsets[2] = { 0, 3600 };
    int32_t        bad_offsets[2] = { 0, 100000 };

    len = build_tzif(buf, 2, times, indices, 2, offsets, 2, "");
    ck_assert_int_eq(nh_tz_parse(buf, len, &tz), NH_TZ_OK);
    nh_tz_free(tz);

    len = build_tzif(buf, 2, unordered, indices, 2, offsets, 2, "");
    ck_assert_int_eq(nh_tz_parse(buf, len, &tz), NH_TZ_EFORMAT);

    len = build_tzif(buf, 2, times, bad_indices, 2, offsets, 2, "");
    ck_assert_int_eq(nh_tz_parse(buf, len, &tz), NH_TZ_EFORMAT);

    len = build_tzif(buf, 2, times, indices, 2, bad_offsets, 2, "");
    ck_assert_int_eq(nh_tz_parse(buf, len, &tz), NH_TZ_EFORMAT);

    len = build_tzif(buf, 2, times, indices, 2, offsets, 0, "");
    ck_assert_int_eq(nh_tz_parse(buf, len, &tz), NH_TZ_EFORMAT);
}
END_TEST


START_TEST(parse_rejects_leap_second_records)
{
    unsigned char  buf[1024];
    nh_tz_t       *tz;
    size_t         len;
    int32_t        offsets[1] = { 0 };

    len = build_tzif(buf, 1, NULL, NULL, 0, offsets, 1, NULL);
    ck_assert_int_eq(nh_tz_parse(buf, len, &tz), NH_TZ_OK);
    nh_tz_free(tz);

    /*
     * One leap second at 1972-07-01 00:00Z, as in the "right/" zones,
     * whose transition times count leap seconds: leapcnt is the last byte
     * of the 32-bit count at offset 28.
     */
    buf[31] = 1;
    put_u32(put_u32(buf + len, 78796800), 1);
    len += 8;

    tz = (nh_tz_t *) 1;
    ck_assert_int_eq(nh_tz_parse(buf, len, &tz), NH_TZ_EFORMAT);
    ck_assert_ptr_null(tz);
}
END_TEST


START_TEST(parse_reads_version_1)
{
    unsigned char  buf[1024];
    nh_tz_t       *tz;
    size_t         len;
    int64_t        times[2] = { 1000000000, 1100000000 };
    uint8_t        indices[2] = { 1, 2 };
    int32_t        offsets[3] = { 3600, 7200, -1800 };

    len = build_tzif(buf, 1, times, indices, 2, offsets, 3, NULL);
    ck_assert_int_eq(nh_tz_parse(buf, len, &tz), NH_TZ_OK);

    /* Type 0 before the first transition, the last type after the last. */
    ck_assert_int_eq(offset_at(tz, 999999999), 3600);
    ck_assert_int_eq(offset_at(tz, 1000000000), 7200);
    ck_assert_int_eq(offset_at(tz, 1099999999), 7200);
    ck_assert_int_eq(offset_at(tz, 1100000000), -1800);
    ck_assert_int_eq(offset_at(tz, NEW_YORK_SPRING_2100), -1800);

    nh_tz_free(tz);
}
END_TEST


START_TEST(parse_reads_versions_2_to_4)
{
    unsigned char  buf[1024];
    nh_tz_t       *tz;
    size_t         len;
    int64_t        times[1] = { 1000000000 };
    uint8_t        indices[1] = { 1 };
    int32_t        offsets[2] = { 0, 19800 };
    int            version;

    for (version = 2; version <= 4; version++) {
        len = build_tzif(buf, version, times, indices, 1, offsets, 2,
                         "<+0530>-5:30");
        ck_assert_int_eq(nh_tz_parse(buf, len, &tz), NH_TZ_OK);
        ck_assert_int_eq(offset_at(tz, 999999999), 0);
        ck_assert_int_eq(offset_at(tz, 1000000000), 19800);
        ck_assert_int_eq(offset_at(tz, NEW_YORK_SPRING_2100), 19800);
        nh_tz_free(tz);
    }
}
END_TEST


START_TEST(parse_rejects_footer_that_disagrees)
{
    unsigned char  buf[1024];
    nh_tz_t       *tz;
    size_t         len;
    int64_t        times[1] = { 1000000000 };
    uint8_t        indices[1] = { 1 };
    int32_t        offsets[2] = { 0, 19800 };

    /* The last transition is to +05:30, but the footer gives +05:00. */
    len = build_tzif(buf, 2, times, indices, 1, offsets, 2, "<+05>-5");
    tz = (nh_tz_t *) 1;
    ck_assert_int_eq(nh_tz_parse(buf, len, &tz), NH_TZ_EFORMAT);
    ck_assert_ptr_null(tz);
}
END_TEST


START_TEST(parse_rejects_malformed_footers)
{
    static const char  *footers[] = {
        "EST5EDT",
        "EST5EDT,M3.2.0",
        "EST5EDT,M3.2.0,",
        "ES5",
        "EST",
        "5",
        "EST25",
        "EST5:60",
        "<+05>",
        "<+5>-5",
        "<+05-5",
        "EST5 ",
        "EST5EDT,M3.6.0,M11.1.0",
        "EST5EDT,M13.2.0,M11.1.0",
        "EST5EDT,M3.2.7,M11.1.0",
        "EST5EDT,M3.0.0,M11.1.0",
        "EST5EDT,J0,J365",
        "EST5EDT,J366,J365",
        "EST5EDT,366,300",
        "EST5EDT,M3.2.0/168,M11.1.0",
        "EST5EDT,M3.2.0,M11.1.0,",
        "EST5EDT,M3.2.0,M11.1.0x",
    };
    unsigned char       buf[1024];
    nh_tz_t            *tz;
    size_t              len, i;
    int32_t             offsets[1] = { -18000 };

    for (i = 0; i < ARRAY_LEN(footers); i++) {
        len = build_tzif(buf, 3, NULL, NULL, 0, offsets, 1, footers[i]);
        ck_assert_msg(nh_tz_parse(buf, len, &tz) == NH_TZ_EFORMAT,
                      "accepted footer \"%s\"", footers[i]);
    }
}
END_TEST


START_TEST(load_every_system_zone)
{
    nh_tz_names_t  *set;
    nh_tz_t        *tz;
    size_t          i;
    int             rc;

    ck_assert_int_eq(nh_tz_names_load(NULL, &set), NH_TZ_OK);

    for (i = 0; i < nh_tz_names_count(set); i++) {
        rc = nh_tz_load(NULL, nh_tz_names_get(set, i), &tz);
        ck_assert_msg(rc == NH_TZ_OK, "zone \"%s\": %s",
                      nh_tz_names_get(set, i), nh_tz_strerror(rc));
        nh_tz_free(tz);
    }

    nh_tz_names_free(set);
}
END_TEST


/* Offsets at instants */


START_TEST(new_york_offsets_around_spring_gap)
{
    nh_tz_t  *tz;

    tz = load_zone("America/New_York");

    ck_assert_int_eq(offset_at(tz, NEW_YORK_SPRING_2026 - 1), -5 * HOUR);
    ck_assert_int_eq(offset_at(tz, NEW_YORK_SPRING_2026), -4 * HOUR);
    ck_assert_int_eq(offset_at(tz, JANUARY_15_2026_NOON), -5 * HOUR);
    ck_assert_int_eq(offset_at(tz, JULY_15_2026_NOON), -4 * HOUR);

    nh_tz_free(tz);
}
END_TEST


START_TEST(new_york_offsets_around_fall_overlap)
{
    nh_tz_t  *tz;

    tz = load_zone("America/New_York");

    ck_assert_int_eq(offset_at(tz, NEW_YORK_FALL_2026 - 1), -4 * HOUR);
    ck_assert_int_eq(offset_at(tz, NEW_YORK_FALL_2026), -5 * HOUR);

    nh_tz_free(tz);
}
END_TEST


START_TEST(berlin_offsets_around_2026_changes)
{
    nh_tz_t  *tz;

    tz = load_zone("Europe/Berlin");

    ck_assert_int_eq(offset_at(tz, BERLIN_SPRING_2026 - 1), HOUR);
    ck_assert_int_eq(offset_at(tz, BERLIN_SPRING_2026), 2 * HOUR);
    ck_assert_int_eq(offset_at(tz, BERLIN_FALL_2026 - 1), 2 * HOUR);
    ck_assert_int_eq(offset_at(tz, BERLIN_FALL_2026), HOUR);

    nh_tz_free(tz);
}
END_TEST


START_TEST(kolkata_has_fixed_half_hour_offset)
{
    nh_tz_t  *tz;

    tz = load_zone("Asia/Kolkata");

    ck_assert_int_eq(offset_at(tz, JANUARY_15_2026_NOON), 19800);
    ck_assert_int_eq(offset_at(tz, JULY_15_2026_NOON), 19800);
    ck_assert_int_eq(offset_at(tz, NEW_YORK_SPRING_2100), 19800);

    nh_tz_free(tz);
}
END_TEST


START_TEST(lord_howe_shifts_by_30_minutes)
{
    nh_tz_t  *tz;

    tz = load_zone("Australia/Lord_Howe");

    ck_assert_int_eq(offset_at(tz, LORD_HOWE_APRIL_2026 - 1), 39600);
    ck_assert_int_eq(offset_at(tz, LORD_HOWE_APRIL_2026), 37800);
    ck_assert_int_eq(offset_at(tz, LORD_HOWE_OCTOBER_2026 - 1), 37800);
    ck_assert_int_eq(offset_at(tz, LORD_HOWE_OCTOBER_2026), 39600);

    nh_tz_free(tz);
}
END_TEST


START_TEST(utc_has_zero_offset)
{
    nh_tz_t  *tz;

    tz = load_zone("UTC");

    ck_assert_int_eq(offset_at(tz, 0), 0);
    ck_assert_int_eq(offset_at(tz, JULY_15_2026_NOON), 0);
    ck_assert_int_eq(offset_at(tz, NH_TZ_TIME_MIN), 0);
    ck_assert_int_eq(offset_at(tz, NH_TZ_TIME_MAX), 0);

    nh_tz_free(tz);
}
END_TEST


START_TEST(footer_rule_applies_in_2100)
{
    nh_tz_t  *tz;

    tz = load_zone("America/New_York");

    ck_assert_int_eq(offset_at(tz, NEW_YORK_SPRING_2100 - 1), -5 * HOUR);
    ck_assert_int_eq(offset_at(tz, NEW_YORK_SPRING_2100), -4 * HOUR);
    ck_assert_int_eq(offset_at(tz, NEW_YORK_FALL_2100 - 1), -4 * HOUR);
    ck_assert_int_eq(offset_at(tz, NEW_YORK_FALL_2100), -5 * HOUR);
    nh_tz_free(tz);

    tz = load_zone("Australia/Lord_Howe");

    ck_assert_int_eq(offset_at(tz, LORD_HOWE_APRIL_2100 - 1), 39600);
    ck_assert_int_eq(offset_at(tz, LORD_HOWE_APRIL_2100), 37800);
    nh_tz_free(tz);
}
END_TEST


START_TEST(offset_rejects_out_of_range)
{
    nh_tz_t  *tz;
    int32_t   off;

    tz = load_zone("Europe/Berlin");

    ck_assert_int_eq(nh_tz_offset(tz, NH_TZ_TIME_MAX + 1, &off),
                     NH_TZ_ERANGE);
    ck_assert_int_eq(nh_tz_offset(tz, NH_TZ_TIME_MIN - 1, &off),
                     NH_TZ_ERANGE);
    ck_assert_int_eq(nh_tz_offset(tz, INT64_MAX, &off), NH_TZ_ERANGE);
    ck_assert_int_eq(nh_tz_offset(tz, INT64_MIN, &off), NH_TZ_ERANGE);

    nh_tz_free(tz);
}
END_TEST


/* Footer TZ strings, in files without transitions */


START_TEST(footer_month_week_day_rules)
{
    nh_tz_t  *tz;

    /* Berlin's rule: last Sunday of March at 02:00, of October at 03:00. */
    tz = parse_footer_only("CET-1CEST,M3.5.0,M10.5.0/3", HOUR);

    ck_assert_int_eq(offset_at(tz, BERLIN_SPRING_2026 - 1), HOUR);
    ck_assert_int_eq(offset_at(tz, BERLIN_SPRING_2026), 2 * HOUR);
    ck_assert_int_eq(offset_at(tz, BERLIN_FALL_2026 - 1), 2 * HOUR);
    ck_assert_int_eq(offset_at(tz, BERLIN_FALL_2026), HOUR);
    nh_tz_free(tz);

    /* New York's: second Sunday of March, first Sunday of November. */
    tz = parse_footer_only("EST5EDT,M3.2.0,M11.1.0", -5 * HOUR);

    ck_assert_int_eq(offset_at(tz, NEW_YORK_SPRING_2026 - 1), -5 * HOUR);
    ck_assert_int_eq(offset_at(tz, NEW_YORK_SPRING_2026), -4 * HOUR);
    ck_assert_int_eq(offset_at(tz, NEW_YORK_FALL_2026 - 1), -4 * HOUR);
    ck_assert_int_eq(offset_at(tz, NEW_YORK_FALL_2026), -5 * HOUR);
    nh_tz_free(tz);
}
END_TEST


START_TEST(footer_julian_day_skips_february_29)
{
    nh_tz_t  *tz;

    /* 2028-03-01 00:00Z, in a leap year, and 2026-03-01 00:00Z. */
    const int64_t  march_1_2028 = 1835481600LL;
    const int64_t  march_1_2026 = 1772323200LL;

    /* J60 is March 1 in every year. */
    tz = parse_footer_only("AAA0BBB-1,J60/0,J305/0", 0);

    ck_assert_int_eq(offset_at(tz, march_1_2028 - 1), 0);
    ck_assert_int_eq(offset_at(tz, march_1_2028), HOUR);
    ck_assert_int_eq(offset_at(tz, march_1_2026 - 1), 0);
    ck_assert_int_eq(offset_at(tz, march_1_2026), HOUR);
    nh_tz_free(tz);

    /* Day 60 from 0 counts February 29: March 1 in 2028, March 2 in 2026. */
    tz = parse_footer_only("AAA0BBB-1,60/0,305/0", 0);

    ck_assert_int_eq(offset_at(tz, march_1_2028 - 1), 0);
    ck_assert_int_eq(offset_at(tz, march_1_2028), HOUR);
    ck_assert_int_eq(offset_at(tz, march_1_2026), 0);
    ck_assert_int_eq(offset_at(tz, march_1_2026 + 24 * HOUR - 1), 0);
    ck_assert_int_eq(offset_at(tz, march_1_2026 + 24 * HOUR), HOUR);
    nh_tz_free(tz);
}
END_TEST


START_TEST(footer_quoted_half_hour_names)
{
    nh_tz_t  *tz;

    tz = parse_footer_only("<+0530>-5:30", 19800);
    ck_assert_int_eq(offset_at(tz, JANUARY_15_2026_NOON), 19800);
    ck_assert_int_eq(offset_at(tz, JULY_15_2026_NOON), 19800);
    nh_tz_free(tz);

    /* Lord Howe: +10:30, and +11:00 from October to April. */
    tz = parse_footer_only("<+1030>-10:30<+11>-11,M10.1.0,M4.1.0", 37800);

    ck_assert_int_eq(offset_at(tz, LORD_HOWE_APRIL_2026 - 1), 39600);
    ck_assert_int_eq(offset_at(tz, LORD_HOWE_APRIL_2026), 37800);
    ck_assert_int_eq(offset_at(tz, LORD_HOWE_OCTOBER_2026 - 1), 37800);
    ck_assert_int_eq(offset_at(tz, LORD_HOWE_OCTOBER_2026), 39600);
    ck_assert_int_eq(offset_at(tz, JANUARY_15_2026_NOON), 39600);
    ck_assert_int_eq(offset_at(tz, JULY_15_2026_NOON), 37800);
    nh_tz_free(tz);
}
END_TEST


START_TEST(footer_daylight_time_all_year)
{
    nh_tz_t  *tz;

    /* 2026-01-01 05:00Z is midnight standard time, the seam of the rule. */
    const int64_t  new_year_2026 = 1767243600LL;

    tz = parse_footer_only("EST5EDT,0/0,J365/25", -5 * HOUR);

    ck_assert_int_eq(offset_at(tz, new_year_2026 - 1), -4 * HOUR);
    ck_assert_int_eq(offset_at(tz, new_year_2026), -4 * HOUR);
    ck_assert_int_eq(offset_at(tz, JANUARY_15_2026_NOON), -4 * HOUR);
    ck_assert_int_eq(offset_at(tz, JULY_15_2026_NOON), -4 * HOUR);
    nh_tz_free(tz);
}
END_TEST


START_TEST(footer_empty_keeps_last_type)
{
    unsigned char  buf[1024];
    nh_tz_t       *tz;
    size_t         len;
    int64_t        times[1] = { 1000000000 };
    uint8_t        indices[1] = { 1 };
    int32_t        offsets[2] = { 0, -3 * HOUR };

    len = build_tzif(buf, 2, times, indices, 1, offsets, 2, "");
    ck_assert_int_eq(nh_tz_parse(buf, len, &tz), NH_TZ_OK);
    ck_assert_int_eq(offset_at(tz, NEW_YORK_SPRING_2100), -3 * HOUR);
    nh_tz_free(tz);
}
END_TEST


/* Wall times */


START_TEST(utc_to_local_across_fall_overlap)
{
    nh_tz_wall_t  wall;
    nh_tz_t      *tz;
    int32_t       off;

    tz = load_zone("America/New_York");

    ck_assert_int_eq(nh_tz_utc_to_local(tz, NEW_YORK_FALL_2026 - 1, &wall,
                                        &off), NH_TZ_OK);
    ck_assert_int_eq(wall.year, 2026);
    ck_assert_int_eq(wall.month, 11);
    ck_assert_int_eq(wall.day, 1);
    ck_assert_int_eq(wall.hour, 1);
    ck_assert_int_eq(wall.minute, 59);
    ck_assert_int_eq(wall.second, 59);
    ck_assert_int_eq(off, -4 * HOUR);

    ck_assert_int_eq(nh_tz_utc_to_local(tz, NEW_YORK_FALL_2026, &wall, NULL),
                     NH_TZ_OK);
    ck_assert_int_eq(wall.hour, 1);
    ck_assert_int_eq(wall.minute, 0);
    ck_assert_int_eq(wall.second, 0);

    nh_tz_free(tz);
}
END_TEST


START_TEST(utc_to_local_crosses_midnight)
{
    nh_tz_wall_t  wall;
    nh_tz_t      *tz;

    tz = load_zone("Australia/Lord_Howe");

    /* 2026-07-15 12:00Z is 22:30 the same day at +10:30. */
    ck_assert_int_eq(nh_tz_utc_to_local(tz, JULY_15_2026_NOON, &wall, NULL),
                     NH_TZ_OK);
    ck_assert_int_eq(wall.day, 15);
    ck_assert_int_eq(wall.hour, 22);
    ck_assert_int_eq(wall.minute, 30);

    /* 2026-01-15 12:00Z is 23:00 the same day at +11:00. */
    ck_assert_int_eq(nh_tz_utc_to_local(tz, JANUARY_15_2026_NOON + 3600,
                                        &wall, NULL), NH_TZ_OK);
    ck_assert_int_eq(wall.month, 1);
    ck_assert_int_eq(wall.day, 16);
    ck_assert_int_eq(wall.hour, 0);
    ck_assert_int_eq(wall.minute, 0);

    nh_tz_free(tz);
}
END_TEST


START_TEST(local_to_utc_unique_time)
{
    nh_tz_match_e  match;
    nh_tz_t       *tz;

    tz = load_zone("America/New_York");

    /* 2026-07-15 12:00 EDT is 16:00Z. */
    ck_assert_int_eq(local_to_utc(tz, 2026, 7, 15, 12, 0, 0, NH_TZ_LATER,
                                  &match), JULY_15_2026_NOON + 4 * HOUR);
    ck_assert_int_eq(match, NH_TZ_UNIQUE);

    ck_assert_int_eq(local_to_utc(tz, 2026, 3, 8, 1, 59, 59, NH_TZ_EARLIER,
                                  &match), NEW_YORK_SPRING_2026 - 1);
    ck_assert_int_eq(match, NH_TZ_UNIQUE);

    ck_assert_int_eq(local_to_utc(tz, 2026, 3, 8, 3, 0, 0, NH_TZ_EARLIER,
                                  &match), NEW_YORK_SPRING_2026);
    ck_assert_int_eq(match, NH_TZ_UNIQUE);

    nh_tz_free(tz);
}
END_TEST


START_TEST(local_to_utc_gap_resolves_to_gap_end)
{
    nh_tz_match_e  match;
    nh_tz_t       *tz;

    tz = load_zone("America/New_York");

    /* 02:00 to 02:59:59 on 2026-03-08 do not exist. */
    ck_assert_int_eq(local_to_utc(tz, 2026, 3, 8, 2, 30, 0, NH_TZ_EARLIER,
                                  &match), NEW_YORK_SPRING_2026);
    ck_assert_int_eq(match, NH_TZ_GAP);

    ck_assert_int_eq(local_to_utc(tz, 2026, 3, 8, 2, 0, 0, NH_TZ_LATER,
                                  &match), NEW_YORK_SPRING_2026);
    ck_assert_int_eq(match, NH_TZ_GAP);

    ck_assert_int_eq(local_to_utc(tz, 2026, 3, 8, 2, 59, 59, NH_TZ_EARLIER,
                                  &match), NEW_YORK_SPRING_2026);
    ck_assert_int_eq(match, NH_TZ_GAP);

    nh_tz_free(tz);
}
END_TEST


START_TEST(local_to_utc_overlap_follows_policy)
{
    nh_tz_match_e  match;
    nh_tz_t       *tz;

    tz = load_zone("America/New_York");

    /* 01:30 on 2026-11-01 is 05:30Z in EDT and 06:30Z in EST. */
    ck_assert_int_eq(local_to_utc(tz, 2026, 11, 1, 1, 30, 0, NH_TZ_EARLIER,
                                  &match), NEW_YORK_FALL_2026 - HOUR / 2);
    ck_assert_int_eq(match, NH_TZ_OVERLAP);

    ck_assert_int_eq(local_to_utc(tz, 2026, 11, 1, 1, 30, 0, NH_TZ_LATER,
                                  &match), NEW_YORK_FALL_2026 + HOUR / 2);
    ck_assert_int_eq(match, NH_TZ_OVERLAP);

    ck_assert_int_eq(local_to_utc(tz, 2026, 11, 1, 1, 0, 0, NH_TZ_EARLIER,
                                  NULL), NEW_YORK_FALL_2026 - HOUR);
    ck_assert_int_eq(local_to_utc(tz, 2026, 11, 1, 1, 0, 0, NH_TZ_LATER,
                                  NULL), NEW_YORK_FALL_2026);

    /* 02:00 follows the second 01:59:59 and happens once. */
    ck_assert_int_eq(local_to_utc(tz, 2026, 11, 1, 2, 0, 0, NH_TZ_EARLIER,
                                  &match), NEW_YORK_FALL_2026 + HOUR);
    ck_assert_int_eq(match, NH_TZ_UNIQUE);

    nh_tz_free(tz);
}
END_TEST


START_TEST(local_to_utc_berlin_changes)
{
    nh_tz_match_e  match;
    nh_tz_t       *tz;

    tz = load_zone("Europe/Berlin");

    ck_assert_int_eq(local_to_utc(tz, 2026, 3, 29, 2, 30, 0, NH_TZ_EARLIER,
                                  &match), BERLIN_SPRING_2026);
    ck_assert_int_eq(match, NH_TZ_GAP);

    ck_assert_int_eq(local_to_utc(tz, 2026, 10, 25, 2, 30, 0, NH_TZ_EARLIER,
                                  &match), BERLIN_FALL_2026 - HOUR / 2);
    ck_assert_int_eq(match, NH_TZ_OVERLAP);

    ck_assert_int_eq(local_to_utc(tz, 2026, 10, 25, 2, 30, 0, NH_TZ_LATER,
                                  &match), BERLIN_FALL_2026 + HOUR / 2);

    nh_tz_free(tz);
}
END_TEST


START_TEST(local_to_utc_lord_howe_half_hour)
{
    nh_tz_match_e  match;
    nh_tz_t       *tz;

    tz = load_zone("Australia/Lord_Howe");

    /* On 2026-10-04 clocks move from 02:00 to 02:30. */
    ck_assert_int_eq(local_to_utc(tz, 2026, 10, 4, 2, 15, 0, NH_TZ_EARLIER,
                                  &match), LORD_HOWE_OCTOBER_2026);
    ck_assert_int_eq(match, NH_TZ_GAP);

    ck_assert_int_eq(local_to_utc(tz, 2026, 10, 4, 2, 30, 0, NH_TZ_EARLIER,
                                  &match), LORD_HOWE_OCTOBER_2026);
    ck_assert_int_eq(match, NH_TZ_UNIQUE);

    /* On 2026-04-05 clocks move from 02:00 back to 01:30. */
    ck_assert_int_eq(local_to_utc(tz, 2026, 4, 5, 1, 45, 0, NH_TZ_EARLIER,
                                  &match), LORD_HOWE_APRIL_2026 - 900);
    ck_assert_int_eq(match, NH_TZ_OVERLAP);

    ck_assert_int_eq(local_to_utc(tz, 2026, 4, 5, 1, 45, 0, NH_TZ_LATER,
                                  &match), LORD_HOWE_APRIL_2026 + 900);

    ck_assert_int_eq(local_to_utc(tz, 2026, 4, 5, 1, 29, 59, NH_TZ_LATER,
                                  &match), LORD_HOWE_APRIL_2026 - 1801);
    ck_assert_int_eq(match, NH_TZ_UNIQUE);

    nh_tz_free(tz);
}
END_TEST


START_TEST(local_to_utc_footer_gap_in_2100)
{
    nh_tz_match_e  match;
    nh_tz_t       *tz;

    tz = load_zone("America/New_York");

    ck_assert_int_eq(local_to_utc(tz, 2100, 3, 14, 2, 30, 0, NH_TZ_EARLIER,
                                  &match), NEW_YORK_SPRING_2100);
    ck_assert_int_eq(match, NH_TZ_GAP);

    ck_assert_int_eq(local_to_utc(tz, 2100, 11, 7, 1, 30, 0, NH_TZ_LATER,
                                  &match), NEW_YORK_FALL_2100 + HOUR / 2);
    ck_assert_int_eq(match, NH_TZ_OVERLAP);

    nh_tz_free(tz);
}
END_TEST


START_TEST(local_to_utc_rejects_invalid_wall_time)
{
    static const nh_tz_wall_t  walls[] = {
        { 2026, 2, 29, 12, 0, 0 },
        { 2026, 4, 31, 12, 0, 0 },
        { 2026, 13, 1, 12, 0, 0 },
        { 2026, 0, 1, 12, 0, 0 },
        { 2026, 1, 0, 12, 0, 0 },
        { 2026, 1, 1, 24, 0, 0 },
        { 2026, 1, 1, -1, 0, 0 },
        { 2026, 1, 1, 12, 60, 0 },
        { 2026, 1, 1, 12, 0, 60 },
        { 10000, 1, 1, 0, 0, 0 },
        { -1, 12, 31, 0, 0, 0 },
    };
    nh_tz_wall_t               valid = { 2028, 2, 29, 12, 0, 0 };
    nh_tz_t                   *tz;
    int64_t                    utc;
    size_t                     i;

    tz = load_zone("UTC");

    for (i = 0; i < ARRAY_LEN(walls); i++) {
        ck_assert_msg(nh_tz_local_to_utc(tz, &walls[i], NH_TZ_EARLIER, &utc,
                                         NULL) == NH_TZ_EINVAL,
                      "accepted wall time %zu", i);
    }

    ck_assert_int_eq(nh_tz_local_to_utc(tz, &valid, (nh_tz_overlap_e) 7,
                                        &utc, NULL), NH_TZ_EINVAL);
    ck_assert_int_eq(nh_tz_local_to_utc(tz, &valid, NH_TZ_EARLIER, &utc,
                                        NULL), NH_TZ_OK);

    nh_tz_free(tz);
}
END_TEST


START_TEST(local_to_utc_round_trips_utc_to_local)
{
    nh_tz_wall_t  wall;
    nh_tz_t      *tz;
    int64_t       t, utc;
    int32_t       off, later_off;
    int           i;

    tz = load_zone("Europe/Berlin");

    /* Instants every 1 h 17 min 31 s across 2026 and 2027. */
    for (i = 0; i < 14000; i++) {
        t = JANUARY_15_2026_NOON + (int64_t) i * 4651;

        ck_assert_int_eq(nh_tz_utc_to_local(tz, t, &wall, &off), NH_TZ_OK);
        ck_assert_int_eq(nh_tz_local_to_utc(tz, &wall, NH_TZ_EARLIER, &utc,
                                            NULL), NH_TZ_OK);

        /* The second pass of an overlap resolves to the earlier instant. */
        if (utc != t) {
            ck_assert_int_eq(nh_tz_utc_to_local(tz, utc, &wall, &later_off),
                             NH_TZ_OK);
            ck_assert_int_eq(utc, t - HOUR);
            ck_assert_int_eq(later_off, off + HOUR);
        }
    }

    nh_tz_free(tz);
}
END_TEST


/* Name sets */


START_TEST(names_load_system_set)
{
    static const char  *present[] = {
        "America/New_York",
        "Europe/Berlin",
        "Asia/Kolkata",
        "Australia/Lord_Howe",
        "UTC",
        "Etc/UTC",
        "US/Eastern",
    };
    static const char  *absent[] = {
        "posixrules",
        "localtime",
        "Factory",
        "posix/Europe/Berlin",
        "right/UTC",
        "Mars/Olympus_Mons",
        "europe/berlin",
        "America",
        "tzdata.zi",
        "zone.tab",
    };
    nh_tz_names_t      *set;
    size_t              i;

    ck_assert_int_eq(nh_tz_names_load(NULL, &set), NH_TZ_OK);
    ck_assert_uint_gt(nh_tz_names_count(set), 400);

    for (i = 0; i < ARRAY_LEN(present); i++) {
        ck_assert_msg(nh_tz_names_contains(set, present[i],
                                           strlen(present[i])),
                      "missing \"%s\"", present[i]);
    }

    for (i = 0; i < ARRAY_LEN(absent); i++) {
        ck_assert_msg(!nh_tz_names_contains(set, absent[i],
                                            strlen(absent[i])),
                      "contains \"%s\"", absent[i]);
    }

    for (i = 1; i < nh_tz_names_count(set); i++) {
        ck_assert_int_lt(strcmp(nh_tz_names_get(set, i - 1),
                                nh_tz_names_get(set, i)), 0);
    }

    ck_assert_ptr_null(nh_tz_names_get(set, nh_tz_names_count(set)));

    nh_tz_names_free(set);
}
END_TEST


START_TEST(names_contains_reads_len_bytes)
{
    nh_tz_names_t  *set;

    ck_assert_int_eq(nh_tz_names_load(NULL, &set), NH_TZ_OK);

    ck_assert(nh_tz_names_contains(set, "Europe/Berlin, Germany", 13));
    ck_assert(!nh_tz_names_contains(set, "Europe/Berlin", 12));
    ck_assert(!nh_tz_names_contains(set, "Europe/Berlin", 0));
    ck_assert(!nh_tz_names_contains(set, NULL, 0));

    nh_tz_names_free(set);
}
END_TEST


START_TEST(names_read_from_tzdata_zi)
{
    static const char  zi[] =
        "# version test\n"
        "R d 1916 o - Jun 14 23s 1 S\n"
        "Z Europe/Berlin 0:53:28 - LMT 1893 Ap\n"
        "1 c CE%sT\n"
        "Z UTC 0 - UTC\n"
        "Z Factory 0 - -00\n"
        "Z Europe/Missing 1 - CET\n"
        "L Europe/Berlin Europe/Busingen\n"
        "L UTC Etc/UTC\n"
        "L Europe/Berlin posix/Europe/Berlin\n"
        "L UTC right/UTC\n"
        "L UTC\n";
    nh_tz_names_t     *set;
    char              *dir, path[256];

    dir = make_temp_dir();
    copy_zone(dir, "Europe/Berlin");
    copy_zone(dir, "Europe/Busingen");
    copy_zone(dir, "UTC");
    copy_zone(dir, "Etc/UTC");
    copy_zone(dir, "Factory");
    copy_zone_as(dir, "Europe/Berlin", "posix/Europe/Berlin");
    copy_zone_as(dir, "UTC", "right/UTC");

    snprintf(path, sizeof(path), "%s/tzdata.zi", dir);
    write_file(path, zi, sizeof(zi) - 1);

    ck_assert_int_eq(nh_tz_names_load(dir, &set), NH_TZ_OK);

    /*
     * Factory and the posix/ and right/ names are excluded, and
     * Europe/Missing has no file.
     */
    ck_assert_uint_eq(nh_tz_names_count(set), 4);
    ck_assert_str_eq(nh_tz_names_get(set, 0), "Etc/UTC");
    ck_assert_str_eq(nh_tz_names_get(set, 1), "Europe/Berlin");
    ck_assert_str_eq(nh_tz_names_get(set, 2), "Europe/Busingen");
    ck_assert_str_eq(nh_tz_names_get(set, 3), "UTC");

    nh_tz_names_free(set);
    remove_tree(dir);
    free(dir);
}
END_TEST


START_TEST(names_walk_without_tzdata_zi)
{
    nh_tz_names_t  *set;
    char           *dir, path[256];

    dir = make_temp_dir();
    copy_zone(dir, "Europe/Berlin");
    copy_zone(dir, "America/Argentina/Salta");
    copy_zone(dir, "UTC");
    copy_zone(dir, "Factory");
    copy_zone(dir, "posixrules");
    copy_zone_as(dir, "UTC", "right/UTC");
    copy_zone_as(dir, "UTC", "posix/UTC");

    snprintf(path, sizeof(path), "%s/notes", dir);
    write_file(path, "not a zone\n", 11);
    snprintf(path, sizeof(path), "%s/zone.tab", dir);
    write_file(path, "TZif but a table\n", 17);

    ck_assert_int_eq(nh_tz_names_load(dir, &set), NH_TZ_OK);

    ck_assert_uint_eq(nh_tz_names_count(set), 3);
    ck_assert_str_eq(nh_tz_names_get(set, 0), "America/Argentina/Salta");
    ck_assert_str_eq(nh_tz_names_get(set, 1), "Europe/Berlin");
    ck_assert_str_eq(nh_tz_names_get(set, 2), "UTC");

    nh_tz_names_free(set);
    remove_tree(dir);
    free(dir);
}
END_TEST


START_TEST(names_reject_missing_or_empty_dir)
{
    nh_tz_names_t  *set;
    char           *dir;

    set = (nh_tz_names_t *) 1;
    ck_assert_int_eq(nh_tz_names_load("/nonexistent-zoneinfo", &set),
                     NH_TZ_ENOENT);
    ck_assert_ptr_null(set);

    dir = make_temp_dir();
    ck_assert_int_eq(nh_tz_names_load(dir, &set), NH_TZ_ENOENT);
    ck_assert_ptr_null(set);

    remove_tree(dir);
    free(dir);
}
END_TEST


START_TEST(strerror_describes_each_result)
{
    ck_assert_str_eq(nh_tz_strerror(NH_TZ_ENOENT), "zone file not found");
    ck_assert_str_eq(nh_tz_strerror(NH_TZ_EFORMAT),
                     "malformed or unsupported zone file");
    ck_assert_str_eq(nh_tz_strerror(-100), "unknown error");
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


static int32_t
offset_at(const nh_tz_t *tz, int64_t t)
{
    int32_t  off;

    ck_assert_int_eq(nh_tz_offset(tz, t, &off), NH_TZ_OK);

    return off;
}


static int64_t
local_to_utc(const nh_tz_t *tz, int y, int mo, int d, int h, int mi, int s,
    nh_tz_overlap_e policy, nh_tz_match_e *match)
{
    nh_tz_wall_t  wall = { y, mo, d, h, mi, s };
    int64_t       utc;

    ck_assert_int_eq(nh_tz_local_to_utc(tz, &wall, policy, &utc, match),
                     NH_TZ_OK);

    return utc;
}


static unsigned char *
read_file(const char *path, size_t *len)
{
    unsigned char  *data;
    FILE           *f;
    long            size;

    f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);

    ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
    size = ftell(f);
    ck_assert_int_gt(size, 0);
    rewind(f);

    data = malloc((size_t) size);
    ck_assert_ptr_nonnull(data);
    ck_assert_uint_eq(fread(data, 1, (size_t) size, f), (size_t) size);
    fclose(f);

    *len = (size_t) size;

    return data;
}


/* Writes a file, creating its parent directories. */
static void
write_file(const char *path, const void *data, size_t len)
{
    char   dir[256], *slash;
    FILE  *f;

    snprintf(dir, sizeof(dir), "%s", path);

    for (slash = strchr(dir + 1, '/'); slash != NULL;
         slash = strchr(slash + 1, '/'))
    {
        *slash = '\0';
        mkdir(dir, 0700);
        *slash = '/';
    }

    f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot create %s", path);
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
}


/* Copies the system zone file of name to dir/name. */
static void
copy_zone(const char *dir, const char *name)
{
    copy_zone_as(dir, name, name);
}


/* Copies the system zone file of name to dir/target. */
static void
copy_zone_as(const char *dir, const char *name, const char *target)
{
    unsigned char  *data;
    size_t          len;
    char            path[256];

    snprintf(path, sizeof(path), "%s/%s", NH_TZ_DEFAULT_DIR, name);
    data = read_file(path, &len);

    snprintf(path, sizeof(path), "%s/%s", dir, target);
    write_file(path, data, len);

    free(data);
}


static char *
make_temp_dir(void)
{
    char  *dir;

    dir = strdup("/tmp/check_tz.XXXXXX");
    ck_assert_ptr_nonnull(dir);
    ck_assert_ptr_nonnull(mkdtemp(dir));

    return dir;
}


/* Removes a directory that make_temp_dir() created, with its contents. */
static void
remove_tree(const char *path)
{
    ck_assert(strncmp(path, "/tmp/check_tz.", 14) == 0);
    ck_assert_int_eq(nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS), 0);
}


static int
remove_entry(const char *path, const struct stat *st, int flag,
    struct FTW *ftw)
{
    (void) st;
    (void) flag;
    (void) ftw;

    return remove(path);
}


static unsigned char *
put_u32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char) (v >> 24);
    p[1] = (unsigned char) (v >> 16);
    p[2] = (unsigned char) (v >> 8);
    p[3] = (unsigned char) v;

    return p + 4;
}


static unsigned char *
put_header(unsigned char *p, int version, size_t timecnt, size_t typecnt)
{
    memcpy(p, "TZif", 4);
    p[4] = (version == 1) ? 0 : (unsigned char) ('0' + version);
    memset(p + 5, 0, 15);
    p += 20;

    p = put_u32(p, 0);                    /* isutcnt */
    p = put_u32(p, 0);                    /* isstdcnt */
    p = put_u32(p, 0);                    /* leapcnt */
    p = put_u32(p, (uint32_t) timecnt);
    p = put_u32(p, (uint32_t) typecnt);

    return put_u32(p, 4);                 /* charcnt: "XXX\0" */
}


static unsigned char *
put_block(unsigned char *p, size_t time_size, const int64_t *times,
    const uint8_t *indices, size_t timecnt, const int32_t *offsets,
    size_t typecnt)
{
    size_t  i;

    for (i = 0; i < timecnt; i++) {
        if (time_size == 8) {
            p = put_u32(p, (uint32_t) ((uint64_t) times[i] >> 32));
        }

        p = put_u32(p, (uint32_t) times[i]);
    }

    for (i = 0; i < timecnt; i++) {
        *p++ = indices[i];
    }

    for (i = 0; i < typecnt; i++) {
        p = put_u32(p, (uint32_t) offsets[i]);
        *p++ = 0;                         /* isdst */
        *p++ = 0;                         /* desigidx */
    }

    memcpy(p, "XXX", 4);

    return p + 4;
}


/*
 * Writes a TZif file of the given version with all types named "XXX".
 * Versions 2 to 4 repeat the data in a 64-bit block and end with the
 * footer, which must not be NULL for them.
 */
static size_t
build_tzif(unsigned char *buf, int version, const int64_t *times,
    const uint8_t *indices, size_t timecnt, const int32_t *offsets,
    size_t typecnt, const char *footer)
{
    unsigned char  *p;

    p = put_header(buf, version, timecnt, typecnt);
    p = put_block(p, 4, times, indices, timecnt, offsets, typecnt);

    if (version == 1) {
        return (size_t) (p - buf);
    }

    p = put_header(p, version, timecnt, typecnt);
    p = put_block(p, 8, times, indices, timecnt, offsets, typecnt);

    *p++ = '\n';
    memcpy(p, footer, strlen(footer));
    p += strlen(footer);
    *p++ = '\n';

    return (size_t) (p - buf);
}


/* Parses a version 3 file without transitions, whose only type is offset. */
static nh_tz_t *
parse_footer_only(const char *footer, int32_t offset)
{
    unsigned char  buf[512];
    nh_tz_t       *tz;
    size_t         len;
    int            rc;

    len = build_tzif(buf, 3, NULL, NULL, 0, &offset, 1, footer);
    rc = nh_tz_parse(buf, len, &tz);
    ck_assert_msg(rc == NH_TZ_OK, "footer \"%s\": %s", footer,
                  nh_tz_strerror(rc));

    return tz;
}


Suite *
nh_tz_suite(void)
{
    Suite  *suite;
    TCase  *tc;

    suite = suite_create("tz");

    tc = tcase_create("name");
    tcase_add_test(tc, name_accepts_iana_names);
    tcase_add_test(tc, name_rejects_dot_dot_and_bad_syntax);
    tcase_add_test(tc, name_checks_exactly_len_bytes);
    suite_add_tcase(suite, tc);

    tc = tcase_create("load");
    tcase_add_test(tc, load_rejects_unknown_zone);
    tcase_add_test(tc, load_rejects_dot_dot_name);
    tcase_add_test(tc, load_reads_other_directory);
    tcase_add_test(tc, load_rejects_truncated_file);
    tcase_add_test(tc, load_rejects_wrong_magic);
    tcase_add_test(tc, load_rejects_trailing_bytes);
    tcase_add_test(tc, parse_rejects_bad_indices_and_order);
    tcase_add_test(tc, parse_rejects_leap_second_records);
    tcase_add_test(tc, parse_reads_version_1);
    tcase_add_test(tc, parse_reads_versions_2_to_4);
    tcase_add_test(tc, parse_rejects_footer_that_disagrees);
    tcase_add_test(tc, parse_rejects_malformed_footers);
    tcase_add_test(tc, load_every_system_zone);
    suite_add_tcase(suite, tc);

    tc = tcase_create("offset");
    tcase_add_test(tc, new_york_offsets_around_spring_gap);
    tcase_add_test(tc, new_york_offsets_around_fall_overlap);
    tcase_add_test(tc, berlin_offsets_around_2026_changes);
    tcase_add_test(tc, kolkata_has_fixed_half_hour_offset);
    tcase_add_test(tc, lord_howe_shifts_by_30_minutes);
    tcase_add_test(tc, utc_has_zero_offset);
    tcase_add_test(tc, footer_rule_applies_in_2100);
    tcase_add_test(tc, offset_rejects_out_of_range);
    suite_add_tcase(suite, tc);

    tc = tcase_create("footer");
    tcase_add_test(tc, footer_month_week_day_rules);
    tcase_add_test(tc, footer_julian_day_skips_february_29);
    tcase_add_test(tc, footer_quoted_half_hour_names);
    tcase_add_test(tc, footer_daylight_time_all_year);
    tcase_add_test(tc, footer_empty_keeps_last_type);
    suite_add_tcase(suite, tc);

    tc = tcase_create("wall");
    tcase_add_test(tc, utc_to_local_across_fall_overlap);
    tcase_add_test(tc, utc_to_local_crosses_midnight);
    tcase_add_test(tc, local_to_utc_unique_time);
    tcase_add_test(tc, local_to_utc_gap_resolves_to_gap_end);
    tcase_add_test(tc, local_to_utc_overlap_follows_policy);
    tcase_add_test(tc, local_to_utc_berlin_changes);
    tcase_add_test(tc, local_to_utc_lord_howe_half_hour);
    tcase_add_test(tc, local_to_utc_footer_gap_in_2100);
    tcase_add_test(tc, local_to_utc_rejects_invalid_wall_time);
    tcase_add_test(tc, local_to_utc_round_trips_utc_to_local);
    suite_add_tcase(suite, tc);

    tc = tcase_create("names");
    tcase_add_test(tc, names_load_system_set);
    tcase_add_test(tc, names_contains_reads_len_bytes);
    tcase_add_test(tc, names_read_from_tzdata_zi);
    tcase_add_test(tc, names_walk_without_tzdata_zi);
    tcase_add_test(tc, names_reject_missing_or_empty_dir);
    tcase_add_test(tc, strerror_describes_each_result);
    suite_add_tcase(suite, tc);

    return suite;
}
