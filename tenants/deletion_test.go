package tenants_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"marquee/app"
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

// TestDeletionOfAMovedChainLeavesNothing: a chain moved to the second
// server and back (its source kept there and here as "<schema>__moved_…"),
// with a dead move's copy left on the second, and files in object storage,
// is deleted: no schema of it remains on either server and none of its
// files. Another chain whose schema looks like one of its backups (slug
// "<slug>--moved-1" is schema "<schema>__moved_1"), itself moved, keeps its
// schema, its backup, its files and its service.
func TestDeletionOfAMovedChainLeavesNothing(t *testing.T) {
	env := startTwoServers(t)
	ctx := context.Background()
	a := env.TenantOn(t, apptest.UniqueSlug("delmv"), tenants.DefaultServer)
	b := env.TenantOn(t, a.Slug+"--moved-1", tenants.DefaultServer)
	if b.Schema != a.Schema+"__moved_1" {
		t.Fatalf("the look-alike chain's schema is %s", b.Schema)
	}
	store, err := app.NewObjectStore(apptest.Config(dbURL))
	if err != nil {
		t.Fatal(err)
	}
	keys := []string{"booking/contracts/1.pdf", "ops/incidents/2/photo.jpg", "top.txt"}
	for _, tn := range []tenants.Tenant{a, b} {
		for _, k := range keys {
			if _, err := store.For(tn).Put(ctx, k, "text/plain", strings.NewReader(tn.Slug)); err != nil {
				t.Fatal(err)
			}
		}
	}
	move := func(slug, to string) string {
		t.Helper()
		rep, err := env.App.MoveTenant(ctx, slug, to, "test", "before deletion", tenants.MoveOptions{})
		if err != nil {
			t.Fatalf("move %s to %s: %v", slug, to, err)
		}
		return rep.Backup
	}
	backups := []string{move(a.Slug, apptest.SecondServer), move(a.Slug, tenants.DefaultServer)}
	bBackup := move(b.Slug, apptest.SecondServer)
	if !schemaOn(t, env, tenants.DefaultServer, backups[0]) || !schemaOn(t, env, apptest.SecondServer, backups[1]) {
		t.Fatalf("the moves left no backups %v", backups)
	}
	// A dead move's copy on the second server, under the schema's name.
	second, _ := env.App.Servers.Get(apptest.SecondServer)
	if _, err := second.SQL.Exec("CREATE SCHEMA " + a.Schema + "; CREATE TABLE " + a.Schema + ".leftover (id int)"); err != nil {
		t.Fatal(err)
	}
	tokB := env.Login(t, b.Slug, "owner@"+b.Slug+".test")

	who := tenants.Change{Actor: "support:test", Reason: "the chain closed its account"}
	if _, err := env.App.Tenants.RequestDeletion(ctx, a.Slug, 24*time.Hour, who); err != nil {
		t.Fatal(err)
	}
	if err := env.App.DB.Exec("UPDATE control.tenants SET delete_after = now() - interval '1 minute' WHERE slug = ?", a.Slug).Error; err != nil {
		t.Fatal(err)
	}
	if err := env.App.CompleteTenantDeletion(ctx, a.Slug, who); err != nil {
		t.Fatal(err)
	}

	for _, server := range []string{tenants.DefaultServer, apptest.SecondServer} {
		sv, _ := env.App.Servers.Get(server)
		rows, err := sv.SQL.Query("SELECT nspname FROM pg_namespace WHERE nspname LIKE $1 ORDER BY nspname", a.Schema+"%")
		if err != nil {
			t.Fatal(err)
		}
		var left []string
		for rows.Next() {
			var n string
			_ = rows.Scan(&n)
			left = append(left, n)
		}
		rows.Close()
		// Only the look-alike chain's schemas: itself on the second
		// server, its backup on the first.
		want := map[string]string{tenants.DefaultServer: bBackup, apptest.SecondServer: b.Schema}[server]
		if len(left) != 1 || left[0] != want {
			t.Fatalf("on %s after the deletion: %v, want only %s", server, left, want)
		}
	}
	for _, k := range keys {
		if _, _, err := store.For(a).Get(ctx, k); !errors.Is(err, app.ErrObjectNotFound) {
			t.Fatalf("the deleted chain's %s: %v", k, err)
		}
		rc, _, err := store.For(b).Get(ctx, k)
		if err != nil {
			t.Fatalf("the other chain's %s: %v", k, err)
		}
		_ = rc.Close()
	}
	if res := env.Do(t, http.MethodGet, b.Slug, "/api/v1/me", tokB, nil); res.Status != http.StatusOK {
		t.Fatalf("the other chain stopped being served: %d", res.Status)
	}
	var detail string
	if err := env.App.DB.Raw("SELECT detail FROM control.platform_audit WHERE tenant_id = ? AND action = 'tenant.delete.complete'", a.ID).Scan(&detail).Error; err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{backups[0], backups[1], apptest.SecondServer + ":" + a.Schema, "files removed"} {
		if !strings.Contains(detail, want) {
			t.Fatalf("the deletion's audit %q does not name %s", detail, want)
		}
	}
}
