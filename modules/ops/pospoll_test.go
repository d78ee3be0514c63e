package ops_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/uuid"

	"marquee/app/apptest"
	"marquee/modules/ops"
	"marquee/modules/ops/fakepos"
)

const squareToken = "EAAA-test-access-token-0123"

// connectPolled adds a Square connector that is also polled, against a fake
// POS serving ListPayments.
func (c *chain) connectPolled(t testing.TB) (ops.Connector, *fakepos.POS) {
	t.Helper()
	pos := &fakepos.POS{MerchantID: "MERCHANT-P", SignatureKey: squareKey, AccessToken: squareToken}
	api := httptest.NewServer(pos.Handler())
	t.Cleanup(api.Close)
	res := c.do(t, "POST", "/api/v1/ops/pos/connectors", map[string]any{"name": "Square polled", "merchant_id": "MERCHANT-P",
		"signature_key": squareKey, "api_url": api.URL, "access_token": squareToken})
	mustStatus(t, res, http.StatusCreated)
	if strings.Contains(string(res.Body), squareToken) {
		t.Fatal("the access token was returned")
	}
	conn := decode[ops.Connector](t, res.Body)
	mustStatus(t, c.do(t, "PUT", "/api/v1/ops/pos/connectors/"+conn.ID.String()+"/locations", map[string]any{"locations": []any{
		map[string]any{"location_id": "L-BAR", "venue_id": c.venue, "stand": "Main bar", "category": "bar"},
	}}), http.StatusOK)
	pos.NotificationURL = conn.NotificationURL
	pos.Target, pos.Host = c.e.Server.URL+"/api/v1/webhooks/pos/"+conn.ID.String(), c.slug+".localhost"
	return conn, pos
}

// Webhooks the POS never delivered are recovered by polling: of 60 sales
// (each created, then completed), a fifth never reach us at all and a
// fifth only as created; one poll lists them all (two pages) and the
// ledger holds exactly the sales; polling again, and the late webhooks
// arriving after it, change nothing.
func TestPOSPollingRecoversDroppedWebhooks(t *testing.T) {
	e := startEnv(t, nil)
	c := newChain(t, e, "poll")
	conn, pos := c.connectPolled(t)
	svc := e.mod.Service()
	var late []fakepos.Delivery
	want, delivered := 0, 0
	for i := range 160 {
		amount := 400 + 7*i
		p := fakepos.Payment{ID: fmt.Sprintf("PP%d", i), Status: "APPROVED", Version: 1, AmountMoney: fakepos.Money{Amount: int64(amount), Currency: "EUR"}, LocationID: "L-BAR"}
		created := pos.PaymentEvent(p)
		p.Status, p.Version = "COMPLETED", 2
		completed := pos.PaymentEvent(p)
		want += amount
		switch i % 5 {
		case 0: // never delivered
			late = append(late, created, completed)
		case 1: // the completion never delivered
			c.send(t, pos, created)
			late = append(late, completed)
		default:
			c.send(t, pos, created)
			c.send(t, pos, completed)
			delivered += amount
		}
	}
	if got := c.ledgerSum(t); got != delivered {
		t.Fatalf("ledger %d before polling, delivered %d", got, delivered)
	}
	res, err := svc.PollConnector(context.Background(), c.t, conn.ID)
	if err != nil {
		t.Fatal(err)
	}
	if res.Listed != 160 || res.Applied != 64 || int(res.LedgerMinor) != want-delivered {
		t.Fatalf("poll %+v; want 160 listed, 64 applied, %d to the ledger", res, want-delivered)
	}
	if got := c.ledgerSum(t); got != want {
		t.Fatalf("ledger %d after polling, want %d", got, want)
	}
	if res, err = svc.PollConnector(context.Background(), c.t, conn.ID); err != nil || res.Applied != 0 || res.LedgerMinor != 0 {
		t.Fatalf("second poll: %+v %v", res, err)
	}
	for _, d := range late {
		if r := c.send(t, pos, d); r.LedgerMinor != 0 {
			t.Fatalf("a late webhook moved the ledger: %+v", r)
		}
	}
	if got := c.ledgerSum(t); got != want {
		t.Fatalf("ledger %d after the late webhooks, want %d", got, want)
	}
	list := decode[struct{ Items []ops.Connector }](t, c.do(t, "GET", "/api/v1/ops/pos/connectors", nil).Body)
	if len(list.Items) != 1 || list.Items[0].PolledAt == nil || list.Items[0].PollError != "" {
		t.Fatalf("connector after polling: %+v", list.Items)
	}

	// A token the POS refuses: the poll fails, says why, and writes no sale.
	pos.AccessToken = "rotated-elsewhere"
	pos.PaymentEvent(fakepos.Payment{ID: "PX", Status: "COMPLETED", Version: 1, AmountMoney: fakepos.Money{Amount: 999, Currency: "EUR"}, LocationID: "L-BAR"})
	if _, err := svc.PollConnector(context.Background(), c.t, conn.ID); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("poll with a refused token: %v", err)
	}
	if got := c.ledgerSum(t); got != want {
		t.Fatalf("ledger %d after a refused poll", got)
	}
	if n := c.count(t, `SELECT count(*) FROM ops_pos_connectors WHERE poll_error LIKE '%401%'`); n != 1 {
		t.Fatal("the refused poll is not on the connector")
	}
}

