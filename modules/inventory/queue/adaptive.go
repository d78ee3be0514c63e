package queue

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"marquee/tenants"
)

// Adaptive admission: a chain configures the most it wants (admit_per_second,
// max_active) and the room finds how much of that the platform serves within
// its objective. Every server instance counts the holds, orders and payments
// of each room's event (how many, how many slower than the objective, how
// many the platform failed) and adds them to the room's window in Redis; once
// a second one admitter (any instance) reads and clears the window and steps
// the controller below, whose rate and cap the admission script then uses,
// never above the configured ones.
//
// The controller is AIMD, as TCP's congestion window: while buyers wait and
// the room's slots are used, it grows (doubling each second until the first
// sign of trouble, then by a twentieth of the ceiling a second); when more
// than SlowShare of the window's requests were slower than Objective, or more
// than ErrorShare failed, it cuts rate and cap by Backoff. Additive growth and
// multiplicative cuts converge on a fair, stable level below where latency
// breaks, and back off fast when something else (another chain's sale, a
// slow disk) takes the platform's capacity.

// Objective is the latency a buying step should stay under (for 95% of them).
const Objective = 250 * time.Millisecond

// Controller thresholds.
const (
	SlowShare  = 0.05 // above it the window's p95 missed the objective
	ErrorShare = 0.01 // failed (shed, overloaded) requests tolerated
	Backoff    = 0.7  // the cut when either is exceeded
	minSamples = 10   // fewer requests than this in a window say nothing about latency
)

// Signals are what one window measured of a room's buyers.
type Signals struct {
	Requests  int64         `json:"requests"`  // holds, orders and payments that ended in the window
	Slow      int64         `json:"slow"`      // of which slower than the objective
	Failed    int64         `json:"failed"`    // of which the platform failed (shed, overloaded, errors)
	MeanMs    float64       `json:"mean_ms"`   // their mean latency
	Queued    int64         `json:"queued"`    // buyers waiting when the window closed
	Active    int64         `json:"active"`    // slots in use when the window closed
	Admitted  int64         `json:"admitted"`  // buyers let in during the window
	Window    time.Duration `json:"window_ns"` // the window's length
	latencyMs int64
}

// Control is the controller's state: what the room admits now.
type Control struct {
	Rate       float64   `json:"rate"`         // admissions per second now (≤ the configured admit_per_second)
	Cap        float64   `json:"cap"`          // active buyers at most now (≤ the configured max_active)
	SlowStart  bool      `json:"slow_start"`   // still doubling: no sign of trouble yet
	Decision   string    `json:"decision"`     // increase, decrease or hold, with why
	Signals    Signals   `json:"signals"`      // what the last step saw
	Decreases  int64     `json:"decreases"`    // cuts so far
	Increases  int64     `json:"increases"`    // raises so far
	UpdatedAt  time.Time `json:"updated_at"`   // the last step
	CeilRate   int       `json:"ceiling_rate"` // the configured bounds
	CeilActive int       `json:"ceiling_active"`
}

// floor is the least the controller goes to: a twentieth of the ceiling,
// at least one.
func floor(ceiling int) float64 { return math.Max(1, float64(ceiling)/20) }

// Initial is where a room starts: a quarter of the ceilings, in slow start.
func Initial(ceilRate, ceilActive int) Control {
	return Control{Rate: math.Max(floor(ceilRate), float64(ceilRate)/4), Cap: math.Max(floor(ceilActive), float64(ceilActive)/4),
		SlowStart: true, Decision: "start", CeilRate: ceilRate, CeilActive: ceilActive}
}

