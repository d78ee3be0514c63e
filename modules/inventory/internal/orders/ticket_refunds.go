package orders

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/google/uuid"
	"github.com/stripe/stripe-go/v76"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/modules/inventory/internal/model"
	"marquee/tenants"
)

// MaxTicketsPerRefund bounds one partial refund (an order never holds more).
const MaxTicketsPerRefund = 100

// PartialRefund is money sent back for some tickets of an order.
type PartialRefund struct {
	ID          uuid.UUID   `json:"id"`
	OrderID     uuid.UUID   `json:"order_id"`
	AmountMinor int64       `json:"amount"`
	Currency    string      `json:"currency"`
	Reason      string      `json:"reason"`
	Tickets     []uuid.UUID `json:"tickets"`
}

// refundedTicket is a ticket voided by a partial refund, with what it cost.
type refundedTicket struct {
	ID     uuid.UUID `gorm:"column:id"`
	ZoneID uuid.UUID `gorm:"column:zone_id"`
	TierID uuid.UUID `gorm:"column:tier_id"`
	SeatID *string   `gorm:"column:seat_id"`
	Price  int64     `gorm:"-"`
}

// RefundTickets refunds some valid tickets of a paid order: they are voided
// (and so revoked at the door), their seats and units go back on sale, the
// money they cost (all-in unit price of their hold line) goes back through
// Stripe, the ledger gets the negative entry and the buyer is told. The
// order row is locked first, so two refunds of one order (per ticket or
// whole) serialise; a ticket already void or refunded refuses the whole
// request, and nothing changes. Once no valid ticket is left the order
// reads refunded.
func (s *Service) RefundTickets(ctx context.Context, t tenants.Tenant, orderID uuid.UUID, ticketIDs []uuid.UUID, reason string) (PartialRefund, error) {
	reason = strings.TrimSpace(reason)
	if reason == "" {
		reason = "refunded by the venue"
	}
	if len(reason) > 500 {
		return PartialRefund{}, model.Invalid("reason", "reason must be at most 500 characters")
	}
	ids := slices.Clone(ticketIDs)
	slices.SortFunc(ids, func(a, b uuid.UUID) int { return strings.Compare(a.String(), b.String()) })
	ids = slices.Compact(ids)
	if len(ids) == 0 || len(ids) > MaxTicketsPerRefund {
		return PartialRefund{}, model.Invalid("tickets", "choose 1 to %d tickets of the order to refund", MaxTicketsPerRefund)
	}
	out := PartialRefund{ID: uuid.Must(uuid.NewV7()), OrderID: orderID, Reason: reason, Tickets: ids}
	var o model.Order
	var seats []string
	err := s.d.Tx(ctx, t, func(tx *gorm.DB) error {
		seats = nil
		var err error
		// The order row first: every refund of this order waits here.
		if o, err = ReadOrder(tx, orderID, true); err != nil {
			return err
		}
		if o.Status != model.OrderPaid {
			return app.Conflict("order_not_paid", "only a paid order can be refunded (this one is %s)", o.Status)
		}
		var cancelling int64
		if err := tx.Raw(`SELECT count(*) FROM inv_cancellation_refunds WHERE order_id = ?`, o.ID).Scan(&cancelling).Error; err != nil {
			return err
		}
		if cancelling > 0 {
			return app.Conflict("order_in_cancellation", "this order is being refunded with its event's cancellation")
		}
		var hold struct {
			Channel string `gorm:"column:channel"`
		}
		if err := tx.Raw(`SELECT channel FROM inv_holds WHERE id = ?`, o.HoldID).Scan(&hold).Error; err != nil {
			return err
		}
		// Voiding is conditional: a ticket refunded (or re-issued) already
		// is not valid any more, and the whole request is refused.
		var got []refundedTicket
		if err := tx.Raw(`UPDATE inv_tickets SET status = 'void', voided_at = now() WHERE order_id = ? AND id IN ? AND status = 'valid'
			RETURNING id, zone_id, tier_id, seat_id`, o.ID, ids).Scan(&got).Error; err != nil {
			return err
		}
		if len(got) != len(ids) {
			return app.Conflict("refund_tickets_not_valid", "%d of the %d tickets are not valid tickets of this order any more (refunded, transferred or resold already); reload the order", len(ids)-len(got), len(ids))
		}
		for i := range got {
			if got[i].Price, err = ticketPrice(tx, o.HoldID, got[i]); err != nil {
				return err
			}
			out.AmountMinor += got[i].Price
		}
		// Seats by id (the global lock order), then pool shards, then quota shards.
		slices.SortFunc(got, func(a, b refundedTicket) int {
			return strings.Compare(seatOf(a), seatOf(b))
		})
		gaZones := map[uuid.UUID]int{}
		for _, k := range got {
			if k.SeatID == nil {
				gaZones[k.ZoneID]++
				continue
			}
			res := tx.Exec(`UPDATE inv_seats SET state = 'available', order_id = NULL WHERE event_id = ? AND id = ? AND state = 'sold' AND order_id = ?`,
				o.EventID, *k.SeatID, o.ID)
			if res.Error != nil {
				return res.Error
			}
			if res.RowsAffected != 1 {
				return app.Conflict("refund_ticket_resold", "seat %s is no longer this order's (resold); refund it from the order that holds it", *k.SeatID)
			}
			seats = append(seats, *k.SeatID)
		}
		if err := returnUnits(tx, o.HoldID, hold.Channel, gaZones, len(got)); err != nil {
			return err
		}
		if err := tx.Exec(`UPDATE inv_buyer_counters SET units = greatest(units - ?, 0) WHERE event_id = ? AND subject = ?`,
			len(got), o.EventID, "b:"+o.BuyerID).Error; err != nil {
			return err
		}
		out.Currency = o.Currency
		if err := tx.Exec(`INSERT INTO inv_partial_refunds (id, order_id, amount_minor, currency, reason) VALUES (?, ?, ?, ?, ?)`,
			out.ID, o.ID, out.AmountMinor, o.Currency, reason).Error; err != nil {
			return err
		}
		for _, k := range got {
			// The primary key: a ticket is refunded once, whatever happened above.
			if err := tx.Exec(`INSERT INTO inv_refunded_tickets (ticket_id, refund_id, amount_minor) VALUES (?, ?, ?)`, k.ID, out.ID, k.Price).Error; err != nil {
				return err
			}
		}
		var left int64
		if err := tx.Raw(`SELECT count(*) FROM inv_tickets WHERE order_id = ? AND status = 'valid'`, o.ID).Scan(&left).Error; err != nil {
			return err
		}
		if left == 0 {
			if err := tx.Exec(`UPDATE inv_orders SET status = 'refunded', closed_at = now(), note = ? WHERE id = ?`, reason, o.ID).Error; err != nil {
				return err
			}
		}
		money := app.FormatMoney(out.AmountMinor, o.Currency)
		if _, err := s.queueMail(tx, o, "refund-"+out.ID.String(), MailNotice, "Part of your order was refunded",
			fmt.Sprintf("Hello %s,\n\n%d ticket(s) of your order were refunded (%s, %s). They are no longer valid; your other tickets still are.\n",
				o.Name, len(got), money, reason)); err != nil {
			return err
		}
		_, err = s.d.App.Ledger.Append(tx, "ticket.refund", "order:"+o.ID.String(), -out.AmountMinor, o.Currency,
			fmt.Sprintf("%d ticket(s): %s", len(got), reason))
		return err
	})
	if err != nil {
		return PartialRefund{}, err
	}
	if len(seats) > 0 {
		s.stock.Changed(ctx, t, o.EventID, model.SeatStates(seats, model.SeatAvailable))
	}
	s.sendRefund(ctx, t, o.ID)
	s.EnqueueOutbox(ctx, t)
	return out, nil
}

