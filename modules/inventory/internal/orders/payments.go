package orders

import (
	"context"
	"errors"
	"fmt"
	"time"

	"marquee/app"
	"marquee/jobs"
	"marquee/modules/inventory/internal/catalogue"
	"marquee/modules/inventory/internal/holds"
	"marquee/modules/inventory/internal/model"
	"marquee/modules/inventory/internal/stock"
	"marquee/tenants"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/stripe/stripe-go/v76"
	"gorm.io/gorm"
)

// ticketCount writes a number of tickets as a person would.
func ticketCount(n int) string {
	if n == 1 {
		return "1 ticket"
	}
	return fmt.Sprintf("%d tickets", n)
}

// yourTickets is the subject of "... ready" in a buyer's e-mail.
func yourTickets(n int) string {
	if n == 1 {
		return "your ticket is"
	}
	return fmt.Sprintf("your %d tickets are", n)
}

// paymentMemo names the payment in a ledger memo: the event's payment
// intent, else the order's own; an order settled without one (a free or a
// demo order) says so rather than ending with an empty id.
func paymentMemo(paymentIntentID string, o model.Order) string {
	if paymentIntentID == "" && o.PaymentIntentID != nil {
		paymentIntentID = *o.PaymentIntentID
	}
	if paymentIntentID == "" {
		return "no payment intent"
	}
	return "payment " + paymentIntentID
}

// recordStripeEvent claims a Stripe event id: false means it was processed
// already (a concurrent duplicate waits on the key until the first commits).
func recordStripeEvent(tx *gorm.DB, id, typ string, orderID uuid.UUID) (bool, error) {
	res := tx.Exec(`INSERT INTO inv_stripe_events (id, type, order_id) VALUES (?, ?, ?) ON CONFLICT (id) DO NOTHING`, id, typ, orderID)
	return res.RowsAffected == 1, res.Error
}

// PaymentSucceeded marks an order paid, sells its hold and issues its
// tickets, exactly once per Stripe event and once per order. A payment that
// arrives after its hold lapsed re-sells the same seats if they are still
// free; otherwise the order is refunded automatically and the buyer told.
func (s *Service) PaymentSucceeded(ctx context.Context, t tenants.Tenant, stripeEventID, paymentIntentID string, amount int64, currency string, orderID uuid.UUID) (WebhookResult, error) {
	return s.paymentSucceeded(ctx, t, stripeEventID, paymentIntentID, amount, currency, orderID, "")
}

// paymentSucceeded is PaymentSucceeded with the fingerprint of the card
// that paid ("" when unknown or not checked).
func (s *Service) paymentSucceeded(ctx context.Context, t tenants.Tenant, stripeEventID, paymentIntentID string, amount int64, currency string, orderID uuid.UUID, card string) (WebhookResult, error) {
	var res WebhookResult
	began := time.Now()
	fast := false
	var err error
	if card == "" || s.cards == nil {
		// The common case in two round trips; anything else, untouched,
		// goes on below.
		res, fast, err = s.payFast(ctx, t, stripeEventID, paymentIntentID, amount, currency, orderID)
	}
	if !fast {
		err = s.paymentSucceededTx(ctx, t, stripeEventID, paymentIntentID, amount, currency, orderID, card, &res)
	}
	s.d.Observe(t, res.eventID, "pay", began, err)
	if err != nil {
		return WebhookResult{}, err
	}
	if fast {
		s.fastPaid.Add(1)
	} else {
		s.generalPaid.Add(1)
	}
	if res.mail != uuid.Nil {
		s.d.App.Mail.Dispatch(ctx, t, res.mail)
	}
	if res.Outcome == "paid" || res.Outcome == "resold" {
		s.stock.Changed(ctx, t, res.eventID, res.seats)
		// Trending lists count the sale (they rebuild from the tickets if
		// this is lost).
		s.d.App.TicketsSold(ctx, t, app.TicketSale{EventID: res.eventID, Quantity: res.Tickets, At: time.Now()})
		// Paid: the buyer is done, their waiting-room place goes to the next.
		s.d.BuyerDone(ctx, t, res.eventID, res.buyerID)
	}
	if res.changedEv {
		s.stock.Changed(ctx, t, res.eventID, res.seats)
	}
	if res.refund {
		s.sendRefund(ctx, t, orderID)
	}
	if res.review != "" {
		s.sendReviewRefund(ctx, t, res.review)
	}
	return res, nil
}

