-- A buyer's active holds, found by their buyer id (GET /api/v1/holds?mine):
-- the storefront asks on every event page load, so it must not scan an
-- on-sale's holds. Partial: only active holds are looked up, and they are few.

-- +goose Up
CREATE INDEX inv_holds_buyer_active_idx ON inv_holds (buyer_id, event_id) WHERE status = 'active';

-- +goose Down
DROP INDEX inv_holds_buyer_active_idx;
