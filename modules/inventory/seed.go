package inventory

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"marquee/app"
	"marquee/tenants"
)

// seed gives the demo chains something to buy. Events belong to the
// calendar, whose seed runs first: this reads the on-sale events it created
// through the event directory and configures tickets for them — the first
// gets a 2,000-seat reserved map and a 1,000-place GA pool, the second a
// smaller map with part of it already sold (through the real hold → paid
// path, so the ledger and tickets are real too).
func (m *Module) seed(ctx context.Context, t tenants.Tenant, _ *app.Seeding) error {
	dir := m.app.Events()
	if dir == nil {
		m.app.Log.Warn("inventory demo: no event directory; nothing seeded", "tenant", t.Slug)
		return nil
	}
	evs, err := dir.Events(ctx, t, app.EventFilter{Statuses: []string{"on_sale"}, Limit: 50})
	if err != nil {
		return err
	}
	if len(evs) == 0 {
		m.app.Log.Warn("inventory demo: the calendar seeded no on-sale events; nothing seeded", "tenant", t.Slug)
		return nil
	}
	// The flagship: the first on-sale event at a venue large enough for a
	// 2,000-seat map and a 1,000-place floor (else the largest venue's).
	big := 0
	for i, e := range evs {
		if e.VenueCapacity >= 3000 {
			big = i
			break
		}
		if e.VenueCapacity > evs[big].VenueCapacity {
			big = i
		}
	}
	flagship := evs[big]
	if err := m.svc.Configure(ctx, t, flagship, DemoSetup(flagship.VenueCapacity, 2000, 1000, demoCurrency(flagship))); err != nil {
		return fmt.Errorf("inventory demo %s: %w", flagship.Title, err)
	}
	others := append(append([]app.EventInfo(nil), evs[:big]...), evs[big+1:]...)
	for i, ev := range others {
		if i >= 6 {
			break
		}
		seats := min(600, ev.VenueCapacity*6/10)
		if err := m.svc.Configure(ctx, t, ev, DemoSetup(ev.VenueCapacity, seats, min(300, ev.VenueCapacity-seats), demoCurrency(ev))); err != nil {
			return fmt.Errorf("inventory demo %s: %w", ev.Title, err)
		}
		if i == 1 {
			if err := m.seedPricing(ctx, t, ev); err != nil {
				return fmt.Errorf("inventory demo pricing %s: %w", ev.Title, err)
			}
		}
		if i == 0 {
			orders, err := m.sellSome(ctx, t, ev)
			if err != nil {
				return err
			}
			if err := m.doorsOpen(ctx, t, ev, orders); err != nil {
				return err
			}
		}
	}
	return nil
}

// sellSome sells part of an event through the real hold → paid path, so
// its tickets and ledger entries are real too; it returns the orders.
func (m *Module) sellSome(ctx context.Context, t tenants.Tenant, ev app.EventInfo) ([]uuid.UUID, error) {
	var orders []uuid.UUID
	for b := 0; b < 24; b++ {
		buyer := fmt.Sprintf("demo-buyer-%d", b)
		row, first := b%12+1, 3+(b/12)*6
		seats := []string{fmt.Sprintf("A-%d-%d", row, first), fmt.Sprintf("A-%d-%d", row, first+1)}
		h, err := m.svc.CreateHold(ctx, t, ev, HoldRequest{Seats: seats, BuyerID: buyer})
		if err != nil {
			return nil, fmt.Errorf("inventory demo hold: %w", err)
		}
		o, err := m.svc.CreateOrderWithoutPayment(ctx, t, h.ID, buyer, BuyerInfo{Email: fmt.Sprintf("fan%d@example.com", b), Name: fmt.Sprintf("Demo Fan %d", b)})
		if err != nil {
			return nil, fmt.Errorf("inventory demo order: %w", err)
		}
		if _, err := m.svc.PaymentSucceeded(ctx, t, "demo-"+o.ID.String(), "", o.AmountMinor, o.Currency, o.ID); err != nil {
			return nil, fmt.Errorf("inventory demo payment: %w", err)
		}
		orders = append(orders, o.ID)
	}
	return orders, nil
}

