#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "../../common/nh_config.h"
#include "check_suites.h"


#define ARRAY_LEN(a)  (sizeof(a) / sizeof((a)[0]))


/* Variables that the tests set; the fixture clears them around each test. */
static const char  *test_variables[] = {
    "NH_CONFIG_FILE",
    "NHT_DSN",
    "NHT_INT",
    "NHT_EMPTY",
    "NHT_MISSING",
    "NH_OVERLAY_URL",
    "NH_OVERLAY_COUNT",
    "NH_FALLBACK_OVERLAY_URL",
    "NH_FALLBACK_OVERLAY_COUNT",
};

static char  config_path[PATH_MAX];


static void
clear_variables(void)
{
    size_t  i;

    for (i = 0; i < ARRAY_LEN(test_variables); i++) {
        unsetenv(test_variables[i]);
    }
}


static void
setup(void)
{
    config_path[0] = '\0';
    clear_variables();
}


static void
teardown(void)
{
    if (config_path[0] != '\0') {
        unlink(config_path);
        config_path[0] = '\0';
    }

    clear_variables();
}


/* Writes len bytes to a new temporary file and names it in NH_CONFIG_FILE. */
static void
write_config_bytes(const char *text, size_t len)
{
    const char  *dir;
    FILE        *file;
    int          fd;

    dir = getenv("TMPDIR");

    if (dir == NULL || dir[0] == '\0') {
        dir = "/tmp";
    }

    snprintf(config_path, sizeof(config_path), "%s/nh_check_config_XXXXXX",
             dir);

    fd = mkstemp(config_path);
    ck_assert_msg(fd >= 0, "mkstemp failed in \"%s\"", dir);

    file = fdopen(fd, "w");
    ck_assert_ptr_nonnull(file);
    ck_assert_uint_eq(fwrite(text, 1, len, file), len);
    ck_assert_int_eq(fclose(file), 0);

    ck_assert_int_eq(setenv("NH_CONFIG_FILE", config_path, 1), 0);
}


static void
write_config(const char *text)
{
    write_config_bytes(text, strlen(text));
}


/* Loads a config that must succeed. */
static nh_config_t *
load_ok(void)
{
    nh_config_t  *cfg;
    char          err[512];

    cfg = NULL;
    err[0] = '\0';

    ck_assert_msg(nh_config_load(&cfg, err, sizeof(err)) == 0,
                  "load failed: %s", err);
    ck_assert_ptr_nonnull(cfg);

    return cfg;
}


/* Loads a config that must fail and returns its message. */
static const char *
load_error(void)
{
    static char   err[512];
    nh_config_t  *cfg;

    cfg = NULL;
    err[0] = '\0';

    ck_assert_int_eq(nh_config_load(&cfg, err, sizeof(err)), -1);
    ck_assert_ptr_null(cfg);
    ck_assert_str_ne(err, "");

    return err;
}


/* Returns the "<path>:<line>:" prefix that a parse error must start with. */
static const char *
line_prefix(unsigned line)
{
    static char  prefix[PATH_MAX + 32];

    snprintf(prefix, sizeof(prefix), "%s:%u:", config_path, line);

    return prefix;
}


START_TEST(load_without_file_reads_environment)
{
    nh_config_t  *cfg;

    cfg = load_ok();

    ck_assert_str_eq(nh_config_get(cfg, "NHT_DSN", "default"), "default");
    ck_assert_ptr_null(nh_config_get(cfg, "NHT_DSN", NULL));

    ck_assert_int_eq(setenv("NHT_DSN", "from env", 1), 0);
    ck_assert_str_eq(nh_config_get(cfg, "NHT_DSN", "default"), "from env");

    nh_config_free(cfg);
}
END_TEST


START_TEST(load_treats_empty_file_variable_as_unset)
{
    nh_config_t  *cfg;

    ck_assert_int_eq(setenv("NH_CONFIG_FILE", "", 1), 0);
    cfg = load_ok();
    ck_assert_str_eq(nh_config_get(cfg, "NHT_DSN", "default"), "default");

    nh_config_free(cfg);
}
END_TEST


