package booking_test

import (
	"context"
	"net/http"
	"testing"

	"marquee/app"
	"marquee/modules/booking"
)

// The demo chain has offers in every state but expired, the contracted one
// on a calendar event with a settlement to read, and the accepted money on
// the ledger.
func TestDemoSeed(t *testing.T) {
	env, _ := startEnv(t)
	if _, err := env.App.SeedDemo(context.Background()); err != nil {
		t.Fatalf("seed: %v", err)
	}
	res := env.Do(t, "POST", "acme", "/api/v1/auth/login", "", map[string]string{"email": "owner@acme.test", "password": app.DemoPassword})
	mustStatus(t, res, http.StatusOK)
	tok := decode[struct{ Token string }](t, res.Body).Token
	res = env.Do(t, "GET", "acme", "/api/v1/bookings", tok, nil)
	mustStatus(t, res, http.StatusOK)
	items := decode[struct{ Items []booking.Summary }](t, res.Body).Items
	states := map[booking.State]booking.Summary{}
	for _, it := range items {
		states[it.State] = it
	}
	for _, s := range []booking.State{booking.Draft, booking.OfferSent, booking.CounterOffer, booking.Accepted, booking.Contracted, booking.Declined, booking.Cancelled} {
		if _, ok := states[s]; !ok {
			t.Errorf("no demo offer is %s", s)
		}
	}
	contracted := states[booking.Contracted]
	if contracted.EventID == nil || contracted.HoldID == nil {
		t.Fatalf("the contracted demo offer has no event: %+v", contracted)
	}
	res = env.Do(t, "GET", "acme", "/api/v1/bookings/"+contracted.ID.String()+"/settlement?view=internal", tok, nil)
	mustStatus(t, res, http.StatusOK)
	if s := decode[booking.SettlementView](t, res.Body).Sheet; s.TicketsSold != 1662 || s.WalkoutMinor <= 0 || s.DepositsPaidMinor == 0 {
		t.Fatalf("demo settlement: %+v", s)
	}
	acme, err := env.App.Tenants.Lookup(context.Background(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	// Two accepted offers (the accepted and the contracted one): a guarantee
	// and a deposit each.
	var n int
	if err := env.App.DB.Raw(`SELECT count(*) FROM "` + acme.Schema + `".ledger_entries WHERE kind IN ('booking.guarantee', 'booking.deposit_due')`).Row().Scan(&n); err != nil || n != 4 {
		t.Fatalf("booking ledger entries: %d %v", n, err)
	}
	// The contracted show: its contract signed by both and sealed, its
	// settlement acknowledged by both, the walkout on the ledger.
	res = env.Do(t, "GET", "acme", "/api/v1/bookings/"+contracted.ID.String()+"/contract", tok, nil)
	mustStatus(t, res, http.StatusOK)
	if ct := decode[booking.ContractView](t, res.Body); ct.Status != booking.ContractSealed || len(ct.Signatures) != 2 {
		t.Fatalf("demo contract: %+v", ct)
	}
	res = env.Do(t, "GET", "acme", "/api/v1/bookings/"+contracted.ID.String()+"/settlement", tok, nil)
	v := decode[booking.SettlementView](t, res.Body)
	if len(v.Acknowledgments) != 2 || !v.Acknowledgments[0].Current || !v.Acknowledgments[1].Current {
		t.Fatalf("demo settlement acknowledgments: %+v", v.Acknowledgments)
	}
	// Venue rentals: one paid, confirmed and invoiced, one awaiting its deposit.
	res = env.Do(t, "GET", "acme", "/api/v1/rentals", tok, nil)
	mustStatus(t, res, http.StatusOK)
	rentals := decode[struct{ Items []booking.RentalSummary }](t, res.Body).Items
	byStatus := map[string]booking.RentalSummary{}
	for _, r := range rentals {
		byStatus[r.Status] = r
	}
	confirmed, awaiting := byStatus[booking.RentalConfirmed], byStatus[booking.RentalAwaitingDeposit]
	if len(rentals) != 2 || confirmed.DepositPaidAt == nil || confirmed.EventID == nil || confirmed.InvoiceNumber == nil ||
		awaiting.DepositPaidAt != nil || awaiting.EventID != nil {
		t.Fatalf("demo rentals: %+v", rentals)
	}
	mustStatus(t, env.Do(t, "GET", "acme", "/api/v1/rentals/"+confirmed.ID.String()+"/invoice/pdf", tok, nil), http.StatusOK)
	var walkout int64
	if err := env.App.DB.Raw(`SELECT amount_minor FROM "`+acme.Schema+`".ledger_entries WHERE kind = 'booking.settlement_walkout' AND reference = ?`,
		"booking:"+contracted.ID.String()).Row().Scan(&walkout); err != nil || walkout != v.Sheet.WalkoutMinor {
		t.Fatalf("demo walkout on the ledger: %d (sheet %d) %v", walkout, v.Sheet.WalkoutMinor, err)
	}
}
