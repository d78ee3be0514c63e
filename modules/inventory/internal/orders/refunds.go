package orders

import (
	"context"
	"errors"
	"fmt"
	"marquee/app"
	"marquee/jobs"
	"marquee/modules/inventory/internal/model"
	"marquee/modules/inventory/internal/stock"
	"marquee/tenants"
	"strings"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/stripe/stripe-go/v76"
	"gorm.io/gorm"
)

// RefundOrder refunds a paid order: its tickets are voided, its seats and
// units go back on sale, a negative ledger entry is written, the buyer is
// told, and the money goes back through Stripe. Refunding twice changes
// nothing the second time.
func (s *Service) RefundOrder(ctx context.Context, t tenants.Tenant, orderID uuid.UUID, reason string) (model.Order, error) {
	reason = strings.TrimSpace(reason)
	if reason == "" {
		reason = "refunded by the venue"
	}
	if len(reason) > 500 {
		return model.Order{}, model.Invalid("reason", "reason must be at most 500 characters")
	}
	var o model.Order
	var seats []string
	err := s.d.Tx(ctx, t, func(tx *gorm.DB) error {
		var os []model.Order
		// An order refunded with its event's cancellation is that job's.
		if err := tx.Raw(`UPDATE inv_orders SET status = 'refunded', closed_at = now(), note = ? WHERE id = ? AND status = 'paid'
			AND NOT EXISTS (SELECT 1 FROM inv_cancellation_refunds r WHERE r.order_id = inv_orders.id) RETURNING `+model.OrderCols,
			reason, orderID).Scan(&os).Error; err != nil {
			return err
		}
		if len(os) == 0 {
			cur, err := ReadOrder(tx, orderID, false)
			if err != nil {
				return err
			}
			switch cur.Status {
			case model.OrderRefunded:
				o = cur
				return nil
			case model.OrderPaid:
				return app.Conflict("order_in_cancellation", "this order is being refunded with its event's cancellation")
			}
			return app.Conflict("order_not_paid", "only a paid order can be refunded (this one is %s)", cur.Status)
		}
		o = os[0]
		var err error
		seats, err = s.returnOrder(tx, o, reason, nil, "Your order was refunded",
			fmt.Sprintf("Hello %s,\n\nyour order was refunded (%s). Its tickets are no longer valid.\n", o.Name, reason))
		return err
	})
	if err != nil {
		return model.Order{}, err
	}
	if seats != nil || o.Status == model.OrderRefunded {
		s.stock.Changed(ctx, t, o.EventID, model.SeatStates(seats, model.SeatAvailable))
	}
	s.sendRefund(ctx, t, o.ID)
	s.EnqueueOutbox(ctx, t) // the buyer's notice
	return o, nil
}

// returnOrder undoes a refunded order (its status already set in tx): its
// tickets are voided, its seats and units go back, its refund is recorded
// (with Stripe's id when it was sent already), the buyer is told, and the
// ledger gets the negative entry — all in the caller's transaction.
func (s *Service) returnOrder(tx *gorm.DB, o model.Order, reason string, stripeRefundID *string, subject, body string) ([]string, error) {
	if err := tx.Exec(`UPDATE inv_tickets SET status = 'void', voided_at = now() WHERE order_id = ? AND status = 'valid'`, o.ID).Error; err != nil {
		return nil, err
	}
	// Tickets refunded one by one before went back already, with their money.
	partAmount, partTickets, err := partlyRefunded(tx, o.ID)
	if err != nil {
		return nil, err
	}
	amount := o.AmountMinor - partAmount
	seats, err := stock.ReturnSoldSeats(tx, o.EventID, o.ID)
	if err != nil {
		return nil, err
	}
	if err := tx.Exec(`INSERT INTO inv_refunds (order_id, amount_minor, currency, reason, stripe_refund_id) VALUES (?, ?, ?, ?, ?)`,
		o.ID, amount, o.Currency, reason, stripeRefundID).Error; err != nil {
		return nil, err
	}
	if _, err := s.queueMail(tx, o, "refund", MailNotice, subject, body); err != nil {
		return nil, err
	}
	// Shards, buyer counter, then the ledger, last: see PaymentSucceeded.
	if err := stock.MoveAllocs(tx, o.HoldID, stock.ReturnSold, true); err != nil {
		return nil, err
	}
	if err := tx.Exec(`UPDATE inv_buyer_counters SET units = greatest(units - ((SELECT quantity FROM inv_holds WHERE id = ?) - ?), 0)
		WHERE event_id = ? AND subject = ?`, o.HoldID, partTickets, o.EventID, "b:"+o.BuyerID).Error; err != nil {
		return nil, err
	}
	_, err = s.d.App.Ledger.Append(tx, "ticket.refund", "order:"+o.ID.String(), -amount, o.Currency, reason)
	return seats, err
}