START_TEST(load_parses_keys_values_and_comments)
{
    nh_config_t  *cfg;

    write_config("# NotifyHub worker settings\n"
                 "NHT_DSN = host=127.0.0.1 port=54321 dbname=notifyhub\n"
                 "   NHT_INDENTED=value   \n"
                 "\n"
                 "   \t\n"
                 "  # an indented comment = not a setting\n"
                 "NHT_QUOTED = \"  spaced # not a comment  \"\n"
                 "NHT_HASH = a#b\n"
                 "NHT_EMPTY =\n"
                 "NHT_EMPTY_QUOTED = \"\"\n"
                 "NHT_FROM = NotifyHub <noreply@sandbox.notifyhub.local>\n"
                 "NHT_INNER = say \"hi\"\n"
                 "NHT_CRLF = windows\r\n"
                 "NHT_LAST = no newline at the end");

    cfg = load_ok();

    ck_assert_str_eq(nh_config_get(cfg, "NHT_DSN", NULL),
                     "host=127.0.0.1 port=54321 dbname=notifyhub");
    ck_assert_str_eq(nh_config_get(cfg, "NHT_INDENTED", NULL), "value");
    ck_assert_str_eq(nh_config_get(cfg, "NHT_QUOTED", NULL),
                     "  spaced # not a comment  ");
    ck_assert_str_eq(nh_config_get(cfg, "NHT_HASH", NULL), "a#b");
    ck_assert_str_eq(nh_config_get(cfg, "NHT_EMPTY", "default"), "");
    ck_assert_str_eq(nh_config_get(cfg, "NHT_EMPTY_QUOTED", "default"), "");
    ck_assert_str_eq(nh_config_get(cfg, "NHT_FROM", NULL),
                     "NotifyHub <noreply@sandbox.notifyhub.local>");
    ck_assert_str_eq(nh_config_get(cfg, "NHT_INNER", NULL), "say \"hi\"");
    ck_assert_str_eq(nh_config_get(cfg, "NHT_CRLF", NULL), "windows");
    ck_assert_str_eq(nh_config_get(cfg, "NHT_LAST", NULL),
                     "no newline at the end");

    ck_assert_ptr_null(nh_config_get(cfg, "NHT_MISSING", NULL));
    ck_assert_ptr_null(nh_config_get(cfg, "#", NULL));
    ck_assert_ptr_null(nh_config_get(cfg, "an indented comment", NULL));

    nh_config_free(cfg);
}
END_TEST


START_TEST(environment_overrides_file)
{
    nh_config_t  *cfg;

    write_config("NHT_DSN = from file\n"
                 "NHT_EMPTY = from file\n");

    cfg = load_ok();
    ck_assert_str_eq(nh_config_get(cfg, "NHT_DSN", NULL), "from file");

    ck_assert_int_eq(setenv("NHT_DSN", "from env", 1), 0);
    ck_assert_str_eq(nh_config_get(cfg, "NHT_DSN", NULL), "from env");

    /* A variable set to the empty string still counts as set. */
    ck_assert_int_eq(setenv("NHT_EMPTY", "", 1), 0);
    ck_assert_str_eq(nh_config_get(cfg, "NHT_EMPTY", NULL), "");

    ck_assert_int_eq(unsetenv("NHT_DSN"), 0);
    ck_assert_str_eq(nh_config_get(cfg, "NHT_DSN", NULL), "from file");

    nh_config_free(cfg);
}
END_TEST


START_TEST(get_accepts_null_config)
{
    ck_assert_str_eq(nh_config_get(NULL, "NHT_DSN", "default"), "default");

    ck_assert_int_eq(setenv("NHT_DSN", "from env", 1), 0);
    ck_assert_str_eq(nh_config_get(NULL, "NHT_DSN", "default"), "from env");

    nh_config_free(NULL);
}
END_TEST


START_TEST(load_names_line_without_equals)
{
    const char  *err;

    write_config("NHT_DSN = x\n"
                 "\n"
                 "# comment\n"
                 "this line has no equals sign\n"
                 "NHT_INT = 1\n");

    err = load_error();

    ck_assert_msg(strncmp(err, line_prefix(4), strlen(line_prefix(4))) == 0,
                  "message \"%s\" does not start with \"%s\"", err,
                  line_prefix(4));
    ck_assert_ptr_nonnull(strstr(err, "key = value"));
}
END_TEST


START_TEST(load_rejects_missing_key)
{
    const char  *err;

    write_config("= value\n");

    err = load_error();

    ck_assert(strncmp(err, line_prefix(1), strlen(line_prefix(1))) == 0);
    ck_assert_ptr_nonnull(strstr(err, "missing key"));
}
END_TEST


START_TEST(load_rejects_invalid_keys)
{
    static const char  *lines[] = {
        "NHT DSN = x\n",
        "NHT-DSN = x\n",
        "export NHT_DSN=x\n",
        "NHT.DSN = x\n",
        "\"NHT_DSN\" = x\n",
    };
    const char          *err;
    size_t               i;

    for (i = 0; i < ARRAY_LEN(lines); i++) {
        write_config(lines[i]);

        err = load_error();

        ck_assert_msg(strncmp(err, line_prefix(1), strlen(line_prefix(1)))
                          == 0, "line \"%s\": message \"%s\"", lines[i], err);
        ck_assert_ptr_nonnull(strstr(err, "invalid key"));

        unlink(config_path);
    }
}
END_TEST


