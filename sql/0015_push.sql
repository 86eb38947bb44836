-- Push delivery: the lease returns the whole "to" object and the data
-- object, a delivery-log row names its target, and one attempt may go to
-- several device tokens.

-- The device token of a push delivery-log row; NULL for other channels.
-- The full token is kept, because notifications.to_address contains it
-- already and a prefix could not be matched to a device.
ALTER TABLE delivery_logs ADD COLUMN target text;

-- The columns of 0003 and two more: to_address, for channels whose
-- recipient is not an email address, and data, which push sends along.
DROP FUNCTION nh_delivery_lease(uuid, integer);

CREATE FUNCTION nh_delivery_lease(p_id uuid, p_lease_seconds integer)
RETURNS TABLE (tenant_id uuid, channel text, to_email text, subject text,
               body text, html text, attempts integer, to_address jsonb,
               data jsonb)
LANGUAGE sql AS $$
    UPDATE notifications n
       SET status = 'PROCESSING',
           attempts = n.attempts + 1,
           lease_expires_at = now() + make_interval(secs => p_lease_seconds),
           updated_at = now()
     WHERE n.id = p_id AND n.status IN ('PENDING', 'RETRYING')
    RETURNING n.tenant_id, n.channel, n.to_address ->> 'email', n.subject,
              n.body, n.html, n.attempts, n.to_address, n.data
$$;

-- Marks the tenant's active device with this token inactive, because FCM
-- reported the token unregistered, and returns the number of devices
-- changed. It replaces the token-only function of 0012, so a token is
-- never matched across tenants.
DROP FUNCTION nh_device_deactivate(text);

CREATE FUNCTION nh_device_deactivate(p_tenant_id uuid, p_token text)
RETURNS integer
LANGUAGE sql AS $$
    WITH d AS (
        UPDATE devices x
           SET deactivated_at = now(), updated_at = now()
         WHERE x.token = p_token AND x.tenant_id = p_tenant_id
           AND x.deactivated_at IS NULL
        RETURNING 1
    )
    SELECT count(*)::integer FROM d
$$;

-- Stores the outcome of one attempt that went to several targets, in one
-- transaction. p_results is a JSON array with one object per target:
-- {"target", "status" (SENT or FAILED), "httpStatus",
-- "providerMessageId", "error", "durationMs", "unregistered"}. Each
-- becomes a delivery-log row, in array order. The notification is SENT
-- with the first sent target's message id when any target was sent, else
-- FAILED with the last target's error. A SENT notification keeps no
-- last_error; the failed targets' errors are in their log rows. Each
-- unregistered target is passed to nh_device_deactivate. status is NULL,
-- and nothing is written, when the notification is no longer PROCESSING.
CREATE FUNCTION nh_delivery_record_targets(p_id uuid, p_provider text,
    p_results jsonb, OUT status text, OUT deactivated integer)
LANGUAGE plpgsql AS $$
DECLARE
    v_tenant uuid;
    v_attempt integer;
    v_sent jsonb;
    v_last jsonb;
    r jsonb;
BEGIN
    deactivated := 0;

    IF jsonb_typeof(p_results) IS DISTINCT FROM 'array'
       OR jsonb_array_length(p_results) = 0
    THEN
        RAISE EXCEPTION 'p_results must be a non-empty JSON array'
              USING ERRCODE = 'invalid_parameter_value';
    END IF;

    SELECT x INTO v_sent FROM jsonb_array_elements(p_results) x
     WHERE x ->> 'status' = 'SENT' LIMIT 1;
    v_last := p_results -> -1;

    UPDATE notifications n
       SET status = CASE WHEN v_sent IS NOT NULL THEN 'SENT' ELSE 'FAILED' END,
           provider = p_provider,
           provider_message_id = COALESCE(v_sent ->> 'providerMessageId',
                                          n.provider_message_id),
           last_error = CASE WHEN v_sent IS NULL THEN v_last ->> 'error' END,
           lease_expires_at = NULL,
           sent_at = CASE WHEN v_sent IS NOT NULL THEN now() END,
           failed_at = CASE WHEN v_sent IS NULL THEN now() END,
           updated_at = now()
     WHERE n.id = p_id AND n.status = 'PROCESSING'
    RETURNING n.tenant_id, n.attempts, n.status
         INTO v_tenant, v_attempt, status;

    IF NOT FOUND THEN
        status := NULL;
        RETURN;
    END IF;

    FOR r IN SELECT x FROM jsonb_array_elements(p_results) x LOOP
        IF r ->> 'status' NOT IN ('SENT', 'FAILED') THEN
            RAISE EXCEPTION 'invalid delivery status %', r ->> 'status'
                  USING ERRCODE = 'invalid_parameter_value';
        END IF;

        INSERT INTO delivery_logs (tenant_id, notification_id, attempt,
            status, provider, http_status, provider_message_id, error,
            duration_ms, target)
        VALUES (v_tenant, p_id, v_attempt, r ->> 'status', p_provider,
                (r ->> 'httpStatus')::integer, r ->> 'providerMessageId',
                r ->> 'error', (r ->> 'durationMs')::integer,
                r ->> 'target');

        IF (r ->> 'unregistered')::boolean AND r ->> 'target' IS NOT NULL THEN
            PERFORM nh_device_deactivate(v_tenant, r ->> 'target');
            deactivated := deactivated + 1;
        END IF;
    END LOOP;
END
$$;
