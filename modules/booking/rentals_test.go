package booking_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"

	"marquee/app/apptest"
	"marquee/config"
	"marquee/modules/booking"
)

// rentalBody is a rental of the hold: fee 2,500.00, add-ons security 4 ×
// 180.00 = 720.00, PA 1 × 350.00, cleaning 2 × 95.50 = 191.00; total
// 2,500 + 720 + 350 + 191 = 3,761.00; deposit 750.00.
func rentalBody(hold string) map[string]any {
	return map[string]any{"hold_id": hold, "title": "Northside Records showcase", "renter_name": "Northside Records",
		"renter_email": "events@northside.test", "currency": "USD", "fee_minor": 250000, "deposit_minor": 75000, "deposit_due": "2031-05-01",
		"add_ons": []any{
			map[string]any{"kind": "security", "name": "Security guards", "quantity": 4, "unit_minor": 18000},
			map[string]any{"kind": "pa", "name": "PA system", "quantity": 1, "unit_minor": 35000},
			map[string]any{"kind": "cleaning", "name": "Cleaning crew", "quantity": 2, "unit_minor": 9550},
		}}
}

// withStripe points the App at stripe-mock, with a webhook secret of the
// test's own.
func withStripe(t testing.TB) func(*apptest.Options) {
	url := apptest.StripeMock(t)
	return func(o *apptest.Options) {
		o.DBMaxConns = 40
		o.Configure = func(c *config.Config) {
			c.StripeAPIURL, c.StripeSecretKey, c.StripeWebhookSecret = url, config.DevStripeSecretKey, "whsec_test_booking_rentals"
		}
	}
}

func (c *chain) rental(t testing.TB, hold string) booking.RentalView {
	t.Helper()
	res := c.do(t, "POST", "/api/v1/rentals", rentalBody(hold))
	mustStatus(t, res, http.StatusCreated)
	return decode[booking.RentalView](t, res.Body)
}

// depositIntent opens the deposit's PaymentIntent at stripe-mock.
func (c *chain) depositIntent(t testing.TB, id string) booking.DepositPayment {
	t.Helper()
	res := c.do(t, "PUT", "/api/v1/rentals/"+id+"/deposit/payment", nil)
	mustStatus(t, res, http.StatusOK)
	return decode[booking.DepositPayment](t, res.Body)
}

// stripeEvent is a Stripe event delivery for the rental's PaymentIntent,
// signed with secret as Stripe signs (t=…,v1=HMAC-SHA256).
func stripeEvent(t testing.TB, secret, eventID, typ, pi string, amount int64, tenant, rentalID string) ([]byte, string) {
	t.Helper()
	evt := map[string]any{"id": eventID, "object": "event", "api_version": stripe.APIVersion, "created": time.Now().Unix(), "type": typ,
		"data": map[string]any{"object": map[string]any{"id": pi, "object": "payment_intent", "amount": amount, "currency": "usd",
			"status": "succeeded", "metadata": map[string]string{"tenant": tenant, "rental_id": rentalID, "purpose": booking.RentalDepositPurpose}}}}
	raw, err := json.Marshal(evt)
	if err != nil {
		t.Fatal(err)
	}
	signed := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: raw, Secret: secret, Timestamp: time.Now()})
	return signed.Payload, signed.Header
}

func (c *chain) deliver(payload []byte, sig string) (apptest.Response, error) {
	return c.env.Try("POST", "", booking.RentalsWebhookPath, "", payload, "Stripe-Signature", sig)
}

func (c *chain) holdStatus(t testing.TB, hold string) string {
	t.Helper()
	res := c.do(t, "GET", "/api/v1/venues/"+c.venue+"/holds/"+hold, nil)
	mustStatus(t, res, http.StatusOK)
	return decode[struct{ Status string }](t, res.Body).Status
}

