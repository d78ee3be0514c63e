package booking

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/gin-gonic/gin"

	"marquee/app"
	"marquee/modules/booking/internal/terms"
	"marquee/policies"
)

type sheetLine struct {
	Section, Label, Amount, Note string
	Total                        bool
}

type settlementPageData struct {
	Title              string
	V                  SettlementView
	Lines              []sheetLine
	PDF, CSV, Internal string
	CanAck             bool
	AckAction, CSRF    string
	Token              string
	Party              Party
}

var totals = map[string]bool{"Gross": true, "Net gross": true, "Split point": true, "Earnings": true, "Walkout": true}

func sheetLines(v SettlementView) []sheetLine {
	var out []sheetLine
	for _, l := range v.Sheet.Lines() {
		amount := terms.Format(l.AmountMinor, v.Sheet.Currency)
		if l.Label == "Breakeven tickets" {
			amount = strconv.FormatInt(l.AmountMinor, 10)
		}
		out = append(out, sheetLine{l.Section, l.Label, amount, l.Note, totals[l.Label]})
	}
	return out
}

func acked(v SettlementView, p Party) bool {
	for _, a := range v.Acknowledgments {
		if a.Party == p {
			return true
		}
	}
	return false
}

func (m *Module) settlementPage(c *gin.Context) {
	id, err := bookingID(c)
	if err != nil {
		app.Fail(c, err)
		return
	}
	ctx, t := c.Request.Context(), app.TenantOf(c)
	internal := c.Query("view") == "internal" && m.app.Can(c, ObjSettlements, policies.Read)
	v, err := m.svc.SettlementAs(ctx, t, id, internal, Actor{Party: Promoter})
	if err != nil {
		app.Fail(c, err)
		return
	}
	d, err := m.svc.Get(ctx, t, id, Actor{Party: Promoter})
	if err != nil {
		app.Fail(c, err)
		return
	}
	base := "/api/v1/bookings/" + id.String() + "/settlement/export?view=" + v.View + "&format="
	p := settlementPageData{Title: d.Title + " — " + d.ArtistName, V: v, Lines: sheetLines(v), PDF: base + "pdf", CSV: base + "csv",
		Party: Promoter, AckAction: "/portal/bookings/" + id.String() + "/settlement/acknowledge",
		CSRF: m.app.CSRFToken(app.PrincipalOf(c).SessionID.String())}
	if !internal && m.app.Can(c, ObjSettlements, policies.Read) {
		p.Internal = "/portal/bookings/" + id.String() + "/settlement?view=internal"
	}
	p.CanAck = !internal && m.app.Can(c, ObjOffers, policies.Write) && !acked(v, Promoter)
	content, err := app.RenderTemplate(m.pages, "settlement", p)
	if err != nil {
		app.Fail(c, err)
		return
	}
	m.app.RenderPortal(c, http.StatusOK, "Settlement: "+d.Title, content)
}

func (m *Module) portalAcknowledge(c *gin.Context) {
	id, err := bookingID(c)
	if err != nil {
		app.Fail(c, err)
		return
	}
	if _, err := m.svc.Acknowledge(c.Request.Context(), app.TenantOf(c), id,
		AckInput{Name: c.PostForm("name"), SheetSHA256: c.PostForm("sheet_sha256")}, m.staff(c)); err != nil {
		app.Fail(c, err)
		return
	}
	c.Redirect(http.StatusSeeOther, "/portal/bookings/"+id.String()+"/settlement")
}

func (m *Module) agentSettlementPage(c *gin.Context) {
	a, _, token, ok := m.agentFromQuery(c)
	if !ok {
		return
	}
	id, err := bookingID(c)
	if err != nil {
		app.Fail(c, err)
		return
	}
	ctx, t := c.Request.Context(), app.TenantOf(c)
	v, err := m.svc.SettlementAs(ctx, t, id, false, a)
	if err != nil {
		app.Fail(c, err)
		return
	}
	d, err := m.svc.Get(ctx, t, id, a)
	if err != nil {
		app.Fail(c, err)
		return
	}
	q := "?token=" + url.QueryEscape(token)
	base := "/agent/bookings/" + id.String() + "/settlement/export" + q + "&format="
	p := settlementPageData{Title: d.Title + " — " + d.ArtistName, V: v, Lines: sheetLines(v), PDF: base + "pdf", CSV: base + "csv",
		Party: Artist, Token: token, CanAck: !acked(v, Artist)}
	content, err := app.RenderTemplate(m.pages, "settlement", p)
	if err != nil {
		app.Fail(c, err)
		return
	}
	c.Header("Referrer-Policy", "no-referrer")
	m.app.RenderStorefront(c, http.StatusOK, "Settlement: "+d.Title, content)
}

func (m *Module) agentSettlementFile(c *gin.Context) {
	a, _, _, ok := m.agentFromQuery(c)
	if !ok {
		return
	}
	c.Header("Referrer-Policy", "no-referrer")
	m.exportSettlement(c, a)
}
