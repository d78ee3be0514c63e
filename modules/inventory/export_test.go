package inventory

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/google/uuid"

	"marquee/modules/inventory/internal/holds"
	"marquee/tenants"
)

// PauseHoldBatches keeps an event's hold requests queued, no batch starting,
// until resume; queued counts them. A test can so put requests, in an order
// it chooses, into one batch.
func (m *Module) PauseHoldBatches(t tenants.Tenant, eventID uuid.UUID) (queued func() int, resume func()) {
	return m.svc.holds.PauseBatches(t, eventID)
}

// HasHoldQueue says whether the event's hold queue is in memory.
func (m *Module) HasHoldQueue(t tenants.Tenant, eventID uuid.UUID) bool {
	return m.svc.holds.HasQueue(t, eventID)
}

// PanicInHoldBatches makes every hold batch of the event panic inside its
// open transaction, until the returned func is called.
func PanicInHoldBatches(eventID uuid.UUID) (stop func()) {
	return holds.InjectBatchFault(func(ev uuid.UUID) {
		if ev == eventID {
			panic("injected fault in a hold batch")
		}
	})
}

// StallFirstHoldBatch stops the event's next hold batch inside its open
// transaction, after its reading statement, until release: entered is
// closed when it gets there. Later batches run freely.
func StallFirstHoldBatch(eventID uuid.UUID) (entered <-chan struct{}, release func(), stop func()) {
	in, out := make(chan struct{}), make(chan struct{})
	var first atomic.Bool
	stop = holds.InjectBatchFault(func(ev uuid.UUID) {
		if ev == eventID && first.CompareAndSwap(false, true) {
			close(in)
			<-out
		}
	})
	var once sync.Once
	return in, func() { once.Do(func() { close(out) }) }, stop
}

// CrashAfterOrderCommit makes the next order request die (panic) right
// after its order commits, before its PaymentIntent is made, as a killed
// process would leave it.
func (m *Module) CrashAfterOrderCommit() {
	var once atomic.Bool
	m.svc.orders.AfterOrderCommit(func(uuid.UUID) {
		if once.CompareAndSwap(false, true) {
			panic("injected crash between the order's commit and its PaymentIntent")
		}
	})
}

// PaymentPaths answers how many payment_intent.succeeded events the fast
// path and the general path have settled.
func (m *Module) PaymentPaths() (fast, general int64) { return m.svc.orders.PaymentPaths() }

// SignV1Ticket makes a first-format token for a ticket under the chain's v1
// key (as every ticket was issued before v2), and points the ticket at it.
func (m *Module) SignV1Ticket(ctx context.Context, t tenants.Tenant, tk Ticket) (string, error) {
	return m.svc.tickets.SignV1(ctx, t, TokenClaims{Version: 1, Tenant: t.Slug, TicketID: tk.ID.String(), EventID: tk.EventID.String(),
		Zone: tk.ZoneName, IssuedAt: tk.IssuedAt.Unix()})
}

// SignTicketWithKey signs claims with an event's key kid, current or not
// (a leaked old key).
func (m *Module) SignTicketWithKey(ctx context.Context, t tenants.Tenant, kid int, c TicketClaims) (string, error) {
	return m.svc.tickets.SignWith(ctx, t, kid, c)
}

// SweepHolds expires every lapsed hold of the chain now (the expiry
// sweeper's work, without waiting for its schedule).
func (m *Module) SweepHolds(ctx context.Context, t tenants.Tenant) (int, error) {
	return m.svc.holds.SweepHolds(ctx, t, 1000)
}

// TokenRemembered reports whether a token of t is in the door's cache of
// verified tokens.
func (m *Module) TokenRemembered(t tenants.Tenant, token string) bool {
	return m.svc.tickets.Remembered(t, token)
}
