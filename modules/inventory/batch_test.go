package inventory_test

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/app/apptest"
	"marquee/modules/inventory"
)

// Forty-four requests decided in one batch (one transaction), in a known
// arrival order: each is served or refused on its own, exactly as it would
// be alone, and a refused one changes nothing.
func TestOneBatchDecidesEachRequestOnItsOwn(t *testing.T) {
	t.Parallel()
	env, inv := startEnv(t)
	s := newShop(t, env, inv, "batch")
	ev := s.event(t, "Batch Night")
	setup := simpleSetup(4, 10, 20, map[string]int{"web": 60})
	setup["max_buyer_holds"] = 2
	cfg := s.configure(t, ev, setup)
	floor := tierID(t, cfg, "Floor")
	evID := uuid.MustParse(ev)
	queued, resume := inv.PauseHoldBatches(s.t, evID)
	sizesBefore := batchSizes(t, env)

	type request struct {
		name  string
		buyer string
		body  map[string]any
		key   string
		want  int    // status
		code  string // problem code when refused
		res   apptest.Response
		err   error
		hold  inventory.Hold
	}
	var reqs []*request
	add := func(name, buyer string, body map[string]any, want int, code string) *request {
		r := &request{name: name, buyer: buyer, body: body, key: uuid.NewString(), want: want, code: code}
		reqs = append(reqs, r)
		return r
	}
	seats := func(ids ...string) map[string]any { return map[string]any{"seats": ids} }
	// 20 buyers, a seat each: all served.
	for i := range 20 {
		add(fmt.Sprintf("lone %d", i), s.buyer(t), seats(fmt.Sprintf("A-%d-%d", 1+i/10, 1+i%10)), http.StatusCreated, "")
	}
	// 5 seats wanted by two buyers each: the first to arrive is served.
	for i := range 5 {
		seat := fmt.Sprintf("A-3-%d", 1+i)
		add("first for "+seat, s.buyer(t), seats(seat), http.StatusCreated, "")
		add("second for "+seat, s.buyer(t), seats(seat), http.StatusConflict, "seats_unavailable")
	}
	// A cart with one seat already granted in this batch and one free:
	// nothing of it is held.
	add("overlapping cart", s.buyer(t), seats("A-1-1", "A-4-1"), http.StatusConflict, "seats_unavailable")
	// 6 × 4 GA units from a pool of 20: the sixth finds it sold out.
	for i := range 6 {
		want, code := http.StatusCreated, ""
		if i == 5 {
			want, code = http.StatusConflict, "sold_out"
		}
		add(fmt.Sprintf("floor %d", i), s.buyer(t), map[string]any{"tier_id": floor, "quantity": 4}, want, code)
	}
	// One request sent three times with one key: one hold, three answers;
	// the key then reused for another cart is refused.
	retryBuyer := s.buyer(t)
	first := add("retry 1", retryBuyer, seats("A-4-5"), http.StatusCreated, "")
	for _, name := range []string{"retry 2", "retry 3"} {
		add(name, retryBuyer, seats("A-4-5"), http.StatusCreated, "").key = first.key
	}
	add("key reused", retryBuyer, seats("A-4-6"), http.StatusUnprocessableEntity, "idempotency_key_reused").key = first.key
	// One buyer asks three times (three tabs): the first request makes
	// their cart, the other two join it: one hold of three seats.
	cartBuyer := s.buyer(t)
	add("cart 1", cartBuyer, seats("A-4-8"), http.StatusCreated, "")
	add("cart 2", cartBuyer, seats("A-4-9"), http.StatusCreated, "")
	add("cart 3", cartBuyer, seats("A-4-10"), http.StatusCreated, "")

	// Queue them one by one, so arrival order is the order above.
	var wg sync.WaitGroup
	for i, r := range reqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.res, r.err = s.hold(ev, r.buyer, r.body, "Idempotency-Key", r.key)
		}()
		if !apptest.Poll(10*time.Second, func() bool { return queued() >= i+1 }) {
			t.Fatalf("request %q never reached the hold queue (%d queued)", r.name, queued())
		}
	}
	resume()
	wg.Wait()

	held := map[string]uuid.UUID{}
	retryHold := uuid.Nil
	for _, r := range reqs {
		if r.err != nil {
			t.Fatalf("%s: %v", r.name, r.err)
		}
		if r.res.Status != r.want || (r.code != "" && r.res.Code() != r.code) {
			t.Errorf("%s: %d %s, want %d %s", r.name, r.res.Status, r.res.Body, r.want, r.code)
			continue
		}
		if r.res.Status != http.StatusCreated {
			continue
		}
		r.res.JSON(t, &r.hold)
		h := r.hold
		if r.buyer == retryBuyer {
			if retryHold != uuid.Nil && h.ID != retryHold {
				t.Errorf("%s: hold %s, the first answer was %s", r.name, h.ID, retryHold)
			}
			retryHold = h.ID
		}
		for _, seat := range h.Seats {
			if other, dup := held[seat]; dup && other != h.ID {
				t.Errorf("seat %s answered held by %s and %s", seat, other, h.ID)
			}
			held[seat] = h.ID
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// They were decided together: one batch of all of them.
	after := batchSizes(t, env)
	if n, sum := after.count-sizesBefore.count, after.sum-sizesBefore.sum; n != 1 || sum != float64(len(reqs)) {
		t.Fatalf("%d batches holding %.0f requests, want 1 batch of %d", n, sum, len(reqs))
	}
	// The database agrees with every answer.
	for seat, hold := range held {
		var got string
		s.sql(t, func(tx *gorm.DB) error {
			return tx.Raw(`SELECT coalesce(hold_id::text, '') FROM inv_seats WHERE event_id = ? AND id = ?`, ev, seat).Row().Scan(&got)
		})
		if got != hold.String() {
			t.Errorf("seat %s held by %q, answered %s", seat, got, hold)
		}
	}
	if n := s.count(t, `SELECT count(*) FROM inv_seats WHERE event_id = ? AND state <> 'available'`, ev); n != int64(len(held)) {
		t.Errorf("%d seats taken, %d answered", n, len(held))
	}
	if got := s.seatState(t, ev, "A-4-1"); got != "available" {
		t.Errorf("the refused overlapping cart left A-4-1 %s", got)
	}
	seatHolds := map[uuid.UUID]bool{}
	for _, h := range held {
		seatHolds[h] = true
	}
	wantHolds := int64(len(seatHolds) + 5) // seat holds (the cart is one), and 5 GA holds
	if n := s.count(t, `SELECT count(*) FROM inv_holds WHERE event_id = ?`, ev); n != wantHolds {
		t.Errorf("%d holds stored, want %d", n, wantHolds)
	}
	pool := s.count(t, `SELECT coalesce(sum(sh.held), 0) FROM inv_counter_shards sh JOIN inv_counters c ON c.id = sh.counter_id
		WHERE c.event_id = ? AND c.kind = 'pool'`, ev)
	quota := s.count(t, `SELECT coalesce(sum(sh.held), 0) FROM inv_counter_shards sh JOIN inv_counters c ON c.id = sh.counter_id
		WHERE c.event_id = ? AND c.kind = 'quota'`, ev)
	if pool != 20 || quota != int64(len(held))+20 {
		t.Errorf("pool holds %d (want 20), web quota %d (want %d)", pool, quota, len(held)+20)
	}
	cartHold := reqs[len(reqs)-3].hold.ID
	for _, r := range reqs[len(reqs)-3:] {
		if r.hold.ID != cartHold {
			t.Errorf("%s: hold %s, want the buyer's cart %s", r.name, r.hold.ID, cartHold)
		}
	}
	for _, seat := range []string{"A-4-8", "A-4-9", "A-4-10"} {
		if held[seat] != cartHold {
			t.Errorf("seat %s held by %s, want the cart %s", seat, held[seat], cartHold)
		}
	}
	if n := s.count(t, `SELECT c.holds * 100 + c.units FROM inv_buyer_counters c JOIN inv_holds h ON c.event_id = h.event_id AND c.subject = 'b:' || h.buyer_id
		WHERE h.id = ? AND h.quantity = 3`, cartHold); n != 103 {
		t.Errorf("cart buyer counted as %d (holds×100 + units), want one hold of 3 tickets (103)", n)
	}
	if n := s.count(t, `SELECT count(*) FROM inv_hold_allocs a JOIN inv_holds h ON h.id = a.hold_id WHERE h.event_id = ?`, ev); n < wantHolds {
		t.Errorf("%d allocations for %d holds: every hold takes from the web quota", n, wantHolds)
	}
	if held["A-4-5"] != retryHold {
		t.Errorf("seat A-4-5 held by %s, the retried request's hold is %s", held["A-4-5"], retryHold)
	}

	// Drained, the event's queue leaves memory; a later hold gets a new one.
	queueGone := func(when string) {
		if !apptest.Poll(5*time.Second, func() bool { return !inv.HasHoldQueue(s.t, evID) }) {
			t.Fatalf("%s: the event's hold queue is still in memory", when)
		}
	}
	queueGone("after the batch")
	res, err := s.hold(ev, s.buyer(t), seats("A-4-2"))
	if err != nil || res.Status != http.StatusCreated {
		t.Fatalf("hold after the queue retired: %v %d %s", err, res.Status, res.Body)
	}
	queueGone("after a later hold")
}

type histogram struct {
	count uint64
	sum   float64
}

// batchSizes reads the hold batch size histogram.
func batchSizes(t *testing.T, env *apptest.Env) histogram {
	t.Helper()
	families, err := env.App.Metrics.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == "marquee_inventory_hold_batch_size" {
			h := f.GetMetric()[0].GetHistogram()
			return histogram{count: h.GetSampleCount(), sum: h.GetSampleSum()}
		}
	}
	return histogram{}
}

