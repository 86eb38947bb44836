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


int
nh_phone_is_e164(const char *s, size_t len)
{
    size_t  i;

    if (len < 3 || len > 16 || s[0] != '+' || s[1] < '1' || s[1] > '9') {
        return 0;
    }

    for (i = 2; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return 0;
        }
    }

    return 1;
}


/*
 * Returns the GSM-7 units of a code point: 1 in the basic set, 2 in the
 * extension table, 0 when GSM-7 cannot carry it.
 */
static int
nh_gsm7_units(unsigned long cp)
{
    static const unsigned short  basic[] = {
        0x00a3, 0x00a5, 0x00e8, 0x00e9, 0x00f9, 0x00ec, 0x00f2, 0x00c7,
        0x00d8, 0x00f8, 0x00c5, 0x00e5, 0x0394, 0x03a6, 0x0393, 0x039b,
        0x03a9, 0x03a0, 0x03a8, 0x03a3, 0x0398, 0x039e, 0x00c6, 0x00e6,
        0x00df, 0x00c9, 0x00a4, 0x00a1, 0x00c4, 0x00d6, 0x00d1, 0x00dc,
        0x00a7, 0x00bf, 0x00e4, 0x00f6, 0x00f1, 0x00fc, 0x00e0
    };
    size_t  i;

    if (cp == '\n' || cp == '\r' || (cp >= 0x20 && cp <= 0x5a)
        || cp == '_' || (cp >= 'a' && cp <= 'z'))
    {
        return 1;
    }

    switch (cp) {
    case '[': case '\\': case ']': case '^': case '{': case '|': case '}':
    case '~': case 0x0c: case 0x20ac:
        return 2;
    }

    for (i = 0; i < sizeof(basic) / sizeof(basic[0]); i++) {
        if (basic[i] == cp) {
            return 1;
        }
    }

    return 0;
}


int
nh_sms_parts(const char *s, size_t len, nh_sms_encoding_e *encoding,
    size_t *units)
{
    int             n, gsm;
    size_t          i, gsm_units, utf16_units;
    unsigned long   cp;
    unsigned char   c;

    if (!nh_utf8_is_valid(s, len)) {
        return -1;
    }

    gsm = 1;
    gsm_units = 0;
    utf16_units = 0;

    for (i = 0; i < len; /* void */) {
        c = (unsigned char) s[i];

        if (c < 0x80) {
            cp = c;
            i += 1;

        } else if (c < 0xe0) {
            cp = ((unsigned long) (c & 0x1f) << 6) | (s[i + 1] & 0x3f);
            i += 2;

        } else if (c < 0xf0) {
            cp = ((unsigned long) (c & 0x0f) << 12)
                 | ((unsigned long) (s[i + 1] & 0x3f) << 6)
                 | (s[i + 2] & 0x3f);
            i += 3;

        } else {
            cp = ((unsigned long) (c & 0x07) << 18)
                 | ((unsigned long) (s[i + 1] & 0x3f) << 12)
                 | ((unsigned long) (s[i + 2] & 0x3f) << 6)
                 | (s[i + 3] & 0x3f);
            i += 4;
        }

        utf16_units += cp > 0xffff ? 2 : 1;

        if (gsm) {
            n = nh_gsm7_units(cp);
            if (n == 0) {
                gsm = 0;
            }
            gsm_units += n;
        }
    }

    *encoding = gsm ? NH_SMS_GSM7 : NH_SMS_UCS2;
    *units = gsm ? gsm_units : utf16_units;

    if (*units == 0) {
        return 0;
    }

    if (gsm) {
        return *units <= NH_SMS_GSM7_SINGLE
               ? 1 : (int) ((*units + NH_SMS_GSM7_PART - 1) / NH_SMS_GSM7_PART);
    }

    return *units <= NH_SMS_UCS2_SINGLE
           ? 1 : (int) ((*units + NH_SMS_UCS2_PART - 1) / NH_SMS_UCS2_PART);
}
