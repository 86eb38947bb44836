#ifndef NH_CALLBACK_H
#define NH_CALLBACK_H

#include <stddef.h>

/*
 * Provider callbacks: form bodies and the signatures that Mailgun and
 * Twilio put on the requests they send to NotifyHub.
 */

/* One name and value of an application/x-www-form-urlencoded body. */
typedef struct {
    char  *name;
    char  *value;
} nh_form_param_t;

/* A parsed form body: at most NH_FORM_PARAMS_MAX parameters. */
typedef struct {
    nh_form_param_t  *params;
    size_t            n;
    char             *buffer;      /* the decoded names and values */
} nh_form_t;

#define NH_FORM_PARAMS_MAX  256

/* Base64 of a 20-byte HMAC-SHA1 and its NUL. */
#define NH_TWILIO_SIGNATURE_LEN  28

/*
 * Parses an application/x-www-form-urlencoded body: "&"-separated
 * name=value pairs, with "+" as a space and %XX escapes decoded. Empty
 * pairs are skipped; a name without "=" has an empty value. Returns 0, -1
 * for a malformed escape or more than NH_FORM_PARAMS_MAX parameters, or -2
 * when memory runs out. Free with nh_form_free().
 */
int nh_form_parse(const char *body, size_t len, nh_form_t *out);

void nh_form_free(nh_form_t *form);

/* Returns the first value of name in form, or NULL. */
const char *nh_form_get(const nh_form_t *form, const char *name);

/*
 * Computes Twilio's X-Twilio-Signature of a request: the base64 of an
 * HMAC-SHA1 keyed with the auth token. The signed text is the full URL
 * that Twilio requested, followed by each POST parameter's name and
 * value, sorted by name, and by value for a repeated name. Returns 0, or
 * -1 when memory runs out.
 */
int nh_twilio_signature(const char *auth_token, const char *url,
    const nh_form_t *form, char out[NH_TWILIO_SIGNATURE_LEN + 1]);

/*
 * Checks an X-Twilio-Signature header value against the request, in
 * constant time. Returns 1 when it matches, else 0.
 */
int nh_twilio_signature_valid(const char *auth_token, const char *url,
    const nh_form_t *form, const char *signature, size_t signature_len);

/*
 * Checks the signature of a Mailgun webhook: the hex HMAC-SHA256, keyed
 * with the webhook signing key, of the timestamp followed by the token.
 * Returns 1 when it matches (compared in constant time), else 0.
 */
int nh_mailgun_signature_valid(const char *signing_key,
    const char *timestamp, const char *token, const char *signature);

#endif /* NH_CALLBACK_H */
