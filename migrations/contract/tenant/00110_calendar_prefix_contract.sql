-- Names that scale, contract step of tenant 00070 (calendar's cal_ prefix).
--
-- NOT APPLIED YET: this file lives outside tenant/ (so it is not embedded and
-- no runner applies it). Move it into tenant/ in the release after the one
-- that shipped 00070, once no instance of the code before 00070 runs: old
-- code still reads and writes the unprefixed views and maps errors by the
-- unprefixed constraint names. If a later tenant migration has shipped by
-- then, renumber this file above it (goose refuses out-of-order versions),
-- within its owner's block (see migrations/README.md).
--
-- It drops the compatibility views, then gives every constraint, index and
-- sequence of the cal_ tables the prefix too (cal_ + the old name), e.g.
-- occupancy_stage_overlap -> cal_occupancy_stage_overlap: the calendar maps
-- both spellings (store.go, pgCode), and its exclusion check keeps matching
-- the occupancy_ prefix after the cal_ is stripped.

-- +goose Up
DROP VIEW holds;
DROP VIEW occupancy;
DROP VIEW events;
DROP VIEW stages;
DROP VIEW venues;

-- +goose StatementBegin
DO $$
DECLARE
    r record;
BEGIN
    -- Constraints first: renaming one that owns an index (primary key,
    -- unique, exclusion) renames its index with it.
    FOR r IN SELECT c.conrelid::regclass AS tbl, c.conname
             FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid
             WHERE t.relnamespace = current_schema()::regnamespace
               AND t.relname IN ('cal_venues', 'cal_stages', 'cal_events', 'cal_occupancy', 'cal_holds')
               AND c.conname NOT LIKE 'cal\_%'
    LOOP
        EXECUTE format('ALTER TABLE %s RENAME CONSTRAINT %I TO %I', r.tbl, r.conname, 'cal_' || r.conname);
    END LOOP;
    FOR r IN SELECT i.indexrelid::regclass AS idx, ic.relname
             FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid
             WHERE t.relnamespace = current_schema()::regnamespace
               AND t.relname IN ('cal_venues', 'cal_stages', 'cal_events', 'cal_occupancy', 'cal_holds')
               AND ic.relname NOT LIKE 'cal\_%'
    LOOP
        EXECUTE format('ALTER INDEX %s RENAME TO %I', r.idx, 'cal_' || r.relname);
    END LOOP;
END
$$;
-- +goose StatementEnd
ALTER SEQUENCE holds_arrival_seq RENAME TO cal_holds_arrival_seq;

-- +goose Down
ALTER SEQUENCE cal_holds_arrival_seq RENAME TO holds_arrival_seq;

-- +goose StatementBegin
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT c.conrelid::regclass AS tbl, c.conname
             FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid
             WHERE t.relnamespace = current_schema()::regnamespace
               AND t.relname IN ('cal_venues', 'cal_stages', 'cal_events', 'cal_occupancy', 'cal_holds')
               AND c.conname LIKE 'cal\_%'
    LOOP
        EXECUTE format('ALTER TABLE %s RENAME CONSTRAINT %I TO %I', r.tbl, r.conname, substr(r.conname, 5));
    END LOOP;
    FOR r IN SELECT i.indexrelid::regclass AS idx, ic.relname
             FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid
             WHERE t.relnamespace = current_schema()::regnamespace
               AND t.relname IN ('cal_venues', 'cal_stages', 'cal_events', 'cal_occupancy', 'cal_holds')
               AND ic.relname LIKE 'cal\_%'
    LOOP
        EXECUTE format('ALTER INDEX %s RENAME TO %I', r.idx, substr(r.relname, 5));
    END LOOP;
END
$$;
-- +goose StatementEnd

CREATE VIEW venues AS SELECT * FROM cal_venues;
CREATE VIEW stages AS SELECT * FROM cal_stages;
CREATE VIEW events AS SELECT * FROM cal_events;
CREATE VIEW occupancy AS SELECT * FROM cal_occupancy;
CREATE VIEW holds AS SELECT * FROM cal_holds;
