package holds

import (
	"github.com/google/uuid"

	"marquee/modules/inventory/internal/deps"
	"marquee/tenants"
)

// Hooks for the module's tests (export_test.go): they reach nothing a
// request could.

// PauseBatches keeps an event's hold requests queued, no batch starting,
// until resume; queued counts them.
func (s *Service) PauseBatches(t tenants.Tenant, eventID uuid.UUID) (queued func() int, resume func()) {
	q := s.lockedHoldQueue(deps.EventKey(t, eventID))
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
		go s.drainHolds(t, q)
	}
	return queued, resume
}

// HasQueue says whether the event's hold queue is in memory.
func (s *Service) HasQueue(t tenants.Tenant, eventID uuid.UUID) bool {
	_, ok := s.holdQueues.Load(deps.EventKey(t, eventID))
	return ok
}

// InjectBatchFault makes fault run inside every hold batch's open
// transaction (after its first statement), until stop is called.
func InjectBatchFault(fault func(event uuid.UUID)) (stop func()) {
	batchFault.Store(&fault)
	return func() { batchFault.Store(nil) }
}
