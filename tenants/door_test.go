package tenants_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"gorm.io/gorm"

	"marquee/app/apptest"
	"marquee/tenants"
)

// TestPgxTxIsolationOverSmallPool: the pgx door alternates two tenants over
// a pool of two connections with the same statement texts, so every
// connection reuses its prepared statements across tenants. Each transaction
// sees only its tenant's rows, a rollback or failing statement leaves
// nothing behind, and the scope never outlives the transaction.
func TestPgxTxIsolationOverSmallPool(t *testing.T) {
	env := apptest.Start(t, dbURL, apptest.Options{DBMaxConns: 2})
	ctx := context.Background()
	ts := []tenants.Tenant{env.Tenant(t, apptest.UniqueSlug("pgx")), env.Tenant(t, apptest.UniqueSlug("pgx"))}
	for _, tn := range ts {
		env.User(t, tn, "seed@"+tn.Slug+".test", "", "")
	}
	const insertSQL = `INSERT INTO users (id, email, name, password_hash) VALUES ($1, $2, 'w', 'x')`
	own := func(tx *tenants.Pgx, tn tenants.Tenant) error {
		var schema, emails string
		if err := tx.QueryRow(`SELECT current_schema(), (SELECT string_agg(email, ',') FROM users)`).Scan(&schema, &emails); err != nil {
			return err
		}
		if schema != tn.Schema {
			t.Errorf("PgxTx of %s runs in schema %q", tn.Slug, schema)
		}
		for _, e := range strings.Split(emails, ",") {
			if !strings.HasSuffix(e, "@"+tn.Slug+".test") {
				t.Errorf("PgxTx of %s sees foreign row %q", tn.Slug, e)
			}
		}
		return nil
	}
	committed := [2]int{}
	for i := range 120 {
		k := i % 2
		tn := ts[k]
		var err error
		switch op := (i / 2) % 3; op {
		case 0: // write and commit
			err = env.App.PgxTx(ctx, tn, tenants.TxOptions{}, func(tx *tenants.Pgx) error {
				if _, err := tx.Exec(insertSQL, uuid.New(), fmt.Sprintf("w-%d@%s.test", i, tn.Slug)); err != nil {
					return err
				}
				return own(tx, tn)
			})
			if err == nil {
				committed[k]++
			}
		case 1: // write, then fail in Go: rolled back
			err = env.App.PgxTx(ctx, tn, tenants.TxOptions{}, func(tx *tenants.Pgx) error {
				if _, err := tx.Exec(insertSQL, uuid.New(), fmt.Sprintf("rb-%d@%s.test", i, tn.Slug)); err != nil {
					return err
				}
				if err := own(tx, tn); err != nil {
					return err
				}
				return errRollback
			})
			if errors.Is(err, errRollback) {
				err = nil
			}
		case 2: // write, then a statement fails: aborted
			err = env.App.PgxTx(ctx, tn, tenants.TxOptions{}, func(tx *tenants.Pgx) error {
				if _, err := tx.Exec(insertSQL, uuid.New(), fmt.Sprintf("rb-%d@%s.test", i, tn.Slug)); err != nil {
					return err
				}
				_, err := tx.Exec(`SELECT 1 / (count(*) - count(*))::int FROM users`)
				return err
			})
			if err != nil && strings.Contains(err.Error(), "division by zero") {
				err = nil
			} else if err == nil {
				err = errors.New("want division by zero")
			}
		}
		if err != nil {
			t.Fatalf("iteration %d (%s): %v", i, tn.Slug, err)
		}
		// Outside the transaction the connection is back to the default scope.
		var path string
		var users *string
		if err := env.App.SQL.QueryRow(`SELECT current_setting('search_path'), to_regclass('users')::text`).Scan(&path, &users); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(path, "t_") || users != nil {
			t.Fatalf("scope leaked onto the pool after a PgxTx of %s: search_path %q, users %v", tn.Slug, path, users)
		}
	}
	for k, tn := range ts {
		var emails []string
		if err := env.App.DB.Raw(fmt.Sprintf(`SELECT email FROM %q.users WHERE email LIKE 'w-%%' OR email LIKE 'rb-%%'`, tn.Schema)).Scan(&emails).Error; err != nil {
			t.Fatal(err)
		}
		for _, e := range emails {
			if !strings.HasPrefix(e, "w-") || !strings.HasSuffix(e, "@"+tn.Slug+".test") {
				t.Errorf("schema %s holds row %q", tn.Schema, e)
			}
		}
		if len(emails) != committed[k] || committed[k] == 0 {
			t.Errorf("schema %s has %d written rows, %d commits succeeded", tn.Schema, len(emails), committed[k])
		}
	}
}

