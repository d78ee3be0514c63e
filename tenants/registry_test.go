package tenants_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"marquee/app/apptest"
	"marquee/migrations"
	"marquee/policies"
	"marquee/tenants"
)

func schemaExists(t *testing.T, env *apptest.Env, schema string) bool {
	t.Helper()
	var n int64
	if err := env.App.DB.Raw("SELECT count(*) FROM pg_namespace WHERE nspname = ?", schema).Scan(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n == 1
}

func tableExists(t *testing.T, env *apptest.Env, schema, table string) bool {
	t.Helper()
	var reg *string
	if err := env.App.DB.Raw("SELECT to_regclass(?)::text", schema+"."+table).Scan(&reg).Error; err != nil {
		t.Fatal(err)
	}
	return reg != nil
}

func TestCreate(t *testing.T) {
	env := apptest.Start(t, dbURL, apptest.Options{})
	ctx := context.Background()
	reg := env.App.Tenants
	slug := apptest.UniqueSlug("create")

	tn, err := reg.Create(ctx, slug, "Create Chain")
	if err != nil {
		t.Fatal(err)
	}
	want, _ := tenants.SchemaName(slug)
	if tn.Status != tenants.StatusActive || tn.Schema != want || tn.Slug != slug || tn.Name != "Create Chain" || tn.ID == uuid.Nil {
		t.Fatalf("Create returned %+v", tn)
	}
	if !schemaExists(t, env, want) || !tableExists(t, env, want, "users") || !tableExists(t, env, want, "goose_db_version") {
		t.Fatalf("schema %s not created and migrated", want)
	}
	got, err := reg.Active(ctx, slug)
	if err != nil || got.ID != tn.ID || got.Status != tenants.StatusActive {
		t.Fatalf("Active after Create: %+v, %v", got, err)
	}
	if byID, err := reg.ByID(ctx, tn.ID); err != nil || byID.Slug != slug {
		t.Fatalf("ByID: %+v, %v", byID, err)
	}
	// The provisioners ran before the tenant became active: default grants.
	if ok, err := env.App.Enforcer.Allowed(policies.RoleChainAdmin, policies.ChainDomain(slug), "users", policies.Write); err != nil || !ok {
		t.Fatalf("default grants not installed for %s: %v %v", slug, ok, err)
	}
	schemas, err := reg.Schemas(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, s := range schemas {
		found = found || s == (migrations.Placed{Server: tenants.DefaultServer, Schema: want})
	}
	if !found {
		t.Fatalf("Schemas() = %v, missing %s", schemas, want)
	}

	// Same slug again: ErrExists, and the tenant is untouched.
	again, err := reg.Create(ctx, slug, "Other Name")
	if !errors.Is(err, tenants.ErrExists) {
		t.Fatalf("second Create: %v, want ErrExists", err)
	}
	if again.ID != tn.ID {
		t.Fatalf("second Create returned a different tenant %+v", again)
	}
	if cur, _ := reg.ByID(ctx, tn.ID); cur.Name != "Create Chain" {
		t.Fatalf("second Create renamed the tenant to %q", cur.Name)
	}

	// Invalid slugs create nothing.
	for _, bad := range []string{"A", "a_b", "-x", "acme'; drop schema x;--", ""} {
		if _, err := reg.Create(ctx, bad, ""); !errors.Is(err, tenants.ErrInvalidSlug) {
			t.Errorf("Create(%q) = %v, want ErrInvalidSlug", bad, err)
		}
	}
	var n int64
	env.App.DB.Raw("SELECT count(*) FROM control.tenants WHERE slug !~ '^[a-z][a-z0-9-]{1,38}$'").Scan(&n)
	if n != 0 {
		t.Fatalf("%d invalid tenants stored", n)
	}
	if _, err := reg.Lookup(ctx, apptest.UniqueSlug("nobody")); !errors.Is(err, tenants.ErrNotFound) {
		t.Fatalf("Lookup of unknown tenant: %v", err)
	}
}

// TestCreateConcurrentSameSlug: many simultaneous Creates of one slug give
// one tenant, one success, and ErrExists for every other caller.
func TestCreateConcurrentSameSlug(t *testing.T) {
	env := apptest.Start(t, dbURL, apptest.Options{})
	ctx := context.Background()
	slug := apptest.UniqueSlug("race")
	const n = 8
	var (
		wg      sync.WaitGroup
		ok      atomic.Int64
		exists  atomic.Int64
		otherMu sync.Mutex
		others  []error
	)
	start := make(chan struct{})
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, err := env.App.Tenants.Create(ctx, slug, "")
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, tenants.ErrExists):
				exists.Add(1)
			default:
				otherMu.Lock()
				others = append(others, err)
				otherMu.Unlock()
			}
		}()
	}
	close(start)
	wg.Wait()
	if ok.Load() != 1 || exists.Load() != n-1 || len(others) > 0 {
		t.Fatalf("%d concurrent Creates of one slug: %d succeeded, %d ErrExists, other errors %v; want 1 and %d",
			n, ok.Load(), exists.Load(), others, n-1)
	}
	if tn, err := env.App.Tenants.Active(ctx, slug); err != nil || tn.Status != tenants.StatusActive {
		t.Fatalf("tenant after race: %+v %v", tn, err)
	}
}