// paymentSucceededTx is the general path's transaction: every case.
func (s *Service) paymentSucceededTx(ctx context.Context, t tenants.Tenant, stripeEventID, paymentIntentID string, amount int64, currency string, orderID uuid.UUID, card string, out *WebhookResult) error {
	var res WebhookResult
	err := s.d.Tx(ctx, t, func(tx *gorm.DB) error {
		res = WebhookResult{EventID: stripeEventID, Type: "payment_intent.succeeded", OrderID: &orderID}
		fresh, err := recordStripeEvent(tx, stripeEventID, res.Type, orderID)
		if err != nil {
			return err
		}
		if !fresh {
			res.Outcome = "duplicate"
			return nil
		}
		o, err := ReadOrder(tx, orderID, true)
		if err != nil {
			res.Outcome = "ignored"
			return nil // an order we do not know: keep the event recorded, do nothing
		}
		res.eventID, res.buyerID = o.EventID, o.BuyerID
		if why := paymentMismatch(o, paymentIntentID, amount, currency); why != "" {
			// Not this order's payment: the order (paid or not) stays as it
			// is, and the money goes back on its own.
			s.d.App.Log.Error("stripe: payment does not match its order; recorded for review and refunded", "tenant", t.Slug, "order", o.ID, "reason", why)
			return s.reviewPayment(tx, stripeEventID, paymentIntentID, o.ID, amount, currency, why, &res)
		}
		if cancelled, err := catalogue.EventCancelled(tx, o.EventID); err != nil || cancelled {
			if err != nil || o.Status == model.OrderPaid || o.Status == model.OrderRefunded {
				res.Outcome = "duplicate"
				return err
			}
			return s.refundUnsellable(ctx, t, tx, o, paymentIntentID, cancellationReason, &res)
		}
		if s.resale != nil {
			// A hold that reserved a resale listing is settled by the resale
			// room, in this transaction.
			handled, outcome, refund, err := s.resale.SettlePayment(ctx, t, tx, o, paymentIntentID)
			switch {
			case err != nil:
				return err
			case handled && refund != "":
				return s.refundUnsellable(ctx, t, tx, o, paymentIntentID, refund, &res)
			case handled:
				res.Outcome = outcome
				return nil
			}
		}
		if card != "" && s.cards != nil && o.Status != model.OrderPaid && o.Status != model.OrderRefunded {
			refuse, err := s.cards.CheckCard(ctx, t, tx, o, card)
			if err != nil {
				return err
			}
			if refuse != "" {
				if err := s.refundUnsellable(ctx, t, tx, o, paymentIntentID, refuse, &res); err != nil {
					return err
				}
				closed, seats, err := holds.CloseHold(tx, o.HoldID, model.HoldReleased, false)
				if closed != nil {
					res.seats, res.changedEv = model.SeatStates(seats, model.SeatAvailable), true
				}
				return err
			}
		}
		// The conditional transition decides: only one payment event moves
		// an order to paid.
		// A cancelled order (closed when its hold ended) is paid late like
		// a failed one: honoured if its tickets are still free, else refunded.
		upd := tx.Exec(`UPDATE inv_orders SET status = 'paid', paid_at = now(), closed_at = NULL, payment_intent_id = coalesce(NULLIF(?, ''), payment_intent_id)
			WHERE id = ? AND status IN ('pending', 'failed', 'cancelled')`, paymentIntentID, o.ID)
		if upd.Error != nil {
			return upd.Error
		}
		if upd.RowsAffected == 0 {
			res.Outcome = "duplicate"
			return nil
		}
		var hs []model.HoldRow
		if err := tx.Raw(`UPDATE inv_holds SET status = 'sold', closed_at = now() WHERE id = ? AND status = 'active' RETURNING `+model.HoldCols, o.HoldID).Scan(&hs).Error; err != nil {
			return err
		}
		if len(hs) == 1 {
			seats, err := stock.SellHeldSeats(tx, hs[0].EventID, hs[0].ID, o.ID)
			if err != nil {
				return err
			}
			res.seats, res.Outcome = model.SeatStates(seats, model.SeatSold), "paid"
		} else {
			// The hold lapsed (or was released) before the money arrived:
			// take its seats and units again, straight into sold, if free.
			if err := tx.SavePoint("late_payment_retake").Error; err != nil {
				return err
			}
			seats, ok, err := sellLapsedHoldToOrder(tx, o)
			if err != nil {
				return err
			}
			if !ok {
				if err := tx.RollbackTo("late_payment_retake").Error; err != nil {
					return err
				}
				return s.refundUnsellable(ctx, t, tx, o, paymentIntentID, "your payment arrived after your hold expired and the tickets had been sold to someone else", &res)
			}
			res.seats, res.Outcome = model.SeatStates(seats, model.SeatSold), "resold"
			if err := tx.Exec(`UPDATE inv_orders SET note = 'paid after the hold expired; the same tickets were still free and were sold' WHERE id = ?`, o.ID).Error; err != nil {
				return err
			}
		}
		o.Status = model.OrderPaid
		if res.Tickets, err = s.tickets.Issue(ctx, t, tx, o); err != nil {
			return err
		}
		if res.mail, _, err = s.d.App.Mail.Queue(tx, s.ticketsMail(t, o, res.Tickets)); err != nil {
			return err
		}
		// Last before the commit, in the lock order of every inventory
		// transaction, the rows payments queue for: the counter shards the
		// hold's units came from (one batch's holds share a shard), the
		// buyer's counter, and the tenant's ledger. Taken earlier, each was
		// held through the rest of the transaction's round trips, and the
		// payments behind it waited for all of them.
		if res.Outcome == "paid" {
			if err := holds.SellHeld(tx, hs[0]); err != nil {
				return err
			}
		}
		_, err = s.d.App.Ledger.Append(tx, "ticket.sale", "order:"+o.ID.String(), o.AmountMinor, o.Currency,
			fmt.Sprintf("%s, event %s, %s", ticketCount(res.Tickets), o.EventID, paymentMemo(paymentIntentID, o)))
		return err
	})
	*out = res
	return err
}

