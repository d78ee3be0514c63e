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
// are reported. Units sold on outside channels (no tickets of ours) follow
// as rows of their own per tier, channel and the channel's price, net of
// returns.
func (s *Service) SalesByTier(ctx context.Context, t tenants.Tenant, eventID uuid.UUID) ([]app.TierSales, error) {
	var out []app.TierSales
	err := s.d.Tx(ctx, t, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT tier, price_minor, currency, sold, channel FROM (
				SELECT tr.sort, tr.name AS tier, tr.price_minor, tr.currency, '' AS channel,
					(SELECT count(*) FROM inv_tickets tk WHERE tk.tier_id = tr.id AND tk.status = 'valid') AS sold
				FROM inv_tiers tr WHERE tr.event_id = @e
				UNION ALL
				SELECT tr.sort, tr.name, cs.price_minor, cs.currency, cs.channel, sum(cs.quantity)
				FROM inv_channel_sales cs JOIN inv_tiers tr ON tr.id = cs.tier_id
				WHERE cs.event_id = @e GROUP BY tr.sort, tr.name, cs.channel, cs.price_minor, cs.currency HAVING sum(cs.quantity) > 0
			) s ORDER BY sort, tier, channel, price_minor`, map[string]any{"e": eventID}).Scan(&out).Error
	})
	return app.NonNil(out), err
}
