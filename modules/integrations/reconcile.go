package integrations

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/tenants"
)

// Reconciliation compares, per event and channel, what we allocated, what
// the channel says it sold (fetched now), what our books sold through it
// (the channel quota's sold units, and the orders recorded), what is held
// or pending, and explains a difference when it can. A channel that sold
// past its allocation is a channel oversell, recorded and alerted like one
// found at sale time. The final reconciliation at sale close adds the proof
// that all channels together sold no more than capacity, as a ledger entry.

// Reconciliation is one channel's figures for an event.
type Reconciliation struct {
	ListingID  uuid.UUID  `json:"listing_id" gorm:"column:listing_id"`
	EventID    uuid.UUID  `json:"event_id" gorm:"column:event_id"`
	Channel    string     `json:"channel" gorm:"column:channel"`
	Allocated  int        `json:"allocated" gorm:"column:allocated"`
	TheirSold  *int       `json:"their_sold" gorm:"column:their_sold"`
	OurSold    int        `json:"our_sold" gorm:"column:our_sold"`
	Pending    int        `json:"pending" gorm:"column:pending"`
	Delta      *int       `json:"delta" gorm:"column:delta"`
	Drift      bool       `json:"drift" gorm:"column:drift"`
	Cause      *string    `json:"cause" gorm:"column:cause"`
	Final      bool       `json:"final" gorm:"column:final"`
	At         time.Time  `json:"at" gorm:"column:at"`
	Cursor     int64      `json:"cursor" gorm:"-"`
	LastHookAt *time.Time `json:"last_webhook_at" gorm:"-"`
}

// EventReconciliation is every channel of an event, and for a final one the
// proof across channels.
type EventReconciliation struct {
	EventID  uuid.UUID        `json:"event_id"`
	Capacity int              `json:"capacity"`
	Sold     int              `json:"sold"`
	Channels []Reconciliation `json:"channels"`
	Final    bool             `json:"final"`
	// Proof is the ledger memo of a final reconciliation.
	Proof string `json:"proof,omitempty"`
}

