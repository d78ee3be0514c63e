// Package settlement computes what an artist is owed after a show, from the
// accepted terms and what happened (tickets sold per tier, actual expenses,
// adjustments, deposits paid). It is pure arithmetic in integer minor
// units: the same inputs always give the same sheet, and nothing is stored.
//
// The waterfall, in order:
//
//	gross (Σ price × sold per tier)
//	− facility fees (fee × tickets sold)                 = adjusted gross
//	− tax, when prices include it: AG − AG / (1 + rate)  = net gross
//	− expenses (actual, or budget while none is recorded; each capped at its "not to exceed")
//	− promoter profit (% of those expenses)
//	± adjustments flagged to move the split point
//	  (+ the guarantee in a plus deal)                   = split point
//	artist share by deal type (flat, door, plus, versus)
//	+ bonuses
//	± adjustments                                        = earnings
//	− deposits PAID (an unpaid one is listed, never deducted)
//	− withholdings (each on the earnings, when above its threshold)
//	                                                     = walkout
//
// Rounding: every percentage (shares, promoter profit, withholdings,
// percent deposits) and the inclusive tax's net is rounded once, to the
// nearest minor unit with a half going up (terms.MulDiv, in 128 bits); sums
// and differences are exact.
package settlement

import (
	"math/big"
	"strings"

	"marquee/modules/booking/internal/terms"
)

// Adjustment kinds.
const (
	Reimbursement = "reimbursement" // paid to the artist (a hotel or production buyout)
	Deduction     = "deduction"     // taken from the artist (backline, rentals)
	ArtistBonus   = "bonus"         // paid to the artist (a merch or VIP bonus)
)

// Sale is what one tier sold (paid tickets; comps are not sales).
type Sale struct {
	Tier string `json:"tier"`
	Sold int    `json:"sold"`
}

// ExpenseActual is what an expense line cost.
type ExpenseActual struct {
	Name        string `json:"name"`
	ActualMinor int64  `json:"actual_minor"`
}

// Adjustment is a reimbursement, deduction or bonus agreed at settlement.
// MovesSplitPoint counts it in the split point as well (a reimbursement
// raises it, a deduction lowers it), so it also moves a percentage share.
type Adjustment struct {
	Name            string `json:"name"`
	Kind            string `json:"kind"`
	AmountMinor     int64  `json:"amount_minor"`
	MovesSplitPoint bool   `json:"moves_split_point"`
}

// Actuals are what happened: the inputs of a settlement besides the terms.
type Actuals struct {
	Sales        []Sale          `json:"sales"`
	Expenses     []ExpenseActual `json:"expenses"`
	Adjustments  []Adjustment    `json:"adjustments"`
	PaidDeposits []string        `json:"paid_deposits"` // names of the deposits paid
}

// TierLine is one tier of the sheet.
type TierLine struct {
	Tier              string `json:"tier"`
	PriceMinor        int64  `json:"price_minor"`
	Allotment         int    `json:"allotment"`
	Comps             int    `json:"comps"`
	Kills             int    `json:"kills"`
	Sellable          int    `json:"sellable"`
	Sold              int    `json:"sold"`
	GrossMinor        int64  `json:"gross_minor"`
	FacilityFeesMinor int64  `json:"facility_fees_minor"`
}

// ExpenseLine is one expense: what it cost, its cap, and what the artist's
// settlement is charged for it.
type ExpenseLine struct {
	Name         string `json:"name"`
	BudgetMinor  int64  `json:"budget_minor"`
	ActualMinor  int64  `json:"actual_minor"`
	CapMinor     *int64 `json:"cap_minor,omitempty"`
	ChargedMinor int64  `json:"charged_minor"`
	Capped       bool   `json:"capped"`
	// Estimated: no actual was recorded, so the budget stands in for it.
	Estimated bool `json:"estimated"`
	// NotInDeal: recorded but absent from the accepted terms, so never
	// charged to the artist (the promoter's P&L still carries it).
	NotInDeal bool `json:"not_in_deal"`
}

// BonusLine is one bonus and whether it was reached.
type BonusLine struct {
	Name        string `json:"name"`
	Reached     bool   `json:"reached"`
	AmountMinor int64  `json:"amount_minor"`
}

// AdjustmentLine is one adjustment and its signed effect on earnings.
type AdjustmentLine struct {
	Adjustment
	EffectMinor int64 `json:"effect_minor"`
}

// DepositLine is one deposit; only a paid one is deducted.
type DepositLine struct {
	Name          string `json:"name"`
	Due           string `json:"due"`
	AmountMinor   int64  `json:"amount_minor"`
	Paid          bool   `json:"paid"`
	DeductedMinor int64  `json:"deducted_minor"`
}

