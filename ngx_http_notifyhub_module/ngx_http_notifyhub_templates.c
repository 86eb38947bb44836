
/*
 * Templates: versioned subject, body and html with {{path}} variables,
 * rendered by common/nh_template.c.
 */


#include "ngx_http_notifyhub_module.h"


void
ngx_http_notifyhub_template_create(ngx_http_request_t *r, ngx_http_notifyhub_ctx_t *ctx)
{
    ngx_http_finalize_request(r, ngx_http_notifyhub_send_error(r,
                              NGX_HTTP_NOT_IMPLEMENTED, "not_implemented",
                              "this route is not implemented yet"));
}


void
ngx_http_notifyhub_template_list(ngx_http_request_t *r, ngx_http_notifyhub_ctx_t *ctx)
{
    ngx_http_finalize_request(r, ngx_http_notifyhub_send_error(r,
                              NGX_HTTP_NOT_IMPLEMENTED, "not_implemented",
                              "this route is not implemented yet"));
}


void
ngx_http_notifyhub_template_get(ngx_http_request_t *r, ngx_http_notifyhub_ctx_t *ctx)
{
    ngx_http_finalize_request(r, ngx_http_notifyhub_send_error(r,
                              NGX_HTTP_NOT_IMPLEMENTED, "not_implemented",
                              "this route is not implemented yet"));
}


void
ngx_http_notifyhub_template_update(ngx_http_request_t *r, ngx_http_notifyhub_ctx_t *ctx)
{
    ngx_http_finalize_request(r, ngx_http_notifyhub_send_error(r,
                              NGX_HTTP_NOT_IMPLEMENTED, "not_implemented",
                              "this route is not implemented yet"));
}


void
ngx_http_notifyhub_template_delete(ngx_http_request_t *r, ngx_http_notifyhub_ctx_t *ctx)
{
    ngx_http_finalize_request(r, ngx_http_notifyhub_send_error(r,
                              NGX_HTTP_NOT_IMPLEMENTED, "not_implemented",
                              "this route is not implemented yet"));
}


void
ngx_http_notifyhub_template_render(ngx_http_request_t *r, ngx_http_notifyhub_ctx_t *ctx)
{
    ngx_http_finalize_request(r, ngx_http_notifyhub_send_error(r,
                              NGX_HTTP_NOT_IMPLEMENTED, "not_implemented",
                              "this route is not implemented yet"));
}
