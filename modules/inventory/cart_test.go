package inventory_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/app/apptest"
	"marquee/modules/inventory"
)

// addItems posts more items to a hold as a buyer, under key (fresh if "").
func (s *shop) addItems(buyerTok string, holdID uuid.UUID, body any, key string) (apptest.Response, error) {
	if key == "" {
		key = uuid.NewString()
	}
	return s.env.Try("POST", s.slug, "/api/v1/holds/"+holdID.String()+"/items", "", body, "Idempotency-Key", key, "X-Buyer-Token", buyerTok)
}

func (s *shop) mustAdd(t testing.TB, buyerTok string, holdID uuid.UUID, body any) inventory.Hold {
	t.Helper()
	res, err := s.addItems(buyerTok, holdID, body, "")
	if err != nil {
		t.Fatal(err)
	}
	mustStatus(t, res, http.StatusOK)
	var h inventory.Hold
	res.JSON(t, &h)
	return h
}

// cartSnapshot is everything a refused addition must leave untouched,
// holds' contents included.
func (s *shop) cartSnapshot(t testing.TB) string {
	t.Helper()
	return s.snapshot(t) + fmt.Sprintf("/%d/%d/%d/%d",
		s.count(t, `SELECT coalesce(sum(quantity * 1000000 + amount_minor), 0) FROM inv_holds`),
		s.count(t, `SELECT count(*) FROM inv_hold_lines`), s.count(t, `SELECT coalesce(sum(quantity), 0) FROM inv_hold_allocs`),
		s.count(t, `SELECT count(*) FROM idempotency_keys`))
}

// checkCounters checks that every shard's held units are exactly what the
// active holds' allocations say, that no shard is over capacity, and that
// each buyer's counted units are what their active holds contain.
func (s *shop) checkCounters(t testing.TB) {
	t.Helper()
	if n := s.count(t, `SELECT count(*) FROM inv_counter_shards WHERE held + sold > capacity`); n != 0 {
		t.Errorf("%d shards over capacity", n)
	}
	if n := s.count(t, `SELECT count(*) FROM inv_counter_shards s WHERE s.held <> coalesce((SELECT sum(a.quantity) FROM inv_hold_allocs a
		JOIN inv_holds h ON h.id = a.hold_id AND h.status = 'active' WHERE a.counter_id = s.counter_id AND a.shard = s.shard), 0)`); n != 0 {
		t.Errorf("%d shards whose held units differ from the active holds' allocations", n)
	}
	if n := s.count(t, `SELECT count(*) FROM inv_buyer_counters b WHERE b.subject LIKE 'b:%' AND b.units <> coalesce((SELECT sum(h.quantity)
		FROM inv_holds h WHERE h.event_id = b.event_id AND 'b:' || h.buyer_id = b.subject AND h.status = 'active'), 0)`); n != 0 {
		t.Errorf("%d buyer counters whose units differ from their active holds", n)
	}
	if n := s.count(t, `SELECT count(*) FROM inv_holds h WHERE h.quantity <> (SELECT sum(quantity) FROM inv_hold_lines l WHERE l.hold_id = h.id)
		OR h.amount_minor <> (SELECT sum(quantity * unit_price_minor) FROM inv_hold_lines l WHERE l.hold_id = h.id)`); n != 0 {
		t.Errorf("%d holds whose quantity or amount differ from their lines", n)
	}
	if n := s.count(t, `SELECT count(*) FROM inv_seats s WHERE s.state = 'held' AND NOT EXISTS (SELECT 1 FROM inv_hold_lines l
		WHERE l.hold_id = s.hold_id AND l.seat_id = s.id)`); n != 0 {
		t.Errorf("%d held seats without their hold's line", n)
	}
}

