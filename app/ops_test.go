package app_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"marquee/app/apptest"
	"marquee/config"
)

func TestHealthReadinessMetricsAndOpenAPI(t *testing.T) {
	env, _ := startProbe(t)
	tn := env.Tenant(t, apptest.UniqueSlug("ops"))
	wantStatus(t, env.Do(t, http.MethodGet, "", "/healthz", "", nil), http.StatusOK, "")
	ready := env.Do(t, http.MethodGet, tn.Slug, "/readyz", "", nil)
	if ready.Status != http.StatusOK || !strings.Contains(string(ready.Body), `"postgres":"ok"`) || !strings.Contains(string(ready.Body), `"redis":"ok"`) {
		t.Fatalf("readyz: %d %s", ready.Status, ready.Body)
	}
	env.Do(t, http.MethodGet, tn.Slug, "/api/v1/me", "", nil)
	metrics := string(env.Do(t, http.MethodGet, "", "/metrics", "", nil).Body)
	for _, want := range []string{
		`marquee_http_requests_total{method="GET",route="/api/v1/me",status="Unauthorized"}`,
		`marquee_http_request_duration_seconds_bucket{method="GET",route="/api/v1/me"`,
		"go_goroutines",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	res := env.Do(t, http.MethodGet, tn.Slug, "/api/v1/openapi.json", "", nil)
	var doc struct {
		OpenAPI string                               `json:"openapi"`
		Paths   map[string]map[string]map[string]any `json:"paths"`
	}
	res.JSON(t, &doc)
	if doc.OpenAPI != "3.0.3" || doc.Paths["/role-assignments"]["post"]["x-permission"] != "role_assignments:write" ||
		doc.Paths["/probe/venues/{venueId}/things"]["get"] == nil {
		t.Fatalf("openapi: %s", res.Body)
	}
	if id := res.Header.Get("X-Request-ID"); len(id) < 8 {
		t.Fatal("no request id")
	}
	echo := env.Do(t, http.MethodGet, "", "/healthz", "", nil, "X-Request-ID", "client-chosen-id-1")
	if echo.Header.Get("X-Request-ID") != "client-chosen-id-1" {
		t.Fatal("request id not propagated")
	}
}

// SIGTERM (a cancelled context) stops accepting work but lets the request in
// flight finish.
func TestGracefulShutdownFinishesInFlight(t *testing.T) {
	env, probe := startProbe(t)
	tn := env.Tenant(t, apptest.UniqueSlug("shut"))
	ln, cancel, served := serveInBackground(t, env)

	type result struct {
		status int
		body   string
		err    error
	}
	got := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, "http://"+ln.Addr().String()+"/api/v1/probe/slow", nil)
		req.Host = tn.Slug + ".localhost"
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			got <- result{err: err}
			return
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		got <- result{status: res.StatusCode, body: string(b)}
	}()
	// Let the request reach the handler, then shut down while it works.
	select {
	case probe.slow <- struct{}{}:
	case r := <-got:
		t.Fatalf("request ended before reaching the handler: %+v", r)
	}
	cancel()
	r := <-got
	if r.err != nil || r.status != http.StatusOK || !strings.Contains(r.body, `"done":true`) {
		t.Fatalf("in-flight request: %+v", r)
	}
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("server did not stop")
	}
	if _, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		t.Fatal("server still accepts connections after shutdown")
	}
}

// serveInBackground runs env's App.Serve on a loopback port until cancel;
// served carries what Serve returned.
func serveInBackground(t *testing.T, env *apptest.Env) (ln net.Listener, cancel context.CancelFunc, served <-chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- env.App.Serve(ctx, ln) }()
	return ln, cancel, done
}

// Serving opens the whole database pool at once, so the first burst of
// requests does not wait for connections to be opened.
func TestServingOpensTheDatabasePool(t *testing.T) {
	env, _ := startProbe(t)
	_, cancel, served := serveInBackground(t, env)
	defer func() { cancel(); <-served }()
	want := env.App.SQL.Stats().MaxOpenConnections
	apptest.Eventually(t, 5*time.Second, fmt.Sprintf("all %d connections open after serving began", want), func() bool {
		return env.App.SQL.Stats().OpenConnections == want
	})
}

