-- Sending to a recipient: the module reads the recipients' addresses at
-- acceptance and stores them in the notification's to_address, so a later
-- change of the recipient does not change where an accepted notification
-- goes.

-- A recipient may register at most this many devices, so a push to a
-- recipient has a bounded fan-out.
CREATE FUNCTION nh_recipient_device_max() RETURNS integer
LANGUAGE sql IMMUTABLE AS $$ SELECT 50 $$;


-- The addresses of a tenant's recipients among p_ids: email, phone and
-- the tokens of the active devices as a JSON array, oldest first. Unknown
-- ids have no row.
CREATE FUNCTION nh_recipient_addresses(p_tenant_id uuid, p_ids uuid[])
RETURNS TABLE (id uuid, email text, phone text, device_tokens json)
LANGUAGE sql STABLE AS $$
    SELECT r.id, r.email, r.phone,
           (SELECT COALESCE(json_agg(d.token ORDER BY d.created_at, d.id),
                            '[]')
              FROM devices d
             WHERE d.recipient_id = r.id AND d.deactivated_at IS NULL)
      FROM recipients r
     WHERE r.tenant_id = p_tenant_id AND r.id = ANY (p_ids)
$$;


-- nh_device_add of 0012 with the device limit: a token that would be a
-- recipient's active device number nh_recipient_device_max() + 1 is a
-- 409. The recipient's row lock orders concurrent adds for one recipient,
-- so together they stay within the limit.
CREATE OR REPLACE FUNCTION nh_device_add(p_tenant_id uuid,
    p_recipient_id uuid, p_id uuid, p_token text, p_platform text,
    OUT status integer, OUT body text)
LANGUAGE plpgsql AS $$
DECLARE
    s record;
    v_active integer;
BEGIN
    PERFORM 1 FROM recipients x
      WHERE x.id = p_recipient_id AND x.tenant_id = p_tenant_id
        FOR NO KEY UPDATE;

    IF NOT FOUND THEN
        status := 404;
        body := nh_recipient_not_found();
        RETURN;
    END IF;

    SELECT count(*) INTO v_active FROM devices d
     WHERE d.recipient_id = p_recipient_id AND d.deactivated_at IS NULL
       AND d.token <> p_token;

    IF v_active >= nh_recipient_device_max() THEN
        status := 409;
        body := nh_error('conflict',
            format('a recipient may have at most %s active devices;'
                   ' delete one before adding another', v_active),
            (SELECT json_build_array(row_to_json(d))
               FROM (SELECT 'token' AS field, 'too_many_devices' AS issue,
                            nh_recipient_device_max() AS max) d));
        RETURN;
    END IF;

    s := nh_device_store(p_tenant_id, p_recipient_id, p_id, p_token,
                         p_platform);

    status := CASE WHEN s.inserted THEN 201 ELSE 200 END;
    body := nh_device_json(s.device)::text;
END
$$;
