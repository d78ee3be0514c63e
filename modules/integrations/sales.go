package integrations

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/tenants"
)

// Sales in. An outside order becomes units sold from its channel's quota in
// our inventory (app.ChannelSales: the storefront's conditional take), once
// per (connector, external order, tier): the row in int_orders is inserted
// first, ON CONFLICT DO NOTHING, in the same transaction as the take, so a
// duplicate delivery, a replayed poll page or two racing copies of one
// webhook sell it once. An order that no longer fits (the quota or the zone
// has too few units: their side sold what we did not have) is kept as
// 'oversold' with a row in int_oversells, published to ops after the
// commit, never dropped.

// Outcomes of an order line.
const (
	OutcomeSold      = "sold"
	OutcomeDuplicate = "duplicate"
	OutcomeOversold  = "oversold"
	OutcomeReturned  = "returned"
	OutcomeIgnored   = "ignored"
)

// saleLine is units of one of our tiers in an outside order, with the
// unit price the channel sold at when it says (zero: our tier's price).
type saleLine struct {
	Tier       uuid.UUID
	Quantity   int
	PriceMinor int64
	Currency   string
}

// Oversell is a channel sale that did not fit our inventory.
type Oversell struct {
	ID              uuid.UUID  `json:"id" gorm:"column:id"`
	ConnectorID     uuid.UUID  `json:"connector_id" gorm:"column:connector_id"`
	EventID         uuid.UUID  `json:"event_id" gorm:"column:event_id"`
	Channel         string     `json:"channel" gorm:"column:channel"`
	ExternalOrderID *string    `json:"external_order_id" gorm:"column:external_order_id"`
	Quantity        int        `json:"quantity" gorm:"column:quantity"`
	QuotaLeft       *int       `json:"quota_left" gorm:"column:quota_left"`
	DetectedBy      string     `json:"detected_by" gorm:"column:detected_by"`
	Detail          string     `json:"detail" gorm:"column:detail"`
	AlertedAt       *time.Time `json:"alerted_at" gorm:"column:alerted_at"`
	CreatedAt       time.Time  `json:"created_at" gorm:"column:created_at"`
}

