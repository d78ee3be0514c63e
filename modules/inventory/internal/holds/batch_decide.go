package holds

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"

	"marquee/app"
	"marquee/modules/inventory/internal/model"
	"marquee/modules/inventory/internal/stock"
)

// Deciding a batch: pure functions of plain values (the requests in arrival
// order, what the reading statement returned, the locked shards), with no
// database. A refused request changes nothing and does not affect the
// others; a granted one is taken out of the state before the next is
// decided, so no seat or unit is granted twice in a batch.

// batchState is the locked state a batch decides against, updated as each
// request is granted.
type batchState struct {
	freeSeats map[string]uuid.UUID // available seat → its zone
	shards    *stock.Locked        // locked counter shards and their free units
	subjects  map[string]*subjectCount
}

type subjectCount struct {
	holds, units       int // as read
	addHolds, addUnits int // granted by this batch
}

func newBatchState(cfg *batchConfig) *batchState {
	return &batchState{freeSeats: cfg.freeSeats, shards: stock.NewLocked(), subjects: map[string]*subjectCount{}}
}

// sameKeys finds requests of a batch that repeat an earlier one's
// Idempotency-Key: each follows its first request (follows[i], or -1), and
// one whose key names another request is refused (app.ErrKeyReused). keys
// are the keys to look up, one per first request.
func sameKeys(reqs []HoldRequest, outs []holdOutcome) (follows []int, keys []*app.IdempotencyKey) {
	keys = make([]*app.IdempotencyKey, len(reqs))
	firstWithKey := map[string]int{}
	follows = make([]int, len(reqs))
	for i, r := range reqs {
		follows[i] = -1
		k := r.Key
		if k == nil {
			continue
		}
		if f, ok := firstWithKey[k.Slot()]; ok {
			follows[i] = f
			if !k.SameRequest(reqs[f].Key) {
				outs[i].err = app.ErrKeyReused
			}
			continue
		}
		firstWithKey[k.Slot()] = i
		keys[i] = k
	}
	return follows, keys
}

// settleKeyed answers first requests from what their keys hold (a replay or
// a refusal) and reports which are left to decide.
func settleKeyed(outs []holdOutcome, follows []int, found []app.KeyLookup) (todo []bool) {
	todo = make([]bool, len(outs))
	for i, f := range found {
		if follows[i] < 0 && !outs[i].settle(f) {
			todo[i] = true // nothing stored under its key: to decide
		}
	}
	return todo
}

// batchDemand is what the requests to decide could take: units per counter
// (pools and quotas) and the buyer and address counters they touch.
func batchDemand(cfg *batchConfig, reqs []HoldRequest, todo []bool) (demand map[uuid.UUID]int, subjects []string) {
	demand = map[uuid.UUID]int{}
	subjectSet := map[string]bool{}
	for i, r := range reqs {
		if !todo[i] {
			continue
		}
		if r.TierID != nil {
			if tr, ok := model.FindTier(cfg.tiers, *r.TierID); ok && tr.PoolID != nil && len(r.Seats) == 0 {
				demand[*tr.PoolID] += r.Quantity
			}
		}
		if q, ok := cfg.quotas[r.Channel]; ok {
			demand[q] += max(len(r.Seats), r.Quantity)
		}
		subjectSet["b:"+r.BuyerID] = true
		if client := model.ClientSubject(r.DeviceID, r.ClientIP); cfg.settings.MaxIPHolds > 0 && client != "" {
			subjectSet[client] = true
		}
	}
	subjects = make([]string, 0, len(subjectSet))
	for s := range subjectSet {
		subjects = append(subjects, s)
	}
	slices.Sort(subjects)
	return demand, subjects
}

// decision is what deciding a batch granted.
type decision struct {
	w       *batchWrite
	created []uuid.UUID // the granted holds, in arrival order
	seats   []string    // the seats they hold
	keyed   []int       // granted requests with a key to store, in order
}

// cartOf names the cart a request joins rather than holding on its own: the
// buyer's cart read by the batch, or the one this batch made for an earlier
// request of theirs (newCarts).
func cartOf(cfg *batchConfig, newCarts map[string]uuid.UUID, r HoldRequest) (uuid.UUID, bool) {
	if !r.isCart() {
		return uuid.Nil, false
	}
	if id, ok := cfg.carts[r.BuyerID]; ok {
		return id, true
	}
	id, ok := newCarts[r.BuyerID]
	return id, ok
}

