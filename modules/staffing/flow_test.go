package staffing_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"marquee/app"
	"marquee/app/apptest"
	"marquee/modules/staffing"
	"marquee/policies"
)

func roleCov(t testing.TB, ec staffing.EventCoverage, name string) staffing.RoleCoverage {
	t.Helper()
	for _, r := range ec.Roles {
		if r.RoleName == name {
			return r
		}
	}
	t.Fatalf("no role %s in coverage %+v", name, ec)
	return staffing.RoleCoverage{}
}

// Selling tickets past a ratio's threshold raises the requirement on the
// next recomputation (on demand, and the periodic job's), and coverage shows
// the gap as made by sales. After doors, sales no longer move it; the
// expected attendance a manager sets does.
func TestRequirementsFollowTicketSales(t *testing.T) {
	e := startEnv(t, nil)
	c := newChain(t, e, "sales")
	// An event ten days out, inside the periodic job's horizon.
	soon := time.Now().In(newYork).AddDate(0, 0, 10)
	c.eventAt = time.Date(soon.Year(), soon.Month(), soon.Day(), 20, 0, 0, 0, newYork)
	c.event = c.newEvent(t, c.eventAt, "Soon")
	res := c.do(t, "PUT", "/api/v1/events/"+c.event+"/staffing/requirements", map[string]any{"requirements": []any{
		map[string]any{"role_id": c.roles["security"], "rule": "ratio", "per_attendees": 100, "minimum": 2},
		map[string]any{"role_id": c.roles["bar"], "rule": "fixed", "fixed_count": 3},
	}})
	mustStatus(t, res, http.StatusOK)
	shift := c.shift(t, "security", c.eventAt.Add(-time.Hour), c.eventAt.Add(4*time.Hour), 4)
	for range 2 {
		p := c.staff(t, "guard", false, []string{"security"}, nil)
		mustStatus(t, c.do(t, "POST", "/api/v1/venues/"+c.venue+"/staffing/shifts/"+shift+"/assignments", map[string]any{"staff_id": p.id}), http.StatusCreated)
	}
	cov := decode[staffing.EventCoverage](t, c.do(t, "GET", "/api/v1/events/"+c.event+"/staffing/coverage", nil).Body)
	if sec := roleCov(t, cov, "security"); sec.Required != 2 || sec.Assigned != 2 || sec.Gap != 0 {
		t.Fatalf("before sales: %+v", sec)
	}
	if bar := roleCov(t, cov, "bar"); bar.Required != 3 || bar.Gap != 3 || bar.GapFromSales != 0 {
		t.Fatalf("bar: %+v", bar)
	}

	// 450 tickets sold: 1 per 100 → 5 security; the job recomputes.
	e.facts.set(c.event, 450)
	if n, err := e.mod.Service().RecomputeAll(context.Background(), c.t); err != nil || n < 1 {
		t.Fatalf("recompute all: %d %v", n, err)
	}
	cov = decode[staffing.EventCoverage](t, c.do(t, "GET", "/api/v1/events/"+c.event+"/staffing/coverage", nil).Body)
	sec := roleCov(t, cov, "security")
	if sec.Required != 5 || sec.Gap != 3 || sec.GapFromSales != 3 || sec.Attendance != 450 || sec.Basis != "sold" {
		t.Fatalf("after 450 sold: %+v", sec)
	}
	// On demand, after a sell-out of 2,000.
	e.facts.set(c.event, 2000)
	mustStatus(t, c.do(t, "POST", "/api/v1/events/"+c.event+"/staffing/requirements/recompute", nil), http.StatusOK)
	cov = decode[staffing.EventCoverage](t, c.do(t, "GET", "/api/v1/events/"+c.event+"/staffing/coverage", nil).Body)
	if sec = roleCov(t, cov, "security"); sec.Required != 20 || sec.GapFromSales != 18 {
		t.Fatalf("after the sell-out: %+v", sec)
	}
	// The night's chain-wide coverage says the same.
	night := decode[staffing.NightCoverage](t, c.do(t, "GET", "/api/v1/staffing/coverage?date="+c.eventAt.In(newYork).Format(time.DateOnly), nil).Body)
	if len(night.Events) != 1 || night.Gap != 18+3 {
		t.Fatalf("night: %+v", night)
	}
	// Expected attendance counts only from doors on.
	mustStatus(t, c.do(t, "PUT", "/api/v1/events/"+c.event+"/staffing/attendance", map[string]any{"expected": 900}), http.StatusOK)
	if sec = roleCov(t, decode[staffing.EventCoverage](t, c.do(t, "GET", "/api/v1/events/"+c.event+"/staffing/coverage", nil).Body), "security"); sec.Required != 20 {
		t.Fatalf("expected attendance before doors moved the figure: %+v", sec)
	}
}

