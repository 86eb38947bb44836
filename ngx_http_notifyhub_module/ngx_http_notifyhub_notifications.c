
/*
 * Notifications: accept (store, then produce to Kafka) and read.
 */


#include "ngx_http_notifyhub_module.h"
#include "nh_validate.h"


#define NGX_HTTP_NOTIFYHUB_IDEMPOTENCY_KEY_MAX  255
/* RFC 5322 limits a header line to 998 characters. */
#define NGX_HTTP_NOTIFYHUB_SUBJECT_MAX          998
#define NGX_HTTP_NOTIFYHUB_BODY_MAX             (512 * 1024)


typedef struct {
    char                           id[NH_UUID_STR_LEN + 1];
    char                           tenant_id[NH_UUID_STR_LEN + 1];
    ngx_http_notifyhub_channel_e   channel;
} ngx_http_notifyhub_accept_t;


static void ngx_http_notifyhub_notification_accept(ngx_http_request_t *r,
    ngx_http_notifyhub_key_t *key);
static void ngx_http_notifyhub_notification_fetch(ngx_http_request_t *r,
    ngx_http_notifyhub_key_t *key);
static const char *ngx_http_notifyhub_idempotency_key(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx);
static char *ngx_http_notifyhub_json_field(ngx_http_notifyhub_ctx_t *ctx,
    const char *name);
static void ngx_http_notifyhub_notification_stored(ngx_http_request_t *r,
    PGresult *res, void *data);
static void ngx_http_notifyhub_notification_found(ngx_http_request_t *r,
    PGresult *res, void *data);


static const char  *ngx_http_notifyhub_channels[] = {
    "EMAIL", "SMS", "PUSH", NULL
};

static const char  *ngx_http_notifyhub_priorities[] = {
    "LOW", "NORMAL", "HIGH", "CRITICAL", NULL
};


void
ngx_http_notifyhub_notification_create(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx)
{
    ngx_http_notifyhub_authenticate(r,
                                    NGX_HTTP_NOTIFYHUB_SCOPE_NOTIFICATIONS_WRITE,
                                    ngx_http_notifyhub_notification_accept);
}


