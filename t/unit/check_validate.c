#include <string.h>

#include <check.h>

#include "../../common/nh_validate.h"
#include "check_suites.h"


#define ARRAY_LEN(a)  (sizeof(a) / sizeof((a)[0]))


typedef struct {
    const char  *text;
    size_t       len;
} bytes_t;

#define BYTES(s)  { s, sizeof(s) - 1 }


static const char  *valid_emails[] = {
    "a@b.co",
    "user@example.com",
    "first.last@example.com",
    "user+tag@example.com",
    "o'brien@example.ie",
    "x_y-z@sub.example.co.uk",
    "!#$%&'*+-/=?^_`{|}~@example.com",
    "1234@123.example",
    "User@Example.COM",
    "a@b-c.d-e.fg",
    "a@xn--bcher-kva.example",
};


static const char  *invalid_emails[] = {
    "",
    "plain",
    "@example.com",
    "user@",
    "user@@example.com",
    "user@host@example.com",
    "user@localhost",
    ".user@example.com",
    "user.@example.com",
    "us..er@example.com",
    "user@-example.com",
    "user@example-.com",
    "user@sub.-example.com",
    "user@example..com",
    "user@.example.com",
    "user@example.com.",
    "user name@example.com",
    "\"user\"@example.com",
    "user@[127.0.0.1]",
    "user@exa_mple.com",
    "user@exa mple.com",
    "user(comment)@example.com",
    "user@example.com ",
    " user@example.com",
    "us\xc3\xa9r@example.com",
    "user@b\xc3\xbc" "cher.example",
    "user@example.com\n",
};


START_TEST(email_accepts_valid_addresses)
{
    size_t  i;

    for (i = 0; i < ARRAY_LEN(valid_emails); i++) {
        ck_assert_msg(nh_email_is_valid(valid_emails[i],
                                        strlen(valid_emails[i])) == 1,
                      "rejected \"%s\"", valid_emails[i]);
    }
}
END_TEST


START_TEST(email_rejects_invalid_addresses)
{
    size_t  i;

    for (i = 0; i < ARRAY_LEN(invalid_emails); i++) {
        ck_assert_msg(nh_email_is_valid(invalid_emails[i],
                                        strlen(invalid_emails[i])) == 0,
                      "accepted \"%s\"", invalid_emails[i]);
    }
}
END_TEST


START_TEST(email_rejects_embedded_nul)
{
    ck_assert_int_eq(nh_email_is_valid("user@exa\0mple.com", 17), 0);
    ck_assert_int_eq(nh_email_is_valid("us\0er@example.com", 17), 0);
    ck_assert_int_eq(nh_email_is_valid(NULL, 0), 0);
}
END_TEST


START_TEST(email_uses_len_not_nul)
{
    /* The first 16 bytes are a valid address, the whole string is not. */
    ck_assert_int_eq(nh_email_is_valid("user@example.com@x", 16), 1);
    ck_assert_int_eq(nh_email_is_valid("user@example.com@x", 18), 0);
}
END_TEST


START_TEST(email_limits_local_part_to_64)
{
    char  address[128];

    memset(address, 'l', 64);
    strcpy(address + 64, "@example.com");
    ck_assert_int_eq(nh_email_is_valid(address, strlen(address)), 1);

    memset(address, 'l', 65);
    strcpy(address + 65, "@example.com");
    ck_assert_int_eq(nh_email_is_valid(address, strlen(address)), 0);
}
END_TEST


START_TEST(email_limits_domain_label_to_63)
{
    char  address[128];

    strcpy(address, "user@");
    memset(address + 5, 'd', 63);
    strcpy(address + 5 + 63, ".com");
    ck_assert_int_eq(nh_email_is_valid(address, strlen(address)), 1);

    strcpy(address, "user@");
    memset(address + 5, 'd', 64);
    strcpy(address + 5 + 64, ".com");
    ck_assert_int_eq(nh_email_is_valid(address, strlen(address)), 0);
}
END_TEST


START_TEST(email_limits_total_to_254)
{
    char    address[300];
    size_t  n;

    /* 64 + 1 + 63 + 1 + 63 + 1 + 61 = 254 characters. */
    n = 0;
    memset(address + n, 'l', 64);
    n += 64;
    address[n++] = '@';
    memset(address + n, 'a', 63);
    n += 63;
    address[n++] = '.';
    memset(address + n, 'b', 63);
    n += 63;
    address[n++] = '.';
    memset(address + n, 'c', 61);
    n += 61;

    ck_assert_uint_eq(n, NH_EMAIL_MAX);
    ck_assert_int_eq(nh_email_is_valid(address, n), 1);

    address[n++] = 'c';
    ck_assert_int_eq(nh_email_is_valid(address, n), 0);
}
END_TEST


