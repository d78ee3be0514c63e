package integrations_test

import (
	"net/http"
	"strings"
	"testing"

	"marquee/app/apptest"
)

// An Eventbrite order sells from the channel's quota once, however often
// it is delivered; a refund gives it back; bad deliveries write nothing.
func TestEventbriteWebhooks(t *testing.T) {
	e := startEnv(t)
	c := newChain(t, e, 100, map[string]int{"web": 60, "ticketmaster": 20, "eventbrite": 20})
	apptest.MustStatus(t, c.allocate(t, "eventbrite", 20), http.StatusOK)
	if got := c.eb.QuantityTotal(c.ebClass); got != 20 {
		t.Fatalf("Eventbrite quantity_total %d after the push, want 20", got)
	}

	d, ok := c.eb.PlaceOrder(c.ebEvent, c.ebClass, 3)
	if !ok || d.Status != http.StatusOK {
		t.Fatalf("order.placed answered %d", d.Status)
	}
	if q := quotaOf(c.stock(t), "eventbrite"); q.Sold != 3 {
		t.Fatalf("eventbrite sold %d in our books, want 3", q.Sold)
	}
	// The same delivery again, and the same order under a new delivery id.
	if r := c.eb.Redeliver(d); r.Status != http.StatusOK {
		t.Fatalf("replay answered %d", r.Status)
	}
	orderURL := c.eb.URL + "/v3/orders/" + strings.TrimPrefix(strings.Split(string(d.Body), "/v3/orders/")[1][:7], "") + "/"
	if r := c.eb.Deliver("order.updated", orderURL); r.Status != http.StatusOK {
		t.Fatalf("order.updated answered %d", r.Status)
	}
	if q := quotaOf(c.stock(t), "eventbrite"); q.Sold != 3 {
		t.Fatalf("after a replay and an update eventbrite sold %d, want still 3", q.Sold)
	}
	if n := c.count(t, `SELECT count(*) FROM int_orders`); n != 1 {
		t.Fatalf("%d order rows, want 1", n)
	}
	// Check-in and event updates are read and recorded.
	orderID := strings.Split(strings.TrimSuffix(orderURL, "/"), "/orders/")[1]
	if r := c.eb.CheckIn(orderID); r.Status != http.StatusOK {
		t.Fatalf("attendee.checked_in answered %d", r.Status)
	}
	if n := c.count(t, `SELECT checked_in FROM int_orders`); n != 1 {
		t.Fatalf("checked_in %d, want 1", n)
	}
	// Refunded at Eventbrite: the units come back once.
	r := c.eb.Refund(orderID)
	if r.Status != http.StatusOK {
		t.Fatalf("order.refunded answered %d", r.Status)
	}
	c.eb.Redeliver(r)
	c.eb.Deliver("order.refunded", orderURL)
	if q := quotaOf(c.stock(t), "eventbrite"); q.Sold != 0 {
		t.Fatalf("after the refund eventbrite sold %d, want 0", q.Sold)
	}

	// Bad input: nothing written, problem documents (404 never 410, which
	// would unsubscribe).
	before := c.count(t, `SELECT count(*) FROM int_deliveries`)
	hook := c.eb.WebhookURL[strings.Index(c.eb.WebhookURL, "/api/"):]
	wrongSecret := hook[:strings.LastIndex(hook, "/")+1] + "not-the-secret"
	unknown := "/api/v1/webhooks/eventbrite/0190f0a0-0000-7000-8000-000000000000/" + hook[strings.LastIndex(hook, "/")+1:]
	good := map[string]any{"config": map[string]any{"action": "order.placed"}, "api_url": orderURL}
	cases := []struct {
		name, path string
		body       any
		status     int
		code       string
	}{
		{"malformed body", hook, "not json", http.StatusBadRequest, "invalid_webhook"},
		{"no api_url", hook, map[string]any{"config": map[string]any{"action": "order.placed"}}, http.StatusBadRequest, "invalid_webhook"},
		{"foreign api_url", hook, map[string]any{"config": map[string]any{"action": "order.placed"}, "api_url": "https://evil.example.com/v3/orders/1/"}, http.StatusBadRequest, "foreign_api_url"},
		{"same host, not v3", hook, map[string]any{"config": map[string]any{"action": "order.placed"}, "api_url": c.eb.URL + "/admin/"}, http.StatusBadRequest, "foreign_api_url"},
		{"wrong path secret", wrongSecret, good, http.StatusNotFound, "webhook_not_found"},
		{"unknown connector", unknown, good, http.StatusNotFound, "webhook_not_found"},
		{"malformed connector id", "/api/v1/webhooks/eventbrite/nope/secret", good, http.StatusNotFound, "webhook_not_found"},
	}
	calls := c.eb.Calls()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := e.Do(t, "POST", c.slug, tc.path, "", tc.body, "X-Eventbrite-Delivery", "bad-"+tc.name, "X-Eventbrite-Event", "order.placed")
			apptest.MustStatus(t, res, tc.status)
			if res.Code() != tc.code {
				t.Fatalf("code %q, want %q", res.Code(), tc.code)
			}
		})
	}
	if n := c.count(t, `SELECT count(*) FROM int_deliveries`); n != before {
		t.Fatalf("bad deliveries wrote %d rows", n-before)
	}
	if c.eb.Calls() != calls {
		t.Fatalf("bad deliveries made %d calls to Eventbrite (nothing may be fetched)", c.eb.Calls()-calls)
	}
}
