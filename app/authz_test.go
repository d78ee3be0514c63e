package app_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"marquee/app"
	"marquee/app/apptest"
	"marquee/policies"
)

// Every route the router serves was registered with a permission, and every
// protected route refuses an anonymous caller and a caller without roles.
func TestEveryRouteDeclaresAndEnforcesItsPermission(t *testing.T) {
	env, probe := startProbe(t)
	tn := env.Tenant(t, apptest.UniqueSlug("routes"))
	env.User(t, tn, "nobody@"+tn.Slug+".test", "", "")
	noRoles := env.Login(t, tn.Slug, "nobody@"+tn.Slug+".test")

	declared := map[string]app.Route{}
	for _, r := range env.App.Routes() {
		if r.Perm.String() == "unset" {
			t.Errorf("%s %s declares no permission", r.Method, r.Path)
		}
		declared[r.Method+" "+r.Path] = r
	}
	engine, ok := env.App.Handler().(*gin.Engine)
	if !ok {
		t.Fatal("handler is not a gin engine")
	}
	served := engine.Routes()
	if len(served) != len(declared) {
		t.Errorf("router serves %d routes, %d declared", len(served), len(declared))
	}
	fill := strings.NewReplacer(":venueId", probe.addVenue().String(), ":slug", tn.Slug, "*path", "x", "*filepath", "marquee.css")
	checked := 0
	for _, s := range served {
		r, ok := declared[s.Method+" "+s.Path]
		if !ok {
			t.Errorf("%s %s is served without a declared permission", s.Method, s.Path)
			continue
		}
		path := fill.Replace(s.Path)
		switch r.Perm.Kind {
		case app.PermSupportOnly:
			res := env.Do(t, s.Method, "", path, "", nil)
			if res.Status != http.StatusUnauthorized {
				t.Errorf("%s %s anonymous: %d, want 401", s.Method, s.Path, res.Status)
			}
			checked++
		case app.PermSignedIn, app.PermCasbin:
			res := env.Do(t, s.Method, tn.Slug, path, "", nil)
			if res.Status != http.StatusUnauthorized {
				t.Errorf("%s %s anonymous: %d, want 401", s.Method, s.Path, res.Status)
			}
			checked++
			if r.Perm.Kind == app.PermCasbin {
				res := env.Do(t, s.Method, tn.Slug, path, noRoles, nil)
				if res.Status != http.StatusForbidden {
					t.Errorf("%s %s without roles: %d, want 403", s.Method, s.Path, res.Status)
				}
			}
		}
	}
	if checked < 10 {
		t.Fatalf("only %d protected routes checked", checked)
	}
}

// A venue role grants nothing at another venue; a chain role covers all of
// them; nothing crosses tenants.
func TestVenueScopedRoles(t *testing.T) {
	env, probe := startProbe(t)
	acme, globex := env.Tenant(t, apptest.UniqueSlug("acme")), env.Tenant(t, apptest.UniqueSlug("globex"))
	v1, v2 := probe.addVenue(), probe.addVenue()
	env.User(t, acme, "mgr@"+acme.Slug+".test", policies.RoleVenueManager, v1.String())
	env.User(t, acme, "admin@"+acme.Slug+".test", policies.RoleChainAdmin, "")
	env.User(t, globex, "mgr@"+globex.Slug+".test", policies.RoleVenueManager, v1.String())
	mgr := env.Login(t, acme.Slug, "mgr@"+acme.Slug+".test")
	admin := env.Login(t, acme.Slug, "admin@"+acme.Slug+".test")
	foreignMgr := env.Login(t, globex.Slug, "mgr@"+globex.Slug+".test")
	thing := func(v uuid.UUID) string { return "/api/v1/probe/venues/" + v.String() + "/things" }

	apptest.RunScenarios(t, env, []apptest.Scenario{
		{Name: "manager at own venue", Path: thing(v1), Tenant: acme.Slug, Token: mgr, Status: http.StatusOK},
		{Name: "manager at another venue", Path: thing(v2), Tenant: acme.Slug, Token: mgr, Status: http.StatusForbidden, Code: "forbidden"},
		{Name: "manager at chain level", Path: "/api/v1/users", Tenant: acme.Slug, Token: mgr, Status: http.StatusForbidden, Code: "forbidden"},
		{Name: "chain admin at one venue", Path: thing(v1), Tenant: acme.Slug, Token: admin, Status: http.StatusOK},
		{Name: "chain admin at another", Path: thing(v2), Tenant: acme.Slug, Token: admin, Status: http.StatusOK},
		// globex's manager of "the same" venue id has nothing in acme.
		{Name: "other tenant's manager", Path: thing(v1), Tenant: acme.Slug, Token: foreignMgr, Status: http.StatusForbidden, Code: "wrong_tenant"},
		{Name: "venue id not a uuid", Path: "/api/v1/probe/venues/not-a-uuid/things", Tenant: acme.Slug, Token: admin, Status: http.StatusNotFound, Code: "not_found"},
	})
}

