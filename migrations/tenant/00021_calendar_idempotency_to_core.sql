-- The calendar keeps its Idempotency-Keys in the core idempotency_keys table
-- (app.Once) like every module; its own table goes.

-- +goose Up
DROP TABLE calendar_idempotency;

-- +goose Down
CREATE TABLE calendar_idempotency (
    principal    text NOT NULL,
    key          text NOT NULL CHECK (length(key) BETWEEN 1 AND 200),
    request_hash bytea NOT NULL,
    status       integer NOT NULL DEFAULT 0,
    body         jsonb,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (principal, key)
);
