package tenants

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"database/sql/driver"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// MoveOptions tune Move.
type MoveOptions struct {
	// To names the target server.
	To string
	// Actor and Reason go to the status history.
	Actor, Reason string
	// Verify checks the copy on the target before the registry points
	// there (the app checks the ledger's hash chain); its Tenant carries
	// the target server, so the door reaches the copy.
	Verify func(ctx context.Context, t Tenant) error
	// Logical copies table by table over COPY even when pg_dump and
	// pg_restore are installed (they are used when found otherwise).
	Logical bool
	// Progress, if set, is told each step as it begins.
	Progress func(step string)
	// Fault, if set, is called as each step ends; an error fails the move
	// there (tests: a copy that dies midway). CopyFault is called while the
	// copy runs, with the context the copy runs under.
	Fault     func(step string) error
	CopyFault func(ctx context.Context, cancel context.CancelFunc)
	// Crash, if set, is asked as each step ends (and where a step fails)
	// whether the process dies there (tests): Move then returns
	// ErrMoveCrashed at once and cleans up nothing, its connections closed
	// as a killed process's are, its advisory lock with them; the tenant is
	// left moving, for RecoverMove.
	Crash func(step string) bool
}

var (
	// ErrMoveLocked is a move or a recovery of a tenant while another one
	// holds that tenant's move lock (a live move, or its recovery).
	ErrMoveLocked = errors.New("a move of this tenant is in progress (another process holds its move lock)")
	// ErrMoveCrashed is what Move returns when MoveOptions.Crash made it
	// stop as a killed process would.
	ErrMoveCrashed = errors.New("the move stopped as a killed process would (test)")
)

// MoveReport says what a move did.
type MoveReport struct {
	From, To string
	Method   string           // "pg_dump" or "logical"
	Rows     map[string]int64 // per table, equal on both servers
	Backup   string           // the source schema's name after the move
	Duration time.Duration
}

// moveLockTimeout bounds the wait for a tenant's in-flight writes to finish
// before its copy starts: a transaction that holds them longer fails the
// move (and the tenant stays where it is).
const moveLockTimeout = "30s"

