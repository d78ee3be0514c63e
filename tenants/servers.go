package tenants

import (
	"context"
	"database/sql"
	"fmt"
	"sort"

	"github.com/jackc/pgx/v5"
	"gorm.io/gorm"

	"marquee/config"
)

// DefaultServer is the server of MARQUEE_DATABASE_URL: the control plane's,
// and the one a tenant placed before placement existed lives on.
const DefaultServer = config.DefaultServer

// Server is one PostgreSQL server tenant schemas are placed on, with the
// one pool every tenant placed there shares (never a pool per tenant).
type Server struct {
	Name string
	URL  string
	SQL  *sql.DB
	DB   *gorm.DB
}

// Servers are the configured tenant servers by name. The door (Tx, TxWith,
// PgxTx) picks the pool of the tenant's server from them, so callers never
// name a server and a tenant's work can only reach the server the registry
// placed it on.
type Servers struct {
	byName map[string]*Server
}

// NewServers groups the servers; one of them must be DefaultServer.
func NewServers(list ...*Server) (*Servers, error) {
	s := &Servers{byName: map[string]*Server{}}
	for _, sv := range list {
		if !config.ServerPattern.MatchString(sv.Name) {
			return nil, fmt.Errorf("tenants: server name %q must match %s", sv.Name, config.ServerPattern)
		}
		if s.byName[sv.Name] != nil {
			return nil, fmt.Errorf("tenants: server %q twice", sv.Name)
		}
		s.byName[sv.Name] = sv
	}
	if s.byName[DefaultServer] == nil {
		return nil, fmt.Errorf("tenants: no %q server", DefaultServer)
	}
	return s, nil
}

// Get returns a server by name ("" is DefaultServer).
func (s *Servers) Get(name string) (*Server, error) {
	if name == "" {
		name = DefaultServer
	}
	sv := s.byName[name]
	if sv == nil {
		return nil, fmt.Errorf("tenants: no database server %q is configured (MARQUEE_DATABASE_SERVERS)", name)
	}
	return sv, nil
}

// Default is the control plane's server.
func (s *Servers) Default() *Server { return s.byName[DefaultServer] }

// Names lists the servers, DefaultServer first, then by name.
func (s *Servers) Names() []string {
	out := make([]string, 0, len(s.byName))
	for n := range s.byName {
		if n != DefaultServer {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return append([]string{DefaultServer}, out...)
}

// For returns the server a tenant is placed on.
func (s *Servers) For(t Tenant) (*Server, error) {
	sv, err := s.Get(t.Server)
	if err != nil {
		return nil, fmt.Errorf("tenant %s: %w", t.Slug, err)
	}
	return sv, nil
}

// Tx runs fn in one gorm transaction in t's scope on t's server (Tx).
func (s *Servers) Tx(ctx context.Context, t Tenant, fn func(tx *gorm.DB) error) error {
	return s.TxWith(ctx, t, TxOptions{}, fn)
}

// TxWith is Tx with options (TxWith).
func (s *Servers) TxWith(ctx context.Context, t Tenant, o TxOptions, fn func(tx *gorm.DB) error) error {
	sv, err := s.For(t)
	if err != nil {
		return err
	}
	return TxWith(ctx, sv.DB, t, o, fn)
}

// PgxTx runs fn in one pgx transaction in t's scope on t's server (PgxTx).
func (s *Servers) PgxTx(ctx context.Context, t Tenant, o TxOptions, fn func(tx *Pgx) error) error {
	sv, err := s.For(t)
	if err != nil {
		return err
	}
	return PgxTx(ctx, sv.SQL, t, o, fn)
}

// PipedTx runs fn in one piped transaction in t's scope on t's server
// (PipedTx).
func (s *Servers) PipedTx(ctx context.Context, t Tenant, o TxOptions, fn func(p *Piped) error) error {
	sv, err := s.For(t)
	if err != nil {
		return err
	}
	return PipedTx(ctx, sv.SQL, t, o, fn)
}

// PgxStatement is PgxStatement on the pool of t's server.
func (s *Servers) PgxStatement(ctx context.Context, t Tenant, o TxOptions, q string, args []any, scan func(pgx.Rows) error) error {
	sv, err := s.For(t)
	if err != nil {
		return err
	}
	return PgxStatement(ctx, sv.SQL, t, o, q, args, scan)
}

// Close closes every pool but the default one, which its opener owns.
func (s *Servers) Close() {
	for n, sv := range s.byName {
		if n != DefaultServer && sv.SQL != nil {
			_ = sv.SQL.Close()
		}
	}
}
