// Package queue is the virtual waiting room of hot on-sales: buyers join in
// arrival order, an admitter lets them through at a set rate while keeping
// the number of active buyers under a cap, and only admitted buyers, holding
// a short-lived access token bound to them and to the event, may hold seats.
//
// The queue lives in Redis (a sorted set scored by an arrival sequence); the
// room's settings live in PostgreSQL. Redis is an accelerator here: if it
// fails, the room admits a configured fraction of arrivals at random — never
// everyone — and inventory stays correct because holds are decided in
// PostgreSQL whatever the room says.
package queue

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/modules/inventory"
	"marquee/tenants"
)

// Settings configure one event's room.
type Settings struct {
	EventID          uuid.UUID  `gorm:"column:event_id" json:"event_id"`
	Enabled          bool       `gorm:"column:enabled" json:"enabled"`
	OpensAt          *time.Time `gorm:"column:opens_at" json:"opens_at"`
	AdmitPerSecond   int        `gorm:"column:admit_per_second" json:"admit_per_second"`
	MaxActive        int        `gorm:"column:max_active" json:"max_active"`
	IdleTimeout      int        `gorm:"column:idle_timeout_seconds" json:"idle_timeout_seconds"`
	AccessTTL        int        `gorm:"column:access_ttl_seconds" json:"access_ttl_seconds"`
	FallbackFraction float64    `gorm:"column:fallback_fraction" json:"fallback_fraction"`
	// Adaptive: the room finds how many buyers the platform serves within
	// its objective, AdmitPerSecond and MaxActive being upper bounds (see
	// adaptive.go); off, it admits at exactly those.
	Adaptive bool `gorm:"column:adaptive" json:"adaptive"`
}

// DefaultSettings are those of a room that was never configured.
func DefaultSettings(event uuid.UUID) Settings {
	return Settings{EventID: event, AdmitPerSecond: 50, MaxActive: 2000, IdleTimeout: 300, AccessTTL: 900, FallbackFraction: 0.05, Adaptive: true}
}

// Open reports whether the room is in force at now.
func (s Settings) Open(now time.Time) bool {
	return s.Enabled && (s.OpensAt == nil || !now.Before(*s.OpensAt))
}

// Validate checks the bounds the database also enforces.
func (s Settings) Validate() error {
	switch {
	case s.AdmitPerSecond < 1 || s.AdmitPerSecond > 100000:
		return app.InvalidField("invalid_settings", "admit_per_second", "admit_per_second must be 1 to 100000")
	case s.MaxActive < 1 || s.MaxActive > 1000000:
		return app.InvalidField("invalid_settings", "max_active", "max_active must be 1 to 1000000")
	case s.IdleTimeout < 10 || s.IdleTimeout > 86400:
		return app.InvalidField("invalid_settings", "idle_timeout_seconds", "idle_timeout_seconds must be 10 to 86400")
	case s.AccessTTL < 30 || s.AccessTTL > 86400:
		return app.InvalidField("invalid_settings", "access_ttl_seconds", "access_ttl_seconds must be 30 to 86400")
	case math.IsNaN(s.FallbackFraction) || s.FallbackFraction < 0 || s.FallbackFraction >= 1:
		return app.InvalidField("invalid_settings", "fallback_fraction", "fallback_fraction must be at least 0 and below 1")
	}
	return nil
}

// Status of a buyer in the room.
type Status struct {
	State         string    `json:"status"` // queued, admitted, not_required
	QueueToken    string    `json:"queue_token,omitempty"`
	Position      int64     `json:"position,omitempty"` // 1 is next
	QueueLength   int64     `json:"queue_length"`
	EstimatedWait int64     `json:"estimated_wait_seconds"`
	PollAfter     int64     `json:"poll_after_seconds,omitempty"` // when to ask again: rarer far back in the queue
	AccessToken   string    `json:"access_token,omitempty"`
	ExpiresAt     time.Time `json:"expires_at,omitzero"`
	Degraded      bool      `json:"degraded,omitempty"`
	// Prices are the event's demand-priced tiers with the all-in range
	// they may move in, told on joining (the CMA's undertakings).
	Prices []inventory.PriceRange `json:"prices,omitempty"`
}

