package inventory

import (
	"context"
	"fmt"
	"net/http"
	"slices"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/app"
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
}

func (r *AddItemsRequest) validate() error {
	if r.BuyerID == "" {
		return app.Invalid("buyer_required", "send X-Buyer-Token (POST /api/v1/buyer-sessions mints one)")
	}
	if len(r.Seats) == 0 && len(r.Tiers) == 0 {
		return invalid("request", "give seats, or tiers with a tier_id and quantity each")
	}
	if len(r.Seats) > MaxSeatsPerHold {
		return invalid("seats", "at most %d seats in one hold", MaxSeatsPerHold)
	}
	seen := map[string]bool{}
	for _, id := range r.Seats {
		if !seatIDPattern.MatchString(id) {
			return invalid("seats", "%q is not a seat id (section-row-number, e.g. A-12-7)", truncate(id, 40))
		}
		if seen[id] {
			return invalid("seats", "seat %s is listed twice", id)
		}
		seen[id] = true
	}
	tiers := map[uuid.UUID]bool{}
	for _, tq := range r.Tiers {
		if tq.TierID == uuid.Nil {
			return invalid("tier_id", "each tier needs a tier_id")
		}
		if tiers[tq.TierID] {
			return invalid("tiers", "tier %s is listed twice", tq.TierID)
		}
		tiers[tq.TierID] = true
		if tq.Quantity < 1 || tq.Quantity > 100 {
			return invalid("quantity", "quantity must be from 1 to 100")
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
func (s *Service) AddToHold(ctx context.Context, t tenants.Tenant, holdID uuid.UUID, req AddItemsRequest) (Hold, error) {
	if err := req.validate(); err != nil {
		return Hold{}, err
	}
	// The event's status comes from the calendar (not our tables): read it
	// before the transaction, as a new hold does.
	cur, err := s.Hold(ctx, t, holdID)
	if err != nil {
		return Hold{}, err
	}
	if cur.BuyerID != req.BuyerID {
		return Hold{}, app.NotFound("hold")
	}
	ev, err := s.Event(ctx, t, cur.EventID)
	if err != nil {
		return Hold{}, err
	}
	var out Hold
	var added []string
	fresh := false
	err = s.tx(ctx, t, func(tx *gorm.DB) error {
		out, added = Hold{}, nil
		replayed, err := app.Once(tx, req.Key, &out, func() error {
			if ev.Status != "on_sale" {
				return errNotOnSale("this event is not on sale")
			}
			// The calendar's status may be cached for a moment; the
			// cancellation's own record is read here, in the transaction.
			if cancelled, err := eventCancelled(tx, cur.EventID); err != nil || cancelled {
				if err == nil {
					err = errNotOnSale("this event is cancelled")
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
		return Hold{}, err
	}
	if fresh {
		// GA units change the tier counts even when no seat changes state.
		s.changed(ctx, t, out.EventID, seatStates(added, SeatHeld))
	}
	return out, nil
}

// addToHoldTx is AddToHold inside its transaction.
func (s *Service) addToHoldTx(tx *gorm.DB, holdID uuid.UUID, req AddItemsRequest) (Hold, []string, error) {
	// The hold row first (the lock order): a racing release, expiry, order
	// or other addition waits for this one, or this one for it.
	h, err := lockCartHold(tx, holdID, req.BuyerID)
	if err != nil {
		return Hold{}, nil, err
	}
	set, err := loadSettings(tx, h.EventID)
	if err != nil {
		return Hold{}, nil, err
	}
	tiers, err := loadTierRows(tx, h.EventID)
	if err != nil {
		return Hold{}, nil, err
	}
	cart, err := readHold(tx, holdID)
	if err != nil {
		return Hold{}, nil, err
	}
	if len(cart.Seats)+len(req.Seats) > MaxSeatsPerHold {
		return Hold{}, nil, invalid("seats", "at most %d seats in one hold", MaxSeatsPerHold)
	}
	perTier := map[uuid.UUID]int{} // the whole cart's tickets per tier
	for _, l := range cart.Lines {
		perTier[l.TierID] += l.Quantity
	}
	var lastLine int
	if err := tx.Raw(`SELECT coalesce(max(line), 0) FROM inv_hold_lines WHERE hold_id = ?`, holdID).Row().Scan(&lastLine); err != nil {
		return Hold{}, nil, err
	}
	nextLine := lastLine + 1
	now := s.now()
	var lines []HoldLine
	overOrder := func(tr tierRow) error {
		if perTier[tr.ID] > tr.MaxPerOrder {
			return invalid("quantity", "at most %d %s tickets in one order", tr.MaxPerOrder, tr.Name)
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
			return Hold{}, nil, err
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
			return Hold{}, nil, errSeatsUnavailable(missing)
		}
		for _, id := range seats {
			tr, err := seatTier(tiers, zone[id], nil, now)
			if err != nil {
				return Hold{}, nil, err
			}
			perTier[tr.ID]++
			if err := overOrder(tr); err != nil {
				return Hold{}, nil, err
			}
			seat := id
			lines = append(lines, HoldLine{TierID: tr.ID, ZoneID: tr.ZoneID, SeatID: &seat, Quantity: 1, UnitPrice: tr.PriceMinor})
		}
		// Every seat was locked available just above: all must change.
		res := tx.Exec(`UPDATE inv_seats SET state = 'held', hold_id = ? WHERE event_id = ? AND id IN ? AND state = 'available'`,
			holdID, h.EventID, seats)
		if res.Error != nil {
			return Hold{}, nil, res.Error
		}
		if res.RowsAffected != int64(len(seats)) {
			return Hold{}, nil, errSeatsUnavailable(seats)
		}
	}

	// GA pools, in counter id order (pools before quotas: the lock order).
	type gaAsk struct {
		tr tierRow
		n  int
	}
	var asks []gaAsk
	for _, tq := range req.Tiers {
		tr, ok := findTier(tiers, tq.TierID)
		switch {
		case !ok:
			return Hold{}, nil, app.NotFound("tier")
		case tr.ZoneKind != KindGA || tr.PoolID == nil:
			return Hold{}, nil, invalid("tier_id", "tier %s sells reserved seats: hold seats by id", tr.Name)
		case !tr.OnSale(now):
			return Hold{}, nil, errNotOnSale("tier " + tr.Name + " is not on sale now")
		}
		perTier[tr.ID] += tq.Quantity
		if err := overOrder(tr); err != nil {
			return Hold{}, nil, err
		}
		asks = append(asks, gaAsk{tr, tq.Quantity})
	}
	slices.SortFunc(asks, func(a, b gaAsk) int { return slices.Compare(a.tr.PoolID[:], b.tr.PoolID[:]) })
	var allocs []alloc
	for _, a := range asks {
		got, ok, left, err := take(tx, *a.tr.PoolID, a.n, colHeld)
		if err != nil {
			return Hold{}, nil, err
		}
		if !ok {
			return Hold{}, nil, errSoldOut(a.tr.ZoneName+" tickets", left)
		}
		allocs = append(allocs, got...)
		lines = append(lines, HoldLine{TierID: a.tr.ID, ZoneID: a.tr.ZoneID, Quantity: a.n, UnitPrice: a.tr.PriceMinor})
	}

	var qty int
	var amount int64
	for i := range lines {
		l := &lines[i]
		l.lineNumber = nextLine + i
		qty += l.Quantity
		amount += l.UnitPrice * int64(l.Quantity)
		if c := tierCurrency(tiers, l.TierID); c != h.Currency {
			return Hold{}, nil, invalid("tiers", "one hold cannot mix currencies (%s and %s)", h.Currency, c)
		}
	}

	// The hold's channel quota, after the pools.
	var quota []uuid.UUID
	if err := tx.Raw(`SELECT id FROM inv_counters WHERE event_id = ? AND kind = 'quota' AND channel = ?`, h.EventID, h.Channel).
		Scan(&quota).Error; err != nil {
		return Hold{}, nil, err
	}
	if len(quota) == 1 {
		got, ok, _, err := take(tx, quota[0], qty, colHeld)
		if err != nil {
			return Hold{}, nil, err
		}
		if !ok {
			return Hold{}, nil, errQuota(h.Channel)
		}
		allocs = append(allocs, got...)
	}

	// The buyer's counter last: the per-buyer ticket limit covers the
	// whole cart (the hold itself is counted already).
	if h.Quantity+qty > set.MaxBuyerTickets {
		return Hold{}, nil, errHoldLimit(fmt.Sprintf("at most %d tickets per buyer for this event", set.MaxBuyerTickets))
	}
	res := tx.Exec(`UPDATE inv_buyer_counters SET units = units + ? WHERE event_id = ? AND subject = ? AND units + ? <= ?`,
		qty, h.EventID, "b:"+h.BuyerID, qty, set.MaxBuyerTickets)
	if res.Error != nil {
		return Hold{}, nil, res.Error
	}
	if res.RowsAffected != 1 {
		return Hold{}, nil, errHoldLimit(fmt.Sprintf("a buyer may keep %d holds and %d tickets for this event", set.MaxBuyerHolds, set.MaxBuyerTickets))
	}

	if err := saveAllocs(tx, holdID, allocs); err != nil {
		return Hold{}, nil, err
	}
	for _, l := range lines {
		if err := tx.Exec(`INSERT INTO inv_hold_lines (hold_id, line, tier_id, zone_id, seat_id, quantity, unit_price_minor) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			holdID, l.lineNumber, l.TierID, l.ZoneID, l.SeatID, l.Quantity, l.UnitPrice).Error; err != nil {
			return Hold{}, nil, err
		}
	}
	if err := tx.Exec(`UPDATE inv_holds SET quantity = quantity + ?, amount_minor = amount_minor + ? WHERE id = ? AND status = 'active'`,
		qty, amount, holdID).Error; err != nil {
		return Hold{}, nil, err
	}
	out, err := readHold(tx, holdID)
	if err != nil {
		return Hold{}, nil, err
	}
	nameLines(&out, tiers)
	return out, seats, nil
}

// nameLines fills in each line's tier and zone names, as a new hold shows them.
func nameLines(h *Hold, tiers []tierRow) {
	for i := range h.Lines {
		if tr, ok := findTier(tiers, h.Lines[i].TierID); ok {
			h.Lines[i].TierName, h.Lines[i].ZoneName = tr.Name, tr.ZoneName
		}
	}
}

// loadTierRows reads an event's tiers with their zones and GA pools.
func loadTierRows(tx *gorm.DB, eventID uuid.UUID) ([]tierRow, error) {
	var rows []tierRow
	err := tx.Raw(`SELECT t.id, t.zone_id, t.name, t.price_minor, t.currency, t.sale_starts, t.sale_ends, t.max_per_order, t.sort,
			z.kind AS zone_kind, z.name AS zone_name, p.id AS pool_id
		FROM inv_tiers t JOIN inv_zones z ON z.id = t.zone_id
		LEFT JOIN inv_counters p ON p.zone_id = t.zone_id AND p.kind = 'pool'
		WHERE t.event_id = ? ORDER BY t.sort`, eventID).Scan(&rows).Error
	return rows, err
}

// addItemsBody is the body of POST /holds/{holdId}/items.
type addItemsBody struct {
	Seats []string           `json:"seats"`
	Tiers []addItemsTierBody `json:"tiers"`
}

type addItemsTierBody struct {
	TierID   string `json:"tier_id"`
	Quantity int    `json:"quantity"`
}

// addHoldItems answers POST /holds/{holdId}/items: more seats or GA tickets
// into the buyer's existing hold (its expiry unchanged).
func (m *Module) addHoldItems(c *gin.Context) {
	id, ok := app.PathID(c, "holdId", "hold")
	if !ok {
		return
	}
	buyer := m.buyer(c)
	if buyer == "" {
		app.Fail(c, app.Invalid("buyer_required", "send X-Buyer-Token (POST /api/v1/buyer-sessions mints one)"))
		return
	}
	var body addItemsBody
	if err := app.DecodeJSON(c, &body); err != nil {
		app.Fail(c, err)
		return
	}
	key, err := app.KeyFrom(c, body, buyer, true)
	if err != nil {
		app.Fail(c, err)
		return
	}
	req := AddItemsRequest{Key: key, Seats: body.Seats, BuyerID: buyer, ClientIP: c.ClientIP()}
	for _, tb := range body.Tiers {
		tid, err := uuid.Parse(tb.TierID)
		if err != nil {
			app.Fail(c, invalid("tier_id", "tier_id must be a UUID"))
			return
		}
		req.Tiers = append(req.Tiers, TierQuantity{TierID: tid, Quantity: tb.Quantity})
	}
	h, err := m.svc.AddToHold(c.Request.Context(), app.TenantOf(c), id, req)
	if err != nil {
		app.Fail(c, err)
		return
	}
	c.JSON(http.StatusOK, h)
}

// RemoveSeat takes one seat out of a buyer's active hold and puts it back on
// sale, with the quota unit it took. A hold's last item is not removed: the
// buyer releases the hold instead. Like an addition, it is refused once the
// hold has an order.
func (s *Service) RemoveSeat(ctx context.Context, t tenants.Tenant, holdID uuid.UUID, seatID, buyerID string) (Hold, error) {
	if buyerID == "" {
		return Hold{}, app.Invalid("buyer_required", "send X-Buyer-Token (POST /api/v1/buyer-sessions mints one)")
	}
	if !seatIDPattern.MatchString(seatID) {
		return Hold{}, invalid("seats", "%q is not a seat id (section-row-number, e.g. A-12-7)", truncate(seatID, 40))
	}
	var out Hold
	err := s.tx(ctx, t, func(tx *gorm.DB) error {
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
		var qa []alloc
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
		if out, err = readHold(tx, holdID); err != nil {
			return err
		}
		tiers, err := loadTierRows(tx, h.EventID)
		nameLines(&out, tiers)
		return err
	})
	if err != nil {
		return Hold{}, err
	}
	s.changed(ctx, t, out.EventID, seatStates([]string{seatID}, SeatAvailable))
	return out, nil
}

// lockCartHold locks a hold that its buyer may still change: theirs (else
// not found), active and not lapsed (else gone), without an order (else
// conflict).
func lockCartHold(tx *gorm.DB, holdID uuid.UUID, buyerID string) (holdRow, error) {
	var hs []holdRow
	if err := tx.Raw(`SELECT `+holdCols+` FROM inv_holds WHERE id = ? FOR UPDATE`, holdID).Scan(&hs).Error; err != nil {
		return holdRow{}, err
	}
	if len(hs) == 0 || hs[0].BuyerID != buyerID {
		return holdRow{}, app.NotFound("hold")
	}
	h := hs[0]
	var lapsed bool // by the database's clock, which set the expiry
	if err := tx.Raw(`SELECT ?::timestamptz <= now()`, h.ExpiresAt).Row().Scan(&lapsed); err != nil {
		return holdRow{}, err
	}
	if h.Status != HoldActive || lapsed {
		return holdRow{}, errHoldClosed
	}
	// Order creation locks the hold row before it reads or inserts the
	// order, so under this lock an order either exists now or comes after.
	var orders int64
	if err := tx.Raw(`SELECT count(*) FROM inv_orders WHERE hold_id = ?`, holdID).Row().Scan(&orders); err != nil {
		return holdRow{}, err
	}
	if orders > 0 {
		return holdRow{}, errHoldHasOrder
	}
	return h, nil
}

// removeHoldSeat answers DELETE /holds/{holdId}/items/{seatId}.
func (m *Module) removeHoldSeat(c *gin.Context) {
	id, ok := app.PathID(c, "holdId", "hold")
	if !ok {
		return
	}
	h, err := m.svc.RemoveSeat(c.Request.Context(), app.TenantOf(c), id, c.Param("seatId"), m.buyer(c))
	if err != nil {
		app.Fail(c, err)
		return
	}
	c.JSON(http.StatusOK, h)
}
