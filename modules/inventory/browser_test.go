package inventory_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"marquee/app/apptest"
)

// A buyer's whole purchase in a real browser: the event list, the seat map
// (updated live when someone else holds a seat), holding seats with a
// countdown, checkout, the test-mode payment, and the order page with QR
// tickets. Screenshots are saved and were looked at.
func TestBrowserPurchase(t *testing.T) {
	// Serial: a browser test: one Chromium at a time is what 2 cores take.
	s, ev, _ := onSale(t, "browser", "Aurora Live", simpleSetup(8, 24, 200, map[string]int{"web": 392}))
	env := s.env
	ctx := apptest.Browser(t)
	apptest.WatchEventStreams(t, ctx)
	host := env.HostURL(s.slug)

	wait := func(sel string) { t.Helper(); apptest.WaitVisible(t, ctx, sel) }
	text := func(sel string) string { t.Helper(); return apptest.Text(t, ctx, sel) }
	eval := func(js string) bool {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[bool](js))
		if err != nil {
			t.Fatalf("eval %s: %v", js, err)
		}
		return v
	}
	until := func(js, what string) {
		t.Helper()
		apptest.Eventually(t, 10*time.Second, what, func() bool { return eval(js) })
	}

	if err := chromedp.Do(ctx, chromedp.Navigate(host+"/events")); err != nil {
		t.Fatal(err)
	}
	wait(`#events a[data-id="` + ev + `"]`)
	if list := text(`#events`); !strings.Contains(list, "Aurora Live") || !strings.Contains(list, "EUR 30.00") {
		t.Fatalf("event list: %q", list)
	}
	apptest.Screenshot(t, ctx, "inventory-events")

	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#events a[data-id="`+ev+`"]`))); err != nil {
		t.Fatal(err)
	}
	wait(`#seatmap svg`)
	until(`document.querySelectorAll('#seatmap .seat').length === 192`, "192 seats drawn")
	// Someone else holds A-1-1 through the API: the open map turns it live.
	until(apptest.StreamOpen, "the event stream connected")
	s.mustHold(t, ev, s.buyer(t), map[string]any{"seats": []string{"A-1-1"}})
	until(`document.getElementById('seat-A-1-1').classList.contains('held')`, "live update of a seat held elsewhere")

	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`#seat-A-4-11`)),
		chromedp.Click(chromedp.CSS(`#seat-A-4-12`)),
	); err != nil {
		t.Fatal(err)
	}
	until(`document.querySelectorAll('#seatmap .seat.selected').length === 2`, "two seats picked")
	if p := text(`#picked`); p != "Picked: Section A, Row 4, Seats 11, 12" {
		t.Fatalf("picked: %q", p)
	}
	apptest.Screenshot(t, ctx, "inventory-seatmap-picked")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#hold-seats`))); err != nil {
		t.Fatal(err)
	}
	wait(`#hold`)
	until(`/^(09|10):\d\d$/.test(document.getElementById('countdown').textContent)`, "countdown running")
	if sum := text(`#hold-summary`); !strings.Contains(sum, "Section A, Row 4, Seats 11, 12") || !strings.Contains(sum, "EUR 100.00") {
		t.Fatalf("hold summary %q", sum)
	}
	if st := s.seatState(t, ev, "A-4-11"); st != "held" {
		t.Fatalf("seat %s after the browser's hold", st)
	}
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS(`#checkout input[name=email]`), "ada@example.com"),
		chromedp.SendKeys(chromedp.CSS(`#checkout input[name=name]`), "Ada Lovelace"),
		chromedp.Click(chromedp.CSS(`#to-payment`)),
	); err != nil {
		t.Fatal(err)
	}
	wait(`#pay-test`)
	apptest.Screenshot(t, ctx, "inventory-checkout")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#pay-test`))); err != nil {
		t.Fatal(err)
	}
	wait(`#tickets`)
	if st := text(`#order-status`); st != "paid" {
		t.Fatalf("order status %q", st)
	}
	until(`document.querySelectorAll('#tickets .ticket svg.qr').length === 2`, "two QR tickets")
	if tk := text(`#tickets`); !strings.Contains(tk, "Section A, Row 4, Seat 11") || !strings.Contains(tk, "Ada Lovelace") {
		t.Fatalf("tickets: %q", tk)
	}
	apptest.Screenshot(t, ctx, "inventory-order")
	if st := s.seatState(t, ev, "A-4-12"); st != "sold" {
		t.Fatalf("seat %s after paying", st)
	}

	// Staff see the configuration in the portal.
	if err := chromedp.Do(ctx,
		chromedp.Navigate(host+"/portal/login?next=/portal/inventory/"+ev),
		chromedp.WaitVisible(chromedp.CSS(`#login-form`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=email]`), "owner@"+s.slug+".test"),
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), apptest.Password),
		chromedp.Submit(chromedp.CSS(`#login-form`)),
	); err != nil {
		t.Fatal(err)
	}
	wait(`#inv-summary`)
	if sum := text(`#inv-summary`); !strings.Contains(sum, "Stalls") || !strings.Contains(sum, "web") {
		t.Fatalf("portal summary %q", sum)
	}
	apptest.Screenshot(t, ctx, "inventory-portal")

	// Signed in as staff on this host, the storefront still sells (its
	// calls carry the buyer token, not the staff session).
	if err := chromedp.Do(ctx, chromedp.Navigate(host+"/events/"+ev)); err != nil {
		t.Fatal(err)
	}
	wait(`.hold-ga`)
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`.hold-ga`))); err != nil {
		t.Fatal(err)
	}
	wait(`#hold`)
	if sum := text(`#hold-summary`); !strings.Contains(sum, "2 tickets") {
		t.Fatalf("GA hold as signed-in staff: %q / %q", sum, text(`#shop-error`))
	}
}
