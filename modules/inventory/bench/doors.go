package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/modules/inventory"
	"marquee/policies"
	"marquee/tenants"
)

// `marquee bench doors`: a night at the door. Tickets are sold through the
// real buying path (orders of 100 on three GA zones), then Scanners
// concurrent scanners, signed in as the venue's door staff, scan every
// ticket over HTTP: each ticket enters; a share of holders goes out and
// comes back in; a share is scanned twice by a second device (answered
// already_admitted). In the same run the raw baseline drives the very
// statement a scan runs straight through the tenant door (one pgx
// transaction each, no HTTP, no verification) on a second event's
// tickets, and the database is checked: nobody admitted twice without an
// exit between, the per-ticket fold equal to the log, and per zone inside =
// entries - exits.

// DoorsOptions size a door run.
type DoorsOptions struct {
	Tickets    int           `json:"tickets"`     // tickets of the night
	Scanners   int           `json:"scanners"`    // scanning devices at once
	ExitShare  float64       `json:"exit_share"`  // holders who go out and back in
	DupShare   float64       `json:"dup_share"`   // tickets scanned again by a second device
	RawTickets int           `json:"raw_tickets"` // tickets of the raw baseline's event (0: min(Tickets, 10,000))
	Phase      time.Duration `json:"phase_ns"`    // the raw phase stops after this if its tickets last
	DBConns    int           `json:"db_conns"`
	Sellers    int           `json:"sellers"` // orders bought at once while setting up
	// Rate paces arrivals (tickets per second over all scanners); 0 scans
	// as fast as the server answers (saturation). A paced night measures
	// latency at a door's real load rather than at the server's limit.
	Rate int `json:"rate"`
	// Arrivals runs the stadium-night model instead: the doors open Open
	// (real time) before the show, LateShare of the holders arrive in its
	// last LateWindow, the rest evenly before; the night is compressed into
	// Run. ExitShare of the holders go out some time after they came in and
	// come back later in the night; DupShare are scanned again at once by
	// a second device.
	Arrivals   bool          `json:"arrivals"`
	Run        time.Duration `json:"run_ns"`
	Open       time.Duration `json:"open_ns"`
	LateShare  float64       `json:"late_share"`
	LateWindow time.Duration `json:"late_window_ns"`
	// CPUProfile, if set, is a file for the pprof CPU profile of the
	// scanning phase (server and scanners: one process).
	CPUProfile string `json:"cpu_profile,omitempty"`
}

// DoorsDefaults are sized for a 2-core machine: a small night in well
// under a minute (--tickets 50000 for a stadium).
func DoorsDefaults() DoorsOptions {
	return DoorsOptions{Tickets: 5000, Scanners: 64, ExitShare: 0.15, DupShare: 0.03, Phase: 5 * time.Second, DBConns: 20, Sellers: 6,
		Run: time.Minute, Open: 2 * time.Hour, LateShare: 0.6, LateWindow: 45 * time.Minute}
}

// DoorsReport is what a door run measured.
type DoorsReport struct {
	Options     DoorsOptions     `json:"options"`
	Tenant      string           `json:"tenant"`
	Event       string           `json:"event"`
	SetupSecs   float64          `json:"setup_seconds"`
	Wall        float64          `json:"scan_wall_seconds"`
	Steps       []StepStats      `json:"steps"`
	Results     map[string]int64 `json:"results"`
	AdmitsPerS  float64          `json:"admits_per_second"`
	ScansPerS   float64          `json:"scans_per_second"`
	P50, P95    float64          `json:"-"`
	P99         float64          `json:"scan_p99_ms"`
	RawPerS     float64          `json:"raw_admits_per_second"`
	RawP50      float64          `json:"raw_p50_ms"`
	RawP99      float64          `json:"raw_p99_ms"`
	Ratio       float64          `json:"api_over_raw"`
	Check       DoorsCheck       `json:"check"`
	Arrival     *ArrivalFigures  `json:"arrival,omitempty"`
	Unexpected  int64            `json:"unexpected_answers"`
	FirstDetail string           `json:"first_unexpected,omitempty"`
}

