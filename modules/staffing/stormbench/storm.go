// Package stormbench is the sign-up storm: many staff members open their
// schedule at once and sign up for the same few hundred shifts through the
// HTTP API, then the same attempts run the same conditional insert directly
// against PostgreSQL; it prints assignments per second of both, their
// ratio, latencies, and a database check (no shift over-filled, nobody on
// two overlapping shifts). `marquee bench staffing` and the staffing
// package's BenchmarkSignupStorm both run it.
package stormbench

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/mattn/go-isatty"
	"golang.org/x/crypto/bcrypt"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/modules/staffing"
	"marquee/policies"
	"marquee/tenants"
)

// Options shape a storm.
type Options struct {
	People  int // staff members signing up at once
	Shifts  int // shifts of each phase (the API's and the direct one's)
	Places  int // places per shift
	Tries   int // shifts each person tries until one takes them
	DBConns int // the server's database connections (`marquee bench staffing` only)
}

// Defaults are the storm: 2,000 staff and 500 shifts.
func Defaults() Options {
	return Options{People: 2000, Shifts: 500, Places: 4, Tries: 3, DBConns: 20}
}

// Report is what a storm measured.
type Report struct {
	Slug                       string
	Opened, OpenFailed         int
	OpenWall, OpenP50, OpenP99 time.Duration

	APIPlaced, APIRefused, APIOther int
	APIWall, APIP50, APIP99         time.Duration
	APIRate                         float64
	Others                          map[string]int

	DirectPlaced, DirectRefused      int
	DirectWall, DirectP50, DirectP99 time.Duration
	DirectRate                       float64

	Ratio                   float64
	Overfilled, Overlapping int
	LoadStart, LoadEnd      string
}

// OK is the database check, and every API answer understood.
func (r Report) OK() bool { return r.Overfilled == 0 && r.Overlapping == 0 && r.APIOther == 0 }

// fixture is the storm's chain: one venue and event, an open bar role,
// two sets of shifts on two published days, and the people with a session
// each.
type fixture struct {
	t                    tenants.Tenant
	slug, owner          string
	apiShifts, sqlShifts []uuid.UUID
	staff                []uuid.UUID
	tokens               []string
}

