package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/migrations"
	"marquee/policies"
	"marquee/tenants"
)

// A chain may require its owner's approval before a support visit starts
// (control migration 00125). Support asks from the console; an owner grants
// the request for a time box within which the visit must start, or refuses
// it; a grant starts exactly one visit. Without the requirement a visit
// starts at once and is announced: every portal page shows it while it
// lasts, and the access log keeps it.

const controlVisitRequests = migrations.ControlSchema + ".support_visit_requests"

// Grant time boxes, in minutes.
const (
	minGrantMinutes     = 5
	maxGrantMinutes     = 24 * 60
	defaultGrantMinutes = 60
)

// VisitRequest is support's request to visit a chain that requires consent.
type VisitRequest struct {
	ID           uuid.UUID  `json:"id" gorm:"column:id"`
	SupportEmail string     `json:"support_email" gorm:"column:support_email"`
	Reason       string     `json:"reason" gorm:"column:reason"`
	RequestedAt  time.Time  `json:"requested_at" gorm:"column:requested_at"`
	Status       string     `json:"status" gorm:"column:status"` // pending, granted, refused, used
	DecidedAt    *time.Time `json:"decided_at,omitempty" gorm:"column:decided_at"`
	UsableUntil  *time.Time `json:"usable_until,omitempty" gorm:"column:usable_until"`
}

// ActiveVisit is a support visit going on now.
type ActiveVisit struct {
	SupportEmail string    `json:"support_email" gorm:"column:support_email"`
	Reason       string    `json:"reason" gorm:"column:reason"`
	StartedAt    time.Time `json:"started_at" gorm:"column:started_at"`
	ExpiresAt    time.Time `json:"expires_at" gorm:"column:expires_at"`
}

// SupportConsent is a chain's consent setting, its recent requests and the
// visits going on now.
type SupportConsent struct {
	Required     bool           `json:"required"`
	Requests     []VisitRequest `json:"requests"`
	ActiveVisits []ActiveVisit  `json:"active_visits"`
}

type consentSetting struct {
	Required bool `json:"required"`
}

type grantRequest struct {
	// Minutes the grant stays usable to start a visit (5 to 1440; 60).
	Minutes int `json:"minutes,omitempty"`
}

func (g grantRequest) Validate() error {
	if g.Minutes != 0 && (g.Minutes < minGrantMinutes || g.Minutes > maxGrantMinutes) {
		return InvalidField("invalid_minutes", "minutes", "a grant lasts %d to %d minutes", minGrantMinutes, maxGrantMinutes)
	}
	return nil
}

func (a *App) registerConsent(r *Registrar) {
	r.API(http.MethodGet, "/support/consent", Require("support_access", policies.Read), "Whether support visits need the owner's approval, recent requests and visits going on now", Handle(a.apiConsent))
	// Only the owner ("*") holds support_consent: who may let support in
	// is the owner's decision.
	r.API(http.MethodPut, "/support/consent", Require("support_consent", policies.Write), "Require (or stop requiring) the owner's approval before a support visit", Handle(a.apiSetConsent))
	r.API(http.MethodPost, "/support/requests/:requestId/grant", Require("support_consent", policies.Write), "Let support start one visit within a time box", Handle(a.apiGrantVisit).OptionalBody())
	r.API(http.MethodPost, "/support/requests/:requestId/refuse", Require("support_consent", policies.Write), "Refuse a support visit request", Handle(a.apiRefuseVisit)).NoBody()
	r.Portal(http.MethodPost, "/access-log/consent", Require("support_consent", policies.Write), a.portalSetConsent)
	r.Portal(http.MethodPost, "/access-log/requests/:requestId/:decision", Require("support_consent", policies.Write), a.portalDecideVisit)
}

