#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <cjson/cJSON.h>

#include "../../common/nh_template.h"
#include "check_suites.h"


#define ARRAY_LEN(a)  (sizeof(a) / sizeof((a)[0]))


/*
 * Renders a NUL-terminated template with a JSON document (NULL for no
 * data) and no output limit. Fails the test unless parsing and rendering
 * succeed. The caller frees the result.
 */
static char *
render(const char *text, const char *json, int escape_html)
{
    nh_template_t  *tpl;
    cJSON          *data;
    char           *out;
    size_t          outlen;

    data = NULL;

    if (json != NULL) {
        data = cJSON_Parse(json);
        ck_assert_msg(data != NULL, "invalid test JSON: %s", json);
    }

    ck_assert_int_eq(nh_template_parse(text, strlen(text), &tpl, NULL), 0);
    ck_assert_int_eq(nh_template_render(tpl, data, escape_html, SIZE_MAX,
                                        &out, &outlen, NULL), 0);
    ck_assert_ptr_nonnull(out);
    ck_assert_uint_eq(outlen, strlen(out));

    nh_template_free(tpl);
    cJSON_Delete(data);

    return out;
}


/* Checks that rendering text with json gives expected, without escaping. */
static void
check_render(const char *text, const char *json, const char *expected)
{
    char  *out;

    out = render(text, json, 0);
    ck_assert_msg(strcmp(out, expected) == 0,
                  "\"%s\" rendered as \"%s\", expected \"%s\"", text, out,
                  expected);
    free(out);
}


/*
 * Renders text with json and returns the result code. The paths that the
 * render reports missing are appended to missing.
 */
static int
render_missing(const char *text, const char *json, cJSON *missing)
{
    nh_template_t  *tpl;
    cJSON          *data;
    char           *out;
    size_t          outlen;
    int             rc;

    data = NULL;

    if (json != NULL) {
        data = cJSON_Parse(json);
        ck_assert_msg(data != NULL, "invalid test JSON: %s", json);
    }

    ck_assert_int_eq(nh_template_parse(text, strlen(text), &tpl, NULL), 0);

    out = (char *) "unchanged";
    outlen = 99;
    rc = nh_template_render(tpl, data, 0, SIZE_MAX, &out, &outlen, missing);

    if (rc != 0) {
        ck_assert_ptr_null(out);
        ck_assert_uint_eq(outlen, 0);
    }

    free(out);
    nh_template_free(tpl);
    cJSON_Delete(data);

    return rc;
}


/* Checks that missing is an array of exactly the given strings. */
static void
check_strings(const cJSON *array, const char *const *expected, size_t n)
{
    size_t  i;

    ck_assert_int_eq(cJSON_GetArraySize(array), (int) n);

    for (i = 0; i < n; i++) {
        ck_assert_str_eq(cJSON_GetArrayItem(array, (int) i)->valuestring,
                         expected[i]);
    }
}


/* Checks that parsing len bytes fails with the given position and reason. */
static void
check_error(const char *text, size_t len, size_t offset, size_t line,
    size_t column, const char *reason)
{
    nh_template_error_t   err;
    nh_template_t        *tpl;

    memset(&err, 0, sizeof(err));
    tpl = (nh_template_t *) &err;

    /* Only the start of the text is shown, because Check limits messages. */
    ck_assert_msg(nh_template_parse(text, len, &tpl, &err) == -1,
                  "accepted \"%.40s\"", text);
    ck_assert_ptr_null(tpl);
    ck_assert_msg(err.offset == offset && err.line == line
                      && err.column == column,
                  "\"%.40s\": error at offset %zu, line %zu, column %zu; "
                  "expected %zu, %zu, %zu", text, err.offset, err.line,
                  err.column, offset, line, column);
    ck_assert_str_eq(err.reason, reason);
}


START_TEST(render_replaces_simple_path)
{
    check_render("Hello {{name}}!", "{\"name\": \"Ada\"}", "Hello Ada!");
    check_render("{{a}}{{b}}", "{\"a\": \"x\", \"b\": \"y\"}", "xy");
    check_render("{{first_name}} {{last-name}} {{X9}}",
                 "{\"first_name\": \"Ada\", \"last-name\": \"Lovelace\","
                 " \"X9\": \"!\"}",
                 "Ada Lovelace !");
}
END_TEST


