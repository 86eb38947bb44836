
/*
 * API-key authentication with a shared-memory cache in front of
 * PostgreSQL. Entries live in a red-black tree keyed by the key's SHA-256,
 * with an LRU queue that bounds the zone. Unknown keys are cached too.
 *
 * Every change that can invalidate a key bumps a generation number in the
 * database. Each worker process polls it, and an entry made before the
 * current generation is refetched, so revocation, expiry changes,
 * suspension and deletion reach every worker within one poll interval.
 * The zone, and so the cache, survives a reload.
 */


#include "ngx_http_notifyhub_module.h"


/* Seconds between two last_used_at writes for one key; keys per batch. */
#define NGX_HTTP_NOTIFYHUB_TOUCH_INTERVAL   5
#define NGX_HTTP_NOTIFYHUB_TOUCH_BATCH      256


typedef struct {
    ngx_rbtree_t                    rbtree;
    ngx_rbtree_node_t               sentinel;
    ngx_queue_t                     lru;
    uint64_t                        generation;
    ngx_uint_t                      count;
    time_t                          full_logged;
} ngx_http_notifyhub_keycache_sh_t;


typedef struct {
    ngx_http_notifyhub_keycache_sh_t  *sh;
    ngx_slab_pool_t                   *shpool;
} ngx_http_notifyhub_keycache_zone_t;


typedef struct {
    ngx_rbtree_node_t               node;     /* node.key: hash prefix */
    ngx_queue_t                     queue;
    u_char                          hash[NH_SHA256_LEN];
    ngx_http_notifyhub_key_t        key;
    uint64_t                        generation;
    time_t                          cached_at;
    time_t                          touched_at;
} ngx_http_notifyhub_keycache_node_t;


/* One authentication that waits for the database. */
typedef struct {
    u_char                          hash[NH_SHA256_LEN];
    ngx_uint_t                      scope;
    ngx_http_notifyhub_auth_pt      done;
} ngx_http_notifyhub_auth_t;


/* Per worker process: the poll timer and the batch of used keys. */
typedef struct {
    ngx_http_notifyhub_main_conf_t *conf;
    ngx_event_t                     poll_timer;
    ngx_uint_t                      polling;
    ngx_event_t                     touch_timer;
    ngx_uint_t                      touching;
    u_char                          touched[NGX_HTTP_NOTIFYHUB_TOUCH_BATCH]
                                           [NH_UUID_LEN];
    ngx_uint_t                      ntouched;
    ngx_connection_t                dummy;
    ngx_log_t                      *log;
} ngx_http_notifyhub_keycache_worker_t;


static ngx_int_t ngx_http_notifyhub_keycache_init_zone(ngx_shm_zone_t *zone,
    void *data);
static ngx_http_notifyhub_keycache_node_t *ngx_http_notifyhub_keycache_find(
    ngx_http_notifyhub_keycache_zone_t *kc, u_char *hash);
static void ngx_http_notifyhub_keycache_store(ngx_http_request_t *r,
    u_char *hash, ngx_http_notifyhub_key_t *key, uint64_t generation);
static void ngx_http_notifyhub_keycache_rbtree_insert(
    ngx_rbtree_node_t *temp, ngx_rbtree_node_t *node,
    ngx_rbtree_node_t *sentinel);
static void ngx_http_notifyhub_keycache_looked_up(ngx_http_request_t *r,
    PGresult *res, void *data);
static ngx_int_t ngx_http_notifyhub_keycache_check(ngx_http_request_t *r,
    ngx_http_notifyhub_key_t *key, ngx_uint_t scope);
static void ngx_http_notifyhub_keycache_touch(u_char *key_id);
static void ngx_http_notifyhub_keycache_poll(ngx_event_t *ev);
static void ngx_http_notifyhub_keycache_polled(ngx_http_request_t *r,
    PGresult *res, void *data);
