package inventory_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/modules/inventory"
)

// paidOrder holds, orders and pays as a fresh buyer and returns the paid
// order with its tickets and signed link.
func (n *doorNight) paidOrder(t testing.TB, hold map[string]any) orderOut {
	t.Helper()
	b := n.buyer(t)
	h := n.mustHold(t, n.ev, b, hold)
	o := n.order(t, b, h.ID)
	mustStatus(t, n.webhook(t, "evt_"+uuid.NewString(), "payment_intent.succeeded", o.Order), http.StatusOK)
	res := n.env.Do(t, "GET", n.slug, "/api/v1"+o.OrderURL, "", nil)
	mustStatus(t, res, http.StatusOK)
	var paid orderOut
	res.JSON(t, &paid)
	return paid
}

// sigOf is the signature query of a signed link ("sig=…").
func sigOf(t testing.TB, link string) string {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	return u.RawQuery
}

type problemOut struct {
	Code string `json:"code"`
	Cap  int64  `json:"cap"`
}

func codeOf(t testing.TB, res interface{ JSON(testing.TB, any) }) string {
	var p problemOut
	res.JSON(t, &p)
	return p.Code
}

// transfer asks for a transfer as the holder proven by query q.
func (n *doorNight) transfer(t testing.TB, ticket uuid.UUID, q, name, email string) (int, inventory.TransferResult, string) {
	t.Helper()
	res, err := n.env.Try("POST", n.slug, "/api/v1/tickets/"+ticket.String()+"/transfer?"+q, "", map[string]any{"name": name, "email": email})
	if err != nil {
		t.Fatal(err)
	}
	var out inventory.TransferResult
	code := ""
	if res.Status == http.StatusCreated {
		res.JSON(t, &out)
	} else {
		code = codeOf(t, res)
	}
	return res.Status, out, code
}

