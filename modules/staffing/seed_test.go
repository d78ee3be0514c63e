package staffing_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"gorm.io/gorm"

	"marquee/app"
	"marquee/app/apptest"
	"marquee/modules/calendar"
	"marquee/modules/inventory"
	"marquee/modules/staffing"
)

// The demo chain has about 60 staff, certifications running out within 30
// days, a staffed weekend with published and draft days, and one gap that
// ticket sales made (the inventory's demo sells tickets for one event).
func TestDemoSeed(t *testing.T) {
	mod := staffing.New()
	env := apptest.Start(t, dbURL, apptest.Options{Modules: []app.Module{calendar.New(), inventory.New(), mod}})
	if _, err := env.App.SeedDemo(context.Background()); err != nil {
		t.Fatalf("seed: %v", err)
	}
	res := env.Do(t, "POST", "acme", "/api/v1/auth/login", "", map[string]string{"email": "owner@acme.test", "password": app.DemoPassword})
	mustStatus(t, res, http.StatusOK)
	tok := decode[struct{ Token string }](t, res.Body).Token
	staff := decode[app.Page[staffing.Staff]](t, env.Do(t, "GET", "acme", "/api/v1/staffing/staff?limit=200", tok, nil).Body)
	if len(staff.Items) != 60 {
		t.Fatalf("%d demo staff at acme", len(staff.Items))
	}
	expiring := decode[app.List[staffing.Expiring]](t, env.Do(t, "GET", "acme", "/api/v1/staffing/certifications/expiring", tok, nil).Body)
	if len(expiring.Items) == 0 {
		t.Fatal("no certification runs out within 30 days")
	}
	// Somewhere in the next two weeks: a gap made by sales. Coverage is by
	// the venue's local date, which for an American venue's evening is the
	// UTC day before from midnight UTC on: the window starts a day early.
	fromSales, events := 0, 0
	for d := -1; d < 15; d++ {
		day := time.Now().UTC().AddDate(0, 0, d).Format(time.DateOnly)
		night := decode[staffing.NightCoverage](t, env.Do(t, "GET", "acme", "/api/v1/staffing/coverage?date="+day, tok, nil).Body)
		for _, ev := range night.Events {
			if len(ev.Roles) > 0 {
				events++
			}
			for _, r := range ev.Roles {
				fromSales += r.GapFromSales
			}
		}
	}
	if fromSales == 0 || events < 3 {
		t.Fatalf("%d staffed events, gap from sales %d", events, fromSales)
	}
	// The demo staff member sees published shifts only.
	res = env.Do(t, "POST", "acme", "/api/v1/auth/login", "", map[string]string{"email": staffing.DemoStaffEmail, "password": app.DemoPassword})
	mustStatus(t, res, http.StatusOK)
	crew := decode[struct{ Token string }](t, res.Body).Token
	sc := decode[staffing.Schedule](t, env.Do(t, "GET", "acme", "/api/v1/staffing/me", crew, nil).Body)
	for _, s := range sc.Shifts {
		if !s.Shift.Published {
			t.Fatalf("a draft shift on the demo staff member's schedule: %+v", s)
		}
	}
	// Timesheet rows and swaps.
	var timesheets, venues, swaps, named int
	acme, err := env.App.Tenants.Lookup(context.Background(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	if err := env.App.Tx(context.Background(), acme, func(tx *gorm.DB) error {
		if err := tx.Raw(`SELECT count(*) FROM stf_swaps WHERE status = 'asked' AND to_staff IS NOT NULL`).Row().Scan(&named); err != nil {
			return err
		}
		if err := tx.Raw(`SELECT count(*), count(DISTINCT venue_id) FROM stf_timesheets`).Row().Scan(&timesheets, &venues); err != nil {
			return err
		}
		return tx.Raw(`SELECT count(*) FROM stf_swaps WHERE status IN ('asked', 'accepted')`).Row().Scan(&swaps)
	}); err != nil {
		t.Fatal(err)
	}
	// The chain's payroll has two venues; one swap is asked of a colleague
	// by name, one accepted and waiting.
	if timesheets < 6 || venues != 2 || swaps != 2 || named != 1 {
		t.Fatalf("demo: %d timesheet rows at %d venues, %d pending swaps (%d asked by name)", timesheets, venues, swaps, named)
	}
	t.Logf("%d staff, %d expiring, %d staffed events, gap from sales %d, Casey has %d shifts and %d open", len(staff.Items), len(expiring.Items), events, fromSales, len(sc.Shifts), len(sc.Open))
}
