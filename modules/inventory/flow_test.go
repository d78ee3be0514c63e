package inventory_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"

	"marquee/modules/inventory"
)

// The whole purchase through the API: configure, hold seats, order, pay by
// a signed webhook, tickets that verify offline with the published key.
func TestPurchaseFlow(t *testing.T) {
	t.Parallel()
	s, ev, cfg := onSale(t, "flow", "Flow Night", simpleSetup(3, 10, 100, map[string]int{"web": 120, "box_office": 10}))
	env := s.env
	if cfg.Seats.Total != 30 || len(cfg.Zones) != 2 || len(cfg.Counters) != 3 {
		t.Fatalf("configured: %+v", cfg)
	}

	buyer := s.buyer(t)
	h := s.mustHold(t, ev, buyer, map[string]any{"seats": []string{"A-1-1", "A-1-2"}})
	if h.AmountMinor != 10000 || h.Currency != "EUR" || len(h.Seats) != 2 || h.ExpiresAt.IsZero() {
		t.Fatalf("hold: %+v", h)
	}
	res := env.Do(t, "GET", s.slug, "/api/v1/events/"+ev+"/availability", "", nil)
	mustStatus(t, res, http.StatusOK)
	var av inventory.Availability
	res.JSON(t, &av)
	states := map[string]string{}
	for _, st := range av.Seats {
		states[st.ID] = st.State
	}
	if states["A-1-1"] != "held" || states["A-1-3"] != "available" || len(av.Seats) != 30 {
		t.Fatalf("availability after hold: %v", states)
	}

	o := s.order(t, buyer, h.ID)
	if o.Status != "pending" || o.ClientSecret == nil || o.PaymentIntentID == nil || o.AmountMinor != 10000 {
		t.Fatalf("order: %+v", o)
	}
	// Asking again for the same hold gives the same order.
	o2 := s.order(t, buyer, h.ID)
	if o2.ID != o.ID || *o2.PaymentIntentID != *o.PaymentIntentID {
		t.Fatalf("second order for the hold: %+v", o2)
	}

	res = s.webhook(t, "evt_flow_1", "payment_intent.succeeded", o.Order)
	mustStatus(t, res, http.StatusOK)
	if !strings.Contains(string(res.Body), `"outcome":"paid"`) {
		t.Fatalf("webhook: %s", res.Body)
	}
	res = env.Do(t, "GET", s.slug, o.OrderURL, "", nil)
	if !strings.HasPrefix(o.OrderURL, "/orders/") {
		t.Fatalf("order url %s", o.OrderURL)
	}
	res = env.Do(t, "GET", s.slug, "/api/v1"+o.OrderURL, "", nil)
	mustStatus(t, res, http.StatusOK)
	var paid orderOut
	res.JSON(t, &paid)
	if paid.Status != "paid" || len(paid.Tickets) != 2 {
		t.Fatalf("paid order: %+v", paid)
	}
	// Without the signature the order is not found.
	res = env.Do(t, "GET", s.slug, "/api/v1/orders/"+o.ID.String(), "", nil)
	mustStatus(t, res, http.StatusNotFound)

	res = env.Do(t, "GET", s.slug, "/api/v1/events/"+ev+"/public-key", "", nil)
	mustStatus(t, res, http.StatusOK)
	var key struct {
		PublicKey string `json:"public_key"`
	}
	res.JSON(t, &key)
	pub, err := base64.RawURLEncoding.DecodeString(key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range paid.Tickets {
		c, err := inventory.VerifyTicketV2(ed25519.PublicKey(pub), s.slug, tk.Token)
		if err != nil || c.TicketID != tk.ID || c.EventID.String() != ev || c.ZoneID != tk.ZoneID || c.KeyID != 1 || tk.SeatID == nil {
			t.Fatalf("token of %s: %+v %v", tk.ID, c, err)
		}
		if _, err := inventory.VerifyTicketV2(ed25519.PublicKey(pub), s.slug, tk.Token[:len(tk.Token)-3]+"AAA"); err == nil {
			t.Fatal("a tampered token verified")
		}
		if _, err := inventory.VerifyTicketV2(ed25519.PublicKey(pub), "another-chain", tk.Token); err == nil {
			t.Fatal("a token verified for another chain")
		}
	}
	if n := s.count(t, `SELECT count(*) FROM inv_seats WHERE state = 'sold'`); n != 2 {
		t.Fatalf("%d sold seats", n)
	}
	if n := s.count(t, `SELECT count(*) FROM ledger_entries WHERE kind = 'ticket.sale' AND amount_minor = 10000`); n != 1 {
		t.Fatalf("%d ledger sales", n)
	}
	if n := s.count(t, `SELECT sum(sold) FROM inv_counter_shards sh JOIN inv_counters c ON c.id = sh.counter_id WHERE c.channel = 'web'`); n != 2 {
		t.Fatalf("web quota sold %d", n)
	}

	// GA: hold a quantity, release it, the pool is whole again.
	h2 := s.mustHold(t, ev, s.buyer(t), map[string]any{"tier_id": tierID(t, cfg, "Floor"), "quantity": 4})
	if h2.Quantity != 4 || h2.AmountMinor != 12000 {
		t.Fatalf("GA hold %+v", h2)
	}
	if n := s.count(t, `SELECT sum(held) FROM inv_counter_shards sh JOIN inv_counters c ON c.id = sh.counter_id WHERE c.kind = 'pool'`); n != 4 {
		t.Fatalf("pool held %d", n)
	}
	// Someone else cannot release it.
	res = env.Do(t, "DELETE", s.slug, "/api/v1/holds/"+h2.ID.String(), "", nil, "X-Buyer-Token", s.buyer(t))
	mustStatus(t, res, http.StatusNotFound)
	res = env.Do(t, "DELETE", s.slug, "/api/v1/holds/"+h2.ID.String(), s.tok, nil)
	mustStatus(t, res, http.StatusNoContent)
	if n := s.count(t, `SELECT sum(held) FROM inv_counter_shards`); n != 0 {
		t.Fatalf("held after release %d", n)
	}

	// Refund: tickets void, seats back, negative ledger entry, Stripe refund id stored.
	res = s.do(t, "POST", "/api/v1/orders/"+o.ID.String()+"/refund", map[string]string{"reason": "show moved"}, "Idempotency-Key", uuid.NewString())
	mustStatus(t, res, http.StatusOK)
	if n := s.count(t, `SELECT count(*) FROM inv_seats WHERE state <> 'available'`); n != 0 {
		t.Fatalf("%d seats still taken after refund", n)
	}
	if n := s.count(t, `SELECT count(*) FROM inv_tickets WHERE status = 'valid'`); n != 0 {
		t.Fatalf("%d valid tickets after refund", n)
	}
	if n := s.count(t, `SELECT count(*) FROM ledger_entries WHERE kind = 'ticket.refund' AND amount_minor = -10000`); n != 1 {
		t.Fatalf("%d refund ledger entries", n)
	}
	if n := s.count(t, `SELECT count(*) FROM inv_refunds WHERE stripe_refund_id LIKE 're_%'`); n != 1 {
		t.Fatalf("%d refunds sent to Stripe", n)
	}
	if n := s.count(t, `SELECT sum(sold) FROM inv_counter_shards`); n != 0 {
		t.Fatalf("sold after refund %d", n)
	}
}
