-- Ticketmaster Discovery's 5,000 calls a day, counted apart from the
-- connector's other calls (day_calls counts them all): each Discovery call
-- reserves one first, in one conditional UPDATE, and none is made past it.

-- +goose Up
ALTER TABLE int_connectors ADD COLUMN discovery_day date,
    ADD COLUMN discovery_calls integer NOT NULL DEFAULT 0 CHECK (discovery_calls >= 0);

-- +goose Down
ALTER TABLE int_connectors DROP COLUMN discovery_day, DROP COLUMN discovery_calls;
