package ops_test

import (
	"context"
	"math"
	"math/rand/v2"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"

	"marquee/app"
	"marquee/modules/ops"
)

// A simulated show: 30,000 entries through four gates and 5,000 exits
// through two, over three hours, each counter reporting its cumulative
// count once a minute; one entry counter resets once; 1% of readings are
// delivered twice and 1% a minute late. After every minute the zone's count
// must be what the counters said at most five minutes ago (the stated
// freshness), and at the end equal the truth exactly.
func TestOccupancyAccuracyUnderSimulatedShow(t *testing.T) {
	if testing.Short() {
		t.Skip("a three-hour show, simulated")
	}
	start := time.Now().UTC().Truncate(time.Minute)
	clk := newClock(start)
	e := startEnv(t, clk)
	c := newChain(t, e, "accuracy")
	mustStatus(t, c.do(t, "PUT", "/api/v1/events/"+c.event+"/occupancy/zones", map[string]any{"zones": []any{
		map[string]any{"name": "Arena", "capacity": 40000, "door_zone": "-"}}}), http.StatusOK)
	svc, ctx := e.mod.Service(), context.Background()
	ev := app.EventInfo{ID: uuid.MustParse(c.event), VenueID: uuid.MustParse(c.venue), StartsAt: start, EndsAt: start.Add(4 * time.Hour)}

	const minutes, entries, exits = 180, 30000, 5000
	s := func(k int, mid, width float64) float64 { return 1 / (1 + math.Exp(-(float64(k)-mid)/width)) }
	norm := func(f func(int) float64, k int) float64 { return (f(k) - f(0)) / (f(minutes) - f(0)) }
	in := func(k int) int { return int(entries * norm(func(k int) float64 { return s(k, 60, 12) }, k)) }
	out := func(k int) int { return int(exits * norm(func(k int) float64 { return s(k, 150, 10) }, k)) }
	type counter struct {
		source, direction string
		share             float64
		total             func(int) int
		base, resetAt     int
	}
	counters := []*counter{
		{source: "turnstile:gate-1", direction: "in", share: .3, total: in},
		{source: "turnstile:gate-2", direction: "in", share: .3, total: in, resetAt: 75},
		{source: "turnstile:gate-3", direction: "in", share: .2, total: in},
		{source: "turnstile:gate-4", direction: "in", share: .2, total: in},
		{source: "turnstile:exit-1", direction: "out", share: .5, total: out},
		{source: "turnstile:exit-2", direction: "out", share: .5, total: out},
	}
	// A gate's cumulative count: its share of the crowd through its
	// direction (never decreasing, as real counters).
	count := func(ci, k int) int { return int(float64(counters[ci].total(k)) * counters[ci].share) }
	truth := func(k int) int {
		n := 0
		for ci, cn := range counters {
			if cn.direction == "in" {
				n += count(ci, k)
			} else {
				n -= count(ci, k)
			}
		}
		return n
	}
	rng := rand.New(rand.NewPCG(1, 2))
	type pending struct {
		r ops.Reading
	}
	var late []pending
	var sent []ops.Reading
	push := func(r ops.Reading) {
		if _, err := svc.PushReading(ctx, c.t, ev, nil, r); err != nil {
			t.Fatalf("push %+v: %v", r, err)
		}
	}
	dups, lates := 0, 0
	for k := 0; k <= minutes; k++ {
		now := start.Add(time.Duration(k) * time.Minute)
		clk.set(now)
		for _, p := range late {
			push(p.r)
		}
		late = late[:0]
		for ci, cn := range counters {
			n := count(ci, k)
			if cn.resetAt != 0 && k == cn.resetAt+1 {
				cn.base = count(ci, cn.resetAt) // the counter restarted just after its last reading
			}
			n -= cn.base
			at := now
			r := ops.Reading{Zone: "Arena", Source: cn.source, Direction: cn.direction, Count: &n, At: &at}
			switch x := rng.Float64(); {
			case x < .01 && k < minutes:
				late, lates = append(late, pending{r}), lates+1
				continue
			case x < .02 && len(sent) > 0:
				push(sent[rng.IntN(len(sent))]) // a redelivery of an earlier reading
				dups++
			}
			push(r)
			sent = append(sent, r)
		}
		zs, err := svc.Occupancy(ctx, c.t, ev)
		if err != nil {
			t.Fatal(err)
		}
		got := zs[0].Inside
		// Each counter may be up to five minutes behind (the freshness the
		// dashboard states): entries from then with exits from now at the
		// lowest, the other way round at the highest.
		lo, hi := 0, 0
		for ci, cn := range counters {
			now, then := count(ci, k), count(ci, max(0, k-5))
			if cn.direction == "in" {
				lo, hi = lo+then, hi+now
			} else {
				lo, hi = lo-now, hi-then
			}
		}
		if got < lo || got > hi {
			t.Fatalf("minute %d: dashboard %d, truth %d (last five minutes %d..%d)", k, got, truth(k), lo, hi)
		}
		if k == minutes && got != truth(k) {
			t.Fatalf("end: dashboard %d, truth %d", got, truth(k))
		}
	}
	t.Logf("%d entries, %d exits, %d readings (%d redelivered, %d late), one counter reset: within freshness every minute, exact at the end (%d inside)",
		in(minutes), out(minutes), len(sent)+lates, dups, lates, truth(minutes))
}
