// Package tenants is the control plane of the platform: the registry of
// chains, their provisioning, resolution of a request to its tenant, and the
// door to tenant data: Tx (gorm) and PgxTx (pgx), the only ways any tenant
// data is read or written.
package tenants

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Status is the lifecycle state of a tenant.
type Status string

// Tenant states. Only active tenants are served.
const (
	StatusProvisioning Status = "provisioning"
	StatusActive       Status = "active"
	StatusSuspended    Status = "suspended"
	// StatusMoving is a tenant being copied to another database server:
	// it is answered with a maintenance error (retry shortly) until the
	// move ends, on whichever server.
	StatusMoving Status = "moving"
)

// Tenant is one venue chain.
type Tenant struct {
	ID     uuid.UUID `gorm:"column:id"`
	Slug   string    `gorm:"column:slug"`
	Name   string    `gorm:"column:name"`
	Schema string    `gorm:"column:schema_name"`
	Status Status    `gorm:"column:status"`
	// Server names the database server holding the schema (DefaultServer
	// when empty). Only the door reads it, to pick the pool.
	Server string `gorm:"column:server"`
	// OwnerEmail is the first owner's e-mail, for support's search.
	OwnerEmail string    `gorm:"column:owner_email"`
	CreatedAt  time.Time `gorm:"column:created_at"`
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
	ErrMoving      = errors.New("tenant is moving to another database server")
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
