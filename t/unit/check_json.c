#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "../../common/nh_json.h"
#include "check_suites.h"


/* Parses text, canonicalises it and compares with expected. */
static void
assert_canonical(const char *text, const char *expected)
{
    char    *out;
    size_t   len;
    cJSON   *json;

    json = cJSON_Parse(text);
    ck_assert_msg(json != NULL, "cannot parse %s", text);

    ck_assert_int_eq(nh_json_canonical(json, &out, &len), 0);
    ck_assert_str_eq(out, expected);
    ck_assert_uint_eq(len, strlen(expected));

    free(out);
    cJSON_Delete(json);
}


START_TEST(canonical_sorts_members_recursively)
{
    assert_canonical("{\"b\": 1, \"a\": {\"d\": [3, {\"z\": 1, \"y\": 2}],"
                     " \"c\": null}}",
                     "{\"a\":{\"c\":null,\"d\":[3,{\"y\":2,\"z\":1}]},\"b\":1}");
}
END_TEST


START_TEST(canonical_ignores_spacing_and_order)
{
    char   *one, *two;
    cJSON  *a, *b;

    a = cJSON_Parse("{\"channel\":\"EMAIL\",\"to\":{\"email\":\"a@b.io\"}}");
    b = cJSON_Parse("{ \"to\" : { \"email\" : \"a@b.io\" } ,\n"
                    "  \"channel\" : \"EMAIL\" }");

    ck_assert_int_eq(nh_json_canonical(a, &one, NULL), 0);
    ck_assert_int_eq(nh_json_canonical(b, &two, NULL), 0);
    ck_assert_str_eq(one, two);

    free(one);
    free(two);
    cJSON_Delete(a);
    cJSON_Delete(b);
}
END_TEST


START_TEST(canonical_keeps_last_repeated_member)
{
    assert_canonical("{\"a\": 1, \"b\": 2, \"a\": 3}", "{\"a\":3,\"b\":2}");
}
END_TEST


START_TEST(canonical_escapes_strings)
{
    assert_canonical("{\"k\\\"ey\": \"line\\nbreak \\u00e9 \\\"q\\\"\"}",
                     "{\"k\\\"ey\":\"line\\nbreak \xc3\xa9 \\\"q\\\"\"}");
}
END_TEST


START_TEST(canonical_spells_numbers_one_way)
{
    assert_canonical("[1.0, 1e2, -0, 0.1, 2.5e-3, 1.7976931348623157e308]",
                     "[1,100,0,0.1,0.0025,1.7976931348623157e+308]");
}
END_TEST


START_TEST(number_format_round_trips)
{
    char         out[NH_JSON_NUMBER_MAX];
    size_t       i;
    const double values[] = { 0.1, 1.0 / 3, 123456789.123, -2.5e-300,
                              9007199254740993.0, 42 };

    for (i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        nh_json_format_number(values[i], out);
        ck_assert_msg(strtod(out, NULL) == values[i], "%s", out);
    }

    ck_assert_uint_eq(nh_json_format_number(42, out), 2);
    ck_assert_str_eq(out, "42");
}
END_TEST


Suite *
nh_json_suite(void)
{
    Suite  *suite;
    TCase  *tc;

    suite = suite_create("json");

    tc = tcase_create("canonical");
    tcase_add_test(tc, canonical_sorts_members_recursively);
    tcase_add_test(tc, canonical_ignores_spacing_and_order);
    tcase_add_test(tc, canonical_keeps_last_repeated_member);
    tcase_add_test(tc, canonical_escapes_strings);
    tcase_add_test(tc, canonical_spells_numbers_one_way);
    suite_add_tcase(suite, tc);

    tc = tcase_create("number");
    tcase_add_test(tc, number_format_round_trips);
    suite_add_tcase(suite, tc);

    return suite;
}
