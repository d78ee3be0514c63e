package settlement

import (
	"testing"

	"marquee/modules/booking/internal/terms"
)

func ptr(v int64) *int64 { return &v }

// want holds the figures of a hand-computed sheet (all USD cents).
type want struct {
	gross, fees, adjustedGross, tax, netGross int64
	expenses, promoterProfit, splitPoint, net int64
	percentage, share                         int64
	winner                                    string
	bonuses, adjustments, earnings            int64
	depositsPaid, withholdings, walkout       int64
	actualExpenses, promoterNet               int64
	breakeven                                 int
	withholdingLines                          []int64
	depositPaid                               []bool
	cappedLines                               []bool
	estimatedLines                            []bool
}

func TestWaterfall(t *testing.T) {
	cases := []struct {
		name  string
		terms terms.Terms
		facts Actuals
		want  want
	}{
		{
			// Flat 5,000.00; deposit of 2,500.00 paid.
			//   gross        = 400 × 30.00                    = 12,000.00
			//   facility     = 400 × 2.00                     =    800.00
			//   adjusted     = 12,000.00 − 800.00             = 11,200.00; no tax: net gross 11,200.00
			//   expenses     = sound, actual 1,200.00 (no cap) =  1,200.00; no promoter profit
			//   split point  = 1,200.00; net = 11,200.00 − 1,200.00 = 10,000.00 (a flat deal ignores it)
			//   share        = the guarantee                   =  5,000.00; earnings 5,000.00
			//   walkout      = 5,000.00 − 2,500.00 paid        =  2,500.00
			//   promoter net = 11,200.00 − 1,200.00 − 5,000.00 =  5,000.00
			//   breakeven    = ⌈(1,200.00 + 5,000.00) / (11,200.00 / 400 = 28.00)⌉ = ⌈221.43⌉ = 222
			name: "flat deal",
			terms: terms.Terms{Currency: "USD", GuaranteeMinor: 500000, Deal: terms.Deal{Type: terms.DealFlat},
				Tiers:            []terms.Tier{{Name: "GA", PriceMinor: 3000, Allotment: 500, Comps: 10}},
				FacilityFeeMinor: 200,
				Expenses:         []terms.Expense{{Name: "Sound", BudgetMinor: 100000}},
				Deposits:         []terms.Deposit{{Name: "On signing", Kind: terms.DepositFlat, AmountMinor: 250000, Due: "2031-01-15"}}},
			facts: Actuals{Sales: []Sale{{"GA", 400}}, Expenses: []ExpenseActual{{"Sound", 120000}}, PaidDeposits: []string{"On signing"}},
			want: want{gross: 1200000, fees: 80000, adjustedGross: 1120000, netGross: 1120000,
				expenses: 120000, splitPoint: 120000, net: 1000000, share: 500000, earnings: 500000,
				depositsPaid: 250000, walkout: 250000, actualExpenses: 120000, promoterNet: 500000, breakeven: 222,
				depositPaid: []bool{true}, cappedLines: []bool{false}, estimatedLines: []bool{false}},
		},
		{
			// Versus 10,000.00 vs 85 % of net; the guarantee wins.
			//   gross        = 300 × 40.00 + 50 × 100.00      = 12,000.00 + 5,000.00 = 17,000.00; no fee
			//   tax (10 %, inclusive) = 17,000.00 − 17,000.00 / 1.1 = 17,000.00 − 15,454.54545… (→ 15,454.55)
			//                = 1,545.45; net gross 15,454.55
			//   expenses     = rent 3,000.00 + production 2,500.00 capped at 2,200.00 = 5,200.00
			//   promoter profit = 15 % × 5,200.00             =    780.00
			//   split point  = 5,980.00; net = 15,454.55 − 5,980.00 = 9,474.55
			//   85 % of net  = 8,053.3675 → 8,053.37 (the half-up rule); < 10,000.00: the guarantee wins
			//   deposit 50 % of the guarantee = 5,000.00, paid; walkout = 10,000.00 − 5,000.00 = 5,000.00
			//   promoter net = 15,454.55 − (3,000.00 + 2,500.00 actual) − 10,000.00 = −45.45
			//   breakeven    = ⌈(5,500.00 + 10,000.00) / (15,454.55 / 350)⌉ = ⌈351.03⌉ = 352
			name:  "versus, the guarantee wins",
			terms: versusTerms(),
			facts: Actuals{Sales: []Sale{{"GA", 300}, {"VIP", 50}},
				Expenses:     []ExpenseActual{{"Rent", 300000}, {"Production", 250000}},
				PaidDeposits: []string{"Half on signing"}},
			want: want{gross: 1700000, adjustedGross: 1700000, tax: 154545, netGross: 1545455,
				expenses: 520000, promoterProfit: 78000, splitPoint: 598000, net: 947455,
				percentage: 805337, share: 1000000, winner: "guarantee", earnings: 1000000,
				depositsPaid: 500000, walkout: 500000, actualExpenses: 550000, promoterNet: -4545, breakeven: 352,
				depositPaid: []bool{true}, cappedLines: []bool{false, true}, estimatedLines: []bool{false, false}},
		},
		{
			// The same versus deal, sold out; the percentage wins, and the
			// sell-out bonus is reached.
			//   gross        = 800 × 40.00 + 100 × 100.00     = 32,000.00 + 10,000.00 = 42,000.00
			//   tax          = 42,000.00 − 42,000.00 / 1.1 = 42,000.00 − 38,181.8181… (→ 38,181.82) = 3,818.18
			//   net gross    = 38,181.82; split point 5,980.00 as above; net = 32,201.82
			//   85 % of net  = 27,371.547 → 27,371.55 > 10,000.00: the percentage wins
			//   sell-out bonus (sell-through 100 %: 900 of 900 sellable) = 1,000.00
			//   earnings     = 27,371.55 + 1,000.00 = 28,371.55; walkout = 28,371.55 − 5,000.00 paid = 23,371.55
			//   promoter net = 38,181.82 − 5,500.00 − 28,371.55 = 4,310.27
			//   breakeven    = ⌈15,500.00 / (38,181.82 / 900)⌉ = ⌈365.36⌉ = 366
			name:  "versus, the percentage wins",
			terms: versusTerms(),
			facts: Actuals{Sales: []Sale{{"GA", 800}, {"VIP", 100}},
				Expenses:     []ExpenseActual{{"Rent", 300000}, {"Production", 250000}},
				PaidDeposits: []string{"Half on signing"}},
			want: want{gross: 4200000, adjustedGross: 4200000, tax: 381818, netGross: 3818182,
				expenses: 520000, promoterProfit: 78000, splitPoint: 598000, net: 3220182,
				percentage: 2737155, share: 2737155, winner: "percentage", bonuses: 100000, earnings: 2837155,
				depositsPaid: 500000, walkout: 2337155, actualExpenses: 550000, promoterNet: 431027, breakeven: 366,
				depositPaid: []bool{true}, cappedLines: []bool{false, true}, estimatedLines: []bool{false, false}},
		},
		{
			// Plus: 2,000.00 + 70 % over the split point, capped expenses.
			//   gross        = 700 × 25.00 = 17,500.00; facility 700 × 1.00 = 700.00; adjusted 16,800.00
			//   tax 8 % is added on top of the prices (not inclusive): none in the gross; net gross 16,800.00
			//   expenses     = rent 1,800.00 capped at 1,500.00 + security (none recorded: budget) 500.00
			//                + marketing 750.00 capped at 600.00 = 2,600.00
			//   promoter profit = 10 % × 2,600.00 = 260.00
			//   backline deduction of 100.00 moves the split point: −100.00
			//   split point  = 2,600.00 + 260.00 − 100.00 + the guarantee 2,000.00 = 4,760.00
			//   net          = 16,800.00 − 4,760.00 = 12,040.00; 70 % = 8,428.00
			//   share        = 2,000.00 + 8,428.00 = 10,428.00
			//   adjustments  = hotel reimbursement +300.00, backline −100.00 = +200.00
			//   earnings     = 10,628.00; no deposits, no withholdings: walkout 10,628.00
			//   promoter net = 16,800.00 − (1,800.00 + 500.00 + 750.00) − 10,628.00 = 3,122.00
			//   breakeven    = ⌈(3,050.00 + 2,000.00) / (16,800.00 / 700 = 24.00)⌉ = ⌈210.42⌉ = 211
			name: "plus with capped expenses",
			terms: terms.Terms{Currency: "USD", GuaranteeMinor: 200000, Deal: terms.Deal{Type: terms.DealPlus, ArtistBps: 7000},
				PromoterProfitBps: 1000, FacilityFeeMinor: 100, TaxRateBps: 800, TaxInclusive: false,
				Tiers: []terms.Tier{{Name: "GA", PriceMinor: 2500, Allotment: 1000}},
				Expenses: []terms.Expense{{Name: "Rent", BudgetMinor: 150000, CapMinor: ptr(150000)},
					{Name: "Security", BudgetMinor: 50000}, {Name: "Marketing", BudgetMinor: 80000, CapMinor: ptr(60000)}}},
			facts: Actuals{Sales: []Sale{{"GA", 700}},
				Expenses: []ExpenseActual{{"Rent", 180000}, {"Marketing", 75000}},
				Adjustments: []Adjustment{{Name: "Hotel buyout", Kind: Reimbursement, AmountMinor: 30000},
					{Name: "Backline", Kind: Deduction, AmountMinor: 10000, MovesSplitPoint: true}}},
			want: want{gross: 1750000, fees: 70000, adjustedGross: 1680000, netGross: 1680000,
				expenses: 260000, promoterProfit: 26000, splitPoint: 476000, net: 1204000,
				percentage: 842800, share: 1042800, adjustments: 20000, earnings: 1062800,
				walkout: 1062800, actualExpenses: 305000, promoterNet: 312200, breakeven: 211,
				cappedLines: []bool{true, false, true}, estimatedLines: []bool{false, true, false}},
		},
		{
			// Door: 80 % of net, two withholdings, an unpaid deposit.
			//   gross        = 300 × 20.00 + 150 × 25.00 = 6,000.00 + 3,750.00 = 9,750.00
			//   facility     = 450 × 1.50 = 675.00; adjusted 9,075.00
			//   tax (5 %, inclusive) = 9,075.00 − 9,075.00 / 1.05 = 9,075.00 − 8,642.857… (→ 8,642.86) = 432.14
			//   net gross    = 8,642.86
			//   expenses     = house 2,000.00 + sound 640.00 (no caps) = 2,640.00; no promoter profit
			//   net          = 8,642.86 − 2,640.00 = 6,002.86; 80 % = 4,802.288 → 4,802.29
			//   bonus        = 1.00 per ticket past 400, not retroactive: 50 × 1.00 = 50.00
			//   earnings     = 4,852.29
			//   deposit 1,000.00 NOT paid: listed, not deducted
			//   withholdings = Missouri 2 % (earnings above 300.00) = 97.0458 → 97.05
			//                + federal 30 % (above 0)               = 1,455.687 → 1,455.69; total 1,552.74
			//   walkout      = 4,852.29 − 0 − 1,552.74 = 3,299.55
			//   promoter net = 8,642.86 − 2,640.00 − 4,852.29 = 1,150.57
			//   breakeven    = ⌈2,640.00 / (8,642.86 / 450)⌉ = ⌈137.45⌉ = 138
			name: "door with two withholdings and an unpaid deposit",
			terms: terms.Terms{Currency: "USD", Deal: terms.Deal{Type: terms.DealDoor, Basis: terms.BasisNet, ArtistBps: 8000},
				FacilityFeeMinor: 150, TaxRateBps: 500, TaxInclusive: true,
				Tiers: []terms.Tier{{Name: "Advance", PriceMinor: 2000, Allotment: 300},
					{Name: "Door", PriceMinor: 2500, Allotment: 200, Comps: 20}},
				Expenses: []terms.Expense{{Name: "House", BudgetMinor: 200000}, {Name: "Sound", BudgetMinor: 60000}},
				Bonuses:  []terms.Bonus{{Name: "Past 400", Kind: terms.BonusTickets, Threshold: 400, PerTicketMinor: 100}},
				Deposits: []terms.Deposit{{Name: "Booking deposit", Kind: terms.DepositFlat, AmountMinor: 100000, Due: "2031-03-01"}},
				Withholdings: []terms.Withholding{{Jurisdiction: "US-MO", ThresholdMinor: 30000, Bps: 200},
					{Jurisdiction: "US federal (foreign artist)", Bps: 3000}}},
			facts: Actuals{Sales: []Sale{{"Advance", 300}, {"Door", 150}},
				Expenses: []ExpenseActual{{"House", 200000}, {"Sound", 64000}}},
			want: want{gross: 975000, fees: 67500, adjustedGross: 907500, tax: 43214, netGross: 864286,
				expenses: 264000, splitPoint: 264000, net: 600286, percentage: 480229, share: 480229,
				bonuses: 5000, earnings: 485229, withholdings: 155274, walkout: 329955,
				actualExpenses: 264000, promoterNet: 115057, breakeven: 138,
				withholdingLines: []int64{9705, 145569}, depositPaid: []bool{false},
				cappedLines: []bool{false, false}, estimatedLines: []bool{false, false}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.terms.Normalize()
			if err := tc.terms.Validate("terms"); err != nil {
				t.Fatalf("the case's terms are invalid: %v", err)
			}
			s := Compute(tc.terms, tc.facts)
			w := tc.want
			check := func(name string, got, want int64) {
				t.Helper()
				if got != want {
					t.Errorf("%s = %d, want %d", name, got, want)
				}
			}
			check("gross", s.GrossMinor, w.gross)
			check("facility fees", s.FacilityFeesMinor, w.fees)
			check("adjusted gross", s.AdjustedGrossMinor, w.adjustedGross)
			check("tax", s.TaxMinor, w.tax)
			check("net gross", s.NetGrossMinor, w.netGross)
			check("expenses", s.ExpensesMinor, w.expenses)
			check("promoter profit", s.PromoterProfitMinor, w.promoterProfit)
			check("split point", s.SplitPointMinor, w.splitPoint)
			check("net", s.NetMinor, w.net)
			check("percentage", s.PercentageMinor, w.percentage)
			check("share", s.ShareMinor, w.share)
			check("bonuses", s.BonusesMinor, w.bonuses)
			check("adjustments", s.AdjustmentsMinor, w.adjustments)
			check("earnings", s.EarningsMinor, w.earnings)
			check("deposits paid", s.DepositsPaidMinor, w.depositsPaid)
			check("withholdings", s.WithholdingsMinor, w.withholdings)
			check("walkout", s.WalkoutMinor, w.walkout)
			check("actual expenses", s.Internal.ActualExpensesMinor, w.actualExpenses)
			check("promoter net", s.Internal.PromoterNetMinor, w.promoterNet)
			check("breakeven tickets", int64(s.Internal.BreakevenTickets), int64(w.breakeven))
			if s.Winner != w.winner {
				t.Errorf("winner %q, want %q", s.Winner, w.winner)
			}
			for i, amt := range w.withholdingLines {
				check("withholding "+s.Withholdings[i].Jurisdiction, s.Withholdings[i].AmountMinor, amt)
			}
			for i, p := range w.depositPaid {
				if d := s.Deposits[i]; d.Paid != p || (d.DeductedMinor != 0) != p {
					t.Errorf("deposit %s: paid %v, deducted %d; want paid %v", d.Name, d.Paid, d.DeductedMinor, p)
				}
			}
			for i, c := range w.cappedLines {
				if s.Expenses[i].Capped != c || s.Expenses[i].Estimated != w.estimatedLines[i] {
					t.Errorf("expense %s: capped %v estimated %v, want %v %v", s.Expenses[i].Name,
						s.Expenses[i].Capped, s.Expenses[i].Estimated, c, w.estimatedLines[i])
				}
			}
			// The waterfall's identities hold whatever the case.
			if s.AdjustedGrossMinor-s.TaxMinor != s.NetGrossMinor || s.EarningsMinor-s.DepositsPaidMinor-s.WithholdingsMinor != s.WalkoutMinor {
				t.Error("the sheet's steps do not add up")
			}
		})
	}
}

