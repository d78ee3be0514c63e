package pricing

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/modules/inventory/internal/deps"
	"marquee/tenants"
)

// NoticePeriod is how long buyers are told of demand pricing before a
// price may move (the CMA's 24 hours' notice).
const NoticePeriod = 24 * time.Hour

// Rule is a tier's demand pricing as the chain set it.
type Rule struct {
	TierID             uuid.UUID  `gorm:"column:tier_id" json:"tier_id"`
	EventID            uuid.UUID  `gorm:"column:event_id" json:"event_id"`
	Tier               string     `gorm:"column:tier" json:"tier"`
	Enabled            bool       `gorm:"column:enabled" json:"enabled"`
	Floor              int64      `gorm:"column:floor_minor" json:"floor"`
	Ceiling            int64      `gorm:"column:ceiling_minor" json:"ceiling"`
	MaxStep            int64      `gorm:"column:max_step_minor" json:"max_step"`
	MinIntervalSeconds int        `gorm:"column:min_interval_sec" json:"min_interval_seconds"`
	NoticeFrom         time.Time  `gorm:"column:notice_from" json:"notice_from"`
	EffectiveFrom      time.Time  `gorm:"column:effective_from" json:"effective_from"`
	LastChangeAt       *time.Time `gorm:"column:last_change_at" json:"last_change_at,omitempty"`
	Price              int64      `gorm:"column:price_minor" json:"price"` // face price now
	Fee                int64      `gorm:"column:fee_minor" json:"fee"`
	Currency           string     `gorm:"column:currency" json:"currency"`
}

// AllIn is the price a buyer pays now, fees included.
func (r Rule) AllIn() int64 { return r.Price + r.Fee }

func (r Rule) bounds() Bounds {
	return Bounds{Floor: r.Floor, Ceiling: r.Ceiling, MaxStep: r.MaxStep, MinInterval: time.Duration(r.MinIntervalSeconds) * time.Second}
}

// RuleInput sets a tier's demand pricing.
type RuleInput struct {
	Enabled            bool  `json:"enabled"`
	Floor              int64 `json:"floor"`
	Ceiling            int64 `json:"ceiling"`
	MaxStep            int64 `json:"max_step"`
	MinIntervalSeconds int   `json:"min_interval_seconds"`
}

// Validate refuses bounds that cannot hold.
func (in RuleInput) Validate() error {
	bad := func(field, msg string) error { return app.InvalidField("invalid_pricing", field, "%s", msg) }
	switch {
	case in.Floor < 0 || in.Floor > 100_000_000:
		return bad("floor", "floor must be from 0 to 100000000 minor units")
	case in.Ceiling < in.Floor || in.Ceiling > 100_000_000:
		return bad("ceiling", "ceiling must be at least the floor and at most 100000000 minor units")
	case in.MaxStep < 1 || in.MaxStep > 100_000_000:
		return bad("max_step", "max_step must be from 1 to 100000000 minor units")
	case in.MinIntervalSeconds < 60 || in.MinIntervalSeconds > 86400:
		return bad("min_interval_seconds", "min_interval_seconds must be from 60 to 86400")
	}
	return nil
}

// Change is one row of the price history.
type Change struct {
	ID        int64           `gorm:"column:id" json:"id"`
	TierID    uuid.UUID       `gorm:"column:tier_id" json:"tier_id"`
	Tier      string          `gorm:"column:tier" json:"tier"`
	OldPrice  int64           `gorm:"column:old_price" json:"old_price"`
	NewPrice  int64           `gorm:"column:new_price" json:"new_price"`
	Floor     int64           `gorm:"column:floor_minor" json:"floor"`
	Ceiling   int64           `gorm:"column:ceiling_minor" json:"ceiling"`
	MaxStep   int64           `gorm:"column:max_step_minor" json:"max_step"`
	Reason    string          `gorm:"column:reason" json:"reason"`
	Inputs    json.RawMessage `gorm:"column:inputs" json:"inputs"`
	ChangedAt time.Time       `gorm:"column:changed_at" json:"changed_at"`
}

