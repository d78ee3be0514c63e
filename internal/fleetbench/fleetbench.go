// Package fleetbench measures the platform at fleet sizes (10, 100, 1,000
// tenants): how long creating and migrating that many tenant schemas takes,
// and what tenant resolution, identity and authorization cost a request as
// the fleet grows (it should not grow with it). `marquee bench fleet` runs
// it; its test runs a small version.
package fleetbench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"

	"github.com/mattn/go-isatty"

	"marquee/app"
	"marquee/migrations"
	"marquee/policies"
	"marquee/tenants"
)

// Options tune Run.
type Options struct {
	Sizes    []int // fleet sizes to reach and measure, ascending
	Parallel int   // tenants created at once
	Requests int   // requests per measurement
	Sample   int   // tenants the requests are spread over
	Password string
	Out      io.Writer // results
	Progress io.Writer // progress; a terminal gets a live line, anything else one line per stage
}

// Figure is one fleet size's measurements.
type Figure struct {
	Tenants    int
	Created    int           // tenants created at this size (the rest existed)
	CreateTime time.Duration // creating them, schemas migrated
	MigrateAll time.Duration // one migrate pass over every tenant
	Baseline   time.Duration // GET /healthz, in-process
	Request    time.Duration // GET /api/v1/role-assignments as an owner, in-process
	Overhead   time.Duration // Request - Baseline
	Resolve    time.Duration // registry lookup + Casbin check alone
	// FanOut is one turn of every periodic schedule for every active
	// tenant (what the scheduler enqueues when a minute turns), and
	// FannedOut the tasks it enqueued; a second turn in the same buckets
	// must enqueue none.
	FanOut    time.Duration
	FannedOut int
}

// measureFor bounds each measurement's duration.
const measureFor = 5 * time.Second

// Slug is the name of the i-th fleet tenant (from 1).
func Slug(i int) string { return fmt.Sprintf("fleet-%04d", i) }

// Run grows the fleet to each size and measures it. Tenants an earlier run
// created are reused, so a run that stopped resumes.
func Run(ctx context.Context, a *app.App, o Options) ([]Figure, error) {
	if o.Parallel < 1 {
		o.Parallel = 4
	}
	if o.Requests < 1 {
		o.Requests = 20000
	}
	if o.Sample < 1 {
		o.Sample = 50
	}
	if !slices.IsSorted(o.Sizes) {
		return nil, fmt.Errorf("fleet sizes %v must ascend: a run only grows the fleet", o.Sizes)
	}
	p := newProgress(o.Progress)
	h := a.Handler()
	var out []Figure
	for _, n := range o.Sizes {
		f := Figure{Tenants: n}
		start := time.Now()
		created, err := grow(ctx, a, n, o, p)
		if err != nil {
			return out, err
		}
		f.Created, f.CreateTime = created, time.Since(start)
		start = time.Now()
		err = a.MigrateAll(ctx, func(done, total int, r migrations.Result) {
			p.step(fmt.Sprintf("migrate %d tenants", total), done, total)
		})
		if err != nil {
			return out, err
		}
		f.MigrateAll = time.Since(start)
		p.done(fmt.Sprintf("%d tenants: created %d in %s, migrate pass over all in %s", n, f.Created, f.CreateTime.Round(time.Millisecond), f.MigrateAll.Round(time.Millisecond)))
		if err := measure(ctx, a, h, n, o, &f); err != nil {
			return out, err
		}
		if err := fanOut(ctx, a, &f); err != nil {
			return out, err
		}
		out = append(out, f)
		fmt.Fprintf(o.Out, "tenants %5d  create %-10s migrate-all %-10s  request %-8s baseline %-8s overhead %-8s  lookup+casbin %-8s  fan-out %d tasks in %s\n",
			n, f.CreateTime.Round(time.Millisecond), f.MigrateAll.Round(time.Millisecond), f.Request.Round(100*time.Nanosecond),
			f.Baseline.Round(100*time.Nanosecond), f.Overhead.Round(100*time.Nanosecond), f.Resolve.Round(10*time.Nanosecond),
			f.FannedOut, f.FanOut.Round(time.Millisecond))
	}
	return out, nil
}

