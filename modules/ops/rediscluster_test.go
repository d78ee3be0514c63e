package ops_test

import (
	"context"
	"testing"

	"github.com/google/uuid"

	"marquee/app"
	"marquee/app/apptest"
	"marquee/modules/calendar"
	"marquee/modules/ops"
)

// The live stream on a three-node Redis Cluster, on two instances: a
// reading pushed through A reaches the viewers of both with one number
// (the publish script, atomic in the event's slot, and pub/sub across the
// cluster), and a viewer reconnecting to B with Last-Event-ID gets what it
// missed from the history, in order, then live messages.
func TestLiveStreamOnRedisCluster(t *testing.T) {
	cluster := apptest.RedisCluster(t)
	start := func() *env {
		mod, door := ops.New(), &fakeDoor{zones: map[uuid.UUID][]app.ZoneAttendance{}}
		return &env{Env: apptest.Start(t, dbURL, apptest.Options{Modules: []app.Module{calendar.New(), door, mod},
			Configure: apptest.OnRedisCluster(cluster)}), mod: mod, door: door}
	}
	a, b := start(), start()
	c := newChain(t, a, "clive")
	va, vb := openStream(t, a.Env, c.slug, c.tok, c.event, -1), openStream(t, b.Env, c.slug, c.tok, c.event, -1)
	c.push(t, map[string]any{"zone": "Floor", "source": "manual", "count": 42})
	ma, mb := va.next(t, "occupancy"), vb.next(t, "occupancy")
	if ma.Seq == 0 || ma.Seq != mb.Seq {
		t.Fatalf("instance A's viewer got #%d, B's #%d: want one number", ma.Seq, mb.Seq)
	}
	hub := a.mod.Service().Hub()
	ev := uuid.MustParse(c.event)
	ctx := context.Background()
	for i := 1; i <= 5; i++ { // published while the viewer is away
		if _, err := hub.Publish(ctx, c.t, ev, "note", map[string]int{"n": i}); err != nil {
			t.Fatal(err)
		}
	}
	back := openStream(t, b.Env, c.slug, c.tok, c.event, ma.Seq)
	if _, err := b.mod.Service().Hub().Publish(ctx, c.t, ev, "note", map[string]int{"n": 6}); err != nil {
		t.Fatal(err)
	}
	for want := ma.Seq + 1; want <= ma.Seq+6; want++ {
		if m := back.next(t, "note"); m.Seq != want {
			t.Fatalf("replay then live on instance B: got #%d, want #%d", m.Seq, want)
		}
	}
	if seq, err := hub.Seq(ctx, c.t, ev); err != nil || seq != ma.Seq+6 {
		t.Fatalf("sequence %d (%v), want %d", seq, err, ma.Seq+6)
	}
}
