-- Placement: the database server each tenant's schema lives on (a name from
-- the configuration; "default" is MARQUEE_DATABASE_URL's server, where every
-- tenant created before placement lives), and the "moving" state of a tenant
-- being copied to another server (answered 503 with Retry-After).

-- +goose Up
ALTER TABLE tenants ADD COLUMN server text NOT NULL DEFAULT 'default'
    CHECK (server ~ '^[a-z][a-z0-9_-]{0,30}$');
CREATE INDEX tenants_server_idx ON tenants (server);

ALTER TABLE tenants DROP CONSTRAINT tenants_status_check;
ALTER TABLE tenants ADD CONSTRAINT tenants_status_check
    CHECK (status IN ('provisioning', 'active', 'suspended', 'moving'));

-- One row per move attempt, kept whatever its outcome: the console shows a
-- tenant's moves, and a failed one says at which step and why.
CREATE TABLE tenant_moves (
    id          bigserial PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants (id),
    from_server text NOT NULL,
    to_server   text NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    outcome     text NOT NULL DEFAULT 'running' CHECK (outcome IN ('running', 'moved', 'failed')),
    detail      text NOT NULL DEFAULT ''
);
CREATE INDEX tenant_moves_tenant_idx ON tenant_moves (tenant_id, id);

-- +goose Down
DROP TABLE tenant_moves;
ALTER TABLE tenants DROP CONSTRAINT tenants_status_check;
ALTER TABLE tenants ADD CONSTRAINT tenants_status_check
    CHECK (status IN ('provisioning', 'active', 'suspended'));
DROP INDEX tenants_server_idx;
ALTER TABLE tenants DROP COLUMN server;
