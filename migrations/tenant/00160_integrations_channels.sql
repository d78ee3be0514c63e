-- +goose Up
-- Outside sales channels (Ticketmaster, Eventbrite): connectors with sealed
-- credentials, listings linking an external event to ours and to a channel
-- quota, the orders they sold (once per external order and tier), webhook
-- deliveries (once each), channel oversells, the sync timeline and
-- reconciliations.
CREATE TABLE int_connectors (
    id                 uuid PRIMARY KEY,
    provider           text NOT NULL CHECK (provider IN ('ticketmaster', 'eventbrite')),
    name               text NOT NULL CHECK (length(name) BETWEEN 1 AND 120),
    api_base           text NOT NULL,
    account            text NOT NULL DEFAULT '',
    timezone           text NOT NULL DEFAULT 'UTC',
    credentials_sealed bytea NOT NULL,
    key_id             text NOT NULL,
    path_secret_hash   bytea,
    poll_cursor        bigint NOT NULL DEFAULT 0,
    last_success_at    timestamptz,
    last_error_at      timestamptz,
    last_error         text,
    quota_allowed      integer,
    quota_available    integer,
    quota_at           timestamptz,
    backoff_until      timestamptz,
    day                date,
    day_calls          integer NOT NULL DEFAULT 0,
    created_at         timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE int_listings (
    id                uuid PRIMARY KEY,
    connector_id      uuid NOT NULL REFERENCES int_connectors (id) ON DELETE CASCADE,
    external_event_id text NOT NULL CHECK (length(external_event_id) BETWEEN 1 AND 120),
    event_id          uuid NOT NULL,
    channel           text NOT NULL CHECK (channel IN ('ticketmaster', 'eventbrite')),
    tiers             jsonb NOT NULL DEFAULT '{}'::jsonb,
    allocated         integer,
    push_state        text NOT NULL DEFAULT 'none' CHECK (push_state IN ('none', 'pending', 'pushed', 'failed')),
    push_error        text,
    push_attempts     integer NOT NULL DEFAULT 0,
    pushed_at         timestamptz,
    their_sold        integer,
    their_pending     integer,
    their_status      text,
    their_at          timestamptz,
    last_webhook_at   timestamptz,
    closed_at         timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (connector_id, external_event_id),
    UNIQUE (event_id, channel)
);

CREATE TABLE int_orders (
    connector_id      uuid NOT NULL REFERENCES int_connectors (id) ON DELETE CASCADE,
    external_order_id text NOT NULL,
    tier_id           uuid NOT NULL,
    listing_id        uuid NOT NULL REFERENCES int_listings (id) ON DELETE CASCADE,
    event_id          uuid NOT NULL,
    quantity          integer NOT NULL CHECK (quantity > 0),
    status            text NOT NULL CHECK (status IN ('sold', 'returned', 'oversold')),
    checked_in        integer NOT NULL DEFAULT 0,
    their_at          timestamptz,
    received_at       timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (connector_id, external_order_id, tier_id)
);
CREATE INDEX int_orders_listing ON int_orders (listing_id, status);

CREATE TABLE int_deliveries (
    connector_id uuid NOT NULL REFERENCES int_connectors (id) ON DELETE CASCADE,
    delivery_id  text NOT NULL,
    action       text NOT NULL,
    api_url      text NOT NULL,
    outcome      text NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (connector_id, delivery_id)
);

CREATE TABLE int_oversells (
    id                uuid PRIMARY KEY,
    connector_id      uuid NOT NULL REFERENCES int_connectors (id) ON DELETE CASCADE,
    listing_id        uuid NOT NULL REFERENCES int_listings (id) ON DELETE CASCADE,
    event_id          uuid NOT NULL,
    channel           text NOT NULL,
    external_order_id text,
    quantity          integer NOT NULL,
    quota_left        integer,
    detected_by       text NOT NULL CHECK (detected_by IN ('sale', 'reconciliation')),
    detail            text NOT NULL,
    alerted_at        timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now()
);
-- One record per oversold order, and one per reconciliation finding.
CREATE UNIQUE INDEX int_oversells_order ON int_oversells (connector_id, external_order_id) WHERE external_order_id IS NOT NULL;

CREATE TABLE int_syncs (
    id           bigserial PRIMARY KEY,
    connector_id uuid NOT NULL REFERENCES int_connectors (id) ON DELETE CASCADE,
    listing_id   uuid REFERENCES int_listings (id) ON DELETE CASCADE,
    kind         text NOT NULL CHECK (kind IN ('poll', 'webhook', 'push', 'reconcile', 'final', 'catalogue')),
    ok           boolean NOT NULL,
    detail       text NOT NULL,
    calls        integer NOT NULL DEFAULT 0,
    at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX int_syncs_connector ON int_syncs (connector_id, at DESC);
CREATE INDEX int_syncs_listing ON int_syncs (listing_id, at DESC);

CREATE TABLE int_reconciliations (
    id          uuid PRIMARY KEY,
    listing_id  uuid NOT NULL REFERENCES int_listings (id) ON DELETE CASCADE,
    event_id    uuid NOT NULL,
    channel     text NOT NULL,
    allocated   integer NOT NULL,
    their_sold  integer,
    our_sold    integer NOT NULL,
    pending     integer NOT NULL,
    delta       integer,
    drift       boolean NOT NULL,
    cause       text,
    final       boolean NOT NULL DEFAULT false,
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX int_reconciliations_event ON int_reconciliations (event_id, at DESC);

-- +goose Down
DROP TABLE int_reconciliations;
DROP TABLE int_syncs;
DROP TABLE int_oversells;
DROP TABLE int_deliveries;
DROP TABLE int_orders;
DROP TABLE int_listings;
DROP TABLE int_connectors;
