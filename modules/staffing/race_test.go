package staffing_test

import (
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// 100 people sign up through the API for a 10-place shift at the same
// instant: exactly 10 get it, the other 90 are told it is full, and the
// database agrees (10 rows, the counter at 10). helpfertool #187 and
// engelsystem #430 are this race lost.
func TestSignupStormFillsExactlyThePlaces(t *testing.T) {
	e := startEnv(t, nil)
	c := newChain(t, e, "storm")
	shift := c.shift(t, "bar", c.eventAt.Add(-time.Hour), c.eventAt.Add(4*time.Hour), 10)
	c.publish(t, c.eventAt)
	people := make([]person, 100)
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i := range people {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := c.staff(t, "bar", true, []string{"bar"}, nil)
			mu.Lock()
			people[i] = p
			mu.Unlock()
		}()
	}
	wg.Wait()

	start := make(chan struct{})
	statuses := make([]int, len(people))
	codes := make([]string, len(people))
	for i, p := range people {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			res, err := e.Try("POST", c.slug, "/api/v1/staffing/me/shifts/"+shift+"/signup", p.tok, nil)
			if err != nil {
				t.Error(err)
				return
			}
			statuses[i], codes[i] = res.Status, res.Code()
		}()
	}
	close(start)
	wg.Wait()
	won, full := 0, 0
	for i, s := range statuses {
		switch {
		case s == http.StatusCreated:
			won++
		case s == http.StatusConflict && codes[i] == "shift_full":
			full++
		default:
			t.Errorf("sign-up %d: %d %s", i, s, codes[i])
		}
	}
	if won != 10 || full != 90 {
		t.Fatalf("%d signed up, %d refused as full; want 10 and 90", won, full)
	}
	if n := c.count(t, `SELECT count(*) FROM stf_assignments WHERE shift_id = ? AND status = 'assigned'`, shift); n != 10 {
		t.Fatalf("%d assignments in the database", n)
	}
	if n := c.count(t, `SELECT filled FROM stf_shifts WHERE id = ?`, shift); n != 10 {
		t.Fatalf("the shift's counter says %d", n)
	}
}

// One person signs up for two overlapping shifts at the same instant, many
// times over: exactly one of each pair succeeds, the other is refused with
// shift_overlap naming the first, and the database never holds an overlap.
// Back-to-back shifts ([18:00, 22:00) then [22:00, 02:00)) both succeed.
func TestOnePersonNeverInTwoOverlappingShifts(t *testing.T) {
	e := startEnv(t, nil)
	c := newChain(t, e, "overlap")
	c.publish(t, c.eventAt)
	const rounds = 15
	for r := range rounds {
		p := c.staff(t, "bar", true, []string{"bar"}, nil)
		a := c.shift(t, "bar", c.eventAt.Add(-2*time.Hour), c.eventAt.Add(2*time.Hour), 5)
		b := c.shift(t, "bar", c.eventAt, c.eventAt.Add(3*time.Hour), 5)
		var wg sync.WaitGroup
		start := make(chan struct{})
		got := map[int]int{}
		var mu sync.Mutex
		for _, sh := range []string{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				res, err := e.Try("POST", c.slug, "/api/v1/staffing/me/shifts/"+sh+"/signup", p.tok, nil)
				if err != nil {
					t.Error(err)
					return
				}
				if res.Status == http.StatusConflict && res.Code() != "shift_overlap" {
					t.Errorf("round %d: refused with %s", r, res.Body)
				}
				mu.Lock()
				got[res.Status]++
				mu.Unlock()
			}()
		}
		close(start)
		wg.Wait()
		if got[http.StatusCreated] != 1 || got[http.StatusConflict] != 1 {
			t.Fatalf("round %d: %v, want one 201 and one 409", r, got)
		}
	}
	if n := c.count(t, `SELECT count(*) FROM stf_assignments a JOIN stf_assignments b ON a.staff_id = b.staff_id AND a.id < b.id
		AND a.during && b.during AND a.status IN ('requested','assigned','confirmed') AND b.status IN ('requested','assigned','confirmed')`); n != 0 {
		t.Fatalf("%d overlapping pairs in the database", n)
	}

	// Back to back is not an overlap (ephios #367).
	p := c.staff(t, "bar", true, []string{"bar"}, nil)
	first := c.shift(t, "bar", c.eventAt.Add(-2*time.Hour), c.eventAt.Add(2*time.Hour), 1)
	second := c.shift(t, "bar", c.eventAt.Add(2*time.Hour), c.eventAt.Add(6*time.Hour), 1)
	for _, sh := range []string{first, second} {
		res := e.Do(t, "POST", c.slug, "/api/v1/staffing/me/shifts/"+sh+"/signup", p.tok, nil)
		mustStatus(t, res, http.StatusCreated)
	}
}

