package inventory_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"gorm.io/gorm"

	"marquee/app/apptest"
)

// One buyer, one cart, in a real browser: a hold survives a reload as the
// buyer's own (their seat marked theirs, the countdown running), and seats
// or GA tickets picked afterwards join that hold, which keeps its expiry.
// Screenshots are saved and were looked at.
func TestBrowserOneCart(t *testing.T) {
	// Serial: a browser test: one Chromium at a time is what 2 cores take.
	s, ev, _ := onSale(t, "cartweb", "One Cart Night", simpleSetup(2, 10, 50, nil))
	env := s.env
	ctx := apptest.Browser(t)
	host := env.HostURL(s.slug)

	wait := func(sel string) { t.Helper(); apptest.WaitVisible(t, ctx, sel) }
	text := func(sel string) string { t.Helper(); return apptest.Text(t, ctx, sel) }
	// until polls the page (no signal reaches the test from inside it).
	until := func(js, what string) {
		t.Helper()
		held := apptest.Poll(10*time.Second, func() bool {
			v, err := chromedp.Run(ctx, chromedp.Evaluate[bool](js))
			if err != nil {
				t.Fatalf("eval %s: %v", js, err)
			}
			return v
		})
		if !held {
			summary, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#shop`)))
			t.Fatalf("timed out: %s (page: %s)", what, summary)
		}
	}
	click := func(sel string) {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(sel))); err != nil {
			t.Fatalf("click %s: %v", sel, err)
		}
	}
	activeHolds := func() (n, quantity int64, expires string) {
		t.Helper()
		n = s.count(t, `SELECT count(*) FROM inv_holds WHERE event_id = ? AND status = 'active'`, ev)
		quantity = s.count(t, `SELECT coalesce(sum(quantity), 0) FROM inv_holds WHERE event_id = ? AND status = 'active'`, ev)
		s.sql(t, func(tx *gorm.DB) error {
			return tx.Raw(`SELECT coalesce(max(expires_at)::text, '') FROM inv_holds WHERE event_id = ? AND status = 'active'`, ev).Row().Scan(&expires)
		})
		return n, quantity, expires
	}

	if err := chromedp.Do(ctx, chromedp.Navigate(host+"/events/"+ev)); err != nil {
		t.Fatal(err)
	}
	wait(`#seatmap svg`)
	until(`document.querySelectorAll('#seatmap .seat').length === 20`, "20 seats drawn")
	click(`#seat-A-1-1`)
	until(`document.getElementById('picked').textContent.indexOf('Section A, Row 1, Seat 1') >= 0`, "seat picked")
	click(`#hold-seats`)
	wait(`#hold`)
	until(`/^(09|10):\d\d$/.test(document.getElementById('countdown').textContent)`, "countdown running")
	n, q, expires := activeHolds()
	if n != 1 || q != 1 {
		t.Fatalf("after the first hold: %d holds, %d tickets", n, q)
	}

	// Reload: the hold is found again and shown as the buyer's own.
	if err := chromedp.Do(ctx, chromedp.Reload()); err != nil {
		t.Fatal(err)
	}
	wait(`#hold`)
	until(`/^(09|10):\d\d$/.test(document.getElementById('countdown').textContent)`, "countdown running after the reload")
	until(`document.getElementById('seat-A-1-1').classList.contains('mine')`, "the held seat marked as the buyer's own")
	if sum := text(`#hold-summary`); !strings.Contains(sum, "Section A, Row 1, Seat 1 ") || !strings.Contains(sum, "EUR 50.00") {
		t.Fatalf("summary after the reload: %q", sum)
	}
	apptest.Screenshot(t, ctx, "inventory-cart-reloaded")

	// A second seat and GA tickets join the same hold.
	click(`#seat-A-2-5`)
	until(`document.getElementById('hold-seats').textContent === 'Add selected seats to your hold' && !document.getElementById('hold-seats').disabled`,
		"the seat button adds to the hold")
	click(`#hold-seats`)
	until(`document.getElementById('hold-summary').textContent.indexOf('Row 2, Seat 5') >= 0`, "the added seat in the cart")
	click(`.tier[data-tier] .hold-ga`)
	until(`document.getElementById('hold-summary').textContent.indexOf('Floor: 2 tickets') >= 0`, "GA tickets in the cart")
	sum := text(`#hold-summary`)
	if !strings.Contains(sum, "Section A, Row 1, Seat 1; Section A, Row 2, Seat 5") || !strings.Contains(sum, "EUR 160.00") {
		t.Fatalf("cart summary %q", sum)
	}
	if e := text(`#shop-error`); e != "" {
		t.Fatalf("shop error: %q", e)
	}
	n, q, after := activeHolds()
	if n != 1 || q != 4 || after != expires {
		t.Fatalf("after adding: %d holds, %d tickets, expiry %s (was %s)", n, q, after, expires)
	}
	// The additions reach the open page's counts live (stream, then a re-read).
	until(`Array.from(document.querySelectorAll('.tier-left')).map(function(e){ return e.textContent; }).join('/') === '18/48'`,
		"tier counts after the additions")
	apptest.Screenshot(t, ctx, "inventory-cart-added")

	// Reloaded again, the one cart shows everything.
	if err := chromedp.Do(ctx, chromedp.Reload()); err != nil {
		t.Fatal(err)
	}
	wait(`#hold`)
	until(`document.getElementById('hold-summary').textContent.indexOf('Floor: 2 tickets') >= 0`, "the whole cart after a reload")
	if sum := text(`#hold-summary`); !strings.Contains(sum, "Row 2, Seat 5") || !strings.Contains(sum, "EUR 160.00") {
		t.Fatalf("cart after reload %q", sum)
	}
	// One expiry for the whole cart, said on the venue's clock (Berlin).
	exp, err := time.Parse("2006-01-02 15:04:05.999999-07", expires)
	if err != nil {
		t.Fatalf("expiry %q: %v", expires, err)
	}
	until(`/^Everything in your cart is held until .*`+exp.Format(":04")+`.*(CET|CEST|GMT\+[12])\.$/.test(document.getElementById('hold-until').textContent)`,
		"the cart's expiry shown at "+exp.Format("15:04 UTC"))

	// A phone with the same buyer that does not know about the cart yet
	// (its look-up for the buyer's hold answers nothing, as it would have
	// before the cart existed): its "new hold" joins the cart on the server.
	tok, err := chromedp.Run(ctx, chromedp.Evaluate[string](`localStorage.getItem('marquee_buyer')`))
	if err != nil || tok == "" {
		t.Fatalf("buyer token: %q %v", tok, err)
	}
	phone := apptest.Browser(t)
	pp := browserPage{t, phone}
	pp.do(chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(3), chromedp.EmulateMobile))
	onNewDocument(t, phone, `localStorage.setItem('marquee_buyer', `+jsString(tok)+`);
		(function(f){ window.fetch = function(u){ if (String(u).indexOf('/api/v1/holds?mine') >= 0) return Promise.resolve(new Response('{"holds":[]}', {status: 200, headers: {'Content-Type': 'application/json'}})); return f.apply(this, arguments); }; })(window.fetch);`)
	pp.do(chromedp.Navigate(host + "/events/" + ev))
	pp.wait(`.tier[data-tier] .hold-ga`)
	if pp.truth(`!document.getElementById('hold').classList.contains('hidden')`) {
		t.Fatal("the phone shows a cart before holding anything")
	}
	pp.tap(true, `.tier[data-tier] .hold-ga`)
	pp.until(`document.getElementById('hold-summary').textContent.indexOf('Floor: 4 tickets') >= 0`, "the phone's GA tickets joined the cart")
	if sum := pp.text(`#hold-summary`); !strings.Contains(sum, "Section A, Row 1, Seat 1; Section A, Row 2, Seat 5") || !strings.Contains(sum, "EUR 220.00") {
		t.Fatalf("the phone's cart %q", sum)
	}
	if j := pp.text(`#hold-joined`); !strings.Contains(j, "Added to the cart you already had open") {
		t.Fatalf("joined note %q", j)
	}
	n, q, after = activeHolds()
	if n != 1 || q != 6 || after != expires {
		t.Fatalf("after the phone's hold: %d holds, %d tickets, expiry %s (was %s)", n, q, after, expires)
	}
	pp.do(chromedp.ScrollIntoView(chromedp.CSS(`#hold`)))
	apptest.Screenshot(t, phone, "inventory-cart-joined-phone")
	elementShot(t, phone, `#hold`, "inventory-cart-joined-phone-card")
	// The desktop tab learns of it on its next look (a reload here).
	if err := chromedp.Do(ctx, chromedp.Reload()); err != nil {
		t.Fatal(err)
	}
	until(`document.getElementById('hold-summary').textContent.indexOf('Floor: 4 tickets') >= 0`, "the desktop sees the joined cart")
	if err := chromedp.Do(ctx, chromedp.ScrollIntoView(chromedp.CSS(`#hold`))); err != nil {
		t.Fatal(err)
	}
	apptest.Screenshot(t, ctx, "inventory-cart-joined-desktop")
}
