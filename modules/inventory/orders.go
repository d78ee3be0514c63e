package inventory

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/jobs"
	"marquee/tenants"
)

type orderRow = Order

const orderCols = `id, event_id, hold_id, buyer_id, email, name, amount_minor, currency, status, payment_intent_id, client_secret, created_at, paid_at, note`

// BuyerInfo is who an order's tickets are for.
type BuyerInfo struct {
	Email string `json:"email"`
	Name  string `json:"name"`
}

func (b *BuyerInfo) validate() error {
	b.Email, b.Name = strings.TrimSpace(b.Email), strings.TrimSpace(b.Name)
	addr, err := mail.ParseAddress(b.Email)
	if err != nil || addr.Address != b.Email || len(b.Email) > 254 {
		return invalid("email", "buyer email address is not valid")
	}
	if b.Name == "" || len(b.Name) > 200 {
		return invalid("name", "buyer name must be 1 to 200 characters")
	}
	return nil
}

func readOrder(tx *gorm.DB, id uuid.UUID, lock bool) (Order, error) {
	q := `SELECT ` + orderCols + ` FROM inv_orders WHERE id = ?`
	if lock {
		q += ` FOR UPDATE`
	}
	var os []Order
	if err := tx.Raw(q, id).Scan(&os).Error; err != nil {
		return Order{}, err
	}
	if len(os) == 0 {
		return Order{}, app.NotFound("order")
	}
	return os[0], nil
}

// CreateOrder turns a buyer's live hold into a pending order and gives it a
// Stripe PaymentIntent. One hold has one order (unique key): asking again
// returns the same order and the same PaymentIntent (Stripe idempotency key
// derived from the order id).
func (s *Service) CreateOrder(ctx context.Context, t tenants.Tenant, holdID uuid.UUID, buyerID string, b BuyerInfo) (Order, error) {
	return s.createOrder(ctx, t, holdID, buyerID, b, nil, true)
}

// CreateOrderOnce is CreateOrder under a request's Idempotency-Key, claimed
// in the order's own transaction: if the request dies after the order
// commits, the key is settled already, and a retry with it finishes the same
// order (its PaymentIntent) instead of waiting out a stale claim.
func (s *Service) CreateOrderOnce(ctx context.Context, t tenants.Tenant, holdID uuid.UUID, buyerID string, b BuyerInfo, key *app.IdempotencyKey) (Order, error) {
	return s.createOrder(ctx, t, holdID, buyerID, b, key, true)
}

// orderKeyed is what an order request's Idempotency-Key stores: the order,
// whose current state a retry answers with.
type orderKeyed struct {
	OrderID uuid.UUID `json:"order_id"`
}

var errOrderClosed = app.Gone("hold_expired", "this hold has expired or was released; hold the tickets again")

func (s *Service) createOrder(ctx context.Context, t tenants.Tenant, holdID uuid.UUID, buyerID string, b BuyerInfo, key *app.IdempotencyKey, withPayment bool) (Order, error) {
	if err := b.validate(); err != nil {
		return Order{}, err
	}
	var o Order
	err := s.tx(ctx, t, func(tx *gorm.DB) error {
		var keyed orderKeyed
		replayed, err := app.Once(tx, key, &keyed, func() error {
			var err error
			o, err = s.openOrder(tx, holdID, buyerID, b)
			keyed.OrderID = o.ID
			return err
		})
		if err != nil || !replayed {
			return err
		}
		o, err = readOrder(tx, keyed.OrderID, false)
		return err
	})
	if err != nil {
		return Order{}, err
	}
	if f := s.afterOrderCommit.Load(); f != nil {
		(*f)(o.ID)
	}
	if o.Status == OrderCancelled {
		return Order{}, errOrderClosed
	}
	if o.Status != OrderPending || o.PaymentIntentID != nil || !withPayment {
		return o, nil
	}
	if o.AmountMinor == 0 {
		// Free tickets: nothing to charge, the order is paid now.
		if _, err := s.PaymentSucceeded(ctx, t, "free-"+o.ID.String(), "", 0, o.Currency, o.ID); err != nil {
			return Order{}, err
		}
		return s.Order(ctx, t, o.ID)
	}
	return s.attachPaymentIntent(ctx, t, o)
}