// TestRentalDepositConfirmsHold: a rental's lines and totals; the hold stays
// a hold (and staff cannot confirm it) until Stripe's signed webhook says
// the deposit is paid; a forged delivery changes nothing; the paid deposit
// confirms the hold into the event and goes to the ledger once, however
// often the event is redelivered.
func TestRentalDepositConfirmsHold(t *testing.T) {
	env, _ := startEnv(t, withStripe(t))
	c := newChain(t, env, "rental")
	hold := c.hold(t, 20)
	r := c.rental(t, hold)
	id := r.ID.String()
	wantLines := []int64{250000, 72000, 35000, 19100}
	var got []int64
	for _, l := range r.Totals.Lines {
		got = append(got, l.AmountMinor)
	}
	if !slices.Equal(got, wantLines) || r.Totals.AddOnsMinor != 126100 || r.Totals.TotalMinor != 376100 || r.Totals.BalanceMinor != 376100 ||
		r.Totals.DepositStatus != "unpaid" || r.Status != booking.RentalAwaitingDeposit {
		t.Fatalf("rental totals: %+v", r.Totals)
	}
	mustProblem(t, c.do(t, "POST", "/api/v1/rentals", rentalBody(hold)), http.StatusConflict, "rental_exists")

	// Not before the deposit is paid.
	mustProblem(t, c.do(t, "PUT", "/api/v1/rentals/"+id+"/confirm", nil), http.StatusConflict, "rental_deposit_unpaid")
	if s := c.holdStatus(t, hold); s != "active" {
		t.Fatalf("hold before the deposit: %s", s)
	}
	p := c.depositIntent(t, id)
	if p.PaymentIntentID == "" || p.ClientSecret == "" || p.AmountMinor != 75000 || p.Currency != "USD" {
		t.Fatalf("deposit payment: %+v", p)
	}
	if again := c.depositIntent(t, id); again.PaymentIntentID != p.PaymentIntentID {
		t.Fatalf("a second call opened another intent: %s, then %s", p.PaymentIntentID, again.PaymentIntentID)
	}
	secret := env.App.Config.RentalsWebhookSecret()
	ledgerBefore := c.count(t, "ledger_entries")

	// Forged, tampered and misdirected deliveries change nothing.
	payload, sig := stripeEvent(t, "whsec_not_ours", "evt_forged", "payment_intent.succeeded", p.PaymentIntentID, 75000, c.slug, id)
	if res, err := c.deliver(payload, sig); err != nil || res.Status != http.StatusBadRequest || res.Code() != "invalid_signature" {
		t.Fatalf("forged delivery: %v %d %s", err, res.Status, res.Body)
	}
	other, osig := stripeEvent(t, secret, "evt_other_intent", "payment_intent.succeeded", "pi_not_this_rentals", 75000, c.slug, id)
	if res, _ := c.deliver(other, osig); res.Status != http.StatusOK || !strings.Contains(string(res.Body), `"ignored"`) {
		t.Fatalf("another intent's event: %d %s", res.Status, res.Body)
	}
	if s := c.holdStatus(t, hold); s != "active" || c.count(t, "ledger_entries") != ledgerBefore {
		t.Fatalf("a refused delivery changed the hold (%s) or the ledger", s)
	}

	payload, sig = stripeEvent(t, secret, "evt_deposit_1", "payment_intent.succeeded", p.PaymentIntentID, 75000, c.slug, id)
	res, err := c.deliver(payload, sig)
	if err != nil || res.Status != http.StatusOK {
		t.Fatalf("paid: %v %d %s", err, res.Status, res.Body)
	}
	if out := decode[booking.RentalWebhookResult](t, res.Body); out.Outcome != "confirmed" {
		t.Fatalf("paid outcome: %+v", out)
	}
	for i := 0; i < 2; i++ {
		res, _ = c.deliver(payload, sig)
		if out := decode[booking.RentalWebhookResult](t, res.Body); out.Outcome != "duplicate" {
			t.Fatalf("redelivery: %+v", out)
		}
	}
	r = decode[booking.RentalView](t, c.do(t, "GET", "/api/v1/rentals/"+id, nil).Body)
	if r.Status != booking.RentalConfirmed || r.EventID == nil || r.DepositPaidAt == nil || r.Totals.BalanceMinor != 376100-75000 {
		t.Fatalf("after payment: %+v", r)
	}
	if s := c.holdStatus(t, hold); s != "confirmed" {
		t.Fatalf("hold after payment: %s", s)
	}
	mustStatus(t, c.do(t, "GET", "/api/v1/venues/"+c.venue+"/events/"+r.EventID.String(), nil), http.StatusOK)
	if n := c.count(t, "ledger_entries"); n != ledgerBefore+1 {
		t.Fatalf("ledger entries %d, want %d", n, ledgerBefore+1)
	}
	mustProblem(t, c.do(t, "PUT", "/api/v1/rentals/"+id+"/confirm", nil), http.StatusConflict, "rental_already_confirmed")
	mustProblem(t, c.do(t, "PUT", "/api/v1/rentals/"+id+"/deposit/payment", nil), http.StatusConflict, "rental_deposit_paid")
}

