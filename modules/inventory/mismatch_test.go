package inventory_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/modules/inventory"
)

// A signed payment that does not match a paid order (another amount,
// currency or PaymentIntent) is recorded for review and refunded on its own:
// the order stays paid, its tickets valid, its seats sold; delivered again,
// it changes nothing more. The same payment against an unpaid order leaves
// that order pending too.
func TestMismatchedPaymentRecordedForReviewNotRefundingTheOrder(t *testing.T) {
	t.Parallel()
	s, ev, _ := onSale(t, "mismatch", "Mismatch Night", simpleSetup(1, 10, 0, nil))
	env, inv := s.env, s.inv

	b := s.buyer(t)
	h := s.mustHold(t, ev, b, map[string]any{"seats": []string{"A-1-1", "A-1-2"}})
	paid := s.order(t, b, h.ID)
	if res := s.webhook(t, "evt_mm_pay", "payment_intent.succeeded", paid.Order); !strings.Contains(string(res.Body), `"outcome":"paid"`) {
		t.Fatalf("payment: %s", res.Body)
	}
	b2 := s.buyer(t)
	h2 := s.mustHold(t, ev, b2, map[string]any{"seats": []string{"A-1-5"}})
	pending := s.order(t, b2, h2.ID)

	cases := []struct {
		name     string
		order    inventory.Order
		pi       string
		amount   int64
		currency string
		reason   string // what the review must say was wrong
	}{
		{"amount", paid.Order, *paid.PaymentIntentID, paid.AmountMinor + 1, paid.Currency, "differs from the order's amount"},
		{"currency", paid.Order, *paid.PaymentIntentID, paid.AmountMinor, "USD", "differs from the order's currency"},
		{"intent", paid.Order, "pi_other_" + strings.ReplaceAll(uuid.NewString(), "-", ""), paid.AmountMinor, paid.Currency, "another PaymentIntent"},
		{"pending-amount", pending.Order, *pending.PaymentIntentID, pending.AmountMinor * 2, pending.Currency, "differs from the order's amount"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// Distinct PaymentIntents per case: each is its own payment.
			pi := c.pi
			if c.name != "intent" {
				pi = c.pi + "_" + c.name
			}
			evt := "evt_mm_" + c.name
			payload, header, err := inventory.TestWebhookEvent("whsec_test_inventory", evt, "payment_intent.succeeded", pi, c.amount, c.currency, s.slug, c.order.ID)
			if err != nil {
				t.Fatal(err)
			}
			res := env.Do(t, "POST", s.slug, "/api/v1/webhooks/stripe", "", payload, "Stripe-Signature", header)
			mustStatus(t, res, http.StatusOK)
			if !strings.Contains(string(res.Body), `"outcome":"review"`) {
				t.Fatalf("mismatched payment %d: %s", i, res.Body)
			}
			// The amount and currency are checked before the intent: each case
			// is recorded for what it got wrong, not only for its intent.
			if n := s.count(t, `SELECT count(*) FROM inv_payment_reviews WHERE payment_intent_id = ? AND order_id = ? AND amount_minor = ? AND currency = ?
				AND stripe_refund_id LIKE 're_%' AND strpos(reason, ?) > 0`,
				pi, c.order.ID, c.amount, c.currency, c.reason); n != 1 {
				t.Fatalf("payment under review refunded: %d rows", n)
			}
			if n := s.count(t, `SELECT coalesce(sum(amount_minor), 0) FROM ledger_entries WHERE reference = ?`, "payment:"+pi); n != 0 {
				t.Fatalf("ledger of the reviewed payment sums to %d, want 0 (received and returned)", n)
			}
			if n := s.count(t, `SELECT count(*) FROM ledger_entries WHERE reference = ?`, "payment:"+pi); n != 2 {
				t.Fatalf("%d ledger entries for the reviewed payment, want 2", n)
			}
			// Another delivery of the same payment: nothing more.
			before := s.count(t, `SELECT count(*) FROM inv_payment_reviews`)
			payload, header, _ = inventory.TestWebhookEvent("whsec_test_inventory", evt+"_again", "payment_intent.succeeded", pi, c.amount, c.currency, s.slug, c.order.ID)
			res = env.Do(t, "POST", s.slug, "/api/v1/webhooks/stripe", "", payload, "Stripe-Signature", header)
			mustStatus(t, res, http.StatusOK)
			if n := s.count(t, `SELECT count(*) FROM inv_payment_reviews`); n != before {
				t.Fatalf("%d reviews after a redelivery, want %d", n, before)
			}
			if n := s.count(t, `SELECT count(*) FROM ledger_entries WHERE reference = ?`, "payment:"+pi); n != 2 {
				t.Fatalf("%d ledger entries after a redelivery", n)
			}
		})
	}

	got, err := inv.Service().Order(t.Context(), s.t, paid.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != inventory.OrderPaid {
		t.Fatalf("paid order is %s after mismatched payments", got.Status)
	}
	if n := s.count(t, `SELECT count(*) FROM inv_tickets WHERE order_id = ? AND status = 'valid'`, paid.ID); n != 2 {
		t.Fatalf("%d valid tickets, want 2", n)
	}
	if s.seatState(t, ev, "A-1-1") != "sold" || s.seatState(t, ev, "A-1-2") != "sold" {
		t.Fatal("the paid order's seats are no longer sold")
	}
	checks := map[string]int64{
		`SELECT count(*) FROM inv_refunds`:                                                                0,
		`SELECT count(*) FROM ledger_entries WHERE reference LIKE 'order:%'`:                              1, // the sale only
		`SELECT count(*) FROM inv_orders WHERE status = 'pending' AND id = '` + pending.ID.String() + `'`: 1,
	}
	for q, want := range checks {
		if n := s.count(t, q); n != want {
			t.Errorf("%s = %d, want %d", q, n, want)
		}
	}
	if st := s.seatState(t, ev, "A-1-5"); st != "held" {
		t.Fatalf("pending order's seat is %s", st)
	}
	// The pending order's own payment still pays it.
	if res := s.webhook(t, "evt_mm_pending_pay", "payment_intent.succeeded", pending.Order); !strings.Contains(string(res.Body), `"outcome":"paid"`) {
		t.Fatalf("the pending order's own payment: %s", res.Body)
	}
}

// The database refuses a refunded order that keeps a valid ticket.
func TestRefundedOrderCannotKeepValidTickets(t *testing.T) {
	t.Parallel()
	s, ev, _ := onSale(t, "refguard", "Guard Night", simpleSetup(1, 4, 0, nil))
	env := s.env
	b := s.buyer(t)
	h := s.mustHold(t, ev, b, map[string]any{"seats": []string{"A-1-1"}})
	o := s.order(t, b, h.ID)
	s.webhook(t, "evt_guard_pay", "payment_intent.succeeded", o.Order)
	err := env.App.Tx(t.Context(), s.t, func(tx *gorm.DB) error {
		return tx.Exec(`UPDATE inv_orders SET status = 'refunded' WHERE id = ?`, o.ID).Error
	})
	if err == nil || !strings.Contains(err.Error(), "refunded but has valid tickets") {
		t.Fatalf("refunding an order without voiding its tickets: %v", err)
	}
}
