package inventory_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/app/apptest"
	"marquee/config"
	"marquee/modules/calendar"
	"marquee/modules/inventory"
)

// recordingStripe stands in front of stripe-mock and records every refund
// request by its Idempotency-Key. Like Stripe (and unlike stripe-mock), it
// answers a key it has seen with the first answer instead of refunding
// again, so "refunds made" is what Stripe would have paid out. After the
// refund numbered holdAt is made, it keeps that answer back until the
// client goes away: a worker killed between Stripe's refund and its own
// commit.
type recordingStripe struct {
	target   string
	holdAt   int
	held     chan string
	mu       sync.Mutex
	made     map[string]int // key -> refunds made at stripe-mock
	received map[string]int // key -> requests
	answers  map[string]recordedAnswer
	order    []string        // keys in the order refunds were made
	refuse   map[string]bool // keys Stripe refuses for good (as charge_already_refunded)
}

type recordedAnswer struct {
	status int
	body   []byte
}

func newRecordingStripe(target string, holdAt int) *recordingStripe {
	return &recordingStripe{target: target, holdAt: holdAt, held: make(chan string, 1),
		made: map[string]int{}, received: map[string]int{}, answers: map[string]recordedAnswer{}, refuse: map[string]bool{}}
}

func (p *recordingStripe) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	refund := r.Method == http.MethodPost && r.URL.Path == "/v1/refunds"
	key := r.Header.Get("Idempotency-Key")
	if refund {
		p.mu.Lock()
		p.received[key]++
		a, seen := p.answers[key]
		refused := p.refuse[key]
		p.mu.Unlock()
		if refused {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":{"type":"invalid_request_error","code":"charge_already_refunded","message":"Charge has already been refunded."}}`))
			return
		}
		if seen {
			w.Header().Set("Idempotent-Replayed", "true")
			w.WriteHeader(a.status)
			_, _ = w.Write(a.body)
			return
		}
	}
	// Sent on even if the client goes away: Stripe finishes what it received.
	req, _ := http.NewRequestWithContext(context.Background(), r.Method, p.target+r.URL.RequestURI(), bytes.NewReader(body))
	req.Header = r.Header.Clone()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	n := 0
	if refund && res.StatusCode == http.StatusOK {
		p.mu.Lock()
		p.made[key]++
		p.answers[key] = recordedAnswer{res.StatusCode, out}
		p.order = append(p.order, key)
		n = len(p.order)
		p.mu.Unlock()
	}
	if n == p.holdAt {
		p.held <- key
		<-r.Context().Done()
		return
	}
	w.Header().Set("Content-Type", res.Header.Get("Content-Type"))
	w.WriteHeader(res.StatusCode)
	_, _ = w.Write(out)
}

func (p *recordingStripe) snapshot() (made, received map[string]int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	made, received = map[string]int{}, map[string]int{}
	for k, v := range p.made {
		made[k] = v
	}
	for k, v := range p.received {
		received[k] = v
	}
	return made, received
}

// startBehind starts the app with its Stripe calls going through proxy.
func startBehind(t *testing.T, proxy http.Handler) (*apptest.Env, *inventory.Module) {
	t.Helper()
	stripeSrv := httptest.NewServer(proxy)
	t.Cleanup(stripeSrv.Close)
	inv := inventory.New()
	env := apptest.Start(t, dbURL, apptest.Options{DBMaxConns: 20, Modules: []app.Module{calendar.New(), inv},
		Configure: func(c *config.Config) {
			c.StripeAPIURL = stripeSrv.URL
			c.StripeSecretKey = config.DevStripeSecretKey
			c.StripeWebhookSecret = "whsec_test_inventory"
			c.TrustedProxies = []string{"127.0.0.1/32"}
		}})
	return env, inv
}

// worker starts an Asynq worker on the test Redis for the package's queues, serving
// the app's tasks (as `marquee worker` does), with a short shutdown grace.
func worker(t *testing.T, env *apptest.Env) *asynq.Server {
	t.Helper()
	srv := asynq.NewServer(asynqOpt(t), asynq.Config{Concurrency: 2, Queues: env.App.Jobs.ServerQueues(), ShutdownTimeout: 500 * time.Millisecond,
		DelayedTaskCheckInterval: time.Second, LogLevel: asynq.FatalLevel})
	if err := srv.Start(env.App.Jobs.Mux()); err != nil {
		t.Fatal(err)
	}
	return srv
}

