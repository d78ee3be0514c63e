-- POS deliveries on the sealed ledger. ops_pos_keep (00350) appended through
-- ledger_append, which takes the chain's ledger lock and holds it to the
-- commit (the WAL flush included): every sale of a chain, and every payment,
-- committed one at a time behind it. ops_pos_keep_unsealed keeps a delivery
-- the same way but inserts its ledger entry unsealed, as payments do since
-- 00370; the sealer chains it after the commit (the Go side pokes it). Its
-- only locks are the delivery's event row and its object's row, so
-- deliveries of different objects no longer wait for each other.
--
-- ops_pos_keep stays for a binary of the previous release during a rolling
-- deploy (ledger_append still chains after the last sealed entry).

-- +goose Up
-- +goose StatementBegin
-- ops_pos_keep_unsealed stores a delivery once by its event_id and keeps its
-- object if newer than the kept one (the rules of ops_pos_keep); the ledger
-- receives, as an unsealed entry p_ledger_* describe (app.Ledger.NewEntry's),
-- the counted amount of the new version minus the kept one's (negated for
-- a refund). It returns the outcome (duplicate, ignored, stale or applied)
-- and the amount the ledger received. p_kind NULL: a type ops does not read.
-- p_version NULL: the object came from a list without versions. An object
-- whose currency changed raises OP001 (and the delivery is not kept).
CREATE FUNCTION ops_pos_keep_unsealed(p_connector uuid, p_event_id text, p_type text, p_kind text, p_object_id text,
    p_version bigint, p_status text, p_amount bigint, p_counted bigint, p_currency text, p_location_id text,
    p_order_id text, p_venue uuid, p_event uuid, p_stand text, p_category text, p_occurred timestamptz,
    p_updated timestamptz, p_ledger_id uuid, p_ledger_at timestamptz, p_ledger_kind text,
    p_ledger_reference text, p_ledger_memo text)
RETURNS TABLE (o_outcome text, o_ledger bigint) LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_cur      ops_pos_objects%ROWTYPE;
    v_cur_rank int;
    v_new_rank int;
    v_newer    boolean;
    v_ledger   bigint;
BEGIN
    -- A redelivery waits here for the first delivery's commit, then finds it.
    INSERT INTO ops_pos_events (connector_id, event_id, type) VALUES (p_connector, p_event_id, p_type) ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'duplicate'::text, 0::bigint;
        RETURN;
    END IF;
    IF p_kind IS NULL THEN
        UPDATE ops_pos_events SET outcome = 'ignored' WHERE connector_id = p_connector AND event_id = p_event_id;
        RETURN QUERY SELECT 'ignored'::text, 0::bigint;
        RETURN;
    END IF;
    -- The object's row, locked: the first delivery inserts it at version -1
    -- with no status (counting nothing), so "newer than kept" is a
    -- comparison, and two versions of one object apply one after the other.
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
        RETURN QUERY SELECT 'stale'::text, 0::bigint;
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
        -- Unsealed (no seq, no hashes): ledger_seal chains it after the commit.
        INSERT INTO ledger_entries (id, recorded_at, kind, reference, amount_minor, currency, memo)
        VALUES (p_ledger_id, p_ledger_at, p_ledger_kind, p_ledger_reference, v_ledger, p_currency, p_ledger_memo);
    END IF;
    RETURN QUERY SELECT 'applied'::text, v_ledger;
END;
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION ops_pos_keep_unsealed(uuid, text, text, text, text, bigint, text, bigint, bigint, text, text, text, uuid, uuid, text, text,
    timestamptz, timestamptz, uuid, timestamptz, text, text, text);
