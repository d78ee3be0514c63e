-- Calendar: venues, stages, events, their occupancy and tentative holds.
-- Runs with search_path "<tenant schema>, public"; btree_gist lives in public
-- (created once by the control migration), so nothing here creates extensions.

-- +goose Up
CREATE TABLE venues (
    id         uuid PRIMARY KEY,
    name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    address    text NOT NULL DEFAULT '' CHECK (length(address) <= 500),
    timezone   text NOT NULL CHECK (length(timezone) BETWEEN 1 AND 64),
    latitude   double precision CHECK (latitude BETWEEN -90 AND 90),
    longitude  double precision CHECK (longitude BETWEEN -180 AND 180),
    capacity   integer NOT NULL CHECK (capacity BETWEEN 1 AND 1000000),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK ((latitude IS NULL) = (longitude IS NULL))
);

CREATE TABLE stages (
    id         uuid PRIMARY KEY,
    venue_id   uuid NOT NULL REFERENCES venues (id) ON DELETE CASCADE,
    name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    capacity   integer NOT NULL CHECK (capacity BETWEEN 0 AND 1000000),
    kind       text NOT NULL CHECK (kind ~ '^[a-z][a-z0-9_]{1,39}$'),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (venue_id, id)
);
CREATE UNIQUE INDEX stages_venue_name_key ON stages (venue_id, lower(name));

-- An event is on one stage, or (exclusive) on the whole venue. Its occupied
-- window is [starts_at - setup, ends_at + teardown).
CREATE TABLE events (
    id               uuid PRIMARY KEY,
    venue_id         uuid NOT NULL REFERENCES venues (id),
    stage_id         uuid,
    exclusive        boolean NOT NULL,
    title            text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    category         text NOT NULL CHECK (category ~ '^[a-z][a-z0-9_]{1,39}$'),
    status           text NOT NULL CHECK (status IN ('draft', 'confirmed', 'on_sale', 'sold_out', 'completed', 'cancelled')),
    promoter_id      uuid REFERENCES users (id),
    starts_at        timestamptz NOT NULL,
    ends_at          timestamptz NOT NULL,
    setup_minutes    integer NOT NULL CHECK (setup_minutes BETWEEN 0 AND 1440),
    teardown_minutes integer NOT NULL CHECK (teardown_minutes BETWEEN 0 AND 1440),
    occupied         tstzrange NOT NULL,
    version          integer NOT NULL DEFAULT 1 CHECK (version > 0),
    hold_id          uuid UNIQUE,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT events_stage_fkey FOREIGN KEY (venue_id, stage_id) REFERENCES stages (venue_id, id),
    CHECK (ends_at > starts_at),
    CHECK (exclusive = (stage_id IS NULL)),
    CHECK (occupied = tstzrange(starts_at - make_interval(mins => setup_minutes),
                                ends_at + make_interval(mins => teardown_minutes), '[)'))
);
CREATE INDEX events_venue_start_idx ON events (venue_id, starts_at, id);
CREATE INDEX events_occupied_idx ON events USING gist (venue_id, occupied);

-- What decides conflicts: one row per placement of every event that is not
-- cancelled. PostgreSQL refuses any two rows that
--   * share a stage and overlap,
--   * overlap at one venue where exactly one of them is exclusive,
--   * overlap at one venue where both are exclusive.
-- An exclusive event therefore takes every stage of its venue, including
-- stages created after it, without a row per stage. Rows of the same event
-- never conflict with each other, so a move inserts the new placement before
-- deleting the old one (both in one transaction).
CREATE TABLE occupancy (
    event_id  uuid NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    version   integer NOT NULL,
    venue_id  uuid NOT NULL,
    stage_id  uuid,
    exclusive boolean NOT NULL,
    occupied  tstzrange NOT NULL CHECK (NOT isempty(occupied) AND lower_inc(occupied) AND NOT upper_inc(occupied)),
    PRIMARY KEY (event_id, version),
    CHECK (exclusive = (stage_id IS NULL)),
    CONSTRAINT occupancy_stage_overlap
        EXCLUDE USING gist (stage_id WITH =, occupied WITH &&, event_id WITH <>),
    CONSTRAINT occupancy_exclusive_vs_stage
        EXCLUDE USING gist (venue_id WITH =, occupied WITH &&, exclusive WITH <>, event_id WITH <>),
    CONSTRAINT occupancy_exclusive_overlap
        EXCLUDE USING gist (venue_id WITH =, occupied WITH &&, event_id WITH <>) WHERE (exclusive)
);

-- Tentative holds on a stage. They may overlap; their rank (1st, 2nd, ...) is
-- their arrival order among the live holds overlapping them on that stage,
-- computed when read, so it moves up as holds ahead are released or confirmed.
CREATE TABLE holds (
    id               uuid PRIMARY KEY,
    venue_id         uuid NOT NULL REFERENCES venues (id),
    stage_id         uuid NOT NULL,
    title            text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    category         text NOT NULL CHECK (category ~ '^[a-z][a-z0-9_]{1,39}$'),
    promoter_id      uuid REFERENCES users (id),
    starts_at        timestamptz NOT NULL,
    ends_at          timestamptz NOT NULL,
    setup_minutes    integer NOT NULL CHECK (setup_minutes BETWEEN 0 AND 1440),
    teardown_minutes integer NOT NULL CHECK (teardown_minutes BETWEEN 0 AND 1440),
    occupied         tstzrange NOT NULL,
    arrival          bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    status           text NOT NULL CHECK (status IN ('active', 'released', 'confirmed', 'expired')),
    expires_at       timestamptz,
    event_id         uuid REFERENCES events (id),
    created_at       timestamptz NOT NULL DEFAULT now(),
    closed_at        timestamptz,
    CONSTRAINT holds_stage_fkey FOREIGN KEY (venue_id, stage_id) REFERENCES stages (venue_id, id),
    CHECK (ends_at > starts_at),
    CHECK ((status = 'confirmed') = (event_id IS NOT NULL)),
    CHECK ((status = 'active') = (closed_at IS NULL)),
    CHECK (occupied = tstzrange(starts_at - make_interval(mins => setup_minutes),
                                ends_at + make_interval(mins => teardown_minutes), '[)'))
);
CREATE INDEX holds_active_idx ON holds USING gist (stage_id, occupied) WHERE status = 'active';
CREATE INDEX holds_venue_idx ON holds USING gist (venue_id, occupied);
CREATE INDEX holds_expiry_idx ON holds (expires_at) WHERE status = 'active' AND expires_at IS NOT NULL;

-- Responses of POSTs sent with an Idempotency-Key, per principal.
CREATE TABLE calendar_idempotency (
    principal    text NOT NULL,
    key          text NOT NULL CHECK (length(key) BETWEEN 1 AND 200),
    request_hash bytea NOT NULL,
    status       integer NOT NULL DEFAULT 0,
    body         jsonb,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (principal, key)
);
CREATE INDEX calendar_idempotency_created_idx ON calendar_idempotency (created_at);

-- +goose Down
DROP TABLE calendar_idempotency;
DROP TABLE holds;
DROP TABLE occupancy;
DROP TABLE events;
DROP TABLE stages;
DROP TABLE venues;
