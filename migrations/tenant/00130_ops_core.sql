-- Ops: the live show-night dashboard. Zones with their licensed capacity and
-- alert thresholds, occupancy readings (turnstile counters and manual
-- counts; door scans are read from the door's attendance contract, never
-- copied), per-minute occupancy history for compliance, capacity alerts with
-- their outbox, POS connectors and the sales and refunds they report, revenue
-- rollups, and incidents with an append-only timeline.
--
-- Correctness lives here: a turnstile reading is stored once per (zone,
-- source, direction, at) so a redelivered delta is not counted twice; an alert fires once
-- per crossing because crossing is a conditional UPDATE of ops_alert_state
-- (only the evaluator that flips "above" wins) and ops_alerts is unique per
-- crossing; a POS event_id is stored once per connector, so a redelivery
-- changes nothing; a payment or refund is applied only when its version is
-- newer than the stored one; the incident timeline refuses UPDATE and DELETE.

-- +goose Up
CREATE TABLE ops_zones (
    id              uuid PRIMARY KEY,
    event_id        uuid NOT NULL,
    venue_id        uuid NOT NULL,
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 80),
    -- the door's zone whose attendance counts for this one ('' = none)
    door_zone       text NOT NULL DEFAULT '' CHECK (length(door_zone) <= 80),
    capacity        integer NOT NULL CHECK (capacity BETWEEN 1 AND 1000000),
    -- percentages of capacity that raise an alert when reached
    alert_percents  integer[] NOT NULL DEFAULT '{90,100}'
        CHECK (cardinality(alert_percents) BETWEEN 1 AND 5 AND 1 <= ALL (alert_percents) AND 200 >= ALL (alert_percents)),
    -- which source the dashboard trusts: auto picks the freshest by preference
    source          text NOT NULL DEFAULT 'auto' CHECK (source IN ('auto', 'door', 'turnstile', 'manual')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (event_id, name)
);

-- One row per reading. A turnstile counter sends either its cumulative count
-- (which may reset to zero) or a delta; a manual reading is a head count.
CREATE TABLE ops_readings (
    id          bigserial PRIMARY KEY,
    zone_id     uuid NOT NULL REFERENCES ops_zones (id),
    source      text NOT NULL CHECK (source ~ '^(manual|turnstile:[A-Za-z0-9._-]{1,64})$'),
    -- in: the counter counts people entering; out: people leaving
    direction   text NOT NULL DEFAULT 'in' CHECK (direction IN ('in', 'out')),
    count       integer CHECK (count BETWEEN 0 AND 1000000),
    delta       integer CHECK (delta BETWEEN -100000 AND 100000),
    at          timestamptz NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    actor_id    uuid,
    CHECK ((count IS NULL) <> (delta IS NULL)),
    CHECK (source <> 'manual' OR (count IS NOT NULL AND direction = 'in')),
    -- a counter never reports twice for one instant: a redelivery is a duplicate
    UNIQUE (zone_id, source, direction, at)
);

-- Per minute per zone, for compliance reports: the last and the highest
-- trusted occupancy seen in the minute. Append-mostly and read by time range,
-- so a BRIN index on the minute keeps it small at any size.
CREATE TABLE ops_occupancy_minutes (
    zone_id   uuid NOT NULL REFERENCES ops_zones (id),
    event_id  uuid NOT NULL,
    minute    timestamptz NOT NULL,
    inside    integer NOT NULL,
    peak      integer NOT NULL,
    capacity  integer NOT NULL,
    source    text NOT NULL,
    PRIMARY KEY (zone_id, minute)
);
CREATE INDEX ops_occupancy_minutes_minute_brin ON ops_occupancy_minutes USING brin (minute);
CREATE INDEX ops_occupancy_minutes_event ON ops_occupancy_minutes (event_id, minute);

CREATE TABLE ops_alert_state (
    zone_id   uuid NOT NULL REFERENCES ops_zones (id),
    percent   integer NOT NULL,
    above     boolean NOT NULL DEFAULT false,
    crossings integer NOT NULL DEFAULT 0,
    PRIMARY KEY (zone_id, percent)
);

CREATE TABLE ops_alerts (
    id        uuid PRIMARY KEY,
    event_id  uuid NOT NULL,
    zone_id   uuid NOT NULL REFERENCES ops_zones (id),
    percent   integer NOT NULL,
    crossing  integer NOT NULL,
    inside    integer NOT NULL,
    capacity  integer NOT NULL,
    source    text NOT NULL,
    raised_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (zone_id, percent, crossing)
);
CREATE INDEX ops_alerts_event ON ops_alerts (event_id, raised_at);

-- What other systems are told (SMS, pager): written in the transaction of the
-- fact, delivered by a relay later.
CREATE TABLE ops_outbox (
    id           bigserial PRIMARY KEY,
    topic        text NOT NULL,
    payload      jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    delivered_at timestamptz
);
CREATE INDEX ops_outbox_pending ON ops_outbox (id) WHERE delivered_at IS NULL;

