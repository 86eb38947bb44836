
/*
 * Dead letters: the keyset list, one dead letter, and the replay that
 * queues its notification for a fresh cycle of attempts.
 */


#include "ngx_http_notifyhub_module.h"


/* The name that binds a cursor to the dead-letter list. */
#define NGX_HTTP_NOTIFYHUB_DEAD_LETTERS_SCOPE  "dead_letters"


static void ngx_http_notifyhub_dead_letter_list_authorized(
    ngx_http_request_t *r, ngx_http_notifyhub_key_t *key);
static void ngx_http_notifyhub_dead_letter_list_done(ngx_http_request_t *r,
    PGresult *res, void *data);
static void ngx_http_notifyhub_dead_letter_get_authorized(
    ngx_http_request_t *r, ngx_http_notifyhub_key_t *key);
static void ngx_http_notifyhub_dead_letter_replay_authorized(
    ngx_http_request_t *r, ngx_http_notifyhub_key_t *key);
static void ngx_http_notifyhub_dead_letter_replay_done(ngx_http_request_t *r,
    PGresult *res, void *data);


static const char  *ngx_http_notifyhub_dead_letter_channels[] = {
    "EMAIL", "SMS", "PUSH", NULL
};


void
ngx_http_notifyhub_dead_letter_list(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx)
{
    ngx_http_notifyhub_authenticate(r,
        NGX_HTTP_NOTIFYHUB_SCOPE_NOTIFICATIONS_READ,
        ngx_http_notifyhub_dead_letter_list_authorized);
}


/*
 * Reads ?limit=, ?cursor= and ?channel= (EMAIL, SMS or PUSH in any case)
 * and runs nh_dead_letter_list.
 */
static void
ngx_http_notifyhub_dead_letter_list_authorized(ngx_http_request_t *r,
    ngx_http_notifyhub_key_t *key)
{
    char                        tenant_id[NH_UUID_STR_LEN + 1];
    char                        limit[NGX_INT_T_LEN + 1];
    char                        after_usec[NGX_INT64_LEN + 1];
    char                        after_id[NH_UUID_STR_LEN + 1];
    ngx_int_t                   rc;
    ngx_str_t                   value;
    ngx_uint_t                  i;
    const char                 *values[5];
    ngx_http_notifyhub_ctx_t   *ctx;
    ngx_http_notifyhub_page_t   page;

    ctx = ngx_http_get_module_ctx(r, ngx_http_notifyhub_module);

    if (ngx_http_notifyhub_page_args(r, ctx,
                                     NGX_HTTP_NOTIFYHUB_DEAD_LETTERS_SCOPE,
                                     &page)
        != NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    values[4] = NULL;

    rc = ngx_http_notifyhub_query_arg(r, "channel", &value);

    if (rc == NGX_ERROR) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (rc == NGX_OK) {
        for (i = 0; ngx_http_notifyhub_dead_letter_channels[i]; i++) {
            if (value.len
                == ngx_strlen(ngx_http_notifyhub_dead_letter_channels[i])
                && ngx_strncasecmp(value.data, (u_char *)
                       ngx_http_notifyhub_dead_letter_channels[i],
                       value.len)
                   == 0)
            {
                values[4] = ngx_http_notifyhub_dead_letter_channels[i];
                break;
            }
        }

        if (values[4] == NULL) {
            ngx_http_notifyhub_invalid(ctx, "channel", "invalid_value");
        }
    }

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
             "FROM nh_dead_letter_list($1, $2, $3, $4, $5)",
             5, values, NULL, NULL,
             ngx_http_notifyhub_dead_letter_list_done, NULL);

    if (rc != NGX_OK) {
        ngx_http_notifyhub_start_failed(r, rc);
    }
}


static void
ngx_http_notifyhub_dead_letter_list_done(ngx_http_request_t *r,
    PGresult *res, void *data)
{
    ngx_http_notifyhub_send_page(r, res,
                                 NGX_HTTP_NOTIFYHUB_DEAD_LETTERS_SCOPE,
                                 "nh_dead_letter_list");
}


void
ngx_http_notifyhub_dead_letter_get(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx)
{
    ngx_http_notifyhub_authenticate(r,
        NGX_HTTP_NOTIFYHUB_SCOPE_NOTIFICATIONS_READ,
        ngx_http_notifyhub_dead_letter_get_authorized);
}


