package staffing_test

import (
	"context"
	"encoding/csv"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"marquee/app"
	"marquee/app/apptest"
	"marquee/modules/staffing"
	"marquee/tenants"
)

// labourReader is a module that reads labour costs only through the
// contract, as booking's settlement does.
type labourReader struct{ core *app.Core }

func (l *labourReader) Name() string { return "labourreader" }

func (l *labourReader) Register(r *app.Registrar) error {
	l.core = r.Core()
	r.Needs(app.LabourCostsContract)
	return nil
}

func (l *labourReader) cost(t *testing.T, tn tenants.Tenant, event string) []app.LabourCost {
	t.Helper()
	lc, err := l.core.LabourCosts().EventLabourCost(context.Background(), tn, uuid.MustParse(event))
	if err != nil {
		t.Fatal(err)
	}
	return lc
}

// Check-in and check-out by the person and by a lead, with the rules of
// each; rounded minutes (nearest quarter hour, half up); payroll CSV per
// person in the venue's dates; the event's labour cost through the
// contract, at the rate of check-in time; bad input refused, nothing written.
func TestTimesheetsPayrollAndLabourCost(t *testing.T) {
	clk := newClock(time.Now())
	mod, facts, reader := staffing.New(), &fakeFacts{sold: map[uuid.UUID]int{}}, &labourReader{}
	e := startEnvWith(t, clk, facts, mod, reader)
	c := newChain(t, e, "timesheet")
	start, end := c.eventAt.Add(-time.Hour), c.eventAt.Add(4*time.Hour) // 19:00-24:00 New York
	shift := c.shift(t, "security", start, end, 5)
	c.publish(t, c.eventAt)

	// Rates: bad input first.
	for _, bad := range []map[string]any{
		{"rates": []any{map[string]any{"role_id": c.roles["security"], "hourly_minor": -1, "currency": "USD"}}},
		{"rates": []any{map[string]any{"role_id": c.roles["security"], "hourly_minor": 2500, "currency": "usd"}}},
		{"rates": []any{map[string]any{"role_id": uuid.NewString(), "hourly_minor": 2500, "currency": "USD"}}},
		{"rates": []any{map[string]any{"role_id": c.roles["security"], "hourly_minor": 2.5, "currency": "USD"}}},
		{"rates": []any{}},
	} {
		if res := c.do(t, "PUT", "/api/v1/staffing/rates", bad); res.Status != http.StatusBadRequest {
			t.Fatalf("bad rates %v: %d %s", bad, res.Status, res.Body)
		}
	}
	if n := c.count(t, `SELECT count(*) FROM stf_role_rates`); n != 0 {
		t.Fatalf("bad rates wrote %d rows", n)
	}
	mustStatus(t, c.do(t, "PUT", "/api/v1/staffing/rates", map[string]any{"rates": []any{
		map[string]any{"role_id": c.roles["security"], "hourly_minor": 2500, "currency": "USD"}}}), http.StatusOK)

	clk.set(start.Add(-30 * time.Minute))
	a := c.staff(t, "ana", true, []string{"security"}, nil)
	b := c.staff(t, "ben", true, []string{"security"}, nil)
	r := c.staff(t, "rui", true, []string{"security"}, nil)
	assign := func(p person) string {
		return decode[staffing.Assignment](t, mustCreated(t, c.do(t, "POST", "/api/v1/venues/"+c.venue+"/staffing/shifts/"+shift+"/assignments", map[string]any{"staff_id": p.id}))).ID.String()
	}
	aa, ba := assign(a), assign(b)
	self := func(p person, asg, what string) (int, string) {
		res := e.Do(t, "POST", c.slug, "/api/v1/staffing/me/assignments/"+asg+"/"+what, p.tok, nil)
		return res.Status, res.Code()
	}
	lead := func(asg, what string, at time.Time) (int, string) {
		res := c.do(t, "POST", "/api/v1/venues/"+c.venue+"/staffing/assignments/"+asg+"/"+what, map[string]any{"at": at.UTC().Format(time.RFC3339)})
		return res.Status, res.Code()
	}

	// Ana checks herself in 30 minutes early; twice is refused.
	if st, code := self(a, aa, "check-in"); st != http.StatusOK {
		t.Fatalf("self check-in: %d %s", st, code)
	}
	if st, code := self(a, aa, "check-in"); st != http.StatusConflict || code != "timesheet_checked_in" {
		t.Fatalf("second check-in: %d %s", st, code)
	}
	// Ben cannot check in for Ana, nor out of a shift he never started.
	if st, _ := self(b, aa, "check-out"); st != http.StatusNotFound {
		t.Fatalf("someone else's check-out: %d", st)
	}
	if st, code := self(b, ba, "check-out"); st != http.StatusConflict || code != "timesheet_not_checked_in" {
		t.Fatalf("check-out before check-in: %d %s", st, code)
	}
	// Too early for Ben by himself.
	clk.set(start.Add(-3 * time.Hour))
	if st, code := self(b, ba, "check-in"); st != http.StatusConflict || code != "timesheet_outside_window" {
		t.Fatalf("check-in three hours early: %d %s", st, code)
	}
	// The lead records Ben late, after the night: in at 19:08, out at 24:00
	// (292 minutes → 285). A time in the future or far from the shift is
	// refused.
	clk.set(end.Add(7*time.Minute + 30*time.Second))
	if st, code := lead(ba, "check-in", clk.now().Add(time.Hour)); st != http.StatusBadRequest || code != "timesheet_invalid_time" {
		t.Fatalf("a check-in in the future: %d %s", st, code)
	}
	if st, code := lead(ba, "check-in", start.Add(-13*time.Hour)); st != http.StatusBadRequest || code != "timesheet_invalid_time" {
		t.Fatalf("a check-in 13 hours early: %d %s", st, code)
	}
	if st, code := lead(ba, "check-in", start.Add(8*time.Minute)); st != http.StatusOK {
		t.Fatalf("lead check-in: %d %s", st, code)
	}
	if st, code := lead(ba, "check-out", start.Add(time.Minute)); st != http.StatusBadRequest || code != "timesheet_invalid_time" {
		t.Fatalf("a check-out before the check-in: %d %s", st, code)
	}
	if st, code := lead(ba, "check-out", end); st != http.StatusOK {
		t.Fatalf("lead check-out: %d %s", st, code)
	}
	// Ana checks out at 00:07:30: 337.5 minutes, rounded half up → 345.
	if st, code := self(a, aa, "check-out"); st != http.StatusOK {
		t.Fatalf("self check-out: %d %s", st, code)
	}
	if st, code := self(a, aa, "check-out"); st != http.StatusConflict || code != "timesheet_checked_out" {
		t.Fatalf("second check-out: %d %s", st, code)
	}
	// A request (no place held) has nobody to check in.
	sec2 := c.shift(t, "security", start.Add(-5*time.Hour), start.Add(-4*time.Hour), 1)
	req := decode[staffing.Assignment](t, mustCreated(t, e.Do(t, "POST", c.slug, "/api/v1/staffing/me/shifts/"+sec2+"/signup", r.tok, nil)))
	if req.Status != "requested" {
		t.Fatalf("sign-up on an approve role: %+v", req)
	}
	if st, code := lead(req.ID.String(), "check-in", clk.now()); st != http.StatusConflict || code != "timesheet_not_on_shift" {
		t.Fatalf("check-in of a request: %d %s", st, code)
	}

	// A later rate does not rewrite the night.
	mustStatus(t, c.do(t, "PUT", "/api/v1/staffing/rates", map[string]any{"rates": []any{
		map[string]any{"role_id": c.roles["security"], "hourly_minor": 9900, "currency": "USD"}}}), http.StatusOK)

	list := decode[app.List[staffing.Timesheet]](t, c.do(t, "GET", "/api/v1/venues/"+c.venue+"/staffing/timesheets?event_id="+c.event, nil).Body).Items
	mins := map[string]int{}
	for _, ts := range list {
		mins[ts.StaffName] = ts.Minutes
	}
	if mins["ana"] != 345 || mins["ben"] != 285 {
		t.Fatalf("rounded minutes: %v (%+v)", mins, list)
	}
	want := []app.LabourCost{{Currency: "USD", AmountMinor: 14375 + 11875, Minutes: 630, People: 2}}
	if got := reader.cost(t, c.t, c.event); len(got) != 1 || got[0] != want[0] {
		t.Fatalf("labour cost through the contract: %+v, want %+v", got, want)
	}
	api := decode[app.List[app.LabourCost]](t, c.do(t, "GET", "/api/v1/events/"+c.event+"/staffing/labour-cost", nil).Body).Items
	if len(api) != 1 || api[0] != want[0] {
		t.Fatalf("labour cost API: %+v", api)
	}

	// Payroll: both check-ins fall on the 12th in New York.
	day := c.eventAt.In(newYork).Format(time.DateOnly)
	res := c.do(t, "GET", "/api/v1/venues/"+c.venue+"/staffing/payroll?from="+day+"&to="+day, nil)
	mustStatus(t, res, http.StatusOK)
	rows, err := csv.NewReader(strings.NewReader(string(res.Body))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 || rows[1][1] != "ana" || rows[1][6] != "345" || rows[1][7] != "5.75" || rows[1][8] != "USD" || rows[1][9] != "14375" ||
		rows[2][1] != "ben" || rows[2][6] != "285" || rows[2][7] != "4.75" || rows[2][9] != "11875" {
		t.Fatalf("payroll csv:\n%s", res.Body)
	}
	next := c.eventAt.In(newYork).AddDate(0, 0, 1).Format(time.DateOnly)
	res = c.do(t, "GET", "/api/v1/venues/"+c.venue+"/staffing/payroll?from="+next+"&to="+next, nil)
	if rows, _ := csv.NewReader(strings.NewReader(string(res.Body))).ReadAll(); len(rows) != 1 {
		t.Fatalf("the next local day has no check-ins: %s", res.Body)
	}
	for _, q := range []string{"from=" + day, "from=" + next + "&to=" + day, "from=2020-01-01&to=2021-01-01", "from=x&to=y"} {
		if res := c.do(t, "GET", "/api/v1/venues/"+c.venue+"/staffing/payroll?"+q, nil); res.Status != http.StatusBadRequest || res.Code() != "invalid_period" {
			t.Fatalf("payroll %s: %d %s", q, res.Status, res.Body)
		}
	}
	if n := c.count(t, `SELECT count(*) FROM stf_timesheets`); n != 2 {
		t.Fatalf("%d timesheets, want 2 (refusals wrote nothing)", n)
	}
}

func mustCreated(t testing.TB, res apptest.Response) []byte {
	t.Helper()
	mustStatus(t, res, http.StatusCreated)
	return res.Body
}
