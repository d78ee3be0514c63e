package ops_test

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/app/apptest"
	"marquee/modules/calendar"
	"marquee/modules/ops"
	"marquee/tenants"
)

var dbURL string

func TestMain(m *testing.M) { apptest.Main(m, "ops", &dbURL) }

// fakeDoor is the door count for tests (app.Attendance): zones set by the test.
type fakeDoor struct {
	mu    sync.Mutex
	zones map[uuid.UUID][]app.ZoneAttendance
}

func (f *fakeDoor) Name() string { return "fakedoor" }

func (f *fakeDoor) Register(r *app.Registrar) error {
	r.ProvideAttendance(f)
	return nil
}

func (f *fakeDoor) set(event string, zone string, inside int, last time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := uuid.MustParse(event)
	zs := f.zones[id]
	for i := range zs {
		if zs[i].Zone == zone {
			zs[i].Inside, zs[i].Admitted, zs[i].LastScan = inside, max(inside, 1), &last
			return
		}
	}
	f.zones[id] = append(zs, app.ZoneAttendance{ZoneID: uuid.New(), Zone: zone, Inside: inside, Admitted: max(inside, 1), LastScan: &last})
}

func (f *fakeDoor) Attendance(_ context.Context, _ tenants.Tenant, event uuid.UUID) (app.EventAttendance, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := app.EventAttendance{EventID: event, Zones: append([]app.ZoneAttendance{}, f.zones[event]...)}
	for _, z := range a.Zones {
		a.Inside += z.Inside
	}
	return a, nil
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
	mod  *ops.Module
	door *fakeDoor
}

// startEnv starts an App with the calendar, ops and a fake door.
func startEnv(t testing.TB, c *clock) *env {
	t.Helper()
	mod, door := ops.New(), &fakeDoor{zones: map[uuid.UUID][]app.ZoneAttendance{}}
	o := apptest.Options{Modules: []app.Module{calendar.New(), door, mod}, DBMaxConns: 20}
	if c != nil {
		o.Clock = c.now
	}
	return &env{Env: apptest.Start(t, dbURL, o), mod: mod, door: door}
}

// chain is a tenant with its owner signed in, a venue, a stage and one
// event starting now (so it is live), with zones Floor (capacity 100) and
// Balcony (capacity 50).
type chain struct {
	e         *env
	t         tenants.Tenant
	slug, tok string
	venue     string
	event     string
}

func newChain(t testing.TB, e *env, prefix string) *chain {
	t.Helper()
	tn := e.Tenant(t, apptest.UniqueSlug(prefix))
	c := &chain{e: e, t: tn, slug: tn.Slug}
	c.tok = e.Login(t, tn.Slug, "owner@"+tn.Slug+".test")
	c.venue = c.id(t, c.do(t, "POST", "/api/v1/venues", map[string]any{"name": "Hall", "timezone": "Europe/Berlin", "capacity": 2400}))
	stage := c.id(t, c.do(t, "POST", "/api/v1/venues/"+c.venue+"/stages", map[string]any{"name": "Main", "capacity": 2000, "type": "main"}))
	start := time.Now().UTC().Truncate(time.Minute).Add(-30 * time.Minute)
	c.event = c.id(t, c.do(t, "POST", "/api/v1/venues/"+c.venue+"/events", map[string]any{"stage_id": stage, "title": "Live Show", "category": "concert",
		"status": "confirmed", "starts_at": start.Format(time.RFC3339), "ends_at": start.Add(3 * time.Hour).Format(time.RFC3339)}))
	mustStatus(t, c.do(t, "PUT", "/api/v1/events/"+c.event+"/occupancy/zones", map[string]any{"zones": []any{
		map[string]any{"name": "Floor", "capacity": 100},
		map[string]any{"name": "Balcony", "capacity": 50, "alert_percents": []int{80, 100}},
	}}), http.StatusOK)
	return c
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

// push sends a reading and returns its result.
func (c *chain) push(t testing.TB, body map[string]any) ops.ReadingResult {
	t.Helper()
	res := c.do(t, "POST", "/api/v1/events/"+c.event+"/occupancy", body)
	mustStatus(t, res, http.StatusOK)
	return decode[ops.ReadingResult](t, res.Body)
}

func (c *chain) zone(t testing.TB, name string) ops.ZoneOccupancy {
	t.Helper()
	res := c.do(t, "GET", "/api/v1/events/"+c.event+"/occupancy", nil)
	mustStatus(t, res, http.StatusOK)
	list := decode[app.List[ops.ZoneOccupancy]](t, res.Body)
	for _, z := range list.Items {
		if z.Zone == name {
			return z
		}
	}
	t.Fatalf("no zone %s", name)
	return ops.ZoneOccupancy{}
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

func ago(d time.Duration) string { return time.Now().UTC().Add(-d).Format(time.RFC3339Nano) }
