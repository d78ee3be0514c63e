-- Core tables of every tenant schema. Runs with search_path "<tenant schema>, public".

-- +goose Up
CREATE TABLE users (
    id            uuid PRIMARY KEY,
    email         text NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    name          text NOT NULL,
    password_hash text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    disabled_at   timestamptz
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

-- The audit ledger: append-only, each entry chained to the previous by hash.
CREATE TABLE ledger_entries (
    seq          bigint PRIMARY KEY CHECK (seq > 0),
    id           uuid NOT NULL UNIQUE,
    recorded_at  timestamptz NOT NULL,
    kind         text NOT NULL CHECK (kind ~ '^[a-z][a-z0-9_.]{1,63}$'),
    reference    text NOT NULL CHECK (length(reference) <= 200),
    amount_minor bigint NOT NULL,
    currency     char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    memo         text NOT NULL DEFAULT '' CHECK (length(memo) <= 1000),
    prev_hash    bytea NOT NULL,
    hash         bytea NOT NULL UNIQUE
);

-- +goose StatementBegin
CREATE FUNCTION ledger_reject_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger_entries is append-only: % rejected', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER ledger_entries_no_update BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_reject_change();
CREATE TRIGGER ledger_entries_no_truncate BEFORE TRUNCATE ON ledger_entries
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_reject_change();

-- Every support visit and every change made during it, readable by the chain's owners.
CREATE TABLE support_access_log (
    id            bigserial PRIMARY KEY,
    visit_id      uuid NOT NULL,
    support_email text NOT NULL,
    at            timestamptz NOT NULL DEFAULT now(),
    action        text NOT NULL,
    method        text NOT NULL DEFAULT '',
    path          text NOT NULL DEFAULT '',
    status        int NOT NULL DEFAULT 0
);
CREATE INDEX support_access_log_at_idx ON support_access_log (at DESC);

-- +goose Down
DROP TABLE support_access_log;
DROP TABLE ledger_entries;
DROP FUNCTION ledger_reject_change();
DROP TABLE users;
