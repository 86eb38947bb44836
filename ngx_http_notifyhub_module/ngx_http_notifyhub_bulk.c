
/*
 * POST /api/notifications/bulk: checks each item with the rules of a
 * single send, renders the items that name a template (one query fetches
 * every template of the batch), stores the valid items with one SQL call,
 * then produces the stored ones to Kafka without waiting for delivery
 * reports.
 */


#include "ngx_http_notifyhub_module.h"
#include "nh_json.h"
#include "nh_time.h"


/*
 * The maximum number of items that the module checks one by one. A larger
 * request only has its count compared with the tenant's plan, so a 16 MiB
 * body of tiny items cannot hold up the event loop.
 */
#define NGX_HTTP_NOTIFYHUB_BULK_CHECK_MAX  10000
/* The reply's text before the first result, with room for both counts. */
#define NGX_HTTP_NOTIFYHUB_BULK_HEAD_MAX   (64 + 2 * NGX_INT_T_LEN)


typedef enum {
    NGX_HTTP_NOTIFYHUB_ITEM_REJECTED = 0,   /* result is the error */
    NGX_HTTP_NOTIFYHUB_ITEM_VALID,          /* sent to the database */
    NGX_HTTP_NOTIFYHUB_ITEM_STORED,         /* result is the notification */
    NGX_HTTP_NOTIFYHUB_ITEM_REPLAYED        /* result is the first reply */
} ngx_http_notifyhub_item_state_e;


typedef struct {
    char                             id[NH_UUID_STR_LEN + 1];
    ngx_http_notifyhub_send_t        send;
    cJSON                           *json;        /* the request's item */
    ngx_http_notifyhub_item_state_e  state;
    ngx_uint_t                       scheduled;
    /* A replayed item's first status: 202, or 422 for a reused key. */
    ngx_uint_t                       status;
    /* The notification object, or the error object, as JSON text. */
    ngx_str_t                        result;
} ngx_http_notifyhub_bulk_item_t;


typedef struct {
    u_char                           id[NH_UUID_LEN];
    cJSON                           *json;        /* as nh_template_get */
} ngx_http_notifyhub_bulk_template_t;


/* A recipient's row of nh_recipient_addresses, found by its id. */
typedef struct {
    u_char                           id[NH_UUID_LEN];
    int                              row;
} ngx_http_notifyhub_bulk_recipient_t;


typedef struct {
    char                             tenant_id[NH_UUID_STR_LEN + 1];
    ngx_uint_t                       nitems;
    /* Set when nitems is over NGX_HTTP_NOTIFYHUB_BULK_CHECK_MAX. */
    ngx_uint_t                       unchecked;
    ngx_uint_t                       ntemplates;
    ngx_uint_t                       nrecipients;
    ngx_uint_t                       recipients_done;
    ngx_http_notifyhub_bulk_item_t  *items;
    ngx_http_notifyhub_bulk_template_t  *templates;
} ngx_http_notifyhub_bulk_t;


static void ngx_http_notifyhub_bulk_accept(ngx_http_request_t *r,
    ngx_http_notifyhub_key_t *key);
static ngx_int_t ngx_http_notifyhub_bulk_check_list(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx, cJSON **list);
static ngx_int_t ngx_http_notifyhub_bulk_check_item(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx, ngx_http_notifyhub_bulk_t *b,
    ngx_uint_t index, cJSON *item);
static ngx_int_t ngx_http_notifyhub_bulk_reject(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx, ngx_http_notifyhub_bulk_item_t *bi,
    const char *code, const char *message);
static void ngx_http_notifyhub_bulk_next(ngx_http_request_t *r,
    ngx_http_notifyhub_bulk_t *b);
static u_char *ngx_http_notifyhub_bulk_ids(ngx_http_request_t *r,
    ngx_http_notifyhub_bulk_t *b, ngx_uint_t recipients);
static void ngx_http_notifyhub_bulk_recipients_fetched(ngx_http_request_t *r,
    PGresult *res, void *data);
static void ngx_http_notifyhub_bulk_fetch_templates(ngx_http_request_t *r,
    ngx_http_notifyhub_bulk_t *b);
static void ngx_http_notifyhub_bulk_templates_fetched(ngx_http_request_t *r,
    PGresult *res, void *data);
static ngx_int_t ngx_http_notifyhub_bulk_render(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx, ngx_http_notifyhub_bulk_t *b,
    ngx_http_notifyhub_bulk_item_t *bi);
static void ngx_http_notifyhub_bulk_store(ngx_http_request_t *r,
    ngx_http_notifyhub_bulk_t *b);
static ngx_int_t ngx_http_notifyhub_bulk_row(ngx_http_request_t *r,
    ngx_http_notifyhub_bulk_item_t *bi, ngx_uint_t index,
    const char *created, ngx_http_notifyhub_jbuf_t *items,
    ngx_http_notifyhub_jbuf_t *keyed);
