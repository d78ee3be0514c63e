package tenants

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"gorm.io/gorm"
)

// TxOptions tune a tenant transaction; the zero value is a read-write
// transaction run once.
type TxOptions struct {
	// ReadOnly opens the transaction READ ONLY: PostgreSQL refuses any write.
	ReadOnly bool
	// Retry runs the transaction again, whole, while PostgreSQL aborts it as
	// a deadlock or serialization victim (up to maxAttempts in all). Only
	// for work with no effects outside the transaction.
	Retry bool
	// OnRetry, if set, is told of each attempt that is about to be rerun
	// (1 for the first), so the caller can log or count it.
	OnRetry func(attempt int, err error)
	// GenericPlan (PgxStatement only) runs the statement on its generic
	// plan, made once per connection and tenant, instead of planning it for
	// each call's values (the pool's force_custom_plan). For a statement
	// whose every lookup is an equality on a unique key, whatever its
	// values: planning the door's scan cost more than running it.
	GenericPlan bool
}

// maxAttempts bounds a retried transaction: a victim chosen four times in a
// row is under contention a rerun will not outlast.
const maxAttempts = 4

// Retryable reports whether err is PostgreSQL aborting a transaction as a
// deadlock (40P01) or serialization (40001) victim, or a stale cached plan
// (0A000): running it again may succeed.
func Retryable(err error) bool {
	var pe *pgconn.PgError
	// 0A000 is also "cached plan must not change result type": while a
	// migration rolls across tenant schemas, a statement cached on this
	// connection for another shape fails once; pgx drops it, and the next
	// attempt prepares it afresh.
	return errors.As(err, &pe) && (pe.Code == "40P01" || pe.Code == "40001" || pe.Code == "0A000")
}

func (o TxOptions) run(once func() error) error {
	for attempt := 1; ; attempt++ {
		err := once()
		if !o.Retry || attempt == maxAttempts || !Retryable(err) {
			return err
		}
		if o.OnRetry != nil {
			o.OnRetry(attempt, err)
		}
	}
}

// Tx runs fn inside one gorm transaction whose search_path is the tenant's
// schema (then public, for extensions), once and read-write.
func Tx(ctx context.Context, db *gorm.DB, t Tenant, fn func(tx *gorm.DB) error) error {
	return TxWith(ctx, db, t, TxOptions{}, fn)
}

// TxWith is Tx with options. The scope is SET LOCAL: it ends with the
// transaction, so a pooled connection never carries it into another request.
func TxWith(ctx context.Context, db *gorm.DB, t Tenant, o TxOptions, fn func(tx *gorm.DB) error) error {
	path, schema, err := searchPath(t)
	if err != nil {
		return err
	}
	var txo *sql.TxOptions
	if o.ReadOnly {
		txo = &sql.TxOptions{ReadOnly: true} // BEGIN READ ONLY: no extra round trip
	}
	ctx = context.WithValue(ctx, txTenantKey{}, t)
	return o.run(func() error {
		return db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			if err := tx.Exec(scopeSQL, path, schema).Error; err != nil {
				return fmt.Errorf("scope to tenant %s: %w", t.Slug, err)
			}
			return fn(tx)
		}, txo)
	})
}

type txTenantKey struct{}

// TenantOfTx is the tenant a gorm transaction opened by TxWith is scoped to.
func TenantOfTx(tx *gorm.DB) (Tenant, bool) {
	if tx == nil || tx.Statement == nil || tx.Statement.Context == nil {
		return Tenant{}, false
	}
	t, ok := tx.Statement.Context.Value(txTenantKey{}).(Tenant)
	return t, ok
}

// scopeSQL scopes the current transaction to a tenant; its parameters are
// searchPath's values. The cast to regnamespace fails the transaction at once
// when the schema is not on this server: a tenant whose work reached the
// wrong server (or the source of a finished move, whose schema was renamed)
// gets an error, never an empty or foreign answer. It costs no round trip.
const scopeSQL = "SELECT set_config('search_path', ?, true), ?::regnamespace"

// searchPath is a tenant's search_path (its schema, then public) and its
// quoted schema.
func searchPath(t Tenant) (path, schema string, err error) {
	// The schema is derived from the checked slug, never trusted as given.
	name, err := SchemaName(t.Slug)
	if err != nil {
		return "", "", err
	}
	if t.Schema != name {
		return "", "", fmt.Errorf("tenants: tenant %q does not carry its own schema", t.Slug)
	}
	quoted := pgx.Identifier{name}.Sanitize()
	return quoted + ", public", quoted, nil
}

