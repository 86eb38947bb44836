#include <string.h>

#include <check.h>

#include "../../common/nh_crypto.h"
#include "check_suites.h"


#define ARRAY_LEN(a)  (sizeof(a) / sizeof((a)[0]))


/* A hash of "correct horse battery staple", computed with Python's hashlib. */
#define KNOWN_HASH                                                            \
    "pbkdf2-sha256$1000$AAECAwQFBgcICQoLDA0ODw$"                              \
    "ppsXnjrdPB4KryJ6DrOqKqhkWrhv7PbKAMF1Eml8cZ4"
#define KNOWN_PASSWORD  "correct horse battery staple"


static const char  base64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";


/* The test vectors of RFC 4648, section 10, without padding. */
static const struct {
    const char  *decoded;
    const char  *encoded;
} rfc4648_vectors[] = {
    { "", "" },
    { "f", "Zg" },
    { "fo", "Zm8" },
    { "foo", "Zm9v" },
    { "foob", "Zm9vYg" },
    { "fooba", "Zm9vYmE" },
    { "foobar", "Zm9vYmFy" },
};


START_TEST(sha256_matches_fips_180_vectors)
{
    unsigned char  digest[NH_SHA256_LEN];
    char           hex[2 * NH_SHA256_LEN + 1];

    nh_sha256("abc", 3, digest);
    nh_hex_encode(digest, sizeof(digest), hex);
    ck_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223"
                          "b00361a396177a9cb410ff61f20015ad");

    nh_sha256("", 0, digest);
    nh_hex_encode(digest, sizeof(digest), hex);
    ck_assert_str_eq(hex, "e3b0c44298fc1c149afbf4c8996fb924"
                          "27ae41e4649b934ca495991b7852b855");
}
END_TEST


START_TEST(hex_encode_writes_lower_case)
{
    static const unsigned char  bytes[] = { 0x00, 0x01, 0x7f, 0xab, 0xff };
    char                        hex[2 * sizeof(bytes) + 1];

    memset(hex, 'x', sizeof(hex));
    nh_hex_encode(bytes, sizeof(bytes), hex);
    ck_assert_str_eq(hex, "00017fabff");

    nh_hex_encode(bytes, 0, hex);
    ck_assert_str_eq(hex, "");
}
END_TEST


START_TEST(base64url_encodes_rfc4648_vectors)
{
    char    out[16];
    size_t  i, n;

    for (i = 0; i < ARRAY_LEN(rfc4648_vectors); i++) {
        memset(out, 'x', sizeof(out));
        n = nh_base64url_encode((const unsigned char *)
                                    rfc4648_vectors[i].decoded,
                                strlen(rfc4648_vectors[i].decoded), out);
        ck_assert_str_eq(out, rfc4648_vectors[i].encoded);
        ck_assert_uint_eq(n, strlen(rfc4648_vectors[i].encoded));
    }
}
END_TEST


START_TEST(base64url_decodes_rfc4648_vectors)
{
    unsigned char  out[16];
    size_t         i;
    long           n;

    for (i = 0; i < ARRAY_LEN(rfc4648_vectors); i++) {
        n = nh_base64url_decode(rfc4648_vectors[i].encoded,
                                strlen(rfc4648_vectors[i].encoded), out);
        ck_assert_int_eq(n, (long) strlen(rfc4648_vectors[i].decoded));
        ck_assert_mem_eq(out, rfc4648_vectors[i].decoded, (size_t) n);
    }
}
END_TEST


START_TEST(base64url_uses_url_safe_alphabet)
{
    static const unsigned char  bytes[] = { 0xfb, 0xff, 0xbf };
    unsigned char               decoded[3];
    char                        out[8];

    /* Standard base64 writes these bytes as "+/+/". */
    nh_base64url_encode(bytes, sizeof(bytes), out);
    ck_assert_str_eq(out, "-_-_");

    ck_assert_int_eq(nh_base64url_decode("-_-_", 4, decoded), 3);
    ck_assert_mem_eq(decoded, bytes, sizeof(bytes));
}
END_TEST


