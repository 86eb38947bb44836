-- Recipient preferences at delivery: the lease returns the preferences of
-- the notification's recipient, and the worker decides to send, to skip
-- (the channel is opted out) or to defer (quiet hours).

-- The columns of 0015 and the preferences. The recipient is the
-- notification's recipientId or, for a notification sent to an address,
-- the tenant's recipient with that email, phone or device token.
-- channel_enabled is NULL when the recipient has no preferences, which
-- means enabled. quiet_start and quiet_end are minutes after midnight, and
-- quiet_timezone is the preference's zone, else the recipient's, else
-- UTC.
DROP FUNCTION nh_delivery_lease(uuid, integer);

CREATE FUNCTION nh_delivery_lease(p_id uuid, p_lease_seconds integer)
RETURNS TABLE (tenant_id uuid, channel text, to_email text, subject text,
               body text, html text, attempts integer, to_address jsonb,
               data jsonb, priority text, channel_enabled boolean,
               quiet_start integer, quiet_end integer, quiet_timezone text)
LANGUAGE sql AS $$
    WITH n AS (
        UPDATE notifications n
           SET status = 'PROCESSING',
               attempts = n.attempts + 1,
               lease_expires_at = now()
                                  + make_interval(secs => p_lease_seconds),
               updated_at = now()
         WHERE n.id = p_id AND n.status IN ('PENDING', 'RETRYING')
        RETURNING n.*
    ), r AS (
        SELECT n.id AS notification_id,
               COALESCE(n.recipient_id,
                   (SELECT x.id FROM recipients x
                     WHERE x.tenant_id = n.tenant_id
                       AND x.email = lower(n.to_address ->> 'email')),
                   (SELECT x.id FROM recipients x
                     WHERE x.tenant_id = n.tenant_id
                       AND x.phone = n.to_address ->> 'phone'),
                   (SELECT d.recipient_id FROM devices d
                     WHERE d.tenant_id = n.tenant_id
                       AND d.token = n.to_address ->> 'deviceToken'))
                   AS recipient_id
          FROM n
    )
    SELECT n.tenant_id, n.channel, n.to_address ->> 'email', n.subject,
           n.body, n.html, n.attempts, n.to_address, n.data, n.priority,
           CASE n.channel WHEN 'EMAIL' THEN p.email_enabled
                          WHEN 'SMS' THEN p.sms_enabled
                          ELSE p.push_enabled END,
           (extract(epoch FROM p.quiet_start) / 60)::integer,
           (extract(epoch FROM p.quiet_end) / 60)::integer,
           CASE WHEN p.quiet_start IS NOT NULL
                THEN COALESCE(p.quiet_timezone, rc.timezone, 'UTC') END
      FROM n
      JOIN r ON r.notification_id = n.id
      LEFT JOIN recipients rc
             ON rc.id = r.recipient_id AND rc.tenant_id = n.tenant_id
      LEFT JOIN recipient_preferences p
             ON p.recipient_id = r.recipient_id AND p.tenant_id = n.tenant_id
$$;


-- Records a delivery that the worker decided not to make now: SKIPPED
-- (the recipient opted out of the channel), with p_reason as lastError,
-- or SCHEDULED until p_until (quiet hours), when the scheduled release
-- queues it again. A deferral does not count as an attempt. Each writes a
-- delivery-log row with the reason. Returns the status, or NULL when the
-- notification is no longer PROCESSING.
CREATE FUNCTION nh_delivery_decide(p_id uuid, p_status text,
    p_reason text, p_until timestamptz)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    v_tenant uuid;
    v_attempt integer;
BEGIN
    IF p_status NOT IN ('SKIPPED', 'SCHEDULED')
       OR (p_status = 'SCHEDULED' AND p_until IS NULL)
    THEN
        RAISE EXCEPTION 'invalid delivery decision % until %',
              p_status, p_until
              USING ERRCODE = 'invalid_parameter_value';
    END IF;

    UPDATE notifications n
       SET status = p_status,
           last_error = CASE WHEN p_status = 'SKIPPED' THEN p_reason END,
           scheduled_at = CASE WHEN p_status = 'SCHEDULED' THEN p_until
                               ELSE n.scheduled_at END,
           attempts = CASE WHEN p_status = 'SCHEDULED' THEN n.attempts - 1
                           ELSE n.attempts END,
           lease_expires_at = NULL,
           updated_at = now()
     WHERE n.id = p_id AND n.status = 'PROCESSING'
    RETURNING n.tenant_id, n.attempts INTO v_tenant, v_attempt;

    IF NOT FOUND THEN
        RETURN NULL;
    END IF;

    INSERT INTO delivery_logs (tenant_id, notification_id, attempt, status,
        error)
    VALUES (v_tenant, p_id,
            v_attempt + CASE WHEN p_status = 'SCHEDULED' THEN 1 ELSE 0 END,
            p_status, p_reason);

    RETURN p_status;
END
$$;
