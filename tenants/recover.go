package tenants

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// RecoverOptions tune RecoverMove.
type RecoverOptions struct {
	// Actor and Reason go to the status history and the move's record.
	Actor, Reason string
	// Verify checks the copy on the target before a recovery points the
	// registry there (the app checks the ledger's hash chain), as in Move.
	Verify func(ctx context.Context, t Tenant) error
	// Wait bounds the wait for the move lock (default 5 s): a killed
	// move's connection may take a moment to be seen closed; a live move
	// holds it longer, and the recovery is refused.
	Wait time.Duration
}

// RecoverReport says what a recovery did.
type RecoverReport struct {
	From, To string
	Phase    string // the step the dead move had recorded last
	// Outcome is "rolled back" (the tenant stays on From, the copy on To
	// dropped), "finished" (the switch to To completed, the source kept
	// as Backup) or "closed" (the move had ended; only its record was
	// open).
	Outcome string
	Backup  string
	Server  string // where the tenant is served now
	Status  Status
}

// RecoverMove ends a move whose process died, leaving the tenant "moving"
// (answered 503). It takes the tenant's move lock, so it never runs beside
// a live move (ErrMoveLocked), and decides from the schemas themselves: if
// the source schema is still there under its own name the switch never
// happened, so the copy on the target is dropped and the tenant returns to
// its former status on the source; if the source was already renamed away
// (the switch was under way, past the verified copy) the copy on the target
// is checked again against the renamed source, row by row count and by
// opts.Verify, and the registry switched to it. Either way the tenant ends
// serving in the status it had before the move, and the move's record and
// the status history say what the recovery did.
func (r *Registry) RecoverMove(ctx context.Context, servers *Servers, slug string, o RecoverOptions) (rep RecoverReport, err error) {
	t, err := r.load(ctx, slug)
	if err != nil {
		return rep, err
	}
	if o.Wait <= 0 {
		o.Wait = 5 * time.Second
	}
	unlock, err := r.moveLock(ctx, t.ID, o.Wait)
	if err != nil {
		return rep, err
	}
	defer unlock(false)
	if t, err = r.load(ctx, slug); err != nil { // under the lock
		return rep, err
	}
	actor := cmpOr(o.Actor, "system")
	var rows []struct {
		ID          int64   `gorm:"column:id"`
		From        string  `gorm:"column:from_server"`
		To          string  `gorm:"column:to_server"`
		PriorStatus *string `gorm:"column:prior_status"`
		Phase       string  `gorm:"column:phase"`
		Backup      *string `gorm:"column:backup"`
	}
	if err := r.db.WithContext(ctx).Raw("SELECT id, from_server, to_server, prior_status, phase, backup FROM "+controlMoves+
		" WHERE tenant_id = ? AND outcome = 'running' ORDER BY id DESC LIMIT 1", t.ID).Scan(&rows).Error; err != nil {
		return rep, err
	}
	if len(rows) == 0 {
		if t.Status == StatusMoving {
			return rep, fmt.Errorf("tenant %s is moving but no unfinished move is recorded: nothing to recover from", slug)
		}
		return rep, fmt.Errorf("tenant %s has no unfinished move", slug)
	}
	mv := rows[0]
	rep.From, rep.To, rep.Phase = mv.From, mv.To, mv.Phase
	if mv.Backup != nil {
		rep.Backup = *mv.Backup
	}
	on := cmpOr(t.Server, DefaultServer)
	why := func(what string) string {
		s := fmt.Sprintf("recovered the move to %s that died after step %q: %s", mv.To, cmpOr(mv.Phase, "started"), what)
		if o.Reason != "" {
			s += " (" + o.Reason + ")"
		}
		return s
	}
	done := func(outcome, status string) (RecoverReport, error) {
		rep.Outcome, rep.Server = outcome, on
		r.finishMove(mv.ID, status, "by "+actor+": "+why(outcome))
		cur, err := r.load(context.WithoutCancel(ctx), slug)
		rep.Status = cur.Status
		return rep, err
	}

	if t.Status != StatusMoving {
		// The move ended (switched, or undone) but died before closing its
		// record: close it as the registry has it.
		if on == mv.To {
			return done("closed", "moved")
		}
		return done("closed", "failed")
	}
	src, err := servers.Get(mv.From)
	if err != nil {
		return rep, err
	}
	dst, err := servers.Get(mv.To)
	if err != nil {
		return rep, err
	}
	if on != src.Name {
		// The registry changes server and status in one transaction, so a
		// moving tenant is still placed on its source.
		return rep, fmt.Errorf("tenant %s is moving but placed on %s, not the move's source %s: recover it by hand", slug, on, src.Name)
	}
	prior, err := r.priorStatus(ctx, t, mv.PriorStatus)
	if err != nil {
		return rep, err
	}
	bg := context.WithoutCancel(ctx) // from here on, finish whatever the caller does
	sourceThere, err := schemaExists(bg, src, t.Schema)
	if err != nil {
		return rep, err
	}
	if sourceThere {
		// The switch never committed: the source is whole (the dead move's
		// writers were locked out, and "moving" kept the rest away).
		if err := r.undoMove(bg, t, src, dst, prior, Change{Actor: actor, Reason: why("rolled back")}); err != nil {
			return rep, err
		}
		rep.Backup = "" // recorded, but the rename never committed
		return done("rolled back", "failed")
	}
	if rep.Backup == "" {
		return rep, fmt.Errorf("tenant %s: its schema %s is gone from %s and the move recorded no backup name: recover it by hand", slug, t.Schema, src.Name)
	}
	backupThere, err := schemaExists(bg, src, rep.Backup)
	if err != nil {
		return rep, err
	}
	if !backupThere {
		return rep, fmt.Errorf("tenant %s: neither %s nor %s is on %s: recover it by hand", slug, t.Schema, rep.Backup, src.Name)
	}
	// The source was renamed away: the dead move was switching, past its
	// verified copy. Check the copy again before serving from it.
	if verr := r.verifyCopy(bg, src, rep.Backup, dst, t, o.Verify); verr != nil {
		// Not what the source holds after all: put the source back.
		if _, err := src.SQL.ExecContext(bg, "ALTER SCHEMA "+pgx.Identifier{rep.Backup}.Sanitize()+" RENAME TO "+pgx.Identifier{t.Schema}.Sanitize()); err != nil {
			return rep, errors.Join(verr, fmt.Errorf("rename the source back from %s: %w", rep.Backup, err))
		}
		if err := r.undoMove(bg, t, src, dst, prior, Change{Actor: actor, Reason: why("rolled back, the copy failed its check: " + verr.Error())}); err != nil {
			return rep, err
		}
		rep.Backup = ""
		return done("rolled back", "failed")
	}
	if err := r.update(bg, slug, StatusMoving, prior, dst.Name, Change{Actor: actor, Reason: why("switched to " + dst.Name)}); err != nil {
		return rep, err
	}
	on = dst.Name
	return done("finished", "moved")
}