// Reconcile reconciles every channel listing of an event; final closes them
// and writes the proof to the ledger (refused if it does not hold).
func (s *Service) Reconcile(ctx context.Context, t tenants.Tenant, eventID uuid.UUID, final bool) (EventReconciliation, error) {
	var listings []Listing
	if err := s.app.TxWith(ctx, t, tenants.TxOptions{ReadOnly: true}, func(tx *gorm.DB) error {
		var err error
		listings, err = scanListings(tx, `event_id = ?`, eventID)
		return err
	}); err != nil {
		return EventReconciliation{}, err
	}
	if len(listings) == 0 {
		return EventReconciliation{}, app.NotFoundCode("listing_not_found", "the event is listed on no channel")
	}
	// Their counts, fetched before any transaction.
	theirs := map[uuid.UUID]*int{}
	status := map[uuid.UUID]string{}
	for _, l := range listings {
		sold, st, err := s.theirCount(ctx, t, l)
		if err != nil {
			// Recorded on the timeline; the reconciliation says their count is unknown.
			continue
		}
		theirs[l.ID], status[l.ID] = &sold, st
	}
	stock, err := s.app.ChannelSales().ChannelStock(ctx, t, eventID)
	if err != nil {
		return EventReconciliation{}, err
	}
	quota := map[string]app.ChannelQuota{}
	for _, q := range stock.Channels {
		quota[q.Channel] = q
	}
	out := EventReconciliation{EventID: eventID, Capacity: stock.Capacity, Sold: stock.Sold, Final: final, Channels: []Reconciliation{}}
	now := s.app.Now()
	err = s.app.TxWith(ctx, t, tenants.TxOptions{Retry: true}, func(tx *gorm.DB) error {
		out.Channels = out.Channels[:0]
		if final {
			// Once per event: two final reconciliations racing (the
			// automatic one at sale close, a person's) queue on the
			// listings' rows, and the second finds them closed.
			var open []uuid.UUID
			if err := tx.Raw(`SELECT id FROM int_listings WHERE event_id = ? AND closed_at IS NULL FOR UPDATE`, eventID).Scan(&open).Error; err != nil {
				return err
			}
			if len(open) == 0 {
				return app.Conflict("reconciliation_final", "the event's final channel reconciliation is done already")
			}
		}
		for _, l := range listings {
			q := quota[l.Channel]
			r := Reconciliation{ListingID: l.ID, EventID: eventID, Channel: l.Channel, Allocated: q.Quota, OurSold: q.Sold, Pending: q.Held,
				TheirSold: theirs[l.ID], Final: final, At: now, LastHookAt: l.LastWebhookAt}
			var counts struct {
				Sold, Oversold, Returned, Orders int
			}
			if err := tx.Raw(`SELECT coalesce(sum(quantity - returned_quantity) FILTER (WHERE status = 'sold'), 0) AS sold,
					coalesce(sum(quantity) FILTER (WHERE status = 'oversold'), 0) AS oversold,
					coalesce(sum(quantity) FILTER (WHERE status = 'returned'), 0) + coalesce(sum(returned_quantity) FILTER (WHERE status = 'sold'), 0) AS returned, count(*) AS orders
				FROM int_orders WHERE listing_id = ?`, l.ID).Row().Scan(&counts.Sold, &counts.Oversold, &counts.Returned, &counts.Orders); err != nil {
				return err
			}
			if l.TheirPending != nil {
				r.Pending += *l.TheirPending
			}
			var causes []string
			if r.TheirSold != nil {
				d := *r.TheirSold - r.OurSold
				r.Delta = &d
				r.Drift = d != 0
				switch {
				case *r.TheirSold > r.Allocated:
					causes = append(causes, fmt.Sprintf("channel oversell: %s sold %d against an allocation of %d", l.Channel, *r.TheirSold, r.Allocated))
					if err := tx.Exec(`INSERT INTO int_oversells (id, connector_id, listing_id, event_id, channel, quantity, quota_left, detected_by, detail)
						SELECT ?, ?, ?, ?, ?, ?, 0, 'reconciliation', ? WHERE NOT EXISTS (SELECT 1 FROM int_oversells WHERE listing_id = ? AND detected_by = 'reconciliation' AND quantity = ?)`,
						uuid.Must(uuid.NewV7()), l.ConnectorID, l.ID, eventID, l.Channel, *r.TheirSold-r.Allocated,
						fmt.Sprintf("reconciliation: %s reports %d sold against our allocation of %d", l.Channel, *r.TheirSold, r.Allocated), l.ID, *r.TheirSold-r.Allocated).Error; err != nil {
						return err
					}
				case d > 0 && counts.Oversold > 0:
					causes = append(causes, fmt.Sprintf("%d units of orders that did not fit our inventory (recorded oversells)", counts.Oversold))
				case d > 0:
					causes = append(causes, fmt.Sprintf("%d sold on %s not received yet (webhook or poll lag)", d, l.Channel))
				case d < 0 && l.Channel == ProviderEventbrite && status[l.ID] == "live" && *r.TheirSold == 0:
					causes = append(causes, fmt.Sprintf("Eventbrite shows nothing sold where our books hold %d, yet the event is still live in its API: cancelled on their site (a known Eventbrite drift); its refunds have not reached us", r.OurSold))
				case d < 0 && l.Channel == ProviderTicketmaster:
					causes = append(causes, fmt.Sprintf("Ticketmaster reports %d fewer: its availability is cached (Partner data may be stale for long)", -d))
				case d < 0:
					causes = append(causes, fmt.Sprintf("%s reports %d fewer than our books: refunds not received yet", l.Channel, -d))
				}
			}
			if r.OurSold > r.Allocated {
				causes = append(causes, "our books sold past the allocation (impossible: the quota's CHECK refuses it)")
			}
			if len(causes) > 0 {
				c := strings.Join(causes, "; ")
				r.Cause = &c
			}
			if err := tx.Exec(`INSERT INTO int_reconciliations (id, listing_id, event_id, channel, allocated, their_sold, our_sold, pending, delta, drift, cause, final, at)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, uuid.Must(uuid.NewV7()), l.ID, eventID, l.Channel, r.Allocated, r.TheirSold, r.OurSold, r.Pending,
				r.Delta, r.Drift, r.Cause, final, now).Error; err != nil {
				return err
			}
			detail := fmt.Sprintf("allocated %d, ours %d", r.Allocated, r.OurSold)
			if r.TheirSold != nil {
				detail += fmt.Sprintf(", theirs %d, delta %d", *r.TheirSold, *r.Delta)
			}
			if r.Cause != nil {
				detail += " — " + *r.Cause
			}
			kind := "reconcile"
			if final {
				kind = "final"
			}
			if err := tx.Exec(`INSERT INTO int_syncs (connector_id, listing_id, kind, ok, detail, at) VALUES (?, ?, ?, ?, ?, ?)`,
				l.ConnectorID, l.ID, kind, !r.Drift, truncate(detail, 1000), now).Error; err != nil {
				return err
			}
			out.Channels = append(out.Channels, r)
		}
		if !final {
			return nil
		}
		// The proof: every channel's sold units are inside its quota and
		// all of them (the storefront's too) inside capacity.
		var parts []string
		channelSold := 0
		for _, q := range stock.Channels {
			parts = append(parts, fmt.Sprintf("%s %d of %d", q.Channel, q.Sold, q.Quota))
			channelSold += q.Sold
			if q.Sold > q.Quota {
				return app.Conflict("reconciliation_failed", "the %s channel sold %d over its quota %d", q.Channel, q.Sold, q.Quota)
			}
		}
		if stock.Sold > stock.Capacity {
			return app.Conflict("reconciliation_failed", "sold %d over capacity %d", stock.Sold, stock.Capacity)
		}
		out.Proof = fmt.Sprintf("final channel reconciliation: sold %d of capacity %d across all channels (%s)", stock.Sold, stock.Capacity, strings.Join(parts, ", "))
		if _, err := s.app.Ledger.Append(tx, "channels.final_reconciliation", "event:"+eventID.String(), 0, "XXX", out.Proof); err != nil {
			return err
		}
		return tx.Exec(`UPDATE int_listings SET closed_at = ? WHERE event_id = ? AND closed_at IS NULL`, now, eventID).Error
	})
	if err != nil {
		return EventReconciliation{}, err
	}
	s.alertOversells(ctx, t)
	return out, nil
}

// theirCount asks the channel what it sold (and the event's status there).
func (s *Service) theirCount(ctx context.Context, t tenants.Tenant, l Listing) (int, string, error) {
	cl, _, err := s.clientFor(ctx, t, l.ConnectorID)
	if err != nil {
		return 0, "", err
	}
	sold, status := 0, ""
	switch l.Channel {
	case ProviderTicketmaster:
		// The Inventory Status API first: cheap, and it tells an event
		// Ticketmaster does not know (or an API that refuses us) before
		// the counts are asked for.
		var statuses map[string]string
		if statuses, err = s.readInventoryStatus(ctx, t, cl, []Listing{l}); err != nil {
			break
		}
		if st := statuses[l.ExternalEventID]; st == "" || st == "UNKNOWN" {
			err = &apiError{Status: 404, Code: "UNKNOWN", Text: "Ticketmaster's Inventory Status API does not know event " + l.ExternalEventID + ": its counts were not read"}
			break
		}
		var rec struct {
			Sold    int `json:"sold"`
			Pending int `json:"pending"`
		}
		err = cl.do(ctx, "GET", "partners/v1/events/"+url.PathEscape(l.ExternalEventID)+"/reconciliation", nil, &rec)
		sold = rec.Sold
	default:
		var ev struct {
			Status        string `json:"status"`
			TicketClasses []struct {
				ID           string `json:"id"`
				QuantitySold int    `json:"quantity_sold"`
			} `json:"ticket_classes"`
		}
		err = cl.do(ctx, "GET", "v3/events/"+url.PathEscape(l.ExternalEventID)+"/?expand=ticket_classes", nil, &ev)
		for _, tc := range ev.TicketClasses {
			if _, ok := l.Tiers[tc.ID]; ok {
				sold += tc.QuantitySold
			}
		}
		status = ev.Status
	}
	if err == nil {
		if dbErr := s.app.Tx(ctx, t, func(tx *gorm.DB) error {
			return tx.Exec(`UPDATE int_listings SET their_sold = ?, their_status = coalesce(nullif(?, ''), their_status), their_at = ? WHERE id = ?`, sold, status, s.app.Now(), l.ID).Error
		}); dbErr != nil {
			return 0, "", dbErr
		}
	}
	s.health(ctx, t, cl, l.ConnectorID, &l.ID, "reconcile", "their count "+fmt.Sprint(sold), err)
	return sold, status, err
}

// Oversells lists an event's channel oversells.
func (s *Service) Oversells(ctx context.Context, t tenants.Tenant, eventID uuid.UUID) ([]Oversell, error) {
	var os []Oversell
	err := s.app.TxWith(ctx, t, tenants.TxOptions{ReadOnly: true}, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT id, connector_id, event_id, channel, external_order_id, quantity, quota_left, detected_by, detail, alerted_at, created_at
			FROM int_oversells WHERE event_id = ? ORDER BY created_at`, eventID).Scan(&os).Error
	})
	return app.NonNil(os), err
}

// Sync is a line of the sync timeline.
type Sync struct {
	ID          int64      `json:"id" gorm:"column:id"`
	ConnectorID uuid.UUID  `json:"connector_id" gorm:"column:connector_id"`
	ListingID   *uuid.UUID `json:"listing_id" gorm:"column:listing_id"`
	Kind        string     `json:"kind" gorm:"column:kind"`
	OK          bool       `json:"ok" gorm:"column:ok"`
	Detail      string     `json:"detail" gorm:"column:detail"`
	Calls       int        `json:"calls" gorm:"column:calls"`
	At          time.Time  `json:"at" gorm:"column:at"`
}

// ChannelsView is an event's channels: listings, the latest reconciliation
// per channel, oversells and the timeline of syncs.
type ChannelsView struct {
	EventID         uuid.UUID        `json:"event_id"`
	Stock           app.ChannelStock `json:"stock"`
	Listings        []Listing        `json:"listings"`
	Reconciliations []Reconciliation `json:"reconciliations"`
	Oversells       []Oversell       `json:"oversells"`
	Timeline        []Sync           `json:"timeline"`
	// Offers are the tier prices and sale windows told to each listing.
	Offers []OfferPush `json:"offers"`
}

// Channels reads an event's channels view.
func (s *Service) Channels(ctx context.Context, t tenants.Tenant, eventID uuid.UUID) (ChannelsView, error) {
	v := ChannelsView{EventID: eventID}
	var err error
	if v.Stock, err = s.app.ChannelSales().ChannelStock(ctx, t, eventID); err != nil {
		return v, err
	}
	err = s.app.TxWith(ctx, t, tenants.TxOptions{ReadOnly: true}, func(tx *gorm.DB) error {
		var err error
		if v.Listings, err = scanListings(tx, `event_id = ?`, eventID); err != nil {
			return err
		}
		if err := tx.Raw(`SELECT DISTINCT ON (channel) listing_id, event_id, channel, allocated, their_sold, our_sold, pending, delta, drift, cause, final, at
			FROM int_reconciliations WHERE event_id = ? ORDER BY channel, at DESC`, eventID).Scan(&v.Reconciliations).Error; err != nil {
			return err
		}
		if err := tx.Raw(`SELECT id, connector_id, event_id, channel, external_order_id, quantity, quota_left, detected_by, detail, alerted_at, created_at
			FROM int_oversells WHERE event_id = ? ORDER BY created_at`, eventID).Scan(&v.Oversells).Error; err != nil {
			return err
		}
		return tx.Raw(`SELECT s.id, s.connector_id, s.listing_id, s.kind, s.ok, s.detail, s.calls, s.at FROM int_syncs s
			WHERE s.listing_id IN (SELECT id FROM int_listings WHERE event_id = ?)
			   OR (s.listing_id IS NULL AND s.connector_id IN (SELECT connector_id FROM int_listings WHERE event_id = ?))
			ORDER BY s.at DESC, s.id DESC LIMIT 100`, eventID, eventID).Scan(&v.Timeline).Error
	})
	if err == nil {
		v.Offers, err = s.OfferPushes(ctx, t, eventID)
	}
	cursors := map[uuid.UUID]int64{}
	if err == nil {
		var rows []struct {
			ID     uuid.UUID `gorm:"column:id"`
			Cursor int64     `gorm:"column:poll_cursor"`
		}
		err = s.app.TxWith(ctx, t, tenants.TxOptions{ReadOnly: true}, func(tx *gorm.DB) error {
			return tx.Raw(`SELECT id, poll_cursor FROM int_connectors`).Scan(&rows).Error
		})
		for _, r := range rows {
			cursors[r.ID] = r.Cursor
		}
	}
	for i := range v.Reconciliations {
		for _, l := range v.Listings {
			if l.ID == v.Reconciliations[i].ListingID {
				v.Reconciliations[i].LastHookAt = l.LastWebhookAt
				v.Reconciliations[i].Cursor = cursors[l.ConnectorID]
			}
		}
	}
	v.Reconciliations, v.Oversells, v.Timeline = app.NonNil(v.Reconciliations), app.NonNil(v.Oversells), app.NonNil(v.Timeline)
	return v, err
}
