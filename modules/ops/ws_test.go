package ops_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"

	"marquee/app"
	"marquee/app/apptest"
	"marquee/modules/calendar"
	"marquee/modules/ops"
)

// wsViewer reads an event's dashboard over a WebSocket.
type wsViewer struct {
	conn   *websocket.Conn
	msgs   chan ops.Message
	closed chan websocket.StatusCode
	start  int64 // the position the server said it starts from
}

func wsURL(e *apptest.Env, event string, after int64) string {
	u := "ws" + strings.TrimPrefix(e.Server.URL, "http") + "/api/v1/events/" + event + "/dashboard/ws"
	if after >= 0 {
		u += fmt.Sprintf("?after=%d", after)
	}
	return u
}

func dialWS(ctx context.Context, e *apptest.Env, slug, tok, event string, after int64, header http.Header) (*websocket.Conn, *http.Response, error) {
	h := http.Header{"X-Tenant": {slug}, "Authorization": {"Bearer " + tok}}
	for k, v := range header {
		h[k] = v
	}
	return websocket.Dial(ctx, wsURL(e, event, after), &websocket.DialOptions{HTTPHeader: h})
}

func openWS(t testing.TB, e *apptest.Env, slug, tok, event string, after int64) *wsViewer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, _, err := dialWS(ctx, e, slug, tok, event, after, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	conn.SetReadLimit(1 << 20)
	v := &wsViewer{conn: conn, msgs: make(chan ops.Message, 4096), closed: make(chan websocket.StatusCode, 1)}
	_, first, err := conn.Read(ctx)
	var hello ops.Message
	if err != nil || json.Unmarshal(first, &hello) != nil || hello.Type != "connected" {
		t.Fatalf("first frame: %s %v", first, err)
	}
	v.start = hello.Seq
	go func() {
		defer close(v.msgs)
		for {
			_, raw, err := conn.Read(context.Background())
			if err != nil {
				v.closed <- websocket.CloseStatus(err)
				return
			}
			var m ops.Message
			if json.Unmarshal(raw, &m) == nil {
				v.msgs <- m
			}
		}
	}()
	t.Cleanup(func() { _ = conn.CloseNow() })
	return v
}

func (v *wsViewer) next(t testing.TB, typ string) ops.Message {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case m, ok := <-v.msgs:
			if !ok {
				t.Fatal("socket closed")
			}
			if m.Type == typ {
				return m
			}
		case <-deadline:
			t.Fatalf("no %s message", typ)
		}
	}
}

// The WebSocket serves the SSE stream's messages from the same hub: viewers
// on two instances get one reading's update with one number, each instance
// holding one Redis subscription; a viewer that drops off instance A while
// changes go on, and comes back on instance B with ?after=<last number>,
// gets every change it missed, in order, then live ones.
func TestWebSocketTwoInstancesResumeWithoutGap(t *testing.T) {
	a := startEnv(t, nil)
	b := apptest.Start(t, dbURL, apptest.Options{Modules: []app.Module{calendar.New(), &fakeDoor{zones: map[uuid.UUID][]app.ZoneAttendance{}}, ops.New()}})
	c := newChain(t, a, "wsres")
	var viewers []*wsViewer
	for i := range 6 {
		env := a.Env
		if i%2 == 1 {
			env = b
		}
		viewers = append(viewers, openWS(t, env, c.slug, c.tok, c.event, -1))
	}
	sse := openStream(t, b, c.slug, c.tok, c.event, -1)
	c.push(t, map[string]any{"zone": "Floor", "source": "manual", "count": 42})
	want := sse.next(t, "occupancy")
	for i, v := range viewers {
		if m := v.next(t, "occupancy"); m.Seq != want.Seq || string(m.Data) != string(want.Data) {
			t.Fatalf("viewer %d got %d %s, the SSE stream %d %s", i, m.Seq, m.Data, want.Seq, want.Data)
		}
	}
	if na := a.mod.Service().Hub().Subscriptions(); na != 1 {
		t.Fatalf("instance A holds %d Redis subscriptions for 3 viewers of one event", na)
	}

	// The viewer on A goes away after the reading; changes go on through
	// both instances while it is gone.
	v := viewers[0]
	last := want.Seq
	_ = v.conn.Close(websocket.StatusNormalClosure, "")
	for i := range 20 {
		env := a.Env
		if i%2 == 1 {
			env = b
		}
		res, err := env.Try("POST", c.slug, "/api/v1/events/"+c.event+"/occupancy", c.tok,
			map[string]any{"zone": "Balcony", "source": "turnstile:g1", "count": i + 1, "at": ago(time.Duration(30-i) * time.Second)})
		if err != nil || res.Status != http.StatusOK {
			t.Fatalf("push %d: %v %d %s", i, err, res.Status, res.Body)
		}
	}
	back := openWS(t, b, c.slug, c.tok, c.event, last)
	if back.start != last {
		t.Fatalf("resumed from %d, asked %d", back.start, last)
	}
	hub := a.mod.Service().Hub()
	end, err := hub.Publish(context.Background(), c.t, uuid.MustParse(c.event), "note", map[string]int{"n": 1})
	if err != nil {
		t.Fatal(err)
	}
	balcony := 0
	for seq := last + 1; seq <= end; seq++ {
		var m ops.Message
		select {
		case m = <-back.msgs:
		case <-time.After(5 * time.Second):
			t.Fatalf("no message %d (of %d)", seq, end)
		}
		if m.Seq != seq {
			t.Fatalf("got %d, want %d: a gap or a repeat", m.Seq, seq)
		}
		if m.Type == "occupancy" && strings.Contains(string(m.Data), `"zone":"Balcony"`) {
			balcony++
		}
	}
	if balcony != 20 {
		t.Fatalf("%d of the 20 missed readings came back", balcony)
	}
}

