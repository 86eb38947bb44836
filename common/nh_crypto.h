#ifndef NH_CRYPTO_H
#define NH_CRYPTO_H

#include <stddef.h>

#define NH_SHA256_LEN         32
/* Random bytes in an API key or session token, before encoding. */
#define NH_TOKEN_RANDOM_LEN   32
/* Largest token: a prefix of up to 8 bytes, 43 base64url characters, NUL. */
#define NH_TOKEN_MAX          64
/* Largest encoded password hash, NUL included. */
#define NH_PASSWORD_HASH_MAX  160
/* Largest PBKDF2 iteration count that hashing and verifying accept. */
#define NH_PASSWORD_ITERATIONS_MAX  10000000

/*
 * Computes SHA-256 of len bytes. OpenSSL's EVP_Digest can fail, for
 * example when it cannot allocate memory or no provider offers SHA-256.
 * This function cannot report that, so out is then all zeros.
 */
void nh_sha256(const void *data, size_t len, unsigned char out[NH_SHA256_LEN]);

/* Writes 2 * len lower-case hexadecimal digits and a NUL. */
void nh_hex_encode(const unsigned char *in, size_t len, char *out);

/*
 * Writes base64url without padding (RFC 4648, section 5) and a NUL;
 * out needs 4 * ceil(len / 3) + 1 bytes. Returns the encoded length.
 */
size_t nh_base64url_encode(const unsigned char *in, size_t len, char *out);

/*
 * Decodes base64url without padding. Returns the decoded length, or -1 on
 * a character outside the alphabet ('=' included), an impossible length
 * (len % 4 == 1) or unused trailing bits that are not zero, so that each
 * byte string has exactly one accepted encoding. out needs 3 * len / 4
 * bytes.
 */
long nh_base64url_decode(const char *in, size_t len, unsigned char *out);

/*
 * Makes a secret token: prefix (NULL counts as empty) followed by
 * NH_TOKEN_RANDOM_LEN random bytes from OpenSSL in base64url (43
 * characters), and a NUL. Returns the token length, or -1 when the random
 * source fails or outlen is too small.
 */
int nh_token_generate(const char *prefix, char *out, size_t outlen);

/*
 * Hashes a password with PBKDF2-HMAC-SHA256, a 16-byte random salt and
 * the given iteration count, encoded as
 * "pbkdf2-sha256$<iterations>$<salt base64url>$<hash base64url>" with a
 * 32-byte hash. Slow by design: call it off any event loop. Returns 0, or
 * -1 when iterations is 0 or above NH_PASSWORD_ITERATIONS_MAX, OpenSSL
 * fails or outlen is too small (NH_PASSWORD_HASH_MAX is always enough).
 */
int nh_password_hash(const char *password, size_t len, unsigned iterations,
    char *out, size_t outlen);

/*
 * Checks a password against an encoded hash made by nh_password_hash,
 * using the iteration count stored in it and a constant-time comparison.
 * Returns 1 on a match, 0 on a mismatch, -1 when the encoding is invalid
 * (another scheme, an iteration count of 0, above
 * NH_PASSWORD_ITERATIONS_MAX or with leading zeros, a salt or hash of
 * another length) or OpenSSL fails.
 */
int nh_password_verify(const char *password, size_t len, const char *encoded);

/* Compares two buffers in time that depends only on len. 1 if equal. */
int nh_const_time_eq(const void *a, const void *b, size_t len);

#endif /* NH_CRYPTO_H */
