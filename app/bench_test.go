package app_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"marquee/app"
	"marquee/app/apptest"
	"marquee/policies"
)

// BenchmarkRequestOverhead measures what tenant resolution, identity and
// authorization add to a request, in-process (no network): a public route
// that does none of it is the baseline in the same run.
//
//	go test -run '^$' -bench RequestOverhead ./app/
func BenchmarkRequestOverhead(b *testing.B) {
	env, probe := startProbeB(b)
	tn := env.Tenant(b, apptest.UniqueSlug("bench"))
	v := probe.addVenue()
	env.User(b, tn, "mgr@"+tn.Slug+".test", policies.RoleVenueManager, v.String())
	tok := env.Login(b, tn.Slug, "mgr@"+tn.Slug+".test")
	h := env.App.Handler()

	run := func(b *testing.B, host, path, token string, want int) {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.Host = host
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != want {
				b.Fatalf("%s: %d", path, w.Code)
			}
		}
	}
	b.Run("baseline-healthz", func(b *testing.B) { run(b, "localhost", "/healthz", "", http.StatusOK) })
	b.Run("tenant-resolution-public", func(b *testing.B) {
		run(b, tn.Slug+".localhost", "/api/v1/probe/ping", "", http.StatusOK)
	})
	b.Run("casbin-enforce-only", func(b *testing.B) {
		sub, dom := policies.Subject(tn.Slug, "x"), policies.VenueDomain(tn.Slug, v.String())
		b.ReportAllocs()
		for b.Loop() {
			if _, err := env.App.Enforcer.Allowed(sub, dom, "probe.things", policies.Read); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("tenant+token+casbin-at-venue", func(b *testing.B) {
		run(b, tn.Slug+".localhost", "/api/v1/probe/venues/"+v.String()+"/things", tok, http.StatusOK)
	})
}

func startProbeB(b *testing.B) (*apptest.Env, *probeModule) {
	p := newProbe()
	return apptest.Start(b, dbURL, apptest.Options{Modules: []app.Module{p}}), p
}
