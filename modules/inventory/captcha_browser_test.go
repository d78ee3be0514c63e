package inventory_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"marquee/app/apptest"
	"marquee/modules/inventory"
)

// A buyer whose device had a payment declined is asked to prove a human at
// checkout: the storefront shows the CAPTCHA the refusal carried, a wrong
// answer brings a new image, the right one places the order. The device is
// the page's HttpOnly cookie, which the browser sends with the API calls.
func TestBrowserChallengedCheckout(t *testing.T) {
	// Serial: a browser test: one Chromium at a time is what 2 cores take.
	s, ev, _ := onSale(t, "challenge", "Challenge Night", simpleSetup(2, 10, 0, nil))
	setLimits(t, s, map[string]any{"declines_to_challenge": 1, "declines_to_block": 5, "min_checkout_seconds": 0})
	ctx := apptest.Browser(t)
	host := s.env.HostURL(s.slug)
	wait := func(sel string) { t.Helper(); apptest.WaitVisible(t, ctx, sel) }
	eval := func(js string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
		if err != nil {
			t.Fatalf("eval %s: %v", js, err)
		}
		return v
	}

	if err := chromedp.Do(ctx, chromedp.Navigate(host+"/events/"+ev)); err != nil {
		t.Fatal(err)
	}
	wait(`#seatmap svg`)
	// The page set the device cookie, out of the page's scripts' reach.
	var device *network.Cookie
	got, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{host}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range got.Cookies {
		if c.Name == inventory.DeviceCookie {
			device = c
		}
	}
	if device == nil || !device.HTTPOnly {
		t.Fatalf("device cookie: %+v", device)
	}
	if js := eval(`document.cookie`); strings.Contains(js, inventory.DeviceCookie) {
		t.Fatalf("the page's script reads the device cookie: %q", js)
	}
	// Earlier on this device: an order whose payment was declined.
	buyer := s.buyer(t)
	res, err := s.hold(ev, buyer, map[string]any{"seats": []string{"A-2-10"}}, "X-Device-Id", device.Value)
	if err != nil {
		t.Fatal(err)
	}
	mustStatus(t, res, http.StatusCreated)
	var h inventory.Hold
	res.JSON(t, &h)
	o, status, p := orderOn(t, s, h.ID, buyer, device.Value, "first@example.com", "192.0.2.7", nil)
	if status != http.StatusCreated {
		t.Fatalf("first order: %d %+v", status, p)
	}
	mustStatus(t, s.webhook(t, "evt_browser_decline_"+o.ID.String(), "payment_intent.payment_failed", o), http.StatusOK)

	// Now in the browser, another e-mail: the checkout is challenged.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#seat-A-1-3`)), chromedp.Click(chromedp.CSS(`#hold-seats`))); err != nil {
		t.Fatal(err)
	}
	wait(`#hold`)
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS(`#checkout input[name=email]`), "second@example.com"),
		chromedp.SendKeys(chromedp.CSS(`#checkout input[name=name]`), "Grace Hopper"),
		chromedp.Click(chromedp.CSS(`#to-payment`)),
	); err != nil {
		t.Fatal(err)
	}
	wait(`#captcha`)
	apptest.Eventually(t, 5*time.Second, "the CAPTCHA image drawn", func() bool {
		return eval(`String(document.getElementById('captcha-image').naturalWidth)`) == "240"
	})
	apptest.Screenshot(t, ctx, "inventory-captcha")
	first := eval(`document.getElementById('captcha').dataset.id`)
	right := captchaAnswer(t, s, first)
	wrong := strings.Map(func(r rune) rune { return '0' + (r-'0'+1)%10 }, right)
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS(`#captcha-answer`), wrong), chromedp.Click(chromedp.CSS(`#captcha-send`))); err != nil {
		t.Fatal(err)
	}
	apptest.Eventually(t, 5*time.Second, "a new image after a wrong answer", func() bool {
		id := eval(`document.getElementById('captcha').dataset.id`)
		return id != "" && id != first
	})
	if why := eval(`document.getElementById('captcha-why').textContent`); !strings.Contains(why, "does not match") {
		t.Fatalf("after a wrong answer: %q", why)
	}
	second := eval(`document.getElementById('captcha').dataset.id`)
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS(`#captcha-answer`), captchaAnswer(t, s, second)), chromedp.Click(chromedp.CSS(`#captcha-send`))); err != nil {
		t.Fatal(err)
	}
	wait(`#payment`)
	if hidden := eval(`String(document.getElementById('captcha').classList.contains('hidden'))`); hidden != "true" {
		t.Fatal("the CAPTCHA stays on screen after the order")
	}
	apptest.Screenshot(t, ctx, "inventory-captcha-solved")
	deviceID, _, _ := strings.Cut(device.Value, ".")
	if n := s.count(t, `SELECT count(*) FROM inv_orders o JOIN inv_holds h ON h.id = o.hold_id
		WHERE o.event_id = ? AND o.email = 'second@example.com' AND h.device_id = ?`, ev, deviceID); n != 1 {
		t.Fatalf("%d orders of the challenged buyer from the device, want 1", n)
	}
	if n := s.count(t, `SELECT count(*) FROM inv_risk_decisions WHERE device_id = ? AND action = 'review' AND reasons::text LIKE '%captcha_solved%'`, deviceID); n != 1 {
		t.Fatalf("%d solved challenges recorded, want 1", n)
	}
}
