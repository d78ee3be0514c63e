package inventory_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"marquee/app/apptest"
)

// In a real browser, on the storefront: an event whose public on-sale is
// ahead says when; during its presale a buyer without the code is refused
// in words, and with the code holds.
func TestBrowserPresaleCode(t *testing.T) {
	// Serial: a browser test: one Chromium at a time is what 2 cores take.
	s, ev, _ := onSale(t, "presaleweb", "Presale Night", simpleSetup(1, 10, 50, nil))
	now := time.Now().UTC()
	mustStatus(t, s.do(t, "PATCH", "/api/v1/venues/"+s.venue+"/events/"+ev, map[string]any{
		"on_sale_at": now.Add(48 * time.Hour).Format(time.RFC3339), "presale_starts_at": now.Add(-time.Hour).Format(time.RFC3339),
		"presale_ends_at": now.Add(24 * time.Hour).Format(time.RFC3339), "presale_code": "FANCLUB"}), http.StatusOK)
	ctx := apptest.Browser(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(s.env.HostURL(s.slug)+"/events/"+ev)); err != nil {
		t.Fatal(err)
	}
	apptest.WaitVisible(t, ctx, `#onsale-notice`)
	if n := apptest.Text(t, ctx, `#onsale-notice`); !strings.Contains(n, "Tickets go on sale") || !strings.Contains(n, "presale is on now") {
		t.Fatalf("on-sale notice: %q", n)
	}
	held := func() int64 {
		return s.count(t, `SELECT count(*) FROM inv_holds WHERE event_id = ? AND status = 'active'`, ev)
	}
	until := func(js, what string) {
		t.Helper()
		if !apptest.Poll(10*time.Second, func() bool {
			v, err := chromedp.Run(ctx, chromedp.Evaluate[bool](js))
			return err == nil && v
		}) {
			t.Fatalf("timed out: %s", what)
		}
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`.hold-ga`))); err != nil {
		t.Fatal(err)
	}
	until(`document.getElementById('shop-error').textContent.indexOf('presale code') >= 0`, "refusal without the code")
	if n := held(); n != 0 {
		t.Fatalf("a refused presale hold left %d holds", n)
	}
	apptest.Screenshot(t, ctx, "calendar-storefront-presale-refused")
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS(`#presale-code`), "fanclub"), chromedp.Click(chromedp.CSS(`.hold-ga`))); err != nil {
		t.Fatal(err)
	}
	apptest.WaitVisible(t, ctx, `#hold`)
	if n := held(); n != 1 {
		t.Fatalf("holds with the code: %d", n)
	}
	apptest.Screenshot(t, ctx, "calendar-storefront-presale-held")
}
