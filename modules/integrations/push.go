package integrations

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/jobs"
	"marquee/tenants"
)

// Allocations out. Setting a channel's allocation changes its quota in our
// inventory first (refused below what the channel holds or sold there:
// 409 quota_below_sold names the count), then pushes it to the channel:
// Ticketmaster's allocation, or Eventbrite's event capacity and each mapped
// ticket class's quantity_total. A provider refusal (its side sold more than
// the new figure: CAPACITY_TOTAL_TOO_SMALL, HOLD_QUANTITIES_EXCEEDS_REMAINING_CAPACITY)
// is final and recorded on the listing; a transient one (429, 5xx, no
// answer) is retried within the call's backoff budget and then by a task
// with growing delays until it goes through.

// AllocationInput sets a channel's allocation for an event.
type AllocationInput struct {
	Quota int `json:"quota"`
}

// Validate implements app's request validation.
func (in AllocationInput) Validate() error {
	if in.Quota < 0 || in.Quota > 1000000 {
		return app.InvalidField("invalid_allocation", "quota", "quota is from 0 to 1000000")
	}
	return nil
}

// SetAllocation sets the channel's quota and pushes it.
func (s *Service) SetAllocation(ctx context.Context, t tenants.Tenant, eventID uuid.UUID, channel string, quota int) (Listing, error) {
	if channel != ProviderTicketmaster && channel != ProviderEventbrite {
		return Listing{}, app.NotFoundCode("listing_not_found", "channel is ticketmaster or eventbrite")
	}
	l, err := s.listingByEvent(ctx, t, eventID, channel)
	if err != nil {
		return Listing{}, err
	}
	if err := s.app.ChannelSales().SetChannelQuota(ctx, t, eventID, channel, quota); err != nil {
		return Listing{}, err
	}
	if err := s.app.Tx(ctx, t, func(tx *gorm.DB) error {
		return tx.Exec(`UPDATE int_listings SET allocated = ?, push_state = 'pending', push_error = NULL, push_attempts = 0 WHERE id = ?`, quota, l.ID).Error
	}); err != nil {
		return Listing{}, err
	}
	if err := s.pushOrQueue(ctx, t, l.ID); err != nil {
		var ae *apiError
		if errors.As(err, &ae) && !ae.transient() {
			return Listing{}, app.Conflict("channel_refused_allocation", "our quota is now %d, but %s refused it: %s %s", quota, channel, ae.Code, ae.Text)
		}
	}
	return s.Listing(ctx, t, l.ID)
}

// pushOrQueue pushes a listing's allocation; a transient failure is left
// to the push task, which retries it with growing delays.
func (s *Service) pushOrQueue(ctx context.Context, t tenants.Tenant, listing uuid.UUID) error {
	err := s.Push(ctx, t, listing)
	var ae *apiError
	if err != nil && (!errors.As(err, &ae) || ae.transient()) {
		if _, qerr := s.app.Jobs.Enqueue(ctx, t, TaskPush, pushPayload{Listing: listing}, asynq.TaskID(fmt.Sprintf("int-push:%s:%s:%d", t.Slug, listing, time.Now().UnixNano())),
			asynq.Queue(jobs.QueueDefault), asynq.MaxRetry(20), asynq.ProcessIn(2*time.Second)); qerr != nil {
			s.log().Warn("queueing an allocation push failed", "err", qerr)
		}
	}
	return err
}

// TaskAllocations pushes the allocations of one event whose channel quotas
// changed in the inventory (its quotas hook, after the commit).
const TaskAllocations = "integrations:allocations"

type allocationsPayload struct {
	Event uuid.UUID `json:"event"`
}

