package modules_test

import (
	"net/http"
	"strings"
	"testing"

	"marquee/app"
)

// No page answers a browser with a problem document: every page route
// (with real and with unknown ids), unknown URLs on each surface, refusals
// (403) and unknown things (404) come back as HTML in the surface's chrome,
// with a way back and the request id; API clients still get problem+json.
func TestNoPageAnswersProblemJSONToBrowsers(t *testing.T) {
	w := newWorld(t)
	tn, err := w.env.App.Tenants.Lookup(t.Context(), w.slug)
	if err != nil {
		t.Fatal(err)
	}
	w.env.User(t, tn, "door@"+w.slug+".test", "door_staff", w.params[":venueId"])
	door := w.env.Login(t, w.slug, "door@"+w.slug+".test")
	html := map[string]string{"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
	seen, errorsSeen := 0, 0
	look := func(name string, rt app.Route, path string, headers map[string]string) {
		t.Helper()
		res := w.send(t, rt, http.MethodGet, path, nil, headers)
		seen++
		ct := res.Header.Get("Content-Type")
		if strings.HasPrefix(ct, app.ProblemContentType) || strings.HasPrefix(ct, "application/json") {
			t.Errorf("%s (%s): a browser got %s (%d): %.200s", name, path, ct, res.Status, res.Body)
			return
		}
		if res.Status < 400 {
			return
		}
		errorsSeen++
		body := string(res.Body)
		for _, want := range []string{`id="error-page"`, `id="error-back"`, `id="request-id"`, res.Header.Get("X-Request-ID")} {
			if !strings.Contains(body, want) {
				t.Errorf("%s (%s): the %d page lacks %q", name, path, res.Status, want)
			}
		}
		for _, jargon := range []string{"roles do not allow", "not_found", "forbidden:", `"code"`} {
			if strings.Contains(body, jargon) {
				t.Errorf("%s (%s): the %d page shows developer wording %q", name, path, res.Status, jargon)
			}
		}
	}
	for _, rt := range w.env.App.Routes() {
		if rt.Method != http.MethodGet || strings.HasPrefix(rt.Path, "/console/queues") || strings.HasSuffix(rt.Path, "/stream") {
			continue
		}
		if rt.Surface != app.SurfacePortal && rt.Surface != app.SurfaceStorefront && rt.Surface != app.SurfacePlatform {
			continue
		}
		name := "GET " + rt.Path
		look(name, rt, w.path(rt), html)
		// The same page with ids that do not exist (404) and, for a tenant
		// page, as door staff (403 where their role stops them).
		unknown := pathParam.ReplaceAllStringFunc(rt.Path, func(p string) string {
			if p == ":slug" {
				return "no-such-chain"
			}
			if strings.HasPrefix(p, "*") {
				return "nothing"
			}
			return "01900000-0000-7000-8000-0000000000ff"
		})
		look(name+" (unknown ids)", rt, unknown, html)
		if rt.Surface == app.SurfacePortal {
			h := map[string]string{"Accept": html["Accept"], "Authorization": "Bearer " + door}
			look(name+" (door staff)", rt, w.path(rt), h)
		}
	}
	portal, store, console := app.Route{Surface: app.SurfacePortal}, app.Route{Surface: app.SurfaceStorefront}, app.Route{Surface: app.SurfacePlatform}
	for _, u := range []struct {
		rt   app.Route
		path string
	}{{portal, "/portal/ledger"}, {portal, "/portal/nothing/here"}, {store, "/nothing"}, {store, "/events/not-an-id"},
		{console, "/console/nothing"}, {console, "/nothing"}} {
		look("unknown URL", u.rt, u.path, html)
	}
	// A portal 404 keeps the portal's navigation for the signed-in person.
	res := w.send(t, portal, http.MethodGet, "/portal/nothing/here", nil, html)
	if res.Status != http.StatusNotFound || !strings.Contains(string(res.Body), `<nav class="side"`) || !strings.Contains(string(res.Body), "Page not found") {
		t.Errorf("portal 404: %d, navigation kept: %v", res.Status, strings.Contains(string(res.Body), `<nav class="side"`))
	}
	// A 403 speaks plainly and keeps the navigation.
	h := map[string]string{"Accept": html["Accept"], "Authorization": "Bearer " + door}
	res = w.send(t, portal, http.MethodGet, "/portal/bookings", nil, h)
	if body := string(res.Body); res.Status != http.StatusForbidden || !strings.Contains(body, "Ask an owner of the chain") || !strings.Contains(body, `<nav class="side"`) {
		t.Errorf("portal 403: %d %.300s", res.Status, body)
	}
	// API clients keep problem documents, on page surfaces too.
	for _, p := range []string{"/portal/nothing", "/api/v1/nothing"} {
		res := w.send(t, portal, http.MethodGet, p, nil, map[string]string{"Accept": "application/json"})
		if !strings.HasPrefix(res.Header.Get("Content-Type"), app.ProblemContentType) || res.Status != http.StatusNotFound {
			t.Errorf("%s as an API client: %d %s", p, res.Status, res.Header.Get("Content-Type"))
		}
	}
	if errorsSeen < 20 {
		t.Fatalf("only %d of %d pages answered an error: the walk reached too few refusals", errorsSeen, seen)
	}
	t.Logf("%d page answers checked, %d of them error pages", seen, errorsSeen)
}