// ZoneCheck is one zone's count by the log and by the fold.
type ZoneCheck struct {
	Zone         string `json:"zone"`
	Entries      int64  `json:"entries"`
	Exits        int64  `json:"exits"`
	Inside       int64  `json:"inside"`
	ExpectInside int64  `json:"expected_inside"`
}

// DoorsCheck is the database read back after the night.
type DoorsCheck struct {
	AdmittedTwice    int64       `json:"tickets_admitted_twice_without_exit"`
	FoldMismatches   int64       `json:"tickets_whose_state_differs_from_log"`
	ZonesOff         int64       `json:"zones_inside_not_entries_minus_exits"`
	AdmittedInLog    int64       `json:"admitted_tickets"`
	AdmitsToldVsLog  int64       `json:"admit_answers_minus_admit_records"`
	InsideToldVsFold int64       `json:"inside_by_answers_minus_inside_by_database"`
	Zones            []ZoneCheck `json:"zones"`
	OK               bool        `json:"ok"`
}

type doorsHarness struct {
	*Harness
	do        DoorsOptions
	door      string // door staff's bearer token
	results   sync.Map
	admits    atomic.Int64
	unexpect  atomic.Int64
	firstOdd  atomic.Value
	insideNow atomic.Int64
	// admitAt is when each admission was answered (the arrival model's
	// peak window is measured from it); waits is, per arrival-model scan,
	// how long after its scheduled time it was answered.
	arrival *ArrivalFigures
	admitMu sync.Mutex
	admitAt []time.Time
	waits   []time.Duration
}

type soldTicket struct {
	ID    uuid.UUID `gorm:"column:id"`
	Token string    `gorm:"column:token"`
}

// RunDoors runs a night at the door against the server at base.
func RunDoors(ctx context.Context, a *app.App, base string, o DoorsOptions, out, progressOut io.Writer) (*DoorsReport, error) {
	if o.RawTickets == 0 {
		o.RawTickets = min(o.Tickets, 10000)
	}
	h := &doorsHarness{do: o, Harness: &Harness{a: a, base: base, out: out, log: progressOut, sem: make(chan struct{}, o.Scanners+o.Sellers),
		rec: NewRecorder(), o: Options{Concurrency: o.Scanners, DBConns: o.DBConns, Phase: o.Phase},
		client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConns: o.Scanners * 2,
			MaxIdleConnsPerHost: o.Scanners * 2, MaxConnsPerHost: o.Scanners * 2}}}}
	if err := h.checkStripeMock(); err != nil {
		return nil, err
	}
	began := time.Now()
	fmt.Fprintf(out, "setting up: tenant, door staff, an event of %d tickets and a raw-baseline event of %d, sold in orders of 100\n", o.Tickets, o.RawTickets)
	night, rawEvent, err := h.setupDoors(ctx)
	if err != nil {
		return nil, fmt.Errorf("setup: %w", err)
	}
	defer h.retire(h.slug)
	tickets, err := h.sold(ctx, night)
	if err != nil {
		return nil, err
	}
	rawTickets, err := h.sold(ctx, rawEvent)
	if err != nil {
		return nil, err
	}
	rep := &DoorsReport{Options: o, Tenant: h.slug, Event: night, SetupSecs: time.Since(began).Seconds(), Results: map[string]int64{}}

	pace := "as fast as the server answers"
	if o.Arrivals {
		pace = "each holder at their arrival time"
	} else if o.Rate > 0 {
		pace = fmt.Sprintf("arriving at %d per second", o.Rate)
	}
	fmt.Fprintf(out, "scanning: %d tickets by %d scanners over HTTP, %s (%.0f%% go out and back in, %.0f%% scanned twice)\n",
		len(tickets), o.Scanners, pace, o.ExitShare*100, o.DupShare*100)
	stopProfile := func() {}
	if o.CPUProfile != "" {
		if stopProfile, err = startCPUProfile(o.CPUProfile); err != nil {
			return nil, err
		}
	}
	if o.Arrivals {
		fmt.Fprintf(out, "arrival model: doors open %s before the show, %.0f%% of holders in the last %s, compressed into %s (x%.0f)\n",
			o.Open, o.LateShare*100, o.LateWindow, o.Run, float64(o.Open)/float64(o.Run))
		rep.Wall = h.arrivalNight(ctx, night, tickets).Seconds()
	} else {
		rep.Wall = h.night(ctx, night, tickets).Seconds()
	}
	stopProfile()
	if o.CPUProfile != "" {
		fmt.Fprintf(out, "CPU profile of the scanning phase (server and scanners in one process): go tool pprof -top %s\n", o.CPUProfile)
	}
	rep.Steps = h.rec.Summary(time.Duration(rep.Wall * float64(time.Second)))
	h.results.Range(func(k, v any) bool { rep.Results[k.(string)] = v.(*atomic.Int64).Load(); return true })
	rep.AdmitsPerS = float64(h.admits.Load()) / rep.Wall
	var all []time.Duration
	h.rec.mu.Lock()
	for _, s := range h.rec.steps {
		all = append(all, s.lat...)
	}
	h.rec.mu.Unlock()
	slices.Sort(all)
	rep.ScansPerS = float64(len(all)) / rep.Wall
	rep.P50, rep.P95, rep.P99 = percentile(all, .5), percentile(all, .95), percentile(all, .99)
	rep.Unexpected = h.unexpect.Load()
	if o.Arrivals {
		h.arrivalFigures(rep)
	}
	if v, ok := h.firstOdd.Load().(string); ok {
		rep.FirstDetail = v
	}

	fmt.Fprintf(out, "raw baseline: the check-in statement straight through the tenant door, %d goroutines, %d tickets\n", o.Scanners, len(rawTickets))
	if err := h.rawDoors(ctx, rawEvent, rawTickets, rep); err != nil {
		return rep, fmt.Errorf("raw phase: %w", err)
	}
	fmt.Fprintln(out, "checking the database: admissions, the fold against the log, inside per zone")
	rep.Check, err = h.checkDoors(ctx, night)
	if err != nil {
		return rep, fmt.Errorf("check: %w", err)
	}
	h.printDoors(rep)
	return rep, nil
}

