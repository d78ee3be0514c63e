package bench

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"golang.org/x/sync/errgroup"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/modules/inventory"
	"marquee/tenants"
)

// `marquee bench doors --offline`: the offline scanners' numbers. Two
// events are sold out through the real buying path (--tickets, a stadium's
// 50,000, and --small-tickets, 20,000); each one's door manifest is
// downloaded as a scanner does (gzip), its size and time printed. Then
// --devices offline devices, each with --device-scans scans made without
// the network (clocks skewed up to ±90 s), sync their logs at once in
// batches of 500; --planted tickets were admitted by two devices, and the
// conflicts the server finds must equal those planted. The database is
// checked: one admission per ticket, the fold equal to the log, inside per
// zone = entries - exits.

// OfflineOptions size an offline run.
type OfflineOptions struct {
	Tickets      int `json:"tickets"`
	SmallTickets int `json:"small_tickets"`
	Devices      int `json:"devices"`
	DeviceScans  int `json:"device_scans"`
	Planted      int `json:"planted"`
	Batch        int `json:"batch"`
	DBConns      int `json:"db_conns"`
	Sellers      int `json:"sellers"`
}

// OfflineDefaults: the numbers (50,000 and 20,000 tickets; 10
// devices × 2,000 scans).
func OfflineDefaults() OfflineOptions {
	return OfflineOptions{Tickets: 50000, SmallTickets: 20000, Devices: 10, DeviceScans: 2000, Planted: 500, Batch: 100, DBConns: 20, Sellers: 6}
}

// ManifestStats is one manifest download.
type ManifestStats struct {
	Tickets   int     `json:"tickets"`
	Bytes     int     `json:"bytes"`
	GzipBytes int     `json:"gzip_bytes"`
	P50ms     float64 `json:"download_p50_ms"`
	Maxms     float64 `json:"download_max_ms"`
	Records   int     `json:"records"`
}

// OfflineReport is what an offline run measured.
type OfflineReport struct {
	Options     OfflineOptions  `json:"options"`
	Tenant      string          `json:"tenant"`
	SetupSecs   float64         `json:"setup_seconds"`
	Manifests   []ManifestStats `json:"manifests"`
	Delta       ManifestStats   `json:"delta_after_sync"`
	SyncWall    float64         `json:"sync_wall_seconds"`
	Scans       int             `json:"scans"`
	ScansPerS   float64         `json:"scans_per_second"`
	BatchP50    float64         `json:"batch_p50_ms"`
	BatchP99    float64         `json:"batch_p99_ms"`
	Planted     int             `json:"conflicts_planted"`
	Found       int             `json:"conflicts_found"`
	Answered    int             `json:"conflicts_answered"`
	Check       DoorsCheck      `json:"check"`
	TwiceAdmits int64           `json:"tickets_admitted_twice"`
	OK          bool            `json:"ok"`
}

