package booking

import (
	"embed"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"marquee/app"
	"marquee/modules/booking/internal/terms"
)

//go:embed templates/*.html
var templateFS embed.FS

func parsePages() (*template.Template, error) {
	return template.New("booking").Funcs(template.FuncMap{
		"human": func(s any) string { return strings.ReplaceAll(fmt.Sprint(s), "_", " ") },
		"money": terms.Format,
		"prev":  func(n int) int { return n - 1 },
		"pct":   func(bps int) string { return strconv.FormatFloat(float64(bps)/100, 'f', -1, 64) + " %" },
		"utc":   func(t time.Time) string { return t.UTC().Format("Mon 2 Jan 2006 15:04 UTC") },
		"utcp":  utcp,
	}).ParseFS(templateFS, "templates/*.html")
}

// countdown says how long an open offer has left, as people read it.
func countdown(deadline, now time.Time) string {
	left := deadline.Sub(now)
	switch {
	case left <= 0:
		return "expired"
	case left < time.Hour:
		return fmt.Sprintf("%dm left", int(left.Minutes())+1)
	case left < 48*time.Hour:
		return fmt.Sprintf("%dh %dm left", int(left.Hours()), int(left.Minutes())%60)
	}
	return fmt.Sprintf("%dd %dh left", int(left.Hours())/24, int(left.Hours())%24)
}

type card struct {
	Summary
	Guarantee string
	Countdown string
	Deadline  string // RFC 3339, for the page's ticking script
	Urgent    bool
}

type column struct {
	State State
	Label string
	Cards []card
}

// boardColumns are the board's columns; the closed states share one.
var boardColumns = []struct {
	label  string
	states []State
}{
	{"Draft", []State{Draft}}, {"Offer sent", []State{OfferSent}}, {"Counter-offer", []State{CounterOffer}},
	{"Accepted", []State{Accepted}}, {"Contracted", []State{Contracted}}, {"Closed", []State{Declined, Cancelled, Expired}},
}

func (m *Module) boardPage(c *gin.Context) {
	items, err := m.svc.List(c.Request.Context(), app.TenantOf(c), ListFilter{Limit: 200}, Actor{Party: Promoter})
	if err != nil {
		app.Fail(c, err)
		return
	}
	now := m.app.Now()
	cols := make([]column, len(boardColumns))
	for i, bc := range boardColumns {
		cols[i] = column{State: bc.states[0], Label: bc.label}
		for _, it := range items {
			for _, s := range bc.states {
				if it.State != s {
					continue
				}
				cd := card{Summary: it}
				if it.Currency != "" {
					cd.Guarantee = terms.Format(it.GuaranteeMinor, it.Currency)
				}
				if it.State.Open() && it.Deadline != nil {
					cd.Countdown, cd.Deadline = countdown(*it.Deadline, now), it.Deadline.Format(time.RFC3339)
					cd.Urgent = it.Deadline.Sub(now) < 48*time.Hour
				}
				cols[i].Cards = append(cols[i].Cards, cd)
			}
		}
	}
	content, err := app.RenderTemplate(m.pages, "board", struct{ Columns []column }{cols})
	if err != nil {
		app.Fail(c, err)
		return
	}
	m.app.RenderPortal(c, http.StatusOK, "Bookings", content)
}

type termRow struct{ Label, Value string }