// Move copies a tenant's schema to another server and points the registry
// there. The tenant answers "moving" (503, retry) meanwhile; its in-flight
// writes finish first and later ones wait, then fail, so nothing written on
// the source is left behind. The copy is verified (row counts of every
// table, then opts.Verify) before the registry changes. On any failure the
// copy on the target is dropped and the tenant is back on its source in its
// former status, nothing lost. After a move the source schema remains,
// renamed (MoveReport.Backup), so that late writers fail rather than write
// where nobody reads; the operator drops it once satisfied.
func (r *Registry) Move(ctx context.Context, servers *Servers, slug string, o MoveOptions) (rep MoveReport, err error) {
	start := time.Now()
	step := func(s string) {
		if o.Progress != nil {
			o.Progress(s)
		}
	}
	fault := func(s string) error {
		if o.Fault != nil {
			return o.Fault(s)
		}
		return nil
	}
	crash := func(s string) bool { return o.Crash != nil && o.Crash(s) }
	t, err := r.Lookup(ctx, slug)
	if err != nil {
		return rep, err
	}
	// The move lock, held on the control plane until the move ends: should
	// this process die, its connection closes and the lock goes with it,
	// which is how RecoverMove tells a dead move from a live one.
	unlock, err := r.moveLock(ctx, t.ID, 0)
	if err != nil {
		return rep, err
	}
	crashed := false
	defer func() { unlock(crashed) }()
	t, err = r.load(ctx, slug) // uncached, under the lock: the status decides
	if err != nil {
		return rep, err
	}
	prior := t.Status
	if prior != StatusActive && prior != StatusSuspended {
		return rep, fmt.Errorf("tenant %s is %s: only an active or suspended tenant can be moved", slug, prior)
	}
	src, err := servers.For(t)
	if err != nil {
		return rep, err
	}
	dst, err := servers.Get(o.To)
	if err != nil {
		return rep, err
	}
	rep.From, rep.To = src.Name, dst.Name
	if src.Name == dst.Name {
		return rep, fmt.Errorf("tenant %s is already on %s", slug, dst.Name)
	}
	if same, err := sameDatabase(ctx, src.SQL, dst.SQL); err != nil {
		return rep, err
	} else if same {
		return rep, fmt.Errorf("servers %s and %s are the same database: nothing to move", src.Name, dst.Name)
	}
	if err := r.runner.PrepareServer(ctx, dst.Name); err != nil {
		return rep, err
	}
	var moveID int64
	if err := r.db.WithContext(ctx).Raw("INSERT INTO "+controlMoves+" (tenant_id, from_server, to_server, prior_status, phase) VALUES (?, ?, ?, ?, 'started') RETURNING id",
		t.ID, src.Name, dst.Name, prior).Row().Scan(&moveID); err != nil {
		return rep, err
	}
	actor := o.Actor
	if actor == "" {
		actor = "system"
	}
	why := strings.TrimSpace("move to " + dst.Name + ": " + o.Reason)
	if err := r.claim(ctx, slug, prior, StatusMoving, Change{Actor: actor, Reason: why}); err != nil {
		r.finishMove(moveID, "failed", err.Error())
		return rep, err
	}
	// From here on the tenant must end up served, on one server or the
	// other, even when ctx ends (an operator's ^C): clean-up runs unbounded.
	bg := context.WithoutCancel(ctx)

	// The source transaction: it waits for in-flight writes, keeps new
	// ones out until it ends, and finally renames the source schema away.
	conn, err := src.SQL.Conn(ctx)
	if err != nil {
		return rep, r.moveFailed(bg, t, prior, dst, moveID, "connect to source", err, actor)
	}
	defer conn.Close()
	srcTx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return rep, r.moveFailed(bg, t, prior, dst, moveID, "begin on source", err, actor)
	}
	defer srcTx.Rollback() //nolint:errcheck // after Commit it is a no-op
	fail := func(at string, err error) (MoveReport, error) {
		if crash(at) {
			crashed = true
			return rep, ErrMoveCrashed
		}
		_ = srcTx.Rollback()
		return rep, r.moveFailed(bg, t, prior, dst, moveID, at, err, actor)
	}
	// reached records the step a move has finished, and says whether the
	// process dies there.
	reached := func(step string) error {
		r.movePhase(moveID, step, "")
		if crash(step) {
			crashed = true
			return ErrMoveCrashed
		}
		return fault(step)
	}

	step("waiting for in-flight writes")
	tables, err := lockTables(ctx, srcTx, t.Schema)
	if err != nil {
		return fail("lock source tables", err)
	}
	rep.Rows = map[string]int64{}
	for _, tb := range tables {
		var n int64
		if err := srcTx.QueryRowContext(ctx, "SELECT count(*) FROM "+pgx.Identifier{t.Schema, tb}.Sanitize()).Scan(&n); err != nil {
			return fail("count source rows", err)
		}
		rep.Rows[tb] = n
	}
	if err := reached("locked"); err != nil {
		if errors.Is(err, ErrMoveCrashed) {
			return rep, err
		}
		return fail("locked", err)
	}

	// A schema of this name on the target is the leftover of a move that
	// died: the registry places the tenant on the source, so it serves
	// nobody, and the check above proved the target is another database.
	if _, err := dst.SQL.ExecContext(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{t.Schema}.Sanitize()+" CASCADE"); err != nil {
		return fail("clear target", err)
	}
	copyCtx, cancelCopy := context.WithCancel(ctx)
	defer cancelCopy()
	if o.CopyFault != nil {
		go o.CopyFault(copyCtx, cancelCopy)
	}
	rep.Method = "pg_dump"
	if o.Logical || !dumpToolsFound() {
		rep.Method = "logical"
	}
	step("copying (" + rep.Method + ")")
	r.movePhase(moveID, "copying", "")
	if rep.Method == "pg_dump" {
		err = dumpRestore(copyCtx, src.URL, dst.URL, t.Schema)
	} else {
		err = r.logicalCopy(copyCtx, conn, dst, t.Schema, tables)
	}
	if err == nil {
		err = copyCtx.Err() // a copy cancelled just as it ended
	}
	cancelCopy()
	if err != nil {
		return fail("copy", err)
	}
	if err := reached("copied"); err != nil {
		if errors.Is(err, ErrMoveCrashed) {
			return rep, err
		}
		return fail("copied", err)
	}

	step("verifying the copy")
	for _, tb := range tables {
		var n int64
		if err := dst.SQL.QueryRowContext(ctx, "SELECT count(*) FROM "+pgx.Identifier{t.Schema, tb}.Sanitize()).Scan(&n); err != nil {
			return fail("count target rows", err)
		}
		if n != rep.Rows[tb] {
			return fail("verify", fmt.Errorf("table %s: %d rows on %s, %d on %s", tb, rep.Rows[tb], src.Name, n, dst.Name))
		}
	}
	if o.Verify != nil {
		moved := t
		moved.Server = dst.Name
		if err := o.Verify(ctx, moved); err != nil {
			return fail("verify", err)
		}
	}
	if err := reached("verified"); err != nil {
		if errors.Is(err, ErrMoveCrashed) {
			return rep, err
		}
		return fail("verified", err)
	}

	step("switching over")
	rep.Backup = backupName(t.Schema, time.Now())
	// The name goes on record before the rename, so that a recovery finds
	// the source whether or not the rename committed.
	r.movePhase(moveID, "switching", rep.Backup)
	if _, err := srcTx.ExecContext(ctx, "ALTER SCHEMA "+pgx.Identifier{t.Schema}.Sanitize()+" RENAME TO "+pgx.Identifier{rep.Backup}.Sanitize()); err != nil {
		return fail("rename source", err)
	}
	if err := srcTx.Commit(); err != nil {
		return fail("rename source", err)
	}
	if crash("renamed") {
		crashed = true
		return rep, ErrMoveCrashed
	}
	if err := r.update(bg, slug, StatusMoving, prior, dst.Name, Change{Actor: actor, Reason: "moved from " + src.Name + " to " + dst.Name}); err != nil {
		if on, rerr := r.serverOf(bg, t.ID); rerr == nil && on == dst.Name {
			// The switch committed though its answer was lost: the move
			// is done, and the copy on the target is the tenant's data.
			rep.Duration = time.Since(start)
			r.finishMove(moveID, "moved", "registry switched (its answer was lost: "+err.Error()+"), source kept as "+rep.Backup)
			return rep, nil
		}
		// The registry still names the source: put the schema back there.
		if _, rerr := src.SQL.ExecContext(bg, "ALTER SCHEMA "+pgx.Identifier{rep.Backup}.Sanitize()+" RENAME TO "+pgx.Identifier{t.Schema}.Sanitize()); rerr != nil {
			err = errors.Join(err, fmt.Errorf("rename the source back from %s: %w", rep.Backup, rerr))
		}
		return rep, r.moveFailed(bg, t, prior, dst, moveID, "switch registry", err, actor)
	}
	if crash("switched") {
		crashed = true
		return rep, ErrMoveCrashed
	}
	rep.Duration = time.Since(start)
	r.finishMove(moveID, "moved", fmt.Sprintf("%s, %d tables, source kept as %s", rep.Method, len(tables), rep.Backup))
	return rep, nil
}

