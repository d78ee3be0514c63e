package terms

import (
	"errors"
	"testing"
)

func valid() Terms {
	cap := int64(50000)
	t := Terms{Currency: "EUR", GuaranteeMinor: 100000, Deal: Deal{Type: DealVersus, Basis: BasisNet, ArtistBps: 8000},
		Tiers:    []Tier{{Name: "GA", PriceMinor: 3000, Allotment: 100}},
		Expenses: []Expense{{Name: "Sound", BudgetMinor: 40000, CapMinor: &cap}},
		Deposits: []Deposit{{Name: "Signing", Kind: DepositPercent, Bps: 5000, Due: "2031-01-01"}}}
	t.Normalize()
	return t
}

func TestValidateRefuses(t *testing.T) {
	cases := []struct {
		name, code, field string
		change            func(*Terms)
	}{
		{"unknown currency", "invalid_currency", "terms.currency", func(t *Terms) { t.Currency = "ABC" }},
		{"negative guarantee", "invalid_amount", "terms.guarantee_minor", func(t *Terms) { t.GuaranteeMinor = -1 }},
		{"overflowing guarantee", "invalid_amount", "terms.guarantee_minor", func(t *Terms) { t.GuaranteeMinor = 1 << 62 }},
		{"share over 100 %", "invalid_percentage", "terms.deal.artist_bps", func(t *Terms) { t.Deal.ArtistBps = 10001 }},
		{"versus without its net", "invalid_terms", "terms.deal.basis", func(t *Terms) { t.Deal.Basis = "" }},
		{"tax over 100 %", "invalid_percentage", "terms.tax_rate_bps", func(t *Terms) { t.TaxRateBps = 20000 }},
		{"negative price", "invalid_amount", "terms.tiers[0].price_minor", func(t *Terms) { t.Tiers[0].PriceMinor = -5 }},
		{"comps over allotment", "invalid_terms", "terms.tiers[0].comps", func(t *Terms) { t.Tiers[0].Comps = 101 }},
		{"negative cap", "invalid_amount", "terms.expenses[0].cap_minor", func(t *Terms) { c := int64(-1); t.Expenses[0].CapMinor = &c }},
		{"deposit over 100 %", "invalid_percentage", "terms.deposits[0].bps", func(t *Terms) { t.Deposits[0].Bps = 10001 }},
		{"deposit date", "invalid_terms", "terms.deposits[0].due", func(t *Terms) { t.Deposits[0].Due = "soon" }},
		{"withholdings over 100 %", "invalid_percentage", "terms.withholdings", func(t *Terms) {
			t.Withholdings = []Withholding{{Jurisdiction: "A", Bps: 6000}, {Jurisdiction: "B", Bps: 5000}}
		}},
		{"merch over 100 %", "invalid_percentage", "terms.merch.soft_artist_bps", func(t *Terms) { t.Merch.SoftArtistBps = 12000 }},
	}
	if err := valid().Validate("terms"); err != nil {
		t.Fatalf("valid terms refused: %v", err)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tm := valid()
			c.change(&tm)
			var p *Problem
			if err := tm.Validate("terms"); !errors.As(err, &p) || p.Code != c.code || p.Field != c.field {
				t.Fatalf("got %v (%+v), want %s on %s", err, p, c.code, c.field)
			}
		})
	}
}

func TestDiff(t *testing.T) {
	a, b := valid(), valid()
	b.GuaranteeMinor = 120000
	b.Tiers = append(b.Tiers, Tier{Name: "VIP", PriceMinor: 9000, Allotment: 20})
	b.Rider = "Two towels"
	changes, err := Diff(a, b)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][2]any{}
	for _, c := range changes {
		got[c.Field] = [2]any{c.From, c.To}
	}
	if g := got["guarantee_minor"]; g != [2]any{int64(100000), int64(120000)} {
		t.Errorf("guarantee change %v", g)
	}
	if g := got["tiers[1].price_minor"]; g != [2]any{nil, int64(9000)} {
		t.Errorf("added tier %v", g)
	}
	if g := got["rider"]; g != [2]any{"", "Two towels"} {
		t.Errorf("rider %v", g)
	}
	if _, ok := got["tiers[0].price_minor"]; ok || len(changes) != 2+5 {
		t.Errorf("changes: %+v", changes)
	}
	if same, _ := Diff(a, a); len(same) != 0 {
		t.Errorf("a version differs from itself: %+v", same)
	}
}

func TestFormat(t *testing.T) {
	for _, c := range []struct {
		minor int64
		cur   string
		want  string
	}{{123456789, "USD", "1,234,567.89 USD"}, {5, "EUR", "0.05 EUR"}, {1500, "JPY", "1,500 JPY"}, {-1234, "KWD", "−1.234 KWD"}} {
		if got := Format(c.minor, c.cur); got != c.want {
			t.Errorf("Format(%d, %s) = %q, want %q", c.minor, c.cur, got, c.want)
		}
	}
}
