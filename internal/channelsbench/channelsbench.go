// Package channelsbench races the storefront and two outside channels for
// the last tickets of one event, over HTTP against a running server, with
// the fake Ticketmaster and Eventbrite in process: the storefront's buyers
// take HTTP holds, Ticketmaster's buyers buy on its side while our poller
// loops (two at once, as two workers would), Eventbrite's buyers' orders
// arrive as webhooks. Both channels sell past their quotas on their side,
// so the last units are contested. It checks the invariants in the
// database (no quota and not the capacity passed, the channels' recorded
// orders equal their quotas' sold) and prints sales per second per
// channel, the time from a channel sale to our inventory reflecting it
// (p50/p99), and the reconciliation's deltas with their causes. A quiet
// baseline measured first on an event of its own (one sale at a time)
// gives the race's latencies as ratios.
//
// `marquee bench channels` runs it; BenchmarkChannels in the module's tests
// runs the same harness.
package channelsbench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/mattn/go-isatty"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/modules/integrations"
	"marquee/modules/integrations/fakes/eventbrite"
	"marquee/modules/integrations/fakes/ticketmaster"
	"marquee/tenants"
)

// Options size a run.
type Options struct {
	Capacity      int // tickets of the event (the last ones: nothing sold before)
	WebQuota      int
	TMQuota       int
	EBQuota       int
	WebBuyers     int // storefront buyers, one ticket each
	TMSales       int // sales on Ticketmaster's side, one ticket each
	EBSales       int // orders on Eventbrite's side, one ticket each
	BaselineSales int // quiet sales per channel before the race
	// Concurrency caps the requests the buyers and Eventbrite's deliveries
	// have in flight at once (a server sheds past its in-flight limit; an
	// answer 503 overloaded is retried after its Retry-After, as a client
	// and Eventbrite's redelivery do).
	Concurrency    int
	CatchUpTimeout time.Duration
	// Slug names the bench's chain (empty: chbench-<unix time>).
	Slug string
}

// Defaults are the race: the last 1,000 tickets, web 400 via
// holds, Ticketmaster 300 polled, Eventbrite 300 by webhook, each channel
// selling 360 on its side.
func Defaults() Options {
	return Options{Capacity: 1000, WebQuota: 400, TMQuota: 300, EBQuota: 300, WebBuyers: 500, TMSales: 360, EBSales: 360,
		BaselineSales: 10, CatchUpTimeout: 2 * time.Minute, Concurrency: 16}
}

// Channel is one channel's figures.
type Channel struct {
	Sold  int `json:"sold"` // in our books
	Quota int `json:"quota"`
	// SalesPerSec is Sold over the time from the race's start to the
	// channel's last sale committed in our books.
	SalesPerSec  float64       `json:"sales_per_second"`
	P50, P99     time.Duration `json:"-"`
	Samples      int           `json:"samples"`
	QuietP50     time.Duration `json:"-"`
	Oversold     int           `json:"oversold_units"`
	Reconcile    string        `json:"reconcile"`
	TheirSold    int           `json:"their_sold"`
	Delta        int           `json:"delta"`
	ReconcileCap string        `json:"cause"`
}

// Report is what a run measured and checked.
type Report struct {
	Elapsed    time.Duration
	WebHeld    int
	WebQuota   int
	TM, EB     Channel
	Capacity   int
	Sold, Held int
	Violations []string
}

// OK says whether every invariant held.
func (r Report) OK() bool { return len(r.Violations) == 0 }

const (
	tmKey   = "bench-tm-api-key-0000"
	ebToken = "bench-eb-token-0000"
)

type harness struct {
	sem    chan struct{}
	a      *app.App
	svc    *integrations.Service
	base   string
	slug   string
	t      tenants.Tenant
	owner  string
	client *http.Client
	tm     *ticketmaster.Server
	eb     *eventbrite.Server
	tmConn integrations.Connector
	ebConn integrations.Connector
}

// event is one event set up with both channels listed.
type event struct {
	id, tier         uuid.UUID
	tmEvent, ebEvent string
	ebClass          string
}

