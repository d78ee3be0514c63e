package inventory_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"gorm.io/gorm"

	"marquee/app/apptest"
	"marquee/jobs"
	"marquee/modules/inventory"
)

func asynqOpt(t testing.TB) asynq.RedisConnOpt {
	t.Helper()
	opt, err := asynq.ParseRedisURI(apptest.RedisURL())
	if err != nil {
		t.Fatal(err)
	}
	return opt
}

// lapse moves a hold's expiry into the past (as if its time had passed).
func (s *shop) lapse(t testing.TB, holdID uuid.UUID) {
	t.Helper()
	s.sql(t, func(tx *gorm.DB) error {
		return tx.Exec(`UPDATE inv_holds SET expires_at = now() - interval '1 second' WHERE id = ?`, holdID).Error
	})
}

func (s *shop) seatState(t testing.TB, ev, seat string) string {
	t.Helper()
	var st string
	s.sql(t, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT state FROM inv_seats WHERE event_id = ? AND id = ?`, ev, seat).Row().Scan(&st)
	})
	return st
}

// The expiry task scheduled with the hold, run by a real Asynq worker,
// returns the seats at the hold's time; running it again changes nothing.
func TestExpiryThroughAsynqWorker(t *testing.T) {
	// Serial: its worker serves the deployment's queues (other tests' tasks too) and its bound is a latency bound.
	s, ev, _ := onSale(t, "expiry", "Expiry Night", simpleSetup(1, 10, 0, nil))
	env, inv := s.env, s.inv
	h := s.mustHold(t, ev, s.buyer(t), map[string]any{"seats": []string{"A-1-1", "A-1-2"}})

	srv := env.App.Jobs.NewServer(4)
	if err := srv.Start(env.App.Jobs.Mux()); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	insp := asynq.NewInspector(asynqOpt(t))
	defer insp.Close()
	taskID := "hold-expire:" + s.slug + ":" + h.ID.String()
	info, err := insp.GetTaskInfo(env.App.Jobs.Queue(jobs.QueueCritical), taskID)
	if err != nil {
		t.Fatalf("expiry task not scheduled: %v", err)
	}
	if d := info.NextProcessAt.Sub(h.ExpiresAt); d < -time.Second || d > time.Second {
		t.Fatalf("task runs at %v, hold expires at %v", info.NextProcessAt, h.ExpiresAt)
	}
	// Bring the hold's time forward to now+2s and reschedule its task at it.
	if err := insp.DeleteTask(env.App.Jobs.Queue(jobs.QueueCritical), taskID); err != nil {
		t.Fatal(err)
	}
	var due time.Time
	s.sql(t, func(tx *gorm.DB) error {
		return tx.Raw(`UPDATE inv_holds SET expires_at = now() + interval '2 seconds' WHERE id = ? RETURNING expires_at`, h.ID).Row().Scan(&due)
	})
	if _, err := env.App.Jobs.Enqueue(t.Context(), s.t, inventory.TaskHoldExpire, map[string]any{"hold_id": h.ID},
		asynq.ProcessAt(due), asynq.TaskID(taskID), asynq.Queue(jobs.QueueCritical)); err != nil {
		t.Fatal(err)
	}
	if st := s.seatState(t, ev, "A-1-1"); st != "held" {
		t.Fatalf("seat %s before expiry", st)
	}
	// The worker looks at scheduled tasks every 5 s.
	if !apptest.Poll(time.Until(due.Add(8*time.Second)), func() bool { return s.seatState(t, ev, "A-1-1") == "available" }) {
		t.Fatal("seats not returned after the hold's time")
	}
	t.Logf("seats back %v after the hold's time", time.Since(due).Round(10*time.Millisecond))
	if time.Now().Before(due) {
		t.Fatal("seats returned before the hold's time")
	}
	var status string
	s.sql(t, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT status FROM inv_holds WHERE id = ?`, h.ID).Row().Scan(&status)
	})
	if status != "expired" {
		t.Fatalf("hold %s", status)
	}
	// Running the handler again (a retried or duplicated task) changes nothing.
	expired, err := inv.Service().ExpireHold(t.Context(), s.t, h.ID)
	if err != nil || expired {
		t.Fatalf("second expiry: %v %v", expired, err)
	}
	if n := s.count(t, `SELECT count(*) FROM inv_buyer_counters WHERE holds <> 0 OR units <> 0`); n != 0 {
		t.Fatal("buyer counters not given back")
	}
}

