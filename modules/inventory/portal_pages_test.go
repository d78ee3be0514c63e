package inventory_test

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// The portal's ticket list: upcoming events first (soonest at the top) with
// sold / capacity, search and filters; past events on request, without
// the set-up form; the event page in the venue's currency, without the
// counters' internals.
func TestPortalTicketPages(t *testing.T) {
	t.Parallel()
	env, inv := startEnv(t)
	s := newShop(t, env, inv, "portal-list")
	// Each booked event gets its own day, later than the one before.
	later := s.event(t, "Later Show") // despite its title, the earlier of the two
	sooner := s.event(t, "Sooner Show")
	s.configure(t, later, simpleSetup(2, 5, 20, nil))
	past := time.Now().UTC().AddDate(0, 0, -3).Truncate(time.Hour)
	res := s.do(t, "POST", "/api/v1/venues/"+s.venue+"/events", map[string]any{"stage_id": s.stage, "title": "Last Week Show", "category": "concert",
		"status": "confirmed", "starts_at": past.Format(time.RFC3339), "ends_at": past.Add(3 * time.Hour).Format(time.RFC3339)})
	mustStatus(t, res, http.StatusCreated)
	var pastEv struct{ ID string }
	res.JSON(t, &pastEv)
	page := func(path string) string {
		t.Helper()
		res := s.do(t, "GET", path, nil, "Accept", "text/html")
		if res.Status != http.StatusOK {
			t.Fatalf("GET %s: %d %.300s", path, res.Status, res.Body)
		}
		return string(res.Body)
	}
	list := page("/portal/inventory")
	if strings.Contains(list, "Last Week Show") || !strings.Contains(list, "Later Show") || !strings.Contains(list, "Sooner Show") {
		t.Fatal("the default list shows upcoming events only")
	}
	if i, j := strings.Index(list, "Later Show"), strings.Index(list, "Sooner Show"); i > j {
		t.Error("upcoming events are not soonest first")
	}
	if !strings.Contains(list, "0 / 30") || !strings.Contains(list, "no tickets yet") {
		t.Error("sold / capacity column")
	}
	if l := page("/portal/inventory?q=sooner"); strings.Contains(l, "Later Show") || !strings.Contains(l, "Sooner Show") {
		t.Error("search")
	}
	if l := page("/portal/inventory?when=past"); !strings.Contains(l, "Last Week Show") || strings.Contains(l, "Later Show") {
		t.Error("past filter")
	}
	if l := page("/portal/inventory?when=all&status=on_sale"); strings.Contains(l, "Last Week Show") || !strings.Contains(l, "Later Show") {
		t.Error("status filter")
	}
	ev := page("/portal/inventory/" + pastEv.ID)
	if strings.Contains(ev, "configure-link") || !strings.Contains(ev, "This event is over") {
		t.Error("a past event offers the ticket set-up")
	}
	if ed := page("/portal/inventory/" + pastEv.ID + "/ticketing"); strings.Contains(ed, `id="editor"`) || !strings.Contains(ed, "This event is over") {
		t.Error("a past event's ticketing editor offers a form")
	}
	ev = page("/portal/inventory/" + later)
	for _, want := range []string{"0 of 30 sold", "prices in EUR", `href="/portal/inventory/` + later + `/ticketing"`} {
		if !strings.Contains(ev, want) {
			t.Errorf("the event's ticket page lacks %q", want)
		}
	}
	if strings.Contains(ev, "Shards") {
		t.Error("the event's ticket page shows the counters' shards")
	}
	if strings.Contains(page("/portal/inventory/"+sooner), "prices in USD") || !strings.Contains(page("/portal/inventory/"+later+"/ticketing"), "Prices in EUR") {
		t.Error("a Berlin venue's prices are not in euros")
	}
}
