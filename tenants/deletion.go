package tenants

import (
	"context"
	"errors"
	"fmt"
	"strings"
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
// dropped on its server, with the copies moves left on every configured
// server (a source kept as "<schema>__moved_<time>", a dead move's copy
// under the schema's own name); purge, if set, removes what it keeps
// elsewhere (its files); then its policy rules and sessions are removed and
// its name and owner e-mail scrubbed, leaving a tombstone row (status
// "deleted") for the audit trail. Safe to run again after a crash between
// the steps. It touches only schemas of the name the slug derives (checked
// against the registry's) and its backups, never another tenant's schema
// whose name happens to look like a backup of this one's.
func (r *Registry) CompleteDeletion(ctx context.Context, servers *Servers, slug string, c Change, purge func(context.Context, Tenant) error) error {
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
	copies, err := r.dropCopies(ctx, servers, t)
	if err != nil {
		return fmt.Errorf("drop moved copies of %s: %w", slug, err)
	}
	if purge != nil {
		if err := purge(ctx, t); err != nil {
			return fmt.Errorf("purge %s: %w", slug, err)
		}
	}
	detail := "schema " + t.Schema + " dropped on " + cmpOr(t.Server, DefaultServer)
	if len(copies) > 0 {
		detail += "; copies left by moves dropped: " + strings.Join(copies, ", ")
	}
	if purge != nil {
		detail += "; its files removed"
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
		return record(tx, cur.ID, StatusDeleting, StatusDeleted, c, "tenant.delete.complete", detail)
	})
	if err == nil {
		r.announce(ctx, slug)
	}
	return err
}

// dropCopies drops, on every configured server, the copies of a tenant's
// schema that moves left behind: sources renamed "<schema>__moved_<unix
// time>" and, on servers other than its own, a dead move's copy under the
// schema's name. A name some tenant's registry row claims as its own
// schema (slug "acme--moved-1" is schema t_acme__moved_1) is another
// tenant's and stays. It returns "server:schema" of each one dropped.
func (r *Registry) dropCopies(ctx context.Context, servers *Servers, t Tenant) ([]string, error) {
	home := cmpOr(t.Server, DefaultServer)
	var dropped []string
	for _, name := range servers.Names() {
		sv, err := servers.Get(name)
		if err != nil {
			return dropped, err
		}
		// The schema name is [a-z0-9_] only (SchemaName), safe inside a
		// regular expression.
		rows, err := sv.SQL.QueryContext(ctx, `SELECT nspname FROM pg_namespace
			WHERE (nspname = $1 AND $2) OR nspname ~ ('^' || $1 || '__moved_[0-9]+$') ORDER BY nspname`, t.Schema, name != home)
		if err != nil {
			return dropped, err
		}
		var found []string
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				rows.Close()
				return dropped, err
			}
			found = append(found, n)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return dropped, err
		}
		for _, n := range found {
			if n != t.Schema {
				var owners int64
				if err := r.db.WithContext(ctx).Raw("SELECT count(*) FROM "+controlTenants+" WHERE schema_name = ?", n).Scan(&owners).Error; err != nil {
					return dropped, err
				}
				if owners > 0 {
					continue
				}
			}
			if _, err := sv.SQL.ExecContext(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{n}.Sanitize()+" CASCADE"); err != nil {
				return dropped, fmt.Errorf("drop %s on %s: %w", n, name, err)
			}
			dropped = append(dropped, name+":"+n)
		}
	}
	return dropped, nil
}
