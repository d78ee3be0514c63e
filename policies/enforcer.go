package policies

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/casbin/casbin/v2"
	"github.com/casbin/casbin/v2/model"
	"github.com/casbin/casbin/v2/persist"
	"github.com/casbin/casbin/v2/util"
	gormadapter "github.com/casbin/gorm-adapter/v3"
	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"gorm.io/gorm"

	"marquee/migrations"
)

// ErrInvalidAssignment is returned for a role given at the wrong level or unknown.
var ErrInvalidAssignment = errors.New("invalid role assignment")

// Enforcer decides every request. Each chain's policy is loaded from the
// database on its first request and kept in a casbin enforcer of its own,
// current across server instances by a Redis watcher: a change made on one
// instance makes the others drop that chain's copy and load it again on its
// next request; policy is never read per request.
//
// One enforcer per chain, not one for the fleet: casbin evaluates the
// matcher against every policy rule it holds, and each chain brings ~150
// default grants, so a single enforcer made every decision cost grow with
// the number of chains (measured by `marquee bench fleet`: 0.36 ms at 10
// chains, 65 ms at 1,000). A chain's decisions now scan its own rules only.
type Enforcer struct {
	db      *gorm.DB
	adapter *gormadapter.Adapter // writes; reads go through chainAdapter
	w       *redisWatcher
	log     *slog.Logger
	chains  sync.Map // tenant slug → *chainPolicy
}

// chainPolicy is one chain's loaded policy and its decision cache.
type chainPolicy struct {
	ready chan struct{} // closed once e or err is set
	e     *casbin.SyncedEnforcer
	err   error
	// mu orders local changes of this chain with each other.
	mu sync.Mutex
	// decisions caches Allowed's answers: the answers change only when
	// policy does. Every local change bumps gen after it is applied; an
	// entry counts only when made under the current gen (its gen read before
	// casbin was asked), so an answer computed across a change is never
	// served after it. A change announced by another instance drops the
	// whole chainPolicy instead.
	decisions sync.Map // subject|domain|obj|act → decision
	gen       atomic.Uint64
	cached    atomic.Int64
}

type decision struct {
	ok  bool
	gen uint64
}

// maxDecisions bounds each chain's decision cache; past it, the cache starts over.
const maxDecisions = 50_000

// changed forgets every cached decision of the chain: called after each local change.
func (cp *chainPolicy) changed() {
	cp.gen.Add(1)
	cp.decisions.Clear()
	cp.cached.Store(0)
}

// NewEnforcer prepares policy decisions over control.casbin_rule and
// subscribes to changes made by other instances.
func NewEnforcer(ctx context.Context, db *gorm.DB, rdb redis.UniversalClient, deployment string, log *slog.Logger) (*Enforcer, error) {
	if _, err := model.NewModelFromString(modelText); err != nil {
		return nil, fmt.Errorf("casbin model: %w", err)
	}
	adb := db.Session(&gorm.Session{NewDB: true})
	gormadapter.TurnOffAutoMigrate(adb)
	adapter, err := gormadapter.NewAdapterByDBUseTableName(adb, "", ruleTable)
	if err != nil {
		return nil, fmt.Errorf("casbin adapter: %w", err)
	}
	w, err := newRedisWatcher(ctx, rdb, deployment, log)
	if err != nil {
		return nil, err
	}
	en := &Enforcer{db: adb, adapter: adapter, w: w, log: log}
	w.onChange(en.forget)
	return en, nil
}

// ruleTable is where casbin's rules live.
const ruleTable = migrations.ControlSchema + ".casbin_rule"

// RuleTable is the policy table, for the core's checks that must read the
// rules as committed (not an instance's loaded copy).
const RuleTable = ruleTable

// Close stops listening for policy changes.
func (en *Enforcer) Close() { en.w.Close() }

// forget drops a chain's loaded policy ("" drops every chain's), so its
// next request loads it again: called when another instance changed it.
func (en *Enforcer) forget(tenant string) {
	if tenant != "" {
		en.chains.Delete(tenant)
		return
	}
	en.chains.Clear()
}