static void ngx_http_notifyhub_keycache_raise(uint64_t generation);
static void ngx_http_notifyhub_keycache_flush(ngx_event_t *ev);
static void ngx_http_notifyhub_keycache_flushed(ngx_http_request_t *r,
    PGresult *res, void *data);
static uint32_t ngx_http_notifyhub_parse_scopes(const char *list);


static ngx_http_notifyhub_keycache_worker_t  *ngx_http_notifyhub_keycache;

/* Scope names in bit order; "*" is every bit. */
static const char  *ngx_http_notifyhub_scope_names[] = {
    "notifications:read", "notifications:write",
    "templates:read", "templates:write",
    "recipients:read", "recipients:write",
    "webhooks:read", "webhooks:write",
    "metrics:read",
    NULL
};


/* Adds the shared zone; called while the configuration is read. */
ngx_int_t
ngx_http_notifyhub_keycache_zone(ngx_conf_t *cf, ngx_str_t *name,
    size_t size, ngx_http_notifyhub_main_conf_t *nmcf)
{
    ngx_shm_zone_t                      *zone;
    ngx_http_notifyhub_keycache_zone_t  *kc;

    kc = ngx_pcalloc(cf->pool, sizeof(ngx_http_notifyhub_keycache_zone_t));
    if (kc == NULL) {
        return NGX_ERROR;
    }

    zone = ngx_shared_memory_add(cf, name, size, &ngx_http_notifyhub_module);
    if (zone == NULL) {
        return NGX_ERROR;
    }

    if (zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "notifyhub key cache zone \"%V\" is duplicate",
                           name);
        return NGX_ERROR;
    }

    zone->init = ngx_http_notifyhub_keycache_init_zone;
    zone->data = kc;
    nmcf->key_cache_zone = zone;

    return NGX_OK;
}


