-- Control plane: the tenant registry and platform-level records. Runs with
-- search_path "control, public".

-- +goose Up
-- Extensions live in public, created once here: created from a tenant migration
-- they would land in that tenant's schema and vanish with it.
CREATE EXTENSION IF NOT EXISTS btree_gist WITH SCHEMA public;

CREATE TABLE tenants (
    id          uuid PRIMARY KEY,
    slug        text NOT NULL UNIQUE CHECK (slug ~ '^[a-z][a-z0-9-]{1,38}$'),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    schema_name text NOT NULL UNIQUE CHECK (schema_name ~ '^t_[a-z0-9_]{2,39}$'),
    status      text NOT NULL CHECK (status IN ('provisioning', 'active', 'suspended')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Platform staff (support). Chain staff live in their tenant's schema.
CREATE TABLE platform_users (
    id            uuid PRIMARY KEY,
    email         text NOT NULL,
    name          text NOT NULL,
    password_hash text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX platform_users_email_key ON platform_users (lower(email));

-- Sessions and API tokens of everyone, stored only as SHA-256 hashes. Keeping
-- them in the control plane lets a token presented on the wrong tenant's host
-- be recognised (and refused with 403) without reading any tenant's schema.
CREATE TABLE sessions (
    id         uuid PRIMARY KEY,
    token_hash bytea NOT NULL UNIQUE,
    kind       text NOT NULL CHECK (kind IN ('user', 'support', 'support_visit')),
    tenant_id  uuid REFERENCES tenants (id),
    user_id    uuid NOT NULL,
    visit_id   uuid,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz,
    CHECK ((kind = 'support') = (tenant_id IS NULL))
);
CREATE INDEX sessions_user_idx ON sessions (user_id);

-- A support visit is the only way platform staff act inside a tenant.
CREATE TABLE support_visits (
    id              uuid PRIMARY KEY,
    support_user_id uuid NOT NULL REFERENCES platform_users (id),
    tenant_id       uuid NOT NULL REFERENCES tenants (id),
    reason          text NOT NULL CHECK (length(reason) BETWEEN 3 AND 500),
    started_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL
);

-- What support staff did on the console itself (create, suspend, resume, visit).
CREATE TABLE platform_audit (
    id         bigserial PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    actor      text NOT NULL,
    action     text NOT NULL,
    tenant_id  uuid REFERENCES tenants (id),
    detail     text NOT NULL DEFAULT ''
);

-- Casbin's policy table (gorm-adapter layout; its auto-migrate is off). One
-- table for all tenants: every row's domain starts with the tenant's slug.
CREATE TABLE casbin_rule (
    id    bigserial PRIMARY KEY,
    ptype varchar(100) NOT NULL DEFAULT '',
    v0    varchar(100) NOT NULL DEFAULT '',
    v1    varchar(100) NOT NULL DEFAULT '',
    v2    varchar(100) NOT NULL DEFAULT '',
    v3    varchar(100) NOT NULL DEFAULT '',
    v4    varchar(100) NOT NULL DEFAULT '',
    v5    varchar(100) NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX idx_casbin_rule ON casbin_rule (ptype, v0, v1, v2, v3, v4, v5);

-- +goose Down
DROP TABLE casbin_rule, platform_audit, support_visits, sessions, platform_users, tenants;
