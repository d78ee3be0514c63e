package app

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/hibiken/asynqmon"
	"golang.org/x/crypto/bcrypt"
	"gorm.io/gorm"

	"marquee/policies"
	"marquee/tenants"
)

// supportEntryTTL is how long a console "enter portal" link stays usable.
const supportEntryTTL = time.Minute

func (a *App) registerConsole(r *Registrar) {
	r.Platform(http.MethodGet, "/console/login", Public(), a.consoleLoginPage)
	r.Platform(http.MethodPost, "/console/login", Public(), a.consoleLogin)
	r.Platform(http.MethodPost, "/console/logout", SupportOnly(), a.consoleLogout)
	r.Platform(http.MethodGet, "/console", SupportOnly(), a.consoleHome)
	r.Platform(http.MethodPost, "/console/tenants", SupportOnly(), a.consoleCreateTenant)
	r.Platform(http.MethodPost, "/console/tenants/:slug/suspend", SupportOnly(), a.consoleSetStatus(true))
	r.Platform(http.MethodPost, "/console/tenants/:slug/resume", SupportOnly(), a.consoleSetStatus(false))
	r.Platform(http.MethodPost, "/console/tenants/:slug/visit", SupportOnly(), a.consoleVisit)
	r.Platform(http.MethodGet, "/console/tenants/:slug", SupportOnly(), a.consoleTenant)
	r.Platform(http.MethodPost, "/console/tenants/:slug/jobs/retry", SupportOnly(), a.consoleRetryJob)
	mon := asynqmon.New(asynqmon.Options{RootPath: "/console/queues", RedisConnOpt: a.redisOpt})
	// asynqmon is a single-page app with its own API; all of it sits behind
	// the support login. Its API is not CSRF-protected by itself, so unsafe
	// methods are refused unless they come from the same origin.
	monitor := func(c *gin.Context) {
		if unsafeMethod(c.Request.Method) && !sameOrigin(c) {
			Fail(c, Forbidden("csrf_failed", "cross-origin request refused"))
			return
		}
		if c.Request.Method != http.MethodGet {
			mon.ServeHTTP(c.Writer, c.Request)
			return
		}
		w := &backLinkWriter{ResponseWriter: c.Writer, status: http.StatusOK}
		mon.ServeHTTP(w, c.Request)
		w.finish()
	}
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodDelete, http.MethodPatch, http.MethodPut} {
		r.Platform(m, "/console/queues/*path", SupportOnly(), monitor)
	}
	r.Platform(http.MethodGet, "/console/queues", SupportOnly(), monitor)
}

// backLinkWriter adds a way back to the console to the queue monitor's
// page: asynqmon is a separate single-page app with no link out of itself.
// Only its HTML answers are held and changed; assets and its API pass
// through untouched.
type backLinkWriter struct {
	gin.ResponseWriter
	status  int
	decided bool
	html    bool
	buf     bytes.Buffer
}

// consoleBackLink is fixed in the corner, above asynqmon's own layout.
const consoleBackLink = `<a href="/console" id="back-to-console" style="position:fixed;right:12px;bottom:12px;z-index:99999;` +
	`background:#1d1b26;color:#fff;padding:8px 14px;border-radius:6px;font:14px system-ui,sans-serif;text-decoration:none">← Back to the support console</a>`

func (w *backLinkWriter) decide() {
	if !w.decided {
		w.decided = true
		// asynqmon writes its index page without a Content-Type (Go
		// sniffs it): hold untyped answers too, and sniff them at the end.
		ct := w.Header().Get("Content-Type")
		w.html = ct == "" || strings.HasPrefix(ct, "text/html")
		if !w.html {
			w.ResponseWriter.WriteHeader(w.status)
		}
	}
}

func (w *backLinkWriter) WriteHeader(code int) { w.status = code }

func (w *backLinkWriter) Write(b []byte) (int, error) {
	w.decide()
	if w.html {
		return w.buf.Write(b)
	}
	return w.ResponseWriter.Write(b)
}

func (w *backLinkWriter) WriteString(s string) (int, error) { return w.Write([]byte(s)) }

func (w *backLinkWriter) finish() {
	w.decide()
	if !w.html {
		return
	}
	page := w.buf.Bytes()
	if w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", http.DetectContentType(page))
	}
	if i := bytes.LastIndex(page, []byte("</body>")); i >= 0 && strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") {
		page = append(page[:i:i], append([]byte(consoleBackLink), page[i:]...)...)
	}
	w.Header().Del("Content-Length")
	w.ResponseWriter.WriteHeader(w.status)
	_, _ = w.ResponseWriter.Write(page)
}