// WithholdingLine is one withholding, on the earnings when they exceed its
// threshold.
type WithholdingLine struct {
	Jurisdiction   string `json:"jurisdiction"`
	ThresholdMinor int64  `json:"threshold_minor"`
	Bps            int    `json:"bps"`
	Applies        bool   `json:"applies"`
	AmountMinor    int64  `json:"amount_minor"`
}

// Sheet is a computed settlement.
type Sheet struct {
	Currency           string     `json:"currency"`
	Tiers              []TierLine `json:"tiers"`
	TicketsSold        int        `json:"tickets_sold"`
	Sellable           int        `json:"sellable"`
	GrossMinor         int64      `json:"gross_minor"`
	FacilityFeesMinor  int64      `json:"facility_fees_minor"`
	AdjustedGrossMinor int64      `json:"adjusted_gross_minor"`
	TaxMinor           int64      `json:"tax_minor"`
	NetGrossMinor      int64      `json:"net_gross_minor"`

	Expenses              []ExpenseLine `json:"expenses"`
	ExpensesMinor         int64         `json:"expenses_minor"` // charged to the split
	PromoterProfitMinor   int64         `json:"promoter_profit_minor"`
	SplitAdjustmentsMinor int64         `json:"split_adjustments_minor"`
	SplitPointMinor       int64         `json:"split_point_minor"`
	// NetMinor is net gross less the split point; negative when the show
	// did not reach it (a percentage of it is then 0).
	NetMinor int64 `json:"net_minor"`

	DealType        string `json:"deal_type"`
	DealBasis       string `json:"deal_basis"`
	ArtistBps       int    `json:"artist_bps"`
	GuaranteeMinor  int64  `json:"guarantee_minor"`
	PercentageMinor int64  `json:"percentage_minor"` // the percentage side of the deal
	// Winner says which side of a versus deal was paid: guarantee or percentage.
	Winner     string `json:"winner,omitempty"`
	ShareMinor int64  `json:"share_minor"`

	Bonuses          []BonusLine      `json:"bonuses"`
	BonusesMinor     int64            `json:"bonuses_minor"`
	Adjustments      []AdjustmentLine `json:"adjustments"`
	AdjustmentsMinor int64            `json:"adjustments_minor"`
	EarningsMinor    int64            `json:"earnings_minor"`

	Deposits          []DepositLine     `json:"deposits"`
	DepositsPaidMinor int64             `json:"deposits_paid_minor"`
	Withholdings      []WithholdingLine `json:"withholdings"`
	WithholdingsMinor int64             `json:"withholdings_minor"`
	WalkoutMinor      int64             `json:"walkout_minor"`

	// Internal is the promoter's side; External drops it.
	Internal *Internal `json:"internal,omitempty"`

	Rounding string `json:"rounding"`
}

// Internal is the promoter's P&L: every cost as it was, capped or not, in
// the deal or not.
type Internal struct {
	ActualExpensesMinor int64 `json:"actual_expenses_minor"`
	PromoterNetMinor    int64 `json:"promoter_net_minor"`
	// BreakevenTickets is how many tickets, at this show's average net
	// gross per ticket, cover the actual expenses and the guarantee.
	BreakevenTickets int `json:"breakeven_tickets"`
}

// External is the artist-facing sheet: expenses at what they are charged
// (the reported costs), lines outside the deal left out, no P&L.
func (s Sheet) External() Sheet {
	out := s
	out.Internal = nil
	out.Expenses = []ExpenseLine{}
	for _, e := range s.Expenses {
		if e.NotInDeal {
			continue
		}
		e.ActualMinor = e.ChargedMinor
		out.Expenses = append(out.Expenses, e)
	}
	return out
}

// RoundingRule is stated on every sheet.
const RoundingRule = "integer minor units; each percentage and the inclusive tax's net rounded once to the nearest minor unit, halves up"

