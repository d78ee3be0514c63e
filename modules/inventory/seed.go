package inventory

import (
	"context"
	"fmt"
	"marquee/modules/inventory/internal/limits"
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
	evs, err := dir.Events(ctx, t, app.EventFilter{Statuses: []string{"on_sale"}, Limit: 500})
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
			// Every event the portal shows as on sale sells on the
			// storefront: the rest get a small map and floor.
			seats := min(100, ev.VenueCapacity/2)
			if err := m.svc.Configure(ctx, t, ev, DemoSetup(ev.VenueCapacity, seats, min(200, ev.VenueCapacity-seats), demoCurrency(ev))); err != nil {
				return fmt.Errorf("inventory demo %s: %w", ev.Title, err)
			}
			continue
		}
		seats := min(600, ev.VenueCapacity*6/10)
		if err := m.svc.Configure(ctx, t, ev, DemoSetup(ev.VenueCapacity, seats, min(300, ev.VenueCapacity-seats), demoCurrency(ev))); err != nil {
			return fmt.Errorf("inventory demo %s: %w", ev.Title, err)
		}
		if i == 2 {
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
			if err := m.seedLimits(ctx, t, ev); err != nil {
				return err
			}
		}
		if i == 1 {
			if err := m.seedAfterSale(ctx, t, ev); err != nil {
				return err
			}
		}
		if i == 3 && seats >= 6 && ev.VenueCapacity > seats {
			if err := m.seedCart(ctx, t, ev); err != nil {
				return fmt.Errorf("inventory demo cart %s: %w", ev.Title, err)
			}
		}
	}
	// The calendar's sold-out shows of the coming days are sold out here
	// too (a small floor, every place sold through the real path), so the
	// storefront shows them as sold out rather than leaving them off.
	gone, err := dir.Events(ctx, t, app.EventFilter{Statuses: []string{"sold_out"}, From: time.Now().UTC(), Limit: 2})
	if err != nil {
		return err
	}
	for _, ev := range gone {
		if err := m.sellOut(ctx, t, ev); err != nil {
			return fmt.Errorf("inventory demo %s: %w", ev.Title, err)
		}
	}
	return nil
}

// seedAfterSale makes the demo's second night a sold-out floor: its
// Standing places sold through the real paid path, a waiting list, two
// resale listings and one transfer, so the storefront shows "Join the
// waitlist" and resale tickets and the portal's after-sale page is alive.
func (m *Module) seedAfterSale(ctx context.Context, t tenants.Tenant, ev app.EventInfo) error {
	const standing = 30
	cur := demoCurrency(ev)
	if err := m.svc.Configure(ctx, t, ev, DemoSetup(ev.VenueCapacity, min(200, ev.VenueCapacity/2), standing, cur)); err != nil {
		return fmt.Errorf("inventory demo sold-out %s: %w", ev.Title, err)
	}
	inv, err := m.svc.Inventory(ctx, t, ev.ID)
	if err != nil {
		return err
	}
	var tier uuid.UUID
	for _, ti := range inv.Tiers {
		if ti.Name == "Standing" {
			tier = ti.ID
		}
	}
	var tickets []Ticket
	for b := 0; b < standing/10; b++ {
		buyer := fmt.Sprintf("demo-floor-%d", b)
		h, err := m.svc.CreateHold(ctx, t, ev, HoldRequest{TierID: &tier, Quantity: 10, BuyerID: buyer})
		if err != nil {
			return fmt.Errorf("inventory demo floor hold: %w", err)
		}
		o, err := m.svc.CreateOrderWithoutPayment(ctx, t, h.ID, buyer, BuyerInfo{Email: fmt.Sprintf("floor%d@example.com", b), Name: fmt.Sprintf("Floor Fan %d", b)})
		if err != nil {
			return fmt.Errorf("inventory demo floor order: %w", err)
		}
		if _, err := m.svc.PaymentSucceeded(ctx, t, "demo-"+o.ID.String(), "", o.AmountMinor, o.Currency, o.ID); err != nil {
			return fmt.Errorf("inventory demo floor payment: %w", err)
		}
		ts, err := m.svc.Tickets(ctx, t, o.ID)
		if err != nil {
			return err
		}
		tickets = append(tickets, ts...)
	}
	for i, who := range []string{"ada", "grace", "linus", "margaret"} {
		if _, err := m.svc.JoinWaitlist(ctx, t, ev.ID, WaitlistJoin{TierID: tier.String(), Email: who + "@example.com", Quantity: 1 + i%2}); err != nil {
			return fmt.Errorf("inventory demo waitlist: %w", err)
		}
	}
	for i, price := range []int64{3900, 3500} {
		if _, err := m.svc.ListForResale(ctx, t, tickets[i].ID, price); err != nil {
			return fmt.Errorf("inventory demo resale: %w", err)
		}
	}
	if _, err := m.svc.TransferTicket(ctx, t, tickets[len(tickets)-1].ID, TransferRecipient{Name: "Sam Friend", Email: "sam@example.com"}, nil); err != nil {
		return fmt.Errorf("inventory demo transfer: %w", err)
	}
	return nil
}

