package integrations

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/jobs"
	"marquee/tenants"
)

// Tier prices and sale windows out. When the inventory says an event's
// offers changed (app's OffersChanged hook, after its commit), a task per
// change reads the event's GA tiers through the ChannelSales contract and,
// for each listing's mapped ticket type, compares the price and sale window
// with what the channel was last told (int_offer_pushes): only a
// difference is pushed — Eventbrite's ticket class `cost` ("EUR,3000"),
// `sales_start`, `sales_end`; Ticketmaster's offer on the allocation
// channel (`faceValue`, `onsaleDateTime`, `offsaleDateTime`). So the task is
// idempotent: run twice, or after the push went through, it sends nothing.
// A transient failure (429, 5xx, no answer) keeps the row pending and the
// task retries with growing delays; a refusal (a bad value, Eventbrite's
// cost after sales) is final for those values and recorded. Ticketmaster's
// nightly maintenance window holds its pushes ("waiting") until it ends.
// Every attempt is a line of the sync timeline.

// TaskOffers pushes an event's tier prices and sale windows.
const TaskOffers = "integrations:offers"

type offersPayload struct {
	Event uuid.UUID `json:"event"`
}

// Offer push states.
const (
	OfferPending = "pending"
	OfferWaiting = "waiting" // Ticketmaster's maintenance window
	OfferPushed  = "pushed"
	OfferFailed  = "failed"
)

// OfferPush is what a listing's ticket type was (or is to be) told.
type OfferPush struct {
	ListingID    uuid.UUID  `json:"listing_id" gorm:"column:listing_id"`
	Channel      string     `json:"channel" gorm:"column:channel"`
	ExternalType string     `json:"external_type" gorm:"column:external_type"`
	TierID       uuid.UUID  `json:"tier_id" gorm:"column:tier_id"`
	PriceMinor   int64      `json:"price_minor" gorm:"column:price_minor"`
	Currency     string     `json:"currency" gorm:"column:currency"`
	SaleStarts   *time.Time `json:"sale_starts" gorm:"column:sale_starts"`
	SaleEnds     *time.Time `json:"sale_ends" gorm:"column:sale_ends"`
	State        string     `json:"state" gorm:"column:state"`
	Error        *string    `json:"error" gorm:"column:error"`
	Attempts     int        `json:"attempts" gorm:"column:attempts"`
	PushedAt     *time.Time `json:"pushed_at" gorm:"column:pushed_at"`
}

// offersChanged is the inventory's OffersChanged hook: it queues one push
// per changed event that has open listings (the hook runs in the seller's
// goroutine, so it only reads and enqueues).
func (s *Service) offersChanged(ctx context.Context, t tenants.Tenant, ids []uuid.UUID) {
	ctx = context.WithoutCancel(ctx)
	var listed []uuid.UUID
	if err := s.app.TxWith(ctx, t, tenants.TxOptions{ReadOnly: true}, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT DISTINCT event_id FROM int_listings WHERE event_id IN ? AND closed_at IS NULL`, ids).Scan(&listed).Error
	}); err != nil {
		s.log().Warn("reading listings for an offer change failed; the periodic sweep pushes it", "tenant", t.Slug, "err", err)
		return
	}
	for _, ev := range listed {
		if err := s.EnqueueOffers(ctx, t, ev); err != nil {
			s.log().Warn("queueing an offer push failed; the periodic sweep pushes it", "tenant", t.Slug, "event", ev, "err", err)
		}
	}
}

// EnqueueOffers queues a push of the event's offers. Each change gets a
// task of its own (the task compares with what was pushed, so extra runs
// send nothing).
func (s *Service) EnqueueOffers(ctx context.Context, t tenants.Tenant, eventID uuid.UUID) error {
	_, err := s.app.Jobs.Enqueue(ctx, t, TaskOffers, offersPayload{Event: eventID},
		asynq.TaskID(fmt.Sprintf("int-offers:%s:%s:%s", t.Slug, eventID, uuid.Must(uuid.NewV7()))), asynq.Queue(jobs.QueueDefault), asynq.MaxRetry(30))
	return err
}

// sweepOffers queues a push for every event with an open listing: what a
// crash between the inventory's commit and its hook lost is pushed late.
func (s *Service) sweepOffers(ctx context.Context, t tenants.Tenant) error {
	var evs []uuid.UUID
	if err := s.app.TxWith(ctx, t, tenants.TxOptions{ReadOnly: true}, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT DISTINCT event_id FROM int_listings WHERE closed_at IS NULL`).Scan(&evs).Error
	}); err != nil {
		return err
	}
	var errs []error
	for _, ev := range evs {
		errs = append(errs, s.EnqueueOffers(ctx, t, ev))
	}
	return errors.Join(errs...)
}

