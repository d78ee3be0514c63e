package booking_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"marquee/app"
	"marquee/app/apptest"
	"marquee/modules/booking"
	"marquee/modules/calendar"
	"marquee/tenants"
)

var dbURL string

func TestMain(m *testing.M) { apptest.Main(m, "booking", &dbURL) }

func startEnv(t testing.TB, opts ...func(*apptest.Options)) (*apptest.Env, *booking.Module) {
	t.Helper()
	mod := booking.New()
	o := apptest.Options{Modules: []app.Module{calendar.New(), mod}}
	for _, f := range opts {
		f(&o)
	}
	return apptest.Start(t, dbURL, o), mod
}

// chain is a tenant with its owner signed in, a venue with a stage, two
// agents (each with an artist and a link) and nothing booked yet.
type chain struct {
	env              *apptest.Env
	t                tenants.Tenant
	slug, tok        string
	venue, stage     string
	agentA, agentB   string
	artistA, artistB string
	linkA, linkB     string
}

func newChain(t testing.TB, env *apptest.Env, prefix string) *chain {
	t.Helper()
	tn := env.Tenant(t, apptest.UniqueSlug(prefix))
	c := &chain{env: env, t: tn, slug: tn.Slug}
	c.tok = env.Login(t, tn.Slug, "owner@"+tn.Slug+".test")
	c.venue = c.id(t, c.do(t, "POST", "/api/v1/venues", map[string]any{"name": "Hall", "timezone": "America/New_York", "capacity": 2000}))
	c.stage = c.id(t, c.do(t, "POST", "/api/v1/venues/"+c.venue+"/stages", map[string]any{"name": "Main", "capacity": 1800, "type": "main"}))
	c.agentA = c.id(t, c.do(t, "POST", "/api/v1/booking/agents", map[string]any{"name": "Maya", "email": "maya@" + c.slug + ".test", "agency": "Northstar"}))
	c.agentB = c.id(t, c.do(t, "POST", "/api/v1/booking/agents", map[string]any{"name": "Leo", "email": "leo@" + c.slug + ".test"}))
	c.artistA = c.id(t, c.do(t, "POST", "/api/v1/booking/artists", map[string]any{"name": "Velvet Static", "agent_id": c.agentA}))
	c.artistB = c.id(t, c.do(t, "POST", "/api/v1/booking/artists", map[string]any{"name": "Brass Tide", "agent_id": c.agentB}))
	c.linkA, c.linkB = c.link(t, c.agentA, 24), c.link(t, c.agentB, 24)
	return c
}

func (c *chain) link(t testing.TB, agent string, hours int) string {
	t.Helper()
	res := c.do(t, "POST", "/api/v1/booking/agents/"+agent+"/links", map[string]any{"valid_hours": hours})
	mustStatus(t, res, http.StatusCreated)
	return decode[booking.AgentLink](t, res.Body).Token
}

func (c *chain) do(t testing.TB, method, path string, body any, headers ...string) apptest.Response {
	t.Helper()
	return c.env.Do(t, method, c.slug, path, c.tok, body, headers...)
}

// agent acts through an agent link, signed in as nobody.
func (c *chain) agent(t testing.TB, link, method, path string, body any) apptest.Response {
	t.Helper()
	return c.env.Do(t, method, c.slug, path, "", body, booking.AgentTokenHeader, link)
}

func (c *chain) id(t testing.TB, res apptest.Response) string {
	t.Helper()
	mustStatus(t, res, http.StatusCreated)
	var v struct{ ID string }
	res.JSON(t, &v)
	return v.ID
}

func (c *chain) hold(t testing.TB, day int) string {
	t.Helper()
	start := time.Date(2031, 6, day, 20, 0, 0, 0, time.UTC)
	return c.id(t, c.do(t, "POST", "/api/v1/venues/"+c.venue+"/holds", map[string]any{"stage_id": c.stage, "title": "Hold " + fmt.Sprint(day),
		"starts_at": start.Format(time.RFC3339), "ends_at": start.Add(3 * time.Hour).Format(time.RFC3339)}))
}

// offerTerms are valid terms: a versus deal of guarantee g.
func offerTerms(g int64) map[string]any {
	return map[string]any{
		"currency": "USD", "guarantee_minor": g,
		"deal":                map[string]any{"type": "versus", "basis": "net", "artist_bps": 8500},
		"promoter_profit_bps": 1500,
		"tiers":               []any{map[string]any{"name": "GA", "price_minor": 4000, "allotment": 800}, map[string]any{"name": "VIP", "price_minor": 10000, "allotment": 100}},
		"expenses":            []any{map[string]any{"name": "Rent", "budget_minor": 300000}, map[string]any{"name": "Production", "budget_minor": 200000, "cap_minor": 220000}},
		"tax_rate_bps":        1000, "tax_inclusive": true,
		"deposits":     []any{map[string]any{"name": "Half on signing", "kind": "percent", "bps": 5000, "due": "2031-02-01"}},
		"withholdings": []any{map[string]any{"jurisdiction": "US-NY", "threshold_minor": 100000, "bps": 200}},
		"rider":        "Towels", "set_minutes": 90, "radius": map[string]any{"miles": 50, "days_before": 30, "days_after": 30},
	}
}

func (c *chain) create(t testing.TB, artist string, extra ...any) booking.Detail {
	t.Helper()
	body := map[string]any{"artist_id": artist, "title": "Offer", "terms": offerTerms(1000000)}
	for i := 0; i+1 < len(extra); i += 2 {
		body[extra[i].(string)] = extra[i+1]
	}
	res := c.do(t, "POST", "/api/v1/bookings", body)
	mustStatus(t, res, http.StatusCreated)
	return decode[booking.Detail](t, res.Body)
}

// act runs a staff transition at the booking's version.
func (c *chain) act(t testing.TB, d booking.Detail, verb string, body map[string]any) booking.Detail {
	t.Helper()
	if body == nil {
		body = map[string]any{}
	}
	body["version"] = d.Version
	res := c.do(t, "PUT", "/api/v1/bookings/"+d.ID.String()+"/"+verb, body)
	mustStatus(t, res, http.StatusOK)
	return decode[booking.Detail](t, res.Body)
}

func (c *chain) agentAct(t testing.TB, link string, d booking.Detail, verb string, body map[string]any) booking.Detail {
	t.Helper()
	if body == nil {
		body = map[string]any{}
	}
	body["version"] = d.Version
	res := c.agent(t, link, "PUT", "/api/v1/agent/bookings/"+d.ID.String()+"/"+verb, body)
	mustStatus(t, res, http.StatusOK)
	return decode[booking.Detail](t, res.Body)
}

func (c *chain) count(t testing.TB, table string) int {
	t.Helper()
	var n int
	if err := c.env.App.DB.Raw(fmt.Sprintf(`SELECT count(*) FROM %q.%s`, c.t.Schema, table)).Row().Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// mustStatus and decode are apptest's, under the names these tests use.
var mustStatus = apptest.MustStatus

func decode[T any](t testing.TB, raw []byte) T { t.Helper(); return apptest.Decode[T](t, raw) }

// mustProblem fails unless res is a problem document with this status and code.
func mustProblem(t testing.TB, res apptest.Response, status int, code string) {
	t.Helper()
	if res.Status != status || res.Code() != code {
		t.Fatalf("want %d %s, got %d %s: %s", status, code, res.Status, res.Code(), res.Body)
	}
}
