package staffing_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/app/apptest"
	"marquee/internal/mailcatch"
	"marquee/modules/calendar"
	"marquee/modules/staffing"
	"marquee/policies"
	"marquee/tenants"
)

var dbURL string

func TestMain(m *testing.M) { apptest.Main(m, "staffing", &dbURL) }

// fakeFacts is a ticket seller for tests: sold tickets per event, set by
// the test, reported as one tier (app.TicketFacts).
type fakeFacts struct {
	mu   sync.Mutex
	sold map[uuid.UUID]int
}

func (f *fakeFacts) Name() string { return "fakefacts" }

func (f *fakeFacts) Register(r *app.Registrar) error {
	r.ProvideTicketFacts(f)
	return nil
}

func (f *fakeFacts) set(event string, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sold[uuid.MustParse(event)] = n
}

func (f *fakeFacts) SalesByTier(_ context.Context, _ tenants.Tenant, eventID uuid.UUID) ([]app.TierSales, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return []app.TierSales{{Tier: "GA", Sold: f.sold[eventID], PriceMinor: 3000, Currency: "USD"}}, nil
}

// clock is the App's clock, moved by tests.
type clock struct{ ns atomic.Int64 }

func newClock(at time.Time) *clock {
	c := &clock{}
	c.set(at)
	return c
}
func (c *clock) now() time.Time   { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) set(at time.Time) { c.ns.Store(at.UnixNano()) }

type env struct {
	*apptest.Env
	mod   *staffing.Module
	facts *fakeFacts
	clock *clock
}

// startEnv starts an App with the calendar, staffing and a fake ticket
// seller. Its clock is real unless the test moves it.
func startEnv(t testing.TB, c *clock) *env {
	t.Helper()
	mod, facts := staffing.New(), &fakeFacts{sold: map[uuid.UUID]int{}}
	return startEnvWith(t, c, facts, mod)
}

// startEnvWith is startEnv with more modules after staffing.
func startEnvWith(t testing.TB, c *clock, facts *fakeFacts, mod *staffing.Module, more ...app.Module) *env {
	t.Helper()
	o := apptest.Options{Modules: append([]app.Module{calendar.New(), facts, mod}, more...), DBMaxConns: 20}
	if c != nil {
		o.Clock = c.now
	}
	return &env{Env: apptest.Start(t, dbURL, o), mod: mod, facts: facts, clock: c}
}

// chain is a tenant with its owner signed in, a venue in New York, a stage,
// one event a year out, and the staffing catalogue: certifications
// (senior first aid includes first aid), roles, nobody on staff yet.
type chain struct {
	e         *env
	t         tenants.Tenant
	slug, tok string
	venue     string
	stage     string
	event     string
	eventAt   time.Time // the event's start (20:00 New York)
	certs     map[string]string
	roles     map[string]string
}

var newYork, _ = time.LoadLocation("America/New_York")

func newChain(t testing.TB, e *env, prefix string) *chain {
	t.Helper()
	tn := e.Tenant(t, apptest.UniqueSlug(prefix))
	c := &chain{e: e, t: tn, slug: tn.Slug, certs: map[string]string{}, roles: map[string]string{}}
	c.tok = e.Login(t, tn.Slug, "owner@"+tn.Slug+".test")
	c.venue = c.id(t, c.do(t, "POST", "/api/v1/venues", map[string]any{"name": "Hall", "timezone": "America/New_York", "capacity": 2400}))
	c.stage = c.id(t, c.do(t, "POST", "/api/v1/venues/"+c.venue+"/stages", map[string]any{"name": "Main", "capacity": 2000, "type": "main"}))
	year := time.Now().Year() + 1
	c.eventAt = time.Date(year, 6, 12, 20, 0, 0, 0, newYork)
	c.event = c.newEvent(t, c.eventAt, "Show")
	c.certs["first_aid"] = c.id(t, c.do(t, "POST", "/api/v1/staffing/certifications", map[string]any{"key": "first_aid", "name": "First aid"}))
	c.certs["senior_first_aid"] = c.id(t, c.do(t, "POST", "/api/v1/staffing/certifications", map[string]any{"key": "senior_first_aid", "name": "Senior first aider", "includes": []string{c.certs["first_aid"]}}))
	for _, r := range []struct{ key, signup, cert string }{{"bar", "open", ""}, {"security", "approve", ""}, {"medic", "open", "first_aid"}, {"crew", "closed", ""}} {
		body := map[string]any{"key": r.key, "name": r.key, "signup": r.signup}
		if r.cert != "" {
			body["certification_id"] = c.certs[r.cert]
		}
		c.roles[r.key] = c.id(t, c.do(t, "POST", "/api/v1/staffing/roles", body))
	}
	return c
}

