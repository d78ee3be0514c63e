// Package migrations holds the versioned SQL of the control schema and of
// every tenant schema, embedded in the binary, and the runner that applies
// them schema by schema.
package migrations

import (
	"cmp"
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed control/*.sql tenant/*.sql
var files embed.FS

// Contract steps written but not applied yet (see README.md): the release
// after the one that shipped their expand step moves them into control/ or
// tenant/. Nothing in the binary applies them; tests do, to show the code of
// this release keeps working once they run.
//
//go:embed contract/control/*.sql contract/tenant/*.sql
var contractFiles embed.FS

// ContractControlFS and ContractTenantFS return the pending contract steps.
func ContractControlFS() fs.FS { return mustSubOf(contractFiles, "contract/control") }

// ContractTenantFS returns the pending contract steps of tenant schemas.
func ContractTenantFS() fs.FS { return mustSubOf(contractFiles, "contract/tenant") }

func mustSubOf(fsys fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(fsys, dir)
	if err != nil {
		panic(err)
	}
	return sub
}

// ControlSchema is the schema of the tenant registry and platform records.
const ControlSchema = "control"

// ControlFS returns the control-plane migrations.
func ControlFS() fs.FS { return mustSub("control") }

// TenantFS returns the migrations applied to every tenant schema.
func TenantFS() fs.FS { return mustSub("tenant") }

func mustSub(dir string) fs.FS {
	sub, err := fs.Sub(files, dir)
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	return sub
}

// Runner applies migrations to one schema at a time. Each schema keeps its
// own goose version table, so a failure in one tenant leaves the others as
// they are and a rerun resumes exactly where that tenant stopped.
//
// Tenant schemas may live on several PostgreSQL servers (AddServer); the
// control schema lives on the default one, the server of the URL NewRunner
// was given.
type Runner struct {
	base     *pgx.ConnConfig
	servers  map[string]*pgx.ConnConfig
	control  fs.FS
	tenant   fs.FS
	parallel int

	mu       sync.Mutex
	prepared map[string]bool // servers whose platform extensions exist
}

// DefaultServer names the server of the URL NewRunner was given.
const DefaultServer = "default"

// Placed is a tenant schema and the server it lives on.
type Placed struct {
	Server string
	Schema string
}

// NewRunner parses the database URL once; control and tenant are the
// migration trees (ControlFS and TenantFS in production, others in tests).
func NewRunner(databaseURL string, control, tenant fs.FS, parallel int) (*Runner, error) {
	cfg, err := pgx.ParseConfig(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	if parallel < 1 {
		parallel = 1
	}
	return &Runner{base: cfg, servers: map[string]*pgx.ConnConfig{DefaultServer: cfg}, control: control, tenant: tenant,
		parallel: parallel, prepared: map[string]bool{DefaultServer: true}}, nil
}

// AddServer makes another server, by name, a place for tenant schemas.
func (r *Runner) AddServer(name, databaseURL string) error {
	cfg, err := pgx.ParseConfig(databaseURL)
	if err != nil {
		return fmt.Errorf("parse database url of server %s: %w", name, err)
	}
	if r.servers[name] != nil {
		return fmt.Errorf("server %s added twice", name)
	}
	r.servers[name] = cfg
	return nil
}

// Servers lists the servers' names, DefaultServer first.
func (r *Runner) Servers() []string {
	out := []string{DefaultServer}
	for n := range r.servers {
		if n != DefaultServer {
			out = append(out, n)
		}
	}
	slices.Sort(out[1:])
	return out
}

func (r *Runner) server(name string) (*pgx.ConnConfig, error) {
	if name == "" {
		name = DefaultServer
	}
	cfg := r.servers[name]
	if cfg == nil {
		return nil, fmt.Errorf("no database server %q is configured", name)
	}
	return cfg, nil
}

// Result is the outcome for one schema.
type Result struct {
	Schema   string
	Applied  int
	Duration time.Duration
	Err      error
}

// Control creates the control schema if needed and brings it up to date.
func (r *Runner) Control(ctx context.Context) (Result, error) {
	res := r.apply(ctx, r.base, ControlSchema, r.control)
	return res, res.Err
}

// Schema creates one tenant schema if needed and brings it up to date.
// schema must already be a validated schema name (tenants.SchemaName).
func (r *Runner) Schema(ctx context.Context, schema string) (Result, error) {
	return r.SchemaOn(ctx, DefaultServer, schema)
}

// SchemaOn is Schema on a named server.
func (r *Runner) SchemaOn(ctx context.Context, server, schema string) (Result, error) {
	cfg, err := r.server(server)
	if err != nil {
		return Result{Schema: schema, Err: err}, err
	}
	if err := r.prepare(ctx, server, cfg); err != nil {
		return Result{Schema: schema, Err: err}, err
	}
	res := r.apply(ctx, cfg, schema, r.tenant)
	return res, res.Err
}

// PrepareServer creates on a server what tenant schemas need outside
// themselves (the extensions in public), as the control migration does on
// the default server. Copying a schema there needs it first.
func (r *Runner) PrepareServer(ctx context.Context, server string) error {
	cfg, err := r.server(server)
	if err != nil {
		return err
	}
	return r.prepare(ctx, server, cfg)
}

// prepare creates on a server other than the default what the control
// migration creates there for tenant schemas: the extensions in public.
func (r *Runner) prepare(ctx context.Context, name string, cfg *pgx.ConnConfig) error {
	r.mu.Lock()
	done := r.prepared[name]
	r.mu.Unlock()
	if done {
		return nil
	}
	db := stdlib.OpenDB(*cfg.Copy())
	defer db.Close()
	_, err := db.ExecContext(ctx, "CREATE EXTENSION IF NOT EXISTS btree_gist WITH SCHEMA public")
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" { // created meanwhile by another session
		err = nil
	}
	if err == nil {
		// The search's extensions, folding function and text search
		// configuration: the Up part of their control migration, which is
		// written to be run again (IF NOT EXISTS, OR REPLACE).
		var up string
		if up, err = upSection(ControlFS(), serverPrelude); err == nil {
			_, err = db.ExecContext(ctx, up)
			if errors.As(err, &pgErr) && pgErr.Code == "23505" {
				err = nil
			}
		}
	}
	if err != nil {
		return fmt.Errorf("prepare server %s: %w", name, err)
	}
	r.mu.Lock()
	r.prepared[name] = true
	r.mu.Unlock()
	return nil
}

// Progress is called after each tenant schema, from one goroutine at a time.
type Progress func(done, total int, res Result)

// All applies the tenant migrations to every given schema with bounded
// parallelism, under a database-wide advisory lock so that two processes
// never roll migrations at the same time. It goes on past a failing schema
// and returns the joined errors; rerunning resumes the failed ones.
func (r *Runner) All(ctx context.Context, schemas []string, progress Progress) error {
	placed := make([]Placed, len(schemas))
	for i, s := range schemas {
		placed[i] = Placed{Server: DefaultServer, Schema: s}
	}
	return r.AllPlaced(ctx, placed, progress)
}

// AllPlaced is All over schemas on several servers, with the advisory lock
// of every server involved (taken in name order, so two runs never hold one
// each while waiting for the other).
func (r *Runner) AllPlaced(ctx context.Context, schemas []Placed, progress Progress) error {
	servers := map[string]*pgx.ConnConfig{DefaultServer: r.base}
	for _, p := range schemas {
		cfg, err := r.server(p.Server)
		if err != nil {
			return fmt.Errorf("schema %s: %w", p.Schema, err)
		}
		servers[cmp.Or(p.Server, DefaultServer)] = cfg
	}
	names := make([]string, 0, len(servers))
	for n := range servers {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		unlock, err := r.LockOn(ctx, n, "marquee:migrate:all")
		if err != nil {
			return err
		}
		defer unlock()
		if err := r.prepare(ctx, n, servers[n]); err != nil {
			return err
		}
	}

	var (
		mu   sync.Mutex
		done int
		errs []error
		wg   sync.WaitGroup
		next = make(chan Placed)
	)
	for range min(r.parallel, max(len(schemas), 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range next {
				res := r.apply(ctx, servers[cmp.Or(p.Server, DefaultServer)], p.Schema, r.tenant)
				mu.Lock()
				done++
				if res.Err != nil {
					errs = append(errs, res.Err)
				}
				if progress != nil {
					progress(done, len(schemas), res)
				}
				mu.Unlock()
			}
		}()
	}
	for _, s := range schemas {
		select {
		case next <- s:
		case <-ctx.Done():
		}
	}
	close(next)
	wg.Wait()
	if ctx.Err() != nil {
		errs = append(errs, ctx.Err())
	}
	return errors.Join(errs...)
}

// Lock takes the session advisory lock of name on a connection of its own
// (outside any application pool), waiting for its holder in any process to
// let go; call the returned function to release it. A crashed holder's lock
// is released with its connection. It serialises whole migration runs
// ("marquee:migrate:all") and tenant provisioning.
func (r *Runner) Lock(ctx context.Context, name string) (func(), error) {
	return r.LockOn(ctx, DefaultServer, name)
}

// LockOn is Lock on a named server.
func (r *Runner) LockOn(ctx context.Context, server, name string) (func(), error) {
	cfg, err := r.server(server)
	if err != nil {
		return nil, err
	}
	db := stdlib.OpenDB(*cfg.Copy())
	conn, err := db.Conn(ctx)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("lock %s: %w", name, err)
	}
	id := lockID(name)
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1)", id); err != nil {
		conn.Close()
		db.Close()
		return nil, fmt.Errorf("lock %s: %w", name, err)
	}
	return func() {
		_, _ = conn.ExecContext(context.Background(), "SELECT pg_advisory_unlock($1)", id)
		conn.Close()
		db.Close()
	}, nil
}

func (r *Runner) apply(ctx context.Context, base *pgx.ConnConfig, schema string, migrations fs.FS) Result {
	start := time.Now()
	res := Result{Schema: schema}
	fail := func(err error) Result {
		res.Err = fmt.Errorf("migrate schema %s: %w", schema, err)
		res.Duration = time.Since(start)
		return res
	}
	quoted := pgx.Identifier{schema}.Sanitize()
	cfg := base.Copy()
	cfg.RuntimeParams["search_path"] = quoted + ", public"
	db := stdlib.OpenDB(*cfg)
	defer db.Close()
	db.SetMaxOpenConns(2)

	if err := createSchema(ctx, db, quoted); err != nil {
		return fail(err)
	}
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(lockID("marquee:migrate:" + schema)))
	if err != nil {
		return fail(err)
	}
	provider, err := goose.NewProvider(goose.DialectPostgres, db, migrations,
		goose.WithTableName(schema+".goose_db_version"),
		goose.WithSessionLocker(locker),
		goose.WithDisableGlobalRegistry(true),
		goose.WithLogger(goose.NopLogger()),
	)
	if err != nil {
		return fail(err)
	}
	results, err := provider.Up(ctx)
	res.Applied = len(results)
	if err != nil {
		var partial *goose.PartialError
		if errors.As(err, &partial) {
			res.Applied = len(partial.Applied)
		}
		return fail(err)
	}
	res.Duration = time.Since(start)
	return res
}

// createSchema runs CREATE SCHEMA IF NOT EXISTS, which is not safe against
// itself: of two sessions creating the same schema at once, the loser fails
// on pg_namespace's unique index (23505) once the winner commits. Then the
// schema exists, which is all that was asked.
func createSchema(ctx context.Context, db *sql.DB, quoted string) error {
	_, err := db.ExecContext(ctx, "CREATE SCHEMA IF NOT EXISTS "+quoted)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		_, err = db.ExecContext(ctx, "CREATE SCHEMA IF NOT EXISTS "+quoted)
	}
	return err
}

func lockID(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return int64(h.Sum64() & 0x7fffffffffffffff)
}

// Latest is the highest version of the tenant migrations this binary holds.
func (r *Runner) Latest() (int64, error) {
	names, err := fs.Glob(r.tenant, "*.sql")
	if err != nil {
		return 0, err
	}
	var latest int64
	for _, n := range names {
		num, _, _ := strings.Cut(n, "_")
		v, err := strconv.ParseInt(num, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("migration %s: no version number", n)
		}
		latest = max(latest, v)
	}
	return latest, nil
}

// Version reports the applied version of a schema (0 if none).
func (r *Runner) Version(ctx context.Context, db *sql.DB, schema string) (int64, error) {
	var v sql.NullInt64
	err := db.QueryRowContext(ctx,
		fmt.Sprintf("SELECT max(version_id) FROM %s.goose_db_version WHERE is_applied", pgx.Identifier{schema}.Sanitize())).Scan(&v)
	return v.Int64, err
}

// serverPrelude is the control migration whose Up part every database
// server holding tenant schemas needs in its public schema too.
const serverPrelude = "00170_search_extensions.sql"

// upSection returns a migration file's statements between "-- +goose Up"
// and "-- +goose Down", without goose's annotations (one multi-statement
// string, run over the simple protocol).
func upSection(fsys fs.FS, name string) (string, error) {
	raw, err := fs.ReadFile(fsys, name)
	if err != nil {
		return "", err
	}
	text := string(raw)
	if i := strings.Index(text, "-- +goose Up"); i >= 0 {
		text = text[i:]
	}
	if i := strings.Index(text, "-- +goose Down"); i >= 0 {
		text = text[:i]
	}
	var b strings.Builder
	for _, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "-- +goose") {
			b.WriteString(line + "\n")
		}
	}
	return b.String(), nil
}