// ticketPrice is what a ticket cost: the all-in unit price of its line in
// the order's hold (its seat's line, or its tier's GA line).
func ticketPrice(tx *gorm.DB, holdID uuid.UUID, k refundedTicket) (int64, error) {
	var prices []int64
	q := tx.Raw(`SELECT unit_price_minor FROM inv_hold_lines WHERE hold_id = ? AND tier_id = ? AND seat_id IS NULL ORDER BY line LIMIT 1`, holdID, k.TierID)
	if k.SeatID != nil {
		q = tx.Raw(`SELECT unit_price_minor FROM inv_hold_lines WHERE hold_id = ? AND seat_id = ? LIMIT 1`, holdID, *k.SeatID)
	}
	if err := q.Scan(&prices).Error; err != nil {
		return 0, err
	}
	if len(prices) == 0 {
		return 0, app.Conflict("refund_ticket_resold", "ticket %s was not bought with this order (resold to it); refund the whole order instead", k.ID)
	}
	return prices[0], nil
}

// returnUnits gives back the sold units of refunded tickets to the shards
// the order's hold took them from: one pool unit per GA ticket of each zone,
// one unit of the hold's channel quota per ticket; the hold's allocations
// shrink with them, so a later whole refund returns only the rest.
func returnUnits(tx *gorm.DB, holdID uuid.UUID, channel string, gaZones map[uuid.UUID]int, tickets int) error {
	var allocs []struct {
		CounterID uuid.UUID  `gorm:"column:counter_id"`
		Shard     int        `gorm:"column:shard"`
		Quantity  int        `gorm:"column:quantity"`
		Kind      string     `gorm:"column:kind"`
		ZoneID    *uuid.UUID `gorm:"column:zone_id"`
		Channel   *string    `gorm:"column:channel"`
	}
	if err := tx.Raw(`SELECT a.counter_id, a.shard, a.quantity, c.kind, c.zone_id, c.channel FROM inv_hold_allocs a JOIN inv_counters c ON c.id = a.counter_id
		WHERE a.hold_id = ? ORDER BY c.kind, a.counter_id, a.shard`, holdID).Scan(&allocs).Error; err != nil {
		return err
	}
	poolLeft := map[uuid.UUID]int{}
	for z, n := range gaZones {
		poolLeft[z] = n
	}
	quotaLeft := tickets
	for _, a := range allocs {
		var want *int
		switch {
		case a.Kind == "pool" && a.ZoneID != nil:
			need := poolLeft[*a.ZoneID]
			want = &need
		case a.Kind == "quota" && a.Channel != nil && *a.Channel == channel:
			want = &quotaLeft
		default:
			continue
		}
		n := min(*want, a.Quantity)
		if n == 0 {
			continue
		}
		if err := tx.Exec(`UPDATE inv_counter_shards SET sold = sold - ? WHERE counter_id = ? AND shard = ?`, n, a.CounterID, a.Shard).Error; err != nil {
			return err
		}
		q := `UPDATE inv_hold_allocs SET quantity = quantity - ? WHERE hold_id = ? AND counter_id = ? AND shard = ?`
		args := []any{n, holdID, a.CounterID, a.Shard}
		if n == a.Quantity {
			q, args = `DELETE FROM inv_hold_allocs WHERE hold_id = ? AND counter_id = ? AND shard = ?`, args[1:]
		}
		if err := tx.Exec(q, args...).Error; err != nil {
			return err
		}
		*want -= n
		if a.Kind == "pool" {
			poolLeft[*a.ZoneID] = *want
		}
	}
	return nil
}

