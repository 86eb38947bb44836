-- The module builds the notification object in C from stored columns and
-- from what it accepted, so these functions only store and select rows.
-- Formatting seven times per row with to_char cost more PostgreSQL CPU
-- than the reads and writes themselves.

-- Stores one accepted notification with the status the module chose
-- (PENDING, or SCHEDULED for a future scheduledAt), and its idempotency
-- record when a key is given. p_reply is the 202 body the module sends,
-- kept for replays. A key seen before with the same request hash returns
-- the first reply with replayed = true; with another hash it is a 422. A
-- concurrent request with the same key waits on the key's row lock, then
-- takes the replay path. For a new notification status is 202 and body is
-- NULL.
CREATE FUNCTION nh_notification_insert(p_tenant_id uuid, p_id uuid,
    p_channel text, p_status text, p_priority text, p_recipient_id uuid,
    p_to jsonb, p_template_id uuid, p_template_version integer,
    p_subject text, p_body text, p_html text, p_data jsonb,
    p_metadata jsonb, p_idempotency_key text, p_request_hash bytea,
    p_scheduled_at timestamptz, p_created_at timestamptz, p_reply text,
    OUT status integer, OUT body text, OUT replayed boolean)
LANGUAGE plpgsql AS $$
DECLARE
    i idempotency_keys;
BEGIN
    replayed := false;

    IF p_idempotency_key IS NOT NULL THEN
        -- Claims the key, or takes over one whose retention has passed.
        INSERT INTO idempotency_keys AS ik (tenant_id, key, request_hash,
            notification_id, response_status, response_body, expires_at)
        VALUES (p_tenant_id, p_idempotency_key, p_request_hash, p_id, 202,
                p_reply, now() + interval '24 hours')
        ON CONFLICT ON CONSTRAINT idempotency_keys_pkey DO UPDATE
           SET request_hash = EXCLUDED.request_hash,
               notification_id = EXCLUDED.notification_id,
               response_status = EXCLUDED.response_status,
               response_body = EXCLUDED.response_body,
               created_at = now(),
               expires_at = EXCLUDED.expires_at
         WHERE ik.expires_at <= now();

        IF NOT FOUND THEN
            SELECT * INTO i FROM idempotency_keys ik
             WHERE ik.tenant_id = p_tenant_id AND ik.key = p_idempotency_key;

            IF i.request_hash <> p_request_hash THEN
                status := 422;
                body := nh_error('idempotency_key_reused',
                    'this idempotency key was used with a different request body',
                    nh_detail('idempotencyKey', 'reused'));
                RETURN;
            END IF;

            status := i.response_status;
            body := i.response_body;
            replayed := true;
            RETURN;
        END IF;
    END IF;

    -- A tenant deleted after its key was cached fails here with a foreign
    -- key violation, which the module turns into a 401.
    INSERT INTO notifications (id, tenant_id, channel, status, priority,
        recipient_id, to_address, template_id, template_version, subject,
        body, html, data, metadata, idempotency_key, scheduled_at,
        created_at, updated_at)
    VALUES (p_id, p_tenant_id, p_channel, p_status, p_priority,
            p_recipient_id, p_to, p_template_id, p_template_version,
            p_subject, p_body, p_html, p_data, p_metadata,
            p_idempotency_key, p_scheduled_at, p_created_at, p_created_at);

    status := 202;
END
$$;


