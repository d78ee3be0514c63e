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
		if n := s.count(t, `SELECT count(DISTINCT event_id) FROM inv_seats WHERE state = 'sold'`); n != 1 {
			t.Fatalf("%d partly sold events", n)
		}
		// 48 seats at the night's show, 40 floor tickets at the demand-priced one.
		if n := s.count(t, `SELECT count(*) FROM inv_tickets WHERE status = 'valid'`); n != 88 {
			t.Fatalf("%d demo tickets", n)
		}
		if n := s.count(t, `SELECT count(*) FROM inv_price_history WHERE new_price > old_price`); n < 1 {
			t.Fatalf("the demand-priced tier has %d rises in its history", n)
		}
		// The night's door is open: 36 of 48 holders admitted, some out
		// again; the attendance endpoint shows it.
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
		if at.Sold != 48 || at.Admitted != 36 || at.Inside == 0 || at.Inside >= 36 || at.LastScan == nil {
			t.Fatalf("demo attendance %+v", at)
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
