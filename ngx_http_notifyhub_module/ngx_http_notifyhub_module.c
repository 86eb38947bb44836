
/*
 * ngx_http_notifyhub_module: the NotifyHub REST API inside nginx.
 * Directives, the process hooks, routing and request body reading.
 */


#include "ngx_http_notifyhub_module.h"
#include "nh_validate.h"


/*
 * A route: a path pattern in which each "*" matches one non-empty segment
 * and captures it into ctx->path_ids, the methods, and the body the route
 * takes: none (0), JSON or a form.
 */
typedef struct {
    ngx_str_t                     pattern;
    ngx_uint_t                    method;
    ngx_uint_t                    body;
    ngx_http_notifyhub_route_pt   handler;
} ngx_http_notifyhub_route_t;


static void ngx_http_notifyhub_healthz(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx);

static ngx_int_t ngx_http_notifyhub_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_notifyhub_error_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_notifyhub_route(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx, ngx_str_t *allow);
static ngx_uint_t ngx_http_notifyhub_match(ngx_str_t *pattern, ngx_str_t *uri,
    ngx_http_notifyhub_ctx_t *ctx);
static ngx_int_t ngx_http_notifyhub_check_body(ngx_http_request_t *r);
static void ngx_http_notifyhub_body_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_notifyhub_read_body(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx);
static void ngx_http_notifyhub_ctx_cleanup(void *data);

