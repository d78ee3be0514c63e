-- Refunds of some tickets of an order (the rest stay valid). Each partial
-- refund is one Stripe refund (idempotency key refund-part-<id>); a ticket
-- is refunded at most once, whatever races (the primary key of
-- inv_refunded_tickets is the backstop under the order-row lock).

-- +goose Up
CREATE TABLE inv_partial_refunds (
    id               uuid PRIMARY KEY,
    order_id         uuid NOT NULL REFERENCES inv_orders (id),
    amount_minor     bigint NOT NULL CHECK (amount_minor >= 0),
    currency         char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    reason           text NOT NULL,
    stripe_refund_id text,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX inv_partial_refunds_order_idx ON inv_partial_refunds (order_id);
CREATE INDEX inv_partial_refunds_unsent_idx ON inv_partial_refunds (created_at) WHERE stripe_refund_id IS NULL;

CREATE TABLE inv_refunded_tickets (
    ticket_id    uuid PRIMARY KEY REFERENCES inv_tickets (id),
    refund_id    uuid NOT NULL REFERENCES inv_partial_refunds (id),
    amount_minor bigint NOT NULL CHECK (amount_minor >= 0)
);
CREATE INDEX inv_refunded_tickets_refund_idx ON inv_refunded_tickets (refund_id);

-- +goose Down
DROP TABLE inv_refunded_tickets;
DROP TABLE inv_partial_refunds;
