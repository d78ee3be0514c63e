// Package bench is the flash on-sale load harness behind `marquee bench
// onsale`: it drives virtual buyers over HTTP through the whole buying path
// (waiting room → hold → order → signed payment webhook) against a real
// server, checks the database for double sales and oversells afterwards, and
// measures, in the same run, the raw conditional UPDATE the hold path is
// built on, so the API's cost is reported as a ratio.
package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/modules/inventory"
	"marquee/tenants"
)

// Options size a run. Defaults are sized for a 2-core machine. In the JSON
// report durations are nanoseconds (their field names say so).
type Options struct {
	Seats            int           `json:"seats"`             // reserved seats of the event
	GA               int           `json:"ga"`                // general-admission tickets
	Buyers           int           `json:"buyers"`            // virtual buyers
	Concurrency      int           `json:"concurrency"`       // HTTP requests of the buying path (hold, order, payment) in flight at once (the "clients")
	QueueConcurrency int           `json:"queue_concurrency"` // the waiting room's requests (session, join, poll) in flight at once
	Abandon          float64       `json:"abandon"`           // share of buyers who release their hold instead of paying
	WalkAway         float64       `json:"walk_away"`         // share of buyers who leave their hold to expire (neither pay nor release)
	HoldMinutes      int           `json:"hold_minutes"`      // how long a hold lasts (1 lets walked-away holds expire within the run)
	Limits           bool          `json:"limits"`            // the chain's limits on: per-IP rates checked on every hold and order, the rule engine on every order
	ClientLeave      bool          `json:"client_leave"`      // buyers leave the waiting room themselves when done (DELETE …/queue)
	E2E              bool          `json:"e2e"`               // measure whole purchases at saturation through the API against the raw writes
	Adaptive         bool          `json:"adaptive"`          // the room adapts its rate and cap (AdmitPerSecond and MaxActive are then ceilings)
	LongPoll         bool          `json:"long_poll"`         // buyers at the front wait on the status route (?wait=) instead of polling every second
	Think            time.Duration `json:"think_ns"`          // pause between hold and order
	Arrival          time.Duration `json:"arrival_ns"`        // buyers arrive spread over this window
	MaxDuration      time.Duration `json:"max_duration_ns"`   // the buying phase stops after this, sold out or not
	AdmitPerSecond   int           `json:"admit_per_second"`  // waiting-room admission rate
	MaxActive        int           `json:"max_active"`        // waiting-room cap on buyers shopping at once
	Phase            time.Duration `json:"phase_ns"`          // length of the saturation and raw phases
	DBConns          int           `json:"db_conns"`          // the app's pool size; the raw phase gets as many
	OutDir           string        `json:"out_dir"`           // where JSON and SVG go
	// Pricing gives every tier a mandatory fee and demand pricing in
	// effect, and runs the pricing job every second during the run.
	Pricing bool `json:"pricing"`
}

// Defaults finish in well under 3 minutes on a 2-core machine.
func Defaults() Options {
	return Options{Seats: 2000, GA: 1000, Buyers: 6000, Concurrency: 64, QueueConcurrency: 64, Abandon: 0.1, HoldMinutes: 10, ClientLeave: true, LongPoll: true, Adaptive: true, E2E: true, Arrival: 5 * time.Second,
		MaxDuration: 100 * time.Second, AdmitPerSecond: 400, MaxActive: 200, Phase: 5 * time.Second, DBConns: 20, OutDir: "bench-out"}
}

