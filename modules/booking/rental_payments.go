package booking

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"
	"github.com/stripe/stripe-go/v76/webhook"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/modules/booking/internal/terms"
	"marquee/tenants"
)

// RentalDepositPurpose marks the PaymentIntents of rental deposits in their
// metadata (with tenant and rental_id), so the webhook routes them here.
const RentalDepositPurpose = "venue_rental_deposit"

// RentalsWebhookPath is the platform's Stripe endpoint for rental deposits,
// on the base host.
const RentalsWebhookPath = "/webhooks/stripe/rentals"

func newStripe(a *app.Core) *client.API {
	cfg := &stripe.BackendConfig{LeveledLogger: app.PrintfLogger{Log: a.Log, Source: "stripe"}, MaxNetworkRetries: stripe.Int64(2)}
	if a.Config.StripeAPIURL != "" {
		cfg.URL = stripe.String(a.Config.StripeAPIURL)
	}
	return client.New(a.Config.StripeSecretKey, &stripe.Backends{
		API:     stripe.GetBackendWithConfig(stripe.APIBackend, cfg),
		Connect: stripe.GetBackendWithConfig(stripe.ConnectBackend, cfg),
		Uploads: stripe.GetBackendWithConfig(stripe.UploadsBackend, cfg),
	})
}

// DepositPayment is the deposit's PaymentIntent, for the renter to pay.
type DepositPayment struct {
	RentalID        uuid.UUID `json:"rental_id"`
	PaymentIntentID string    `json:"payment_intent_id"`
	ClientSecret    string    `json:"client_secret"`
	AmountMinor     int64     `json:"amount_minor"`
	Currency        string    `json:"currency"`
	Status          string    `json:"status"`
}

// DepositPaymentIntent opens (once) the PaymentIntent for the rental's
// deposit; asked again, it answers the same one. The rental keeps the first
// intent recorded, so two callers at once end with the same.
func (s *Service) DepositPaymentIntent(ctx context.Context, t tenants.Tenant, id uuid.UUID) (DepositPayment, error) {
	var r Rental
	err := s.tx(ctx, t, func(tx *gorm.DB) error {
		var err error
		r, err = findRental(tx, id, false)
		return err
	})
	if err != nil {
		return DepositPayment{}, err
	}
	switch {
	case r.DepositMinor == 0:
		return DepositPayment{}, app.Conflict("rental_no_deposit", "the rental has no deposit to pay; confirm it instead")
	case r.DepositPaidAt != nil:
		return DepositPayment{}, app.Conflict("rental_deposit_paid", "the deposit was paid on %s", r.DepositPaidAt.Format(time.RFC3339))
	}
	out := DepositPayment{RentalID: id, AmountMinor: r.DepositMinor, Currency: r.Currency}
	if r.PaymentIntentID == nil {
		params := &stripe.PaymentIntentParams{Amount: stripe.Int64(r.DepositMinor), Currency: stripe.String(strings.ToLower(r.Currency)),
			Description:        stripe.String(fmt.Sprintf("Deposit: %s (%s)", r.Title, r.RenterName)),
			ReceiptEmail:       stripe.String(r.RenterEmail),
			PaymentMethodTypes: stripe.StringSlice([]string{"card"})}
		params.SetIdempotencyKey("rental-" + id.String() + "-deposit")
		params.AddMetadata("tenant", t.Slug)
		params.AddMetadata("rental_id", id.String())
		params.AddMetadata("purpose", RentalDepositPurpose)
		pi, err := s.stripe.PaymentIntents.New(params)
		if err != nil {
			return DepositPayment{}, app.Unavailable("rental_payment_unavailable", 30*time.Second, "the payment could not be opened at Stripe; retry")
		}
		err = s.tx(ctx, t, func(tx *gorm.DB) error {
			// Recorded where none is: a concurrent caller's intent stays.
			if err := tx.Exec(`UPDATE bkg_rentals SET payment_intent_id = ? WHERE id = ? AND payment_intent_id IS NULL`, pi.ID, id).Error; err != nil {
				return err
			}
			var err error
			r, err = findRental(tx, id, false)
			return err
		})
		if err != nil {
			return DepositPayment{}, err
		}
		if *r.PaymentIntentID == pi.ID {
			out.PaymentIntentID, out.ClientSecret, out.Status = pi.ID, pi.ClientSecret, string(pi.Status)
			return out, nil
		}
	}
	pi, err := s.stripe.PaymentIntents.Get(*r.PaymentIntentID, nil)
	if err != nil {
		return DepositPayment{}, app.Unavailable("rental_payment_unavailable", 30*time.Second, "the payment could not be read at Stripe; retry")
	}
	out.PaymentIntentID, out.ClientSecret, out.Status = *r.PaymentIntentID, pi.ClientSecret, string(pi.Status)
	return out, nil
}

