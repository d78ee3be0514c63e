-- Every status change of a tenant, with who made it and why: the console's
-- status history. Rows are only ever added. Safe to run twice (see 00120).

-- +goose Up
CREATE TABLE IF NOT EXISTS tenant_status_history (
    id          bigserial PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants (id),
    at          timestamptz NOT NULL DEFAULT now(),
    from_status text NOT NULL DEFAULT '',
    to_status   text NOT NULL,
    actor       text NOT NULL,
    reason      text NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS tenant_status_history_tenant_idx ON tenant_status_history (tenant_id, id);

-- What already exists has a beginning: its creation, by whom is unknown.
INSERT INTO tenant_status_history (tenant_id, at, to_status, actor, reason)
SELECT id, created_at, 'active', 'system', 'created before status history was kept' FROM tenants t
WHERE NOT EXISTS (SELECT 1 FROM tenant_status_history h WHERE h.tenant_id = t.id);

-- +goose Down
DROP TABLE tenant_status_history;
