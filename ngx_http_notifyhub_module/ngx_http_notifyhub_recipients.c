
/*
 * Recipients: the people a tenant notifies, their push devices, and their
 * channel preferences and quiet hours. This file validates and normalizes
 * every field. The nh_recipient_*, nh_preferences_* and nh_device_* SQL
 * functions store the fields, enforce uniqueness and the plan's limit,
 * and return the replies.
 */


#include "ngx_http_notifyhub_module.h"
#include "nh_validate.h"


#define NGX_HTTP_NOTIFYHUB_RECIPIENT_NAME_MAX    200
#define NGX_HTTP_NOTIFYHUB_EXTERNAL_ID_MAX       255
/* E.164 allows 15 digits after the "+". */
#define NGX_HTTP_NOTIFYHUB_PHONE_MAX             16
/* Devices that one create request may register. */
#define NGX_HTTP_NOTIFYHUB_DEVICE_TOKENS_MAX     20
/* As for to.deviceToken of a push notification. */
#define NGX_HTTP_NOTIFYHUB_RECIPIENT_TOKEN_MAX   4096
/*
 * The longest IANA zone name in tzdata 2025b has 32 characters
 * ("America/Argentina/ComodRivadavia"); this leaves room for new ones.
 */
#define NGX_HTTP_NOTIFYHUB_TZ_NAME_MAX           64
/* The maximum length of a locale tag, in characters. */
#define NGX_HTTP_NOTIFYHUB_LOCALE_MAX            35

#define NGX_HTTP_NOTIFYHUB_ZONEINFO_DIR          "/usr/share/zoneinfo"
#define NGX_HTTP_NOTIFYHUB_TZDATA_ZI                                         \
    NGX_HTTP_NOTIFYHUB_ZONEINFO_DIR "/tzdata.zi"
/*
 * The tzdata.zi of tzdata 2025b has 114350 bytes. A file over this bound
 * is not a tzdata.zi.
 */
#define NGX_HTTP_NOTIFYHUB_TZDATA_ZI_MAX         (4 * 1024 * 1024)

/* The recipient fields that create and update take, in this order. */
#define NGX_HTTP_NOTIFYHUB_RECIPIENT_NFIELDS     6


typedef const char *(*ngx_http_notifyhub_field_check_pt)(
    ngx_http_request_t *r, ngx_http_notifyhub_ctx_t *ctx, const char *name,
    const char *value);

/* A recipient field: its JSON name, its column and how it is checked. */
typedef struct {
    const char                         *name;
    const char                         *column;
    size_t                              max_len;
    ngx_http_notifyhub_field_check_pt   check;    /* NULL: length only */
} ngx_http_notifyhub_recipient_field_t;


static const char *ngx_http_notifyhub_check_email(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx, const char *name, const char *value);
static const char *ngx_http_notifyhub_check_phone(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx, const char *name, const char *value);
static const char *ngx_http_notifyhub_check_timezone(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx, const char *name, const char *value);
static const char *ngx_http_notifyhub_check_locale(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx, const char *name, const char *value);

static void ngx_http_notifyhub_recipient_insert(ngx_http_request_t *r,
    ngx_http_notifyhub_key_t *key);
static ngx_int_t ngx_http_notifyhub_recipient_fields(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx, const char **values,
    ngx_uint_t *present);
static char *ngx_http_notifyhub_device_tokens(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx);
static const char *ngx_http_notifyhub_device_token(
    ngx_http_notifyhub_ctx_t *ctx, cJSON *object, const char *path);
static void ngx_http_notifyhub_recipient_select(ngx_http_request_t *r,
    ngx_http_notifyhub_key_t *key);
static const char *ngx_http_notifyhub_recipient_filter(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx, const char *name);
static void ngx_http_notifyhub_recipient_listed(ngx_http_request_t *r,
    PGresult *res, void *data);
static void ngx_http_notifyhub_recipient_fetch(ngx_http_request_t *r,
    ngx_http_notifyhub_key_t *key);
static void ngx_http_notifyhub_recipient_change(ngx_http_request_t *r,
    ngx_http_notifyhub_key_t *key);
static void ngx_http_notifyhub_recipient_remove(ngx_http_request_t *r,
    ngx_http_notifyhub_key_t *key);
static void ngx_http_notifyhub_preferences_fetch(ngx_http_request_t *r,
    ngx_http_notifyhub_key_t *key);
static void ngx_http_notifyhub_preferences_replace(ngx_http_request_t *r,
    ngx_http_notifyhub_key_t *key);
static void ngx_http_notifyhub_preferences_channels(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx, const char **enabled);
static void ngx_http_notifyhub_preferences_quiet_hours(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx, const char **quiet);
static const char *ngx_http_notifyhub_time_of_day(
    ngx_http_notifyhub_ctx_t *ctx, cJSON *object, const char *name,
    const char *path);
static void ngx_http_notifyhub_preferences_reset(ngx_http_request_t *r,
    ngx_http_notifyhub_key_t *key);
static void ngx_http_notifyhub_device_select(ngx_http_request_t *r,
    ngx_http_notifyhub_key_t *key);
static void ngx_http_notifyhub_device_listed(ngx_http_request_t *r,
    PGresult *res, void *data);
static void ngx_http_notifyhub_device_insert(ngx_http_request_t *r,
    ngx_http_notifyhub_key_t *key);
static void ngx_http_notifyhub_device_remove(ngx_http_request_t *r,
    ngx_http_notifyhub_key_t *key);
static ngx_int_t ngx_http_notifyhub_recipient_query(ngx_http_request_t *r,
    ngx_http_notifyhub_key_t *key, const char *sql, const char *what);
static char *ngx_http_notifyhub_pool_json(ngx_http_request_t *r,
    cJSON *json);
static ngx_uint_t ngx_http_notifyhub_tz_known(const char *name);
static ngx_uint_t ngx_http_notifyhub_tz_name_is_valid(const u_char *name,
    size_t len);
static ngx_int_t ngx_http_notifyhub_tz_add(ngx_cycle_t *cycle,
    ngx_array_t *names, u_char *name, size_t len);
static ngx_int_t ngx_http_notifyhub_tz_compare(const void *one,
    const void *two);
static ngx_uint_t ngx_http_notifyhub_locale_normalize(u_char *tag,
    size_t len);


