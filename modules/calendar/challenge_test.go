package calendar_test

import (
	"context"
	"math/rand"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"marquee/app/apptest"
	"marquee/jobs"
)

type challengeOut struct {
	Hold       holdOut `json:"hold"`
	Challenged []struct {
		ID                string     `json:"id"`
		Title             string     `json:"title"`
		ChallengeDeadline *time.Time `json:"challenge_deadline"`
	} `json:"challenged"`
}

type holdState struct {
	Status      string     `gorm:"column:status"`
	CloseReason *string    `gorm:"column:close_reason"`
	Deadline    *time.Time `gorm:"column:challenge_deadline"`
	By          *uuid.UUID `gorm:"column:challenged_by"`
	EventID     *uuid.UUID `gorm:"column:event_id"`
}

func (c *chain) holdRow(t testing.TB, id string) holdState {
	t.Helper()
	var s holdState
	if err := c.env.App.DB.Raw(`SELECT status, close_reason, challenge_deadline, challenged_by, event_id FROM "`+c.t.Schema+`".cal_holds WHERE id = ?`, id).
		Scan(&s).Error; err != nil {
		t.Fatal(err)
	}
	return s
}

// A 2nd hold cannot confirm over a live 1st hold; it challenges it, and the
// 1st either confirms before its deadline or is released at it (by its
// task, by the sweeper, or by the challenger's confirm), after which the
// 2nd confirms.
func TestHoldChallenge(t *testing.T) {
	env, mod := startEnv(t)
	c := newChain(t, env, mod, "challenge")
	ctx := context.Background()
	holds := "/api/v1/venues/" + c.venue + "/holds/"

	// The warning: confirming the 2nd over the live 1st is refused, naming it.
	h1 := c.createHold(t, hold(c.stageA, 20, 23, "title", "First Band", "promoter", "Live Nation"))
	h2 := c.createHold(t, hold(c.stageA, 19, 22, "title", "Second Band"))
	res := c.do(t, "POST", holds+h2.ID+"/confirm", nil)
	if res.Status != http.StatusConflict || res.Code() != "hold_outranked" {
		t.Fatalf("confirm over a live 1st hold: %d %s", res.Status, res.Body)
	}
	ahead := decode[struct {
		Ahead []struct{ ID, Title string } `json:"ahead"`
	}](t, res.Body)
	if len(ahead.Ahead) != 1 || ahead.Ahead[0].ID != h1.ID || ahead.Ahead[0].Title != "First Band" {
		t.Fatalf("ahead: %s", res.Body)
	}
	if got := c.hold(t, h2.ID); got.Status != "active" || got.Rank != 2 {
		t.Fatalf("a refused confirm changed the hold: %+v", got)
	}
	// The 1st has nobody ahead to challenge; bad answer times are refused.
	res = c.do(t, "POST", holds+h1.ID+"/challenge", nil)
	if res.Status != http.StatusConflict || res.Code() != "hold_not_challengeable" {
		t.Fatalf("challenge by the 1st: %d %s", res.Status, res.Body)
	}
	for _, bad := range []any{map[string]any{"respond_within_hours": -1}, map[string]any{"respond_within_hours": 10000}, map[string]any{"respond_within_hours": "soon"}} {
		if res := c.do(t, "POST", holds+h2.ID+"/challenge", bad); res.Status != http.StatusBadRequest {
			t.Fatalf("challenge %v: %d %s", bad, res.Status, res.Body)
		}
	}
	if s := c.holdRow(t, h1.ID); s.Deadline != nil {
		t.Fatalf("a refused challenge changed the 1st hold: %+v", s)
	}

	// The challenge gives the 1st 48 hours and queues the deadline's task.
	before := time.Now()
	res = c.do(t, "POST", holds+h2.ID+"/challenge", nil)
	mustStatus(t, res, http.StatusOK)
	ch := decode[challengeOut](t, res.Body)
	if len(ch.Challenged) != 1 || ch.Challenged[0].ID != h1.ID || ch.Challenged[0].ChallengeDeadline == nil {
		t.Fatalf("challenge: %s", res.Body)
	}
	if d := ch.Challenged[0].ChallengeDeadline.Sub(before); d < 47*time.Hour || d > 49*time.Hour {
		t.Fatalf("deadline in %v, want 48h", d)
	}
	s1 := c.holdRow(t, h1.ID)
	if s1.By == nil || s1.By.String() != h2.ID || s1.Deadline == nil {
		t.Fatalf("challenged 1st hold: %+v", s1)
	}
	n, err := env.App.Redis.Exists(ctx, "asynq:{"+env.App.Jobs.Queue(jobs.QueueCritical)+"}:t:calendar-challenge-lapse:"+c.slug+":"+h1.ID).Result()
	if err != nil || n != 1 {
		t.Fatalf("deadline task not queued under its unique id: %v %v", n, err)
	}
	// Challenging again keeps the first deadline.
	res = c.do(t, "POST", holds+h2.ID+"/challenge", map[string]any{"respond_within_hours": 1})
	mustStatus(t, res, http.StatusOK)
	if again := c.holdRow(t, h1.ID); !again.Deadline.Equal(*s1.Deadline) {
		t.Fatalf("a second challenge moved the deadline: %v -> %v", s1.Deadline, again.Deadline)
	}
	// Before the deadline the 2nd is still refused; the 1st answers by
	// confirming, and the 2nd is then blocked by the event.
	if res := c.do(t, "POST", holds+h2.ID+"/confirm", nil); res.Code() != "hold_outranked" {
		t.Fatalf("confirm before the deadline: %d %s", res.Status, res.Body)
	}
	res = c.do(t, "POST", holds+h1.ID+"/confirm", nil)
	mustStatus(t, res, http.StatusCreated)
	if e := decode[eventOut](t, res.Body); e.Title != "First Band" {
		t.Fatalf("event: %s", res.Body)
	}
	if res := c.do(t, "POST", holds+h2.ID+"/confirm", nil); res.Code() != "schedule_conflict" {
		t.Fatalf("confirm behind the event: %d %s", res.Status, res.Body)
	}
	// The deadline's work on a confirmed hold changes nothing.
	if done, err := mod.Service().LapseChallenge(ctx, c.t, uuid.MustParse(h1.ID)); err != nil || done {
		t.Fatalf("lapse of a confirmed hold: %v %v", done, err)
	}

	// A 1st hold that does not answer is released by the deadline's task,
	// through real Redis and an Asynq worker; the 2nd then confirms.
	h3 := c.createHold(t, hold(c.stageB, 20, 23, "title", "Silent Band"))
	h4 := c.createHold(t, hold(c.stageB, 20, 23, "title", "Keen Band"))
	if _, err := mod.Service().ChallengeHold(ctx, c.t, uuid.MustParse(c.venue), uuid.MustParse(h4.ID), 1500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	srv := env.App.Jobs.NewServer(2)
	if err := srv.Start(env.App.Jobs.Mux()); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	var s3 holdState
	if !apptest.Poll(15*time.Second, func() bool { s3 = c.holdRow(t, h3.ID); return s3.Status == "released" }) {
		t.Fatalf("challenged hold not released at its deadline: %+v", s3)
	}
	if s3.CloseReason == nil || *s3.CloseReason != "challenge_lapsed" {
		t.Fatalf("close reason: %+v", s3)
	}
	if res := c.do(t, "POST", holds+h3.ID+"/confirm", nil); res.Status != http.StatusConflict || res.Code() != "challenge_lapsed" {
		t.Fatalf("confirm after the deadline: %d %s", res.Status, res.Body)
	}
	if got := c.hold(t, h4.ID); got.Rank != 1 {
		t.Fatalf("challenger after the lapse: %+v", got)
	}
	mustStatus(t, c.do(t, "POST", holds+h4.ID+"/confirm", nil), http.StatusCreated)

	// With the task lost, the challenger's own confirm releases the lapsed
	// 1st in its transaction; the sweeper would have too.
	h5 := c.createHold(t, hold(c.stageA, 44, 46, "title", "Late Band"))
	h6 := c.createHold(t, hold(c.stageA, 44, 46, "title", "Eager Band"))
	h7 := c.createHold(t, hold(c.stageB, 44, 46, "title", "Sleepy Band"))
	h8 := c.createHold(t, hold(c.stageB, 44, 46, "title", "Patient Band"))
	srv.Shutdown() // no worker from here: nothing but the confirm and the sweep release them
	var deadline time.Time
	for _, id := range []string{h6.ID, h8.ID} {
		ch, err := mod.Service().ChallengeHold(ctx, c.t, uuid.MustParse(c.venue), uuid.MustParse(id), 300*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		deadline = *ch.Challenged[0].ChallengeDeadline
	}
	time.Sleep(time.Until(deadline) + 50*time.Millisecond) // not synchronisation: waits out the deadline on the wall clock
	mustStatus(t, c.do(t, "POST", holds+h6.ID+"/confirm", nil), http.StatusCreated)
	if s := c.holdRow(t, h5.ID); s.Status != "released" || s.CloseReason == nil || *s.CloseReason != "challenge_lapsed" {
		t.Fatalf("lapsed 1st hold after the challenger confirmed: %+v", s)
	}
	if n, err := mod.Service().SweepHolds(ctx, c.t); err != nil || n != 1 {
		t.Fatalf("sweep released %d (%v), want the one lapsed challenge", n, err)
	}
	if s := c.holdRow(t, h7.ID); s.Status != "released" || *s.CloseReason != "challenge_lapsed" {
		t.Fatalf("swept hold: %+v", s)
	}
	if n, err := mod.Service().SweepHolds(ctx, c.t); err != nil || n != 0 {
		t.Fatalf("second sweep released %d (%v)", n, err)
	}
	if done, err := mod.Service().LapseChallenge(ctx, c.t, uuid.MustParse(h7.ID)); err != nil || done {
		t.Fatalf("lapse twice: %v %v", done, err)
	}
	mustStatus(t, c.do(t, "POST", holds+h8.ID+"/confirm", nil), http.StatusCreated)
}

// The 1st hold confirms at the very moment its challenge deadline's task
// fires, while the challenger confirms too: every round has exactly one
// outcome for the 1st hold (confirmed, or released as lapsed), the answers
// agree with the database, and at most one event takes the date.
func TestChallengeDeadlineRace(t *testing.T) {
	env, mod := startEnv(t, func(o *apptest.Options) { o.DBMaxConns = 24 })
	c := newChain(t, env, mod, "chrace")
	ctx := context.Background()
	svc := mod.Service()
	holds := "/api/v1/venues/" + c.venue + "/holds/"
	const rounds = 24
	type round struct{ first, second string }
	var rs []round
	for i := range rounds {
		from := float64(24 * (i + 2))
		h1 := c.createHold(t, hold(c.stageA, from+20, from+23, "title", "First"))
		h2 := c.createHold(t, hold(c.stageA, from+20, from+23, "title", "Second"))
		rs = append(rs, round{h1.ID, h2.ID})
	}
	outcomes := map[string]int{}
	for i, r := range rs {
		ch, err := svc.ChallengeHold(ctx, c.t, uuid.MustParse(c.venue), uuid.MustParse(r.second), 250*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		deadline := *ch.Challenged[0].ChallengeDeadline
		// Aim both at the deadline, each a few milliseconds either side, so
		// either may come first.
		time.Sleep(time.Until(deadline) - 10*time.Millisecond) // not synchronisation: the deadline is a wall-clock instant
		var wg sync.WaitGroup
		var confirm, second apptest.Response
		var confirmErr, secondErr, lapseErr error
		var lapsed bool
		jitter := func() { time.Sleep(time.Duration(rand.Intn(20)) * time.Millisecond) }
		wg.Add(3)
		go func() {
			defer wg.Done()
			jitter()
			confirm, confirmErr = c.env.Try("POST", c.slug, holds+r.first+"/confirm", c.tok, nil)
		}()
		go func() {
			defer wg.Done()
			// The task is queued with ProcessAt(deadline): it never fires before.
			time.Sleep(time.Until(deadline) + time.Duration(rand.Intn(10))*time.Millisecond)
			lapsed, lapseErr = svc.LapseChallenge(ctx, c.t, uuid.MustParse(r.first))
		}()
		go func() {
			defer wg.Done()
			jitter()
			second, secondErr = c.env.Try("POST", c.slug, holds+r.second+"/confirm", c.tok, nil)
		}()
		wg.Wait()
		if confirmErr != nil || lapseErr != nil || secondErr != nil {
			t.Fatalf("round %d: %v %v %v", i, confirmErr, lapseErr, secondErr)
		}
		s := c.holdRow(t, r.first)
		confirmed := confirm.Status == http.StatusCreated
		releasedBySecond := second.Status == http.StatusCreated
		switch {
		case confirmed && (lapsed || releasedBySecond):
			t.Fatalf("round %d: two outcomes: confirm %d, lapse %v, second %d %s", i, confirm.Status, lapsed, second.Status, second.Body)
		case confirmed:
			if s.Status != "confirmed" || s.EventID == nil {
				t.Fatalf("round %d: confirmed answer, row %+v", i, s)
			}
			if second.Status != http.StatusConflict {
				t.Fatalf("round %d: second after the 1st confirmed: %d %s", i, second.Status, second.Body)
			}
			outcomes["confirmed"]++
		default:
			if confirm.Status != http.StatusConflict || (confirm.Code() != "challenge_lapsed" && confirm.Code() != "hold_not_active") {
				t.Fatalf("round %d: the 1st's confirm after the deadline: %d %s", i, confirm.Status, confirm.Body)
			}
			if s.Status != "released" || s.CloseReason == nil || *s.CloseReason != "challenge_lapsed" || s.EventID != nil {
				t.Fatalf("round %d: lapsed 1st hold row %+v", i, s)
			}
			outcomes["released"]++
		}
		// At most one event on the date, and it is the one an answer named.
		var events int
		if err := env.App.DB.Raw(`SELECT count(*) FROM "`+c.t.Schema+`".cal_events WHERE hold_id IN (?, ?)`, r.first, r.second).Scan(&events).Error; err != nil {
			t.Fatal(err)
		}
		want := 0
		if confirmed || releasedBySecond {
			want = 1
		}
		if events != want {
			t.Fatalf("round %d: %d events, answers say %d", i, events, want)
		}
	}
	t.Logf("outcomes over %d rounds: %v", rounds, outcomes)
	if got := c.liveOverlaps(t); got != 0 {
		t.Fatalf("%d overlapping live placements", got)
	}
}
