package inventory_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/app/apptest"
	"marquee/config"
	"marquee/modules/inventory"
)

const testPublishableKey = "pk_test_marqueebrowser"

// stripeJSStub stands in for Stripe.js, which this machine cannot fetch from
// js.stripe.com. It keeps Stripe's calling convention (Stripe(pk),
// elements({clientSecret}), create('payment'), mount, on('ready'),
// confirmPayment({elements, confirmParams: {return_url}})), records what the
// page passed, opens its card fields as an iframe from js.stripe.com and
// calls api.stripe.com as the real one does (so the page's CSP must allow
// both), and returns the buyer to return_url with the query Stripe adds.
const stripeJSStub = `(function(){
  var rec = window.__stripeStub = {};
  window.Stripe = function(pk){
    rec.pk = pk;
    return {
      elements: function(opts){
        rec.clientSecret = opts.clientSecret;
        return {create: function(type){
          rec.type = type; var on = {};
          return {on: function(ev, fn){ on[ev] = fn; }, mount: function(sel){
            rec.mount = sel;
            var f = document.createElement('iframe');
            f.src = 'https://js.stripe.com/v3/elements-inner-payment.html'; f.title = 'Secure payment input frame';
            f.style.cssText = 'width:100%;height:110px;border:0';
            f.addEventListener('load', function(){ if (on.ready) on.ready(); });
            document.querySelector(sel).appendChild(f);
            fetch('https://api.stripe.com/v1/elements/sessions').catch(function(){});
          }};
        }};
      },
      confirmPayment: function(o){
        rec.returnUrl = o.confirmParams.return_url;
        sessionStorage.setItem('stub-return-url', rec.returnUrl);
        var pi = rec.clientSecret.split('_secret_')[0];
        location.href = rec.returnUrl + (rec.returnUrl.indexOf('?') >= 0 ? '&' : '?') + 'payment_intent=' + pi +
          '&payment_intent_client_secret=' + encodeURIComponent(rec.clientSecret) + '&redirect_status=succeeded';
        return new Promise(function(){});
      }
    };
  };
})();`

const stripeFrameStub = `<!doctype html><body style="font:14px system-ui;margin:0">
<div style="border:1px solid #ccc;border-radius:6px;padding:.6rem;margin-bottom:.4rem">Card number<br><b>4242 4242 4242 4242</b></div>
<div style="display:flex;gap:.4rem"><div style="flex:1;border:1px solid #ccc;border-radius:6px;padding:.6rem">12 / 34</div><div style="flex:1;border:1px solid #ccc;border-radius:6px;padding:.6rem">CVC 123</div></div></body>`

// stripeHosts answers the browser's requests to Stripe's hosts: with the
// stubs above, or (fail) as a host that cannot be resolved. Requests a CSP
// refuses never reach it, so what it served shows what the policy allowed.
type stripeHosts struct {
	mu     sync.Mutex
	served []string
}

func (h *stripeHosts) urls() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.served...)
}

func interceptStripe(t *testing.T, ctx context.Context, fail bool) *stripeHosts {
	t.Helper()
	h := &stripeHosts{}
	paused := chromedp.Events(ctx, fetch.RequestPaused)
	go func() {
		for e, err := range paused {
			if err != nil {
				return
			}
			h.mu.Lock()
			h.served = append(h.served, e.Request.URL)
			h.mu.Unlock()
			if fail {
				_, _ = chromedp.Call(ctx, fetch.FailRequest, fetch.FailRequestParams{RequestID: e.RequestID, ErrorReason: network.ErrorReasonNameNotResolved})
				continue
			}
			body, ctype := "{}", "application/json"
			if strings.HasPrefix(e.Request.URL, inventory.StripeJS) {
				body, ctype = stripeJSStub, "application/javascript"
				if strings.HasSuffix(e.Request.URL, ".html") {
					body, ctype = stripeFrameStub, "text/html"
				}
			}
			_, _ = chromedp.Call(ctx, fetch.FulfillRequest, fetch.FulfillRequestParams{RequestID: e.RequestID, ResponseCode: http.StatusOK,
				ResponseHeaders: []*fetch.HeaderEntry{{Name: "Content-Type", Value: ctype}, {Name: "Access-Control-Allow-Origin", Value: "*"}},
				Body:            []byte(body)})
		}
	}()
	patterns := []*fetch.RequestPattern{{URLPattern: "https://js.stripe.com/*"}, {URLPattern: "https://*.js.stripe.com/*"},
		{URLPattern: "https://hooks.stripe.com/*"}, {URLPattern: "https://api.stripe.com/*"}}
	if _, err := chromedp.Call(ctx, fetch.Enable, fetch.EnableParams{Patterns: patterns}); err != nil {
		t.Fatal(err)
	}
	return h
}

// page drives one browser tab in a test.
type page struct {
	t   *testing.T
	ctx context.Context
}

