package migrations_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"marquee/app/apptest"
	"marquee/migrations"
)

const v1Items = `-- +goose Up
CREATE TABLE items (id int PRIMARY KEY);
-- +goose Down
DROP TABLE items;
`

// v2 first changes the table, then refuses schema t_bad: the change must be
// rolled back with the rest of the migration there.
const v2Refusing = `-- +goose Up
ALTER TABLE items ADD COLUMN label text;
-- +goose StatementBegin
DO $$
BEGIN
    IF current_schema() = 't_bad' THEN
        RAISE EXCEPTION 'v2 refuses schema %', current_schema();
    END IF;
END
$$;
-- +goose StatementEnd
-- +goose Down
ALTER TABLE items DROP COLUMN label;
`

const v2Fixed = `-- +goose Up
ALTER TABLE items ADD COLUMN label text;
-- +goose Down
ALTER TABLE items DROP COLUMN label;
`

const v3More = `-- +goose Up
CREATE TABLE more_items (id int PRIMARY KEY, item int REFERENCES items (id));
-- +goose Down
DROP TABLE more_items;
`

type progressLog struct {
	mu      sync.Mutex
	dones   []int
	totals  []int
	results map[string]migrations.Result
	times   []time.Time
}

func (p *progressLog) fn(done, total int, res migrations.Result) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.results == nil {
		p.results = map[string]migrations.Result{}
	}
	p.dones = append(p.dones, done)
	p.totals = append(p.totals, total)
	p.results[res.Schema] = res
	p.times = append(p.times, time.Now())
}

func (p *progressLog) check(t *testing.T, schemas []string) {
	t.Helper()
	if len(p.dones) != len(schemas) || len(p.results) != len(schemas) {
		t.Fatalf("progress reported %d times over %d schemas, want once per schema (%d)", len(p.dones), len(p.results), len(schemas))
	}
	for i, d := range p.dones {
		if d != i+1 || p.totals[i] != len(schemas) {
			t.Fatalf("progress %d reported %d/%d, want %d/%d", i, d, p.totals[i], i+1, len(schemas))
		}
	}
}

// TestAllResumesAfterFailure: a migration failing in one schema leaves that
// schema at its last good version and the others fully migrated; once the
// migration is fixed, a rerun finishes the failed schema and touches nothing
// else.
func TestAllResumesAfterFailure(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, dbURL)
	schemas := []string{"t_res_a", "t_res_b", "t_bad", "t_res_c", "t_res_d"}
	broken := fstest.MapFS{
		"00001_items.sql": file(v1Items),
		"00002_label.sql": file(v2Refusing),
		"00003_more.sql":  file(v3More),
	}
	r := newRunner(t, dbURL, nil, broken, 2)
	var first progressLog
	err := r.All(ctx, schemas, first.fn)
	if err == nil {
		t.Fatal("All succeeded although v2 fails in t_bad")
	}
	if !strings.Contains(err.Error(), "t_bad") || !strings.Contains(err.Error(), "v2 refuses schema t_bad") {
		t.Fatalf("error does not name t_bad and its cause: %v", err)
	}
	for _, s := range schemas {
		if s != "t_bad" && strings.Contains(err.Error(), s) {
			t.Fatalf("error names healthy schema %s: %v", s, err)
		}
	}
	first.check(t, schemas)
	for _, s := range schemas {
		res := first.results[s]
		want, wantV := 3, int64(3)
		if s == "t_bad" {
			want, wantV = 1, 1
			if res.Err == nil {
				t.Fatalf("progress shows no error for t_bad")
			}
		} else if res.Err != nil {
			t.Fatalf("progress shows error for %s: %v", s, res.Err)
		}
		if res.Applied != want {
			t.Errorf("%s: %d migrations applied, want %d", s, res.Applied, want)
		}
		if v := version(t, r, db, s); v != wantV {
			t.Errorf("%s is at version %d, want %d", s, v, wantV)
		}
	}
	if columnExists(t, db, "t_bad", "items", "label") {
		t.Fatal("the failed v2 was not rolled back in t_bad: items.label exists")
	}

	// The fixed tree: only t_bad moves, and it moves to the end.
	fixed := fstest.MapFS{
		"00001_items.sql": file(v1Items),
		"00002_label.sql": file(v2Fixed),
		"00003_more.sql":  file(v3More),
	}
	r2 := newRunner(t, dbURL, nil, fixed, 2)
	var second progressLog
	if err := r2.All(ctx, schemas, second.fn); err != nil {
		t.Fatalf("rerun: %v", err)
	}
	second.check(t, schemas)
	for _, s := range schemas {
		want := 0
		if s == "t_bad" {
			want = 2
		}
		if got := second.results[s].Applied; got != want {
			t.Errorf("rerun applied %d migrations to %s, want %d", got, s, want)
		}
		if v := version(t, r2, db, s); v != 3 {
			t.Errorf("%s at version %d after rerun, want 3", s, v)
		}
		for v, n := range appliedVersions(t, db, s) {
			if n != 1 {
				t.Errorf("%s: version %d recorded %d times", s, v, n)
			}
		}
		if !columnExists(t, db, s, "items", "label") || !columnExists(t, db, s, "more_items", "item") {
			t.Errorf("%s lacks the migrated columns", s)
		}
	}
	// A third run is a no-op everywhere.
	var third progressLog
	if err := r2.All(ctx, schemas, third.fn); err != nil {
		t.Fatal(err)
	}
	for s, res := range third.results {
		if res.Applied != 0 {
			t.Errorf("third run applied %d to %s", res.Applied, s)
		}
	}
}