// A buyer adds seats and GA tickets to their hold: one cart, its expiry
// kept, its amount and the counters following, and the live availability
// told.
func TestAddToHoldSeatsAndGA(t *testing.T) {
	t.Parallel()
	s, ev, cfg := onSale(t, "cartadd", "Cart Night", simpleSetup(1, 10, 20, map[string]int{"web": 25}))
	env := s.env
	floor := tierID(t, cfg, "Floor")
	a := s.buyer(t)
	h := s.mustHold(t, ev, a, map[string]any{"seats": []string{"A-1-1"}})
	version := func() string {
		res := env.Do(t, "GET", s.slug, "/api/v1/events/"+ev+"/availability", "", nil)
		mustStatus(t, res, http.StatusOK)
		return string(res.Body) // served from the cache until its version moves
	}
	before := version()

	got := s.mustAdd(t, a, h.ID, map[string]any{"seats": []string{"A-1-3", "A-1-2"}, "tiers": []map[string]any{{"tier_id": floor, "quantity": 2}}})
	if got.ID != h.ID || got.Quantity != 5 || got.AmountMinor != 3*5000+2*3000 || !got.ExpiresAt.Equal(h.ExpiresAt) {
		t.Fatalf("after adding: %+v (was %+v)", got, h)
	}
	if fmt.Sprint(got.Seats) != "[A-1-1 A-1-2 A-1-3]" || len(got.Lines) != 4 {
		t.Fatalf("cart: seats %v lines %+v", got.Seats, got.Lines)
	}
	got = s.mustAdd(t, a, h.ID, map[string]any{"tiers": []map[string]any{{"tier_id": floor, "quantity": 1}}})
	if got.Quantity != 6 || got.AmountMinor != 3*5000+3*3000 || !got.ExpiresAt.Equal(h.ExpiresAt) {
		t.Fatalf("after adding GA: %+v", got)
	}
	for _, seat := range []string{"A-1-2", "A-1-3"} {
		if st := s.seatState(t, ev, seat); st != "held" {
			t.Errorf("seat %s is %s", seat, st)
		}
	}
	// The quota counts seats and units alike: 6 of the web channel's 25.
	if n := s.count(t, `SELECT sum(s.held) FROM inv_counter_shards s JOIN inv_counters c ON c.id = s.counter_id WHERE c.event_id = ? AND c.kind = 'quota'`, ev); n != 6 {
		t.Errorf("web quota holds %d, want 6", n)
	}
	if n := s.count(t, `SELECT sum(s.held) FROM inv_counter_shards s JOIN inv_counters c ON c.id = s.counter_id WHERE c.event_id = ? AND c.kind = 'pool'`, ev); n != 3 {
		t.Errorf("floor pool holds %d, want 3", n)
	}
	if after := version(); after == before {
		t.Errorf("availability unchanged after additions: %s", after)
	}
	res := env.Do(t, "GET", s.slug, "/api/v1/holds?mine&event_id="+ev, "", nil, "X-Buyer-Token", a)
	var mine struct{ Holds []inventory.Hold }
	res.JSON(t, &mine)
	if len(mine.Holds) != 1 || mine.Holds[0].Quantity != 6 {
		t.Fatalf("the buyer's holds: %+v", mine.Holds)
	}
	s.checkCounters(t)

	// A seat taken out goes back on sale with its quota unit; only its
	// buyer's, only a seat in the hold, never the last ticket.
	del := func(tok string, hold uuid.UUID, seat string) apptest.Response {
		return env.Do(t, "DELETE", s.slug, "/api/v1/holds/"+hold.String()+"/items/"+seat, "", nil, "X-Buyer-Token", tok)
	}
	before = s.cartSnapshot(t)
	for _, tc := range []struct {
		tok, seat string
		status    int
		code      string
	}{{s.buyer(t), "A-1-2", http.StatusNotFound, "not_found"}, {a, "A-1-9", http.StatusNotFound, "not_found"}, {a, "x", http.StatusBadRequest, "invalid_seats"}} {
		if res := del(tc.tok, h.ID, tc.seat); res.Status != tc.status || res.Code() != tc.code {
			t.Errorf("remove %s: %d %s", tc.seat, res.Status, res.Body)
		}
	}
	if after := s.cartSnapshot(t); after != before {
		t.Fatalf("refused removals changed the database: %s → %s", before, after)
	}
	res = del(a, h.ID, "A-1-2")
	mustStatus(t, res, http.StatusOK)
	res.JSON(t, &got)
	if got.Quantity != 5 || got.AmountMinor != 2*5000+3*3000 || fmt.Sprint(got.Seats) != "[A-1-1 A-1-3]" || !got.ExpiresAt.Equal(h.ExpiresAt) {
		t.Fatalf("after removing A-1-2: %+v", got)
	}
	if st := s.seatState(t, ev, "A-1-2"); st != "available" {
		t.Errorf("removed seat is %s", st)
	}
	if n := s.count(t, `SELECT sum(s.held) FROM inv_counter_shards s JOIN inv_counters c ON c.id = s.counter_id WHERE c.event_id = ? AND c.kind = 'quota'`, ev); n != 5 {
		t.Errorf("web quota holds %d after the removal, want 5", n)
	}
	s.checkCounters(t)

	// Released, the whole cart comes back.
	mustStatus(t, env.Do(t, "DELETE", s.slug, "/api/v1/holds/"+h.ID.String(), "", nil, "X-Buyer-Token", a), http.StatusNoContent)
	if n := s.count(t, `SELECT coalesce(sum(held), 0) FROM inv_counter_shards`); n != 0 {
		t.Errorf("%d units still held after the release", n)
	}
	if n := s.count(t, `SELECT count(*) FROM inv_seats WHERE state <> 'available'`); n != 0 {
		t.Errorf("%d seats not available after the release", n)
	}
	s.checkCounters(t)

	// The last ticket stays: the buyer releases the hold instead.
	h = s.mustHold(t, ev, a, map[string]any{"seats": []string{"A-1-9"}})
	if res := del(a, h.ID, "A-1-9"); res.Status != http.StatusConflict || res.Code() != "last_item" {
		t.Errorf("removing the last ticket: %d %s", res.Status, res.Body)
	}
	if st := s.seatState(t, ev, "A-1-9"); st != "held" {
		t.Errorf("the last seat is %s after a refused removal", st)
	}
}

