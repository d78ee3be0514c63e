package app_test

import (
	"bufio"
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"marquee/app/apptest"
	"marquee/config"
	"marquee/internal/keyslot"
	"marquee/tenants"
)

// The core on a three-node Redis Cluster: the slot rule the scripts are
// written to, the sign-in throttle's scripts, pub/sub between instances,
// and deployments sharing the cluster. One cluster serves the subtests.
func TestRedisCluster(t *testing.T) {
	cluster := apptest.RedisCluster(t)

	t.Run("key slots agree with the cluster", func(t *testing.T) {
		rdb := clusterClient(t, cluster)
		keys := []string{"123456789", "foo", "{user1000}.following", "foo{}{bar}", "foo{{bar}}zap", "foo{bar}{zap}", "{}",
			"d:{login}:pair:abc:203.0.113.7", "d:wr:{acme:0190c3a4-7b5e-7000-8000-000000000001}:queue", "d:ops:live:{acme:e}:seq"}
		for _, k := range keys {
			want, err := rdb.ClusterKeySlot(context.Background(), k).Result()
			if err != nil {
				t.Fatal(err)
			}
			if got := keyslot.Of(k); int64(got) != want {
				t.Errorf("keyslot.Of(%q) = %d, CLUSTER KEYSLOT says %d", k, got, want)
			}
		}
	})

	t.Run("sign-in throttle", func(t *testing.T) {
		clock := &fakeClock{now: time.Now()}
		env, _ := startProbe(t, func(o *apptest.Options) {
			o.Clock = clock.Now
			o.Configure = func(c *config.Config) {
				apptest.OnRedisCluster(cluster)(c)
				c.TrustedProxies = []string{"127.0.0.1/32"}
			}
		})
		if !env.App.RedisCluster() {
			t.Fatal("the App is not on the cluster")
		}
		tn := env.Tenant(t, apptest.UniqueSlug("cl-throttle"))
		// Parallel guesses are each counted before their password is
		// checked (the attempt script, atomic on the cluster too): 5 pass
		// to the check, 35 are refused. Had the script failed (CROSSSLOT),
		// the throttle would go ahead unthrottled and all 40 be checked.
		var wg sync.WaitGroup
		statuses := make(chan int, 40)
		for range 40 {
			wg.Go(func() {
				res, err := env.Try(http.MethodPost, tn.Slug, "/api/v1/auth/login", "", map[string]string{"email": ownerOf(tn), "password": "wrong-password-1"},
					"X-Forwarded-For", "203.0.113.5")
				if err != nil {
					t.Error(err)
					return
				}
				statuses <- res.Status
			})
		}
		wg.Wait()
		close(statuses)
		counted := map[int]int{}
		for s := range statuses {
			counted[s]++
		}
		if counted[http.StatusUnauthorized] != 5 || counted[http.StatusTooManyRequests] != 35 {
			t.Fatalf("40 parallel guesses on the cluster: %v; want 5 checked and 35 refused", counted)
		}
		// The owner, from another address, signs in at once; success takes
		// its count back (the success script).
		wantStatus(t, apiSignIn(t, env, tn.Slug, ownerOf(tn), apptest.Password, "198.51.100.20"), http.StatusOK, "")
		// Spraying: one address over many accounts is held back as a whole.
		for i := range 30 {
			res := apiSignIn(t, env, tn.Slug, "staff"+strconv.Itoa(i)+"@"+tn.Slug+".test", "password-guess-1", "203.0.113.99")
			wantStatus(t, res, http.StatusUnauthorized, "invalid_credentials")
		}
		retryAfter(t, apiSignIn(t, env, tn.Slug, ownerOf(tn), apptest.Password, "203.0.113.99"))
		clock.Advance(2 * time.Hour)
		wantStatus(t, apiSignIn(t, env, tn.Slug, ownerOf(tn), apptest.Password, "203.0.113.99"), http.StatusOK, "")
	})

	t.Run("realtime across instances", func(t *testing.T) {
		on := func(o *apptest.Options) { o.Configure = apptest.OnRedisCluster(cluster) }
		one, _ := startProbe(t, on)
		two, _ := startProbe(t, on)
		a, b := one.Tenant(t, apptest.UniqueSlug("clrt-a")), one.Tenant(t, apptest.UniqueSlug("clrt-b"))
		stream := openTenantStream(t, one, a)
		if err := two.App.Realtime.Publish(context.Background(), b, "probe", "seat", map[string]string{"who": "b"}); err != nil {
			t.Fatal(err)
		}
		if err := two.App.Realtime.Publish(context.Background(), a, "probe", "seat", map[string]string{"who": "a"}); err != nil {
			t.Fatal(err)
		}
		if got := stream.next(t); got != `data: {"who":"a"}` {
			t.Fatalf("stream of %s on instance one got %q from instance two", a.Slug, got)
		}
	})

	t.Run("deployments sharing the cluster stay apart", func(t *testing.T) {
		deploymentsStayApart(t, apptest.OnRedisCluster(cluster))
	})
}

