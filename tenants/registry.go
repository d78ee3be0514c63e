package tenants

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/redis/go-redis/v9"
	"gorm.io/gorm"

	"marquee/migrations"
)

// changedChannel is the Redis pub/sub channel (after the deployment's
// prefix) on which every status change of a tenant is announced, so that
// every running server drops its cached copy.
const changedChannel = "tenants:changed"

// cacheTTL bounds staleness if a pub/sub message is ever lost (Redis restart).
const cacheTTL = 10 * time.Second

// Provisioner runs after a new tenant's schema is migrated and before the
// tenant becomes active (default policies, seed rows, ...).
type Provisioner func(ctx context.Context, t Tenant) error

// Registry is the tenant registry in the control schema, with a per-process
// cache kept coherent across servers through Redis pub/sub.
type Registry struct {
	db           *gorm.DB
	rdb          redis.UniversalClient
	runner       *migrations.Runner
	provisioners []Provisioner
	log          *slog.Logger
	changed      string // this deployment's tenant-change channel

	mu    sync.RWMutex
	cache map[string]cached
	// gen counts invalidations: a lookup that raced one does not cache what
	// it read, since the row may have changed after it was read.
	gen uint64
}

type cached struct {
	tenant  Tenant
	fetched time.Time
}

// NewRegistry builds a registry over the control schema.
func NewRegistry(db *gorm.DB, rdb redis.UniversalClient, deployment string, runner *migrations.Runner, log *slog.Logger) *Registry {
	return &Registry{db: db, rdb: rdb, runner: runner, log: log, changed: deployment + ":" + changedChannel, cache: map[string]cached{}}
}

// OnProvision adds a step run for every new tenant before it becomes active.
func (r *Registry) OnProvision(p Provisioner) { r.provisioners = append(r.provisioners, p) }

const tenantColumns = "id, slug, name, schema_name, status, server, coalesce(owner_email, '') AS owner_email, created_at"

// controlTenants is the registry's table, in the control schema.
const controlTenants = migrations.ControlSchema + ".tenants"

// Lookup returns the tenant of a slug, from the cache when fresh.
func (r *Registry) Lookup(ctx context.Context, slug string) (Tenant, error) {
	if err := ValidateSlug(slug); err != nil {
		return Tenant{}, err
	}
	r.mu.RLock()
	c, ok := r.cache[slug]
	gen := r.gen
	r.mu.RUnlock()
	if ok && time.Since(c.fetched) < cacheTTL {
		return c.tenant, nil
	}
	t, err := r.load(ctx, slug)
	if err != nil {
		return Tenant{}, err
	}
	r.mu.Lock()
	if r.gen == gen {
		r.cache[slug] = cached{tenant: t, fetched: time.Now()}
	}
	r.mu.Unlock()
	return t, nil
}

// Active returns the tenant of a slug if it is active, ErrSuspended if it is
// suspended and ErrNotFound otherwise.
func (r *Registry) Active(ctx context.Context, slug string) (Tenant, error) {
	t, err := r.Lookup(ctx, slug)
	if err != nil {
		return Tenant{}, err
	}
	switch t.Status {
	case StatusActive:
		return t, nil
	case StatusSuspended:
		return t, ErrSuspended
	case StatusMoving:
		return t, ErrMoving
	default:
		return t, ErrNotActive
	}
}

func (r *Registry) load(ctx context.Context, slug string) (Tenant, error) {
	var ts []Tenant
	err := r.db.WithContext(ctx).Raw("SELECT "+tenantColumns+" FROM "+controlTenants+" WHERE slug = ?", slug).Scan(&ts).Error
	if err != nil {
		return Tenant{}, err
	}
	if len(ts) == 0 {
		return Tenant{}, ErrNotFound
	}
	return ts[0], nil
}

