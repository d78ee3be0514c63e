-- Payments that do not match their order (amount, currency or PaymentIntent)
-- are kept apart for review and refunded on their own: the order they name
-- is left as it is. And an order is refunded only together with its tickets.

-- +goose Up
CREATE TABLE inv_payment_reviews (
    payment_intent_id text PRIMARY KEY,             -- one review, and one refund, per payment
    stripe_event_id   text NOT NULL,
    order_id          uuid,
    amount_minor      bigint NOT NULL CHECK (amount_minor >= 0),
    currency          char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    reason            text NOT NULL,
    stripe_refund_id  text,                         -- set once Stripe accepted the refund
    created_at        timestamptz NOT NULL DEFAULT now(),
    refunded_at       timestamptz
);
CREATE INDEX inv_payment_reviews_unrefunded_idx ON inv_payment_reviews (created_at) WHERE stripe_refund_id IS NULL;

-- +goose StatementBegin
-- Checked at commit: the transaction that refunds an order must void its
-- tickets too, so a refunded order never leaves a scannable ticket behind.
CREATE FUNCTION inv_check_refunded_order() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM inv_tickets WHERE order_id = NEW.id AND status = 'valid')
       AND (SELECT status FROM inv_orders WHERE id = NEW.id) = 'refunded' THEN
        RAISE EXCEPTION 'order % is refunded but has valid tickets', NEW.id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'inv_refunded_order_tickets';
    END IF;
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

CREATE CONSTRAINT TRIGGER inv_orders_refunded_tickets AFTER UPDATE OF status ON inv_orders
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.status = 'refunded')
    EXECUTE FUNCTION inv_check_refunded_order();

-- +goose Down
DROP TRIGGER inv_orders_refunded_tickets ON inv_orders;
DROP FUNCTION inv_check_refunded_order();
DROP TABLE inv_payment_reviews;
