package booking_test

import (
	"net/http"
	"sync"
	"testing"

	"marquee/modules/booking"
)

// Many requests act on the same version of an offer at once, half
// accepting and half countering: exactly one wins, every other is a clean
// 409, and the booking holds one new state and at most one new version.
func TestAcceptVersusCounterRace(t *testing.T) {
	env, _ := startEnv(t)
	c := newChain(t, env, "race")
	for round := 0; round < 3; round++ {
		d := c.act(t, c.create(t, c.artistA), "send", nil)
		const n = 24
		var wg sync.WaitGroup
		statuses := make([]int, n)
		codes := make([]string, n)
		start := make(chan struct{})
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				verb, body := "accept", map[string]any{"version": d.Version}
				if i%2 == 1 {
					verb, body["terms"] = "counter", offerTerms(int64(1000000+i))
				}
				res, err := env.Try("PUT", c.slug, "/api/v1/agent/bookings/"+d.ID.String()+"/"+verb, "", body, booking.AgentTokenHeader, c.linkA)
				if err != nil {
					t.Error(err)
					return
				}
				statuses[i], codes[i] = res.Status, res.Code()
			}()
		}
		close(start)
		wg.Wait()
		won := -1
		for i := range n {
			switch {
			case statuses[i] == http.StatusOK && won < 0:
				won = i
			case statuses[i] == http.StatusOK:
				t.Fatalf("round %d: two winners (%d and %d)", round, won, i)
			case statuses[i] != http.StatusConflict || codes[i] != "version_mismatch":
				t.Fatalf("round %d: loser %d answered %d %s", round, i, statuses[i], codes[i])
			}
		}
		if won < 0 {
			t.Fatalf("round %d: nobody won", round)
		}
		got := decode[booking.Detail](t, c.do(t, "GET", "/api/v1/bookings/"+d.ID.String(), nil).Body)
		wantState, wantN := booking.Accepted, 1
		if won%2 == 1 {
			wantState, wantN = booking.CounterOffer, 2
		}
		if got.State != wantState || got.CurrentN != wantN || len(got.Versions) != wantN || got.Version != d.Version+1 || len(got.History) != 3 {
			t.Fatalf("round %d: winner %d left %+v", round, won, got)
		}
	}
}
