package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/google/uuid"

	"marquee/app"
	"marquee/modules/inventory"
	"marquee/modules/inventory/internal/buyers"
	"marquee/tenants"
)

// LimitsReport is the hold path's throughput with the chain's limits off and
// on, measured in alternating phases of one run (off, on, on, off, … so a
// drift of the machine's load weighs on both alike).
type LimitsReport struct {
	Phases   []LimitsPhase `json:"phases"`
	OffPerS  float64       `json:"holds_per_second_off"`
	OnPerS   float64       `json:"holds_per_second_on"`
	Ratio    float64       `json:"ratio_on_to_off"`
	OffP99Ms float64       `json:"hold_p99_ms_off"`
	OnP99Ms  float64       `json:"hold_p99_ms_on"`
	// RoundRatios is each round's on/off ratio (its two phases of each),
	// MedianRatio their median: a phase that a burst of the machine's other
	// load slowed weighs on one round only.
	RoundRatios []float64 `json:"round_ratios"`
	MedianRatio float64   `json:"median_round_ratio"`
	// CPUPerHoldOffUs and CPUPerHoldOnUs are the CPU time per hold with the
	// limits off and on (server, database, Redis), CPURatio on/off.
	CPUPerHoldOffUs float64 `json:"cpu_per_hold_us_off"`
	CPUPerHoldOnUs  float64 `json:"cpu_per_hold_us_on"`
	CPURatio        float64 `json:"cpu_ratio_on_to_off"`
	LoadBefore      string  `json:"loadavg_before"`
	LoadAfter       string  `json:"loadavg_after"`
	// Invalid says why the run measures nothing (a phase refused holds, ran
	// out of seats or lost requests); empty when the figures stand.
	Invalid string `json:"invalid,omitempty"`
}

// LimitsPhase is one measured phase.
type LimitsPhase struct {
	Limits bool    `json:"limits"`
	Holds  int64   `json:"holds"`
	PerS   float64 `json:"holds_per_second"`
	P50Ms  float64 `json:"p50_ms"`
	P99Ms  float64 `json:"p99_ms"`
	// Seats is what the phase's event offers, Asked the hold requests sent:
	// a phase that asked for every seat stopped before its time.
	Seats int   `json:"seats"`
	Asked int64 `json:"asked"`
	// Refused counts the answers other than 201 and 503 by status and code
	// ("429 hold_limit"); Shed the 503s of a server out of room (the machine's
	// own cap); Errors the requests that got no answer.
	Refused map[string]int64 `json:"refused"`
	Shed    int64            `json:"shed"`
	Errors  int64            `json:"errors"`
	// CPU is the CPU time the phase cost (server and harness, the database,
	// Redis), CPUPerHoldUs its total per hold granted, in microseconds: the
	// limits' cost in work, which the machine's other load does not change
	// as it changes holds/s.
	CPU          CPUSpent `json:"cpu"`
	CPUPerHoldUs float64  `json:"cpu_per_hold_us"`
	// Seconds is how long the phase ran, Want how long it was to run.
	Seconds float64 `json:"seconds"`
	Want    float64 `json:"want_seconds"`
}

// refused is the phase's refusals in all.
func (p LimitsPhase) refused() int64 {
	var n int64
	for _, c := range p.Refused {
		n += c
	}
	return n
}

// problem says why a phase does not measure what the limits cost, "" when
// it does. Each hold is a fresh buyer's and device's, and the thresholds
// are beyond what one hold can reach: a refusal means the holds were capped
// by a limit or a cart, not by the machine (as when the bench's buyers held
// again and again into one cart each, and both phases stopped at a few
// hundred holds); a phase that asked for every seat was capped by the
// event's size; a request without an answer is left out of the rate.
func (p LimitsPhase) problem() string {
	var why []string
	if n := p.refused(); n > 0 {
		codes := make([]string, 0, len(p.Refused))
		for c, k := range p.Refused {
			codes = append(codes, fmt.Sprintf("%d × %s", k, c))
		}
		slices.Sort(codes)
		why = append(why, fmt.Sprintf("%d holds refused (%s)", n, strings.Join(codes, ", ")))
	}
	if p.Asked >= int64(p.Seats) {
		why = append(why, fmt.Sprintf("every one of the event's %d seats was asked for after %.1f s of %.1f s", p.Seats, p.Seconds, p.Want))
	}
	if p.Errors > 0 {
		why = append(why, fmt.Sprintf("%d requests got no answer", p.Errors))
	}
	if p.Holds == 0 {
		why = append(why, "no hold succeeded")
	}
	return strings.Join(why, "; ")
}

// ErrLimitsInvalid is returned (wrapped, with the reason) when a phase of
// bench limits does not measure the limits' cost.
var ErrLimitsInvalid = errors.New("bench limits invalid")

