package calendar_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/app/apptest"
	"marquee/migrations"
	"marquee/modules/calendar"
	"marquee/policies"
)

// todayVersion is the last migration number before the names work (00070s):
// the version every production schema is at when this release rolls out.
const todayVersion = 50

// through returns the migrations of fsys numbered up to max, plus those of
// extra (pending contract steps): the tree a given release embeds.
// corePlacementEarly is the core's control migrations 00120–00122 (each
// tenant's server, owner e-mail, status history), numbered 00047–00049: this
// release's registry reads those columns, and it is this release's code that
// seeds the "today" database here. They are written to run twice, so goose
// applies them again under their own numbers when the database catches up.
func corePlacementEarly(t testing.TB) fs.FS {
	t.Helper()
	out := fstest.MapFS{}
	for i, n := range []string{"00120_core_placement.sql", "00121_core_tenant_history.sql", "00122_core_tenant_owner.sql"} {
		data, err := fs.ReadFile(migrations.ControlFS(), n)
		if err != nil {
			t.Fatal(err)
		}
		out[fmt.Sprintf("%05d_early_%s", 47+i, n[6:])] = &fstest.MapFile{Data: data}
	}
	return out
}

func through(t testing.TB, fsys fs.FS, max int, extra ...fs.FS) fs.FS {
	t.Helper()
	out := fstest.MapFS{}
	for _, src := range append([]fs.FS{fsys}, extra...) {
		names, err := fs.Glob(src, "*.sql")
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			v, err := strconv.Atoi(n[:strings.IndexByte(n, '_')])
			if err != nil {
				t.Fatalf("migration %s: %v", n, err)
			}
			if src == fsys && v > max {
				continue
			}
			data, err := fs.ReadFile(src, n)
			if err != nil {
				t.Fatal(err)
			}
			out[n] = &fstest.MapFile{Data: data}
		}
	}
	return out
}

// The statements of the release before the names work, verbatim (the
// unprefixed table names): what an old instance runs during the rollout.
const (
	oldInsertVenue = `INSERT INTO venues (id, name, address, timezone, latitude, longitude, capacity)
		VALUES (?, ?, '', 'America/New_York', NULL, NULL, 2000) RETURNING created_at, updated_at`
	oldInsertStage = `INSERT INTO stages (id, venue_id, name, capacity, kind) VALUES (?, ?, ?, 500, 'stage') RETURNING created_at, updated_at`
	oldInsertEvent = `
WITH placed AS (
    INSERT INTO occupancy (event_id, version, venue_id, stage_id, exclusive, occupied)
    VALUES (@id, 1, @venue, @stage, @exclusive, tstzrange(@lo, @hi, '[)'))
    ON CONFLICT DO NOTHING
    RETURNING event_id
)
INSERT INTO events (id, venue_id, stage_id, exclusive, title, category, status, promoter_id,
                    starts_at, ends_at, setup_minutes, teardown_minutes, occupied, version, hold_id)
SELECT event_id, CAST(@venue AS uuid), CAST(@stage AS uuid), CAST(@exclusive AS boolean), CAST(@title AS text),
       CAST('concert' AS text), CAST('confirmed' AS text), CAST(NULL AS uuid),
       CAST(@lo AS timestamptz), CAST(@hi AS timestamptz), CAST(0 AS integer), CAST(0 AS integer),
       tstzrange(CAST(@lo AS timestamptz), CAST(@hi AS timestamptz), '[)'), 1, CAST(@hold AS uuid)
FROM placed
RETURNING created_at, updated_at, (SELECT v.timezone FROM venues v WHERE v.id = events.venue_id) AS timezone`
	oldInsertHold = `INSERT INTO holds (id, venue_id, stage_id, title, category, promoter_id, starts_at, ends_at,
		setup_minutes, teardown_minutes, occupied, status, expires_at)
		VALUES (?, ?, ?, ?, 'concert', NULL, ?::timestamptz, ?::timestamptz, 0, 0, tstzrange(?::timestamptz, ?::timestamptz, '[)'), 'active', NULL)`
	oldConfirmHold = `UPDATE holds SET status = ?, event_id = ?, closed_at = now() WHERE id = ? AND status = 'active'`
	oldLockHold    = `SELECT id, status FROM holds WHERE id = ? AND venue_id = ? FOR UPDATE`
)