// Report is everything a run measured.
type Report struct {
	Options       Options          `json:"options"`
	Tenant        string           `json:"tenant"`
	Event         string           `json:"event"`
	Wall          float64          `json:"buying_wall_seconds"`
	SoldOutAfter  float64          `json:"sold_out_after_seconds,omitempty"`
	Steps         []StepStats      `json:"steps"`
	Outcomes      map[string]int64 `json:"outcomes"`
	AdmittedPerS  float64          `json:"admitted_per_second"`
	TicketsPerS   float64          `json:"tickets_sold_per_second"`
	Capacity      int              `json:"capacity"`
	TicketsSold   int64            `json:"tickets_sold"`
	Checks        Checks           `json:"checks"`
	Fairness      Fairness         `json:"admission_order"`
	Faults        Faults           `json:"faults"`
	Expiry        ExpiryStats      `json:"expiry"`
	Room          []RoomSample     `json:"room,omitempty"` // the waiting room each second: queue, active, the controller's rate and cap
	OtherIdleP99  float64          `json:"other_tenant_idle_p99_ms"`
	OtherBusyP99  float64          `json:"other_tenant_during_onsale_p99_ms"`
	SatHoldsPerS  float64          `json:"api_holds_per_second_saturated"`
	SatHoldP50    float64          `json:"api_hold_p50_ms_saturated"`
	SatHoldP99    float64          `json:"api_hold_p99_ms_saturated"`
	RawHoldsPerS  float64          `json:"raw_conditional_updates_per_second"`
	RawP99        float64          `json:"raw_update_p99_ms"`
	Ratio         float64          `json:"api_over_raw"`
	E2E           E2E              `json:"e2e"`
	JSONPath      string           `json:"-"`
	ChartPath     string           `json:"-"`
	shedResponses int64
}

// Checks are the invariants read back from the database after the run.
type Checks struct {
	SeatsSoldTwice       int64 `json:"seats_with_two_valid_tickets"`
	SeatStateMismatch    int64 `json:"sold_seats_without_exactly_one_ticket"`
	CountersOverCapacity int64 `json:"counters_over_capacity"`
	GATicketsOverPool    int64 `json:"ga_tickets_beyond_pool"`
	PaidWithoutTickets   int64 `json:"paid_orders_without_tickets"`
	SucceededNotSettled  int64 `json:"succeeded_payments_not_paid_or_refunded"`
	ValidTickets         int64 `json:"valid_tickets"`
	// Orders left pending without a PaymentIntent after their hold ended:
	// debris of requests killed midway, which must be closed with the hold.
	PendingWithoutPayment int64 `json:"pending_orders_without_payment_after_hold"`
	// What each buyer bought, by the database, against what they were told.
	ConfirmedNotInDatabase int64 `json:"confirmed_purchases_missing"`
	TicketsNotAsBought     int64 `json:"buyers_with_other_ticket_counts"`
	PaidAnswerLost         int64 `json:"paid_orders_answer_lost"`
	PaidAnswerLostTickets  int64 `json:"paid_orders_answer_lost_tickets"`
	AnswersLostRecovered   int64 `json:"answers_lost_recovered_by_retry"`
	OK                     bool  `json:"ok"`
}

// Harness runs against one server.
type Harness struct {
	a      *app.App
	base   string
	o      Options
	client *http.Client
	waiter *http.Client // long polls: idle connections, many at once
	sem    chan struct{}
	qsem   chan struct{} // the waiting room's requests
	rec    *Recorder
	out    io.Writer
	log    io.Writer

	slug, owner, event, floorTier string
	t                             tenants.Tenant

	seatMu   sync.Mutex
	seatFree []bool // hint: what this harness believes is free
	freeLeft int
	gaLeft   atomic.Int64
	soldOut  atomic.Bool
	soldAt   atomic.Int64 // ns since start
	started  time.Time

	outcomes sync.Map // name → *atomic.Int64
	acct     accounts
	tickets  atomic.Int64
	shed     atomic.Int64
	arr      arrivals

	// maxClientHolds is the max_ip_holds of the events newEvent makes (0:
	// holds are not counted per device or address).
	maxClientHolds int
}