// decide decides the requests marked todo in arrival order against st,
// setting each one's outcome in outs; granted ones are taken out of st and
// written into the decision.
func decide(cfg *batchConfig, st *batchState, reqs []HoldRequest, todo []bool, outs []holdOutcome, eventID uuid.UUID, now, expiresAt time.Time) decision {
	d := decision{w: &batchWrite{eventID: eventID}}
	newCarts := map[string]uuid.UUID{}
	for i, r := range reqs {
		if !todo[i] {
			continue
		}
		if cart, ok := cartOf(cfg, newCarts, r); ok {
			outs[i].joinCart = cart
			continue
		}
		h, err := st.grant(cfg, r, eventID, now, expiresAt, d.w)
		if err != nil {
			outs[i].err = err
			continue
		}
		if r.isCart() {
			newCarts[r.BuyerID] = h.ID
		}
		outs[i].hold = h
		d.created = append(d.created, h.ID)
		d.seats = append(d.seats, h.Seats...)
		if r.Key != nil {
			d.keyed = append(d.keyed, i)
		}
	}
	return d
}

// refusedKeyed lists the decided requests that were refused but carry a key:
// a concurrent batch may have served them meanwhile (looked up again).
func refusedKeyed(reqs []HoldRequest, todo []bool, outs []holdOutcome) []int {
	var idx []int
	for i, r := range reqs {
		if todo[i] && outs[i].err != nil && r.Key != nil {
			idx = append(idx, i)
		}
	}
	return idx
}

// followOutcomes gives each request that repeated a key its first
// request's outcome, as a replay when that one succeeded.
func followOutcomes(outs []holdOutcome, follows []int) {
	for i, f := range follows {
		if f >= 0 && outs[i].err == nil {
			outs[i] = outs[f]
			outs[i].replayed = outs[f].err == nil
		}
	}
}

// keyResponses are the granted keyed requests' holds, as their keys store them.
func keyResponses(outs []holdOutcome, keyed []int) ([][]byte, error) {
	responses := make([][]byte, len(keyed))
	for n, i := range keyed {
		var err error
		if responses[n], err = json.Marshal(outs[i].hold); err != nil {
			return nil, err
		}
	}
	return responses, nil
}

