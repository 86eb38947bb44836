-- Functions the delivery workers call.

-- Leases a notification for delivery: PENDING or RETRYING becomes
-- PROCESSING until the lease expires. No row means the notification is not
-- deliverable now (already handled, cancelled or deleted), so a redelivered
-- Kafka message is harmless.
CREATE FUNCTION nh_delivery_lease(p_id uuid, p_lease_seconds integer)
RETURNS TABLE (tenant_id uuid, channel text, to_email text, subject text,
               body text, html text, attempts integer)
LANGUAGE sql AS $$
    UPDATE notifications n
       SET status = 'PROCESSING',
           attempts = n.attempts + 1,
           lease_expires_at = now() + make_interval(secs => p_lease_seconds),
           updated_at = now()
     WHERE n.id = p_id AND n.status IN ('PENDING', 'RETRYING')
    RETURNING n.tenant_id, n.channel, n.to_address ->> 'email', n.subject,
              n.body, n.html, n.attempts
$$;

-- Stores a delivery outcome (SENT or FAILED) and its delivery-log row in
-- one transaction. Returns the new status, or NULL when the notification
-- is no longer PROCESSING (its lease was taken over, or it was deleted).
CREATE FUNCTION nh_delivery_record(p_id uuid, p_status text, p_provider text,
    p_http_status integer, p_provider_message_id text, p_error text,
    p_duration_ms integer)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    v_tenant uuid;
    v_attempt integer;
BEGIN
    IF p_status NOT IN ('SENT', 'FAILED') THEN
        RAISE EXCEPTION 'invalid delivery status %', p_status
              USING ERRCODE = 'invalid_parameter_value';
    END IF;

    UPDATE notifications n
       SET status = p_status,
           provider = p_provider,
           provider_message_id = COALESCE(p_provider_message_id,
                                          n.provider_message_id),
           last_error = p_error,
           lease_expires_at = NULL,
           sent_at = CASE WHEN p_status = 'SENT' THEN now() END,
           failed_at = CASE WHEN p_status = 'FAILED' THEN now() END,
           updated_at = now()
     WHERE n.id = p_id AND n.status = 'PROCESSING'
    RETURNING n.tenant_id, n.attempts INTO v_tenant, v_attempt;

    IF NOT FOUND THEN
        RETURN NULL;
    END IF;

    INSERT INTO delivery_logs (tenant_id, notification_id, attempt, status,
        provider, http_status, provider_message_id, error, duration_ms)
    VALUES (v_tenant, p_id, v_attempt, p_status, p_provider, p_http_status,
            p_provider_message_id, p_error, p_duration_ms);

    RETURN p_status;
END
$$;

-- Claims PENDING notifications of a channel whose Kafka message may have
-- been lost (not touched for p_older_than_seconds), for the outbox sweeper
-- to produce again. Bumping updated_at keeps the next sweeps off them for
-- the same time; SKIP LOCKED lets several sweepers run at once.
CREATE FUNCTION nh_outbox_claim(p_channel text, p_older_than_seconds integer,
    p_limit integer)
RETURNS TABLE (id uuid, tenant_id uuid)
LANGUAGE sql AS $$
    WITH due AS (
        SELECT n.id FROM notifications n
         WHERE n.channel = p_channel AND n.status = 'PENDING'
           AND n.updated_at < now() - make_interval(secs => p_older_than_seconds)
         ORDER BY n.updated_at
         LIMIT p_limit
           FOR UPDATE SKIP LOCKED
    )
    UPDATE notifications n SET updated_at = now()
      FROM due WHERE n.id = due.id
    RETURNING n.id, n.tenant_id
$$;
