package app

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/jobs"
	"marquee/policies"
	"marquee/tenants"
)

const idempotencySweepTask = "core:idempotency-sweep"

// idempotencyRetention is how long a stored response can be replayed.
const idempotencyRetention = 24 * time.Hour

// sweepIdempotencyKeys forgets keys older than the retention; idempotent.
func (a *App) sweepIdempotencyKeys(ctx context.Context, t tenants.Tenant, _ []byte) error {
	return a.Tx(ctx, t, func(tx *gorm.DB) error {
		return tx.Exec("DELETE FROM idempotency_keys WHERE created_at < ?", time.Now().Add(-idempotencyRetention)).Error
	})
}

// registerCore registers the routes the core itself owns, through the same
// Registrar the modules use.
func (a *App) registerCore(r *Registrar) {
	a.registerHealth(r)
	a.registerPages(r)
	a.registerConsole(r)
	a.registerConsent(r)
	r.API(http.MethodGet, "/openapi.json", Public(), "This API's OpenAPI document", Raw(a.openAPI).Produces(mediaJSON, nil))
	r.API(http.MethodPost, "/auth/login", Public(), "Sign in with email and password; returns a bearer token", Handle(a.apiLogin))
	r.API(http.MethodPost, "/auth/logout", SignedIn(), "End the current session", Handle(a.apiLogout)).NoBody()
	r.API(http.MethodGet, "/me", SignedIn(), "The signed-in principal and its roles", Handle(a.apiMe))
	r.API(http.MethodGet, "/users", Require("users", policies.Read), "List staff users", Handle(a.apiListUsers).Query("after", "cursor from the previous page's next").Query("limit", "1 to 200 (50)"))
	r.API(http.MethodPost, "/users", Require("users", policies.Write), "Add a staff user", Handle(a.apiCreateUser).Created())
	r.API(http.MethodGet, "/role-assignments", Require("role_assignments", policies.Read), "List role assignments", Handle(a.apiListAssignments).Query("user_id", "only this user's"))
	r.API(http.MethodPost, "/role-assignments", Require("role_assignments", policies.Write), "Grant a role", Handle(a.apiAssign).Created())
	r.API(http.MethodDelete, "/role-assignments", Require("role_assignments", policies.Write), "Revoke a role", Handle(a.apiUnassign).Query("user_id", "").Query("role", "").Query("venue_id", "for a venue role"))
	r.API(http.MethodGet, "/ledger", Require("ledger", policies.Read), "Ledger entries (JSON, or CSV with format=csv)",
		Raw(a.apiLedger).Produces(mediaJSON, Page[LedgerEntry]{}).Produces("text/csv", "").Query("format", "csv for the whole ledger as a file").Query("after", "cursor").Query("limit", "1 to 200 (50)"))
	r.API(http.MethodGet, "/ledger/verify", Require("ledger", policies.Read), "Verify the ledger's hash chain", Handle(a.apiLedgerVerify))
	// No role but the owner's ("*") is granted "export": the archive is
	// everything the chain holds, buyers' details included.
	r.API(http.MethodGet, "/export", Require("export", policies.Read), "Export all the chain's data: a zip of one CSV per table, manifest.json (row counts, SHA-256 per file, the ledger's verification) and a README on the format",
		Raw(a.apiExport).Produces("application/zip", ""))
	r.Task(idempotencySweepTask, a.sweepIdempotencyKeys)
	r.Every(jobs.Periodic{Cron: "17 * * * *", Type: idempotencySweepTask, Queue: jobs.QueueDefault, Bucket: time.Hour})
	r.API(http.MethodGet, "/support-access", Require("support_access", policies.Read), "Support staff visits and their changes", Handle(a.apiSupportAccess))
}

type loginRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

func (r loginRequest) Validate() error {
	if r.Email == "" || r.Password == "" {
		return Invalid("invalid_request", "email and password are required")
	}
	return nil
}

// LoginResponse is a new session.
type LoginResponse struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
	// SecurityNotices about this account (repeated failed sign-ins) are
	// handed over once, with the sign-in.
	SecurityNotices []SecurityNotice `json:"security_notices"`
}

func (a *App) apiLogin(c *gin.Context, req loginRequest) (LoginResponse, error) {
	token, s, err := a.Login(c.Request.Context(), TenantOf(c), req.Email, req.Password, c.ClientIP())
	if err != nil {
		return LoginResponse{}, err
	}
	notices, err := a.takeSecurityNotices(c.Request.Context(), TenantOf(c), s.UserID)
	return LoginResponse{Token: token, ExpiresAt: s.ExpiresAt, SecurityNotices: NonNil(notices)}, err
}

