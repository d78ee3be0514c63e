-- Each server instance loads one chain's policy at a time (policies.Enforcer
-- keeps an enforcer per chain), by the chain part of the rule's domain:
-- grants (p) by v1, role assignments (g) by v2. Without these, each load
-- reads every chain's rules. Safe to run twice (see 00120).

-- +goose Up
CREATE INDEX IF NOT EXISTS casbin_rule_grants_by_chain ON casbin_rule (split_part(v1, '/', 1)) WHERE ptype = 'p';
CREATE INDEX IF NOT EXISTS casbin_rule_roles_by_chain ON casbin_rule (split_part(v2, '/', 1)) WHERE ptype = 'g';

-- +goose Down
DROP INDEX casbin_rule_grants_by_chain, casbin_rule_roles_by_chain;
