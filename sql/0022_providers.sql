-- Provider instances: the circuit breaker and the send-rate bucket of each
-- provider that the workers send through, shared by every worker process.
--
-- The breaker's transition rules run in the workers (common/nh_breaker.c).
-- A worker reads the row, applies its counts to a copy and writes the copy
-- back with nh_provider_write(), which succeeds only when the row's version
-- is still the one read. A worker that loses that race reads the row again
-- and applies its counts to the new state, so no count and no transition
-- is lost, and each transition is made (and logged) by one process.

-- One row per provider instance, keyed by the name that the notifications'
-- and the delivery logs' provider column stores ("mailgun",
-- "mailgun-fallback"). adapter is the API the instance speaks ("mailgun",
-- "twilio", "fcm").
CREATE TABLE providers (
    name              text PRIMARY KEY,
    channel           text NOT NULL
                      CHECK (channel IN ('EMAIL', 'SMS', 'PUSH')),
    adapter           text NOT NULL,
    state             text NOT NULL DEFAULT 'CLOSED'
                      CHECK (state IN ('CLOSED', 'OPEN', 'HALF_OPEN')),
    -- The counting window of a CLOSED breaker; NULL before its first
    -- request.
    window_start      timestamptz,
    requests          bigint NOT NULL DEFAULT 0,
    failures          bigint NOT NULL DEFAULT 0,
    open_until        timestamptz,
    -- Moves to HALF_OPEN so far, the probes claimed in the current one,
    -- and when those claims lapse.
    probe_round       bigint NOT NULL DEFAULT 0,
    probes            integer NOT NULL DEFAULT 0,
    probe_expires_at  timestamptz,
    -- Incremented by every nh_provider_write().
    version           bigint NOT NULL DEFAULT 0,
    -- The send-rate bucket: tokens left at tokens_at.
    tokens            double precision NOT NULL DEFAULT 0,
    tokens_at         timestamptz,
    updated_at        timestamptz NOT NULL DEFAULT now()
);


-- Unix milliseconds of a timestamp, 0 for NULL, and back.
CREATE FUNCTION nh_ts_ms(p_ts timestamptz) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$
    SELECT COALESCE(floor(extract(epoch FROM p_ts) * 1000)::bigint, 0)
$$;

CREATE FUNCTION nh_ms_ts(p_ms bigint) RETURNS timestamptz
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN p_ms > 0 THEN to_timestamp(p_ms / 1000.0) END
$$;


-- Returns the breaker columns of provider p_name, times in Unix
-- milliseconds (0 for none). The row is created CLOSED when it does not
-- exist yet.
CREATE FUNCTION nh_provider_read(p_name text, p_channel text,
    p_adapter text,
    OUT state text, OUT window_start_ms bigint, OUT requests bigint,
    OUT failures bigint, OUT open_until_ms bigint, OUT probe_round bigint,
    OUT probes integer, OUT probe_expires_ms bigint, OUT version bigint)
LANGUAGE plpgsql AS $$
DECLARE
    p providers;
BEGIN
    SELECT * INTO p FROM providers x WHERE x.name = p_name;

    IF NOT FOUND THEN
        INSERT INTO providers (name, channel, adapter)
        VALUES (p_name, p_channel, p_adapter)
        ON CONFLICT (name) DO NOTHING;

        SELECT * INTO p FROM providers x WHERE x.name = p_name;
    END IF;

    state := p.state;
    window_start_ms := nh_ts_ms(p.window_start);
    requests := p.requests;
    failures := p.failures;
    open_until_ms := nh_ts_ms(p.open_until);
    probe_round := p.probe_round;
    probes := p.probes;
    probe_expires_ms := nh_ts_ms(p.probe_expires_at);
    version := p.version;
END
$$;


-- Writes the breaker columns of provider p_name when its version is still
-- p_version. Returns the new version, or NULL when another process wrote
-- the row first (the caller reads it again) or the row does not exist.
CREATE FUNCTION nh_provider_write(p_name text, p_version bigint,
    p_state text, p_window_start_ms bigint, p_requests bigint,
    p_failures bigint, p_open_until_ms bigint, p_probe_round bigint,
    p_probes integer, p_probe_expires_ms bigint)
RETURNS bigint
LANGUAGE sql AS $$
    UPDATE providers x
       SET state = p_state,
           window_start = nh_ms_ts(p_window_start_ms),
           requests = p_requests,
           failures = p_failures,
           open_until = nh_ms_ts(p_open_until_ms),
           probe_round = p_probe_round,
           probes = p_probes,
           probe_expires_at = nh_ms_ts(p_probe_expires_ms),
           version = x.version + 1,
           updated_at = now()
     WHERE x.name = p_name AND x.version = p_version
    RETURNING x.version
