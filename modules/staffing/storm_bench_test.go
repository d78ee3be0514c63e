package staffing_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/app/apptest"
	"marquee/config"
	"marquee/modules/calendar"
	"marquee/modules/staffing"
	"marquee/modules/staffing/stormbench"
)

// BenchmarkSignupStorm runs the sign-up storm of `marquee bench staffing`
// (stormbench) against the test server: 2,000 staff open their schedule at
// once and sign up for 500 shifts (4 places each, in overlapping two-hour
// slots), each trying up to three until one takes them, through the HTTP
// API; then the same attempts on a second set of 500 shifts run the same
// conditional insert directly against PostgreSQL. It prints assignments per
// second of both and their ratio (goal ≥ 0.5), and fails when a shift is
// over-filled, someone holds overlapping shifts, or an answer was not
// understood:
//
//	go test -run '^$' -bench SignupStorm -benchtime 1x ./modules/staffing/
//
// The server bounds the chain's requests in flight by its database
// connections and lets the rest wait, as `marquee bench staffing` does (the
// test configuration lifts the bound so that tests are never shed).
func BenchmarkSignupStorm(b *testing.B) {
	o := stormbench.Defaults()
	mod := staffing.New()
	e := &env{Env: apptest.Start(b, dbURL, apptest.Options{
		Modules: []app.Module{calendar.New(), &fakeFacts{sold: map[uuid.UUID]int{}}, mod}, DBMaxConns: o.DBConns,
		Configure: func(cfg *config.Config) {
			cfg.MaxInFlight, cfg.TenantMaxInFlight, cfg.ShedWait = max(128, 2*o.DBConns), o.DBConns, time.Minute
		},
	}), mod: mod}
	for b.Loop() {
		rep, err := stormbench.Run(context.Background(), e.App, e.mod.Service(), e.Server.URL, o, os.Stdout, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(rep.APIRate, "api-assign/s")
		b.ReportMetric(rep.DirectRate, "sql-assign/s")
		b.ReportMetric(rep.Ratio, "ratio")
		if !rep.OK() {
			b.Fatalf("over-filled %d, overlapping %d, other answers %v", rep.Overfilled, rep.Overlapping, rep.Others)
		}
	}
}

// TestSignupStormHarness runs the storm small: every answer understood, no
// shift over-filled, nobody on overlapping shifts, and the database holds
// exactly the places both phases reported.
func TestSignupStormHarness(t *testing.T) {
	e := startEnv(t, nil)
	o := stormbench.Options{People: 60, Shifts: 10, Places: 2, Tries: 3}
	var out strings.Builder
	rep, err := stormbench.Run(context.Background(), e.App, e.mod.Service(), e.Server.URL, o, &out, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(out.String())
	if !rep.OK() || rep.Opened != o.People {
		t.Fatalf("check failed: %+v", rep)
	}
	if rep.APIPlaced == 0 || rep.APIPlaced > o.Shifts*o.Places || rep.DirectPlaced == 0 || rep.DirectPlaced > o.Shifts*o.Places {
		t.Fatalf("placed %d through the API and %d directly, of %d places each", rep.APIPlaced, rep.DirectPlaced, o.Shifts*o.Places)
	}
	tn, err := e.App.Tenants.Lookup(context.Background(), rep.Slug)
	if err != nil {
		t.Fatal(err)
	}
	var held, filled int
	if err := e.App.Tx(context.Background(), tn, func(tx *gorm.DB) error {
		if err := tx.Raw(`SELECT count(*) FROM stf_assignments WHERE status = 'assigned'`).Row().Scan(&held); err != nil {
			return err
		}
		return tx.Raw(`SELECT coalesce(sum(filled), 0) FROM stf_shifts`).Row().Scan(&filled)
	}); err != nil {
		t.Fatal(err)
	}
	if held != rep.APIPlaced+rep.DirectPlaced || filled != held {
		t.Fatalf("database holds %d assignments, counters %d; the run reported %d + %d", held, filled, rep.APIPlaced, rep.DirectPlaced)
	}
	if !strings.Contains(out.String(), "ratio API/direct") || !strings.Contains(out.String(), "database check: over-filled shifts 0, overlapping assignments 0: ok") {
		t.Fatalf("report:\n%s", out.String())
	}
}
