package tenants

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"gorm.io/gorm"

	"marquee/migrations"
)

// Deleting a tenant takes two steps a delay apart (control migration 00124):
// RequestDeletion stops serving it and sets the earliest time it may be
// deleted; until then CancelDeletion gives it back (suspended); after it,
// CompleteDeletion drops its schema and its control-plane records.
const (
	StatusDeleting Status = "deleting"
	StatusDeleted  Status = "deleted"
)

// MinDeletionDelay is the shortest wait between asking to delete a tenant
// and deleting it: time for the owner to object and for an export.
const MinDeletionDelay = 24 * time.Hour

var (
	// ErrDeletionNotDue is a deletion completed before its delay passed.
	ErrDeletionNotDue = errors.New("tenant deletion is not due yet")
	// ErrNotDeleting is a cancel or completion of a tenant nobody asked to delete.
	ErrNotDeleting = errors.New("no deletion of this tenant was requested")
)

const controlAudit = migrations.ControlSchema + ".platform_audit"

// lockTenant reads a tenant's row under a row lock inside tx.
func lockTenant(tx *gorm.DB, slug string) (Tenant, *time.Time, error) {
	var rows []struct {
		Tenant
		DeleteAfter *time.Time `gorm:"column:delete_after"`
	}
	if err := tx.Raw("SELECT "+tenantColumns+", delete_after FROM "+controlTenants+" WHERE slug = ? FOR UPDATE", slug).Scan(&rows).Error; err != nil {
		return Tenant{}, nil, err
	}
	if len(rows) == 0 {
		return Tenant{}, nil, ErrNotFound
	}
	return rows[0].Tenant, rows[0].DeleteAfter, nil
}

// record writes the status history row and the audit row of a lifecycle step.
func record(tx *gorm.DB, id uuid.UUID, from, to Status, c Change, action, detail string) error {
	if err := tx.Exec("INSERT INTO "+controlHistory+" (tenant_id, from_status, to_status, actor, reason) VALUES (?, ?, ?, ?, ?)",
		id, from, to, c.Actor, c.Reason).Error; err != nil {
		return err
	}
	return tx.Exec("INSERT INTO "+controlAudit+" (actor, action, tenant_id, detail) VALUES (?, ?, ?, ?)", c.Actor, action, id, detail).Error
}

// RequestDeletion stops serving an active or suspended tenant at once and
// schedules its deletion no sooner than after (at least MinDeletionDelay).
// It returns when the deletion may be completed.
func (r *Registry) RequestDeletion(ctx context.Context, slug string, after time.Duration, c Change) (time.Time, error) {
	if after < MinDeletionDelay {
		return time.Time{}, fmt.Errorf("a deletion waits at least %v (asked %v)", MinDeletionDelay, after)
	}
	if c.Actor == "" || c.Reason == "" {
		return time.Time{}, errors.New("a deletion request needs who asks and why")
	}
	var due time.Time
	err := r.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		t, _, err := lockTenant(tx, slug)
		if err != nil {
			return err
		}
		if t.Status != StatusActive && t.Status != StatusSuspended {
			return fmt.Errorf("tenant %s is %s: only an active or suspended tenant can be scheduled for deletion", slug, t.Status)
		}
		if err := tx.Raw("UPDATE "+controlTenants+" SET status = ?, delete_after = now() + make_interval(secs => ?), updated_at = now() WHERE id = ? RETURNING delete_after",
			StatusDeleting, after.Seconds(), t.ID).Scan(&due).Error; err != nil {
			return err
		}
		return record(tx, t.ID, t.Status, StatusDeleting, c, "tenant.delete.request", "due "+due.UTC().Format(time.RFC3339))
	})
	if err != nil {
		return time.Time{}, err
	}
	r.announce(ctx, slug)
	return due, nil
}

// CancelDeletion takes back a deletion request; the tenant stays suspended
// (resuming it is a separate, deliberate step).
func (r *Registry) CancelDeletion(ctx context.Context, slug string, c Change) error {
	err := r.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		t, _, err := lockTenant(tx, slug)
		if err != nil {
			return err
		}
		if t.Status != StatusDeleting {
			return ErrNotDeleting
		}
		if err := tx.Exec("UPDATE "+controlTenants+" SET status = ?, delete_after = NULL, updated_at = now() WHERE id = ?", StatusSuspended, t.ID).Error; err != nil {
			return err
		}
		return record(tx, t.ID, StatusDeleting, StatusSuspended, c, "tenant.delete.cancel", "")
	})
	if err == nil {
		r.announce(ctx, slug)
	}
	return err
}

// CompleteDeletion deletes a tenant whose deletion is due: its schema is
// dropped on its server, then its policy rules and sessions are removed and
// its name and owner e-mail scrubbed, leaving a tombstone row (status
// "deleted") for the audit trail. Safe to run again after a crash between
// the two steps. It touches only the schema the registry names for this
// slug, after checking that name is the one the slug derives.
func (r *Registry) CompleteDeletion(ctx context.Context, servers *Servers, slug string, c Change) error {
	var t Tenant
	err := r.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var due *time.Time
		var err error
		if t, due, err = lockTenant(tx, slug); err != nil {
			return err
		}
		if t.Status != StatusDeleting || due == nil {
			return ErrNotDeleting
		}
		var notDue bool
		if err := tx.Raw("SELECT ?::timestamptz > now()", *due).Scan(&notDue).Error; err != nil {
			return err
		}
		if notDue {
			return fmt.Errorf("%w: not before %s", ErrDeletionNotDue, due.UTC().Format(time.RFC3339))
		}
		return nil
	})
	if err != nil {
		return err
	}
	want, err := SchemaName(t.Slug)
	if err != nil || want != t.Schema {
		return fmt.Errorf("tenant %s names schema %q, not its own %q: refusing to drop it", slug, t.Schema, want)
	}
	srv, err := servers.For(t)
	if err != nil {
		return err
	}
	if _, err := srv.SQL.ExecContext(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{t.Schema}.Sanitize()+" CASCADE"); err != nil {
		return fmt.Errorf("drop schema of %s: %w", slug, err)
	}
	err = r.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		cur, _, err := lockTenant(tx, slug)
		if err != nil {
			return err
		}
		if cur.Status != StatusDeleting {
			return ErrNotDeleting // another completion finished first
		}
		// A chain's rules are those in its domains ("<slug>/..."), as the
		// enforcer loads them: exact on the chain part, so "acme" never
		// matches "acme-x".
		if err := tx.Exec("DELETE FROM "+migrations.ControlSchema+".casbin_rule WHERE (ptype = 'p' AND split_part(v1, '/', 1) = ?) OR (ptype = 'g' AND split_part(v2, '/', 1) = ?)", slug, slug).Error; err != nil {
			return err
		}
		if err := tx.Exec("DELETE FROM "+migrations.ControlSchema+".sessions WHERE tenant_id = ?", cur.ID).Error; err != nil {
			return err
		}
		if err := tx.Exec("UPDATE "+controlTenants+" SET status = ?, name = '(deleted)', owner_email = NULL, delete_after = NULL, updated_at = now() WHERE id = ?", StatusDeleted, cur.ID).Error; err != nil {
			return err
		}
		return record(tx, cur.ID, StatusDeleting, StatusDeleted, c, "tenant.delete.complete", "schema "+t.Schema+" dropped on "+cmpOr(t.Server, DefaultServer))
	})
	if err == nil {
		r.announce(ctx, slug)
	}
	return err
}