// Range is what a buyer is told of a demand-priced tier: the all-in prices
// it may reach, and when prices may start moving.
type Range struct {
	TierID        uuid.UUID `json:"tier_id"`
	Tier          string    `json:"tier"`
	Min           int64     `json:"min"` // all-in
	Max           int64     `json:"max"` // all-in
	Now           int64     `json:"now"` // all-in
	Currency      string    `json:"currency"`
	EffectiveFrom time.Time `json:"effective_from"`
}

// QueueMeter reads how many buyers wait in an event's room.
type QueueMeter interface {
	QueueLength(ctx context.Context, t tenants.Tenant, eventID uuid.UUID) (int64, error)
}

// Service is the pricing room.
type Service struct {
	d *deps.Deps
	// Queue is the waiting room's meter (nil without one: no queue signal).
	Queue QueueMeter
	// Event returns an event's start (the calendar's, through the catalogue).
	Event func(ctx context.Context, t tenants.Tenant, id uuid.UUID) (app.EventInfo, error)
	// Changed runs after a price change commits (caches, listeners).
	Changed func(ctx context.Context, t tenants.Tenant, eventID uuid.UUID)
}

// New returns the pricing room.
func New(d *deps.Deps) *Service { return &Service{d: d} }

const ruleCols = `r.tier_id, r.event_id, t.name AS tier, r.enabled, r.floor_minor, r.ceiling_minor, r.max_step_minor, r.min_interval_sec,
	r.notice_from, r.effective_from, r.last_change_at, t.price_minor, t.fee_minor, t.currency`

// Rules lists an event's demand-pricing rules.
func (s *Service) Rules(ctx context.Context, t tenants.Tenant, eventID uuid.UUID) ([]Rule, error) {
	out := []Rule{}
	err := s.d.Tx(ctx, t, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT `+ruleCols+` FROM inv_price_rules r JOIN inv_tiers t ON t.id = r.tier_id
			WHERE r.event_id = ? ORDER BY t.sort`, eventID).Scan(&out).Error
	})
	return out, err
}

// SetRule sets a tier's demand pricing. Turning it on starts the notice
// period: buyers are told at once, prices move 24 hours later at the
// earliest. Changing the bounds of a rule that is on keeps its notice. The
// tier's current price must lie within the bounds (a price is never moved
// by a change of bounds).
func (s *Service) SetRule(ctx context.Context, t tenants.Tenant, eventID, tierID uuid.UUID, in RuleInput) (Rule, error) {
	return s.setRule(ctx, t, eventID, tierID, in, s.d.Now())
}

// SetRuleAt is SetRule as if made at now (the demo's seed gives the notice
// in the past; tests start a rule already in effect).
func (s *Service) SetRuleAt(ctx context.Context, t tenants.Tenant, eventID, tierID uuid.UUID, in RuleInput, now time.Time) (Rule, error) {
	return s.setRule(ctx, t, eventID, tierID, in, now)
}

func (s *Service) setRule(ctx context.Context, t tenants.Tenant, eventID, tierID uuid.UUID, in RuleInput, now time.Time) (Rule, error) {
	if err := in.Validate(); err != nil {
		return Rule{}, err
	}
	var out Rule
	err := s.d.Tx(ctx, t, func(tx *gorm.DB) error {
		var price []int64
		// The tier row lock orders this against the job's change of its price.
		if err := tx.Raw(`SELECT price_minor FROM inv_tiers WHERE id = ? AND event_id = ? FOR UPDATE`, tierID, eventID).Scan(&price).Error; err != nil {
			return err
		}
		if len(price) == 0 {
			return app.NotFound("tier")
		}
		if in.Enabled && (price[0] < in.Floor || price[0] > in.Ceiling) {
			return app.Conflict("price_outside_bounds", "the tier's price %d lies outside [%d, %d]", price[0], in.Floor, in.Ceiling).With("price", price[0])
		}
		err := tx.Exec(`INSERT INTO inv_price_rules (tier_id, event_id, enabled, floor_minor, ceiling_minor, max_step_minor, min_interval_sec, notice_from, effective_from)
			VALUES (@tier, @event, @enabled, @floor, @ceiling, @step, @interval, @now, CAST(@now AS timestamptz) + interval '24 hours')
			ON CONFLICT (tier_id) DO UPDATE SET enabled = EXCLUDED.enabled, floor_minor = EXCLUDED.floor_minor,
				ceiling_minor = EXCLUDED.ceiling_minor, max_step_minor = EXCLUDED.max_step_minor,
				min_interval_sec = EXCLUDED.min_interval_sec, updated_at = now(),
				-- a rule turned on anew gives its notice anew
				notice_from = CASE WHEN inv_price_rules.enabled THEN inv_price_rules.notice_from ELSE EXCLUDED.notice_from END,
				effective_from = CASE WHEN inv_price_rules.enabled THEN inv_price_rules.effective_from ELSE EXCLUDED.effective_from END`,
			map[string]any{"tier": tierID, "event": eventID, "enabled": in.Enabled, "floor": in.Floor, "ceiling": in.Ceiling,
				"step": in.MaxStep, "interval": in.MinIntervalSeconds, "now": now}).Error
		if err != nil {
			return err
		}
		return tx.Raw(`SELECT `+ruleCols+` FROM inv_price_rules r JOIN inv_tiers t ON t.id = r.tier_id WHERE r.tier_id = ?`, tierID).Scan(&out).Error
	})
	if err == nil && s.Changed != nil {
		s.Changed(ctx, t, eventID)
	}
	return out, err
}

// History lists an event's price changes, newest first.
func (s *Service) History(ctx context.Context, t tenants.Tenant, eventID uuid.UUID, limit int) ([]Change, error) {
	if limit <= 0 || limit > 500 {
		limit = 100
	}
	out := []Change{}
	err := s.d.Tx(ctx, t, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT h.id, h.tier_id, t.name AS tier, h.old_price, h.new_price, h.floor_minor, h.ceiling_minor, h.max_step_minor,
				h.reason, h.inputs, h.changed_at
			FROM inv_price_history h JOIN inv_tiers t ON t.id = h.tier_id WHERE h.event_id = ? ORDER BY h.id DESC LIMIT ?`, eventID, limit).Scan(&out).Error
	})
	return out, err
}

