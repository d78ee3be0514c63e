-- Both parties acknowledge a booking's settlement: who, when, from where,
-- and the SHA-256 of the external sheet they read, so an acknowledgment
-- names the numbers it agreed to (a sheet recomputed since shows it).

-- +goose Up
CREATE TABLE bkg_settlement_acks (
    booking_id   uuid NOT NULL REFERENCES bkg_bookings (id),
    party        text NOT NULL CHECK (party IN ('promoter', 'artist')),
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    at           timestamptz NOT NULL DEFAULT now(),
    ip           text NOT NULL DEFAULT '',
    sheet_sha256 text NOT NULL CHECK (sheet_sha256 ~ '^[0-9a-f]{64}$'),
    walkout_minor bigint NOT NULL,
    currency     text NOT NULL,
    PRIMARY KEY (booking_id, party)
);

-- +goose Down
DROP TABLE bkg_settlement_acks;
