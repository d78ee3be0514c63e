package holds

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"

	"marquee/app"
	"marquee/modules/inventory/internal/deps"
	"marquee/modules/inventory/internal/model"
	"marquee/tenants"
)

// Holds are made in batches (group commit). Every hold request of an event
// joins its event's queue; a few workers per event and instance each take
// everything queued and decide it in one transaction: lock what the batch
// touches (seats, counter shards, buyer counters, in the global lock order),
// decide each request in arrival order against the locked state, then write
// every winner with one statement and commit once. A lone request is a batch
// of one and waits for nothing; under an on-sale's load a batch costs about
// the same ten statements whether it holds one seat or sixty, which is what
// lets the hold path keep up with the conditional UPDATE it rests on.
//
// Each request stays all-or-nothing on its own: a request that cannot be
// served changes nothing and does not affect its batch. The database keeps
// the last word: the writing statement repeats every condition (seat still
// available, shard has room, buyer under the limit) and the batch rolls back
// and is rerun one request at a time if any row disagrees with the decision.

const (
	// maxHoldBatch bounds one batch (and so one writing statement).
	maxHoldBatch = 64
	// holdWorkersPerEvent lets one batch run while the next one forms.
	holdWorkersPerEvent = 2
	// maxPendingHolds bounds one event's queue; beyond it requests are shed
	// with 503 (the HTTP layer stops counting requests parked here).
	maxPendingHolds = 2048
	// holdBatchTimeout bounds one batch's transaction; it does not follow
	// any one caller's context, so a buyer who hangs up cannot abort others.
	holdBatchTimeout = 15 * time.Second
)

// holdJob is one validated hold request waiting for its batch.
type holdJob struct {
	ctx  context.Context
	ev   app.EventInfo
	req  HoldRequest
	done chan holdOutcome // buffered: a worker never waits for a caller
}

type holdOutcome struct {
	hold     model.Hold
	replayed bool
	err      error
	// joinCart names the buyer's cart the request is to be added to
	// (after the batch, by its caller), instead of a hold of its own.
	joinCart uuid.UUID
}

// settle answers the request from what its idempotency key holds: a refusal
// or a stored hold to replay. It reports false when the key holds nothing
// and the work is still to be done (the outcome is then left as it was).
func (o *holdOutcome) settle(f app.KeyLookup) bool {
	switch {
	case f.Err != nil:
		*o = holdOutcome{err: f.Err}
	case f.Replay != nil:
		*o = holdOutcome{replayed: true}
		o.err = json.Unmarshal(f.Replay, &o.hold)
	default:
		return false
	}
	return true
}

// holdQueue is one event's requests not yet taken by a worker. It lives in
// Service.holdQueues while it has work: the last worker to find it empty
// retires it, so events long past cost no memory.
type holdQueue struct {
	key     string
	mu      sync.Mutex
	pending []*holdJob
	workers int
	retired bool
}

// lockedHoldQueue returns the event's live queue, locked.
func (s *Service) lockedHoldQueue(key string) *holdQueue {
	for {
		v, _ := s.holdQueues.LoadOrStore(key, &holdQueue{key: key})
		q := v.(*holdQueue)
		q.mu.Lock()
		if !q.retired {
			return q
		}
		// Retired between the load and the lock; it is leaving the map.
		q.mu.Unlock()
	}
}

// submitHold queues a request and waits for its outcome. A caller that gives
// up (its context ends) is answered with its context's error; if its batch
// had already begun, the hold may exist and lapses at its expiry (a retry
// with the same Idempotency-Key gets it back).
func (s *Service) submitHold(ctx context.Context, t tenants.Tenant, ev app.EventInfo, req HoldRequest) (holdOutcome, error) {
	job := &holdJob{ctx: ctx, ev: ev, req: req, done: make(chan holdOutcome, 1)}
	q := s.lockedHoldQueue(deps.EventKey(t, ev.ID))
	if len(q.pending) >= maxPendingHolds {
		q.mu.Unlock()
		return holdOutcome{}, errHoldsBusy
	}
	q.pending = append(q.pending, job)
	start := q.workers < holdWorkersPerEvent
	if start {
		q.workers++
	}
	q.mu.Unlock()
	if start {
		go s.drainHolds(t, q)
	}
	select {
	case out := <-job.done:
		return out, out.err
	case <-ctx.Done():
		return holdOutcome{}, ctx.Err()
	}
}

// drainHolds runs batches until the queue is empty.
func (s *Service) drainHolds(t tenants.Tenant, q *holdQueue) {
	for {
		q.mu.Lock()
		n := min(len(q.pending), maxHoldBatch)
		if n == 0 {
			q.workers--
			if q.workers == 0 {
				q.retired = true
				s.holdQueues.CompareAndDelete(q.key, q)
			}
			q.mu.Unlock()
			return
		}
		batch := slices.Clone(q.pending[:n])
		q.pending = slices.Delete(q.pending, 0, n)
		q.mu.Unlock()

		live := batch[:0]
		for _, j := range batch {
			if err := j.admitted(); err != nil {
				j.done <- holdOutcome{err: err}
				continue
			}
			live = append(live, j)
		}
		if len(live) > 0 {
			s.runHoldBatch(t, live)
		}
	}
}

// admitted waits for the request's admission check (begun when it was
// queued, so usually done) and reports a refusal or a caller gone.
func (j *holdJob) admitted() error {
	if j.req.Admit != nil {
		select {
		case err := <-j.req.Admit:
			if err != nil {
				return err
			}
		case <-j.ctx.Done():
			return j.ctx.Err()
		}
	}
	return j.ctx.Err()
}

// errHoldsBusy refuses a hold the server cannot take on now.
var errHoldsBusy = app.Unavailable("overloaded", time.Second, "too many holds at once for this event; retry shortly")
