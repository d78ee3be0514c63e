package booking_test

import (
	"net/http"
	"testing"

	"marquee/app/apptest"
	"marquee/modules/booking"
)

// The settlement is computed from the accepted version and the recorded
// actuals, in an external (artist) and an internal (promoter) view; it says
// where the sales came from. The figures are those of the pure package's
// "versus, the percentage wins" case.
func TestSettlementFromState(t *testing.T) {
	env, _ := startEnv(t)
	c := newChain(t, env, "settle")
	d := c.act(t, c.create(t, c.artistA), "send", nil)
	path := "/api/v1/bookings/" + d.ID.String()
	if res := c.do(t, "GET", path+"/settlement", nil); res.Status != http.StatusConflict || res.Code() != "no_accepted_terms" {
		t.Fatalf("settlement before acceptance: %d %s", res.Status, res.Body)
	}
	d = c.agentAct(t, c.linkA, d, "accept", nil)
	actuals := map[string]any{"version": d.Version,
		"sales":         []any{map[string]any{"tier": "GA", "sold": 800}, map[string]any{"tier": "VIP", "sold": 100}},
		"expenses":      []any{map[string]any{"name": "Rent", "actual_minor": 300000}, map[string]any{"name": "Production", "actual_minor": 250000}},
		"adjustments":   []any{},
		"paid_deposits": []any{"Half on signing"}}
	apptest.RunScenarios(t, env, []apptest.Scenario{
		{Name: "more sold than sellable", Method: "PUT", Path: path + "/actuals", Tenant: c.slug, Token: c.tok,
			Body: map[string]any{"version": d.Version, "sales": []any{map[string]any{"tier": "GA", "sold": 801}}}, Status: 400, Code: "invalid_quantity",
			Changes: map[string]int{"bkg_history": 0}},
		{Name: "unknown deposit", Method: "PUT", Path: path + "/actuals", Tenant: c.slug, Token: c.tok,
			Body: map[string]any{"version": d.Version, "paid_deposits": []any{"Nope"}}, Status: 400, Code: "invalid_request"},
		{Name: "negative expense", Method: "PUT", Path: path + "/actuals", Tenant: c.slug, Token: c.tok,
			Body: map[string]any{"version": d.Version, "expenses": []any{map[string]any{"name": "Rent", "actual_minor": -1}}}, Status: 400, Code: "invalid_amount"},
		{Name: "recorded", Method: "PUT", Path: path + "/actuals", Tenant: c.slug, Token: c.tok, Body: actuals, Status: 200,
			Changes: map[string]int{"bkg_history": 1}},
	})
	res := c.do(t, "GET", path+"/settlement", nil)
	mustStatus(t, res, http.StatusOK)
	ext := decode[booking.SettlementView](t, res.Body)
	s := ext.Sheet
	// The versus sheet with 15 % promoter profit, but the sell-out bonus of
	// the pure case is absent here: 27,371.55 vs 10,000.00, deposit 5,000.00
	// paid; NY withholds 2 % of 27,371.55 = 547.431 → 547.43.
	if ext.View != "external" || ext.SalesSource != "recorded" || s.NetGrossMinor != 3818182 || s.ShareMinor != 2737155 ||
		s.Winner != "percentage" || s.DepositsPaidMinor != 500000 || s.WithholdingsMinor != 54743 || s.WalkoutMinor != 2737155-500000-54743 ||
		s.Internal != nil || s.Expenses[1].ActualMinor != 220000 {
		t.Fatalf("external sheet: %+v", ext)
	}
	res = c.do(t, "GET", path+"/settlement?view=internal", nil)
	mustStatus(t, res, http.StatusOK)
	in := decode[booking.SettlementView](t, res.Body)
	if in.View != "internal" || in.Sheet.Internal == nil || in.Sheet.Internal.ActualExpensesMinor != 550000 ||
		in.Sheet.Internal.PromoterNetMinor != 3818182-550000-2737155 || in.Sheet.Expenses[1].ActualMinor != 250000 {
		t.Fatalf("internal sheet: %+v", in)
	}
	if res := c.do(t, "GET", path+"/settlement?view=mine", nil); res.Status != 400 {
		t.Fatalf("unknown view: %d", res.Status)
	}
	// A box-office user holds no booking permission at all.
	env.User(t, c.t, "box@"+c.slug+".test", "box_office", c.venue)
	box := env.Login(t, c.slug, "box@"+c.slug+".test")
	if res := env.Do(t, "GET", c.slug, path+"/settlement", box, nil); res.Status != http.StatusForbidden {
		t.Fatalf("box office reads a settlement: %d", res.Status)
	}
}
