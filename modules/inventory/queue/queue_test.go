package queue

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"marquee/app"
	"marquee/app/apptest"
	"marquee/policies"
	"marquee/tenants"
)

var dbURL string

func TestMain(m *testing.M) { apptest.Main(m, "queue", &dbURL) }

// roomModule wires the room with a test buyer identity (a header) and a
// stand-in for the hold endpoint that asks the room first.
type roomModule struct{ room *Room }

func (m *roomModule) Name() string { return "room-test" }

func (m *roomModule) Register(r *app.Registrar) error {
	m.room = New(r.Core())
	buyer := func(c *gin.Context) (string, error) {
		b := c.GetHeader("X-Buyer")
		if b == "" {
			return "", app.Invalid("buyer_required", "no buyer")
		}
		return b, nil
	}
	Register(r, m.room, buyer)
	r.API(http.MethodPost, "/test-holds/:eventId", app.Public(), "gate probe", app.Handle(func(c *gin.Context, _ app.None) (gateProbe, error) {
		ev, _ := uuid.Parse(c.Param("eventId"))
		b, _ := buyer(c)
		err := m.room.Check(c.Request.Context(), app.TenantOf(c), ev, b, c.GetHeader("X-Queue-Token"))
		return gateProbe{Held: err == nil}, err
	}).Created()).NoBody()
	return nil
}

type gateProbe struct {
	Held bool `json:"held"`
}

// clock is a settable time source for the room.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func setup(t *testing.T, s Settings) (*apptest.Env, *Room, tenants.Tenant, *clock) {
	t.Helper()
	m := &roomModule{}
	env := apptest.Start(t, dbURL, apptest.Options{Modules: []app.Module{m}})
	tn := env.Tenant(t, apptest.UniqueSlug("onsale"))
	clk := &clock{t: time.Now()}
	m.room.now = clk.now
	if err := m.room.Configure(context.Background(), tn, s); err != nil {
		t.Fatal(err)
	}
	return env, m.room, tn, clk
}

func openRoom(rate, maxActive int) Settings {
	s := DefaultSettings(uuid.Must(uuid.NewV7()))
	// Exactly the configured rate and cap: these tests count admissions.
	s.Enabled, s.AdmitPerSecond, s.MaxActive, s.Adaptive = true, rate, maxActive, false
	return s
}

// Concurrent arrivals each get a distinct place, and admission follows those
// places exactly.
func TestArrivalOrderKeptUnderConcurrentJoins(t *testing.T) {
	s := openRoom(1000, 1000)
	env, room, tn, clk := setup(t, s)
	_ = env
	const buyers = 300
	positions := make([]int64, buyers)
	tickets := make([]string, buyers)
	var wg sync.WaitGroup
	for i := range buyers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := room.Join(context.Background(), tn, s.EventID, fmt.Sprintf("buyer-%d", i))
			if err != nil || st.State != "queued" {
				t.Errorf("join %d: %+v %v", i, st, err)
				return
			}
			positions[i], tickets[i] = st.Position, st.QueueToken
		}()
	}
	wg.Wait()
	seen := map[int64]bool{}
	for _, p := range positions {
		if p < 1 || p > buyers || seen[p] {
			t.Fatalf("position %d duplicated or out of range", p)
		}
		seen[p] = true
	}
	// Joining again keeps your place.
	again, err := room.Join(context.Background(), tn, s.EventID, "buyer-7")
	if err != nil || again.QueueToken != tickets[7] {
		t.Fatalf("rejoin got %+v, want ticket %s", again, tickets[7])
	}
	// Admit in small steps: at every step the admitted are exactly the earliest arrivals.
	byPosition := make([]int, buyers)
	for i, p := range positions {
		byPosition[p-1] = i
	}
	admitted := 0
	for admitted < buyers {
		clk.add(37 * time.Millisecond) // ~37 per step at 1000/s
		if _, err := room.AdmitOnce(context.Background()); err != nil {
			t.Fatal(err)
		}
		var now []int
		for i := range buyers {
			st, err := room.StatusOf(context.Background(), tn, s.EventID, fmt.Sprintf("buyer-%d", i), tickets[i])
			if err != nil {
				t.Fatal(err)
			}
			if st.State == "admitted" {
				now = append(now, i)
			}
		}
		sort.Slice(now, func(a, b int) bool { return positions[now[a]] < positions[now[b]] })
		for k, i := range now {
			if i != byPosition[k] {
				t.Fatalf("admitted buyer at position %d before position %d", positions[i], k+1)
			}
		}
		if len(now) <= admitted {
			t.Fatalf("no progress at %d admitted", admitted)
		}
		admitted = len(now)
	}
}