// Compute runs the waterfall. Terms are assumed valid (terms.Validate);
// sales of tiers the terms do not name are ignored.
func Compute(t terms.Terms, a Actuals) Sheet {
	s := Sheet{Currency: t.Currency, DealType: t.Deal.Type, DealBasis: t.Deal.Basis, ArtistBps: t.Deal.ArtistBps,
		GuaranteeMinor: t.GuaranteeMinor, Rounding: RoundingRule,
		Tiers: []TierLine{}, Expenses: []ExpenseLine{}, Bonuses: []BonusLine{}, Adjustments: []AdjustmentLine{},
		Deposits: []DepositLine{}, Withholdings: []WithholdingLine{}, Internal: &Internal{}}

	sold := map[string]int{}
	for _, x := range a.Sales {
		sold[strings.ToLower(x.Tier)] += x.Sold
	}
	for _, tr := range t.Tiers {
		n := sold[strings.ToLower(tr.Name)]
		l := TierLine{Tier: tr.Name, PriceMinor: tr.PriceMinor, Allotment: tr.Allotment, Comps: tr.Comps, Kills: tr.Kills,
			Sellable: tr.Sellable(), Sold: n, GrossMinor: tr.PriceMinor * int64(n), FacilityFeesMinor: t.FacilityFeeMinor * int64(n)}
		s.Tiers = append(s.Tiers, l)
		s.TicketsSold += n
		s.Sellable += l.Sellable
		s.GrossMinor += l.GrossMinor
		s.FacilityFeesMinor += l.FacilityFeesMinor
	}
	s.AdjustedGrossMinor = s.GrossMinor - s.FacilityFeesMinor
	if t.TaxInclusive && t.TaxRateBps > 0 {
		// tax = AG − AG / (1 + rate): the net is what, taxed at the rate,
		// gives the adjusted gross.
		s.TaxMinor = s.AdjustedGrossMinor - terms.MulDiv(s.AdjustedGrossMinor, terms.MaxBps, int64(terms.MaxBps+t.TaxRateBps))
	}
	s.NetGrossMinor = s.AdjustedGrossMinor - s.TaxMinor

	// Expenses: actual when recorded, else the budget; capped.
	actual := map[string]int64{}
	recorded := map[string]bool{}
	for _, e := range a.Expenses {
		actual[strings.ToLower(e.Name)] += e.ActualMinor
		recorded[strings.ToLower(e.Name)] = true
	}
	inDeal := map[string]bool{}
	for _, e := range t.Expenses {
		key := strings.ToLower(e.Name)
		inDeal[key] = true
		l := ExpenseLine{Name: e.Name, BudgetMinor: e.BudgetMinor, CapMinor: e.CapMinor}
		if recorded[key] {
			l.ActualMinor = actual[key]
		} else {
			l.ActualMinor, l.Estimated = e.BudgetMinor, true
		}
		l.ChargedMinor = l.ActualMinor
		if e.CapMinor != nil && l.ActualMinor > *e.CapMinor {
			l.ChargedMinor, l.Capped = *e.CapMinor, true
		}
		s.Expenses = append(s.Expenses, l)
		s.ExpensesMinor += l.ChargedMinor
		s.Internal.ActualExpensesMinor += l.ActualMinor
	}
	for _, e := range a.Expenses {
		if !inDeal[strings.ToLower(e.Name)] {
			s.Expenses = append(s.Expenses, ExpenseLine{Name: e.Name, ActualMinor: e.ActualMinor, NotInDeal: true})
			s.Internal.ActualExpensesMinor += e.ActualMinor
		}
	}
	s.PromoterProfitMinor = terms.MulBps(s.ExpensesMinor, t.PromoterProfitBps)
	for _, adj := range a.Adjustments {
		effect := adj.AmountMinor
		if adj.Kind == Deduction {
			effect = -effect
		}
		if adj.MovesSplitPoint {
			s.SplitAdjustmentsMinor += effect
		}
		s.Adjustments = append(s.Adjustments, AdjustmentLine{Adjustment: adj, EffectMinor: effect})
		s.AdjustmentsMinor += effect
	}
	s.SplitPointMinor = s.ExpensesMinor + s.PromoterProfitMinor + s.SplitAdjustmentsMinor
	if t.Deal.Type == terms.DealPlus {
		// In a plus deal the guarantee is a cost of the show: the
		// percentage is of what exceeds expenses, profit and guarantee.
		s.SplitPointMinor += t.GuaranteeMinor
	}
	s.NetMinor = s.NetGrossMinor - s.SplitPointMinor
	net := max(s.NetMinor, 0)

	switch t.Deal.Type {
	case terms.DealFlat:
		s.ShareMinor = t.GuaranteeMinor
	case terms.DealDoor:
		switch t.Deal.Basis {
		case terms.BasisNet:
			s.PercentageMinor = terms.MulBps(net, t.Deal.ArtistBps)
		case terms.BasisNetGross:
			s.PercentageMinor = terms.MulBps(s.NetGrossMinor, t.Deal.ArtistBps)
		case terms.BasisPerTicket:
			s.PercentageMinor = t.Deal.PerTicketMinor * int64(s.TicketsSold)
		}
		s.ShareMinor = s.PercentageMinor
	case terms.DealPlus:
		s.PercentageMinor = terms.MulBps(net, t.Deal.ArtistBps)
		s.ShareMinor = t.GuaranteeMinor + s.PercentageMinor
	case terms.DealVersus:
		base := net
		switch t.Deal.Basis {
		case terms.BasisNetGross:
			base = s.NetGrossMinor
		case terms.BasisGross:
			base = s.GrossMinor
		}
		s.PercentageMinor = terms.MulBps(base, t.Deal.ArtistBps)
		s.ShareMinor, s.Winner = t.GuaranteeMinor, "guarantee"
		if s.PercentageMinor > t.GuaranteeMinor {
			s.ShareMinor, s.Winner = s.PercentageMinor, "percentage"
		}
	}

	for _, b := range t.Bonuses {
		l := BonusLine{Name: b.Name}
		// past is the number of tickets sold beyond the threshold.
		var past int
		switch b.Kind {
		case terms.BonusTickets:
			l.Reached = s.TicketsSold >= b.Threshold
			past = s.TicketsSold - b.Threshold
		case terms.BonusSellThrough:
			// sold / sellable ≥ threshold / 10000, compared without division.
			l.Reached = s.Sellable > 0 && int64(s.TicketsSold)*terms.MaxBps >= int64(b.Threshold)*int64(s.Sellable)
			at := terms.MulDiv(int64(s.Sellable), int64(b.Threshold), terms.MaxBps)
			past = s.TicketsSold - int(at)
		}
		if l.Reached {
			perTicket := max(past, 0)
			if b.Retroactive {
				perTicket = s.TicketsSold
			}
			l.AmountMinor = b.AmountMinor + b.PerTicketMinor*int64(perTicket)
		}
		s.Bonuses = append(s.Bonuses, l)
		s.BonusesMinor += l.AmountMinor
	}
	s.EarningsMinor = s.ShareMinor + s.BonusesMinor + s.AdjustmentsMinor

	paid := map[string]bool{}
	for _, n := range a.PaidDeposits {
		paid[strings.ToLower(n)] = true
	}
	for _, d := range t.Deposits {
		l := DepositLine{Name: d.Name, Due: d.Due, AmountMinor: t.DepositAmount(d), Paid: paid[strings.ToLower(d.Name)]}
		if l.Paid {
			l.DeductedMinor = l.AmountMinor
		}
		s.Deposits = append(s.Deposits, l)
		s.DepositsPaidMinor += l.DeductedMinor
	}
	for _, w := range t.Withholdings {
		l := WithholdingLine{Jurisdiction: w.Jurisdiction, ThresholdMinor: w.ThresholdMinor, Bps: w.Bps,
			Applies: s.EarningsMinor > w.ThresholdMinor}
		if l.Applies {
			l.AmountMinor = terms.MulBps(s.EarningsMinor, w.Bps)
		}
		s.Withholdings = append(s.Withholdings, l)
		s.WithholdingsMinor += l.AmountMinor
	}
	s.WalkoutMinor = s.EarningsMinor - s.DepositsPaidMinor - s.WithholdingsMinor

	s.Internal.PromoterNetMinor = s.NetGrossMinor - s.Internal.ActualExpensesMinor - s.EarningsMinor
	s.Internal.BreakevenTickets = breakeven(t, s)
	return s
}