START_TEST(request_id_accepts_allowed_characters)
{
    static const char  *ids[] = {
        "a",
        "req-123",
        "0f8fad5b-d9cb-469f-a165-70867728950e",
        "trace:span.01_A-Z",
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-",
    };
    char                longest[NH_REQUEST_ID_MAX];
    size_t              i;

    for (i = 0; i < ARRAY_LEN(ids); i++) {
        ck_assert_msg(nh_request_id_is_valid(ids[i], strlen(ids[i])) == 1,
                      "rejected \"%s\"", ids[i]);
    }

    memset(longest, 'x', sizeof(longest));
    ck_assert_int_eq(nh_request_id_is_valid(longest, NH_REQUEST_ID_MAX), 1);
}
END_TEST


START_TEST(request_id_rejects_invalid_values)
{
    static const char  *ids[] = {
        "",
        "a b",
        "a/b",
        "a\"b",
        "a\\b",
        "a,b",
        "a;b",
        "a\r\nSet-Cookie: x",
        "a\tb",
        "\xc3\xa9",
        "<script>",
    };
    char                longer[NH_REQUEST_ID_MAX + 1];
    size_t              i;

    for (i = 0; i < ARRAY_LEN(ids); i++) {
        ck_assert_msg(nh_request_id_is_valid(ids[i], strlen(ids[i])) == 0,
                      "accepted \"%s\"", ids[i]);
    }

    memset(longer, 'x', sizeof(longer));
    ck_assert_int_eq(nh_request_id_is_valid(longer, sizeof(longer)), 0);
    ck_assert_int_eq(nh_request_id_is_valid("ab\0cd", 5), 0);
    ck_assert_int_eq(nh_request_id_is_valid(NULL, 0), 0);
}
END_TEST


START_TEST(utf8_accepts_valid_sequences)
{
    static const bytes_t  texts[] = {
        BYTES(""),
        BYTES("plain ASCII"),
        BYTES("\xc2\x80"),                 /* U+0080, first 2-byte */
        BYTES("\xc3\xa9t\xc3\xa9"),        /* U+00E9, 't', U+00E9 */
        BYTES("\xdf\xbf"),                 /* U+07FF, last 2-byte */
        BYTES("\xe0\xa0\x80"),             /* U+0800, first 3-byte */
        BYTES("\xe2\x82\xac"),             /* U+20AC euro sign */
        BYTES("\xed\x9f\xbf"),             /* U+D7FF, below surrogates */
        BYTES("\xee\x80\x80"),             /* U+E000, above surrogates */
        BYTES("\xef\xbf\xbd"),             /* U+FFFD */
        BYTES("\xef\xbf\xbf"),             /* U+FFFF */
        BYTES("\xf0\x90\x80\x80"),         /* U+10000, first 4-byte */
        BYTES("\xf0\x9f\x93\xa7"),         /* U+1F4E7 e-mail symbol */
        BYTES("\xf4\x8f\xbf\xbf"),         /* U+10FFFF, the last */
        BYTES("a\0b"),                     /* U+0000 */
    };
    size_t                i;

    for (i = 0; i < ARRAY_LEN(texts); i++) {
        ck_assert_msg(nh_utf8_is_valid(texts[i].text, texts[i].len) == 1,
                      "rejected case %zu", i);
    }
}
END_TEST


START_TEST(utf8_rejects_overlong_forms)
{
    static const bytes_t  texts[] = {
        BYTES("\xc0\x80"),                 /* U+0000 in 2 bytes */
        BYTES("\xc0\xaf"),                 /* '/' in 2 bytes */
        BYTES("\xc1\xbf"),
        BYTES("\xe0\x80\x80"),
        BYTES("\xe0\x9f\xbf"),             /* U+07FF in 3 bytes */
        BYTES("\xf0\x80\x80\x80"),
        BYTES("\xf0\x8f\xbf\xbf"),         /* U+FFFF in 4 bytes */
    };
    size_t                i;

    for (i = 0; i < ARRAY_LEN(texts); i++) {
        ck_assert_msg(nh_utf8_is_valid(texts[i].text, texts[i].len) == 0,
                      "accepted case %zu", i);
    }
}
END_TEST