// RunLimits measures what the chain's limits cost the hold path at
// saturation: o.Concurrency clients hold single seats for o.Phase per
// phase, through the API, rounds × (off, on, on, off). Every hold is a new
// buyer's, from a new device (X-Device-Id), as in an on-sale where each
// buyer holds once: the buyer's one cart never takes a second hold, so no
// hold joins a cart or meets a per-order or per-buyer limit. With the limits
// on, every hold checks its device's rate in Redis (redis_rate) and counts
// against the device's active-hold cap in the batch's writing statement
// (the event's max_ip_holds); with them off, neither. The risk score is
// checkout's, not the hold's. The thresholds are the chain defaults, beyond
// what one hold of a device reaches: the run measures checking them, not
// refusals, and fails (ErrLimitsInvalid, after writing what it measured) if
// a phase refused a hold, ran out of seats or lost requests.
func RunLimits(ctx context.Context, a *app.App, base string, o Options, rounds int, out io.Writer) (*LimitsReport, error) {
	h := newHarness(a, base, o, out, io.Discard)
	if err := h.checkStripeMock(); err != nil {
		return nil, err
	}
	h.o.Seats, h.o.GA = 10, 0
	if err := h.setup(ctx); err != nil {
		return nil, fmt.Errorf("setup: %w", err)
	}
	defer h.retire(h.slug)
	rep := &LimitsReport{LoadBefore: loadavg()}
	if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
		return nil, err
	}
	seats := min(60000, max(2000, int(o.Phase.Seconds()*15000)))
	// The platform's secret signs buyer and device tokens, as the server's
	// POST /buyer-sessions does (a --target deployment shares the
	// configuration): a phase's tens of thousands of buyers are minted in
	// memory before its clock starts, and the server checks each token as
	// it checks any.
	signer := buyers.New(a.Config.SecretKey)
	type sum struct {
		holds int64
		secs  float64
		p99   []float64
		cpu   float64
	}
	var sums [2]sum
	day := 10
	for r := range rounds {
		var round [2]sum
		for j, on := range []bool{false, true, true, false} {
			if err := h.setLimits(ctx, on); err != nil {
				return nil, err
			}
			// One active hold per device: each device holds once.
			h.maxClientHolds = 0
			if on {
				h.maxClientHolds = 1
			}
			day++
			ev, _, err := h.newEvent(ctx, fmt.Sprintf("Limits %d %v", r, on), seats, 0, day, 1)
			if err != nil {
				return nil, err
			}
			sessions := mintSessions(signer, h.t, seats)
			var mu sync.Mutex
			refused := map[string]int64{}
			var shed atomic.Int64
			// A CPU profile per phase (server and harness are one process):
			// go tool pprof -top -diff_base <off> <on> shows what the limits add.
			prof, perr := os.Create(filepath.Join(o.OutDir, fmt.Sprintf("limits-%d-%d-%s.pprof", r+1, j+1, onOff(on))))
			profiling := perr == nil && pprof.StartCPUProfile(prof) == nil
			cpu0 := h.cpuNow(ctx)
			n, lat, el, errs, ferr := h.phase(seats, func(_, i int) (bool, error) {
				res, err := h.call(ctx, "POST", h.slug, "/api/v1/events/"+ev+"/holds", "", map[string]any{"seats": []string{seatID(i)}},
					"Idempotency-Key", uuid.NewString(), inventory.BuyerHeader, sessions[i][0], inventory.DeviceHeader, sessions[i][1])
				switch {
				case err != nil:
					return false, err
				case res.status == http.StatusCreated:
					return true, nil
				case res.status == http.StatusServiceUnavailable:
					shed.Add(1)
				default:
					mu.Lock()
					refused[fmt.Sprintf("%d %s", res.status, res.code())]++
					mu.Unlock()
				}
				return false, nil
			})
			cpu := h.cpuNow(ctx).since(cpu0)
			if profiling {
				pprof.StopCPUProfile()
			}
			if perr == nil {
				_ = prof.Close()
			}
			ph := LimitsPhase{Limits: on, Holds: n, PerS: float64(n) / el.Seconds(), P50Ms: percentile(lat, .5), P99Ms: percentile(lat, .99),
				Seats: seats, Asked: n + shed.Load() + errs, Refused: refused, Shed: shed.Load(), Errors: errs, Seconds: el.Seconds(), Want: o.Phase.Seconds(), CPU: cpu}
			if n > 0 {
				ph.CPUPerHoldUs = cpu.Total() * 1000 / float64(n)
			}
			ph.Asked += ph.refused()
			rep.Phases = append(rep.Phases, ph)
			fmt.Fprintf(out, "round %d limits %-3s: %6d holds in %.1fs = %7.0f holds/s, p50 %5.1f ms, p99 %6.1f ms, refused %d, shed %d, errors %d; CPU per hold %4.0f µs (process %.0f, database %.0f, Redis %.0f ms in all); loadavg %s\n",
				r+1, onOff(on), n, el.Seconds(), ph.PerS, ph.P50Ms, ph.P99Ms, ph.refused(), ph.Shed, errs, ph.CPUPerHoldUs, cpu.ProcessMs, cpu.DatabaseMs, cpu.RedisMs, loadavg())
			if why := ph.problem(); why != "" {
				if ferr != nil {
					why += fmt.Sprintf(" (first error: %v)", ferr)
				}
				rep.Invalid = fmt.Sprintf("round %d, phase %d (limits %s): %s", r+1, j+1, onOff(on), why)
				rep.LoadAfter = loadavg()
				fmt.Fprintf(out, "INVALID: %s: the phases would not measure what the limits cost\n", rep.Invalid)
				return rep, fmt.Errorf("%w: %s", ErrLimitsInvalid, rep.Invalid)
			}
			k := 0
			if on {
				k = 1
			}
			sums[k].holds += n
			sums[k].secs += el.Seconds()
			sums[k].p99 = append(sums[k].p99, ph.P99Ms)
			sums[k].cpu += cpu.Total()
			round[k].holds += n
			round[k].secs += el.Seconds()
		}
		ratio := (float64(round[1].holds) / round[1].secs) / (float64(round[0].holds) / round[0].secs)
		rep.RoundRatios = append(rep.RoundRatios, ratio)
		fmt.Fprintf(out, "round %d: ratio on/off %.3f\n", r+1, ratio)
	}
	sorted := slices.Sorted(slices.Values(rep.RoundRatios))
	rep.MedianRatio = sorted[len(sorted)/2]
	if len(sorted)%2 == 0 {
		rep.MedianRatio = (sorted[len(sorted)/2-1] + sorted[len(sorted)/2]) / 2
	}
	rep.OffPerS, rep.OnPerS = float64(sums[0].holds)/sums[0].secs, float64(sums[1].holds)/sums[1].secs
	rep.Ratio = rep.OnPerS / rep.OffPerS
	rep.OffP99Ms, rep.OnP99Ms = mean(sums[0].p99), mean(sums[1].p99)
	rep.CPUPerHoldOffUs, rep.CPUPerHoldOnUs = sums[0].cpu*1000/float64(sums[0].holds), sums[1].cpu*1000/float64(sums[1].holds)
	rep.CPURatio = rep.CPUPerHoldOnUs / rep.CPUPerHoldOffUs
	rep.LoadAfter = loadavg()
	fmt.Fprintf(out, "holds/s with limits off %.0f, on %.0f: ratio on/off %.3f, median of the rounds' %.3f (goal >= 0.9); mean p99 off %.1f ms, on %.1f ms; no hold refused; loadavg before %s, after %s\n",
		rep.OffPerS, rep.OnPerS, rep.Ratio, rep.MedianRatio, rep.OffP99Ms, rep.OnP99Ms, rep.LoadBefore, rep.LoadAfter)
	fmt.Fprintf(out, "CPU per hold (server and harness, database, Redis) off %.0f µs, on %.0f µs: on/off %.3f (what the limits cost in work, whatever the machine's other load)\n",
		rep.CPUPerHoldOffUs, rep.CPUPerHoldOnUs, rep.CPURatio)
	return rep, nil
}

