-- pgbench script of bench/run: the statement that the nginx module sends
-- for POST /api/notifications (ngx_http_notifyhub_notifications.c), with
-- the values of the benchmark's request body.
--
-- :tenant_id is the benchmark tenant's id. bench/run passes it with
-- -D tenant_id=..., and with -M prepared pgbench sends it as a text bind
-- parameter of a prepared statement, as the module does.
--
-- Differences from the module's request:
--   * gen_random_uuid() makes a version 4 (random) UUID, while the module
--     sends a time-ordered version 7 UUID that it generates itself.
--   * The other values are literals in the statement text, while the
--     module sends all 19 values as parameters. now() stands for the
--     creation time that the module sends.
--   * The module finds the tenant id in its API key cache, which costs a
--     query only when a key is not cached. pgbench leaves that query out.
-- The request has no idempotency key, no recipient, no schedule and no
-- template, so the module sends NULL for those, and no reply to keep.
SELECT status, body, replayed
  FROM nh_notification_insert(:tenant_id, gen_random_uuid(), 'EMAIL',
       'PENDING', 'NORMAL', NULL, '{"email":"bench@example.com"}', NULL,
       NULL, 's', 'b', NULL, NULL, NULL, NULL, NULL, NULL, now(), NULL);
