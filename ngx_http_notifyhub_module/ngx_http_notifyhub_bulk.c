
/*
 * POST /api/notifications/bulk: checks each item with the rules of a
 * single send, stores the valid items with one SQL call, then produces the
 * stored ones to Kafka without waiting for delivery reports.
 */


#include "ngx_http_notifyhub_module.h"
#include "nh_json.h"


/*
 * The maximum number of items that the module checks one by one. A larger
 * request only has its count compared with the tenant's plan, so a 16 MiB
 * body of tiny items cannot hold up the event loop.
 */
#define NGX_HTTP_NOTIFYHUB_BULK_CHECK_MAX  10000


typedef struct {
    char                             id[NH_UUID_STR_LEN + 1];
    ngx_http_notifyhub_channel_e     channel;
} ngx_http_notifyhub_bulk_item_t;


typedef struct {
    char                             tenant_id[NH_UUID_STR_LEN + 1];
    ngx_uint_t                       nitems;
    /* Set when nitems is over NGX_HTTP_NOTIFYHUB_BULK_CHECK_MAX. */
    ngx_uint_t                       unchecked;
    ngx_http_notifyhub_bulk_item_t  *items;
    /*
     * The reply's "results" in input order: the rejected items' entries,
     * and a null in place of each item sent to the database.
     */
    cJSON                           *results;
} ngx_http_notifyhub_bulk_t;


static void ngx_http_notifyhub_bulk_accept(ngx_http_request_t *r,
    ngx_http_notifyhub_key_t *key);
static ngx_int_t ngx_http_notifyhub_bulk_check_list(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx, cJSON **list);
static ngx_int_t ngx_http_notifyhub_bulk_check_item(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx, ngx_http_notifyhub_bulk_t *b,
    ngx_uint_t index, cJSON *item, cJSON *rows);
static ngx_int_t ngx_http_notifyhub_bulk_reject(ngx_http_notifyhub_ctx_t *ctx,
    ngx_http_notifyhub_bulk_t *b, ngx_uint_t index);
static cJSON *ngx_http_notifyhub_bulk_row(ngx_http_notifyhub_bulk_item_t *bi,
    ngx_uint_t index, cJSON *item, ngx_http_notifyhub_send_t *send);
static void ngx_http_notifyhub_bulk_stored(ngx_http_request_t *r,
    PGresult *res, void *data);
