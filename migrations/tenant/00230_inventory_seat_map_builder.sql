-- The seat-map builder: accessible seats, and the layout as it was built
-- (curved rows, aisles), kept so the editor can open it again exactly.

-- +goose Up
ALTER TABLE inv_seats ADD COLUMN accessible boolean NOT NULL DEFAULT false;
ALTER TABLE inv_events ADD COLUMN layout jsonb;

-- +goose Down
ALTER TABLE inv_events DROP COLUMN layout;
ALTER TABLE inv_seats DROP COLUMN accessible;
