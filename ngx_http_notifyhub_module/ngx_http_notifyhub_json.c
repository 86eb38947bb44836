
/*
 * JSON text written straight into a pool buffer, and the notification
 * object: built here from stored columns or from an accepted request, so
 * that PostgreSQL only stores and reads rows.
 */


#include "ngx_http_notifyhub_module.h"


typedef enum {
    NGX_HTTP_NOTIFYHUB_FIELD_STRING = 0,
    NGX_HTTP_NOTIFYHUB_FIELD_RAW,        /* JSON text or a number */
    NGX_HTTP_NOTIFYHUB_FIELD_TIME
} ngx_http_notifyhub_field_kind_e;


typedef struct {
    ngx_str_t                         name;
    ngx_http_notifyhub_field_kind_e   kind;
} ngx_http_notifyhub_field_t;


static ngx_int_t ngx_http_notifyhub_jbuf_reserve(ngx_http_notifyhub_jbuf_t *jb,
    size_t size);
static ngx_int_t ngx_http_notifyhub_pg_time(const u_char *p, size_t len,
    u_char *out);


/*
 * The members of the notification object, in the order of the API
 * reference and of NGX_HTTP_NOTIFYHUB_NOTIFICATION_COLUMNS.
 */
static ngx_http_notifyhub_field_t  ngx_http_notifyhub_notification_fields[] = {
    { ngx_string("id"), NGX_HTTP_NOTIFYHUB_FIELD_STRING },
    { ngx_string("channel"), NGX_HTTP_NOTIFYHUB_FIELD_STRING },
    { ngx_string("status"), NGX_HTTP_NOTIFYHUB_FIELD_STRING },
    { ngx_string("priority"), NGX_HTTP_NOTIFYHUB_FIELD_STRING },
    { ngx_string("recipientId"), NGX_HTTP_NOTIFYHUB_FIELD_STRING },
    { ngx_string("to"), NGX_HTTP_NOTIFYHUB_FIELD_RAW },
    { ngx_string("templateId"), NGX_HTTP_NOTIFYHUB_FIELD_STRING },
    { ngx_string("templateVersion"), NGX_HTTP_NOTIFYHUB_FIELD_RAW },
    { ngx_string("subject"), NGX_HTTP_NOTIFYHUB_FIELD_STRING },
    { ngx_string("body"), NGX_HTTP_NOTIFYHUB_FIELD_STRING },
    { ngx_string("html"), NGX_HTTP_NOTIFYHUB_FIELD_STRING },
    { ngx_string("data"), NGX_HTTP_NOTIFYHUB_FIELD_RAW },
    { ngx_string("metadata"), NGX_HTTP_NOTIFYHUB_FIELD_RAW },
    { ngx_string("idempotencyKey"), NGX_HTTP_NOTIFYHUB_FIELD_STRING },
    { ngx_string("scheduledAt"), NGX_HTTP_NOTIFYHUB_FIELD_TIME },
    { ngx_string("attempts"), NGX_HTTP_NOTIFYHUB_FIELD_RAW },
    { ngx_string("nextAttemptAt"), NGX_HTTP_NOTIFYHUB_FIELD_TIME },
    { ngx_string("lastError"), NGX_HTTP_NOTIFYHUB_FIELD_STRING },
    { ngx_string("provider"), NGX_HTTP_NOTIFYHUB_FIELD_STRING },
    { ngx_string("providerMessageId"), NGX_HTTP_NOTIFYHUB_FIELD_STRING },
    { ngx_string("createdAt"), NGX_HTTP_NOTIFYHUB_FIELD_TIME },
    { ngx_string("updatedAt"), NGX_HTTP_NOTIFYHUB_FIELD_TIME },
    { ngx_string("sentAt"), NGX_HTTP_NOTIFYHUB_FIELD_TIME },
    { ngx_string("deliveredAt"), NGX_HTTP_NOTIFYHUB_FIELD_TIME },
    { ngx_string("failedAt"), NGX_HTTP_NOTIFYHUB_FIELD_TIME }
};


