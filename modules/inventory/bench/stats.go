package bench

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Recorder collects latencies of named steps and when they happened.
type Recorder struct {
	start time.Time
	mu    sync.Mutex
	steps map[string]*series
}

type series struct {
	lat    []time.Duration
	at     []time.Duration // since start
	errors map[string]int
}

// NewRecorder starts the clock.
func NewRecorder() *Recorder { return &Recorder{start: time.Now(), steps: map[string]*series{}} }

func (r *Recorder) get(step string) *series {
	s, ok := r.steps[step]
	if !ok {
		s = &series{errors: map[string]int{}}
		r.steps[step] = s
	}
	return s
}

// Observe records one successful step that began at began.
func (r *Recorder) Observe(step string, began time.Time) {
	d := time.Since(began)
	r.mu.Lock()
	s := r.get(step)
	s.lat = append(s.lat, d)
	s.at = append(s.at, began.Sub(r.start))
	r.mu.Unlock()
}

// Fail records an unsuccessful step by outcome (e.g. "409", "503").
func (r *Recorder) Fail(step, outcome string) {
	r.mu.Lock()
	r.get(step).errors[outcome]++
	r.mu.Unlock()
}

// Count returns the successes of a step.
func (r *Recorder) Count(step string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s, ok := r.steps[step]; ok {
		return len(s.lat)
	}
	return 0
}

// StepStats summarises one step.
type StepStats struct {
	Step      string         `json:"step"`
	Count     int            `json:"count"`
	PerSecond float64        `json:"per_second"`
	P50ms     float64        `json:"p50_ms"`
	P95ms     float64        `json:"p95_ms"`
	P99ms     float64        `json:"p99_ms"`
	MaxMs     float64        `json:"max_ms"`
	Failures  map[string]int `json:"failures,omitempty"`
}

func percentile(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	i = min(max(i, 0), len(sorted)-1)
	return float64(sorted[i]) / float64(time.Millisecond)
}

// Summary returns the stats of every step over the elapsed wall time.
func (r *Recorder) Summary(elapsed time.Duration) []StepStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []StepStats
	for name, s := range r.steps {
		sorted := slices.Clone(s.lat)
		slices.Sort(sorted)
		st := StepStats{Step: name, Count: len(sorted), PerSecond: float64(len(sorted)) / elapsed.Seconds(),
			P50ms: percentile(sorted, .50), P95ms: percentile(sorted, .95), P99ms: percentile(sorted, .99), Failures: s.errors}
		if len(sorted) > 0 {
			st.MaxMs = float64(sorted[len(sorted)-1]) / float64(time.Millisecond)
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return stepOrder(out[i].Step) < stepOrder(out[j].Step) })
	return out
}

var order = []string{"join", "wait", "admitted", "hold", "order", "pay", "other-tenant"}

func stepOrder(s string) int {
	if i := slices.Index(order, s); i >= 0 {
		return i
	}
	return len(order)
}

// Buckets returns per-second p50 and p99 of a step, for the chart.
func (r *Recorder) Buckets(step string, width time.Duration) (p50, p99 []float64) {
	r.mu.Lock()
	s, ok := r.steps[step]
	if !ok {
		r.mu.Unlock()
		return nil, nil
	}
	at, lat := slices.Clone(s.at), slices.Clone(s.lat)
	r.mu.Unlock()
	var buckets [][]time.Duration
	for i, a := range at {
		b := int(a / width)
		for len(buckets) <= b {
			buckets = append(buckets, nil)
		}
		buckets[b] = append(buckets[b], lat[i])
	}
	for _, b := range buckets {
		slices.Sort(b)
		p50, p99 = append(p50, percentile(b, .5)), append(p99, percentile(b, .99))
	}
	return p50, p99
}

// FormatTable renders the step stats as an aligned text table.
func FormatTable(stats []StepStats) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-14s %9s %10s %9s %9s %9s %9s  %s\n", "step", "count", "per sec", "p50 ms", "p95 ms", "p99 ms", "max ms", "failures")
	for _, s := range stats {
		var fails []string
		for k, v := range s.Failures {
			fails = append(fails, fmt.Sprintf("%s×%d", k, v))
		}
		slices.Sort(fails)
		fmt.Fprintf(&b, "%-14s %9d %10.1f %9.1f %9.1f %9.1f %9.1f  %s\n", s.Step, s.Count, s.PerSecond, s.P50ms, s.P95ms, s.P99ms, s.MaxMs, strings.Join(fails, " "))
	}
	return b.String()
}
