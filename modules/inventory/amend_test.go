package inventory_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
)

// amendSetup is simpleSetup(2, 10, 50, web 60) with a change applied.
func amendSetup(change func(s map[string]any)) map[string]any {
	s := simpleSetup(2, 10, 50, map[string]int{"web": 60})
	if change != nil {
		change(s)
	}
	return s
}

func section(s map[string]any) map[string]any {
	return s["layout"].(map[string]any)["sections"].([]map[string]any)[0]
}

// Once a seat is sold, a new set-up is applied as an amendment: what would
// change a sold ticket is refused in words and changes nothing; adding
// seats, zones and tiers, raising quotas, bending rows, marking accessible
// seats, re-pricing an unsold tier and moving a future sale window work, and
// the sold seat stays sold to its order.
func TestAmendAfterSales(t *testing.T) {
	t.Parallel()
	s, ev, _ := onSale(t, "amend", "Amend Night", amendSetup(nil))
	buyer := s.buyer(t)
	h := s.mustHold(t, ev, buyer, map[string]any{"seats": []string{"A-1-1"}})
	o := s.order(t, buyer, h.ID)
	mustStatus(t, s.webhook(t, "evt_"+uuid.NewString(), "payment_intent.succeeded", o.Order), http.StatusOK)
	before := s.snapshot(t)
	seats := s.count(t, `SELECT count(*) FROM inv_seats WHERE event_id = ?`, ev)

	for _, c := range []struct {
		name, says string
		change     func(m map[string]any)
	}{
		{"remove the sold seat", "Section A, Row 1, Seat 1 is sold, so it cannot be removed or renumbered", func(m map[string]any) {
			section(m)["rows"] = []map[string]any{{"label": "2", "seats": 10}}
		}},
		{"renumber the sold seat", "Seat 1 is sold", func(m map[string]any) {
			section(m)["rows"] = []map[string]any{{"label": "1", "seats": 10, "start": 11}, {"label": "2", "seats": 10}}
		}},
		{"capacity below sold", "capacity cannot be 0: 1 tickets are already held or sold", func(m map[string]any) { m["capacity"] = 0 }},
		{"another currency", "Tickets were sold in EUR", func(m map[string]any) {
			for _, ti := range m["tiers"].([]map[string]any) {
				ti["currency"] = "USD"
			}
		}},
		{"re-price the sold tier", `Tier "Stalls" has tickets held or sold, so its price and fees cannot change`, func(m map[string]any) {
			m["tiers"].([]map[string]any)[0]["price"] = 6000
		}},
		{"remove the sold zone", `Zone "Stalls" has 1 tickets held or sold`, func(m map[string]any) {
			m["zones"] = []map[string]any{{"name": "Floor", "kind": "ga", "capacity": 50}}
			m["tiers"] = m["tiers"].([]map[string]any)[1:]
			delete(m, "layout")
		}},
		{"move an open sale's start", `has been on sale since`, func(m map[string]any) {
			m["tiers"].([]map[string]any)[0]["sale_starts"] = time.Now().Add(48 * time.Hour).UTC().Format(time.RFC3339)
		}},
		{"remove the selling channel's quota", "The web channel has 1 tickets held or sold", func(m map[string]any) { delete(m, "quotas") }},
	} {
		res := s.do(t, "PUT", "/api/v1/events/"+ev+"/inventory", amendSetup(c.change))
		var problem struct{ Detail string }
		_ = json.Unmarshal(res.Body, &problem)
		if res.Status != http.StatusConflict || res.Code() != "inventory_in_use" || !strings.Contains(problem.Detail, c.says) {
			t.Fatalf("%s: %d %s", c.name, res.Status, res.Body)
		}
		if after := s.snapshot(t); after != before {
			t.Fatalf("%s changed the state: %s -> %s", c.name, before, after)
		}
		if n := s.count(t, `SELECT count(*) FROM inv_seats WHERE event_id = ?`, ev); n != seats {
			t.Fatalf("%s: %d seats, had %d", c.name, n, seats)
		}
	}

	// The safe changes, all at once.
	saleEnds := time.Now().Add(72 * time.Hour).UTC().Truncate(time.Second)
	res := s.do(t, "PUT", "/api/v1/events/"+ev+"/inventory", amendSetup(func(m map[string]any) {
		sec := section(m)
		sec["curve"] = 20
		sec["aisles"] = []int{5}
		sec["rows"] = []map[string]any{{"label": "1", "seats": 10, "accessible": []int{9, 10}}, {"label": "2", "seats": 12}, {"label": "3", "seats": 12}}
		m["zones"] = append(m["zones"].([]map[string]any), map[string]any{"name": "Balcony", "kind": "ga", "capacity": 30})
		tiers := m["tiers"].([]map[string]any)
		tiers[0]["sale_ends"] = saleEnds.Format(time.RFC3339)
		tiers[1]["price"] = 3300 // Floor sold nothing
		m["tiers"] = append(tiers, map[string]any{"name": "Balcony", "zone": "Balcony", "price": 2500, "currency": "EUR"})
		m["quotas"] = map[string]int{"web": 100, "box_office": 10}
	}))
	mustStatus(t, res, http.StatusOK)
	var inv struct {
		Settings struct{ Capacity int }
		Zones    []struct {
			Name     string
			Capacity int
			Sold     int
		}
		Tiers []struct {
			Name     string
			Price    int64
			SaleEnds *time.Time `json:"sale_ends"`
		}
		Counters []struct {
			Channel  *string
			Capacity int
		}
	}
	if err := json.Unmarshal(res.Body, &inv); err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(inv.Settings.Capacity)
	for _, z := range inv.Zones {
		got += fmt.Sprintf(" %s:%d/%d", z.Name, z.Sold, z.Capacity)
	}
	for _, ti := range inv.Tiers {
		got += fmt.Sprintf(" %s=%d", ti.Name, ti.Price)
		if ti.Name == "Stalls" && (ti.SaleEnds == nil || !ti.SaleEnds.Equal(saleEnds)) {
			t.Fatalf("Stalls sale ends %v, want %v", ti.SaleEnds, saleEnds)
		}
	}
	for _, c := range inv.Counters {
		if c.Channel != nil {
			got += fmt.Sprintf(" %s<=%d", *c.Channel, c.Capacity)
		}
	}
	if want := "114 Stalls:1/34 Floor:0/50 Balcony:0/30 Stalls=5000 Floor=3300 Balcony=2500 box_office<=10 web<=100"; got != want {
		t.Fatalf("after the amendment:\n got %s\nwant %s", got, want)
	}
	if n := s.count(t, `SELECT count(*) FROM inv_seats st JOIN inv_tickets tk ON tk.seat_id = st.id AND tk.order_id = st.order_id
		WHERE st.event_id = ? AND st.id = 'A-1-1' AND st.state = 'sold' AND tk.order_id = ?`, ev, o.ID); n != 1 {
		t.Fatal("the sold seat is no longer sold to its order")
	}
	// The map bends and keeps an aisle; the accessible seats are marked.
	res = s.do(t, "GET", "/api/v1/events/"+ev+"/seatmap", nil)
	mustStatus(t, res, http.StatusOK)
	var sm struct {
		Seats []struct {
			ID         string
			X, Y       float64
			Accessible bool
		}
	}
	if err := json.Unmarshal(res.Body, &sm); err != nil {
		t.Fatal(err)
	}
	pos := map[string][3]float64{}
	var accessible []string
	for _, st := range sm.Seats {
		pos[st.ID] = [3]float64{st.X, st.Y}
		if st.Accessible {
			accessible = append(accessible, st.ID)
		}
	}
	if len(sm.Seats) != 34 || strings.Join(accessible, ",") != "A-1-9,A-1-10" {
		t.Fatalf("%d seats, accessible %v", len(sm.Seats), accessible)
	}
	if gap := pos["A-2-6"][0] - pos["A-2-5"][0]; gap != 24 {
		t.Fatalf("aisle after seat 5: seats 5 and 6 are %v apart, want two seat widths (24)", gap)
	}
	if !(pos["A-2-6"][1] > pos["A-2-1"][1] && pos["A-2-1"][1] == pos["A-2-12"][1]) {
		t.Fatalf("row 2 does not bend: ends at %v and %v, middle %v", pos["A-2-1"], pos["A-2-12"], pos["A-2-6"])
	}
	if n := s.count(t, `SELECT count(*) FROM inv_events WHERE event_id = ? AND layout->'sections'->0->>'curve' = '20'`, ev); n != 1 {
		t.Fatal("the layout as built is not kept")
	}
}