func sameOrigin(c *gin.Context) bool {
	origin := c.GetHeader("Origin")
	if origin == "" {
		origin = c.GetHeader("Referer")
	}
	if origin == "" {
		return false
	}
	o := strings.TrimPrefix(strings.TrimPrefix(origin, "http://"), "https://")
	host, _, _ := strings.Cut(o, "/")
	return host == c.Request.Host
}

// CreateSupportUser adds a platform support staff member.
func (a *App) CreateSupportUser(ctx context.Context, email, name, password string) (uuid.UUID, error) {
	email, err := normalizeEmail(email)
	if err != nil {
		return uuid.Nil, err
	}
	hash, err := a.hashPassword(password)
	if err != nil {
		return uuid.Nil, err
	}
	id := uuid.Must(uuid.NewV7())
	err = a.DB.WithContext(ctx).Exec(`INSERT INTO `+controlPlatformUsers+` (id, email, name, password_hash) VALUES (?, ?, ?, ?)
		ON CONFLICT (lower(email)) DO NOTHING`, id, email, name, hash).Error
	if err != nil {
		return uuid.Nil, err
	}
	err = a.DB.WithContext(ctx).Raw(`SELECT id FROM `+controlPlatformUsers+` WHERE lower(email) = ?`, email).Row().Scan(&id)
	return id, err
}

func (a *App) platformAudit(ctx context.Context, actor, action string, tenantID *uuid.UUID, detail string) {
	if err := a.DB.WithContext(ctx).Exec(`INSERT INTO `+controlPlatformAudit+` (actor, action, tenant_id, detail) VALUES (?, ?, ?, ?)`,
		actor, action, tenantID, detail).Error; err != nil {
		a.Log.Error("platform audit not recorded", "action", action, "err", err)
	}
}

func (a *App) supportEmail(ctx context.Context, id uuid.UUID) string {
	var email string
	if err := a.DB.WithContext(ctx).Raw(`SELECT email FROM `+controlPlatformUsers+` WHERE id = ?`, id).Row().Scan(&email); err != nil || email == "" {
		return "support:" + id.String()
	}
	return email
}

func (a *App) consoleLoginPage(c *gin.Context) {
	if PrincipalOf(c).Kind == KindSupport {
		c.Redirect(http.StatusSeeOther, "/console")
		return
	}
	a.renderLogin(c, http.StatusOK, loginView{Action: "/console/login", Next: safeNext(c.Query("next"), "/console", "/console")})
}

// refuseLogin shows a sign-in refusal on the form, with its status (and
// Retry-After when throttled); anything else is a failure of the server.
func (a *App) refuseLogin(c *gin.Context, v loginView, err error) {
	var e *Error
	if !errors.As(err, &e) {
		Fail(c, err)
		return
	}
	v.Error = e.Detail
	e.setHeaders(c)
	a.renderLogin(c, e.Status(), v)
}

func (a *App) consoleLogin(c *gin.Context) {
	v := loginView{Action: "/console/login", Next: safeNext(c.PostForm("next"), "/console", "/console"), Email: c.PostForm("email")}
	if !a.validPreAuthCSRF(c) {
		v.Error = "Your sign-in form expired. Please try again."
		a.renderLogin(c, http.StatusForbidden, v)
		return
	}
	ctx := c.Request.Context()
	email := strings.ToLower(strings.TrimSpace(c.PostForm("email")))
	attempt, err := a.beginSignIn(ctx, "support", email, c.ClientIP())
	if err != nil {
		a.refuseLogin(c, v, err)
		return
	}
	var rows []struct {
		ID           uuid.UUID `gorm:"column:id"`
		PasswordHash string    `gorm:"column:password_hash"`
	}
	if err := a.DB.WithContext(ctx).Raw(`SELECT id, password_hash FROM `+controlPlatformUsers+` WHERE lower(email) = ?`, email).Scan(&rows).Error; err != nil {
		a.signInUndone(ctx, attempt) // the database failed, not the password
		Fail(c, err)
		return
	}
	hash := a.dummyHash
	if len(rows) == 1 {
		hash = []byte(rows[0].PasswordHash)
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(c.PostForm("password"))) != nil || len(rows) != 1 {
		var id uuid.UUID
		if len(rows) == 1 {
			id = rows[0].ID
		}
		a.signInFailed(ctx, nil, id, attempt)
		v.Error = "email or password is wrong"
		a.renderLogin(c, http.StatusUnauthorized, v)
		return
	}
	a.signInSucceeded(ctx, attempt)
	token, s, err := a.CreateSession(ctx, KindSupport, nil, rows[0].ID, nil, 8*time.Hour)
	if err != nil {
		Fail(c, err)
		return
	}
	a.platformAudit(ctx, email, "console.login", nil, "")
	a.setCookie(c, ConsoleCookie, token, time.Until(s.ExpiresAt))
	c.Redirect(http.StatusSeeOther, v.Next)
}

