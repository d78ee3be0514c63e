package integrations

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/jobs"
	"marquee/tenants"
)

// Ticketmaster has no webhooks: each Ticketmaster connector is polled by a
// task of its own (one per connector per minute: the task id carries the
// connector and the minute, so a fan-out run twice enqueues nothing new).
// A poll reads the allocation channel's orders changed after the stored
// cursor (paged by _links.next), applies confirmed ones as sales and
// cancelled ones as returns, moves the cursor in the transaction of each
// page's last order, then reads Partner availability for every listing. It
// honours the provider: none during the nightly maintenance window (2–4 AM
// in the connector's time zone), none while a 429's backoff runs, calls
// paced per connector, and it stops when the Partner quota's headers say
// none are left.

// PollResult says what a poll did.
type PollResult struct {
	Skipped string `json:"skipped,omitempty"`
	Orders  int    `json:"orders"`
	Sold    int    `json:"sold"`
	Pages   int    `json:"pages"`
	Cursor  int64  `json:"cursor"`
	Calls   int    `json:"calls"`
	// CountsSkipped is the listings whose counts were not read: no order
	// of theirs moved, the Inventory Status API said the same as before,
	// and the counts read last are fresh.
	CountsSkipped int `json:"counts_skipped"`
}

// InMaintenance says whether now is in Ticketmaster's nightly window in tz.
func InMaintenance(now time.Time, tz string) bool {
	loc, err := app.Timezone(tz)
	if err != nil {
		loc = time.UTC
	}
	h := now.In(loc).Hour()
	return h >= 2 && h < 4
}

