package integrations

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/tenants"
)

// Eventbrite webhooks are thin and unsigned: {"config":{"action",…},
// "api_url"}. The body is a hint only. The endpoint's path carries a
// per-connector secret (its SHA-256 is stored); api_url must be on the
// connector's API host (else our token would go elsewhere); the object is
// fetched with our token; the delivery id (X-Eventbrite-Delivery) is stored
// once, in the transaction of its effects, and orders are applied once per
// order id and tier. Unknown connectors and wrong secrets answer 404 (never
// 410, which would unsubscribe the webhook).

// WebhookBody is the delivery Eventbrite posts.
type WebhookBody struct {
	Config struct {
		Action      string `json:"action"`
		UserID      string `json:"user_id"`
		EndpointURL string `json:"endpoint_url"`
		WebhookID   string `json:"webhook_id"`
	} `json:"config"`
	APIURL string `json:"api_url"`
}

// WebhookResult says what a delivery did.
type WebhookResult struct {
	// Outcome: applied, duplicate (delivery seen), ignored (an action or
	// event we do not sell for).
	Outcome string `json:"outcome"`
	// Lines are the outcomes of the order's lines (sold, duplicate,
	// oversold, returned).
	Lines []string `json:"lines"`
}

// Actions handled.
var webhookActions = map[string]bool{"order.placed": true, "order.updated": true, "order.refunded": true,
	"attendee.updated": true, "attendee.checked_in": true, "event.updated": true}

const maxWebhookBody = 16 << 10

// HandleWebhook settles one Eventbrite delivery.
func (s *Service) HandleWebhook(ctx context.Context, t tenants.Tenant, connectorID uuid.UUID, secret, delivery string, body []byte) (WebhookResult, error) {
	var conn struct {
		Provider string `gorm:"column:provider"`
		APIBase  string `gorm:"column:api_base"`
		Hash     []byte `gorm:"column:path_secret_hash"`
	}
	var dup bool
	err := s.app.TxWith(ctx, t, tenants.TxOptions{ReadOnly: true}, func(tx *gorm.DB) error {
		var rows []struct {
			Provider string `gorm:"column:provider"`
			APIBase  string `gorm:"column:api_base"`
			Hash     []byte `gorm:"column:path_secret_hash"`
		}
		if err := tx.Raw(`SELECT provider, api_base, path_secret_hash FROM int_connectors WHERE id = ?`, connectorID).Scan(&rows).Error; err != nil {
			return err
		}
		if len(rows) == 0 || rows[0].Provider != ProviderEventbrite || !checkPathSecret(rows[0].Hash, secret) {
			return app.NotFoundCode("webhook_not_found", "no webhook endpoint here")
		}
		conn = rows[0]
		if delivery != "" {
			var n int64
			if err := tx.Raw(`SELECT count(*) FROM int_deliveries WHERE connector_id = ? AND delivery_id = ?`, connectorID, delivery).Row().Scan(&n); err != nil {
				return err
			}
			dup = n > 0
		}
		return nil
	})
	if err != nil {
		return WebhookResult{}, err
	}
	var in WebhookBody
	dec := json.NewDecoder(strings.NewReader(string(body)))
	if err := dec.Decode(&in); err != nil || in.Config.Action == "" || in.APIURL == "" {
		return WebhookResult{}, app.Invalid("invalid_webhook", "the body is not an Eventbrite delivery ({\"config\":{\"action\":…},\"api_url\":…})")
	}
	if len(delivery) > 100 {
		return WebhookResult{}, app.Invalid("invalid_webhook", "X-Eventbrite-Delivery is at most 100 characters")
	}
	base, _ := url.Parse(conn.APIBase)
	target, err := url.Parse(in.APIURL)
	if err != nil || base == nil || target.Scheme != base.Scheme || target.Host != base.Host || target.User != nil {
		return WebhookResult{}, app.Invalid("foreign_api_url", "api_url is not on the connector's API host; nothing was fetched")
	}
	if !strings.HasPrefix(target.Path, strings.TrimRight(base.Path, "/")+"/v3/") {
		return WebhookResult{}, app.Invalid("foreign_api_url", "api_url is not an Eventbrite v3 resource")
	}
	if dup {
		return WebhookResult{Outcome: OutcomeDuplicate, Lines: []string{}}, nil
	}
	if !webhookActions[in.Config.Action] {
		return s.recordDelivery(ctx, t, connectorID, delivery, in, OutcomeIgnored)
	}
	cl, _, err := s.clientFor(ctx, t, connectorID)
	if err != nil {
		return WebhookResult{}, err
	}
	res, err := s.fetchAndApply(ctx, t, cl, connectorID, delivery, in, target)
	s.health(ctx, t, cl, connectorID, nil, "webhook", in.Config.Action+" "+res.Outcome, err)
	if err != nil {
		var ae *apiError
		if errors.As(err, &ae) {
			// Eventbrite retries a delivery that is not answered 2xx.
			return WebhookResult{}, providerErr(err)
		}
		return WebhookResult{}, err
	}
	if slices.Contains(res.Lines, OutcomeOversold) {
		s.alertOversells(ctx, t)
	}
	return res, nil
}

