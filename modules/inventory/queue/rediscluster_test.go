package queue

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"marquee/app"
	"marquee/app/apptest"
	"marquee/internal/keyslot"
	"marquee/tenants"
)

// Every key a room's scripts and transactions take at once hashes to one
// Redis Cluster slot, for any tenant and event; rooms spread over slots.
func TestRoomKeysShareOneSlot(t *testing.T) {
	r := &Room{prefix: "deploy-1:"}
	slots := map[int]bool{}
	for i := range 20 {
		k := r.keys(tenants.Tenant{Slug: fmt.Sprintf("chain-%d", i)}, uuid.Must(uuid.NewV7()))
		apptest.OneSlot(t, "join script", k.seq, k.queue, k.active, k.buyers, k.owners)
		apptest.OneSlot(t, "admit script", k.queue, k.active, k.state, k.cfg, k.log)
		apptest.OneSlot(t, "control script", k.signal, k.state, k.queue, k.active, k.ctlLock, k.cfg)
		apptest.OneSlot(t, "leave script", k.buyers, k.active)
		apptest.OneSlot(t, "settings and control transactions", k.cfg, k.state)
		for _, key := range []string{k.seq, k.queue, k.active, k.buyers, k.owners, k.state, k.cfg, k.signal, k.ctlLock, k.log, k.admittedChannel()} {
			if !strings.HasPrefix(key, "deploy-1:wr:") {
				t.Fatalf("key %q lacks the deployment's prefix", key)
			}
		}
		slots[keyslot.Of(k.queue)] = true
	}
	if len(slots) < 10 {
		t.Fatalf("20 rooms in %d slots: rooms should spread over the cluster", len(slots))
	}
}

