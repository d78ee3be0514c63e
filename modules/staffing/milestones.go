package staffing

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"marquee/app"
	"marquee/jobs"
	"marquee/tenants"
)

// Requirements follow sales between the periodic recomputations: each paid
// order the seller announces (Core.TicketsSold, after its commit) moves a
// per-event counter in Redis, and when the counter crosses a milestone the
// event's requirements are recomputed by a task. A milestone is every
// multiple of the event's step: the greatest common divisor of its ratio
// rules' per_attendees (so every threshold where ceil(sold/per) moves is a
// multiple of it), capped at 5% of the venue's capacity. Debounced: the task
// waits MilestoneDelay for the orders that follow, and its id is unique per
// event and milestone, so a burst of orders crossing one milestone queues one
// recomputation. The counter is set to the facts' figure at each
// recomputation; orders counted between that read and the set are lost to
// it, which only delays the next milestone — the five-minute job still
// recomputes every event.

// TaskRecomputeEvent recomputes one event's requirements (a sales milestone).
const TaskRecomputeEvent = "staffing:requirements-recompute-event"

// MilestoneDelay is how long a milestone's recomputation waits for the
// orders right behind the one that crossed it.
const MilestoneDelay = time.Second

// milestoneTTL bounds the counters of events nobody sells any more.
const milestoneTTL = 7 * 24 * time.Hour

type recomputeEventTask struct {
	EventID uuid.UUID `json:"event_id"`
}

func (s *Service) soldKey(t tenants.Tenant, eventID uuid.UUID) string {
	return s.app.RedisKey("staffing", "sold", t.Slug, eventID.String())
}

func (s *Service) stepKey(t tenants.Tenant, eventID uuid.UUID) string {
	return s.app.RedisKey("staffing", "step", t.Slug, eventID.String())
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// milestoneStep is the event's step from its ratio rules' divisors and its
// venue's capacity.
func milestoneStep(pers []int, capacity int) int {
	step := max(1, capacity*5/100)
	g := 0
	for _, p := range pers {
		if p > 0 {
			g = gcd(g, p)
		}
	}
	if g > 0 && g < step {
		step = g
	}
	return step
}

// armMilestones sets the event's counter to the tickets the facts gave and
// its step, after a recomputation committed.
func (s *Service) armMilestones(ctx context.Context, t tenants.Tenant, eventID uuid.UUID, sold, step int) {
	ctx = context.WithoutCancel(ctx)
	pipe := s.app.Redis.TxPipeline()
	pipe.Set(ctx, s.soldKey(t, eventID), sold, milestoneTTL)
	pipe.Set(ctx, s.stepKey(t, eventID), step, milestoneTTL)
	if _, err := pipe.Exec(ctx); err != nil {
		s.app.Log.Warn("staffing: sales milestones not armed; the periodic job recomputes", "tenant", t.Slug, "event", eventID, "err", err)
	}
}

// crossed reports whether going from before to after tickets passes a
// multiple of step: ceil(n/step) moves exactly when n goes past k*step.
func crossed(before, after, step int) (bool, int) {
	if step <= 0 || after <= before {
		return false, 0
	}
	bucket := (after + step - 1) / step
	return bucket > (before+step-1)/step, bucket
}

// TicketsSold hears of a paid order (after the seller's commit) and queues
// a recomputation of the event's requirements when the order crosses a
// milestone. It never fails the sale: a miss is logged and the periodic
// job catches up.
func (s *Service) TicketsSold(ctx context.Context, t tenants.Tenant, sale app.TicketSale) {
	if sale.Quantity <= 0 || sale.EventID == uuid.Nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	pipe := s.app.Redis.Pipeline()
	incr := pipe.IncrBy(ctx, s.soldKey(t, sale.EventID), int64(sale.Quantity))
	pipe.Expire(ctx, s.soldKey(t, sale.EventID), milestoneTTL)
	stepCmd := pipe.Get(ctx, s.stepKey(t, sale.EventID))
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		s.app.Log.Warn("staffing: sale not counted; the periodic job recomputes", "tenant", t.Slug, "event", sale.EventID, "err", err)
		return
	}
	after := int(incr.Val())
	step, err := strconv.Atoi(stepCmd.Val())
	if err != nil || after == sale.Quantity {
		// No recomputation armed this event yet (or its keys expired): the
		// counter does not hold the event's total, so recompute now, which
		// arms it.
		s.queueRecompute(ctx, t, sale.EventID, "arm")
		return
	}
	if ok, bucket := crossed(after-sale.Quantity, after, step); ok {
		s.queueRecompute(ctx, t, sale.EventID, strconv.Itoa(bucket))
	}
}

func (s *Service) queueRecompute(ctx context.Context, t tenants.Tenant, eventID uuid.UUID, milestone string) {
	_, err := s.app.Jobs.Enqueue(ctx, t, TaskRecomputeEvent, recomputeEventTask{EventID: eventID},
		asynq.TaskID("staffing-milestone:"+t.Slug+":"+eventID.String()+":"+milestone),
		asynq.ProcessIn(MilestoneDelay), asynq.Queue(jobs.QueueDefault), asynq.MaxRetry(5))
	if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		s.app.Log.Warn("staffing: milestone recomputation not queued; the periodic job recomputes", "tenant", t.Slug, "event", eventID, "err", err)
	}
}

// recomputeEventTask runs TaskRecomputeEvent. An event gone from the
// calendar is done with, not retried.
func (m *Module) recomputeEventTask(ctx context.Context, t tenants.Tenant, payload []byte) error {
	var task recomputeEventTask
	if err := json.Unmarshal(payload, &task); err != nil {
		return err
	}
	_, err := m.svc.Recompute(ctx, t, task.EventID)
	var ae *app.Error
	if errors.As(err, &ae) && ae.Kind != app.KindUnavailable {
		m.app.Log.Info("staffing: milestone recomputation skipped", "tenant", t.Slug, "event", task.EventID, "err", err)
		return nil
	}
	return err
}
