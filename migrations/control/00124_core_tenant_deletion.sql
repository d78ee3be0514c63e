-- Deleting a tenant takes two steps a delay apart: a request ("deleting",
-- not served, delete_after set) that can be cancelled, then the deletion
-- itself once delete_after has passed ("deleted": its schema dropped, its
-- rules and sessions removed, its name and owner e-mail scrubbed). The row
-- stays as a tombstone: the audit trail and status history point at it, and
-- its slug is never handed to another chain. Safe to run twice (see 00120).

-- +goose Up
ALTER TABLE tenants ADD COLUMN IF NOT EXISTS delete_after timestamptz;
ALTER TABLE tenants DROP CONSTRAINT IF EXISTS tenants_status_check;
ALTER TABLE tenants ADD CONSTRAINT tenants_status_check
    CHECK (status IN ('provisioning', 'active', 'suspended', 'moving', 'deleting', 'deleted'));
ALTER TABLE tenants DROP CONSTRAINT IF EXISTS tenants_delete_after_check;
ALTER TABLE tenants ADD CONSTRAINT tenants_delete_after_check
    CHECK ((status = 'deleting') = (delete_after IS NOT NULL) OR status = 'deleted');

-- +goose Down
ALTER TABLE tenants DROP CONSTRAINT tenants_delete_after_check;
ALTER TABLE tenants DROP CONSTRAINT tenants_status_check;
ALTER TABLE tenants ADD CONSTRAINT tenants_status_check
    CHECK (status IN ('provisioning', 'active', 'suspended', 'moving'));
ALTER TABLE tenants DROP COLUMN delete_after;