ngx_int_t
ngx_http_notifyhub_jbuf_init(ngx_http_notifyhub_jbuf_t *jb, ngx_pool_t *pool,
    size_t size)
{
    jb->pool = pool;

    jb->start = ngx_pnalloc(pool, size);
    if (jb->start == NULL) {
        return NGX_ERROR;
    }

    jb->pos = jb->start;
    jb->end = jb->start + size;

    return NGX_OK;
}


/*
 * Makes room for size more bytes. The buffer at least doubles each time,
 * so the copies cost at most the final size.
 */
static ngx_int_t
ngx_http_notifyhub_jbuf_reserve(ngx_http_notifyhub_jbuf_t *jb, size_t size)
{
    u_char  *p;
    size_t   used, cap;

    if ((size_t) (jb->end - jb->pos) >= size) {
        return NGX_OK;
    }

    used = jb->pos - jb->start;
    cap = ngx_max(2 * (size_t) (jb->end - jb->start), used + size);

    p = ngx_pnalloc(jb->pool, cap);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(p, jb->start, used);
    ngx_pfree(jb->pool, jb->start);

    jb->start = p;
    jb->pos = p + used;
    jb->end = p + cap;

    return NGX_OK;
}


ngx_int_t
ngx_http_notifyhub_jbuf_raw(ngx_http_notifyhub_jbuf_t *jb, const void *data,
    size_t len)
{
    if (ngx_http_notifyhub_jbuf_reserve(jb, len) != NGX_OK) {
        return NGX_ERROR;
    }

    jb->pos = ngx_cpymem(jb->pos, data, len);

    return NGX_OK;
}


/*
 * Appends data as a JSON string. Quotes, backslashes and control
 * characters are escaped, and other bytes, UTF-8 included, are copied.
 */
ngx_int_t
ngx_http_notifyhub_jbuf_string(ngx_http_notifyhub_jbuf_t *jb,
    const u_char *data, size_t len)
{
    u_char       c, *p;
    size_t       i;

    static const u_char  hex[] = "0123456789abcdef";

    /* An input byte takes at most six output bytes, as in \u001f. */
    if (ngx_http_notifyhub_jbuf_reserve(jb, 6 * len + 2) != NGX_OK) {
        return NGX_ERROR;
    }

    p = jb->pos;
    *p++ = '"';

    for (i = 0; i < len; i++) {
        c = data[i];

        if (c >= 0x20 && c != '"' && c != '\\') {
            *p++ = c;
            continue;
        }

        *p++ = '\\';

        switch (c) {
        case '"':
        case '\\':
            *p++ = c;
            break;
        case '\n':
            *p++ = 'n';
            break;
        case '\r':
            *p++ = 'r';
            break;
        case '\t':
            *p++ = 't';
            break;
        case '\b':
            *p++ = 'b';
            break;
        case '\f':
            *p++ = 'f';
            break;
        default:
            *p++ = 'u';
            *p++ = '0';
            *p++ = '0';
            *p++ = hex[c >> 4];
            *p++ = hex[c & 0x0f];
        }
    }

    *p++ = '"';
    jb->pos = p;

    return NGX_OK;
}


/*
 * Converts PostgreSQL's text form of a timestamptz in UTC with the ISO
 * date style, "2026-12-04 19:15:05.123456+00", to
 * "2026-12-04T19:15:05.123Z". PostgreSQL leaves out a zero fraction and
 * trailing zeros. The pool's connections set TimeZone and DateStyle, so
 * any other form is an error.
 */
static ngx_int_t
ngx_http_notifyhub_pg_time(const u_char *p, size_t len, u_char *out)
{
    size_t  i, n;

    if (len < sizeof("YYYY-MM-DD HH:MM:SS+00") - 1
        || p[10] != ' ' || p[len - 3] != '+'
        || p[len - 2] != '0' || p[len - 1] != '0')
    {
        return NGX_ERROR;
    }

    ngx_memcpy(out, p, 19);
    out[10] = 'T';
    out[19] = '.';

    /* Milliseconds: the fraction's first three digits, zero-padded. */
    n = len - 3 - 19;

    if (n == 0) {
        ngx_memcpy(out + 20, "000", 3);

    } else {
        if (p[19] != '.' || n < 2 || n > 7) {
            return NGX_ERROR;
        }

        for (i = 0; i < 3; i++) {
            out[20 + i] = (i + 1 < n) ? p[20 + i] : '0';
        }
    }

    out[23] = 'Z';

    return NGX_OK;
}