// Run drives a whole on-sale against the server at base (in front of a).
func Run(ctx context.Context, a *app.App, base string, o Options, out, progressOut io.Writer) (*Report, error) {
	h := newHarness(a, base, o, out, progressOut)
	if err := h.checkStripeMock(); err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "setting up: tenant, venue, event with %d reserved seats and %d GA tickets, waiting room at %d/s (cap %d)\n",
		o.Seats, o.GA, o.AdmitPerSecond, o.MaxActive)
	if err := h.setup(ctx); err != nil {
		return nil, fmt.Errorf("setup: %w", err)
	}
	if o.Pricing {
		repriceCtx, stopReprice := context.WithCancel(ctx)
		defer stopReprice()
		go h.repriceLoop(repriceCtx)
	}
	// The run's tenants are suspended when it ends (their data stays to be
	// looked at): the expiry tasks of their many holds, due long after the
	// run, are then archived instead of loading a later run.
	defer h.retire(h.slug)
	other, err := h.otherTenant(ctx)
	if err != nil {
		return nil, fmt.Errorf("setup other tenant: %w", err)
	}
	defer h.retire(other)
	idle := h.probe(ctx, other, 3*time.Second)

	rep := &Report{Options: o, Tenant: h.slug, Event: h.event, Capacity: o.Seats + o.GA, Outcomes: map[string]int64{}}
	busyRec := NewRecorder()
	probeCtx, stopProbe := context.WithCancel(ctx)
	probeDone := make(chan struct{})
	go func() { defer close(probeDone); h.probeInto(probeCtx, other, busyRec) }()

	fmt.Fprintf(out, "buying: %d virtual buyers arriving over %s, %d requests in flight at most, %.0f%% abandon\n",
		o.Buyers, o.Arrival, o.Concurrency, o.Abandon*100)
	runCtx, cancel := context.WithTimeout(ctx, o.MaxDuration)
	h.started = time.Now()
	h.rec = NewRecorder()
	var wg sync.WaitGroup
	var done atomic.Int64
	for i := range o.Buyers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer done.Add(1)
			outcome := h.buyer(runCtx, i)
			h.arr.ended(i, outcome)
			h.count(outcome)
		}()
	}
	bar := newProgress(progressOut, h.started)
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	tick := time.NewTicker(250 * time.Millisecond)
	lastSample := time.Now()
	h.sampleRoom(ctx, rep)
loop:
	for {
		select {
		case <-finished:
			break loop
		case <-tick.C:
			if time.Since(lastSample) >= time.Second {
				lastSample = time.Now()
				h.sampleRoom(ctx, rep)
			}
			bar.draw(int(h.tickets.Load()), o.Seats+o.GA, fmt.Sprintf("sold %d/%d  buyers done %d/%d  holds %d",
				h.tickets.Load(), o.Seats+o.GA, done.Load(), o.Buyers, h.rec.Count("hold")))
		}
	}
	tick.Stop()
	bar.draw(int(h.tickets.Load()), o.Seats+o.GA, fmt.Sprintf("sold %d/%d  buyers done %d/%d", h.tickets.Load(), o.Seats+o.GA, done.Load(), o.Buyers))
	bar.finish()
	cancel()
	wall := time.Since(h.started)
	stopProbe()
	<-probeDone

	rep.Wall = wall.Seconds()
	if at := h.soldAt.Load(); at > 0 {
		rep.SoldOutAfter = time.Duration(at).Seconds()
	}
	rep.Steps = h.rec.Summary(wall)
	h.outcomes.Range(func(k, v any) bool { rep.Outcomes[k.(string)] = v.(*atomic.Int64).Load(); return true })
	rep.AdmittedPerS = float64(h.rec.Count("admitted")) / wall.Seconds()
	rep.TicketsSold = h.tickets.Load()
	rep.TicketsPerS = float64(rep.TicketsSold) / wall.Seconds()
	rep.OtherIdleP99 = idle
	if s := busyRec.Summary(wall); len(s) > 0 {
		rep.OtherBusyP99 = s[0].P99ms
	}
	rep.shedResponses = h.shed.Load()

	if h.o.WalkAway > 0 {
		fmt.Fprintln(h.out, "waiting for walked-away holds to expire")
	}
	if rep.Expiry, err = h.expiries(ctx); err != nil {
		// Reported with the rest; the check and the report still run.
		rep.Faults.Aborted = "expiry lateness: " + err.Error()
	}
	return h.finish(ctx, rep)
}

