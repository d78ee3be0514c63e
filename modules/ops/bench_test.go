package ops_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"

	"marquee/app"
	"marquee/app/apptest"
	"marquee/config"
	"marquee/modules/calendar"
	"marquee/modules/ops"
	"marquee/modules/ops/opsbench"
)

// BenchmarkFanout: N dashboard viewers (OPS_BENCH_VIEWERS, default 500)
// over two server instances on loopback, one event publishing 20 updates a
// second for OPS_BENCH_SECONDS (default 10), measured twice in the same run:
// over the SSE stream, then over the WebSocket. Each viewer checks its
// sequence numbers run without a gap. It reports p50/p99/max publish→receipt
// latency, lost updates and heap per viewer for each, and WebSocket over SSE.
//
//	MARQUEE_TEST_REDIS_URL=redis://127.0.0.1:6383 go test ./modules/ops -run '^$' -bench Fanout -benchtime 1x
func BenchmarkFanout(b *testing.B) {
	viewers, seconds := envInt("OPS_BENCH_VIEWERS", 500), envInt("OPS_BENCH_SECONDS", 10)
	roomy := func(c *config.Config) { c.StreamsPerClient = viewers + 10 }
	mod := ops.New()
	e := apptest.Start(b, dbURL, apptest.Options{Modules: []app.Module{calendar.New(), &fakeDoor{zones: map[uuid.UUID][]app.ZoneAttendance{}}, mod}, Configure: roomy})
	other := apptest.Start(b, dbURL, apptest.Options{Modules: []app.Module{calendar.New(), &fakeDoor{zones: map[uuid.UUID][]app.ZoneAttendance{}}, ops.New()}, Configure: roomy})
	c := newChain(b, &env{Env: e, mod: mod}, "fan")
	hub := mod.Service().Hub()
	ev := uuid.MustParse(c.event)
	stream := opsbench.Stream{Bases: []string{e.Server.URL, other.Server.URL}, Slug: c.slug, Token: c.tok, Event: c.event,
		Publish:       func(ctx context.Context, data any) (int64, error) { return hub.Publish(ctx, c.t, ev, "bench", data) },
		Seq:           func(ctx context.Context) (int64, error) { return hub.Seq(ctx, c.t, ev) },
		Subscriptions: hub.Subscriptions}
	b.ResetTimer()
	var runs []opsbench.FanoutResult
	for _, transport := range []string{"sse", "ws"} {
		res, err := opsbench.Fanout(context.Background(), opsbench.FanoutOptions{Viewers: viewers, Seconds: seconds, Rate: 20, Transport: transport}, stream)
		if err != nil {
			b.Fatal(err)
		}
		fmt.Fprintln(os.Stderr, res)
		if res.Lost != 0 || res.Gaps != 0 {
			b.Fatalf("%s: lost %d updates, %d viewers saw a gap", transport, res.Lost, res.Gaps)
		}
		runs = append(runs, res)
	}
	b.StopTimer()
	sse, ws := runs[0], runs[1]
	fmt.Fprintf(os.Stderr, "WebSocket / SSE in the same run: p50 %.2f×, p99 %.2f×, heap per viewer %.2f×\n",
		ratio(ws.P50, sse.P50), ratio(ws.P99, sse.P99), ws.KiBPerViewer/sse.KiBPerViewer)
	b.ReportMetric(float64(sse.P99.Microseconds())/1000, "sse_p99_ms")
	b.ReportMetric(float64(ws.P99.Microseconds())/1000, "ws_p99_ms")
}

func ratio(a, b time.Duration) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
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
	e := startEnv(b, nil)
	c := newChain(b, e, "posbench")
	_, pos := c.connect(b)
	b.ResetTimer()
	res, err := opsbench.POS(context.Background(), opsbench.POSOptions{Sales: envInt("OPS_BENCH_SALES", 2000), Senders: 32}, pos,
		func(context.Context) (int64, error) { return int64(c.ledgerSum(b)), nil })
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(res.PerSecond, "deliveries/s")
	b.ReportMetric(float64(res.P99.Microseconds())/1000, "p99_ms")
	fmt.Fprintln(os.Stderr, res)
	if res.Ledger != res.WantLedger {
		b.Fatalf("ledger %d, want %d", res.Ledger, res.WantLedger)
	}
}
