-- Reading and cancelling notifications: the filtered list, the delivery
-- logs of one notification, and cancellation. Each function takes the
-- tenant that the module authenticated and returns the HTTP status and the
-- JSON body, as in 0005_key_cache.sql.

-- The list is read newest first on (created_at DESC, id DESC). Each filter
-- column has an index that contains one tenant's rows of one value in that
-- order, so a page is a run of index entries from the cursor on, and the
-- tenant's rows are never sorted. notifications_tenant_created_idx (0001)
-- serves the list without a filter. With several filters, the rows that
-- one filter's index yields are checked against the others. Most rows have
-- no recipient, so the recipient index leaves them out.
CREATE INDEX notifications_tenant_status_idx
    ON notifications (tenant_id, status, created_at DESC, id DESC);

CREATE INDEX notifications_tenant_channel_idx
    ON notifications (tenant_id, channel, created_at DESC, id DESC);

CREATE INDEX notifications_tenant_recipient_idx
    ON notifications (tenant_id, recipient_id, created_at DESC, id DESC)
    WHERE recipient_id IS NOT NULL;


CREATE FUNCTION nh_delivery_log_json(d delivery_logs) RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT row_to_json(x) FROM (SELECT
        d.attempt, d.status, d.provider,
        d.http_status AS "httpStatus",
        d.provider_message_id AS "providerMessageId",
        d.error,
        d.duration_ms AS "durationMs",
        nh_ts(d.created_at) AS "createdAt") x
$$;


-- Lists a tenant's notifications, newest first, in pages of p_limit after
-- the position (p_after_usec, p_after_id) of the previous page's last row.
-- The filters are optional: p_statuses (distinct upper-case statuses),
-- p_channel, p_recipient_id, and the createdAt range [p_from_usec,
-- p_to_usec) in microseconds since the Unix epoch.
-- next_usec and next_id give the position of the page's last row when a
-- next page exists.
--
-- The query text holds only the filters that are given, so that each call
-- is planned for them and reads one of the indexes above in list order.
-- A list of statuses becomes one branch per status under UNION ALL, each
-- with its own ORDER BY and LIMIT, which the planner merges (Merge Append);
-- without the inner ORDER BY it sorts the matching rows of every status
-- instead. When it expects few rows to match two filters, the planner
-- prefers to fetch them all and sort them, and if that guess is wrong the
-- sort covers many rows; enable_sort = off makes it walk an index in list
-- order instead, which stops after one page.
CREATE FUNCTION nh_notification_list(p_tenant_id uuid, p_limit integer,
    p_after_usec bigint, p_after_id uuid, p_statuses text[], p_channel text,
    p_recipient_id uuid, p_from_usec bigint, p_to_usec bigint,
    OUT status integer, OUT body text, OUT next_usec bigint,
    OUT next_id uuid)
LANGUAGE plpgsql STABLE
SET enable_sort = off
AS $$
DECLARE
    n notifications;
    v_last notifications;
    v_items json[] := '{}';
    -- Without a cursor the page starts above every stored row, so one
    -- indexable condition serves both cases.
    v_after timestamptz := COALESCE(nh_usec_ts(p_after_usec), 'infinity');
    v_after_id uuid := COALESCE(p_after_id,
                                'ffffffff-ffff-ffff-ffff-ffffffffffff');
    v_from timestamptz := nh_usec_ts(p_from_usec);
    v_to timestamptz := nh_usec_ts(p_to_usec);
    v_where text;
    v_branches text[] := '{}';
    v_sql text;
BEGIN
    -- "created_at < v_to" is the position (v_to, the smallest uuid). As
    -- the start of the scan it skips the newer rows, which a separate
    -- condition would read and reject one by one.
    IF (v_to, '00000000-0000-0000-0000-000000000000'::uuid)
       < (v_after, v_after_id)
    THEN
        v_after := v_to;
        v_after_id := '00000000-0000-0000-0000-000000000000';
    END IF;

    v_where := 'x.tenant_id = $1 AND (x.created_at, x.id) < ($2, $3)';

    IF cardinality(p_statuses) = 1 THEN
        v_where := v_where || ' AND x.status = $4[1]';
    END IF;

    IF p_channel IS NOT NULL THEN
        v_where := v_where || ' AND x.channel = $5';
    END IF;

    IF p_recipient_id IS NOT NULL THEN
        v_where := v_where || ' AND x.recipient_id = $6';
    END IF;

    IF v_from IS NOT NULL THEN
        v_where := v_where || ' AND x.created_at >= $7';
    END IF;

    -- One row past the page shows whether a next page exists.
    IF cardinality(p_statuses) > 1 THEN
        FOR i IN 1 .. cardinality(p_statuses) LOOP
            v_branches := array_append(v_branches,
                format('(SELECT x.* FROM notifications x WHERE %s'
                       ' AND x.status = $4[%s]'
                       ' ORDER BY x.created_at DESC, x.id DESC LIMIT $8)',
                       v_where, i));
        END LOOP;

        v_sql := array_to_string(v_branches, ' UNION ALL ')
                 || ' ORDER BY created_at DESC, id DESC LIMIT $8';
    ELSE
        v_sql := 'SELECT x.* FROM notifications x WHERE ' || v_where
                 || ' ORDER BY x.created_at DESC, x.id DESC LIMIT $8';
    END IF;

    FOR n IN EXECUTE v_sql
        USING p_tenant_id, v_after, v_after_id, p_statuses, p_channel,
              p_recipient_id, v_from, p_limit + 1
    LOOP
        IF cardinality(v_items) = p_limit THEN
            next_usec := nh_ts_usec(v_last.created_at);
            next_id := v_last.id;
            EXIT;
        END IF;

        v_items := array_append(v_items, nh_notification_json(n));
        v_last := n;
    END LOOP;

    status := 200;
    body := array_to_json(v_items)::text;
