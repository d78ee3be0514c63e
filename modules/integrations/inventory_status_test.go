package integrations_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"marquee/app/apptest"
	"marquee/modules/integrations"
	"marquee/modules/integrations/fakes/ticketmaster"
)

// Ticketmaster's Inventory Status API is the cheap pre-check: one call for
// every listing tells whether anything moved, and the Partner counts (two
// calls a listing) are read only when orders moved or the status changed.
// Reconciliation asks it first and does not page counts of an event
// Ticketmaster does not know, or when the API refuses us.
func TestTicketmasterInventoryStatus(t *testing.T) {
	e := startEnv(t)
	c := newChain(t, e, 100, map[string]int{"web": 60, "ticketmaster": 20, "eventbrite": 20})
	apptest.MustStatus(t, c.allocate(t, "ticketmaster", 20), http.StatusOK)

	// The fake's shape: one entry per id asked, UNKNOWN for an unknown id.
	res, err := http.Get(c.tm.URL + "/inventory-status/v1/availability?events=" + c.tmEvent + ",NOPE&apikey=" + tmKey)
	if err != nil {
		t.Fatal(err)
	}
	var answer []struct{ EventID, Status string }
	if err := json.NewDecoder(res.Body).Decode(&answer); err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if len(answer) != 2 || answer[0].EventID != c.tmEvent || answer[0].Status != ticketmaster.StatusAvailable || answer[1].Status != ticketmaster.StatusUnknown {
		t.Fatalf("inventory status %+v", answer)
	}

	listing := func() integrations.Listing {
		t.Helper()
		var v integrations.ChannelsView
		c.do(t, "GET", "/api/v1/integrations/events/"+c.event.String()+"/channels", nil).JSON(t, &v)
		for _, l := range v.Listings {
			if l.Channel == "ticketmaster" {
				return l
			}
		}
		t.Fatal("no Ticketmaster listing")
		return integrations.Listing{}
	}
	c.tm.Sell(c.tmEvent, 5)
	if p := c.poll(t); p.Sold != 5 || p.CountsSkipped != 0 {
		t.Fatalf("first poll %+v, want 5 sold and the counts read", p)
	}
	if l := listing(); l.TheirInventoryStatus == nil || *l.TheirInventoryStatus != ticketmaster.StatusAvailable || l.TheirSold == nil || *l.TheirSold != 5 {
		t.Fatalf("listing after the first poll: status %v, their sold %v", l.TheirInventoryStatus, l.TheirSold)
	}
	// Nothing moved: the status call and the orders page, no counts.
	partner, status := c.tm.Calls("partner"), c.tm.Calls("status")
	if p := c.poll(t); p.CountsSkipped != 1 {
		t.Fatalf("quiet poll %+v, want the counts skipped", p)
	}
	if got := c.tm.Calls("partner") - partner; got != 1 {
		t.Fatalf("a quiet poll made %d Partner calls, want 1 (the orders page; no availability or reconciliation)", got)
	}
	if c.tm.Calls("status")-status != 1 {
		t.Fatal("a quiet poll should ask the Inventory Status API once")
	}
	// Their sales bring it to few tickets left: counts read, status kept.
	c.tm.Sell(c.tmEvent, 14)
	if p := c.poll(t); p.Sold != 14 || p.CountsSkipped != 0 {
		t.Fatalf("poll after sales %+v", p)
	}
	if l := listing(); *l.TheirInventoryStatus != ticketmaster.StatusFewLeft || *l.TheirSold != 19 {
		t.Fatalf("listing: status %v, their sold %v; want FEW_TICKETS_LEFT and 19", *l.TheirInventoryStatus, *l.TheirSold)
	}

	// Reconciliation: the API refusing us stops before the counts.
	partner = c.tm.Calls("partner")
	c.tm.FailNext(http.StatusUnauthorized)
	var rec integrations.EventReconciliation
	res2 := c.do(t, "POST", "/api/v1/integrations/events/"+c.event.String()+"/reconcile", nil)
	apptest.MustStatus(t, res2, http.StatusOK)
	res2.JSON(t, &rec)
	for _, r := range rec.Channels {
		if r.Channel == "ticketmaster" && r.TheirSold != nil {
			t.Fatalf("their count %d read past a refused status call", *r.TheirSold)
		}
	}
	if c.tm.Calls("partner") != partner {
		t.Fatal("the Partner counts were asked after the Inventory Status API refused")
	}
	// An event Ticketmaster no longer knows: UNKNOWN, said on the timeline.
	c.tm.RemoveEvent(c.tmEvent)
	apptest.MustStatus(t, c.do(t, "POST", "/api/v1/integrations/events/"+c.event.String()+"/reconcile", nil), http.StatusOK)
	if c.tm.Calls("partner") != partner {
		t.Fatal("the Partner counts were asked for an event Ticketmaster does not know")
	}
	if l := listing(); *l.TheirInventoryStatus != ticketmaster.StatusUnknown {
		t.Fatalf("status %v, want UNKNOWN", *l.TheirInventoryStatus)
	}
	if c.count(t, `SELECT count(*) FROM int_syncs WHERE kind = 'reconcile' AND NOT ok AND detail LIKE '%does not know event%'`) == 0 {
		t.Fatal("the timeline does not say Ticketmaster does not know the event")
	}
}
