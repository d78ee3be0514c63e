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

// With the waiting room on, a buyer on a phone who opens the event (a link
// to section B) is in the queue before any seat map is shown; admitted, they
// come back to the map at section B, its seats big enough to tap, and hold
// one. Screenshots are saved and were looked at.
func TestBrowserQueueBeforeTheMap(t *testing.T) {
	inv := inventory.New()
	wr := NewModule(inv)
	env := apptest.Start(t, dbURL, apptest.Options{Modules: []app.Module{calendar.New(), inv, wr}})
	ctx := apptest.Browser(t)
	tn := env.Tenant(t, apptest.UniqueSlug("qmap"))
	ev := onSaleBehindRoom(t, env, tn.Slug, "Seated", nil, map[string]any{"enabled": true, "admit_per_second": 1, "max_active": 1})
	owner := env.Login(t, tn.Slug, "owner@"+tn.Slug+".test")
	rows := []map[string]any{{"label": "1", "seats": 10}, {"label": "2", "seats": 10}, {"label": "3", "seats": 10}}
	if res := env.Do(t, "PUT", tn.Slug, "/api/v1/events/"+ev.ID+"/inventory", owner, map[string]any{"max_ip_holds": 0,
		"zones":  []map[string]any{{"name": "Stalls", "kind": "reserved"}},
		"tiers":  []map[string]any{{"name": "Stalls", "zone": "Stalls", "price": 4500, "currency": "EUR"}},
		"layout": map[string]any{"sections": []map[string]any{{"name": "A", "zone": "Stalls", "rows": rows}, {"name": "B", "zone": "Stalls", "rows": rows}}}}); res.Status != http.StatusOK {
		t.Fatalf("seat map: %d %s", res.Status, res.Body)
	}
	for i := range 2 {
		tok := buyerToken(t, env, tn.Slug)
		if res := env.Do(t, "POST", tn.Slug, "/api/v1/events/"+ev.ID+"/queue", "", nil, inventory.BuyerHeader, tok); res.Status != http.StatusOK {
			t.Fatalf("ahead %d: %d %s", i, res.Status, res.Body)
		}
	}
	run := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			body, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`body`)))
			t.Fatalf("%s: %v\npage: %s", what, err, body)
		}
	}
	truth := func(js string) bool {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[bool](js))
		if err != nil {
			t.Fatalf("eval %s: %v", js, err)
		}
		return v
	}
	run("phone", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(3), chromedp.EmulateMobile))
	run("open the event", chromedp.Navigate(env.HostURL(tn.Slug)+"/events/"+ev.ID+"?section=B"), chromedp.WaitVisible(chromedp.CSS(`#waiting-room`)))
	if !truth(`location.pathname === '/events/` + ev.ID + `/queue'`) {
		t.Fatal("not in the queue")
	}
	apptest.Eventually(t, 10*time.Second, "a place in the queue", func() bool {
		return truth(`document.getElementById('wr-position').textContent === '3'`)
	})
	apptest.Screenshot(t, ctx, "queue-phone-waiting")

	if res := env.Do(t, "PUT", tn.Slug, "/api/v1/events/"+ev.ID+"/waiting-room", owner,
		map[string]any{"enabled": true, "admit_per_second": 1000, "max_active": 100}); res.Status != http.StatusOK {
		t.Fatalf("open the room: %d %s", res.Status, res.Body)
	}
	// Each poll runs an admission round (the admitter's ticker is not
	// running in tests) and looks whether the page is back at the map.
	apptest.Eventually(t, 20*time.Second, "back at the map", func() bool {
		if _, err := wr.Room().AdmitOnce(context.Background()); err != nil {
			t.Fatal(err)
		}
		return truth(`!!document.querySelector('#seatmap svg') && location.pathname === '/events/` + ev.ID + `'`)
	})
	run("the map", chromedp.WaitVisible(chromedp.CSS(`#seatmap svg`)))
	apptest.Eventually(t, 10*time.Second, "section B chosen again", func() bool {
		return truth(`document.querySelector('.sec-btn[data-section="B"]').getAttribute('aria-pressed') === 'true'`)
	})
	if !truth(`document.getElementById('seat-B-2-5').getBoundingClientRect().width >= 24`) {
		t.Fatal("seats of section B too small to tap")
	}
	run("pick and hold", chromedp.Tap(chromedp.CSS(`#seat-B-2-5`)), chromedp.Tap(chromedp.CSS(`#hold-seats`)), chromedp.WaitVisible(chromedp.CSS(`#hold`)))
	sum, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#hold-summary`)))
	if err != nil || !strings.Contains(sum, "Section B, Row 2, Seat 5") {
		t.Fatalf("hold %q (%v)", sum, err)
	}
	apptest.Screenshot(t, ctx, "queue-phone-admitted-hold")
}
