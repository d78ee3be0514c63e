package tenants_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"

	"marquee/app/apptest"
	"marquee/tenants"
)

// PipedTx: statements run in the tenant's schema, the whole transaction
// commits with the pipeline that carries COMMIT (or when fn leaves it
// open), and rolls back whole when fn fails or a statement does (one sent
// with the COMMIT included); the pool's connections serve on after each.
func TestPipedTxCommitsWholeOrNothing(t *testing.T) {
	env := apptest.Start(t, dbURL, apptest.Options{DBMaxConns: 2})
	ctx := context.Background()
	ts := []tenants.Tenant{env.Tenant(t, apptest.UniqueSlug("piped")), env.Tenant(t, apptest.UniqueSlug("piped"))}
	for _, tn := range ts {
		if err := env.App.Tx(ctx, tn, func(tx *gorm.DB) error { return tx.Exec(`CREATE TABLE piped_probe (n int NOT NULL)`).Error }); err != nil {
			t.Fatal(err)
		}
	}
	const insert, count = `INSERT INTO piped_probe (n) VALUES ($1)`, `SELECT count(*), current_schema() FROM piped_probe`
	counted := func(tn tenants.Tenant) int64 {
		t.Helper()
		var n int64
		var schema string
		err := tenants.PipedTx(ctx, env.App.SQL, tn, tenants.TxOptions{}, func(p *tenants.Piped) error {
			return p.Send(true, tenants.Step{SQL: count, Read: func(rows pgx.Rows) error {
				if !rows.Next() {
					return errors.New("no row")
				}
				return rows.Scan(&n, &schema)
			}})
		})
		if err != nil || schema != tn.Schema {
			t.Fatalf("count in %s: %v (schema %q)", tn.Slug, err, schema)
		}
		return n
	}
	want := [2]int64{}
	for i := range 30 {
		tn := ts[i%2]
		var err error
		switch i % 5 {
		case 0: // two round trips, the second with COMMIT
			err = tenants.PipedTx(ctx, env.App.SQL, tn, tenants.TxOptions{}, func(p *tenants.Piped) error {
				if err := p.Send(false, tenants.Step{SQL: insert, Args: []any{i}}); err != nil {
					return err
				}
				return p.Send(true, tenants.Step{SQL: insert, Args: []any{i}}, tenants.Step{SQL: insert, Args: []any{i}})
			})
			want[i%2] += 3
		case 1: // left open: committed after fn
			err = tenants.PipedTx(ctx, env.App.SQL, tn, tenants.TxOptions{}, func(p *tenants.Piped) error {
				return p.Send(false, tenants.Step{SQL: insert, Args: []any{i}})
			})
			want[i%2]++
		case 2: // fn fails after a write
			boom := errors.New("boom")
			err = tenants.PipedTx(ctx, env.App.SQL, tn, tenants.TxOptions{}, func(p *tenants.Piped) error {
				if err := p.Send(false, tenants.Step{SQL: insert, Args: []any{i}}); err != nil {
					return err
				}
				return boom
			})
			if !errors.Is(err, boom) {
				t.Fatalf("call %d: %v, want boom", i, err)
			}
			err = nil
		case 3: // a statement sent with the COMMIT fails: nothing commits
			err = tenants.PipedTx(ctx, env.App.SQL, tn, tenants.TxOptions{}, func(p *tenants.Piped) error {
				if err := p.Send(false, tenants.Step{SQL: insert, Args: []any{i}}); err != nil {
					return err
				}
				return p.Send(true, tenants.Step{SQL: insert, Args: []any{i}}, tenants.Step{SQL: `SELECT 1 / (count(*) - count(*)) FROM piped_probe`})
			})
			var pe *pgconn.PgError
			if !errors.As(err, &pe) || pe.Code != "22012" {
				t.Fatalf("call %d: division by zero answered %v", i, err)
			}
			err = nil
		case 4: // the first statement fails
			err = tenants.PipedTx(ctx, env.App.SQL, tn, tenants.TxOptions{}, func(p *tenants.Piped) error {
				return p.Send(true, tenants.Step{SQL: `INSERT INTO piped_probe (n) VALUES (NULL)`})
			})
			var pe *pgconn.PgError
			if !errors.As(err, &pe) || pe.Code != "23502" {
				t.Fatalf("call %d: a NULL answered %v", i, err)
			}
			err = nil
		}
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if i == 17 {
			// Statements deallocated behind its back: prepared again.
			if _, err := env.App.SQL.ExecContext(ctx, `DEALLOCATE ALL`); err != nil {
				t.Fatal(err)
			}
		}
	}
	for k, tn := range ts {
		if got := counted(tn); got != want[k] {
			t.Fatalf("%s holds %d rows, want %d", tn.Slug, got, want[k])
		}
	}
}
