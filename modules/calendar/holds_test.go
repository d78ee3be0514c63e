package calendar_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"

	"marquee/app/apptest"
	"marquee/jobs"
	"marquee/modules/calendar"
)

func TestHoldRanksReleaseAndConfirm(t *testing.T) {
	env, mod := startEnv(t)
	c := newChain(t, env, mod, "holds")
	holds := "/api/v1/venues/" + c.venue + "/holds/"

	h1 := c.createHold(t, hold(c.stageA, 20, 23, "title", "Band One"))
	h2 := c.createHold(t, hold(c.stageA, 19, 22, "title", "Band Two"))
	h3 := c.createHold(t, hold(c.stageA, 21, 24, "title", "Band Three", "setup_minutes", 60))
	if h1.Rank != 1 || h2.Rank != 2 || h3.Rank != 3 || h3.RankLabel != "3rd" || h1.RankLabel != "1st" {
		t.Fatalf("ranks on arrival: %d %d %d", h1.Rank, h2.Rank, h3.Rank)
	}
	// Holds elsewhere rank on their own.
	if h := c.createHold(t, hold(c.stageA, 30, 32)); h.Rank != 1 {
		t.Fatalf("non-overlapping hold rank %d", h.Rank)
	}
	if h := c.createHold(t, hold(c.stageB, 20, 23)); h.Rank != 1 {
		t.Fatalf("other stage hold rank %d", h.Rank)
	}

	// Releasing the first moves the others up.
	res := c.do(t, "DELETE", holds+h1.ID, nil)
	mustStatus(t, res, http.StatusOK)
	if got := decode[holdOut](t, res.Body); got.Status != "released" || got.Rank != 0 {
		t.Fatalf("released hold: %s", res.Body)
	}
	mustStatus(t, c.do(t, "DELETE", holds+h1.ID, nil), http.StatusOK) // again: nothing changes
	if r2, r3 := c.hold(t, h2.ID).Rank, c.hold(t, h3.ID).Rank; r2 != 1 || r3 != 2 {
		t.Fatalf("after release: %d %d", r2, r3)
	}

	// Confirming turns a hold into an event; the holds behind move up.
	res = c.do(t, "POST", holds+h2.ID+"/confirm", map[string]any{"status": "on_sale"})
	mustStatus(t, res, http.StatusCreated)
	e := decode[eventOut](t, res.Body)
	if e.Title != "Band Two" || e.Status != "on_sale" || e.StartsAt != at(19) || e.StageID == nil || *e.StageID != c.stageA {
		t.Fatalf("confirmed event: %s", res.Body)
	}
	if got := c.hold(t, h2.ID); got.Status != "confirmed" || got.EventID == nil || *got.EventID != e.ID {
		t.Fatalf("confirmed hold: %+v", got)
	}
	res = c.do(t, "POST", holds+h2.ID+"/confirm", nil)
	if res.Status != http.StatusConflict || res.Code() != "hold_confirmed" {
		t.Fatalf("confirm twice: %d %s", res.Status, res.Body)
	}
	mustStatus(t, c.do(t, "DELETE", holds+h2.ID, nil), http.StatusConflict)

	// h3 is now first among holds, but the confirmed event is in its way.
	got := c.hold(t, h3.ID)
	if got.Rank != 1 || !got.Blocked {
		t.Fatalf("h3 after confirm: %+v", got)
	}
	co := c.conflict(t, c.do(t, "POST", holds+h3.ID+"/confirm", nil))
	if co.Conflicts[0].EventID != e.ID {
		t.Fatalf("confirm into event names %+v", co)
	}
	if got := c.hold(t, h3.ID); got.Status != "active" {
		t.Fatalf("a refused confirm changed the hold: %+v", got)
	}
	// Release through the POST form of the route; then the window is free
	// for the hold behind once the event is cancelled.
	h4 := c.createHold(t, hold(c.stageA, 19, 20))
	mustStatus(t, c.do(t, "POST", holds+h3.ID+"/release", nil), http.StatusOK)
	mustStatus(t, c.do(t, "PATCH", "/api/v1/venues/"+c.venue+"/events/"+e.ID, map[string]any{"status": "cancelled"}), http.StatusOK)
	if got := c.hold(t, h4.ID); got.Rank != 1 || got.Blocked {
		t.Fatalf("h4: %+v", got)
	}
	mustStatus(t, c.do(t, "POST", holds+h4.ID+"/confirm", map[string]any{"title": "Band Four"}), http.StatusCreated)

	// The list shows live holds with ranks; bad input is refused.
	res = c.do(t, "GET", "/api/v1/venues/"+c.venue+"/holds?from=2031-06-01&to=2031-07-01", nil)
	mustStatus(t, res, http.StatusOK)
	if list := decode[struct{ Items []holdOut }](t, res.Body); len(list.Items) != 2 {
		t.Fatalf("live holds: %s", res.Body)
	}
	for _, body := range []map[string]any{
		hold(c.stageA, 20, 19),
		hold("", 20, 22),
		hold(uuid.NewString(), 20, 22),
		hold(c.stageA, 20, 22, "expires_at", time.Now().Add(-time.Hour).Format(time.RFC3339)),
		hold(c.stageA, 20, 22, "teardown_minutes", 5000),
	} {
		res := c.do(t, "POST", "/api/v1/venues/"+c.venue+"/holds", body)
		if res.Status != http.StatusBadRequest && res.Status != http.StatusNotFound {
			t.Errorf("bad hold %v: %d %s", body, res.Status, res.Body)
		}
	}
}

