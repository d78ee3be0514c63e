-- A payment's common case in one statement. paymentSucceeded ran about
-- fifteen statements, a round trip each, with the order locked over all of
-- them. inv_pay_fast does the deciding half of the common case: it records
-- the Stripe event, locks the order, checks that nothing uncommon applies,
-- marks the order paid and the hold sold, sells the hold's seats and returns
-- what Go needs to sign the tickets. Anything uncommon (the event seen
-- before, an unknown order or one not pending, a payment that does not
-- match, a cancelled event, a resale reservation, an event without a ticket
-- key yet, a hold no longer active) answers o_fast = false, and the caller
-- rolls the transaction back (some of it may be written) and takes the
-- general path. Locks are taken in the general path's order: the event id,
-- the order, the hold, the seats.
--
-- inv_assert lets a statement sent in the same round trip as its COMMIT
-- refuse it: Go reads the result only after the COMMIT has run.

-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION inv_assert(p_ok boolean, p_message text) RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF p_ok IS NOT TRUE THEN
        RAISE EXCEPTION '%', p_message USING ERRCODE = 'data_exception';
    END IF;
    RETURN true;
END;
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION inv_pay_fast(p_stripe_event text, p_type text, p_order uuid, p_intent text, p_amount bigint, p_currency text)
RETURNS TABLE (o_fast boolean, o_event uuid, o_hold uuid, o_buyer text, o_email text, o_name text, o_amount bigint,
    o_currency text, o_intent text, o_client_ip text, o_device_id text, o_ip_counted boolean, o_seats text[], o_lines jsonb,
    o_kid int, o_key bytea, o_valid_from timestamptz, o_valid_until timestamptz)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_o    inv_orders%ROWTYPE;
    v_h    inv_holds%ROWTYPE;
    v_want int;
BEGIN
    o_fast := false;
    -- A redelivery waits here for the first delivery's commit, then finds it.
    INSERT INTO inv_stripe_events (id, type, order_id) VALUES (p_stripe_event, p_type, p_order) ON CONFLICT (id) DO NOTHING;
    IF NOT FOUND THEN
        RETURN NEXT;
        RETURN;
    END IF;
    SELECT * INTO v_o FROM inv_orders WHERE id = p_order FOR UPDATE;
    IF NOT FOUND OR v_o.status <> 'pending' OR v_o.amount_minor <> p_amount OR v_o.currency <> p_currency
        OR (p_intent <> '' AND v_o.payment_intent_id IS NOT NULL AND v_o.payment_intent_id <> p_intent)
        OR EXISTS (SELECT 1 FROM inv_event_cancellations c WHERE c.event_id = v_o.event_id)
        OR EXISTS (SELECT 1 FROM inv_resale_holds r WHERE r.hold_id = v_o.hold_id) THEN
        RETURN NEXT;
        RETURN;
    END IF;
    SELECT k.kid, k.private_enc INTO o_kid, o_key FROM inv_ticket_keys k WHERE k.event_id = v_o.event_id ORDER BY k.kid DESC LIMIT 1;
    IF NOT FOUND THEN
        RETURN NEXT; -- the general path makes the event's first key
        RETURN;
    END IF;
    UPDATE inv_orders SET status = 'paid', paid_at = now(), closed_at = NULL,
        payment_intent_id = coalesce(NULLIF(p_intent, ''), payment_intent_id)
    WHERE id = p_order;
    UPDATE inv_holds SET status = 'sold', closed_at = now() WHERE id = v_o.hold_id AND status = 'active' RETURNING * INTO v_h;
    IF NOT FOUND THEN
        RETURN NEXT; -- lapsed or released: the caller rolls the order back
        RETURN;
    END IF;
    WITH sold AS (
        UPDATE inv_seats s SET state = 'sold', order_id = p_order, hold_id = NULL
        FROM (SELECT id FROM inv_seats WHERE event_id = v_o.event_id AND hold_id = v_o.hold_id ORDER BY id FOR UPDATE) l
        WHERE s.event_id = v_o.event_id AND s.id = l.id AND s.state = 'held' AND s.hold_id = v_o.hold_id
        RETURNING s.id
    )
    SELECT coalesce(array_agg(id ORDER BY id), '{}') INTO o_seats FROM sold;
    SELECT count(*) FILTER (WHERE l.seat_id IS NOT NULL),
        jsonb_agg(jsonb_build_object('tier_id', l.tier_id, 'tier_name', t.name, 'zone_id', l.zone_id, 'zone_name', z.name,
            'seat_id', l.seat_id, 'quantity', l.quantity) ORDER BY l.line)
    INTO v_want, o_lines
    FROM inv_hold_lines l JOIN inv_tiers t ON t.id = l.tier_id JOIN inv_zones z ON z.id = l.zone_id
    WHERE l.hold_id = v_o.hold_id;
    IF cardinality(o_seats) <> v_want THEN
        RAISE EXCEPTION 'hold % held % of its % seats', v_o.hold_id, cardinality(o_seats), v_want;
    END IF;
    SELECT d.valid_from, d.valid_until INTO o_valid_from, o_valid_until FROM inv_door_events d WHERE d.event_id = v_o.event_id;
    o_fast := true;
    o_event := v_o.event_id;
    o_hold := v_o.hold_id;
    o_buyer := v_o.buyer_id;
    o_email := v_o.email;
    o_name := v_o.name;
    o_amount := v_o.amount_minor;
    o_currency := v_o.currency;
    o_intent := coalesce(NULLIF(p_intent, ''), v_o.payment_intent_id);
    o_client_ip := v_h.client_ip;
    o_device_id := v_h.device_id;
    o_ip_counted := v_h.ip_counted;
    RETURN NEXT;
END;
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION inv_pay_fast(text, text, uuid, text, bigint, text);
DROP FUNCTION inv_assert(boolean, text);
