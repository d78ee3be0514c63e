// Package contract renders an accepted offer into a contract PDF from the
// chain's clauses, and the sealed copy once every party signed: the same
// pages plus a certificate page naming each signature (who, when, from
// where, over which document digest). It is pure: the same inputs give the
// same bytes, so a retried render stores the same document.
package contract

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"time"

	"codeberg.org/go-pdf/fpdf"

	"marquee/modules/booking/internal/terms"
)

// Clause is one section of the chain's contract template. Its text may name
// {{artist}}, {{agent}}, {{chain}}, {{show}}, {{date}}, {{guarantee}} and
// {{currency}}; anything else is printed as written.
type Clause struct {
	Title string `json:"title"`
	Text  string `json:"text"`
}

// DefaultClauses are the contract a chain starts with, before it edits its own.
func DefaultClauses() []Clause {
	return []Clause{
		{"Engagement", "{{chain}} (the Promoter) engages {{artist}} (the Artist), represented by {{agent}}, to perform at {{show}} on {{date}}, on the deal terms set out above, which are part of this contract."},
		{"Compensation", "The Promoter pays the Artist the guarantee of {{guarantee}} and any share, bonus and adjustment the deal terms provide, computed on the settlement sheet after the show. Deposits paid are deducted from the amount due at settlement; deposits not paid are not."},
		{"Settlement", "Settlement takes place on the night of the show from the ticketing system's counts. Expenses are charged at their actual cost and never above their \"not to exceed\" amount. Both parties acknowledge the settlement sheet."},
		{"Taxes", "The Promoter withholds the taxes listed in the deal terms where the law requires them and gives the Artist the receipts."},
		{"Rider and production", "The Promoter provides what the rider and technical needs of the deal terms list, at its cost unless the deal terms say otherwise."},
		{"Radius", "The Artist does not perform publicly within the radius and the days set in the deal terms without the Promoter's written consent."},
		{"Cancellation", "If the show cannot take place because of events beyond the parties' control (force majeure), neither party owes the other damages; deposits paid are returned. If either party cancels for any other reason, it owes the other the guarantee."},
		{"Entire agreement", "This contract and its deal terms are the whole agreement. A change is valid only as a new version of the terms accepted by both parties."},
	}
}

// MaxClauses and MaxClauseText bound a template.
const (
	MaxClauses     = 60
	MaxClauseTitle = 120
	MaxClauseText  = 8000
)

// Document is what a contract shows.
type Document struct {
	ContractID   string
	Chain        string
	Artist       string
	Agent        string
	Show         string
	Venue        string
	Date         string // the show's date, or "a mutually agreeable date"
	TermsVersion int
	AcceptedAt   time.Time
	Terms        terms.Terms
	Clauses      []Clause
}

// Signature is one party's click-to-sign: who, when, from where, over which
// document digest.
type Signature struct {
	Party          string
	Name           string
	SignedAt       time.Time
	IP             string
	DocumentSHA256 string
	Via            string // "click-to-sign" or the e-signature provider's name
}

// Render produces the contract PDF.
func Render(d Document) ([]byte, error) {
	pdf := newPDF(d)
	body(pdf, d)
	return output(pdf)
}