START_TEST(render_follows_nested_path)
{
    check_render("Order {{order.id}} for {{order.customer.name}}",
                 "{\"order\": {\"id\": 42,"
                 " \"customer\": {\"name\": \"Ada\"}}}",
                 "Order 42 for Ada");
}
END_TEST


START_TEST(parse_allows_spaces_around_path)
{
    nh_template_t  *tpl;

    check_render("{{ a.b.c }}|{{   a.b.c}}|{{a.b.c    }}",
                 "{\"a\": {\"b\": {\"c\": \"v\"}}}", "v|v|v");

    ck_assert_int_eq(nh_template_parse("{{ a.b.c }}", 11, &tpl, NULL), 0);
    ck_assert_uint_eq(nh_template_variable_count(tpl), 1);
    ck_assert_str_eq(nh_template_variable(tpl, 0), "a.b.c");
    nh_template_free(tpl);
}
END_TEST


START_TEST(render_indexes_arrays)
{
    static const char  json[] =
        "{\"items\": [\"first\", {\"name\": \"second\"}, [\"x\", \"y\"]],"
        " \"codes\": {\"404\": \"Not Found\", \"01\": \"one\"}}";

    check_render("{{items.0}} {{items.1.name}} {{items.2.1}}", json,
                 "first second y");

    /* On an object, digits name a member. */
    check_render("{{codes.404}} {{codes.01}}", json, "Not Found one");
}
END_TEST


START_TEST(render_misses_index_past_end_or_with_leading_zero)
{
    static const char  json[] = "{\"items\": [\"a\", \"b\"]}";
    static const char  *texts[] = {
        "{{items.2}}",
        "{{items.01}}",
        "{{items.00}}",
        "{{items.x}}",
        "{{items.99999999999999999999999999999999}}",
    };
    cJSON               *missing;
    size_t               i;

    for (i = 0; i < ARRAY_LEN(texts); i++) {
        missing = cJSON_CreateArray();
        ck_assert_msg(render_missing(texts[i], json, missing) == 1,
                      "\"%s\" did not report a missing variable", texts[i]);
        ck_assert_int_eq(cJSON_GetArraySize(missing), 1);
        cJSON_Delete(missing);
    }
}
END_TEST


START_TEST(render_formats_strings_booleans_and_null)
{
    check_render("[{{s}}] [{{empty}}] [{{t}}] [{{f}}] [{{n}}]",
                 "{\"s\": \"caf\\u00e9 \\\"q\\\"\", \"empty\": \"\","
                 " \"t\": true, \"f\": false, \"n\": null}",
                 "[caf\xc3\xa9 \"q\"] [] [true] [false] []");
}
END_TEST


START_TEST(render_formats_integers_without_fraction)
{
    check_render("{{a}} {{b}} {{c}} {{d}} {{e}} {{f}} {{g}}",
                 "{\"a\": 42, \"b\": -7, \"c\": 0, \"d\": -0, \"e\": 1e3,"
                 " \"f\": 9007199254740991, \"g\": -9007199254740991}",
                 "42 -7 0 0 1000 9007199254740991 -9007199254740991");
}
END_TEST


START_TEST(render_formats_other_numbers_shortest)
{
    /*
     * 0.1 needs 15 significant digits, 1/3 needs 16 and 0.1 + 0.2 needs
     * 17. 2^53 + 1 is read as 2^53, which is not below 2^53.
     */
    check_render("{{a}} {{b}} {{c}} {{d}} {{e}} {{f}} {{g}} {{h}}",
                 "{\"a\": 3.5, \"b\": 0.1, \"c\": 0.3333333333333333,"
                 " \"d\": 0.30000000000000004, \"e\": -2.5e-7,"
                 " \"f\": 1e300, \"g\": 9007199254740993, \"h\": 1.5e20}",
                 "3.5 0.1 0.3333333333333333 0.30000000000000004 -2.5e-07"
                 " 1e+300 9007199254740992 1.5e+20");
}
END_TEST


START_TEST(render_inserts_nothing_for_non_finite_number)
{
    nh_template_t  *tpl;
    cJSON          *data;
    char           *out;
    size_t          outlen;

    data = cJSON_CreateObject();
    cJSON_AddNumberToObject(data, "nan", NAN);
    cJSON_AddNumberToObject(data, "inf", INFINITY);

    ck_assert_int_eq(nh_template_parse("[{{nan}}][{{inf}}]", 18, &tpl, NULL),
                     0);
    ck_assert_int_eq(nh_template_render(tpl, data, 0, SIZE_MAX, &out, &outlen,
                                        NULL), 0);
    ck_assert_str_eq(out, "[][]");

    free(out);
    nh_template_free(tpl);
    cJSON_Delete(data);
}
END_TEST