// breakeven is ⌈(actual expenses + guarantee) / net gross per ticket⌉, the
// net per ticket being this show's average, or (before any sale) the
// allotment-weighted average of the tiers' prices less fee and tax.
func breakeven(t terms.Terms, s Sheet) int {
	costs := s.Internal.ActualExpensesMinor + t.GuaranteeMinor
	if costs <= 0 {
		return 0
	}
	net, tickets := s.NetGrossMinor, int64(s.TicketsSold)
	if tickets == 0 {
		for _, tr := range t.Tiers {
			per := tr.PriceMinor - t.FacilityFeeMinor
			if t.TaxInclusive && t.TaxRateBps > 0 {
				per = terms.MulDiv(per, terms.MaxBps, int64(terms.MaxBps+t.TaxRateBps))
			}
			net += per * int64(tr.Sellable())
			tickets += int64(tr.Sellable())
		}
	}
	if net <= 0 || tickets == 0 {
		return 0
	}
	// costs / (net / tickets), rounded up: ⌈costs × tickets / net⌉, in
	// big integers (the product can pass 64 bits).
	num := new(big.Int).Mul(big.NewInt(costs), big.NewInt(tickets))
	num.Add(num, big.NewInt(net-1))
	return int(num.Quo(num, big.NewInt(net)).Int64())
}