static ngx_http_notifyhub_recipient_field_t
    ngx_http_notifyhub_recipient_fields_list[] = {
    { "externalId", "external_id", NGX_HTTP_NOTIFYHUB_EXTERNAL_ID_MAX, NULL },
    { "email", "email", NH_EMAIL_MAX, ngx_http_notifyhub_check_email },
    { "phone", "phone", NGX_HTTP_NOTIFYHUB_PHONE_MAX,
      ngx_http_notifyhub_check_phone },
    { "name", "name", NGX_HTTP_NOTIFYHUB_RECIPIENT_NAME_MAX, NULL },
    { "timezone", "timezone", NGX_HTTP_NOTIFYHUB_TZ_NAME_MAX,
      ngx_http_notifyhub_check_timezone },
    { "locale", "locale", NGX_HTTP_NOTIFYHUB_LOCALE_MAX,
      ngx_http_notifyhub_check_locale }
};

static const char  *ngx_http_notifyhub_platforms[] = {
    "IOS", "ANDROID", "WEB", NULL
};

/* The channels of the preferences, in the order of the SQL arguments. */
static const char  *ngx_http_notifyhub_preference_channels[] = {
    "EMAIL", "SMS", "PUSH", NULL
};


/*
 * The IANA time zone names that this host has files for, sorted by
 * strcmp(). Each worker process loads them once, at its start, in
 * ngx_http_notifyhub_recipients_init_process().
 */
static char        **ngx_http_notifyhub_tz_names;
static ngx_uint_t    ngx_http_notifyhub_tz_count;


void
ngx_http_notifyhub_recipient_create(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx)
{
    ngx_http_notifyhub_authenticate(r,
                                    NGX_HTTP_NOTIFYHUB_SCOPE_RECIPIENTS_WRITE,
                                    ngx_http_notifyhub_recipient_insert);
}


