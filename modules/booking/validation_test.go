package booking_test

import (
	"net/http"
	"testing"

	"marquee/app/apptest"
)

// with returns the valid terms with one change at a dotted path.
func with(path string, v any) map[string]any {
	t := offerTerms(1000000)
	switch path {
	case "deal.artist_bps":
		t["deal"] = map[string]any{"type": "versus", "basis": "net", "artist_bps": v}
	case "tiers.0.price_minor":
		t["tiers"] = []any{map[string]any{"name": "GA", "price_minor": v, "allotment": 800}}
	case "deposits.0.bps":
		t["deposits"] = []any{map[string]any{"name": "D", "kind": "percent", "bps": v, "due": "2031-02-01"}}
	case "withholdings":
		t["withholdings"] = v
	default:
		t[path] = v
	}
	return t
}

// Bad offers are refused with a problem naming the field, and write
// nothing: no booking, no version, no history.
func TestBadOffersWriteNothing(t *testing.T) {
	env, _ := startEnv(t)
	c := newChain(t, env, "bad")
	sent := c.act(t, c.create(t, c.artistA), "send", nil)
	nothing := map[string]int{"bkg_bookings": 0, "bkg_versions": 0, "bkg_history": 0, "ledger_entries": 0}
	create := func(name string, terms map[string]any, code, field string) apptest.Scenario {
		return apptest.Scenario{Name: name, Method: "POST", Path: "/api/v1/bookings", Tenant: c.slug, Token: c.tok,
			Body:   map[string]any{"artist_id": c.artistA, "title": "Bad", "terms": terms},
			Status: http.StatusBadRequest, Code: code, Contains: []string{`"field":"` + field + `"`}, Changes: nothing}
	}
	counter := func(name string, terms map[string]any, version int, status int, code string) apptest.Scenario {
		return apptest.Scenario{Name: name, Method: "PUT", Path: "/api/v1/agent/bookings/" + sent.ID.String() + "/counter", Tenant: c.slug,
			Headers: map[string]string{"X-Agent-Token": c.linkA},
			Body:    map[string]any{"version": version, "terms": terms}, Status: status, Code: code, Changes: nothing}
	}
	apptest.RunScenarios(t, env, []apptest.Scenario{
		create("negative guarantee", with("guarantee_minor", -100), "invalid_amount", "terms.guarantee_minor"),
		create("overflowing guarantee", with("guarantee_minor", int64(1)<<62), "invalid_amount", "terms.guarantee_minor"),
		create("negative ticket price", with("tiers.0.price_minor", -1), "invalid_amount", "terms.tiers[0].price_minor"),
		create("share over 100 %", with("deal.artist_bps", 10001), "invalid_percentage", "terms.deal.artist_bps"),
		create("promoter profit over 100 %", with("promoter_profit_bps", 15000), "invalid_percentage", "terms.promoter_profit_bps"),
		create("deposit over 100 %", with("deposits.0.bps", 20000), "invalid_percentage", "terms.deposits[0].bps"),
		create("withholdings over 100 %", with("withholdings", []any{map[string]any{"jurisdiction": "A", "bps": 9000}, map[string]any{"jurisdiction": "B", "bps": 2000}}),
			"invalid_percentage", "terms.withholdings"),
		create("unknown currency", with("currency", "XYZ"), "invalid_currency", "terms.currency"),
		create("no currency", with("currency", ""), "invalid_currency", "terms.currency"),
		{Name: "number beyond int64", Method: "POST", Path: "/api/v1/bookings", Tenant: c.slug, Token: c.tok,
			Body:   `{"artist_id":"` + c.artistA + `","title":"Bad","terms":{"currency":"USD","guarantee_minor":99999999999999999999}}`,
			Status: http.StatusBadRequest, Problem: true, Changes: nothing},
		{Name: "unknown artist", Method: "POST", Path: "/api/v1/bookings", Tenant: c.slug, Token: c.tok,
			Body: map[string]any{"artist_id": "01900000-0000-7000-8000-000000000009", "title": "x", "terms": offerTerms(1)}, Status: http.StatusNotFound, Changes: nothing},
		counter("counter with a share over 100 %", with("deal.artist_bps", 12000), sent.Version, http.StatusBadRequest, "invalid_percentage"),
		counter("counter on a stale version", offerTerms(1200000), sent.Version-1, http.StatusConflict, "version_mismatch"),
		counter("counter without terms", nil, sent.Version, http.StatusBadRequest, "invalid_terms"),
		{Name: "bad state filter", Path: "/api/v1/bookings?state=pending", Tenant: c.slug, Token: c.tok, Status: http.StatusBadRequest, Code: "invalid_state"},
		{Name: "agent link for a week too long", Method: "POST", Path: "/api/v1/booking/agents/" + c.agentA + "/links", Tenant: c.slug, Token: c.tok,
			Body: map[string]any{"valid_hours": 24 * 90}, Status: http.StatusBadRequest, Code: "invalid_request"},
	})
}
