#ifndef NH_VALIDATE_H
#define NH_VALIDATE_H

#include <stddef.h>

#define NH_EMAIL_MAX       254
#define NH_REQUEST_ID_MAX  128

/*
 * Checks an email address: one '@', a local part of 1 to 64 characters
 * of the dot-atom form (no quoted strings), and 254 characters at most in
 * all. The domain has at least two dot-separated labels of 1 to 63 ASCII
 * letters, digits and hyphens, and no label starts or ends with a hyphen.
 * Internationalized addresses and IP-literal domains are invalid. Returns
 * 1 if valid, else 0.
 */
int nh_email_is_valid(const char *s, size_t len);

/*
 * Checks a caller's X-Request-Id: 1 to 128 characters from
 * [A-Za-z0-9._:-]. Returns 1 if it can be echoed back, else 0.
 */
int nh_request_id_is_valid(const char *s, size_t len);

/*
 * Checks that s is valid UTF-8 (no overlong forms, no surrogates, nothing
 * above U+10FFFF, no truncated sequence). A NUL byte is valid UTF-8 and
 * passes. Returns 1 if valid, else 0.
 */
int nh_utf8_is_valid(const char *s, size_t len);

/* Checks an E.164 phone number: "+", then 2 to 15 digits, not starting
 * with 0. Returns 1 if valid, else 0. */
int nh_phone_is_e164(const char *s, size_t len);

/* Text encodings of an SMS body. */
typedef enum {
    NH_SMS_GSM7 = 0,
    NH_SMS_UCS2
} nh_sms_encoding_e;

/* Characters in one SMS, and in each part of a concatenated one. */
#define NH_SMS_GSM7_SINGLE  160
#define NH_SMS_GSM7_PART    153
#define NH_SMS_UCS2_SINGLE  70
#define NH_SMS_UCS2_PART    67

/*
 * Counts the SMS parts a UTF-8 body needs. The body is GSM-7 when every
 * character is in the GSM 03.38 basic set or its extension table (which
 * takes two units each), else UCS-2, counted in UTF-16 code units.
 * Stores the encoding and the units. Returns the number of parts (0 for an
 * empty body), or -1 when the text is not valid UTF-8.
 */
int nh_sms_parts(const char *s, size_t len, nh_sms_encoding_e *encoding,
    size_t *units);

#endif /* NH_VALIDATE_H */
