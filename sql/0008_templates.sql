-- Templates: a named subject, body and html per tenant and channel, kept
-- as numbered versions. An update adds a version and never changes an
-- older one, because a notification records the template id and version
-- it was rendered from. A delete is soft: the row stays with deleted_at
-- set, its versions stay, and the API reports it as not found. The module
-- parses the texts and passes the variable paths in; these functions only
-- store and read.

CREATE TABLE templates (
    id               uuid PRIMARY KEY,
    tenant_id        uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name             text NOT NULL,
    channel          text NOT NULL
                     CHECK (channel IN ('EMAIL', 'SMS', 'PUSH')),
    current_version  integer NOT NULL DEFAULT 1,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    deleted_at       timestamptz
);

-- A name is unique per tenant and channel among templates not deleted.
-- Concurrent creates with one name meet here, and the functions turn the
-- violation into a 409.
CREATE UNIQUE INDEX templates_tenant_channel_name_key
    ON templates (tenant_id, channel, name) WHERE deleted_at IS NULL;

-- Tenant listing, newest first, with the id as the keyset tie-breaker.
CREATE INDEX templates_tenant_created_idx
    ON templates (tenant_id, created_at DESC, id DESC)
    WHERE deleted_at IS NULL;

CREATE TABLE template_versions (
    template_id  uuid NOT NULL REFERENCES templates (id) ON DELETE CASCADE,
    version      integer NOT NULL CHECK (version >= 1),
    subject      text,
    body         text NOT NULL,
    html         text,
    variables    text[] NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (template_id, version)
);

-- The template with its current version, in the API's form.
CREATE FUNCTION nh_template_json(t templates, v template_versions)
RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT row_to_json(x) FROM (SELECT
        t.id, t.name, t.channel, v.version, v.subject, v.body, v.html,
        v.variables,
        nh_ts(t.created_at) AS "createdAt",
        nh_ts(t.updated_at) AS "updatedAt") x
$$;

CREATE FUNCTION nh_template_duplicate() RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT nh_error('conflict',
        'a template with this name already exists for this channel',
        nh_detail('name', 'duplicate'))
$$;

CREATE FUNCTION nh_template_create(p_tenant_id uuid, p_id uuid, p_name text,
    p_channel text, p_subject text, p_body text, p_html text,
    p_variables text[],
    OUT status integer, OUT body text)
LANGUAGE plpgsql AS $$
DECLARE
    t templates;
    v template_versions;
BEGIN
    BEGIN
        INSERT INTO templates (id, tenant_id, name, channel)
        VALUES (p_id, p_tenant_id, p_name, p_channel)
        RETURNING * INTO t;
    EXCEPTION WHEN unique_violation THEN
        status := 409;
        body := nh_template_duplicate();
        RETURN;
    END;

    INSERT INTO template_versions (template_id, version, subject, body, html,
        variables)
    VALUES (t.id, 1, p_subject, p_body, p_html, p_variables)
    RETURNING * INTO v;

    status := 201;
    body := nh_template_json(t, v)::text;
END
$$;

CREATE FUNCTION nh_template_list(p_tenant_id uuid, p_channel text,
    p_limit integer, p_after_usec bigint, p_after_id uuid,
    OUT status integer, OUT body text, OUT next_usec bigint,
    OUT next_id uuid)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    r record;
    v_last templates;
    v_items json[] := '{}';
    -- Without a cursor the page starts above every stored row.
    v_after timestamptz := COALESCE(nh_usec_ts(p_after_usec), 'infinity');
    v_after_id uuid := COALESCE(p_after_id,
                                'ffffffff-ffff-ffff-ffff-ffffffffffff');
BEGIN
    -- The query reads one row past the page to find out whether a next
    -- page exists.
    FOR r IN
        SELECT t, v FROM templates t
          JOIN template_versions v
            ON v.template_id = t.id AND v.version = t.current_version
         WHERE t.tenant_id = p_tenant_id AND t.deleted_at IS NULL
           AND (p_channel IS NULL OR t.channel = p_channel)
           AND (t.created_at, t.id) < (v_after, v_after_id)
         ORDER BY t.created_at DESC, t.id DESC
         LIMIT p_limit + 1
    LOOP
        IF cardinality(v_items) = p_limit THEN
            next_usec := nh_ts_usec(v_last.created_at);
            next_id := v_last.id;
            EXIT;
        END IF;

        v_items := array_append(v_items, nh_template_json(r.t, r.v));
        v_last := r.t;
    END LOOP;

    status := 200;
    body := array_to_json(v_items)::text;
END
$$;

