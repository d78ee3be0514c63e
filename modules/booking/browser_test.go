package booking_test

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"marquee/app/apptest"
)

// In a real browser: the offer board shows offers by state with their
// countdowns, and a card opens the offer's detail with its versions, the
// diff of the last counter and the history.
func TestBrowserBoardAndDetail(t *testing.T) {
	env, _ := startEnv(t)
	c := newChain(t, env, "board")
	c.create(t, c.artistA, "title", "Album launch (draft)")
	c.act(t, c.create(t, c.artistB, "title", "Spring tour, New York"), "send",
		map[string]any{"respond_by": time.Now().Add(72 * time.Hour).Format(time.RFC3339)})
	countered := c.act(t, c.create(t, c.artistA, "title", "Two nights at the Hall"), "send", nil)
	higher := offerTerms(1250000)
	higher["rider"] = "Towels and a vegan meal"
	countered = c.agentAct(t, c.linkA, countered, "counter", map[string]any{"terms": higher,
		"respond_by": time.Now().Add(30 * time.Hour).Format(time.RFC3339)})
	accepted := c.act(t, c.create(t, c.artistB, "title", "Summer rooftop"), "send", nil)
	c.agentAct(t, c.linkB, accepted, "accept", nil)
	c.act(t, c.create(t, c.artistA, "title", "Festival warm-up"), "cancel", map[string]any{"reason": "the festival moved"})

	ctx := apptest.Browser(t)
	host := env.HostURL(c.slug)
	err := chromedp.Do(ctx,
		chromedp.Navigate(host+"/portal/login?next="+url.QueryEscape("/portal/bookings")),
		chromedp.WaitVisible(chromedp.CSS(`#login-form`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=email]`), "owner@"+c.slug+".test"),
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), apptest.Password),
		chromedp.Submit(chromedp.CSS(`#login-form`)),
	)
	if err != nil {
		t.Fatalf("sign in: %v", err)
	}
	apptest.WaitVisible(t, ctx, `#board`)
	text := func(sel string) string { t.Helper(); return apptest.Text(t, ctx, sel) }
	for sel, want := range map[string][]string{
		`#col-draft`:         {"Album launch (draft)", "Velvet Static"},
		`#col-offer_sent`:    {"Spring tour, New York", "10,000.00 USD", "left", "awaiting artist"},
		`#col-counter_offer`: {"Two nights at the Hall", "12,500.00 USD", "awaiting promoter"},
		`#col-accepted`:      {"Summer rooftop"},
		`#col-declined`:      {"Festival warm-up", "cancelled: the festival moved"},
	} {
		got := text(sel)
		for _, w := range want {
			if !strings.Contains(got, w) {
				t.Errorf("%s shows %q, want %q in it", sel, got, w)
			}
		}
	}
	// The countdowns: three days for the offer, a day and a bit (urgent) for the counter.
	if cd := text(`#col-offer_sent .countdown`); !strings.HasPrefix(cd, "2d 23h") && !strings.HasPrefix(cd, "3d 0h") {
		t.Errorf("offer countdown %q", cd)
	}
	if cd := text(`#col-counter_offer .countdown.urgent`); !strings.HasPrefix(cd, "29h") && !strings.HasPrefix(cd, "30h") {
		t.Errorf("counter countdown %q", cd)
	}
	apptest.Screenshot(t, ctx, "booking-board")

	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#col-counter_offer a.offer`))); err != nil {
		t.Fatal(err)
	}
	apptest.WaitVisible(t, ctx, `#versions`)
	if s := text(`#state`); s != "counter offer" {
		t.Errorf("state %q", s)
	}
	if v := text(`#versions`); !strings.Contains(v, "v1") || !strings.Contains(v, "v2") || !strings.Contains(v, "Maya") {
		t.Errorf("versions %q", v)
	}
	diff := text(`#diff`)
	for _, w := range []string{"guarantee_minor", "10,000.00 USD", "12,500.00 USD", "rider", "Towels and a vegan meal"} {
		if !strings.Contains(diff, w) {
			t.Errorf("diff %q lacks %q", diff, w)
		}
	}
	if h := text(`#history`); !strings.Contains(h, "agent: Maya") || !strings.Contains(h, "counter (v2)") || !strings.Contains(h, "127.0.0.1") {
		t.Errorf("history %q", h)
	}
	if terms := text(`#terms`); !strings.Contains(terms, "versus: guarantee vs 85 % of net") || !strings.Contains(terms, "not to exceed 2,200.00 USD") {
		t.Errorf("terms %q", terms)
	}
	apptest.Screenshot(t, ctx, "booking-detail")
	if !strings.Contains(text(`h1`), countered.Title) {
		t.Errorf("detail page of %q shows %q", countered.Title, text(`h1`))
	}
}