// mintSessions mints n buyers, each with a device of its own: [buyer token,
// device token]. A variable, so that a test can make the bench reuse buyers
// as it once did and see the run refuse to report.
var mintSessions = func(signer *buyers.Signer, t tenants.Tenant, n int) [][2]string {
	out := make([][2]string, n)
	for i := range out {
		_, buyer := signer.NewBuyerToken(t)
		_, device := signer.NewDeviceToken(t)
		out[i] = [2]string{buyer, device}
	}
	return out
}

// setLimits turns the chain's limits on or off, at the chain defaults
// (limits.DefaultThresholds): one hold per device stays far below its
// rate of 60 a minute.
func (h *Harness) setLimits(ctx context.Context, on bool) error {
	return h.mustJSON(ctx, http.StatusOK, nil, "PUT", "/api/v1/limits", map[string]any{"enabled": on, "max_tickets_per_email": 8,
		"max_tickets_per_ip": 24, "max_tickets_per_card": 8, "max_tickets_per_device": 8, "declines_to_challenge": 2,
		"declines_to_block": 3, "min_checkout_seconds": 4, "ip_holds_per_minute": 60, "ip_orders_per_minute": 20})
}

func onOff(on bool) string {
	if on {
		return "on"
	}
	return "off"
}

func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	sum := 0.0
	for _, x := range xs {
		sum += x
	}
	return sum / float64(len(xs))
}

// loadavg is the machine's load (1, 5, 15 minutes), printed next to each
// figure: the machine may be shared.
func loadavg() string {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(raw))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