START_TEST(base64url_round_trips_every_length)
{
    unsigned char  bytes[64], decoded[64];
    char           encoded[4 * 64 / 3 + 2];
    size_t         len, i, n;

    for (i = 0; i < sizeof(bytes); i++) {
        bytes[i] = (unsigned char) (i * 37 + 11);
    }

    for (len = 0; len <= sizeof(bytes); len++) {
        n = nh_base64url_encode(bytes, len, encoded);
        ck_assert_uint_eq(n, (4 * len + 2) / 3);
        ck_assert_uint_eq(strlen(encoded), n);
        ck_assert_int_eq(nh_base64url_decode(encoded, n, decoded), (long) len);
        ck_assert_mem_eq(decoded, bytes, len);
    }
}
END_TEST


START_TEST(base64url_decode_rejects_invalid_input)
{
    static const char  *texts[] = {
        "Z",          /* a length of 4n + 1 cannot be produced */
        "Zm9vY",
        "Zg==",       /* padding is not accepted */
        "Zm8=",
        "Zm+v",       /* characters of the standard alphabet */
        "Zm/v",
        "Zm9 ",
        "Zm9\n",
        "Zh",         /* unused trailing bits set */
        "Zm9",
    };
    unsigned char       out[8];
    size_t              i;

    for (i = 0; i < ARRAY_LEN(texts); i++) {
        ck_assert_msg(nh_base64url_decode(texts[i], strlen(texts[i]), out)
                          == -1, "accepted \"%s\"", texts[i]);
    }

    ck_assert_int_eq(nh_base64url_decode("Zm\0v", 4, out), -1);
}
END_TEST


START_TEST(token_has_prefix_and_43_random_characters)
{
    unsigned char  random[NH_TOKEN_RANDOM_LEN];
    char           token[NH_TOKEN_MAX];
    int            n;

    n = nh_token_generate("nh_live_", token, sizeof(token));

    ck_assert_int_eq(n, 8 + 43);
    ck_assert_uint_eq(strlen(token), 8 + 43);
    ck_assert(strncmp(token, "nh_live_", 8) == 0);
    ck_assert_uint_eq(strspn(token + 8, base64url_alphabet), 43);
    ck_assert_int_eq(nh_base64url_decode(token + 8, 43, random),
                     NH_TOKEN_RANDOM_LEN);
}
END_TEST


START_TEST(token_accepts_empty_prefix)
{
    char  token[NH_TOKEN_MAX];

    ck_assert_int_eq(nh_token_generate("", token, sizeof(token)), 43);
    ck_assert_uint_eq(strspn(token, base64url_alphabet), 43);

    ck_assert_int_eq(nh_token_generate(NULL, token, sizeof(token)), 43);
    ck_assert_uint_eq(strlen(token), 43);
}
END_TEST


START_TEST(token_values_differ)
{
    char  first[NH_TOKEN_MAX], second[NH_TOKEN_MAX];

    ck_assert_int_eq(nh_token_generate("sess_", first, sizeof(first)), 48);
    ck_assert_int_eq(nh_token_generate("sess_", second, sizeof(second)), 48);
    ck_assert_str_ne(first, second);
}
END_TEST


START_TEST(token_rejects_small_buffer)
{
    char  token[NH_TOKEN_MAX];

    /* "ak_", 43 characters and the NUL need 47 bytes. */
    ck_assert_int_eq(nh_token_generate("ak_", token, 46), -1);
    ck_assert_int_eq(nh_token_generate("ak_", token, 47), 46);
    ck_assert_int_eq(nh_token_generate("ak_", token, 0), -1);
}
END_TEST


START_TEST(password_hash_round_trips)
{
    char  hash[NH_PASSWORD_HASH_MAX];

    ck_assert_int_eq(nh_password_hash("s3cret pass", 11, 1000, hash,
                                      sizeof(hash)), 0);
    ck_assert(strncmp(hash, "pbkdf2-sha256$1000$", 19) == 0);

    /* 19 + 22 (salt) + 1 + 43 (hash). */
    ck_assert_uint_eq(strlen(hash), 19 + 22 + 1 + 43);
    ck_assert_int_eq(nh_password_verify("s3cret pass", 11, hash), 1);
}
END_TEST