func TestHoldRanksUnderConcurrency(t *testing.T) {
	env, mod := startEnv(t, func(o *apptest.Options) { o.DBMaxConns = 24 })
	c := newChain(t, env, mod, "holdrace")
	const n = 30
	bodies := make([]any, n)
	for i := range bodies {
		bodies[i] = hold(c.stageA, 20, 23, "title", fmt.Sprintf("Act %d", i))
	}
	res := c.race(t, "POST", repeat(n, "/api/v1/venues/"+c.venue+"/holds"), bodies)
	var ids []string
	var ranks []int
	for _, r := range res {
		mustStatus(t, r, http.StatusCreated)
		h := decode[holdOut](t, r.Body)
		ids = append(ids, h.ID)
		ranks = append(ranks, h.Rank)
	}
	// Each hold got a distinct rank when it was created: arrival order is
	// commit order per stage.
	slices.Sort(ranks)
	for i, r := range ranks {
		if r != i+1 {
			t.Fatalf("ranks at creation: %v", ranks)
		}
	}

	// Release a third of them concurrently; the rest close ranks in order.
	before := map[string]int{}
	for _, id := range ids {
		before[id] = c.hold(t, id).Rank
	}
	rand.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	gone, kept := ids[:10], ids[10:]
	var paths []string
	for _, id := range gone {
		paths = append(paths, "/api/v1/venues/"+c.venue+"/holds/"+id+"/release")
	}
	for _, r := range c.race(t, "POST", paths, make([]any, len(paths))) {
		mustStatus(t, r, http.StatusOK)
	}
	slices.SortFunc(kept, func(a, b string) int { return before[a] - before[b] })
	for i, id := range kept {
		if got := c.hold(t, id).Rank; got != i+1 {
			t.Fatalf("hold %d of the kept ones has rank %d", i+1, got)
		}
	}

	// Confirming the first two at once: the 1st becomes the event. The 2nd
	// is refused either as outranked (it looked while the 1st was still a
	// live hold) or by the event the 1st became.
	first, second := kept[0], kept[1]
	res = c.race(t, "POST", []string{
		"/api/v1/venues/" + c.venue + "/holds/" + first + "/confirm",
		"/api/v1/venues/" + c.venue + "/holds/" + second + "/confirm",
	}, []any{nil, nil})
	mustStatus(t, res[0], http.StatusCreated)
	if res[1].Status != http.StatusConflict || (res[1].Code() != "hold_outranked" && res[1].Code() != "schedule_conflict") {
		t.Fatalf("the 2nd hold's confirm: %d %s", res[1].Status, res[1].Body)
	}
	if got := c.hold(t, second); got.Status != "active" || !got.Blocked {
		t.Fatalf("the refused 2nd hold: %+v", got)
	}
}

