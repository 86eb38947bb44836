#include "nh_validate.h"


#define NH_EMAIL_LOCAL_MAX  64
#define NH_DNS_LABEL_MAX    63


static int nh_email_local_is_valid(const char *s, size_t len);
static int nh_email_domain_is_valid(const char *s, size_t len);
static int nh_is_alnum(int c);
static int nh_is_atext(int c);


int
nh_email_is_valid(const char *s, size_t len)
{
    size_t  i, at;

    if (s == NULL || len == 0 || len > NH_EMAIL_MAX) {
        return 0;
    }

    at = len;

    for (i = 0; i < len; i++) {
        if (s[i] != '@') {
            continue;
        }

        if (at != len) {
            return 0;
        }

        at = i;
    }

    if (at == len) {
        return 0;
    }

    return nh_email_local_is_valid(s, at)
           && nh_email_domain_is_valid(s + at + 1, len - at - 1);
}


int
nh_request_id_is_valid(const char *s, size_t len)
{
    size_t  i;
    int     c;

    if (s == NULL || len == 0 || len > NH_REQUEST_ID_MAX) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        c = (unsigned char) s[i];

        if (!nh_is_alnum(c) && c != '.' && c != '_' && c != ':' && c != '-') {
            return 0;
        }
    }

    return 1;
}


int
nh_utf8_is_valid(const char *s, size_t len)
{
    const unsigned char  *p, *end;
    unsigned char         lead, low, high;
    size_t                n, i;

    if (s == NULL) {
        return len == 0;
    }

    p = (const unsigned char *) s;
    end = p + len;

    while (p < end) {
        lead = *p;

        if (lead < 0x80) {
            p++;
            continue;
        }

        /*
         * The bounds follow the well-formed byte sequences table of
         * RFC 3629, section 4. The second byte's range excludes overlong
         * forms (after 0xe0 and 0xf0), surrogates (after 0xed) and code
         * points above U+10FFFF (after 0xf4).
         */
        low = 0x80;
        high = 0xbf;

        if (lead >= 0xc2 && lead <= 0xdf) {
            n = 2;

        } else if (lead >= 0xe0 && lead <= 0xef) {
            n = 3;

            if (lead == 0xe0) {
                low = 0xa0;

            } else if (lead == 0xed) {
                high = 0x9f;
            }

        } else if (lead >= 0xf0 && lead <= 0xf4) {
            n = 4;

            if (lead == 0xf0) {
                low = 0x90;

            } else if (lead == 0xf4) {
                high = 0x8f;
            }

        } else {
            return 0;
        }

        if ((size_t) (end - p) < n) {
            return 0;
        }

        if (p[1] < low || p[1] > high) {
            return 0;
        }

        for (i = 2; i < n; i++) {
            if (p[i] < 0x80 || p[i] > 0xbf) {
                return 0;
            }
        }

        p += n;
    }

    return 1;
}


/* Checks a dot-atom (RFC 5322, section 3.2.3) of 1 to 64 characters. */
static int
nh_email_local_is_valid(const char *s, size_t len)
{
    size_t  i;

    if (len == 0 || len > NH_EMAIL_LOCAL_MAX) {
        return 0;
    }

    if (s[0] == '.' || s[len - 1] == '.') {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (s[i] == '.') {
            if (s[i + 1] == '.') {
                return 0;
            }

            continue;
        }

        if (!nh_is_atext((unsigned char) s[i])) {
            return 0;
        }
    }

    return 1;
}


/* Checks two or more LDH labels of 1 to 63 characters, dot-separated. */
static int
nh_email_domain_is_valid(const char *s, size_t len)
{
    size_t  i, start, labels;
    int     c;

    labels = 0;
    start = 0;

    for (i = 0; i <= len; i++) {
        if (i < len && s[i] != '.') {
            c = (unsigned char) s[i];

            if (!nh_is_alnum(c) && c != '-') {
                return 0;
            }

            continue;
        }

        if (i == start || i - start > NH_DNS_LABEL_MAX) {
            return 0;
        }

        if (s[start] == '-' || s[i - 1] == '-') {
            return 0;
        }

        labels++;
        start = i + 1;
    }

    return labels >= 2;
}


static int
nh_is_alnum(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
           || (c >= '0' && c <= '9');
}


static int
nh_is_atext(int c)
{
    static const char  specials[] = "!#$%&'*+-/=?^_`{|}~";
    const char        *p;

    if (nh_is_alnum(c)) {
        return 1;
    }

    for (p = specials; *p != '\0'; p++) {
        if (c == *p) {
            return 1;
        }
    }

    return 0;
}
