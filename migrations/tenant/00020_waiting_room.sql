-- Virtual waiting rooms for hot on-sales, one per event at most.

-- +goose Up
CREATE TABLE waiting_rooms (
    event_id              uuid PRIMARY KEY,
    enabled               boolean NOT NULL DEFAULT false,
    opens_at              timestamptz,                 -- the room switches itself on from here; NULL: whenever enabled
    admit_per_second      int NOT NULL DEFAULT 50 CHECK (admit_per_second BETWEEN 1 AND 100000),
    max_active            int NOT NULL DEFAULT 2000 CHECK (max_active BETWEEN 1 AND 1000000),
    idle_timeout_seconds  int NOT NULL DEFAULT 300 CHECK (idle_timeout_seconds BETWEEN 10 AND 86400),
    access_ttl_seconds    int NOT NULL DEFAULT 900 CHECK (access_ttl_seconds BETWEEN 30 AND 86400),
    fallback_fraction     double precision NOT NULL DEFAULT 0.05 CHECK (fallback_fraction >= 0 AND fallback_fraction < 1),
    updated_at            timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE waiting_rooms;