// After doors the expected attendance rules, and later sales do not move it.
func TestExpectedAttendanceFromDoors(t *testing.T) {
	clk := newClock(time.Now())
	e := startEnv(t, clk)
	c := newChain(t, e, "doors")
	mustStatus(t, c.do(t, "PUT", "/api/v1/events/"+c.event+"/staffing/requirements", map[string]any{"requirements": []any{
		map[string]any{"role_id": c.roles["security"], "rule": "ratio", "per_attendees": 100, "minimum": 2}}}), http.StatusOK)
	e.facts.set(c.event, 300)
	mustStatus(t, c.do(t, "POST", "/api/v1/events/"+c.event+"/staffing/requirements/recompute", nil), http.StatusOK)
	clk.set(c.eventAt.Add(time.Minute)) // doors are open
	e.facts.set(c.event, 1000)
	reqs := decode[struct{ Items []staffing.Requirement }](t, c.do(t, "POST", "/api/v1/events/"+c.event+"/staffing/requirements/recompute", nil).Body)
	if reqs.Items[0].Required != 3 || reqs.Items[0].Basis != "sold" {
		t.Fatalf("sales after doors moved the figure: %+v", reqs.Items[0])
	}
	reqs = decode[struct{ Items []staffing.Requirement }](t, c.do(t, "PUT", "/api/v1/events/"+c.event+"/staffing/attendance", map[string]any{"expected": 1450}).Body)
	if reqs.Items[0].Required != 15 || reqs.Items[0].Basis != "expected" {
		t.Fatalf("expected attendance after doors: %+v", reqs.Items[0])
	}
}

// The crowd-manager template (at least 2, one per 250) and the security
// bands apply to every event once turned on; a manager's requirement for
// the same role wins.
func TestTemplates(t *testing.T) {
	e := startEnv(t, nil)
	c := newChain(t, e, "tpl")
	set := decode[map[string]any](t, c.do(t, "GET", "/api/v1/staffing/settings", nil).Body)
	set["crowd_role_id"], set["security_role_id"] = c.roles["crew"], c.roles["security"]
	mustStatus(t, c.do(t, "PUT", "/api/v1/staffing/settings", set), http.StatusOK)
	e.facts.set(c.event, 1100)
	reqs := decode[struct{ Items []staffing.Requirement }](t, c.do(t, "POST", "/api/v1/events/"+c.event+"/staffing/requirements/recompute", nil).Body)
	got := map[string]staffing.Requirement{}
	for _, r := range reqs.Items {
		got[r.RoleName] = r
	}
	if r := got["crew"]; r.Required != 5 || r.Source != "crowd_managers" {
		t.Fatalf("crowd managers for 1,100: %+v", r)
	}
	if r := got["security"]; r.Required != 8 || r.Source != "security_bands" || r.Basis != "capacity" { // capacity 2,400: the 2,000 band
		t.Fatalf("security band for 2,400: %+v", r)
	}
	mustStatus(t, c.do(t, "PUT", "/api/v1/events/"+c.event+"/staffing/requirements", map[string]any{"requirements": []any{
		map[string]any{"role_id": c.roles["security"], "rule": "fixed", "fixed_count": 12}}}), http.StatusOK)
	reqs = decode[struct{ Items []staffing.Requirement }](t, c.do(t, "GET", "/api/v1/events/"+c.event+"/staffing/requirements", nil).Body)
	for _, r := range reqs.Items {
		if r.RoleName == "security" && (r.Required != 12 || r.Source != "manual") {
			t.Fatalf("the manager's requirement lost to the template: %+v", r)
		}
	}
}