// A tenant at its in-flight bound is shed at once with 503 and Retry-After,
// while another tenant is still served.
func TestLoadSheddingKeepsOtherTenantsServed(t *testing.T) {
	env, probe := startProbe(t, func(o *apptest.Options) {
		o.Configure = func(c *config.Config) { c.TenantMaxInFlight = 2; c.MaxInFlight = 3; c.ShedWait = 50 * time.Millisecond }
	})
	hot, calm := env.Tenant(t, apptest.UniqueSlug("hot")), env.Tenant(t, apptest.UniqueSlug("calm"))
	done := make(chan apptest.Response, 2)
	for range 2 {
		go func() {
			res, err := env.Try(http.MethodGet, hot.Slug, "/api/v1/probe/slow", "", nil)
			if err != nil {
				t.Error(err)
			}
			done <- res
		}()
	}
	// Wait until both occupy the hot tenant's slots.
	apptest.Eventually(t, 2*time.Second, "both slow requests holding the hot tenant's slots", func() bool {
		return env.Do(t, http.MethodGet, hot.Slug, "/api/v1/probe/ping", "", nil).Status == http.StatusServiceUnavailable
	})
	shed := env.Do(t, http.MethodGet, hot.Slug, "/api/v1/probe/ping", "", nil)
	wantStatus(t, shed, http.StatusServiceUnavailable, "overloaded")
	if shed.Header.Get("Retry-After") == "" {
		t.Fatal("shed without Retry-After")
	}
	wantStatus(t, env.Do(t, http.MethodGet, calm.Slug, "/api/v1/probe/ping", "", nil), http.StatusOK, "")
	// A light route (no database work) of the hot tenant is bounded by the
	// server's slots only: still served.
	wantStatus(t, env.Do(t, http.MethodGet, hot.Slug, "/api/v1/probe/light", "", nil), http.StatusOK, "")
	probe.slow <- struct{}{}
	probe.slow <- struct{}{}
	for range 2 {
		if res := <-done; res.Status != http.StatusOK {
			t.Fatalf("in-flight request: %d", res.Status)
		}
	}
	wantStatus(t, env.Do(t, http.MethodGet, hot.Slug, "/api/v1/probe/ping", "", nil), http.StatusOK, "")
}

// Client addresses come from the connection unless the proxy is trusted:
// a forged X-Forwarded-For cannot dodge per-address login limits.
func TestForwardedForNeedsATrustedProxy(t *testing.T) {
	env, _ := startProbe(t)
	tn := env.Tenant(t, apptest.UniqueSlug("xff"))
	// This test spends loopback's failure budget; give it back to the other tests.
	t.Cleanup(func() { env.App.Redis.Del(context.Background(), env.App.RedisKey("{login}", "ip", "127.0.0.1")) })
	for i := range 30 {
		bad := map[string]string{"email": fmt.Sprintf("nobody%d@%s.test", i, tn.Slug), "password": "not-the-password"}
		env.Do(t, http.MethodPost, tn.Slug, "/api/v1/auth/login", "", bad, "X-Forwarded-For", fmt.Sprintf("203.0.113.%d", i))
	}
	// Thirty failures from "thirty addresses" were one address: it is now limited.
	res := env.Do(t, http.MethodPost, tn.Slug, "/api/v1/auth/login", "", map[string]string{"email": ownerOf(tn), "password": apptest.Password},
		"X-Forwarded-For", "198.51.100.1")
	wantStatus(t, res, http.StatusTooManyRequests, "rate_limited")
}

// Two X-Tenant headers are refused: which copy counts differs between
// proxies and servers, so the request is ambiguous.
func TestTwoTenantHeadersAreRefused(t *testing.T) {
	env, _ := startProbe(t)
	one, two := env.Tenant(t, apptest.UniqueSlug("dup-a")), env.Tenant(t, apptest.UniqueSlug("dup-b"))
	req, _ := http.NewRequest(http.MethodGet, env.Server.URL+"/api/v1/probe/ping", nil)
	req.Host = "localhost"
	req.Header.Add("X-Tenant", one.Slug)
	req.Header.Add("X-Tenant", two.Slug)
	res, err := env.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	wantStatus(t, apptest.Response{Status: res.StatusCode, Header: res.Header, Body: body}, http.StatusBadRequest, "tenant_mismatch")
}

// Metrics answer on the base host only, and behind the token when one is set.
func TestMetricsOnlyOnTheBaseHost(t *testing.T) {
	env, _ := startProbe(t, func(o *apptest.Options) {
		o.Configure = func(c *config.Config) { c.MetricsToken = "metrics-token-for-tests" }
	})
	tn := env.Tenant(t, apptest.UniqueSlug("metrics"))
	wantStatus(t, env.Do(t, http.MethodGet, tn.Slug, "/metrics", "metrics-token-for-tests", nil), http.StatusNotFound, "not_found")
	wantStatus(t, env.Do(t, http.MethodGet, "", "/metrics", "", nil), http.StatusUnauthorized, "unauthenticated")
	wantStatus(t, env.Do(t, http.MethodGet, "", "/metrics", "wrong-token", nil), http.StatusUnauthorized, "unauthenticated")
	ok := env.Do(t, http.MethodGet, "", "/metrics", "metrics-token-for-tests", nil)
	if ok.Status != http.StatusOK || !strings.Contains(string(ok.Body), "go_goroutines") {
		t.Fatalf("metrics with the token: %d %.200s", ok.Status, ok.Body)
	}
}
