package app

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"net/mail"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"golang.org/x/crypto/bcrypt"
	"gorm.io/gorm"

	"marquee/migrations"
	"marquee/policies"
	"marquee/tenants"
)

// Principal kinds.
const (
	KindUser         = "user"          // a chain's staff member
	KindSupport      = "support"       // platform support staff, on the console
	KindSupportVisit = "support_visit" // support staff inside one tenant, audited
)

// Principal is who makes a request.
type Principal struct {
	Kind      string
	UserID    uuid.UUID
	TenantID  uuid.UUID // zero for KindSupport
	SessionID uuid.UUID
	VisitID   uuid.UUID
	ExpiresAt time.Time
	ViaCookie bool

	tenantSlug string
}

// Subject is the principal's Casbin subject. Support visits act as the
// "support" role of the visited tenant and nothing more.
func (p Principal) Subject() string {
	if p.Kind == KindSupportVisit {
		return policies.RoleSupport
	}
	return policies.Subject(p.tenantSlug, p.UserID.String())
}

// Session cookies and the CSRF header.
const (
	SessionCookie = "marquee_session"
	ConsoleCookie = "marquee_console"
	PreAuthCookie = "marquee_csrf"
	CSRFHeader    = "X-CSRF-Token"
	CSRFField     = "csrf_token"
)

// Session is a row of control.sessions.
type Session struct {
	ID        uuid.UUID  `gorm:"column:id"`
	Kind      string     `gorm:"column:kind"`
	TenantID  *uuid.UUID `gorm:"column:tenant_id"`
	UserID    uuid.UUID  `gorm:"column:user_id"`
	VisitID   *uuid.UUID `gorm:"column:visit_id"`
	ExpiresAt time.Time  `gorm:"column:expires_at"`
}

func hashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

func newToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return "mq_" + base64.RawURLEncoding.EncodeToString(b)
}

