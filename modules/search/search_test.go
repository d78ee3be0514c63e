package search_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/app/apptest"
	"marquee/config"
	"marquee/modules/calendar"
	"marquee/modules/inventory"
	"marquee/modules/search"
	"marquee/tenants"
)

var dbURL string

func TestMain(m *testing.M) { apptest.Main(m, "search", &dbURL) }

type env struct {
	*apptest.Env
	inv  *inventory.Module
	srch *search.Module
}

func startEnv(t testing.TB, configure ...func(*config.Config)) *env {
	t.Helper()
	stripe := apptest.StripeMock(t)
	inv, srch := inventory.New(), search.New()
	e := apptest.Start(t, dbURL, apptest.Options{Modules: []app.Module{calendar.New(), inv, srch}, DBMaxConns: 20,
		Configure: func(c *config.Config) {
			for _, f := range configure {
				f(c)
			}
			c.StripeAPIURL = stripe
			c.StripeSecretKey = config.DevStripeSecretKey
			c.StripeWebhookSecret = "whsec_test_search"
		}})
	return &env{Env: e, inv: inv, srch: srch}
}

// catalogue is a chain with three venues (Berlin, Potsdam 27 km away,
// Hamburg 255 km away) and events named so that text, accents, typos,
// distances and the past can be told apart.
type catalogue struct {
	e      *env
	t      tenants.Tenant
	tok    string
	venues map[string]string
	events map[string]string
}

func (c *catalogue) do(t testing.TB, method, path string, body any) apptest.Response {
	t.Helper()
	return c.e.Do(t, method, c.t.Slug, path, c.tok, body)
}

func (c *catalogue) id(t testing.TB, res apptest.Response) string {
	t.Helper()
	if res.Status != http.StatusCreated && res.Status != http.StatusOK {
		t.Fatalf("want 201, got %d: %s", res.Status, res.Body)
	}
	return apptest.Decode[struct {
		ID string `json:"id"`
	}](t, res.Body).ID
}

var (
	berlin  = [2]float64{52.5200, 13.4050}
	potsdam = [2]float64{52.3906, 13.0645}
	hamburg = [2]float64{53.5511, 9.9937}
)

func seedCatalogue(t *testing.T, e *env) *catalogue {
	t.Helper()
	tn := e.Tenant(t, apptest.UniqueSlug("srch"))
	c := &catalogue{e: e, t: tn, venues: map[string]string{}, events: map[string]string{}}
	c.tok = e.Login(t, tn.Slug, "owner@"+tn.Slug+".test")
	stages := map[string]string{}
	for name, at := range map[string][2]float64{"Columbiahalle": berlin, "Lindenpark": potsdam, "Große Freiheit": hamburg} {
		v := c.id(t, c.do(t, "POST", "/api/v1/venues", map[string]any{"name": name, "timezone": "Europe/Berlin", "capacity": 3000,
			"latitude": at[0], "longitude": at[1]}))
		c.venues[name] = v
		stages[name] = c.id(t, c.do(t, "POST", "/api/v1/venues/"+v+"/stages", map[string]any{"name": "Main", "capacity": 3000, "type": "main"}))
	}
	now := time.Now().UTC().Truncate(time.Hour)
	type ev struct {
		key, venue, title, category string
		in                          time.Duration
		artist, description         string
		price, fee                  int64
		ga                          int
	}
	evs := []ev{
		{"sigur", "Columbiahalle", "Sigur Rós live", "concert", 10 * 24 * time.Hour, "Sigur Rós", "Icelandic post-rock under the northern lights.", 5000, 750, 100},
		{"metallica", "Lindenpark", "Metallica tribute night", "concert", 20 * 24 * time.Hour, "Master of Puppets", "Three bands play the Black Album.", 3000, 0, 50},
		{"comedy", "Große Freiheit", "Late comedy", "comedy", 5 * 24 * time.Hour, "", "Stand-up with a café theme and five comedians.", 1500, 250, 0},
		{"cafe", "Columbiahalle", "Café del Mar sessions", "club_night", 3 * 24 * time.Hour, "", "Chill-out DJs all night.", 2000, 0, 20},
		{"past", "Columbiahalle", "Metallica farewell", "concert", -5 * 24 * time.Hour, "Metallica", "Already over.", 4000, 0, 10},
	}
	for _, x := range evs {
		start := now.Add(x.in)
		id := c.id(t, c.do(t, "POST", "/api/v1/venues/"+c.venues[x.venue]+"/events", map[string]any{"stage_id": stages[x.venue], "title": x.title,
			"category": x.category, "status": "on_sale", "starts_at": start.Format(time.RFC3339), "ends_at": start.Add(3 * time.Hour).Format(time.RFC3339)}))
		c.events[x.key] = id
		if x.ga > 0 {
			apptest.MustStatus(t, c.do(t, "PUT", "/api/v1/events/"+id+"/inventory", map[string]any{
				"zones": []any{map[string]any{"name": "Floor", "kind": "ga", "capacity": x.ga}},
				"tiers": []any{map[string]any{"name": "Floor", "zone": "Floor", "price": x.price, "fee": x.fee, "currency": "EUR", "max_per_order": 10}},
			}), http.StatusOK)
		}
		apptest.MustStatus(t, c.do(t, "PUT", "/api/v1/events/"+id+"/listing", map[string]any{"artist": x.artist, "description": x.description}), http.StatusOK)
	}
	return c
}

