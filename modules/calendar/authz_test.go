package calendar_test

import (
	"net/http"
	"testing"
)

func TestVenueScopedAuthorization(t *testing.T) {
	env, mod := startEnv(t)
	a := newChain(t, env, mod, "authz")
	v1, v2 := a.venue, a.newVenue(t, "Riverside", "Europe/London")
	v2stage := a.newStage(t, v2, "Hall")

	env.User(t, a.t, "mgr@a.test", "venue_manager", v1)
	env.User(t, a.t, "promo@a.test", "promoter", "")
	env.User(t, a.t, "door@a.test", "door_staff", v1)
	mgr := env.Login(t, a.slug, "mgr@a.test")
	promo := env.Login(t, a.slug, "promo@a.test")
	door := env.Login(t, a.slug, "door@a.test")
	as := func(tok, method, path string, body any) int {
		t.Helper()
		return env.Do(t, method, a.slug, path, tok, body).Status
	}

	cases := []struct {
		name   string
		tok    string
		method string
		path   string
		body   any
		want   int
	}{
		{"manager books at own venue", mgr, "POST", "/api/v1/venues/" + v1 + "/events", ev(a.stageA, 10, 12), 201},
		{"manager books at another venue", mgr, "POST", "/api/v1/venues/" + v2 + "/events", ev(v2stage, 10, 12), 403},
		{"manager reads another venue", mgr, "GET", "/api/v1/venues/" + v2, nil, 403},
		{"manager edits own venue", mgr, "PATCH", "/api/v1/venues/" + v1, map[string]any{"address": "2 Main St"}, 200},
		{"manager adds a stage at own venue", mgr, "POST", "/api/v1/venues/" + v1 + "/stages", map[string]any{"name": "Patio", "capacity": 50}, 201},
		{"manager adds a stage elsewhere", mgr, "POST", "/api/v1/venues/" + v2 + "/stages", map[string]any{"name": "Patio", "capacity": 50}, 403},
		{"manager creates a venue", mgr, "POST", "/api/v1/venues", map[string]any{"name": "X", "timezone": "UTC", "capacity": 5}, 403},
		{"manager deletes own venue", mgr, "DELETE", "/api/v1/venues/" + v1, nil, 403},
		{"manager reads the chain calendar", mgr, "GET", "/api/v1/calendar", nil, 403},
		{"manager reads own calendar", mgr, "GET", "/api/v1/venues/" + v1 + "/calendar", nil, 200},
		{"manager holds at own venue", mgr, "POST", "/api/v1/venues/" + v1 + "/holds", hold(a.stageB, 30, 32), 201},
		{"manager holds elsewhere", mgr, "POST", "/api/v1/venues/" + v2 + "/holds", hold(v2stage, 30, 32), 403},
		{"promoter books anywhere", promo, "POST", "/api/v1/venues/" + v2 + "/events", ev(v2stage, 10, 12), 201},
		{"promoter creates a venue", promo, "POST", "/api/v1/venues", map[string]any{"name": "X", "timezone": "UTC", "capacity": 5}, 403},
		{"promoter edits a venue", promo, "PATCH", "/api/v1/venues/" + v1, map[string]any{"address": "3 Main St"}, 403},
		{"promoter reads the chain calendar", promo, "GET", "/api/v1/calendar", nil, 200},
		{"door staff read their venue's events", door, "GET", "/api/v1/venues/" + v1 + "/events", nil, 200},
		{"door staff book", door, "POST", "/api/v1/venues/" + v1 + "/events", ev(a.stageA, 50, 52), 403},
		{"door staff read holds", door, "GET", "/api/v1/venues/" + v1 + "/holds", nil, 403},
		{"anonymous", "", "GET", "/api/v1/venues/" + v1, nil, 401},
	}
	for _, tc := range cases {
		if got := as(tc.tok, tc.method, tc.path, tc.body); got != tc.want {
			t.Errorf("%s: %s %s = %d, want %d", tc.name, tc.method, tc.path, got, tc.want)
		}
	}

	// Door staff read the calendar without the tentative holds.
	res0 := env.Do(t, "GET", a.slug, "/api/v1/venues/"+v1+"/calendar?from=2031-06-12&to=2031-06-14", door, nil)
	mustStatus(t, res0, http.StatusOK)
	cal := decode[struct {
		Stages []struct{ Events, Holds []map[string]any }
	}](t, res0.Body)
	if len(cal.Stages[0].Events) != 1 || len(cal.Stages[1].Holds) != 0 {
		t.Fatalf("door staff calendar: %s", res0.Body)
	}
	res0 = env.Do(t, "GET", a.slug, "/api/v1/venues/"+v1+"/calendar?from=2031-06-12&to=2031-06-14", mgr, nil)
	if cal := decode[struct {
		Stages []struct{ Holds []map[string]any }
	}](t, res0.Body); len(cal.Stages[1].Holds) != 1 {
		t.Fatalf("manager calendar: %s", res0.Body)
	}

	// A venue manager lists only their venue.
	res := env.Do(t, "GET", a.slug, "/api/v1/venues", mgr, nil)
	list := decode[struct{ Items []struct{ ID string } }](t, res.Body)
	if len(list.Items) != 1 || list.Items[0].ID != v1 {
		t.Fatalf("manager's venues: %s", res.Body)
	}

	// Another tenant's venue id does not exist here: 404 for every user of
	// this tenant, whatever their role, and nothing is written there.
	b := newChain(t, env, mod, "authz-b")
	for _, who := range []struct{ name, tok string }{{"owner", a.tok}, {"manager", mgr}, {"promoter", promo}, {"door", door}} {
		for _, rq := range []struct {
			method, path string
			body         any
		}{
			{"GET", "/api/v1/venues/" + b.venue, nil},
			{"GET", "/api/v1/venues/" + b.venue + "/events", nil},
			{"POST", "/api/v1/venues/" + b.venue + "/events", ev(b.stageA, 10, 12)},
			{"GET", "/api/v1/venues/" + b.venue + "/calendar", nil},
		} {
			res := env.Do(t, rq.method, a.slug, rq.path, who.tok, rq.body)
			if res.Status != http.StatusNotFound {
				t.Errorf("%s of A: %s %s (B's venue) = %d %s, want 404", who.name, rq.method, rq.path, res.Status, res.Body)
			}
		}
	}
	if n := b.count(t, "cal_events"); n != 0 {
		t.Fatalf("tenant B has %d events", n)
	}
	// And A's token on B's host is refused outright.
	if res := env.Do(t, "GET", b.slug, "/api/v1/venues/"+b.venue, a.tok, nil); res.Status != http.StatusForbidden {
		t.Fatalf("A's token on B: %d %s", res.Status, res.Body)
	}
	// The core validates venue ids of role assignments through the calendar.
	u := env.User(t, a.t, "later@a.test", "", "")
	res = a.do(t, "POST", "/api/v1/role-assignments", map[string]any{"user_id": u.ID.String(), "role": "box_office", "venue_id": b.venue})
	mustStatus(t, res, http.StatusNotFound)
	res = a.do(t, "POST", "/api/v1/role-assignments", map[string]any{"user_id": u.ID.String(), "role": "box_office", "venue_id": v2})
	mustStatus(t, res, http.StatusCreated)
}
