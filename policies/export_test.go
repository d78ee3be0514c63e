package policies

// LoadedRules counts the rules (grants and role assignments) the enforcer
// holds in memory for one chain, loading it if needed.
func LoadedRules(en *Enforcer, tenant string) (int, error) {
	cp, err := en.chain(tenant)
	if err != nil {
		return 0, err
	}
	p, err := cp.e.GetPolicy()
	if err != nil {
		return 0, err
	}
	g, err := cp.e.GetGroupingPolicy()
	return len(p) + len(g), err
}

// IsLoaded reports whether a chain's policy is in memory now.
func IsLoaded(en *Enforcer, tenant string) bool {
	_, ok := en.chains.Load(tenant)
	return ok
}
