// Package rental holds a venue rental's money: the lines of its invoice
// (the rental fee and each add-on, quantity × unit price), their totals,
// the deposit and the balance, and the invoice PDF rendered from them.
package rental

import (
	"bytes"
	"fmt"
	"time"

	"codeberg.org/go-pdf/fpdf"

	"marquee/modules/booking/internal/terms"
)

// AddOn kinds a rental may carry.
var Kinds = []string{"catering", "av", "pa", "lighting", "security", "cleaning", "staff", "other"}

// AddOn is an extra service on a rental: quantity × unit price.
type AddOn struct {
	Kind      string `json:"kind"`
	Name      string `json:"name"`
	Quantity  int    `json:"quantity"`
	UnitMinor int64  `json:"unit_minor"`
}

// Line is one line of the invoice.
type Line struct {
	Label       string `json:"label"`
	Quantity    int    `json:"quantity"`
	UnitMinor   int64  `json:"unit_minor"`
	AmountMinor int64  `json:"amount_minor"`
}

// Totals are what the renter owes, computed from the fee and add-ons.
type Totals struct {
	Lines         []Line `json:"lines"`
	FeeMinor      int64  `json:"fee_minor"`
	AddOnsMinor   int64  `json:"add_ons_minor"`
	TotalMinor    int64  `json:"total_minor"`
	DepositMinor  int64  `json:"deposit_minor"`
	DepositPaid   bool   `json:"deposit_paid"`
	BalanceMinor  int64  `json:"balance_minor"` // total − the deposit paid
	Currency      string `json:"currency"`
	DepositStatus string `json:"deposit_status"` // none, unpaid or paid
}

// Compute adds the lines up. Amounts were validated (each line and the
// total at most terms.MaxAmount), so nothing here overflows.
func Compute(currency string, feeMinor int64, addOns []AddOn, depositMinor int64, depositPaid bool) Totals {
	t := Totals{FeeMinor: feeMinor, DepositMinor: depositMinor, DepositPaid: depositPaid, Currency: currency, Lines: []Line{}}
	t.Lines = append(t.Lines, Line{Label: "Venue rental fee", Quantity: 1, UnitMinor: feeMinor, AmountMinor: feeMinor})
	for _, a := range addOns {
		amount := int64(a.Quantity) * a.UnitMinor
		t.AddOnsMinor += amount
		t.Lines = append(t.Lines, Line{Label: a.Name + " (" + a.Kind + ")", Quantity: a.Quantity, UnitMinor: a.UnitMinor, AmountMinor: amount})
	}
	t.TotalMinor = feeMinor + t.AddOnsMinor
	t.BalanceMinor = t.TotalMinor
	switch {
	case depositMinor == 0:
		t.DepositStatus = "none"
	case depositPaid:
		t.DepositStatus = "paid"
		t.BalanceMinor -= depositMinor
	default:
		t.DepositStatus = "unpaid"
	}
	return t
}

// LineAmount is quantity × unit price, and whether it stays within the
// platform's largest amount.
func LineAmount(quantity int, unitMinor int64) (int64, bool) {
	if quantity < 0 || unitMinor < 0 || (quantity > 0 && unitMinor > terms.MaxAmount/int64(quantity)) {
		return 0, false
	}
	return int64(quantity) * unitMinor, true
}

// Invoice is an issued invoice as frozen: everything its PDF shows.
type Invoice struct {
	Number     int       `json:"number"`
	Chain      string    `json:"chain"`
	IssuedAt   time.Time `json:"issued_at"`
	IssuedOn   string    `json:"issued_on"` // the date in the venue's timezone
	RentalID   string    `json:"rental_id"`
	Title      string    `json:"title"`
	Renter     string    `json:"renter"`
	Email      string    `json:"email"`
	Window     string    `json:"window"` // the rented window, in the venue's timezone
	DepositDue string    `json:"deposit_due"`
	DepositOn  string    `json:"deposit_paid_on"`
	Totals     Totals    `json:"totals"`
}

// Code is the invoice's printed number: INV-000042.
func Code(n int) string { return fmt.Sprintf("INV-%06d", n) }

