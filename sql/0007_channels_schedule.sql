-- SMS and PUSH notifications, and scheduled sends: a notification with a
-- future scheduledAt is stored as SCHEDULED, and the channel's worker moves
-- it to PENDING and queues it once the time has come.

DROP FUNCTION nh_notification_create(uuid, uuid, text, text, jsonb, text,
    text, text, jsonb, jsonb, text, bytea, timestamptz);

-- Stores a notification as PENDING, or SCHEDULED when p_scheduled_at is in
-- the future, with its idempotency record when a key is given. A repeat of
-- a key with the same request hash returns the first reply with replayed
-- = true, and one with another hash is a 422. A concurrent request with
-- the same key waits on the key's row lock, then takes the replay path, so
-- only one notification is created. scheduled tells the module not to
-- queue the notification now.
CREATE FUNCTION nh_notification_create(p_tenant_id uuid, p_id uuid,
    p_channel text, p_priority text, p_to jsonb, p_subject text, p_body text,
    p_html text, p_data jsonb, p_metadata jsonb, p_idempotency_key text,
    p_request_hash bytea, p_scheduled_at timestamptz,
    OUT status integer, OUT body text, OUT replayed boolean,
    OUT scheduled boolean)
LANGUAGE plpgsql AS $$
DECLARE
    n notifications;
    i idempotency_keys;
BEGIN
    replayed := false;
    scheduled := p_scheduled_at IS NOT NULL AND p_scheduled_at > now();

    IF p_idempotency_key IS NOT NULL THEN
        -- Claims the key, or takes over one whose retention has passed.
        INSERT INTO idempotency_keys AS ik (tenant_id, key, request_hash,
            notification_id, response_status, response_body, expires_at)
        VALUES (p_tenant_id, p_idempotency_key, p_request_hash, p_id, 202, '',
                now() + interval '24 hours')
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
        to_address, subject, body, html, data, metadata, idempotency_key,
        scheduled_at)
    VALUES (p_id, p_tenant_id, p_channel,
            CASE WHEN scheduled THEN 'SCHEDULED' ELSE 'PENDING' END,
            p_priority, p_to, p_subject, p_body, p_html, p_data, p_metadata,
            p_idempotency_key, p_scheduled_at)
    RETURNING * INTO n;

    status := 202;
    body := nh_notification_json(n)::text;

    IF p_idempotency_key IS NOT NULL THEN
        UPDATE idempotency_keys ik SET response_body = body
         WHERE ik.tenant_id = p_tenant_id AND ik.key = p_idempotency_key;
    END IF;
END
$$;

-- Scheduled notifications whose time has come, by scheduled time.
CREATE INDEX notifications_scheduled_idx
    ON notifications (channel, scheduled_at) WHERE status = 'SCHEDULED';

-- Moves due SCHEDULED notifications of a channel to PENDING for the worker
-- to queue. SKIP LOCKED lets several workers run it at once.
CREATE FUNCTION nh_schedule_claim(p_channel text, p_limit integer)
RETURNS TABLE (id uuid, tenant_id uuid)
LANGUAGE sql AS $$
    WITH due AS (
        SELECT n.id FROM notifications n
         WHERE n.channel = p_channel AND n.status = 'SCHEDULED'
           AND n.scheduled_at <= now()
         ORDER BY n.scheduled_at
         LIMIT p_limit
           FOR UPDATE SKIP LOCKED
    )
    UPDATE notifications n SET status = 'PENDING', updated_at = now()
      FROM due WHERE n.id = due.id
    RETURNING n.id, n.tenant_id
$$;