func (a *App) consoleLogout(c *gin.Context) {
	_ = a.RevokeSession(c.Request.Context(), PrincipalOf(c).SessionID)
	a.clearCookie(c, ConsoleCookie)
	c.Redirect(http.StatusSeeOther, "/console/login")
}

func (a *App) consoleHome(c *gin.Context) {
	a.renderConsole(c, http.StatusOK, c.Query("flash"))
}

func (a *App) renderConsole(c *gin.Context, status int, flash string) {
	p := PrincipalOf(c)
	q := strings.TrimSpace(c.Query("q"))
	if len(q) > 100 {
		q = q[:100]
	}
	var list []tenants.Tenant
	var err error
	if q == "" {
		list, err = a.Tenants.List(c.Request.Context())
	} else {
		list, err = a.Tenants.Search(c.Request.Context(), q, 200)
	}
	if err != nil {
		Fail(c, err)
		return
	}
	csrf := a.CSRFToken(p.SessionID.String())
	content, err := RenderTemplate(coreTemplates, "console_tenants", struct {
		Tenants []tenants.Tenant
		CSRF    string
		Query   string
	}{list, csrf, q})
	if err != nil {
		Fail(c, err)
		return
	}
	if len(flash) > 200 {
		flash = flash[:200]
	}
	a.writePage(c, status, PageData{Title: "Tenants", Surface: "console", Home: "/console", LogoutPath: "/console/logout",
		CSRF: csrf, Who: a.supportEmail(c.Request.Context(), p.UserID), Flash: flash, Content: content})
}

func consoleRedirect(c *gin.Context, flash string) {
	c.Redirect(http.StatusSeeOther, "/console?flash="+urlQueryEscape(flash))
}

func (a *App) consoleCreateTenant(c *gin.Context) {
	ctx := c.Request.Context()
	slug, name := strings.TrimSpace(c.PostForm("slug")), strings.TrimSpace(c.PostForm("name"))
	if err := tenants.ValidateSlug(slug); err != nil {
		consoleRedirect(c, "Not created: the slug must start with a letter and hold 2 to 39 lower-case letters, digits or dashes.")
		return
	}
	if _, err := normalizeEmail(c.PostForm("owner_email")); err != nil {
		consoleRedirect(c, "Not created: the owner e-mail address is not valid.")
		return
	}
	if err := validatePassword(c.PostForm("owner_password")); err != nil {
		consoleRedirect(c, "Not created: the owner password must be 10 to 72 characters.")
		return
	}
	t, err := a.CreateTenant(ctx, slug, name, c.PostForm("owner_email"), "Owner", c.PostForm("owner_password"))
	if errors.Is(err, tenants.ErrExists) {
		consoleRedirect(c, "Not created: a chain with the slug "+slug+" already exists.")
		return
	}
	if err != nil {
		Fail(c, err)
		return
	}
	a.platformAudit(ctx, a.supportEmail(ctx, PrincipalOf(c).UserID), "tenant.create", &t.ID, slug)
	consoleRedirect(c, "Created "+slug+": its schema is migrated and it is active.")
}

// CreateTenant provisions a tenant and its first owner, on the server with
// the fewest tenants.
func (a *App) CreateTenant(ctx context.Context, slug, name, ownerEmail, ownerName, ownerPassword string) (tenants.Tenant, error) {
	return a.CreateTenantOn(ctx, slug, name, "", ownerEmail, ownerName, ownerPassword)
}

// CreateTenantOn is CreateTenant on a named database server ("" picks one).
func (a *App) CreateTenantOn(ctx context.Context, slug, name, server, ownerEmail, ownerName, ownerPassword string) (tenants.Tenant, error) {
	t, err := a.Tenants.CreateOn(ctx, slug, name, server)
	if err != nil {
		return t, err
	}
	u, err := a.CreateUser(ctx, t, ownerEmail, ownerName, ownerPassword)
	if err != nil {
		return t, fmt.Errorf("create owner: %w", err)
	}
	if err := a.Tenants.SetOwnerEmail(ctx, t.ID, u.Email); err != nil {
		return t, err
	}
	t.OwnerEmail = u.Email
	return t, a.Enforcer.Assign(t.Slug, policies.Assignment{UserID: u.ID.String(), Role: policies.RoleOwner})
}

