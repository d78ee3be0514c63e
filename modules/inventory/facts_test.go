package inventory_test

import (
	"net/http"
	"testing"

	"github.com/google/uuid"
)

// What a settlement reads of the sale (app.TicketFacts): valid tickets per
// tier at the tier's price; a refunded order's tickets no longer count.
func TestSalesByTierCountsValidTickets(t *testing.T) {
	t.Parallel()
	s, ev, _ := onSale(t, "facts", "Facts Night", simpleSetup(1, 10, 20, nil))
	sell := func(body map[string]any) orderOut {
		b := s.buyer(t)
		o := s.order(t, b, s.mustHold(t, ev, b, body).ID)
		mustStatus(t, s.webhook(t, "evt_"+uuid.NewString(), "payment_intent.succeeded", o.Order), http.StatusOK)
		return o
	}
	sell(map[string]any{"seats": []string{"A-1-1", "A-1-2"}})
	refunded := sell(map[string]any{"seats": []string{"A-1-3"}})
	mustStatus(t, s.do(t, "POST", "/api/v1/orders/"+refunded.ID.String()+"/refund", nil, "Idempotency-Key", uuid.NewString()), http.StatusOK)

	facts := s.inv.Service()
	sales, err := facts.SalesByTier(t.Context(), s.t, uuid.MustParse(ev))
	if err != nil {
		t.Fatal(err)
	}
	sold := map[string]int{}
	for _, ts := range sales {
		sold[ts.Tier] = ts.Sold
		if ts.PriceMinor <= 0 || ts.Currency == "" {
			t.Errorf("tier %s without its price: %+v", ts.Tier, ts)
		}
	}
	if len(sales) != 2 || sold["Stalls"] != 2 || sold["Floor"] != 0 {
		t.Fatalf("sales by tier: %+v", sales)
	}
}
