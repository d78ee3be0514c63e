package inventory

import (
	"sync/atomic"

	"github.com/google/uuid"

	"marquee/tenants"
)

// PauseHoldBatches keeps an event's hold requests queued, no batch starting,
// until resume; queued counts them. A test can so put requests, in an order
// it chooses, into one batch.
func (m *Module) PauseHoldBatches(t tenants.Tenant, eventID uuid.UUID) (queued func() int, resume func()) {
	q := m.svc.lockedHoldQueue(eventKey(t, eventID))
	q.workers += holdWorkersPerEvent // every worker slot looks taken
	q.mu.Unlock()
	queued = func() int {
		q.mu.Lock()
		defer q.mu.Unlock()
		return len(q.pending)
	}
	resume = func() {
		q.mu.Lock()
		q.workers -= holdWorkersPerEvent - 1 // one worker, started here
		q.mu.Unlock()
		go m.svc.drainHolds(t, q)
	}
	return queued, resume
}

// HasHoldQueue says whether the event's hold queue is in memory.
func (m *Module) HasHoldQueue(t tenants.Tenant, eventID uuid.UUID) bool {
	_, ok := m.svc.holdQueues.Load(eventKey(t, eventID))
	return ok
}

// PanicInHoldBatches makes every hold batch of the event panic inside its
// open transaction, until the returned func is called.
func PanicInHoldBatches(eventID uuid.UUID) (stop func()) {
	f := func(ev uuid.UUID) {
		if ev == eventID {
			panic("injected fault in a hold batch")
		}
	}
	batchFault.Store(&f)
	return func() { batchFault.Store(nil) }
}

// CrashAfterOrderCommit makes the next order request die (panic) right
// after its order commits, before its PaymentIntent is made, as a killed
// process would leave it.
func (m *Module) CrashAfterOrderCommit() {
	var once atomic.Bool
	f := func(uuid.UUID) {
		if once.CompareAndSwap(false, true) {
			panic("injected crash between the order's commit and its PaymentIntent")
		}
	}
	m.svc.afterOrderCommit.Store(&f)
}
