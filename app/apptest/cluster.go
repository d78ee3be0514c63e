package apptest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"marquee/config"
	"marquee/internal/keyslot"
)

// RedisClusterPorts are the loopback ports of the nodes RedisCluster starts.
var RedisClusterPorts = []int{7101, 7102, 7103}

// RedisCluster starts a three-node Redis Cluster on loopback (one master
// per port of RedisClusterPorts, no replicas, in a temporary directory),
// waits until every node reports cluster_state:ok, and returns its seed
// nodes in MARQUEE_REDIS_CLUSTER's form. The nodes are killed when the test
// ends, passed or failed, and with the test process should it die first.
//
// The ports are fixed, so test processes take the cluster in turn: a lock
// file held for the test's life makes a second package wait, not collide.
// The test is skipped only when redis-server is not installed.
func RedisCluster(t testing.TB) string {
	t.Helper()
	server, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server is not installed (deployments/local/services.sh installs it): no Redis Cluster to test on")
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Skip("redis-cli is not installed (it comes with redis-server): no Redis Cluster to test on")
	}
	unlock := lockClusterPorts(t)
	t.Cleanup(unlock) // runs last: the nodes are gone before the next process may start its own
	addrs := make([]string, len(RedisClusterPorts))
	for i, port := range RedisClusterPorts {
		addrs[i] = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if ln, err := net.Listen("tcp", addrs[i]); err != nil {
			t.Fatalf("Redis Cluster test port %s is taken (%v): stop what listens there (a node left behind: redis-cli -p %d shutdown nosave)", addrs[i], err, port)
		} else {
			_ = ln.Close()
		}
	}
	dir := t.TempDir()
	for _, port := range RedisClusterPorts {
		p := strconv.Itoa(port)
		cmd := exec.Command(server, "--port", p, "--bind", "127.0.0.1", "--cluster-enabled", "yes",
			"--cluster-config-file", filepath.Join(dir, "nodes-"+p+".conf"), "--cluster-node-timeout", "5000",
			"--save", "", "--appendonly", "no", "--daemonize", "no", "--dir", dir, "--logfile", filepath.Join(dir, "redis-"+p+".log"))
		// The kernel kills the node if the test process dies without its
		// cleanups (a timeout's panic, a kill): no cluster outlives its test.
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			t.Fatalf("start redis-server on %s: %v", p, err)
		}
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, addr := range addrs {
		if err := untilNode(ctx, addr, func(c *redis.Client) error { return c.Ping(ctx).Err() }); err != nil {
			t.Fatalf("Redis Cluster node %s did not answer: %v (its log: %s)", addr, err, dir)
		}
	}
	create := exec.CommandContext(ctx, cli, append(append([]string{"--cluster", "create"}, addrs...), "--cluster-replicas", "0", "--cluster-yes")...)
	if out, err := create.CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	for _, addr := range addrs {
		err := untilNode(ctx, addr, func(c *redis.Client) error {
			info, err := c.ClusterInfo(ctx).Result()
			if err != nil {
				return err
			}
			if !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_known_nodes:"+strconv.Itoa(len(addrs))) {
				return errors.New("cluster not formed yet")
			}
			return nil
		})
		if err != nil {
			t.Fatalf("Redis Cluster node %s never reported cluster_state:ok: %v", addr, err)
		}
	}
	return strings.Join(addrs, ",")
}

// untilNode retries check against one node until it passes or ctx ends,
// waiting a little longer after each failure.
func untilNode(ctx context.Context, addr string, check func(*redis.Client) error) error {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second})
	defer c.Close()
	wait := 5 * time.Millisecond
	for {
		err := check(c)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-time.After(wait):
		}
		wait = min(wait*2, 200*time.Millisecond)
	}
}

// lockClusterPorts takes the lock on RedisClusterPorts shared by every test
// process on the machine, waiting for it, and returns its release.
func lockClusterPorts(t testing.TB) func() {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "marquee-test-redis-cluster.lock"), os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		t.Fatalf("Redis Cluster lock: %v", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		_ = f.Close()
		t.Fatalf("Redis Cluster lock: %v", err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		_ = f.Close()
	}
}

// OnRedisCluster is an Options.Configure that puts an App on the cluster
// RedisCluster returned instead of the test Redis.
func OnRedisCluster(cluster string) func(*config.Config) {
	return func(c *config.Config) {
		c.RedisCluster = cluster
		c.RedisURL = ""
	}
}

// OneSlot fails the test unless every key hashes to the same cluster slot
// (keyslot.Of, which the cluster tests check against CLUSTER KEYSLOT).
func OneSlot(t testing.TB, what string, keys ...string) {
	t.Helper()
	if len(keys) < 2 {
		t.Fatalf("%s: %d keys; a slot check needs two or more", what, len(keys))
	}
	want := keyslot.Of(keys[0])
	for _, k := range keys[1:] {
		if got := keyslot.Of(k); got != want {
			t.Errorf("%s: key %q is in slot %d, %q in slot %d: a Redis Cluster refuses them together (CROSSSLOT)", what, keys[0], want, k, got)
		}
	}
}
