package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/app/apptest"
	"marquee/config"
	"marquee/modules"
	"marquee/tenants"
)

// fingerprint is every table of a tenant's schema on its server, as a
// digest of all its rows: equal fingerprints are equal data.
func fingerprint(t *testing.T, env *apptest.Env, tn tenants.Tenant) map[string]string {
	t.Helper()
	// Ledger entries are chained after their commit (by the process's
	// sealer, a second later at most): chained now, the rows compared are
	// final and nothing changes them behind the test's back.
	if _, err := env.App.Ledger.Seal(t.Context(), tn); err != nil {
		t.Fatal(err)
	}
	sv, err := env.App.Servers.For(tn)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := sv.SQL.Query(`SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relkind = 'r'`, tn.Schema)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var n string
		_ = rows.Scan(&n)
		tables = append(tables, n)
	}
	rows.Close()
	out := map[string]string{}
	for _, tb := range tables {
		var n int64
		var digest *string
		q := fmt.Sprintf("SELECT count(*), md5(string_agg(r::text, '|' ORDER BY r::text)) FROM %s r", pgx.Identifier{tn.Schema, tb}.Sanitize())
		if err := sv.SQL.QueryRow(q).Scan(&n, &digest); err != nil {
			t.Fatal(err)
		}
		d := ""
		if digest != nil {
			d = *digest
		}
		out[tb] = fmt.Sprintf("%d rows %s", n, d)
	}
	return out
}

// answers reads a tenant's API as its owner: staff, venues, the public
// catalogue, each on-sale event's inventory, offers, the ledger and its
// verification.
func answers(t *testing.T, env *apptest.Env, slug, token string) map[string]string {
	t.Helper()
	out := map[string]string{}
	get := func(path string) []byte {
		res := env.Do(t, http.MethodGet, slug, path, token, nil)
		if res.Status != http.StatusOK {
			t.Fatalf("GET %s on %s: %d %s", path, slug, res.Status, res.Body)
		}
		out[path] = string(res.Body)
		return res.Body
	}
	for _, p := range []string{"/api/v1/users?limit=200", "/api/v1/venues", "/api/v1/bookings", "/api/v1/ledger?limit=200", "/api/v1/ledger/verify"} {
		get(p)
	}
	var events struct {
		Items []struct {
			ID string `json:"id"`
		} `json:"items"`
	}
	if err := json.Unmarshal(get("/api/v1/events?limit=200"), &events); err != nil {
		t.Fatal(err)
	}
	for _, e := range events.Items {
		get("/api/v1/events/" + e.ID + "/inventory")
	}
	return out
}

func diff(t *testing.T, what string, before, after map[string]string) {
	t.Helper()
	keys := make([]string, 0, len(before))
	for k := range before {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if before[k] != after[k] {
			t.Errorf("%s %s differs after the move:\nbefore %.300s\nafter  %.300s", what, k, before[k], after[k])
		}
	}
	if len(after) != len(before) {
		t.Errorf("%s: %d entries before, %d after", what, len(before), len(after))
	}
}

