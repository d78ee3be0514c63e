package inventory_test

import (
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/google/uuid"

	"marquee/modules/inventory"
)

func setLimits(t *testing.T, s *shop, change map[string]any) inventory.LimitSettings {
	t.Helper()
	body := map[string]any{"enabled": true, "max_tickets_per_email": 8, "max_tickets_per_ip": 24, "declines_to_challenge": 2,
		"declines_to_block": 3, "min_checkout_seconds": 4, "ip_holds_per_minute": 60, "ip_orders_per_minute": 20}
	for k, v := range change {
		body[k] = v
	}
	res := s.do(t, http.MethodPut, "/api/v1/limits", body)
	mustStatus(t, res, http.StatusOK)
	var out inventory.LimitSettings
	res.JSON(t, &out)
	return out
}

// checkout holds one GA ticket and orders it, as one buyer from one address.
func checkout(t *testing.T, s *shop, ev, tier, buyerTok, email, ip string) (inventory.Order, int, string) {
	t.Helper()
	res, err := s.hold(ev, buyerTok, map[string]any{"tier_id": tier, "quantity": 1}, "X-Forwarded-For", ip)
	if err != nil {
		t.Fatal(err)
	}
	mustStatus(t, res, http.StatusCreated)
	var h inventory.Hold
	res.JSON(t, &h)
	res = s.env.Do(t, http.MethodPost, s.slug, "/api/v1/orders", "", map[string]any{"hold_id": h.ID, "buyer": map[string]string{"email": email, "name": "Card Tester"}},
		"Idempotency-Key", uuid.NewString(), "X-Buyer-Token", buyerTok, "X-Forwarded-For", ip)
	var o inventory.Order
	var problem struct{ Code string }
	if res.Status == http.StatusCreated {
		res.JSON(t, &o)
	} else {
		res.JSON(t, &problem)
	}
	return o, res.Status, problem.Code
}

// Card testing: three declined payments in an hour from one buyer, and the
// fourth try is blocked before it reaches the card network; the block is
// recorded with its reasons.
func TestCardTestingBlocksTheFourthDecline(t *testing.T) {
	s, ev, cfg := onSale(t, "cardtest", "Card Night", simpleSetup(1, 10, 100, nil))
	floor := tierID(t, cfg, "Floor")
	setLimits(t, s, map[string]any{"declines_to_challenge": 3, "declines_to_block": 3, "min_checkout_seconds": 0})
	buyer := s.buyer(t)
	for i := 1; i <= 3; i++ {
		o, status, code := checkout(t, s, ev, floor, buyer, "tester@example.com", "203.0.113.7")
		if status != http.StatusCreated {
			t.Fatalf("attempt %d refused: %d %s", i, status, code)
		}
		mustStatus(t, s.webhook(t, "evt_decline_"+o.ID.String(), "payment_intent.payment_failed", o), http.StatusOK)
	}
	_, status, code := checkout(t, s, ev, floor, buyer, "tester@example.com", "203.0.113.7")
	if status != http.StatusForbidden || code != "risk_blocked" {
		t.Fatalf("fourth attempt: %d %s, want 403 risk_blocked", status, code)
	}
	// Another token, same address: still the card tester.
	_, status, code = checkout(t, s, ev, floor, s.buyer(t), "other@example.com", "203.0.113.7")
	if status != http.StatusForbidden || code != "risk_blocked" {
		t.Fatalf("same address, new token: %d %s", status, code)
	}
	// Somebody else is not affected.
	if _, status, code = checkout(t, s, ev, floor, s.buyer(t), "fan2@example.com", "198.51.100.4"); status != http.StatusCreated {
		t.Fatalf("an honest buyer: %d %s", status, code)
	}
	res := s.do(t, http.MethodGet, "/api/v1/risk/decisions", nil)
	mustStatus(t, res, http.StatusOK)
	var list struct{ Items []inventory.RiskDecision }
	res.JSON(t, &list)
	if len(list.Items) != 2 || list.Items[0].Action != "block" || list.Items[0].Reasons[0].Rule != "card_testing" || list.Items[0].ClientIP != "203.0.113.7" {
		t.Fatalf("decisions: %+v", list.Items)
	}
}