func (p page) run(actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, actions...); err != nil {
		body, _ := chromedp.Run(p.ctx, chromedp.Text(chromedp.CSS(`body`)))
		p.t.Fatalf("%v\npage: %s", err, body)
	}
}

func (p page) wait(sel string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(sel))); err != nil {
		body, _ := chromedp.Run(p.ctx, chromedp.Text(chromedp.CSS(`body`)))
		p.t.Fatalf("waiting for %s: %v\npage: %s", sel, err, body)
	}
}

func (p page) text(sel string) string {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		p.t.Fatalf("read %s: %v", sel, err)
	}
	return v
}

func (p page) eval(js string) string {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](js))
	if err != nil {
		p.t.Fatalf("eval %s: %v", js, err)
	}
	return v
}

// holdAndCheckout holds two GA tickets on the event page and submits the
// buyer's details, which creates the order and opens the payment step.
func (p page) holdAndCheckout(eventURL string) {
	p.t.Helper()
	p.run(chromedp.Navigate(eventURL))
	p.wait(`.hold-ga`)
	p.run(chromedp.Click(chromedp.CSS(`.hold-ga`)))
	p.wait(`#hold`)
	p.run(
		chromedp.SendKeys(chromedp.CSS(`#checkout input[name=email]`), "grace@example.com"),
		chromedp.SendKeys(chromedp.CSS(`#checkout input[name=name]`), "Grace Hopper"),
		chromedp.Click(chromedp.CSS(`#to-payment`)),
	)
	p.wait(`#payment`)
}

