package pricing

import (
	"math/rand"
	"testing"
	"time"
)

func TestDecideReadsDemand(t *testing.T) {
	b := Bounds{Floor: 4000, Ceiling: 9000, MaxStep: 300, MinInterval: time.Minute}
	cases := []struct {
		name string
		cur  int64
		s    Signals
		want int64
	}{
		{"on pace: no change", 5000, Signals{SoldRecent: 2, WindowMin: 15, Remaining: 960, Capacity: 1000, HoursToEvent: 120}, 5000},
		{"a hair behind pace: under 1%, no change", 5000, Signals{SoldRecent: 1, WindowMin: 15, Remaining: 1040, Capacity: 1100, HoursToEvent: 250}, 5000},
		{"selling fast: up one step", 5000, Signals{SoldRecent: 50, WindowMin: 15, Remaining: 500, Capacity: 1000, HoursToEvent: 240}, 5300},
		{"nothing sells far out: a small cut", 5000, Signals{WindowMin: 15, Remaining: 100, Capacity: 100, HoursToEvent: 240}, 4948},
		{"queue ten deep per ticket left: up one step", 5000, Signals{WindowMin: 15, Remaining: 100, Capacity: 1000, Queue: 5000, HoursToEvent: 240}, 5300},
		{"at the ceiling stays", 9000, Signals{SoldRecent: 500, WindowMin: 15, Remaining: 10, Capacity: 1000, Queue: 1000, HoursToEvent: 10}, 9000},
		{"near the ceiling: stops at it", 8900, Signals{SoldRecent: 500, WindowMin: 15, Remaining: 10, Capacity: 1000, HoursToEvent: 10}, 9000},
		{"unsold on the day: down one step", 5000, Signals{WindowMin: 15, Remaining: 900, Capacity: 1000, HoursToEvent: 6}, 4700},
		{"near the floor: stops at it", 4100, Signals{WindowMin: 15, Remaining: 900, Capacity: 1000, HoursToEvent: 6}, 4000},
		{"sold out: scarcity only, up", 5000, Signals{WindowMin: 15, Remaining: 0, Capacity: 100, HoursToEvent: 100}, 5300},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, read := Decide(tc.cur, b, tc.s)
			if got != tc.want {
				t.Fatalf("got %d, want %d (pressure %.3f, target %d)", got, tc.want, read.Pressure, read.Target)
			}
		})
	}
}

// TestDecideKeepsBounds: whatever the signals, a price starting inside its
// bounds stays inside them and moves at most one step.
func TestDecideKeepsBounds(t *testing.T) {
	r := rand.New(rand.NewSource(17))
	for i := 0; i < 100000; i++ {
		floor := r.Int63n(10000)
		b := Bounds{Floor: floor, Ceiling: floor + r.Int63n(20000), MaxStep: 1 + r.Int63n(2000)}
		cur := b.Floor + r.Int63n(b.Ceiling-b.Floor+1)
		capacity := r.Intn(5000)
		s := Signals{SoldRecent: r.Intn(3000), WindowMin: 15, Capacity: capacity, Remaining: r.Intn(capacity + 1),
			Queue: r.Int63n(100000), HoursToEvent: r.Float64()*2000 - 10}
		next, _ := Decide(cur, b, s)
		if next < b.Floor || next > b.Ceiling || next-cur > b.MaxStep || cur-next > b.MaxStep {
			t.Fatalf("cur %d bounds %+v signals %+v: next %d", cur, b, s, next)
		}
	}
}
