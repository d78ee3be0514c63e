package tickets

import (
	"context"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/tenants"
)

// SalesByTier counts an event's valid tickets per tier, at the tier's price
// (app.TicketFacts: what a settlement reads). A voided ticket (refunded,
// cancelled, re-issued) is not sold; the inventory has no comps, so none
// are reported.
func (s *Service) SalesByTier(ctx context.Context, t tenants.Tenant, eventID uuid.UUID) ([]app.TierSales, error) {
	var out []app.TierSales
	err := s.d.Tx(ctx, t, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT tr.name AS tier, tr.price_minor, tr.currency,
				(SELECT count(*) FROM inv_tickets tk WHERE tk.tier_id = tr.id AND tk.status = 'valid') AS sold
			FROM inv_tiers tr WHERE tr.event_id = ? ORDER BY tr.sort, tr.name`, eventID).Scan(&out).Error
	})
	return app.NonNil(out), err
}
