package ops

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"

	"marquee/tenants"
)

// revenueFeed sends an event's revenue to its dashboard after sales
// change it, at most one computation at a time per event and instance:
// summing an event's sales is a query over all of them, and running it
// after every one of 200 deliveries a second cost more than the deliveries
// themselves. A sale committed while a computation runs marks the event
// again, and one more runs after it, so the last figure sent always
// includes every sale committed before it was asked for.
type revenueFeed struct {
	compute func(ctx context.Context, t tenants.Tenant, event uuid.UUID) (Revenue, error)
	publish func(ctx context.Context, t tenants.Tenant, event uuid.UUID, typ string, data any)
	log     *slog.Logger

	mu      sync.Mutex
	pending map[revenueKey]bool // present: a sender runs for the event; true: run again
}

type revenueKey struct {
	tenant string
	event  uuid.UUID
}

// changed says a sale of the event committed. It never waits: the first
// change starts a sender, later ones mark the event for it.
func (f *revenueFeed) changed(t tenants.Tenant, event uuid.UUID) {
	k := revenueKey{t.Slug, event}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.pending == nil {
		f.pending = map[revenueKey]bool{}
	}
	if _, running := f.pending[k]; running {
		f.pending[k] = true
		return
	}
	f.pending[k] = false
	go f.send(t, k)
}

// send computes and publishes the event's revenue until no sale came in
// meanwhile. It outlives the request that started it, with its own bound.
func (f *revenueFeed) send(t tenants.Tenant, k revenueKey) {
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		rev, err := f.compute(ctx, t, k.event)
		if err == nil {
			f.publish(ctx, t, k.event, "revenue", rev)
		} else {
			f.log.Warn("ops: revenue for the dashboard", "tenant", t.Slug, "event", k.event, "err", err)
		}
		cancel()
		f.mu.Lock()
		if !f.pending[k] {
			delete(f.pending, k)
			f.mu.Unlock()
			return
		}
		f.pending[k] = false
		f.mu.Unlock()
	}
}