// supportConsent reads a chain's setting, its last requests and its
// visits going on now.
func (a *App) supportConsent(ctx context.Context, t tenants.Tenant) (SupportConsent, error) {
	out := SupportConsent{Requests: []VisitRequest{}, ActiveVisits: []ActiveVisit{}}
	db := a.DB.WithContext(ctx)
	if err := db.Raw("SELECT support_consent_required FROM "+migrations.ControlSchema+".tenants WHERE id = ?", t.ID).Scan(&out.Required).Error; err != nil {
		return out, err
	}
	if err := db.Raw(`SELECT r.id, u.email AS support_email, r.reason, r.requested_at, r.status, r.decided_at, r.usable_until
		FROM `+controlVisitRequests+` r JOIN `+migrations.ControlSchema+`.platform_users u ON u.id = r.support_user_id
		WHERE r.tenant_id = ? ORDER BY r.requested_at DESC LIMIT 50`, t.ID).Scan(&out.Requests).Error; err != nil {
		return out, err
	}
	visits, err := a.activeVisits(ctx, t)
	out.Requests, out.ActiveVisits = NonNil(out.Requests), NonNil(visits)
	return out, err
}

// activeVisits lists the support visits going on now in a chain, latest
// ending last.
func (a *App) activeVisits(ctx context.Context, t tenants.Tenant) ([]ActiveVisit, error) {
	var visits []ActiveVisit
	err := a.DB.WithContext(ctx).Raw(`SELECT u.email AS support_email, v.reason, v.started_at, v.expires_at
		FROM `+controlSupportVisits+` v JOIN `+migrations.ControlSchema+`.platform_users u ON u.id = v.support_user_id
		WHERE v.tenant_id = ? AND v.expires_at > now() ORDER BY v.expires_at`, t.ID).Scan(&visits).Error
	return visits, err
}

func (a *App) apiConsent(c *gin.Context, _ None) (SupportConsent, error) {
	return a.supportConsent(c.Request.Context(), TenantOf(c))
}

func (a *App) setConsent(c *gin.Context, required bool) error {
	ctx, t := c.Request.Context(), TenantOf(c)
	if err := a.DB.WithContext(ctx).Exec("UPDATE "+migrations.ControlSchema+".tenants SET support_consent_required = ? WHERE id = ?", required, t.ID).Error; err != nil {
		return err
	}
	a.platformAudit(ctx, "user:"+PrincipalOf(c).UserID.String(), "tenant.support_consent", &t.ID, fmt.Sprintf("required=%v", required))
	return nil
}

func (a *App) apiSetConsent(c *gin.Context, req consentSetting) (SupportConsent, error) {
	if err := a.setConsent(c, req.Required); err != nil {
		return SupportConsent{}, err
	}
	return a.supportConsent(c.Request.Context(), TenantOf(c))
}

// decideVisit grants or refuses a pending request of this chain (a request
// of another chain is not found), once.
func (a *App) decideVisit(c *gin.Context, id uuid.UUID, grant bool, minutes int) (VisitRequest, error) {
	ctx, t := c.Request.Context(), TenantOf(c)
	status, until := "refused", "NULL"
	if grant {
		if minutes == 0 {
			minutes = defaultGrantMinutes
		}
		status, until = "granted", fmt.Sprintf("now() + make_interval(mins => %d)", minutes)
	}
	res := a.DB.WithContext(ctx).Exec("UPDATE "+controlVisitRequests+" SET status = ?, decided_by = ?, decided_at = now(), usable_until = "+until+
		" WHERE id = ? AND tenant_id = ? AND status = 'pending'", status, PrincipalOf(c).UserID, id, t.ID)
	if res.Error != nil {
		return VisitRequest{}, res.Error
	}
	consent, err := a.supportConsent(ctx, t)
	if err != nil {
		return VisitRequest{}, err
	}
	for _, r := range consent.Requests {
		if r.ID != id {
			continue
		}
		if res.RowsAffected == 0 {
			return r, Conflict("request_decided", "this request was already %s", r.Status)
		}
		a.platformAudit(ctx, "user:"+PrincipalOf(c).UserID.String(), "tenant.visit."+map[bool]string{true: "grant", false: "refuse"}[grant], &t.ID, r.SupportEmail+": "+r.Reason)
		return r, nil
	}
	return VisitRequest{}, NotFound("support visit request")
}

func (a *App) apiGrantVisit(c *gin.Context, req grantRequest) (VisitRequest, error) {
	id, err := PathUUID(c, "requestId", "support visit request")
	if err != nil {
		return VisitRequest{}, err
	}
	return a.decideVisit(c, id, true, req.Minutes)
}

