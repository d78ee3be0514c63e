package booking

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"
	"gorm.io/gorm"

	"marquee/modules/booking/internal/rental"
	"marquee/tenants"
)

// seedRentals rents two held dates: one whose deposit was paid (through the
// webhook's own path, with an event signed by the configured secret) and is
// confirmed and invoiced, one still awaiting its deposit. skip is the hold
// an offer took already.
func (m *Module) seedRentals(ctx context.Context, t tenants.Tenant, staff Actor, skip *uuid.UUID) error {
	s := m.svc
	hs, err := m.app.Holds().ActiveHolds(ctx, t, 50)
	if err != nil {
		return err
	}
	// First holds on slots of their own: not the offer's (whose event
	// promoted the holds behind it), not each other's.
	taken := map[string]bool{}
	if skip != nil {
		if h, err := m.app.Holds().Hold(ctx, t, *skip); err == nil {
			taken[h.StageID.String()+h.StartsAt.String()] = true
		}
	}
	var holds []uuid.UUID
	for _, h := range hs {
		slot := h.StageID.String() + h.StartsAt.String()
		if h.Rank == 1 && !taken[slot] {
			taken[slot] = true
			holds = append(holds, h.ID)
		}
	}
	if len(holds) < 2 {
		return nil // a chain without free holds rents nothing
	}
	paid, err := s.CreateRental(ctx, t, RentalInput{HoldID: holds[0], Title: "Northside Records label showcase", RenterName: "Northside Records",
		RenterEmail: "events@northside.example", Currency: "USD", FeeMinor: 450000, DepositMinor: 135000, DepositDue: time.Now().UTC().Format(time.DateOnly),
		AddOns: []rental.AddOn{{Kind: "security", Name: "Security guards", Quantity: 6, UnitMinor: 18000},
			{Kind: "pa", Name: "PA and engineer", Quantity: 1, UnitMinor: 60000},
			{Kind: "catering", Name: "Green room catering", Quantity: 40, UnitMinor: 2200},
			{Kind: "cleaning", Name: "Cleaning after the show", Quantity: 1, UnitMinor: 35000}}}, staff)
	if err != nil {
		return fmt.Errorf("rental: %w", err)
	}
	if err := m.seedDepositPaid(ctx, t, paid.Rental); err != nil {
		return fmt.Errorf("rental deposit: %w", err)
	}
	if _, _, err := s.IssueInvoice(ctx, t, paid.ID, staff); err != nil {
		return fmt.Errorf("rental invoice: %w", err)
	}
	_, err = s.CreateRental(ctx, t, RentalInput{HoldID: holds[1], Title: "City Choir winter gala", RenterName: "City Choir Society",
		RenterEmail: "gala@citychoir.example", Currency: "USD", FeeMinor: 300000, DepositMinor: 90000,
		DepositDue: time.Now().UTC().AddDate(0, 0, 10).Format(time.DateOnly),
		AddOns: []rental.AddOn{{Kind: "av", Name: "Projector and screen", Quantity: 1, UnitMinor: 45000},
			{Kind: "lighting", Name: "Lighting operator", Quantity: 1, UnitMinor: 40000}}}, staff)
	if err != nil {
		return fmt.Errorf("rental: %w", err)
	}
	return nil
}

// seedDepositPaid pays a demo deposit as Stripe would tell it: a
// PaymentIntent id on the rental, then a payment_intent.succeeded event
// signed with the webhook secret, handed to the webhook's verifying path.
func (m *Module) seedDepositPaid(ctx context.Context, t tenants.Tenant, r Rental) error {
	pi := "pi_demo_" + r.ID.String()[24:]
	if err := m.svc.tx(ctx, t, func(tx *gorm.DB) error {
		return tx.Exec(`UPDATE bkg_rentals SET payment_intent_id = ? WHERE id = ? AND payment_intent_id IS NULL`, pi, r.ID).Error
	}); err != nil {
		return err
	}
	raw, err := json.Marshal(map[string]any{"id": "evt_demo_" + r.ID.String()[24:], "object": "event", "api_version": stripe.APIVersion,
		"created": time.Now().Unix(), "type": "payment_intent.succeeded",
		"data": map[string]any{"object": map[string]any{"id": pi, "object": "payment_intent", "amount": r.DepositMinor, "currency": "usd",
			"status": "succeeded", "metadata": map[string]string{"tenant": t.Slug, "rental_id": r.ID.String(), "purpose": RentalDepositPurpose}}}})
	if err != nil {
		return err
	}
	signed := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: raw, Secret: m.app.Config.RentalsWebhookSecret(), Timestamp: time.Now()})
	res, err := m.svc.HandleRentalWebhook(ctx, signed.Payload, signed.Header)
	if err != nil {
		return err
	}
	if res.Outcome != "confirmed" && res.Outcome != "paid" {
		return fmt.Errorf("demo deposit: %s", res.Outcome)
	}
	return nil
}
