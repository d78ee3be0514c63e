package tenants_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"marquee/app/apptest"
	"marquee/tenants"
)

// TestDeletionTakesTwoStepsAndTouchesOneTenant: asking stops serving the
// chain at once and can be taken back; the deletion itself is refused until
// its delay has passed, happens once however many run it at the same time,
// drops only that chain's schema, rules and sessions (not those of a chain
// whose slug starts the same), keeps a tombstone and the audit trail, and
// never lets the slug be taken again or the schema be migrated back.
func TestDeletionTakesTwoStepsAndTouchesOneTenant(t *testing.T) {
	env := apptest.Start(t, dbURL, apptest.Options{})
	ctx := context.Background()
	reg := env.App.Tenants
	a := env.Tenant(t, apptest.UniqueSlug("del"))
	b := env.Tenant(t, a.Slug+"-x")
	tokA := env.Login(t, a.Slug, "owner@"+a.Slug+".test")
	tokB := env.Login(t, b.Slug, "owner@"+b.Slug+".test")
	who := tenants.Change{Actor: "support:test", Reason: "the chain closed its account"}

	if _, err := reg.RequestDeletion(ctx, a.Slug, time.Hour, who); err == nil {
		t.Fatal("a deletion sooner than the minimum delay was accepted")
	}
	if _, err := reg.RequestDeletion(ctx, a.Slug, 48*time.Hour, tenants.Change{Actor: "x"}); err == nil {
		t.Fatal("a deletion without a reason was accepted")
	}
	due, err := reg.RequestDeletion(ctx, a.Slug, 48*time.Hour, who)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Until(due); d < 47*time.Hour || d > 49*time.Hour {
		t.Fatalf("due in %v, want 48h", d)
	}
	if res := env.Do(t, http.MethodGet, a.Slug, "/api/v1/me", tokA, nil); res.Status == http.StatusOK {
		t.Fatal("a chain scheduled for deletion is still served")
	}
	if err := env.App.CompleteTenantDeletion(ctx, a.Slug, who); !errors.Is(err, tenants.ErrDeletionNotDue) {
		t.Fatalf("completion before the delay: %v", err)
	}
	if err := reg.CancelDeletion(ctx, a.Slug, who); err != nil {
		t.Fatal(err)
	}
	if got, _ := reg.Lookup(ctx, a.Slug); got.Status != tenants.StatusSuspended {
		t.Fatalf("after cancelling: %s", got.Status)
	}
	if err := reg.CancelDeletion(ctx, a.Slug, who); !errors.Is(err, tenants.ErrNotDeleting) {
		t.Fatalf("cancelling twice: %v", err)
	}
	if _, err := reg.RequestDeletion(ctx, a.Slug, 24*time.Hour, who); err != nil {
		t.Fatal(err)
	}
	// The delay passes.
	if err := env.App.DB.Exec("UPDATE control.tenants SET delete_after = now() - interval '1 minute' WHERE slug = ?", a.Slug).Error; err != nil {
		t.Fatal(err)
	}

	var wg sync.WaitGroup
	errs := make([]error, 6)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = env.App.CompleteTenantDeletion(ctx, a.Slug, who)
		}()
	}
	wg.Wait()
	done := 0
	for _, err := range errs {
		switch {
		case err == nil:
			done++
		case !errors.Is(err, tenants.ErrNotDeleting):
			t.Fatalf("concurrent completion: %v", err)
		}
	}
	if done != 1 {
		t.Fatalf("%d completions succeeded, want exactly 1", done)
	}

	if schemaExists(t, env, a.Schema) || !schemaExists(t, env, b.Schema) {
		t.Fatalf("after deletion: schema %s exists=%v, %s exists=%v", a.Schema, schemaExists(t, env, a.Schema), b.Schema, schemaExists(t, env, b.Schema))
	}
	count := func(q string, args ...any) int64 {
		var n int64
		if err := env.App.DB.Raw(q, args...).Scan(&n).Error; err != nil {
			t.Fatal(err)
		}
		return n
	}
	rules := "SELECT count(*) FROM control.casbin_rule WHERE split_part(v1, '/', 1) = ? OR split_part(v2, '/', 1) = ?"
	if n := count(rules, a.Slug, a.Slug); n != 0 {
		t.Fatalf("%d rules of the deleted chain remain", n)
	}
	if n := count(rules, b.Slug, b.Slug); n < 10 {
		t.Fatalf("the other chain lost its rules: %d left", n)
	}
	if n := count("SELECT count(*) FROM control.sessions WHERE tenant_id = ?", a.ID); n != 0 {
		t.Fatalf("%d sessions of the deleted chain remain", n)
	}
	if res := env.Do(t, http.MethodGet, b.Slug, "/api/v1/me", tokB, nil); res.Status != http.StatusOK {
		t.Fatalf("the other chain stopped being served: %d", res.Status)
	}
	if res := env.Do(t, http.MethodGet, a.Slug, "/api/v1/me", tokA, nil); res.Status == http.StatusOK {
		t.Fatal("the deleted chain answers")
	}

	got, err := reg.Lookup(ctx, a.Slug)
	if err != nil || got.Status != tenants.StatusDeleted || got.Name != "(deleted)" || got.OwnerEmail != "" {
		t.Fatalf("tombstone: %+v %v", got, err)
	}
	if _, err := reg.Create(ctx, a.Slug, "Someone Else"); !errors.Is(err, tenants.ErrExists) {
		t.Fatalf("the slug of a deleted chain was handed out again: %v", err)
	}
	placed, err := reg.Schemas(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range placed {
		if p.Schema == a.Schema {
			t.Fatal("migrations would create the deleted chain's schema again")
		}
	}
	hist, err := reg.History(ctx, a.ID, 20)
	if err != nil {
		t.Fatal(err)
	}
	var steps []string
	for _, h := range hist {
		steps = append(steps, string(h.To))
	}
	if len(steps) < 4 || strings.Join(steps[:4], ",") != "deleted,deleting,suspended,deleting" {
		t.Fatalf("status history (newest first): %v", steps)
	}
	if n := count("SELECT count(*) FROM control.platform_audit WHERE tenant_id = ? AND action LIKE 'tenant.delete.%'", a.ID); n != 4 {
		t.Fatalf("%d audit rows for the deletion, want 4 (request, cancel, request, complete); history %v", n, steps)
	}
}