// doorsOpen scans the sold tickets of the demo's night through the real
// check-in path, so the attendance endpoint and the log have something to
// show: three of four holders are in, one in eight of those went out again,
// and a few were scanned twice at another gate.
func (m *Module) doorsOpen(ctx context.Context, t tenants.Tenant, ev app.EventInfo, orders []uuid.UUID) error {
	if _, err := m.svc.SetDoorSettings(ctx, t, DoorSettings{EventID: ev.ID, Reentry: true}); err != nil {
		return fmt.Errorf("inventory demo door: %w", err)
	}
	n := 0
	for _, id := range orders {
		tickets, err := m.svc.Tickets(ctx, t, id)
		if err != nil {
			return err
		}
		for _, tk := range tickets {
			n++
			gate := []string{"North", "South"}[n%2]
			scan := func(typ string) error {
				_, err := m.svc.CheckIn(ctx, t, Scan{EventID: ev.ID, Token: tk.Token, Type: typ, Gate: gate, DeviceID: "demo-scanner-" + gate,
					Nonce: uuid.NewString()})
				return err
			}
			if n%4 == 0 {
				continue // not arrived yet
			}
			if err := scan(ScanEntry); err != nil {
				return fmt.Errorf("inventory demo check-in: %w", err)
			}
			if n%7 == 0 {
				gate = "VIP Lane"
				if err := scan(ScanEntry); err != nil { // already admitted
					return err
				}
			}
			if n%8 == 1 {
				if err := scan(ScanExit); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func demoCurrency(ev app.EventInfo) string {
	switch {
	case ev.Timezone == "Europe/London":
		return "GBP"
	case strings.HasPrefix(ev.Timezone, "Europe/"):
		return "EUR"
	case ev.Timezone == "Asia/Tokyo":
		return "JPY"
	}
	return "USD"
}

// DemoSetup is a configuration with a reserved map of about seats seats
// (sections of 20 rows of 25) and a GA pool, fitted under capacity.
func DemoSetup(capacity, seats, ga int, currency string) Setup {
	if capacity > 0 && seats+ga > capacity {
		ga = max(0, capacity-seats)
		if ga == 0 {
			seats = capacity
		}
	}
	const perRow, rows = 25, 20
	var layout Layout
	left := seats
	for s := 0; left > 0; s++ {
		sec := LayoutSection{Name: string(rune('A' + s)), Zone: "Stalls"}
		for r := 1; r <= rows && left > 0; r++ {
			n := min(perRow, left)
			sec.Rows = append(sec.Rows, LayoutRow{Label: fmt.Sprint(r), Seats: n})
			left -= n
		}
		layout.Sections = append(layout.Sections, sec)
	}
	zones := []ZoneInput{{Name: "Stalls", Kind: KindReserved}}
	tiers := []TierInput{{Name: "Stalls", Zone: "Stalls", Price: 6500, Currency: currency, MaxPerOrder: 8}}
	if ga > 0 {
		zones = append(zones, ZoneInput{Name: "Standing", Kind: KindGA, Capacity: ga})
		tiers = append(tiers, TierInput{Name: "Standing", Zone: "Standing", Price: 3900, Currency: currency, MaxPerOrder: 10})
	}
	web := seats + ga
	return Setup{Zones: zones, Tiers: tiers, Layout: &layout, Quotas: map[string]int{ChannelWeb: web}}
}

// seedPricing turns on demand pricing for the event's GA tier (as if three
// days ago, so the notice has run), sells part of it through the real hold
// → paid path, and replays the last hour of the pricing job so the price
// history shows the price rising with demand.
func (m *Module) seedPricing(ctx context.Context, t tenants.Tenant, ev app.EventInfo) error {
	inv, err := m.svc.Inventory(ctx, t, ev.ID)
	if err != nil {
		return err
	}
	var tier *Tier
	for i, ti := range inv.Tiers {
		for _, z := range inv.Zones {
			if z.ID == ti.ZoneID && z.Kind == KindGA {
				tier = &inv.Tiers[i]
			}
		}
	}
	if tier == nil {
		return nil
	}
	face := tier.PriceMinor - tier.FeeMinor
	now := time.Now()
	if _, err := m.svc.SetPriceRuleAt(ctx, t, ev.ID, tier.ID, PriceRuleInput{Enabled: true, Floor: face * 8 / 10, Ceiling: face * 16 / 10,
		MaxStep: max(face/20, 1), MinIntervalSeconds: 300}, now.Add(-72*time.Hour)); err != nil {
		return err
	}
	for b := 0; b < 10; b++ {
		buyer := fmt.Sprintf("demo-pricing-buyer-%d", b)
		h, err := m.svc.CreateHold(ctx, t, ev, HoldRequest{TierID: &tier.ID, Quantity: 4, BuyerID: buyer})
		if err != nil {
			return err
		}
		o, err := m.svc.CreateOrderWithoutPayment(ctx, t, h.ID, buyer, BuyerInfo{Email: fmt.Sprintf("floor%d@example.com", b), Name: fmt.Sprintf("Floor Fan %d", b)})
		if err != nil {
			return err
		}
		if _, err := m.svc.PaymentSucceeded(ctx, t, "demo-"+o.ID.String(), "", o.AmountMinor, o.Currency, o.ID); err != nil {
			return err
		}
	}
	for step := 5; step >= 0; step-- {
		if _, err := m.svc.pricing.RecomputeAt(ctx, t, now.Add(-time.Duration(step)*10*time.Minute)); err != nil {
			return err
		}
	}
	return nil
}
