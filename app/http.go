package app

import (
	"context"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"marquee/policies"
	"marquee/tenants"
)

// Keys of values the middleware leaves on the gin context.
const (
	ctxRequestID = "marquee.request_id"
	ctxTenant    = "marquee.tenant"
	ctxPrincipal = "marquee.principal"
	ctxSurface   = "marquee.surface"
	ctxApp       = "marquee.app"
)

// TenantOf returns the tenant the request was resolved to.
func TenantOf(c *gin.Context) tenants.Tenant {
	t, _ := c.Get(ctxTenant)
	tt, _ := t.(tenants.Tenant)
	return tt
}

// PathID reads a UUID path parameter; a malformed one answers 404 (what was
// asked for cannot exist) and reports false.
func PathID(c *gin.Context, param, what string) (uuid.UUID, bool) {
	id, err := uuid.Parse(c.Param(param))
	if err != nil {
		Fail(c, NotFound(what))
		return uuid.Nil, false
	}
	return id, true
}

// PathUUID reads a UUID path parameter; a malformed one is a 404 (what was
// asked for cannot exist).
func PathUUID(c *gin.Context, param, what string) (uuid.UUID, error) {
	id, err := uuid.Parse(c.Param(param))
	if err != nil {
		return uuid.Nil, NotFound(what)
	}
	return id, nil
}

// PrincipalOf returns who is making the request (zero if anonymous).
func PrincipalOf(c *gin.Context) Principal {
	p, _ := c.Get(ctxPrincipal)
	pp, _ := p.(Principal)
	return pp
}

type httpMetrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "marquee_http_requests_total", Help: "HTTP requests by route, method and status.",
		}, []string{"route", "method", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "marquee_http_request_duration_seconds", Help: "HTTP request latency by route.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route", "method"}),
	}
	reg.MustRegister(m.requests, m.latency)
	return m
}

// Handler builds the HTTP handler of every registered route.
func (a *App) Handler() http.Handler {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	// Client addresses (per-IP limits, logs) come from the connection, never
	// from X-Forwarded-For, unless a deployment names its proxies.
	_ = r.SetTrustedProxies(a.Config.TrustedProxies)
	r.HandleMethodNotAllowed = true
	r.Use(func(c *gin.Context) { c.Set(ctxApp, a) }, a.requestID, a.observe, a.recoverPanic, a.limitBody, a.readBody)
	r.NoRoute(a.noRoute(NotFound("route")))
	r.NoMethod(func(c *gin.Context) {
		a.noRoute(Errorf(KindMethodNotAllowed, "method_not_allowed", "%s is not allowed here", c.Request.Method))(c)
	})
	for _, rt := range a.routes {
		var chain []gin.HandlerFunc
		chain = append(chain, surfaceMarker(rt.Surface))
		switch rt.Surface {
		case SurfacePlatform:
			chain = append(chain, a.requireBaseHost, a.identifySupport)
		case SurfaceGlobal:
		default:
			limit := a.shedder.limit
			switch {
			case rt.Stream:
				limit = a.streams.limit
			case rt.Light:
				limit = a.shedder.limitGlobal
			}
			chain = append(chain, a.resolveTenant(rt.Perm.DuringSuspension), limit, a.identify, a.auditSupportVisit)
		}
		chain = append(chain, a.authorize(rt.Perm), a.guardInput(rt))
		chain = append(chain, rt.handlers...)
		r.Handle(rt.Method, rt.Path, chain...)
	}
	return r
}

func surfaceMarker(s Surface) gin.HandlerFunc {
	return func(c *gin.Context) { c.Set(ctxSurface, s) }
}

