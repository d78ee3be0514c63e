package ops_test

import (
	"context"
	"net/http"
	"testing"

	"gorm.io/gorm"

	"marquee/app"
	"marquee/app/apptest"
	"marquee/modules/calendar"
	"marquee/modules/inventory"
	"marquee/modules/ops"
)

// The demo chain has a show night on its dashboard: zones with counts from
// the door (the inventory's demo scans), turnstiles and a head count, the
// floor's 90% alert, bar and merch revenue (net of a refund) that matches
// the ledger, incidents open and resolved, and a history to chart.
func TestDemoSeed(t *testing.T) {
	ae := apptest.Start(t, dbURL, apptest.Options{Modules: []app.Module{calendar.New(), inventory.New(), ops.New()}})
	if _, err := ae.App.SeedDemo(context.Background()); err != nil {
		t.Fatalf("seed: %v", err)
	}
	res := ae.Do(t, "POST", "acme", "/api/v1/auth/login", "", map[string]string{"email": "owner@acme.test", "password": app.DemoPassword})
	mustStatus(t, res, http.StatusOK)
	tok := decode[struct{ Token string }](t, res.Body).Token
	var event string
	acme, err := ae.App.Tenants.Lookup(context.Background(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	c := &chain{e: &env{Env: ae}, t: acme, slug: "acme", tok: tok}
	c.event = firstString(t, c, `SELECT event_id::text FROM ops_zones LIMIT 1`)
	event = c.event
	res = c.do(t, "GET", "/api/v1/events/"+event+"/dashboard", nil)
	mustStatus(t, res, http.StatusOK)
	d := decode[ops.Dashboard](t, res.Body)
	sources := map[string]string{}
	for _, z := range d.Zones {
		sources[z.Zone] = z.Source
	}
	if len(d.Zones) != 3 || sources["Standing"] != "turnstile" && sources["Standing"] != "door" || sources["Terrace bar"] != "manual" {
		t.Fatalf("zones: %+v", d.Zones)
	}
	if d.Revenue == nil || len(d.Revenue.Totals) != 1 || d.Revenue.Totals[0].NetMinor <= 0 || d.Revenue.Totals[0].RefundsMinor != 650 || len(d.Revenue.ByStand) != 3 {
		t.Fatalf("revenue: %+v", d.Revenue)
	}
	if ledger := c.count(t, `SELECT coalesce(sum(amount_minor), 0) FROM ledger_entries WHERE kind IN ('pos.sale', 'pos.refund')`); int64(ledger) != d.Revenue.Totals[0].NetMinor {
		t.Fatalf("ledger %d, dashboard %d", ledger, d.Revenue.Totals[0].NetMinor)
	}
	if d.Incidents.Acknowledged != 1 || d.Incidents.Resolved != 1 || len(d.Alerts) == 0 {
		t.Fatalf("incidents %+v alerts %+v", d.Incidents, d.Alerts)
	}
	// The demo's alerts and incidents went to its contacts through the core's mail.
	if n := c.count(t, `SELECT count(*) FROM mail_outbox WHERE kind = 'ops.capacity_alert' AND ref = ?`, event); n < 2*len(d.Alerts) {
		t.Fatalf("%d alert mails for %d alerts and two alert contacts", n, len(d.Alerts))
	}
	if n := c.count(t, `SELECT count(*) FROM mail_outbox WHERE kind = 'ops.incident' AND ref = ?`, event); n != 2 {
		t.Fatalf("%d incident mails, want one per incident to the duty manager", n)
	}
	rep := decode[ops.Report](t, c.do(t, "GET", "/api/v1/events/"+event+"/occupancy/report", nil).Body)
	for _, z := range rep.Zones {
		if len(z.Minutes) < 90 {
			t.Fatalf("zone %s has %d minutes of history", z.Zone, len(z.Minutes))
		}
	}
	t.Logf("demo: %s at %s, zones %v, revenue net %d %s, %d alerts", d.Event.Title, d.Event.VenueName, sources, d.Revenue.Totals[0].NetMinor, d.Revenue.Totals[0].Currency, len(d.Alerts))
}

func firstString(t testing.TB, c *chain, q string) string {
	t.Helper()
	var s string
	if err := c.e.App.Tx(context.Background(), c.t, func(tx *gorm.DB) error { return tx.Raw(q).Row().Scan(&s) }); err != nil {
		t.Fatal(err)
	}
	return s
}