// Pgx is a tenant transaction on a pgx connection of the pool, for hot paths
// where gorm's per-statement work shows. BEGIN travels with the tenant
// scoping in one round trip (sent with the first statement), and statements
// are prepared once per connection (pgx cache_statement) rather than parsed
// on every transaction. PostgreSQL parses a prepared statement again when
// the connection's search_path (its tenant) differs from its last use, so a
// statement never reads another tenant's tables. Prepared plans follow the
// pool's plan_cache_mode (force_custom_plan, set where the pool is opened),
// so each execution is planned for its actual values.
type Pgx struct {
	ctx   context.Context
	c     *pgx.Conn
	begin string
	begun bool
}

// PgxTx runs fn in one pgx transaction scoped to t, on a connection of db.
func PgxTx(ctx context.Context, db *sql.DB, t Tenant, o TxOptions, fn func(tx *Pgx) error) error {
	path, schema, err := searchPath(t)
	if err != nil {
		return err
	}
	// Simple protocol, so the path is a literal; it is built from a
	// validated slug and quoted as a string besides.
	begin := "BEGIN"
	if o.ReadOnly {
		begin = "BEGIN READ ONLY"
	}
	literal := func(v string) string { return "'" + strings.ReplaceAll(v, "'", "''") + "'" }
	begin += "; " + strings.Replace(strings.Replace(scopeSQL, "?", literal(path), 1), "?", literal(schema), 1)
	return o.run(func() error { return pgxTxOnce(ctx, db, begin, fn) })
}

// withPgxConn lends fn one of the pool's connections as the pgx connection
// under it. A connection handed back inside a transaction (an error between
// BEGIN and COMMIT that ROLLBACK did not reach) is discarded by the driver.
func withPgxConn(ctx context.Context, db *sql.DB, fn func(c *pgx.Conn) error) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error { return fn(dc.(*stdlib.Conn).Conn()) })
}

func pgxTxOnce(ctx context.Context, db *sql.DB, begin string, fn func(tx *Pgx) error) error {
	return withPgxConn(ctx, db, func(c *pgx.Conn) error {
		tx := &Pgx{ctx: ctx, c: c, begin: begin}
		err := fn(tx)
		if !tx.begun {
			return err
		}
		if err != nil {
			_, _ = tx.c.Exec(ctx, "ROLLBACK")
			return err
		}
		_, err = tx.c.Exec(ctx, "COMMIT")
		return err
	})
}

// open sends BEGIN and the scope before the transaction's first statement.
func (tx *Pgx) open() error {
	if tx.begun {
		return nil
	}
	if _, err := tx.c.Exec(tx.ctx, tx.begin); err != nil {
		return err
	}
	tx.begun = true
	return nil
}

// Query runs a statement in the transaction ($1, $2, … placeholders).
func (tx *Pgx) Query(q string, args ...any) (pgx.Rows, error) {
	if err := tx.open(); err != nil {
		return nil, err
	}
	return tx.c.Query(tx.ctx, q, append([]any{pgx.QueryExecModeCacheStatement}, args...)...)
}

// QueryRow runs a statement that returns at most one row.
func (tx *Pgx) QueryRow(q string, args ...any) pgx.Row {
	if err := tx.open(); err != nil {
		return errRow{err}
	}
	return tx.c.QueryRow(tx.ctx, q, append([]any{pgx.QueryExecModeCacheStatement}, args...)...)
}

// Exec runs a statement that returns no rows.
func (tx *Pgx) Exec(q string, args ...any) (pgconn.CommandTag, error) {
	if err := tx.open(); err != nil {
		return pgconn.CommandTag{}, err
	}
	return tx.c.Exec(tx.ctx, q, append([]any{pgx.QueryExecModeCacheStatement}, args...)...)
}

// errRow is a row whose statement never ran.
type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// PgxStatement runs one statement in t's scope in one round trip: the scope
// and the statement go in one pipeline ending in a single Sync, so
// PostgreSQL runs them as one implicit transaction that commits at the Sync,
// and an error (one the statement raises included) rolls both back. Both are
// named statements prepared once per connection (preparedOn), so a call
// sends only their names and arguments, and PostgreSQL neither parses nor
// analyses them again while the connection serves the same tenant; scan
// reads the statement's result. For a hot path whose whole transaction is a
// single statement: PgxTx costs three round trips (BEGIN and scope, the
// statement, COMMIT).
//
// A prepared statement resolves its names when it is analysed, and
// PostgreSQL analyses it again whenever the search_path it runs under
// differs from the last one (plancache.c), so on a connection that served
// another tenant it reads this tenant's tables, never the other's.
func PgxStatement(ctx context.Context, db *sql.DB, t Tenant, o TxOptions, q string, args []any, scan func(pgx.Rows) error) error {
	path, schema, err := searchPath(t)
	if err != nil {
		return err
	}
	return o.run(func() error {
		return withPgxConn(ctx, db, func(c *pgx.Conn) error {
			q, args := q, args
			if len(args) > 0 {
				if named, ok := args[0].(pgx.NamedArgs); ok {
					q, args = rewriteNamed(c, q, named)
				} else if rw, ok := args[0].(pgx.QueryRewriter); ok {
					var err error
					if q, args, err = rw.RewriteQuery(ctx, c, q, args[1:]); err != nil {
						return err
					}
				}
			}
			err := statementOnce(ctx, c, path, schema, o.GenericPlan, q, args, scan)
			if stalePrepared(err) {
				// Deallocated behind our back (DEALLOCATE ALL, DISCARD) or
				// analysed under a tenant whose tables differ in shape (a
				// migration rolling across schemas): forget both statements
				// and prepare them afresh.
				forgetPrepared(ctx, c, q)
				err = statementOnce(ctx, c, path, schema, o.GenericPlan, q, args, scan)
			}
			return err
		})
	})
}

