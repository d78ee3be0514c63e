package migrations_test

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"testing"
	"time"

	"marquee/app/apptest"
	"marquee/migrations"
)

// TestMeasureTenantMigrations times migrating 200 fresh tenant schemas with
// the real tenant tree, sequentially and 4 at a time. Run it with
// MARQUEE_MEASURE=1 go test -run Measure -v ./migrations/
func TestMeasureTenantMigrations(t *testing.T) {
	if os.Getenv("MARQUEE_MEASURE") != "1" {
		t.Skip("set MARQUEE_MEASURE=1 to measure")
	}
	const n = 200
	ctx := context.Background()
	url, drop, err := apptest.Database("migrations_measure")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(drop)
	db := openDB(t, url)
	base, err := migrations.NewRunner(url, migrations.ControlFS(), migrations.TenantFS(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := base.Control(ctx); err != nil {
		t.Fatal(err)
	}
	elapsed := map[int]time.Duration{}
	for _, parallel := range []int{1, 4} {
		r, err := migrations.NewRunner(url, migrations.ControlFS(), migrations.TenantFS(), parallel)
		if err != nil {
			t.Fatal(err)
		}
		schemas := make([]string, n)
		for i := range schemas {
			schemas[i] = fmt.Sprintf("t_p%d_%03d", parallel, i)
		}
		var sum time.Duration
		applied := 0
		start := time.Now()
		err = r.All(ctx, schemas, func(done, total int, res migrations.Result) {
			sum += res.Duration
			applied += res.Applied
		})
		elapsed[parallel] = time.Since(start)
		if err != nil {
			t.Fatal(err)
		}
		files, err := fs.Glob(migrations.TenantFS(), "*.sql")
		if err != nil || len(files) == 0 {
			t.Fatalf("tenant migrations: %v %v", files, err)
		}
		if v, err := r.Version(ctx, db, schemas[n-1]); err != nil || v < 1 {
			t.Fatalf("last schema at version %d: %v", v, err)
		}
		if applied != n*len(files) {
			t.Fatalf("applied %d migrations, want %d", applied, n*len(files))
		}
		t.Logf("parallel %d: %d schemas × %d migrations in %v: %v per schema wall-clock, %v mean per-schema duration",
			parallel, n, len(files), elapsed[parallel].Round(time.Millisecond),
			(elapsed[parallel] / n).Round(time.Microsecond), (sum / n).Round(time.Microsecond))
	}
	t.Logf("speed-up parallel 4 vs 1: %.2f×", float64(elapsed[1])/float64(elapsed[4]))
}