// seedCart buys seats and standing tickets in one order the way a buyer
// with two tabs does: two "new holds" of one buyer, which the server makes
// one cart (the second joins the first), paid through the real path.
func (m *Module) seedCart(ctx context.Context, t tenants.Tenant, ev app.EventInfo) error {
	inv, err := m.svc.Inventory(ctx, t, ev.ID)
	if err != nil {
		return err
	}
	var standing *uuid.UUID
	for _, ti := range inv.Tiers {
		if ti.Name == "Standing" {
			standing = &ti.ID
		}
	}
	if standing == nil {
		return nil
	}
	const buyer = "demo-cart-buyer"
	first, err := m.svc.CreateHold(ctx, t, ev, HoldRequest{Seats: []string{"A-1-5", "A-1-6"}, BuyerID: buyer})
	if err != nil {
		return err
	}
	cart, err := m.svc.CreateHold(ctx, t, ev, HoldRequest{TierID: standing, Quantity: 2, BuyerID: buyer})
	if err != nil {
		return err
	}
	if cart.ID != first.ID {
		return fmt.Errorf("the second hold of one buyer made hold %s beside their cart %s", cart.ID, first.ID)
	}
	o, err := m.svc.CreateOrderWithoutPayment(ctx, t, cart.ID, buyer, BuyerInfo{Email: "two-tabs@example.com", Name: "Tab Two"})
	if err != nil {
		return err
	}
	_, err = m.svc.PaymentSucceeded(ctx, t, "demo-"+o.ID.String(), "", o.AmountMinor, o.Currency, o.ID)
	return err
}

// soldOutPlaces is the floor of each demo sold-out show, sold in orders of 10.
const soldOutPlaces = 20