// Role assignments made through the API take effect at once, also on another
// server instance, and only owners hand out the owner role.
func TestRoleAssignmentsAcrossInstances(t *testing.T) {
	one, probe := startProbe(t)
	two, _ := startProbe(t)
	tn := one.Tenant(t, apptest.UniqueSlug("roles"))
	owner := one.Login(t, tn.Slug, ownerOf(tn))
	u := one.User(t, tn, "later@"+tn.Slug+".test", "", "")
	later := one.Login(t, tn.Slug, "later@"+tn.Slug+".test")
	wantStatus(t, two.Do(t, http.MethodGet, tn.Slug, "/api/v1/users", later, nil), http.StatusForbidden, "forbidden")

	grant := map[string]string{"user_id": u.ID.String(), "role": policies.RoleChainAdmin}
	wantStatus(t, one.Do(t, http.MethodPost, tn.Slug, "/api/v1/role-assignments", owner, grant), http.StatusCreated, "")
	apptest.Eventually(t, 2*time.Second, "the grant reaching the other instance", func() bool {
		return two.Do(t, http.MethodGet, tn.Slug, "/api/v1/users", later, nil).Status == http.StatusOK
	})
	// A chain admin manages roles but cannot make anyone an owner.
	other := one.User(t, tn, "other@"+tn.Slug+".test", "", "")
	wantStatus(t, two.Do(t, http.MethodPost, tn.Slug, "/api/v1/role-assignments", later,
		map[string]string{"user_id": other.ID.String(), "role": policies.RoleOwner}), http.StatusForbidden, "forbidden")
	// Wrong levels, unknown roles, unknown users and venues are refused.
	venue := probe.addVenue()
	for _, bad := range []struct {
		body map[string]string
		code string
	}{
		{map[string]string{"user_id": other.ID.String(), "role": policies.RoleFinance, "venue_id": venue.String()}, "invalid_assignment"},
		{map[string]string{"user_id": other.ID.String(), "role": policies.RoleBoxOffice}, "invalid_assignment"},
		{map[string]string{"user_id": other.ID.String(), "role": "superuser"}, "invalid_assignment"},
		{map[string]string{"user_id": other.ID.String(), "role": policies.RoleBoxOffice, "venue_id": uuid.NewString()}, "not_found"},
		{map[string]string{"user_id": uuid.NewString(), "role": policies.RoleFinance}, "not_found"},
		{map[string]string{"user_id": "1 OR 1=1", "role": policies.RoleFinance}, "invalid_user_id"},
	} {
		res := one.Do(t, http.MethodPost, tn.Slug, "/api/v1/role-assignments", owner, bad.body)
		if res.Code() != bad.code {
			t.Errorf("%v: %d %s, want code %s", bad.body, res.Status, res.Body, bad.code)
		}
	}
	list := one.Do(t, http.MethodGet, tn.Slug, "/api/v1/role-assignments?user_id="+other.ID.String(), owner, nil)
	if !strings.Contains(string(list.Body), `"items":[]`) {
		t.Fatalf("refused assignments were stored: %s", list.Body)
	}

	q := "/api/v1/role-assignments?user_id=" + u.ID.String() + "&role=" + policies.RoleChainAdmin
	wantStatus(t, one.Do(t, http.MethodDelete, tn.Slug, q, owner, nil), http.StatusNoContent, "")
	apptest.Eventually(t, 2*time.Second, "the revocation reaching the other instance", func() bool {
		return two.Do(t, http.MethodGet, tn.Slug, "/api/v1/users", later, nil).Status == http.StatusForbidden
	})
	wantStatus(t, one.Do(t, http.MethodDelete, tn.Slug, q, owner, nil), http.StatusNotFound, "not_found")
}

// The module contract: routes, pages, navigation, tasks, schedules, grants
// and seeds of a module reach the core.
func TestModuleRegistry(t *testing.T) {
	env, probe := startProbe(t)
	tn := env.Tenant(t, apptest.UniqueSlug("reg"))
	v := probe.addVenue()
	env.User(t, tn, "mgr@"+tn.Slug+".test", policies.RoleVenueManager, v.String())
	env.User(t, tn, "fin@"+tn.Slug+".test", policies.RoleFinance, "")

	// The module's grant was installed in the new tenant.
	ok, err := env.App.Enforcer.Allowed(policies.RoleVenueManager, policies.VenueDomain(tn.Slug, v.String()), "probe.things", policies.Read)
	if err != nil || !ok {
		t.Fatalf("module grant not installed: %v %v", ok, err)
	}
	// The module's nav entry shows only to those who may open it.
	mgrPortal := portalSession(t, env, tn.Slug, "mgr@"+tn.Slug+".test")
	finPortal := portalSession(t, env, tn.Slug, "fin@"+tn.Slug+".test")
	if !strings.Contains(mgrPortal.get(t, "/portal"), `href="/portal/probe"`) {
		t.Error("venue manager does not see the module's nav entry")
	}
	if strings.Contains(finPortal.get(t, "/portal"), `href="/portal/probe"`) {
		t.Error("finance sees a nav entry it cannot open")
	}
	// Its task runs through real Redis for the right tenant.
	if _, err := env.App.Jobs.Enqueue(context.Background(), tn, "probe:record", "hello"); err != nil {
		t.Fatal(err)
	}
	srv := env.App.Jobs.NewServer(2)
	if err := srv.Start(env.App.Jobs.Mux()); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	apptest.Eventually(t, 5*time.Second, "the periodic task run", func() bool {
		probe.mu.Lock()
		defer probe.mu.Unlock()
		for _, s := range probe.tasks {
			if s == tn.Slug+`:"hello"` {
				return true
			}
		}
		return false
	})
	// Its schedule is registered with the scheduler.
	if _, err := env.App.Jobs.NewScheduler(); err != nil {
		t.Fatal(err)
	}
	// Its seed runs for the demo chains.
	if _, err := env.App.SeedDemo(context.Background()); err != nil {
		t.Fatal(err)
	}
	probe.mu.Lock()
	seeded := strings.Join(probe.seeded, ",")
	probe.mu.Unlock()
	if seeded != "acme,globex" {
		t.Fatalf("seeded %q", seeded)
	}
}
