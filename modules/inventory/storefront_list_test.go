package inventory_test

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// The storefront lists sold-out events as sold out (their page says so and
// offers nothing to hold) and never offers an event that has started.
func TestStorefrontSoldOutAndPast(t *testing.T) {
	t.Parallel()
	s, live, _ := onSale(t, "shelf", "Still Selling", simpleSetup(1, 4, 10, nil))
	gone := s.event(t, "All Gone")
	s.configure(t, gone, simpleSetup(1, 4, 10, nil))
	mustStatus(t, s.do(t, "PATCH", "/api/v1/venues/"+s.venue+"/events/"+gone, map[string]any{"status": "sold_out"}), http.StatusOK)
	// An event that started an hour ago, still on sale in the calendar.
	start := time.Now().UTC().Add(-time.Hour).Truncate(time.Minute)
	res := s.do(t, "POST", "/api/v1/venues/"+s.venue+"/events", map[string]any{"stage_id": s.stage, "title": "Already On", "category": "concert",
		"status": "on_sale", "starts_at": start.Format(time.RFC3339), "ends_at": start.Add(3 * time.Hour).Format(time.RFC3339)})
	mustStatus(t, res, http.StatusCreated)
	var past struct{ ID string }
	res.JSON(t, &past)
	s.configure(t, past.ID, simpleSetup(1, 4, 10, nil))

	page := func(path string) string {
		t.Helper()
		res := s.env.Do(t, "GET", s.slug, path, "", nil, "Accept", "text/html")
		mustStatus(t, res, http.StatusOK)
		return string(res.Body)
	}
	list := page("/events")
	if !strings.Contains(list, "Still Selling") || strings.Contains(list, "Already On") {
		t.Fatalf("storefront list: on-sale event shown %v, started event shown %v", strings.Contains(list, "Still Selling"), strings.Contains(list, "Already On"))
	}
	i := strings.Index(list, `data-id="`+gone+`"`)
	if i < 0 || !strings.Contains(list[i:min(len(list), i+600)], "Sold out") {
		t.Fatalf("the sold-out event is not listed as sold out")
	}
	if ev := page("/events/" + gone); !strings.Contains(ev, `id="sold-out"`) || strings.Contains(ev, `class="hold-ga"`) {
		t.Fatalf("the sold-out event's page offers tickets: banner %v, hold button %v", strings.Contains(ev, `id="sold-out"`), strings.Contains(ev, `class="hold-ga"`))
	}
	if ev := page("/events/" + past.ID); !strings.Contains(ev, `id="event-past"`) || !strings.Contains(ev, "This event has started") || strings.Contains(ev, `id="seatmap"`) {
		t.Fatal("the started event's page offers tickets")
	}
	if ev := page("/events/" + live); strings.Contains(ev, `id="sold-out"`) || !strings.Contains(ev, `class="hold-ga"`) {
		t.Fatal("the on-sale event's page does not offer tickets")
	}
}