// What an addition may not do: each refusal has its code and changes
// nothing; a retry under the same key answers the same.
func TestAddToHoldRefusalsAndRetry(t *testing.T) {
	t.Parallel()
	env, inv := startEnv(t)
	s := newShop(t, env, inv, "cartno")
	ev := s.event(t, "Cart Rules Night")
	setup := simpleSetup(1, 10, 20, nil)
	setup["max_buyer_tickets"] = 8
	cfg := s.configure(t, ev, setup)
	floor, stalls := tierID(t, cfg, "Floor"), tierID(t, cfg, "Stalls")
	a, b := s.buyer(t), s.buyer(t)
	h := s.mustHold(t, ev, a, map[string]any{"tier_id": floor, "quantity": 8})
	hb := s.mustHold(t, ev, b, map[string]any{"seats": []string{"A-1-9"}})
	d := s.buyer(t) // b's second hold would join b's cart
	lapsed := s.mustHold(t, ev, d, map[string]any{"seats": []string{"A-1-10"}})
	s.lapse(t, lapsed.ID)

	// Limits: the floor tier's max per order is 10 for the whole cart, and
	// buyer a may keep 8 tickets for the event, already held.
	cases := []struct {
		name, tok string
		hold      uuid.UUID
		body      any
		status    int
		code      string
	}{
		{"buyer limit over the cart", a, h.ID, map[string]any{"seats": []string{"A-1-1"}}, http.StatusTooManyRequests, "hold_limit"},
		{"max per order over the cart", a, h.ID, map[string]any{"tiers": []map[string]any{{"tier_id": floor, "quantity": 3}}}, http.StatusBadRequest, "invalid_quantity"},
		{"someone else's hold", a, hb.ID, map[string]any{"seats": []string{"A-1-1"}}, http.StatusNotFound, "not_found"},
		{"no such hold", a, uuid.Must(uuid.NewV7()), map[string]any{"seats": []string{"A-1-1"}}, http.StatusNotFound, "not_found"},
		{"lapsed hold", d, lapsed.ID, map[string]any{"seats": []string{"A-1-1"}}, http.StatusGone, "hold_expired"},
		{"seat taken", b, hb.ID, map[string]any{"seats": []string{"A-1-1", "A-1-10"}}, http.StatusConflict, "seats_unavailable"},
		{"seat already in the cart", b, hb.ID, map[string]any{"seats": []string{"A-1-9"}}, http.StatusConflict, "seats_unavailable"},
		{"nothing asked", b, hb.ID, map[string]any{}, http.StatusBadRequest, "invalid_request"},
		{"bad seat id", b, hb.ID, map[string]any{"seats": []string{"x"}}, http.StatusBadRequest, "invalid_seats"},
		{"seat twice", b, hb.ID, map[string]any{"seats": []string{"A-1-1", "A-1-1"}}, http.StatusBadRequest, "invalid_seats"},
		{"bad tier id", b, hb.ID, map[string]any{"tiers": []map[string]any{{"tier_id": "nope", "quantity": 1}}}, http.StatusBadRequest, "invalid_tier_id"},
		{"unknown tier", b, hb.ID, map[string]any{"tiers": []map[string]any{{"tier_id": uuid.NewString(), "quantity": 1}}}, http.StatusNotFound, "not_found"},
		{"seated tier as GA", b, hb.ID, map[string]any{"tiers": []map[string]any{{"tier_id": stalls, "quantity": 1}}}, http.StatusBadRequest, "invalid_tier_id"},
		{"zero quantity", b, hb.ID, map[string]any{"tiers": []map[string]any{{"tier_id": floor, "quantity": 0}}}, http.StatusBadRequest, "invalid_quantity"},
		{"over max per order in one addition", b, hb.ID, map[string]any{"seats": []string{"A-1-2"}, "tiers": []map[string]any{{"tier_id": floor, "quantity": 13}}}, http.StatusBadRequest, "invalid_quantity"},
		{"no buyer", "", hb.ID, map[string]any{"seats": []string{"A-1-1"}}, http.StatusBadRequest, "buyer_required"},
	}
	before := s.cartSnapshot(t)
	for _, tc := range cases {
		res, err := s.addItems(tc.tok, tc.hold, tc.body, "")
		if err != nil {
			t.Fatal(err)
		}
		if res.Status != tc.status || res.Code() != tc.code {
			t.Errorf("%s: %d %s, want %d %s", tc.name, res.Status, res.Body, tc.status, tc.code)
		}
		if after := s.cartSnapshot(t); after != before {
			t.Fatalf("%s changed the database: %s → %s", tc.name, before, after)
		}
	}
	// A GA pool without room: all or nothing, the seat asked with it stays free.
	c := s.buyer(t)
	hc := s.mustHold(t, ev, c, map[string]any{"tier_id": floor, "quantity": 8})
	before = s.cartSnapshot(t)
	res, err := s.addItems(b, hb.ID, map[string]any{"seats": []string{"A-1-2"}, "tiers": []map[string]any{{"tier_id": floor, "quantity": 5}}}, "")
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != http.StatusConflict || res.Code() != "sold_out" {
		t.Errorf("sold out: %d %s", res.Status, res.Body)
	}
	if after := s.cartSnapshot(t); after != before {
		t.Fatalf("a sold-out addition changed the database: %s → %s", before, after)
	}

	// Idempotent retry: the same key answers the same, once.
	key := uuid.NewString()
	body := map[string]any{"seats": []string{"A-1-2"}, "tiers": []map[string]any{{"tier_id": floor, "quantity": 1}}}
	first, err := s.addItems(b, hb.ID, body, key)
	if err != nil {
		t.Fatal(err)
	}
	mustStatus(t, first, http.StatusOK)
	again, err := s.addItems(b, hb.ID, body, key)
	if err != nil {
		t.Fatal(err)
	}
	mustStatus(t, again, http.StatusOK)
	var h1, h2 inventory.Hold
	first.JSON(t, &h1)
	again.JSON(t, &h2)
	if h1.Quantity != 3 || h2.Quantity != 3 || fmt.Sprint(h1.Seats) != fmt.Sprint(h2.Seats) || h1.AmountMinor != h2.AmountMinor {
		t.Fatalf("retry answered differently: %+v then %+v", h1, h2)
	}
	if n := s.count(t, `SELECT quantity FROM inv_holds WHERE id = ?`, hb.ID); n != 3 {
		t.Fatalf("hold quantity %d after a retried addition, want 3", n)
	}
	reused, err := s.addItems(b, hb.ID, map[string]any{"seats": []string{"A-1-3"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	if reused.Status != http.StatusUnprocessableEntity {
		t.Errorf("key reused for another body: %d %s", reused.Status, reused.Body)
	}

	// An order fixes the hold's amount: no more additions.
	s.order(t, c, hc.ID)
	before = s.cartSnapshot(t)
	res, err = s.addItems(c, hc.ID, map[string]any{"seats": []string{"A-1-4"}}, "")
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != http.StatusConflict || res.Code() != "hold_has_order" {
		t.Errorf("hold with an order: %d %s", res.Status, res.Body)
	}
	if after := s.cartSnapshot(t); after != before {
		t.Fatalf("refused addition to an ordered hold changed the database: %s → %s", before, after)
	}
	s.checkCounters(t)
}

// Many buyers add the same last seats and GA units to their own holds at
// once: each seat ends in exactly one hold, no pool, quota or buyer counter
// goes over, and every counter equals what the holds contain.
func TestRaceAddToHoldsForLastSeatsAndUnits(t *testing.T) {
	t.Parallel()
	s, ev, cfg := onSale(t, "cartrace", "Cart Race", simpleSetup(1, 10, 30, map[string]int{"web": 30}))
	floor := tierID(t, cfg, "Floor")

	// 20 buyers hold a GA unit each, 4 a seat each (A-1-1..4): 10 pool
	// units, seats A-1-5..10 and 6 units of the web quota are left.
	const buyers = 24
	toks := make([]string, buyers)
	holds := make([]inventory.Hold, buyers)
	for i := range toks {
		toks[i] = s.buyer(t)
		body := map[string]any{"tier_id": floor, "quantity": 1}
		if i >= 20 {
			body = map[string]any{"seats": []string{fmt.Sprintf("A-1-%d", i-19)}}
		}
		holds[i] = s.mustHold(t, ev, toks[i], body)
	}
	// Everyone adds at once: half ask for one of seats A-1-5..7, half for a
	// GA unit. The quota's 6 units bind: exactly 6 additions can win.
	out := make([]outcome, buyers)
	parallel(buyers, func(i int) {
		body := map[string]any{"tiers": []map[string]any{{"tier_id": floor, "quantity": 1}}}
		if i%2 == 0 {
			body = map[string]any{"seats": []string{fmt.Sprintf("A-1-%d", 5+(i/2)%3)}}
		}
		res, err := s.addItems(toks[i], holds[i].ID, body, "")
		out[i] = outcome{res: res, err: err}
	})
	granted := 0
	for i, o := range out {
		if o.err != nil {
			t.Fatalf("buyer %d: %v", i, o.err)
		}
		switch o.res.Status {
		case http.StatusOK:
			granted++
		case http.StatusConflict:
			if c := o.res.Code(); c != "seats_unavailable" && c != "quota_exceeded" {
				t.Errorf("buyer %d refused with %s", i, o.res.Body)
			}
		default:
			t.Errorf("buyer %d: %d %s", i, o.res.Status, o.res.Body)
		}
	}
	if granted != 6 {
		t.Errorf("%d additions granted, want 6 (the quota's free units)", granted)
	}
	var owners []string
	s.sql(t, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT l.seat_id || '@' || l.hold_id FROM inv_hold_lines l JOIN inv_holds h ON h.id = l.hold_id
			WHERE h.event_id = ? AND h.status = 'active' AND l.seat_id IS NOT NULL`, ev).Scan(&owners).Error
	})
	inHolds := map[string]int{}
	for _, o := range owners {
		seat, _, _ := strings.Cut(o, "@")
		inHolds[seat]++
	}
	for seat, n := range inHolds {
		if n != 1 {
			t.Errorf("seat %s in %d holds", seat, n)
		}
	}
	if held := s.count(t, `SELECT count(*) FROM inv_seats WHERE event_id = ? AND state = 'held'`, ev); held != int64(len(owners)) {
		t.Errorf("%d seats held, %d seat lines in active holds", held, len(owners))
	}
	if free := s.count(t, `SELECT sum(s.capacity - s.held - s.sold) FROM inv_counter_shards s JOIN inv_counters c ON c.id = s.counter_id
		WHERE c.event_id = ? AND c.kind = 'quota'`, ev); free != 0 {
		t.Errorf("web quota has %d free after the race, want 0", free)
	}
	s.checkCounters(t)
}