// A genuine signature over an event of another merchant is refused, and
// nothing is written; bad polling settings are refused.
func TestPOSMerchantMustMatch(t *testing.T) {
	e := startEnv(t, nil)
	c := newChain(t, e, "merch")
	conn, pos := c.connect(t)
	other := &fakepos.POS{MerchantID: "MERCHANT-2", SignatureKey: squareKey, NotificationURL: conn.NotificationURL}
	d := other.PaymentEvent(fakepos.Payment{ID: "P1", Status: "COMPLETED", Version: 1, AmountMoney: fakepos.Money{Amount: 500, Currency: "EUR"}, LocationID: "L-BAR"})
	path := "/api/v1/webhooks/pos/" + conn.ID.String()
	none := map[string]int{"ops_pos_events": 0, "ops_pos_objects": 0, "ledger_entries": 0}
	bad := func(name string, body map[string]any) apptest.Scenario {
		body["name"], body["merchant_id"], body["signature_key"] = "Square", "M-1", squareKey
		return apptest.Scenario{Name: name, Method: "POST", Path: "/api/v1/ops/pos/connectors", Tenant: c.slug, Token: c.tok, Body: body,
			Status: 400, Code: "invalid_request", Changes: map[string]int{"ops_pos_connectors": 0}}
	}
	apptest.RunScenarios(t, e.Env, []apptest.Scenario{
		{Name: "another merchant", Method: "POST", Path: path, Tenant: c.slug, Body: d.Body, Headers: map[string]string{"x-square-hmacsha256-signature": d.Signature},
			Status: 403, Code: "pos_merchant_mismatch", Changes: none},
		bad("api_url without a token", map[string]any{"api_url": "https://connect.squareup.com"}),
		bad("token without api_url", map[string]any{"access_token": squareToken}),
		bad("api_url with a query", map[string]any{"api_url": "https://connect.squareup.com/?x=1", "access_token": squareToken}),
		bad("api_url not a URL", map[string]any{"api_url": "connect", "access_token": squareToken}),
	})
	// The connector's own merchant goes through.
	if r := c.send(t, pos, pos.PaymentEvent(fakepos.Payment{ID: "P1", Status: "COMPLETED", Version: 1, AmountMoney: fakepos.Money{Amount: 500, Currency: "EUR"}, LocationID: "L-BAR"})); r.LedgerMinor != 500 {
		t.Fatalf("own merchant: %+v", r)
	}
	// A connector without polling is not polled.
	if res, err := e.mod.Service().PollConnector(context.Background(), c.t, conn.ID); err != nil || res.Listed != 0 {
		t.Fatalf("poll of an unpolled connector: %+v %v", res, err)
	}
	if res, err := e.mod.Service().PollConnector(context.Background(), c.t, uuid.New()); err != nil || res.Listed != 0 {
		t.Fatalf("poll of an unknown connector: %+v %v", res, err)
	}
}

