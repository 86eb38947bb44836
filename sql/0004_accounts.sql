-- Owners, tenants and API keys: plans with their limits, login throttling,
-- and the functions behind /api/profile, /api/tenants and
-- /api/tenants/{id}/api-keys. Each function takes the session token hash
-- first and returns the HTTP status and the JSON body, as in 0002_api.sql.

-- The limits of each plan. Rows may be changed or added without a rebuild:
-- the API checks plan names against this table.
CREATE TABLE plans (
    name             text PRIMARY KEY CHECK (name = upper(name)),
    monthly_quota    bigint NOT NULL CHECK (monthly_quota >= 0),
    rate_per_second  integer NOT NULL CHECK (rate_per_second > 0),
    burst            integer NOT NULL CHECK (burst > 0),
    max_bulk_size    integer NOT NULL CHECK (max_bulk_size > 0),
    max_templates    integer NOT NULL CHECK (max_templates >= 0),
    max_recipients   integer NOT NULL CHECK (max_recipients >= 0),
    max_webhooks     integer NOT NULL CHECK (max_webhooks >= 0)
);

INSERT INTO plans (name, monthly_quota, rate_per_second, burst, max_bulk_size,
                   max_templates, max_recipients, max_webhooks)
VALUES ('FREE',           10000,   10,   20,  100,   10,    1000,   2),
       ('STARTER',       100000,   50,  100, 1000,   50,   25000,   5),
       ('BUSINESS',     1000000,  200,  400, 1000,  250,  250000,  20),
       ('ENTERPRISE',  10000000, 1000, 2000, 1000, 1000, 5000000, 100);

ALTER TABLE tenants DROP CONSTRAINT tenants_plan_check;
ALTER TABLE tenants ADD CONSTRAINT tenants_plan_fkey
    FOREIGN KEY (plan) REFERENCES plans (name) ON UPDATE CASCADE;

-- The tenant list is keyset-paginated on (created_at DESC, id DESC).
DROP INDEX tenants_owner_id_idx;
CREATE INDEX tenants_owner_id_idx
    ON tenants (owner_id, created_at DESC, id DESC);

-- Failed logins per lower-cased email, whether or not an owner has that
-- email. retry_at stays NULL until the fifth failure.
CREATE TABLE login_failures (
    email           text PRIMARY KEY,
    failures        integer NOT NULL,
    last_failed_at  timestamptz NOT NULL,
    retry_at        timestamptz
);

CREATE INDEX login_failures_last_failed_idx ON login_failures (last_failed_at);


-- Converts microseconds since the Unix epoch, as a list cursor stores them,
-- to a timestamp. Exact up to 2^53 microseconds (the year 2255), because
-- interval multiplication goes through double precision.
CREATE FUNCTION nh_usec_ts(p_usec bigint) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT timestamptz 'epoch' + p_usec * interval '1 microsecond'
$$;

CREATE FUNCTION nh_ts_usec(p_time timestamptz) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (extract(epoch FROM p_time) * 1000000)::bigint
$$;


-- The tenant object now carries the limits of its plan.
CREATE OR REPLACE FUNCTION nh_tenant_json(t tenants) RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT row_to_json(x) FROM (SELECT
        t.id, t.name, t.plan, t.status, t.settings,
        (SELECT row_to_json(l) FROM (SELECT
             p.monthly_quota AS "monthlyQuota",
             p.rate_per_second AS "ratePerSecond",
             p.burst,
             p.max_bulk_size AS "maxBulkSize",
             p.max_templates AS "maxTemplates",
             p.max_recipients AS "maxRecipients",
             p.max_webhooks AS "maxWebhooks"
           FROM plans p WHERE p.name = t.plan) l) AS limits,
        nh_ts(t.created_at) AS "createdAt",
        nh_ts(t.updated_at) AS "updatedAt") x
$$;

