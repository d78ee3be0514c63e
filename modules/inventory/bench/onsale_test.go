package bench_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"marquee/app/apptest"
	"marquee/config"
	"marquee/modules"
	"marquee/modules/inventory/bench"
)

var dbURL string

func TestMain(m *testing.M) { apptest.Main(m, "bench", &dbURL) }

// A small on-sale run end to end, as `marquee bench onsale` runs it: every
// ticket sold exactly once, the database check passing, both saturation
// phases measured, and the JSON report and chart written.
func TestSmallOnSaleSellsOutAndChecksOut(t *testing.T) {
	stripe := apptest.StripeMock(t)
	env := apptest.Start(t, dbURL, apptest.Options{DBMaxConns: 10, Modules: modules.All(), Configure: func(c *config.Config) {
		c.StripeAPIURL = stripe
		c.StripeSecretKey = config.DevStripeSecretKey
		c.StripeWebhookSecret = "whsec_test_bench"
	}})
	ctx, stop := context.WithCancel(context.Background())
	worker := make(chan error, 1)
	go func() { worker <- env.App.RunWorker(ctx, false) }()
	defer func() { stop(); <-worker }()

	o := bench.Defaults()
	o.Seats, o.GA, o.Buyers = 40, 20, 150
	o.Concurrency, o.DBConns = 16, 10
	o.Arrival, o.MaxDuration, o.Phase = 500*time.Millisecond, 60*time.Second, 300*time.Millisecond
	o.AdmitPerSecond, o.MaxActive = 100, 30
	o.OutDir = t.TempDir()
	var out bytes.Buffer
	rep, err := bench.Run(context.Background(), env.App, env.Server.URL, o, &out, &bytes.Buffer{})
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	if !rep.Checks.OK || rep.Checks.ValidTickets != int64(o.Seats+o.GA) || rep.TicketsSold != int64(o.Seats+o.GA) {
		t.Fatalf("checks %+v, buyers counted %d, capacity %d\n%s", rep.Checks, rep.TicketsSold, o.Seats+o.GA, out.String())
	}
	if rep.SatHoldsPerS <= 0 || rep.RawHoldsPerS <= 0 || rep.Ratio <= 0 {
		t.Fatalf("saturation not measured: API %.0f/s, raw %.0f/s\n%s", rep.SatHoldsPerS, rep.RawHoldsPerS, out.String())
	}
	if e := rep.E2E; e.APIPerS <= 0 || e.RawPerS <= 0 || e.Ratio <= 0 || len(e.Waits) == 0 || e.Profile == "" {
		t.Fatalf("whole purchases not measured or not profiled: %+v\n%s", e, out.String())
	}
	if f := rep.Fairness; !f.OK || f.Admitted < o.Seats/4 || f.Joined != o.Buyers || !strings.Contains(out.String(), "admission order OK") {
		t.Fatalf("admission order: %+v\n%s", f, out.String())
	}
	if len(rep.Room) == 0 || rep.Room[len(rep.Room)-1].Decision == "fixed" {
		t.Fatalf("the adaptive room's state not sampled: %+v\n%s", rep.Room, out.String())
	}
	t.Log(out.String())
	for _, f := range []string{rep.JSONPath, rep.ChartPath} {
		if st, err := os.Stat(f); err != nil || st.Size() == 0 {
			t.Fatalf("report file %q: %v", f, err)
		}
	}
	raw, err := os.ReadFile(rep.JSONPath)
	if err != nil {
		t.Fatal(err)
	}
	var written struct {
		Options struct {
			Seats     int   `json:"seats"`
			ArrivalNS int64 `json:"arrival_ns"`
		} `json:"options"`
		Outcomes map[string]int64 `json:"outcomes"`
		Checks   struct {
			OK bool `json:"ok"`
		} `json:"checks"`
	}
	if err := json.Unmarshal(raw, &written); err != nil || written.Options.Seats != o.Seats ||
		written.Options.ArrivalNS != int64(o.Arrival) || written.Outcomes["bought"] == 0 || !written.Checks.OK {
		t.Fatalf("JSON report %+v (%v):\n%s", written, err, raw)
	}
	if !strings.Contains(out.String(), "database check OK") || !strings.Contains(out.String(), "API/raw =") {
		t.Fatalf("summary lacks the check or the ratio:\n%s", out.String())
	}
}
