-- The core's mail grants (policies.CoreGrants, object mail) for the chains
-- that exist already; new chains get them when provisioned. Rules present
-- already are kept.

-- +goose Up
INSERT INTO casbin_rule (ptype, v0, v1, v2, v3)
SELECT 'p', g.role, t.slug || '/*', g.object, g.action
FROM tenants t
CROSS JOIN (VALUES
    ('chain_admin', 'mail', 'read'),
    ('support', 'mail', 'read'),
    ('chain_admin', 'mail', 'write'),
    ('support', 'mail', 'write')
) AS g (role, object, action)
ON CONFLICT DO NOTHING;

-- +goose Down
DELETE FROM casbin_rule WHERE ptype = 'p' AND v2 = 'mail';
