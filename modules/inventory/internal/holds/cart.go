package holds

import (
	"context"
	"fmt"
	"slices"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/modules/inventory/internal/catalogue"
	"marquee/modules/inventory/internal/model"
	"marquee/modules/inventory/internal/stock"
	"marquee/tenants"
)

// One buyer, one cart: a buyer who holds something of an event adds to that
// hold instead of opening a second one. Adding is all or nothing in one
// transaction that takes its locks in the global order (hold row → seats by
// id → pool shards → quota shards → buyer counters), with the same
// conditional statements a hold batch writes with. The hold keeps its
// expiry: extending it on every addition would let a buyer keep seats
// forever.

// TierQuantity asks for a quantity of a GA tier.
type TierQuantity struct {
	TierID   uuid.UUID `json:"tier_id"`
	Quantity int       `json:"quantity"`
}

// AddItemsRequest asks for more seats and/or GA units in an existing hold.
type AddItemsRequest struct {
	Key      *app.IdempotencyKey // a retry with the same key gets the same answer
	Seats    []string
	Tiers    []TierQuantity
	BuyerID  string
	ClientIP string
	// PresaleCode admits the buyer during the event's presale window.
	PresaleCode string
}

// Validate checks an addition before its transaction.
func (r *AddItemsRequest) Validate() error {
	if r.BuyerID == "" {
		return app.Invalid("buyer_required", "send X-Buyer-Token (POST /api/v1/buyer-sessions mints one)")
	}
	if len(r.Seats) == 0 && len(r.Tiers) == 0 {
		return model.Invalid("request", "give seats, or tiers with a tier_id and quantity each")
	}
	if len(r.Seats) > model.MaxSeatsPerHold {
		return model.Invalid("seats", "at most %d seats in one hold", model.MaxSeatsPerHold)
	}
	seen := map[string]bool{}
	for _, id := range r.Seats {
		if !model.SeatIDPattern.MatchString(id) {
			return model.Invalid("seats", "%q is not a seat id (section-row-number, e.g. A-12-7)", model.Truncate(id, 40))
		}
		if seen[id] {
			return model.Invalid("seats", "seat %s is listed twice", id)
		}
		seen[id] = true
	}
	tiers := map[uuid.UUID]bool{}
	for _, tq := range r.Tiers {
		if tq.TierID == uuid.Nil {
			return model.Invalid("tier_id", "each tier needs a tier_id")
		}
		if tiers[tq.TierID] {
			return model.Invalid("tiers", "tier %s is listed twice", tq.TierID)
		}
		tiers[tq.TierID] = true
		if tq.Quantity < 1 || tq.Quantity > 100 {
			return model.Invalid("quantity", "quantity must be from 1 to 100")
		}
	}
	return nil
}

// errHoldClosed refuses to change a hold that is no longer active.
var errHoldClosed = app.Gone("hold_expired", "this hold has expired or was released; hold the tickets again")

// errHoldHasOrder refuses to change a hold once an order was made for it:
// the order (and any PaymentIntent) carries the hold's amount, which must
// not change under it.
var errHoldHasOrder = app.Conflict("hold_has_order", "an order was already made for this hold; pay it, or release the hold and hold again")

