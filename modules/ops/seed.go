package ops

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/modules/ops/fakepos"
	"marquee/tenants"
)

// seed makes one of the demo chain's shows a live night: zones with their
// licensed capacity (the floor close to full, so an alert stands), an hour
// and a half of turnstile readings (one counter reset on the way) and
// history, a manual count on the terrace, bar and merch sales from a fake
// Square account through the real signed-webhook path (with a duplicate, an
// out-of-order update and a refund), incidents (one resolved), and the
// contacts mailed the alerts and incidents.
func (m *Module) seed(ctx context.Context, t tenants.Tenant, _ *app.Seeding) error {
	ev, err := m.demoEvent(ctx, t)
	if err != nil || ev == nil {
		return err
	}
	s := m.svc
	// The duty manager is mailed alerts and incidents chain-wide, the
	// venue's floor manager alerts at its shows: the alert the floor
	// raises below lands in the chain's mail page.
	no := false
	if _, err := s.SetContacts(ctx, t, []ContactInput{{Email: "duty@" + t.Slug + ".example", Name: "Duty manager"},
		{Email: "floor@" + t.Slug + ".example", Name: "Floor manager", VenueID: &ev.VenueID, Incidents: &no}}); err != nil {
		return fmt.Errorf("ops demo contacts: %w", err)
	}
	venueCap := max(ev.VenueCapacity, 400)
	zones := []ZoneInput{
		{Name: "Stalls", Capacity: venueCap * 6 / 10},
		// The floor trusts its turnstiles (the door's count shows beside
		// it): the discrepancy ops staff should see.
		{Name: "Standing", Capacity: venueCap * 3 / 10, Source: "turnstile"},
		{Name: "Terrace bar", DoorZone: "-", Capacity: max(venueCap/10, 40), Source: "manual"},
	}
	if _, err := s.SetZones(ctx, t, *ev, zones); err != nil {
		return fmt.Errorf("ops demo zones: %w", err)
	}
	now := s.app.Now().UTC().Truncate(time.Minute)
	// Turnstile counters over the last 90 minutes: the floor fills to 93%
	// of its licence along an S-curve; the south counter resets once.
	standing := zones[1].Capacity
	fill := func(k int) float64 { return 1 / (1 + math.Exp(-float64(k-45)/10)) }
	southBase, lastSouth := 0, 0
	for k := 0; k <= 90; k += 5 {
		at := now.Add(time.Duration(k-90) * time.Minute)
		total := int(fill(k) * 0.93 * float64(standing))
		north, south := total*55/100, total-total*55/100
		if k == 65 {
			southBase = lastSouth // the counter restarted at zero just after its last reading
		}
		lastSouth = south
		south -= southBase
		for src, n := range map[string]int{"turnstile:north-1": north, "turnstile:south-1": south} {
			if _, err := s.PushReading(ctx, t, *ev, nil, Reading{Zone: "Standing", Source: src, Count: &n, At: &at}); err != nil {
				return fmt.Errorf("ops demo reading: %w", err)
			}
		}
	}
	terrace := zones[2].Capacity * 6 / 10
	at := now.Add(-3 * time.Minute)
	if _, err := s.PushReading(ctx, t, *ev, nil, Reading{Zone: "Terrace bar", Source: "manual", Count: &terrace, At: &at}); err != nil {
		return fmt.Errorf("ops demo manual count: %w", err)
	}
	if err := s.seedHistory(ctx, t, *ev, now, fill); err != nil {
		return err
	}
	if err := m.seedSales(ctx, t, *ev); err != nil {
		return err
	}
	inc, err := s.ReportIncident(ctx, t, *ev, nil, IncidentInput{Category: "medical", Severity: "high", Zone: "Standing", Location: "front barrier, stage left",
		Description: "Fan fainted at the barrier; first aiders on scene."})
	if err != nil {
		return err
	}
	if _, err := s.ChangeIncident(ctx, t, ev.ID, inc.ID, IncidentChange{Kind: "acknowledged"}); err != nil {
		return err
	}
	old, err := s.ReportIncident(ctx, t, *ev, nil, IncidentInput{Category: "security", Severity: "low", Zone: "Stalls", Location: "door B",
		Description: "Bag with glass bottles refused at door B."})
	if err != nil {
		return err
	}
	if _, err := s.ChangeIncident(ctx, t, ev.ID, old.ID, IncidentChange{Kind: "resolved", Body: "Bottles binned, guest admitted."}); err != nil {
		return err
	}
	_, err = s.Rollup(ctx, t)
	return err
}

// demoEvent is the show the door's demo scanned (door counts to merge),
// else the first show on sale.
func (m *Module) demoEvent(ctx context.Context, t tenants.Tenant) (*app.EventInfo, error) {
	evs, err := m.app.Events().Events(ctx, t, app.EventFilter{Statuses: []string{"on_sale"}, Limit: 50})
	if err != nil || len(evs) == 0 {
		m.app.Log.Warn("ops demo: no event on sale; nothing seeded", "tenant", t.Slug)
		return nil, err
	}
	if att := m.app.Attendance(); att != nil {
		for _, ev := range evs {
			a, err := att.Attendance(ctx, t, ev.ID)
			if err == nil && a.Admitted > 0 {
				return &ev, nil
			}
		}
	}
	return &evs[0], nil
}

