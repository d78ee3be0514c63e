// Package terms holds an offer's terms as data: the money (guarantee, deal,
// bonuses, expenses, ticket scaling, fees, tax, deposits, withholdings,
// merch) and the rest of the deal (rider, billing, set length, radius), their
// strict validation, and a field-by-field diff between two versions. It is
// pure: no database, no HTTP.
//
// Money is integer minor units of Currency; percentages are basis points
// (1 bps = 0.01 %, 10000 = 100 %), so no term is ever a float.
package terms

import (
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

// Terms are one version of an offer's terms.
type Terms struct {
	Currency       string `json:"currency"`
	GuaranteeMinor int64  `json:"guarantee_minor"`
	Deal           Deal   `json:"deal"`
	// Bonuses paid when ticket counts or sell-through are reached.
	Bonuses []Bonus `json:"bonuses"`
	// PromoterProfitBps is the promoter's profit as a share of the show's
	// expenses; it is part of the split point.
	PromoterProfitBps int       `json:"promoter_profit_bps"`
	Expenses          []Expense `json:"expenses"`
	Tiers             []Tier    `json:"tiers"`
	// FacilityFeeMinor is taken from each ticket sold before anything is split.
	FacilityFeeMinor int64 `json:"facility_fee_minor"`
	TaxRateBps       int   `json:"tax_rate_bps"`
	// TaxInclusive says ticket prices include the tax (so it is taken out of
	// the gross); otherwise it was added on top and is not in the gross.
	TaxInclusive   bool          `json:"tax_inclusive"`
	Deposits       []Deposit     `json:"deposits"`
	Withholdings   []Withholding `json:"withholdings"`
	Merch          Merch         `json:"merch"`
	Rider          string        `json:"rider"`
	TechnicalNeeds string        `json:"technical_needs"`
	Billing        string        `json:"billing"`
	SetMinutes     int           `json:"set_minutes"`
	Radius         Radius        `json:"radius"`
}

// Deal types and bases.
const (
	DealFlat   = "flat"   // the guarantee, whatever the sales
	DealDoor   = "door"   // a share of the door: % of net, % of net gross, or per ticket
	DealPlus   = "plus"   // guarantee + % of what exceeds the split point
	DealVersus = "versus" // the greater of the guarantee and % of the named base

	BasisNet       = "net"        // net gross minus the split point (expenses and promoter profit)
	BasisNetGross  = "net_gross"  // net gross ("from dollar one")
	BasisGross     = "gross"      // gross box office (versus only)
	BasisPerTicket = "per_ticket" // an amount per ticket sold (door only)
)

// Deal is how the artist's share is computed.
type Deal struct {
	Type string `json:"type"`
	// Basis names what the percentage is of: the contract must say which
	// net, or the two sides argue about it at settlement.
	Basis          string `json:"basis"`
	ArtistBps      int    `json:"artist_bps"`
	PerTicketMinor int64  `json:"per_ticket_minor"`
}

// Bonus kinds.
const (
	BonusTickets     = "tickets"      // Threshold is a count of tickets sold
	BonusSellThrough = "sell_through" // Threshold is sold / sellable in bps
)

// Bonus is paid once its threshold is reached: AmountMinor once, and
// PerTicketMinor for each ticket sold past the threshold, or for every
// ticket sold when Retroactive.
type Bonus struct {
	Name           string `json:"name"`
	Kind           string `json:"kind"`
	Threshold      int    `json:"threshold"`
	AmountMinor    int64  `json:"amount_minor"`
	PerTicketMinor int64  `json:"per_ticket_minor"`
	Retroactive    bool   `json:"retroactive"`
}

// Expense is a budget line; CapMinor, when set, is its "not to exceed":
// the artist is never charged more for it, whatever it cost.
type Expense struct {
	Name        string `json:"name"`
	BudgetMinor int64  `json:"budget_minor"`
	CapMinor    *int64 `json:"cap_minor,omitempty"`
}

// Tier is one price level of the ticket scaling. Sellable tickets are the
// allotment less comps (free) and kills (seats taken off sale).
type Tier struct {
	Name       string `json:"name"`
	PriceMinor int64  `json:"price_minor"`
	Allotment  int    `json:"allotment"`
	Comps      int    `json:"comps"`
	Kills      int    `json:"kills"`
}

// Sellable is what the tier can sell.
func (t Tier) Sellable() int { return t.Allotment - t.Comps - t.Kills }

// Deposit kinds.
const (
	DepositFlat    = "flat"
	DepositPercent = "percent" // of the guarantee
)

// Deposit is one payment the promoter makes ahead of the show.
type Deposit struct {
	Name        string `json:"name"`
	Kind        string `json:"kind"`
	AmountMinor int64  `json:"amount_minor"`
	Bps         int    `json:"bps"`
	Due         string `json:"due"` // YYYY-MM-DD
}

// Withholding is a tax withheld from the artist's earnings when they exceed
// the threshold (e.g. a state's 2 % above 300.00). An offer may carry
// several (state and federal, say), each computed on the same earnings.
type Withholding struct {
	Jurisdiction   string `json:"jurisdiction"`
	ThresholdMinor int64  `json:"threshold_minor"`
	Bps            int    `json:"bps"`
}

// Merch is the artist's share of merchandise sales, soft and hard goods.
type Merch struct {
	SoftArtistBps int `json:"soft_artist_bps"`
	HardArtistBps int `json:"hard_artist_bps"`
}

// Radius is the radius clause: no other show within Miles, DaysBefore the
// show to DaysAfter it.
type Radius struct {
	Miles      int `json:"miles"`
	DaysBefore int `json:"days_before"`
	DaysAfter  int `json:"days_after"`
}

// Limits keep every sum and product of the settlement inside int64 (the
// percentage step multiplies in 128 bits).
const (
	MaxAmount    = 1_000_000_000_000 // 10 billion in a two-decimal currency
	MaxPrice     = 1_000_000_000     // one ticket
	MaxTickets   = 10_000_000        // one tier's allotment
	MaxBps       = 10_000            // 100 %
	maxLines     = 100
	maxTiers     = 50
	maxBonuses   = 20
	maxDeposits  = 12
	maxWithholds = 10
	maxLongText  = 20_000
)

// Problem is a refused term: its code (invalid_terms, invalid_amount,
// invalid_percentage, invalid_currency), the field at fault and why.
type Problem struct {
	Code, Field, Detail string
}

func (p *Problem) Error() string { return p.Field + ": " + p.Detail }

func bad(code, field, format string, args ...any) *Problem {
	return &Problem{Code: code, Field: field, Detail: fmt.Sprintf(format, args...)}
}

var nameRe = regexp.MustCompile(`\S`)

// Normalize makes every list non-nil (written [] in JSON) and trims names.
func (t *Terms) Normalize() {
	t.Currency = strings.ToUpper(strings.TrimSpace(t.Currency))
	if t.Bonuses == nil {
		t.Bonuses = []Bonus{}
	}
	if t.Expenses == nil {
		t.Expenses = []Expense{}
	}
	if t.Tiers == nil {
		t.Tiers = []Tier{}
	}
	if t.Deposits == nil {
		t.Deposits = []Deposit{}
	}
	if t.Withholdings == nil {
		t.Withholdings = []Withholding{}
	}
}

// Validate checks every term; the first refused one is returned as a
// *Problem naming its field under prefix (e.g. "terms.tiers[2].price_minor").
func (t Terms) Validate(prefix string) error {
	f := func(name string) string {
		if prefix == "" {
			return name
		}
		return prefix + "." + name
	}
	if _, ok := Exponent(t.Currency); !ok {
		return bad("invalid_currency", f("currency"), "%q is not an ISO 4217 currency code", t.Currency)
	}
	if p := amount(f("guarantee_minor"), t.GuaranteeMinor, MaxAmount); p != nil {
		return p
	}
	if p := t.validateDeal(f); p != nil {
		return p
	}
	if p := pct(f("promoter_profit_bps"), t.PromoterProfitBps); p != nil {
		return p
	}
	if p := amount(f("facility_fee_minor"), t.FacilityFeeMinor, MaxPrice); p != nil {
		return p
	}
	if p := pct(f("tax_rate_bps"), t.TaxRateBps); p != nil {
		return p
	}
	if len(t.Tiers) > maxTiers {
		return bad("invalid_terms", f("tiers"), "at most %d tiers", maxTiers)
	}
	names := map[string]bool{}
	for i, tr := range t.Tiers {
		at := func(s string) string { return f(fmt.Sprintf("tiers[%d].%s", i, s)) }
		if p := text(at("name"), tr.Name, 100, true); p != nil {
			return p
		}
		if names[strings.ToLower(tr.Name)] {
			return bad("invalid_terms", at("name"), "tier %q is named twice", tr.Name)
		}
		names[strings.ToLower(tr.Name)] = true
		if p := amount(at("price_minor"), tr.PriceMinor, MaxPrice); p != nil {
			return p
		}
		if tr.PriceMinor < t.FacilityFeeMinor {
			return bad("invalid_amount", at("price_minor"), "the price is below the facility fee")
		}
		for _, c := range []struct {
			name string
			v    int
		}{{"allotment", tr.Allotment}, {"comps", tr.Comps}, {"kills", tr.Kills}} {
			if c.v < 0 || c.v > MaxTickets {
				return bad("invalid_terms", at(c.name), "must be 0 to %d", MaxTickets)
			}
		}
		if tr.Sellable() < 0 {
			return bad("invalid_terms", at("comps"), "comps and kills exceed the allotment")
		}
	}
	if len(t.Expenses) > maxLines {
		return bad("invalid_terms", f("expenses"), "at most %d expense lines", maxLines)
	}
	names = map[string]bool{}
	for i, e := range t.Expenses {
		at := func(s string) string { return f(fmt.Sprintf("expenses[%d].%s", i, s)) }
		if p := text(at("name"), e.Name, 100, true); p != nil {
			return p
		}
		if names[strings.ToLower(e.Name)] {
			return bad("invalid_terms", at("name"), "expense %q is named twice", e.Name)
		}
		names[strings.ToLower(e.Name)] = true
		if p := amount(at("budget_minor"), e.BudgetMinor, MaxAmount); p != nil {
			return p
		}
		if e.CapMinor != nil {
			if p := amount(at("cap_minor"), *e.CapMinor, MaxAmount); p != nil {
				return p
			}
		}
	}
	if len(t.Bonuses) > maxBonuses {
		return bad("invalid_terms", f("bonuses"), "at most %d bonuses", maxBonuses)
	}
	for i, b := range t.Bonuses {
		at := func(s string) string { return f(fmt.Sprintf("bonuses[%d].%s", i, s)) }
		if p := text(at("name"), b.Name, 100, true); p != nil {
			return p
		}
		switch b.Kind {
		case BonusTickets:
			if b.Threshold < 1 || b.Threshold > MaxTickets*maxTiers {
				return bad("invalid_terms", at("threshold"), "a ticket count from 1")
			}
		case BonusSellThrough:
			if b.Threshold < 1 || b.Threshold > MaxBps {
				return bad("invalid_percentage", at("threshold"), "sell-through in basis points, 1 to %d", MaxBps)
			}
		default:
			return bad("invalid_terms", at("kind"), "must be tickets or sell_through")
		}
		if p := amount(at("amount_minor"), b.AmountMinor, MaxAmount); p != nil {
			return p
		}
		if p := amount(at("per_ticket_minor"), b.PerTicketMinor, MaxPrice); p != nil {
			return p
		}
		if b.AmountMinor == 0 && b.PerTicketMinor == 0 {
			return bad("invalid_amount", at("amount_minor"), "a bonus pays an amount, an amount per ticket, or both")
		}
	}
	if len(t.Deposits) > maxDeposits {
		return bad("invalid_terms", f("deposits"), "at most %d deposits", maxDeposits)
	}
	names = map[string]bool{}
	for i, d := range t.Deposits {
		at := func(s string) string { return f(fmt.Sprintf("deposits[%d].%s", i, s)) }
		if p := text(at("name"), d.Name, 100, true); p != nil {
			return p
		}
		if names[strings.ToLower(d.Name)] {
			return bad("invalid_terms", at("name"), "deposit %q is named twice", d.Name)
		}
		names[strings.ToLower(d.Name)] = true
		switch d.Kind {
		case DepositFlat:
			if p := amount(at("amount_minor"), d.AmountMinor, MaxAmount); p != nil {
				return p
			}
			if d.AmountMinor == 0 || d.Bps != 0 {
				return bad("invalid_amount", at("amount_minor"), "a flat deposit has an amount above 0 and no bps")
			}
		case DepositPercent:
			if p := pct(at("bps"), d.Bps); p != nil {
				return p
			}
			if d.Bps == 0 || d.AmountMinor != 0 || t.GuaranteeMinor == 0 {
				return bad("invalid_percentage", at("bps"), "a percent deposit is a share (bps above 0) of a guarantee")
			}
		default:
			return bad("invalid_terms", at("kind"), "must be flat or percent")
		}
		if _, err := time.Parse("2006-01-02", d.Due); err != nil {
			return bad("invalid_terms", at("due"), "must be a date (YYYY-MM-DD)")
		}
	}
	if sum := t.depositsTotal(); sum > t.GuaranteeMinor && t.GuaranteeMinor > 0 {
		return bad("invalid_amount", f("deposits"), "deposits add up to more than the guarantee")
	}
	if len(t.Withholdings) > maxWithholds {
		return bad("invalid_terms", f("withholdings"), "at most %d withholdings", maxWithholds)
	}
	var withheld int
	for i, w := range t.Withholdings {
		at := func(s string) string { return f(fmt.Sprintf("withholdings[%d].%s", i, s)) }
		if p := text(at("jurisdiction"), w.Jurisdiction, 100, true); p != nil {
			return p
		}
		if p := amount(at("threshold_minor"), w.ThresholdMinor, MaxAmount); p != nil {
			return p
		}
		if p := pct(at("bps"), w.Bps); p != nil {
			return p
		}
		withheld += w.Bps
	}
	if withheld > MaxBps {
		return bad("invalid_percentage", f("withholdings"), "withholdings add up to more than 100 %%")
	}
	if p := pct(f("merch.soft_artist_bps"), t.Merch.SoftArtistBps); p != nil {
		return p
	}
	if p := pct(f("merch.hard_artist_bps"), t.Merch.HardArtistBps); p != nil {
		return p
	}
	for _, s := range []struct {
		name, v string
		max     int
	}{{"rider", t.Rider, maxLongText}, {"technical_needs", t.TechnicalNeeds, maxLongText}, {"billing", t.Billing, 500}} {
		if p := text(f(s.name), s.v, s.max, false); p != nil {
			return p
		}
	}
	if t.SetMinutes < 0 || t.SetMinutes > 24*60 {
		return bad("invalid_terms", f("set_minutes"), "must be 0 to 1440")
	}
	if t.Radius.Miles < 0 || t.Radius.Miles > 5000 {
		return bad("invalid_terms", f("radius.miles"), "must be 0 to 5000")
	}
	if t.Radius.DaysBefore < 0 || t.Radius.DaysBefore > 730 || t.Radius.DaysAfter < 0 || t.Radius.DaysAfter > 730 {
		return bad("invalid_terms", f("radius.days_before"), "days before and after must be 0 to 730")
	}
	return nil
}

func (t Terms) validateDeal(f func(string) string) *Problem {
	d := t.Deal
	needPct := func() *Problem {
		if d.ArtistBps < 1 || d.ArtistBps > MaxBps {
			return bad("invalid_percentage", f("deal.artist_bps"), "the artist's share in basis points, 1 to %d", MaxBps)
		}
		return nil
	}
	if p := amount(f("deal.per_ticket_minor"), d.PerTicketMinor, MaxPrice); p != nil {
		return p
	}
	switch d.Type {
	case DealFlat:
		if d.Basis != "" || d.ArtistBps != 0 || d.PerTicketMinor != 0 {
			return bad("invalid_terms", f("deal"), "a flat deal is the guarantee alone: no basis, share or per-ticket amount")
		}
		if t.GuaranteeMinor == 0 {
			return bad("invalid_amount", f("guarantee_minor"), "a flat deal needs a guarantee above 0")
		}
	case DealDoor:
		switch d.Basis {
		case BasisNet, BasisNetGross:
			if p := needPct(); p != nil {
				return p
			}
		case BasisPerTicket:
			if d.PerTicketMinor == 0 || d.ArtistBps != 0 {
				return bad("invalid_amount", f("deal.per_ticket_minor"), "a per-ticket door deal pays an amount above 0 per ticket")
			}
		default:
			return bad("invalid_terms", f("deal.basis"), "a door deal is on net, net_gross or per_ticket")
		}
	case DealPlus:
		if d.Basis != "" && d.Basis != BasisNet {
			return bad("invalid_terms", f("deal.basis"), "a plus deal shares what exceeds the split point (basis net or empty)")
		}
		if p := needPct(); p != nil {
			return p
		}
	case DealVersus:
		switch d.Basis {
		case BasisNet, BasisNetGross, BasisGross:
		default:
			return bad("invalid_terms", f("deal.basis"), "a versus deal names its base: net, net_gross or gross")
		}
		if p := needPct(); p != nil {
			return p
		}
		if t.GuaranteeMinor == 0 {
			return bad("invalid_amount", f("guarantee_minor"), "a versus deal needs a guarantee above 0")
		}
	default:
		return bad("invalid_terms", f("deal.type"), "must be flat, door, plus or versus")
	}
	if d.Type != DealDoor && d.PerTicketMinor != 0 {
		return bad("invalid_terms", f("deal.per_ticket_minor"), "only a per-ticket door deal pays per ticket")
	}
	return nil
}

// DepositAmount is what one deposit comes to (a percent deposit is a share
// of the guarantee, rounded half up to the minor unit).
func (t Terms) DepositAmount(d Deposit) int64 {
	if d.Kind == DepositPercent {
		return MulBps(t.GuaranteeMinor, d.Bps)
	}
	return d.AmountMinor
}

func (t Terms) depositsTotal() int64 {
	var sum int64
	for _, d := range t.Deposits {
		sum += t.DepositAmount(d)
	}
	return sum
}

func amount(field string, v, maxV int64) *Problem {
	if v < 0 {
		return bad("invalid_amount", field, "must not be negative")
	}
	if v > maxV {
		return bad("invalid_amount", field, "must be at most %d minor units", maxV)
	}
	return nil
}

func pct(field string, v int) *Problem {
	if v < 0 || v > MaxBps {
		return bad("invalid_percentage", field, "basis points from 0 to %d (100 %%)", MaxBps)
	}
	return nil
}

func text(field, v string, maxLen int, required bool) *Problem {
	if required && !nameRe.MatchString(v) {
		return bad("invalid_terms", field, "is required")
	}
	if utf8.RuneCountInString(v) > maxLen {
		return bad("invalid_terms", field, "at most %d characters", maxLen)
	}
	return nil
}