// The number of active buyers never exceeds the cap; lapsed slots make room;
// the rate is respected.
func TestAdmissionCapAndRate(t *testing.T) {
	s := openRoom(20, 10)
	s.IdleTimeout = 60
	_, room, tn, clk := setup(t, s)
	ctx := context.Background()
	for i := range 100 {
		if _, err := room.Join(ctx, tn, s.EventID, fmt.Sprintf("b%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	k := room.keys(tn, s.EventID)
	active := func() int64 {
		n, err := room.rdb.ZCount(ctx, k.active, fmt.Sprint(clk.now().UnixMilli()), "+inf").Result()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	room.AdmitOnce(ctx) // starts the rate clock
	clk.add(250 * time.Millisecond)
	n, _ := room.AdmitOnce(ctx)
	if n != 5 { // 20/s × 0.25 s
		t.Fatalf("admitted %d in 250ms at 20/s, want 5", n)
	}
	for range 20 {
		clk.add(time.Second)
		room.AdmitOnce(ctx)
		if a := active(); a > 10 {
			t.Fatalf("%d active buyers, cap 10", a)
		}
	}
	if a := active(); a != 10 {
		t.Fatalf("%d active, want the cap of 10 filled", a)
	}
	// With the cap full nobody got in for 19 s: waits are estimated from the
	// rate achieved over the last seconds (a few per second at most), not
	// from the configured 20/s.
	last, err := room.Join(ctx, tn, s.EventID, "b99")
	if err != nil || last.State != "queued" {
		t.Fatalf("b99: %+v %v", last, err)
	}
	st, err := room.StatusOf(ctx, tn, s.EventID, "b99", last.QueueToken)
	if atConfiguredRate := (st.Position + 19) / 20; err != nil || st.EstimatedWait < 5*atConfiguredRate {
		t.Fatalf("estimated wait %d for position %d while the room is full, %d at the configured rate (%v)",
			st.EstimatedWait, st.Position, atConfiguredRate, err)
	}
	// Idle buyers lose their slot after the timeout, and the queue moves on.
	clk.add(61 * time.Second)
	n, _ = room.AdmitOnce(ctx)
	if n != 10 || active() != 10 {
		t.Fatalf("after idle timeout admitted %d, active %d", n, active())
	}
	// Many admitters at once still respect the cap and the rate.
	clk.add(61 * time.Second)
	var wg sync.WaitGroup
	var mu sync.Mutex
	total := 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := room.AdmitOnce(ctx)
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			total += n
			mu.Unlock()
		}()
	}
	wg.Wait()
	if total != 10 || active() != 10 {
		t.Fatalf("8 concurrent admitters let %d through, %d active; want 10", total, active())
	}
}

// Access tokens are bound to tenant, event and buyer, expire, cannot be
// forged, and die with the slot.
func TestAccessTokens(t *testing.T) {
	s := openRoom(1000, 100)
	s.IdleTimeout, s.AccessTTL = 30, 600
	env, room, tn, clk := setup(t, s)
	ctx := context.Background()
	other := env.Tenant(t, apptest.UniqueSlug("other"))
	st, _ := room.Join(ctx, tn, s.EventID, "alice")
	room.AdmitOnce(ctx)
	clk.add(100 * time.Millisecond)
	room.AdmitOnce(ctx)
	st, err := room.StatusOf(ctx, tn, s.EventID, "alice", st.QueueToken)
	if err != nil || st.State != "admitted" || st.AccessToken == "" {
		t.Fatalf("alice not admitted: %+v %v", st, err)
	}
	tok := st.AccessToken
	if _, err := room.StatusOf(ctx, tn, s.EventID, "mallory", st.QueueToken); err != ErrForeignTicket {
		t.Fatalf("another buyer read alice's ticket: %v", err)
	}
	payload, sig, _ := strings.Cut(tok, ".")
	// One character of the claims changed (a replaced "a" was no change at
	// all when the payload had none).
	flip := map[byte]string{'A': "B"}[payload[5]]
	if flip == "" {
		flip = "A"
	}
	forged := payload[:5] + flip + payload[6:] + "." + sig
	cases := []struct {
		name   string
		tenant tenants.Tenant
		event  uuid.UUID
		buyer  string
		token  string
		ok     bool
	}{
		{"valid", tn, s.EventID, "alice", tok, true},
		{"no token", tn, s.EventID, "alice", "", false},
		{"garbage", tn, s.EventID, "alice", "not.a-token", false},
		{"forged", tn, s.EventID, "alice", forged, false},
		{"other buyer", tn, s.EventID, "mallory", tok, false},
		{"other event", tn, uuid.Must(uuid.NewV7()), "alice", tok, true}, // that event has no room: open sale
		{"other tenant", other, s.EventID, "alice", tok, true},           // no room there either
	}
	for _, c := range cases {
		err := room.Check(ctx, c.tenant, c.event, c.buyer, c.token)
		if (err == nil) != c.ok {
			t.Errorf("%s: err %v, want ok=%v", c.name, err, c.ok)
		}
	}
	// Give the other event and tenant a room: alice's token does not open them.
	s2 := s
	s2.EventID = uuid.Must(uuid.NewV7())
	if err := room.Configure(ctx, tn, s2); err != nil {
		t.Fatal(err)
	}
	if err := room.Configure(ctx, other, s); err != nil {
		t.Fatal(err)
	}
	if room.Check(ctx, tn, s2.EventID, "alice", tok) == nil || room.Check(ctx, other, s.EventID, "alice", tok) == nil {
		t.Fatal("token crossed events or tenants")
	}
	// Activity keeps the slot; idleness loses it.
	clk.add(20 * time.Second)
	if err := room.Check(ctx, tn, s.EventID, "alice", tok); err != nil {
		t.Fatalf("active buyer refused: %v", err)
	}
	clk.add(25 * time.Second) // 45 s after admission, 25 s after last activity
	if err := room.Check(ctx, tn, s.EventID, "alice", tok); err != nil {
		t.Fatalf("slot not extended by activity: %v", err)
	}
	clk.add(31 * time.Second)
	if err := room.Check(ctx, tn, s.EventID, "alice", tok); err != ErrQueueRequired {
		t.Fatalf("idle slot still open: %v", err)
	}
	// Expired tokens are refused even with a live slot.
	st, _ = room.Join(ctx, tn, s.EventID, "bob")
	clk.add(100 * time.Millisecond)
	room.AdmitOnce(ctx)
	st, _ = room.StatusOf(ctx, tn, s.EventID, "bob", st.QueueToken)
	clk.add(601 * time.Second)
	if err := room.Check(ctx, tn, s.EventID, "bob", st.AccessToken); err != ErrQueueRequired {
		t.Fatalf("expired token accepted: %v", err)
	}
}

// Without Redis the room admits about the configured fraction at random,
// never everyone, and those admitted can hold.
func TestRedisDownAdmitsOnlyAFraction(t *testing.T) {
	s := openRoom(100, 100)
	s.FallbackFraction = 0.2
	_, room, tn, _ := setup(t, s)
	redis.SetLogger(quietLogger{})
	room.rdb = redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialerRetries: 1, DialTimeout: 50 * time.Millisecond})
	defer room.rdb.Close()
	admitted := 0
	const arrivals = 1000
	for i := range arrivals {
		st, err := room.Join(context.Background(), tn, s.EventID, fmt.Sprintf("b%d", i))
		switch {
		case err == ErrUnavailable:
		case err != nil:
			t.Fatal(err)
		case st.State == "admitted" && st.Degraded:
			admitted++
			if err := room.Check(context.Background(), tn, s.EventID, fmt.Sprintf("b%d", i), st.AccessToken); err != nil {
				t.Fatalf("degraded admission cannot hold: %v", err)
			}
		default:
			t.Fatalf("unexpected %+v", st)
		}
	}
	if admitted < arrivals*12/100 || admitted > arrivals*28/100 {
		t.Fatalf("admitted %d of %d without Redis, want about 20%%", admitted, arrivals)
	}
	if err := room.Check(context.Background(), tn, s.EventID, "nobody", ""); err != ErrQueueRequired {
		t.Fatalf("no token while Redis is down: %v", err)
	}
}