START_TEST(load_rejects_bad_quoting)
{
    const char  *err;

    write_config("NHT_DSN = \"no closing quote\n");
    err = load_error();
    ck_assert(strncmp(err, line_prefix(1), strlen(line_prefix(1))) == 0);
    ck_assert_ptr_nonnull(strstr(err, "no closing quote"));
    unlink(config_path);

    write_config("NHT_INT = 1\n"
                 "NHT_DSN = \"quoted\" trailing\n");
    err = load_error();
    ck_assert(strncmp(err, line_prefix(2), strlen(line_prefix(2))) == 0);
    ck_assert_ptr_nonnull(strstr(err, "after the closing quote"));
    unlink(config_path);

    write_config("NHT_DSN = \"a\"b\"\n");
    err = load_error();
    ck_assert(strncmp(err, line_prefix(1), strlen(line_prefix(1))) == 0);
}
END_TEST


START_TEST(load_rejects_duplicate_key)
{
    const char  *err;

    write_config("NHT_DSN = first\n"
                 "NHT_INT = 1\n"
                 "NHT_DSN = second\n");

    err = load_error();

    ck_assert(strncmp(err, line_prefix(3), strlen(line_prefix(3))) == 0);
    ck_assert_ptr_nonnull(strstr(err, "duplicate key \"NHT_DSN\""));
    ck_assert_ptr_nonnull(strstr(err, "line 1"));
}
END_TEST


START_TEST(load_rejects_nul_byte)
{
    static const char  text[] = "NHT_DSN = a\nNHT_INT = 1\0 2\n";
    const char        *err;

    write_config_bytes(text, sizeof(text) - 1);

    err = load_error();

    ck_assert(strncmp(err, line_prefix(2), strlen(line_prefix(2))) == 0);
    ck_assert_ptr_nonnull(strstr(err, "NUL"));
}
END_TEST


START_TEST(load_errors_omit_values)
{
    static const char  *texts[] = {
        "NHT_DSN \"password=hunter2\"\n",
        "NHT_DSN = \"password=hunter2\n",
        "NHT_DSN = \"password\" hunter2\n",
        "NHT_DSN = hunter2\nNHT_DSN = hunter2\n",
        "hunter2\n",
    };
    const char          *err;
    size_t               i;

    for (i = 0; i < ARRAY_LEN(texts); i++) {
        write_config(texts[i]);

        err = load_error();

        ck_assert_msg(strstr(err, "hunter2") == NULL,
                      "message \"%s\" contains the value", err);
        unlink(config_path);
    }
}
END_TEST


START_TEST(load_fails_for_missing_file)
{
    const char  *err;

    ck_assert_int_eq(setenv("NH_CONFIG_FILE", "/nonexistent/nh/worker.conf",
                            1), 0);

    err = load_error();

    ck_assert_ptr_nonnull(strstr(err, "/nonexistent/nh/worker.conf"));
    ck_assert_ptr_nonnull(strstr(err, "NH_CONFIG_FILE"));
    ck_assert_ptr_nonnull(strstr(err, "No such file or directory"));
}
END_TEST


START_TEST(load_accepts_null_error_buffer)
{
    nh_config_t  *cfg;

    write_config("broken line\n");

    cfg = NULL;
    ck_assert_int_eq(nh_config_load(&cfg, NULL, 0), -1);
    ck_assert_ptr_null(cfg);
}
END_TEST


START_TEST(get_long_reads_file_then_environment)
{
    nh_config_t  *cfg;
    char          err[256];
    long          value;

    write_config("NHT_INT = 64\n");
    cfg = load_ok();

    ck_assert_int_eq(nh_config_get_long(cfg, "NHT_INT", 7, 1, 1024, &value,
                                        err, sizeof(err)), 0);
    ck_assert_int_eq(value, 64);

    ck_assert_int_eq(setenv("NHT_INT", "128", 1), 0);
    ck_assert_int_eq(nh_config_get_long(cfg, "NHT_INT", 7, 1, 1024, &value,
                                        err, sizeof(err)), 0);
    ck_assert_int_eq(value, 128);

    ck_assert_int_eq(nh_config_get_long(cfg, "NHT_MISSING", 7, 1, 1024,
                                        &value, err, sizeof(err)), 0);
    ck_assert_int_eq(value, 7);

    nh_config_free(cfg);
}
END_TEST


