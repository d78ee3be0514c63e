package bench_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"marquee/app/apptest"
	"marquee/config"
	"marquee/modules"
	"marquee/modules/inventory"
	"marquee/modules/inventory/bench"
)

// flakyProxy forwards TCP connections to the server and, when trip says so
// of the bytes a client sends, fails like a network for a moment: every open
// connection loses the answer it waits for (the server has the request and
// acts on it) and new connections are cut at once, until outage has passed.
type flakyProxy struct {
	ln     net.Listener
	target string
	trip   func(chunk []byte) bool
	outage time.Duration
	broke  chan struct{} // closed when the outage starts

	mu    sync.Mutex
	down  bool
	conns map[*proxied]bool
	once  sync.Once
}

type proxied struct {
	client, server net.Conn
	doomed         bool // guarded by the proxy's mu
}

func startProxy(t *testing.T, target string, outage time.Duration, trip func([]byte) bool) *flakyProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &flakyProxy{ln: ln, target: target, trip: trip, outage: outage, broke: make(chan struct{}), conns: map[*proxied]bool{}}
	t.Cleanup(func() { ln.Close() })
	go p.serve()
	return p
}

func (p *flakyProxy) url() string { return "http://" + p.ln.Addr().String() }

func (p *flakyProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		down := p.down
		p.mu.Unlock()
		if down {
			c.Close() // the network is out: the connection is cut at once
			continue
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		pc := &proxied{client: c, server: s}
		p.mu.Lock()
		p.conns[pc] = true
		p.mu.Unlock()
		go p.pipe(pc, c, s, true)
		go p.pipe(pc, s, c, false)
	}
}

