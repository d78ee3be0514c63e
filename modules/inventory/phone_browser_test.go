package inventory_test

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"marquee/app/apptest"
)

// threeSections is an event with sections A, B and C (rows×perRow seats
// each, one reserved zone) and a GA floor of ga places.
func threeSections(rows, perRow, ga int) map[string]any {
	var rs []map[string]any
	for r := 1; r <= rows; r++ {
		rs = append(rs, map[string]any{"label": fmt.Sprint(r), "seats": perRow})
	}
	return map[string]any{"max_ip_holds": 0, "max_buyer_holds": 5, "max_buyer_tickets": 60,
		"zones": []map[string]any{{"name": "Stalls", "kind": "reserved"}, {"name": "Floor", "kind": "ga", "capacity": ga}},
		"tiers": []map[string]any{
			{"name": "Stalls", "zone": "Stalls", "price": 5000, "currency": "EUR", "max_per_order": 20},
			{"name": "Floor", "zone": "Floor", "price": 3000, "currency": "EUR", "max_per_order": 10}},
		"layout": map[string]any{"sections": []map[string]any{
			{"name": "A", "zone": "Stalls", "rows": rs}, {"name": "B", "zone": "Stalls", "rows": rs}, {"name": "C", "zone": "Stalls", "rows": rs}}}}
}

// rawUUID finds a UUID in text a person reads.
var rawUUID = regexp.MustCompile(`[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}`)

// browserPage drives one tab with helpers that fail the test with what the
// page said.
type browserPage struct {
	t   *testing.T
	ctx context.Context
}

func (p browserPage) do(actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, actions...); err != nil {
		body, _ := chromedp.Run(p.ctx, chromedp.Text(chromedp.CSS(`body`)))
		p.t.Fatalf("%v\npage: %s", err, body)
	}
}

func (p browserPage) truth(js string) bool {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Evaluate[bool](js))
	if err != nil {
		p.t.Fatalf("eval %s: %v", js, err)
	}
	return v
}

func (p browserPage) num(js string) float64 {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Evaluate[float64](js))
	if err != nil {
		p.t.Fatalf("eval %s: %v", js, err)
	}
	return v
}

// until polls the page (no signal reaches the test from inside it).
func (p browserPage) until(js, what string) {
	p.t.Helper()
	if !apptest.Poll(10*time.Second, func() bool { return p.truth(js) }) {
		body, _ := chromedp.Run(p.ctx, chromedp.Text(chromedp.CSS(`body`)))
		p.t.Fatalf("timed out: %s\npage: %s", what, body)
	}
}

func (p browserPage) text(sel string) string { p.t.Helper(); return apptest.Text(p.t, p.ctx, sel) }
func (p browserPage) wait(sel string)        { p.t.Helper(); apptest.WaitVisible(p.t, p.ctx, sel) }

// tap taps on a phone (touch events) and clicks on a desktop.
func (p browserPage) tap(phone bool, sel string) {
	p.t.Helper()
	if phone {
		p.do(chromedp.Tap(chromedp.CSS(sel)))
		return
	}
	p.do(chromedp.Click(chromedp.CSS(sel)))
}

