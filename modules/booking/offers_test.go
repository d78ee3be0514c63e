package booking_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"marquee/app/apptest"
	"marquee/modules/booking"
)

// The whole negotiation: a draft for a calendar hold is sent, countered by
// the agent, countered back, accepted by the agent (the money goes to the
// ledger) and contracted (the hold becomes the event). Every step freezes
// or names a version and lands in the history with who and where.
func TestOfferLifecycle(t *testing.T) {
	env, _ := startEnv(t)
	c := newChain(t, env, "life")
	hold := c.hold(t, 12)

	d := c.create(t, c.artistA, "hold_id", hold, "title", "Velvet Static live")
	if d.State != booking.Draft || d.CurrentN != 0 || d.VenueID == nil || d.VenueID.String() != c.venue || !slices.Equal(d.Allowed, []string{"send", "cancel"}) {
		t.Fatalf("draft: %+v", d)
	}
	respondBy := time.Now().Add(48 * time.Hour).UTC().Truncate(time.Second)
	d = c.act(t, d, "send", map[string]any{"respond_by": respondBy.Format(time.RFC3339)})
	if d.State != booking.OfferSent || d.CurrentN != 1 || d.Awaiting == nil || *d.Awaiting != booking.Artist || d.Deadline == nil ||
		!d.Deadline.Equal(respondBy) || !slices.Equal(d.Allowed, []string{"cancel"}) {
		t.Fatalf("sent: %+v", d)
	}
	// The agent counters: a higher guarantee and a different share.
	counter := offerTerms(1250000)
	counter["deal"] = map[string]any{"type": "versus", "basis": "net", "artist_bps": 9000}
	d = c.agentAct(t, c.linkA, d, "counter", map[string]any{"terms": counter})
	if d.State != booking.CounterOffer || d.CurrentN != 2 || *d.Awaiting != booking.Promoter || d.Terms.GuaranteeMinor != 1250000 {
		t.Fatalf("countered: %+v", d)
	}
	// The promoter counters back, meeting in the middle.
	back := offerTerms(1100000)
	d = c.act(t, d, "counter", map[string]any{"terms": back})
	if d.State != booking.CounterOffer || d.CurrentN != 3 || *d.Awaiting != booking.Artist {
		t.Fatalf("countered back: %+v", d)
	}
	ledgerBefore := c.count(t, "ledger_entries")
	d = c.agentAct(t, c.linkA, d, "accept", nil)
	if d.State != booking.Accepted || d.AcceptedN == nil || *d.AcceptedN != 3 {
		t.Fatalf("accepted: %+v", d)
	}
	// The guarantee and the deposit (half of it) are on the ledger.
	var rows []struct {
		Kind   string
		Amount int64
	}
	if err := env.App.DB.Raw(`SELECT kind, amount_minor AS amount FROM "`+c.t.Schema+`".ledger_entries WHERE reference = ? ORDER BY id`,
		"booking:"+d.ID.String()).Scan(&rows).Error; err != nil {
		t.Fatal(err)
	}
	if c.count(t, "ledger_entries") != ledgerBefore+2 || len(rows) != 2 || rows[0].Kind != "booking.guarantee" || rows[0].Amount != 1100000 ||
		rows[1].Kind != "booking.deposit_due" || rows[1].Amount != 550000 {
		t.Fatalf("ledger: %+v", rows)
	}
	// Contracting waits for the sealed contract: refused, and nothing moves.
	res := c.do(t, "PUT", "/api/v1/bookings/"+d.ID.String()+"/contract", map[string]any{"version": d.Version})
	mustProblem(t, res, http.StatusConflict, "contract_not_sealed")
	if p := decode[struct {
		Status   string   `json:"contract_status"`
		Unsigned []string `json:"unsigned"`
	}](t, res.Body); p.Status != booking.ContractSigning || len(p.Unsigned) != 2 {
		t.Fatalf("contract_not_sealed names the contract's status and who is to sign: %s", res.Body)
	}
	if after := decode[booking.Detail](t, c.do(t, "GET", "/api/v1/bookings/"+d.ID.String(), nil).Body); after.State != booking.Accepted || after.Version != d.Version {
		t.Fatalf("a refused contract changed the booking: %+v", after)
	}
	if h := c.do(t, "GET", "/api/v1/venues/"+c.venue+"/holds/"+hold, nil); !strings.Contains(string(h.Body), `"status":"active"`) {
		t.Fatalf("a refused contract touched the hold: %s", h.Body)
	}
	d = c.act(t, c.sealed(t, d), "contract", nil)
	if d.State != booking.Contracted || d.EventID == nil {
		t.Fatalf("contracted: %+v", d)
	}
	// The hold became the event, through the calendar.
	res = c.do(t, "GET", "/api/v1/venues/"+c.venue+"/holds/"+hold, nil)
	mustStatus(t, res, http.StatusOK)
	h := decode[struct {
		Status  string
		EventID string `json:"event_id"`
	}](t, res.Body)
	if h.Status != "confirmed" || h.EventID != d.EventID.String() {
		t.Fatalf("hold after contract: %+v", h)
	}
	mustStatus(t, c.do(t, "GET", "/api/v1/venues/"+c.venue+"/events/"+d.EventID.String(), nil), http.StatusOK)

	// Versions are data; the diff names each field that moved.
	res = c.do(t, "GET", "/api/v1/bookings/"+d.ID.String()+"/versions/2", nil)
	mustStatus(t, res, http.StatusOK)
	if v := decode[booking.Version](t, res.Body); v.N != 2 || v.Party != booking.Artist || v.Terms.GuaranteeMinor != 1250000 || !strings.Contains(v.Author, "Maya") {
		t.Fatalf("version 2: %+v", v)
	}
	res = c.do(t, "GET", "/api/v1/bookings/"+d.ID.String()+"/diff?from=1&to=2", nil)
	mustStatus(t, res, http.StatusOK)
	diff := decode[booking.DiffView](t, res.Body)
	fields := map[string][2]any{}
	for _, ch := range diff.Changes {
		fields[ch.Field] = [2]any{ch.From, ch.To}
	}
	if len(diff.Changes) != 2 || fields["guarantee_minor"] != [2]any{float64(1000000), float64(1250000)} ||
		fields["deal.artist_bps"] != [2]any{float64(8500), float64(9000)} {
		t.Fatalf("diff 1→2: %+v", diff)
	}
	mustStatus(t, c.do(t, "GET", "/api/v1/bookings/"+d.ID.String()+"/versions/9", nil), http.StatusNotFound)
	if res := c.do(t, "GET", "/api/v1/bookings/"+d.ID.String()+"/diff?from=1&to=x", nil); res.Status != 400 || res.Code() != "invalid_version" {
		t.Fatalf("bad diff bound: %d %s", res.Status, res.Body)
	}
	// Every action is in the history: who, as what, from which address.
	var actions []string
	for _, h := range d.History {
		actions = append(actions, h.ActorKind+":"+h.Action)
		if h.IP == "" || h.ActorName == "" {
			t.Errorf("history entry without who or where: %+v", h)
		}
	}
	want := []string{"staff:create", "staff:send", "agent:counter", "staff:counter", "agent:accept", "staff:sign", "agent:sign", "staff:seal", "staff:contract"}
	if !slices.Equal(actions, want) {
		t.Fatalf("history %v, want %v", actions, want)
	}
	if !strings.Contains(d.History[2].ActorName, "maya@") || !strings.Contains(d.History[1].ActorName, "owner@") {
		t.Fatalf("history names: %+v", d.History)
	}
	// Frozen versions cannot be changed, even by SQL.
	if err := env.App.DB.Exec(`UPDATE "` + c.t.Schema + `".bkg_versions SET terms = '{}'`).Error; err == nil {
		t.Fatal("a frozen version was rewritten")
	}
}

