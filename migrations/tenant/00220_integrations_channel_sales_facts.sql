-- +goose Up
-- Units sold on outside channels, at the channel's price, for what a
-- settlement reads (inventory's TicketFacts): channel sales go straight
-- into the counters' sold with no inventory order or ticket, so without
-- these rows they were not counted. Append-only: a sale adds its units, a
-- return the same units negated at the sale's price; SalesByTier sums them.
CREATE TABLE inv_channel_sales (
    id          bigserial PRIMARY KEY,
    event_id    uuid NOT NULL,
    tier_id     uuid NOT NULL REFERENCES inv_tiers (id) ON DELETE CASCADE,
    channel     text NOT NULL CHECK (channel IN ('ticketmaster', 'eventbrite')),
    quantity    integer NOT NULL CHECK (quantity <> 0),
    price_minor bigint NOT NULL CHECK (price_minor BETWEEN 0 AND 100000000),
    currency    char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX inv_channel_sales_event ON inv_channel_sales (event_id, tier_id);

-- The price an outside order sold at, so its refund returns the same.
ALTER TABLE int_orders ADD COLUMN price_minor bigint, ADD COLUMN currency char(3);

-- Channel sales recorded before this table: at the tier's price.
INSERT INTO inv_channel_sales (event_id, tier_id, channel, quantity, price_minor, currency, at)
SELECT o.event_id, o.tier_id, l.channel, o.quantity, t.price_minor, t.currency, o.received_at
FROM int_orders o JOIN int_listings l ON l.id = o.listing_id JOIN inv_tiers t ON t.id = o.tier_id
WHERE o.status = 'sold';

-- Tier prices and sale windows pushed to each listing's ticket types:
-- what the channel was last told, so a change is pushed once.
CREATE TABLE int_offer_pushes (
    listing_id    uuid NOT NULL REFERENCES int_listings (id) ON DELETE CASCADE,
    external_type text NOT NULL,
    tier_id       uuid NOT NULL,
    price_minor   bigint NOT NULL,
    currency      char(3) NOT NULL,
    sale_starts   timestamptz,
    sale_ends     timestamptz,
    state         text NOT NULL CHECK (state IN ('pending', 'waiting', 'pushed', 'failed')),
    error         text,
    attempts      integer NOT NULL DEFAULT 0,
    pushed_at     timestamptz,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (listing_id, external_type)
);

-- Ticketmaster's Inventory Status API answer per listing (the cheap pre-check).
ALTER TABLE int_listings ADD COLUMN their_inventory_status text, ADD COLUMN their_inventory_status_at timestamptz;

-- +goose Down
ALTER TABLE int_listings DROP COLUMN their_inventory_status, DROP COLUMN their_inventory_status_at;
DROP TABLE int_offer_pushes;
ALTER TABLE int_orders DROP COLUMN price_minor, DROP COLUMN currency;
DROP TABLE inv_channel_sales;