// Run creates a chain on the server at base (a is that server's App and svc
// its staffing service, or ones over the same database and Redis), storms
// it and prints each figure to out; progress goes to progress only when it
// is a terminal.
func Run(ctx context.Context, a *app.App, svc *staffing.Service, base string, o Options, out, progress io.Writer) (Report, error) {
	if o.People < 1 || o.Shifts < 10 || o.Places < 1 || o.Tries < 1 {
		return Report{}, errors.New("stormbench: want at least 1 person, 10 shifts, 1 place and 1 try")
	}
	pr := newProgress(progress)
	cl := &client{base: base, http: &http.Client{Timeout: 120 * time.Second,
		// Each person keeps the connection their schedule was read on, as a
		// browser does.
		Transport: &http.Transport{MaxIdleConns: o.People + 16, MaxIdleConnsPerHost: o.People + 16, IdleConnTimeout: 5 * time.Minute}}}
	defer cl.http.CloseIdleConnections()
	f, err := setup(ctx, a, cl, o, pr)
	if err != nil {
		return Report{}, err
	}
	cl.slug = f.slug
	rep := Report{Slug: f.slug, LoadStart: loadAvg()}
	fmt.Fprintf(out, "bench staffing: chain %s at %s; %d staff, %d shifts × %d places per phase, up to %d tries each; load average %s\n",
		f.slug, base, o.People, o.Shifts, o.Places, o.Tries, rep.LoadStart)

	// Everyone opens their schedule at once.
	var opens []time.Duration
	var mu sync.Mutex
	var failed atomic.Int64
	rep.OpenWall = wave(o.People, func(i int) {
		t := time.Now()
		status, _, err := cl.do(ctx, http.MethodGet, "/api/v1/staffing/me", f.tokens[i])
		if err != nil || status != http.StatusOK {
			failed.Add(1) // the person signs up all the same
			return
		}
		mu.Lock()
		opens = append(opens, time.Since(t))
		mu.Unlock()
	}, pr, "schedules opened")
	rep.Opened, rep.OpenFailed = len(opens), int(failed.Load())
	rep.OpenP50, rep.OpenP99 = percentiles(opens)
	fmt.Fprintf(out, "schedules opened at once: %d read in %v (p50 %v, p99 %v), %d failed\n",
		rep.Opened, rep.OpenWall.Round(time.Millisecond), rep.OpenP50.Round(time.Millisecond), rep.OpenP99.Round(time.Millisecond), rep.OpenFailed)

	// Through the API: everyone signs up at once, trying random shifts of
	// the day until one takes them.
	var apiLat []time.Duration
	var placed, refused atomic.Int64
	others := map[string]int{}
	rep.APIWall = wave(o.People, func(i int) {
		for range o.Tries {
			shift := f.apiShifts[mrand.IntN(len(f.apiShifts))]
			t := time.Now()
			status, code, err := cl.do(ctx, http.MethodPost, "/api/v1/staffing/me/shifts/"+shift.String()+"/signup", f.tokens[i])
			d := time.Since(t)
			mu.Lock()
			apiLat = append(apiLat, d)
			mu.Unlock()
			switch {
			case err == nil && status == http.StatusCreated:
				placed.Add(1)
				return
			case err == nil && status == http.StatusConflict:
				refused.Add(1)
			default:
				what := fmt.Sprintf("HTTP %d %s", status, code)
				if err != nil {
					what = err.Error()
				}
				mu.Lock()
				others[what]++
				mu.Unlock()
			}
		}
	}, pr, "API sign-ups")
	rep.APIPlaced, rep.APIRefused, rep.Others = int(placed.Load()), int(refused.Load()), others
	for _, n := range others {
		rep.APIOther += n
	}
	rep.APIRate = float64(rep.APIPlaced) / rep.APIWall.Seconds()
	rep.APIP50, rep.APIP99 = percentiles(apiLat)

	// Directly: the same people, the same tries on the second set of
	// shifts, the person's row lock and the same statement in a transaction
	// through the tenant door (staffing.Service.PlaceDirect).
	var sqlLat []time.Duration
	placed.Store(0)
	refused.Store(0)
	var sqlErr error
	var errOnce sync.Once
	rep.DirectWall = wave(o.People, func(i int) {
		for range o.Tries {
			shift := f.sqlShifts[mrand.IntN(len(f.sqlShifts))]
			t := time.Now()
			ok, err := svc.PlaceDirect(ctx, f.t, shift, f.staff[i])
			d := time.Since(t)
			mu.Lock()
			sqlLat = append(sqlLat, d)
			mu.Unlock()
			if err != nil {
				errOnce.Do(func() { sqlErr = err })
				return
			}
			if ok {
				placed.Add(1)
				return
			}
			refused.Add(1)
		}
	}, pr, "direct sign-ups")
	if sqlErr != nil {
		return rep, fmt.Errorf("direct phase: %w", sqlErr)
	}
	rep.DirectPlaced, rep.DirectRefused = int(placed.Load()), int(refused.Load())
	rep.DirectRate = float64(rep.DirectPlaced) / rep.DirectWall.Seconds()
	rep.DirectP50, rep.DirectP99 = percentiles(sqlLat)
	rep.Ratio = rep.APIRate / rep.DirectRate

	if rep.Overfilled, rep.Overlapping, err = check(ctx, a, f.t); err != nil {
		return rep, err
	}
	rep.LoadEnd = loadAvg()
	fmt.Fprintf(out, "API:    %d placed, %d refused (full/overlap), %d other answers, in %v → %.0f assignments/s; sign-up p50 %v, p99 %v\n",
		rep.APIPlaced, rep.APIRefused, rep.APIOther, rep.APIWall.Round(time.Millisecond), rep.APIRate, rep.APIP50.Round(time.Millisecond), rep.APIP99.Round(time.Millisecond))
	for what, n := range others {
		fmt.Fprintf(out, "        other answer ×%d: %s\n", n, what)
	}
	fmt.Fprintf(out, "direct: %d placed, %d refused, in %v → %.0f assignments/s; attempt p50 %v, p99 %v\n",
		rep.DirectPlaced, rep.DirectRefused, rep.DirectWall.Round(time.Millisecond), rep.DirectRate, rep.DirectP50.Round(time.Millisecond), rep.DirectP99.Round(time.Millisecond))
	verdict := "ok"
	if !rep.OK() {
		verdict = "FAILED"
	}
	fmt.Fprintf(out, "ratio API/direct: %.2f (goal ≥ 0.5)\n", rep.Ratio)
	fmt.Fprintf(out, "database check: over-filled shifts %d, overlapping assignments %d: %s; load average at the end %s\n",
		rep.Overfilled, rep.Overlapping, verdict, rep.LoadEnd)
	return rep, nil
}