// paymentMismatch says why a payment is not its order's, or "" when it is:
// another amount or currency, or another PaymentIntent than the one the
// order was given.
func paymentMismatch(o model.Order, paymentIntentID string, amount int64, currency string) string {
	switch {
	case amount != o.AmountMinor:
		return fmt.Sprintf("payment of %d differs from the order's amount %d", amount, o.AmountMinor)
	case currency != o.Currency:
		return fmt.Sprintf("payment in %s differs from the order's currency %s", currency, o.Currency)
	case paymentIntentID != "" && o.PaymentIntentID != nil && *o.PaymentIntentID != paymentIntentID:
		return "payment through another PaymentIntent than the order's"
	}
	return ""
}

// reviewPayment records a payment that does not match its order, once per
// PaymentIntent, with the money received and returned on the ledger; its
// refund goes to Stripe after the commit. The order is not touched.
func (s *Service) reviewPayment(tx *gorm.DB, stripeEventID, paymentIntentID string, orderID uuid.UUID, amount int64, currency, reason string, res *WebhookResult) error {
	res.Outcome = "review"
	if paymentIntentID == "" {
		return nil // nothing was charged through Stripe, so nothing to return
	}
	ins := tx.Exec(`INSERT INTO inv_payment_reviews (payment_intent_id, stripe_event_id, order_id, amount_minor, currency, reason)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (payment_intent_id) DO NOTHING`, paymentIntentID, stripeEventID, orderID, amount, currency, reason)
	if ins.Error != nil || ins.RowsAffected == 0 {
		return ins.Error // 0 rows: this payment is under review already
	}
	ref := "payment:" + paymentIntentID
	if _, err := s.d.App.Ledger.Append(tx, "payment.unmatched", ref, amount, currency, fmt.Sprintf("order %s: %s", orderID, reason)); err != nil {
		return err
	}
	if _, err := s.d.App.Ledger.Append(tx, "payment.unmatched_refund", ref, -amount, currency, "automatic refund of a payment under review"); err != nil {
		return err
	}
	res.review = paymentIntentID
	return nil
}

