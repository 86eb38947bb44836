#ifndef NH_TIME_H
#define NH_TIME_H

#include <stddef.h>
#include <stdint.h>

/* "2026-12-04T19:15:05.123Z" is 24 characters. */
#define NH_RFC3339_LEN  24

/* Returns the wall-clock time in milliseconds since the Unix epoch. */
int64_t nh_time_now_ms(void);

/* Returns a monotonic clock in milliseconds, for measuring durations. */
int64_t nh_time_monotonic_ms(void);

/*
 * Formats a Unix time in milliseconds as RFC 3339 in UTC with
 * milliseconds, and a NUL. Times outside the years 0000 to 9999 are
 * clamped to the first or last millisecond of that range. Returns
 * NH_RFC3339_LEN.
 */
size_t nh_time_format_rfc3339(int64_t unix_ms, char out[NH_RFC3339_LEN + 1]);

/*
 * Parses RFC 3339 ("2026-12-04T19:15:05Z", optional fraction of up to 9
 * digits, "Z" or a "+hh:mm"/"-hh:mm" offset) of exactly len bytes. 'T'
 * and 'Z' may be lower case. Fraction digits past milliseconds are
 * dropped, not rounded. A leap second (second 60) is rejected. Returns 0
 * and the Unix time in milliseconds, or -1 when the text is not a valid
 * time.
 */
int nh_time_parse_rfc3339(const char *s, size_t len, int64_t *unix_ms);

#endif /* NH_TIME_H */
