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
	"github.com/casbin/casbin/v2/util"
	gormadapter "github.com/casbin/gorm-adapter/v3"
	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"gorm.io/gorm"

	"marquee/migrations"
)

// ErrInvalidAssignment is returned for a role given at the wrong level or unknown.
var ErrInvalidAssignment = errors.New("invalid role assignment")

// Enforcer decides every request. Policy is loaded once at start and kept
// current across server instances by a Redis watcher: a change made on one
// instance reloads it on all others; policy is never read per request.
type Enforcer struct {
	e *casbin.SyncedEnforcer
	w *redisWatcher
	// mu orders reloads with local changes. SyncedEnforcer.LoadPolicy reads
	// the table, releases its lock, then swaps the model in: a local change
	// made in between would vanish from memory until the next reload.
	mu sync.Mutex
	// decisions caches Allowed's answers. casbin evaluates the matcher
	// against every policy rule of every chain on each call (measured: 15%
	// of a door scan's CPU with 16 chains, growing with each chain), while
	// the answers change only when policy does. Every change, local or
	// announced by the watcher, bumps gen after it is applied; an entry
	// counts only when made under the current gen (its gen read before
	// casbin was asked), so an answer computed across a change is never
	// served after it.
	decisions sync.Map // subject|domain|obj|act → decision
	gen       atomic.Uint64
	cached    atomic.Int64
}

type decision struct {
	ok  bool
	gen uint64
}

// maxDecisions bounds the decision cache; past it, the cache starts over.
const maxDecisions = 200_000

// changed forgets every cached decision: called after each policy change.
func (en *Enforcer) changed() {
	en.gen.Add(1)
	en.decisions.Clear()
	en.cached.Store(0)
}

// NewEnforcer loads policy from control.casbin_rule and subscribes to changes.
func NewEnforcer(ctx context.Context, db *gorm.DB, rdb *redis.Client, deployment string, log *slog.Logger) (*Enforcer, error) {
	m, err := model.NewModelFromString(modelText)
	if err != nil {
		return nil, fmt.Errorf("casbin model: %w", err)
	}
	adb := db.Session(&gorm.Session{NewDB: true})
	gormadapter.TurnOffAutoMigrate(adb)
	adapter, err := gormadapter.NewAdapterByDBUseTableName(adb, "", migrations.ControlSchema+".casbin_rule")
	if err != nil {
		return nil, fmt.Errorf("casbin adapter: %w", err)
	}
	e, err := casbin.NewSyncedEnforcer(m, adapter)
	if err != nil {
		return nil, fmt.Errorf("casbin enforcer: %w", err)
	}
	e.AddNamedDomainMatchingFunc("g", "keyMatch", util.KeyMatch)
	if err := e.LoadPolicy(); err != nil {
		return nil, fmt.Errorf("load policy: %w", err)
	}
	w, err := newRedisWatcher(ctx, rdb, deployment, log)
	if err != nil {
		return nil, err
	}
	if err := e.SetWatcher(w); err != nil {
		return nil, err
	}
	en := &Enforcer{e: e, w: w}
	// SetWatcher installs the unsynchronised Enforcer.LoadPolicy as the
	// callback; reload through the synced enforcer instead, under its lock
	// and ours.
	if err := w.SetUpdateCallback(func(string) {
		if err := en.Reload(); err != nil {
			log.Error("policy reload failed", "err", err)
		}
	}); err != nil {
		return nil, err
	}
	return en, nil
}

// Close stops listening for policy changes.
func (en *Enforcer) Close() { en.w.Close() }

// Allowed reports whether subject may do act on obj in domain.
func (en *Enforcer) Allowed(subject, domain, obj, act string) (bool, error) {
	key := subject + "|" + domain + "|" + obj + "|" + act
	gen := en.gen.Load()
	if v, ok := en.decisions.Load(key); ok && v.(decision).gen == gen {
		return v.(decision).ok, nil
	}
	ok, err := en.enforce(subject, domain, obj, act)
	if err != nil {
		return ok, err
	}
	if en.cached.Add(1) > maxDecisions {
		en.decisions.Clear()
		en.cached.Store(0)
	}
	en.decisions.Store(key, decision{ok: ok, gen: gen})
	return ok, nil
}

func (en *Enforcer) enforce(subject, domain, obj, act string) (bool, error) {
	ok, err := en.e.Enforce(subject, domain, obj, act)
	if old, renamed := renamedObjects[obj]; renamed && !ok && err == nil {
		return en.e.Enforce(subject, domain, old, act) // a rule written by the previous release (see renamedObjects)
	}
	return ok, err
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
	en.mu.Lock()
	defer en.mu.Unlock()
	defer en.changed()
	_, err := en.e.AddPoliciesEx(rules)
	return err
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
	en.mu.Lock()
	defer en.mu.Unlock()
	defer en.changed()
	_, err = en.e.AddGroupingPolicy(Subject(tenant, a.UserID), a.Role, dom)
	return err
}

// Unassign removes a role; it reports whether the user held it.
func (en *Enforcer) Unassign(tenant string, a Assignment) (bool, error) {
	dom, err := domainFor(tenant, a)
	if err != nil {
		return false, fmt.Errorf("%w: %v", ErrInvalidAssignment, err)
	}
	en.mu.Lock()
	defer en.mu.Unlock()
	defer en.changed()
	return en.e.RemoveGroupingPolicy(Subject(tenant, a.UserID), a.Role, dom)
}

// Assignments lists the roles held in a tenant, optionally of one user.
func (en *Enforcer) Assignments(tenant, userID string) ([]Assignment, error) {
	var rows [][]string
	var err error
	if userID != "" {
		rows, err = en.e.GetFilteredGroupingPolicy(0, Subject(tenant, userID))
	} else {
		rows, err = en.e.GetGroupingPolicy()
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

// Reload rereads all policy from the database.
func (en *Enforcer) Reload() error {
	en.mu.Lock()
	defer en.mu.Unlock()
	defer en.changed()
	return en.e.LoadPolicy()
}
