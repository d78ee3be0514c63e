package bench_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"marquee/app/apptest"
	"marquee/config"
	"marquee/modules"
	"marquee/modules/inventory/bench"
)

func limitsEnv(t *testing.T) *apptest.Env {
	stripe := apptest.StripeMock(t)
	return apptest.Start(t, dbURL, apptest.Options{DBMaxConns: 10, Modules: modules.All(), Configure: func(c *config.Config) {
		c.StripeAPIURL = stripe
		c.StripeSecretKey = config.DevStripeSecretKey
		c.StripeWebhookSecret = "whsec_test_bench"
	}})
}

func limitsOptions(t *testing.T) bench.Options {
	o := bench.Defaults()
	o.Concurrency, o.DBConns, o.Phase, o.OutDir = 8, 10, 300*time.Millisecond, t.TempDir()
	return o
}

// bench limits as the command runs it, small: every phase holds without a
// single refusal (each hold a new buyer's and device's), with the limits off
// and on, and the ratio is reported.
func TestLimitsRunHoldsWithoutRefusals(t *testing.T) {
	env := limitsEnv(t)
	var out bytes.Buffer
	rep, err := bench.RunLimits(context.Background(), env.App, env.Server.URL, limitsOptions(t), 1, &out)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	if len(rep.Phases) != 4 || rep.Invalid != "" || rep.OffPerS <= 0 || rep.OnPerS <= 0 || rep.Ratio <= 0 || len(rep.RoundRatios) != 1 || rep.MedianRatio != rep.RoundRatios[0] ||
		rep.CPUPerHoldOffUs <= 0 || rep.CPUPerHoldOnUs <= 0 {
		t.Fatalf("report %+v\n%s", rep, out.String())
	}
	var dbMs, redisOnMs float64
	for i, p := range rep.Phases {
		if p.Holds == 0 || len(p.Refused) != 0 || p.Errors != 0 || p.Asked >= int64(p.Seats) || p.Limits != (i == 1 || i == 2) || p.CPU.ProcessMs <= 0 {
			t.Fatalf("phase %d: %+v\n%s", i+1, p, out.String())
		}
		dbMs += p.CPU.DatabaseMs
		if p.Limits {
			redisOnMs += p.CPU.RedisMs // the rate checks
		}
	}
	// The database and Redis of the test run on this machine: their CPU
	// time is counted.
	if dbMs <= 0 || redisOnMs <= 0 {
		t.Fatalf("CPU not counted: database %.1f ms, Redis with the limits on %.1f ms\n%s", dbMs, redisOnMs, out.String())
	}
	if !strings.Contains(out.String(), "refused 0") || !strings.Contains(out.String(), "ratio on/off") {
		t.Fatalf("output lacks the refusals or the ratio:\n%s", out.String())
	}
}

// The bench as it was before one cart per buyer (a few buyers holding again
// and again, their holds joining their carts until a per-order or per-buyer
// limit refuses them) fails in its first phase, limits off, with the
// refusals named, instead of printing a ratio.
func TestLimitsRunFailsWhenBuyersHoldAgain(t *testing.T) {
	env := limitsEnv(t)
	defer bench.ReuseLimitsBuyers(2)()
	var out bytes.Buffer
	rep, err := bench.RunLimits(context.Background(), env.App, env.Server.URL, limitsOptions(t), 1, &out)
	if !errors.Is(err, bench.ErrLimitsInvalid) || rep == nil {
		t.Fatalf("run: %v, want ErrLimitsInvalid\n%s", err, out.String())
	}
	if len(rep.Phases) != 1 || rep.Phases[0].Limits || !strings.Contains(rep.Invalid, "phase 1 (limits off)") ||
		!strings.Contains(rep.Invalid, "holds refused") || rep.Ratio != 0 {
		t.Fatalf("report %+v\n%s", rep, out.String())
	}
	if !strings.Contains(out.String(), "INVALID:") || strings.Contains(out.String(), "ratio on/off") {
		t.Fatalf("output:\n%s", out.String())
	}
	t.Log(out.String())
}