// setupDoors makes the tenant, a door-staff user at the venue, and two
// events (the night and the raw baseline's), each sold out.
func (h *doorsHarness) setupDoors(ctx context.Context) (string, string, error) {
	slug := fmt.Sprintf("doors-%d", time.Now().UnixNano()%1e9)
	password := uuid.NewString()
	t, err := h.a.CreateTenant(ctx, slug, "Door Bench", "owner@"+slug+".test", "Bench Owner", password)
	if err != nil {
		return "", "", err
	}
	h.t, h.slug = t, slug
	if h.owner, err = h.login(ctx, "owner@"+slug+".test", password); err != nil {
		return "", "", err
	}
	var v, st struct{ ID string }
	if err := h.mustJSON(ctx, http.StatusCreated, &v, "POST", "/api/v1/venues", map[string]any{"name": "Door Arena", "address": "1 Bench Road",
		"timezone": "Europe/Berlin", "latitude": 52.5, "longitude": 13.4, "capacity": 1000000}); err != nil {
		return "", "", err
	}
	if err := h.mustJSON(ctx, http.StatusCreated, &st, "POST", "/api/v1/venues/"+v.ID+"/stages", map[string]any{"name": "Main", "capacity": 1000000, "type": "main"}); err != nil {
		return "", "", err
	}
	staff, err := h.a.CreateUser(ctx, t, "door@"+slug+".test", "Door Staff", password)
	if err != nil {
		return "", "", err
	}
	if err := h.a.Enforcer.Assign(slug, policies.Assignment{UserID: staff.ID.String(), Role: policies.RoleDoorStaff, Venue: v.ID}); err != nil {
		return "", "", err
	}
	if h.door, err = h.login(ctx, "door@"+slug+".test", password); err != nil {
		return "", "", err
	}
	night, err := h.soldOutEvent(ctx, v.ID, st.ID, "Door Night", 0, h.do.Tickets)
	if err != nil {
		return "", "", err
	}
	raw, err := h.soldOutEvent(ctx, v.ID, st.ID, "Door Raw", 1, h.do.RawTickets)
	return night, raw, err
}