func (a *App) apiLogout(c *gin.Context, _ None) (None, error) {
	return None{}, a.RevokeSession(c.Request.Context(), PrincipalOf(c).SessionID)
}

// MeResponse is who is asking: a user, or a support visit.
type MeResponse struct {
	Kind             string                `json:"kind"`
	Tenant           TenantRef             `json:"tenant"`
	SessionExpiresAt time.Time             `json:"session_expires_at"`
	Roles            []policies.Assignment `json:"roles"`
	VisitID          *uuid.UUID            `json:"visit_id,omitempty"`
	ID               *uuid.UUID            `json:"id,omitempty"`
	Email            string                `json:"email,omitempty"`
	Name             string                `json:"name,omitempty"`
}

// TenantRef names a tenant.
type TenantRef struct {
	ID   uuid.UUID `json:"id"`
	Slug string    `json:"slug"`
	Name string    `json:"name"`
}

func (a *App) apiMe(c *gin.Context, _ None) (MeResponse, error) {
	p, t := PrincipalOf(c), TenantOf(c)
	out := MeResponse{Kind: p.Kind, Tenant: TenantRef{ID: t.ID, Slug: t.Slug, Name: t.Name}, SessionExpiresAt: p.ExpiresAt}
	if p.Kind == KindSupportVisit {
		out.Roles, out.VisitID = []policies.Assignment{{Role: policies.RoleSupport}}, &p.VisitID
		return out, nil
	}
	u, err := a.UserByID(c.Request.Context(), t, p.UserID)
	if err != nil {
		return out, err
	}
	roles, err := a.Enforcer.Assignments(t.Slug, p.UserID.String())
	out.ID, out.Email, out.Name, out.Roles = &u.ID, u.Email, u.Name, NonNil(roles)
	return out, err
}

// List is a whole list.
type List[T any] struct {
	Items []T `json:"items"`
}

// ListOf answers items as a list, [] when empty.
func ListOf[T any](items []T) List[T] { return List[T]{Items: NonNil(items)} }

// Page is one page of a list and the cursor of the next (absent on the last).
type Page[T any] struct {
	Items []T    `json:"items"`
	Next  string `json:"next,omitempty"`
}

// NonNil is list as it should be written in JSON: an empty list is [],
// never null.
func NonNil[T any](list []T) []T {
	if list == nil {
		return []T{}
	}
	return list
}

// pageParams reads cursor pagination: ?after=<cursor>&limit=<1..200>.
func pageParams(c *gin.Context) (after string, limit int, err error) {
	limit = 50
	if v := c.Query("limit"); v != "" {
		n, perr := strconv.Atoi(v)
		if perr != nil || n < 1 || n > 200 {
			return "", 0, InvalidField("invalid_limit", "limit", "limit must be an integer from 1 to 200")
		}
		limit = n
	}
	return c.Query("after"), limit, nil
}

func (a *App) apiListUsers(c *gin.Context, _ None) (Page[User], error) {
	after, limit, err := pageParams(c)
	if err != nil {
		return Page[User]{}, err
	}
	cursor := uuid.Nil
	if after != "" {
		if cursor, err = uuid.Parse(after); err != nil {
			return Page[User]{}, InvalidField("invalid_cursor", "after", "after must be a cursor returned by this list")
		}
	}
	var users []User
	err = a.Tx(c.Request.Context(), TenantOf(c), func(tx *gorm.DB) error {
		return tx.Raw("SELECT id, email, name, created_at FROM users WHERE id > ? ORDER BY id LIMIT ?", cursor, limit).Scan(&users).Error
	})
	out := Page[User]{Items: NonNil(users)}
	if len(users) == limit {
		out.Next = users[len(users)-1].ID.String()
	}
	return out, err
}

type createUserRequest struct {
	Email    string `json:"email"`
	Name     string `json:"name"`
	Password string `json:"password"`
}

func (a *App) apiCreateUser(c *gin.Context, req createUserRequest) (User, error) {
	return a.CreateUser(c.Request.Context(), TenantOf(c), req.Email, req.Name, req.Password)
}

func (a *App) apiListAssignments(c *gin.Context, _ None) (List[policies.Assignment], error) {
	userID := c.Query("user_id")
	if userID != "" {
		if _, err := uuid.Parse(userID); err != nil {
			return List[policies.Assignment]{}, InvalidField("invalid_user_id", "user_id", "user_id must be a UUID")
		}
	}
	list, err := a.Enforcer.Assignments(TenantOf(c).Slug, userID)
	return ListOf(list), err
}

