#ifndef _NGX_HTTP_NOTIFYHUB_MODULE_H_INCLUDED_
#define _NGX_HTTP_NOTIFYHUB_MODULE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <libpq-fe.h>
#include <cjson/cJSON.h>

#include "nh_crypto.h"
#include "nh_time.h"
#include "nh_uuid.h"


#define NGX_HTTP_NOTIFYHUB_REQUEST_ID_MAX  128
#define NGX_HTTP_NOTIFYHUB_UNPROCESSABLE   422
/* The request bodies that routes take. */
#define NGX_HTTP_NOTIFYHUB_BODY_JSON       1
#define NGX_HTTP_NOTIFYHUB_BODY_FORM       2
/* The most "*" segments a route pattern captures. */
#define NGX_HTTP_NOTIFYHUB_PATH_IDS        2

/* The channels, in the order of the Kafka topic handles. */
typedef enum {
    NGX_HTTP_NOTIFYHUB_EMAIL = 0,
    NGX_HTTP_NOTIFYHUB_SMS,
    NGX_HTTP_NOTIFYHUB_PUSH,
    NGX_HTTP_NOTIFYHUB_NCHANNELS
} ngx_http_notifyhub_channel_e;


typedef struct {
    ngx_str_t                  pg_dsn;
    ngx_uint_t                 pg_pool_size;
    ngx_uint_t                 pg_queue_size;
    ngx_msec_t                 pg_connect_timeout;
    ngx_msec_t                 pg_query_timeout;
    ngx_msec_t                 pg_queue_timeout;

    /* The DSN as libpq keywords and values, with hostaddr resolved. */
    const char               **pg_keywords;
    const char               **pg_values;

    ngx_str_t                  kafka_brokers;
    ngx_str_t                  kafka_topic_prefix;
    ngx_uint_t                 kafka_queue_size;
    ngx_array_t               *kafka_properties;   /* of ngx_keyval_t */

    ngx_thread_pool_t         *password_thread_pool;
    ngx_uint_t                 password_iterations;
    time_t                     session_ttl;

    ngx_str_t                  cursor_secret;    /* HMAC key of cursors */

    /* Provider callbacks: the secrets that sign them, and the URL that
     * Twilio signs (scheme, host and port that Twilio requests). */
    ngx_str_t                  mailgun_signing_key;
    ngx_str_t                  twilio_auth_token;
    ngx_str_t                  public_url;

    ngx_shm_zone_t            *key_cache_zone;
    time_t                     key_cache_ttl;
    ngx_msec_t                 key_cache_poll;

    ngx_flag_t                 enabled;
} ngx_http_notifyhub_main_conf_t;


/* API-key scopes, one bit each; "*" is every bit. */
#define NGX_HTTP_NOTIFYHUB_SCOPE_NOTIFICATIONS_READ   0x0001
#define NGX_HTTP_NOTIFYHUB_SCOPE_NOTIFICATIONS_WRITE  0x0002
#define NGX_HTTP_NOTIFYHUB_SCOPE_TEMPLATES_READ       0x0004
#define NGX_HTTP_NOTIFYHUB_SCOPE_TEMPLATES_WRITE      0x0008
#define NGX_HTTP_NOTIFYHUB_SCOPE_RECIPIENTS_READ      0x0010
#define NGX_HTTP_NOTIFYHUB_SCOPE_RECIPIENTS_WRITE     0x0020
#define NGX_HTTP_NOTIFYHUB_SCOPE_WEBHOOKS_READ        0x0040
#define NGX_HTTP_NOTIFYHUB_SCOPE_WEBHOOKS_WRITE       0x0080
#define NGX_HTTP_NOTIFYHUB_SCOPE_METRICS_READ         0x0100


/* The key cache entry of one API key hash. */
typedef struct {
    u_char                     key_id[NH_UUID_LEN];
    u_char                     tenant_id[NH_UUID_LEN];
    int64_t                    expires_at_ms;   /* 0: never */
    uint32_t                   scopes;
    unsigned                   found:1;         /* 0: no such key */
    unsigned                   revoked:1;
    unsigned                   tenant_active:1;
} ngx_http_notifyhub_key_t;


typedef struct ngx_http_notifyhub_ctx_s  ngx_http_notifyhub_ctx_t;

typedef void (*ngx_http_notifyhub_route_pt)(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx);


/* Per-request state. */
struct ngx_http_notifyhub_ctx_s {
    ngx_str_t                  request_id;
    u_char                     request_id_data[NGX_HTTP_NOTIFYHUB_REQUEST_ID_MAX];