START_TEST(get_long_accepts_signs_and_bounds)
{
    static const struct {
        const char  *text;
        long         expected;
    } cases[] = {
        { "-10", -10 },
        { "+10", 10 },
        { "10", 10 },
        { "0", 0 },
        { "-0", 0 },
        { "007", 7 },
    };
    char    err[256];
    long    value;
    size_t  i;

    for (i = 0; i < ARRAY_LEN(cases); i++) {
        ck_assert_int_eq(setenv("NHT_INT", cases[i].text, 1), 0);
        ck_assert_msg(nh_config_get_long(NULL, "NHT_INT", 99, -10, 10, &value,
                                         err, sizeof(err)) == 0,
                      "rejected \"%s\": %s", cases[i].text, err);
        ck_assert_int_eq(value, cases[i].expected);
    }

    ck_assert_int_eq(setenv("NHT_INT", "-9223372036854775808", 1), 0);
    ck_assert_int_eq(nh_config_get_long(NULL, "NHT_INT", 0, LONG_MIN,
                                        LONG_MAX, &value, err, sizeof(err)),
                     0);
    ck_assert(value == LONG_MIN);
}
END_TEST


START_TEST(get_long_rejects_out_of_range)
{
    nh_config_t  *cfg;
    char          err[256];
    long          value;

    write_config("NHT_DSN = x\n"
                 "NHT_INT = 5000\n");
    cfg = load_ok();

    value = 42;
    ck_assert_int_eq(nh_config_get_long(cfg, "NHT_INT", 64, 1, 1024, &value,
                                        err, sizeof(err)), -1);
    ck_assert_int_eq(value, 42);
    ck_assert_ptr_nonnull(strstr(err, "NHT_INT"));
    ck_assert_ptr_nonnull(strstr(err, "\"5000\""));
    ck_assert_ptr_nonnull(strstr(err, "out of range"));
    ck_assert_ptr_nonnull(strstr(err, "from 1 to 1024"));
    ck_assert_ptr_nonnull(strstr(err, config_path));
    ck_assert_ptr_nonnull(strstr(err, "line 2"));

    ck_assert_int_eq(setenv("NHT_INT", "0", 1), 0);
    ck_assert_int_eq(nh_config_get_long(cfg, "NHT_INT", 64, 1, 1024, &value,
                                        err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "out of range"));
    ck_assert_ptr_nonnull(strstr(err, "environment"));

    ck_assert_int_eq(setenv("NHT_INT", "99999999999999999999999", 1), 0);
    ck_assert_int_eq(nh_config_get_long(cfg, "NHT_INT", 64, LONG_MIN,
                                        LONG_MAX, &value, err, sizeof(err)),
                     -1);
    ck_assert_ptr_nonnull(strstr(err, "out of range"));

    ck_assert_int_eq(setenv("NHT_INT", "-99999999999999999999999", 1), 0);
    ck_assert_int_eq(nh_config_get_long(cfg, "NHT_INT", 64, LONG_MIN,
                                        LONG_MAX, &value, err, sizeof(err)),
                     -1);
    ck_assert_int_eq(value, 42);

    nh_config_free(cfg);
}
END_TEST


START_TEST(get_long_rejects_non_integers)
{
    static const char  *texts[] = {
        "",
        "abc",
        "12abc",
        " 12",
        "12 ",
        "0x10",
        "1.5",
        "1e3",
        "-",
        "+",
        "--1",
        "1_000",
    };
    char                err[256];
    long                value;
    size_t              i;

    for (i = 0; i < ARRAY_LEN(texts); i++) {
        ck_assert_int_eq(setenv("NHT_INT", texts[i], 1), 0);

        value = 42;
        err[0] = '\0';
        ck_assert_msg(nh_config_get_long(NULL, "NHT_INT", 64, 1, 1024, &value,
                                         err, sizeof(err)) == -1,
                      "accepted \"%s\"", texts[i]);
        ck_assert_int_eq(value, 42);
        ck_assert_ptr_nonnull(strstr(err, "invalid NHT_INT"));
        ck_assert_ptr_nonnull(strstr(err, "expected an integer"));
    }

    ck_assert_int_eq(nh_config_get_long(NULL, "NHT_INT", 64, 1, 1024, &value,
                                        NULL, 0), -1);
}
END_TEST


