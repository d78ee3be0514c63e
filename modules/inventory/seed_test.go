package inventory_test

import (
	"net/http"
	"testing"

	"gorm.io/gorm"

	"marquee/app"

	"marquee/modules/inventory"
)

// The demo seed leaves acme's storefront alive: an on-sale event with a
// 2,000-seat map and a 1,000-place pool, and one already partly sold.
func TestDemoSeed(t *testing.T) {
	t.Parallel()
	env, _ := startEnv(t)
	demo, err := env.App.SeedDemo(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range demo {
		if d.Tenant.Slug != "acme" {
			continue
		}
		res := env.Do(t, "GET", "acme", "/api/v1/events?status=on_sale", "", nil)
		mustStatus(t, res, http.StatusOK)
		var cat struct{ Items []inventory.CatalogueItem }
		res.JSON(t, &cat)
		if len(cat.Items) < 2 {
			t.Fatalf("acme catalogue: %s", res.Body)
		}
		s := &shop{env: env, t: d.Tenant, slug: "acme"}
		if n := s.count(t, `SELECT count(*) FROM inv_events e WHERE (SELECT count(*) FROM inv_seats s WHERE s.event_id = e.event_id) >= 2000
			AND EXISTS (SELECT 1 FROM inv_counters c WHERE c.event_id = e.event_id AND c.kind = 'pool' AND c.capacity = 1000)`); n != 1 {
			t.Fatalf("%d flagship events", n)
		}
		// The demo maps are built as the editor's builder builds them (and
		// open in it as built): curved rows, an aisle, accessible seats.
		if n := s.count(t, `SELECT count(*) FROM inv_events e WHERE e.layout->'sections'->0->>'curve' = '30'
			AND e.layout->'sections'->0->'aisles'->>0 = '12' AND EXISTS (SELECT 1 FROM inv_seats s WHERE s.event_id = e.event_id AND s.accessible)`); n == 0 {
			t.Fatal("no demo map made as the builder makes them")
		}
		// One story: every event the portal shows as on sale has tickets.
		if n := s.count(t, `SELECT count(*) FROM cal_events e WHERE e.status = 'on_sale' AND NOT EXISTS (SELECT 1 FROM inv_events i WHERE i.event_id = e.id)`); n != 0 {
			t.Fatalf("%d on-sale events without tickets", n)
		}
		// The night with its door open, and one order of seats and
		// standing tickets made by one buyer's two "new holds" (one cart).
		if n := s.count(t, `SELECT count(DISTINCT event_id) FROM inv_seats WHERE state = 'sold'`); n != 2 {
			t.Fatalf("%d partly sold events", n)
		}
		if n := s.count(t, `SELECT count(*) FROM inv_orders o JOIN inv_holds h ON h.id = o.hold_id
			WHERE o.status = 'paid' AND h.buyer_id = 'demo-cart-buyer' AND h.quantity = 4 AND h.cart
			AND (SELECT count(*) FROM inv_tickets k WHERE k.order_id = o.id AND k.seat_id IS NULL) = 2`); n != 1 {
			t.Fatalf("%d demo orders of one cart with seats and standing tickets", n)
		}
		// The review queue and the mail page have something to show.
		for q, want := range map[string]int64{
			`SELECT count(*) FROM inv_risk_decisions WHERE action = 'review' AND reviewed_at IS NULL`: 3,
			`SELECT count(*) FROM inv_risk_decisions WHERE action = 'block'`:                          1,
			// One tickets mail per paid order, however the order was paid.
			`SELECT count(*) FROM inv_orders o WHERE o.status = 'paid' AND (SELECT count(*) FROM mail_outbox m WHERE m.kind = 'inventory.tickets' AND m.purpose_key = 'order:' || o.id || ':tickets') <> 1`: 0,
			`SELECT count(*) FROM mail_outbox WHERE to_email LIKE '%@bounce.invalid'`: 1,
		} {
			if n := s.count(t, q); n != want {
				t.Errorf("%s = %d, want %d", q, n, want)
			}
		}
		if n := s.count(t, `SELECT count(*) FROM inv_tickets WHERE status = 'valid' AND seat_id IS NOT NULL`); n != 48+2 {
			t.Fatalf("%d demo seat tickets", n)
		}
		// The calendar's coming sold-out shows are sold out on the storefront too.
		res = env.Do(t, "GET", "acme", "/api/v1/events?status=sold_out", "", nil)
		mustStatus(t, res, http.StatusOK)
		var gone struct{ Items []inventory.CatalogueItem }
		res.JSON(t, &gone)
		if len(gone.Items) == 0 {
			t.Fatalf("no sold-out show in the catalogue: %s", res.Body)
		}
		for _, it := range gone.Items {
			if it.Available != 0 || it.MinPrice == nil {
				t.Fatalf("sold-out show %s: %d left, price %v", it.Title, it.Available, it.MinPrice)
			}
		}
		// After the sale: a waiting list on the sold-out floor, two
		// listings on sale, one transfer.
		if n := s.count(t, `SELECT count(*) FROM inv_waitlist WHERE status = 'waiting'`); n != 4 {
			t.Fatalf("%d waiting", n)
		}
		if n := s.count(t, `SELECT count(*) FROM inv_resale_listings WHERE status = 'listed'`); n != 2 {
			t.Fatalf("%d listings", n)
		}
		if n := s.count(t, `SELECT count(*) FROM inv_ticket_transfers`); n != 1 {
			t.Fatalf("%d transfers", n)
		}
		if n := s.count(t, `SELECT count(*) FROM inv_price_history WHERE new_price > old_price`); n < 1 {
			t.Fatalf("the demand-priced tier has %d rises in its history", n)
		}
		// The night's door is open: 36 of 48 holders admitted online, some
		// out again, the other 12 by offline handhelds; the attendance
		// endpoint shows it.
		var ev string
		s.sql(t, func(tx *gorm.DB) error { return tx.Raw(`SELECT DISTINCT event_id FROM inv_checkins`).Row().Scan(&ev) })
		login := env.Do(t, "POST", "acme", "/api/v1/auth/login", "", map[string]string{"email": "owner@acme.test", "password": app.DemoPassword})
		mustStatus(t, login, http.StatusOK)
		var tok struct{ Token string }
		login.JSON(t, &tok)
		s.tok = tok.Token
		res = s.do(t, "GET", "/api/v1/events/"+ev+"/attendance", nil)
		mustStatus(t, res, http.StatusOK)
		var at inventory.Attendance
		res.JSON(t, &at)
		if at.Sold != 48 || at.Admitted != 48 || at.Inside == 0 || at.Inside >= 48 || at.LastScan == nil {
			t.Fatalf("demo attendance %+v", at)
		}
		// The conflict report: 6 late arrivals admitted by both handhelds,
		// 3 online admissions preceded by the west handheld's.
		res = s.do(t, "GET", "/api/v1/events/"+ev+"/checkin-conflicts", nil)
		mustStatus(t, res, http.StatusOK)
		var rep inventory.ConflictReport
		res.JSON(t, &rep)
		if rep.Total != 9 || rep.Tickets != 9 {
			t.Fatalf("demo conflicts %+v", rep)
		}
		// Demo sales are settled without a payment intent, and their ledger
		// memos say so instead of ending with an empty id.
		if n := s.count(t, `SELECT count(*) FROM ledger_entries WHERE kind = 'ticket.sale' AND memo ~ '^2 tickets, event [0-9a-f-]{36}, no payment intent$'`); n != 24 {
			t.Fatalf("%d demo sale memos as expected", n)
		}
		if n := s.count(t, `SELECT count(*) FROM ledger_entries WHERE memo ~ '(payment|received) *(,|$)' OR memo ~ '(^|[^0-9])1 tickets'`); n != 0 {
			t.Fatalf("%d ledger memos with an empty payment id or a wrong plural", n)
		}
		return
	}
	t.Fatal("no acme demo tenant")
}
