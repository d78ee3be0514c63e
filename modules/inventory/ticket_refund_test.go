package inventory_test

import (
	"encoding/csv"
	"encoding/json"
	"html"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"

	"marquee/modules/inventory"
)

// paidMixedOrder buys seats and GA units in one cart and pays for them.
func paidMixedOrder(t *testing.T, s *shop, ev, floor string, seats []string, ga int, email, name string) orderOut {
	t.Helper()
	buyer := s.buyer(t)
	h := s.mustHold(t, ev, buyer, map[string]any{"seats": seats})
	if ga > 0 {
		s.mustAdd(t, buyer, h.ID, map[string]any{"tiers": []map[string]any{{"tier_id": floor, "quantity": ga}}})
	}
	res := s.env.Do(t, "POST", s.slug, "/api/v1/orders", "", map[string]any{"hold_id": h.ID, "buyer": map[string]string{"email": email, "name": name}},
		"Idempotency-Key", uuid.NewString(), "X-Buyer-Token", buyer)
	mustStatus(t, res, http.StatusCreated)
	var o orderOut
	res.JSON(t, &o)
	mustStatus(t, s.webhook(t, "evt_"+uuid.NewString(), "payment_intent.succeeded", o.Order), http.StatusOK)
	res = s.do(t, "GET", "/api/v1/orders/"+o.ID.String(), nil)
	mustStatus(t, res, http.StatusOK)
	res.JSON(t, &o)
	if o.Status != "paid" || len(o.Tickets) != len(seats)+ga {
		t.Fatalf("order %s with %d tickets", o.Status, len(o.Tickets))
	}
	return o
}

func (s *shop) refundTickets(t *testing.T, orderID uuid.UUID, tickets ...uuid.UUID) (int, string) {
	t.Helper()
	res, err := s.env.Try("POST", s.slug, "/api/v1/orders/"+orderID.String()+"/refund-tickets", s.tok,
		map[string]any{"tickets": tickets, "reason": "one guest cannot come"}, "Idempotency-Key", uuid.NewString())
	if err != nil {
		t.Fatal(err)
	}
	var p struct{ Code string }
	if res.Status >= 400 {
		res.JSON(t, &p)
	}
	return res.Status, p.Code
}

// soldUnits is what the event's counters have sold: its GA pool and its
// web quota.
func soldUnits(t *testing.T, s *shop, ev string) (pool, quota int64) {
	t.Helper()
	pool = s.count(t, `SELECT coalesce(sum(sh.sold), 0) FROM inv_counter_shards sh JOIN inv_counters c ON c.id = sh.counter_id WHERE c.event_id = ? AND c.kind = 'pool'`, ev)
	quota = s.count(t, `SELECT coalesce(sum(sh.sold), 0) FROM inv_counter_shards sh JOIN inv_counters c ON c.id = sh.counter_id WHERE c.event_id = ? AND c.kind = 'quota' AND c.channel = 'web'`, ev)
	return pool, quota
}