func TestTransferOnce(t *testing.T) {
	t.Parallel()
	env, inv := startEnv(t)
	n := newDoorNight(t, newShop(t, env, inv, "xfer"), 0, 0)
	paid := n.paidOrder(t, map[string]any{"tier_id": tierID(t, n.inv, "Floor"), "quantity": 2})
	q := sigOf(t, paid.OrderURL)
	a, b := paid.Tickets[0], paid.Tickets[1]
	mails := n.count(t, `SELECT count(*) FROM inv_email_outbox`)

	// Bad input: nothing written.
	for _, c := range []struct {
		q, name, email, code string
		status               int
	}{
		{q, "Bob", "not-an-address", "invalid_email", 400},
		{q, "", "bob@example.com", "invalid_name", 400},
		{q, "Fan", "fan@example.com", "invalid_email", 400}, // the holder's own address
		{"sig=forged", "Bob", "bob@example.com", "not_found", 404},
		{"", "Bob", "bob@example.com", "not_found", 404},
	} {
		st, _, code := n.transfer(t, a.ID, c.q, c.name, c.email)
		if st != c.status || code != c.code {
			t.Fatalf("transfer %+v: %d %s", c, st, code)
		}
	}
	if got := n.count(t, `SELECT count(*) FROM inv_ticket_transfers`); got != 0 {
		t.Fatalf("bad input wrote %d transfers", got)
	}

	st, out, code := n.transfer(t, a.ID, q, "Bob Builder", "bob@example.com")
	if st != http.StatusCreated {
		t.Fatalf("transfer: %d %s", st, code)
	}
	if out.Ticket.ID == a.ID || out.Ticket.Token == a.Token || out.Ticket.HolderEmail != "bob@example.com" || out.Transfer.FromTicket != a.ID {
		t.Fatalf("transfer result %+v", out)
	}
	// The old token is refused at once, and in the revocation delta.
	n.mustScan(t, a.Token, "entry", inventory.ResultRevoked)
	res := n.do(t, "GET", "/api/v1/events/"+n.ev+"/revocations?since=0", nil)
	mustStatus(t, res, http.StatusOK)
	if !strings.Contains(string(res.Body), a.ID.String()) {
		t.Fatalf("old ticket not in the revocation delta: %s", res.Body)
	}
	// Both told through the outbox.
	if got := n.count(t, `SELECT count(*) FROM inv_email_outbox WHERE to_email IN ('fan@example.com', 'bob@example.com')`) - mails; got != 2 {
		t.Fatalf("%d mails for a transfer, want 2", got)
	}
	// The sender's order page no longer shows the code; the recipient's link does.
	res = n.env.Do(t, "GET", n.slug, "/api/v1"+paid.OrderURL, "", nil)
	var again orderOut
	res.JSON(t, &again)
	for _, tk := range again.Tickets {
		if tk.ID == out.Ticket.ID && tk.Token != "" {
			t.Fatal("the sender still sees the recipient's code")
		}
	}
	var link string
	n.sql(t, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT body FROM inv_email_outbox WHERE to_email = 'bob@example.com' ORDER BY created_at DESC LIMIT 1`).Row().Scan(&link)
	})
	i := strings.Index(link, "/tickets/")
	if i < 0 {
		t.Fatalf("no ticket link in the recipient's mail: %q", link)
	}
	link = strings.TrimSpace(link[i:])
	res = n.env.Do(t, "GET", n.slug, "/api/v1"+link, "", nil)
	mustStatus(t, res, http.StatusOK)
	// Transfer once: the new ticket cannot go on; the old one is void; the
	// sender's order link does not reach the given-away ticket.
	if st, _, code := n.transfer(t, out.Ticket.ID, sigOf(t, link), "Carol", "carol@example.com"); st != 409 || code != "ticket_transferred" {
		t.Fatalf("second transfer: %d %s", st, code)
	}
	if st, _, code := n.transfer(t, a.ID, q, "Carol", "carol@example.com"); st != 409 || code != "ticket_not_valid" {
		t.Fatalf("transfer of the void ticket: %d %s", st, code)
	}
	if st, _, _ := n.transfer(t, out.Ticket.ID, q, "Carol", "carol@example.com"); st != 404 {
		t.Fatalf("the sender's link reached the given-away ticket: %d", st)
	}
	n.mustScan(t, out.Ticket.Token, "entry", inventory.ResultAdmit)
	// A checked-in ticket cannot be transferred.
	n.mustScan(t, b.Token, "entry", inventory.ResultAdmit)
	if st, _, code := n.transfer(t, b.ID, q, "Dan", "dan@example.com"); st != 409 || code != "ticket_checked_in" {
		t.Fatalf("transfer after check-in: %d %s", st, code)
	}
	if got := n.count(t, `SELECT count(*) FROM inv_ticket_transfers`); got != 1 {
		t.Fatalf("%d transfers recorded, want 1", got)
	}
	res = n.do(t, "GET", "/api/v1/events/"+n.ev+"/transfers", nil)
	mustStatus(t, res, http.StatusOK)
}

// Twenty transfers of one ticket at once: exactly one wins, one new ticket.
func TestTransferRace(t *testing.T) {
	t.Parallel()
	env, inv := startEnv(t)
	n := newDoorNight(t, newShop(t, env, inv, "xferrace"), 0, 0)
	paid := n.paidOrder(t, map[string]any{"tier_id": tierID(t, n.inv, "Floor"), "quantity": 1})
	q := sigOf(t, paid.OrderURL)
	tk := paid.Tickets[0]
	var wg sync.WaitGroup
	statuses := make([]int, 20)
	codes := make([]string, 20)
	for i := range statuses {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			statuses[i], _, codes[i] = n.transfer(t, tk.ID, q, fmt.Sprintf("Friend %d", i), fmt.Sprintf("friend%d@example.com", i))
		}(i)
	}
	wg.Wait()
	won := 0
	for i, st := range statuses {
		switch {
		case st == http.StatusCreated:
			won++
		case st == 409 && codes[i] == "ticket_not_valid":
		default:
			t.Fatalf("transfer %d: %d %s", i, st, codes[i])
		}
	}
	if won != 1 {
		t.Fatalf("%d transfers won, want 1", won)
	}
	if got := n.count(t, `SELECT count(*) FROM inv_ticket_transfers WHERE from_ticket = ?`, tk.ID); got != 1 {
		t.Fatalf("%d transfer rows", got)
	}
	if got := n.count(t, `SELECT count(*) FROM inv_tickets WHERE replaces = ? AND status = 'valid'`, tk.ID); got != 1 {
		t.Fatalf("%d valid successors", got)
	}
	if got := n.count(t, `SELECT count(*) FROM inv_ticket_revocations WHERE ticket_id = ?`, tk.ID); got != 1 {
		t.Fatalf("revoked %d times", got)
	}
}

// listing lists a ticket as the holder proven by q.
func (n *doorNight) list(t testing.TB, ticket uuid.UUID, q string, price int64) (int, inventory.ResaleListing, problemOut) {
	t.Helper()
	res, err := n.env.Try("POST", n.slug, "/api/v1/tickets/"+ticket.String()+"/resale?"+q, "", map[string]any{"price": price})
	if err != nil {
		t.Fatal(err)
	}
	var l inventory.ResaleListing
	var p problemOut
	if res.Status == http.StatusCreated {
		res.JSON(t, &l)
	} else {
		res.JSON(t, &p)
	}
	return res.Status, l, p
}

// reserve reserves a listing as a fresh buyer and orders it.
func (n *doorNight) reserve(t testing.TB, listing uuid.UUID) (string, int, orderOut) {
	t.Helper()
	b := n.buyer(t)
	res, err := n.env.Try("POST", n.slug, "/api/v1/resale/"+listing.String()+"/holds", "", nil, "X-Buyer-Token", b)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != http.StatusCreated {
		return codeOf(t, res), res.Status, orderOut{}
	}
	var h inventory.Hold
	res.JSON(t, &h)
	return "", res.Status, n.order(t, b, h.ID)
}

func TestResaleCappedAtPricePaid(t *testing.T) {
	t.Parallel()
	env, inv := startEnv(t)
	n := newDoorNight(t, newShop(t, env, inv, "resale"), 0, 0)
	paid := n.paidOrder(t, map[string]any{"tier_id": tierID(t, n.inv, "Floor"), "quantity": 2})
	q := sigOf(t, paid.OrderURL)
	a := paid.Tickets[0]
	// Floor costs 30.00: the default cap is 100% of that.
	if st, _, p := n.list(t, a.ID, q, 3001); st != 400 || p.Code != "price_above_cap" || p.Cap != 3000 {
		t.Fatalf("above the cap: %d %+v", st, p)
	}
	if st, _, p := n.list(t, a.ID, q, 0); st != 400 || p.Code != "invalid_price" {
		t.Fatalf("zero price: %d %+v", st, p)
	}
	// Chain settings: never above 120%, never uncapped.
	for _, bad := range []map[string]any{{"cap_percent": 150, "commission_bps": 1500}, {"cap_percent": 0, "commission_bps": 1500}, {"cap_percent": 100, "commission_bps": 9000}} {
		res := n.do(t, "PUT", "/api/v1/resale/settings", bad)
		mustStatus(t, res, 400)
	}
	if got := n.count(t, `SELECT count(*) FROM inv_resale_settings`) + n.count(t, `SELECT count(*) FROM inv_resale_listings`); got != 0 {
		t.Fatalf("bad input wrote %d rows", got)
	}
	mustStatus(t, n.do(t, "PUT", "/api/v1/resale/settings", map[string]any{"cap_percent": 90, "commission_bps": 1000}), 200)
	if st, _, p := n.list(t, a.ID, q, 2701); st != 400 || p.Cap != 2700 {
		t.Fatalf("above a 90%% cap: %d %+v", st, p)
	}
	st, l, p := n.list(t, a.ID, q, 2700)
	if st != http.StatusCreated || l.CapMinor != 2700 || l.CommissionBps != 1000 {
		t.Fatalf("list: %d %+v %+v", st, l, p)
	}
	// Listed: not twice, not transferable, does not scan.
	if st, _, p := n.list(t, a.ID, q, 2000); st != 409 || p.Code != "ticket_listed" {
		t.Fatalf("listed twice: %d %+v", st, p)
	}
	if st, _, code := n.transfer(t, a.ID, q, "Bob", "bob@example.com"); st != 409 || code != "ticket_listed" {
		t.Fatalf("transfer of a listed ticket: %d %s", st, code)
	}
	n.mustScan(t, a.Token, "entry", inventory.ResultListed)
	// Public listings show it; a buyer reserves it, a second buyer cannot.
	res := n.env.Do(t, "GET", n.slug, "/api/v1/events/"+n.ev+"/resale", "", nil)
	var pub struct{ Items []inventory.ResaleListing }
	res.JSON(t, &pub)
	if len(pub.Items) != 1 || pub.Items[0].ID != l.ID {
		t.Fatalf("public listings %+v", pub.Items)
	}
	_, st, o := n.reserve(t, l.ID)
	if st != http.StatusCreated || o.AmountMinor != 2700 {
		t.Fatalf("reserve: %d %+v", st, o)
	}
	if code, st, _ := n.reserve(t, l.ID); st != 409 || code != "listing_unavailable" {
		t.Fatalf("second reservation: %d %s", st, code)
	}
	var wh inventory.WebhookResult
	res = n.webhook(t, "evt_"+uuid.NewString(), "payment_intent.succeeded", o.Order)
	mustStatus(t, res, 200)
	res.JSON(t, &wh)
	if wh.Outcome != "resale" {
		t.Fatalf("payment outcome %q", wh.Outcome)
	}
	// One transaction did it all: the seller's ticket void (revoked), the
	// buyer's issued in their order, the listing sold, payout and
	// commission on the ledger.
	n.mustScan(t, a.Token, "entry", inventory.ResultRevoked)
	res = n.env.Do(t, "GET", n.slug, "/api/v1"+o.OrderURL, "", nil)
	var bought orderOut
	res.JSON(t, &bought)
	if bought.Status != inventory.OrderPaid || len(bought.Tickets) != 1 || bought.Tickets[0].Replaces == nil || *bought.Tickets[0].Replaces != a.ID {
		t.Fatalf("buyer's order %+v", bought)
	}
	n.mustScan(t, bought.Tickets[0].Token, "entry", inventory.ResultAdmit)
	if got := n.count(t, `SELECT count(*) FROM inv_resale_listings WHERE id = ? AND status = 'sold' AND payout_minor = 2430 AND commission_minor = 270`, l.ID); got != 1 {
		t.Fatal("listing not sold with payout 24.30 and commission 2.70")
	}
	if got := n.count(t, `SELECT count(*) FROM ledger_entries WHERE reference = ? AND ((kind = 'resale.payout' AND amount_minor = 2430) OR (kind = 'resale.commission' AND amount_minor = 270))`, "resale:"+l.ID.String()); got != 2 {
		t.Fatalf("%d ledger entries for the resale, want 2", got)
	}
	if st, _, _ := n.list(t, a.ID, q, 2000); st != 409 {
		t.Fatalf("the sold ticket listed again: %d", st)
	}
	// Delisting is immediate: the ticket scans again at once.
	b := paid.Tickets[1]
	if st, _, _ := n.list(t, b.ID, q, 1000); st != 201 {
		t.Fatalf("list b: %d", st)
	}
	res, _ = n.env.Try("DELETE", n.slug, "/api/v1/tickets/"+b.ID.String()+"/resale?"+q, "", nil)
	mustStatus(t, res, 200)
	n.mustScan(t, b.Token, "entry", inventory.ResultAdmit)
	res, _ = n.env.Try("DELETE", n.slug, "/api/v1/tickets/"+b.ID.String()+"/resale?"+q, "", nil)
	if res.Status != 409 || codeOf(t, res) != "listing_not_open" {
		t.Fatalf("delist twice: %d", res.Status)
	}
	// A checked-in ticket cannot be listed.
	if st, _, p := n.list(t, b.ID, q, 1000); st != 409 || p.Code != "ticket_checked_in" {
		t.Fatalf("list after check-in: %d %+v", st, p)
	}
}

// The owner's transfer (delist, then transfer) racing a buyer's payment for
// the listing: exactly one wins, every round.
func TestResaleRacesTransfer(t *testing.T) {
	t.Parallel()
	env, inv := startEnv(t)
	n := newDoorNight(t, newShop(t, env, inv, "resrace"), 0, 0)
	const rounds = 6
	paid := n.paidOrder(t, map[string]any{"tier_id": tierID(t, n.inv, "Floor"), "quantity": rounds})
	q := sigOf(t, paid.OrderURL)
	transfers, sales := 0, 0
	for r := 0; r < rounds; r++ {
		tk := paid.Tickets[r]
		st, l, p := n.list(t, tk.ID, q, 3000)
		if st != 201 {
			t.Fatalf("list: %d %+v", st, p)
		}
		_, st, o := n.reserve(t, l.ID)
		if st != 201 {
			t.Fatalf("reserve: %d", st)
		}
		var wg sync.WaitGroup
		var outcome string
		var xfer int
		wg.Add(2)
		go func() {
			defer wg.Done()
			res, err := n.tryWebhook("evt_"+uuid.NewString(), "payment_intent.succeeded", o.Order)
			if err != nil || res.Status != 200 {
				t.Errorf("webhook: %v %d", err, res.Status)
				return
			}
			var wh inventory.WebhookResult
			res.JSON(t, &wh)
			outcome = wh.Outcome
		}()
		go func() {
			defer wg.Done()
			res, err := n.env.Try("DELETE", n.slug, "/api/v1/tickets/"+tk.ID.String()+"/resale?"+q, "", nil)
			if err != nil {
				t.Error(err)
				return
			}
			if res.Status != 200 {
				xfer = res.Status
				return
			}
			xfer, _, _ = n.transfer(t, tk.ID, q, "Friend", fmt.Sprintf("friend%d@example.com", r))
		}()
		wg.Wait()
		switch {
		case outcome == "resale" && xfer == 409:
			sales++
		case outcome == "refunded" && xfer == 201:
			transfers++
		default:
			t.Fatalf("round %d: payment %q, transfer %d: not exactly one winner", r, outcome, xfer)
		}
		if got := n.count(t, `SELECT count(*) FROM inv_tickets WHERE replaces = ? AND status = 'valid'`, tk.ID); got != 1 {
			t.Fatalf("round %d: %d valid successors", r, got)
		}
	}
	t.Logf("%d rounds: %d sales won, %d transfers won", rounds, sales, transfers)
	// A refunded buyer's money went back on the ledger.
	if got := n.count(t, `SELECT count(*) FROM inv_orders WHERE status = 'refunded'`); got != int64(transfers) {
		t.Fatalf("%d refunded orders for %d lost purchases", got, transfers)
	}
}

// waitNight is an event whose GA floor holds capacity places.
func waitNight(t testing.TB, prefix string, capacity int) (*shop, string, string) {
	t.Helper()
	env, inv := startEnv(t)
	s := newShop(t, env, inv, prefix)
	ev := s.event(t, "Sold Out Night")
	in := s.configure(t, ev, simpleSetup(1, 1, capacity, nil))
	return s, ev, tierID(t, in, "Floor")
}

func (s *shop) join(t testing.TB, ev string, body map[string]any) (int, waitOut) {
	t.Helper()
	res, err := s.env.Try("POST", s.slug, "/api/v1/events/"+ev+"/waitlist", "", body)
	if err != nil {
		t.Fatal(err)
	}
	var w waitOut
	if res.Status == http.StatusCreated {
		res.JSON(t, &w)
	} else {
		w.Code = codeOf(t, res)
	}
	return res.Status, w
}

type waitOut struct {
	inventory.WaitlistEntry
	URL  string `json:"url"`
	Code string `json:"-"`
}

func (s *shop) entry(t testing.TB, w waitOut) waitOut {
	t.Helper()
	res := s.env.Do(t, "GET", s.slug, "/api/v1"+w.URL, "", nil)
	mustStatus(t, res, 200)
	var out waitOut
	res.JSON(t, &out)
	return out
}

func (s *shop) serve(t testing.TB, ev string) int {
	t.Helper()
	n, err := s.inv.Service().ServeWaitlist(context.Background(), s.t, uuid.MustParse(ev))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// holdOne holds one floor place as a fresh buyer: (buyer token, hold).
func (s *shop) holdOne(t testing.TB, ev, tier string) (string, inventory.Hold) {
	t.Helper()
	b := s.buyer(t)
	return b, s.mustHold(t, ev, b, map[string]any{"tier_id": tier, "quantity": 1})
}

func (s *shop) release(t testing.TB, b string, h inventory.Hold) {
	t.Helper()
	res, err := s.env.Try("DELETE", s.slug, "/api/v1/holds/"+h.ID.String(), "", nil, "X-Buyer-Token", b)
	if err != nil || res.Status != 200 && res.Status != 204 {
		t.Fatalf("release: %v %d %s", err, res.Status, res.Body)
	}
}

func TestWaitlistOffersInJoinOrder(t *testing.T) {
	t.Parallel()
	s, ev, floor := waitNight(t, "wait", 4)
	join := func(email string, qty int) (int, waitOut) {
		return s.join(t, ev, map[string]any{"tier_id": floor, "email": email, "quantity": qty})
	}
	if st, w := join("early@example.com", 1); st != 409 || w.Code != "tier_available" {
		t.Fatalf("join with tickets on sale: %d %s", st, w.Code)
	}
	var bs []string
	var hs []inventory.Hold
	for i := 0; i < 4; i++ {
		b, h := s.holdOne(t, ev, floor)
		bs, hs = append(bs, b), append(hs, h)
	}
	// Bad input: problems, nothing written.
	stalls := ""
	s.sql(t, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT id::text FROM inv_tiers WHERE event_id = ? AND name = 'Stalls'`, ev).Row().Scan(&stalls)
	})
	for _, c := range []struct {
		body map[string]any
		code string
	}{
		{map[string]any{"tier_id": floor, "email": "x@example.com", "quantity": 0}, "invalid_quantity"},
		{map[string]any{"tier_id": floor, "email": "nope", "quantity": 1}, "invalid_email"},
		{map[string]any{"tier_id": "nope", "email": "x@example.com", "quantity": 1}, "invalid_tier_id"},
		{map[string]any{"tier_id": stalls, "email": "x@example.com", "quantity": 1}, "invalid_tier_id"},
		{map[string]any{"tier_id": uuid.NewString(), "email": "x@example.com", "quantity": 1}, "not_found"},
	} {
		if st, w := s.join(t, ev, c.body); w.Code != c.code || st < 400 {
			t.Fatalf("join %v: %d %s, want %s", c.body, st, w.Code, c.code)
		}
	}
	if got := s.count(t, `SELECT count(*) FROM inv_waitlist`); got != 0 {
		t.Fatalf("bad input wrote %d entries", got)
	}
	_, e1 := join("one@example.com", 1)
	_, e2 := join("two@example.com", 2)
	_, e3 := join("three@example.com", 1)
	if e1.Position != 1 || e2.Position != 2 || e3.Position != 3 {
		t.Fatalf("positions %d %d %d", e1.Position, e2.Position, e3.Position)
	}
	if st, w := join("ONE@example.com", 1); st != 409 || w.Code != "waitlist_joined" {
		t.Fatalf("joined twice: %d %s", st, w.Code)
	}
	if res := s.env.Do(t, "GET", s.slug, "/api/v1/waitlist/"+e2.ID.String()+"?wsig=forged", "", nil); res.Status != 404 {
		t.Fatalf("forged entry link: %d", res.Status)
	}
	mustStatus(t, s.do(t, "PUT", "/api/v1/events/"+ev+"/waitlist/settings", map[string]any{"offer_minutes": 3}), 400)
	mustStatus(t, s.do(t, "PUT", "/api/v1/events/"+ev+"/waitlist/settings", map[string]any{"offer_minutes": 45}), 200)

	// One place comes back: the head of the line gets it.
	s.release(t, bs[0], hs[0])
	s.serve(t, ev)
	if w := s.entry(t, e1); w.Status != "offered" || w.HoldID == nil || w.OfferExpiresAt == nil {
		t.Fatalf("e1 %+v", w)
	}
	// One more: not enough for e2 (2), and e3 behind it is not served first.
	s.release(t, bs[1], hs[1])
	s.serve(t, ev)
	if w := s.entry(t, e2); w.Status != "waiting" || w.Position != 1 {
		t.Fatalf("e2 %+v", w)
	}
	if w := s.entry(t, e3); w.Status != "waiting" || w.Position != 2 {
		t.Fatalf("e3 served before e2: %+v", w)
	}
	s.release(t, bs[2], hs[2])
	s.serve(t, ev)
	w2 := s.entry(t, e2)
	if w2.Status != "offered" {
		t.Fatalf("e2 %+v", w2)
	}
	// e1 takes the offer through the normal order and payment.
	res, _ := s.env.Try("POST", s.slug, "/api/v1"+strings.Replace(e1.URL, "?", "/order?", 1), "", map[string]any{"name": "One"})
	mustStatus(t, res, http.StatusCreated)
	var o orderOut
	res.JSON(t, &o)
	if o.AmountMinor != 3000 || o.Email != "one@example.com" {
		t.Fatalf("offer order %+v", o)
	}
	mustStatus(t, s.webhook(t, "evt_"+uuid.NewString(), "payment_intent.succeeded", o.Order), 200)
	// e2 lets its offer lapse: the places pass to e3.
	s.sql(t, func(tx *gorm.DB) error {
		return tx.Exec(`UPDATE inv_holds SET expires_at = now() - interval '1 second' WHERE id = ?`, *w2.HoldID).Error
	})
	if _, err := s.inv.Service().SweepHolds(context.Background(), s.t, 100); err != nil {
		t.Fatal(err)
	}
	s.serve(t, ev)
	if w := s.entry(t, e1); w.Status != "accepted" {
		t.Fatalf("e1 after paying: %+v", w)
	}
	if w := s.entry(t, e2); w.Status != "lapsed" {
		t.Fatalf("e2 after its offer lapsed: %+v", w)
	}
	w3 := s.entry(t, e3)
	if w3.Status != "offered" || w3.OfferExpiresAt == nil || w3.OfferExpiresAt.Sub(*w3.OfferedAt).Minutes() < 44 {
		t.Fatalf("e3 %+v", w3)
	}
	// Never more than the capacity out: 1 sold, 1 held (h4), 1 offered; 1 free.
	if got := s.count(t, `SELECT sum(held + sold) FROM inv_counter_shards sh JOIN inv_counters c ON c.id = sh.counter_id WHERE c.event_id = ? AND c.kind = 'pool' AND c.zone_id = (SELECT zone_id FROM inv_tiers WHERE id = ?)`, ev, floor); got != 3 {
		t.Fatalf("%d places out, want 3", got)
	}
	res = s.do(t, "GET", "/api/v1/events/"+ev+"/waitlist", nil)
	mustStatus(t, res, 200)
	// Leaving with an open offer gives it back.
	res, _ = s.env.Try("DELETE", s.slug, "/api/v1"+e3.URL, "", nil)
	mustStatus(t, res, 200)
	if got := s.count(t, `SELECT count(*) FROM inv_holds WHERE id = ? AND status = 'released'`, *w3.HoldID); got != 1 {
		t.Fatal("leaving did not release the offer")
	}
}