// openOrder returns the hold's order, inserting it (pending) if the hold is
// live and has none yet.
func (s *Service) openOrder(tx *gorm.DB, holdID uuid.UUID, buyerID string, b BuyerInfo) (Order, error) {
	var hs []holdRow
	if err := tx.Raw(`SELECT `+holdCols+` FROM inv_holds WHERE id = ? FOR UPDATE`, holdID).Scan(&hs).Error; err != nil {
		return Order{}, err
	}
	if len(hs) == 0 || hs[0].BuyerID != buyerID {
		return Order{}, app.NotFound("hold")
	}
	h := hs[0]
	existing, err := readOrderByHold(tx, holdID)
	if err != nil || existing != nil {
		if existing != nil {
			return *existing, nil
		}
		return Order{}, err
	}
	if h.Status != HoldActive || !h.ExpiresAt.After(time.Now()) {
		return Order{}, errOrderClosed
	}
	o := Order{ID: uuid.Must(uuid.NewV7()), EventID: h.EventID, HoldID: h.ID, BuyerID: buyerID, Email: b.Email, Name: b.Name,
		AmountMinor: h.AmountMinor, Currency: h.Currency, Status: OrderPending}
	err = tx.Raw(`INSERT INTO inv_orders (id, event_id, hold_id, buyer_id, email, name, amount_minor, currency, status)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending') RETURNING created_at`,
		o.ID, o.EventID, o.HoldID, o.BuyerID, o.Email, o.Name, o.AmountMinor, o.Currency).Row().Scan(&o.CreatedAt)
	return o, err
}

func readOrderByHold(tx *gorm.DB, holdID uuid.UUID) (*Order, error) {
	var os []Order
	if err := tx.Raw(`SELECT `+orderCols+` FROM inv_orders WHERE hold_id = ?`, holdID).Scan(&os).Error; err != nil || len(os) == 0 {
		return nil, err
	}
	return &os[0], nil
}

// attachPaymentIntent creates the order's PaymentIntent (outside any
// transaction: no lock is held across a network call) and stores it once.
func (s *Service) attachPaymentIntent(ctx context.Context, t tenants.Tenant, o Order) (Order, error) {
	params := &stripe.PaymentIntentParams{
		Amount:                  stripe.Int64(o.AmountMinor),
		Currency:                stripe.String(strings.ToLower(o.Currency)),
		Description:             stripe.String("Tickets, order " + o.ID.String()),
		ReceiptEmail:            stripe.String(o.Email),
		AutomaticPaymentMethods: &stripe.PaymentIntentAutomaticPaymentMethodsParams{Enabled: stripe.Bool(true)},
	}
	params.Context = ctx
	params.SetIdempotencyKey("order-" + o.ID.String() + "-intent")
	params.AddMetadata("tenant", t.Slug)
	params.AddMetadata("order_id", o.ID.String())
	params.AddMetadata("event_id", o.EventID.String())
	pi, err := s.stripe.PaymentIntents.New(params)
	if err != nil {
		s.app.Log.Warn("stripe: payment intent not created", "tenant", t.Slug, "order", o.ID, "err", stripeErrorSummary(err))
		return Order{}, app.Upstream("payment_provider_unavailable", 2*time.Second, "the payment provider did not answer; retry the same request")
	}
	err = s.tx(ctx, t, func(tx *gorm.DB) error {
		// Only a pending order takes it: one closed meanwhile (its hold
		// ended) is not to be paid.
		if err := tx.Exec(`UPDATE inv_orders SET payment_intent_id = ?, client_secret = ? WHERE id = ? AND payment_intent_id IS NULL AND status = 'pending'`,
			pi.ID, pi.ClientSecret, o.ID).Error; err != nil {
			return err
		}
		var err error
		o, err = readOrder(tx, o.ID, false)
		return err
	})
	if err == nil && o.PaymentIntentID == nil {
		return Order{}, errOrderClosed
	}
	return o, err
}

// stripeErrorSummary describes a Stripe error without anything secret.
func stripeErrorSummary(err error) string {
	var se *stripe.Error
	if errors.As(err, &se) {
		return fmt.Sprintf("%s %s (HTTP %d)", se.Type, se.Code, se.HTTPStatusCode)
	}
	return err.Error()
}

// Order reads an order.
func (s *Service) Order(ctx context.Context, t tenants.Tenant, id uuid.UUID) (Order, error) {
	var o Order
	err := s.tx(ctx, t, func(tx *gorm.DB) error {
		var err error
		o, err = readOrder(tx, id, false)
		return err
	})
	return o, err
}

