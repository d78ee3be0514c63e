package calendar_test

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"marquee/app/apptest"
	"marquee/modules/calendar"
)

// race sends all bodies at once (released together) and returns the
// responses in order.
func (c *chain) race(t *testing.T, method string, paths []string, bodies []any) []apptest.Response {
	t.Helper()
	methods := make([]string, len(paths))
	for i := range methods {
		methods[i] = method
	}
	return c.raceCalls(t, methods, paths, bodies)
}

// raceCalls is race with a method per request.
func (c *chain) raceCalls(t *testing.T, methods, paths []string, bodies []any) []apptest.Response {
	t.Helper()
	out := make([]apptest.Response, len(bodies))
	errs := make([]error, len(bodies))
	var wg sync.WaitGroup
	gate := make(chan struct{})
	for i := range bodies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			out[i], errs[i] = c.env.Try(methods[i], c.slug, paths[i], c.tok, bodies[i])
		}()
	}
	close(gate)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	return out
}

// exactlyOneWinner checks one 201 and only 409 schedule_conflict answers
// that name the winner, and returns the winner's id.
func exactlyOneWinner(t *testing.T, res []apptest.Response) string {
	t.Helper()
	var winner string
	var conflicts []conflictOut
	for _, r := range res {
		switch r.Status {
		case http.StatusCreated, http.StatusOK:
			if winner != "" {
				t.Fatalf("two winners: %s and %s", winner, r.Body)
			}
			winner = decode[eventOut](t, r.Body).ID
		case http.StatusConflict:
			co := decode[conflictOut](t, r.Body)
			if co.Code != "schedule_conflict" {
				t.Fatalf("409 with code %s: %s", co.Code, r.Body)
			}
			conflicts = append(conflicts, co)
		default:
			t.Fatalf("unexpected %d: %s", r.Status, r.Body)
		}
	}
	if winner == "" {
		t.Fatalf("no winner among %d requests", len(res))
	}
	for _, co := range conflicts {
		named := false
		for _, x := range co.Conflicts {
			named = named || x.EventID == winner
		}
		if !named {
			t.Fatalf("409 does not name the winner %s: %+v", winner, co)
		}
	}
	return winner
}

func repeat(n int, path string) []string {
	p := make([]string, n)
	for i := range p {
		p[i] = path
	}
	return p
}

func TestRaceSameSlot(t *testing.T) {
	env, mod := startEnv(t, func(o *apptest.Options) { o.DBMaxConns = 24 })
	c := newChain(t, env, mod, "race")
	const n = 60
	bodies := make([]any, n)
	for i := range bodies {
		bodies[i] = ev(c.stageA, 20, 23, "title", fmt.Sprintf("Promoter %d", i))
	}
	start := time.Now()
	res := c.race(t, "POST", repeat(n, "/api/v1/venues/"+c.venue+"/events"), bodies)
	exactlyOneWinner(t, res)
	t.Logf("%d concurrent requests for one slot settled in %v", n, time.Since(start))
	// The losers met no deadlock (PostgreSQL would have aborted one of each
	// pair with 40P01 after a second) and no serialization failure.
	noRetries(t, mod)
	if got := c.count(t, "cal_events"); got != 1 {
		t.Fatalf("%d events written", got)
	}
}

