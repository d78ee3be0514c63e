package calendar

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"

	"marquee/tenants"
)

// Task types of the calendar.
const (
	// TaskHoldExpire expires one hold at its expires_at (queued with
	// asynq.ProcessAt and the unique id calendar-hold-expire:<tenant>:<hold>).
	TaskHoldExpire = "calendar:hold-expire"
	// TaskHoldSweep expires every lapsed hold of a tenant; it runs every
	// minute and catches any hold whose own task was lost or never queued.
	TaskHoldSweep = "calendar:hold-sweep"
)

type holdTask struct {
	HoldID uuid.UUID `json:"hold_id"`
}

// expireTask runs TaskHoldExpire. Running it twice, early, or for a hold
// already released or confirmed changes nothing.
func (m *Module) expireTask(ctx context.Context, t tenants.Tenant, payload []byte) error {
	var p holdTask
	if err := json.Unmarshal(payload, &p); err != nil || p.HoldID == uuid.Nil {
		return fmt.Errorf("%w: bad hold-expire payload", asynq.SkipRetry)
	}
	expired, err := m.svc.ExpireHold(ctx, t, p.HoldID)
	if err == nil && expired {
		m.app.Log.Info("hold expired", "tenant", t.Slug, "hold", p.HoldID)
	}
	return err
}

// sweepTask runs TaskHoldSweep.
func (m *Module) sweepTask(ctx context.Context, t tenants.Tenant, _ []byte) error {
	n, err := m.svc.SweepHolds(ctx, t)
	if n > 0 {
		m.app.Log.Info("lapsed holds expired by the sweeper", "tenant", t.Slug, "count", n)
	}
	return err
}

// lapseTask runs TaskChallengeLapse. Running it twice, or for a hold that
// confirmed or was released meanwhile, changes nothing; run early, it fails
// so that Asynq runs it again (and the sweeper catches the deadline too).
func (m *Module) lapseTask(ctx context.Context, t tenants.Tenant, payload []byte) error {
	var p holdTask
	if err := json.Unmarshal(payload, &p); err != nil || p.HoldID == uuid.Nil {
		return fmt.Errorf("%w: bad challenge-lapse payload", asynq.SkipRetry)
	}
	released, err := m.svc.LapseChallenge(ctx, t, p.HoldID)
	if err != nil {
		return err
	}
	if released {
		m.app.Log.Info("challenged hold released at its deadline", "tenant", t.Slug, "hold", p.HoldID)
		return nil
	}
	// Still live and not yet due (the worker's clock ran ahead of the
	// database's): try again shortly rather than wait for the sweeper.
	early, err := m.svc.ChallengePending(ctx, t, p.HoldID)
	if err == nil && early {
		return fmt.Errorf("hold %s: challenge deadline not reached yet", p.HoldID)
	}
	return err
}
