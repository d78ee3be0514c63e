package inventory_test

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/app/apptest"
	"marquee/modules/inventory"
)

// One cart per buyer, enforced by the server: three buyers each send twelve
// "new hold" requests at once (six seats, six GA tickets, as many tabs
// would), while six other buyers race for one seat. Each of the three ends
// with exactly one hold of all twelve tickets, every answer naming it; the
// seat goes to one racer; the counters are exactly what the holds contain;
// and one checkout pays for the whole cart in one order.
func TestOneCartPerBuyerUnderRace(t *testing.T) {
	t.Parallel()
	s, ev, cfg := onSale(t, "onecart", "One Cart Night", simpleSetup(3, 20, 30, map[string]int{"web": 60}))
	floor := tierID(t, cfg, "Floor")
	type answer struct {
		buyer int
		res   apptest.Response
		err   error
	}
	const buyers, perKind, racers = 3, 6, 6
	toks := make([]string, buyers+racers)
	for i := range toks {
		toks[i] = s.buyer(t)
	}
	var bodies []struct {
		buyer int
		body  map[string]any
	}
	for b := range buyers {
		for i := range perKind {
			bodies = append(bodies, struct {
				buyer int
				body  map[string]any
			}{b, map[string]any{"seats": []string{fmt.Sprintf("A-%d-%d", b+1, i+1)}}})
			bodies = append(bodies, struct {
				buyer int
				body  map[string]any
			}{b, map[string]any{"tier_id": floor, "quantity": 1}})
		}
	}
	for r := range racers {
		bodies = append(bodies, struct {
			buyer int
			body  map[string]any
		}{buyers + r, map[string]any{"seats": []string{"A-3-20"}}})
	}

	answers := make([]answer, len(bodies))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, b := range bodies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			res, err := s.hold(ev, toks[b.buyer], b.body)
			answers[i] = answer{b.buyer, res, err}
		}()
	}
	close(start)
	wg.Wait()

	carts := make([]uuid.UUID, buyers)
	raceWinners := 0
	var winner uuid.UUID
	for i, a := range answers {
		if a.err != nil {
			t.Fatalf("request %d: %v", i, a.err)
		}
		if a.buyer >= buyers { // a racer for A-3-20
			switch {
			case a.res.Status == http.StatusCreated:
				raceWinners++
				var h inventory.Hold
				a.res.JSON(t, &h)
				winner = h.ID
			case a.res.Status != http.StatusConflict || a.res.Code() != "seats_unavailable":
				t.Errorf("racer %d: %d %s", a.buyer, a.res.Status, a.res.Body)
			}
			continue
		}
		if a.res.Status != http.StatusCreated {
			t.Fatalf("buyer %d request %d: %d %s", a.buyer, i, a.res.Status, a.res.Body)
		}
		var h inventory.Hold
		a.res.JSON(t, &h)
		if carts[a.buyer] == uuid.Nil {
			carts[a.buyer] = h.ID
		} else if h.ID != carts[a.buyer] {
			t.Errorf("buyer %d answered holds %s and %s: two carts", a.buyer, carts[a.buyer], h.ID)
		}
	}
	if raceWinners != 1 {
		t.Fatalf("%d buyers won seat A-3-20, want exactly 1", raceWinners)
	}
	if got := s.count(t, `SELECT count(*) FROM inv_seats WHERE event_id = ? AND id = 'A-3-20' AND state = 'held' AND hold_id = ?`, ev, winner); got != 1 {
		t.Errorf("A-3-20 not held by the winner's hold %s", winner)
	}

	// The database: one active hold per buyer, holding all twelve.
	for b, cart := range carts {
		if n := s.count(t, `SELECT count(*) FROM inv_holds WHERE event_id = ? AND buyer_id = (SELECT buyer_id FROM inv_holds WHERE id = ?) AND status = 'active'`,
			ev, cart); n != 1 {
			t.Errorf("buyer %d has %d active holds, want 1", b, n)
		}
		if n := s.count(t, `SELECT quantity FROM inv_holds WHERE id = ?`, cart); n != 2*perKind {
			t.Errorf("buyer %d's cart holds %d tickets, want %d", b, n, 2*perKind)
		}
		if n := s.count(t, `SELECT count(*) FROM inv_seats WHERE event_id = ? AND hold_id = ? AND state = 'held' AND id LIKE ?`,
			ev, cart, fmt.Sprintf("A-%d-%%", b+1)); n != perKind {
			t.Errorf("buyer %d's cart holds %d of their %d seats", b, n, perKind)
		}
		if n := s.count(t, `SELECT coalesce(sum(quantity), 0) FROM inv_hold_lines WHERE hold_id = ? AND seat_id IS NULL`, cart); n != perKind {
			t.Errorf("buyer %d's cart holds %d GA tickets, want %d", b, n, perKind)
		}
		if n := s.count(t, `SELECT c.holds FROM inv_buyer_counters c JOIN inv_holds h ON c.event_id = h.event_id AND c.subject = 'b:' || h.buyer_id
			WHERE h.id = ?`, cart); n != 1 {
			t.Errorf("buyer %d counted with %d holds, want 1", b, n)
		}
	}
	pool := s.count(t, `SELECT coalesce(sum(sh.held), 0) FROM inv_counter_shards sh JOIN inv_counters c ON c.id = sh.counter_id WHERE c.event_id = ? AND c.kind = 'pool'`, ev)
	quota := s.count(t, `SELECT coalesce(sum(sh.held), 0) FROM inv_counter_shards sh JOIN inv_counters c ON c.id = sh.counter_id WHERE c.event_id = ? AND c.kind = 'quota'`, ev)
	if pool != buyers*perKind || quota != buyers*2*perKind+1 {
		t.Errorf("pool holds %d (want %d), web quota %d (want %d)", pool, buyers*perKind, quota, buyers*2*perKind+1)
	}
	if n := s.count(t, `SELECT count(*) FROM inv_seats WHERE event_id = ? AND state <> 'available'`, ev); n != buyers*perKind+1 {
		t.Errorf("%d seats taken, want %d", n, buyers*perKind+1)
	}
	s.checkCounters(t)
	if t.Failed() {
		t.FailNow()
	}

	// Checkout: one order of everything in the cart, paid once.
	o := s.order(t, toks[0], carts[0])
	if o.AmountMinor != perKind*5000+perKind*3000 {
		t.Fatalf("order of %d, want the whole cart %d", o.AmountMinor, perKind*5000+perKind*3000)
	}
	mustStatus(t, s.webhook(t, "evt_"+uuid.NewString(), "payment_intent.succeeded", o.Order), http.StatusOK)
	if n := s.count(t, `SELECT count(*) FROM inv_tickets WHERE order_id = ? AND status = 'valid'`, o.ID); n != 2*perKind {
		t.Errorf("%d tickets for the cart's order, want %d", n, 2*perKind)
	}
	if n := s.count(t, `SELECT count(*) FROM inv_seats WHERE event_id = ? AND state = 'sold' AND id LIKE 'A-1-%'`, ev); n != perKind {
		t.Errorf("%d of the cart's seats sold, want %d", n, perKind)
	}
	// Paid, the cart is over: the buyer's next hold is a new cart.
	next := s.mustHold(t, ev, toks[0], map[string]any{"seats": []string{"A-1-10"}})
	if next.ID == carts[0] || next.Quantity != 1 {
		t.Errorf("after paying, a new hold: %+v", next)
	}
	// The buyer's tickets count their bought ones too: 12 paid, 1 held.
	if n := s.count(t, `SELECT c.holds * 100 + c.units FROM inv_buyer_counters c JOIN inv_holds h ON c.event_id = h.event_id AND c.subject = 'b:' || h.buyer_id
		WHERE h.id = ?`, next.ID); n != 100+2*perKind+1 {
		t.Errorf("buyer counted as %d (holds×100 + tickets), want %d", n, 100+2*perKind+1)
	}
}

