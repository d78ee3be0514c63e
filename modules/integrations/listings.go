package integrations

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/tenants"
)

// Listing links an external event to our event and to the channel quota it
// sells from; Tiers maps the provider's ticket class / ticket type ids to
// our GA tiers.
type Listing struct {
	ID              uuid.UUID            `json:"id" gorm:"column:id"`
	ConnectorID     uuid.UUID            `json:"connector_id" gorm:"column:connector_id"`
	ExternalEventID string               `json:"external_event_id" gorm:"column:external_event_id"`
	EventID         uuid.UUID            `json:"event_id" gorm:"column:event_id"`
	Channel         string               `json:"channel" gorm:"column:channel"`
	Tiers           map[string]uuid.UUID `json:"tiers" gorm:"-"`
	TiersRaw        []byte               `json:"-" gorm:"column:tiers"`
	Allocated       *int                 `json:"allocated" gorm:"column:allocated"`
	PushState       string               `json:"push_state" gorm:"column:push_state"`
	PushError       *string              `json:"push_error" gorm:"column:push_error"`
	PushedAt        *time.Time           `json:"pushed_at" gorm:"column:pushed_at"`
	TheirSold       *int                 `json:"their_sold" gorm:"column:their_sold"`
	TheirPending    *int                 `json:"their_pending" gorm:"column:their_pending"`
	TheirStatus     *string              `json:"their_status" gorm:"column:their_status"`
	TheirAt         *time.Time           `json:"their_at" gorm:"column:their_at"`
	LastWebhookAt   *time.Time           `json:"last_webhook_at" gorm:"column:last_webhook_at"`
	ClosedAt        *time.Time           `json:"closed_at" gorm:"column:closed_at"`
	// TheirInventoryStatus is Ticketmaster's Inventory Status API's word
	// for the event (TICKETS_AVAILABLE, FEW_TICKETS_LEFT,
	// TICKETS_NOT_AVAILABLE, UNKNOWN), read before its counts.
	TheirInventoryStatus   *string    `json:"their_inventory_status" gorm:"column:their_inventory_status"`
	TheirInventoryStatusAt *time.Time `json:"their_inventory_status_at" gorm:"column:their_inventory_status_at"`
}

// ListingInput links an external event.
type ListingInput struct {
	ExternalEventID string               `json:"external_event_id"`
	EventID         uuid.UUID            `json:"event_id"`
	Tiers           map[string]uuid.UUID `json:"tiers"`
}

// Validate implements app's request validation.
func (in ListingInput) Validate() error {
	if n := len(in.ExternalEventID); n < 1 || n > 120 {
		return app.InvalidField("invalid_listing", "external_event_id", "external_event_id is 1 to 120 characters")
	}
	if in.EventID == uuid.Nil {
		return app.InvalidField("invalid_listing", "event_id", "event_id is required")
	}
	if len(in.Tiers) == 0 || len(in.Tiers) > 50 {
		return app.InvalidField("invalid_listing", "tiers", "tiers maps 1 to 50 external ticket types to our tiers")
	}
	return nil
}

const listingCols = `id, connector_id, external_event_id, event_id, channel, tiers, allocated, push_state, push_error, pushed_at,
	their_sold, their_pending, their_status, their_at, last_webhook_at, closed_at, their_inventory_status, their_inventory_status_at`

func scanListings(tx *gorm.DB, where string, args ...any) ([]Listing, error) {
	var ls []Listing
	if err := tx.Raw(`SELECT `+listingCols+` FROM int_listings WHERE `+where+` ORDER BY created_at`, args...).Scan(&ls).Error; err != nil {
		return nil, err
	}
	for i := range ls {
		if err := json.Unmarshal(ls[i].TiersRaw, &ls[i].Tiers); err != nil {
			return nil, err
		}
	}
	return app.NonNil(ls), nil
}

// CreateListing links an external event to one of ours; the channel is the
// connector's provider. The event must exist; the tiers must be its GA tiers
// (the first sale would refuse another, so it is refused here).
func (s *Service) CreateListing(ctx context.Context, t tenants.Tenant, connectorID uuid.UUID, in ListingInput) (Listing, error) {
	if _, err := s.app.Events().Event(ctx, t, in.EventID); err != nil {
		return Listing{}, err
	}
	tiers, _ := json.Marshal(in.Tiers)
	id := uuid.Must(uuid.NewV7())
	var out Listing
	err := s.app.Tx(ctx, t, func(tx *gorm.DB) error {
		c, err := loadConnector(tx, connectorID)
		if err != nil {
			return err
		}
		res := tx.Exec(`INSERT INTO int_listings (id, connector_id, external_event_id, event_id, channel, tiers) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT DO NOTHING`, id, connectorID, in.ExternalEventID, in.EventID, c.Provider, tiers)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return app.Conflict("listing_exists", "the external event is listed already, or the event already has a %s listing", c.Provider)
		}
		ls, err := scanListings(tx, `id = ?`, id)
		if err == nil {
			out = ls[0]
		}
		return err
	})
	return out, err
}

