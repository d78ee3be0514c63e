// Package searchbench measures the storefront search at chain scale: 50
// venues × 300 upcoming events plus 5,000 past ones, queried by 32
// concurrent clients through the API, next to the same SQL run straight
// through the tenant door in the same run.
package searchbench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/modules/search"
	"marquee/tenants"
)

// Options size a run.
type Options struct {
	Venues   int           `json:"venues"`
	PerVenue int           `json:"events_per_venue"`
	Past     int           `json:"past_events"`
	Clients  int           `json:"clients"`
	Phase    time.Duration `json:"phase_ns"` // per query kind and path
	DBConns  int           `json:"db_conns"`
	OutDir   string        `json:"out_dir"`
	Tenant   string        `json:"-"`
}

// Defaults are the catalogue and 32 clients.
func Defaults() Options {
	return Options{Venues: 50, PerVenue: 300, Past: 5000, Clients: 32, Phase: 8 * time.Second, DBConns: 20, OutDir: "bench-out"}
}

// KindStats are one query kind's figures.
type KindStats struct {
	Kind       string  `json:"kind"`
	APIN       int     `json:"api_queries"`
	APIP50     float64 `json:"api_p50_ms"`
	APIP99     float64 `json:"api_p99_ms"`
	APIPerS    float64 `json:"api_per_second"`
	DirectN    int     `json:"direct_queries"`
	DirectP50  float64 `json:"direct_p50_ms"`
	DirectP99  float64 `json:"direct_p99_ms"`
	RatioP50   float64 `json:"api_over_direct_p50"`
	RatioP99   float64 `json:"api_over_direct_p99"`
	AvgResults float64 `json:"avg_results"`
	Errors     int64   `json:"errors"`
	PastSeen   int64   `json:"past_events_returned"`
}

// Report is a run's figures.
type Report struct {
	Options  Options     `json:"options"`
	Events   int         `json:"events"`
	Seed     float64     `json:"seed_seconds"`
	Index    float64     `json:"index_rebuild_seconds"`
	Kinds    []KindStats `json:"kinds"`
	GoalMet  bool        `json:"p99_under_50ms"`
	JSONPath string      `json:"-"`
}

var (
	first  = []string{"Velvet", "Neon", "Silver", "Midnight", "Golden", "Electric", "Crimson", "Wild", "Lunar", "Royal", "Sonic", "Crystal", "Björk", "Café", "Señor", "Müller", "Zoë", "Ólafur", "Beyoncé", "Motörhead"}
	second = []string{"Echoes", "Riders", "Collective", "Orchestra", "Quartet", "Brothers", "Sisters", "Express", "Machine", "Parade", "Dreamers", "Syndicate", "Ensemble", "Kings", "Queens", "Tigers", "Wolves", "Ghosts", "Pilots", "Saints"}
	kinds  = []string{"concert", "club_night", "comedy", "theatre", "family", "festival"}
	cities = []struct {
		name     string
		lat, lng float64
	}{{"Berlin", 52.52, 13.405}, {"Hamburg", 53.55, 9.99}, {"Munich", 48.137, 11.575}, {"Cologne", 50.937, 6.96}, {"Vienna", 48.208, 16.373},
		{"Zurich", 47.376, 8.541}, {"Prague", 50.075, 14.437}, {"Amsterdam", 52.367, 4.904}, {"Copenhagen", 55.676, 12.568}, {"Paris", 48.857, 2.352}}
	descWords = []string{"night", "tour", "anthems", "acoustic", "live", "special", "guests", "album", "release", "party", "standing", "seated", "late", "show", "classics", "new", "songs", "dance", "floor", "encore"}
)

func artist(r *rand.Rand) string {
	return first[r.Intn(len(first))] + " " + second[r.Intn(len(second))]
}

// typo drops or swaps one letter of a word longer than four.
func typo(r *rand.Rand, w string) string {
	rs := []rune(w)
	if len(rs) < 5 {
		return w
	}
	i := 1 + r.Intn(len(rs)-2)
	if r.Intn(2) == 0 {
		return string(append(rs[:i:i], rs[i+1:]...))
	}
	rs[i], rs[i+1] = rs[i+1], rs[i]
	return string(rs)
}

