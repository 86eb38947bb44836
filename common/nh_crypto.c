#include "nh_crypto.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>


#define NH_PASSWORD_SCHEME    "pbkdf2-sha256"
#define NH_PASSWORD_SALT_LEN  16
#define NH_PASSWORD_KEY_LEN   32


static const char  nh_base64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";


static int nh_base64url_value(int c);
static int nh_password_derive(const char *password, size_t len,
    const unsigned char *salt, unsigned iterations,
    unsigned char key[NH_PASSWORD_KEY_LEN]);
static int nh_password_parse(const char *encoded, unsigned *iterations,
    unsigned char salt[NH_PASSWORD_SALT_LEN],
    unsigned char key[NH_PASSWORD_KEY_LEN]);
static int nh_password_decode_field(const char *start, const char *end,
    unsigned char *out, size_t expected);


void
nh_sha256(const void *data, size_t len, unsigned char out[NH_SHA256_LEN])
{
    if (EVP_Digest(data, len, out, NULL, EVP_sha256(), NULL) != 1) {
        memset(out, 0, NH_SHA256_LEN);
    }
}


void
nh_hex_encode(const unsigned char *in, size_t len, char *out)
{
    static const char  digits[] = "0123456789abcdef";
    size_t             i;

    for (i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0x0f];
    }

    out[2 * len] = '\0';
}


size_t
nh_base64url_encode(const unsigned char *in, size_t len, char *out)
{
    size_t    i, n;
    uint32_t  group;

    n = 0;

    for (i = 0; i + 3 <= len; i += 3) {
        group = (uint32_t) in[i] << 16 | (uint32_t) in[i + 1] << 8 | in[i + 2];

        out[n++] = nh_base64url_alphabet[(group >> 18) & 0x3f];
        out[n++] = nh_base64url_alphabet[(group >> 12) & 0x3f];
        out[n++] = nh_base64url_alphabet[(group >> 6) & 0x3f];
        out[n++] = nh_base64url_alphabet[group & 0x3f];
    }

    if (len - i == 1) {
        group = (uint32_t) in[i] << 16;

        out[n++] = nh_base64url_alphabet[(group >> 18) & 0x3f];
        out[n++] = nh_base64url_alphabet[(group >> 12) & 0x3f];

    } else if (len - i == 2) {
        group = (uint32_t) in[i] << 16 | (uint32_t) in[i + 1] << 8;

        out[n++] = nh_base64url_alphabet[(group >> 18) & 0x3f];
        out[n++] = nh_base64url_alphabet[(group >> 12) & 0x3f];
        out[n++] = nh_base64url_alphabet[(group >> 6) & 0x3f];
    }

    out[n] = '\0';

    return n;
}


long
nh_base64url_decode(const char *in, size_t len, unsigned char *out)
{
    size_t    i, n, rest;
    uint32_t  group;
    int       value, j;

    if (len % 4 == 1 || len > LONG_MAX) {
        return -1;
    }

    n = 0;

    for (i = 0; i < len; i += 4) {
        rest = (len - i < 4) ? len - i : 4;
        group = 0;

        for (j = 0; j < 4; j++) {
            value = 0;

            if ((size_t) j < rest) {
                value = nh_base64url_value((unsigned char) in[i + j]);

                if (value < 0) {
                    return -1;
                }
            }

            group = group << 6 | (uint32_t) value;
        }

        /*
         * A final group of 2 or 3 characters carries 4 or 2 bits that no
         * byte uses. The encoder writes them as zero, and rejecting other
         * values keeps each byte string to a single encoding.
         */
        if ((rest == 2 && (group & 0xffff) != 0)
            || (rest == 3 && (group & 0xff) != 0))
        {
            return -1;
        }

        out[n++] = (unsigned char) (group >> 16);

        if (rest > 2) {
            out[n++] = (unsigned char) (group >> 8);
        }

        if (rest > 3) {
            out[n++] = (unsigned char) group;
        }
    }

    return (long) n;
}


int
nh_token_generate(const char *prefix, char *out, size_t outlen)
{
    unsigned char  random[NH_TOKEN_RANDOM_LEN];
    size_t         prefix_len, encoded_len;
    int            rc;

    rc = -1;

    if (prefix == NULL) {
        prefix = "";
    }

    prefix_len = strlen(prefix);
    encoded_len = (4 * NH_TOKEN_RANDOM_LEN + 2) / 3;

    if (out == NULL || prefix_len + encoded_len + 1 > outlen
        || prefix_len + encoded_len > INT_MAX)
    {
        goto failed;
    }

    if (RAND_bytes(random, sizeof(random)) != 1) {
        goto failed;
    }

    memcpy(out, prefix, prefix_len);
    nh_base64url_encode(random, sizeof(random), out + prefix_len);

    rc = (int) (prefix_len + encoded_len);

failed:

    OPENSSL_cleanse(random, sizeof(random));

    return rc;
}