END
$$;


-- Lists the delivery attempts of a tenant's notification, oldest first, in
-- pages of p_limit. The logs' cursor contains the id of the previous
-- page's last log row as p_after_log and the notification's id as
-- p_after_id, so a cursor of another notification's logs is rejected.
-- next_log and next_id are that position for the next page.
CREATE FUNCTION nh_notification_logs(p_tenant_id uuid, p_id uuid,
    p_limit integer, p_after_log bigint, p_after_id uuid,
    OUT status integer, OUT body text, OUT next_log bigint,
    OUT next_id uuid)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    d delivery_logs;
    v_last delivery_logs;
    v_items json[] := '{}';
BEGIN
    PERFORM FROM notifications x
      WHERE x.id = p_id AND x.tenant_id = p_tenant_id;

    IF NOT FOUND THEN
        status := 404;
        body := nh_error('not_found', 'notification not found');
        RETURN;
    END IF;

    IF p_after_id IS NOT NULL AND p_after_id <> p_id THEN
        status := 400;
        body := nh_error('invalid_request',
            'cursor belongs to the logs of another notification',
            nh_detail('cursor', 'invalid_value'));
        RETURN;
    END IF;

    FOR d IN
        SELECT * FROM delivery_logs l
         WHERE l.notification_id = p_id AND l.tenant_id = p_tenant_id
           AND l.id > COALESCE(p_after_log, 0)
         ORDER BY l.id
         LIMIT p_limit + 1
    LOOP
        IF cardinality(v_items) = p_limit THEN
            next_log := v_last.id;
            next_id := p_id;
            EXIT;
        END IF;

        v_items := array_append(v_items, nh_delivery_log_json(d));
        v_last := d;
    END LOOP;

    status := 200;
    body := array_to_json(v_items)::text;
END
$$;


-- Cancels a tenant's notification that waits for delivery: PENDING,
-- SCHEDULED or RETRYING becomes CANCELLED. The status check is part of
-- the UPDATE, as in a delivery lease (nh_delivery_lease takes only PENDING
-- and RETRYING rows), so a lease and a cancellation of the same row cannot
-- both succeed. Whichever locks the row first wins, and the other finds
-- the status changed. Any other status is 409 naming it.
CREATE FUNCTION nh_notification_cancel(p_tenant_id uuid, p_id uuid,
    OUT status integer, OUT body text)
LANGUAGE plpgsql AS $$
DECLARE
    n notifications;
    v_status text;
BEGIN
    LOOP
        UPDATE notifications x
           SET status = 'CANCELLED',
               next_attempt_at = NULL,
               updated_at = now()
         WHERE x.id = p_id AND x.tenant_id = p_tenant_id
           AND x.status IN ('PENDING', 'SCHEDULED', 'RETRYING')
        RETURNING * INTO n;

        IF FOUND THEN
            status := 200;
            body := nh_notification_json(n)::text;
            RETURN;
        END IF;

        SELECT x.status INTO v_status FROM notifications x
         WHERE x.id = p_id AND x.tenant_id = p_tenant_id;

        IF NOT FOUND THEN
            status := 404;
            body := nh_error('not_found', 'notification not found');
            RETURN;
        END IF;

        -- The row can become cancellable again between the two
        -- statements, for example when a failed attempt sets RETRYING.
        -- The loop then runs the UPDATE again.
        IF v_status NOT IN ('PENDING', 'SCHEDULED', 'RETRYING') THEN
            status := 409;
            body := nh_error('conflict',
                format('the notification is %s, and only a PENDING, '
                       'SCHEDULED or RETRYING notification can be cancelled',
                       v_status),
                nh_detail('status', v_status));
            RETURN;
        END IF;
    END LOOP;
END
$$;