    ngx_str_t                  body;          /* raw request body */
    cJSON                     *json;          /* parsed body, or NULL */

    ngx_str_t                  path_ids[NGX_HTTP_NOTIFYHUB_PATH_IDS];
    ngx_http_notifyhub_route_pt  handler;
    ngx_uint_t                 takes_body;

    cJSON                     *details;       /* validation failures */

    /* The state the handlers carry between asynchronous steps. */
    void                      *state;
};


typedef struct ngx_http_notifyhub_kdf_s  ngx_http_notifyhub_kdf_t;

typedef void (*ngx_http_notifyhub_kdf_done_pt)(ngx_http_request_t *r,
    ngx_http_notifyhub_kdf_t *kdf);

/* A password hash or check, handed to a thread pool. */
struct ngx_http_notifyhub_kdf_s {
    ngx_http_request_t               *request;
    char                             *password;
    size_t                            password_len;
    ngx_uint_t                        iterations;
    ngx_uint_t                        verify;
    char                              encoded[NH_PASSWORD_HASH_MAX];
    int                               result;
    ngx_http_notifyhub_kdf_done_pt    done;
};


/* The request's API key passed authentication and the scope check. */
typedef void (*ngx_http_notifyhub_auth_pt)(ngx_http_request_t *r,
    ngx_http_notifyhub_key_t *key);


/* A PostgreSQL query has finished; res is NULL when it could not run. */
typedef void (*ngx_http_notifyhub_pg_handler_pt)(ngx_http_request_t *r,
    PGresult *res, void *data);


extern ngx_module_t  ngx_http_notifyhub_module;


/* ngx_http_notifyhub_pg.c */
ngx_int_t ngx_http_notifyhub_pg_init_process(ngx_cycle_t *cycle,
    ngx_http_notifyhub_main_conf_t *nmcf);
void ngx_http_notifyhub_pg_exit_process(ngx_cycle_t *cycle);
ngx_int_t ngx_http_notifyhub_pg_query(ngx_http_request_t *r,
    const char *sql, int nparams, const char *const *values,
    const int *lengths, const int *formats,
    ngx_http_notifyhub_pg_handler_pt handler, void *data);
ngx_uint_t ngx_http_notifyhub_pg_ready(void);
char *ngx_http_notifyhub_pg_parse_dsn(ngx_conf_t *cf,
    ngx_http_notifyhub_main_conf_t *nmcf);

/* ngx_http_notifyhub_kafka.c */
ngx_int_t ngx_http_notifyhub_kafka_init_process(ngx_cycle_t *cycle,
    ngx_http_notifyhub_main_conf_t *nmcf);
void ngx_http_notifyhub_kafka_exit_process(ngx_cycle_t *cycle);
ngx_int_t ngx_http_notifyhub_kafka_has_room(void);
ngx_uint_t ngx_http_notifyhub_kafka_room(void);
ngx_int_t ngx_http_notifyhub_kafka_produce(ngx_log_t *log,
    ngx_http_notifyhub_channel_e channel, const char *id,
    const char *tenant_id);
ngx_uint_t ngx_http_notifyhub_kafka_ready(void);

/* ngx_http_notifyhub_reply.c */
void ngx_http_notifyhub_request_id(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx);
ngx_table_elt_t *ngx_http_notifyhub_find_header(ngx_http_request_t *r,
    const char *lowcase_name, size_t len);
ngx_int_t ngx_http_notifyhub_send_json(ngx_http_request_t *r,
    ngx_uint_t status, const u_char *body, size_t len);
ngx_int_t ngx_http_notifyhub_send_cjson(ngx_http_request_t *r,
    ngx_uint_t status, cJSON *json);
ngx_int_t ngx_http_notifyhub_send_error(ngx_http_request_t *r,
    ngx_uint_t status, const char *code, const char *message);
ngx_int_t ngx_http_notifyhub_send_error_object(ngx_http_request_t *r,
    ngx_uint_t status, const u_char *error, size_t len);
ngx_int_t ngx_http_notifyhub_send_invalid(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx);
ngx_int_t ngx_http_notifyhub_send_error_details(ngx_http_request_t *r,
    ngx_uint_t status, const char *code, const char *message,
    ngx_http_notifyhub_ctx_t *ctx);
ngx_int_t ngx_http_notifyhub_add_header(ngx_http_request_t *r,
    const char *name, const char *value);
void ngx_http_notifyhub_finish(ngx_http_request_t *r, ngx_int_t rc);
ngx_uint_t ngx_http_notifyhub_error_status(ngx_http_request_t *r,
    const char **code, const char **message);