// applyOrder records an outside order's lines in tx: placed sells, refunded
// returns. It reports an outcome per line and whether inventory changed.
func (s *Service) applyOrder(tx *gorm.DB, l Listing, orderID string, lines []saleLine, placed bool, theirAt *time.Time) ([]string, bool, error) {
	cs := s.app.ChannelSales()
	var outcomes []string
	changed := false
	for _, ln := range lines {
		sale := app.ChannelSale{EventID: l.EventID, TierID: ln.Tier, Channel: l.Channel, Quantity: ln.Quantity, PriceMinor: ln.PriceMinor, Currency: ln.Currency}
		var price *int64
		var currency *string
		if ln.PriceMinor > 0 {
			price, currency = &ln.PriceMinor, &ln.Currency
		}
		if placed {
			res := tx.Exec(`INSERT INTO int_orders (connector_id, external_order_id, tier_id, listing_id, event_id, quantity, status, their_at, received_at, price_minor, currency)
				VALUES (?, ?, ?, ?, ?, ?, 'sold', ?, clock_timestamp(), ?, ?) ON CONFLICT DO NOTHING`, l.ConnectorID, orderID, ln.Tier, l.ID, l.EventID, ln.Quantity, theirAt, price, currency)
			if res.Error != nil {
				return nil, false, res.Error
			}
			if res.RowsAffected == 0 {
				outcomes = append(outcomes, OutcomeDuplicate)
				continue
			}
			ok, left, err := cs.SellOnChannel(tx, sale)
			if err != nil {
				return nil, false, err
			}
			if ok {
				outcomes, changed = append(outcomes, OutcomeSold), true
				continue
			}
			if err := tx.Exec(`UPDATE int_orders SET status = 'oversold' WHERE connector_id = ? AND external_order_id = ? AND tier_id = ?`,
				l.ConnectorID, orderID, ln.Tier).Error; err != nil {
				return nil, false, err
			}
			detail := fmt.Sprintf("%s order %s sold %d that our inventory did not have for the channel (%d left in its quota)", l.Channel, orderID, ln.Quantity, left)
			if err := tx.Exec(`INSERT INTO int_oversells (id, connector_id, listing_id, event_id, channel, external_order_id, quantity, quota_left, detected_by, detail)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'sale', ?) ON CONFLICT DO NOTHING`,
				uuid.Must(uuid.NewV7()), l.ConnectorID, l.ID, l.EventID, l.Channel, orderID+"/"+ln.Tier.String(), ln.Quantity, left, detail).Error; err != nil {
				return nil, false, err
			}
			outcomes = append(outcomes, OutcomeOversold)
			continue
		}
		// Refunded on their side: units sold here go back once; an order we
		// never saw is recorded as returned (nothing to give back).
		var prevRows []struct {
			Status     string  `gorm:"column:status"`
			Quantity   int     `gorm:"column:quantity"`
			PriceMinor *int64  `gorm:"column:price_minor"`
			Currency   *string `gorm:"column:currency"`
		}
		if err := tx.Raw(`SELECT status, quantity, price_minor, currency FROM int_orders WHERE connector_id = ? AND external_order_id = ? AND tier_id = ? FOR UPDATE`,
			l.ConnectorID, orderID, ln.Tier).Scan(&prevRows).Error; err != nil {
			return nil, false, err
		}
		var prev []string
		for _, p := range prevRows {
			prev = append(prev, p.Status)
			// The units and price of the sale go back, whatever the
			// refund's copy of the order says.
			sale.Quantity, sale.PriceMinor, sale.Currency = p.Quantity, 0, ""
			if p.PriceMinor != nil && p.Currency != nil {
				sale.PriceMinor, sale.Currency = *p.PriceMinor, *p.Currency
			}
		}
		switch {
		case len(prev) == 0:
			if err := tx.Exec(`INSERT INTO int_orders (connector_id, external_order_id, tier_id, listing_id, event_id, quantity, status, their_at)
				VALUES (?, ?, ?, ?, ?, ?, 'returned', ?) ON CONFLICT DO NOTHING`, l.ConnectorID, orderID, ln.Tier, l.ID, l.EventID, ln.Quantity, theirAt).Error; err != nil {
				return nil, false, err
			}
			outcomes = append(outcomes, OutcomeReturned)
		case prev[0] == "returned":
			outcomes = append(outcomes, OutcomeDuplicate)
		default:
			if prev[0] == "sold" {
				if err := cs.ReturnOnChannel(tx, sale); err != nil {
					return nil, false, err
				}
				changed = true
			}
			if err := tx.Exec(`UPDATE int_orders SET status = 'returned', updated_at = now() WHERE connector_id = ? AND external_order_id = ? AND tier_id = ?`,
				l.ConnectorID, orderID, ln.Tier).Error; err != nil {
				return nil, false, err
			}
			outcomes = append(outcomes, OutcomeReturned)
		}
	}
	return outcomes, changed, nil
}

// TopicAlerts is the realtime topic ops hear channel oversells on.
const TopicAlerts = "integrations.alerts"

// alertOversells publishes oversells not alerted yet and marks them (an
// outbox: a failed publish is retried by the next poll or sweep).
func (s *Service) alertOversells(ctx context.Context, t tenants.Tenant) {
	var os []Oversell
	err := s.app.Tx(ctx, t, func(tx *gorm.DB) error {
		if err := tx.Raw(`SELECT id, connector_id, event_id, channel, external_order_id, quantity, quota_left, detected_by, detail, alerted_at, created_at
			FROM int_oversells WHERE alerted_at IS NULL ORDER BY created_at LIMIT 100 FOR UPDATE SKIP LOCKED`).Scan(&os).Error; err != nil {
			return err
		}
		for _, o := range os {
			s.log().Error("channel oversell", "tenant", t.Slug, "event", o.EventID, "channel", o.Channel, "quantity", o.Quantity, "detail", o.Detail)
			if err := s.app.Realtime.Publish(ctx, t, TopicAlerts, "channel_oversell", o); err != nil {
				return err
			}
			if err := tx.Exec(`UPDATE int_oversells SET alerted_at = now() WHERE id = ?`, o.ID).Error; err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		s.log().Warn("alerting channel oversells failed; the next sweep retries", "tenant", t.Slug, "err", err)
	}
}
