#include "nh_template.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nh_json.h"


/*
 * Slots of the hash table that finds repeated paths while parsing: a power
 * of two, at least twice NH_TEMPLATE_VARIABLES_MAX, so that probes stay
 * short. A slot contains a variable index plus one, or 0 when empty.
 */
#define NH_TEMPLATE_HASH_SLOTS  512

/* The variable of a part that has only text: the template's tail. */
#define NH_TEMPLATE_NO_VARIABLE  ((size_t) -1)

/* First capacity of the output buffer, before it doubles. */
#define NH_TEMPLATE_OUTPUT_MIN  256


/* Literal text followed by a variable, or by nothing in the last part. */
typedef struct {
    size_t  text_len;
    size_t  variable;
} nh_template_part_t;

typedef struct {
    char      *path;
    size_t     len;
    uint32_t   hash;
} nh_template_variable_t;

struct nh_template_s {
    /* The literal text of all parts, back to back, without the tags. */
    char                    *text;
    size_t                   text_len;
    nh_template_part_t      *parts;
    size_t                   nparts;
    size_t                   parts_cap;
    nh_template_variable_t  *variables;
    size_t                   nvariables;
    size_t                   variables_cap;
};

typedef struct {
    const char           *text;
    nh_template_t        *tpl;
    nh_template_error_t  *err;
    uint16_t              slots[NH_TEMPLATE_HASH_SLOTS];
} nh_template_parser_t;

/* A variable's value as rendered text, before HTML escaping. */
typedef struct {
    const cJSON  *item;
    const char   *text;
    size_t        len;
    char         *printed;
    char          number[NH_JSON_NUMBER_MAX];
} nh_template_value_t;

typedef struct {
    char    *data;
    size_t   len;
    size_t   cap;
    size_t   max;
} nh_template_output_t;


static int nh_template_add_tag(nh_template_parser_t *parser, size_t offset,
    const char *start, const char *end, size_t text_len);
static const char *nh_template_check_path(const char *path, size_t len);
static int nh_template_add_variable(nh_template_parser_t *parser,
    const char *path, size_t len, size_t *index);
static int nh_template_add_part(nh_template_t *tpl, size_t text_len,
    size_t variable);
static void *nh_template_grow(void *array, size_t *cap, size_t size);
static const char *nh_template_find_close(const char *p, const char *end);
static int nh_template_fail(nh_template_parser_t *parser, size_t offset,
    const char *reason);
static uint32_t nh_template_hash(const char *s, size_t len);
static const cJSON *nh_template_resolve(const cJSON *data, const char *path);
static const cJSON *nh_template_child(const cJSON *item, const char *name,
    size_t len);
static int nh_template_add_missing(cJSON *missing, const char *path);
static int nh_template_format(nh_template_value_t *value);
static int nh_template_write(nh_template_output_t *output, const char *s,
    size_t len);
static int nh_template_write_escaped(nh_template_output_t *output,
    const char *s, size_t len);
static int nh_template_reserve(nh_template_output_t *output, size_t len);


int
nh_template_parse(const char *text, size_t len, nh_template_t **out,
    nh_template_error_t *err)
{
    nh_template_parser_t   parser;
    nh_template_t         *tpl;
    const char            *close;
    size_t                 i, pending;
    int                    rc;

    *out = NULL;
    rc = -2;

    tpl = calloc(1, sizeof(nh_template_t));
    if (tpl == NULL) {
        goto failed;
    }

    /* The literal text is at most the whole template. */
    tpl->text = malloc(len > 0 ? len : 1);
    if (tpl->text == NULL) {
        goto failed;
    }

    memset(&parser, 0, sizeof(parser));
    parser.text = text;
    parser.tpl = tpl;
    parser.err = err;

    /* Bytes of literal text since the last tag. */
    pending = 0;
    i = 0;

    while (i < len) {
        if (text[i] == '{' && i + 1 < len && text[i + 1] == '{') {
            close = nh_template_find_close(text + i + 2, text + len);

            if (close == NULL) {
                rc = nh_template_fail(&parser, i, "unclosed tag");
                goto failed;
            }

            rc = nh_template_add_tag(&parser, i, text + i + 2, close, pending);
            if (rc != 0) {
                goto failed;
            }

            pending = 0;
            i = (size_t) (close - text) + 2;
            continue;
        }

        if (text[i] == '}' && i + 1 < len && text[i + 1] == '}') {
            rc = nh_template_fail(&parser, i,
                                  "unexpected \"}}\" outside a tag");
            goto failed;
        }

        tpl->text[tpl->text_len++] = text[i++];
        pending++;
    }

    if (pending > 0) {
        rc = nh_template_add_part(tpl, pending, NH_TEMPLATE_NO_VARIABLE);
        if (rc != 0) {
            goto failed;
        }
    }

    *out = tpl;
    tpl = NULL;
    rc = 0;

failed:

    nh_template_free(tpl);

    return rc;
}


