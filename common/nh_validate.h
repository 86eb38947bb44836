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

#endif /* NH_VALIDATE_H */
