// Package opsbench measures the live dashboard: fan-out of one event's
// stream to many viewers over two server instances (SSE or WebSocket),
// POS webhooks under duplicates and reordering, and occupancy accuracy
// under a simulated show. `marquee bench ops` and the ops benchmarks both
// run it.
package opsbench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// FanoutOptions shape a fan-out run.
type FanoutOptions struct {
	Viewers   int    // spread evenly over the instances
	Seconds   int    // how long updates are published
	Rate      int    // updates per second
	Transport string // "sse" or "ws"
}

// Stream is an event's stream as the bench sees it: the instances' base
// URLs, the chain and a token allowed to read the dashboard, and the hub
// calls that publish (with the publish time in the data) and read the
// position.
type Stream struct {
	Bases   []string
	Slug    string
	Token   string
	Event   string
	Publish func(ctx context.Context, data any) (int64, error)
	Seq     func(ctx context.Context) (int64, error)
	// Subscriptions is the first instance's count of Redis subscriptions.
	Subscriptions func() int
}

// FanoutResult is what a run measured.
type FanoutResult struct {
	Transport     string
	Viewers       int
	Subscriptions int
	Updates       int
	Deliveries    int
	P50, P99, Max time.Duration
	Lost, Gaps    int
	KiBPerViewer  float64 // heap growth per connected viewer, server and client sides in one process
}

func (r FanoutResult) String() string {
	return fmt.Sprintf("fan-out %-3s: %d viewers over 2 instances (Redis subscriptions on instance A: %d), %d updates: %d deliveries, p50 %v, p99 %v, max %v, lost %d, viewers with a gap %d, heap %.1f KiB/viewer (server+client)",
		r.Transport, r.Viewers, r.Subscriptions, r.Updates, r.Deliveries, r.P50.Round(10*time.Microsecond), r.P99.Round(10*time.Microsecond),
		r.Max.Round(10*time.Microsecond), r.Lost, r.Gaps, r.KiBPerViewer)
}

type received struct {
	lat   []time.Duration
	seqs  []int64 // every numbered message, the bench's and others (the sampler's)
	bench int
}

// Fanout connects the viewers, publishes Rate updates a second for Seconds
// and measures publish→receipt latency and lost or out-of-order updates
// (sequence numbers) per viewer.
func Fanout(ctx context.Context, o FanoutOptions, s Stream) (FanoutResult, error) {
	res := FanoutResult{Transport: o.Transport, Viewers: o.Viewers}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: o.Viewers + 10}}
	runtime.GC()
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	start, err := s.Seq(ctx)
	if err != nil {
		return res, err
	}
	total := o.Rate * o.Seconds
	results := make([]received, o.Viewers)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var ready, done sync.WaitGroup
	errs := make(chan error, o.Viewers)
	for i := range o.Viewers {
		base := s.Bases[i%len(s.Bases)]
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			var err error
			if o.Transport == "ws" {
				err = viewWS(ctx, client, base, s, start, total, &results[i], ready.Done)
			} else {
				err = viewSSE(ctx, client, base, s, start, total, &results[i], ready.Done)
			}
			if err != nil && ctx.Err() == nil {
				errs <- fmt.Errorf("viewer %d: %w", i, err)
			}
		}()
	}
	ready.Wait()
	select {
	case err := <-errs:
		return res, err
	default:
	}
	runtime.GC()
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	res.KiBPerViewer = float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(o.Viewers) / 1024
	res.Subscriptions = s.Subscriptions()

	tick := time.NewTicker(time.Second / time.Duration(o.Rate))
	for n := range total {
		<-tick.C
		if _, err := s.Publish(ctx, map[string]int64{"at": time.Now().UnixNano(), "n": int64(n)}); err != nil {
			tick.Stop()
			return res, err
		}
	}
	tick.Stop()
	finished := make(chan struct{})
	go func() { done.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(15 * time.Second):
		cancel()
		<-finished
	}
	var all []time.Duration
	for _, r := range results {
		all = append(all, r.lat...)
		res.Lost += total - r.bench
		for k := range r.seqs {
			if r.seqs[k] != start+int64(k)+1 {
				res.Gaps++
				break
			}
		}
	}
	slices.Sort(all)
	pct := func(p float64) time.Duration {
		if len(all) == 0 {
			return 0
		}
		return all[min(len(all)-1, int(float64(len(all))*p))]
	}
	res.Updates, res.Deliveries, res.P50, res.P99, res.Max = total, len(all), pct(0.50), pct(0.99), pct(1)
	return res, nil
}

// record notes one received message; it answers whether the viewer has all.
func (r *received) record(raw []byte, total int) bool {
	now := time.Now()
	var m struct {
		Seq  int64           `json:"seq"`
		Type string          `json:"type"`
		Data json.RawMessage `json:"data"`
	}
	if json.Unmarshal(raw, &m) != nil || m.Type == "connected" || m.Type == "reset" {
		return false
	}
	// The stream carries the event's other changes too (the minute
	// sampler's occupancy, whose data is a list): all count for gaps, the
	// bench's for latency.
	r.seqs = append(r.seqs, m.Seq)
	var data struct {
		At int64 `json:"at"`
	}
	if m.Type != "bench" || json.Unmarshal(m.Data, &data) != nil {
		return false
	}
	r.bench++
	r.lat = append(r.lat, now.Sub(time.Unix(0, data.At)))
	return r.bench >= total
}

func viewSSE(ctx context.Context, client *http.Client, base string, s Stream, start int64, total int, r *received, ready func()) error {
	req, err := http.NewRequestWithContext(ctx, "GET", base+"/api/v1/events/"+s.Event+"/dashboard/stream?since="+strconv.FormatInt(start, 10), nil)
	if err != nil {
		ready()
		return err
	}
	req.Header.Set("X-Tenant", s.Slug)
	req.Header.Set("Authorization", "Bearer "+s.Token)
	resp, err := client.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		ready()
		if err == nil {
			resp.Body.Close()
			err = fmt.Errorf("stream: HTTP %d", resp.StatusCode)
		}
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	signalled := false
	for sc.Scan() {
		line := sc.Text()
		if !signalled && strings.HasPrefix(line, ": connected") {
			signalled = true
			ready()
		}
		if data, ok := strings.CutPrefix(line, "data: "); ok && r.record([]byte(data), total) {
			return nil
		}
	}
	if !signalled {
		ready()
	}
	return sc.Err()
}

func viewWS(ctx context.Context, client *http.Client, base string, s Stream, start int64, total int, r *received, ready func()) error {
	url := "ws" + strings.TrimPrefix(base, "http") + "/api/v1/events/" + s.Event + "/dashboard/ws?after=" + strconv.FormatInt(start, 10)
	conn, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPClient: client,
		HTTPHeader: http.Header{"X-Tenant": {s.Slug}, "Authorization": {"Bearer " + s.Token}}})
	if err != nil {
		ready()
		return err
	}
	defer func() { _ = conn.CloseNow() }()
	// The run's end closes the socket, as it ends the SSE requests; the
	// reads themselves carry no context, as a browser's do not.
	stop := context.AfterFunc(ctx, func() { _ = conn.CloseNow() })
	defer stop()
	_, _, err = conn.Read(context.Background()) // the "connected" frame
	ready()
	if err != nil {
		return err
	}
	for {
		_, raw, err := conn.Read(context.Background())
		if err != nil {
			return err
		}
		if r.record(raw, total) {
			return conn.Close(websocket.StatusNormalClosure, "")
		}
	}
}