void
nh_template_free(nh_template_t *tpl)
{
    size_t  i;

    if (tpl == NULL) {
        return;
    }

    for (i = 0; i < tpl->nvariables; i++) {
        free(tpl->variables[i].path);
    }

    free(tpl->variables);
    free(tpl->parts);
    free(tpl->text);
    free(tpl);
}


size_t
nh_template_variable_count(const nh_template_t *tpl)
{
    return tpl->nvariables;
}


const char *
nh_template_variable(const nh_template_t *tpl, size_t i)
{
    if (i >= tpl->nvariables) {
        return NULL;
    }

    return tpl->variables[i].path;
}


int
nh_template_render(const nh_template_t *tpl, const cJSON *data,
    int escape_html, size_t max_output, char **out, size_t *outlen,
    cJSON *missing)
{
    nh_template_output_t       output;
    nh_template_value_t       *values, *value;
    const nh_template_part_t  *part;
    const char                *text;
    size_t                     i, nmissing;
    int                        rc;

    *out = NULL;
    if (outlen != NULL) {
        *outlen = 0;
    }

    memset(&output, 0, sizeof(output));
    output.max = max_output;
    rc = -2;

    values = calloc(tpl->nvariables > 0 ? tpl->nvariables : 1,
                    sizeof(nh_template_value_t));
    if (values == NULL) {
        goto failed;
    }

    /* Every variable is looked up once, however often the text uses it. */
    nmissing = 0;

    for (i = 0; i < tpl->nvariables; i++) {
        values[i].item = nh_template_resolve(data, tpl->variables[i].path);

        if (values[i].item != NULL) {
            continue;
        }

        nmissing++;

        if (missing != NULL
            && nh_template_add_missing(missing, tpl->variables[i].path) != 0)
        {
            goto failed;
        }
    }

    if (nmissing > 0) {
        rc = 1;
        goto failed;
    }

    for (i = 0; i < tpl->nvariables; i++) {
        if (nh_template_format(&values[i]) != 0) {
            goto failed;
        }
    }

    text = tpl->text;

    for (i = 0; i < tpl->nparts; i++) {
        part = &tpl->parts[i];

        rc = nh_template_write(&output, text, part->text_len);
        if (rc != 0) {
            goto failed;
        }

        text += part->text_len;

        if (part->variable == NH_TEMPLATE_NO_VARIABLE) {
            continue;
        }

        value = &values[part->variable];

        if (escape_html) {
            rc = nh_template_write_escaped(&output, value->text, value->len);
        } else {
            rc = nh_template_write(&output, value->text, value->len);
        }

        if (rc != 0) {
            goto failed;
        }
    }

    /* This allocates the buffer of an empty output and makes room for NUL. */
    rc = nh_template_reserve(&output, 0);
    if (rc != 0) {
        goto failed;
    }

    output.data[output.len] = '\0';

    *out = output.data;
    if (outlen != NULL) {
        *outlen = output.len;
    }

    output.data = NULL;
    rc = 0;

failed:

    if (values != NULL) {
        for (i = 0; i < tpl->nvariables; i++) {
            cJSON_free(values[i].printed);
        }
    }

    free(values);
    free(output.data);

    return rc;
}


