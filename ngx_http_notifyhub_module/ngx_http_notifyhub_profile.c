
/*
 * The owner's profile: read and change name, email and password.
 */


#include "ngx_http_notifyhub_module.h"


void
ngx_http_notifyhub_profile_get(ngx_http_request_t *r, ngx_http_notifyhub_ctx_t *ctx)
{
    ngx_http_finalize_request(r, ngx_http_notifyhub_send_error(r,
                              NGX_HTTP_NOT_IMPLEMENTED, "not_implemented",
                              "this route is not implemented yet"));
}


void
ngx_http_notifyhub_profile_update(ngx_http_request_t *r, ngx_http_notifyhub_ctx_t *ctx)
{
    ngx_http_finalize_request(r, ngx_http_notifyhub_send_error(r,
                              NGX_HTTP_NOT_IMPLEMENTED, "not_implemented",
                              "this route is not implemented yet"));
}