// Refunding one seat and one GA ticket of a four-ticket order: those two
// are void (on the revocation list), the seat and the unit are back on
// sale, the money of those two goes back through Stripe (stripe-mock), the
// ledger nets the rest; the same tickets again are refused; a whole refund
// later sends back only what is left, and the ledger nets zero.
func TestRefundTickets(t *testing.T) {
	t.Parallel()
	s, ev, inv := onSale(t, "tkt-refund", "Partial Night", simpleSetup(2, 10, 20, map[string]int{"web": 40}))
	floor := tierID(t, inv, "Floor")
	o := paidMixedOrder(t, s, ev, floor, []string{"A-1-1", "A-1-2"}, 2, "ada@example.com", "Ada Lovelace")
	if o.AmountMinor != 2*5000+2*3000 {
		t.Fatalf("order amount %d", o.AmountMinor)
	}
	var seat1, ga1 uuid.UUID
	for _, k := range o.Tickets {
		switch {
		case k.SeatID != nil && *k.SeatID == "A-1-1":
			seat1 = k.ID
		case k.SeatID == nil && ga1 == uuid.Nil:
			ga1 = k.ID
		}
	}
	pool0, quota0 := soldUnits(t, s, ev)
	if pool0 != 2 || quota0 != 4 {
		t.Fatalf("sold before: pool %d quota %d", pool0, quota0)
	}
	res := s.do(t, "POST", "/api/v1/orders/"+o.ID.String()+"/refund-tickets", map[string]any{"tickets": []uuid.UUID{seat1, ga1}, "reason": "one guest cannot come"},
		"Idempotency-Key", uuid.NewString())
	mustStatus(t, res, http.StatusCreated)
	var pr inventory.PartialRefund
	res.JSON(t, &pr)
	if pr.AmountMinor != 5000+3000 || len(pr.Tickets) != 2 {
		t.Fatalf("partial refund %+v", pr)
	}
	if n := s.count(t, `SELECT count(*) FROM inv_tickets WHERE id IN (?, ?) AND status = 'void'`, seat1, ga1); n != 2 {
		t.Fatalf("%d of the refunded tickets void", n)
	}
	if n := s.count(t, `SELECT count(*) FROM inv_tickets WHERE order_id = ? AND status = 'valid'`, o.ID); n != 2 {
		t.Fatalf("%d tickets left valid, want 2", n)
	}
	if n := s.count(t, `SELECT count(*) FROM inv_ticket_revocations WHERE ticket_id IN (?, ?)`, seat1, ga1); n != 2 {
		t.Fatalf("%d refunded tickets on the door's revocation list", n)
	}
	if n := s.count(t, `SELECT count(*) FROM inv_seats WHERE event_id = ? AND id = 'A-1-1' AND state = 'available'`, ev); n != 1 {
		t.Fatal("the refunded seat is not back on sale")
	}
	if n := s.count(t, `SELECT count(*) FROM inv_seats WHERE event_id = ? AND id = 'A-1-2' AND state = 'sold'`, ev); n != 1 {
		t.Fatal("the other seat left its order")
	}
	if pool, quota := soldUnits(t, s, ev); pool != 1 || quota != 2 {
		t.Fatalf("sold after: pool %d quota %d, want 1 and 2", pool, quota)
	}
	if n := s.count(t, `SELECT count(*) FROM inv_partial_refunds WHERE id = ? AND stripe_refund_id LIKE 're_%'`, pr.ID); n != 1 {
		t.Fatal("the partial refund was not sent to Stripe")
	}
	ledger := func() int64 {
		return s.count(t, `SELECT coalesce(sum(amount_minor), 0) FROM ledger_entries WHERE reference = ?`, "order:"+o.ID.String())
	}
	if got := ledger(); got != 8000 {
		t.Fatalf("ledger nets %d for the order, want 8000", got)
	}
	if n := s.count(t, `SELECT count(*) FROM inv_orders WHERE id = ? AND status = 'paid'`, o.ID); n != 1 {
		t.Fatal("the order is no longer paid with tickets left")
	}
	// The same ticket again, or with a valid one: refused, nothing changes.
	for _, again := range [][]uuid.UUID{{seat1}, {ga1, o.Tickets[1].ID}} {
		if st, code := s.refundTickets(t, o.ID, again...); st != http.StatusConflict || code != "refund_tickets_not_valid" {
			t.Fatalf("refunding a refunded ticket again: %d %s", st, code)
		}
	}
	if st, code := s.refundTickets(t, o.ID, uuid.New()); st != http.StatusConflict || code != "refund_tickets_not_valid" {
		t.Fatalf("a ticket of no order: %d %s", st, code)
	}
	if st, code := s.refundTickets(t, o.ID); st != http.StatusBadRequest || code != "invalid_tickets" {
		t.Fatalf("no ticket: %d %s", st, code)
	}
	if got := ledger(); got != 8000 {
		t.Fatalf("a refused refund moved the ledger to %d", got)
	}
	// The whole refund now sends back the rest only.
	res = s.do(t, "POST", "/api/v1/orders/"+o.ID.String()+"/refund", map[string]any{"reason": "show moved"}, "Idempotency-Key", uuid.NewString())
	mustStatus(t, res, http.StatusOK)
	if n := s.count(t, `SELECT amount_minor FROM inv_refunds WHERE order_id = ?`, o.ID); n != 8000 {
		t.Fatalf("the whole refund after a partial one sent back %d, want 8000", n)
	}
	if got := ledger(); got != 0 {
		t.Fatalf("ledger nets %d after everything was refunded", got)
	}
	if pool, quota := soldUnits(t, s, ev); pool != 0 || quota != 0 {
		t.Fatalf("sold after the whole refund: pool %d quota %d", pool, quota)
	}
	if n := s.count(t, `SELECT count(*) FROM inv_seats WHERE event_id = ? AND state <> 'available'`, ev); n != 0 {
		t.Fatalf("%d seats not back on sale", n)
	}
}

