package ops_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"marquee/app"
	"marquee/app/apptest"
	"marquee/modules/calendar"
	"marquee/modules/ops"
)

// sseViewer reads an event's dashboard stream.
type sseViewer struct {
	msgs   chan ops.Message
	cancel func()
}

func openStream(t testing.TB, e *apptest.Env, slug, tok, event string, lastID int64) *sseViewer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", e.Server.URL+"/api/v1/events/"+event+"/dashboard/stream", nil)
	req.Host = slug + ".localhost"
	req.Header.Set("Authorization", "Bearer "+tok)
	if lastID >= 0 {
		req.Header.Set("Last-Event-ID", fmt.Sprint(lastID))
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != http.StatusOK {
		cancel()
		t.Fatalf("open stream: %v %v", err, res)
	}
	v := &sseViewer{msgs: make(chan ops.Message, 1024), cancel: func() { cancel(); res.Body.Close() }}
	connected := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if strings.HasPrefix(line, ": connected") {
				close(connected)
			}
			if data, ok := strings.CutPrefix(line, "data: "); ok {
				var m ops.Message
				if json.Unmarshal([]byte(data), &m) == nil {
					v.msgs <- m
				}
			}
		}
		close(v.msgs)
	}()
	select {
	case <-connected:
	case <-time.After(5 * time.Second):
		t.Fatal("stream did not connect")
	}
	t.Cleanup(v.cancel)
	return v
}

func (v *sseViewer) next(t testing.TB, typ string) ops.Message {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case m, ok := <-v.msgs:
			if !ok {
				t.Fatal("stream ended")
			}
			if m.Type == typ {
				return m
			}
		case <-deadline:
			t.Fatalf("no %s message", typ)
		}
	}
}

// Two server instances on one database and Redis: a reading pushed through
// instance A reaches the viewers of both, with one number; each instance
// holds one Redis subscription for its five viewers.
func TestTwoInstancesDeliverOneUpdate(t *testing.T) {
	a := startEnv(t, nil)
	b := apptest.Start(t, dbURL, apptest.Options{Modules: []app.Module{calendar.New(), &fakeDoor{zones: map[uuid.UUID][]app.ZoneAttendance{}}, ops.New()}})
	c := newChain(t, a, "two")
	var viewers []*sseViewer
	for i := range 10 {
		env := a.Env
		if i%2 == 1 {
			env = b
		}
		viewers = append(viewers, openStream(t, env, c.slug, c.tok, c.event, -1))
	}
	c.push(t, map[string]any{"zone": "Floor", "source": "manual", "count": 42})
	var seq int64
	for i, v := range viewers {
		m := v.next(t, "occupancy")
		if seq == 0 {
			seq = m.Seq
		}
		var zones []ops.ZoneOccupancy
		if err := json.Unmarshal(m.Data, &zones); err != nil || m.Seq != seq {
			t.Fatalf("viewer %d: %+v", i, m)
		}
		found := false
		for _, z := range zones {
			found = found || (z.Zone == "Floor" && z.Inside == 42)
		}
		if !found {
			t.Fatalf("viewer %d: %s", i, m.Data)
		}
	}
	if n := a.mod.Service().Hub().Subscriptions(); n != 1 {
		t.Fatalf("instance A holds %d Redis subscriptions for 5 viewers of one event", n)
	}
}

// A viewer that reconnects with Last-Event-ID gets every change it missed,
// in order, then live ones; a viewer whose position fell out of the history
// is told to reload.
func TestReconnectResumesWithoutGap(t *testing.T) {
	e := startEnv(t, nil)
	c := newChain(t, e, "resume")
	hub := e.mod.Service().Hub()
	ev := uuid.MustParse(c.event)
	first, err := hub.Publish(context.Background(), c.t, ev, "note", map[string]int{"n": 0})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 5; i++ { // missed while away
		if _, err := hub.Publish(context.Background(), c.t, ev, "note", map[string]int{"n": i}); err != nil {
			t.Fatal(err)
		}
	}
	v := openStream(t, e.Env, c.slug, c.tok, c.event, first)
	if _, err := hub.Publish(context.Background(), c.t, ev, "note", map[string]int{"n": 6}); err != nil {
		t.Fatal(err)
	}
	for want := first + 1; want <= first+6; want++ {
		if m := v.next(t, "note"); m.Seq != want {
			t.Fatalf("got %d, want %d", m.Seq, want)
		}
	}
	// A position the history no longer reaches (it keeps the last 1,000):
	// the viewer is told to reload, then gets what is kept.
	for i := range 1005 {
		if _, err := hub.Publish(context.Background(), c.t, ev, "note", i); err != nil {
			t.Fatal(err)
		}
	}
	stale := openStream(t, e.Env, c.slug, c.tok, c.event, first)
	if m := stale.next(t, "reset"); m.Seq != first {
		t.Fatalf("reset: %+v", m)
	}
	if m := stale.next(t, "note"); m.Seq != first+6+1005-1000+1 {
		t.Fatalf("first kept message %d", m.Seq)
	}
	res := e.Do(t, "GET", c.slug, "/api/v1/events/"+c.event+"/dashboard/stream?since=x", c.tok, nil)
	if res.Status != http.StatusBadRequest {
		t.Fatalf("since=x: %d", res.Status)
	}
}

// A viewer that stops reading is dropped once its buffer is full; the
// viewer next to it receives every message.
func TestSlowViewerDropped(t *testing.T) {
	e := startEnv(t, nil)
	c := newChain(t, e, "slow")
	hub := e.mod.Service().Hub()
	ev := uuid.MustParse(c.event)
	ctx := context.Background()
	slow, leaveSlow, err := hub.Join(ctx, c.t, ev)
	if err != nil {
		t.Fatal(err)
	}
	defer leaveSlow()
	fast, leaveFast, err := hub.Join(ctx, c.t, ev)
	if err != nil {
		t.Fatal(err)
	}
	defer leaveFast()
	got := make(chan int, 1)
	go func() {
		n := 0
		for range fast.C {
			if n++; n == 400 {
				got <- n
				return
			}
		}
	}()
	for i := range 400 {
		if _, err := hub.Publish(ctx, c.t, ev, "note", i); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-slow.Dropped:
	case <-time.After(5 * time.Second):
		t.Fatal("the slow viewer was not dropped")
	}
	select {
	case <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("the fast viewer missed messages")
	}
}
