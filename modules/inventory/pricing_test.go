package inventory_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/modules/inventory"
)

// gaFeeSetup is one GA floor of 100 at a face price of 50.00 plus a 5.00
// mandatory fee: 55.00 all-in.
func gaFeeSetup() map[string]any {
	return map[string]any{
		"zones": []any{map[string]any{"name": "Floor", "kind": "ga", "capacity": 100}},
		"tiers": []any{map[string]any{"name": "Floor", "zone": "Floor", "price": 5000, "fee": 500, "currency": "EUR", "max_per_order": 10}},
	}
}

// soonOnSale is onSale for an event ten days out (demand pricing reads the
// time to the event; far-off events barely move).
func soonOnSale(t testing.TB, prefix, title string, setup any) (*shop, string, inventory.Inventory) {
	t.Helper()
	env, inv := startEnv(t)
	s := newShop(t, env, inv, prefix)
	start := time.Now().UTC().Truncate(time.Hour).Add(10 * 24 * time.Hour)
	res := s.do(t, "POST", "/api/v1/venues/"+s.venue+"/events", map[string]any{"stage_id": s.stage, "title": title, "category": "concert",
		"status": "on_sale", "starts_at": start.Format(time.RFC3339), "ends_at": start.Add(3 * time.Hour).Format(time.RFC3339)})
	mustStatus(t, res, http.StatusCreated)
	var e struct{ ID string }
	res.JSON(t, &e)
	return s, e.ID, s.configure(t, e.ID, setup)
}