static void
ngx_http_notifyhub_dead_letter_get_authorized(ngx_http_request_t *r,
    ngx_http_notifyhub_key_t *key)
{
    char                       id[NH_UUID_STR_LEN + 1];
    char                       tenant_id[NH_UUID_STR_LEN + 1];
    ngx_int_t                  rc;
    const char                *values[2];
    ngx_http_notifyhub_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_notifyhub_module);

    if (ngx_http_notifyhub_path_uuid(r, ctx, 0, id, "dead letter not found")
        != NGX_OK)
    {
        return;
    }

    nh_uuid_format(key->tenant_id, tenant_id);

    values[0] = tenant_id;
    values[1] = id;

    rc = ngx_http_notifyhub_pg_query(r,
             "SELECT status, body FROM nh_dead_letter_get($1, $2)",
             2, values, NULL, NULL,
             ngx_http_notifyhub_reply_done,
             (void *) "nh_dead_letter_get");

    if (rc != NGX_OK) {
        ngx_http_notifyhub_start_failed(r, rc);
    }
}


void
ngx_http_notifyhub_dead_letter_replay(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx)
{
    ngx_http_notifyhub_authenticate(r,
        NGX_HTTP_NOTIFYHUB_SCOPE_NOTIFICATIONS_WRITE,
        ngx_http_notifyhub_dead_letter_replay_authorized);
}


/*
 * A full Kafka queue is a 503 before anything changes, as for a new
 * notification, because the replayed notification is produced after the
 * commit.
 */
static void
ngx_http_notifyhub_dead_letter_replay_authorized(ngx_http_request_t *r,
    ngx_http_notifyhub_key_t *key)
{
    char                       id[NH_UUID_STR_LEN + 1];
    char                      *tenant_id;
    ngx_int_t                  rc;
    const char                *values[2];
    ngx_http_notifyhub_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_notifyhub_module);

    if (ngx_http_notifyhub_path_uuid(r, ctx, 0, id, "dead letter not found")
        != NGX_OK)
    {
        return;
    }

    if (!ngx_http_notifyhub_kafka_has_room()) {
        ngx_http_notifyhub_start_failed(r, NGX_BUSY);
        return;
    }

    /* The tenant id outlives this call: the produce needs it. */
    tenant_id = ngx_pnalloc(r->pool, NH_UUID_STR_LEN + 1);
    if (tenant_id == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    nh_uuid_format(key->tenant_id, tenant_id);

    values[0] = tenant_id;
    values[1] = id;

    rc = ngx_http_notifyhub_pg_query(r,
             "SELECT status, body, notification_id, channel "
             "FROM nh_dead_letter_replay($1, $2)",
             2, values, NULL, NULL,
             ngx_http_notifyhub_dead_letter_replay_done, tenant_id);

    if (rc != NGX_OK) {
        ngx_http_notifyhub_start_failed(r, rc);
    }
}


/*
 * Produces the replayed notification to its channel's topic and sends the
 * reply. The notification is PENDING already, so a failed produce is left
 * to the outbox sweeper, as for a new notification.
 */
static void
ngx_http_notifyhub_dead_letter_replay_done(ngx_http_request_t *r,
    PGresult *res, void *data)
{
    char                          *tenant_id = data;
    char                          *channel;
    ngx_uint_t                     status;
    ngx_http_notifyhub_channel_e   ch;

    if (ngx_http_notifyhub_pg_status(r, res, 4, "nh_dead_letter_replay")
        != NGX_OK)
    {
        return;
    }

    status = ngx_atoi((u_char *) PQgetvalue(res, 0, 0),
                      PQgetlength(res, 0, 0));

    if (status == NGX_HTTP_ACCEPTED && !PQgetisnull(res, 0, 2)) {
        channel = PQgetvalue(res, 0, 3);

        ch = ngx_strcmp(channel, "EMAIL") == 0 ? NGX_HTTP_NOTIFYHUB_EMAIL
             : ngx_strcmp(channel, "SMS") == 0 ? NGX_HTTP_NOTIFYHUB_SMS
             : NGX_HTTP_NOTIFYHUB_PUSH;

        (void) ngx_http_notifyhub_kafka_produce(r->connection->log, ch,
                                                PQgetvalue(res, 0, 2),
                                                tenant_id);
    }

    ngx_http_finalize_request(r, ngx_http_notifyhub_reply_result(r, res));
}
