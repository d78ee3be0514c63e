-- Inventory: zones, seat maps, GA pools, tiers, channel quotas, holds,
-- orders, payments, tickets. Runs with search_path "<tenant schema>, public".
--
-- What the database guarantees here (the Go code relies on it):
--   * a seat changes state only through conditional updates, and its row
--     says who has it: held rows carry the hold, sold rows the order;
--   * a counter shard (GA pool or channel quota) never has held + sold
--     above its capacity (CHECK), the shards of a counter add up to the
--     counter's capacity (deferred constraint trigger), and
--   * the channel quotas of an event, and its zones, never add up to more
--     than the event's capacity (triggers that lock the event row and
--     recompute the sum, so concurrent changes serialise);
--   * a Stripe event is processed once (primary key), an order has one hold
--     and one PaymentIntent (unique), a seat has at most one valid ticket.

-- +goose Up
CREATE TABLE inv_events (
    event_id           uuid PRIMARY KEY,
    venue_id           uuid NOT NULL,
    capacity           integer NOT NULL CHECK (capacity BETWEEN 0 AND 1000000),
    hold_minutes       integer NOT NULL DEFAULT 10 CHECK (hold_minutes BETWEEN 1 AND 120),
    max_buyer_holds    integer NOT NULL DEFAULT 3 CHECK (max_buyer_holds BETWEEN 1 AND 1000),
    max_buyer_tickets  integer NOT NULL DEFAULT 10 CHECK (max_buyer_tickets BETWEEN 1 AND 100000),
    max_ip_holds       integer NOT NULL DEFAULT 50 CHECK (max_ip_holds BETWEEN 0 AND 1000000), -- 0: no per-IP limit
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE inv_zones (
    id         uuid PRIMARY KEY,
    event_id   uuid NOT NULL REFERENCES inv_events (event_id) ON DELETE CASCADE,
    name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 80),
    kind       text NOT NULL CHECK (kind IN ('ga', 'reserved')),
    capacity   integer NOT NULL CHECK (capacity BETWEEN 0 AND 1000000),
    sort       integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (event_id, id)
);
CREATE UNIQUE INDEX inv_zones_name_key ON inv_zones (event_id, lower(name));

-- One row per seat of a reserved zone. State moves available -> held ->
-- sold (or back to available) only through conditional UPDATEs.
CREATE TABLE inv_seats (
    event_id  uuid NOT NULL,
    id        text NOT NULL CHECK (id ~ '^[A-Za-z0-9]{1,12}-[A-Za-z0-9]{1,12}-[0-9]{1,5}$'),
    zone_id   uuid NOT NULL,
    section   text NOT NULL,
    row_label text NOT NULL,
    number    integer NOT NULL,
    ord       integer NOT NULL, -- position in the map (bitmap order)
    x         real NOT NULL DEFAULT 0,
    y         real NOT NULL DEFAULT 0,
    state     text NOT NULL DEFAULT 'available' CHECK (state IN ('available', 'held', 'sold')),
    hold_id   uuid,
    order_id  uuid,
    PRIMARY KEY (event_id, id),
    UNIQUE (event_id, ord),
    FOREIGN KEY (event_id, zone_id) REFERENCES inv_zones (event_id, id) ON DELETE CASCADE,
    CHECK ((state = 'available') = (hold_id IS NULL AND order_id IS NULL)),
    CHECK ((state = 'held') = (hold_id IS NOT NULL AND order_id IS NULL)),
    CHECK ((state = 'sold') = (order_id IS NOT NULL))
);
CREATE INDEX inv_seats_hold_idx ON inv_seats (hold_id) WHERE hold_id IS NOT NULL;

