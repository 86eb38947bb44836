
/*
 * Notifications: accept (store, then produce to Kafka) and read.
 */


#include "ngx_http_notifyhub_module.h"
#include "nh_json.h"
#include "nh_time.h"
#include "nh_validate.h"


#define NGX_HTTP_NOTIFYHUB_IDEMPOTENCY_KEY_MAX  255
/* RFC 5322 limits a header line to 998 characters. */
#define NGX_HTTP_NOTIFYHUB_SUBJECT_MAX          998
#define NGX_HTTP_NOTIFYHUB_BODY_MAX             (512 * 1024)
/* SMS bodies: at most 10 parts (1530 GSM-7 or 670 UCS-2 characters). */
#define NGX_HTTP_NOTIFYHUB_SMS_PARTS_MAX        10
/* FCM rejects messages over 4096 bytes of title, body and data. */
#define NGX_HTTP_NOTIFYHUB_PUSH_PAYLOAD_MAX     4096
#define NGX_HTTP_NOTIFYHUB_PUSH_TITLE_MAX       256
#define NGX_HTTP_NOTIFYHUB_DEVICE_TOKEN_MAX     4096
#define NGX_HTTP_NOTIFYHUB_SCHEDULE_MAX_MS      (366LL * 86400 * 1000)


typedef struct {
    char                           id[NH_UUID_STR_LEN + 1];
    char                           tenant_id[NH_UUID_STR_LEN + 1];
    ngx_http_notifyhub_channel_e   channel;
    ngx_http_notifyhub_send_t      send;
    ngx_uint_t                     scheduled;
    ngx_str_t                      reply;       /* the 202 body */
} ngx_http_notifyhub_accept_t;


static void ngx_http_notifyhub_notification_accept(ngx_http_request_t *r,
    ngx_http_notifyhub_key_t *key);
static void ngx_http_notifyhub_validate_template_id(
    ngx_http_notifyhub_ctx_t *ctx, cJSON *item,
    ngx_http_notifyhub_send_t *send);
static void ngx_http_notifyhub_validate_address(
    ngx_http_notifyhub_ctx_t *ctx, cJSON *to, ngx_http_notifyhub_send_t *send);
static void ngx_http_notifyhub_validate_content(
    ngx_http_notifyhub_ctx_t *ctx, cJSON *item, cJSON *content,
    ngx_http_notifyhub_send_t *send);
static void ngx_http_notifyhub_validate_schedule(
    ngx_http_notifyhub_ctx_t *ctx, cJSON *item,
    ngx_http_notifyhub_send_t *send);
static void ngx_http_notifyhub_notification_prepare(ngx_http_request_t *r,
    ngx_http_notifyhub_accept_t *a);
static void ngx_http_notifyhub_recipient_fetched(ngx_http_request_t *r,
    PGresult *res, void *data);
static void ngx_http_notifyhub_template_fetched(ngx_http_request_t *r,
    PGresult *res, void *data);
static void ngx_http_notifyhub_notification_insert(ngx_http_request_t *r,
    ngx_http_notifyhub_accept_t *a);
static void ngx_http_notifyhub_notification_fetch(ngx_http_request_t *r,
    ngx_http_notifyhub_key_t *key);
static const char *ngx_http_notifyhub_idempotency_key(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx, cJSON *item, ngx_uint_t use_header);
static void ngx_http_notifyhub_notification_stored(ngx_http_request_t *r,
    PGresult *res, void *data);
static void ngx_http_notifyhub_notification_found(ngx_http_request_t *r,
    PGresult *res, void *data);


const char  *ngx_http_notifyhub_channels[] = {
    "EMAIL", "SMS", "PUSH", NULL
};

const char  *ngx_http_notifyhub_priorities[] = {
    "LOW", "NORMAL", "HIGH", "CRITICAL", NULL
};

/* The address field of "to" for each channel, and its path in details. */
const char  *ngx_http_notifyhub_address_fields[] = {
    "email", "phone", "deviceToken"
};