// Tickets lists an order's tickets.
func (s *Service) Tickets(ctx context.Context, t tenants.Tenant, orderID uuid.UUID) ([]Ticket, error) {
	out := []Ticket{}
	err := s.tx(ctx, t, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT id, order_id, event_id, zone_id, zone_name, tier_id, tier_name, seat_id, holder_name, holder_email, status, token, issued_at
			FROM inv_tickets WHERE order_id = ? ORDER BY seat_id NULLS LAST, issued_at, id`, orderID).Scan(&out).Error
	})
	return out, err
}

// WebhookResult says what a Stripe event did.
type WebhookResult struct {
	EventID   string     `json:"event_id"`
	Type      string     `json:"type"`
	Outcome   string     `json:"outcome"` // paid, resold, refunded, review, failed, duplicate, ignored
	OrderID   *uuid.UUID `json:"order_id,omitempty"`
	Tickets   int        `json:"tickets,omitempty"`
	seats     []SeatState
	eventID   uuid.UUID
	refund    bool
	review    string // a payment recorded for review, to refund after the commit
	changedEv bool
	buyerID   string
}

// HandleWebhook verifies a Stripe webhook delivered to a chain's own host
// (the per-chain route, deprecated for the platform's one). The
// PaymentIntent's metadata names the tenant and the order; a tenant other
// than the one the delivery came to is refused.
func (s *Service) HandleWebhook(ctx context.Context, t tenants.Tenant, payload []byte, signature string) (WebhookResult, error) {
	evt, err := s.verifyEvent(payload, signature)
	if err != nil {
		return WebhookResult{}, err
	}
	res := WebhookResult{EventID: evt.ID, Type: string(evt.Type), Outcome: "ignored"}
	if !paymentEvent(evt) {
		return res, nil
	}
	var pi stripe.PaymentIntent
	if evt.Data == nil || json.Unmarshal(evt.Data.Raw, &pi) != nil {
		return res, app.Invalid("invalid_event", "the event carries no PaymentIntent")
	}
	if pi.Metadata["tenant"] != t.Slug {
		return res, app.Invalid("tenant_mismatch", "this payment belongs to another chain")
	}
	return s.settlePayment(ctx, t, evt, pi)
}

// HandlePlatformWebhook verifies a Stripe webhook delivered to the
// platform's one endpoint and routes it to the chain named in the metadata
// the platform gave the PaymentIntent, once that chain is shown to hold it:
// the order exists in the chain's schema with this PaymentIntent. Anything
// else (another kind of object, a missing, malformed or unknown chain, an
// order that is not there or not this intent's) is answered "ignored"
// without touching any chain, so Stripe stops delivering it. A suspended
// chain's payments are still settled: they were started before.
func (s *Service) HandlePlatformWebhook(ctx context.Context, payload []byte, signature string) (WebhookResult, error) {
	evt, err := s.verifyEvent(payload, signature)
	if err != nil {
		return WebhookResult{}, err
	}
	res := WebhookResult{EventID: evt.ID, Type: string(evt.Type), Outcome: "ignored"}
	if !paymentEvent(evt) {
		return res, nil
	}
	var pi stripe.PaymentIntent
	if evt.Data == nil || json.Unmarshal(evt.Data.Raw, &pi) != nil || pi.ID == "" {
		s.app.Log.Warn("stripe: event without a PaymentIntent ignored", "event", evt.ID, "type", evt.Type)
		return res, nil
	}
	slug, rawOrder := pi.Metadata["tenant"], pi.Metadata["order_id"]
	if slug == "" && rawOrder == "" {
		return res, nil // not a payment the platform started for an order
	}
	ignore := func(why string) (WebhookResult, error) {
		s.app.Log.Warn("stripe: event ignored", "event", evt.ID, "type", evt.Type, "payment_intent", pi.ID, "reason", why)
		return res, nil
	}
	orderID, err := uuid.Parse(rawOrder)
	if err != nil {
		return ignore("malformed order in metadata")
	}
	if tenants.ValidateSlug(slug) != nil {
		return ignore("malformed chain in metadata")
	}
	t, err := s.app.Tenants.Lookup(ctx, slug)
	switch {
	case errors.Is(err, tenants.ErrNotFound):
		return ignore("unknown chain " + slug)
	case err != nil:
		return WebhookResult{}, err // the registry is unreachable: Stripe retries
	case t.Status != tenants.StatusActive && t.Status != tenants.StatusSuspended:
		return ignore("chain " + slug + " is not serving")
	}
	held, err := s.holdsPaymentIntent(ctx, t, orderID, pi.ID)
	if err != nil {
		return WebhookResult{}, err
	}
	if !held {
		// Metadata naming one chain on another's intent (or on none) is a
		// forgery or a bug: it must touch neither chain.
		s.app.Log.Error("stripe: event names a chain that does not hold its PaymentIntent; ignored",
			"event", evt.ID, "type", evt.Type, "payment_intent", pi.ID, "tenant", slug, "order", orderID)
		return res, nil
	}
	return s.settlePayment(ctx, t, evt, pi)
}

// verifyEvent checks a delivery's Stripe signature with the platform's
// webhook secret before anything in it is believed.
func (s *Service) verifyEvent(payload []byte, signature string) (stripe.Event, error) {
	evt, err := webhook.ConstructEventWithOptions(payload, signature, s.app.Config.StripeWebhookSecret, webhook.ConstructEventOptions{})
	if err != nil {
		return stripe.Event{}, app.Invalid("invalid_signature", "the Stripe signature does not verify")
	}
	return evt, nil
}

// paymentEvent says whether an event is one the inventory acts on.
func paymentEvent(evt stripe.Event) bool {
	return evt.Type == "payment_intent.succeeded" || evt.Type == "payment_intent.payment_failed"
}

// holdsPaymentIntent reports whether the order exists in the chain's schema
// with this PaymentIntent. An order's intent is only ever set where it was
// empty or already equal, so a yes cannot turn into a no before the event
// is settled in its own transaction.
func (s *Service) holdsPaymentIntent(ctx context.Context, t tenants.Tenant, orderID uuid.UUID, paymentIntentID string) (bool, error) {
	var n int64
	err := s.tx(ctx, t, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT count(*) FROM inv_orders WHERE id = ? AND payment_intent_id = ?`, orderID, paymentIntentID).Row().Scan(&n)
	})
	return n == 1, err
}

