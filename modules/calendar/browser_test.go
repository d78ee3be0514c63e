package calendar_test

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"marquee/app"
	"marquee/app/apptest"
	"marquee/modules/calendar"
)

// localAt renders a New York wall-clock time on the test week as an RFC 3339
// instant.
func localAt(t *testing.T, day int, hh, mm int) string {
	t.Helper()
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	return time.Date(2031, 6, day, hh, mm, 0, 0, ny).Format(time.RFC3339)
}

// In a real browser: sign in, open a venue's week, book an event through the
// form, try a conflicting one and read the conflict naming the first.
func TestBrowserCalendarBookingAndConflict(t *testing.T) {
	env, mod := startEnv(t)
	c := newChain(t, env, mod, "browser")
	rooftop := c.newStage(t, c.venue, "Rooftop")
	// Some of the week already booked and held (the week of Mon 9 June 2031).
	book := func(stage, title string, day, h1, m1, h2, m2, setup, teardown int, status string) {
		body := map[string]any{"title": title, "category": "concert", "starts_at": localAt(t, day, h1, m1), "ends_at": localAt(t, day, h2, m2),
			"setup_minutes": setup, "teardown_minutes": teardown, "status": status}
		if status == "sold_out" {
			body["status"] = "on_sale"
		}
		if stage == "" {
			body["exclusive"] = true
		} else {
			body["stage_id"] = stage
		}
		e := c.createEvent(t, c.venue, body)
		if status == "sold_out" {
			mustStatus(t, c.do(t, "PATCH", "/api/v1/venues/"+c.venue+"/events/"+e.ID, map[string]any{"status": status}), 200)
		}
	}
	book(c.stageA, "The Headliners", 12, 20, 0, 23, 0, 180, 60, "on_sale")
	book(c.stageB, "Comedy Cellar Live", 12, 19, 30, 21, 30, 60, 30, "confirmed")
	book(c.stageB, "Late DJ Set", 13, 23, 0, 27, 0, 60, 60, "draft")
	book("", "Private Gala (whole venue)", 14, 18, 0, 23, 0, 120, 120, "confirmed")
	book(c.stageA, "Sold Out Sunday", 15, 19, 0, 22, 30, 120, 60, "sold_out")
	for i, title := range []string{"Indie Band A", "Indie Band B", "Indie Band C"} {
		c.createHold(t, map[string]any{"stage_id": rooftop, "title": title, "category": "concert",
			"starts_at": localAt(t, 11, 19, 0), "ends_at": localAt(t, 11, 22, i*30), "setup_minutes": 60})
	}

	ctx := apptest.Browser(t)
	calendarPath := "/portal/venues/" + c.venue + "/calendar?week=2031-06-09"
	host := env.HostURL(c.slug)
	err := chromedp.Do(ctx,
		chromedp.Navigate(host+"/portal/login?next="+url.QueryEscape(calendarPath)),
		chromedp.WaitVisible(chromedp.CSS(`#login-form`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=email]`), "owner@"+c.slug+".test"),
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), apptest.Password),
		chromedp.Submit(chromedp.CSS(`#login-form`)),
	)
	if err != nil {
		t.Fatalf("sign in: %v", err)
	}
	wait := func(sel string) { t.Helper(); apptest.WaitVisible(t, ctx, sel) }
	wait(`#week-grid`)
	text := func(sel string) string { t.Helper(); return apptest.Text(t, ctx, sel) }
	if grid := text(`#week-grid`); !strings.Contains(grid, "The Headliners") || !strings.Contains(grid, "1st") || !strings.Contains(grid, "3rd") {
		t.Fatalf("week grid shows %q", grid)
	}
	if label := text(`#week-label`); label != "9 Jun – 15 Jun 2031" {
		t.Fatalf("week label %q", label)
	}

	// submit clicks a button of the form and waits for the page it loads:
	// the old page's alert and notice are removed first, so finding one
	// afterwards means the new page arrived.
	submit := func(button, want string) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](
			`document.querySelectorAll('#form-error, #flash').forEach(e => e.remove()); true`)); err != nil {
			t.Fatal(err)
		}
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(button))); err != nil {
			t.Fatalf("click %s: %v", button, err)
		}
		wait(want)
	}
	fill := func(title, stage, starts, ends string) error {
		return chromedp.Do(ctx,
			chromedp.SetValue(chromedp.CSS(`#book-form input[name=title]`), title),
			chromedp.SetValue(chromedp.CSS(`#book-form select[name=stage]`), stage),
			chromedp.SetValue(chromedp.CSS(`#book-form input[name=starts]`), starts),
			chromedp.SetValue(chromedp.CSS(`#book-form input[name=ends]`), ends),
			chromedp.SetValue(chromedp.CSS(`#book-form input[name=setup]`), "60"),
			chromedp.SetValue(chromedp.CSS(`#book-form input[name=teardown]`), "30"),
		)
	}
	// Book a new event through the form.
	if err := fill("Jazz Night", c.stageA, "2031-06-10T19:00", "2031-06-10T22:00"); err != nil {
		t.Fatal(err)
	}
	submit(`#book-event`, `#flash`)
	if agenda := text(`#agenda`); !strings.Contains(agenda, "Jazz Night") || !strings.Contains(agenda, "Tue 10 Jun 19:00–22:00") {
		t.Fatalf("agenda after booking: %q", agenda)
	}

	// A conflicting booking: the page says what is in the way.
	if err := fill("Late Booking", c.stageA, "2031-06-10T21:00", "2031-06-10T23:30"); err != nil {
		t.Fatal(err)
	}
	submit(`#book-event`, `#form-error`)
	alert := text(`#form-error`)
	if !strings.Contains(alert, "Schedule conflict") || !strings.Contains(alert, "Jazz Night") || !strings.Contains(alert, "Main Stage") ||
		!strings.Contains(alert, "Tue 10 Jun 18:00–22:30") {
		t.Fatalf("conflict message: %q", alert)
	}
	// The form keeps what was typed, and nothing was booked.
	if v, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(`#book-form input[name=title]`))); err != nil || v != "Late Booking" {
		t.Fatalf("form title after conflict: %q %v", v, err)
	}
	if strings.Contains(text(`#agenda`), "Late Booking") {
		t.Fatal("the conflicting event was booked")
	}
	apptest.Screenshot(t, ctx, "calendar-week-conflict")

	// An exclusive booking over the stage events is refused the same way.
	if err := fill("Corporate Buyout", "exclusive", "2031-06-12T18:00", "2031-06-12T20:00"); err != nil {
		t.Fatal(err)
	}
	submit(`#book-event`, `#form-error`)
	if alert := text(`#form-error`); !strings.Contains(alert, "The Headliners") || !strings.Contains(alert, "Comedy Cellar Live") {
		t.Fatalf("exclusive conflict: %q", alert)
	}

	// Place a hold through the same form; it ranks behind the three others.
	if err := fill("Indie Band D", rooftop, "2031-06-11T20:00", "2031-06-11T23:00"); err != nil {
		t.Fatal(err)
	}
	submit(`#place-hold`, `#flash`)
	if agenda := text(`#agenda`); !strings.Contains(agenda, "4th hold Indie Band D") {
		t.Fatalf("agenda after hold: %q", agenda)
	}
	apptest.Screenshot(t, ctx, "calendar-week")
	// A close-up of the grid, at twice the scale, to check the drawing.
	png, err := chromedp.Run(ctx, chromedp.ScreenshotScale(chromedp.CSS(`#week-grid`), 2))
	if err != nil {
		t.Fatal(err)
	}
	grid := filepath.Join(os.TempDir(), "marquee-screenshots", "calendar-grid.png")
	if err := os.WriteFile(grid, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", grid)

	// The venues page lists the venue with its stages.
	if err := chromedp.Do(ctx, chromedp.Navigate(host+"/portal/venues")); err != nil {
		t.Fatal(err)
	}
	wait(`#venues`)
	if venues := text(`#venues`); !strings.Contains(venues, "Downtown Hall") || !strings.Contains(venues, "Rooftop") {
		t.Fatalf("venues page: %q", venues)
	}
	apptest.Screenshot(t, ctx, "venues")
}