START_TEST(utf8_rejects_surrogates)
{
    static const bytes_t  texts[] = {
        BYTES("\xed\xa0\x80"),             /* U+D800 */
        BYTES("\xed\xaf\xbf"),             /* U+DBFF */
        BYTES("\xed\xb0\x80"),             /* U+DC00 */
        BYTES("\xed\xbf\xbf"),             /* U+DFFF */
        BYTES("\xed\xa0\xbd\xed\xb3\xa7"), /* a CESU-8 pair */
    };
    size_t                i;

    for (i = 0; i < ARRAY_LEN(texts); i++) {
        ck_assert_msg(nh_utf8_is_valid(texts[i].text, texts[i].len) == 0,
                      "accepted case %zu", i);
    }
}
END_TEST


START_TEST(utf8_rejects_above_10ffff)
{
    static const bytes_t  texts[] = {
        BYTES("\xf4\x90\x80\x80"),         /* U+110000 */
        BYTES("\xf5\x80\x80\x80"),
        BYTES("\xf7\xbf\xbf\xbf"),
        BYTES("\xf8\x88\x80\x80\x80"),     /* old 5-byte form */
        BYTES("\xfc\x84\x80\x80\x80\x80"), /* old 6-byte form */
        BYTES("\xfe"),
        BYTES("\xff"),
    };
    size_t                i;

    for (i = 0; i < ARRAY_LEN(texts); i++) {
        ck_assert_msg(nh_utf8_is_valid(texts[i].text, texts[i].len) == 0,
                      "accepted case %zu", i);
    }
}
END_TEST


START_TEST(utf8_rejects_truncated_sequences)
{
    static const bytes_t  texts[] = {
        BYTES("\xc3"),
        BYTES("abc\xc3"),
        BYTES("\xe2\x82"),
        BYTES("\xf0\x9f\x93"),
        BYTES("\xf0\x9f"),
        BYTES("\xe2\x82" "a"),
        BYTES("\xf0\x9f\x93" "a"),
    };
    size_t                i;

    for (i = 0; i < ARRAY_LEN(texts); i++) {
        ck_assert_msg(nh_utf8_is_valid(texts[i].text, texts[i].len) == 0,
                      "accepted case %zu", i);
    }

    /* A sequence cut by len, though the bytes after it would complete it. */
    ck_assert_int_eq(nh_utf8_is_valid("\xe2\x82\xac", 2), 0);
}
END_TEST


START_TEST(utf8_rejects_stray_continuation_bytes)
{
    static const bytes_t  texts[] = {
        BYTES("\x80"),
        BYTES("\xbf"),
        BYTES("a\x80" "b"),
        BYTES("\xc3\xa9\xa9"),
        BYTES("\xc3\x28"),                 /* lead byte, then ASCII */
        BYTES("\xe2\x28\xa1"),
        BYTES("\xe2\x82\x28"),
        BYTES("\xf0\x28\x8c\xbc"),
        BYTES("\xf0\x90\x28\xbc"),
        BYTES("\xf0\x90\x8c\x28"),
        BYTES("\xc3\xc3\xa9"),
    };
    size_t                i;

    for (i = 0; i < ARRAY_LEN(texts); i++) {
        ck_assert_msg(nh_utf8_is_valid(texts[i].text, texts[i].len) == 0,
                      "accepted case %zu", i);
    }
}
END_TEST


START_TEST(phone_accepts_e164_numbers)
{
    size_t       i;
    const char  *phones[] = {
        "+14155552671", "+442071838750", "+12", "+123456789012345"
    };

    for (i = 0; i < ARRAY_LEN(phones); i++) {
        ck_assert_msg(nh_phone_is_e164(phones[i], strlen(phones[i])) == 1,
                      "rejected %s", phones[i]);
    }
}
END_TEST


START_TEST(phone_rejects_other_forms)
{
    size_t       i;
    const char  *phones[] = {
        "14155552671", "+04155552671", "+1", "+1234567890123456",
        "+1 415 555 2671", "+1-415-5552671", "", "+", "+1415555267a"
    };

    for (i = 0; i < ARRAY_LEN(phones); i++) {
        ck_assert_msg(nh_phone_is_e164(phones[i], strlen(phones[i])) == 0,
                      "accepted \"%s\"", phones[i]);
    }
}
END_TEST


START_TEST(sms_counts_gsm7_single_and_parts)
{
    char               body[400];
    size_t             units;
    nh_sms_encoding_e  enc;

    memset(body, 'a', sizeof(body));

    ck_assert_int_eq(nh_sms_parts(body, 160, &enc, &units), 1);
    ck_assert_int_eq(enc, NH_SMS_GSM7);
    ck_assert_uint_eq(units, 160);

    ck_assert_int_eq(nh_sms_parts(body, 161, &enc, &units), 2);
    ck_assert_int_eq(nh_sms_parts(body, 306, &enc, &units), 2);
    ck_assert_int_eq(nh_sms_parts(body, 307, &enc, &units), 3);
    ck_assert_int_eq(nh_sms_parts(body, 0, &enc, &units), 0);
}
END_TEST


