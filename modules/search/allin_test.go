package search_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"marquee/app"
	"marquee/app/apptest"
	"marquee/config"
	"marquee/modules/calendar"
	"marquee/modules/inventory"
	"marquee/modules/inventory/queue"
	"marquee/modules/search"
)

// TestAllInPriceEverywhere: a tier of 50.00 face plus a 7.50 mandatory fee
// shows as 57.50 on every page and answer that shows a price (the FTC fee
// rule), never as 50.00; its demand-pricing range is all-in too, on the
// event page and in the waiting room on joining (the CMA's undertakings).
func TestAllInPriceEverywhere(t *testing.T) {
	stripe := apptest.StripeMock(t)
	inv := inventory.New()
	e := &env{inv: inv, srch: search.New()}
	e.Env = apptest.Start(t, dbURL, apptest.Options{Modules: []app.Module{calendar.New(), inv, queue.NewModule(inv), e.srch}, DBMaxConns: 20,
		Configure: func(c *config.Config) {
			c.StripeAPIURL = stripe
			c.StripeSecretKey = config.DevStripeSecretKey
			c.StripeWebhookSecret = "whsec_test_search"
		}})
	c := seedCatalogue(t, e)
	ev := c.events["sigur"]
	ctx := context.Background()
	invv, err := inv.Service().Inventory(ctx, c.t, uuid.MustParse(ev))
	if err != nil {
		t.Fatal(err)
	}
	tier := invv.Tiers[0].ID
	// Demand pricing between 40.00 and 80.00 face: 47.50 to 87.50 all-in.
	apptest.MustStatus(t, c.do(t, "PUT", "/api/v1/events/"+ev+"/tiers/"+tier.String()+"/pricing",
		map[string]any{"enabled": true, "floor": 4000, "ceiling": 8000, "max_step": 200, "min_interval_seconds": 300}), http.StatusOK)
	// A waiting room in front of the on-sale.
	apptest.MustStatus(t, c.do(t, "PUT", "/api/v1/events/"+ev+"/waiting-room", map[string]any{"enabled": true, "opens_at": time.Now().Add(-time.Minute).Format(time.RFC3339),
		"admit_per_second": 1, "max_active": 1, "idle_timeout_seconds": 60, "access_ttl_seconds": 60}), http.StatusOK)

	get := func(path, token string) string {
		t.Helper()
		res := e.Do(t, "GET", c.t.Slug, path, token, nil)
		apptest.MustStatus(t, res, http.StatusOK)
		return string(res.Body)
	}
	pages := map[string]string{
		"storefront home (search)": get("/search", ""),
		"search results":           get("/search?q=sigur", ""),
		"storefront event list":    get("/events", ""),
		"storefront event page":    get("/events/"+ev, ""),
		"portal event page":        get("/portal/inventory/"+ev, c.tok),
		"API: public catalogue":    get("/api/v1/events", ""),
		"API: availability":        get("/api/v1/events/"+ev+"/availability", ""),
		"API: search":              get("/api/v1/search/events?q=sigur", ""),
		"waiting room page":        get("/events/"+ev+"/queue", ""),
	}
	for name, body := range pages {
		allIn := strings.Contains(body, "57.50") || strings.Contains(body, "5750")
		face := strings.Contains(body, "EUR 50.00") || strings.Contains(body, `"price":5000`) || strings.Contains(body, `"min_price":5000`)
		if !allIn || face {
			t.Errorf("%s: all-in shown %v, face price shown %v", name, allIn, face)
		}
	}
	if p := pages["storefront event page"]; !strings.Contains(p, "incl. EUR 7.50 fees") || !strings.Contains(p, "EUR 47.50 and EUR 87.50") {
		t.Errorf("event page: fees or the demand range missing")
	}
	if p := pages["waiting room page"]; !strings.Contains(p, "EUR 47.50 – EUR 87.50") {
		t.Errorf("waiting room page: no all-in range")
	}
	// Joining the queue answers the range too.
	buyer := apptest.Decode[struct {
		BuyerToken string `json:"buyer_token"`
	}](t, e.Do(t, "POST", c.t.Slug, "/api/v1/buyer-sessions", "", nil).Body).BuyerToken
	res := e.Do(t, "POST", c.t.Slug, "/api/v1/events/"+ev+"/queue", "", nil, "X-Buyer-Token", buyer)
	apptest.MustStatus(t, res, http.StatusOK)
	st := apptest.Decode[queue.Status](t, res.Body)
	if len(st.Prices) != 1 || st.Prices[0].Min != 4750 || st.Prices[0].Max != 8750 || st.Prices[0].Now != 5750 {
		t.Fatalf("join: %s", res.Body)
	}
}