START_TEST(password_verify_rejects_wrong_password)
{
    char  hash[NH_PASSWORD_HASH_MAX];

    ck_assert_int_eq(nh_password_hash("s3cret pass", 11, 1000, hash,
                                      sizeof(hash)), 0);

    ck_assert_int_eq(nh_password_verify("s3cret pasS", 11, hash), 0);
    ck_assert_int_eq(nh_password_verify("s3cret pas", 10, hash), 0);
    ck_assert_int_eq(nh_password_verify("s3cret pass ", 12, hash), 0);
    ck_assert_int_eq(nh_password_verify("", 0, hash), 0);
}
END_TEST


START_TEST(password_hash_uses_random_salt)
{
    char  first[NH_PASSWORD_HASH_MAX], second[NH_PASSWORD_HASH_MAX];

    ck_assert_int_eq(nh_password_hash("same", 4, 1000, first,
                                      sizeof(first)), 0);
    ck_assert_int_eq(nh_password_hash("same", 4, 1000, second,
                                      sizeof(second)), 0);

    ck_assert_str_ne(first, second);
    ck_assert_int_eq(nh_password_verify("same", 4, first), 1);
    ck_assert_int_eq(nh_password_verify("same", 4, second), 1);
}
END_TEST


START_TEST(password_uses_length_not_nul)
{
    char  hash[NH_PASSWORD_HASH_MAX];

    ck_assert_int_eq(nh_password_hash("a\0b", 3, 1000, hash, sizeof(hash)),
                     0);

    ck_assert_int_eq(nh_password_verify("a\0b", 3, hash), 1);
    ck_assert_int_eq(nh_password_verify("a\0c", 3, hash), 0);
    ck_assert_int_eq(nh_password_verify("a", 1, hash), 0);
}
END_TEST


START_TEST(password_empty_round_trips)
{
    char  hash[NH_PASSWORD_HASH_MAX];

    ck_assert_int_eq(nh_password_hash("", 0, 1000, hash, sizeof(hash)), 0);
    ck_assert_int_eq(nh_password_verify("", 0, hash), 1);
    ck_assert_int_eq(nh_password_verify("x", 1, hash), 0);
}
END_TEST


START_TEST(password_verify_matches_known_pbkdf2)
{
    ck_assert_int_eq(nh_password_verify(KNOWN_PASSWORD,
                                        strlen(KNOWN_PASSWORD), KNOWN_HASH),
                     1);
    ck_assert_int_eq(nh_password_verify("correct horse battery stapler", 29,
                                        KNOWN_HASH), 0);
}
END_TEST


START_TEST(password_verify_compares_whole_hash)
{
    /* KNOWN_HASH with only the first or the last hash byte changed. */
    static const char  first_byte[] =
        "pbkdf2-sha256$1000$AAECAwQFBgcICQoLDA0ODw$"
        "qpsXnjrdPB4KryJ6DrOqKqhkWrhv7PbKAMF1Eml8cZ4";
    static const char  last_byte[] =
        "pbkdf2-sha256$1000$AAECAwQFBgcICQoLDA0ODw$"
        "ppsXnjrdPB4KryJ6DrOqKqhkWrhv7PbKAMF1Eml8cZ0";

    ck_assert_int_eq(nh_password_verify(KNOWN_PASSWORD,
                                        strlen(KNOWN_PASSWORD), first_byte),
                     0);
    ck_assert_int_eq(nh_password_verify(KNOWN_PASSWORD,
                                        strlen(KNOWN_PASSWORD), last_byte),
                     0);
}
END_TEST


START_TEST(password_verify_uses_stored_iterations)
{
    /* KNOWN_HASH with the iteration count changed from 1000 to 1001. */
    static const char  other_count[] =
        "pbkdf2-sha256$1001$AAECAwQFBgcICQoLDA0ODw$"
        "ppsXnjrdPB4KryJ6DrOqKqhkWrhv7PbKAMF1Eml8cZ4";
    char               hash[NH_PASSWORD_HASH_MAX];

    ck_assert_int_eq(nh_password_verify(KNOWN_PASSWORD,
                                        strlen(KNOWN_PASSWORD), other_count),
                     0);

    ck_assert_int_eq(nh_password_hash("pw", 2, 1, hash, sizeof(hash)), 0);
    ck_assert(strncmp(hash, "pbkdf2-sha256$1$", 16) == 0);
    ck_assert_int_eq(nh_password_verify("pw", 2, hash), 1);
}
END_TEST