// The sweeper expires lapsed holds whose task was lost; twice is once.
func TestSweeperExpiresLapsedHolds(t *testing.T) {
	t.Parallel()
	s, ev, cfg := onSale(t, "sweep", "Sweep Night", simpleSetup(1, 10, 50, nil))
	env, inv := s.env, s.inv
	h1 := s.mustHold(t, ev, s.buyer(t), map[string]any{"seats": []string{"A-1-5"}})
	h2 := s.mustHold(t, ev, s.buyer(t), map[string]any{"tier_id": tierID(t, cfg, "Floor"), "quantity": 3})
	h3 := s.mustHold(t, ev, s.buyer(t), map[string]any{"seats": []string{"A-1-6"}})
	s.lapse(t, h1.ID)
	s.lapse(t, h2.ID)
	// Through the jobs envelope, as the periodic fan-out delivers it.
	env1, _ := json.Marshal(jobs.Envelope{Tenant: s.slug})
	if err := env.App.Jobs.Mux().ProcessTask(context.Background(), asynq.NewTask(inventory.TaskHoldSweep, env1)); err != nil {
		t.Fatal(err)
	}
	if s.seatState(t, ev, "A-1-5") != "available" || s.seatState(t, ev, "A-1-6") != "held" {
		t.Fatal("sweeper expired the wrong holds")
	}
	if n := s.count(t, `SELECT sum(held) FROM inv_counter_shards`); n != 0 {
		t.Fatalf("pool still holds %d", n)
	}
	n, err := inv.Service().SweepHolds(t.Context(), s.t, 100)
	if err != nil || n != 0 {
		t.Fatalf("second sweep: %d %v", n, err)
	}
	_ = h3
}

// A payment that succeeds after its hold expired and its seats went to
// someone else is refunded automatically, recorded and told; not lost.
func TestLatePaymentRefundedWhenSeatsGone(t *testing.T) {
	t.Parallel()
	s, ev, _ := onSale(t, "late", "Late Night", simpleSetup(1, 10, 0, nil))
	inv := s.inv
	b1 := s.buyer(t)
	h := s.mustHold(t, ev, b1, map[string]any{"seats": []string{"A-1-1", "A-1-2"}})
	o := s.order(t, b1, h.ID)
	s.lapse(t, h.ID)
	if ok, err := inv.Service().ExpireHold(t.Context(), s.t, h.ID); err != nil || !ok {
		t.Fatalf("expire: %v %v", ok, err)
	}
	s.mustHold(t, ev, s.buyer(t), map[string]any{"seats": []string{"A-1-2"}})

	res := s.webhook(t, "evt_late_1", "payment_intent.succeeded", o.Order)
	mustStatus(t, res, http.StatusOK)
	if !strings.Contains(string(res.Body), `"outcome":"refunded"`) {
		t.Fatalf("late payment: %s", res.Body)
	}
	if st := s.seatState(t, ev, "A-1-1"); st != "available" {
		t.Fatalf("A-1-1 is %s after a refunded late payment", st)
	}
	if st := s.seatState(t, ev, "A-1-2"); st != "held" {
		t.Fatalf("A-1-2 is %s; the other buyer's hold must stand", st)
	}
	checks := map[string]int64{
		`SELECT count(*) FROM inv_orders WHERE status = 'refunded'`:                                  1,
		`SELECT count(*) FROM inv_refunds WHERE stripe_refund_id LIKE 're_%'`:                        1,
		`SELECT count(*) FROM inv_tickets`:                                                           0,
		`SELECT count(*) FROM mail_outbox WHERE subject = 'Your payment is being refunded'`:          1,
		`SELECT count(*) FROM ledger_entries WHERE kind = 'ticket.sale' AND amount_minor = 10000`:    1,
		`SELECT count(*) FROM ledger_entries WHERE kind = 'ticket.refund' AND amount_minor = -10000`: 1,
	}
	for q, want := range checks {
		if n := s.count(t, q); n != want {
			t.Errorf("%s = %d, want %d", q, n, want)
		}
	}
	// The same event again: nothing more happens.
	res = s.webhook(t, "evt_late_1", "payment_intent.succeeded", o.Order)
	if !strings.Contains(string(res.Body), `"outcome":"duplicate"`) {
		t.Fatalf("replayed late payment: %s", res.Body)
	}
	if n := s.count(t, `SELECT count(*) FROM ledger_entries WHERE kind LIKE 'ticket.%'`); n != 2 {
		t.Fatalf("%d ledger entries after the replay", n)
	}
}

