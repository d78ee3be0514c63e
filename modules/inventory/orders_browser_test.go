package inventory_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/google/uuid"

	"marquee/app/apptest"
)

// In a real browser, on a desktop and on a phone: staff find an order by
// the buyer's e-mail, open it, confirm the refund the page asks about, and
// the order reads refunded with its tickets void; the other order is left
// alone.
func TestBrowserFindOrderAndRefund(t *testing.T) {
	// Serial: a browser test: one Chromium at a time is what 2 cores take.
	s, ev, _ := onSale(t, "refund-page", "Refund Night", simpleSetup(2, 10, 0, nil))
	paidOrder := func(email, name string, seats ...string) string {
		t.Helper()
		buyer := s.buyer(t)
		h := s.mustHold(t, ev, buyer, map[string]any{"seats": seats})
		res := s.env.Do(t, "POST", s.slug, "/api/v1/orders", "", map[string]any{"hold_id": h.ID, "buyer": map[string]string{"email": email, "name": name}},
			"Idempotency-Key", uuid.NewString(), "X-Buyer-Token", buyer)
		mustStatus(t, res, http.StatusCreated)
		var o orderOut
		res.JSON(t, &o)
		mustStatus(t, s.webhook(t, "evt_"+uuid.NewString(), "payment_intent.succeeded", o.Order), http.StatusOK)
		return o.ID.String()
	}
	for _, size := range []struct {
		name          string
		width, height int64
		seat          string
	}{{"desktop", 1280, 900, "A-1-"}, {"phone", 390, 844, "A-2-"}} {
		t.Run(size.name, func(t *testing.T) {
			ada := paidOrder("ada-"+size.name+"@example.com", "Ada Lovelace", size.seat+"1", size.seat+"2")
			other := paidOrder("grace-"+size.name+"@example.com", "Grace Hopper", size.seat+"5")
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
				chromedp.Navigate(host+"/portal/login?next=/portal/inventory/"+ev),
				chromedp.WaitVisible(chromedp.CSS(`#login-form`)),
				chromedp.SendKeys(chromedp.CSS(`input[name=email]`), "owner@"+s.slug+".test"),
				chromedp.SendKeys(chromedp.CSS(`input[name=password]`), apptest.Password),
				chromedp.Submit(chromedp.CSS(`#login-form`)),
			); err != nil {
				t.Fatal(err)
			}
			apptest.WaitVisible(t, ctx, `#orders-link`)
			if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#orders-link`))); err != nil {
				t.Fatal(err)
			}
			apptest.WaitVisible(t, ctx, `#order-search`)
			if err := chromedp.Do(ctx,
				chromedp.SendKeys(chromedp.CSS(`#order-search input[name=q]`), "ada-"+size.name+"@"),
				chromedp.Submit(chromedp.CSS(`#order-search`)),
			); err != nil {
				t.Fatal(err)
			}
			// The results page has arrived once the other buyer's row is gone
			// and the search is in the address.
			apptest.Eventually(t, 10*time.Second, "the search results", func() bool {
				v, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`location.search.includes('q=') && document.readyState === 'complete' && `+
					`!!document.querySelector('#orders tr[data-id="`+ada+`"]') && !document.querySelector('#orders tr[data-id="`+other+`"]')`))
				return err == nil && v
			})
			if list := apptest.Text(t, ctx, `#orders`); strings.Contains(list, "Grace Hopper") || !strings.Contains(list, "EUR 100.00") {
				t.Fatalf("search by e-mail: %q", list)
			}
			apptest.Screenshot(t, ctx, "orders-search-"+size.name)
			if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#orders a.order-link`))); err != nil {
				t.Fatal(err)
			}
			apptest.WaitVisible(t, ctx, `#refund-order`)
			if tk := apptest.Text(t, ctx, `#order-tickets`); !strings.Contains(tk, size.seat+"1") || !strings.Contains(tk, size.seat+"2") {
				t.Fatalf("order tickets: %q", tk)
			}
			if err := chromedp.Do(ctx,
				chromedp.SendKeys(chromedp.CSS(`#refund input[name=reason]`), "cannot attend"),
				chromedp.Click(chromedp.CSS(`#refund-order`)),
			); err != nil {
				t.Fatal(err)
			}
			if msg := <-confirmed; !strings.Contains(msg, "Refund EUR 100.00 to Ada Lovelace") {
				t.Fatalf("confirmation asked %q", msg)
			}
			apptest.WaitVisible(t, ctx, `#order-flash`)
			if sum := apptest.Text(t, ctx, `#order-summary`); !strings.Contains(sum, "refunded") {
				t.Fatalf("after the refund: %q", sum)
			}
			if tk := apptest.Text(t, ctx, `#order-tickets`); strings.Contains(tk, "valid") {
				t.Fatalf("tickets after the refund: %q", tk)
			}
			apptest.Screenshot(t, ctx, "order-refunded-"+size.name)
			if n := s.count(t, `SELECT count(*) FROM inv_orders WHERE id = ? AND status = 'paid'`, other); n != 1 {
				t.Fatal("the other order was touched")
			}
			if n := s.count(t, `SELECT count(*) FROM inv_seats WHERE id IN (?, ?) AND state = 'available'`, size.seat+"1", size.seat+"2"); n != 2 {
				t.Fatalf("%d refunded seats back on sale", n)
			}
		})
	}
}