static void
ngx_http_notifyhub_recipient_insert(ngx_http_request_t *r,
    ngx_http_notifyhub_key_t *key)
{
    char                       id[NH_UUID_STR_LEN + 1];
    char                       tenant_id[NH_UUID_STR_LEN + 1];
    char                      *devices;
    u_char                     uuid[NH_UUID_LEN];
    ngx_int_t                  rc;
    ngx_uint_t                 present[NGX_HTTP_NOTIFYHUB_RECIPIENT_NFIELDS];
    const char                *values[9];
    ngx_http_notifyhub_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_notifyhub_module);

    if (ngx_http_notifyhub_recipient_fields(r, ctx, &values[2], present)
        != NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    devices = ngx_http_notifyhub_device_tokens(r, ctx);

    if (ctx->details) {
        ngx_http_finalize_request(r, ngx_http_notifyhub_send_invalid(r, ctx));
        return;
    }

    if (devices == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (nh_uuid7_generate(uuid) != 0) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    nh_uuid_format(uuid, id);
    nh_uuid_format(key->tenant_id, tenant_id);

    values[0] = tenant_id;
    values[1] = id;
    values[8] = devices;

    rc = ngx_http_notifyhub_pg_query(r,
             "SELECT status, body FROM nh_recipient_create($1, $2, $3, $4, "
             "$5, $6, $7, $8, $9)",
             9, values, NULL, NULL,
             ngx_http_notifyhub_reply_done, (void *) "nh_recipient_create");

    if (rc != NGX_OK) {
        ngx_http_notifyhub_start_failed(r, rc);
    }
}


/*
 * Reads the fields of ngx_http_notifyhub_recipient_fields_list into
 * values, normalized, and sets present[i] for each field that the body
 * contains, null included. An absent or null field leaves values[i] NULL.
 * Invalid fields are recorded in ctx->details. Returns NGX_ERROR only when
 * memory runs out.
 */
static ngx_int_t
ngx_http_notifyhub_recipient_fields(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx, const char **values, ngx_uint_t *present)
{
    cJSON                                 *item;
    ngx_uint_t                             i, errors;
    const char                            *value;
    ngx_http_notifyhub_recipient_field_t  *field;

    for (i = 0; i < NGX_HTTP_NOTIFYHUB_RECIPIENT_NFIELDS; i++) {
        field = &ngx_http_notifyhub_recipient_fields_list[i];

        values[i] = NULL;

        item = cJSON_GetObjectItemCaseSensitive(ctx->json, field->name);
        present[i] = item != NULL;

        if (item == NULL || cJSON_IsNull(item)) {
            continue;
        }

        errors = cJSON_GetArraySize(ctx->details);

        value = ngx_http_notifyhub_string_field(ctx, ctx->json, field->name,
                                                field->name, 0, 1,
                                                field->max_len);
        if (value == NULL) {
            continue;
        }

        if (field->check) {
            value = field->check(r, ctx, field->name, value);

            if (value == NULL
                && (ngx_uint_t) cJSON_GetArraySize(ctx->details) == errors)
            {
                return NGX_ERROR;
            }
        }

        values[i] = value;
    }

    return NGX_OK;
}


/* Checks an email address and returns it lower-cased. */
static const char *
ngx_http_notifyhub_check_email(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx, const char *name, const char *value)
{
    size_t   len;
    u_char  *lower;

    len = ngx_strlen(value);

    if (!nh_email_is_valid(value, len)) {
        ngx_http_notifyhub_invalid(ctx, name, "invalid_format");
        return NULL;
    }

    lower = ngx_pnalloc(r->pool, len + 1);
    if (lower == NULL) {
        return NULL;
    }

    /* A valid address is ASCII, so this lower-cases all of it. */
    ngx_strlow(lower, (u_char *) value, len);
    lower[len] = '\0';

    return (const char *) lower;
}


static const char *
ngx_http_notifyhub_check_phone(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx, const char *name, const char *value)
{
    if (!nh_phone_is_e164(value, ngx_strlen(value))) {
        ngx_http_notifyhub_invalid(ctx, name, "invalid_format");
        return NULL;
    }

    return value;
}


static const char *
ngx_http_notifyhub_check_timezone(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx, const char *name, const char *value)
{
    if (!ngx_http_notifyhub_tz_known(value)) {
        ngx_http_notifyhub_invalid(ctx, name, "invalid_value");
        return NULL;
    }

    return value;
}


/* Checks a BCP 47 language tag and returns it in the canonical case. */
static const char *
ngx_http_notifyhub_check_locale(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx, const char *name, const char *value)
{
    size_t   len;
    u_char  *tag;

    len = ngx_strlen(value);

    tag = ngx_pnalloc(r->pool, len + 1);
    if (tag == NULL) {
        return NULL;
    }

    ngx_memcpy(tag, value, len + 1);

    if (!ngx_http_notifyhub_locale_normalize(tag, len)) {
        ngx_http_notifyhub_invalid(ctx, name, "invalid_format");
        return NULL;
    }

    return (const char *) tag;
}


/*
 * Checks a BCP 47 language tag of the form
 * language[-script][-region]*(-variant), without extended language
 * subtags, extensions and private use. Rewrites it in place in the case
 * that BCP 47 recommends: language and variants in lower case, script in
 * title case, region in upper case. Returns 1 if it is valid, else 0.
 */
static ngx_uint_t
ngx_http_notifyhub_locale_normalize(u_char *tag, size_t len)
{
    u_char      *p, *last, *start;
    size_t       n, i;
    ngx_uint_t   stage, alpha, digit;

    if (len == 0 || len > NGX_HTTP_NOTIFYHUB_LOCALE_MAX) {
        return 0;
    }

    p = tag;
    last = tag + len;

    /* 0: language, 1: script, 2: region, 3: variants. */
    stage = 0;

    while (p <= last) {
        start = p;

        while (p < last && *p != '-') {
            p++;
        }

        n = p - start;

        if (n == 0) {
            return 0;
        }

        alpha = 0;
        digit = 0;

        for (i = 0; i < n; i++) {
            if ((start[i] >= 'a' && start[i] <= 'z')
                || (start[i] >= 'A' && start[i] <= 'Z'))
            {
                alpha++;

            } else if (start[i] >= '0' && start[i] <= '9') {
                digit++;

            } else {
                return 0;
            }
        }

        ngx_strlow(start, start, n);

        if (stage == 0) {
            if (alpha != n || n == 4 || n > 8 || n < 2) {
                return 0;
            }

            stage = 1;

        } else if (stage == 1 && n == 4 && alpha == 4) {
            start[0] = ngx_toupper(start[0]);
            stage = 2;

        } else if (stage <= 2 && n == 2 && alpha == 2) {
            start[0] = ngx_toupper(start[0]);
            start[1] = ngx_toupper(start[1]);
            stage = 3;

        } else if (stage <= 2 && n == 3 && digit == 3) {
            stage = 3;

        } else if ((n >= 5 && n <= 8)
                   || (n == 4 && start[0] >= '0' && start[0] <= '9'))
        {
            stage = 3;

        } else {
            return 0;
        }

        p++;
    }

    return 1;
}


/*
 * Reads "deviceTokens", an optional array of at most 20 objects {token,
 * platform} with distinct tokens, and returns it as the JSON text that
 * nh_recipient_create takes, each device with a new id. Invalid entries
 * are recorded. Returns NULL only when memory runs out.
 */
static char *
ngx_http_notifyhub_device_tokens(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx)
{
    char         id[NH_UUID_STR_LEN + 1], *text;
    u_char       path[sizeof("deviceTokens[].platform") + NGX_INT_T_LEN];
    u_char       uuid[NH_UUID_LEN];
    cJSON       *array, *item, *devices, *device, *other;
    ngx_int_t    platform, i, j;
    const char  *token, *other_token;

    array = cJSON_GetObjectItemCaseSensitive(ctx->json, "deviceTokens");

    if (array == NULL || cJSON_IsNull(array)) {
        return "[]";
    }

    if (!cJSON_IsArray(array)) {
        ngx_http_notifyhub_invalid(ctx, "deviceTokens", "invalid_type");
        return "[]";
    }

    if (cJSON_GetArraySize(array) > NGX_HTTP_NOTIFYHUB_DEVICE_TOKENS_MAX) {
        ngx_http_notifyhub_invalid(ctx, "deviceTokens", "too_many");
        return "[]";
    }

    devices = cJSON_CreateArray();
    if (devices == NULL) {
        return NULL;
    }

    i = 0;

    cJSON_ArrayForEach(item, array) {

        if (!cJSON_IsObject(item)) {
            ngx_sprintf(path, "deviceTokens[%i]%Z", i);
            ngx_http_notifyhub_invalid(ctx, (char *) path, "invalid_type");
            i++;
            continue;
        }

        ngx_sprintf(path, "deviceTokens[%i].token%Z", i);
        token = ngx_http_notifyhub_device_token(ctx, item, (char *) path);

        /* A token repeated in one request would be stored once. */
        j = 0;

        cJSON_ArrayForEach(other, array) {
            if (token == NULL || j == i) {
                break;
            }

            other_token = cJSON_GetStringValue(
                              cJSON_GetObjectItemCaseSensitive(other,
                                                               "token"));

            if (other_token && ngx_strcmp(token, other_token) == 0) {
                ngx_http_notifyhub_invalid(ctx, (char *) path, "duplicate");
                token = NULL;
            }

            j++;
        }

        ngx_sprintf(path, "deviceTokens[%i].platform%Z", i);
        platform = ngx_http_notifyhub_enum_field(ctx, item, "platform",
                                          (char *) path,
                                          ngx_http_notifyhub_platforms, -1);

        i++;

        if (token == NULL || platform < 0 || ctx->details) {
            continue;
        }

        if (nh_uuid7_generate(uuid) != 0) {
            cJSON_Delete(devices);
            return NULL;
        }

        nh_uuid_format(uuid, id);

        device = cJSON_CreateObject();
        if (device == NULL
            || cJSON_AddStringToObject(device, "id", id) == NULL
            || cJSON_AddStringToObject(device, "token", token) == NULL
            || cJSON_AddStringToObject(device, "platform",
                                ngx_http_notifyhub_platforms[platform])
               == NULL)
        {
            cJSON_Delete(device);
            cJSON_Delete(devices);
            return NULL;
        }

        cJSON_AddItemToArray(devices, device);
    }

    text = ngx_http_notifyhub_pool_json(r, devices);
    cJSON_Delete(devices);

    return text;
}


/*
 * Reads "token" of object: 1 to 4096 characters of letters, digits and
 * "-_:.", the characters of FCM registration tokens and of hex APNs
 * tokens. Returns it, or NULL when it is invalid (recorded at path).
 */
static const char *
ngx_http_notifyhub_device_token(ngx_http_notifyhub_ctx_t *ctx, cJSON *object,
    const char *path)
{
    u_char       c;
    const char  *token, *p;

    token = ngx_http_notifyhub_string_field(ctx, object, "token", path, 1, 1,
                                      NGX_HTTP_NOTIFYHUB_RECIPIENT_TOKEN_MAX);
    if (token == NULL) {
        return NULL;
    }

    for (p = token; *p; p++) {
        c = (u_char) *p;

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == ':'
              || c == '.'))
        {
            ngx_http_notifyhub_invalid(ctx, path, "invalid_format");
            return NULL;
        }
    }

    return token;
}