START_TEST(password_verify_rejects_malformed_encoding)
{
    static const char  *encodings[] = {
        "",
        "pbkdf2-sha256",
        "pbkdf2-sha256$",
        "pbkdf2-sha256$1000",
        "pbkdf2-sha256$1000$AAECAwQFBgcICQoLDA0ODw",
        "pbkdf2-sha256$1000$AAECAwQFBgcICQoLDA0ODw$",
        /* another scheme or spelling */
        "pbkdf2-sha1$1000$AAECAwQFBgcICQoLDA0ODw$"
            "ppsXnjrdPB4KryJ6DrOqKqhkWrhv7PbKAMF1Eml8cZ4",
        "PBKDF2-SHA256$1000$AAECAwQFBgcICQoLDA0ODw$"
            "ppsXnjrdPB4KryJ6DrOqKqhkWrhv7PbKAMF1Eml8cZ4",
        /* iteration counts: zero, leading zero, signs, too large, none */
        "pbkdf2-sha256$0$AAECAwQFBgcICQoLDA0ODw$"
            "ppsXnjrdPB4KryJ6DrOqKqhkWrhv7PbKAMF1Eml8cZ4",
        "pbkdf2-sha256$01000$AAECAwQFBgcICQoLDA0ODw$"
            "ppsXnjrdPB4KryJ6DrOqKqhkWrhv7PbKAMF1Eml8cZ4",
        "pbkdf2-sha256$-1000$AAECAwQFBgcICQoLDA0ODw$"
            "ppsXnjrdPB4KryJ6DrOqKqhkWrhv7PbKAMF1Eml8cZ4",
        "pbkdf2-sha256$+1000$AAECAwQFBgcICQoLDA0ODw$"
            "ppsXnjrdPB4KryJ6DrOqKqhkWrhv7PbKAMF1Eml8cZ4",
        "pbkdf2-sha256$ 1000$AAECAwQFBgcICQoLDA0ODw$"
            "ppsXnjrdPB4KryJ6DrOqKqhkWrhv7PbKAMF1Eml8cZ4",
        "pbkdf2-sha256$10000001$AAECAwQFBgcICQoLDA0ODw$"
            "ppsXnjrdPB4KryJ6DrOqKqhkWrhv7PbKAMF1Eml8cZ4",
        "pbkdf2-sha256$99999999999999999999$AAECAwQFBgcICQoLDA0ODw$"
            "ppsXnjrdPB4KryJ6DrOqKqhkWrhv7PbKAMF1Eml8cZ4",
        "pbkdf2-sha256$$AAECAwQFBgcICQoLDA0ODw$"
            "ppsXnjrdPB4KryJ6DrOqKqhkWrhv7PbKAMF1Eml8cZ4",
        "pbkdf2-sha256$1e3$AAECAwQFBgcICQoLDA0ODw$"
            "ppsXnjrdPB4KryJ6DrOqKqhkWrhv7PbKAMF1Eml8cZ4",
        /* salt of 15 and 17 bytes, or with a padding character */
        "pbkdf2-sha256$1000$AAECAwQFBgcICQoLDA0O$"
            "ppsXnjrdPB4KryJ6DrOqKqhkWrhv7PbKAMF1Eml8cZ4",
        "pbkdf2-sha256$1000$AAECAwQFBgcICQoLDA0ODxA$"
            "ppsXnjrdPB4KryJ6DrOqKqhkWrhv7PbKAMF1Eml8cZ4",
        "pbkdf2-sha256$1000$AAECAwQFBgcICQoLDA0ODw==$"
            "ppsXnjrdPB4KryJ6DrOqKqhkWrhv7PbKAMF1Eml8cZ4",
        /* hash too short, too long, with a bad character or extra field */
        "pbkdf2-sha256$1000$AAECAwQFBgcICQoLDA0ODw$"
            "ppsXnjrdPB4KryJ6DrOqKqhkWrhv7PbKAMF1Eml8cZ",
        "pbkdf2-sha256$1000$AAECAwQFBgcICQoLDA0ODw$"
            "ppsXnjrdPB4KryJ6DrOqKqhkWrhv7PbKAMF1Eml8cZ4A",
        "pbkdf2-sha256$1000$AAECAwQFBgcICQoLDA0ODw$"
            "ppsXnjrdPB4KryJ6DrOqKqhkWrhv7PbKAMF1Eml8cZ+",
        "pbkdf2-sha256$1000$AAECAwQFBgcICQoLDA0ODw$"
            "ppsXnjrdPB4KryJ6DrOqKqhkWrhv7PbKAMF1Eml8cZ4$",
        "pbkdf2-sha256$1000$AAECAwQFBgcICQoLDA0ODw$"
            "ppsXnjrdPB4KryJ6DrOqKqhkWrhv7PbKAMF1Eml8cZ4\n",
    };
    size_t              i;

    for (i = 0; i < ARRAY_LEN(encodings); i++) {
        ck_assert_msg(nh_password_verify(KNOWN_PASSWORD,
                                         strlen(KNOWN_PASSWORD), encodings[i])
                          == -1, "accepted \"%s\"", encodings[i]);
    }

    ck_assert_int_eq(nh_password_verify(KNOWN_PASSWORD,
                                        strlen(KNOWN_PASSWORD), NULL), -1);
}
END_TEST


