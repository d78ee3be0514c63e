-- An order whose request died before it got a PaymentIntent can never be
-- paid; it is closed (cancelled) when its hold ends, by whichever path ends
-- the hold (release, expiry task, sweeper, batch), in that same transaction.
-- Orders with a PaymentIntent stay pending: their payment may still arrive
-- late and is then honoured or refunded.

-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION inv_close_unpaid_orders() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE inv_orders SET status = 'cancelled', closed_at = now(),
        note = 'closed when its hold ended: it never got a payment'
    WHERE hold_id = NEW.id AND status = 'pending' AND payment_intent_id IS NULL;
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER inv_holds_close_unpaid_orders AFTER UPDATE OF status ON inv_holds
    FOR EACH ROW WHEN (OLD.status = 'active' AND NEW.status IN ('released', 'expired'))
    EXECUTE FUNCTION inv_close_unpaid_orders();

-- Such orders left behind before this migration.
UPDATE inv_orders o SET status = 'cancelled', closed_at = now(), note = 'closed when its hold ended: it never got a payment'
FROM inv_holds h
WHERE h.id = o.hold_id AND h.status IN ('released', 'expired') AND o.status = 'pending' AND o.payment_intent_id IS NULL;

-- +goose Down
DROP TRIGGER inv_holds_close_unpaid_orders ON inv_holds;
DROP FUNCTION inv_close_unpaid_orders();
