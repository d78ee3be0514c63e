package ops_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"

	"marquee/app"
	"marquee/app/apptest"
	"marquee/modules/calendar"
	"marquee/modules/ops"
	"marquee/modules/staffing"
)

// The dashboard shows the event's staffing coverage from the staffing
// module's contract when a module provides it, and nothing of staffing when
// none does.
func TestDashboardShowsStaffingCoverage(t *testing.T) {
	mod := ops.New()
	withStaffing := apptest.Start(t, dbURL, apptest.Options{Modules: []app.Module{calendar.New(), staffing.New(),
		&fakeDoor{zones: map[uuid.UUID][]app.ZoneAttendance{}}, mod}})
	e := &env{Env: withStaffing, mod: mod}
	c := newChain(t, e, "staff")
	role := c.id(t, c.do(t, "POST", "/api/v1/staffing/roles", map[string]any{"key": "security", "name": "Security", "signup": "approve"}))
	bar := c.id(t, c.do(t, "POST", "/api/v1/staffing/roles", map[string]any{"key": "bar", "name": "Bar", "signup": "open"}))
	mustStatus(t, c.do(t, "PUT", "/api/v1/events/"+c.event+"/staffing/requirements", map[string]any{"requirements": []any{
		map[string]any{"role_id": role, "rule": "fixed", "fixed_count": 3},
		map[string]any{"role_id": bar, "rule": "fixed", "fixed_count": 1},
	}}), http.StatusOK)
	// The shift covers the whole night (the event began half an hour ago).
	from := time.Now().UTC().Truncate(time.Minute).Add(-30 * time.Minute)
	shift := c.id(t, c.do(t, "POST", "/api/v1/venues/"+c.venue+"/staffing/shifts", map[string]any{"event_id": c.event, "role_id": role,
		"starts_at": from.Add(-time.Hour).Format(time.RFC3339), "ends_at": from.Add(4 * time.Hour).Format(time.RFC3339), "places": 3}))
	guard := c.id(t, c.do(t, "POST", "/api/v1/staffing/staff", map[string]any{"name": "Guard", "email": "guard@" + c.slug + ".test",
		"roles": []string{role}, "certifications": []any{}}))
	mustStatus(t, c.do(t, "POST", "/api/v1/venues/"+c.venue+"/staffing/shifts/"+shift+"/assignments", map[string]any{"staff_id": guard}), http.StatusCreated)

	d := decode[ops.Dashboard](t, c.do(t, "GET", "/api/v1/events/"+c.event+"/dashboard", nil).Body)
	if d.Staffing == nil || d.Staffing.Unavailable {
		t.Fatalf("no staffing on the dashboard: %+v", d.Staffing)
	}
	got := map[string]app.RoleCoverage{}
	for _, r := range d.Staffing.Roles {
		got[r.Role] = r
	}
	if s := got["Security"]; s.Required != 3 || s.Assigned != 1 || s.Gap != 2 {
		t.Fatalf("security coverage %+v", s)
	}
	if b := got["Bar"]; b.Required != 1 || b.Assigned != 0 || b.Gap != 1 {
		t.Fatalf("bar coverage %+v", b)
	}
	if d.Staffing.Required != 4 || d.Staffing.Assigned != 1 || d.Staffing.Gap != 3 {
		t.Fatalf("totals %+v", d.Staffing)
	}

	// Without a staffing module the dashboard says nothing of staffing.
	plain := startEnv(t, nil)
	p := newChain(t, plain, "nostaff")
	if d := decode[ops.Dashboard](t, p.do(t, "GET", "/api/v1/events/"+p.event+"/dashboard", nil).Body); d.Staffing != nil {
		t.Fatalf("staffing without a provider: %+v", d.Staffing)
	}
}
