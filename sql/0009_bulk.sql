-- Bulk sends: the items of one POST /api/notifications/bulk that passed
-- the module's checks, stored in one call and so in one round trip and one
-- transaction.

-- Checks the request's item count against the tenant's plan, then stores
-- each item of p_items with nh_notification_create, in order. p_count is
-- the number of items in the request, rejected ones included, because the
-- plan limits the request and not only what is stored. Each element of
-- p_items is an object with "index" (its position in the request), "id",
-- "channel", "priority", "to", and optionally "subject", "body", "html",
-- "data", "metadata", "idempotencyKey", "requestHash" (hex) and
-- "scheduledAt".
--
-- Returns 413 when p_count is over the plan's max_bulk_size, 401 when the
-- tenant no longer exists, else 202 with a JSON array in the order of
-- p_items of {"index", "status", "replayed", "queue", "result"}: status
-- and result are what a single send with the same item returns (202 with
-- the notification, or 422 with the error object), and queue is true when
-- the module must produce the notification to Kafka now.
CREATE FUNCTION nh_notification_create_bulk(p_tenant_id uuid,
    p_count integer, p_items jsonb,
    OUT status integer, OUT body text)
LANGUAGE plpgsql AS $$
DECLARE
    v_max integer;
    x jsonb;
    c record;
    v_results json[] := '{}';
BEGIN
    SELECT p.max_bulk_size INTO v_max
      FROM tenants t JOIN plans p ON p.name = t.plan
     WHERE t.id = p_tenant_id;

    IF NOT FOUND THEN
        status := 401;
        body := nh_error('unauthorized', 'missing or invalid API key');
        RETURN;
    END IF;

    IF p_count > v_max THEN
        status := 413;
        body := nh_error('payload_too_large',
            format('the request has %s notifications, but the plan allows'
                   ' at most %s per bulk request', p_count, v_max),
            (SELECT json_build_array(row_to_json(d))
               FROM (SELECT 'notifications' AS field, 'too_many' AS issue,
                            v_max AS max) d));
        RETURN;
    END IF;

    FOR x IN SELECT e FROM jsonb_array_elements(p_items) AS e LOOP
        SELECT * INTO c FROM nh_notification_create(p_tenant_id,
            (x ->> 'id')::uuid, x ->> 'channel', x ->> 'priority',
            x -> 'to', x ->> 'subject', x ->> 'body', x ->> 'html',
            x -> 'data', x -> 'metadata', x ->> 'idempotencyKey',
            decode(x ->> 'requestHash', 'hex'),
            (x ->> 'scheduledAt')::timestamptz, NULL, NULL);

        v_results := array_append(v_results, (SELECT row_to_json(r) FROM (
            SELECT (x ->> 'index')::integer AS index, c.status,
                   c.replayed,
                   c.status = 202 AND NOT c.replayed AND NOT c.scheduled
                       AS queue,
                   c.body::json AS result) r));
    END LOOP;

    status := 202;
    body := array_to_json(v_results)::text;
END
$$;