// Bad requests are refused before any socket opens: a position that is not
// a number, no credentials, another site's page, an unknown event.
func TestWebSocketRefusals(t *testing.T) {
	e := startEnv(t, nil)
	c := newChain(t, e, "wsbad")
	res := e.Do(t, "GET", c.slug, "/api/v1/events/"+c.event+"/dashboard/ws?after=x", c.tok, nil)
	if res.Status != http.StatusBadRequest || res.Code() != "invalid_since" {
		t.Fatalf("after=x: %d %s", res.Status, res.Body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, tc := range []struct {
		name   string
		tok    string
		event  string
		header http.Header
		status int
	}{
		{"forged token", "forged", c.event, nil, http.StatusUnauthorized},
		{"another site's page", c.tok, c.event, http.Header{"Origin": {"https://evil.example"}}, http.StatusForbidden},
		{"unknown event", c.tok, uuid.NewString(), nil, http.StatusNotFound},
	} {
		_, resp, err := dialWS(ctx, e.Env, c.slug, tc.tok, tc.event, -1, tc.header)
		if err == nil || resp == nil || resp.StatusCode != tc.status {
			code := 0
			if resp != nil {
				code = resp.StatusCode
			}
			t.Fatalf("%s: %v, status %d, want %d", tc.name, err, code, tc.status)
		}
	}
	// A viewer that stops reading is dropped (its socket closed) instead
	// of holding up the others: the viewer beside it gets every message.
	slow, _, err := dialWS(ctx, e.Env, c.slug, c.tok, c.event, -1, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = slow.CloseNow() }()
	fast := openWS(t, e.Env, c.slug, c.tok, c.event, -1)
	hub := e.mod.Service().Hub()
	apptest.Eventually(t, 5*time.Second, "both viewers joined", func() bool { return hub.Viewers() == 2 })
	ev := uuid.MustParse(c.event)
	pad := strings.Repeat("x", 16<<10)
	const n = 2000 // 32 MB: more than the slow socket's buffers and its 256 messages of slack
	first := int64(0)
	for i := range n {
		seq, err := hub.Publish(context.Background(), c.t, ev, "note", pad)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = seq
		}
	}
	for want := first; want < first+n; want++ {
		select {
		case m := <-fast.msgs:
			if m.Seq != want {
				t.Fatalf("fast viewer got %d, want %d", m.Seq, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("the fast viewer waited for the slow one at %d", want)
		}
	}
	apptest.Eventually(t, 2*wsWriteTimeout, "the slow viewer dropped", func() bool { return hub.Viewers() == 1 })
}

// wsWriteTimeout is the server's bound on one write (ws.go).
const wsWriteTimeout = 10 * time.Second

// A viewer whose socket stops taking frames is closed by its stuck-writer
// timer (one per viewer, armed per batch of writes) within the write bound,
// while another viewer keeps receiving promptly. The stuck viewer is a
// WebSocket client with a 4 KiB receive buffer that never reads; fewer
// messages are published than its hub buffer holds (viewerBuffer, 256), so
// the hub never drops it: only the timer can close it, and not before the
// bound has passed since the first message it could not take. The other
// viewer joins after the big messages (it starts at the latest number), so
// what it receives meanwhile is the small changes alone.
func TestWebSocketStuckViewerClosedByItsTimer(t *testing.T) {
	const bound = 5 * time.Second
	mod, door := ops.New(), &fakeDoor{zones: map[uuid.UUID][]app.ZoneAttendance{}}
	mod.SetWSWriteTimeout(bound)
	e := &env{Env: apptest.Start(t, dbURL, apptest.Options{Modules: []app.Module{calendar.New(), door, mod}, DBMaxConns: 20}), mod: mod, door: door}
	c := newChain(t, e, "wsstuck")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	small := &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) }); err != nil {
			return err
		}
		return serr
	}}
	stuck, _, err := websocket.Dial(ctx, wsURL(e.Env, c.event, -1), &websocket.DialOptions{
		HTTPClient: &http.Client{Transport: &http.Transport{DialContext: small.DialContext}},
		HTTPHeader: http.Header{"X-Tenant": {c.slug}, "Authorization": {"Bearer " + c.tok}}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = stuck.CloseNow() }() // never read
	hub := mod.Service().Hub()
	apptest.Eventually(t, 5*time.Second, "the stuck viewer joined", func() bool { return hub.Viewers() == 1 })
	ev := uuid.MustParse(c.event)
	publish := func(data any) int64 {
		seq, err := hub.Publish(ctx, c.t, ev, "note", data)
		if err != nil {
			t.Fatal(err)
		}
		return seq
	}
	// 6 MiB: more than the loopback socket buffers of both ends hold
	// (the server's send buffer grows to 4 MiB at most).
	const bigs = 24
	pad := strings.Repeat("x", 256<<10)
	firstBig := time.Now()
	for range bigs {
		publish(pad)
	}
	lastBig := time.Now()

	fast := openWS(t, e.Env, c.slug, c.tok, c.event, -1)
	var mu sync.Mutex
	got := map[int64]time.Time{} // the fast viewer's receipts, by number
	go func() {
		for m := range fast.msgs {
			mu.Lock()
			got[m.Seq] = time.Now()
			mu.Unlock()
		}
	}()
	if hub.Viewers() != 2 {
		t.Fatalf("%d viewers once the other joined: the stuck one went before the bound", hub.Viewers())
	}

	// Small changes every 50 ms until the stuck viewer is gone: each must
	// reach the other viewer promptly.
	sent := map[int64]time.Time{}
	var closedAt time.Time
	for deadline := lastBig.Add(bound + 5*time.Second); closedAt.IsZero(); {
		if time.Now().After(deadline) {
			t.Fatalf("the stuck viewer is still served %v after the last message it could not take (bound %v)", time.Since(lastBig), bound)
		}
		at := time.Now()
		sent[publish(map[string]int{"n": len(sent)})] = at
		if hub.Viewers() == 1 {
			closedAt = time.Now()
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(sent)+bigs >= 256 {
		t.Fatalf("%d messages published: the hub's buffer could have dropped the viewer, not the timer", len(sent)+bigs)
	}
	if took := closedAt.Sub(firstBig); took < bound {
		t.Fatalf("the stuck viewer was closed %v after the first message, before the bound %v: not by its timer", took, bound)
	}
	if len(sent) < 3 {
		t.Fatalf("only %d changes while the stuck viewer was served: the test shows nothing of the other viewer", len(sent))
	}
	// The other viewer received every change, each within 1 s of its
	// publication, while the stuck one was blocked.
	const prompt = time.Second
	apptest.Eventually(t, 5*time.Second, "the other viewer received every change", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for seq := range sent {
			if _, ok := got[seq]; !ok {
				return false
			}
		}
		return true
	})
	mu.Lock()
	defer mu.Unlock()
	for seq, at := range sent {
		if lag := got[seq].Sub(at); lag > prompt {
			t.Fatalf("change %d reached the other viewer after %v (the stuck viewer blocked at the time)", seq, lag)
		}
	}
	t.Logf("stuck viewer closed %v after the first big message (bound %v); %d changes reached the other viewer meanwhile", closedAt.Sub(firstBig).Round(time.Millisecond), bound, len(sent))
}