-- The template with its current version. Notifications and the render
-- route read the texts from this reply too.
CREATE FUNCTION nh_template_get(p_tenant_id uuid, p_id uuid,
    OUT status integer, OUT body text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    t templates;
    v template_versions;
BEGIN
    SELECT * INTO t FROM templates x
     WHERE x.id = p_id AND x.tenant_id = p_tenant_id
       AND x.deleted_at IS NULL;

    IF NOT FOUND THEN
        status := 404;
        body := nh_error('not_found', 'template not found');
        RETURN;
    END IF;

    SELECT * INTO v FROM template_versions x
     WHERE x.template_id = t.id AND x.version = t.current_version;

    status := 200;
    body := nh_template_json(t, v)::text;
END
$$;

-- Stores the texts as the next version and replaces name and channel. The
-- row lock orders concurrent updates, so each gets its own version number.
CREATE FUNCTION nh_template_update(p_tenant_id uuid, p_id uuid, p_name text,
    p_channel text, p_subject text, p_body text, p_html text,
    p_variables text[],
    OUT status integer, OUT body text)
LANGUAGE plpgsql AS $$
DECLARE
    t templates;
    v template_versions;
BEGIN
    SELECT * INTO t FROM templates x
     WHERE x.id = p_id AND x.tenant_id = p_tenant_id
       AND x.deleted_at IS NULL
       FOR UPDATE;

    IF NOT FOUND THEN
        status := 404;
        body := nh_error('not_found', 'template not found');
        RETURN;
    END IF;

    BEGIN
        UPDATE templates x
           SET name = p_name, channel = p_channel,
               current_version = x.current_version + 1, updated_at = now()
         WHERE x.id = t.id
        RETURNING * INTO t;
    EXCEPTION WHEN unique_violation THEN
        status := 409;
        body := nh_template_duplicate();
        RETURN;
    END;

    INSERT INTO template_versions (template_id, version, subject, body, html,
        variables)
    VALUES (t.id, t.current_version, p_subject, p_body, p_html, p_variables)
    RETURNING * INTO v;

    status := 200;
    body := nh_template_json(t, v)::text;
END
$$;

-- Marks the template deleted. Its versions stay for the notifications
-- that name them, and its name becomes free for a new template.
CREATE FUNCTION nh_template_delete(p_tenant_id uuid, p_id uuid,
    OUT status integer, OUT body text)
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE templates x SET deleted_at = now(), updated_at = now()
     WHERE x.id = p_id AND x.tenant_id = p_tenant_id
       AND x.deleted_at IS NULL;

    IF NOT FOUND THEN
        status := 404;
        body := nh_error('not_found', 'template not found');
        RETURN;
    END IF;

    status := 204;
    body := '';
END
$$;

-- nh_notification_create with the template id and version a notification
-- was rendered from. The module renders the template before the call, so
-- p_subject, p_body and p_html are the rendered texts. The 13-argument form
-- stays for callers of inline content and passes NULL for both.
DROP FUNCTION nh_notification_create(uuid, uuid, text, text, jsonb, text,
    text, text, jsonb, jsonb, text, bytea, timestamptz);

-- Stores a notification as PENDING, or SCHEDULED when p_scheduled_at is in
-- the future, with its idempotency record when a key is given. A repeat of
-- a key with the same request hash returns the first reply with replayed
-- = true, and one with another hash is a 422. A concurrent request with
-- the same key waits on the key's row lock, then takes the replay path, so
-- only one notification is created. scheduled is true when the module
-- must not queue the notification now.
CREATE FUNCTION nh_notification_create(p_tenant_id uuid, p_id uuid,
    p_channel text, p_priority text, p_to jsonb, p_subject text, p_body text,
    p_html text, p_data jsonb, p_metadata jsonb, p_idempotency_key text,
    p_request_hash bytea, p_scheduled_at timestamptz, p_template_id uuid,
    p_template_version integer,
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
        to_address, template_id, template_version, subject, body, html, data,
        metadata, idempotency_key, scheduled_at)
    VALUES (p_id, p_tenant_id, p_channel,
            CASE WHEN scheduled THEN 'SCHEDULED' ELSE 'PENDING' END,
            p_priority, p_to, p_template_id, p_template_version, p_subject,
            p_body, p_html, p_data, p_metadata, p_idempotency_key,
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

CREATE FUNCTION nh_notification_create(p_tenant_id uuid, p_id uuid,
    p_channel text, p_priority text, p_to jsonb, p_subject text, p_body text,
    p_html text, p_data jsonb, p_metadata jsonb, p_idempotency_key text,
    p_request_hash bytea, p_scheduled_at timestamptz,
    OUT status integer, OUT body text, OUT replayed boolean,
    OUT scheduled boolean)
LANGUAGE sql AS $$
    SELECT * FROM nh_notification_create(p_tenant_id, p_id, p_channel,
        p_priority, p_to, p_subject, p_body, p_html, p_data, p_metadata,
        p_idempotency_key, p_request_hash, p_scheduled_at, NULL, NULL)
$$;
