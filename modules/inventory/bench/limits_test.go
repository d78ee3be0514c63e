package bench

import (
	"strings"
	"testing"
)

// A phase of bench limits measures the limits' cost only if it ran its
// whole time with every hold granted or shed: refusals (in either phase),
// an event out of seats, unanswered requests or no hold at all make it
// invalid, each named in the reason.
func TestLimitsPhaseProblem(t *testing.T) {
	ok := LimitsPhase{Holds: 3000, Seats: 60000, Asked: 3100, Shed: 100, Refused: map[string]int64{}, Seconds: 5, Want: 5}
	if why := ok.problem(); why != "" {
		t.Fatalf("a full phase without refusals is invalid: %s", why)
	}
	for _, c := range []struct {
		name string
		edit func(p *LimitsPhase)
		want []string
	}{
		{"refused with the limits off", func(p *LimitsPhase) {
			p.Refused = map[string]int64{"429 hold_limit": 1800, "409 max_per_order": 2}
		}, []string{"1802 holds refused", "1800 × 429 hold_limit", "2 × 409 max_per_order"}},
		{"refused with the limits on", func(p *LimitsPhase) {
			p.Limits, p.Refused = true, map[string]int64{"429 ip_rate_limited": 1}
		}, []string{"1 holds refused", "429 ip_rate_limited"}},
		{"out of seats", func(p *LimitsPhase) { p.Asked, p.Seconds = int64(p.Seats), 2.5 }, []string{"every one of the event's 60000 seats", "2.5 s of 5.0 s"}},
		{"requests lost", func(p *LimitsPhase) { p.Errors = 3 }, []string{"3 requests got no answer"}},
		{"nothing held", func(p *LimitsPhase) { p.Holds = 0 }, []string{"no hold succeeded"}},
	} {
		p := ok
		p.Refused = map[string]int64{}
		c.edit(&p)
		why := p.problem()
		for _, w := range c.want {
			if !strings.Contains(why, w) {
				t.Errorf("%s: reason %q lacks %q", c.name, why, w)
			}
		}
	}
}
