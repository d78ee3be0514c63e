package bench

import (
	"testing"
	"time"
)

// The admission-order check finds a buyer let in before an earlier arrival,
// and one let in while an earlier arrival waits forever; it excuses earlier
// arrivals who left, and overlapping joins (no order between them).
func TestAdmissionOrderCheck(t *testing.T) {
	t0 := time.Now()
	at := func(sent, done int) (time.Time, time.Time) {
		return t0.Add(time.Duration(sent) * time.Millisecond), t0.Add(time.Duration(done) * time.Millisecond)
	}
	mk := func(ticket string, sent, done int, left bool) *arrival {
		s, d := at(sent, done)
		return &arrival{sent: s, done: d, ticket: ticket, left: left}
	}
	// a and b overlap (either order is fair); c after both; d after c.
	all := []*arrival{mk("a", 0, 10, false), mk("b", 5, 12, false), mk("c", 20, 25, false), mk("d", 30, 35, false)}
	cases := []struct {
		name  string
		index map[string]int
		left  bool // c left the queue
		out   int64
		skip  int64
		ok    bool
	}{
		{"arrival order", map[string]int{"a": 0, "b": 1, "c": 2, "d": 3}, false, 0, 0, true},
		{"overlapping joins either way", map[string]int{"b": 0, "a": 1, "c": 2, "d": 3}, false, 0, 0, true},
		{"d before c", map[string]int{"a": 0, "b": 1, "d": 2, "c": 3}, false, 1, 0, false},
		{"c never admitted, d was", map[string]int{"a": 0, "b": 1, "d": 2}, false, 0, 1, false},
		{"c left, d admitted", map[string]int{"a": 0, "b": 1, "d": 2}, true, 0, 0, true},
		{"c before a", map[string]int{"c": 0, "a": 1, "b": 2, "d": 3}, false, 1, 0, false},
	}
	for _, c := range cases {
		all[2].left = c.left
		f := checkOrder(all, c.index)
		if f.OutOfOrder != c.out || f.Skipped != c.skip || f.OK != c.ok || f.Admitted != len(c.index) {
			t.Errorf("%s: %+v", c.name, f)
		}
	}
}