START_TEST(sms_counts_extension_characters_twice)
{
    size_t             units;
    nh_sms_encoding_e  enc;

    /* "{}" and the euro sign are in the extension table. */
    ck_assert_int_eq(nh_sms_parts("{}\xe2\x82\xac", 5, &enc, &units), 1);
    ck_assert_int_eq(enc, NH_SMS_GSM7);
    ck_assert_uint_eq(units, 6);

    /* Greek capitals and accented letters of the basic set count once. */
    ck_assert_int_eq(nh_sms_parts("\xce\x94\xc3\xa9", 4, &enc, &units),
                     1);
    ck_assert_int_eq(enc, NH_SMS_GSM7);
    ck_assert_uint_eq(units, 2);
}
END_TEST


START_TEST(sms_uses_ucs2_outside_gsm7)
{
    char               body[300];
    size_t             i, units;
    nh_sms_encoding_e  enc;

    /* A backtick is not in GSM 03.38. */
    ck_assert_int_eq(nh_sms_parts("a`b", 3, &enc, &units), 1);
    ck_assert_int_eq(enc, NH_SMS_UCS2);
    ck_assert_uint_eq(units, 3);

    /* "\xd0\x96" is Cyrillic Zhe: 70 fit in one part, 71 need two. */
    for (i = 0; i < 71; i++) {
        body[2 * i] = (char) 0xd0;
        body[2 * i + 1] = (char) 0x96;
    }

    ck_assert_int_eq(nh_sms_parts(body, 140, &enc, &units), 1);
    ck_assert_int_eq(nh_sms_parts(body, 142, &enc, &units), 2);
    ck_assert_uint_eq(units, 71);

    /* An emoji outside the BMP takes two UTF-16 units. */
    ck_assert_int_eq(nh_sms_parts("\xf0\x9f\x98\x80", 4, &enc, &units), 1);
    ck_assert_uint_eq(units, 2);
}
END_TEST


START_TEST(sms_rejects_invalid_utf8)
{
    size_t             units;
    nh_sms_encoding_e  enc;

    ck_assert_int_eq(nh_sms_parts("\xff", 1, &enc, &units), -1);
}
END_TEST


Suite *
nh_validate_suite(void)
{
    Suite  *suite;
    TCase  *tc;

    suite = suite_create("validate");

    tc = tcase_create("email");
    tcase_add_test(tc, email_accepts_valid_addresses);
    tcase_add_test(tc, email_rejects_invalid_addresses);
    tcase_add_test(tc, email_rejects_embedded_nul);
    tcase_add_test(tc, email_uses_len_not_nul);
    tcase_add_test(tc, email_limits_local_part_to_64);
    tcase_add_test(tc, email_limits_domain_label_to_63);
    tcase_add_test(tc, email_limits_total_to_254);
    suite_add_tcase(suite, tc);

    tc = tcase_create("request_id");
    tcase_add_test(tc, request_id_accepts_allowed_characters);
    tcase_add_test(tc, request_id_rejects_invalid_values);
    suite_add_tcase(suite, tc);

    tc = tcase_create("utf8");
    tcase_add_test(tc, utf8_accepts_valid_sequences);
    tcase_add_test(tc, utf8_rejects_overlong_forms);
    tcase_add_test(tc, utf8_rejects_surrogates);
    tcase_add_test(tc, utf8_rejects_above_10ffff);
    tcase_add_test(tc, utf8_rejects_truncated_sequences);
    tcase_add_test(tc, utf8_rejects_stray_continuation_bytes);
    suite_add_tcase(suite, tc);

    tc = tcase_create("phone");
    tcase_add_test(tc, phone_accepts_e164_numbers);
    tcase_add_test(tc, phone_rejects_other_forms);
    suite_add_tcase(suite, tc);

    tc = tcase_create("sms");
    tcase_add_test(tc, sms_counts_gsm7_single_and_parts);
    tcase_add_test(tc, sms_counts_extension_characters_twice);
    tcase_add_test(tc, sms_uses_ucs2_outside_gsm7);
    tcase_add_test(tc, sms_rejects_invalid_utf8);
    suite_add_tcase(suite, tc);

    return suite;
}
