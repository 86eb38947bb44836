#include <string.h>

#include <check.h>

#include "../../common/nh_callback.h"
#include "check_suites.h"


/*
 * Twilio's published example of X-Twilio-Signature: auth token 12345, the
 * URL https://mycompany.com/myapp.php?foo=1&bar=2 and five parameters.
 */
#define TWILIO_URL    "https://mycompany.com/myapp.php?foo=1&bar=2"
#define TWILIO_BODY                                                           \
    "CallSid=CA1234567890ABCDE&Caller=%2B12349013030&Digits=1234"             \
    "&From=%2B12349013030&To=%2B18005551212"
#define TWILIO_SIGNATURE  "0/KCTR6DLpKmkAf8muzZqo1nDgQ="

/* The HMAC-SHA256 of timestamp and token, computed with openssl dgst. */
#define MAILGUN_KEY        "key-signing-example"
#define MAILGUN_TIMESTAMP  "1529006854"
#define MAILGUN_TOKEN      "072d8f3b3a9c6e4b7f9a5c2d1e0f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4"
#define MAILGUN_SIGNATURE                                                     \
    "4af0d4594162439a9873fe8c669fb0983d15ee1bc61cc129836ad82b33547ec2"


START_TEST(form_decodes_plus_and_percent_escapes)
{
    nh_form_t  form;

    ck_assert_int_eq(nh_form_parse("a=1+2&b=%2B1%20x&&c&d=", 22, &form), 0);
    ck_assert_uint_eq(form.n, 4);
    ck_assert_str_eq(nh_form_get(&form, "a"), "1 2");
    ck_assert_str_eq(nh_form_get(&form, "b"), "+1 x");
    ck_assert_str_eq(nh_form_get(&form, "c"), "");
    ck_assert_str_eq(nh_form_get(&form, "d"), "");
    ck_assert_ptr_null(nh_form_get(&form, "e"));
    nh_form_free(&form);
}
END_TEST


START_TEST(form_keeps_equals_signs_in_values)
{
    nh_form_t  form;

    ck_assert_int_eq(nh_form_parse("a=b=c", 5, &form), 0);
    ck_assert_str_eq(nh_form_get(&form, "a"), "b=c");
    nh_form_free(&form);
}
END_TEST


START_TEST(form_rejects_malformed_escapes)
{
    nh_form_t  form;

    ck_assert_int_eq(nh_form_parse("a=%2", 4, &form), -1);
    ck_assert_int_eq(nh_form_parse("a=%zz", 5, &form), -1);
}
END_TEST


START_TEST(form_rejects_too_many_parameters)
{
    char       body[NH_FORM_PARAMS_MAX * 4 + 8];
    size_t     i, len;
    nh_form_t  form;

    len = 0;

    for (i = 0; i <= NH_FORM_PARAMS_MAX; i++) {
        memcpy(body + len, "a=1&", 4);
        len += 4;
    }

    ck_assert_int_eq(nh_form_parse(body, len, &form), -1);
    ck_assert_int_eq(nh_form_parse(body, len - 8, &form), 0);
    ck_assert_uint_eq(form.n, NH_FORM_PARAMS_MAX - 1);
    nh_form_free(&form);
}
END_TEST


START_TEST(twilio_signature_matches_published_example)
{
    char       signature[NH_TWILIO_SIGNATURE_LEN + 1];
    nh_form_t  form;

    ck_assert_int_eq(nh_form_parse(TWILIO_BODY, strlen(TWILIO_BODY), &form),
                     0);
    ck_assert_int_eq(nh_twilio_signature("12345", TWILIO_URL, &form,
                                         signature), 0);
    ck_assert_str_eq(signature, TWILIO_SIGNATURE);
    ck_assert_int_eq(nh_twilio_signature_valid("12345", TWILIO_URL, &form,
                         TWILIO_SIGNATURE, strlen(TWILIO_SIGNATURE)), 1);
    nh_form_free(&form);
}
END_TEST


