package app

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"regexp"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/redis/go-redis/v9"

	"marquee/tenants"
)

// Realtime pushes events to open pages through Redis pub/sub, so an event
// published on one server instance reaches viewers connected to any other.
// Channels are named by tenant, so a subscriber can only ever hear its own
// tenant's events.
type Realtime struct {
	a *App
}

var topicPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9:._-]{0,127}$`)

func (r *Realtime) channel(t tenants.Tenant, topic string) string {
	return r.a.RedisKey("rt", t.Slug, topic)
}

// Publish sends an event to every subscriber of a tenant's topic. Delivery
// is best effort: pages reconcile by re-reading state, never from events alone.
func (r *Realtime) Publish(ctx context.Context, t tenants.Tenant, topic, event string, data any) error {
	pipe := r.a.Redis.Pipeline()
	if err := r.PublishIn(ctx, pipe, t, topic, event, data); err != nil {
		return err
	}
	_, err := pipe.Exec(ctx)
	return err
}

// PublishIn queues Publish on a pipeline, so it travels with the caller's
// other Redis commands in one round trip.
func (r *Realtime) PublishIn(ctx context.Context, pipe redis.Pipeliner, t tenants.Tenant, topic, event string, data any) error {
	if !topicPattern.MatchString(topic) {
		return fmt.Errorf("realtime: bad topic %q", topic)
	}
	raw, err := json.Marshal(struct {
		Event string `json:"event"`
		Data  any    `json:"data"`
	}{event, data})
	if err != nil {
		return err
	}
	pipe.Publish(ctx, r.channel(t, topic), raw)
	return nil
}

// streamLifetime is how long a stream lasts at least before the page is
// asked to reconnect (a few minutes more, spread, so pages do not return
// together).
const streamLifetime = 30 * time.Minute

// streamWriteTimeout bounds each write of an event stream.
const streamWriteTimeout = 20 * time.Second

// ServeSSE streams a tenant topic to the client as server-sent events until
// it disconnects, with a heartbeat so proxies keep the connection open.
func (r *Realtime) ServeSSE(c *gin.Context, topic string) {
	if !topicPattern.MatchString(topic) {
		Fail(c, NotFound("stream"))
		return
	}
	ctx := c.Request.Context()
	sub := r.a.Redis.Subscribe(ctx, r.channel(TenantOf(c), topic))
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil {
		Fail(c, Unavailable("realtime_unavailable", 5*time.Second, "live updates are unavailable; reload to see the latest state"))
		return
	}
	w := c.Writer
	// The server's write timeout would end a healthy stream; instead each
	// write must reach the client within streamWriteTimeout, which still cuts
	// off a client that stopped reading.
	rc := http.NewResponseController(w)
	deadline := func() { _ = rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout)) }
	deadline()
	// No read deadline either: a stream reads nothing after its request
	// (net/http clears it once the body is read; this keeps it so).
	_ = rc.SetReadDeadline(time.Time{})
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, "retry: 2000\n: connected\n\n")
	w.Flush()
	endOfLife := time.Now().Add(streamLifetime + time.Duration(rand.Int64N(int64(5*time.Minute))))
	heartbeat := time.NewTicker(15 * time.Second)
	defer heartbeat.Stop()
	msgs := sub.Channel()
	for {
		deadline()
		select {
		case <-ctx.Done():
			return
		case <-r.a.draining:
			// The server is shutting down: tell the page to come back soon
			// (spread over a few seconds, to another instance) and end now.
			fmt.Fprintf(w, "retry: %d\n: server restarting\n\n", 1000+rand.IntN(4000))
			w.Flush()
			return
		case <-heartbeat.C:
			// A stream is a request that lasts: it ends when its chain stops
			// being served (suspended) and after a bounded life, so the page
			// comes back through every check a new request passes.
			if _, err := r.a.Tenants.Active(ctx, TenantOf(c).Slug); err != nil || time.Now().After(endOfLife) {
				fmt.Fprintf(w, "retry: %d\n: stream ends; reconnect\n\n", 1000+rand.IntN(4000))
				w.Flush()
				return
			}
			fmt.Fprint(w, ": heartbeat\n\n")
		case m, ok := <-msgs:
			if !ok {
				return
			}
			var env struct {
				Event string          `json:"event"`
				Data  json.RawMessage `json:"data"`
			}
			if json.Unmarshal([]byte(m.Payload), &env) != nil {
				continue
			}
			fmt.Fprintf(w, "event: %s\ndata: %s\n\n", env.Event, env.Data)
		}
		w.Flush()
	}
}

// Draining is closed when the server begins to shut down, so a module that
// serves its own long-lived stream can end it (and tell the client to come
// back, to another instance) instead of holding the shutdown up.
func (r *Realtime) Draining() <-chan struct{} { return r.a.draining }
