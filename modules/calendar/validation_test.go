package calendar_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"marquee/app/apptest"
	"marquee/modules/calendar"
)

func TestStatusTransitions(t *testing.T) {
	cases := []struct {
		from, to calendar.Status
		ok       bool
	}{
		{calendar.StatusDraft, calendar.StatusConfirmed, true},
		{calendar.StatusDraft, calendar.StatusOnSale, false},
		{calendar.StatusDraft, calendar.StatusCancelled, true},
		{calendar.StatusConfirmed, calendar.StatusOnSale, true},
		{calendar.StatusConfirmed, calendar.StatusDraft, true},
		{calendar.StatusOnSale, calendar.StatusSoldOut, true},
		{calendar.StatusSoldOut, calendar.StatusOnSale, true},
		{calendar.StatusSoldOut, calendar.StatusDraft, false},
		{calendar.StatusOnSale, calendar.StatusCompleted, true},
		{calendar.StatusCompleted, calendar.StatusCancelled, false},
		{calendar.StatusCancelled, calendar.StatusConfirmed, false},
		{calendar.StatusCancelled, calendar.StatusCancelled, true},
	}
	for _, c := range cases {
		if got := calendar.CanMove(c.from, c.to); got != c.ok {
			t.Errorf("%s -> %s: %v, want %v", c.from, c.to, got, c.ok)
		}
	}
	if calendar.ValidStatus("postponed") || !calendar.ValidStatus(calendar.StatusSoldOut) {
		t.Error("ValidStatus")
	}
}

func TestTimezones(t *testing.T) {
	for _, tz := range []string{"America/New_York", "Europe/London", "Asia/Kolkata", "UTC", "Australia/Lord_Howe"} {
		if _, err := calendar.LoadTimezone(tz); err != nil {
			t.Errorf("%s: %v", tz, err)
		}
	}
	for _, tz := range []string{"", "Local", "Mars/Olympus_Mons", " Europe/London", "../../etc/passwd", strings.Repeat("A", 80)} {
		if _, err := calendar.LoadTimezone(tz); err == nil {
			t.Errorf("%q accepted", tz)
		}
	}
	w := calendar.Window{From: time.Unix(0, 0), To: time.Unix(0, 0).Add(93 * 24 * time.Hour)}
	if calendar.CheckRange(w) == nil {
		t.Error("93 days accepted")
	}
	if (calendar.Window{From: time.Unix(0, 0), To: time.Unix(3600, 0)}).Overlaps(calendar.Window{From: time.Unix(3600, 0), To: time.Unix(7200, 0)}) {
		t.Error("back-to-back windows overlap")
	}
}