// RenderSealed produces the signed copy: the contract's pages, then the
// certificate page with every signature and the digest of the document
// they signed. It is written once, after the last signature.
func RenderSealed(d Document, documentSHA256 string, sigs []Signature, sealedAt time.Time) ([]byte, error) {
	pdf := newPDF(d)
	body(pdf, d)
	tr := pdf.UnicodeTranslatorFromDescriptor("")
	pdf.AddPage()
	pdf.SetFont("Helvetica", "B", 15)
	pdf.CellFormat(0, 9, "Signature certificate", "", 1, "L", false, 0, "")
	pdf.SetFont("Helvetica", "", 9.5)
	pdf.MultiCell(0, 5, tr(fmt.Sprintf("Contract %s, terms version %d. Every party below signed the document whose SHA-256 digest is:",
		d.ContractID, d.TermsVersion)), "", "L", false)
	pdf.SetFont("Courier", "", 9)
	pdf.CellFormat(0, 6, documentSHA256, "", 1, "L", false, 0, "")
	pdf.Ln(3)
	w := []float64{24, 52, 40, 30, 34}
	pdf.SetFont("Helvetica", "B", 9.5)
	pdf.SetFillColor(230, 230, 235)
	for i, h := range []string{"Party", "Name", "Signed (UTC)", "From", "Via"} {
		pdf.CellFormat(w[i], 7, h, "1", 0, "L", true, 0, "")
	}
	pdf.Ln(-1)
	pdf.SetFont("Helvetica", "", 9.5)
	for _, s := range sigs {
		cells := []string{s.Party, s.Name, s.SignedAt.UTC().Format("2006-01-02 15:04:05"), s.IP, s.Via}
		for i, c := range cells {
			pdf.CellFormat(w[i], 7, tr(clip(c, 34)), "1", 0, "L", false, 0, "")
		}
		pdf.Ln(-1)
	}
	pdf.Ln(2)
	pdf.SetFont("Helvetica", "", 9)
	for _, s := range sigs {
		if s.DocumentSHA256 != documentSHA256 {
			// Unreachable by construction (signing checks the digest); said
			// on the page if it ever happened rather than hidden.
			pdf.SetTextColor(180, 0, 0)
			pdf.MultiCell(0, 5, tr(fmt.Sprintf("%s signed a different document (%s).", s.Name, s.DocumentSHA256)), "", "L", false)
			pdf.SetTextColor(0, 0, 0)
		}
	}
	pdf.MultiCell(0, 5, tr(fmt.Sprintf("Sealed %s UTC, once, after the last signature: no signature was applied to a document "+
		"another signature had already changed.", sealedAt.UTC().Format("2006-01-02 15:04:05"))), "", "L", false)
	return output(pdf)
}

func newPDF(d Document) *fpdf.Fpdf {
	pdf := fpdf.New("P", "mm", "A4", "")
	pdf.SetTitle("Contract "+d.ContractID, false)
	pdf.SetAuthor(d.Chain, true)
	// A fixed date: the same accepted version renders the same bytes.
	pdf.SetCreationDate(d.AcceptedAt.UTC())
	pdf.SetModificationDate(d.AcceptedAt.UTC())
	pdf.SetMargins(18, 16, 18)
	pdf.SetAutoPageBreak(true, 18)
	pdf.AliasNbPages("{nb}")
	pdf.SetFooterFunc(func() {
		pdf.SetY(-12)
		pdf.SetFont("Helvetica", "", 8)
		pdf.SetTextColor(110, 110, 110)
		pdf.CellFormat(0, 5, fmt.Sprintf("Contract %s - terms version %d - page %d of {nb}", d.ContractID, d.TermsVersion, pdf.PageNo()), "", 0, "C", false, 0, "")
		pdf.SetTextColor(0, 0, 0)
	})
	return pdf
}