/*
 * Adds the tag whose path text lies between start and end, and the
 * text_len bytes of literal text before it, as one part.
 */
static int
nh_template_add_tag(nh_template_parser_t *parser, size_t offset,
    const char *start, const char *end, size_t text_len)
{
    const char  *reason;
    size_t       index;
    int          rc;

    while (start < end && *start == ' ') {
        start++;
    }

    while (end > start && end[-1] == ' ') {
        end--;
    }

    reason = nh_template_check_path(start, (size_t) (end - start));
    if (reason != NULL) {
        return nh_template_fail(parser, offset, reason);
    }

    rc = nh_template_add_variable(parser, start, (size_t) (end - start),
                                  &index);
    if (rc == -1) {
        return nh_template_fail(parser, offset, "too many variables");
    }

    if (rc != 0) {
        return rc;
    }

    return nh_template_add_part(parser->tpl, text_len, index);
}


/* Returns NULL for a valid path, or the reason that it is not. */
static const char *
nh_template_check_path(const char *path, size_t len)
{
    size_t  i, segment_len;
    char    c;

    if (len == 0) {
        return "empty path";
    }

    segment_len = 0;

    for (i = 0; i < len; i++) {
        c = path[i];

        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
            || (c >= '0' && c <= '9') || c == '_' || c == '-')
        {
            segment_len++;
            continue;
        }

        if (c == '.') {
            if (segment_len == 0) {
                return "empty path segment";
            }

            segment_len = 0;
            continue;
        }

        return (c == ' ') ? "space inside path" : "invalid character in path";
    }

    if (segment_len == 0) {
        return "empty path segment";
    }

    if (len > NH_TEMPLATE_PATH_MAX) {
        return "path too long";
    }

    return NULL;
}


/*
 * Finds the path in the template's variables or adds it. Returns 0 and its
 * index, -1 when the template already has NH_TEMPLATE_VARIABLES_MAX
 * variables, or -2 when memory runs out.
 */
static int
nh_template_add_variable(nh_template_parser_t *parser, const char *path,
    size_t len, size_t *index)
{
    nh_template_t           *tpl;
    nh_template_variable_t  *variable;
    void                    *grown;
    uint32_t                 hash;
    size_t                   slot;

    tpl = parser->tpl;
    hash = nh_template_hash(path, len);
    slot = hash & (NH_TEMPLATE_HASH_SLOTS - 1);

    while (parser->slots[slot] != 0) {
        variable = &tpl->variables[parser->slots[slot] - 1];

        if (variable->hash == hash && variable->len == len
            && memcmp(variable->path, path, len) == 0)
        {
            *index = parser->slots[slot] - 1u;
            return 0;
        }

        slot = (slot + 1) & (NH_TEMPLATE_HASH_SLOTS - 1);
    }

    if (tpl->nvariables == NH_TEMPLATE_VARIABLES_MAX) {
        return -1;
    }

    if (tpl->nvariables == tpl->variables_cap) {
        grown = nh_template_grow(tpl->variables, &tpl->variables_cap,
                                 sizeof(nh_template_variable_t));
        if (grown == NULL) {
            return -2;
        }

        tpl->variables = grown;
    }

    variable = &tpl->variables[tpl->nvariables];

    variable->path = malloc(len + 1);
    if (variable->path == NULL) {
        return -2;
    }

    memcpy(variable->path, path, len);
    variable->path[len] = '\0';
    variable->len = len;
    variable->hash = hash;

    *index = tpl->nvariables++;
    parser->slots[slot] = (uint16_t) tpl->nvariables;

    return 0;
}


static int
nh_template_add_part(nh_template_t *tpl, size_t text_len, size_t variable)
{
    void  *grown;

    if (tpl->nparts == tpl->parts_cap) {
        grown = nh_template_grow(tpl->parts, &tpl->parts_cap,
                                 sizeof(nh_template_part_t));
        if (grown == NULL) {
            return -2;
        }

        tpl->parts = grown;
    }

    tpl->parts[tpl->nparts].text_len = text_len;
    tpl->parts[tpl->nparts].variable = variable;
    tpl->nparts++;

    return 0;
}


