package modules_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"marquee/app"
	"marquee/app/apptest"
	"marquee/modules"
)

var dbURL string

func TestMain(m *testing.M) { apptest.Main(m, "modules", &dbURL) }

var pathParam = regexp.MustCompile(`[:*][A-Za-z_]+`)

// world is a tenant with one of everything the routes' parameters name.
type world struct {
	env      *apptest.Env
	slug     string
	owner    string
	params   map[string]string
	console  *http.Client
	csrf     string
	baseHost string
}

func newWorld(t *testing.T) *world {
	t.Helper()
	env := apptest.Start(t, dbURL, apptest.Options{Modules: modules.All()})
	tn := env.Tenant(t, apptest.UniqueSlug("walk"))
	w := &world{env: env, slug: tn.Slug, owner: env.Login(t, tn.Slug, "owner@"+tn.Slug+".test")}
	id := func(res apptest.Response) string {
		t.Helper()
		if res.Status != http.StatusCreated {
			t.Fatalf("setup: %d %s", res.Status, res.Body)
		}
		var v struct{ ID string }
		res.JSON(t, &v)
		return v.ID
	}
	venue := id(env.Do(t, "POST", tn.Slug, "/api/v1/venues", w.owner, map[string]any{"name": "Hall", "address": "1 Main St",
		"timezone": "Europe/Berlin", "capacity": 1000}))
	stage := id(env.Do(t, "POST", tn.Slug, "/api/v1/venues/"+venue+"/stages", w.owner, map[string]any{"name": "Main", "capacity": 1000, "type": "main"}))
	start := time.Now().UTC().AddDate(1, 0, 0).Truncate(time.Hour)
	event := id(env.Do(t, "POST", tn.Slug, "/api/v1/venues/"+venue+"/events", w.owner, map[string]any{"stage_id": stage, "title": "Walk",
		"category": "concert", "status": "confirmed", "starts_at": start.Format(time.RFC3339), "ends_at": start.Add(2 * time.Hour).Format(time.RFC3339)}))
	w.params = map[string]string{":venueId": venue, ":stageId": stage, ":eventId": event, ":holdId": "01900000-0000-7000-8000-000000000001",
		":orderId":   "01900000-0000-7000-8000-000000000002",
		":bookingId": "01900000-0000-7000-8000-000000000003", ":rentalId": "01900000-0000-7000-8000-000000000013", ":agentId": "01900000-0000-7000-8000-000000000004", ":n": "1", ":seatId": "A-1-1", ":queueToken": "x",
		":certId": "01900000-0000-7000-8000-000000000005", ":roleId": "01900000-0000-7000-8000-000000000006", ":staffId": "01900000-0000-7000-8000-000000000007",
		":checkinId": "01900000-0000-7000-8000-00000000000a", ":incidentId": "01900000-0000-7000-8000-00000000000b", ":connectorId": "01900000-0000-7000-8000-00000000000c",
		":ticketId": "01900000-0000-7000-8000-00000000000d", ":listingId": "01900000-0000-7000-8000-00000000000e", ":entryId": "01900000-0000-7000-8000-00000000000f",
		":requestId": "01900000-0000-7000-8000-000000000010", ":decision": "grant", ":tierId": "01900000-0000-7000-8000-000000000014", ":mailId": "01900000-0000-7000-8000-000000000011", ":decisionId": "01900000-0000-7000-8000-000000000012",
		":deviceId": "device-1", ":passTypeId": "pass.test", ":serial": "01900000-0000-7000-8000-000000000013", ":channel": "eventbrite", ":secret": "not-the-secret",
		":shiftId": "01900000-0000-7000-8000-000000000008", ":assignmentId": "01900000-0000-7000-8000-000000000009", ":day": "2031-01-01", ":slug": tn.Slug, ":userId": "01900000-0000-7000-8000-000000000015", ":swapId": "01900000-0000-7000-8000-000000000016", ":photoId": "01900000-0000-7000-8000-000000000017", "*path": "/", "*filepath": "/marquee.css", ":file": "scanner.js"}

	// Support staff on the console, with the form token its unsafe requests need.
	email := apptest.UniqueSlug("support") + "@marquee.test"
	if _, err := env.App.CreateSupportUser(t.Context(), email, "Support", apptest.Password); err != nil {
		t.Fatal(err)
	}
	jar, _ := cookiejar.New(nil)
	w.console = &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	w.baseHost = strings.TrimPrefix(env.Server.URL, "http://")
	token := regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)
	page := w.send(t, app.Route{Surface: app.SurfacePlatform}, "GET", "/console/login", nil, nil)
	m := token.FindStringSubmatch(string(page.Body))
	if m == nil {
		t.Fatalf("console login page: %s", page.Body)
	}
	res := w.send(t, app.Route{Surface: app.SurfacePlatform}, "POST", "/console/login",
		[]byte(url.Values{"csrf_token": {m[1]}, "email": {email}, "password": {apptest.Password}}.Encode()),
		map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
	if res.Status != http.StatusSeeOther {
		t.Fatalf("console login: %d", res.Status)
	}
	page = w.send(t, app.Route{Surface: app.SurfacePlatform}, "GET", "/console", nil, nil)
	if m = token.FindStringSubmatch(string(page.Body)); m == nil {
		t.Fatalf("console: %s", page.Body)
	}
	w.csrf = m[1]
	return w
}

