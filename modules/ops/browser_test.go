package ops_test

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"marquee/app"
	"marquee/app/apptest"
	"marquee/modules/calendar"
	"marquee/modules/ops"
	"marquee/modules/ops/fakepos"
)

func signIn(t *testing.T, env *apptest.Env, slug, email, next string) context.Context {
	t.Helper()
	return signInAs(t, env, slug, email, apptest.Password, next)
}

func signInAs(t *testing.T, env *apptest.Env, slug, email, password, next string) context.Context {
	t.Helper()
	ctx := apptest.Browser(t)
	apptest.WatchEventStreams(t, ctx)
	err := chromedp.Do(ctx,
		chromedp.Navigate(env.HostURL(slug)+"/portal/login?next="+url.QueryEscape(next)),
		chromedp.WaitVisible(chromedp.CSS(`#login-form`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=email]`), email),
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), password),
		chromedp.Submit(chromedp.CSS(`#login-form`)),
	)
	if err != nil {
		t.Fatalf("sign in %s: %v", email, err)
	}
	return ctx
}

func waitTrue(t *testing.T, ctx context.Context, expr string, within time.Duration) time.Duration {
	t.Helper()
	return apptest.Eventually(t, within, expr, func() bool {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		return err == nil && ok
	})
}

// In a real browser on instance B: the dashboard shows zones against
// capacity with their source, the chart, revenue and incidents; a reading
// pushed through instance A moves the zone within a second, an alert shows,
// and an incident reported from the page's form reaches the feed.
func TestBrowserDashboard(t *testing.T) {
	e := startEnv(t, nil)
	b := apptest.Start(t, dbURL, apptest.Options{Modules: []app.Module{calendar.New(), e.door, ops.New()}}) // one door, two instances
	c := newChain(t, e, "screen")
	e.door.set(c.event, "Balcony", 31, time.Now())
	c.push(t, map[string]any{"zone": "Floor", "source": "turnstile:north", "count": 40, "at": ago(4 * time.Minute)})
	c.push(t, map[string]any{"zone": "Floor", "source": "turnstile:north", "count": 61, "at": ago(2 * time.Minute)})
	_, pos := c.connect(t)
	for i, amt := range []int64{850, 1200, 3500, 650} {
		loc := "L-BAR"
		if amt == 3500 {
			loc = "L-MERCH"
		}
		c.send(t, pos, pos.PaymentEvent(fakepos.Payment{ID: "B" + string(rune('0'+i)), Status: "COMPLETED", Version: 1,
			AmountMoney: fakepos.Money{Amount: amt, Currency: "EUR"}, LocationID: loc}))
	}
	c.do(t, "POST", "/api/v1/events/"+c.event+"/incidents", map[string]any{"category": "crowd", "severity": "medium", "zone": "Floor",
		"location": "front of stage", "description": "Crowd surge at the barrier"})
	if err := e.mod.SampleNow(t.Context(), c.t); err != nil {
		t.Fatal(err)
	}

	ctx := signIn(t, b, c.slug, "owner@"+c.slug+".test", "/portal/ops/events/"+c.event)
	apptest.WaitVisible(t, ctx, `#zones .zone`)
	waitTrue(t, ctx, apptest.StreamOpen, 10*time.Second)
	if s := apptest.Text(t, ctx, `#zones`); !strings.Contains(s, "61 / 100") || !strings.Contains(s, "turnstile") || !strings.Contains(s, "31 / 50") {
		t.Errorf("zones: %q", s)
	}
	if s := apptest.Text(t, ctx, `#revenue`); !strings.Contains(s, "Main bar") || !strings.Contains(s, "Merch") {
		t.Errorf("revenue: %q", s)
	}
	// Through instance A: the floor passes 90%.
	c.push(t, map[string]any{"zone": "Floor", "source": "turnstile:north", "count": 93, "at": ago(0)})
	took := waitTrue(t, ctx, `document.querySelector('#zones').innerText.includes('93 / 100')`, time.Second)
	waitTrue(t, ctx, `document.querySelector('#alerts').innerText.includes('Floor reached 90%')`, time.Second)
	t.Logf("instance B's page showed the reading pushed through A after %v", took)
	// Report from the page.
	err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`#report-box summary`)),
		chromedp.SetValue(chromedp.CSS(`#report-form select[name=category]`), "medical"),
		chromedp.SendKeys(chromedp.CSS(`#report-form input[name=zone]`), "Balcony"),
		chromedp.SendKeys(chromedp.CSS(`#report-form textarea[name=description]`), "Guest needs first aid"),
		chromedp.Click(chromedp.CSS(`#report-form button`)),
	)
	if err != nil {
		t.Fatal(err)
	}
	waitTrue(t, ctx, `document.querySelector('#incidents').innerText.includes('Guest needs first aid')`, 3*time.Second)
	waitTrue(t, ctx, `document.querySelectorAll('#chart polyline').length === 2`, 3*time.Second)
	apptest.Screenshot(t, ctx, "ops-dashboard")

	night := signIn(t, e.Env, c.slug, "owner@"+c.slug+".test", "/portal/ops")
	apptest.WaitVisible(t, night, `#night`)
	if s := apptest.Text(t, night, `#night`); !strings.Contains(s, "Live Show") || !strings.Contains(s, "124 / 150") {
		t.Errorf("night: %q", s)
	}
	apptest.Screenshot(t, night, "ops-night")
}
