package main

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"marquee/app/apptest"
)

var dbURL string

func TestMain(m *testing.M) { apptest.Main(m, "main", &dbURL) }

// buildBinary compiles the CLI once per test run.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "marquee")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

func run(t *testing.T, bin string, env []string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func TestCLI(t *testing.T) {
	bin := buildBinary(t)
	env := []string{
		"MARQUEE_DATABASE_URL=" + dbURL,
		"MARQUEE_REDIS_URL=" + apptest.RedisURL(),
		"MARQUEE_SECRET_KEY=cli-test-secret-key-long-enough-0123456789",
		"MARQUEE_PASSWORD_COST=10",
		"MARQUEE_OWNER_PASSWORD=cli-owner-password-1",
	}
	must := func(args ...string) string {
		t.Helper()
		out, err := run(t, bin, env, args...)
		if err != nil {
			t.Fatalf("marquee %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	must("migrate")
	must("tenant", "create", "cli-chain", "--name", "CLI Chain", "--owner-email", "boss@cli.test")
	if out, err := run(t, bin, env, "tenant", "create", "cli-chain", "--owner-email", "boss@cli.test"); err == nil {
		t.Fatalf("duplicate tenant created: %s", out)
	}
	if out, err := run(t, bin, env, "tenant", "create", "Bad_Slug", "--owner-email", "x@cli.test"); err == nil || !strings.Contains(out, "slug") {
		t.Fatalf("bad slug accepted: %s", out)
	}
	must("tenant", "suspend", "cli-chain")
	if list := must("tenant", "list"); !strings.Contains(list, "cli-chain") || !strings.Contains(list, "suspended") {
		t.Fatalf("list: %s", list)
	}
	must("tenant", "resume", "cli-chain")
	if mig := must("migrate"); !strings.Contains(mig, "tenant 1 of 1") || !strings.Contains(mig, "t_cli_chain") {
		t.Fatalf("migrate progress: %s", mig)
	}
	if v := must("ledger", "verify", "cli-chain"); !strings.Contains(v, "verifies: 0 entries") {
		t.Fatalf("verify: %s", v)
	}
}

// Unreachable services are named, with their address and how to start them,
// and no stack trace.
func TestUnreachableServicesAreExplained(t *testing.T) {
	bin := buildBinary(t)
	closed := closedPort(t)
	out, err := run(t, bin, []string{"MARQUEE_DATABASE_URL=postgres://postgres@" + closed + "/marquee?sslmode=disable&connect_timeout=2"}, "demo")
	if err == nil || !strings.Contains(out, "cannot reach PostgreSQL at "+closed) || !strings.Contains(out, "deployments/local/services.sh") || strings.Contains(out, "goroutine") {
		t.Fatalf("postgres down: %v\n%s", err, out)
	}
	out, err = run(t, bin, []string{"MARQUEE_DATABASE_URL=" + dbURL, "MARQUEE_REDIS_URL=redis://" + closed + "/0", "MARQUEE_DEVELOPMENT=true"}, "serve")
	if err == nil || !strings.Contains(out, "cannot reach Redis at "+closed) || strings.Contains(out, "goroutine") {
		t.Fatalf("redis down: %v\n%s", err, out)
	}
	// PostgreSQL up, the database missing: say so, and how to create it.
	missing := strings.Replace(dbURL, "marquee_test_main", "marquee_test_main_missing", 1)
	t.Cleanup(func() {
		if _, drop, err := apptest.Database("main_missing"); err == nil {
			drop()
		}
	})
	out, err = run(t, bin, []string{"MARQUEE_DATABASE_URL=" + missing, "MARQUEE_DEVELOPMENT=true"}, "serve")
	if err == nil || !strings.Contains(out, "is up, but it has no database") || !strings.Contains(out, "marquee migrate") || strings.Contains(out, "services.sh") {
		t.Fatalf("database missing: %v\n%s", err, out)
	}
	// migrate creates it.
	if out, err := run(t, bin, []string{"MARQUEE_DATABASE_URL=" + missing, "MARQUEE_REDIS_URL=" + apptest.RedisURL()}, "migrate"); err != nil {
		t.Fatalf("migrate into a missing database: %v\n%s", err, out)
	}
}

// serve and worker refuse to start with the public development secrets
// (anyone could sign payment webhooks or order links with them) and say
// which variables to set; development mode lets a machine of one's own run
// them, and with real secrets the test-mode payment route does not exist.
func TestServingRefusesDevelopmentSecrets(t *testing.T) {
	bin := buildBinary(t)
	base := []string{"MARQUEE_DATABASE_URL=" + dbURL, "MARQUEE_REDIS_URL=" + apptest.RedisURL(), "MARQUEE_PASSWORD_COST=10"}
	for _, role := range []string{"serve", "worker"} {
		out, err := run(t, bin, base, role)
		if err == nil {
			t.Fatalf("%s started with the development secrets:\n%s", role, out)
		}
		for _, want := range []string{"MARQUEE_SECRET_KEY", "MARQUEE_STRIPE_SECRET_KEY", "MARQUEE_STRIPE_WEBHOOK_SECRET", "MARQUEE_DEVELOPMENT"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s: refusal does not name %s:\n%s", role, want, out)
			}
		}
	}
	// One development secret left is enough to refuse.
	partial := append(append([]string(nil), base...), "MARQUEE_SECRET_KEY=a-real-secret-key-long-enough-0123456789",
		"MARQUEE_STRIPE_SECRET_KEY=sk_test_realdeploymentkey")
	if out, err := run(t, bin, partial, "serve"); err == nil || !strings.Contains(out, "MARQUEE_STRIPE_WEBHOOK_SECRET") || strings.Contains(out, "MARQUEE_SECRET_KEY is") {
		t.Fatalf("serve with the development webhook secret: %v\n%s", err, out)
	}

	real := append(partial, "MARQUEE_STRIPE_WEBHOOK_SECRET=whsec_real_deployment_secret", "MARQUEE_OWNER_PASSWORD=cli-owner-password-1")
	for _, args := range [][]string{{"migrate"}, {"tenant", "create", "prod-chain", "--owner-email", "boss@prod.test"}} {
		if out, err := run(t, bin, real, args...); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	addr := closedPort(t)
	var logs lockedBuffer
	startBackground(t, bin, append(real, "MARQUEE_HTTP_ADDR="+addr), &logs, "serve")
	waitUp(t, "http://"+addr+"/healthz", "localhost", 30*time.Second, &logs)
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/api/v1/openapi.json", nil)
	req.Host = "prod-chain.localhost"
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	doc, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.Contains(string(doc), "/orders/{orderId}") {
		t.Fatalf("openapi: %d %s", res.StatusCode, doc)
	}
	if strings.Contains(string(doc), "test-pay") {
		t.Fatal("the test-mode payment route exists outside development mode")
	}
}

func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// The demo comes up on its own database with both chains and answers.
func TestDemoServes(t *testing.T) {
	bin := buildBinary(t)
	addr := closedPort(t)
	u, drop, err := apptest.Database("demo_cli")
	if err != nil {
		t.Fatal(err)
	}
	// Cleanups, not defers: they run after the background process stops.
	t.Cleanup(drop)
	// demo creates its database: point it at a name that does not exist yet.
	u = strings.Replace(u, "marquee_test_demo_cli", "marquee_test_demo_cli_new", 1)
	t.Cleanup(func() {
		_, dropNew, err := apptest.Database("demo_cli_new")
		if err == nil {
			dropNew()
		}
	})
	var out lockedBuffer
	startBackground(t, bin, []string{"MARQUEE_DATABASE_URL=" + u, "MARQUEE_REDIS_URL=" + apptest.RedisURL(), "MARQUEE_HTTP_ADDR=" + addr,
		"MARQUEE_PASSWORD_COST=10"}, &out, "demo")
	waitUp(t, "http://"+addr+"/portal/login", "acme.localhost", 90*time.Second, &out)
	for _, want := range []string{"owner@acme.test", "owner@globex.test", "support@marquee.test", "demo-password-1"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %s", want)
		}
	}
}

// startBackground runs the CLI with args until the test ends, when it is
// interrupted as a deployment stops it; its output goes to out.
func startBackground(t *testing.T, bin string, env []string, out *lockedBuffer, args ...string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
	})
}

// waitUp asks url (on host) until it answers 200, failing with the server's
// output if it does not within the given time.
func waitUp(t *testing.T, url, host string, within time.Duration, logs *lockedBuffer) {
	t.Helper()
	up := apptest.Poll(within, func() bool {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.Host = host
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	})
	if !up {
		t.Fatalf("%s did not come up:\n%s", url, logs.String())
	}
}

// lockedBuffer collects a child's output while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// `bench onsale --target` drives a deployment started on its own (serve and
// worker processes): a small on-sale sells out and checks out.
func TestBenchTargetsARunningDeployment(t *testing.T) {
	stripe := apptest.StripeMock(t)
	bin := buildBinary(t)
	u, drop, err := apptest.Database("bench_target")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(drop) // after the deployment stops
	addr := closedPort(t)
	env := []string{
		"MARQUEE_DATABASE_URL=" + u,
		"MARQUEE_REDIS_URL=" + apptest.RedisURL(),
		"MARQUEE_SECRET_KEY=bench-target-secret-key-long-enough-0123456789",
		"MARQUEE_PASSWORD_COST=10",
		"MARQUEE_HTTP_ADDR=" + addr,
		"MARQUEE_STRIPE_API_URL=" + stripe,
		"MARQUEE_STRIPE_SECRET_KEY=sk_test_benchtarget",
		"MARQUEE_STRIPE_WEBHOOK_SECRET=whsec_bench_target",
	}
	if out, err := run(t, bin, env, "migrate"); err != nil {
		t.Fatalf("migrate: %v\n%s", err, out)
	}
	var logs lockedBuffer
	startBackground(t, bin, env, &logs, "serve")
	startBackground(t, bin, env, &logs, "worker")
	waitUp(t, "http://"+addr+"/healthz", addr, 30*time.Second, &logs)
	out, err := run(t, bin, env, "bench", "onsale", "--target", "http://"+addr,
		"--seats", "30", "--ga", "10", "--buyers", "100", "--concurrency", "16", "--db-conns", "8",
		"--arrival", "500ms", "--admit-rate", "100", "--max-active", "30", "--phase", "300ms", "--max-duration", "60s",
		"--out", t.TempDir())
	if err != nil {
		t.Fatalf("bench --target: %v\n%s\nserver:\n%s", err, out, logs.String())
	}
	for _, want := range []string{"sold 40 of 40", "database check OK", "API/raw ="} {
		if !strings.Contains(out, want) {
			t.Errorf("bench output lacks %q:\n%s", want, out)
		}
	}
	if out, err := run(t, bin, env, "bench", "onsale", "--target", "localhost:1"); err == nil || !strings.Contains(out, "--target") {
		t.Errorf("a target without a scheme was accepted: %v\n%s", err, out)
	}
}
