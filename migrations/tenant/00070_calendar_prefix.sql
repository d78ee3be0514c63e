-- Names that scale, expand step: the calendar's tables take its prefix cal_
-- (venues, stages, events, occupancy, holds -> cal_venues, ...). Nothing else
-- of the calendar lives in a tenant schema (calendar_idempotency went in 00021).
--
-- During the rollout the release before this one (unprefixed names) and this
-- one (cal_ names) run against the same schema, so each old name stays as a
-- view over its table. These are simple one-table views, automatically
-- updatable in PostgreSQL 15, and they serve everything the old code runs
-- (modules/calendar/names_migration_test.go runs the old statements verbatim
-- through them):
--   * SELECT ... FOR UPDATE (holds), UPDATE ... RETURNING, DELETE;
--   * INSERT ... ON CONFLICT DO NOTHING RETURNING into occupancy, inside a
--     data-modifying CTE: PostgreSQL rewrites it onto cal_occupancy and the
--     exclusion constraints arbitrate as before (ON CONFLICT is refused only
--     on views with INSTEAD OF triggers or rules, which these are not);
--   * defaults and the identity column (holds.arrival) are the table's.
-- Constraint and index names stay as they are here: the old code maps
-- errors by constraint name (occupancy_*, events_stage_fkey,
-- stages_venue_name_key, ...). The new code accepts both spellings; the
-- contract step (migrations/contract/tenant/00110_calendar_prefix_contract.sql)
-- drops the views and renames the constraints once no old code runs.
--
-- Rolling order: run this migration on every tenant, then deploy the new
-- code, then (next release) the contract step.

-- +goose Up
ALTER TABLE venues RENAME TO cal_venues;
ALTER TABLE stages RENAME TO cal_stages;
ALTER TABLE events RENAME TO cal_events;
ALTER TABLE occupancy RENAME TO cal_occupancy;
ALTER TABLE holds RENAME TO cal_holds;

CREATE VIEW venues AS SELECT * FROM cal_venues;
CREATE VIEW stages AS SELECT * FROM cal_stages;
CREATE VIEW events AS SELECT * FROM cal_events;
CREATE VIEW occupancy AS SELECT * FROM cal_occupancy;
CREATE VIEW holds AS SELECT * FROM cal_holds;

-- +goose Down
DROP VIEW holds;
DROP VIEW occupancy;
DROP VIEW events;
DROP VIEW stages;
DROP VIEW venues;

ALTER TABLE cal_holds RENAME TO holds;
ALTER TABLE cal_occupancy RENAME TO occupancy;
ALTER TABLE cal_events RENAME TO events;
ALTER TABLE cal_stages RENAME TO stages;
ALTER TABLE cal_venues RENAME TO venues;