// seedHistory writes the minutes before now as the sampler would have,
// each zone rising along the S-curve to the count it shows now.
func (s *Service) seedHistory(ctx context.Context, t tenants.Tenant, ev app.EventInfo, now time.Time, fill func(int) float64) error {
	zones, err := s.Occupancy(ctx, t, ev)
	if err != nil {
		return err
	}
	return s.tx(ctx, t, func(tx *gorm.DB) error {
		for _, z := range zones {
			if z.Source == "none" {
				continue
			}
			for k := 0; k < 90; k++ {
				n := int(fill(k) / fill(90) * float64(z.Inside))
				if err := tx.Exec(`INSERT INTO ops_occupancy_minutes (zone_id, event_id, minute, inside, peak, capacity, source) VALUES (?, ?, ?, ?, ?, ?, ?)
					ON CONFLICT DO NOTHING`, z.ZoneID, ev.ID, now.Add(time.Duration(k-90)*time.Minute), n, n+k%3, z.Capacity, z.Source).Error; err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// seedSales connects a fake Square account and sells through it.
func (m *Module) seedSales(ctx context.Context, t tenants.Tenant, ev app.EventInfo) error {
	s := m.svc
	key := "demo-square-signature-key-" + uuid.NewString()[:8]
	conn, err := s.CreateConnector(ctx, t, ConnectorInput{Name: "Square (demo)", MerchantID: "DEMO-MERCHANT", SignatureKey: key})
	if err != nil {
		return fmt.Errorf("ops demo connector: %w", err)
	}
	if _, err := s.SetLocations(ctx, t, conn.ID, []POSLocation{
		{LocationID: "LOC-BAR-MAIN", VenueID: ev.VenueID, Stand: "Main bar", Category: "bar"},
		{LocationID: "LOC-BAR-TERRACE", VenueID: ev.VenueID, Stand: "Terrace bar", Category: "bar"},
		{LocationID: "LOC-MERCH", VenueID: ev.VenueID, Stand: "Merch stand", Category: "merch"},
	}); err != nil {
		return fmt.Errorf("ops demo locations: %w", err)
	}
	pos := &fakepos.POS{MerchantID: "DEMO-MERCHANT", SignatureKey: key, NotificationURL: conn.NotificationURL}
	deliver := func(d fakepos.Delivery) error {
		_, err := s.HandlePOSWebhook(ctx, t, conn.ID, d.Body, d.Signature)
		return err
	}
	// Sales happen during the show's live window: now if it is on, else
	// the hour before it starts.
	at := s.app.Now().UTC().Add(-40 * time.Minute)
	if !liveWindow(ev, at) {
		at = ev.StartsAt.Add(-time.Hour)
	}
	currency := "USD"
	if tz := ev.Timezone; len(tz) > 7 && tz[:7] == "Europe/" {
		currency = "EUR"
		if tz == "Europe/London" {
			currency = "GBP"
		}
	}
	locs := []string{"LOC-BAR-MAIN", "LOC-BAR-MAIN", "LOC-BAR-TERRACE", "LOC-MERCH"}
	for i := 0; i < 36; i++ {
		p := fakepos.Payment{ID: fmt.Sprintf("demo-pay-%d", i), Status: "APPROVED", Version: 1,
			AmountMoney: fakepos.Money{Amount: int64(650 + 150*(i%5)), Currency: currency}, LocationID: locs[i%len(locs)],
			OrderID: fmt.Sprintf("demo-order-%d", i), CreatedAt: at.Add(time.Duration(i) * time.Minute)}
		if p.LocationID == "LOC-MERCH" {
			p.AmountMoney.Amount = int64(2500 + 500*(i%3))
		}
		created := pos.PaymentEvent(p)
		p.Status, p.Version = "COMPLETED", 2
		completed := pos.PaymentEvent(p)
		order := []fakepos.Delivery{created, completed}
		if i%9 == 4 {
			order = []fakepos.Delivery{completed, created} // out of order: the stale create changes nothing
		}
		if i%7 == 3 {
			order = append(order, completed) // a redelivery
		}
		for _, d := range order {
			if err := deliver(d); err != nil {
				return fmt.Errorf("ops demo sale: %w", err)
			}
		}
	}
	ref := fakepos.Payment{ID: "demo-refund-1", Status: "COMPLETED", Version: 1, AmountMoney: fakepos.Money{Amount: 650, Currency: currency},
		LocationID: "LOC-BAR-MAIN", PaymentID: "demo-pay-0", CreatedAt: at.Add(50 * time.Minute)}
	if err := deliver(pos.RefundEvent(ref)); err != nil {
		return fmt.Errorf("ops demo refund: %w", err)
	}
	return nil
}