// AddToHold adds seats and GA units to a buyer's active hold, all or none.
// Only the hold's buyer may, while the hold is active, not lapsed, and has no
// order; per-order and per-buyer limits apply to the whole cart. The hold
// keeps its expiry.
func (s *Service) AddToHold(ctx context.Context, t tenants.Tenant, holdID uuid.UUID, req AddItemsRequest) (model.Hold, error) {
	if err := req.Validate(); err != nil {
		return model.Hold{}, err
	}
	// The event's status comes from the calendar (not our tables): read it
	// before the transaction, as a new hold does.
	cur, err := s.Hold(ctx, t, holdID)
	if err != nil {
		return model.Hold{}, err
	}
	if cur.BuyerID != req.BuyerID {
		return model.Hold{}, app.NotFound("hold")
	}
	ev, err := s.catalogue.Event(ctx, t, cur.EventID)
	if err != nil {
		return model.Hold{}, err
	}
	var out model.Hold
	var added []string
	fresh := false
	err = s.d.Tx(ctx, t, func(tx *gorm.DB) error {
		out, added = model.Hold{}, nil
		replayed, err := app.Once(tx, req.Key, &out, func() error {
			if ev.Status != "on_sale" {
				return model.ErrNotOnSale("this event is not on sale")
			}
			if err := ev.SaleGate(s.d.Now(), req.PresaleCode); err != nil {
				return err
			}
			// The calendar's status may be cached for a moment; the
			// cancellation's own record is read here, in the transaction.
			if cancelled, err := catalogue.EventCancelled(tx, cur.EventID); err != nil || cancelled {
				if err == nil {
					err = model.ErrNotOnSale("this event is cancelled")
				}
				return err
			}
			var err error
			out, added, err = s.addToHoldTx(tx, holdID, req)
			return err
		})
		fresh = !replayed // a replay's first request told the world already
		return err
	})
	if err != nil {
		return model.Hold{}, err
	}
	if fresh {
		// GA units change the tier counts even when no seat changes state.
		s.stock.Changed(ctx, t, out.EventID, model.SeatStates(added, model.SeatHeld))
	}
	return out, nil
}