// The demo's venue manager signs in and lands on Downtown Hall's week: the
// seeded events are drawn, holds two weeks out are ranked, and no other
// venue is offered.
func TestBrowserDemoManager(t *testing.T) {
	env, _ := startEnv(t)
	if _, err := env.App.SeedDemo(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx := apptest.Browser(t)
	host := env.HostURL("acme")
	wait := func(sel string) { t.Helper(); apptest.WaitVisible(t, ctx, sel) }
	err := chromedp.Do(ctx,
		chromedp.Navigate(host+"/portal/login?next="+url.QueryEscape("/portal/calendar")),
		chromedp.WaitVisible(chromedp.CSS(`#login-form`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=email]`), calendar.DemoManagerEmail),
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), app.DemoPassword),
		chromedp.Submit(chromedp.CSS(`#login-form`)),
	)
	if err != nil {
		t.Fatal(err)
	}
	wait(`#week-grid`)
	body, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`main`)))
	if err != nil || !strings.Contains(body, "Downtown Hall") || strings.Contains(body, "Riverside") || !strings.Contains(body, "Book event") {
		t.Fatalf("manager's calendar: %q %v", body, err)
	}
	apptest.Screenshot(t, ctx, "demo-manager-calendar")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#next-week`))); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#next-week`))); err != nil {
		t.Fatal(err)
	}
	wait(`#agenda`)
	var agenda string
	if !apptest.Poll(10*time.Second, func() bool {
		agenda, _ = chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#agenda`)))
		return strings.Contains(agenda, "2nd hold")
	}) {
		t.Fatalf("no ranked holds two weeks out: %q", agenda)
	}
	apptest.Screenshot(t, ctx, "demo-manager-calendar-in-two-weeks")
}