type assignmentRequest struct {
	UserID  string `json:"user_id"`
	Role    string `json:"role"`
	VenueID string `json:"venue_id"`
}

// checkAssignment validates an assignment against this tenant's users and
// venues, and keeps the owner role in owners' hands.
func (a *App) checkAssignment(c *gin.Context, req assignmentRequest) (policies.Assignment, error) {
	ctx, t := c.Request.Context(), TenantOf(c)
	uid, err := uuid.Parse(req.UserID)
	if err != nil {
		return policies.Assignment{}, InvalidField("invalid_user_id", "user_id", "user_id must be a UUID")
	}
	if _, err := a.UserByID(ctx, t, uid); err != nil {
		return policies.Assignment{}, err
	}
	asg := policies.Assignment{UserID: uid.String(), Role: req.Role}
	if req.VenueID != "" {
		vid, err := uuid.Parse(req.VenueID)
		if err != nil {
			return policies.Assignment{}, InvalidField("invalid_venue_id", "venue_id", "venue_id must be a UUID")
		}
		if a.venues == nil {
			return policies.Assignment{}, NotFound("venue")
		}
		ok, err := a.venues.VenueExists(ctx, t, vid)
		if err != nil {
			return policies.Assignment{}, err
		}
		if !ok {
			return policies.Assignment{}, NotFound("venue")
		}
		asg.Venue = vid.String()
	}
	if req.Role == policies.RoleOwner && !a.isOwner(c) {
		return policies.Assignment{}, Forbidden("forbidden", "only owners grant or revoke the owner role")
	}
	return asg, nil
}

func (a *App) isOwner(c *gin.Context) bool {
	p := PrincipalOf(c)
	if p.Kind != KindUser {
		return false
	}
	roles, err := a.Enforcer.Assignments(TenantOf(c).Slug, p.UserID.String())
	if err != nil {
		return false
	}
	for _, r := range roles {
		if r.Role == policies.RoleOwner {
			return true
		}
	}
	return false
}

func (a *App) apiAssign(c *gin.Context, req assignmentRequest) (policies.Assignment, error) {
	asg, err := a.checkAssignment(c, req)
	if err != nil {
		return asg, err
	}
	return asg, assignmentError(a.Enforcer.Assign(TenantOf(c).Slug, asg))
}

func assignmentError(err error) error {
	if errors.Is(err, policies.ErrInvalidAssignment) {
		return Invalid("invalid_assignment", "%v", err)
	}
	return err
}

func (a *App) apiUnassign(c *gin.Context, _ None) (None, error) {
	req := assignmentRequest{UserID: c.Query("user_id"), Role: c.Query("role"), VenueID: c.Query("venue_id")}
	asg, err := a.checkAssignment(c, req)
	if err != nil {
		return None{}, err
	}
	held, err := a.unassignRole(c.Request.Context(), TenantOf(c), asg)
	if err != nil {
		return None{}, assignmentError(err)
	}
	if !held {
		return None{}, NotFound("role assignment")
	}
	return None{}, nil
}

func (a *App) apiLedger(c *gin.Context) {
	ctx, t := c.Request.Context(), TenantOf(c)
	if c.Query("format") == "csv" {
		a.ledgerCSV(ctx, c)
		return
	}
	after, limit, err := pageParams(c)
	if err != nil {
		Fail(c, err)
		return
	}
	var seq int64
	if after != "" {
		if seq, err = strconv.ParseInt(after, 10, 64); err != nil || seq < 0 {
			Fail(c, InvalidField("invalid_cursor", "after", "after must be a cursor returned by this list"))
			return
		}
	}
	entries, err := a.Ledger.Page(ctx, t, seq, limit)
	if err != nil {
		Fail(c, err)
		return
	}
	out := Page[LedgerEntry]{Items: NonNil(entries)}
	if len(entries) == limit {
		out.Next = strconv.FormatInt(entries[len(entries)-1].Seq, 10)
	}
	c.JSON(http.StatusOK, out)
}