func statementOnce(ctx context.Context, c *pgx.Conn, path, schema string, generic bool, q string, args []any, scan func(pgx.Rows) error) error {
	scope, stmt, err := preparedOn(ctx, c, path, schema, q)
	if err != nil {
		return err
	}
	var eqb pgx.ExtendedQueryBuilder
	b := &pgconn.Batch{}
	if err := eqb.Build(c.TypeMap(), scope, []any{path, schema, generic}); err != nil {
		return err
	}
	b.ExecStatement(scope, eqb.ParamValues, eqb.ParamFormats, eqb.ResultFormats)
	if err := eqb.Build(c.TypeMap(), stmt, args); err != nil {
		return err
	}
	b.ExecStatement(stmt, eqb.ParamValues, eqb.ParamFormats, eqb.ResultFormats)
	mrr := c.PgConn().ExecBatch(ctx, b)
	defer mrr.Close()
	if !mrr.NextResult() {
		return mrr.Close()
	}
	if _, err := mrr.ResultReader().Close(); err != nil {
		_ = mrr.Close()
		return err
	}
	if !mrr.NextResult() {
		return mrr.Close()
	}
	rows := pgx.RowsFromResultReader(c.TypeMap(), mrr.ResultReader())
	err = scan(rows)
	rows.Close()
	if err == nil {
		err = rows.Err()
	}
	if cerr := mrr.Close(); err == nil {
		err = cerr
	}
	return err
}

// statementScopeSQL is scopeSQL for PgxStatement's pipeline ($n parameters).
// Its third parameter asks for a generic plan of the statement that follows
// (TxOptions.GenericPlan), for this implicit transaction only.
const statementScopeSQL = "SELECT set_config('search_path', $1::text, true), $2::text::regnamespace, " +
	"set_config('plan_cache_mode', CASE WHEN $3::boolean THEN 'force_generic_plan' ELSE current_setting('plan_cache_mode') END, true)"

// preparedKey is where a connection keeps the statements PgxStatement
// prepared on it (pgconn's CustomData lives and dies with the connection).
const preparedKey = "marquee.tenants.prepared"

// preparedOn returns the scope statement and q, both prepared on c. The
// first call on a connection prepares them in one extra round trip: the
// scope statement under the connection's default path, then the scope
// itself run, then q (analysed in t's schema, where its names resolve; the
// Sync ends the implicit transaction and the scope with it).
func preparedOn(ctx context.Context, c *pgx.Conn, path, schema, q string) (scope, stmt *pgconn.StatementDescription, err error) {
	scope, stmts, err := preparedAll(ctx, c, path, schema, []string{q})
	if err != nil {
		return nil, nil, err
	}
	return scope, stmts[0], nil
}

