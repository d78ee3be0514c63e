package orders

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/stripe/stripe-go/v76"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/jobs"
	"marquee/modules/inventory/internal/holds"
	"marquee/modules/inventory/internal/model"
	"marquee/tenants"
)

// When the calendar cancels an event, what was sold for it is undone here:
//
//  1. in the calendar's cancelling transaction, EventCancelled writes the
//     event's inv_event_cancellations row: from its commit on, a payment
//     for the event is refunded instead of honoured, and the work below is
//     owed;
//  2. the TaskEventCancel job (also resumed by the sweeper every minute)
//     releases the event's open holds, closes its waiting room, then lists
//     every paid order in inv_cancellation_refunds and settles them one by
//     one, each through pending → refunding (claimed, committed) → Stripe
//     refund with idempotency key refund:<order> → refunded (tickets void,
//     inventory returned, refund and ledger entry written, buyer mailed,
//     in one transaction);
//  3. when no paid order, open hold or unsettled row is left, the
//     cancellation is done.
//
// A worker killed at any point resumes from the rows' states: an order
// claimed but not settled is sent to Stripe again under the same
// idempotency key, which Stripe answers with the refund it made the first
// time, so no order is refunded twice.

// Cancellations returns the inventory's side of app.EventCancellations.
func (s *Service) Cancellations() Cancellations { return Cancellations{s} }

// Task types of event cancellations and the outbox.
const (
	// TaskEventCancel settles one event's cancellation (task id
	// event-cancel:<tenant>:<event>); it runs until nothing is left.
	TaskEventCancel = "inventory:event-cancel"
	// TaskOutbox sends the mail waiting in the outbox.
	TaskOutbox = "inventory:outbox"
	// TaskRefund sends a recorded refund to Stripe until it succeeds.
	TaskRefund = "inventory:refund"
)

// CancelTask names the event a TaskEventCancel settles.
type CancelTask struct {
	EventID uuid.UUID `json:"event_id"`
}

// cancellationReason is what buyers and the ledger are told.
const cancellationReason = "the event was cancelled"

// Cancellations is the inventory's side of app.EventCancellations.
type Cancellations struct{ s *Service }