CREATE TABLE ops_pos_connectors (
    id               uuid PRIMARY KEY,
    name             text NOT NULL CHECK (length(name) BETWEEN 1 AND 120),
    provider         text NOT NULL CHECK (provider IN ('square')),
    merchant_id      text NOT NULL CHECK (length(merchant_id) BETWEEN 1 AND 120),
    -- the URL the provider signs with the body, byte for byte as subscribed
    notification_url text NOT NULL CHECK (length(notification_url) BETWEEN 1 AND 500),
    -- the signature key, AES-GCM sealed under a key derived from the
    -- deployment secret (nonce || ciphertext), never returned by the API
    key_sealed       bytea NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE ops_pos_locations (
    connector_id uuid NOT NULL REFERENCES ops_pos_connectors (id),
    location_id  text NOT NULL CHECK (length(location_id) BETWEEN 1 AND 120),
    venue_id     uuid NOT NULL,
    stand        text NOT NULL CHECK (length(stand) BETWEEN 1 AND 80),
    category     text NOT NULL CHECK (category IN ('bar', 'merch', 'food', 'other')),
    PRIMARY KEY (connector_id, location_id)
);

-- Every delivery once: the provider's event_id is the idempotency key.
CREATE TABLE ops_pos_events (
    connector_id uuid NOT NULL REFERENCES ops_pos_connectors (id),
    event_id     text NOT NULL CHECK (length(event_id) BETWEEN 1 AND 200),
    type         text NOT NULL,
    outcome      text NOT NULL DEFAULT '',
    received_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (connector_id, event_id)
);

-- Payments and refunds as last seen, by object version. counted_minor is what
-- the ledger holds for the object: a new version appends the difference.
CREATE TABLE ops_pos_objects (
    connector_id  uuid NOT NULL REFERENCES ops_pos_connectors (id),
    kind          text NOT NULL CHECK (kind IN ('payment', 'refund')),
    object_id     text NOT NULL CHECK (length(object_id) BETWEEN 1 AND 200),
    version       bigint NOT NULL,
    status        text NOT NULL,
    amount_minor  bigint NOT NULL,
    counted_minor bigint NOT NULL DEFAULT 0,
    currency      text NOT NULL,
    location_id   text NOT NULL DEFAULT '',
    order_id      text NOT NULL DEFAULT '',
    venue_id      uuid,
    event_id      uuid,
    stand         text NOT NULL DEFAULT '',
    category      text NOT NULL DEFAULT 'other',
    occurred_at   timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (connector_id, kind, object_id)
);
CREATE INDEX ops_pos_objects_event ON ops_pos_objects (event_id) WHERE event_id IS NOT NULL;

-- Revenue per event, category, stand and currency, rewritten whole by each
-- rollup (so a rollup run twice writes the same rows); the totals the
-- booking settlement and finance read.
CREATE TABLE ops_revenue_totals (
    event_id      uuid NOT NULL,
    category      text NOT NULL,
    stand         text NOT NULL,
    currency      text NOT NULL,
    sales_minor   bigint NOT NULL,
    refunds_minor bigint NOT NULL,
    net_minor     bigint NOT NULL,
    payments      integer NOT NULL,
    rolled_up_at  timestamptz NOT NULL,
    PRIMARY KEY (event_id, category, stand, currency)
);

CREATE TABLE ops_incidents (
    id              uuid PRIMARY KEY,
    event_id        uuid NOT NULL,
    venue_id        uuid NOT NULL,
    category        text NOT NULL CHECK (category IN ('medical', 'security', 'crowd', 'fire', 'facilities', 'guest_services', 'other')),
    severity        text NOT NULL CHECK (severity IN ('low', 'medium', 'high', 'critical')),
    zone            text NOT NULL DEFAULT '' CHECK (length(zone) <= 80),
    location        text NOT NULL DEFAULT '' CHECK (length(location) <= 200),
    description     text NOT NULL CHECK (length(description) BETWEEN 1 AND 4000),
    confidential    boolean NOT NULL DEFAULT false,
    status          text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'acknowledged', 'resolved')),
    reporter_id     uuid,
    assignee_id     uuid,
    reported_at     timestamptz NOT NULL,
    acknowledged_at timestamptz,
    resolved_at     timestamptz
);
CREATE INDEX ops_incidents_event ON ops_incidents (event_id, reported_at DESC);

CREATE TABLE ops_incident_timeline (
    id          bigserial PRIMARY KEY,
    incident_id uuid NOT NULL REFERENCES ops_incidents (id),
    at          timestamptz NOT NULL,
    actor_id    uuid,
    kind        text NOT NULL CHECK (kind IN ('reported', 'acknowledged', 'assigned', 'note', 'resolved')),
    body        text NOT NULL DEFAULT '' CHECK (length(body) <= 4000)
);
CREATE INDEX ops_incident_timeline_incident ON ops_incident_timeline (incident_id, id);

-- +goose StatementBegin
CREATE FUNCTION ops_timeline_reject_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ops_incident_timeline is append-only: % rejected', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER ops_incident_timeline_no_update BEFORE UPDATE OR DELETE ON ops_incident_timeline
    FOR EACH ROW EXECUTE FUNCTION ops_timeline_reject_change();
CREATE TRIGGER ops_incident_timeline_no_truncate BEFORE TRUNCATE ON ops_incident_timeline
    FOR EACH STATEMENT EXECUTE FUNCTION ops_timeline_reject_change();

-- +goose Down
DROP TABLE ops_incident_timeline;
DROP FUNCTION ops_timeline_reject_change();
DROP TABLE ops_incidents;
DROP TABLE ops_revenue_totals;
DROP TABLE ops_pos_objects;
DROP TABLE ops_pos_events;
DROP TABLE ops_pos_locations;
DROP TABLE ops_pos_connectors;
DROP TABLE ops_outbox;
DROP TABLE ops_alerts;
DROP TABLE ops_alert_state;
DROP TABLE ops_occupancy_minutes;
DROP TABLE ops_readings;
DROP TABLE ops_zones;
