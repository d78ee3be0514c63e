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

// errorView is what an error page shows a person: a plain sentence, what
// they can do next, where to go back to, and the request id support asks for.
type errorView struct {
	Heading, Sentence, Detail, Hint string
	Back, BackLabel, RequestID      string
	Status                          int
}

// humanError says a refusal in words a person reads: the kind decides the
// sentence; the detail is shown only where modules write it for people
// (invalid input, conflicts, limits), never for internal failures.
func humanError(c *gin.Context, e *Error) errorView {
	v := errorView{Status: e.Status(), RequestID: c.GetString(ctxRequestID)}
	switch e.Kind {
	case KindNotFound:
		v.Heading, v.Sentence = "Page not found", "We could not find what you asked for. It may have been removed, or the link may be mistyped."
		if e.Code == "tenant_not_found" {
			v.Sentence = "There is no chain at this address. Check the link you followed."
		}
	case KindForbidden:
		v.Heading, v.Sentence = "Not allowed", "Your account cannot open this page."
		switch e.Code {
		case "forbidden":
			v.Hint = "Your role does not include this part of the chain. Ask an owner of the chain to give you access if you need it."
		case "csrf_failed":
			v.Sentence = "This form had expired. Go back, reload the page and try again."
		case "tenant_suspended":
			v.Sentence = "This chain is suspended for now. Contact platform support."
		default:
			v.Detail = e.Detail
		}
	case KindUnauthenticated:
		v.Heading, v.Sentence = "Please sign in", "You need to sign in to open this page."
	case KindInvalid, KindConflict, KindGone, KindPayloadTooLarge, KindUnprocessable:
		v.Heading, v.Sentence, v.Detail = "That did not work", "We could not do what you asked:", sentence(e.Detail)
		if e.Kind == KindGone {
			v.Heading = "No longer available"
		}
	case KindRateLimited:
		v.Heading, v.Sentence = "Too many tries", "Please wait a moment and try again."
	case KindUnavailable, KindUpstream, KindRequestTimeout:
		v.Heading, v.Sentence = "Please try again shortly", "This is temporarily unavailable. Wait a moment and reload the page."
	case KindMethodNotAllowed, KindUnsupportedMediaType:
		v.Heading, v.Sentence = "Page not found", "This address does not take that kind of request. Go back and use the page's own links and buttons."
	default:
		v.Heading, v.Sentence = "Something went wrong on our side", "The problem is recorded. Please try again; if it keeps happening, give support the request id below."
	}
	return v
}

// sentence starts a detail with a capital and ends it with a full stop.
func sentence(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return s
	}
	s = strings.ToUpper(s[:1]) + s[1:]
	if !strings.HasSuffix(s, ".") && !strings.HasSuffix(s, "?") && !strings.HasSuffix(s, "!") {
		s += "."
	}
	return s
}

// renderErrorPage is Fail's HTML form for browsers on page surfaces: inside
// the chrome of the surface the request was for (the portal keeps its
// navigation for a signed-in person), with a way back.
func renderErrorPage(c *gin.Context, e *Error) {
	v := humanError(c, e)
	s, _ := c.Get(ctxSurface)
	surface, _ := s.(Surface)
	a, _ := c.MustGet(ctxApp).(*App)
	d := PageData{Title: v.Heading, Tenant: TenantOf(c), Home: "/"}
	switch surface {
	case SurfacePortal:
		d.Surface, d.Home, d.LogoutPath = "portal", "/portal", "/portal/logout"
		v.Back, v.BackLabel = "/portal", "Back to the portal overview"
		if p := PrincipalOf(c); p.Kind != "" && a != nil {
			d.CSRF = a.CSRFToken(p.SessionID.String())
			d.Nav = a.navFor(c)
			d.Who = a.displayName(c)
			d.Path = c.Request.URL.Path
		} else {
			v.Back, v.BackLabel = "/portal/login", "Go to the sign-in page"
		}
	case SurfacePlatform:
		d.Surface, d.Home, d.LogoutPath = "console", "/console", "/console/logout"
		v.Back, v.BackLabel = "/console", "Back to the support console"
		if p := PrincipalOf(c); p.Kind == KindSupport && a != nil {
			d.CSRF = a.CSRFToken(p.SessionID.String())
			d.Who = a.supportEmail(c.Request.Context(), p.UserID)
		}
	default:
		d.Surface = "storefront"
		v.Back, v.BackLabel = "/", "Back to the events"
		if d.Tenant.Name == "" {
			v.Back, v.BackLabel = "/console", "Go to the start page"
		}
	}
	if e.Kind == KindUnauthenticated && surface == SurfacePortal {
		v.Back, v.BackLabel = "/portal/login", "Go to the sign-in page"
	}
	content, err := RenderTemplate(coreTemplates, "error", v)
	if err != nil {
		content = template.HTML(template.HTMLEscapeString(v.Sentence))
	}
	d.Content = content
	var buf bytes.Buffer
	if err := coreTemplates.ExecuteTemplate(&buf, "layout", d); err != nil {
		buf.Reset()
		buf.WriteString(template.HTMLEscapeString(v.Sentence))
	}
	c.Header("Content-Security-Policy", contentSecurityPolicy(c))
	c.Header("X-Content-Type-Options", "nosniff")
	c.Data(e.Status(), "text/html; charset=utf-8", buf.Bytes())
}