// CancellationImpact implements app.EventCancellations.
func (c Cancellations) CancellationImpact(ctx context.Context, t tenants.Tenant, eventIDs []uuid.UUID) (map[uuid.UUID]app.CancellationImpact, error) {
	var rows []struct {
		EventID uuid.UUID `gorm:"column:event_id"`
		Orders  int       `gorm:"column:orders"`
		Tickets int       `gorm:"column:tickets"`
	}
	err := c.s.d.Tx(ctx, t, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT o.event_id, count(DISTINCT o.id) AS orders, count(tk.id) AS tickets
			FROM inv_orders o LEFT JOIN inv_tickets tk ON tk.order_id = o.id AND tk.status = 'valid'
			WHERE o.event_id IN ? AND o.status = 'paid' GROUP BY o.event_id`, eventIDs).Scan(&rows).Error
	})
	out := make(map[uuid.UUID]app.CancellationImpact, len(rows))
	for _, r := range rows {
		out[r.EventID] = app.CancellationImpact{Orders: r.Orders, Tickets: r.Tickets}
	}
	return out, err
}

// EventCancelled implements app.EventCancellations: it records the
// cancellation in the calendar's transaction.
func (c Cancellations) EventCancelled(tx *gorm.DB, _ tenants.Tenant, eventID uuid.UUID) error {
	return tx.Exec(`INSERT INTO inv_event_cancellations (event_id) VALUES (?) ON CONFLICT (event_id) DO NOTHING`, eventID).Error
}

// StartCancellation implements app.EventCancellations.
func (c Cancellations) StartCancellation(ctx context.Context, t tenants.Tenant, eventID uuid.UUID) {
	c.s.catalogue.ForgetEvent(t, eventID) // holds see the cancelled status at once
	c.s.enqueueCancellation(ctx, t, eventID)
}

// enqueueCancellation queues the event's cancellation job unless it is
// queued or running already (its task id is the event's).
func (s *Service) enqueueCancellation(ctx context.Context, t tenants.Tenant, eventID uuid.UUID) {
	_, err := s.d.App.Jobs.Enqueue(context.WithoutCancel(ctx), t, TaskEventCancel, CancelTask{EventID: eventID},
		asynq.TaskID("event-cancel:"+t.Slug+":"+eventID.String()), asynq.Queue(jobs.QueueCritical), asynq.MaxRetry(25))
	if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		s.d.App.Log.Warn("event cancellation not queued; the sweeper resumes it", "tenant", t.Slug, "event", eventID, "err", err)
	}
}

// ResumeCancellations queues the job of every cancellation not done yet
// (the sweeper's part: a lost or killed job is picked up again).
func (s *Service) ResumeCancellations(ctx context.Context, t tenants.Tenant) (int, error) {
	var ids []uuid.UUID
	err := s.d.Tx(ctx, t, func(tx *gorm.DB) error {
		// A payment that slipped past a finished cancellation (it read the
		// event before the cancellation committed) reopens it.
		if err := tx.Exec(`UPDATE inv_event_cancellations c SET status = 'open', finished_at = NULL
			WHERE c.status = 'done' AND EXISTS (SELECT 1 FROM inv_orders o WHERE o.event_id = c.event_id AND o.status = 'paid')`).Error; err != nil {
			return err
		}
		return tx.Raw(`SELECT event_id FROM inv_event_cancellations WHERE status = 'open' ORDER BY created_at LIMIT 100`).Scan(&ids).Error
	})
	// One job per event at a time (its task id is the event's): two runs
	// at once could both send a refund that is in flight.
	for _, id := range ids {
		s.enqueueCancellation(ctx, t, id)
	}
	return len(ids), err
}

// SettleCancellation does what an event's cancellation owes, resuming
// from whatever a previous run left; it returns how many orders it refunded.
// It stops at the first error (the job is retried) or when ctx ends.
func (s *Service) SettleCancellation(ctx context.Context, t tenants.Tenant, eventID uuid.UUID) (int, error) {
	var status []string
	if err := s.d.Tx(ctx, t, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT status FROM inv_event_cancellations WHERE event_id = ?`, eventID).Scan(&status).Error
	}); err != nil {
		return 0, err
	}
	if len(status) == 0 {
		return 0, fmt.Errorf("%w: event %s is not cancelled", asynq.SkipRetry, eventID)
	}
	if status[0] == "done" {
		return 0, nil
	}
	refunded := 0
	// Orders whose refund failed in this run are passed over, so one refund
	// Stripe keeps refusing never holds up every other buyer's; the run then
	// ends with an error and the next one tries them again.
	var failed []uuid.UUID
	var firstErr error
	for {
		if err := s.stopSelling(ctx, t, eventID); err != nil {
			return refunded, err
		}
		for {
			if err := ctx.Err(); err != nil {
				return refunded, err
			}
			orderID, ok, err := s.nextCancellationRefund(ctx, t, eventID, failed)
			if err != nil || !ok {
				if err != nil {
					return refunded, err
				}
				break
			}
			if err := s.refundForCancellation(ctx, t, orderID); err != nil {
				s.d.App.Log.Warn("cancellation refund failed; the others go on", "tenant", t.Slug, "event", eventID, "order", orderID, "err", err)
				failed = append(failed, orderID)
				if firstErr == nil {
					firstErr = err
				}
				continue
			}
			refunded++
		}
		if len(failed) > 0 {
			return refunded, fmt.Errorf("%d refunds of the cancellation failed (retried with the job): %w", len(failed), firstErr)
		}
		done, err := s.finishCancellation(ctx, t, eventID)
		if err != nil || done {
			if done {
				s.stock.Changed(ctx, t, eventID, nil)
				s.d.App.Log.Info("event cancellation settled", "tenant", t.Slug, "event", eventID, "refunded", refunded)
			}
			return refunded, err
		}
	}
}

// stopSelling releases the event's open holds and closes its waiting room.
func (s *Service) stopSelling(ctx context.Context, t tenants.Tenant, eventID uuid.UUID) error {
	for {
		var closed *model.HoldRow
		var seats []string
		err := s.d.Tx(ctx, t, func(tx *gorm.DB) error {
			closed, seats = nil, nil
			var ids []uuid.UUID
			if err := tx.Raw(`SELECT id FROM inv_holds WHERE event_id = ? AND status = 'active' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED`, eventID).Scan(&ids).Error; err != nil || len(ids) == 0 {
				return err
			}
			var err error
			closed, seats, err = holds.CloseHold(tx, ids[0], model.HoldReleased, false)
			return err
		})
		if err != nil {
			return err
		}
		if closed == nil {
			break
		}
		s.stock.Changed(ctx, t, eventID, model.SeatStates(seats, model.SeatAvailable))
	}
	// The room's admission stops with it; its Redis state lapses by itself.
	return s.d.Tx(ctx, t, func(tx *gorm.DB) error {
		return tx.Exec(`UPDATE waiting_rooms SET enabled = false, updated_at = now() WHERE event_id = ? AND enabled`, eventID).Error
	})
}

// nextCancellationRefund lists the event's paid orders (those paid since
// the last look too) and returns one not refunded yet.
func (s *Service) nextCancellationRefund(ctx context.Context, t tenants.Tenant, eventID uuid.UUID, skip []uuid.UUID) (uuid.UUID, bool, error) {
	var ids []uuid.UUID
	err := s.d.Tx(ctx, t, func(tx *gorm.DB) error {
		if err := tx.Exec(`INSERT INTO inv_cancellation_refunds (order_id, event_id)
			SELECT id, event_id FROM inv_orders WHERE event_id = ? AND status = 'paid' ON CONFLICT (order_id) DO NOTHING`, eventID).Error; err != nil {
			return err
		}
		q, args := `SELECT order_id FROM inv_cancellation_refunds WHERE event_id = ? AND state <> 'refunded'`, []any{eventID}
		if len(skip) > 0 {
			q, args = q+` AND order_id NOT IN ?`, append(args, skip)
		}
		return tx.Raw(q+` ORDER BY order_id LIMIT 1`, args...).Scan(&ids).Error
	})
	if err != nil || len(ids) == 0 {
		return uuid.Nil, false, err
	}
	return ids[0], true, nil
}

