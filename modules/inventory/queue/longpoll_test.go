package queue

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"marquee/app"
	"marquee/app/apptest"
)

// A buyer at the front who asks with ?wait= is answered the moment an
// admitter on another instance lets them in, not at their next poll; one
// Redis subscription per room serves every waiter of an instance; a buyer
// still queued at the deadline gets their place; bad waits are refused.
func TestLongPollAnswersOnAdmissionAcrossInstances(t *testing.T) {
	s := openRoom(1000, 1000)
	envA, roomA, tn, clk := setup(t, s)
	mB := &roomModule{}
	apptest.Start(t, dbURL, apptest.Options{Modules: []app.Module{mB}}) // instance B: same database and Redis
	roomB := mB.room
	roomB.now = clk.now
	ev := s.EventID.String()
	ctx := context.Background()

	const buyers = 10
	tickets := make([]string, buyers+1)
	for i := range buyers + 1 {
		st, err := roomA.Join(ctx, tn, s.EventID, fmt.Sprintf("lp-%d", i))
		if err != nil || st.State != "queued" {
			t.Fatalf("join %d: %+v %v", i, st, err)
		}
		tickets[i] = st.QueueToken
	}
	if res := envA.Do(t, http.MethodGet, tn.Slug, "/api/v1/events/"+ev+"/queue/"+tickets[0]+"?wait=26", "", nil, "X-Buyer", "lp-0"); res.Status != http.StatusBadRequest || res.Code() != "invalid_request" {
		t.Fatalf("wait=26: %d %s", res.Status, res.Body)
	}
	if res := envA.Do(t, http.MethodGet, tn.Slug, "/api/v1/events/"+ev+"/queue/"+tickets[0]+"?wait=x", "", nil, "X-Buyer", "lp-0"); res.Status != http.StatusBadRequest {
		t.Fatalf("wait=x: %d %s", res.Status, res.Body)
	}

	type answer struct {
		st   Status
		took time.Duration
	}
	answers := make([]answer, buyers)
	var wg sync.WaitGroup
	for i := range buyers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			began := time.Now()
			res := envA.Do(t, http.MethodGet, tn.Slug, "/api/v1/events/"+ev+"/queue/"+tickets[i]+"?wait=20", "", nil, "X-Buyer", fmt.Sprintf("lp-%d", i))
			if res.Status != http.StatusOK {
				t.Errorf("buyer %d: %d %s", i, res.Status, res.Body)
				return
			}
			res.JSON(t, &answers[i].st)
			answers[i].took = time.Since(began)
		}()
	}
	apptest.Eventually(t, 10*time.Second, "every buyer waiting on instance A", func() bool { return roomA.Waiting() == buyers })
	roomA.waits.mu.Lock()
	topics := len(roomA.waits.topics)
	roomA.waits.mu.Unlock()
	if topics != 1 {
		t.Fatalf("instance A holds %d subscriptions for one room", topics)
	}
	// Instance B admits the first ten (1000/s × 10 ms).
	if _, err := roomB.AdmitOnce(ctx); err != nil { // starts the rate clock
		t.Fatal(err)
	}
	clk.add(10 * time.Millisecond)
	if n, err := roomB.AdmitOnce(ctx); err != nil || n != 10 {
		t.Fatalf("admitted %d (%v), want 10", n, err)
	}
	wg.Wait()
	for i, a := range answers {
		switch {
		case a.st.State != "admitted" || a.st.AccessToken == "":
			t.Errorf("buyer %d admitted but told %+v", i, a.st)
		case a.took >= 15*time.Second:
			t.Errorf("buyer %d learned of admission after %v, not at once", i, a.took)
		}
	}
	// Still queued at the deadline: the answer is the place, now first.
	began := time.Now()
	var st Status
	res := envA.Do(t, http.MethodGet, tn.Slug, "/api/v1/events/"+ev+"/queue/"+tickets[buyers]+"?wait=1", "", nil, "X-Buyer", fmt.Sprintf("lp-%d", buyers))
	res.JSON(t, &st)
	if took := time.Since(began); st.State != "queued" || st.Position != 1 || took < 900*time.Millisecond {
		t.Fatalf("queued buyer after wait=1: %+v after %v", st, took)
	}
	if roomA.Waiting() != 0 {
		t.Fatalf("%d waiters left behind", roomA.Waiting())
	}
	roomA.waits.mu.Lock()
	topics = len(roomA.waits.topics)
	roomA.waits.mu.Unlock()
	if topics != 0 {
		t.Fatalf("%d subscriptions left with nobody waiting", topics)
	}
}

// A buyer who is done (the server frees their slot) lets the next buyer in
// at once, not at the admitter's next tick; and one who leaves with their
// token does the same.
func TestFreedSlotAdmitsTheNextAtOnce(t *testing.T) {
	s := openRoom(1000, 1)
	_, room, tn, clk := setup(t, s)
	ctx := context.Background()
	var tickets []string
	for _, b := range []string{"first", "second", "third"} {
		st, err := room.Join(ctx, tn, s.EventID, b)
		if err != nil {
			t.Fatal(err)
		}
		tickets = append(tickets, st.QueueToken)
	}
	room.AdmitOnce(ctx)
	clk.add(10 * time.Millisecond)
	room.AdmitOnce(ctx)
	state := func(buyer, ticket string) Status {
		st, err := room.StatusOf(ctx, tn, s.EventID, buyer, ticket)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	if a, b := state("first", tickets[0]), state("second", tickets[1]); a.State != "admitted" || b.State != "queued" {
		t.Fatalf("cap 1: first %s, second %s", a.State, b.State)
	}
	clk.add(10 * time.Millisecond)
	if err := room.LeaveBuyer(ctx, tn, s.EventID, "first"); err != nil {
		t.Fatal(err)
	}
	second := state("second", tickets[1])
	if second.State != "admitted" {
		t.Fatalf("second still %s after the first was done", second.State)
	}
	clk.add(10 * time.Millisecond)
	if err := room.Leave(ctx, tn, s.EventID, second.AccessToken); err != nil {
		t.Fatal(err)
	}
	if third := state("third", tickets[2]); third.State != "admitted" {
		t.Fatalf("third still %s after the second left", third.State)
	}
}