func (h *doorsHarness) login(ctx context.Context, email, password string) (string, error) {
	res, err := h.call(ctx, "POST", h.slug, "/api/v1/auth/login", "", map[string]string{"email": email, "password": password})
	if err != nil || res.status != http.StatusOK {
		return "", fmt.Errorf("login %s: %v %s", email, err, res.body)
	}
	var l struct{ Token string }
	return l.Token, json.Unmarshal(res.body, &l)
}

var doorZones = []string{"Floor", "Balcony", "VIP"}

// soldOutEvent books an event with three GA zones (half, a third, the
// rest), re-entry on, and buys all of it in orders of 100.
func (h *doorsHarness) soldOutEvent(ctx context.Context, venue, stage, title string, day, tickets int) (string, error) {
	var ev struct{ ID string }
	start := time.Now().UTC().Truncate(time.Hour).AddDate(0, 0, 7+day)
	if err := h.mustJSON(ctx, http.StatusCreated, &ev, "POST", "/api/v1/venues/"+venue+"/events", map[string]any{"stage_id": stage, "title": title,
		"category": "concert", "status": "on_sale", "starts_at": start.Format(time.RFC3339), "ends_at": start.Add(4 * time.Hour).Format(time.RFC3339)}); err != nil {
		return "", err
	}
	caps := []int{tickets / 2, tickets / 3, tickets - tickets/2 - tickets/3}
	var zones, tiers []map[string]any
	for i, z := range doorZones {
		zones = append(zones, map[string]any{"name": z, "kind": "ga", "capacity": caps[i]})
		tiers = append(tiers, map[string]any{"name": z, "zone": z, "price": 4500 + 2000*i, "currency": "EUR", "max_per_order": 100})
	}
	var inv inventory.Inventory
	if err := h.mustJSON(ctx, http.StatusOK, &inv, "PUT", "/api/v1/events/"+ev.ID+"/inventory", map[string]any{"zones": zones, "tiers": tiers,
		"max_ip_holds": 0, "max_buyer_holds": 1000, "max_buyer_tickets": 100, "quotas": map[string]int{"web": tickets}}); err != nil {
		return "", err
	}
	if err := h.mustJSON(ctx, http.StatusOK, nil, "PUT", "/api/v1/events/"+ev.ID+"/door", map[string]any{"reentry": true}); err != nil {
		return "", err
	}
	type order struct{ tier, qty int }
	var orders []order
	for i := range doorZones {
		for left := caps[i]; left > 0; left -= 100 {
			orders = append(orders, order{i, min(100, left)})
		}
	}
	bar := h.bar()
	var done atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(h.do.Sellers)
	for _, o := range orders {
		g.Go(func() error {
			defer func() { bar.draw(int(done.Add(1)), len(orders), title+": orders paid") }()
			return h.buyOrder(gctx, ev.ID, inv.Tiers[o.tier].ID.String(), o.qty)
		})
	}
	err := g.Wait()
	bar.finish()
	return ev.ID, err
}

