package ops_test

import (
	"bytes"
	"encoding/csv"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"marquee/modules/ops"
)

// The compliance report lists each zone's minutes with its peak against
// capacity, as JSON, CSV and PDF. The clock moves through a show minute by
// minute; the per-minute sampler records minutes without readings too.
func TestComplianceReport(t *testing.T) {
	start := time.Now().UTC().Truncate(time.Minute)
	clk := newClock(start)
	e := startEnv(t, clk)
	c := newChain(t, e, "report")
	ctx := t.Context()
	counts := []int{10, 35, 70, 96, 104, 88, 60}
	for i, n := range counts {
		clk.set(start.Add(time.Duration(i) * time.Minute))
		c.push(t, map[string]any{"zone": "Floor", "source": "manual", "count": n, "at": clk.now().Format(time.RFC3339Nano)})
		e.door.set(c.event, "Balcony", 5*i, clk.now())
		if err := e.mod.SampleNow(ctx, c.t); err != nil {
			t.Fatal(err)
		}
	}
	res := c.do(t, "GET", "/api/v1/events/"+c.event+"/occupancy/report", nil)
	mustStatus(t, res, http.StatusOK)
	rep := decode[ops.Report](t, res.Body)
	if len(rep.Zones) != 2 {
		t.Fatalf("zones: %+v", rep.Zones)
	}
	var floor ops.ReportZone
	for _, z := range rep.Zones {
		if z.Zone == "Floor" {
			floor = z
		}
	}
	if floor.Peak != 104 || floor.Capacity != 100 || len(floor.Minutes) != len(counts) || floor.OverCapacityMinutes != 1 || !floor.PeakAt.Equal(start.Add(4*time.Minute)) {
		t.Fatalf("floor: %+v", floor)
	}
	if len(rep.Alerts) != 2 {
		t.Fatalf("alerts: %+v", rep.Alerts)
	}

	res = c.do(t, "GET", "/api/v1/events/"+c.event+"/occupancy/report?format=csv", nil)
	mustStatus(t, res, http.StatusOK)
	rows, err := csv.NewReader(bytes.NewReader(res.Body)).ReadAll()
	if err != nil || len(rows) != 1+2*len(counts) || rows[0][0] != "zone" || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/csv") {
		t.Fatalf("csv (%v): %s", err, res.Body)
	}

	res = c.do(t, "GET", "/api/v1/events/"+c.event+"/occupancy/report?format=pdf", nil)
	mustStatus(t, res, http.StatusOK)
	if !bytes.HasPrefix(res.Body, []byte("%PDF-")) || res.Header.Get("Content-Type") != "application/pdf" {
		t.Fatalf("pdf: %q", res.Body[:min(20, len(res.Body))])
	}
	// Render it for a look (pdftoppm from poppler-utils, when installed).
	dir := os.Getenv("OPS_REPORT_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	pdf := filepath.Join(dir, "occupancy-report.pdf")
	if err := os.WriteFile(pdf, res.Body, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("pdftoppm"); err == nil {
		if out, err := exec.Command("pdftoppm", "-png", "-r", "70", "-f", "1", "-l", "1", pdf, strings.TrimSuffix(pdf, ".pdf")).CombinedOutput(); err != nil {
			t.Fatalf("pdftoppm: %v %s", err, out)
		}
	}
	mustStatus(t, c.do(t, "GET", "/api/v1/events/"+c.event+"/occupancy/report?format=xls", nil), http.StatusBadRequest)
}