func TestRaceOverlappingWindowsAndBuffers(t *testing.T) {
	env, mod := startEnv(t, func(o *apptest.Options) { o.DBMaxConns = 24 })
	c := newChain(t, env, mod, "overlap")
	path := "/api/v1/venues/" + c.venue + "/events"

	// Different windows that all overlap each other: starts spread over
	// two hours, every show three hours long.
	var bodies []any
	for i := 0; i < 40; i++ {
		s := 100 + float64(i)*0.05
		bodies = append(bodies, ev(c.stageA, s, s+3))
	}
	exactlyOneWinner(t, c.race(t, "POST", repeat(len(bodies), path), bodies))

	// Shows that do not overlap, whose buffers do: 18-20 with an hour of
	// teardown against 20:30-22:30 with an hour of setup.
	bodies = nil
	for i := 0; i < 40; i++ {
		if i%2 == 0 {
			bodies = append(bodies, ev(c.stageB, 18, 20, "teardown_minutes", 60))
		} else {
			bodies = append(bodies, ev(c.stageB, 20.5, 22.5, "setup_minutes", 60))
		}
	}
	exactlyOneWinner(t, c.race(t, "POST", repeat(len(bodies), path), bodies))

	// Exclusive-use requests against stage requests (which overlap each
	// other too, so exactly one of all can stand).
	bodies = nil
	for i := 0; i < 45; i++ {
		switch i % 3 {
		case 0:
			bodies = append(bodies, ev("", 200, 204))
		case 1:
			bodies = append(bodies, ev(c.stageA, 202, 205))
		default:
			bodies = append(bodies, ev(c.stageA, 199, 202.5))
		}
	}
	exactlyOneWinner(t, c.race(t, "POST", repeat(len(bodies), path), bodies))

	// Exclusive requests against events on two different stages: either the
	// exclusive event stands alone, or stage events do and it does not.
	for round := 0; round < 5; round++ {
		h := 250 + float64(round)*10
		res := c.race(t, "POST", repeat(3, path), []any{ev("", h, h+4), ev(c.stageA, h+1, h+2), ev(c.stageB, h+3, h+5)})
		if res[0].Status == http.StatusCreated {
			c.conflict(t, res[1])
			c.conflict(t, res[2])
		} else {
			c.conflict(t, res[0])
			mustStatus(t, res[1], http.StatusCreated)
			mustStatus(t, res[2], http.StatusCreated)
		}
	}

	// A new stage racing an exclusive booking: whichever order, the event on
	// the new stage and the exclusive event never both stand.
	for round := 0; round < 5; round++ {
		late := c.newStage(t, c.venue, fmt.Sprintf("Late %d", round))
		h := 300 + float64(round)*10
		res := c.race(t, "POST", []string{path, path}, []any{ev("", h, h+2), ev(late, h+1, h+3)})
		exactlyOneWinner(t, res)
	}
	if n := c.liveOverlaps(t); n != 0 {
		t.Fatalf("%d overlapping live pairs", n)
	}
	noRetries(t, mod)
}

func TestRaceMovesIntoEachOther(t *testing.T) {
	env, mod := startEnv(t, func(o *apptest.Options) { o.DBMaxConns = 24 })
	c := newChain(t, env, mod, "moves")
	events := "/api/v1/venues/" + c.venue + "/events/"

	// Two events swap windows at once: each move meets the other event still
	// in place, so both are refused, promptly and cleanly, every time.
	for round := 0; round < 10; round++ {
		h := float64(round) * 24
		a := c.createEvent(t, c.venue, ev(c.stageA, h+10, h+12))
		b := c.createEvent(t, c.venue, ev(c.stageA, h+14, h+16))
		res := c.race(t, "PATCH", []string{events + a.ID, events + b.ID}, []any{
			map[string]any{"starts_at": at(h + 14), "ends_at": at(h + 16)},
			map[string]any{"starts_at": at(h + 10), "ends_at": at(h + 12)},
		})
		for _, r := range res {
			c.conflict(t, r)
		}
	}
	noRetries(t, mod)

	// Many events of several stages all move into the same free slot at once:
	// exactly one gets it.
	var ids []string
	for i := 0; i < 30; i++ {
		stage := c.stageA
		if i%2 == 1 {
			stage = c.stageB
		}
		ids = append(ids, c.createEvent(t, c.venue, ev(stage, 1000+float64(i)*5, 1001+float64(i)*5)).ID)
	}
	var paths []string
	var bodies []any
	for i, id := range ids {
		paths = append(paths, events+id)
		if i%3 == 0 {
			bodies = append(bodies, map[string]any{"exclusive": true, "starts_at": at(900), "ends_at": at(902)})
		} else {
			bodies = append(bodies, map[string]any{"stage_id": c.stageA, "starts_at": at(900.5), "ends_at": at(903)})
		}
	}
	exactlyOneWinner(t, c.race(t, "PATCH", paths, bodies))

	// Moves racing new bookings for the same window.
	mover := c.createEvent(t, c.venue, ev(c.stageB, 1500, 1502))
	methods := []string{"PATCH"}
	paths, bodies = []string{events + mover.ID}, []any{map[string]any{"starts_at": at(1600), "ends_at": at(1603)}}
	for i := 0; i < 20; i++ {
		methods = append(methods, "POST")
		paths = append(paths, "/api/v1/venues/"+c.venue+"/events")
		bodies = append(bodies, ev(c.stageB, 1601, 1602))
	}
	exactlyOneWinner(t, c.raceCalls(t, methods, paths, bodies))

	if n := c.liveOverlaps(t); n != 0 {
		t.Fatalf("%d overlapping live pairs", n)
	}
	noRetries(t, mod)
}

// noRetries checks that no calendar transaction was aborted as a deadlock or
// serialization victim (and silently run again).
func noRetries(t *testing.T, mod *calendar.Module) {
	t.Helper()
	if n := mod.Service().Retries(); n != 0 {
		t.Fatalf("%d transactions were retried after a deadlock or serialization failure", n)
	}
}