func newHarness(a *app.App, base string, o Options, out, progressOut io.Writer) *Harness {
	return &Harness{a: a, base: base, o: o, out: out, log: progressOut, sem: make(chan struct{}, o.Concurrency), qsem: make(chan struct{}, max(o.QueueConcurrency, 1)), rec: NewRecorder(),
		client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConns: (o.Concurrency + o.QueueConcurrency) * 2,
			MaxIdleConnsPerHost: (o.Concurrency + o.QueueConcurrency) * 2, MaxConnsPerHost: (o.Concurrency + o.QueueConcurrency) * 2}},
		waiter: &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConns: 4096, MaxIdleConnsPerHost: 4096, MaxConnsPerHost: 8192}}}
}

func (h *Harness) retire(slug string) {
	if err := h.a.Tenants.Suspend(context.Background(), slug); err != nil {
		fmt.Fprintf(h.log, "bench tenant %s not suspended: %v\n", slug, err)
	}
}

func (h *Harness) count(outcome string) {
	v, _ := h.outcomes.LoadOrStore(outcome, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
}

// ---- HTTP

type response struct {
	status int
	body   []byte
	header http.Header
	sent   time.Time // when it left on one of the harness's connections: latencies count from here, not from the wait for one
}

func (r response) code() string {
	var p struct{ Code string }
	_ = json.Unmarshal(r.body, &p)
	return p.Code
}

// call sends one request, holding one of the Concurrency slots while it runs.
func (h *Harness) call(ctx context.Context, method, slug, path, token string, body any, headers ...string) (response, error) {
	return h.callOn(h.sem, ctx, method, slug, path, token, body, headers...)
}

// queueCall sends one of the waiting room's requests (buyer session, join,
// poll), holding one of the QueueConcurrency slots: the crowd in the queue
// is other browsers than the buyers shopping, and their requests do not
// wait in line behind each other's.
func (h *Harness) queueCall(ctx context.Context, method, path string, headers ...string) (response, error) {
	return h.callOn(h.qsem, ctx, method, h.slug, path, "", nil, headers...)
}

func (h *Harness) callOn(sem chan struct{}, ctx context.Context, method, slug, path, token string, body any, headers ...string) (response, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			return response{}, err
		}
		rd = bytes.NewReader(raw)
	}
	// Once sent, a request runs to its answer (the client's timeout bounds
	// it) even if the run's time is up meanwhile: a payment the server
	// completes is then a ticket the buyer counts, and the database check
	// compares like with like. The time limit stops new requests below.
	req, err := http.NewRequestWithContext(context.WithoutCancel(ctx), method, h.base+path, rd)
	if err != nil {
		return response{}, err
	}
	req.Host = h.a.Config.BaseDomain // no chain: the platform's own routes
	if slug != "" {
		req.Host = slug + "." + h.a.Config.BaseDomain
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	if sem != nil {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return response{}, ctx.Err()
		}
		defer func() { <-sem }()
	}
	sent := time.Now()
	res, err := h.client.Do(req)
	if err != nil {
		return response{}, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if res.StatusCode == http.StatusServiceUnavailable || res.StatusCode == http.StatusTooManyRequests {
		h.shed.Add(1)
	}
	return response{status: res.StatusCode, body: raw, header: res.Header, sent: sent}, err
}

