package inventory_test

import (
	"strings"
	"testing"
	"time"

	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"marquee/app/apptest"
)

// In a real browser, on a desktop and on a phone: staff find an order by
// the buyer's e-mail, tick one of its tickets, confirm the amount the page
// asks about, and only that ticket is refunded; the sales overview shows
// what is left, with its chart.
func TestBrowserFindOrderAndRefundOneTicket(t *testing.T) {
	// Serial: a browser test: one Chromium at a time is what 2 cores take.
	s, ev, inv := onSale(t, "refund-one", "One Ticket Night", simpleSetup(2, 10, 20, nil))
	floor := tierID(t, inv, "Floor")
	for _, size := range []struct {
		name          string
		width, height int64
		row           string
	}{{"desktop", 1280, 900, "1"}, {"phone", 390, 844, "2"}} {
		t.Run(size.name, func(t *testing.T) {
			ada := paidMixedOrder(t, s, ev, floor, []string{"A-" + size.row + "-1", "A-" + size.row + "-2"}, 1, "ada-"+size.name+"@example.com", "Ada Lovelace")
			other := paidMixedOrder(t, s, ev, floor, []string{"A-" + size.row + "-5"}, 0, "grace-"+size.name+"@example.com", "Grace Hopper")
			var seat2 string
			for _, k := range ada.Tickets {
				if k.SeatID != nil && strings.HasSuffix(*k.SeatID, "-2") {
					seat2 = k.ID.String()
				}
			}
			ctx := apptest.Browser(t)
			dialogs := chromedp.Events(ctx, cdppage.JavascriptDialogOpening)
			confirmed := make(chan string, 1)
			go func() {
				for d, err := range dialogs {
					if err != nil {
						return
					}
					confirmed <- d.Message
					_, _ = chromedp.Call(ctx, cdppage.HandleJavaScriptDialog, cdppage.HandleJavaScriptDialogParams{Accept: true})
				}
			}()
			host := s.env.HostURL(s.slug)
			if err := chromedp.Do(ctx,
				chromedp.EmulateViewport(size.width, size.height),
				chromedp.Navigate(host+"/portal/login?next=/portal/inventory/"+ev+"/orders"),
				chromedp.WaitVisible(chromedp.CSS(`#login-form`)),
				chromedp.SendKeys(chromedp.CSS(`input[name=email]`), "owner@"+s.slug+".test"),
				chromedp.SendKeys(chromedp.CSS(`input[name=password]`), apptest.Password),
				chromedp.Submit(chromedp.CSS(`#login-form`)),
			); err != nil {
				t.Fatal(err)
			}
			apptest.WaitVisible(t, ctx, `#order-search`)
			if err := chromedp.Do(ctx,
				chromedp.SendKeys(chromedp.CSS(`#order-search input[name=q]`), "ada-"+size.name+"@"),
				chromedp.Submit(chromedp.CSS(`#order-search`)),
			); err != nil {
				t.Fatal(err)
			}
			apptest.Eventually(t, 10*time.Second, "the search results", func() bool {
				v, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`location.search.includes('q=') && document.readyState === 'complete' && `+
					`!!document.querySelector('#orders tr[data-id="`+ada.ID.String()+`"]') && !document.querySelector('#orders tr[data-id="`+other.ID.String()+`"]')`))
				return err == nil && v
			})
			apptest.Screenshot(t, ctx, "orders-filters-"+size.name)
			if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#orders a.order-link`))); err != nil {
				t.Fatal(err)
			}
			apptest.WaitVisible(t, ctx, `#refund-tickets`)
			if tk := apptest.Text(t, ctx, `#order-tickets`); !strings.Contains(tk, "Section A, Row "+size.row+", Seat 2") || !strings.Contains(tk, "EUR 50.00") {
				t.Fatalf("order tickets: %q", tk)
			}
			// Nothing ticked: the page says so and sends nothing.
			if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#refund-tickets`))); err != nil {
				t.Fatal(err)
			}
			apptest.WaitVisible(t, ctx, `#refund-tickets-none`)
			if err := chromedp.Do(ctx,
				chromedp.Click(chromedp.CSS(`input[name=ticket][value="`+seat2+`"]`)),
				chromedp.SendKeys(chromedp.CSS(`#refund-tickets-form input[name=reason]`), "one guest cannot come"),
			); err != nil {
				t.Fatal(err)
			}
			apptest.Screenshot(t, ctx, "order-tick-one-"+size.name)
			if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#refund-tickets`))); err != nil {
				t.Fatal(err)
			}
			select {
			case msg := <-confirmed:
				if !strings.Contains(msg, "Refund EUR 50.00 to Ada Lovelace for 1 ticket(s)") {
					t.Fatalf("confirmation asked %q", msg)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("no confirmation was asked")
			}
			apptest.WaitVisible(t, ctx, `#order-flash`)
			if sum := apptest.Text(t, ctx, `#order-summary`); !strings.Contains(sum, "paid") {
				t.Fatalf("after refunding one ticket the order reads %q", sum)
			}
			if h := apptest.Text(t, ctx, `#order-history`); !strings.Contains(h, "Refunded 1 ticket(s), EUR 50.00: one guest cannot come") {
				t.Fatalf("history: %q", h)
			}
			if r := apptest.Text(t, ctx, `#refund`); !strings.Contains(r, "EUR 80.00 left of EUR 130.00") {
				t.Fatalf("the whole refund offers %q", r)
			}
			apptest.Screenshot(t, ctx, "order-one-refunded-"+size.name)
			if n := s.count(t, `SELECT count(*) FROM inv_tickets WHERE order_id = ? AND status = 'valid'`, ada.ID); n != 2 {
				t.Fatalf("%d tickets left valid, want 2", n)
			}
			if n := s.count(t, `SELECT count(*) FROM inv_seats WHERE event_id = ? AND id = ? AND state = 'available'`, ev, "A-"+size.row+"-2"); n != 1 {
				t.Fatal("the refunded seat is not back on sale")
			}
			if err := chromedp.Do(ctx, chromedp.Navigate(host+"/portal/inventory/"+ev+"/sales")); err != nil {
				t.Fatal(err)
			}
			apptest.WaitVisible(t, ctx, `#sales-chart`)
			apptest.Screenshot(t, ctx, "event-sales-"+size.name)
			if err := chromedp.Do(ctx, chromedp.Navigate(host+"/portal/sales")); err != nil {
				t.Fatal(err)
			}
			apptest.WaitVisible(t, ctx, `#sales-by-event`)
			if e := apptest.Text(t, ctx, `#sales-by-event`); !strings.Contains(e, "One Ticket Night") {
				t.Fatalf("chain sales by event: %q", e)
			}
			apptest.Screenshot(t, ctx, "chain-sales-"+size.name)
		})
	}
}
