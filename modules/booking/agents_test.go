package booking_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"marquee/app/apptest"
	"marquee/modules/booking"
)

// An agent's link opens only their own artists' sent offers: another
// artist's offer, or one still in draft, does not exist for them; a
// tampered, foreign or expired link is refused.
func TestAgentSeesOnlyTheirOwn(t *testing.T) {
	clock := &fakeClock{now: time.Now()}
	env, _ := startEnv(t, func(o *apptest.Options) { o.Clock = clock.Now })
	c := newChain(t, env, "agents")
	mine := c.act(t, c.create(t, c.artistA, "title", "Mine"), "send", nil)
	theirs := c.act(t, c.create(t, c.artistB, "title", "Theirs"), "send", nil)
	draft := c.create(t, c.artistA, "title", "Still a draft")

	res := c.agent(t, c.linkA, "GET", "/api/v1/agent/bookings", nil)
	mustStatus(t, res, http.StatusOK)
	list := decode[struct{ Items []booking.Summary }](t, res.Body).Items
	if len(list) != 1 || list[0].ID != mine.ID {
		t.Fatalf("agent A lists %+v", list)
	}
	mustStatus(t, c.agent(t, c.linkA, "GET", "/api/v1/agent/bookings/"+mine.ID.String(), nil), http.StatusOK)
	for _, path := range []string{"/api/v1/agent/bookings/" + theirs.ID.String(), "/api/v1/agent/bookings/" + draft.ID.String(),
		"/api/v1/agent/bookings/" + theirs.ID.String() + "/versions/1", "/api/v1/agent/bookings/" + theirs.ID.String() + "/diff?from=1&to=1"} {
		if res := c.agent(t, c.linkA, "GET", path, nil); res.Status != http.StatusNotFound || res.Code() != "not_found" {
			t.Fatalf("%s: %d %s", path, res.Status, res.Body)
		}
	}
	// Acting on another artist's offer is a 404 too, and changes nothing.
	if res := c.agent(t, c.linkA, "PUT", "/api/v1/agent/bookings/"+theirs.ID.String()+"/accept", map[string]any{"version": theirs.Version}); res.Status != http.StatusNotFound {
		t.Fatalf("accepting another artist's offer: %d %s", res.Status, res.Body)
	}
	if got := decode[booking.Detail](t, c.do(t, "GET", "/api/v1/bookings/"+theirs.ID.String(), nil).Body); got.State != booking.OfferSent {
		t.Fatalf("the other offer moved: %s", got.State)
	}

	// A link of another chain, a tampered one, none at all.
	other := newChain(t, env, "agents-other")
	tampered := c.linkA[:len(c.linkA)-2] + "xx"
	for name, link := range map[string]string{"foreign": other.linkA, "tampered": tampered, "missing": ""} {
		res := c.agent(t, link, "GET", "/api/v1/agent/bookings", nil)
		if res.Status != http.StatusUnauthorized || res.Code() != "agent_link_invalid" {
			t.Errorf("%s link: %d %s", name, res.Status, res.Body)
		}
	}
	// The agent cannot reach the staff API with it either.
	if res := c.agent(t, c.linkA, "GET", "/api/v1/bookings", nil); res.Status != http.StatusUnauthorized {
		t.Errorf("staff API with an agent link: %d", res.Status)
	}
	// An expired link: a clear problem, nothing written.
	clock.advance(25 * time.Hour)
	before := c.count(t, "bkg_history")
	res = c.agent(t, c.linkA, "PUT", "/api/v1/agent/bookings/"+mine.ID.String()+"/accept", map[string]any{"version": mine.Version})
	if res.Status != http.StatusUnauthorized || res.Code() != "agent_link_expired" || !strings.Contains(res.Header.Get("Content-Type"), "problem") {
		t.Fatalf("expired link: %d %s", res.Status, res.Body)
	}
	if c.count(t, "bkg_history") != before {
		t.Fatal("an expired link wrote history")
	}
}