// moveFailed undoes a move that did not switch over: the copy on the target
// goes, the tenant returns to its former status on its source.
func (r *Registry) moveFailed(ctx context.Context, t Tenant, prior Status, dst *Server, moveID int64, at string, cause error, actor string) error {
	source := cmpOr(t.Server, DefaultServer)
	err := fmt.Errorf("move %s to %s failed at %s (it stays on %s, %s): %w", t.Slug, dst.Name, at, source, prior, cause)
	// The copy on the target goes only while the registry does not name
	// the target: never drop the schema the tenant is served from.
	if on, rerr := r.serverOf(ctx, t.ID); rerr != nil || on == dst.Name {
		err = errors.Join(err, fmt.Errorf("the registry names %q (read error: %v): the copy on %s is kept", on, rerr, dst.Name))
		r.finishMove(moveID, "failed", at+": "+cause.Error())
		return err
	}
	if _, derr := dst.SQL.ExecContext(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{t.Schema}.Sanitize()+" CASCADE"); derr != nil {
		err = errors.Join(err, fmt.Errorf("drop the partial copy on %s: %w", dst.Name, derr))
	}
	if uerr := r.update(ctx, t.Slug, StatusMoving, prior, source, Change{Actor: actor, Reason: "move to " + dst.Name + " failed at " + at}); uerr != nil {
		err = errors.Join(err, fmt.Errorf("restore status %s: %w", prior, uerr))
	}
	r.finishMove(moveID, "failed", at+": "+cause.Error())
	return err
}

