package inventory_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"gorm.io/gorm"

	"marquee/tenants"
)

// TestHoldThroughput measures holds through the whole API (HTTP, tenant
// resolution, Idempotency-Key claim and settle, the hold transaction, cache
// bump and live publish) at 64 concurrent clients, next to the raw
// conditional seat UPDATE driven straight at PostgreSQL by 64 goroutines on
// the same table in the same run. Set MARQUEE_INVENTORY_BENCH=1 to run it;
// MARQUEE_INVENTORY_BENCH_SECONDS sets each phase's length (default 5).
func TestHoldThroughput(t *testing.T) {
	if os.Getenv("MARQUEE_INVENTORY_BENCH") == "" {
		t.Skip("set MARQUEE_INVENTORY_BENCH=1 to measure hold throughput")
	}
	phase := 5 * time.Second
	if v := os.Getenv("MARQUEE_INVENTORY_BENCH_SECONDS"); v != "" {
		var n int
		fmt.Sscan(v, &n)
		phase = time.Duration(n) * time.Second
	}
	const clients, apiConns = 64, 40 // apiConns: startEnv's DBMaxConns
	env, inv := startEnv(t)
	s := newShop(t, env, inv, "bench")
	setup := func(sections int, ga int) (string, string) {
		ev := s.event(t, fmt.Sprintf("Bench %d", sections))
		var secs []map[string]any
		for i := 0; i < sections; i++ {
			var rows []map[string]any
			for r := 1; r <= 20; r++ {
				rows = append(rows, map[string]any{"label": fmt.Sprint(r), "seats": 50})
			}
			secs = append(secs, map[string]any{"name": fmt.Sprintf("S%d", i), "zone": "Stalls", "rows": rows})
		}
		zones := []map[string]any{{"name": "Stalls", "kind": "reserved"}}
		tiers := []map[string]any{{"name": "Stalls", "zone": "Stalls", "price": 5000, "currency": "EUR"}}
		if ga > 0 {
			zones = append(zones, map[string]any{"name": "Floor", "kind": "ga", "capacity": ga})
			tiers = append(tiers, map[string]any{"name": "Floor", "zone": "Floor", "price": 3000, "currency": "EUR"})
		}
		cfg := s.configure(t, ev, map[string]any{"zones": zones, "tiers": tiers, "max_ip_holds": 0,
			"quotas": map[string]int{"web": sections*1000 + ga}, "layout": map[string]any{"sections": secs}})
		floor := ""
		if ga > 0 {
			floor = tierID(t, cfg, "Floor")
		}
		return ev, floor
	}
	seatID := func(i int) string { return fmt.Sprintf("S%d-%d-%d", i/1000, (i%1000)/50+1, i%50+1) }

	apiEvent, floor := setup(40, 100_000) // 40,000 seats and a GA pool of 100,000 (16 shards)
	rawEvent, _ := setup(100, 0)          // 100,000 seats for the raw UPDATE phase

	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConns: clients * 2, MaxIdleConnsPerHost: clients * 2}}
	svc := inv.Service()
	post := func(event string, body []byte) (int, error) {
		req, _ := http.NewRequest("POST", env.Server.URL+"/api/v1/events/"+event+"/holds", bytes.NewReader(body))
		req.Host = s.slug + ".localhost"
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", uuid.NewString())
		_, tok := svc.NewBuyerToken(s.t)
		req.Header.Set("X-Buyer-Token", tok)
		res, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode, nil
	}

	type result struct {
		ok, failed int64
		lat        []time.Duration
		elapsed    time.Duration
		err        string
	}
	run := func(work func(i int) (bool, error)) result {
		var next atomic.Int64
		var ok, failed atomic.Int64
		var firstErr atomic.Value
		lats := make([][]time.Duration, clients)
		deadline := time.Now().Add(phase)
		start := time.Now()
		var wg sync.WaitGroup
		for c := 0; c < clients; c++ {
			wg.Add(1)
			go func(c int) {
				defer wg.Done()
				for time.Now().Before(deadline) {
					i := int(next.Add(1) - 1)
					t0 := time.Now()
					good, err := work(i)
					if err != nil {
						failed.Add(1)
						firstErr.CompareAndSwap(nil, err.Error())
						continue
					}
					lats[c] = append(lats[c], time.Since(t0))
					if good {
						ok.Add(1)
					} else {
						failed.Add(1)
					}
				}
			}(c)
		}
		wg.Wait()
		r := result{ok: ok.Load(), failed: failed.Load(), elapsed: time.Since(start)}
		if e := firstErr.Load(); e != nil {
			r.err = e.(string)
		}
		for _, l := range lats {
			r.lat = append(r.lat, l...)
		}
		slices.Sort(r.lat)
		return r
	}
	pct := func(r result, p float64) time.Duration {
		if len(r.lat) == 0 {
			return 0
		}
		return r.lat[int(float64(len(r.lat)-1)*p)].Round(10 * time.Microsecond)
	}
	rate := func(r result) float64 { return float64(r.ok) / r.elapsed.Seconds() }

	commits := func() int64 {
		var n int64
		if err := env.App.SQL.QueryRow(`SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	c0 := commits()
	apiSeats := run(func(i int) (bool, error) {
		code, err := post(apiEvent, []byte(`{"seats":["`+seatID(i%40000)+`"]}`))
		return code == http.StatusCreated, err
	})
	time.Sleep(600 * time.Millisecond) // not synchronisation: other backends flush their statistics about every 0.5 s, unsignalled
	perHold := float64(commits()-c0) / float64(apiSeats.ok+apiSeats.failed)
	apiGA := run(func(i int) (bool, error) {
		code, err := post(apiEvent, []byte(`{"tier_id":"`+floor+`","quantity":1}`))
		return code == http.StatusCreated, err
	})

	schema, err := tenants.SchemaName(s.slug)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	// The same number of connections as the app's pool: 64 goroutines
	// share them, as the API's 64 clients share the app's. The app's idle
	// connections are closed meanwhile (PostgreSQL's connection limit).
	cfg.MaxConns = apiConns
	env.App.SQL.SetMaxIdleConns(0)
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	// The same conditional UPDATE the hold transaction runs, one seat per
	// statement, each its own transaction.
	rawSQL := `UPDATE "` + schema + `".inv_seats SET state = 'held', hold_id = $1 WHERE event_id = $2 AND id = $3 AND state = 'available'`
	raw := run(func(i int) (bool, error) {
		tag, err := pool.Exec(context.Background(), rawSQL, uuid.New(), rawEvent, seatID(i%100000))
		return err == nil && tag.RowsAffected() == 1, err
	})
	// One hot counter row against 16 sharded rows, raw.
	counterSQL := func(shards int) string {
		return `UPDATE "` + schema + `".inv_counter_shards SET held = held + 1 WHERE counter_id = (SELECT c.id FROM "` + schema +
			`".inv_counters c WHERE c.event_id = $1 AND c.kind = 'pool') AND shard = $2 AND capacity - held - sold >= 1`
	}
	// Give the pool's shards room for every raw increment (the API phase
	// took some; each shard holds only 6,250 of the 100,000).
	// Through the tenant door: the counters' triggers name the tenant's
	// tables unqualified.
	s.sql(t, func(tx *gorm.DB) error {
		if err := tx.Exec(`UPDATE inv_counter_shards SET capacity = capacity + 50000 WHERE counter_id = (SELECT id FROM inv_counters WHERE event_id = ? AND kind = 'pool')`, apiEvent).Error; err != nil {
			return err
		}
		return tx.Exec(`UPDATE inv_counters SET capacity = capacity + 800000 WHERE event_id = ? AND kind = 'pool'`, apiEvent).Error
	})
	hot := run(func(i int) (bool, error) {
		tag, err := pool.Exec(context.Background(), counterSQL(1), apiEvent, 0)
		return err == nil && tag.RowsAffected() == 1, err
	})
	sharded := run(func(i int) (bool, error) {
		tag, err := pool.Exec(context.Background(), counterSQL(16), apiEvent, i%16)
		return err == nil && tag.RowsAffected() == 1, err
	})

	line := func(name string, r result) {
		fmt.Printf("%-44s %8.0f /s   p50 %9v   p99 %9v   (%d ok, %d refused)\n", name, rate(r), pct(r, .5), pct(r, .99), r.ok, r.failed)
		if r.err != "" {
			fmt.Printf("    first error: %s\n", r.err)
		}
	}
	fmt.Printf("\nhold throughput, %d concurrent clients over %d database connections, %v per phase, GOMAXPROCS=%d\n", clients, apiConns, phase, runtimeProcs())
	line("API: POST /holds, 1 reserved seat", apiSeats)
	line("API: POST /holds, 1 GA unit (16 shards)", apiGA)
	line("raw: conditional seat UPDATE", raw)
	line("raw: GA counter, one hot row", hot)
	line("raw: GA counter, 16 shard rows", sharded)
	fmt.Printf("ratio API seat holds / raw seat UPDATEs: %.2f\n", rate(apiSeats)/rate(raw))
	fmt.Printf("database transactions per API hold: %.1f (raw: 1)\n\n", perHold)
	if apiSeats.ok == 0 || raw.ok == 0 {
		t.Fatal("a phase made no progress")
	}
}

func runtimeProcs() int { return runtime.GOMAXPROCS(0) }