// Refunding every ticket one request at a time leaves the order refunded.
func TestRefundTicketsLastOneClosesOrder(t *testing.T) {
	t.Parallel()
	s, ev, inv := onSale(t, "tkt-refund-all", "All Gone", simpleSetup(1, 5, 5, nil))
	o := paidMixedOrder(t, s, ev, tierID(t, inv, "Floor"), []string{"A-1-1"}, 1, "b@example.com", "B Buyer")
	for _, k := range o.Tickets {
		if st, code := s.refundTickets(t, o.ID, k.ID); st != http.StatusCreated {
			t.Fatalf("refund of %s: %d %s", k.ID, st, code)
		}
	}
	if n := s.count(t, `SELECT count(*) FROM inv_orders WHERE id = ? AND status = 'refunded'`, o.ID); n != 1 {
		t.Fatal("an order without valid tickets is not refunded")
	}
	if n := s.count(t, `SELECT coalesce(sum(amount_minor), 0) FROM ledger_entries WHERE reference = ?`, "order:"+o.ID.String()); n != 0 {
		t.Fatalf("ledger nets %d", n)
	}
	// The whole refund of it now changes nothing.
	res := s.do(t, "POST", "/api/v1/orders/"+o.ID.String()+"/refund", nil, "Idempotency-Key", uuid.NewString())
	mustStatus(t, res, http.StatusOK)
	if n := s.count(t, `SELECT count(*) FROM inv_refunds WHERE order_id = ?`, o.ID); n != 0 {
		t.Fatal("a whole refund was recorded for an order refunded ticket by ticket")
	}
}

// Many staff refund the same ticket at the same instant (and some a whole
// refund of its order): exactly one refund of that ticket happens, its
// money goes back once, its seat comes back once.
func TestRefundTicketsRace(t *testing.T) {
	t.Parallel()
	s, ev, inv := onSale(t, "tkt-refund-race", "Race Night", simpleSetup(1, 10, 10, map[string]int{"web": 20}))
	floor := tierID(t, inv, "Floor")
	for round := 0; round < 3; round++ {
		seat := []string{"A-1-1", "A-1-4", "A-1-7"}[round]
		o := paidMixedOrder(t, s, ev, floor, []string{seat}, 2, "race@example.com", "Race Fan")
		var target uuid.UUID
		for _, k := range o.Tickets {
			if k.SeatID != nil {
				target = k.ID
			}
		}
		poolBefore, quotaBefore := soldUnits(t, s, ev)
		const n = 12
		var wg sync.WaitGroup
		status := make([]int, n)
		codes := make([]string, n)
		start := make(chan struct{})
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				<-start
				res, err := s.env.Try("POST", s.slug, "/api/v1/orders/"+o.ID.String()+"/refund-tickets", s.tok,
					map[string]any{"tickets": []uuid.UUID{target}}, "Idempotency-Key", uuid.NewString())
				if err != nil {
					codes[i] = err.Error()
					return
				}
				status[i] = res.Status
				if res.Status >= 400 {
					var p struct{ Code string }
					_ = jsonInto(res.Body, &p)
					codes[i] = p.Code
				}
			}(i)
		}
		close(start)
		wg.Wait()
		won := 0
		for i := range status {
			switch {
			case status[i] == http.StatusCreated:
				won++
			case status[i] == http.StatusConflict && codes[i] == "refund_tickets_not_valid":
			default:
				t.Fatalf("round %d: a racer got %d %q", round, status[i], codes[i])
			}
		}
		if won != 1 {
			t.Fatalf("round %d: %d refunds of one ticket succeeded, want 1", round, won)
		}
		if c := s.count(t, `SELECT count(*) FROM inv_refunded_tickets WHERE ticket_id = ?`, target); c != 1 {
			t.Fatalf("round %d: ticket refunded %d times", round, c)
		}
		if c := s.count(t, `SELECT count(*) FROM inv_partial_refunds WHERE order_id = ?`, o.ID); c != 1 {
			t.Fatalf("round %d: %d partial refunds recorded", round, c)
		}
		if c := s.count(t, `SELECT count(*) FROM ledger_entries WHERE reference = ? AND kind = 'ticket.refund'`, "order:"+o.ID.String()); c != 1 {
			t.Fatalf("round %d: %d refunds on the ledger", round, c)
		}
		if pool, quota := soldUnits(t, s, ev); pool != poolBefore || quota != quotaBefore-1 {
			t.Fatalf("round %d: sold pool %d→%d quota %d→%d, want the seat's one quota unit back", round, poolBefore, pool, quotaBefore, quota)
		}
		if c := s.count(t, `SELECT count(*) FROM inv_seats WHERE event_id = ? AND id = ? AND state = 'available'`, ev, seat); c != 1 {
			t.Fatalf("round %d: the seat is not back on sale", round)
		}
	}
}

