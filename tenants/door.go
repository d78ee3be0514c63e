package tenants

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
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

func pgxTxOnce(ctx context.Context, db *sql.DB, begin string, fn func(tx *Pgx) error) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	// A connection handed back inside a transaction (an error between BEGIN
	// and COMMIT that ROLLBACK did not reach) is discarded by the driver.
	return conn.Raw(func(dc any) error {
		tx := &Pgx{ctx: ctx, c: dc.(*stdlib.Conn).Conn(), begin: begin}
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
// and an error (one the statement raises included) rolls both back. The
// statement is sent with its text each time (parsed after the scope took
// effect, so its names resolve in t's schema); scan reads its result. For a
// hot path whose whole transaction is a single statement: PgxTx costs three
// round trips (BEGIN and scope, the statement, COMMIT).
func PgxStatement(ctx context.Context, db *sql.DB, t Tenant, o TxOptions, q string, args []any, scan func(pgx.Rows) error) error {
	path, schema, err := searchPath(t)
	if err != nil {
		return err
	}
	return o.run(func() error {
		conn, err := db.Conn(ctx)
		if err != nil {
			return err
		}
		defer conn.Close()
		return conn.Raw(func(dc any) error {
			c := dc.(*stdlib.Conn).Conn()
			if len(args) > 0 {
				if rw, ok := args[0].(pgx.QueryRewriter); ok {
					if q, args, err = rw.RewriteQuery(ctx, c, q, args[1:]); err != nil {
						return err
					}
				}
			}
			var eqb pgx.ExtendedQueryBuilder
			b := &pgconn.Batch{}
			if err := eqb.Build(c.TypeMap(), nil, []any{path, schema}); err != nil {
				return err
			}
			b.ExecParams("SELECT set_config('search_path', $1::text, true), $2::text::regnamespace", eqb.ParamValues, nil, eqb.ParamFormats, eqb.ResultFormats)
			if err := eqb.Build(c.TypeMap(), nil, args); err != nil {
				return err
			}
			b.ExecParams(q, eqb.ParamValues, nil, eqb.ParamFormats, eqb.ResultFormats)
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
			err := scan(rows)
			rows.Close()
			if err == nil {
				err = rows.Err()
			}
			if cerr := mrr.Close(); err == nil {
				err = cerr
			}
			return err
		})
	})
}
