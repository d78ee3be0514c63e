package settlement

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"codeberg.org/go-pdf/fpdf"

	"marquee/modules/booking/internal/terms"
)

// Line is one line of the sheet as exported: its section, what it is, the
// amount in minor units (signed as it moves the artist's money) and a note.
type Line struct {
	Section     string
	Label       string
	AmountMinor int64
	Note        string
}

// Lines lays the waterfall out in order, the same for the page, the CSV and
// the PDF, so the three never disagree.
func (s Sheet) Lines() []Line {
	var out []Line
	add := func(section, label string, amount int64, note string) {
		out = append(out, Line{section, label, amount, note})
	}
	for _, t := range s.Tiers {
		add("tickets", t.Tier, t.GrossMinor, fmt.Sprintf("%d sold of %d sellable at %s", t.Sold, t.Sellable, terms.Format(t.PriceMinor, s.Currency)))
	}
	add("box office", "Gross", s.GrossMinor, fmt.Sprintf("%d tickets sold of %d sellable", s.TicketsSold, s.Sellable))
	add("box office", "Facility fees", -s.FacilityFeesMinor, "")
	add("box office", "Adjusted gross", s.AdjustedGrossMinor, "")
	add("box office", "Tax", -s.TaxMinor, "")
	add("box office", "Net gross", s.NetGrossMinor, "")
	for _, e := range s.Expenses {
		note := ""
		switch {
		case e.NotInDeal:
			note = "not in the deal: not charged"
		case e.Capped:
			note = "capped at " + terms.Format(*e.CapMinor, s.Currency) + " (cost " + terms.Format(e.ActualMinor, s.Currency) + ")"
		case e.Estimated:
			note = "budget (no actual recorded)"
		}
		add("expenses", e.Name, -e.ChargedMinor, note)
	}
	add("split", "Expenses charged", -s.ExpensesMinor, "")
	add("split", "Promoter profit", -s.PromoterProfitMinor, "")
	if s.SplitAdjustmentsMinor != 0 {
		add("split", "Adjustments moving the split point", -s.SplitAdjustmentsMinor, "")
	}
	add("split", "Split point", s.SplitPointMinor, "")
	add("split", "Net after the split point", s.NetMinor, "")
	deal := s.DealType
	if s.Winner != "" {
		deal += " (" + s.Winner + " paid)"
	}
	add("artist", "Guarantee", s.GuaranteeMinor, "")
	add("artist", "Percentage side", s.PercentageMinor, strconv.FormatFloat(float64(s.ArtistBps)/100, 'f', -1, 64)+"% of "+s.DealBasis)
	add("artist", "Artist share", s.ShareMinor, deal)
	for _, b := range s.Bonuses {
		note := "not reached"
		if b.Reached {
			note = "reached"
		}
		add("artist", "Bonus: "+b.Name, b.AmountMinor, note)
	}
	for _, a := range s.Adjustments {
		add("artist", a.Kind+": "+a.Name, a.EffectMinor, "")
	}
	add("artist", "Earnings", s.EarningsMinor, "")
	for _, d := range s.Deposits {
		note := "paid: deducted"
		if !d.Paid {
			note = "not paid: not deducted"
		}
		add("walkout", "Deposit: "+d.Name, -d.DeductedMinor, note+" (due "+d.Due+", "+terms.Format(d.AmountMinor, s.Currency)+")")
	}
	for _, w := range s.Withholdings {
		note := "below threshold"
		if w.Applies {
			note = strconv.FormatFloat(float64(w.Bps)/100, 'f', -1, 64) + "% above " + terms.Format(w.ThresholdMinor, s.Currency)
		}
		add("walkout", "Withholding: "+w.Jurisdiction, -w.AmountMinor, note)
	}
	add("walkout", "Walkout", s.WalkoutMinor, "")
	if s.Internal != nil {
		add("promoter (internal)", "Actual expenses", -s.Internal.ActualExpensesMinor, "")
		add("promoter (internal)", "Promoter net", s.Internal.PromoterNetMinor, "")
		add("promoter (internal)", "Breakeven tickets", int64(s.Internal.BreakevenTickets), "a count, not money")
	}
	return out
}

// CSV writes the lines with amounts both in minor units (exact) and as
// decimals (for people).
func (s Sheet) CSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write([]string{"section", "line", "amount_minor", "amount", "currency", "note"}); err != nil {
		return err
	}
	for _, l := range s.Lines() {
		shown := terms.Format(l.AmountMinor, s.Currency)
		if l.Label == "Breakeven tickets" {
			shown = strconv.FormatInt(l.AmountMinor, 10)
		}
		if err := cw.Write([]string{l.Section, l.Label, strconv.FormatInt(l.AmountMinor, 10), shown, s.Currency, l.Note}); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// PDF renders the sheet: a heading, the waterfall and the rounding rule.
func (s Sheet) PDF(title, view string, generated time.Time) ([]byte, error) {
	pdf := fpdf.New("P", "mm", "A4", "")
	pdf.SetTitle("Settlement: "+title, true)
	pdf.SetCreationDate(generated.UTC())
	pdf.SetMargins(16, 14, 16)
	pdf.SetAutoPageBreak(true, 16)
	tr := pdf.UnicodeTranslatorFromDescriptor("")
	pdf.AddPage()
	pdf.SetFont("Helvetica", "B", 16)
	pdf.CellFormat(0, 9, tr("Settlement sheet - "+title), "", 1, "L", false, 0, "")
	pdf.SetFont("Helvetica", "", 9.5)
	pdf.CellFormat(0, 5.5, tr(fmt.Sprintf("%s view, %s. Generated %s UTC.", view, s.Currency, generated.UTC().Format("2006-01-02 15:04"))), "", 1, "L", false, 0, "")
	pdf.Ln(2)
	w := []float64{28, 50, 32, 68}
	pdf.SetFont("Helvetica", "B", 9.5)
	pdf.SetFillColor(230, 230, 235)
	for i, h := range []string{"Section", "Line", "Amount", "Note"} {
		pdf.CellFormat(w[i], 6.5, h, "1", 0, map[bool]string{true: "R", false: "L"}[i == 2], true, 0, "")
	}
	pdf.Ln(-1)
	for _, l := range s.Lines() {
		total := l.Label == "Gross" || l.Label == "Net gross" || l.Label == "Split point" || l.Label == "Earnings" || l.Label == "Walkout"
		style := ""
		if total {
			style = "B"
			pdf.SetFillColor(243, 244, 248)
		}
		pdf.SetFont("Helvetica", style, 9)
		amount := terms.Format(l.AmountMinor, s.Currency)
		if l.Label == "Breakeven tickets" {
			amount = strconv.FormatInt(l.AmountMinor, 10)
		}
		// The core fonts have no minus sign (U+2212): a hyphen reads the same.
		amount = strings.ReplaceAll(amount, "\u2212", "-")
		cells := []string{l.Section, l.Label, amount, l.Note}
		for i, c := range cells {
			if max := []int{18, 32, 20, 48}[i]; len([]rune(c)) > max {
				c = string([]rune(c)[:max-1]) + "…"
			}
			pdf.CellFormat(w[i], 6, tr(c), "1", 0, map[bool]string{true: "R", false: "L"}[i == 2], total, 0, "")
		}
		pdf.Ln(-1)
	}
	pdf.Ln(3)
	pdf.SetFont("Helvetica", "", 8.5)
	pdf.MultiCell(0, 4.5, tr("Rounding: "+s.Rounding+". Deposits are deducted only when paid."), "", "L", false)
	var buf bytes.Buffer
	if err := pdf.Output(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