-- Stores the valid items of one bulk request with a few set-based
-- statements. p_count is the request's item count, rejected items
-- included, because the plan limits the request. p_items is a JSON array
-- of objects with "i" (the item's index in the request), "id", "channel",
-- "status", "priority", "to", and optionally "recipientId", "templateId",
-- "templateVersion", "subject", "body", "html", "data", "metadata",
-- "idempotencyKey" and "scheduledAt". p_keyed has one object per item with
-- an idempotency key: "i", "id", "key", "hash" (hex) and "reply" (the
-- item's 202 notification object, kept for replays).
--
-- Returns one row with item -1 and the error when the whole request
-- fails: 401 when the tenant no longer exists, 413 over the plan's bulk
-- size. Otherwise it returns one row for each item that was not stored
-- now, with the status and body of a single send with the same key: the
-- first reply with 202, or a 422. Items without a row were stored with the
-- status the module gave them.
CREATE FUNCTION nh_notification_insert_batch(p_tenant_id uuid,
    p_count integer, p_created_at timestamptz, p_items jsonb, p_keyed json)
RETURNS TABLE (item integer, status integer, body text)
LANGUAGE plpgsql AS $$
DECLARE
    v_max integer;
    v_fresh integer[] := '{}';
    v_old integer[] := '{}';
BEGIN
    SELECT p.max_bulk_size INTO v_max
      FROM tenants t JOIN plans p ON p.name = t.plan
     WHERE t.id = p_tenant_id;

    IF NOT FOUND THEN
        RETURN QUERY SELECT -1, 401,
            nh_error('unauthorized', 'missing or invalid API key');
        RETURN;
    END IF;

    IF p_count > v_max THEN
        RETURN QUERY SELECT -1, 413, nh_error('payload_too_large',
            format('the request has %s notifications, but the plan allows'
                   ' at most %s per bulk request', p_count, v_max),
            (SELECT json_build_array(row_to_json(d))
               FROM (SELECT 'notifications' AS field, 'too_many' AS issue,
                            v_max AS max) d));
        RETURN;
    END IF;

    -- The first item with each key claims it, in key order, so that two
    -- requests with shared keys lock them in the same order.
    IF json_array_length(p_keyed) > 0 THEN
        WITH k AS (
            SELECT DISTINCT ON (x.key) x.i, x.id, x.key, x.hash, x.reply
              FROM json_to_recordset(p_keyed)
                   AS x(i integer, id uuid, key text, hash text, reply json)
             ORDER BY x.key, x.i
        ), claimed AS (
            INSERT INTO idempotency_keys AS ik (tenant_id, key, request_hash,
                notification_id, response_status, response_body, expires_at)
            SELECT p_tenant_id, k.key, decode(k.hash, 'hex'), k.id, 202,
                   k.reply::text, now() + interval '24 hours'
              FROM k
             ORDER BY k.key
            ON CONFLICT ON CONSTRAINT idempotency_keys_pkey DO UPDATE
               SET request_hash = EXCLUDED.request_hash,
                   notification_id = EXCLUDED.notification_id,
                   response_status = EXCLUDED.response_status,
                   response_body = EXCLUDED.response_body,
                   created_at = now(),
                   expires_at = EXCLUDED.expires_at
             WHERE ik.expires_at <= now()
            RETURNING ik.notification_id
        )
        SELECT COALESCE(array_agg(k.i), '{}') INTO v_fresh
          FROM k JOIN claimed c ON c.notification_id = k.id;

        SELECT COALESCE(array_agg(x.i), '{}') INTO v_old
          FROM json_to_recordset(p_keyed) AS x(i integer)
         WHERE x.i <> ALL (v_fresh);
    END IF;

    -- A tenant deleted after its key was cached fails here with a foreign
    -- key violation, which the module turns into a 401.
    INSERT INTO notifications (id, tenant_id, channel, status, priority,
        recipient_id, to_address, template_id, template_version, subject,
        body, html, data, metadata, idempotency_key, scheduled_at,
        created_at, updated_at)
    SELECT x.id, p_tenant_id, x.channel, x.status, x.priority,
           x."recipientId", x."to", x."templateId", x."templateVersion",
           x.subject, x.body, x.html, x.data, x.metadata,
           x."idempotencyKey", x."scheduledAt", p_created_at, p_created_at
      FROM jsonb_to_recordset(p_items) AS x(i integer, id uuid,
               channel text, status text, priority text, "recipientId" uuid,
               "to" jsonb, "templateId" uuid, "templateVersion" integer,
               subject text, body text, html text, data jsonb,
               metadata jsonb, "idempotencyKey" text,
               "scheduledAt" timestamptz)
     WHERE x.i <> ALL (v_old);

    -- A new statement, so keys that other transactions committed while
    -- this one waited for them are visible.
    IF cardinality(v_old) > 0 THEN
        RETURN QUERY
        SELECT x.i,
               CASE WHEN ik.request_hash = decode(x.hash, 'hex')
                    THEN ik.response_status ELSE 422 END,
               CASE WHEN ik.request_hash = decode(x.hash, 'hex')
                    THEN ik.response_body
                    ELSE nh_error('idempotency_key_reused',
                        'this idempotency key was used with a different'
                        ' request body',
                        nh_detail('idempotencyKey', 'reused')) END
          FROM json_to_recordset(p_keyed)
               AS x(i integer, key text, hash text)
          JOIN idempotency_keys ik
            ON ik.tenant_id = p_tenant_id AND ik.key = x.key
         WHERE x.i = ANY (v_old);
    END IF;
END
$$;


-- The current versions of a tenant's templates among p_ids, each as
-- nh_template_get returns it; deleted and unknown ids have no row.
CREATE FUNCTION nh_template_get_many(p_tenant_id uuid, p_ids uuid[])
RETURNS TABLE (id uuid, body text)
LANGUAGE sql STABLE AS $$
    SELECT t.id, nh_template_json(t, v)::text
      FROM templates t
      JOIN template_versions v
        ON v.template_id = t.id AND v.version = t.current_version
     WHERE t.tenant_id = p_tenant_id AND t.id = ANY (p_ids)
       AND t.deleted_at IS NULL
$$;


-- The functions that the functions above replace.
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN SELECT p.oid::regprocedure FROM pg_proc p
              WHERE p.proname IN ('nh_notification_create',
                                  'nh_notification_create_bulk',
                                  'nh_notification_get',
                                  'nh_notification_list')
    LOOP
        EXECUTE format('DROP FUNCTION %s', f);
    END LOOP;
END
$$;
