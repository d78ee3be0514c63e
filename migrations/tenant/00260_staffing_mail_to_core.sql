-- Staffing's notices move to the core's mail outbox: what stf_notifications
-- still had unsent (it never had a sender) is queued there once, for staff
-- with an email address, its id in the purpose key. The table itself goes
-- in the pending contract step 00903, a release later: the release before
-- this one still writes it while the rollout runs (as inventory's 00181).

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

-- +goose Down
DELETE FROM mail_outbox WHERE purpose_key LIKE 'stf_notifications:%';