// Through HTTP: settings need the right role, the gate answers 403
// queue_required, and an admitted buyer gets through.
func TestWaitingRoomOverHTTP(t *testing.T) {
	s := openRoom(1000, 100)
	env, room, tn, clk := setup(t, s)
	ev := s.EventID.String()
	owner := env.Login(t, tn.Slug, "owner@"+tn.Slug+".test")
	env.User(t, tn, "fin@"+tn.Slug+".test", policies.RoleFinance, "")
	if res := env.Do(t, http.MethodPut, tn.Slug, "/api/v1/events/"+ev+"/waiting-room", env.Login(t, tn.Slug, "fin@"+tn.Slug+".test"), map[string]any{"enabled": false}); res.Status != http.StatusForbidden {
		t.Fatalf("finance changed the room: %d", res.Status)
	}
	if res := env.Do(t, http.MethodPut, tn.Slug, "/api/v1/events/"+ev+"/waiting-room", owner, map[string]any{"enabled": true, "admit_per_second": 0.5}); res.Status != http.StatusBadRequest {
		t.Fatalf("fractional rate accepted: %d", res.Status)
	}
	if res := env.Do(t, http.MethodPut, tn.Slug, "/api/v1/events/"+ev+"/waiting-room", owner, map[string]any{"enabled": true, "admit_per_second": 1000, "max_active": 100}); res.Status != http.StatusOK {
		t.Fatalf("configure: %d %s", res.Status, res.Body)
	}
	room.mu.Lock()
	room.settings = map[string]cachedSettings{}
	room.mu.Unlock()

	hold := func(buyer, token string) apptest.Response {
		return env.Do(t, http.MethodPost, tn.Slug, "/api/v1/test-holds/"+ev, "", nil, "X-Buyer", buyer, "X-Queue-Token", token)
	}
	if res := hold("carol", ""); res.Status != http.StatusForbidden || res.Code() != "queue_required" {
		t.Fatalf("hold without queue: %d %s", res.Status, res.Body)
	}
	joined := env.Do(t, http.MethodPost, tn.Slug, "/api/v1/events/"+ev+"/queue", "", nil, "X-Buyer", "carol")
	var st Status
	joined.JSON(t, &st)
	if st.State != "queued" || st.Position != 1 || st.EstimatedWait < 1 || st.PollAfter < 1 {
		t.Fatalf("join: %s", joined.Body)
	}
	if res := env.Do(t, http.MethodGet, tn.Slug, "/api/v1/events/"+ev+"/queue/"+st.QueueToken, "", nil, "X-Buyer", "dave"); res.Code() != "queue_token_foreign" {
		t.Fatalf("dave read carol's place: %s", res.Body)
	}
	clk.add(100 * time.Millisecond)
	room.AdmitOnce(context.Background())
	clk.add(100 * time.Millisecond)
	room.AdmitOnce(context.Background())
	res := env.Do(t, http.MethodGet, tn.Slug, "/api/v1/events/"+ev+"/queue/"+st.QueueToken, "", nil, "X-Buyer", "carol")
	res.JSON(t, &st)
	if st.State != "admitted" {
		t.Fatalf("not admitted: %s", res.Body)
	}
	if res := hold("dave", st.AccessToken); res.Code() != "queue_required" {
		t.Fatalf("token reused by another buyer: %d", res.Status)
	}
	if res := hold("carol", st.AccessToken); res.Status != http.StatusCreated {
		t.Fatalf("admitted buyer refused: %d %s", res.Status, res.Body)
	}
	page := env.Do(t, http.MethodGet, tn.Slug, "/events/"+ev+"/queue", "", nil)
	if page.Status != http.StatusOK || !strings.Contains(string(page.Body), `id="wr-position"`) {
		t.Fatalf("waiting page: %d", page.Status)
	}
}