// serverOf reads the server the registry names for a tenant, uncached.
func (r *Registry) serverOf(ctx context.Context, id uuid.UUID) (string, error) {
	var server string
	err := r.db.WithContext(ctx).Raw("SELECT coalesce(server, '') FROM "+controlTenants+" WHERE id = ?", id).Row().Scan(&server)
	return cmpOr(server, DefaultServer), err
}

// controlMoves records move attempts, in the control schema.
const controlMoves = "control.tenant_moves"

func (r *Registry) finishMove(id int64, outcome, detail string) {
	if len(detail) > 2000 {
		detail = detail[:2000]
	}
	if err := r.db.Exec("UPDATE "+controlMoves+" SET outcome = ?, detail = ?, finished_at = now() WHERE id = ?", outcome, detail, id).Error; err != nil {
		r.log.Error("tenant move not recorded", "move", id, "err", err)
	}
}

// movePhase records the step a move has reached (and, from the switch on,
// the name its source schema gets). A lost record only makes a recovery's
// report vaguer: recovery decides from the schemas themselves.
func (r *Registry) movePhase(id int64, phase, backup string) {
	q, args := "UPDATE "+controlMoves+" SET phase = ? WHERE id = ?", []any{phase, id}
	if backup != "" {
		q, args = "UPDATE "+controlMoves+" SET phase = ?, backup = ? WHERE id = ?", []any{phase, backup, id}
	}
	if err := r.db.Exec(q, args...).Error; err != nil {
		r.log.Error("tenant move step not recorded", "move", id, "phase", phase, "err", err)
	}
}

