package inventory_test

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"marquee/app/apptest"
)

// The order page offers the PDF, a resend, and each ticket's wallet links.
func TestBrowserOrderPageDelivery(t *testing.T) {
	// Serial: a browser test: one Chromium at a time is what 2 cores take.
	s, ev, stalls := walletEnv(t, "orderpage")
	o := paidOrder(t, s, ev, map[string]any{"seats": []string{"A-1-1", "A-1-2"}, "tier_id": stalls})
	ctx := apptest.Browser(t)
	p := page{t, ctx}
	p.run(chromedp.Navigate(s.env.HostURL(s.slug) + o.OrderURL))
	p.wait(`#delivery`)
	apple := p.eval(`String(document.querySelectorAll('#tickets a.wallet[href*="/wallet/apple?sig="]').length)`)
	google := p.eval(`String(document.querySelectorAll('#tickets a.wallet[href^="https://pay.google.com/gp/v/save/"]').length)`)
	pdf := p.eval(`document.getElementById('download-pdf').getAttribute('href')`)
	seat := p.eval(`document.querySelector('#tickets .ticket').textContent`)
	p.run(chromedp.Click(chromedp.CSS(`#resend`)))
	apptest.Eventually(t, 10e9, "the resend answered", func() bool {
		return p.eval(`document.getElementById('resend-result').textContent`) != ""
	})
	result := p.text(`#resend-result`)
	apptest.Screenshot(t, ctx, "inventory-order-delivery")
	if apple != "2" || google != "2" || !strings.Contains(pdf, "/tickets.pdf?sig=") || result != "On its way to your inbox." || !strings.Contains(seat, "Section A, Row 1, Seat 1") {
		t.Fatalf("apple %s, google %s, pdf %q, resend %q, seat %q", apple, google, pdf, result, seat)
	}
	if n := s.count(t, `SELECT count(*) FROM mail_outbox WHERE ref = ? AND purpose_key LIKE '%:resend:%'`, o.ID.String()); n != 1 {
		t.Fatalf("%d resends queued", n)
	}
}