// Cancelling an on-sale event with 50 paid orders: the portal says what
// will happen; the cancellation job, its worker shut down midway (a refund
// made at Stripe but not yet recorded) and a new worker started, refunds
// every order exactly once (one Stripe refund per order, key
// refund:<order>), voids every ticket, returns the inventory, balances the
// ledger, releases holds, closes the waiting room, mails every buyer, and
// the storefront shows the event as cancelled.
func TestCancelEventWithSalesRefundsEveryOrderOnceAcrossAKilledWorker(t *testing.T) {
	// Serial: its workers serve the deployment's queues, other tests' tasks too.
	const orders, killAfter = 50, 20
	proxy := newRecordingStripe(apptest.StripeMock(t), killAfter+1)
	env, inv := startBehind(t, proxy)
	s := newShop(t, env, inv, "cancel")
	ev := s.event(t, "Cancelled Night")
	cfg := s.configure(t, ev, simpleSetup(5, 10, 100, nil))
	floor := tierID(t, cfg, "Floor")

	var paid []orderOut
	for i := 0; i < orders; i++ {
		b := s.buyer(t)
		body := map[string]any{"tier_id": floor, "quantity": 2}
		if i%2 == 0 {
			k := i / 2
			body = map[string]any{"seats": []string{"A-" + itoa(k/10+1) + "-" + itoa(k%10+1)}}
		}
		h := s.mustHold(t, ev, b, body)
		o := s.order(t, b, h.ID)
		if res := s.webhook(t, "evt_cancel_pay_"+o.ID.String(), "payment_intent.succeeded", o.Order); !strings.Contains(string(res.Body), `"outcome":"paid"`) {
			t.Fatalf("payment %d: %s", i, res.Body)
		}
		paid = append(paid, o)
	}
	tickets := s.count(t, `SELECT count(*) FROM inv_tickets WHERE event_id = ? AND status = 'valid'`, ev)
	// An open hold with an order waiting for its payment, and a waiting room.
	lateBuyer := s.buyer(t)
	lateHold := s.mustHold(t, ev, lateBuyer, map[string]any{"tier_id": floor, "quantity": 1})
	late := s.order(t, lateBuyer, lateHold.ID)
	s.sql(t, func(tx *gorm.DB) error {
		return tx.Exec(`INSERT INTO waiting_rooms (event_id, enabled) VALUES (?, true)`, ev).Error
	})

	// The portal's Cancel button says what cancelling undoes.
	var evView struct {
		StartsAt time.Time `json:"starts_at"`
	}
	s.do(t, "GET", "/api/v1/venues/"+s.venue+"/events/"+ev, nil).JSON(t, &evView)
	page := env.Do(t, "GET", s.slug, "/portal/venues/"+s.venue+"/calendar?week="+evView.StartsAt.Format("2006-01-02"), s.tok, nil, "Accept", "text/html")
	mustStatus(t, page, http.StatusOK)
	want := itoa(int(tickets)) + " tickets are sold in " + itoa(orders) + " paid orders"
	if html := string(page.Body); !strings.Contains(html, want) || !strings.Contains(html, "refunded in full through Stripe") {
		t.Fatalf("the cancel confirmation does not say %q and what happens", want)
	}

	res := s.do(t, "PATCH", "/api/v1/venues/"+s.venue+"/events/"+ev, map[string]any{"status": "cancelled"})
	mustStatus(t, res, http.StatusOK)

	// First worker: shut down while the refund after killAfter is made at
	// Stripe but not yet recorded here.
	w1 := worker(t, env)
	var inFlight string
	select {
	case inFlight = <-proxy.held:
	case <-time.After(2 * time.Minute):
		t.Fatal("the cancellation job made no refunds")
	}
	w1.Shutdown()
	states := func() map[string]int64 {
		out := map[string]int64{}
		for _, st := range []string{"pending", "refunding", "refunded"} {
			out[st] = s.count(t, `SELECT count(*) FROM inv_cancellation_refunds WHERE event_id = ? AND state = ?`, ev, st)
		}
		return out
	}
	mid := states()
	if mid["refunded"] != killAfter || mid["refunding"] != 1 || mid["pending"] != orders-killAfter-1 {
		t.Fatalf("after the kill: %v, want %d refunded, 1 refunding, %d pending", mid, killAfter, orders-killAfter-1)
	}
	if n := s.count(t, `SELECT count(*) FROM inv_orders WHERE event_id = ? AND status = 'paid'`, ev); n != orders-killAfter {
		t.Fatalf("%d orders still paid after the kill, want %d", n, orders-killAfter)
	}
	if st := s.count(t, `SELECT count(*) FROM inv_event_cancellations WHERE event_id = ? AND status = 'open'`, ev); st != 1 {
		t.Fatal("cancellation not open after the kill")
	}

	// A new worker resumes (the sweeper re-queues it too).
	w2 := worker(t, env)
	defer w2.Shutdown()
	if _, err := inv.Service().ResumeCancellations(t.Context(), s.t); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for s.count(t, `SELECT count(*) FROM inv_event_cancellations WHERE event_id = ? AND status = 'done'`, ev) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("cancellation not settled: %v", states())
		}
		<-tick.C
	}

	// Stripe: one refund per order, under its key; the request in flight at
	// the kill was sent again and answered with the refund already made.
	made, received := proxy.snapshot()
	if len(made) != orders {
		t.Fatalf("%d orders refunded at Stripe, want %d", len(made), orders)
	}
	for _, o := range paid {
		key := "refund:" + o.ID.String()
		if made[key] != 1 {
			t.Errorf("order %s refunded %d times at Stripe", o.ID, made[key])
		}
		wantReq := 1
		if key == inFlight {
			wantReq = 2
		}
		if received[key] != wantReq {
			t.Errorf("refund %s requested %d times, want %d", key, received[key], wantReq)
		}
	}
	if end := states(); end["refunded"] != orders {
		t.Fatalf("refund rows at the end: %v", end)
	}
	checks := map[string]int64{
		`SELECT count(*) FROM inv_orders WHERE event_id = '` + ev + `' AND status = 'refunded'`:                                                                  orders,
		`SELECT count(*) FROM inv_tickets WHERE event_id = '` + ev + `' AND status = 'valid'`:                                                                    0,
		`SELECT count(*) FROM inv_tickets WHERE event_id = '` + ev + `' AND status = 'void'`:                                                                     tickets,
		`SELECT count(*) FROM inv_refunds r JOIN inv_orders o ON o.id = r.order_id WHERE o.event_id = '` + ev + `' AND r.stripe_refund_id LIKE 're_%'`:           orders,
		`SELECT count(*) FROM inv_cancellation_refunds WHERE event_id = '` + ev + `' AND stripe_refund_id LIKE 're_%'`:                                           orders,
		`SELECT count(*) FROM inv_seats WHERE event_id = '` + ev + `' AND state <> 'available'`:                                                                  0,
		`SELECT coalesce(sum(sh.held + sh.sold), 0) FROM inv_counter_shards sh JOIN inv_counters c ON c.id = sh.counter_id WHERE c.event_id = '` + ev + `'`:      0,
		`SELECT count(*) FROM inv_holds WHERE event_id = '` + ev + `' AND status = 'active'`:                                                                     0,
		`SELECT count(*) FROM waiting_rooms WHERE event_id = '` + ev + `' AND enabled`:                                                                           0,
		`SELECT count(*) FROM mail_outbox e JOIN inv_orders o ON o.id::text = e.ref WHERE o.event_id = '` + ev + `' AND e.subject = 'Your event was cancelled'`:  orders,
		`SELECT count(*) FROM ledger_entries l JOIN inv_orders o ON l.reference = 'order:' || o.id WHERE o.event_id = '` + ev + `' AND l.kind = 'ticket.refund'`: orders,
		`SELECT coalesce(sum(l.amount_minor), 0) FROM ledger_entries l JOIN inv_orders o ON l.reference = 'order:' || o.id WHERE o.event_id = '` + ev + `'`:      0,
	}
	for q, want := range checks {
		if n := s.count(t, q); n != want {
			t.Errorf("%s = %d, want %d", q, n, want)
		}
	}
	if v, err := env.App.Ledger.Verify(t.Context(), s.t); err != nil || !v.OK {
		t.Fatalf("ledger: %+v %v", v, err)
	}
	// The outbox drains. The worker may be sending a mail at the same time
	// (its row locked, so this drain skips it): drained means none is left
	// once both are done.
	apptest.Eventually(t, 10*time.Second, "the outbox drained", func() bool {
		if _, err := inv.Service().DrainOutbox(t.Context(), s.t, 1000); err != nil {
			t.Fatal(err)
		}
		return s.count(t, `SELECT count(*) FROM mail_outbox WHERE status = 'queued'`) == 0
	})
	// A payment still arriving for the released hold's order is refunded.
	if res := s.webhook(t, "evt_cancel_late", "payment_intent.succeeded", late.Order); !strings.Contains(string(res.Body), `"outcome":"refunded"`) {
		t.Fatalf("payment after the cancellation: %s", res.Body)
	}
	if n := s.count(t, `SELECT count(*) FROM inv_tickets WHERE order_id = ?`, late.ID); n != 0 {
		t.Fatalf("%d tickets issued for a cancelled event", n)
	}
	// Buyers see the event cancelled; staff cannot refund an order twice.
	page = env.Do(t, "GET", s.slug, "/events/"+ev, "", nil, "Accept", "text/html")
	if page.Status != http.StatusGone || !strings.Contains(string(page.Body), "cancelled") {
		t.Fatalf("storefront event page: %d %s", page.Status, page.Body)
	}
	res = s.do(t, "POST", "/api/v1/orders/"+paid[0].ID.String()+"/refund", map[string]any{"reason": "again"}, "Idempotency-Key", uuid.NewString())
	mustStatus(t, res, http.StatusOK)
	if n := s.count(t, `SELECT count(*) FROM ledger_entries WHERE reference = ?`, "order:"+paid[0].ID.String()); n != 2 {
		t.Fatalf("%d ledger entries for a refunded order refunded again", n)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// A refund Stripe refuses for good holds up nobody else's: the job refunds
// every other order, ends with an error (so it is retried), and a later run
// settles the refused one once Stripe takes it.
func TestCancellationRefundRefusedDoesNotBlockTheOthers(t *testing.T) {
	t.Parallel()
	proxy := newRecordingStripe(apptest.StripeMock(t), -1)
	env, inv := startBehind(t, proxy)
	s := newShop(t, env, inv, "refused")
	ev := s.event(t, "Refused Night")
	floor := tierID(t, s.configure(t, ev, simpleSetup(1, 1, 100, nil)), "Floor")
	var ids []string
	for range 5 {
		b := s.buyer(t)
		o := s.order(t, b, s.mustHold(t, ev, b, map[string]any{"tier_id": floor, "quantity": 1}).ID)
		if res := s.webhook(t, "evt_refused_"+o.ID.String(), "payment_intent.succeeded", o.Order); !strings.Contains(string(res.Body), `"outcome":"paid"`) {
			t.Fatalf("payment: %s", res.Body)
		}
		ids = append(ids, o.ID.String())
	}
	slices.Sort(ids)
	first := ids[0] // the job takes orders in id order: the refused one comes first
	proxy.mu.Lock()
	proxy.refuse["refund:"+first] = true
	proxy.mu.Unlock()
	mustStatus(t, s.do(t, "PATCH", "/api/v1/venues/"+s.venue+"/events/"+ev, map[string]any{"status": "cancelled"}), http.StatusOK)
	evID := uuid.MustParse(ev)

	n, err := inv.Service().SettleCancellation(t.Context(), s.t, evID)
	if err == nil || n != 4 {
		t.Fatalf("first run: %d refunded, err %v; want the 4 others refunded and an error", n, err)
	}
	if got := s.count(t, `SELECT count(*) FROM inv_orders WHERE event_id = ? AND status = 'refunded'`, ev); got != 4 {
		t.Fatalf("%d orders refunded after the first run", got)
	}
	if got := s.count(t, `SELECT count(*) FROM inv_orders WHERE id = ? AND status = 'paid'`, first); got != 1 {
		t.Fatal("the refused order is no longer paid")
	}
	proxy.mu.Lock()
	delete(proxy.refuse, "refund:"+first)
	proxy.mu.Unlock()
	if n, err := inv.Service().SettleCancellation(t.Context(), s.t, evID); err != nil || n != 1 {
		t.Fatalf("second run: %d refunded, err %v", n, err)
	}
	if got := s.count(t, `SELECT count(*) FROM inv_event_cancellations WHERE event_id = ? AND status = 'done'`, ev); got != 1 {
		t.Fatal("cancellation not done after the refused refund went through")
	}
}