// noRoute answers a URL no route serves. A browser gets the error page of
// the surface the URL belongs to (the portal's with its navigation when the
// person is signed in); any other client a problem document.
func (a *App) noRoute(e *Error) gin.HandlerFunc {
	return func(c *gin.Context) {
		if !strings.Contains(c.GetHeader("Accept"), "text/html") || strings.HasPrefix(c.Request.URL.Path, "/api/") {
			Fail(c, e)
			return
		}
		slug, err := tenants.SlugFromRequest(c.Request.Host, c.GetHeader("X-Tenant"), a.Config.BaseDomain)
		switch {
		case err != nil:
			c.Set(ctxSurface, SurfaceStorefront)
			Fail(c, NotFoundCode("tenant_not_found", "no such chain"))
			return
		case slug == "":
			c.Set(ctxSurface, SurfacePlatform)
			a.lookupSupport(c)
		default:
			c.Set(ctxSurface, SurfaceStorefront)
			if p := c.Request.URL.Path; p == "/portal" || strings.HasPrefix(p, "/portal/") {
				c.Set(ctxSurface, SurfacePortal)
			}
			t, err := a.Tenants.Active(c.Request.Context(), slug)
			if err != nil {
				Fail(c, NotFoundCode("tenant_not_found", "no such chain"))
				return
			}
			c.Set(ctxTenant, t)
			a.lookupUser(c)
		}
		Fail(c, e)
	}
}

// lookupUser sets the principal of a portal session cookie, if one is
// valid for this tenant (for an error page's navigation; nothing is allowed
// by it).
func (a *App) lookupUser(c *gin.Context) {
	token, viaCookie, _ := requestToken(c, SessionCookie)
	if token == "" {
		return
	}
	s, ok, err := a.LookupSession(c.Request.Context(), token)
	t := TenantOf(c)
	if err != nil || !ok || s.Kind == KindSupport || s.TenantID == nil || *s.TenantID != t.ID {
		return
	}
	p := Principal{Kind: s.Kind, UserID: s.UserID, TenantID: t.ID, SessionID: s.ID, ExpiresAt: s.ExpiresAt, ViaCookie: viaCookie, tenantSlug: t.Slug}
	if s.VisitID != nil {
		p.VisitID = *s.VisitID
	}
	c.Set(ctxPrincipal, p)
}

// lookupSupport sets the principal of a console session cookie, if valid.
func (a *App) lookupSupport(c *gin.Context) {
	token, err := c.Cookie(ConsoleCookie)
	if err != nil || token == "" {
		return
	}
	s, ok, err := a.LookupSession(c.Request.Context(), token)
	if err != nil || !ok || s.Kind != KindSupport {
		return
	}
	c.Set(ctxPrincipal, Principal{Kind: KindSupport, UserID: s.UserID, SessionID: s.ID, ExpiresAt: s.ExpiresAt, ViaCookie: true})
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
	a.registerLedgerPages(r)
	a.registerUsersPages(r)
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