// waitCall sends a long poll (GET path on the run's tenant) on the waiting
// connections, outside the Concurrency slots.
func (h *Harness) waitCall(ctx context.Context, path string, headers ...string) (response, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", h.base+path, nil)
	if err != nil {
		return response{}, err
	}
	req.Host = h.slug + "." + h.a.Config.BaseDomain
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	sent := time.Now()
	res, err := h.waiter.Do(req)
	if err != nil {
		return response{}, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if res.StatusCode == http.StatusServiceUnavailable || res.StatusCode == http.StatusTooManyRequests {
		h.shed.Add(1)
	}
	return response{status: res.StatusCode, body: raw, header: res.Header, sent: sent}, err
}

func (h *Harness) mustJSON(ctx context.Context, want int, out any, method, path string, body any) error {
	res, err := h.call(ctx, method, h.slug, path, h.owner, body)
	if err != nil {
		return err
	}
	if res.status != want {
		return fmt.Errorf("%s %s: %d %s", method, path, res.status, res.body)
	}
	if out != nil {
		return json.Unmarshal(res.body, out)
	}
	return nil
}

func (h *Harness) checkStripeMock() error {
	if h.a.Config.StripeAPIURL == "" {
		return errors.New("no Stripe API URL configured: run stripe-mock (deployments/local/services.sh --for-tests) and set MARQUEE_STRIPE_API_URL=http://127.0.0.1:12111")
	}
	res, err := http.Get(h.a.Config.StripeAPIURL + "/v1/balance")
	if err != nil {
		return fmt.Errorf("stripe-mock unreachable at %s: %v (start it with deployments/local/services.sh --for-tests)", h.a.Config.StripeAPIURL, err)
	}
	res.Body.Close()
	return nil
}

// ---- setup

func seatID(i int) string {
	return fmt.Sprintf("S%d-%d-%d", i/1000+1, (i%1000)/50+1, i%50+1)
}

func layout(seats int) map[string]any {
	var secs []map[string]any
	for s := 0; s*1000 < seats; s++ {
		n := min(1000, seats-s*1000)
		var rows []map[string]any
		for r := 0; r*50 < n; r++ {
			rows = append(rows, map[string]any{"label": strconv.Itoa(r + 1), "seats": min(50, n-r*50)})
		}
		secs = append(secs, map[string]any{"name": fmt.Sprintf("S%d", s+1), "zone": "Stalls", "rows": rows})
	}
	return map[string]any{"sections": secs}
}

// newEvent books an on-sale event at a fresh venue of the current tenant and
// configures its inventory.
// perBuyer caps each buyer's active holds (and tickets at four per hold).
func (h *Harness) newEvent(ctx context.Context, title string, seats, ga, day, perBuyer int) (string, string, error) {
	var v, st, ev struct{ ID string }
	if err := h.mustJSON(ctx, http.StatusCreated, &v, "POST", "/api/v1/venues", map[string]any{"name": title + " Arena", "address": "1 Bench Road",
		"timezone": "Europe/Berlin", "latitude": 52.5, "longitude": 13.4, "capacity": 1000000}); err != nil {
		return "", "", err
	}
	if err := h.mustJSON(ctx, http.StatusCreated, &st, "POST", "/api/v1/venues/"+v.ID+"/stages", map[string]any{"name": "Main", "capacity": 1000000, "type": "main"}); err != nil {
		return "", "", err
	}
	start := time.Now().UTC().Truncate(time.Hour).AddDate(0, 1, day)
	if err := h.mustJSON(ctx, http.StatusCreated, &ev, "POST", "/api/v1/venues/"+v.ID+"/events", map[string]any{"stage_id": st.ID, "title": title,
		"category": "concert", "status": "on_sale", "starts_at": start.Format(time.RFC3339), "ends_at": start.Add(3 * time.Hour).Format(time.RFC3339)}); err != nil {
		return "", "", err
	}
	zones := []map[string]any{}
	tiers := []map[string]any{}
	setup := map[string]any{"hold_minutes": max(h.o.HoldMinutes, 1), "max_ip_holds": h.maxClientHolds, "max_buyer_holds": perBuyer,
		"max_buyer_tickets": perBuyer * 4, "quotas": map[string]int{"web": seats + ga}}
	if seats > 0 {
		zones = append(zones, map[string]any{"name": "Stalls", "kind": "reserved"})
		tiers = append(tiers, map[string]any{"name": "Stalls", "zone": "Stalls", "price": 6500, "currency": "EUR", "max_per_order": 4})
		setup["layout"] = layout(seats)
	}
	if ga > 0 {
		zones = append(zones, map[string]any{"name": "Floor", "kind": "ga", "capacity": ga})
		tiers = append(tiers, map[string]any{"name": "Floor", "zone": "Floor", "price": 4500, "currency": "EUR", "max_per_order": 4})
	}
	setup["zones"], setup["tiers"] = zones, tiers
	if h.o.Pricing {
		for _, t := range tiers {
			t["fee"] = 450
		}
	}
	var inv inventory.Inventory
	if err := h.mustJSON(ctx, http.StatusOK, &inv, "PUT", "/api/v1/events/"+ev.ID+"/inventory", setup); err != nil {
		return "", "", err
	}
	if h.o.Pricing {
		if err := h.demandPricing(ctx, ev.ID, inv); err != nil {
			return "", "", err
		}
	}
	floor := ""
	for _, t := range inv.Tiers {
		if t.Name == "Floor" {
			floor = t.ID.String()
		}
	}
	return ev.ID, floor, nil
}

func (h *Harness) setup(ctx context.Context) error {
	slug := fmt.Sprintf("bench-%d", time.Now().Unix())
	password := uuid.NewString()
	t, err := h.a.CreateTenant(ctx, slug, "Bench Arenas", "owner@"+slug+".test", "Bench Owner", password)
	if err != nil {
		return err
	}
	h.t, h.slug = t, slug
	var login struct{ Token string }
	res, err := h.call(ctx, "POST", slug, "/api/v1/auth/login", "", map[string]string{"email": "owner@" + slug + ".test", "password": password})
	if err != nil || res.status != http.StatusOK {
		return fmt.Errorf("login: %v %s", err, res.body)
	}
	if err := json.Unmarshal(res.body, &login); err != nil {
		return err
	}
	h.owner = login.Token
	if h.event, h.floorTier, err = h.newEvent(ctx, "Flash On-Sale", h.o.Seats, h.o.GA, 0, 1); err != nil {
		return err
	}
	if err := h.mustJSON(ctx, http.StatusOK, nil, "PUT", "/api/v1/events/"+h.event+"/waiting-room", map[string]any{"enabled": true,
		"admit_per_second": h.o.AdmitPerSecond, "max_active": h.o.MaxActive, "idle_timeout_seconds": 120, "access_ttl_seconds": 900, "adaptive": h.o.Adaptive}); err != nil {
		return err
	}
	if h.o.Limits {
		// Every buyer arrives from loopback: the per-address rates and
		// ticket count are set out of reach so that the run measures what
		// checking them costs, not the throttling.
		if err := h.mustJSON(ctx, http.StatusOK, nil, "PUT", "/api/v1/limits", map[string]any{"enabled": true, "max_tickets_per_email": 8,
			"max_tickets_per_ip": 100000, "max_tickets_per_card": 10000, "declines_to_challenge": 2, "declines_to_block": 3, "min_checkout_seconds": 4,
			"ip_holds_per_minute": 100000, "ip_orders_per_minute": 100000}); err != nil {
			return err
		}
	}
	h.seatFree = make([]bool, h.o.Seats)
	for i := range h.seatFree {
		h.seatFree[i] = true
	}
	h.freeLeft = h.o.Seats
	h.gaLeft.Store(int64(h.o.GA))
	return nil
}

// otherTenant is a second chain whose storefront is probed during the on-sale.
func (h *Harness) otherTenant(ctx context.Context) (string, error) {
	slug := fmt.Sprintf("calm-%d", time.Now().Unix())
	if _, err := h.a.CreateTenant(ctx, slug, "Calm Halls", "owner@"+slug+".test", "Calm Owner", uuid.NewString()); err != nil {
		return "", err
	}
	return slug, nil
}

// probe measures the other tenant's catalogue p99 for d.
func (h *Harness) probe(ctx context.Context, slug string, d time.Duration) float64 {
	rec := NewRecorder()
	pctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	h.probeInto(pctx, slug, rec)
	if s := rec.Summary(d); len(s) > 0 {
		return s[0].P99ms
	}
	return 0
}

// probeInto asks the other tenant's public catalogue 20 times a second,
// outside the harness's own concurrency budget, like an unrelated visitor.
func (h *Harness) probeInto(ctx context.Context, slug string, rec *Recorder) {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			began := time.Now()
			req, _ := http.NewRequestWithContext(ctx, "GET", h.base+"/api/v1/events?status=on_sale", nil)
			req.Host = slug + "." + h.a.Config.BaseDomain
			res, err := h.client.Do(req)
			if err != nil {
				continue
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				rec.Observe("other-tenant", began)
			} else {
				rec.Fail("other-tenant", strconv.Itoa(res.StatusCode))
			}
		}
	}
}

