package app_test

import (
	"context"
	"net/http"
	"testing"

	"marquee/app"
	"marquee/app/apptest"
)

// The console's traffic figures add up every instance's counts per chain:
// two instances serve two chains, one of them with server errors, and each
// chain's day shows exactly its own requests and errors. Its schema size
// is the schema's tables and indexes, and grows with its data.
func TestConsoleCountsRequestsErrorsAndSize(t *testing.T) {
	one, _ := startProbe(t)
	two := apptest.Start(t, dbURL, apptest.Options{Modules: []app.Module{newProbe()}})
	ctx := context.Background()
	a := one.Tenant(t, apptest.UniqueSlug("traffic-a"))
	b := one.Tenant(t, apptest.UniqueSlug("traffic-b"))
	hit := func(env *apptest.Env, slug, path string, n, status int) {
		for range n {
			res, err := env.Try(http.MethodGet, slug, path, "", nil)
			if err != nil || res.Status != status {
				t.Fatalf("GET %s for %s: %v %v, want %d", path, slug, res.Status, err, status)
			}
		}
	}
	hit(one, a.Slug, "/api/v1/probe/ping", 4, http.StatusOK)
	hit(one, a.Slug, "/api/v1/probe/broken", 2, http.StatusInternalServerError)
	hit(two, a.Slug, "/api/v1/probe/ping", 3, http.StatusOK)
	hit(two, b.Slug, "/api/v1/probe/ping", 5, http.StatusOK)
	// An unknown URL never reaches the chain's routes: not its traffic.
	hit(two, b.Slug, "/api/v1/probe/nothing-here", 1, http.StatusNotFound)
	for _, c := range []struct {
		slug             string
		requests, errors int64
	}{{a.Slug, 9, 2}, {b.Slug, 5, 0}} {
		// Each instance flushes its own counts when asked; the second's
		// reach Redis when it answers the console too.
		if _, _, err := two.App.RequestsLastDay(ctx, c.slug); err != nil {
			t.Fatal(err)
		}
		requests, errors, err := one.App.RequestsLastDay(ctx, c.slug)
		if err != nil || requests != c.requests || errors != c.errors {
			t.Errorf("%s: %d requests and %d server errors (%v), want %d and %d", c.slug, requests, errors, err, c.requests, c.errors)
		}
	}

	_, before, err := one.App.TenantUsage(ctx, a)
	if err != nil || before <= 0 {
		t.Fatalf("schema size %d (%v)", before, err)
	}
	if err := one.App.DB.Exec(`CREATE TABLE ` + a.Schema + `.size_probe AS SELECT repeat('x', 200) AS filler FROM generate_series(1, 2000)`).Error; err != nil {
		t.Fatal(err)
	}
	_, after, err := one.App.TenantUsage(ctx, a)
	if err != nil || after < before+2000*200 {
		t.Fatalf("schema size %d after 2,000 rows of 200 bytes, was %d (%v)", after, before, err)
	}
}
