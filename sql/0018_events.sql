-- Status events: every change of a notification's status is written to
-- notification_events in the transaction that makes it, and the workers
-- relay the rows to the notifyhub.events topic, oldest first, deleting
-- each batch once Kafka has acknowledged it. After a crash between the
-- two, the batch is relayed again, so a consumer receives each event at
-- least once.

CREATE TABLE notification_events (
    id               bigserial PRIMARY KEY,
    notification_id  uuid NOT NULL,
    tenant_id        uuid NOT NULL,
    channel          text NOT NULL,
    status           text NOT NULL,
    previous_status  text NOT NULL,
    occurred_at      timestamptz NOT NULL DEFAULT now()
);

-- One statement-level trigger, so an UPDATE of many rows adds its events
-- with one INSERT.
CREATE FUNCTION nh_notification_events_record() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO notification_events (notification_id, tenant_id, channel,
        status, previous_status)
    SELECT n.id, n.tenant_id, n.channel, n.status, o.status
      FROM new_rows n JOIN old_rows o ON o.id = n.id
     WHERE n.status IS DISTINCT FROM o.status
     ORDER BY n.id;

    RETURN NULL;
END
$$;

CREATE TRIGGER notifications_status_events
    AFTER UPDATE ON notifications
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION nh_notification_events_record();

-- The oldest events as the relay sends them: id, notification id, and the
-- message value. Called in the relay's transaction, which holds the
-- advisory lock of nh_events_lock(), so that one relay at a time sends
-- them in order.
CREATE FUNCTION nh_events_claim(p_limit integer)
RETURNS TABLE (id bigint, notification_id uuid, value text)
LANGUAGE sql AS $$
    SELECT e.id, e.notification_id,
           json_build_object(
               'id', e.id,
               'type', 'notification.' || lower(e.status),
               'notificationId', e.notification_id,
               'tenantId', e.tenant_id,
               'channel', e.channel,
               'status', e.status,
               'previousStatus', e.previous_status,
               'occurredAt', nh_ts(e.occurred_at))::text
      FROM notification_events e
     ORDER BY e.id
     LIMIT p_limit
       FOR UPDATE
$$;

-- The key of the relay's transaction-level advisory lock.
CREATE FUNCTION nh_events_lock() RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$ SELECT 7210561842553001 $$;
