#ifndef NH_TEMPLATE_H
#define NH_TEMPLATE_H

#include <stddef.h>

#include <cjson/cJSON.h>

/*
 * Templates: text with {{path}} tags, where a path is one or more segments
 * of [A-Za-z0-9_-] joined by dots ("firstName", "order.id", " a.b.c " with
 * spaces inside the braces). A path names a value in the JSON data: each
 * segment is an object member, or an array index when it is all digits.
 * Everything outside tags is copied as it is. Parsing takes time linear in
 * the size of the template. Rendering takes time linear in the size of the
 * template and of the output, plus one lookup per distinct variable that
 * walks the members of each object on its path. An object or array value
 * is printed in full before max_output applies.
 *
 * A tag starts at the first "{{" and ends at the next "}}". Only spaces
 * (U+0020) may surround the path, and none may appear inside it. A single
 * "{" or "}" outside a tag is literal text, but a template cannot contain a
 * literal "{{" or "}}": "{{{a}}}" is an error, because the tag's path would
 * start with "{".
 */

typedef struct nh_template_s  nh_template_t;

/* Where and why a template is malformed. */
typedef struct {
    size_t       offset;   /* bytes from the start of the text */
    size_t       line;     /* from 1, counting "\n" bytes */
    size_t       column;   /* from 1, in bytes */
    const char  *reason;   /* a static string, e.g. "unclosed tag" */
} nh_template_error_t;

/* Maximum path length in bytes and maximum distinct variables per template. */
#define NH_TEMPLATE_PATH_MAX       256
#define NH_TEMPLATE_VARIABLES_MAX  256

/*
 * Parses len bytes. Returns 0 and a template in *out, -1 and the position
 * and reason in *err when the text is malformed, or -2 when memory runs
 * out. *out is NULL after a failure, and err (which may be NULL) is written
 * only on -1. The text need not be NUL-terminated and may contain NUL
 * bytes. The template keeps its own copy.
 *
 * The reasons, all at the position of the "{{" except the second:
 * "unclosed tag" ("{{" without "}}"), "unexpected \"}}\" outside a tag"
 * (at the "}}"), "empty path", "empty path segment" (a leading, trailing
 * or doubled dot), "space inside path", "invalid character in path",
 * "path too long" (over NH_TEMPLATE_PATH_MAX bytes) and "too many
 * variables" (over NH_TEMPLATE_VARIABLES_MAX distinct paths).
 */
int nh_template_parse(const char *text, size_t len, nh_template_t **out,
    nh_template_error_t *err);

/* Frees a template. NULL is allowed. */
void nh_template_free(nh_template_t *tpl);

/* Returns the number of distinct variable paths. */
size_t nh_template_variable_count(const nh_template_t *tpl);

/*
 * Returns the i-th distinct path in order of first use, normalised (no
 * spaces), NUL-terminated and valid until the template is freed, or NULL
 * when i is out of range.
 */
const char *nh_template_variable(const nh_template_t *tpl, size_t i);

/*
 * Renders the template with data, normally an object, or NULL for none.
 * On an array, a path segment of digits without a leading zero ("0",
 * "12") is an index. On an object, every segment names a member, digits
 * included, and the first member of that name wins. Strings are inserted
 * as they are, numbers in their shortest form (42, 3.5, 0.1, 1e+300), true
 * and false as words, and objects and arrays as compact JSON. null and
 * numbers that are not finite insert nothing. Inserted values are never
 * parsed as templates. With escape_html, & < > " ' in inserted values
 * become &amp; &lt; &gt; &quot; &#39;, but the template's own text is never
 * escaped.
 *
 * Returns 0 with a malloc'ed NUL-terminated string in *out and its length
 * in *outlen, which may be NULL. The output may contain NUL bytes from the
 * template. Returns 1 when variables are missing, -1 when the output would
 * exceed max_output bytes (the NUL not counted, and SIZE_MAX means no
 * limit), or -2 when memory runs out. On every result but 0, *out is NULL
 * and *outlen 0. Missing variables are checked first, so the result is 1
 * whenever one is missing, whatever the output size. Each missing path is
 * appended to the cJSON array missing, if not NULL, in order of first use,
 * unless the array already contains that string. One array can so collect
 * the missing paths of several templates.
 */
int nh_template_render(const nh_template_t *tpl, const cJSON *data,
    int escape_html, size_t max_output, char **out, size_t *outlen,
    cJSON *missing);

#endif /* NH_TEMPLATE_H */