type results struct {
	Items []struct {
		EventID    string   `json:"event_id"`
		Title      string   `json:"title"`
		MinPrice   *int64   `json:"min_price"`
		Available  int      `json:"available"`
		DistanceKm *float64 `json:"distance_km"`
		MatchedIn  []string `json:"matched_fields"`
		Highlights struct {
			Title, Artist, VenueName, Description string
		} `json:"highlights"`
	} `json:"items"`
	NextCursor string `json:"next_cursor"`
}

func (c *catalogue) search(t testing.TB, params url.Values) results {
	t.Helper()
	res := c.e.Do(t, "GET", c.t.Slug, "/api/v1/search/events?"+params.Encode(), "", nil)
	apptest.MustStatus(t, res, http.StatusOK)
	return apptest.Decode[results](t, res.Body)
}

func (c *catalogue) keys(r results) []string {
	byID := map[string]string{}
	for k, id := range c.events {
		byID[id] = k
	}
	var out []string
	for _, it := range r.Items {
		out = append(out, byID[it.EventID])
	}
	return out
}

func q(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v
}

func TestSearchRelevanceAndFilters(t *testing.T) {
	e := startEnv(t)
	c := seedCatalogue(t, e)
	cases := []struct {
		name   string
		params url.Values
		want   []string // in order
	}{
		{"all upcoming by date, past excluded", q(), []string{"cafe", "comedy", "sigur", "metallica"}},
		{"title word", q("q", "metallica"), []string{"metallica"}},
		{"accent folded: ros finds Rós", q("q", "sigur ros"), []string{"sigur"}},
		{"accent folded: cafe finds Café in title first, description after", q("q", "cafe"), []string{"cafe", "comedy"}},
		{"typo tolerated", q("q", "metalica"), []string{"metallica"}},
		{"typo in an artist", q("q", "sigor"), []string{"sigur"}},
		{"the last word is a prefix: as typed", q("q", "metal"), []string{"metallica"}},
		{"a prefix after a whole word", q("q", "sigur r"), []string{"sigur"}},
		{"a prefix folded", q("q", "lindenp"), []string{"metallica"}},
		{"venue name", q("q", "lindenpark"), []string{"metallica"}},
		{"venue name with ß folded", q("q", "grosse freiheit"), []string{"comedy"}},
		{"description stem", q("q", "comedian"), []string{"comedy"}},
		{"category", q("category", "concert"), []string{"sigur", "metallica"}},
		{"date window", q("from", time.Now().UTC().Add(4*24*time.Hour).Format("2006-01-02"), "to", time.Now().UTC().Add(15*24*time.Hour).Format("2006-01-02")), []string{"comedy", "sigur"}},
		{"all-in price range (fee included)", q("min_price", "1700", "max_price", "5750"), []string{"cafe", "sigur", "metallica"}},
		{"all-in: 5000 + 750 fee is above 5700", q("max_price", "5700", "min_price", "2500"), []string{"metallica"}},
		{"available only (events with tickets)", q("available", "true"), []string{"cafe", "sigur", "metallica"}},
		{"near Berlin within 30 km holds Potsdam (27 km)", q("near", "52.52,13.405", "radius_km", "30"), []string{"cafe", "sigur", "metallica"}},
		{"within 25 km leaves Potsdam out", q("near", "52.52,13.405", "radius_km", "25"), []string{"cafe", "sigur"}},
		{"sorted by price", q("sort", "price", "category", "concert"), []string{"metallica", "sigur"}},
		{"nothing", q("q", "zzzzqqq"), nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := c.keys(c.search(t, tc.params))
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("%v: got %v, want %v", tc.params, got, tc.want)
			}
		})
	}

	t.Run("results explain themselves", func(t *testing.T) {
		r := c.search(t, q("q", "sigur ros"))
		it := r.Items[0]
		if it.Highlights.Title != "<mark>Sigur</mark> <mark>Rós</mark> live" || it.Highlights.Artist != "<mark>Sigur</mark> <mark>Rós</mark>" {
			t.Fatalf("highlights: %+v", it.Highlights)
		}
		if strings.Join(it.MatchedIn, ",") != "title,artist" {
			t.Fatalf("matched fields %v", it.MatchedIn)
		}
		if typed := c.search(t, q("q", "sigur r")).Items[0].Highlights.Artist; typed != "<mark>Sigur</mark> <mark>Rós</mark>" {
			t.Fatalf("a prefix as typed is marked too: %s", typed)
		}
		if it.MinPrice == nil || *it.MinPrice != 5750 {
			t.Fatalf("all-in price: got %v, want 5750 (5000 + 750 fee)", it.MinPrice)
		}
	})
	t.Run("distance boundary", func(t *testing.T) {
		r := c.search(t, q("near", "52.52,13.405", "radius_km", "30", "sort", "distance"))
		d := *r.Items[2].DistanceKm
		if d < 26 || d > 29 {
			t.Fatalf("Potsdam at %.2f km", d)
		}
		// Just above and just below Potsdam's distance.
		in := c.keys(c.search(t, q("near", "52.52,13.405", "radius_km", fmt.Sprintf("%.3f", d+0.01))))
		out := c.keys(c.search(t, q("near", "52.52,13.405", "radius_km", fmt.Sprintf("%.3f", d-0.01))))
		if len(in) != 3 || len(out) != 2 {
			t.Fatalf("boundary %.3f km: in %v, out %v", d, in, out)
		}
	})
}

