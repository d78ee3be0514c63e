package staffing

import (
	"maps"
	"net/http"
	"slices"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"marquee/app"
	"marquee/policies"
)

// The chain's payroll: every venue's hours per person on the venues' own
// local dates, for chain-wide roles (staffing.payroll:read: chain admins and
// finance). Its page also serves a manager of some venues, who sees those
// venues only; everyone else is refused.

// payrollPeriod reads from and to; by default the last 30 days and the
// next 14 (UTC dates), so the nights just worked and the coming weekend's
// are in view.
func (m *Module) payrollPeriod(c *gin.Context) (string, string) {
	from, to := c.Query("from"), c.Query("to")
	if from == "" && to == "" {
		today := m.app.Now().UTC()
		return today.AddDate(0, 0, -30).Format(time.DateOnly), today.AddDate(0, 0, 14).Format(time.DateOnly)
	}
	return from, to
}

// payrollScope is who sees which venues: the whole chain (keep nil, chain
// true), the venues whose staffing the caller runs (staffing.shifts:write
// there: venue managers and leads), or nothing (a refusal). Reading shifts
// is not enough: promoters read coverage chain-wide, not pay.
func (m *Module) payrollScope(c *gin.Context) (keep func(uuid.UUID) bool, chain bool, err error) {
	if m.app.Can(c, ObjPayroll, policies.Read) {
		return nil, true, nil
	}
	if m.app.CanAnywhere(c, ObjShifts, policies.Write) {
		return func(v uuid.UUID) bool { return m.app.CanAtVenue(c, v, ObjShifts, policies.Write) }, false, nil
	}
	return nil, false, app.Forbidden("forbidden", "the chain's payroll is for chain-wide roles; venue managers read their venue's")
}

// chainPayroll answers the chain's payroll as CSV (the route's permission
// is chain-wide).
func (m *Module) chainPayroll(c *gin.Context) {
	from, to := c.Query("from"), c.Query("to")
	lines, err := m.svc.ChainPayroll(c.Request.Context(), app.TenantOf(c), from, to, nil)
	if err != nil {
		app.Fail(c, err)
		return
	}
	m.writeChainPayroll(c, from, to, lines)
}

func (m *Module) writeChainPayroll(c *gin.Context, from, to string, lines []ChainPayrollLine) {
	c.Header("Content-Disposition", `attachment; filename="payroll-chain-`+from+`-`+to+`.csv"`)
	c.Header("Content-Type", "text/csv; charset=utf-8")
	c.Status(http.StatusOK)
	if err := WriteChainPayrollCSV(c.Writer, from, to, lines); err != nil {
		m.app.Log.Warn("staffing: chain payroll csv", "err", err)
	}
}

// payrollCSV is the page's download: the venues the page shows.
func (m *Module) payrollCSV(c *gin.Context) {
	keep, _, err := m.payrollScope(c)
	if err != nil {
		app.Fail(c, err)
		return
	}
	from, to := m.payrollPeriod(c)
	lines, err := m.svc.ChainPayroll(c.Request.Context(), app.TenantOf(c), from, to, keep)
	if err != nil {
		app.Fail(c, err)
		return
	}
	m.writeChainPayroll(c, from, to, lines)
}

type payrollVenue struct {
	ID             uuid.UUID
	Name, Timezone string
	Lines          []payrollRow
	Minutes        int
	Totals         []string
}

type payrollRow struct {
	ChainPayrollLine
	Hours, Amount string
}

// payrollPage shows the payroll per venue, each on its local dates.
func (m *Module) payrollPage(c *gin.Context) {
	keep, chain, err := m.payrollScope(c)
	if err != nil {
		app.Fail(c, err)
		return
	}
	from, to := m.payrollPeriod(c)
	lines, err := m.svc.ChainPayroll(c.Request.Context(), app.TenantOf(c), from, to, keep)
	if err != nil {
		app.Fail(c, err)
		return
	}
	data := struct {
		From, To string
		Chain    bool
		Venues   []*payrollVenue
		Query    string
	}{From: from, To: to, Chain: chain, Query: "from=" + from + "&to=" + to}
	byVenue := map[uuid.UUID]*payrollVenue{}
	totals := map[uuid.UUID]map[string]int64{}
	for _, l := range lines {
		v := byVenue[l.VenueID]
		if v == nil {
			v = &payrollVenue{ID: l.VenueID, Name: l.VenueName, Timezone: l.Timezone}
			byVenue[l.VenueID], totals[l.VenueID] = v, map[string]int64{}
			data.Venues = append(data.Venues, v)
		}
		row := payrollRow{ChainPayrollLine: l, Hours: hours(l.Minutes)}
		if l.Currency != "" {
			row.Amount = app.FormatMoney(l.AmountMinor, l.Currency)
			totals[l.VenueID][l.Currency] += l.AmountMinor
		}
		v.Lines = append(v.Lines, row)
		v.Minutes += l.Minutes
	}
	for _, v := range data.Venues {
		for _, cur := range sortedKeys(totals[v.ID]) {
			v.Totals = append(v.Totals, app.FormatMoney(totals[v.ID][cur], cur))
		}
	}
	content, err := app.RenderTemplate(m.pages, "payroll", data)
	if err != nil {
		app.Fail(c, err)
		return
	}
	m.app.RenderPortal(c, http.StatusOK, "Payroll", content)
}

func sortedKeys(m map[string]int64) []string { return slices.Sorted(maps.Keys(m)) }
