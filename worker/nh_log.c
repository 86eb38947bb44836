#include "nh_log.h"

#include "nh_time.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>


#define NH_LOG_LINE_MAX     4096
#define NH_LOG_VALUE_MAX    512
#define NH_LOG_QUOTE_SLOTS  8
/* Worst case of a quoted value: every byte escaped as \xHH, quotes, "...". */
#define NH_LOG_QUOTE_SIZE   (NH_LOG_VALUE_MAX * 4 + 8)


static nh_log_level_e  nh_log_level = NH_LOG_INFO;

static const char  *nh_log_level_names[] = { "debug", "info", "warn", "error" };


static int nh_log_needs_quotes(const char *value);


int
nh_log_level_parse(const char *name, nh_log_level_e *out)
{
    size_t  i;

    for (i = 0; i < sizeof(nh_log_level_names) / sizeof(char *); i++) {
        if (strcmp(name, nh_log_level_names[i]) == 0) {
            *out = (nh_log_level_e) i;
            return 0;
        }
    }

    return -1;
}


void
nh_log_set_level(nh_log_level_e level)
{
    nh_log_level = level;
}


int
nh_log_enabled(nh_log_level_e level)
{
    return level >= nh_log_level;
}


void
nh_log(nh_log_level_e level, const char *msg, const char *fmt, ...)
{
    char     line[NH_LOG_LINE_MAX];
    char     now[NH_RFC3339_LEN + 1];
    size_t   len;
    int      n;
    va_list  args;

    if (level < nh_log_level) {
        return;
    }

    nh_time_format_rfc3339(nh_time_now_ms(), now);

    n = snprintf(line, sizeof(line), "%s level=%s msg=%s", now,
                 nh_log_level_names[level], nh_log_quote(msg));
    len = (n < 0) ? 0 : (size_t) n;

    if (fmt != NULL && fmt[0] != '\0' && len < sizeof(line) - 2) {
        line[len++] = ' ';

        va_start(args, fmt);
        n = vsnprintf(line + len, sizeof(line) - len, fmt, args);
        va_end(args);

        if (n > 0) {
            len += (size_t) n;
        }
    }

    if (len > sizeof(line) - 2) {
        len = sizeof(line) - 2;
    }

    line[len++] = '\n';

    /* A failed write of a log line has nowhere to be reported. */
    if (write(STDERR_FILENO, line, len) < 0) {
        return;
    }
}


const char *
nh_log_quote(const char *value)
{
    static __thread char      slots[NH_LOG_QUOTE_SLOTS][NH_LOG_QUOTE_SIZE];
    static __thread unsigned  next;
    static const char         hex[] = "0123456789abcdef";
    char                     *out, *p;
    unsigned char             c;
    size_t                    i;

    if (value == NULL) {
        return "null";
    }

    if (!nh_log_needs_quotes(value)) {
        if (strlen(value) <= NH_LOG_VALUE_MAX) {
            return value;
        }
    }

    out = slots[next++ % NH_LOG_QUOTE_SLOTS];
    p = out;
    *p++ = '"';

    for (i = 0; value[i] != '\0'; i++) {
        if (i == NH_LOG_VALUE_MAX) {
            memcpy(p, "...", 3);
            p += 3;
            break;
        }

        c = (unsigned char) value[i];

        switch (c) {
        case '"':
        case '\\':
            *p++ = '\\';
            *p++ = (char) c;
            break;
        case '\n':
            *p++ = '\\';
            *p++ = 'n';
            break;
        case '\r':
            *p++ = '\\';
            *p++ = 'r';
            break;
        case '\t':
            *p++ = '\\';
            *p++ = 't';
            break;
        default:
            if (c < 0x20 || c == 0x7f) {
                *p++ = '\\';
                *p++ = 'x';
                *p++ = hex[c >> 4];
                *p++ = hex[c & 0xf];
            } else {
                *p++ = (char) c;
            }
        }
    }

    *p++ = '"';
    *p = '\0';

    return out;
}


static int
nh_log_needs_quotes(const char *value)
{
    const unsigned char  *p;

    if (value[0] == '\0') {
        return 1;
    }

    for (p = (const unsigned char *) value; *p != '\0'; p++) {
        if (*p <= ' ' || *p == '"' || *p == '=' || *p == '\\'
            || *p == 0x7f)
        {
            return 1;
        }
    }

    return 0;
}