func output(pdf *fpdf.Fpdf) ([]byte, error) {
	var buf bytes.Buffer
	if err := pdf.Output(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

func body(pdf *fpdf.Fpdf, d Document) {
	tr := pdf.UnicodeTranslatorFromDescriptor("")
	tm := d.Terms
	money := func(m int64) string { return terms.Format(m, tm.Currency) }
	pdf.AddPage()
	pdf.SetFont("Helvetica", "B", 17)
	pdf.CellFormat(0, 9, "Artist engagement contract", "", 1, "L", false, 0, "")
	pdf.SetFont("Helvetica", "", 10)
	pdf.CellFormat(0, 5.5, tr(fmt.Sprintf("Between %s (the Promoter) and %s (the Artist), represented by %s.", d.Chain, d.Artist, d.Agent)), "", 1, "L", false, 0, "")
	show := d.Show
	if d.Venue != "" {
		show += ", " + d.Venue
	}
	pdf.CellFormat(0, 5.5, tr(fmt.Sprintf("Show: %s - %s.", show, d.Date)), "", 1, "L", false, 0, "")
	pdf.CellFormat(0, 5.5, tr(fmt.Sprintf("Deal terms: version %d, accepted %s UTC.", d.TermsVersion, d.AcceptedAt.UTC().Format("2006-01-02 15:04"))), "", 1, "L", false, 0, "")
	pdf.Ln(3)

	section := func(title string) {
		pdf.Ln(1)
		pdf.SetFont("Helvetica", "B", 11.5)
		pdf.SetFillColor(236, 238, 244)
		pdf.CellFormat(0, 7, tr(title), "", 1, "L", true, 0, "")
		pdf.SetFont("Helvetica", "", 9.5)
	}
	row := func(label, value string) {
		pdf.SetFont("Helvetica", "B", 9.5)
		pdf.CellFormat(52, 5.5, tr(label), "", 0, "L", false, 0, "")
		pdf.SetFont("Helvetica", "", 9.5)
		pdf.MultiCell(0, 5.5, tr(value), "", "L", false)
	}
	section("1. Deal terms")
	row("Currency", tm.Currency)
	row("Guarantee", money(tm.GuaranteeMinor))
	row("Deal", dealText(tm))
	if tm.PromoterProfitBps > 0 {
		row("Promoter profit", pct(tm.PromoterProfitBps)+" of expenses (part of the split point)")
	}
	for _, b := range tm.Bonuses {
		v := fmt.Sprintf("%s at %d %s", money(b.AmountMinor), b.Threshold, map[bool]string{true: "tickets", false: "bps sell-through"}[b.Kind == terms.BonusTickets])
		if b.PerTicketMinor > 0 {
			v += fmt.Sprintf(", plus %s per ticket", money(b.PerTicketMinor))
			if b.Retroactive {
				v += " (retroactive to the first ticket)"
			}
		}
		row("Bonus: "+b.Name, v)
	}
	if tm.FacilityFeeMinor > 0 {
		row("Facility fee", money(tm.FacilityFeeMinor)+" per ticket, before any split")
	}
	if tm.TaxRateBps > 0 {
		row("Ticket tax", pct(tm.TaxRateBps)+map[bool]string{true: ", included in prices", false: ", added to prices"}[tm.TaxInclusive])
	}
	for _, dep := range tm.Deposits {
		row("Deposit: "+dep.Name, fmt.Sprintf("%s due %s", money(tm.DepositAmount(dep)), dep.Due))
	}
	for _, w := range tm.Withholdings {
		row("Withholding: "+w.Jurisdiction, fmt.Sprintf("%s of earnings above %s", pct(w.Bps), money(w.ThresholdMinor)))
	}
	if tm.Merch.SoftArtistBps > 0 || tm.Merch.HardArtistBps > 0 {
		row("Merchandise", fmt.Sprintf("artist keeps %s of soft goods, %s of hard goods", pct(tm.Merch.SoftArtistBps), pct(tm.Merch.HardArtistBps)))
	}
	if tm.Billing != "" {
		row("Billing", tm.Billing)
	}
	if tm.SetMinutes > 0 {
		row("Set length", strconv.Itoa(tm.SetMinutes)+" minutes")
	}
	if tm.Radius.Miles > 0 {
		row("Radius", fmt.Sprintf("%d miles, %d days before to %d days after the show", tm.Radius.Miles, tm.Radius.DaysBefore, tm.Radius.DaysAfter))
	}

	if len(tm.Tiers) > 0 {
		section("2. Ticket scaling")
		w := []float64{50, 32, 24, 20, 20, 28}
		pdf.SetFont("Helvetica", "B", 9)
		for i, h := range []string{"Tier", "Price", "Allotment", "Comps", "Kills", "Sellable"} {
			pdf.CellFormat(w[i], 6, h, "B", 0, map[bool]string{true: "L", false: "R"}[i == 0], false, 0, "")
		}
		pdf.Ln(-1)
		pdf.SetFont("Helvetica", "", 9)
		for _, t := range tm.Tiers {
			cells := []string{t.Name, money(t.PriceMinor), strconv.Itoa(t.Allotment), strconv.Itoa(t.Comps), strconv.Itoa(t.Kills), strconv.Itoa(t.Sellable())}
			for i, c := range cells {
				pdf.CellFormat(w[i], 5.5, tr(clip(c, 30)), "", 0, map[bool]string{true: "L", false: "R"}[i == 0], false, 0, "")
			}
			pdf.Ln(-1)
		}
	}
	if len(tm.Expenses) > 0 {
		section("3. Expense budget")
		for _, e := range tm.Expenses {
			v := money(e.BudgetMinor)
			if e.CapMinor != nil {
				v += ", not to exceed " + money(*e.CapMinor)
			}
			row(e.Name, v)
		}
	}
	if tm.Rider != "" || tm.TechnicalNeeds != "" {
		section("4. Rider and technical needs")
		if tm.Rider != "" {
			pdf.MultiCell(0, 5, tr(tm.Rider), "", "L", false)
		}
		if tm.TechnicalNeeds != "" {
			pdf.MultiCell(0, 5, tr(tm.TechnicalNeeds), "", "L", false)
		}
	}

	section("5. Clauses")
	fill := strings.NewReplacer("{{artist}}", d.Artist, "{{agent}}", d.Agent, "{{chain}}", d.Chain, "{{show}}", show,
		"{{date}}", d.Date, "{{guarantee}}", money(tm.GuaranteeMinor), "{{currency}}", tm.Currency)
	for i, c := range d.Clauses {
		pdf.SetFont("Helvetica", "B", 10)
		pdf.MultiCell(0, 6, tr(fmt.Sprintf("5.%d %s", i+1, c.Title)), "", "L", false)
		pdf.SetFont("Helvetica", "", 9.5)
		pdf.MultiCell(0, 5, tr(fill.Replace(c.Text)), "", "L", false)
		pdf.Ln(1)
	}

	pdf.Ln(4)
	pdf.SetFont("Helvetica", "B", 10)
	pdf.CellFormat(0, 6, "Signatures", "", 1, "L", false, 0, "")
	pdf.SetFont("Helvetica", "", 9.5)
	pdf.MultiCell(0, 5, tr("Each party signs this document electronically. The signed copy adds a certificate page naming each "+
		"signature and the SHA-256 digest of this document."), "", "L", false)
	y := pdf.GetY() + 10
	for i, who := range []string{"For the Promoter: " + d.Chain, "For the Artist: " + d.Artist} {
		x := 18 + float64(i)*90
		pdf.Line(x, y, x+78, y)
		pdf.SetXY(x, y+1)
		pdf.CellFormat(78, 5, tr(clip(who, 44)), "", 0, "L", false, 0, "")
	}
	pdf.SetY(y + 8)
}

func pct(bps int) string {
	s := strconv.FormatFloat(float64(bps)/100, 'f', -1, 64)
	return s + "%"
}

func dealText(t terms.Terms) string {
	d := t.Deal
	basis := map[string]string{terms.BasisNet: "net (net gross less the split point)", terms.BasisNetGross: "net gross (from dollar one)",
		terms.BasisGross: "gross box office", terms.BasisPerTicket: "per ticket"}[d.Basis]
	switch d.Type {
	case terms.DealFlat:
		return "Flat: the guarantee, whatever the sales"
	case terms.DealDoor:
		if d.Basis == terms.BasisPerTicket {
			return "Door: " + terms.Format(d.PerTicketMinor, t.Currency) + " per ticket sold"
		}
		return "Door: " + pct(d.ArtistBps) + " of " + basis
	case terms.DealPlus:
		return "Plus: the guarantee plus " + pct(d.ArtistBps) + " of what exceeds the split point"
	case terms.DealVersus:
		return "Versus: the greater of the guarantee and " + pct(d.ArtistBps) + " of " + basis
	}
	return d.Type
}