// Errors a buyer can meet.
var (
	ErrQueueRequired = app.Forbidden("queue_required",
		"this on-sale has a waiting room: join the queue and hold with the access token you get when admitted")
	ErrUnavailable   = app.Unavailable("queue_unavailable", 5*time.Second, "the waiting room is overloaded; try again shortly")
	ErrUnknownTicket = app.NotFoundCode("queue_expired", "this place in the queue is unknown or has lapsed; join again")
	ErrForeignTicket = app.Forbidden("queue_token_foreign", "this place in the queue belongs to another buyer")
)

// Room runs every waiting room of the deployment.
type Room struct {
	tx     func(ctx context.Context, t tenants.Tenant, fn func(tx *gorm.DB) error) error // the door: Core.Tx
	rdb    redis.UniversalClient
	prefix string // the deployment's Redis prefix
	key    []byte
	now    func() time.Time
	random func() float64

	mu       sync.Mutex
	settings map[string]cachedSettings

	waits    *notifier       // status requests waiting for admission on this instance
	draining <-chan struct{} // closed when the server begins to shut down
	meter    meter           // the buyers' steps measured here, for the adaptive rooms

	// Prices lists an event's demand-priced tiers (the inventory's), told
	// to buyers as they join; nil tells none.
	Prices func(ctx context.Context, t tenants.Tenant, event uuid.UUID) ([]inventory.PriceRange, error)
}

// QueueLength is how many buyers wait in the event's room (a demand signal
// for pricing); 0 when the room is off.
func (r *Room) QueueLength(ctx context.Context, t tenants.Tenant, event uuid.UUID) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, redisBudget)
	defer cancel()
	return r.rdb.ZCard(ctx, r.keys(t, event).queue).Result()
}

// withPrices adds the event's demand-price ranges to a joining buyer's
// status; failing to read them only leaves them out.
func (r *Room) withPrices(ctx context.Context, t tenants.Tenant, event uuid.UUID, s Status) Status {
	if r.Prices == nil {
		return s
	}
	if ps, err := r.Prices(ctx, t, event); err == nil && len(ps) > 0 {
		s.Prices = ps
	}
	return s
}

type cachedSettings struct {
	s       Settings
	fetched time.Time
}

// redisBudget bounds each buyer-facing Redis step, so a failing Redis turns
// into the degraded room quickly instead of hanging requests.
const redisBudget = 500 * time.Millisecond

// settingsTTL bounds how stale a server's view of a room's switch can be.
const settingsTTL = 2 * time.Second

// New builds the rooms over the core's tenant transactions and Redis.
func New(a *app.Core) *Room {
	m := hmac.New(sha256.New, []byte(a.Config.SecretKey))
	m.Write([]byte("marquee waiting room access v1"))
	return &Room{tx: a.Tx, rdb: a.Redis, prefix: a.RedisKey(""), key: m.Sum(nil), now: time.Now, random: rand.Float64, settings: map[string]cachedSettings{},
		waits: newNotifier(a.Redis), draining: a.Realtime.Draining(), meter: meter{rooms: map[keys]*window{}}}
}

// Redis keys of one room share a hash tag ("<deployment>:wr:{<tenant>:<event>}:…"),
// so the scripts and transactions that take several of them find them in
// one slot on a Redis Cluster. Rooms spread over the cluster's nodes.
type keys struct{ seq, queue, active, buyers, owners, state, cfg, signal, ctlLock, log string }

func (r *Room) keys(t tenants.Tenant, event uuid.UUID) keys {
	p := r.prefix + "wr:{" + t.Slug + ":" + event.String() + "}:"
	return keys{seq: p + "seq", queue: p + "queue", active: p + "active", buyers: p + "buyers", owners: p + "owners", state: p + "state", cfg: p + "cfg",
		signal: p + "signal", ctlLock: p + "ctl", log: p + "log"}
}

// roomsKey lists "tenant event" pairs whose rooms the admitter serves.
func (r *Room) roomsKey() string { return r.prefix + "wr:rooms" }

