package app_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"marquee/app/apptest"
	"marquee/config"
)

// openStream opens a live stream on addr for a tenant, sending no Accept
// header (as an attacker's client would), and reads it up to the connected
// frame. The connection stays open until ctx ends.
func openStream(ctx context.Context, addr, slug string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/api/v1/probe/stream", nil)
	if err != nil {
		return nil, err
	}
	req.Host = slug + ".localhost"
	res, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if res.StatusCode != http.StatusOK {
		return res, nil
	}
	lines := bufio.NewScanner(res.Body)
	for lines.Scan() {
		if lines.Text() == ": connected" {
			return res, nil
		}
	}
	res.Body.Close()
	return nil, fmt.Errorf("stream ended before its connected frame: %v", lines.Err())
}

// slowBody starts a login whose body announces 100 bytes, sends one and
// stalls. It returns the connection, to read the server's answer from.
func slowBody(addr, slug string) (net.Conn, error) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	_, err = fmt.Fprintf(conn, "POST /api/v1/auth/login HTTP/1.1\r\nHost: %s.localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{", slug)
	return conn, err
}

// One chain cannot be taken offline by anonymous long-lived connections:
// 100 live streams (no Accept header) and 100 stalled request bodies hold
// none of its 16 in-flight slots, so its normal requests are still served,
// and the stalled bodies are cut off with 408 when their deadline passes.
func TestStreamsAndSlowBodiesCannotTakeAChainOffline(t *testing.T) {
	env, _ := startProbe(t, func(o *apptest.Options) {
		o.Configure = func(c *config.Config) {
			c.TenantMaxInFlight, c.MaxInFlight, c.ShedWait = 16, 128, 250*time.Millisecond
			c.StreamsPerClient = 1000
			c.BodyReadTimeout = 2 * time.Second
		}
	})
	tn := env.Tenant(t, apptest.UniqueSlug("dos"))
	addr := env.Server.Listener.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	for i := range 100 {
		res, err := openStream(ctx, addr, tn.Slug)
		if err != nil {
			t.Fatalf("stream %d: %v", i, err)
		}
		if res.StatusCode != http.StatusOK {
			t.Fatalf("stream %d: status %d", i, res.StatusCode)
		}
		defer res.Body.Close()
	}
	var stalled []net.Conn
	for i := range 100 {
		conn, err := slowBody(addr, tn.Slug)
		if err != nil {
			t.Fatalf("slow body %d: %v", i, err)
		}
		defer conn.Close()
		stalled = append(stalled, conn)
	}
	// Everything above is open at once; the chain still answers.
	for i := range 40 {
		res := env.Do(t, http.MethodGet, tn.Slug, "/api/v1/probe/ping", "", nil)
		if res.Status != http.StatusOK {
			t.Fatalf("request %d while 100 streams and 100 slow bodies are open: %d %s", i, res.Status, res.Body)
		}
	}
	login := env.Do(t, http.MethodPost, tn.Slug, "/api/v1/auth/login", "", map[string]string{"email": ownerOf(tn), "password": apptest.Password})
	wantStatus(t, login, http.StatusOK, "")

	// A stalled body is answered 408 and its connection closed.
	_ = stalled[0].SetReadDeadline(time.Now().Add(10 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(stalled[0]), nil)
	if err != nil {
		t.Fatalf("stalled body: no answer: %v", err)
	}
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(body), `"request_timeout"`) {
		t.Fatalf("stalled body: %d %s", res.StatusCode, body)
	}
}

// Streams are bounded per client address instead: past the bound a stream
// is refused with 429, and closing one makes room again.
func TestStreamsAreLimitedPerClientAddress(t *testing.T) {
	env, _ := startProbe(t, func(o *apptest.Options) {
		o.Configure = func(c *config.Config) { c.StreamsPerClient = 3 }
	})
	tn := env.Tenant(t, apptest.UniqueSlug("streams"))
	addr := env.Server.Listener.Addr().String()
	var cancels []context.CancelFunc
	for i := range 3 {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		cancels = append(cancels, cancel)
		res, err := openStream(ctx, addr, tn.Slug)
		if err != nil || res.StatusCode != http.StatusOK {
			t.Fatalf("stream %d: %v %v", i, res, err)
		}
	}
	refused := env.Do(t, http.MethodGet, tn.Slug, "/api/v1/probe/stream", "", nil)
	wantStatus(t, refused, http.StatusTooManyRequests, "rate_limited")
	if refused.Header.Get("Retry-After") == "" {
		t.Fatal("refused stream without Retry-After")
	}
	cancels[0]()
	apptest.Eventually(t, 5*time.Second, "a stream slot freed by the closed stream", func() bool {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		res, err := openStream(ctx, addr, tn.Slug)
		return err == nil && res.StatusCode == http.StatusOK
	})
}

// On shutdown, open streams end at once with a reconnect hint instead of
// holding the server open until the grace period runs out.
func TestShutdownEndsStreamsAtOnce(t *testing.T) {
	env, _ := startProbe(t, func(o *apptest.Options) {
		o.Configure = func(c *config.Config) { c.ShutdownGrace = time.Minute }
	})
	tn := env.Tenant(t, apptest.UniqueSlug("drain"))
	ln, cancel, served := serveInBackground(t, env)
	res, err := openStream(context.Background(), ln.Addr().String(), tn.Slug)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("stream: %v %v", res, err)
	}
	defer res.Body.Close()
	cancel()
	rest, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("stream did not end cleanly: %v", err)
	}
	if !strings.Contains(string(rest), "retry: ") {
		t.Fatalf("stream ended without a reconnect hint: %q", rest)
	}
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("serve: %v", err)
		}
	case <-time.After(10 * time.Second): // the grace is a minute: a stream held it open
		t.Fatal("server still shutting down 10 s after the signal")
	}
}

// A client that asks for a large answer and stops reading holds a
// connection, never one of its chain's slots: the answer is sent after the
// slot is given back.
func TestSlowReadersDoNotHoldSlots(t *testing.T) {
	env, _ := startProbe(t, func(o *apptest.Options) {
		o.Configure = func(c *config.Config) { c.TenantMaxInFlight, c.MaxInFlight, c.ShedWait = 2, 128, 100*time.Millisecond }
	})
	tn := env.Tenant(t, apptest.UniqueSlug("slowread"))
	addr := env.Server.Listener.Addr().String()
	for i := range 6 {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := fmt.Fprintf(conn, "GET /api/v1/probe/big HTTP/1.1\r\nHost: %s.localhost\r\n\r\n", tn.Slug); err != nil {
			t.Fatal(err)
		}
		// The answer has begun: from here on its writer blocks on a
		// client that reads no further.
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := conn.Read(make([]byte, 1)); err != nil {
			t.Fatalf("slow reader %d: no answer began: %v", i, err)
		}
	}
	for i := range 20 {
		if res := env.Do(t, http.MethodGet, tn.Slug, "/api/v1/probe/ping", "", nil); res.Status != http.StatusOK {
			t.Fatalf("request %d while six clients stopped reading: %d %s", i, res.Status, res.Body)
		}
	}
}