START_TEST(render_prints_objects_and_arrays_compactly)
{
    check_render("{{o}} {{a}} {{e}}",
                 "{\"o\": {\"k\": [1, 2.5, {\"s\": \"v\"}], \"n\": null},"
                 " \"a\": [ true , false ], \"e\": {}}",
                 "{\"k\":[1,2.5,{\"s\":\"v\"}],\"n\":null} [true,false] {}");
}
END_TEST


START_TEST(render_inserts_values_verbatim)
{
    /* A value that looks like a tag is not expanded again. */
    check_render("{{a}}", "{\"a\": \"{{b}} }} {{\", \"b\": \"no\"}",
                 "{{b}} }} {{");
}
END_TEST


START_TEST(render_accepts_array_as_data)
{
    check_render("{{0}} {{1.x}}", "[\"a\", {\"x\": \"b\"}]", "a b");
}
END_TEST


START_TEST(render_escapes_html_in_values)
{
    char  *out;

    out = render("<p title=\"{{t}}\">{{b}} & {{n}}</p>",
                 "{\"t\": \"\\\"quoted\\\" & 'single'\","
                 " \"b\": \"<script>x</script>\", \"n\": 5}", 1);
    ck_assert_str_eq(out, "<p title=\"&quot;quoted&quot; &amp; "
                          "&#39;single&#39;\">&lt;script&gt;x&lt;/script&gt;"
                          " & 5</p>");
    free(out);

    /* Compact JSON is escaped like any other value. */
    out = render("{{o}}", "{\"o\": {\"a\": \"<&>\"}}", 1);
    ck_assert_str_eq(out, "{&quot;a&quot;:&quot;&lt;&amp;&gt;&quot;}");
    free(out);

    out = render("{{a}}{{b}}", "{\"a\": \"&&\", \"b\": \"plain\"}", 1);
    ck_assert_str_eq(out, "&amp;&amp;plain");
    free(out);
}
END_TEST


START_TEST(render_leaves_values_unescaped_without_flag)
{
    check_render("<b>{{v}}</b>", "{\"v\": \"<i>Tom & Jerry's \\\"</i>\"}",
                 "<b><i>Tom & Jerry's \"</i></b>");
}
END_TEST


START_TEST(render_collects_every_missing_variable)
{
    static const char  *expected[] = { "a", "c", "d.e" };
    cJSON              *missing;

    missing = cJSON_CreateArray();

    ck_assert_int_eq(render_missing("{{a}} {{b}} {{c}} {{d.e}}",
                                    "{\"b\": 1}", missing), 1);
    check_strings(missing, expected, ARRAY_LEN(expected));

    cJSON_Delete(missing);
}
END_TEST


START_TEST(render_lists_repeated_missing_once)
{
    static const char  *expected[] = { "x", "y" };
    cJSON              *missing;

    missing = cJSON_CreateArray();

    ck_assert_int_eq(render_missing("{{x}} {{y}} {{ x }} {{y}} {{x}}",
                                    "{}", missing), 1);
    check_strings(missing, expected, ARRAY_LEN(expected));

    cJSON_Delete(missing);
}
END_TEST


START_TEST(render_reports_missing_inside_nested_object)
{
    static const char  *expected[] = {
        "order.total", "order.id.value", "customer.name"
    };
    cJSON              *missing;

    missing = cJSON_CreateArray();

    ck_assert_int_eq(render_missing("{{order.id}} {{order.total}}"
                                    " {{order.id.value}} {{customer.name}}",
                                    "{\"order\": {\"id\": 42}}", missing), 1);
    check_strings(missing, expected, ARRAY_LEN(expected));

    cJSON_Delete(missing);
}
END_TEST


START_TEST(render_appends_missing_once_across_templates)
{
    static const char  *expected[] = { "subject", "name", "body" };
    cJSON              *missing;

    missing = cJSON_CreateArray();

    ck_assert_int_eq(render_missing("{{subject}} {{name}}", "{}", missing),
                     1);
    ck_assert_int_eq(render_missing("{{name}} {{body}}", "{}", missing), 1);
    check_strings(missing, expected, ARRAY_LEN(expected));

    cJSON_Delete(missing);
}
END_TEST