// stripeOrder reads the order the browser's buyer made (its id, PaymentIntent
// and client secret) from the database.
func (s *shop) stripeOrder(t *testing.T, eventID string) (o inventory.Order, secret string) {
	t.Helper()
	s.sql(t, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT id, amount_minor, currency, payment_intent_id, client_secret FROM inv_orders WHERE event_id = ?`, eventID).
			Row().Scan(&o.ID, &o.AmountMinor, &o.Currency, &o.PaymentIntentID, &secret)
	})
	return o, secret
}

func cardEnv(t *testing.T) (*apptest.Env, *shop, string) {
	t.Helper()
	env, inv := startEnvConfig(t, func(c *config.Config) { c.StripePublishableKey = testPublishableKey })
	s := newShop(t, env, inv, "card")
	ev := s.event(t, "Card Night")
	s.configure(t, ev, map[string]any{
		"zones":  []map[string]any{{"name": "Floor", "kind": "ga", "capacity": 100}},
		"tiers":  []map[string]any{{"name": "Floor", "zone": "Floor", "price": 3000, "currency": "EUR", "max_per_order": 10}},
		"quotas": map[string]int{"web": 100},
	})
	return env, s, ev
}

// The event page's card payment with Stripe.js: served under a policy that
// allows Stripe's hosts and nothing else, Stripe.js loaded from js.stripe.com
// (a stub here: the machine cannot reach Stripe), the Payment Element mounted
// with the order's client secret, confirmation returning to the signed order
// page, which shows the payment processing until the webhook marks it paid.
func TestBrowserCardCheckout(t *testing.T) {
	// Serial: a browser test: one Chromium at a time is what 2 cores take.
	env, s, ev := cardEnv(t)
	res := env.Do(t, "GET", s.slug, "/events/"+ev, "", nil)
	mustStatus(t, res, http.StatusOK)
	csp := res.Header.Get("Content-Security-Policy")
	for _, want := range []string{
		"script-src 'self' 'unsafe-inline' https://js.stripe.com https://*.js.stripe.com",
		"frame-src 'self' https://js.stripe.com https://*.js.stripe.com https://hooks.stripe.com",
		"connect-src 'self' https://api.stripe.com",
		"default-src 'self'", "frame-ancestors 'none'",
	} {
		if !strings.Contains(csp, want) {
			t.Errorf("event page CSP lacks %q: %s", want, csp)
		}
	}
	body := string(res.Body)
	if !strings.Contains(body, `<script id="stripe-js" src="https://js.stripe.com/v3/" async></script>`) ||
		!strings.Contains(body, `data-publishable-key="`+testPublishableKey+`"`) || strings.Contains(body, config.DevStripeSecretKey) {
		t.Fatalf("event page: Stripe.js tag or publishable key missing, or the secret key present")
	}

	ctx := apptest.Browser(t)
	hosts := interceptStripe(t, ctx, false)
	p := page{t, ctx}
	p.holdAndCheckout(env.HostURL(s.slug) + "/events/" + ev)
	p.wait(`#payment-element iframe`)
	p.run(chromedp.WaitEnabled(chromedp.CSS(`#pay-card`)))
	o, secret := s.stripeOrder(t, ev)
	if got := p.eval(`__stripeStub.pk + ' ' + __stripeStub.type + ' ' + __stripeStub.mount`); got != testPublishableKey+" payment #payment-element" {
		t.Fatalf("Stripe.js was given %q", got)
	}
	if got := p.eval(`__stripeStub.clientSecret`); got == "" || got != secret {
		t.Fatalf("Payment Element client secret %q, order's %q", got, secret)
	}
	if pay := p.text(`#pay-card`); pay != "Pay EUR 60.00" {
		t.Fatalf("pay button %q", pay)
	}
	var frame, api bool
	for _, u := range hosts.urls() {
		frame = frame || strings.HasPrefix(u, "https://js.stripe.com/v3/elements-inner")
		api = api || strings.HasPrefix(u, "https://api.stripe.com/")
	}
	if !frame || !api {
		t.Fatalf("the page's policy kept Stripe's iframe (%v) or API call (%v) out: %v", frame, api, hosts.urls())
	}
	apptest.Screenshot(t, ctx, "inventory-card-checkout")

	p.run(chromedp.Click(chromedp.CSS(`#pay-card`)))
	p.wait(`#order-waiting`)
	// The box shows before the parser runs the script after it, which takes
	// Stripe's parameters out of the URL: parsing done, it has run.
	p.run(chromedp.Poll[chromedp.Void](`document.readyState !== 'loading'`, chromedp.WithPollingTimeout(20*time.Second)))
	ret, err := url.Parse(p.eval(`sessionStorage.getItem('stub-return-url')`))
	if err != nil || ret.Host != strings.TrimPrefix(env.HostURL(s.slug), "http://") || ret.Path != "/orders/"+o.ID.String() || ret.Query().Get("sig") == "" {
		t.Fatalf("return_url %v (%v)", ret, err)
	}
	if st := p.text(`#order-status`); st != "payment processing" {
		t.Fatalf("order status on return %q", st)
	}
	if loc := p.eval(`location.href`); strings.Contains(loc, "secret") || strings.Contains(loc, "payment_intent") || !strings.Contains(loc, "sig=") {
		t.Fatalf("order page URL after Stripe's return: %s", loc)
	}
	if !strings.Contains(p.text(`#waiting-msg`), "Payment processing") {
		t.Fatalf("waiting message %q", p.text(`#waiting-msg`))
	}
	apptest.Screenshot(t, ctx, "inventory-card-processing")

	res = s.webhook(t, "evt_card_"+strings.ReplaceAll(uuid.NewString(), "-", ""), "payment_intent.succeeded", o)
	mustStatus(t, res, http.StatusOK)
	p.wait(`#tickets`)
	if st := p.text(`#order-status`); st != "paid" {
		t.Fatalf("order status after the webhook %q", st)
	}
	if n := p.eval(`String(document.querySelectorAll('#tickets .ticket svg.qr').length)`); n != "2" {
		t.Fatalf("%s QR tickets", n)
	}
	apptest.Screenshot(t, ctx, "inventory-card-paid")

	// Only the event page carries Stripe's hosts in its policy.
	res = env.Do(t, "GET", s.slug, strings.TrimPrefix(ret.String(), "http://"+ret.Host), "", nil)
	mustStatus(t, res, http.StatusOK)
	if csp := res.Header.Get("Content-Security-Policy"); strings.Contains(csp, "stripe") || res.Header.Get("Referrer-Policy") != "no-referrer" {
		t.Fatalf("order page headers: CSP %q, Referrer-Policy %q", csp, res.Header.Get("Referrer-Policy"))
	}
}

// When Stripe.js cannot load (network, blocker), the page says so at the
// payment step instead of showing nothing, and test mode still pays.
func TestBrowserCardCheckoutStripeUnavailable(t *testing.T) {
	// Serial: a browser test: one Chromium at a time is what 2 cores take.
	env, s, ev := cardEnv(t)
	ctx := apptest.Browser(t)
	hosts := interceptStripe(t, ctx, true)
	p := page{t, ctx}
	p.holdAndCheckout(env.HostURL(s.slug) + "/events/" + ev)
	p.wait(`#stripe-unavailable`)
	if msg := p.text(`#stripe-unavailable`); !strings.Contains(msg, "could not be loaded") || !strings.Contains(msg, "stay held") {
		t.Fatalf("message %q", msg)
	}
	if vis := p.eval(`String(document.getElementById('pay-card').offsetParent !== null) + ' ' + String(document.getElementById('stripe-loading').offsetParent !== null)`); vis != "false false" {
		t.Fatalf("card pay button / loading note visible: %s", vis)
	}
	apptest.Screenshot(t, ctx, "inventory-card-unavailable")
	// Trying again asks js.stripe.com once more, and says so again when it fails.
	before := len(hosts.urls())
	p.run(chromedp.Click(chromedp.CSS(`#stripe-retry`)))
	p.wait(`#stripe-unavailable`)
	if len(hosts.urls()) <= before {
		t.Fatalf("try again did not ask for Stripe.js: %v", hosts.urls())
	}
	p.run(chromedp.Click(chromedp.CSS(`#pay-test`)))
	p.wait(`#tickets`)
	if st := p.text(`#order-status`); st != "paid" {
		t.Fatalf("order status after test-mode pay %q", st)
	}
}
