-- Recipients: the people a tenant notifies, with their push devices and
-- their channel preferences and quiet hours. The module validates and
-- normalizes every field (emails lower-cased, platforms and channels in
-- upper case, time zones checked against the IANA names) before it calls
-- these functions, so they only store, read and enforce uniqueness and the
-- plan limit.
--
-- Notifications keep their recipient_id without a foreign key, so a
-- deleted recipient leaves its past notifications as they were.

CREATE TABLE recipients (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    external_id  text,
    email        text,
    phone        text,
    name         text,
    timezone     text,
    locale       text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- externalId, email and phone are each unique within a tenant. Concurrent
-- writes of one value meet at these indexes, and the functions map the
-- index name of a unique_violation to the field in the 409. The same
-- indexes serve the list filters, which are equality matches.
CREATE UNIQUE INDEX recipients_tenant_external_id_key
    ON recipients (tenant_id, external_id) WHERE external_id IS NOT NULL;
CREATE UNIQUE INDEX recipients_tenant_email_key
    ON recipients (tenant_id, email) WHERE email IS NOT NULL;
CREATE UNIQUE INDEX recipients_tenant_phone_key
    ON recipients (tenant_id, phone) WHERE phone IS NOT NULL;

-- Tenant listing, newest first, with the id as the keyset tie-breaker.
CREATE INDEX recipients_tenant_created_idx
    ON recipients (tenant_id, created_at DESC, id DESC);

-- The number of recipients of each tenant, checked against the plan's
-- max_recipients. The row lock of the update orders concurrent creates of
-- one tenant, so together they never pass the limit. A row is created by
-- the first recipient of a tenant.
-- NOTE: only nh_recipient_create and nh_recipient_delete change count, so
-- recipients inserted or deleted by other means leave it wrong.
CREATE TABLE recipient_counts (
    tenant_id  uuid PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    count      integer NOT NULL CHECK (count >= 0)
);

-- A push device token. A token belongs to at most one recipient of a
-- tenant, so registering it for another recipient moves it there. FCM
-- issues one token per app installation, and the user who signed in last
-- on that installation gets its pushes. deactivated_at is set when FCM
-- reports the token as unregistered.
CREATE TABLE devices (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    recipient_id    uuid NOT NULL
                    REFERENCES recipients (id) ON DELETE CASCADE,
    token           text NOT NULL,
    platform        text NOT NULL
                    CHECK (platform IN ('IOS', 'ANDROID', 'WEB')),
    deactivated_at  timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- The token leads, so nh_device_deactivate, which receives only the
-- token, reads the same index as the per-tenant lookups.
CREATE UNIQUE INDEX devices_token_tenant_key ON devices (token, tenant_id);

-- A recipient's devices, newest first.
CREATE INDEX devices_recipient_created_idx
    ON devices (recipient_id, created_at DESC, id DESC);

-- One row per recipient that has changed its preferences. A recipient
-- without a row has the defaults: every channel on, no quiet hours.
-- quiet_timezone NULL means the recipient's timezone, and UTC when the
-- recipient has none.
CREATE TABLE recipient_preferences (
    recipient_id    uuid PRIMARY KEY
                    REFERENCES recipients (id) ON DELETE CASCADE,
    tenant_id       uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    email_enabled   boolean NOT NULL DEFAULT true,
    sms_enabled     boolean NOT NULL DEFAULT true,
    push_enabled    boolean NOT NULL DEFAULT true,
    quiet_start     time,
    quiet_end       time,
    quiet_timezone  text,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK ((quiet_start IS NULL) = (quiet_end IS NULL)),
    CHECK (quiet_start IS DISTINCT FROM quiet_end OR quiet_start IS NULL),
    CHECK (quiet_timezone IS NULL OR quiet_start IS NOT NULL)
);

-- Deleting a tenant deletes these rows through tenant_id, which this
-- index finds.
CREATE INDEX recipient_preferences_tenant_idx
    ON recipient_preferences (tenant_id);


CREATE FUNCTION nh_recipient_json(r recipients) RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT row_to_json(x) FROM (SELECT
        r.id, r.external_id AS "externalId", r.email, r.phone, r.name,
        r.timezone, r.locale,
        nh_ts(r.created_at) AS "createdAt",
        nh_ts(r.updated_at) AS "updatedAt") x
$$;

CREATE FUNCTION nh_device_json(d devices) RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT row_to_json(x) FROM (SELECT
        d.id, d.token, d.platform, d.deactivated_at IS NULL AS active,
        nh_ts(d.created_at) AS "createdAt",
        nh_ts(d.updated_at) AS "updatedAt") x
$$;

-- The preferences of a recipient. p is NULL for a recipient without a
-- row, which gets the defaults.
CREATE FUNCTION nh_preferences_json(p_recipient_id uuid,
    p recipient_preferences)
RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT row_to_json(x) FROM (SELECT
        p_recipient_id AS "recipientId",
        (SELECT row_to_json(c) FROM (SELECT
             COALESCE(p.email_enabled, true) AS "EMAIL",
             COALESCE(p.sms_enabled, true) AS "SMS",
             COALESCE(p.push_enabled, true) AS "PUSH") c) AS channels,
        CASE WHEN p.quiet_start IS NULL THEN NULL
             ELSE (SELECT row_to_json(q) FROM (SELECT
                       to_char(p.quiet_start, 'HH24:MI') AS start,
                       to_char(p.quiet_end, 'HH24:MI') AS "end",
                       p.quiet_timezone AS timezone) q)
        END AS "quietHours",
        nh_ts(p.updated_at) AS "updatedAt") x
$$;

CREATE FUNCTION nh_recipient_not_found() RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT nh_error('not_found', 'recipient not found')
$$;

-- The 409 of a unique index on recipients, named by its field.
CREATE FUNCTION nh_recipient_duplicate(p_index text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT nh_error('conflict',
        format('another recipient of this tenant has this %s', f.field),
        nh_detail(f.field, 'duplicate'))
      FROM (SELECT CASE p_index
                WHEN 'recipients_tenant_external_id_key' THEN 'externalId'
                WHEN 'recipients_tenant_email_key' THEN 'email'
                WHEN 'recipients_tenant_phone_key' THEN 'phone'
                ELSE 'id' END AS field) f
$$;

-- The 400 of a recipient left without externalId, email, phone or device.
CREATE FUNCTION nh_recipient_unreachable() RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT nh_error('invalid_request',
        'a recipient needs at least one of externalId, email, phone or '
        'deviceTokens',
        nh_detail('body', 'missing_identifier'))
$$;

-- Stores a token for a recipient: a new device (inserted = true), the
-- device of this token as it is, or the device moved from another
-- recipient of the tenant. A stored token that is moved, changes platform
-- or was deactivated is updated and active again.
CREATE FUNCTION nh_device_store(p_tenant_id uuid, p_recipient_id uuid,
    p_id uuid, p_token text, p_platform text,
    OUT device devices, OUT inserted boolean)
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO devices AS d (id, tenant_id, recipient_id, token, platform)
    VALUES (p_id, p_tenant_id, p_recipient_id, p_token, p_platform)
    ON CONFLICT (token, tenant_id) DO UPDATE
       SET recipient_id = EXCLUDED.recipient_id,
           platform = EXCLUDED.platform,
           deactivated_at = NULL,
           updated_at = now()
     WHERE d.recipient_id <> EXCLUDED.recipient_id
        OR d.platform <> EXCLUDED.platform
        OR d.deactivated_at IS NOT NULL
    RETURNING * INTO device;

    IF NOT FOUND THEN
        -- The token is already stored for this recipient as requested.
        SELECT * INTO device FROM devices d
         WHERE d.token = p_token AND d.tenant_id = p_tenant_id;
    END IF;

    inserted := device.id = p_id;
END
$$;

-- Creates a recipient with its devices (p_devices: a JSON array of
-- {"id", "token", "platform"}, distinct tokens) in one transaction, within
-- the plan's max_recipients.
CREATE FUNCTION nh_recipient_create(p_tenant_id uuid, p_id uuid,
    p_external_id text, p_email text, p_phone text, p_name text,
    p_timezone text, p_locale text, p_devices jsonb,
    OUT status integer, OUT body text)
LANGUAGE plpgsql AS $$
DECLARE
    r recipients;
    d record;
    v_max integer;
    v_index text;
BEGIN
    SELECT p.max_recipients INTO v_max
      FROM tenants t JOIN plans p ON p.name = t.plan
     WHERE t.id = p_tenant_id;

    IF NOT FOUND THEN
        -- The tenant was deleted after its key was cached.
        status := 401;
        body := nh_error('unauthorized', 'missing or invalid API key');
        RETURN;
    END IF;

    IF p_external_id IS NULL AND p_email IS NULL AND p_phone IS NULL
       AND jsonb_array_length(COALESCE(p_devices, '[]')) = 0
    THEN
        status := 400;
        body := nh_recipient_unreachable();
        RETURN;
    END IF;

    BEGIN
        INSERT INTO recipient_counts AS c (tenant_id, count)
        VALUES (p_tenant_id, 1)
        ON CONFLICT (tenant_id) DO UPDATE SET count = c.count + 1
         WHERE c.count < v_max;

        IF NOT FOUND OR v_max < 1 THEN
            RAISE EXCEPTION USING ERRCODE = 'check_violation',
                CONSTRAINT = 'recipient_counts_plan_limit';
        END IF;

        INSERT INTO recipients (id, tenant_id, external_id, email, phone, name,
            timezone, locale)
        VALUES (p_id, p_tenant_id, p_external_id, p_email, p_phone, p_name,
                p_timezone, p_locale)
        RETURNING * INTO r;
    EXCEPTION
        WHEN unique_violation THEN
            GET STACKED DIAGNOSTICS v_index = CONSTRAINT_NAME;
            status := 409;
            body := nh_recipient_duplicate(v_index);
            RETURN;
        WHEN check_violation THEN
            GET STACKED DIAGNOSTICS v_index = CONSTRAINT_NAME;
            IF v_index <> 'recipient_counts_plan_limit' THEN
                RAISE;
            END IF;
            status := 403;
            body := nh_error('forbidden',
                format('the plan allows at most %s recipients; delete '
                       'recipients or change the plan', v_max),
                json_build_array(json_build_object('field', 'recipients',
                    'issue', 'plan_limit', 'max', v_max)));
            RETURN;
    END;

    FOR d IN
        SELECT x.id, x.token, x.platform
          FROM jsonb_to_recordset(COALESCE(p_devices, '[]'))
               AS x(id uuid, token text, platform text)
    LOOP
        PERFORM nh_device_store(p_tenant_id, r.id, d.id, d.token,
                                d.platform);
    END LOOP;

    status := 201;
    body := nh_recipient_json(r)::text;
END
$$;

-- Lists a tenant's recipients, newest first, in pages of p_limit after the
-- position (p_after_usec, p_after_id). The filters are optional and
-- combine. Each is an equality match on a unique index, so a filtered
-- page has at most one row. The query text contains only the filters
-- given, so each call is planned for them.
CREATE FUNCTION nh_recipient_list(p_tenant_id uuid, p_limit integer,
    p_after_usec bigint, p_after_id uuid, p_email text, p_phone text,
    p_external_id text,
    OUT status integer, OUT body text, OUT next_usec bigint,
    OUT next_id uuid)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    r recipients;
    v_last recipients;
    v_items json[] := '{}';
    -- Without a cursor the page starts above every stored row.
    v_after timestamptz := COALESCE(nh_usec_ts(p_after_usec), 'infinity');
    v_after_id uuid := COALESCE(p_after_id,
                                'ffffffff-ffff-ffff-ffff-ffffffffffff');
    v_where text;
BEGIN
    v_where := 'x.tenant_id = $1 AND (x.created_at, x.id) < ($2, $3)';

    IF p_email IS NOT NULL THEN
        v_where := v_where || ' AND x.email = $4';
    END IF;

    IF p_phone IS NOT NULL THEN
        v_where := v_where || ' AND x.phone = $5';
    END IF;

    IF p_external_id IS NOT NULL THEN
        v_where := v_where || ' AND x.external_id = $6';
    END IF;

    -- One row past the page shows whether a next page exists.
    FOR r IN EXECUTE
        'SELECT x.* FROM recipients x WHERE ' || v_where
        || ' ORDER BY x.created_at DESC, x.id DESC LIMIT $7'
        USING p_tenant_id, v_after, v_after_id, p_email, p_phone,
              p_external_id, p_limit + 1
    LOOP
        IF cardinality(v_items) = p_limit THEN
            next_usec := nh_ts_usec(v_last.created_at);
            next_id := v_last.id;
            EXIT;
        END IF;

        v_items := array_append(v_items, nh_recipient_json(r));
        v_last := r;
    END LOOP;

    status := 200;
    body := array_to_json(v_items)::text;
END
$$;

CREATE FUNCTION nh_recipient_get(p_tenant_id uuid, p_id uuid,
    OUT status integer, OUT body text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    r recipients;
BEGIN
    SELECT * INTO r FROM recipients x
     WHERE x.id = p_id AND x.tenant_id = p_tenant_id;

    IF NOT FOUND THEN
        status := 404;
        body := nh_recipient_not_found();
        RETURN;
    END IF;

    status := 200;
    body := nh_recipient_json(r)::text;
END
$$;

-- Applies p_changes, an object with only the fields to change, keyed by
-- column name (external_id, email, phone, name, timezone, locale). A JSON
-- null clears a field. A recipient must keep an externalId, email, phone
-- or device.
CREATE FUNCTION nh_recipient_update(p_tenant_id uuid, p_id uuid,
    p_changes jsonb,
    OUT status integer, OUT body text)
LANGUAGE plpgsql AS $$
DECLARE
    r recipients;
    v_index text;
BEGIN
    SELECT * INTO r FROM recipients x
     WHERE x.id = p_id AND x.tenant_id = p_tenant_id
       FOR UPDATE;

    IF NOT FOUND THEN
        status := 404;
        body := nh_recipient_not_found();
        RETURN;
    END IF;

    -- ->> returns NULL for a JSON null, which clears the field.
    IF p_changes ? 'external_id' THEN
        r.external_id := p_changes ->> 'external_id';
    END IF;
    IF p_changes ? 'email' THEN
        r.email := p_changes ->> 'email';
    END IF;
    IF p_changes ? 'phone' THEN
        r.phone := p_changes ->> 'phone';
    END IF;
    IF p_changes ? 'name' THEN
        r.name := p_changes ->> 'name';
    END IF;
    IF p_changes ? 'timezone' THEN
        r.timezone := p_changes ->> 'timezone';
    END IF;
    IF p_changes ? 'locale' THEN
        r.locale := p_changes ->> 'locale';
    END IF;

    IF r.external_id IS NULL AND r.email IS NULL AND r.phone IS NULL
       AND NOT EXISTS (SELECT 1 FROM devices d WHERE d.recipient_id = r.id)
    THEN
        status := 400;
        body := nh_recipient_unreachable();
        RETURN;
    END IF;

    BEGIN
        UPDATE recipients x
           SET external_id = r.external_id, email = r.email,
               phone = r.phone, name = r.name, timezone = r.timezone,
               locale = r.locale, updated_at = now()
         WHERE x.id = r.id
        RETURNING * INTO r;
    EXCEPTION WHEN unique_violation THEN
        GET STACKED DIAGNOSTICS v_index = CONSTRAINT_NAME;
        status := 409;
        body := nh_recipient_duplicate(v_index);
        RETURN;
    END;

    status := 200;
    body := nh_recipient_json(r)::text;
END
$$;

-- Deletes the recipient with its devices and preferences. Its past
-- notifications keep their recipient_id.
CREATE FUNCTION nh_recipient_delete(p_tenant_id uuid, p_id uuid,
    OUT status integer, OUT body text)
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM recipients x
     WHERE x.id = p_id AND x.tenant_id = p_tenant_id;

    IF NOT FOUND THEN
        status := 404;
        body := nh_recipient_not_found();
        RETURN;
    END IF;

    UPDATE recipient_counts c SET count = greatest(c.count - 1, 0)
     WHERE c.tenant_id = p_tenant_id;

    status := 204;
    body := '';
END
$$;


-- Preferences.

CREATE FUNCTION nh_preferences_get(p_tenant_id uuid, p_recipient_id uuid,
    OUT status integer, OUT body text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    p recipient_preferences;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM recipients x
                    WHERE x.id = p_recipient_id
                      AND x.tenant_id = p_tenant_id)
    THEN
        status := 404;
        body := nh_recipient_not_found();
        RETURN;
    END IF;

    SELECT * INTO p FROM recipient_preferences x
     WHERE x.recipient_id = p_recipient_id;

    status := 200;
    body := nh_preferences_json(p_recipient_id, p)::text;
END
$$;

-- Replaces the preferences. The quiet hours are given as all three of
-- start, end (distinct) and an optional time zone, or as NULLs.
CREATE FUNCTION nh_preferences_put(p_tenant_id uuid, p_recipient_id uuid,
    p_email boolean, p_sms boolean, p_push boolean, p_quiet_start time,
    p_quiet_end time, p_quiet_timezone text,
    OUT status integer, OUT body text)
LANGUAGE plpgsql AS $$
DECLARE
    p recipient_preferences;
BEGIN
    -- The row lock keeps a concurrent delete of the recipient from
    -- removing it between this check and the insert.
    PERFORM 1 FROM recipients x
      WHERE x.id = p_recipient_id AND x.tenant_id = p_tenant_id
        FOR KEY SHARE;

    IF NOT FOUND THEN
        status := 404;
        body := nh_recipient_not_found();
        RETURN;
    END IF;

    INSERT INTO recipient_preferences AS x (recipient_id, tenant_id,
        email_enabled, sms_enabled, push_enabled, quiet_start, quiet_end,
        quiet_timezone)
    VALUES (p_recipient_id, p_tenant_id, p_email, p_sms, p_push,
            p_quiet_start, p_quiet_end, p_quiet_timezone)
    ON CONFLICT (recipient_id) DO UPDATE
       SET email_enabled = EXCLUDED.email_enabled,
           sms_enabled = EXCLUDED.sms_enabled,
           push_enabled = EXCLUDED.push_enabled,
           quiet_start = EXCLUDED.quiet_start,
           quiet_end = EXCLUDED.quiet_end,
           quiet_timezone = EXCLUDED.quiet_timezone,
           updated_at = now()
    RETURNING * INTO p;

    status := 200;
    body := nh_preferences_json(p_recipient_id, p)::text;
END
$$;

-- Resets the preferences to the defaults by deleting the row.
CREATE FUNCTION nh_preferences_delete(p_tenant_id uuid, p_recipient_id uuid,
    OUT status integer, OUT body text)
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM recipients x
                    WHERE x.id = p_recipient_id
                      AND x.tenant_id = p_tenant_id)
    THEN
        status := 404;
        body := nh_recipient_not_found();
        RETURN;
    END IF;

    DELETE FROM recipient_preferences x
     WHERE x.recipient_id = p_recipient_id;

    status := 204;
    body := '';
END
$$;


-- Devices.

-- Lists a recipient's devices, active or not, newest first.
CREATE FUNCTION nh_device_list(p_tenant_id uuid, p_recipient_id uuid,
    p_limit integer, p_after_usec bigint, p_after_id uuid,
    OUT status integer, OUT body text, OUT next_usec bigint,
    OUT next_id uuid)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    d devices;
    v_last devices;
    v_items json[] := '{}';
    v_after timestamptz := COALESCE(nh_usec_ts(p_after_usec), 'infinity');
    v_after_id uuid := COALESCE(p_after_id,
                                'ffffffff-ffff-ffff-ffff-ffffffffffff');
BEGIN
    IF NOT EXISTS (SELECT 1 FROM recipients x
                    WHERE x.id = p_recipient_id
                      AND x.tenant_id = p_tenant_id)
    THEN
        status := 404;
        body := nh_recipient_not_found();
        RETURN;
    END IF;

    FOR d IN
        SELECT * FROM devices x
         WHERE x.recipient_id = p_recipient_id
           AND (x.created_at, x.id) < (v_after, v_after_id)
         ORDER BY x.created_at DESC, x.id DESC
         LIMIT p_limit + 1
    LOOP
        IF cardinality(v_items) = p_limit THEN
            next_usec := nh_ts_usec(v_last.created_at);
            next_id := v_last.id;
            EXIT;
        END IF;

        v_items := array_append(v_items, nh_device_json(d));
        v_last := d;
    END LOOP;

    status := 200;
    body := array_to_json(v_items)::text;
END
$$;

-- Registers a token for a recipient: 201 with a new device, or 200 with
-- the existing device of the token, moved to this recipient if another
-- recipient of the tenant had it.
CREATE FUNCTION nh_device_add(p_tenant_id uuid, p_recipient_id uuid,
    p_id uuid, p_token text, p_platform text,
    OUT status integer, OUT body text)
LANGUAGE plpgsql AS $$
DECLARE
    s record;
BEGIN
    -- The row lock keeps a concurrent delete of the recipient from
    -- removing it between this check and the insert.
    PERFORM 1 FROM recipients x
      WHERE x.id = p_recipient_id AND x.tenant_id = p_tenant_id
        FOR KEY SHARE;

    IF NOT FOUND THEN
        status := 404;
        body := nh_recipient_not_found();
        RETURN;
    END IF;

    s := nh_device_store(p_tenant_id, p_recipient_id, p_id, p_token,
                         p_platform);

    status := CASE WHEN s.inserted THEN 201 ELSE 200 END;
    body := nh_device_json(s.device)::text;
END
$$;

CREATE FUNCTION nh_device_delete(p_tenant_id uuid, p_recipient_id uuid,
    p_id uuid,
    OUT status integer, OUT body text)
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM devices x
     WHERE x.id = p_id AND x.recipient_id = p_recipient_id
       AND x.tenant_id = p_tenant_id;

    IF FOUND THEN
        status := 204;
        body := '';
        RETURN;
    END IF;

    status := 404;

    IF EXISTS (SELECT 1 FROM recipients x
                WHERE x.id = p_recipient_id AND x.tenant_id = p_tenant_id)
    THEN
        body := nh_error('not_found', 'device not found');
    ELSE
        body := nh_recipient_not_found();
    END IF;
END
$$;

-- Marks every active device with this token inactive, in every tenant,
-- and returns how many it changed. The push worker is to call it when FCM
-- returns the error UNREGISTERED for the token; nothing calls it yet.
-- Registering the token again through the API makes the device active
-- again.
CREATE FUNCTION nh_device_deactivate(p_token text) RETURNS integer
LANGUAGE sql AS $$
    WITH changed AS (
        UPDATE devices d SET deactivated_at = now(), updated_at = now()
         WHERE d.token = p_token AND d.deactivated_at IS NULL
        RETURNING 1)
    SELECT count(*)::integer FROM changed
$$;