START_TEST(render_without_data_misses_every_variable)
{
    static const char  *expected[] = { "a", "b.c" };
    cJSON              *missing;

    missing = cJSON_CreateArray();

    ck_assert_int_eq(render_missing("{{a}}{{b.c}}", NULL, missing), 1);
    check_strings(missing, expected, ARRAY_LEN(expected));

    ck_assert_int_eq(render_missing("no tags", NULL, missing), 0);
    ck_assert_int_eq(cJSON_GetArraySize(missing), 2);

    cJSON_Delete(missing);
}
END_TEST


START_TEST(render_reports_missing_without_array)
{
    ck_assert_int_eq(render_missing("{{a}}", "{\"b\": 1}", NULL), 1);
}
END_TEST


START_TEST(render_checks_missing_before_max_output)
{
    nh_template_t  *tpl;
    cJSON          *data;
    char           *out;
    size_t          outlen;

    data = cJSON_Parse("{\"a\": \"long value\"}");

    ck_assert_int_eq(nh_template_parse("{{a}}{{b}}", 10, &tpl, NULL), 0);
    ck_assert_int_eq(nh_template_render(tpl, data, 0, 1, &out, &outlen,
                                        NULL), 1);
    ck_assert_ptr_null(out);

    nh_template_free(tpl);
    cJSON_Delete(data);
}
END_TEST


START_TEST(parse_rejects_malformed_templates)
{
    static const struct {
        const char  *text;
        size_t       offset;
        size_t       line;
        size_t       column;
        const char  *reason;
    } cases[] = {
        { "Hi {{name", 3, 1, 4, "unclosed tag" },
        { "{{", 0, 1, 1, "unclosed tag" },
        { "a\n\nb {{x} }", 5, 3, 3, "unclosed tag" },
        { "{{a}} and {{b}", 10, 1, 11, "unclosed tag" },
        { "}}", 0, 1, 1, "unexpected \"}}\" outside a tag" },
        { "ab\ncd }} e", 6, 2, 4, "unexpected \"}}\" outside a tag" },
        { "{{a}} }}", 6, 1, 7, "unexpected \"}}\" outside a tag" },
        { "{{a}}}}", 5, 1, 6, "unexpected \"}}\" outside a tag" },
        { "{{}}", 0, 1, 1, "empty path" },
        { "x\n {{    }}", 3, 2, 2, "empty path" },
        { "{{.a}}", 0, 1, 1, "empty path segment" },
        { "{{a.}}", 0, 1, 1, "empty path segment" },
        { "{{ a..b }}", 0, 1, 1, "empty path segment" },
        { "{{.}}", 0, 1, 1, "empty path segment" },
        { "{{a b}}", 0, 1, 1, "space inside path" },
        { "{{ a. b }}", 0, 1, 1, "space inside path" },
        { "{{a$}}", 0, 1, 1, "invalid character in path" },
        { "{{\ta}}", 0, 1, 1, "invalid character in path" },
        { "{{a\nb}}", 0, 1, 1, "invalid character in path" },
        { "{{a\xc3\xa9}}", 0, 1, 1, "invalid character in path" },
        { "{{{a}}}", 0, 1, 1, "invalid character in path" },
        { "{{ {{a}}", 0, 1, 1, "invalid character in path" },
        { "one\ntwo\n  {{ a-b.c! }}", 10, 3, 3, "invalid character in path" },
        { "x\r\n{{a/b}}", 3, 2, 1, "invalid character in path" },
    };
    size_t  i;

    for (i = 0; i < ARRAY_LEN(cases); i++) {
        check_error(cases[i].text, strlen(cases[i].text), cases[i].offset,
                    cases[i].line, cases[i].column, cases[i].reason);
    }
}
END_TEST


START_TEST(parse_accepts_null_error_pointer)
{
    nh_template_t  *tpl;

    ck_assert_int_eq(nh_template_parse("{{a", 3, &tpl, NULL), -1);
    ck_assert_ptr_null(tpl);
}
END_TEST


START_TEST(parse_keeps_single_braces_literal)
{
    check_render("{ } {x} }{ a{b}c", NULL, "{ } {x} }{ a{b}c");
    check_render("f() { return {{v}}; }", "{\"v\": 1}", "f() { return 1; }");
    check_render("{ {{v}} }", "{\"v\": 1}", "{ 1 }");
    check_render("{{v}}}", "{\"v\": 1}", "1}");
    check_render("{", NULL, "{");
    check_render("}", NULL, "}");
}
END_TEST