START_TEST(password_hash_rejects_bad_arguments)
{
    char  hash[NH_PASSWORD_HASH_MAX];

    ck_assert_int_eq(nh_password_hash("pw", 2, 0, hash, sizeof(hash)), -1);
    ck_assert_int_eq(nh_password_hash("pw", 2, NH_PASSWORD_ITERATIONS_MAX + 1,
                                      hash, sizeof(hash)), -1);

    /* An 85-character hash does not fit in 85 bytes. */
    ck_assert_int_eq(nh_password_hash("pw", 2, 1000, hash, 85), -1);
    ck_assert_int_eq(nh_password_hash("pw", 2, 1000, hash, 86), 0);
    ck_assert_uint_eq(strlen(hash), 85);
}
END_TEST


START_TEST(const_time_eq_compares_bytes)
{
    ck_assert_int_eq(nh_const_time_eq("abcdef", "abcdef", 6), 1);
    ck_assert_int_eq(nh_const_time_eq("abcdef", "abcdeF", 6), 0);
    ck_assert_int_eq(nh_const_time_eq("Xbcdef", "abcdef", 6), 0);
    ck_assert_int_eq(nh_const_time_eq("abcdef", "abcxyz", 3), 1);
    ck_assert_int_eq(nh_const_time_eq("a", "b", 0), 1);
}
END_TEST


Suite *
nh_crypto_suite(void)
{
    Suite  *suite;
    TCase  *tc;

    suite = suite_create("crypto");

    tc = tcase_create("digest");
    tcase_add_test(tc, sha256_matches_fips_180_vectors);
    tcase_add_test(tc, hex_encode_writes_lower_case);
    tcase_add_test(tc, const_time_eq_compares_bytes);
    suite_add_tcase(suite, tc);

    tc = tcase_create("base64url");
    tcase_add_test(tc, base64url_encodes_rfc4648_vectors);
    tcase_add_test(tc, base64url_decodes_rfc4648_vectors);
    tcase_add_test(tc, base64url_uses_url_safe_alphabet);
    tcase_add_test(tc, base64url_round_trips_every_length);
    tcase_add_test(tc, base64url_decode_rejects_invalid_input);
    suite_add_tcase(suite, tc);

    tc = tcase_create("token");
    tcase_add_test(tc, token_has_prefix_and_43_random_characters);
    tcase_add_test(tc, token_accepts_empty_prefix);
    tcase_add_test(tc, token_values_differ);
    tcase_add_test(tc, token_rejects_small_buffer);
    suite_add_tcase(suite, tc);

    tc = tcase_create("password");
    tcase_add_test(tc, password_hash_round_trips);
    tcase_add_test(tc, password_verify_rejects_wrong_password);
    tcase_add_test(tc, password_hash_uses_random_salt);
    tcase_add_test(tc, password_uses_length_not_nul);
    tcase_add_test(tc, password_empty_round_trips);
    tcase_add_test(tc, password_verify_matches_known_pbkdf2);
    tcase_add_test(tc, password_verify_compares_whole_hash);
    tcase_add_test(tc, password_verify_uses_stored_iterations);
    tcase_add_test(tc, password_verify_rejects_malformed_encoding);
    tcase_add_test(tc, password_hash_rejects_bad_arguments);
    tcase_set_timeout(tc, 30);
    suite_add_tcase(suite, tc);

    return suite;
}