// A day is drafted, then published: staff see no shift of a draft day and
// cannot sign up for one; once published they do, and every change after
// that (assigned, moved, cancelled) lands in their outbox. They confirm or
// decline; declining gives the place back. Request-and-approve roles take
// no place until approved; closed roles refuse sign-ups.
func TestPublishingAndAnswers(t *testing.T) {
	e := startEnv(t, nil)
	c := newChain(t, e, "pub")
	p := c.staff(t, "pat", true, []string{"bar", "security", "crew"}, nil)
	bar := c.shift(t, "bar", c.eventAt.Add(-time.Hour), c.eventAt.Add(4*time.Hour), 1)
	me := func() staffing.Schedule {
		return decode[staffing.Schedule](t, e.Do(t, "GET", c.slug, "/api/v1/staffing/me", p.tok, nil).Body)
	}
	if s := me(); len(s.Open) != 0 || len(s.Shifts) != 0 {
		t.Fatalf("a draft day is visible: %+v", s)
	}
	if res := e.Do(t, "POST", c.slug, "/api/v1/staffing/me/shifts/"+bar+"/signup", p.tok, nil); res.Status != http.StatusNotFound {
		t.Fatalf("sign-up on a draft day: %d %s", res.Status, res.Body)
	}
	c.publish(t, c.eventAt)
	if s := me(); len(s.Open) != 1 {
		t.Fatalf("published, open shifts: %+v", s.Open)
	}
	a := decode[staffing.Assignment](t, e.Do(t, "POST", c.slug, "/api/v1/staffing/me/shifts/"+bar+"/signup", p.tok, nil).Body)
	if a.Status != "assigned" {
		t.Fatalf("open role sign-up: %+v", a)
	}
	mustStatus(t, e.Do(t, "POST", c.slug, "/api/v1/staffing/me/assignments/"+a.ID.String()+"/confirm", p.tok, nil), http.StatusOK)
	if s := me(); len(s.Shifts) != 1 || s.Shifts[0].Status != "confirmed" || s.Shifts[0].EventTitle != "Show" {
		t.Fatalf("after confirming: %+v", s.Shifts)
	}
	// Someone else cannot answer for Pat.
	q := c.staff(t, "quinn", true, []string{"bar"}, nil)
	if res := e.Do(t, "POST", c.slug, "/api/v1/staffing/me/assignments/"+a.ID.String()+"/decline", q.tok, nil); res.Status != http.StatusNotFound {
		t.Fatalf("declining someone else's shift: %d", res.Status)
	}
	// Moving the shift tells Pat.
	mustStatus(t, c.do(t, "PATCH", "/api/v1/venues/"+c.venue+"/staffing/shifts/"+bar, map[string]any{"starts_at": c.eventAt.Add(-2 * time.Hour).UTC().Format(time.RFC3339)}), http.StatusOK)
	if n := c.count(t, `SELECT count(*) FROM mail_outbox WHERE to_email = ? AND kind = 'staffing.moved'`, p.email); n != 1 {
		t.Fatalf("%d moved notices", n)
	}
	// The core sends it: Pat reads the move, in the venue's time.
	if _, err := e.App.Mail.SendDue(context.Background(), c.t, 100); err != nil {
		t.Fatal(err)
	}
	moved := mailsOf(e, p.email, "Your shift has moved")
	if len(moved) != 1 || !strings.Contains(moved[0].Text, c.eventAt.Add(-2*time.Hour).In(newYork).Format("15:04")) {
		t.Fatalf("moved mail: %+v", moved)
	}
	if st, err := e.App.Mail.ByRef(context.Background(), c.t, a.ID.String()); err != nil || len(st) != 1 || st[0].Status != app.MailSent {
		t.Fatalf("mail status of the assignment: %+v %v", st, err)
	}
	// Declining gives the place back: Quinn gets it.
	mustStatus(t, e.Do(t, "POST", c.slug, "/api/v1/staffing/me/assignments/"+a.ID.String()+"/decline", p.tok, nil), http.StatusOK)
	mustStatus(t, e.Do(t, "POST", c.slug, "/api/v1/staffing/me/shifts/"+bar+"/signup", q.tok, nil), http.StatusCreated)

	// Request and approve.
	sec := c.shift(t, "security", c.eventAt.Add(time.Hour), c.eventAt.Add(3*time.Hour), 1)
	req := decode[staffing.Assignment](t, e.Do(t, "POST", c.slug, "/api/v1/staffing/me/shifts/"+sec+"/signup", p.tok, nil).Body)
	if req.Status != "requested" || c.count(t, `SELECT filled FROM stf_shifts WHERE id = ?`, sec) != 0 {
		t.Fatalf("a request took a place: %+v", req)
	}
	ok := decode[staffing.Assignment](t, c.do(t, "POST", "/api/v1/venues/"+c.venue+"/staffing/assignments/"+req.ID.String()+"/approve", nil).Body)
	if ok.Status != "assigned" || c.count(t, `SELECT filled FROM stf_shifts WHERE id = ?`, sec) != 1 {
		t.Fatalf("approved: %+v", ok)
	}
	if res := c.do(t, "POST", "/api/v1/venues/"+c.venue+"/staffing/assignments/"+req.ID.String()+"/approve", nil); res.Status != http.StatusConflict || res.Code() != "invalid_transition" {
		t.Fatalf("approving twice: %d %s", res.Status, res.Body)
	}
	// Closed roles are for managers.
	crew := c.shift(t, "crew", c.eventAt.Add(3*time.Hour), c.eventAt.Add(3*time.Hour+30*time.Minute), 1)
	if res := e.Do(t, "POST", c.slug, "/api/v1/staffing/me/shifts/"+crew+"/signup", p.tok, nil); res.Status != http.StatusForbidden || res.Code() != "signup_closed" {
		t.Fatalf("closed role sign-up: %d %s", res.Status, res.Body)
	}
	// Cancelling the shift tells the person on it and frees the counter.
	mustStatus(t, c.do(t, "PATCH", "/api/v1/venues/"+c.venue+"/staffing/shifts/"+sec, map[string]any{"status": "cancelled"}), http.StatusOK)
	if n := c.count(t, `SELECT count(*) FROM mail_outbox WHERE to_email = ? AND kind = 'staffing.cancelled'`, p.email); n != 1 {
		t.Fatalf("%d cancelled notices", n)
	}
}