// Run seeds a tenant's calendar with the catalogue (in bulk, straight
// into the calendar's tables: seeding is not what is measured), builds the
// search documents through the search's rebuild (the contracts), and
// measures.
func Run(ctx context.Context, a *app.App, srch *search.Service, base string, o Options, out io.Writer) (*Report, error) {
	rep := &Report{Options: o}
	slug := fmt.Sprintf("srchbench-%d", time.Now().Unix())
	t, err := a.CreateTenant(ctx, slug, "Search Bench Chain", "owner@"+slug+".test", "Bench Owner", uuid.NewString())
	if err != nil {
		return nil, err
	}
	r := rand.New(rand.NewSource(42))
	start := time.Now()
	if err := seed(ctx, a, t, o, r); err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	rep.Seed = time.Since(start).Seconds()
	start = time.Now()
	n, err := srch.Rebuild(ctx, t)
	if err != nil {
		return nil, fmt.Errorf("rebuild: %w", err)
	}
	rep.Index = time.Since(start).Seconds()
	rep.Events = n
	// Prices and availability as the inventory would give them (setting up
	// 20,000 events' tickets is not what this measures).
	if err := a.Tx(ctx, t, func(tx *gorm.DB) error {
		return tx.Exec(`UPDATE srch_documents SET sells = true, currency = 'EUR', min_price = 1500 + (abs(hashtext(event_id::text)) % 120) * 100,
			max_price = 9000, range_min = 1500, range_max = 9000, available = abs(hashtext(title)) % 400`).Error
	}); err != nil {
		return nil, err
	}
	if err := a.Tx(ctx, t, func(tx *gorm.DB) error { return tx.Exec(`ANALYZE srch_documents`).Error }); err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "catalogue: %d documents (%d venues × %d upcoming + %d past) seeded in %.1fs, indexed in %.1fs\n",
		n, o.Venues, o.PerVenue, o.Past, rep.Seed, rep.Index)

	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: o.Clients * 2}}
	gen := map[string]func(r *rand.Rand) url.Values{
		"text": func(r *rand.Rand) url.Values {
			w := first[r.Intn(len(first))]
			if r.Intn(3) == 0 {
				w = typo(r, w)
			}
			return url.Values{"q": {w + " " + second[r.Intn(len(second))]}}
		},
		"geo": func(r *rand.Rand) url.Values {
			c := cities[r.Intn(len(cities))]
			return url.Values{"near": {fmt.Sprintf("%.4f,%.4f", c.lat+r.Float64()*0.1, c.lng+r.Float64()*0.1)}, "radius_km": {"50"}, "sort": {"distance"}}
		},
		"combined": func(r *rand.Rand) url.Values {
			c := cities[r.Intn(len(cities))]
			return url.Values{"q": {first[r.Intn(len(first))]}, "near": {fmt.Sprintf("%.4f,%.4f", c.lat, c.lng)}, "radius_km": {"300"},
				"category": {kinds[r.Intn(len(kinds))]}, "available": {"true"}, "max_price": {"8000"},
				"from": {time.Now().UTC().AddDate(0, 1, 0).Format("2006-01-02")}}
		},
	}
	if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
		return nil, err
	}
	for _, kind := range []string{"text", "geo", "combined"} {
		ks := KindStats{Kind: kind}
		var results, past atomic.Int64
		// Through the API, with a CPU profile of the process (server and
		// clients): go tool pprof -top <out>/search-<kind>-api.pprof.
		prof, perr := os.Create(filepath.Join(o.OutDir, "search-"+kind+"-api.pprof"))
		profiling := perr == nil && pprof.StartCPUProfile(prof) == nil
		lat, errs := phase(o, func(r *rand.Rand) error {
			v := gen[kind](r)
			req, _ := http.NewRequestWithContext(ctx, "GET", base+"/api/v1/search/events?"+v.Encode(), nil)
			req.Header.Set("X-Tenant", slug)
			res, err := client.Do(req)
			if err != nil {
				return err
			}
			defer res.Body.Close()
			var body struct {
				Items []struct {
					StartsAt time.Time `json:"starts_at"`
				} `json:"items"`
			}
			if res.StatusCode != http.StatusOK {
				raw, _ := io.ReadAll(res.Body)
				return fmt.Errorf("%d %s", res.StatusCode, raw)
			}
			if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
				return err
			}
			results.Add(int64(len(body.Items)))
			for _, it := range body.Items {
				if it.StartsAt.Before(time.Now()) {
					past.Add(1)
				}
			}
			return nil
		}, out)
		if profiling {
			pprof.StopCPUProfile()
		}
		if perr == nil {
			_ = prof.Close()
		}
		ks.APIN, ks.Errors = len(lat), errs
		ks.APIP50, ks.APIP99 = pct(lat, .5), pct(lat, .99)
		ks.APIPerS = float64(len(lat)) / o.Phase.Seconds()
		if len(lat) > 0 {
			ks.AvgResults = float64(results.Load()) / float64(len(lat))
		}
		ks.PastSeen = past.Load()
		// The same statement, straight through the tenant door (no HTTP,
		// no handler, no JSON), by as many goroutines.
		dlat, derrs := phase(o, func(r *rand.Rand) error {
			q, err := search.ParseQuery(gen[kind](r))
			if err != nil {
				return err
			}
			_, err = srch.Run(ctx, t, q)
			return err
		}, out)
		ks.DirectN, ks.Errors = len(dlat), ks.Errors+derrs
		ks.DirectP50, ks.DirectP99 = pct(dlat, .5), pct(dlat, .99)
		if ks.DirectP50 > 0 {
			ks.RatioP50, ks.RatioP99 = ks.APIP50/ks.DirectP50, ks.APIP99/ks.DirectP99
		}
		fmt.Fprintf(out, "%-9s API p50 %6.2f ms  p99 %6.2f ms  (%5.0f q/s, %.1f results, %d errors, %d past)  |  direct p50 %6.2f ms  p99 %6.2f ms  |  ratio p50 %.2f  p99 %.2f\n",
			kind, ks.APIP50, ks.APIP99, ks.APIPerS, ks.AvgResults, ks.Errors, ks.PastSeen, ks.DirectP50, ks.DirectP99, ks.RatioP50, ks.RatioP99)
		rep.Kinds = append(rep.Kinds, ks)
	}
	rep.GoalMet = true
	for _, k := range rep.Kinds {
		if k.APIP99 >= 50 || k.Errors > 0 || k.PastSeen > 0 {
			rep.GoalMet = false
		}
	}
	fmt.Fprintf(out, "goal p99 < 50 ms through the API, no errors, no past events: %v\n", rep.GoalMet)
	return rep, nil
}