// OffersResult says what a push of an event's offers did.
type OffersResult struct {
	Pushed  int `json:"pushed"`
	Waiting int `json:"waiting"`
	Pending int `json:"pending"` // transient failures, retried
	Failed  int `json:"failed"`
	// RetryIn is when a waiting or pending push should run again.
	RetryIn time.Duration `json:"-"`
}

// PushOffers brings every open listing of the event up to the tiers'
// current prices and sale windows.
func (s *Service) PushOffers(ctx context.Context, t tenants.Tenant, eventID uuid.UUID) (OffersResult, error) {
	var out OffersResult
	stock, err := s.app.ChannelSales().ChannelStock(ctx, t, eventID)
	if err != nil {
		return out, err
	}
	tiers := map[uuid.UUID]app.ChannelTier{}
	for _, tr := range stock.Tiers {
		tiers[tr.ID] = tr
	}
	var listings []Listing
	var due []OfferPush
	err = s.app.Tx(ctx, t, func(tx *gorm.DB) error {
		var err error
		if listings, err = scanListings(tx, `event_id = ? AND closed_at IS NULL`, eventID); err != nil {
			return err
		}
		for _, l := range listings {
			for ext, tierID := range l.Tiers {
				tr, ok := tiers[tierID]
				if !ok {
					continue // not a GA tier of the event (any more): nothing to tell
				}
				// A change of values starts over (pending, no attempts); the
				// same values keep their state, so a pushed or refused one is
				// not sent again.
				if err := tx.Exec(`INSERT INTO int_offer_pushes (listing_id, external_type, tier_id, price_minor, currency, sale_starts, sale_ends, state)
					VALUES (?, ?, ?, ?, ?, ?, ?, 'pending')
					ON CONFLICT (listing_id, external_type) DO UPDATE SET tier_id = EXCLUDED.tier_id, price_minor = EXCLUDED.price_minor,
						currency = EXCLUDED.currency, sale_starts = EXCLUDED.sale_starts, sale_ends = EXCLUDED.sale_ends,
						state = 'pending', error = NULL, attempts = 0, updated_at = now()
					WHERE (int_offer_pushes.tier_id, int_offer_pushes.price_minor, int_offer_pushes.currency) IS DISTINCT FROM (EXCLUDED.tier_id, EXCLUDED.price_minor, EXCLUDED.currency)
					   OR int_offer_pushes.sale_starts IS DISTINCT FROM EXCLUDED.sale_starts OR int_offer_pushes.sale_ends IS DISTINCT FROM EXCLUDED.sale_ends`,
					l.ID, ext, tierID, tr.PriceMinor, tr.Currency, tr.SaleStarts, tr.SaleEnds).Error; err != nil {
					return err
				}
			}
		}
		return tx.Raw(`SELECT p.listing_id, l.channel, p.external_type, p.tier_id, p.price_minor, p.currency, p.sale_starts, p.sale_ends, p.state, p.error, p.attempts, p.pushed_at
			FROM int_offer_pushes p JOIN int_listings l ON l.id = p.listing_id
			WHERE l.event_id = ? AND l.closed_at IS NULL AND p.state IN ('pending', 'waiting') ORDER BY p.listing_id, p.external_type`, eventID).Scan(&due).Error
	})
	if err != nil {
		return out, err
	}
	byID := map[uuid.UUID]Listing{}
	for _, l := range listings {
		byID[l.ID] = l
	}
	now := s.now()
	var errs []error
	clients := map[uuid.UUID]*client{}
	for _, p := range due {
		l, ok := byID[p.ListingID]
		if !ok {
			continue
		}
		cl := clients[l.ConnectorID]
		var c Connector
		if cl == nil {
			if cl, c, err = s.clientFor(ctx, t, l.ConnectorID); err != nil {
				errs = append(errs, err)
				continue
			}
			clients[l.ConnectorID] = cl
		} else {
			c, _ = s.Connector(ctx, t, l.ConnectorID)
		}
		what := describeOffer(p)
		if l.Channel == ProviderTicketmaster && InMaintenance(now, c.Timezone) {
			// The Partner API is down 2–4 AM venue time: hold the push
			// until the window ends.
			wait := maintenanceEnd(now, c.Timezone).Sub(now)
			out.Waiting++
			out.RetryIn = maxNonZero(out.RetryIn, wait)
			if p.State != OfferWaiting {
				errs = append(errs, s.setOfferState(ctx, t, p, OfferWaiting, nil, false))
				s.timeline(ctx, t, l.ConnectorID, &l.ID, "push", true, what+" waits for Ticketmaster's maintenance window to end ("+c.Timezone+")")
			}
			continue
		}
		cl.calls = 0
		callErr := s.pushOffer(ctx, cl, l, p)
		state := OfferPushed
		var msg *string
		if callErr != nil {
			m := truncate(callErr.Error(), 500)
			msg = &m
			state = OfferFailed
			var ae *apiError
			if !errors.As(callErr, &ae) || ae.transient() {
				state = OfferPending
				out.Pending++
				out.RetryIn = maxNonZero(out.RetryIn, time.Second)
			} else {
				out.Failed++
			}
		} else {
			out.Pushed++
		}
		errs = append(errs, s.setOfferState(ctx, t, p, state, msg, true))
		s.health(ctx, t, cl, l.ConnectorID, &l.ID, "push", what+" to "+l.Channel, callErr)
	}
	return out, errors.Join(errs...)
}