// CreateSession stores a new session (only its hash) and returns its token.
func (a *App) CreateSession(ctx context.Context, kind string, tenantID *uuid.UUID, userID uuid.UUID, visitID *uuid.UUID, ttl time.Duration) (string, Session, error) {
	token := newToken()
	s := Session{ID: uuid.Must(uuid.NewV7()), Kind: kind, TenantID: tenantID, UserID: userID, VisitID: visitID,
		ExpiresAt: time.Now().Add(ttl).UTC().Truncate(time.Microsecond)}
	err := a.DB.WithContext(ctx).Exec(
		`INSERT INTO `+controlSessions+` (id, token_hash, kind, tenant_id, user_id, visit_id, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		s.ID, hashToken(token), s.Kind, s.TenantID, s.UserID, s.VisitID, s.ExpiresAt).Error
	return token, s, err
}

// LookupSession finds the live session of a token.
func (a *App) LookupSession(ctx context.Context, token string) (Session, bool, error) {
	if !strings.HasPrefix(token, "mq_") || len(token) > 100 {
		return Session{}, false, nil
	}
	hash, now := hashToken(token), time.Now()
	if s, ok := a.sessions.get(hash, now); ok {
		return s, true, nil
	}
	var ss []Session
	err := a.DB.WithContext(ctx).Raw(
		`SELECT id, kind, tenant_id, user_id, visit_id, expires_at FROM `+controlSessions+`
		 WHERE token_hash = ? AND revoked_at IS NULL AND expires_at > now()`, hash).Scan(&ss).Error
	if err != nil || len(ss) == 0 {
		return Session{}, false, err
	}
	a.sessions.put(hash, ss[0], now)
	return ss[0], true, nil
}

// RevokeSession ends a session at once.
// Every instance forgets it: here directly, elsewhere through Redis (or, if
// that broadcast is lost, within sessionCacheTTL).
func (a *App) RevokeSession(ctx context.Context, id uuid.UUID) error {
	if err := a.DB.WithContext(ctx).Exec(`UPDATE `+controlSessions+` SET revoked_at = now() WHERE id = ? AND revoked_at IS NULL`, id).Error; err != nil {
		return err
	}
	a.sessions.drop(id)
	if err := a.Redis.Publish(ctx, a.RedisKey(sessionRevokedChannel), id.String()).Err(); err != nil {
		a.Log.Warn("session revocation not broadcast; other instances drop it within the cache TTL", "err", err)
	}
	return nil
}

func requestToken(c *gin.Context, cookie string) (token string, viaCookie bool, malformed bool) {
	if h := c.GetHeader("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(h, " ")
		if ok && scheme == "ApplePass" {
			// Apple Wallet's pass web service authenticates each pass, not
			// a principal: its routes are public and check the pass token.
			return "", false, false
		}
		if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
			return "", false, true
		}
		return strings.TrimSpace(tok), false, false
	}
	if v, err := c.Cookie(cookie); err == nil && v != "" {
		return v, true, false
	}
	return "", false, false
}

func unsafeMethod(m string) bool {
	return m != http.MethodGet && m != http.MethodHead && m != http.MethodOptions
}

// identify turns the bearer token or session cookie of a tenant request into
// a Principal. A token of another tenant is refused with 403.
func (a *App) identify(c *gin.Context) {
	token, viaCookie, malformed := requestToken(c, SessionCookie)
	if malformed {
		Fail(c, Unauthenticated("Authorization must be \"Bearer <token>\""))
		return
	}
	if token == "" {
		c.Next()
		return
	}
	s, ok, err := a.LookupSession(c.Request.Context(), token)
	if err != nil {
		Fail(c, err)
		return
	}
	if !ok {
		if viaCookie { // a stale cookie: carry on anonymous, and drop it
			a.clearCookie(c, SessionCookie)
			c.Next()
			return
		}
		Fail(c, Errorf(KindUnauthenticated, "invalid_token", "the token is unknown, expired or revoked"))
		return
	}
	t := TenantOf(c)
	if s.Kind == KindSupport {
		Fail(c, Forbidden("wrong_tenant", "support staff enter a chain only from the console"))
		return
	}
	if s.TenantID == nil || *s.TenantID != t.ID {
		Fail(c, Forbidden("wrong_tenant", "this token belongs to another chain"))
		return
	}
	p := Principal{Kind: s.Kind, UserID: s.UserID, TenantID: t.ID, SessionID: s.ID, ExpiresAt: s.ExpiresAt, ViaCookie: viaCookie, tenantSlug: t.Slug}
	if s.VisitID != nil {
		p.VisitID = *s.VisitID
	}
	if viaCookie && unsafeMethod(c.Request.Method) && !a.validCSRF(c, p.SessionID.String()) {
		Fail(c, Forbidden("csrf_failed", "missing or wrong CSRF token; reload the page"))
		return
	}
	c.Set(ctxPrincipal, p)
	c.Next()
}

// identifySupport reads the console session on the base host.
func (a *App) identifySupport(c *gin.Context) {
	token, viaCookie, _ := requestToken(c, ConsoleCookie)
	if token == "" || !viaCookie {
		c.Next()
		return
	}
	s, ok, err := a.LookupSession(c.Request.Context(), token)
	if err != nil {
		Fail(c, err)
		return
	}
	if !ok || s.Kind != KindSupport {
		a.clearCookie(c, ConsoleCookie)
		c.Next()
		return
	}
	p := Principal{Kind: KindSupport, UserID: s.UserID, SessionID: s.ID, ExpiresAt: s.ExpiresAt, ViaCookie: true}
	if unsafeMethod(c.Request.Method) && !a.validCSRF(c, p.SessionID.String()) {
		Fail(c, Forbidden("csrf_failed", "missing or wrong CSRF token; reload the page"))
		return
	}
	c.Set(ctxPrincipal, p)
	c.Next()
}

// CSRFToken is the token forms and scripts must send back with unsafe
// requests of a cookie session: an HMAC of the session id, so it needs no storage.
func (a *App) CSRFToken(sessionID string) string {
	m := hmac.New(sha256.New, []byte(a.Config.SecretKey))
	m.Write([]byte("csrf:" + sessionID))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (a *App) validCSRF(c *gin.Context, sessionID string) bool {
	got := c.GetHeader(CSRFHeader)
	if got == "" {
		got = c.PostForm(CSRFField)
	}
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(a.CSRFToken(sessionID))) == 1
}

// preAuthCSRF issues (or reuses) the pre-login CSRF cookie and returns the
// form token bound to it, for login forms.
func (a *App) preAuthCSRF(c *gin.Context) string {
	v, err := c.Cookie(PreAuthCookie)
	if err != nil || len(v) < 20 || len(v) > 64 {
		b := make([]byte, 18)
		_, _ = rand.Read(b)
		v = base64.RawURLEncoding.EncodeToString(b)
		a.setCookie(c, PreAuthCookie, v, time.Hour)
	}
	return a.CSRFToken("pre:" + v)
}

func (a *App) validPreAuthCSRF(c *gin.Context) bool {
	v, err := c.Cookie(PreAuthCookie)
	if err != nil || v == "" {
		return false
	}
	return a.validCSRF(c, "pre:"+v)
}

func (a *App) setCookie(c *gin.Context, name, value string, ttl time.Duration) {
	http.SetCookie(c.Writer, &http.Cookie{
		Name: name, Value: value, Path: "/", MaxAge: int(ttl.Seconds()),
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: c.Request.TLS != nil,
	})
}

func (a *App) clearCookie(c *gin.Context, name string) {
	http.SetCookie(c.Writer, &http.Cookie{Name: name, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode})
}

// User is a chain's staff member.
type User struct {
	ID        uuid.UUID `gorm:"column:id" json:"id"`
	Email     string    `gorm:"column:email" json:"email"`
	Name      string    `gorm:"column:name" json:"name"`
	CreatedAt time.Time `gorm:"column:created_at" json:"created_at"`
}

func validatePassword(pw string) error {
	if len(pw) < 10 || len(pw) > 72 {
		return InvalidField("weak_password", "password", "password must be 10 to 72 characters")
	}
	return nil
}

// hashPassword hashes a password with bcrypt at the configured cost.
func (a *App) hashPassword(pw string) (string, error) {
	if err := validatePassword(pw); err != nil {
		return "", err
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pw), a.Config.PasswordCost)
	return string(h), err
}

func normalizeEmail(email string) (string, error) {
	email = strings.TrimSpace(email)
	addr, err := mail.ParseAddress(email)
	if err != nil || addr.Address != email || len(email) > 254 {
		return "", InvalidField("invalid_email", "email", "email address is not valid")
	}
	return strings.ToLower(email), nil
}

// CreateUser adds a staff member to a tenant.
func (a *App) CreateUser(ctx context.Context, t tenants.Tenant, email, name, password string) (User, error) {
	email, err := normalizeEmail(email)
	if err != nil {
		return User{}, err
	}
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 200 {
		return User{}, InvalidField("invalid_name", "name", "name must be 1 to 200 characters")
	}
	hash, err := a.hashPassword(password)
	if err != nil {
		return User{}, err
	}
	u := User{ID: uuid.Must(uuid.NewV7()), Email: email, Name: name}
	err = a.Tx(ctx, t, func(tx *gorm.DB) error {
		return tx.Raw(`INSERT INTO users (id, email, name, password_hash) VALUES (?, ?, ?, ?) RETURNING created_at`,
			u.ID, u.Email, u.Name, hash).Row().Scan(&u.CreatedAt)
	})
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return User{}, Conflict("email_taken", "a user with this email already exists")
	}
	return u, err
}

// UserByID reads one user of a tenant.
func (a *App) UserByID(ctx context.Context, t tenants.Tenant, id uuid.UUID) (User, error) {
	var us []User
	err := a.Tx(ctx, t, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT id, email, name, created_at FROM users WHERE id = ?`, id).Scan(&us).Error
	})
	if err != nil {
		return User{}, err
	}
	if len(us) == 0 {
		return User{}, NotFound("user")
	}
	return us[0], nil
}

