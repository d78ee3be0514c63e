package calendar_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"marquee/app"
	"marquee/app/apptest"
	"marquee/config"
	"marquee/modules/calendar"
	"marquee/tenants"
)

var dbURL string

func TestMain(m *testing.M) { apptest.Main(m, "calendar", &dbURL) }

// chain is a tenant with its owner signed in, one venue and two stages.
type chain struct {
	env    *apptest.Env
	mod    *calendar.Module
	t      tenants.Tenant
	slug   string
	tok    string
	venue  string
	stageA string
	stageB string
	// browser is the signed-in browser of a browser test (signIn).
	browser context.Context
}

func startEnv(t testing.TB, opts ...func(*apptest.Options)) (*apptest.Env, *calendar.Module) {
	t.Helper()
	mod := calendar.New()
	o := apptest.Options{Modules: []app.Module{mod}, Configure: func(cfg *config.Config) {
		// Race tests send dozens of requests for one tenant at once: every
		// one must reach the database, none be shed with 503.
		cfg.MaxInFlight, cfg.TenantMaxInFlight, cfg.ShedWait = 512, 256, 5*time.Second
	}}
	for _, f := range opts {
		f(&o)
	}
	return apptest.Start(t, dbURL, o), mod
}

func newChain(t testing.TB, env *apptest.Env, mod *calendar.Module, prefix string) *chain {
	t.Helper()
	tn := env.Tenant(t, apptest.UniqueSlug(prefix))
	c := &chain{env: env, mod: mod, t: tn, slug: tn.Slug}
	c.tok = env.Login(t, tn.Slug, "owner@"+tn.Slug+".test")
	c.venue = c.newVenue(t, "Downtown Hall", "America/New_York")
	c.stageA = c.newStage(t, c.venue, "Main Stage")
	c.stageB = c.newStage(t, c.venue, "Club Room")
	return c
}

func (c *chain) do(t testing.TB, method, path string, body any, headers ...string) apptest.Response {
	t.Helper()
	return c.env.Do(t, method, c.slug, path, c.tok, body, headers...)
}

func (c *chain) newVenue(t testing.TB, name, tz string) string {
	t.Helper()
	res := c.do(t, "POST", "/api/v1/venues", map[string]any{
		"name": name, "address": "1 Main St", "timezone": tz, "latitude": 40.7, "longitude": -74.0, "capacity": 2000})
	mustStatus(t, res, http.StatusCreated)
	var v struct{ ID string }
	res.JSON(t, &v)
	return v.ID
}

func (c *chain) newStage(t testing.TB, venue, name string) string {
	t.Helper()
	res := c.do(t, "POST", "/api/v1/venues/"+venue+"/stages", map[string]any{"name": name, "capacity": 800, "type": "main"})
	mustStatus(t, res, http.StatusCreated)
	var s struct{ ID string }
	res.JSON(t, &s)
	return s.ID
}

// base is a fixed instant far enough ahead that "now" never interferes.
var base = time.Date(2031, 6, 12, 0, 0, 0, 0, time.UTC)

func at(h float64) string {
	return base.Add(time.Duration(h * float64(time.Hour))).Format(time.RFC3339)
}

func ev(stage string, from, to float64, extra ...any) map[string]any {
	m := map[string]any{"title": fmt.Sprintf("Show %v-%v", from, to), "category": "concert",
		"starts_at": at(from), "ends_at": at(to), "setup_minutes": 0, "teardown_minutes": 0}
	if stage == "" {
		m["exclusive"] = true
	} else {
		m["stage_id"] = stage
	}
	for i := 0; i+1 < len(extra); i += 2 {
		m[extra[i].(string)] = extra[i+1]
	}
	return m
}

