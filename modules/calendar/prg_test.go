package calendar_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// Portal forms answer with a redirect (post/redirect/get): a refused booking
// comes back on its week with what was typed and the events in the way,
// and reloading that page submits nothing. The booking form proposes a
// window that is free; the venue form picks its timezone from a list.
func TestPortalFormsRedirectAfterPost(t *testing.T) {
	env, mod := startEnv(t)
	c := newChain(t, env, mod, "prg")
	venue := c.newVenue(t, "Solo Room", "UTC")
	stage := c.newStage(t, venue, "Only Stage")
	// Monday 9 June 2031, 19:00 to 23:00 UTC (base is Thursday 12 June).
	c.createEvent(t, venue, ev(stage, -53, -49, "title", "Monday Gig"))
	html := func(path string) string {
		t.Helper()
		res := c.do(t, "GET", path, nil, "Accept", "text/html")
		if res.Status != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, res.Status, res.Body)
		}
		return string(res.Body)
	}
	week := "/portal/venues/" + venue + "/calendar?week=2031-06-09"
	if page := html(week); !strings.Contains(page, `name="starts" value="2031-06-10T20:00"`) {
		t.Fatal("the booking form does not propose Tuesday evening, the first free one")
	}
	form := url.Values{"title": {"Clash"}, "category": {"concert"}, "stage": {stage}, "starts": {"2031-06-09T20:00"},
		"ends": {"2031-06-09T22:00"}, "setup": {"0"}, "teardown": {"0"}, "status": {"confirmed"}, "week": {"2031-06-09"}}
	post := func(path string, v url.Values) string {
		t.Helper()
		res := c.do(t, "POST", path, []byte(v.Encode()), "Content-Type", "application/x-www-form-urlencoded", "Accept", "text/html")
		if res.Status != http.StatusSeeOther {
			t.Fatalf("POST %s: %d %.300s", path, res.Status, res.Body)
		}
		return res.Header.Get("Location")
	}
	loc := post("/portal/venues/"+venue+"/events", form)
	if !strings.Contains(loc, "week=2031-06-09") || !strings.Contains(loc, "form=") {
		t.Fatalf("refused booking redirects to %q", loc)
	}
	for range 2 { // the second time is a reload: the same page, nothing sent again
		page := html(loc)
		if !strings.Contains(page, "Schedule conflict") || !strings.Contains(page, "Monday Gig") || !strings.Contains(page, `value="Clash"`) {
			t.Fatal("the refused booking's page lacks the conflict or the typed title")
		}
	}
	var n int
	res := c.do(t, "GET", "/api/v1/venues/"+venue+"/events?from=2031-06-01T00:00:00Z&to=2031-06-30T00:00:00Z", nil)
	n = strings.Count(string(res.Body), `"title":`)
	if n != 1 {
		t.Fatalf("%d events after a refused booking, want 1: %s", n, res.Body)
	}
	loc = post("/portal/venues", url.Values{"name": {"Nowhere"}, "timezone": {"Mars/Olympus"}, "capacity": {"100"}})
	page := html(loc)
	if !strings.Contains(page, "IANA timezone") || !strings.Contains(page, `value="Nowhere"`) || !strings.Contains(page, `<option value="America/New_York"`) {
		t.Fatal("the refused venue form does not come back with its error, its values and the timezone list")
	}
	if strings.Contains(page, "Only Stage") == false {
		t.Fatal("the venues page after a refusal lost the venues' stages")
	}
}
