package staffing_test

import (
	"encoding/csv"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"marquee/modules/staffing"
	"marquee/policies"
)

// The chain's payroll counts each venue's check-ins on its own local
// dates: a New York night and a Tokyo morning that start at the same UTC
// instant (23:00 UTC on the 12th) fall on the 12th and the 13th. Chain
// roles with staffing.payroll read it; a venue manager is refused the
// chain export and sees their own venue only on the page and its CSV; a
// promoter (a chain role without the grant) is refused.
func TestChainPayrollAcrossTimezones(t *testing.T) {
	clk := newClock(time.Now())
	e := startEnv(t, clk)
	c := newChain(t, e, "payroll")
	tokyo, err := time.LoadLocation("Asia/Tokyo")
	if err != nil {
		t.Fatal(err)
	}
	tv := c.id(t, c.do(t, "POST", "/api/v1/venues", map[string]any{"name": "Kioi Hall", "timezone": "Asia/Tokyo", "capacity": 800}))
	ts := c.id(t, c.do(t, "POST", "/api/v1/venues/"+tv+"/stages", map[string]any{"name": "Main", "capacity": 800, "type": "main"}))
	nyStart := c.eventAt.Add(-time.Hour) // 19:00 New York on the 12th = 23:00 UTC
	tkStart := nyStart.In(tokyo)         // 08:00 Tokyo on the 13th
	if nyStart.In(newYork).Day() == tkStart.Day() {
		t.Fatalf("the fixture wants two local dates: %v, %v", nyStart.In(newYork), tkStart)
	}
	tkEvent := c.id(t, c.do(t, "POST", "/api/v1/venues/"+tv+"/events", map[string]any{"stage_id": ts, "title": "Morning show", "category": "concert",
		"status": "on_sale", "starts_at": tkStart.Add(time.Hour).UTC().Format(time.RFC3339), "ends_at": tkStart.Add(4 * time.Hour).UTC().Format(time.RFC3339)}))
	mustStatus(t, c.do(t, "PUT", "/api/v1/staffing/rates", map[string]any{"rates": []any{
		map[string]any{"role_id": c.roles["security"], "hourly_minor": 2500, "currency": "USD"},
		map[string]any{"role_id": c.roles["bar"], "hourly_minor": 1500, "currency": "JPY"}}}), http.StatusOK)

	nyShift := c.shift(t, "security", nyStart, nyStart.Add(5*time.Hour), 2)
	tkShift := c.id(t, c.do(t, "POST", "/api/v1/venues/"+tv+"/staffing/shifts", map[string]any{"event_id": tkEvent, "role_id": c.roles["bar"],
		"starts_at": tkStart.UTC().Format(time.RFC3339), "ends_at": tkStart.Add(4 * time.Hour).UTC().Format(time.RFC3339), "places": 2}))
	ana := c.staff(t, "ana", false, []string{"security"}, nil)
	ken := c.staff(t, "ken", false, []string{"bar"}, nil)
	assign := func(venue, shift string, p person) string {
		return decode[staffing.Assignment](t, mustCreated(t, c.do(t, "POST", "/api/v1/venues/"+venue+"/staffing/shifts/"+shift+"/assignments", map[string]any{"staff_id": p.id}))).ID.String()
	}
	aa, ka := assign(c.venue, nyShift, ana), assign(tv, tkShift, ken)
	// After both nights, the leads record them: ana 300 minutes, ken 240.
	clk.set(nyStart.Add(6 * time.Hour))
	for _, r := range []struct {
		venue, asg string
		in, out    time.Time
	}{{c.venue, aa, nyStart, nyStart.Add(5 * time.Hour)}, {tv, ka, tkStart, tkStart.Add(4 * time.Hour)}} {
		for what, at := range map[string]time.Time{"check-in": r.in} {
			mustStatus(t, c.do(t, "POST", "/api/v1/venues/"+r.venue+"/staffing/assignments/"+r.asg+"/"+what, map[string]any{"at": at.UTC().Format(time.RFC3339)}), http.StatusOK)
		}
		mustStatus(t, c.do(t, "POST", "/api/v1/venues/"+r.venue+"/staffing/assignments/"+r.asg+"/check-out", map[string]any{"at": r.out.UTC().Format(time.RFC3339)}), http.StatusOK)
	}

	nyDay, tkDay := nyStart.In(newYork).Format(time.DateOnly), tkStart.Format(time.DateOnly)
	chainCSV := func(tok, from, to string) (int, [][]string) {
		res := e.Do(t, "GET", c.slug, "/api/v1/staffing/payroll?from="+from+"&to="+to, tok, nil)
		if res.Status != http.StatusOK {
			return res.Status, nil
		}
		rows, err := csv.NewReader(strings.NewReader(string(res.Body))).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		return res.Status, rows
	}
	// header: venue_id venue timezone staff_id name email period_from period_to first_day last_day shifts minutes hours currency amount_minor
	_, rows := chainCSV(c.tok, nyDay, nyDay)
	if len(rows) != 2 || rows[1][0] != c.venue || rows[1][1] != "Hall" || rows[1][2] != "America/New_York" || rows[1][4] != "ana" ||
		rows[1][8] != nyDay || rows[1][11] != "300" || rows[1][12] != "5.00" || rows[1][13] != "USD" || rows[1][14] != "12500" {
		t.Fatalf("the 12th, chain-wide: %v", rows)
	}
	_, rows = chainCSV(c.tok, tkDay, tkDay)
	if len(rows) != 2 || rows[1][0] != tv || rows[1][1] != "Kioi Hall" || rows[1][2] != "Asia/Tokyo" || rows[1][4] != "ken" ||
		rows[1][8] != tkDay || rows[1][11] != "240" || rows[1][13] != "JPY" || rows[1][14] != "6000" {
		t.Fatalf("the 13th, chain-wide: %v", rows)
	}
	_, rows = chainCSV(c.tok, nyDay, tkDay)
	if len(rows) != 3 || rows[1][1] != "Hall" || rows[2][1] != "Kioi Hall" {
		t.Fatalf("both days: %v", rows)
	}
	if res := c.do(t, "GET", "/api/v1/staffing/payroll?from="+tkDay+"&to="+nyDay, nil); res.Status != http.StatusBadRequest || res.Code() != "invalid_period" {
		t.Fatalf("a period backwards: %d %s", res.Status, res.Body)
	}

	// Who may read it.
	user := func(role, venue string) string {
		email := role + "-" + uuid.NewString()[:6] + "@" + c.slug + ".test"
		e.User(t, c.t, email, role, venue)
		return e.Login(t, c.slug, email)
	}
	finance, promoter, manager := user(policies.RoleFinance, ""), user(policies.RolePromoter, ""), user(policies.RoleVenueManager, c.venue)
	if st, rows := chainCSV(finance, nyDay, tkDay); st != http.StatusOK || len(rows) != 3 {
		t.Fatalf("finance: %d %v", st, rows)
	}
	for who, tok := range map[string]string{"promoter": promoter, "venue manager": manager} {
		if res := e.Do(t, "GET", c.slug, "/api/v1/staffing/payroll?from="+nyDay+"&to="+tkDay, tok, nil); res.Status != http.StatusForbidden {
			t.Fatalf("%s reads the chain's payroll: %d %s", who, res.Status, res.Body)
		}
	}
	if res := e.Do(t, "GET", c.slug, "/api/v1/venues/"+c.venue+"/staffing/payroll?from="+nyDay+"&to="+tkDay, manager, nil); res.Status != http.StatusOK {
		t.Fatalf("manager, own venue: %d %s", res.Status, res.Body)
	}
	if res := e.Do(t, "GET", c.slug, "/api/v1/venues/"+tv+"/staffing/payroll?from="+nyDay+"&to="+tkDay, manager, nil); res.Status != http.StatusForbidden {
		t.Fatalf("manager, another venue: %d %s", res.Status, res.Body)
	}
	// A promoter reads shifts (coverage) at every venue, not pay; finance
	// reads any venue's.
	if res := e.Do(t, "GET", c.slug, "/api/v1/venues/"+c.venue+"/staffing/payroll?from="+nyDay+"&to="+tkDay, promoter, nil); res.Status != http.StatusForbidden || res.Code() != "forbidden" {
		t.Fatalf("promoter reads a venue's payroll: %d %s", res.Status, res.Body)
	}
	if res := e.Do(t, "GET", c.slug, "/api/v1/venues/"+tv+"/staffing/payroll?from="+nyDay+"&to="+tkDay, finance, nil); res.Status != http.StatusOK {
		t.Fatalf("finance, a venue: %d %s", res.Status, res.Body)
	}
	// The page and its CSV: every venue for chain roles, the manager's own
	// for a manager, nothing for a promoter.
	page := func(tok, path string) (int, string) {
		res := e.Do(t, "GET", c.slug, path+"?from="+nyDay+"&to="+tkDay, tok, nil)
		return res.Status, string(res.Body)
	}
	if st, body := page(c.tok, "/portal/staffing/payroll"); st != http.StatusOK || !strings.Contains(body, "Kioi Hall") || !strings.Contains(body, `data-venue="`+c.venue+`"`) ||
		!strings.Contains(body, "Every venue of the chain") {
		t.Fatalf("owner's page: %d", st)
	}
	if st, body := page(manager, "/portal/staffing/payroll"); st != http.StatusOK || strings.Contains(body, "Kioi Hall") || !strings.Contains(body, `data-venue="`+c.venue+`"`) ||
		!strings.Contains(body, "Your venues") {
		t.Fatalf("manager's page: %d\n%s", st, body)
	}
	if st, body := page(manager, "/portal/staffing/payroll.csv"); st != http.StatusOK || strings.Contains(body, "Kioi Hall") || !strings.Contains(body, "ana") {
		t.Fatalf("manager's CSV: %d\n%s", st, body)
	}
	if st, _ := page(promoter, "/portal/staffing/payroll"); st != http.StatusForbidden {
		t.Fatalf("promoter's page: %d", st)
	}
}
