#ifndef NH_BACKOFF_H
#define NH_BACKOFF_H

#include <stddef.h>
#include <stdint.h>

/*
 * Retry delays of failed deliveries: exponential backoff with full jitter,
 * raised to the provider's Retry-After when that is longer.
 */

/* Upper bound of a Retry-After delay that is honoured: one day. */
#define NH_BACKOFF_RETRY_AFTER_MAX_MS  (86400LL * 1000)

/* A source of uniformly distributed 64-bit random numbers. */
typedef uint64_t (*nh_backoff_random_pt)(void *ctx);

/*
 * Returns the largest delay of the given attempt (from 1) in
 * milliseconds: min(max_ms, base_ms * 2^(attempt - 1)), without
 * overflow. An attempt below 1 counts as 1, and a negative base or
 * maximum as 0.
 */
int64_t nh_backoff_cap_ms(int attempt, int64_t base_ms, int64_t max_ms);

/*
 * Returns the delay before the attempt after the given one, in
 * milliseconds: a random value in [0, nh_backoff_cap_ms()] (full jitter)
 * drawn from random, but never less than retry_after_ms (0 when the
 * provider sent none).
 */
int64_t nh_backoff_delay_ms(int attempt, int64_t base_ms, int64_t max_ms,
    int64_t retry_after_ms, nh_backoff_random_pt random, void *ctx);

/*
 * Parses an HTTP Retry-After value (RFC 9110, section 10.2.3): a number
 * of seconds, or an HTTP date in the IMF-fixdate form
 * "Sun, 06 Nov 1994 08:49:37 GMT". Surrounding spaces and tabs are
 * ignored. A date is turned into a delay from now_ms (the current Unix
 * time in milliseconds); a date in the past is a delay of 0. Delays above
 * NH_BACKOFF_RETRY_AFTER_MAX_MS are clamped to it. Returns 0 and the
 * delay in milliseconds, or -1 when the value is not valid.
 */
int nh_backoff_parse_retry_after(const char *value, int64_t now_ms,
    int64_t *delay_ms);

/*
 * Returns a random 64-bit number from getrandom(2), or from a
 * xorshift generator seeded from the clock when getrandom(2) fails. ctx
 * is unused. This is the random source of the workers; it is not meant
 * for secrets.
 */
uint64_t nh_backoff_random(void *ctx);

#endif /* NH_BACKOFF_H */