START_TEST(twilio_signature_rejects_changes)
{
    nh_form_t  form;

    ck_assert_int_eq(nh_form_parse(TWILIO_BODY, strlen(TWILIO_BODY), &form),
                     0);

    /* Another token, another URL, a changed value, a cut signature. */
    ck_assert_int_eq(nh_twilio_signature_valid("12346", TWILIO_URL, &form,
                         TWILIO_SIGNATURE, strlen(TWILIO_SIGNATURE)), 0);
    ck_assert_int_eq(nh_twilio_signature_valid("12345",
                         "http://mycompany.com/myapp.php?foo=1&bar=2", &form,
                         TWILIO_SIGNATURE, strlen(TWILIO_SIGNATURE)), 0);
    ck_assert_int_eq(nh_twilio_signature_valid("12345", TWILIO_URL, &form,
                         TWILIO_SIGNATURE, 27), 0);

    form.params[2].value[0] = '9';
    ck_assert_int_eq(nh_twilio_signature_valid("12345", TWILIO_URL, &form,
                         TWILIO_SIGNATURE, strlen(TWILIO_SIGNATURE)), 0);
    nh_form_free(&form);
}
END_TEST


START_TEST(twilio_signature_sorts_parameters_by_name)
{
    char       a[NH_TWILIO_SIGNATURE_LEN + 1], b[NH_TWILIO_SIGNATURE_LEN + 1];
    nh_form_t  one, two;

    ck_assert_int_eq(nh_form_parse("To=x&From=y", 11, &one), 0);
    ck_assert_int_eq(nh_form_parse("From=y&To=x", 11, &two), 0);
    ck_assert_int_eq(nh_twilio_signature("t", "u", &one, a), 0);
    ck_assert_int_eq(nh_twilio_signature("t", "u", &two, b), 0);
    ck_assert_str_eq(a, b);
    nh_form_free(&one);
    nh_form_free(&two);
}
END_TEST


START_TEST(mailgun_signature_matches_openssl)
{
    ck_assert_int_eq(nh_mailgun_signature_valid(MAILGUN_KEY,
                         MAILGUN_TIMESTAMP, MAILGUN_TOKEN,
                         MAILGUN_SIGNATURE), 1);
}
END_TEST


START_TEST(mailgun_signature_rejects_changes)
{
    ck_assert_int_eq(nh_mailgun_signature_valid("other-key",
                         MAILGUN_TIMESTAMP, MAILGUN_TOKEN,
                         MAILGUN_SIGNATURE), 0);
    ck_assert_int_eq(nh_mailgun_signature_valid(MAILGUN_KEY, "1529006855",
                         MAILGUN_TOKEN, MAILGUN_SIGNATURE), 0);
    ck_assert_int_eq(nh_mailgun_signature_valid(MAILGUN_KEY,
                         MAILGUN_TIMESTAMP, MAILGUN_TOKEN, "4af0"), 0);
    ck_assert_int_eq(nh_mailgun_signature_valid(MAILGUN_KEY,
                         MAILGUN_TIMESTAMP, MAILGUN_TOKEN,
                         "4AF0D4594162439A9873FE8C669FB0983D15EE1BC61CC129"
                         "836AD82B33547EC2"), 0);
}
END_TEST


Suite *
nh_callback_suite(void)
{
    Suite  *s;
    TCase  *tc;

    s = suite_create("callback");
    tc = tcase_create("core");

    tcase_add_test(tc, form_decodes_plus_and_percent_escapes);
    tcase_add_test(tc, form_keeps_equals_signs_in_values);
    tcase_add_test(tc, form_rejects_malformed_escapes);
    tcase_add_test(tc, form_rejects_too_many_parameters);
    tcase_add_test(tc, twilio_signature_matches_published_example);
    tcase_add_test(tc, twilio_signature_rejects_changes);
    tcase_add_test(tc, twilio_signature_sorts_parameters_by_name);
    tcase_add_test(tc, mailgun_signature_matches_openssl);
    tcase_add_test(tc, mailgun_signature_rejects_changes);
    suite_add_tcase(s, tc);

    return s;
}