static void *ngx_http_notifyhub_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_notifyhub_init_main_conf(ngx_conf_t *cf, void *conf);
static char *ngx_http_notifyhub_api(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_notifyhub_error(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_notifyhub_thread_pool(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_notifyhub_kafka_property(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_notifyhub_key_cache(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_http_notifyhub_init_process(ngx_cycle_t *cycle);
static void ngx_http_notifyhub_exit_process(ngx_cycle_t *cycle);


static ngx_http_notifyhub_route_t  ngx_http_notifyhub_routes[] = {

    { ngx_string("/api/auth/signup"), NGX_HTTP_POST, 1,
      ngx_http_notifyhub_signup },
    { ngx_string("/api/auth/login"), NGX_HTTP_POST, 1,
      ngx_http_notifyhub_login },
    { ngx_string("/api/auth/logout"), NGX_HTTP_POST, 0,
      ngx_http_notifyhub_logout },

    { ngx_string("/api/profile"), NGX_HTTP_GET|NGX_HTTP_HEAD, 0,
      ngx_http_notifyhub_profile_get },
    { ngx_string("/api/profile"), NGX_HTTP_PATCH, 1,
      ngx_http_notifyhub_profile_update },

    { ngx_string("/api/tenants"), NGX_HTTP_POST, 1,
      ngx_http_notifyhub_tenant_create },
    { ngx_string("/api/tenants"), NGX_HTTP_GET|NGX_HTTP_HEAD, 0,
      ngx_http_notifyhub_tenant_list },
    { ngx_string("/api/tenants/*"), NGX_HTTP_GET|NGX_HTTP_HEAD, 0,
      ngx_http_notifyhub_tenant_get },
    { ngx_string("/api/tenants/*"), NGX_HTTP_PUT, 1,
      ngx_http_notifyhub_tenant_update },
    { ngx_string("/api/tenants/*"), NGX_HTTP_DELETE, 0,
      ngx_http_notifyhub_tenant_delete },

    { ngx_string("/api/tenants/*/api-keys"), NGX_HTTP_POST, 1,
      ngx_http_notifyhub_api_key_create },
    { ngx_string("/api/tenants/*/api-keys"), NGX_HTTP_GET|NGX_HTTP_HEAD, 0,
      ngx_http_notifyhub_api_key_list },
    { ngx_string("/api/tenants/*/api-keys/*"), NGX_HTTP_DELETE, 0,
      ngx_http_notifyhub_api_key_revoke },

    { ngx_string("/api/notifications/bulk"), NGX_HTTP_POST, 1,
      ngx_http_notifyhub_notification_bulk },
    { ngx_string("/api/notifications"), NGX_HTTP_POST, 1,
      ngx_http_notifyhub_notification_create },
    { ngx_string("/api/notifications"), NGX_HTTP_GET|NGX_HTTP_HEAD, 0,
      ngx_http_notifyhub_notification_list },
    { ngx_string("/api/notifications/*"), NGX_HTTP_GET|NGX_HTTP_HEAD, 0,
      ngx_http_notifyhub_notification_get },
    { ngx_string("/api/notifications/*/logs"), NGX_HTTP_GET|NGX_HTTP_HEAD, 0,
      ngx_http_notifyhub_notification_logs },
    { ngx_string("/api/notifications/*/cancel"), NGX_HTTP_POST, 0,
      ngx_http_notifyhub_notification_cancel },

    { ngx_string("/api/dead-letters"), NGX_HTTP_GET|NGX_HTTP_HEAD, 0,
      ngx_http_notifyhub_dead_letter_list },
    { ngx_string("/api/dead-letters/*"), NGX_HTTP_GET|NGX_HTTP_HEAD, 0,
      ngx_http_notifyhub_dead_letter_get },
    { ngx_string("/api/dead-letters/*/replay"), NGX_HTTP_POST, 0,
      ngx_http_notifyhub_dead_letter_replay },

    { ngx_string("/api/templates"), NGX_HTTP_POST, 1,
      ngx_http_notifyhub_template_create },
    { ngx_string("/api/templates"), NGX_HTTP_GET|NGX_HTTP_HEAD, 0,
      ngx_http_notifyhub_template_list },
    { ngx_string("/api/templates/*"), NGX_HTTP_GET|NGX_HTTP_HEAD, 0,
      ngx_http_notifyhub_template_get },
    { ngx_string("/api/templates/*"), NGX_HTTP_PUT, 1,
      ngx_http_notifyhub_template_update },
    { ngx_string("/api/templates/*"), NGX_HTTP_DELETE, 0,
      ngx_http_notifyhub_template_delete },
    { ngx_string("/api/templates/*/render"), NGX_HTTP_POST, 1,
      ngx_http_notifyhub_template_render },

    { ngx_string("/api/recipients"), NGX_HTTP_POST, 1,
      ngx_http_notifyhub_recipient_create },
    { ngx_string("/api/recipients"), NGX_HTTP_GET|NGX_HTTP_HEAD, 0,
      ngx_http_notifyhub_recipient_list },
    { ngx_string("/api/recipients/*"), NGX_HTTP_GET|NGX_HTTP_HEAD, 0,
      ngx_http_notifyhub_recipient_get },
    { ngx_string("/api/recipients/*"), NGX_HTTP_PATCH, 1,
      ngx_http_notifyhub_recipient_update },
    { ngx_string("/api/recipients/*"), NGX_HTTP_DELETE, 0,
      ngx_http_notifyhub_recipient_delete },
    { ngx_string("/api/recipients/*/preferences"),
      NGX_HTTP_GET|NGX_HTTP_HEAD, 0,
      ngx_http_notifyhub_preferences_get },
    { ngx_string("/api/recipients/*/preferences"), NGX_HTTP_PUT, 1,
      ngx_http_notifyhub_preferences_put },
    { ngx_string("/api/recipients/*/preferences"), NGX_HTTP_DELETE, 0,
      ngx_http_notifyhub_preferences_delete },
    { ngx_string("/api/recipients/*/devices"), NGX_HTTP_GET|NGX_HTTP_HEAD, 0,
      ngx_http_notifyhub_device_list },
    { ngx_string("/api/recipients/*/devices"), NGX_HTTP_POST, 1,
      ngx_http_notifyhub_device_create },
    { ngx_string("/api/recipients/*/devices/*"), NGX_HTTP_DELETE, 0,
      ngx_http_notifyhub_device_delete },

    { ngx_string("/api/providers/mailgun/events"), NGX_HTTP_POST,
      NGX_HTTP_NOTIFYHUB_BODY_JSON, ngx_http_notifyhub_mailgun_events },
    { ngx_string("/api/providers/twilio/status"), NGX_HTTP_POST,
      NGX_HTTP_NOTIFYHUB_BODY_FORM, ngx_http_notifyhub_twilio_status },

    { ngx_string("/healthz"), NGX_HTTP_GET|NGX_HTTP_HEAD, 0,
      ngx_http_notifyhub_healthz },
    { ngx_string("/readyz"), NGX_HTTP_GET|NGX_HTTP_HEAD, 0,
      ngx_http_notifyhub_readyz },

    { ngx_null_string, 0, 0, NULL }
};


static ngx_command_t  ngx_http_notifyhub_commands[] = {

    { ngx_string("notifyhub_api"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_notifyhub_api,
      0,
      0,
      NULL },

    { ngx_string("notifyhub_error"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_notifyhub_error,
      0,
      0,
      NULL },

    { ngx_string("notifyhub_pg_dsn"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_notifyhub_main_conf_t, pg_dsn),
      NULL },

    { ngx_string("notifyhub_pg_pool_size"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_notifyhub_main_conf_t, pg_pool_size),
      NULL },

    { ngx_string("notifyhub_pg_queue_size"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_notifyhub_main_conf_t, pg_queue_size),
      NULL },

    { ngx_string("notifyhub_pg_connect_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_notifyhub_main_conf_t, pg_connect_timeout),
      NULL },

    { ngx_string("notifyhub_pg_query_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_notifyhub_main_conf_t, pg_query_timeout),
      NULL },

    { ngx_string("notifyhub_pg_queue_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_notifyhub_main_conf_t, pg_queue_timeout),
      NULL },

    { ngx_string("notifyhub_kafka_brokers"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_notifyhub_main_conf_t, kafka_brokers),
      NULL },

    { ngx_string("notifyhub_kafka_topic_prefix"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_notifyhub_main_conf_t, kafka_topic_prefix),
      NULL },

    { ngx_string("notifyhub_kafka_queue_size"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_notifyhub_main_conf_t, kafka_queue_size),
      NULL },

    { ngx_string("notifyhub_kafka_property"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE2,
      ngx_http_notifyhub_kafka_property,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("notifyhub_password_thread_pool"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_notifyhub_thread_pool,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("notifyhub_password_iterations"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_notifyhub_main_conf_t, password_iterations),
      NULL },

    { ngx_string("notifyhub_key_cache"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_notifyhub_key_cache,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("notifyhub_key_cache_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_notifyhub_main_conf_t, key_cache_ttl),
      NULL },

    { ngx_string("notifyhub_key_cache_poll"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_notifyhub_main_conf_t, key_cache_poll),
      NULL },

    { ngx_string("notifyhub_session_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_notifyhub_main_conf_t, session_ttl),
      NULL },

    { ngx_string("notifyhub_cursor_secret"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_notifyhub_main_conf_t, cursor_secret),
      NULL },

    { ngx_string("notifyhub_mailgun_signing_key"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_notifyhub_main_conf_t, mailgun_signing_key),
      NULL },

    { ngx_string("notifyhub_twilio_auth_token"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_notifyhub_main_conf_t, twilio_auth_token),
      NULL },

    { ngx_string("notifyhub_public_url"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_notifyhub_main_conf_t, public_url),
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_notifyhub_module_ctx = {
    NULL,                                  /* preconfiguration */
    NULL,                                  /* postconfiguration */

    ngx_http_notifyhub_create_main_conf,   /* create main configuration */
    ngx_http_notifyhub_init_main_conf,     /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    NULL,                                  /* create location configuration */
    NULL                                   /* merge location configuration */
};


ngx_module_t  ngx_http_notifyhub_module = {
    NGX_MODULE_V1,
    &ngx_http_notifyhub_module_ctx,        /* module context */
    ngx_http_notifyhub_commands,           /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_notifyhub_init_process,       /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_notifyhub_exit_process,       /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_int_t
ngx_http_notifyhub_handler(ngx_http_request_t *r)
{
    ngx_int_t                  rc;
    ngx_str_t                  allow;
    ngx_pool_cleanup_t        *cln;
    ngx_http_notifyhub_ctx_t  *ctx;

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_notifyhub_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln->handler = ngx_http_notifyhub_ctx_cleanup;
    cln->data = ctx;

    ngx_http_set_ctx(r, ctx, ngx_http_notifyhub_module);
    ngx_http_notifyhub_request_id(r, ctx);

    rc = ngx_http_notifyhub_route(r, ctx, &allow);

    if (rc == NGX_DECLINED) {
        if (ngx_http_discard_request_body(r) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_notifyhub_send_error(r, NGX_HTTP_NOT_FOUND,
                                             "not_found", "no such route");
    }

    if (rc == NGX_HTTP_NOT_ALLOWED) {
        if (ngx_http_discard_request_body(r) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (ngx_http_notifyhub_add_header(r, "Allow", (char *) allow.data)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_notifyhub_send_error(r, NGX_HTTP_NOT_ALLOWED,
                         "method_not_allowed",
                         "this method is not allowed on this route; "
                         "see the Allow header");
    }

    if (ctx->takes_body) {
        rc = ngx_http_notifyhub_check_body(r);

        if (rc == NGX_HTTP_LENGTH_REQUIRED) {
            return ngx_http_notifyhub_send_error(r, rc, "length_required",
                             "a request body needs Content-Length or "
                             "chunked transfer encoding");
        }

        if (rc == NGX_HTTP_UNSUPPORTED_MEDIA_TYPE) {
            return ngx_http_notifyhub_send_error(r, rc,
                             "unsupported_media_type",
                             ctx->takes_body == NGX_HTTP_NOTIFYHUB_BODY_FORM
                             ? "the request body must be a form with "
                               "Content-Type: "
                               "application/x-www-form-urlencoded"
                             : "the request body must be JSON with "
                               "Content-Type: application/json");
        }

        if (rc != NGX_OK) {
            return rc;
        }

        rc = ngx_http_read_client_request_body(r,
                                           ngx_http_notifyhub_body_handler);
        if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
            return rc;
        }

        return NGX_DONE;
    }

    if (ngx_http_discard_request_body(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* A route without a body ignores one. The handler finalizes the
     * request, possibly later. */
    r->main->count++;
    ctx->handler(r, ctx);

    return NGX_DONE;
}


/* Sends the statuses that nginx produces itself in the JSON envelope. */
static ngx_int_t
ngx_http_notifyhub_error_handler(ngx_http_request_t *r)
{
    ngx_uint_t                 status;
    const char                *code, *message;
    ngx_http_notifyhub_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_notifyhub_module);

    if (ctx == NULL) {
        ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_notifyhub_ctx_t));
        if (ctx == NULL) {
            return NGX_ERROR;
        }

        ngx_http_set_ctx(r, ctx, ngx_http_notifyhub_module);
        ngx_http_notifyhub_request_id(r, ctx);
    }

    status = ngx_http_notifyhub_error_status(r, &code, &message);

    if (ngx_http_discard_request_body(r) != NGX_OK) {
        r->keepalive = 0;
    }

    return ngx_http_notifyhub_send_error(r, status, code, message);
}


/*
 * Finds the route for the URI. Returns NGX_OK with ctx->handler set,
 * NGX_DECLINED for an unknown path, or NGX_HTTP_NOT_ALLOWED with the
 * methods the path takes in allow.
 */
static ngx_int_t
ngx_http_notifyhub_route(ngx_http_request_t *r, ngx_http_notifyhub_ctx_t *ctx,
    ngx_str_t *allow)
{
    u_char                      *p;
    ngx_uint_t                   methods;
    ngx_http_notifyhub_route_t  *rt;

    methods = 0;

    for (rt = ngx_http_notifyhub_routes; rt->handler; rt++) {

        if (!ngx_http_notifyhub_match(&rt->pattern, &r->uri, ctx)) {
            continue;
        }

        if (r->method & rt->method) {
            ctx->handler = rt->handler;
            ctx->takes_body = rt->body;
            return NGX_OK;
        }

        methods |= rt->method;
    }

    if (methods == 0) {
        return NGX_DECLINED;
    }

    p = ngx_pnalloc(r->pool, sizeof("GET, HEAD, POST, PUT, PATCH, DELETE"));
    if (p == NULL) {
        return NGX_DECLINED;
    }

    allow->data = p;

    if (methods & NGX_HTTP_GET) {
        p = ngx_cpymem(p, "GET, HEAD, ", sizeof("GET, HEAD, ") - 1);
    }

    if (methods & NGX_HTTP_POST) {
        p = ngx_cpymem(p, "POST, ", sizeof("POST, ") - 1);
    }

    if (methods & NGX_HTTP_PUT) {
        p = ngx_cpymem(p, "PUT, ", sizeof("PUT, ") - 1);
    }

    if (methods & NGX_HTTP_PATCH) {
        p = ngx_cpymem(p, "PATCH, ", sizeof("PATCH, ") - 1);
    }

    if (methods & NGX_HTTP_DELETE) {
        p = ngx_cpymem(p, "DELETE, ", sizeof("DELETE, ") - 1);
    }

    p -= 2;
    *p = '\0';
    allow->len = p - allow->data;

    return NGX_HTTP_NOT_ALLOWED;
}


/*
 * Matches a URI against a route pattern, capturing the segments that "*"
 * stands for into ctx->path_ids.
 */
static ngx_uint_t
ngx_http_notifyhub_match(ngx_str_t *pattern, ngx_str_t *uri,
    ngx_http_notifyhub_ctx_t *ctx)
{
    u_char      *p, *pend, *u, *uend, *start;
    ngx_uint_t   n;

    p = pattern->data;
    pend = p + pattern->len;
    u = uri->data;
    uend = u + uri->len;
    n = 0;

    while (p < pend) {

        if (*p != '*') {
            if (u == uend || *u != *p) {
                return 0;
            }

            p++;
            u++;
            continue;
        }

        start = u;

        while (u < uend && *u != '/') {
            u++;
        }

        if (u == start || n == NGX_HTTP_NOTIFYHUB_PATH_IDS) {
            return 0;
        }

        ctx->path_ids[n].data = start;
        ctx->path_ids[n].len = u - start;
        n++;
        p++;
    }

    return u == uend;
}


/*
 * Checks a body before it is read. Returns NGX_OK, or after discarding the
 * body NGX_HTTP_LENGTH_REQUIRED (no length and no chunked encoding) or
 * NGX_HTTP_UNSUPPORTED_MEDIA_TYPE (no JSON content type). nginx rejects a
 * body over client_max_body_size before it is read (413).
 */
static ngx_int_t
ngx_http_notifyhub_check_body(ngx_http_request_t *r)
{
    u_char                    *p, *last;
    ngx_str_t                  type;
    ngx_int_t                  rc, status;
    ngx_table_elt_t           *ct;
    ngx_http_notifyhub_ctx_t  *ctx;

    status = NGX_HTTP_UNSUPPORTED_MEDIA_TYPE;

    if (r->headers_in.content_length_n == -1 && !r->headers_in.chunked) {
        status = NGX_HTTP_LENGTH_REQUIRED;
        goto failed;
    }

    ct = r->headers_in.content_type;
    if (ct == NULL) {
        goto failed;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_notifyhub_module);

    if (ctx->takes_body == NGX_HTTP_NOTIFYHUB_BODY_FORM) {
        ngx_str_set(&type, "application/x-www-form-urlencoded");

    } else {
        ngx_str_set(&type, "application/json");
    }

    p = ct->value.data;
    last = p + ct->value.len;

    if (ct->value.len < type.len
        || ngx_strncasecmp(p, type.data, type.len) != 0)
    {
        goto failed;
    }

    p += type.len;

    while (p < last && *p == ' ') {
        p++;
    }

    if (p == last || *p == ';') {
        return NGX_OK;
    }

failed:

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    return status;
}


static void
ngx_http_notifyhub_body_handler(ngx_http_request_t *r)
{
    ngx_int_t                  rc;
    const char                *end;
    ngx_http_notifyhub_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_notifyhub_module);

    if (ngx_http_notifyhub_read_body(r, ctx) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    /* A form body is parsed by its handler. */
    if (ctx->takes_body == NGX_HTTP_NOTIFYHUB_BODY_FORM) {
        ctx->handler(r, ctx);
        return;
    }

    /* PostgreSQL rejects text that is not UTF-8, so it is a 400 here. */
    if (!nh_utf8_is_valid((const char *) ctx->body.data, ctx->body.len)) {
        rc = ngx_http_notifyhub_send_error(r, NGX_HTTP_BAD_REQUEST,
                         "invalid_json", "the request body is not UTF-8");
        ngx_http_finalize_request(r, rc);
        return;
    }

    end = NULL;
    ctx->json = cJSON_ParseWithLengthOpts((const char *) ctx->body.data,
                                          ctx->body.len, &end, 0);

    if (ctx->json != NULL) {
        while (end < (const char *) ctx->body.data + ctx->body.len
               && (*end == ' ' || *end == '\t' || *end == '\r'
                   || *end == '\n'))
        {
            end++;
        }
    }

    if (ctx->json == NULL
        || end != (const char *) ctx->body.data + ctx->body.len)
    {
        rc = ngx_http_notifyhub_send_error(r, NGX_HTTP_BAD_REQUEST,
                         "invalid_json", "the request body is not valid JSON");
        ngx_http_finalize_request(r, rc);
        return;
    }

    if (!cJSON_IsObject(ctx->json)) {
        rc = ngx_http_notifyhub_send_error(r, NGX_HTTP_BAD_REQUEST,
                         "invalid_json",
                         "the request body must be a JSON object");
        ngx_http_finalize_request(r, rc);
        return;
    }

    ctx->handler(r, ctx);
}


/* Gathers the body into one buffer, from memory or a temporary file. */
static ngx_int_t
ngx_http_notifyhub_read_body(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx)
{
    off_t         len;
    u_char       *p;
    ssize_t       n;
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    ctx->body.len = 0;
    ctx->body.data = (u_char *) "";

    if (r->request_body == NULL || r->request_body->bufs == NULL) {
        return NGX_OK;
    }

    len = 0;
    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        len += ngx_buf_size(cl->buf);
    }

    if (len == 0) {
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, len + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ctx->body.data = p;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;

        if (b->in_file) {
            n = ngx_read_file(b->file, p, b->file_last - b->file_pos,
                              b->file_pos);
            if (n != b->file_last - b->file_pos) {
                ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                              "notifyhub: reading the spooled request body "
                              "from \"%V\" failed", &b->file->name);
                return NGX_ERROR;
            }

            p += n;

        } else {
            p = ngx_cpymem(p, b->pos, b->last - b->pos);
        }
    }

    *p = '\0';
    ctx->body.len = p - ctx->body.data;

    return NGX_OK;
}


static void
ngx_http_notifyhub_ctx_cleanup(void *data)
{
    ngx_http_notifyhub_ctx_t  *ctx = data;

    if (ctx->json) {
        cJSON_Delete(ctx->json);
        ctx->json = NULL;
    }

    if (ctx->details) {
        cJSON_Delete(ctx->details);
        ctx->details = NULL;
    }
}


static void
ngx_http_notifyhub_healthz(ngx_http_request_t *r,
    ngx_http_notifyhub_ctx_t *ctx)
{
    static u_char  ok[] = "{\"status\":\"ok\"}";

    ngx_http_notifyhub_finish(r,
        ngx_http_notifyhub_send_json(r, NGX_HTTP_OK, ok, sizeof(ok) - 1));
}


static void *
ngx_http_notifyhub_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_notifyhub_main_conf_t  *nmcf;

    nmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_notifyhub_main_conf_t));
    if (nmcf == NULL) {
        return NULL;
    }

    nmcf->pg_pool_size = NGX_CONF_UNSET_UINT;
    nmcf->pg_queue_size = NGX_CONF_UNSET_UINT;
    nmcf->pg_connect_timeout = NGX_CONF_UNSET_MSEC;
    nmcf->pg_query_timeout = NGX_CONF_UNSET_MSEC;
    nmcf->pg_queue_timeout = NGX_CONF_UNSET_MSEC;
    nmcf->kafka_queue_size = NGX_CONF_UNSET_UINT;
    nmcf->kafka_properties = NGX_CONF_UNSET_PTR;
    nmcf->password_iterations = NGX_CONF_UNSET_UINT;
    nmcf->session_ttl = NGX_CONF_UNSET;
    nmcf->key_cache_ttl = NGX_CONF_UNSET;
    nmcf->key_cache_poll = NGX_CONF_UNSET_MSEC;

    return nmcf;
}


static char *
ngx_http_notifyhub_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_notifyhub_main_conf_t  *nmcf = conf;

    ngx_str_t  pool_name = ngx_string("default");
    ngx_str_t  zone_name = ngx_string("notifyhub_keys");

    if (nmcf->pg_dsn.len == 0) {
        ngx_str_set(&nmcf->pg_dsn,
                  "host=127.0.0.1 port=54320 dbname=notifyhub user=notifyhub");
    }

    ngx_conf_init_uint_value(nmcf->pg_pool_size, 8);
    ngx_conf_init_uint_value(nmcf->pg_queue_size, 1024);
    ngx_conf_init_msec_value(nmcf->pg_connect_timeout, 2000);
    ngx_conf_init_msec_value(nmcf->pg_query_timeout, 5000);
    ngx_conf_init_msec_value(nmcf->pg_queue_timeout, 2000);

    if (nmcf->kafka_brokers.len == 0) {
        ngx_str_set(&nmcf->kafka_brokers, "127.0.0.1:9492");
    }

    if (nmcf->kafka_topic_prefix.data == NULL) {
        ngx_str_set(&nmcf->kafka_topic_prefix, "notifyhub.");
    }

    ngx_conf_init_uint_value(nmcf->kafka_queue_size, 100000);
    ngx_conf_init_ptr_value(nmcf->kafka_properties, NULL);
    ngx_conf_init_uint_value(nmcf->password_iterations, 600000);
    ngx_conf_init_value(nmcf->session_ttl, 86400);
    ngx_conf_init_value(nmcf->key_cache_ttl, 60);
    ngx_conf_init_msec_value(nmcf->key_cache_poll, 250);

    if (nmcf->key_cache_poll == 0 || nmcf->key_cache_poll > 1000) {
        return "notifyhub_key_cache_poll must be between 1ms and 1s, "
               "since revocations must reach every worker within a second";
    }

    if (nmcf->pg_pool_size == 0 || nmcf->pg_pool_size > 1000) {
        return "notifyhub_pg_pool_size must be between 1 and 1000";
    }

    if (nmcf->password_iterations < 1000
        || nmcf->password_iterations > 10000000)
    {
        return "notifyhub_password_iterations must be between 1000 "
               "and 10000000";
    }

    if (nmcf->kafka_queue_size == 0) {
        return "notifyhub_kafka_queue_size must be positive";
    }

    if (nmcf->password_thread_pool == NULL) {
        nmcf->password_thread_pool = ngx_thread_pool_add(cf, &pool_name);
        if (nmcf->password_thread_pool == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    if (ngx_http_notifyhub_cursor_init_conf(cf, nmcf) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    if (!nmcf->enabled) {
        return NGX_CONF_OK;
    }

    if (nmcf->key_cache_zone == NULL
        && ngx_http_notifyhub_keycache_zone(cf, &zone_name, 10 * 1024 * 1024,
                                            nmcf)
           != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    return ngx_http_notifyhub_pg_parse_dsn(cf, nmcf);
}


static char *
ngx_http_notifyhub_api(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_core_loc_conf_t        *clcf;
    ngx_http_notifyhub_main_conf_t  *nmcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    if (clcf->handler) {
        return "is duplicate";
    }

    clcf->handler = ngx_http_notifyhub_handler;

    nmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_notifyhub_module);
    nmcf->enabled = 1;

    return NGX_CONF_OK;
}


static char *
ngx_http_notifyhub_error(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    if (clcf->handler) {
        return "is duplicate";
    }

    clcf->handler = ngx_http_notifyhub_error_handler;

    return NGX_CONF_OK;
}


static char *
ngx_http_notifyhub_thread_pool(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_notifyhub_main_conf_t  *nmcf = conf;

    ngx_str_t  *value;

    if (nmcf->password_thread_pool) {
        return "is duplicate";
    }

    value = cf->args->elts;

    nmcf->password_thread_pool = ngx_thread_pool_add(cf, &value[1]);
    if (nmcf->password_thread_pool == NULL) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_notifyhub_kafka_property(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_notifyhub_main_conf_t  *nmcf = conf;

    ngx_str_t     *value;
    ngx_keyval_t  *kv;

    if (nmcf->kafka_properties == NGX_CONF_UNSET_PTR) {
        nmcf->kafka_properties = ngx_array_create(cf->pool, 4,
                                                  sizeof(ngx_keyval_t));
        if (nmcf->kafka_properties == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    kv = ngx_array_push(nmcf->kafka_properties);
    if (kv == NULL) {
        return NGX_CONF_ERROR;
    }

    /* ngx_conf_file leaves every argument NUL-terminated. */
    value = cf->args->elts;
    kv->key = value[1];
    kv->value = value[2];

    return NGX_CONF_OK;
}


/* notifyhub_key_cache zone=name:size */
static char *
ngx_http_notifyhub_key_cache(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_notifyhub_main_conf_t  *nmcf = conf;

    u_char     *p;
    ssize_t     size;
    ngx_str_t  *value, name, s;

    if (nmcf->key_cache_zone) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strncmp(value[1].data, "zone=", 5) != 0) {
        return "takes zone=name:size";
    }

    name.data = value[1].data + 5;
    p = (u_char *) ngx_strchr(name.data, ':');
    if (p == NULL || p == name.data) {
        return "takes zone=name:size";
    }

    name.len = p - name.data;
    s.data = p + 1;
    s.len = value[1].data + value[1].len - s.data;

    size = ngx_parse_size(&s);
    if (size == NGX_ERROR || size < (ssize_t) (8 * ngx_pagesize)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid key cache zone size \"%V\", it must "
                           "be at least %uz", &s, 8 * ngx_pagesize);
        return NGX_CONF_ERROR;
    }

    if (ngx_http_notifyhub_keycache_zone(cf, &name, size, nmcf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_notifyhub_init_process(ngx_cycle_t *cycle)
{
    ngx_http_notifyhub_main_conf_t  *nmcf;

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    nmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_notifyhub_module);
    if (nmcf == NULL || !nmcf->enabled) {
        return NGX_OK;
    }

    /*
     * librdkafka's threads do not survive fork(), so the producer and the
     * database connections belong to each worker process.
     */

    if (ngx_http_notifyhub_kafka_init_process(cycle, nmcf) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_notifyhub_pg_init_process(cycle, nmcf) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_notifyhub_recipients_init_process(cycle) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_notifyhub_keycache_init_process(cycle, nmcf);
}


static void
ngx_http_notifyhub_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_notifyhub_pg_exit_process(cycle);
    ngx_http_notifyhub_kafka_exit_process(cycle);
}