void
ngx_http_notifyhub_recipient_list(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx)
{
    ngx_http_notifyhub_authenticate(r,
                                    NGX_HTTP_NOTIFYHUB_SCOPE_RECIPIENTS_READ,
                                    ngx_http_notifyhub_recipient_select);
}


/* Lists the tenant's recipients, newest first, with optional filters. */
static void
ngx_http_notifyhub_recipient_select(ngx_http_request_t *r,
    ngx_http_notifyhub_key_t *key)
{
    char                        tenant_id[NH_UUID_STR_LEN + 1];
    char                        limit[NGX_INT_T_LEN + 1];
    char                        after_usec[NGX_INT64_LEN + 1];
    char                        after_id[NH_UUID_STR_LEN + 1];
    ngx_int_t                   rc;
    const char                 *values[7];
    ngx_http_notifyhub_ctx_t   *ctx;
    ngx_http_notifyhub_page_t   page;

    ctx = ngx_http_get_module_ctx(r, ngx_http_notifyhub_module);

    if (ngx_http_notifyhub_page_args(r, ctx, "recipients", &page) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    values[4] = ngx_http_notifyhub_recipient_filter(r, ctx, "email");
    values[5] = ngx_http_notifyhub_recipient_filter(r, ctx, "phone");
    values[6] = ngx_http_notifyhub_recipient_filter(r, ctx, "externalId");

    if (ctx->details) {
        ngx_http_finalize_request(r, ngx_http_notifyhub_send_invalid(r, ctx));
        return;
    }

    nh_uuid_format(key->tenant_id, tenant_id);
    ngx_sprintf((u_char *) limit, "%ui%Z", page.limit);

    values[0] = tenant_id;
    values[1] = limit;
    values[2] = NULL;
    values[3] = NULL;

    if (page.has_cursor) {
        ngx_sprintf((u_char *) after_usec, "%L%Z", page.after_usec);
        nh_uuid_format(page.after_id, after_id);
        values[2] = after_usec;
        values[3] = after_id;
    }

    rc = ngx_http_notifyhub_pg_query(r,
             "SELECT status, body, next_usec, next_id "
             "FROM nh_recipient_list($1, $2, $3, $4, $5, $6, $7)",
             7, values, NULL, NULL,
             ngx_http_notifyhub_recipient_listed, NULL);

    if (rc != NGX_OK) {
        ngx_http_notifyhub_start_failed(r, rc);
    }
}


/*
 * Reads the list filter ?email=, ?phone= or ?externalId= with the checks
 * of the field, the email lower-cased. Returns NULL when it is absent or
 * invalid (recorded as "invalid_value").
 */
static const char *
ngx_http_notifyhub_recipient_filter(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx, const char *name)
{
    size_t      chars;
    u_char     *p, *text;
    ngx_int_t   rc;
    ngx_str_t   value;

    rc = ngx_http_notifyhub_query_arg(r, name, &value);
    if (rc != NGX_OK) {
        return NULL;
    }

    text = ngx_pnalloc(r->pool, value.len + 1);
    if (text == NULL) {
        ngx_http_notifyhub_invalid(ctx, name, "invalid_value");
        return NULL;
    }

    ngx_memcpy(text, value.data, value.len);
    text[value.len] = '\0';

    if (value.len == 0
        || ngx_strlen(text) != value.len
        || !nh_utf8_is_valid((char *) text, value.len))
    {
        ngx_http_notifyhub_invalid(ctx, name, "invalid_value");
        return NULL;
    }

    if (ngx_strcmp(name, "email") == 0) {
        if (value.len > NH_EMAIL_MAX
            || !nh_email_is_valid((char *) text, value.len))
        {
            ngx_http_notifyhub_invalid(ctx, name, "invalid_value");
            return NULL;
        }

        ngx_strlow(text, text, value.len);
        return (const char *) text;
    }

    if (ngx_strcmp(name, "phone") == 0) {
        if (!nh_phone_is_e164((char *) text, value.len)) {
            ngx_http_notifyhub_invalid(ctx, name, "invalid_value");
            return NULL;
        }

        return (const char *) text;
    }

    chars = 0;
    for (p = text; *p; p++) {
        if ((*p & 0xc0) != 0x80) {
            chars++;
        }
    }

    if (chars > NGX_HTTP_NOTIFYHUB_EXTERNAL_ID_MAX) {
        ngx_http_notifyhub_invalid(ctx, name, "invalid_value");
        return NULL;
    }

    return (const char *) text;
}


static void
ngx_http_notifyhub_recipient_listed(ngx_http_request_t *r, PGresult *res,
    void *data)
{
    ngx_http_notifyhub_send_page(r, res, "recipients", "nh_recipient_list");
}


void
ngx_http_notifyhub_recipient_get(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx)
{
    ngx_http_notifyhub_authenticate(r,
                                    NGX_HTTP_NOTIFYHUB_SCOPE_RECIPIENTS_READ,
                                    ngx_http_notifyhub_recipient_fetch);
}


static void
ngx_http_notifyhub_recipient_fetch(ngx_http_request_t *r,
    ngx_http_notifyhub_key_t *key)
{
    (void) ngx_http_notifyhub_recipient_query(r, key,
               "SELECT status, body FROM nh_recipient_get($1, $2)",
               "nh_recipient_get");
}


void
ngx_http_notifyhub_recipient_update(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx)
{
    ngx_http_notifyhub_authenticate(r,
                                    NGX_HTTP_NOTIFYHUB_SCOPE_RECIPIENTS_WRITE,
                                    ngx_http_notifyhub_recipient_change);
}


/*
 * Changes the fields that the body contains; null clears a field. The
 * changes go to nh_recipient_update as an object keyed by column.
 */
static void
ngx_http_notifyhub_recipient_change(ngx_http_request_t *r,
    ngx_http_notifyhub_key_t *key)
{
    char                       id[NH_UUID_STR_LEN + 1];
    char                       tenant_id[NH_UUID_STR_LEN + 1];
    char                      *text;
    cJSON                     *changes;
    ngx_int_t                  rc;
    ngx_uint_t                 i, n;
    ngx_uint_t                 present[NGX_HTTP_NOTIFYHUB_RECIPIENT_NFIELDS];
    const char                *fields[NGX_HTTP_NOTIFYHUB_RECIPIENT_NFIELDS];
    const char                *values[3];
    ngx_http_notifyhub_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_notifyhub_module);

    if (ngx_http_notifyhub_path_uuid(r, ctx, 0, id, "recipient not found")
        != NGX_OK)
    {
        return;
    }

    if (ngx_http_notifyhub_recipient_fields(r, ctx, fields, present)
        != NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    /* Devices have their own routes once the recipient exists. */
    if (cJSON_GetObjectItemCaseSensitive(ctx->json, "deviceTokens")) {
        ngx_http_notifyhub_invalid(ctx, "deviceTokens", "not_allowed");
    }

    n = 0;
    for (i = 0; i < NGX_HTTP_NOTIFYHUB_RECIPIENT_NFIELDS; i++) {
        n += present[i];
    }

    if (n == 0 && ctx->details == NULL) {
        ngx_http_notifyhub_invalid(ctx, "body", "required");
    }

    if (ctx->details) {
        ngx_http_finalize_request(r, ngx_http_notifyhub_send_invalid(r, ctx));
        return;
    }

    changes = cJSON_CreateObject();
    if (changes == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    for (i = 0; i < NGX_HTTP_NOTIFYHUB_RECIPIENT_NFIELDS; i++) {
        if (!present[i]) {
            continue;
        }

        if (fields[i]) {
            cJSON_AddStringToObject(changes,
                    ngx_http_notifyhub_recipient_fields_list[i].column,
                    fields[i]);

        } else {
            cJSON_AddNullToObject(changes,
                    ngx_http_notifyhub_recipient_fields_list[i].column);
        }
    }

    text = ngx_http_notifyhub_pool_json(r, changes);
    cJSON_Delete(changes);

    if (text == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    nh_uuid_format(key->tenant_id, tenant_id);

    values[0] = tenant_id;
    values[1] = id;
    values[2] = text;

    rc = ngx_http_notifyhub_pg_query(r,
             "SELECT status, body FROM nh_recipient_update($1, $2, $3)",
             3, values, NULL, NULL,
             ngx_http_notifyhub_reply_done, (void *) "nh_recipient_update");

    if (rc != NGX_OK) {
        ngx_http_notifyhub_start_failed(r, rc);
    }
}


void
ngx_http_notifyhub_recipient_delete(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx)
{
    ngx_http_notifyhub_authenticate(r,
                                    NGX_HTTP_NOTIFYHUB_SCOPE_RECIPIENTS_WRITE,
                                    ngx_http_notifyhub_recipient_remove);
}


static void
ngx_http_notifyhub_recipient_remove(ngx_http_request_t *r,
    ngx_http_notifyhub_key_t *key)
{
    (void) ngx_http_notifyhub_recipient_query(r, key,
               "SELECT status, body FROM nh_recipient_delete($1, $2)",
               "nh_recipient_delete");
}


void
ngx_http_notifyhub_preferences_get(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx)
{
    ngx_http_notifyhub_authenticate(r,
                                    NGX_HTTP_NOTIFYHUB_SCOPE_RECIPIENTS_READ,
                                    ngx_http_notifyhub_preferences_fetch);
}


static void
ngx_http_notifyhub_preferences_fetch(ngx_http_request_t *r,
    ngx_http_notifyhub_key_t *key)
{
    (void) ngx_http_notifyhub_recipient_query(r, key,
               "SELECT status, body FROM nh_preferences_get($1, $2)",
               "nh_preferences_get");
}


void
ngx_http_notifyhub_preferences_put(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx)
{
    ngx_http_notifyhub_authenticate(r,
                                    NGX_HTTP_NOTIFYHUB_SCOPE_RECIPIENTS_WRITE,
                                    ngx_http_notifyhub_preferences_replace);
}


/*
 * Replaces the preferences with "channels" and "quietHours" of the body.
 * An absent channel is on, and absent or null quietHours means none.
 */
static void
ngx_http_notifyhub_preferences_replace(ngx_http_request_t *r,
    ngx_http_notifyhub_key_t *key)
{
    char                       id[NH_UUID_STR_LEN + 1];
    char                       tenant_id[NH_UUID_STR_LEN + 1];
    ngx_int_t                  rc;
    const char                *values[8];
    ngx_http_notifyhub_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_notifyhub_module);

    if (ngx_http_notifyhub_path_uuid(r, ctx, 0, id, "recipient not found")
        != NGX_OK)
    {
        return;
    }

    ngx_http_notifyhub_preferences_channels(r, ctx, &values[2]);
    ngx_http_notifyhub_preferences_quiet_hours(r, ctx, &values[5]);

    if (ctx->details) {
        ngx_http_finalize_request(r, ngx_http_notifyhub_send_invalid(r, ctx));
        return;
    }

    nh_uuid_format(key->tenant_id, tenant_id);

    values[0] = tenant_id;
    values[1] = id;

    rc = ngx_http_notifyhub_pg_query(r,
             "SELECT status, body FROM nh_preferences_put($1, $2, $3, $4, "
             "$5, $6, $7, $8)",
             8, values, NULL, NULL,
             ngx_http_notifyhub_reply_done, (void *) "nh_preferences_put");

    if (rc != NGX_OK) {
        ngx_http_notifyhub_start_failed(r, rc);
    }
}


/*
 * Reads "channels" into enabled[3] ("true" or "false" for EMAIL, SMS and
 * PUSH). Channel names match in any case. An unknown name, a repeated
 * channel or a value that is not a boolean is recorded under
 * "channels.<name as sent>".
 */
static void
ngx_http_notifyhub_preferences_channels(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx, const char **enabled)
{
    u_char      *path;
    size_t       len;
    cJSON       *channels, *item;
    ngx_int_t    i, found;
    ngx_uint_t   seen[3];

    for (i = 0; i < 3; i++) {
        enabled[i] = "true";
        seen[i] = 0;
    }

    channels = ngx_http_notifyhub_object_field(ctx, ctx->json, "channels",
                                               "channels", 0);
    if (channels == NULL) {
        return;
    }

    cJSON_ArrayForEach(item, channels) {

        len = ngx_strlen(item->string);

        path = ngx_pnalloc(r->pool, sizeof("channels.") + len);
        if (path == NULL) {
            ngx_http_notifyhub_invalid(ctx, "channels", "invalid_value");
            return;
        }

        ngx_sprintf(path, "channels.%s%Z", item->string);

        found = -1;

        for (i = 0; ngx_http_notifyhub_preference_channels[i]; i++) {
            if (len == ngx_strlen(ngx_http_notifyhub_preference_channels[i])
                && ngx_strncasecmp((u_char *) item->string, (u_char *)
                                   ngx_http_notifyhub_preference_channels[i],
                                   len)
                   == 0)
            {
                found = i;
                break;
            }
        }

        if (found < 0) {
            ngx_http_notifyhub_invalid(ctx, (char *) path, "invalid_value");
            continue;
        }

        if (seen[found]) {
            ngx_http_notifyhub_invalid(ctx, (char *) path, "duplicate");
            continue;
        }

        seen[found] = 1;

        if (!cJSON_IsBool(item)) {
            ngx_http_notifyhub_invalid(ctx, (char *) path, "invalid_type");
            continue;
        }

        enabled[found] = cJSON_IsTrue(item) ? "true" : "false";
    }
}


/*
 * Reads "quietHours" into quiet[3]: start and end as "HH:MM" and the time
 * zone, or all NULL when there are none.
 */
static void
ngx_http_notifyhub_preferences_quiet_hours(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx, const char **quiet)
{
    cJSON       *object;
    const char  *timezone;

    quiet[0] = NULL;
    quiet[1] = NULL;
    quiet[2] = NULL;

    object = ngx_http_notifyhub_object_field(ctx, ctx->json, "quietHours",
                                             "quietHours", 0);
    if (object == NULL) {
        return;
    }

    quiet[0] = ngx_http_notifyhub_time_of_day(ctx, object, "start",
                                              "quietHours.start");
    quiet[1] = ngx_http_notifyhub_time_of_day(ctx, object, "end",
                                              "quietHours.end");

    if (quiet[0] && quiet[1] && ngx_strcmp(quiet[0], quiet[1]) == 0) {
        ngx_http_notifyhub_invalid(ctx, "quietHours.end", "same_as_start");
    }

    timezone = ngx_http_notifyhub_string_field(ctx, object, "timezone",
                                       "quietHours.timezone", 0, 1,
                                       NGX_HTTP_NOTIFYHUB_TZ_NAME_MAX);

    if (timezone && !ngx_http_notifyhub_tz_known(timezone)) {
        ngx_http_notifyhub_invalid(ctx, "quietHours.timezone",
                                   "invalid_value");
        timezone = NULL;
    }

    quiet[2] = timezone;
}


/* Reads a required time of day "HH:MM", 00:00 to 23:59. */
static const char *
ngx_http_notifyhub_time_of_day(ngx_http_notifyhub_ctx_t *ctx, cJSON *object,
    const char *name, const char *path)
{
    const char  *s;

    s = ngx_http_notifyhub_string_field(ctx, object, name, path, 1, 1, 5);
    if (s == NULL) {
        return NULL;
    }

    if (ngx_strlen(s) != 5
        || s[0] < '0' || s[0] > '2' || s[1] < '0' || s[1] > '9'
        || (s[0] == '2' && s[1] > '3')
        || s[2] != ':'
        || s[3] < '0' || s[3] > '5' || s[4] < '0' || s[4] > '9')
    {
        ngx_http_notifyhub_invalid(ctx, path, "invalid_format");
        return NULL;
    }

    return s;
}


void
ngx_http_notifyhub_preferences_delete(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx)
{
    ngx_http_notifyhub_authenticate(r,
                                    NGX_HTTP_NOTIFYHUB_SCOPE_RECIPIENTS_WRITE,
                                    ngx_http_notifyhub_preferences_reset);
}


static void
ngx_http_notifyhub_preferences_reset(ngx_http_request_t *r,
    ngx_http_notifyhub_key_t *key)
{
    (void) ngx_http_notifyhub_recipient_query(r, key,
               "SELECT status, body FROM nh_preferences_delete($1, $2)",
               "nh_preferences_delete");
}


void
ngx_http_notifyhub_device_list(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx)
{
    ngx_http_notifyhub_authenticate(r,
                                    NGX_HTTP_NOTIFYHUB_SCOPE_RECIPIENTS_READ,
                                    ngx_http_notifyhub_device_select);
}


/*
 * Lists a recipient's devices. The cursor scope names the recipient, so a
 * cursor of one recipient's devices is rejected for another's.
 */
static void
ngx_http_notifyhub_device_select(ngx_http_request_t *r,
    ngx_http_notifyhub_key_t *key)
{
    char                        id[NH_UUID_STR_LEN + 1];
    char                        tenant_id[NH_UUID_STR_LEN + 1];
    char                        limit[NGX_INT_T_LEN + 1];
    char                        after_usec[NGX_INT64_LEN + 1];
    char                        after_id[NH_UUID_STR_LEN + 1];
    u_char                     *scope;
    ngx_int_t                   rc;
    const char                 *values[5];
    ngx_http_notifyhub_ctx_t   *ctx;
    ngx_http_notifyhub_page_t   page;

    ctx = ngx_http_get_module_ctx(r, ngx_http_notifyhub_module);

    if (ngx_http_notifyhub_path_uuid(r, ctx, 0, id, "recipient not found")
        != NGX_OK)
    {
        return;
    }

    scope = ngx_pnalloc(r->pool, sizeof("devices:") + NH_UUID_STR_LEN);
    if (scope == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_sprintf(scope, "devices:%s%Z", id);

    if (ngx_http_notifyhub_page_args(r, ctx, (char *) scope, &page)
        != NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (ctx->details) {
        ngx_http_finalize_request(r, ngx_http_notifyhub_send_invalid(r, ctx));
        return;
    }

    nh_uuid_format(key->tenant_id, tenant_id);
    ngx_sprintf((u_char *) limit, "%ui%Z", page.limit);

    values[0] = tenant_id;
    values[1] = id;
    values[2] = limit;
    values[3] = NULL;
    values[4] = NULL;

    if (page.has_cursor) {
        ngx_sprintf((u_char *) after_usec, "%L%Z", page.after_usec);
        nh_uuid_format(page.after_id, after_id);
        values[3] = after_usec;
        values[4] = after_id;
    }

    rc = ngx_http_notifyhub_pg_query(r,
             "SELECT status, body, next_usec, next_id "
             "FROM nh_device_list($1, $2, $3, $4, $5)",
             5, values, NULL, NULL,
             ngx_http_notifyhub_device_listed, scope);

    if (rc != NGX_OK) {
        ngx_http_notifyhub_start_failed(r, rc);
    }
}


static void
ngx_http_notifyhub_device_listed(ngx_http_request_t *r, PGresult *res,
    void *data)
{
    ngx_http_notifyhub_send_page(r, res, data, "nh_device_list");
}


void
ngx_http_notifyhub_device_create(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx)
{
    ngx_http_notifyhub_authenticate(r,
                                    NGX_HTTP_NOTIFYHUB_SCOPE_RECIPIENTS_WRITE,
                                    ngx_http_notifyhub_device_insert);
}


/*
 * Registers {token, platform} for the recipient: 201 with a new device,
 * 200 with the device that already has the token.
 */
static void
ngx_http_notifyhub_device_insert(ngx_http_request_t *r,
    ngx_http_notifyhub_key_t *key)
{
    char                       id[NH_UUID_STR_LEN + 1];
    char                       device_id[NH_UUID_STR_LEN + 1];
    char                       tenant_id[NH_UUID_STR_LEN + 1];
    u_char                     uuid[NH_UUID_LEN];
    ngx_int_t                  rc, platform;
    const char                *values[5], *token;
    ngx_http_notifyhub_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_notifyhub_module);

    if (ngx_http_notifyhub_path_uuid(r, ctx, 0, id, "recipient not found")
        != NGX_OK)
    {
        return;
    }

    token = ngx_http_notifyhub_device_token(ctx, ctx->json, "token");
    platform = ngx_http_notifyhub_enum_field(ctx, ctx->json, "platform",
                                             "platform",
                                             ngx_http_notifyhub_platforms, -1);

    if (ctx->details) {
        ngx_http_finalize_request(r, ngx_http_notifyhub_send_invalid(r, ctx));
        return;
    }

    if (nh_uuid7_generate(uuid) != 0) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    nh_uuid_format(uuid, device_id);
    nh_uuid_format(key->tenant_id, tenant_id);

    values[0] = tenant_id;
    values[1] = id;
    values[2] = device_id;
    values[3] = token;
    values[4] = ngx_http_notifyhub_platforms[platform];

    rc = ngx_http_notifyhub_pg_query(r,
             "SELECT status, body FROM nh_device_add($1, $2, $3, $4, $5)",
             5, values, NULL, NULL,
             ngx_http_notifyhub_reply_done, (void *) "nh_device_add");

    if (rc != NGX_OK) {
        ngx_http_notifyhub_start_failed(r, rc);
    }
}


void
ngx_http_notifyhub_device_delete(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx)
{
    ngx_http_notifyhub_authenticate(r,
                                    NGX_HTTP_NOTIFYHUB_SCOPE_RECIPIENTS_WRITE,
                                    ngx_http_notifyhub_device_remove);
}


static void
ngx_http_notifyhub_device_remove(ngx_http_request_t *r,
    ngx_http_notifyhub_key_t *key)
{
    char                       id[NH_UUID_STR_LEN + 1];
    char                       device_id[NH_UUID_STR_LEN + 1];
    char                       tenant_id[NH_UUID_STR_LEN + 1];
    ngx_int_t                  rc;
    const char                *values[3];
    ngx_http_notifyhub_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_notifyhub_module);

    if (ngx_http_notifyhub_path_uuid(r, ctx, 0, id, "recipient not found")
        != NGX_OK
        || ngx_http_notifyhub_path_uuid(r, ctx, 1, device_id,
                                        "device not found")
           != NGX_OK)
    {
        return;
    }

    nh_uuid_format(key->tenant_id, tenant_id);

    values[0] = tenant_id;
    values[1] = id;
    values[2] = device_id;

    rc = ngx_http_notifyhub_pg_query(r,
             "SELECT status, body FROM nh_device_delete($1, $2, $3)",
             3, values, NULL, NULL,
             ngx_http_notifyhub_reply_done, (void *) "nh_device_delete");

    if (rc != NGX_OK) {
        ngx_http_notifyhub_start_failed(r, rc);
    }
}


/*
 * Runs sql with the tenant id and the recipient id of the path as $1 and
 * $2, and sends its (status, body) row. what names the function in the
 * log. An id that is not a UUID gets 404. Returns NGX_OK when the query
 * has started, else NGX_DONE after replying. Either way the request is
 * finalized, now or when the query ends.
 */
static ngx_int_t
ngx_http_notifyhub_recipient_query(ngx_http_request_t *r,
    ngx_http_notifyhub_key_t *key, const char *sql, const char *what)
{
    char                       id[NH_UUID_STR_LEN + 1];
    char                       tenant_id[NH_UUID_STR_LEN + 1];
    ngx_int_t                  rc;
    const char                *values[2];
    ngx_http_notifyhub_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_notifyhub_module);

    if (ngx_http_notifyhub_path_uuid(r, ctx, 0, id, "recipient not found")
        != NGX_OK)
    {
        return NGX_DONE;
    }

    nh_uuid_format(key->tenant_id, tenant_id);

    values[0] = tenant_id;
    values[1] = id;

    rc = ngx_http_notifyhub_pg_query(r, sql, 2, values, NULL, NULL,
                                     ngx_http_notifyhub_reply_done,
                                     (void *) what);

    if (rc != NGX_OK) {
        ngx_http_notifyhub_start_failed(r, rc);
        return NGX_DONE;
    }

    return NGX_OK;
}


/* Prints json compactly into the request pool. */
static char *
ngx_http_notifyhub_pool_json(ngx_http_request_t *r, cJSON *json)
{
    char    *text;
    size_t   len;
    u_char  *copy;

    text = cJSON_PrintUnformatted(json);
    if (text == NULL) {
        return NULL;
    }

    len = ngx_strlen(text);

    copy = ngx_pnalloc(r->pool, len + 1);
    if (copy != NULL) {
        ngx_memcpy(copy, text, len + 1);
    }

    cJSON_free(text);

    return (char *) copy;
}


/*
 * Loads the IANA time zone names from tzdata.zi: the name of each zone
 * ("Z name ...") and of each link ("L target name"), keeping those with a
 * file under /usr/share/zoneinfo. Runs once in each worker process, so
 * requests never read the file system. When the file cannot be read, the
 * error is logged and every timezone is rejected until nginx restarts
 * with the file in place.
 */
ngx_int_t
ngx_http_notifyhub_recipients_init_process(ngx_cycle_t *cycle)
{
    u_char           *data, *p, *last, *line, *field, *name;
    size_t            size;
    ssize_t           n;
    ngx_fd_t          fd;
    ngx_uint_t        nfield;
    ngx_array_t       names;
    ngx_file_info_t   fi;

    ngx_http_notifyhub_tz_names = NULL;
    ngx_http_notifyhub_tz_count = 0;

    fd = ngx_open_file(NGX_HTTP_NOTIFYHUB_TZDATA_ZI, NGX_FILE_RDONLY,
                       NGX_FILE_OPEN, 0);
    if (fd == NGX_INVALID_FILE) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, ngx_errno,
                      "notifyhub: opening \"%s\" failed, so every "
                      "recipient timezone is rejected; install tzdata",
                      NGX_HTTP_NOTIFYHUB_TZDATA_ZI);
        return NGX_OK;
    }

    data = NULL;

    if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, ngx_errno,
                      "notifyhub: stat of \"%s\" failed",
                      NGX_HTTP_NOTIFYHUB_TZDATA_ZI);
        goto failed;
    }

    size = (size_t) ngx_file_size(&fi);

    if (size == 0 || size > NGX_HTTP_NOTIFYHUB_TZDATA_ZI_MAX) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "notifyhub: \"%s\" has %uz bytes, expected 1 to %d",
                      NGX_HTTP_NOTIFYHUB_TZDATA_ZI, size,
                      NGX_HTTP_NOTIFYHUB_TZDATA_ZI_MAX);
        goto failed;
    }

    data = ngx_alloc(size, cycle->log);
    if (data == NULL) {
        goto failed;
    }

    n = ngx_read_fd(fd, data, size);
    if (n != (ssize_t) size) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, ngx_errno,
                      "notifyhub: reading \"%s\" failed",
                      NGX_HTTP_NOTIFYHUB_TZDATA_ZI);
        goto failed;
    }

    if (ngx_array_init(&names, cycle->pool, 1024, sizeof(char *)) != NGX_OK) {
        goto failed;
    }

    p = data;
    last = data + size;

    while (p < last) {
        line = p;

        while (p < last && *p != '\n') {
            p++;
        }

        /* Zone lines start with "Z ", link lines with "L ". */
        if (p - line > 2 && (line[0] == 'Z' || line[0] == 'L')
            && line[1] == ' ')
        {
            nfield = 0;
            field = line;

            while (field < p) {
                while (field < p && *field == ' ') {
                    field++;
                }

                name = field;

                while (field < p && *field != ' ') {
                    field++;
                }

                if (field > name) {
                    nfield++;
                }

                /* The name is field 2 of a zone and field 3 of a link. */
                if ((line[0] == 'Z' && nfield == 2)
                    || (line[0] == 'L' && nfield == 3))
                {
                    if (ngx_http_notifyhub_tz_add(cycle, &names, name,
                                                  field - name)
                        != NGX_OK)
                    {
                        goto failed;
                    }

                    break;
                }
            }
        }

        p++;
    }

    ngx_sort(names.elts, names.nelts, sizeof(char *),
             ngx_http_notifyhub_tz_compare);

    ngx_http_notifyhub_tz_names = names.elts;
    ngx_http_notifyhub_tz_count = names.nelts;

    ngx_free(data);
    (void) ngx_close_file(fd);

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, cycle->log, 0,
                   "notifyhub: %ui time zone names loaded",
                   ngx_http_notifyhub_tz_count);

    return NGX_OK;