// Tickets per e-mail across orders, the per-IP hold rate (redis_rate), and
// fast checkouts sent to the review queue that box office works through.
func TestLimitsPerEmailRateAndReviewQueue(t *testing.T) {
	s, ev, cfg := onSale(t, "hoard", "Hoard Night", simpleSetup(1, 10, 100, nil))
	floor := tierID(t, cfg, "Floor")
	setLimits(t, s, map[string]any{"max_tickets_per_email": 2, "ip_holds_per_minute": 4})
	for i := range 2 {
		if _, status, code := checkout(t, s, ev, floor, s.buyer(t), "hoarder@example.com", "192.0.2."+string(rune('1'+i))); status != http.StatusCreated {
			t.Fatalf("order %d: %d %s", i, status, code)
		}
	}
	if _, status, code := checkout(t, s, ev, floor, s.buyer(t), "HOARDER@example.com", "192.0.2.9"); status != http.StatusForbidden || code != "risk_blocked" {
		t.Fatalf("third ticket for one e-mail: %d %s", status, code)
	}
	// Four holds a minute from one address, the fifth waits.
	b := s.buyer(t)
	for i := range 5 {
		res, err := s.hold(ev, s.buyer(t), map[string]any{"tier_id": floor, "quantity": 1}, "X-Forwarded-For", "192.0.2.200")
		if err != nil {
			t.Fatal(err)
		}
		want := http.StatusCreated
		if i == 4 {
			want = http.StatusTooManyRequests
		}
		if res.Status != want || (want == http.StatusTooManyRequests && res.Header.Get("Retry-After") == "") {
			t.Fatalf("hold %d from one address: %d %s", i+1, res.Status, res.Body)
		}
	}
	_ = b
	// The quick checkouts above wait for review; box office approves one.
	res := s.do(t, http.MethodGet, "/api/v1/risk/decisions", nil)
	mustStatus(t, res, http.StatusOK)
	var list struct{ Items []inventory.RiskDecision }
	res.JSON(t, &list)
	if len(list.Items) < 3 || list.Items[0].Action != "review" || list.Items[0].Reasons[0].Rule != "fast_checkout" {
		t.Fatalf("queue: %+v", list.Items)
	}
	path := "/api/v1/risk/decisions/" + list.Items[0].ID.String() + "/review"
	mustStatus(t, s.do(t, http.MethodPost, path, map[string]string{"outcome": "maybe"}), http.StatusBadRequest)
	mustStatus(t, s.do(t, http.MethodPost, path, map[string]string{"outcome": "approved"}), http.StatusOK)
	mustStatus(t, s.do(t, http.MethodPost, path, map[string]string{"outcome": "rejected"}), http.StatusConflict)
	mustStatus(t, s.do(t, http.MethodPut, "/api/v1/limits", map[string]any{"enabled": true, "max_tickets_per_email": 0}), http.StatusBadRequest)
	res = s.do(t, http.MethodGet, "/portal/inventory-review", nil)
	mustStatus(t, res, http.StatusOK)
}

// Tickets per payment card: six buyers with six e-mails and six addresses
// pay at the same instant with one card (Stripe's test card: its
// fingerprint comes from stripe-mock), the limit per card is two. Exactly
// two payments become tickets; the other four are refunded, their holds
// released, and each refusal is recorded with its reason.
func TestTicketsPerCardAcrossEmailsAndAddresses(t *testing.T) {
	s, ev, cfg := onSale(t, "cardlimit", "Card Limit Night", simpleSetup(1, 10, 100, nil))
	floor := tierID(t, cfg, "Floor")
	setLimits(t, s, map[string]any{"max_tickets_per_card": 2, "min_checkout_seconds": 0})
	orders := make([]inventory.Order, 6)
	for i := range orders {
		o, status, code := checkout(t, s, ev, floor, s.buyer(t), fmt.Sprintf("fan%d@example.com", i), fmt.Sprintf("198.51.100.%d", 10+i))
		if status != http.StatusCreated {
			t.Fatalf("order %d: %d %s", i, status, code)
		}
		orders[i] = o
	}
	outcomes := make([]string, len(orders))
	var wg sync.WaitGroup
	for i, o := range orders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := s.tryWebhook("evt_card_"+o.ID.String(), "payment_intent.succeeded", o)
			if err != nil || res.Status != http.StatusOK {
				outcomes[i] = fmt.Sprintf("error %v %d %s", err, res.Status, res.Body)
				return
			}
			var out struct{ Outcome string }
			res.JSON(t, &out)
			outcomes[i] = out.Outcome
		}()
	}
	wg.Wait()
	count := map[string]int{}
	for _, o := range outcomes {
		count[o]++
	}
	if count["paid"] != 2 || count["refunded"] != 4 {
		t.Fatalf("outcomes %v, want 2 paid and 4 refunded", outcomes)
	}
	if n := s.count(t, `SELECT count(*) FROM inv_orders WHERE event_id = ? AND status = 'paid' AND card_fingerprint IS NOT NULL`, ev); n != 2 {
		t.Fatalf("%d paid orders carry the card, want 2", n)
	}
	if n := s.count(t, `SELECT count(*) FROM inv_tickets t JOIN inv_orders o ON o.id = t.order_id WHERE o.event_id = ?`, ev); n != 2 {
		t.Fatalf("%d tickets issued, want 2", n)
	}
	if n := s.count(t, `SELECT count(*) FROM inv_holds WHERE event_id = ? AND status = 'active'`, ev); n != 0 {
		t.Fatalf("%d holds of refused payments still active", n)
	}
	if n := s.count(t, `SELECT count(*) FROM inv_refunds r JOIN inv_orders o ON o.id = r.order_id WHERE o.event_id = ?`, ev); n != 4 {
		t.Fatalf("%d refunds recorded, want 4", n)
	}
	res := s.do(t, http.MethodGet, "/api/v1/risk/decisions", nil)
	mustStatus(t, res, http.StatusOK)
	var list struct{ Items []inventory.RiskDecision }
	res.JSON(t, &list)
	blocks := 0
	for _, d := range list.Items {
		if d.Action == "block" && len(d.Reasons) == 1 && d.Reasons[0].Rule == "tickets_per_card" {
			blocks++
		}
	}
	if blocks != 4 {
		t.Fatalf("%d card blocks recorded, want 4: %+v", blocks, list.Items)
	}
	// A replay of a refused payment's event changes nothing.
	var out struct{ Outcome string }
	res = s.webhook(t, "evt_card_"+orders[0].ID.String(), "payment_intent.succeeded", orders[0])
	res.JSON(t, &out)
	if out.Outcome != "duplicate" {
		t.Fatalf("replay: %s", out.Outcome)
	}
}
