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

