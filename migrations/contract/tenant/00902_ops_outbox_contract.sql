-- Contract step of ops' move to the core's mail (tenant 00271): queues what
-- the release before it wrote into ops_outbox during the rollout, exactly
-- as 00271 did (the purpose key makes rows moved then count once), and
-- drops the table. Applied in the release after the one that ships 00271.

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

DROP TABLE ops_outbox;

-- +goose Down
CREATE TABLE ops_outbox (
    id           bigserial PRIMARY KEY,
    topic        text NOT NULL,
    payload      jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    delivered_at timestamptz
);
CREATE INDEX ops_outbox_pending ON ops_outbox (id) WHERE delivered_at IS NULL;