func maxNonZero(a, b time.Duration) time.Duration {
	if a == 0 || b > a {
		return b
	}
	return a
}

// setOfferState records an attempt's outcome, unless the values changed
// meanwhile (a newer change's task pushes those).
func (s *Service) setOfferState(ctx context.Context, t tenants.Tenant, p OfferPush, state string, msg *string, attempted bool) error {
	now := s.now()
	return s.app.Tx(ctx, t, func(tx *gorm.DB) error {
		return tx.Exec(`UPDATE int_offer_pushes SET state = ?, error = ?, attempts = attempts + ?, updated_at = now(),
				pushed_at = CASE WHEN ? = 'pushed' THEN ?::timestamptz ELSE pushed_at END
			WHERE listing_id = ? AND external_type = ? AND tier_id = ? AND price_minor = ? AND currency = ?
			  AND sale_starts IS NOT DISTINCT FROM ? AND sale_ends IS NOT DISTINCT FROM ?`,
			state, msg, map[bool]int{true: 1}[attempted], state, now, p.ListingID, p.ExternalType, p.TierID, p.PriceMinor, p.Currency, p.SaleStarts, p.SaleEnds).Error
	})
}

// pushOffer sends one ticket type's price and window in the channel's shape.
func (s *Service) pushOffer(ctx context.Context, cl *client, l Listing, p OfferPush) error {
	switch l.Channel {
	case ProviderTicketmaster:
		body := map[string]any{"faceValue": minorToMajor(p.PriceMinor), "currency": p.Currency}
		if p.SaleStarts != nil {
			body["onsaleDateTime"] = p.SaleStarts.UTC().Format(time.RFC3339)
		}
		if p.SaleEnds != nil {
			body["offsaleDateTime"] = p.SaleEnds.UTC().Format(time.RFC3339)
		}
		return cl.do(ctx, "PUT", "partners/v1/events/"+url.PathEscape(l.ExternalEventID)+"/offers/"+url.PathEscape(p.ExternalType), body, nil)
	default:
		tc := map[string]any{"cost": fmt.Sprintf("%s,%d", p.Currency, p.PriceMinor)}
		if p.SaleStarts != nil {
			tc["sales_start"] = p.SaleStarts.UTC().Format("2006-01-02T15:04:05Z")
		}
		if p.SaleEnds != nil {
			tc["sales_end"] = p.SaleEnds.UTC().Format("2006-01-02T15:04:05Z")
		}
		return cl.do(ctx, "POST", "v3/events/"+url.PathEscape(l.ExternalEventID)+"/ticket_classes/"+url.PathEscape(p.ExternalType)+"/",
			map[string]any{"ticket_class": tc}, nil)
	}
}

