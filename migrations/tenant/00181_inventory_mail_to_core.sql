-- Inventory's mail moves to the core's outbox: what inv_email_outbox still
-- had unsent is queued there once (its id as the purpose key). The old
-- table stays while a release that writes it may still run; the release
-- after this one drops it.

-- +goose Up
INSERT INTO mail_outbox (id, purpose_key, kind, ref, to_email, subject, body, created_at)
SELECT id, 'inv_email_outbox:' || id, 'inventory.notice', coalesce(order_id::text, ''), to_email, subject, body, created_at
FROM inv_email_outbox WHERE sent_at IS NULL
ON CONFLICT (purpose_key) DO NOTHING;

-- +goose Down
DELETE FROM mail_outbox WHERE purpose_key LIKE 'inv_email_outbox:%';
