package inventory

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"

	"marquee/jobs"
	"marquee/modules/inventory/internal/holds"
	"marquee/modules/inventory/internal/orders"
	"marquee/tenants"
)

// maxExpiryWait bounds how long an expiry task that ran a little early (the
// database's clock behind the worker's) waits for its holds' time in place;
// further off, it asks to run again exactly then (jobs.RetryIn) instead of
// keeping a worker, never after Asynq's backoff of 15 s and more.
const maxExpiryWait = 2 * time.Second

// expireTask runs TaskHoldExpire for each of its holds. Running it twice,
// or for holds already sold, released or expired, changes nothing.
func (m *Module) expireTask(ctx context.Context, t tenants.Tenant, payload []byte) error {
	var p holds.HoldTask
	if err := json.Unmarshal(payload, &p); err != nil {
		return fmt.Errorf("%w: bad hold-expire payload", asynq.SkipRetry)
	}
	ids := p.HoldIDs
	if p.HoldID != uuid.Nil {
		ids = append(ids, p.HoldID)
	}
	if len(ids) == 0 {
		return fmt.Errorf("%w: hold-expire payload names no hold", asynq.SkipRetry)
	}
	var errs error
	var later time.Duration
	for _, id := range ids {
		expired, err := m.expireWhenDue(ctx, t, id)
		var nd *NotDueError
		if errors.As(err, &nd) {
			later = max(later, nd.In)
			continue
		}
		if err == nil && expired {
			m.app.Log.Info("hold expired", "tenant", t.Slug, "hold", id)
		}
		errs = errors.Join(errs, err)
	}
	if errs == nil && later > 0 {
		return &jobs.RetryIn{After: later, Err: fmt.Errorf("holds not due yet")}
	}
	m.svc.KickWaitlist(ctx, t) // expired units may be owed to a waiting list
	return errs
}

// expireWhenDue expires a hold, waiting for its time first if that is at
// most maxExpiryWait away.
func (m *Module) expireWhenDue(ctx context.Context, t tenants.Tenant, id uuid.UUID) (bool, error) {
	for {
		expired, err := m.svc.ExpireHold(ctx, t, id)
		var nd *NotDueError
		if !errors.As(err, &nd) || nd.In > maxExpiryWait {
			return expired, err
		}
		timer := time.NewTimer(max(nd.In, time.Millisecond))
		select {
		case <-ctx.Done():
			timer.Stop()
			return false, ctx.Err()
		case <-timer.C:
		}
	}
}

// expirySweepTask runs TaskExpirySweep: lapsed holds whose own task was lost.
func (m *Module) expirySweepTask(ctx context.Context, t tenants.Tenant, _ []byte) error {
	n, err := m.svc.SweepHolds(ctx, t, 10000)
	if n > 0 {
		m.app.Log.Info("lapsed holds expired by the sweeper", "tenant", t.Slug, "count", n)
	}
	// Capacity that came back by any path (expiry, release, refund, a
	// lapsed offer) reaches the waiting lists within this period even if
	// its kick was lost.
	_, werr := m.svc.ServeWaitlists(ctx, t)
	return errors.Join(err, werr)
}

// waitlistTask runs TaskWaitlistServe.
func (m *Module) waitlistTask(ctx context.Context, t tenants.Tenant, _ []byte) error {
	n, err := m.svc.ServeWaitlists(ctx, t)
	if n > 0 {
		m.app.Log.Info("waiting-list offers made", "tenant", t.Slug, "count", n)
	}
	return err
}

// sweepTask runs TaskHoldSweep: lapsed holds whose own task was lost,
// refunds Stripe has not accepted yet, and event cancellations not settled.
func (m *Module) sweepTask(ctx context.Context, t tenants.Tenant, _ []byte) error {
	n, err := m.svc.SweepHolds(ctx, t, 10000)
	if n > 0 {
		m.app.Log.Info("lapsed holds expired by the sweeper", "tenant", t.Slug, "count", n)
	}
	orders, rerr := m.svc.orders.PendingRefunds(ctx, t)
	for _, id := range orders {
		if e := m.svc.SendRefund(ctx, t, id); e != nil {
			rerr = errors.Join(rerr, e)
		}
	}
	payments, perr := m.svc.orders.PendingReviewRefunds(ctx, t)
	for _, pi := range payments {
		if e := m.svc.SendReviewRefund(ctx, t, pi); e != nil {
			perr = errors.Join(perr, e)
		}
	}
	_, cerr := m.svc.ResumeCancellations(ctx, t)
	return errors.Join(err, rerr, perr, cerr)
}

// refundTask runs TaskRefund until Stripe accepts the refund.
func (m *Module) refundTask(ctx context.Context, t tenants.Tenant, payload []byte) error {
	var p orders.RefundTask
	if err := json.Unmarshal(payload, &p); err != nil || (p.OrderID == uuid.Nil) == (p.PaymentIntentID == "") {
		return fmt.Errorf("%w: bad refund payload", asynq.SkipRetry)
	}
	if p.PaymentIntentID != "" {
		return m.svc.SendReviewRefund(ctx, t, p.PaymentIntentID)
	}
	return m.svc.SendRefund(ctx, t, p.OrderID)
}

// cancelTaskRun runs TaskEventCancel.
func (m *Module) cancelTaskRun(ctx context.Context, t tenants.Tenant, payload []byte) error {
	var p orders.CancelTask
	if err := json.Unmarshal(payload, &p); err != nil || p.EventID == uuid.Nil {
		return fmt.Errorf("%w: bad event-cancel payload", asynq.SkipRetry)
	}
	_, err := m.svc.SettleCancellation(ctx, t, p.EventID)
	if err == nil {
		m.svc.orders.EnqueueOutbox(ctx, t)
	}
	return err
}

// outboxTask runs TaskOutbox.
func (m *Module) outboxTask(ctx context.Context, t tenants.Tenant, _ []byte) error {
	return m.app.Mail.DispatchQueued(ctx, t)
}
