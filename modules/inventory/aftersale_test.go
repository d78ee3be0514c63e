package inventory_test

import (
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
