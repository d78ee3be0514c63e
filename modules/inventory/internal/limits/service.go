package limits

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/modules/inventory/internal/deps"
	"marquee/modules/inventory/internal/model"
	"marquee/tenants"
)

// Settings are a chain's limits: on or off, and the thresholds.
type Settings struct {
	Enabled bool `json:"enabled" gorm:"column:enabled"`
	Thresholds
}

// Service applies the limits.
type Service struct {
	d     *deps.Deps
	rl    *redis_rate.Limiter
	cache sync.Map // tenant slug -> cachedSettings
}

type cachedSettings struct {
	s  Settings
	at time.Time
}

// settingsTTL is how long a chain's settings are kept in memory: the hold
// path reads them on every request.
const settingsTTL = 10 * time.Second

// New returns the limits service.
func New(d *deps.Deps) *Service {
	return &Service{d: d, rl: redis_rate.NewLimiter(newPipelinedScripts(d.App.Redis))}
}

// Settings reads the chain's limits (briefly cached).
func (s *Service) Settings(ctx context.Context, t tenants.Tenant) (Settings, error) {
	if v, ok := s.cache.Load(t.Slug); ok && time.Since(v.(cachedSettings).at) < settingsTTL {
		return v.(cachedSettings).s, nil
	}
	out := Settings{Thresholds: DefaultThresholds()}
	var rows []Settings
	err := s.d.App.TxWith(ctx, t, tenants.TxOptions{ReadOnly: true}, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT enabled, max_tickets_per_email, max_tickets_per_ip, declines_to_challenge, declines_to_block,
			min_checkout_seconds, ip_holds_per_minute, ip_orders_per_minute, max_tickets_per_card, max_tickets_per_device FROM inv_limit_thresholds WHERE id = 1`).Scan(&rows).Error
	})
	if err != nil {
		return out, err
	}
	if len(rows) == 1 {
		out = rows[0]
	}
	s.cache.Store(t.Slug, cachedSettings{s: out, at: time.Now()})
	return out, nil
}

// Validate checks settings a chain sends.
func (st *Settings) Validate() error {
	if st.MaxTicketsPerCard == 0 {
		st.MaxTicketsPerCard = DefaultThresholds().MaxTicketsPerCard
	}
	if st.MaxTicketsPerDevice == 0 {
		st.MaxTicketsPerDevice = DefaultThresholds().MaxTicketsPerDevice
	}
	th := st.Thresholds
	in := func(field string, v, lo, hi int) error {
		if v < lo || v > hi {
			return app.InvalidField("invalid_threshold", field, "%s must be from %d to %d", field, lo, hi)
		}
		return nil
	}
	for _, c := range []error{
		in("max_tickets_per_email", th.MaxTicketsPerEmail, 1, 10000), in("max_tickets_per_ip", th.MaxTicketsPerIP, 1, 100000),
		in("declines_to_challenge", th.DeclinesToChallenge, 1, 100), in("declines_to_block", th.DeclinesToBlock, 1, 100),
		in("min_checkout_seconds", th.MinCheckoutSeconds, 0, 600), in("ip_holds_per_minute", th.IPHoldsPerMinute, 1, 100000),
		in("ip_orders_per_minute", th.IPOrdersPerMinute, 1, 100000), in("max_tickets_per_card", th.MaxTicketsPerCard, 1, 10000),
		in("max_tickets_per_device", th.MaxTicketsPerDevice, 1, 10000),
	} {
		if c != nil {
			return c
		}
	}
	if th.DeclinesToChallenge > th.DeclinesToBlock {
		return app.InvalidField("invalid_threshold", "declines_to_challenge", "declines_to_challenge cannot be above declines_to_block")
	}
	return nil
}

// SetSettings replaces the chain's limits.
func (s *Service) SetSettings(ctx context.Context, t tenants.Tenant, st Settings) (Settings, error) {
	if err := st.Validate(); err != nil {
		return Settings{}, err
	}
	th := st.Thresholds
	err := s.d.Tx(ctx, t, func(tx *gorm.DB) error {
		return tx.Exec(`INSERT INTO inv_limit_thresholds (id, enabled, max_tickets_per_email, max_tickets_per_ip, declines_to_challenge, declines_to_block,
				min_checkout_seconds, ip_holds_per_minute, ip_orders_per_minute, max_tickets_per_card, max_tickets_per_device, updated_at)
			VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, now())
			ON CONFLICT (id) DO UPDATE SET enabled = EXCLUDED.enabled, max_tickets_per_email = EXCLUDED.max_tickets_per_email,
				max_tickets_per_ip = EXCLUDED.max_tickets_per_ip, declines_to_challenge = EXCLUDED.declines_to_challenge,
				declines_to_block = EXCLUDED.declines_to_block, min_checkout_seconds = EXCLUDED.min_checkout_seconds,
				ip_holds_per_minute = EXCLUDED.ip_holds_per_minute, ip_orders_per_minute = EXCLUDED.ip_orders_per_minute,
				max_tickets_per_card = EXCLUDED.max_tickets_per_card, max_tickets_per_device = EXCLUDED.max_tickets_per_device, updated_at = now()`,
			st.Enabled, th.MaxTicketsPerEmail, th.MaxTicketsPerIP, th.DeclinesToChallenge, th.DeclinesToBlock, th.MinCheckoutSeconds,
			th.IPHoldsPerMinute, th.IPOrdersPerMinute, th.MaxTicketsPerCard, th.MaxTicketsPerDevice).Error
	})
	s.cache.Delete(t.Slug)
	return st, err
}

// Allow counts one hold or order from a client against the chain's
// per-minute rate (GCRA in Redis through redis_rate: one script, one round
// trip): the client is its signed device id, or its address when it sent
// none. Redis trouble lets the request through: the limit is a guard, not
// the hold path's gate.
func (s *Service) Allow(ctx context.Context, t tenants.Tenant, kind, device, ip string) error {
	st, err := s.Settings(ctx, t)
	client := model.ClientSubject(device, ip)
	if err != nil || !st.Enabled || client == "" {
		return err
	}
	rate := st.IPHoldsPerMinute
	if kind == "order" {
		rate = st.IPOrdersPerMinute
	}
	res, err := s.rl.Allow(ctx, s.d.App.RedisKey("limits", t.Slug, kind, client), redis_rate.PerMinute(rate))
	if err != nil {
		s.d.App.Log.Warn("rate limit not checked; let through", "tenant", t.Slug, "err", err)
		return nil
	}
	if res.Allowed == 0 {
		from := "your address"
		if device != "" {
			from = "this device"
		}
		return app.RateLimited("ip_rate_limited", max(res.RetryAfter, time.Second),
			"too many %ss from %s; try again in %d seconds", kind, from, int(max(res.RetryAfter, time.Second).Seconds()))
	}
	return nil
}

// MayMintDevice says whether an address may be given one more device id
// this minute (at the chain's hold rate): ids are free to ask for, so a
// client clearing its cookies to shed its device's counts gets new ones
// only so fast, and is counted by its address meanwhile.
func (s *Service) MayMintDevice(ctx context.Context, t tenants.Tenant, ip string) bool {
	st, err := s.Settings(ctx, t)
	if err != nil || !st.Enabled {
		return err == nil
	}
	res, err := s.rl.Allow(ctx, s.d.App.RedisKey("limits", t.Slug, "device-mint", ip), redis_rate.PerMinute(st.IPHoldsPerMinute))
	return err != nil || res.Allowed > 0
}

// Checkout is an order about to be created.
type Checkout struct {
	HoldID   uuid.UUID
	BuyerID  string
	Email    string
	IP       string
	DeviceID string // signed device id of the checkout, "" if none was sent
	Human    bool   // the buyer solved a CAPTCHA bound to them for this checkout
}

// CheckOrder decides a checkout, records the decision with its reasons
// (unless it is a plain allow), and answers a block or a challenge as a
// refusal.
func (s *Service) CheckOrder(ctx context.Context, t tenants.Tenant, c Checkout) (Decision, error) {
	st, err := s.Settings(ctx, t)
	if err != nil || !st.Enabled {
		return Decision{Action: Allow}, err
	}
	var hold []struct {
		EventID   uuid.UUID `gorm:"column:event_id"`
		Quantity  int       `gorm:"column:quantity"`
		ClientIP  string    `gorm:"column:client_ip"`
		DeviceID  string    `gorm:"column:device_id"`
		CreatedAt time.Time `gorm:"column:created_at"`
	}
	sig := Signals{Human: c.Human}
	email := strings.ToLower(strings.TrimSpace(c.Email))
	err = s.d.App.TxWith(ctx, t, tenants.TxOptions{ReadOnly: true}, func(tx *gorm.DB) error {
		if err := tx.Raw(`SELECT event_id, quantity, client_ip, device_id, created_at FROM inv_holds WHERE id = ?`, c.HoldID).Scan(&hold).Error; err != nil || len(hold) == 0 {
			return err
		}
		h := hold[0]
		if c.IP == "" {
			c.IP = h.ClientIP
		}
		// The device that checks out, or failing that the one that held.
		if c.DeviceID == "" {
			c.DeviceID = h.DeviceID
		}
		sig.Tickets, sig.CheckoutSeconds = h.Quantity, s.d.App.Now().Sub(h.CreatedAt).Seconds()
		sig.Device = c.DeviceID != ""
		// Tickets of the buyer's other live orders for the event: by e-mail,
		// by address, by device (the hold's).
		row := tx.Raw(`SELECT
				coalesce(sum(h.quantity) FILTER (WHERE lower(o.email) = @email), 0),
				coalesce(sum(h.quantity) FILTER (WHERE @ip <> '' AND h.client_ip = @ip), 0),
				coalesce(sum(h.quantity) FILTER (WHERE @device <> '' AND h.device_id = @device), 0)
			FROM inv_orders o JOIN inv_holds h ON h.id = o.hold_id
			WHERE o.event_id = @event AND o.status IN ('pending', 'paid') AND o.hold_id <> @hold`,
			map[string]any{"email": email, "ip": c.IP, "device": c.DeviceID, "event": h.EventID, "hold": c.HoldID}).Row()
		if err := row.Scan(&sig.TicketsByEmail, &sig.TicketsByIP, &sig.TicketsByDevice); err != nil {
			return err
		}
		// Declined payments in the last hour, at any event of the chain.
		row = tx.Raw(`SELECT
				count(*) FILTER (WHERE o.buyer_id = @buyer OR lower(o.email) = @email),
				count(*) FILTER (WHERE (@ip <> '' AND h.client_ip = @ip) OR (@device <> '' AND h.device_id = @device))
			FROM inv_orders o JOIN inv_holds h ON h.id = o.hold_id
			WHERE o.status = 'failed' AND coalesce(o.closed_at, o.created_at) > now() - interval '1 hour'`,
			map[string]any{"buyer": c.BuyerID, "email": email, "ip": c.IP, "device": c.DeviceID}).Row()
		return row.Scan(&sig.DeclinesByBuyer, &sig.DeclinesByIP)
	})
	if err != nil || len(hold) == 0 {
		return Decision{Action: Allow}, err // an unknown hold: the order path answers it
	}
	d := Decide(sig, st.Thresholds)
	if d.Action == Allow {
		return d, nil
	}
	reasons, _ := json.Marshal(d.Reasons)
	if err := s.d.Tx(ctx, t, func(tx *gorm.DB) error {
		return tx.Exec(`INSERT INTO inv_risk_decisions (id, event_id, hold_id, buyer_id, email, client_ip, device_id, score, action, reasons)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, uuid.Must(uuid.NewV7()), hold[0].EventID, c.HoldID, c.BuyerID, email, c.IP, c.DeviceID, d.Score, d.Action, string(reasons)).Error
	}); err != nil {
		return d, err
	}
	why := make([]string, 0, len(d.Reasons))
	for _, r := range d.Reasons {
		why = append(why, r.Detail)
	}
	switch d.Action {
	case Block:
		return d, app.Forbidden("risk_blocked", "this order cannot be placed: "+strings.Join(why, "; ")).With("reasons", d.Reasons)
	case Challenge:
		ch, err := s.NewCaptcha(ctx, t, c.BuyerID, c.DeviceID)
		if err != nil {
			return d, err
		}
		return d, app.Forbidden("challenge_required", "please confirm you are not a robot, then order again: "+strings.Join(why, "; ")).
			With("reasons", d.Reasons).With("captcha", ch)
	}
	return d, nil
}

