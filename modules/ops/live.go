package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"marquee/tenants"
)

// The live stream of an event's dashboard. Every change is published once
// to Redis by a script that numbers it (INCR), keeps it in a short history
// (a sorted set by number) and PUBLISHes it, atomically, so numbers reach
// subscribers in order. Each server instance holds ONE subscription per
// event with viewers on it and fans messages out to its viewers in memory:
// 500 viewers over two instances cost two Redis subscriptions, not 500. A
// viewer that reconnects names the last number it saw (Last-Event-ID) and
// gets the history after it before live messages, so it misses nothing; a
// viewer too slow to keep its buffer drained is dropped (and reconnects the
// same way) instead of holding up the others.

// historyLen is how many messages an event's history keeps: at 20 changes a
// second, almost a minute of reconnection.
const historyLen = 1000

// viewerBuffer is how many messages a viewer may fall behind before it is dropped.
const viewerBuffer = 256

// liveTTL bounds the life of an event's sequence and history after its last change.
const liveTTL = 48 * time.Hour

// publishScript numbers, keeps and publishes one message.
// KEYS: sequence, history, channel. ARGV: type, data (JSON), history length, ttl seconds.
var publishScript = redis.NewScript(`
local seq = redis.call('INCR', KEYS[1])
local msg = '{"seq":' .. seq .. ',"type":"' .. ARGV[1] .. '","data":' .. ARGV[2] .. '}'
redis.call('ZADD', KEYS[2], seq, msg)
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -(tonumber(ARGV[3]) + 1))
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('EXPIRE', KEYS[2], ARGV[4])
redis.call('PUBLISH', KEYS[3], msg)
return seq
`)

// Message is one numbered change of a dashboard, as the stream sends it.
type Message struct {
	Seq  int64           `json:"seq"`
	Type string          `json:"type"`
	Data json.RawMessage `json:"data"`

	// raw is the message as published ({"seq","type","data"}, what the
	// streams send), shared read-only by every viewer: encoded once, by
	// the publish script, not once per viewer.
	raw []byte
}

// frame is the message as the streams send it.
func (m Message) frame() []byte {
	if m.raw != nil {
		return m.raw
	}
	return fmt.Appendf(nil, `{"seq":%d,"type":%q,"data":%s}`, m.Seq, m.Type, m.Data)
}

// Hub is one instance's fan-out of event streams.
type Hub struct {
	rdb redis.UniversalClient
	key func(parts ...string) string
	log *slog.Logger

	mu     sync.Mutex
	topics map[string]*topic

	subscriptions prometheus.Gauge
	dropped       prometheus.Counter
}

type topic struct {
	channel string
	sub     *redis.PubSub
	ready   chan struct{} // closed once Redis confirmed the subscription (or failed: err)
	err     error
	viewers map[*Viewer]struct{}
}

// Viewer is one open stream on this instance.
type Viewer struct {
	C       chan Message  // numbered messages, in order
	Dropped chan struct{} // closed when the viewer fell too far behind
	once    sync.Once
}

func (v *Viewer) drop() { v.once.Do(func() { close(v.Dropped) }) }