// partlyRefunded is what partial refunds of an order sent back already.
func partlyRefunded(tx *gorm.DB, orderID uuid.UUID) (amount int64, tickets int, err error) {
	var row struct {
		Amount  int64 `gorm:"column:amount"`
		Tickets int   `gorm:"column:tickets"`
	}
	err = tx.Raw(`SELECT coalesce(sum(k.amount_minor), 0) AS amount, count(*) AS tickets FROM inv_refunded_tickets k
		JOIN inv_partial_refunds p ON p.id = k.refund_id WHERE p.order_id = ?`, orderID).Scan(&row).Error
	return row.Amount, row.Tickets, err
}

// sendPartialRefunds sends an order's partial refunds Stripe has not
// accepted yet (idempotency key refund-part-<id>).
func (s *Service) sendPartialRefunds(ctx context.Context, t tenants.Tenant, orderID uuid.UUID) error {
	var rows []struct {
		ID     uuid.UUID `gorm:"column:id"`
		Amount int64     `gorm:"column:amount_minor"`
		PI     *string   `gorm:"column:payment_intent_id"`
	}
	if err := s.d.Tx(ctx, t, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT p.id, p.amount_minor, o.payment_intent_id FROM inv_partial_refunds p JOIN inv_orders o ON o.id = p.order_id
			WHERE p.order_id = ? AND p.stripe_refund_id IS NULL ORDER BY p.created_at`, orderID).Scan(&rows).Error
	}); err != nil {
		return err
	}
	for _, r := range rows {
		sent := "none" // free tickets: nothing went through Stripe
		if r.PI != nil && r.Amount > 0 {
			params := &stripe.RefundParams{PaymentIntent: r.PI, Amount: stripe.Int64(r.Amount)}
			params.Context = ctx
			params.SetIdempotencyKey("refund-part-" + r.ID.String())
			params.AddMetadata("tenant", t.Slug)
			params.AddMetadata("order_id", orderID.String())
			params.AddMetadata("partial_refund_id", r.ID.String())
			got, err := s.stripe.Refunds.New(params)
			if err != nil {
				return err
			}
			sent = got.ID
		}
		if err := s.d.Tx(ctx, t, func(tx *gorm.DB) error {
			return tx.Exec(`UPDATE inv_partial_refunds SET stripe_refund_id = ? WHERE id = ? AND stripe_refund_id IS NULL`, sent, r.ID).Error
		}); err != nil {
			return err
		}
	}
	return nil
}

// PartialRefunds lists an order's partial refunds, oldest first.
func (s *Service) PartialRefunds(ctx context.Context, t tenants.Tenant, orderID uuid.UUID) ([]PartialRefund, error) {
	var rows []struct {
		ID       uuid.UUID `gorm:"column:id"`
		Amount   int64     `gorm:"column:amount_minor"`
		Currency string    `gorm:"column:currency"`
		Reason   string    `gorm:"column:reason"`
		Ticket   uuid.UUID `gorm:"column:ticket_id"`
	}
	err := s.d.Tx(ctx, t, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT p.id, p.amount_minor, p.currency, p.reason, k.ticket_id FROM inv_partial_refunds p
			JOIN inv_refunded_tickets k ON k.refund_id = p.id WHERE p.order_id = ? ORDER BY p.created_at, p.id, k.ticket_id`, orderID).Scan(&rows).Error
	})
	out := []PartialRefund{}
	for _, r := range rows {
		if len(out) == 0 || out[len(out)-1].ID != r.ID {
			out = append(out, PartialRefund{ID: r.ID, OrderID: orderID, AmountMinor: r.Amount, Currency: r.Currency, Reason: r.Reason})
		}
		out[len(out)-1].Tickets = append(out[len(out)-1].Tickets, r.Ticket)
	}
	return out, err
}

func seatOf(k refundedTicket) string {
	if k.SeatID == nil {
		return ""
	}
	return *k.SeatID
}