// fanOutQueue is where the bench's fan-out puts its tasks: a queue no
// worker serves (task ids are unique per queue, so the real schedules'
// buckets are untouched), emptied afterwards.
const fanOutQueue = "fleetbench-fanout"

// fanOut times one turn of every periodic schedule over the fleet, checks
// it enqueued one task per schedule and active tenant, and that a second
// turn in the same buckets enqueues nothing.
func fanOut(ctx context.Context, a *app.App, f *Figure) error {
	active, err := a.Tenants.ListActive(ctx)
	if err != nil {
		return err
	}
	ins := asynq.NewInspector(a.AsynqRedis())
	defer ins.Close()
	now := time.Now()
	// A queue of its own per run: task ids are unique per queue, and
	// a run in the same buckets as the last must find none of its tasks.
	name := fmt.Sprintf("%s-%d", fanOutQueue, now.UnixNano())
	queue := a.Jobs.Queue(name)
	// No worker serves it; what it holds is dropped with it (the bench's
	// Redis database is emptied before each run anyway).
	defer ins.DeleteQueue(queue, true) //nolint:errcheck // best effort, see above
	schedules := a.Jobs.Periodics()
	turn := func() (int, error) {
		total := 0
		for _, p := range schedules {
			n, err := a.Jobs.FanOut(ctx, p.Type, name, p.Bucket, now)
			if err != nil {
				return total, err
			}
			total += n
		}
		return total, nil
	}
	start := time.Now()
	if f.FannedOut, err = turn(); err != nil {
		return err
	}
	f.FanOut = time.Since(start)
	if want := len(active) * len(schedules); f.FannedOut != want {
		return fmt.Errorf("fan-out enqueued %d tasks, want %d (%d schedules × %d active tenants)", f.FannedOut, want, len(schedules), len(active))
	}
	again, err := turn()
	if err != nil {
		return err
	}
	if again != 0 {
		return fmt.Errorf("a second fan-out in the same buckets enqueued %d duplicate tasks", again)
	}
	return nil
}

// grow creates fleet tenants 1..n that do not exist yet, o.Parallel at a time.
func grow(ctx context.Context, a *app.App, n int, o Options, p *progress) (int, error) {
	next := make(chan int)
	var (
		created, done atomic.Int64
		mu            sync.Mutex
		errs          []error
		wg            sync.WaitGroup
	)
	for range o.Parallel {
		wg.Go(func() {
			for i := range next {
				slug := Slug(i)
				_, err := a.CreateTenant(ctx, slug, "Fleet "+slug, "owner@"+slug+".test", "Owner", o.Password)
				switch {
				case errors.Is(err, tenants.ErrExists):
				case err != nil:
					mu.Lock()
					errs = append(errs, fmt.Errorf("%s: %w", slug, err))
					mu.Unlock()
				default:
					created.Add(1)
				}
				p.step(fmt.Sprintf("create up to %d tenants", n), int(done.Add(1)), n)
			}
		})
	}
	for i := 1; i <= n && ctx.Err() == nil; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	if ctx.Err() != nil {
		errs = append(errs, ctx.Err())
	}
	return int(created.Load()), errors.Join(errs...)
}