// quotasChanged is inventory's quotas hook: a quota changed through the
// inventory's own routes (PUT /events/{id}/quotas, its whole setup) is
// pushed at once by a task per change. What a crash between the commit
// and this hook loses, the per-minute sweep pushes.
func (s *Service) quotasChanged(ctx context.Context, t tenants.Tenant, ids []uuid.UUID) {
	ctx = context.WithoutCancel(ctx)
	var listed []uuid.UUID
	if err := s.app.TxWith(ctx, t, tenants.TxOptions{ReadOnly: true}, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT DISTINCT event_id FROM int_listings WHERE event_id IN ? AND closed_at IS NULL AND allocated IS NOT NULL`, ids).Scan(&listed).Error
	}); err != nil {
		s.log().Warn("reading listings for a quota change failed; the sweep pushes it", "tenant", t.Slug, "err", err)
		return
	}
	for _, ev := range listed {
		if _, err := s.app.Jobs.Enqueue(ctx, t, TaskAllocations, allocationsPayload{Event: ev},
			asynq.TaskID(fmt.Sprintf("int-alloc:%s:%s:%s", t.Slug, ev, uuid.Must(uuid.NewV7()))), asynq.Queue(jobs.QueueDefault), asynq.MaxRetry(10)); err != nil {
			s.log().Warn("queueing an allocation sync failed; the sweep pushes it", "tenant", t.Slug, "event", ev, "err", err)
		}
	}
}

func (s *Service) allocationsTask(ctx context.Context, t tenants.Tenant, payload []byte) error {
	var p allocationsPayload
	if err := decodeJSON(payload, &p); err != nil || p.Event == uuid.Nil {
		return fmt.Errorf("%w: bad payload", asynq.SkipRetry)
	}
	return s.SyncAllocations(ctx, t, p.Event)
}

// SweepAllocations syncs every event with an open, allocated listing (the
// safety net of the quotas hook; the per-minute tenant task runs it).
func (s *Service) SweepAllocations(ctx context.Context, t tenants.Tenant) error {
	var evs []uuid.UUID
	if err := s.app.TxWith(ctx, t, tenants.TxOptions{ReadOnly: true}, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT DISTINCT event_id FROM int_listings WHERE closed_at IS NULL AND allocated IS NOT NULL`).Scan(&evs).Error
	}); err != nil {
		return err
	}
	var errs []error
	for _, ev := range evs {
		errs = append(errs, s.SyncAllocations(ctx, t, ev))
	}
	return errors.Join(errs...)
}

// SyncAllocations pushes the allocation of each open, allocated listing of
// the event whose channel quota in our inventory is no longer what the
// listing was last set to. The inventory never lets a quota fall below
// what its channel sold in our books; a channel that sold more on its side
// refuses the figure (recorded on the listing and its timeline). A listing
// never allocated keeps the channel's own capacity.
func (s *Service) SyncAllocations(ctx context.Context, t tenants.Tenant, eventID uuid.UUID) error {
	var ls []Listing
	if err := s.app.TxWith(ctx, t, tenants.TxOptions{ReadOnly: true}, func(tx *gorm.DB) error {
		var err error
		ls, err = scanListings(tx, `event_id = ? AND closed_at IS NULL AND allocated IS NOT NULL`, eventID)
		return err
	}); err != nil || len(ls) == 0 {
		return err
	}
	st, err := s.app.ChannelSales().ChannelStock(ctx, t, eventID)
	if err != nil {
		return err
	}
	quotas := map[string]int{}
	for _, q := range st.Channels {
		quotas[q.Channel] = q.Quota
	}
	var errs []error
	for _, l := range ls {
		// A channel without a quota in our inventory sells nothing.
		q := quotas[l.Channel]
		if q == *l.Allocated {
			continue
		}
		var n int64
		if err := s.app.Tx(ctx, t, func(tx *gorm.DB) error {
			res := tx.Exec(`UPDATE int_listings SET allocated = ?, push_state = 'pending', push_error = NULL, push_attempts = 0 WHERE id = ? AND allocated = ?`,
				q, l.ID, *l.Allocated)
			n = res.RowsAffected
			return res.Error
		}); err != nil {
			errs = append(errs, err)
			continue
		}
		if n == 0 {
			continue // set meanwhile by another writer, who pushes it
		}
		// A refusal is recorded on the listing and its timeline; a
		// transient failure is queued.
		_ = s.pushOrQueue(ctx, t, l.ID)
	}
	return errors.Join(errs...)
}

type pushPayload struct {
	Listing uuid.UUID `json:"listing"`
}

func (s *Service) listingByEvent(ctx context.Context, t tenants.Tenant, eventID uuid.UUID, channel string) (Listing, error) {
	var ls []Listing
	err := s.app.TxWith(ctx, t, tenants.TxOptions{ReadOnly: true}, func(tx *gorm.DB) error {
		var err error
		ls, err = scanListings(tx, `event_id = ? AND channel = ?`, eventID, channel)
		return err
	})
	if err == nil && len(ls) == 0 {
		err = app.NotFoundCode("listing_not_found", "the event is not listed on %s", channel)
	}
	if err != nil {
		return Listing{}, err
	}
	return ls[0], nil
}