// TestTenantMove moves a demo chain with orders, tickets and ledger entries
// from the first PostgreSQL server to the second while another chain on the
// second keeps serving, with a write in flight when the move starts; then
// fails a move back by killing its copy. After the move the chain's data,
// ledger and API answers are identical and the in-flight write is there;
// after the failed one it is where it was, serving, unchanged.
func TestTenantMove(t *testing.T) {
	control, drop, err := apptest.Database("main_move")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(drop)
	second := apptest.SecondDatabase(t, "main_move")
	env := apptest.Start(t, control, apptest.Options{Modules: modules.All(), Configure: func(c *config.Config) {
		c.DatabaseServers = map[string]string{apptest.SecondServer: second}
	}})
	ctx := context.Background()
	if _, err := env.App.SeedDemo(ctx); err != nil {
		t.Fatal(err)
	}
	acme, err := env.App.Tenants.Lookup(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	globex, _ := env.App.Tenants.Lookup(ctx, "globex")
	if acme.Server != tenants.DefaultServer || globex.Server != apptest.SecondServer {
		t.Fatalf("demo placed acme on %s and globex on %s; want default and second", acme.Server, globex.Server)
	}
	fpBefore := fingerprint(t, env, acme)
	for _, tb := range []string{"inv_orders", "inv_tickets", "ledger_entries"} {
		if strings.HasPrefix(fpBefore[tb], "0 rows") {
			t.Fatalf("the demo chain has no %s to move: %v", tb, fpBefore[tb])
		}
	}
	acmeTok, globexTok := demoLogin(t, env, "acme"), demoLogin(t, env, "globex")
	apiBefore := answers(t, env, "acme", acmeTok)

	// Globex, on the target server, is read all through the move.
	stop := make(chan struct{})
	var served, refused atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			res, err := env.Try(http.MethodGet, "globex", "/api/v1/ledger/verify", globexTok, nil)
			if err != nil || res.Status != http.StatusOK {
				refused.Add(1)
				continue
			}
			served.Add(1)
		}
	})

	// A write in flight when the move starts: the move waits for it and
	// carries it over.
	inserted, release := make(chan struct{}), make(chan struct{})
	writeErr := make(chan error, 1)
	go func() {
		writeErr <- env.App.Tx(ctx, acme, func(tx *gorm.DB) error {
			if _, err := env.App.Ledger.Append(tx, "venue.deposit", "in-flight-during-move", 1234, "USD", "written as the move began"); err != nil {
				return err
			}
			close(inserted)
			<-release
			return nil
		})
	}()
	<-inserted
	var steps []string
	var during []int
	rep, err := env.App.MoveTenant(ctx, "acme", apptest.SecondServer, "test", "placement test", tenants.MoveOptions{
		Progress: func(step string) {
			steps = append(steps, step)
			if step == "waiting for in-flight writes" {
				// The write commits once the move is seen waiting for it.
				go func() {
					def, _ := env.App.Servers.Get(tenants.DefaultServer)
					apptest.Poll(10*time.Second, func() bool {
						var n int
						_ = def.SQL.QueryRow("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'LOCK TABLE%'").Scan(&n)
						return n > 0
					})
					close(release)
				}()
			}
			if strings.HasPrefix(step, "copying") {
				res := env.Do(t, http.MethodGet, "acme", "/api/v1/venues", acmeTok, nil)
				during = append(during, res.Status)
				if res.Status != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" || res.Code() != "tenant_moving" {
					t.Errorf("acme during its move: %d %q Retry-After %q, want 503 tenant_moving with Retry-After", res.Status, res.Code(), res.Header.Get("Retry-After"))
				}
			}
		},
	})
	if err != nil {
		t.Fatalf("move: %v (steps %v)", err, steps)
	}
	if err := <-writeErr; err != nil {
		t.Fatalf("the in-flight write: %v", err)
	}
	close(stop)
	wg.Wait()
	t.Logf("moved in %s by %s; %d tables; globex served %d reads meanwhile, refused %d; acme answered %v mid-move",
		rep.Duration, rep.Method, len(rep.Rows), served.Load(), refused.Load(), during)
	if refused.Load() != 0 || served.Load() == 0 {
		t.Fatalf("globex, on the target, served %d and refused %d reads during the move", served.Load(), refused.Load())
	}

	acme, _ = env.App.Tenants.Lookup(ctx, "acme")
	if acme.Server != apptest.SecondServer || acme.Status != tenants.StatusActive {
		t.Fatalf("after the move acme is %s on %s", acme.Status, acme.Server)
	}
	if schemaOnServer(t, env, tenants.DefaultServer, acme.Schema) {
		t.Fatal("the source schema is still reachable under its name")
	}
	fpAfter := fingerprint(t, env, acme)
	// The in-flight write is the one difference: one more ledger entry.
	if fpAfter["ledger_entries"] == fpBefore["ledger_entries"] {
		t.Fatal("the write in flight when the move began did not arrive")
	}
	var n int64
	_ = env.App.Tx(ctx, acme, func(tx *gorm.DB) error {
		return tx.Raw("SELECT count(*) FROM ledger_entries WHERE reference = 'in-flight-during-move'").Scan(&n).Error
	})
	if n != 1 {
		t.Fatalf("the in-flight ledger entry is there %d times on the target", n)
	}
	// Re-read "before" to include the in-flight entry, from the source's
	// renamed schema, and compare everything.
	delete(fpBefore, "ledger_entries")
	delete(fpAfter, "ledger_entries")
	diff(t, "table", fpBefore, fpAfter)
	res, err := env.App.Ledger.Verify(ctx, acme)
	if err != nil || !res.OK {
		t.Fatalf("ledger on the target: %+v %v", res, err)
	}
	apiAfter := answers(t, env, "acme", acmeTok)
	for _, p := range []string{"/api/v1/ledger?limit=200", "/api/v1/ledger/verify"} {
		delete(apiBefore, p) // one entry more, by design
		delete(apiAfter, p)
	}
	diff(t, "answer", apiBefore, apiAfter)
	hist, _ := env.App.Tenants.History(ctx, acme.ID, 5)
	if len(hist) < 2 || hist[0].To != tenants.StatusActive || hist[1].To != tenants.StatusMoving || hist[1].Actor != "test" {
		t.Fatalf("status history: %+v", hist)
	}

	// A move back whose copy is killed midway leaves acme on the second
	// server, serving, unchanged, and nothing of it on the first.
	fpStay := fingerprint(t, env, acme)
	apiStay := answers(t, env, "acme", acmeTok)
	_, err = env.App.MoveTenant(ctx, "acme", tenants.DefaultServer, "test", "doomed", tenants.MoveOptions{
		CopyFault: func(copyCtx context.Context, kill context.CancelFunc) {
			// Kill the copy once pg_restore (or the logical copy) is at work
			// on the target, or at once if it is already done.
			def, _ := env.App.Servers.Get(tenants.DefaultServer)
			apptest.Poll(10*time.Second, func() bool {
				var n int
				_ = def.SQL.QueryRowContext(copyCtx, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pg_restore'").Scan(&n)
				return n > 0 || copyCtx.Err() != nil
			})
			kill()
		},
	})
	if err == nil || !strings.Contains(err.Error(), "failed at copy") {
		t.Fatalf("a killed copy: %v, want the move failed at copy", err)
	}
	acme, _ = env.App.Tenants.Lookup(ctx, "acme")
	if acme.Server != apptest.SecondServer || acme.Status != tenants.StatusActive {
		t.Fatalf("after a failed move acme is %s on %s", acme.Status, acme.Server)
	}
	if schemaOnServer(t, env, tenants.DefaultServer, acme.Schema) {
		t.Fatal("the failed move left a partial copy on the target")
	}
	diff(t, "table", fpStay, fingerprint(t, env, acme))
	diff(t, "answer", apiStay, answers(t, env, "acme", acmeTok))
	moves, _ := env.App.Tenants.Moves(ctx, acme, 5)
	if len(moves) != 2 || moves[0].Outcome != "failed" || moves[1].Outcome != "moved" {
		t.Fatalf("move records: %+v", moves)
	}
	// And it still takes writes.
	if err := env.App.Tx(ctx, acme, func(tx *gorm.DB) error {
		_, err := env.App.Ledger.Append(tx, "venue.deposit", "after-failed-move", 1, "USD", "")
		return err
	}); err != nil {
		t.Fatalf("write after the failed move: %v", err)
	}

	// Without pg_dump: the logical copy moves it back, identical too.
	fpStay, apiStay = fingerprint(t, env, acme), answers(t, env, "acme", acmeTok)
	rep, err = env.App.MoveTenant(ctx, "acme", tenants.DefaultServer, "test", "logical", tenants.MoveOptions{Logical: true})
	if err != nil {
		t.Fatalf("logical move: %v", err)
	}
	acme, _ = env.App.Tenants.Lookup(ctx, "acme")
	if acme.Server != tenants.DefaultServer || rep.Method != "logical" {
		t.Fatalf("after the logical move acme is on %s (%s)", acme.Server, rep.Method)
	}
	fpBack := fingerprint(t, env, acme)
	// goose's table is rebuilt by the migrations (own timestamps), then
	// replaced by the source's rows: identical as well.
	diff(t, "table", fpStay, fpBack)
	diff(t, "answer", apiStay, answers(t, env, "acme", acmeTok))
	// Sequences continue where they were: a new ledger entry follows on.
	if err := env.App.Tx(ctx, acme, func(tx *gorm.DB) error {
		_, err := env.App.Ledger.Append(tx, "venue.deposit", "after-logical-move", 1, "USD", "")
		return err
	}); err != nil {
		t.Fatalf("write after the logical move: %v", err)
	}
	if res, err := env.App.Ledger.Verify(ctx, acme); err != nil || !res.OK {
		t.Fatalf("ledger after the logical move: %+v %v", res, err)
	}
}

