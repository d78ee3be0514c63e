-- Tickets per payment card: the card's fingerprint (Stripe's, the same for
-- one card whatever e-mail or address pays with it) kept on each paid order,
-- and the chain's limit per card and event.

-- +goose Up
ALTER TABLE inv_orders ADD COLUMN card_fingerprint text;
CREATE INDEX inv_orders_card_idx ON inv_orders (event_id, card_fingerprint) WHERE card_fingerprint IS NOT NULL;
ALTER TABLE inv_limit_thresholds
    ADD COLUMN max_tickets_per_card integer NOT NULL DEFAULT 8 CHECK (max_tickets_per_card BETWEEN 1 AND 10000);

-- +goose Down
ALTER TABLE inv_limit_thresholds DROP COLUMN max_tickets_per_card;
DROP INDEX inv_orders_card_idx;
ALTER TABLE inv_orders DROP COLUMN card_fingerprint;
