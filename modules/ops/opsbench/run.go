package opsbench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/modules/ops"
	"marquee/modules/ops/fakepos"
)

// Options shape `marquee bench ops`.
type Options struct {
	Viewers, Seconds, Rate int // fan-out
	Sales, Senders         int // POS
	DBConns                int
	// Parts of the run to leave out.
	SkipFanout, SkipPOS, SkipAccuracy bool
}

// Defaults are the figures the issue asks for.
func Defaults() Options {
	return Options{Viewers: 500, Seconds: 10, Rate: 20, Sales: 2000, Senders: 32, DBConns: 40}
}

// Run creates a bench chain on the server at bases[0] (a, whose ops module
// is mod; bases[1] is a second instance over the same database and Redis)
// and measures the fan-out over SSE and WebSocket in the same run, POS
// webhooks, and occupancy accuracy, printing each figure to out.
func Run(ctx context.Context, a *app.App, mod *ops.Module, bases []string, o Options, out io.Writer) error {
	slug := fmt.Sprintf("ops-%d", time.Now().UnixNano()%1e9)
	password := uuid.NewString()
	t, err := a.CreateTenant(ctx, slug, "Ops Bench", "owner@"+slug+".test", "Bench Owner", password)
	if err != nil {
		return err
	}
	client := &http.Client{Timeout: 60 * time.Second}
	call := func(method, path, token string, body any, into any) error {
		var rd io.Reader
		if body != nil {
			raw, _ := json.Marshal(body)
			rd = bytes.NewReader(raw)
		}
		req, err := http.NewRequestWithContext(ctx, method, bases[0]+path, rd)
		if err != nil {
			return err
		}
		req.Header.Set("X-Tenant", slug)
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := client.Do(req)
		if err != nil {
			return err
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		if res.StatusCode/100 != 2 {
			return fmt.Errorf("%s %s: HTTP %d %s", method, path, res.StatusCode, raw)
		}
		if into != nil {
			return json.Unmarshal(raw, into)
		}
		return nil
	}
	var login struct{ Token string }
	if err := call("POST", "/api/v1/auth/login", "", map[string]string{"email": "owner@" + slug + ".test", "password": password}, &login); err != nil {
		return err
	}
	tok := login.Token
	var venue, stage, stage2, live, past struct{ ID string }
	if err := call("POST", "/api/v1/venues", tok, map[string]any{"name": "Bench Arena", "timezone": "Europe/Berlin", "capacity": 40000}, &venue); err != nil {
		return err
	}
	if err := call("POST", "/api/v1/venues/"+venue.ID+"/stages", tok, map[string]any{"name": "Main", "capacity": 40000, "type": "main"}, &stage); err != nil {
		return err
	}
	// The simulated show is on a second stage: its past night overlaps the live one.
	if err := call("POST", "/api/v1/venues/"+venue.ID+"/stages", tok, map[string]any{"name": "Second", "capacity": 40000, "type": "main"}, &stage2); err != nil {
		return err
	}
	now := time.Now().UTC().Truncate(time.Minute)
	liveStart, pastStart := now.Add(-30*time.Minute), now.Add(-181*time.Minute)
	event := func(title, stage string, start time.Time, into any) error {
		return call("POST", "/api/v1/venues/"+venue.ID+"/events", tok, map[string]any{"stage_id": stage, "title": title, "category": "concert",
			"status": "confirmed", "starts_at": start.Format(time.RFC3339), "ends_at": start.Add(4 * time.Hour).Format(time.RFC3339)}, into)
	}
	if err := event("Live night", stage.ID, liveStart, &live); err != nil {
		return err
	}
	if err := call("PUT", "/api/v1/events/"+live.ID+"/occupancy/zones", tok, map[string]any{"zones": []any{map[string]any{"name": "Floor", "capacity": 30000}}}, nil); err != nil {
		return err
	}
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Fprintf(out, "bench ops: chain %s, two instances %s; load average at start %s\n", slug, strings.Join(bases, " and "), strings.TrimSpace(string(load)))

	// Fan-out, SSE then WebSocket, one event, the same servers.
	hub := mod.Service().Hub()
	ev := uuid.MustParse(live.ID)
	stream := Stream{Bases: bases, Slug: slug, Token: tok, Event: live.ID,
		Publish:       func(ctx context.Context, data any) (int64, error) { return hub.Publish(ctx, t, ev, "bench", data) },
		Seq:           func(ctx context.Context) (int64, error) { return hub.Seq(ctx, t, ev) },
		Subscriptions: hub.Subscriptions}
	var fan []FanoutResult
	for _, transport := range []string{"sse", "ws"} {
		if o.SkipFanout {
			break
		}
		r, err := Fanout(ctx, FanoutOptions{Viewers: o.Viewers, Seconds: o.Seconds, Rate: o.Rate, Transport: transport}, stream)
		if err != nil {
			return fmt.Errorf("fan-out over %s: %w", transport, err)
		}
		fmt.Fprintln(out, r)
		fan = append(fan, r)
	}
	if len(fan) == 2 {
		fmt.Fprintf(out, "fan-out WebSocket / SSE in this run: p50 %.2f×, p99 %.2f×, heap per viewer %.2f× (goal p99 < 100 ms: SSE %v, WebSocket %v)\n",
			float64(fan[1].P50)/float64(max(fan[0].P50, 1)), float64(fan[1].P99)/float64(max(fan[0].P99, 1)), fan[1].KiBPerViewer/fan[0].KiBPerViewer,
			fan[0].P99 < 100*time.Millisecond, fan[1].P99 < 100*time.Millisecond)
	}

	// POS webhooks.
	var pr POSResult
	if !o.SkipPOS {
		var conn ops.Connector
		key := "bench-" + uuid.NewString()
		if err := call("POST", "/api/v1/ops/pos/connectors", tok, map[string]any{"name": "Square", "merchant_id": "BENCH-M", "signature_key": key}, &conn); err != nil {
			return err
		}
		if err := call("PUT", "/api/v1/ops/pos/connectors/"+conn.ID.String()+"/locations", tok, map[string]any{"locations": []any{
			map[string]any{"location_id": "L-BAR", "venue_id": venue.ID, "stand": "Main bar", "category": "bar"},
			map[string]any{"location_id": "L-MERCH", "venue_id": venue.ID, "stand": "Merch", "category": "merch"},
		}}, nil); err != nil {
			return err
		}
		pos := &fakepos.POS{MerchantID: "BENCH-M", SignatureKey: key, NotificationURL: conn.NotificationURL,
			Target: bases[0] + "/api/v1/webhooks/pos/" + conn.ID.String(), Host: slug + "." + a.Config.BaseDomain,
			Client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: o.Senders * 2}, Timeout: 60 * time.Second}}
		ledger := func(ctx context.Context) (int64, error) {
			var n int64
			err := a.Tx(ctx, t, func(tx *gorm.DB) error {
				return tx.Raw(`SELECT coalesce(sum(amount_minor), 0) FROM ledger_entries WHERE kind IN ('pos.sale', 'pos.refund')`).Row().Scan(&n)
			})
			return n, err
		}
		pr, err = POS(ctx, POSOptions{Sales: o.Sales, Senders: o.Senders}, pos, ledger)
		if err != nil {
			return fmt.Errorf("POS: %w", err)
		}
		fmt.Fprintf(out, "%s; exact: %v (goal 200 deliveries/s: %.1f× of it)\n", pr, pr.Ledger == pr.WantLedger, pr.PerSecond/200)
	}

	if !o.SkipAccuracy {
		if err := event("Past night", stage2.ID, pastStart, &past); err != nil {
			return err
		}
		if err := call("PUT", "/api/v1/events/"+past.ID+"/occupancy/zones", tok, map[string]any{"zones": []any{
			map[string]any{"name": "Arena", "capacity": 40000, "door_zone": "-"}}}, nil); err != nil {
			return err
		}
		began := time.Now()
		info := app.EventInfo{ID: uuid.MustParse(past.ID), VenueID: uuid.MustParse(venue.ID), StartsAt: pastStart, EndsAt: pastStart.Add(4 * time.Hour), Timezone: "Europe/Berlin"}
		ar, err := Accuracy(ctx, mod.Service(), t, info, pastStart, nil)
		if err != nil {
			return fmt.Errorf("accuracy: %w", err)
		}
		fmt.Fprintf(out, "%s (%v to replay)\n", ar, time.Since(began).Round(time.Millisecond))
		if ar.FirstMiss != "" {
			fmt.Fprintf(out, "accuracy: first miss %s\n", ar.FirstMiss)
		}
		if ar.OutOfBounds != 0 || ar.FinalInside != ar.Truth {
			return fmt.Errorf("accuracy: the dashboard left the stated freshness")
		}
	}
	load, _ = os.ReadFile("/proc/loadavg")
	fmt.Fprintf(out, "load average at the end %s\n", strings.TrimSpace(string(load)))
	for _, r := range fan {
		if r.Lost != 0 || r.Gaps != 0 {
			return fmt.Errorf("fan-out over %s lost updates", r.Transport)
		}
	}
	if !o.SkipPOS && pr.Ledger != pr.WantLedger {
		return fmt.Errorf("POS ledger %d, want %d", pr.Ledger, pr.WantLedger)
	}
	return nil
}