// Run sets up a chain and runs the race; out gets the figures, progress a
// line now and then (redrawn in place on a terminal).
func Run(ctx context.Context, a *app.App, svc *integrations.Service, base string, o Options, out, progress io.Writer) (Report, error) {
	h := &harness{sem: make(chan struct{}, max(o.Concurrency, 1)), a: a, svc: svc, base: strings.TrimSuffix(base, "/"), client: &http.Client{Timeout: 60 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 2048, MaxConnsPerHost: 0}}}
	if err := h.setup(ctx, o); err != nil {
		return Report{}, fmt.Errorf("setting up: %w", err)
	}
	defer h.tm.Close()
	defer h.eb.Close()
	fmt.Fprintf(progress, "chain %s: quiet baseline, %d sales per channel, one at a time\n", h.slug, o.BaselineSales)
	quietTM, quietEB, err := h.baseline(ctx, o)
	if err != nil {
		return Report{}, fmt.Errorf("baseline: %w", err)
	}
	main, err := h.newEvent(ctx, "race", o.Capacity, map[string]int{"web": o.WebQuota, "ticketmaster": o.TMQuota, "eventbrite": o.EBQuota})
	if err != nil {
		return Report{}, err
	}
	rep, err := h.race(ctx, main, o, progress)
	if err != nil {
		return rep, err
	}
	rep.TM.QuietP50, rep.EB.QuietP50 = pct(quietTM, .5), pct(quietEB, .5)
	if err := h.reconcile(ctx, main, &rep); err != nil {
		return rep, err
	}
	rep.print(out, o)
	return rep, nil
}

