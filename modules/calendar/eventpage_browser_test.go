package calendar_test

import (
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"marquee/app/apptest"
)

// In a real browser, on a desktop and on a phone: a calendar block opens
// its event; the event page edits it and moves it to another day, and a
// move onto a booked window is refused with the event in the way named.
func TestBrowserEditAndMoveEvent(t *testing.T) {
	env, mod := startEnv(t)
	for _, size := range []struct {
		name          string
		width, height int64
	}{{"desktop", 1280, 900}, {"phone", 390, 844}} {
		t.Run(size.name, func(t *testing.T) {
			c := newChain(t, env, mod, "edit-"+size.name)
			c.createEvent(t, c.venue, map[string]any{"title": "Moveable Show", "category": "concert", "stage_id": c.stageA,
				"starts_at": localAt(t, 10, 20, 0), "ends_at": localAt(t, 10, 23, 0), "setup_minutes": 60, "teardown_minutes": 30, "status": "confirmed"})
			c.createEvent(t, c.venue, map[string]any{"title": "Thursday Headliner", "category": "concert", "stage_id": c.stageB,
				"starts_at": localAt(t, 12, 20, 0), "ends_at": localAt(t, 12, 23, 0), "setup_minutes": 60, "teardown_minutes": 30, "status": "on_sale"})
			ctx := apptest.Browser(t)
			week := "/portal/venues/" + c.venue + "/calendar?week=2031-06-09"
			err := chromedp.Do(ctx,
				chromedp.EmulateViewport(size.width, size.height),
				chromedp.Navigate(env.HostURL(c.slug)+"/portal/login?next="+url.QueryEscape(week)),
				chromedp.WaitVisible(chromedp.CSS(`#login-form`)),
				chromedp.SendKeys(chromedp.CSS(`input[name=email]`), "owner@"+c.slug+".test"),
				chromedp.SendKeys(chromedp.CSS(`input[name=password]`), apptest.Password),
				chromedp.Submit(chromedp.CSS(`#login-form`)),
			)
			if err != nil {
				t.Fatalf("sign in: %v", err)
			}
			apptest.WaitVisible(t, ctx, `#agenda`)
			// The event opens from the calendar (its block on a desktop,
			// its agenda row on a phone, where the grid scrolls).
			open := `#week-grid a.blk[data-kind=event]`
			if size.name == "phone" {
				open = `#agenda a.event-link`
			}
			attr, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS(open), "href"))
			href := attr.Value
			if err != nil || !strings.Contains(href, "/events/") {
				t.Fatalf("calendar link to the event: %q %v", href, err)
			}
			if err := chromedp.Do(ctx, chromedp.Navigate(env.HostURL(c.slug)+href)); err != nil {
				t.Fatal(err)
			}
			apptest.WaitVisible(t, ctx, `#event-form`)
			if s := apptest.Text(t, ctx, `#event-summary`); !strings.Contains(s, "Tue 10 Jun 20:00–23:00") {
				t.Fatalf("event summary: %q", s)
			}
			save := func(want string, values map[string]string) {
				t.Helper()
				var acts []chromedp.Action[chromedp.Void]
				for name, v := range values {
					acts = append(acts, chromedp.SetValue(chromedp.CSS(fmt.Sprintf(`#event-form [name=%s]`, name)), v))
				}
				acts = append(acts, chromedp.Evaluate[chromedp.Void](`document.querySelectorAll('#form-error, .flash').forEach(e => e.remove())`),
					chromedp.Click(chromedp.CSS(`#save-event`)))
				if err := chromedp.Do(ctx, acts...); err != nil {
					t.Fatal(err)
				}
				apptest.WaitVisible(t, ctx, want)
			}
			// Rename it and move it to Wednesday on the other stage.
			save(`.flash`, map[string]string{"title": "Moved Show", "stage": c.stageB, "starts": "2031-06-11T19:00", "ends": "2031-06-11T22:00"})
			if s := apptest.Text(t, ctx, `#event-summary`); !strings.Contains(s, "Wed 11 Jun 19:00–22:00") || !strings.Contains(s, "Club Room") {
				t.Fatalf("after the move: %q", s)
			}
			if h := apptest.Text(t, ctx, `h1`); h != "Moved Show" {
				t.Fatalf("title after the edit: %q", h)
			}
			// Onto Thursday's headliner: refused, naming it, the form kept.
			save(`#form-error`, map[string]string{"starts": "2031-06-12T21:00", "ends": "2031-06-12T23:30"})
			if a := apptest.Text(t, ctx, `#form-error`); !strings.Contains(a, "Schedule conflict") || !strings.Contains(a, "Thursday Headliner") {
				t.Fatalf("conflict: %q", a)
			}
			if v, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(`#event-form [name=starts]`))); err != nil || v != "2031-06-12T21:00" {
				t.Fatalf("the refused form lost what was typed: %q %v", v, err)
			}
			if s := apptest.Text(t, ctx, `#event-summary`); !strings.Contains(s, "Wed 11 Jun 19:00–22:00") {
				t.Fatalf("the refused move changed the event: %q", s)
			}
			apptest.Screenshot(t, ctx, "event-edit-conflict-"+size.name)
			// Back on the week, the moved event sits on Wednesday.
			if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#back-to-week`))); err != nil {
				t.Fatal(err)
			}
			apptest.WaitVisible(t, ctx, `#agenda`)
			if a := apptest.Text(t, ctx, `#agenda`); !strings.Contains(a, "Wed 11 Jun 19:00–22:00") || !strings.Contains(a, "Moved Show") {
				t.Fatalf("agenda after the move: %q", a)
			}
			apptest.Screenshot(t, ctx, "event-week-after-move-"+size.name)
		})
	}
}