/*
 * Doubles the capacity of an array of elements of the given size. Returns
 * the new array, or NULL when memory runs out and the array is unchanged.
 */
static void *
nh_template_grow(void *array, size_t *cap, size_t size)
{
    size_t   n;
    void    *p;

    n = (*cap > 0) ? *cap * 2 : 8;

    if (n > SIZE_MAX / size) {
        return NULL;
    }

    p = realloc(array, n * size);
    if (p == NULL) {
        return NULL;
    }

    *cap = n;

    return p;
}


/* Returns the first "}}" between p and end, or NULL. */
static const char *
nh_template_find_close(const char *p, const char *end)
{
    while (p < end) {
        p = memchr(p, '}', (size_t) (end - p));

        if (p == NULL || p + 1 == end) {
            return NULL;
        }

        if (p[1] == '}') {
            return p;
        }

        p++;
    }

    return NULL;
}


/*
 * Stores the position and reason of an error and returns -1. The line and
 * column come from one pass over the text before the offset: parsing stops
 * at the first error, so this pass runs once per call of
 * nh_template_parse.
 */
static int
nh_template_fail(nh_template_parser_t *parser, size_t offset,
    const char *reason)
{
    nh_template_error_t  *err;
    const char           *p, *end, *line_start, *nl;
    size_t                line;

    err = parser->err;

    if (err == NULL) {
        return -1;
    }

    p = parser->text;
    end = parser->text + offset;
    line_start = p;
    line = 1;

    while (p < end) {
        nl = memchr(p, '\n', (size_t) (end - p));

        if (nl == NULL) {
            break;
        }

        line++;
        line_start = nl + 1;
        p = nl + 1;
    }

    err->offset = offset;
    err->line = line;
    err->column = (size_t) (end - line_start) + 1;
    err->reason = reason;

    return -1;
}


/* FNV-1a, 32 bits. */
static uint32_t
nh_template_hash(const char *s, size_t len)
{
    uint32_t  hash;
    size_t    i;

    hash = 2166136261u;

    for (i = 0; i < len; i++) {
        hash ^= (unsigned char) s[i];
        hash *= 16777619u;
    }

    return hash;
}


/* Returns the value that a valid, normalised path names, or NULL. */
static const cJSON *
nh_template_resolve(const cJSON *data, const char *path)
{
    const cJSON  *item;
    const char   *dot;
    size_t        len;

    item = data;

    while (item != NULL) {
        dot = strchr(path, '.');
        len = (dot != NULL) ? (size_t) (dot - path) : strlen(path);

        item = nh_template_child(item, path, len);

        if (dot == NULL) {
            break;
        }

        path = dot + 1;
    }

    return item;
}


/*
 * Returns the member of an object with the given name (the first, when the
 * name repeats), or the element of an array at the given index, or NULL.
 * An index is decimal digits without a leading zero, as in JSON Pointer
 * (RFC 6901), so "01" names no element.
 */
static const cJSON *
nh_template_child(const cJSON *item, const char *name, size_t len)
{
    const cJSON  *child;
    size_t        i, index;

    if (cJSON_IsObject(item)) {
        for (child = item->child; child != NULL; child = child->next) {
            if (child->string != NULL
                && strncmp(child->string, name, len) == 0
                && child->string[len] == '\0')
            {
                return child;
            }
        }

        return NULL;
    }

    if (!cJSON_IsArray(item)) {
        return NULL;
    }

    if (name[0] == '0' && len > 1) {
        return NULL;
    }

    index = 0;

    for (i = 0; i < len; i++) {
        if (name[i] < '0' || name[i] > '9') {
            return NULL;
        }

        /* An index this large is past the end of any array. */
        if (index > (SIZE_MAX - 9) / 10) {
            return NULL;
        }

        index = index * 10 + (size_t) (name[i] - '0');
    }

    for (child = item->child; child != NULL && index > 0; child = child->next) {
        index--;
    }

    return child;
}