// versusTerms: 10,000.00 versus 85 % of net (after expenses and 15 %
// promoter profit), tax 10 % included in the prices, a production line
// capped at 2,200.00, half the guarantee as a deposit, a sell-out bonus.
func versusTerms() terms.Terms {
	return terms.Terms{Currency: "USD", GuaranteeMinor: 1000000,
		Deal:              terms.Deal{Type: terms.DealVersus, Basis: terms.BasisNet, ArtistBps: 8500},
		PromoterProfitBps: 1500, TaxRateBps: 1000, TaxInclusive: true,
		Tiers: []terms.Tier{{Name: "GA", PriceMinor: 4000, Allotment: 800}, {Name: "VIP", PriceMinor: 10000, Allotment: 100}},
		Expenses: []terms.Expense{{Name: "Rent", BudgetMinor: 300000},
			{Name: "Production", BudgetMinor: 200000, CapMinor: ptr(220000)}},
		Bonuses:  []terms.Bonus{{Name: "Sell-out", Kind: terms.BonusSellThrough, Threshold: 10000, AmountMinor: 100000}},
		Deposits: []terms.Deposit{{Name: "Half on signing", Kind: terms.DepositPercent, Bps: 5000, Due: "2031-02-01"}}}
}

// An expense the deal never named is not charged to the artist, but the
// promoter's P&L carries it.
func TestExpenseNotInDeal(t *testing.T) {
	tm := versusTerms()
	s := Compute(tm, Actuals{Sales: []Sale{{"GA", 300}}, Expenses: []ExpenseActual{{"Rent", 300000}, {"Limousine", 90000}}})
	last := s.Expenses[len(s.Expenses)-1]
	if !last.NotInDeal || last.ChargedMinor != 0 || last.ActualMinor != 90000 {
		t.Fatalf("unlisted expense: %+v", last)
	}
	if s.ExpensesMinor != 300000+200000 || s.Internal.ActualExpensesMinor != 300000+200000+90000 {
		t.Fatalf("charged %d, actual %d", s.ExpensesMinor, s.Internal.ActualExpensesMinor)
	}
	// The artist's sheet shows the charged (reported) cost of each line,
	// leaves the unlisted one out, and carries no P&L.
	ext := s.External()
	if ext.Internal != nil || len(ext.Expenses) != 2 || ext.Expenses[1].ActualMinor != 200000 || ext.WalkoutMinor != s.WalkoutMinor {
		t.Fatalf("external sheet: %+v", ext)
	}
}

// Half-up rounding, in 128 bits at the limits.
func TestMulDiv(t *testing.T) {
	for _, c := range []struct{ x, num, den, want int64 }{
		{1, 5000, 10000, 1}, // 0.5 → 1
		{1, 4999, 10000, 0}, // 0.4999 → 0
		{3, 5000, 10000, 2}, // 1.5 → 2
		{805336, 1, 1, 805336},
		{terms.MaxAmount * 100, terms.MaxBps, terms.MaxBps, terms.MaxAmount * 100}, // 10^14 × 10^4 passes 64 bits
		{0, 10000, 10000, 0},
	} {
		if got := terms.MulDiv(c.x, c.num, c.den); got != c.want {
			t.Errorf("MulDiv(%d, %d, %d) = %d, want %d", c.x, c.num, c.den, got, c.want)
		}
	}
}