// apiExport streams the chain's export archive and audits who took it.
func (a *App) apiExport(c *gin.Context) {
	ctx, t := c.Request.Context(), TenantOf(c)
	c.Header("Content-Type", "application/zip")
	c.Header("Content-Disposition", fmt.Sprintf(`attachment; filename="%s-export-%s.zip"`, t.Slug, a.Now().UTC().Format("20060102-150405")))
	m, err := a.ExportTenant(ctx, t, c.Writer)
	if err != nil {
		if !c.Writer.Written() {
			c.Writer.Header().Del("Content-Disposition")
			Fail(c, err)
			return
		}
		// The archive is cut short: its zip directory is missing, so no
		// reader takes it for whole.
		a.Log.Error("export failed midway", "tenant", t.Slug, "err", err)
		return
	}
	rows := int64(0)
	for _, tb := range m.Tables {
		rows += tb.Rows
	}
	a.platformAudit(context.WithoutCancel(ctx), "user:"+PrincipalOf(c).UserID.String(), "tenant.export", &t.ID, fmt.Sprintf("%d tables, %d rows", len(m.Tables), rows))
}

// ledgerCSV streams the whole ledger for accounting, page by page.
func (a *App) ledgerCSV(ctx context.Context, c *gin.Context) {
	t := TenantOf(c)
	c.Header("Content-Type", "text/csv; charset=utf-8")
	c.Header("Content-Disposition", fmt.Sprintf(`attachment; filename="%s-ledger-%s.csv"`, t.Slug, time.Now().UTC().Format("20060102")))
	w := csv.NewWriter(c.Writer)
	_ = w.Write([]string{"seq", "id", "recorded_at", "kind", "reference", "amount_minor", "currency", "memo", "hash"})
	var after int64
	for {
		page, err := a.Ledger.Page(ctx, t, after, 1000)
		if err != nil {
			_ = c.Error(err) // headers are gone; the truncated file fails its row count
			return
		}
		for _, e := range page {
			_ = w.Write([]string{strconv.FormatInt(e.Seq, 10), e.ID.String(), e.RecordedAt.UTC().Format(time.RFC3339Nano),
				e.Kind, csvSafe(e.Reference), strconv.FormatInt(e.AmountMinor, 10), e.Currency, csvSafe(e.Memo), fmt.Sprintf("%x", e.Hash)})
			after = e.Seq
		}
		w.Flush()
		if len(page) < 1000 {
			return
		}
	}
}

// csvSafe defuses spreadsheet formula injection in free text.
func csvSafe(s string) string {
	if s != "" && (s[0] == '=' || s[0] == '+' || s[0] == '-' || s[0] == '@') {
		return "'" + s
	}
	return s
}

func (a *App) apiLedgerVerify(c *gin.Context, _ None) (VerifyResult, error) {
	return a.Ledger.Verify(c.Request.Context(), TenantOf(c))
}

// AccessLogEntry is one line of the support access log.
type AccessLogEntry struct {
	ID           int64     `gorm:"column:id" json:"id"`
	VisitID      uuid.UUID `gorm:"column:visit_id" json:"visit_id"`
	SupportEmail string    `gorm:"column:support_email" json:"support_email"`
	At           time.Time `gorm:"column:at" json:"at"`
	Action       string    `gorm:"column:action" json:"action"`
	Method       string    `gorm:"column:method" json:"method,omitempty"`
	Path         string    `gorm:"column:path" json:"path,omitempty"`
	Status       int       `gorm:"column:status" json:"status,omitempty"`
}

func (a *App) supportAccessLog(ctx context.Context, c *gin.Context, limit int) ([]AccessLogEntry, error) {
	var out []AccessLogEntry
	err := a.Tx(ctx, TenantOf(c), func(tx *gorm.DB) error {
		return tx.Raw("SELECT id, visit_id, support_email, at, action, method, path, status FROM support_access_log ORDER BY id DESC LIMIT ?", limit).Scan(&out).Error
	})
	return out, err
}

func (a *App) apiSupportAccess(c *gin.Context, _ None) (List[AccessLogEntry], error) {
	list, err := a.supportAccessLog(c.Request.Context(), c, 500)
	return ListOf(list), err
}

// auditSupportVisit records every change a support visit makes, with its
// outcome, in the visited tenant's access log.
func (a *App) auditSupportVisit(c *gin.Context) {
	c.Next()
	p := PrincipalOf(c)
	if p.Kind != KindSupportVisit || !unsafeMethod(c.Request.Method) {
		return
	}
	ctx := context.WithoutCancel(c.Request.Context())
	path := c.FullPath()
	if path == "" {
		path = c.Request.URL.Path
	}
	if err := a.logSupportAccess(ctx, TenantOf(c), p.VisitID, "change", c.Request.Method, c.Request.URL.Path, c.Writer.Status()); err != nil {
		a.Log.Error("support access not logged", "visit", p.VisitID, "route", path, "err", err)
	}
}