// A cart whose time ran out before the sweeper saw it still occupies the
// buyer's one place; a new hold expires it and starts a new cart. A cart with
// an order takes nothing more. Staff holding for several customers keep a
// hold each.
func TestOneCartLapsedOrderedAndStaff(t *testing.T) {
	t.Parallel()
	s, ev, cfg := onSale(t, "cartlapse", "Lapse Night", simpleSetup(2, 10, 20, map[string]int{"web": 30, "box_office": 5}))
	floor := tierID(t, cfg, "Floor")
	a := s.buyer(t)
	h := s.mustHold(t, ev, a, map[string]any{"seats": []string{"A-1-1"}})
	// Lapsed by the database's clock, still active (no sweep yet).
	s.sql(t, func(tx *gorm.DB) error {
		return tx.Exec(`UPDATE inv_holds SET expires_at = now() - interval '1 second' WHERE id = ?`, h.ID).Error
	})
	next := s.mustHold(t, ev, a, map[string]any{"tier_id": floor, "quantity": 2})
	if next.ID == h.ID || next.Quantity != 2 {
		t.Fatalf("after the cart lapsed: %+v", next)
	}
	if st := s.count(t, `SELECT count(*) FROM inv_holds WHERE id = ? AND status = 'expired'`, h.ID); st != 1 {
		t.Error("the lapsed cart was not expired")
	}
	if got := s.seatState(t, ev, "A-1-1"); got != "available" {
		t.Errorf("the lapsed cart's seat is %s", got)
	}

	// An order fixes the cart: another hold is refused, nothing changes.
	s.order(t, a, next.ID)
	before := s.cartSnapshot(t)
	res, err := s.hold(ev, a, map[string]any{"seats": []string{"A-1-2"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != http.StatusConflict || res.Code() != "hold_has_order" {
		t.Fatalf("hold with an ordered cart: %d %s", res.Status, res.Body)
	}
	if after := s.cartSnapshot(t); after != before {
		t.Fatalf("a refused hold changed state: %s -> %s", before, after)
	}

	// Staff (no buyer token) hold for one customer after another: a hold
	// per sale, at the box office or on the web channel.
	for _, hold := range []map[string]any{
		{"seats": []string{"A-2-1"}, "channel": "box_office"}, {"seats": []string{"A-2-2"}, "channel": "box_office"},
		{"seats": []string{"A-2-3"}}, {"seats": []string{"A-2-4"}},
	} {
		mustStatus(t, s.do(t, "POST", "/api/v1/events/"+ev+"/holds", hold, "Idempotency-Key", uuid.NewString()), http.StatusCreated)
	}
	if n := s.count(t, `SELECT count(*) FROM inv_holds WHERE event_id = ? AND buyer_id LIKE 'staff:%' AND status = 'active' AND NOT cart`, ev); n != 4 {
		t.Errorf("staff holds %d, want 4 (one per sale)", n)
	}
	s.checkCounters(t)
}

// Two "new holds" of one buyer decided by two batches at once (what two
// workers or two instances do): the first batch is stopped after it read
// that the buyer has no cart; the second makes the cart and commits; the
// first then cannot insert a second cart (the one-cart index), is rolled
// back, run again, and joins the cart. One hold of both requests.
func TestOneCartAcrossConcurrentBatches(t *testing.T) {
	// Serial: the batch fault hook is one for the process.
	s, ev, cfg := onSale(t, "cartbatches", "Two Batches Night", simpleSetup(1, 10, 20, map[string]int{"web": 30}))
	floor := tierID(t, cfg, "Floor")
	a := s.buyer(t)
	entered, release, stop := inventory.StallFirstHoldBatch(uuid.MustParse(ev))
	defer stop()
	defer release()
	type answer struct {
		res apptest.Response
		err error
	}
	first := make(chan answer, 1)
	go func() {
		res, err := s.hold(ev, a, map[string]any{"seats": []string{"A-1-1"}})
		first <- answer{res, err}
	}()
	<-entered
	began := time.Now()
	second := s.mustHold(t, ev, a, map[string]any{"tier_id": floor, "quantity": 2})
	t.Logf("second hold answered in %v while the first batch was stopped", time.Since(began))
	if second.Quantity != 2 {
		t.Fatalf("the second batch's hold: %+v", second)
	}
	release()
	got := <-first
	if got.err != nil {
		t.Fatal(got.err)
	}
	mustStatus(t, got.res, http.StatusCreated)
	var h inventory.Hold
	got.res.JSON(t, &h)
	if h.ID != second.ID || h.Quantity != 3 || len(h.Seats) != 1 {
		t.Fatalf("the stalled request answered %+v, want the cart %s with the seat added", h, second.ID)
	}
	if n := s.count(t, `SELECT count(*) FROM inv_holds WHERE event_id = ? AND status = 'active'`, ev); n != 1 {
		t.Fatalf("%d active holds, want the one cart", n)
	}
	if got := s.seatState(t, ev, "A-1-1"); got != "held" {
		t.Fatalf("A-1-1 is %s", got)
	}
	s.checkCounters(t)
}