// RoomSample is the waiting room at one moment of the run, as its state
// route reports it.
type RoomSample struct {
	At       float64 `json:"at_seconds"`
	Queued   int64   `json:"queued"`
	Active   int64   `json:"active"`
	Rate     float64 `json:"rate"`
	Cap      float64 `json:"cap"`
	Decision string  `json:"decision"`
	Requests int64   `json:"window_requests"`
	Slow     int64   `json:"window_slow"`
	Failed   int64   `json:"window_failed"`
	MeanMs   float64 `json:"window_mean_ms"`
}

// sampleRoom reads the room's state (GET …/waiting-room/state, as the
// settings page does) and notes it.
func (h *Harness) sampleRoom(ctx context.Context, rep *Report) {
	// Outside both budgets, as the probe of the other tenant: an operator's page.
	res, err := h.callOn(nil, ctx, "GET", h.slug, "/api/v1/events/"+h.event+"/waiting-room/state", h.owner, nil)
	if err != nil || res.status != http.StatusOK {
		return
	}
	var st struct {
		Queued  int64 `json:"queued"`
		Active  int64 `json:"active"`
		Control *struct {
			Rate     float64 `json:"rate"`
			Cap      float64 `json:"cap"`
			Decision string  `json:"decision"`
			Signals  struct {
				Requests int64   `json:"requests"`
				Slow     int64   `json:"slow"`
				Failed   int64   `json:"failed"`
				MeanMs   float64 `json:"mean_ms"`
			} `json:"signals"`
		} `json:"control"`
	}
	if json.Unmarshal(res.body, &st) != nil {
		return
	}
	s := RoomSample{At: time.Since(h.started).Seconds(), Queued: st.Queued, Active: st.Active,
		Rate: float64(h.o.AdmitPerSecond), Cap: float64(h.o.MaxActive), Decision: "fixed"}
	if c := st.Control; c != nil {
		s.Rate, s.Cap, s.Decision = c.Rate, c.Cap, c.Decision
		s.Requests, s.Slow, s.Failed, s.MeanMs = c.Signals.Requests, c.Signals.Slow, c.Signals.Failed, c.Signals.MeanMs
	}
	rep.Room = append(rep.Room, s)
}

