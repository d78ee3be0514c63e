package integrations_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"marquee/app/apptest"
)

// In a browser, the channels pages show each connector's health and the
// event's reconciliation with live numbers, oversells and the timeline.
func TestBrowserChannelsPages(t *testing.T) {
	e := startEnv(t)
	c := newChain(t, e, 200, map[string]int{"web": 100, "ticketmaster": 50, "eventbrite": 50})
	apptest.MustStatus(t, c.allocate(t, "ticketmaster", 40), http.StatusOK)
	apptest.MustStatus(t, c.allocate(t, "eventbrite", 30), http.StatusOK)
	for i := 0; i < 6; i++ {
		c.tm.Sell(c.tmEvent, 2)
		c.eb.PlaceOrder(c.ebEvent, c.ebClass, 1)
	}
	c.eb.Oversell = true
	for i := 0; i < 26; i++ {
		c.eb.PlaceOrder(c.ebEvent, c.ebClass, 1)
	}
	c.poll(t)
	apptest.MustStatus(t, c.do(t, "POST", "/api/v1/integrations/events/"+c.event.String()+"/reconcile", nil), http.StatusOK)

	ctx := apptest.Browser(t)
	next := "/portal/channels"
	if err := chromedp.Do(ctx,
		chromedp.Navigate(e.HostURL(c.slug)+"/portal/login?next="+url.QueryEscape(next)),
		chromedp.WaitVisible(chromedp.CSS(`#login-form`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=email]`), "owner@"+c.slug+".test"),
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), apptest.Password),
		chromedp.Submit(chromedp.CSS(`#login-form`)),
	); err != nil {
		t.Fatal(err)
	}
	apptest.WaitVisible(t, ctx, `#connectors`)
	connectors, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#connectors`)))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(connectors, "TM") || !strings.Contains(connectors, "3600 this hour") {
		t.Fatalf("connectors table: %q", connectors)
	}
	apptest.Screenshot(t, ctx, "integrations-channels")
	if err := chromedp.Do(ctx, chromedp.Navigate(e.HostURL(c.slug)+"/portal/channels/events/"+c.event.String())); err != nil {
		t.Fatal(err)
	}
	apptest.WaitVisible(t, ctx, `#reconciliation`)
	rec, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#reconciliation`)))
	over, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#oversells`)))
	timeline, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#timeline`)))
	if !strings.Contains(rec, "channel oversell: eventbrite sold 32 against an allocation of 30") || !strings.Contains(rec, "ticketmaster") {
		t.Fatalf("reconciliation table: %q", rec)
	}
	if !strings.Contains(over, "eventbrite") || !strings.Contains(timeline, "poll") {
		t.Fatalf("oversells %q / timeline %q", over, timeline)
	}
	apptest.Screenshot(t, ctx, "integrations-event")
}

// The support console's page of a chain shows each connector's health:
// last success, last error, the calls left in Ticketmaster's quota, the
// last Eventbrite webhook and the oversells.
func TestBrowserConsoleConnectorHealth(t *testing.T) {
	e := startEnv(t)
	c := newChain(t, e, 200, map[string]int{"web": 100, "ticketmaster": 50, "eventbrite": 50})
	apptest.MustStatus(t, c.allocate(t, "ticketmaster", 40), http.StatusOK)
	apptest.MustStatus(t, c.allocate(t, "eventbrite", 30), http.StatusOK)
	c.tm.Sell(c.tmEvent, 3)
	c.poll(t)
	c.eb.Oversell = true
	for i := 0; i < 32; i++ {
		c.eb.PlaceOrder(c.ebEvent, c.ebClass, 1)
	}
	// A refused poll: Ticketmaster's quota fault is the last error.
	c.tm.FailNext(429, 429, 429, 429, 429, 429)
	c.do(t, "POST", "/api/v1/integrations/connectors/"+c.tmConn.ID.String()+"/poll", nil)

	email := "support-" + c.slug + "@marquee.test"
	if _, err := e.App.CreateSupportUser(t.Context(), email, "Support", apptest.Password); err != nil {
		t.Fatal(err)
	}
	ctx := apptest.Browser(t)
	if err := chromedp.Do(ctx,
		chromedp.Navigate(e.HostURL("")+"/console/login"),
		chromedp.WaitVisible(chromedp.CSS(`#login-form`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=email]`), email),
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), apptest.Password),
		chromedp.Submit(chromedp.CSS(`#login-form`)),
		chromedp.WaitVisible(chromedp.CSS(`#tenants`)),
		chromedp.Navigate(e.HostURL("")+"/console/tenants/"+c.slug),
	); err != nil {
		t.Fatal(err)
	}
	apptest.WaitVisible(t, ctx, `#channel-connectors`)
	panel, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#channel-connectors`)))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"TM (ticketmaster)", "EB (eventbrite)", "policies.ratelimit.QuotaViolation", "this hour", "Discovery", "backing off until",
		"2 (2 units)", "polled (no webhooks)"} {
		if !strings.Contains(panel, want) {
			t.Errorf("the console's connector panel lacks %q: %q", want, panel)
		}
	}
	if strings.Contains(panel, tmKey) || strings.Contains(panel, ebToken) {
		t.Fatal("a credential on the console")
	}
	apptest.Screenshot(t, ctx, "integrations-console")
}
