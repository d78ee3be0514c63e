package app

import (
	"bytes"
	"embed"
	"html/template"
	"io/fs"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"marquee/policies"
	"marquee/tenants"
)

//go:embed web/templates/*.html web/static/*
var webFS embed.FS

// coreTemplates are the core's page templates, parsed once at build.
var coreTemplates = template.Must(template.New("core").ParseFS(webFS, "web/templates/*.html"))

// PageData feeds the shared layout.
type PageData struct {
	Title   string
	Surface string
	Tenant  tenants.Tenant
	Who     string
	Visit   string
	// SupportHere announces a support visit going on now to the chain's
	// own staff (see consent.go).
	SupportHere string
	Nav         []NavItem
	Path        string
	Home        string
	LogoutPath  string
	CSRF        string
	Flash       string
	// Manifest links a web app manifest (an installable page's).
	Manifest string
	Content  template.HTML
}

// RenderTemplate executes a template into HTML for a page's content.
func RenderTemplate(t *template.Template, name string, data any) (template.HTML, error) {
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, name, data); err != nil {
		return "", err
	}
	return template.HTML(buf.String()), nil // #nosec: html/template output is escaped
}

// RenderPortal writes a portal page: the layout with the navigation the
// principal may see, around the module's content.
func (a *App) RenderPortal(c *gin.Context, status int, title string, content template.HTML) {
	p, t := PrincipalOf(c), TenantOf(c)
	d := PageData{Title: title, Surface: "portal", Tenant: t, Path: c.Request.URL.Path, Home: "/portal",
		LogoutPath: "/portal/logout", Content: content}
	if v, ok := c.Get(ctxPageManifest); ok {
		d.Manifest, _ = v.(string)
	}
	if p.Kind != "" {
		d.CSRF = a.CSRFToken(p.SessionID.String())
		d.Nav = a.navFor(c)
		d.Who = a.displayName(c)
		if p.Kind == KindSupportVisit {
			d.Visit = p.ExpiresAt.UTC().Format("15:04 UTC")
		} else {
			d.SupportHere = a.supportHereNotice(c.Request.Context(), t)
		}
	}
	a.writePage(c, status, d)
}

// RenderStorefront writes a buyer-facing page of the tenant.
func (a *App) RenderStorefront(c *gin.Context, status int, title string, content template.HTML) {
	a.writePage(c, status, PageData{Title: title, Surface: "storefront", Tenant: TenantOf(c), Home: "/", Content: content})
}

func (a *App) writePage(c *gin.Context, status int, d PageData) {
	var buf bytes.Buffer
	if err := coreTemplates.ExecuteTemplate(&buf, "layout", d); err != nil {
		Fail(c, err)
		return
	}
	c.Header("Content-Security-Policy", contentSecurityPolicy(c))
	c.Header("X-Content-Type-Options", "nosniff")
	c.Data(status, "text/html; charset=utf-8", buf.Bytes())
}

// ctxPageManifest holds the web app manifest a page links.
const ctxPageManifest = "marquee.page_manifest"

// SetPageManifest makes this one portal page installable: the layout links
// the web app manifest at href (a same-origin path).
func SetPageManifest(c *gin.Context, href string) { c.Set(ctxPageManifest, href) }

// ctxPageSources holds the origins a page handler added to its policy.
const ctxPageSources = "marquee.page_sources"

// basePolicy is every page's Content-Security-Policy, directive by directive.
var basePolicy = [][]string{
	{"default-src", "'self'"},
	{"img-src", "'self'", "data:"},
	{"style-src", "'self'", "'unsafe-inline'"},
	{"script-src", "'self'", "'unsafe-inline'"},
	{"frame-ancestors", "'none'"},
}

// AllowPageSources widens this one page's Content-Security-Policy: a page
// that embeds a provider's script (the storefront's Stripe.js card form)
// names the origins it needs, and no other page gets them.
func AllowPageSources(c *gin.Context, directive string, sources ...string) {
	extra, _ := c.Get(ctxPageSources)
	m, _ := extra.(map[string][]string)
	if m == nil {
		m = map[string][]string{}
		c.Set(ctxPageSources, m)
	}
	m[directive] = append(m[directive], sources...)
}