// Every refused transition is a 409 that lists what the actor may do, and
// changes nothing; a stale version is a 409 version_mismatch.
func TestRefusedTransitions(t *testing.T) {
	env, _ := startEnv(t)
	c := newChain(t, env, "refuse")
	type refusal struct {
		name    string
		agent   bool
		verb    string
		allowed []string
	}
	check := func(d booking.Detail, rs []refusal) {
		t.Helper()
		for _, r := range rs {
			body := map[string]any{"version": d.Version}
			if r.verb == "cancel" || r.verb == "decline" {
				body["reason"] = "because"
			}
			if r.verb == "counter" {
				body["terms"] = offerTerms(1300000)
			}
			var res apptest.Response
			if r.agent {
				res = c.agent(t, c.linkA, "PUT", "/api/v1/agent/bookings/"+d.ID.String()+"/"+r.verb, body)
			} else {
				res = c.do(t, "PUT", "/api/v1/bookings/"+d.ID.String()+"/"+r.verb, body)
			}
			if res.Status != http.StatusConflict || res.Code() != "invalid_transition" {
				t.Errorf("%s: %d %s", r.name, res.Status, res.Body)
				continue
			}
			got := decode[struct{ Allowed []string }](t, res.Body).Allowed
			if !slices.Equal(got, r.allowed) {
				t.Errorf("%s: allowed %v, want %v", r.name, got, r.allowed)
			}
		}
		after := decode[booking.Detail](t, c.do(t, "GET", "/api/v1/bookings/"+d.ID.String(), nil).Body)
		if after.Version != d.Version || after.State != d.State {
			t.Errorf("a refused transition changed the booking: %+v", after)
		}
	}
	d := c.create(t, c.artistA)
	check(d, []refusal{{"accept a draft", false, "accept", []string{"send", "cancel"}},
		{"contract a draft", false, "contract", []string{"send", "cancel"}}})
	d = c.act(t, d, "send", nil)
	check(d, []refusal{{"promoter accepts its own offer", false, "accept", []string{"cancel"}},
		{"promoter counters its own offer", false, "counter", []string{"cancel"}},
		{"send twice", false, "send", []string{"cancel"}},
		{"contract before acceptance", false, "contract", []string{"cancel"}}})
	d = c.agentAct(t, c.linkA, d, "counter", map[string]any{"terms": offerTerms(1200000)})
	check(d, []refusal{{"agent accepts its own counter", true, "accept", []string{}},
		{"agent counters twice", true, "counter", []string{}}})
	d = c.act(t, d, "accept", nil)
	check(d, []refusal{{"agent declines after acceptance", true, "decline", []string{}},
		{"accept twice", false, "accept", []string{"contract", "cancel"}}})
	// A stale version is refused before anything else.
	res := c.do(t, "PUT", "/api/v1/bookings/"+d.ID.String()+"/contract", map[string]any{"version": d.Version - 1})
	if res.Status != http.StatusConflict || res.Code() != "version_mismatch" {
		t.Fatalf("stale version: %d %s", res.Status, res.Body)
	}
	mustProblem(t, c.do(t, "PUT", "/api/v1/bookings/"+d.ID.String()+"/contract", map[string]any{"version": d.Version}), http.StatusConflict, "contract_not_sealed")
	d = c.act(t, c.sealed(t, d), "contract", nil)
	check(d, []refusal{{"cancel once contracted", false, "cancel", []string{}}})

	// Cancel needs a reason; decline and cancel end the offer.
	d2 := c.create(t, c.artistA)
	if res := c.do(t, "PUT", "/api/v1/bookings/"+d2.ID.String()+"/cancel", map[string]any{"version": d2.Version}); res.Status != 400 || res.Code() != "invalid_request" {
		t.Fatalf("cancel without a reason: %d %s", res.Status, res.Body)
	}
	d2 = c.act(t, d2, "cancel", map[string]any{"reason": "date moved"})
	if d2.State != booking.Cancelled || d2.Reason != "date moved" {
		t.Fatalf("cancelled: %+v", d2)
	}
	check(d2, []refusal{{"send a cancelled offer", false, "send", []string{}}})
	d3 := c.act(t, c.create(t, c.artistA), "send", nil)
	d3 = c.agentAct(t, c.linkA, d3, "decline", map[string]any{"reason": "in the studio"})
	if d3.State != booking.Declined {
		t.Fatalf("declined: %+v", d3)
	}
	check(d3, []refusal{{"cancel a declined offer", false, "cancel", []string{}}})
	// No version at all is bad input.
	if res := c.do(t, "PUT", "/api/v1/bookings/"+d3.ID.String()+"/cancel", map[string]any{"reason": "x"}); res.Status != 400 || res.Code() != "invalid_version" {
		t.Fatalf("no version: %d %s", res.Status, res.Body)
	}
}