/* ngx_http_notifyhub_validate.c */
void ngx_http_notifyhub_invalid(ngx_http_notifyhub_ctx_t *ctx,
    const char *field, const char *issue);
const char *ngx_http_notifyhub_string_field(ngx_http_notifyhub_ctx_t *ctx,
    cJSON *object, const char *name, const char *path, ngx_uint_t required,
    size_t min_len, size_t max_len);
cJSON *ngx_http_notifyhub_object_field(ngx_http_notifyhub_ctx_t *ctx,
    cJSON *object, const char *name, const char *path, ngx_uint_t required);
ngx_int_t ngx_http_notifyhub_enum_field(ngx_http_notifyhub_ctx_t *ctx,
    cJSON *object, const char *name, const char *path,
    const char *const *values, ngx_int_t dflt);
u_char *ngx_http_notifyhub_bearer(ngx_http_request_t *r, size_t *len);
ngx_int_t ngx_http_notifyhub_pg_rows(ngx_http_request_t *r, PGresult *res,
    const char *what);
ngx_int_t ngx_http_notifyhub_pg_status(ngx_http_request_t *r, PGresult *res,
    int ncols, const char *what);
ngx_int_t ngx_http_notifyhub_reply_result(ngx_http_request_t *r,
    PGresult *res);
void ngx_http_notifyhub_start_failed(ngx_http_request_t *r, ngx_int_t rc);

/* ngx_http_notifyhub_keycache.c */
ngx_int_t ngx_http_notifyhub_keycache_zone(ngx_conf_t *cf, ngx_str_t *name,
    size_t size, ngx_http_notifyhub_main_conf_t *nmcf);
ngx_int_t ngx_http_notifyhub_keycache_init_process(ngx_cycle_t *cycle,
    ngx_http_notifyhub_main_conf_t *nmcf);
void ngx_http_notifyhub_authenticate(ngx_http_request_t *r, ngx_uint_t scope,
    ngx_http_notifyhub_auth_pt done);

/* ngx_http_notifyhub_kdf.c */
ngx_int_t ngx_http_notifyhub_kdf_start(ngx_http_request_t *r,
    const char *password, const char *encoded,
    ngx_http_notifyhub_kdf_done_pt done);

/* ngx_http_notifyhub_auth.c */
void ngx_http_notifyhub_signup(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx);
void ngx_http_notifyhub_login(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx);
void ngx_http_notifyhub_logout(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx);
ngx_int_t ngx_http_notifyhub_api_key_hash(ngx_http_request_t *r,
    u_char hash[NH_SHA256_LEN]);
void ngx_http_notifyhub_send_login_throttled(ngx_http_request_t *r,
    ngx_int_t seconds);

/* ngx_http_notifyhub_cursor.c */
ngx_int_t ngx_http_notifyhub_query_arg(ngx_http_request_t *r,
    const char *name, ngx_str_t *value);

/* ?limit= when it is absent, and its maximum. */
#define NGX_HTTP_NOTIFYHUB_PAGE_DEFAULT  20
#define NGX_HTTP_NOTIFYHUB_PAGE_MAX      100

/* The page that a list request selects. */
typedef struct {
    ngx_uint_t                 limit;
    ngx_uint_t                 has_cursor;
    /* The position of the previous page's last row: created_at, id. */
    int64_t                    after_usec;
    u_char                     after_id[NH_UUID_LEN];
} ngx_http_notifyhub_page_t;

char *ngx_http_notifyhub_cursor_init_conf(ngx_conf_t *cf,
    ngx_http_notifyhub_main_conf_t *nmcf);
ngx_int_t ngx_http_notifyhub_page_args(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx, const char *scope,
    ngx_http_notifyhub_page_t *page);
ngx_int_t ngx_http_notifyhub_cursor_encode(ngx_http_request_t *r,
    const char *scope, int64_t usec, const u_char id[NH_UUID_LEN],
    ngx_str_t *cursor);
ngx_int_t ngx_http_notifyhub_cursor_decode(ngx_http_request_t *r,
    const char *scope, ngx_str_t *cursor, int64_t *usec,
    u_char id[NH_UUID_LEN]);
void ngx_http_notifyhub_send_page(ngx_http_request_t *r, PGresult *res,
    const char *scope, const char *what);

/* ngx_http_notifyhub_profile.c */
void ngx_http_notifyhub_profile_get(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx);
void ngx_http_notifyhub_profile_update(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx);

/* ngx_http_notifyhub_tenants.c */
void ngx_http_notifyhub_owner_query(ngx_http_request_t *r, const char *sql,
    const char *what, u_char *token_hash, const char *id1, const char *id2);