// slowTree makes every migration last long enough for concurrent runs to
// overlap; none of them can be applied twice (CREATE TABLE without IF NOT
// EXISTS).
func slowTree() fstest.MapFS {
	return fstest.MapFS{
		"00001_a.sql": file("-- +goose Up\nSELECT pg_sleep(0.05);\nCREATE TABLE a (id int);\n"),
		"00002_b.sql": file("-- +goose Up\nCREATE TABLE b (id int);\nSELECT pg_sleep(0.02);\n"),
		"00003_c.sql": file("-- +goose Up\nCREATE TABLE c (id int);\n"),
	}
}

// TestConcurrentAllRunsApplyOnce: several processes running All over the
// same schemas at once all succeed, every migration is applied exactly once
// per schema, and the runs do not overlap (the database-wide lock).
func TestConcurrentAllRunsApplyOnce(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, dbURL)
	const runs = 4
	var schemas []string
	for i := range 6 {
		schemas = append(schemas, fmt.Sprintf("t_lock_%d", i))
	}
	logs := make([]progressLog, runs)
	errs := make([]error, runs)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range runs {
		r := newRunner(t, dbURL, nil, slowTree(), 3) // one Runner per "process"
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = r.All(ctx, schemas, logs[i].fn)
		}()
	}
	close(start)
	wg.Wait()
	total := 0
	for i := range runs {
		if errs[i] != nil {
			t.Fatalf("run %d: %v", i, errs[i])
		}
		logs[i].check(t, schemas)
		for _, res := range logs[i].results {
			total += res.Applied
		}
	}
	if total != 3*len(schemas) {
		t.Fatalf("the %d runs applied %d migrations in all, want %d (3 × %d schemas)", runs, total, 3*len(schemas), len(schemas))
	}
	for _, s := range schemas {
		vs := appliedVersions(t, db, s)
		if len(vs) != 3 || vs[1] != 1 || vs[2] != 1 || vs[3] != 1 {
			t.Errorf("%s: applied versions %v, want each of 1..3 once", s, vs)
		}
	}
	// Runs are serialised: the progress windows of two runs never overlap.
	for i := range runs {
		for j := range runs {
			if i == j {
				continue
			}
			a, b := logs[i].times, logs[j].times
			if a[0].Before(b[len(b)-1]) && b[0].Before(a[len(a)-1]) {
				t.Errorf("runs %d and %d migrated at the same time", i, j)
			}
		}
	}
}

// TestConcurrentSchemaSameTenant: provisioning the same new schema from many
// goroutines at once (Schema takes no global lock) succeeds everywhere and
// applies each migration once.
func TestConcurrentSchemaSameTenant(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, dbURL)
	const n = 6
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		applied int
		errs    []error
	)
	start := make(chan struct{})
	for range n {
		r := newRunner(t, dbURL, nil, slowTree(), 1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			res, err := r.Schema(ctx, "t_same")
			mu.Lock()
			defer mu.Unlock()
			applied += res.Applied
			if err != nil {
				errs = append(errs, err)
			}
		}()
	}
	close(start)
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d of %d concurrent Schema calls failed: %v", len(errs), n, errors.Join(errs...))
	}
	if applied != 3 {
		t.Fatalf("concurrent Schema calls applied %d migrations, want 3", applied)
	}
	if vs := appliedVersions(t, db, "t_same"); len(vs) != 3 || vs[1] != 1 || vs[2] != 1 || vs[3] != 1 {
		t.Fatalf("applied versions %v", vs)
	}
}