START_TEST(parse_keeps_nul_bytes_in_text)
{
    static const char  text[] = "a\0{{v}}\0c";
    nh_template_t      *tpl;
    cJSON              *data;
    char               *out;
    size_t              outlen;

    data = cJSON_Parse("{\"v\": \"X\"}");

    ck_assert_int_eq(nh_template_parse(text, sizeof(text) - 1, &tpl, NULL), 0);
    ck_assert_int_eq(nh_template_render(tpl, data, 1, SIZE_MAX, &out, &outlen,
                                        NULL), 0);
    ck_assert_uint_eq(outlen, 5);
    ck_assert_mem_eq(out, "a\0X\0c", 6);

    free(out);
    nh_template_free(tpl);
    cJSON_Delete(data);

    /* A NUL byte inside a tag is an invalid path character. */
    check_error("ab{{v\0}}", 8, 2, 1, 3, "invalid character in path");
}
END_TEST


START_TEST(parse_reads_only_len_bytes)
{
    nh_template_t  *tpl;
    char           *out;
    size_t          outlen;

    /* The "{{" right after the 4 bytes would be an unclosed tag. */
    ck_assert_int_eq(nh_template_parse("text{{", 4, &tpl, NULL), 0);
    ck_assert_int_eq(nh_template_render(tpl, NULL, 0, SIZE_MAX, &out, &outlen,
                                        NULL), 0);
    ck_assert_str_eq(out, "text");

    free(out);
    nh_template_free(tpl);
}
END_TEST


START_TEST(render_empty_template)
{
    nh_template_t  *tpl;
    char           *out;
    size_t          outlen;

    ck_assert_int_eq(nh_template_parse(NULL, 0, &tpl, NULL), 0);
    ck_assert_uint_eq(nh_template_variable_count(tpl), 0);
    ck_assert_ptr_null(nh_template_variable(tpl, 0));

    outlen = 99;
    ck_assert_int_eq(nh_template_render(tpl, NULL, 0, 0, &out, &outlen, NULL),
                     0);
    ck_assert_str_eq(out, "");
    ck_assert_uint_eq(outlen, 0);

    free(out);
    nh_template_free(tpl);
}
END_TEST


START_TEST(render_enforces_max_output)
{
    nh_template_t  *tpl;
    cJSON          *data;
    char           *out;
    size_t          outlen;

    /* "Hi <Ada>!" is 9 bytes, or 15 with "<" and ">" escaped. */
    data = cJSON_Parse("{\"name\": \"<Ada>\"}");
    ck_assert_int_eq(nh_template_parse("Hi {{name}}!", 12, &tpl, NULL), 0);

    ck_assert_int_eq(nh_template_render(tpl, data, 0, 9, &out, &outlen,
                                        NULL), 0);
    ck_assert_str_eq(out, "Hi <Ada>!");
    ck_assert_uint_eq(outlen, 9);
    free(out);

    out = (char *) "unchanged";
    outlen = 99;
    ck_assert_int_eq(nh_template_render(tpl, data, 0, 8, &out, &outlen,
                                        NULL), -1);
    ck_assert_ptr_null(out);
    ck_assert_uint_eq(outlen, 0);

    ck_assert_int_eq(nh_template_render(tpl, data, 1, 15, &out, &outlen,
                                        NULL), 0);
    ck_assert_str_eq(out, "Hi &lt;Ada&gt;!");
    free(out);

    ck_assert_int_eq(nh_template_render(tpl, data, 1, 14, &out, &outlen,
                                        NULL), -1);
    ck_assert_ptr_null(out);

    /* The limit applies to the template's own text as well. */
    ck_assert_int_eq(nh_template_render(tpl, data, 0, 2, &out, &outlen,
                                        NULL), -1);
    ck_assert_int_eq(nh_template_render(tpl, data, 0, 0, &out, &outlen,
                                        NULL), -1);

    nh_template_free(tpl);
    cJSON_Delete(data);
}
END_TEST