// settlePayment acts on a verified payment event of the chain t: the one
// place both webhook routes settle an order, idempotent by Stripe event id.
func (s *Service) settlePayment(ctx context.Context, t tenants.Tenant, evt stripe.Event, pi stripe.PaymentIntent) (WebhookResult, error) {
	orderID, err := uuid.Parse(pi.Metadata["order_id"])
	if err != nil {
		return WebhookResult{EventID: evt.ID, Type: string(evt.Type), Outcome: "ignored"}, nil
	}
	if evt.Type == "payment_intent.succeeded" {
		return s.PaymentSucceeded(ctx, t, evt.ID, pi.ID, pi.Amount, strings.ToUpper(string(pi.Currency)), orderID)
	}
	return s.PaymentFailed(ctx, t, evt.ID, pi.ID, orderID)
}

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
func paymentMemo(paymentIntentID string, o Order) string {
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
	var res WebhookResult
	err := s.tx(ctx, t, func(tx *gorm.DB) error {
		res = WebhookResult{EventID: stripeEventID, Type: "payment_intent.succeeded", OrderID: &orderID}
		fresh, err := recordStripeEvent(tx, stripeEventID, res.Type, orderID)
		if err != nil {
			return err
		}
		if !fresh {
			res.Outcome = "duplicate"
			return nil
		}
		o, err := readOrder(tx, orderID, true)
		if err != nil {
			res.Outcome = "ignored"
			return nil // an order we do not know: keep the event recorded, do nothing
		}
		res.eventID, res.buyerID = o.EventID, o.BuyerID
		if why := paymentMismatch(o, paymentIntentID, amount, currency); why != "" {
			// Not this order's payment: the order (paid or not) stays as it
			// is, and the money goes back on its own.
			s.app.Log.Error("stripe: payment does not match its order; recorded for review and refunded", "tenant", t.Slug, "order", o.ID, "reason", why)
			return s.reviewPayment(tx, stripeEventID, paymentIntentID, o.ID, amount, currency, why, &res)
		}
		if cancelled, err := eventCancelled(tx, o.EventID); err != nil || cancelled {
			if err != nil || o.Status == OrderPaid || o.Status == OrderRefunded {
				res.Outcome = "duplicate"
				return err
			}
			return s.refundUnsellable(ctx, t, tx, o, paymentIntentID, cancellationReason, &res)
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
		var hs []holdRow
		if err := tx.Raw(`UPDATE inv_holds SET status = 'sold', closed_at = now() WHERE id = ? AND status = 'active' RETURNING `+holdCols, o.HoldID).Scan(&hs).Error; err != nil {
			return err
		}
		if len(hs) == 1 {
			seats, err := sellHeldInventory(tx, hs[0], o.ID)
			if err != nil {
				return err
			}
			res.seats, res.Outcome = seatStates(seats, SeatSold), "paid"
		} else {
			// The hold lapsed (or was released) before the money arrived.
			if err := tx.SavePoint("resell").Error; err != nil {
				return err
			}
			seats, ok, err := resell(tx, o)
			if err != nil {
				return err
			}
			if !ok {
				if err := tx.RollbackTo("resell").Error; err != nil {
					return err
				}
				return s.refundUnsellable(ctx, t, tx, o, paymentIntentID, "your payment arrived after your hold expired and the tickets had been sold to someone else", &res)
			}
			res.seats, res.Outcome = seatStates(seats, SeatSold), "resold"
			if err := tx.Exec(`UPDATE inv_orders SET note = 'paid after the hold expired; the same tickets were still free and were sold' WHERE id = ?`, o.ID).Error; err != nil {
				return err
			}
		}
		o.Status = OrderPaid
		if res.Tickets, err = s.issueTickets(ctx, t, tx, o); err != nil {
			return err
		}
		link := s.OrderPath(t, o.ID)
		if err := outbox(tx, o, "Your tickets", fmt.Sprintf("Hello %s,\n\nyour payment was received and %s ready:\n%s\n", o.Name, yourTickets(res.Tickets), link)); err != nil {
			return err
		}
		// Last before the commit, in the lock order of every inventory
		// transaction, the rows payments queue for: the counter shards the
		// hold's units came from (one batch's holds share a shard), the
		// buyer's counter, and the tenant's ledger. Taken earlier, each was
		// held through the rest of the transaction's round trips, and the
		// payments behind it waited for all of them.
		if res.Outcome == "paid" {
			if err := moveAllocs(tx, o.HoldID, sellHeld, false); err != nil {
				return err
			}
			if err := releaseBuyer(tx, hs[0], false); err != nil {
				return err
			}
		}
		_, err = s.app.Ledger.Append(tx, "ticket.sale", "order:"+o.ID.String(), o.AmountMinor, o.Currency,
			fmt.Sprintf("%s, event %s, %s", ticketCount(res.Tickets), o.EventID, paymentMemo(paymentIntentID, o)))
		return err
	})
	if err != nil {
		return WebhookResult{}, err
	}
	if res.Outcome == "paid" || res.Outcome == "resold" {
		s.changed(ctx, t, res.eventID, res.seats)
		// Paid: the buyer is done, their waiting-room place goes to the next.
		s.buyerDone(ctx, t, res.eventID, res.buyerID)
	}
	if res.refund {
		s.sendRefund(ctx, t, orderID)
	}
	if res.review != "" {
		s.sendReviewRefund(ctx, t, res.review)
	}
	return res, nil
}

// paymentMismatch says why a payment is not its order's, or "" when it is:
// another amount or currency, or another PaymentIntent than the one the
// order was given.
func paymentMismatch(o Order, paymentIntentID string, amount int64, currency string) string {
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
	if _, err := s.app.Ledger.Append(tx, "payment.unmatched", ref, amount, currency, fmt.Sprintf("order %s: %s", orderID, reason)); err != nil {
		return err
	}
	if _, err := s.app.Ledger.Append(tx, "payment.unmatched_refund", ref, -amount, currency, "automatic refund of a payment under review"); err != nil {
		return err
	}
	res.review = paymentIntentID
	return nil
}

// sendReviewRefund sends a reviewed payment's refund to Stripe, or leaves it
// to the retrying refund task.
func (s *Service) sendReviewRefund(ctx context.Context, t tenants.Tenant, paymentIntentID string) {
	if err := s.SendReviewRefund(ctx, t, paymentIntentID); err != nil {
		s.app.Log.Warn("stripe: refund of a payment under review not sent yet; queued", "tenant", t.Slug, "err", stripeErrorSummary(err))
		_, qerr := s.app.Jobs.Enqueue(context.WithoutCancel(ctx), t, TaskRefund, refundTask{PaymentIntentID: paymentIntentID},
			asynq.TaskID("refund:"+t.Slug+":"+paymentIntentID), asynq.Queue(jobs.QueueCritical), asynq.MaxRetry(25))
		if qerr != nil && !errors.Is(qerr, asynq.ErrTaskIDConflict) {
			s.app.Log.Error("refund task not queued; the sweeper retries it", "tenant", t.Slug, "err", qerr)
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
	if err := s.tx(ctx, t, func(tx *gorm.DB) error {
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
	return s.tx(ctx, t, func(tx *gorm.DB) error {
		return tx.Exec(`UPDATE inv_payment_reviews SET stripe_refund_id = ?, refunded_at = now() WHERE payment_intent_id = ? AND stripe_refund_id IS NULL`,
			refundID, paymentIntentID).Error
	})
}

// sellHeldInventory turns a sold hold's held seats into sold ones (its units
// on the counters and its buyer's counter are the caller's, last).
func sellHeldInventory(tx *gorm.DB, h holdRow, orderID uuid.UUID) ([]string, error) {
	var seats []struct {
		ID string `gorm:"column:id"`
	}
	if err := tx.Raw(`UPDATE inv_seats s SET state = 'sold', order_id = ?, hold_id = NULL
		FROM (SELECT id FROM inv_seats WHERE event_id = ? AND hold_id = ? ORDER BY id FOR UPDATE) l
		WHERE s.event_id = ? AND s.id = l.id AND s.state = 'held' AND s.hold_id = ?
		RETURNING s.id`, orderID, h.EventID, h.ID, h.EventID, h.ID).Scan(&seats).Error; err != nil {
		return nil, err
	}
	var want int64
	if err := tx.Raw(`SELECT count(*) FROM inv_hold_lines WHERE hold_id = ? AND seat_id IS NOT NULL`, h.ID).Row().Scan(&want); err != nil {
		return nil, err
	}
	if int64(len(seats)) != want {
		return nil, fmt.Errorf("hold %s held %d of its %d seats", h.ID, len(seats), want)
	}
	ids := make([]string, len(seats))
	for i, s := range seats {
		ids[i] = s.ID
	}
	return ids, nil
}

// resell sells a lapsed hold's seats and units straight to its order when
// they are all still free (the same conditional updates as a hold, into
// sold). ok=false leaves partial work for the caller to roll back.
func resell(tx *gorm.DB, o Order) ([]string, bool, error) {
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
		var got []struct {
			ID string `gorm:"column:id"`
		}
		if err := tx.Raw(`UPDATE inv_seats s SET state = 'sold', order_id = ?
			FROM (SELECT id FROM inv_seats WHERE event_id = ? AND id IN ? AND state = 'available' ORDER BY id FOR UPDATE) l
			WHERE s.event_id = ? AND s.id = l.id AND s.state = 'available'
			RETURNING s.id`, o.ID, o.EventID, seatIDs, o.EventID).Scan(&got).Error; err != nil {
			return nil, false, err
		}
		if len(got) != len(seatIDs) {
			return nil, false, nil
		}
		for _, g := range got {
			sold = append(sold, g.ID)
		}
	}
	var allocs []alloc
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
		got, ok, _, err := take(tx, pool[0].ID, l.Quantity, colSold)
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
		got, ok, _, err := take(tx, quota[0].ID, total, colSold)
		if err != nil || !ok {
			return nil, false, err
		}
		allocs = append(allocs, got...)
	}
	if err := saveAllocs(tx, o.HoldID, allocs); err != nil {
		return nil, false, err
	}
	if err := tx.Exec(`UPDATE inv_holds SET status = 'sold' WHERE id = ?`, o.HoldID).Error; err != nil {
		return nil, false, err
	}
	return sold, true, nil
}

// refundUnsellable records a payment we cannot honour: the order is
// refunded, the money received and returned both go to the ledger, the
// buyer is told, and the Stripe refund is sent after the commit.
func (s *Service) refundUnsellable(ctx context.Context, t tenants.Tenant, tx *gorm.DB, o Order, paymentIntentID, reason string, res *WebhookResult) error {
	if err := tx.Exec(`UPDATE inv_orders SET status = 'refunded', closed_at = now(), note = ?,
			payment_intent_id = coalesce(NULLIF(?, ''), payment_intent_id) WHERE id = ?`, reason, paymentIntentID, o.ID).Error; err != nil {
		return err
	}
	if err := tx.Exec(`INSERT INTO inv_refunds (order_id, amount_minor, currency, reason) VALUES (?, ?, ?, ?) ON CONFLICT (order_id) DO NOTHING`,
		o.ID, o.AmountMinor, o.Currency, reason).Error; err != nil {
		return err
	}
	ref := "order:" + o.ID.String()
	if _, err := s.app.Ledger.Append(tx, "ticket.sale", ref, o.AmountMinor, o.Currency, "received before the automatic refund, "+paymentMemo(paymentIntentID, o)); err != nil {
		return err
	}
	if _, err := s.app.Ledger.Append(tx, "ticket.refund", ref, -o.AmountMinor, o.Currency, "automatic refund: "+reason); err != nil {
		return err
	}
	res.Outcome, res.refund = "refunded", true
	return outbox(tx, o, "Your payment is being refunded",
		fmt.Sprintf("Hello %s,\n\n%s. The full amount is being refunded to you; no tickets were issued.\n", o.Name, reason))
}

func outbox(tx *gorm.DB, o Order, subject, body string) error {
	return tx.Exec(`INSERT INTO inv_email_outbox (id, order_id, to_email, subject, body) VALUES (?, ?, ?, ?, ?)`,
		uuid.Must(uuid.NewV7()), o.ID, o.Email, subject, body).Error
}

// PaymentFailed marks a pending order failed and releases its hold.
func (s *Service) PaymentFailed(ctx context.Context, t tenants.Tenant, stripeEventID, paymentIntentID string, orderID uuid.UUID) (WebhookResult, error) {
	var res WebhookResult
	err := s.tx(ctx, t, func(tx *gorm.DB) error {
		res = WebhookResult{EventID: stripeEventID, Type: "payment_intent.payment_failed", OrderID: &orderID, Outcome: "ignored"}
		fresh, err := recordStripeEvent(tx, stripeEventID, res.Type, orderID)
		if err != nil || !fresh {
			if !fresh {
				res.Outcome = "duplicate"
			}
			return err
		}
		var os []Order
		if err := tx.Raw(`UPDATE inv_orders SET status = 'failed' WHERE id = ? AND status = 'pending' RETURNING `+orderCols, orderID).Scan(&os).Error; err != nil {
			return err
		}
		if len(os) == 0 {
			return nil
		}
		res.Outcome, res.eventID = "failed", os[0].EventID
		closed, seats, err := closeHold(tx, os[0].HoldID, HoldReleased, false)
		if closed != nil {
			res.seats, res.changedEv = seatStates(seats, SeatAvailable), true
		}
		return err
	})
	if err == nil && res.changedEv {
		s.changed(ctx, t, res.eventID, res.seats)
	}
	return res, err
}

// RefundOrder refunds a paid order: its tickets are voided, its seats and
// units go back on sale, a negative ledger entry is written, the buyer is
// told, and the money goes back through Stripe. Refunding twice changes
// nothing the second time.
func (s *Service) RefundOrder(ctx context.Context, t tenants.Tenant, orderID uuid.UUID, reason string) (Order, error) {
	reason = strings.TrimSpace(reason)
	if reason == "" {
		reason = "refunded by the venue"
	}
	if len(reason) > 500 {
		return Order{}, invalid("reason", "reason must be at most 500 characters")
	}
	var o Order
	var seats []string
	err := s.tx(ctx, t, func(tx *gorm.DB) error {
		var os []Order
		// An order refunded with its event's cancellation is that job's.
		if err := tx.Raw(`UPDATE inv_orders SET status = 'refunded', closed_at = now(), note = ? WHERE id = ? AND status = 'paid'
			AND NOT EXISTS (SELECT 1 FROM inv_cancellation_refunds r WHERE r.order_id = inv_orders.id) RETURNING `+orderCols,
			reason, orderID).Scan(&os).Error; err != nil {
			return err
		}
		if len(os) == 0 {
			cur, err := readOrder(tx, orderID, false)
			if err != nil {
				return err
			}
			switch cur.Status {
			case OrderRefunded:
				o = cur
				return nil
			case OrderPaid:
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
		return Order{}, err
	}
	if seats != nil || o.Status == OrderRefunded {
		s.changed(ctx, t, o.EventID, seatStates(seats, SeatAvailable))
	}
	s.sendRefund(ctx, t, o.ID)
	return o, nil
}

// returnOrder undoes a refunded order (its status already set in tx): its
// tickets are voided, its seats and units go back, its refund is recorded
// (with Stripe's id when it was sent already), the buyer is told, and the
// ledger gets the negative entry — all in the caller's transaction.
func (s *Service) returnOrder(tx *gorm.DB, o Order, reason string, stripeRefundID *string, subject, body string) ([]string, error) {
	if err := tx.Exec(`UPDATE inv_tickets SET status = 'void', voided_at = now() WHERE order_id = ? AND status = 'valid'`, o.ID).Error; err != nil {
		return nil, err
	}
	var got []struct {
		ID string `gorm:"column:id"`
	}
	if err := tx.Raw(`UPDATE inv_seats s SET state = 'available', order_id = NULL
		FROM (SELECT id FROM inv_seats WHERE event_id = ? AND order_id = ? ORDER BY id FOR UPDATE) l
		WHERE s.event_id = ? AND s.id = l.id AND s.state = 'sold' AND s.order_id = ?
		RETURNING s.id`, o.EventID, o.ID, o.EventID, o.ID).Scan(&got).Error; err != nil {
		return nil, err
	}
	seats := make([]string, 0, len(got))
	for _, g := range got {
		seats = append(seats, g.ID)
	}
	if err := tx.Exec(`INSERT INTO inv_refunds (order_id, amount_minor, currency, reason, stripe_refund_id) VALUES (?, ?, ?, ?, ?)`,
		o.ID, o.AmountMinor, o.Currency, reason, stripeRefundID).Error; err != nil {
		return nil, err
	}
	if err := outbox(tx, o, subject, body); err != nil {
		return nil, err
	}
	// Shards, buyer counter, then the ledger, last: see PaymentSucceeded.
	if err := moveAllocs(tx, o.HoldID, returnSold, true); err != nil {
		return nil, err
	}
	if err := tx.Exec(`UPDATE inv_buyer_counters SET units = greatest(units - (SELECT quantity FROM inv_holds WHERE id = ?), 0)
		WHERE event_id = ? AND subject = ?`, o.HoldID, o.EventID, "b:"+o.BuyerID).Error; err != nil {
		return nil, err
	}
	_, err := s.app.Ledger.Append(tx, "ticket.refund", "order:"+o.ID.String(), -o.AmountMinor, o.Currency, reason)
	return seats, err
}

// sendRefund sends a recorded refund to Stripe (idempotency key
// refund-<order>), or leaves it to the retrying refund task.
func (s *Service) sendRefund(ctx context.Context, t tenants.Tenant, orderID uuid.UUID) {
	if err := s.SendRefund(ctx, t, orderID); err != nil {
		s.app.Log.Warn("stripe: refund not sent yet; queued", "tenant", t.Slug, "order", orderID, "err", stripeErrorSummary(err))
		_, qerr := s.app.Jobs.Enqueue(context.WithoutCancel(ctx), t, TaskRefund, refundTask{OrderID: orderID},
			asynq.TaskID("refund:"+t.Slug+":"+orderID.String()), asynq.Queue(jobs.QueueCritical), asynq.MaxRetry(25))
		if qerr != nil && !errors.Is(qerr, asynq.ErrTaskIDConflict) {
			s.app.Log.Error("refund task not queued; the sweeper retries it", "tenant", t.Slug, "order", orderID, "err", qerr)
		}
	}
}

// refundTask names an order's refund, or a reviewed payment's.
type refundTask struct {
	OrderID         uuid.UUID `json:"order_id,omitempty"`
	PaymentIntentID string    `json:"payment_intent_id,omitempty"`
}

// SendRefund sends an order's recorded refund to Stripe if it was not sent.
func (s *Service) SendRefund(ctx context.Context, t tenants.Tenant, orderID uuid.UUID) error {
	var rows []struct {
		Amount int64   `gorm:"column:amount_minor"`
		PI     *string `gorm:"column:payment_intent_id"`
	}
	if err := s.tx(ctx, t, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT r.amount_minor, o.payment_intent_id FROM inv_refunds r JOIN inv_orders o ON o.id = r.order_id
			WHERE r.order_id = ? AND r.stripe_refund_id IS NULL`, orderID).Scan(&rows).Error
	}); err != nil || len(rows) == 0 {
		return err
	}
	if rows[0].PI == nil || rows[0].Amount == 0 {
		return s.tx(ctx, t, func(tx *gorm.DB) error {
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
	return s.tx(ctx, t, func(tx *gorm.DB) error {
		return tx.Exec(`UPDATE inv_refunds SET stripe_refund_id = ? WHERE order_id = ? AND stripe_refund_id IS NULL`, r.ID, orderID).Error
	})
}

// pendingRefunds lists refunds not yet accepted by Stripe for a while.
func (s *Service) pendingRefunds(ctx context.Context, t tenants.Tenant) ([]uuid.UUID, error) {
	var rows []struct {
		OrderID uuid.UUID `gorm:"column:order_id"`
	}
	err := s.tx(ctx, t, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT order_id FROM inv_refunds WHERE stripe_refund_id IS NULL AND created_at < now() - interval '1 minute' LIMIT 100`).Scan(&rows).Error
	})
	out := make([]uuid.UUID, len(rows))
	for i, r := range rows {
		out[i] = r.OrderID
	}
	return out, err
}

// pendingReviewRefunds lists payments under review whose refund Stripe has
// not accepted yet for a while.
func (s *Service) pendingReviewRefunds(ctx context.Context, t tenants.Tenant) ([]string, error) {
	var out []string
	err := s.tx(ctx, t, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT payment_intent_id FROM inv_payment_reviews WHERE stripe_refund_id IS NULL AND created_at < now() - interval '1 minute'
			ORDER BY created_at LIMIT 100`).Scan(&out).Error
	})
	return out, err
}
