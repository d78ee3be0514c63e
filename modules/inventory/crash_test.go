package inventory_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/modules/inventory"
)

// A request that dies between its order's commit and the PaymentIntent
// leaves no debris: retried with the same Idempotency-Key it completes that
// very order (no 409 while a stale claim lingers), and an order nobody
// retries is closed when its hold ends. A payment that still arrives for
// the closed order is honoured, not lost.
func TestOrderRequestKilledMidwayRetriesAndCloses(t *testing.T) {
	t.Parallel()
	s, ev, _ := onSale(t, "ordcrash", "Crash Night", simpleSetup(1, 10, 0, nil))
	env, inv := s.env, s.inv
	post := func(buyer, key string, holdID uuid.UUID) (int, orderOut, string) {
		res := env.Do(t, "POST", s.slug, "/api/v1/orders", "", map[string]any{"hold_id": holdID, "buyer": map[string]string{"email": "fan@example.com", "name": "A Fan"}},
			"Idempotency-Key", key, "X-Buyer-Token", buyer)
		var o orderOut
		if res.Status == http.StatusCreated {
			res.JSON(t, &o)
		}
		return res.Status, o, res.Code()
	}
	unpaid := func() int64 {
		return s.count(t, `SELECT count(*) FROM inv_orders WHERE status = 'pending' AND payment_intent_id IS NULL`)
	}

	// Killed, then retried with the same key: the same order completes.
	b1 := s.buyer(t)
	h1 := s.mustHold(t, ev, b1, map[string]any{"seats": []string{"A-1-1"}})
	key := uuid.NewString()
	inv.CrashAfterOrderCommit()
	if st, _, _ := post(b1, key, h1.ID); st != http.StatusInternalServerError {
		t.Fatalf("crashed request answered %d", st)
	}
	if n := unpaid(); n != 1 {
		t.Fatalf("%d pending orders without a PaymentIntent after the crash, want 1", n)
	}
	st, o1, code := post(b1, key, h1.ID)
	if st != http.StatusCreated {
		t.Fatalf("retry after the crash: %d %s", st, code)
	}
	if o1.PaymentIntentID == nil || o1.ClientSecret == nil || o1.Status != inventory.OrderPending {
		t.Fatalf("retried order has no PaymentIntent: %+v", o1.Order)
	}
	if n := s.count(t, `SELECT count(*) FROM inv_orders WHERE hold_id = ?`, h1.ID); n != 1 {
		t.Fatalf("%d orders for one hold", n)
	}
	if st, again, _ := post(b1, key, h1.ID); st != http.StatusCreated || again.ID != o1.ID || *again.PaymentIntentID != *o1.PaymentIntentID {
		t.Fatalf("second retry: %d %v", st, again.ID)
	}
	if st, _, code := post(b1, key, uuid.New()); st != http.StatusUnprocessableEntity || code != "idempotency_key_reused" {
		t.Fatalf("key reused for another hold: %d %s", st, code)
	}
	if n := unpaid(); n != 0 {
		t.Fatalf("%d pending orders without a PaymentIntent after the retry", n)
	}

	// Killed and never retried: closed when the hold ends.
	b2 := s.buyer(t)
	h2 := s.mustHold(t, ev, b2, map[string]any{"seats": []string{"A-1-2"}})
	key2 := uuid.NewString()
	inv.CrashAfterOrderCommit()
	if st, _, _ := post(b2, key2, h2.ID); st != http.StatusInternalServerError {
		t.Fatalf("crashed request answered %d", st)
	}
	var crashed inventory.Order
	for _, o := range s.orders(t, h2.ID) {
		crashed = o
	}
	s.lapse(t, h2.ID)
	if n, err := inv.Service().SweepHolds(t.Context(), s.t, 10); err != nil || n != 1 {
		t.Fatalf("sweep: %d %v", n, err)
	}
	if n := unpaid(); n != 0 {
		t.Fatalf("%d pending orders without a PaymentIntent after their hold ended", n)
	}
	if got, _ := inv.Service().Order(t.Context(), s.t, crashed.ID); got.Status != inventory.OrderCancelled {
		t.Fatalf("crashed order is %s after its hold ended, want cancelled", got.Status)
	}
	// A retry now is told the hold is gone, and makes no PaymentIntent.
	if st, _, code := post(b2, key2, h2.ID); st != http.StatusGone || code != "hold_expired" {
		t.Fatalf("retry after the hold ended: %d %s", st, code)
	}
	if n := s.count(t, `SELECT count(*) FROM inv_orders WHERE id = ? AND payment_intent_id IS NULL AND status = 'cancelled'`, crashed.ID); n != 1 {
		t.Fatal("the closed order changed on a retry")
	}
	// Money that still arrives for it is honoured (the seat is free).
	pi := "pi_late_" + strings.ReplaceAll(uuid.NewString(), "-", "")
	crashed.PaymentIntentID = &pi
	if res := s.webhook(t, "evt_crash_late", "payment_intent.succeeded", crashed); !strings.Contains(string(res.Body), `"outcome":"resold"`) {
		t.Fatalf("late payment of a closed order: %s", res.Body)
	}
	if st := s.seatState(t, ev, "A-1-2"); st != "sold" {
		t.Fatalf("seat %s", st)
	}
}

// orders lists a hold's orders (test set-up and checks only).
func (s *shop) orders(t testing.TB, holdID uuid.UUID) []inventory.Order {
	t.Helper()
	var out []inventory.Order
	s.sql(t, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT id, event_id, hold_id, buyer_id, email, name, amount_minor, currency, status, payment_intent_id, client_secret, created_at, paid_at, note
			FROM inv_orders WHERE hold_id = ?`, holdID).Scan(&out).Error
	})
	if len(out) != 1 {
		t.Fatalf("%d orders for hold %s", len(out), holdID)
	}
	return out
}