// NewHub returns a hub over the deployment's Redis; key names its keys.
func NewHub(rdb redis.UniversalClient, key func(parts ...string) string, log *slog.Logger, reg prometheus.Registerer) *Hub {
	h := &Hub{rdb: rdb, key: key, log: log, topics: map[string]*topic{},
		subscriptions: prometheus.NewGauge(prometheus.GaugeOpts{Name: "marquee_ops_live_subscriptions", Help: "Redis subscriptions this instance holds for dashboard streams (one per event with viewers)."}),
		dropped:       prometheus.NewCounter(prometheus.CounterOpts{Name: "marquee_ops_live_viewers_dropped_total", Help: "Dashboard viewers dropped for falling behind."}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{h.subscriptions, h.dropped} {
			if err := reg.Register(c); err != nil {
				var are prometheus.AlreadyRegisteredError
				if !errors.As(err, &are) {
					log.Warn("ops: metrics not registered", "err", err)
				}
			}
		}
	}
	return h
}

// keys of one event's stream; the hash tag keeps the three in one Redis
// Cluster slot, as the script needs.
func (h *Hub) keys(t tenants.Tenant, event uuid.UUID) (seq, hist, channel string) {
	tag := "{" + t.Slug + ":" + event.String() + "}"
	return h.key("ops", "live", tag, "seq"), h.key("ops", "live", tag, "hist"), h.key("ops", "live", tag, "ch")
}

// Publish numbers a change of an event's dashboard and sends it to every
// viewer on every instance; it returns its number.
func (h *Hub) Publish(ctx context.Context, t tenants.Tenant, event uuid.UUID, typ string, data any) (int64, error) {
	raw, err := json.Marshal(data)
	if err != nil {
		return 0, err
	}
	for _, r := range typ {
		if (r < 'a' || r > 'z') && r != '_' {
			return 0, fmt.Errorf("ops live: bad message type %q", typ)
		}
	}
	seq, hist, ch := h.keys(t, event)
	return publishScript.Run(ctx, h.rdb, []string{seq, hist, ch}, typ, string(raw), historyLen, int(liveTTL.Seconds())).Int64()
}

// Seq is the number of an event's latest change (0 before the first).
func (h *Hub) Seq(ctx context.Context, t tenants.Tenant, event uuid.UUID) (int64, error) {
	seq, _, _ := h.keys(t, event)
	n, err := h.rdb.Get(ctx, seq).Int64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	return n, err
}

// Since returns the kept messages numbered above after, in order, and
// whether they join up with after (false: some were trimmed, the viewer
// must reload the state).
func (h *Hub) Since(ctx context.Context, t tenants.Tenant, event uuid.UUID, after int64) ([]Message, bool, error) {
	_, hist, _ := h.keys(t, event)
	raws, err := h.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{Key: hist, ByScore: true, Start: "(" + strconv.FormatInt(after, 10), Stop: "+inf"}).Result()
	if err != nil {
		return nil, false, err
	}
	out := make([]Message, 0, len(raws))
	for _, r := range raws {
		var m Message
		if json.Unmarshal([]byte(r), &m) == nil {
			m.raw = []byte(r)
			out = append(out, m)
		}
	}
	whole := len(out) == 0 || out[0].Seq == after+1
	return out, whole, nil
}

// Join adds a viewer of an event on this instance, subscribing to Redis if
// it is the instance's first viewer of the event; leave removes it (and the
// subscription with the last viewer). Join returns once the subscription is
// confirmed, so a message published after it returns reaches the viewer.
func (h *Hub) Join(ctx context.Context, t tenants.Tenant, event uuid.UUID) (v *Viewer, leave func(), err error) {
	_, _, ch := h.keys(t, event)
	v = &Viewer{C: make(chan Message, viewerBuffer), Dropped: make(chan struct{})}
	h.mu.Lock()
	tp := h.topics[ch]
	if tp == nil {
		// The subscription lives as long as its viewers, not the request
		// that opened it.
		tp = &topic{channel: ch, sub: h.rdb.Subscribe(context.Background(), ch), ready: make(chan struct{}), viewers: map[*Viewer]struct{}{}}
		h.topics[ch] = tp
		h.subscriptions.Inc()
		go h.run(tp)
	}
	tp.viewers[v] = struct{}{}
	h.mu.Unlock()
	leave = func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		delete(tp.viewers, v)
		if len(tp.viewers) == 0 && h.topics[ch] == tp {
			delete(h.topics, ch)
			h.subscriptions.Dec()
			_ = tp.sub.Close()
		}
	}
	select {
	case <-tp.ready:
		if tp.err != nil {
			leave()
			return nil, nil, tp.err
		}
		return v, leave, nil
	case <-ctx.Done():
		leave()
		return nil, nil, ctx.Err()
	}
}

// run confirms a topic's subscription, then hands each message to every
// viewer without ever waiting on one.
func (h *Hub) run(tp *topic) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	_, err := tp.sub.Receive(ctx)
	cancel()
	if err != nil {
		tp.err = err
		close(tp.ready)
		h.mu.Lock()
		if h.topics[tp.channel] == tp {
			delete(h.topics, tp.channel)
			h.subscriptions.Dec()
		}
		h.mu.Unlock()
		_ = tp.sub.Close()
		return
	}
	close(tp.ready)
	for msg := range tp.sub.Channel(redis.WithChannelSize(4096)) {
		var m Message
		if json.Unmarshal([]byte(msg.Payload), &m) != nil {
			continue
		}
		m.raw = []byte(msg.Payload)
		h.mu.Lock()
		for v := range tp.viewers {
			select {
			case v.C <- m:
			default:
				// Full: this viewer stopped reading. It goes, and comes
				// back with Last-Event-ID; the others never wait for it.
				v.drop()
				h.dropped.Inc()
			}
		}
		h.mu.Unlock()
	}
}

// Subscriptions is how many Redis subscriptions the hub holds now.
func (h *Hub) Subscriptions() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.topics)
}

// Viewers is how many viewers this instance serves now, over all events.
func (h *Hub) Viewers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, tp := range h.topics {
		n += len(tp.viewers)
	}
	return n
}
