-- Venue rentals: a chain rents a room of one of its venues to an outside
-- promoter for a calendar hold: the rental fee, add-ons (catering, AV,
-- security, cleaning…) with quantities and unit prices, and a deposit paid
-- through Stripe. The hold becomes an event only once the deposit is paid
-- (a check below makes "confirmed but unpaid" impossible). Invoices are
-- numbered per chain without gaps: the number is taken from one counter row
-- in the transaction that writes the invoice, so a rollback gives it back.

-- +goose Up
CREATE TABLE bkg_rentals (
    id                uuid PRIMARY KEY,
    hold_id           uuid NOT NULL UNIQUE,
    venue_id          uuid NOT NULL,
    event_id          uuid,
    title             text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    renter_name       text NOT NULL CHECK (length(renter_name) BETWEEN 1 AND 200),
    renter_email      text NOT NULL CHECK (length(renter_email) BETWEEN 3 AND 320),
    currency          text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    fee_minor         bigint NOT NULL CHECK (fee_minor >= 0),
    deposit_minor     bigint NOT NULL CHECK (deposit_minor >= 0),
    deposit_due       date,
    status            text NOT NULL DEFAULT 'awaiting_deposit' CHECK (status IN ('awaiting_deposit', 'confirmed')),
    deposit_paid_at   timestamptz,
    payment_intent_id text UNIQUE,
    payment_error     text NOT NULL DEFAULT '',
    confirm_error     text NOT NULL DEFAULT '',
    confirmed_at      timestamptz,
    version           integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_at        timestamptz NOT NULL DEFAULT now(),
    CHECK ((status = 'confirmed') = (confirmed_at IS NOT NULL AND event_id IS NOT NULL)),
    -- confirmed only when the deposit is paid (or there is none)
    CHECK (status <> 'confirmed' OR deposit_minor = 0 OR deposit_paid_at IS NOT NULL)
);
CREATE INDEX bkg_rentals_created_idx ON bkg_rentals (id DESC);

CREATE TABLE bkg_rental_addons (
    rental_id  uuid NOT NULL REFERENCES bkg_rentals (id),
    line       integer NOT NULL CHECK (line >= 1),
    kind       text NOT NULL CHECK (kind IN ('catering', 'av', 'pa', 'lighting', 'security', 'cleaning', 'staff', 'other')),
    name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    quantity   integer NOT NULL CHECK (quantity BETWEEN 1 AND 10000),
    unit_minor bigint NOT NULL CHECK (unit_minor >= 0),
    PRIMARY KEY (rental_id, line)
);

-- Stripe events acted on, once each (a redelivery finds its id here).
CREATE TABLE bkg_rental_payment_events (
    event_id    text PRIMARY KEY,
    rental_id   uuid NOT NULL REFERENCES bkg_rentals (id),
    type        text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);

-- What happened to a rental: who, when, from where.
CREATE TABLE bkg_rental_history (
    id         bigserial PRIMARY KEY,
    rental_id  uuid NOT NULL REFERENCES bkg_rentals (id),
    at         timestamptz NOT NULL DEFAULT now(),
    actor      text NOT NULL,
    ip         text NOT NULL DEFAULT '',
    action     text NOT NULL,
    note       text NOT NULL DEFAULT ''
);
CREATE INDEX bkg_rental_history_rental_idx ON bkg_rental_history (rental_id, id);
-- A rental is confirmed once: a second confirmation cannot be written.
CREATE UNIQUE INDEX bkg_rental_history_confirm_key ON bkg_rental_history (rental_id) WHERE action = 'confirm';

CREATE TABLE bkg_invoice_counter (
    id          smallint PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    last_number integer NOT NULL CHECK (last_number >= 0)
);
INSERT INTO bkg_invoice_counter (id, last_number) VALUES (1, 0);

-- One invoice per rental; its lines and totals frozen as issued (document),
-- its PDF in object storage with the SHA-256.
CREATE TABLE bkg_invoices (
    number      integer PRIMARY KEY CHECK (number >= 1),
    rental_id   uuid NOT NULL UNIQUE REFERENCES bkg_rentals (id),
    document    jsonb NOT NULL,
    total_minor bigint NOT NULL CHECK (total_minor >= 0),
    currency    text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    object_key  text NOT NULL,
    sha256      text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    size_bytes  bigint NOT NULL CHECK (size_bytes > 0),
    issued_at   timestamptz NOT NULL
);

-- +goose Down
DROP TABLE bkg_invoices;
DROP TABLE bkg_invoice_counter;
DROP TABLE bkg_rental_history;
DROP TABLE bkg_rental_payment_events;
DROP TABLE bkg_rental_addons;
DROP TABLE bkg_rentals;
