package opsbench

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"marquee/app"
	"marquee/modules/ops"
	"marquee/tenants"
)

// AccuracyResult is what the simulated show found.
type AccuracyResult struct {
	Entries, Exits, Readings, Redelivered, Late int
	Minutes, OutOfBounds                        int
	FinalInside, Truth                          int
	FirstMiss                                   string
}

func (r AccuracyResult) String() string {
	return fmt.Sprintf("accuracy: %d entries, %d exits over %d minutes, %d readings (%d redelivered, %d a minute late), one counter reset: %d of %d sampled minutes outside the stated freshness (5 min); at the end the dashboard says %d inside, the truth is %d",
		r.Entries, r.Exits, r.Minutes, r.Readings, r.Redelivered, r.Late, r.OutOfBounds, r.Minutes+1, r.FinalInside, r.Truth)
}

// Accuracy simulates a show on an event with one zone ("Arena", no door
// count): 30,000 entries through four gates and 5,000 exits through two
// over three hours from start, each counter reporting its cumulative count
// once a minute; one entry counter resets once; 1% of readings are
// delivered twice and 1% a minute late. After every minute the zone's count
// must lie within what the counters said over the last five minutes (the
// freshness the dashboard states), and at the end equal the truth.
// setClock, when not nil, moves the App's clock to each minute; without it
// the show is placed in the past (start three hours ago).
func Accuracy(ctx context.Context, svc *ops.Service, t tenants.Tenant, ev app.EventInfo, start time.Time, setClock func(time.Time)) (AccuracyResult, error) {
	const minutes, entries, exits = 180, 30000, 5000
	var res AccuracyResult
	res.Minutes = minutes
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
	var late, sent []ops.Reading
	push := func(r ops.Reading) error {
		_, err := svc.PushReading(ctx, t, ev, nil, r)
		return err
	}
	for k := 0; k <= minutes; k++ {
		now := start.Add(time.Duration(k) * time.Minute)
		if setClock != nil {
			setClock(now)
		}
		for _, r := range late {
			if err := push(r); err != nil {
				return res, err
			}
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
				late, res.Late = append(late, r), res.Late+1
				continue
			case x < .02 && len(sent) > 0:
				if err := push(sent[rng.IntN(len(sent))]); err != nil { // a redelivery of an earlier reading
					return res, err
				}
				res.Redelivered++
			}
			if err := push(r); err != nil {
				return res, err
			}
			sent = append(sent, r)
		}
		zs, err := svc.Occupancy(ctx, t, ev)
		if err != nil {
			return res, err
		}
		if len(zs) == 0 {
			return res, fmt.Errorf("the event has no zone")
		}
		got := zs[0].Inside
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
			res.OutOfBounds++
			if res.FirstMiss == "" {
				res.FirstMiss = fmt.Sprintf("minute %d: dashboard %d, truth %d (last five minutes %d..%d)", k, got, truth(k), lo, hi)
			}
		}
		res.FinalInside = got
	}
	res.Entries, res.Exits, res.Readings, res.Truth = in(minutes), out(minutes), len(sent)+res.Late, truth(minutes)
	return res, nil
}