-- An API key without its secret or hash.
CREATE FUNCTION nh_api_key_json(k api_keys) RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT row_to_json(x) FROM (SELECT
        k.id, k.name, k.prefix, k.scopes, k.status,
        nh_ts(k.expires_at) AS "expiresAt",
        nh_ts(k.last_used_at) AS "lastUsedAt",
        nh_ts(k.created_at) AS "createdAt") x
$$;

-- The 400 reply for a plan name that the plans table does not have, or
-- NULL when the plan exists.
CREATE FUNCTION nh_plan_error(p_plan text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT nh_error('invalid_request',
               'plan must be one of '
               || (SELECT string_agg(p.name, ', '
                                     ORDER BY p.monthly_quota, p.name)
                     FROM plans p),
               nh_detail('plan', 'invalid_value'))
     WHERE NOT EXISTS (SELECT 1 FROM plans p WHERE p.name = p_plan)
$$;


-- Login throttling. After 5 failures, each less than 15 minutes after the
-- one before, a login for that email waits 2^(failures - 5) seconds after
-- the last failure, at most 900. A successful login deletes the row.

-- Returns the seconds until the next login attempt for this email is
-- allowed, or 0.
CREATE FUNCTION nh_login_retry_after(p_email text) RETURNS integer
LANGUAGE sql STABLE AS $$
    SELECT COALESCE(
        (SELECT greatest(ceil(extract(epoch FROM f.retry_at - now())),
                         1)::integer
           FROM login_failures f
          WHERE f.email = p_email AND f.retry_at > now()),
        0)
$$;

-- Returns the owner's id and password hash (both NULL for an unknown
-- email) and the seconds the caller must wait before trying (0 to go on).
-- Always one row, so an unknown email looks like a known one.
CREATE FUNCTION nh_login_begin(p_email text,
    OUT user_id uuid, OUT password_hash text, OUT retry_after integer)
LANGUAGE sql STABLE AS $$
    SELECT u.id, u.password_hash, nh_login_retry_after(p_email)
      FROM (SELECT 1) one
      LEFT JOIN users u ON u.email = p_email
$$;