// RunDoorsOffline runs the offline measurements against the server at base.
func RunDoorsOffline(ctx context.Context, a *app.App, base string, o OfflineOptions, out, progressOut io.Writer) (*OfflineReport, error) {
	conc := o.Devices + o.Sellers
	h := &doorsHarness{do: DoorsOptions{Tickets: o.Tickets, RawTickets: o.SmallTickets, Sellers: o.Sellers, Scanners: o.Devices, DBConns: o.DBConns},
		Harness: &Harness{a: a, base: base, out: out, log: progressOut, sem: make(chan struct{}, conc), rec: NewRecorder(),
			o:      Options{Concurrency: o.Devices, DBConns: o.DBConns},
			client: &http.Client{Timeout: 120 * time.Second, Transport: &http.Transport{MaxIdleConns: conc * 2, MaxIdleConnsPerHost: conc * 2}}}}
	if err := h.checkStripeMock(); err != nil {
		return nil, err
	}
	if o.Devices*o.DeviceScans-o.Planted > o.Tickets {
		return nil, fmt.Errorf("%d devices × %d scans need %d tickets; --tickets is %d", o.Devices, o.DeviceScans, o.Devices*o.DeviceScans-o.Planted, o.Tickets)
	}
	began := time.Now()
	fmt.Fprintf(out, "setting up: tenant, door staff, events of %d and %d tickets, sold in orders of 100\n", o.Tickets, o.SmallTickets)
	big, small, err := h.setupDoors(ctx)
	if err != nil {
		return nil, fmt.Errorf("setup: %w", err)
	}
	defer h.retire(h.slug)
	rep := &OfflineReport{Options: o, Tenant: h.slug, SetupSecs: time.Since(began).Seconds()}
	for _, ev := range []string{small, big} {
		ms, _, err := h.manifest(ctx, ev, "", 5)
		if err != nil {
			return rep, err
		}
		rep.Manifests = append(rep.Manifests, ms)
	}
	_, cursor, err := h.manifest(ctx, big, "", 1)
	if err != nil {
		return rep, err
	}

	tickets, err := h.sold(ctx, big)
	if err != nil {
		return rep, err
	}
	logs, planted := offlineLogs(tickets, o)
	rep.Planted = planted
	rep.Scans = o.Devices * o.DeviceScans
	fmt.Fprintf(out, "syncing: %d devices × %d offline scans at once, batches of %d, %d conflicts planted\n", o.Devices, o.DeviceScans, o.Batch, planted)
	var mu sync.Mutex
	var lat []time.Duration
	answered := 0
	start := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	for d, log := range logs {
		g.Go(func() error {
			dev := fmt.Sprintf("bench-dev-%02d", d)
			skew := time.Duration(rand.IntN(180)-90) * time.Second
			for i := 0; i < len(log); i += o.Batch {
				batch := log[i:min(i+o.Batch, len(log))]
				scans := make([]map[string]any, len(batch))
				for j, s := range batch {
					scans[j] = map[string]any{"token": s.token, "type": "entry", "gate": "Gate " + fmt.Sprint(d%4+1), "nonce": s.nonce,
						"scanned_at": s.at.Add(skew), "result": "admit"}
				}
				body := map[string]any{"device_id": dev, "sent_at": time.Now().Add(skew), "revocation_seq": 0, "scans": scans}
				t0 := time.Now()
				res, err := h.call(gctx, "POST", h.slug, "/api/v1/events/"+big+"/checkins/sync", h.door, body)
				if err != nil {
					return err
				}
				if res.status != http.StatusOK {
					return fmt.Errorf("sync %s: %d %s", dev, res.status, res.body)
				}
				var sr inventory.SyncResult
				if err := json.Unmarshal(res.body, &sr); err != nil {
					return err
				}
				mu.Lock()
				lat = append(lat, time.Since(t0))
				answered += sr.Conflicts
				mu.Unlock()
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return rep, err
	}
	rep.SyncWall = time.Since(start).Seconds()
	rep.ScansPerS = float64(rep.Scans) / rep.SyncWall
	slices.Sort(lat)
	rep.BatchP50, rep.BatchP99 = percentile(lat, .5), percentile(lat, .99)
	rep.Answered = answered
	res, err := h.call(ctx, "GET", h.slug, "/api/v1/events/"+big+"/checkin-conflicts?limit=1", h.door, nil)
	if err != nil || res.status != http.StatusOK {
		return rep, fmt.Errorf("conflict report: %v %d %s", err, res.status, res.body)
	}
	var cr inventory.ConflictReport
	if err := json.Unmarshal(res.body, &cr); err != nil {
		return rep, err
	}
	rep.Found = cr.Total
	if rep.Delta, _, err = h.manifest(ctx, big, cursor, 1); err != nil {
		return rep, err
	}
	fmt.Fprintln(out, "checking the database: one admission per ticket, the fold against the log, inside per zone")
	if rep.Check, err = h.checkDoors(ctx, big); err != nil {
		return rep, err
	}
	err = h.a.TxWith(ctx, h.t, tenants.TxOptions{ReadOnly: true}, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT count(*) FROM (SELECT ticket_id FROM inv_checkins WHERE event_id = ? AND result = 'admit' AND annulled_at IS NULL
			GROUP BY ticket_id HAVING count(*) > 1) x`, big).Row().Scan(&rep.TwiceAdmits)
	})
	if err != nil {
		return rep, err
	}
	// The door bench's check expects every ticket scanned online; here the
	// admitted are the distinct tickets of the logs.
	rep.Check.OK = rep.Check.AdmittedTwice == 0 && rep.Check.FoldMismatches == 0 && rep.Check.ZonesOff == 0 &&
		rep.Check.AdmittedInLog == int64(rep.Scans-rep.Planted)
	rep.OK = rep.Check.OK && rep.TwiceAdmits == 0 && rep.Found == rep.Planted && rep.Answered == rep.Planted
	printOffline(out, rep)
	return rep, nil
}

type benchScan struct {
	token, nonce string
	at           time.Time
}

// offlineLogs makes each device's log: distinct tickets, except planted
// ones that two devices both admitted (the one with the earlier scan wins).
func offlineLogs(tickets []soldTicket, o OfflineOptions) ([][]benchScan, int) {
	logs := make([][]benchScan, o.Devices)
	night := time.Now().Add(-45 * time.Minute)
	at := func() time.Time { return night.Add(time.Duration(rand.Int64N(int64(40 * time.Minute)))) }
	next := 0
	// The planted tickets: each is admitted by device d and device d+1.
	for p := range o.Planted {
		tk := tickets[next]
		next++
		d := p % o.Devices
		for _, dev := range []int{d, (d + 1) % o.Devices} {
			logs[dev] = append(logs[dev], benchScan{token: tk.Token, nonce: uuid.NewString(), at: at()})
		}
	}
	for d := range logs {
		for len(logs[d]) < o.DeviceScans {
			logs[d] = append(logs[d], benchScan{token: tickets[next].Token, nonce: uuid.NewString(), at: at()})
			next++
		}
		// A device's log is in the order it scanned.
		slices.SortFunc(logs[d], func(x, y benchScan) int { return x.at.Compare(y.at) })
	}
	return logs, o.Planted
}

// manifest downloads an event's manifest n times (gzip, as a browser asks)
// and returns its sizes and times, and the cursor for a delta.
func (h *doorsHarness) manifest(ctx context.Context, event, since string, n int) (ManifestStats, string, error) {
	var ms ManifestStats
	var times []time.Duration
	var cursor string
	for range n {
		t0 := time.Now()
		path := "/api/v1/events/" + event + "/door-manifest"
		if since != "" {
			path += "?since=" + since
		}
		res, err := h.call(ctx, "GET", h.slug, path, h.door, nil, "Accept-Encoding", "gzip")
		if err != nil || res.status != http.StatusOK {
			return ms, "", fmt.Errorf("manifest: %v %d", err, res.status)
		}
		raw := res.body
		ms.GzipBytes = len(raw)
		if res.header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(bytes.NewReader(raw))
			if err != nil {
				return ms, "", err
			}
			if raw, err = io.ReadAll(zr); err != nil {
				return ms, "", err
			}
		}
		times = append(times, time.Since(t0))
		hd, recs, err := inventory.ParseManifest(raw)
		if err != nil {
			return ms, "", err
		}
		ms.Bytes, ms.Records, cursor = len(raw), len(recs), hd.Cursor
		if hd.Full {
			ms.Tickets = hd.Count
		}
	}
	slices.Sort(times)
	ms.P50ms, ms.Maxms = percentile(times, .5), percentile(times, 1)
	return ms, cursor, nil
}

func printOffline(w io.Writer, r *OfflineReport) {
	fmt.Fprintf(w, "\n== doors offline: %s (setup %.1fs) ==\n", r.Tenant, r.SetupSecs)
	fmt.Fprintf(w, "manifest (binary, %d bytes a ticket; sent gzip):\n", inventory.ManifestRecordSize)
	for _, m := range r.Manifests {
		fmt.Fprintf(w, "  %6d tickets: %8d bytes (%.1f KiB), gzip %8d bytes (%.1f KiB); download+decode p50 %.1f ms, max %.1f ms\n",
			m.Tickets, m.Bytes, float64(m.Bytes)/1024, m.GzipBytes, float64(m.GzipBytes)/1024, m.P50ms, m.Maxms)
	}
	fmt.Fprintf(w, "  delta after the sync: %d records, %d bytes (gzip %d), %.1f ms\n", r.Delta.Records, r.Delta.Bytes, r.Delta.GzipBytes, r.Delta.P50ms)
	fmt.Fprintf(w, "sync: %d devices × %d scans = %d scans in %.2f s (%.0f scans/s); batch of %d p50 %.0f ms, p99 %.0f ms\n",
		r.Options.Devices, r.Options.DeviceScans, r.Scans, r.SyncWall, r.ScansPerS, r.Options.Batch, r.BatchP50, r.BatchP99)
	fmt.Fprintf(w, "conflicts: planted %d, in the report %d, in the sync answers %d\n", r.Planted, r.Found, r.Answered)
	fmt.Fprintf(w, "check: tickets admitted %d (want %d), admitted twice %d, fold mismatches %d, zones off %d\n",
		r.Check.AdmittedInLog, r.Scans-r.Planted, r.TwiceAdmits, r.Check.FoldMismatches, r.Check.ZonesOff)
	for _, z := range r.Check.Zones {
		fmt.Fprintf(w, "  %-8s entries %6d exits %6d inside %6d (expect %6d)\n", z.Zone, z.Entries, z.Exits, z.Inside, z.ExpectInside)
	}
	verdict := "OK"
	if !r.OK {
		verdict = "FAILED"
	}
	fmt.Fprintf(w, "verdict: %s\n", verdict)
}
