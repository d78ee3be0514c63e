-- Partial refunds on Eventbrite: an attendee refunded or cancelled while
-- the rest of its order stays placed gives its units back once. One row
-- per attendee (the key makes replays and racing deliveries return once);
-- units_returned is 0 when nothing of ours was sold for it (refunded
-- before the order reached us: the order then sells only the others).
-- int_orders.returned_quantity is what of a sold order line went back
-- that way, so a later full refund returns only the rest.

-- +goose Up
ALTER TABLE int_orders ADD COLUMN returned_quantity integer NOT NULL DEFAULT 0,
    ADD CONSTRAINT int_orders_returned_quantity CHECK (returned_quantity BETWEEN 0 AND quantity);

CREATE TABLE int_attendee_returns (
    connector_id      uuid NOT NULL REFERENCES int_connectors (id) ON DELETE CASCADE,
    external_order_id text NOT NULL,
    attendee_id       text NOT NULL,
    listing_id        uuid NOT NULL REFERENCES int_listings (id) ON DELETE CASCADE,
    tier_id           uuid NOT NULL,
    quantity          integer NOT NULL CHECK (quantity > 0),
    units_returned    integer NOT NULL CHECK (units_returned BETWEEN 0 AND quantity),
    reason            text NOT NULL CHECK (reason IN ('refunded', 'cancelled')),
    at                timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (connector_id, external_order_id, attendee_id)
);

-- +goose Down
DROP TABLE int_attendee_returns;
ALTER TABLE int_orders DROP CONSTRAINT int_orders_returned_quantity, DROP COLUMN returned_quantity;