// do calls the server as the chain (X-Tenant) with the owner's token.
func (h *harness) do(ctx context.Context, method, path string, body any, want int, into any, headers ...string) error {
	var raw []byte
	if body != nil {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			return err
		}
	}
	for attempt := 0; ; attempt++ {
		err := h.once(ctx, method, path, raw, body != nil, want, into, headers...)
		var se *statusError
		if !errors.As(err, &se) || se.status != http.StatusServiceUnavailable || attempt >= 50 {
			return err
		}
		// Shed by the server: wait as it says, then again.
		select {
		case <-time.After(se.retryAfter):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (h *harness) once(ctx context.Context, method, path string, raw []byte, hasBody bool, want int, into any, headers ...string) error {
	var rd io.Reader
	if hasBody {
		rd = bytes.NewReader(raw)
	}
	h.sem <- struct{}{}
	defer func() { <-h.sem }()
	req, err := http.NewRequestWithContext(ctx, method, h.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("X-Tenant", h.slug)
	if hasBody {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	// Buyers are anonymous: their calls carry a buyer token, not the owner's.
	if h.owner != "" && req.Header.Get("X-Buyer-Token") == "" && !strings.HasPrefix(path, "/api/v1/buyer-sessions") {
		req.Header.Set("Authorization", "Bearer "+h.owner)
	}
	res, err := h.client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if want != 0 && res.StatusCode != want {
		return &statusError{method: method, path: path, status: res.StatusCode, body: string(b), retryAfter: retryAfter(res)}
	}
	if into != nil {
		return json.Unmarshal(b, into)
	}
	return nil
}

type statusError struct {
	method, path string
	status       int
	body         string
	retryAfter   time.Duration
}

// retryAfter reads a shed answer's Retry-After (seconds), bounded to
// 100 ms – 2 s so that a run keeps moving.
func retryAfter(res *http.Response) time.Duration {
	d := 100 * time.Millisecond
	if s, err := time.ParseDuration(res.Header.Get("Retry-After") + "s"); err == nil {
		d = s
	}
	return min(max(d, 100*time.Millisecond), 2*time.Second)
}

func (e *statusError) Error() string {
	return fmt.Sprintf("%s %s: %d %s", e.method, e.path, e.status, e.body)
}

func (h *harness) setup(ctx context.Context, o Options) error {
	h.slug = o.Slug
	if h.slug == "" {
		h.slug = fmt.Sprintf("chbench-%d", time.Now().Unix())
	}
	password := uuid.NewString()
	t, err := h.a.CreateTenant(ctx, h.slug, "Channel Bench Halls", "owner@"+h.slug+".test", "Bench Owner", password)
	if err != nil {
		return err
	}
	h.t = t
	var login struct{ Token string }
	if err := h.do(ctx, "POST", "/api/v1/auth/login", map[string]string{"email": "owner@" + h.slug + ".test", "password": password}, http.StatusOK, &login); err != nil {
		return err
	}
	h.owner = login.Token
	h.tm, h.eb = ticketmaster.New(tmKey), eventbrite.New(ebToken)
	// The bench's channels sell fast: the Partner quota is not what is
	// measured here.
	h.tm.SetLimits(1000, 1000000, 1000000)
	h.svc.DiscoveryPerSecond = max(h.svc.DiscoveryPerSecond, 1000)
	if err := h.do(ctx, "POST", "/api/v1/integrations/connectors", map[string]any{"provider": "ticketmaster", "name": "Ticketmaster", "api_base": h.tm.URL,
		"timezone": "UTC", "credentials": map[string]string{"api_key": tmKey}}, http.StatusCreated, &h.tmConn); err != nil {
		return err
	}
	if err := h.do(ctx, "POST", "/api/v1/integrations/connectors", map[string]any{"provider": "eventbrite", "name": "Eventbrite", "api_base": h.eb.URL,
		"account": "org1", "credentials": map[string]string{"token": ebToken}}, http.StatusCreated, &h.ebConn); err != nil {
		return err
	}
	// Eventbrite's deliveries go to the server's loopback address with
	// the chain's header; they are answered after our commit.
	hook := h.ebConn.WebhookURL
	h.eb.WebhookURL = h.base + hook[strings.Index(hook, "/api/"):]
	h.eb.Client = &http.Client{Transport: tenantHeader{slug: h.slug, rt: h.client.Transport, sem: h.sem}, Timeout: 120 * time.Second}
	return nil
}

// tenantHeader sends Eventbrite's deliveries as the chain, within the
// run's concurrency, and delivers again what the server shed (Eventbrite
// redelivers what was not answered 2xx).
type tenantHeader struct {
	slug string
	rt   http.RoundTripper
	sem  chan struct{}
}

func (th tenantHeader) RoundTrip(r *http.Request) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		c := r.Clone(r.Context())
		c.Header.Set("X-Tenant", th.slug)
		if r.GetBody != nil {
			body, err := r.GetBody()
			if err != nil {
				return nil, err
			}
			c.Body = body
		}
		th.sem <- struct{}{}
		res, err := th.rt.RoundTrip(c)
		<-th.sem
		if err != nil || res.StatusCode != http.StatusServiceUnavailable || attempt >= 50 {
			return res, err
		}
		wait := retryAfter(res)
		res.Body.Close()
		select {
		case <-time.After(wait):
		case <-r.Context().Done():
			return nil, r.Context().Err()
		}
	}
}

var eventSeq atomic.Int64

// newEvent creates an on-sale event with a GA tier, the quotas, both
// channels' events on the fakes, listings and allocations.
func (h *harness) newEvent(ctx context.Context, name string, capacity int, quotas map[string]int) (event, error) {
	var ev event
	var v struct{ ID string }
	if err := h.do(ctx, "POST", "/api/v1/venues", map[string]any{"name": "Hall " + name, "timezone": "UTC", "capacity": 200000}, http.StatusCreated, &v); err != nil {
		return ev, err
	}
	venue := v.ID
	if err := h.do(ctx, "POST", "/api/v1/venues/"+venue+"/stages", map[string]any{"name": "Main", "capacity": 200000, "type": "main"}, http.StatusCreated, &v); err != nil {
		return ev, err
	}
	start := time.Now().UTC().Truncate(time.Hour).AddDate(0, 2, int(eventSeq.Add(1)))
	if err := h.do(ctx, "POST", "/api/v1/venues/"+venue+"/events", map[string]any{"stage_id": v.ID, "title": "Channel " + name, "category": "concert",
		"status": "on_sale", "starts_at": start.Format(time.RFC3339), "ends_at": start.Add(3 * time.Hour).Format(time.RFC3339)}, http.StatusCreated, &v); err != nil {
		return ev, err
	}
	ev.id = uuid.MustParse(v.ID)
	var inv struct {
		Tiers []struct {
			ID uuid.UUID `json:"id"`
		} `json:"tiers"`
	}
	if err := h.do(ctx, "PUT", "/api/v1/events/"+v.ID+"/inventory", map[string]any{
		"zones":  []map[string]any{{"name": "Floor", "kind": "ga", "capacity": capacity}},
		"tiers":  []map[string]any{{"name": "Floor", "zone": "Floor", "price": 2500, "currency": "EUR", "max_per_order": 10}},
		"quotas": quotas, "max_ip_holds": 0, "max_buyer_holds": 5, "max_buyer_tickets": 10,
	}, http.StatusOK, &inv); err != nil {
		return ev, err
	}
	ev.tier = inv.Tiers[0].ID
	ev.tmEvent, ev.ebEvent, ev.ebClass = "G5"+name+h.slug, "77"+name+h.slug, "TC"+name
	h.tm.AddEvent(ticketmaster.Event{ID: ev.tmEvent, Name: "Channel " + name, VenueID: "KovZ1", Timezone: "UTC", Start: start, FaceValue: 25, Currency: "EUR"})
	h.eb.AddEvent(eventbrite.Event{ID: ev.ebEvent, OrgID: "org1", Name: "Channel " + name, Start: start,
		TicketClasses: []*eventbrite.TicketClass{{ID: ev.ebClass, Name: "GA", CostMinor: 2500, Currency: "EUR", SalesEnd: start}}})
	if err := h.do(ctx, "POST", "/api/v1/integrations/connectors/"+h.tmConn.ID.String()+"/listings",
		map[string]any{"external_event_id": ev.tmEvent, "event_id": ev.id, "tiers": map[string]any{"TT-" + ev.tmEvent: ev.tier}}, http.StatusCreated, nil); err != nil {
		return ev, err
	}
	if err := h.do(ctx, "POST", "/api/v1/integrations/connectors/"+h.ebConn.ID.String()+"/listings",
		map[string]any{"external_event_id": ev.ebEvent, "event_id": ev.id, "tiers": map[string]any{ev.ebClass: ev.tier}}, http.StatusCreated, nil); err != nil {
		return ev, err
	}
	for _, ch := range []string{"ticketmaster", "eventbrite"} {
		if err := h.do(ctx, "PUT", "/api/v1/integrations/events/"+v.ID+"/channels/"+ch+"/allocation", map[string]int{"quota": quotas[ch]}, http.StatusOK, nil); err != nil {
			return ev, err
		}
	}
	return ev, nil
}

// baseline sells one unit at a time on each channel of an event of its
// own: Ticketmaster's confirmation → our poll's commit, Eventbrite's order →
// its webhook answered after our commit.
func (h *harness) baseline(ctx context.Context, o Options) (tm, eb []time.Duration, err error) {
	n := o.BaselineSales
	if n <= 0 {
		return nil, nil, nil
	}
	ev, err := h.newEvent(ctx, "quiet", 2*n+2, map[string]int{"web": 0, "ticketmaster": n + 1, "eventbrite": n + 1})
	if err != nil {
		return nil, nil, err
	}
	for i := 0; i < n; i++ {
		t0 := time.Now()
		if _, ok := h.tm.Sell(ev.tmEvent, 1); !ok {
			return nil, nil, errors.New("the fake Ticketmaster refused a quiet sale")
		}
		if _, err := h.svc.Poll(ctx, h.t, h.tmConn.ID); err != nil {
			return nil, nil, err
		}
		tm = append(tm, time.Since(t0))
		t0 = time.Now()
		d, ok := h.eb.PlaceOrder(ev.ebEvent, ev.ebClass, 1)
		if !ok || d.Status != http.StatusOK {
			return nil, nil, fmt.Errorf("a quiet Eventbrite order: delivered %v, answered %d", ok, d.Status)
		}
		eb = append(eb, time.Since(t0))
	}
	return tm, eb, nil
}

func (h *harness) count(ctx context.Context, q string, args ...any) (int, error) {
	var n int
	err := h.a.Tx(ctx, h.t, func(tx *gorm.DB) error { return tx.Raw(q, args...).Row().Scan(&n) })
	return n, err
}

func (h *harness) stock(ctx context.Context, ev event) (app.ChannelStock, error) {
	var v integrations.ChannelsView
	err := h.do(ctx, "GET", "/api/v1/integrations/events/"+ev.id.String()+"/channels", nil, http.StatusOK, &v)
	return v.Stock, err
}

func quotaOf(st app.ChannelStock, channel string) app.ChannelQuota {
	for _, q := range st.Channels {
		if q.Channel == channel {
			return q
		}
	}
	return app.ChannelQuota{}
}

func (h *harness) race(ctx context.Context, ev event, o Options, progress io.Writer) (Report, error) {
	h.tm.Oversell, h.eb.Oversell = true, true
	rep := Report{WebQuota: o.WebQuota}
	tokens := make([]string, o.WebBuyers)
	for i := range tokens {
		var b struct {
			BuyerToken string `json:"buyer_token"`
		}
		if err := h.do(ctx, "POST", "/api/v1/buyer-sessions", nil, http.StatusCreated, &b); err != nil {
			return rep, err
		}
		tokens[i] = b.BuyerToken
	}
	var webHeld atomic.Int64
	var errMu sync.Mutex
	var errs []error
	fail := func(err error) {
		errMu.Lock()
		if len(errs) < 10 {
			errs = append(errs, err)
		}
		errMu.Unlock()
	}
	var wg sync.WaitGroup
	var latMu sync.Mutex
	var ebLat []time.Duration
	start := time.Now()
	for i := 0; i < o.WebBuyers; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			err := h.do(ctx, "POST", "/api/v1/events/"+ev.id.String()+"/holds", map[string]any{"tier_id": ev.tier, "quantity": 1}, http.StatusCreated, nil,
				"Idempotency-Key", uuid.NewString(), "X-Buyer-Token", tokens[i])
			var se *statusError
			switch {
			case err == nil:
				webHeld.Add(1)
			case errors.As(err, &se) && se.status == http.StatusConflict: // sold out for the web
			default:
				fail(err)
			}
		}(i)
	}
	for i := 0; i < o.TMSales; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.tm.Sell(ev.tmEvent, 1)
		}()
	}
	for i := 0; i < o.EBSales; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t0 := time.Now()
			d, ok := h.eb.PlaceOrder(ev.ebEvent, ev.ebClass, 1)
			// Eventbrite redelivers what was not answered 2xx.
			for tries := 0; ok && d.Status != http.StatusOK && tries < 5; tries++ {
				d = h.eb.Redeliver(d)
			}
			if !ok || d.Status != http.StatusOK {
				fail(fmt.Errorf("eventbrite delivery answered %d", d.Status))
				return
			}
			latMu.Lock()
			ebLat = append(ebLat, time.Since(t0))
			latMu.Unlock()
		}()
	}
	done := make(chan struct{})
	var pollWG sync.WaitGroup
	for w := 0; w < 2; w++ {
		pollWG.Add(1)
		go func() {
			defer pollWG.Done()
			for {
				select {
				case <-done:
					return
				case <-ctx.Done():
					return
				default:
				}
				if _, err := h.svc.Poll(ctx, h.t, h.tmConn.ID); err != nil {
					fail(err)
					return
				}
			}
		}()
	}
	// Progress while the buyers race and the poller catches up.
	pr := newProgress(progress)
	total := o.TMSales
	orders := func(conn uuid.UUID) int {
		n, _ := h.count(ctx, `SELECT count(*) FROM int_orders WHERE connector_id = ? AND event_id = ?`, conn, ev.id)
		return n
	}
	buyersDone := make(chan struct{})
	go func() { wg.Wait(); close(buyersDone) }()
	tick := time.NewTicker(time.Second)
	deadline := time.Time{}
	caughtUp := false
	for !caughtUp {
		select {
		case <-ctx.Done():
			close(done)
			pollWG.Wait()
			return rep, ctx.Err()
		case <-buyersDone:
			buyersDone = nil
			deadline = time.Now().Add(o.CatchUpTimeout)
		case <-tick.C:
			n, ebn := orders(h.tmConn.ID), orders(h.ebConn.ID)
			pr.draw(n+ebn+int(webHeld.Load()), total+o.EBSales+o.WebBuyers, fmt.Sprintf("web held %d, ticketmaster orders in %d, eventbrite orders in %d", webHeld.Load(), n, ebn))
			if buyersDone == nil && n >= total {
				caughtUp = true
			}
			if !deadline.IsZero() && time.Now().After(deadline) {
				close(done)
				pollWG.Wait()
				return rep, fmt.Errorf("the poller read %d of %d Ticketmaster orders within %v", n, total, o.CatchUpTimeout)
			}
		}
	}
	tick.Stop()
	close(done)
	pollWG.Wait()
	pr.finish()
	rep.Elapsed = time.Since(start)
	if len(errs) > 0 {
		return rep, errors.Join(errs...)
	}

	st, err := h.stock(ctx, ev)
	if err != nil {
		return rep, err
	}
	rep.WebHeld = int(webHeld.Load())
	rep.Capacity, rep.Sold, rep.Held = st.Capacity, st.Sold, st.Held
	rep.TM = Channel{Sold: quotaOf(st, "ticketmaster").Sold, Quota: quotaOf(st, "ticketmaster").Quota}
	rep.EB = Channel{Sold: quotaOf(st, "eventbrite").Sold, Quota: quotaOf(st, "eventbrite").Quota}
	// Sales per second per channel: its units in our books over the time
	// from the start to its last sale committed (same machine clock).
	for _, c := range []struct {
		conn uuid.UUID
		ch   *Channel
	}{{h.tmConn.ID, &rep.TM}, {h.ebConn.ID, &rep.EB}} {
		var last float64
		if err := h.a.Tx(ctx, h.t, func(tx *gorm.DB) error {
			return tx.Raw(`SELECT coalesce(extract(epoch FROM max(received_at)), 0)::float8 FROM int_orders WHERE connector_id = ? AND event_id = ? AND status = 'sold'`,
				c.conn, ev.id).Row().Scan(&last)
		}); err != nil {
			return rep, err
		}
		span := time.Duration((last - float64(start.UnixNano())/1e9) * float64(time.Second))
		if span <= 0 {
			span = rep.Elapsed
		}
		c.ch.SalesPerSec = float64(c.ch.Sold) / span.Seconds()
	}
	// Ticketmaster: from their confirmation to our commit, both stamped.
	var secs []float64
	if err := h.a.Tx(ctx, h.t, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT extract(epoch FROM received_at - their_at)::float8 FROM int_orders WHERE connector_id = ? AND listing_id IN
			(SELECT id FROM int_listings WHERE event_id = ?) AND their_at IS NOT NULL`, h.tmConn.ID, ev.id).Scan(&secs).Error
	}); err != nil {
		return rep, err
	}
	tmLat := make([]time.Duration, len(secs))
	for i, s := range secs {
		tmLat[i] = time.Duration(s * float64(time.Second))
	}
	rep.TM.P50, rep.TM.P99, rep.TM.Samples = pct(tmLat, .5), pct(tmLat, .99), len(tmLat)
	rep.EB.P50, rep.EB.P99, rep.EB.Samples = pct(ebLat, .5), pct(ebLat, .99), len(ebLat)

	// The invariants, from the database.
	for _, q := range st.Channels {
		if q.Sold+q.Held > q.Quota {
			rep.Violations = append(rep.Violations, fmt.Sprintf("%s: %d sold + %d held over its quota %d", q.Channel, q.Sold, q.Held, q.Quota))
		}
	}
	if st.Sold+st.Held > st.Capacity {
		rep.Violations = append(rep.Violations, fmt.Sprintf("%d sold + %d held over capacity %d", st.Sold, st.Held, st.Capacity))
	}
	if held := quotaOf(st, "web").Held; held != rep.WebHeld {
		rep.Violations = append(rep.Violations, fmt.Sprintf("web quota holds %d, the storefront granted %d", held, rep.WebHeld))
	}
	for _, c := range []struct {
		conn uuid.UUID
		name string
		ch   *Channel
	}{{h.tmConn.ID, "ticketmaster", &rep.TM}, {h.ebConn.ID, "eventbrite", &rep.EB}} {
		booked, err := h.count(ctx, `SELECT coalesce(sum(quantity), 0) FROM int_orders WHERE connector_id = ? AND status = 'sold' AND event_id = ?`, c.conn, ev.id)
		if err != nil {
			return rep, err
		}
		if booked != c.ch.Sold {
			rep.Violations = append(rep.Violations, fmt.Sprintf("%s: orders recorded as sold %d, quota sold %d", c.name, booked, c.ch.Sold))
		}
		if c.ch.Oversold, err = h.count(ctx, `SELECT coalesce(sum(quantity), 0) FROM int_oversells WHERE connector_id = ? AND event_id = ? AND detected_by = 'sale'`, c.conn, ev.id); err != nil {
			return rep, err
		}
	}
	if n, err := h.count(ctx, `SELECT count(*) FROM inv_counter_shards WHERE held + sold > capacity`); err != nil || n != 0 {
		rep.Violations = append(rep.Violations, fmt.Sprintf("%d counter shards over capacity (%v)", n, err))
	}
	return rep, nil
}

func (h *harness) reconcile(ctx context.Context, ev event, rep *Report) error {
	var rec integrations.EventReconciliation
	if err := h.do(ctx, "POST", "/api/v1/integrations/events/"+ev.id.String()+"/reconcile", map[string]bool{"final": false}, http.StatusOK, &rec); err != nil {
		return err
	}
	for _, r := range rec.Channels {
		ch := &rep.TM
		if r.Channel == integrations.ProviderEventbrite {
			ch = &rep.EB
		}
		if r.TheirSold != nil && r.Delta != nil {
			ch.TheirSold, ch.Delta = *r.TheirSold, *r.Delta
		}
		ch.ReconcileCap = "none"
		if r.Cause != nil {
			ch.ReconcileCap = *r.Cause
		}
		// A delta is explained when it equals the channel's recorded
		// oversells (their side sold what we did not have).
		if ch.Delta != ch.Oversold {
			rep.Violations = append(rep.Violations, fmt.Sprintf("%s: reconciliation delta %d, recorded oversells %d", r.Channel, ch.Delta, ch.Oversold))
		}
	}
	return nil
}

func (r Report) print(w io.Writer, o Options) {
	fmt.Fprintf(w, "race for the last %d tickets (web quota %d via HTTP holds, ticketmaster %d polled by two loops, eventbrite %d by webhook; their sides sold %d and %d) in %v\n",
		o.Capacity, o.WebQuota, o.TMQuota, o.EBQuota, o.TMSales, o.EBSales, r.Elapsed.Round(time.Millisecond))
	fmt.Fprintf(w, "  web          held %d of %d\n", r.WebHeld, r.WebQuota)
	for _, c := range []struct {
		name, how string
		ch        Channel
	}{{"ticketmaster", "their confirmation → our commit", r.TM}, {"eventbrite", "order → webhook answered after our commit", r.EB}} {
		fmt.Fprintf(w, "  %-12s sold %d of %d  %.1f sales/s (to its last sale in our books)  sale→inventory p50 %v p99 %v (%d samples, %s); quiet p50 %v, race p50 %.1f× quiet\n",
			c.name, c.ch.Sold, c.ch.Quota, c.ch.SalesPerSec, c.ch.P50.Round(time.Millisecond), c.ch.P99.Round(time.Millisecond), c.ch.Samples, c.how,
			c.ch.QuietP50.Round(time.Millisecond), ratio(c.ch.P50, c.ch.QuietP50))
	}
	for _, c := range []struct {
		name string
		ch   Channel
	}{{"ticketmaster", r.TM}, {"eventbrite", r.EB}} {
		fmt.Fprintf(w, "  reconcile %-12s allocated %d theirs %d ours %d delta %d (oversold units recorded %d): %s\n",
			c.name, c.ch.Quota, c.ch.TheirSold, c.ch.Sold, c.ch.Delta, c.ch.Oversold, c.ch.ReconcileCap)
	}
	fmt.Fprintf(w, "  event: %d sold + %d held of capacity %d\n", r.Sold, r.Held, r.Capacity)
	if r.OK() {
		fmt.Fprintln(w, "  check: zero oversell in our books, every channel within its quota, deltas explained by recorded oversells")
	} else {
		for _, v := range r.Violations {
			fmt.Fprintln(w, "  VIOLATION: "+v)
		}
	}
}

func ratio(a, b time.Duration) float64 {
	if b <= 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func pct(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

// progress shows a run's advance: a line redrawn in place on a terminal, a
// plain line every 5 s otherwise (a log keeps every line).
type progress struct {
	w    io.Writer
	tty  bool
	last time.Time
	t0   time.Time
}

func newProgress(w io.Writer) *progress {
	f, ok := w.(*os.File)
	return &progress{w: w, t0: time.Now(), tty: ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))}
}

func (p *progress) draw(done, total int, extra string) {
	pctDone := 0.0
	if total > 0 {
		pctDone = 100 * float64(min(done, total)) / float64(total)
	}
	elapsed := time.Since(p.t0).Round(time.Second)
	if p.tty {
		fmt.Fprintf(p.w, "\r%s %5.1f%%  %s   ", elapsed, pctDone, extra)
		return
	}
	if time.Since(p.last) < 5*time.Second {
		return
	}
	p.last = time.Now()
	fmt.Fprintf(p.w, "%s  %5.1f%%  %s\n", elapsed, pctDone, extra)
}

func (p *progress) finish() {
	if p.tty {
		fmt.Fprintln(p.w)
	}
}