// moveLock takes a tenant's move lock, a session advisory lock on the
// control plane held on a connection of its own: at once or not at all
// when wait is 0, else waiting up to wait (a killed holder's connection may
// take a moment to be noticed closed). unlock(dead) lets it go; dead drops
// the connection instead, as a killed process's would be.
func (r *Registry) moveLock(ctx context.Context, id uuid.UUID, wait time.Duration) (unlock func(dead bool), err error) {
	db, err := r.db.DB()
	if err != nil {
		return nil, err
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	key := "marquee:tenant-move:" + id.String()
	var got bool
	if wait <= 0 {
		err = conn.QueryRowContext(ctx, "SELECT pg_try_advisory_lock(hashtextextended($1, 0))", key).Scan(&got)
	} else {
		// lock_timeout bounds the wait; set for this one statement's
		// transaction only, so the pooled connection keeps its settings.
		var tx *sql.Tx
		if tx, err = conn.BeginTx(ctx, nil); err == nil {
			if _, err = tx.ExecContext(ctx, fmt.Sprintf("SET LOCAL lock_timeout = %d", wait.Milliseconds())); err == nil {
				_, err = tx.ExecContext(ctx, "SELECT pg_advisory_lock(hashtextextended($1, 0))", key)
			}
			var pgErr *pgconn.PgError
			switch {
			case err == nil:
				// A session lock outlives the transaction that took it.
				got, err = true, tx.Commit()
			case errors.As(err, &pgErr) && pgErr.Code == "55P03": // lock_not_available
				err = tx.Rollback()
			default:
				_ = tx.Rollback()
			}
		}
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("move lock: %w", err)
	}
	if !got {
		conn.Close()
		return nil, ErrMoveLocked
	}
	return func(dead bool) {
		if dead {
			_ = conn.Raw(func(any) error { return driver.ErrBadConn }) // closes it for good
			return
		}
		if _, err := conn.ExecContext(context.Background(), "SELECT pg_advisory_unlock(hashtextextended($1, 0))", key); err != nil {
			// A connection that cannot unlock is closed, which unlocks.
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
			return
		}
		conn.Close()
	}, nil
}

// Move is one recorded move attempt.
type Move struct {
	From       string     `gorm:"column:from_server"`
	To         string     `gorm:"column:to_server"`
	StartedAt  time.Time  `gorm:"column:started_at"`
	FinishedAt *time.Time `gorm:"column:finished_at"`
	Outcome    string     `gorm:"column:outcome"`
	Detail     string     `gorm:"column:detail"`
}

// Moves returns a tenant's move attempts, newest first.
func (r *Registry) Moves(ctx context.Context, t Tenant, limit int) ([]Move, error) {
	var out []Move
	err := r.db.WithContext(ctx).Raw("SELECT from_server, to_server, started_at, finished_at, outcome, detail FROM "+controlMoves+
		" WHERE tenant_id = ? ORDER BY id DESC LIMIT ?", t.ID, limit).Scan(&out).Error
	return out, err
}

// backupName is what the source schema is renamed to after a move.
func backupName(schema string, at time.Time) string {
	return fmt.Sprintf("%s__moved_%d", schema, at.Unix())
}

// lockTables takes every table of the schema in EXCLUSIVE mode: reads (and
// pg_dump) go on, writes wait until the transaction ends. It waits for the
// writes in flight; should a writer be waiting for one of these tables
// while holding another, PostgreSQL breaks the deadlock and the lock is
// tried again.
func lockTables(ctx context.Context, tx *sql.Tx, schema string) ([]string, error) {
	rows, err := tx.QueryContext(ctx, `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') ORDER BY c.relname`, schema)
	if err != nil {
		return nil, err
	}
	var tables []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return nil, err
		}
		tables = append(tables, n)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(tables) == 0 {
		return nil, fmt.Errorf("schema %s has no tables on its server", schema)
	}
	names := make([]string, len(tables))
	for i, tb := range tables {
		names[i] = pgx.Identifier{schema, tb}.Sanitize()
	}
	if _, err := tx.ExecContext(ctx, "SET LOCAL lock_timeout = '"+moveLockTimeout+"'"); err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		// A savepoint, so a deadlock victim can try again in the same
		// transaction.
		if _, err := tx.ExecContext(ctx, "SAVEPOINT lock_tables"); err != nil {
			return nil, err
		}
		_, err := tx.ExecContext(ctx, "LOCK TABLE "+strings.Join(names, ", ")+" IN EXCLUSIVE MODE")
		if err == nil {
			return tables, nil
		}
		if _, rerr := tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT lock_tables"); rerr != nil || attempt == 3 || !Retryable(err) {
			return nil, err
		}
	}
}

// sameDatabase reports whether two pools reach one database (a server
// configured twice under two names), where a copy would overwrite its
// source. Advisory locks are per database: a random key held on one pool
// cannot be taken on the other only if they are the same.
func sameDatabase(ctx context.Context, a, b *sql.DB) (bool, error) {
	var buf [8]byte
	_, _ = rand.Read(buf[:])
	key := int64(binary.BigEndian.Uint64(buf[:]) & 0x7fffffffffffffff)
	ca, err := a.Conn(ctx)
	if err != nil {
		return false, err
	}
	defer ca.Close()
	if _, err := ca.ExecContext(ctx, "SELECT pg_advisory_lock($1)", key); err != nil {
		return false, err
	}
	defer ca.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", key) //nolint:errcheck
	cb, err := b.Conn(ctx)
	if err != nil {
		return false, err
	}
	defer cb.Close()
	var got bool
	if err := cb.QueryRowContext(ctx, "SELECT pg_try_advisory_lock($1)", key).Scan(&got); err != nil {
		return false, err
	}
	if got {
		_, _ = cb.ExecContext(ctx, "SELECT pg_advisory_unlock($1)", key)
	}
	return !got, nil
}

