package app_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"marquee/app/apptest"
)

// Many concurrent requests of two tenants share a pool of two connections;
// every response must hold only its own tenant's rows.
func TestTenantIsolationOverPoolOfTwo(t *testing.T) {
	env, _ := startProbe(t, func(o *apptest.Options) { o.DBMaxConns = 2 })
	a, b := env.Tenant(t, apptest.UniqueSlug("iso-a")), env.Tenant(t, apptest.UniqueSlug("iso-b"))
	for i := range 5 {
		env.User(t, a, fmt.Sprintf("staff%d@%s.test", i, a.Slug), "", "")
		env.User(t, b, fmt.Sprintf("staff%d@%s.test", i, b.Slug), "", "")
	}
	tokA, tokB := env.Login(t, a.Slug, ownerOf(a)), env.Login(t, b.Slug, ownerOf(b))

	var wg sync.WaitGroup
	errs := make(chan error, 400)
	for i := range 400 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			slug, tok := a.Slug, tokA
			if i%2 == 1 {
				slug, tok = b.Slug, tokB
			}
			path := "/api/v1/users"
			if i%3 == 0 {
				path = "/api/v1/me"
			}
			res, err := env.Try(http.MethodGet, slug, path, tok, nil)
			if err != nil {
				errs <- err
				return
			}
			if res.Status != http.StatusOK {
				errs <- fmt.Errorf("%s %s: %d %s", slug, path, res.Status, res.Body)
				return
			}
			body := string(res.Body)
			other := b.Slug
			if slug == b.Slug {
				other = a.Slug
			}
			if strings.Contains(body, "@"+other+".test") || !strings.Contains(body, "@"+slug+".test") {
				errs <- fmt.Errorf("tenant %s saw foreign or no rows: %s", slug, body)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestTenantResolution(t *testing.T) {
	env, _ := startProbe(t)
	acme := env.Tenant(t, apptest.UniqueSlug("acme"))
	globex := env.Tenant(t, apptest.UniqueSlug("globex"))
	tok := env.Login(t, acme.Slug, ownerOf(acme))

	wantStatus(t, env.Do(t, http.MethodGet, acme.Slug, "/api/v1/me", tok, nil), http.StatusOK, "")
	// The header works on the base host, for API clients.
	wantStatus(t, env.Do(t, http.MethodGet, "", "/api/v1/me", tok, nil, "X-Tenant", acme.Slug), http.StatusOK, "")
	// acme's token on globex's host.
	wantStatus(t, env.Do(t, http.MethodGet, globex.Slug, "/api/v1/me", tok, nil), http.StatusForbidden, "wrong_tenant")
	wantStatus(t, env.Do(t, http.MethodGet, "", "/api/v1/me", tok, nil, "X-Tenant", globex.Slug), http.StatusForbidden, "wrong_tenant")
	// Host and header disagreeing is refused rather than guessed.
	wantStatus(t, env.Do(t, http.MethodGet, acme.Slug, "/api/v1/me", tok, nil, "X-Tenant", globex.Slug), http.StatusBadRequest, "tenant_mismatch")
	wantStatus(t, env.Do(t, http.MethodGet, "nope-nope", "/api/v1/me", tok, nil), http.StatusNotFound, "tenant_not_found")
	wantStatus(t, env.Do(t, http.MethodGet, "", "/api/v1/me", "", nil, "X-Tenant", "acme'; DROP SCHEMA t_acme;--"), http.StatusNotFound, "tenant_not_found")
	wantStatus(t, env.Do(t, http.MethodGet, "", "/api/v1/me", tok, nil), http.StatusNotFound, "tenant_required")
	// Forged and malformed tokens.
	wantStatus(t, env.Do(t, http.MethodGet, acme.Slug, "/api/v1/me", "mq_forged"+strings.Repeat("x", 40), nil), http.StatusUnauthorized, "invalid_token")
	wantStatus(t, env.Do(t, http.MethodGet, acme.Slug, "/api/v1/me", "", nil, "Authorization", "Basic abc"), http.StatusUnauthorized, "unauthenticated")
	// Logged out tokens die at once.
	wantStatus(t, env.Do(t, http.MethodPost, acme.Slug, "/api/v1/auth/logout", tok, nil), http.StatusNoContent, "")
	wantStatus(t, env.Do(t, http.MethodGet, acme.Slug, "/api/v1/me", tok, nil), http.StatusUnauthorized, "invalid_token")
}

// Suspending a tenant on one instance takes effect on another at once, on
// API and pages alike; resuming brings it back.
func TestSuspendAcrossInstances(t *testing.T) {
	one, _ := startProbe(t)
	two, _ := startProbe(t)
	tn := one.Tenant(t, apptest.UniqueSlug("susp"))
	tok := one.Login(t, tn.Slug, ownerOf(tn))
	wantStatus(t, two.Do(t, http.MethodGet, tn.Slug, "/api/v1/me", tok, nil), http.StatusOK, "")

	if err := one.App.Tenants.Suspend(context.Background(), tn.Slug); err != nil {
		t.Fatal(err)
	}
	apptest.Eventually(t, 2*time.Second, "the suspension reaching the other instance", func() bool {
		return two.Do(t, http.MethodGet, tn.Slug, "/api/v1/me", tok, nil).Status == http.StatusForbidden
	})
	wantStatus(t, two.Do(t, http.MethodGet, tn.Slug, "/api/v1/me", tok, nil), http.StatusForbidden, "tenant_suspended")
	page := two.Do(t, http.MethodGet, tn.Slug, "/portal/login", "", nil, "Accept", "text/html")
	if page.Status != http.StatusForbidden || !strings.Contains(string(page.Body), "This chain is suspended") {
		t.Fatalf("portal of suspended tenant: %d %s", page.Status, page.Body)
	}
	wantStatus(t, two.Do(t, http.MethodPost, tn.Slug, "/api/v1/auth/login", "", map[string]string{"email": ownerOf(tn), "password": apptest.Password}), http.StatusForbidden, "tenant_suspended")

	if err := two.App.Tenants.Resume(context.Background(), tn.Slug); err != nil {
		t.Fatal(err)
	}
	apptest.Eventually(t, 2*time.Second, "the resumption reaching the other instance", func() bool {
		return one.Do(t, http.MethodGet, tn.Slug, "/api/v1/me", tok, nil).Status == http.StatusOK
	})
}

// Sessions are cached per instance, yet a logout on one instance ends the
// session on another at once (well before the cache would expire it).
func TestLogoutReachesOtherInstancesAtOnce(t *testing.T) {
	one, _ := startProbe(t)
	two, _ := startProbe(t)
	tn := one.Tenant(t, apptest.UniqueSlug("logout"))
	tok := one.Login(t, tn.Slug, ownerOf(tn))
	for range 3 { // read and cached on both instances
		wantStatus(t, one.Do(t, http.MethodGet, tn.Slug, "/api/v1/me", tok, nil), http.StatusOK, "")
		wantStatus(t, two.Do(t, http.MethodGet, tn.Slug, "/api/v1/me", tok, nil), http.StatusOK, "")
	}
	wantStatus(t, one.Do(t, http.MethodPost, tn.Slug, "/api/v1/auth/logout", tok, nil), http.StatusNoContent, "")
	wantStatus(t, one.Do(t, http.MethodGet, tn.Slug, "/api/v1/me", tok, nil), http.StatusUnauthorized, "invalid_token")
	start := time.Now()
	apptest.Eventually(t, 2*time.Second, "the logout reaching the other instance", func() bool {
		return two.Do(t, http.MethodGet, tn.Slug, "/api/v1/me", tok, nil).Status == http.StatusUnauthorized
	})
	t.Logf("revocation seen by the other instance after %s", time.Since(start))
}