// buyOrder buys qty tickets of a tier: hold, order, signed payment webhook.
func (h *doorsHarness) buyOrder(ctx context.Context, event, tier string, qty int) error {
	res, err := h.call(ctx, "POST", h.slug, "/api/v1/buyer-sessions", "", nil)
	if err != nil || res.status != http.StatusCreated {
		return fmt.Errorf("buyer session: %v %s", err, res.body)
	}
	var sess struct {
		Token string `json:"buyer_token"`
	}
	_ = json.Unmarshal(res.body, &sess)
	buyer := []string{inventory.BuyerHeader, sess.Token}
	res, err = h.call(ctx, "POST", h.slug, "/api/v1/events/"+event+"/holds", "", map[string]any{"tier_id": tier, "quantity": qty},
		append(buyer, "Idempotency-Key", uuid.NewString())...)
	if err != nil || res.status != http.StatusCreated {
		return fmt.Errorf("hold: %v %d %s", err, res.status, res.body)
	}
	var hold inventory.Hold
	_ = json.Unmarshal(res.body, &hold)
	res, err = h.call(ctx, "POST", h.slug, "/api/v1/orders", "", map[string]any{"hold_id": hold.ID,
		"buyer": map[string]string{"email": "fan-" + hold.ID.String()[:8] + "@bench.test", "name": "Bench Fan"}}, append(buyer, "Idempotency-Key", uuid.NewString())...)
	if err != nil || res.status != http.StatusCreated {
		return fmt.Errorf("order: %v %d %s", err, res.status, res.body)
	}
	var o inventory.Order
	if err := json.Unmarshal(res.body, &o); err != nil || o.PaymentIntentID == nil {
		return fmt.Errorf("order without payment intent: %s", res.body)
	}
	payload, sig, err := inventory.TestWebhookEvent(h.a.Config.StripeWebhookSecret, "evt_doors_"+strings.ReplaceAll(uuid.NewString(), "-", ""),
		"payment_intent.succeeded", *o.PaymentIntentID, o.AmountMinor, o.Currency, h.slug, o.ID)
	if err != nil {
		return err
	}
	res, err = h.call(ctx, "POST", "", inventory.PlatformWebhookPath, "", payload, "Stripe-Signature", sig)
	if err != nil || res.status != http.StatusOK || !strings.Contains(string(res.body), `"paid"`) {
		return fmt.Errorf("pay: %v %d %s", err, res.status, res.body)
	}
	return nil
}