/* Appends path to missing unless the array contains it already. */
static int
nh_template_add_missing(cJSON *missing, const char *path)
{
    const cJSON  *entry;
    cJSON        *string;

    cJSON_ArrayForEach(entry, missing) {
        if (cJSON_IsString(entry) && strcmp(entry->valuestring, path) == 0) {
            return 0;
        }
    }

    string = cJSON_CreateString(path);
    if (string == NULL) {
        return -2;
    }

    if (!cJSON_AddItemToArray(missing, string)) {
        cJSON_Delete(string);
        return -2;
    }

    return 0;
}


/*
 * Sets the text of a value from its item. Returns 0, or -2 when memory
 * runs out.
 */
static int
nh_template_format(nh_template_value_t *value)
{
    const cJSON  *item;

    item = value->item;
    value->text = "";

    if (cJSON_IsString(item) || cJSON_IsRaw(item)) {
        if (item->valuestring != NULL) {
            value->text = item->valuestring;
        }

    } else if (cJSON_IsNumber(item)) {
        /* NaN and infinities: JSON has none, and cJSON prints them as null. */
        if (isfinite(item->valuedouble)) {
            nh_json_format_number(item->valuedouble, value->number);
            value->text = value->number;
        }

    } else if (cJSON_IsTrue(item)) {
        value->text = "true";

    } else if (cJSON_IsFalse(item)) {
        value->text = "false";

    } else if (cJSON_IsObject(item) || cJSON_IsArray(item)) {
        value->printed = cJSON_PrintUnformatted(item);
        if (value->printed == NULL) {
            return -2;
        }

        value->text = value->printed;
    }

    value->len = strlen(value->text);

    return 0;
}


static int
nh_template_write(nh_template_output_t *output, const char *s, size_t len)
{
    int  rc;

    if (len == 0) {
        return 0;
    }

    rc = nh_template_reserve(output, len);
    if (rc != 0) {
        return rc;
    }

    memcpy(output->data + output->len, s, len);
    output->len += len;

    return 0;
}


static int
nh_template_write_escaped(nh_template_output_t *output, const char *s,
    size_t len)
{
    const char  *entity;
    size_t       i, run;
    int          rc;

    run = 0;

    for (i = 0; i < len; i++) {
        switch (s[i]) {
        case '&':
            entity = "&amp;";
            break;
        case '<':
            entity = "&lt;";
            break;
        case '>':
            entity = "&gt;";
            break;
        case '"':
            entity = "&quot;";
            break;
        case '\'':
            entity = "&#39;";
            break;
        default:
            continue;
        }

        rc = nh_template_write(output, s + run, i - run);
        if (rc != 0) {
            return rc;
        }

        rc = nh_template_write(output, entity, strlen(entity));
        if (rc != 0) {
            return rc;
        }

        run = i + 1;
    }

    return nh_template_write(output, s + run, len - run);
}


/*
 * Makes room for len more bytes and a NUL. Returns -1 when the output
 * would exceed its maximum, -2 when memory runs out. The capacity doubles,
 * so that writing n bytes costs O(n) in all, but never exceeds the
 * maximum plus the NUL.
 */
static int
nh_template_reserve(nh_template_output_t *output, size_t len)
{
    size_t   need, cap;
    char    *p;

    if (len > output->max - output->len) {
        return -1;
    }

    if (output->len + len == SIZE_MAX) {
        return -2;
    }

    need = output->len + len + 1;

    if (need <= output->cap) {
        return 0;
    }

    cap = (output->cap > 0) ? output->cap : NH_TEMPLATE_OUTPUT_MIN;

    while (cap < need) {
        cap = (cap > SIZE_MAX / 2) ? need : cap * 2;
    }

    if (output->max < SIZE_MAX && cap > output->max + 1) {
        cap = output->max + 1;
    }

    p = realloc(output->data, cap);
    if (p == NULL) {
        return -2;
    }

    output->data = p;
    output->cap = cap;

    return 0;
}