static void
ngx_http_notifyhub_notification_accept(ngx_http_request_t *r,
    ngx_http_notifyhub_key_t *key)
{
    int                           lengths[13], formats[13];
    char                         *to_text, *data_text, *metadata_text;
    u_char                        request_hash[NH_SHA256_LEN], uuid[NH_UUID_LEN];
    cJSON                        *to, *content, *to_json;
    ngx_int_t                     rc, channel, priority;
    const char                   *email, *subject, *body, *html, *idem;
    const char                   *values[13];
    ngx_http_notifyhub_ctx_t     *ctx;
    ngx_http_notifyhub_accept_t  *a;

    ctx = ngx_http_get_module_ctx(r, ngx_http_notifyhub_module);

    /* Validation gathers every failure before the reply. */

    channel = ngx_http_notifyhub_enum_field(ctx, ctx->json, "channel",
                                            "channel",
                                            ngx_http_notifyhub_channels, -1);
    if (channel == NGX_HTTP_NOTIFYHUB_SMS
        || channel == NGX_HTTP_NOTIFYHUB_PUSH)
    {
        ngx_http_notifyhub_invalid(ctx, "channel", "unsupported");
    }

    if (cJSON_GetObjectItemCaseSensitive(ctx->json, "recipientId")) {
        ngx_http_notifyhub_invalid(ctx, "recipientId", "unsupported");
    }

    if (cJSON_GetObjectItemCaseSensitive(ctx->json, "templateId")) {
        ngx_http_notifyhub_invalid(ctx, "templateId", "unsupported");
    }

    if (cJSON_GetObjectItemCaseSensitive(ctx->json, "scheduledAt")) {
        ngx_http_notifyhub_invalid(ctx, "scheduledAt", "unsupported");
    }

    /* Only EMAIL is accepted so far, so SMS and PUSH get one detail. */
    if (channel == NGX_HTTP_NOTIFYHUB_SMS
        || channel == NGX_HTTP_NOTIFYHUB_PUSH)
    {
        ngx_http_finalize_request(r, ngx_http_notifyhub_send_invalid(r, ctx));
        return;
    }

    email = NULL;
    to = ngx_http_notifyhub_object_field(ctx, ctx->json, "to", "to", 1);
    if (to) {
        email = ngx_http_notifyhub_string_field(ctx, to, "email", "to.email",
                                                1, 1, NH_EMAIL_MAX);
        if (email && !nh_email_is_valid(email, ngx_strlen(email))) {
            ngx_http_notifyhub_invalid(ctx, "to.email", "invalid_format");
            email = NULL;
        }
    }

    subject = NULL;
    body = NULL;
    html = NULL;
    content = ngx_http_notifyhub_object_field(ctx, ctx->json, "content",
                                              "content", 1);
    if (content) {
        subject = ngx_http_notifyhub_string_field(ctx, content, "subject",
                                    "content.subject", 1, 1,
                                    NGX_HTTP_NOTIFYHUB_SUBJECT_MAX);
        body = ngx_http_notifyhub_string_field(ctx, content, "body",
                                    "content.body", 1, 1,
                                    NGX_HTTP_NOTIFYHUB_BODY_MAX);
        html = ngx_http_notifyhub_string_field(ctx, content, "html",
                                    "content.html", 0, 0,
                                    NGX_HTTP_NOTIFYHUB_BODY_MAX);
    }

    (void) ngx_http_notifyhub_object_field(ctx, ctx->json, "data", "data", 0);
    (void) ngx_http_notifyhub_object_field(ctx, ctx->json, "metadata",
                                           "metadata", 0);

    priority = ngx_http_notifyhub_enum_field(ctx, ctx->json, "priority",
                                             "priority",
                                             ngx_http_notifyhub_priorities, 1);

    idem = ngx_http_notifyhub_idempotency_key(r, ctx);

    if (ctx->details) {
        ngx_http_finalize_request(r, ngx_http_notifyhub_send_invalid(r, ctx));
        return;
    }

    /* A full Kafka queue is a 503 before anything is stored. */

    if (!ngx_http_notifyhub_kafka_has_room()) {
        ngx_http_notifyhub_start_failed(r, NGX_BUSY);
        return;
    }

    a = ngx_pcalloc(r->pool, sizeof(ngx_http_notifyhub_accept_t));
    if (a == NULL || nh_uuid7_generate(uuid) != 0) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    nh_uuid_format(uuid, a->id);
    nh_uuid_format(key->tenant_id, a->tenant_id);
    a->channel = (ngx_http_notifyhub_channel_e) channel;

    /* Only the known address fields are stored. */
    to_json = cJSON_CreateObject();
    if (to_json == NULL
        || cJSON_AddStringToObject(to_json, "email", email) == NULL)
    {
        cJSON_Delete(to_json);
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    to_text = cJSON_PrintUnformatted(to_json);
    cJSON_Delete(to_json);

    data_text = ngx_http_notifyhub_json_field(ctx, "data");
    metadata_text = ngx_http_notifyhub_json_field(ctx, "metadata");

    /*
     * The fingerprint that detects a reused idempotency key is the hash of
     * the raw body.
     */
    nh_sha256(ctx->body.data, ctx->body.len, request_hash);

    ngx_memzero(lengths, sizeof(lengths));
    ngx_memzero(formats, sizeof(formats));

    values[0] = a->tenant_id;
    values[1] = a->id;
    values[2] = ngx_http_notifyhub_channels[channel];
    values[3] = ngx_http_notifyhub_priorities[priority];
    values[4] = to_text;
    values[5] = subject;
    values[6] = body;
    values[7] = html;
    values[8] = data_text;
    values[9] = metadata_text;
    values[10] = idem;
    values[11] = (const char *) request_hash;
    lengths[11] = NH_SHA256_LEN;
    formats[11] = 1;
    values[12] = NULL;

    rc = ngx_http_notifyhub_pg_query(r,
             "SELECT status, body, replayed "
             "FROM nh_notification_create($1, $2, $3, $4, $5, $6, $7, $8, "
             "$9, $10, $11, $12, $13)",
             13, values, lengths, formats,
             ngx_http_notifyhub_notification_stored, a);

    cJSON_free(to_text);
    cJSON_free(data_text);
    cJSON_free(metadata_text);

    if (rc != NGX_OK) {
        ngx_http_notifyhub_start_failed(r, rc);
    }
}


static void
ngx_http_notifyhub_notification_stored(ngx_http_request_t *r, PGresult *res,
    void *data)
{
    ngx_http_notifyhub_accept_t  *a = data;

    ngx_int_t    rc;
    ngx_uint_t   status, replayed;
    const char  *state;

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

    if (ngx_http_notifyhub_pg_status(r, res, 3, "nh_notification_create")
        != NGX_OK)
    {
        return;
    }

    status = ngx_atoi((u_char *) PQgetvalue(res, 0, 0),
                      PQgetlength(res, 0, 0));
    replayed = PQgetvalue(res, 0, 2)[0] == 't';

    if (status == NGX_HTTP_ACCEPTED && !replayed) {

        /*
         * The row is stored, so the reply is 202 even if this produce
         * fails, because the outbox sweeper republishes PENDING rows.
         */

        (void) ngx_http_notifyhub_kafka_produce(r->connection->log,
                                                a->channel, a->id,
                                                a->tenant_id);
    }

    if (replayed
        && ngx_http_notifyhub_add_header(r, "Idempotent-Replayed", "true")
           != NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    rc = ngx_http_notifyhub_reply_result(r, res);
    ngx_http_finalize_request(r, rc);
}


void
ngx_http_notifyhub_notification_get(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx)
{
    ngx_http_notifyhub_authenticate(r,
                                    NGX_HTTP_NOTIFYHUB_SCOPE_NOTIFICATIONS_READ,
                                    ngx_http_notifyhub_notification_fetch);
}


static void
ngx_http_notifyhub_notification_fetch(ngx_http_request_t *r,
    ngx_http_notifyhub_key_t *key)
{
    char                       id[NH_UUID_STR_LEN + 1];
    char                       tenant_id[NH_UUID_STR_LEN + 1];
    u_char                     uuid[NH_UUID_LEN];
    ngx_int_t                  rc;
    const char                *values[2];
    ngx_http_notifyhub_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_notifyhub_module);

    if (nh_uuid_parse((const char *) ctx->path_ids[0].data,
                      ctx->path_ids[0].len, uuid) != 0)
    {
        rc = ngx_http_notifyhub_send_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                           "notification not found");
        ngx_http_finalize_request(r, rc);
        return;
    }

    nh_uuid_format(uuid, id);
    nh_uuid_format(key->tenant_id, tenant_id);

    values[0] = tenant_id;
    values[1] = id;

    rc = ngx_http_notifyhub_pg_query(r,
             "SELECT status, body FROM nh_notification_get($1, $2)",
             2, values, NULL, NULL,
             ngx_http_notifyhub_notification_found, NULL);

    if (rc != NGX_OK) {
        ngx_http_notifyhub_start_failed(r, rc);
    }
}