// Listing reads one listing.
func (s *Service) Listing(ctx context.Context, t tenants.Tenant, id uuid.UUID) (Listing, error) {
	var ls []Listing
	err := s.app.TxWith(ctx, t, tenants.TxOptions{ReadOnly: true}, func(tx *gorm.DB) error {
		var err error
		ls, err = scanListings(tx, `id = ?`, id)
		return err
	})
	if err == nil && len(ls) == 0 {
		err = app.NotFoundCode("listing_not_found", "no listing %s", id)
	}
	if err != nil {
		return Listing{}, err
	}
	return ls[0], nil
}

// Push sends a listing's allocation to its channel and records the outcome.
func (s *Service) Push(ctx context.Context, t tenants.Tenant, listingID uuid.UUID) error {
	rounds := 0
again:
	l, err := s.Listing(ctx, t, listingID)
	if err != nil {
		return err
	}
	if l.Allocated == nil || l.PushState == "pushed" {
		return nil
	}
	cl, _, err := s.clientFor(ctx, t, l.ConnectorID)
	if err != nil {
		return err
	}
	q := *l.Allocated
	switch l.Channel {
	case ProviderTicketmaster:
		err = cl.do(ctx, "PUT", "partners/v1/events/"+url.PathEscape(l.ExternalEventID)+"/allocation", map[string]int{"quantity": q}, nil)
	default:
		// Tiers first (a capacity below a tier's total is refused), each
		// mapped ticket class may sell up to the whole allocation; the
		// event's capacity caps them together.
		for tc := range l.Tiers {
			if err = cl.do(ctx, "POST", "v3/events/"+url.PathEscape(l.ExternalEventID)+"/inventory_tiers/"+url.PathEscape(tc)+"/",
				map[string]any{"inventory_tier": map[string]int{"quantity_total": q}}, nil); err != nil {
				break
			}
		}
		if err == nil {
			err = cl.do(ctx, "POST", "v3/events/"+url.PathEscape(l.ExternalEventID)+"/", map[string]any{"event": map[string]int{"capacity": q}}, nil)
		}
	}
	state, perr := "pushed", (*string)(nil)
	if err != nil {
		state = "failed"
		msg := truncate(err.Error(), 500)
		perr = &msg
		var ae *apiError
		if errors.As(err, &ae) && ae.transient() {
			state = "pending"
		}
	}
	var recorded int64
	if dbErr := s.app.Tx(ctx, t, func(tx *gorm.DB) error {
		res := tx.Exec(`UPDATE int_listings SET push_state = ?, push_error = ?, push_attempts = push_attempts + 1,
			pushed_at = CASE WHEN ? = 'pushed' THEN ? ELSE pushed_at END WHERE id = ? AND allocated = ?`, state, perr, state, s.app.Now(), l.ID, q)
		recorded = res.RowsAffected
		return res.Error
	}); dbErr != nil {
		return dbErr
	}
	s.health(ctx, t, cl, l.ConnectorID, &l.ID, "push", fmt.Sprintf("allocation %d to %s", q, l.Channel), err)
	if err == nil && recorded == 0 && rounds < 3 {
		// The allocation changed while ours was on its way: a newer push
		// may have reached the channel first, so ours may have overwritten
		// it. The current figure goes out again, after ours.
		rounds++
		if dbErr := s.app.Tx(ctx, t, func(tx *gorm.DB) error {
			return tx.Exec(`UPDATE int_listings SET push_state = 'pending' WHERE id = ?`, l.ID).Error
		}); dbErr != nil {
			return dbErr
		}
		goto again
	}
	return err
}

// pushTask retries a transient push failure with growing delays.
func (s *Service) pushTask(ctx context.Context, t tenants.Tenant, payload []byte) error {
	var p pushPayload
	if err := decodeJSON(payload, &p); err != nil || p.Listing == uuid.Nil {
		return fmt.Errorf("%w: bad payload", asynq.SkipRetry)
	}
	err := s.Push(ctx, t, p.Listing)
	var ae *apiError
	if err != nil && errors.As(err, &ae) && !ae.transient() {
		return nil // recorded on the listing; retrying will not change their answer
	}
	if err != nil {
		n, _ := asynq.GetRetryCount(ctx)
		return &jobs.RetryIn{After: min(time.Duration(1<<min(n, 8))*2*time.Second, 10*time.Minute), Err: err}
	}
	return nil
}