// sendReviewRefund sends a reviewed payment's refund to Stripe, or leaves it
// to the retrying refund task.
func (s *Service) sendReviewRefund(ctx context.Context, t tenants.Tenant, paymentIntentID string) {
	if err := s.SendReviewRefund(ctx, t, paymentIntentID); err != nil {
		s.d.App.Log.Warn("stripe: refund of a payment under review not sent yet; queued", "tenant", t.Slug, "err", StripeErrorSummary(err))
		_, qerr := s.d.App.Jobs.Enqueue(context.WithoutCancel(ctx), t, TaskRefund, RefundTask{PaymentIntentID: paymentIntentID},
			asynq.TaskID("refund:"+t.Slug+":"+paymentIntentID), asynq.Queue(jobs.QueueCritical), asynq.MaxRetry(25))
		if qerr != nil && !errors.Is(qerr, asynq.ErrTaskIDConflict) {
			s.d.App.Log.Error("refund task not queued; the sweeper retries it", "tenant", t.Slug, "err", qerr)
		}
	}
}

// SendReviewRefund refunds a payment under review through Stripe (the
// idempotency key is the payment's: it is refunded once) unless done.
func (s *Service) SendReviewRefund(ctx context.Context, t tenants.Tenant, paymentIntentID string) error {
	var rows []struct {
		Amount  int64     `gorm:"column:amount_minor"`
		OrderID uuid.UUID `gorm:"column:order_id"`
	}
	if err := s.d.Tx(ctx, t, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT amount_minor, order_id FROM inv_payment_reviews WHERE payment_intent_id = ? AND stripe_refund_id IS NULL`,
			paymentIntentID).Scan(&rows).Error
	}); err != nil || len(rows) == 0 {
		return err
	}
	refundID := "none"
	if rows[0].Amount > 0 {
		params := &stripe.RefundParams{PaymentIntent: stripe.String(paymentIntentID), Amount: stripe.Int64(rows[0].Amount)}
		params.Context = ctx
		params.SetIdempotencyKey("refund:payment:" + paymentIntentID)
		params.AddMetadata("tenant", t.Slug)
		params.AddMetadata("order_id", rows[0].OrderID.String())
		params.AddMetadata("reason", "payment under review")
		r, err := s.stripe.Refunds.New(params)
		if err != nil {
			return err
		}
		refundID = r.ID
	}
	return s.d.Tx(ctx, t, func(tx *gorm.DB) error {
		return tx.Exec(`UPDATE inv_payment_reviews SET stripe_refund_id = ?, refunded_at = now() WHERE payment_intent_id = ? AND stripe_refund_id IS NULL`,
			refundID, paymentIntentID).Error
	})
}

// refundUnsellable records a payment we cannot honour: the order is
// refunded, the money received and returned both go to the ledger, the
// buyer is told, and the Stripe refund is sent after the commit.
func (s *Service) refundUnsellable(ctx context.Context, t tenants.Tenant, tx *gorm.DB, o model.Order, paymentIntentID, reason string, res *WebhookResult) error {
	if err := tx.Exec(`UPDATE inv_orders SET status = 'refunded', closed_at = now(), note = ?,
			payment_intent_id = coalesce(NULLIF(?, ''), payment_intent_id) WHERE id = ?`, reason, paymentIntentID, o.ID).Error; err != nil {
		return err
	}
	if err := tx.Exec(`INSERT INTO inv_refunds (order_id, amount_minor, currency, reason) VALUES (?, ?, ?, ?) ON CONFLICT (order_id) DO NOTHING`,
		o.ID, o.AmountMinor, o.Currency, reason).Error; err != nil {
		return err
	}
	ref := "order:" + o.ID.String()
	if _, err := s.d.App.Ledger.Append(tx, "ticket.sale", ref, o.AmountMinor, o.Currency, "received before the automatic refund, "+paymentMemo(paymentIntentID, o)); err != nil {
		return err
	}
	if _, err := s.d.App.Ledger.Append(tx, "ticket.refund", ref, -o.AmountMinor, o.Currency, "automatic refund: "+reason); err != nil {
		return err
	}
	res.Outcome, res.refund = "refunded", true
	var err error
	res.mail, err = s.queueMail(tx, o, "refund", MailNotice, "Your payment is being refunded",
		fmt.Sprintf("Hello %s,\n\n%s. The full amount is being refunded to you; no tickets were issued.\n", o.Name, reason))
	return err
}

// PaymentFailed marks a pending order failed and releases its hold.
func (s *Service) PaymentFailed(ctx context.Context, t tenants.Tenant, stripeEventID, paymentIntentID string, orderID uuid.UUID) (WebhookResult, error) {
	var res WebhookResult
	err := s.d.Tx(ctx, t, func(tx *gorm.DB) error {
		res = WebhookResult{EventID: stripeEventID, Type: "payment_intent.payment_failed", OrderID: &orderID, Outcome: "ignored"}
		fresh, err := recordStripeEvent(tx, stripeEventID, res.Type, orderID)
		if err != nil || !fresh {
			if !fresh {
				res.Outcome = "duplicate"
			}
			return err
		}
		var os []model.Order
		if err := tx.Raw(`UPDATE inv_orders SET status = 'failed' WHERE id = ? AND status = 'pending' RETURNING `+model.OrderCols, orderID).Scan(&os).Error; err != nil {
			return err
		}
		if len(os) == 0 {
			return nil
		}
		res.Outcome, res.eventID = "failed", os[0].EventID
		closed, seats, err := holds.CloseHold(tx, os[0].HoldID, model.HoldReleased, false)
		if closed != nil {
			res.seats, res.changedEv = model.SeatStates(seats, model.SeatAvailable), true
		}
		return err
	})
	if err == nil && res.changedEv {
		s.stock.Changed(ctx, t, res.eventID, res.seats)
	}
	return res, err
}

// sellLapsedHoldToOrder is a late payment's re-take: it sells a lapsed
// hold's seats and units straight to its order when they are all still
// free (the same conditional updates as a hold, into sold). ok=false leaves
// partial work for the caller to roll back (to its savepoint).
func sellLapsedHoldToOrder(tx *gorm.DB, o model.Order) ([]string, bool, error) {
	var lines []struct {
		ZoneID   uuid.UUID `gorm:"column:zone_id"`
		SeatID   *string   `gorm:"column:seat_id"`
		Quantity int       `gorm:"column:quantity"`
	}
	if err := tx.Raw(`SELECT zone_id, seat_id, quantity FROM inv_hold_lines WHERE hold_id = ? ORDER BY line`, o.HoldID).Scan(&lines).Error; err != nil {
		return nil, false, err
	}
	var channel string
	if err := tx.Raw(`SELECT channel FROM inv_holds WHERE id = ?`, o.HoldID).Row().Scan(&channel); err != nil {
		return nil, false, err
	}
	var seatIDs []string
	total := 0
	for _, l := range lines {
		total += l.Quantity
		if l.SeatID != nil {
			seatIDs = append(seatIDs, *l.SeatID)
		}
	}
	var sold []string
	if len(seatIDs) > 0 {
		got, err := stock.SellFreeSeats(tx, o.EventID, o.ID, seatIDs)
		if err != nil {
			return nil, false, err
		}
		if len(got) != len(seatIDs) {
			return nil, false, nil
		}
		sold = append(sold, got...)
	}
	var allocs []stock.Alloc
	for _, l := range lines {
		if l.SeatID != nil {
			continue
		}
		var pool []struct {
			ID uuid.UUID `gorm:"column:id"`
		}
		if err := tx.Raw(`SELECT id FROM inv_counters WHERE kind = 'pool' AND zone_id = ?`, l.ZoneID).Scan(&pool).Error; err != nil || len(pool) == 0 {
			return nil, false, err
		}
		got, ok, _, err := stock.TakeUnits(tx, pool[0].ID, l.Quantity, stock.ColSold)
		if err != nil || !ok {
			return nil, false, err
		}
		allocs = append(allocs, got...)
	}
	var quota []struct {
		ID uuid.UUID `gorm:"column:id"`
	}
	if err := tx.Raw(`SELECT id FROM inv_counters WHERE event_id = ? AND kind = 'quota' AND channel = ?`, o.EventID, channel).Scan(&quota).Error; err != nil {
		return nil, false, err
	}
	if len(quota) == 1 {
		got, ok, _, err := stock.TakeUnits(tx, quota[0].ID, total, stock.ColSold)
		if err != nil || !ok {
			return nil, false, err
		}
		allocs = append(allocs, got...)
	}
	if err := stock.SaveAllocs(tx, o.HoldID, allocs); err != nil {
		return nil, false, err
	}
	if err := tx.Exec(`UPDATE inv_holds SET status = 'sold' WHERE id = ?`, o.HoldID).Error; err != nil {
		return nil, false, err
	}
	return sold, true, nil
}