/* "nh_" and the first 8 characters of the secret identify a key. */
#define NGX_HTTP_NOTIFYHUB_KEY_PREFIX_LEN  11

ngx_int_t ngx_http_notifyhub_session_hash(ngx_http_request_t *r,
    u_char hash[NH_SHA256_LEN]);
ngx_int_t ngx_http_notifyhub_path_uuid(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx, ngx_uint_t n,
    char id[NH_UUID_STR_LEN + 1], const char *message);
void ngx_http_notifyhub_reply_done(ngx_http_request_t *r, PGresult *res,
    void *data);
void ngx_http_notifyhub_tenant_create(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx);
void ngx_http_notifyhub_tenant_list(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx);
void ngx_http_notifyhub_tenant_get(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx);
void ngx_http_notifyhub_tenant_update(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx);
void ngx_http_notifyhub_tenant_delete(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx);

/* ngx_http_notifyhub_api_keys.c */
void ngx_http_notifyhub_api_key_create(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx);
void ngx_http_notifyhub_api_key_list(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx);
void ngx_http_notifyhub_api_key_revoke(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx);

/* ngx_http_notifyhub_reads.c */
void ngx_http_notifyhub_notification_list(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx);
void ngx_http_notifyhub_notification_logs(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx);
void ngx_http_notifyhub_notification_cancel(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx);
void ngx_http_notifyhub_readyz(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx);

/* ngx_http_notifyhub_dead_letters.c */
void ngx_http_notifyhub_dead_letter_list(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx);
void ngx_http_notifyhub_dead_letter_get(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx);
void ngx_http_notifyhub_dead_letter_replay(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx);

/* ngx_http_notifyhub_templates.c */

/* The largest rendered subject, body or html, in bytes. */
#define NGX_HTTP_NOTIFYHUB_RENDER_MAX  (512 * 1024)

/* A template's current version rendered with a request's data. */
typedef struct {
    ngx_int_t                  version;
    const char                *channel;    /* points into tpl */
    char                      *parts[3];   /* subject, body, html, or NULL */
} ngx_http_notifyhub_rendered_t;

ngx_int_t ngx_http_notifyhub_template_apply(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx, cJSON *tpl, const cJSON *data,
    ngx_http_notifyhub_rendered_t *out);
ngx_int_t ngx_http_notifyhub_template_fill(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx, cJSON *tpl, const cJSON *data,
    ngx_http_notifyhub_rendered_t *out, const char **code,
    const char **message);
void ngx_http_notifyhub_template_create(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx);
void ngx_http_notifyhub_template_list(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx);
void ngx_http_notifyhub_template_get(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx);
void ngx_http_notifyhub_template_update(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx);
void ngx_http_notifyhub_template_delete(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx);
void ngx_http_notifyhub_template_render(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx);

/* ngx_http_notifyhub_json.c */

/* JSON text growing in a pool. */
typedef struct {
    u_char                    *start;
    u_char                    *pos;
    u_char                    *end;
    ngx_pool_t                *pool;
} ngx_http_notifyhub_jbuf_t;

/*
 * The columns of a notification row that ngx_http_notifyhub_notification_row
 * reads, in order, for a query with the notifications row as "n".
 */
#define NGX_HTTP_NOTIFYHUB_NOTIFICATION_COLUMNS                               \
    "n.id, n.channel, n.status, n.priority, n.recipient_id, n.to_address, "   \
    "n.template_id, n.template_version, n.subject, n.body, n.html, n.data, "  \
    "n.metadata, n.idempotency_key, n.scheduled_at, n.attempts, "             \
    "n.next_attempt_at, n.last_error, n.provider, n.provider_message_id, "    \
    "n.created_at, n.updated_at, n.sent_at, n.delivered_at, n.failed_at"
#define NGX_HTTP_NOTIFYHUB_NOTIFICATION_NFIELDS  25
/* The positions of some of those columns. */
#define NGX_HTTP_NOTIFYHUB_NOTIFICATION_ID       0
#define NGX_HTTP_NOTIFYHUB_NOTIFICATION_CREATED  20

ngx_int_t ngx_http_notifyhub_jbuf_init(ngx_http_notifyhub_jbuf_t *jb,
    ngx_pool_t *pool, size_t size);
ngx_int_t ngx_http_notifyhub_jbuf_raw(ngx_http_notifyhub_jbuf_t *jb,
    const void *data, size_t len);
ngx_int_t ngx_http_notifyhub_jbuf_string(ngx_http_notifyhub_jbuf_t *jb,
    const u_char *data, size_t len);
