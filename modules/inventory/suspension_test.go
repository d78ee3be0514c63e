package inventory_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"
)

// Suspending a chain stops its new sales, sign-ins and changes, but people
// who paid keep their order pages and tickets, and a payment started before
// the suspension is still settled when Stripe reports it.
func TestSuspensionKeepsTicketHoldersAndStartedPayments(t *testing.T) {
	t.Parallel()
	s, ev, _ := onSale(t, "susp", "Suspended Night", simpleSetup(2, 5, 0, nil))
	env := s.env

	paidBuyer := s.buyer(t)
	paid := s.order(t, paidBuyer, s.mustHold(t, ev, paidBuyer, map[string]any{"seats": []string{"A-1-1"}}).ID)
	mustStatus(t, s.webhook(t, "evt_susp_paid", "payment_intent.succeeded", paid.Order), http.StatusOK)
	startedBuyer := s.buyer(t)
	started := s.order(t, startedBuyer, s.mustHold(t, ev, startedBuyer, map[string]any{"seats": []string{"A-1-2"}}).ID)

	if err := env.App.Tenants.Suspend(context.Background(), s.slug); err != nil {
		t.Fatal(err)
	}

	// The ticket holder's order, tickets and the event's verifying key.
	res := env.Do(t, "GET", s.slug, "/api/v1"+paid.OrderURL, "", nil)
	mustStatus(t, res, http.StatusOK)
	var got orderOut
	res.JSON(t, &got)
	if got.Status != "paid" || len(got.Tickets) != 1 || got.Tickets[0].Status != "valid" {
		t.Fatalf("paid order while suspended: %+v", got)
	}
	page := env.Do(t, "GET", s.slug, paid.OrderURL, "", nil, "Accept", "text/html")
	if page.Status != http.StatusOK || !strings.Contains(string(page.Body), "Section A, Row 1, Seat 1") {
		t.Fatalf("order page while suspended: %d %.300s", page.Status, page.Body)
	}
	mustStatus(t, env.Do(t, "GET", s.slug, "/api/v1/events/"+ev+"/public-key", "", nil), http.StatusOK)

	// The payment started before the suspension settles into tickets.
	res = s.webhook(t, "evt_susp_started", "payment_intent.succeeded", started.Order)
	mustStatus(t, res, http.StatusOK)
	if n := s.count(t, `SELECT count(*) FROM inv_tickets WHERE order_id = ? AND status = 'valid'`, started.ID); n != 1 {
		t.Fatalf("started payment settled into %d tickets", n)
	}

	// Nothing new: no buyer session, no hold, no order, no sign-in, no change.
	for _, r := range []struct {
		method, path, token string
		body                any
		headers             []string
	}{
		{"POST", "/api/v1/buyer-sessions", "", nil, nil},
		{"POST", "/api/v1/events/" + ev + "/holds", "", map[string]any{"seats": []string{"A-2-1"}}, []string{"Idempotency-Key", uuid.NewString(), "X-Buyer-Token", paidBuyer}},
		{"POST", "/api/v1/auth/login", "", map[string]string{"email": "owner@" + s.slug + ".test", "password": "test-password-1"}, nil},
		{"PUT", "/api/v1/events/" + ev + "/inventory", s.tok, simpleSetup(1, 1, 0, nil), nil},
		{"GET", "/api/v1/events", "", nil, nil},
	} {
		res := env.Do(t, r.method, s.slug, r.path, r.token, r.body, r.headers...)
		if res.Status != http.StatusForbidden || res.Code() != "tenant_suspended" {
			t.Errorf("%s %s while suspended: %d %s", r.method, r.path, res.Status, res.Body)
		}
	}
}