// TestTxReadOnly: a read-only transaction reads its tenant's rows, and
// PostgreSQL refuses its writes, on both doors.
func TestTxReadOnly(t *testing.T) {
	env := apptest.Start(t, dbURL, apptest.Options{})
	ctx := context.Background()
	tn := env.Tenant(t, apptest.UniqueSlug("ro"))
	env.User(t, tn, "seed@"+tn.Slug+".test", "", "")
	var users int64
	if err := env.App.DB.Raw(fmt.Sprintf(`SELECT count(*) FROM %q.users`, tn.Schema)).Row().Scan(&users); err != nil || users < 2 {
		t.Fatalf("tenant %s has %d users (%v), want the owner and a seed", tn.Slug, users, err)
	}
	ro := tenants.TxOptions{ReadOnly: true}
	readOnlyRefusal := func(err error) bool {
		var pe *pgconn.PgError
		return errors.As(err, &pe) && pe.Code == "25006"
	}
	var n int64
	err := env.App.TxWith(ctx, tn, ro, func(tx *gorm.DB) error {
		if err := tx.Raw(`SELECT count(*) FROM users`).Row().Scan(&n); err != nil {
			return err
		}
		return tx.Exec(`INSERT INTO users (id, email, name, password_hash) VALUES (?, 'x@x.test', 'x', 'x')`, uuid.New()).Error
	})
	if n != users || !readOnlyRefusal(err) {
		t.Errorf("gorm read-only: read %d users (want %d), write gave %v (want 25006)", n, users, err)
	}
	n = 0
	err = env.App.PgxTx(ctx, tn, ro, func(tx *tenants.Pgx) error {
		if err := tx.QueryRow(`SELECT count(*) FROM users`).Scan(&n); err != nil {
			return err
		}
		_, err := tx.Exec(`INSERT INTO users (id, email, name, password_hash) VALUES ($1, 'x@x.test', 'x', 'x')`, uuid.New())
		return err
	})
	if n != users || !readOnlyRefusal(err) {
		t.Errorf("pgx read-only: read %d users (want %d), write gave %v (want 25006)", n, users, err)
	}
}

// TestTxRetry: asked to, both doors run a transaction PostgreSQL aborts as a
// serialization or deadlock victim again, whole, four times in all, and say
// so; otherwise, or for any other error, once.
func TestTxRetry(t *testing.T) {
	env := apptest.Start(t, dbURL, apptest.Options{})
	ctx := context.Background()
	tn := env.Tenant(t, apptest.UniqueSlug("retry"))
	raise := func(code string) string {
		return `DO $$ BEGIN RAISE EXCEPTION 'deliberate' USING ERRCODE = '` + code + `'; END $$`
	}
	// Each door counts the times its transaction body runs.
	doors := map[string]func(o tenants.TxOptions, q string, runs *int) error{
		"gorm": func(o tenants.TxOptions, q string, runs *int) error {
			return env.App.TxWith(ctx, tn, o, func(tx *gorm.DB) error { *runs++; return tx.Exec(q).Error })
		},
		"pgx": func(o tenants.TxOptions, q string, runs *int) error {
			return env.App.PgxTx(ctx, tn, o, func(tx *tenants.Pgx) error { *runs++; _, err := tx.Exec(q); return err })
		},
	}
	for name, door := range doors {
		for _, c := range []struct {
			code       string
			retry      bool
			wantRuns   int
			wantNotice []int
		}{
			{"40001", true, 4, []int{1, 2, 3}},
			{"40P01", true, 4, []int{1, 2, 3}},
			{"0A000", true, 4, []int{1, 2, 3}}, // a stale cached plan during a rolling migration
			{"40001", false, 1, nil},
			{"P0001", true, 1, nil},
		} {
			runs := 0
			var notices []int
			o := tenants.TxOptions{Retry: c.retry, OnRetry: func(attempt int, err error) { notices = append(notices, attempt) }}
			err := door(o, raise(c.code), &runs)
			var pe *pgconn.PgError
			if !errors.As(err, &pe) || pe.Code != c.code || runs != c.wantRuns || !slices.Equal(notices, c.wantNotice) {
				t.Errorf("%s, %s, retry %v: error %v, %d runs, retries noticed %v; want %s, %d runs, %v",
					name, c.code, c.retry, err, runs, notices, c.code, c.wantRuns, c.wantNotice)
			}
		}
		// A body that succeeds runs once.
		runs := 0
		if err := door(tenants.TxOptions{Retry: true}, "SELECT 1", &runs); err != nil || runs != 1 {
			t.Errorf("%s: a clean transaction gave %v after %d runs", name, err, runs)
		}
	}
}

