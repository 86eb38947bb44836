-- Functions the nginx module calls. Each API request is one call, so one
-- round trip, and one transaction. They return the HTTP status and the JSON
-- body the module sends; for an error the body is the inner "error" object
-- ({"code", "message", "details"?}) and the module wraps it in the
-- envelope with the request id.

-- Formats a time as RFC 3339 in UTC with milliseconds, or NULL.
CREATE FUNCTION nh_ts(t timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
$$;

-- The JSON builders use row_to_json, which prints compact JSON with the
-- keys in the order given (json_build_object puts spaces around colons).
CREATE FUNCTION nh_error(p_code text, p_message text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT row_to_json(e)::text
      FROM (SELECT p_code AS code, p_message AS message) e
$$;

CREATE FUNCTION nh_error(p_code text, p_message text, p_details json)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT row_to_json(e)::text
      FROM (SELECT p_code AS code, p_message AS message,
                   p_details AS details) e
$$;

-- One entry of an error's "details": {"field", "issue"}.
CREATE FUNCTION nh_detail(p_field text, p_issue text) RETURNS json
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT json_build_array(row_to_json(d))
      FROM (SELECT p_field AS field, p_issue AS issue) d
$$;

CREATE FUNCTION nh_user_json(u users) RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT row_to_json(x) FROM (SELECT
        u.id, u.email, u.name,
        nh_ts(u.created_at) AS "createdAt",
        nh_ts(u.updated_at) AS "updatedAt") x
$$;

CREATE FUNCTION nh_tenant_json(t tenants) RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT row_to_json(x) FROM (SELECT
        t.id, t.name, t.plan, t.status, t.settings,
        nh_ts(t.created_at) AS "createdAt",
        nh_ts(t.updated_at) AS "updatedAt") x
$$;

CREATE FUNCTION nh_notification_json(n notifications) RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT row_to_json(x) FROM (SELECT
        n.id, n.channel, n.status, n.priority,
        n.recipient_id AS "recipientId",
        n.to_address AS "to",
        n.template_id AS "templateId",
        n.template_version AS "templateVersion",
        n.subject, n.body, n.html, n.data, n.metadata,
        n.idempotency_key AS "idempotencyKey",
        nh_ts(n.scheduled_at) AS "scheduledAt",
        n.attempts,
        nh_ts(n.next_attempt_at) AS "nextAttemptAt",
        n.last_error AS "lastError",
        n.provider,
        n.provider_message_id AS "providerMessageId",
        nh_ts(n.created_at) AS "createdAt",
        nh_ts(n.updated_at) AS "updatedAt",
        nh_ts(n.sent_at) AS "sentAt",
        nh_ts(n.delivered_at) AS "deliveredAt",
        nh_ts(n.failed_at) AS "failedAt") x
$$;

-- Resolves an owner's session token hash. status 0 means authenticated.
CREATE FUNCTION nh_session_user(p_token_hash bytea,
    OUT user_id uuid, OUT status integer, OUT body text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_expires timestamptz;
BEGIN
    SELECT s.user_id, s.expires_at INTO user_id, v_expires
      FROM sessions s WHERE s.token_hash = p_token_hash;

    IF NOT FOUND THEN
        status := 401;
        body := nh_error('unauthorized', 'missing or invalid session token');
    ELSIF v_expires <= now() THEN
        user_id := NULL;
        status := 401;
        body := nh_error('session_expired', 'the session has expired; log in again');
    ELSE
        status := 0;
    END IF;
END
$$;

-- Resolves an API key hash to its tenant and checks the scope. status 0
-- means authenticated and allowed.
CREATE FUNCTION nh_api_key_tenant(p_key_hash bytea, p_scope text,
    OUT tenant_id uuid, OUT status integer, OUT body text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    k record;
BEGIN
    SELECT a.tenant_id, a.status, a.expires_at, a.scopes,
           t.status AS tenant_status
      INTO k
      FROM api_keys a JOIN tenants t ON t.id = a.tenant_id
     WHERE a.key_hash = p_key_hash;

    IF NOT FOUND THEN
        status := 401;
        body := nh_error('unauthorized', 'missing or invalid API key');
    ELSIF k.status = 'REVOKED' THEN
        status := 401;
        body := nh_error('api_key_revoked', 'the API key has been revoked');
    ELSIF k.expires_at IS NOT NULL AND k.expires_at <= now() THEN
        status := 401;
        body := nh_error('api_key_expired', 'the API key has expired');
    ELSIF k.tenant_status <> 'ACTIVE' THEN
        status := 403;
        body := nh_error('forbidden', 'the tenant is suspended');
    ELSIF NOT ('*' = ANY (k.scopes) OR p_scope = ANY (k.scopes)) THEN
        status := 403;
        body := nh_error('forbidden', 'the API key lacks the scope ' || p_scope,
            nh_detail('scope', 'missing'));
    ELSE
        tenant_id := k.tenant_id;
        status := 0;
    END IF;
END
$$;

-- Creates an owner and a first session. The module lower-cases and
-- validates the email and hashes the password beforehand.
CREATE FUNCTION nh_signup(p_user_id uuid, p_email text, p_password_hash text,
    p_name text, p_session_id uuid, p_token_hash bytea, p_ttl_seconds integer,
    OUT status integer, OUT body text)
LANGUAGE plpgsql AS $$
DECLARE
    u users;
    v_expires timestamptz := now() + make_interval(secs => p_ttl_seconds);
BEGIN
    INSERT INTO users (id, email, password_hash, name)
    VALUES (p_user_id, p_email, p_password_hash, p_name)
    ON CONFLICT (email) DO NOTHING
    RETURNING * INTO u;

    IF NOT FOUND THEN
        status := 409;
        body := nh_error('conflict', 'an account with this email already exists',
            nh_detail('email', 'duplicate'));
        RETURN;
    END IF;

    INSERT INTO sessions (id, user_id, token_hash, expires_at)
    VALUES (p_session_id, p_user_id, p_token_hash, v_expires);

    status := 201;
    body := row_to_json(x)::text
      FROM (SELECT nh_user_json(u) AS "user",
                   nh_ts(v_expires) AS "expiresAt") x;
END
$$;

-- Returns the owner's id and password hash for a login, or no row.
CREATE FUNCTION nh_login_lookup(p_email text)
RETURNS TABLE (user_id uuid, password_hash text)
LANGUAGE sql STABLE AS $$
    SELECT u.id, u.password_hash FROM users u WHERE u.email = p_email
$$;

CREATE FUNCTION nh_session_create(p_session_id uuid, p_user_id uuid,
    p_token_hash bytea, p_ttl_seconds integer,
    OUT status integer, OUT body text)
LANGUAGE plpgsql AS $$
DECLARE
    v_expires timestamptz := now() + make_interval(secs => p_ttl_seconds);
BEGIN
    -- Expired sessions of this owner go when a new one starts.
    DELETE FROM sessions s WHERE s.user_id = p_user_id AND s.expires_at <= now();

    INSERT INTO sessions (id, user_id, token_hash, expires_at)
    VALUES (p_session_id, p_user_id, p_token_hash, v_expires);

    status := 200;
    body := row_to_json(x)::text
      FROM (SELECT nh_ts(v_expires) AS "expiresAt") x;
END
$$;

CREATE FUNCTION nh_logout(p_token_hash bytea,
    OUT status integer, OUT body text)
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM sessions s
     WHERE s.token_hash = p_token_hash AND s.expires_at > now();

    IF FOUND THEN
        status := 204;
    ELSE
        status := 401;
        body := nh_error('unauthorized', 'missing or invalid session token');
    END IF;
END
$$;

-- Creates a tenant owned by the session's owner and its first API key
-- (scope "*"). The module adds the key itself to the reply; only its hash
-- reaches the database.
CREATE FUNCTION nh_tenant_create(p_token_hash bytea, p_tenant_id uuid,
    p_name text, p_plan text, p_key_id uuid, p_key_prefix text,
    p_key_hash bytea, OUT status integer, OUT body text)
LANGUAGE plpgsql AS $$
DECLARE
    s record;
    t tenants;
    k api_keys;
BEGIN
    s := nh_session_user(p_token_hash);
    IF s.status <> 0 THEN
        status := s.status;
        body := s.body;
        RETURN;
    END IF;

    INSERT INTO tenants (id, owner_id, name, plan)
    VALUES (p_tenant_id, s.user_id, p_name, p_plan)
    RETURNING * INTO t;

    INSERT INTO api_keys (id, tenant_id, name, prefix, key_hash, scopes)
    VALUES (p_key_id, p_tenant_id, 'default', p_key_prefix, p_key_hash,
            ARRAY['*'])
    RETURNING * INTO k;

    status := 201;
    body := row_to_json(x)::text
      FROM (SELECT nh_tenant_json(t) AS tenant,
                   (SELECT row_to_json(y) FROM (SELECT k.id, k.prefix, k.scopes,
                        nh_ts(k.expires_at) AS "expiresAt") y) AS "apiKey") x;
END
$$;

-- Stores a notification as PENDING, with its idempotency record when a key
-- is given. A repeat of a key with the same request hash returns the first
-- reply with replayed = true, and one with another hash is a 422. A
-- concurrent request with the same key waits on the key's row lock, then
-- takes the replay path, so only one notification is created.
CREATE FUNCTION nh_notification_create(p_key_hash bytea, p_id uuid,
    p_channel text, p_priority text, p_to jsonb, p_subject text, p_body text,
    p_html text, p_data jsonb, p_metadata jsonb, p_idempotency_key text,
    p_request_hash bytea, p_scheduled_at timestamptz,
    OUT status integer, OUT body text, OUT replayed boolean,
    OUT tenant_id uuid)
LANGUAGE plpgsql AS $$
DECLARE
    a record;
    n notifications;
    i idempotency_keys;
BEGIN
    replayed := false;

    a := nh_api_key_tenant(p_key_hash, 'notifications:write');
    IF a.status <> 0 THEN
        status := a.status;
        body := a.body;
        RETURN;
    END IF;

    tenant_id := a.tenant_id;

    IF p_idempotency_key IS NOT NULL THEN
        -- Claims the key, or takes over one whose retention has passed.
        INSERT INTO idempotency_keys AS ik (tenant_id, key, request_hash,
            notification_id, response_status, response_body, expires_at)
        VALUES (a.tenant_id, p_idempotency_key, p_request_hash, p_id, 202, '',
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
             WHERE ik.tenant_id = a.tenant_id AND ik.key = p_idempotency_key;

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

    INSERT INTO notifications (id, tenant_id, channel, status, priority,
        to_address, subject, body, html, data, metadata, idempotency_key,
        scheduled_at)
    VALUES (p_id, a.tenant_id, p_channel, 'PENDING', p_priority, p_to,
            p_subject, p_body, p_html, p_data, p_metadata, p_idempotency_key,
            p_scheduled_at)
    RETURNING * INTO n;

    status := 202;
    body := nh_notification_json(n)::text;

    IF p_idempotency_key IS NOT NULL THEN
        UPDATE idempotency_keys ik SET response_body = body
         WHERE ik.tenant_id = a.tenant_id AND ik.key = p_idempotency_key;
    END IF;
END
$$;

CREATE FUNCTION nh_notification_get(p_key_hash bytea, p_id uuid,
    OUT status integer, OUT body text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    a record;
    n notifications;
BEGIN
    a := nh_api_key_tenant(p_key_hash, 'notifications:read');
    IF a.status <> 0 THEN
        status := a.status;
        body := a.body;
        RETURN;
    END IF;

    SELECT * INTO n FROM notifications x
     WHERE x.id = p_id AND x.tenant_id = a.tenant_id;

    IF NOT FOUND THEN
        status := 404;
        body := nh_error('not_found', 'notification not found');
        RETURN;
    END IF;

    status := 200;
    body := nh_notification_json(n)::text;
END
$$;
