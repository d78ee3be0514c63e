// Package orders turns holds into paid orders: the order and its Stripe
// PaymentIntent, Stripe's webhooks (both routes), payments that arrive late
// or do not match, refunds (staff, automatic, of reviewed payments), event
// cancellations, and the mail outbox.
package orders

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/modules/inventory/internal/buyers"
	"marquee/modules/inventory/internal/catalogue"
	"marquee/modules/inventory/internal/deps"
	"marquee/modules/inventory/internal/model"
	"marquee/modules/inventory/internal/stock"
	"marquee/modules/inventory/internal/tickets"
	"marquee/tenants"
)

// Service sells holds and takes money back.
type Service struct {
	d         *deps.Deps
	stock     *stock.Service
	catalogue *catalogue.Service
	tickets   *tickets.Service
	buyers    *buyers.Signer
	stripe    *client.API

	// resale settles payments of holds that reserved a resale listing
	// (the resale room, above this one; nil: no marketplace).
	resale ResaleSettler
	// cards checks tickets per payment card (the limits room; nil: none).
	cards CardLimiter

	// afterOrderCommit, when set (tests), runs between an order's commit
	// and its PaymentIntent: where a crash leaves an order without one.
	afterOrderCommit atomic.Pointer[func(orderID uuid.UUID)]

	// fastPaid and generalPaid count payment_intent.succeeded events
	// settled (whatever the outcome) by the fast path and by the general
	// one: tests read which path a payment took.
	fastPaid, generalPaid atomic.Int64
}

// PaymentPaths answers how many payment_intent.succeeded events the fast
// path and the general path have settled (tests).
func (s *Service) PaymentPaths() (fast, general int64) {
	return s.fastPaid.Load(), s.generalPaid.Load()
}

// New returns the orders service with its Stripe client.
func New(d *deps.Deps, st *stock.Service, cat *catalogue.Service, tk *tickets.Service, by *buyers.Signer) *Service {
	a := d.App
	cfg := &stripe.BackendConfig{LeveledLogger: app.PrintfLogger{Log: a.Log, Source: "stripe"}, MaxNetworkRetries: stripe.Int64(2)}
	if a.Config.StripeAPIURL != "" {
		cfg.URL = stripe.String(a.Config.StripeAPIURL)
	}
	backends := &stripe.Backends{
		API:     stripe.GetBackendWithConfig(stripe.APIBackend, cfg),
		Connect: stripe.GetBackendWithConfig(stripe.ConnectBackend, cfg),
		Uploads: stripe.GetBackendWithConfig(stripe.UploadsBackend, cfg),
	}
	return &Service{d: d, stock: st, catalogue: cat, tickets: tk, buyers: by, stripe: client.New(a.Config.StripeSecretKey, backends)}
}

// ResaleSettler settles, in the payment's transaction, an order whose hold
// reserved a resale listing: handled=false for any other order; refund
// non-empty says why the payment is refunded instead.
type ResaleSettler interface {
	SettlePayment(ctx context.Context, t tenants.Tenant, tx *gorm.DB, o model.Order, paymentIntentID string) (handled bool, outcome, refund string, err error)
}

// SetResale plugs the resale room's settlement in (before serving).
func (s *Service) SetResale(r ResaleSettler) { s.resale = r }

// AfterOrderCommit sets a hook run between an order's commit and its
// PaymentIntent (tests: a crash there).
func (s *Service) AfterOrderCommit(f func(orderID uuid.UUID)) { s.afterOrderCommit.Store(&f) }

// ConfirmTestPayment confirms a PaymentIntent with Stripe's test card (the
// test-mode pay step; stripe-mock locally).
func (s *Service) ConfirmTestPayment(ctx context.Context, paymentIntentID string) error {
	params := &stripe.PaymentIntentConfirmParams{PaymentMethod: stripe.String("pm_card_visa")}
	params.Context = ctx
	_, err := s.stripe.PaymentIntents.Confirm(paymentIntentID, params)
	return err
}

// BuyerInfo is who an order's tickets are for.
type BuyerInfo struct {
	Email string `json:"email"`
	Name  string `json:"name"`
}