// phase runs fn from o.Clients goroutines for o.Phase and returns each
// call's latency in ms and the errors.
func phase(o Options, fn func(r *rand.Rand) error, log io.Writer) ([]float64, int64) {
	var mu sync.Mutex
	var lat []float64
	var errs atomic.Int64
	var first sync.Once
	stop := time.Now().Add(o.Phase)
	var wg sync.WaitGroup
	for g := 0; g < o.Clients; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			r := rand.New(rand.NewSource(int64(g) + 1))
			var mine []float64
			for time.Now().Before(stop) {
				t0 := time.Now()
				if err := fn(r); err != nil {
					errs.Add(1)
					if log != nil {
						first.Do(func() { fmt.Fprintf(log, "first error: %v\n", err) })
					}
					continue
				}
				mine = append(mine, float64(time.Since(t0).Microseconds())/1000)
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}(g)
	}
	wg.Wait()
	return lat, errs.Load()
}

func pct(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

// seed writes venues, one stage each, and the events straight into the
// calendar's tables in the tenant's schema (bulk, through the door).
func seed(ctx context.Context, a *app.App, t tenants.Tenant, o Options, r *rand.Rand) error {
	type venue struct {
		ID       uuid.UUID
		Stage    uuid.UUID
		Name     string
		Lat, Lng float64
	}
	vs := make([]venue, o.Venues)
	for i := range vs {
		c := cities[i%len(cities)]
		vs[i] = venue{ID: uuid.Must(uuid.NewV7()), Stage: uuid.Must(uuid.NewV7()), Name: fmt.Sprintf("%s %s Hall %d", c.name, second[i%len(second)], i),
			Lat: c.lat + (r.Float64()-0.5)*0.3, Lng: c.lng + (r.Float64()-0.5)*0.3}
	}
	now := time.Now().UTC().Truncate(time.Hour)
	type ev struct {
		ID                 uuid.UUID `json:"id"`
		Venue              uuid.UUID `json:"venue_id"`
		Stage              uuid.UUID `json:"stage_id"`
		Title              string    `json:"title"`
		Category           string    `json:"category"`
		Starts             time.Time `json:"starts_at"`
		Ends               time.Time `json:"ends_at"`
		Artist, Describing string
	}
	var evs []ev
	for i, v := range vs {
		for d := 0; d < o.PerVenue; d++ {
			s := now.Add(time.Duration(d+1)*24*time.Hour + 20*time.Hour)
			evs = append(evs, ev{ID: uuid.Must(uuid.NewV7()), Venue: v.ID, Stage: v.Stage, Title: artist(r) + " live", Category: kinds[r.Intn(len(kinds))],
				Starts: s, Ends: s.Add(3 * time.Hour), Artist: artist(r)})
		}
		for d := 0; d < o.Past/o.Venues+boolInt(i < o.Past%o.Venues); d++ {
			s := now.Add(-time.Duration(d+1)*24*time.Hour + 20*time.Hour)
			evs = append(evs, ev{ID: uuid.Must(uuid.NewV7()), Venue: v.ID, Stage: v.Stage, Title: artist(r) + " live", Category: kinds[r.Intn(len(kinds))],
				Starts: s, Ends: s.Add(3 * time.Hour), Artist: artist(r)})
		}
	}
	for i := range evs {
		var b strings.Builder
		for w := 0; w < 12; w++ {
			b.WriteString(descWords[r.Intn(len(descWords))] + " ")
		}
		evs[i].Describing = b.String()
	}
	return a.Tx(ctx, t, func(tx *gorm.DB) error {
		for _, v := range vs {
			if err := tx.Exec(`INSERT INTO cal_venues (id, name, timezone, latitude, longitude, capacity) VALUES (?, ?, 'Europe/Berlin', ?, ?, 3000)`,
				v.ID, v.Name, v.Lat, v.Lng).Error; err != nil {
				return err
			}
			if err := tx.Exec(`INSERT INTO cal_stages (id, venue_id, name, capacity, kind) VALUES (?, ?, 'Main', 3000, 'main')`, v.Stage, v.ID).Error; err != nil {
				return err
			}
		}
		for from := 0; from < len(evs); from += 2000 {
			chunk := evs[from:min(len(evs), from+2000)]
			raw, err := json.Marshal(chunk)
			if err != nil {
				return err
			}
			if err := tx.Exec(`INSERT INTO cal_events (id, venue_id, stage_id, exclusive, title, category, status, starts_at, ends_at, setup_minutes, teardown_minutes, occupied)
				SELECT r.id, r.venue_id, r.stage_id, false, r.title, r.category, 'on_sale', r.starts_at, r.ends_at, 0, 0, tstzrange(r.starts_at, r.ends_at, '[)')
				FROM jsonb_to_recordset(?::jsonb) AS r(id uuid, venue_id uuid, stage_id uuid, title text, category text, starts_at timestamptz, ends_at timestamptz)`,
				string(raw)).Error; err != nil {
				return err
			}
			if err := tx.Exec(`INSERT INTO srch_listings (event_id, artist, description)
				SELECT r.id, r."Artist", r."Describing" FROM jsonb_to_recordset(?::jsonb) AS r(id uuid, "Artist" text, "Describing" text)`, string(raw)).Error; err != nil {
				return err
			}
		}
		return nil
	})
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
