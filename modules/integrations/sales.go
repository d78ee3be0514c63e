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
		prevRows, err := lockOrderLine(tx, l.ConnectorID, orderID, ln.Tier)
		if err != nil {
			return nil, false, err
		}
		var prev []string
		for _, p := range prevRows {
			prev = append(prev, p.Status)
			// The units and price of the sale go back, whatever the
			// refund's copy of the order says; units an attendee's partial
			// refund gave back already are not given twice.
			sale.Quantity, sale.PriceMinor, sale.Currency = p.Quantity-p.Returned, 0, ""
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
			if prev[0] == "sold" && sale.Quantity > 0 {
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

// orderLine is an order's row for one tier, as a return reads it.
type orderLine struct {
	Status     string  `gorm:"column:status"`
	Quantity   int     `gorm:"column:quantity"`
	Returned   int     `gorm:"column:returned_quantity"`
	PriceMinor *int64  `gorm:"column:price_minor"`
	Currency   *string `gorm:"column:currency"`
}

func lockOrderLine(tx *gorm.DB, connector uuid.UUID, orderID string, tier uuid.UUID) ([]orderLine, error) {
	var rows []orderLine
	err := tx.Raw(`SELECT status, quantity, returned_quantity, price_minor, currency FROM int_orders
		WHERE connector_id = ? AND external_order_id = ? AND tier_id = ? FOR UPDATE`, connector, orderID, tier).Scan(&rows).Error
	return rows, err
}

// lockOrder serialises, until tx ends, everything applied for one outside
// order: an order delivery and an attendee's refund racing each other
// would otherwise each miss what the other is writing (the attendee's
// return before the order's row exists, the order selling that attendee).
func lockOrder(tx *gorm.DB, connector uuid.UUID, orderID string) error {
	return tx.Exec(`SELECT pg_advisory_xact_lock(hashtextextended('int-order:' || ? || ':' || ?, 0))`, connector.String(), orderID).Error
}

// attendeeReturn is one attendee refunded or cancelled on the channel while
// its order stays placed.
type attendeeReturn struct {
	ID       string
	Tier     uuid.UUID
	Quantity int
	Reason   string // refunded, cancelled
}

// returnAttendees gives an order's refunded attendees' units back to the
// channel's quota, once per attendee (the int_attendee_returns key), in tx
// under lockOrder. An attendee whose order line was never sold here (not
// received yet, oversold, refunded whole) is recorded with nothing given
// back, so the order, when it comes, sells the others only.
func (s *Service) returnAttendees(tx *gorm.DB, l Listing, orderID string, as []attendeeReturn) ([]string, bool, error) {
	var outcomes []string
	changed := false
	for _, a := range as {
		rows, err := lockOrderLine(tx, l.ConnectorID, orderID, a.Tier)
		if err != nil {
			return nil, false, err
		}
		units := 0
		var sale app.ChannelSale
		if len(rows) == 1 && rows[0].Status == OutcomeSold && rows[0].Quantity-rows[0].Returned >= a.Quantity {
			p := rows[0]
			units = a.Quantity
			sale = app.ChannelSale{EventID: l.EventID, TierID: a.Tier, Channel: l.Channel, Quantity: units}
			if p.PriceMinor != nil && p.Currency != nil {
				sale.PriceMinor, sale.Currency = *p.PriceMinor, *p.Currency
			}
		}
		res := tx.Exec(`INSERT INTO int_attendee_returns (connector_id, external_order_id, attendee_id, listing_id, tier_id, quantity, units_returned, reason)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`, l.ConnectorID, orderID, a.ID, l.ID, a.Tier, a.Quantity, units, a.Reason)
		if res.Error != nil {
			return nil, false, res.Error
		}
		if res.RowsAffected == 0 {
			outcomes = append(outcomes, OutcomeDuplicate)
			continue
		}
		if units > 0 {
			if err := s.app.ChannelSales().ReturnOnChannel(tx, sale); err != nil {
				return nil, false, err
			}
			if err := tx.Exec(`UPDATE int_orders SET returned_quantity = returned_quantity + ?, updated_at = now()
				WHERE connector_id = ? AND external_order_id = ? AND tier_id = ?`, units, l.ConnectorID, orderID, a.Tier).Error; err != nil {
				return nil, false, err
			}
			changed = true
		}
		outcomes = append(outcomes, OutcomeReturned)
	}
	return outcomes, changed, nil
}

// returnedAttendees are the order's attendees recorded as returned.
func returnedAttendees(tx *gorm.DB, connector uuid.UUID, orderID string) (map[string]bool, error) {
	var ids []string
	if err := tx.Raw(`SELECT attendee_id FROM int_attendee_returns WHERE connector_id = ? AND external_order_id = ?`, connector, orderID).Scan(&ids).Error; err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, id := range ids {
		out[id] = true
	}
	return out, nil
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
