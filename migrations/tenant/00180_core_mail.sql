-- The core's mail outbox: every module's messages, written in the
-- transaction of what they tell and sent by the core's retried task.

-- +goose Up
CREATE TABLE mail_outbox (
    id              uuid PRIMARY KEY,
    -- One message per purpose (an order's tickets): queueing it again,
    -- after a retried webhook or a crash, queues nothing.
    purpose_key     text NOT NULL UNIQUE,
    kind            text NOT NULL,
    ref             text NOT NULL DEFAULT '',
    to_email        text NOT NULL,
    subject         text NOT NULL,
    body            text NOT NULL,
    status          text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'sent', 'failed', 'bounced')),
    attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error      text NOT NULL DEFAULT '',
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    created_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz,
    message_id      text,
    CHECK ((status = 'sent') = (sent_at IS NOT NULL))
);
-- The sweep reads what is due.
CREATE INDEX mail_outbox_due_idx ON mail_outbox (next_attempt_at) WHERE status = 'queued';
CREATE INDEX mail_outbox_ref_idx ON mail_outbox (ref);

-- +goose Down
DROP TABLE mail_outbox;
