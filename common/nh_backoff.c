#include "nh_backoff.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>


/* "Sun, 06 Nov 1994 08:49:37 GMT" */
#define NH_BACKOFF_IMF_FIXDATE_LEN  29


static int nh_backoff_parse_seconds(const char *s, size_t len,
    int64_t *delay_ms);
static int nh_backoff_parse_date(const char *s, size_t len, int64_t *unix_ms);
static int nh_backoff_digits(const char *s, size_t n, int *out);


int64_t
nh_backoff_cap_ms(int attempt, int64_t base_ms, int64_t max_ms)
{
    int64_t  cap;
    int      i;

    if (base_ms < 0) {
        base_ms = 0;
    }

    if (max_ms < 0) {
        max_ms = 0;
    }

    cap = base_ms;

    /* A cap over max_ms / 2 becomes max_ms instead of doubling, so the
     * doubling cannot overflow. */
    for (i = 1; i < attempt && cap < max_ms; i++) {
        cap = cap > max_ms / 2 ? max_ms : cap * 2;
    }

    return cap < max_ms ? cap : max_ms;
}


int64_t
nh_backoff_delay_ms(int attempt, int64_t base_ms, int64_t max_ms,
    int64_t retry_after_ms, nh_backoff_random_pt random, void *ctx)
{
    uint64_t  cap;
    int64_t   delay;

    cap = (uint64_t) nh_backoff_cap_ms(attempt, base_ms, max_ms);

    /* A modulo of a 64-bit number by a cap far below 2^64 is uniform
     * enough for spreading retries. */
    delay = (int64_t) (random(ctx) % (cap + 1));

    return delay > retry_after_ms ? delay : retry_after_ms;
}


int
nh_backoff_parse_retry_after(const char *value, int64_t now_ms,
    int64_t *delay_ms)
{
    const char  *start, *end;
    int64_t      at_ms, delay;
    size_t       len;

    if (value == NULL) {
        return -1;
    }

    start = value;
    while (*start == ' ' || *start == '\t') {
        start++;
    }

    end = start + strlen(start);
    while (end > start && (end[-1] == ' ' || end[-1] == '\t')) {
        end--;
    }

    len = (size_t) (end - start);
    if (len == 0) {
        return -1;
    }

    if (start[0] >= '0' && start[0] <= '9') {
        return nh_backoff_parse_seconds(start, len, delay_ms);
    }

    if (nh_backoff_parse_date(start, len, &at_ms) != 0) {
        return -1;
    }

    delay = at_ms - now_ms;
    if (delay < 0) {
        delay = 0;
    }

    *delay_ms = delay < NH_BACKOFF_RETRY_AFTER_MAX_MS
                ? delay : NH_BACKOFF_RETRY_AFTER_MAX_MS;

    return 0;
}


uint64_t
nh_backoff_random(void *ctx)
{
    static uint64_t  state;
    struct timespec  ts;
    uint64_t         r;

    (void) ctx;

    if (getrandom(&r, sizeof(r), GRND_NONBLOCK) == (ssize_t) sizeof(r)) {
        return r;
    }

    if (state == 0) {
        clock_gettime(CLOCK_REALTIME, &ts);
        state = ((uint64_t) ts.tv_sec << 30) ^ (uint64_t) ts.tv_nsec
                ^ 0x9e3779b97f4a7c15ULL;
    }

    /* One xorshift64 step, with the shifts 13, 7 and 17. */
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;

    return state;
}


/* Parses delay-seconds: one or more digits only. */
static int
nh_backoff_parse_seconds(const char *s, size_t len, int64_t *delay_ms)
{
    int64_t  seconds;
    size_t   i;

    seconds = 0;

    for (i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }

        /* Past the maximum the value is clamped; the digits are still
         * checked. */
        if (seconds <= NH_BACKOFF_RETRY_AFTER_MAX_MS / 1000) {
            seconds = seconds * 10 + (s[i] - '0');
        }
    }

    if (seconds > NH_BACKOFF_RETRY_AFTER_MAX_MS / 1000) {
        seconds = NH_BACKOFF_RETRY_AFTER_MAX_MS / 1000;
    }

    *delay_ms = seconds * 1000;

    return 0;
}


/* Parses an IMF-fixdate, "Sun, 06 Nov 1994 08:49:37 GMT", in UTC. */
static int
nh_backoff_parse_date(const char *s, size_t len, int64_t *unix_ms)
{
    static const char  *days[] = {
        "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"
    };
    static const char  *months[] = {
        "Jan", "Feb", "Mar", "Apr", "May", "Jun",
        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"
    };
    static const int    month_days[] = {
        31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31
    };
    struct tm           tm;
    int                 i, day, month, year, hour, minute, second, leap;

    if (len != NH_BACKOFF_IMF_FIXDATE_LEN
        || s[3] != ',' || s[4] != ' ' || s[7] != ' ' || s[11] != ' '
        || s[16] != ' ' || s[19] != ':' || s[22] != ':'
        || memcmp(s + 25, " GMT", 4) != 0)
    {
        return -1;
    }

    for (i = 0; i < 7; i++) {
        if (memcmp(s, days[i], 3) == 0) {
            break;
        }
    }

    if (i == 7) {
        return -1;
    }

    month = 0;
    for (i = 0; i < 12; i++) {
        if (memcmp(s + 8, months[i], 3) == 0) {
            month = i + 1;
            break;
        }
    }

    if (month == 0
        || nh_backoff_digits(s + 5, 2, &day) != 0
        || nh_backoff_digits(s + 12, 4, &year) != 0
        || nh_backoff_digits(s + 17, 2, &hour) != 0
        || nh_backoff_digits(s + 20, 2, &minute) != 0
        || nh_backoff_digits(s + 23, 2, &second) != 0)
    {
        return -1;
    }

    leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;

    if (day < 1 || day > month_days[month - 1]
        || (month == 2 && day == 29 && !leap)
        || hour > 23 || minute > 59 || second > 59)
    {
        return -1;
    }

    memset(&tm, 0, sizeof(tm));
    tm.tm_year = year - 1900;
    tm.tm_mon = month - 1;
    tm.tm_mday = day;
    tm.tm_hour = hour;
    tm.tm_min = minute;
    tm.tm_sec = second;

    *unix_ms = (int64_t) timegm(&tm) * 1000;

    return 0;
}


static int
nh_backoff_digits(const char *s, size_t n, int *out)
{
    size_t  i;
    int     v;

    v = 0;
    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }

        v = v * 10 + (s[i] - '0');
    }

    *out = v;
    return 0;
}
