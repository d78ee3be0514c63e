package staffing_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"

	"marquee/app"
	"marquee/app/apptest"
	"marquee/config"
	"marquee/modules/calendar"
	"marquee/modules/inventory"
	"marquee/modules/staffing"
)

// startSellingEnv starts an App with the calendar, the real inventory
// (talking to stripe-mock) and staffing, with an Asynq worker: tickets are
// sold by holds, orders and signed payment webhooks, and staffing hears of
// them only through Core.TicketsSold.
func startSellingEnv(t *testing.T) *env {
	t.Helper()
	stripe := apptest.StripeMock(t)
	mod := staffing.New()
	e := apptest.Start(t, dbURL, apptest.Options{DBMaxConns: 30, Modules: []app.Module{calendar.New(), inventory.New(), mod},
		Configure: func(c *config.Config) {
			c.StripeAPIURL = stripe
			c.StripeSecretKey = config.DevStripeSecretKey
			c.StripeWebhookSecret = "whsec_test_staffing"
		}})
	srv := e.App.Jobs.NewServer(2)
	if err := srv.Start(e.App.Jobs.Mux()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	return &env{Env: e, mod: mod}
}

// sell buys n floor tickets of the event as one order and pays for it
// through the payment webhook, as a fan would.
func (c *chain) sell(t *testing.T, tier string, n int) {
	t.Helper()
	res := c.e.Do(t, "POST", c.slug, "/api/v1/buyer-sessions", "", nil)
	mustStatus(t, res, http.StatusCreated)
	var b struct {
		BuyerToken string `json:"buyer_token"`
	}
	res.JSON(t, &b)
	res = c.e.Do(t, "POST", c.slug, "/api/v1/events/"+c.event+"/holds", "", map[string]any{"tier_id": tier, "quantity": n},
		"Idempotency-Key", uuid.NewString(), "X-Buyer-Token", b.BuyerToken)
	mustStatus(t, res, http.StatusCreated)
	var h inventory.Hold
	res.JSON(t, &h)
	res = c.e.Do(t, "POST", c.slug, "/api/v1/orders", "", map[string]any{"hold_id": h.ID, "buyer": map[string]string{"email": "fan@example.com", "name": "A Fan"}},
		"Idempotency-Key", uuid.NewString(), "X-Buyer-Token", b.BuyerToken)
	mustStatus(t, res, http.StatusCreated)
	var o inventory.Order
	res.JSON(t, &o)
	payload, header, err := inventory.TestWebhookEvent("whsec_test_staffing", "evt_"+uuid.NewString(), "payment_intent.succeeded", *o.PaymentIntentID, o.AmountMinor, o.Currency, c.slug, o.ID)
	if err != nil {
		t.Fatal(err)
	}
	mustStatus(t, c.e.Do(t, "POST", c.slug, "/api/v1/webhooks/stripe", "", payload, "Stripe-Signature", header), http.StatusOK)
}

// Selling tickets past a ratio threshold through the inventory's real path
// (hold, order, payment webhook) creates the gap, visible in coverage,
// without anyone calling recompute: the sale crosses a milestone, and the
// milestone's task recomputes the event. Sales that cross no milestone
// leave the requirement where it was.
func TestSalesMilestoneRecomputesRequirements(t *testing.T) {
	e := startSellingEnv(t)
	c := newChain(t, e, "milestone")
	res := c.do(t, "PUT", "/api/v1/events/"+c.event+"/inventory", map[string]any{
		"zones":        []any{map[string]any{"name": "Floor", "kind": "ga", "capacity": 500}},
		"tiers":        []any{map[string]any{"name": "Floor", "zone": "Floor", "price": 3000, "currency": "USD", "max_per_order": 10}},
		"max_ip_holds": 0, "max_buyer_holds": 5, "max_buyer_tickets": 60,
	})
	mustStatus(t, res, http.StatusOK)
	var inv inventory.Inventory
	res.JSON(t, &inv)
	tier := inv.Tiers[0].ID.String()

	// 1 security per 10 attendees, at least 1; one guard is on.
	mustStatus(t, c.do(t, "PUT", "/api/v1/events/"+c.event+"/staffing/requirements", map[string]any{"requirements": []any{
		map[string]any{"role_id": c.roles["security"], "rule": "ratio", "per_attendees": 10, "minimum": 1},
	}}), http.StatusOK)
	shift := c.shift(t, "security", c.eventAt.Add(-time.Hour), c.eventAt.Add(4*time.Hour), 5)
	g := c.staff(t, "guard", false, []string{"security"}, nil)
	mustStatus(t, c.do(t, "POST", "/api/v1/venues/"+c.venue+"/staffing/shifts/"+shift+"/assignments", map[string]any{"staff_id": g.id}), http.StatusCreated)
	security := func() staffing.RoleCoverage {
		return roleCov(t, decode[staffing.EventCoverage](t, c.do(t, "GET", "/api/v1/events/"+c.event+"/staffing/coverage", nil).Body), "security")
	}
	if s := security(); s.Required != 1 || s.Gap != 0 {
		t.Fatalf("before sales: %+v", s)
	}

	// 8 tickets: no threshold crossed (ceil(8/10) = 1), the figure stays.
	c.sell(t, tier, 8)
	// 6 more (14): past 10, so 2 security are needed and one is missing.
	c.sell(t, tier, 6)
	apptest.Eventually(t, 15*time.Second, "the milestone's recomputation raises security to 2", func() bool { return security().Required == 2 })
	s := security()
	if s.Gap != 1 || s.GapFromSales != 1 || s.Attendance != 14 || s.Basis != "sold" {
		t.Fatalf("after 14 sold: %+v", s)
	}
	// 10 more in one order (24): past 20 → 3.
	c.sell(t, tier, 10)
	apptest.Eventually(t, 15*time.Second, "the next milestone raises security to 3", func() bool { return security().Required == 3 })
	if s := security(); s.Gap != 2 || s.GapFromSales != 2 || s.Attendance != 24 {
		t.Fatalf("after 24 sold: %+v", s)
	}
}