// A certification expiring at midnight (venue time) counts for a shift
// that ends by midnight while the clock is before it, and not a moment
// after: the check runs in the statement that inserts, at the server's
// clock. A shift running past midnight never qualifies. Sign-ups race the
// clock crossing midnight; no assignment made at or after the expiry
// instant exists.
func TestCertificationExpiringAtMidnightDuringSignup(t *testing.T) {
	year := time.Now().Year() + 1
	expiry := time.Date(year, 6, 13, 0, 0, 0, 0, newYork) // expires_on 13 June: counts until the 13th begins
	clk := newClock(time.Now())
	e := startEnv(t, clk)
	c := newChain(t, e, "midnight")
	c.publish(t, c.eventAt)
	// The 12th 20:00-23:59 ends before midnight; a second shift crosses it.
	before := c.shift(t, "medic", c.eventAt, expiry, 100)
	across := c.shift(t, "medic", c.eventAt, expiry.Add(time.Hour), 5)
	certs := map[string]string{"first_aid": expiry.Format(time.DateOnly)}
	clk.set(expiry.Add(-time.Hour))

	p := c.staff(t, "medic", true, []string{"medic"}, certs)
	res := e.Do(t, "POST", c.slug, "/api/v1/staffing/me/shifts/"+across+"/signup", p.tok, nil)
	if res.Status != http.StatusConflict || res.Code() != "certification_required" {
		t.Fatalf("a shift past the expiry: %d %s", res.Status, res.Body)
	}

	// 60 medics sign up while the clock crosses midnight.
	people := make([]person, 60)
	for i := range people {
		people[i] = c.staff(t, "medic", true, []string{"medic"}, certs)
	}
	clk.set(expiry.Add(-50 * time.Millisecond))
	var wg sync.WaitGroup
	var done atomic.Int32
	start := make(chan struct{})
	for _, p := range people {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			res, err := e.Try("POST", c.slug, "/api/v1/staffing/me/shifts/"+before+"/signup", p.tok, nil)
			if done.Add(1) == int32(len(people)/3) {
				clk.set(expiry) // midnight, with two thirds of the storm still in flight
			}
			if err != nil {
				t.Error(err)
				return
			}
			if res.Status != http.StatusCreated && res.Code() != "certification_required" {
				t.Errorf("sign-up: %d %s", res.Status, res.Body)
			}
		}()
	}
	close(start)
	wg.Wait()
	if n := c.count(t, `SELECT count(*) FROM stf_assignments WHERE shift_id = ? AND assigned_at >= ?`, before, expiry); n != 0 {
		t.Fatalf("%d assignments made at or after the certification expired", n)
	}
	n := c.count(t, `SELECT count(*) FROM stf_assignments WHERE shift_id = ?`, before)
	if n == 0 || n == len(people) {
		t.Fatalf("%d of %d signed up: the clock did not cross midnight during the storm", n, len(people))
	}
	t.Logf("%d signed up before midnight, %d refused after", n, len(people)-n)
	// After midnight: refused, whatever the shift.
	late := c.staff(t, "medic", true, []string{"medic"}, certs)
	res = e.Do(t, "POST", c.slug, "/api/v1/staffing/me/shifts/"+before+"/signup", late.tok, nil)
	if res.Status != http.StatusConflict || res.Code() != "certification_required" {
		t.Fatalf("after midnight: %d %s", res.Status, res.Body)
	}
	// A senior first aider (includes first aid) with no expiry qualifies.
	senior := c.staff(t, "medic", true, []string{"medic"}, map[string]string{"senior_first_aid": ""})
	mustStatus(t, e.Do(t, "POST", c.slug, "/api/v1/staffing/me/shifts/"+before+"/signup", senior.tok, nil), http.StatusCreated)
}