func TestSearchCursorPages(t *testing.T) {
	e := startEnv(t)
	c := seedCatalogue(t, e)
	for _, sort := range []string{"date", "price", "relevance", "distance"} {
		params := q("limit", "1", "sort", sort, "near", "52.52,13.405", "radius_km", "500")
		if sort == "relevance" {
			params.Set("q", "cafe")
		}
		all := c.keys(c.search(t, func() url.Values {
			p := q("limit", "50")
			for k, v := range params {
				if k != "limit" {
					p[k] = v
				}
			}
			return p
		}()))
		var paged []string
		for i := 0; i < 10; i++ {
			r := c.search(t, params)
			paged = append(paged, c.keys(r)...)
			if r.NextCursor == "" {
				break
			}
			params.Set("cursor", r.NextCursor)
		}
		if strings.Join(paged, ",") != strings.Join(all, ",") || len(all) == 0 {
			t.Fatalf("sort %s: pages %v, one page %v", sort, paged, all)
		}
	}
}

func TestSearchBadInput(t *testing.T) {
	e := startEnv(t)
	c := seedCatalogue(t, e)
	good := c.search(t, q("limit", "1"))
	if good.NextCursor == "" {
		t.Fatal("no cursor to tamper with")
	}
	body, sig, _ := strings.Cut(good.NextCursor, ".")
	flipped := []byte(body)
	flipped[3] ^= 1
	cases := []struct {
		name   string
		params url.Values
		code   string
	}{
		{"near without comma", q("near", "52.52"), "invalid_near"},
		{"near not numbers", q("near", "abc,def"), "invalid_near"},
		{"near off the globe", q("near", "91,13"), "invalid_near"},
		{"near NaN", q("near", "NaN,13"), "invalid_near"},
		{"near exponent", q("near", "1e2,13"), "invalid_near"},
		{"radius 0", q("near", "52.5,13.4", "radius_km", "0"), "invalid_radius"},
		{"radius 1e9", q("near", "52.5,13.4", "radius_km", "1e9"), "invalid_radius"},
		{"radius negative", q("near", "52.5,13.4", "radius_km", "-5"), "invalid_radius"},
		{"radius without near", q("radius_km", "10"), "invalid_radius"},
		{"sql injection", q("q", "'; DROP TABLE srch_documents; --"), "invalid_query"},
		{"boolean injection", q("q", "x' OR '1'='1"), "invalid_query"},
		{"markup", q("q", "<script>alert(1)</script>"), "invalid_query"},
		{"tsquery syntax", q("q", "a & !b | c:*"), "invalid_query"},
		{"too long", q("q", strings.Repeat("a", 201)), "invalid_query"},
		{"cursor garbage", q("cursor", "not-a-cursor"), "invalid_cursor"},
		{"cursor body altered", q("limit", "1", "cursor", string(flipped)+"."+sig), "invalid_cursor"},
		{"cursor of another search", q("limit", "1", "category", "concert", "cursor", good.NextCursor), "invalid_cursor"},
		{"unknown sort", q("sort", "popularity"), "invalid_filter"},
		{"distance sort without near", q("sort", "distance"), "invalid_filter"},
		{"bad date", q("from", "yesterday"), "invalid_filter"},
		{"to before from", q("from", "2030-01-02", "to", "2030-01-01"), "invalid_filter"},
		{"negative price", q("min_price", "-1"), "invalid_filter"},
		{"bad category", q("category", "Robert'); DROP"), "invalid_filter"},
		{"unknown parameter", q("where", "1=1"), "invalid_filter"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := e.Do(t, "GET", c.t.Slug, "/api/v1/search/events?"+tc.params.Encode(), "", nil)
			apptest.MustStatus(t, res, http.StatusBadRequest)
			if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
				t.Fatalf("content type %q", ct)
			}
			if p := apptest.Decode[struct{ Code string }](t, res.Body); p.Code != tc.code {
				t.Fatalf("code %q, want %q: %s", p.Code, tc.code, res.Body)
			}
		})
	}
	// Nothing changed: the documents are all there.
	if got := c.keys(c.search(t, q())); len(got) != 4 {
		t.Fatalf("after bad input: %v", got)
	}
}