// refundForCancellation settles one order of a cancelled event: claimed,
// refunded through Stripe (idempotency key refund:<order>), then undone in
// one transaction.
func (s *Service) refundForCancellation(ctx context.Context, t tenants.Tenant, orderID uuid.UUID) error {
	var o model.Order
	var settled bool
	var partAmount int64 // tickets refunded one by one before the cancellation
	err := s.d.Tx(ctx, t, func(tx *gorm.DB) error {
		settled = false
		var err error
		// The order row first (the lock order of every order path): a staff
		// refund of it either committed before (seen here) or sees this
		// claim and refuses.
		if o, err = ReadOrder(tx, orderID, true); err != nil {
			return err
		}
		if partAmount, _, err = partlyRefunded(tx, orderID); err != nil {
			return err
		}
		var state string
		if err := tx.Raw(`SELECT state FROM inv_cancellation_refunds WHERE order_id = ? FOR UPDATE`, orderID).Row().Scan(&state); err != nil {
			return err
		}
		switch {
		case state == "refunded":
			settled = true
			return nil
		case o.Status != model.OrderPaid:
			// Refunded some other way before the cancellation listed it.
			settled = true
			return tx.Exec(`UPDATE inv_cancellation_refunds SET state = 'refunded', stripe_refund_id = 'none', updated_at = now() WHERE order_id = ?`, orderID).Error
		}
		return tx.Exec(`UPDATE inv_cancellation_refunds SET state = 'refunding', attempts = attempts + 1, updated_at = now() WHERE order_id = ?`, orderID).Error
	})
	if err != nil || settled {
		return err
	}
	refundID := "none" // free orders: nothing went through Stripe
	if o.PaymentIntentID != nil && o.AmountMinor-partAmount > 0 {
		params := &stripe.RefundParams{PaymentIntent: o.PaymentIntentID, Amount: stripe.Int64(o.AmountMinor - partAmount)}
		params.Context = ctx
		params.SetIdempotencyKey("refund:" + o.ID.String())
		params.AddMetadata("tenant", t.Slug)
		params.AddMetadata("order_id", o.ID.String())
		params.AddMetadata("reason", "event cancelled")
		r, err := s.stripe.Refunds.New(params)
		if err != nil {
			return fmt.Errorf("refund of order %s: %s", o.ID, StripeErrorSummary(err))
		}
		refundID = r.ID
	}
	var seats []string
	err = s.d.Tx(ctx, t, func(tx *gorm.DB) error {
		seats = nil
		upd := tx.Raw(`UPDATE inv_orders SET status = 'refunded', closed_at = now(), note = ? WHERE id = ? AND status = 'paid' RETURNING `+model.OrderCols,
			cancellationReason, orderID)
		var os []model.Order
		if err := upd.Scan(&os).Error; err != nil {
			return err
		}
		if len(os) == 1 {
			var err error
			seats, err = s.returnOrder(tx, os[0], cancellationReason, &refundID, "Your event was cancelled",
				fmt.Sprintf("Hello %s,\n\nwe are sorry: the event was cancelled. Your order is refunded in full and its tickets are no longer valid.\n", os[0].Name))
			if err != nil {
				return err
			}
		}
		return tx.Exec(`UPDATE inv_cancellation_refunds SET state = 'refunded', stripe_refund_id = ?, updated_at = now() WHERE order_id = ? AND state = 'refunding'`,
			refundID, orderID).Error
	})
	if err == nil && len(seats) > 0 {
		s.stock.Changed(ctx, t, o.EventID, model.SeatStates(seats, model.SeatAvailable))
	}
	return err
}

// finishCancellation marks the cancellation done if nothing is left: no
// open hold, no paid order, no unsettled refund.
func (s *Service) finishCancellation(ctx context.Context, t tenants.Tenant, eventID uuid.UUID) (bool, error) {
	var done bool
	err := s.d.Tx(ctx, t, func(tx *gorm.DB) error {
		res := tx.Exec(`UPDATE inv_event_cancellations SET status = 'done', finished_at = now()
			WHERE event_id = ? AND status = 'open'
			AND NOT EXISTS (SELECT 1 FROM inv_holds WHERE event_id = ? AND status = 'active')
			AND NOT EXISTS (SELECT 1 FROM inv_orders WHERE event_id = ? AND status = 'paid')
			AND NOT EXISTS (SELECT 1 FROM inv_cancellation_refunds WHERE event_id = ? AND state <> 'refunded')`,
			eventID, eventID, eventID, eventID)
		done = res.RowsAffected == 1
		return res.Error
	})
	return done, err
}