func (s *Service) recordDelivery(ctx context.Context, t tenants.Tenant, connectorID uuid.UUID, delivery string, in WebhookBody, outcome string) (WebhookResult, error) {
	out := WebhookResult{Outcome: outcome, Lines: []string{}}
	if delivery == "" {
		return out, nil
	}
	err := s.app.Tx(ctx, t, func(tx *gorm.DB) error {
		return tx.Exec(`INSERT INTO int_deliveries (connector_id, delivery_id, action, api_url, outcome) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
			connectorID, delivery, in.Config.Action, in.APIURL, outcome).Error
	})
	return out, err
}

// errDuplicate rolls a delivery's transaction back when its id was stored
// meanwhile by a concurrent copy.
var errDuplicate = errors.New("duplicate delivery")

type ebOrder struct {
	ID        string `json:"id"`
	EventID   string `json:"event_id"`
	Status    string `json:"status"`
	Changed   string `json:"changed"`
	Attendees []struct {
		ID            string `json:"id"`
		TicketClassID string `json:"ticket_class_id"`
		Quantity      int    `json:"quantity"`
		CheckedIn     bool   `json:"checked_in"`
		Refunded      bool   `json:"refunded"`
		Cancelled     bool   `json:"cancelled"`
		Costs         struct {
			BasePrice *struct {
				Currency string `json:"currency"`
				Value    int64  `json:"value"`
			} `json:"base_price"`
		} `json:"costs"`
	} `json:"attendees"`
}

func returnReason(refunded bool) string {
	if refunded {
		return "refunded"
	}
	return "cancelled"
}

func (s *Service) fetchAndApply(ctx context.Context, t tenants.Tenant, cl *client, connectorID uuid.UUID, delivery string, in WebhookBody, target *url.URL) (WebhookResult, error) {
	out := WebhookResult{Outcome: "applied", Lines: []string{}}
	action := in.Config.Action
	var order ebOrder
	var attendee struct {
		ID            string `json:"id"`
		OrderID       string `json:"order_id"`
		EventID       string `json:"event_id"`
		TicketClassID string `json:"ticket_class_id"`
		Quantity      int    `json:"quantity"`
		CheckedIn     bool   `json:"checked_in"`
		Refunded      bool   `json:"refunded"`
		Cancelled     bool   `json:"cancelled"`
	}
	var event struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	}
	ref := target.String()
	switch {
	case strings.HasPrefix(action, "order."):
		q := target.Query()
		q.Set("expand", "attendees")
		u := *target
		u.RawQuery = q.Encode()
		if err := cl.do(ctx, "GET", u.String(), nil, &order); err != nil {
			return out, err
		}
	case strings.HasPrefix(action, "attendee."):
		if err := cl.do(ctx, "GET", ref, nil, &attendee); err != nil {
			return out, err
		}
	default:
		if err := cl.do(ctx, "GET", ref, nil, &event); err != nil {
			return out, err
		}
	}
	now := s.app.Now()
	var changedEvent uuid.UUID
	err := s.app.TxWith(ctx, t, tenants.TxOptions{Retry: true}, func(tx *gorm.DB) error {
		out = WebhookResult{Outcome: "applied", Lines: []string{}}
		changedEvent = uuid.Nil
		if delivery != "" {
			res := tx.Exec(`INSERT INTO int_deliveries (connector_id, delivery_id, action, api_url, outcome) VALUES (?, ?, ?, ?, 'applied') ON CONFLICT DO NOTHING`,
				connectorID, delivery, action, in.APIURL)
			if res.Error != nil {
				return res.Error
			}
			if res.RowsAffected == 0 {
				return errDuplicate
			}
		}
		switch {
		case strings.HasPrefix(action, "order."):
			l, err := listingFor(tx, connectorID, order.EventID)
			if err != nil {
				return err
			}
			if l == nil {
				out.Outcome = OutcomeIgnored
				return nil
			}
			if err := lockOrder(tx, connectorID, order.ID); err != nil {
				return err
			}
			placed := order.Status == "placed"
			// A placed order's attendees refunded or cancelled on their
			// side go back once (those sold here) and are not sold (those
			// refunded before the order reached us).
			var returns []attendeeReturn
			if placed {
				for _, a := range order.Attendees {
					if tier, ok := l.tierFor(a.TicketClassID); ok && a.Quantity > 0 && a.ID != "" && (a.Refunded || a.Cancelled) {
						returns = append(returns, attendeeReturn{ID: a.ID, Tier: tier, Quantity: a.Quantity, Reason: returnReason(a.Refunded)})
					}
				}
			}
			ro, rchanged, err := s.returnAttendees(tx, *l, order.ID, returns)
			if err != nil {
				return err
			}
			returned, err := returnedAttendees(tx, connectorID, order.ID)
			if err != nil {
				return err
			}
			perTier := map[uuid.UUID]int{}
			price := map[uuid.UUID]saleLine{}
			var order_ []uuid.UUID
			for _, a := range order.Attendees {
				tier, ok := l.tierFor(a.TicketClassID)
				if !ok || a.Quantity < 1 {
					continue
				}
				if placed && (a.Refunded || a.Cancelled || returned[a.ID]) {
					continue
				}
				if _, seen := perTier[tier]; !seen {
					order_ = append(order_, tier)
				}
				perTier[tier] += a.Quantity
				// The channel's price: the attendee's base price per unit
				// (the tier's when Eventbrite gives none).
				if bp := a.Costs.BasePrice; bp != nil && bp.Value > 0 && bp.Value%int64(a.Quantity) == 0 && len(bp.Currency) == 3 {
					if _, set := price[tier]; !set {
						price[tier] = saleLine{PriceMinor: bp.Value / int64(a.Quantity), Currency: strings.ToUpper(bp.Currency)}
					}
				}
			}
			var lines []saleLine
			for _, tier := range order_ {
				lines = append(lines, saleLine{Tier: tier, Quantity: perTier[tier], PriceMinor: price[tier].PriceMinor, Currency: price[tier].Currency})
			}
			if len(lines) == 0 && len(returns) == 0 {
				out.Outcome = OutcomeIgnored
				return nil
			}
			if !placed && order.Status != "refunded" {
				out.Outcome = OutcomeIgnored // pending, abandoned: nothing sold yet
				return nil
			}
			var theirAt *time.Time
			if ts, err := time.Parse(time.RFC3339, order.Changed); err == nil {
				theirAt = &ts
			}
			lo, changed, err := s.applyOrder(tx, *l, order.ID, lines, placed, theirAt)
			if err != nil {
				return err
			}
			out.Lines = append(ro, lo...)
			if changed || rchanged {
				changedEvent = l.EventID
			}
			return tx.Exec(`UPDATE int_listings SET last_webhook_at = ? WHERE id = ?`, now, l.ID).Error
		case strings.HasPrefix(action, "attendee."):
			l, err := listingFor(tx, connectorID, attendee.EventID)
			if err != nil || l == nil {
				out.Outcome = OutcomeIgnored
				return err
			}
			if tier, ok := l.tierFor(attendee.TicketClassID); ok && attendee.Quantity > 0 && attendee.ID != "" && attendee.OrderID != "" &&
				(attendee.Refunded || attendee.Cancelled) {
				if err := lockOrder(tx, connectorID, attendee.OrderID); err != nil {
					return err
				}
				lo, changed, err := s.returnAttendees(tx, *l, attendee.OrderID,
					[]attendeeReturn{{ID: attendee.ID, Tier: tier, Quantity: attendee.Quantity, Reason: returnReason(attendee.Refunded)}})
				if err != nil {
					return err
				}
				out.Lines = lo
				if changed {
					changedEvent = l.EventID
				}
			}
			in := 0
			if attendee.CheckedIn {
				in = 1
			}
			if err := tx.Exec(`UPDATE int_orders SET checked_in = ?, updated_at = now() WHERE connector_id = ? AND external_order_id = ?`,
				in, connectorID, attendee.OrderID).Error; err != nil {
				return err
			}
			return tx.Exec(`UPDATE int_listings SET last_webhook_at = ? WHERE id = ?`, now, l.ID).Error
		default:
			l, err := listingFor(tx, connectorID, event.ID)
			if err != nil || l == nil {
				out.Outcome = OutcomeIgnored
				return err
			}
			return tx.Exec(`UPDATE int_listings SET their_status = ?, their_at = ?, last_webhook_at = ? WHERE id = ?`, event.Status, now, now, l.ID).Error
		}
	})
	if errors.Is(err, errDuplicate) {
		return WebhookResult{Outcome: OutcomeDuplicate, Lines: []string{}}, nil
	}
	if err == nil && changedEvent != uuid.Nil {
		s.app.ChannelSales().StockChanged(ctx, t, changedEvent)
	}
	return out, err
}
