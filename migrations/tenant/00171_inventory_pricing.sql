-- Inventory pricing: mandatory fees on tiers (shown in the all-in price),
-- demand-based pricing rules per tier with the chain's bounds, and the
-- append-only history of every price change with its inputs.

-- +goose Up
ALTER TABLE inv_tiers ADD COLUMN fee_minor bigint NOT NULL DEFAULT 0 CHECK (fee_minor BETWEEN 0 AND 100000000);

CREATE TABLE inv_price_rules (
    tier_id          uuid PRIMARY KEY REFERENCES inv_tiers (id) ON DELETE CASCADE,
    event_id         uuid NOT NULL,
    enabled          boolean NOT NULL,
    floor_minor      bigint NOT NULL CHECK (floor_minor BETWEEN 0 AND 100000000),
    ceiling_minor    bigint NOT NULL CHECK (ceiling_minor BETWEEN 0 AND 100000000),
    max_step_minor   bigint NOT NULL CHECK (max_step_minor BETWEEN 1 AND 100000000),
    min_interval_sec integer NOT NULL CHECK (min_interval_sec BETWEEN 60 AND 86400),
    -- Buyers are told of demand pricing from notice_from on; prices move
    -- only from effective_from, at least 24 hours later (CMA undertakings).
    notice_from      timestamptz NOT NULL,
    effective_from   timestamptz NOT NULL,
    last_change_at   timestamptz,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CHECK (ceiling_minor >= floor_minor),
    CHECK (effective_from >= notice_from + interval '24 hours')
);
CREATE INDEX inv_price_rules_event_idx ON inv_price_rules (event_id);

CREATE TABLE inv_price_history (
    id             bigserial PRIMARY KEY,
    tier_id        uuid NOT NULL REFERENCES inv_tiers (id) ON DELETE CASCADE,
    event_id       uuid NOT NULL,
    old_price      bigint NOT NULL,
    new_price      bigint NOT NULL,
    floor_minor    bigint NOT NULL,
    ceiling_minor  bigint NOT NULL,
    max_step_minor bigint NOT NULL,
    reason         text NOT NULL CHECK (reason IN ('demand', 'bounds')),
    inputs         jsonb NOT NULL,
    changed_at     timestamptz NOT NULL DEFAULT now(),
    -- Every change stays inside the bounds it was made under.
    CHECK (new_price BETWEEN floor_minor AND ceiling_minor),
    CHECK (reason = 'bounds' OR abs(new_price - old_price) <= max_step_minor)
);
CREATE INDEX inv_price_history_tier_idx ON inv_price_history (tier_id, id DESC);

-- The history is append-only: a correction is a new row.
-- +goose StatementBegin
CREATE FUNCTION inv_price_history_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'inv_price_history is append-only' USING ERRCODE = 'insufficient_privilege';
END $$;
-- +goose StatementEnd
CREATE TRIGGER inv_price_history_frozen BEFORE UPDATE OR DELETE ON inv_price_history
    FOR EACH ROW EXECUTE FUNCTION inv_price_history_frozen();

-- A demand-priced tier's price never leaves its bounds, whoever writes it.
-- +goose StatementBegin
CREATE FUNCTION inv_tier_price_in_bounds() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE r inv_price_rules%ROWTYPE;
BEGIN
    SELECT * INTO r FROM inv_price_rules WHERE tier_id = NEW.id AND enabled;
    IF FOUND AND (NEW.price_minor < r.floor_minor OR NEW.price_minor > r.ceiling_minor) THEN
        RAISE EXCEPTION 'tier price % outside its bounds [%, %]', NEW.price_minor, r.floor_minor, r.ceiling_minor
            USING ERRCODE = 'check_violation', CONSTRAINT = 'inv_tier_price_in_bounds';
    END IF;
    RETURN NEW;
END $$;
-- +goose StatementEnd
CREATE TRIGGER inv_tier_price_in_bounds BEFORE UPDATE OF price_minor ON inv_tiers
    FOR EACH ROW EXECUTE FUNCTION inv_tier_price_in_bounds();

-- Sales by time: trending (last 24 hours) and sales velocity (last minutes).
CREATE INDEX inv_tickets_issued_idx ON inv_tickets (issued_at, event_id) WHERE status = 'valid';

-- +goose Down
DROP INDEX inv_tickets_issued_idx;
DROP TRIGGER inv_tier_price_in_bounds ON inv_tiers;
DROP FUNCTION inv_tier_price_in_bounds();
DROP TABLE inv_price_history;
DROP FUNCTION inv_price_history_frozen();
DROP TABLE inv_price_rules;
ALTER TABLE inv_tiers DROP COLUMN fee_minor;