// A manager's move that would put someone in two shifts at once is refused
// whole; places cannot drop below the people holding them; hard rest and
// weekly-hours rules refuse, warn rules record a warning.
func TestManagerRules(t *testing.T) {
	e := startEnv(t, nil)
	c := newChain(t, e, "rules")
	p := c.staff(t, "rio", false, []string{"bar"}, nil)
	assign := func(shift string) apptest.Response {
		return c.do(t, "POST", "/api/v1/venues/"+c.venue+"/staffing/shifts/"+shift+"/assignments", map[string]any{"staff_id": p.id})
	}
	early := c.shift(t, "bar", c.eventAt.Add(-4*time.Hour), c.eventAt, 2)
	late := c.shift(t, "bar", c.eventAt.Add(2*time.Hour), c.eventAt.Add(5*time.Hour), 2)
	mustStatus(t, assign(early), http.StatusCreated)
	// Default rest rule: warn, 600 minutes.
	a := decode[staffing.Assignment](t, assign(late).Body)
	if len(a.Warnings) != 1 {
		t.Fatalf("rest warning: %+v", a)
	}
	// Moving late onto early is refused, and nothing moves.
	res := c.do(t, "PATCH", "/api/v1/venues/"+c.venue+"/staffing/shifts/"+late, map[string]any{"starts_at": c.eventAt.Add(-time.Hour).UTC().Format(time.RFC3339)})
	if res.Status != http.StatusConflict || res.Code() != "shift_overlap" {
		t.Fatalf("overlapping move: %d %s", res.Status, res.Body)
	}
	if res := c.do(t, "PATCH", "/api/v1/venues/"+c.venue+"/staffing/shifts/"+late, map[string]any{"places": 0}); res.Code() != "places_below_assigned" {
		t.Fatalf("places below assigned: %s", res.Body)
	}
	// Hard rest: a third shift two hours after late is refused.
	set := decode[map[string]any](t, c.do(t, "GET", "/api/v1/staffing/settings", nil).Body)
	set["rest_rule"], set["week_rule"], set["max_week_minutes"] = "hard", "hard", 600
	mustStatus(t, c.do(t, "PUT", "/api/v1/staffing/settings", set), http.StatusOK)
	third := c.shift(t, "bar", c.eventAt.Add(7*time.Hour), c.eventAt.Add(8*time.Hour), 2)
	if res := assign(third); res.Code() != "rest_too_short" {
		t.Fatalf("hard rest: %s", res.Body)
	}
	set["rest_rule"] = "off"
	mustStatus(t, c.do(t, "PUT", "/api/v1/staffing/settings", set), http.StatusOK)
	// 4 + 3 hours worked; 4 more pass the 10-hour week.
	fourth := c.shift(t, "bar", c.eventAt.Add(24*time.Hour), c.eventAt.Add(28*time.Hour), 2)
	if res := assign(fourth); res.Code() != "week_hours_exceeded" {
		t.Fatalf("hard week: %s", res.Body)
	}
	mustStatus(t, assign(third), http.StatusCreated)
	if res := assign(third); res.Code() != "already_assigned" {
		t.Fatalf("twice on one shift: %s", res.Body)
	}
	// Not qualified: no role.
	other := c.staff(t, "sam", false, []string{"security"}, nil)
	if res := c.do(t, "POST", "/api/v1/venues/"+c.venue+"/staffing/shifts/"+third+"/assignments", map[string]any{"staff_id": other.id}); res.Code() != "not_qualified" {
		t.Fatalf("unqualified: %s", res.Body)
	}
	// Unassign gives the place back.
	mustStatus(t, c.do(t, "DELETE", "/api/v1/venues/"+c.venue+"/staffing/assignments/"+a.ID.String(), nil), http.StatusOK)
	if n := c.count(t, `SELECT filled FROM stf_shifts WHERE id = ?`, late); n != 0 {
		t.Fatalf("filled after unassign: %d", n)
	}
}