func (c *chain) newEvent(t testing.TB, start time.Time, title string) string {
	t.Helper()
	return c.id(t, c.do(t, "POST", "/api/v1/venues/"+c.venue+"/events", map[string]any{"stage_id": c.stage, "title": title, "category": "concert",
		"status": "on_sale", "starts_at": start.UTC().Format(time.RFC3339), "ends_at": start.Add(3 * time.Hour).UTC().Format(time.RFC3339)}))
}

func (c *chain) do(t testing.TB, method, path string, body any) apptest.Response {
	t.Helper()
	return c.e.Do(t, method, c.slug, path, c.tok, body)
}

func (c *chain) id(t testing.TB, res apptest.Response) string {
	t.Helper()
	mustStatus(t, res, http.StatusCreated)
	var v struct{ ID string }
	res.JSON(t, &v)
	return v.ID
}

// person is a staff member who can sign in.
type person struct {
	id, user, tok, email string
}

// staff adds a staff member with roles (keys) and certifications (key →
// expiry date or ""), signed in as a staff_member when login is true.
func (c *chain) staff(t testing.TB, name string, login bool, roles []string, certs map[string]string) person {
	t.Helper()
	p := person{email: fmt.Sprintf("%s-%s@%s.test", name, uuid.NewString()[:8], c.slug)}
	body := map[string]any{"name": name, "email": p.email, "roles": []string{}, "certifications": []any{}}
	var rs []string
	for _, r := range roles {
		rs = append(rs, c.roles[r])
	}
	if rs != nil {
		body["roles"] = rs
	}
	var cs []any
	for k, exp := range certs {
		g := map[string]any{"certification_id": c.certs[k]}
		if exp != "" {
			g["expires_on"] = exp
		}
		cs = append(cs, g)
	}
	if cs != nil {
		body["certifications"] = cs
	}
	if login {
		u := c.e.User(t, c.t, p.email, policies.RoleStaffMember, "")
		p.user = u.ID.String()
		body["user_id"] = p.user
	}
	p.id = c.id(t, c.do(t, "POST", "/api/v1/staffing/staff", body))
	if login {
		p.tok = c.e.Login(t, c.slug, p.email)
	}
	return p
}

// shift adds a shift of the chain's event.
func (c *chain) shift(t testing.TB, role string, from, to time.Time, places int) string {
	t.Helper()
	return c.shiftOf(t, c.event, role, from, to, places)
}

func (c *chain) shiftOf(t testing.TB, event, role string, from, to time.Time, places int) string {
	t.Helper()
	return c.id(t, c.do(t, "POST", "/api/v1/venues/"+c.venue+"/staffing/shifts", map[string]any{"event_id": event, "role_id": c.roles[role],
		"starts_at": from.UTC().Format(time.RFC3339), "ends_at": to.UTC().Format(time.RFC3339), "places": places}))
}

func (c *chain) publish(t testing.TB, day time.Time) {
	t.Helper()
	res := c.do(t, "POST", "/api/v1/venues/"+c.venue+"/staffing/days/"+day.In(newYork).Format(time.DateOnly)+"/publish", nil)
	mustStatus(t, res, http.StatusOK)
}

func (c *chain) count(t testing.TB, q string, args ...any) int {
	t.Helper()
	var n int
	err := c.e.App.Tx(context.Background(), c.t, func(tx *gorm.DB) error { return tx.Raw(q, args...).Row().Scan(&n) })
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// mustStatus and decode are apptest's, under the names these tests use.
var mustStatus = apptest.MustStatus

func decode[T any](t testing.TB, raw []byte) T { t.Helper(); return apptest.Decode[T](t, raw) }

// mailsOf are the messages the SMTP catcher holds for addr with subject
// starting with prefix.
func mailsOf(e *env, addr, prefix string) []mailcatch.Message {
	var out []mailcatch.Message
	for _, m := range e.Mail.To(addr) {
		if strings.HasPrefix(m.Subject, prefix) {
			out = append(out, m)
		}
	}
	return out
}