// Step is one control decision on a window's signals, bounded by the
// configured ceilings (which may have changed since the last step). It is
// pure: tests drive it with synthetic signals.
func (c Control) Step(s Signals, ceilRate, ceilActive int, now time.Time) Control {
	n := c
	n.Signals, n.UpdatedAt, n.CeilRate, n.CeilActive = s, now, ceilRate, ceilActive
	overloaded := s.Requests >= minSamples && float64(s.Slow) > SlowShare*float64(s.Requests)
	failing := s.Requests > 0 && float64(s.Failed) > ErrorShare*float64(max(s.Requests, minSamples))
	// Growth is earned only by a room that uses what it has: buyers wait
	// and the slots are mostly in use (or the rate was all used).
	wanted := s.Queued > 0 && (float64(s.Active) >= 0.8*c.Cap || float64(s.Admitted) >= 0.8*c.Rate*s.Window.Seconds())
	switch {
	case failing || overloaded:
		n.Rate, n.Cap = c.Rate*Backoff, c.Cap*Backoff
		n.SlowStart = false
		n.Decreases++
		if failing {
			n.Decision = "decrease: requests failed"
		} else {
			n.Decision = "decrease: latency over the objective"
		}
	case wanted && c.SlowStart:
		n.Rate, n.Cap = c.Rate*2, c.Cap*2
		n.Increases++
		n.Decision = "increase: slow start"
	case wanted:
		n.Rate, n.Cap = c.Rate+math.Max(1, float64(ceilRate)/20), c.Cap+math.Max(1, float64(ceilActive)/20)
		n.Increases++
		n.Decision = "increase"
	default:
		n.Decision = "hold: no demand beyond what is admitted"
	}
	n.Rate = math.Min(math.Max(n.Rate, floor(ceilRate)), float64(ceilRate))
	n.Cap = math.Min(math.Max(n.Cap, floor(ceilActive)), float64(ceilActive))
	if n.Rate == float64(ceilRate) && n.Cap == float64(ceilActive) {
		n.SlowStart = false // at the ceiling: from here on growth is additive
	}
	return n
}

// ---- measuring, on every server instance

type window struct {
	requests, slow, failed, latencyMs int64
}

// meter gathers each room's observations on this instance and adds them to
// Redis at most every flushEvery, off the request's path.
type meter struct {
	mu       sync.Mutex
	rooms    map[keys]*window
	flushing bool
	last     time.Time
}

const flushEvery = 200 * time.Millisecond

// ObserveStep implements inventory.AdmissionMeter: one of an event's
// buying steps ended. Only rooms that are open are measured.
func (r *Room) ObserveStep(t tenants.Tenant, event uuid.UUID, step string, took time.Duration, failed bool) {
	r.mu.Lock()
	c, ok := r.settings[t.Slug+"/"+event.String()]
	r.mu.Unlock()
	if !ok || !c.s.Adaptive || !c.s.Open(r.now()) {
		return // no adaptive room in force (or not read lately on this instance): nothing to adapt
	}
	k := r.keys(t, event)
	m := &r.meter
	m.mu.Lock()
	w := m.rooms[k]
	if w == nil {
		w = &window{}
		m.rooms[k] = w
	}
	w.requests++
	w.latencyMs += took.Milliseconds()
	if took > Objective {
		w.slow++
	}
	if failed {
		w.failed++
	}
	flush := !m.flushing && time.Since(m.last) >= flushEvery
	var batch map[keys]*window
	if flush {
		batch, m.rooms, m.flushing, m.last = m.rooms, map[keys]*window{}, true, time.Now()
	}
	m.mu.Unlock()
	if flush {
		go r.flush(batch)
	}
}

// flushPending adds what this instance measured and has not sent yet, now
// (tests; the meter flushes by itself as requests end).
func (r *Room) flushPending() {
	m := &r.meter
	m.mu.Lock()
	if m.flushing {
		m.mu.Unlock()
		return
	}
	batch := m.rooms
	m.rooms, m.flushing, m.last = map[keys]*window{}, true, time.Now()
	m.mu.Unlock()
	r.flush(batch)
}

func (r *Room) flush(batch map[keys]*window) {
	defer func() {
		r.meter.mu.Lock()
		r.meter.flushing = false
		r.meter.mu.Unlock()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), redisBudget)
	defer cancel()
	pipe := r.rdb.Pipeline()
	for k, w := range batch {
		pipe.HIncrBy(ctx, k.signal, "requests", w.requests)
		pipe.HIncrBy(ctx, k.signal, "slow", w.slow)
		pipe.HIncrBy(ctx, k.signal, "failed", w.failed)
		pipe.HIncrBy(ctx, k.signal, "latency_ms", w.latencyMs)
		pipe.Expire(ctx, k.signal, time.Minute)
	}
	_, _ = pipe.Exec(ctx) // lost counts only make one window look quieter
}

// ---- controlling, in the admitter

// controlEvery is the controller's window.
const controlEvery = time.Second

// controlScript takes a room's window (clearing it) with the room's state,
// if this admitter is the one whose turn it is (a lock of just under a
// window, so one step a second however many admitters run).
var controlScript = redis.NewScript(`
if redis.call('HGET', KEYS[6], 'adaptive') ~= '1' then return false end
if not redis.call('SET', KEYS[5], '1', 'NX', 'PX', ARGV[1]) then return false end
local sig = redis.call('HGETALL', KEYS[1])
redis.call('DEL', KEYS[1])
local now = tonumber(ARGV[2])
return {sig, redis.call('HGET', KEYS[2], 'control') or '', redis.call('ZCARD', KEYS[3]),
  redis.call('ZCOUNT', KEYS[4], now, '+inf'), redis.call('HGET', KEYS[2], 'admitted') or '0',
  redis.call('HGET', KEYS[6], 'rate') or '0', redis.call('HGET', KEYS[6], 'max') or '0'}
`)