$$;


-- Takes up to p_want tokens from the bucket of provider p_name, which
-- holds at most p_burst tokens and refills at p_rate tokens per second of
-- the database's clock. granted is the number taken. wait_ms is the time
-- until the next token is there when none was left, else 0. The row lock
-- of the UPDATE orders concurrent callers, so the cluster as a whole takes
-- no more than the bucket gives. A missing row grants nothing.
CREATE FUNCTION nh_provider_take_tokens(p_name text, p_want integer,
    p_rate double precision, p_burst double precision,
    OUT granted integer, OUT wait_ms integer)
LANGUAGE plpgsql AS $$
DECLARE
    v_now timestamptz := clock_timestamp();
    v_tokens double precision;
BEGIN
    IF p_want < 0 OR p_rate <= 0 OR p_burst < 1 THEN
        RAISE EXCEPTION 'invalid token request: want %, rate %, burst %',
              p_want, p_rate, p_burst
              USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- A new bucket starts full.
    SELECT least(p_burst,
                 CASE WHEN x.tokens_at IS NULL THEN p_burst
                      ELSE x.tokens + p_rate
                           * greatest(0, extract(epoch FROM
                                                 v_now - x.tokens_at))
                 END)
      INTO v_tokens
      FROM providers x WHERE x.name = p_name
       FOR UPDATE;

    IF NOT FOUND THEN
        granted := 0;
        wait_ms := 0;
        RETURN;
    END IF;

    granted := least(p_want, floor(v_tokens))::integer;
    v_tokens := v_tokens - granted;
    wait_ms := CASE WHEN granted = 0
                    THEN ceil((1 - v_tokens) / p_rate * 1000)::integer
                    ELSE 0 END;

    UPDATE providers x
       SET tokens = v_tokens, tokens_at = v_now
     WHERE x.name = p_name;
END
$$;


-- Puts back a leased notification whose provider's circuit is open and
-- that has no usable fallback. It becomes RETRYING until p_until, and the
-- lease's attempt is given back, as for a quiet-hours deferral. A
-- delivery-log row with status RETRYING, p_provider and p_error records
-- why. Returns 'RETRYING', or NULL when the notification is no longer
-- PROCESSING.
CREATE FUNCTION nh_delivery_defer(p_id uuid, p_provider text,
    p_until timestamptz, p_error text)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    v_tenant uuid;
    v_attempt integer;
BEGIN
    IF p_until IS NULL THEN
        RAISE EXCEPTION 'a deferral needs a time'
              USING ERRCODE = 'invalid_parameter_value';
    END IF;

    UPDATE notifications n
       SET status = 'RETRYING',
           attempts = n.attempts - 1,
           last_error = p_error,
           next_attempt_at = p_until,
           lease_expires_at = NULL,
           updated_at = now()
     WHERE n.id = p_id AND n.status = 'PROCESSING'
    RETURNING n.tenant_id, n.attempts INTO v_tenant, v_attempt;

    IF NOT FOUND THEN
        RETURN NULL;
    END IF;

    INSERT INTO delivery_logs (tenant_id, notification_id, attempt, status,
        provider, error, next_attempt_at)
    VALUES (v_tenant, p_id, v_attempt + 1, 'RETRYING', p_provider, p_error,
            p_until);

    RETURN 'RETRYING';
END
$$;


-- The function of 0017, where p_provider is the adapter that sent the
-- report: a notification sent through any instance of that adapter (a
-- fallback instance has a name of its own) matches.
CREATE OR REPLACE FUNCTION nh_provider_event(p_provider text,
    p_message_id text, p_status text, p_error text, OUT updated integer)
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
           AND (n.provider = p_provider
                OR n.provider IN (SELECT x.name FROM providers x
                                   WHERE x.adapter = p_provider))
           AND n.status = 'SENT'
        RETURNING n.id, n.tenant_id, n.attempts, n.provider
    )
    INSERT INTO delivery_logs (tenant_id, notification_id, attempt, status,
        provider, provider_message_id, error)
    SELECT n.tenant_id, n.id, n.attempts, p_status, n.provider,
           p_message_id, p_error
      FROM n;

    GET DIAGNOSTICS updated = ROW_COUNT;
END
$$;