// wave starts fn for every person at the same instant and answers the time
// until the last one returned.
func wave(n int, fn func(i int), pr *progress, what string) time.Duration {
	var wg sync.WaitGroup
	var done atomic.Int64
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			fn(i)
			done.Add(1)
		}()
	}
	stop := pr.every(func() string { return fmt.Sprintf("%s: %d of %d", what, done.Load(), n) })
	t := time.Now()
	close(start)
	wg.Wait()
	d := time.Since(t)
	stop()
	return d
}

// check counts over-filled shifts (filled past places, or a counter that is
// not the places held) and pairs of one person's live assignments that
// overlap, over the whole chain.
func check(ctx context.Context, a *app.App, t tenants.Tenant) (overfilled, overlapping int, err error) {
	err = a.TxWith(ctx, t, tenants.TxOptions{ReadOnly: true}, func(tx *gorm.DB) error {
		if err := tx.Raw(`SELECT count(*) FROM stf_shifts s WHERE s.filled > s.places
			OR s.filled <> (SELECT count(*) FROM stf_assignments a WHERE a.shift_id = s.id AND a.status IN ('assigned', 'confirmed'))`).Row().Scan(&overfilled); err != nil {
			return err
		}
		return tx.Raw(`SELECT count(*) FROM stf_assignments a JOIN stf_assignments o ON o.staff_id = a.staff_id AND o.id < a.id AND o.during && a.during
			WHERE a.status IN ('requested', 'assigned', 'confirmed') AND o.status IN ('requested', 'assigned', 'confirmed')`).Row().Scan(&overlapping)
	})
	return overfilled, overlapping, err
}