// sold reads an event's valid tickets and tokens (as the buyers' order
// pages would show them), shuffled: arrivals come in no order.
func (h *doorsHarness) sold(ctx context.Context, event string) ([]soldTicket, error) {
	var ts []soldTicket
	err := h.a.TxWith(ctx, h.t, tenants.TxOptions{ReadOnly: true}, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT id, token FROM inv_tickets WHERE event_id = ? AND status = 'valid'`, event).Scan(&ts).Error
	})
	rand.Shuffle(len(ts), func(i, j int) { ts[i], ts[j] = ts[j], ts[i] })
	return ts, err
}

func (h *doorsHarness) bar() *progress { return newProgress(h.log, time.Now()) }

func (h *doorsHarness) note(result string) {
	v, _ := h.results.LoadOrStore(result, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
}

// scanOnce posts one scan and checks its answer is want. A scan the
// server sheds (503, its tenant's in-flight bound full) is sent again after
// Retry-After with the same nonce, as a scanner does: the nonce makes the
// retry safe, and its latency counts from the first attempt.
func (h *doorsHarness) scanOnce(ctx context.Context, event string, tk soldTicket, typ, device, want string) string {
	body := map[string]any{"token": tk.Token, "type": typ, "gate": "Gate " + device[len(device)-1:], "device_id": device, "nonce": uuid.NewString()}
	step := typ
	if want == inventory.ResultAlreadyAdmitted {
		step = "duplicate"
	}
	var res response
	var err error
	var first time.Time
	for attempt := 0; ; attempt++ {
		res, err = h.call(ctx, "POST", h.slug, "/api/v1/events/"+event+"/checkins", h.door, body)
		if attempt == 0 {
			first = res.sent
		}
		if err != nil || (res.status != http.StatusServiceUnavailable && res.status != http.StatusTooManyRequests) || attempt == 20 {
			break
		}
		h.note("shed (retried)")
		wait := 50 * time.Millisecond
		if s, perr := time.ParseDuration(res.header.Get("Retry-After") + "s"); perr == nil && s > 0 {
			wait = min(s, time.Second)
		}
		if sleep(ctx, wait) {
			break
		}
	}
	res.sent = first
	if err != nil || res.status != http.StatusOK {
		h.rec.Fail(step, fmt.Sprint(res.status))
		h.odd(fmt.Sprintf("%s %s: %v %d %s", typ, tk.ID, err, res.status, res.body))
		return ""
	}
	var r struct {
		Result string `json:"result"`
	}
	_ = json.Unmarshal(res.body, &r)
	h.rec.Observe(step, res.sent)
	h.note(r.Result)
	switch r.Result {
	case inventory.ResultAdmit:
		h.admits.Add(1)
		h.insideNow.Add(1)
	case inventory.ResultExited:
		h.insideNow.Add(-1)
	}
	if r.Result != want {
		h.odd(fmt.Sprintf("%s %s: %s, want %s", typ, tk.ID, r.Result, want))
	}
	if r.Result == inventory.ResultAdmit {
		h.admitMu.Lock()
		h.admitAt = append(h.admitAt, time.Now())
		h.admitMu.Unlock()
	}
	return r.Result
}

func (h *doorsHarness) odd(detail string) {
	h.unexpect.Add(1)
	h.firstOdd.CompareAndSwap(nil, detail)
}

// night scans every ticket: entry, and for some exit and entry again, and
// for some a second device's scan of the same ticket.
func (h *doorsHarness) night(ctx context.Context, event string, tickets []soldTicket) time.Duration {
	h.rec = NewRecorder()
	var next, done atomic.Int64
	start := time.Now()
	// A paced night hands out arrivals at Rate per second; the scanners
	// take them as they come.
	var arrivals chan struct{}
	if h.do.Rate > 0 {
		arrivals = make(chan struct{})
		pctx, stop := context.WithCancel(ctx)
		defer stop()
		go func() {
			every := time.Second / time.Duration(h.do.Rate)
			for i := 0; i < len(tickets); i++ {
				select {
				case arrivals <- struct{}{}:
				case <-pctx.Done():
					return
				}
				if sleep(pctx, time.Until(start.Add(time.Duration(i+1)*every))) {
					return
				}
			}
			close(arrivals)
		}()
	}
	var wg sync.WaitGroup
	for s := range h.do.Scanners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			device := fmt.Sprintf("scanner-%02d-%d", s, s%8)
			r := rand.New(rand.NewPCG(uint64(s), 7))
			for {
				if arrivals != nil {
					if _, ok := <-arrivals; !ok {
						return
					}
				}
				i := int(next.Add(1) - 1)
				if i >= len(tickets) || ctx.Err() != nil {
					return
				}
				tk := tickets[i]
				h.scanOnce(ctx, event, tk, inventory.ScanEntry, device, inventory.ResultAdmit)
				if r.Float64() < h.do.DupShare {
					h.scanOnce(ctx, event, tk, inventory.ScanEntry, fmt.Sprintf("scanner-%02d-%d", (s+1)%h.do.Scanners, (s+1)%8), inventory.ResultAlreadyAdmitted)
				}
				if r.Float64() < h.do.ExitShare {
					h.scanOnce(ctx, event, tk, inventory.ScanExit, device, inventory.ResultExited)
					h.scanOnce(ctx, event, tk, inventory.ScanEntry, device, inventory.ResultAdmit)
				}
				done.Add(1)
			}
		}()
	}
	bar := h.bar()
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-finished:
			bar.draw(int(done.Load()), len(tickets), fmt.Sprintf("tickets scanned %d/%d  admits %d", done.Load(), len(tickets), h.admits.Load()))
			bar.finish()
			return time.Since(start)
		case <-tick.C:
			bar.draw(int(done.Load()), len(tickets), fmt.Sprintf("tickets scanned %d/%d  admits %d", done.Load(), len(tickets), h.admits.Load()))
		}
	}
}

// rawDoors runs the scan statement itself, entries, one round trip each
// through the tenant door (tenants.PgxStatement, as the API does), by as
// many goroutines as scanners.
func (h *doorsHarness) rawDoors(ctx context.Context, event string, tickets []soldTicket, rep *DoorsReport) error {
	eventID := uuid.MustParse(event)
	n, lat, el, errs, ferr := h.phase(len(tickets), func(g, i int) (bool, error) {
		sc := inventory.Scan{EventID: eventID, Type: inventory.ScanEntry, Gate: "Raw", DeviceID: fmt.Sprintf("raw-%d", g), Nonce: uuid.NewString(),
			ScannedAt: time.Now()}
		admitted := false
		// One round trip, as the API's scan: the statement alone in its
		// implicit transaction.
		args := []any{inventory.CheckinArgs(sc, tickets[i].ID, "", uuid.Must(uuid.NewV7()), time.Now())}
		err := h.a.PgxStatement(ctx, h.t, tenants.TxOptions{GenericPlan: true}, inventory.CheckinStatement, args, func(rows pgx.Rows) error {
			var known bool
			var result *string
			var skip any
			if !rows.Next() {
				return rows.Err()
			}
			err := rows.Scan(&known, &skip, &skip, &skip, &skip, &skip, &skip, &skip, &result, &skip)
			admitted = err == nil && result != nil && *result == inventory.ResultAdmit
			return err
		})
		return admitted, err
	})
	if errs > 0 {
		return fmt.Errorf("%d raw statements failed, first: %v", errs, ferr)
	}
	if n == 0 {
		return fmt.Errorf("no raw admission (first error: %v)", ferr)
	}
	rep.RawPerS = float64(n) / el.Seconds()
	rep.RawP50, rep.RawP99 = percentile(lat, .5), percentile(lat, .99)
	rep.Ratio = rep.AdmitsPerS / rep.RawPerS
	if rep.Arrival != nil {
		rep.Arrival.PeakRatio = rep.Arrival.PeakAdmitsPerS / rep.RawPerS
	}
	return nil
}

// checkDoors reads the night back from the database.
func (h *doorsHarness) checkDoors(ctx context.Context, event string) (DoorsCheck, error) {
	var c DoorsCheck
	err := h.a.TxWith(ctx, h.t, tenants.TxOptions{ReadOnly: true}, func(tx *gorm.DB) error {
		q := func(dst *int64, sql string) error { return tx.Raw(sql, event).Row().Scan(dst) }
		// Admissions and exits alternate per ticket: admits - exits is 0 or 1.
		if err := q(&c.AdmittedTwice, `SELECT count(*) FROM (SELECT ticket_id FROM inv_checkins WHERE event_id = ? AND successful AND annulled_at IS NULL
			GROUP BY ticket_id HAVING count(*) FILTER (WHERE result = 'admit') - count(*) FILTER (WHERE result = 'exited') NOT IN (0, 1)) x`); err != nil {
			return err
		}
		if err := tx.Raw(`SELECT count(*) FROM (SELECT ticket_id, count(*) FILTER (WHERE result = 'admit') AS e, count(*) FILTER (WHERE result = 'exited') AS x
			FROM inv_checkins WHERE event_id = ? AND successful AND annulled_at IS NULL GROUP BY ticket_id) l
			FULL JOIN (SELECT * FROM inv_door_state WHERE event_id = ?) s USING (ticket_id)
			WHERE l.e IS DISTINCT FROM s.entries OR l.x IS DISTINCT FROM s.exits OR s.inside IS DISTINCT FROM (l.e - l.x = 1)`, event, event).Row().Scan(&c.FoldMismatches); err != nil {
			return err
		}
		if err := q(&c.AdmittedInLog, `SELECT count(DISTINCT ticket_id) FROM inv_checkins WHERE event_id = ? AND result = 'admit' AND annulled_at IS NULL`); err != nil {
			return err
		}
		var admitRecords int64
		if err := q(&admitRecords, `SELECT count(*) FROM inv_checkins WHERE event_id = ? AND result = 'admit'`); err != nil {
			return err
		}
		c.AdmitsToldVsLog = h.admits.Load() - admitRecords
		return tx.Raw(`SELECT z.name AS zone,
				count(*) FILTER (WHERE c.result = 'admit') AS entries, count(*) FILTER (WHERE c.result = 'exited') AS exits,
				(SELECT count(*) FROM inv_door_state s WHERE s.event_id = z.event_id AND s.zone_id = z.id AND s.inside) AS inside
			FROM inv_zones z LEFT JOIN inv_checkins c ON c.event_id = z.event_id AND c.zone_id = z.id AND c.successful AND c.annulled_at IS NULL
			WHERE z.event_id = ? GROUP BY z.id ORDER BY z.sort`, event).Scan(&c.Zones).Error
	})
	var inside int64
	for i, z := range c.Zones {
		c.Zones[i].ExpectInside = z.Entries - z.Exits
		if z.Inside != z.Entries-z.Exits {
			c.ZonesOff++
		}
		inside += z.Inside
	}
	c.InsideToldVsFold = h.insideNow.Load() - inside
	c.OK = err == nil && c.AdmittedTwice == 0 && c.FoldMismatches == 0 && c.ZonesOff == 0 && c.AdmitsToldVsLog == 0 && c.InsideToldVsFold == 0 &&
		c.AdmittedInLog == int64(h.do.Tickets)
	return c, err
}

func (h *doorsHarness) printDoors(rep *DoorsReport) {
	w := h.out
	fmt.Fprintf(w, "\n== doors: %s, event %s, %d tickets, %d scanners (setup %.1fs) ==\n", rep.Tenant, rep.Event, rep.Options.Tickets, rep.Options.Scanners, rep.SetupSecs)
	fmt.Fprint(w, FormatTable(rep.Steps))
	var results []string
	for k, v := range rep.Results {
		results = append(results, fmt.Sprintf("%s %d", k, v))
	}
	slices.Sort(results)
	fmt.Fprintf(w, "\nscanning %.1fs: answers %v; unexpected %d", rep.Wall, results, rep.Unexpected)
	if rep.FirstDetail != "" {
		fmt.Fprintf(w, " (first: %s)", rep.FirstDetail)
	}
	fmt.Fprintf(w, "\nadmits %.0f/s, all scans %.0f/s: p50 %.1f ms, p95 %.1f ms, p99 %.1f ms\n", rep.AdmitsPerS, rep.ScansPerS, rep.P50, rep.P95, rep.P99)
	if a := rep.Arrival; a != nil {
		fmt.Fprintf(w, "arrival model: peak window (last %s, %.1fs compressed): %d arrivals scheduled = %.0f/s, %.0f admits/s answered; wait at the door (scheduled -> answered) p50 %.1f ms, p99 %.1f ms\n",
			rep.Options.LateWindow, a.PeakSecs, a.PeakArrivals, a.PeakArrivalsPerS, a.PeakAdmitsPerS, a.WaitP50, a.WaitP99)
		fmt.Fprintf(w, "raw check-in statement through the tenant door: %.0f admits/s (p50 %.1f ms, p99 %.1f ms)   peak admits/raw = %.2f (%s)\n",
			rep.RawPerS, rep.RawP50, rep.RawP99, a.PeakRatio, a.Saturated)
	} else if rep.Options.Rate > 0 {
		// Paced, the admits rate is the arrival rate: a ratio to the raw
		// statement's saturated rate would say nothing.
		fmt.Fprintf(w, "raw check-in statement through the tenant door: %.0f admits/s (p50 %.1f ms, p99 %.1f ms); no API/raw ratio for a paced night (run without --rate)\n", rep.RawPerS, rep.RawP50, rep.RawP99)
	} else {
		fmt.Fprintf(w, "raw check-in statement through the tenant door: %.0f admits/s (p50 %.1f ms, p99 %.1f ms)   API/raw = %.2f\n", rep.RawPerS, rep.RawP50, rep.RawP99, rep.Ratio)
	}
	c := rep.Check
	verdict := "OK"
	if !c.OK {
		verdict = "FAILED"
	}
	fmt.Fprintf(w, "database check %s: tickets admitted twice without an exit %d, tickets whose state differs from the log %d, zones where inside != entries - exits %d, admitted tickets %d of %d, admit answers - admit records %d, inside by answers - inside by database %d\n",
		verdict, c.AdmittedTwice, c.FoldMismatches, c.ZonesOff, c.AdmittedInLog, rep.Options.Tickets, c.AdmitsToldVsLog, c.InsideToldVsFold)
	for _, z := range c.Zones {
		fmt.Fprintf(w, "  %-8s inside %6d = entries %6d - exits %5d\n", z.Zone, z.Inside, z.Entries, z.Exits)
	}
}

// startCPUProfile writes the process's CPU profile to path until stop.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
