package holds

import (
	"encoding/json"
	"errors"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"marquee/app"
	"marquee/modules/inventory/internal/model"
	"marquee/modules/inventory/internal/stock"
)

// These tests decide batches against plain values: no database, no Redis.

var (
	t0       = time.Date(2030, 5, 1, 20, 0, 0, 0, time.UTC)
	eventID  = uuid.MustParse("01900000-0000-7000-8000-000000000001")
	stalls   = uuid.MustParse("01900000-0000-7000-8000-0000000000a1")
	floor    = uuid.MustParse("01900000-0000-7000-8000-0000000000a2")
	seatTier = uuid.MustParse("01900000-0000-7000-8000-0000000000b1")
	gaTier   = uuid.MustParse("01900000-0000-7000-8000-0000000000b2")
	lateTier = uuid.MustParse("01900000-0000-7000-8000-0000000000b3")
	pool     = uuid.MustParse("01900000-0000-7000-8000-0000000000c1")
	quota    = uuid.MustParse("01900000-0000-7000-8000-0000000000c2")
	// existingCart is buyer 1's cart when a fixture gives them one.
	existingCart = uuid.MustParse("01900000-0000-7000-8000-0000000000d1")
)

// fixture is an event with three free seats in Stalls (max 4 per order), a
// floor pool of 5 units in two shards (3 and 2; max 6 per order), and a web
// quota of quotaFree units; buyers may keep 2 holds and 6 tickets, an
// address 2 holds.
type fixture struct {
	quotaFree int
	buyers    map[string][2]int    // subject → holds, units already counted
	carts     map[string]uuid.UUID // buyer → their active cart
	settings  func(*model.Settings)
}

func (f fixture) build() (*batchConfig, *batchState) {
	later := t0.Add(time.Hour)
	cfg := &batchConfig{
		settings: model.Settings{EventID: eventID, Capacity: 100, HoldMinutes: 10, MaxBuyerHolds: 2, MaxBuyerTickets: 6, MaxIPHolds: 2},
		quotas:   map[string]uuid.UUID{model.ChannelWeb: quota},
		tiers: []model.TierRow{
			{Tier: model.Tier{ID: seatTier, ZoneID: stalls, Name: "Stalls", PriceMinor: 5000, Currency: "EUR", MaxPerOrder: 4}, ZoneKind: model.KindReserved, ZoneName: "Stalls"},
			{Tier: model.Tier{ID: gaTier, ZoneID: floor, Name: "Floor", PriceMinor: 2000, Currency: "EUR", MaxPerOrder: 6}, ZoneKind: model.KindGA, ZoneName: "Floor", PoolID: &pool},
			{Tier: model.Tier{ID: lateTier, ZoneID: floor, Name: "Late", PriceMinor: 1500, Currency: "EUR", MaxPerOrder: 6, SaleStarts: &later}, ZoneKind: model.KindGA, ZoneName: "Floor", PoolID: &pool},
		},
		dbNow:     t0,
		buyers:    f.buyers,
		carts:     f.carts,
		freeSeats: map[string]uuid.UUID{"A-1-1": stalls, "A-1-2": stalls, "A-1-3": stalls},
	}
	if f.settings != nil {
		f.settings(&cfg.settings)
	}
	st := newBatchState(cfg)
	st.shards.Add(pool, 0, 3)
	st.shards.Add(pool, 1, 2)
	st.shards.Add(quota, 0, f.quotaFree)
	return cfg, st
}

func seats(buyer string, ids ...string) HoldRequest {
	return HoldRequest{Seats: ids, Channel: model.ChannelWeb, BuyerID: buyer, ClientIP: "10.0.0." + buyer}
}

func ga(buyer string, tier uuid.UUID, n int) HoldRequest {
	return HoldRequest{TierID: &tier, Quantity: n, Channel: model.ChannelWeb, BuyerID: buyer, ClientIP: "10.0.0." + buyer}
}

// decideAll decides every request of reqs (none settled by a key).
func decideAll(cfg *batchConfig, st *batchState, reqs []HoldRequest) ([]holdOutcome, decision) {
	outs := make([]holdOutcome, len(reqs))
	todo := make([]bool, len(reqs))
	for i := range todo {
		todo[i] = true
	}
	d := decide(cfg, st, reqs, todo, outs, eventID, t0, t0.Add(10*time.Minute))
	return outs, d
}