func TestHoldExpiryTaskAndSweeper(t *testing.T) {
	env, mod := startEnv(t)
	c := newChain(t, env, mod, "expiry")
	ctx := context.Background()

	// The sweeper is on the scheduler's list, every minute on the critical queue.
	if _, err := env.App.Jobs.NewScheduler(); err != nil {
		t.Fatalf("scheduler: %v", err)
	}

	// Through real Redis: the expiry task queued at creation fires at expires_at.
	soon := time.Now().Add(2 * time.Second).UTC().Truncate(time.Second).Add(time.Second)
	h1 := c.createHold(t, hold(c.stageA, 20, 23, "expires_at", soon.Format(time.RFC3339)))
	h2 := c.createHold(t, hold(c.stageA, 20, 23))
	if h1.Rank != 1 || h2.Rank != 2 || h1.ExpiresAt == nil {
		t.Fatalf("ranks %d %d", h1.Rank, h2.Rank)
	}
	info, err := env.App.Redis.Exists(ctx, "asynq:{"+env.App.Jobs.Queue(jobs.QueueCritical)+"}:t:calendar-hold-expire:"+c.slug+":"+h1.ID).Result()
	if err != nil || info != 1 {
		t.Fatalf("expiry task not queued under its unique id: %v %v", info, err)
	}
	srv := env.App.Jobs.NewServer(2)
	if err := srv.Start(env.App.Jobs.Mux()); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	var status string
	expired := apptest.Poll(15*time.Second, func() bool {
		var closedAt *time.Time
		row := env.App.DB.Raw(`SELECT status, closed_at FROM "`+c.t.Schema+`".cal_holds WHERE id = ?`, h1.ID).Row()
		if err := row.Scan(&status, &closedAt); err != nil {
			t.Fatal(err)
		}
		return status == "expired" && closedAt != nil
	})
	if !expired {
		t.Fatalf("hold not expired by its task (status %s)", status)
	}
	if got := c.hold(t, h2.ID); got.Rank != 1 {
		t.Fatalf("hold behind an expired one: %+v", got)
	}

	// The sweeper, fanned out per tenant through the scheduler's path, picks
	// up lapsed holds whose task was lost.
	h3 := c.createHold(t, hold(c.stageB, 20, 23, "expires_at", time.Now().Add(1500*time.Millisecond).Format(time.RFC3339Nano)))
	// Its expiry task is lost (deleted from the queue).
	opt, err := asynq.ParseRedisURI(env.App.Config.RedisURL)
	if err != nil {
		t.Fatal(err)
	}
	insp := asynq.NewInspector(opt)
	defer insp.Close()
	if err := insp.DeleteTask(env.App.Jobs.Queue(jobs.QueueCritical), "calendar-hold-expire:"+c.slug+":"+h3.ID); err != nil {
		t.Fatalf("delete the expiry task: %v", err)
	}
	time.Sleep(1600 * time.Millisecond) // not synchronisation: waits out the hold's expires_at on the wall clock
	// Even before any job runs, reads see the lapse.
	if got := c.hold(t, h3.ID); got.Status != "expired" || got.Rank != 0 {
		t.Fatalf("lapsed hold reads %+v", got)
	}
	if _, err := env.App.Jobs.FanOut(ctx, calendar.TaskHoldSweep, jobs.QueueCritical, time.Minute, time.Now()); err != nil {
		t.Fatal(err)
	}
	swept := apptest.Poll(15*time.Second, func() bool {
		if err := env.App.DB.Raw(`SELECT status FROM "`+c.t.Schema+`".cal_holds WHERE id = ?`, h3.ID).Row().Scan(&status); err != nil {
			t.Fatal(err)
		}
		return status == "expired"
	})
	if !swept {
		t.Fatalf("sweeper did not expire the hold (status %s)", status)
	}

	// Both handlers are idempotent: running them again changes nothing.
	svc := mod.Service()
	if n, err := svc.SweepHolds(ctx, c.t); err != nil || n != 0 {
		t.Fatalf("second sweep expired %d (%v)", n, err)
	}
	if done, err := svc.ExpireHold(ctx, c.t, uuid.MustParse(h1.ID)); err != nil || done {
		t.Fatalf("expire twice: %v %v", done, err)
	}
	// An expiry task for a hold that was released, or is not yet due, is a no-op.
	h4 := c.createHold(t, hold(c.stageB, 40, 43, "expires_at", time.Now().Add(time.Hour).Format(time.RFC3339)))
	if done, err := svc.ExpireHold(ctx, c.t, uuid.MustParse(h4.ID)); err != nil || done {
		t.Fatalf("early expiry: %v %v", done, err)
	}
	mustStatus(t, c.do(t, "DELETE", "/api/v1/venues/"+c.venue+"/holds/"+h4.ID, nil), http.StatusOK)
	if got := c.hold(t, h4.ID); got.Status != "released" {
		t.Fatalf("released hold: %+v", got)
	}
	// Confirming an expired hold is refused.
	res := c.do(t, "POST", "/api/v1/venues/"+c.venue+"/holds/"+h3.ID+"/confirm", nil)
	if res.Status != http.StatusConflict || res.Code() != "hold_not_active" {
		t.Fatalf("confirm expired: %d %s", res.Status, res.Body)
	}
}