// A late payment whose seats are still free is honoured: same seats, sold.
func TestLatePaymentRetakesFreeSeats(t *testing.T) {
	t.Parallel()
	s, ev, cfg := onSale(t, "retake", "Retake Night", simpleSetup(1, 10, 20, map[string]int{"web": 30}))
	inv := s.inv
	b1 := s.buyer(t)
	h := s.mustHold(t, ev, b1, map[string]any{"seats": []string{"A-1-3", "A-1-4"}})
	o := s.order(t, b1, h.ID)
	s.lapse(t, h.ID)
	if _, err := inv.Service().SweepHolds(t.Context(), s.t, 10); err != nil {
		t.Fatal(err)
	}
	res := s.webhook(t, "evt_retake_1", "payment_intent.succeeded", o.Order)
	if !strings.Contains(string(res.Body), `"outcome":"resold"`) {
		t.Fatalf("late payment with free seats: %s", res.Body)
	}
	if s.seatState(t, ev, "A-1-3") != "sold" || s.seatState(t, ev, "A-1-4") != "sold" {
		t.Fatal("seats not sold")
	}
	if n := s.count(t, `SELECT count(*) FROM inv_tickets WHERE order_id = ? AND status = 'valid'`, o.ID); n != 2 {
		t.Fatalf("%d tickets", n)
	}
	// GA too: its units come from the pool and the web quota again.
	b2 := s.buyer(t)
	h2 := s.mustHold(t, ev, b2, map[string]any{"tier_id": tierID(t, cfg, "Floor"), "quantity": 3})
	o2 := s.order(t, b2, h2.ID)
	s.lapse(t, h2.ID)
	if _, err := inv.Service().ExpireHold(t.Context(), s.t, h2.ID); err != nil {
		t.Fatal(err)
	}
	res = s.webhook(t, "evt_retake_2", "payment_intent.succeeded", o2.Order)
	if !strings.Contains(string(res.Body), `"outcome":"resold"`) {
		t.Fatalf("late GA payment: %s", res.Body)
	}
	if n := s.count(t, `SELECT sum(sold) FROM inv_counter_shards sh JOIN inv_counters c ON c.id = sh.counter_id WHERE c.kind = 'pool'`); n != 3 {
		t.Fatalf("pool sold %d", n)
	}
	if n := s.count(t, `SELECT sum(sold) FROM inv_counter_shards sh JOIN inv_counters c ON c.id = sh.counter_id WHERE c.channel = 'web'`); n != 5 {
		t.Fatalf("web quota sold %d", n)
	}
	if n := s.count(t, `SELECT sum(held) FROM inv_counter_shards`); n != 0 {
		t.Fatalf("held %d", n)
	}
}

// A webhook delivered twice, or many times at once, issues tickets once;
// so do distinct events for one order arriving together.
func TestDuplicateWebhooksIssueTicketsOnce(t *testing.T) {
	t.Parallel()
	s, ev, cfg := onSale(t, "dupwh", "Dup Night", simpleSetup(1, 10, 100, nil))
	floor := tierID(t, cfg, "Floor")

	newOrder := func() orderOut {
		b := s.buyer(t)
		h := s.mustHold(t, ev, b, map[string]any{"tier_id": floor, "quantity": 2})
		return s.order(t, b, h.ID)
	}
	// Sequential duplicate.
	o := newOrder()
	mustStatus(t, s.webhook(t, "evt_dup_a", "payment_intent.succeeded", o.Order), http.StatusOK)
	res := s.webhook(t, "evt_dup_a", "payment_intent.succeeded", o.Order)
	if !strings.Contains(string(res.Body), `"outcome":"duplicate"`) {
		t.Fatalf("duplicate: %s", res.Body)
	}
	// Concurrent duplicates of one event, and concurrent distinct events.
	for _, distinct := range []bool{false, true} {
		o := newOrder()
		var paid atomic.Int64
		parallel(12, func(i int) {
			id := "evt_dup_c_" + o.ID.String()
			if distinct {
				id += "_" + string(rune('a'+i))
			}
			res, err := s.tryWebhook(id, "payment_intent.succeeded", o.Order)
			if err != nil || res.Status != http.StatusOK {
				t.Errorf("webhook: %v %d %s", err, res.Status, res.Body)
				return
			}
			if strings.Contains(string(res.Body), `"outcome":"paid"`) {
				paid.Add(1)
			}
		})
		if paid.Load() != 1 {
			t.Fatalf("distinct=%v: %d deliveries paid the order", distinct, paid.Load())
		}
		if n := s.count(t, `SELECT count(*) FROM inv_tickets WHERE order_id = ?`, o.ID); n != 2 {
			t.Fatalf("distinct=%v: %d tickets for 2 places", distinct, n)
		}
		if n := s.count(t, `SELECT count(*) FROM ledger_entries WHERE reference = ?`, "order:"+o.ID.String()); n != 1 {
			t.Fatalf("distinct=%v: %d ledger entries", distinct, n)
		}
	}
	if n := s.count(t, `SELECT sum(sold) FROM inv_counter_shards`); n != 6 {
		t.Fatalf("pool sold %d for 3 orders of 2", n)
	}
}

