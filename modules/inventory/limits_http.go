package inventory

import (
	"html/template"
	"net/http"

	"github.com/gin-gonic/gin"

	"marquee/app"
	"marquee/modules/inventory/internal/limits"
	"marquee/policies"
)

// Limits against hoarding and fraud: the chain's settings, the recorded
// decisions and box office's review queue.

// LimitSettings are a chain's limits (internal/limits).
type LimitSettings = limits.Settings

// RiskDecision is a recorded checkout decision.
type RiskDecision = limits.Decided

// CaptchaSolution answers the CAPTCHA of a challenge_required refusal.
type CaptchaSolution = limits.CaptchaSolution

// CaptchaChallenge is the CAPTCHA a challenge_required refusal carries.
type CaptchaChallenge = limits.CaptchaChallenge

func (m *Module) registerLimits(r *app.Registrar) {
	signed := app.SignedIn()
	r.API(http.MethodGet, "/limits", signed, "The chain's limits against hoarding and card testing (on or off, thresholds)", app.Handle(m.getLimits))
	r.API(http.MethodPut, "/limits", signed, "Turn the chain's limits on or off and tune their thresholds", app.Handle(m.putLimits))
	r.API(http.MethodGet, "/risk/decisions", signed, "Checkout decisions (challenge, review, block) with their score and reasons, the review queue first", app.Handle(m.listDecisions))
	r.API(http.MethodPost, "/risk/decisions/:decisionId/review", signed, "Review a decision waiting in the queue (approved or rejected)", app.Handle(m.reviewDecision))
	r.Portal(http.MethodGet, "/inventory-review", signed, m.portalReviewPage)
	r.Nav("Review queue", "/portal/inventory-review", 22, app.Require(ObjOrders, policies.Read))
}

func (m *Module) getLimits(c *gin.Context, _ app.None) (LimitSettings, error) {
	if !m.app.CanAnywhere(c, ObjInventory, policies.Read) {
		return LimitSettings{}, app.Forbidden("forbidden", "your roles do not allow reading the chain's limits")
	}
	return m.svc.limits.Settings(c.Request.Context(), app.TenantOf(c))
}

func (m *Module) putLimits(c *gin.Context, req LimitSettings) (LimitSettings, error) {
	if !m.app.Can(c, ObjInventory, policies.Write) {
		return LimitSettings{}, app.Forbidden("forbidden", "only chain-wide inventory managers tune the limits")
	}
	return m.svc.limits.SetSettings(c.Request.Context(), app.TenantOf(c), req)
}

func (m *Module) listDecisions(c *gin.Context, _ app.None) (app.List[RiskDecision], error) {
	if !m.app.CanAnywhere(c, ObjOrders, policies.Read) {
		return app.List[RiskDecision]{}, app.Forbidden("forbidden", "your roles do not allow reading orders")
	}
	list, err := m.svc.limits.Decisions(c.Request.Context(), app.TenantOf(c), 200)
	return app.ListOf(list), err
}

type reviewRequest struct {
	Outcome string `json:"outcome"`
}

func (r reviewRequest) Validate() error {
	if r.Outcome != "approved" && r.Outcome != "rejected" {
		return app.InvalidField("invalid_outcome", "outcome", "outcome must be approved or rejected")
	}
	return nil
}

// Reviewed is the answer to a review.
type Reviewed struct {
	Outcome string `json:"outcome"`
}

func (m *Module) reviewDecision(c *gin.Context, req reviewRequest) (Reviewed, error) {
	id, err := app.PathUUID(c, "decisionId", "decision")
	if err != nil {
		return Reviewed{}, err
	}
	if !m.app.CanAnywhere(c, ObjOrders, policies.Write) {
		return Reviewed{}, app.Forbidden("forbidden", "your roles do not allow reviewing orders")
	}
	return Reviewed(req), m.svc.limits.Resolve(c.Request.Context(), app.TenantOf(c), id, req.Outcome, app.PrincipalOf(c).UserID)
}

var reviewTemplate = template.Must(template.New("review").Parse(`<p>Checkouts the limits did not simply allow: blocked and challenged ones for the record, and those let through for review, waiting for box office. Limits are <strong>{{if .Enabled}}on{{else}}off{{end}}</strong> for this chain.</p>
<table class="grid"><thead><tr><th>When (UTC)</th><th>E-mail</th><th>Address</th><th>Device</th><th>Score</th><th>Action</th><th>Reasons</th><th>Review</th></tr></thead>
<tbody>{{range .Items}}<tr data-decision="{{.ID}}"><td>{{.CreatedAt.UTC.Format "2006-01-02 15:04:05"}}</td><td>{{.Email}}</td><td>{{.ClientIP}}</td><td title="{{.DeviceID}}">{{if .DeviceID}}{{slice .DeviceID 0 8}}…{{else}}<span class="muted">none</span>{{end}}</td><td>{{.Score}}</td><td><span class="badge badge-{{.Action}}">{{.Action}}</span></td>
<td>{{range .Reasons}}<div>{{.Detail}} <span class="muted">(+{{.Points}})</span></div>{{end}}</td>
<td>{{if .ReviewOutcome}}{{.ReviewOutcome}}{{else if eq .Action "review"}}waiting{{end}}</td></tr>
{{else}}<tr><td colspan="7">No decisions yet.</td></tr>{{end}}</tbody></table>`))

func (m *Module) portalReviewPage(c *gin.Context) {
	if !m.app.CanAnywhere(c, ObjOrders, policies.Read) {
		app.Fail(c, app.Forbidden("forbidden", "your roles do not allow reading orders"))
		return
	}
	ctx, t := c.Request.Context(), app.TenantOf(c)
	st, err := m.svc.limits.Settings(ctx, t)
	if err != nil {
		app.Fail(c, err)
		return
	}
	list, err := m.svc.limits.Decisions(ctx, t, 200)
	if err != nil {
		app.Fail(c, err)
		return
	}
	html, err := app.RenderTemplate(reviewTemplate, "review", struct {
		Enabled bool
		Items   []RiskDecision
	}{st.Enabled, list})
	if err != nil {
		app.Fail(c, err)
		return
	}
	m.app.RenderPortal(c, http.StatusOK, "Review queue", html)
}
