package fleetbench_test

import (
	"bytes"
	"strings"
	"testing"

	"marquee/app/apptest"
	"marquee/internal/fleetbench"
	"marquee/modules"
)

var dbURL string

func TestMain(m *testing.M) { apptest.Main(m, "fleetbench", &dbURL) }

// A small fleet: grown in two steps, measured at each, and a second run
// resumes (creates nothing) instead of failing on the tenants it finds.
func TestFleetBenchSmall(t *testing.T) {
	env := apptest.Start(t, dbURL, apptest.Options{Modules: modules.All()})
	var out bytes.Buffer
	o := fleetbench.Options{Sizes: []int{3, 6}, Parallel: 2, Requests: 300, Sample: 3, Password: apptest.Password, Out: &out}
	figs, err := fleetbench.Run(t.Context(), env.App, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(figs) != 2 || figs[0].Created != 3 || figs[1].Created != 3 {
		t.Fatalf("figures: %+v", figs)
	}
	for _, f := range figs {
		if f.Request <= 0 || f.Baseline <= 0 || f.Resolve <= 0 || f.MigrateAll <= 0 || f.FanOut <= 0 || f.FannedOut < f.Tenants {
			t.Fatalf("unmeasured figure: %+v", f)
		}
	}
	if lines := strings.Count(out.String(), "\n"); lines != 2 || !strings.Contains(out.String(), "tenants     6") {
		t.Fatalf("output:\n%s", out.String())
	}
	again, err := fleetbench.Run(t.Context(), env.App, fleetbench.Options{Sizes: []int{6}, Requests: 100, Password: apptest.Password, Out: &out})
	if err != nil || again[0].Created != 0 {
		t.Fatalf("rerun: %+v %v", again, err)
	}
	if _, err := fleetbench.Run(t.Context(), env.App, fleetbench.Options{Sizes: []int{6, 3}}); err == nil {
		t.Fatal("descending sizes accepted")
	}
	t.Log(out.String())
}