// addToHoldTx is AddToHold inside its transaction.
func (s *Service) addToHoldTx(tx *gorm.DB, holdID uuid.UUID, req AddItemsRequest) (model.Hold, []string, error) {
	// The hold row first (the lock order): a racing release, expiry, order
	// or other addition waits for this one, or this one for it.
	h, err := lockCartHold(tx, holdID, req.BuyerID)
	if err != nil {
		return model.Hold{}, nil, err
	}
	set, err := catalogue.LoadSettings(tx, h.EventID)
	if err != nil {
		return model.Hold{}, nil, err
	}
	tiers, err := catalogue.LoadTierRows(tx, h.EventID)
	if err != nil {
		return model.Hold{}, nil, err
	}
	cart, err := ReadHold(tx, holdID)
	if err != nil {
		return model.Hold{}, nil, err
	}
	if len(cart.Seats)+len(req.Seats) > model.MaxSeatsPerHold {
		return model.Hold{}, nil, model.Invalid("seats", "at most %d seats in one hold", model.MaxSeatsPerHold)
	}
	perTier := map[uuid.UUID]int{} // the whole cart's tickets per tier
	for _, l := range cart.Lines {
		perTier[l.TierID] += l.Quantity
	}
	var lastLine int
	if err := tx.Raw(`SELECT coalesce(max(line), 0) FROM inv_hold_lines WHERE hold_id = ?`, holdID).Row().Scan(&lastLine); err != nil {
		return model.Hold{}, nil, err
	}
	nextLine := lastLine + 1
	now := s.d.Now()
	var lines []model.HoldLine
	overOrder := func(tr model.TierRow) error {
		if perTier[tr.ID] > tr.MaxPerOrder {
			return model.Invalid("quantity", "at most %d %s tickets in one order", tr.MaxPerOrder, tr.Name)
		}
		return nil
	}

	// Seats, locked in id order; the UPDATE repeats the condition.
	seats := slices.Clone(req.Seats)
	slices.Sort(seats)
	if len(seats) > 0 {
		var free []struct {
			ID     string    `gorm:"column:id"`
			ZoneID uuid.UUID `gorm:"column:zone_id"`
		}
		if err := tx.Raw(`SELECT id, zone_id FROM inv_seats WHERE event_id = ? AND id IN ? AND state = 'available' ORDER BY id FOR UPDATE`,
			h.EventID, seats).Scan(&free).Error; err != nil {
			return model.Hold{}, nil, err
		}
		zone := map[string]uuid.UUID{}
		for _, f := range free {
			zone[f.ID] = f.ZoneID
		}
		var missing []string
		for _, id := range seats {
			if _, ok := zone[id]; !ok {
				missing = append(missing, id)
			}
		}
		if len(missing) > 0 {
			return model.Hold{}, nil, model.ErrSeatsUnavailable(missing)
		}
		for _, id := range seats {
			tr, err := model.SeatTier(tiers, zone[id], nil, now)
			if err != nil {
				return model.Hold{}, nil, err
			}
			perTier[tr.ID]++
			if err := overOrder(tr); err != nil {
				return model.Hold{}, nil, err
			}
			seat := id
			lines = append(lines, model.HoldLine{TierID: tr.ID, ZoneID: tr.ZoneID, SeatID: &seat, Quantity: 1, UnitPrice: tr.PriceMinor})
		}
		// Every seat was locked available just above: all must change.
		res := tx.Exec(`UPDATE inv_seats SET state = 'held', hold_id = ? WHERE event_id = ? AND id IN ? AND state = 'available'`,
			holdID, h.EventID, seats)
		if res.Error != nil {
			return model.Hold{}, nil, res.Error
		}
		if res.RowsAffected != int64(len(seats)) {
			return model.Hold{}, nil, model.ErrSeatsUnavailable(seats)
		}
	}

	// GA pools, in counter id order (pools before quotas: the lock order).
	type gaAsk struct {
		tr model.TierRow
		n  int
	}
	var asks []gaAsk
	for _, tq := range req.Tiers {
		tr, ok := model.FindTier(tiers, tq.TierID)
		switch {
		case !ok:
			return model.Hold{}, nil, app.NotFound("tier")
		case tr.ZoneKind != model.KindGA || tr.PoolID == nil:
			return model.Hold{}, nil, model.Invalid("tier_id", "tier %s sells reserved seats: hold seats by id", tr.Name)
		case !tr.OnSale(now):
			return model.Hold{}, nil, model.ErrNotOnSale("tier " + tr.Name + " is not on sale now")
		}
		perTier[tr.ID] += tq.Quantity
		if err := overOrder(tr); err != nil {
			return model.Hold{}, nil, err
		}
		asks = append(asks, gaAsk{tr, tq.Quantity})
	}
	slices.SortFunc(asks, func(a, b gaAsk) int { return slices.Compare(a.tr.PoolID[:], b.tr.PoolID[:]) })
	var allocs []stock.Alloc
	for _, a := range asks {
		got, ok, left, err := stock.TakeUnits(tx, *a.tr.PoolID, a.n, stock.ColHeld)
		if err != nil {
			return model.Hold{}, nil, err
		}
		if !ok {
			return model.Hold{}, nil, model.ErrSoldOut(a.tr.ZoneName+" tickets", left)
		}
		allocs = append(allocs, got...)
		lines = append(lines, model.HoldLine{TierID: a.tr.ID, ZoneID: a.tr.ZoneID, Quantity: a.n, UnitPrice: a.tr.PriceMinor})
	}

	var qty int
	var amount int64
	for i := range lines {
		l := &lines[i]
		l.Line = nextLine + i
		qty += l.Quantity
		amount += l.UnitPrice * int64(l.Quantity)
		if c := model.TierCurrency(tiers, l.TierID); c != h.Currency {
			return model.Hold{}, nil, model.Invalid("tiers", "one hold cannot mix currencies (%s and %s)", h.Currency, c)
		}
	}

	// The hold's channel quota, after the pools.
	var quota []uuid.UUID
	if err := tx.Raw(`SELECT id FROM inv_counters WHERE event_id = ? AND kind = 'quota' AND channel = ?`, h.EventID, h.Channel).
		Scan(&quota).Error; err != nil {
		return model.Hold{}, nil, err
	}
	if len(quota) == 1 {
		got, ok, _, err := stock.TakeUnits(tx, quota[0], qty, stock.ColHeld)
		if err != nil {
			return model.Hold{}, nil, err
		}
		if !ok {
			return model.Hold{}, nil, model.ErrQuota(h.Channel)
		}
		allocs = append(allocs, got...)
	}

	// The buyer's counter last: the per-buyer ticket limit covers the
	// whole cart (the hold itself is counted already).
	if h.Quantity+qty > set.MaxBuyerTickets {
		return model.Hold{}, nil, model.ErrHoldLimit(fmt.Sprintf("at most %d tickets per buyer for this event", set.MaxBuyerTickets))
	}
	res := tx.Exec(`UPDATE inv_buyer_counters SET units = units + ? WHERE event_id = ? AND subject = ? AND units + ? <= ?`,
		qty, h.EventID, "b:"+h.BuyerID, qty, set.MaxBuyerTickets)
	if res.Error != nil {
		return model.Hold{}, nil, res.Error
	}
	if res.RowsAffected != 1 {
		return model.Hold{}, nil, model.ErrHoldLimit(fmt.Sprintf("a buyer may keep %d holds and %d tickets for this event", set.MaxBuyerHolds, set.MaxBuyerTickets))
	}

	if err := stock.SaveAllocs(tx, holdID, allocs); err != nil {
		return model.Hold{}, nil, err
	}
	for _, l := range lines {
		if err := tx.Exec(`INSERT INTO inv_hold_lines (hold_id, line, tier_id, zone_id, seat_id, quantity, unit_price_minor) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			holdID, l.Line, l.TierID, l.ZoneID, l.SeatID, l.Quantity, l.UnitPrice).Error; err != nil {
			return model.Hold{}, nil, err
		}
	}
	if err := tx.Exec(`UPDATE inv_holds SET quantity = quantity + ?, amount_minor = amount_minor + ? WHERE id = ? AND status = 'active'`,
		qty, amount, holdID).Error; err != nil {
		return model.Hold{}, nil, err
	}
	out, err := ReadHold(tx, holdID)
	if err != nil {
		return model.Hold{}, nil, err
	}
	model.NameLines(&out, tiers)
	return out, seats, nil
}

// RemoveSeat takes one seat out of a buyer's active hold and puts it back on
// sale, with the quota unit it took. A hold's last item is not removed: the
// buyer releases the hold instead. Like an addition, it is refused once the
// hold has an order.
func (s *Service) RemoveSeat(ctx context.Context, t tenants.Tenant, holdID uuid.UUID, seatID, buyerID string) (model.Hold, error) {
	if buyerID == "" {
		return model.Hold{}, app.Invalid("buyer_required", "send X-Buyer-Token (POST /api/v1/buyer-sessions mints one)")
	}
	if !model.SeatIDPattern.MatchString(seatID) {
		return model.Hold{}, model.Invalid("seats", "%q is not a seat id (section-row-number, e.g. A-12-7)", model.Truncate(seatID, 40))
	}
	var out model.Hold
	err := s.d.Tx(ctx, t, func(tx *gorm.DB) error {
		// The lock order of an addition: hold row, seat, quota shard, buyer counter.
		h, err := lockCartHold(tx, holdID, buyerID)
		if err != nil {
			return err
		}
		var line []struct {
			Line      int   `gorm:"column:line"`
			UnitPrice int64 `gorm:"column:unit_price_minor"`
		}
		if err := tx.Raw(`SELECT line, unit_price_minor FROM inv_hold_lines WHERE hold_id = ? AND seat_id = ?`, holdID, seatID).Scan(&line).Error; err != nil {
			return err
		}
		if len(line) == 0 {
			return app.NotFound("seat in this hold")
		}
		if h.Quantity <= 1 {
			return app.Conflict("last_item", "this is the hold's last ticket: release the hold instead")
		}
		res := tx.Exec(`UPDATE inv_seats SET state = 'available', hold_id = NULL WHERE event_id = ? AND id = ? AND state = 'held' AND hold_id = ?`,
			h.EventID, seatID, holdID)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected != 1 { // a seat line always has its held seat (CHECKs tie them)
			return fmt.Errorf("inventory: seat %s of hold %s not held by it", seatID, holdID)
		}
		// The one quota unit the seat took (seats take no pool units).
		var qa []stock.Alloc
		if err := tx.Raw(`SELECT a.counter_id, a.shard, a.quantity FROM inv_hold_allocs a JOIN inv_counters c ON c.id = a.counter_id
			WHERE a.hold_id = ? AND c.kind = 'quota' ORDER BY a.counter_id, a.shard LIMIT 1`, holdID).Scan(&qa).Error; err != nil {
			return err
		}
		if len(qa) == 1 {
			a := qa[0]
			if err := tx.Exec(`UPDATE inv_counter_shards SET held = held - 1 WHERE counter_id = ? AND shard = ?`, a.CounterID, a.Shard).Error; err != nil {
				return err
			}
			q := `UPDATE inv_hold_allocs SET quantity = quantity - 1 WHERE hold_id = ? AND counter_id = ? AND shard = ?`
			if a.Quantity == 1 {
				q = `DELETE FROM inv_hold_allocs WHERE hold_id = ? AND counter_id = ? AND shard = ?`
			}
			if err := tx.Exec(q, holdID, a.CounterID, a.Shard).Error; err != nil {
				return err
			}
		}
		if err := tx.Exec(`UPDATE inv_buyer_counters SET units = greatest(units - 1, 0) WHERE event_id = ? AND subject = ?`,
			h.EventID, "b:"+h.BuyerID).Error; err != nil {
			return err
		}
		if err := tx.Exec(`DELETE FROM inv_hold_lines WHERE hold_id = ? AND line = ?`, holdID, line[0].Line).Error; err != nil {
			return err
		}
		if err := tx.Exec(`UPDATE inv_holds SET quantity = quantity - 1, amount_minor = amount_minor - ? WHERE id = ?`,
			line[0].UnitPrice, holdID).Error; err != nil {
			return err
		}
		if out, err = ReadHold(tx, holdID); err != nil {
			return err
		}
		tiers, err := catalogue.LoadTierRows(tx, h.EventID)
		model.NameLines(&out, tiers)
		return err
	})
	if err != nil {
		return model.Hold{}, err
	}
	s.stock.Changed(ctx, t, out.EventID, model.SeatStates([]string{seatID}, model.SeatAvailable))
	return out, nil
}

// lockCartHold locks a hold that its buyer may still change: theirs (else
// not found), active and not lapsed (else gone), without an order (else
// conflict).
func lockCartHold(tx *gorm.DB, holdID uuid.UUID, buyerID string) (model.HoldRow, error) {
	var hs []model.HoldRow
	if err := tx.Raw(`SELECT `+model.HoldCols+` FROM inv_holds WHERE id = ? FOR UPDATE`, holdID).Scan(&hs).Error; err != nil {
		return model.HoldRow{}, err
	}
	if len(hs) == 0 || hs[0].BuyerID != buyerID {
		return model.HoldRow{}, app.NotFound("hold")
	}
	h := hs[0]
	var lapsed bool // by the database's clock, which set the expiry
	if err := tx.Raw(`SELECT ?::timestamptz <= now()`, h.ExpiresAt).Row().Scan(&lapsed); err != nil {
		return model.HoldRow{}, err
	}
	if h.Status != model.HoldActive || lapsed {
		return model.HoldRow{}, errHoldClosed
	}
	// Order creation locks the hold row before it reads or inserts the
	// order, so under this lock an order either exists now or comes after.
	var orders, resale int64
	if err := tx.Raw(`SELECT (SELECT count(*) FROM inv_orders WHERE hold_id = ?), (SELECT count(*) FROM inv_resale_holds WHERE hold_id = ?)`, holdID, holdID).
		Row().Scan(&orders, &resale); err != nil {
		return model.HoldRow{}, err
	}
	if orders > 0 {
		return model.HoldRow{}, errHoldHasOrder
	}
	if resale > 0 {
		// A resale reservation is one listed ticket at its price: the
		// payment settles exactly that (resale.SettlePayment).
		return model.HoldRow{}, app.Conflict("hold_not_a_cart", "this hold reserves one resale ticket and takes nothing more; hold other tickets separately")
	}
	return h, nil
}