// The waiting room on a three-node Redis Cluster, end to end through the
// HTTP API on two instances: buyers join, wait on instance A with a long
// poll, are admitted by instance B's admitter and hear it at once; the cap
// holds the next buyer queued until a paid buyer leaves; the adaptive
// controller's script runs; and a script given keys without the room's
// hash tag is refused by the cluster (CROSSSLOT) while a single Redis runs
// it — so the tag, not luck, is what makes the room work on a cluster.
func TestWaitingRoomOnRedisCluster(t *testing.T) {
	cluster := apptest.RedisCluster(t)
	onCluster := apptest.Options{Configure: apptest.OnRedisCluster(cluster)}
	mA, mB := &roomModule{}, &roomModule{}
	optsA, optsB := onCluster, onCluster
	optsA.Modules, optsB.Modules = []app.Module{mA}, []app.Module{mB}
	envA := apptest.Start(t, dbURL, optsA)
	apptest.Start(t, dbURL, optsB)
	roomA, roomB := mA.room, mB.room
	clk := &clock{t: time.Now()}
	roomA.now, roomB.now = clk.now, clk.now
	tn := envA.Tenant(t, apptest.UniqueSlug("clroom"))
	ctx := context.Background()
	event := uuid.Must(uuid.NewV7())
	ev := event.String()

	owner := envA.Login(t, tn.Slug, "owner@"+tn.Slug+".test")
	// Settings through the API: the settings transaction, then the room's
	// registration with the admitter (another slot, outside it).
	if res := envA.Do(t, http.MethodPut, tn.Slug, "/api/v1/events/"+ev+"/waiting-room", owner,
		map[string]any{"enabled": true, "admit_per_second": 1000, "max_active": 10, "adaptive": false}); res.Status != http.StatusOK {
		t.Fatalf("configure: %d %s", res.Status, res.Body)
	}

	const buyers = 11
	tickets := make([]string, buyers)
	var wg sync.WaitGroup
	positions := make(chan int64, buyers)
	for i := range buyers {
		wg.Go(func() {
			res, err := envA.Try(http.MethodPost, tn.Slug, "/api/v1/events/"+ev+"/queue", "", nil, "X-Buyer", fmt.Sprintf("cb-%d", i))
			if err != nil || res.Status != http.StatusOK {
				t.Errorf("join %d: %v %d %s", i, err, res.Status, res.Body)
				return
			}
			var st Status
			res.JSON(t, &st)
			if st.State != "queued" {
				t.Errorf("join %d: %+v", i, st)
			}
			tickets[i] = st.QueueToken
			positions <- st.Position
		})
	}
	wg.Wait()
	close(positions)
	seen := map[int64]bool{}
	for p := range positions {
		seen[p] = true
	}
	if len(seen) != buyers {
		t.Fatalf("%d concurrent joins got %d distinct places", buyers, len(seen))
	}
	// Arrival order, as the queue keeps it, decides who is in the first ten.
	var first []int
	for i := range buyers {
		var st Status
		envA.Do(t, http.MethodGet, tn.Slug, "/api/v1/events/"+ev+"/queue/"+tickets[i], "", nil, "X-Buyer", fmt.Sprintf("cb-%d", i)).JSON(t, &st)
		if st.Position <= 10 {
			first = append(first, i)
		}
	}

	answers := make([]Status, len(first))
	for j, i := range first {
		wg.Go(func() {
			res, err := envA.Try(http.MethodGet, tn.Slug, "/api/v1/events/"+ev+"/queue/"+tickets[i]+"?wait=20", "", nil, "X-Buyer", fmt.Sprintf("cb-%d", i))
			if err != nil || res.Status != http.StatusOK {
				t.Errorf("long poll %d: %v %d %s", i, err, res.Status, res.Body)
				return
			}
			res.JSON(t, &answers[j])
		})
	}
	apptest.Eventually(t, 10*time.Second, "ten buyers waiting on instance A", func() bool { return roomA.Waiting() == len(first) })
	if _, err := roomB.AdmitOnce(ctx); err != nil { // starts the rate clock
		t.Fatal(err)
	}
	clk.add(20 * time.Millisecond)
	if n, err := roomB.AdmitOnce(ctx); err != nil || n != 10 {
		t.Fatalf("instance B admitted %d (%v), want 10 (the cap)", n, err)
	}
	wg.Wait()
	for j, st := range answers {
		if st.State != "admitted" || st.AccessToken == "" {
			t.Fatalf("buyer %d waited and was told %+v", first[j], st)
		}
	}
	last := -1
	for i := range buyers {
		if !containsInt(first, i) {
			last = i
		}
	}
	status := func(i int) Status {
		var st Status
		envA.Do(t, http.MethodGet, tn.Slug, "/api/v1/events/"+ev+"/queue/"+tickets[i], "", nil, "X-Buyer", fmt.Sprintf("cb-%d", i)).JSON(t, &st)
		return st
	}
	if st := status(last); st.State != "queued" || st.Position != 1 {
		t.Fatalf("the eleventh buyer with the room full: %+v", st)
	}
	if res := envA.Do(t, http.MethodPost, tn.Slug, "/api/v1/test-holds/"+ev, "", nil, "X-Buyer", fmt.Sprintf("cb-%d", first[0]), "X-Queue-Token", answers[0].AccessToken); res.Status != http.StatusCreated {
		t.Fatalf("admitted buyer's hold: %d %s", res.Status, res.Body)
	}
	// The first buyer pays and leaves (the leave script): the eleventh is
	// let in at once, by the step the departure runs.
	clk.add(10 * time.Millisecond)
	if err := roomA.LeaveBuyer(ctx, tn, event, fmt.Sprintf("cb-%d", first[0])); err != nil {
		t.Fatal(err)
	}
	if st := status(last); st.State != "admitted" {
		t.Fatalf("after a departure the eleventh buyer is %+v", st)
	}
	order, err := AdmissionOrder(ctx, envA.App.Redis, envA.App.RedisKey(""), tn, event, 0, 100)
	if err != nil || len(order) != buyers {
		t.Fatalf("admission log: %d entries (%v), want %d", len(order), err, buyers)
	}

	t.Run("adaptive controller", func(t *testing.T) {
		s := DefaultSettings(uuid.Must(uuid.NewV7()))
		s.Enabled = true
		if err := roomB.Configure(ctx, tn, s); err != nil {
			t.Fatal(err)
		}
		if _, err := roomB.Join(ctx, tn, s.EventID, "adaptive-buyer"); err != nil {
			t.Fatal(err)
		}
		// The settings were read (Join), so this instance measures the room.
		roomB.ObserveStep(tn, s.EventID, "hold", 20*time.Millisecond, false)
		roomB.flushPending()
		clk.add(time.Second)
		if _, err := roomB.AdmitOnce(ctx); err != nil {
			t.Fatalf("admission with the controller on the cluster: %v", err)
		}
		raw, err := envA.App.Redis.HGet(ctx, roomB.keys(tn, s.EventID).state, "control").Result()
		if err != nil || !strings.Contains(raw, "admitted_total") {
			t.Fatalf("the controller's step left %q (%v)", raw, err)
		}
	})

	t.Run("a cross-slot script is refused", func(t *testing.T) {
		tagged := roomA.keys(tn, event)
		// The same names without the hash tag: each key hashes on its own.
		untagged := []string{}
		for _, k := range []string{tagged.seq, tagged.queue, tagged.active, tagged.buyers, tagged.owners} {
			untagged = append(untagged, strings.NewReplacer("{", "", "}", "").Replace(k))
		}
		if keyslot.Of(untagged[0]) == keyslot.Of(untagged[1]) {
			t.Fatal("the untagged keys happen to share a slot; pick other names")
		}
		_, err := joinScript.Run(ctx, envA.App.Redis, untagged, uuid.NewString(), "cross-slot-buyer", clk.now().UnixMilli()).Result()
		if err == nil || !strings.Contains(err.Error(), "CROSSSLOT") {
			t.Fatalf("the join script over untagged keys on the cluster: %v, want CROSSSLOT", err)
		}
		res, err := joinScript.Run(ctx, envA.App.Redis, []string{tagged.seq, tagged.queue, tagged.active, tagged.buyers, tagged.owners},
			uuid.NewString(), "tagged-buyer", clk.now().UnixMilli()).Slice()
		if err != nil || len(res) != 4 {
			t.Fatalf("the join script over the room's keys: %v %v", res, err)
		}
		// A single Redis runs the untagged call: tests on it alone could
		// not tell.
		opt, err := redis.ParseURL(apptest.RedisURL())
		if err != nil {
			t.Fatal(err)
		}
		single := redis.NewClient(opt)
		defer single.Close()
		deployment := apptest.UniqueDeployment(t, "crossslot")
		var singleKeys []string
		for _, k := range untagged {
			singleKeys = append(singleKeys, deployment+":"+strings.TrimPrefix(k, envA.App.RedisKey("")))
		}
		if _, err := joinScript.Run(ctx, single, singleKeys, uuid.NewString(), "cross-slot-buyer", clk.now().UnixMilli()).Result(); err != nil {
			t.Fatalf("the untagged call on a single Redis: %v", err)
		}
	})
}

func containsInt(xs []int, x int) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