// Two deployments sharing one single Redis stay apart as they do on a
// cluster (the same checks as TestRedisCluster's).
func TestDeploymentsSharingARedisStayApart(t *testing.T) {
	deploymentsStayApart(t, func(*config.Config) {})
}

// deploymentsStayApart starts two deployments on one database (so the same
// chain exists in both) and one Redis: a stream of deployment one hears an
// event its other instance publishes, never one deployment two publishes
// on the same chain and topic, and deployment two's sign-in throttle knows
// nothing of deployment one's failures.
func deploymentsStayApart(t *testing.T, redisCfg func(*config.Config)) {
	t.Helper()
	first, second := apptest.UniqueDeployment(t, "share-a"), apptest.UniqueDeployment(t, "share-b")
	start := func(deployment string) *apptest.Env {
		env, _ := startProbe(t, func(o *apptest.Options) {
			o.Configure = func(c *config.Config) {
				redisCfg(c)
				c.DeploymentID = deployment
				c.TrustedProxies = []string{"127.0.0.1/32"}
			}
		})
		return env
	}
	one, oneAgain, two := start(first), start(first), start(second)
	tn := one.Tenant(t, apptest.UniqueSlug("shared"))
	if one.App.RedisKey("x") == two.App.RedisKey("x") {
		t.Fatalf("both deployments name keys %q", one.App.RedisKey("x"))
	}
	stream := openTenantStream(t, one, tn)
	if err := two.App.Realtime.Publish(context.Background(), tn, "probe", "seat", map[string]string{"from": "deployment two"}); err != nil {
		t.Fatal(err)
	}
	if err := oneAgain.App.Realtime.Publish(context.Background(), tn, "probe", "seat", map[string]string{"from": "deployment one"}); err != nil {
		t.Fatal(err)
	}
	if got := stream.next(t); got != `data: {"from":"deployment one"}` {
		t.Fatalf("deployment one's stream got %q first", got)
	}
	for range 5 {
		wantStatus(t, apiSignIn(t, one, tn.Slug, ownerOf(tn), "not-the-password", "203.0.113.40"), http.StatusUnauthorized, "invalid_credentials")
	}
	retryAfter(t, apiSignIn(t, one, tn.Slug, ownerOf(tn), apptest.Password, "203.0.113.40"))
	wantStatus(t, apiSignIn(t, two, tn.Slug, ownerOf(tn), apptest.Password, "203.0.113.40"), http.StatusOK, "")
}

type sseStream struct{ lines *bufio.Scanner }

// openTenantStream opens the probe's event stream of a chain on env and returns
// once the server has subscribed (its ": connected" line).
func openTenantStream(t *testing.T, env *apptest.Env, tn tenants.Tenant) *sseStream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, env.Server.URL+"/api/v1/probe/stream", nil)
	req.Host = tn.Slug + ".localhost"
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Body.Close() })
	if ct := res.Header.Get("Content-Type"); res.StatusCode != http.StatusOK || ct != "text/event-stream" {
		t.Fatalf("stream: %d %q", res.StatusCode, ct)
	}
	s := &sseStream{lines: bufio.NewScanner(res.Body)}
	for s.lines.Scan() {
		if s.lines.Text() == ": connected" {
			return s
		}
	}
	t.Fatalf("stream ended before it connected: %v", s.lines.Err())
	return nil
}

// next returns the stream's next data line.
func (s *sseStream) next(t *testing.T) string {
	t.Helper()
	for s.lines.Scan() {
		if l := s.lines.Text(); strings.HasPrefix(l, "data: ") {
			return l
		}
	}
	t.Fatalf("stream ended: %v", s.lines.Err())
	return ""
}

// clusterClient is a client of the test cluster, closed with the test.
func clusterClient(t *testing.T, cluster string) *redis.ClusterClient {
	t.Helper()
	opt, err := config.RedisClusterOptions(cluster)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClusterClient(opt)
	t.Cleanup(func() { rdb.Close() })
	return rdb
}