type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

// Far back in a big queue, buyers are told to ask rarely; near the front, often.
func TestPollAfterGrowsWithDistance(t *testing.T) {
	s := DefaultSettings(uuid.Must(uuid.NewV7()))
	s.AdmitPerSecond = 100
	near, far := queued("a", 5, 50000, s, -1), queued("b", 40000, 50000, s, -1)
	if near.PollAfter != 1 || far.PollAfter != 50 || far.EstimatedWait != 400 {
		t.Fatalf("near %+v far %+v", near, far)
	}
	// When the cap binds, the wait follows the rate actually achieved.
	if capped := queued("c", 1000, 50000, s, 20); capped.EstimatedWait != 50 {
		t.Fatalf("capped %+v", capped)
	}
	// A full room that let nobody in lately still has its front ask every
	// second (the next departures let them in), and the rest by distance.
	front, next := queued("d", 200, 50000, s, 0), queued("e", 201, 50000, s, 0)
	if front.PollAfter != 1 || next.PollAfter != 50 {
		t.Fatalf("full room: front %+v, next %+v", front, next)
	}
	// The longest interval follows the queue's length: 15 s for a small
	// crowd, a minute for a huge one.
	if small := queued("g", 5000, 6000, s, -1); small.PollAfter != 15 {
		t.Fatalf("queue of 6,000: poll after %d s, want 15", small.PollAfter)
	}
	if huge := queued("h", 90000, 200000, s, -1); huge.PollAfter != 60 {
		t.Fatalf("queue of 200,000: poll after %d s, want 60", huge.PollAfter)
	}
	// Nobody is told to come back after their slot would have lapsed.
	s.IdleTimeout = 30
	if far := queued("f", 40000, 50000, s, -1); far.PollAfter != 15 {
		t.Fatalf("idle timeout 30 s: poll after %d s, want 15", far.PollAfter)
	}
}
