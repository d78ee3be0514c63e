-- Placement: the database server each tenant's schema lives on (a name from
-- the configuration; "default" is MARQUEE_DATABASE_URL's server, where every
-- tenant created before placement lives), and the "moving" state of a tenant
-- being copied to another server (answered 503 with Retry-After).
-- Written to run again harmlessly (IF NOT EXISTS): a test seeds a database at
-- an older version with this release's code, which needs these columns, so it
-- applies this file early and goose applies it again in its place.

-- +goose Up
ALTER TABLE tenants ADD COLUMN IF NOT EXISTS server text NOT NULL DEFAULT 'default'
    CONSTRAINT tenants_server_check CHECK (server ~ '^[a-z][a-z0-9_-]{0,30}$');
CREATE INDEX IF NOT EXISTS tenants_server_idx ON tenants (server);

ALTER TABLE tenants DROP CONSTRAINT IF EXISTS tenants_status_check;
ALTER TABLE tenants ADD CONSTRAINT tenants_status_check
    CHECK (status IN ('provisioning', 'active', 'suspended', 'moving'));

-- One row per move attempt, kept whatever its outcome: the console shows a
-- tenant's moves, and a failed one says at which step and why.
CREATE TABLE IF NOT EXISTS tenant_moves (
    id          bigserial PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants (id),
    from_server text NOT NULL,
    to_server   text NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    outcome     text NOT NULL DEFAULT 'running' CHECK (outcome IN ('running', 'moved', 'failed')),
    detail      text NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS tenant_moves_tenant_idx ON tenant_moves (tenant_id, id);

-- +goose Down
DROP TABLE tenant_moves;
ALTER TABLE tenants DROP CONSTRAINT tenants_status_check;
ALTER TABLE tenants ADD CONSTRAINT tenants_status_check
    CHECK (status IN ('provisioning', 'active', 'suspended'));
DROP INDEX tenants_server_idx;
ALTER TABLE tenants DROP COLUMN server;