func (a *App) apiRefuseVisit(c *gin.Context, _ None) (VisitRequest, error) {
	id, err := PathUUID(c, "requestId", "support visit request")
	if err != nil {
		return VisitRequest{}, err
	}
	return a.decideVisit(c, id, false, 0)
}

func (a *App) portalSetConsent(c *gin.Context) {
	if err := a.setConsent(c, c.PostForm("required") == "on"); err != nil {
		Fail(c, err)
		return
	}
	c.Redirect(http.StatusSeeOther, "/portal/access-log")
}

func (a *App) portalDecideVisit(c *gin.Context) {
	id, err := PathUUID(c, "requestId", "support visit request")
	if err != nil {
		Fail(c, err)
		return
	}
	var grant bool
	switch c.Param("decision") {
	case "grant":
		grant = true
	case "refuse":
	default:
		Fail(c, NotFound("page"))
		return
	}
	minutes := defaultGrantMinutes
	if v := c.PostForm("minutes"); v != "" {
		if _, err := fmt.Sscan(v, &minutes); err != nil || minutes < minGrantMinutes || minutes > maxGrantMinutes {
			Fail(c, InvalidField("invalid_minutes", "minutes", "a grant lasts %d to %d minutes", minGrantMinutes, maxGrantMinutes))
			return
		}
	}
	// A decision made twice (a double-submitted form) is not an error to
	// show: the page shows the decision that stands.
	var e *Error
	if _, err := a.decideVisit(c, id, grant, minutes); err != nil && (!errors.As(err, &e) || e.Code != "request_decided") {
		Fail(c, err)
		return
	}
	c.Redirect(http.StatusSeeOther, "/portal/access-log")
}

// errConsentNeeded stops a visit to a chain that requires its owner's
// approval when support holds no usable grant.
var errConsentNeeded = errors.New("the owner's approval is needed")

// consentGate decides, inside the transaction that records the visit,
// whether support may start it now. Without the requirement it may. With
// it, a usable grant of this support user is consumed by the visit
// (conditionally: one grant, one visit); without one, errConsentNeeded.
func (a *App) consentGate(tx *gorm.DB, t tenants.Tenant, supportUser, visitID uuid.UUID) error {
	var required bool
	if err := tx.Raw("SELECT support_consent_required FROM "+migrations.ControlSchema+".tenants WHERE id = ?", t.ID).Scan(&required).Error; err != nil {
		return err
	}
	if !required {
		return nil
	}
	res := tx.Exec(`UPDATE `+controlVisitRequests+` SET status = 'used', visit_id = ?
		WHERE id = (SELECT id FROM `+controlVisitRequests+`
		            WHERE tenant_id = ? AND support_user_id = ? AND status = 'granted' AND usable_until > now()
		            ORDER BY decided_at LIMIT 1 FOR UPDATE SKIP LOCKED)`, visitID, t.ID, supportUser)
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected == 0 {
		return errConsentNeeded
	}
	return nil
}

// requestVisit records support's request to visit (keeping the open one if
// this support user already asked).
func (a *App) requestVisit(ctx context.Context, t tenants.Tenant, supportUser uuid.UUID, reason string) error {
	return a.DB.WithContext(ctx).Exec(`INSERT INTO `+controlVisitRequests+` (id, tenant_id, support_user_id, reason) VALUES (?, ?, ?, ?)
		ON CONFLICT (tenant_id, support_user_id) WHERE status = 'pending' DO NOTHING`, uuid.Must(uuid.NewV7()), t.ID, supportUser, reason).Error
}

// supportHereNotice is the sentence every portal page of the chain shows
// while support staff are in it ("" when nobody is).
func (a *App) supportHereNotice(ctx context.Context, t tenants.Tenant) string {
	visits, err := a.activeVisits(ctx, t)
	if err != nil || len(visits) == 0 {
		return ""
	}
	v := visits[len(visits)-1] // the one that lasts longest
	return fmt.Sprintf("Platform support (%s) is in your portal until %s: %s. Everything they do is in the support access log.", v.SupportEmail, v.ExpiresAt.UTC().Format("15:04 UTC"), v.Reason)
}
