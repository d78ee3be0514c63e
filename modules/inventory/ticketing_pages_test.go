package inventory_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// The editor's form: refusals come back beside their fields with what was
// typed (post/redirect/get), money is converted to minor units of the
// venue's currency and local times to UTC, nothing is written until the
// whole form is right, and a past event offers no form and refuses a post.
func TestTicketingFormPostRedirectGet(t *testing.T) {
	t.Parallel()
	env, inv := startEnv(t)
	s := newShop(t, env, inv, "tform")
	ev := s.event(t, "Form Night")
	path := "/portal/inventory/" + ev + "/ticketing"
	html := func(p string) string {
		t.Helper()
		res := s.do(t, "GET", p, nil, "Accept", "text/html")
		if res.Status != http.StatusOK {
			t.Fatalf("GET %s: %d %.300s", p, res.Status, res.Body)
		}
		return string(res.Body)
	}
	post := func(v url.Values) string {
		t.Helper()
		res := s.do(t, "POST", path, []byte(v.Encode()), "Content-Type", "application/x-www-form-urlencoded", "Accept", "text/html")
		if res.Status != http.StatusSeeOther {
			t.Fatalf("POST: %d %.300s", res.Status, res.Body)
		}
		return res.Header.Get("Location")
	}
	form := url.Values{"hold_minutes": {"12"},
		"zone_name": {"Floor", ""}, "zone_kind": {"ga", "ga"}, "zone_capacity": {"120", ""},
		"tier_name": {"Floor", ""}, "tier_zone": {"Floor", ""}, "tier_price": {"45.505", ""}, "tier_fee": {"", ""},
		"tier_starts": {"2031-05-01T10:00", ""}, "tier_ends": {"2031-04-01T10:00", ""}, "tier_max": {"6", "8"},
		"quota_web": {"lots"}, "layout": {""}}
	loc := post(form)
	if !strings.Contains(loc, "form=") {
		t.Fatalf("a refused form redirects to %q", loc)
	}
	for range 2 { // a reload shows the same refusal and sends nothing
		page := html(loc)
		for _, want := range []string{"EUR has 2 decimals at most", "The sale must end after it starts", "Tickets: a whole number from 0 to 1000000",
			`value="45.505"`, `value="120"`, `value="lots"`} {
			if !strings.Contains(page, want) {
				t.Fatalf("the refused form lacks %q", want)
			}
		}
	}
	if n := s.count(t, `SELECT count(*) FROM inv_events WHERE event_id = ?`, ev); n != 0 {
		t.Fatal("a refused form configured the event")
	}
	// A seated zone without a map is refused beside the map.
	seated := url.Values{"hold_minutes": {"10"}, "zone_name": {"Stalls"}, "zone_kind": {"reserved"}, "zone_capacity": {""},
		"tier_name": {"Stalls"}, "tier_zone": {"Stalls"}, "tier_price": {"30"}, "tier_max": {"8"}, "layout": {""}}
	if page := html(post(seated)); !strings.Contains(page, "A seated zone needs a seat map") {
		t.Fatal("a seated zone without a map was not refused beside the map")
	}

	form.Set("quota_web", "100")
	form["tier_price"] = []string{"45.50", ""}
	form["tier_ends"] = []string{"2031-06-01T10:00", ""}
	loc = post(form)
	if !strings.HasSuffix(loc, path+"?done=saved") {
		t.Fatalf("a saved form redirects to %q", loc)
	}
	if !strings.Contains(html(loc), "Saved.") {
		t.Fatal("the editor does not say it saved")
	}
	// 45.50 is 4550 minor units; 10:00 in Berlin in May is 08:00 UTC.
	if n := s.count(t, `SELECT count(*) FROM inv_tiers WHERE event_id = ? AND price_minor = 4550 AND currency = 'EUR' AND max_per_order = 6
		AND sale_starts = '2031-05-01T08:00:00Z' AND sale_ends = '2031-06-01T08:00:00Z'`, ev); n != 1 {
		t.Fatal("the tier was not stored in minor units and UTC")
	}
	if n := s.count(t, `SELECT count(*) FROM inv_events WHERE event_id = ? AND hold_minutes = 12 AND capacity = 120`, ev); n != 1 {
		t.Fatal("hold minutes or capacity not stored")
	}
	page := html(path)
	for _, want := range []string{`value="45.50"`, `value="2031-05-01T10:00"`, `name="quota_web" inputmode="numeric" value="100"`} {
		if !strings.Contains(page, want) {
			t.Fatalf("the saved editor lacks %q", want)
		}
	}
}
