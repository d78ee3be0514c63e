// Package pricing is the inventory's demand-based pricing: per tier, turned
// on per event by the chain within the bounds it sets (floor, ceiling,
// maximum step per change, minimum interval between changes), recomputed by
// a periodic job from sales velocity, share remaining, waiting-room length
// and time to the event; every change goes to an append-only history with
// its inputs. Prices here are face prices (before fees); buyers always see
// them all-in (price + fee). A hold keeps the all-in unit price it was made
// at, so a change never alters what a holder pays.
package pricing

import (
	"math"
	"time"
)

// Bounds are the chain's limits on a tier's price (face, minor units).
type Bounds struct {
	Floor       int64         `json:"floor"`
	Ceiling     int64         `json:"ceiling"`
	MaxStep     int64         `json:"max_step"`
	MinInterval time.Duration `json:"-"`
}

// Signals are what the demand reading is made of, stored with each change.
type Signals struct {
	SoldRecent   int     `json:"sold_recent"`    // tickets of the tier paid in the last Window
	WindowMin    int     `json:"window_minutes"` // the velocity window
	Remaining    int     `json:"remaining"`      // tickets of the tier left
	Capacity     int     `json:"capacity"`       // tickets of the tier in all
	Queue        int64   `json:"queue"`          // buyers waiting in the event's room
	HoursToEvent float64 `json:"hours_to_event"`
	Pressure     float64 `json:"pressure"` // the reading Decide made of the above
	Target       int64   `json:"target"`   // the price before the step and bounds
}

// VelocityWindow is how far back sales velocity looks.
const VelocityWindow = 15 * time.Minute

// sensitivity is the share of the price one unit of pressure moves it.
const sensitivity = 0.10

// Decide returns the tier's next face price and the signals with the
// reading filled in. It is pure: the job and the tests call it alike.
//
// Pressure is how much faster than needed the tier sells: the tickets sold
// in the window against those the window must sell for the remainder to
// sell out by the event (0 on pace, up to +3 ahead, down to -1 when nothing
// sells), plus scarcity when under a fifth remains, plus the queue against
// what remains, minus a push down when over half is unsold two days out.
// The target is the price moved by 10% per unit of pressure; a move under
// 1% is not made; the rest is limited to one step and to the bounds.
func Decide(current int64, b Bounds, s Signals) (int64, Signals) {
	hours := math.Max(s.HoursToEvent, 0.25)
	window := float64(s.WindowMin) / 60
	needed := float64(s.Remaining) / hours * window
	p := 0.0
	if s.Remaining > 0 {
		p = (float64(s.SoldRecent) - needed) / math.Max(needed, 1)
		p = math.Max(-1, math.Min(3, p))
	}
	share := 1.0
	if s.Capacity > 0 {
		share = float64(s.Remaining) / float64(s.Capacity)
	}
	if share < 0.2 {
		p += (0.2 - share) * 5
	}
	if s.Queue > 0 && s.Remaining > 0 {
		p += math.Min(float64(s.Queue)/float64(s.Remaining), 2)
	}
	if s.HoursToEvent < 48 && share > 0.5 {
		p -= 0.5
	}
	s.Pressure = math.Round(p*1000) / 1000
	target := int64(math.Round(float64(current) * (1 + sensitivity*p)))
	s.Target = target
	if d := target - current; d*100 < current && -d*100 < current {
		return current, s // under 1%: not worth a change buyers would notice as jitter
	}
	next := target
	if next > current+b.MaxStep {
		next = current + b.MaxStep
	}
	if next < current-b.MaxStep {
		next = current - b.MaxStep
	}
	next = min(max(next, b.Floor), b.Ceiling)
	return next, s
}
