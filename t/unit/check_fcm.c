#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "../../common/nh_fcm_errors.h"
#include "check_suites.h"


/* One FCM reply and the rule it must match, one case per table row. */
typedef struct {
    const char  *name;
    long         http_status;
    const char  *code;
    size_t       row;
    int          transient;
    int          unregistered;
    int          reauthenticate;
} fcm_case_t;

static const fcm_case_t  fcm_cases[] = {
    { "404 UNREGISTERED", 404, "UNREGISTERED", 0, 0, 1, 0 },
    { "400 INVALID_ARGUMENT", 400, "INVALID_ARGUMENT", 1, 0, 0, 0 },
    { "403 SENDER_ID_MISMATCH", 403, "SENDER_ID_MISMATCH", 2, 0, 0, 0 },
    { "401 THIRD_PARTY_AUTH_ERROR", 401, "THIRD_PARTY_AUTH_ERROR", 3,
      0, 0, 0 },
    { "429 QUOTA_EXCEEDED", 429, "QUOTA_EXCEEDED", 4, 1, 0, 0 },
    { "503 UNAVAILABLE", 503, "UNAVAILABLE", 5, 1, 0, 0 },
    { "500 INTERNAL", 500, "INTERNAL", 6, 1, 0, 0 },
    { "401 UNAUTHENTICATED", 401, "UNAUTHENTICATED", 7, 0, 0, 1 },
    { "no response", 0, NULL, 8, 1, 0, 0 },
    { "429 without a code", 429, NULL, 9, 1, 0, 0 },
    { "502 without a code", 502, "", 10, 1, 0, 0 },
    { "410 unknown code", 410, "GONE", 11, 0, 0, 0 },
    { "302 redirect", 302, NULL, 12, 0, 0, 0 },
};

#define FCM_CASES  (sizeof(fcm_cases) / sizeof(fcm_cases[0]))


START_TEST(classify_matches_expected_row)
{
    const fcm_case_t           *c = &fcm_cases[_i];
    const nh_fcm_error_rule_t  *rule;

    rule = nh_fcm_error_classify(c->http_status, c->code);

    ck_assert_msg(rule == &nh_fcm_error_rules[c->row],
                  "%s: matched row %zu, expected row %zu", c->name,
                  (size_t) (rule - nh_fcm_error_rules), c->row);
    ck_assert_msg((int) rule->transient == c->transient,
                  "%s: transient is %d", c->name, (int) rule->transient);
    ck_assert_msg((int) rule->unregistered == c->unregistered,
                  "%s: unregistered is %d", c->name,
                  (int) rule->unregistered);
    ck_assert_msg((int) rule->reauthenticate == c->reauthenticate,
                  "%s: reauthenticate is %d", c->name,
                  (int) rule->reauthenticate);
}
END_TEST


START_TEST(every_row_has_a_case)
{
    size_t  row, i;
    int     found;

    ck_assert_uint_eq(nh_fcm_error_rules_count, FCM_CASES);

    for (row = 0; row < nh_fcm_error_rules_count; row++) {
        found = 0;
        for (i = 0; i < FCM_CASES; i++) {
            found |= fcm_cases[i].row == row;
        }

        ck_assert_msg(found, "table row %zu has no test case", row);
    }
}
END_TEST


START_TEST(code_wins_over_status)
{
    /* FCM sends UNAVAILABLE with 503, but the code decides even when a
     * proxy changed the status. */
    ck_assert(nh_fcm_error_classify(400, "UNAVAILABLE")->transient);
    ck_assert(!nh_fcm_error_classify(503, "INVALID_ARGUMENT")->transient);
}
END_TEST


START_TEST(unauthenticated_needs_401)
{
    const nh_fcm_error_rule_t  *rule;

    rule = nh_fcm_error_classify(403, "UNAUTHENTICATED");

    ck_assert(!rule->reauthenticate);
    ck_assert(!rule->transient);
}
END_TEST


START_TEST(parse_prefers_details_error_code)
{
    const char  *body =
        "{\"error\": {\"code\": 404, \"message\": \"Requested entity was "
        "not found.\", \"status\": \"NOT_FOUND\", \"details\": ["
        "{\"@type\": \"type.googleapis.com/google.rpc.BadRequest\"},"
        "{\"@type\": \"type.googleapis.com/google.firebase.fcm.v1.FcmError\","
        " \"errorCode\": \"UNREGISTERED\"}]}}";
    char         code[NH_FCM_CODE_MAX], message[64];

    ck_assert_int_eq(nh_fcm_error_parse(body, strlen(body), code, message,
                                        sizeof(message)), 0);
    ck_assert_str_eq(code, "UNREGISTERED");
    ck_assert_str_eq(message, "Requested entity was not found.");
}
END_TEST


START_TEST(parse_falls_back_to_status)
{
    const char  *body = "{\"error\": {\"code\": 401, \"message\": \"Request "
                        "had invalid authentication credentials.\", "
                        "\"status\": \"UNAUTHENTICATED\"}}";
    char         code[NH_FCM_CODE_MAX], message[16];

    ck_assert_int_eq(nh_fcm_error_parse(body, strlen(body), code, message,
                                        sizeof(message)), 0);
    ck_assert_str_eq(code, "UNAUTHENTICATED");
    /* Cut to the buffer. */
    ck_assert_str_eq(message, "Request had inv");
}
END_TEST


START_TEST(parse_rejects_other_bodies)
{
    const char  *bodies[] = {
        "",
        "Service Unavailable",
        "[1, 2]",
        "{\"error\": \"quota\"}",
        "{\"message\": \"no error member\"}",
    };
    char         code[NH_FCM_CODE_MAX], message[32];
    size_t       i;

    for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        ck_assert_int_eq(nh_fcm_error_parse(bodies[i], strlen(bodies[i]),
                                            code, message, sizeof(message)),
                         -1);
        ck_assert_str_eq(code, "");
        ck_assert_str_eq(message, "");
    }
}
END_TEST


Suite *
nh_fcm_suite(void)
{
    Suite  *s;
    TCase  *tc;

    s = suite_create("fcm");

    tc = tcase_create("classify");
    tcase_add_loop_test(tc, classify_matches_expected_row, 0, FCM_CASES);
    tcase_add_test(tc, every_row_has_a_case);
    tcase_add_test(tc, code_wins_over_status);
    tcase_add_test(tc, unauthenticated_needs_401);
    suite_add_tcase(s, tc);

    tc = tcase_create("parse");
    tcase_add_test(tc, parse_prefers_details_error_code);
    tcase_add_test(tc, parse_falls_back_to_status);
    tcase_add_test(tc, parse_rejects_other_bodies);
    suite_add_tcase(s, tc);

    return s;
}