// undoMove drops a dead move's copy on the target and puts the tenant back
// in its former status on its source.
func (r *Registry) undoMove(ctx context.Context, t Tenant, src, dst *Server, prior Status, c Change) error {
	if _, err := dst.SQL.ExecContext(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{t.Schema}.Sanitize()+" CASCADE"); err != nil {
		return fmt.Errorf("drop the copy on %s: %w", dst.Name, err)
	}
	return r.update(ctx, t.Slug, StatusMoving, prior, src.Name, c)
}

// priorStatus is the status a tenant had before its move: as the move
// recorded it, or, for a move recorded before that was kept, the status
// its last change to "moving" came from.
func (r *Registry) priorStatus(ctx context.Context, t Tenant, recorded *string) (Status, error) {
	if recorded != nil && *recorded != "" {
		return Status(*recorded), nil
	}
	var from []string
	if err := r.db.WithContext(ctx).Raw("SELECT from_status FROM "+controlHistory+" WHERE tenant_id = ? AND to_status = ? ORDER BY id DESC LIMIT 1",
		t.ID, StatusMoving).Scan(&from).Error; err != nil {
		return "", err
	}
	if len(from) == 0 || (Status(from[0]) != StatusActive && Status(from[0]) != StatusSuspended) {
		return StatusSuspended, nil // unknown: serve nobody until an operator resumes it
	}
	return Status(from[0]), nil
}

// verifyCopy compares every table's row count of the source schema (under
// the name it has now) with the tenant's copy on the target, then runs
// verify on the target.
func (r *Registry) verifyCopy(ctx context.Context, src *Server, srcSchema string, dst *Server, t Tenant, verify func(context.Context, Tenant) error) error {
	rows, err := src.SQL.QueryContext(ctx, `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') ORDER BY c.relname`, srcSchema)
	if err != nil {
		return err
	}
	var tables []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return err
		}
		tables = append(tables, n)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if len(tables) == 0 {
		return fmt.Errorf("schema %s on %s has no tables", srcSchema, src.Name)
	}
	for _, tb := range tables {
		var a, b int64
		if err := src.SQL.QueryRowContext(ctx, "SELECT count(*) FROM "+pgx.Identifier{srcSchema, tb}.Sanitize()).Scan(&a); err != nil {
			return err
		}
		if err := dst.SQL.QueryRowContext(ctx, "SELECT count(*) FROM "+pgx.Identifier{t.Schema, tb}.Sanitize()).Scan(&b); err != nil {
			return fmt.Errorf("table %s on %s: %w", tb, dst.Name, err)
		}
		if a != b {
			return fmt.Errorf("table %s: %d rows on %s, %d on %s", tb, a, src.Name, b, dst.Name)
		}
	}
	if verify != nil {
		moved := t
		moved.Server = dst.Name
		return verify(ctx, moved)
	}
	return nil
}

func schemaExists(ctx context.Context, s *Server, schema string) (bool, error) {
	var n int
	err := s.SQL.QueryRowContext(ctx, "SELECT count(*) FROM pg_namespace WHERE nspname = $1", schema).Scan(&n)
	return n == 1, err
}
