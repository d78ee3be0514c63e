package booking_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"marquee/app/apptest"
	"marquee/modules/booking"
)

// In a real browser: the agent opens the link they were sent, sees only
// their artists' offers, opens the accepted one, reads the contract with
// its digest and signs it by name; the promoter signs in the portal, where
// the contract shows both signatures; the agent then reads the settlement
// sheet and acknowledges it.
func TestBrowserAgentContractAndSettlement(t *testing.T) {
	env, _ := startEnv(t)
	c := newChain(t, env, "agentpage")
	d := c.settled(t, 8)
	c.create(t, c.artistB, "title", "Not Maya's offer")
	id := d.ID.String()
	sum := c.contractOf(t, id).SHA256

	ctx := apptest.Browser(t)
	host := env.HostURL(c.slug)
	text := func(sel string) string { t.Helper(); return apptest.Text(t, ctx, sel) }
	if err := chromedp.Do(ctx, chromedp.Navigate(host+"/agent?token="+url.QueryEscape(c.linkA))); err != nil {
		t.Fatal(err)
	}
	apptest.WaitVisible(t, ctx, `#agent-offers`)
	if offers := text(`#agent-offers`); !strings.Contains(offers, "Velvet Static live") || strings.Contains(offers, "Not Maya's offer") {
		t.Fatalf("agent's offers: %q", offers)
	}
	apptest.Screenshot(t, ctx, "booking-agent-offers")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#agent-offers a`))); err != nil {
		t.Fatal(err)
	}
	apptest.WaitVisible(t, ctx, `#contract`)
	if got := text(`#contract-sha`); got != sum {
		t.Fatalf("the page shows digest %q, the contract's is %s", got, sum)
	}
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS(`#sign-name`), "Maya for Velvet Static"),
		chromedp.Click(chromedp.CSS(`#sign`))); err != nil {
		t.Fatal(err)
	}
	apptest.Eventually(t, 10*time.Second, "the agent's signature is on the page", func() bool {
		s, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#signatures`)))
		return strings.Contains(s, "Maya for Velvet Static")
	})
	apptest.Screenshot(t, ctx, "booking-agent-contract")

	// The promoter signs in the portal.
	err := chromedp.Do(ctx,
		chromedp.Navigate(host+"/portal/login?next="+url.QueryEscape("/portal/bookings/"+id)),
		chromedp.WaitVisible(chromedp.CSS(`#login-form`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=email]`), "owner@"+c.slug+".test"),
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), apptest.Password),
		chromedp.Submit(chromedp.CSS(`#login-form`)),
	)
	if err != nil {
		t.Fatal(err)
	}
	apptest.WaitVisible(t, ctx, `#sign-form`)
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS(`#sign-name`), "Dana Promoter"), chromedp.Submit(chromedp.CSS(`#sign-form`))); err != nil {
		t.Fatal(err)
	}
	apptest.Eventually(t, 10*time.Second, "both signatures in the portal", func() bool {
		s, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#signatures`)))
		return strings.Contains(s, "Dana Promoter") && strings.Contains(s, "Maya for Velvet Static")
	})
	if st := text(`#contract-status`); !strings.Contains(st, "signed by every party") {
		t.Errorf("contract status %q", st)
	}
	apptest.Screenshot(t, ctx, "booking-portal-contract")
	if v := c.contractOf(t, id); len(v.Signatures) != 2 || v.Status == booking.ContractSigning {
		t.Fatalf("after both signed in the browser: %+v", v)
	}

	// The settlement sheet, from the agent's link.
	if err := chromedp.Do(ctx, chromedp.Navigate(host+"/agent/bookings/"+id+"/settlement?token="+url.QueryEscape(c.linkA))); err != nil {
		t.Fatal(err)
	}
	apptest.WaitVisible(t, ctx, `#sheet`)
	sheet := text(`#sheet`)
	for _, w := range []string{"Walkout", "21,824.12 USD", "Half on signing", "US-NY"} {
		if !strings.Contains(sheet, w) {
			t.Errorf("sheet lacks %q: %q", w, sheet)
		}
	}
	if strings.Contains(sheet, "Promoter net") {
		t.Error("the agent sees the promoter's P&L")
	}
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS(`#ack-name`), "Maya"), chromedp.Click(chromedp.CSS(`#ack`))); err != nil {
		t.Fatal(err)
	}
	if !apptest.Poll(10*time.Second, func() bool {
		s, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#acks`)))
		return strings.Contains(s, "Maya") && strings.Contains(s, "this sheet")
	}) {
		apptest.Screenshot(t, ctx, "booking-agent-settlement-failed")
		t.Fatal("the acknowledgment is not on the page")
	}
	apptest.Screenshot(t, ctx, "booking-agent-settlement")
	res := c.do(t, "GET", "/api/v1/bookings/"+id+"/settlement", nil)
	mustStatus(t, res, http.StatusOK)
	if v := decode[booking.SettlementView](t, res.Body); len(v.Acknowledgments) != 1 || v.Acknowledgments[0].Party != booking.Artist {
		t.Fatalf("acknowledgments: %+v", v.Acknowledgments)
	}
}