// A hold of a seat races an amendment that removes the seat's row, many
// times over: exactly one of them wins each time — the amendment finds the
// row free and removes it (the hold then finds no seat), or the hold takes
// the seat first (the amendment is then refused in words) — and no held
// seat ever loses its row.
func TestAmendRacesHolds(t *testing.T) {
	t.Parallel()
	env, inv := startEnv(t)
	s := newShop(t, env, inv, "amendrace")
	withoutRow2 := simpleSetup(1, 10, 0, nil)
	wins := map[string]int{}
	for round := 0; round < 12; round++ {
		ev := s.event(t, fmt.Sprintf("Amend Race %d", round))
		s.configure(t, ev, simpleSetup(2, 10, 0, nil))
		buyer := s.buyer(t)
		seat := fmt.Sprintf("A-2-%d", 1+rand.IntN(10))
		start := make(chan struct{})
		var wg sync.WaitGroup
		var holdStatus, amendStatus int
		var amendBody string
		wg.Add(2)
		go func() {
			defer wg.Done()
			<-start
			res, err := s.hold(ev, buyer, map[string]any{"seats": []string{seat}})
			if err != nil {
				t.Error(err)
				return
			}
			holdStatus = res.Status
		}()
		go func() {
			defer wg.Done()
			<-start
			res, err := env.Try("PUT", s.slug, "/api/v1/events/"+ev+"/inventory", s.tok, withoutRow2)
			if err != nil {
				t.Error(err)
				return
			}
			amendStatus, amendBody = res.Status, string(res.Body)
		}()
		close(start)
		wg.Wait()
		switch {
		case holdStatus == http.StatusCreated && amendStatus == http.StatusConflict && strings.Contains(amendBody, "is held, so it cannot be removed"):
			wins["hold"]++
			if st := s.seatState(t, ev, seat); st != "held" {
				t.Fatalf("round %d: the hold won but %s is %q", round, seat, st)
			}
		case amendStatus == http.StatusOK && holdStatus != http.StatusCreated:
			wins["amendment"]++
			if n := s.count(t, `SELECT count(*) FROM inv_seats WHERE event_id = ? AND row_label = '2'`, ev); n != 0 {
				t.Fatalf("round %d: the amendment won but row 2 has %d seats", round, n)
			}
		default:
			t.Fatalf("round %d: hold %d, amendment %d %s", round, holdStatus, amendStatus, amendBody)
		}
		if n := s.count(t, `SELECT count(*) FROM inv_hold_lines l JOIN inv_holds h ON h.id = l.hold_id
			LEFT JOIN inv_seats st ON st.event_id = h.event_id AND st.id = l.seat_id AND st.hold_id = h.id
			WHERE h.event_id = ? AND h.status = 'active' AND st.id IS NULL`, ev); n != 0 {
			t.Fatalf("round %d: %d held seats lost their row", round, n)
		}
	}
	t.Logf("winners over 12 rounds: %v", wins)
}
