-- Provider callbacks: a delivery report moves a SENT notification to
-- DELIVERED or FAILED, found by the provider's message id.

-- Applies a delivery report of p_provider for p_message_id, which matches
-- the stored id with or without the angle brackets that Mailgun puts
-- around it. Only a SENT notification changes, so a repeated or late
-- report never moves a status backwards. Each change writes a
-- delivery-log row. Returns the number of notifications changed.
CREATE FUNCTION nh_provider_event(p_provider text, p_message_id text,
    p_status text, p_error text, OUT updated integer)
LANGUAGE plpgsql AS $$
BEGIN
    IF p_status NOT IN ('DELIVERED', 'FAILED') THEN
        RAISE EXCEPTION 'invalid provider event status %', p_status
              USING ERRCODE = 'invalid_parameter_value';
    END IF;

    WITH n AS (
        UPDATE notifications n
           SET status = p_status,
               delivered_at = CASE WHEN p_status = 'DELIVERED' THEN now()
                                   ELSE n.delivered_at END,
               failed_at = CASE WHEN p_status = 'FAILED' THEN now()
                                ELSE n.failed_at END,
               last_error = CASE WHEN p_status = 'FAILED' THEN p_error
                                 ELSE n.last_error END,
               updated_at = now()
         WHERE n.provider_message_id IN (p_message_id,
                                         '<' || p_message_id || '>')
           AND n.provider = p_provider
           AND n.status = 'SENT'
        RETURNING n.id, n.tenant_id, n.attempts
    )
    INSERT INTO delivery_logs (tenant_id, notification_id, attempt, status,
        provider, provider_message_id, error)
    SELECT n.tenant_id, n.id, n.attempts, p_status, p_provider,
           p_message_id, p_error
      FROM n;

    GET DIAGNOSTICS updated = ROW_COUNT;
END
$$;
