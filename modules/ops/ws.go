package ops

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/coder/websocket"
	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"marquee/app"
	"marquee/policies"
	"marquee/tenants"
)

// streamPosition parses a stream sequence number a viewer resumes from.
func streamPosition(v, field string) (int64, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, app.InvalidField("invalid_since", field, "%s is a stream sequence number", field)
	}
	return n, nil
}

// streamStart is where a viewer's stream begins: its position, the kept
// messages after it, and whether they join up with it (false: the viewer
// reloads the dashboard and goes on from the first kept message).
type streamStart struct {
	viewer  *Viewer
	leave   func()
	since   int64
	backlog []Message
	whole   bool
}

var errRealtime = app.Unavailable("realtime_unavailable", 5*time.Second, "live updates are unavailable; reload to see the latest state")

// joinStream joins the instance's hub for an event, then reads what the
// viewer missed since its position (since < 0: none, it starts at the
// latest number). Joining first means whatever is published from then on
// reaches the viewer and whatever was published before is in the history;
// the writer skips numbers already sent. SSE and WebSocket share it.
func (m *Module) joinStream(ctx context.Context, t tenants.Tenant, event uuid.UUID, since int64) (streamStart, error) {
	hub := m.svc.hub
	v, leave, err := hub.Join(ctx, t, event)
	if err != nil {
		return streamStart{}, errRealtime
	}
	st := streamStart{viewer: v, leave: leave, since: since, whole: true}
	if since < 0 {
		st.since, err = hub.Seq(ctx, t, event)
	} else {
		st.backlog, st.whole, err = hub.Since(ctx, t, event, since)
	}
	if err != nil {
		leave()
		return streamStart{}, errRealtime
	}
	return st, nil
}

// wsWriteTimeout bounds one write to a viewer: one that cannot take a
// message in that time is gone (the hub drops it sooner when its buffer fills).
const wsWriteTimeout = 10 * time.Second

// writeTimeout is the module's bound on a viewer's writes: wsWriteTimeout
// unless a test shortened it before the module served.
func (m *Module) writeTimeout() time.Duration {
	if m.wsWriteTimeout > 0 {
		return m.wsWriteTimeout
	}
	return wsWriteTimeout
}

// streamWS serves an event's dashboard changes over a WebSocket: the same
// numbered messages as the server-sent stream ({"seq","type","data"}, one
// per text frame), from the same hub (one Redis subscription per instance
// and event). ?after=N resumes after number N without a gap. The first
// frame is {"type":"connected","seq":N}, the position the stream starts
// from; a "reset" frame says the history no longer reaches back to the
// viewer's position (reload the dashboard). The socket closes with 1013
// (try again later) when the viewer fell too far behind and 1012 (service
// restart) when the server drains: the viewer reconnects with the last
// number it saw.
func (m *Module) streamWS(c *gin.Context) {
	ev, err := m.event(c, ObjDashboard, policies.Read)
	if err != nil {
		app.Fail(c, err)
		return
	}
	since := int64(-1)
	if v := c.Query("after"); v != "" {
		if since, err = streamPosition(v, "after"); err != nil {
			app.Fail(c, err)
			return
		}
	}
	ctx, t := c.Request.Context(), app.TenantOf(c)
	st, err := m.joinStream(ctx, t, ev.ID, since)
	if err != nil {
		app.Fail(c, err)
		return
	}
	defer st.leave()
	// The socket outlives the server's request timeouts; its writes carry
	// their own deadline.
	rc := http.NewResponseController(c.Writer)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
	// Accept checks the Origin against the host (a page of another site
	// cannot open it with the viewer's cookie) and answers any refusal.
	conn, err := websocket.Accept(c.Writer, c.Request, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		return
	}
	defer func() { _ = conn.CloseNow() }()
	// Viewers only listen; CloseRead answers pings and the close handshake
	// and ends ctx when the viewer goes (or sends something).
	ctx = conn.CloseRead(ctx)
	// A batch of writes (what is queued when the viewer's turn comes) is
	// bounded by one timer the viewer keeps, re-armed per batch, which
	// closes the socket when it fires: the writes themselves carry no
	// deadline, so a frame costs no context and no timer registration.
	timeout := m.writeTimeout()
	stuck := time.AfterFunc(time.Hour, func() { _ = conn.CloseNow() })
	defer stuck.Stop()
	stuck.Stop()
	write := func(frame []byte) error { return conn.Write(context.Background(), websocket.MessageText, frame) }
	batch := func(fn func() error) error {
		stuck.Reset(timeout)
		err := fn()
		if !stuck.Stop() {
			return errors.New("write timed out")
		}
		return err
	}
	last := st.since
	send := func(msg Message) error {
		if msg.Seq <= last {
			return nil
		}
		last = msg.Seq
		return write(msg.frame())
	}
	if err := batch(func() error {
		if err := write(fmt.Appendf(nil, `{"seq":%d,"type":"connected","data":null}`, st.since)); err != nil {
			return err
		}
		if !st.whole {
			if err := write(fmt.Appendf(nil, `{"seq":%d,"type":"reset","data":null}`, st.since)); err != nil {
				return err
			}
		}
		for _, msg := range st.backlog {
			if err := send(msg); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return
	}
	endOfLife := time.NewTimer(streamLifetime + time.Duration(rand.Int64N(int64(5*time.Minute))))
	defer endOfLife.Stop()
	heartbeat := time.NewTicker(15 * time.Second)
	defer heartbeat.Stop()
	v := st.viewer
	for {
		var err error
		select {
		case <-ctx.Done():
			return
		case <-m.app.Realtime.Draining():
			_ = conn.Close(websocket.StatusServiceRestart, "server restarting; reconnect with ?after="+strconv.FormatInt(last, 10))
			return
		case <-endOfLife.C:
			_ = conn.Close(websocket.StatusTryAgainLater, "stream ends; reconnect with ?after="+strconv.FormatInt(last, 10))
			return
		case <-v.Dropped:
			_ = conn.Close(websocket.StatusTryAgainLater, "too slow; reconnect with ?after="+strconv.FormatInt(last, 10))
			return
		case <-heartbeat.C:
			if cur, lerr := m.app.Tenants.Lookup(ctx, t.Slug); lerr != nil || cur.Status != tenants.StatusActive {
				_ = conn.Close(websocket.StatusTryAgainLater, "stream ends; reconnect")
				return
			}
			pctx, cancel := context.WithTimeout(ctx, timeout)
			err = conn.Ping(pctx)
			cancel()
		case msg := <-v.C:
			err = batch(func() error {
				if err := send(msg); err != nil {
					return err
				}
				for n := len(v.C); n > 0; n-- {
					if err := send(<-v.C); err != nil {
						return err
					}
				}
				return nil
			})
		}
		if err != nil {
			if !errors.Is(err, context.Canceled) {
				m.app.Log.Debug("ops: websocket viewer gone", "tenant", t.Slug, "err", err)
			}
			return
		}
	}
}