func dumpToolsFound() bool {
	_, e1 := exec.LookPath("pg_dump")
	_, e2 := exec.LookPath("pg_restore")
	return e1 == nil && e2 == nil
}

// dumpRestore pipes pg_dump of one schema into pg_restore on the target, in
// one transaction there: killed midway, it leaves nothing behind. Passwords
// go through the environment, never the command line (ps shows it).
func dumpRestore(ctx context.Context, srcURL, dstURL, schema string) error {
	dump := exec.CommandContext(ctx, "pg_dump", "--format=custom", "--no-owner", "--no-privileges", "--schema="+schema)
	dstCfg, err := pgx.ParseConfig(dstURL)
	if err != nil {
		return err
	}
	restore := exec.CommandContext(ctx, "pg_restore", "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction",
		"--dbname="+dstCfg.Database)
	if dump.Env, err = pgEnv(srcURL); err != nil {
		return err
	}
	if restore.Env, err = pgEnv(dstURL); err != nil {
		return err
	}
	// An OS pipe, not an io.Pipe: should pg_restore die, pg_dump's writes
	// fail (EPIPE) and it exits, instead of blocking a copying goroutine.
	pr, pw, err := os.Pipe()
	if err != nil {
		return err
	}
	dump.Stdout = pw
	restore.Stdin = pr
	var dumpErr, restoreErr bytes.Buffer
	dump.Stderr, restore.Stderr = &dumpErr, &restoreErr
	if err := restore.Start(); err != nil {
		pr.Close()
		pw.Close()
		return fmt.Errorf("pg_restore: %w", err)
	}
	pr.Close() // pg_restore holds its own copy
	if err := dump.Start(); err != nil {
		pw.Close()
		_ = restore.Wait()
		return fmt.Errorf("pg_dump: %w", err)
	}
	pw.Close()
	derr := dump.Wait()
	rerr := restore.Wait()
	if rerr != nil {
		return fmt.Errorf("pg_restore: %w: %s", rerr, strings.TrimSpace(restoreErr.String()))
	}
	if derr != nil {
		return fmt.Errorf("pg_dump: %w: %s", derr, strings.TrimSpace(dumpErr.String()))
	}
	return nil
}

// pgEnv is this process's environment with libpq's variables for a URL.
func pgEnv(databaseURL string) ([]string, error) {
	cfg, err := pgx.ParseConfig(databaseURL)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(databaseURL)
	if err != nil {
		return nil, err
	}
	env := []string{}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") {
			env = append(env, kv)
		}
	}
	env = append(env, "PGHOST="+cfg.Host, fmt.Sprintf("PGPORT=%d", cfg.Port), "PGUSER="+cfg.User,
		"PGPASSWORD="+cfg.Password, "PGDATABASE="+cfg.Database)
	if mode := u.Query().Get("sslmode"); mode != "" {
		env = append(env, "PGSSLMODE="+mode)
	}
	return env, nil
}