// RentalWebhookResult says what a Stripe event did to a rental.
type RentalWebhookResult struct {
	EventID  string     `json:"event_id"`
	Type     string     `json:"type"`
	Outcome  string     `json:"outcome"` // confirmed, paid (not confirmed: see confirm_error), failed, duplicate, mismatch, ignored
	RentalID *uuid.UUID `json:"rental_id,omitempty"`
}

// HandleRentalWebhook verifies a Stripe delivery with the platform's webhook
// secret before reading it, then routes a deposit's payment to the chain and
// rental its metadata names, once that chain is shown to hold the
// PaymentIntent; anything else is answered "ignored" and touches nothing.
func (s *Service) HandleRentalWebhook(ctx context.Context, payload []byte, signature string) (RentalWebhookResult, error) {
	evt, err := webhook.ConstructEventWithOptions(payload, signature, s.app.Config.RentalsWebhookSecret(), webhook.ConstructEventOptions{})
	if err != nil {
		return RentalWebhookResult{}, app.Invalid("invalid_signature", "the Stripe signature does not verify")
	}
	res := RentalWebhookResult{EventID: evt.ID, Type: string(evt.Type), Outcome: "ignored"}
	if evt.Type != "payment_intent.succeeded" && evt.Type != "payment_intent.payment_failed" {
		return res, nil
	}
	var pi stripe.PaymentIntent
	if evt.Data == nil || json.Unmarshal(evt.Data.Raw, &pi) != nil || pi.ID == "" || pi.Metadata["purpose"] != RentalDepositPurpose {
		return res, nil
	}
	ignore := func(why string) (RentalWebhookResult, error) {
		s.app.Log.Warn("stripe: rental event ignored", "event", evt.ID, "type", evt.Type, "payment_intent", pi.ID, "reason", why)
		return res, nil
	}
	rentalID, err := uuid.Parse(pi.Metadata["rental_id"])
	if err != nil {
		return ignore("malformed rental in metadata")
	}
	slug := pi.Metadata["tenant"]
	if tenants.ValidateSlug(slug) != nil {
		return ignore("malformed chain in metadata")
	}
	t, err := s.app.Tenants.Lookup(ctx, slug)
	switch {
	case errors.Is(err, tenants.ErrNotFound):
		return ignore("unknown chain")
	case err != nil:
		return RentalWebhookResult{}, err // the registry is unreachable: Stripe retries
	case t.Status != tenants.StatusActive && t.Status != tenants.StatusSuspended:
		return ignore("chain not serving")
	}
	res.RentalID = &rentalID
	actor := Actor{Kind: "system", Name: "stripe " + evt.ID, Party: Promoter}
	err = s.tx(ctx, t, func(tx *gorm.DB) error {
		res.Outcome = "ignored"
		r, err := findRental(tx, rentalID, true)
		var e *app.Error
		if errors.As(err, &e) && e.Kind == app.KindNotFound {
			return nil
		}
		if err != nil {
			return err
		}
		if r.PaymentIntentID == nil || *r.PaymentIntentID != pi.ID {
			// Metadata naming a rental that does not hold this intent: a
			// forgery or a bug, which must touch nothing.
			s.app.Log.Error("stripe: event names a rental that does not hold its PaymentIntent; ignored", "event", evt.ID, "tenant", t.Slug, "rental", rentalID)
			return nil
		}
		// Each event once: a redelivery finds its id and does nothing.
		q := tx.Exec(`INSERT INTO bkg_rental_payment_events (event_id, rental_id, type) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`, evt.ID, rentalID, string(evt.Type))
		if q.Error != nil {
			return q.Error
		}
		if q.RowsAffected == 0 {
			res.Outcome = "duplicate"
			return nil
		}
		if evt.Type == "payment_intent.payment_failed" {
			res.Outcome = "failed"
			why := "the payment failed"
			if pi.LastPaymentError != nil && pi.LastPaymentError.Msg != "" {
				why = pi.LastPaymentError.Msg
			}
			if len(why) > 300 {
				why = why[:300]
			}
			if err := tx.Exec(`UPDATE bkg_rentals SET payment_error = ? WHERE id = ? AND deposit_paid_at IS NULL`, why, rentalID).Error; err != nil {
				return err
			}
			return addRentalHistory(tx, rentalID, actor, "deposit_failed", why)
		}
		return s.depositPaid(tx, t, r, pi, actor, &res)
	})
	return res, err
}

