// Package tenants is the control plane of the platform: the registry of
// chains, their provisioning, resolution of a request to its tenant, and Tx,
// the one function through which any tenant data is read or written.
package tenants

import (
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"gorm.io/gorm"
)

// Status is the lifecycle state of a tenant.
type Status string

// Tenant states. Only active tenants are served.
const (
	StatusProvisioning Status = "provisioning"
	StatusActive       Status = "active"
	StatusSuspended    Status = "suspended"
)

// Tenant is one venue chain.
type Tenant struct {
	ID        uuid.UUID `gorm:"column:id"`
	Slug      string    `gorm:"column:slug"`
	Name      string    `gorm:"column:name"`
	Schema    string    `gorm:"column:schema_name"`
	Status    Status    `gorm:"column:status"`
	CreatedAt time.Time `gorm:"column:created_at"`
}

// Domain is the tenant's Casbin domain prefix.
func (t Tenant) Domain() string { return t.Slug }

// Errors of the registry. Callers map them to HTTP in one place.
var (
	ErrInvalidSlug = errors.New("tenant slug must match ^[a-z][a-z0-9-]{1,38}$")
	ErrNotFound    = errors.New("tenant not found")
	ErrSuspended   = errors.New("tenant suspended")
	ErrExists      = errors.New("tenant already exists")
	ErrNotActive   = errors.New("tenant is not active")
)

var slugPattern = regexp.MustCompile(`^[a-z][a-z0-9-]{1,38}$`)

// ValidateSlug checks a slug against the one accepted form.
func ValidateSlug(slug string) error {
	if !slugPattern.MatchString(slug) {
		return ErrInvalidSlug
	}
	return nil
}

// SchemaName derives the schema of a tenant from its validated slug. It is
// the only place a schema name is built, and only from a checked slug.
func SchemaName(slug string) (string, error) {
	if err := ValidateSlug(slug); err != nil {
		return "", err
	}
	return "t_" + strings.ReplaceAll(slug, "-", "_"), nil
}

// Tx runs fn inside one transaction whose search_path is the tenant's schema
// (then public, for extensions). The scope is SET LOCAL: it ends with the
// transaction, so a pooled connection never carries it into another request.
func Tx(ctx context.Context, db *gorm.DB, t Tenant, fn func(tx *gorm.DB) error) error {
	path, err := SearchPath(t)
	if err != nil {
		return err
	}
	return db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec(ScopeSQL, path).Error; err != nil {
			return fmt.Errorf("scope to tenant %s: %w", t.Slug, err)
		}
		return fn(tx)
	})
}

// ScopeSQL scopes the current transaction to a tenant; its one parameter is
// SearchPath's value. Code that runs its own transactions (not through Tx)
// sends it right after BEGIN.
const ScopeSQL = "SELECT set_config('search_path', ?, true)"

// SearchPath is a tenant's search_path: its schema, then public.
func SearchPath(t Tenant) (string, error) {
	// The schema is derived from the checked slug, never trusted as given.
	schema, err := SchemaName(t.Slug)
	if err != nil {
		return "", err
	}
	if t.Schema != schema {
		return "", fmt.Errorf("tenants: tenant %q does not carry its own schema", t.Slug)
	}
	return pgx.Identifier{schema}.Sanitize() + ", public", nil
}

// SlugFromRequest resolves the tenant slug of a request: the subdomain of the
// base domain in host, or else the X-Tenant header value. It returns "" when
// the request addresses the base host itself (console, platform API).
func SlugFromRequest(host, header, baseDomain string) (string, error) {
	h := strings.ToLower(host)
	if hp, _, err := net.SplitHostPort(h); err == nil {
		h = hp
	}
	// "acme.localhost." is the same DNS name as "acme.localhost".
	h = strings.TrimSuffix(h, ".")
	base := strings.TrimSuffix(strings.ToLower(baseDomain), ".")
	var fromHost string
	if h != base && strings.HasSuffix(h, "."+base) {
		fromHost = strings.TrimSuffix(h, "."+base)
		if err := ValidateSlug(fromHost); err != nil {
			return "", err
		}
	}
	header = strings.TrimSpace(header)
	switch {
	case fromHost != "" && header != "" && header != fromHost:
		return "", fmt.Errorf("X-Tenant %q does not match host tenant %q", header, fromHost)
	case fromHost != "":
		return fromHost, nil
	case header != "":
		if err := ValidateSlug(header); err != nil {
			return "", err
		}
		return header, nil
	}
	return "", nil
}