// logicalCopy copies a schema without PostgreSQL's tools: the target is
// built from the same migrations (so the source must be at the latest
// version), then every table's rows are copied over COPY in one target
// transaction with triggers and foreign keys off while they load (as
// pg_restore does; it takes a superuser), and the sequences are set. src is
// the connection whose open transaction holds the source's tables.
func (r *Registry) logicalCopy(ctx context.Context, src *sql.Conn, dst *Server, schema string, tables []string) error {
	if _, err := r.runner.SchemaOn(ctx, dst.Name, schema); err != nil {
		return err
	}
	qs := pgx.Identifier{schema}.Sanitize()
	var srcV, dstV int64
	if err := src.QueryRowContext(ctx, "SELECT coalesce(max(version_id), 0) FROM "+qs+".goose_db_version WHERE is_applied").Scan(&srcV); err != nil {
		return err
	}
	if err := dst.SQL.QueryRowContext(ctx, "SELECT coalesce(max(version_id), 0) FROM "+qs+".goose_db_version WHERE is_applied").Scan(&dstV); err != nil {
		return err
	}
	if srcV != dstV {
		return fmt.Errorf("the source schema is at migration %d and this release's latest is %d: run migrate first", srcV, dstV)
	}
	// Columns to copy, per table, as the source has them (generated ones
	// are computed again on the target).
	cols := map[string]string{}
	for _, tb := range tables {
		var list string
		err := src.QueryRowContext(ctx, `SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute
			WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped AND attgenerated = ''`,
			pgx.Identifier{schema, tb}.Sanitize()).Scan(&list)
		if err != nil {
			return err
		}
		cols[tb] = list
	}
	type seq struct {
		name   string
		last   int64
		called bool
	}
	var seqs []seq
	rows, err := src.QueryContext(ctx, `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relkind = 'S'`, schema)
	if err != nil {
		return err
	}
	for rows.Next() {
		var sq seq
		if err := rows.Scan(&sq.name); err != nil {
			rows.Close()
			return err
		}
		seqs = append(seqs, sq)
	}
	rows.Close()
	for i := range seqs {
		if err := src.QueryRowContext(ctx, "SELECT last_value, is_called FROM "+pgx.Identifier{schema, seqs[i].name}.Sanitize()).Scan(&seqs[i].last, &seqs[i].called); err != nil {
			return err
		}
	}

	dc, err := dst.SQL.Conn(ctx)
	if err != nil {
		return err
	}
	defer dc.Close()
	return dc.Raw(func(dconn any) error {
		d := dconn.(*stdlib.Conn).Conn().PgConn()
		exec := func(q string) error { return d.Exec(ctx, q).Close() }
		if err := exec("BEGIN; SET LOCAL session_replication_role = replica"); err != nil {
			return fmt.Errorf("target (a superuser is needed to load with triggers off): %w", err)
		}
		ok := false
		defer func() {
			if !ok {
				_ = exec("ROLLBACK")
			}
		}()
		names := make([]string, len(tables))
		for i, tb := range tables {
			names[i] = pgx.Identifier{schema, tb}.Sanitize()
		}
		// The migrations may have written rows (goose's own): the copy
		// replaces them.
		if err := exec("TRUNCATE " + strings.Join(names, ", ")); err != nil {
			return err
		}
		for i, tb := range tables {
			if err := copyTable(ctx, src, d, names[i], cols[tb]); err != nil {
				return fmt.Errorf("table %s: %w", tb, err)
			}
		}
		for _, sq := range seqs {
			q := fmt.Sprintf("SELECT setval(%s, %d, %t)", quoteLiteral(pgx.Identifier{schema, sq.name}.Sanitize()), sq.last, sq.called)
			if err := exec(q); err != nil {
				return err
			}
		}
		if err := exec("COMMIT"); err != nil {
			return err
		}
		ok = true
		return nil
	})
}

// copyTable streams one table's rows from the source transaction's
// connection into the target's.
func copyTable(ctx context.Context, src *sql.Conn, dst *pgconn.PgConn, table, cols string) error {
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := src.Raw(func(sconn any) error {
			_, err := sconn.(*stdlib.Conn).Conn().PgConn().CopyTo(ctx, pw, "COPY "+table+" ("+cols+") TO STDOUT")
			return err
		})
		pw.CloseWithError(err)
		done <- err
	}()
	_, err := dst.CopyFrom(ctx, pr, "COPY "+table+" ("+cols+") FROM STDIN")
	pr.CloseWithError(err) // unblocks the source side if the target failed
	if serr := <-done; serr != nil && err == nil {
		err = serr
	}
	return err
}

func quoteLiteral(v string) string { return "'" + strings.ReplaceAll(v, "'", "''") + "'" }

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
