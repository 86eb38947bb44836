#include "nh_callback.h"

#include "nh_crypto.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>


static int nh_form_hex(int c);
static int nh_form_compare(const void *a, const void *b);
static char *nh_callback_append(char *p, const char *s);


/* Copies s, without its NUL, to p and returns the end of the copy. */
static char *
nh_callback_append(char *p, const char *s)
{
    size_t  len;

    len = strlen(s);
    memcpy(p, s, len);

    return p + len;
}


static int
nh_form_hex(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }

    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }

    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }

    return -1;
}


int
nh_form_parse(const char *body, size_t len, nh_form_t *out)
{
    const char  *p, *end;
    char        *w, *name;
    int          hi, lo;

    memset(out, 0, sizeof(nh_form_t));

    /* Decoding never makes the text longer; each pair adds one NUL. */
    out->buffer = malloc(2 * len + 2);
    out->params = calloc(NH_FORM_PARAMS_MAX, sizeof(nh_form_param_t));
    if (out->buffer == NULL || out->params == NULL) {
        nh_form_free(out);
        return -2;
    }

    p = body;
    end = body + len;
    w = out->buffer;

    while (p < end) {
        if (*p == '&') {
            p++;
            continue;
        }

        if (out->n == NH_FORM_PARAMS_MAX) {
            goto failed;
        }

        name = w;
        out->params[out->n].name = name;
        out->params[out->n].value = NULL;

        for ( /* void */ ; p < end && *p != '&'; p++) {
            if (*p == '=' && out->params[out->n].value == NULL) {
                *w++ = '\0';
                out->params[out->n].value = w;
                continue;
            }

            if (*p == '+') {
                *w++ = ' ';
                continue;
            }

            if (*p != '%') {
                *w++ = *p;
                continue;
            }

            if (end - p < 3) {
                goto failed;
            }

            hi = nh_form_hex((unsigned char) p[1]);
            lo = nh_form_hex((unsigned char) p[2]);

            if (hi < 0 || lo < 0) {
                goto failed;
            }

            *w++ = (char) (hi * 16 + lo);
            p += 2;
        }

        *w++ = '\0';

        if (out->params[out->n].value == NULL) {
            out->params[out->n].value = w;
            *w++ = '\0';
        }

        out->n++;
    }

    return 0;

failed:

    nh_form_free(out);
    return -1;
}


void
nh_form_free(nh_form_t *form)
{
    free(form->buffer);
    free(form->params);
    memset(form, 0, sizeof(nh_form_t));
}


const char *
nh_form_get(const nh_form_t *form, const char *name)
{
    size_t  i;

    for (i = 0; i < form->n; i++) {
        if (strcmp(form->params[i].name, name) == 0) {
            return form->params[i].value;
        }
    }

    return NULL;
}


static int
nh_form_compare(const void *a, const void *b)
{
    const nh_form_param_t  *x = a, *y = b;
    int                     rc;

    rc = strcmp(x->name, y->name);

    return rc != 0 ? rc : strcmp(x->value, y->value);
}


int
nh_twilio_signature(const char *auth_token, const char *url,
    const nh_form_t *form, char out[NH_TWILIO_SIGNATURE_LEN + 1])
{
    nh_form_param_t  *sorted;
    unsigned char     mac[EVP_MAX_MD_SIZE];
    unsigned int      mac_len;
    size_t            i, len;
    char             *text, *p;
    int               rc;

    sorted = NULL;
    text = NULL;
    rc = -1;

    len = strlen(url);

    for (i = 0; i < form->n; i++) {
        len += strlen(form->params[i].name) + strlen(form->params[i].value);
    }

    text = malloc(len + 1);
    if (text == NULL) {
        goto done;
    }

    if (form->n > 0) {
        sorted = malloc(form->n * sizeof(nh_form_param_t));
        if (sorted == NULL) {
            goto done;
        }

        memcpy(sorted, form->params, form->n * sizeof(nh_form_param_t));
        qsort(sorted, form->n, sizeof(nh_form_param_t), nh_form_compare);
    }

    /* The signed text: the URL, then each name and value, sorted. */
    p = nh_callback_append(text, url);

    for (i = 0; i < form->n; i++) {
        p = nh_callback_append(p, sorted[i].name);
        p = nh_callback_append(p, sorted[i].value);
    }

    if (HMAC(EVP_sha1(), auth_token, (int) strlen(auth_token),
             (const unsigned char *) text, len, mac, &mac_len)
        == NULL
        || mac_len != 20)
    {
        goto done;
    }

    EVP_EncodeBlock((unsigned char *) out, mac, (int) mac_len);
    rc = 0;

done:

    free(sorted);
    free(text);
    return rc;
}


int
nh_twilio_signature_valid(const char *auth_token, const char *url,
    const nh_form_t *form, const char *signature, size_t signature_len)
{
    char  expected[NH_TWILIO_SIGNATURE_LEN + 1];

    if (signature_len != NH_TWILIO_SIGNATURE_LEN
        || nh_twilio_signature(auth_token, url, form, expected) != 0)
    {
        return 0;
    }

    return nh_const_time_eq(expected, signature, NH_TWILIO_SIGNATURE_LEN);
}


int
nh_mailgun_signature_valid(const char *signing_key, const char *timestamp,
    const char *token, const char *signature)
{
    unsigned char  mac[EVP_MAX_MD_SIZE];
    unsigned int   mac_len;
    char           hex[2 * 32 + 1];
    char          *text;
    size_t         tlen, klen;

    if (strlen(signature) != 64) {
        return 0;
    }

    tlen = strlen(timestamp);
    klen = strlen(token);

    text = malloc(tlen + klen + 1);
    if (text == NULL) {
        return 0;
    }

    memcpy(text, timestamp, tlen);
    memcpy(text + tlen, token, klen);

    if (HMAC(EVP_sha256(), signing_key, (int) strlen(signing_key),
             (const unsigned char *) text, tlen + klen, mac, &mac_len)
        == NULL
        || mac_len != 32)
    {
        free(text);
        return 0;
    }

    free(text);
    nh_hex_encode(mac, 32, hex);

    return nh_const_time_eq(hex, signature, 64);
}
