-- The first owner's e-mail, kept in the control plane so support can find a
-- chain by it without reading every tenant's schema (on every server).
-- Tenants created before it have none until an owner is recorded again.
-- Safe to run twice (see 00120).

-- +goose Up
ALTER TABLE tenants ADD COLUMN IF NOT EXISTS owner_email text;
CREATE INDEX IF NOT EXISTS tenants_owner_email_idx ON tenants (lower(owner_email));

-- +goose Down
ALTER TABLE tenants DROP COLUMN owner_email;