// contentSecurityPolicy is the base policy plus the page's own sources. A
// directive the base lacks starts from default-src's sources, because adding
// it would otherwise narrow what default-src already allowed (connect-src
// without 'self' would stop the page's own API calls).
func contentSecurityPolicy(c *gin.Context) string {
	extra, _ := c.Get(ctxPageSources)
	m, _ := extra.(map[string][]string)
	var parts []string
	seen := map[string]bool{}
	for _, d := range basePolicy {
		seen[d[0]] = true
		parts = append(parts, strings.Join(append(slices.Clone(d), m[d[0]]...), " "))
	}
	names := make([]string, 0, len(m))
	for name := range m {
		if !seen[name] {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for _, name := range names {
		d := append([]string{name}, basePolicy[0][1:]...)
		parts = append(parts, strings.Join(append(d, m[name]...), " "))
	}
	return strings.Join(parts, "; ")
}

func (a *App) displayName(c *gin.Context) string {
	p := PrincipalOf(c)
	if p.Kind == KindSupportVisit {
		return "platform support"
	}
	u, err := a.UserByID(c.Request.Context(), TenantOf(c), p.UserID)
	if err != nil {
		return "unknown user"
	}
	return u.Name + " <" + u.Email + ">"
}

// navFor lists the navigation entries the principal may open.
func (a *App) navFor(c *gin.Context) []NavItem {
	var out []NavItem
	for _, n := range a.nav {
		switch n.Perm.Kind {
		case PermPublic, PermSignedIn:
			out = append(out, n)
		case PermCasbin:
			if a.CanAnywhere(c, n.Perm.Object, n.Perm.Action) {
				out = append(out, n)
			}
		}
	}
	slices.SortStableFunc(out, func(x, y NavItem) int { return x.Order - y.Order })
	return out
}

// renderErrorPage is Fail's HTML form for browsers on page surfaces.
func renderErrorPage(c *gin.Context, e *Error) {
	content, err := RenderTemplate(coreTemplates, "error", e)
	if err != nil {
		content = template.HTML(template.HTMLEscapeString(e.Detail))
	}
	d := PageData{Title: http.StatusText(e.Status()), Surface: "error", Tenant: TenantOf(c), Home: "/", Content: content}
	var buf bytes.Buffer
	if err := coreTemplates.ExecuteTemplate(&buf, "layout", d); err != nil {
		buf.Reset()
		buf.WriteString(template.HTMLEscapeString(e.Detail))
	}
	c.Data(e.Status(), "text/html; charset=utf-8", buf.Bytes())
}

func (a *App) registerPages(r *Registrar) {
	static, _ := fs.Sub(webFS, "web/static")
	fileServer := http.StripPrefix("/static/", http.FileServer(http.FS(static)))
	r.Global(http.MethodGet, "/static/*filepath", Public(), func(c *gin.Context) {
		c.Header("Cache-Control", "public, max-age=3600")
		fileServer.ServeHTTP(c.Writer, c.Request)
	})
	r.Portal(http.MethodGet, "/login", Public(), a.portalLoginPage)
	r.Portal(http.MethodPost, "/login", Public(), a.portalLogin)
	r.Portal(http.MethodPost, "/logout", SignedIn(), a.portalLogout)
	r.Portal(http.MethodGet, "", SignedIn(), a.portalHome)
	r.Portal(http.MethodGet, "/support/enter", Public(), a.portalSupportEnter)
	r.Portal(http.MethodGet, "/access-log", Require("support_access", policies.Read), a.portalAccessLog)
	r.Nav("Overview", "/portal", 0, SignedIn())
	r.Nav("Support access log", "/portal/access-log", 90, Require("support_access", policies.Read))
	r.Storefront(http.MethodGet, "/", Public(), a.storefrontHome)
}

type loginView struct {
	Action, CSRF, Next, Email, Error string
}

func (a *App) portalLoginPage(c *gin.Context) {
	if PrincipalOf(c).Kind != "" {
		c.Redirect(http.StatusSeeOther, "/portal")
		return
	}
	a.renderLogin(c, http.StatusOK, loginView{Action: "/portal/login", Next: safeNext(c.Query("next"), "/portal", "/portal")})
}

func (a *App) renderLogin(c *gin.Context, status int, v loginView) {
	v.CSRF = a.preAuthCSRF(c)
	content, err := RenderTemplate(coreTemplates, "login", v)
	if err != nil {
		Fail(c, err)
		return
	}
	if v.Action == "/console/login" {
		a.writePage(c, status, PageData{Title: "Support sign in", Surface: "console", Home: "/console", Content: content})
		return
	}
	a.RenderPortal(c, status, "Sign in", content)
}

func (a *App) portalLogin(c *gin.Context) {
	v := loginView{Action: "/portal/login", Next: safeNext(c.PostForm("next"), "/portal", "/portal"), Email: c.PostForm("email")}
	if !a.validPreAuthCSRF(c) {
		v.Error = "Your sign-in form expired. Please try again."
		a.renderLogin(c, http.StatusForbidden, v)
		return
	}
	token, s, err := a.Login(c.Request.Context(), TenantOf(c), c.PostForm("email"), c.PostForm("password"), c.ClientIP())
	if err != nil {
		a.refuseLogin(c, v, err)
		return
	}
	a.setCookie(c, SessionCookie, token, time.Until(s.ExpiresAt))
	c.Redirect(http.StatusSeeOther, v.Next)
}

func (a *App) portalLogout(c *gin.Context) {
	if err := a.RevokeSession(c.Request.Context(), PrincipalOf(c).SessionID); err != nil {
		Fail(c, err)
		return
	}
	a.clearCookie(c, SessionCookie)
	c.Redirect(http.StatusSeeOther, "/portal/login")
}

func (a *App) portalHome(c *gin.Context) {
	p := PrincipalOf(c)
	var roles []policies.Assignment
	if p.Kind == KindUser {
		roles, _ = a.Enforcer.Assignments(TenantOf(c).Slug, p.UserID.String())
	} else {
		roles = []policies.Assignment{{Role: policies.RoleSupport}}
	}
	var notices []SecurityNotice
	if p.Kind == KindUser {
		var err error
		if notices, err = a.takeSecurityNotices(c.Request.Context(), TenantOf(c), p.UserID); err != nil {
			Fail(c, err)
			return
		}
	}
	content, err := RenderTemplate(coreTemplates, "portal_home", struct {
		Who     string
		Roles   []policies.Assignment
		Notices []SecurityNotice
	}{a.displayName(c), roles, notices})
	if err != nil {
		Fail(c, err)
		return
	}
	a.RenderPortal(c, http.StatusOK, TenantOf(c).Name, content)
}

func (a *App) portalAccessLog(c *gin.Context) {
	list, err := a.supportAccessLog(c.Request.Context(), c, 500)
	if err != nil {
		Fail(c, err)
		return
	}
	consent, err := a.supportConsent(c.Request.Context(), TenantOf(c))
	if err != nil {
		Fail(c, err)
		return
	}
	content, err := RenderTemplate(coreTemplates, "access_log", struct {
		Log      []AccessLogEntry
		Consent  SupportConsent
		CanGrant bool
		CSRF     string
	}{list, consent, a.Can(c, "support_consent", policies.Write), a.CSRFToken(PrincipalOf(c).SessionID.String())})
	if err != nil {
		Fail(c, err)
		return
	}
	a.RenderPortal(c, http.StatusOK, "Support access log", content)
}

func (a *App) storefrontHome(c *gin.Context) {
	if a.storefrontLanding != "" {
		c.Redirect(http.StatusFound, a.storefrontLanding)
		return
	}
	t := TenantOf(c)
	content := template.HTML(`<section class="card"><p>Welcome to ` + template.HTMLEscapeString(t.Name) +
		`. No events are on sale yet.</p><p><a href="/portal">Staff sign in</a></p></section>`)
	a.RenderStorefront(c, http.StatusOK, t.Name, content)
}

// portalSupportEnter exchanges a one-time entry code minted by the console for
// a support-visit session cookie on this tenant's host.
func (a *App) portalSupportEnter(c *gin.Context) {
	code := c.Query("code")
	if len(code) < 20 || len(code) > 64 {
		Fail(c, Forbidden("invalid_entry", "this entry link is invalid"))
		return
	}
	token, err := a.Redis.GetDel(c.Request.Context(), a.supportEntryKey(TenantOf(c).Slug, code)).Result()
	if err != nil || token == "" {
		Fail(c, Forbidden("invalid_entry", "this entry link is invalid, used or expired; start again from the console"))
		return
	}
	s, ok, err := a.LookupSession(c.Request.Context(), token)
	if err != nil || !ok || s.Kind != KindSupportVisit || s.TenantID == nil || *s.TenantID != TenantOf(c).ID {
		Fail(c, Forbidden("invalid_entry", "this entry link is not valid for this chain"))
		return
	}
	a.setCookie(c, SessionCookie, token, time.Until(s.ExpiresAt))
	c.Redirect(http.StatusSeeOther, "/portal")
}

func (a *App) supportEntryKey(slug, code string) string {
	return a.RedisKey("support-entry", slug, code)
}