START_TEST(overlay_prefers_prefixed_keys)
{
    nh_config_t  *cfg, *view;
    char          err[256];
    long          value;

    write_config("NH_OVERLAY_URL = http://primary\n"
                 "NH_FALLBACK_OVERLAY_COUNT = 9\n");
    cfg = load_ok();
    ck_assert_int_eq(nh_config_overlay(cfg, "NH_FALLBACK_", &view), 0);

    /* Unset under the prefix: the key itself. */
    ck_assert_str_eq(nh_config_get(view, "NH_OVERLAY_URL", "def"),
                     "http://primary");

    ck_assert_int_eq(setenv("NH_FALLBACK_OVERLAY_URL", "http://second", 1),
                     0);
    ck_assert_str_eq(nh_config_get(view, "NH_OVERLAY_URL", "def"),
                     "http://second");
    ck_assert_str_eq(nh_config_get(cfg, "NH_OVERLAY_URL", "def"),
                     "http://primary");

    ck_assert_int_eq(nh_config_get_long(view, "NH_OVERLAY_COUNT", 1, 0, 10,
                                        &value, err, sizeof(err)), 0);
    ck_assert_int_eq(value, 9);

    /* Keys without the NH_ prefix have no overlay name. */
    ck_assert_str_eq(nh_config_get(view, "NHT_MISSING", "def"), "def");

    nh_config_free(view);
    nh_config_free(cfg);
}
END_TEST


START_TEST(overlay_own_values)
{
    nh_config_t  *cfg, *view;

    write_config("NH_OVERLAY_FROM = +14155550100\n");
    cfg = load_ok();
    ck_assert_int_eq(nh_config_overlay(cfg, "NH_FALLBACK_", &view), 0);

    /* The view does not set the key, whatever the base has. */
    ck_assert_ptr_null(nh_config_get_own(view, "NH_OVERLAY_FROM"));
    ck_assert_str_eq(nh_config_get_own(cfg, "NH_OVERLAY_FROM"),
                     "+14155550100");

    ck_assert_int_eq(setenv("NH_FALLBACK_OVERLAY_FROM", "", 1), 0);
    ck_assert_str_eq(nh_config_get_own(view, "NH_OVERLAY_FROM"), "");
    ck_assert_int_eq(unsetenv("NH_FALLBACK_OVERLAY_FROM"), 0);

    ck_assert_ptr_null(nh_config_get_own(cfg, "NHT_MISSING"));
    ck_assert_ptr_null(nh_config_get_own(view, "NHT_MISSING"));

    nh_config_free(view);
    nh_config_free(cfg);
}
END_TEST


START_TEST(overlay_errors_name_prefixed_key)
{
    nh_config_t  *view;
    char          err[256];
    long          value;

    ck_assert_int_eq(nh_config_overlay(NULL, "NH_FALLBACK_", &view), 0);
    ck_assert_int_eq(setenv("NH_FALLBACK_OVERLAY_COUNT", "11", 1), 0);

    ck_assert_int_eq(nh_config_get_long(view, "NH_OVERLAY_COUNT", 1, 0, 10,
                                        &value, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "NH_FALLBACK_OVERLAY_COUNT"));

    nh_config_free(view);
}
END_TEST


Suite *
nh_config_suite(void)
{
    Suite  *suite;
    TCase  *tc;

    suite = suite_create("config");

    tc = tcase_create("load");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, load_without_file_reads_environment);
    tcase_add_test(tc, load_treats_empty_file_variable_as_unset);
    tcase_add_test(tc, load_parses_keys_values_and_comments);
    tcase_add_test(tc, environment_overrides_file);
    tcase_add_test(tc, get_accepts_null_config);
    tcase_add_test(tc, load_names_line_without_equals);
    tcase_add_test(tc, load_rejects_missing_key);
    tcase_add_test(tc, load_rejects_invalid_keys);
    tcase_add_test(tc, load_rejects_bad_quoting);
    tcase_add_test(tc, load_rejects_duplicate_key);
    tcase_add_test(tc, load_rejects_nul_byte);
    tcase_add_test(tc, load_errors_omit_values);
    tcase_add_test(tc, load_fails_for_missing_file);
    tcase_add_test(tc, load_accepts_null_error_buffer);
    suite_add_tcase(suite, tc);

    tc = tcase_create("get_long");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, get_long_reads_file_then_environment);
    tcase_add_test(tc, get_long_accepts_signs_and_bounds);
    tcase_add_test(tc, get_long_rejects_out_of_range);
    tcase_add_test(tc, get_long_rejects_non_integers);
    suite_add_tcase(suite, tc);

    tc = tcase_create("overlay");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, overlay_prefers_prefixed_keys);
    tcase_add_test(tc, overlay_errors_name_prefixed_key);
    tcase_add_test(tc, overlay_own_values);
    suite_add_tcase(suite, tc);

    return suite;
}
