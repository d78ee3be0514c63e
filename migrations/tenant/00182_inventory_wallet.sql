-- Apple Wallet passes that stay correct: each pass's content fingerprint
-- and when it last changed (what the pass web service answers devices
-- with), and the devices registered for updates of each pass.

-- +goose Up
CREATE TABLE inv_wallet_passes (
    serial      uuid PRIMARY KEY,  -- the ticket's id
    fingerprint text NOT NULL,     -- SHA-256 of the pass.json last served
    modified_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX inv_wallet_passes_modified_idx ON inv_wallet_passes (modified_at);

CREATE TABLE inv_wallet_registrations (
    device_id    text NOT NULL CHECK (length(device_id) BETWEEN 1 AND 128),
    pass_type_id text NOT NULL CHECK (length(pass_type_id) BETWEEN 1 AND 128),
    serial       uuid NOT NULL,
    push_token   text NOT NULL CHECK (length(push_token) <= 256),
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (device_id, pass_type_id, serial)
);
CREATE INDEX inv_wallet_registrations_serial_idx ON inv_wallet_registrations (serial);

-- +goose Down
DROP TABLE inv_wallet_registrations;
DROP TABLE inv_wallet_passes;