// pipe copies one direction. A doomed connection forwards nothing more: the
// request that was on its way has reached the server, its answer is lost.
func (p *flakyProxy) pipe(pc *proxied, from, to net.Conn, fromClient bool) {
	defer func() {
		pc.client.Close()
		pc.server.Close()
		p.mu.Lock()
		delete(p.conns, pc)
		p.mu.Unlock()
	}()
	buf := make([]byte, 64<<10)
	for {
		n, err := from.Read(buf)
		if n > 0 {
			p.mu.Lock()
			doomed := pc.doomed
			p.mu.Unlock()
			if doomed {
				return
			}
			if _, werr := to.Write(buf[:n]); werr != nil {
				return
			}
			if fromClient && p.trip(buf[:n]) {
				p.breakNow()
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *flakyProxy) breakNow() {
	p.once.Do(func() {
		p.mu.Lock()
		p.down = true
		for pc := range p.conns {
			pc.doomed = true
		}
		p.mu.Unlock()
		close(p.broke)
		time.AfterFunc(p.outage, func() {
			p.mu.Lock()
			p.down = false
			p.mu.Unlock()
		})
	})
}

// webhookCounter trips on the nth complete payment webhook a client sends.
func webhookCounter(nth int) func([]byte) bool {
	var mu sync.Mutex
	seen := 0
	return func(chunk []byte) bool {
		if !bytes.Contains(chunk, []byte("POST "+inventory.PlatformWebhookPath+" ")) || !bytes.Contains(chunk, []byte("payment_intent.succeeded")) {
			return false
		}
		mu.Lock()
		defer mu.Unlock()
		seen++
		return seen == nth
	}
}

func faultEnv(t *testing.T) (*apptest.Env, bench.Options) {
	t.Helper()
	stripe := apptest.StripeMock(t)
	env := apptest.Start(t, dbURL, apptest.Options{DBMaxConns: 10, Modules: modules.All(), Configure: func(c *config.Config) {
		c.StripeAPIURL = stripe
		c.StripeSecretKey = config.DevStripeSecretKey
		c.StripeWebhookSecret = "whsec_test_bench"
	}})
	ctx, stop := context.WithCancel(context.Background())
	worker := make(chan error, 1)
	go func() { worker <- env.App.RunWorker(ctx, false) }()
	t.Cleanup(func() { stop(); <-worker })
	o := bench.Defaults()
	o.Seats, o.GA, o.Buyers = 40, 20, 150
	o.Concurrency, o.DBConns = 16, 10
	o.Arrival, o.MaxDuration, o.Phase = 500*time.Millisecond, 60*time.Second, 300*time.Millisecond
	o.AdmitPerSecond, o.MaxActive = 100, 30
	o.OutDir = t.TempDir()
	return env, o
}

// A one-second network outage in the middle of the on-sale, cutting
// requests the server had already acted on: buyers retry (the same keys, the
// same webhook) and leave the waiting room as the page does, the event still
// sells out long before the room's idle timeout (120 s) could free a slot
// pinned by a buyer who gave up, and the database check passes, with the
// answers lost in transit counted apart.
func TestOnSaleSurvivesOutage(t *testing.T) {
	env, o := faultEnv(t)
	proxy := startProxy(t, env.Server.Listener.Addr().String(), time.Second, webhookCounter(8))
	var out bytes.Buffer
	rep, err := bench.Run(context.Background(), env.App, proxy.url(), o, &out, io.Discard)
	select {
	case <-proxy.broke:
	default:
		t.Fatalf("the outage never happened\n%s", out.String())
	}
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	c := rep.Checks
	if !c.OK || c.ValidTickets != int64(o.Seats+o.GA) {
		t.Fatalf("after the outage: checks %+v, capacity %d\n%s", c, o.Seats+o.GA, out.String())
	}
	if c.AnswersLostRecovered+c.PaidAnswerLost < 1 {
		t.Fatalf("the payment cut in flight was not counted as a lost answer: %+v\n%s", c, out.String())
	}
	if c.ValidTickets != rep.TicketsSold+c.PaidAnswerLostTickets {
		t.Fatalf("tickets %d = buyers counted %d + lost answers %d does not hold\n%s", c.ValidTickets, rep.TicketsSold, c.PaidAnswerLostTickets, out.String())
	}
	transport := 0
	for _, s := range rep.Steps {
		for k, v := range s.Failures {
			if k == "transport" {
				transport += v
			}
		}
	}
	if transport == 0 || !strings.Contains(out.String(), "database check OK") || !strings.Contains(out.String(), "lost answers") {
		t.Fatalf("transport failures %d, summary:\n%s", transport, out.String())
	}
	t.Logf("outage run: sold out after %.1fs, %d transport failures, answers lost %d recovered + %d unheard",
		rep.SoldOutAfter, transport, c.AnswersLostRecovered, c.PaidAnswerLost)
}

// A run cancelled in the middle of the buying still checks the database and
// prints and writes what it measured, saying it stopped early.
func TestStoppedRunStillReports(t *testing.T) {
	env, o := faultEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	trip := webhookCounter(5)
	proxy := startProxy(t, env.Server.Listener.Addr().String(), 0, func(b []byte) bool {
		if trip(b) {
			cancel()
		}
		return false
	})
	var out bytes.Buffer
	rep, err := bench.Run(ctx, env.App, proxy.url(), o, &out, io.Discard)
	if !errors.Is(err, context.Canceled) || rep == nil {
		t.Fatalf("run: %v, report %v\n%s", err, rep != nil, out.String())
	}
	if !rep.Checks.OK || rep.Checks.ValidTickets == 0 || rep.Faults.Aborted == "" {
		t.Fatalf("checks %+v, faults %+v\n%s", rep.Checks, rep.Faults, out.String())
	}
	if !strings.Contains(out.String(), "database check OK") || !strings.Contains(out.String(), "RUN STOPPED EARLY") {
		t.Fatalf("summary:\n%s", out.String())
	}
	if st, err := os.Stat(rep.JSONPath); err != nil || st.Size() == 0 {
		t.Fatalf("report not written: %v", err)
	}
}
