package orders

import (
	"context"
	"encoding/json"
	"errors"
	"marquee/app"
	"marquee/modules/inventory/internal/model"
	"marquee/tenants"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"
)

// WebhookResult says what a Stripe event did.
type WebhookResult struct {
	EventID   string     `json:"event_id"`
	Type      string     `json:"type"`
	Outcome   string     `json:"outcome"` // paid, resold, refunded, review, failed, duplicate, ignored
	OrderID   *uuid.UUID `json:"order_id,omitempty"`
	Tickets   int        `json:"tickets,omitempty"`
	seats     []model.SeatState
	eventID   uuid.UUID
	refund    bool
	mail      uuid.UUID // the message queued in the transaction, dispatched after it
	review    string    // a payment recorded for review, to refund after the commit
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
		s.d.App.Log.Warn("stripe: event without a PaymentIntent ignored", "event", evt.ID, "type", evt.Type)
		return res, nil
	}
	slug, rawOrder := pi.Metadata["tenant"], pi.Metadata["order_id"]
	if slug == "" && rawOrder == "" {
		return res, nil // not a payment the platform started for an order
	}
	ignore := func(why string) (WebhookResult, error) {
		s.d.App.Log.Warn("stripe: event ignored", "event", evt.ID, "type", evt.Type, "payment_intent", pi.ID, "reason", why)
		return res, nil
	}
	orderID, err := uuid.Parse(rawOrder)
	if err != nil {
		return ignore("malformed order in metadata")
	}
	if tenants.ValidateSlug(slug) != nil {
		return ignore("malformed chain in metadata")
	}
	t, err := s.d.App.Tenants.Lookup(ctx, slug)
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
		s.d.App.Log.Error("stripe: event names a chain that does not hold its PaymentIntent; ignored",
			"event", evt.ID, "type", evt.Type, "payment_intent", pi.ID, "tenant", slug, "order", orderID)
		return res, nil
	}
	return s.settlePayment(ctx, t, evt, pi)
}

// verifyEvent checks a delivery's Stripe signature with the platform's
// webhook secret before anything in it is believed.
func (s *Service) verifyEvent(payload []byte, signature string) (stripe.Event, error) {
	evt, err := webhook.ConstructEventWithOptions(payload, signature, s.d.App.Config.StripeWebhookSecret, webhook.ConstructEventOptions{})
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
	// One round trip: a statement of its own on its generic plan (both
	// lookups are equalities on the primary key).
	var n int64
	err := s.d.PgxStatementGenericPlan(ctx, t, `SELECT count(*) FROM inv_orders WHERE id = $1 AND payment_intent_id = $2`,
		[]any{orderID, paymentIntentID}, func(rows pgx.Rows) error {
			if !rows.Next() {
				return errors.New("count answered no row")
			}
			return rows.Scan(&n)
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
		return s.paymentSucceeded(ctx, t, evt.ID, pi.ID, pi.Amount, strings.ToUpper(string(pi.Currency)), orderID, s.cardFingerprint(ctx, t, pi))
	}
	return s.PaymentFailed(ctx, t, evt.ID, pi.ID, orderID)
}
