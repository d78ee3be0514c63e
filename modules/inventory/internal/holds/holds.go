// Package holds keeps seats and GA units for buyers until they pay or the
// hold lapses: new holds, decided in batches (group commit, batch_*.go), a
// buyer's one cart (cart.go), release, expiry and its sweep.
package holds

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/jobs"
	"marquee/modules/inventory/internal/catalogue"
	"marquee/modules/inventory/internal/deps"
	"marquee/modules/inventory/internal/model"
	"marquee/modules/inventory/internal/stock"
	"marquee/tenants"
)

// Service makes, changes and ends holds.
type Service struct {
	d          *deps.Deps
	stock      *stock.Service
	catalogue  *catalogue.Service
	holdQueues sync.Map // tenant/event -> *holdQueue
	batchSizes prometheus.Histogram
}

// New returns the holds service; its batch sizes go to the core's metrics.
func New(d *deps.Deps, st *stock.Service, cat *catalogue.Service) *Service {
	sizes := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "marquee_inventory_hold_batch_size",
		Help: "Hold requests decided in one transaction.", Buckets: []float64{1, 2, 4, 8, 16, 32, 64}})
	d.App.Metrics.MustRegister(sizes)
	return &Service{d: d, stock: st, catalogue: cat, batchSizes: sizes}
}

// HoldRequest asks for seats, or for a quantity of a GA tier.
type HoldRequest struct {
	Key      *app.IdempotencyKey // retries with the same key get the same hold
	Seats    []string
	TierID   *uuid.UUID
	Quantity int
	Channel  string
	BuyerID  string
	ClientIP string
	DeviceID string // signed device id, "" when the client sent none
	// PresaleCode admits the buyer during the event's presale window.
	PresaleCode string
	// Admit, when set, is a check already running while the request waits
	// in its batch queue (the chain's per-device rate, a Redis round trip):
	// its error refuses the request before the batch decides, so nothing
	// is held or stored under the request's key. Buffered, sent once.
	Admit <-chan error
}