func TestIdempotencyKey(t *testing.T) {
	env, mod := startEnv(t, func(o *apptest.Options) { o.DBMaxConns = 24 })
	c := newChain(t, env, mod, "idem")
	path := "/api/v1/venues/" + c.venue + "/events"
	body := ev(c.stageA, 20, 22)

	first := c.do(t, "POST", path, body, "Idempotency-Key", "key-1")
	mustStatus(t, first, http.StatusCreated)
	again := c.do(t, "POST", path, body, "Idempotency-Key", "key-1")
	mustStatus(t, again, http.StatusCreated)
	if again.Header.Get("Idempotent-Replayed") != "true" || decode[eventOut](t, again.Body).ID != decode[eventOut](t, first.Body).ID {
		t.Fatalf("replay: %s / %s", first.Body, again.Body)
	}
	res := c.do(t, "POST", path, ev(c.stageA, 30, 32), "Idempotency-Key", "key-1")
	if res.Status != http.StatusUnprocessableEntity || res.Code() != "idempotency_key_reused" {
		t.Fatalf("reuse: %d %s", res.Status, res.Body)
	}
	// Without a key the same body is a new booking, refused as a conflict.
	c.conflict(t, c.do(t, "POST", path, body))

	// Concurrent retries with one key: one booking, the same answer for all.
	const n = 20
	var out []string
	errs := make(chan error, n)
	results := make(chan string, n)
	for i := 0; i < n; i++ {
		go func() {
			r, err := env.Try("POST", c.slug, path, c.tok, ev(c.stageB, 40, 42), "Idempotency-Key", "key-2")
			if err == nil && r.Status != http.StatusCreated {
				err = fmt.Errorf("%d %s", r.Status, r.Body)
			}
			errs <- err
			results <- string(r.Body)
		}()
	}
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
		out = append(out, decode[eventOut](t, []byte(<-results)).ID)
	}
	for _, id := range out {
		if id != out[0] {
			t.Fatalf("different events for one key: %v", out)
		}
	}
	if got := c.count(t, "cal_events"); got != 2 {
		t.Fatalf("%d events written", got)
	}
	// Keys are per principal: another user's key-2 is theirs.
	env.User(t, c.t, "other@idem.test", "chain_admin", "")
	other := env.Login(t, c.slug, "other@idem.test")
	res = env.Do(t, "POST", c.slug, path, other, ev(c.stageB, 50, 52), "Idempotency-Key", "key-2")
	mustStatus(t, res, http.StatusCreated)
	if res.Header.Get("Idempotent-Replayed") != "" {
		t.Fatal("another principal's key replayed")
	}
}
