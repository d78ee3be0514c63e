-- Tickets at the door (inventory's door room, modules/inventory/internal/door):
-- per-event signing keys for v2 ticket tokens, the revocation list scanners
-- sync by delta, the check-in log (entries and exits) and its per-ticket fold.
-- Everything here is new (expand only): the code before this release never
-- reads these tables, and v1 tokens keep verifying with inv_signing_keys.

-- +goose Up

-- An event's Ed25519 key pairs, numbered per event (the key id inside a v2
-- token). The highest kid signs new tickets; older ones keep verifying the
-- tickets they signed until those are re-issued. The private key is sealed
-- (AES-256-GCM) under a key derived from the platform secret and the tenant.
CREATE TABLE inv_ticket_keys (
    event_id    uuid NOT NULL,
    kid         integer NOT NULL CHECK (kid BETWEEN 1 AND 65535),
    public_key  bytea NOT NULL CHECK (length(public_key) = 32),
    private_enc bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id, kid)
);

-- Which key signed a ticket (NULL: a v1 token under the tenant's key), and
-- the chain of re-issues: a re-issued ticket is voided and points to its
-- successor, which points back.
ALTER TABLE inv_tickets
    ADD COLUMN key_id      integer,
    ADD COLUMN replaces    uuid,
    ADD COLUMN replaced_by uuid;
CREATE UNIQUE INDEX inv_tickets_replaces_key ON inv_tickets (replaces) WHERE replaces IS NOT NULL;
-- Sold per zone (attendance) and tickets per signing key (rotation).
CREATE INDEX inv_tickets_event_zone_idx ON inv_tickets (event_id, zone_id) WHERE status = 'valid';

-- An event's door settings and its revocation counter. The counter row is
-- locked by every revocation until it commits, so revocation sequence
-- numbers are gapless and commit in order: a scanner that read up to seq N
-- never misses a later-committing N-1.
CREATE TABLE inv_door_events (
    event_id        uuid PRIMARY KEY,
    reentry         boolean NOT NULL DEFAULT false,
    valid_from      timestamptz,
    valid_until     timestamptz,
    revocation_seq  bigint NOT NULL DEFAULT 0 CHECK (revocation_seq >= 0),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (valid_from IS NULL OR valid_until IS NULL OR valid_from < valid_until)
);

-- Gates that admit only some zones (a gate not listed admits every zone).
CREATE TABLE inv_door_gates (
    event_id uuid NOT NULL,
    name     text NOT NULL CHECK (length(name) BETWEEN 1 AND 40),
    zone_ids uuid[] NOT NULL,
    PRIMARY KEY (event_id, name)
);

-- Tokens scanners must refuse: every ticket that stopped being valid
-- (re-issued, refunded, cancelled), in commit order per event.
CREATE TABLE inv_ticket_revocations (
    event_id   uuid NOT NULL,
    seq        bigint NOT NULL CHECK (seq > 0),
    ticket_id  uuid NOT NULL,
    reason     text NOT NULL CHECK (reason IN ('reissued', 'voided')),
    revoked_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id, seq)
);

-- +goose StatementBegin
-- A ticket leaving 'valid' goes on its event's revocation list in the same
-- transaction, whatever made it leave (re-issue, refund, cancellation): no
-- code path can void a ticket and forget to tell the scanners.
CREATE FUNCTION inv_revoke_ticket() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    s bigint;
BEGIN
    INSERT INTO inv_door_events AS d (event_id, revocation_seq) VALUES (NEW.event_id, 1)
    ON CONFLICT (event_id) DO UPDATE SET revocation_seq = d.revocation_seq + 1
    RETURNING d.revocation_seq INTO s;
    INSERT INTO inv_ticket_revocations (event_id, seq, ticket_id, reason)
    VALUES (NEW.event_id, s, NEW.id, CASE WHEN NEW.replaced_by IS NULL THEN 'voided' ELSE 'reissued' END);
    RETURN NULL;
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER inv_tickets_revoke AFTER UPDATE OF status ON inv_tickets
    FOR EACH ROW WHEN (OLD.status = 'valid' AND NEW.status <> 'valid') EXECUTE FUNCTION inv_revoke_ticket();

-- The entry/exit log: every scan of a token whose signature verified, with
-- the device's time (scanned_at) and the server's (received_at). A client's
-- nonce is unique per ticket, so a retried scan finds its first answer.
CREATE TABLE inv_checkins (
    id          uuid PRIMARY KEY,
    event_id    uuid NOT NULL,
    ticket_id   uuid NOT NULL,
    zone_id     uuid NOT NULL,
    type        text NOT NULL CHECK (type IN ('entry', 'exit')),
    result      text NOT NULL CHECK (result IN ('admit', 'exited', 'already_admitted', 'not_inside', 'wrong_zone', 'wrong_event',
                                               'revoked', 'not_yet_valid', 'expired')),
    successful  boolean NOT NULL,
    gate        text NOT NULL CHECK (length(gate) BETWEEN 1 AND 40),
    device_id   text NOT NULL CHECK (length(device_id) BETWEEN 1 AND 64),
    nonce       text NOT NULL CHECK (length(nonce) BETWEEN 1 AND 64),
    forced      boolean NOT NULL DEFAULT false,
    scanned_by  uuid,
    scanned_at  timestamptz NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    annulled_at timestamptz,
    CHECK (successful = (result IN ('admit', 'exited'))),
    CHECK (annulled_at IS NULL OR successful),
    UNIQUE (event_id, ticket_id, nonce)
);
CREATE INDEX inv_checkins_event_idx ON inv_checkins (event_id, received_at);

-- The log folded per ticket, written by the same statement as each
-- successful log row: is the holder inside, how many entries and exits
-- count (annulled ones do not), which scan admitted them first. The CHECK
-- is the rule "inside = entries - exits" for one ticket.
CREATE TABLE inv_door_state (
    ticket_id     uuid PRIMARY KEY,
    event_id      uuid NOT NULL,
    zone_id       uuid NOT NULL,
    inside        boolean NOT NULL,
    entries       integer NOT NULL CHECK (entries >= 0),
    exits         integer NOT NULL CHECK (exits >= 0),
    first_checkin uuid,
    last_checkin  uuid,
    last_at       timestamptz NOT NULL,
    CHECK (entries - exits IN (0, 1) AND inside = (entries - exits = 1)),
    CHECK ((entries = 0) = (first_checkin IS NULL))
);
CREATE INDEX inv_door_state_zone_idx ON inv_door_state (event_id, zone_id);

-- +goose Down
DROP TABLE inv_door_state;
DROP TABLE inv_checkins;
DROP TRIGGER inv_tickets_revoke ON inv_tickets;
DROP FUNCTION inv_revoke_ticket();
DROP TABLE inv_ticket_revocations;
DROP TABLE inv_door_gates;
DROP TABLE inv_door_events;
DROP INDEX inv_tickets_event_zone_idx;
DROP INDEX inv_tickets_replaces_key;
ALTER TABLE inv_tickets DROP COLUMN key_id, DROP COLUMN replaces, DROP COLUMN replaced_by;
DROP TABLE inv_ticket_keys;
