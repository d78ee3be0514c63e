package tenants

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
	rdb          *redis.Client
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
func NewRegistry(db *gorm.DB, rdb *redis.Client, deployment string, runner *migrations.Runner, log *slog.Logger) *Registry {
	return &Registry{db: db, rdb: rdb, runner: runner, log: log, changed: deployment + ":" + changedChannel, cache: map[string]cached{}}
}

// OnProvision adds a step run for every new tenant before it becomes active.
func (r *Registry) OnProvision(p Provisioner) { r.provisioners = append(r.provisioners, p) }

const tenantColumns = "id, slug, name, schema_name, status, created_at"

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

// ListActive returns the tenants that are served (and whose jobs run).
func (r *Registry) ListActive(ctx context.Context) ([]Tenant, error) {
	var ts []Tenant
	err := r.db.WithContext(ctx).Raw("SELECT "+tenantColumns+" FROM "+controlTenants+" WHERE status = ? ORDER BY slug", StatusActive).Scan(&ts).Error
	return ts, err
}

// Create registers a tenant, creates and migrates its schema, runs the
// provisioners and only then marks it active. A failed creation leaves the
// tenant in "provisioning"; calling Create again with the same slug resumes it.
func (r *Registry) Create(ctx context.Context, slug, name string) (Tenant, error) {
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
	t := Tenant{ID: uuid.Must(uuid.NewV7()), Slug: slug, Name: name, Schema: schema, Status: StatusProvisioning}
	err = r.db.WithContext(ctx).Exec(
		"INSERT INTO "+controlTenants+" (id, slug, name, schema_name, status) VALUES (?, ?, ?, ?, ?)",
		t.ID, t.Slug, t.Name, t.Schema, t.Status).Error
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
	if _, err := r.runner.Schema(ctx, t.Schema); err != nil {
		return t, err
	}
	for _, p := range r.provisioners {
		if err := p(ctx, t); err != nil {
			return t, fmt.Errorf("provision %s: %w", slug, err)
		}
	}
	if err := r.setStatus(ctx, t.Slug, StatusProvisioning, StatusActive); err != nil {
		return t, err
	}
	t.Status = StatusActive
	return t, nil
}

// Suspend stops serving a tenant everywhere at once.
func (r *Registry) Suspend(ctx context.Context, slug string) error {
	return r.setStatus(ctx, slug, StatusActive, StatusSuspended)
}

// Resume serves a suspended tenant again.
func (r *Registry) Resume(ctx context.Context, slug string) error {
	return r.setStatus(ctx, slug, StatusSuspended, StatusActive)
}

func (r *Registry) setStatus(ctx context.Context, slug string, from, to Status) error {
	if err := ValidateSlug(slug); err != nil {
		return err
	}
	res := r.db.WithContext(ctx).Exec(
		"UPDATE "+controlTenants+" SET status = ?, updated_at = now() WHERE slug = ? AND status IN (?, ?)", to, slug, from, to)
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected == 0 {
		if _, err := r.load(ctx, slug); err != nil {
			return err
		}
		return fmt.Errorf("tenant %s cannot go from %s to %s", slug, from, to)
	}
	r.forget(slug)
	if err := r.rdb.Publish(ctx, r.changed, slug).Err(); err != nil {
		// Other servers fall back to the cache TTL.
		r.log.Warn("tenant change not broadcast", "tenant", slug, "err", err)
	}
	return nil
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

// Schemas returns the schema of every tenant, for migrations.
func (r *Registry) Schemas(ctx context.Context) ([]string, error) {
	ts, err := r.List(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.Schema
	}
	return out, nil
}
