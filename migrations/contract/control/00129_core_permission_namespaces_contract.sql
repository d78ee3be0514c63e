-- Names that scale, contract step of control 00070 (permission namespaces).
--
-- NOT APPLIED YET: this file lives outside control/ and is not embedded. Move
-- it into control/ in the release after the one that shipped 00070, once no
-- instance of the older code runs (it authorizes by the old names only).
-- Renumber it above any control migration shipped meanwhile.
--
-- First it copies, once more, every old-named rule into the namespace: rules
-- that old instances wrote during the rollout (e.g. defaults of a tenant they
-- provisioned) are kept. Then it deletes the old-named rules. Running
-- instances keep the deleted rules in memory until their next reload, which
-- is harmless: no code asks for those objects any more. The same release
-- empties policies.renamedObjects (the double write of default grants and the
-- fallback to old names in Enforcer.Allowed).

-- +goose Up
INSERT INTO casbin_rule (ptype, v0, v1, v2, v3, v4, v5)
SELECT r.ptype, r.v0, r.v1, m.new, r.v3, r.v4, r.v5
FROM casbin_rule r
JOIN (VALUES ('venues', 'calendar.venues'), ('events', 'calendar.events'), ('holds', 'calendar.holds'),
             ('inventory', 'inventory.catalogue'), ('orders', 'inventory.orders')) AS m (old, new) ON r.v2 = m.old
WHERE r.ptype = 'p'
ON CONFLICT DO NOTHING;

DELETE FROM casbin_rule r
USING (VALUES ('venues'), ('events'), ('holds'), ('inventory'), ('orders')) AS m (old)
WHERE r.ptype = 'p' AND r.v2 = m.old;

-- +goose Down
INSERT INTO casbin_rule (ptype, v0, v1, v2, v3, v4, v5)
SELECT r.ptype, r.v0, r.v1, m.old, r.v3, r.v4, r.v5
FROM casbin_rule r
JOIN (VALUES ('venues', 'calendar.venues'), ('events', 'calendar.events'), ('holds', 'calendar.holds'),
             ('inventory', 'inventory.catalogue'), ('orders', 'inventory.orders')) AS m (old, new) ON r.v2 = m.new
WHERE r.ptype = 'p'
ON CONFLICT DO NOTHING;
