package booking

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"

	"marquee/tenants"
)

// Task types of booking.
const (
	// TaskOfferExpire expires one offer at its deadline (queued with
	// asynq.ProcessAt and the id booking-offer-expire:<tenant>:<booking>:<terms version>).
	TaskOfferExpire = "booking:offer-expire"
	// TaskOfferSweep expires every lapsed offer of a tenant, every minute:
	// it catches an offer whose own task was lost or never queued.
	TaskOfferSweep = "booking:offer-sweep"
)

type expireTask struct {
	BookingID uuid.UUID `json:"booking_id"`
}

// expireTask runs TaskOfferExpire. Running it twice, early (the deadline
// moved with a counter), or after an answer changes nothing.
func (m *Module) expireTask(ctx context.Context, t tenants.Tenant, payload []byte) error {
	var p expireTask
	if err := json.Unmarshal(payload, &p); err != nil || p.BookingID == uuid.Nil {
		return fmt.Errorf("%w: bad offer-expire payload", asynq.SkipRetry)
	}
	done, err := m.svc.ExpireOffer(ctx, t, p.BookingID)
	if err == nil && done {
		m.app.Log.Info("offer expired", "tenant", t.Slug, "booking", p.BookingID)
	}
	return err
}

func (m *Module) sweepTask(ctx context.Context, t tenants.Tenant, _ []byte) error {
	n, err := m.svc.SweepOffers(ctx, t)
	if n > 0 {
		m.app.Log.Info("lapsed offers expired by the sweeper", "tenant", t.Slug, "count", n)
	}
	return err
}