// TestPgxStatementPreparedOncePerConnection: PgxStatement alternates two
// tenants over a pool of two connections with one statement text. The
// statement reports its own executions on its connection (PostgreSQL's
// pg_prepared_statements): on every connection they count 1, 2, 3, … —
// prepared once there and run by name ever after — while each call still
// sees only its own tenant's rows (PostgreSQL analyses the statement again
// when the search_path differs from its last run). A failing statement
// rolls back and leaves the connection usable; a statement that does not
// parse is not remembered as prepared.
func TestPgxStatementPreparedOncePerConnection(t *testing.T) {
	env := apptest.Start(t, dbURL, apptest.Options{DBMaxConns: 2})
	ctx := context.Background()
	ts := []tenants.Tenant{env.Tenant(t, apptest.UniqueSlug("pst")), env.Tenant(t, apptest.UniqueSlug("pst"))}
	for _, tn := range ts {
		env.User(t, tn, "seed@"+tn.Slug+".test", "", "")
	}
	const q = `SELECT /* pst-self */ pg_backend_pid(), current_schema(), (SELECT string_agg(email, ',') FROM users WHERE email LIKE $1::text),
		(SELECT generic_plans + custom_plans FROM pg_prepared_statements WHERE statement LIKE '%pst-self%'),
		(SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE '%pst-self%')`
	type seen struct {
		pid              int32
		schema, emails   string
		runs, statements int64
	}
	run := func(db *sql.DB, tn tenants.Tenant) seen {
		t.Helper()
		var s seen
		err := tenants.PgxStatement(ctx, db, tn, tenants.TxOptions{}, q, []any{"seed@%"}, func(rows pgx.Rows) error {
			if !rows.Next() {
				return errors.New("no row")
			}
			return rows.Scan(&s.pid, &s.schema, &s.emails, &s.runs, &s.statements)
		})
		if err != nil {
			t.Fatal(err)
		}
		if s.schema != tn.Schema || !strings.HasSuffix(s.emails, "@"+tn.Slug+".test") || strings.Contains(s.emails, ",") {
			t.Fatalf("PgxStatement of %s ran in %q and saw %q", tn.Slug, s.schema, s.emails)
		}
		if s.statements != 1 {
			t.Fatalf("connection %d holds %d prepared copies of the statement", s.pid, s.statements)
		}
		return s
	}
	runsOn := map[int32]int64{}
	for i := range 60 {
		s := run(env.App.SQL, ts[i%2])
		if s.runs != runsOn[s.pid]+1 {
			t.Fatalf("call %d: connection %d counts %d runs of the statement, want %d", i, s.pid, s.runs, runsOn[s.pid]+1)
		}
		runsOn[s.pid] = s.runs
		if i%7 == 3 {
			// A statement that raises: rolled back, the connection still serves.
			err := tenants.PgxStatement(ctx, env.App.SQL, ts[i%2], tenants.TxOptions{}, `SELECT 1 / (count(*) - count(*)) FROM users`, nil,
				func(rows pgx.Rows) error { rows.Close(); return rows.Err() })
			var pe *pgconn.PgError
			if !errors.As(err, &pe) || pe.Code != "22012" {
				t.Fatalf("division by zero answered %v", err)
			}
		}
		if i%11 == 5 {
			err := tenants.PgxStatement(ctx, env.App.SQL, ts[i%2], tenants.TxOptions{}, `SELECT * FROM no_such_table_here`, nil,
				func(rows pgx.Rows) error { rows.Close(); return rows.Err() })
			var pe *pgconn.PgError
			if !errors.As(err, &pe) || pe.Code != "42P01" {
				t.Fatalf("a missing table answered %v", err)
			}
		}
	}
	if len(runsOn) == 0 {
		t.Fatal("no connection ran the statement")
	}

	// GenericPlan: the statement runs on its generic plan (PostgreSQL
	// counts which plan each run used), and a later call without it is
	// planned for its values again.
	var generic, custom int64
	genericQ := `SELECT /* pst-generic */ (SELECT generic_plans FROM pg_prepared_statements WHERE statement LIKE '%pst-generic%'),
		(SELECT custom_plans FROM pg_prepared_statements WHERE statement LIKE '%pst-generic%'), (SELECT count(*) FROM users WHERE email LIKE $1::text)`
	for i, g := range []bool{true, true, false} {
		var users int64
		err := tenants.PgxStatement(ctx, env.App.SQL, ts[0], tenants.TxOptions{GenericPlan: g}, genericQ, []any{"seed@%"}, func(rows pgx.Rows) error {
			if !rows.Next() {
				return errors.New("no row")
			}
			return rows.Scan(&generic, &custom, &users)
		})
		if err != nil || users != 1 {
			t.Fatalf("call %d: %v, %d users", i, err, users)
		}
		if g && custom != 0 || !g && custom == 0 {
			t.Fatalf("call %d (generic %v): generic plans %d, custom plans %d", i, g, generic, custom)
		}
	}

	// Statements deallocated behind the door's back (DEALLOCATE ALL on the
	// connection): the next call prepares them again and succeeds.
	cfg, err := pgx.ParseConfig(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	one := stdlib.OpenDB(*cfg)
	defer one.Close()
	one.SetMaxOpenConns(1)
	if s := run(one, ts[0]); s.runs != 1 {
		t.Fatalf("a fresh connection counts %d runs", s.runs)
	}
	if s := run(one, ts[1]); s.runs != 2 {
		t.Fatalf("the second run counts %d", s.runs)
	}
	if _, err := one.ExecContext(ctx, `DEALLOCATE ALL`); err != nil {
		t.Fatal(err)
	}
	if s := run(one, ts[0]); s.runs != 1 {
		t.Fatalf("after DEALLOCATE ALL the statement counts %d runs, want 1 (prepared again)", s.runs)
	}
}

// TestPgxStatementNamedArgs: PgxStatement learns a statement's named
// arguments once per connection and then only looks values up: repeated
// names, values that change from call to call, and a name the first call
// lacked (pgx sends NULL for it, every time) all arrive where they belong.
func TestPgxStatementNamedArgs(t *testing.T) {
	env := apptest.Start(t, dbURL, apptest.Options{DBMaxConns: 1})
	ctx := context.Background()
	tn := env.Tenant(t, apptest.UniqueSlug("named"))
	run := func(q string, args pgx.NamedArgs) (b string, a int, bx string, c *string) {
		t.Helper()
		err := tenants.PgxStatement(ctx, env.App.SQL, tn, tenants.TxOptions{}, q, []any{args}, func(rows pgx.Rows) error {
			if !rows.Next() {
				return errors.New("no row")
			}
			return rows.Scan(&b, &a, &bx, &c)
		})
		if err != nil {
			t.Fatal(err)
		}
		return b, a, bx, c
	}
	const q = `SELECT @b::text, @a::int, @b::text || 'x', @c::text`
	for i := range 5 {
		b, a, bx, c := run(q, pgx.NamedArgs{"a": i, "b": fmt.Sprint("b", i), "c": fmt.Sprint("c", i)})
		if b != fmt.Sprint("b", i) || a != i || bx != b+"x" || c == nil || *c != fmt.Sprint("c", i) {
			t.Fatalf("call %d: %q %d %q %v", i, b, a, bx, c)
		}
	}
	const q2 = `SELECT @b::text, @a::int, @b::text || 'y', @c::text`
	if _, a, _, c := run(q2, pgx.NamedArgs{"a": 7, "b": "b"}); a != 7 || c != nil {
		t.Fatalf("without c: %d %v", a, c)
	}
	if b, a, bx, c := run(q2, pgx.NamedArgs{"a": 8, "b": "z", "c": "here"}); b != "z" || a != 8 || bx != "zy" || c == nil || *c != "here" {
		t.Fatalf("with c: %q %d %q %v", b, a, bx, c)
	}
}