// Validate trims and checks the buyer's details.
func (b *BuyerInfo) Validate() error {
	b.Email, b.Name = strings.TrimSpace(b.Email), strings.TrimSpace(b.Name)
	addr, err := mail.ParseAddress(b.Email)
	if err != nil || addr.Address != b.Email || len(b.Email) > 254 {
		return model.Invalid("email", "buyer email address is not valid")
	}
	if b.Name == "" || len(b.Name) > 200 {
		return model.Invalid("name", "buyer name must be 1 to 200 characters")
	}
	return nil
}

// ReadOrder reads an order in tx (FOR UPDATE with lock).
func ReadOrder(tx *gorm.DB, id uuid.UUID, lock bool) (model.Order, error) {
	q := `SELECT ` + model.OrderCols + ` FROM inv_orders WHERE id = ?`
	if lock {
		q += ` FOR UPDATE`
	}
	var os []model.Order
	if err := tx.Raw(q, id).Scan(&os).Error; err != nil {
		return model.Order{}, err
	}
	if len(os) == 0 {
		return model.Order{}, app.NotFound("order")
	}
	return os[0], nil
}

// CreateOrder turns a buyer's live hold into a pending order and gives it a
// Stripe PaymentIntent. One hold has one order (unique key): asking again
// returns the same order and the same PaymentIntent (Stripe idempotency key
// derived from the order id).
func (s *Service) CreateOrder(ctx context.Context, t tenants.Tenant, holdID uuid.UUID, buyerID string, b BuyerInfo) (model.Order, error) {
	return s.createOrder(ctx, t, holdID, buyerID, b, nil, true)
}

// CreateOrderOnce is CreateOrder under a request's Idempotency-Key, claimed
// in the order's own transaction: if the request dies after the order
// commits, the key is settled already, and a retry with it finishes the same
// order (its PaymentIntent) instead of waiting out a stale claim.
func (s *Service) CreateOrderOnce(ctx context.Context, t tenants.Tenant, holdID uuid.UUID, buyerID string, b BuyerInfo, key *app.IdempotencyKey) (model.Order, error) {
	return s.createOrder(ctx, t, holdID, buyerID, b, key, true)
}

// orderKeyed is what an order request's Idempotency-Key stores: the order,
// whose current state a retry answers with.
type orderKeyed struct {
	OrderID uuid.UUID `json:"order_id"`
}

var errOrderClosed = app.Gone("hold_expired", "this hold has expired or was released; hold the tickets again")

func (s *Service) createOrder(ctx context.Context, t tenants.Tenant, holdID uuid.UUID, buyerID string, b BuyerInfo, key *app.IdempotencyKey, withPayment bool) (model.Order, error) {
	if err := b.Validate(); err != nil {
		return model.Order{}, err
	}
	var o model.Order
	err := s.d.Tx(ctx, t, func(tx *gorm.DB) error {
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
		o, err = ReadOrder(tx, keyed.OrderID, false)
		return err
	})
	if err != nil {
		return model.Order{}, err
	}
	if f := s.afterOrderCommit.Load(); f != nil {
		(*f)(o.ID)
	}
	if o.Status == model.OrderCancelled {
		return model.Order{}, errOrderClosed
	}
	if o.Status != model.OrderPending || o.PaymentIntentID != nil || !withPayment {
		return o, nil
	}
	if o.AmountMinor == 0 {
		// Free tickets: nothing to charge, the order is paid now.
		if _, err := s.PaymentSucceeded(ctx, t, "free-"+o.ID.String(), "", 0, o.Currency, o.ID); err != nil {
			return model.Order{}, err
		}
		return s.Order(ctx, t, o.ID)
	}
	return s.attachPaymentIntent(ctx, t, o)
}