// Ranges lists the event's demand-priced tiers as buyers are told of them
// (all-in), from the rule's notice on.
func (s *Service) Ranges(ctx context.Context, t tenants.Tenant, eventID uuid.UUID) ([]Range, error) {
	rules, err := s.Rules(ctx, t, eventID)
	if err != nil {
		return nil, err
	}
	out := []Range{}
	for _, r := range rules {
		if r.Enabled {
			out = append(out, Range{TierID: r.TierID, Tier: r.Tier, Min: r.Floor + r.Fee, Max: r.Ceiling + r.Fee, Now: r.AllIn(),
				Currency: r.Currency, EffectiveFrom: r.EffectiveFrom})
		}
	}
	return out, nil
}

// Recompute runs one round of the job over the tenant's rules that are on
// and in effect, changing each price that its signals move, at most once
// per rule's interval. It returns how many prices changed.
func (s *Service) Recompute(ctx context.Context, t tenants.Tenant) (int, error) {
	return s.RecomputeAt(ctx, t, s.d.Now())
}

// RecomputeAt is Recompute as if run at now (the demo's seed replays the
// last hour).
func (s *Service) RecomputeAt(ctx context.Context, t tenants.Tenant, now time.Time) (int, error) {
	var due []Rule
	err := s.d.Tx(ctx, t, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT `+ruleCols+` FROM inv_price_rules r JOIN inv_tiers t ON t.id = r.tier_id
			WHERE r.enabled AND r.effective_from <= @now
			  AND (r.last_change_at IS NULL OR r.last_change_at <= CAST(@now AS timestamptz) - make_interval(secs => r.min_interval_sec))
			  AND (t.sale_ends IS NULL OR t.sale_ends > @now)`, map[string]any{"now": now}).Scan(&due).Error
	})
	if err != nil {
		return 0, err
	}
	changed := 0
	var errs []error
	for _, r := range due {
		ok, err := s.recomputeOne(ctx, t, r, now)
		if err != nil {
			errs = append(errs, err)
		}
		if ok {
			changed++
		}
	}
	return changed, errors.Join(errs...)
}

func (s *Service) recomputeOne(ctx context.Context, t tenants.Tenant, r Rule, now time.Time) (bool, error) {
	ev, err := s.Event(ctx, t, r.EventID)
	if err != nil {
		return false, err
	}
	if !ev.StartsAt.After(now) || ev.Status == "cancelled" {
		return false, nil
	}
	sig := Signals{WindowMin: int(VelocityWindow / time.Minute), HoursToEvent: ev.StartsAt.Sub(now).Hours()}
	if s.Queue != nil {
		if n, err := s.Queue.QueueLength(ctx, t, r.EventID); err == nil {
			sig.Queue = n
		}
	}
	changed := false
	err = s.d.Tx(ctx, t, func(tx *gorm.DB) error {
		changed = false
		// The rule and the tier, locked: a concurrent round (another
		// worker) or a change of bounds waits, then sees the interval.
		var rs []Rule
		if err := tx.Raw(`SELECT `+ruleCols+` FROM inv_price_rules r JOIN inv_tiers t ON t.id = r.tier_id
			WHERE r.tier_id = @tier AND r.enabled AND r.effective_from <= @now
			  AND (r.last_change_at IS NULL OR r.last_change_at <= CAST(@now AS timestamptz) - make_interval(secs => r.min_interval_sec))
			FOR UPDATE OF r, t`, map[string]any{"tier": r.TierID, "now": now}).Scan(&rs).Error; err != nil || len(rs) == 0 {
			return err
		}
		cur := rs[0]
		var counts struct {
			Sold      int `gorm:"column:sold"`
			Remaining int `gorm:"column:remaining"`
			Capacity  int `gorm:"column:capacity"`
		}
		if err := tx.Raw(`SELECT
				(SELECT count(*) FROM inv_tickets k WHERE k.event_id = t.event_id AND k.tier_id = t.id AND k.status = 'valid'
				   AND k.issued_at > CAST(@now AS timestamptz) - make_interval(secs => @window)) AS sold,
				CASE WHEN z.kind = 'ga' THEN
					(SELECT coalesce(sum(sh.capacity - sh.held - sh.sold), 0) FROM inv_counters c JOIN inv_counter_shards sh ON sh.counter_id = c.id
					 WHERE c.zone_id = z.id AND c.kind = 'pool')
				ELSE (SELECT count(*) FROM inv_seats st WHERE st.event_id = t.event_id AND st.zone_id = z.id AND st.state = 'available') END AS remaining,
				CASE WHEN z.kind = 'ga' THEN
					(SELECT coalesce(sum(sh.capacity), 0) FROM inv_counters c JOIN inv_counter_shards sh ON sh.counter_id = c.id
					 WHERE c.zone_id = z.id AND c.kind = 'pool')
				ELSE (SELECT count(*) FROM inv_seats st WHERE st.event_id = t.event_id AND st.zone_id = z.id) END AS capacity
			FROM inv_tiers t JOIN inv_zones z ON z.id = t.zone_id WHERE t.id = @tier`,
			map[string]any{"tier": r.TierID, "now": now, "window": VelocityWindow.Seconds()}).Scan(&counts).Error; err != nil {
			return err
		}
		sig.SoldRecent, sig.Remaining, sig.Capacity = counts.Sold, counts.Remaining, counts.Capacity
		next, read := Decide(cur.Price, cur.bounds(), sig)
		if next == cur.Price {
			return nil
		}
		inputs, err := json.Marshal(read)
		if err != nil {
			return err
		}
		reason := "demand"
		if cur.Price < cur.Floor || cur.Price > cur.Ceiling {
			reason = "bounds"
		}
		if err := tx.Exec(`UPDATE inv_tiers SET price_minor = ? WHERE id = ?`, next, cur.TierID).Error; err != nil {
			return err
		}
		if err := tx.Exec(`INSERT INTO inv_price_history (tier_id, event_id, old_price, new_price, floor_minor, ceiling_minor, max_step_minor, reason, inputs, changed_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, cur.TierID, cur.EventID, cur.Price, next, cur.Floor, cur.Ceiling, cur.MaxStep, reason, string(inputs), now).Error; err != nil {
			return err
		}
		changed = true
		return tx.Exec(`UPDATE inv_price_rules SET last_change_at = ? WHERE tier_id = ?`, now, cur.TierID).Error
	})
	if err == nil && changed && s.Changed != nil {
		s.Changed(ctx, t, r.EventID)
	}
	return changed, err
}