// minorToMajor writes minor units as the decimal number Ticketmaster reads
// (2 decimals), without a float.
func minorToMajor(minor int64) jsonDecimal {
	return jsonDecimal(fmt.Sprintf("%d.%02d", minor/100, minor%100))
}

// jsonDecimal is a number written as given.
type jsonDecimal string

// MarshalJSON implements json.Marshaler.
func (d jsonDecimal) MarshalJSON() ([]byte, error) { return []byte(d), nil }

func describeOffer(p OfferPush) string {
	var b strings.Builder
	fmt.Fprintf(&b, "price %d.%02d %s", p.PriceMinor/100, p.PriceMinor%100, p.Currency)
	if p.SaleStarts != nil || p.SaleEnds != nil {
		b.WriteString(", sale ")
		if p.SaleStarts != nil {
			b.WriteString(p.SaleStarts.UTC().Format("2006-01-02 15:04"))
		}
		b.WriteString("–")
		if p.SaleEnds != nil {
			b.WriteString(p.SaleEnds.UTC().Format("2006-01-02 15:04"))
		}
		b.WriteString(" UTC")
	}
	return b.String() + " for " + p.ExternalType
}

// maintenanceEnd is the end of the maintenance window that holds now (4 AM
// in tz).
func maintenanceEnd(now time.Time, tz string) time.Time {
	loc, err := app.Timezone(tz)
	if err != nil {
		loc = time.UTC
	}
	l := now.In(loc)
	return time.Date(l.Year(), l.Month(), l.Day(), 4, 0, 0, 0, loc)
}

// OfferPushes lists what the event's listings were told of its tiers.
func (s *Service) OfferPushes(ctx context.Context, t tenants.Tenant, eventID uuid.UUID) ([]OfferPush, error) {
	var out []OfferPush
	err := s.app.TxWith(ctx, t, tenants.TxOptions{ReadOnly: true}, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT p.listing_id, l.channel, p.external_type, p.tier_id, p.price_minor, p.currency, p.sale_starts, p.sale_ends, p.state, p.error, p.attempts, p.pushed_at
			FROM int_offer_pushes p JOIN int_listings l ON l.id = p.listing_id WHERE l.event_id = ? ORDER BY l.channel, p.external_type`, eventID).Scan(&out).Error
	})
	return app.NonNil(out), err
}

// offersTask runs a push; pending or waiting rows retry with growing
// delays (or at the end of the maintenance window).
func (s *Service) offersTask(ctx context.Context, t tenants.Tenant, payload []byte) error {
	var p offersPayload
	if err := decodeJSON(payload, &p); err != nil || p.Event == uuid.Nil {
		return fmt.Errorf("%w: bad payload", asynq.SkipRetry)
	}
	res, err := s.PushOffers(ctx, t, p.Event)
	var nf *app.Error
	if errors.As(err, &nf) && nf.Kind == app.KindNotFound {
		return nil // the event's inventory is gone: nothing to push
	}
	if err == nil && res.Pending == 0 && res.Waiting == 0 {
		return nil
	}
	if err == nil {
		err = fmt.Errorf("%d offer pushes pending, %d waiting", res.Pending, res.Waiting)
	}
	n, _ := asynq.GetRetryCount(ctx)
	after := s.OfferRetry(n)
	if res.Waiting > 0 && res.Pending == 0 {
		after = res.RetryIn
	}
	return &jobs.RetryIn{After: after, Err: err}
}

// now is the service's clock.
func (s *Service) now() time.Time {
	if s.Clock != nil {
		return s.Clock()
	}
	return s.app.Now()
}

// timeline adds a line to the sync timeline without touching the
// connector's health (no call was made).
func (s *Service) timeline(ctx context.Context, t tenants.Tenant, connector uuid.UUID, listing *uuid.UUID, kind string, ok bool, detail string) {
	if err := s.app.Tx(ctx, t, func(tx *gorm.DB) error {
		return tx.Exec(`INSERT INTO int_syncs (connector_id, listing_id, kind, ok, detail, calls, at) VALUES (?, ?, ?, ?, ?, 0, ?)`,
			connector, listing, kind, ok, truncate(detail, 1000), s.now()).Error
	}); err != nil {
		s.log().Warn("recording the sync timeline failed", "connector", connector, "err", err)
	}
}