// Refunds and voids whose webhooks were dropped are recovered by polling,
// and one seen both ways counts once. 40 sales are delivered; 20 of them
// are refunded in part (pending, then completed or rejected) with the
// refund's webhooks dropped in every way, and 4 approved payments are
// voided with the void's webhook dropped. One poll (Square lists refunds
// without a version) leaves the ledger exact; polling again and the
// dropped webhooks arriving late change nothing.
func TestPOSPollingRecoversDroppedRefundsAndVoids(t *testing.T) {
	e := startEnv(t, nil)
	c := newChain(t, e, "pollref")
	conn, pos := c.connectPolled(t)
	svc := e.mod.Service()
	var late []fakepos.Delivery
	want, refunds := 0, 0
	for i := range 40 {
		amount := 1000 + 10*i
		p := fakepos.Payment{ID: fmt.Sprintf("SP%d", i), Status: "APPROVED", Version: 1, AmountMoney: fakepos.Money{Amount: int64(amount), Currency: "EUR"}, LocationID: "L-BAR"}
		c.send(t, pos, pos.PaymentEvent(p))
		p.Status, p.Version = "COMPLETED", 2
		c.send(t, pos, pos.PaymentEvent(p))
		want += amount
		if i >= 20 {
			continue
		}
		r := fakepos.Payment{ID: fmt.Sprintf("SR%d", i), Status: "PENDING", Version: 1, AmountMoney: fakepos.Money{Amount: int64(amount / 2), Currency: "EUR"},
			LocationID: "L-BAR", PaymentID: p.ID}
		pending := pos.RefundEvent(r)
		r.Status, r.Version = "COMPLETED", 2
		if i%4 == 3 {
			r.Status = "REJECTED"
		} else {
			want -= amount / 2
			refunds++
		}
		final := pos.RefundEvent(r)
		switch i % 4 {
		case 0: // neither webhook arrives before the poll
			late = append(late, pending, final)
		case 1, 3: // the final state's webhook is dropped
			c.send(t, pos, pending)
			late = append(late, final)
		case 2: // both arrive: the poll sees it too
			c.send(t, pos, pending)
			c.send(t, pos, final)
		}
	}
	for i := range 4 {
		p := fakepos.Payment{ID: fmt.Sprintf("SV%d", i), Status: "APPROVED", Version: 1, AmountMoney: fakepos.Money{Amount: 777, Currency: "EUR"}, LocationID: "L-MERCH"}
		c.send(t, pos, pos.PaymentEvent(p))
		p.Status, p.Version = "CANCELED", 2
		late = append(late, pos.PaymentEvent(p))
	}
	if got := c.ledgerSum(t); got == want {
		t.Fatalf("ledger %d already exact before polling: the test drops nothing", got)
	}
	res, err := svc.PollConnector(context.Background(), c.t, conn.ID)
	if err != nil {
		t.Fatal(err)
	}
	if res.Listed != 40+4+20 {
		t.Fatalf("poll listed %d, want 64 (44 payments, 20 refunds)", res.Listed)
	}
	if got := c.ledgerSum(t); got != want {
		t.Fatalf("ledger %d after one poll, want %d", got, want)
	}
	if n := c.count(t, `SELECT count(*) FROM ledger_entries WHERE kind = 'pos.refund'`); n != refunds {
		t.Fatalf("%d refund entries in the ledger, want %d (each once)", n, refunds)
	}
	if n := c.count(t, `SELECT count(*) FROM ops_pos_objects WHERE kind = 'payment' AND status = 'CANCELED' AND counted_minor = 0`); n != 4 {
		t.Fatalf("%d voided payments kept as canceled, want 4", n)
	}
	if n := c.count(t, `SELECT count(*) FROM ops_pos_objects WHERE kind = 'refund' AND status = 'REJECTED' AND counted_minor = 0`); n != 5 {
		t.Fatalf("%d rejected refunds kept, want 5", n)
	}
	if res, err = svc.PollConnector(context.Background(), c.t, conn.ID); err != nil || res.Applied != 0 || res.LedgerMinor != 0 {
		t.Fatalf("second poll: %+v %v", res, err)
	}
	for _, d := range late {
		if r := c.send(t, pos, d); r.LedgerMinor != 0 {
			t.Fatalf("a late %s webhook moved the ledger: %+v", d.Type, r)
		}
	}
	if got := c.ledgerSum(t); got != want {
		t.Fatalf("ledger %d after the late webhooks, want %d", got, want)
	}
	// The dashboard's revenue agrees with the ledger.
	d := decode[ops.Dashboard](t, c.do(t, "GET", "/api/v1/events/"+c.event+"/dashboard", nil).Body)
	if d.Revenue == nil || len(d.Revenue.Totals) != 1 || d.Revenue.Totals[0].NetMinor != int64(want) {
		t.Fatalf("dashboard revenue %+v, want net %d", d.Revenue, want)
	}
}
