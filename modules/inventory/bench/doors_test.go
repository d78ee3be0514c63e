package bench_test

import (
	"bytes"
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"marquee/app/apptest"
	"marquee/config"
	"marquee/modules"
	"marquee/modules/inventory/bench"
)

// A small night at the door, as `marquee bench doors` runs it: every ticket
// admitted exactly once (re-entries after exits aside), duplicates answered
// already_admitted, the raw baseline measured, and the database check
// passing.
func TestSmallDoorNightChecksOut(t *testing.T) {
	stripe := apptest.StripeMock(t)
	env := apptest.Start(t, dbURL, apptest.Options{DBMaxConns: 10, Modules: modules.All(), Configure: func(c *config.Config) {
		c.StripeAPIURL = stripe
		c.StripeSecretKey = config.DevStripeSecretKey
		c.StripeWebhookSecret = "whsec_test_bench"
	}})
	o := bench.DoorsDefaults()
	o.Tickets, o.RawTickets, o.Scanners, o.DBConns, o.Sellers = 300, 200, 16, 10, 3
	o.ExitShare, o.DupShare, o.Phase = 0.2, 0.1, 2*time.Second
	// MARQUEE_BENCH_DOORS_TICKETS sizes a bigger night (for profiling with
	// -cpuprofile: client and server run in this one process).
	if v, err := strconv.Atoi(os.Getenv("MARQUEE_BENCH_DOORS_TICKETS")); err == nil && v > 0 {
		o.Tickets, o.RawTickets, o.Scanners = v, min(v, 10000), 64
	}
	var out bytes.Buffer
	rep, err := bench.RunDoors(context.Background(), env.App, env.Server.URL, o, &out, &bytes.Buffer{})
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	if !rep.Check.OK || rep.Unexpected != 0 || rep.Results["admit"] < int64(o.Tickets) || rep.Results["already_admitted"] == 0 || rep.Results["exited"] == 0 {
		t.Fatalf("report %+v\n%s", rep, out.String())
	}
	if rep.RawPerS <= 0 || rep.Ratio <= 0 || rep.P99 <= 0 {
		t.Fatalf("not measured: %+v", rep)
	}
	t.Log(out.String())
	if !strings.Contains(out.String(), "database check OK") || !strings.Contains(out.String(), "API/raw =") {
		t.Fatalf("summary lacks the check or the ratio:\n%s", out.String())
	}
}

// The stadium-night arrival model on a small night: every holder arrives
// at their scheduled time compressed into a few seconds, goes out and back
// in where drawn, the peak window and the wait at the door are measured,
// and the database check passes.
func TestSmallArrivalNightChecksOut(t *testing.T) {
	stripe := apptest.StripeMock(t)
	env := apptest.Start(t, dbURL, apptest.Options{DBMaxConns: 10, Modules: modules.All(), Configure: func(c *config.Config) {
		c.StripeAPIURL = stripe
		c.StripeSecretKey = config.DevStripeSecretKey
		c.StripeWebhookSecret = "whsec_test_bench"
	}})
	o := bench.DoorsDefaults()
	o.Tickets, o.RawTickets, o.Scanners, o.DBConns, o.Sellers = 300, 200, 16, 10, 3
	o.ExitShare, o.DupShare, o.Phase = 0.2, 0.1, 2*time.Second
	o.Arrivals, o.Run = true, 4*time.Second
	var out bytes.Buffer
	rep, err := bench.RunDoors(context.Background(), env.App, env.Server.URL, o, &out, &bytes.Buffer{})
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	if !rep.Check.OK || rep.Unexpected != 0 || rep.Results["admit"] < int64(o.Tickets) || rep.Results["exited"] == 0 || rep.Results["already_admitted"] == 0 {
		t.Fatalf("report %+v\n%s", rep, out.String())
	}
	a := rep.Arrival
	// 60% of 300 arrive in the last 45 of 120 minutes: about 180.
	if a == nil || a.PeakArrivals < 140 || a.PeakArrivals > 220 || a.PeakAdmitsPerS <= 0 || a.PeakRatio <= 0 || a.WaitP99 <= 0 {
		t.Fatalf("arrival figures %+v\n%s", a, out.String())
	}
	t.Log(out.String())
	if !strings.Contains(out.String(), "peak admits/raw =") || !strings.Contains(out.String(), "database check OK") {
		t.Fatalf("summary lacks the peak ratio or the check:\n%s", out.String())
	}
}