-- Counts a failed login for the email and sets its back-off. Also deletes
-- a few rows that have been idle for over 15 minutes, so the table stays
-- small while unknown emails are tried.
CREATE FUNCTION nh_login_failed(p_email text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_failures integer;
BEGIN
    INSERT INTO login_failures AS f (email, failures, last_failed_at)
    VALUES (p_email, 1, now())
    ON CONFLICT (email) DO UPDATE
       SET failures = CASE WHEN f.last_failed_at < now() - interval '15 minutes'
                           THEN 1 ELSE f.failures + 1 END,
           last_failed_at = now()
    RETURNING f.failures INTO v_failures;

    IF v_failures >= 5 THEN
        UPDATE login_failures f
           SET retry_at = now() + make_interval(secs =>
                   least(power(2, least(v_failures - 5, 10)), 900))
         WHERE f.email = p_email;
    ELSE
        UPDATE login_failures f SET retry_at = NULL WHERE f.email = p_email;
    END IF;

    DELETE FROM login_failures f
     WHERE f.email IN (SELECT s.email FROM login_failures s
                        WHERE s.last_failed_at < now() - interval '15 minutes'
                          AND s.email <> p_email
                        LIMIT 20
                          FOR UPDATE SKIP LOCKED);
END
$$;

-- Starts the session of a successful login and deletes the failed-login
-- row of the email.
CREATE FUNCTION nh_login_succeeded(p_email text, p_session_id uuid,
    p_user_id uuid, p_token_hash bytea, p_ttl_seconds integer,
    OUT status integer, OUT body text)
LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    DELETE FROM login_failures f WHERE f.email = p_email;

    r := nh_session_create(p_session_id, p_user_id, p_token_hash,
                           p_ttl_seconds);
    status := r.status;
    body := r.body;
END
$$;


-- The owner's profile.

CREATE FUNCTION nh_profile_get(p_token_hash bytea,
    OUT status integer, OUT body text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    s record;
    u users;
BEGIN
    s := nh_session_user(p_token_hash);
    IF s.status <> 0 THEN
        status := s.status;
        body := s.body;
        RETURN;
    END IF;

    SELECT * INTO u FROM users x WHERE x.id = s.user_id;

    status := 200;
    body := nh_user_json(u)::text;
END
$$;

-- Returns what a password change checks before it hashes the new password:
-- the owner's email and password hash, and the seconds to wait when failed
-- checks of the current password (counted with failed logins) throttle
-- the email. status 0 means authenticated.
CREATE FUNCTION nh_profile_password(p_token_hash bytea,
    OUT status integer, OUT body text, OUT email text,
    OUT password_hash text, OUT retry_after integer)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    s record;
BEGIN
    s := nh_session_user(p_token_hash);
    IF s.status <> 0 THEN
        status := s.status;
        body := s.body;
        RETURN;
    END IF;

    SELECT u.email, u.password_hash INTO email, password_hash
      FROM users u WHERE u.id = s.user_id;

    retry_after := nh_login_retry_after(email);
    status := 0;
END
$$;

-- Changes the given fields (NULL keeps a field). A new password hash is
-- stored only while the stored hash is still p_expected_hash, the one the
-- current password was checked against, and it ends every other session
-- of the owner.
CREATE FUNCTION nh_profile_update(p_token_hash bytea, p_name text,
    p_email text, p_password_hash text, p_expected_hash text,
    OUT status integer, OUT body text)
LANGUAGE plpgsql AS $$
DECLARE
    s record;
    u users;
BEGIN
    s := nh_session_user(p_token_hash);
    IF s.status <> 0 THEN
        status := s.status;
        body := s.body;
        RETURN;
    END IF;

    BEGIN
        UPDATE users x
           SET name = COALESCE(p_name, x.name),
               email = COALESCE(p_email, x.email),
               password_hash = COALESCE(p_password_hash, x.password_hash),
               updated_at = now()
         WHERE x.id = s.user_id
           AND (p_expected_hash IS NULL OR x.password_hash = p_expected_hash)
        RETURNING * INTO u;
    EXCEPTION WHEN unique_violation THEN
        status := 409;
        body := nh_error('conflict',
            'an account with this email already exists',
            nh_detail('email', 'duplicate'));
        RETURN;
    END;

    IF u.id IS NULL THEN
        -- Another request changed the password after the check.
        status := 401;
        body := nh_error('unauthorized', 'current password is incorrect');
        RETURN;
    END IF;

    IF p_password_hash IS NOT NULL THEN
        DELETE FROM sessions x
         WHERE x.user_id = s.user_id AND x.token_hash <> p_token_hash;
    END IF;

    status := 200;
    body := nh_user_json(u)::text;
END
$$;


-- Tenants. Another owner's tenant is reported as not found.

-- Creates a tenant and its first API key, as in 0002_api.sql, but checks
-- the plan against the plans table.
CREATE OR REPLACE FUNCTION nh_tenant_create(p_token_hash bytea,
    p_tenant_id uuid, p_name text, p_plan text, p_key_id uuid,
    p_key_prefix text, p_key_hash bytea, OUT status integer, OUT body text)
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

    body := nh_plan_error(p_plan);
    IF body IS NOT NULL THEN
        status := 400;
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

-- Returns one page of the owner's tenants, newest first, after the
-- position (p_after_usec, p_after_id) when it is given. body is the JSON
-- array of the page. next_usec and next_id are the position of its last
-- row when more rows follow, else NULL.
CREATE FUNCTION nh_tenant_list(p_token_hash bytea, p_limit integer,
    p_after_usec bigint, p_after_id uuid,
    OUT status integer, OUT body text, OUT next_usec bigint,
    OUT next_id uuid)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    s record;
    t tenants;
    v_last tenants;
    v_items json[] := '{}';
    -- Without a cursor the page starts above every stored row, so one
    -- indexable condition serves both cases.
    v_after timestamptz := COALESCE(nh_usec_ts(p_after_usec), 'infinity');
    v_after_id uuid := COALESCE(p_after_id,
                                'ffffffff-ffff-ffff-ffff-ffffffffffff');
BEGIN
    s := nh_session_user(p_token_hash);
    IF s.status <> 0 THEN
        status := s.status;
        body := s.body;
        RETURN;
    END IF;

    -- The query reads one row past the page to find out whether a next
    -- page exists.
    FOR t IN
        SELECT * FROM tenants x
         WHERE x.owner_id = s.user_id
           AND (x.created_at, x.id) < (v_after, v_after_id)
         ORDER BY x.created_at DESC, x.id DESC
         LIMIT p_limit + 1
    LOOP
        IF cardinality(v_items) = p_limit THEN
            next_usec := nh_ts_usec(v_last.created_at);
            next_id := v_last.id;
            EXIT;
        END IF;

        v_items := array_append(v_items, nh_tenant_json(t));
        v_last := t;
    END LOOP;

    status := 200;
    body := array_to_json(v_items)::text;
END
$$;

CREATE FUNCTION nh_tenant_get(p_token_hash bytea, p_id uuid,
    OUT status integer, OUT body text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    s record;
    t tenants;
BEGIN
    s := nh_session_user(p_token_hash);
    IF s.status <> 0 THEN
        status := s.status;
        body := s.body;
        RETURN;
    END IF;

    SELECT * INTO t FROM tenants x WHERE x.id = p_id AND x.owner_id = s.user_id;

    IF NOT FOUND THEN
        status := 404;
        body := nh_error('not_found', 'tenant not found');
        RETURN;
    END IF;

    status := 200;
    body := nh_tenant_json(t)::text;
END
$$;

-- Replaces the tenant's name, plan, status and settings.
CREATE FUNCTION nh_tenant_update(p_token_hash bytea, p_id uuid, p_name text,
    p_plan text, p_status text, p_settings jsonb,
    OUT status integer, OUT body text)
LANGUAGE plpgsql AS $$
DECLARE
    s record;
    t tenants;
BEGIN
    s := nh_session_user(p_token_hash);
    IF s.status <> 0 THEN
        status := s.status;
        body := s.body;
        RETURN;
    END IF;

    body := nh_plan_error(p_plan);
    IF body IS NOT NULL THEN
        status := 400;
        RETURN;
    END IF;

    UPDATE tenants x
       SET name = p_name, plan = p_plan, status = p_status,
           settings = p_settings, updated_at = now()
     WHERE x.id = p_id AND x.owner_id = s.user_id
    RETURNING * INTO t;

    IF NOT FOUND THEN
        status := 404;
        body := nh_error('not_found', 'tenant not found');
        RETURN;
    END IF;

    status := 200;
    body := nh_tenant_json(t)::text;
END
$$;

-- Deletes the tenant. Its foreign keys cascade, so its API keys,
-- notifications, delivery logs and idempotency keys go in the same
-- transaction.
CREATE FUNCTION nh_tenant_delete(p_token_hash bytea, p_id uuid,
    OUT status integer, OUT body text)
LANGUAGE plpgsql AS $$
DECLARE
    s record;
BEGIN
    s := nh_session_user(p_token_hash);
    IF s.status <> 0 THEN
        status := s.status;
        body := s.body;
        RETURN;
    END IF;

    DELETE FROM tenants x WHERE x.id = p_id AND x.owner_id = s.user_id;

    IF NOT FOUND THEN
        status := 404;
        body := nh_error('not_found', 'tenant not found');
        RETURN;
    END IF;

    status := 204;
END
$$;


-- API keys of a tenant, managed by its owner.

-- Creates a key with the given scopes (a JSON array of strings, in the
-- order given). The tenant's row lock makes concurrent creations count
-- each other against the limit of 100 active keys. Active means not
-- revoked and not expired.
CREATE FUNCTION nh_api_key_create(p_token_hash bytea, p_tenant_id uuid,
    p_key_id uuid, p_name text, p_prefix text, p_key_hash bytea,
    p_scopes jsonb, p_expires_at timestamptz,
    OUT status integer, OUT body text)
LANGUAGE plpgsql AS $$
DECLARE
    s record;
    k api_keys;
BEGIN
    s := nh_session_user(p_token_hash);
    IF s.status <> 0 THEN
        status := s.status;
        body := s.body;
        RETURN;
    END IF;

    PERFORM 1 FROM tenants x
      WHERE x.id = p_tenant_id AND x.owner_id = s.user_id
        FOR UPDATE;

    IF NOT FOUND THEN
        status := 404;
        body := nh_error('not_found', 'tenant not found');
        RETURN;
    END IF;

    IF (SELECT count(*) FROM api_keys a
         WHERE a.tenant_id = p_tenant_id AND a.status = 'ACTIVE'
           AND (a.expires_at IS NULL OR a.expires_at > now())) >= 100
    THEN
        status := 409;
        body := nh_error('conflict',
            'the tenant has 100 active API keys; revoke one first',
            nh_detail('apiKeys', 'limit_reached'));
        RETURN;
    END IF;

    INSERT INTO api_keys (id, tenant_id, name, prefix, key_hash, scopes,
                          expires_at)
    VALUES (p_key_id, p_tenant_id, p_name, p_prefix, p_key_hash,
            ARRAY(SELECT e.scope
                    FROM jsonb_array_elements_text(p_scopes)
                         WITH ORDINALITY AS e(scope, n)
                   ORDER BY e.n),
            p_expires_at)
    RETURNING * INTO k;

    status := 201;
    body := nh_api_key_json(k)::text;
END
$$;

-- Lists every key of the tenant, newest first, revoked ones included.
CREATE FUNCTION nh_api_key_list(p_token_hash bytea, p_tenant_id uuid,
    OUT status integer, OUT body text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    s record;
BEGIN
    s := nh_session_user(p_token_hash);
    IF s.status <> 0 THEN
        status := s.status;
        body := s.body;
        RETURN;
    END IF;

    PERFORM 1 FROM tenants x
      WHERE x.id = p_tenant_id AND x.owner_id = s.user_id;

    IF NOT FOUND THEN
        status := 404;
        body := nh_error('not_found', 'tenant not found');
        RETURN;
    END IF;

    status := 200;
    body := row_to_json(x)::text
      FROM (SELECT COALESCE(
                       (SELECT array_to_json(array_agg(nh_api_key_json(a)
                                   ORDER BY a.created_at DESC, a.id DESC))
                          FROM api_keys a WHERE a.tenant_id = p_tenant_id),
                       '[]'::json) AS data,
                   NULL::text AS "nextCursor") x;
END
$$;

-- Revokes a key. Revoking a revoked key succeeds again.
CREATE FUNCTION nh_api_key_revoke(p_token_hash bytea, p_tenant_id uuid,
    p_key_id uuid, OUT status integer, OUT body text)
LANGUAGE plpgsql AS $$
DECLARE
    s record;
BEGIN
    s := nh_session_user(p_token_hash);
    IF s.status <> 0 THEN
        status := s.status;
        body := s.body;
        RETURN;
    END IF;

    PERFORM 1 FROM tenants x
      WHERE x.id = p_tenant_id AND x.owner_id = s.user_id;

    IF NOT FOUND THEN
        status := 404;
        body := nh_error('not_found', 'tenant not found');
        RETURN;
    END IF;

    UPDATE api_keys a SET status = 'REVOKED'
     WHERE a.id = p_key_id AND a.tenant_id = p_tenant_id;

    IF NOT FOUND THEN
        status := 404;
        body := nh_error('not_found', 'API key not found');
        RETURN;
    END IF;

    status := 204;
END
$$;
