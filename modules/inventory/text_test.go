package inventory_test

import (
	"net/http"
	"testing"

	"github.com/google/uuid"
)

// Text PostgreSQL cannot store (a NUL character, invalid UTF-8) is refused
// with 400 naming the field, and changes nothing.
func TestUnstorableTextIsRefused(t *testing.T) {
	t.Parallel()
	s, ev, _ := onSale(t, "nul", "NUL Night", simpleSetup(1, 4, 0, nil))
	buyer := s.buyer(t)
	h := s.mustHold(t, ev, buyer, map[string]any{"seats": []string{"A-1-1"}})
	o := s.order(t, buyer, h.ID)
	mustStatus(t, s.webhook(t, "evt_nul_1", "payment_intent.succeeded", o.Order), http.StatusOK)
	fresh := s.event(t, "NUL Night, not configured yet")
	before := s.snapshot(t)
	tiersBefore := s.count(t, `SELECT count(*) FROM inv_tiers`)
	refundsBefore := s.count(t, `SELECT count(*) FROM inv_refunds`)

	setup := simpleSetup(1, 4, 0, nil)
	setup["tiers"].([]map[string]any)[0]["name"] = "Stalls\u0000"
	cases := []struct {
		name, method, path string
		body               any
		field              string
		headers            []string
	}{
		{"tier name with NUL", "PUT", "/api/v1/events/" + fresh + "/inventory", setup, "tiers[0].name", nil},
		{"tier name with invalid UTF-8", "PUT", "/api/v1/events/" + fresh + "/inventory",
			`{"zones":[{"name":"Stalls","kind":"reserved"}],"tiers":[{"name":"St` + "\xff" + `alls","zone":"Stalls","price":5000,"currency":"EUR","max_per_order":5}]}`, "tiers[0].name", nil},
		{"refund reason with NUL", "POST", "/api/v1/orders/" + o.ID.String() + "/refund", `{"reason":"moved\u0000"}`, "reason",
			[]string{"Idempotency-Key", uuid.NewString()}},
		{"category query with NUL", "GET", "/api/v1/events?category=%00", nil, "query parameter category", nil},
		{"status query with invalid UTF-8", "GET", "/api/v1/events?status=%FF", nil, "query parameter status", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := s.do(t, tc.method, tc.path, tc.body, tc.headers...)
			mustStatus(t, res, http.StatusBadRequest)
			var p struct{ Code, Field string }
			res.JSON(t, &p)
			if p.Code != "invalid_text" || p.Field != tc.field {
				t.Fatalf("problem %s", res.Body)
			}
		})
	}
	if after := s.snapshot(t); after != before {
		t.Fatalf("refused text changed state: %s -> %s", before, after)
	}
	if n := s.count(t, `SELECT count(*) FROM inv_tiers`); n != tiersBefore {
		t.Fatalf("tiers %d -> %d", tiersBefore, n)
	}
	if n := s.count(t, `SELECT count(*) FROM inv_refunds`); n != refundsBefore {
		t.Fatalf("refunds %d -> %d", refundsBefore, n)
	}
	if n := s.count(t, `SELECT count(*) FROM inv_orders WHERE status = 'paid'`); n != 1 {
		t.Fatalf("%d paid orders", n)
	}
}
