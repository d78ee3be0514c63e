-- Limits per device: the storefront's signed device id (a first-party
-- cookie, or X-Device-Id from API clients) kept on each hold, in place of
-- the address as the hold's per-device counter subject when it is known; on
-- each recorded risk decision; and the chain's ticket limit per device.

-- +goose Up
ALTER TABLE inv_holds ADD COLUMN device_id text NOT NULL DEFAULT '';
ALTER TABLE inv_risk_decisions ADD COLUMN device_id text NOT NULL DEFAULT '';
ALTER TABLE inv_limit_thresholds
    ADD COLUMN max_tickets_per_device integer NOT NULL DEFAULT 8 CHECK (max_tickets_per_device BETWEEN 1 AND 10000);

-- +goose Down
ALTER TABLE inv_limit_thresholds DROP COLUMN max_tickets_per_device;
ALTER TABLE inv_risk_decisions DROP COLUMN device_id;
ALTER TABLE inv_holds DROP COLUMN device_id;
