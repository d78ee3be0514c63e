-- Who ops mails: the chain's contacts for capacity alerts and incident
-- broadcasts, chain-wide (venue_id NULL) or for one venue's events. The
-- mail itself goes through the core's outbox (mail_outbox).

-- +goose Up
CREATE TABLE ops_contacts (
    id         uuid PRIMARY KEY,
    venue_id   uuid,
    email      text NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    name       text NOT NULL DEFAULT '' CHECK (length(name) <= 200),
    alerts     boolean NOT NULL DEFAULT true,
    incidents  boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now()
);
-- One row per address and scope.
CREATE UNIQUE INDEX ops_contacts_scope_email ON ops_contacts (coalesce(venue_id, '00000000-0000-0000-0000-000000000000'::uuid), email);

-- +goose Down
DROP TABLE ops_contacts;
