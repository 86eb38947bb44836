#include "nh_quiet.h"

#include <time.h>


#define NH_QUIET_SECONDS_PER_DAY  86400


static int nh_quiet_occurrence(const nh_tz_t *tz, const nh_tz_wall_t *date,
    int days, int start_min, int end_min, int64_t *start, int64_t *end);
static int nh_quiet_resolve(const nh_tz_t *tz, const nh_tz_wall_t *date,
    int days, int minutes, int64_t *utc);


int
nh_quiet_parse_hhmm(const char *s, size_t len, int *minutes)
{
    int  hour, minute;

    if (s == NULL || len != 5 || s[2] != ':'
        || s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9'
        || s[3] < '0' || s[3] > '9' || s[4] < '0' || s[4] > '9')
    {
        return NH_TZ_EINVAL;
    }

    hour = (s[0] - '0') * 10 + (s[1] - '0');
    minute = (s[3] - '0') * 10 + (s[4] - '0');

    if (hour > 23 || minute > 59) {
        return NH_TZ_EINVAL;
    }

    *minutes = hour * 60 + minute;

    return 0;
}


int
nh_quiet_format_hhmm(int minutes, char out[6])
{
    if (minutes < 0 || minutes >= NH_QUIET_MINUTES_PER_DAY) {
        return NH_TZ_EINVAL;
    }

    out[0] = (char) ('0' + minutes / 600);
    out[1] = (char) ('0' + minutes / 60 % 10);
    out[2] = ':';
    out[3] = (char) ('0' + minutes % 60 / 10);
    out[4] = (char) ('0' + minutes % 10);
    out[5] = '\0';

    return 0;
}


int
nh_quiet_window_is_valid(int start_min, int end_min)
{
    return start_min >= 0 && start_min < NH_QUIET_MINUTES_PER_DAY
           && end_min >= 0 && end_min < NH_QUIET_MINUTES_PER_DAY
           && start_min != end_min;
}


/*
 * The occurrences of the days around now's local date are checked too.
 * The one of the day before may still run. A backward shift across
 * midnight can make now's local date earlier than the date of an
 * occurrence that has begun.
 */
int
nh_quiet_check(const nh_tz_t *tz, int start_min, int end_min,
    int64_t now_utc_sec, int *inside, int64_t *end_utc_sec)
{
    nh_tz_wall_t  today;
    int64_t       start, end, latest_end;
    int           day, found, rc;

    if (!nh_quiet_window_is_valid(start_min, end_min)) {
        return NH_TZ_EINVAL;
    }

    if (now_utc_sec < NH_TZ_TIME_MIN + 3 * NH_QUIET_SECONDS_PER_DAY
        || now_utc_sec > NH_TZ_TIME_MAX - 3 * NH_QUIET_SECONDS_PER_DAY)
    {
        return NH_TZ_ERANGE;
    }

    rc = nh_tz_utc_to_local(tz, now_utc_sec, &today, NULL);

    if (rc != NH_TZ_OK) {
        return rc;
    }

    found = 0;
    latest_end = 0;

    for (day = -2; day <= 1; day++) {
        rc = nh_quiet_occurrence(tz, &today, day, start_min, end_min,
                                 &start, &end);

        if (rc != NH_TZ_OK) {
            return rc;
        }

        if (start <= now_utc_sec && now_utc_sec < end) {
            if (!found || end > latest_end) {
                latest_end = end;
            }

            found = 1;
        }
    }

    *inside = found;
    *end_utc_sec = latest_end;

    return 0;
}


/* The start and end instants of the occurrence of the day date + days. */
static int
nh_quiet_occurrence(const nh_tz_t *tz, const nh_tz_wall_t *date, int days,
    int start_min, int end_min, int64_t *start, int64_t *end)
{
    int  rc;

    rc = nh_quiet_resolve(tz, date, days, start_min, start);

    if (rc != NH_TZ_OK) {
        return rc;
    }

    if (end_min < start_min) {
        days++;
    }

    return nh_quiet_resolve(tz, date, days, end_min, end);
}


/*
 * Resolves the wall time minutes after midnight on the day date + days,
 * taking the earlier instant of a repeated time and the end of a skipped
 * one.
 */
static int
nh_quiet_resolve(const nh_tz_t *tz, const nh_tz_wall_t *date, int days,
    int minutes, int64_t *utc)
{
    nh_tz_wall_t  wall;
    struct tm     tm;
    time_t        midnight;

    /* Calendar arithmetic in UTC, where every day has 86400 seconds. */
    tm = (struct tm) {
        .tm_year = date->year - 1900,
        .tm_mon = date->month - 1,
        .tm_mday = date->day,
    };

    midnight = timegm(&tm) + (time_t) days * NH_QUIET_SECONDS_PER_DAY;

    if (gmtime_r(&midnight, &tm) == NULL) {
        return NH_TZ_ERANGE;
    }

    wall = (nh_tz_wall_t) {
        .year = tm.tm_year + 1900,
        .month = tm.tm_mon + 1,
        .day = tm.tm_mday,
        .hour = minutes / 60,
        .minute = minutes % 60,
        .second = 0,
    };

    return nh_tz_local_to_utc(tz, &wall, NH_TZ_EARLIER, utc, NULL);
}