// ByID returns a tenant by id, uncached.
func (r *Registry) ByID(ctx context.Context, id uuid.UUID) (Tenant, error) {
	var ts []Tenant
	if err := r.db.WithContext(ctx).Raw("SELECT "+tenantColumns+" FROM "+controlTenants+" WHERE id = ?", id).Scan(&ts).Error; err != nil {
		return Tenant{}, err
	}
	if len(ts) == 0 {
		return Tenant{}, ErrNotFound
	}
	return ts[0], nil
}

// List returns every tenant ordered by slug.
func (r *Registry) List(ctx context.Context) ([]Tenant, error) {
	var ts []Tenant
	err := r.db.WithContext(ctx).Raw("SELECT " + tenantColumns + " FROM " + controlTenants + " ORDER BY slug").Scan(&ts).Error
	return ts, err
}

// Search returns up to limit tenants whose slug, name or owner e-mail
// contains q (case-insensitively), ordered by slug.
func (r *Registry) Search(ctx context.Context, q string, limit int) ([]Tenant, error) {
	var ts []Tenant
	like := "%" + strings.NewReplacer(`\`, `\\`, "%", `\%`, "_", `\_`).Replace(strings.ToLower(strings.TrimSpace(q))) + "%"
	err := r.db.WithContext(ctx).Raw("SELECT "+tenantColumns+" FROM "+controlTenants+
		" WHERE lower(slug) LIKE ? OR lower(name) LIKE ? OR lower(owner_email) LIKE ? ORDER BY slug LIMIT ?", like, like, like, limit).Scan(&ts).Error
	return ts, err
}

// SetOwnerEmail records the e-mail of a tenant's owner, for search.
func (r *Registry) SetOwnerEmail(ctx context.Context, id uuid.UUID, email string) error {
	return r.db.WithContext(ctx).Exec("UPDATE "+controlTenants+" SET owner_email = ? WHERE id = ?", email, id).Error
}

// ListActive returns the tenants that are served (and whose jobs run).
func (r *Registry) ListActive(ctx context.Context) ([]Tenant, error) {
	var ts []Tenant
	err := r.db.WithContext(ctx).Raw("SELECT "+tenantColumns+" FROM "+controlTenants+" WHERE status = ? ORDER BY slug", StatusActive).Scan(&ts).Error
	return ts, err
}

// Create registers a tenant on the server with the fewest tenants (Place).
func (r *Registry) Create(ctx context.Context, slug, name string) (Tenant, error) {
	return r.CreateOn(ctx, slug, name, "")
}

// CreateOn registers a tenant on a named server ("" picks one: Place),
// creates and migrates its schema there, runs the provisioners and only
// then marks it active. A failed creation leaves the tenant in
// "provisioning"; calling it again with the same slug resumes it, on the
// server first chosen.
func (r *Registry) CreateOn(ctx context.Context, slug, name, server string) (Tenant, error) {
	schema, err := SchemaName(slug)
	if err != nil {
		return Tenant{}, err
	}
	if name == "" {
		name = slug
	}
	// One creation of a slug at a time, across processes: a concurrent
	// Create waits, then finds the tenant active and gets ErrExists instead of
	// "resuming" a provisioning that is still running.
	unlock, err := r.runner.Lock(ctx, "marquee:tenant:create:"+slug)
	if err != nil {
		return Tenant{}, err
	}
	defer unlock()
	if server == "" {
		if server, err = r.Place(ctx); err != nil {
			return Tenant{}, err
		}
	} else if !slices.Contains(r.runner.Servers(), server) {
		return Tenant{}, fmt.Errorf("%w: %q", ErrUnknownServer, server)
	}
	t := Tenant{ID: uuid.Must(uuid.NewV7()), Slug: slug, Name: name, Schema: schema, Status: StatusProvisioning, Server: server}
	err = r.db.WithContext(ctx).Exec(
		"INSERT INTO "+controlTenants+" (id, slug, name, schema_name, status, server) VALUES (?, ?, ?, ?, ?, ?)",
		t.ID, t.Slug, t.Name, t.Schema, t.Status, t.Server).Error
	if err != nil {
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "23505" {
			return Tenant{}, err
		}
		existing, lerr := r.load(ctx, slug)
		if lerr != nil {
			return Tenant{}, lerr
		}
		if existing.Status != StatusProvisioning {
			return existing, ErrExists
		}
		t = existing // resume an interrupted provisioning
	}
	if _, err := r.runner.SchemaOn(ctx, t.Server, t.Schema); err != nil {
		return t, err
	}
	for _, p := range r.provisioners {
		if err := p(ctx, t); err != nil {
			return t, fmt.Errorf("provision %s: %w", slug, err)
		}
	}
	if err := r.setStatus(ctx, t.Slug, StatusProvisioning, StatusActive, Change{Actor: "system", Reason: "created"}); err != nil {
		return t, err
	}
	t.Status = StatusActive
	return t, nil
}

// ErrUnknownServer is a server name the configuration does not define.
var ErrUnknownServer = errors.New("no such database server is configured")

// Place names the configured server with the fewest tenants (the default
// server on a tie), where a new tenant goes unless one is named.
func (r *Registry) Place(ctx context.Context) (string, error) {
	counts, err := r.ServerCounts(ctx)
	if err != nil {
		return "", err
	}
	best := ""
	for _, n := range r.runner.Servers() { // the default first: it wins ties
		if best == "" || counts[n] < counts[best] {
			best = n
		}
	}
	return best, nil
}

// ServerCounts returns how many tenants each server holds (configured
// servers with none are absent).
func (r *Registry) ServerCounts(ctx context.Context) (map[string]int, error) {
	var rows []struct {
		Server string `gorm:"column:server"`
		N      int    `gorm:"column:n"`
	}
	if err := r.db.WithContext(ctx).Raw("SELECT server, count(*) AS n FROM " + controlTenants + " GROUP BY server").Scan(&rows).Error; err != nil {
		return nil, err
	}
	out := make(map[string]int, len(rows))
	for _, row := range rows {
		out[row.Server] = row.N
	}
	return out, nil
}

// Change says who changed a tenant's status and why (the status history).
type Change struct {
	Actor  string
	Reason string
}

// Suspend stops serving a tenant everywhere at once.
func (r *Registry) Suspend(ctx context.Context, slug string) error {
	return r.SuspendAs(ctx, slug, Change{Actor: "system"})
}

// Resume serves a suspended tenant again.
func (r *Registry) Resume(ctx context.Context, slug string) error {
	return r.ResumeAs(ctx, slug, Change{Actor: "system"})
}

// SuspendAs is Suspend, recording who and why in the status history.
func (r *Registry) SuspendAs(ctx context.Context, slug string, c Change) error {
	return r.setStatus(ctx, slug, StatusActive, StatusSuspended, c)
}

// ResumeAs is Resume, recording who and why in the status history.
func (r *Registry) ResumeAs(ctx context.Context, slug string, c Change) error {
	return r.setStatus(ctx, slug, StatusSuspended, StatusActive, c)
}

// setStatus moves a tenant from one status to another (staying in "to" is
// no change and no error) and announces it to every server.
func (r *Registry) setStatus(ctx context.Context, slug string, from, to Status, c Change) error {
	return r.update(ctx, slug, from, to, "", c)
}

// update changes a tenant's status, and its server when server is not "",
// with a history row in the same transaction, then drops it from every
// server's cache.
func (r *Registry) update(ctx context.Context, slug string, from, to Status, server string, c Change) error {
	return r.change(ctx, slug, from, to, server, c, false)
}

// claim is update for a change only one caller may make: the tenant must be
// in from, not already in to (two moves of one tenant: the second is
// refused instead of taking the first one's "moving" as its own).
func (r *Registry) claim(ctx context.Context, slug string, from, to Status, c Change) error {
	return r.change(ctx, slug, from, to, "", c, true)
}

func (r *Registry) change(ctx context.Context, slug string, from, to Status, server string, c Change, strict bool) error {
	if err := ValidateSlug(slug); err != nil {
		return err
	}
	if c.Actor == "" {
		c.Actor = "system"
	}
	err := r.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var rows []struct {
			ID     uuid.UUID `gorm:"column:id"`
			Status Status    `gorm:"column:status"`
		}
		// The old status is read under the row lock so the history's
		// "from" is the one this change replaced.
		if err := tx.Raw("SELECT id, status FROM "+controlTenants+" WHERE slug = ? FOR UPDATE", slug).Scan(&rows).Error; err != nil {
			return err
		}
		if len(rows) == 0 {
			return ErrNotFound
		}
		cur := rows[0]
		if cur.Status != from && (strict || cur.Status != to) {
			return fmt.Errorf("tenant %s cannot go from %s to %s (it is %s)", slug, from, to, cur.Status)
		}
		q, args := "UPDATE "+controlTenants+" SET status = ?, updated_at = now() WHERE id = ?", []any{to, cur.ID}
		if server != "" {
			q, args = "UPDATE "+controlTenants+" SET status = ?, server = ?, updated_at = now() WHERE id = ?", []any{to, server, cur.ID}
		}
		if err := tx.Exec(q, args...).Error; err != nil {
			return err
		}
		if cur.Status == to && server == "" {
			return nil
		}
		return tx.Exec("INSERT INTO "+controlHistory+" (tenant_id, from_status, to_status, actor, reason) VALUES (?, ?, ?, ?, ?)",
			cur.ID, cur.Status, to, c.Actor, c.Reason).Error
	})
	if err != nil {
		return err
	}
	r.announce(ctx, slug)
	return nil
}

// announce drops a tenant from this process's cache and tells the others.
func (r *Registry) announce(ctx context.Context, slug string) {
	r.forget(slug)
	if err := r.rdb.Publish(ctx, r.changed, slug).Err(); err != nil {
		// Other servers fall back to the cache TTL.
		r.log.Warn("tenant change not broadcast", "tenant", slug, "err", err)
	}
}

// controlHistory is the status history, in the control schema.
const controlHistory = migrations.ControlSchema + ".tenant_status_history"

// StatusEvent is one row of a tenant's status history.
type StatusEvent struct {
	At     time.Time `gorm:"column:at"`
	From   Status    `gorm:"column:from_status"`
	To     Status    `gorm:"column:to_status"`
	Actor  string    `gorm:"column:actor"`
	Reason string    `gorm:"column:reason"`
}

// History returns a tenant's status changes, newest first.
func (r *Registry) History(ctx context.Context, id uuid.UUID, limit int) ([]StatusEvent, error) {
	var out []StatusEvent
	err := r.db.WithContext(ctx).Raw("SELECT at, from_status, to_status, actor, reason FROM "+controlHistory+
		" WHERE tenant_id = ? ORDER BY id DESC LIMIT ?", id, limit).Scan(&out).Error
	return out, err
}

func (r *Registry) forget(slug string) {
	r.mu.Lock()
	delete(r.cache, slug)
	r.gen++
	r.mu.Unlock()
}

// Watch drops cached tenants as their changes are announced, until ctx ends.
// It returns once the subscription is live.
func (r *Registry) Watch(ctx context.Context) error {
	sub := r.rdb.Subscribe(ctx, r.changed)
	if _, err := sub.Receive(ctx); err != nil {
		sub.Close()
		return fmt.Errorf("subscribe %s: %w", r.changed, err)
	}
	go func() {
		defer sub.Close()
		ch := sub.Channel()
		for {
			select {
			case <-ctx.Done():
				return
			case msg, ok := <-ch:
				if !ok {
					return
				}
				r.forget(msg.Payload)
			}
		}
	}()
	return nil
}

// Schemas returns the schema of every tenant with its server, for migrations.
func (r *Registry) Schemas(ctx context.Context) ([]migrations.Placed, error) {
	ts, err := r.List(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]migrations.Placed, 0, len(ts))
	for _, t := range ts {
		if t.Status == StatusDeleted {
			continue // its schema is gone; migrating would create it again
		}
		out = append(out, migrations.Placed{Server: t.Server, Schema: t.Schema})
	}
	return out, nil
}
