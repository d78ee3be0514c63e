package bench

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"

	"marquee/modules/inventory/queue"
)

// arrival is when a buyer's join left and when its answer came back, with
// the place it got: a buyer whose join was answered before another's was
// sent arrived earlier, whatever the network did.
type arrival struct {
	sent, done time.Time
	ticket     string
	left       bool // stopped waiting before admission (sold out in the queue, timed out)
}

type arrivals struct {
	mu sync.Mutex
	m  map[int]*arrival
}

func (a *arrivals) joined(n int, sent, done time.Time, ticket string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.m == nil {
		a.m = map[int]*arrival{}
	}
	a.m[n] = &arrival{sent: sent, done: done, ticket: ticket}
}

func (a *arrivals) ended(n int, outcome string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if x := a.m[n]; x != nil && (outcome == "sold_out_in_queue" || outcome == "timed_out") {
		x.left = true
	}
}

// Fairness is the admission order checked against the arrival order.
type Fairness struct {
	Joined     int   `json:"joined"`
	Admitted   int   `json:"admitted"`     // of them, in the room's admission log
	OutOfOrder int64 `json:"out_of_order"` // admitted before someone admitted later who had arrived before them
	Skipped    int64 `json:"skipped"`      // admitted while someone who arrived before them, still waiting, never was
	Excused    int64 `json:"excused"`      // earlier arrivals never admitted who had left the queue
	OK         bool  `json:"ok"`
}

// fairness reads the room's admission log and checks it against what the
// buyers saw: for every two buyers A and B where A's join was answered
// before B's was sent, A must be admitted before B, or A must have left.
func (h *Harness) fairness(ctx context.Context) (Fairness, error) {
	event, err := uuid.Parse(h.event)
	if err != nil {
		return Fairness{}, err
	}
	index := map[string]int{}
	for from := int64(0); ; from += 10000 {
		part, err := queue.AdmissionOrder(ctx, h.a.Redis, h.a.RedisKey(""), h.t, event, from, 10000)
		if err != nil {
			return Fairness{}, err
		}
		for i, t := range part {
			index[t] = int(from) + i
		}
		if len(part) < 10000 {
			break
		}
	}
	h.arr.mu.Lock()
	all := make([]*arrival, 0, len(h.arr.m))
	for _, a := range h.arr.m {
		all = append(all, a)
	}
	h.arr.mu.Unlock()
	return checkOrder(all, index), nil
}

// checkOrder checks admissions (ticket → place in the admission log)
// against arrivals.
func checkOrder(all []*arrival, index map[string]int) Fairness {
	f := Fairness{Joined: len(all)}
	bySent := slices.Clone(all)
	slices.SortFunc(bySent, func(a, b *arrival) int { return a.sent.Compare(b.sent) })
	byDone := slices.Clone(all)
	slices.SortFunc(byDone, func(a, b *arrival) int { return a.done.Compare(b.done) })
	// Sweep B in order of sending; the arrivals answered before B was sent
	// are "before B": the latest admission among them must precede B's, and
	// none of them may still be waiting unadmitted.
	maxIdx, waiting, excused, next := -1, 0, 0, 0
	for _, b := range bySent {
		for next < len(byDone) && byDone[next].done.Before(b.sent) {
			a := byDone[next]
			next++
			if i, ok := index[a.ticket]; ok {
				maxIdx = max(maxIdx, i)
			} else if a.left {
				excused++
			} else {
				waiting++
			}
		}
		i, ok := index[b.ticket]
		if !ok {
			continue
		}
		f.Admitted++
		if maxIdx > i {
			f.OutOfOrder++
		}
		if waiting > 0 {
			f.Skipped++
		}
	}
	f.Excused = int64(excused)
	f.OK = f.OutOfOrder == 0 && f.Skipped == 0 && f.Admitted > 0
	return f
}

func (f Fairness) String() string {
	verdict := "OK"
	if !f.OK {
		verdict = "FAILED"
	}
	return fmt.Sprintf("admission order %s: %d buyers joined, %d admitted (by the room's admission log); admitted before an earlier arrival admitted later %d, admitted while an earlier arrival still waiting was never admitted %d (earlier arrivals who left the queue: %d)",
		verdict, f.Joined, f.Admitted, f.OutOfOrder, f.Skipped, f.Excused)
}
