-- The nginx module caches API keys in shared memory. Every change that can
-- make a cached key invalid bumps auth_generation: revocation, an expiry or
-- scope change, deletion, and tenant suspension or deletion. Each nginx
-- worker polls it and drops entries older than the new generation.

CREATE TABLE auth_generation (
    id          integer PRIMARY KEY CHECK (id = 1),
    generation  bigint NOT NULL
);

INSERT INTO auth_generation (id, generation) VALUES (1, 1);

CREATE FUNCTION nh_auth_generation_bump() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE auth_generation SET generation = generation + 1 WHERE id = 1;
    RETURN NULL;
END
$$;

-- last_used_at changes often and does not affect authentication, so only
-- the columns that do fire the trigger.
CREATE TRIGGER api_keys_auth_update
    AFTER UPDATE ON api_keys
    FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status
          OR OLD.expires_at IS DISTINCT FROM NEW.expires_at
          OR OLD.scopes IS DISTINCT FROM NEW.scopes
          OR OLD.key_hash IS DISTINCT FROM NEW.key_hash
          OR OLD.tenant_id IS DISTINCT FROM NEW.tenant_id)
    EXECUTE FUNCTION nh_auth_generation_bump();

CREATE TRIGGER api_keys_auth_delete
    AFTER DELETE ON api_keys
    FOR EACH STATEMENT
    EXECUTE FUNCTION nh_auth_generation_bump();

CREATE TRIGGER tenants_auth_update
    AFTER UPDATE ON tenants
    FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION nh_auth_generation_bump();

CREATE TRIGGER tenants_auth_delete
    AFTER DELETE ON tenants
    FOR EACH STATEMENT
    EXECUTE FUNCTION nh_auth_generation_bump();

CREATE FUNCTION nh_auth_generation() RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT generation FROM auth_generation WHERE id = 1
$$;

-- Looks up an API key by its hash for the cache. key_found is false for an
-- unknown key, so the module can cache that result too. The generation
-- comes from the same snapshot as the key.
CREATE FUNCTION nh_api_key_lookup(p_key_hash bytea,
    OUT key_found boolean, OUT key_id uuid, OUT tenant_id uuid, OUT status text,
    OUT expires_at_ms bigint, OUT scopes text, OUT tenant_status text,
    OUT generation bigint)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    generation := nh_auth_generation();

    SELECT a.id, a.tenant_id, a.status,
           (extract(epoch FROM a.expires_at) * 1000)::bigint,
           array_to_string(a.scopes, ','), t.status
      INTO key_id, tenant_id, status, expires_at_ms, scopes, tenant_status
      FROM api_keys a JOIN tenants t ON t.id = a.tenant_id
     WHERE a.key_hash = p_key_hash;

    key_found := FOUND;
END
$$;

-- Sets last_used_at for a batch of keys; the module gathers them for a few
-- seconds instead of writing on every request.
CREATE FUNCTION nh_api_keys_touch(p_key_ids uuid[]) RETURNS void
LANGUAGE sql AS $$
    UPDATE api_keys SET last_used_at = now() WHERE id = ANY (p_key_ids)
$$;

-- The notification functions now take the tenant the module authenticated
-- (from its key cache) instead of the key hash.
DROP FUNCTION nh_notification_create(bytea, uuid, text, text, jsonb, text,
    text, text, jsonb, jsonb, text, bytea, timestamptz);
DROP FUNCTION nh_notification_get(bytea, uuid);
DROP FUNCTION nh_api_key_tenant(bytea, text);

-- Stores a notification as PENDING, with its idempotency record when a key
-- is given. A repeat of a key with the same request hash returns the first
-- reply with replayed = true, and one with another hash is a 422. A
-- concurrent request with the same key waits on the key's row lock, then
-- takes the replay path, so only one notification is created.
CREATE FUNCTION nh_notification_create(p_tenant_id uuid, p_id uuid,
    p_channel text, p_priority text, p_to jsonb, p_subject text, p_body text,
    p_html text, p_data jsonb, p_metadata jsonb, p_idempotency_key text,
    p_request_hash bytea, p_scheduled_at timestamptz,
    OUT status integer, OUT body text, OUT replayed boolean)
LANGUAGE plpgsql AS $$
DECLARE
    n notifications;
    i idempotency_keys;
BEGIN
    replayed := false;

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
    VALUES (p_id, p_tenant_id, p_channel, 'PENDING', p_priority, p_to,
            p_subject, p_body, p_html, p_data, p_metadata, p_idempotency_key,
            p_scheduled_at)
    RETURNING * INTO n;

    status := 202;
    body := nh_notification_json(n)::text;

    IF p_idempotency_key IS NOT NULL THEN
        UPDATE idempotency_keys ik SET response_body = body
         WHERE ik.tenant_id = p_tenant_id AND ik.key = p_idempotency_key;
    END IF;
END
$$;

CREATE FUNCTION nh_notification_get(p_tenant_id uuid, p_id uuid,
    OUT status integer, OUT body text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    n notifications;
BEGIN
    SELECT * INTO n FROM notifications x
     WHERE x.id = p_id AND x.tenant_id = p_tenant_id;

    IF NOT FOUND THEN
        status := 404;
        body := nh_error('not_found', 'notification not found');
        RETURN;
    END IF;

    status := 200;
    body := nh_notification_json(n)::text;
END
$$;