static void ngx_http_notifyhub_bulk_stored(ngx_http_request_t *r,
    PGresult *res, void *data);
static ngx_int_t ngx_http_notifyhub_bulk_reply(ngx_http_request_t *r,
    ngx_http_notifyhub_bulk_t *b);
static int ngx_libc_cdecl ngx_http_notifyhub_bulk_template_cmp(
    const void *one, const void *two);
static int ngx_libc_cdecl ngx_http_notifyhub_bulk_recipient_cmp(
    const void *one, const void *two);
static void ngx_http_notifyhub_bulk_cleanup(void *data);


void
ngx_http_notifyhub_notification_bulk(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx)
{
    ngx_http_notifyhub_authenticate(r,
                                    NGX_HTTP_NOTIFYHUB_SCOPE_NOTIFICATIONS_WRITE,
                                    ngx_http_notifyhub_bulk_accept);
}


static void
ngx_http_notifyhub_bulk_accept(ngx_http_request_t *r,
    ngx_http_notifyhub_key_t *key)
{
    cJSON                      *list, *item;
    ngx_uint_t                  i;
    ngx_pool_cleanup_t         *cln;
    ngx_http_notifyhub_ctx_t   *ctx;
    ngx_http_notifyhub_bulk_t  *b;

    ctx = ngx_http_get_module_ctx(r, ngx_http_notifyhub_module);

    if (ngx_http_notifyhub_bulk_check_list(r, ctx, &list) != NGX_OK) {
        ngx_http_finalize_request(r, ngx_http_notifyhub_send_invalid(r, ctx));
        return;
    }

    b = ngx_pcalloc(r->pool, sizeof(ngx_http_notifyhub_bulk_t));
    if (b == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    cln->handler = ngx_http_notifyhub_bulk_cleanup;
    cln->data = b;

    nh_uuid_format(key->tenant_id, b->tenant_id);
    b->nitems = cJSON_GetArraySize(list);

    /* Check each item, or leave a request over the limit to the plan. */

    if (b->nitems > NGX_HTTP_NOTIFYHUB_BULK_CHECK_MAX) {
        b->unchecked = 1;
        ngx_http_notifyhub_bulk_store(r, b);
        return;
    }

    b->items = ngx_pcalloc(r->pool,
                           b->nitems * sizeof(ngx_http_notifyhub_bulk_item_t));
    if (b->items == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    i = 0;

    cJSON_ArrayForEach(item, list) {
        if (ngx_http_notifyhub_bulk_check_item(r, ctx, b, i, item) != NGX_OK)
        {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        i++;
    }

    ngx_http_notifyhub_bulk_next(r, b);
}


/*
 * Runs the next step before the insert: one query for the addresses of
 * the recipients that items name, one for their templates, then the
 * insert.
 */
static void
ngx_http_notifyhub_bulk_next(ngx_http_request_t *r,
    ngx_http_notifyhub_bulk_t *b)
{
    u_char      *ids;
    ngx_int_t    rc;
    const char  *values[2];

    if (b->nrecipients && !b->recipients_done) {
        ids = ngx_http_notifyhub_bulk_ids(r, b, 1);
        if (ids == NULL) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        values[0] = b->tenant_id;
        values[1] = (const char *) ids;

        rc = ngx_http_notifyhub_pg_query(r,
                 "SELECT id, email, phone, device_tokens "
                 "FROM nh_recipient_addresses($1, $2)",
                 2, values, NULL, NULL,
                 ngx_http_notifyhub_bulk_recipients_fetched, b);

        if (rc != NGX_OK) {
            ngx_http_notifyhub_start_failed(r, rc);
        }

        return;
    }

    if (b->ntemplates && b->templates == NULL) {
        ngx_http_notifyhub_bulk_fetch_templates(r, b);
        return;
    }

    ngx_http_notifyhub_bulk_store(r, b);
}


/*
 * Returns an array literal, "{id,id,...}", of the recipient ids or the
 * template ids that the valid items name, in which an id may repeat.
 */
static u_char *
ngx_http_notifyhub_bulk_ids(ngx_http_request_t *r,
    ngx_http_notifyhub_bulk_t *b, ngx_uint_t recipients)
{
    u_char                          *ids, *p;
    ngx_uint_t                       i, n;
    const char                      *id;
    ngx_http_notifyhub_bulk_item_t  *bi;

    n = recipients ? b->nrecipients : b->ntemplates;

    ids = ngx_pnalloc(r->pool, n * (NH_UUID_STR_LEN + 1) + 2);
    if (ids == NULL) {
        return NULL;
    }

    p = ids;
    *p++ = '{';

    for (i = 0; i < b->nitems; i++) {
        bi = &b->items[i];

        if (bi->state != NGX_HTTP_NOTIFYHUB_ITEM_VALID) {
            continue;
        }

        if (recipients) {
            id = bi->send.recipient ? bi->send.recipient_id : NULL;

        } else {
            id = bi->send.template_id[0] ? bi->send.template_id : NULL;
        }

        if (id == NULL) {
            continue;
        }

        if (p > ids + 1) {
            *p++ = ',';
        }

        p = ngx_cpymem(p, id, NH_UUID_STR_LEN);
    }

    *p++ = '}';
    *p = '\0';

    return ids;
}


/*
 * Resolves the address of each item that names a recipient, or rejects
 * the item as a single send with it would be rejected.
 */
static void
ngx_http_notifyhub_bulk_recipients_fetched(ngx_http_request_t *r,
    PGresult *res, void *data)
{
    ngx_http_notifyhub_bulk_t  *b = data;

    int                                   row, n;
    ngx_int_t                             rc;
    ngx_uint_t                            i;
    const char                           *message;
    ngx_http_notifyhub_ctx_t             *ctx;
    ngx_http_notifyhub_bulk_item_t       *bi;
    ngx_http_notifyhub_bulk_recipient_t  *found, key, *index;

    if (ngx_http_notifyhub_pg_rows(r, res, "nh_recipient_addresses")
        != NGX_OK)
    {
        return;
    }

    n = PQntuples(res);

    index = ngx_palloc(r->pool,
                       (n + 1) * sizeof(ngx_http_notifyhub_bulk_recipient_t));
    if (index == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    for (row = 0; row < n; row++) {
        index[row].row = row;

        if (nh_uuid_parse(PQgetvalue(res, row, 0), PQgetlength(res, row, 0),
                          index[row].id)
            != 0)
        {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }
    }

    ngx_qsort(index, n, sizeof(ngx_http_notifyhub_bulk_recipient_t),
              ngx_http_notifyhub_bulk_recipient_cmp);

    ctx = ngx_http_get_module_ctx(r, ngx_http_notifyhub_module);

    for (i = 0; i < b->nitems; i++) {
        bi = &b->items[i];

        if (bi->state != NGX_HTTP_NOTIFYHUB_ITEM_VALID || !bi->send.recipient)
        {
            continue;
        }

        if (nh_uuid_parse(bi->send.recipient_id, NH_UUID_STR_LEN, key.id)
            != 0)
        {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        found = bsearch(&key, index, n,
                        sizeof(ngx_http_notifyhub_bulk_recipient_t),
                        ngx_http_notifyhub_bulk_recipient_cmp);

        if (found == NULL) {
            rc = ngx_http_notifyhub_bulk_reject(r, ctx, bi, "not_found",
                                                "recipient not found");

        } else {
            rc = ngx_http_notifyhub_send_recipient(r, &bi->send, res,
                                                   found->row, &message);

            if (rc == NGX_DECLINED) {
                ngx_http_notifyhub_invalid(ctx, "recipientId", "no_address");
                rc = ngx_http_notifyhub_bulk_reject(r, ctx, bi,
                                                    "recipient_unreachable",
                                                    message);
            }
        }

        if (rc != NGX_OK) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }
    }

    b->recipients_done = 1;

    ngx_http_notifyhub_bulk_next(r, b);
}


/*
 * Checks the request as a whole: "notifications" must be a non-empty
 * array, and idempotency keys belong to the items. Returns NGX_OK with the
 * array in *list, or NGX_DECLINED with the failures in ctx->details.
 */
static ngx_int_t
ngx_http_notifyhub_bulk_check_list(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx, cJSON **list)
{
    cJSON  *field;

    field = cJSON_GetObjectItemCaseSensitive(ctx->json, "notifications");

    if (field == NULL || cJSON_IsNull(field)) {
        ngx_http_notifyhub_invalid(ctx, "notifications", "required");

    } else if (!cJSON_IsArray(field)) {
        ngx_http_notifyhub_invalid(ctx, "notifications", "invalid_type");

    } else if (cJSON_GetArraySize(field) == 0) {
        ngx_http_notifyhub_invalid(ctx, "notifications", "required");
    }

    if (ngx_http_notifyhub_find_header(r, "idempotency-key",
                                       sizeof("idempotency-key") - 1))
    {
        ngx_http_notifyhub_invalid(ctx, "Idempotency-Key", "unsupported");
    }

    if (ctx->details) {
        return NGX_DECLINED;
    }

    *list = field;

    return NGX_OK;
}


/*
 * Checks the item at index. A valid item gets an id, and is counted when
 * it names a recipient or a template. An invalid item gets its error.
 * Returns NGX_ERROR only when memory runs out.
 */
static ngx_int_t
ngx_http_notifyhub_bulk_check_item(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx, ngx_http_notifyhub_bulk_t *b,
    ngx_uint_t index, cJSON *item)
{
    u_char                           path[sizeof("notifications[]")
                                          + NGX_INT_T_LEN];
    u_char                           uuid[NH_UUID_LEN];
    ngx_http_notifyhub_bulk_item_t  *bi;

    bi = &b->items[index];
    bi->json = item;

    if (!cJSON_IsObject(item)) {
        ngx_sprintf(path, "notifications[%ui]%Z", index);
        ngx_http_notifyhub_invalid(ctx, (char *) path, "invalid_type");

    } else {
        ngx_http_notifyhub_validate_send(r, ctx, item, 0, &bi->send);
    }

    if (ctx->details) {
        return ngx_http_notifyhub_bulk_reject(r, ctx, bi, "invalid_request",
                                              NULL);
    }

    if (nh_uuid7_generate(uuid) != 0) {
        return NGX_ERROR;
    }

    nh_uuid_format(uuid, bi->id);
    bi->state = NGX_HTTP_NOTIFYHUB_ITEM_VALID;

    b->nrecipients += bi->send.recipient;
    b->ntemplates += (bi->send.template_id[0] != '\0');

    return NGX_OK;
}


/*
 * Rejects an item with the error object that a single send with it gets:
 * code, message (made from ctx->details when NULL) and the details
 * gathered in ctx, which are moved out of ctx.
 */
static ngx_int_t
ngx_http_notifyhub_bulk_reject(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx, ngx_http_notifyhub_bulk_item_t *bi,
    const char *code, const char *message)
{
    int      n;
    char     text[256], *printed;
    cJSON   *error, *first, *field, *issue;
    size_t   len;

    if (message == NULL) {
        n = cJSON_GetArraySize(ctx->details);
        first = cJSON_GetArrayItem(ctx->details, 0);
        field = cJSON_GetObjectItemCaseSensitive(first, "field");
        issue = cJSON_GetObjectItemCaseSensitive(first, "issue");

        if (cJSON_IsString(field) && cJSON_IsString(issue)) {
            snprintf(text, sizeof(text), "invalid field %s: %s%s",
                     field->valuestring, issue->valuestring,
                     n > 1 ? " (see details for the other fields)" : "");

        } else {
            snprintf(text, sizeof(text), "invalid request");
        }

        message = text;
    }

    error = cJSON_CreateObject();

    if (error == NULL
        || cJSON_AddStringToObject(error, "code", code) == NULL
        || cJSON_AddStringToObject(error, "message", message) == NULL)
    {
        cJSON_Delete(error);
        return NGX_ERROR;
    }

    if (ctx->details) {
        cJSON_AddItemToObject(error, "details", ctx->details);
        ctx->details = NULL;
    }

    printed = cJSON_PrintUnformatted(error);
    cJSON_Delete(error);

    if (printed == NULL) {
        return NGX_ERROR;
    }

    len = ngx_strlen(printed);

    bi->result.data = ngx_pnalloc(r->pool, len);
    if (bi->result.data == NULL) {
        cJSON_free(printed);
        return NGX_ERROR;
    }

    ngx_memcpy(bi->result.data, printed, len);
    bi->result.len = len;
    cJSON_free(printed);

    bi->state = NGX_HTTP_NOTIFYHUB_ITEM_REJECTED;

    return NGX_OK;
}


/* Fetches the current version of every template that the items name. */
static void
ngx_http_notifyhub_bulk_fetch_templates(ngx_http_request_t *r,
    ngx_http_notifyhub_bulk_t *b)
{
    u_char      *ids;
    ngx_int_t    rc;
    const char  *values[2];

    ids = ngx_http_notifyhub_bulk_ids(r, b, 0);
    if (ids == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    values[0] = b->tenant_id;
    values[1] = (const char *) ids;

    rc = ngx_http_notifyhub_pg_query(r,
             "SELECT id, body FROM nh_template_get_many($1, $2)",
             2, values, NULL, NULL,
             ngx_http_notifyhub_bulk_templates_fetched, b);

    if (rc != NGX_OK) {
        ngx_http_notifyhub_start_failed(r, rc);
    }
}


static void
ngx_http_notifyhub_bulk_templates_fetched(ngx_http_request_t *r,
    PGresult *res, void *data)
{
    ngx_http_notifyhub_bulk_t  *b = data;

    int                                  row, n;
    ngx_uint_t                           i;
    ngx_http_notifyhub_ctx_t            *ctx;
    ngx_http_notifyhub_bulk_template_t  *t;

    if (ngx_http_notifyhub_pg_rows(r, res, "nh_template_get_many") != NGX_OK)
    {
        return;
    }

    n = PQntuples(res);

    b->templates = ngx_pcalloc(r->pool,
                       (n + 1) * sizeof(ngx_http_notifyhub_bulk_template_t));
    if (b->templates == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    for (row = 0; row < n; row++) {
        t = &b->templates[row];

        if (nh_uuid_parse(PQgetvalue(res, row, 0), PQgetlength(res, row, 0),
                          t->id)
            != 0)
        {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        t->json = cJSON_ParseWithLength(PQgetvalue(res, row, 1),
                                        PQgetlength(res, row, 1));
        if (t->json == NULL) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }
    }

    /* The array ends with an entry whose json is NULL, for the cleanup. */
    ngx_qsort(b->templates, n, sizeof(ngx_http_notifyhub_bulk_template_t),
              ngx_http_notifyhub_bulk_template_cmp);
    b->ntemplates = n;

    ctx = ngx_http_get_module_ctx(r, ngx_http_notifyhub_module);

    for (i = 0; i < b->nitems; i++) {
        if (b->items[i].state == NGX_HTTP_NOTIFYHUB_ITEM_VALID
            && b->items[i].send.template_id[0] != '\0'
            && ngx_http_notifyhub_bulk_render(r, ctx, b, &b->items[i])
               != NGX_OK)
        {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }
    }

    ngx_http_notifyhub_bulk_next(r, b);
}


/*
 * Renders an item's template into its content, or rejects the item as a
 * single send with it would be rejected. Returns NGX_ERROR only when
 * memory runs out.
 */
static ngx_int_t
ngx_http_notifyhub_bulk_render(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx, ngx_http_notifyhub_bulk_t *b,
    ngx_http_notifyhub_bulk_item_t *bi)
{
    ngx_int_t                            rc;
    ngx_uint_t                           status;
    const char                          *code, *message;
    ngx_http_notifyhub_bulk_template_t   key, *t;

    if (nh_uuid_parse(bi->send.template_id, NH_UUID_STR_LEN, key.id) != 0) {
        return NGX_ERROR;
    }

    t = bsearch(&key, b->templates, b->ntemplates,
                sizeof(ngx_http_notifyhub_bulk_template_t),
                ngx_http_notifyhub_bulk_template_cmp);

    if (t == NULL) {
        return ngx_http_notifyhub_bulk_reject(r, ctx, bi, "not_found",
                                              "template not found");
    }

    rc = ngx_http_notifyhub_send_template(r, ctx, bi->json, t->json,
                                          &bi->send, &status, &code,
                                          &message);

    if (rc == NGX_DECLINED) {
        return ngx_http_notifyhub_bulk_reject(r, ctx, bi, code, message);
    }

    if (rc != NGX_OK) {
        return NGX_ERROR;
    }

    bi->state = NGX_HTTP_NOTIFYHUB_ITEM_VALID;

    return NGX_OK;
}


/*
 * Sends the valid items to nh_notification_insert_batch: their rows, and
 * for those with an idempotency key the key, the request hash and the
 * reply kept for replays.
 */
static void
ngx_http_notifyhub_bulk_store(ngx_http_request_t *r,
    ngx_http_notifyhub_bulk_t *b)
{
    char                        count[NGX_INT_T_LEN + 1];
    char                        created[NH_RFC3339_LEN + 1];
    ngx_int_t                   rc;
    ngx_uint_t                  i, nvalid;
    const char                 *values[5];
    ngx_http_notifyhub_jbuf_t   items, keyed;

    if (ngx_http_notifyhub_jbuf_init(&items, r->pool,
                                     1024 + b->nitems * 512) != NGX_OK
        || ngx_http_notifyhub_jbuf_init(&keyed, r->pool, 1024) != NGX_OK
        || ngx_http_notifyhub_jbuf_raw(&items, "[", 1) != NGX_OK
        || ngx_http_notifyhub_jbuf_raw(&keyed, "[", 1) != NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    nh_time_format_rfc3339(nh_time_now_ms(), created);
    nvalid = 0;

    for (i = 0; i < b->nitems && !b->unchecked; i++) {
        if (b->items[i].state != NGX_HTTP_NOTIFYHUB_ITEM_VALID) {
            continue;
        }

        if (ngx_http_notifyhub_bulk_row(r, &b->items[i], i, created, &items,
                                        &keyed)
            != NGX_OK)
        {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        nvalid++;
    }

    /* The Kafka queue must take the whole batch before anything is stored. */

    if (nvalid > ngx_http_notifyhub_kafka_room()) {
        ngx_http_notifyhub_start_failed(r, NGX_BUSY);
        return;
    }

    /* Both texts end with a NUL, because libpq takes C strings. */
    if (ngx_http_notifyhub_jbuf_raw(&items, "]", 2) != NGX_OK
        || ngx_http_notifyhub_jbuf_raw(&keyed, "]", 2) != NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_sprintf((u_char *) count, "%ui%Z", b->nitems);

    values[0] = b->tenant_id;
    values[1] = count;
    values[2] = created;
    values[3] = (const char *) items.start;
    values[4] = (const char *) keyed.start;

    rc = ngx_http_notifyhub_pg_query(r,
             "SELECT item, status, body "
             "FROM nh_notification_insert_batch($1, $2, $3, $4, $5)",
             5, values, NULL, NULL, ngx_http_notifyhub_bulk_stored, b);

    if (rc != NGX_OK) {
        ngx_http_notifyhub_start_failed(r, rc);
    }
}


/*
 * Appends a valid item's row to items and, with an idempotency key, its
 * entry to keyed, and builds the notification object of its reply. "data"
 * and "metadata" are printed once for the three.
 */
static ngx_int_t
ngx_http_notifyhub_bulk_row(ngx_http_request_t *r,
    ngx_http_notifyhub_bulk_item_t *bi, ngx_uint_t index, const char *created,
    ngx_http_notifyhub_jbuf_t *items, ngx_http_notifyhub_jbuf_t *keyed)
{
    char                       *data, *metadata, *canonical;
    u_char                      hash[NH_SHA256_LEN];
    u_char                      hex[NH_SHA256_LEN * 2];
    u_char                      number[NGX_INT_T_LEN + 16];
    ngx_int_t                   rc;
    ngx_http_notifyhub_send_t  *send;
    const char                 *to;

    send = &bi->send;

    bi->scheduled = send->scheduled_at_ms > nh_time_now_ms();

    to = ngx_http_notifyhub_send_to(r, send);
    if (to == NULL) {
        return NGX_ERROR;
    }

    data = ngx_http_notifyhub_json_field(bi->json, "data");
    metadata = ngx_http_notifyhub_json_field(bi->json, "metadata");

    bi->result = ngx_http_notifyhub_accepted_json(r, bi->id, send,
                                                  bi->scheduled, to, data,
                                                  metadata, created);
    if (bi->result.data == NULL) {
        goto failed;
    }

    /* The row contains the members of the notification that are stored. */

    rc = ngx_http_notifyhub_jbuf_raw(items, number,
             ngx_sprintf(number, "%s{\"i\":%ui,\"id\":",
                         (items->pos - items->start > 1) ? "," : "", index)
             - number);

#define ngx_http_notifyhub_member(jbuf, name, value)                          \
    if ((value) != NULL) {                                                    \
        rc |= ngx_http_notifyhub_jbuf_raw(jbuf, ",\"" name "\":",              \
                                          sizeof(",\"" name "\":") - 1);      \
        rc |= ngx_http_notifyhub_jbuf_string(jbuf, (u_char *) (value),        \
                                             ngx_strlen(value));              \
    }

    rc |= ngx_http_notifyhub_jbuf_string(items, (u_char *) bi->id,
                                         NH_UUID_STR_LEN);
    ngx_http_notifyhub_member(items, "channel",
                              ngx_http_notifyhub_channels[send->channel]);
    ngx_http_notifyhub_member(items, "status",
                              bi->scheduled ? "SCHEDULED" : "PENDING");
    ngx_http_notifyhub_member(items, "priority",
                              ngx_http_notifyhub_priorities[send->priority]);

    if (send->recipient) {
        ngx_http_notifyhub_member(items, "recipientId", send->recipient_id);
    }

    rc |= ngx_http_notifyhub_jbuf_raw(items, ",\"to\":", 6);
    rc |= ngx_http_notifyhub_jbuf_raw(items, to, ngx_strlen(to));

    if (send->template_id[0] != '\0') {
        ngx_http_notifyhub_member(items, "templateId", send->template_id);
        rc |= ngx_http_notifyhub_jbuf_raw(items, ",\"templateVersion\":",
                                     sizeof(",\"templateVersion\":") - 1);
        rc |= ngx_http_notifyhub_jbuf_raw(items, send->template_version,
                                         ngx_strlen(send->template_version));
    }

    ngx_http_notifyhub_member(items, "subject", send->subject);
    ngx_http_notifyhub_member(items, "body", send->body);
    ngx_http_notifyhub_member(items, "html", send->html);

    if (data) {
        rc |= ngx_http_notifyhub_jbuf_raw(items, ",\"data\":", 8);
        rc |= ngx_http_notifyhub_jbuf_raw(items, data, ngx_strlen(data));
    }

    if (metadata) {
        rc |= ngx_http_notifyhub_jbuf_raw(items, ",\"metadata\":", 12);
        rc |= ngx_http_notifyhub_jbuf_raw(items, metadata,
                                          ngx_strlen(metadata));
    }

    ngx_http_notifyhub_member(items, "idempotencyKey", send->idempotency_key);

    if (send->scheduled_at[0] != '\0') {
        ngx_http_notifyhub_member(items, "scheduledAt", send->scheduled_at);
    }

    rc |= ngx_http_notifyhub_jbuf_raw(items, "}", 1);

    if (rc != NGX_OK) {
        goto failed;
    }

    cJSON_free(data);
    cJSON_free(metadata);
    data = NULL;
    metadata = NULL;

    if (send->idempotency_key == NULL) {
        return NGX_OK;
    }

    /*
     * The fingerprint of a reused key is the hash of the item's canonical
     * JSON, so an item and a single send with the same body and key are
     * the same request.
     */
    if (nh_json_canonical(bi->json, &canonical, NULL) != 0) {
        return NGX_ERROR;
    }

    nh_sha256(canonical, ngx_strlen(canonical), hash);
    free(canonical);

    ngx_hex_dump(hex, hash, NH_SHA256_LEN);

    rc = ngx_http_notifyhub_jbuf_raw(keyed, number,
             ngx_sprintf(number, "%s{\"i\":%ui,\"id\":",
                         (keyed->pos - keyed->start > 1) ? "," : "", index)
             - number);
    rc |= ngx_http_notifyhub_jbuf_string(keyed, (u_char *) bi->id,
                                         NH_UUID_STR_LEN);
    ngx_http_notifyhub_member(keyed, "key", send->idempotency_key);
    rc |= ngx_http_notifyhub_jbuf_raw(keyed, ",\"hash\":\"", 9);
    rc |= ngx_http_notifyhub_jbuf_raw(keyed, hex, sizeof(hex));
    rc |= ngx_http_notifyhub_jbuf_raw(keyed, "\",\"reply\":", 10);
    rc |= ngx_http_notifyhub_jbuf_raw(keyed, bi->result.data, bi->result.len);
    rc |= ngx_http_notifyhub_jbuf_raw(keyed, "}", 1);

#undef ngx_http_notifyhub_member

    return (rc == NGX_OK) ? NGX_OK : NGX_ERROR;

failed:

    cJSON_free(data);
    cJSON_free(metadata);

    return NGX_ERROR;
}


static void
ngx_http_notifyhub_bulk_stored(ngx_http_request_t *r, PGresult *res,
    void *data)
{
    ngx_http_notifyhub_bulk_t  *b = data;

    int                              row, n;
    cJSON                           *detail;
    ngx_int_t                        rc, index;
    ngx_uint_t                       status;
    const char                      *state;
    ngx_http_notifyhub_ctx_t        *ctx;
    ngx_http_notifyhub_bulk_item_t  *bi;

    /*
     * A foreign key violation means the tenant was deleted after its key
     * was cached: the key is no longer valid.
     */
    if (res && PQresultStatus(res) == PGRES_FATAL_ERROR) {
        state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

        if (state && ngx_strcmp(state, "23503") == 0) {
            rc = ngx_http_notifyhub_send_error(r, NGX_HTTP_UNAUTHORIZED,
                                               "unauthorized",
                                               "missing or invalid API key");
            ngx_http_finalize_request(r, rc);
            return;
        }
    }

    if (ngx_http_notifyhub_pg_rows(r, res, "nh_notification_insert_batch")
        != NGX_OK)
    {
        return;
    }

    n = PQntuples(res);

    /* A request-wide error: 401 or 413. */

    if (n == 1 && ngx_atoi((u_char *) PQgetvalue(res, 0, 0), 2) == -1) {
        status = ngx_atoi((u_char *) PQgetvalue(res, 0, 1),
                          PQgetlength(res, 0, 1));
        rc = ngx_http_notifyhub_send_error_object(r, status,
                                      (u_char *) PQgetvalue(res, 0, 2),
                                      PQgetlength(res, 0, 2));
        ngx_http_finalize_request(r, rc);
        return;
    }

    /* The plan allows a request larger than the module checks. */

    if (b->unchecked) {
        ctx = ngx_http_get_module_ctx(r, ngx_http_notifyhub_module);

        ngx_http_notifyhub_invalid(ctx, "notifications", "too_many");
        detail = cJSON_GetArrayItem(ctx->details, 0);

        if (detail == NULL
            || cJSON_AddNumberToObject(detail, "max",
                                       NGX_HTTP_NOTIFYHUB_BULK_CHECK_MAX)
               == NULL)
        {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        rc = ngx_http_notifyhub_send_error_details(r,
                         NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                         "payload_too_large",
                         "a bulk request takes at most 10000 notifications",
                         ctx);
        ngx_http_finalize_request(r, rc);
        return;
    }

    /* Items with a row were not stored now: replays and reused keys. */

    for (row = 0; row < n; row++) {
        index = ngx_atoi((u_char *) PQgetvalue(res, row, 0),
                         PQgetlength(res, row, 0));

        if (index < 0 || (ngx_uint_t) index >= b->nitems
            || b->items[index].state != NGX_HTTP_NOTIFYHUB_ITEM_VALID)
        {
            ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                          "notifyhub: nh_notification_insert_batch "
                          "returned an unknown item index");
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        bi = &b->items[index];
        bi->state = NGX_HTTP_NOTIFYHUB_ITEM_REPLAYED;
        bi->status = ngx_atoi((u_char *) PQgetvalue(res, row, 1),
                              PQgetlength(res, row, 1));
        bi->result.len = PQgetlength(res, row, 2);
        bi->result.data = ngx_pnalloc(r->pool, bi->result.len);

        if (bi->result.data == NULL) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        ngx_memcpy(bi->result.data, PQgetvalue(res, row, 2), bi->result.len);
    }

    ngx_http_finalize_request(r, ngx_http_notifyhub_bulk_reply(r, b));
}


/*
 * Produces the stored notifications to Kafka and sends the 202 with every
 * item's result. The rows stay PENDING when a produce fails, and the
 * outbox sweeper republishes them, so the reply is 202 all the same.
 */
static ngx_int_t
ngx_http_notifyhub_bulk_reply(ngx_http_request_t *r,
    ngx_http_notifyhub_bulk_t *b)
{
    u_char                           entry[NGX_INT_T_LEN + 32];
    u_char                           head[NGX_HTTP_NOTIFYHUB_BULK_HEAD_MAX];
    size_t                           size, len;
    ngx_int_t                        rc;
    ngx_uint_t                       i, accepted, ok;
    ngx_http_notifyhub_jbuf_t        jb;
    ngx_http_notifyhub_bulk_item_t  *bi;

    size = NGX_HTTP_NOTIFYHUB_BULK_HEAD_MAX + 2;

    for (i = 0; i < b->nitems; i++) {
        size += b->items[i].result.len + sizeof(entry)
                + sizeof(",\"replayed\":true}");
    }

    /*
     * The results are written after room for the head, which is written
     * last, when the counts are known, right before the first result.
     */
    if (ngx_http_notifyhub_jbuf_init(&jb, r->pool, size) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    jb.pos += NGX_HTTP_NOTIFYHUB_BULK_HEAD_MAX;

    accepted = 0;
    rc = NGX_OK;

    for (i = 0; i < b->nitems; i++) {
        bi = &b->items[i];

        if (bi->state == NGX_HTTP_NOTIFYHUB_ITEM_VALID) {
            bi->state = NGX_HTTP_NOTIFYHUB_ITEM_STORED;
            bi->status = NGX_HTTP_ACCEPTED;

            if (!bi->scheduled) {
                (void) ngx_http_notifyhub_kafka_produce(r->connection->log,
                               (ngx_http_notifyhub_channel_e)
                                   bi->send.channel,
                               bi->id, b->tenant_id);
            }
        }

        ok = (bi->state == NGX_HTTP_NOTIFYHUB_ITEM_STORED
              || bi->state == NGX_HTTP_NOTIFYHUB_ITEM_REPLAYED)
             && bi->status == NGX_HTTP_ACCEPTED;

        accepted += ok;

        len = ngx_sprintf(entry, "%s{\"index\":%ui,\"%s\":", i ? "," : "", i,
                          ok ? "notification" : "error")
              - entry;

        rc |= ngx_http_notifyhub_jbuf_raw(&jb, entry, len);
        rc |= ngx_http_notifyhub_jbuf_raw(&jb, bi->result.data,
                                          bi->result.len);

        if (bi->state == NGX_HTTP_NOTIFYHUB_ITEM_REPLAYED && ok) {
            rc |= ngx_http_notifyhub_jbuf_raw(&jb, ",\"replayed\":true", 16);
        }

        rc |= ngx_http_notifyhub_jbuf_raw(&jb, "}", 1);
    }

    rc |= ngx_http_notifyhub_jbuf_raw(&jb, "]}", 2);

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    len = ngx_snprintf(head, sizeof(head),
                       "{\"accepted\":%ui,\"rejected\":%ui,\"results\":[",
                       accepted, b->nitems - accepted)
          - head;

    ngx_memcpy(jb.start + NGX_HTTP_NOTIFYHUB_BULK_HEAD_MAX - len, head, len);

    return ngx_http_notifyhub_send_json(r, NGX_HTTP_ACCEPTED,
                               jb.start + NGX_HTTP_NOTIFYHUB_BULK_HEAD_MAX - len,
                               jb.pos - jb.start
                               - (NGX_HTTP_NOTIFYHUB_BULK_HEAD_MAX - len));
}


static int ngx_libc_cdecl
ngx_http_notifyhub_bulk_recipient_cmp(const void *one, const void *two)
{
    const ngx_http_notifyhub_bulk_recipient_t  *a = one, *b = two;

    return ngx_memcmp(a->id, b->id, NH_UUID_LEN);
}


static int ngx_libc_cdecl
ngx_http_notifyhub_bulk_template_cmp(const void *one, const void *two)
{
    const ngx_http_notifyhub_bulk_template_t  *a = one, *b = two;

    return ngx_memcmp(a->id, b->id, NH_UUID_LEN);
}


static void
ngx_http_notifyhub_bulk_cleanup(void *data)
{
    ngx_http_notifyhub_bulk_t  *b = data;

    ngx_uint_t  i;

    if (b->templates == NULL) {
        return;
    }

    for (i = 0; b->templates[i].json; i++) {
        cJSON_Delete(b->templates[i].json);
    }

    b->templates = NULL;
}