// Forget drops a chain's loaded policy here and on every other instance
// (a deleted chain).
func (en *Enforcer) Forget(tenant string) {
	en.forget(tenant)
	_ = en.w.announce(tenant)
}

// chain returns a tenant's policy, loading it on first use. Concurrent
// first requests share one load; a failed load is not kept.
func (en *Enforcer) chain(tenant string) (*chainPolicy, error) {
	v, loaded := en.chains.Load(tenant)
	if !loaded {
		fresh := &chainPolicy{ready: make(chan struct{})}
		if v, loaded = en.chains.LoadOrStore(tenant, fresh); !loaded {
			fresh.e, fresh.err = en.load(tenant)
			close(fresh.ready)
		}
	}
	cp := v.(*chainPolicy)
	<-cp.ready
	if cp.err != nil {
		en.chains.CompareAndDelete(tenant, cp)
		return nil, cp.err
	}
	return cp, nil
}

// load builds a casbin enforcer over one tenant's rules.
func (en *Enforcer) load(tenant string) (*casbin.SyncedEnforcer, error) {
	m, err := model.NewModelFromString(modelText)
	if err != nil {
		return nil, fmt.Errorf("casbin model: %w", err)
	}
	e, err := casbin.NewSyncedEnforcer(m)
	if err != nil {
		return nil, fmt.Errorf("casbin enforcer: %w", err)
	}
	e.SetAdapter(&chainAdapter{Adapter: en.adapter, db: en.db, tenant: tenant})
	e.AddNamedDomainMatchingFunc("g", "keyMatch", util.KeyMatch)
	if err := e.LoadPolicy(); err != nil {
		return nil, fmt.Errorf("load policy of %s: %w", tenant, err)
	}
	return e, nil
}

// tenantOfDomain returns the chain a domain ("<tenant>/<venue>" or
// "<tenant>/*") belongs to.
func tenantOfDomain(domain string) (string, bool) {
	tenant, _, ok := strings.Cut(domain, "/")
	return tenant, ok && tenant != ""
}

// Allowed reports whether subject may do act on obj in domain.
func (en *Enforcer) Allowed(subject, domain, obj, act string) (bool, error) {
	tenant, ok := tenantOfDomain(domain)
	if !ok {
		return false, fmt.Errorf("policy domain %q names no chain", domain)
	}
	cp, err := en.chain(tenant)
	if err != nil {
		return false, err
	}
	key := subject + "|" + domain + "|" + obj + "|" + act
	gen := cp.gen.Load()
	if v, ok := cp.decisions.Load(key); ok && v.(decision).gen == gen {
		return v.(decision).ok, nil
	}
	allowed, err := enforce(cp.e, subject, domain, obj, act)
	if err != nil {
		return allowed, err
	}
	if cp.cached.Add(1) > maxDecisions {
		cp.decisions.Clear()
		cp.cached.Store(0)
	}
	cp.decisions.Store(key, decision{ok: allowed, gen: gen})
	return allowed, nil
}

func enforce(e *casbin.SyncedEnforcer, subject, domain, obj, act string) (bool, error) {
	ok, err := e.Enforce(subject, domain, obj, act)
	if old, renamed := renamedObjects[obj]; renamed && !ok && err == nil {
		return e.Enforce(subject, domain, old, act) // a rule written by the previous release (see renamedObjects)
	}
	return ok, err
}

// change applies fn to a chain's policy under its lock, then forgets the
// chain's cached decisions and tells the other instances.
func (en *Enforcer) change(tenant string, fn func(e *casbin.SyncedEnforcer) error) error {
	cp, err := en.chain(tenant)
	if err != nil {
		return err
	}
	cp.mu.Lock()
	defer cp.mu.Unlock()
	err = fn(cp.e)
	cp.changed()
	_ = en.w.announce(tenant)
	return err
}