// preparedAll is preparedOn for several statements, all prepared (those
// not yet) in the same one extra round trip. Inside an open transaction
// (PipedTx) the scope it runs is that transaction's own already.
func preparedAll(ctx context.Context, c *pgx.Conn, path, schema string, qs []string) (scope *pgconn.StatementDescription, stmts []*pgconn.StatementDescription, err error) {
	cache, _ := c.PgConn().CustomData()[preparedKey].(map[string]*pgconn.StatementDescription)
	if cache == nil {
		cache = map[string]*pgconn.StatementDescription{}
		c.PgConn().CustomData()[preparedKey] = cache
	}
	scope = cache[statementScopeSQL]
	var missing []string
	for _, q := range qs {
		if cache[q] == nil && !slices.Contains(missing, q) {
			missing = append(missing, q)
		}
	}
	if scope != nil && len(missing) == 0 {
		return scope, statementsOf(cache, qs), nil
	}
	p := c.PgConn().StartPipeline(ctx)
	if scope == nil {
		p.SendPrepare(statementName(statementScopeSQL), statementScopeSQL, nil)
	}
	p.SendQueryParams(statementScopeSQL, [][]byte{[]byte(path), []byte(schema), []byte("false")}, nil, nil, nil)
	for _, q := range missing {
		p.SendPrepare(statementName(q), q, nil)
	}
	if err := p.Sync(); err != nil {
		_ = p.Close()
		return nil, nil, err
	}
	var firstErr error
	synced := false
	next := 0
	for !synced && firstErr == nil {
		res, err := p.GetResults()
		if err != nil {
			firstErr = err // Close reads what is left up to the Sync
			break
		}
		switch r := res.(type) {
		case *pgconn.StatementDescription:
			// Descriptions come in the order sent; pgconn leaves their
			// name and text to the caller. Each is kept as soon as it is
			// prepared: it exists on the server whatever fails after it.
			if scope == nil {
				r.Name, r.SQL, scope = statementName(statementScopeSQL), statementScopeSQL, r
				cache[statementScopeSQL] = r
			} else {
				q := missing[next]
				next++
				r.Name, r.SQL = statementName(q), q
				cache[q] = r
			}
		case *pgconn.ResultReader:
			_, firstErr = r.Close()
		case *pgconn.PipelineSync:
			synced = true
		case nil:
			firstErr = errors.New("tenants: the prepare pipeline ended before its Sync")
		}
	}
	if err := p.Close(); err != nil && firstErr == nil {
		firstErr = err
	}
	if firstErr != nil {
		return nil, nil, firstErr
	}
	return scope, statementsOf(cache, qs), nil
}

func statementsOf(cache map[string]*pgconn.StatementDescription, qs []string) []*pgconn.StatementDescription {
	out := make([]*pgconn.StatementDescription, len(qs))
	for i, q := range qs {
		out[i] = cache[q]
	}
	return out
}

// statementName names a prepared statement by its text, so one text is
// prepared once per connection whoever runs it.
func statementName(q string) string {
	sum := sha256.Sum256([]byte(q))
	return "mq_" + hex.EncodeToString(sum[:12])
}

// stalePrepared reports a statement the connection no longer has (26000),
// has under a name this connection's cache does not know (42P05), or whose
// result changed shape since it was prepared (0A000).
func stalePrepared(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "26000" || pe.Code == "42P05" || pe.Code == "0A000")
}

// forgetPrepared drops what PgxStatement prepared on c, and q's statement,
// on the server too (closing a statement that does not exist is no error).
func forgetPrepared(ctx context.Context, c *pgx.Conn, q string) {
	cache, _ := c.PgConn().CustomData()[preparedKey].(map[string]*pgconn.StatementDescription)
	for text := range cache {
		_ = c.PgConn().Deallocate(ctx, statementName(text))
	}
	_ = c.PgConn().Deallocate(ctx, statementName(q))
	_ = c.PgConn().Deallocate(ctx, statementName(statementScopeSQL))
	delete(c.PgConn().CustomData(), preparedKey)
}

// rewritesKey is where a connection keeps, per statement text with named
// arguments (@name), its text with $n placeholders and the name of each:
// pgx's rewrite lexes the whole text on every call, which for the door's
// long scan statement cost as much as encoding its arguments.
const rewritesKey = "marquee.tenants.rewrites"

type namedRewrite struct {
	sql   string
	names []string
}

// argName stands for an argument while a statement's rewrite is learned.
type argName string

// rewriteNamed is pgx.NamedArgs' rewrite of q, its lexing done once per
// text and connection: the first call rewrites with each argument replaced
// by its name, which the rewrite returns in $n order; later calls only look
// the values up. (A text naming an argument its first call lacked is
// rewritten by pgx every time: its order is unknown.)
func rewriteNamed(c *pgx.Conn, q string, args pgx.NamedArgs) (string, []any) {
	known, _ := c.PgConn().CustomData()[rewritesKey].(map[string]namedRewrite)
	if known == nil {
		known = map[string]namedRewrite{}
		c.PgConn().CustomData()[rewritesKey] = known
	}
	if rw, ok := known[q]; ok {
		out := make([]any, len(rw.names))
		for i, n := range rw.names {
			out[i] = args[n]
		}
		return rw.sql, out
	}
	probe := make(pgx.NamedArgs, len(args))
	for k := range args {
		probe[k] = argName(k)
	}
	// NamedArgs' rewrite never fails and needs no connection.
	sql, marks, _ := probe.RewriteQuery(context.Background(), nil, q, nil)
	rw := namedRewrite{sql: sql, names: make([]string, len(marks))}
	for i, m := range marks {
		n, ok := m.(argName)
		if !ok {
			newSQL, newArgs, _ := args.RewriteQuery(context.Background(), nil, q, nil)
			return newSQL, newArgs
		}
		rw.names[i] = string(n)
	}
	known[q] = rw
	return rewriteNamed(c, q, args)
}
