package orders

import (
	"context"

	"github.com/stripe/stripe-go/v76"
	"gorm.io/gorm"

	"marquee/modules/inventory/internal/model"
	"marquee/tenants"
)

// CardLimiter decides, in a payment's transaction, whether the card that
// paid may have these tickets: refuse non-empty says why not (the payment
// is then refunded). Wanted reports whether the chain checks cards at all,
// before the card is looked up at Stripe.
type CardLimiter interface {
	Wanted(ctx context.Context, t tenants.Tenant) bool
	CheckCard(ctx context.Context, t tenants.Tenant, tx *gorm.DB, o model.Order, fingerprint string) (refuse string, err error)
}

// SetCardLimiter plugs the limits room's card rule in (before serving).
func (s *Service) SetCardLimiter(l CardLimiter) { s.cards = l }

// cardFingerprint looks up the fingerprint of the card that paid: Stripe's
// events carry only the PaymentMethod's id. Outside any transaction; a
// failure skips the card rule (a guard, not the payment's gate) and is
// logged.
func (s *Service) cardFingerprint(ctx context.Context, t tenants.Tenant, pi stripe.PaymentIntent) string {
	if s.cards == nil || pi.PaymentMethod == nil || pi.PaymentMethod.ID == "" || !s.cards.Wanted(ctx, t) {
		return ""
	}
	if pi.PaymentMethod.Card != nil && pi.PaymentMethod.Card.Fingerprint != "" {
		return pi.PaymentMethod.Card.Fingerprint // expanded already
	}
	params := &stripe.PaymentMethodParams{}
	params.Context = ctx
	pm, err := s.stripe.PaymentMethods.Get(pi.PaymentMethod.ID, params)
	if err != nil || pm.Card == nil {
		s.d.App.Log.Warn("stripe: card not looked up; the per-card limit is skipped for this payment", "tenant", t.Slug, "payment_intent", pi.ID, "err", errSummary(err))
		return ""
	}
	return pm.Card.Fingerprint
}

func errSummary(err error) string {
	if err == nil {
		return "not a card"
	}
	return StripeErrorSummary(err)
}
