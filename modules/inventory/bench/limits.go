package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"

	"github.com/google/uuid"

	"marquee/app"
	"marquee/modules/inventory"
)

// LimitsReport is the hold path's throughput with the chain's limits off and
// on, measured in alternating phases of one run (off, on, on, off, … so a
// drift of the machine's load weighs on both alike).
type LimitsReport struct {
	Phases     []LimitsPhase `json:"phases"`
	OffPerS    float64       `json:"holds_per_second_off"`
	OnPerS     float64       `json:"holds_per_second_on"`
	Ratio      float64       `json:"ratio_on_to_off"`
	OffP99Ms   float64       `json:"hold_p99_ms_off"`
	OnP99Ms    float64       `json:"hold_p99_ms_on"`
	LoadBefore string        `json:"loadavg_before"`
	LoadAfter  string        `json:"loadavg_after"`
}

// LimitsPhase is one measured phase.
type LimitsPhase struct {
	Limits bool    `json:"limits"`
	Holds  int64   `json:"holds"`
	PerS   float64 `json:"holds_per_second"`
	P50Ms  float64 `json:"p50_ms"`
	P99Ms  float64 `json:"p99_ms"`
	Errors int64   `json:"errors"`
}

// RunLimits measures what the chain's limits cost the hold path at
// saturation: o.Concurrency clients, each a buyer with its own device
// token (X-Device-Id), hold single seats for o.Phase per phase, through
// the API, rounds × (off, on, on, off). With the limits on, every hold
// checks the device's rate in Redis (redis_rate) and counts against the
// device's active-hold cap in the batch's writing statement (the event's
// max_ip_holds); with them off, neither. The thresholds are out of reach:
// the run measures checking them, not the refusals.
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
	var sums [2]struct {
		holds int64
		secs  float64
		p99   []float64
	}
	day := 10
	for r := range rounds {
		for j, on := range []bool{false, true, true, false} {
			if err := h.setLimits(ctx, on); err != nil {
				return nil, err
			}
			h.maxClientHolds = 0
			if on {
				h.maxClientHolds = 1000
			}
			day++
			ev, _, err := h.newEvent(ctx, fmt.Sprintf("Limits %d %v", r, on), seats, 0, day, 1000)
			if err != nil {
				return nil, err
			}
			sessions, err := h.sessions(ctx)
			if err != nil {
				return nil, err
			}
			// A CPU profile per phase (server and harness are one process):
			// go tool pprof -top -diff_base <off> <on> shows what the limits add.
			prof, perr := os.Create(filepath.Join(o.OutDir, fmt.Sprintf("limits-%d-%d-%s.pprof", r+1, j+1, onOff(on))))
			profiling := perr == nil && pprof.StartCPUProfile(prof) == nil
			n, lat, el, errs, ferr := h.phase(seats, func(g, i int) (bool, error) {
				res, err := h.call(ctx, "POST", h.slug, "/api/v1/events/"+ev+"/holds", "", map[string]any{"seats": []string{seatID(i)}},
					"Idempotency-Key", uuid.NewString(), inventory.BuyerHeader, sessions[g][0], inventory.DeviceHeader, sessions[g][1])
				if err != nil {
					return false, err
				}
				if res.status != http.StatusCreated {
					return false, fmt.Errorf("hold: %d %s", res.status, res.body)
				}
				return true, nil
			})
			if profiling {
				pprof.StopCPUProfile()
			}
			if perr == nil {
				_ = prof.Close()
			}
			if n == 0 {
				return nil, fmt.Errorf("no hold succeeded (first error: %v)", ferr)
			}
			ph := LimitsPhase{Limits: on, Holds: n, PerS: float64(n) / el.Seconds(), P50Ms: percentile(lat, .5), P99Ms: percentile(lat, .99), Errors: errs}
			rep.Phases = append(rep.Phases, ph)
			fmt.Fprintf(out, "round %d limits %-3s: %6d holds in %.1fs = %7.0f holds/s, p50 %5.1f ms, p99 %6.1f ms, errors %d, loadavg %s\n",
				r+1, onOff(on), n, el.Seconds(), ph.PerS, ph.P50Ms, ph.P99Ms, errs, loadavg())
			k := 0
			if on {
				k = 1
			}
			sums[k].holds += n
			sums[k].secs += el.Seconds()
			sums[k].p99 = append(sums[k].p99, ph.P99Ms)
		}
	}
	rep.OffPerS, rep.OnPerS = float64(sums[0].holds)/sums[0].secs, float64(sums[1].holds)/sums[1].secs
	rep.Ratio = rep.OnPerS / rep.OffPerS
	rep.OffP99Ms, rep.OnP99Ms = mean(sums[0].p99), mean(sums[1].p99)
	rep.LoadAfter = loadavg()
	fmt.Fprintf(out, "holds/s with limits off %.0f, on %.0f: ratio on/off %.3f (goal >= 0.9); mean p99 off %.1f ms, on %.1f ms; loadavg before %s, after %s\n",
		rep.OffPerS, rep.OnPerS, rep.Ratio, rep.OffP99Ms, rep.OnP99Ms, rep.LoadBefore, rep.LoadAfter)
	return rep, nil
}

func (h *Harness) setLimits(ctx context.Context, on bool) error {
	return h.mustJSON(ctx, http.StatusOK, nil, "PUT", "/api/v1/limits", map[string]any{"enabled": on, "max_tickets_per_email": 8,
		"max_tickets_per_ip": 100000, "max_tickets_per_card": 10000, "max_tickets_per_device": 10000, "declines_to_challenge": 2,
		"declines_to_block": 3, "min_checkout_seconds": 4, "ip_holds_per_minute": 100000, "ip_orders_per_minute": 100000})
}

// sessions mints a buyer and a device per client, before the clock starts.
func (h *Harness) sessions(ctx context.Context) ([][2]string, error) {
	out := make([][2]string, h.o.Concurrency)
	for i := range out {
		res, err := h.call(ctx, "POST", h.slug, "/api/v1/buyer-sessions", "", nil)
		if err != nil || res.status != http.StatusCreated {
			return nil, fmt.Errorf("buyer session: %v %s", err, res.body)
		}
		var s inventory.BuyerSession
		if err := json.Unmarshal(res.body, &s); err != nil {
			return nil, err
		}
		out[i] = [2]string{s.BuyerToken, s.DeviceToken}
	}
	return out, nil
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