static ngx_int_t
ngx_http_notifyhub_keycache_init_zone(ngx_shm_zone_t *zone, void *data)
{
    ngx_http_notifyhub_keycache_zone_t  *okc = data;

    size_t                               len;
    ngx_http_notifyhub_keycache_zone_t  *kc;

    kc = zone->data;

    /* A reload keeps the old zone and its entries. */
    if (okc) {
        kc->sh = okc->sh;
        kc->shpool = okc->shpool;
        return NGX_OK;
    }

    kc->shpool = (ngx_slab_pool_t *) zone->shm.addr;

    if (zone->shm.exists) {
        kc->sh = kc->shpool->data;
        return NGX_OK;
    }

    kc->sh = ngx_slab_alloc(kc->shpool,
                            sizeof(ngx_http_notifyhub_keycache_sh_t));
    if (kc->sh == NULL) {
        return NGX_ERROR;
    }

    kc->shpool->data = kc->sh;

    ngx_rbtree_init(&kc->sh->rbtree, &kc->sh->sentinel,
                    ngx_http_notifyhub_keycache_rbtree_insert);
    ngx_queue_init(&kc->sh->lru);
    kc->sh->generation = 0;
    kc->sh->count = 0;
    kc->sh->full_logged = 0;

    len = sizeof(" in notifyhub key cache zone \"\"") + zone->shm.name.len;

    kc->shpool->log_ctx = ngx_slab_alloc(kc->shpool, len);
    if (kc->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(kc->shpool->log_ctx, " in notifyhub key cache zone \"%V\"%Z",
                &zone->shm.name);

    kc->shpool->log_nomem = 0;

    return NGX_OK;
}


/* Starts the generation poll and the last_used_at batches. */
ngx_int_t
ngx_http_notifyhub_keycache_init_process(ngx_cycle_t *cycle,
    ngx_http_notifyhub_main_conf_t *nmcf)
{
    ngx_http_notifyhub_keycache_worker_t  *w;

    w = ngx_pcalloc(cycle->pool, sizeof(ngx_http_notifyhub_keycache_worker_t));
    if (w == NULL) {
        return NGX_ERROR;
    }

    w->conf = nmcf;
    w->log = cycle->log;
    w->dummy.fd = (ngx_socket_t) -1;

    w->poll_timer.handler = ngx_http_notifyhub_keycache_poll;
    w->poll_timer.data = &w->dummy;
    w->poll_timer.log = cycle->log;
    w->poll_timer.cancelable = 1;

    w->touch_timer.handler = ngx_http_notifyhub_keycache_flush;
    w->touch_timer.data = &w->dummy;
    w->touch_timer.log = cycle->log;
    w->touch_timer.cancelable = 1;

    ngx_http_notifyhub_keycache = w;

    ngx_add_timer(&w->poll_timer, 1);
    ngx_add_timer(&w->touch_timer,
                  NGX_HTTP_NOTIFYHUB_TOUCH_INTERVAL * 1000);

    return NGX_OK;
}


/*
 * Authenticates the request's API key and checks the scope. On success
 * done runs, at once on a cache hit or after the database lookup. On
 * failure the error reply is sent and the request finalized; done does
 * not run.
 */
void
ngx_http_notifyhub_authenticate(ngx_http_request_t *r, ngx_uint_t scope,
    ngx_http_notifyhub_auth_pt done)
{
    time_t                                now;
    ngx_int_t                             rc;
    const char                           *values[1];
    int                                   lengths[1], formats[1];
    ngx_http_notifyhub_key_t              key;
    ngx_http_notifyhub_auth_t            *auth;
    ngx_http_notifyhub_main_conf_t       *nmcf;
    ngx_http_notifyhub_keycache_zone_t   *kc;
    ngx_http_notifyhub_keycache_node_t   *node;

    auth = ngx_pcalloc(r->pool, sizeof(ngx_http_notifyhub_auth_t));
    if (auth == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (ngx_http_notifyhub_api_key_hash(r, auth->hash) != NGX_OK) {
        rc = ngx_http_notifyhub_send_error(r, NGX_HTTP_UNAUTHORIZED,
                         "unauthorized",
                         "missing API key; send it as X-API-Key or "
                         "Authorization: Bearer");
        ngx_http_finalize_request(r, rc);
        return;
    }

    auth->scope = scope;
    auth->done = done;

    nmcf = ngx_http_get_module_main_conf(r, ngx_http_notifyhub_module);
    kc = nmcf->key_cache_zone->data;
    now = ngx_time();

    ngx_shmtx_lock(&kc->shpool->mutex);

    node = ngx_http_notifyhub_keycache_find(kc, auth->hash);

    if (node
        && node->generation >= kc->sh->generation
        && now - node->cached_at < (time_t) nmcf->key_cache_ttl)
    {
        key = node->key;

        ngx_queue_remove(&node->queue);
        ngx_queue_insert_head(&kc->sh->lru, &node->queue);

        if (key.found && now - node->touched_at
                         >= NGX_HTTP_NOTIFYHUB_TOUCH_INTERVAL)
        {
            node->touched_at = now;
            ngx_shmtx_unlock(&kc->shpool->mutex);
            ngx_http_notifyhub_keycache_touch(key.key_id);

        } else {
            ngx_shmtx_unlock(&kc->shpool->mutex);
        }

        if (ngx_http_notifyhub_keycache_check(r, &key, scope) == NGX_OK) {
            done(r, &key);
        }

        return;
    }

    ngx_shmtx_unlock(&kc->shpool->mutex);

    values[0] = (const char *) auth->hash;
    lengths[0] = NH_SHA256_LEN;
    formats[0] = 1;

    rc = ngx_http_notifyhub_pg_query(r,
             "SELECT key_found, key_id, tenant_id, status, expires_at_ms, "
             "scopes, tenant_status, generation "
             "FROM nh_api_key_lookup($1)",
             1, values, lengths, formats,
             ngx_http_notifyhub_keycache_looked_up, auth);

    if (rc != NGX_OK) {
        ngx_http_notifyhub_start_failed(r, rc);
    }
}


static void
ngx_http_notifyhub_keycache_looked_up(ngx_http_request_t *r, PGresult *res,
    void *data)
{
    ngx_http_notifyhub_auth_t  *auth = data;

    int64_t                    ms;
    uint64_t                   generation;
    ngx_http_notifyhub_key_t   key;

    if (ngx_http_notifyhub_pg_status(r, res, 8, "nh_api_key_lookup")
        != NGX_OK)
    {
        return;
    }

    ngx_memzero(&key, sizeof(ngx_http_notifyhub_key_t));

    key.found = PQgetvalue(res, 0, 0)[0] == 't';

    if (key.found) {
        if (nh_uuid_parse(PQgetvalue(res, 0, 1), PQgetlength(res, 0, 1),
                          key.key_id) != 0
            || nh_uuid_parse(PQgetvalue(res, 0, 2), PQgetlength(res, 0, 2),
                             key.tenant_id) != 0)
        {
            ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                          "notifyhub: nh_api_key_lookup returned an "
                          "invalid id");
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        key.revoked = ngx_strcmp(PQgetvalue(res, 0, 3), "ACTIVE") != 0;

        if (!PQgetisnull(res, 0, 4)) {
            ms = strtoll(PQgetvalue(res, 0, 4), NULL, 10);
            key.expires_at_ms = ms > 0 ? ms : 1;
        }

        key.scopes = ngx_http_notifyhub_parse_scopes(PQgetvalue(res, 0, 5));
        key.tenant_active = ngx_strcmp(PQgetvalue(res, 0, 6), "ACTIVE") == 0;
    }

    generation = strtoull(PQgetvalue(res, 0, 7), NULL, 10);

    ngx_http_notifyhub_keycache_store(r, auth->hash, &key, generation);

    if (key.found) {
        ngx_http_notifyhub_keycache_touch(key.key_id);
    }

    if (ngx_http_notifyhub_keycache_check(r, &key, auth->scope) == NGX_OK) {
        auth->done(r, &key);
    }
}


/*
 * Applies the key's status, expiry, tenant status and scopes. Returns
 * NGX_OK, or sends the error reply, finalizes the request and returns
 * NGX_DONE.
 */
static ngx_int_t
ngx_http_notifyhub_keycache_check(ngx_http_request_t *r,
    ngx_http_notifyhub_key_t *key, ngx_uint_t scope)
{
    u_char          message[96];
    int64_t         now_ms;
    ngx_int_t       rc;
    ngx_time_t     *tp;
    ngx_uint_t      i;
    const char     *name;
    ngx_http_notifyhub_ctx_t  *ctx;

    tp = ngx_timeofday();
    now_ms = (int64_t) tp->sec * 1000 + tp->msec;

    if (!key->found) {
        rc = ngx_http_notifyhub_send_error(r, NGX_HTTP_UNAUTHORIZED,
                                           "unauthorized",
                                           "missing or invalid API key");
        goto failed;
    }

    if (key->revoked) {
        rc = ngx_http_notifyhub_send_error(r, NGX_HTTP_UNAUTHORIZED,
                                           "api_key_revoked",
                                           "the API key has been revoked");
        goto failed;
    }

    if (key->expires_at_ms && key->expires_at_ms <= now_ms) {
        rc = ngx_http_notifyhub_send_error(r, NGX_HTTP_UNAUTHORIZED,
                                           "api_key_expired",
                                           "the API key has expired");
        goto failed;
    }

    if (!key->tenant_active) {
        rc = ngx_http_notifyhub_send_error(r, NGX_HTTP_FORBIDDEN,
                                           "forbidden",
                                           "the tenant is suspended");
        goto failed;
    }

    if (key->scopes & scope) {
        return NGX_OK;
    }

    name = "unknown";
    for (i = 0; ngx_http_notifyhub_scope_names[i]; i++) {
        if (scope == ((ngx_uint_t) 1 << i)) {
            name = ngx_http_notifyhub_scope_names[i];
            break;
        }
    }

    ngx_snprintf(message, sizeof(message),
                 "the API key lacks the scope %s%Z", name);

    ctx = ngx_http_get_module_ctx(r, ngx_http_notifyhub_module);
    ngx_http_notifyhub_invalid(ctx, name, "missing_scope");
    rc = ngx_http_notifyhub_send_error_details(r, NGX_HTTP_FORBIDDEN,
                                               "forbidden", (char *) message,
                                               ctx);

failed:

    ngx_http_finalize_request(r, rc);
    return NGX_DONE;
}


static ngx_http_notifyhub_keycache_node_t *
ngx_http_notifyhub_keycache_find(ngx_http_notifyhub_keycache_zone_t *kc,
    u_char *hash)
{
    ngx_int_t                            rc;
    ngx_rbtree_key_t                     rkey;
    ngx_rbtree_node_t                   *node, *sentinel;
    ngx_http_notifyhub_keycache_node_t  *kn;

    ngx_memcpy(&rkey, hash, sizeof(ngx_rbtree_key_t));

    node = kc->sh->rbtree.root;
    sentinel = kc->sh->rbtree.sentinel;

    while (node != sentinel) {

        if (rkey < node->key) {
            node = node->left;
            continue;
        }

        if (rkey > node->key) {
            node = node->right;
            continue;
        }

        kn = (ngx_http_notifyhub_keycache_node_t *) node;

        rc = ngx_memcmp(hash, kn->hash, NH_SHA256_LEN);

        if (rc == 0) {
            return kn;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    return NULL;
}


/*
 * Stores or replaces an entry. When the zone is full the least recently
 * used entries go; a full zone is logged at most once a minute.
 */
static void
ngx_http_notifyhub_keycache_store(ngx_http_request_t *r, u_char *hash,
    ngx_http_notifyhub_key_t *key, uint64_t generation)
{
    ngx_uint_t                           i;
    ngx_queue_t                         *q;
    ngx_http_notifyhub_main_conf_t      *nmcf;
    ngx_http_notifyhub_keycache_zone_t  *kc;
    ngx_http_notifyhub_keycache_node_t  *node, *old;

    nmcf = ngx_http_get_module_main_conf(r, ngx_http_notifyhub_module);
    kc = nmcf->key_cache_zone->data;

    ngx_shmtx_lock(&kc->shpool->mutex);

    if (generation > kc->sh->generation) {
        kc->sh->generation = generation;
    }

    node = ngx_http_notifyhub_keycache_find(kc, hash);

    if (node == NULL) {
        node = ngx_slab_alloc_locked(kc->shpool,
                                sizeof(ngx_http_notifyhub_keycache_node_t));

        for (i = 0; node == NULL && i < 8; i++) {
            if (ngx_queue_empty(&kc->sh->lru)) {
                break;
            }

            if (ngx_time() - kc->sh->full_logged >= 60) {
                kc->sh->full_logged = ngx_time();
                ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                              "notifyhub: key cache zone \"%V\" is full "
                              "with %ui entries, evicting the least "
                              "recently used", &nmcf->key_cache_zone->shm.name,
                              kc->sh->count);
            }

            q = ngx_queue_last(&kc->sh->lru);
            old = ngx_queue_data(q, ngx_http_notifyhub_keycache_node_t,
                                 queue);

            ngx_queue_remove(q);
            ngx_rbtree_delete(&kc->sh->rbtree, &old->node);
            ngx_slab_free_locked(kc->shpool, old);
            kc->sh->count--;

            node = ngx_slab_alloc_locked(kc->shpool,
                                sizeof(ngx_http_notifyhub_keycache_node_t));
        }

        if (node == NULL) {
            ngx_shmtx_unlock(&kc->shpool->mutex);
            return;
        }

        ngx_memcpy(node->hash, hash, NH_SHA256_LEN);
        ngx_memcpy(&node->node.key, hash, sizeof(ngx_rbtree_key_t));
        ngx_rbtree_insert(&kc->sh->rbtree, &node->node);
        kc->sh->count++;

    } else {
        ngx_queue_remove(&node->queue);
    }

    ngx_queue_insert_head(&kc->sh->lru, &node->queue);

    node->key = *key;
    node->generation = generation;
    node->cached_at = ngx_time();
    node->touched_at = ngx_time();

    ngx_shmtx_unlock(&kc->shpool->mutex);
}


static void
ngx_http_notifyhub_keycache_rbtree_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t                  **p;
    ngx_http_notifyhub_keycache_node_t  *kn, *kt;

    for ( ;; ) {

        if (node->key < temp->key) {
            p = &temp->left;

        } else if (node->key > temp->key) {
            p = &temp->right;

        } else {
            kn = (ngx_http_notifyhub_keycache_node_t *) node;
            kt = (ngx_http_notifyhub_keycache_node_t *) temp;

            p = (ngx_memcmp(kn->hash, kt->hash, NH_SHA256_LEN) < 0)
                ? &temp->left : &temp->right;
        }

        if (*p == sentinel) {
            break;
        }

        temp = *p;
    }

    *p = node;
    node->parent = temp;
    node->left = sentinel;
    node->right = sentinel;
    ngx_rbt_red(node);
}


/* Remembers a used key for the next last_used_at batch. */
static void
ngx_http_notifyhub_keycache_touch(u_char *key_id)
{
    ngx_uint_t                             i;
    ngx_http_notifyhub_keycache_worker_t  *w;

    w = ngx_http_notifyhub_keycache;
    if (w == NULL) {
        return;
    }

    for (i = 0; i < w->ntouched; i++) {
        if (ngx_memcmp(w->touched[i], key_id, NH_UUID_LEN) == 0) {
            return;
        }
    }

    if (w->ntouched == NGX_HTTP_NOTIFYHUB_TOUCH_BATCH) {
        /* The batch is full until the next flush; this use is dropped. */
        return;
    }

    ngx_memcpy(w->touched[w->ntouched++], key_id, NH_UUID_LEN);
}


static void
ngx_http_notifyhub_keycache_flush(ngx_event_t *ev)
{
    u_char                                *p, *list;
    ngx_int_t                              rc;
    ngx_uint_t                             i;
    const char                            *values[1];
    ngx_http_notifyhub_keycache_worker_t  *w;

    w = ngx_http_notifyhub_keycache;

    ngx_add_timer(&w->touch_timer, NGX_HTTP_NOTIFYHUB_TOUCH_INTERVAL * 1000);

    if (w->ntouched == 0 || w->touching) {
        return;
    }

    /* A PostgreSQL array literal: {uuid,uuid,...} */
    list = ngx_alloc(w->ntouched * (NH_UUID_STR_LEN + 1) + 2, w->log);
    if (list == NULL) {
        return;
    }

    p = list;
    *p++ = '{';

    for (i = 0; i < w->ntouched; i++) {
        if (i) {
            *p++ = ',';
        }

        nh_uuid_format(w->touched[i], (char *) p);
        p += NH_UUID_STR_LEN;
    }

    *p++ = '}';
    *p = '\0';

    values[0] = (const char *) list;

    rc = ngx_http_notifyhub_pg_query(NULL,
             "SELECT nh_api_keys_touch($1::uuid[])", 1, values, NULL, NULL,
             ngx_http_notifyhub_keycache_flushed, w);

    ngx_free(list);

    if (rc == NGX_OK) {
        w->touching = 1;
        w->ntouched = 0;
    }
}


static void
ngx_http_notifyhub_keycache_flushed(ngx_http_request_t *r, PGresult *res,
    void *data)
{
    ngx_http_notifyhub_keycache_worker_t  *w = data;

    w->touching = 0;

    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        ngx_log_error(NGX_LOG_WARN, w->log, 0,
                      "notifyhub: updating last_used_at of API keys "
                      "failed: %s",
                      res ? PQresultErrorMessage(res) : "no connection");
    }
}


static void
ngx_http_notifyhub_keycache_poll(ngx_event_t *ev)
{
    ngx_int_t                              rc;
    ngx_http_notifyhub_keycache_worker_t  *w;

    w = ngx_http_notifyhub_keycache;

    ngx_add_timer(&w->poll_timer, w->conf->key_cache_poll);

    if (w->polling || !ngx_http_notifyhub_pg_ready()) {
        return;
    }

    rc = ngx_http_notifyhub_pg_query(NULL,
                                     "SELECT nh_auth_generation()", 0, NULL,
                                     NULL, NULL,
                                     ngx_http_notifyhub_keycache_polled, w);
    if (rc == NGX_OK) {
        w->polling = 1;
    }
}


static void
ngx_http_notifyhub_keycache_polled(ngx_http_request_t *r, PGresult *res,
    void *data)
{
    ngx_http_notifyhub_keycache_worker_t  *w = data;

    w->polling = 0;

    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK
        || PQntuples(res) != 1)
    {
        return;
    }

    ngx_http_notifyhub_keycache_raise(strtoull(PQgetvalue(res, 0, 0), NULL,
                                               10));
}


