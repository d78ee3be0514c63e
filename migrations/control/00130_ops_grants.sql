-- Ops' default grants (modules/ops/module.go grants(), objects ops.*) for
-- the chains that exist already: defaults are written when a chain is
-- provisioned, so chains made before this release would otherwise give their
-- ops leads and door staff nothing on the dashboard. The list is the same as
-- the module's (TestGrantsMigrationMatchesModule keeps them equal). Rules a
-- chain admin wrote are kept; a rule present already is skipped.

-- +goose Up
INSERT INTO casbin_rule (ptype, v0, v1, v2, v3)
SELECT 'p', g.role, t.slug || '/*', g.object, g.action
FROM tenants t
CROSS JOIN (VALUES
    ('door_staff', 'ops.dashboard', 'read'),
    ('chain_admin', 'ops.dashboard', 'read'),
    ('venue_manager', 'ops.dashboard', 'read'),
    ('ops_lead', 'ops.dashboard', 'read'),
    ('security_lead', 'ops.dashboard', 'read'),
    ('support', 'ops.dashboard', 'read'),
    ('door_staff', 'ops.occupancy', 'write'),
    ('chain_admin', 'ops.occupancy', 'write'),
    ('venue_manager', 'ops.occupancy', 'write'),
    ('ops_lead', 'ops.occupancy', 'write'),
    ('security_lead', 'ops.occupancy', 'write'),
    ('support', 'ops.occupancy', 'write'),
    ('door_staff', 'ops.incidents', 'read'),
    ('chain_admin', 'ops.incidents', 'read'),
    ('venue_manager', 'ops.incidents', 'read'),
    ('ops_lead', 'ops.incidents', 'read'),
    ('security_lead', 'ops.incidents', 'read'),
    ('support', 'ops.incidents', 'read'),
    ('door_staff', 'ops.incidents', 'write'),
    ('chain_admin', 'ops.incidents', 'write'),
    ('venue_manager', 'ops.incidents', 'write'),
    ('ops_lead', 'ops.incidents', 'write'),
    ('security_lead', 'ops.incidents', 'write'),
    ('support', 'ops.incidents', 'write'),
    ('chain_admin', 'ops.incident_handling', 'read'),
    ('venue_manager', 'ops.incident_handling', 'read'),
    ('ops_lead', 'ops.incident_handling', 'read'),
    ('security_lead', 'ops.incident_handling', 'read'),
    ('support', 'ops.incident_handling', 'read'),
    ('chain_admin', 'ops.incident_handling', 'write'),
    ('venue_manager', 'ops.incident_handling', 'write'),
    ('ops_lead', 'ops.incident_handling', 'write'),
    ('security_lead', 'ops.incident_handling', 'write'),
    ('support', 'ops.incident_handling', 'write'),
    ('chain_admin', 'ops.settings', 'write'),
    ('venue_manager', 'ops.settings', 'write'),
    ('ops_lead', 'ops.settings', 'write'),
    ('support', 'ops.settings', 'write'),
    ('chain_admin', 'ops.revenue', 'read'),
    ('finance', 'ops.revenue', 'read'),
    ('venue_manager', 'ops.revenue', 'read'),
    ('ops_lead', 'ops.revenue', 'read'),
    ('support', 'ops.revenue', 'read'),
    ('finance', 'ops.dashboard', 'read'),
    ('chain_admin', 'ops.pos', 'read'),
    ('finance', 'ops.pos', 'read'),
    ('support', 'ops.pos', 'read'),
    ('chain_admin', 'ops.pos', 'write')
) AS g (role, object, action)
ON CONFLICT DO NOTHING;

-- +goose Down
DELETE FROM casbin_rule WHERE ptype = 'p' AND v2 LIKE 'ops.%';