// Render produces the invoice PDF. The same invoice renders the same bytes
// (its dates are fixed to the issue time).
func Render(inv Invoice) ([]byte, error) {
	pdf := fpdf.New("P", "mm", "A4", "")
	pdf.SetTitle("Invoice "+Code(inv.Number), false)
	pdf.SetAuthor(inv.Chain, true)
	pdf.SetCreationDate(inv.IssuedAt.UTC())
	pdf.SetModificationDate(inv.IssuedAt.UTC())
	pdf.SetMargins(18, 16, 18)
	pdf.SetAutoPageBreak(true, 18)
	tr := pdf.UnicodeTranslatorFromDescriptor("")
	money := func(m int64) string { return tr(terms.Format(m, inv.Totals.Currency)) }
	pdf.AddPage()
	pdf.SetFont("Helvetica", "B", 18)
	pdf.CellFormat(110, 10, tr(inv.Chain), "", 0, "L", false, 0, "")
	pdf.SetFont("Helvetica", "B", 14)
	pdf.CellFormat(0, 10, "INVOICE "+Code(inv.Number), "", 1, "R", false, 0, "")
	pdf.SetFont("Helvetica", "", 10)
	pdf.CellFormat(0, 6, "Issued "+inv.IssuedOn, "", 1, "R", false, 0, "")
	pdf.Ln(4)
	kv := func(k, v string) {
		pdf.SetFont("Helvetica", "B", 10)
		pdf.CellFormat(40, 6, k, "", 0, "L", false, 0, "")
		pdf.SetFont("Helvetica", "", 10)
		pdf.MultiCell(0, 6, tr(v), "", "L", false)
	}
	kv("Bill to", inv.Renter+" <"+inv.Email+">")
	kv("Venue rental", inv.Title)
	kv("Date", inv.Window)
	kv("Rental", inv.RentalID)
	pdf.Ln(4)
	w := []float64{92, 18, 32, 32}
	pdf.SetFillColor(230, 230, 235)
	pdf.SetFont("Helvetica", "B", 10)
	for i, h := range []string{"Description", "Qty", "Unit price", "Amount"} {
		align := "R"
		if i == 0 {
			align = "L"
		}
		pdf.CellFormat(w[i], 7, h, "1", 0, align, true, 0, "")
	}
	pdf.Ln(-1)
	pdf.SetFont("Helvetica", "", 10)
	for _, l := range inv.Totals.Lines {
		pdf.CellFormat(w[0], 7, tr(l.Label), "1", 0, "L", false, 0, "")
		pdf.CellFormat(w[1], 7, fmt.Sprint(l.Quantity), "1", 0, "R", false, 0, "")
		pdf.CellFormat(w[2], 7, money(l.UnitMinor), "1", 0, "R", false, 0, "")
		pdf.CellFormat(w[3], 7, money(l.AmountMinor), "1", 1, "R", false, 0, "")
	}
	sum := func(label, value string, bold bool) {
		style := ""
		if bold {
			style = "B"
		}
		pdf.SetFont("Helvetica", style, 10)
		pdf.CellFormat(w[0]+w[1]+w[2], 7, label, "", 0, "R", false, 0, "")
		pdf.CellFormat(w[3], 7, value, "1", 1, "R", false, 0, "")
	}
	t := inv.Totals
	sum("Add-ons", money(t.AddOnsMinor), false)
	sum("Total", money(t.TotalMinor), true)
	switch t.DepositStatus {
	case "paid":
		sum("Deposit paid "+inv.DepositOn, "- "+money(t.DepositMinor), false)
	case "unpaid":
		due := "Deposit due"
		if inv.DepositDue != "" {
			due += " by " + inv.DepositDue
		}
		sum(due+" (unpaid)", money(t.DepositMinor), false)
	}
	sum("Balance due", money(t.BalanceMinor), true)
	pdf.Ln(6)
	pdf.SetFont("Helvetica", "", 9)
	pdf.SetTextColor(90, 90, 90)
	pdf.MultiCell(0, 5, tr("The date is held for the renter until the deposit is paid; it is confirmed on the calendar once it is. "+
		"Amounts in "+t.Currency+"."), "", "L", false)
	var buf bytes.Buffer
	if err := pdf.Output(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