// Validate checks a request before it joins a batch (defaulting the channel).
func (r *HoldRequest) Validate() error {
	if r.Channel == "" {
		r.Channel = model.ChannelWeb
	}
	if !model.ValidChannel(r.Channel) {
		return model.Invalid("channel", "unknown channel %q", r.Channel)
	}
	switch {
	case len(r.Seats) > 0 && r.Quantity != 0:
		return model.Invalid("request", "ask for seats or for a quantity of a tier, not both")
	case len(r.Seats) > model.MaxSeatsPerHold:
		return model.Invalid("seats", "at most %d seats in one hold", model.MaxSeatsPerHold)
	case len(r.Seats) == 0 && r.TierID == nil:
		return model.Invalid("request", "give seats, or tier_id and quantity")
	case len(r.Seats) == 0 && (r.Quantity < 1 || r.Quantity > 100):
		return model.Invalid("quantity", "quantity must be from 1 to 100")
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
	if r.BuyerID == "" {
		return app.Invalid("buyer_required", "send X-Buyer-Token (POST /api/v1/buyer-sessions mints one)")
	}
	return nil
}

// isCart reports whether the request is a buyer's own on the storefront's
// channel: such holds are the buyer's one cart of the event. Staff selling
// for several people (staff:… buyers, other channels) keep a hold each.
func (r *HoldRequest) isCart() bool {
	return r.Channel == model.ChannelWeb && !strings.HasPrefix(r.BuyerID, StaffBuyerPrefix)
}

// StaffBuyerPrefix starts the buyer id of a hold staff make without a buyer
// token ("staff:" and their user id).
const StaffBuyerPrefix = "staff:"

// CreateHold holds seats (all or none) or GA units for a buyer. The request
// joins its event's next hold batch (batch_*.go), which decides it against
// locked rows and writes it with conditional statements in one transaction:
// seats no longer available, a pool or quota without room, or a buyer over a
// limit refuse this request alone, changing nothing. A buyer has one cart
// per event: when the batch finds theirs (or makes it for an earlier request
// of the same buyer), the request is added to it (AddToHold) and the answer
// is the whole cart, with the cart's expiry.
func (s *Service) CreateHold(ctx context.Context, t tenants.Tenant, ev app.EventInfo, req HoldRequest) (model.Hold, error) {
	if err := req.Validate(); err != nil {
		return model.Hold{}, err
	}
	if ev.Status != "on_sale" {
		return model.Hold{}, model.ErrNotOnSale("this event is not on sale")
	}
	// The calendar's on-sale schedule bounds every tier's own sale window:
	// before the public on-sale only presale buyers with the code hold.
	if err := ev.SaleGate(s.d.Now(), req.PresaleCode); err != nil {
		return model.Hold{}, err
	}
	for attempt := 1; ; attempt++ {
		out, err := s.submitHold(ctx, t, ev, req)
		if err != nil || out.joinCart == uuid.Nil {
			return out.hold, err
		}
		// The admission check passed once (its channel is read once): a
		// request asked again must not wait for it a second time.
		req.Admit = nil
		// The buyer has a cart of this event: the request joins it.
		h, err := s.AddToHold(ctx, t, out.joinCart, req.cartItems())
		if !errors.Is(err, errHoldClosed) || attempt == 3 {
			return h, err
		}
		// The cart ended between the batch's read and the addition
		// (lapsed, released, paid): expire it if it is due (its index
		// entry goes with it) and ask again, for a new cart this time.
		var notDue *model.NotDueError
		if _, err := s.ExpireHold(ctx, t, out.joinCart); err != nil && !errors.As(err, &notDue) {
			return model.Hold{}, err
		}
	}
}

// cartItems is a hold request as an addition to the buyer's cart (same key:
// a retry of the request replays the addition).
func (r HoldRequest) cartItems() AddItemsRequest {
	add := AddItemsRequest{Key: r.Key, Seats: r.Seats, BuyerID: r.BuyerID, ClientIP: r.ClientIP, PresaleCode: r.PresaleCode}
	if len(r.Seats) == 0 && r.TierID != nil {
		add.Tiers = []TierQuantity{{TierID: *r.TierID, Quantity: r.Quantity}}
	}
	return add
}

// Hold reads a hold with its lines.
func (s *Service) Hold(ctx context.Context, t tenants.Tenant, id uuid.UUID) (model.Hold, error) {
	var h model.Hold
	err := s.d.Tx(ctx, t, func(tx *gorm.DB) error {
		var err error
		h, err = ReadHold(tx, id)
		return err
	})
	return h, err
}

// ReadHold reads a hold with its lines in tx.
func ReadHold(tx *gorm.DB, id uuid.UUID) (model.Hold, error) {
	var rows []model.HoldRow
	if err := tx.Raw(`SELECT `+model.HoldCols+` FROM inv_holds WHERE id = ?`, id).Scan(&rows).Error; err != nil {
		return model.Hold{}, err
	}
	if len(rows) == 0 {
		return model.Hold{}, app.NotFound("hold")
	}
	r := rows[0]
	h := model.Hold{ID: r.ID, EventID: r.EventID, Status: r.Status, Channel: r.Channel, Quantity: r.Quantity, AmountMinor: r.AmountMinor,
		Currency: r.Currency, ExpiresAt: r.ExpiresAt, BuyerID: r.BuyerID, Seats: []string{}}
	if err := tx.Raw(`SELECT l.tier_id, l.zone_id, l.seat_id, l.quantity, l.unit_price_minor FROM inv_hold_lines l
		WHERE l.hold_id = ? ORDER BY l.line`, id).Scan(&h.Lines).Error; err != nil {
		return model.Hold{}, err
	}
	for _, l := range h.Lines {
		if l.SeatID != nil {
			h.Seats = append(h.Seats, *l.SeatID)
		}
	}
	return h, nil
}

// BuyerHolds lists a buyer's active holds, newest first, of one event (or
// of every event when eventID is nil), so a page reloaded mid-purchase finds
// its cart again.
func (s *Service) BuyerHolds(ctx context.Context, t tenants.Tenant, buyerID string, eventID *uuid.UUID) ([]model.Hold, error) {
	out := []model.Hold{}
	err := s.d.Tx(ctx, t, func(tx *gorm.DB) error {
		out = out[:0]
		var ids []uuid.UUID
		q := tx.Raw(`SELECT id FROM inv_holds WHERE buyer_id = ? AND status = 'active' AND expires_at > now() ORDER BY id DESC LIMIT 100`, buyerID)
		if eventID != nil {
			q = tx.Raw(`SELECT id FROM inv_holds WHERE buyer_id = ? AND event_id = ? AND status = 'active' AND expires_at > now() ORDER BY id DESC LIMIT 100`,
				buyerID, *eventID)
		}
		if err := q.Scan(&ids).Error; err != nil {
			return err
		}
		for _, id := range ids {
			h, err := ReadHold(tx, id)
			if err != nil {
				return err
			}
			out = append(out, h)
		}
		return nil
	})
	return out, err
}

// ReleaseHold gives a hold's seats and units back. Only its buyer (or staff,
// asStaff) may; releasing twice changes nothing the second time.
func (s *Service) ReleaseHold(ctx context.Context, t tenants.Tenant, id uuid.UUID, buyerID string, asStaff bool) error {
	var closed *model.HoldRow
	var seats []string
	var lastHold bool
	err := s.d.Tx(ctx, t, func(tx *gorm.DB) error {
		closed, seats, lastHold = nil, nil, false
		var rows []model.HoldRow
		if err := tx.Raw(`SELECT `+model.HoldCols+` FROM inv_holds WHERE id = ?`, id).Scan(&rows).Error; err != nil {
			return err
		}
		if len(rows) == 0 || (!asStaff && rows[0].BuyerID != buyerID) {
			return app.NotFound("hold")
		}
		var err error
		if closed, seats, err = CloseHold(tx, id, model.HoldReleased, false); err != nil || closed == nil || asStaff {
			return err
		}
		lastHold, err = buyerHoldsNone(tx, closed.EventID, buyerID)
		return err
	})
	if err == nil && closed != nil {
		s.stock.Changed(ctx, t, closed.EventID, model.SeatStates(seats, model.SeatAvailable))
		if lastHold {
			// The buyer gave back all they held: their waiting-room place
			// goes to the next buyer.
			s.d.BuyerDone(ctx, t, closed.EventID, buyerID)
		}
	}
	return err
}

// ExpireHold expires a hold whose time is up. It is idempotent: a hold
// already sold, released or expired is left alone. A hold not yet due is
// reported with a *NotDueError saying how long it has left (by the
// database's clock, which set its expiry), so the caller may come back then.
func (s *Service) ExpireHold(ctx context.Context, t tenants.Tenant, id uuid.UUID) (expired bool, err error) {
	var closed *model.HoldRow
	var seats []string
	var lastHold bool
	err = s.d.Tx(ctx, t, func(tx *gorm.DB) error {
		var err error
		closed, seats, lastHold = nil, nil, false
		closed, seats, err = CloseHold(tx, id, model.HoldExpired, true)
		if err != nil {
			return err
		}
		if closed != nil {
			lastHold, err = buyerHoldsNone(tx, closed.EventID, closed.BuyerID)
			return err
		}
		var due []struct {
			Left float64 `gorm:"column:left"`
		}
		if err := tx.Raw(`SELECT extract(epoch FROM expires_at - now()) AS left FROM inv_holds WHERE id = ? AND status = 'active'`, id).
			Scan(&due).Error; err != nil {
			return err
		}
		if len(due) == 1 {
			return &model.NotDueError{In: time.Duration(due[0].Left * float64(time.Second))}
		}
		return nil
	})
	if err == nil && closed != nil {
		s.stock.Changed(ctx, t, closed.EventID, model.SeatStates(seats, model.SeatAvailable))
		s.expiredFor(ctx, t, closed, lastHold)
	}
	return closed != nil, err
}

// expiredFor frees the waiting-room place of a buyer whose last hold just
// expired: they walked away, and the place is the next buyer's.
func (s *Service) expiredFor(ctx context.Context, t tenants.Tenant, closed *model.HoldRow, lastHold bool) {
	if lastHold {
		s.d.BuyerDone(ctx, t, closed.EventID, closed.BuyerID)
	}
}

// buyerHoldsNone reports, in the transaction that closed one of their holds,
// whether the buyer holds nothing more for the event.
func buyerHoldsNone(tx *gorm.DB, eventID uuid.UUID, buyerID string) (bool, error) {
	var none bool
	err := tx.Raw(`SELECT coalesce((SELECT holds FROM inv_buyer_counters WHERE event_id = ? AND subject = ?), 0) = 0`,
		eventID, "b:"+buyerID).Row().Scan(&none)
	return none, err
}

// CloseHold moves an active hold to released or expired and returns its
// seats and units to sale. The conditional UPDATE on the hold row decides:
// of a racing release, expiry and payment exactly one moves it. It returns
// nil when the hold was not active (or, for expiry, not yet due).
func CloseHold(tx *gorm.DB, id uuid.UUID, status string, onlyIfDue bool) (*model.HoldRow, []string, error) {
	var rows []model.HoldRow
	q := `UPDATE inv_holds SET status = ?, closed_at = now() WHERE id = ? AND status = 'active'`
	if onlyIfDue {
		q += ` AND expires_at <= now()`
	}
	if err := tx.Raw(q+` RETURNING `+model.HoldCols, status, id).Scan(&rows).Error; err != nil {
		return nil, nil, err
	}
	if len(rows) == 0 {
		return nil, nil, nil
	}
	h := rows[0]
	seats, err := returnHeldInventory(tx, h)
	return &h, seats, err
}

// returnHeldInventory puts a closed hold's seats and units back on sale and
// lowers its buyer's counters.
func returnHeldInventory(tx *gorm.DB, h model.HoldRow) ([]string, error) {
	ids, err := stock.ReleaseHeldSeats(tx, h.EventID, h.ID)
	if err != nil {
		return nil, err
	}
	if err := stock.MoveAllocs(tx, h.ID, stock.ReleaseHeld, true); err != nil {
		return nil, err
	}
	if err := ReleaseBuyer(tx, h, true); err != nil {
		return nil, err
	}
	return ids, nil
}

// SellHeld is a paid hold's last writes in one statement: its units move
// from held to sold on the shards they came from (locked in lock order:
// pools before quotas, then counter and shard) and its buyer's (and
// address's) active holds go down by one. These are the rows concurrent
// payments queue for, held until the commit; as separate statements (read
// the allocations, one update per shard, one per counter) a payment held
// the first shard through three or four round trips before the ledger and
// the commit, and the payments of one hold batch (which share a shard)
// queued behind each other for all of them (the purchase saturation
// phase of bench onsale: the shard update was the statement most often
// active, waiting on Lock:transactionid).
func SellHeld(tx *gorm.DB, h model.HoldRow) error {
	var allocs, moved int64
	err := tx.Raw(sellHeldGorm, sellHeldArgs(h)...).Row().Scan(&allocs, &moved, new(int64))
	if err == nil && moved != allocs {
		err = fmt.Errorf("hold %s: %d of its %d allocations moved to sold", h.ID, moved, allocs)
	}
	return err
}

// SellHeldStep is SellHeld as a step of a piped transaction (the payment's
// fast path). It is sent with the COMMIT, so the statement itself refuses
// (inv_assert) when an allocation did not move.
func SellHeldStep(h model.HoldRow) tenants.Step {
	return tenants.Step{SQL: sellHeldCTEs + `, counts AS (SELECT (SELECT count(*) FROM locked) AS allocs, (SELECT count(*) FROM moved) AS moved)
		SELECT inv_assert(c.allocs = c.moved, format('hold %s: %s of its %s allocations moved to sold', $1::uuid, c.moved, c.allocs)) FROM counts c`,
		Args: sellHeldArgs(h)}
}

// sellHeldCTEs are SellHeld's changes: allocations locked, moved, the
// buyer's counters lowered.
const sellHeldCTEs = `WITH locked AS (
			SELECT s.counter_id, s.shard, a.quantity FROM inv_hold_allocs a
			JOIN inv_counters c ON c.id = a.counter_id
			JOIN inv_counter_shards s ON s.counter_id = a.counter_id AND s.shard = a.shard
			WHERE a.hold_id = $1 ORDER BY c.kind, a.counter_id, a.shard FOR UPDATE OF s
		), moved AS (
			UPDATE inv_counter_shards s SET held = s.held - l.quantity, sold = s.sold + l.quantity
			FROM locked l WHERE s.counter_id = l.counter_id AND s.shard = l.shard RETURNING 1
		), buyer AS (
			UPDATE inv_buyer_counters SET holds = greatest(holds - 1, 0)
			WHERE event_id = $2 AND (subject = $3 OR ($4 AND subject = $5)) RETURNING 1
		)`

// sellHeldGorm is SellHeld's statement with gorm's placeholders (each $n
// is used once, in order): it counts each change.
var sellHeldGorm = regexp.MustCompile(`\$[0-9]+`).ReplaceAllString(sellHeldCTEs, "?") +
	` SELECT (SELECT count(*) FROM locked), (SELECT count(*) FROM moved), (SELECT count(*) FROM buyer)`

func sellHeldArgs(h model.HoldRow) []any {
	return []any{h.ID, h.EventID, "b:" + h.BuyerID, h.IPCounted, h.ClientSubject()}
}

// ReleaseBuyer lowers the buyer's active holds (and units, unless they were
// bought) and the address's active holds.
func ReleaseBuyer(tx *gorm.DB, h model.HoldRow, units bool) error {
	n := 0
	if units {
		n = h.Quantity
	}
	if err := tx.Exec(`UPDATE inv_buyer_counters SET holds = greatest(holds - 1, 0), units = greatest(units - ?, 0)
		WHERE event_id = ? AND subject = ?`, n, h.EventID, "b:"+h.BuyerID).Error; err != nil {
		return err
	}
	if h.IPCounted {
		return tx.Exec(`UPDATE inv_buyer_counters SET holds = greatest(holds - 1, 0) WHERE event_id = ? AND subject = ?`,
			h.EventID, h.ClientSubject()).Error
	}
	return nil
}

// SweepHolds expires every lapsed hold of a tenant, one transaction each;
// FOR UPDATE SKIP LOCKED lets several sweepers (and the per-hold tasks) run
// at once without waiting on each other. It returns how many it expired.
func (s *Service) SweepHolds(ctx context.Context, t tenants.Tenant, limit int) (int, error) {
	n := 0
	for n < limit {
		var closed *model.HoldRow
		var seats []string
		var lastHold bool
		err := s.d.Tx(ctx, t, func(tx *gorm.DB) error {
			closed, seats, lastHold = nil, nil, false
			var ids []struct {
				ID uuid.UUID `gorm:"column:id"`
			}
			if err := tx.Raw(`SELECT id FROM inv_holds WHERE status = 'active' AND expires_at <= now()
				ORDER BY expires_at LIMIT 1 FOR UPDATE SKIP LOCKED`).Scan(&ids).Error; err != nil {
				return err
			}
			if len(ids) == 0 {
				return nil
			}
			var err error
			if closed, seats, err = CloseHold(tx, ids[0].ID, model.HoldExpired, true); err != nil || closed == nil {
				return err
			}
			lastHold, err = buyerHoldsNone(tx, closed.EventID, closed.BuyerID)
			return err
		})
		if err != nil {
			return n, err
		}
		if closed == nil {
			return n, nil
		}
		n++
		s.stock.Changed(ctx, t, closed.EventID, model.SeatStates(seats, model.SeatAvailable))
		s.expiredFor(ctx, t, closed, lastHold)
	}
	return n, nil
}

// Task types of the inventory.
const (
	// TaskHoldExpire expires one hold at its expires_at (queued with
	// asynq.ProcessAt and the unique id hold-expire:<tenant>:<hold>).
	TaskHoldExpire = "inventory:hold-expire"
	// TaskHoldSweep expires every lapsed hold of a tenant and sends the
	// refunds Stripe has not accepted yet, each minute.
	TaskHoldSweep = "inventory:hold-sweep"
	// TaskExpirySweep expires every lapsed hold of a tenant every few
	// seconds, so a hold whose own task was lost (the server died between
	// its commit and the enqueue, or a worker died running it) comes back
	// seconds late, not a minute.
	TaskExpirySweep = "inventory:expiry-sweep"
)

// scheduleExpiry queues one task expiring a batch's holds at their common
// expiry time (rounded up to the second Asynq keeps, so it never runs early).
func (s *Service) scheduleExpiry(ctx context.Context, t tenants.Tenant, holdIDs []uuid.UUID, at time.Time) {
	_, err := s.d.App.Jobs.Enqueue(ctx, t, TaskHoldExpire, HoldTask{HoldIDs: holdIDs},
		asynq.ProcessAt(jobs.DueAt(at)), asynq.TaskID("hold-expire:"+t.Slug+":"+holdIDs[0].String()),
		asynq.Queue(jobs.QueueCritical), asynq.Retention(time.Hour), asynq.MaxRetry(10))
	if err != nil {
		// The expiry sweeper returns them within seconds of their time anyway.
		s.d.App.Log.Warn("hold expiry not scheduled; the sweeper will catch it", "tenant", t.Slug, "holds", len(holdIDs), "err", err)
	}
}

// HoldTask names the holds one expiry task expires (hold_id: one hold, as
// queued before holds were batched).
type HoldTask struct {
	HoldID  uuid.UUID   `json:"hold_id,omitempty"`
	HoldIDs []uuid.UUID `json:"hold_ids,omitempty"`
}
