-- Names that scale, expand step: each module's permission objects live in its
-- namespace (venues -> calendar.venues, events -> calendar.events, holds ->
-- calendar.holds, inventory -> inventory.catalogue, orders -> inventory.orders;
-- inventory.waiting_room already was). Core objects (portal, users,
-- role_assignments, ledger, support_access, "*") keep their names.
--
-- Every policy rule (ptype p) naming an old object, default or written by a
-- chain admin, in every domain, gets a namespaced copy; the old rules stay, so
-- during the rollout the code before this release (old names) and this one
-- (namespaced) both authorize the same requests. Role assignments (g rules)
-- name no object and are untouched. Control migrations run when a process
-- starts (app.New) before its enforcer loads policy, so every process of
-- this release loads the copies; processes of the old release keep reading
-- the old rules they already hold.
--
-- The contract step (migrations/contract/control/00129) copies again whatever
-- old code wrote meanwhile, then deletes the old rules.

-- +goose Up
INSERT INTO casbin_rule (ptype, v0, v1, v2, v3, v4, v5)
SELECT r.ptype, r.v0, r.v1, m.new, r.v3, r.v4, r.v5
FROM casbin_rule r
JOIN (VALUES ('venues', 'calendar.venues'), ('events', 'calendar.events'), ('holds', 'calendar.holds'),
             ('inventory', 'inventory.catalogue'), ('orders', 'inventory.orders')) AS m (old, new) ON r.v2 = m.old
WHERE r.ptype = 'p'
ON CONFLICT DO NOTHING;

-- +goose Down
DELETE FROM casbin_rule r
USING (VALUES ('venues', 'calendar.venues'), ('events', 'calendar.events'), ('holds', 'calendar.holds'),
              ('inventory', 'inventory.catalogue'), ('orders', 'inventory.orders')) AS m (old, new)
WHERE r.ptype = 'p' AND r.v2 = m.new;