// TestSearchFollowsOwners: the calendar's changes reach the documents
// through the hook, a lost document comes back with the rebuild.
func TestSearchFollowsOwners(t *testing.T) {
	e := startEnv(t)
	c := seedCatalogue(t, e)
	ctx := context.Background()
	// Rename through the calendar: the hook refreshes the document.
	apptest.MustStatus(t, c.do(t, "PATCH", "/api/v1/venues/"+c.venues["Columbiahalle"]+"/events/"+c.events["cafe"], map[string]any{"title": "Ibiza sunset sessions"}), http.StatusOK)
	if got := c.keys(c.search(t, q("q", "ibiza"))); strings.Join(got, ",") != "cafe" {
		t.Fatalf("renamed: %v", got)
	}
	// Cancel: gone from search.
	apptest.MustStatus(t, c.do(t, "PATCH", "/api/v1/venues/"+c.venues["Columbiahalle"]+"/events/"+c.events["cafe"], map[string]any{"status": "cancelled"}), http.StatusOK)
	if got := c.keys(c.search(t, q("q", "ibiza"))); len(got) != 0 {
		t.Fatalf("cancelled still found: %v", got)
	}
	// A document lost (a hook that never ran) comes back with the rebuild.
	err := e.App.Tx(ctx, c.t, func(tx *gorm.DB) error {
		return tx.Exec(`DELETE FROM srch_documents WHERE event_id = ?`, uuid.MustParse(c.events["sigur"])).Error
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.keys(c.search(t, q("q", "sigur"))); len(got) != 0 {
		t.Fatalf("deleted still found: %v", got)
	}
	if n, err := c.e.srch.Service().Rebuild(ctx, c.t); err != nil || n != 4 {
		t.Fatalf("rebuild: %d, %v", n, err)
	}
	if got := c.keys(c.search(t, q("q", "sigur"))); strings.Join(got, ",") != "sigur" {
		t.Fatalf("after rebuild: %v", got)
	}
}

// sell pays an order of n tickets for an event through the real hold →
// order → payment path (trending counts it from the payment's hook).
func (c *catalogue) sell(t testing.TB, key string, n int) {
	t.Helper()
	ctx := context.Background()
	svc := c.e.inv.Service()
	ev, err := svc.Event(ctx, c.t, uuid.MustParse(c.events[key]))
	if err != nil {
		t.Fatal(err)
	}
	inv, err := svc.Inventory(ctx, c.t, ev.ID)
	if err != nil {
		t.Fatal(err)
	}
	buyer := "buyer-" + uuid.NewString()
	h, err := svc.CreateHold(ctx, c.t, ev, inventory.HoldRequest{TierID: &inv.Tiers[0].ID, Quantity: n, BuyerID: buyer})
	if err != nil {
		t.Fatal(err)
	}
	o, err := svc.CreateOrderWithoutPayment(ctx, c.t, h.ID, buyer, inventory.BuyerInfo{Email: "fan@example.com", Name: "Fan"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.PaymentSucceeded(ctx, c.t, "evt-"+o.ID.String(), "", o.AmountMinor, o.Currency, o.ID); err != nil {
		t.Fatal(err)
	}
}
