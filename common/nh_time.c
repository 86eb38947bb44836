#include "nh_time.h"

#include <time.h>


/*
 * The range of a four-digit year: 0000-01-01T00:00:00.000Z to
 * 9999-12-31T23:59:59.999Z.
 */
#define NH_TIME_MIN_MS  (-62167219200000LL)
#define NH_TIME_MAX_MS  253402300799999LL


static char *nh_time_put_digits(char *p, int value, int width);
static int nh_time_get_digits(const char *s, int width, int *value);
static int nh_time_is_leap_year(int year);
static int nh_time_days_in_month(int year, int month);


int64_t
nh_time_now_ms(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_REALTIME, &ts);

    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


int64_t
nh_time_monotonic_ms(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


size_t
nh_time_format_rfc3339(int64_t unix_ms, char out[NH_RFC3339_LEN + 1])
{
    struct tm   tm;
    time_t      seconds;
    int64_t     millis;
    char       *p;

    if (unix_ms < NH_TIME_MIN_MS) {
        unix_ms = NH_TIME_MIN_MS;

    } else if (unix_ms > NH_TIME_MAX_MS) {
        unix_ms = NH_TIME_MAX_MS;
    }

    /* Floor division, so that times before 1970 keep 0-999 milliseconds. */
    millis = unix_ms % 1000;

    if (millis < 0) {
        millis += 1000;
    }

    seconds = (time_t) ((unix_ms - millis) / 1000);

    gmtime_r(&seconds, &tm);

    p = out;
    p = nh_time_put_digits(p, tm.tm_year + 1900, 4);
    *p++ = '-';
    p = nh_time_put_digits(p, tm.tm_mon + 1, 2);
    *p++ = '-';
    p = nh_time_put_digits(p, tm.tm_mday, 2);
    *p++ = 'T';
    p = nh_time_put_digits(p, tm.tm_hour, 2);
    *p++ = ':';
    p = nh_time_put_digits(p, tm.tm_min, 2);
    *p++ = ':';
    p = nh_time_put_digits(p, tm.tm_sec, 2);
    *p++ = '.';
    p = nh_time_put_digits(p, (int) millis, 3);
    *p++ = 'Z';
    *p = '\0';

    return NH_RFC3339_LEN;
}


int
nh_time_parse_rfc3339(const char *s, size_t len, int64_t *unix_ms)
{
    struct tm   tm;
    time_t      seconds;
    size_t      i, digits;
    int         year, month, day, hour, minute, second, millis;
    int         offset_hour, offset_minute, offset_minutes, sign;

    /* The shortest valid text, "YYYY-MM-DDTHH:MM:SSZ", has 20 bytes. */
    if (s == NULL || len < 20) {
        return -1;
    }

    if (nh_time_get_digits(s, 4, &year) != 0 || s[4] != '-'
        || nh_time_get_digits(s + 5, 2, &month) != 0 || s[7] != '-'
        || nh_time_get_digits(s + 8, 2, &day) != 0
        || (s[10] != 'T' && s[10] != 't')
        || nh_time_get_digits(s + 11, 2, &hour) != 0 || s[13] != ':'
        || nh_time_get_digits(s + 14, 2, &minute) != 0 || s[16] != ':'
        || nh_time_get_digits(s + 17, 2, &second) != 0)
    {
        return -1;
    }

    if (month < 1 || month > 12
        || day < 1 || day > nh_time_days_in_month(year, month)
        || hour > 23 || minute > 59 || second > 59)
    {
        return -1;
    }

    i = 19;
    millis = 0;

    /* Digits past the third are checked and dropped, not rounded. */
    if (s[i] == '.') {
        i++;
        digits = 0;

        while (i < len && s[i] >= '0' && s[i] <= '9') {
            if (digits < 3) {
                millis = millis * 10 + (s[i] - '0');
            }

            digits++;
            i++;
        }

        if (digits == 0 || digits > 9) {
            return -1;
        }

        for (; digits < 3; digits++) {
            millis *= 10;
        }
    }

    if (i >= len) {
        return -1;
    }

    offset_minutes = 0;

    if (s[i] == 'Z' || s[i] == 'z') {
        i++;

    } else if (s[i] == '+' || s[i] == '-') {
        sign = (s[i] == '-') ? -1 : 1;
        i++;

        if (len - i < 5
            || nh_time_get_digits(s + i, 2, &offset_hour) != 0
            || s[i + 2] != ':'
            || nh_time_get_digits(s + i + 3, 2, &offset_minute) != 0
            || offset_hour > 23 || offset_minute > 59)
        {
            return -1;
        }

        offset_minutes = sign * (offset_hour * 60 + offset_minute);
        i += 5;

    } else {
        return -1;
    }

    if (i != len) {
        return -1;
    }

    tm = (struct tm) {
        .tm_year = year - 1900,
        .tm_mon = month - 1,
        .tm_mday = day,
        .tm_hour = hour,
        .tm_min = minute,
        .tm_sec = second,
    };

    seconds = timegm(&tm);

    *unix_ms = ((int64_t) seconds - (int64_t) offset_minutes * 60) * 1000
               + millis;

    return 0;
}


static char *
nh_time_put_digits(char *p, int value, int width)
{
    int  i;

    for (i = width - 1; i >= 0; i--) {
        p[i] = (char) ('0' + value % 10);
        value /= 10;
    }

    return p + width;
}


/* Reads exactly width decimal digits. */
static int
nh_time_get_digits(const char *s, int width, int *value)
{
    int  i, n;

    n = 0;

    for (i = 0; i < width; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }

        n = n * 10 + (s[i] - '0');
    }

    *value = n;

    return 0;
}


static int
nh_time_is_leap_year(int year)
{
    return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}


static int
nh_time_days_in_month(int year, int month)
{
    static const int  days[12] = {
        31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31
    };

    if (month == 2 && nh_time_is_leap_year(year)) {
        return 29;
    }

    return days[month - 1];
}
