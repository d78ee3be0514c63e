-- Booking: artist agents and their artists, offers (bookings) as a state
-- machine, their terms as immutable numbered versions, and every action
-- taken on them (who, when, from where).

-- +goose Up
CREATE TABLE bkg_agents (
    id         uuid PRIMARY KEY,
    name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    email      text NOT NULL CHECK (length(email) BETWEEN 3 AND 320),
    agency     text NOT NULL DEFAULT '' CHECK (length(agency) <= 200),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX bkg_agents_email_key ON bkg_agents (lower(email));

CREATE TABLE bkg_artists (
    id         uuid PRIMARY KEY,
    name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    agent_id   uuid NOT NULL REFERENCES bkg_agents (id),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX bkg_artists_agent_idx ON bkg_artists (agent_id);

-- An offer to an artist, for a calendar hold, an event, or no date yet (a
-- "mutually agreeable date"). version counts every change of the row (the
-- optimistic check); current_n is the newest frozen terms version, 0 while
-- a draft; awaiting says whose answer an open offer waits for.
CREATE TABLE bkg_bookings (
    id          uuid PRIMARY KEY,
    artist_id   uuid NOT NULL REFERENCES bkg_artists (id),
    title       text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    hold_id     uuid,
    venue_id    uuid,
    event_id    uuid,
    state       text NOT NULL CHECK (state IN ('draft', 'offer_sent', 'counter_offer', 'accepted', 'contracted',
                                                'declined', 'cancelled', 'expired')),
    awaiting    text CHECK (awaiting IN ('artist', 'promoter')),
    version     integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    current_n   integer NOT NULL DEFAULT 0 CHECK (current_n >= 0),
    accepted_n  integer CHECK (accepted_n >= 1 AND accepted_n <= current_n),
    deadline    timestamptz,
    draft_terms jsonb NOT NULL,
    actuals     jsonb NOT NULL DEFAULT '{}',
    reason      text NOT NULL DEFAULT '' CHECK (length(reason) <= 1000),
    created_by  uuid,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CHECK ((state IN ('offer_sent', 'counter_offer')) = (awaiting IS NOT NULL)),
    CHECK ((state IN ('accepted', 'contracted')) = (accepted_n IS NOT NULL))
);
CREATE INDEX bkg_bookings_state_idx ON bkg_bookings (state, id DESC);
CREATE INDEX bkg_bookings_artist_idx ON bkg_bookings (artist_id, id DESC);
-- The expiry sweeper's scan: open offers by deadline.
CREATE INDEX bkg_bookings_open_deadline_idx ON bkg_bookings (deadline) WHERE state IN ('offer_sent', 'counter_offer');

-- Terms frozen on every send and counter: never changed, never deleted.
CREATE TABLE bkg_versions (
    booking_id  uuid NOT NULL REFERENCES bkg_bookings (id),
    n           integer NOT NULL CHECK (n >= 1),
    terms       jsonb NOT NULL,
    party       text NOT NULL CHECK (party IN ('artist', 'promoter')),
    author      text NOT NULL CHECK (length(author) <= 320),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (booking_id, n)
);

-- +goose StatementBegin
CREATE FUNCTION bkg_versions_reject_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'bkg_versions are immutable: % rejected', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER bkg_versions_no_change BEFORE UPDATE OR DELETE ON bkg_versions
    FOR EACH ROW EXECUTE FUNCTION bkg_versions_reject_change();

-- Every action on a booking, by staff, an agent or the system.
CREATE TABLE bkg_history (
    id          bigserial PRIMARY KEY,
    booking_id  uuid NOT NULL REFERENCES bkg_bookings (id),
    at          timestamptz NOT NULL DEFAULT now(),
    actor_kind  text NOT NULL CHECK (actor_kind IN ('staff', 'agent', 'system')),
    actor_id    text NOT NULL DEFAULT '',
    actor_name  text NOT NULL DEFAULT '' CHECK (length(actor_name) <= 320),
    ip          text NOT NULL DEFAULT '',
    action      text NOT NULL,
    from_state  text NOT NULL DEFAULT '',
    to_state    text NOT NULL DEFAULT '',
    terms_n     integer,
    note        text NOT NULL DEFAULT '' CHECK (length(note) <= 1000)
);
CREATE INDEX bkg_history_booking_idx ON bkg_history (booking_id, id);

-- +goose Down
DROP TABLE bkg_history;
DROP TABLE bkg_versions;
DROP FUNCTION bkg_versions_reject_change();
DROP TABLE bkg_bookings;
DROP TABLE bkg_artists;
DROP TABLE bkg_agents;
