// Package deps is what every room of the inventory shares: the core's
// capabilities, the clock the rules read, the door to tenant transactions
// with the inventory's retry and error mapping, and the waiting room's way
// to free a done buyer's place. Each room's constructor takes one *Deps.
package deps

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/modules/inventory/internal/model"
	"marquee/tenants"
)

// Deps is the inventory's shared dependency state.
type Deps struct {
	App *app.Core
	// Now is the clock of the rules (sale windows); tests may set it.
	Now func() time.Time
	// Leaver frees a done buyer's waiting-room place (nil without a
	// waiting room). Set before serving.
	Leaver model.AdmissionLeaver
	// Meter hears how the buyers' steps went (nil without a waiting room
	// that adapts). Set before serving.
	Meter model.AdmissionMeter
}

// New returns the shared state on the core.
func New(a *app.Core) *Deps { return &Deps{App: a, Now: time.Now} }

// SetGate notes the admission gate's way to free a done buyer's place.
func (d *Deps) SetGate(g model.AdmissionGate) {
	d.Leaver, _ = g.(model.AdmissionLeaver)
	d.Meter, _ = g.(model.AdmissionMeter)
}

// Observe tells the admission gate how one of an event's buying steps
// (hold, order, pay) went: its time since began, and whether the platform
// failed it. A refusal that is the buyer's answer (seats taken, limits,
// bad input) is neither slow nor failed for the gate: only errors that
// say the platform could not serve (unavailable, or not a problem the API
// describes) count.
func (d *Deps) Observe(t tenants.Tenant, eventID uuid.UUID, step string, began time.Time, err error) {
	if d.Meter == nil || eventID == uuid.Nil {
		return
	}
	failed := false
	if err != nil {
		var ae *app.Error
		if !errors.As(err, &ae) {
			failed = true
		} else if ae.Kind == app.KindUnavailable {
			failed = true
		} else {
			return
		}
	}
	d.Meter.ObserveStep(t, eventID, step, time.Since(began), failed)
}

// BuyerDone frees the buyer's waiting-room place after the commit that
// finished their purchase (or released their last hold). Redis trouble only
// costs the next buyer the idle timeout, so it is logged, not returned.
func (d *Deps) BuyerDone(ctx context.Context, t tenants.Tenant, eventID uuid.UUID, buyerID string) {
	if d.Leaver == nil || buyerID == "" {
		return
	}
	if err := d.Leaver.LeaveBuyer(context.WithoutCancel(ctx), t, eventID, buyerID); err != nil {
		d.App.Log.Warn("waiting-room place not freed; it lapses at its idle timeout", "tenant", t.Slug, "event", eventID, "err", err)
	}
}

// Tx runs fn in the tenant's scope, retrying a transaction PostgreSQL chose
// as a deadlock or serialization victim (fn has no effects outside it), and
// maps the database's refusals to the API's errors.
func (d *Deps) Tx(ctx context.Context, t tenants.Tenant, fn func(tx *gorm.DB) error) error {
	return MapStoreError(d.App.TxWith(ctx, t, d.Retried(t), fn))
}

// PgxTx is Tx on a pgx connection (the hold batch's hot path).
func (d *Deps) PgxTx(ctx context.Context, t tenants.Tenant, fn func(tx *tenants.Pgx) error) error {
	return MapStoreError(d.App.PgxTx(ctx, t, d.Retried(t), fn))
}

// PipedTx is Tx as pipelines of statements (the payment's fast path).
func (d *Deps) PipedTx(ctx context.Context, t tenants.Tenant, fn func(p *tenants.Piped) error) error {
	return MapStoreError(d.App.PipedTx(ctx, t, d.Retried(t), fn))
}

// PgxStatement runs one statement in one round trip (its own implicit
// transaction): the door's scan.
func (d *Deps) PgxStatement(ctx context.Context, t tenants.Tenant, q string, args []any, scan func(pgx.Rows) error) error {
	return MapStoreError(d.App.PgxStatement(ctx, t, d.Retried(t), q, args, scan))
}

// PgxStatementGenericPlan is PgxStatement on the statement's generic plan
// (tenants.TxOptions.GenericPlan): for a statement whose lookups are all
// equalities on unique keys, so one plan fits every value.
func (d *Deps) PgxStatementGenericPlan(ctx context.Context, t tenants.Tenant, q string, args []any, scan func(pgx.Rows) error) error {
	o := d.Retried(t)
	o.GenericPlan = true
	return MapStoreError(d.App.PgxStatement(ctx, t, o, q, args, scan))
}

// Retried asks the door to run a transaction again, whole, while PostgreSQL
// chooses it as a deadlock or serialization victim (a few times at most),
// logging each rerun.
func (d *Deps) Retried(t tenants.Tenant) tenants.TxOptions {
	return tenants.TxOptions{Retry: true, OnRetry: func(attempt int, err error) {
		d.App.Log.Warn("inventory transaction retried", "tenant", t.Slug, "attempt", attempt, "err", err)
	}}
}

// EventKey names an event among all tenants' (the rooms' per-event maps).
func EventKey(t tenants.Tenant, eventID uuid.UUID) string { return t.Slug + "/" + eventID.String() }

// MapStoreError turns the database's refusals into the API's errors.
func MapStoreError(err error) error {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return err
	}
	switch {
	case pe.ConstraintName == "inv_quota_sum":
		return app.Conflict("quota_exceeds_capacity", "%s", pe.Message)
	case pe.ConstraintName == "inv_zone_sum":
		return app.Conflict("zones_exceed_capacity", "%s", pe.Message)
	case pe.ConstraintName == "inv_counter_shards_within_capacity":
		return app.Conflict("sold_out", "not enough tickets left")
	case pe.Code == "23505":
		return app.Conflict("duplicate", "a record with these values exists already: %s", pe.ConstraintName)
	case pe.Code == "23514" || pe.Code == "22001" || pe.Code == "22003":
		return app.Invalid("invalid_input", "value refused by the database: %s", pe.Message)
	}
	return err
}
