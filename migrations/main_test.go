package migrations_test

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"testing/fstest"

	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"

	"marquee/app/apptest"
	"marquee/migrations"
)

var dbURL string

func TestMain(m *testing.M) { apptest.Main(m, "migrations", &dbURL) }

// openDB opens a plain database/sql pool on url, closed with the test.
func openDB(t testing.TB, url string) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// appliedVersions returns how many times each version is recorded as
// applied in a schema's goose table (version 0 is goose's own marker).
func appliedVersions(t testing.TB, db *sql.DB, schema string) map[int64]int {
	t.Helper()
	rows, err := db.Query(fmt.Sprintf(
		"SELECT version_id, count(*) FROM %s.goose_db_version WHERE is_applied AND version_id > 0 GROUP BY version_id",
		pgx.Identifier{schema}.Sanitize()))
	if err != nil {
		t.Fatalf("read versions of %s: %v", schema, err)
	}
	defer rows.Close()
	out := map[int64]int{}
	for rows.Next() {
		var v int64
		var n int
		if err := rows.Scan(&v, &n); err != nil {
			t.Fatal(err)
		}
		out[v] = n
	}
	return out
}

func version(t testing.TB, r *migrations.Runner, db *sql.DB, schema string) int64 {
	t.Helper()
	v, err := r.Version(context.Background(), db, schema)
	if err != nil {
		t.Fatalf("version of %s: %v", schema, err)
	}
	return v
}

func columnExists(t testing.TB, db *sql.DB, schema, table, column string) bool {
	t.Helper()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM information_schema.columns
		WHERE table_schema = $1 AND table_name = $2 AND column_name = $3`, schema, table, column).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n == 1
}

func file(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }

func newRunner(t testing.TB, url string, control, tenant fstest.MapFS, parallel int) *migrations.Runner {
	t.Helper()
	if control == nil {
		control = fstest.MapFS{}
	}
	r, err := migrations.NewRunner(url, control, tenant, parallel)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
