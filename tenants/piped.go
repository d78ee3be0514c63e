package tenants

import (
	"context"
	"database/sql"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Step is one statement of a pipelined round trip: its text ($n
// placeholders), its arguments, and what reads its result (nil: nothing;
// an Exec-like statement's count is rows.CommandTag() once rows are read).
type Step struct {
	SQL  string
	Args []any
	Read func(rows pgx.Rows) error
}

// Piped is a tenant transaction sent as pipelines: each Send is one round
// trip, the first carrying BEGIN and the scope, the last (commit) COMMIT.
// Its statements are prepared once per connection, as PgxStatement's are,
// and run on their generic plans: a transaction that decides on keys (an
// equality on a unique key per lookup) gains nothing from planning each
// call for its values. For a hot path of a few statements whose later ones
// need what Go computes from the earlier (signatures): PgxTx costs a round
// trip per statement, plus BEGIN and COMMIT.
type Piped struct {
	ctx          context.Context
	c            *pgx.Conn
	path, schema string
	begun, done  bool
}

// PipedTx runs fn in one transaction scoped to t on a connection of db.
// fn's error rolls the transaction back and is returned as is; a
// transaction fn leaves open is committed.
func PipedTx(ctx context.Context, db *sql.DB, t Tenant, o TxOptions, fn func(p *Piped) error) error {
	path, schema, err := searchPath(t)
	if err != nil {
		return err
	}
	return o.run(func() error {
		return withPgxConn(ctx, db, func(c *pgx.Conn) error {
			err := pipedOnce(ctx, c, path, schema, fn)
			if stalePrepared(err) {
				// As in PgxStatement: prepared statements gone or of another
				// shape; forget them and run the transaction once more.
				forgetPrepared(ctx, c, statementScopeSQL)
				err = pipedOnce(ctx, c, path, schema, fn)
			}
			return err
		})
	})
}

func pipedOnce(ctx context.Context, c *pgx.Conn, path, schema string, fn func(p *Piped) error) error {
	p := &Piped{ctx: ctx, c: c, path: path, schema: schema}
	err := fn(p)
	switch {
	case !p.begun || p.done:
		return err
	case err != nil:
		// A connection left inside a transaction (ROLLBACK not reached) is
		// discarded by the driver.
		_, _ = c.Exec(ctx, "ROLLBACK")
		return err
	}
	_, err = c.Exec(ctx, "COMMIT")
	return err
}

// Send runs steps in one round trip, in order; commit ends the transaction
// with COMMIT in the same round trip. The first error (a statement's, or a
// step's Read) is returned: PostgreSQL skipped every statement after the
// failed one, and the transaction is rolled back when fn returns it.
func (p *Piped) Send(commit bool, steps ...Step) error {
	if p.done {
		return errors.New("tenants: the piped transaction is over")
	}
	qs := make([]string, len(steps))
	for i, s := range steps {
		qs[i] = s.SQL
	}
	scope, stmts, err := preparedAll(p.ctx, p.c, p.path, p.schema, qs)
	if err != nil {
		return err
	}
	var eqb pgx.ExtendedQueryBuilder
	b := &pgconn.Batch{}
	if !p.begun {
		b.ExecParams("BEGIN", nil, nil, nil, nil)
		if err := eqb.Build(p.c.TypeMap(), scope, []any{p.path, p.schema, true}); err != nil {
			return err
		}
		b.ExecStatement(scope, eqb.ParamValues, clone(eqb.ParamFormats), clone(eqb.ResultFormats))
	}
	for i, s := range steps {
		if err := eqb.Build(p.c.TypeMap(), stmts[i], s.Args); err != nil {
			return err
		}
		// ExecStatement keeps the result formats (it encodes the rest at
		// once); eqb reuses them on the next Build.
		b.ExecStatement(stmts[i], eqb.ParamValues, eqb.ParamFormats, clone(eqb.ResultFormats))
	}
	if commit {
		b.ExecParams("COMMIT", nil, nil, nil, nil)
	}
	mrr := p.c.PgConn().ExecBatch(p.ctx, b)
	opening := !p.begun
	p.begun = true
	err = readAll(p.c, mrr, opening, steps, commit)
	// The server's error (a deadlock, a constraint) is what Close returns;
	// it explains a result missing after it and decides a retry.
	if cerr := mrr.Close(); cerr != nil {
		err = cerr
	}
	if err == nil && commit {
		p.done = true
	}
	return err
}

// readAll reads the round trip's results in the order sent: BEGIN and the
// scope (first Send), each step, COMMIT.
func readAll(c *pgx.Conn, mrr *pgconn.MultiResultReader, opening bool, steps []Step, commit bool) error {
	skip := func() error {
		if !mrr.NextResult() {
			return errors.New("tenants: a piped result is missing")
		}
		_, err := mrr.ResultReader().Close()
		return err
	}
	if opening {
		for range 2 {
			if err := skip(); err != nil {
				return err
			}
		}
	}
	for _, s := range steps {
		if !mrr.NextResult() {
			return errors.New("tenants: a piped result is missing")
		}
		rows := pgx.RowsFromResultReader(c.TypeMap(), mrr.ResultReader())
		var err error
		if s.Read != nil {
			err = s.Read(rows)
		}
		rows.Close()
		// The server's error comes first: a Read that found no row is
		// its consequence.
		if rerr := rows.Err(); rerr != nil {
			err = rerr
		}
		if err != nil {
			return err
		}
	}
	if commit {
		return skip()
	}
	return nil
}

func clone(v []int16) []int16 { return append([]int16(nil), v...) }