/*
 * Appends the notification object whose member values are given in
 * column order; a value with NULL data is null. Times are PostgreSQL's
 * text form when pg_times is set, else RFC 3339 text. Returns NGX_DECLINED
 * for a time it cannot read.
 */
ngx_int_t ngx_http_notifyhub_notification_write(
    ngx_http_notifyhub_jbuf_t *jb, const ngx_str_t *values,
    ngx_uint_t pg_times);
/*
 * Appends the notification object of a result row whose columns, from
 * col on, are NGX_HTTP_NOTIFYHUB_NOTIFICATION_COLUMNS.
 */
ngx_int_t ngx_http_notifyhub_notification_row(ngx_http_notifyhub_jbuf_t *jb,
    PGresult *res, int row, int col);
/* Reads PostgreSQL's text form of a timestamptz as microseconds. */
ngx_int_t ngx_http_notifyhub_pg_time_usec(const u_char *p, size_t len,
    int64_t *usec);

/* ngx_http_notifyhub_notifications.c */

/* The checked fields of a send request. */
typedef struct {
    ngx_int_t                      channel;
    ngx_int_t                      priority;
    const char                    *address;
    const char                    *subject;
    const char                    *body;
    const char                    *html;
    const char                    *idempotency_key;
    char                           scheduled_at[NH_RFC3339_LEN + 1];
    int64_t                        scheduled_at_ms;     /* 0: not given */
    /* Set when the request names a recipientId instead of "to". */
    ngx_uint_t                     recipient;
    char                           recipient_id[NH_UUID_STR_LEN + 1];
    /* A recipient's push devices: {"deviceTokens": [...]}, else NULL. */
    const char                    *to_json;
    /* With a templateId: the template, and the version rendered. */
    char                           template_id[NH_UUID_STR_LEN + 1];
    char                           template_version[NGX_INT_T_LEN + 1];
} ngx_http_notifyhub_send_t;

/* Names indexed by ngx_http_notifyhub_send_t's channel and priority. */
extern const char  *ngx_http_notifyhub_channels[];
extern const char  *ngx_http_notifyhub_priorities[];
/* The member of "to" that contains the address, by channel. */
extern const char  *ngx_http_notifyhub_address_fields[];

void ngx_http_notifyhub_notification_create(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx);
void ngx_http_notifyhub_notification_get(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx);
void ngx_http_notifyhub_validate_send(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx, cJSON *item, ngx_uint_t use_header,
    ngx_http_notifyhub_send_t *send);
char *ngx_http_notifyhub_json_field(cJSON *object, const char *name);
ngx_int_t ngx_http_notifyhub_send_template(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx, cJSON *item, cJSON *tpl,
    ngx_http_notifyhub_send_t *send, ngx_uint_t *status, const char **code,
    const char **message);
ngx_str_t ngx_http_notifyhub_accepted_json(ngx_http_request_t *r,
    const char *id, ngx_http_notifyhub_send_t *send, ngx_uint_t scheduled,
    const char *to, const char *data, const char *metadata,
    const char *created);
ngx_int_t ngx_http_notifyhub_send_recipient(ngx_http_request_t *r,
    ngx_http_notifyhub_send_t *send, PGresult *res, int row,
    const char **message);
const char *ngx_http_notifyhub_send_to(ngx_http_request_t *r,
    ngx_http_notifyhub_send_t *send);

/* ngx_http_notifyhub_recipients.c */
ngx_int_t ngx_http_notifyhub_recipients_init_process(ngx_cycle_t *cycle);
void ngx_http_notifyhub_recipient_create(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx);
void ngx_http_notifyhub_recipient_list(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx);
void ngx_http_notifyhub_recipient_get(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx);
void ngx_http_notifyhub_recipient_update(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx);
void ngx_http_notifyhub_recipient_delete(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx);
void ngx_http_notifyhub_preferences_get(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx);
void ngx_http_notifyhub_preferences_put(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx);
void ngx_http_notifyhub_preferences_delete(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx);
void ngx_http_notifyhub_device_list(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx);
void ngx_http_notifyhub_device_create(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx);
void ngx_http_notifyhub_device_delete(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx);

/* ngx_http_notifyhub_callbacks.c */
void ngx_http_notifyhub_mailgun_events(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx);
void ngx_http_notifyhub_twilio_status(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx);

/* ngx_http_notifyhub_bulk.c */
void ngx_http_notifyhub_notification_bulk(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx);


#endif /* _NGX_HTTP_NOTIFYHUB_MODULE_H_INCLUDED_ */