// Poll polls one Ticketmaster connector.
func (s *Service) Poll(ctx context.Context, t tenants.Tenant, connectorID uuid.UUID) (PollResult, error) {
	var st struct {
		Provider     string     `gorm:"column:provider"`
		Timezone     string     `gorm:"column:timezone"`
		Cursor       int64      `gorm:"column:poll_cursor"`
		BackoffUntil *time.Time `gorm:"column:backoff_until"`
		QuotaAvail   *int       `gorm:"column:quota_available"`
		QuotaAt      *time.Time `gorm:"column:quota_at"`
	}
	var listings []Listing
	err := s.app.TxWith(ctx, t, tenants.TxOptions{ReadOnly: true}, func(tx *gorm.DB) error {
		var rows []struct {
			Provider     string     `gorm:"column:provider"`
			Timezone     string     `gorm:"column:timezone"`
			Cursor       int64      `gorm:"column:poll_cursor"`
			BackoffUntil *time.Time `gorm:"column:backoff_until"`
			QuotaAvail   *int       `gorm:"column:quota_available"`
			QuotaAt      *time.Time `gorm:"column:quota_at"`
		}
		if err := tx.Raw(`SELECT provider, timezone, poll_cursor, backoff_until, quota_available, quota_at FROM int_connectors WHERE id = ?`, connectorID).Scan(&rows).Error; err != nil {
			return err
		}
		if len(rows) == 0 {
			return errNoConnector
		}
		st = rows[0]
		var err error
		listings, err = scanListings(tx, `connector_id = ? AND closed_at IS NULL`, connectorID)
		return err
	})
	if err != nil {
		return PollResult{}, err
	}
	out := PollResult{Cursor: st.Cursor}
	now := s.now()
	switch {
	case st.Provider != ProviderTicketmaster:
		out.Skipped = "not a Ticketmaster connector (Eventbrite sends webhooks)"
	case InMaintenance(now, st.Timezone):
		out.Skipped = "Ticketmaster's nightly maintenance window (2–4 AM " + st.Timezone + ")"
	case st.BackoffUntil != nil && now.Before(*st.BackoffUntil):
		out.Skipped = "backing off after a refusal until " + st.BackoffUntil.UTC().Format(time.RFC3339)
	case st.QuotaAvail != nil && *st.QuotaAvail <= 0 && st.QuotaAt != nil && st.QuotaAt.Truncate(time.Hour).Equal(now.Truncate(time.Hour)):
		out.Skipped = "the Partner API's hourly quota is used up"
	case len(listings) == 0:
		out.Skipped = "no listings"
	}
	if out.Skipped != "" {
		return out, nil
	}
	cl, _, err := s.clientFor(ctx, t, connectorID)
	if err != nil {
		return out, err
	}
	byEvent := map[string]Listing{}
	var ids []string
	for _, l := range listings {
		byEvent[l.ExternalEventID] = l
		ids = append(ids, l.ExternalEventID)
	}
	changed := map[uuid.UUID]bool{}
	changedExternal := map[string]bool{} // external events with orders in this poll
	ref := "partners/v1/orders?" + url.Values{"since": {strconv.FormatInt(st.Cursor, 10)}, "size": {"100"}, "eventId": {strings.Join(ids, ",")}}.Encode()
	for ref != "" && out.Pages < 100 {
		var page struct {
			Embedded struct {
				Orders []tmOrder `json:"orders"`
			} `json:"_embedded"`
			Links struct {
				Next *struct{ Href string } `json:"next"`
			} `json:"_links"`
		}
		if err = cl.do(ctx, "GET", ref, nil, &page); err != nil {
			break
		}
		out.Pages++
		// One transaction per page: its orders and the cursor after them
		// commit together (a page replayed after a crash sells nothing twice:
		// each order line is stored once).
		var pageSold, pageOrders int
		var cursor int64
		pageChanged := map[uuid.UUID]bool{}
		for _, o := range page.Embedded.Orders {
			changedExternal[o.EventID] = true
		}
		err = s.app.TxWith(ctx, t, tenants.TxOptions{Retry: true}, func(tx *gorm.DB) error {
			pageSold, pageOrders, cursor = 0, 0, out.Cursor
			clear(pageChanged)
			for _, o := range page.Embedded.Orders {
				l, ok := byEvent[o.EventID]
				tier, mapped := l.tierFor(o.TicketTypeID)
				placed := o.Status == tmConfirmed
				if ok && mapped && (placed || o.Status == tmCancelled) {
					var theirAt *time.Time
					if ts, perr := time.Parse(time.RFC3339Nano, o.Updated); perr == nil {
						theirAt = &ts
					}
					line := saleLine{Tier: tier, Quantity: o.Quantity}
					if minor, ok := majorToMinor(o.FaceValue); ok && minor > 0 && len(o.Currency) == 3 {
						line.PriceMinor, line.Currency = minor, strings.ToUpper(o.Currency)
					}
					lo, ch, err := s.applyOrder(tx, l, o.ID, []saleLine{line}, placed, theirAt)
					if err != nil {
						return err
					}
					if ch {
						pageChanged[l.EventID] = true
					}
					if len(lo) == 1 && lo[0] == OutcomeSold {
						pageSold += o.Quantity
					}
				}
				// booked or released orders sold nothing; they move the cursor only
				pageOrders++
				cursor = max(cursor, o.Seq)
			}
			return tx.Exec(`UPDATE int_connectors SET poll_cursor = ? WHERE id = ? AND poll_cursor < ?`, cursor, connectorID, cursor).Error
		})
		if err != nil {
			break
		}
		out.Sold += pageSold
		out.Orders += pageOrders
		out.Cursor = cursor
		for ev := range pageChanged {
			changed[ev] = true
		}
		ref = ""
		if page.Links.Next != nil {
			ref = strings.TrimPrefix(page.Links.Next.Href, "/")
		}
	}
	for ev := range changed {
		s.app.ChannelSales().StockChanged(ctx, t, ev)
	}
	if err == nil {
		// The Inventory Status API first (one call for every listing): a
		// listing's counts (two calls) are read only when something moved.
		var statuses map[string]string
		if statuses, err = s.readInventoryStatus(ctx, t, cl, listings); err == nil {
			var due []Listing
			for _, l := range listings {
				if countsDue(l, statuses[l.ExternalEventID], changedExternal[l.ExternalEventID], now) {
					due = append(due, l)
				} else {
					out.CountsSkipped++
				}
			}
			err = s.readAvailability(ctx, t, cl, due)
		}
	}
	out.Calls = cl.calls
	s.health(ctx, t, cl, connectorID, nil, "poll", fmt.Sprintf("%d orders (%d sold) in %d pages, cursor %d", out.Orders, out.Sold, out.Pages, out.Cursor), err)
	s.alertOversells(ctx, t)
	return out, err
}