var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{8,64}$`)

func (a *App) requestID(c *gin.Context) {
	id := c.GetHeader("X-Request-ID")
	if !requestIDPattern.MatchString(id) {
		id = uuid.NewString()
	}
	c.Set(ctxRequestID, id)
	c.Header("X-Request-ID", id)
	c.Next()
}

// observe logs every request and records its metrics. Query strings and
// headers are never logged: they may carry tokens.
func (a *App) observe(c *gin.Context) {
	start := time.Now()
	c.Next()
	route := c.FullPath()
	if route == "" {
		route = "unmatched"
	}
	status := c.Writer.Status()
	elapsed := time.Since(start)
	a.http.requests.WithLabelValues(route, c.Request.Method, http.StatusText(status)).Inc()
	a.http.latency.WithLabelValues(route, c.Request.Method).Observe(elapsed.Seconds())
	level := slog.LevelInfo
	switch {
	case status == http.StatusServiceUnavailable && len(c.Errors) == 0:
		level = slog.LevelWarn // shed on purpose under load, not a fault
	case status >= 500:
		level = slog.LevelError
	}
	attrs := []slog.Attr{
		slog.String("request_id", c.GetString(ctxRequestID)),
		slog.String("method", c.Request.Method),
		slog.String("route", route),
		slog.Int("status", status),
		slog.Duration("duration", elapsed),
	}
	if t := TenantOf(c); t.Slug != "" {
		attrs = append(attrs, slog.String("tenant", t.Slug))
		a.tally.add(t.Slug, status, start)
	}
	if p := PrincipalOf(c); p.Kind != "" {
		attrs = append(attrs, slog.String("principal", p.Kind+":"+p.UserID.String()))
	}
	if len(c.Errors) > 0 {
		attrs = append(attrs, slog.String("error", c.Errors.String()))
	}
	a.Log.LogAttrs(c.Request.Context(), level, "request", attrs...)
}

func (a *App) recoverPanic(c *gin.Context) {
	defer func() {
		if v := recover(); v != nil {
			if err, ok := v.(error); ok && errors.Is(err, http.ErrAbortHandler) {
				panic(v)
			}
			a.Log.Error("panic", "request_id", c.GetString(ctxRequestID), "panic", v)
			Fail(c, errors.New("panic"))
		}
	}()
	c.Next()
}

func (a *App) limitBody(c *gin.Context) {
	if c.Request.Body != nil {
		c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, a.Config.MaxBodyBytes)
	}
	c.Next()
}

// requireBaseHost keeps the console on the configured base host itself, not
// on tenant hosts nor on any other name pointed at the server.
func (a *App) requireBaseHost(c *gin.Context) {
	host := strings.TrimSuffix(strings.ToLower(c.Request.Host), ".")
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if host != strings.ToLower(a.Config.BaseDomain) {
		Fail(c, NotFound("route"))
		return
	}
	c.Next()
}

// movingRetryAfter is what a tenant being moved tells clients: a move of a
// chain's schema takes seconds to a minute.
const movingRetryAfter = 15 * time.Second

// resolveTenant binds the request to its tenant, refusing unknown ones (and
// suspended ones, unless the route is served during suspension) before
// anything else runs.
func (a *App) resolveTenant(duringSuspension bool) gin.HandlerFunc {
	return func(c *gin.Context) { a.bindTenant(c, duringSuspension) }
}

func (a *App) bindTenant(c *gin.Context, duringSuspension bool) {
	if len(c.Request.Header.Values("X-Tenant")) > 1 {
		// Proxies and servers disagree on which of several copies counts.
		Fail(c, Invalid("tenant_mismatch", "send one X-Tenant header"))
		return
	}
	slug, err := tenants.SlugFromRequest(c.Request.Host, c.GetHeader("X-Tenant"), a.Config.BaseDomain)
	if err != nil {
		if errors.Is(err, tenants.ErrInvalidSlug) {
			Fail(c, NotFoundCode("tenant_not_found", "no such chain"))
			return
		}
		Fail(c, Invalid("tenant_mismatch", "%v", err))
		return
	}
	if slug == "" {
		if c.Request.URL.Path == "/" {
			c.Redirect(http.StatusFound, "/console")
			c.Abort()
			return
		}
		Fail(c, NotFoundCode("tenant_required",
			"this route belongs to a chain: use {chain}.%s or the X-Tenant header", a.Config.BaseDomain))
		return
	}
	t, err := a.Tenants.Active(c.Request.Context(), slug)
	switch {
	case errors.Is(err, tenants.ErrSuspended) && duringSuspension:
	case errors.Is(err, tenants.ErrSuspended):
		Fail(c, Forbidden("tenant_suspended", "this chain is suspended; contact platform support"))
		return
	case errors.Is(err, tenants.ErrMoving):
		// Maintenance, not a refusal: even the routes served during a
		// suspension wait, since nothing may write while the copy runs.
		Fail(c, Unavailable("tenant_moving", movingRetryAfter, "this chain is under maintenance for a moment; retry shortly"))
		return
	case errors.Is(err, tenants.ErrNotFound), errors.Is(err, tenants.ErrNotActive):
		Fail(c, NotFoundCode("tenant_not_found", "no such chain"))
		return
	case err != nil:
		Fail(c, err)
		return
	}
	c.Set(ctxTenant, t)
	c.Next()
}

// authorize enforces the permission a route declared. Deny by default.
func (a *App) authorize(perm Permission) gin.HandlerFunc {
	return func(c *gin.Context) {
		p := PrincipalOf(c)
		switch perm.Kind {
		case PermPublic:
			c.Next()
			return
		case PermSupportOnly:
			if p.Kind != KindSupport {
				a.needLogin(c, "/console/login")
				return
			}
			c.Next()
			return
		case PermSignedIn:
			if p.Kind == "" {
				a.needLogin(c, "/portal/login")
				return
			}
			c.Next()
			return
		case PermCasbin:
			if p.Kind == "" {
				a.needLogin(c, "/portal/login")
				return
			}
			t := TenantOf(c)
			domain := policies.ChainDomain(t.Slug)
			if perm.VenueParam != "" {
				venue, err := uuid.Parse(c.Param(perm.VenueParam))
				if err != nil {
					Fail(c, NotFound("venue"))
					return
				}
				domain = policies.VenueDomain(t.Slug, venue.String())
			}
			ok, err := a.Enforcer.Allowed(p.Subject(), domain, perm.Object, perm.Action)
			if err != nil {
				Fail(c, err)
				return
			}
			if !ok {
				// A venue that does not exist in this tenant is 404 for
				// everyone, whatever their roles (checked only when denying).
				if perm.VenueParam != "" && a.venues != nil {
					venue, _ := uuid.Parse(c.Param(perm.VenueParam))
					if exists, err := a.venues.VenueExists(c.Request.Context(), t, venue); err == nil && !exists {
						Fail(c, NotFound("venue"))
						return
					}
				}
				Fail(c, Forbidden("forbidden", "your role does not allow you to "+perm.Action+" "+humanObject(perm.Object)+" here"))
				return
			}
			c.Next()
			return
		}
		Fail(c, Forbidden("forbidden", "route has no permission"))
	}
}

// Can reports whether the request's principal holds a chain-level permission
// (used to build navigation and to filter lists).
func (a *App) Can(c *gin.Context, object, action string) bool {
	p := PrincipalOf(c)
	if p.Kind == "" || p.Kind == KindSupport {
		return false
	}
	ok, err := a.Enforcer.Allowed(p.Subject(), policies.ChainDomain(TenantOf(c).Slug), object, action)
	return err == nil && ok
}

// CanAnywhere reports whether the principal holds a permission chain-wide or
// at any venue it has a role at (navigation, venue pickers).
func (a *App) CanAnywhere(c *gin.Context, object, action string) bool {
	if a.Can(c, object, action) { // chain-wide; also a support visit's role
		return true
	}
	p := PrincipalOf(c)
	if p.Kind != KindUser {
		return false
	}
	roles, err := a.Enforcer.Assignments(TenantOf(c).Slug, p.UserID.String())
	if err != nil {
		return false
	}
	for _, r := range roles {
		if r.Venue == "" {
			continue
		}
		if ok, err := a.Enforcer.Allowed(p.Subject(), policies.VenueDomain(TenantOf(c).Slug, r.Venue), object, action); err == nil && ok {
			return true
		}
	}
	return false
}

// CanAtVenue reports whether the principal holds a permission at one venue.
func (a *App) CanAtVenue(c *gin.Context, venueID uuid.UUID, object, action string) bool {
	p := PrincipalOf(c)
	if p.Kind == "" || p.Kind == KindSupport {
		return false
	}
	ok, err := a.Enforcer.Allowed(p.Subject(), policies.VenueDomain(TenantOf(c).Slug, venueID.String()), object, action)
	return err == nil && ok
}

func (a *App) needLogin(c *gin.Context, loginPath string) {
	if wantsHTML(c) && c.Request.Method == http.MethodGet {
		c.Redirect(http.StatusSeeOther, loginPath+"?next="+urlQueryEscape(c.Request.URL.Path))
		c.Abort()
		return
	}
	Fail(c, Unauthenticated("sign in first"))
}

// humanObject names a permission object in words ("calendar.events" →
// "events").
func humanObject(object string) string {
	if _, after, ok := strings.Cut(object, "."); ok {
		object = after
	}
	return strings.ReplaceAll(object, "_", " ")
}

func wantsHTML(c *gin.Context) bool {
	s, _ := c.Get(ctxSurface)
	surface, _ := s.(Surface)
	return (surface == SurfacePortal || surface == SurfaceStorefront || surface == SurfacePlatform) &&
		strings.Contains(c.GetHeader("Accept"), "text/html")
}

func (a *App) registerHealth(r *Registrar) {
	r.Global(http.MethodGet, "/healthz", Public(), func(c *gin.Context) {
		c.JSON(http.StatusOK, gin.H{"status": "ok"})
	})
	r.Global(http.MethodGet, "/readyz", Public(), func(c *gin.Context) {
		ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
		defer cancel()
		checks := gin.H{"postgres": "ok", "redis": "ok"}
		ready := true
		if err := a.SQL.PingContext(ctx); err != nil {
			checks["postgres"], ready = "unreachable", false
		}
		if err := a.Redis.Ping(ctx).Err(); err != nil {
			checks["redis"], ready = "unreachable", false
		}
		if !ready {
			Fail(c, &Error{Kind: KindUnavailable, Code: "not_ready", Detail: "a dependency is unreachable",
				Extra: map[string]any{"checks": checks}, RetryAfter: 5 * time.Second})
			return
		}
		c.JSON(http.StatusOK, gin.H{"status": "ready", "checks": checks})
	})
	// Metrics describe every tenant's traffic: they are served on the base
	// host only (never a chain's), and behind a token when one is set.
	metrics := promhttp.HandlerFor(a.Metrics, promhttp.HandlerOpts{})
	r.Platform(http.MethodGet, "/metrics", Public(), func(c *gin.Context) {
		if want := a.Config.MetricsToken; want != "" {
			got, _ := strings.CutPrefix(c.GetHeader("Authorization"), "Bearer ")
			if subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
				Fail(c, Unauthenticated("send the metrics token as a bearer token"))
				return
			}
		}
		metrics.ServeHTTP(c.Writer, c.Request)
	})
}
