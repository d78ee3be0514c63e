package ops

import (
	"context"
	"net/http"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/tenants"
)

// Service holds ops' business rules; it opens tenant transactions through
// the Core and publishes changes to the live hub after they commit.
type Service struct {
	app *app.Core
	hub *Hub
	// poller lists payments from POS accounts (pospoll.go).
	poller *http.Client
	// revenue sends events' revenue to their dashboards after sales.
	revenue *revenueFeed
}

// NewService returns the service over the module's capabilities.
func NewService(c *app.Core) *Service {
	s := &Service{app: c, hub: NewHub(c.Redis, c.RedisKey, c.Log, c.Metrics), poller: &http.Client{Timeout: 30 * time.Second}}
	s.revenue = &revenueFeed{compute: s.Revenue, publish: s.publish, log: c.Log}
	return s
}

// Hub returns the live hub (for benchmarks and tests).
func (s *Service) Hub() *Hub { return s.hub }

// staleAfter is how old the trusted count of a zone may be during doors
// before the dashboard flags it.
const staleAfter = 5 * time.Minute

// liveWindow says whether an instant falls in an event's live night: from
// three hours before its start (doors, queues) to two hours after its end.
func liveWindow(ev app.EventInfo, at time.Time) bool {
	return !at.Before(ev.StartsAt.Add(-3*time.Hour)) && at.Before(ev.EndsAt.Add(2*time.Hour))
}

// publish sends a change to the event's viewers. It runs after the commit
// and is best effort: a viewer that misses it (Redis down) reloads the
// dashboard, which is read from the database.
func (s *Service) publish(ctx context.Context, t tenants.Tenant, event uuid.UUID, typ string, data any) {
	if _, err := s.hub.Publish(ctx, t, event, typ, data); err != nil {
		s.app.Log.Warn("ops: live publish failed", "tenant", t.Slug, "event", event, "type", typ, "err", err)
	}
}

func newID() uuid.UUID { return uuid.Must(uuid.NewV7()) }

// tx is the core's tenant transaction.
func (s *Service) tx(ctx context.Context, t tenants.Tenant, fn func(tx *gorm.DB) error) error {
	return s.app.Tx(ctx, t, fn)
}
