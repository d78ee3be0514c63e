package inventory_test

import (
	"net/http"
	"strings"
	"testing"

	"marquee/config"
)

// The PaymentIntent's client secret lets a browser confirm the payment, so it
// goes to the order's buyer only (buyer token or signed link), and only while
// there is something to pay; staff reading the order never see it.
func TestClientSecretOnlyToBuyer(t *testing.T) {
	t.Parallel()
	s, ev, _ := onSale(t, "secret", "Secret Night", simpleSetup(1, 10, 0, nil))
	env := s.env
	buyer := s.buyer(t)
	h := s.mustHold(t, ev, buyer, map[string]any{"seats": []string{"A-1-1"}})
	o := s.order(t, buyer, h.ID)
	if o.ClientSecret == nil || *o.ClientSecret == "" {
		t.Fatalf("the buyer's new order has no client secret: %+v", o)
	}
	secret := *o.ClientSecret
	path := "/api/v1/orders/" + o.ID.String()
	sig := o.OrderURL[strings.Index(o.OrderURL, "?"):]

	get := func(token, p string, headers ...string) string {
		t.Helper()
		res := env.Do(t, "GET", s.slug, p, token, nil, headers...)
		mustStatus(t, res, http.StatusOK)
		return string(res.Body)
	}
	if b := get("", path, "X-Buyer-Token", buyer); !strings.Contains(b, `"client_secret":"`+secret+`"`) {
		t.Fatalf("buyer token: %s", b)
	}
	if b := get("", path+sig); !strings.Contains(b, `"client_secret":"`+secret+`"`) {
		t.Fatalf("signed link: %s", b)
	}
	res := env.Do(t, "GET", s.slug, path+sig, "", nil)
	mustStatus(t, res, http.StatusOK)
	if res.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("order answer cacheable: %q", res.Header.Get("Cache-Control"))
	}
	if b := get(s.tok, path); strings.Contains(b, "secret") || !strings.Contains(b, *o.PaymentIntentID) {
		t.Fatalf("staff see the client secret (or not the order): %s", b)
	}
	res = env.Do(t, "GET", s.slug, path, "", nil, "X-Buyer-Token", s.buyer(t))
	mustStatus(t, res, http.StatusNotFound)
	if strings.Contains(string(res.Body), secret) {
		t.Fatalf("another buyer got the secret: %s", res.Body)
	}
	// The order page itself never carries it.
	if b := get("", o.OrderURL); strings.Contains(b, secret) {
		t.Fatal("order page carries the client secret")
	}

	mustStatus(t, s.webhook(t, "evt_secret_1", "payment_intent.succeeded", o.Order), http.StatusOK)
	if b := get("", path, "X-Buyer-Token", buyer); strings.Contains(b, "secret") || !strings.Contains(b, `"status":"paid"`) {
		t.Fatalf("paid order still hands out its client secret: %s", b)
	}
	res = s.do(t, "POST", path+"/refund", map[string]string{"reason": "test"}, "Idempotency-Key", "refund-"+o.ID.String())
	mustStatus(t, res, http.StatusOK)
	if strings.Contains(string(res.Body), "secret") {
		t.Fatalf("refund answer carries the client secret: %s", res.Body)
	}
}

// Live keys: the event page offers the Stripe.js card form and nothing of
// test mode; without a publishable key it says payment is unavailable
// instead of leaving the buyer at a dead end.
func TestEventPagePaymentModes(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, secret, publishable string
		want, absent              []string
	}{
		{"live", "sk_live_marqueeexample", "pk_live_marqueeexample",
			[]string{`id="card-pay"`, `data-publishable-key="pk_live_marqueeexample"`, `src="https://js.stripe.com/v3/"`, `id="payment-element"`},
			[]string{`id="pay-test"`, "TEST MODE", "sk_live_marqueeexample", `id="card-unconfigured"`}},
		{"live without publishable key", "sk_live_marqueeexample", "",
			[]string{`id="card-unconfigured"`},
			[]string{`id="pay-test"`, "js.stripe.com", `id="card-pay"`}},
		{"test without publishable key", config.DevStripeSecretKey, "",
			[]string{`id="pay-test"`},
			[]string{"js.stripe.com", `id="card-pay"`, `id="card-unconfigured"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env, inv := startEnvConfig(t, func(c *config.Config) { c.StripeSecretKey, c.StripePublishableKey = tc.secret, tc.publishable })
			s := newShop(t, env, inv, "modes")
			ev := s.event(t, "Modes Night")
			s.configure(t, ev, simpleSetup(1, 10, 0, nil))
			res := env.Do(t, "GET", s.slug, "/events/"+ev, "", nil)
			mustStatus(t, res, http.StatusOK)
			body, csp := string(res.Body), res.Header.Get("Content-Security-Policy")
			for _, w := range tc.want {
				if !strings.Contains(body, w) {
					t.Errorf("page lacks %s", w)
				}
			}
			for _, a := range tc.absent {
				if strings.Contains(body, a) {
					t.Errorf("page has %s", a)
				}
			}
			if strings.Contains(csp, "js.stripe.com") != (tc.publishable != "") {
				t.Errorf("CSP %q", csp)
			}
			if tc.secret != config.DevStripeSecretKey {
				res := env.Do(t, "POST", s.slug, "/api/v1/orders/"+ev+"/test-pay", "", nil)
				mustStatus(t, res, http.StatusNotFound)
			}
		})
	}
}
