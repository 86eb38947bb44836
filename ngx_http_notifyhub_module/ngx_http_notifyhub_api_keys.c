
/*
 * A tenant's API keys, managed by its owner: create, list, revoke.
 */


#include "ngx_http_notifyhub_module.h"


void
ngx_http_notifyhub_api_key_create(ngx_http_request_t *r, ngx_http_notifyhub_ctx_t *ctx)
{
    ngx_http_finalize_request(r, ngx_http_notifyhub_send_error(r,
                              NGX_HTTP_NOT_IMPLEMENTED, "not_implemented",
                              "this route is not implemented yet"));
}


void
ngx_http_notifyhub_api_key_list(ngx_http_request_t *r, ngx_http_notifyhub_ctx_t *ctx)
{
    ngx_http_finalize_request(r, ngx_http_notifyhub_send_error(r,
                              NGX_HTTP_NOT_IMPLEMENTED, "not_implemented",
                              "this route is not implemented yet"));
}


void
ngx_http_notifyhub_api_key_revoke(ngx_http_request_t *r, ngx_http_notifyhub_ctx_t *ctx)
{
    ngx_http_finalize_request(r, ngx_http_notifyhub_send_error(r,
                              NGX_HTTP_NOT_IMPLEMENTED, "not_implemented",
                              "this route is not implemented yet"));
}
