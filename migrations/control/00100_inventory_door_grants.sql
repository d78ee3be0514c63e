-- The door's default grants (modules/inventory/module.go grants(), object
-- inventory.door) for the chains that exist already: defaults are written
-- when a chain is provisioned, so chains made before this release would
-- otherwise give their door staff nothing. The list is the same as the
-- module's (TestDoorGrantsMigrationMatchesModule keeps them equal). Rules
-- a chain admin wrote are kept; a rule present already is skipped.

-- +goose Up
INSERT INTO casbin_rule (ptype, v0, v1, v2, v3)
SELECT 'p', g.role, t.slug || '/*', 'inventory.door', g.action
FROM tenants t
CROSS JOIN (VALUES
    ('chain_admin', 'read'), ('promoter', 'read'), ('venue_manager', 'read'), ('box_office', 'read'), ('ops_lead', 'read'),
    ('security_lead', 'read'), ('door_staff', 'read'), ('support', 'read'),
    ('chain_admin', 'write'), ('venue_manager', 'write'), ('box_office', 'write'), ('ops_lead', 'write'), ('door_staff', 'write')
) AS g (role, action)
ON CONFLICT DO NOTHING;

-- +goose Down
DELETE FROM casbin_rule WHERE ptype = 'p' AND v2 = 'inventory.door';