// InstallDefaults writes the default grants for one tenant's domain.
// Existing rows are kept, so it is safe to run again.
func (en *Enforcer) InstallDefaults(tenant string, grants []Grant) error {
	rules := make([][]string, 0, len(grants))
	for _, g := range grants {
		rules = append(rules, []string{g.Role, ChainDomain(tenant), g.Object, g.Action})
		if legacy, renamed := renamedObjects[g.Object]; renamed {
			// Instances of the previous release still serve this tenant during the rollout.
			rules = append(rules, []string{g.Role, ChainDomain(tenant), legacy, g.Action})
		}
	}
	return en.change(tenant, func(e *casbin.SyncedEnforcer) error {
		_, err := e.AddPoliciesEx(rules)
		return err
	})
}

// Assign gives a user a role. The domain is built from the tenant, never
// taken from input, so an assignment cannot reach outside its tenant.
func (en *Enforcer) Assign(tenant string, a Assignment) error {
	dom, err := domainFor(tenant, a)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidAssignment, err)
	}
	if _, err := uuid.Parse(a.UserID); err != nil {
		return fmt.Errorf("%w: user id is not a UUID", ErrInvalidAssignment)
	}
	return en.change(tenant, func(e *casbin.SyncedEnforcer) error {
		_, err := e.AddGroupingPolicy(Subject(tenant, a.UserID), a.Role, dom)
		return err
	})
}

// Unassign removes a role; it reports whether the user held it.
func (en *Enforcer) Unassign(tenant string, a Assignment) (bool, error) {
	dom, err := domainFor(tenant, a)
	if err != nil {
		return false, fmt.Errorf("%w: %v", ErrInvalidAssignment, err)
	}
	var held bool
	err = en.change(tenant, func(e *casbin.SyncedEnforcer) error {
		held, err = e.RemoveGroupingPolicy(Subject(tenant, a.UserID), a.Role, dom)
		return err
	})
	return held, err
}

// Assignments lists the roles held in a tenant, optionally of one user.
func (en *Enforcer) Assignments(tenant, userID string) ([]Assignment, error) {
	cp, err := en.chain(tenant)
	if err != nil {
		return nil, err
	}
	var rows [][]string
	if userID != "" {
		rows, err = cp.e.GetFilteredGroupingPolicy(0, Subject(tenant, userID))
	} else {
		rows, err = cp.e.GetGroupingPolicy()
	}
	if err != nil {
		return nil, err
	}
	prefix := "u:" + tenant + ":"
	out := []Assignment{}
	for _, r := range rows {
		if len(r) < 3 || !strings.HasPrefix(r[0], prefix) || !strings.HasPrefix(r[2], tenant+"/") {
			continue
		}
		a := Assignment{UserID: strings.TrimPrefix(r[0], prefix), Role: r[1]}
		if v := strings.TrimPrefix(r[2], tenant+"/"); v != "*" {
			a.Venue = v
		}
		out = append(out, a)
	}
	return out, nil
}

// Reload forgets every chain's loaded policy: each is read again from the
// database on its next request (after rules were written by SQL, as
// migrations do).
func (en *Enforcer) Reload() error {
	en.forget("")
	return nil
}

// chainAdapter reads one chain's rules; writes go to the shared adapter.
// A chain's rules are those in its domains: grants (p) by their domain
// (v1), role assignments (g) by theirs (v2).
type chainAdapter struct {
	*gormadapter.Adapter
	db     *gorm.DB
	tenant string
}

func (a *chainAdapter) LoadPolicy(m model.Model) error {
	var rows []gormadapter.CasbinRule
	// Indexed by control migration 00123.
	err := a.db.Table(ruleTable).
		Where("(ptype = 'p' AND split_part(v1, '/', 1) = ?) OR (ptype = 'g' AND split_part(v2, '/', 1) = ?)", a.tenant, a.tenant).
		Order("id").Find(&rows).Error
	if err != nil {
		return err
	}
	for _, r := range rows {
		rule := []string{r.Ptype, r.V0, r.V1, r.V2, r.V3, r.V4, r.V5}
		for len(rule) > 1 && rule[len(rule)-1] == "" {
			rule = rule[:len(rule)-1]
		}
		if err := persist.LoadPolicyArray(rule, m); err != nil {
			return err
		}
	}
	return nil
}

// SavePolicy would replace every chain's rules with this one's: refused.
func (a *chainAdapter) SavePolicy(model.Model) error {
	return errors.New("policies: a chain's policy is saved rule by rule, never whole")
}
