-- Ledger appends in one statement. The tenant's ledger lock is held from the
-- append to the commit, and every round trip inside it is one every payment
-- of the tenant waits for: locking, reading the chain's head, and inserting
-- took three. The hash is the one app.entryHash computes (the Go side checks
-- each append against it, and Verify recomputes the chain in Go).

-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION ledger_append(p_id uuid, p_recorded_at timestamptz, p_recorded_text text, p_kind text,
    p_reference text, p_amount bigint, p_currency text, p_memo text)
RETURNS TABLE (o_seq bigint, o_prev_hash bytea, o_hash bytea) LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_seq  bigint;
    v_prev bytea;
    v_hash bytea;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended(current_schema() || '.ledger', 0));
    -- A statement of its own after the lock: it sees the head as committed now.
    SELECT e.seq + 1, e.hash INTO v_seq, v_prev FROM ledger_entries e ORDER BY e.seq DESC LIMIT 1;
    IF NOT FOUND THEN
        v_seq := 1;
        v_prev := decode(repeat('00', 32), 'hex');
    END IF;
    -- Each field length-prefixed (8 bytes, big-endian), as entryHash does.
    v_hash := sha256(v_prev
        || int8send(8::bigint) || int8send(v_seq)
        || int8send(16::bigint) || uuid_send(p_id)
        || int8send(octet_length(convert_to(p_recorded_text, 'UTF8'))::bigint) || convert_to(p_recorded_text, 'UTF8')
        || int8send(octet_length(convert_to(p_kind, 'UTF8'))::bigint) || convert_to(p_kind, 'UTF8')
        || int8send(octet_length(convert_to(p_reference, 'UTF8'))::bigint) || convert_to(p_reference, 'UTF8')
        || int8send(8::bigint) || int8send(p_amount)
        || int8send(octet_length(convert_to(p_currency, 'UTF8'))::bigint) || convert_to(p_currency, 'UTF8')
        || int8send(octet_length(convert_to(p_memo, 'UTF8'))::bigint) || convert_to(p_memo, 'UTF8'));
    INSERT INTO ledger_entries (seq, id, recorded_at, kind, reference, amount_minor, currency, memo, prev_hash, hash)
    VALUES (v_seq, p_id, p_recorded_at, p_kind, p_reference, p_amount, p_currency, p_memo, v_prev, v_hash);
    RETURN QUERY SELECT v_seq, v_prev, v_hash;
END;
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION ledger_append(uuid, timestamptz, text, text, text, bigint, text, text);