// depositPaid records the deposit as paid (once: another event for the
// same payment finds it paid), puts it on the ledger, and confirms the
// hold in the same transaction. A confirmation the calendar refuses (an
// event in the way) leaves the payment recorded and the reason shown, for
// staff to confirm once the way is clear.
func (s *Service) depositPaid(tx *gorm.DB, t tenants.Tenant, r Rental, pi stripe.PaymentIntent, actor Actor, res *RentalWebhookResult) error {
	if r.DepositPaidAt != nil {
		res.Outcome = "duplicate"
		return nil
	}
	if pi.Amount != r.DepositMinor || !strings.EqualFold(string(pi.Currency), r.Currency) {
		res.Outcome = "mismatch"
		s.app.Log.Error("stripe: rental deposit paid with another amount; recorded for review", "tenant", t.Slug, "rental", r.ID,
			"paid", pi.Amount, "currency", pi.Currency, "deposit", r.DepositMinor)
		return addRentalHistory(tx, r.ID, actor, "deposit_mismatch", fmt.Sprintf("paid %s, the deposit is %s",
			terms.Format(pi.Amount, strings.ToUpper(string(pi.Currency))), terms.Format(r.DepositMinor, r.Currency)))
	}
	now := s.app.Now().UTC()
	if err := tx.Exec(`UPDATE bkg_rentals SET deposit_paid_at = ?, payment_error = '', version = version + 1 WHERE id = ? AND deposit_paid_at IS NULL`,
		now, r.ID).Error; err != nil {
		return err
	}
	if _, err := s.app.Ledger.Append(tx, "booking.rental_deposit_paid", "rental:"+r.ID.String(), r.DepositMinor, r.Currency,
		fmt.Sprintf("rental deposit from %s for %s (Stripe %s)", r.RenterName, r.Title, pi.ID)); err != nil {
		return err
	}
	if err := addRentalHistory(tx, r.ID, actor, "deposit_paid", terms.Format(r.DepositMinor, r.Currency)+" through Stripe "+pi.ID); err != nil {
		return err
	}
	r.DepositPaidAt = &now
	res.Outcome = "confirmed"
	// A savepoint: a refused confirmation undoes itself, not the payment.
	err := tx.Transaction(func(sp *gorm.DB) error { return s.confirmRentalLocked(sp, t, r, actor) })
	if err == nil {
		return nil
	}
	if !isConflict(err) {
		return err
	}
	res.Outcome = "paid"
	msg := err.Error()
	if len(msg) > 300 {
		msg = msg[:300]
	}
	return tx.Exec(`UPDATE bkg_rentals SET confirm_error = ? WHERE id = ?`, msg, r.ID).Error
}
