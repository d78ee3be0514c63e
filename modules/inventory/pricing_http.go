package inventory

import (
	"context"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/modules/inventory/internal/pricing"
	"marquee/policies"
	"marquee/tenants"
)

// Demand-based pricing (internal/pricing): the names other packages use.
type (
	// PriceRule is a tier's demand pricing as the chain set it.
	PriceRule = pricing.Rule
	// PriceRuleInput sets a tier's demand pricing.
	PriceRuleInput = pricing.RuleInput
	// PriceChange is one row of the append-only price history.
	PriceChange = pricing.Change
	// PriceRange is what buyers are told of a demand-priced tier (all-in).
	PriceRange = pricing.Range
)

// TaskReprice recomputes every demand-priced tier of a tenant (every minute;
// each rule changes at most once per its own interval).
const TaskReprice = "inventory:reprice"

// PricingView is an event's demand pricing: the rules and recent changes.
type PricingView struct {
	EventID uuid.UUID     `json:"event_id"`
	Rules   []PriceRule   `json:"rules"`
	History []PriceChange `json:"history"`
}

func (m *Module) getPricing(c *gin.Context, _ app.None) (PricingView, error) {
	ev, err := m.staffEvent(c, ObjInventory, policies.Read)
	if err != nil {
		return PricingView{}, err
	}
	limit := 100
	if v := c.Query("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > 500 {
			return PricingView{}, app.InvalidField("invalid_pricing", "limit", "limit must be 1 to 500")
		}
	}
	return m.svc.Pricing(c.Request.Context(), app.TenantOf(c), ev.ID, limit)
}

func (m *Module) putPriceRule(c *gin.Context, in PriceRuleInput) (PriceRule, error) {
	ev, err := m.staffEvent(c, ObjInventory, policies.Write)
	if err != nil {
		return PriceRule{}, err
	}
	tierID, err := app.PathUUID(c, "tierId", "tier")
	if err != nil {
		return PriceRule{}, err
	}
	return m.svc.SetPriceRule(c.Request.Context(), app.TenantOf(c), ev.ID, tierID, in)
}

func (m *Module) repriceTask(ctx context.Context, t tenants.Tenant, _ []byte) error {
	_, err := m.svc.Reprice(ctx, t)
	return err
}

// ---- service façade

// Pricing reads an event's demand-pricing rules and its latest changes.
func (s *Service) Pricing(ctx context.Context, t tenants.Tenant, eventID uuid.UUID, limit int) (PricingView, error) {
	rules, err := s.pricing.Rules(ctx, t, eventID)
	if err != nil {
		return PricingView{}, err
	}
	hist, err := s.pricing.History(ctx, t, eventID, limit)
	return PricingView{EventID: eventID, Rules: rules, History: hist}, err
}

// SetPriceRule sets a tier's demand pricing (its notice starts when it is
// turned on).
func (s *Service) SetPriceRule(ctx context.Context, t tenants.Tenant, eventID, tierID uuid.UUID, in PriceRuleInput) (PriceRule, error) {
	return s.pricing.SetRule(ctx, t, eventID, tierID, in)
}

// SetPriceRuleAt is SetPriceRule as if made at now (the demo's seed and
// tests give the notice in the past).
func (s *Service) SetPriceRuleAt(ctx context.Context, t tenants.Tenant, eventID, tierID uuid.UUID, in PriceRuleInput, now time.Time) (PriceRule, error) {
	return s.pricing.SetRuleAt(ctx, t, eventID, tierID, in, now)
}

// PriceRanges lists the event's demand-priced tiers as buyers are told of
// them (all-in bounds), for the event page and the waiting room.
func (s *Service) PriceRanges(ctx context.Context, t tenants.Tenant, eventID uuid.UUID) ([]PriceRange, error) {
	return s.pricing.Ranges(ctx, t, eventID)
}

// Reprice runs one round of demand pricing over the tenant's rules.
func (s *Service) Reprice(ctx context.Context, t tenants.Tenant) (int, error) {
	return s.pricing.Recompute(ctx, t)
}

// SetClock replaces the clock of the inventory's rules (tests, seed).
func (s *Service) SetClock(now func() time.Time) { s.d.Now = now }

// ---- ticket offers (app.TicketOffers), for the storefront search

// Offers returns each selling event's all-in price range and what is left.
// Availability comes from the inventory's counters (pool shards and the
// seats' states), the same figures the availability cache serves.
func (s *Service) Offers(ctx context.Context, t tenants.Tenant, ids []uuid.UUID) (map[uuid.UUID]app.EventOffer, error) {
	out := map[uuid.UUID]app.EventOffer{}
	if len(ids) == 0 {
		return out, nil
	}
	var rows []struct {
		EventID   uuid.UUID `gorm:"column:event_id"`
		MinPrice  int64     `gorm:"column:min_price"`
		MaxPrice  int64     `gorm:"column:max_price"`
		RangeMin  int64     `gorm:"column:range_min"`
		RangeMax  int64     `gorm:"column:range_max"`
		Currency  string    `gorm:"column:currency"`
		Available int       `gorm:"column:available"`
		Dynamic   bool      `gorm:"column:dynamic"`
	}
	err := s.d.Tx(ctx, t, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT e.event_id, p.min_price, p.max_price, p.range_min, p.range_max, p.currency, p.dynamic,
				(SELECT count(*) FROM inv_seats s WHERE s.event_id = e.event_id AND s.state = 'available')
				+ (SELECT coalesce(sum(sh.capacity - sh.held - sh.sold), 0) FROM inv_counters c JOIN inv_counter_shards sh ON sh.counter_id = c.id
				   WHERE c.event_id = e.event_id AND c.kind = 'pool') AS available
			FROM inv_events e
			CROSS JOIN LATERAL (
				SELECT min(t.price_minor + t.fee_minor) AS min_price, max(t.price_minor + t.fee_minor) AS max_price,
				       min(CASE WHEN r.enabled THEN least(t.price_minor, r.floor_minor) ELSE t.price_minor END + t.fee_minor) AS range_min,
				       max(CASE WHEN r.enabled THEN greatest(t.price_minor, r.ceiling_minor) ELSE t.price_minor END + t.fee_minor) AS range_max,
				       min(t.currency) AS currency, coalesce(bool_or(r.enabled), false) AS dynamic
				FROM inv_tiers t LEFT JOIN inv_price_rules r ON r.tier_id = t.id
				WHERE t.event_id = e.event_id AND (t.sale_ends IS NULL OR t.sale_ends > now())) p
			WHERE e.event_id IN ? AND p.min_price IS NOT NULL`, ids).Scan(&rows).Error
	})
	for _, r := range rows {
		out[r.EventID] = app.EventOffer{EventID: r.EventID, MinPrice: r.MinPrice, MaxPrice: r.MaxPrice, RangeMin: r.RangeMin, RangeMax: r.RangeMax, Currency: r.Currency,
			Available: r.Available, Dynamic: r.Dynamic}
	}
	return out, err
}

// SalesByHour counts valid tickets issued since the given time, per event
// and hour.
func (s *Service) SalesByHour(ctx context.Context, t tenants.Tenant, since time.Time) ([]app.HourSales, error) {
	out := []app.HourSales{}
	err := s.d.Tx(ctx, t, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT event_id, date_trunc('hour', issued_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS hour, count(*) AS tickets FROM inv_tickets
			WHERE status = 'valid' AND issued_at >= ? GROUP BY 1, 2`, since).Scan(&out).Error
	})
	return out, err
}
