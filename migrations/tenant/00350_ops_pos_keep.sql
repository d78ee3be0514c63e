-- POS deliveries kept in one statement. A delivery's transaction took nine
-- round trips (BEGIN, scope, the event's idempotency insert, the object's
-- insert, its locked read, its update, the ledger append, the outcome,
-- COMMIT), and the tenant's ledger lock, taken at the append, was held over
-- three of them: every sale of the chain waited for them. ops_pos_keep does
-- it all, the append (through the core's ledger_append) last, and runs as a
-- statement of its own (one round trip, its own transaction), so the lock
-- is held from the append to the commit, over no round trip at all.
--
-- It also orders objects a provider lists without a version (Square's
-- ListPaymentRefunds gives a refund's updated_at, not its version): a
-- status never goes back from a final one (COMPLETED, CANCELED, FAILED,
-- REJECTED) to a pending one, whatever the versions say, and a listed
-- object is newer when its updated_at is after the kept one's.

-- +goose Up
-- the provider's updated_at of the kept version (NULL: not given)
ALTER TABLE ops_pos_objects ADD COLUMN provider_updated_at timestamptz;

-- +goose StatementBegin
-- ops_pos_keep stores a delivery once by its event_id and keeps its object
-- if newer than the kept one; the ledger receives the counted amount of the
-- new version minus the kept one's (negated for a refund) as the entry
-- p_ledger_* describe (app.Ledger.NewEntry's). It returns the outcome
-- (duplicate, ignored, stale or applied), the amount the ledger received
-- and, when it received one, the entry's number and hashes. p_kind NULL: a
-- type ops does not read. p_version NULL: the object came from a list
-- without versions. An object whose currency changed raises OP001 (and the
-- delivery is not kept).
CREATE FUNCTION ops_pos_keep(p_connector uuid, p_event_id text, p_type text, p_kind text, p_object_id text,
    p_version bigint, p_status text, p_amount bigint, p_counted bigint, p_currency text, p_location_id text,
    p_order_id text, p_venue uuid, p_event uuid, p_stand text, p_category text, p_occurred timestamptz,
    p_updated timestamptz, p_ledger_id uuid, p_ledger_at timestamptz, p_ledger_at_text text, p_ledger_kind text,
    p_ledger_reference text, p_ledger_memo text)
RETURNS TABLE (o_outcome text, o_ledger bigint, o_seq bigint, o_prev_hash bytea, o_hash bytea) LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_cur      ops_pos_objects%ROWTYPE;
    v_cur_rank int;
    v_new_rank int;
    v_newer    boolean;
    v_ledger   bigint;
    v_seq      bigint;
    v_prev     bytea;
    v_hash     bytea;
BEGIN
    -- A redelivery waits here for the first delivery's commit, then finds it.
    INSERT INTO ops_pos_events (connector_id, event_id, type) VALUES (p_connector, p_event_id, p_type) ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'duplicate'::text, 0::bigint, NULL::bigint, NULL::bytea, NULL::bytea;
        RETURN;
    END IF;
    IF p_kind IS NULL THEN
        UPDATE ops_pos_events SET outcome = 'ignored' WHERE connector_id = p_connector AND event_id = p_event_id;
        RETURN QUERY SELECT 'ignored'::text, 0::bigint, NULL::bigint, NULL::bytea, NULL::bytea;
        RETURN;
    END IF;
    -- The object's row, locked: the first delivery inserts it at version -1
    -- with no status (counting nothing), so "newer than kept" is a comparison.
    INSERT INTO ops_pos_objects (connector_id, kind, object_id, version, status, amount_minor, currency, occurred_at)
    VALUES (p_connector, p_kind, p_object_id, -1, '', 0, p_currency, p_occurred) ON CONFLICT DO NOTHING;
    SELECT * INTO v_cur FROM ops_pos_objects WHERE connector_id = p_connector AND kind = p_kind AND object_id = p_object_id FOR UPDATE;
    v_cur_rank := CASE WHEN v_cur.status = '' THEN 0 WHEN v_cur.status IN ('COMPLETED', 'CANCELED', 'FAILED', 'REJECTED') THEN 2 ELSE 1 END;
    v_new_rank := CASE WHEN p_status IN ('COMPLETED', 'CANCELED', 'FAILED', 'REJECTED') THEN 2 ELSE 1 END;
    IF v_new_rank < v_cur_rank THEN
        v_newer := false;
    ELSIF p_version IS NOT NULL THEN
        v_newer := p_version > v_cur.version;
    ELSE
        v_newer := v_new_rank > v_cur_rank OR v_cur.provider_updated_at IS NULL OR p_updated > v_cur.provider_updated_at;
    END IF;
    IF NOT v_newer THEN
        UPDATE ops_pos_events SET outcome = 'stale' WHERE connector_id = p_connector AND event_id = p_event_id;
        RETURN QUERY SELECT 'stale'::text, 0::bigint, NULL::bigint, NULL::bytea, NULL::bytea;
        RETURN;
    END IF;
    IF v_cur.version >= 0 AND v_cur.currency <> p_currency THEN
        RAISE EXCEPTION 'the % changed currency', p_kind USING ERRCODE = 'OP001';
    END IF;
    UPDATE ops_pos_objects SET version = coalesce(p_version, greatest(v_cur.version, 0)), status = p_status,
        amount_minor = p_amount, counted_minor = p_counted, currency = p_currency, location_id = p_location_id,
        order_id = p_order_id, venue_id = p_venue, event_id = p_event, stand = p_stand, category = p_category,
        occurred_at = p_occurred, provider_updated_at = coalesce(p_updated, v_cur.provider_updated_at), updated_at = now()
    WHERE connector_id = p_connector AND kind = p_kind AND object_id = p_object_id;
    UPDATE ops_pos_events SET outcome = 'applied' WHERE connector_id = p_connector AND event_id = p_event_id;
    v_ledger := p_counted - v_cur.counted_minor;
    IF p_kind = 'refund' THEN
        v_ledger := -v_ledger;
    END IF;
    IF v_ledger <> 0 THEN
        -- Last: the chain's lock, taken here, is held to the commit.
        SELECT a.o_seq, a.o_prev_hash, a.o_hash INTO v_seq, v_prev, v_hash
        FROM ledger_append(p_ledger_id, p_ledger_at, p_ledger_at_text, p_ledger_kind, p_ledger_reference, v_ledger, p_currency, p_ledger_memo) a;
    END IF;
    RETURN QUERY SELECT 'applied'::text, v_ledger, v_seq, v_prev, v_hash;
END;
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION ops_pos_keep(uuid, text, text, text, text, bigint, text, bigint, bigint, text, text, text, uuid, uuid, text, text, timestamptz, timestamptz,
    uuid, timestamptz, text, text, text, text);
ALTER TABLE ops_pos_objects DROP COLUMN provider_updated_at;
