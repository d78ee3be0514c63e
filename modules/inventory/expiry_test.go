package inventory_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"gorm.io/gorm"

	"marquee/app/apptest"
	"marquee/jobs"
	"marquee/modules/inventory"
)

// dueIn moves a hold's expiry to d from now (by the database's clock) and
// returns it.
func (s *shop) dueIn(t testing.TB, holdID uuid.UUID, d time.Duration) time.Time {
	t.Helper()
	var due time.Time
	s.sql(t, func(tx *gorm.DB) error {
		return tx.Raw(`UPDATE inv_holds SET expires_at = now() + ? * interval '1 millisecond' WHERE id = ? RETURNING expires_at`,
			d.Milliseconds(), holdID).Row().Scan(&due)
	})
	return due
}

// lateness is how long after its expiry a hold's seats went back on sale
// (its closed_at), or -1 while it is still active.
func (s *shop) lateness(t testing.TB, holdID uuid.UUID) time.Duration {
	t.Helper()
	var late *float64
	s.sql(t, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT extract(epoch FROM closed_at - expires_at) FROM inv_holds WHERE id = ?`, holdID).Row().Scan(&late)
	})
	if late == nil {
		return -1
	}
	return time.Duration(*late * float64(time.Second))
}

// Asynq keeps a task's time in whole seconds, dropping the fraction: the
// expiry task is scheduled at the second after the hold's time, never the
// one before (which started it up to a second early, to fail and be retried
// 15 to 45 s later).
func TestExpiryTaskNeverScheduledEarly(t *testing.T) {
	// Serial: it reads the deployment's Asynq queue, which other tests fill.
	s, ev, _ := onSale(t, "due", "Due Night", simpleSetup(1, 40, 0, nil))
	env := s.env
	insp := asynq.NewInspector(asynqOpt(t))
	defer insp.Close()
	early := 0
	for i := range 20 {
		h := s.mustHold(t, ev, s.buyer(t), map[string]any{"seats": []string{fmt.Sprintf("A-1-%d", i+1)}})
		info, err := insp.GetTaskInfo(env.App.Jobs.Queue(jobs.QueueCritical), "hold-expire:"+s.slug+":"+h.ID.String())
		if err != nil {
			t.Fatalf("expiry task not scheduled: %v", err)
		}
		d := info.NextProcessAt.Sub(h.ExpiresAt)
		if d < 0 {
			early++
		}
		if d >= time.Second {
			t.Fatalf("task at %v for a hold due at %v: a second or more late", info.NextProcessAt, h.ExpiresAt)
		}
	}
	if early > 0 {
		t.Fatalf("%d of 20 expiry tasks scheduled before their hold's time", early)
	}
}

// An expiry task that runs just before its hold's time (the database's clock
// a little behind the worker's) waits for it and expires the hold; one that
// runs far too early asks to run again exactly when the hold is due, not
// after Asynq's backoff.
func TestExpiryTaskRunEarlyWaitsForTheHold(t *testing.T) {
	// Serial: its bound of 0.5 s late is a latency bound.
	s, ev, _ := onSale(t, "early", "Early Night", simpleSetup(1, 10, 0, nil))
	env := s.env
	soon := s.mustHold(t, ev, s.buyer(t), map[string]any{"seats": []string{"A-1-1"}})
	later := s.mustHold(t, ev, s.buyer(t), map[string]any{"seats": []string{"A-1-2"}})
	run := func(ids ...uuid.UUID) error {
		payload, _ := json.Marshal(map[string]any{"hold_ids": ids})
		env1, _ := json.Marshal(jobs.Envelope{Tenant: s.slug, Payload: payload})
		return env.App.Jobs.Mux().ProcessTask(context.Background(), asynq.NewTask(inventory.TaskHoldExpire, env1))
	}

	s.dueIn(t, soon.ID, 700*time.Millisecond)
	if err := run(soon.ID); err != nil {
		t.Fatalf("task run 0.7 s early: %v", err)
	}
	late := s.lateness(t, soon.ID)
	if late < 0 || late > 500*time.Millisecond {
		t.Fatalf("hold expired %v after its time", late)
	}
	if st := s.seatState(t, ev, "A-1-1"); st != "available" {
		t.Fatalf("seat %s after expiry", st)
	}

	s.dueIn(t, later.ID, 30*time.Second)
	err := run(later.ID)
	var retry *jobs.RetryIn
	if !errors.As(err, &retry) || retry.After < 29*time.Second || retry.After > 30*time.Second {
		t.Fatalf("task run 30 s early: %v, want a retry in 30 s", err)
	}
	if s.lateness(t, later.ID) != -1 {
		t.Fatal("hold expired before its time")
	}
}

// A hold whose expiry task is lost (the server died between the hold's
// commit and the enqueue, or a worker died running the task) is expired by
// the sweeper within seconds of its time, through the scheduler and worker
// alone, not at the next minute.
//
// It runs on a database of its own: the sweep is fanned out to every active
// chain of the deployment, and the package's database holds hundreds of
// chains left by the other tests, whose sweeps queued ahead of this one's
// made it late under a loaded CI machine (a measure of 4 workers against
// hundreds of chains, not of the sweeper).
func TestLostExpiryTaskSweptWithinSeconds(t *testing.T) {
	// Serial: it aligns with the wall-clock minute and bounds the sweep's lateness.
	url, drop, err := apptest.Database("inventory_lost_expiry")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(drop)
	env, inv := startEnvOn(t, url, nil, nil)
	s := newShop(t, env, inv, "lost")
	ev := s.event(t, "Lost Night")
	s.configure(t, ev, simpleSetup(1, 10, 0, nil))
	// Keep a minute's turn out of the window: a per-minute sweep would then
	// be more than 10 s late for sure.
	if now := time.Now().UTC(); now.Second() >= 45 {
		time.Sleep(now.Truncate(time.Minute).Add(time.Minute + 500*time.Millisecond).Sub(now)) // not synchronisation: the real scheduler's minutes are wall-clock minutes
	}
	h := s.mustHold(t, ev, s.buyer(t), map[string]any{"seats": []string{"A-1-3", "A-1-4"}})
	insp := asynq.NewInspector(asynqOpt(t))
	defer insp.Close()
	if err := insp.DeleteTask(env.App.Jobs.Queue(jobs.QueueCritical), "hold-expire:"+s.slug+":"+h.ID.String()); err != nil {
		t.Fatal(err)
	}
	due := s.dueIn(t, h.ID, time.Second)

	srv := env.App.Jobs.NewServer(4)
	if err := srv.Start(env.App.Jobs.Mux()); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	sched, err := env.App.Jobs.NewScheduler()
	if err != nil {
		t.Fatal(err)
	}
	if err := sched.Start(); err != nil {
		t.Fatal(err)
	}
	defer sched.Shutdown()

	if !apptest.Poll(time.Until(due.Add(10*time.Second)), func() bool { return s.lateness(t, h.ID) >= 0 }) {
		t.Fatal("hold without a task still active 10 s after its time")
	}
	late := s.lateness(t, h.ID)
	t.Logf("swept %v after its time", late.Round(time.Millisecond))
	if late < 0 || late > 10*time.Second {
		t.Fatalf("swept %v after its time", late)
	}
	if st := s.seatState(t, ev, "A-1-3"); st != "available" {
		t.Fatalf("seat %s after the sweep", st)
	}
}