// TestPriceLockedForHold: a buyer holds at the all-in price shown; the
// price then moves; the order charges what the hold quoted, through
// stripe-mock's PaymentIntent and the signed webhook.
func TestPriceLockedForHold(t *testing.T) {
	t.Parallel()
	s, ev, cfg := soonOnSale(t, "prc", "Demand Night", gaFeeSetup())
	ctx := context.Background()
	evID, tier := uuid.MustParse(ev), uuid.MustParse(tierID(t, cfg, "Floor"))
	// Turned on two days ago: the notice is given, prices may move now.
	rule, err := s.inv.Service().SetPriceRuleAt(ctx, s.t, evID, tier,
		inventory.PriceRuleInput{Enabled: true, Floor: 4000, Ceiling: 9000, MaxStep: 300, MinIntervalSeconds: 60}, time.Now().Add(-48*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if !rule.EffectiveFrom.Before(time.Now()) || rule.EffectiveFrom.Sub(rule.NoticeFrom) < 24*time.Hour {
		t.Fatalf("rule notice %v, effective %v", rule.NoticeFrom, rule.EffectiveFrom)
	}
	// The availability buyers read shows the all-in price.
	av := availabilityOf(t, s, ev)
	if av.Tiers[0].Price != 5500 || av.Tiers[0].Fee != 500 {
		t.Fatalf("shown %d (fee %d), want 5500 all-in with 500 fees", av.Tiers[0].Price, av.Tiers[0].Fee)
	}
	b := s.buyer(t)
	h := s.mustHold(t, ev, b, map[string]any{"tier_id": tier, "quantity": 2})
	if h.AmountMinor != 11000 {
		t.Fatalf("hold quotes %d, want 11000 (2 × 55.00 all-in)", h.AmountMinor)
	}
	// Nothing sells ten days out: the job cuts the price while the hold runs.
	if n, err := s.inv.Service().Reprice(ctx, s.t); err != nil || n != 1 {
		t.Fatalf("reprice: %d changes, %v", n, err)
	}
	av = availabilityOf(t, s, ev)
	if av.Tiers[0].Price >= 5500 {
		t.Fatalf("price did not move: %d", av.Tiers[0].Price)
	}
	// A second buyer now pays the new price.
	b2 := s.buyer(t)
	if h2 := s.mustHold(t, ev, b2, map[string]any{"tier_id": tier, "quantity": 1}); h2.AmountMinor != av.Tiers[0].Price {
		t.Fatalf("new hold %d, shown %d", h2.AmountMinor, av.Tiers[0].Price)
	}
	// The first buyer's order charges the quoted price, through stripe-mock.
	o := s.order(t, b, h.ID)
	if o.AmountMinor != 11000 || o.PaymentIntentID == nil {
		t.Fatalf("order %d (intent %v), want 11000 as quoted", o.AmountMinor, o.PaymentIntentID)
	}
	res := s.env.Do(t, "POST", s.slug, "/api/v1/orders/"+o.ID.String()+"/test-pay", "", nil, "X-Buyer-Token", b)
	mustStatus(t, res, http.StatusOK)
	var paid struct {
		Status string `json:"status"`
		Amount int64  `json:"amount"`
	}
	s.sql(t, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT status, amount_minor AS amount FROM inv_orders WHERE id = ?`, o.ID).Scan(&paid).Error
	})
	if paid.Status != "paid" || paid.Amount != 11000 {
		t.Fatalf("order after payment: %+v", paid)
	}
	if n := s.count(t, `SELECT count(*) FROM ledger_entries WHERE reference = ? AND amount_minor = 11000`, "order:"+o.ID.String()); n != 1 {
		t.Fatalf("ledger entries of 11000 for the order: %d", n)
	}
	// The history has the change with its inputs, inside the bounds and step.
	view := pricingOf(t, s, ev)
	if len(view.History) != 1 {
		t.Fatalf("history %+v", view.History)
	}
	c := view.History[0]
	var in map[string]any
	if err := json.Unmarshal(c.Inputs, &in); err != nil || in["hours_to_event"] == nil || in["remaining"] == nil || in["queue"] == nil {
		t.Fatalf("inputs %s", c.Inputs)
	}
	if c.OldPrice != 5000 || c.NewPrice < 4700 || c.NewPrice >= 5000 {
		t.Fatalf("change %d → %d outside one step of 300", c.OldPrice, c.NewPrice)
	}
	// Within its interval the job changes nothing.
	if n, err := s.inv.Service().Reprice(ctx, s.t); err != nil || n != 0 {
		t.Fatalf("second reprice inside the interval: %d, %v", n, err)
	}
}

func availabilityOf(t testing.TB, s *shop, ev string) inventory.AvailabilityDocument {
	t.Helper()
	res := s.env.Do(t, "GET", s.slug, "/api/v1/events/"+ev+"/availability", "", nil)
	mustStatus(t, res, http.StatusOK)
	var av inventory.AvailabilityDocument
	res.JSON(t, &av)
	return av
}

func pricingOf(t testing.TB, s *shop, ev string) inventory.PricingView {
	t.Helper()
	res := s.do(t, "GET", "/api/v1/events/"+ev+"/pricing", nil)
	mustStatus(t, res, http.StatusOK)
	var v inventory.PricingView
	res.JSON(t, &v)
	return v
}

// TestPricingBounds: bad bounds are refused and change nothing; the
// database keeps a priced tier inside its bounds and the history
// append-only; a rule turned on now moves nothing for 24 hours; the job's
// changes never pass a step or a bound, even run concurrently.
func TestPricingBounds(t *testing.T) {
	t.Parallel()
	s, ev, cfg := soonOnSale(t, "prb", "Bounded", gaFeeSetup())
	ctx := context.Background()
	tier := tierID(t, cfg, "Floor")
	put := func(body map[string]any) (int, string) {
		res := s.do(t, "PUT", "/api/v1/events/"+ev+"/tiers/"+tier+"/pricing", body)
		return res.Status, res.Code()
	}
	for _, bad := range []map[string]any{
		{"enabled": true, "floor": 6000, "ceiling": 5000, "max_step": 100, "min_interval_seconds": 60},
		{"enabled": true, "floor": 1000, "ceiling": 9000, "max_step": 0, "min_interval_seconds": 60},
		{"enabled": true, "floor": 1000, "ceiling": 9000, "max_step": 100, "min_interval_seconds": 5},
		{"enabled": true, "floor": -1, "ceiling": 9000, "max_step": 100, "min_interval_seconds": 60},
	} {
		if st, code := put(bad); st != http.StatusBadRequest || code != "invalid_pricing" {
			t.Fatalf("%v: %d %s", bad, st, code)
		}
	}
	if st, code := put(map[string]any{"enabled": true, "floor": 6000, "ceiling": 9000, "max_step": 100, "min_interval_seconds": 60}); st != http.StatusConflict || code != "price_outside_bounds" {
		t.Fatalf("bounds without the current price: %d %s", st, code)
	}
	if n := s.count(t, `SELECT count(*) FROM inv_price_rules`); n != 0 {
		t.Fatalf("refused rules left %d rows", n)
	}
	// Turned on now: buyers are told, prices wait 24 hours.
	if st, _ := put(map[string]any{"enabled": true, "floor": 4000, "ceiling": 6000, "max_step": 100, "min_interval_seconds": 60}); st != http.StatusOK {
		t.Fatalf("rule: %d", st)
	}
	if n, err := s.inv.Service().Reprice(ctx, s.t); err != nil || n != 0 {
		t.Fatalf("reprice during the notice: %d, %v", n, err)
	}
	page := s.env.Do(t, "GET", s.slug, "/events/"+ev, "", nil)
	if !strings.Contains(string(page.Body), "Demand-based prices") || !strings.Contains(string(page.Body), "EUR 45.00 and EUR 65.00") {
		t.Fatalf("event page does not announce the range: %s", page.Body)
	}
	// The database refuses a price outside the bounds, and any edit of history.
	err := s.env.App.Tx(ctx, s.t, func(tx *gorm.DB) error {
		return tx.Exec(`UPDATE inv_tiers SET price_minor = 7000 WHERE id = ?`, tier).Error
	})
	if err == nil || !strings.Contains(err.Error(), "outside its bounds") {
		t.Fatalf("out-of-bounds price written: %v", err)
	}
	// In effect (as if turned on two days ago), many rounds at once.
	if _, err := s.inv.Service().SetPriceRuleAt(ctx, s.t, uuid.MustParse(ev), uuid.MustParse(tier),
		inventory.PriceRuleInput{Enabled: false, Floor: 4000, Ceiling: 6000, MaxStep: 100, MinIntervalSeconds: 60}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.inv.Service().SetPriceRuleAt(ctx, s.t, uuid.MustParse(ev), uuid.MustParse(tier),
		inventory.PriceRuleInput{Enabled: true, Floor: 4000, Ceiling: 6000, MaxStep: 100, MinIntervalSeconds: 60}, time.Now().Add(-48*time.Hour)); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	changes := make(chan int, 16)
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := s.inv.Service().Reprice(ctx, s.t)
			if err != nil {
				t.Error(err)
			}
			changes <- n
		}()
	}
	wg.Wait()
	close(changes)
	total := 0
	for n := range changes {
		total += n
	}
	if total != 1 {
		t.Fatalf("16 concurrent rounds made %d changes; the interval allows 1", total)
	}
	view := pricingOf(t, s, ev)
	for _, c := range view.History {
		if c.NewPrice < 4000 || c.NewPrice > 6000 || c.NewPrice-c.OldPrice > 100 || c.OldPrice-c.NewPrice > 100 {
			t.Fatalf("change %+v", c)
		}
	}
	err = s.env.App.Tx(ctx, s.t, func(tx *gorm.DB) error {
		return tx.Exec(`UPDATE inv_price_history SET new_price = 1`).Error
	})
	if err == nil || !strings.Contains(err.Error(), "append-only") {
		t.Fatalf("history edited: %v", err)
	}
}
