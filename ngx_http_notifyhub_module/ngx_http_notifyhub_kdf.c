
/*
 * Password hashing (PBKDF2) in an nginx thread pool: the event loop only
 * posts the task and takes the result.
 */


#include "ngx_http_notifyhub_module.h"


static void ngx_http_notifyhub_kdf_thread(void *data, ngx_log_t *log);
static void ngx_http_notifyhub_kdf_event(ngx_event_t *ev);


/*
 * Posts a password hash (encoded == NULL) or a check against encoded to
 * the thread pool. The request stays blocked until done runs on the event
 * loop. Returns NGX_OK, NGX_BUSY when the pool's queue is full, or
 * NGX_ERROR.
 */
ngx_int_t
ngx_http_notifyhub_kdf_start(ngx_http_request_t *r, const char *password,
    const char *encoded, ngx_http_notifyhub_kdf_done_pt done)
{
    ngx_thread_task_t               *task;
    ngx_http_notifyhub_kdf_t        *kdf;
    ngx_http_notifyhub_main_conf_t  *nmcf;

    nmcf = ngx_http_get_module_main_conf(r, ngx_http_notifyhub_module);

    task = ngx_thread_task_alloc(r->pool, sizeof(ngx_http_notifyhub_kdf_t));
    if (task == NULL) {
        return NGX_ERROR;
    }

    kdf = task->ctx;
    kdf->request = r;
    kdf->password_len = ngx_strlen(password);
    kdf->password = ngx_pnalloc(r->pool, kdf->password_len + 1);
    if (kdf->password == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(kdf->password, password, kdf->password_len + 1);
    kdf->iterations = nmcf->password_iterations;
    kdf->done = done;

    if (encoded) {
        kdf->verify = 1;
        ngx_cpystrn((u_char *) kdf->encoded, (u_char *) encoded,
                    sizeof(kdf->encoded));
    }

    task->handler = ngx_http_notifyhub_kdf_thread;
    task->event.data = kdf;
    task->event.handler = ngx_http_notifyhub_kdf_event;

    if (ngx_thread_task_post(nmcf->password_thread_pool, task) != NGX_OK) {
        ngx_explicit_memzero(kdf->password, kdf->password_len);
        return NGX_BUSY;
    }

    r->main->blocked++;

    return NGX_OK;
}


/* Runs in a thread of the pool: no nginx calls here. */
static void
ngx_http_notifyhub_kdf_thread(void *data, ngx_log_t *log)
{
    ngx_http_notifyhub_kdf_t  *kdf = data;

    if (kdf->verify) {
        kdf->result = nh_password_verify(kdf->password, kdf->password_len,
                                         kdf->encoded);

    } else {
        kdf->result = nh_password_hash(kdf->password, kdf->password_len,
                                       (unsigned) kdf->iterations,
                                       kdf->encoded, sizeof(kdf->encoded));
    }
}


static void
ngx_http_notifyhub_kdf_event(ngx_event_t *ev)
{
    ngx_http_request_t        *r;
    ngx_http_notifyhub_kdf_t  *kdf;

    kdf = ev->data;
    r = kdf->request;

    r->main->blocked--;

    ngx_explicit_memzero(kdf->password, kdf->password_len);

    kdf->done(r, kdf);
}
