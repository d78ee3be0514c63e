-- Contract step of staffing's move to the core's mail (tenant 00260):
-- queues what the release before it wrote into stf_notifications during the
-- rollout, exactly as 00260 did (the purpose key makes rows moved then count
-- once), and drops the table. Applied in the release after the one that
-- ships 00260.

-- +goose Up
INSERT INTO mail_outbox (id, purpose_key, kind, ref, to_email, subject, body, created_at)
SELECT gen_random_uuid(), 'stf_notifications:' || n.id, 'staffing.' || n.kind, coalesce(n.assignment_id::text, ''), s.email,
       'Your shifts: ' || n.kind || ' (' || coalesce(n.body ->> 'role', '') || ', ' || coalesce(n.body ->> 'day', '') || ')',
       'Your shift (' || coalesce(n.body ->> 'role', '') || ') on ' || coalesce(n.body ->> 'day', '') || ' from ' ||
       coalesce(n.body ->> 'starts_at', '') || ' to ' || coalesce(n.body ->> 'ends_at', '') || ': ' || n.kind || E'.\n',
       n.created_at
FROM stf_notifications n JOIN stf_staff s ON s.id = n.staff_id
WHERE n.sent_at IS NULL AND s.email <> ''
ON CONFLICT (purpose_key) DO NOTHING;

DROP TABLE stf_notifications;

-- +goose Down
CREATE TABLE stf_notifications (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    staff_id      uuid NOT NULL REFERENCES stf_staff (id),
    kind          text NOT NULL CHECK (kind IN ('published', 'assigned', 'moved', 'cancelled', 'removed', 'approved')),
    shift_id      uuid,
    assignment_id uuid,
    body          jsonb NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    sent_at       timestamptz
);
CREATE INDEX stf_notifications_staff_idx ON stf_notifications (staff_id, id DESC);
CREATE INDEX stf_notifications_unsent_idx ON stf_notifications (id) WHERE sent_at IS NULL;