// A buyer's whole purchase at phone and desktop sizes: the map starts with
// the sections, a section zooms the map until each seat is at least 24 CSS
// px, seats and GA tickets go into one cart, the cart survives a reload
// (drawn as the buyer's own in the first frame) and shows in a second tab,
// Release is off once the order exists (also after a reload), and the order
// page names seats in words, shows no ids and links back. Screenshots are
// saved and were looked at.
func TestBrowserBuyOnPhoneAndDesktop(t *testing.T) {
	// Serial: a browser test: one Chromium at a time is what 2 cores take.
	env, inv := startEnv(t)
	s := newShop(t, env, inv, "phone")
	host := s.env.HostURL(s.slug)
	for _, size := range []struct {
		name  string
		w, h  int64
		phone bool
	}{{"phone", 390, 844, true}, {"desktop", 1280, 900, false}} {
		t.Run(size.name, func(t *testing.T) {
			ev := s.event(t, "Pocket Night")
			s.configure(t, ev, threeSections(10, 20, 100))
			ctx := apptest.Browser(t)
			p := browserPage{t, ctx}
			if size.phone {
				p.do(chromedp.EmulateViewport(size.w, size.h, chromedp.EmulateScale(3), chromedp.EmulateMobile))
			} else {
				p.do(chromedp.EmulateViewport(size.w, size.h))
			}
			row := map[bool]string{true: "3", false: "5"}[size.phone]
			seat1, seat2 := "B-"+row+"-10", "B-"+row+"-11"
			// The first frame's drawing of seat1, recorded on every page load.
			firstFrame := `document.addEventListener('DOMContentLoaded', function(){ requestAnimationFrame(function(){
				var el = document.getElementById('seat-` + seat1 + `'); window.__firstFrame = el ? el.getAttribute('class') : ''; }); });`
			onNewDocument(t, ctx, firstFrame)

			p.do(chromedp.Navigate(host + "/events/" + ev))
			p.wait(`#seatmap svg`)
			p.until(`document.querySelectorAll('#seatmap .seat').length === 600`, "600 seats drawn")
			if w := p.num(`document.documentElement.scrollWidth`); w > float64(size.w) {
				t.Fatalf("the page is %v px wide at %d px", w, size.w)
			}
			// Section first: at the whole-venue view seats are too small to
			// pick on a phone; a tap on a section zooms to it.
			small := p.num(`document.getElementById('seat-` + seat1 + `').getBoundingClientRect().width`)
			if size.phone && (small >= 24 || !p.truth(`document.getElementById('seatmap').classList.contains('overview')`)) {
				t.Fatalf("whole venue on a phone: seats %v px, not the overview", small)
			}
			apptest.Screenshot(t, ctx, "phone-"+size.name+"-venue")
			p.tap(size.phone, `.sec-btn[data-section="B"]`)
			p.until(`document.querySelector('.sec-btn[data-section="B"]').getAttribute('aria-pressed') === 'true'`, "section B chosen")
			if px := p.num(`document.getElementById('seat-` + seat1 + `').getBoundingClientRect().width`); px < 24 {
				t.Fatalf("seats drawn %v px across after choosing the section, want at least 24", px)
			}
			if lbl := p.truth(`document.getElementById('seat-` + seat1 + `').getAttribute('aria-label') === 'Section B, Row ` + row + `, Seat 10, EUR 50.00'`); !lbl {
				t.Fatalf("seat label %q", p.text(`#map-hint`))
			}
			p.tap(size.phone, `#seat-`+seat1)
			p.tap(size.phone, `#seat-`+seat2)
			p.until(`document.querySelectorAll('#seatmap .seat.selected').length === 2`, "two seats picked")
			if got, want := p.text(`#picked`), "Picked: Section B, Row "+row+", Seats 10, 11"; got != want {
				t.Fatalf("picked %q, want %q", got, want)
			}
			apptest.Screenshot(t, ctx, "phone-"+size.name+"-picked")
			p.tap(size.phone, `#hold-seats`)
			p.wait(`#hold`)
			p.until(`/^(09|10):\d\d$/.test(document.getElementById('countdown').textContent)`, "countdown running")
			p.until(`document.getElementById('seat-`+seat1+`').classList.contains('mine')`, "the held seat is the buyer's")

			// GA joins the same cart.
			p.tap(size.phone, `.tier .hold-ga`)
			p.until(`document.getElementById('hold-summary').textContent.indexOf('Floor: 2 tickets') >= 0`, "GA in the cart")
			if sum := p.text(`#hold-summary`); !strings.Contains(sum, "Section B, Row "+row+", Seats 10, 11") || !strings.Contains(sum, "EUR 160.00") {
				t.Fatalf("cart %q", sum)
			}
			if n := s.count(t, `SELECT count(*) FROM inv_holds WHERE event_id = ? AND status = 'active'`, ev); n != 1 {
				t.Fatalf("%d active holds, want one cart", n)
			}
			apptest.Screenshot(t, ctx, "phone-"+size.name+"-cart")

			// Reload: the seats are the buyer's from the first frame, the cart is back.
			p.do(chromedp.Reload())
			p.wait(`#hold`)
			p.until(`window.__firstFrame !== undefined`, "the first frame recorded")
			if !p.truth(`window.__firstFrame === 'seat mine'`) {
				got, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`String(window.__firstFrame)`))
				t.Fatalf("after a reload the buyer's seat was first drawn as %q", got)
			}
			p.until(`document.getElementById('hold-summary').textContent.indexOf('Floor: 2 tickets') >= 0`, "the cart after a reload")

			// A second tab of the same browser sees the same cart and adds to it; the first tab follows.
			tab, cancel := chromedp.NewContext(ctx)
			defer cancel()
			p2 := browserPage{t, tab}
			if size.phone {
				p2.do(chromedp.EmulateViewport(size.w, size.h, chromedp.EmulateScale(3), chromedp.EmulateMobile))
			}
			p2.do(chromedp.Navigate(host + "/events/" + ev))
			p2.wait(`#hold`)
			p2.until(`document.getElementById('seat-`+seat2+`').classList.contains('mine')`, "the cart's seat is the buyer's in a second tab")
			p2.truth(`(document.querySelector('.tier .hold-ga').parentNode.querySelector('input').value = '1') === '1'`)
			p2.tap(false, `.tier .hold-ga`)
			p2.until(`document.getElementById('hold-summary').textContent.indexOf('Floor: 3 tickets') >= 0`, "the second tab added a ticket")
			p.until(`document.getElementById('hold-summary').textContent.indexOf('Floor: 3 tickets') >= 0`, "the first tab shows the second tab's addition")
			cancel()
			if n := s.count(t, `SELECT count(*) FROM inv_holds WHERE event_id = ? AND status = 'active'`, ev); n != 1 {
				t.Fatalf("%d active holds after the second tab, want one cart", n)
			}

			p.do(
				chromedp.SendKeys(chromedp.CSS(`#checkout input[name=email]`), size.name+"@example.com"),
				chromedp.SendKeys(chromedp.CSS(`#checkout input[name=name]`), "Ada Lovelace"),
			)
			p.tap(size.phone, `#to-payment`)
			p.wait(`#pay-test`)
			if !p.truth(`document.getElementById('release').disabled`) {
				t.Fatal("Release still active once the order exists")
			}
			apptest.Screenshot(t, ctx, "phone-"+size.name+"-checkout")
			// A reload mid-payment keeps the order step (and Release off).
			p.do(chromedp.Reload())
			p.wait(`#pay-test`)
			if !p.truth(`document.getElementById('release').disabled`) {
				t.Fatal("Release active again after a reload")
			}
			p.tap(size.phone, `#pay-test`)
			p.wait(`#tickets`)
			if st := p.text(`#order-status`); st != "paid" {
				t.Fatalf("order status %q", st)
			}
			p.until(`document.querySelectorAll('#tickets .ticket svg.qr').length === 5`, "five QR tickets")
			body := p.text(`main`)
			for _, want := range []string{"Section B, Row " + row + ", Seat 10", "Section B, Row " + row + ", Seat 11", "Floor", "Booking reference",
				"link in the email we sent to " + size.name + "@example.com", "All events", "Ticket 5 of 5"} {
				if !strings.Contains(body, want) {
					t.Fatalf("order page lacks %q: %s", want, body)
				}
			}
			if id := rawUUID.FindString(body); id != "" {
				t.Fatalf("order page shows a raw id %s: %s", id, body)
			}
			if !p.truth(`!!document.querySelector('#order-nav a[href="/events"]') && !!document.querySelector('#order-nav a[href="/events/` + ev + `"]')`) {
				t.Fatal("no way back to the storefront from the order page")
			}
			if w := p.num(`document.documentElement.scrollWidth`); w > float64(size.w) {
				t.Fatalf("the order page is %v px wide at %d px", w, size.w)
			}
			apptest.Screenshot(t, ctx, "phone-"+size.name+"-order")
			var orders, tickets int64
			orders = s.count(t, `SELECT count(*) FROM inv_orders WHERE event_id = ? AND email = ? AND status = 'paid'`, ev, size.name+"@example.com")
			tickets = s.count(t, `SELECT count(*) FROM inv_tickets tk JOIN inv_orders o ON o.id = tk.order_id WHERE o.email = ? AND tk.status = 'valid'`, size.name+"@example.com")
			if orders != 1 || tickets != 5 {
				t.Fatalf("%d paid orders with %d tickets, want one order of 2 seats and 3 GA", orders, tickets)
			}
			if st := s.seatState(t, ev, seat2); st != "sold" {
				t.Fatalf("seat %s is %s after paying", seat2, st)
			}
		})
	}
}

// onNewDocument runs script in every page the tab opens from now on, before
// the page's own scripts.
func onNewDocument(t *testing.T, ctx context.Context, script string) {
	t.Helper()
	err := chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, cdppage.AddScriptToEvaluateOnNewDocument, cdppage.AddScriptToEvaluateOnNewDocumentParams{Source: script})
		return err
	}))
	if err != nil {
		t.Fatalf("script on new documents: %v", err)
	}
}