func demoLogin(t *testing.T, env *apptest.Env, slug string) string {
	t.Helper()
	res := env.Do(t, http.MethodPost, slug, "/api/v1/auth/login", "", map[string]string{"email": "owner@" + slug + ".test", "password": app.DemoPassword})
	if res.Status != http.StatusOK {
		t.Fatalf("login to %s: %d %s", slug, res.Status, res.Body)
	}
	var out struct{ Token string }
	res.JSON(t, &out)
	return out.Token
}

func schemaOnServer(t *testing.T, env *apptest.Env, server, schema string) bool {
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

// TestTenantMoveRecovery kills a move's process (as the Crash hook leaves
// it: no clean-up, its connections and move lock gone) after each of its
// steps, sees the chain stranded "moving" (503, and a new move refused),
// then recovers it: before the switch the move is undone (the copy on the
// target dropped, the chain back on its source), inside the switch it is
// finished (the copy checked again, the registry pointed at it). Either way
// the chain serves again in the status it had, its data, ledger and API
// answers identical, and the move's record and the status history say what
// the recovery did. A recovery while a live move holds the lock is refused
// and touches nothing.
func TestTenantMoveRecovery(t *testing.T) {
	control, drop, err := apptest.Database("main_move_recover")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(drop)
	second := apptest.SecondDatabase(t, "main_move_recover")
	env := apptest.Start(t, control, apptest.Options{Modules: modules.All(), Configure: func(c *config.Config) {
		c.DatabaseServers = map[string]string{apptest.SecondServer: second}
	}})
	ctx := context.Background()
	if _, err := env.App.SeedDemo(ctx); err != nil {
		t.Fatal(err)
	}
	tok := demoLogin(t, env, "acme")
	other := func(server string) string {
		if server == tenants.DefaultServer {
			return apptest.SecondServer
		}
		return tenants.DefaultServer
	}

	for _, c := range []struct {
		phase     string
		suspended bool   // the chain is suspended before the move
		outcome   string // what the recovery does
	}{
		{"locked", false, "rolled back"},
		{"copy", false, "rolled back"}, // dies while pg_restore runs
		{"copied", false, "rolled back"},
		{"verified", true, "rolled back"},
		{"renamed", false, "finished"}, // the source renamed, the registry not switched
		{"switched", false, "closed"},  // switched, only the record left open
		{"renamed", true, "finished"},
	} {
		acme, err := env.App.Tenants.Lookup(ctx, "acme")
		if err != nil {
			t.Fatal(err)
		}
		from, to := acme.Server, other(acme.Server)
		fp, api := fingerprint(t, env, acme), answers(t, env, "acme", tok)
		if c.suspended {
			if err := env.App.Tenants.SuspendAs(ctx, "acme", tenants.Change{Actor: "test", Reason: "before a move"}); err != nil {
				t.Fatal(err)
			}
		}
		o := tenants.MoveOptions{Crash: func(step string) bool { return step == c.phase }}
		if c.phase == "copy" {
			o.CopyFault = func(copyCtx context.Context, kill context.CancelFunc) {
				dst, _ := env.App.Servers.Get(to)
				apptest.Poll(10*time.Second, func() bool {
					var n int
					_ = dst.SQL.QueryRowContext(copyCtx, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pg_restore'").Scan(&n)
					return n > 0 || copyCtx.Err() != nil
				})
				kill()
			}
		}
		_, err = env.App.MoveTenant(ctx, "acme", to, "test", "doomed process", o)
		if !errors.Is(err, tenants.ErrMoveCrashed) {
			t.Fatalf("%s: the move's process should have died: %v", c.phase, err)
		}
		if c.outcome != "closed" {
			// Stranded as the audit found it: 503, and no move accepted.
			stuck, _ := env.App.Tenants.Lookup(ctx, "acme")
			if stuck.Status != tenants.StatusMoving {
				t.Fatalf("%s: after the process died acme is %s", c.phase, stuck.Status)
			}
			if res := env.Do(t, http.MethodGet, "acme", "/api/v1/venues", tok, nil); res.Status != http.StatusServiceUnavailable {
				t.Fatalf("%s: a stranded acme answers %d", c.phase, res.Status)
			}
			if _, err := env.App.MoveTenant(ctx, "acme", to, "test", "again", tenants.MoveOptions{}); err == nil {
				t.Fatalf("%s: a move of a stranded tenant was accepted", c.phase)
			}
		}

		rep, err := env.App.RecoverTenantMove(ctx, "acme", "test", "the process was killed", tenants.RecoverOptions{})
		if err != nil {
			t.Fatalf("%s: recover: %v", c.phase, err)
		}
		wantOn, wantStatus := from, tenants.StatusActive
		if c.outcome != "rolled back" {
			wantOn = to
		}
		if c.suspended {
			wantStatus = tenants.StatusSuspended
		}
		acme, _ = env.App.Tenants.Lookup(ctx, "acme")
		t.Logf("%s: recovery %+v", c.phase, rep)
		if wantPhase := map[string]string{"copy": "copying", "renamed": "switching", "switched": "switching"}[c.phase]; rep.Phase != cmp.Or(wantPhase, c.phase) {
			t.Errorf("%s: the recovery read step %q as the dead move's last", c.phase, rep.Phase)
		}
		if rep.Outcome != c.outcome || acme.Server != wantOn || acme.Status != wantStatus || rep.Server != wantOn || rep.Status != wantStatus {
			t.Fatalf("%s: recovery %s leaves acme %s on %s; want %s, %s on %s", c.phase, rep.Outcome, acme.Status, acme.Server, c.outcome, wantStatus, wantOn)
		}
		// One schema of that name, where the registry points; the source of
		// a finished move kept under its backup name.
		if !schemaOnServer(t, env, wantOn, acme.Schema) || schemaOnServer(t, env, other(wantOn), acme.Schema) {
			t.Fatalf("%s: schema %s on %s %v, on %s %v", c.phase, acme.Schema, wantOn, schemaOnServer(t, env, wantOn, acme.Schema),
				other(wantOn), schemaOnServer(t, env, other(wantOn), acme.Schema))
		}
		if c.outcome != "rolled back" && (rep.Backup == "" || !schemaOnServer(t, env, from, rep.Backup)) {
			t.Fatalf("%s: the source's backup %q is not on %s", c.phase, rep.Backup, from)
		}
		if c.suspended {
			if err := env.App.Tenants.ResumeAs(ctx, "acme", tenants.Change{Actor: "test", Reason: "after the recovery"}); err != nil {
				t.Fatal(err)
			}
			acme, _ = env.App.Tenants.Lookup(ctx, "acme")
		}
		diff(t, c.phase+": table", fp, fingerprint(t, env, acme))
		diff(t, c.phase+": answer", api, answers(t, env, "acme", tok))
		if res, err := env.App.Ledger.Verify(ctx, acme); err != nil || !res.OK {
			t.Fatalf("%s: ledger after the recovery: %+v %v", c.phase, res, err)
		}
		moves, _ := env.App.Tenants.Moves(ctx, acme, 1)
		wantRecord := map[string]string{"rolled back": "failed", "finished": "moved", "closed": "moved"}[c.outcome]
		if len(moves) != 1 || moves[0].Outcome != wantRecord || moves[0].FinishedAt == nil || !strings.Contains(moves[0].Detail, "recovered") {
			t.Fatalf("%s: move record %+v", c.phase, moves)
		}
		if c.outcome != "closed" {
			hist, _ := env.App.Tenants.History(ctx, acme.ID, 3)
			i := 0
			if c.suspended {
				i = 1 // the resume above
			}
			if len(hist) <= i || hist[i].From != tenants.StatusMoving || hist[i].To != wantStatus || hist[i].Actor != "test" || !strings.Contains(hist[i].Reason, "recovered") {
				t.Fatalf("%s: status history %+v", c.phase, hist)
			}
		}
		// It takes writes where it is served.
		if err := env.App.Tx(ctx, acme, func(tx *gorm.DB) error {
			_, err := env.App.Ledger.Append(tx, "venue.deposit", "after-recovery-"+c.phase, 1, "USD", "")
			return err
		}); err != nil {
			t.Fatalf("%s: write after the recovery: %v", c.phase, err)
		}
	}

	// A recovery while a live move holds the lock is refused and changes
	// nothing; the move goes on to finish.
	acme, _ := env.App.Tenants.Lookup(ctx, "acme")
	to := other(acme.Server)
	var recoverErr, secondMoveErr error
	rep, err := env.App.MoveTenant(ctx, "acme", to, "test", "live", tenants.MoveOptions{Fault: func(step string) error {
		if step == "copied" {
			_, recoverErr = env.App.RecoverTenantMove(ctx, "acme", "test", "too early", tenants.RecoverOptions{Wait: 300 * time.Millisecond})
			_, secondMoveErr = env.App.Tenants.Move(ctx, env.App.Servers, "acme", tenants.MoveOptions{To: to})
		}
		return nil
	}})
	if err != nil {
		t.Fatalf("the live move: %v", err)
	}
	if !errors.Is(recoverErr, tenants.ErrMoveLocked) || !errors.Is(secondMoveErr, tenants.ErrMoveLocked) {
		t.Fatalf("during a live move: recovery %v, a second move %v; want both refused by the move lock", recoverErr, secondMoveErr)
	}
	acme, _ = env.App.Tenants.Lookup(ctx, "acme")
	moves, _ := env.App.Tenants.Moves(ctx, acme, 1)
	if acme.Server != to || acme.Status != tenants.StatusActive || rep.To != to || moves[0].Outcome != "moved" || strings.Contains(moves[0].Detail, "recovered") {
		t.Fatalf("after the live move: acme %s on %s, record %+v", acme.Status, acme.Server, moves)
	}
	if _, err := env.App.RecoverTenantMove(ctx, "acme", "test", "nothing to do", tenants.RecoverOptions{}); err == nil {
		t.Fatal("a recovery with no unfinished move succeeded")
	}
}