// Login checks a staff member's password and opens a session. Failed
// attempts are throttled per account and client address (throttle.go).
func (a *App) Login(ctx context.Context, t tenants.Tenant, email, password, clientIP string) (string, Session, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	attempt, err := a.beginSignIn(ctx, "tenant:"+t.Slug, email, clientIP)
	if err != nil {
		return "", Session{}, err
	}
	var rows []struct {
		ID           uuid.UUID `gorm:"column:id"`
		PasswordHash string    `gorm:"column:password_hash"`
	}
	err = a.Tx(ctx, t, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT id, password_hash FROM users WHERE lower(email) = ? AND disabled_at IS NULL`, email).Scan(&rows).Error
	})
	if err != nil {
		a.signInUndone(ctx, attempt) // the database failed, not the password
		return "", Session{}, err
	}
	hash, userID := a.dummyHash, uuid.Nil
	if len(rows) == 1 {
		hash, userID = []byte(rows[0].PasswordHash), rows[0].ID
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil || len(rows) != 1 {
		a.signInFailed(ctx, &t, userID, attempt)
		return "", Session{}, Errorf(KindUnauthenticated, "invalid_credentials", "email or password is wrong")
	}
	a.signInSucceeded(ctx, attempt)
	tid := t.ID
	return a.CreateSession(ctx, KindUser, &tid, rows[0].ID, nil, a.Config.SessionTTL)
}

func urlQueryEscape(s string) string { return url.QueryEscape(s) }

// maxNextLen bounds a post-login target; real portal paths are far shorter.
const maxNextLen = 2048

// safeNext returns next if it is a path on this host under home (home itself
// or below it), and fallback otherwise. Browsers repair what a server
// passes through: they drop tabs and newlines, read a backslash as a slash
// and resolve dot segments, so "/\t/evil.example", "/\\evil.example" and
// "/.//evil.example" all lead off-site. The target is therefore parsed,
// checked on both its raw and decoded forms, and rebuilt from the parsed
// path and query only (no scheme, host, user or fragment survive).
func safeNext(next, home, fallback string) string {
	if next == "" || len(next) > maxNextLen || !cleanTarget(next) {
		return fallback
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return fallback
	}
	// u.Path is decoded: "%2F", "%5C", "%09" and "%2e" show up here as
	// what they decode to.
	if !strings.HasPrefix(u.Path, "/") || !cleanTarget(u.Path) || strings.Contains(u.Path, "//") {
		return fallback
	}
	for _, seg := range strings.Split(u.Path, "/") {
		if seg == "." || seg == ".." {
			return fallback
		}
	}
	if u.Path != home && !strings.HasPrefix(u.Path, strings.TrimSuffix(home, "/")+"/") {
		return fallback
	}
	if q, err := url.QueryUnescape(u.RawQuery); err != nil || !cleanTarget(q) {
		return fallback
	}
	out := &url.URL{Path: u.Path, RawPath: u.RawPath, RawQuery: u.RawQuery}
	target := out.String()
	if !strings.HasPrefix(target, "/") || strings.HasPrefix(target, "//") {
		return fallback
	}
	return target
}

// cleanTarget refuses the characters browsers repair in URLs (control
// characters, which they strip, and backslashes, which they read as
// slashes), and invalid UTF-8.
func cleanTarget(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == '\\' || (r >= 0x80 && r < 0xa0) || unicode.In(r, unicode.Zs) && r != ' ' {
			return false
		}
	}
	return true
}

// The control-plane tables the core writes, named from the one constant of
// the control schema.
const (
	controlSessions      = migrations.ControlSchema + ".sessions"
	controlPlatformUsers = migrations.ControlSchema + ".platform_users"
	controlPlatformAudit = migrations.ControlSchema + ".platform_audit"
	controlSupportVisits = migrations.ControlSchema + ".support_visits"
)
