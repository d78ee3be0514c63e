package app_test

import (
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"marquee/app"
	"marquee/app/apptest"
	"marquee/policies"
)

// TestSupportVisitsWaitForTheOwnersConsent: a chain that requires it lets
// support in only through a request its owner grants for a time box; the
// grant starts exactly one visit however many start at once; only the
// owner of that chain can decide; a chain that does not require it sees
// every visit announced on its portal pages while it lasts.
func TestSupportVisitsWaitForTheOwnersConsent(t *testing.T) {
	env, _ := startProbe(t)
	support, supportEmail := consoleSession(t, env)
	csrf := formToken(t, support.get(t, "/console"))
	a := env.Tenant(t, apptest.UniqueSlug("consent"))
	b := env.Tenant(t, apptest.UniqueSlug("consentb"))
	ownerA, ownerB := env.Login(t, a.Slug, ownerOf(a)), env.Login(t, b.Slug, ownerOf(b))
	admin := "admin@" + a.Slug + ".test"
	env.User(t, a, admin, policies.RoleChainAdmin, "")
	adminA := env.Login(t, a.Slug, admin)

	visit := func(slug string) *http.Response {
		res, _ := support.do(t, http.MethodPost, "/console/tenants/"+slug+"/visit", url.Values{"csrf_token": {csrf}, "reason": {"ticket #77: payouts stuck"}})
		return res
	}
	entered := func(res *http.Response, slug string) bool {
		loc, err := url.Parse(res.Header.Get("Location"))
		return res.StatusCode == http.StatusSeeOther && err == nil && strings.HasPrefix(loc.Host, slug+".") && strings.Contains(loc.Path, "/support/enter")
	}
	consent := func(tok string) app.SupportConsent {
		res := env.Do(t, http.MethodGet, a.Slug, "/api/v1/support/consent", tok, nil)
		wantStatus(t, res, http.StatusOK, "")
		return apptest.Decode[app.SupportConsent](t, res.Body)
	}

	// Only the owner decides whether consent is needed.
	wantStatus(t, env.Do(t, http.MethodPut, a.Slug, "/api/v1/support/consent", adminA, map[string]bool{"required": true}), http.StatusForbidden, "forbidden")
	wantStatus(t, env.Do(t, http.MethodPut, a.Slug, "/api/v1/support/consent", ownerA, map[string]bool{"required": true}), http.StatusOK, "")

	// Support asks twice: one pending request, no visit.
	for range 2 {
		if res := visit(a.Slug); entered(res, a.Slug) {
			t.Fatal("support entered a chain that requires consent without it")
		}
	}
	c := consent(ownerA)
	if !c.Required || len(c.Requests) != 1 || c.Requests[0].Status != "pending" || c.Requests[0].SupportEmail != supportEmail || len(c.ActiveVisits) != 0 {
		t.Fatalf("after asking: %+v", c)
	}
	req := c.Requests[0].ID.String()

	// Another chain's owner, an admin, and bad time boxes change nothing.
	wantStatus(t, env.Do(t, http.MethodPost, b.Slug, "/api/v1/support/requests/"+req+"/grant", ownerB, nil), http.StatusNotFound, "not_found")
	wantStatus(t, env.Do(t, http.MethodPost, a.Slug, "/api/v1/support/requests/"+req+"/grant", adminA, nil), http.StatusForbidden, "forbidden")
	wantStatus(t, env.Do(t, http.MethodPost, a.Slug, "/api/v1/support/requests/"+req+"/grant", ownerA, map[string]int{"minutes": 3}), http.StatusBadRequest, "invalid_minutes")
	wantStatus(t, env.Do(t, http.MethodPost, a.Slug, "/api/v1/support/requests/not-a-uuid/grant", ownerA, nil), http.StatusNotFound, "not_found")
	if c := consent(ownerA); c.Requests[0].Status != "pending" {
		t.Fatalf("refused attempts changed the request: %+v", c.Requests[0])
	}

	res := env.Do(t, http.MethodPost, a.Slug, "/api/v1/support/requests/"+req+"/grant", ownerA, map[string]int{"minutes": 15})
	wantStatus(t, res, http.StatusOK, "")
	if got := apptest.Decode[app.VisitRequest](t, res.Body); got.Status != "granted" || got.UsableUntil == nil {
		t.Fatalf("grant: %+v", got)
	}
	wantStatus(t, env.Do(t, http.MethodPost, a.Slug, "/api/v1/support/requests/"+req+"/refuse", ownerA, nil), http.StatusConflict, "request_decided")

	// One grant, one visit, however many start at once.
	var wg sync.WaitGroup
	var mu sync.Mutex
	in := 0
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if res := visit(a.Slug); entered(res, a.Slug) {
				mu.Lock()
				in++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if in != 1 {
		t.Fatalf("%d visits started on one grant, want 1", in)
	}
	c = consent(ownerA)
	if len(c.ActiveVisits) != 1 {
		t.Fatalf("active visits: %+v", c.ActiveVisits)
	}
	statuses := map[string]int{}
	for _, r := range c.Requests {
		statuses[r.Status]++
	}
	if statuses["used"] != 1 || statuses["pending"] != 1 || statuses["granted"] != 0 {
		t.Fatalf("requests after the visit: %v", statuses)
	}

	// Without the requirement, a visit starts at once and every portal page
	// of the chain announces it.
	if res := visit(b.Slug); !entered(res, b.Slug) {
		t.Fatalf("visit to a chain without the requirement: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	page := portalSession(t, env, b.Slug, ownerOf(b)).get(t, "/portal")
	if !strings.Contains(page, "Platform support ("+supportEmail+") is in your portal until") {
		t.Fatal("the owner's portal does not announce the visit")
	}
}