// Decided is a recorded decision, as box office reviews it.
type Decided struct {
	ID            uuid.UUID  `json:"id" gorm:"column:id"`
	EventID       uuid.UUID  `json:"event_id" gorm:"column:event_id"`
	HoldID        *uuid.UUID `json:"hold_id,omitempty" gorm:"column:hold_id"`
	BuyerID       string     `json:"-" gorm:"column:buyer_id"`
	Email         string     `json:"email" gorm:"column:email"`
	ClientIP      string     `json:"client_ip" gorm:"column:client_ip"`
	DeviceID      string     `json:"device_id,omitempty" gorm:"column:device_id"`
	Score         int        `json:"score" gorm:"column:score"`
	Action        string     `json:"action" gorm:"column:action"`
	Reasons       []Reason   `json:"reasons" gorm:"-"`
	RawReasons    string     `json:"-" gorm:"column:reasons"`
	CreatedAt     time.Time  `json:"created_at" gorm:"column:created_at"`
	ReviewedAt    *time.Time `json:"reviewed_at,omitempty" gorm:"column:reviewed_at"`
	ReviewOutcome *string    `json:"review_outcome,omitempty" gorm:"column:review_outcome"`
}

// Decisions lists recent decisions, the unreviewed reviews first.
func (s *Service) Decisions(ctx context.Context, t tenants.Tenant, limit int) ([]Decided, error) {
	var out []Decided
	err := s.d.App.TxWith(ctx, t, tenants.TxOptions{ReadOnly: true}, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT id, event_id, hold_id, buyer_id, email, client_ip, device_id, score, action, reasons::text AS reasons, created_at, reviewed_at, review_outcome
			FROM inv_risk_decisions ORDER BY (action = 'review' AND reviewed_at IS NULL) DESC, created_at DESC LIMIT ?`, limit).Scan(&out).Error
	})
	for i := range out {
		out[i].Reasons = []Reason{}
		_ = json.Unmarshal([]byte(out[i].RawReasons), &out[i].Reasons)
	}
	return out, err
}

// Resolve records box office's review of a decision, once.
func (s *Service) Resolve(ctx context.Context, t tenants.Tenant, id uuid.UUID, outcome string, by uuid.UUID) error {
	if outcome != "approved" && outcome != "rejected" {
		return app.InvalidField("invalid_outcome", "outcome", "outcome must be approved or rejected")
	}
	var n int64
	err := s.d.Tx(ctx, t, func(tx *gorm.DB) error {
		// The conditional update decides: a decision is reviewed once.
		res := tx.Exec(`UPDATE inv_risk_decisions SET reviewed_at = now(), reviewed_by = ?, review_outcome = ? WHERE id = ? AND action = 'review' AND reviewed_at IS NULL`, by, outcome, id)
		n = res.RowsAffected
		return res.Error
	})
	if err == nil && n == 0 {
		err = app.Conflict("already_reviewed", "%s", fmt.Sprintf("decision %s is not waiting for a review", id))
	}
	return err
}

// Wanted says whether the chain's limits are on (the card is then looked
// up at Stripe for CheckCard).
func (s *Service) Wanted(ctx context.Context, t tenants.Tenant) bool {
	st, err := s.Settings(ctx, t)
	return err == nil && st.Enabled
}

// CheckCard is the per-card rule, in the payment's transaction: the card's
// fingerprint is kept on the order, and the card's paid tickets for the
// event are counted under a lock per event and card, so two payments with
// one card at the same instant are counted one after the other. A refusal
// is recorded as a block with its reason; the caller refunds.
func (s *Service) CheckCard(ctx context.Context, t tenants.Tenant, tx *gorm.DB, o model.Order, fingerprint string) (string, error) {
	st, err := s.Settings(ctx, t)
	if err != nil || !st.Enabled {
		return "", err
	}
	if err := tx.Exec(`SELECT pg_advisory_xact_lock(hashtextextended('inv_card:' || ? || ':' || ?, 0))`, o.EventID.String(), fingerprint).Error; err != nil {
		return "", err
	}
	var paid, tickets int
	row := tx.Raw(`SELECT
			coalesce((SELECT sum(h.quantity) FROM inv_orders p JOIN inv_holds h ON h.id = p.hold_id
				WHERE p.event_id = ? AND p.card_fingerprint = ? AND p.status = 'paid' AND p.id <> ?), 0),
			coalesce((SELECT quantity FROM inv_holds WHERE id = ?), 0)`, o.EventID, fingerprint, o.ID, o.HoldID).Row()
	if err := row.Scan(&paid, &tickets); err != nil {
		return "", err
	}
	if err := tx.Exec(`UPDATE inv_orders SET card_fingerprint = ? WHERE id = ?`, fingerprint, o.ID).Error; err != nil {
		return "", err
	}
	d := DecideCard(paid, tickets, st.Thresholds)
	if d.Action == Allow {
		return "", nil
	}
	reasons, _ := json.Marshal(d.Reasons)
	if err := tx.Exec(`INSERT INTO inv_risk_decisions (id, event_id, hold_id, buyer_id, email, score, action, reasons)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, uuid.Must(uuid.NewV7()), o.EventID, o.HoldID, o.BuyerID, strings.ToLower(o.Email), d.Score, d.Action, string(reasons)).Error; err != nil {
		return "", err
	}
	return "this card has already paid for the most tickets one buyer may have for this event (" + d.Reasons[0].Detail + ")", nil
}