// TestCreateManyOverSmallPool: distinct tenants created at once by an App
// whose pool has two connections all come up (creation's lock does not hold
// a pooled connection, so it cannot starve the work it waits for).
func TestCreateManyOverSmallPool(t *testing.T) {
	env := apptest.Start(t, dbURL, apptest.Options{DBMaxConns: 2})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const n = 6
	errs := make([]error, n)
	slugs := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		slugs[i] = apptest.UniqueSlug("many")
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = env.App.Tenants.Create(ctx, slugs[i], "")
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Create %s: %v", slugs[i], err)
			continue
		}
		if _, err := env.App.Tenants.Active(ctx, slugs[i]); err != nil {
			t.Errorf("%s not active: %v", slugs[i], err)
		}
	}
}

func TestSuspendResume(t *testing.T) {
	env := apptest.Start(t, dbURL, apptest.Options{})
	ctx := context.Background()
	reg := env.App.Tenants
	tn, err := reg.Create(ctx, apptest.UniqueSlug("susp"), "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Active(ctx, tn.Slug); err != nil {
		t.Fatal(err)
	}
	if err := reg.Suspend(ctx, tn.Slug); err != nil {
		t.Fatal(err)
	}
	got, err := reg.Active(ctx, tn.Slug)
	if !errors.Is(err, tenants.ErrSuspended) || got.Status != tenants.StatusSuspended {
		t.Fatalf("Active after Suspend: %+v %v", got, err)
	}
	if err := reg.Suspend(ctx, tn.Slug); err != nil {
		t.Fatalf("Suspend is not idempotent: %v", err)
	}
	active, err := reg.ListActive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range active {
		if a.Slug == tn.Slug {
			t.Fatalf("suspended tenant listed as active")
		}
	}
	if err := reg.Resume(ctx, tn.Slug); err != nil {
		t.Fatal(err)
	}
	if got, err := reg.Active(ctx, tn.Slug); err != nil || got.Status != tenants.StatusActive {
		t.Fatalf("Active after Resume: %+v %v", got, err)
	}
	if err := reg.Suspend(ctx, apptest.UniqueSlug("nobody")); !errors.Is(err, tenants.ErrNotFound) {
		t.Fatalf("Suspend of unknown tenant: %v", err)
	}
	if err := reg.Suspend(ctx, "Bad_Slug"); !errors.Is(err, tenants.ErrInvalidSlug) {
		t.Fatalf("Suspend of invalid slug: %v", err)
	}
}

// TestStatusChangeReachesOtherInstance: two Apps on one database are two
// server instances; a suspension on one is refused by the other within a
// second, far below the cache TTL.
func TestStatusChangeReachesOtherInstance(t *testing.T) {
	a := apptest.Start(t, dbURL, apptest.Options{})
	b := apptest.Start(t, dbURL, apptest.Options{})
	ctx := context.Background()
	tn, err := a.App.Tenants.Create(ctx, apptest.UniqueSlug("xinst"), "")
	if err != nil {
		t.Fatal(err)
	}
	// Warm b's cache with the active tenant.
	if _, err := b.App.Tenants.Active(ctx, tn.Slug); err != nil {
		t.Fatal(err)
	}
	if err := a.App.Tenants.Suspend(ctx, tn.Slug); err != nil {
		t.Fatal(err)
	}
	took := apptest.Eventually(t, time.Second, "suspension seen by the other instance", func() bool {
		_, err := b.App.Tenants.Active(ctx, tn.Slug)
		return errors.Is(err, tenants.ErrSuspended)
	})
	t.Logf("suspension reached the other instance in %v", took)
	if err := a.App.Tenants.Resume(ctx, tn.Slug); err != nil {
		t.Fatal(err)
	}
	apptest.Eventually(t, time.Second, "resumption seen by the other instance", func() bool {
		_, err := b.App.Tenants.Active(ctx, tn.Slug)
		return err == nil
	})
}

