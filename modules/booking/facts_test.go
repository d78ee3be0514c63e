package booking_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/google/uuid"

	"marquee/app"
	"marquee/app/apptest"
	"marquee/modules/booking"
	"marquee/tenants"
)

// fakeTickets stands in for the module that sells tickets (inventory will
// provide app.TicketFacts): it reports sales for any event.
type fakeTickets struct{}

func (fakeTickets) Name() string { return "fake-tickets" }

func (fakeTickets) Register(r *app.Registrar) error {
	r.ProvideTicketFacts(fakeTickets{})
	return nil
}

func (fakeTickets) SalesByTier(context.Context, tenants.Tenant, uuid.UUID) ([]app.TierSales, error) {
	return []app.TierSales{{Tier: "GA", Sold: 800, PriceMinor: 4000, Currency: "USD"}, {Tier: "VIP", Sold: 100, PriceMinor: 10000, Currency: "USD"}}, nil
}

// With a provider of ticket facts, a contracted show's settlement counts
// the tickets it reports for the event, not those recorded on the booking.
func TestSettlementReadsTicketFacts(t *testing.T) {
	env, _ := startEnv(t, func(o *apptest.Options) { o.Modules = append(o.Modules, fakeTickets{}) })
	c := newChain(t, env, "facts")
	d := c.act(t, c.create(t, c.artistA, "hold_id", c.hold(t, 14)), "send", nil)
	d = c.agentAct(t, c.linkA, d, "accept", nil)
	d = c.act(t, c.sealed(t, d), "contract", nil)
	res := c.do(t, "GET", "/api/v1/bookings/"+d.ID.String()+"/settlement", nil)
	mustStatus(t, res, http.StatusOK)
	v := decode[booking.SettlementView](t, res.Body)
	if v.SalesSource != "ticket_facts" || v.Sheet.TicketsSold != 900 || v.Sheet.GrossMinor != 4200000 {
		t.Fatalf("settlement from ticket facts: %+v", v)
	}
}