START_TEST(render_stops_at_max_output_for_repeated_value)
{
    nh_template_t  *tpl;
    cJSON          *data;
    char           *text, *value, *out;
    size_t          i, outlen;

    /* 1000 uses of a 1 MB value would be 1 GB of output. */
    text = malloc(5000);
    ck_assert_ptr_nonnull(text);

    for (i = 0; i < 1000; i++) {
        memcpy(text + 5 * i, "{{v}}", 5);
    }

    value = malloc(1000001);
    ck_assert_ptr_nonnull(value);
    memset(value, 'x', 1000000);
    value[1000000] = '\0';

    data = cJSON_CreateObject();
    cJSON_AddStringToObject(data, "v", value);

    ck_assert_int_eq(nh_template_parse(text, 5000, &tpl, NULL), 0);
    ck_assert_int_eq(nh_template_render(tpl, data, 0, 3500000, &out, &outlen,
                                        NULL), -1);
    ck_assert_ptr_null(out);

    ck_assert_int_eq(nh_template_render(tpl, data, 0, 3000000, &out, &outlen,
                                        NULL), -1);
    ck_assert_ptr_null(out);

    nh_template_free(tpl);
    cJSON_Delete(data);
    free(value);
    free(text);
}
END_TEST


START_TEST(render_large_template_in_linear_time)
{
    nh_template_t  *tpl;
    cJSON          *data;
    char           *text, *out;
    size_t          i, n, outlen;

    /*
     * 200,000 tags in 1.6 MB of text, so a step quadratic in the template
     * size would make about 10^11 byte reads.
     */
    n = 200000;
    text = malloc(8 * n);
    ck_assert_ptr_nonnull(text);

    for (i = 0; i < n; i++) {
        memcpy(text + 8 * i, "ab{{v}}\n", 8);
    }

    data = cJSON_Parse("{\"v\": \"<\"}");

    ck_assert_int_eq(nh_template_parse(text, 8 * n, &tpl, NULL), 0);
    ck_assert_int_eq(nh_template_render(tpl, data, 1, SIZE_MAX, &out, &outlen,
                                        NULL), 0);
    ck_assert_uint_eq(outlen, 7 * n);
    ck_assert_mem_eq(out + 7 * (n - 1), "ab&lt;\n", 7);

    free(out);
    nh_template_free(tpl);
    cJSON_Delete(data);
    free(text);
}
END_TEST


START_TEST(variables_listed_in_first_use_order)
{
    nh_template_t  *tpl;
    const char     *text;

    text = "{{b}} {{a}} {{ b }} {{c.d}} {{a}} {{c}} {{c.d }}";

    ck_assert_int_eq(nh_template_parse(text, strlen(text), &tpl, NULL), 0);
    ck_assert_uint_eq(nh_template_variable_count(tpl), 4);
    ck_assert_str_eq(nh_template_variable(tpl, 0), "b");
    ck_assert_str_eq(nh_template_variable(tpl, 1), "a");
    ck_assert_str_eq(nh_template_variable(tpl, 2), "c.d");
    ck_assert_str_eq(nh_template_variable(tpl, 3), "c");
    ck_assert_ptr_null(nh_template_variable(tpl, 4));
    nh_template_free(tpl);

    ck_assert_int_eq(nh_template_parse("plain", 5, &tpl, NULL), 0);
    ck_assert_uint_eq(nh_template_variable_count(tpl), 0);
    nh_template_free(tpl);
}
END_TEST


START_TEST(parse_limits_path_length)
{
    nh_template_t  *tpl;
    char            text[NH_TEMPLATE_PATH_MAX + 16];
    size_t          len;

    /* "x{{ " and a path of NH_TEMPLATE_PATH_MAX bytes and " }}". */
    memcpy(text, "x{{ ", 4);
    memset(text + 4, 'a', NH_TEMPLATE_PATH_MAX);
    text[4 + NH_TEMPLATE_PATH_MAX / 2] = '.';
    memcpy(text + 4 + NH_TEMPLATE_PATH_MAX, " }}", 3);
    len = 4 + NH_TEMPLATE_PATH_MAX + 3;

    ck_assert_int_eq(nh_template_parse(text, len, &tpl, NULL), 0);
    ck_assert_uint_eq(strlen(nh_template_variable(tpl, 0)),
                      NH_TEMPLATE_PATH_MAX);
    nh_template_free(tpl);

    /* One byte more. */
    memmove(text + 5, text + 4, len - 4);
    check_error(text, len + 1, 1, 1, 2, "path too long");
}
END_TEST