func (a *App) consoleSetStatus(suspend bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		ctx, slug := c.Request.Context(), c.Param("slug")
		t, err := a.Tenants.Lookup(ctx, slug)
		if err != nil {
			consoleRedirect(c, "No tenant "+slug)
			return
		}
		who := a.supportEmail(ctx, PrincipalOf(c).UserID)
		why := strings.TrimSpace(c.PostForm("reason"))
		if len(why) > 500 {
			why = why[:500]
		}
		if suspend && len(why) < 3 {
			// Suspending stops a chain's sales and sign-ins: the reason
			// goes into its status history, and none is no reason.
			consoleRedirect(c, "Not suspended: give a reason for suspending "+slug+" (at least 3 characters).")
			return
		}
		change := tenants.Change{Actor: who, Reason: why}
		action, done := "tenant.resume", "resumed"
		if suspend {
			action, done, err = "tenant.suspend", "suspended", a.Tenants.SuspendAs(ctx, slug, change)
		} else {
			err = a.Tenants.ResumeAs(ctx, slug, change)
		}
		if err != nil {
			consoleRedirect(c, err.Error())
			return
		}
		a.platformAudit(ctx, who, action, &t.ID, why)
		consoleRedirect(c, t.Name+" ("+slug+") is now "+done+".")
	}
}

// consoleVisit opens an audited, time-limited support visit to a tenant's
// portal and sends the browser there with a one-time entry code.
func (a *App) consoleVisit(c *gin.Context) {
	ctx, p := c.Request.Context(), PrincipalOf(c)
	reason := strings.TrimSpace(c.PostForm("reason"))
	if len(reason) < 3 || len(reason) > 500 {
		consoleRedirect(c, "Give a reason for the visit (3 to 500 characters).")
		return
	}
	t, err := a.Tenants.Active(ctx, c.Param("slug"))
	if err != nil {
		consoleRedirect(c, "Only active tenants can be visited")
		return
	}
	ttl := a.Config.SupportVisitTTL
	visitID := uuid.Must(uuid.NewV7())
	email := a.supportEmail(ctx, p.UserID)
	err = a.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec(`INSERT INTO `+controlSupportVisits+` (id, support_user_id, tenant_id, reason, expires_at) VALUES (?, ?, ?, ?, ?)`,
			visitID, p.UserID, t.ID, reason, time.Now().Add(ttl)).Error; err != nil {
			return err
		}
		return a.consentGate(tx, t, p.UserID, visitID)
	})
	if errors.Is(err, errConsentNeeded) {
		if err := a.requestVisit(ctx, t, p.UserID, reason); err != nil {
			Fail(c, err)
			return
		}
		a.platformAudit(ctx, email, "tenant.visit.request", &t.ID, reason)
		consoleRedirect(c, t.Slug+": its owner approves support visits first; your request waits in their portal (Support access)")
		return
	}
	if err != nil {
		Fail(c, err)
		return
	}
	tid := t.ID
	token, _, err := a.CreateSession(ctx, KindSupportVisit, &tid, p.UserID, &visitID, ttl)
	if err != nil {
		Fail(c, err)
		return
	}
	if err := a.logSupportAccess(ctx, t, visitID, "visit started: "+reason, "", "", 0); err != nil {
		Fail(c, err)
		return
	}
	a.platformAudit(ctx, email, "tenant.visit", &t.ID, reason)
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	code := base64.RawURLEncoding.EncodeToString(b)
	if err := a.Redis.Set(ctx, a.supportEntryKey(t.Slug, code), token, supportEntryTTL).Err(); err != nil {
		Fail(c, err)
		return
	}
	c.Redirect(http.StatusSeeOther, a.TenantURL(c, t.Slug)+"/portal/support/enter?code="+code)
}

// TenantURL is the base URL of a tenant's host, on the scheme and port the
// request came in on.
func (a *App) TenantURL(c *gin.Context, slug string) string {
	scheme := "http"
	if c.Request.TLS != nil {
		scheme = "https"
	}
	// Only a numeric port is carried over: the Host header is the
	// client's, and anything else in it would make this link lead elsewhere.
	port := ""
	if _, p, err := net.SplitHostPort(c.Request.Host); err == nil && p != "" {
		if n, err := strconv.Atoi(p); err == nil && n > 0 && n < 65536 {
			port = ":" + strconv.Itoa(n)
		}
	}
	return scheme + "://" + slug + "." + a.Config.BaseDomain + port
}

// logSupportAccess appends to the visited tenant's access log.
func (a *App) logSupportAccess(ctx context.Context, t tenants.Tenant, visitID uuid.UUID, action, method, path string, status int) error {
	var supportUser uuid.UUID
	if err := a.DB.WithContext(ctx).Raw(`SELECT support_user_id FROM `+controlSupportVisits+` WHERE id = ?`, visitID).Row().Scan(&supportUser); err != nil {
		return err
	}
	email := a.supportEmail(ctx, supportUser)
	return a.Tx(ctx, t, func(tx *gorm.DB) error {
		return tx.Exec(`INSERT INTO support_access_log (visit_id, support_email, action, method, path, status) VALUES (?, ?, ?, ?, ?, ?)`,
			visitID, email, action, method, path, status).Error
	})
}