// grant decides one request against the batch's state. Granted, it takes
// what it holds out of the state and adds its rows to w; refused, it leaves
// both as they were and says why.
func (st *batchState) grant(cfg *batchConfig, req HoldRequest, eventID uuid.UUID, now, expiresAt time.Time, w *batchWrite) (model.Hold, error) {
	h := model.Hold{ID: uuid.Must(uuid.NewV7()), EventID: eventID, Status: model.HoldActive, Channel: req.Channel, BuyerID: req.BuyerID,
		Seats: []string{}, ExpiresAt: expiresAt}
	var lines []model.HoldLine
	var take []stock.Take
	if len(req.Seats) > 0 {
		ids := slices.Clone(req.Seats)
		slices.Sort(ids)
		var missing []string
		for _, id := range ids {
			if _, ok := st.freeSeats[id]; !ok {
				missing = append(missing, id)
			}
		}
		if len(missing) > 0 {
			return model.Hold{}, model.ErrSeatsUnavailable(missing)
		}
		perTier := map[uuid.UUID]int{}
		for i, id := range ids {
			tr, err := model.SeatTier(cfg.tiers, st.freeSeats[id], req.TierID, now)
			if err != nil {
				return model.Hold{}, err
			}
			perTier[tr.ID]++
			if perTier[tr.ID] > tr.MaxPerOrder {
				return model.Hold{}, model.Invalid("seats", "at most %d %s tickets in one order", tr.MaxPerOrder, tr.Name)
			}
			seat := id
			lines = append(lines, model.HoldLine{TierID: tr.ID, ZoneID: tr.ZoneID, SeatID: &seat, Quantity: 1, UnitPrice: tr.PriceMinor,
				TierName: tr.Name, ZoneName: tr.ZoneName, Line: i + 1})
			h.Seats = append(h.Seats, seat)
		}
	} else {
		tr, ok := model.FindTier(cfg.tiers, *req.TierID)
		switch {
		case !ok:
			return model.Hold{}, app.NotFound("tier")
		case tr.ZoneKind != model.KindGA || tr.PoolID == nil:
			return model.Hold{}, model.Invalid("tier_id", "tier %s sells reserved seats: hold seats by id", tr.Name)
		case !tr.OnSale(now):
			return model.Hold{}, model.ErrNotOnSale("tier " + tr.Name + " is not on sale now")
		case req.Quantity > tr.MaxPerOrder:
			return model.Hold{}, model.Invalid("quantity", "at most %d %s tickets in one order", tr.MaxPerOrder, tr.Name)
		}
		got, left := st.shards.Plan(*tr.PoolID, req.Quantity)
		if got == nil {
			return model.Hold{}, model.ErrSoldOut(tr.ZoneName+" tickets", left)
		}
		take = got
		lines = append(lines, model.HoldLine{TierID: tr.ID, ZoneID: tr.ZoneID, Quantity: req.Quantity, UnitPrice: tr.PriceMinor,
			TierName: tr.Name, ZoneName: tr.ZoneName, Line: 1})
	}
	for _, l := range lines {
		h.Quantity += l.Quantity
		h.AmountMinor += l.UnitPrice * int64(l.Quantity)
		if h.Currency == "" {
			h.Currency = model.TierCurrency(cfg.tiers, l.TierID)
		} else if h.Currency != model.TierCurrency(cfg.tiers, l.TierID) {
			return model.Hold{}, model.Invalid("seats", "one hold cannot mix currencies")
		}
	}
	if q, ok := cfg.quotas[req.Channel]; ok {
		got, _ := st.shards.Plan(q, h.Quantity)
		if got == nil {
			return model.Hold{}, model.ErrQuota(req.Channel)
		}
		take = append(take, got...)
	}
	set := cfg.settings
	if h.Quantity > set.MaxBuyerTickets {
		return model.Hold{}, model.ErrHoldLimit(fmt.Sprintf("at most %d tickets per buyer for this event", set.MaxBuyerTickets))
	}
	buyer := st.subjects["b:"+req.BuyerID]
	if buyer.holds+buyer.addHolds+1 > set.MaxBuyerHolds || buyer.units+buyer.addUnits+h.Quantity > set.MaxBuyerTickets {
		return model.Hold{}, model.ErrHoldLimit(fmt.Sprintf("a buyer may keep %d holds and %d tickets for this event", set.MaxBuyerHolds, set.MaxBuyerTickets))
	}
	client := model.ClientSubject(req.DeviceID, req.ClientIP)
	ipCounted := set.MaxIPHolds > 0 && client != ""
	var ip *subjectCount
	if ipCounted {
		ip = st.subjects[client]
		if ip.holds+ip.addHolds+1 > set.MaxIPHolds {
			from := "your network"
			if req.DeviceID != "" {
				from = "this device"
			}
			return model.Hold{}, model.ErrHoldLimit(fmt.Sprintf("too many active holds from %s for this event (%d)", from, set.MaxIPHolds))
		}
	}

	// Granted: take it out of the state and write it.
	buyer.addHolds++
	buyer.addUnits += h.Quantity
	if ip != nil {
		ip.addHolds++
	}
	for _, id := range h.Seats {
		delete(st.freeSeats, id)
		w.seats = append(w.seats, seatWrite{ID: id, HoldID: h.ID})
	}
	st.shards.Apply(take)
	for _, t := range take {
		w.shardAdd(t)
		w.allocs = append(w.allocs, allocWrite{HoldID: h.ID, CounterID: t.Counter, Shard: t.Shard, Quantity: t.Quantity})
	}
	w.holds = append(w.holds, holdWrite{ID: h.ID, BuyerID: req.BuyerID, ClientIP: req.ClientIP, DeviceID: req.DeviceID, IPCounted: ipCounted, Cart: req.isCart(), Channel: req.Channel,
		Quantity: h.Quantity, AmountMinor: h.AmountMinor, Currency: h.Currency, ExpiresAt: expiresAt})
	for _, l := range lines {
		w.lines = append(w.lines, lineWrite{HoldID: h.ID, Line: l.Line, TierID: l.TierID, ZoneID: l.ZoneID, SeatID: l.SeatID,
			Quantity: l.Quantity, UnitPrice: l.UnitPrice})
	}
	h.Lines = lines
	return h, nil
}