// TestRentalConfirmationRace: the same paid event delivered many times at
// once, another event for the same payment, and staff pressing "confirm"
// meanwhile: exactly one confirmation, one event, one ledger entry.
func TestRentalConfirmationRace(t *testing.T) {
	env, _ := startEnv(t, withStripe(t))
	c := newChain(t, env, "rentrace")
	for round := 0; round < 3; round++ {
		hold := c.hold(t, 2+round)
		r := c.rental(t, hold)
		id := r.ID.String()
		p := c.depositIntent(t, id)
		secret := env.App.Config.RentalsWebhookSecret()
		first, sig1 := stripeEvent(t, secret, fmt.Sprintf("evt_race_%d_a", round), "payment_intent.succeeded", p.PaymentIntentID, 75000, c.slug, id)
		second, sig2 := stripeEvent(t, secret, fmt.Sprintf("evt_race_%d_b", round), "payment_intent.succeeded", p.PaymentIntentID, 75000, c.slug, id)
		ledgerBefore := c.count(t, "ledger_entries")
		var wg sync.WaitGroup
		var mu sync.Mutex
		outcomes := map[string]int{}
		start := make(chan struct{})
		for i := 0; i < 16; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				<-start
				var res apptest.Response
				var err error
				switch {
				case i%4 == 3:
					res, err = c.env.Try("PUT", c.slug, "/api/v1/rentals/"+id+"/confirm", c.tok, nil)
				case i%4 == 2:
					res, err = c.deliver(second, sig2)
				default:
					res, err = c.deliver(first, sig1)
				}
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err != nil:
					outcomes["error: "+err.Error()]++
				case res.Status == http.StatusOK && i%4 != 3:
					outcomes["webhook "+decode[booking.RentalWebhookResult](t, res.Body).Outcome]++
				case res.Status == http.StatusOK:
					outcomes["manual confirmed"]++
				default:
					outcomes[fmt.Sprintf("manual %d %s", res.Status, res.Code())]++
				}
			}(i)
		}
		close(start)
		wg.Wait()
		confirmations := outcomes["webhook confirmed"] + outcomes["manual confirmed"]
		if confirmations != 1 || outcomes["webhook duplicate"] != 11 {
			t.Fatalf("round %d outcomes: %v", round, outcomes)
		}
		for k := range outcomes {
			if k != "webhook confirmed" && k != "webhook duplicate" && k != "manual 409 rental_deposit_unpaid" && k != "manual 409 rental_already_confirmed" {
				t.Fatalf("round %d: unexpected outcome %q in %v", round, k, outcomes)
			}
		}
		var confirms, events int
		if err := env.App.DB.Raw(`SELECT count(*) FROM "`+c.t.Schema+`".bkg_rental_history WHERE rental_id = ? AND action = 'confirm'`, id).Row().Scan(&confirms); err != nil {
			t.Fatal(err)
		}
		if err := env.App.DB.Raw(`SELECT count(*) FROM "`+c.t.Schema+`".cal_events WHERE title = ?`, r.Title).Row().Scan(&events); err != nil {
			t.Fatal(err)
		}
		if confirms != 1 || events != round+1 || c.count(t, "ledger_entries") != ledgerBefore+1 || c.holdStatus(t, hold) != "confirmed" {
			t.Fatalf("round %d: %d confirmations, %d events, ledger +%d", round, confirms, events, c.count(t, "ledger_entries")-ledgerBefore)
		}
	}
}