// Settings returns an event's room settings (cached briefly).
func (r *Room) Settings(ctx context.Context, t tenants.Tenant, event uuid.UUID) (Settings, error) {
	ck := t.Slug + "/" + event.String()
	r.mu.Lock()
	c, ok := r.settings[ck]
	r.mu.Unlock()
	if ok && time.Since(c.fetched) < settingsTTL {
		return c.s, nil
	}
	s := DefaultSettings(event)
	var rows []Settings
	err := r.tx(ctx, t, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT event_id, enabled, opens_at, admit_per_second, max_active, idle_timeout_seconds, access_ttl_seconds, fallback_fraction, adaptive
			FROM waiting_rooms WHERE event_id = ?`, event).Scan(&rows).Error
	})
	if err != nil {
		return s, err
	}
	if len(rows) == 1 {
		s = rows[0]
	}
	if s.Open(r.now()) {
		// Re-announce an open room to the admitter on each fresh read (not on
		// every join): this heals a Redis that lost its keys.
		pctx, cancel := context.WithTimeout(ctx, redisBudget)
		_ = r.publishSettings(pctx, t, s) // if Redis is down, joins degrade on their own
		cancel()
	}
	r.mu.Lock()
	r.settings[ck] = cachedSettings{s: s, fetched: time.Now()}
	r.mu.Unlock()
	return s, nil
}

// Configure stores an event's room settings and registers the room with the admitter.
func (r *Room) Configure(ctx context.Context, t tenants.Tenant, s Settings) error {
	if err := s.Validate(); err != nil {
		return err
	}
	err := r.tx(ctx, t, func(tx *gorm.DB) error {
		return tx.Exec(`INSERT INTO waiting_rooms (event_id, enabled, opens_at, admit_per_second, max_active, idle_timeout_seconds, access_ttl_seconds, fallback_fraction, adaptive, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, now())
			ON CONFLICT (event_id) DO UPDATE SET enabled = EXCLUDED.enabled, opens_at = EXCLUDED.opens_at,
			  admit_per_second = EXCLUDED.admit_per_second, max_active = EXCLUDED.max_active,
			  idle_timeout_seconds = EXCLUDED.idle_timeout_seconds, access_ttl_seconds = EXCLUDED.access_ttl_seconds,
			  fallback_fraction = EXCLUDED.fallback_fraction, adaptive = EXCLUDED.adaptive, updated_at = now()`,
			s.EventID, s.Enabled, s.OpensAt, s.AdmitPerSecond, s.MaxActive, s.IdleTimeout, s.AccessTTL, s.FallbackFraction, s.Adaptive).Error
	})
	if err != nil {
		return err
	}
	r.mu.Lock()
	delete(r.settings, t.Slug+"/"+s.EventID.String())
	r.mu.Unlock()
	return r.publishSettings(ctx, t, s)
}

// publishSettings copies what the admitter needs into Redis.
func (r *Room) publishSettings(ctx context.Context, t tenants.Tenant, s Settings) error {
	k := r.keys(t, s.EventID)
	pipe := r.rdb.TxPipeline()
	adaptive := 0
	if s.Adaptive {
		adaptive = 1
	}
	pipe.HSet(ctx, k.cfg, "rate", s.AdmitPerSecond, "max", s.MaxActive, "idle_ms", s.IdleTimeout*1000, "adaptive", adaptive)
	pipe.HSetNX(ctx, k.state, "last", r.now().UnixMilli()) // starts the admission clock
	if _, err := pipe.Exec(ctx); err != nil {
		return err
	}
	// The list of rooms is one key for the deployment, in another slot than
	// the room's keys, so it cannot join their transaction on a Redis
	// Cluster (CROSSSLOT). Registered after the settings, the admitter never
	// meets a room it has no settings for.
	return r.rdb.SAdd(ctx, r.roomsKey(), t.Slug+" "+s.EventID.String()).Err()
}

// joinScript puts a buyer in the queue once: a buyer who is already queued or
// admitted gets their existing place back. Arrival order is an atomic
// sequence, so two arrivals never tie.
var joinScript = redis.NewScript(`
local existing = redis.call('HGET', KEYS[4], ARGV[2])
if existing then
  local rank = redis.call('ZRANK', KEYS[2], existing)
  if rank then return {existing, rank + 1, redis.call('ZCARD', KEYS[2]), 0} end
  local until_ms = redis.call('ZSCORE', KEYS[3], existing)
  if until_ms and tonumber(until_ms) > tonumber(ARGV[3]) then return {existing, 0, redis.call('ZCARD', KEYS[2]), 1} end
end
local seq = redis.call('INCR', KEYS[1])
redis.call('ZADD', KEYS[2], seq, ARGV[1])
redis.call('HSET', KEYS[4], ARGV[2], ARGV[1])
redis.call('HSET', KEYS[5], ARGV[1], ARGV[2])
return {ARGV[1], redis.call('ZRANK', KEYS[2], ARGV[1]) + 1, redis.call('ZCARD', KEYS[2]), 0}
`)

// Join puts a buyer in an event's queue, or reports that no queue is needed.
func (r *Room) Join(ctx context.Context, t tenants.Tenant, event uuid.UUID, buyer string) (Status, error) {
	s, err := r.join(ctx, t, event, buyer)
	if err != nil {
		return s, err
	}
	return r.withPrices(ctx, t, event, s), nil
}

func (r *Room) join(ctx context.Context, t tenants.Tenant, event uuid.UUID, buyer string) (Status, error) {
	s, err := r.Settings(ctx, t, event)
	if err != nil {
		return Status{}, err
	}
	now := r.now()
	if !s.Open(now) {
		return Status{State: "not_required"}, nil
	}
	k := r.keys(t, event)
	ctx, cancel := context.WithTimeout(ctx, redisBudget)
	defer cancel()
	res, err := joinScript.Run(ctx, r.rdb, []string{k.seq, k.queue, k.active, k.buyers, k.owners},
		uuid.NewString(), buyer, now.UnixMilli()).Slice()
	if err != nil {
		return r.degradedJoin(t, event, buyer, s, now)
	}
	id, _ := res[0].(string)
	position, _ := res[1].(int64)
	length, _ := res[2].(int64)
	if admitted, _ := res[3].(int64); admitted == 1 {
		return r.admittedStatus(t, event, buyer, id, s, now, false), nil
	}
	return queued(id, position, length, s, -1), nil
}

// degradedJoin is the room without Redis: a configured fraction of arrivals
// is admitted at random with a self-contained token, the rest are asked to
// come back. It never lets everyone in.
func (r *Room) degradedJoin(t tenants.Tenant, event uuid.UUID, buyer string, s Settings, now time.Time) (Status, error) {
	if r.random() >= s.FallbackFraction {
		return Status{}, ErrUnavailable
	}
	return r.admittedStatus(t, event, buyer, "degraded-"+uuid.NewString(), s, now, true), nil
}

// eta estimates a wait from the admission rate achieved lately (observed,
// when the admitter has measured one) or else the configured rate.
func eta(position int64, s Settings, observed float64) int64 {
	rate := float64(s.AdmitPerSecond)
	if observed > 0 {
		rate = min(rate, observed)
	} else if observed == 0 {
		rate = min(rate, 1) // nobody got in lately: the room is full
	}
	return int64(math.Ceil(float64(position) / rate))
}

// pollBudget is about how many status checks a second one room's waiting
// buyers make in all, away from its front: the longest interval grows with
// the queue (a crowd of 50,000 polling every 15 s cost more than the sale's
// every other request together).
const pollBudget = 1000

// pollAfter spaces out status checks by distance from the front: a third of
// the estimated wait, which brings a buyer back a few times as the front
// nears, at least every 15 s in a small queue and every minute in a huge one,
// and never later than half the idle timeout, so a buyer let in between two
// polls still finds the slot kept. The front of the queue (those a full
// room's next departures, or the next two seconds at full rate, would let in)
// asks every second whatever the estimate: a buyer let in who does not know
// it yet holds a slot nobody shops with, and a full room stalls on them. The
// cost of a longer interval is the same: an estimate that proves too long
// leaves a slot unused until its buyer looks.
func pollAfter(position, length, wait int64, s Settings) int64 {
	if position <= int64(min(s.MaxActive, 2*s.AdmitPerSecond)) {
		return 1
	}
	longest := min(max(length/pollBudget, 15), 60, max(int64(s.IdleTimeout)/2, 1))
	return min(max(wait/3, 1), longest)
}

func queued(ticket string, position, length int64, s Settings, observed float64) Status {
	wait := eta(position, s, observed)
	return Status{State: "queued", QueueToken: ticket, Position: position, QueueLength: length, EstimatedWait: wait,
		PollAfter: pollAfter(position, length, wait, s)}
}

// StatusOf reports where a queue ticket stands, for the buyer who holds it.
func (r *Room) StatusOf(ctx context.Context, t tenants.Tenant, event uuid.UUID, buyer, ticket string) (Status, error) {
	s, err := r.Settings(ctx, t, event)
	if err != nil {
		return Status{}, err
	}
	now := r.now()
	if !s.Open(now) {
		return Status{State: "not_required"}, nil
	}
	if _, err := uuid.Parse(ticket); err != nil {
		return Status{}, ErrUnknownTicket
	}
	k := r.keys(t, event)
	ctx, cancel := context.WithTimeout(ctx, redisBudget)
	defer cancel()
	pipe := r.rdb.Pipeline()
	owner := pipe.HGet(ctx, k.owners, ticket)
	rank := pipe.ZRank(ctx, k.queue, ticket)
	length := pipe.ZCard(ctx, k.queue)
	until := pipe.ZScore(ctx, k.active, ticket)
	observed := pipe.HGet(ctx, k.state, "ewma")
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return Status{}, ErrUnavailable
	}
	switch {
	case owner.Err() != nil:
		return Status{}, ErrUnknownTicket
	case owner.Val() != buyer:
		return Status{}, ErrForeignTicket
	case rank.Err() == nil:
		rate, err := observed.Float64()
		if err != nil {
			rate = -1 // not measured yet
		}
		return queued(ticket, rank.Val()+1, length.Val(), s, rate), nil
	case until.Err() == nil && int64(until.Val()) > now.UnixMilli():
		return r.admittedStatus(t, event, buyer, ticket, s, now, false), nil
	}
	return Status{}, ErrUnknownTicket
}

// StatusWait is StatusOf that, for a queued buyer, waits up to wait for
// their admission and answers the moment it happens (on any instance's
// admitter), else at the deadline with the place read again. A server too
// busy to keep more waiters, or a Redis that cannot subscribe, answers at
// once: the buyer then polls as before.
func (r *Room) StatusWait(ctx context.Context, t tenants.Tenant, event uuid.UUID, buyer, ticket string, wait time.Duration) (Status, error) {
	st, err := r.StatusOf(ctx, t, event, buyer, ticket)
	if err != nil || wait <= 0 || st.State != "queued" {
		return st, err
	}
	wctx, cancel := context.WithTimeout(ctx, min(wait, MaxWait))
	defer cancel()
	w, done, err := r.waits.wait(wctx, r.keys(t, event).admittedChannel(), ticket)
	if err != nil {
		return st, nil
	}
	defer done()
	// Admitted between the first read and the subscription: nothing more
	// will be published for this ticket.
	if st, err = r.StatusOf(ctx, t, event, buyer, ticket); err != nil || st.State != "queued" {
		return st, err
	}
	select {
	case <-w.admitted:
	case <-wctx.Done():
	case <-r.draining:
	}
	if ctx.Err() != nil {
		return Status{}, ctx.Err()
	}
	return r.StatusOf(ctx, t, event, buyer, ticket)
}

// claims are the contents of an access token.
type claims struct {
	Tenant   string `json:"t"`
	Event    string `json:"e"`
	Buyer    string `json:"b"`
	Ticket   string `json:"q"`
	Expires  int64  `json:"x"`
	Degraded bool   `json:"d,omitempty"`
}

func (r *Room) admittedStatus(t tenants.Tenant, event uuid.UUID, buyer, ticket string, s Settings, now time.Time, degraded bool) Status {
	exp := now.Add(time.Duration(s.AccessTTL) * time.Second).UTC().Truncate(time.Second)
	return Status{State: "admitted", QueueToken: ticket, AccessToken: r.sign(claims{Tenant: t.Slug, Event: event.String(), Buyer: buyer,
		Ticket: ticket, Expires: exp.Unix(), Degraded: degraded}), ExpiresAt: exp, Degraded: degraded}
}

func (r *Room) sign(c claims) string {
	payload, _ := json.Marshal(c)
	m := hmac.New(sha256.New, r.key)
	m.Write(payload)
	return base64.RawURLEncoding.EncodeToString(payload) + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (r *Room) verify(token string) (claims, bool) {
	p, s, ok := strings.Cut(token, ".")
	if !ok || len(token) > 1024 {
		return claims{}, false
	}
	// Strict: a token altered in the unused bits of its last character is
	// refused, not decoded to the same bytes.
	payload, err1 := base64.RawURLEncoding.Strict().DecodeString(p)
	sig, err2 := base64.RawURLEncoding.Strict().DecodeString(s)
	if err1 != nil || err2 != nil {
		return claims{}, false
	}
	m := hmac.New(sha256.New, r.key)
	m.Write(payload)
	if !hmac.Equal(sig, m.Sum(nil)) {
		return claims{}, false
	}
	var c claims
	if json.Unmarshal(payload, &c) != nil {
		return claims{}, false
	}
	return c, true
}

// Check lets a hold through when the event has no open room, or when the
// buyer presents a valid access token for this tenant, event and buyer whose
// slot is still active. Each successful check keeps the slot alive.
func (r *Room) Check(ctx context.Context, t tenants.Tenant, event uuid.UUID, buyer, token string) error {
	s, err := r.Settings(ctx, t, event)
	if err != nil {
		return err
	}
	now := r.now()
	if !s.Open(now) {
		return nil
	}
	c, ok := r.verify(token)
	if !ok || c.Tenant != t.Slug || c.Event != event.String() || c.Buyer != buyer || now.Unix() >= c.Expires {
		return ErrQueueRequired
	}
	if c.Degraded {
		return nil // admitted by the no-Redis lottery; nothing to look up
	}
	k := r.keys(t, event)
	ctx, cancel := context.WithTimeout(ctx, redisBudget)
	defer cancel()
	// Extend the slot only if it is still held (XX + GT keep a lapsed slot lapsed).
	until, err := r.rdb.ZScore(ctx, k.active, c.Ticket).Result()
	switch {
	case errors.Is(err, redis.Nil):
		return ErrQueueRequired
	case err != nil:
		return nil // Redis down: the signed token is proof enough of admission
	case int64(until) <= now.UnixMilli():
		return ErrQueueRequired
	}
	r.rdb.ZAddArgs(ctx, k.active, redis.ZAddArgs{XX: true, GT: true, Members: []redis.Z{{Score: float64(now.Add(time.Duration(s.IdleTimeout) * time.Second).UnixMilli()), Member: c.Ticket}}})
	return nil
}

// Leave frees a buyer's active slot (after checkout), so the next can enter.
func (r *Room) Leave(ctx context.Context, t tenants.Tenant, event uuid.UUID, token string) error {
	c, ok := r.verify(token)
	if !ok || c.Tenant != t.Slug || c.Event != event.String() || c.Degraded {
		return nil
	}
	k := r.keys(t, event)
	n, err := r.rdb.ZRem(ctx, k.active, c.Ticket).Result()
	if err == nil && n > 0 {
		r.admitNow(ctx, k)
	}
	return err
}

// leaveBuyerScript frees the active slot of a buyer's place, found by the
// buyer (the server knows who paid, not their access token). A place still
// queued is left alone: the buyer may not be done with this event.
var leaveBuyerScript = redis.NewScript(`
local ticket = redis.call('HGET', KEYS[1], ARGV[1])
if not ticket then return 0 end
return redis.call('ZREM', KEYS[2], ticket)
`)

// LeaveBuyer frees a buyer's active slot once they are done (their order
// paid, their last hold released), so the next buyer gets in now instead
// of after the idle timeout. It implements inventory.AdmissionLeaver.
func (r *Room) LeaveBuyer(ctx context.Context, t tenants.Tenant, event uuid.UUID, buyer string) error {
	k := r.keys(t, event)
	ctx, cancel := context.WithTimeout(ctx, redisBudget)
	defer cancel()
	n, err := leaveBuyerScript.Run(ctx, r.rdb, []string{k.buyers, k.active}, buyer).Int()
	if err == nil && n > 0 {
		r.admitNow(ctx, k)
	}
	return err
}

// admitNow runs the room's admission step right after a slot was freed, so
// the next buyer gets in now rather than at the admitter's next tick (the
// step keeps the rate and the cap whoever runs it). An error is left to the
// admitter's next tick.
func (r *Room) admitNow(ctx context.Context, k keys) {
	_, _ = r.admitRoom(ctx, k, r.now().UnixMilli())
}

func (r *Room) admitRoom(ctx context.Context, k keys, now int64) (int, error) {
	return admitScript.Run(ctx, r.rdb, []string{k.queue, k.active, k.state, k.cfg, k.log}, now, k.admittedChannel()).Int()
}

// admitScript lets buyers through for one room: lapsed slots are dropped,
// then up to rate × elapsed (capped at one second's worth, and at the free
// active slots) of the earliest arrivals move from the queue to active. The
// rate is accounted in Redis, so any number of admitters can run at once.
var admitScript = redis.NewScript(`
local now = tonumber(ARGV[1])
local rate = tonumber(redis.call('HGET', KEYS[4], 'rate') or '0')
local maxa = tonumber(redis.call('HGET', KEYS[4], 'max') or '0')
local idle = tonumber(redis.call('HGET', KEYS[4], 'idle_ms') or '0')
if rate <= 0 then return -1 end
-- An adaptive room admits at its controller's rate and cap, never above
-- the configured ones.
if redis.call('HGET', KEYS[4], 'adaptive') == '1' then
  local ar = tonumber(redis.call('HGET', KEYS[4], 'arate') or rate)
  local am = tonumber(redis.call('HGET', KEYS[4], 'amax') or maxa)
  if ar < rate then rate = ar end
  if am < maxa then maxa = am end
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local last = tonumber(redis.call('HGET', KEYS[3], 'last') or ARGV[1])
local carry = tonumber(redis.call('HGET', KEYS[3], 'carry') or '0')
local allowance = carry + (now - last) * rate / 1000
if allowance > rate then allowance = rate end
local free = maxa - redis.call('ZCARD', KEYS[2])
local n = math.floor(math.min(allowance, free))
local admitted = 0
if n > 0 then
  local popped = redis.call('ZPOPMIN', KEYS[1], n)
  local tickets = {}
  for i = 1, #popped, 2 do
    redis.call('ZADD', KEYS[2], now + idle, popped[i])
    admitted = admitted + 1
    tickets[admitted] = popped[i]
  end
  -- Tell whoever waits on these tickets, on any instance, that they are in.
  if admitted > 0 then
    redis.call('PUBLISH', ARGV[2], table.concat(tickets, ','))
    redis.call('HINCRBY', KEYS[3], 'admitted', admitted)
    -- The admission log, in admission order: fairness can be checked
    -- against arrival order after the sale (kept two days).
    redis.call('RPUSH', KEYS[5], unpack(tickets))
    redis.call('PEXPIRE', KEYS[5], 172800000)
  end
end
-- The admission rate actually achieved (the cap may bind before the rate),
-- averaged over about ten seconds, for buyers' estimated waits. A shorter
-- memory reads a full room's pause of a second or two as "nobody gets in"
-- and sends the whole queue, its front too, away for long.
local dt = (now - last) / 1000
if dt > 0 then
  local ewma = tonumber(redis.call('HGET', KEYS[3], 'ewma') or '-1')
  local observed = admitted / dt
  if ewma < 0 then ewma = observed else ewma = ewma + (1 - math.exp(-dt / 10)) * (observed - ewma) end
  redis.call('HSET', KEYS[3], 'ewma', ewma)
end
redis.call('HSET', KEYS[3], 'last', now, 'carry', allowance - admitted)
return admitted
`)

// AdmitOnce runs one admission step for every registered room and returns
// how many buyers it let through.
func (r *Room) AdmitOnce(ctx context.Context) (int, error) {
	rooms, err := r.rdb.SMembers(ctx, r.roomsKey()).Result()
	if err != nil {
		return 0, err
	}
	total := 0
	now := r.now().UnixMilli()
	for _, room := range rooms {
		slug, ev, ok := strings.Cut(room, " ")
		event, err := uuid.Parse(ev)
		if !ok || err != nil {
			continue
		}
		k := r.keys(tenants.Tenant{Slug: slug}, event)
		if err := r.stepControl(ctx, k, r.now()); err != nil {
			return total, fmt.Errorf("control %s: %w", room, err)
		}
		n, err := r.admitRoom(ctx, k, now)
		if err != nil {
			return total, fmt.Errorf("admit %s: %w", room, err)
		}
		if n > 0 {
			total += n
		}
	}
	return total, nil
}

// RunAdmitter admits every interval until ctx ends.
func (r *Room) RunAdmitter(ctx context.Context, interval time.Duration) error {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			if _, err := r.AdmitOnce(ctx); err != nil && ctx.Err() == nil {
				return err
			}
		}
	}
}

// AdmissionOrder returns the queue tickets a room admitted, in the order it
// admitted them (the log the admission script keeps for two days), from
// position from on, at most limit: the record against which a sale's
// fairness (admission in arrival order) is checked.
func AdmissionOrder(ctx context.Context, rdb redis.UniversalClient, prefix string, t tenants.Tenant, event uuid.UUID, from, limit int64) ([]string, error) {
	r := Room{prefix: prefix}
	return rdb.LRange(ctx, r.keys(t, event).log, from, from+limit-1).Result()
}