// The orders list sorts and pages by cursor, filters by channel and tier,
// exports CSV (formula cells defused), and the sales pages add up.
func TestOrdersListExportAndSales(t *testing.T) {
	t.Parallel()
	s, ev, inv := onSale(t, "orders-ops", "Ops Night", simpleSetup(8, 10, 20, nil))
	floor := tierID(t, inv, "Floor")
	a := paidMixedOrder(t, s, ev, floor, []string{"A-1-1"}, 0, "ann@example.com", "Ann Small")
	b := paidMixedOrder(t, s, ev, floor, []string{"A-1-2", "A-1-3"}, 3, "bob@example.com", "=HYPERLINK(\"x\")")
	page := func(path string) string {
		t.Helper()
		res := s.do(t, "GET", path, nil, "Accept", "text/html")
		if res.Status != http.StatusOK {
			t.Fatalf("GET %s: %d %.300s", path, res.Status, res.Body)
		}
		return string(res.Body)
	}
	base := "/portal/inventory/" + ev + "/orders"
	if l := page(base + "?sort=amount_desc"); strings.Index(l, b.ID.String()) > strings.Index(l, a.ID.String()) {
		t.Error("amount sort: the larger order is not first")
	}
	if l := page(base + "?sort=amount_asc"); strings.Index(l, a.ID.String()) > strings.Index(l, b.ID.String()) {
		t.Error("amount sort ascending")
	}
	if l := page(base + "?tier=Floor"); strings.Contains(l, a.ID.String()) || !strings.Contains(l, b.ID.String()) {
		t.Error("tier filter")
	}
	if l := page(base + "?channel=box_office"); strings.Contains(l, a.ID.String()) || strings.Contains(l, b.ID.String()) {
		t.Error("channel filter lets web orders through")
	}
	if l := page(base + "?channel=web"); !strings.Contains(l, a.ID.String()) || !strings.Contains(l, b.ID.String()) {
		t.Error("channel filter web")
	}
	csvRes := s.do(t, "GET", base+".csv", nil, "Accept", "text/html")
	mustStatus(t, csvRes, http.StatusOK)
	if ct := csvRes.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/csv") {
		t.Fatalf("export content type %q", ct)
	}
	recs, err := csv.NewReader(strings.NewReader(string(csvRes.Body))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if recs[0][0] != "order_id" {
		t.Fatalf("header %v", recs[0])
	}
	tickets := 0
	for _, r := range recs[1:] {
		if r[0] == b.ID.String() {
			tickets++
			if !strings.HasPrefix(r[3], "'=") {
				t.Errorf("a formula name is exported as %q", r[3])
			}
		}
	}
	if tickets != 5 {
		t.Fatalf("%d export lines for a five-ticket order", tickets)
	}
	sales := page("/portal/inventory/" + ev + "/sales")
	for _, want := range []string{`id="sales-sold">6<`, "EUR 240.00", `id="sales-chart"`, "Stalls", "Floor", "web"} {
		if !strings.Contains(sales, want) {
			t.Errorf("event sales page lacks %q", want)
		}
	}
	chain := page("/portal/sales")
	if !strings.Contains(chain, "Ops Night") || !strings.Contains(chain, "EUR 240.00") {
		t.Error("chain sales page")
	}
	// Cursor paging: 52 orders make two pages under every sort, with no
	// order twice and none missing.
	for i := 0; i < 50; i++ {
		paidMixedOrder(t, s, ev, floor, []string{"A-" + strconv.Itoa(3+i/10) + "-" + strconv.Itoa(i%10+1)}, 0, "p"+strconv.Itoa(i)+"@example.com", "Pager "+strconv.Itoa(i))
	}
	rowID := regexp.MustCompile(`<tr data-id="([0-9a-f-]{36})"`)
	nextLink := regexp.MustCompile(`<a href="([^"]+)" id="orders-older"`)
	for _, sort := range []string{"newest", "oldest", "amount_desc", "amount_asc", "name"} {
		seen := map[string]bool{}
		path, pages := base+"?sort="+sort, 0
		for path != "" {
			pages++
			l := page(path)
			for _, m := range rowID.FindAllStringSubmatch(l, -1) {
				if seen[m[1]] {
					t.Fatalf("sort %s: order %s on two pages", sort, m[1])
				}
				seen[m[1]] = true
			}
			path = ""
			if m := nextLink.FindStringSubmatch(l); m != nil {
				path = html.UnescapeString(m[1])
			}
		}
		if len(seen) != 52 || pages != 2 {
			t.Fatalf("sort %s: %d orders over %d pages, want 52 over 2", sort, len(seen), pages)
		}
	}
	if res := s.do(t, "GET", base+"?sort=name&after=forged", nil, "Accept", "text/html"); res.Status != http.StatusBadRequest ||
		strings.Contains(res.Header.Get("Content-Type"), "problem") {
		t.Fatalf("a forged cursor: %d %s", res.Status, res.Header.Get("Content-Type"))
	}
}

func jsonInto(b []byte, v any) error { return json.Unmarshal(b, v) }