START_TEST(parse_limits_variable_count)
{
    nh_template_t  *tpl;
    char           *text;
    size_t          i, len, last;

    text = malloc(16 * (NH_TEMPLATE_VARIABLES_MAX + 1) * 2);
    ck_assert_ptr_nonnull(text);

    /* The maximum of distinct variables, each used twice. */
    len = 0;

    for (i = 0; i < NH_TEMPLATE_VARIABLES_MAX; i++) {
        len += (size_t) sprintf(text + len, "{{v%zu}}", i);
    }

    for (i = 0; i < NH_TEMPLATE_VARIABLES_MAX; i++) {
        len += (size_t) sprintf(text + len, "{{ v%zu }}", i);
    }

    ck_assert_int_eq(nh_template_parse(text, len, &tpl, NULL), 0);
    ck_assert_uint_eq(nh_template_variable_count(tpl),
                      NH_TEMPLATE_VARIABLES_MAX);
    ck_assert_str_eq(nh_template_variable(tpl, NH_TEMPLATE_VARIABLES_MAX - 1),
                     "v255");
    nh_template_free(tpl);

    /* One more distinct path fails at its tag. */
    last = len;
    len += (size_t) sprintf(text + len, "{{w}}");
    check_error(text, len, last, 1, last + 1, "too many variables");

    free(text);
}
END_TEST


START_TEST(parse_accepts_every_path_character)
{
    check_render("{{AZaz09_-.x}}", "{\"AZaz09_-\": {\"x\": \"ok\"}}", "ok");
}
END_TEST


Suite *
nh_template_suite(void)
{
    Suite  *suite;
    TCase  *tc;

    suite = suite_create("template");

    tc = tcase_create("paths");
    tcase_add_test(tc, render_replaces_simple_path);
    tcase_add_test(tc, render_follows_nested_path);
    tcase_add_test(tc, parse_allows_spaces_around_path);
    tcase_add_test(tc, parse_accepts_every_path_character);
    tcase_add_test(tc, render_indexes_arrays);
    tcase_add_test(tc, render_misses_index_past_end_or_with_leading_zero);
    tcase_add_test(tc, render_accepts_array_as_data);
    suite_add_tcase(suite, tc);

    tc = tcase_create("values");
    tcase_add_test(tc, render_formats_strings_booleans_and_null);
    tcase_add_test(tc, render_formats_integers_without_fraction);
    tcase_add_test(tc, render_formats_other_numbers_shortest);
    tcase_add_test(tc, render_inserts_nothing_for_non_finite_number);
    tcase_add_test(tc, render_prints_objects_and_arrays_compactly);
    tcase_add_test(tc, render_inserts_values_verbatim);
    tcase_add_test(tc, render_escapes_html_in_values);
    tcase_add_test(tc, render_leaves_values_unescaped_without_flag);
    suite_add_tcase(suite, tc);

    tc = tcase_create("missing");
    tcase_add_test(tc, render_collects_every_missing_variable);
    tcase_add_test(tc, render_lists_repeated_missing_once);
    tcase_add_test(tc, render_reports_missing_inside_nested_object);
    tcase_add_test(tc, render_appends_missing_once_across_templates);
    tcase_add_test(tc, render_without_data_misses_every_variable);
    tcase_add_test(tc, render_reports_missing_without_array);
    tcase_add_test(tc, render_checks_missing_before_max_output);
    suite_add_tcase(suite, tc);

    tc = tcase_create("syntax");
    tcase_add_test(tc, parse_rejects_malformed_templates);
    tcase_add_test(tc, parse_accepts_null_error_pointer);
    tcase_add_test(tc, parse_keeps_single_braces_literal);
    tcase_add_test(tc, parse_keeps_nul_bytes_in_text);
    tcase_add_test(tc, parse_reads_only_len_bytes);
    tcase_add_test(tc, render_empty_template);
    tcase_add_test(tc, variables_listed_in_first_use_order);
    suite_add_tcase(suite, tc);

    tc = tcase_create("limits");
    tcase_add_test(tc, render_enforces_max_output);
    tcase_add_test(tc, render_stops_at_max_output_for_repeated_value);
    tcase_add_test(tc, render_large_template_in_linear_time);
    tcase_add_test(tc, parse_limits_path_length);
    tcase_add_test(tc, parse_limits_variable_count);
    tcase_set_timeout(tc, 30);
    suite_add_tcase(suite, tc);

    return suite;
}
