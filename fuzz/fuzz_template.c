/*
 * libFuzzer target for the template parser and renderer in
 * common/nh_template.c. It is not part of "make test". Run it with
 *
 *     make fuzz                   (60 seconds)
 *     make fuzz FUZZ_TIME=600     (longer)
 *
 * which builds build/fuzz/fuzz_template with clang, libFuzzer,
 * AddressSanitizer and UndefinedBehaviorSanitizer (Debian packages clang
 * and libclang-rt-14-dev), starting from the seeds in
 * fuzz/corpus/template/. To replay one input, run
 * "build/fuzz/fuzz_template FILE".
 *
 * An input is a template, a NUL byte and a JSON document with the data.
 * The last NUL byte separates them, so the template itself may contain NUL
 * bytes (a valid JSON document cannot). An input without a NUL byte is a
 * template without data. Besides the sanitizers, the target aborts when a
 * result breaks the contract in nh_template.h.
 */

#define _GNU_SOURCE

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "nh_template.h"


/* Output limit of the main renders, and the small one compared to it. */
#define FUZZ_OUTPUT_MAX  (1024 * 1024)
#define FUZZ_OUTPUT_SMALL  16

#define FUZZ_CHECK(condition)                                                 \
    do {                                                                      \
        if (!(condition)) {                                                   \
            abort();                                                          \
        }                                                                     \
    } while (0)


int LLVMFuzzerTestOneInput(const uint8_t *input, size_t size);

static void fuzz_check_error(const nh_template_error_t *err, size_t len);
static void fuzz_check_variables(const nh_template_t *tpl);
static void fuzz_render(const nh_template_t *tpl, const cJSON *data);
static void fuzz_check_small(const nh_template_t *tpl, const cJSON *data,
    int escape_html, int rc, const char *out, size_t outlen);


int
LLVMFuzzerTestOneInput(const uint8_t *input, size_t size)
{
    nh_template_error_t   err;
    nh_template_t        *tpl;
    const char           *text, *separator;
    cJSON                *data;
    size_t                len;
    int                   rc;

    text = (const char *) input;
    separator = memrchr(text, '\0', size);
    data = NULL;

    if (separator != NULL) {
        len = (size_t) (separator - text);
        data = cJSON_ParseWithLength(separator + 1, size - len - 1);
    } else {
        len = size;
    }

    memset(&err, 0, sizeof(err));
    rc = nh_template_parse(text, len, &tpl, &err);

    if (rc == -1) {
        FUZZ_CHECK(tpl == NULL);
        fuzz_check_error(&err, len);
        goto done;
    }

    FUZZ_CHECK(rc == 0 && tpl != NULL);

    fuzz_check_variables(tpl);
    fuzz_render(tpl, data);

    nh_template_free(tpl);

done:

    cJSON_Delete(data);

    return 0;
}


/* Checks that the error lies inside the text and its position agrees. */
static void
fuzz_check_error(const nh_template_error_t *err, size_t len)
{
    FUZZ_CHECK(err->reason != NULL);
    FUZZ_CHECK(err->offset < len);
    FUZZ_CHECK(err->line >= 1 && err->line <= err->offset + 1);
    FUZZ_CHECK(err->column >= 1 && err->column <= err->offset + 1);
    FUZZ_CHECK(err->line == 1 || err->column <= err->offset);
}


/* Checks that variables are distinct, valid and normalised paths. */
static void
fuzz_check_variables(const nh_template_t *tpl)
{
    const char  *path;
    size_t       n, i, j, len;

    n = nh_template_variable_count(tpl);
    FUZZ_CHECK(n <= NH_TEMPLATE_VARIABLES_MAX);
    FUZZ_CHECK(nh_template_variable(tpl, n) == NULL);

    for (i = 0; i < n; i++) {
        path = nh_template_variable(tpl, i);
        FUZZ_CHECK(path != NULL);

        len = strlen(path);
        FUZZ_CHECK(len > 0 && len <= NH_TEMPLATE_PATH_MAX);
        FUZZ_CHECK(strspn(path, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                "abcdefghijklmnopqrstuvwxyz"
                                "0123456789_-.")
                   == len);
        FUZZ_CHECK(path[0] != '.' && path[len - 1] != '.');
        FUZZ_CHECK(strstr(path, "..") == NULL);

        for (j = 0; j < i; j++) {
            FUZZ_CHECK(strcmp(path, nh_template_variable(tpl, j)) != 0);
        }
    }
}


/*
 * Renders without and with HTML escaping, then both again with a small
 * limit, and compares the results. The same variables must be missing in
 * each, escaping must not shorten the output, and the small limit must
 * give the same output or -1.
 */
static void
fuzz_render(const nh_template_t *tpl, const cJSON *data)
{
    cJSON   *missing, *missing_escaped;
    char    *out, *escaped;
    size_t   outlen, escaped_len;
    int      rc, rc_escaped;

    out = NULL;
    escaped = NULL;

    missing = cJSON_CreateArray();
    missing_escaped = cJSON_CreateArray();

    if (missing == NULL || missing_escaped == NULL) {
        goto done;
    }

    rc = nh_template_render(tpl, data, 0, FUZZ_OUTPUT_MAX, &out, &outlen,
                            missing);
    rc_escaped = nh_template_render(tpl, data, 1, FUZZ_OUTPUT_MAX, &escaped,
                                    &escaped_len, missing_escaped);

    FUZZ_CHECK(rc >= -2 && rc <= 1);
    FUZZ_CHECK((rc == 0) == (out != NULL));
    FUZZ_CHECK((rc == 1) == (cJSON_GetArraySize(missing) > 0));
    FUZZ_CHECK(cJSON_GetArraySize(missing)
               <= (int) nh_template_variable_count(tpl));
    FUZZ_CHECK((rc == 1) == (rc_escaped == 1));
    FUZZ_CHECK(cJSON_GetArraySize(missing)
               == cJSON_GetArraySize(missing_escaped));

    if (rc == 0) {
        FUZZ_CHECK(outlen <= FUZZ_OUTPUT_MAX && out[outlen] == '\0');
    }

    if (rc == 0 && rc_escaped == 0) {
        FUZZ_CHECK(escaped_len >= outlen);
        FUZZ_CHECK(escaped[escaped_len] == '\0');
    }

    fuzz_check_small(tpl, data, 0, rc, out, outlen);
    fuzz_check_small(tpl, data, 1, rc_escaped, escaped, escaped_len);

done:

    free(out);
    free(escaped);
    cJSON_Delete(missing);
    cJSON_Delete(missing_escaped);
}


/*
 * Renders again with FUZZ_OUTPUT_SMALL as the limit and compares with the
 * result rc, out and outlen of the render with FUZZ_OUTPUT_MAX.
 */
static void
fuzz_check_small(const nh_template_t *tpl, const cJSON *data,
    int escape_html, int rc, const char *out, size_t outlen)
{
    char    *small;
    size_t   small_len;
    int      rc_small;

    rc_small = nh_template_render(tpl, data, escape_html, FUZZ_OUTPUT_SMALL,
                                  &small, &small_len, NULL);

    FUZZ_CHECK((rc == 1) == (rc_small == 1));
    FUZZ_CHECK(rc != -1 || rc_small == -1);

    if (rc == 0 && outlen <= FUZZ_OUTPUT_SMALL) {
        FUZZ_CHECK(rc_small == 0 && small_len == outlen);
        FUZZ_CHECK(memcmp(small, out, outlen + 1) == 0);

    } else if (rc == 0) {
        FUZZ_CHECK(rc_small == -1 && small == NULL);
    }

    free(small);
}
