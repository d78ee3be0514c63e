package booking_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"marquee/app/apptest"
)

// In a real browser: staff rent a held date through the form (back to the
// rental's page), which awaits its deposit with no way to confirm; once
// Stripe's webhook reports the deposit paid the page shows it confirmed, and
// the invoice is issued from it.
func TestBrowserRental(t *testing.T) {
	env, _ := startEnv(t, withStripe(t))
	c := newChain(t, env, "rentpage")
	hold := c.hold(t, 18)
	ctx := apptest.Browser(t)
	host := env.HostURL(c.slug)
	err := chromedp.Do(ctx,
		chromedp.Navigate(host+"/portal/login?next="+url.QueryEscape("/portal/rentals")),
		chromedp.WaitVisible(chromedp.CSS(`#login-form`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=email]`), "owner@"+c.slug+".test"),
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), apptest.Password),
		chromedp.Submit(chromedp.CSS(`#login-form`)),
	)
	if err != nil {
		t.Fatalf("sign in: %v", err)
	}
	apptest.WaitVisible(t, ctx, `#rental-form`)
	err = chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS(`input[name=title]`), "Northside Records showcase"),
		chromedp.SendKeys(chromedp.CSS(`input[name=renter_name]`), "Northside Records"),
		chromedp.SendKeys(chromedp.CSS(`input[name=renter_email]`), "events@northside.test"),
		chromedp.SendKeys(chromedp.CSS(`input[name=fee]`), "2500"),
		chromedp.SendKeys(chromedp.CSS(`input[name=deposit]`), "750.00"),
		chromedp.SetValue(chromedp.CSS(`input[name=deposit_due]`), "2031-05-01"),
		chromedp.SendKeys(chromedp.CSS(`tr:nth-child(1) input[name=addon_name]`), "Security guards"),
		chromedp.SetValue(chromedp.CSS(`tr:nth-child(1) select[name=addon_kind]`), "security"),
		chromedp.SetValue(chromedp.CSS(`tr:nth-child(1) input[name=addon_qty]`), "4"),
		chromedp.SendKeys(chromedp.CSS(`tr:nth-child(1) input[name=addon_price]`), "180"),
		chromedp.SendKeys(chromedp.CSS(`tr:nth-child(2) input[name=addon_name]`), "Cleaning crew"),
		chromedp.SetValue(chromedp.CSS(`tr:nth-child(2) select[name=addon_kind]`), "cleaning"),
		chromedp.SetValue(chromedp.CSS(`tr:nth-child(2) input[name=addon_qty]`), "2"),
		chromedp.SendKeys(chromedp.CSS(`tr:nth-child(2) input[name=addon_price]`), "95.50"),
		chromedp.Click(chromedp.CSS(`#create-rental`)),
	)
	if err != nil {
		t.Fatal(err)
	}
	apptest.WaitVisible(t, ctx, `#rental-lines`)
	text := func(sel string) string { t.Helper(); return apptest.Text(t, ctx, sel) }
	// 2,500 + 4 × 180 + 2 × 95.50 = 3,411.00.
	if s, tot := text(`#rental-status`), text(`#rental-total`); s != "awaiting deposit" || tot != "3,411.00 USD" {
		t.Fatalf("new rental: %q, total %q", s, tot)
	}
	confirmButtons, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#confirm-rental').length`))
	if err != nil || confirmButtons != 0 {
		t.Fatalf("a confirm button before the deposit is paid (%d, %v)", confirmButtons, err)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#open-deposit`))); err != nil {
		t.Fatal(err)
	}
	apptest.WaitVisible(t, ctx, `#rental-done`)
	apptest.Screenshot(t, ctx, "booking-rental-awaiting")

	path, err := chromedp.Run(ctx, chromedp.Evaluate[string](`location.pathname`))
	if err != nil {
		t.Fatal(err)
	}
	id := strings.TrimPrefix(path, "/portal/rentals/")
	p := c.depositIntent(t, id)
	payload, sig := stripeEvent(t, env.App.Config.RentalsWebhookSecret(), "evt_browser", "payment_intent.succeeded", p.PaymentIntentID, 75000, c.slug, id)
	if res, err := c.deliver(payload, sig); err != nil || !strings.Contains(string(res.Body), `"confirmed"`) {
		t.Fatalf("deposit webhook: %v %s", err, res.Body)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(host+"/portal/rentals/"+id), chromedp.Click(chromedp.CSS(`#issue-invoice`))); err != nil {
		t.Fatal(err)
	}
	apptest.WaitVisible(t, ctx, `#invoice-pdf`)
	if s, bal := text(`#rental-status`), text(`#rental-balance`); s != "confirmed on the calendar" || bal != "2,661.00 USD" {
		t.Fatalf("paid rental: %q, balance %q", s, bal)
	}
	if inv := text(`#invoice`); !strings.Contains(inv, "INV-000001") || !strings.Contains(inv, "3,411.00") {
		t.Fatalf("invoice %q", inv)
	}
	if c.holdStatus(t, hold) != "confirmed" {
		t.Fatal("the hold is not confirmed")
	}
	apptest.Screenshot(t, ctx, "booking-rental-confirmed")
	if err := chromedp.Do(ctx, chromedp.Navigate(host+"/portal/rentals")); err != nil {
		t.Fatal(err)
	}
	apptest.WaitVisible(t, ctx, `#rentals`)
	if l := text(`#rentals`); !strings.Contains(l, "Northside Records showcase") || !strings.Contains(l, "confirmed") || !strings.Contains(l, "INV-000001") {
		t.Fatalf("rentals list %q", l)
	}
	apptest.Screenshot(t, ctx, "booking-rentals")
}