func TestBadInputChangesNothing(t *testing.T) {
	env, mod := startEnv(t)
	c := newChain(t, env, mod, "badinput")
	events := "/api/v1/venues/" + c.venue + "/events"
	with := func(k string, v any) map[string]any {
		m := ev(c.stageA, 20, 22)
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	// Each bad body to POST events: a clean problem document, no event and no
	// occupancy written.
	unchanged := map[string]int{"cal_events": 0, "cal_occupancy": 0}
	scenario := func(name string, body any, status int) apptest.Scenario {
		return apptest.Scenario{Name: name, Method: "POST", Path: events, Tenant: c.slug, Token: c.tok, Body: body,
			Status: status, Problem: true, Changes: unchanged}
	}
	cases := []struct {
		name   string
		body   any
		status int
	}{
		{"malformed JSON", `{"title": "x", `, 400},
		{"not an object", `[1, 2, 3]`, 400},
		{"two values", `{} {}`, 400},
		{"empty body", ``, 400},
		{"wrong type", with("setup_minutes", "sixty"), 400},
		{"float minutes", with("teardown_minutes", 1.5), 400},
		{"huge number", `{"setup_minutes": 1e40}`, 400},
		{"unknown field", with("colour", "red"), 400},
		{"ends before start", with("ends_at", at(19)), 400},
		{"zero length", with("ends_at", at(20)), 400},
		{"no offset", with("starts_at", "2031-06-12T20:00:00"), 400},
		{"not a time", with("starts_at", "tomorrow at eight"), 400},
		{"missing start", with("starts_at", nil), 400},
		{"year 1999", with("starts_at", "1999-12-31T20:00:00Z"), 400},
		{"a month long", with("ends_at", at(20+32*24)), 400},
		{"absurd setup", with("setup_minutes", 100000), 400},
		{"negative teardown", with("teardown_minutes", -5), 400},
		{"a day and a minute", with("setup_minutes", 1441), 400},
		{"empty title", with("title", "   "), 400},
		{"long title", with("title", strings.Repeat("x", 201)), 400},
		{"control characters", with("title", "bad\x00title"), 400},
		{"bad category", with("category", "Rock & Roll"), 400},
		{"bad stage id", with("stage_id", "abc"), 400},
		{"unknown stage", with("stage_id", uuid.NewString()), 404},
		{"no stage", with("stage_id", nil), 400},
		{"exclusive with stage", with("exclusive", true), 400},
		{"unknown promoter", with("promoter_id", uuid.NewString()), 400},
		{"bad promoter id", with("promoter_id", "12"), 400},
		{"completed on creation", with("status", "completed"), 400},
		{"unknown status", with("status", "postponed"), 400},
	}
	var scenarios []apptest.Scenario
	for _, tc := range cases {
		scenarios = append(scenarios, scenario(tc.name, tc.body, tc.status))
	}
	scenarios = append(scenarios,
		apptest.Scenario{Name: "text/plain", Method: "POST", Path: events, Tenant: c.slug, Token: c.tok, Body: "title=x",
			Headers: map[string]string{"Content-Type": "text/plain"}, Status: http.StatusUnsupportedMediaType, Changes: unchanged},
		apptest.Scenario{Name: "2 MiB body", Method: "POST", Path: events, Tenant: c.slug, Token: c.tok,
			Body: `{"title": "` + strings.Repeat("x", 2<<20) + `"}`, Status: http.StatusRequestEntityTooLarge, Changes: unchanged})
	apptest.RunScenarios(t, env, scenarios)
	if n := c.count(t, "cal_events") + c.count(t, "cal_occupancy"); n != 0 {
		t.Fatalf("bad input wrote %d rows", n)
	}

	// Text that looks like SQL or markup is just text, stored verbatim.
	for _, title := range []string{`Robert'); DROP TABLE events;--`, `<script>alert(1)</script> & "friends"`, `1 OR 1=1; SELECT pg_sleep(10)`} {
		e := c.createEvent(t, c.venue, with("title", title))
		res := c.do(t, "GET", events+"/"+e.ID, nil)
		if got := decode[eventOut](t, res.Body).Title; got != title {
			t.Fatalf("title stored as %q, want %q", got, title)
		}
		mustStatus(t, c.do(t, "PATCH", events+"/"+e.ID, map[string]any{"status": "cancelled"}), http.StatusOK)
	}

	// A bad patch leaves the event as it was.
	e := c.createEvent(t, c.venue, ev(c.stageB, 50, 52))
	patch := func(name string, body map[string]any) apptest.Scenario {
		return apptest.Scenario{Name: "patch " + name, Method: "PATCH", Path: events + "/" + e.ID, Tenant: c.slug, Token: c.tok,
			Body: body, Status: http.StatusBadRequest}
	}
	apptest.RunScenarios(t, env, []apptest.Scenario{
		patch("ends before start", map[string]any{"ends_at": at(49)}),
		patch("absurd setup", map[string]any{"setup_minutes": 99999}),
		patch("empty stage", map[string]any{"stage_id": ""}),
		patch("exclusive with stage", map[string]any{"stage_id": c.stageA, "exclusive": true}),
		patch("title a number", map[string]any{"title": 42}),
		patch("unknown field", map[string]any{"nonsense": true}),
		patch("nothing", map[string]any{}),
	})
	if got := decode[eventOut](t, c.do(t, "GET", events+"/"+e.ID, nil).Body); got.Version != 1 || got.StartsAt != at(50) {
		t.Fatalf("bad patches changed the event: %+v", got)
	}

	// Venues: timezone, coordinates, capacity.
	venuesBefore := c.count(t, "cal_venues")
	venue := func(name string, body map[string]any) apptest.Scenario {
		return apptest.Scenario{Name: "venue " + name, Method: "POST", Path: "/api/v1/venues", Tenant: c.slug, Token: c.tok,
			Body: body, Status: http.StatusBadRequest, Changes: map[string]int{"cal_venues": 0}}
	}
	apptest.RunScenarios(t, env, []apptest.Scenario{
		venue("empty timezone", map[string]any{"name": "X", "timezone": "", "capacity": 10}),
		venue("Local timezone", map[string]any{"name": "X", "timezone": "Local", "capacity": 10}),
		venue("unknown timezone", map[string]any{"name": "X", "timezone": "Mars/Olympus_Mons", "capacity": 10}),
		venue("no timezone", map[string]any{"name": "X", "capacity": 10}),
		venue("no capacity", map[string]any{"name": "X", "timezone": "UTC", "capacity": 0}),
		venue("latitude 91", map[string]any{"name": "X", "timezone": "UTC", "capacity": 10, "latitude": 91, "longitude": 0}),
		venue("longitude -181", map[string]any{"name": "X", "timezone": "UTC", "capacity": 10, "latitude": 10, "longitude": -181}),
		venue("latitude alone", map[string]any{"name": "X", "timezone": "UTC", "capacity": 10, "latitude": 10}),
		venue("empty name", map[string]any{"name": "", "timezone": "UTC", "capacity": 10}),
		venue("capacity a word", map[string]any{"name": "X", "timezone": "UTC", "capacity": "ten"}),
		{Name: "patch venue to Local time", Method: "PATCH", Path: "/api/v1/venues/" + c.venue, Tenant: c.slug, Token: c.tok,
			Body: map[string]any{"timezone": "Local"}, Status: http.StatusBadRequest},
	})
	if c.count(t, "cal_venues") != venuesBefore {
		t.Fatal("bad venues were written")
	}
}

func TestCalendarReads(t *testing.T) {
	env, mod := startEnv(t)
	c := newChain(t, env, mod, "reads")
	c.createEvent(t, c.venue, ev(c.stageA, 20, 23, "title", "In range"))
	c.createEvent(t, c.venue, ev("", 44, 46, "title", "Gala"))
	c.createEvent(t, c.venue, ev(c.stageA, 24*30, 24*30+2, "title", "Far away"))
	c.createHold(t, hold(c.stageB, 20, 23, "title", "First"))
	c.createHold(t, hold(c.stageB, 21, 22, "title", "Second"))
	london := c.newVenue(t, "Riverside", "Europe/London")
	ls := c.newStage(t, london, "Hall")
	c.createEvent(t, london, ev(ls, 20, 22, "title", "London show"))

	res := c.do(t, "GET", "/api/v1/venues/"+c.venue+"/calendar?from=2031-06-12&to=2031-06-19", nil)
	mustStatus(t, res, http.StatusOK)
	cal := decode[struct {
		Timezone  string `json:"timezone"`
		FromLocal string `json:"from_local"`
		From      string `json:"from"`
		Stages    []struct {
			Stage  struct{ Name string }
			Events []eventOut
			Holds  []holdOut
		}
		ExclusiveEvents []eventOut `json:"exclusive_events"`
	}](t, res.Body)
	if cal.FromLocal != "2031-06-12T00:00:00-04:00" || cal.From != "2031-06-12T04:00:00Z" || cal.Timezone != "America/New_York" {
		t.Fatalf("range in venue time: %s", res.Body)
	}
	if len(cal.Stages) != 2 || len(cal.Stages[0].Events) != 1 || cal.Stages[0].Events[0].Title != "In range" ||
		len(cal.Stages[1].Holds) != 2 || cal.Stages[1].Holds[1].Rank != 2 || len(cal.ExclusiveEvents) != 1 {
		t.Fatalf("calendar: %s", res.Body)
	}

	res = c.do(t, "GET", "/api/v1/calendar?from=2031-06-12T00:00:00Z&to=2031-06-14T00:00:00Z", nil)
	mustStatus(t, res, http.StatusOK)
	chain := decode[struct {
		Venues []struct {
			Venue  struct{ Name string }
			Stages []struct{ Events []eventOut }
		}
	}](t, res.Body)
	if len(chain.Venues) != 2 || chain.Venues[1].Venue.Name != "Riverside" || chain.Venues[1].Stages[0].Events[0].Title != "London show" {
		t.Fatalf("chain calendar: %s", res.Body)
	}
	for _, q := range []string{"from=2031-01-01&to=2031-06-01", "from=2031-06-12&to=2031-06-11", "from=yesterday", "to=2031-13-01"} {
		mustStatus(t, c.do(t, "GET", "/api/v1/venues/"+c.venue+"/calendar?"+q, nil), http.StatusBadRequest)
	}
}
