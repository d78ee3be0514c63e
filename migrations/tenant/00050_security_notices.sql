-- Security notices for staff: repeated failed sign-ins to their account are
-- recorded here and shown to them on their next sign-in (there is no mail
-- outbox in the core yet).

-- +goose Up
CREATE TABLE security_notices (
    id          uuid PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind        text NOT NULL CHECK (kind ~ '^[a-z][a-z0-9_.]{1,63}$'),
    detail      text NOT NULL CHECK (length(detail) <= 500),
    created_at  timestamptz NOT NULL DEFAULT now(),
    seen_at     timestamptz
);
CREATE INDEX security_notices_unseen_idx ON security_notices (user_id, created_at) WHERE seen_at IS NULL;

-- +goose Down
DROP TABLE security_notices;