static void
ngx_http_notifyhub_notification_found(ngx_http_request_t *r, PGresult *res,
    void *data)
{
    if (ngx_http_notifyhub_pg_status(r, res, 2, "nh_notification_get")
        != NGX_OK)
    {
        return;
    }

    ngx_http_finalize_request(r, ngx_http_notifyhub_reply_result(r, res));
}


/*
 * Reads the idempotency key from the Idempotency-Key header or the
 * idempotencyKey field; both present and different is invalid.
 */
static const char *
ngx_http_notifyhub_idempotency_key(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx)
{
    u_char           *p;
    const char       *field;
    ngx_table_elt_t  *h;

    field = ngx_http_notifyhub_string_field(ctx, ctx->json, "idempotencyKey",
                                    "idempotencyKey", 0, 1,
                                    NGX_HTTP_NOTIFYHUB_IDEMPOTENCY_KEY_MAX);

    h = ngx_http_notifyhub_find_header(r, "idempotency-key",
                                       sizeof("idempotency-key") - 1);
    if (h == NULL) {
        return field;
    }

    if (h->value.len == 0
        || h->value.len > NGX_HTTP_NOTIFYHUB_IDEMPOTENCY_KEY_MAX)
    {
        ngx_http_notifyhub_invalid(ctx, "Idempotency-Key", "invalid_length");
        return NULL;
    }

    if (field && (ngx_strlen(field) != h->value.len
                  || ngx_strncmp(field, h->value.data, h->value.len) != 0))
    {
        ngx_http_notifyhub_invalid(ctx, "idempotencyKey",
                                   "conflicts_with_header");
        return NULL;
    }

    p = ngx_pnalloc(r->pool, h->value.len + 1);
    if (p == NULL) {
        return NULL;
    }

    ngx_memcpy(p, h->value.data, h->value.len);
    p[h->value.len] = '\0';

    return (const char *) p;
}


/* Returns an object field as compact JSON text (free with cJSON_free). */
static char *
ngx_http_notifyhub_json_field(ngx_http_notifyhub_ctx_t *ctx, const char *name)
{
    cJSON  *item;

    item = cJSON_GetObjectItemCaseSensitive(ctx->json, name);
    if (!cJSON_IsObject(item)) {
        return NULL;
    }

    return cJSON_PrintUnformatted(item);
}