// measure times requests spread over a sample of the fleet's tenants, each
// signed in as its owner, against the same process's /healthz.
func measure(ctx context.Context, a *app.App, h http.Handler, n int, o Options, f *Figure) error {
	rng := rand.New(rand.NewPCG(uint64(n), 7))
	picks := rng.Perm(n)[:min(o.Sample, n)]
	type client struct {
		host, token string
		t           tenants.Tenant
	}
	clients := make([]client, 0, len(picks))
	for _, i := range picks {
		slug := Slug(i + 1)
		t, err := a.Tenants.Active(ctx, slug)
		if err != nil {
			return err
		}
		tok, err := login(h, a.Config.BaseDomain, slug, o.Password)
		if err != nil {
			return err
		}
		clients = append(clients, client{host: slug + "." + a.Config.BaseDomain, token: tok, t: t})
	}
	timeIt := func(path string, withTenant bool) (time.Duration, error) {
		reqs := make([]*http.Request, len(clients))
		for i, c := range clients {
			r := httptest.NewRequest(http.MethodGet, path, nil).WithContext(ctx)
			r.Host = a.Config.BaseDomain
			if withTenant {
				r.Host = c.host
				r.Header.Set("Authorization", "Bearer "+c.token)
			}
			reqs[i] = r
		}
		// run sends up to count requests, stopping early past measureFor
		// (a slow path at a large fleet would otherwise take hours), and
		// says how many it sent.
		run := func(count int) (int, error) {
			start := time.Now()
			for i := range count {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, reqs[i%len(reqs)])
				if w.Code != http.StatusOK {
					return i, fmt.Errorf("GET %s: %d %s", path, w.Code, w.Body.String())
				}
				if i%64 == 63 && time.Since(start) > measureFor {
					return i + 1, nil
				}
			}
			return count, nil
		}
		if _, err := run(len(reqs) * 4); err != nil { // caches warm
			return 0, err
		}
		start := time.Now()
		sent, err := run(o.Requests)
		if err != nil {
			return 0, err
		}
		return time.Since(start) / time.Duration(sent), nil
	}
	var err error
	if f.Baseline, err = timeIt("/healthz", false); err != nil {
		return err
	}
	if f.Request, err = timeIt("/api/v1/role-assignments", true); err != nil {
		return err
	}
	f.Overhead = max(f.Request-f.Baseline, 0)
	// The two lookups alone: the cached registry and the cached enforcer.
	start := time.Now()
	sent := 0
	for i := range o.Requests {
		if i%64 == 63 && time.Since(start) > measureFor {
			break
		}
		sent++
		c := clients[i%len(clients)]
		t, err := a.Tenants.Active(ctx, c.t.Slug)
		if err != nil {
			return err
		}
		if _, err := a.Enforcer.Allowed(policies.RoleOwner, policies.ChainDomain(t.Slug), "role_assignments", policies.Read); err != nil {
			return err
		}
	}
	f.Resolve = time.Since(start) / time.Duration(sent)
	return nil
}

func login(h http.Handler, base, slug, password string) (string, error) {
	body := fmt.Sprintf(`{"email":"owner@%s.test","password":%q}`, slug, password)
	r := httptest.NewRequest(http.MethodPost, "/api/v1/auth/login", strings.NewReader(body))
	r.Host = slug + "." + base
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusOK {
		return "", fmt.Errorf("login to %s: %d %s", slug, w.Code, w.Body.String())
	}
	var out struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil || out.Token == "" {
		return "", fmt.Errorf("login to %s: no token (%v)", slug, err)
	}
	return out.Token, nil
}

// progress writes a live line on a terminal and, elsewhere, only the line
// that ends each stage (logs of CI and pipes stay short).
type progress struct {
	w    io.Writer
	tty  bool
	mu   sync.Mutex
	last time.Time
}

func newProgress(w io.Writer) *progress {
	if w == nil {
		w = io.Discard
	}
	f, ok := w.(*os.File)
	return &progress{w: w, tty: ok && isatty.IsTerminal(f.Fd())}
}

func (p *progress) step(what string, done, total int) {
	if !p.tty {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if done < total && time.Since(p.last) < 100*time.Millisecond {
		return
	}
	p.last = time.Now()
	fmt.Fprintf(p.w, "\r\033[K%s: %d/%d", what, done, total)
}

func (p *progress) done(line string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty {
		fmt.Fprint(p.w, "\r\033[K")
	}
	fmt.Fprintln(p.w, line)
}
