package ops_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"marquee/app/apptest"
)

// A turnstile's counter is cumulative and may reset; readings arrive out of
// order and twice. The zone counts what the device let in, in the order of
// the device's instants: 10, 30, then a reset to 5, then 12 → 30 + 12 = 42,
// whatever order they were sent in, and a second turnstile's deltas add to it.
func TestTurnstileResetOutOfOrderAndDuplicates(t *testing.T) {
	e := startEnv(t, nil)
	c := newChain(t, e, "turn")
	readings := []struct {
		count int
		ago   time.Duration
	}{{30, 8 * time.Minute}, {12, 2 * time.Minute}, {10, 10 * time.Minute}, {5, 5 * time.Minute}, {30, 8 * time.Minute}}
	now := time.Now().UTC()
	for i, r := range readings {
		res := c.push(t, map[string]any{"zone": "Floor", "source": "turnstile:n1", "count": r.count, "at": now.Add(-r.ago)})
		if res.Duplicate != (i == 4) {
			t.Fatalf("reading %d duplicate=%v", i, res.Duplicate)
		}
	}
	at := ago(time.Minute)
	for range 2 { // a delta delivered twice counts once
		c.push(t, map[string]any{"zone": "Floor", "source": "turnstile:s2", "delta": 3, "at": at})
	}
	c.push(t, map[string]any{"zone": "Floor", "source": "turnstile:s2", "delta": -1, "at": ago(30 * time.Second)})
	// An exit counter on the same device as n1: 2 then 5 people out.
	c.push(t, map[string]any{"zone": "Floor", "source": "turnstile:n1", "direction": "out", "count": 5, "at": now.Add(-time.Minute)})
	c.push(t, map[string]any{"zone": "Floor", "source": "turnstile:n1", "direction": "out", "count": 2, "at": now.Add(-3 * time.Minute)})
	z := c.zone(t, "Floor")
	if z.Inside != 39 || z.Source != "turnstile" || z.Stale || z.Sources[0].Devices != 2 {
		t.Fatalf("floor: %+v", z)
	}
	if got := c.count(t, `SELECT count(*) FROM ops_readings`); got != 8 {
		t.Fatalf("%d readings stored", got)
	}
}

// The door, turnstiles and a head count count the same people: the zone
// trusts one of them (door first while it is fresh, then turnstile, then
// manual), says which and how old it is, and never adds them up. A zone may
// pin its source.
func TestSourcesMergedWithoutDoubleCounting(t *testing.T) {
	e := startEnv(t, nil)
	c := newChain(t, e, "merge")
	e.door.set(c.event, "Floor", 60, time.Now().Add(-time.Minute))
	c.push(t, map[string]any{"zone": "Floor", "source": "turnstile:a", "count": 64, "at": ago(30 * time.Second)})
	c.push(t, map[string]any{"zone": "Floor", "source": "manual", "count": 70, "at": ago(20 * time.Second)})
	z := c.zone(t, "Floor")
	if z.Source != "door" || z.Inside != 60 || len(z.Sources) != 3 || z.Stale {
		t.Fatalf("fresh door: %+v", z)
	}
	// The scanners went quiet: the turnstile is trusted instead.
	e.door.set(c.event, "Floor", 60, time.Now().Add(-6*time.Minute))
	if z = c.zone(t, "Floor"); z.Source != "turnstile" || z.Inside != 64 {
		t.Fatalf("stale door: %+v", z)
	}
	// Nothing fresh: the latest source, flagged stale during the show.
	e.door.set(c.event, "Balcony", 20, time.Now().Add(-20*time.Minute))
	if z = c.zone(t, "Balcony"); z.Source != "door" || !z.Stale || z.AgeSeconds == nil || *z.AgeSeconds < 1190 {
		t.Fatalf("stale balcony: %+v", z)
	}
	// Pinned to the head count.
	mustStatus(t, c.do(t, "PUT", "/api/v1/events/"+c.event+"/occupancy/zones", map[string]any{"zones": []any{
		map[string]any{"name": "Floor", "capacity": 100, "source": "manual"}}}), http.StatusOK)
	if z = c.zone(t, "Floor"); z.Source != "manual" || z.Inside != 70 {
		t.Fatalf("pinned: %+v", z)
	}
}

