package calendar_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"marquee/app"
	"marquee/app/apptest"
	"marquee/modules/calendar"
)

// TestBenchConflictingInserts measures bookings per second when many
// clients fight over the same slots (each slot is asked for 50 times; one
// request wins, 49 get 409), through the HTTP API, against the same INSERT
// run directly on PostgreSQL by as many goroutines over a pool of the same
// size, in the same run. It also measures bookings that all succeed.
// Run with MARQUEE_BENCH=1 go test -run TestBenchConflictingInserts -v ./modules/calendar/
func TestBenchConflictingInserts(t *testing.T) {
	if os.Getenv("MARQUEE_BENCH") == "" {
		t.Skip("set MARQUEE_BENCH=1 to run the calendar benchmark")
	}
	const (
		workers  = 32
		poolSize = 20
		perSlot  = 50
		duration = 4 * time.Second
	)
	env, mod := startEnv(t, func(o *apptest.Options) { o.DBMaxConns = poolSize })
	env.Client.Transport = &http.Transport{MaxIdleConns: workers * 2, MaxIdleConnsPerHost: workers * 2}
	c := newChain(t, env, mod, "bench")
	ctx := context.Background()

	// run calls op from workers goroutines for the duration and returns the
	// operations per second and the outcomes seen.
	run := func(op func(n int64) (string, error)) (float64, map[string]int64) {
		var next atomic.Int64
		var mu sync.Mutex
		outcomes := map[string]int64{}
		var wg sync.WaitGroup
		deadline := time.Now().Add(duration)
		start := time.Now()
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				local := map[string]int64{}
				for time.Now().Before(deadline) {
					outcome, err := op(next.Add(1) - 1)
					if err != nil {
						outcome = "error: " + err.Error()
					}
					local[outcome]++
				}
				mu.Lock()
				for k, v := range local {
					outcomes[k] += v
				}
				mu.Unlock()
			}()
		}
		wg.Wait()
		var total int64
		for k, v := range outcomes {
			if len(k) > 5 && k[:5] == "error" {
				t.Errorf("%d × %s", v, k)
			}
			total += v
		}
		return float64(total) / time.Since(start).Seconds(), outcomes
	}

	slotStart := func(base time.Time, n int64, per int64) (time.Time, time.Time) {
		s := base.Add(time.Duration(n/per) * 4 * time.Hour)
		return s, s.Add(3 * time.Hour)
	}
	httpOp := func(stage string, base time.Time, per int64) func(int64) (string, error) {
		path := "/api/v1/venues/" + c.venue + "/events"
		return func(n int64) (string, error) {
			s, e := slotStart(base, n, per)
			res, err := env.Try("POST", c.slug, path, c.tok, map[string]any{"stage_id": stage, "title": "Bench", "category": "concert",
				"starts_at": s.Format(time.RFC3339), "ends_at": e.Format(time.RFC3339), "setup_minutes": 30, "teardown_minutes": 30})
			if err != nil {
				return "", err
			}
			if res.Status != http.StatusCreated && res.Status != http.StatusConflict {
				return "", fmt.Errorf("%d %s", res.Status, res.Body)
			}
			return fmt.Sprint(res.Status), nil
		}
	}

	// The direct path: the same statement in a transaction, its tables named
	// with the tenant's schema (only the door scopes a transaction), on a
	// pool of the same size.
	cfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = poolSize
	cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeDescribeExec
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	schema := pgx.Identifier{c.t.Schema}.Sanitize()
	venue := uuid.MustParse(c.venue)
	directOp := func(stage string, base time.Time, per int64) func(int64) (string, error) {
		sid := uuid.MustParse(stage)
		return func(n int64) (string, error) {
			s, e := slotStart(base, n, per)
			from, to := s.Add(-30*time.Minute), e.Add(30*time.Minute)
			id := uuid.Must(uuid.NewV7())
			outcome := ""
			err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
				tag, err := tx.Exec(ctx, `
WITH placed AS (
    INSERT INTO `+schema+`.cal_occupancy (event_id, version, venue_id, stage_id, exclusive, occupied)
    VALUES ($1, 1, $2, $3, false, tstzrange($4, $5, '[)'))
    ON CONFLICT DO NOTHING
    RETURNING event_id
)
INSERT INTO `+schema+`.cal_events (id, venue_id, stage_id, exclusive, title, category, status, starts_at, ends_at,
                    setup_minutes, teardown_minutes, occupied, version)
SELECT event_id, $2, $3, false, 'Bench', 'concert', 'draft', $6::timestamptz, $7::timestamptz, 30, 30,
       tstzrange($4::timestamptz, $5::timestamptz, '[)'), 1
FROM placed`, id, venue, sid, from, to, s, e)
				if err != nil {
					return err
				}
				outcome = map[bool]string{true: "201", false: "409"}[tag.RowsAffected() == 1]
				return nil
			})
			return outcome, err
		}
	}

	// The service alone: the module's whole booking path (transaction,
	// statement, 409 with the events in the way), without HTTP and the core's
	// middleware.
	svc := mod.Service()
	serviceOp := func(stage string, base time.Time, per int64) func(int64) (string, error) {
		sid := uuid.MustParse(stage)
		return func(n int64) (string, error) {
			s, e := slotStart(base, n, per)
			_, _, err := svc.CreateEvent(ctx, c.t, venue, calendar.EventInput{StageID: &sid, Title: "Bench", Category: "concert",
				StartsAt: s, EndsAt: e, SetupMinutes: 30, TeardownMinutes: 30}, nil)
			var ae *app.Error
			if errors.As(err, &ae) && ae.Code == "schedule_conflict" {
				return "409", nil
			}
			return "201", err
		}
	}

	base1 := time.Date(2040, 1, 1, 0, 0, 0, 0, time.UTC)
	base2 := time.Date(2050, 1, 1, 0, 0, 0, 0, time.UTC)
	stageC := c.newStage(t, c.venue, "Bench C")
	stageD := c.newStage(t, c.venue, "Bench D")
	stageE := c.newStage(t, c.venue, "Bench E")
	stageF := c.newStage(t, c.venue, "Bench F")

	httpRate, httpOut := run(httpOp(c.stageA, base1, perSlot))
	serviceRate, serviceOut := run(serviceOp(stageE, base1, perSlot))
	directRate, directOut := run(directOp(c.stageB, base1, perSlot))
	httpWin, httpWinOut := run(httpOp(stageC, base2, 1))
	serviceWin, serviceWinOut := run(serviceOp(stageF, base2, 1))
	directWin, directWinOut := run(directOp(stageD, base2, 1))

	t.Logf("conflicting bookings (%d requests per slot, %d clients, pool %d, %v each):", perSlot, workers, poolSize, duration)
	t.Logf("  HTTP API  : %8.0f requests/s  %v", httpRate, httpOut)
	t.Logf("  service   : %8.0f calls/s     %v", serviceRate, serviceOut)
	t.Logf("  direct SQL: %8.0f inserts/s   %v", directRate, directOut)
	t.Logf("  ratio HTTP/direct: %.2f (service/direct %.2f)", httpRate/directRate, serviceRate/directRate)
	t.Logf("bookings that all succeed (one per slot):")
	t.Logf("  HTTP API  : %8.0f requests/s  %v", httpWin, httpWinOut)
	t.Logf("  service   : %8.0f calls/s     %v", serviceWin, serviceWinOut)
	t.Logf("  direct SQL: %8.0f inserts/s   %v", directWin, directWinOut)
	t.Logf("  ratio HTTP/direct: %.2f (service/direct %.2f)", httpWin/directWin, serviceWin/directWin)
	if n := c.liveOverlaps(t); n != 0 {
		t.Fatalf("%d overlapping live pairs after the benchmark", n)
	}
}