func code(err error) string {
	var e *app.Error
	if errors.As(err, &e) {
		return e.Code
	}
	if err != nil {
		return err.Error()
	}
	return ""
}

func TestDecideBatch(t *testing.T) {
	type want struct {
		code  string // "" granted
		seats []string
		qty   int
		// join: 0 a hold of its own; n > 0 joins the hold granted to
		// request n-1 of the batch; -1 joins the buyer's existing cart.
		join int
	}
	tests := []struct {
		name  string
		fx    fixture
		reqs  []HoldRequest
		want  []want
		check func(t *testing.T, st *batchState, d decision)
	}{
		{
			name: "a seat is granted once per batch, to the first to ask",
			fx:   fixture{quotaFree: 10},
			reqs: []HoldRequest{seats("1", "A-1-1"), seats("2", "A-1-1"), seats("3", "A-1-2")},
			want: []want{{seats: []string{"A-1-1"}, qty: 1}, {code: "seats_unavailable"}, {seats: []string{"A-1-2"}, qty: 1}},
			check: func(t *testing.T, st *batchState, d decision) {
				if len(d.w.seats) != 2 || d.w.seats[0].ID != "A-1-1" || d.w.seats[1].ID != "A-1-2" {
					t.Errorf("seats written %+v, want A-1-1 and A-1-2 once each", d.w.seats)
				}
				if _, free := st.freeSeats["A-1-3"]; !free || len(st.freeSeats) != 1 {
					t.Errorf("free seats left %v, want only A-1-3", st.freeSeats)
				}
			},
		},
		{
			name: "a refused request changes nothing: its free seats stay free for the next",
			fx:   fixture{quotaFree: 10},
			reqs: []HoldRequest{seats("1", "A-1-1", "A-9-9"), seats("2", "A-1-1")},
			want: []want{{code: "seats_unavailable"}, {seats: []string{"A-1-1"}, qty: 1}},
			check: func(t *testing.T, st *batchState, d decision) {
				if len(d.w.holds) != 1 || d.w.holds[0].BuyerID != "2" {
					t.Errorf("holds written %+v, want buyer 2's alone", d.w.holds)
				}
				if b := st.subjects["b:1"]; b.addHolds != 0 || b.addUnits != 0 {
					t.Errorf("refused buyer counted %+v", *b)
				}
				if got := st.shards.Free(stock.ShardKey{Counter: quota, Shard: 0}); got != 9 {
					t.Errorf("quota left %d, want 9 (one seat granted)", got)
				}
			},
		},
		{
			name: "GA units come from one shard when it has room, else spread; then sold out with what is left",
			fx:   fixture{quotaFree: 10},
			reqs: []HoldRequest{ga("1", gaTier, 2), ga("2", gaTier, 2), ga("3", gaTier, 2)},
			want: []want{{qty: 2}, {qty: 2}, {code: "sold_out"}},
			check: func(t *testing.T, st *batchState, d decision) {
				sum := 0
				for _, sh := range d.w.shardsW {
					if sh.CounterID == pool {
						sum += sh.Quantity
					}
				}
				if sum != 4 {
					t.Errorf("pool units written %d, want 4", sum)
				}
				if l, r := st.shards.Free(stock.ShardKey{Counter: pool, Shard: 0}), st.shards.Free(stock.ShardKey{Counter: pool, Shard: 1}); l+r != 1 || l < 0 || r < 0 {
					t.Errorf("pool shards left %d and %d, want 1 in all", l, r)
				}
				if len(d.w.shardsW) != 3 { // two pool shards and the quota's, each written once
					t.Errorf("shard rows written %+v, want 3 (one per shard)", d.w.shardsW)
				}
			},
		},
		{
			name: "sold out says how many are left",
			fx:   fixture{quotaFree: 10},
			reqs: []HoldRequest{ga("1", gaTier, 6)},
			want: []want{{code: "sold_out"}},
			check: func(t *testing.T, st *batchState, d decision) {
				if len(d.w.holds) != 0 || len(d.w.shardsW) != 0 {
					t.Errorf("a refusal wrote %+v", d.w)
				}
			},
		},
		{
			name: "the channel quota bounds seats and units together",
			fx:   fixture{quotaFree: 2},
			reqs: []HoldRequest{seats("1", "A-1-1"), ga("2", gaTier, 2), ga("3", gaTier, 1)},
			want: []want{{seats: []string{"A-1-1"}, qty: 1}, {code: "quota_exceeded"}, {qty: 1}},
		},
		{
			// Staff hold for one customer after another (not carts).
			name: "a buyer keeps at most MaxBuyerHolds holds, counting this batch's",
			fx:   fixture{quotaFree: 10},
			reqs: []HoldRequest{seats("staff:1", "A-1-1"), seats("staff:1", "A-1-2"), seats("staff:1", "A-1-3")},
			want: []want{{qty: 1}, {qty: 1}, {code: "hold_limit"}},
			check: func(t *testing.T, st *batchState, d decision) {
				if b := st.subjects["b:staff:1"]; b.addHolds != 2 || b.addUnits != 2 {
					t.Errorf("buyer counted %+v, want 2 holds of 1", *b)
				}
			},
		},
		{
			name: "one cart: a buyer's later requests in the batch join the cart their first made",
			fx:   fixture{quotaFree: 10},
			reqs: []HoldRequest{seats("1", "A-1-1"), ga("1", gaTier, 2), seats("2", "A-1-2"), seats("1", "A-1-3")},
			want: []want{{qty: 1}, {join: 1}, {qty: 1}, {join: 1}},
			check: func(t *testing.T, st *batchState, d decision) {
				if b := st.subjects["b:1"]; b.addHolds != 1 || b.addUnits != 1 {
					t.Errorf("buyer counted %+v, want 1 hold of 1 (the joins are added by the cart)", *b)
				}
				if _, free := st.freeSeats["A-1-3"]; !free {
					t.Error("a joining request took its seat in the batch")
				}
				if !d.w.holds[0].Cart || !d.w.holds[1].Cart {
					t.Error("buyers' holds not written as carts")
				}
			},
		},
		{
			name: "one cart: a buyer with a cart joins it; a refused first request leaves the next to make the cart",
			fx:   fixture{quotaFree: 10, carts: map[string]uuid.UUID{"1": existingCart}},
			reqs: []HoldRequest{seats("1", "A-1-1"), seats("2", "A-1-1", "A-9-9"), seats("2", "A-1-2"), ga("1", gaTier, 1)},
			want: []want{{join: -1}, {code: "seats_unavailable"}, {qty: 1}, {join: -1}},
		},
		{
			name: "staff and other channels keep a hold per sale",
			fx:   fixture{quotaFree: 10},
			reqs: func() []HoldRequest {
				a, b := seats("1", "A-1-1"), seats("1", "A-1-2")
				a.Channel, b.Channel = model.ChannelBoxOffice, model.ChannelBoxOffice
				return []HoldRequest{a, b}
			}(),
			want: []want{{qty: 1}, {qty: 1}},
			check: func(t *testing.T, st *batchState, d decision) {
				if d.w.holds[0].Cart || d.w.holds[1].Cart {
					t.Error("box office holds written as carts")
				}
			},
		},
		{
			name: "the ticket limit counts what the buyer held before the batch",
			fx:   fixture{quotaFree: 10, buyers: map[string][2]int{"b:1": {1, 5}}},
			reqs: []HoldRequest{ga("1", gaTier, 2), ga("2", gaTier, 2)},
			want: []want{{code: "hold_limit"}, {qty: 2}},
		},
		{
			name: "an address keeps at most MaxIPHolds holds; without the limit it is not counted",
			fx:   fixture{quotaFree: 10, settings: func(s *model.Settings) { s.MaxIPHolds = 1 }},
			reqs: []HoldRequest{
				{Seats: []string{"A-1-1"}, Channel: model.ChannelWeb, BuyerID: "1", ClientIP: "192.0.2.1"},
				{Seats: []string{"A-1-2"}, Channel: model.ChannelWeb, BuyerID: "2", ClientIP: "192.0.2.1"},
				{Seats: []string{"A-1-3"}, Channel: model.ChannelWeb, BuyerID: "3"},
			},
			want: []want{{qty: 1}, {code: "hold_limit"}, {qty: 1}},
			check: func(t *testing.T, st *batchState, d decision) {
				if !d.w.holds[0].IPCounted || d.w.holds[1].IPCounted {
					t.Errorf("ip counted %v, %v; want the first only", d.w.holds[0].IPCounted, d.w.holds[1].IPCounted)
				}
			},
		},
		{
			name: "a tier's max per order, and a tier not on sale yet",
			fx:   fixture{quotaFree: 10},
			reqs: []HoldRequest{ga("1", gaTier, 7), ga("2", lateTier, 1)},
			want: []want{{code: "invalid_quantity"}, {code: "not_on_sale"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, st := tc.fx.build()
			for _, r := range tc.reqs {
				st.subjects["b:"+r.BuyerID] = &subjectCount{holds: cfg.buyers["b:"+r.BuyerID][0], units: cfg.buyers["b:"+r.BuyerID][1]}
				if r.ClientIP != "" {
					st.subjects["ip:"+r.ClientIP] = &subjectCount{}
				}
			}
			outs, d := decideAll(cfg, st, tc.reqs)
			granted := 0
			for i, w := range tc.want {
				o := outs[i]
				if code(o.err) != w.code {
					t.Fatalf("request %d: outcome %q, want %q", i, code(o.err), w.code)
				}
				if w.code != "" {
					continue
				}
				switch {
				case w.join == -1 && o.joinCart != existingCart:
					t.Fatalf("request %d: joins %v, want the buyer's cart", i, o.joinCart)
				case w.join > 0 && (o.joinCart == uuid.Nil || o.joinCart != outs[w.join-1].hold.ID):
					t.Fatalf("request %d: joins %v, want request %d's hold", i, o.joinCart, w.join-1)
				case w.join == 0 && o.joinCart != uuid.Nil:
					t.Fatalf("request %d: joins %v, want a hold of its own", i, o.joinCart)
				case w.join != 0:
					continue
				}
				granted++
				if o.hold.Quantity != w.qty || (w.seats != nil && !slices.Equal(o.hold.Seats, w.seats)) {
					t.Errorf("request %d: hold of %d %v, want %d %v", i, o.hold.Quantity, o.hold.Seats, w.qty, w.seats)
				}
				if o.hold.Status != model.HoldActive || !o.hold.ExpiresAt.Equal(t0.Add(10*time.Minute)) {
					t.Errorf("request %d: hold %s until %v", i, o.hold.Status, o.hold.ExpiresAt)
				}
			}
			if len(d.created) != granted || len(d.w.holds) != granted {
				t.Errorf("%d holds created, %d written; want %d", len(d.created), len(d.w.holds), granted)
			}
			if tc.check != nil {
				tc.check(t, st, d)
			}
		})
	}
}

// key is an Idempotency-Key as a request with body would carry it.
func key(t *testing.T, k string, body any) *app.IdempotencyKey {
	t.Helper()
	c, _ := gin.CreateTestContext(httptest.NewRecorder())
	c.Request = httptest.NewRequest("POST", "/api/v1/events/e/holds", nil)
	c.Request.Header.Set(app.IdempotencyHeader, k)
	ik, err := app.KeyFrom(c, body, "buyer", true)
	if err != nil {
		t.Fatal(err)
	}
	return ik
}

func TestBatchIdempotencyKeys(t *testing.T) {
	stored, _ := json.Marshal(model.Hold{ID: uuid.MustParse("01900000-0000-7000-8000-0000000000ff"), Quantity: 1, Seats: []string{"A-1-3"}})
	tests := []struct {
		name     string
		reqs     func(t *testing.T) []HoldRequest
		found    func(keys []*app.IdempotencyKey) []app.KeyLookup // per request, as the reading statement returns it
		replayed []bool
		codes    []string
		granted  int
	}{
		{
			name: "the same key twice in a batch: the second replays the first's hold",
			reqs: func(t *testing.T) []HoldRequest {
				a, b := seats("1", "A-1-1"), seats("1", "A-1-1")
				a.Key, b.Key = key(t, "k1", "A-1-1"), key(t, "k1", "A-1-1")
				return []HoldRequest{a, b}
			},
			replayed: []bool{false, true},
			codes:    []string{"", ""},
			granted:  1,
		},
		{
			name: "the same key for another request is refused; the first is served",
			reqs: func(t *testing.T) []HoldRequest {
				a, b := seats("1", "A-1-1"), seats("1", "A-1-2")
				a.Key, b.Key = key(t, "k1", "A-1-1"), key(t, "k1", "A-1-2")
				return []HoldRequest{a, b}
			},
			replayed: []bool{false, false},
			codes:    []string{"", "idempotency_key_reused"},
			granted:  1,
		},
		{
			name: "a key that holds a response is replayed, not decided again",
			reqs: func(t *testing.T) []HoldRequest {
				a, b := seats("1", "A-1-3"), seats("2", "A-1-1")
				a.Key = key(t, "done", "A-1-3")
				return []HoldRequest{a, b}
			},
			found: func(keys []*app.IdempotencyKey) []app.KeyLookup {
				return []app.KeyLookup{{Replay: stored}, {}}
			},
			replayed: []bool{true, false},
			codes:    []string{"", ""},
			granted:  1,
		},
		{
			name: "a key whose request is still running elsewhere answers with its refusal",
			reqs: func(t *testing.T) []HoldRequest {
				a := seats("1", "A-1-1")
				a.Key = key(t, "busy", "A-1-1")
				return []HoldRequest{a}
			},
			found: func(keys []*app.IdempotencyKey) []app.KeyLookup {
				return []app.KeyLookup{{Err: app.Conflict("idempotency_key_in_use", "busy")}}
			},
			replayed: []bool{false},
			codes:    []string{"idempotency_key_in_use"},
			granted:  0,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, st := fixture{quotaFree: 10}.build()
			reqs := tc.reqs(t)
			for _, r := range reqs {
				st.subjects["b:"+r.BuyerID] = &subjectCount{}
				st.subjects["ip:"+r.ClientIP] = &subjectCount{}
			}
			outs := make([]holdOutcome, len(reqs))
			follows, keys := sameKeys(reqs, outs)
			found := make([]app.KeyLookup, len(reqs))
			if tc.found != nil {
				found = tc.found(keys)
			}
			todo := settleKeyed(outs, follows, found)
			d := decide(cfg, st, reqs, todo, outs, eventID, t0, t0.Add(10*time.Minute))
			followOutcomes(outs, follows)
			for i := range reqs {
				if code(outs[i].err) != tc.codes[i] || outs[i].replayed != tc.replayed[i] {
					t.Errorf("request %d: %q replayed=%v, want %q replayed=%v", i, code(outs[i].err), outs[i].replayed, tc.codes[i], tc.replayed[i])
				}
			}
			if len(d.created) != tc.granted {
				t.Errorf("%d holds created, want %d", len(d.created), tc.granted)
			}
			if tc.granted == 1 && tc.replayed[len(reqs)-1] && len(reqs) == 2 && follows[1] == 0 && outs[1].hold.ID != outs[0].hold.ID {
				t.Errorf("replay got hold %s, first %s", outs[1].hold.ID, outs[0].hold.ID)
			}
			if len(d.keyed) > tc.granted {
				t.Errorf("%d keys to store for %d grants", len(d.keyed), tc.granted)
			}
		})
	}
}

func TestBatchDemand(t *testing.T) {
	cfg, _ := fixture{quotaFree: 10}.build()
	reqs := []HoldRequest{seats("1", "A-1-1", "A-1-2"), ga("2", gaTier, 3), ga("3", gaTier, 1)}
	demand, subjects := batchDemand(cfg, reqs, []bool{true, true, false})
	if demand[pool] != 3 || demand[quota] != 5 {
		t.Errorf("demand %v, want pool 3 and quota 5 (the third request is settled)", demand)
	}
	if want := []string{"b:1", "b:2", "ip:10.0.0.1", "ip:10.0.0.2"}; !slices.Equal(subjects, want) {
		t.Errorf("subjects %v, want %v", subjects, want)
	}
}
