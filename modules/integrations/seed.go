package integrations

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/google/uuid"

	"marquee/app"
	"marquee/modules/integrations/fakes/eventbrite"
	"marquee/modules/integrations/fakes/ticketmaster"
	"marquee/tenants"
)

// The demo runs a fake Ticketmaster and a fake Eventbrite in process, links
// one on-sale event per chain to both, allocates quotas, and keeps both
// channels selling a little while the demo runs (Ticketmaster's sales
// arrive by the per-minute poll, Eventbrite's as webhooks), so the
// channels page shows live numbers.

type demoFakes struct {
	tm *ticketmaster.Server
	eb *eventbrite.Server
	mu sync.Mutex
	// listings the demo keeps selling on
	sellers []demoSeller
}

type demoSeller struct {
	t            tenants.Tenant
	tmEvent      string
	ebEvent      string
	ebClass      string
	ebConnector  uuid.UUID
	ebPathSecret string
}

const (
	demoTMKey   = "demo-ticketmaster-api-key"
	demoEBToken = "demo-eventbrite-oauth-token"
)

func (m *Module) fakes() *demoFakes {
	if m.demo == nil {
		m.demo = &demoFakes{tm: ticketmaster.New(demoTMKey), eb: eventbrite.New(demoEBToken)}
		m.svc.HTTP = m.demo.tm.Client() // both fakes are plain-HTTP loopback servers
	}
	return m.demo
}

func (m *Module) seed(ctx context.Context, t tenants.Tenant, _ *app.Seeding) error {
	now := m.app.Now()
	evs, err := m.app.Events().Events(ctx, t, app.EventFilter{From: now, To: now.Add(120 * 24 * time.Hour), Limit: 100})
	if err != nil {
		return err
	}
	cs := m.app.ChannelSales()
	var ev app.EventInfo
	var stock app.ChannelStock
	for _, e := range evs {
		st, err := cs.ChannelStock(ctx, t, e.ID)
		if err != nil || len(st.Tiers) == 0 || st.Capacity-st.Sold-st.Held < 400 {
			continue
		}
		ev, stock = e, st
		break
	}
	if ev.ID == uuid.Nil {
		return nil // no on-sale GA event to list
	}
	f := m.fakes()
	tier := stock.Tiers[0]
	// Make room: the storefront's quota gives 300 units to the channels.
	for _, q := range stock.Channels {
		if q.Channel == "web" {
			if err := cs.SetChannelQuota(ctx, t, ev.ID, "web", max(q.Sold+q.Held, q.Quota-300)); err != nil {
				return err
			}
		}
	}
	tmID, ebID, ebClass := "G5v"+t.Slug, "9"+fmt.Sprint(1000+rand.IntN(9000)), "TC-"+t.Slug
	f.tm.AddEvent(ticketmaster.Event{ID: tmID, Name: ev.Title, VenueID: "KovZ" + t.Slug, Timezone: ev.Timezone, Start: ev.StartsAt, FaceValue: float64(tier.PriceMinor) / 100, Currency: tier.Currency})
	f.eb.AddEvent(eventbrite.Event{ID: ebID, OrgID: "org-" + t.Slug, Name: ev.Title, Start: ev.StartsAt,
		TicketClasses: []*eventbrite.TicketClass{{ID: ebClass, Name: tier.Name, CostMinor: tier.PriceMinor, Currency: tier.Currency, SalesEnd: ev.StartsAt}}})
	// A few more catalogue events, so Discovery has pages.
	for i := 0; i < 3; i++ {
		f.tm.AddEvent(ticketmaster.Event{ID: fmt.Sprintf("G5x%s%d", t.Slug, i), Name: fmt.Sprintf("Touring act %d", i+1), VenueID: "KovZ" + t.Slug, Start: ev.StartsAt.AddDate(0, 0, 7*(i+1))})
	}

	tm, err := m.svc.CreateConnector(ctx, t, ConnectorInput{Provider: ProviderTicketmaster, Name: "Ticketmaster (demo fake)", APIBase: f.tm.URL, Timezone: ev.Timezone,
		Credentials: map[string]string{"api_key": demoTMKey}}, "http://localhost")
	if err != nil {
		return err
	}
	eb, err := m.svc.CreateConnector(ctx, t, ConnectorInput{Provider: ProviderEventbrite, Name: "Eventbrite (demo fake)", APIBase: f.eb.URL, Account: "org-" + t.Slug,
		Credentials: map[string]string{"token": demoEBToken}}, "http://localhost")
	if err != nil {
		return err
	}
	secret := eb.WebhookURL[len(eb.WebhookURL)-32:]
	if _, err := m.svc.CreateListing(ctx, t, tm.ID, ListingInput{ExternalEventID: tmID, EventID: ev.ID, Tiers: map[string]uuid.UUID{"TT-" + tmID: tier.ID}}); err != nil {
		return err
	}
	if _, err := m.svc.CreateListing(ctx, t, eb.ID, ListingInput{ExternalEventID: ebID, EventID: ev.ID, Tiers: map[string]uuid.UUID{ebClass: tier.ID}}); err != nil {
		return err
	}
	if _, _, err := m.svc.ExternalEvents(ctx, t, tm.ID); err != nil {
		return err
	}
	if _, err := m.svc.SetAllocation(ctx, t, ev.ID, ProviderTicketmaster, 180); err != nil {
		return err
	}
	if _, err := m.svc.SetAllocation(ctx, t, ev.ID, ProviderEventbrite, 120); err != nil {
		return err
	}
	d := demoSeller{t: t, tmEvent: tmID, ebEvent: ebID, ebClass: ebClass, ebConnector: eb.ID, ebPathSecret: secret}
	for i := 0; i < 12; i++ {
		if err := m.demoSale(ctx, d); err != nil {
			return err
		}
	}
	if _, err := m.svc.Poll(ctx, t, tm.ID); err != nil {
		return err
	}
	if _, err := m.svc.Reconcile(ctx, t, ev.ID, false); err != nil {
		return err
	}
	f.mu.Lock()
	f.sellers = append(f.sellers, d)
	f.mu.Unlock()
	return nil
}

// demoSale sells a little on both channels: at Ticketmaster (seen at the
// next poll) and at Eventbrite (its webhook handled at once).
func (m *Module) demoSale(ctx context.Context, d demoSeller) error {
	f := m.demo
	f.tm.Sell(d.tmEvent, 1+rand.IntN(3))
	del, ok := f.eb.PlaceOrder(d.ebEvent, d.ebClass, 1+rand.IntN(2))
	if !ok {
		return nil
	}
	_, err := m.svc.HandleWebhook(ctx, d.t, d.ebConnector, d.ebPathSecret, del.ID, del.Body)
	return err
}

// demoLoop keeps the demo's channels selling (only in the process that
// seeded them: the fakes live there).
func (m *Module) demoLoop(ctx context.Context) error {
	tick := time.NewTicker(20 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		if m.demo == nil {
			continue
		}
		m.demo.mu.Lock()
		sellers := append([]demoSeller(nil), m.demo.sellers...)
		m.demo.mu.Unlock()
		for _, d := range sellers {
			if err := m.demoSale(ctx, d); err != nil {
				m.svc.log().Warn("demo channel sale failed", "err", err)
			}
		}
	}
}