-- Counters: a GA pool (kind 'pool', one per GA zone) or a channel quota
-- (kind 'quota', one per channel of an event). Their units live in shards so
-- that concurrent holds do not all queue on one row.
CREATE TABLE inv_counters (
    id         uuid PRIMARY KEY,
    event_id   uuid NOT NULL REFERENCES inv_events (event_id) ON DELETE CASCADE,
    kind       text NOT NULL CHECK (kind IN ('pool', 'quota')),
    zone_id    uuid,
    channel    text CHECK (channel IN ('web', 'box_office', 'ticketmaster', 'eventbrite')),
    capacity   integer NOT NULL CHECK (capacity BETWEEN 0 AND 1000000),
    CHECK ((kind = 'pool') = (zone_id IS NOT NULL)),
    CHECK ((kind = 'quota') = (channel IS NOT NULL)),
    FOREIGN KEY (event_id, zone_id) REFERENCES inv_zones (event_id, id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX inv_counters_pool_key ON inv_counters (zone_id) WHERE kind = 'pool';
CREATE UNIQUE INDEX inv_counters_quota_key ON inv_counters (event_id, channel) WHERE kind = 'quota';

CREATE TABLE inv_counter_shards (
    counter_id uuid NOT NULL REFERENCES inv_counters (id) ON DELETE CASCADE,
    shard      smallint NOT NULL CHECK (shard BETWEEN 0 AND 255),
    capacity   integer NOT NULL CHECK (capacity >= 0),
    held       integer NOT NULL DEFAULT 0 CHECK (held >= 0),
    sold       integer NOT NULL DEFAULT 0 CHECK (sold >= 0),
    PRIMARY KEY (counter_id, shard),
    -- The no-oversell invariant of pools and quotas.
    CONSTRAINT inv_counter_shards_within_capacity CHECK (held + sold <= capacity)
);

CREATE TABLE inv_tiers (
    id            uuid PRIMARY KEY,
    event_id      uuid NOT NULL REFERENCES inv_events (event_id) ON DELETE CASCADE,
    zone_id       uuid NOT NULL,
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 80),
    price_minor   bigint NOT NULL CHECK (price_minor BETWEEN 0 AND 100000000),
    currency      char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    sale_starts   timestamptz,
    sale_ends     timestamptz,
    max_per_order integer NOT NULL DEFAULT 8 CHECK (max_per_order BETWEEN 1 AND 100),
    sort          integer NOT NULL DEFAULT 0,
    created_at    timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (event_id, zone_id) REFERENCES inv_zones (event_id, id) ON DELETE CASCADE,
    CHECK (sale_starts IS NULL OR sale_ends IS NULL OR sale_ends > sale_starts)
);
CREATE UNIQUE INDEX inv_tiers_name_key ON inv_tiers (event_id, lower(name));

-- A hold: seats or GA units kept for one buyer until expires_at.
-- status: active -> sold | released | expired (each set once, conditionally).
CREATE TABLE inv_holds (
    id           uuid PRIMARY KEY,
    event_id     uuid NOT NULL, -- no foreign key: holds must not all key-share-lock the event row
    buyer_id     text NOT NULL,
    client_ip    text NOT NULL DEFAULT '',
    ip_counted   boolean NOT NULL DEFAULT false, -- whether the per-IP limit counted this hold
    channel      text NOT NULL CHECK (channel IN ('web', 'box_office', 'ticketmaster', 'eventbrite')),
    status       text NOT NULL CHECK (status IN ('active', 'sold', 'released', 'expired')),
    quantity     integer NOT NULL CHECK (quantity > 0),
    amount_minor bigint NOT NULL CHECK (amount_minor >= 0),
    currency     char(3) NOT NULL,
    expires_at   timestamptz NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    closed_at    timestamptz,
    CHECK ((status = 'active') = (closed_at IS NULL))
);
CREATE INDEX inv_holds_expiry_idx ON inv_holds (expires_at) WHERE status = 'active';
CREATE INDEX inv_holds_event_idx ON inv_holds (event_id, created_at);

-- What a hold contains: one line per seat, or one line per GA tier.
CREATE TABLE inv_hold_lines (
    hold_id          uuid NOT NULL REFERENCES inv_holds (id) ON DELETE CASCADE,
    line             integer NOT NULL,
    tier_id          uuid NOT NULL,
    zone_id          uuid NOT NULL,
    seat_id          text,
    quantity         integer NOT NULL CHECK (quantity > 0),
    unit_price_minor bigint NOT NULL CHECK (unit_price_minor >= 0),
    PRIMARY KEY (hold_id, line)
);

-- Which counter shards a hold took units from, so they go back where they came from.
CREATE TABLE inv_hold_allocs (
    hold_id    uuid NOT NULL REFERENCES inv_holds (id) ON DELETE CASCADE,
    counter_id uuid NOT NULL,
    shard      smallint NOT NULL,
    quantity   integer NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (hold_id, counter_id, shard)
);

-- Per-buyer and per-IP hold limits of an event, decided by conditional upserts.
CREATE TABLE inv_buyer_counters (
    event_id uuid NOT NULL,
    subject  text NOT NULL, -- 'b:<buyer>' or 'ip:<address>'
    holds    integer NOT NULL DEFAULT 0 CHECK (holds >= 0),
    units    integer NOT NULL DEFAULT 0 CHECK (units >= 0),
    PRIMARY KEY (event_id, subject)
);

-- status: pending -> paid -> refunded | cancelled; pending -> failed -> paid (a
-- later successful attempt) ; pending|failed -> refunded (paid too late, resold impossible).
CREATE TABLE inv_orders (
    id                uuid PRIMARY KEY,
    event_id          uuid NOT NULL,
    hold_id           uuid NOT NULL UNIQUE REFERENCES inv_holds (id),
    buyer_id          text NOT NULL,
    email             text NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    name              text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    amount_minor      bigint NOT NULL CHECK (amount_minor >= 0),
    currency          char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    status            text NOT NULL CHECK (status IN ('pending', 'paid', 'failed', 'refunded', 'cancelled')),
    payment_intent_id text UNIQUE,
    client_secret     text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    paid_at           timestamptz,
    closed_at         timestamptz,
    note              text NOT NULL DEFAULT ''
);
CREATE INDEX inv_orders_event_idx ON inv_orders (event_id, created_at);

-- Every Stripe event we acted on: the primary key makes processing happen once.
CREATE TABLE inv_stripe_events (
    id          text PRIMARY KEY,
    type        text NOT NULL,
    order_id    uuid,
    received_at timestamptz NOT NULL DEFAULT now()
);

-- Money sent back to a buyer; one refund per order.
CREATE TABLE inv_refunds (
    order_id         uuid PRIMARY KEY REFERENCES inv_orders (id),
    stripe_refund_id text,
    amount_minor     bigint NOT NULL CHECK (amount_minor >= 0),
    currency         char(3) NOT NULL,
    reason           text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE inv_tickets (
    id           uuid PRIMARY KEY,
    order_id     uuid NOT NULL REFERENCES inv_orders (id),
    event_id     uuid NOT NULL,
    zone_id      uuid NOT NULL,
    zone_name    text NOT NULL,
    tier_id      uuid NOT NULL,
    tier_name    text NOT NULL,
    seat_id      text,
    holder_name  text NOT NULL,
    holder_email text NOT NULL,
    status       text NOT NULL CHECK (status IN ('valid', 'void')),
    token        text NOT NULL,
    issued_at    timestamptz NOT NULL,
    voided_at    timestamptz
);
CREATE INDEX inv_tickets_order_idx ON inv_tickets (order_id);
-- A seat has at most one valid ticket, whatever happens above.
CREATE UNIQUE INDEX inv_tickets_seat_key ON inv_tickets (event_id, seat_id) WHERE status = 'valid' AND seat_id IS NOT NULL;

-- Mail to send (a mailer drains it); enough to tell buyers what happened.
CREATE TABLE inv_email_outbox (
    id         uuid PRIMARY KEY,
    order_id   uuid,
    to_email   text NOT NULL,
    subject    text NOT NULL,
    body       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    sent_at    timestamptz
);

-- The tenant's ticket-signing key pair; the private key encrypted at rest.
CREATE TABLE inv_signing_keys (
    id          smallint PRIMARY KEY CHECK (id = 1),
    public_key  bytea NOT NULL,
    private_enc bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- +goose StatementBegin
-- Channel quotas never add up to more than the event's capacity. The event
-- row is locked first, so two transactions changing quotas of one event
-- serialise, and the sum is read after the lock (a fresh snapshot per
-- statement in READ COMMITTED), never from a stale view.
CREATE FUNCTION inv_check_event_sums() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    ev uuid;
    cap integer;
    quotas bigint;
    zones bigint;
BEGIN
    ev := NEW.event_id;
    -- NO KEY UPDATE: serialises quota and zone changes of one event without
    -- blocking the key-share locks of holds and orders.
    SELECT capacity INTO cap FROM inv_events WHERE event_id = ev FOR NO KEY UPDATE;
    SELECT coalesce(sum(capacity), 0) INTO quotas FROM inv_counters WHERE event_id = ev AND kind = 'quota';
    IF quotas > cap THEN
        RAISE EXCEPTION 'channel quotas (%) exceed the event capacity (%)', quotas, cap
            USING ERRCODE = 'check_violation', CONSTRAINT = 'inv_quota_sum';
    END IF;
    SELECT coalesce(sum(capacity), 0) INTO zones FROM inv_zones WHERE event_id = ev;
    IF zones > cap THEN
        RAISE EXCEPTION 'zone capacities (%) exceed the event capacity (%)', zones, cap
            USING ERRCODE = 'check_violation', CONSTRAINT = 'inv_zone_sum';
    END IF;
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER inv_counters_sum AFTER INSERT OR UPDATE OF capacity ON inv_counters
    FOR EACH ROW EXECUTE FUNCTION inv_check_event_sums();
CREATE TRIGGER inv_zones_sum AFTER INSERT OR UPDATE OF capacity ON inv_zones
    FOR EACH ROW EXECUTE FUNCTION inv_check_event_sums();
CREATE TRIGGER inv_events_sum AFTER UPDATE OF capacity ON inv_events
    FOR EACH ROW EXECUTE FUNCTION inv_check_event_sums();

-- +goose StatementBegin
-- The shards of a counter add up to its capacity, checked at commit so a
-- redistribution may move units between shards in several statements.
CREATE FUNCTION inv_check_shard_sum() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    cid uuid;
    cap integer;
    total bigint;
BEGIN
    IF TG_TABLE_NAME = 'inv_counters' THEN
        cid := NEW.id;
    ELSE
        cid := NEW.counter_id;
    END IF;
    SELECT capacity INTO cap FROM inv_counters WHERE id = cid;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    SELECT coalesce(sum(capacity), 0) INTO total FROM inv_counter_shards WHERE counter_id = cid;
    IF total <> cap THEN
        RAISE EXCEPTION 'shards of counter % hold % units, not %', cid, total, cap
            USING ERRCODE = 'check_violation', CONSTRAINT = 'inv_shard_sum';
    END IF;
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

CREATE CONSTRAINT TRIGGER inv_shards_sum AFTER INSERT OR UPDATE OF capacity ON inv_counter_shards
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION inv_check_shard_sum();
CREATE CONSTRAINT TRIGGER inv_counters_shard_sum AFTER INSERT OR UPDATE OF capacity ON inv_counters
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION inv_check_shard_sum();

-- +goose Down
DROP TABLE inv_signing_keys;
DROP TABLE inv_email_outbox;
DROP TABLE inv_tickets;
DROP TABLE inv_refunds;
DROP TABLE inv_stripe_events;
DROP TABLE inv_orders;
DROP TABLE inv_buyer_counters;
DROP TABLE inv_hold_allocs;
DROP TABLE inv_hold_lines;
DROP TABLE inv_holds;
DROP TABLE inv_tiers;
DROP TABLE inv_counter_shards;
DROP TABLE inv_counters;
DROP TABLE inv_seats;
DROP TABLE inv_zones;
DROP TABLE inv_events;
DROP FUNCTION inv_check_shard_sum();
DROP FUNCTION inv_check_event_sums();