// TestControlIdempotent: the control migrations apply once, then reruns
// (also several instances starting together on a fresh database) change
// nothing and succeed.
func TestControlIdempotent(t *testing.T) {
	ctx := context.Background()
	url, drop, err := apptest.Database("migrations_control")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(drop)
	files, err := fs.Glob(migrations.ControlFS(), "*.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("control migrations: %v %v", files, err)
	}
	const n = 4
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		applied int
		errs    []error
	)
	start := make(chan struct{})
	for range n {
		r, err := migrations.NewRunner(url, migrations.ControlFS(), migrations.TenantFS(), 1)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			res, err := r.Control(ctx)
			mu.Lock()
			defer mu.Unlock()
			applied += res.Applied
			if err != nil {
				errs = append(errs, err)
			}
		}()
	}
	close(start)
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("instances starting together: %v", errors.Join(errs...))
	}
	if applied != len(files) {
		t.Fatalf("instances starting together applied %d control migrations, want %d", applied, len(files))
	}
	r, err := migrations.NewRunner(url, migrations.ControlFS(), migrations.TenantFS(), 1)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		res, err := r.Control(ctx)
		if err != nil || res.Applied != 0 || res.Schema != migrations.ControlSchema {
			t.Fatalf("rerun %d of Control: %+v %v", i, res, err)
		}
	}
	db := openDB(t, url)
	if v := version(t, r, db, migrations.ControlSchema); v < 1 {
		t.Fatalf("control at version %d", v)
	}
	var tbl *string
	if err := db.QueryRow("SELECT to_regclass('control.tenants')::text").Scan(&tbl); err != nil || tbl == nil {
		t.Fatalf("control.tenants missing: %v", err)
	}
	// btree_gist lives in public, not in the control schema.
	var extSchema string
	if err := db.QueryRow("SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'btree_gist'").Scan(&extSchema); err != nil || extSchema != "public" {
		t.Fatalf("btree_gist installed in %q (%v), want public", extSchema, err)
	}
}

// TestTenantTreeStaysInItsSchema: the real tenant migrations create nothing
// outside the tenant schema (no extension, no public object), and dropping
// one tenant's schema leaves another's intact.
func TestTenantTreeStaysInItsSchema(t *testing.T) {
	ctx := context.Background()
	url, drop, err := apptest.Database("migrations_tree")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(drop)
	db := openDB(t, url)
	r, err := migrations.NewRunner(url, migrations.ControlFS(), migrations.TenantFS(), 2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Control(ctx); err != nil {
		t.Fatal(err)
	}
	files, _ := fs.Glob(migrations.TenantFS(), "*.sql")
	for _, f := range files {
		raw, err := fs.ReadFile(migrations.TenantFS(), f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(strings.ToUpper(string(raw)), "CREATE EXTENSION") {
			t.Errorf("tenant migration %s creates an extension: extensions belong in the control migration, in public", f)
		}
	}
	publicObjects := func() int {
		var n int
		if err := db.QueryRow(`SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public')
			+ (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public')
			+ (SELECT count(*) FROM pg_extension)`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := publicObjects()
	if err := r.All(ctx, []string{"t_keep", "t_gone"}, nil); err != nil {
		t.Fatal(err)
	}
	if after := publicObjects(); after != before {
		t.Fatalf("tenant migrations changed public/extensions: %d objects before, %d after", before, after)
	}
	countObjects := func(schema string) int {
		var n int
		if err := db.QueryRow(`SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1)
			+ (SELECT count(*) FROM pg_constraint k JOIN pg_namespace n ON n.oid = k.connamespace WHERE n.nspname = $1)`, schema).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	keep := countObjects("t_keep")
	if keep == 0 || keep != countObjects("t_gone") {
		t.Fatalf("the two schemas differ: %d vs %d objects", keep, countObjects("t_gone"))
	}
	if _, err := db.Exec("DROP SCHEMA t_gone CASCADE"); err != nil {
		t.Fatal(err)
	}
	if got := countObjects("t_keep"); got != keep {
		t.Fatalf("dropping t_gone removed %d objects of t_keep", keep-got)
	}
	want := int64(len(files))
	if v := version(t, r, db, "t_keep"); v < want {
		t.Fatalf("t_keep at version %d, want at least %d", v, want)
	}
}

// TestAllCancelled: a cancelled run reports the cancellation and a rerun
// completes what it left.
func TestAllCancelled(t *testing.T) {
	db := openDB(t, dbURL)
	var schemas []string
	for i := range 8 {
		schemas = append(schemas, fmt.Sprintf("t_cancel_%d", i))
	}
	r := newRunner(t, dbURL, nil, slowTree(), 1)
	ctx, cancel := context.WithCancel(context.Background())
	var log progressLog
	stop := func(done, total int, res migrations.Result) {
		log.fn(done, total, res)
		if done == 2 {
			cancel()
		}
	}
	err := r.All(ctx, schemas, stop)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled All returned %v", err)
	}
	if err := r.All(context.Background(), schemas, nil); err != nil {
		t.Fatal(err)
	}
	for _, s := range schemas {
		if vs := appliedVersions(t, db, s); len(vs) != 3 || vs[1] != 1 || vs[2] != 1 || vs[3] != 1 {
			t.Errorf("%s: applied versions %v after cancel and rerun", s, vs)
		}
	}
}
