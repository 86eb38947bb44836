#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "../../common/nh_twilio_errors.h"
#include "check_suites.h"


/* One Twilio reply and the rule it must match, one case per table row. */
typedef struct {
    const char  *name;
    long         http_status;
    long         code;
    size_t       row;
    int          transient;
} twilio_case_t;

static const twilio_case_t  twilio_cases[] = {
    { "429 code 20429 too many requests", 429, 20429, 0, 1 },
    { "400 code 30001 queue overflow", 400, 30001, 1, 1 },
    { "401 code 20003 authentication", 401, 20003, 2, 0 },
    { "400 code 21211 invalid To", 400, 21211, 3, 0 },
    { "400 code 21408 region not enabled", 400, 21408, 4, 0 },
    { "400 code 21610 unsubscribed", 400, 21610, 5, 0 },
    { "400 code 21614 not a mobile number", 400, 21614, 6, 0 },
    { "no response", 0, 0, 7, 1 },
    { "429 without a code", 429, 0, 8, 1 },
    { "503 with an unknown code", 503, 20500, 9, 1 },
    { "404 code 20404 not found", 404, 20404, 10, 0 },
    { "302 redirect", 302, 0, 11, 0 },
};

#define TWILIO_CASES  (sizeof(twilio_cases) / sizeof(twilio_cases[0]))


START_TEST(classify_matches_expected_row)
{
    const twilio_case_t           *c = &twilio_cases[_i];
    const nh_twilio_error_rule_t  *rule;

    rule = nh_twilio_error_classify(c->http_status, c->code);

    ck_assert_msg(rule == &nh_twilio_error_rules[c->row],
                  "%s: matched row %zu, expected row %zu", c->name,
                  (size_t) (rule - nh_twilio_error_rules), c->row);
    ck_assert_msg((int) rule->transient == c->transient,
                  "%s: transient is %d", c->name, (int) rule->transient);
}
END_TEST


START_TEST(every_row_has_a_case)
{
    size_t  row, i;
    int     found;

    ck_assert_uint_eq(nh_twilio_error_rules_count, TWILIO_CASES);

    for (row = 0; row < nh_twilio_error_rules_count; row++) {
        found = 0;
        for (i = 0; i < TWILIO_CASES; i++) {
            found |= twilio_cases[i].row == row;
        }

        ck_assert_msg(found, "table row %zu has no test case", row);
    }
}
END_TEST


START_TEST(code_wins_over_status)
{
    /* A code decides even when a proxy changed the status. */
    ck_assert(nh_twilio_error_classify(400, 20429)->transient);
    ck_assert(!nh_twilio_error_classify(503, 21211)->transient);
    ck_assert(!nh_twilio_error_classify(500, 20003)->transient);
}
END_TEST


START_TEST(unknown_code_follows_status)
{
    ck_assert(!nh_twilio_error_classify(400, 21606)->transient);
    ck_assert(nh_twilio_error_classify(500, 20500)->transient);
    ck_assert(nh_twilio_error_classify(429, 99999)->transient);
}
END_TEST


START_TEST(parse_reads_code_and_message)
{
    const char  *body =
        "{\"code\": 21211, \"message\": \"The 'To' number +15005550001 is "
        "not a valid phone number.\", \"more_info\": "
        "\"https://www.twilio.com/docs/errors/21211\", \"status\": 400}";
    char         message[128];
    long         code;

    ck_assert_int_eq(nh_twilio_error_parse(body, strlen(body), &code,
                                           message, sizeof(message)), 0);
    ck_assert_int_eq(code, 21211);
    ck_assert_str_eq(message, "The 'To' number +15005550001 is not a valid "
                     "phone number.");
}
END_TEST


START_TEST(parse_cuts_message_to_buffer)
{
    const char  *body = "{\"code\": 20003, \"message\": \"Authenticate\"}";
    char         message[5];
    long         code;

    ck_assert_int_eq(nh_twilio_error_parse(body, strlen(body), &code,
                                           message, sizeof(message)), 0);
    ck_assert_int_eq(code, 20003);
    ck_assert_str_eq(message, "Auth");
}
END_TEST


START_TEST(parse_ignores_invalid_code)
{
    const char  *bodies[] = {
        "{\"code\": \"21211\", \"message\": \"code is a string\"}",
        "{\"code\": -1, \"message\": \"negative\"}",
        "{\"code\": 21211.5, \"message\": \"fraction\"}",
        "{\"code\": null, \"message\": \"null\"}",
        "{\"message\": \"no code\"}",
    };
    char         message[32];
    long         code;
    size_t       i;

    for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        ck_assert_int_eq(nh_twilio_error_parse(bodies[i], strlen(bodies[i]),
                                               &code, message,
                                               sizeof(message)), 0);
        ck_assert_msg(code == 0, "body %zu: code is %ld", i, code);
        ck_assert_msg(message[0] != '\0', "body %zu: message is empty", i);
    }
}
END_TEST


START_TEST(parse_rejects_other_bodies)
{
    const char  *bodies[] = {
        "",
        "Service Unavailable",
        "[21211]",
        "{\"error\": \"quota\"}",
        "<html><body>502 Bad Gateway</body></html>",
    };
    char         message[32];
    long         code;
    size_t       i;

    for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        ck_assert_int_eq(nh_twilio_error_parse(bodies[i], strlen(bodies[i]),
                                               &code, message,
                                               sizeof(message)), -1);
        ck_assert_int_eq(code, 0);
        ck_assert_str_eq(message, "");
    }
}
END_TEST


Suite *
nh_twilio_suite(void)
{
    Suite  *s;
    TCase  *tc;

    s = suite_create("twilio");

    tc = tcase_create("classify");
    tcase_add_loop_test(tc, classify_matches_expected_row, 0, TWILIO_CASES);
    tcase_add_test(tc, every_row_has_a_case);
    tcase_add_test(tc, code_wins_over_status);
    tcase_add_test(tc, unknown_code_follows_status);
    suite_add_tcase(s, tc);

    tc = tcase_create("parse");
    tcase_add_test(tc, parse_reads_code_and_message);
    tcase_add_test(tc, parse_cuts_message_to_buffer);
    tcase_add_test(tc, parse_ignores_invalid_code);
    tcase_add_test(tc, parse_rejects_other_bodies);
    suite_add_tcase(s, tc);

    return s;
}