// Venue roles staff their own venue only; a staff member sees their own
// schedule and nothing of others'; certifications running out are listed.
func TestWhoMaySeeWhat(t *testing.T) {
	e := startEnv(t, nil)
	c := newChain(t, e, "authz")
	otherVenue := c.id(t, c.do(t, "POST", "/api/v1/venues", map[string]any{"name": "Annex", "timezone": "Europe/London", "capacity": 300}))
	mgr := e.User(t, c.t, "mgr@"+c.slug+".test", policies.RoleVenueManager, otherVenue)
	mtok := e.Login(t, c.slug, "mgr@"+c.slug+".test")
	_ = mgr
	soon := time.Now().AddDate(0, 0, 10).Format(time.DateOnly)
	p := c.staff(t, "pia", true, []string{"medic"}, map[string]string{"first_aid": soon})
	for _, tc := range []struct {
		name, tok, method, path string
		want                    int
	}{
		{"manager elsewhere: event coverage", mtok, "GET", "/api/v1/events/" + c.event + "/staffing/coverage", 403},
		{"manager elsewhere: shifts", mtok, "GET", "/api/v1/venues/" + c.venue + "/staffing/shifts", 403},
		{"manager at own venue: shifts", mtok, "GET", "/api/v1/venues/" + otherVenue + "/staffing/shifts", 200},
		{"manager: chain-wide night", mtok, "GET", "/api/v1/staffing/coverage", 403},
		{"manager: own venue's night", mtok, "GET", "/api/v1/staffing/coverage?venue_id=" + otherVenue, 200},
		{"staff member: coverage", p.tok, "GET", "/api/v1/events/" + c.event + "/staffing/coverage", 403},
		{"staff member: the directory", p.tok, "GET", "/api/v1/staffing/staff", 403},
		{"staff member: own schedule", p.tok, "GET", "/api/v1/staffing/me", 200},
		{"owner without a staff record: my schedule", c.tok, "GET", "/api/v1/staffing/me", 404},
	} {
		if res := e.Do(t, tc.method, c.slug, tc.path, tc.tok, nil); res.Status != tc.want {
			t.Errorf("%s: %d, want %d: %s", tc.name, res.Status, tc.want, res.Body)
		}
	}
	s := decode[staffing.Schedule](t, e.Do(t, "GET", c.slug, "/api/v1/staffing/me", p.tok, nil).Body)
	if len(s.Expiring) != 1 || s.Expiring[0].DaysLeft != 10 {
		t.Fatalf("expiring on my schedule: %+v", s.Expiring)
	}
	list := decode[struct{ Items []staffing.Expiring }](t, c.do(t, "GET", "/api/v1/staffing/certifications/expiring", nil).Body)
	if len(list.Items) != 1 {
		t.Fatalf("expiring within 30 days: %+v", list.Items)
	}
}