static const char  *ngx_http_notifyhub_address_paths[] = {
    "to.email", "to.phone", "to.deviceToken"
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
    u_char                        uuid[NH_UUID_LEN];
    ngx_http_notifyhub_ctx_t     *ctx;
    ngx_http_notifyhub_accept_t  *a;

    ctx = ngx_http_get_module_ctx(r, ngx_http_notifyhub_module);

    a = ngx_pcalloc(r->pool, sizeof(ngx_http_notifyhub_accept_t));
    if (a == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_notifyhub_validate_send(r, ctx, ctx->json, 1, &a->send);

    if (ctx->details) {
        ngx_http_finalize_request(r, ngx_http_notifyhub_send_invalid(r, ctx));
        return;
    }

    if (nh_uuid7_generate(uuid) != 0) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    nh_uuid_format(uuid, a->id);
    nh_uuid_format(key->tenant_id, a->tenant_id);
    a->channel = (ngx_http_notifyhub_channel_e) a->send.channel;

    ngx_http_notifyhub_notification_prepare(r, a);
}


/*
 * Runs the next step before the insert: the recipient's address, then the
 * template's content, each one query, and then the insert.
 */
static void
ngx_http_notifyhub_notification_prepare(ngx_http_request_t *r,
    ngx_http_notifyhub_accept_t *a)
{
    u_char      ids[NH_UUID_STR_LEN + 3];
    ngx_int_t   rc;
    const char *values[2];

    values[0] = a->tenant_id;

    if (a->send.recipient && a->send.address == NULL
        && a->send.to_json == NULL)
    {
        /* An array literal of one id. */
        ngx_sprintf(ids, "{%s}%Z", a->send.recipient_id);
        values[1] = (const char *) ids;

        rc = ngx_http_notifyhub_pg_query(r,
                 "SELECT id, email, phone, device_tokens "
                 "FROM nh_recipient_addresses($1, $2)",
                 2, values, NULL, NULL,
                 ngx_http_notifyhub_recipient_fetched, a);

    } else if (a->send.template_id[0] != '\0'
               && a->send.template_version[0] == '\0')
    {
        /* The content comes from the template's current version. */
        values[1] = a->send.template_id;

        rc = ngx_http_notifyhub_pg_query(r,
                 "SELECT status, body FROM nh_template_get($1, $2)",
                 2, values, NULL, NULL,
                 ngx_http_notifyhub_template_fetched, a);

    } else {
        ngx_http_notifyhub_notification_insert(r, a);
        return;
    }

    if (rc != NGX_OK) {
        ngx_http_notifyhub_start_failed(r, rc);
    }
}


static void
ngx_http_notifyhub_recipient_fetched(ngx_http_request_t *r, PGresult *res,
    void *data)
{
    ngx_http_notifyhub_accept_t  *a = data;

    ngx_int_t                  rc;
    const char                *message;
    ngx_http_notifyhub_ctx_t  *ctx;

    if (ngx_http_notifyhub_pg_rows(r, res, "nh_recipient_addresses")
        != NGX_OK)
    {
        return;
    }

    if (PQntuples(res) == 0) {
        rc = ngx_http_notifyhub_send_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                           "recipient not found");
        ngx_http_finalize_request(r, rc);
        return;
    }

    rc = ngx_http_notifyhub_send_recipient(r, &a->send, res, 0, &message);

    if (rc == NGX_DECLINED) {
        ctx = ngx_http_get_module_ctx(r, ngx_http_notifyhub_module);
        ngx_http_notifyhub_invalid(ctx, "recipientId", "no_address");

        rc = ngx_http_notifyhub_send_error_details(r,
                           NGX_HTTP_NOTIFYHUB_UNPROCESSABLE,
                           "recipient_unreachable", message, ctx);
        ngx_http_finalize_request(r, rc);
        return;
    }

    if (rc != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_notifyhub_notification_prepare(r, a);
}


/*
 * Sets the address of send from a row of nh_recipient_addresses (id,
 * email, phone, device_tokens): the email or the phone, or for a push
 * every active device's token in "to". Returns NGX_OK, NGX_DECLINED with
 * a message when the recipient has no address for the channel, or
 * NGX_ERROR.
 */
ngx_int_t
ngx_http_notifyhub_send_recipient(ngx_http_request_t *r,
    ngx_http_notifyhub_send_t *send, PGresult *res, int row,
    const char **message)
{
    int      col;
    u_char  *p;
    size_t   len;

    static const char  *missing[] = {
        "the recipient has no email address",
        "the recipient has no phone number",
        "the recipient has no active push device"
    };

    col = 1 + (int) send->channel;
    len = PQgetlength(res, row, col);

    if (PQgetisnull(res, row, col)
        || (send->channel == NGX_HTTP_NOTIFYHUB_PUSH
            && ngx_strncmp(PQgetvalue(res, row, col), "[]", 2) == 0))
    {
        *message = missing[send->channel];
        return NGX_DECLINED;
    }

    if (send->channel != NGX_HTTP_NOTIFYHUB_PUSH) {
        p = ngx_pnalloc(r->pool, len + 1);
        if (p == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(p, PQgetvalue(res, row, col), len + 1);
        send->address = (const char *) p;

        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, sizeof("{\"deviceTokens\":}") + len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(p, "{\"deviceTokens\":%*s}%Z", len, PQgetvalue(res, row, col));
    send->to_json = (const char *) p;

    return NGX_OK;
}


/*
 * Returns the "to" object of send as JSON text in the request pool: the
 * channel's address field, or the device tokens of a recipient.
 */
const char *
ngx_http_notifyhub_send_to(ngx_http_request_t *r,
    ngx_http_notifyhub_send_t *send)
{
    const char                 *name;
    ngx_http_notifyhub_jbuf_t   jb;

    if (send->to_json) {
        return send->to_json;
    }

    name = ngx_http_notifyhub_address_fields[send->channel];

    if (ngx_http_notifyhub_jbuf_init(&jb, r->pool,
                                     ngx_strlen(send->address) + 32)
        != NGX_OK
        || ngx_http_notifyhub_jbuf_raw(&jb, "{", 1) != NGX_OK
        || ngx_http_notifyhub_jbuf_string(&jb, (u_char *) name,
                                          ngx_strlen(name))
           != NGX_OK
        || ngx_http_notifyhub_jbuf_raw(&jb, ":", 1) != NGX_OK
        || ngx_http_notifyhub_jbuf_string(&jb, (u_char *) send->address,
                                          ngx_strlen(send->address))
           != NGX_OK
        || ngx_http_notifyhub_jbuf_raw(&jb, "}", 2) != NGX_OK)   /* "}\0" */
    {
        return NULL;
    }

    return (const char *) jb.start;
}


/*
 * Renders the template with "data", checks the result as the channel
 * checks inline content, and stores the notification with the rendered
 * texts and the template version.
 */
static void
ngx_http_notifyhub_template_fetched(ngx_http_request_t *r, PGresult *res,
    void *data)
{
    ngx_http_notifyhub_accept_t  *a = data;

    cJSON                      *json;
    ngx_int_t                   rc;
    ngx_uint_t                  status;
    const char                 *code, *message;
    ngx_http_notifyhub_ctx_t   *ctx;

    if (ngx_http_notifyhub_pg_status(r, res, 2, "nh_template_get") != NGX_OK)
    {
        return;
    }

    if (ngx_atoi((u_char *) PQgetvalue(res, 0, 0), PQgetlength(res, 0, 0))
        != NGX_HTTP_OK)
    {
        ngx_http_finalize_request(r, ngx_http_notifyhub_reply_result(r, res));
        return;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_notifyhub_module);

    json = cJSON_ParseWithLength(PQgetvalue(res, 0, 1),
                                 PQgetlength(res, 0, 1));
    if (json == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    rc = ngx_http_notifyhub_send_template(r, ctx, ctx->json, json, &a->send,
                                          &status, &code, &message);
    cJSON_Delete(json);

    if (rc == NGX_ERROR) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (rc == NGX_DECLINED) {
        if (status == NGX_HTTP_BAD_REQUEST) {
            rc = ngx_http_notifyhub_send_invalid(r, ctx);

        } else {
            rc = ngx_http_notifyhub_send_error_details(r, status, code,
                                                       message, ctx);
        }

        ngx_http_finalize_request(r, rc);
        return;
    }

    ngx_http_notifyhub_notification_prepare(r, a);
}


/*
 * Fills the content of send from tpl, a template as nh_template_get
 * returns it. The template's channel must be the send's. The texts are
 * rendered with the "data" of item and pass the checks of inline content,
 * so an SMS still has at most 10 parts and a push at most 4 KiB. Returns
 * NGX_OK; NGX_DECLINED with the failures in ctx->details and the reply's
 * status (400 or 422), code and message; or NGX_ERROR.
 */
ngx_int_t
ngx_http_notifyhub_send_template(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx, cJSON *item, cJSON *tpl,
    ngx_http_notifyhub_send_t *send, ngx_uint_t *status, const char **code,
    const char **message)
{
    cJSON                          *content;
    ngx_int_t                       rc;
    ngx_uint_t                      i;
    const char                     *channel;
    ngx_http_notifyhub_rendered_t   out;

    static const char  *parts[] = { "subject", "body", "html" };

    *status = NGX_HTTP_BAD_REQUEST;
    *code = "invalid_request";
    *message = NULL;

    channel = cJSON_GetStringValue(
                  cJSON_GetObjectItemCaseSensitive(tpl, "channel"));

    if (channel == NULL
        || ngx_strcmp(channel, ngx_http_notifyhub_channels[send->channel])
           != 0)
    {
        ngx_http_notifyhub_invalid(ctx, "templateId", "channel_mismatch");
        return NGX_DECLINED;
    }

    rc = ngx_http_notifyhub_template_fill(r, ctx, tpl,
                   cJSON_GetObjectItemCaseSensitive(item, "data"), &out,
                   code, message);

    if (rc != NGX_OK) {
        *status = NGX_HTTP_NOTIFYHUB_UNPROCESSABLE;
        return rc;
    }

    ngx_sprintf((u_char *) send->template_version, "%i%Z", out.version);

    /* The strings of content refer to the request pool. */
    content = cJSON_CreateObject();
    if (content == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < 3; i++) {
        if (out.parts[i]) {
            cJSON_AddItemToObject(content, parts[i],
                                  cJSON_CreateStringReference(out.parts[i]));
        }
    }

    ngx_http_notifyhub_validate_content(ctx, item, content, send);
    cJSON_Delete(content);

    return ctx->details ? NGX_DECLINED : NGX_OK;
}


/* Stores the notification of a checked request, then queues it. */
static void
ngx_http_notifyhub_notification_insert(ngx_http_request_t *r,
    ngx_http_notifyhub_accept_t *a)
{
    int                         lengths[19], formats[19];
    char                       *data_text, *metadata_text, *canonical;
    char                        created[NH_RFC3339_LEN + 1];
    u_char                      request_hash[NH_SHA256_LEN];
    const char                 *to_text;
    int64_t                     now;
    ngx_int_t                   rc;
    const char                 *values[19];
    ngx_http_notifyhub_ctx_t   *ctx;
    ngx_http_notifyhub_send_t  *send;

    ctx = ngx_http_get_module_ctx(r, ngx_http_notifyhub_module);
    send = &a->send;

    /* A full Kafka queue is a 503 before anything is stored. */

    if (!ngx_http_notifyhub_kafka_has_room()) {
        ngx_http_notifyhub_start_failed(r, NGX_BUSY);
        return;
    }

    to_text = ngx_http_notifyhub_send_to(r, send);
    if (to_text == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    data_text = ngx_http_notifyhub_json_field(ctx->json, "data");
    metadata_text = ngx_http_notifyhub_json_field(ctx->json, "metadata");

    /*
     * The fingerprint that detects a reused idempotency key is the hash of
     * the canonical body: spacing, member order and number spelling do not
     * change it.
     */
    if (send->idempotency_key) {
        if (nh_json_canonical(ctx->json, &canonical, NULL) != 0) {
            goto failed;
        }

        nh_sha256(canonical, ngx_strlen(canonical), request_hash);
        free(canonical);
    }

    /* A scheduled notification is queued by its worker when it is due. */

    now = nh_time_now_ms();
    nh_time_format_rfc3339(now, created);

    a->scheduled = send->scheduled_at_ms > now;

    a->reply = ngx_http_notifyhub_accepted_json(r, a->id, send,
                                                a->scheduled, to_text,
                                                data_text, metadata_text,
                                                created);
    if (a->reply.data == NULL) {
        goto failed;
    }

    ngx_memzero(lengths, sizeof(lengths));
    ngx_memzero(formats, sizeof(formats));

    values[0] = a->tenant_id;
    values[1] = a->id;
    values[2] = ngx_http_notifyhub_channels[send->channel];
    values[3] = a->scheduled ? "SCHEDULED" : "PENDING";
    values[4] = ngx_http_notifyhub_priorities[send->priority];
    values[5] = send->recipient ? send->recipient_id : NULL;
    values[6] = to_text;
    values[7] = send->template_id[0] ? send->template_id : NULL;
    values[8] = send->template_id[0] ? send->template_version : NULL;
    values[9] = send->subject;
    values[10] = send->body;
    values[11] = send->html;
    values[12] = data_text;
    values[13] = metadata_text;
    values[14] = send->idempotency_key;
    values[15] = send->idempotency_key ? (const char *) request_hash : NULL;
    lengths[15] = NH_SHA256_LEN;
    formats[15] = 1;
    values[16] = send->scheduled_at[0] ? send->scheduled_at : NULL;
    values[17] = created;
    values[18] = send->idempotency_key ? (const char *) a->reply.data : NULL;
    lengths[18] = a->reply.len;
    formats[18] = 1;

    rc = ngx_http_notifyhub_pg_query(r,
             "SELECT status, body, replayed "
             "FROM nh_notification_insert($1, $2, $3, $4, $5, $6, $7, $8, "
             "$9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)",
             19, values, lengths, formats,
             ngx_http_notifyhub_notification_stored, a);

    cJSON_free(data_text);
    cJSON_free(metadata_text);

    if (rc != NGX_OK) {
        ngx_http_notifyhub_start_failed(r, rc);
    }

    return;

failed:

    cJSON_free(data_text);
    cJSON_free(metadata_text);
    ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
}


/*
 * Builds the 202 body of a notification that is about to be stored: the
 * notification object as a read of its row returns it. to, data and
 * metadata are JSON text or NULL. Returns a string with NULL data when
 * memory runs out.
 */
ngx_str_t
ngx_http_notifyhub_accepted_json(ngx_http_request_t *r, const char *id,
    ngx_http_notifyhub_send_t *send, ngx_uint_t scheduled, const char *to,
    const char *data, const char *metadata, const char *created)
{
    ngx_str_t                  v[NGX_HTTP_NOTIFYHUB_NOTIFICATION_NFIELDS];
    ngx_str_t                  out;
    ngx_http_notifyhub_jbuf_t  jb;

    ngx_str_null(&out);
    ngx_memzero(v, sizeof(v));

#define ngx_http_notifyhub_set(i, s)                                          \
    if ((s) != NULL) {                                                        \
        v[i].data = (u_char *) (s);                                           \
        v[i].len = ngx_strlen(s);                                             \
    }

    ngx_http_notifyhub_set(0, id);
    ngx_http_notifyhub_set(1, ngx_http_notifyhub_channels[send->channel]);
    ngx_http_notifyhub_set(2, scheduled ? "SCHEDULED" : "PENDING");
    ngx_http_notifyhub_set(3, ngx_http_notifyhub_priorities[send->priority]);
    if (send->recipient) {
        ngx_http_notifyhub_set(4, send->recipient_id);
    }

    ngx_http_notifyhub_set(5, to);

    if (send->template_id[0] != '\0') {
        ngx_http_notifyhub_set(6, send->template_id);
        ngx_http_notifyhub_set(7, send->template_version);
    }

    ngx_http_notifyhub_set(8, send->subject);
    ngx_http_notifyhub_set(9, send->body);
    ngx_http_notifyhub_set(10, send->html);
    ngx_http_notifyhub_set(11, data);
    ngx_http_notifyhub_set(12, metadata);
    ngx_http_notifyhub_set(13, send->idempotency_key);

    if (send->scheduled_at[0] != '\0') {
        ngx_http_notifyhub_set(14, send->scheduled_at);
    }

    ngx_http_notifyhub_set(15, "0");
    ngx_http_notifyhub_set(20, created);
    ngx_http_notifyhub_set(21, created);

#undef ngx_http_notifyhub_set

    if (ngx_http_notifyhub_jbuf_init(&jb, r->pool, 1024) != NGX_OK
        || ngx_http_notifyhub_notification_write(&jb, v, 0) != NGX_OK)
    {
        return out;
    }

    out.data = jb.start;
    out.len = jb.pos - jb.start;

    return out;
}


/*
 * Reads and checks the fields of one send request, the object item, into
 * send and records each failure in ctx->details. The Idempotency-Key
 * header is read only when use_header is set. The strings in send point
 * into item or the request pool.
 */
void
ngx_http_notifyhub_validate_send(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx, cJSON *item, ngx_uint_t use_header,
    ngx_http_notifyhub_send_t *send)
{
    u_char  uuid[NH_UUID_LEN];
    cJSON  *to, *content, *template_id, *recipient;

    ngx_memzero(send, sizeof(ngx_http_notifyhub_send_t));

    send->channel = ngx_http_notifyhub_enum_field(ctx, item, "channel",
                                            "channel",
                                            ngx_http_notifyhub_channels, -1);

    /*
     * Exactly one of to and recipientId. The caller reads the address of
     * a recipient before the notification is stored.
     */
    recipient = cJSON_GetObjectItemCaseSensitive(item, "recipientId");
    to = NULL;

    if (recipient == NULL || cJSON_IsNull(recipient)) {
        to = ngx_http_notifyhub_object_field(ctx, item, "to", "to", 1);

    } else if (!cJSON_IsString(recipient)) {
        ngx_http_notifyhub_invalid(ctx, "recipientId", "invalid_type");

    } else if (nh_uuid_parse(recipient->valuestring,
                             ngx_strlen(recipient->valuestring), uuid)
               != 0)
    {
        ngx_http_notifyhub_invalid(ctx, "recipientId", "invalid_format");

    } else {
        send->recipient = 1;
        nh_uuid_format(uuid, send->recipient_id);
    }

    if (recipient && !cJSON_IsNull(recipient)
        && cJSON_GetObjectItemCaseSensitive(item, "to"))
    {
        ngx_http_notifyhub_invalid(ctx, "to", "conflicts_with_recipientId");
    }

    /* Exactly one of templateId and content. */
    template_id = cJSON_GetObjectItemCaseSensitive(item, "templateId");
    content = NULL;

    if (template_id == NULL || cJSON_IsNull(template_id)) {
        content = ngx_http_notifyhub_object_field(ctx, item, "content",
                                                  "content", 1);

    } else {
        ngx_http_notifyhub_validate_template_id(ctx, template_id, send);

        if (cJSON_GetObjectItemCaseSensitive(item, "content")) {
            ngx_http_notifyhub_invalid(ctx, "content",
                                       "conflicts_with_templateId");
        }
    }

    /* The address and the content rules depend on a valid channel. */
    if (send->channel >= 0) {
        if (to) {
            ngx_http_notifyhub_validate_address(ctx, to, send);
        }

        if (content) {
            ngx_http_notifyhub_validate_content(ctx, item, content, send);
        }
    }

    (void) ngx_http_notifyhub_object_field(ctx, item, "data", "data", 0);
    (void) ngx_http_notifyhub_object_field(ctx, item, "metadata",
                                           "metadata", 0);

    send->priority = ngx_http_notifyhub_enum_field(ctx, item,
                                          "priority", "priority",
                                          ngx_http_notifyhub_priorities, 1);

    ngx_http_notifyhub_validate_schedule(ctx, item, send);

    send->idempotency_key = ngx_http_notifyhub_idempotency_key(r, ctx, item,
                                                           use_header);
}


/* templateId: a UUID in any case, kept in canonical form. */
static void
ngx_http_notifyhub_validate_template_id(ngx_http_notifyhub_ctx_t *ctx,
    cJSON *item, ngx_http_notifyhub_send_t *send)
{
    u_char  uuid[NH_UUID_LEN];

    if (!cJSON_IsString(item)) {
        ngx_http_notifyhub_invalid(ctx, "templateId", "invalid_type");
        return;
    }

    if (nh_uuid_parse(item->valuestring, ngx_strlen(item->valuestring), uuid)
        != 0)
    {
        ngx_http_notifyhub_invalid(ctx, "templateId", "invalid_format");
        return;
    }

    nh_uuid_format(uuid, send->template_id);
}


/* to.email, to.phone (E.164) or to.deviceToken, by channel. */
static void
ngx_http_notifyhub_validate_address(ngx_http_notifyhub_ctx_t *ctx,
    cJSON *to, ngx_http_notifyhub_send_t *send)
{
    u_char       c;
    size_t       i, len;
    const char  *name, *path, *address;

    name = ngx_http_notifyhub_address_fields[send->channel];
    path = ngx_http_notifyhub_address_paths[send->channel];

    address = ngx_http_notifyhub_string_field(ctx, to, name, path, 1, 1,
                                 NGX_HTTP_NOTIFYHUB_DEVICE_TOKEN_MAX);
    if (address == NULL) {
        return;
    }

    len = ngx_strlen(address);

    switch (send->channel) {

    case NGX_HTTP_NOTIFYHUB_EMAIL:
        if (len > NH_EMAIL_MAX || !nh_email_is_valid(address, len)) {
            ngx_http_notifyhub_invalid(ctx, path, "invalid_format");
            return;
        }
        break;

    case NGX_HTTP_NOTIFYHUB_SMS:
        if (!nh_phone_is_e164(address, len)) {
            ngx_http_notifyhub_invalid(ctx, path, "invalid_format");
            return;
        }
        break;

    default: /* NGX_HTTP_NOTIFYHUB_PUSH */

        /* FCM registration tokens use base64url characters and ":". */
        for (i = 0; i < len; i++) {
            c = (u_char) address[i];

            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
                  || (c >= '0' && c <= '9') || c == '-' || c == '_'
                  || c == ':' || c == '.'))
            {
                ngx_http_notifyhub_invalid(ctx, path, "invalid_format");
                return;
            }
        }
        break;
    }

    send->address = address;
}


/*
 * Checks content.subject, body and html by channel. An email needs a
 * subject and may have html. An SMS is a body of at most 10 parts. A push
 * has a body, an optional title in subject, and at most 4 KiB of title,
 * body and data.
 */
static void
ngx_http_notifyhub_validate_content(ngx_http_notifyhub_ctx_t *ctx,
    cJSON *item, cJSON *content, ngx_http_notifyhub_send_t *send)
{
    int                 parts;
    char               *data;
    size_t              units, size;
    nh_sms_encoding_e   encoding;

    send->body = ngx_http_notifyhub_string_field(ctx, content, "body",
                                    "content.body", 1, 1,
                                    NGX_HTTP_NOTIFYHUB_BODY_MAX);

    switch (send->channel) {

    case NGX_HTTP_NOTIFYHUB_EMAIL:
        send->subject = ngx_http_notifyhub_string_field(ctx, content,
                                    "subject", "content.subject", 1, 1,
                                    NGX_HTTP_NOTIFYHUB_SUBJECT_MAX);
        send->html = ngx_http_notifyhub_string_field(ctx, content, "html",
                                    "content.html", 0, 0,
                                    NGX_HTTP_NOTIFYHUB_BODY_MAX);
        return;

    case NGX_HTTP_NOTIFYHUB_SMS:
        if (cJSON_GetObjectItemCaseSensitive(content, "subject")) {
            ngx_http_notifyhub_invalid(ctx, "content.subject", "not_allowed");
        }

        if (cJSON_GetObjectItemCaseSensitive(content, "html")) {
            ngx_http_notifyhub_invalid(ctx, "content.html", "not_allowed");
        }

        if (send->body) {
            parts = nh_sms_parts(send->body, ngx_strlen(send->body),
                                 &encoding, &units);
            if (parts > NGX_HTTP_NOTIFYHUB_SMS_PARTS_MAX) {
                ngx_http_notifyhub_invalid(ctx, "content.body", "too_long");
                send->body = NULL;
            }
        }
        return;

    default: /* NGX_HTTP_NOTIFYHUB_PUSH */
        send->subject = ngx_http_notifyhub_string_field(ctx, content,
                                    "subject", "content.subject", 0, 1,
                                    NGX_HTTP_NOTIFYHUB_PUSH_TITLE_MAX);

        if (cJSON_GetObjectItemCaseSensitive(content, "html")) {
            ngx_http_notifyhub_invalid(ctx, "content.html", "not_allowed");
        }

        if (send->body == NULL) {
            return;
        }

        size = ngx_strlen(send->body)
               + (send->subject ? ngx_strlen(send->subject) : 0);

        data = ngx_http_notifyhub_json_field(item, "data");
        if (data) {
            size += ngx_strlen(data);
            cJSON_free(data);
        }

        if (size > NGX_HTTP_NOTIFYHUB_PUSH_PAYLOAD_MAX) {
            ngx_http_notifyhub_invalid(ctx, "content", "too_large");
        }
        return;
    }
}


/*
 * scheduledAt: RFC 3339, at most a year ahead. A time in the past sends at
 * once. The normalised UTC text goes to the database.
 */
static void
ngx_http_notifyhub_validate_schedule(ngx_http_notifyhub_ctx_t *ctx,
    cJSON *item, ngx_http_notifyhub_send_t *send)
{
    int64_t      at, now;
    const char  *text;

    text = ngx_http_notifyhub_string_field(ctx, item, "scheduledAt",
                                           "scheduledAt", 0, 1, 64);
    if (text == NULL) {
        return;
    }

    if (nh_time_parse_rfc3339(text, ngx_strlen(text), &at) != 0) {
        ngx_http_notifyhub_invalid(ctx, "scheduledAt", "invalid_format");
        return;
    }

    now = nh_time_now_ms();

    if (at - now > NGX_HTTP_NOTIFYHUB_SCHEDULE_MAX_MS) {
        ngx_http_notifyhub_invalid(ctx, "scheduledAt", "too_far");
        return;
    }

    send->scheduled_at_ms = at;
    nh_time_format_rfc3339(at, send->scheduled_at);
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

    if (ngx_http_notifyhub_pg_status(r, res, 3, "nh_notification_insert")
        != NGX_OK)
    {
        return;
    }

    status = ngx_atoi((u_char *) PQgetvalue(res, 0, 0),
                      PQgetlength(res, 0, 0));
    replayed = PQgetvalue(res, 0, 2)[0] == 't';

    if (status != NGX_HTTP_ACCEPTED || replayed) {

        if (replayed
            && ngx_http_notifyhub_add_header(r, "Idempotent-Replayed", "true")
               != NGX_OK)
        {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        ngx_http_finalize_request(r, ngx_http_notifyhub_reply_result(r, res));
        return;
    }

    /*
     * The row is stored, so the reply is 202 even if this produce fails,
     * because the outbox sweeper republishes PENDING rows.
     */
    if (!a->scheduled) {
        (void) ngx_http_notifyhub_kafka_produce(r->connection->log,
                                                a->channel, a->id,
                                                a->tenant_id);
    }

    rc = ngx_http_notifyhub_send_json(r, NGX_HTTP_ACCEPTED, a->reply.data,
                                      a->reply.len);
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
             "SELECT " NGX_HTTP_NOTIFYHUB_NOTIFICATION_COLUMNS
             " FROM notifications n WHERE n.tenant_id = $1 AND n.id = $2",
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
    ngx_int_t                  rc;
    ngx_http_notifyhub_jbuf_t  jb;

    if (ngx_http_notifyhub_pg_rows(r, res, "notification get") != NGX_OK) {
        return;
    }

    if (PQntuples(res) == 0) {
        rc = ngx_http_notifyhub_send_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                           "notification not found");
        ngx_http_finalize_request(r, rc);
        return;
    }

    if (ngx_http_notifyhub_jbuf_init(&jb, r->pool, 2048) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    rc = ngx_http_notifyhub_notification_row(&jb, res, 0, 0);

    if (rc != NGX_OK) {
        if (rc == NGX_DECLINED) {
            ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                          "notifyhub: unexpected notification columns");
        }

        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    rc = ngx_http_notifyhub_send_json(r, NGX_HTTP_OK, jb.start,
                                      jb.pos - jb.start);
    ngx_http_finalize_request(r, rc);
}


/*
 * Reads the idempotency key from the idempotencyKey field of item or, when
 * use_header is set, the Idempotency-Key header; both present and
 * different is invalid.
 */
static const char *
ngx_http_notifyhub_idempotency_key(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx, cJSON *item, ngx_uint_t use_header)
{
    u_char           *p;
    const char       *field;
    ngx_table_elt_t  *h;

    field = ngx_http_notifyhub_string_field(ctx, item, "idempotencyKey",
                                    "idempotencyKey", 0, 1,
                                    NGX_HTTP_NOTIFYHUB_IDEMPOTENCY_KEY_MAX);

    if (!use_header) {
        return field;
    }

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


/*
 * Returns an object field of object as compact JSON text (free with
 * cJSON_free), or NULL when it is absent or not an object.
 */
char *
ngx_http_notifyhub_json_field(cJSON *object, const char *name)
{
    cJSON  *field;

    field = cJSON_GetObjectItemCaseSensitive(object, name);
    if (!cJSON_IsObject(field)) {
        return NULL;
    }

    return cJSON_PrintUnformatted(field);
}