// Concurrent joins and concurrent releases while several runs serve the
// line: places numbered once each, no place offered twice, never more out
// than the capacity, offers in join order.
func TestWaitlistRaces(t *testing.T) {
	t.Parallel()
	const capacity, waiting = 24, 32
	s, ev, floor := waitNight(t, "waitrace", capacity)
	bs := make([]string, capacity)
	hs := make([]inventory.Hold, capacity)
	for i := range bs {
		bs[i], hs[i] = s.holdOne(t, ev, floor)
	}
	var wg sync.WaitGroup
	for i := 0; i < waiting; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if st, w := s.join(t, ev, map[string]any{"tier_id": floor, "email": fmt.Sprintf("fan%d@example.com", i), "quantity": 1}); st != 201 {
				t.Errorf("join %d: %d %s", i, st, w.Code)
			}
		}(i)
	}
	wg.Wait()
	if got := s.count(t, `SELECT count(DISTINCT seq) FROM inv_waitlist WHERE tier_id = ? AND seq BETWEEN 1 AND ?`, floor, waiting); got != waiting {
		t.Fatalf("%d distinct places 1..%d", got, waiting)
	}
	done := make(chan struct{})
	var servers sync.WaitGroup
	for g := 0; g < 4; g++ {
		servers.Add(1)
		go func() {
			defer servers.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				if _, err := s.inv.Service().ServeWaitlist(context.Background(), s.t, uuid.MustParse(ev)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for i := range bs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			s.release(t, bs[i], hs[i])
		}(i)
	}
	wg.Wait()
	close(done)
	servers.Wait()
	s.serve(t, ev)
	if got := s.count(t, `SELECT count(*) FROM inv_waitlist WHERE tier_id = ? AND status = 'offered'`, floor); got != capacity {
		t.Fatalf("%d offers for %d places", got, capacity)
	}
	if got := s.count(t, `SELECT max(seq) FROM inv_waitlist WHERE tier_id = ? AND status = 'offered'`, floor); got != capacity {
		t.Fatalf("offers not in join order: the last offered place is %d", got)
	}
	if got := s.count(t, `SELECT count(DISTINCT w.hold_id) FROM inv_waitlist w JOIN inv_holds h ON h.id = w.hold_id WHERE w.tier_id = ? AND h.status = 'active' AND h.quantity = 1`, floor); got != capacity {
		t.Fatalf("%d distinct live offer holds", got)
	}
	if got := s.count(t, `SELECT sum(held + sold) FROM inv_counter_shards sh JOIN inv_counters c ON c.id = sh.counter_id WHERE c.event_id = ? AND c.kind = 'pool'
		AND c.zone_id = (SELECT zone_id FROM inv_tiers WHERE id = ?)`, ev, floor); got != capacity {
		t.Fatalf("%d places out for a capacity of %d", got, capacity)
	}
	if got := s.count(t, `SELECT count(*) FROM inv_holds WHERE event_id = ? AND status = 'active'`, ev); got != capacity {
		t.Fatalf("%d active holds", got)
	}
}

