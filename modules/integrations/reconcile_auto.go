package integrations

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/jobs"
	"marquee/tenants"
)

// Reconciliation without asking: every quarter hour each event with an open
// listing is reconciled (a task per event and quarter, so two schedulers or
// a retried tenant task queue it once), and once an event's sale has closed
// its final reconciliation runs by itself (a task per event; the final's
// own check on the open listings makes a second one a no-op).

// TaskReconcile reconciles one event's channels (final at sale close).
const TaskReconcile = "integrations:reconcile"

// ReconcileEvery is the period of the automatic reconciliation.
const ReconcileEvery = 15 * time.Minute

type reconcilePayload struct {
	Event uuid.UUID `json:"event"`
	Final bool      `json:"final"`
}

// EnqueueReconciliations queues, for each event with an open listing, its
// final reconciliation when its sale has closed by now, else (at a quarter
// hour) its periodic one. It returns how many tasks were queued.
func (s *Service) EnqueueReconciliations(ctx context.Context, t tenants.Tenant, now time.Time) (int, error) {
	var evs []uuid.UUID
	if err := s.app.TxWith(ctx, t, tenants.TxOptions{ReadOnly: true}, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT DISTINCT event_id FROM int_listings WHERE closed_at IS NULL ORDER BY event_id`).Scan(&evs).Error
	}); err != nil {
		return 0, err
	}
	quarter := now.UTC().Truncate(ReconcileEvery)
	periodic := now.UTC().Sub(quarter) < time.Minute
	n := 0
	var errs []error
	for _, ev := range evs {
		closed, err := s.saleClosed(ctx, t, ev, now)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var id string
		var opts []asynq.Option
		switch {
		case closed:
			id = fmt.Sprintf("int-final:%s:%s", t.Slug, ev)
			opts = []asynq.Option{asynq.Retention(24 * time.Hour), asynq.MaxRetry(10)}
		case periodic:
			id = fmt.Sprintf("int-recon:%s:%s:%d", t.Slug, ev, quarter.Unix())
			opts = []asynq.Option{asynq.Retention(ReconcileEvery), asynq.MaxRetry(2)}
		default:
			continue
		}
		_, err = s.app.Jobs.Enqueue(ctx, t, TaskReconcile, reconcilePayload{Event: ev, Final: closed},
			append(opts, asynq.TaskID(id), asynq.Queue(jobs.QueuePolling))...)
		switch {
		case errors.Is(err, asynq.ErrTaskIDConflict):
		case err != nil:
			errs = append(errs, err)
		default:
			n++
		}
	}
	return n, errors.Join(errs...)
}

// saleClosed says whether an event's sale is over at now: its end, or
// earlier the end of its last GA tier's sale when every tier has one. A
// cancelled event is not closed this way (its refunds still come in).
func (s *Service) saleClosed(ctx context.Context, t tenants.Tenant, eventID uuid.UUID, now time.Time) (bool, error) {
	ev, err := s.app.Events().Event(ctx, t, eventID)
	if err != nil {
		return false, err
	}
	if ev.Status == "cancelled" {
		return false, nil
	}
	closeAt := ev.EndsAt
	st, err := s.app.ChannelSales().ChannelStock(ctx, t, eventID)
	if err != nil {
		return false, err
	}
	var last time.Time
	all := len(st.Tiers) > 0
	for _, tr := range st.Tiers {
		if tr.SaleEnds == nil {
			all = false
			break
		}
		if tr.SaleEnds.After(last) {
			last = *tr.SaleEnds
		}
	}
	if all && last.Before(closeAt) {
		closeAt = last
	}
	return !now.Before(closeAt), nil
}

func (s *Service) reconcileTask(ctx context.Context, t tenants.Tenant, payload []byte) error {
	var p reconcilePayload
	if err := decodeJSON(payload, &p); err != nil || p.Event == uuid.Nil {
		return fmt.Errorf("%w: bad payload", asynq.SkipRetry)
	}
	_, err := s.Reconcile(ctx, t, p.Event, p.Final)
	var ae *app.Error
	if errors.As(err, &ae) {
		switch ae.Code {
		case "reconciliation_final", "listing_not_found":
			return nil // done already, or nothing listed any more
		case "reconciliation_failed":
			// Retrying proves nothing: ops must look (the figures are on
			// the timeline of the channels' page).
			s.log().Error("final channel reconciliation failed", "tenant", t.Slug, "event", p.Event, "err", err)
			return fmt.Errorf("%w: %v", asynq.SkipRetry, err)
		}
	}
	return err
}