// TestInvoiceNumbersWithoutGaps: invoices of many rentals issued at once,
// each asked for several times, are numbered 1…n without a gap or a
// duplicate, one per rental; the PDF is the one whose digest is kept, and
// renders (looked at as PNG).
func TestInvoiceNumbersWithoutGaps(t *testing.T) {
	env, _ := startEnv(t)
	c := newChain(t, env, "invoice")
	const rentals = 10
	var ids []string
	for i := 0; i < rentals; i++ {
		ids = append(ids, c.rental(t, c.hold(t, 1+i)).ID.String())
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	numbers := map[string][]int{}
	start := make(chan struct{})
	for i := 0; i < rentals*3; i++ {
		wg.Add(1)
		go func(id string) {
			defer wg.Done()
			<-start
			res, err := c.env.Try("PUT", c.slug, "/api/v1/rentals/"+id+"/invoice", c.tok, nil)
			mu.Lock()
			defer mu.Unlock()
			if err != nil || res.Status != http.StatusOK {
				t.Errorf("issue: %v %d %s", err, res.Status, res.Body)
				return
			}
			numbers[id] = append(numbers[id], decode[booking.InvoiceInfo](t, res.Body).Number)
		}(ids[i%rentals])
	}
	close(start)
	wg.Wait()
	var all []int
	for id, ns := range numbers {
		if len(ns) != 3 || ns[0] != ns[1] || ns[1] != ns[2] {
			t.Fatalf("rental %s got invoices %v", id, ns)
		}
		all = append(all, ns[0])
	}
	slices.Sort(all)
	for i, n := range all {
		if n != i+1 {
			t.Fatalf("invoice numbers %v: a gap or a duplicate", all)
		}
	}
	if n := c.count(t, "bkg_invoices"); n != rentals {
		t.Fatalf("%d invoices for %d rentals", n, rentals)
	}
	r := decode[booking.RentalView](t, c.do(t, "GET", "/api/v1/rentals/"+ids[0], nil).Body)
	res := c.do(t, "GET", "/api/v1/rentals/"+ids[0]+"/invoice/pdf", nil)
	mustStatus(t, res, http.StatusOK)
	if r.Invoice == nil || !strings.HasPrefix(string(res.Body), "%PDF-") || digest(res.Body) != r.Invoice.SHA256 || r.Invoice.TotalMinor != 376100 {
		t.Fatalf("invoice %+v, PDF digest %s", r.Invoice, digest(res.Body))
	}
	renderPNG(t, res.Body, "booking-rental-invoice")
	mustStatus(t, c.do(t, "GET", "/api/v1/rentals/"+ids[1]+"/invoice/pdf", nil), http.StatusOK)
}

// Bad rental terms are refused with a clear code and write nothing.
func TestRentalBadInput(t *testing.T) {
	env, _ := startEnv(t)
	c := newChain(t, env, "rentbad")
	hold := c.hold(t, 9)
	with := func(k string, v any) map[string]any { b := rentalBody(hold); b[k] = v; return b }
	addOn := func(a map[string]any) map[string]any { return with("add_ons", []any{a}) }
	for _, tc := range []struct {
		name string
		body any
		code string
	}{
		{"negative fee", with("fee_minor", -1), "invalid_amount"},
		{"overflowing fee", with("fee_minor", int64(1)<<62), "invalid_amount"},
		{"unknown currency", with("currency", "XYZ"), "invalid_currency"},
		{"deposit over the total", with("deposit_minor", 10_000_000), "invalid_amount"},
		{"bad email", with("renter_email", "not an address"), "invalid_email"},
		{"bad date", with("deposit_due", "May 1st"), "invalid_request"},
		{"unknown add-on kind", addOn(map[string]any{"kind": "fireworks", "name": "Boom", "quantity": 1, "unit_minor": 100}), "invalid_request"},
		{"zero quantity", addOn(map[string]any{"kind": "av", "name": "Screen", "quantity": 0, "unit_minor": 100}), "invalid_quantity"},
		{"overflowing add-on", addOn(map[string]any{"kind": "av", "name": "Screen", "quantity": 10000, "unit_minor": 900_000_000_000}), "invalid_amount"},
		{"not a hold", with("hold_id", "nope"), "invalid_request"},
		{"wrong type", with("fee_minor", "lots"), "invalid_json"},
	} {
		res := c.do(t, "POST", "/api/v1/rentals", tc.body)
		if res.Status != http.StatusBadRequest || res.Code() != tc.code {
			t.Errorf("%s: %d %s, want 400 %s", tc.name, res.Status, res.Body, tc.code)
		}
	}
	if n := c.count(t, "bkg_rentals"); n != 0 {
		t.Fatalf("refused rentals wrote %d rows", n)
	}
	payload := []byte(`{"id":"evt_x","type":"payment_intent.succeeded"}`)
	if res, _ := c.deliver(payload, "t=1,v1=deadbeef"); res.Status != http.StatusBadRequest || res.Code() != "invalid_signature" {
		t.Fatalf("unsigned webhook: %d %s", res.Status, res.Body)
	}
}