// sellOut gives a sold-out show a small standing floor and sells all of it.
func (m *Module) sellOut(ctx context.Context, t tenants.Tenant, ev app.EventInfo) error {
	cur := demoCurrency(ev)
	setup := Setup{Zones: []ZoneInput{{Name: "Standing", Kind: KindGA, Capacity: soldOutPlaces}},
		Tiers:  []TierInput{{Name: "Standing", Zone: "Standing", Price: 3900, Currency: cur, MaxPerOrder: 10}},
		Quotas: map[string]int{ChannelWeb: soldOutPlaces}}
	if err := m.svc.Configure(ctx, t, ev, setup); err != nil {
		return err
	}
	inv, err := m.svc.Inventory(ctx, t, ev.ID)
	if err != nil {
		return err
	}
	tier := inv.Tiers[0].ID
	// Sold while it was on sale: the calendar's seed books these shows on
	// sale and marks them sold out at once, before this seed runs.
	onSale := ev
	onSale.Status = "on_sale"
	for b := 0; b < soldOutPlaces/10; b++ {
		buyer := fmt.Sprintf("demo-soldout-%d", b)
		h, err := m.svc.CreateHold(ctx, t, onSale, HoldRequest{TierID: &tier, Quantity: 10, BuyerID: buyer})
		if err != nil {
			return err
		}
		o, err := m.svc.CreateOrderWithoutPayment(ctx, t, h.ID, buyer, BuyerInfo{Email: fmt.Sprintf("early%d@example.com", b), Name: fmt.Sprintf("Early Fan %d", b)})
		if err != nil {
			return err
		}
		if _, err := m.svc.PaymentSucceeded(ctx, t, "demo-"+o.ID.String(), "", o.AmountMinor, o.Currency, o.ID); err != nil {
			return err
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
		email := fmt.Sprintf("fan%d@example.com", b)
		switch b {
		case 5:
			// The local SMTP catcher refuses these for good and for now:
			// the mail page shows a bounce and a message being retried.
			email = "fan5@bounce.invalid"
		case 9:
			email = "fan9@tempfail.invalid"
		}
		o, err := m.svc.CreateOrderWithoutPayment(ctx, t, h.ID, buyer, BuyerInfo{Email: email, Name: fmt.Sprintf("Demo Fan %d", b)})
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
	var notYet, online []string
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
				notYet = append(notYet, tk.Token)
				continue // not arrived yet
			}
			if err := scan(ScanEntry); err != nil {
				return fmt.Errorf("inventory demo check-in: %w", err)
			}
			if n%8 != 1 {
				online = append(online, tk.Token)
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
	return m.offlineDoors(ctx, t, ev, notYet, online)
}

// offlineDoors syncs two handheld scanners' offline logs, so the conflict
// report has something to show: the west handheld admitted the late
// arrivals 20 minutes ago, the east one (its clock two minutes fast) half of
// them again a few minutes later, and three holders the turnstiles admitted
// just now had already been let in by the west handheld (earlier: its scan
// becomes the admission).
func (m *Module) offlineDoors(ctx context.Context, t tenants.Tenant, ev app.EventInfo, notYet, online []string) error {
	now := m.app.Now().UTC()
	west := SyncBatch{EventID: ev.ID, DeviceID: "demo-handheld-west", SentAt: now}
	east := SyncBatch{EventID: ev.ID, DeviceID: "demo-handheld-east", SentAt: now.Add(2 * time.Minute)}
	for i, tok := range notYet {
		at := now.Add(-20*time.Minute + time.Duration(i)*17*time.Second)
		west.Scans = append(west.Scans, SyncScan{Token: tok, Type: ScanEntry, Gate: "West", Nonce: uuid.NewString(), ScannedAt: at, DeviceResult: ResultAdmit})
		if i%2 == 0 {
			east.Scans = append(east.Scans, SyncScan{Token: tok, Type: ScanEntry, Gate: "East", Nonce: uuid.NewString(),
				ScannedAt: at.Add(2*time.Minute + time.Duration(i)*23*time.Second), DeviceResult: ResultAdmit})
		}
	}
	for i, tok := range online[:min(3, len(online))] {
		west.Scans = append(west.Scans, SyncScan{Token: tok, Type: ScanEntry, Gate: "West", Nonce: uuid.NewString(),
			ScannedAt: now.Add(-30*time.Minute + time.Duration(i)*time.Minute), DeviceResult: ResultAdmit})
	}
	for _, b := range []SyncBatch{west, east} {
		if len(b.Scans) == 0 {
			continue
		}
		if _, err := m.svc.SyncCheckins(ctx, t, b); err != nil {
			return fmt.Errorf("inventory demo offline sync: %w", err)
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
// (sections of 20 rows of 25, as the portal's seat-map builder makes them:
// rows curved round the stage, an aisle after seat 12, the two outer seats
// of each section's front row accessible) and a GA pool, fitted under
// capacity.
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
		sec := LayoutSection{Name: string(rune('A' + s)), Zone: "Stalls", Curve: 30, Aisles: []int{12}}
		for r := 1; r <= rows && left > 0; r++ {
			n := min(perRow, left)
			row := LayoutRow{Label: fmt.Sprint(r), Seats: n}
			if r == 1 && n > 1 {
				row.Accessible = []int{1, n}
			}
			sec.Rows = append(sec.Rows, row)
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

// seedLimits turns the chain's limits on and runs a few checkouts through
// the rule engine, so the review queue has something to show: quick
// checkouts waiting for review, and a card tester blocked.
func (m *Module) seedLimits(ctx context.Context, t tenants.Tenant, ev app.EventInfo) error {
	st := limits.Settings{Enabled: true, Thresholds: limits.DefaultThresholds()}
	if _, err := m.svc.limits.SetSettings(ctx, t, st); err != nil {
		return err
	}
	for i := range 4 {
		buyer := fmt.Sprintf("demo-quick-%d", i)
		device, _ := m.svc.NewDeviceToken(t) // the storefront's device cookie
		h, err := m.svc.CreateHold(ctx, t, ev, HoldRequest{Seats: []string{fmt.Sprintf("A-%d-20", i+1)}, BuyerID: buyer,
			ClientIP: fmt.Sprintf("198.51.100.%d", 10+i), DeviceID: device})
		if err != nil {
			return fmt.Errorf("inventory demo limits hold: %w", err)
		}
		email := fmt.Sprintf("quick%d@example.com", i)
		if i == 3 {
			// Declined cards from this device in the last hour.
			for j := range 3 {
				dh, err := m.svc.CreateHold(ctx, t, ev, HoldRequest{Seats: []string{fmt.Sprintf("A-%d-21", j+6)}, BuyerID: buyer + "-d", ClientIP: "198.51.100.13", DeviceID: device})
				if err != nil {
					return fmt.Errorf("inventory demo declines: %w", err)
				}
				o, err := m.svc.CreateOrderWithoutPayment(ctx, t, dh.ID, buyer+"-d", BuyerInfo{Email: email, Name: "Card Tester"})
				if err != nil {
					return fmt.Errorf("inventory demo declines: %w", err)
				}
				// Declined through the real path: the order fails, its hold is released.
				if _, err := m.svc.orders.PaymentFailed(ctx, t, "demo-decline-"+o.ID.String(), "", o.ID); err != nil {
					return fmt.Errorf("inventory demo declines: %w", err)
				}
			}
		}
		// Refusals are what the demo shows: they are recorded, not errors.
		_, _ = m.svc.limits.CheckOrder(ctx, t, limits.Checkout{HoldID: h.ID, BuyerID: buyer, Email: email, DeviceID: device})
	}
	return nil
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
