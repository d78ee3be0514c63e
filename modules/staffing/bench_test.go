package staffing_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/modules/staffing"
)

// nightFixture is a chain's busy night: 20 events at 20 venues at once,
// 15 roles each with a requirement and a 10-place shift, every place taken
// (3,000 assignments, 3,000 people).
type nightFixture struct {
	e    *env
	c    *chain
	date string
	evs  []string
}

func buildNight(b *testing.B) *nightFixture {
	b.Helper()
	e := startEnv(b, nil)
	c := newChain(b, e, "night")
	ctx := context.Background()
	svc := e.mod.Service()
	roles := make([]uuid.UUID, 15)
	for i := range roles {
		name := fmt.Sprintf("Role %02d", i)
		r, err := svc.SaveRole(ctx, c.t, nil, staffing.RoleInput{Key: fmt.Sprintf("r%02d", i), Name: &name})
		if err != nil {
			b.Fatal(err)
		}
		roles[i] = r.ID
	}
	// 3,000 people, 200 per role, written in bulk: the fixture, not the subject.
	err := e.App.Tx(ctx, c.t, func(tx *gorm.DB) error {
		for i, r := range roles {
			if err := tx.Exec(`WITH s AS (
				INSERT INTO stf_staff (id, name) SELECT gen_random_uuid(), 'P' || ? || '-' || g FROM generate_series(1, 200) g RETURNING id)
				INSERT INTO stf_staff_roles (staff_id, role_id) SELECT id, ? FROM s`, fmt.Sprint(i), r).Error; err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	f := &nightFixture{e: e, c: c, date: c.eventAt.In(newYork).Format(time.DateOnly)}
	var jobs []func() error
	for v := range 20 {
		venue := c.id(b, c.do(b, "POST", "/api/v1/venues", map[string]any{"name": fmt.Sprintf("Venue %02d", v), "timezone": "America/New_York", "capacity": 3000}))
		stage := c.id(b, c.do(b, "POST", "/api/v1/venues/"+venue+"/stages", map[string]any{"name": "Main", "capacity": 3000, "type": "main"}))
		ev := c.id(b, c.do(b, "POST", "/api/v1/venues/"+venue+"/events", map[string]any{"stage_id": stage, "title": fmt.Sprintf("Show %02d", v), "category": "concert",
			"status": "on_sale", "starts_at": c.eventAt.UTC().Format(time.RFC3339), "ends_at": c.eventAt.Add(3 * time.Hour).UTC().Format(time.RFC3339)}))
		f.evs = append(f.evs, ev)
		var reqs []any
		for _, r := range roles {
			reqs = append(reqs, map[string]any{"role_id": r, "rule": "ratio", "per_attendees": 100, "minimum": 10})
		}
		mustStatus(b, c.do(b, "PUT", "/api/v1/events/"+ev+"/staffing/requirements", map[string]any{"requirements": reqs}), http.StatusOK)
		vid, eid := uuid.MustParse(venue), uuid.MustParse(ev)
		for ri, r := range roles {
			sh, err := svc.CreateShift(ctx, c.t, vid, staffing.ShiftInput{EventID: eid, RoleID: r, StartsAt: c.eventAt.Add(-time.Hour), EndsAt: c.eventAt.Add(4 * time.Hour), Places: 10})
			if err != nil {
				b.Fatal(err)
			}
			var people []uuid.UUID
			if err := e.App.Tx(ctx, c.t, func(tx *gorm.DB) error {
				return tx.Raw(`SELECT id FROM stf_staff WHERE name LIKE ? ORDER BY id OFFSET ? LIMIT 10`, fmt.Sprintf("P%d-%%", ri), v*10).Scan(&people).Error
			}); err != nil {
				b.Fatal(err)
			}
			for _, p := range people {
				jobs = append(jobs, func() error { _, err := svc.Assign(ctx, c.t, vid, sh.ID, p); return err })
			}
		}
	}
	var wg sync.WaitGroup
	ch := make(chan func() error)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range ch {
				if err := j(); err != nil {
					b.Error(err)
				}
			}
		}()
	}
	for _, j := range jobs {
		ch <- j
	}
	close(ch)
	wg.Wait()
	if n := c.count(b, `SELECT count(*) FROM stf_assignments WHERE status = 'assigned'`); n != 3000 {
		b.Fatalf("%d assignments", n)
	}
	return f
}

// percentiles reports p50 and p99 of the request times as metrics.
func percentiles(b *testing.B, ds []time.Duration) {
	slices.Sort(ds)
	p := func(q float64) float64 { return float64(ds[int(q*float64(len(ds)-1))].Microseconds()) / 1000 }
	b.ReportMetric(p(0.5), "p50-ms")
	b.ReportMetric(p(0.99), "p99-ms")
}

// timeGets reads path through the API once per iteration and reports the
// request times' percentiles.
func timeGets(b *testing.B, f *nightFixture, path string) {
	var ds []time.Duration
	for b.Loop() {
		start := time.Now()
		res, err := f.e.Try("GET", f.c.slug, path, f.c.tok, nil)
		if err != nil || res.Status != http.StatusOK {
			b.Fatalf("%v %d %s", err, res.Status, res.Body)
		}
		ds = append(ds, time.Since(start))
	}
	percentiles(b, ds)
}

// BenchmarkCoverage reads coverage through the API over a busy night (20
// events × 15 roles, 3,000 assignments): the chain's night, and one event.
// The bound is p99 < 50 ms:
//
//	go test -run '^$' -bench Coverage -benchtime 2000x ./modules/staffing/
func BenchmarkCoverage(b *testing.B) {
	f := buildNight(b)
	night := "/api/v1/staffing/coverage?date=" + f.date
	// The answer is the night: 20 events × 15 roles, all covered (and the
	// chain's own unstaffed show).
	nc := decode[staffing.NightCoverage](b, f.e.Do(b, "GET", f.c.slug, night, f.c.tok, nil).Body)
	staffed, assigned := 0, 0
	for _, ev := range nc.Events {
		if len(ev.Roles) == 15 {
			staffed++
		}
		assigned += ev.Assigned
	}
	if staffed != 20 || assigned != 3000 || nc.Gap != 0 {
		b.Fatalf("night: %d staffed events, %d assigned, gap %d", staffed, assigned, nc.Gap)
	}
	b.Run("night", func(b *testing.B) { timeGets(b, f, night) })
	b.Run("event", func(b *testing.B) { timeGets(b, f, "/api/v1/events/"+f.evs[7]+"/staffing/coverage") })
}
