package calendar_test

import (
	"net/http"
	"strings"
	"testing"
)

// The portal pages render for each kind of user, through the real router
// (bearer tokens work on portal routes too).
func TestPortalPagesRender(t *testing.T) {
	env, mod := startEnv(t)
	c := newChain(t, env, mod, "pages")
	c.createEvent(t, c.venue, ev(c.stageA, 20, 23, "title", "Rendered Show"))
	c.createEvent(t, c.venue, ev("", 44, 47, "title", "Whole Venue Party"))
	c.createHold(t, hold(c.stageB, 20, 23, "title", "Held Act"))
	c.createEvent(t, c.venue, ev(c.stageB, 30, 31, "title", `<script>alert("x")</script>`))
	other := c.newVenue(t, "Riverside", "Europe/London")
	env.User(t, c.t, "mgr@pages.test", "venue_manager", c.venue)
	env.User(t, c.t, "door@pages.test", "door_staff", c.venue)
	mgr := env.Login(t, c.slug, "mgr@pages.test")
	door := env.Login(t, c.slug, "door@pages.test")
	page := func(tok, path string, want int) string {
		t.Helper()
		res := env.Do(t, "GET", c.slug, path, tok, nil, "Accept", "text/html")
		if res.Status != want {
			t.Fatalf("%s: %d %s", path, res.Status, res.Body)
		}
		return string(res.Body)
	}
	week := "/portal/venues/" + c.venue + "/calendar?week=2031-06-12"
	html := page(c.tok, week, http.StatusOK)
	for _, want := range []string{"Rendered Show", "Whole Venue Party", "Held Act", "1st", "9 Jun – 15 Jun 2031", "Book event", "Place hold", "Riverside", "Add a stage"} {
		if !strings.Contains(html, want) {
			t.Errorf("owner's week view lacks %q", want)
		}
	}
	if strings.Contains(html, `<script>alert`) || !strings.Contains(html, `&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;`) {
		t.Error("a title with markup is not escaped")
	}
	html = page(mgr, week, http.StatusOK)
	if !strings.Contains(html, "Book event") || strings.Contains(html, "Riverside") {
		t.Error("manager's week view: booking form, and no other venue")
	}
	page(mgr, "/portal/venues/"+other+"/calendar", http.StatusForbidden)
	html = page(door, week, http.StatusOK)
	if strings.Contains(html, "Held Act") || strings.Contains(html, "Book event") || !strings.Contains(html, "Rendered Show") {
		t.Error("door staff see events only, without holds or the booking form")
	}
	html = page(c.tok, "/portal/venues", http.StatusOK)
	if !strings.Contains(html, "Downtown Hall") || !strings.Contains(html, "Riverside") || !strings.Contains(html, "Add a venue") {
		t.Error("venues page")
	}
	if html = page(mgr, "/portal/venues", http.StatusOK); strings.Contains(html, "Riverside") || strings.Contains(html, "Add a venue") {
		t.Error("manager's venues page")
	}
	res := env.Do(t, "GET", c.slug, "/portal/calendar", mgr, nil)
	if res.Status != http.StatusSeeOther || !strings.Contains(res.Header.Get("Location"), c.venue) {
		t.Fatalf("calendar home: %d %s", res.Status, res.Header.Get("Location"))
	}
	page(c.tok, "/portal/venues/"+c.venue+"/calendar?week=June", http.StatusBadRequest)
	page(c.tok, "/portal/venues/"+c.venue+"/calendar", http.StatusOK) // this week
	// Navigation shows the calendar's entries to venue roles too.
	if html = page(mgr, "/portal", http.StatusOK); !strings.Contains(html, `href="/portal/venues"`) || !strings.Contains(html, `href="/portal/calendar"`) {
		t.Error("nav entries for the manager")
	}
}