// A batch that panics mid-transaction (a bug) answers its callers with a
// 500, rolls back, and leaves the worker and the pool able to serve the next
// hold for the same seat.
func TestPanickingBatchRollsBackAndServingGoesOn(t *testing.T) {
	// Serial: the batch fault hook is one for the process.
	s, ev, _ := onSale(t, "panic", "Fault Night", simpleSetup(2, 5, 0, nil))
	stop := inventory.PanicInHoldBatches(uuid.MustParse(ev))
	res, err := s.hold(ev, s.buyer(t), map[string]any{"seats": []string{"A-1-1"}})
	stop()
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != http.StatusInternalServerError || res.Header.Get("Content-Type") != app.ProblemContentType {
		t.Fatalf("hold in a panicking batch: %d %q %s", res.Status, res.Header.Get("Content-Type"), res.Body)
	}
	if got := s.seatState(t, ev, "A-1-1"); got != "available" {
		t.Fatalf("the failed batch left A-1-1 %s", got)
	}
	if n := s.count(t, `SELECT count(*) FROM inv_holds WHERE event_id = ?`, ev); n != 0 {
		t.Fatalf("the failed batch left %d holds", n)
	}
	// The same seat, asked again many times over, is served once.
	buyers := make([]string, 20)
	for i := range buyers {
		buyers[i] = s.buyer(t)
	}
	var wg sync.WaitGroup
	statuses := make([]int, len(buyers))
	for i, buyer := range buyers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := s.hold(ev, buyer, map[string]any{"seats": []string{"A-1-1"}})
			if err != nil {
				t.Error(err)
				return
			}
			statuses[i] = r.Status
		}()
	}
	wg.Wait()
	won := 0
	for _, st := range statuses {
		switch st {
		case http.StatusCreated:
			won++
		case http.StatusConflict:
		default:
			t.Errorf("hold after the panic: status %d", st)
		}
	}
	if won != 1 || s.seatState(t, ev, "A-1-1") != "held" {
		t.Fatalf("after the panic, %d of 20 holds of one seat won; seat %s", won, s.seatState(t, ev, "A-1-1"))
	}
}
