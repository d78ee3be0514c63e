package booking_test

import (
	"encoding/csv"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"marquee/modules/booking"
)

// settled is an accepted offer with the actuals of TestSettlementFromState.
func (c *chain) settled(t *testing.T, day int) booking.Detail {
	t.Helper()
	d := c.accepted(t, day)
	res := c.do(t, "PUT", "/api/v1/bookings/"+d.ID.String()+"/actuals", map[string]any{"version": d.Version,
		"sales":         []any{map[string]any{"tier": "GA", "sold": 800}, map[string]any{"tier": "VIP", "sold": 100}},
		"expenses":      []any{map[string]any{"name": "Rent", "actual_minor": 300000}, map[string]any{"name": "Production", "actual_minor": 250000}},
		"paid_deposits": []any{"Half on signing"}})
	mustStatus(t, res, http.StatusOK)
	return decode[booking.Detail](t, res.Body)
}

// TestSettlementExportAndAcknowledge: the sheet exports as CSV (its lines
// and totals the JSON's, in minor units) and PDF (rendered and looked at);
// the agent gets the external view only; each party acknowledges the sheet
// whose digest they read, once; a stale digest is refused; when both agreed,
// the walkout and the withholding go to the ledger, linked to the booking.
func TestSettlementExportAndAcknowledge(t *testing.T) {
	env, _ := startEnv(t)
	c := newChain(t, env, "settleack")
	d := c.settled(t, 7)
	path := "/api/v1/bookings/" + d.ID.String()
	v := decode[booking.SettlementView](t, c.do(t, "GET", path+"/settlement", nil).Body)
	if len(v.SheetSHA256) != 64 || len(v.Acknowledgments) != 0 {
		t.Fatalf("settlement: %+v", v)
	}

	res := c.do(t, "GET", path+"/settlement/export?format=csv", nil)
	mustStatus(t, res, http.StatusOK)
	rows, err := csv.NewReader(strings.NewReader(string(res.Body))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range rows[1:] {
		got[r[1]] = r[2]
	}
	want := map[string]int64{"Gross": v.Sheet.GrossMinor, "Net gross": v.Sheet.NetGrossMinor, "Split point": v.Sheet.SplitPointMinor,
		"Artist share": v.Sheet.ShareMinor, "Earnings": v.Sheet.EarningsMinor, "Walkout": 2737155 - 500000 - 54743,
		"Withholding: US-NY": -54743, "Deposit: Half on signing": -500000}
	for k, w := range want {
		if got[k] != strconv.FormatInt(w, 10) {
			t.Errorf("CSV %s = %q, want %d", k, got[k], w)
		}
	}
	if _, ok := got["Promoter net"]; ok {
		t.Error("the external CSV carries the promoter's P&L")
	}
	res = c.do(t, "GET", path+"/settlement/export?format=csv&view=internal", nil)
	if !strings.Contains(string(res.Body), "Promoter net") {
		t.Error("the internal CSV lacks the promoter's P&L")
	}
	res = c.do(t, "GET", path+"/settlement/export?format=pdf", nil)
	mustStatus(t, res, http.StatusOK)
	renderPNG(t, res.Body, "booking-settlement")
	agentPDF := c.agent(t, c.linkA, "GET", "/api/v1/agent/bookings/"+d.ID.String()+"/settlement/export?format=csv&view=internal", nil)
	mustStatus(t, agentPDF, http.StatusForbidden)
	mustProblem(t, c.agent(t, c.linkB, "GET", "/api/v1/agent/bookings/"+d.ID.String()+"/settlement", nil), http.StatusNotFound, "not_found")

	ledger := func() int { return c.count(t, "ledger_entries") }
	before := ledger()
	stale := strings.Repeat("a", 64)
	mustProblem(t, c.do(t, "PUT", path+"/settlement/acknowledge", map[string]any{"name": "Dana", "sheet_sha256": stale}), http.StatusConflict, "settlement_changed")
	mustProblem(t, c.do(t, "PUT", path+"/settlement/acknowledge", map[string]any{"name": "", "sheet_sha256": v.SheetSHA256}), http.StatusBadRequest, "invalid_request")
	if n := c.count(t, "bkg_settlement_acks"); n != 0 {
		t.Fatalf("refused acknowledgments wrote %d rows", n)
	}
	mustStatus(t, c.do(t, "PUT", path+"/settlement/acknowledge", map[string]any{"name": "Dana", "sheet_sha256": v.SheetSHA256}), http.StatusOK)
	mustProblem(t, c.do(t, "PUT", path+"/settlement/acknowledge", map[string]any{"name": "Dana", "sheet_sha256": v.SheetSHA256}), http.StatusConflict, "settlement_already_acknowledged")
	if ledger() != before {
		t.Fatal("one acknowledgment wrote to the ledger")
	}
	res = c.agent(t, c.linkA, "PUT", "/api/v1/agent/bookings/"+d.ID.String()+"/settlement/acknowledge", map[string]any{"name": "Maya", "sheet_sha256": v.SheetSHA256})
	mustStatus(t, res, http.StatusOK)
	after := decode[booking.SettlementView](t, res.Body)
	if len(after.Acknowledgments) != 2 || !after.Acknowledgments[0].Current || !after.Acknowledgments[1].Current {
		t.Fatalf("acknowledgments: %+v", after.Acknowledgments)
	}
	var entries []struct {
		Kind        string
		AmountMinor int64
	}
	if err := env.App.DB.Raw(`SELECT kind, amount_minor FROM "`+c.t.Schema+`".ledger_entries WHERE reference = ? AND kind IN ('booking.settlement_walkout', 'booking.withholding') ORDER BY seq`,
		"booking:"+d.ID.String()).Scan(&entries).Error; err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 || entries[0].AmountMinor != 2737155-500000-54743 || entries[1].AmountMinor != 54743 {
		t.Fatalf("ledger after both acknowledged: %+v", entries)
	}
}

// TestDepositPaymentsOnLedger: a deposit recorded as paid goes to the
// ledger once (recording the same actuals again adds nothing); one no
// longer recorded as paid is reversed, so the sum per booking is what was paid.
func TestDepositPaymentsOnLedger(t *testing.T) {
	env, _ := startEnv(t)
	c := newChain(t, env, "deposits")
	d := c.settled(t, 9)
	sum := func() (n int, total int64) {
		t.Helper()
		if err := env.App.DB.Raw(`SELECT count(*), coalesce(sum(amount_minor), 0) FROM "`+c.t.Schema+`".ledger_entries
			WHERE reference = ? AND kind IN ('booking.deposit_paid', 'booking.deposit_unpaid')`, "booking:"+d.ID.String()).Row().Scan(&n, &total); err != nil {
			t.Fatal(err)
		}
		return
	}
	if n, total := sum(); n != 1 || total != 500000 {
		t.Fatalf("after the deposit was paid: %d entries, %d", n, total)
	}
	record := func(paid []any) {
		t.Helper()
		res := c.do(t, "PUT", "/api/v1/bookings/"+d.ID.String()+"/actuals", map[string]any{"version": d.Version, "paid_deposits": paid})
		mustStatus(t, res, http.StatusOK)
		d = decode[booking.Detail](t, res.Body)
	}
	record([]any{"Half on signing"})
	if n, total := sum(); n != 1 || total != 500000 {
		t.Fatalf("the same actuals again: %d entries, %d", n, total)
	}
	record([]any{})
	if n, total := sum(); n != 2 || total != 0 {
		t.Fatalf("after the payment was taken back: %d entries, %d", n, total)
	}
}
