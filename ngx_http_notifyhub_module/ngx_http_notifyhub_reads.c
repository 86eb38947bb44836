
/*
 * Reading notifications: the keyset-paginated list, delivery logs,
 * cancellation, and the readiness probe.
 */


#include "ngx_http_notifyhub_module.h"


void
ngx_http_notifyhub_notification_list(ngx_http_request_t *r, ngx_http_notifyhub_ctx_t *ctx)
{
    ngx_http_finalize_request(r, ngx_http_notifyhub_send_error(r,
                              NGX_HTTP_NOT_IMPLEMENTED, "not_implemented",
                              "this route is not implemented yet"));
}


void
ngx_http_notifyhub_notification_logs(ngx_http_request_t *r, ngx_http_notifyhub_ctx_t *ctx)
{
    ngx_http_finalize_request(r, ngx_http_notifyhub_send_error(r,
                              NGX_HTTP_NOT_IMPLEMENTED, "not_implemented",
                              "this route is not implemented yet"));
}


void
ngx_http_notifyhub_notification_cancel(ngx_http_request_t *r, ngx_http_notifyhub_ctx_t *ctx)
{
    ngx_http_finalize_request(r, ngx_http_notifyhub_send_error(r,
                              NGX_HTTP_NOT_IMPLEMENTED, "not_implemented",
                              "this route is not implemented yet"));
}


void
ngx_http_notifyhub_readyz(ngx_http_request_t *r, ngx_http_notifyhub_ctx_t *ctx)
{
    ngx_http_finalize_request(r, ngx_http_notifyhub_send_error(r,
                              NGX_HTTP_NOT_IMPLEMENTED, "not_implemented",
                              "this route is not implemented yet"));
}