// With first refusal on, a new listing goes to the waiting list before the
// public: the head of the line is offered it, buys it through the normal
// payment, and the listing never shows publicly.
func TestResaleWaitlistFirstRefusal(t *testing.T) {
	t.Parallel()
	s, ev, floor := waitNight(t, "firstref", 2)
	n := &doorNight{shop: s, ev: ev}
	res := s.do(t, "GET", "/api/v1/events/"+ev+"/inventory", nil)
	res.JSON(t, &n.inv)
	paid := n.paidOrder(t, map[string]any{"tier_id": floor, "quantity": 2})
	mustStatus(t, s.do(t, "PUT", "/api/v1/resale/settings", map[string]any{"cap_percent": 100, "commission_bps": 1500, "waitlist_first": true}), 200)
	_, e1 := s.join(t, ev, map[string]any{"tier_id": floor, "email": "first@example.com", "quantity": 1})
	_, e2 := s.join(t, ev, map[string]any{"tier_id": floor, "email": "second@example.com", "quantity": 1})
	st, l, _ := n.list(t, paid.Tickets[0].ID, sigOf(t, paid.OrderURL), 3000)
	if st != 201 || l.WaitlistUntil == nil {
		t.Fatalf("list under first refusal: %d %+v", st, l)
	}
	var pub struct{ Items []inventory.ResaleListing }
	s.env.Do(t, "GET", s.slug, "/api/v1/events/"+ev+"/resale", "", nil).JSON(t, &pub)
	if len(pub.Items) != 0 {
		t.Fatalf("listing public during first refusal: %+v", pub.Items)
	}
	if code, st, _ := n.reserve(t, l.ID); st != 409 || code != "listing_unavailable" {
		t.Fatalf("public reservation during first refusal: %d %s", st, code)
	}
	s.serve(t, ev)
	w1 := s.entry(t, e1)
	if w1.Status != "offered" || w1.ListingID == nil || *w1.ListingID != l.ID {
		t.Fatalf("head of the line: %+v", w1)
	}
	if w := s.entry(t, e2); w.Status != "waiting" {
		t.Fatalf("second in line: %+v", w)
	}
	res, _ = s.env.Try("POST", s.slug, "/api/v1"+strings.Replace(e1.URL, "?", "/order?", 1), "", map[string]any{"name": "First"})
	mustStatus(t, res, http.StatusCreated)
	var o orderOut
	res.JSON(t, &o)
	var wh inventory.WebhookResult
	s.webhook(t, "evt_"+uuid.NewString(), "payment_intent.succeeded", o.Order).JSON(t, &wh)
	if wh.Outcome != "resale" || o.AmountMinor != 3000 {
		t.Fatalf("first refusal purchase: %q %d", wh.Outcome, o.AmountMinor)
	}
	if w := s.entry(t, e1); w.Status != "accepted" {
		t.Fatalf("after buying: %+v", w)
	}
	if got := s.count(t, `SELECT count(*) FROM inv_tickets WHERE order_id = ? AND status = 'valid' AND holder_email = 'first@example.com'`, o.ID); got != 1 {
		t.Fatalf("%d tickets for the waiting buyer", got)
	}
}