// setup builds the chain: the owner creates venue, event and role through
// the API; shifts, staff and users are written in bulk (the fixture, not
// the subject), then both days are published and everyone gets a session.
func setup(ctx context.Context, a *app.App, cl *client, o Options, pr *progress) (fixture, error) {
	var f fixture
	f.slug = fmt.Sprintf("storm-%d", time.Now().UnixNano()%1e9)
	password := randomHex(16)
	t, err := a.CreateTenant(ctx, f.slug, "Staffing Storm", "owner@"+f.slug+".test", "Storm Owner", password)
	if err != nil {
		return f, err
	}
	f.t, cl.slug = t, f.slug
	var login struct{ Token string }
	if err := cl.json(ctx, http.MethodPost, "/api/v1/auth/login", "", map[string]string{"email": "owner@" + f.slug + ".test", "password": password}, &login); err != nil {
		return f, err
	}
	f.owner = login.Token
	const zone = "America/New_York"
	loc, err := app.Timezone(zone)
	if err != nil {
		return f, err
	}
	var venue, stage, event, role struct{ ID string }
	if err := cl.json(ctx, http.MethodPost, "/api/v1/venues", f.owner, map[string]any{"name": "Storm Hall", "timezone": zone, "capacity": 5000}, &venue); err != nil {
		return f, err
	}
	if err := cl.json(ctx, http.MethodPost, "/api/v1/venues/"+venue.ID+"/stages", f.owner, map[string]any{"name": "Main", "capacity": 5000, "type": "main"}, &stage); err != nil {
		return f, err
	}
	// The event is a month out; the shifts are on its day and the next.
	d := time.Now().In(loc).AddDate(0, 1, 0)
	eventAt := time.Date(d.Year(), d.Month(), d.Day(), 20, 0, 0, 0, loc)
	if err := cl.json(ctx, http.MethodPost, "/api/v1/venues/"+venue.ID+"/events", f.owner, map[string]any{"stage_id": stage.ID, "title": "Storm night",
		"category": "concert", "status": "on_sale", "starts_at": eventAt.UTC().Format(time.RFC3339), "ends_at": eventAt.Add(3 * time.Hour).UTC().Format(time.RFC3339)}, &event); err != nil {
		return f, err
	}
	if err := cl.json(ctx, http.MethodPost, "/api/v1/staffing/roles", f.owner, map[string]any{"key": "bar", "name": "Bar", "signup": "open"}, &role); err != nil {
		return f, err
	}
	apiDay := time.Date(eventAt.Year(), eventAt.Month(), eventAt.Day(), 8, 0, 0, 0, loc)
	sqlDay := apiDay.AddDate(0, 0, 1)
	if f.apiShifts, err = shifts(ctx, a, t, event.ID, venue.ID, role.ID, zone, apiDay, o); err != nil {
		return f, err
	}
	if f.sqlShifts, err = shifts(ctx, a, t, event.ID, venue.ID, role.ID, zone, sqlDay, o); err != nil {
		return f, err
	}
	for _, day := range []time.Time{apiDay, sqlDay} {
		if err := cl.json(ctx, http.MethodPost, "/api/v1/venues/"+venue.ID+"/staffing/days/"+day.Format(time.DateOnly)+"/publish", f.owner, nil, nil); err != nil {
			return f, err
		}
	}
	if err := people(ctx, a, &f, role.ID, o.People, pr); err != nil {
		return f, err
	}
	return f, nil
}

// shifts adds n shifts of the role on the day from 14:00 local (n/10 per
// hour slot, two hours long, so neighbouring slots overlap and nobody can
// hold both) and answers their ids.
func shifts(ctx context.Context, a *app.App, t tenants.Tenant, event, venue, role, zone string, day time.Time, o Options) ([]uuid.UUID, error) {
	from := time.Date(day.Year(), day.Month(), day.Day(), 14, 0, 0, 0, day.Location())
	var ids []uuid.UUID
	err := a.Tx(ctx, t, func(tx *gorm.DB) error {
		return tx.Raw(`INSERT INTO stf_shifts (id, event_id, venue_id, timezone, day, role_id, during, places)
			SELECT gen_random_uuid(), ?, ?, ?, ?::date, ?,
			       tstzrange(?::timestamptz + (g % 10) * interval '1 hour', ?::timestamptz + (g % 10) * interval '1 hour' + interval '2 hours', '[)'), ?
			FROM generate_series(0, ? - 1) g RETURNING id`,
			event, venue, zone, day.Format(time.DateOnly), role, from.UTC(), from.UTC(), o.Places, o.Shifts).Scan(&ids).Error
	})
	return ids, err
}