// tmOrder is an order on Ticketmaster's allocation channel.
type tmOrder struct {
	ID           string `json:"id"`
	EventID      string `json:"eventId"`
	TicketTypeID string `json:"ticketTypeId"`
	Quantity     int    `json:"quantity"`
	Status       string `json:"status"` // BOOKED, CONFIRMED, RELEASED, CANCELLED
	Seq          int64  `json:"sequence"`
	Updated      string `json:"updated"`
	// FaceValue is the unit price in major units (Ticketmaster writes
	// prices as decimal numbers), read exactly as written.
	FaceValue json.Number `json:"faceValue"`
	Currency  string      `json:"currency"`
}

// majorToMinor reads a decimal amount in major units ("45", "45.5",
// "45.50") as minor units without going through a float; more than two
// decimals, a sign or an exponent is refused.
func majorToMinor(n json.Number) (int64, bool) {
	whole, frac, _ := strings.Cut(n.String(), ".")
	if whole == "" || len(frac) > 2 || len(whole) > 9 {
		return 0, false
	}
	for len(frac) < 2 {
		frac += "0"
	}
	v, err := strconv.ParseInt(whole+frac, 10, 64)
	if err != nil || v < 0 || strings.ContainsAny(whole+frac, "+-eE") {
		return 0, false
	}
	return v, true
}

// The order states that move units: confirmed sells, cancelled returns.
const (
	tmConfirmed = "CONFIRMED"
	tmCancelled = "CANCELLED"
)

var errNoConnector = errors.New("integrations: no such connector")

// readAvailability stores Ticketmaster's own counts per listing: sold =
// total − available (Partner availability), pending from the channel's
// reconciliation.
func (s *Service) readAvailability(ctx context.Context, t tenants.Tenant, cl *client, listings []Listing) error {
	for _, l := range listings {
		var av struct {
			Tickets []struct {
				Available int `json:"available"`
				Total     int `json:"total"`
			} `json:"tickets"`
		}
		if err := cl.do(ctx, "GET", "partners/v1/events/"+url.PathEscape(l.ExternalEventID)+"/availability", nil, &av); err != nil {
			return err
		}
		var rec struct {
			Pending int `json:"pending"`
		}
		if err := cl.do(ctx, "GET", "partners/v1/events/"+url.PathEscape(l.ExternalEventID)+"/reconciliation", nil, &rec); err != nil {
			return err
		}
		sold := 0
		for _, tk := range av.Tickets {
			sold += tk.Total - tk.Available
		}
		// Availability counts booked tickets as gone; sold is confirmed only.
		sold -= rec.Pending
		if err := s.app.Tx(ctx, t, func(tx *gorm.DB) error {
			return tx.Exec(`UPDATE int_listings SET their_sold = ?, their_pending = ?, their_at = ? WHERE id = ?`, sold, rec.Pending, s.app.Now(), l.ID).Error
		}); err != nil {
			return err
		}
	}
	return nil
}

// Task types.
const (
	// TaskPollTenant lists a tenant's Ticketmaster connectors and enqueues
	// one TaskPoll each (fanned out to every tenant every minute).
	TaskPollTenant = "integrations:poll-tenant"
	// TaskPoll polls one connector.
	TaskPoll = "integrations:poll"
	// TaskPush pushes a listing's allocation again after a failure.
	TaskPush = "integrations:push"
)

