-- Set-based leases and outcomes. In one turn of its loop, a worker leases
-- its messages with one statement over an array of ids, and writes its
-- outcomes with one statement over arrays of values. So the costs of a
-- statement (the round trip, the executor start, the status trigger) are
-- paid once per turn instead of once per notification.
--
-- Neither waits for a row that another transaction has locked. A
-- statement that updates many rows in another order (a tenant's deletion,
-- an operator's bulk UPDATE) could otherwise deadlock with them. Such a
-- row is reported busy instead, and the worker tries it again later.
--
-- nh_delivery_lease and nh_delivery_record stay, so that a worker of the
-- previous release keeps working during a rolling upgrade.

-- The device tokens of a push that failed permanently in an earlier
-- attempt (FCM INVALID_ARGUMENT or UNREGISTERED), which a retry leaves
-- out. A lease that starts a first attempt (a new notification, or one
-- that a replay made PENDING with no attempts) clears it.
ALTER TABLE notifications ADD COLUMN failed_targets text[];

-- nh_delivery_lease of 0020 for many notifications, which also returns
-- failed_targets as a JSON array (NULL when there is none). The result
-- has one row per notification that was leased, with its position in p_ids
-- (from 1) as item. An id without a row was not leasable, because it was
-- already handled, cancelled or gone. An id that appears twice is leased
-- once, for its first position. A leasable notification that another
-- transaction has locked gets a row with busy set and every other column
-- NULL.
CREATE FUNCTION nh_delivery_lease_many(p_ids uuid[], p_lease_seconds integer)
RETURNS TABLE (item integer, busy boolean, tenant_id uuid, channel text, to_email text,
               subject text, body text, html text, attempts integer,
               to_address jsonb, data jsonb, priority text,
               channel_enabled boolean, quiet_start integer,
               quiet_end integer, quiet_timezone text,
               failed_targets jsonb)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    IF p_lease_seconds IS NULL OR p_lease_seconds < 1 THEN
        RAISE EXCEPTION 'invalid lease of % seconds', p_lease_seconds
              USING ERRCODE = 'invalid_parameter_value';
    END IF;

    RETURN QUERY
    WITH locked AS (
        SELECT x.id
          FROM notifications x
         WHERE x.id = ANY (p_ids) AND x.status IN ('PENDING', 'RETRYING')
           FOR UPDATE SKIP LOCKED
    ), n AS (
        UPDATE notifications n
           SET status = 'PROCESSING',
               attempts = n.attempts + 1,
               lease_expires_at = now()
                                  + make_interval(secs => p_lease_seconds),
               failed_targets = CASE WHEN n.attempts = 0 THEN NULL
                                     ELSE n.failed_targets END,
               updated_at = now()
          FROM locked l
         WHERE n.id = l.id AND n.status IN ('PENDING', 'RETRYING')
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
    SELECT a.ord::integer, false, n.tenant_id, n.channel,
           n.to_address ->> 'email',
           n.subject, n.body, n.html, n.attempts, n.to_address, n.data,
           n.priority,
           CASE n.channel WHEN 'EMAIL' THEN p.email_enabled
                          WHEN 'SMS' THEN p.sms_enabled
                          ELSE p.push_enabled END,
           (extract(epoch FROM p.quiet_start) / 60)::integer,
           (extract(epoch FROM p.quiet_end) / 60)::integer,
           CASE WHEN p.quiet_start IS NOT NULL
                THEN COALESCE(p.quiet_timezone, rc.timezone, 'UTC') END,
           to_jsonb(n.failed_targets)
      FROM n
      JOIN r ON r.notification_id = n.id
      JOIN (SELECT DISTINCT ON (u.id) u.id, u.ord
              FROM unnest(p_ids) WITH ORDINALITY AS u (id, ord)
             ORDER BY u.id, u.ord) a ON a.id = n.id
      LEFT JOIN recipients rc
             ON rc.id = r.recipient_id AND rc.tenant_id = n.tenant_id
      LEFT JOIN recipient_preferences p
             ON p.recipient_id = r.recipient_id AND p.tenant_id = n.tenant_id;

    -- This statement reads the rows after the leases above. A
    -- notification that is still leasable was skipped, because another
    -- transaction held its row.
    RETURN QUERY
    SELECT a.ord::integer, true, NULL::uuid, NULL::text, NULL::text,
           NULL::text, NULL::text, NULL::text, NULL::integer, NULL::jsonb,
           NULL::jsonb, NULL::text, NULL::boolean, NULL::integer,
           NULL::integer, NULL::text, NULL::jsonb
      FROM (SELECT DISTINCT ON (u.id) u.id, u.ord
              FROM unnest(p_ids) WITH ORDINALITY AS u (id, ord)
             ORDER BY u.id, u.ord) a
     WHERE EXISTS (SELECT 1 FROM notifications x
                    WHERE x.id = a.id
                      AND x.status IN ('PENDING', 'RETRYING'));
END
$$;


-- nh_delivery_record of 0019 for many single-target outcomes, given as
-- arrays of equal length where element i of each array belongs to
-- p_ids[i], and p_providers[i] names the provider that was used. The
-- result has one row per element, with these columns:
--   id           the element's id;
--   status       the new status (SENT, RETRYING or FAILED), or NULL when
--                nothing was written for it;
--   dead_letter  the notifyhub.dlq message of a new dead letter, or NULL;
--   busy         set when the notification is PROCESSING but another
--                transaction held its row, so nothing was written yet.
-- Nothing is written for a notification that is no longer PROCESSING. An
-- id that appears twice is written once, for its first element.
CREATE FUNCTION nh_delivery_record_many(p_ids uuid[], p_providers text[],
    p_statuses text[], p_http_statuses integer[],
    p_provider_message_ids text[], p_errors text[], p_durations integer[],
    p_retry_in_ms bigint[], p_dead_letter_reasons text[])
RETURNS TABLE (id uuid, status text, dead_letter text, busy boolean)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_n integer := COALESCE(cardinality(p_ids), 0);
BEGIN
    IF cardinality(p_providers) IS DISTINCT FROM v_n
       OR cardinality(p_statuses) IS DISTINCT FROM v_n
       OR cardinality(p_http_statuses) IS DISTINCT FROM v_n
       OR cardinality(p_provider_message_ids) IS DISTINCT FROM v_n
       OR cardinality(p_errors) IS DISTINCT FROM v_n
       OR cardinality(p_durations) IS DISTINCT FROM v_n
       OR cardinality(p_retry_in_ms) IS DISTINCT FROM v_n
       OR cardinality(p_dead_letter_reasons) IS DISTINCT FROM v_n
    THEN
        RAISE EXCEPTION 'the outcome arrays differ in length'
              USING ERRCODE = 'invalid_parameter_value';
    END IF;

    IF EXISTS (SELECT 1
                 FROM unnest(p_ids, p_statuses, p_retry_in_ms) u (i, s, r)
                WHERE i IS NULL OR s IS NULL OR s NOT IN ('SENT', 'FAILED')
                   OR r < 0)
    THEN
        RAISE EXCEPTION 'invalid delivery outcome: every id needs status '
              'SENT or FAILED and a retry delay that is not negative'
              USING ERRCODE = 'invalid_parameter_value';
    END IF;

    RETURN QUERY
    WITH o AS (
        SELECT DISTINCT ON (u.id) u.*,
               CASE WHEN u.status = 'SENT' THEN 'SENT'
                    WHEN u.retry_in_ms IS NOT NULL THEN 'RETRYING'
                    ELSE 'FAILED' END AS new_status,
               CASE WHEN u.status = 'FAILED' AND u.retry_in_ms IS NOT NULL
                    THEN now() + u.retry_in_ms * interval '1 millisecond'
                    END AS next_at
          FROM unnest(p_ids, p_providers, p_statuses, p_http_statuses,
                      p_provider_message_ids, p_errors, p_durations,
                      p_retry_in_ms, p_dead_letter_reasons)
               WITH ORDINALITY
               AS u (id, provider, status, http_status, message_id, error,
                     duration_ms, retry_in_ms, reason, ord)
         ORDER BY u.id, u.ord
    ), locked AS (
        SELECT x.id
          FROM notifications x
         WHERE x.id IN (SELECT o.id FROM o) AND x.status = 'PROCESSING'
           FOR UPDATE SKIP LOCKED
    ), u AS (
        UPDATE notifications x
           SET status = o.new_status,
               provider = o.provider,
               provider_message_id = COALESCE(o.message_id,
                                              x.provider_message_id),
               last_error = o.error,
               lease_expires_at = NULL,
               next_attempt_at = o.next_at,
               sent_at = CASE WHEN o.status = 'SENT' THEN now() END,
               failed_at = CASE WHEN o.new_status = 'FAILED'
                                THEN now() END,
               updated_at = now()
          FROM o
         WHERE x.id = o.id AND x.status = 'PROCESSING'
           AND x.id IN (SELECT l.id FROM locked l)
        RETURNING x.id, x.tenant_id, x.channel, x.attempts, o.provider,
                  o.status,
                  o.new_status, o.http_status, o.message_id, o.error,
                  o.duration_ms, o.next_at, o.reason
    ), logs AS (
        INSERT INTO delivery_logs (tenant_id, notification_id, attempt,
            status, provider, http_status, provider_message_id, error,
            duration_ms, next_attempt_at)
        SELECT u.tenant_id, u.id, u.attempts, u.status, u.provider,
               u.http_status, u.message_id, u.error, u.duration_ms,
               u.next_at
          FROM u
    ), dl AS (
        INSERT INTO dead_letters (id, tenant_id, notification_id, channel,
            reason, attempts, http_status)
        SELECT nh_uuid7(), u.tenant_id, u.id, u.channel,
               COALESCE(u.reason, u.error, 'delivery failed'), u.attempts,
               u.http_status
          FROM u
         WHERE u.new_status = 'FAILED'
        RETURNING *
    )
    -- The statement's snapshot shows the rows as they were before the
    -- UPDATE, so a PROCESSING row that was not updated was skipped.
    SELECT a.id, u.new_status,
           CASE WHEN dl.id IS NOT NULL
                THEN nh_dead_letter_message(dl::dead_letters) END,
           COALESCE(u.id IS NULL AND a.ord = o.ord
                    AND x.status = 'PROCESSING', false)
      FROM unnest(p_ids) WITH ORDINALITY AS a (id, ord)
      LEFT JOIN o ON o.id = a.id
      LEFT JOIN u ON u.id = a.id
                 AND a.ord = o.ord
      LEFT JOIN dl ON dl.notification_id = u.id
      LEFT JOIN notifications x ON x.id = a.id
     ORDER BY a.ord;
END
$$;


-- nh_delivery_record_targets of 0019, which also keeps the targets that
-- failed permanently: a result with "permanent": true is added to
-- failed_targets when the notification becomes RETRYING, so that the
-- retry leaves it out. Like nh_delivery_record_many, it does not wait for
-- a notification row that another transaction holds: it then writes
-- nothing and sets busy.
DROP FUNCTION nh_delivery_record_targets(uuid, text, jsonb, bigint, text);

CREATE FUNCTION nh_delivery_record_targets(p_id uuid,
    p_provider text, p_results jsonb, p_retry_in_ms bigint,
    p_dead_letter_reason text,
    OUT status text, OUT deactivated integer, OUT dead_letter text,
    OUT busy boolean)
LANGUAGE plpgsql AS $$
DECLARE
    n notifications;
    v_sent jsonb;
    v_last jsonb;
    v_next timestamptz;
    v_count integer;
    v_index integer := 0;
    v_failed text[];
    r jsonb;
BEGIN
    deactivated := 0;
    busy := false;

    IF jsonb_typeof(p_results) IS DISTINCT FROM 'array'
       OR jsonb_array_length(p_results) = 0 OR p_retry_in_ms < 0
    THEN
        RAISE EXCEPTION 'p_results must be a non-empty JSON array and '
              'p_retry_in_ms not negative'
              USING ERRCODE = 'invalid_parameter_value';
    END IF;

    PERFORM 1 FROM notifications x
      WHERE x.id = p_id AND x.status = 'PROCESSING'
        FOR UPDATE SKIP LOCKED;

    IF NOT FOUND THEN
        -- Still PROCESSING here means that the row was skipped, because
        -- another transaction held it.
        busy := EXISTS (SELECT 1 FROM notifications x
                         WHERE x.id = p_id AND x.status = 'PROCESSING');
        status := NULL;
        RETURN;
    END IF;

    SELECT x INTO v_sent FROM jsonb_array_elements(p_results) x
     WHERE x ->> 'status' = 'SENT' LIMIT 1;
    v_last := p_results -> -1;
    v_count := jsonb_array_length(p_results);

    SELECT array_agg(x ->> 'target') INTO v_failed
      FROM jsonb_array_elements(p_results) x
     WHERE x ->> 'status' = 'FAILED' AND x ->> 'target' IS NOT NULL
       AND COALESCE((x ->> 'permanent')::boolean, false);

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
           failed_targets =
               CASE WHEN nh_delivery_record_targets.status = 'RETRYING'
                         AND v_failed IS NOT NULL
                    THEN COALESCE(x.failed_targets, '{}') || v_failed
                    ELSE x.failed_targets END,
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