// demandPricing turns demand pricing on for every tier of the event, within
// bounds around its price, and backdates the notice so prices may move
// during the run (the bench's shortcut past the 24 hours' notice).
func (h *Harness) demandPricing(ctx context.Context, eventID string, inv inventory.Inventory) error {
	for _, t := range inv.Tiers {
		face := t.PriceMinor - t.FeeMinor
		if err := h.mustJSON(ctx, http.StatusOK, nil, "PUT", "/api/v1/events/"+eventID+"/tiers/"+t.ID.String()+"/pricing", map[string]any{
			"enabled": true, "floor": face / 2, "ceiling": face * 3, "max_step": face / 10, "min_interval_seconds": 60}); err != nil {
			return err
		}
	}
	return h.a.Tx(ctx, h.t, func(tx *gorm.DB) error {
		return tx.Exec(`UPDATE inv_price_rules SET notice_from = now() - interval '48 hours', effective_from = now() - interval '24 hours'
			WHERE event_id = ?`, eventID).Error
	})
}

// repriceLoop queues the pricing job every second (the schedule runs it
// every minute), so the run holds while prices are being recomputed.
func (h *Harness) repriceLoop(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if _, err := h.a.Jobs.Enqueue(ctx, h.t, inventory.TaskReprice, nil); err != nil && ctx.Err() == nil {
				fmt.Fprintf(h.log, "reprice: %v\n", err)
			}
		}
	}
}
