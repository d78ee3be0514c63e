-- After the sale (inventory's rooms transfer, waitlist and resale): a ticket
-- handed to someone else once, a waiting list per tier whose offers are real
-- holds, and a resale marketplace capped at what the ticket cost its buyer.
-- Expand only: the code before this release never reads these tables, and
-- the one added column has a default.

-- +goose Up

-- Whether the ticket may still be transferred: a ticket made by a transfer
-- may not (transfer once); a re-issue (key rotation) carries it over, a
-- resale gives the new buyer a transferable ticket.
ALTER TABLE inv_tickets ADD COLUMN transferable boolean NOT NULL DEFAULT true;

-- The history of transfers: who handed which ticket to whom. Each ticket
-- leaves by transfer at most once and each new ticket comes from one.
CREATE TABLE inv_ticket_transfers (
    id          uuid PRIMARY KEY,
    event_id    uuid NOT NULL,
    from_ticket uuid NOT NULL UNIQUE,
    to_ticket   uuid NOT NULL UNIQUE,
    from_name   text NOT NULL,
    from_email  text NOT NULL,
    to_name     text NOT NULL CHECK (length(to_name) BETWEEN 1 AND 200),
    to_email    text NOT NULL CHECK (length(to_email) BETWEEN 3 AND 254),
    by_staff    uuid,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX inv_ticket_transfers_event_idx ON inv_ticket_transfers (event_id, created_at);

-- A scan of a ticket listed for resale is answered 'listed' (not admitted).
ALTER TABLE inv_checkins DROP CONSTRAINT inv_checkins_result_check;
ALTER TABLE inv_checkins ADD CONSTRAINT inv_checkins_result_check CHECK (result IN ('admit', 'exited', 'already_admitted', 'not_inside',
    'wrong_zone', 'wrong_event', 'revoked', 'not_yet_valid', 'expired', 'listed'));

-- The chain's resale rules. No row: the defaults (a cap of 100% of what the
-- ticket cost, 15% commission, no first refusal); an unset cap is the
-- default, never "uncapped", and no chain may go above 120%.
CREATE TABLE inv_resale_settings (
    id             smallint PRIMARY KEY CHECK (id = 1),
    cap_percent    integer NOT NULL DEFAULT 100 CHECK (cap_percent BETWEEN 50 AND 120),
    commission_bps integer NOT NULL DEFAULT 1500 CHECK (commission_bps BETWEEN 0 AND 5000),
    waitlist_first boolean NOT NULL DEFAULT false,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- Tickets offered for resale. One open listing per ticket (the partial
-- unique index); its price never above the cap fixed when it was listed.
-- A buyer reserves it with a hold (held_until: column-only conditions, so
-- two buyers racing for it are decided by the row lock alone).
-- waitlist_until: the tier's waiting list has first refusal until then.
CREATE TABLE inv_resale_listings (
    id               uuid PRIMARY KEY,
    event_id         uuid NOT NULL,
    tier_id          uuid NOT NULL,
    ticket_id        uuid NOT NULL,
    seller_order_id  uuid NOT NULL,
    seller_name      text NOT NULL,
    seller_email     text NOT NULL,
    price_minor      bigint NOT NULL CHECK (price_minor > 0),
    cap_minor        bigint NOT NULL CHECK (cap_minor > 0),
    currency         char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    commission_bps   integer NOT NULL CHECK (commission_bps BETWEEN 0 AND 5000),
    status           text NOT NULL CHECK (status IN ('listed', 'sold', 'delisted')),
    hold_id          uuid,
    held_until       timestamptz,
    waitlist_until   timestamptz,
    buyer_order_id   uuid UNIQUE,
    new_ticket_id    uuid UNIQUE,
    payout_minor     bigint CHECK (payout_minor >= 0),
    commission_minor bigint CHECK (commission_minor >= 0),
    created_at       timestamptz NOT NULL DEFAULT now(),
    closed_at        timestamptz,
    CHECK (price_minor <= cap_minor),
    CHECK ((status = 'sold') = (buyer_order_id IS NOT NULL)),
    CHECK (status <> 'sold' OR payout_minor + commission_minor = price_minor)
);
CREATE UNIQUE INDEX inv_resale_listings_open_key ON inv_resale_listings (ticket_id) WHERE status = 'listed';
CREATE INDEX inv_resale_listings_event_idx ON inv_resale_listings (event_id, created_at) WHERE status = 'listed';

-- Which hold reserved which listing (a listing is reserved again after a
-- hold lapses): the payment of a hold named here buys that listing.
CREATE TABLE inv_resale_holds (
    hold_id    uuid PRIMARY KEY,
    listing_id uuid NOT NULL REFERENCES inv_resale_listings (id),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- An event's waiting-list rules: how long an offer is held for.
CREATE TABLE inv_waitlist_settings (
    event_id      uuid PRIMARY KEY,
    offer_minutes integer NOT NULL DEFAULT 30 CHECK (offer_minutes BETWEEN 5 AND 2880),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- One row per tier with a line: joins and offer runs lock it, so places
-- are numbered in commit order and one offer run at a time serves a tier.
CREATE TABLE inv_waitlist_tiers (
    tier_id  uuid PRIMARY KEY,
    event_id uuid NOT NULL,
    next_seq bigint NOT NULL DEFAULT 1 CHECK (next_seq >= 1)
);

-- The waiting list. seq is the place in the tier's line (strictly FIFO);
-- an offer is a real hold (hold_id) or a reserved resale listing.
CREATE TABLE inv_waitlist (
    id               uuid PRIMARY KEY,
    event_id         uuid NOT NULL,
    tier_id          uuid NOT NULL,
    seq              bigint NOT NULL,
    email            text NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    quantity         integer NOT NULL CHECK (quantity BETWEEN 1 AND 10),
    status           text NOT NULL CHECK (status IN ('waiting', 'offered', 'accepted', 'lapsed', 'left')),
    hold_id          uuid UNIQUE,
    listing_id       uuid,
    offered_at       timestamptz,
    offer_expires_at timestamptz,
    closed_at        timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tier_id, seq),
    CHECK (status NOT IN ('offered', 'accepted') OR hold_id IS NOT NULL)
);
CREATE UNIQUE INDEX inv_waitlist_email_key ON inv_waitlist (tier_id, lower(email)) WHERE status IN ('waiting', 'offered');
CREATE INDEX inv_waitlist_line_idx ON inv_waitlist (tier_id, seq) WHERE status = 'waiting';
CREATE INDEX inv_waitlist_open_idx ON inv_waitlist (event_id) WHERE status IN ('waiting', 'offered');

-- +goose Down
DROP TABLE inv_waitlist;
DROP TABLE inv_waitlist_tiers;
DROP TABLE inv_waitlist_settings;
DROP TABLE inv_resale_holds;
DROP TABLE inv_resale_listings;
DROP TABLE inv_resale_settings;
ALTER TABLE inv_checkins DROP CONSTRAINT inv_checkins_result_check;
ALTER TABLE inv_checkins ADD CONSTRAINT inv_checkins_result_check CHECK (result IN ('admit', 'exited', 'already_admitted', 'not_inside',
    'wrong_zone', 'wrong_event', 'revoked', 'not_yet_valid', 'expired'));
DROP TABLE inv_ticket_transfers;
ALTER TABLE inv_tickets DROP COLUMN transferable;