static ngx_int_t ngx_http_notifyhub_bulk_reply(ngx_http_request_t *r,
    ngx_http_notifyhub_bulk_t *b, cJSON *stored);
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
    char                       count[NGX_INT_T_LEN + 1];
    char                      *rows_text;
    cJSON                     *list, *item, *rows;
    ngx_int_t                  rc;
    ngx_uint_t                 i, nvalid;
    const char                *values[3];
    ngx_pool_cleanup_t        *cln;
    ngx_http_notifyhub_ctx_t  *ctx;
    ngx_http_notifyhub_bulk_t *b;

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

    rows = cJSON_CreateArray();
    if (rows == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    /* Check each item, or leave a request over the limit to the plan. */

    if (b->nitems > NGX_HTTP_NOTIFYHUB_BULK_CHECK_MAX) {
        b->unchecked = 1;

    } else {
        b->items = ngx_pcalloc(r->pool,
                       b->nitems * sizeof(ngx_http_notifyhub_bulk_item_t));
        b->results = cJSON_CreateArray();

        if (b->items == NULL || b->results == NULL) {
            cJSON_Delete(rows);
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        i = 0;

        cJSON_ArrayForEach(item, list) {
            if (ngx_http_notifyhub_bulk_check_item(r, ctx, b, i, item, rows)
                != NGX_OK)
            {
                cJSON_Delete(rows);
                ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
                return;
            }

            i++;
        }
    }

    /* The Kafka queue must take the whole batch before anything is stored. */

    nvalid = cJSON_GetArraySize(rows);

    if (nvalid > ngx_http_notifyhub_kafka_room()) {
        cJSON_Delete(rows);
        ngx_http_notifyhub_start_failed(r, NGX_BUSY);
        return;
    }

    rows_text = cJSON_PrintUnformatted(rows);
    cJSON_Delete(rows);

    if (rows_text == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_sprintf((u_char *) count, "%ui%Z", b->nitems);

    values[0] = b->tenant_id;
    values[1] = count;
    values[2] = rows_text;

    rc = ngx_http_notifyhub_pg_query(r,
             "SELECT status, body "
             "FROM nh_notification_create_bulk($1, $2, $3)",
             3, values, NULL, NULL, ngx_http_notifyhub_bulk_stored, b);

    cJSON_free(rows_text);

    if (rc != NGX_OK) {
        ngx_http_notifyhub_start_failed(r, rc);
    }
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
 * Checks the item at index. A valid item gets an id and a row in rows and
 * a null in b->results; an invalid one gets its error in b->results.
 * Returns NGX_ERROR only when memory runs out.
 */
static ngx_int_t
ngx_http_notifyhub_bulk_check_item(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx, ngx_http_notifyhub_bulk_t *b,
    ngx_uint_t index, cJSON *item, cJSON *rows)
{
    u_char                           path[sizeof("notifications[]")
                                          + NGX_INT_T_LEN];
    u_char                           uuid[NH_UUID_LEN];
    cJSON                           *row, *placeholder;
    ngx_http_notifyhub_send_t        send;
    ngx_http_notifyhub_bulk_item_t  *bi;

    if (!cJSON_IsObject(item)) {
        ngx_sprintf(path, "notifications[%ui]%Z", index);
        ngx_http_notifyhub_invalid(ctx, (char *) path, "invalid_type");

    } else {
        ngx_http_notifyhub_validate_send(r, ctx, item, 0, &send);

        /*
         * Rendering needs the template from the database, a round trip
         * per template before the one that stores the batch.
         */
        if (send.template_id[0] != '\0') {
            ngx_http_notifyhub_invalid(ctx, "templateId", "unsupported");
        }

        /* No recipients are stored yet, so a recipientId names none. */
        if (send.recipient) {
            ngx_http_notifyhub_invalid(ctx, "recipientId", "not_found");
        }
    }

    if (ctx->details) {
        return ngx_http_notifyhub_bulk_reject(ctx, b, index);
    }

    if (nh_uuid7_generate(uuid) != 0) {
        return NGX_ERROR;
    }

    bi = &b->items[index];
    nh_uuid_format(uuid, bi->id);
    bi->channel = (ngx_http_notifyhub_channel_e) send.channel;

    row = ngx_http_notifyhub_bulk_row(bi, index, item, &send);
    if (row == NULL) {
        return NGX_ERROR;
    }

    cJSON_AddItemToArray(rows, row);

    placeholder = cJSON_CreateNull();
    if (placeholder == NULL) {
        return NGX_ERROR;
    }

    cJSON_AddItemToArray(b->results, placeholder);

    return NGX_OK;
}


/*
 * Moves the failures in ctx->details into the item's result, as the error
 * object that a single send with this item gets.
 */
static ngx_int_t
ngx_http_notifyhub_bulk_reject(ngx_http_notifyhub_ctx_t *ctx,
    ngx_http_notifyhub_bulk_t *b, ngx_uint_t index)
{
    int     n;
    char    message[256];
    cJSON  *result, *error, *first, *field, *issue;

    n = cJSON_GetArraySize(ctx->details);
    first = cJSON_GetArrayItem(ctx->details, 0);
    field = cJSON_GetObjectItemCaseSensitive(first, "field");
    issue = cJSON_GetObjectItemCaseSensitive(first, "issue");

    if (cJSON_IsString(field) && cJSON_IsString(issue)) {
        snprintf(message, sizeof(message), "invalid field %s: %s%s",
                 field->valuestring, issue->valuestring,
                 n > 1 ? " (see details for the other fields)" : "");

    } else {
        snprintf(message, sizeof(message), "invalid request");
    }

    result = cJSON_CreateObject();
    error = cJSON_CreateObject();

    if (result == NULL || error == NULL
        || cJSON_AddNumberToObject(result, "index", index) == NULL
        || cJSON_AddStringToObject(error, "code", "invalid_request") == NULL
        || cJSON_AddStringToObject(error, "message", message) == NULL)
    {
        cJSON_Delete(result);
        cJSON_Delete(error);
        return NGX_ERROR;
    }

    cJSON_AddItemToObject(error, "details", ctx->details);
    ctx->details = NULL;

    cJSON_AddItemToObject(result, "error", error);
    cJSON_AddItemToArray(b->results, result);

    return NGX_OK;
}


/*
 * Builds the object that nh_notification_create_bulk stores for a valid
 * item. "data" and "metadata" refer to the request's parsed body, which
 * outlives the row.
 */
static cJSON *
ngx_http_notifyhub_bulk_row(ngx_http_notifyhub_bulk_item_t *bi,
    ngx_uint_t index, cJSON *item, ngx_http_notifyhub_send_t *send)
{
    char        *canonical;
    u_char       hash[NH_SHA256_LEN], hex[NH_SHA256_LEN * 2 + 1];
    cJSON       *row, *to, *field;
    ngx_uint_t   failed;

    row = cJSON_CreateObject();
    if (row == NULL) {
        return NULL;
    }

    to = cJSON_AddObjectToObject(row, "to");

    failed = cJSON_AddNumberToObject(row, "index", index) == NULL
             || cJSON_AddStringToObject(row, "id", bi->id) == NULL
             || cJSON_AddStringToObject(row, "channel",
                        ngx_http_notifyhub_channels[send->channel]) == NULL
             || cJSON_AddStringToObject(row, "priority",
                        ngx_http_notifyhub_priorities[send->priority]) == NULL
             || to == NULL
             || cJSON_AddStringToObject(to,
                        ngx_http_notifyhub_address_fields[send->channel],
                        send->address) == NULL;

    if (send->subject) {
        failed |= cJSON_AddStringToObject(row, "subject", send->subject)
                  == NULL;
    }

    if (send->body) {
        failed |= cJSON_AddStringToObject(row, "body", send->body) == NULL;
    }

    if (send->html) {
        failed |= cJSON_AddStringToObject(row, "html", send->html) == NULL;
    }

    field = cJSON_GetObjectItemCaseSensitive(item, "data");
    if (cJSON_IsObject(field)) {
        failed |= !cJSON_AddItemReferenceToObject(row, "data", field);
    }

    field = cJSON_GetObjectItemCaseSensitive(item, "metadata");
    if (cJSON_IsObject(field)) {
        failed |= !cJSON_AddItemReferenceToObject(row, "metadata", field);
    }

    if (send->scheduled_at[0] != '\0') {
        failed |= cJSON_AddStringToObject(row, "scheduledAt",
                                          send->scheduled_at) == NULL;
    }

    /*
     * The fingerprint of a reused key is the hash of the item's canonical
     * JSON, so an item and a single send with the same body and key are
     * the same request.
     */
    if (send->idempotency_key) {
        if (nh_json_canonical(item, &canonical, NULL) != 0) {
            cJSON_Delete(row);
            return NULL;
        }

        nh_sha256(canonical, ngx_strlen(canonical), hash);
        free(canonical);

        *ngx_hex_dump(hex, hash, NH_SHA256_LEN) = '\0';

        failed |= cJSON_AddStringToObject(row, "idempotencyKey",
                                          send->idempotency_key) == NULL
                  || cJSON_AddStringToObject(row, "requestHash",
                                             (char *) hex) == NULL;
    }

    if (failed) {
        cJSON_Delete(row);
        return NULL;
    }

    return row;
}


static void
ngx_http_notifyhub_bulk_stored(ngx_http_request_t *r, PGresult *res,
    void *data)
{
    ngx_http_notifyhub_bulk_t  *b = data;

    cJSON                     *stored, *detail;
    ngx_int_t                  rc;
    ngx_uint_t                 status;
    const char                *state;
    ngx_http_notifyhub_ctx_t  *ctx;

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

    if (ngx_http_notifyhub_pg_status(r, res, 2, "nh_notification_create_bulk")
        != NGX_OK)
    {
        return;
    }

    status = ngx_atoi((u_char *) PQgetvalue(res, 0, 0),
                      PQgetlength(res, 0, 0));

    if (status != NGX_HTTP_ACCEPTED) {
        ngx_http_finalize_request(r, ngx_http_notifyhub_reply_result(r, res));
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

    stored = cJSON_ParseWithLength(PQgetvalue(res, 0, 1),
                                   PQgetlength(res, 0, 1));
    if (!cJSON_IsArray(stored)) {
        cJSON_Delete(stored);
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "notifyhub: nh_notification_create_bulk returned "
                      "a body that is not a JSON array");
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    rc = ngx_http_notifyhub_bulk_reply(r, b, stored);
    cJSON_Delete(stored);

    ngx_http_finalize_request(r, rc);
}


/*
 * Produces the stored notifications to Kafka and sends the 202 with every
 * item's result. The rows stay PENDING when a produce fails, and the
 * outbox sweeper republishes them, so the reply is 202 all the same.
 */
static ngx_int_t
ngx_http_notifyhub_bulk_reply(ngx_http_request_t *r,
    ngx_http_notifyhub_bulk_t *b, cJSON *stored)
{
    cJSON                           *entry, *result, *out, *reply;
    ngx_int_t                        rc;
    ngx_uint_t                       accepted;
    double                           index;
    ngx_http_notifyhub_bulk_item_t  *bi;

    accepted = 0;

    cJSON_ArrayForEach(entry, stored) {
        index = cJSON_GetNumberValue(
                    cJSON_GetObjectItemCaseSensitive(entry, "index"));

        if (!(index >= 0 && index < (double) b->nitems)
            || b->items[(ngx_uint_t) index].id[0] == '\0')
        {
            ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                          "notifyhub: nh_notification_create_bulk "
                          "returned an unknown item index");
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        bi = &b->items[(ngx_uint_t) index];
        result = cJSON_DetachItemFromObjectCaseSensitive(entry, "result");

        out = cJSON_CreateObject();
        if (out == NULL
            || cJSON_AddNumberToObject(out, "index", index) == NULL)
        {
            cJSON_Delete(out);
            cJSON_Delete(result);
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (cJSON_GetNumberValue(
                cJSON_GetObjectItemCaseSensitive(entry, "status"))
            == NGX_HTTP_ACCEPTED)
        {
            accepted++;
            cJSON_AddItemToObject(out, "notification", result);

            if (cJSON_IsTrue(
                    cJSON_GetObjectItemCaseSensitive(entry, "replayed")))
            {
                cJSON_AddTrueToObject(out, "replayed");
            }

            if (cJSON_IsTrue(
                    cJSON_GetObjectItemCaseSensitive(entry, "queue")))
            {
                (void) ngx_http_notifyhub_kafka_produce(r->connection->log,
                                                        bi->channel, bi->id,
                                                        b->tenant_id);
            }

        } else {
            cJSON_AddItemToObject(out, "error", result);
        }

        cJSON_ReplaceItemInArray(b->results, (int) index, out);
    }

    reply = cJSON_CreateObject();
    if (reply == NULL
        || cJSON_AddNumberToObject(reply, "accepted", accepted) == NULL
        || cJSON_AddNumberToObject(reply, "rejected", b->nitems - accepted)
           == NULL)
    {
        cJSON_Delete(reply);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cJSON_AddItemToObject(reply, "results", b->results);
    b->results = NULL;

    rc = ngx_http_notifyhub_send_cjson(r, NGX_HTTP_ACCEPTED, reply);
    cJSON_Delete(reply);

    return rc;
}


static void
ngx_http_notifyhub_bulk_cleanup(void *data)
{
    ngx_http_notifyhub_bulk_t  *b = data;

    if (b->results) {
        cJSON_Delete(b->results);
        b->results = NULL;
    }
}