// calendarTables are the calendar's tables before (key) and after the prefix.
var calendarTables = map[string]string{"venues": "cal_venues", "stages": "cal_stages", "events": "cal_events",
	"occupancy": "cal_occupancy", "holds": "cal_holds"}

// renamedObjects are the permission objects before (key) and after 00070.
var renamedObjects = map[string]string{"venues": calendar.ObjVenues, "events": calendar.ObjEvents, "holds": calendar.ObjHolds,
	"inventory": "inventory.catalogue", "orders": "inventory.orders"}

// A database seeded at today's version (schema 00050, control 00001, policies
// under the old object names) is migrated to this release: every row and rule
// survives under its new name, the old names keep serving the old SQL during
// the rollout, the exclusion constraints still refuse overlaps, and the API
// works on it through the real router; then the pending contract steps run
// and it still does.
func TestNamesMigrationFromSeededDatabase(t *testing.T) {
	url, drop, err := apptest.Database("calendar_names")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(drop)
	ctx := context.Background()

	// --- Today: a chain provisioned and used before the names work.
	old := apptest.Start(t, url, apptest.Options{Modules: []app.Module{calendar.New()},
		MigrationsControl: through(t, migrations.ControlFS(), todayVersion, corePlacementEarly(t)),
		MigrationsTenant:  through(t, migrations.TenantFS(), todayVersion)})
	tn := old.Tenant(t, apptest.UniqueSlug("names"))
	venue, stageA, stageB := uuid.New(), uuid.New(), uuid.New()
	ev1, ev2, holdLive, holdDone, evFromHold := uuid.New(), uuid.New(), uuid.New(), uuid.New(), uuid.New()
	err = old.App.Tx(ctx, tn, func(tx *gorm.DB) error {
		var v int
		if err := tx.Raw(`SELECT max(version_id) FROM goose_db_version`).Row().Scan(&v); err != nil || v != todayVersion {
			t.Fatalf("seeded schema at version %d (%v), want %d", v, err, todayVersion)
		}
		for _, q := range []*gorm.DB{
			tx.Exec(oldInsertVenue, venue, "Downtown Hall"),
			tx.Exec(oldInsertStage, stageA, venue, "Main Stage"),
			tx.Exec(oldInsertStage, stageB, venue, "Club Room"),
			tx.Exec(oldInsertHold, holdLive, venue, stageA, "Pencilled", "2031-05-01T18:00:00Z", "2031-05-01T22:00:00Z", "2031-05-01T18:00:00Z", "2031-05-01T22:00:00Z"),
			tx.Exec(oldInsertHold, holdDone, venue, stageB, "Confirmed later", "2031-05-02T18:00:00Z", "2031-05-02T22:00:00Z", "2031-05-02T18:00:00Z", "2031-05-02T22:00:00Z"),
		} {
			if q.Error != nil {
				return q.Error
			}
		}
		for _, e := range []struct {
			id    uuid.UUID
			stage uuid.UUID
			lo    string
			hold  *uuid.UUID
		}{{ev1, stageA, "2031-06-01T18:00:00Z", nil}, {ev2, stageB, "2031-06-01T18:00:00Z", nil}, {evFromHold, stageB, "2031-05-02T18:00:00Z", &holdDone}} {
			if n := oldEvent(t, tx, e.id, venue, e.stage, e.lo, strings.Replace(e.lo, "T18", "T22", 1), e.hold); n != 1 {
				t.Fatalf("seed event %s: %d rows", e.id, n)
			}
		}
		return tx.Exec(oldConfirmHold, "confirmed", evFromHold, holdDone).Error
	})
	if err != nil {
		t.Fatalf("seed with today's SQL: %v", err)
	}
	manager := old.User(t, tn, "manager@"+tn.Slug+".test", policies.RoleVenueManager, venue.String())
	// Today's policies: the defaults under the old object names (this code
	// installed the namespaced ones; put them back as today's code wrote them),
	// today's inventory defaults, and a rule a chain admin wrote at one venue.
	db := old.App.DB
	for oldName, newName := range renamedObjects {
		if err := db.Exec(`INSERT INTO control.casbin_rule (ptype, v0, v1, v2, v3, v4, v5)
			SELECT ptype, v0, v1, ?, v3, v4, v5 FROM control.casbin_rule WHERE ptype = 'p' AND v1 LIKE ? AND v2 = ?
			ON CONFLICT DO NOTHING`, oldName, tn.Slug+"/%", newName).Error; err != nil {
			t.Fatal(err)
		}
		if err := db.Exec(`DELETE FROM control.casbin_rule WHERE ptype = 'p' AND v1 LIKE ? AND v2 = ?`, tn.Slug+"/%", newName).Error; err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Exec(`INSERT INTO control.casbin_rule (ptype, v0, v1, v2, v3) VALUES
		('p', 'finance', ?, 'orders', 'read'), ('p', 'promoter', ?, 'inventory', 'write'), ('p', 'box_office', ?, 'holds', 'write')`,
		tn.Slug+"/*", tn.Slug+"/*", tn.Slug+"/"+venue.String()).Error; err != nil {
		t.Fatal(err)
	}
	rulesBefore := rules(t, db, tn.Slug)
	if len(rulesBefore) < 20 {
		t.Fatalf("only %d policy rules seeded", len(rulesBefore))
	}
	for _, r := range rulesBefore {
		if strings.HasPrefix(r[2], "calendar.") || r[2] == "inventory.catalogue" || r[2] == "inventory.orders" {
			t.Fatalf("seeded rule %v already namespaced", r)
		}
	}
	// Rows are compared on the columns the tables had then: later
	// migrations may add columns (expand), never change these.
	snapshot, columns := map[string]string{}, map[string][]string{}
	for oldName := range calendarTables {
		var cols []string
		if err := db.Raw(`SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position`,
			tn.Schema, oldName).Scan(&cols).Error; err != nil || len(cols) == 0 {
			t.Fatalf("columns of %s: %v", oldName, err)
		}
		columns[oldName] = cols
		snapshot[oldName] = tableDigest(t, db, tn.Schema+"."+oldName, columns[oldName])
	}

	// --- This release: a process starts (control migrations, then the
	// enforcer loads) and `marquee migrate` brings every tenant schema up.
	cur := apptest.Start(t, url, apptest.Options{Modules: []app.Module{calendar.New()}})
	if err := cur.App.MigrateAll(ctx, nil); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	for oldName, newName := range calendarTables {
		if got := tableDigest(t, db, tn.Schema+"."+newName, columns[oldName]); got != snapshot[oldName] {
			t.Errorf("%s: rows changed in the rename to %s", oldName, newName)
		}
		if got := tableDigest(t, db, tn.Schema+"."+oldName, columns[oldName]); got != snapshot[oldName] {
			t.Errorf("view %s does not show the rows of %s", oldName, newName)
		}
	}
	after := rules(t, db, tn.Slug)
	have := map[[4]string]bool{}
	for _, r := range after {
		have[r] = true
	}
	for _, r := range rulesBefore {
		if !have[r] {
			t.Errorf("rule %v gone during the rollout", r)
		}
		if n, ok := renamedObjects[r[2]]; ok && !have[[4]string{r[0], r[1], n, r[3]}] {
			t.Errorf("rule %v has no copy under %s", r, n)
		}
	}
	// The enforcer of this release loaded the copies: the rule the chain admin
	// wrote, and the defaults, authorize under the new names.
	if ok, err := cur.App.Enforcer.Allowed(policies.RoleBoxOffice, policies.VenueDomain(tn.Slug, venue.String()), calendar.ObjHolds, policies.Write); !ok || err != nil {
		t.Errorf("box office may not write calendar.holds at the venue after the migration (%v)", err)
	}

	// Old code mid-rollout: its SQL, verbatim, through the views.
	err = cur.App.Tx(ctx, tn, func(tx *gorm.DB) error {
		var locked []struct {
			ID     uuid.UUID
			Status string
		}
		if err := tx.Raw(oldLockHold, holdLive, venue).Scan(&locked).Error; err != nil || len(locked) != 1 {
			t.Fatalf("old SELECT ... FOR UPDATE through the view: %v %v", locked, err)
		}
		// Overlaps ev1 on stage A: refused by ON CONFLICT DO NOTHING, no row.
		if n := oldEvent(t, tx, uuid.New(), venue, stageA, "2031-06-01T20:00:00Z", "2031-06-01T23:00:00Z", nil); n != 0 {
			t.Fatalf("old insert of an overlapping event through the views: %d rows", n)
		}
		if n := oldEvent(t, tx, uuid.New(), venue, stageA, "2031-07-01T18:00:00Z", "2031-07-01T22:00:00Z", nil); n != 1 {
			t.Fatalf("old insert of a free event through the views: %d rows", n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// An instance of the old release writes a rule under an old name after
	// the migration (as when it provisions a tenant): this release honours it
	// until the contract step copies it into the namespace.
	if err := db.Exec(`INSERT INTO control.casbin_rule (ptype, v0, v1, v2, v3) VALUES ('p', 'door_staff', ?, 'holds', 'read')`, tn.Slug+"/*").Error; err != nil {
		t.Fatal(err)
	}
	if err := cur.App.Enforcer.Reload(); err != nil {
		t.Fatal(err)
	}
	if ok, err := cur.App.Enforcer.Allowed(policies.RoleDoorStaff, policies.ChainDomain(tn.Slug), calendar.ObjHolds, policies.Read); !ok || err != nil {
		t.Errorf("a rule written by the old release under holds is not honoured for calendar.holds (%v)", err)
	}
	refusesOverlap(t, cur, tn.Schema, venue, stageA, ev1.String(), "occupancy_stage_overlap")
	checkAPI(t, cur, tn.Slug, "manager@"+tn.Slug+".test", venue, stageA, ev1, holdLive, manager, "2031-08-01T18:00:00Z")

	// --- The next release: the contract steps run.
	next := apptest.Start(t, url, apptest.Options{Modules: []app.Module{calendar.New()},
		MigrationsControl: through(t, migrations.ControlFS(), 1<<30, migrations.ContractControlFS()),
		MigrationsTenant:  through(t, migrations.TenantFS(), 1<<30, migrations.ContractTenantFS())})
	if err := next.App.MigrateAll(ctx, nil); err != nil {
		t.Fatalf("contract: %v", err)
	}
	for oldName := range calendarTables {
		var n int
		if err := db.Raw(`SELECT count(*) FROM pg_class WHERE relnamespace = ?::regnamespace AND relname = ?`, tn.Schema, oldName).Row().Scan(&n); err != nil || n != 0 {
			t.Errorf("%s still exists after the contract step (%v)", oldName, err)
		}
	}
	var unprefixed []string
	if err := db.Raw(`SELECT c.conname FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid
		WHERE t.relnamespace = ?::regnamespace AND t.relname LIKE 'cal\_%' AND c.conname NOT LIKE 'cal\_%'
		UNION ALL SELECT relname FROM pg_class WHERE relnamespace = ?::regnamespace AND relkind IN ('i', 'S')
		  AND relname ~ '^(venues|stages|events|occupancy|holds)_'`, tn.Schema, tn.Schema).Scan(&unprefixed).Error; err != nil || len(unprefixed) != 0 {
		t.Errorf("names left without the prefix: %v (%v)", unprefixed, err)
	}
	for _, r := range rules(t, db, tn.Slug) {
		if _, ok := renamedObjects[r[2]]; ok {
			t.Errorf("old rule %v left after the contract step", r)
		}
	}
	// Later releases' migrations may add default rules for new objects
	// (control 00100 inventory.door, 00130 ops.*): the count is of the
	// objects the seeded database knew, under their new names.
	known := map[string]bool{}
	for _, r := range rulesBefore {
		known[r[2]] = true
		if n, ok := renamedObjects[r[2]]; ok {
			known[n] = true
		}
	}
	after = slices.DeleteFunc(rules(t, db, tn.Slug), func(r [4]string) bool { return !known[r[2]] })
	if !slices.Contains(after, [4]string{policies.RoleDoorStaff, tn.Slug + "/*", calendar.ObjHolds, policies.Read}) {
		t.Errorf("the rule the old release wrote during the rollout was not carried into the namespace")
	}
	if len(after) != len(rulesBefore)+1 {
		t.Errorf("%d rules after the contract step, %d before the rollout (+1 written during it)", len(after), len(rulesBefore))
	}
	refusesOverlap(t, next, tn.Schema, venue, stageA, ev1.String(), "cal_occupancy_stage_overlap")
	checkAPI(t, next, tn.Slug, "manager@"+tn.Slug+".test", venue, stageA, ev1, holdLive, manager, "2031-08-02T18:00:00Z")
}

// oldEvent books an event with the old insert; it returns the rows inserted.
func oldEvent(t testing.TB, tx *gorm.DB, id, venue, stage uuid.UUID, lo, hi string, hold *uuid.UUID) int {
	t.Helper()
	var rows []map[string]any
	if err := tx.Raw(oldInsertEvent, map[string]any{"id": id, "venue": venue, "stage": stage, "exclusive": false,
		"lo": lo, "hi": hi, "title": "Show " + lo, "hold": hold}).Scan(&rows).Error; err != nil {
		t.Fatalf("old insert event: %v", err)
	}
	return len(rows)
}

// refusesOverlap inserts an overlapping placement straight into cal_occupancy
// (no ON CONFLICT): the exclusion constraint must refuse it, by its name.
func refusesOverlap(t testing.TB, env *apptest.Env, schema string, venue, stage uuid.UUID, blocker, constraint string) {
	t.Helper()
	err := env.App.DB.Exec(`INSERT INTO "`+schema+`".cal_occupancy (event_id, version, venue_id, stage_id, exclusive, occupied)
		VALUES (?, 1, ?, ?, false, tstzrange('2031-06-01T19:00:00Z', '2031-06-01T21:00:00Z', '[)'))`, uuid.New(), venue, stage).Error
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "23P01" || pe.ConstraintName != constraint {
		t.Fatalf("overlap with %s on the stage: %v, want 23P01 from %s", blocker, err, constraint)
	}
}

// checkAPI calls the calendar through the real router as the venue manager,
// whose permissions come from the migrated policies.
func checkAPI(t testing.TB, env *apptest.Env, slug, email string, venue, stage, ev1, hold uuid.UUID, manager app.User, free string) {
	t.Helper()
	tok := env.Login(t, slug, email)
	base := "/api/v1/venues/" + venue.String()
	res := env.Do(t, "GET", slug, base+"/events/"+ev1.String(), tok, nil)
	if res.Status != http.StatusOK || !strings.Contains(string(res.Body), ev1.String()) {
		t.Fatalf("manager %s reads a seeded event: %d %s", manager.ID, res.Status, res.Body)
	}
	if res = env.Do(t, "GET", slug, base+"/holds/"+hold.String(), tok, nil); res.Status != http.StatusOK || !strings.Contains(string(res.Body), "Pencilled") {
		t.Fatalf("manager reads a seeded hold: %d %s", res.Status, res.Body)
	}
	ev := func(from, to string) map[string]any {
		return map[string]any{"stage_id": stage.String(), "title": "After the rename", "category": "concert",
			"starts_at": from, "ends_at": to}
	}
	if res = env.Do(t, "POST", slug, base+"/events", tok, ev("2031-06-01T19:00:00Z", "2031-06-01T21:00:00Z")); res.Status != http.StatusConflict || res.Code() != "schedule_conflict" {
		t.Fatalf("overlapping event through the API: %d %s", res.Status, res.Body)
	}
	if res = env.Do(t, "POST", slug, base+"/events", tok, ev(free, strings.Replace(free, "T18", "T19", 1))); res.Status != http.StatusCreated {
		t.Fatalf("free event through the API: %d %s", res.Status, res.Body)
	}
}

// rules lists the p rules of a tenant's domains as (sub, dom, obj, act).
func rules(t testing.TB, db *gorm.DB, slug string) [][4]string {
	t.Helper()
	var rows []struct{ V0, V1, V2, V3 string }
	if err := db.Raw(`SELECT v0, v1, v2, v3 FROM control.casbin_rule WHERE ptype = 'p' AND v1 LIKE ? ORDER BY v0, v1, v2, v3`, slug+"/%").Scan(&rows).Error; err != nil {
		t.Fatal(err)
	}
	out := make([][4]string, 0, len(rows))
	for _, r := range rows {
		out = append(out, [4]string{r.V0, r.V1, r.V2, r.V3})
	}
	return out
}

// tableDigest hashes every row of a table, in a fixed order.
func tableDigest(t testing.TB, db *gorm.DB, table string, columns []string) string {
	t.Helper()
	var d *string
	if err := db.Raw(`SELECT md5(string_agg(x::text, E'\n' ORDER BY x::text)) FROM (SELECT ` + strings.Join(columns, ", ") + ` FROM ` + table + `) x`).Row().Scan(&d); err != nil || d == nil {
		t.Fatalf("digest of %s: %v (empty: %v)", table, err, d == nil)
	}
	return *d
}
