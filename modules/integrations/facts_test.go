package integrations_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/google/uuid"

	"marquee/app/apptest"
	"marquee/modules/integrations/fakes/ticketmaster"
	"marquee/modules/inventory"
)

// buyOnStorefront pays an order of qty tickets of the chain's tier through
// the storefront (hold, order, signed payment webhook).
func (c *chain) buyOnStorefront(t testing.TB, qty int) {
	t.Helper()
	res := c.e.Do(t, "POST", c.slug, "/api/v1/buyer-sessions", "", nil)
	apptest.MustStatus(t, res, http.StatusCreated)
	var b struct {
		BuyerToken string `json:"buyer_token"`
	}
	res.JSON(t, &b)
	res = c.e.Do(t, "POST", c.slug, "/api/v1/events/"+c.event.String()+"/holds", "", map[string]any{"tier_id": c.tier, "quantity": qty},
		"Idempotency-Key", uuid.NewString(), "X-Buyer-Token", b.BuyerToken)
	apptest.MustStatus(t, res, http.StatusCreated)
	var h inventory.Hold
	res.JSON(t, &h)
	res = c.e.Do(t, "POST", c.slug, "/api/v1/orders", "", map[string]any{"hold_id": h.ID, "buyer": map[string]string{"email": "fan@example.com", "name": "A Fan"}},
		"Idempotency-Key", uuid.NewString(), "X-Buyer-Token", b.BuyerToken)
	apptest.MustStatus(t, res, http.StatusCreated)
	var o inventory.Order
	res.JSON(t, &o)
	pi := ""
	if o.PaymentIntentID != nil {
		pi = *o.PaymentIntentID
	}
	payload, header, err := inventory.TestWebhookEvent("whsec_test_integrations", "evt_"+uuid.NewString(), "payment_intent.succeeded", pi, o.AmountMinor, o.Currency, c.slug, o.ID)
	if err != nil {
		t.Fatal(err)
	}
	apptest.MustStatus(t, c.e.Do(t, "POST", c.slug, "/api/v1/webhooks/stripe", "", payload, "Stripe-Signature", header), http.StatusOK)
}

// What a settlement reads (app.TicketFacts) counts the storefront's
// tickets and the channels' sales, each at the price it sold at: the
// channels sell into the counters without tickets of ours, so their units
// are recorded with the channel's price; a refund on a channel takes its
// units out again at the price they sold at.
func TestTicketFactsCountChannelSales(t *testing.T) {
	e := startEnv(t)
	c := newChain(t, e, 100, map[string]int{"web": 40, "ticketmaster": 30, "eventbrite": 30})
	apptest.MustStatus(t, c.allocate(t, "ticketmaster", 30), http.StatusOK)
	apptest.MustStatus(t, c.allocate(t, "eventbrite", 30), http.StatusOK)

	c.buyOnStorefront(t, 2) // 2 × 25.00 EUR, our price
	// Ticketmaster sells at its own face value (27.50, later 30.00),
	// Eventbrite at its ticket class's cost (26.00).
	setFace := func(v float64) {
		ev := c.tm.Event(c.tmEvent)
		ev.FaceValue, ev.Currency = v, "EUR"
		c.tm.AddEvent(ev)
	}
	setFace(27.5)
	var first string
	for i := range 3 {
		o, ok := c.tm.Sell(c.tmEvent, 1)
		if !ok {
			t.Fatal("Ticketmaster refused a sale inside the allocation")
		}
		if i == 0 {
			first = o.ID
		}
	}
	setFace(30)
	c.tm.Sell(c.tmEvent, 1)
	c.poll(t)
	c.eb.SetCost(c.ebClass, 2600)
	for _, q := range []int{4, 1} {
		if d, ok := c.eb.PlaceOrder(c.ebEvent, c.ebClass, q); !ok || d.Status != http.StatusOK {
			t.Fatalf("eventbrite order: %v %d", ok, d.Status)
		}
	}

	type key struct {
		channel string
		price   int64
	}
	read := func() (map[key]int, int, int64) {
		t.Helper()
		sales, err := e.inv.Service().SalesByTier(context.Background(), c.t, c.event)
		if err != nil {
			t.Fatal(err)
		}
		rows := map[key]int{}
		sold, gross := 0, int64(0)
		for _, s := range sales {
			// Every row names the tier: a settlement summing by tier name
			// (booking's) sees them all.
			if s.Tier != "Floor" || s.Currency != "EUR" {
				t.Fatalf("a row of another tier or currency: %+v", s)
			}
			rows[key{s.Channel, s.PriceMinor}] += s.Sold
			sold += s.Sold
			gross += int64(s.Sold) * s.PriceMinor
		}
		return rows, sold, gross
	}
	rows, sold, gross := read()
	want := map[key]int{{"", 2500}: 2, {"ticketmaster", 2750}: 3, {"ticketmaster", 3000}: 1, {"eventbrite", 2600}: 5}
	if len(rows) != len(want) {
		t.Fatalf("sales by tier %v, want %v", rows, want)
	}
	for k, n := range want {
		if rows[k] != n {
			t.Fatalf("sales by tier %v, want %v", rows, want)
		}
	}
	if wantGross := int64(2*2500 + 3*2750 + 3000 + 5*2600); sold != 11 || gross != wantGross {
		t.Fatalf("a settlement reads %d sold for %d, want 11 for %d", sold, gross, wantGross)
	}
	// The counters agree with the facts.
	if st := c.stock(t); st.Sold != sold {
		t.Fatalf("counters sold %d, facts %d", st.Sold, sold)
	}

	// A cancellation on Ticketmaster after its price moved returns the
	// units at the price they sold at.
	c.tm.Move(first, ticketmaster.Cancelled)
	c.poll(t)
	rows, sold, _ = read()
	if rows[key{"ticketmaster", 2750}] != 2 || rows[key{"ticketmaster", 3000}] != 1 || sold != 10 {
		t.Fatalf("after a cancellation: %v (sold %d), want ticketmaster 2 at 27.50 and 1 at 30.00, 10 sold", rows, sold)
	}
}
