package booking

import (
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/gin-gonic/gin"

	"marquee/app"
	"marquee/modules/booking/internal/terms"
	"marquee/policies"
)

// contractSection is the "contract" template's data, for the portal and
// the agent's page alike.
type contractSection struct {
	C                      *ContractView
	PDF, SignedPDF         string
	SignAction, SealAction string
	CSRF                   string
	Party                  Party
	CanSign, CanSeal       bool
}

func signedBy(c *ContractView, p Party) bool {
	for _, s := range c.Signatures {
		if s.Party == p {
			return true
		}
	}
	return false
}

// portalContract is the detail page's contract section (nil without one).
func (m *Module) portalContract(c *gin.Context, d Detail) *contractSection {
	ct, err := m.svc.Contract(c.Request.Context(), app.TenantOf(c), d.ID, Actor{Party: Promoter})
	if err != nil {
		return nil
	}
	base := "/api/v1/bookings/" + d.ID.String() + "/contract/pdf"
	s := &contractSection{C: &ct, PDF: base, SignedPDF: base + "?copy=signed", Party: Promoter,
		SignAction: "/portal/bookings/" + d.ID.String() + "/contract/sign", SealAction: "/portal/bookings/" + d.ID.String() + "/contract/seal",
		CSRF: m.app.CSRFToken(app.PrincipalOf(c).SessionID.String())}
	write := m.app.Can(c, ObjOffers, policies.Write)
	s.CanSign = write && ct.Status == ContractSigning && ct.Provider == "click" && !signedBy(&ct, Promoter)
	s.CanSeal = write && ct.Status == ContractSealing
	return s
}

func (m *Module) portalSign(c *gin.Context) {
	id, err := bookingID(c)
	if err != nil {
		app.Fail(c, err)
		return
	}
	_, err = m.svc.Sign(c.Request.Context(), app.TenantOf(c), id, SignInput{Name: c.PostForm("name"), DocumentSHA256: c.PostForm("document_sha256")}, m.staff(c))
	if err != nil {
		app.Fail(c, err)
		return
	}
	c.Redirect(http.StatusSeeOther, "/portal/bookings/"+id.String()+"#contract")
}

func (m *Module) portalSeal(c *gin.Context) {
	id, err := bookingID(c)
	if err != nil {
		app.Fail(c, err)
		return
	}
	_, err = m.svc.Seal(c.Request.Context(), app.TenantOf(c), id, m.staff(c))
	var e *app.Error
	if err != nil && !(errors.As(err, &e) && e.Code == "contract_seal_failed") {
		app.Fail(c, err)
		return
	}
	// A failed attempt is shown on the page it returns to.
	c.Redirect(http.StatusSeeOther, "/portal/bookings/"+id.String()+"#contract")
}

// ---- the agent's pages, reached from the signed link (?token=)

type agentOffer struct {
	Summary
	Link, Guarantee string
}

type agentPage struct {
	Agent          Agent
	Chain          string
	Token          string
	Offers         []agentOffer
	Detail         *Detail
	Rows           []termRow
	Back           string
	Contract       *contractSection
	Settlement     bool
	SettlementLink string
}

func (m *Module) agentFromQuery(c *gin.Context) (Actor, Agent, string, bool) {
	token := c.Query("token")
	ag, err := m.svc.AgentFromLink(c.Request.Context(), app.TenantOf(c), token)
	if err != nil {
		app.Fail(c, err)
		return Actor{}, Agent{}, "", false
	}
	a := Actor{Kind: "agent", ID: ag.ID.String(), Name: ag.Name + " <" + ag.Email + ">", IP: c.ClientIP(), Party: Artist, AgentID: ag.ID}
	return a, ag, token, true
}

func (m *Module) renderAgent(c *gin.Context, title string, p agentPage) {
	t := app.TenantOf(c)
	p.Chain = t.Name
	content, err := app.RenderTemplate(m.pages, "agent", p)
	if err != nil {
		app.Fail(c, err)
		return
	}
	// The link's token is in the address: keep it out of Referer headers.
	c.Header("Referrer-Policy", "no-referrer")
	m.app.RenderStorefront(c, http.StatusOK, title, content)
}

func (m *Module) agentHomePage(c *gin.Context) {
	a, ag, token, ok := m.agentFromQuery(c)
	if !ok {
		return
	}
	items, err := m.svc.List(c.Request.Context(), app.TenantOf(c), ListFilter{Limit: 200}, a)
	if err != nil {
		app.Fail(c, err)
		return
	}
	p := agentPage{Agent: ag, Token: token, Offers: []agentOffer{}}
	q := "?token=" + url.QueryEscape(token)
	for _, it := range items {
		o := agentOffer{Summary: it, Link: "/agent/bookings/" + it.ID.String() + q}
		if it.Currency != "" {
			o.Guarantee = terms.Format(it.GuaranteeMinor, it.Currency)
		}
		p.Offers = append(p.Offers, o)
	}
	m.renderAgent(c, "Your offers", p)
}

func (m *Module) agentOfferPage(c *gin.Context) {
	a, ag, token, ok := m.agentFromQuery(c)
	if !ok {
		return
	}
	id, err := bookingID(c)
	if err != nil {
		app.Fail(c, err)
		return
	}
	ctx, t := c.Request.Context(), app.TenantOf(c)
	d, err := m.svc.Get(ctx, t, id, a)
	if err != nil {
		app.Fail(c, err)
		return
	}
	q := "?token=" + url.QueryEscape(token)
	p := agentPage{Agent: ag, Token: token, Detail: &d, Rows: termRows(d.Terms), Back: "/agent" + q}
	if ct, err := m.svc.Contract(ctx, t, id, a); err == nil {
		base := "/agent/bookings/" + id.String() + "/contract.pdf" + q
		p.Contract = &contractSection{C: &ct, PDF: base, SignedPDF: base + "&copy=signed", Party: Artist,
			CanSign: ct.Status == ContractSigning && ct.Provider == "click" && !signedBy(&ct, Artist)}
	}
	if d.AcceptedN != nil {
		p.Settlement, p.SettlementLink = true, "/agent/bookings/"+id.String()+"/settlement"+q
	}
	m.renderAgent(c, d.Title, p)
}

// agentContractFile serves the contract PDF to the agent's page (the link
// cannot set the API's header).
func (m *Module) agentContractFile(c *gin.Context) {
	a, _, _, ok := m.agentFromQuery(c)
	if !ok {
		return
	}
	c.Header("Referrer-Policy", "no-referrer")
	m.servePDF(c, a)
}

// utcp formats an optional time.
func utcp(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format("Mon 2 Jan 2006 15:04 UTC")
}
