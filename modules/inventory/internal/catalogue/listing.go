package catalogue

import (
	"context"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/modules/inventory/internal/model"
	"marquee/tenants"
)

// CatalogueItem is an on-sale event with its prices and availability.
type CatalogueItem struct {
	app.EventInfo
	MinPrice  *int64 `json:"min_price"`
	Currency  string `json:"currency,omitempty"`
	Available int    `json:"available"`
}

// Catalogue lists events through the event directory, with this module's
// prices and availability (events without tickets are left out).
func (s *Service) Catalogue(ctx context.Context, t tenants.Tenant, f app.EventFilter) ([]CatalogueItem, error) {
	dir := s.d.App.Events()
	if dir == nil {
		return nil, app.Unavailable("events_unavailable", 0, "no module provides events")
	}
	evs, err := dir.Events(ctx, t, f)
	if err != nil {
		return nil, err
	}
	out := []CatalogueItem{}
	if len(evs) == 0 {
		return out, nil
	}
	ids := make([]uuid.UUID, len(evs))
	for i, e := range evs {
		ids[i] = e.ID
	}
	var rows []struct {
		EventID   uuid.UUID `gorm:"column:event_id"`
		MinPrice  *int64    `gorm:"column:min_price"`
		Currency  *string   `gorm:"column:currency"`
		Available int       `gorm:"column:available"`
	}
	err = s.d.Tx(ctx, t, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT e.event_id,
				(SELECT min(price_minor + fee_minor) FROM inv_tiers t WHERE t.event_id = e.event_id) AS min_price,
				(SELECT currency FROM inv_tiers t WHERE t.event_id = e.event_id ORDER BY price_minor + fee_minor LIMIT 1) AS currency,
				(SELECT count(*) FROM inv_seats s WHERE s.event_id = e.event_id AND s.state = 'available')
				+ (SELECT coalesce(sum(sh.capacity - sh.held - sh.sold), 0) FROM inv_counters c JOIN inv_counter_shards sh ON sh.counter_id = c.id
				   WHERE c.event_id = e.event_id AND c.kind = 'pool') AS available
			FROM inv_events e WHERE e.event_id IN ?`, ids).Scan(&rows).Error
	})
	if err != nil {
		return nil, err
	}
	for _, e := range evs {
		for _, r := range rows {
			if r.EventID == e.ID {
				it := CatalogueItem{EventInfo: e, MinPrice: r.MinPrice, Available: r.Available}
				if r.Currency != nil {
					it.Currency = *r.Currency
				}
				out = append(out, it)
			}
		}
	}
	return out, nil
}

// LoadTierRows reads an event's tiers with their zones and GA pools.
func LoadTierRows(tx *gorm.DB, eventID uuid.UUID) ([]model.TierRow, error) {
	var rows []model.TierRow
	err := tx.Raw(`SELECT t.id, t.zone_id, t.name, t.price_minor + t.fee_minor AS price_minor, t.fee_minor, t.currency, t.sale_starts, t.sale_ends, t.max_per_order, t.sort,
			z.kind AS zone_kind, z.name AS zone_name, p.id AS pool_id
		FROM inv_tiers t JOIN inv_zones z ON z.id = t.zone_id
		LEFT JOIN inv_counters p ON p.zone_id = t.zone_id AND p.kind = 'pool'
		WHERE t.event_id = ? ORDER BY t.sort`, eventID).Scan(&rows).Error
	return rows, err
}

// EventCancelled says whether the event's cancellation has committed.
func EventCancelled(tx *gorm.DB, eventID uuid.UUID) (bool, error) {
	var n int64
	err := tx.Raw(`SELECT count(*) FROM inv_event_cancellations WHERE event_id = ?`, eventID).Row().Scan(&n)
	return n > 0, err
}