// path fills a route's parameters.
func (w *world) path(rt app.Route) string {
	return pathParam.ReplaceAllStringFunc(rt.Path, func(p string) string {
		if v, ok := w.params[p]; ok {
			if strings.HasPrefix(p, "*") {
				return strings.TrimPrefix(v, "/")
			}
			return v
		}
		return p
	})
}

// send makes a request as the principal that can reach the route: the
// tenant's owner on tenant surfaces, support staff on the console.
func (w *world) send(t *testing.T, rt app.Route, method, path string, body []byte, headers map[string]string) apptest.Response {
	t.Helper()
	req, err := http.NewRequest(method, w.env.Server.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body == nil {
		req.Body, req.ContentLength = http.NoBody, 0
	}
	client := w.env.Client
	switch rt.Surface {
	case app.SurfacePlatform, app.SurfaceGlobal:
		req.Host = "localhost"
		client = w.console
		req.Header.Set(app.CSRFHeader, w.csrf)
		req.Header.Set("Origin", "http://localhost")
		// The jar keys cookies by the URL's host.
		for _, c := range w.console.Jar.Cookies(&url.URL{Scheme: "http", Host: "localhost"}) {
			req.AddCookie(c)
		}
	default:
		req.Host = w.slug + ".localhost"
		req.Header.Set("Authorization", "Bearer "+w.owner)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	if rt.Surface == app.SurfacePlatform || rt.Surface == app.SurfaceGlobal {
		w.console.Jar.SetCookies(&url.URL{Scheme: "http", Host: "localhost"}, resp.Cookies())
	}
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	return apptest.Response{Status: resp.StatusCode, Header: resp.Header, Body: buf.Bytes()}
}

// Every route refuses a body past the size limit before reading it, and
// every route that takes no body refuses any body, malformed or not; the
// refusals change nothing.
func TestEveryRouteBoundsItsBody(t *testing.T) {
	w := newWorld(t)
	huge := bytes.Repeat([]byte("x"), 2<<20)
	noBody := 0
	for _, rt := range w.env.App.Routes() {
		if rt.Method == http.MethodHead {
			continue
		}
		name := rt.Method + " " + rt.Path
		path := w.path(rt)
		if strings.Contains(path, ":") {
			t.Fatalf("%s: no value for a parameter of %s", name, rt.Path)
		}
		res := w.send(t, rt, rt.Method, path, huge, map[string]string{"Content-Type": "application/json", "Idempotency-Key": "walk-" + name})
		if res.Status != http.StatusRequestEntityTooLarge {
			t.Errorf("%s with a 2 MiB body: %d %.200s", name, res.Status, res.Body)
		}
		if !rt.NoBody {
			continue
		}
		noBody++
		for _, body := range []string{`{"malformed":`, `{}`, "x"} {
			res := w.send(t, rt, rt.Method, path, []byte(body), map[string]string{"Content-Type": "application/json", "Idempotency-Key": "walk-" + name})
			if res.Status != http.StatusBadRequest || !strings.Contains(string(res.Body), "body_not_allowed") {
				t.Errorf("%s with body %q: %d %.200s", name, body, res.Status, res.Body)
			}
		}
	}
	if noBody < 20 {
		t.Fatalf("only %d routes take no body", noBody)
	}
	// The refused logout (a POST) left the session alone.
	if res := w.env.Do(t, "GET", w.slug, "/api/v1/me", w.owner, nil); res.Status != http.StatusOK {
		t.Fatalf("session after refused logouts: %d", res.Status)
	}
	// No-body routes still work without one.
	if res := w.env.Do(t, "POST", w.slug, "/api/v1/buyer-sessions", "", nil); res.Status != http.StatusCreated {
		t.Fatalf("buyer session without a body: %d %s", res.Status, res.Body)
	}
}

// Every list answers an array, never null, even when it is empty.
func TestEveryListIsAnArray(t *testing.T) {
	w := newWorld(t)
	lists := 0
	for _, rt := range w.env.App.Routes() {
		if rt.Method != http.MethodGet || rt.Surface != app.SurfaceAPI || strings.HasSuffix(rt.Path, "/stream") {
			continue
		}
		res := w.send(t, rt, "GET", w.path(rt), nil, nil)
		var doc map[string]json.RawMessage
		if res.Status != http.StatusOK || json.Unmarshal(res.Body, &doc) != nil {
			continue
		}
		items, ok := doc["items"]
		if !ok {
			continue
		}
		lists++
		if s := strings.TrimSpace(string(items)); !strings.HasPrefix(s, "[") {
			t.Errorf("GET %s: items is %s", rt.Path, s)
		}
	}
	if lists < 8 {
		t.Fatalf("only %d list routes answered", lists)
	}
	t.Logf("%d lists walked", lists)
}

// TestEveryRouteDeclaresPermission: registration refuses a route without a
// permission; this holds the assembled app to it too, so a route added by
// any other way than the Registrar is caught as well.
func TestEveryRouteDeclaresPermission(t *testing.T) {
	env := apptest.Start(t, dbURL, apptest.Options{Modules: modules.All()})
	routes := env.App.Routes()
	if len(routes) < 50 {
		t.Fatalf("the app registered only %d routes", len(routes))
	}
	for _, r := range routes {
		if r.Perm.String() == "unset" || (r.Perm.Kind == app.PermCasbin && (r.Perm.Object == "" || r.Perm.Action == "")) {
			t.Errorf("%s: route %s %s has no complete permission (%s)", r.Module, r.Method, r.Path, r.Perm)
		}
	}
}
