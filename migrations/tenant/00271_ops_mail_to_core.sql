-- Ops' mail moves to the core's outbox. ops_outbox held capacity alerts
-- with no addressee and nothing ever relayed them; what it still has
-- undelivered is queued once per chain-wide alert contact (the purpose key
-- names the row and the contact, so running this again queues nothing).
-- The table stays while the release before this one, which writes it, may
-- still run: the pending contract step 00902 moves what that release wrote
-- meanwhile and drops it.

-- +goose Up
INSERT INTO mail_outbox (id, purpose_key, kind, ref, to_email, subject, body, created_at)
SELECT gen_random_uuid(), 'ops_outbox:' || o.id || ':' || c.id, 'ops.capacity_alert', coalesce(o.payload->>'event_id', ''), c.email,
       'Capacity alert: ' || coalesce(o.payload->>'zone', 'a zone') || ' reached ' || coalesce(o.payload->>'percent', '?') || '%',
       coalesce(o.payload->>'zone', 'A zone') || ' reached ' || coalesce(o.payload->>'percent', '?') || '% of its licensed capacity: '
         || coalesce(o.payload->>'inside', '?') || ' inside of ' || coalesce(o.payload->>'capacity', '?') || ' (source '
         || coalesce(o.payload->>'source', '?') || ', at ' || coalesce(o.payload->>'raised_at', o.created_at::text) || ' UTC).',
       o.created_at
FROM ops_outbox o CROSS JOIN ops_contacts c
WHERE o.delivered_at IS NULL AND o.topic = 'capacity_alert' AND c.venue_id IS NULL AND c.alerts
ON CONFLICT (purpose_key) DO NOTHING;

-- +goose Down
DELETE FROM mail_outbox WHERE purpose_key LIKE 'ops\_outbox:%' AND status = 'queued';