// ExternalEvent is an event in the provider's catalogue.
type ExternalEvent struct {
	ID     string    `json:"id"`
	Name   string    `json:"name"`
	Start  time.Time `json:"start"`
	Status string    `json:"status"`
}

// ExternalEvents pages through the provider's catalogue to its last page:
// Discovery's `page`/`_links.next` for Ticketmaster, the organisation's
// events by `pagination.continuation` for Eventbrite.
func (s *Service) ExternalEvents(ctx context.Context, t tenants.Tenant, connectorID uuid.UUID) ([]ExternalEvent, int, error) {
	cl, c, err := s.clientFor(ctx, t, connectorID)
	if err != nil {
		return nil, 0, err
	}
	out := []ExternalEvent{}
	pages := 0
	switch c.Provider {
	case ProviderTicketmaster:
		ref := "discovery/v2/events.json?size=50&page=0"
		for ref != "" && pages < 1000 {
			var page struct {
				Embedded struct {
					Events []struct {
						ID, Name string
						Dates    struct {
							Start  struct{ DateTime time.Time } `json:"start"`
							Status struct{ Code string }        `json:"status"`
						} `json:"dates"`
					} `json:"events"`
				} `json:"_embedded"`
				Page struct {
					Number, TotalPages int
				} `json:"page"`
				Links struct {
					Next *struct{ Href string } `json:"next"`
				} `json:"_links"`
			}
			if err = cl.do(ctx, "GET", ref, nil, &page); err != nil {
				break
			}
			pages++
			for _, e := range page.Embedded.Events {
				out = append(out, ExternalEvent{ID: e.ID, Name: e.Name, Start: e.Dates.Start.DateTime, Status: e.Dates.Status.Code})
			}
			ref = ""
			if page.Links.Next != nil && page.Page.Number+1 < page.Page.TotalPages {
				ref = page.Links.Next.Href[1:] // relative to the base
			}
		}
	default:
		cont := ""
		for pages < 1000 {
			q := url.Values{"status": {"all"}, "page_size": {"50"}}
			if cont != "" {
				q.Set("continuation", cont)
			}
			var page struct {
				Pagination struct {
					Continuation string `json:"continuation"`
					HasMore      bool   `json:"has_more_items"`
				} `json:"pagination"`
				Events []struct {
					ID    string                `json:"id"`
					Name  struct{ Text string } `json:"name"`
					Start struct {
						UTC time.Time `json:"utc"`
					} `json:"start"`
					Status string `json:"status"`
				} `json:"events"`
			}
			if err = cl.do(ctx, "GET", "v3/organizations/"+url.PathEscape(c.Account)+"/events/?"+q.Encode(), nil, &page); err != nil {
				break
			}
			pages++
			for _, e := range page.Events {
				out = append(out, ExternalEvent{ID: e.ID, Name: e.Name.Text, Start: e.Start.UTC, Status: e.Status})
			}
			if cont = page.Pagination.Continuation; cont == "" || !page.Pagination.HasMore {
				break
			}
		}
	}
	s.health(ctx, t, cl, connectorID, nil, "catalogue", "read "+strconv.Itoa(len(out))+" events in "+strconv.Itoa(pages)+" pages", err)
	if err != nil {
		return nil, pages, providerErr(err)
	}
	return out, pages, nil
}

// providerErr turns a provider's refusal into a problem for our caller.
func providerErr(err error) error {
	var own *app.Error
	if errors.As(err, &own) {
		return own // ours already (Discovery's day used up)
	}
	if ae, ok := err.(*apiError); ok {
		switch {
		case ae.Status == 401 || ae.Status == 403:
			return app.Conflict("provider_auth_failed", "the provider refused the connector's credentials (%s)", ae.Code)
		case ae.transient():
			return app.Upstream("provider_unavailable", max(ae.RetryAfter, time.Second), "the provider did not answer in time: %s", ae.Error())
		}
		return app.Conflict("provider_refused", "the provider refused: %s", ae.Error())
	}
	return app.Upstream("provider_unavailable", 5*time.Second, "the provider did not answer: %v", err)
}

func (l Listing) tierFor(external string) (uuid.UUID, bool) {
	id, ok := l.Tiers[external]
	return id, ok
}

func listingFor(tx *gorm.DB, connector uuid.UUID, externalEvent string) (*Listing, error) {
	ls, err := scanListings(tx, `connector_id = ? AND external_event_id = ?`, connector, externalEvent)
	if err != nil || len(ls) == 0 {
		return nil, err
	}
	return &ls[0], nil
}

var _ = fmt.Sprintf
