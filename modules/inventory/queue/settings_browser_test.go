package queue

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"marquee/app"
	"marquee/app/apptest"
	"marquee/modules/calendar"
	"marquee/modules/inventory"
)

// Staff open an event's waiting-room page on a desktop and on a phone: the
// queue length refreshes by itself as buyers join; a limit out of range is
// refused beside its field and changes nothing; a good one is saved and
// shown again (post/redirect/get).
func TestBrowserWaitingRoomSettings(t *testing.T) {
	inv := inventory.New()
	wr := NewModule(inv)
	env := apptest.Start(t, dbURL, apptest.Options{Modules: []app.Module{calendar.New(), inv, wr}})
	tn := env.Tenant(t, apptest.UniqueSlug("room-page"))
	// The test's admitter never runs: joiners stay queued behind the first.
	ev := onSaleBehindRoom(t, env, tn.Slug, "Room", nil, map[string]any{"enabled": true, "admit_per_second": 1, "max_active": 1, "adaptive": false})
	owner := env.Login(t, tn.Slug, "owner@"+tn.Slug+".test")
	settings := func() Settings {
		t.Helper()
		res := env.Do(t, "GET", tn.Slug, "/api/v1/events/"+ev.ID+"/waiting-room", owner, nil)
		var s Settings
		res.JSON(t, &s)
		return s
	}
	joined := 0
	for _, size := range []struct {
		name          string
		width, height int64
	}{{"desktop", 1280, 900}, {"phone", 390, 844}} {
		t.Run(size.name, func(t *testing.T) {
			ctx := apptest.Browser(t)
			host := env.HostURL(tn.Slug)
			page := "/portal/inventory/" + ev.ID + "/waiting-room"
			if err := chromedp.Do(ctx,
				chromedp.EmulateViewport(size.width, size.height),
				chromedp.Navigate(host+"/portal/login?next="+page),
				chromedp.WaitVisible(chromedp.CSS(`#login-form`)),
				chromedp.SendKeys(chromedp.CSS(`input[name=email]`), "owner@"+tn.Slug+".test"),
				chromedp.SendKeys(chromedp.CSS(`input[name=password]`), apptest.Password),
				chromedp.Submit(chromedp.CSS(`#login-form`)),
			); err != nil {
				t.Fatal(err)
			}
			apptest.WaitVisible(t, ctx, `#room-live`)
			if st := apptest.Text(t, ctx, `#live-status`); st != "open" {
				t.Fatalf("room status %q", st)
			}
			for range 3 {
				if res := env.Do(t, "POST", tn.Slug, "/api/v1/events/"+ev.ID+"/queue", "", nil, inventory.BuyerHeader, buyerToken(t, env, tn.Slug)); res.Status != http.StatusOK {
					t.Fatalf("join: %d %s", res.Status, res.Body)
				}
				joined++
			}
			want := env.Do(t, "GET", tn.Slug, "/api/v1/events/"+ev.ID+"/waiting-room/state", owner, nil)
			var state RoomState
			want.JSON(t, &state)
			if state.Queued < 3 {
				t.Fatalf("state after %d joins: %+v", joined, state)
			}
			// The page learns it without a reload.
			apptest.Eventually(t, 15*time.Second, "the live queue length", func() bool {
				q, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#live-queued`)))
				return err == nil && strings.TrimSpace(q) == strconv.FormatInt(state.Queued, 10)
			})
			if r := apptest.Text(t, ctx, `#live-rate`); r != "1" {
				t.Fatalf("admission rate shown %q, want 1", r)
			}
			apptest.Screenshot(t, ctx, "waiting-room-settings-"+size.name)
			// Out of range: refused beside the field, nothing changes.
			if err := chromedp.Do(ctx,
				chromedp.SetValue(chromedp.CSS(`#room-form input[name=admit_per_second]`), "0"),
				chromedp.SetAttributeValue(chromedp.CSS(`#room-form input[name=admit_per_second]`), "min", "0"),
				chromedp.Click(chromedp.CSS(`#room-save`)),
			); err != nil {
				t.Fatal(err)
			}
			apptest.WaitVisible(t, ctx, `#room-error`)
			if e := apptest.Text(t, ctx, `#room-form .field-error`); !strings.Contains(e, "from 1 to 100000") {
				t.Fatalf("field error %q", e)
			}
			if s := settings(); s.AdmitPerSecond != 1 {
				t.Fatalf("a refused form changed the rate to %d", s.AdmitPerSecond)
			}
			apptest.Screenshot(t, ctx, "waiting-room-refused-"+size.name)
			if err := chromedp.Do(ctx,
				chromedp.SetValue(chromedp.CSS(`#room-form input[name=admit_per_second]`), "25"),
				chromedp.Click(chromedp.CSS(`#room-save`)),
			); err != nil {
				t.Fatal(err)
			}
			apptest.WaitVisible(t, ctx, `#room-flash`)
			if s := settings(); s.AdmitPerSecond != 25 || !s.Enabled || s.Adaptive {
				t.Fatalf("saved settings %+v", s)
			}
			// Back to the slow room for the next size.
			if res := env.Do(t, "PUT", tn.Slug, "/api/v1/events/"+ev.ID+"/waiting-room", owner,
				map[string]any{"enabled": true, "admit_per_second": 1, "max_active": 1, "adaptive": false}); res.Status != http.StatusOK {
				t.Fatalf("reset: %d", res.Status)
			}
		})
	}
}