// Alerts fire once per crossing of each threshold, re-arm when the zone
// falls back below, and hold under a race (mail: mail_test.go):
// 30 readings above 90% at once raise exactly one alert.
func TestCapacityAlertsOncePerCrossing(t *testing.T) {
	e := startEnv(t, nil)
	c := newChain(t, e, "alert")
	step := 0
	push := func(n int) []int {
		step++
		res := c.push(t, map[string]any{"zone": "Floor", "source": "manual", "count": n, "at": ago(time.Duration(100-step) * time.Second)})
		var got []int
		for _, a := range res.Alerts {
			got = append(got, a.Percent)
		}
		return got
	}
	for _, s := range []struct {
		count int
		want  string
	}{{50, "[]"}, {91, "[90]"}, {95, "[]"}, {100, "[100]"}, {120, "[]"}, {80, "[]"}, {92, "[90]"}, {89, "[]"}, {101, "[90 100]"}} {
		if got := fmt.Sprint(push(s.count)); got != s.want && !(s.want == "[]" && got == "[]") {
			t.Fatalf("count %d raised %s, want %s", s.count, got, s.want)
		}
	}
	if n := c.count(t, `SELECT count(*) FROM ops_alerts`); n != 5 {
		t.Fatalf("%d alerts", n)
	}
	// A race on the balcony (80% of 50 = 40).
	var wg sync.WaitGroup
	for i := range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := e.Try("POST", c.slug, "/api/v1/events/"+c.event+"/occupancy", c.tok,
				map[string]any{"zone": "Balcony", "source": fmt.Sprintf("turnstile:t%d", i), "delta": 2, "at": ago(time.Second)})
			if err != nil || res.Status != http.StatusOK {
				t.Errorf("push: %v %d %s", err, res.Status, res.Body)
			}
		}()
	}
	wg.Wait()
	if n := c.count(t, `SELECT count(*) FROM ops_alerts a JOIN ops_zones z ON z.id = a.zone_id WHERE z.name = 'Balcony' AND a.percent = 80`); n != 1 {
		t.Fatalf("%d balcony 80%% alerts under the race", n)
	}
	if n := c.count(t, `SELECT count(*) FROM ops_alerts a JOIN ops_zones z ON z.id = a.zone_id WHERE z.name = 'Balcony' AND a.percent = 100`); n != 1 {
		t.Fatalf("%d balcony 100%% alerts under the race", n)
	}
}

// Bad readings are refused with a problem and write nothing.
func TestBadReadingsChangeNothing(t *testing.T) {
	e := startEnv(t, nil)
	c := newChain(t, e, "bad")
	path := "/api/v1/events/" + c.event + "/occupancy"
	none := map[string]int{"ops_readings": 0, "ops_occupancy_minutes": 0, "ops_alerts": 0}
	sc := func(name string, body any, status int, code string) apptest.Scenario {
		return apptest.Scenario{Name: name, Method: "POST", Path: path, Tenant: c.slug, Token: c.tok, Body: body, Status: status, Code: code, Changes: none}
	}
	huge := `{"zone":"Floor","source":"manual","count":1,"pad":"` + strings.Repeat("x", 2<<20) + `"}`
	apptest.RunScenarios(t, e.Env, []apptest.Scenario{
		sc("negative count", map[string]any{"zone": "Floor", "source": "manual", "count": -5}, 400, "invalid_reading"),
		sc("unknown zone", map[string]any{"zone": "Roof", "source": "manual", "count": 5}, 400, "unknown_zone"),
		sc("far future", map[string]any{"zone": "Floor", "source": "turnstile:a", "count": 5, "at": time.Now().Add(24 * time.Hour).Format(time.RFC3339)}, 400, "invalid_at"),
		sc("long past", map[string]any{"zone": "Floor", "source": "turnstile:a", "count": 5, "at": time.Now().Add(-72 * time.Hour).Format(time.RFC3339)}, 400, "invalid_at"),
		sc("count and delta", map[string]any{"zone": "Floor", "source": "turnstile:a", "count": 5, "delta": 1}, 400, "invalid_reading"),
		sc("neither", map[string]any{"zone": "Floor", "source": "turnstile:a"}, 400, "invalid_reading"),
		sc("zero delta", map[string]any{"zone": "Floor", "source": "turnstile:a", "delta": 0}, 400, "invalid_reading"),
		sc("manual delta", map[string]any{"zone": "Floor", "source": "manual", "delta": 3}, 400, "invalid_reading"),
		sc("bad direction", map[string]any{"zone": "Floor", "source": "turnstile:a", "direction": "up", "count": 1}, 400, "invalid_reading"),
		sc("manual exit", map[string]any{"zone": "Floor", "source": "manual", "direction": "out", "count": 1}, 400, "invalid_reading"),
		sc("bad source", map[string]any{"zone": "Floor", "source": "turnstile:../x", "count": 1}, 400, "invalid_reading"),
		sc("huge count", map[string]any{"zone": "Floor", "source": "manual", "count": 10_000_000}, 400, "invalid_reading"),
		sc("unknown field", map[string]any{"zone": "Floor", "source": "manual", "count": 1, "extra": true}, 400, ""),
		sc("huge payload", huge, 413, "payload_too_large"),
		{Name: "zones: capacity zero", Method: "PUT", Path: path + "/zones", Tenant: c.slug, Token: c.tok, Status: 400, Code: "invalid_capacity",
			Body: map[string]any{"zones": []any{map[string]any{"name": "Pit", "capacity": 0}}}, Changes: map[string]int{"ops_zones": 0}},
		{Name: "zones: threshold 0", Method: "PUT", Path: path + "/zones", Tenant: c.slug, Token: c.tok, Status: 400, Code: "invalid_zones",
			Body: map[string]any{"zones": []any{map[string]any{"name": "Pit", "capacity": 10, "alert_percents": []int{0}}}}, Changes: map[string]int{"ops_zones": 0}},
	})
}