type eventOut struct {
	ID                string  `json:"id"`
	VenueID           string  `json:"venue_id"`
	StageID           *string `json:"stage_id"`
	Exclusive         bool    `json:"exclusive"`
	Title             string  `json:"title"`
	Category          string  `json:"category"`
	Status            string  `json:"status"`
	Timezone          string  `json:"timezone"`
	StartsAt          string  `json:"starts_at"`
	EndsAt            string  `json:"ends_at"`
	StartsAtLocal     string  `json:"starts_at_local"`
	EndsAtLocal       string  `json:"ends_at_local"`
	OccupiedFrom      string  `json:"occupied_from"`
	OccupiedTo        string  `json:"occupied_to"`
	OccupiedFromLocal string  `json:"occupied_from_local"`
	Version           int     `json:"version"`
}

type conflictOut struct {
	Code      string `json:"code"`
	Detail    string `json:"detail"`
	Conflicts []struct {
		EventID      string `json:"event_id"`
		Title        string `json:"title"`
		OccupiedFrom string `json:"occupied_from"`
		OccupiedTo   string `json:"occupied_to"`
	} `json:"conflicts"`
}

func (c *chain) createEvent(t testing.TB, venue string, body map[string]any) eventOut {
	t.Helper()
	res := c.do(t, "POST", "/api/v1/venues/"+venue+"/events", body)
	mustStatus(t, res, http.StatusCreated)
	var e eventOut
	res.JSON(t, &e)
	return e
}

func (c *chain) conflict(t testing.TB, res apptest.Response) conflictOut {
	t.Helper()
	mustStatus(t, res, http.StatusConflict)
	var co conflictOut
	res.JSON(t, &co)
	if co.Code != "schedule_conflict" {
		t.Fatalf("want schedule_conflict, got %s", res.Body)
	}
	return co
}

// mustStatus and decode are apptest's, under the names these tests use.
var mustStatus = apptest.MustStatus

func decode[T any](t testing.TB, raw []byte) T { t.Helper(); return apptest.Decode[T](t, raw) }

// liveOverlaps asks PostgreSQL directly whether any two live events of the
// tenant overlap where they must not: the invariant every race test checks.
func (c *chain) liveOverlaps(t testing.TB) int {
	t.Helper()
	var n int
	row := c.env.App.DB.Raw(fmt.Sprintf(`SELECT count(*) FROM %q.cal_events a JOIN %q.cal_events b ON a.id < b.id
		WHERE a.venue_id = b.venue_id AND a.status <> 'cancelled' AND b.status <> 'cancelled'
		  AND a.occupied && b.occupied AND (a.exclusive OR b.exclusive OR a.stage_id = b.stage_id)`, c.t.Schema, c.t.Schema)).Row()
	if err := row.Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func (c *chain) count(t testing.TB, table string) int {
	t.Helper()
	var n int
	if err := c.env.App.DB.Raw(fmt.Sprintf(`SELECT count(*) FROM %q.%s`, c.t.Schema, table)).Row().Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func hold(stage string, from, to float64, extra ...any) map[string]any {
	m := map[string]any{"stage_id": stage, "title": fmt.Sprintf("Hold %v-%v", from, to), "category": "concert",
		"starts_at": at(from), "ends_at": at(to)}
	for i := 0; i+1 < len(extra); i += 2 {
		m[extra[i].(string)] = extra[i+1]
	}
	return m
}

type holdOut struct {
	ID        string  `json:"id"`
	StageID   string  `json:"stage_id"`
	Title     string  `json:"title"`
	Status    string  `json:"status"`
	Rank      int     `json:"rank"`
	RankLabel string  `json:"rank_label"`
	Blocked   bool    `json:"blocked_by_event"`
	ExpiresAt *string `json:"expires_at"`
	EventID   *string `json:"event_id"`
}

func (c *chain) createHold(t testing.TB, body map[string]any) holdOut {
	t.Helper()
	res := c.do(t, "POST", "/api/v1/venues/"+c.venue+"/holds", body)
	mustStatus(t, res, http.StatusCreated)
	return decode[holdOut](t, res.Body)
}

func (c *chain) hold(t testing.TB, id string) holdOut {
	t.Helper()
	res := c.do(t, "GET", "/api/v1/venues/"+c.venue+"/holds/"+id, nil)
	mustStatus(t, res, http.StatusOK)
	return decode[holdOut](t, res.Body)
}
