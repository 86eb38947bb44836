#ifndef NH_LOG_H
#define NH_LOG_H

/*
 * Structured log lines on standard error, one line per event:
 *
 *   2026-12-04T19:15:05.123Z level=info msg="notification sent" key=value
 *
 * Safe to call from any thread, librdkafka's included: each line is
 * written with one write(2) call.
 */

typedef enum {
    NH_LOG_DEBUG = 0,
    NH_LOG_INFO,
    NH_LOG_WARN,
    NH_LOG_ERROR
} nh_log_level_e;

/*
 * Parses a level name: "debug", "info", "warn" or "error". Returns 0 and
 * the level, or -1 for any other name.
 */
int nh_log_level_parse(const char *name, nh_log_level_e *out);

/* Sets the lowest level that is written. The default is NH_LOG_INFO. */
void nh_log_set_level(nh_log_level_e level);

/* Returns 1 when lines of that level are written, else 0. */
int nh_log_enabled(nh_log_level_e level);

/*
 * Writes one line: the time, the level, msg in quotes, then the fields
 * made from fmt ("key=value" pairs separated by spaces; fmt may be NULL).
 * A value that may contain spaces, quotes or '=' must be passed through
 * nh_log_quote(). Lines longer than 4 KiB are cut.
 */
void nh_log(nh_log_level_e level, const char *msg, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Returns value as one logfmt token: unchanged when it is a non-empty run
 * of printable characters other than space, '"' and '='; otherwise in
 * double quotes with '"', '\' and control characters escaped. NULL
 * becomes "null". Values longer than 512 bytes are cut and end in "...".
 * The result lives in a per-thread ring of 8 buffers, so up to 8 calls
 * can appear in the arguments of one nh_log call.
 */
const char *nh_log_quote(const char *value);

#endif /* NH_LOG_H */
