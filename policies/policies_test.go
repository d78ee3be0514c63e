package policies_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"marquee/app/apptest"
	"marquee/policies"
)

var dbURL string

func TestMain(m *testing.M) { apptest.Main(m, "policies", &dbURL) }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func newID() string { return uuid.NewString() }

func mustAssign(t *testing.T, e *policies.Enforcer, tenant, user, role, venue string) {
	t.Helper()
	if err := e.Assign(tenant, policies.Assignment{UserID: user, Role: role, Venue: venue}); err != nil {
		t.Fatalf("assign %s %s@%s: %v", tenant, role, venue, err)
	}
}

func ruleCount(t *testing.T, env *apptest.Env) int64 {
	t.Helper()
	var n int64
	if err := env.App.DB.Raw("SELECT count(*) FROM control.casbin_rule").Scan(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n
}

// TestModel checks the role model through the real enforcer, policy stored
// in PostgreSQL, for two tenants whose names are prefixes of each other.
func TestModel(t *testing.T) {
	env := apptest.Start(t, dbURL, apptest.Options{})
	e := env.App.Enforcer
	const a, ax = "acme", "acme-x"
	for _, tn := range []string{a, ax} {
		if err := e.InstallDefaults(tn, policies.CoreGrants()); err != nil {
			t.Fatal(err)
		}
	}
	before := ruleCount(t, env)
	if err := e.InstallDefaults(a, policies.CoreGrants()); err != nil {
		t.Fatalf("InstallDefaults again: %v", err)
	}
	if after := ruleCount(t, env); after != before {
		t.Fatalf("InstallDefaults again added %d rules", after-before)
	}

	v1, v2 := newID(), newID()
	owner, admin, finance, promoter, manager, boxOffice, stranger := newID(), newID(), newID(), newID(), newID(), newID(), newID()
	mustAssign(t, e, a, owner, policies.RoleOwner, "")
	mustAssign(t, e, a, admin, policies.RoleChainAdmin, "")
	mustAssign(t, e, a, finance, policies.RoleFinance, "")
	mustAssign(t, e, a, promoter, policies.RolePromoter, "")
	mustAssign(t, e, a, manager, policies.RoleVenueManager, v1)
	mustAssign(t, e, a, boxOffice, policies.RoleBoxOffice, v2)
	// Tenant acme-x has its own staff, with the same role names and even the
	// same user id as acme's owner.
	xOwner, xAdmin, xManager := newID(), newID(), newID()
	mustAssign(t, e, ax, xOwner, policies.RoleOwner, "")
	mustAssign(t, e, ax, xAdmin, policies.RoleChainAdmin, "")
	mustAssign(t, e, ax, xManager, policies.RoleVenueManager, v1)
	mustAssign(t, e, ax, owner, policies.RolePromoter, "")

	sub := policies.Subject
	chain := policies.ChainDomain
	venue := policies.VenueDomain
	cases := []struct {
		name                   string
		subject, dom, obj, act string
		want                   bool
	}{
		// owner: everything, everywhere in its chain
		{"owner chain anything", sub(a, owner), chain(a), "anything", "delete", true},
		{"owner users write", sub(a, owner), chain(a), "users", policies.Write, true},
		{"owner at v1", sub(a, owner), venue(a, v1), "ledger", policies.Write, true},
		{"owner at v2", sub(a, owner), venue(a, v2), "portal", policies.Read, true},
		{"owner at unknown venue of its chain", sub(a, owner), venue(a, newID()), "portal", policies.Read, true},
		{"owner of acme in acme-x chain", sub(a, owner), chain(ax), "portal", policies.Read, false},
		{"owner of acme at acme-x venue", sub(a, owner), venue(ax, v1), "users", policies.Write, false},
		{"owner of acme is only promoter in acme-x", sub(ax, owner), chain(ax), "users", policies.Write, false},
		{"owner of acme is promoter in acme-x", sub(ax, owner), chain(ax), "portal", policies.Read, true},
		// chain_admin
		{"admin users write", sub(a, admin), chain(a), "users", policies.Write, true},
		{"admin users read", sub(a, admin), chain(a), "users", policies.Read, true},
		{"admin assignments write", sub(a, admin), chain(a), "role_assignments", policies.Write, true},
		{"admin users write at venue", sub(a, admin), venue(a, v2), "users", policies.Write, true},
		{"admin ledger read", sub(a, admin), chain(a), "ledger", policies.Read, false},
		{"admin unknown object", sub(a, admin), chain(a), "payouts", policies.Write, false},
		{"admin of acme in acme-x", sub(a, admin), chain(ax), "users", policies.Write, false},
		// finance
		{"finance ledger read", sub(a, finance), chain(a), "ledger", policies.Read, true},
		{"finance ledger read at venue", sub(a, finance), venue(a, v1), "ledger", policies.Read, true},
		{"finance ledger write", sub(a, finance), chain(a), "ledger", policies.Write, false},
		{"finance users read", sub(a, finance), chain(a), "users", policies.Read, false},
		{"finance portal", sub(a, finance), chain(a), "portal", policies.Read, true},
		// promoter
		{"promoter portal", sub(a, promoter), chain(a), "portal", policies.Read, true},
		{"promoter portal at venue", sub(a, promoter), venue(a, v2), "portal", policies.Read, true},
		{"promoter users read", sub(a, promoter), chain(a), "users", policies.Read, false},
		{"promoter ledger", sub(a, promoter), chain(a), "ledger", policies.Read, false},
		{"promoter assignments", sub(a, promoter), chain(a), "role_assignments", policies.Read, false},
		// venue roles: their venue only
		{"manager at v1", sub(a, manager), venue(a, v1), "portal", policies.Read, true},
		{"manager at v2", sub(a, manager), venue(a, v2), "portal", policies.Read, false},
		{"manager at chain level", sub(a, manager), chain(a), "portal", policies.Read, false},
		{"manager users at v1", sub(a, manager), venue(a, v1), "users", policies.Read, false},
		{"manager at v1 of acme-x", sub(a, manager), venue(ax, v1), "portal", policies.Read, false},
		{"box office at v2", sub(a, boxOffice), venue(a, v2), "portal", policies.Read, true},
		{"box office at v1", sub(a, boxOffice), venue(a, v1), "portal", policies.Read, false},
		{"box office at v2 prefix", sub(a, boxOffice), venue(a, v2[:8]), "portal", policies.Read, false},
		{"box office at v2 suffix", sub(a, boxOffice), venue(a, v2+"0"), "portal", policies.Read, false},
		// acme-x staff never reach acme: the keyMatch prefix trap
		{"acme-x owner in acme chain", sub(ax, xOwner), chain(a), "portal", policies.Read, false},
		{"acme-x owner at acme venue", sub(ax, xOwner), venue(a, v1), "users", policies.Write, false},
		{"acme-x owner in its chain", sub(ax, xOwner), chain(ax), "users", policies.Write, true},
		{"acme-x admin in acme", sub(ax, xAdmin), chain(a), "users", policies.Write, false},
		{"acme-x manager at acme v1", sub(ax, xManager), venue(a, v1), "portal", policies.Read, false},
		{"acme-x manager at acme-x v1", sub(ax, xManager), venue(ax, v1), "portal", policies.Read, true},
		// a subject forged with the other tenant's prefix holds nothing
		{"acme-x owner id under acme prefix", sub(a, xOwner), chain(a), "portal", policies.Read, false},
		{"acme admin id under acme-x prefix", sub(ax, admin), chain(ax), "users", policies.Write, false},
		// the support role during a visit: read-only grants
		{"support portal", policies.RoleSupport, chain(a), "portal", policies.Read, true},
		{"support users read", policies.RoleSupport, chain(a), "users", policies.Read, true},
		{"support ledger", policies.RoleSupport, chain(a), "ledger", policies.Read, false},
		// deny by default
		{"stranger", sub(a, stranger), chain(a), "portal", policies.Read, false},
		{"stranger at venue", sub(a, stranger), venue(a, v1), "portal", policies.Read, false},
		{"role name as subject", policies.RoleOwner, chain("other"), "portal", policies.Read, false},
		{"tenant without policies", sub("other", owner), chain("other"), "portal", policies.Read, false},
	}
	for _, c := range cases {
		got, err := e.Allowed(c.subject, c.dom, c.obj, c.act)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if got != c.want {
			t.Errorf("%s: Allowed(%s, %s, %s, %s) = %v, want %v", c.name, c.subject, c.dom, c.obj, c.act, got, c.want)
		}
	}

	// Assignments lists only the tenant's own rows.
	got, err := e.Assignments(a, owner)
	if err != nil || len(got) != 1 || got[0] != (policies.Assignment{UserID: owner, Role: policies.RoleOwner}) {
		t.Fatalf("Assignments(acme, owner) = %+v, %v", got, err)
	}
	got, err = e.Assignments(ax, owner)
	if err != nil || len(got) != 1 || got[0] != (policies.Assignment{UserID: owner, Role: policies.RolePromoter}) {
		t.Fatalf("Assignments(acme-x, owner) = %+v, %v", got, err)
	}
	got, err = e.Assignments(a, manager)
	if err != nil || len(got) != 1 || got[0] != (policies.Assignment{UserID: manager, Role: policies.RoleVenueManager, Venue: v1}) {
		t.Fatalf("Assignments(acme, manager) = %+v, %v", got, err)
	}
	all, err := e.Assignments(a, "")
	if err != nil {
		t.Fatal(err)
	}
	var users []string
	for _, x := range all {
		users = append(users, x.UserID)
	}
	for _, u := range []string{owner, admin, finance, promoter, manager, boxOffice} {
		if !slices.Contains(users, u) {
			t.Errorf("Assignments(acme) misses %s", u)
		}
	}
	for _, u := range []string{xOwner, xAdmin, xManager} {
		if slices.Contains(users, u) {
			t.Errorf("Assignments(acme) lists acme-x user %s", u)
		}
	}
	if len(all) != 6 {
		t.Errorf("Assignments(acme) = %d rows, want 6: %+v", len(all), all)
	}

	// Unassign takes the right away; unassigning again reports false.
	if held, err := e.Unassign(a, policies.Assignment{UserID: manager, Role: policies.RoleVenueManager, Venue: v1}); err != nil || !held {
		t.Fatalf("Unassign: %v %v", held, err)
	}
	if ok, _ := e.Allowed(sub(a, manager), venue(a, v1), "portal", policies.Read); ok {
		t.Fatal("unassigned manager still allowed")
	}
	if held, err := e.Unassign(a, policies.Assignment{UserID: manager, Role: policies.RoleVenueManager, Venue: v1}); err != nil || held {
		t.Fatalf("second Unassign: %v %v", held, err)
	}
	// acme-x's manager at the same venue id is untouched.
	if ok, _ := e.Allowed(sub(ax, xManager), venue(ax, v1), "portal", policies.Read); !ok {
		t.Fatal("unassigning in acme changed acme-x")
	}
}

// TestGrantsMatrix derives the expected decision of every role for every
// object and action of CoreGrants, at chain level, at the role's venue and at
// another venue, and checks the enforcer agrees.
func TestGrantsMatrix(t *testing.T) {
	env := apptest.Start(t, dbURL, apptest.Options{})
	e := env.App.Enforcer
	const tn = "matrix"
	grants := policies.CoreGrants()
	if err := e.InstallDefaults(tn, grants); err != nil {
		t.Fatal(err)
	}
	has := func(role, obj, act string) bool {
		for _, g := range grants {
			if g.Role == role && (g.Object == "*" || g.Object == obj) && (g.Action == "*" || g.Action == act) {
				return true
			}
		}
		return false
	}
	type oa struct{ obj, act string }
	pairs := []oa{{"unknown_object", policies.Read}, {"portal", "delete"}}
	for _, g := range grants {
		if g.Object != "*" {
			pairs = append(pairs, oa{g.Object, policies.Read}, oa{g.Object, policies.Write})
		}
	}
	here, there := newID(), newID()
	checked := 0
	check := func(sub, dom, obj, act string, want bool) {
		t.Helper()
		got, err := e.Allowed(sub, dom, obj, act)
		if err != nil || got != want {
			t.Errorf("Allowed(%s, %s, %s, %s) = %v (%v), want %v", sub, dom, obj, act, got, err, want)
		}
		checked++
	}
	for _, role := range policies.ChainRoles {
		u := newID()
		mustAssign(t, e, tn, u, role, "")
		for _, p := range pairs {
			want := has(role, p.obj, p.act)
			check(policies.Subject(tn, u), policies.ChainDomain(tn), p.obj, p.act, want)
			check(policies.Subject(tn, u), policies.VenueDomain(tn, here), p.obj, p.act, want)
			check(policies.Subject(tn, u), policies.VenueDomain(tn, there), p.obj, p.act, want)
		}
	}
	for _, role := range policies.VenueRoles {
		u := newID()
		mustAssign(t, e, tn, u, role, here)
		for _, p := range pairs {
			check(policies.Subject(tn, u), policies.VenueDomain(tn, here), p.obj, p.act, has(role, p.obj, p.act))
			check(policies.Subject(tn, u), policies.VenueDomain(tn, there), p.obj, p.act, false)
			check(policies.Subject(tn, u), policies.ChainDomain(tn), p.obj, p.act, false)
		}
	}
	for _, p := range pairs {
		check(policies.RoleSupport, policies.ChainDomain(tn), p.obj, p.act, has(policies.RoleSupport, p.obj, p.act))
	}
	if !has(policies.RoleFinance, "ledger", policies.Read) || has(policies.RolePromoter, "users", policies.Read) {
		t.Fatal("CoreGrants lost its basic shape")
	}
	t.Logf("%d decisions checked", checked)
}

// TestAssignRejects: assignments at the wrong level, of unknown roles, with
// venue ids that would be patterns or paths, or with non-UUID users, are
// refused and store nothing.
func TestAssignRejects(t *testing.T) {
	env := apptest.Start(t, dbURL, apptest.Options{})
	e := env.App.Enforcer
	const tn = "reject"
	user, v := newID(), newID()
	before := ruleCount(t, env)
	cases := []struct {
		name string
		a    policies.Assignment
	}{
		{"chain role with venue", policies.Assignment{UserID: user, Role: policies.RoleOwner, Venue: v}},
		{"chain admin with venue", policies.Assignment{UserID: user, Role: policies.RoleChainAdmin, Venue: v}},
		{"venue role without venue", policies.Assignment{UserID: user, Role: policies.RoleVenueManager}},
		{"door staff without venue", policies.Assignment{UserID: user, Role: policies.RoleDoorStaff}},
		{"unknown role", policies.Assignment{UserID: user, Role: "root"}},
		{"unknown role at venue", policies.Assignment{UserID: user, Role: "root", Venue: v}},
		{"support is not assignable", policies.Assignment{UserID: user, Role: policies.RoleSupport}},
		{"empty role", policies.Assignment{UserID: user}},
		{"role in wrong case", policies.Assignment{UserID: user, Role: "Owner"}},
		{"venue wildcard", policies.Assignment{UserID: user, Role: policies.RoleVenueManager, Venue: "*"}},
		{"venue with wildcard", policies.Assignment{UserID: user, Role: policies.RoleVenueManager, Venue: v + "*"}},
		{"venue with slash", policies.Assignment{UserID: user, Role: policies.RoleVenueManager, Venue: "x/" + v}},
		{"venue escaping tenant", policies.Assignment{UserID: user, Role: policies.RoleBoxOffice, Venue: "../other/*"}},
		{"user not a uuid", policies.Assignment{UserID: "alice", Role: policies.RoleOwner}},
		{"user empty", policies.Assignment{UserID: "", Role: policies.RoleOwner}},
		{"user with injection", policies.Assignment{UserID: user + "' OR 1=1", Role: policies.RoleOwner}},
		{"user as pattern", policies.Assignment{UserID: "*", Role: policies.RoleOwner}},
	}
	for _, c := range cases {
		if err := e.Assign(tn, c.a); !errors.Is(err, policies.ErrInvalidAssignment) {
			t.Errorf("%s: Assign = %v, want ErrInvalidAssignment", c.name, err)
		}
	}
	for _, c := range cases[:13] {
		if _, err := e.Unassign(tn, c.a); !errors.Is(err, policies.ErrInvalidAssignment) {
			t.Errorf("%s: Unassign = %v, want ErrInvalidAssignment", c.name, err)
		}
	}
	if after := ruleCount(t, env); after != before {
		t.Fatalf("rejected assignments stored %d rules", after-before)
	}
	if got, _ := e.Assignments(tn, ""); len(got) != 0 {
		t.Fatalf("rejected assignments listed: %+v", got)
	}
	// The accepted forms, for contrast.
	mustAssign(t, e, tn, user, policies.RoleOwner, "")
	mustAssign(t, e, tn, user, policies.RoleDoorStaff, v)
	if got, _ := e.Assignments(tn, user); len(got) != 2 {
		t.Fatalf("accepted assignments: %+v", got)
	}
}

func waitAllowed(t *testing.T, e *policies.Enforcer, want bool, within time.Duration, sub, dom, obj, act string) time.Duration {
	t.Helper()
	return apptest.Eventually(t, within, fmt.Sprintf("Allowed(%s, %s, %s, %s) becoming %v", sub, dom, obj, act, want), func() bool {
		got, err := e.Allowed(sub, dom, obj, act)
		if err != nil {
			t.Fatal(err)
		}
		return got == want
	})
}

// TestChangesReachOtherInstances: two enforcers on one database and Redis
// are two server instances; a grant or revocation on either reaches the
// other within a second, including chain roles matched at venue domains
// after the reload.
func TestChangesReachOtherInstances(t *testing.T) {
	env := apptest.Start(t, dbURL, apptest.Options{})
	ctx := context.Background()
	e1 := env.App.Enforcer
	e2, err := policies.NewEnforcer(ctx, env.App.DB, env.App.Redis, env.App.Config.Deployment(), quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer e2.Close()
	const tn = "xinst"
	if err := e1.InstallDefaults(tn, policies.CoreGrants()); err != nil {
		t.Fatal(err)
	}
	promoter, manager, venue := newID(), newID(), newID()
	sub := policies.Subject(tn, promoter)
	dom := policies.VenueDomain(tn, venue)

	waitAllowed(t, e2, false, time.Second, sub, dom, "portal", policies.Read)
	mustAssign(t, e1, tn, promoter, policies.RolePromoter, "")
	took := waitAllowed(t, e2, true, time.Second, sub, dom, "portal", policies.Read)
	t.Logf("assignment reached the other instance in %v", took)
	if _, err := e1.Unassign(tn, policies.Assignment{UserID: promoter, Role: policies.RolePromoter}); err != nil {
		t.Fatal(err)
	}
	waitAllowed(t, e2, false, time.Second, sub, dom, "portal", policies.Read)

	// The other direction, with a venue role.
	msub := policies.Subject(tn, manager)
	mustAssign(t, e2, tn, manager, policies.RoleVenueManager, venue)
	waitAllowed(t, e1, true, time.Second, msub, dom, "portal", policies.Read)
	if ok, _ := e1.Allowed(msub, policies.ChainDomain(tn), "portal", policies.Read); ok {
		t.Fatal("venue role reached chain level after reload")
	}
	if _, err := e2.Unassign(tn, policies.Assignment{UserID: manager, Role: policies.RoleVenueManager, Venue: venue}); err != nil {
		t.Fatal(err)
	}
	waitAllowed(t, e1, false, time.Second, msub, dom, "portal", policies.Read)

	// A third instance started now loads everything from the database.
	mustAssign(t, e1, tn, promoter, policies.RoleFinance, "")
	e3, err := policies.NewEnforcer(ctx, env.App.DB, env.App.Redis, env.App.Config.Deployment(), quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer e3.Close()
	if ok, _ := e3.Allowed(sub, dom, "ledger", policies.Read); !ok {
		t.Fatal("a new instance does not see stored policy")
	}
}

// TestReloadUnderLoad: while one instance keeps changing policy, the other
// answers from many goroutines; its reloads never expose a half-loaded
// policy (a stable grant is always allowed, a stranger always denied), and
// the race detector sees no unsynchronised reload.
func TestReloadUnderLoad(t *testing.T) {
	env := apptest.Start(t, dbURL, apptest.Options{})
	ctx := context.Background()
	e1 := env.App.Enforcer
	e2, err := policies.NewEnforcer(ctx, env.App.DB, env.App.Redis, env.App.Config.Deployment(), quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer e2.Close()
	const tn = "churn"
	if err := e1.InstallDefaults(tn, policies.CoreGrants()); err != nil {
		t.Fatal(err)
	}
	owner, stranger, venue := newID(), newID(), newID()
	mustAssign(t, e1, tn, owner, policies.RoleOwner, "")
	waitAllowed(t, e2, true, time.Second, policies.Subject(tn, owner), policies.VenueDomain(tn, venue), "users", policies.Write)

	var (
		stop     atomic.Bool
		checks   atomic.Int64
		failures atomic.Int64
		wg       sync.WaitGroup
	)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				ok, err := e2.Allowed(policies.Subject(tn, owner), policies.VenueDomain(tn, venue), "users", policies.Write)
				if err != nil || !ok {
					failures.Add(1)
				}
				ok, err = e2.Allowed(policies.Subject(tn, stranger), policies.ChainDomain(tn), "portal", policies.Read)
				if err != nil || ok {
					failures.Add(1)
				}
				checks.Add(2)
			}
		}()
	}
	for range 30 {
		u := newID()
		mustAssign(t, e1, tn, u, policies.RoleDoorStaff, venue)
		if _, err := e1.Unassign(tn, policies.Assignment{UserID: u, Role: policies.RoleDoorStaff, Venue: venue}); err != nil {
			t.Fatal(err)
		}
	}
	// The readers keep checking until a last change has reached e2: every
	// reload before it has landed.
	last := newID()
	mustAssign(t, e1, tn, last, policies.RoleDoorStaff, venue)
	waitAllowed(t, e2, true, time.Second, policies.Subject(tn, last), policies.VenueDomain(tn, venue), "portal", policies.Read)
	stop.Store(true)
	wg.Wait()
	if failures.Load() != 0 {
		t.Fatalf("%d of %d decisions were wrong during reloads", failures.Load(), checks.Load())
	}
	if checks.Load() < 100 {
		t.Fatalf("only %d decisions made", checks.Load())
	}
}

// Answers are cached, and every change on this instance is seen by the
// very next question (a cached denial or grant never outlives a change).
func TestCachedDecisionsFollowChanges(t *testing.T) {
	env := apptest.Start(t, dbURL, apptest.Options{})
	e := env.App.Enforcer
	const tn = "cachedec"
	if err := e.InstallDefaults(tn, policies.CoreGrants()); err != nil {
		t.Fatal(err)
	}
	user, venue := newID(), newID()
	sub, dom := policies.Subject(tn, user), policies.VenueDomain(tn, venue)
	for range 3 {
		if ok, _ := e.Allowed(sub, dom, "portal", policies.Read); ok {
			t.Fatal("allowed before any role")
		}
	}
	mustAssign(t, e, tn, user, policies.RoleDoorStaff, venue)
	for range 3 {
		if ok, _ := e.Allowed(sub, dom, "portal", policies.Read); !ok {
			t.Fatal("the assignment is not seen at once")
		}
	}
	if _, err := e.Unassign(tn, policies.Assignment{UserID: user, Role: policies.RoleDoorStaff, Venue: venue}); err != nil {
		t.Fatal(err)
	}
	if ok, _ := e.Allowed(sub, dom, "portal", policies.Read); ok {
		t.Fatal("a cached grant outlived its role")
	}
}

// TestEachChainHoldsOnlyItsRules: a chain's decisions scan its own rules,
// never the fleet's, so the cost of a decision does not grow with the
// number of chains; chains whose slugs share a prefix ("pfx", "pfx-x",
// "pfx_x") never see each other's rules.
func TestEachChainHoldsOnlyItsRules(t *testing.T) {
	env := apptest.Start(t, dbURL, apptest.Options{})
	e := env.App.Enforcer
	grants := policies.CoreGrants()
	slugs := []string{"pfx", "pfx-x", "pfx_x", "pfxx"}
	for i := range 20 {
		slugs = append(slugs, fmt.Sprintf("many%02d", i))
	}
	owners := map[string]string{}
	for _, tn := range slugs {
		if err := e.InstallDefaults(tn, grants); err != nil {
			t.Fatal(err)
		}
		owners[tn] = newID()
		mustAssign(t, e, tn, owners[tn], policies.RoleOwner, "")
	}
	// A fresh instance loads each chain from the database.
	e2, err := policies.NewEnforcer(context.Background(), env.App.DB, env.App.Redis, env.App.Config.Deployment(), quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer e2.Close()
	for _, tn := range slugs {
		n, err := policies.LoadedRules(e2, tn)
		if err != nil {
			t.Fatal(err)
		}
		if want := len(grants) + 1; n != want {
			t.Fatalf("chain %s holds %d rules, want its own %d", tn, n, want)
		}
	}
	for _, a := range []string{"pfx", "pfx-x", "pfx_x", "pfxx"} {
		for _, b := range []string{"pfx", "pfx-x", "pfx_x", "pfxx"} {
			ok, err := e2.Allowed(policies.Subject(a, owners[a]), policies.ChainDomain(b), "users", policies.Write)
			if err != nil {
				t.Fatal(err)
			}
			if ok != (a == b) {
				t.Fatalf("owner of %s in %s: allowed=%v", a, b, ok)
			}
		}
	}
	if _, err := e2.Allowed("owner", "no-chain-here", "users", policies.Read); err == nil {
		t.Fatal("a domain without a chain was decided")
	}

	// A change to one chain makes other instances drop that chain only.
	mustAssign(t, e, "many00", newID(), policies.RoleFinance, "")
	apptest.Eventually(t, time.Second, "the other instance drops many00", func() bool { return !policies.IsLoaded(e2, "many00") })
	if !policies.IsLoaded(e2, "many01") || !policies.IsLoaded(e2, "pfx") {
		t.Fatal("a change to one chain dropped other chains' policy")
	}
	if n, _ := policies.LoadedRules(e2, "many00"); n != len(grants)+2 {
		t.Fatalf("many00 reloaded with %d rules, want %d", n, len(grants)+2)
	}
}