// A failed payment fails the order and releases its hold; a bad signature
// or another chain's payment changes nothing.
func TestWebhookFailureAndRefusals(t *testing.T) {
	t.Parallel()
	env, inv := startEnv(t)
	s := newShop(t, env, inv, "whfail")
	other := newShop(t, env, inv, "whother")
	ev := s.event(t, "Fail Night")
	s.configure(t, ev, simpleSetup(1, 10, 0, nil))
	b := s.buyer(t)
	h := s.mustHold(t, ev, b, map[string]any{"seats": []string{"A-1-9"}})
	o := s.order(t, b, h.ID)

	payload, header, err := inventory.TestWebhookEvent("whsec_wrong", "evt_bad", "payment_intent.succeeded", *o.PaymentIntentID, o.AmountMinor, o.Currency, s.slug, o.ID)
	if err != nil {
		t.Fatal(err)
	}
	res := env.Do(t, "POST", s.slug, "/api/v1/webhooks/stripe", "", payload, "Stripe-Signature", header)
	if res.Status != http.StatusBadRequest || res.Code() != "invalid_signature" {
		t.Fatalf("bad signature: %d %s", res.Status, res.Body)
	}
	// Correctly signed, but delivered to another chain's host.
	payload, header, _ = inventory.TestWebhookEvent("whsec_test_inventory", "evt_cross", "payment_intent.succeeded", *o.PaymentIntentID, o.AmountMinor, o.Currency, s.slug, o.ID)
	res = env.Do(t, "POST", other.slug, "/api/v1/webhooks/stripe", "", payload, "Stripe-Signature", header)
	if res.Status != http.StatusBadRequest || res.Code() != "tenant_mismatch" {
		t.Fatalf("cross-tenant webhook: %d %s", res.Status, res.Body)
	}
	if st := s.seatState(t, ev, "A-1-9"); st != "held" {
		t.Fatalf("seat %s after refused webhooks", st)
	}
	res = s.webhook(t, "evt_fail_1", "payment_intent.payment_failed", o.Order)
	if !strings.Contains(string(res.Body), `"outcome":"failed"`) {
		t.Fatalf("failed payment: %s", res.Body)
	}
	if st := s.seatState(t, ev, "A-1-9"); st != "available" {
		t.Fatalf("seat %s after a failed payment", st)
	}
	// A later successful attempt on the same order is honoured (re-sold).
	res = s.webhook(t, "evt_fail_2", "payment_intent.succeeded", o.Order)
	if !strings.Contains(string(res.Body), `"outcome":"resold"`) {
		t.Fatalf("success after failure: %s", res.Body)
	}
	// Through the storefront's test-mode pay step (stripe-mock + signed event).
	b2 := s.buyer(t)
	h2 := s.mustHold(t, ev, b2, map[string]any{"seats": []string{"A-1-10"}})
	o2 := s.order(t, b2, h2.ID)
	res = env.Do(t, "POST", s.slug, "/api/v1/orders/"+o2.ID.String()+"/test-pay", "", nil, "X-Buyer-Token", b2)
	mustStatus(t, res, http.StatusOK)
	if st := s.seatState(t, ev, "A-1-10"); st != "sold" {
		t.Fatalf("test-mode pay left the seat %s: %s", st, res.Body)
	}
}
