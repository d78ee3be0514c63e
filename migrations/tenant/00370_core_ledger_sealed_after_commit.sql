-- The ledger no longer serializes the transactions that append to it. An
-- entry is written unsealed (no seq, no hashes) by a plain insert in its
-- business transaction, which takes no ledger lock; ledger_seal() chains
-- the committed unsealed entries in one pass under the tenant's ledger lock
-- (seq, prev_hash, hash as app.entryHash computes them). The lock was held
-- by every payment from its append to its commit (the WAL flush included),
-- so a chain's payments committed one at a time.
--
-- ledger_append (00022) keeps working for a binary of the previous release
-- during a rolling deploy: it takes the same lock and chains after the last
-- sealed entry, as the sealer does.

-- +goose Up
ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_pkey;
ALTER TABLE ledger_entries ADD CONSTRAINT ledger_entries_pkey PRIMARY KEY (id);
ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_id_key;
ALTER TABLE ledger_entries ALTER COLUMN seq DROP NOT NULL, ALTER COLUMN prev_hash DROP NOT NULL, ALTER COLUMN hash DROP NOT NULL;
ALTER TABLE ledger_entries ADD CONSTRAINT ledger_entries_sealed_whole
    CHECK ((seq IS NULL) = (hash IS NULL) AND (seq IS NULL) = (prev_hash IS NULL));
CREATE UNIQUE INDEX ledger_entries_seq_key ON ledger_entries (seq) WHERE seq IS NOT NULL;
CREATE INDEX ledger_entries_unsealed_idx ON ledger_entries (id) WHERE seq IS NULL;

-- +goose StatementBegin
-- Sealing is the one change an entry takes: its chain fields, once.
CREATE FUNCTION ledger_guard_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.seq IS NULL AND NEW.seq IS NOT NULL
        AND (NEW.id, NEW.recorded_at, NEW.kind, NEW.reference, NEW.amount_minor, NEW.currency, NEW.memo)
            IS NOT DISTINCT FROM (OLD.id, OLD.recorded_at, OLD.kind, OLD.reference, OLD.amount_minor, OLD.currency, OLD.memo) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'ledger_entries is append-only: % rejected', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
-- +goose StatementEnd
DROP TRIGGER ledger_entries_no_update ON ledger_entries;
CREATE TRIGGER ledger_entries_no_update BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_guard_change();

-- +goose StatementBegin
-- Go's time.RFC3339Nano of the UTC instant (the text app.entryHash hashes):
-- the fraction without trailing zeros, none when zero.
CREATE FUNCTION ledger_time_text(p_at timestamptz) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT to_char(p_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')
        || coalesce('.' || NULLIF(rtrim(to_char(p_at AT TIME ZONE 'UTC', 'US'), '0'), ''), '') || 'Z'
$$;
-- +goose StatementEnd

-- +goose StatementBegin
-- Chains up to p_max committed unsealed entries (oldest id first: ids are
-- UUIDv7) after the last sealed one; returns how many.
CREATE FUNCTION ledger_seal(p_max int) RETURNS int LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_seq  bigint;
    v_prev bytea;
    v_hash bytea;
    v_text text;
    v_n    int := 0;
    r      record;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended(current_schema() || '.ledger', 0));
    -- Statements of their own after the lock: they see what is committed now.
    SELECT e.seq, e.hash INTO v_seq, v_prev FROM ledger_entries e WHERE e.seq IS NOT NULL ORDER BY e.seq DESC LIMIT 1;
    IF NOT FOUND THEN
        v_seq := 0;
        v_prev := decode(repeat('00', 32), 'hex');
    END IF;
    FOR r IN SELECT e.id, e.recorded_at, e.kind, e.reference, e.amount_minor, e.currency, e.memo
        FROM ledger_entries e WHERE e.seq IS NULL ORDER BY e.id LIMIT p_max FOR UPDATE
    LOOP
        v_seq := v_seq + 1;
        v_text := ledger_time_text(r.recorded_at);
        -- Each field length-prefixed (8 bytes, big-endian), as entryHash does.
        v_hash := sha256(v_prev
            || int8send(8::bigint) || int8send(v_seq)
            || int8send(16::bigint) || uuid_send(r.id)
            || int8send(octet_length(convert_to(v_text, 'UTF8'))::bigint) || convert_to(v_text, 'UTF8')
            || int8send(octet_length(convert_to(r.kind, 'UTF8'))::bigint) || convert_to(r.kind, 'UTF8')
            || int8send(octet_length(convert_to(r.reference, 'UTF8'))::bigint) || convert_to(r.reference, 'UTF8')
            || int8send(8::bigint) || int8send(r.amount_minor)
            || int8send(octet_length(convert_to(r.currency::text, 'UTF8'))::bigint) || convert_to(r.currency::text, 'UTF8')
            || int8send(octet_length(convert_to(r.memo, 'UTF8'))::bigint) || convert_to(r.memo, 'UTF8'));
        UPDATE ledger_entries SET seq = v_seq, prev_hash = v_prev, hash = v_hash WHERE id = r.id;
        v_prev := v_hash;
        v_n := v_n + 1;
    END LOOP;
    RETURN v_n;
END;
$$;
-- +goose StatementEnd

-- +goose StatementBegin
-- The previous release's append: the same lock, after the last sealed entry.
CREATE OR REPLACE FUNCTION ledger_append(p_id uuid, p_recorded_at timestamptz, p_recorded_text text, p_kind text,
    p_reference text, p_amount bigint, p_currency text, p_memo text)
RETURNS TABLE (o_seq bigint, o_prev_hash bytea, o_hash bytea) LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_seq  bigint;
    v_prev bytea;
    v_hash bytea;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended(current_schema() || '.ledger', 0));
    SELECT e.seq + 1, e.hash INTO v_seq, v_prev FROM ledger_entries e WHERE e.seq IS NOT NULL ORDER BY e.seq DESC LIMIT 1;
    IF NOT FOUND THEN
        v_seq := 1;
        v_prev := decode(repeat('00', 32), 'hex');
    END IF;
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
SELECT ledger_seal(2147483647);
DROP FUNCTION ledger_seal(int);
DROP FUNCTION ledger_time_text(timestamptz);
DROP TRIGGER ledger_entries_no_update ON ledger_entries;
CREATE TRIGGER ledger_entries_no_update BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_reject_change();
DROP FUNCTION ledger_guard_change();
DROP INDEX ledger_entries_unsealed_idx;
DROP INDEX ledger_entries_seq_key;
ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_sealed_whole;
ALTER TABLE ledger_entries ALTER COLUMN seq SET NOT NULL, ALTER COLUMN prev_hash SET NOT NULL, ALTER COLUMN hash SET NOT NULL;
ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_pkey;
ALTER TABLE ledger_entries ADD PRIMARY KEY (seq);
ALTER TABLE ledger_entries ADD CONSTRAINT ledger_entries_id_key UNIQUE (id);
