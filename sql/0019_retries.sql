-- Retries, lease expiry and dead letters.
--
-- A failed attempt that may succeed later (the worker decides, from the
-- provider's reply, the attempt number and NH_MAX_ATTEMPTS) makes the
-- notification RETRYING until next_attempt_at. The retry scheduler in the
-- workers' sweep produces due RETRYING notifications to their topic again,
-- and moves PROCESSING notifications whose lease expired back to RETRYING.
-- A permanent failure, or the last attempt, makes the notification FAILED
-- and writes a dead letter in the same transaction.

-- Returns a random UUID of version 7 (RFC 9562): the Unix time in
-- milliseconds in the first 48 bits, then random bits. The random part of
-- a version 4 UUID is kept, and its version nibble 0100 becomes 0111.
CREATE FUNCTION nh_uuid7() RETURNS uuid
LANGUAGE sql VOLATILE AS $$
    SELECT encode(
        set_bit(set_bit(
            overlay(uuid_send(gen_random_uuid())
                    placing substring(int8send(
                        floor(extract(epoch FROM clock_timestamp()) * 1000)
                        ::bigint) FROM 3)
                    FROM 1 FOR 6),
            52, 1), 53, 1),
        'hex')::uuid
$$;


CREATE TABLE dead_letters (
    id               uuid PRIMARY KEY,
    tenant_id        uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    notification_id  uuid NOT NULL
                     REFERENCES notifications (id) ON DELETE CASCADE,
    channel          text NOT NULL,
    reason           text NOT NULL,
    attempts         integer NOT NULL,
    http_status      integer,
    created_at       timestamptz NOT NULL DEFAULT now(),
    replayed_at      timestamptz,
    replay_count     integer NOT NULL DEFAULT 0
);

-- The list is read newest first, like the notification list (0006).
CREATE INDEX dead_letters_tenant_created_idx
    ON dead_letters (tenant_id, created_at DESC, id DESC);

CREATE INDEX dead_letters_tenant_channel_idx
    ON dead_letters (tenant_id, channel, created_at DESC, id DESC);

CREATE INDEX dead_letters_notification_idx
    ON dead_letters (notification_id);

-- The retry scheduler looks for due RETRYING rows and expired leases.
CREATE INDEX notifications_retrying_idx
    ON notifications (channel, next_attempt_at) WHERE status = 'RETRYING';

CREATE INDEX notifications_processing_idx
    ON notifications (channel, lease_expires_at) WHERE status = 'PROCESSING';

-- The time of the next attempt when this attempt failed and is retried;
-- NULL for every other attempt. The row's status stays FAILED.
ALTER TABLE delivery_logs ADD COLUMN next_attempt_at timestamptz;


-- The fields of 0006 and nextAttemptAt.
CREATE OR REPLACE FUNCTION nh_delivery_log_json(d delivery_logs) RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT row_to_json(x) FROM (SELECT
        d.attempt, d.status, d.provider,
        d.http_status AS "httpStatus",
        d.provider_message_id AS "providerMessageId",
        d.error,
        d.duration_ms AS "durationMs",
        nh_ts(d.next_attempt_at) AS "nextAttemptAt",
        nh_ts(d.created_at) AS "createdAt") x
$$;


-- The dead letter object of the API.
CREATE FUNCTION nh_dead_letter_json(d dead_letters) RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT row_to_json(x) FROM (SELECT
        d.id,
        d.notification_id AS "notificationId",
        d.channel, d.reason, d.attempts,
        d.http_status AS "httpStatus",
        nh_ts(d.created_at) AS "createdAt",
        nh_ts(d.replayed_at) AS "replayedAt",
        d.replay_count AS "replayCount") x
$$;

-- The value of a notifyhub.dlq message: the dead letter object and the
-- tenant's id.
CREATE FUNCTION nh_dead_letter_message(d dead_letters) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT (nh_dead_letter_json(d)::jsonb
            || jsonb_build_object('tenantId', d.tenant_id))::text
$$;

-- Inserts the dead letter of notification n, which has just become
-- FAILED, and returns its notifyhub.dlq message.
CREATE FUNCTION nh_dead_letter_insert(n notifications, p_reason text,
    p_http_status integer)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    d dead_letters;
BEGIN
    INSERT INTO dead_letters (id, tenant_id, notification_id, channel,
        reason, attempts, http_status)
    VALUES (nh_uuid7(), n.tenant_id, n.id, n.channel,
            COALESCE(p_reason, 'delivery failed'), n.attempts, p_http_status)
    RETURNING * INTO d;

    RETURN nh_dead_letter_message(d);
END
$$;


-- Stores the outcome of one attempt and its delivery-log row in one
-- transaction. p_status is SENT or FAILED. A FAILED attempt with
-- p_retry_in_ms becomes RETRYING with next_attempt_at that far in the
-- future, and its log row gets the same next_attempt_at. A FAILED attempt
-- without p_retry_in_ms becomes FAILED with a dead letter whose reason is
-- p_dead_letter_reason (else p_error). status is the new status
-- (SENT, RETRYING or FAILED), or NULL when the notification is no longer
-- PROCESSING (its lease expired, or it was deleted) and nothing was
-- written. dead_letter is the notifyhub.dlq message of a new dead letter,
-- else NULL.
DROP FUNCTION nh_delivery_record(uuid, text, text, integer, text, text,
    integer);

CREATE FUNCTION nh_delivery_record(p_id uuid, p_status text, p_provider text,
    p_http_status integer, p_provider_message_id text, p_error text,
    p_duration_ms integer, p_retry_in_ms bigint, p_dead_letter_reason text,
    OUT status text, OUT dead_letter text)
LANGUAGE plpgsql AS $$
DECLARE
    n notifications;
    v_next timestamptz;
BEGIN
    IF p_status NOT IN ('SENT', 'FAILED') OR p_retry_in_ms < 0 THEN
        RAISE EXCEPTION 'invalid delivery status % or retry delay %',
              p_status, p_retry_in_ms
              USING ERRCODE = 'invalid_parameter_value';
    END IF;

    status := CASE WHEN p_status = 'SENT' THEN 'SENT'
                   WHEN p_retry_in_ms IS NOT NULL THEN 'RETRYING'
                   ELSE 'FAILED' END;
    v_next := CASE WHEN status = 'RETRYING'
                   THEN now() + p_retry_in_ms * interval '1 millisecond' END;

    UPDATE notifications x
       SET status = nh_delivery_record.status,
           provider = p_provider,
           provider_message_id = COALESCE(p_provider_message_id,
                                          x.provider_message_id),
           last_error = p_error,
           lease_expires_at = NULL,
           next_attempt_at = v_next,
           sent_at = CASE WHEN p_status = 'SENT' THEN now() END,
           failed_at = CASE WHEN nh_delivery_record.status = 'FAILED'
                            THEN now() END,
           updated_at = now()
     WHERE x.id = p_id AND x.status = 'PROCESSING'
    RETURNING * INTO n;

    IF NOT FOUND THEN
        status := NULL;
        RETURN;
    END IF;

    INSERT INTO delivery_logs (tenant_id, notification_id, attempt, status,
        provider, http_status, provider_message_id, error, duration_ms,
        next_attempt_at)
    VALUES (n.tenant_id, p_id, n.attempts, p_status, p_provider,
            p_http_status, p_provider_message_id, p_error, p_duration_ms,
            v_next);

    IF status = 'FAILED' THEN
        dead_letter := nh_dead_letter_insert(n,
            COALESCE(p_dead_letter_reason, p_error), p_http_status);
    END IF;
END
$$;


-- The function of 0015 with the retry and dead-letter arguments of
-- nh_delivery_record: when no target was sent, p_retry_in_ms makes the
-- notification RETRYING and its last log row carries next_attempt_at, and
-- without it the notification is FAILED with a dead letter, whose HTTP
-- status is the last target's.
DROP FUNCTION nh_delivery_record_targets(uuid, text, jsonb);

CREATE FUNCTION nh_delivery_record_targets(p_id uuid, p_provider text,
    p_results jsonb, p_retry_in_ms bigint, p_dead_letter_reason text,
    OUT status text, OUT deactivated integer, OUT dead_letter text)
LANGUAGE plpgsql AS $$
DECLARE
    n notifications;
    v_sent jsonb;
    v_last jsonb;
    v_next timestamptz;
    v_count integer;
    v_index integer := 0;
    r jsonb;
BEGIN
    deactivated := 0;

    IF jsonb_typeof(p_results) IS DISTINCT FROM 'array'
       OR jsonb_array_length(p_results) = 0 OR p_retry_in_ms < 0
    THEN
        RAISE EXCEPTION 'p_results must be a non-empty JSON array and '
              'p_retry_in_ms not negative'
              USING ERRCODE = 'invalid_parameter_value';
    END IF;

    SELECT x INTO v_sent FROM jsonb_array_elements(p_results) x
     WHERE x ->> 'status' = 'SENT' LIMIT 1;
    v_last := p_results -> -1;
    v_count := jsonb_array_length(p_results);

    status := CASE WHEN v_sent IS NOT NULL THEN 'SENT'
                   WHEN p_retry_in_ms IS NOT NULL THEN 'RETRYING'
                   ELSE 'FAILED' END;
    v_next := CASE WHEN status = 'RETRYING'
                   THEN now() + p_retry_in_ms * interval '1 millisecond' END;

    UPDATE notifications x
       SET status = nh_delivery_record_targets.status,
           provider = p_provider,
           provider_message_id = COALESCE(v_sent ->> 'providerMessageId',
                                          x.provider_message_id),
           last_error = CASE WHEN v_sent IS NULL THEN v_last ->> 'error' END,
           lease_expires_at = NULL,
           next_attempt_at = v_next,
           sent_at = CASE WHEN v_sent IS NOT NULL THEN now() END,
           failed_at = CASE WHEN nh_delivery_record_targets.status = 'FAILED'
                            THEN now() END,
           updated_at = now()
     WHERE x.id = p_id AND x.status = 'PROCESSING'
    RETURNING * INTO n;

    IF NOT FOUND THEN
        status := NULL;
        RETURN;
    END IF;

    FOR r IN SELECT x FROM jsonb_array_elements(p_results) x LOOP
        v_index := v_index + 1;

        IF r ->> 'status' NOT IN ('SENT', 'FAILED') THEN
            RAISE EXCEPTION 'invalid delivery status %', r ->> 'status'
                  USING ERRCODE = 'invalid_parameter_value';
        END IF;

        INSERT INTO delivery_logs (tenant_id, notification_id, attempt,
            status, provider, http_status, provider_message_id, error,
            duration_ms, target, next_attempt_at)
        VALUES (n.tenant_id, p_id, n.attempts, r ->> 'status', p_provider,
                (r ->> 'httpStatus')::integer, r ->> 'providerMessageId',
                r ->> 'error', (r ->> 'durationMs')::integer,
                r ->> 'target',
                CASE WHEN v_index = v_count THEN v_next END);

        IF (r ->> 'unregistered')::boolean AND r ->> 'target' IS NOT NULL THEN
            PERFORM nh_device_deactivate(n.tenant_id, r ->> 'target');
            deactivated := deactivated + 1;
        END IF;
    END LOOP;

    IF status = 'FAILED' THEN
        dead_letter := nh_dead_letter_insert(n,
            COALESCE(p_dead_letter_reason, v_last ->> 'error'),
            (v_last ->> 'httpStatus')::integer);
    END IF;
END
$$;


-- The retry scheduler of one channel, for the workers' sweep. Every worker
-- process of the channel calls it, and the transaction-level advisory lock
-- (key 17017 and the channel's number) lets one call at a time do the
-- work. The others return no rows at once. In that one transaction:
--
-- 1. Up to p_limit PROCESSING notifications whose lease expired (their
--    worker died or hung) are handled. Those with p_max_attempts attempts
--    or more become FAILED with a dead letter (kind 'dead_letter'); the
--    others become RETRYING, due now. Each gets a FAILED delivery-log row
--    whose error is the lease expiry.
-- 2. Up to p_limit RETRYING notifications whose next_attempt_at has passed
--    are returned (kind 'retry') for the caller to produce to the
--    channel's topic, and next_attempt_at moves p_republish_seconds ahead.
--    A message that the caller produced is consumed and leased before
--    then; a message that was lost is produced again after that time.
--
-- SKIP LOCKED leaves out rows that a lease, a record or a cancellation
-- holds at that moment; the next sweep takes them.
CREATE FUNCTION nh_retry_claim(p_channel text, p_republish_seconds integer,
    p_max_attempts integer, p_limit integer)
RETURNS TABLE (id uuid, tenant_id uuid, kind text, dead_letter text)
LANGUAGE plpgsql AS $$
DECLARE
    n notifications;
    v_final boolean;
BEGIN
    IF NOT pg_try_advisory_xact_lock(17017,
           CASE p_channel WHEN 'EMAIL' THEN 1 WHEN 'SMS' THEN 2
                          WHEN 'PUSH' THEN 3 ELSE 0 END)
    THEN
        RETURN;
    END IF;

    FOR n IN
        SELECT * FROM notifications x
         WHERE x.channel = p_channel AND x.status = 'PROCESSING'
           AND x.lease_expires_at < now()
         ORDER BY x.lease_expires_at
         LIMIT p_limit
           FOR UPDATE SKIP LOCKED
    LOOP
        v_final := n.attempts >= p_max_attempts;

        UPDATE notifications x
           SET status = CASE WHEN v_final THEN 'FAILED' ELSE 'RETRYING' END,
               last_error = 'lease expired before the outcome was stored',
               lease_expires_at = NULL,
               next_attempt_at = CASE WHEN v_final THEN NULL ELSE now() END,
               failed_at = CASE WHEN v_final THEN now() END,
               updated_at = now()
         WHERE x.id = n.id
        RETURNING * INTO n;

        INSERT INTO delivery_logs (tenant_id, notification_id, attempt,
            status, error, next_attempt_at)
        VALUES (n.tenant_id, n.id, n.attempts, 'FAILED', n.last_error,
                n.next_attempt_at);

        IF v_final THEN
            id := n.id;
            tenant_id := n.tenant_id;
            kind := 'dead_letter';
            dead_letter := nh_dead_letter_insert(n,
                format('lease expired on attempt %s of %s', n.attempts,
                       p_max_attempts),
                NULL);
            RETURN NEXT;
        END IF;
    END LOOP;

    dead_letter := NULL;
    kind := 'retry';

    RETURN QUERY
        WITH due AS (
            SELECT x.id FROM notifications x
             WHERE x.channel = p_channel AND x.status = 'RETRYING'
               AND x.next_attempt_at <= now()
             ORDER BY x.next_attempt_at
             LIMIT p_limit
               FOR UPDATE SKIP LOCKED
        )
        UPDATE notifications x
           SET next_attempt_at = now()
                   + make_interval(secs => p_republish_seconds)
          FROM due WHERE x.id = due.id
        RETURNING x.id, x.tenant_id, kind, dead_letter;
END
$$;


-- Lists a tenant's dead letters, newest first, in pages of p_limit after
-- the position (p_after_usec, p_after_id) of the previous page's last
-- row, optionally of one channel. next_usec and next_id give the position
-- of the page's last row when a next page exists.
CREATE FUNCTION nh_dead_letter_list(p_tenant_id uuid, p_limit integer,
    p_after_usec bigint, p_after_id uuid, p_channel text,
    OUT status integer, OUT body text, OUT next_usec bigint,
    OUT next_id uuid)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    d dead_letters;
    v_last dead_letters;
    v_items json[] := '{}';
    v_after timestamptz := COALESCE(nh_usec_ts(p_after_usec), 'infinity');
    v_after_id uuid := COALESCE(p_after_id,
                                'ffffffff-ffff-ffff-ffff-ffffffffffff');
BEGIN
    FOR d IN
        SELECT * FROM dead_letters x
         WHERE x.tenant_id = p_tenant_id
           AND (x.created_at, x.id) < (v_after, v_after_id)
           AND (p_channel IS NULL OR x.channel = p_channel)
         ORDER BY x.created_at DESC, x.id DESC
         LIMIT p_limit + 1
    LOOP
        IF cardinality(v_items) = p_limit THEN
            next_usec := nh_ts_usec(v_last.created_at);
            next_id := v_last.id;
            EXIT;
        END IF;

        v_items := array_append(v_items, nh_dead_letter_json(d));
        v_last := d;
    END LOOP;

    status := 200;
    body := array_to_json(v_items)::text;
END
$$;


-- Returns a tenant's dead letter, or 404.
CREATE FUNCTION nh_dead_letter_get(p_tenant_id uuid, p_id uuid,
    OUT status integer, OUT body text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    d dead_letters;
BEGIN
    SELECT * INTO d FROM dead_letters x
     WHERE x.id = p_id AND x.tenant_id = p_tenant_id;

    IF NOT FOUND THEN
        status := 404;
        body := nh_error('not_found', 'dead letter not found');
        RETURN;
    END IF;

    status := 200;
    body := nh_dead_letter_json(d)::text;
END
$$;


-- Replays a tenant's dead letter: its notification, which must still be
-- FAILED, goes back to PENDING with attempts 0 and no lastError, failedAt
-- or nextAttemptAt, and the dead letter gets replayed_at and one more
-- replay_count. This is the one move of a status backwards. The caller
-- produces notification_id to channel's topic after the commit. status is
-- 202 with {"deadLetter", "notification"}, 404 for an unknown dead letter,
-- or 409 when the notification is no longer FAILED (replayed already, or
-- delivered since).
CREATE FUNCTION nh_dead_letter_replay(p_tenant_id uuid, p_id uuid,
    OUT status integer, OUT body text, OUT notification_id uuid,
    OUT channel text)
LANGUAGE plpgsql AS $$
DECLARE
    d dead_letters;
    n notifications;
BEGIN
    SELECT * INTO d FROM dead_letters x
     WHERE x.id = p_id AND x.tenant_id = p_tenant_id
       FOR UPDATE;

    IF NOT FOUND THEN
        status := 404;
        body := nh_error('not_found', 'dead letter not found');
        RETURN;
    END IF;

    UPDATE notifications x
       SET status = 'PENDING',
           attempts = 0,
           last_error = NULL,
           failed_at = NULL,
           next_attempt_at = NULL,
           lease_expires_at = NULL,
           updated_at = now()
     WHERE x.id = d.notification_id AND x.tenant_id = p_tenant_id
       AND x.status = 'FAILED'
    RETURNING * INTO n;

    IF NOT FOUND THEN
        SELECT * INTO n FROM notifications x
         WHERE x.id = d.notification_id AND x.tenant_id = p_tenant_id;

        status := 409;
        body := nh_error('conflict',
            format('the notification is %s, and only a FAILED notification '
                   'can be replayed', n.status),
            nh_detail('status', n.status));
        RETURN;
    END IF;

    UPDATE dead_letters x
       SET replayed_at = now(), replay_count = x.replay_count + 1
     WHERE x.id = d.id
    RETURNING * INTO d;

    status := 202;
    body := (SELECT row_to_json(x)::text
               FROM (SELECT nh_dead_letter_json(d) AS "deadLetter",
                            nh_notification_json(n) AS notification) x);
    notification_id := n.id;
    channel := n.channel;
END
$$;
