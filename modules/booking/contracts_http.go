package booking

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"marquee/app"
	"marquee/modules/booking/internal/contract"
)

type templateRequest struct {
	Clauses []contract.Clause `json:"clauses"`
}

func (m *Module) getTemplate(c *gin.Context, _ app.None) (ContractTemplate, error) {
	return m.svc.Template(c.Request.Context(), app.TenantOf(c))
}

func (m *Module) putTemplate(c *gin.Context, req templateRequest) (ContractTemplate, error) {
	return m.svc.SaveTemplate(c.Request.Context(), app.TenantOf(c), req.Clauses, m.staff(c))
}

func (m *Module) contractAs(c *gin.Context, a Actor) (ContractView, error) {
	id, err := bookingID(c)
	if err != nil {
		return ContractView{}, err
	}
	return m.svc.Contract(c.Request.Context(), app.TenantOf(c), id, a)
}

func (m *Module) getContract(c *gin.Context, _ app.None) (ContractView, error) {
	return m.contractAs(c, Actor{Party: Promoter})
}

func (m *Module) agentContract(c *gin.Context, _ app.None) (ContractView, error) {
	a, err := m.agentActor(c)
	if err != nil {
		return ContractView{}, err
	}
	return m.contractAs(c, a)
}

func (m *Module) servePDF(c *gin.Context, a Actor) {
	id, err := bookingID(c)
	if err != nil {
		app.Fail(c, err)
		return
	}
	copyOf := c.DefaultQuery("copy", "original")
	if copyOf != "original" && copyOf != "signed" {
		app.Fail(c, app.InvalidField("invalid_request", "copy", "original or signed"))
		return
	}
	b, sum, err := m.svc.ContractPDF(c.Request.Context(), app.TenantOf(c), id, copyOf == "signed", a)
	if err != nil {
		app.Fail(c, err)
		return
	}
	name := "contract-" + id.String()[:8]
	if copyOf == "signed" {
		name += "-signed"
	}
	c.Header("Content-Disposition", `inline; filename="`+name+`.pdf"`)
	c.Header("X-Content-SHA256", sum)
	c.Data(http.StatusOK, "application/pdf", b)
}

func (m *Module) contractPDF(c *gin.Context) { m.servePDF(c, Actor{Party: Promoter}) }

func (m *Module) agentContractPDF(c *gin.Context) {
	a, err := m.agentActor(c)
	if err != nil {
		app.Fail(c, err)
		return
	}
	m.servePDF(c, a)
}

// signRequest is a click-to-sign: the signer's name and the SHA-256 of the
// document they read (the contract's sha256).
type signRequest struct {
	Name           string `json:"name"`
	DocumentSHA256 string `json:"document_sha256"`
}

func (m *Module) signAs(c *gin.Context, a Actor, req signRequest) (ContractView, error) {
	id, err := bookingID(c)
	if err != nil {
		return ContractView{}, err
	}
	return m.svc.Sign(c.Request.Context(), app.TenantOf(c), id, SignInput(req), a)
}

func (m *Module) signContract(c *gin.Context, req signRequest) (ContractView, error) {
	return m.signAs(c, m.staff(c), req)
}

func (m *Module) agentSign(c *gin.Context, req signRequest) (ContractView, error) {
	a, err := m.agentActor(c)
	if err != nil {
		return ContractView{}, err
	}
	return m.signAs(c, a, req)
}

func (m *Module) sealContract(c *gin.Context, _ app.None) (ContractView, error) {
	id, err := bookingID(c)
	if err != nil {
		return ContractView{}, err
	}
	return m.svc.Seal(c.Request.Context(), app.TenantOf(c), id, m.staff(c))
}

func (m *Module) esignContract(c *gin.Context, _ app.None) (ContractView, error) {
	id, err := bookingID(c)
	if err != nil {
		return ContractView{}, err
	}
	return m.svc.SendForESign(c.Request.Context(), app.TenantOf(c), m.esign, id, m.staff(c))
}
