package tenants_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"gorm.io/gorm"

	"marquee/app/apptest"
	"marquee/config"
	"marquee/migrations"
	"marquee/tenants"
)

// startTwoServers starts an App whose tenants may live on the test server
// or on a second PostgreSQL server (apptest.SecondServer).
func startTwoServers(t *testing.T) *apptest.Env {
	t.Helper()
	second := apptest.SecondDatabase(t, "tenants_"+strings.ToLower(t.Name()))
	return apptest.Start(t, dbURL, apptest.Options{Configure: func(c *config.Config) {
		c.DatabaseServers = map[string]string{apptest.SecondServer: second}
	}})
}

func schemaOn(t *testing.T, env *apptest.Env, server, schema string) bool {
	t.Helper()
	sv, err := env.App.Servers.Get(server)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := sv.SQL.QueryRow("SELECT count(*) FROM pg_namespace WHERE nspname = $1", schema).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n == 1
}

// TestPlacementIsolation places tenant A on the first server and B on the
// second, then plants a decoy copy of each tenant's schema, with a poison
// user, on the server it does not live on. Every request and transaction
// for A must answer from A's server (never the poison), and likewise for B:
// a request for A never reaches server B.
func TestPlacementIsolation(t *testing.T) {
	env := startTwoServers(t)
	ctx := context.Background()
	a := env.TenantOn(t, apptest.UniqueSlug("placed-a"), tenants.DefaultServer)
	b := env.TenantOn(t, apptest.UniqueSlug("placed-b"), apptest.SecondServer)
	for _, c := range []struct {
		tn         tenants.Tenant
		home, away string
	}{{a, tenants.DefaultServer, apptest.SecondServer}, {b, apptest.SecondServer, tenants.DefaultServer}} {
		got, err := env.App.Tenants.Lookup(ctx, c.tn.Slug)
		if err != nil || got.Server != c.home {
			t.Fatalf("registry places %s on %q (%v), want %s", c.tn.Slug, got.Server, err, c.home)
		}
		if !schemaOn(t, env, c.home, c.tn.Schema) || schemaOn(t, env, c.away, c.tn.Schema) {
			t.Fatalf("schema %s: on %s %v, on %s %v; want only on %s", c.tn.Schema, c.home, schemaOn(t, env, c.home, c.tn.Schema),
				c.away, schemaOn(t, env, c.away, c.tn.Schema), c.home)
		}
		// The door refuses a transaction on a server without the schema
		// rather than reading public's tables (or nothing) there.
		away, _ := env.App.Servers.Get(c.away)
		err = tenants.Tx(ctx, away.DB, c.tn, func(tx *gorm.DB) error { return tx.Exec("SELECT 1").Error })
		if err == nil || !strings.Contains(err.Error(), "does not exist") {
			t.Fatalf("a transaction of %s on %s: %v, want the schema refused", c.tn.Slug, c.away, err)
		}
	}
	env.User(t, a, "staff@"+a.Slug+".test", "chain_admin", "")
	env.User(t, b, "staff@"+b.Slug+".test", "chain_admin", "")

	// Decoys: each tenant's schema, migrated, on the other server, holding a
	// user no request may ever see.
	for _, c := range []struct {
		tn   tenants.Tenant
		away string
	}{{a, apptest.SecondServer}, {b, tenants.DefaultServer}} {
		if _, err := env.App.Migrator.SchemaOn(ctx, c.away, c.tn.Schema); err != nil {
			t.Fatal(err)
		}
		away, _ := env.App.Servers.Get(c.away)
		if _, err := away.SQL.Exec("INSERT INTO " + pgx.Identifier{c.tn.Schema, "users"}.Sanitize() +
			" (id, email, name, password_hash) VALUES (gen_random_uuid(), 'poison@wrong.server', 'Poison', 'x')"); err != nil {
			t.Fatal(err)
		}
	}

	for _, tn := range []tenants.Tenant{a, b} {
		tok := env.Login(t, tn.Slug, "staff@"+tn.Slug+".test")
		for range 20 { // over many pooled connections
			res := env.Do(t, http.MethodGet, tn.Slug, "/api/v1/users?limit=200", tok, nil)
			if res.Status != http.StatusOK {
				t.Fatalf("users of %s: %d %s", tn.Slug, res.Status, res.Body)
			}
			if strings.Contains(string(res.Body), "poison@wrong.server") || !strings.Contains(string(res.Body), "staff@"+tn.Slug) {
				t.Fatalf("users of %s answered from the wrong server: %s", tn.Slug, res.Body)
			}
		}
		err := env.App.PgxTx(ctx, tn, tenants.TxOptions{ReadOnly: true}, func(tx *tenants.Pgx) error {
			var n int
			if err := tx.QueryRow("SELECT count(*) FROM users WHERE email = 'poison@wrong.server'").Scan(&n); err != nil {
				return err
			}
			if n != 0 {
				t.Errorf("PgxTx of %s reached the decoy", tn.Slug)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// Signing in as the poison user fails everywhere: it exists only where
	// no tenant lives.
	for _, tn := range []tenants.Tenant{a, b} {
		res := env.Do(t, http.MethodPost, tn.Slug, "/api/v1/auth/login", "", map[string]string{"email": "poison@wrong.server", "password": "x"})
		if res.Status == http.StatusOK {
			t.Fatalf("the decoy user signed in to %s", tn.Slug)
		}
	}
}

// New tenants go to the server with the fewest tenants; a named server wins;
// an unknown one is refused; migrations reach every server.
func TestPlacementChoosesFewest(t *testing.T) {
	env := startTwoServers(t)
	ctx := context.Background()
	for range 3 {
		counts, err := env.App.Tenants.ServerCounts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := tenants.DefaultServer
		if counts[apptest.SecondServer] < counts[tenants.DefaultServer] {
			want = apptest.SecondServer
		}
		tn := env.Tenant(t, apptest.UniqueSlug("fewest"))
		if tn.Server != want {
			t.Fatalf("with %v, a new tenant went to %s, want %s", counts, tn.Server, want)
		}
	}
	if _, err := env.App.Tenants.CreateOn(ctx, apptest.UniqueSlug("nowhere"), "", "third"); err == nil {
		t.Fatal("a tenant was created on an unconfigured server")
	}
	tn := env.TenantOn(t, apptest.UniqueSlug("named"), apptest.SecondServer)
	if tn.Server != apptest.SecondServer {
		t.Fatalf("named server ignored: %s", tn.Server)
	}
	// A rerun of all migrations finds every schema, on both servers, at the
	// latest version.
	var seen []string
	err := env.App.MigrateAll(ctx, func(_, _ int, r migrations.Result) {
		if r.Err != nil {
			t.Errorf("migrate %s: %v", r.Schema, r.Err)
		}
		seen = append(seen, r.Schema)
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(seen, " "), tn.Schema) {
		t.Fatalf("migrate skipped %s on the second server: %v", tn.Schema, seen)
	}
	second, _ := env.App.Servers.Get(apptest.SecondServer)
	v, err := env.App.Migrator.Version(ctx, second.SQL, tn.Schema)
	if err != nil || v == 0 {
		t.Fatalf("version of %s on the second server: %d, %v", tn.Schema, v, err)
	}
}
