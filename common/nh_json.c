#include "nh_json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* A growing output buffer; a failed allocation sticks in failed. */
typedef struct {
    char    *data;
    size_t   len;
    size_t   cap;
    int      failed;
} nh_json_buf_t;

/* One object member, with its input position to keep the sort stable. */
typedef struct {
    const cJSON  *item;
    size_t        index;
} nh_json_member_t;


static void nh_json_put(nh_json_buf_t *b, const char *s, size_t len);
static void nh_json_put_string(nh_json_buf_t *b, const char *s);
static void nh_json_write(nh_json_buf_t *b, const cJSON *item);
static int nh_json_member_cmp(const void *a, const void *b);


size_t
nh_json_format_number(double value, char out[NH_JSON_NUMBER_MAX])
{
    int     precision;
    double  back;

    if (!isfinite(value)) {
        /* JSON has no such numbers; cJSON prints them as null too. */
        memcpy(out, "null", 5);
        return 4;
    }

    if (fabs(value) < 9007199254740992.0 && value == floor(value)) {
        return (size_t) snprintf(out, NH_JSON_NUMBER_MAX, "%.0f",
                                 value == 0 ? 0.0 : value);
    }

    for (precision = 15; precision <= 17; precision++) {
        snprintf(out, NH_JSON_NUMBER_MAX, "%.*g", precision, value);
        back = strtod(out, NULL);

        if (back == value) {
            break;
        }
    }

    return strlen(out);
}


int
nh_json_canonical(const cJSON *item, char **out, size_t *outlen)
{
    nh_json_buf_t  b;

    memset(&b, 0, sizeof(b));

    nh_json_write(&b, item);
    nh_json_put(&b, "", 1);

    if (b.failed) {
        free(b.data);
        return -1;
    }

    *out = b.data;
    if (outlen) {
        *outlen = b.len - 1;
    }

    return 0;
}


static void
nh_json_write(nh_json_buf_t *b, const cJSON *item)
{
    char               number[NH_JSON_NUMBER_MAX];
    size_t             n, i, count;
    const cJSON       *child;
    nh_json_member_t  *members;

    if (cJSON_IsNull(item) || item == NULL) {
        nh_json_put(b, "null", 4);

    } else if (cJSON_IsTrue(item)) {
        nh_json_put(b, "true", 4);

    } else if (cJSON_IsFalse(item)) {
        nh_json_put(b, "false", 5);

    } else if (cJSON_IsNumber(item)) {
        n = nh_json_format_number(item->valuedouble, number);
        nh_json_put(b, number, n);

    } else if (cJSON_IsString(item)) {
        nh_json_put_string(b, item->valuestring);

    } else if (cJSON_IsArray(item)) {
        nh_json_put(b, "[", 1);

        for (child = item->child; child; child = child->next) {
            nh_json_write(b, child);
            if (child->next) {
                nh_json_put(b, ",", 1);
            }
        }

        nh_json_put(b, "]", 1);

    } else if (cJSON_IsObject(item)) {
        count = 0;
        for (child = item->child; child; child = child->next) {
            count++;
        }

        members = count ? malloc(count * sizeof(nh_json_member_t)) : NULL;
        if (count && members == NULL) {
            b->failed = 1;
            return;
        }

        i = 0;
        for (child = item->child; child; child = child->next) {
            members[i].item = child;
            members[i].index = i;
            i++;
        }

        qsort(members, count, sizeof(nh_json_member_t), nh_json_member_cmp);

        nh_json_put(b, "{", 1);

        for (i = 0, n = 0; i < count; i++) {
            /* Of equal names, the last in the input wins. */
            if (i + 1 < count
                && strcmp(members[i].item->string,
                          members[i + 1].item->string) == 0)
            {
                continue;
            }

            if (n++) {
                nh_json_put(b, ",", 1);
            }

            nh_json_put_string(b, members[i].item->string);
            nh_json_put(b, ":", 1);
            nh_json_write(b, members[i].item);
        }

        nh_json_put(b, "}", 1);
        free(members);

    } else {
        /* cJSON_Raw and invalid items do not come from the parser. */
        nh_json_put(b, "null", 4);
    }
}


static int
nh_json_member_cmp(const void *a, const void *b)
{
    int                      rc;
    const nh_json_member_t  *ma = a, *mb = b;

    rc = strcmp(ma->item->string, mb->item->string);
    if (rc != 0) {
        return rc;
    }

    return ma->index < mb->index ? -1 : 1;
}


static void
nh_json_put_string(nh_json_buf_t *b, const char *s)
{
    char   *text;
    cJSON  *item;

    item = cJSON_CreateString(s);
    text = item ? cJSON_PrintUnformatted(item) : NULL;

    if (text == NULL) {
        b->failed = 1;

    } else {
        nh_json_put(b, text, strlen(text));
    }

    cJSON_free(text);
    cJSON_Delete(item);
}


static void
nh_json_put(nh_json_buf_t *b, const char *s, size_t len)
{
    char    *data;
    size_t   cap;

    if (b->failed) {
        return;
    }

    if (b->len + len > b->cap) {
        cap = b->cap ? b->cap : 256;
        while (cap < b->len + len) {
            cap *= 2;
        }

        data = realloc(b->data, cap);
        if (data == NULL) {
            b->failed = 1;
            return;
        }

        b->data = data;
        b->cap = cap;
    }

    memcpy(b->data + b->len, s, len);
    b->len += len;
}