// sendRefund sends a recorded refund to Stripe (idempotency key
// refund-<order>), or leaves it to the retrying refund task.
func (s *Service) sendRefund(ctx context.Context, t tenants.Tenant, orderID uuid.UUID) {
	if err := s.SendRefund(ctx, t, orderID); err != nil {
		s.d.App.Log.Warn("stripe: refund not sent yet; queued", "tenant", t.Slug, "order", orderID, "err", StripeErrorSummary(err))
		_, qerr := s.d.App.Jobs.Enqueue(context.WithoutCancel(ctx), t, TaskRefund, RefundTask{OrderID: orderID},
			asynq.TaskID("refund:"+t.Slug+":"+orderID.String()), asynq.Queue(jobs.QueueCritical), asynq.MaxRetry(25))
		if qerr != nil && !errors.Is(qerr, asynq.ErrTaskIDConflict) {
			s.d.App.Log.Error("refund task not queued; the sweeper retries it", "tenant", t.Slug, "order", orderID, "err", qerr)
		}
	}
}

// RefundTask names an order's refund, or a reviewed payment's.
type RefundTask struct {
	OrderID         uuid.UUID `json:"order_id,omitempty"`
	PaymentIntentID string    `json:"payment_intent_id,omitempty"`
}

// SendRefund sends an order's recorded refunds (per ticket, then whole) to
// Stripe if they were not sent.
func (s *Service) SendRefund(ctx context.Context, t tenants.Tenant, orderID uuid.UUID) error {
	if err := s.sendPartialRefunds(ctx, t, orderID); err != nil {
		return err
	}
	var rows []struct {
		Amount int64   `gorm:"column:amount_minor"`
		PI     *string `gorm:"column:payment_intent_id"`
	}
	if err := s.d.Tx(ctx, t, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT r.amount_minor, o.payment_intent_id FROM inv_refunds r JOIN inv_orders o ON o.id = r.order_id
			WHERE r.order_id = ? AND r.stripe_refund_id IS NULL`, orderID).Scan(&rows).Error
	}); err != nil || len(rows) == 0 {
		return err
	}
	if rows[0].PI == nil || rows[0].Amount == 0 {
		return s.d.Tx(ctx, t, func(tx *gorm.DB) error {
			return tx.Exec(`UPDATE inv_refunds SET stripe_refund_id = 'none' WHERE order_id = ? AND stripe_refund_id IS NULL`, orderID).Error
		})
	}
	params := &stripe.RefundParams{PaymentIntent: rows[0].PI, Amount: stripe.Int64(rows[0].Amount)}
	params.Context = ctx
	params.SetIdempotencyKey("refund-" + orderID.String())
	params.AddMetadata("tenant", t.Slug)
	params.AddMetadata("order_id", orderID.String())
	r, err := s.stripe.Refunds.New(params)
	if err != nil {
		return err
	}
	return s.d.Tx(ctx, t, func(tx *gorm.DB) error {
		return tx.Exec(`UPDATE inv_refunds SET stripe_refund_id = ? WHERE order_id = ? AND stripe_refund_id IS NULL`, r.ID, orderID).Error
	})
}

// PendingRefunds lists refunds not yet accepted by Stripe for a while.
func (s *Service) PendingRefunds(ctx context.Context, t tenants.Tenant) ([]uuid.UUID, error) {
	var rows []struct {
		OrderID uuid.UUID `gorm:"column:order_id"`
	}
	err := s.d.Tx(ctx, t, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT order_id FROM inv_refunds WHERE stripe_refund_id IS NULL AND created_at < now() - interval '1 minute'
			UNION SELECT order_id FROM inv_partial_refunds WHERE stripe_refund_id IS NULL AND created_at < now() - interval '1 minute' LIMIT 100`).Scan(&rows).Error
	})
	out := make([]uuid.UUID, len(rows))
	for i, r := range rows {
		out[i] = r.OrderID
	}
	return out, err
}

// PendingReviewRefunds lists payments under review whose refund Stripe has
// not accepted yet for a while.
func (s *Service) PendingReviewRefunds(ctx context.Context, t tenants.Tenant) ([]string, error) {
	var out []string
	err := s.d.Tx(ctx, t, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT payment_intent_id FROM inv_payment_reviews WHERE stripe_refund_id IS NULL AND created_at < now() - interval '1 minute'
			ORDER BY created_at LIMIT 100`).Scan(&out).Error
	})
	return out, err
}
