package ops_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"marquee/app"
	"marquee/app/apptest"
	"marquee/config"
	"marquee/modules/calendar"
	"marquee/modules/ops"
	"marquee/modules/ops/fakepos"
)

// BenchmarkFanout: N dashboard viewers (OPS_BENCH_VIEWERS, default 500)
// over two server instances on loopback, each a real SSE stream; one event
// publishes 20 updates a second for OPS_BENCH_SECONDS (default 10). Every
// update carries its publish time; each viewer checks its sequence numbers
// run without a gap. It reports p50/p99/max publish→receipt latency, lost
// updates, and heap per viewer (server and client side together: one process).
//
//	MARQUEE_TEST_REDIS_URL=redis://127.0.0.1:6383 go test ./modules/ops -run '^$' -bench Fanout -benchtime 1x
func BenchmarkFanout(b *testing.B) {
	viewers, seconds := envInt("OPS_BENCH_VIEWERS", 500), envInt("OPS_BENCH_SECONDS", 10)
	const rate = 20
	roomy := func(c *config.Config) { c.StreamsPerClient = viewers + 10 }
	mod := ops.New()
	e := apptest.Start(b, dbURL, apptest.Options{Modules: []app.Module{calendar.New(), &fakeDoor{zones: map[uuid.UUID][]app.ZoneAttendance{}}, mod}, Configure: roomy})
	other := apptest.Start(b, dbURL, apptest.Options{Modules: []app.Module{calendar.New(), &fakeDoor{zones: map[uuid.UUID][]app.ZoneAttendance{}}, ops.New()}, Configure: roomy})
	c := newChain(b, &env{Env: e, mod: mod}, "fan")
	hub := mod.Service().Hub()
	ev := uuid.MustParse(c.event)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: viewers, MaxConnsPerHost: 0}}

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	type result struct {
		lat  []time.Duration
		seqs []int64
	}
	results := make([]result, viewers)
	var ready, done sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start, err := hub.Seq(ctx, c.t, ev)
	if err != nil {
		b.Fatal(err)
	}
	total := rate * seconds
	for i := range viewers {
		srv := e
		if i%2 == 1 {
			srv = other
		}
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			req, _ := http.NewRequestWithContext(ctx, "GET", srv.Server.URL+"/api/v1/events/"+c.event+"/dashboard/stream?since="+strconv.FormatInt(start, 10), nil)
			req.Host = c.slug + ".localhost"
			req.Header.Set("Authorization", "Bearer "+c.tok)
			res, err := client.Do(req)
			if err != nil || res.StatusCode != http.StatusOK {
				ready.Done()
				b.Errorf("viewer %d: %v %v", i, err, res)
				return
			}
			defer res.Body.Close()
			sc := bufio.NewScanner(res.Body)
			signalled := false
			for sc.Scan() {
				line := sc.Text()
				if !signalled && strings.HasPrefix(line, ": connected") {
					signalled = true
					ready.Done()
				}
				data, ok := strings.CutPrefix(line, "data: ")
				if !ok {
					continue
				}
				now := time.Now()
				var m struct {
					Seq  int64 `json:"seq"`
					Data struct {
						At int64 `json:"at"`
					} `json:"data"`
				}
				if json.Unmarshal([]byte(data), &m) != nil {
					continue
				}
				results[i].seqs = append(results[i].seqs, m.Seq)
				results[i].lat = append(results[i].lat, now.Sub(time.Unix(0, m.Data.At)))
				if len(results[i].seqs) == total {
					return
				}
			}
		}()
	}
	ready.Wait()
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	subs := hub.Subscriptions()

	b.ResetTimer()
	tick := time.NewTicker(time.Second / rate)
	for n := range total {
		<-tick.C
		if _, err := hub.Publish(ctx, c.t, ev, "bench", map[string]int64{"at": time.Now().UnixNano(), "n": int64(n)}); err != nil {
			b.Fatal(err)
		}
	}
	tick.Stop()
	finished := make(chan struct{})
	go func() { done.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(15 * time.Second):
		cancel()
		<-finished
	}
	b.StopTimer()

	var all []time.Duration
	lost, gaps := 0, 0
	for _, r := range results {
		all = append(all, r.lat...)
		lost += total - len(r.seqs)
		for k := range r.seqs {
			if r.seqs[k] != start+int64(k)+1 {
				gaps++
				break
			}
		}
	}
	slices.Sort(all)
	pct := func(p float64) time.Duration {
		if len(all) == 0 {
			return 0
		}
		return all[min(len(all)-1, int(float64(len(all))*p))]
	}
	perViewer := float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(viewers) / 1024
	b.ReportMetric(float64(pct(0.50).Microseconds())/1000, "p50_ms")
	b.ReportMetric(float64(pct(0.99).Microseconds())/1000, "p99_ms")
	b.ReportMetric(float64(lost), "lost")
	b.ReportMetric(perViewer, "KiB/viewer")
	fmt.Fprintf(os.Stderr, "fan-out: %d viewers over 2 instances (Redis subscriptions on instance A: %d), %d updates at %d/s: %d deliveries, p50 %v, p99 %v, max %v, lost %d, viewers with a gap %d, heap %.1f KiB/viewer (server+client)\n",
		viewers, subs, total, rate, len(all), pct(0.50), pct(0.99), pct(1), lost, gaps, perViewer)
	if lost != 0 || gaps != 0 {
		b.Fatalf("lost %d updates, %d viewers saw a gap", lost, gaps)
	}
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// BenchmarkPOSWebhooks: OPS_BENCH_SALES sales (default 2,000), each created
// then completed, 5% redelivered and 5% out of order, sent by 32 senders as
// fast as the server takes them; reports deliveries/s and p50/p99, and
// fails unless the ledger holds exactly the sales.
//
//	MARQUEE_TEST_REDIS_URL=redis://127.0.0.1:6383 go test ./modules/ops -run '^$' -bench POSWebhooks -benchtime 1x
func BenchmarkPOSWebhooks(b *testing.B) {
	sales := envInt("OPS_BENCH_SALES", 2000)
	e := startEnv(b, nil)
	c := newChain(b, e, "posbench")
	_, pos := c.connect(b)
	var deliveries []fakepos.Delivery
	want := 0
	for i := range sales {
		p := fakepos.Payment{ID: fmt.Sprintf("P%d", i), Status: "APPROVED", Version: 1, AmountMoney: fakepos.Money{Amount: int64(500 + i%900), Currency: "EUR"}, LocationID: []string{"L-BAR", "L-MERCH"}[i%2]}
		a := pos.PaymentEvent(p)
		p.Status, p.Version = "COMPLETED", 2
		d := pos.PaymentEvent(p)
		want += 500 + i%900
		switch {
		case i%20 == 0:
			deliveries = append(deliveries, d, a) // out of order
		case i%20 == 1:
			deliveries = append(deliveries, a, d, d) // redelivered
		default:
			deliveries = append(deliveries, a, d)
		}
	}
	next := make(chan fakepos.Delivery)
	lat := make([][]time.Duration, 32)
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for w := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for d := range next {
				t0 := time.Now()
				status, body, err := pos.Send(context.Background(), d)
				lat[w] = append(lat[w], time.Since(t0))
				if err != nil || status != http.StatusOK {
					b.Errorf("deliver: %v %d %s", err, status, body)
				}
			}
		}()
	}
	for _, d := range deliveries {
		next <- d
	}
	close(next)
	wg.Wait()
	took := time.Since(start)
	b.StopTimer()
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	got := c.ledgerSum(b)
	rate := float64(len(deliveries)) / took.Seconds()
	b.ReportMetric(rate, "deliveries/s")
	b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99_ms")
	fmt.Fprintf(os.Stderr, "POS: %d sales, %d deliveries (5%% redelivered, 5%% out of order) in %v: %.0f deliveries/s, p50 %v, p99 %v; ledger %d, expected %d\n",
		sales, len(deliveries), took.Round(time.Millisecond), rate, all[len(all)/2], all[len(all)*99/100], got, want)
	if got != want {
		b.Fatalf("ledger %d, want %d", got, want)
	}
}
