package tenants_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/app/apptest"
	"marquee/tenants"
)

var errRollback = errors.New("deliberate rollback")

// TestTxIsolationOverSmallPool interleaves reads, writes, rollbacks and
// failing statements of two tenants from 64 goroutines over a pool of two
// connections, so every connection serves both tenants thousands of times.
// No tenant may ever see a row of the other, a rolled-back write must vanish,
// and the search_path set inside a Tx must never outlive it on the pool.
func TestTxIsolationOverSmallPool(t *testing.T) {
	env := apptest.Start(t, dbURL, apptest.Options{DBMaxConns: 2})
	if st := env.App.SQL.Stats(); st.MaxOpenConnections != 2 {
		t.Fatalf("pool allows %d connections, want 2", st.MaxOpenConnections)
	}
	ctx := context.Background()
	ts := []tenants.Tenant{env.Tenant(t, apptest.UniqueSlug("iso")), env.Tenant(t, apptest.UniqueSlug("iso"))}
	for _, tn := range ts {
		for i := range 2 {
			env.User(t, tn, fmt.Sprintf("seed%d@%s.test", i, tn.Slug), "", "")
		}
	}

	const (
		workers    = 64
		iterations = 40
	)
	var (
		failures  atomic.Int64
		committed [2]atomic.Int64
		ops       [2][4]atomic.Int64
		wg        sync.WaitGroup
	)
	fail := func(format string, args ...any) {
		if failures.Add(1) <= 20 {
			t.Errorf(format, args...)
		}
	}
	// ownRows checks, inside a Tx, that the scope is the tenant's and that
	// every visible user belongs to it.
	ownRows := func(tx *gorm.DB, tn tenants.Tenant) error {
		var scope struct {
			Schema string `gorm:"column:schema"`
			Path   string `gorm:"column:path"`
		}
		if err := tx.Raw("SELECT current_schema() AS schema, current_setting('search_path') AS path").Scan(&scope).Error; err != nil {
			return err
		}
		if scope.Schema != tn.Schema || !strings.Contains(scope.Path, tn.Schema) {
			fail("Tx of %s runs in schema %q (search_path %q)", tn.Slug, scope.Schema, scope.Path)
		}
		var emails []string
		if err := tx.Raw("SELECT email FROM users").Scan(&emails).Error; err != nil {
			return err
		}
		if len(emails) == 0 {
			fail("Tx of %s sees no users at all", tn.Slug)
		}
		for _, e := range emails {
			if !strings.HasSuffix(e, "@"+tn.Slug+".test") {
				fail("Tx of %s sees foreign row %q", tn.Slug, e)
			}
		}
		return nil
	}
	insert := func(tx *gorm.DB, email string) error {
		return tx.Exec("INSERT INTO users (id, email, name, password_hash) VALUES (?, ?, 'w', 'x')",
			uuid.Must(uuid.NewV7()), email).Error
	}

	for g := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range iterations {
				// Each worker cycles through the four operations and flips
				// tenant every four iterations: every (tenant, operation)
				// pair runs on both connections many times.
				k := (g + i/4) % 2
				tn := ts[k]
				op := (g/2 + i) % 4
				ops[k][op].Add(1)
				switch op {
				case 0: // read
					if err := tenants.Tx(ctx, env.App.DB, tn, func(tx *gorm.DB) error { return ownRows(tx, tn) }); err != nil {
						fail("read %s: %v", tn.Slug, err)
					}
				case 1: // write and commit
					err := tenants.Tx(ctx, env.App.DB, tn, func(tx *gorm.DB) error {
						if err := insert(tx, fmt.Sprintf("w-%d-%d@%s.test", g, i, tn.Slug)); err != nil {
							return err
						}
						return ownRows(tx, tn)
					})
					if err != nil {
						fail("write %s: %v", tn.Slug, err)
					} else {
						committed[k].Add(1)
					}
				case 2: // write, then fail in Go: rolled back
					err := tenants.Tx(ctx, env.App.DB, tn, func(tx *gorm.DB) error {
						if err := insert(tx, fmt.Sprintf("rb-%d-%d@%s.test", g, i, tn.Slug)); err != nil {
							return err
						}
						if err := ownRows(tx, tn); err != nil {
							return err
						}
						return errRollback
					})
					if !errors.Is(err, errRollback) {
						fail("rollback %s: got %v, want errRollback", tn.Slug, err)
					}
				case 3: // write, then a statement fails midway: transaction aborted
					err := tenants.Tx(ctx, env.App.DB, tn, func(tx *gorm.DB) error {
						if err := insert(tx, fmt.Sprintf("rb-%d-%d@%s.test", g, i, tn.Slug)); err != nil {
							return err
						}
						var x int
						return tx.Raw("SELECT 1 / (count(*) - count(*))::int FROM users").Scan(&x).Error
					})
					if err == nil || !strings.Contains(err.Error(), "division by zero") {
						fail("failing statement %s: got %v, want division by zero", tn.Slug, err)
					}
				}
				// Outside any Tx, the pooled connection is back to the default
				// search_path: no tenant schema, no tenant table.
				var plain struct {
					Path  string  `gorm:"column:path"`
					Users *string `gorm:"column:users"`
				}
				if err := env.App.DB.WithContext(ctx).Raw(
					"SELECT current_setting('search_path') AS path, to_regclass('users')::text AS users").Scan(&plain).Error; err != nil {
					fail("plain query: %v", err)
					continue
				}
				for _, other := range ts {
					if strings.Contains(plain.Path, other.Schema) {
						fail("search_path %q leaked onto the pool after a Tx of %s", plain.Path, tn.Slug)
					}
				}
				if plain.Users != nil {
					fail("a plain query resolves table users to %s after a Tx of %s", *plain.Users, tn.Slug)
				}
			}
		}()
	}
	wg.Wait()

	for k := range ops {
		for op := range ops[k] {
			if ops[k][op].Load() < 100 {
				t.Fatalf("operation %d ran only %d times for tenant %d", op, ops[k][op].Load(), k)
			}
		}
	}

	// Schema-qualified reads, outside any Tx: each schema holds exactly its
	// own seeds and committed writes, and none of the rolled-back ones.
	for k, tn := range ts {
		var emails []string
		if err := env.App.DB.Raw(fmt.Sprintf(`SELECT email FROM %q.users`, tn.Schema)).Scan(&emails).Error; err != nil {
			t.Fatal(err)
		}
		writes := 0
		for _, e := range emails {
			switch {
			case !strings.HasSuffix(e, "@"+tn.Slug+".test"):
				t.Errorf("schema %s holds foreign row %q", tn.Schema, e)
			case strings.HasPrefix(e, "rb-"):
				t.Errorf("schema %s holds rolled-back row %q", tn.Schema, e)
			case strings.HasPrefix(e, "w-"):
				writes++
			}
		}
		if int64(writes) != committed[k].Load() || writes == 0 {
			t.Errorf("schema %s has %d written rows, %d commits succeeded", tn.Schema, writes, committed[k].Load())
		}
	}
}

// TestTxRefusesUncheckedTenant: Tx and PgxTx never build a scope from a tenant whose
// slug is not valid or that has no schema.
func TestTxRefusesUncheckedTenant(t *testing.T) {
	env := apptest.Start(t, dbURL, apptest.Options{})
	ran := false
	fn := func(*gorm.DB) error { ran = true; return nil }
	for _, tn := range []tenants.Tenant{
		{Slug: "acme"},
		{Slug: `x"; drop schema public; --`, Schema: "t_x"},
		{Slug: "Acme", Schema: "t_acme"},
	} {
		if err := tenants.Tx(context.Background(), env.App.DB, tn, fn); err == nil {
			t.Errorf("Tx accepted tenant %+v", tn)
		}
		if err := env.App.PgxTx(context.Background(), tn, tenants.TxOptions{}, func(*tenants.Pgx) error { ran = true; return nil }); err == nil {
			t.Errorf("PgxTx accepted tenant %+v", tn)
		}
	}
	if ran {
		t.Fatal("fn ran for an unchecked tenant")
	}
}
