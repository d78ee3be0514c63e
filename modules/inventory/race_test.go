package inventory_test

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"testing"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/app/apptest"
	"marquee/modules/inventory"
)

// parallel runs fn(i) for i in [0, n) at once (released together).
func parallel(n int, fn func(i int)) {
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	ready.Add(n)
	done.Add(n)
	for i := 0; i < n; i++ {
		go func(i int) {
			defer done.Done()
			ready.Done()
			<-start
			fn(i)
		}(i)
	}
	ready.Wait()
	close(start)
	done.Wait()
}

type outcome struct {
	res  apptest.Response
	err  error
	hold inventory.Hold
	want []string
}

// 200 buyers race for 50 seats with overlapping carts of 1 to 4 adjacent
// seats: every seat ends up held by at most one hold, every hold has all
// its seats, every loser got a clean 409 naming a seat, and nothing else
// changed.
func TestRaceSeats200BuyersFor50Seats(t *testing.T) {
	// Serial: hundreds of requests at once: CPU-bound, and its 40 connections with another test's would crowd PostgreSQL.
	s, ev, _ := onSale(t, "seatrace", "Seat Race", simpleSetup(5, 10, 0, nil))

	const buyers = 200
	tokens := make([]string, buyers)
	for i := range tokens {
		tokens[i] = s.buyer(t)
	}
	rng := rand.New(rand.NewPCG(7, 11))
	carts := make([][]string, buyers)
	for i := range carts {
		row, n := 1+rng.IntN(5), 1+rng.IntN(4)
		first := 1 + rng.IntN(10-n+1)
		for k := 0; k < n; k++ {
			carts[i] = append(carts[i], fmt.Sprintf("A-%d-%d", row, first+k))
		}
	}
	out := make([]outcome, buyers)
	parallel(buyers, func(i int) {
		res, err := s.hold(ev, tokens[i], map[string]any{"seats": carts[i]})
		out[i] = outcome{res: res, err: err, want: carts[i]}
	})

	owner := map[string]uuid.UUID{}
	won := 0
	for i, o := range out {
		if o.err != nil {
			t.Fatalf("buyer %d: %v", i, o.err)
		}
		switch o.res.Status {
		case http.StatusCreated:
			won++
			o.res.JSON(t, &out[i].hold)
			h := out[i].hold
			if len(h.Seats) != len(o.want) {
				t.Fatalf("buyer %d got %v for cart %v", i, h.Seats, o.want)
			}
			for _, seat := range h.Seats {
				if prev, dup := owner[seat]; dup {
					t.Fatalf("seat %s held by %s and %s", seat, prev, h.ID)
				}
				owner[seat] = h.ID
			}
		case http.StatusConflict:
			var p struct {
				Code        string
				Unavailable []string
			}
			o.res.JSON(t, &p)
			if p.Code != "seats_unavailable" || len(p.Unavailable) == 0 {
				t.Fatalf("buyer %d: %s", i, o.res.Body)
			}
		default:
			t.Fatalf("buyer %d: %d %s", i, o.res.Status, o.res.Body)
		}
	}
	if won == 0 || len(owner) == 0 {
		t.Fatal("nobody won a seat")
	}
	// The database agrees with the answers, seat by seat.
	var rows []struct {
		ID     string     `gorm:"column:id"`
		State  string     `gorm:"column:state"`
		HoldID *uuid.UUID `gorm:"column:hold_id"`
	}
	s.sql(t, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT id, state, hold_id FROM inv_seats WHERE event_id = ?`, ev).Scan(&rows).Error
	})
	for _, r := range rows {
		want, held := owner[r.ID]
		switch {
		case held && (r.State != "held" || r.HoldID == nil || *r.HoldID != want):
			t.Fatalf("seat %s: %s by %v, answered held by %s", r.ID, r.State, r.HoldID, want)
		case !held && r.State != "available":
			t.Fatalf("seat %s is %s but no answer held it", r.ID, r.State)
		}
	}
	// Holds are all-or-nothing: as many holds as winners, each line a held seat.
	if n := s.count(t, `SELECT count(*) FROM inv_holds WHERE event_id = ?`, ev); n != int64(won) {
		t.Fatalf("%d holds stored, %d answered", n, won)
	}
	if n := s.count(t, `SELECT count(*) FROM inv_hold_lines l JOIN inv_seats s ON s.id = l.seat_id AND s.hold_id = l.hold_id`); n != int64(len(owner)) {
		t.Fatalf("%d hold lines match held seats, %d seats held", n, len(owner))
	}
	t.Logf("%d of %d buyers won, %d of 50 seats held", won, buyers, len(owner))

	// Everyone who holds pays; then nobody else can have any of those seats.
	for i, o := range out {
		if o.res.Status != http.StatusCreated {
			continue
		}
		ord := s.order(t, tokens[i], o.hold.ID)
		mustStatus(t, s.webhook(t, "evt_race_"+ord.ID.String(), "payment_intent.succeeded", ord.Order), http.StatusOK)
	}
	if n := s.count(t, `SELECT count(*) FROM inv_seats WHERE state = 'sold'`); n != int64(len(owner)) {
		t.Fatalf("%d sold, %d held before", n, len(owner))
	}
	if n := s.count(t, `SELECT count(*) FROM inv_tickets WHERE status = 'valid'`); n != int64(len(owner)) {
		t.Fatalf("%d tickets for %d seats", n, len(owner))
	}
	for seat := range owner {
		res, err := s.hold(ev, s.buyer(t), map[string]any{"seats": []string{seat}})
		if err != nil || res.Status != http.StatusConflict {
			t.Fatalf("sold seat %s held again: %d %s %v", seat, res.Status, res.Body, err)
		}
		break
	}
}

// 500 concurrent requests for a GA pool of 100: exactly 100 held.
func TestRaceGAPool500For100(t *testing.T) {
	// Serial: hundreds of requests at once: CPU-bound, and its 40 connections with another test's would crowd PostgreSQL.
	env, inv := startEnv(t)
	s := newShop(t, env, inv, "garace")
	ev := s.event(t, "GA Race")
	cfg := s.configure(t, ev, map[string]any{
		"zones": []map[string]any{{"name": "Floor", "kind": "ga", "capacity": 100}},
		"tiers": []map[string]any{{"name": "Floor", "zone": "Floor", "price": 2500, "currency": "USD"}}, "max_ip_holds": 0,
	})
	tier := tierID(t, cfg, "Floor")
	const requests = 500
	tokens := make([]string, requests)
	for i := range tokens {
		tokens[i] = s.buyer(t)
	}
	codes := make([]int, requests)
	problems := make([]string, requests)
	parallel(requests, func(i int) {
		res, err := s.hold(ev, tokens[i], map[string]any{"tier_id": tier, "quantity": 1})
		if err != nil {
			problems[i] = err.Error()
			return
		}
		codes[i] = res.Status
		if res.Status != http.StatusCreated {
			problems[i] = res.Code()
		}
	})
	created := 0
	for i, c := range codes {
		switch {
		case c == http.StatusCreated:
			created++
		case c == http.StatusConflict && problems[i] == "sold_out":
		default:
			t.Fatalf("request %d: %d %s", i, c, problems[i])
		}
	}
	if created != 100 {
		t.Fatalf("%d holds created for a pool of 100", created)
	}
	if n := s.count(t, `SELECT sum(held) FROM inv_counter_shards`); n != 100 {
		t.Fatalf("pool shards hold %d", n)
	}
	if n := s.count(t, `SELECT count(*) FROM inv_holds WHERE status = 'active'`); n != 100 {
		t.Fatalf("%d active holds", n)
	}
	if n := s.count(t, `SELECT count(*) FROM inv_counter_shards WHERE held + sold > capacity`); n != 0 {
		t.Fatal("a shard is over capacity")
	}
}

// A channel quota holds under the same race: web quota 120 of a 300 pool,
// 400 racers with mixed quantities: the web channel never passes 120.
func TestRaceChannelQuota(t *testing.T) {
	// Serial: hundreds of requests at once: CPU-bound, and its 40 connections with another test's would crowd PostgreSQL.
	env, inv := startEnv(t)
	s := newShop(t, env, inv, "quotarace")
	ev := s.event(t, "Quota Race")
	cfg := s.configure(t, ev, map[string]any{
		"zones":  []map[string]any{{"name": "Floor", "kind": "ga", "capacity": 300}},
		"tiers":  []map[string]any{{"name": "Floor", "zone": "Floor", "price": 2500, "currency": "USD"}},
		"quotas": map[string]int{"web": 120, "box_office": 100, "ticketmaster": 50}, "max_ip_holds": 0,
	})
	tier := tierID(t, cfg, "Floor")
	const requests = 400
	tokens := make([]string, requests)
	qty := make([]int, requests)
	for i := range tokens {
		tokens[i], qty[i] = s.buyer(t), 1+i%3
	}
	got := make([]int, requests)
	parallel(requests, func(i int) {
		res, err := s.hold(ev, tokens[i], map[string]any{"tier_id": tier, "quantity": qty[i]})
		if err != nil {
			t.Error(err)
			return
		}
		switch {
		case res.Status == http.StatusCreated:
			got[i] = qty[i]
		case res.Status == http.StatusConflict && res.Code() == "quota_exceeded":
		default:
			t.Errorf("request %d: %d %s", i, res.Status, res.Body)
		}
	})
	total := 0
	for _, g := range got {
		total += g
	}
	if total > 120 || total < 118 {
		t.Fatalf("web channel holds %d of its 120", total)
	}
	if n := s.count(t, `SELECT sum(held) FROM inv_counter_shards sh JOIN inv_counters c ON c.id = sh.counter_id WHERE c.channel = 'web'`); n != int64(total) {
		t.Fatalf("quota shards hold %d, answers %d", n, total)
	}
	if n := s.count(t, `SELECT sum(held) FROM inv_counter_shards sh JOIN inv_counters c ON c.id = sh.counter_id WHERE c.kind = 'pool'`); n != int64(total) {
		t.Fatalf("pool holds %d, answers %d", n, total)
	}
	// The quotas can never add up past capacity, whichever way they are written.
	res := s.do(t, "PUT", "/api/v1/events/"+ev+"/quotas", map[string]int{"web": 200, "box_office": 100, "ticketmaster": 50})
	if res.Status != http.StatusConflict || res.Code() != "quota_exceeds_capacity" {
		t.Fatalf("quotas over capacity: %d %s", res.Status, res.Body)
	}
	res = s.do(t, "PUT", "/api/v1/events/"+ev+"/quotas", map[string]int{"web": 100})
	if res.Status != http.StatusConflict || res.Code() != "quota_below_sold" {
		t.Fatalf("quota below held: %d %s", res.Status, res.Body)
	}
	err := env.App.Tx(t.Context(), s.t, func(tx *gorm.DB) error {
		return tx.Exec(`UPDATE inv_counters SET capacity = 300 WHERE event_id = ? AND channel = 'box_office'`, ev).Error
	})
	if err == nil {
		t.Fatal("the database accepted quotas over capacity")
	}
	// Concurrent quota changes that each fit but together do not: one wins.
	codes := make([]int, 2)
	parallel(2, func(i int) {
		body := map[string]int{"web": 120, "box_office": 130, "ticketmaster": 50}
		if i == 1 {
			body = map[string]int{"web": 120, "box_office": 100, "ticketmaster": 80, "eventbrite": 0}
		}
		codes[i] = s.do(t, "PUT", "/api/v1/events/"+ev+"/quotas", body).Status
	})
	if n := s.count(t, `SELECT sum(capacity) FROM inv_counters WHERE event_id = ? AND kind = 'quota'`, ev); n > 300 {
		t.Fatalf("quotas add up to %d after concurrent changes (%v)", n, codes)
	}
}
