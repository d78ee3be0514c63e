package inventory_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/modules/inventory"
)

// payPaths is how many payment_intent.succeeded events each path settled
// since the last call.
type payPaths struct {
	inv           *inventory.Module
	fast, general int64
}

func (p *payPaths) since() (fast, general int64) {
	f, g := p.inv.PaymentPaths()
	fast, general = f-p.fast, g-p.general
	p.fast, p.general = f, g
	return fast, general
}

// outcome posts a signed payment_intent.succeeded for o with this amount
// and answers its outcome.
func (s *shop) payOutcome(t testing.TB, eventID string, o inventory.Order, amount int64) string {
	t.Helper()
	pi := ""
	if o.PaymentIntentID != nil {
		pi = *o.PaymentIntentID
	}
	payload, header, err := inventory.TestWebhookEvent("whsec_test_inventory", eventID, "payment_intent.succeeded", pi, amount, o.Currency, s.slug, o.ID)
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.env.Try("POST", s.slug, "/api/v1/webhooks/stripe", "", payload, "Stripe-Signature", header)
	if err != nil {
		t.Fatal(err)
	}
	mustStatus(t, res, http.StatusOK)
	var out struct{ Outcome string }
	res.JSON(t, &out)
	return out.Outcome
}

// The common case takes the fast path and writes what the general path
// writes; each uncommon case takes the general path, and what the fast
// path wrote before finding it uncommon (the event, the order paid) is
// rolled back: the general path finds the event fresh and the order as it
// was.
func TestPayFastCommonCaseAndEachUncommonCase(t *testing.T) {
	s, ev, cfg := onSale(t, "payfast", "Fast Night", simpleSetup(1, 20, 100, nil))
	floor, stalls := tierID(t, cfg, "Floor"), tierID(t, cfg, "Stalls")
	paths := &payPaths{inv: s.inv}
	newOrder := func(body map[string]any) orderOut {
		b := s.buyer(t)
		h := s.mustHold(t, ev, b, body)
		return s.order(t, b, h.ID)
	}
	gaBody := map[string]any{"tier_id": floor, "quantity": 2}
	expect := func(what string, got, want string, wantFast, wantGeneral int64) {
		t.Helper()
		f, g := paths.since()
		if got != want || f != wantFast || g != wantGeneral {
			t.Fatalf("%s: outcome %q by %d fast and %d general, want %q by %d and %d", what, got, f, g, want, wantFast, wantGeneral)
		}
	}
	eventsRecorded := func(id string) int64 {
		return s.count(t, `SELECT count(*) FROM inv_stripe_events WHERE id = ?`, id)
	}

	// The event's first payment makes its ticket key: the general path.
	first := newOrder(gaBody)
	expect("first payment", s.payOutcome(t, "evt_pf_first", first.Order, first.AmountMinor), "paid", 0, 1)

	// The common case, seats and GA in one hold: fast, with every row the
	// general path writes.
	b := s.buyer(t)
	h := s.mustHold(t, ev, b, map[string]any{"seats": []string{"A-1-1", "A-1-2"}})
	h2 := s.mustHold(t, ev, b, map[string]any{"tier_id": floor, "quantity": 3})
	if h2.ID != h.ID {
		t.Fatalf("the second hold did not join the buyer's cart")
	}
	o := s.order(t, b, h.ID)
	expect("common case", s.payOutcome(t, "evt_pf_common", o.Order, o.AmountMinor), "paid", 1, 0)
	if n := s.count(t, `SELECT count(*) FROM inv_tickets WHERE order_id = ? AND status = 'valid' AND key_id = 1 AND token <> ''`, o.ID); n != 5 {
		t.Fatalf("%d valid signed tickets, want 5", n)
	}
	if n := s.count(t, `SELECT count(*) FROM inv_tickets WHERE order_id = ? AND seat_id IN ('A-1-1', 'A-1-2')`, o.ID); n != 2 {
		t.Fatalf("%d seated tickets, want 2", n)
	}
	if n := s.count(t, `SELECT count(*) FROM inv_seats WHERE event_id = ? AND order_id = ? AND state = 'sold' AND hold_id IS NULL`, ev, o.ID); n != 2 {
		t.Fatalf("%d seats sold to the order, want 2", n)
	}
	if n := s.count(t, `SELECT count(*) FROM inv_orders WHERE id = ? AND status = 'paid' AND paid_at IS NOT NULL AND payment_intent_id = ?`, o.ID, *o.PaymentIntentID); n != 1 {
		t.Fatalf("order not paid")
	}
	if n := s.count(t, `SELECT count(*) FROM inv_holds WHERE id = ? AND status = 'sold' AND closed_at IS NOT NULL`, h.ID); n != 1 {
		t.Fatalf("hold not sold")
	}
	if n := s.count(t, `SELECT count(*) FROM mail_outbox WHERE purpose_key = ? AND kind = 'inventory.tickets' AND body LIKE '%your 5 tickets are%'`, "order:"+o.ID.String()+":tickets"); n != 1 {
		t.Fatalf("tickets mail not queued")
	}
	if n := s.count(t, `SELECT count(*) FROM ledger_entries WHERE reference = ? AND kind = 'ticket.sale' AND amount_minor = ? AND memo = ?`,
		"order:"+o.ID.String(), o.AmountMinor, fmt.Sprintf("5 tickets, event %s, payment %s", ev, *o.PaymentIntentID)); n != 1 {
		t.Fatalf("ledger entry missing or different")
	}
	// 2 + 3 GA units sold, none held; the buyer holds nothing now.
	if n := s.count(t, `SELECT coalesce(sum(held), 0) FROM inv_counter_shards`); n != 0 {
		t.Fatalf("%d units still held", n)
	}
	if n := s.count(t, `SELECT coalesce(sum(sold), 0) FROM inv_counter_shards sh JOIN inv_counters c ON c.id = sh.counter_id WHERE c.kind = 'pool'`); n != 5 {
		t.Fatalf("pool sold %d, want 5", n)
	}
	if n := s.count(t, `SELECT coalesce(sum(holds), 0) FROM inv_buyer_counters WHERE event_id = ?`, ev); n != 0 {
		t.Fatalf("buyer counters still count %d holds", n)
	}

	// A duplicate delivery.
	expect("duplicate", s.payOutcome(t, "evt_pf_common", o.Order, o.AmountMinor), "duplicate", 0, 1)

	// Another amount: reviewed, the order untouched.
	o = newOrder(gaBody)
	expect("mismatch", s.payOutcome(t, "evt_pf_mismatch", o.Order, o.AmountMinor+1), "review", 0, 1)
	if n := s.count(t, `SELECT count(*) FROM inv_orders WHERE id = ? AND status = 'pending'`, o.ID); n != 1 {
		t.Fatalf("the mismatched payment changed the order")
	}
	expect("then the right payment", s.payOutcome(t, "evt_pf_mismatch_ok", o.Order, o.AmountMinor), "paid", 1, 0)

	// A hold expired before the money: re-sold by the general path. The
	// fast path had marked the order paid before it found the hold lapsed:
	// rolled back, or the general path would answer duplicate.
	o = newOrder(map[string]any{"seats": []string{"A-1-5"}})
	s.lapse(t, o.HoldID)
	if _, err := s.inv.SweepHolds(context.Background(), s.t); err != nil {
		t.Fatal(err)
	}
	expect("lapsed hold", s.payOutcome(t, "evt_pf_lapsed", o.Order, o.AmountMinor), "resold", 0, 1)
	if n := eventsRecorded("evt_pf_lapsed"); n != 1 {
		t.Fatalf("event recorded %d times", n)
	}

	// An order failed first: honoured by the general path.
	o = newOrder(gaBody)
	mustStatus(t, s.webhook(t, "evt_pf_failed", "payment_intent.payment_failed", o.Order), http.StatusOK)
	expect("failed order", s.payOutcome(t, "evt_pf_failed_then_paid", o.Order, o.AmountMinor), "resold", 0, 1)

	// A resale reservation: the resale room settles it (here: refunds, its
	// listing being gone).
	o = newOrder(map[string]any{"seats": []string{"A-1-7"}})
	var firstTicket uuid.UUID
	s.sql(t, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT id FROM inv_tickets WHERE order_id = ? LIMIT 1`, first.ID).Row().Scan(&firstTicket)
	})
	s.sql(t, func(tx *gorm.DB) error {
		lid := uuid.New()
		if err := tx.Exec(`INSERT INTO inv_resale_listings (id, event_id, tier_id, ticket_id, seller_order_id, seller_name, seller_email,
			price_minor, cap_minor, currency, commission_bps, status) VALUES (?, ?, ?, ?, ?, 'Seller', 'seller@example.com', 5000, 5000, 'EUR', 0, 'delisted')`,
			lid, ev, stalls, firstTicket, first.ID).Error; err != nil {
			return err
		}
		return tx.Exec(`INSERT INTO inv_resale_holds (hold_id, listing_id) VALUES (?, ?)`, o.HoldID, lid).Error
	})
	expect("resale reservation", s.payOutcome(t, "evt_pf_resale", o.Order, o.AmountMinor), "refunded", 0, 1)

	// A cancelled event: refunded.
	o = newOrder(gaBody)
	s.sql(t, func(tx *gorm.DB) error {
		return tx.Exec(`INSERT INTO inv_event_cancellations (event_id) VALUES (?)`, ev).Error
	})
	expect("cancelled event", s.payOutcome(t, "evt_pf_cancelled", o.Order, o.AmountMinor), "refunded", 0, 1)
	if n := eventsRecorded("evt_pf_cancelled"); n != 1 {
		t.Fatalf("event recorded %d times", n)
	}

	// An unknown order.
	ghost := o.Order
	ghost.ID = uuid.New()
	expect("unknown order", s.payOutcome(t, "evt_pf_ghost", ghost, o.AmountMinor), "ignored", 0, 1)
}

// A chain that limits tickets per card checks the card that paid: the
// general path, every time.
func TestPayFastNotWithACardToCheck(t *testing.T) {
	s, ev, cfg := onSale(t, "payfastcard", "Card Night", simpleSetup(1, 10, 100, nil))
	floor := tierID(t, cfg, "Floor")
	paths := &payPaths{inv: s.inv}
	// The event's key first (the general path either way).
	o, status, code := checkout(t, s, ev, floor, s.buyer(t), "first@example.com", "198.51.100.1")
	if status != http.StatusCreated {
		t.Fatalf("order: %d %s", status, code)
	}
	if got := s.payOutcome(t, "evt_pfc_0", o, o.AmountMinor); got != "paid" {
		t.Fatalf("outcome %s", got)
	}
	o, status, code = checkout(t, s, ev, floor, s.buyer(t), "second@example.com", "198.51.100.2")
	if status != http.StatusCreated {
		t.Fatalf("order: %d %s", status, code)
	}
	paths.since()
	setLimits(t, s, map[string]any{"max_tickets_per_card": 2, "min_checkout_seconds": 0})
	if got := s.payOutcome(t, "evt_pfc_1", o, o.AmountMinor); got != "paid" {
		t.Fatalf("outcome %s", got)
	}
	if f, g := paths.since(); f != 0 || g != 1 {
		t.Fatalf("%d fast and %d general, want the general path", f, g)
	}
	if n := s.count(t, `SELECT count(*) FROM inv_orders WHERE id = ? AND card_fingerprint IS NOT NULL`, o.ID); n != 1 {
		t.Fatalf("the card was not checked")
	}
}

// Deliveries of one payment racing each other (the same event id, distinct
// ones) and the hold's expiry, with the fast and the general path both in
// play: every order is settled exactly once, its seats and units sold once,
// its tickets issued once, and the ledger holds exactly its money.
func TestPayFastRacesGeneralPathAndExpiry(t *testing.T) {
	s, ev, cfg := onSale(t, "payfastrace", "Race Night", simpleSetup(2, 20, 200, nil))
	floor := tierID(t, cfg, "Floor")
	paths := &payPaths{inv: s.inv}
	// The event's key, so the fast path is in play from the start.
	// An order never paid: its unit stays held throughout.
	bf := s.buyer(t)
	first := s.order(t, bf, s.mustHold(t, ev, bf, map[string]any{"tier_id": floor, "quantity": 1}).ID)
	b0 := s.buyer(t)
	o0 := s.order(t, b0, s.mustHold(t, ev, b0, map[string]any{"tier_id": floor, "quantity": 1}).ID)
	if got := s.payOutcome(t, "evt_pfr_key", o0.Order, o0.AmountMinor); got != "paid" {
		t.Fatalf("outcome %s", got)
	}
	paths.since()

	const orders = 24
	type bought struct {
		o     orderOut
		units int
		seat  string
	}
	all := make([]bought, orders)
	for i := range all {
		b := s.buyer(t)
		seat := fmt.Sprintf("A-%d-%d", 1+i%2, 1+i/2)
		h := s.mustHold(t, ev, b, map[string]any{"seats": []string{seat}})
		units := 1 + i%3
		s.mustHold(t, ev, b, map[string]any{"tier_id": floor, "quantity": units})
		all[i] = bought{o: s.order(t, b, h.ID), units: units, seat: seat}
		if i%3 == 0 {
			s.lapse(t, h.ID) // a third race the expiry sweep
		}
	}
	outcomes := make([][]string, orders)
	var mu sync.Mutex
	const deliveries = 6
	parallel(orders*deliveries+orders/3, func(i int) {
		if i >= orders*deliveries {
			if _, err := s.inv.SweepHolds(context.Background(), s.t); err != nil {
				t.Errorf("sweep: %v", err)
			}
			return
		}
		n, d := i/deliveries, i%deliveries
		id := fmt.Sprintf("evt_pfr_%d", n)
		if d >= deliveries/2 {
			id = fmt.Sprintf("evt_pfr_%d_%d", n, d) // distinct events of one payment
		}
		o := all[n].o.Order
		pi := *o.PaymentIntentID
		payload, header, err := inventory.TestWebhookEvent("whsec_test_inventory", id, "payment_intent.succeeded", pi, o.AmountMinor, o.Currency, s.slug, o.ID)
		if err != nil {
			t.Error(err)
			return
		}
		res, err := s.env.Try("POST", s.slug, "/api/v1/webhooks/stripe", "", payload, "Stripe-Signature", header)
		if err != nil || res.Status != http.StatusOK {
			t.Errorf("webhook: %v %d %s", err, res.Status, res.Body)
			return
		}
		var out struct{ Outcome string }
		res.JSON(t, &out)
		mu.Lock()
		outcomes[n] = append(outcomes[n], out.Outcome)
		mu.Unlock()
	})
	if t.Failed() {
		t.FailNow()
	}
	fast, general := paths.since()
	if fast == 0 {
		t.Fatalf("no delivery took the fast path (%d general)", general)
	}
	t.Logf("fast %d, general %d", fast, general)
	for n, b := range all {
		settled := 0
		for _, oc := range outcomes[n] {
			switch oc {
			case "paid", "resold":
				settled++
			case "duplicate":
			default:
				t.Fatalf("order %d: outcome %s in %v", n, oc, outcomes[n])
			}
		}
		if settled != 1 {
			t.Fatalf("order %d settled %d times: %v", n, settled, outcomes[n])
		}
		if got := s.count(t, `SELECT count(*) FROM inv_tickets WHERE order_id = ? AND status = 'valid'`, b.o.ID); got != int64(1+b.units) {
			t.Fatalf("order %d: %d tickets for %d places", n, got, 1+b.units)
		}
		if got := s.count(t, `SELECT count(*) FROM inv_seats WHERE event_id = ? AND id = ? AND state = 'sold' AND order_id = ?`, ev, b.seat, b.o.ID); got != 1 {
			t.Fatalf("order %d: seat %s not sold to it", n, b.seat)
		}
		if got := s.count(t, `SELECT coalesce(sum(amount_minor), 0) FROM ledger_entries WHERE reference = ?`, "order:"+b.o.ID.String()); got != b.o.AmountMinor {
			t.Fatalf("order %d: ledger holds %d of %d", n, got, b.o.AmountMinor)
		}
		if got := s.count(t, `SELECT count(*) FROM ledger_entries WHERE reference = ?`, "order:"+b.o.ID.String()); got != 1 {
			t.Fatalf("order %d: %d ledger entries", n, got)
		}
		if got := s.count(t, `SELECT count(*) FROM mail_outbox WHERE purpose_key = ?`, "order:"+b.o.ID.String()+":tickets"); got != 1 {
			t.Fatalf("order %d: %d tickets mails", n, got)
		}
	}
	units := 1 // o0's
	for _, b := range all {
		units += b.units
	}
	if got := s.count(t, `SELECT count(*) FROM inv_tickets WHERE event_id = ? AND status = 'valid' AND seat_id IS NULL`, ev); got != int64(units) {
		t.Fatalf("%d GA tickets, want %d", got, units)
	}
	// Sold units match the GA tickets; only the first order's hold (never
	// paid) still holds a unit.
	if got := s.count(t, `SELECT coalesce(sum(sh.sold), 0) FROM inv_counter_shards sh JOIN inv_counters c ON c.id = sh.counter_id WHERE c.kind = 'pool'`); got != int64(units) {
		t.Fatalf("pool sold %d, want %d", got, units)
	}
	if got := s.count(t, `SELECT coalesce(sum(sh.held), 0) FROM inv_counter_shards sh JOIN inv_counters c ON c.id = sh.counter_id WHERE c.kind = 'pool'`); got != 1 {
		t.Fatalf("pool holds %d, want 1 (the unpaid order's)", got)
	}
	if got := s.count(t, `SELECT count(*) FROM inv_buyer_counters WHERE event_id = ? AND holds < 0`, ev); got != 0 {
		t.Fatalf("%d buyer counters below zero", got)
	}
	if !strings.HasPrefix(*first.PaymentIntentID, "pi_") {
		t.Fatalf("first order without a PaymentIntent")
	}
}
