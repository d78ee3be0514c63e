package orders

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"marquee/modules/inventory/internal/holds"
	"marquee/modules/inventory/internal/model"
	"marquee/modules/inventory/internal/tickets"
	"marquee/tenants"
)

// A payment's common case in two round trips: a fresh Stripe event for a
// pending order whose amount, currency and PaymentIntent match, whose event
// is not cancelled, whose hold is active and reserved no resale listing,
// with no card to check. The first round trip (BEGIN, scope, inv_pay_fast)
// decides and writes what needs deciding: the event recorded, the order
// paid, the hold and its seats sold. Go signs the tickets; the second round
// trip writes them, the mail, the counter shards and buyer counters, the
// ledger entry, and commits. The statements are those of the general path,
// in its lock order (the counter shards and the buyer's counter last). A
// payment that is not the common case is rolled back whole and settled by
// the general path.

// errNotFast says inv_pay_fast found the payment uncommon.
var errNotFast = errors.New("orders: not a payment's common case")

const payFastSQL = `SELECT o_fast, o_event, o_hold, o_buyer, o_email, o_name, o_amount, o_currency, o_intent, o_client_ip, o_device_id,
	o_ip_counted, o_seats, o_lines, o_kid, o_key, o_valid_from, o_valid_until FROM inv_pay_fast($1, $2, $3, $4, $5, $6)`

// payFastRow is inv_pay_fast's answer; all but fast are NULL when false.
type payFastRow struct {
	fast                  bool
	event, hold           *uuid.UUID
	buyer, email, name    *string
	amount                *int64
	currency, intent      *string
	clientIP, deviceID    *string
	ipCounted             *bool
	seats                 []string
	lines                 []byte
	kid                   *int
	key                   []byte
	validFrom, validUntil *time.Time
}

func (r *payFastRow) read(rows pgx.Rows) error {
	if !rows.Next() {
		return errors.New("inv_pay_fast answered no row")
	}
	return rows.Scan(&r.fast, &r.event, &r.hold, &r.buyer, &r.email, &r.name, &r.amount, &r.currency, &r.intent, &r.clientIP,
		&r.deviceID, &r.ipCounted, &r.seats, &r.lines, &r.kid, &r.key, &r.validFrom, &r.validUntil)
}

// payFast settles the payment if it is the common case: ok=false (and no
// write left behind) when it is not.
func (s *Service) payFast(ctx context.Context, t tenants.Tenant, stripeEventID, paymentIntentID string, amount int64, currency string, orderID uuid.UUID) (WebhookResult, bool, error) {
	var res WebhookResult
	err := s.d.PipedTx(ctx, t, func(p *tenants.Piped) error {
		res = WebhookResult{EventID: stripeEventID, Type: "payment_intent.succeeded", OrderID: &orderID}
		var r payFastRow
		if err := p.Send(false, tenants.Step{SQL: payFastSQL,
			Args: []any{stripeEventID, res.Type, orderID, paymentIntentID, amount, currency}, Read: r.read}); err != nil {
			return err
		}
		if !r.fast {
			return errNotFast
		}
		o := model.Order{ID: orderID, EventID: *r.event, HoldID: *r.hold, BuyerID: *r.buyer, Email: *r.email, Name: *r.name,
			AmountMinor: *r.amount, Currency: *r.currency, Status: model.OrderPaid, PaymentIntentID: r.intent}
		var lines []tickets.Line
		if err := json.Unmarshal(r.lines, &lines); err != nil {
			return err
		}
		var validity tickets.Validity
		if r.validFrom != nil {
			validity.From = *r.validFrom
		}
		if r.validUntil != nil {
			validity.Until = *r.validUntil
		}
		issue, n, err := s.tickets.IssueStep(t, o, *r.kid, r.key, validity, lines)
		if err != nil {
			return err
		}
		mail, err := s.d.App.Mail.QueueStep(s.ticketsMail(t, o, n), &res.mail)
		if err != nil {
			return err
		}
		h := model.HoldRow{ID: o.HoldID, EventID: o.EventID, BuyerID: o.BuyerID, ClientIP: *r.clientIP, DeviceID: *r.deviceID, IPCounted: *r.ipCounted}
		ledger, _, err := s.d.App.Ledger.AppendStep("ticket.sale", "order:"+o.ID.String(), o.AmountMinor, o.Currency,
			fmt.Sprintf("%s, event %s, %s", ticketCount(n), o.EventID, paymentMemo(paymentIntentID, o)))
		if err != nil {
			return err
		}
		res.Outcome, res.Tickets, res.eventID, res.buyerID = "paid", n, o.EventID, o.BuyerID
		res.seats = model.SeatStates(r.seats, model.SeatSold)
		return p.Send(true, issue, mail, holds.SellHeldStep(h), ledger)
	})
	if errors.Is(err, errNotFast) {
		return WebhookResult{}, false, nil
	}
	if err != nil {
		return WebhookResult{}, true, err
	}
	s.d.App.Ledger.Committed(t)
	return res, true, nil
}