// people adds n staff members who work the role, each a user of the chain
// with the staff_member role and a session of their own. The users share
// one password hash of a password nobody knows: they sign in by session.
func people(ctx context.Context, a *app.App, f *fixture, role string, n int, pr *progress) error {
	hash, err := bcrypt.GenerateFromPassword([]byte(randomHex(16)), bcrypt.MinCost)
	if err != nil {
		return err
	}
	users := make([]uuid.UUID, n)
	f.staff, f.tokens = make([]uuid.UUID, n), make([]string, n)
	for i := range n {
		users[i], f.staff[i] = uuid.Must(uuid.NewV7()), uuid.Must(uuid.NewV7())
	}
	err = a.Tx(ctx, f.t, func(tx *gorm.DB) error {
		if err := tx.Exec(`INSERT INTO users (id, email, name, password_hash)
			SELECT u, format('p%s@%s.test', lpad(i::text, 5, '0'), ?::text), format('P%s', lpad(i::text, 5, '0')), ?
			FROM unnest(?::uuid[]) WITH ORDINALITY AS x(u, i)`, f.slug, string(hash), uuidArray(users)).Error; err != nil {
			return err
		}
		if err := tx.Exec(`INSERT INTO stf_staff (id, user_id, name, email)
			SELECT s, u, format('P%s', lpad(i::text, 5, '0')), format('p%s@%s.test', lpad(i::text, 5, '0'), ?::text)
			FROM unnest(?::uuid[], ?::uuid[]) WITH ORDINALITY AS x(s, u, i)`, f.slug, uuidArray(f.staff), uuidArray(users)).Error; err != nil {
			return err
		}
		return tx.Exec(`INSERT INTO stf_staff_roles (staff_id, role_id) SELECT s, ?::uuid FROM unnest(?::uuid[]) s`, role, uuidArray(f.staff)).Error
	})
	if err != nil {
		return fmt.Errorf("staff: %w", err)
	}
	var done atomic.Int64
	stop := pr.every(func() string { return fmt.Sprintf("staff signed in: %d of %d", done.Load(), n) })
	defer stop()
	var wg sync.WaitGroup
	var first error
	var once sync.Once
	work := make(chan int)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				err := a.Enforcer.Assign(f.slug, policies.Assignment{UserID: users[i].String(), Role: policies.RoleStaffMember})
				if err == nil {
					tid := f.t.ID
					f.tokens[i], _, err = a.CreateSession(ctx, app.KindUser, &tid, users[i], nil, a.Config.SessionTTL)
				}
				if err != nil {
					once.Do(func() { first = err })
				}
				done.Add(1)
			}
		}()
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	return first
}

// client speaks to the server as the chain (X-Tenant).
type client struct {
	base, slug string
	http       *http.Client
}

// do sends a request and answers its status and problem code. A request
// the server shed (503 or 429 with Retry-After) is sent again after the
// wait it names: it was never served.
func (c *client) do(ctx context.Context, method, path, token string) (int, string, error) {
	for {
		status, body, header, err := c.send(ctx, method, path, token, nil)
		if err != nil {
			return 0, "", err
		}
		if status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests {
			if secs, err := strconv.Atoi(header.Get("Retry-After")); err == nil {
				select {
				case <-ctx.Done():
					return 0, "", ctx.Err()
				case <-time.After(time.Duration(secs) * time.Second):
				}
				continue
			}
		}
		var p struct{ Code string }
		if status >= 400 {
			_ = json.Unmarshal(body, &p)
		}
		return status, p.Code, nil
	}
}

// json sends a set-up request that must succeed, decoding the answer.
func (c *client) json(ctx context.Context, method, path, token string, body, into any) error {
	status, raw, _, err := c.send(ctx, method, path, token, body)
	if err != nil {
		return err
	}
	if status/100 != 2 {
		return fmt.Errorf("%s %s: HTTP %d %s", method, path, status, raw)
	}
	if into != nil {
		return json.Unmarshal(raw, into)
	}
	return nil
}

func (c *client) send(ctx context.Context, method, path, token string, body any) (int, []byte, http.Header, error) {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return 0, nil, nil, err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("X-Tenant", c.slug)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := c.http.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	return res.StatusCode, raw, res.Header, err
}

func percentiles(ds []time.Duration) (p50, p99 time.Duration) {
	if len(ds) == 0 {
		return 0, 0
	}
	slices.Sort(ds)
	return ds[len(ds)/2], ds[min(len(ds)-1, len(ds)*99/100)]
}

func uuidArray(ids []uuid.UUID) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = id.String()
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func loadAvg() string {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(raw))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// progress redraws one line on a terminal; anywhere else it says nothing
// (a log keeps the figures, not the countdown).
type progress struct{ w io.Writer }

func newProgress(w io.Writer) *progress {
	if f, ok := w.(*os.File); ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd())) {
		return &progress{w: w}
	}
	return &progress{}
}

// every draws line() five times a second until the answered stop is called.
func (p *progress) every(line func() string) (stop func()) {
	if p.w == nil {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				fmt.Fprintf(p.w, "\r%s\033[K\n", line())
				return
			case <-tick.C:
				fmt.Fprintf(p.w, "\r%s\033[K", line())
			}
		}
	}()
	return func() { close(done); <-finished }
}