int
nh_password_hash(const char *password, size_t len, unsigned iterations,
    char *out, size_t outlen)
{
    unsigned char  salt[NH_PASSWORD_SALT_LEN];
    unsigned char  key[NH_PASSWORD_KEY_LEN];
    char           salt_text[(4 * NH_PASSWORD_SALT_LEN + 2) / 3 + 1];
    char           key_text[(4 * NH_PASSWORD_KEY_LEN + 2) / 3 + 1];
    int            rc, n;

    rc = -1;

    if (out == NULL || outlen == 0) {
        goto failed;
    }

    if (iterations == 0 || iterations > NH_PASSWORD_ITERATIONS_MAX) {
        goto failed;
    }

    if (RAND_bytes(salt, sizeof(salt)) != 1) {
        goto failed;
    }

    if (nh_password_derive(password, len, salt, iterations, key) != 0) {
        goto failed;
    }

    nh_base64url_encode(salt, sizeof(salt), salt_text);
    nh_base64url_encode(key, sizeof(key), key_text);

    n = snprintf(out, outlen, NH_PASSWORD_SCHEME "$%u$%s$%s", iterations,
                 salt_text, key_text);

    if (n < 0 || (size_t) n >= outlen) {
        out[0] = '\0';
        goto failed;
    }

    rc = 0;

failed:

    OPENSSL_cleanse(key, sizeof(key));
    OPENSSL_cleanse(key_text, sizeof(key_text));

    return rc;
}


int
nh_password_verify(const char *password, size_t len, const char *encoded)
{
    unsigned char  salt[NH_PASSWORD_SALT_LEN];
    unsigned char  expected[NH_PASSWORD_KEY_LEN];
    unsigned char  actual[NH_PASSWORD_KEY_LEN];
    unsigned       iterations;
    int            rc;

    rc = -1;

    if (nh_password_parse(encoded, &iterations, salt, expected) != 0) {
        goto failed;
    }

    if (nh_password_derive(password, len, salt, iterations, actual) != 0) {
        goto failed;
    }

    rc = (CRYPTO_memcmp(expected, actual, NH_PASSWORD_KEY_LEN) == 0);

failed:

    OPENSSL_cleanse(expected, sizeof(expected));
    OPENSSL_cleanse(actual, sizeof(actual));

    return rc;
}


int
nh_const_time_eq(const void *a, const void *b, size_t len)
{
    return CRYPTO_memcmp(a, b, len) == 0;
}


static int
nh_base64url_value(int c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }

    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }

    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }

    if (c == '-') {
        return 62;
    }

    if (c == '_') {
        return 63;
    }

    return -1;
}


static int
nh_password_derive(const char *password, size_t len,
    const unsigned char *salt, unsigned iterations,
    unsigned char key[NH_PASSWORD_KEY_LEN])
{
    if (password == NULL) {
        password = "";
        len = 0;
    }

    if (len > INT_MAX || iterations > INT_MAX) {
        return -1;
    }

    if (PKCS5_PBKDF2_HMAC(password, (int) len, salt, NH_PASSWORD_SALT_LEN,
                          (int) iterations, EVP_sha256(), NH_PASSWORD_KEY_LEN,
                          key)
        != 1)
    {
        return -1;
    }

    return 0;
}


/*
 * Splits "pbkdf2-sha256$<iterations>$<salt>$<key>" into its fields. The
 * count is decimal without a sign or leading zeros, in
 * [1, NH_PASSWORD_ITERATIONS_MAX]. Salt and key must decode to exactly
 * NH_PASSWORD_SALT_LEN and NH_PASSWORD_KEY_LEN bytes.
 */
static int
nh_password_parse(const char *encoded, unsigned *iterations,
    unsigned char salt[NH_PASSWORD_SALT_LEN],
    unsigned char key[NH_PASSWORD_KEY_LEN])
{
    const char     *p, *salt_end, *key_end;
    unsigned long   count;
    size_t          scheme_len;

    if (encoded == NULL) {
        return -1;
    }

    scheme_len = sizeof(NH_PASSWORD_SCHEME) - 1;

    if (strncmp(encoded, NH_PASSWORD_SCHEME "$", scheme_len + 1) != 0) {
        return -1;
    }

    p = encoded + scheme_len + 1;

    if (*p < '1' || *p > '9') {
        return -1;
    }

    count = 0;

    while (*p >= '0' && *p <= '9') {
        count = count * 10 + (unsigned long) (*p - '0');

        if (count > NH_PASSWORD_ITERATIONS_MAX) {
            return -1;
        }

        p++;
    }

    if (*p++ != '$') {
        return -1;
    }

    salt_end = strchr(p, '$');

    if (salt_end == NULL) {
        return -1;
    }

    if (nh_password_decode_field(p, salt_end, salt, NH_PASSWORD_SALT_LEN)
        != 0)
    {
        return -1;
    }

    p = salt_end + 1;
    key_end = p + strlen(p);

    if (nh_password_decode_field(p, key_end, key, NH_PASSWORD_KEY_LEN) != 0) {
        return -1;
    }

    *iterations = (unsigned) count;

    return 0;
}


/*
 * Decodes the base64url text between start and end into exactly expected
 * bytes. Returns 0, or -1 on any other length or an invalid character.
 */
static int
nh_password_decode_field(const char *start, const char *end,
    unsigned char *out, size_t expected)
{
    unsigned char  buf[NH_PASSWORD_KEY_LEN];
    size_t         len;
    long           n;

    len = (size_t) (end - start);

    if (expected > sizeof(buf) || len != (4 * expected + 2) / 3) {
        return -1;
    }

    n = nh_base64url_decode(start, len, buf);

    if (n < 0 || (size_t) n != expected) {
        return -1;
    }

    memcpy(out, buf, expected);
    OPENSSL_cleanse(buf, sizeof(buf));

    return 0;
}