failed:

    if (data) {
        ngx_free(data);
    }

    (void) ngx_close_file(fd);

    ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                  "notifyhub: no time zone names loaded, so every "
                  "recipient timezone is rejected");

    return NGX_OK;
}


/*
 * Adds a name of len bytes to names, in the cycle pool, when its syntax is
 * valid and a file for it exists.
 */
static ngx_int_t
ngx_http_notifyhub_tz_add(ngx_cycle_t *cycle, ngx_array_t *names,
    u_char *name, size_t len)
{
    char             **slot;
    u_char            *copy, path[sizeof(NGX_HTTP_NOTIFYHUB_ZONEINFO_DIR "/")
                                  + NGX_HTTP_NOTIFYHUB_TZ_NAME_MAX];
    ngx_file_info_t    fi;

    if (!ngx_http_notifyhub_tz_name_is_valid(name, len)) {
        return NGX_OK;
    }

    ngx_sprintf(path, NGX_HTTP_NOTIFYHUB_ZONEINFO_DIR "/%*s%Z", len, name);

    if (ngx_file_info(path, &fi) == NGX_FILE_ERROR || !ngx_is_file(&fi)) {
        return NGX_OK;
    }

    copy = ngx_pnalloc(cycle->pool, len + 1);
    if (copy == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(copy, name, len);
    copy[len] = '\0';

    slot = ngx_array_push(names);
    if (slot == NULL) {
        return NGX_ERROR;
    }

    *slot = (char *) copy;

    return NGX_OK;
}


static ngx_int_t
ngx_http_notifyhub_tz_compare(const void *one, const void *two)
{
    return ngx_strcmp(*(char **) one, *(char **) two);
}


/*
 * Checks the syntax of a zone name: 1 to 64 characters of letters, digits,
 * "_", "+" and "-" in "/"-separated parts, none of them empty.
 */
static ngx_uint_t
ngx_http_notifyhub_tz_name_is_valid(const u_char *name, size_t len)
{
    size_t  i;

    if (len == 0 || len > NGX_HTTP_NOTIFYHUB_TZ_NAME_MAX
        || name[0] == '/' || name[len - 1] == '/')
    {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (name[i] == '/') {
            if (name[i + 1] == '/') {
                return 0;
            }
            continue;
        }

        if (!((name[i] >= 'a' && name[i] <= 'z')
              || (name[i] >= 'A' && name[i] <= 'Z')
              || (name[i] >= '0' && name[i] <= '9')
              || name[i] == '_' || name[i] == '+' || name[i] == '-'))
        {
            return 0;
        }
    }

    return 1;
}


/*
 * Returns 1 when name is an IANA time zone name that this host has, as
 * loaded by ngx_http_notifyhub_recipients_init_process(), else 0. Names
 * are case-sensitive, as the files are.
 */
static ngx_uint_t
ngx_http_notifyhub_tz_known(const char *name)
{
    ngx_int_t   cmp;
    ngx_uint_t  low, high, mid;

    if (!ngx_http_notifyhub_tz_name_is_valid((const u_char *) name,
                                             ngx_strlen(name)))
    {
        return 0;
    }

    low = 0;
    high = ngx_http_notifyhub_tz_count;

    while (low < high) {
        mid = low + (high - low) / 2;
        cmp = ngx_strcmp(name, ngx_http_notifyhub_tz_names[mid]);

        if (cmp == 0) {
            return 1;
        }

        if (cmp < 0) {
            high = mid;

        } else {
            low = mid + 1;
        }
    }

    return 0;
}