// openOrder returns the hold's order, inserting it (pending) if the hold is
// live and has none yet.
func (s *Service) openOrder(tx *gorm.DB, holdID uuid.UUID, buyerID string, b BuyerInfo) (model.Order, error) {
	var hs []model.HoldRow
	if err := tx.Raw(`SELECT `+model.HoldCols+` FROM inv_holds WHERE id = ? FOR UPDATE`, holdID).Scan(&hs).Error; err != nil {
		return model.Order{}, err
	}
	if len(hs) == 0 || hs[0].BuyerID != buyerID {
		return model.Order{}, app.NotFound("hold")
	}
	h := hs[0]
	existing, err := readOrderByHold(tx, holdID)
	if err != nil || existing != nil {
		if existing != nil {
			return *existing, nil
		}
		return model.Order{}, err
	}
	if h.Status != model.HoldActive || !h.ExpiresAt.After(time.Now()) {
		return model.Order{}, errOrderClosed
	}
	o := model.Order{ID: uuid.Must(uuid.NewV7()), EventID: h.EventID, HoldID: h.ID, BuyerID: buyerID, Email: b.Email, Name: b.Name,
		AmountMinor: h.AmountMinor, Currency: h.Currency, Status: model.OrderPending}
	err = tx.Raw(`INSERT INTO inv_orders (id, event_id, hold_id, buyer_id, email, name, amount_minor, currency, status)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending') RETURNING created_at`,
		o.ID, o.EventID, o.HoldID, o.BuyerID, o.Email, o.Name, o.AmountMinor, o.Currency).Row().Scan(&o.CreatedAt)
	return o, err
}

func readOrderByHold(tx *gorm.DB, holdID uuid.UUID) (*model.Order, error) {
	var os []model.Order
	if err := tx.Raw(`SELECT `+model.OrderCols+` FROM inv_orders WHERE hold_id = ?`, holdID).Scan(&os).Error; err != nil || len(os) == 0 {
		return nil, err
	}
	return &os[0], nil
}

// attachPaymentIntent creates the order's PaymentIntent (outside any
// transaction: no lock is held across a network call) and stores it once.
func (s *Service) attachPaymentIntent(ctx context.Context, t tenants.Tenant, o model.Order) (model.Order, error) {
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
		s.d.App.Log.Warn("stripe: payment intent not created", "tenant", t.Slug, "order", o.ID, "err", StripeErrorSummary(err))
		return model.Order{}, app.Upstream("payment_provider_unavailable", 2*time.Second, "the payment provider did not answer; retry the same request")
	}
	err = s.d.Tx(ctx, t, func(tx *gorm.DB) error {
		// Only a pending order takes it: one closed meanwhile (its hold
		// ended) is not to be paid.
		if err := tx.Exec(`UPDATE inv_orders SET payment_intent_id = ?, client_secret = ? WHERE id = ? AND payment_intent_id IS NULL AND status = 'pending'`,
			pi.ID, pi.ClientSecret, o.ID).Error; err != nil {
			return err
		}
		var err error
		o, err = ReadOrder(tx, o.ID, false)
		return err
	})
	if err == nil && o.PaymentIntentID == nil {
		return model.Order{}, errOrderClosed
	}
	return o, err
}

// StripeErrorSummary describes a Stripe error without anything secret.
func StripeErrorSummary(err error) string {
	var se *stripe.Error
	if errors.As(err, &se) {
		return fmt.Sprintf("%s %s (HTTP %d)", se.Type, se.Code, se.HTTPStatusCode)
	}
	return err.Error()
}

// model.Order reads an order.
func (s *Service) Order(ctx context.Context, t tenants.Tenant, id uuid.UUID) (model.Order, error) {
	var o model.Order
	err := s.d.Tx(ctx, t, func(tx *gorm.DB) error {
		var err error
		o, err = ReadOrder(tx, id, false)
		return err
	})
	return o, err
}

// Tickets lists an order's tickets.
func (s *Service) Tickets(ctx context.Context, t tenants.Tenant, orderID uuid.UUID) ([]model.Ticket, error) {
	out := []model.Ticket{}
	err := s.d.Tx(ctx, t, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT `+tickets.TicketCols+`
			FROM inv_tickets WHERE order_id = ? ORDER BY seat_id NULLS LAST, issued_at, id`, orderID).Scan(&out).Error
	})
	return out, err
}

// CreateOrderWithoutPayment creates a pending order without asking Stripe
// for a PaymentIntent (demo seeding and box-office cash sales).
func (s *Service) CreateOrderWithoutPayment(ctx context.Context, t tenants.Tenant, holdID uuid.UUID, buyerID string, b BuyerInfo) (model.Order, error) {
	return s.createOrder(ctx, t, holdID, buyerID, b, nil, false)
}