// termRows lays the money terms out for reading.
func termRows(t terms.Terms) []termRow {
	money := func(v int64) string { return terms.Format(v, t.Currency) }
	pct := func(bps int) string { return strconv.FormatFloat(float64(bps)/100, 'f', -1, 64) + " %" }
	deal := t.Deal.Type
	switch t.Deal.Type {
	case terms.DealDoor:
		if t.Deal.Basis == terms.BasisPerTicket {
			deal = "door: " + money(t.Deal.PerTicketMinor) + " per ticket"
		} else {
			deal = "door: " + pct(t.Deal.ArtistBps) + " of " + strings.ReplaceAll(t.Deal.Basis, "_", " ")
		}
	case terms.DealPlus:
		deal = "plus: guarantee + " + pct(t.Deal.ArtistBps) + " over the split point"
	case terms.DealVersus:
		deal = "versus: guarantee vs " + pct(t.Deal.ArtistBps) + " of " + strings.ReplaceAll(t.Deal.Basis, "_", " ")
	}
	rows := []termRow{{"Guarantee", money(t.GuaranteeMinor)}, {"Deal", deal}, {"Promoter profit", pct(t.PromoterProfitBps) + " of expenses"},
		{"Facility fee", money(t.FacilityFeeMinor) + " per ticket"}}
	tax := pct(t.TaxRateBps) + " added to prices"
	if t.TaxInclusive {
		tax = pct(t.TaxRateBps) + " included in prices"
	}
	rows = append(rows, termRow{"Tax", tax})
	for _, tr := range t.Tiers {
		rows = append(rows, termRow{"Tier " + tr.Name, fmt.Sprintf("%s × %d (comps %d, kills %d)", money(tr.PriceMinor), tr.Allotment, tr.Comps, tr.Kills)})
	}
	for _, e := range t.Expenses {
		v := money(e.BudgetMinor)
		if e.CapMinor != nil {
			v += ", not to exceed " + money(*e.CapMinor)
		}
		rows = append(rows, termRow{"Expense " + e.Name, v})
	}
	for _, d := range t.Deposits {
		rows = append(rows, termRow{"Deposit " + d.Name, money(t.DepositAmount(d)) + " due " + d.Due})
	}
	for _, w := range t.Withholdings {
		rows = append(rows, termRow{"Withholding " + w.Jurisdiction, pct(w.Bps) + " above " + money(w.ThresholdMinor)})
	}
	for _, b := range t.Bonuses {
		rows = append(rows, termRow{"Bonus " + b.Name, fmt.Sprintf("%s at %s %d", money(b.AmountMinor+b.PerTicketMinor), b.Kind, b.Threshold)})
	}
	if t.SetMinutes > 0 {
		rows = append(rows, termRow{"Set length", fmt.Sprintf("%d minutes", t.SetMinutes)})
	}
	if t.Radius.Miles > 0 {
		rows = append(rows, termRow{"Radius", fmt.Sprintf("%d miles, %d days before to %d after", t.Radius.Miles, t.Radius.DaysBefore, t.Radius.DaysAfter)})
	}
	if t.Billing != "" {
		rows = append(rows, termRow{"Billing", t.Billing})
	}
	if t.Rider != "" {
		rows = append(rows, termRow{"Rider", t.Rider})
	}
	return rows
}

type detailView struct {
	Detail
	Rows      []termRow
	Countdown string
	Deadline  string
	Diff      *DiffView
	Changes   []changeRow
	From, To  int
	DiffError string
	Contract  *contractSection
}

// changeRow is a diff line as read: money and percentages formatted.
type changeRow struct{ Field, From, To string }

func changeRows(changes []terms.Change, currency string) []changeRow {
	show := func(field string, v any) string {
		n, isInt := v.(int64)
		switch {
		case v == nil:
			return "—"
		case isInt && strings.HasSuffix(field, "_minor"):
			return terms.Format(n, currency)
		case isInt && strings.HasSuffix(field, "_bps"):
			return strconv.FormatFloat(float64(n)/100, 'f', -1, 64) + " %"
		}
		return fmt.Sprint(v)
	}
	out := make([]changeRow, 0, len(changes))
	for _, ch := range changes {
		out = append(out, changeRow{ch.Field, show(ch.Field, ch.From), show(ch.Field, ch.To)})
	}
	return out
}

func (m *Module) detailPage(c *gin.Context) {
	id, err := bookingID(c)
	if err != nil {
		app.Fail(c, err)
		return
	}
	ctx, t := c.Request.Context(), app.TenantOf(c)
	d, err := m.svc.Get(ctx, t, id, Actor{Party: Promoter})
	if err != nil {
		app.Fail(c, err)
		return
	}
	v := detailView{Detail: d, Rows: termRows(d.Terms)}
	if d.AcceptedN != nil {
		v.Contract = m.portalContract(c, d)
	}
	if d.State.Open() && d.Deadline != nil {
		v.Countdown, v.Deadline = countdown(*d.Deadline, m.app.Now()), d.Deadline.Format(time.RFC3339)
	}
	// The diff shown: the one asked for, else the last two versions.
	v.From, v.To = d.CurrentN-1, d.CurrentN
	if f, err := strconv.Atoi(c.Query("from")); err == nil {
		v.From = f
	}
	if to, err := strconv.Atoi(c.Query("to")); err == nil {
		v.To = to
	}
	if v.From >= 1 && v.To >= 1 {
		diff, err := m.svc.Diff(ctx, t, id, v.From, v.To, Actor{Party: Promoter})
		if err != nil {
			v.DiffError = fmt.Sprintf("No diff between versions %d and %d: %v", v.From, v.To, err)
		} else {
			v.Diff, v.Changes = &diff, changeRows(diff.Changes, d.Terms.Currency)
		}
	}
	content, err := app.RenderTemplate(m.pages, "detail", v)
	if err != nil {
		app.Fail(c, err)
		return
	}
	m.app.RenderPortal(c, http.StatusOK, d.Title, content)
}