type pollPayload struct {
	Connector uuid.UUID `json:"connector"`
}

// EnqueuePolls enqueues one poll per Ticketmaster connector of the tenant
// for the minute that holds now (task id: connector and minute).
func (s *Service) EnqueuePolls(ctx context.Context, t tenants.Tenant, now time.Time) (int, error) {
	var ids []uuid.UUID
	if err := s.app.TxWith(ctx, t, tenants.TxOptions{ReadOnly: true}, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT id FROM int_connectors WHERE provider = 'ticketmaster' ORDER BY id`).Scan(&ids).Error
	}); err != nil {
		return 0, err
	}
	bucket := now.UTC().Truncate(time.Minute).Unix()
	n := 0
	for _, id := range ids {
		_, err := s.app.Jobs.Enqueue(ctx, t, TaskPoll, pollPayload{Connector: id},
			asynq.TaskID(fmt.Sprintf("int-poll:%s:%s:%d", t.Slug, id, bucket)), asynq.Queue(jobs.QueuePolling), asynq.Retention(time.Minute), asynq.MaxRetry(0))
		switch {
		case errors.Is(err, asynq.ErrTaskIDConflict):
		case err != nil:
			return n, err
		default:
			n++
		}
	}
	return n, nil
}

func decodeConnector(payload []byte) (uuid.UUID, error) {
	var p pollPayload
	if err := json.Unmarshal(payload, &p); err != nil || p.Connector == uuid.Nil {
		return uuid.Nil, fmt.Errorf("%w: bad payload", asynq.SkipRetry)
	}
	return p.Connector, nil
}

func decodeJSON(payload []byte, v any) error { return json.Unmarshal(payload, v) }

// countsFresh is how long counts read from the Partner API stand in for
// new ones when nothing suggests they moved.
const countsFresh = 15 * time.Minute

// countsDue says whether a listing's counts must be read in this poll:
// their orders moved, the inventory status changed (or is unknown), or the
// counts are missing or stale.
func countsDue(l Listing, status string, ordersMoved bool, now time.Time) bool {
	return ordersMoved || status == "" || l.TheirInventoryStatus == nil || *l.TheirInventoryStatus != status ||
		l.TheirAt == nil || now.Sub(*l.TheirAt) > countsFresh
}

// readInventoryStatus asks Ticketmaster's Inventory Status API about every
// listing at once (GET /inventory-status/v1/availability?events=…, 50 ids
// a call) and stores each answer on its listing. It returns the status per
// external event id.
func (s *Service) readInventoryStatus(ctx context.Context, t tenants.Tenant, cl *client, listings []Listing) (map[string]string, error) {
	out := map[string]string{}
	for from := 0; from < len(listings); from += 50 {
		part := listings[from:min(from+50, len(listings))]
		ids := make([]string, len(part))
		for i, l := range part {
			ids[i] = l.ExternalEventID
		}
		var answer []struct {
			EventID string `json:"eventId"`
			Status  string `json:"status"`
		}
		if err := cl.do(ctx, "GET", "inventory-status/v1/availability?"+url.Values{"events": {strings.Join(ids, ",")}}.Encode(), nil, &answer); err != nil {
			return out, err
		}
		for _, a := range answer {
			out[a.EventID] = a.Status
		}
	}
	now := s.now()
	err := s.app.Tx(ctx, t, func(tx *gorm.DB) error {
		for _, l := range listings {
			if st, ok := out[l.ExternalEventID]; ok {
				if err := tx.Exec(`UPDATE int_listings SET their_inventory_status = ?, their_inventory_status_at = ? WHERE id = ?`, st, now, l.ID).Error; err != nil {
					return err
				}
			}
		}
		return nil
	})
	return out, err
}
