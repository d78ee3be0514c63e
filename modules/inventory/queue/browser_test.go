package queue

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"marquee/app"
	"marquee/app/apptest"
	"marquee/modules/calendar"
	"marquee/modules/inventory"
)

// A buyer opens a hot on-sale in a real browser: the event page sends them
// to the waiting room at once, which shows their place, and when the room admits
// them they land back on the event page and can hold a GA ticket.
func TestBrowserWaitingRoom(t *testing.T) {
	inv := inventory.New()
	wr := NewModule(inv)
	env := apptest.Start(t, dbURL, apptest.Options{Modules: []app.Module{calendar.New(), inv, wr}})
	ctx := apptest.Browser(t)
	tn := env.Tenant(t, apptest.UniqueSlug("hot"))
	// A room that admits nobody until the test says so: other buyers are ahead.
	ev := onSaleBehindRoom(t, env, tn.Slug, "Hot", map[string]int{"web": 500},
		map[string]any{"enabled": true, "admit_per_second": 1, "max_active": 1})
	for i := range 3 {
		tok := buyerToken(t, env, tn.Slug)
		if res := env.Do(t, "POST", tn.Slug, "/api/v1/events/"+ev.ID+"/queue", "", nil, inventory.BuyerHeader, tok); res.Status != http.StatusOK {
			t.Fatalf("ahead %d: %d %s", i, res.Status, res.Body)
		}
	}

	base := env.HostURL(tn.Slug)
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/events/"+ev.ID)); err != nil {
		t.Fatal(err)
	}
	// The room is on: the page moves to the queue before anything is picked.
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`#waiting-room`))); err != nil {
		t.Fatalf("event page did not send the buyer to the queue: %v", err)
	}
	var position string
	apptest.Eventually(t, 10*time.Second, "a position shown", func() bool {
		p, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#wr-position`)))
		if err != nil {
			t.Fatal(err)
		}
		position = p
		return p != "…" && p != ""
	})
	if position != "4" {
		t.Fatalf("position %q, want 4 (three buyers arrived first)", position)
	}
	eta, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#wr-eta`)))
	if !strings.Contains(eta, "seconds") && !strings.Contains(eta, "minutes") {
		t.Fatalf("no estimated wait: %q", eta)
	}
	apptest.Screenshot(t, ctx, "waiting-room")

	// Open the gates: everyone ahead and our buyer are admitted.
	owner := env.Login(t, tn.Slug, "owner@"+tn.Slug+".test")
	if res := env.Do(t, "PUT", tn.Slug, "/api/v1/events/"+ev.ID+"/waiting-room", owner,
		map[string]any{"enabled": true, "admit_per_second": 1000, "max_active": 100}); res.Status != http.StatusOK {
		t.Fatalf("open the room: %d %s", res.Status, res.Body)
	}
	for range 20 {
		time.Sleep(150 * time.Millisecond) // not synchronisation: paces admission rounds as the admitter's ticker would
		if _, err := wr.Room().AdmitOnce(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`#event-meta`))); err != nil {
		t.Fatalf("admitted buyer not sent back to the event: %v", err)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`.hold-ga`)), chromedp.WaitVisible(chromedp.CSS(`#countdown`))); err != nil {
		t.Fatalf("admitted buyer could not hold: %v", err)
	}
	summary, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#hold-summary`)))
	if !strings.Contains(summary, "ticket") {
		t.Fatalf("hold summary %q", summary)
	}
	apptest.Screenshot(t, ctx, "waiting-room-admitted-hold")
}

// onSaleBehindRoom books an on-sale GA event (500 on the Floor, EUR 40) at a
// new venue of the tenant, behind a waiting room with the given settings,
// and returns it (its id and its one tier).
func onSaleBehindRoom(t *testing.T, env *apptest.Env, slug, name string, quotas map[string]int, room map[string]any) onSale {
	t.Helper()
	owner := env.Login(t, slug, "owner@"+slug+".test")
	do := func(method, path string, body any, into any) {
		t.Helper()
		res := env.Do(t, method, slug, path, owner, body)
		if res.Status >= 300 {
			t.Fatalf("%s %s: %d %s", method, path, res.Status, res.Body)
		}
		if into != nil {
			res.JSON(t, into)
		}
	}
	var v, st, ev struct{ ID string }
	do("POST", "/api/v1/venues", map[string]any{"name": name + " Hall", "address": "1 Queue St", "timezone": "Europe/Berlin", "latitude": 52.5, "longitude": 13.4, "capacity": 5000}, &v)
	do("POST", "/api/v1/venues/"+v.ID+"/stages", map[string]any{"name": "Main", "capacity": 5000, "type": "main"}, &st)
	// Its own day, so events of one package never share a stage's window.
	start := time.Now().UTC().Truncate(time.Hour).AddDate(0, 2, int(time.Now().UnixNano()%300))
	do("POST", "/api/v1/venues/"+v.ID+"/events", map[string]any{"stage_id": st.ID, "title": name + " Night", "category": "concert", "status": "on_sale",
		"starts_at": start.Format(time.RFC3339), "ends_at": start.Add(3 * time.Hour).Format(time.RFC3339)}, &ev)
	setup := map[string]any{"max_buyer_holds": 3, "max_ip_holds": 0,
		"zones": []map[string]any{{"name": "Floor", "kind": "ga", "capacity": 500}},
		"tiers": []map[string]any{{"name": "Floor", "zone": "Floor", "price": 4000, "currency": "EUR"}}}
	if quotas != nil {
		setup["quotas"] = quotas
	}
	var cfg inventory.Inventory
	do("PUT", "/api/v1/events/"+ev.ID+"/inventory", setup, &cfg)
	do("PUT", "/api/v1/events/"+ev.ID+"/waiting-room", room, nil)
	return onSale{ID: ev.ID, Tier: cfg.Tiers[0].ID.String()}
}

// onSale is an event on sale and its one tier.
type onSale struct{ ID, Tier string }

func buyerToken(t *testing.T, env *apptest.Env, slug string) string {
	t.Helper()
	res := env.Do(t, "POST", slug, "/api/v1/buyer-sessions", "", nil)
	var b struct {
		Token string `json:"buyer_token"`
	}
	res.JSON(t, &b)
	if b.Token == "" {
		t.Fatalf("no buyer token: %s", res.Body)
	}
	return b.Token
}
