-- POS polling: webhooks are not guaranteed (Lightspeed says so of its
-- own), so a connector with an API base and an access token is also polled
-- for payments since its cursor, through the same idempotent path.

-- +goose Up
ALTER TABLE ops_pos_connectors
    ADD COLUMN api_url       text CHECK (api_url IS NULL OR length(api_url) BETWEEN 1 AND 500),
    -- the access token, sealed like the signature key, never returned
    ADD COLUMN token_sealed  bytea,
    -- payments created from here on are listed by the next poll (it
    -- reaches back an overlap before it, for late status changes)
    ADD COLUMN poll_cursor   timestamptz,
    ADD COLUMN polled_at     timestamptz,
    ADD COLUMN poll_error    text NOT NULL DEFAULT '',
    ADD CONSTRAINT ops_pos_connectors_polling CHECK ((api_url IS NULL) = (token_sealed IS NULL));

-- +goose Down
ALTER TABLE ops_pos_connectors DROP CONSTRAINT ops_pos_connectors_polling,
    DROP COLUMN api_url, DROP COLUMN token_sealed, DROP COLUMN poll_cursor, DROP COLUMN polled_at, DROP COLUMN poll_error;