// TestCacheNotStaleUnderLoad: while another instance keeps looking the
// tenant up from many goroutines, status flips must never leave it serving a
// stale status: a lookup that read the old row before the change committed
// must not store it after the change's invalidation arrived.
func TestCacheNotStaleUnderLoad(t *testing.T) {
	a := apptest.Start(t, dbURL, apptest.Options{})
	b := apptest.Start(t, dbURL, apptest.Options{})
	ctx := context.Background()
	tn, err := a.App.Tenants.Create(ctx, apptest.UniqueSlug("stale"), "")
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				_, _ = b.App.Tenants.Lookup(ctx, tn.Slug)
			}
		}()
	}
	for round := range 40 {
		if err := a.App.Tenants.Suspend(ctx, tn.Slug); err != nil {
			t.Fatal(err)
		}
		if err := a.App.Tenants.Resume(ctx, tn.Slug); err != nil {
			t.Fatal(err)
		}
		want := tenants.StatusActive
		if round%2 == 1 {
			if err := a.App.Tenants.Suspend(ctx, tn.Slug); err != nil {
				t.Fatal(err)
			}
			want = tenants.StatusSuspended
		}
		var got tenants.Tenant
		reached := func() bool {
			var err error
			if got, err = b.App.Tenants.Lookup(ctx, tn.Slug); err != nil {
				t.Fatal(err)
			}
			return got.Status == want
		}
		if !apptest.Poll(time.Second, reached) {
			close(stop)
			wg.Wait()
			t.Fatalf("round %d: other instance still serves %s a second after the change to %s", round, got.Status, want)
		}
	}
	close(stop)
	wg.Wait()
}

// TestCreateResumesInterruptedProvisioning: a tenant row left in
// "provisioning" (the process died before its schema was made) is finished by
// the next Create of that slug, keeping its id.
func TestCreateResumesInterruptedProvisioning(t *testing.T) {
	env := apptest.Start(t, dbURL, apptest.Options{})
	ctx := context.Background()
	slug := apptest.UniqueSlug("halfway")
	schema, _ := tenants.SchemaName(slug)
	id := uuid.Must(uuid.NewV7())
	if err := env.App.DB.Exec("INSERT INTO control.tenants (id, slug, name, schema_name, status) VALUES (?, ?, ?, ?, 'provisioning')",
		id, slug, "Halfway", schema).Error; err != nil {
		t.Fatal(err)
	}
	if schemaExists(t, env, schema) {
		t.Fatalf("schema %s exists before the test", schema)
	}
	if _, err := env.App.Tenants.Active(ctx, slug); !errors.Is(err, tenants.ErrNotActive) {
		t.Fatalf("a provisioning tenant is served: %v", err)
	}
	tn, err := env.App.Tenants.Create(ctx, slug, "Ignored")
	if err != nil {
		t.Fatalf("resume provisioning: %v", err)
	}
	if tn.ID != id || tn.Status != tenants.StatusActive || tn.Schema != schema {
		t.Fatalf("resumed tenant %+v, want id %s active in %s", tn, id, schema)
	}
	if !tableExists(t, env, schema, "users") || !tableExists(t, env, schema, "ledger_entries") {
		t.Fatalf("schema %s not migrated", schema)
	}
	if ok, _ := env.App.Enforcer.Allowed(policies.RoleFinance, policies.ChainDomain(slug), "ledger", policies.Read); !ok {
		t.Fatal("provisioners did not run on resume")
	}
	if got, err := env.App.Tenants.Active(ctx, slug); err != nil || got.ID != id {
		t.Fatalf("Active after resume: %+v %v", got, err)
	}
	var n int64
	env.App.DB.Raw("SELECT count(*) FROM control.tenants WHERE slug = ?", slug).Scan(&n)
	if n != 1 {
		t.Fatalf("%d rows for %s", n, slug)
	}
}
