package inventory_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"marquee/app/apptest"
)

// After the sale, in a real browser: the order page's Transfer and List
// for resale buttons, the sold-out event page's "Join the waitlist" and its
// resale listings (bought into a hold), the waiting-list entry page and the
// portal's after-sale page. Screenshots are saved and were looked at.
func TestBrowserAfterSale(t *testing.T) {
	// Serial: a browser test: one Chromium at a time is what 2 cores take.
	s, ev, _ := waitNight(t, "afterweb", 2)
	n := &doorNight{shop: s, ev: ev}
	res := s.do(t, "GET", "/api/v1/events/"+ev+"/inventory", nil)
	res.JSON(t, &n.inv)
	paid := n.paidOrder(t, map[string]any{"tier_id": tierID(t, n.inv, "Floor"), "quantity": 2})
	ctx := apptest.Browser(t)
	host := s.env.HostURL(s.slug)
	wait := func(sel string) { t.Helper(); apptest.WaitVisible(t, ctx, sel) }
	text := func(sel string) string { t.Helper(); return apptest.Text(t, ctx, sel) }
	until := func(js, what string) {
		t.Helper()
		if !apptest.Poll(10*time.Second, func() bool {
			v, err := chromedp.Run(ctx, chromedp.Evaluate[bool](js))
			return err == nil && v
		}) {
			body, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`main`)))
			t.Fatalf("timed out: %s (page: %s)", what, body)
		}
	}
	do := func(actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatal(err)
		}
	}
	first, second := paid.Tickets[0].ID.String(), paid.Tickets[1].ID.String()
	sel := func(id, rest string) string { return `.after-sale[data-ticket="` + id + `"] ` + rest }

	// The order page: list one ticket, transfer the other.
	do(chromedp.Navigate(host + paid.OrderURL))
	wait(sel(second, `.resell summary`))
	apptest.Screenshot(t, ctx, "aftersale-order")
	do(chromedp.Click(chromedp.CSS(sel(second, `.resell summary`))),
		chromedp.SendKeys(chromedp.CSS(sel(second, `input[name=price]`)), "31"),
		chromedp.Click(chromedp.CSS(sel(second, `.list-form button`))))
	until(`(document.querySelector('.after-sale[data-ticket="`+second+`"] .after-msg')||{}).textContent.indexOf('at most') >= 0`, "the cap refused above 30.00")
	do(chromedp.SetValue(chromedp.CSS(sel(second, `input[name=price]`)), "25"),
		chromedp.Click(chromedp.CSS(sel(second, `.list-form button`))))
	until(`!!document.querySelector('.after-sale[data-ticket="`+second+`"] .listed')`, "listed")
	do(chromedp.Click(chromedp.CSS(sel(first, `.transfer summary`))),
		chromedp.SendKeys(chromedp.CSS(sel(first, `input[name=name]`)), "Bob Builder"),
		chromedp.SendKeys(chromedp.CSS(sel(first, `input[name=email]`)), "bob@example.com"),
		chromedp.Click(chromedp.CSS(sel(first, `.transfer-form button`))))
	until(`!!document.querySelector('.given')`, "transferred")
	if got := text(`.given`); !strings.Contains(got, "Bob Builder") {
		t.Fatalf("given: %q", got)
	}
	apptest.Screenshot(t, ctx, "aftersale-order-done")

	// The event page: sold out, a waiting list to join, the resale ticket.
	do(chromedp.Navigate(host + "/events/" + ev))
	wait(`#resale .buy-resale`)
	wait(`details.waitlist summary`)
	do(chromedp.Click(chromedp.CSS(`details.waitlist summary`)),
		chromedp.SendKeys(chromedp.CSS(`.wl-form input[name=email]`), "waiting@example.com"),
		chromedp.Click(chromedp.CSS(`.wl-form button`)))
	until(`document.querySelector('.wl-result').textContent.indexOf('number 1 in line') >= 0`, "place in line shown")
	apptest.Screenshot(t, ctx, "aftersale-event")
	do(chromedp.Click(chromedp.CSS(`.buy-resale`)))
	wait(`#hold`)
	if sum := text(`#hold-summary`); !strings.Contains(sum, "Resale ticket") || !strings.Contains(sum, "EUR 25.00") {
		t.Fatalf("resale hold summary %q", sum)
	}
	apptest.Screenshot(t, ctx, "aftersale-resale-hold")

	// The waiting-list entry's page shows the place.
	url, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('.wl-result a').getAttribute('href')`))
	if err != nil {
		t.Fatal(err)
	}
	do(chromedp.Navigate(host + url))
	wait(`#position`)
	if got := text(`#position`); got != "#1" {
		t.Fatalf("position %q", got)
	}
	apptest.Screenshot(t, ctx, "aftersale-waitlist")

	// Staff see the waiting list, listings and transfers.
	do(chromedp.Navigate(host+"/portal/login?next=/portal/inventory/"+ev+"/after-sale"),
		chromedp.WaitVisible(chromedp.CSS(`#login-form`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=email]`), "owner@"+s.slug+".test"),
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), apptest.Password),
		chromedp.Submit(chromedp.CSS(`#login-form`)))
	wait(`#waitlist table`)
	if w, l, tr := text(`#waitlist`), text(`#listings`), text(`#transfers`); !strings.Contains(w, "waiting@example.com") || !strings.Contains(l, "EUR 25.00") || !strings.Contains(tr, "Bob Builder") {
		t.Fatalf("portal: %q / %q / %q", w, l, tr)
	}
	apptest.Screenshot(t, ctx, "aftersale-portal")
}