ngx_int_t
ngx_http_notifyhub_notification_write(ngx_http_notifyhub_jbuf_t *jb,
    const ngx_str_t *values, ngx_uint_t pg_times)
{
    u_char                      time[NH_RFC3339_LEN];
    ngx_uint_t                  i;
    ngx_http_notifyhub_field_t  *f;

    if (ngx_http_notifyhub_jbuf_raw(jb, "{", 1) != NGX_OK) {
        return NGX_ERROR;
    }

    for (i = 0; i < NGX_HTTP_NOTIFYHUB_NOTIFICATION_NFIELDS; i++) {
        f = &ngx_http_notifyhub_notification_fields[i];

        if (ngx_http_notifyhub_jbuf_reserve(jb, f->name.len + 4) != NGX_OK) {
            return NGX_ERROR;
        }

        if (i > 0) {
            *jb->pos++ = ',';
        }

        *jb->pos++ = '"';
        jb->pos = ngx_cpymem(jb->pos, f->name.data, f->name.len);
        *jb->pos++ = '"';
        *jb->pos++ = ':';

        if (values[i].data == NULL) {
            if (ngx_http_notifyhub_jbuf_raw(jb, "null", 4) != NGX_OK) {
                return NGX_ERROR;
            }

            continue;
        }

        switch (f->kind) {

        case NGX_HTTP_NOTIFYHUB_FIELD_RAW:
            if (ngx_http_notifyhub_jbuf_raw(jb, values[i].data, values[i].len)
                != NGX_OK)
            {
                return NGX_ERROR;
            }

            break;

        case NGX_HTTP_NOTIFYHUB_FIELD_TIME:
            if (pg_times) {
                if (ngx_http_notifyhub_pg_time(values[i].data, values[i].len,
                                               time)
                    != NGX_OK)
                {
                    return NGX_DECLINED;
                }

                if (ngx_http_notifyhub_jbuf_string(jb, time, NH_RFC3339_LEN)
                    != NGX_OK)
                {
                    return NGX_ERROR;
                }

                break;
            }

            /* fall through */

        default:
            if (ngx_http_notifyhub_jbuf_string(jb, values[i].data,
                                               values[i].len)
                != NGX_OK)
            {
                return NGX_ERROR;
            }
        }
    }

    return ngx_http_notifyhub_jbuf_raw(jb, "}", 1);
}


ngx_int_t
ngx_http_notifyhub_notification_row(ngx_http_notifyhub_jbuf_t *jb,
    PGresult *res, int row, int col)
{
    int         i;
    ngx_str_t   values[NGX_HTTP_NOTIFYHUB_NOTIFICATION_NFIELDS];

    if (PQnfields(res) < col + NGX_HTTP_NOTIFYHUB_NOTIFICATION_NFIELDS) {
        return NGX_DECLINED;
    }

    for (i = 0; i < NGX_HTTP_NOTIFYHUB_NOTIFICATION_NFIELDS; i++) {
        if (PQgetisnull(res, row, col + i)) {
            ngx_str_null(&values[i]);
            continue;
        }

        values[i].data = (u_char *) PQgetvalue(res, row, col + i);
        values[i].len = PQgetlength(res, row, col + i);
    }

    return ngx_http_notifyhub_notification_write(jb, values, 1);
}


ngx_int_t
ngx_http_notifyhub_pg_time_usec(const u_char *p, size_t len, int64_t *usec)
{
    u_char   time[NH_RFC3339_LEN];
    int64_t  ms, frac;
    size_t   i, n;

    if (ngx_http_notifyhub_pg_time(p, len, time) != NGX_OK
        || nh_time_parse_rfc3339((const char *) time, NH_RFC3339_LEN, &ms)
           != 0)
    {
        return NGX_ERROR;
    }

    /* Adds the fraction's digits 4 to 6, which the RFC 3339 text drops. */
    frac = 0;
    n = len - 3 - 19;

    for (i = 4; i <= 6; i++) {
        frac = frac * 10 + ((i < n) ? p[19 + i] - '0' : 0);
    }

    *usec = ms * 1000 + frac;

    return NGX_OK;
}