/*
 * Moves the zone's generation forward, so older entries become stale. A
 * generation lower than the zone's means the database was replaced: then
 * every entry goes and the zone takes the new value.
 */
static void
ngx_http_notifyhub_keycache_raise(uint64_t generation)
{
    ngx_queue_t                           *q;
    ngx_http_notifyhub_keycache_node_t    *node;
    ngx_http_notifyhub_keycache_zone_t    *kc;
    ngx_http_notifyhub_keycache_worker_t  *w;

    w = ngx_http_notifyhub_keycache;
    kc = w->conf->key_cache_zone->data;

    ngx_shmtx_lock(&kc->shpool->mutex);

    if (generation < kc->sh->generation) {
        ngx_log_error(NGX_LOG_WARN, w->log, 0,
                      "notifyhub: the auth generation went back from %uL "
                      "to %uL, emptying the key cache",
                      kc->sh->generation, generation);

        while (!ngx_queue_empty(&kc->sh->lru)) {
            q = ngx_queue_head(&kc->sh->lru);
            node = ngx_queue_data(q, ngx_http_notifyhub_keycache_node_t,
                                  queue);

            ngx_queue_remove(q);
            ngx_rbtree_delete(&kc->sh->rbtree, &node->node);
            ngx_slab_free_locked(kc->shpool, node);
        }

        kc->sh->count = 0;
    }

    kc->sh->generation = generation;

    ngx_shmtx_unlock(&kc->shpool->mutex);
}


/* Turns "a,b,c" into the scope bits; "*" grants every scope. */
static uint32_t
ngx_http_notifyhub_parse_scopes(const char *list)
{
    size_t       len;
    uint32_t     bits;
    ngx_uint_t   i;
    const char  *p, *end;

    bits = 0;
    p = list;

    while (*p) {
        end = ngx_strchr(p, ',');
        len = end ? (size_t) (end - p) : ngx_strlen(p);

        if (len == 1 && *p == '*') {
            bits = 0xffffffff;

        } else {
            for (i = 0; ngx_http_notifyhub_scope_names[i]; i++) {
                if (ngx_strlen(ngx_http_notifyhub_scope_names[i]) == len
                    && ngx_strncmp(ngx_http_notifyhub_scope_names[i], p, len)
                       == 0)
                {
                    bits |= 1u << i;
                }
            }
        }

        if (end == NULL) {
            break;
        }

        p = end + 1;
    }

    return bits;
}