// stepControl runs one controller step for a room, if it is this admitter's
// turn, and stores the result where the admission script reads it.
func (r *Room) stepControl(ctx context.Context, k keys, now time.Time) error {
	res, err := controlScript.Run(ctx, r.rdb, []string{k.signal, k.state, k.queue, k.active, k.ctlLock, k.cfg},
		int64(controlEvery/time.Millisecond)-50, now.UnixMilli()).Slice()
	if errors.Is(err, redis.Nil) {
		return nil // another admitter's turn
	}
	if err != nil {
		return err
	}
	var s Signals
	if pairs, ok := res[0].([]any); ok {
		for i := 0; i+1 < len(pairs); i += 2 {
			name, _ := pairs[i].(string)
			v, _ := strconv.ParseInt(pairs[i+1].(string), 10, 64)
			switch name {
			case "requests":
				s.Requests = v
			case "slow":
				s.Slow = v
			case "failed":
				s.Failed = v
			case "latency_ms":
				s.latencyMs = v
			}
		}
	}
	if s.Requests > 0 {
		s.MeanMs = float64(s.latencyMs) / float64(s.Requests)
	}
	s.Queued, _ = res[2].(int64)
	s.Active, _ = res[3].(int64)
	admittedTotal, _ := strconv.ParseInt(str(res[4]), 10, 64)
	ceilRate, _ := strconv.Atoi(str(res[5]))
	ceilActive, _ := strconv.Atoi(str(res[6]))
	if ceilRate <= 0 || ceilActive <= 0 {
		return nil // not configured (yet)
	}
	var c Control
	prev, admittedBefore := decodeControl(str(res[1]))
	if prev == nil {
		c = Initial(ceilRate, ceilActive)
		c.UpdatedAt = now
	} else {
		s.Window = now.Sub(prev.UpdatedAt)
		s.Admitted = admittedTotal - admittedBefore
		c = prev.Step(s, ceilRate, ceilActive, now)
	}
	raw, err := encodeControl(c, admittedTotal)
	if err != nil {
		return err
	}
	pipe := r.rdb.TxPipeline()
	pipe.HSet(ctx, k.state, "control", raw)
	pipe.HSet(ctx, k.cfg, "arate", strconv.FormatFloat(c.Rate, 'f', 3, 64), "amax", int64(math.Floor(c.Cap)))
	_, err = pipe.Exec(ctx)
	return err
}

// Decisions is the decision's kind: increase, decrease, hold or start.
func (c Control) Decisions() string {
	kind, _, _ := strings.Cut(c.Decision, ":")
	return kind
}

func str(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case int64:
		return strconv.FormatInt(x, 10)
	}
	return ""
}

type storedControl struct {
	Control
	AdmittedTotal int64 `json:"admitted_total"`
}

func encodeControl(c Control, admittedTotal int64) (string, error) {
	raw, err := json.Marshal(storedControl{c, admittedTotal})
	return string(raw), err
}

func decodeControl(raw string) (*Control, int64) {
	if raw == "" {
		return nil, 0
	}
	var s storedControl
	if json.Unmarshal([]byte(raw), &s) != nil {
		return nil, 0
	}
	return &s.Control, s.AdmittedTotal
}

// State reports a room as it runs now.
func (r *Room) State(ctx context.Context, t tenants.Tenant, event uuid.UUID) (RoomState, error) {
	s, err := r.Settings(ctx, t, event)
	if err != nil {
		return RoomState{}, err
	}
	st := RoomState{Settings: s, Waiting: r.Waiting()}
	k := r.keys(t, event)
	rctx, cancel := context.WithTimeout(ctx, redisBudget)
	defer cancel()
	pipe := r.rdb.Pipeline()
	queued := pipe.ZCard(rctx, k.queue)
	active := pipe.ZCount(rctx, k.active, strconv.FormatInt(r.now().UnixMilli(), 10), "+inf")
	control := pipe.HGet(rctx, k.state, "control")
	if _, err := pipe.Exec(rctx); err != nil && !errors.Is(err, redis.Nil) {
		return RoomState{}, ErrUnavailable
	}
	st.Queued, st.Active = queued.Val(), active.Val()
	if s.Adaptive {
		st.Control, _ = decodeControl(control.Val())
	}
	return st, nil
}
