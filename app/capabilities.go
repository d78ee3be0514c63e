package app

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"html/template"
	"log/slog"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"gorm.io/gorm"

	"marquee/config"
	"marquee/policies"
	"marquee/tenants"
)

// Core is what a module may use of the core: the capabilities the module
// contract grants, and nothing else. A module receives it from
// Registrar.Core instead of the App, so the raw pools (DB, SQL), the
// migration runner, tenant registry writes and policy writes are out of a
// module's reach by construction, not by convention.
//
// Field and method names are those of App, so module code reads the same.
type Core struct {
	// Config is a copy of the deployment's configuration, for the module's
	// own settings (payment keys, base domain, secret key). Changing it
	// changes nothing in the core.
	Config config.Config
	Log    *slog.Logger
	// Redis is the deployment's client, for scripts and pipelines. Every key
	// and channel a module uses is named through RedisKey, so deployments
	// sharing a Redis stay apart.
	Redis redis.UniversalClient
	// Jobs enqueues tenant tasks; task handlers and schedules are registered
	// on the Registrar.
	Jobs Enqueuer
	// Metrics registers the module's collectors with the process's registry.
	Metrics  prometheus.Registerer
	Ledger   *Ledger
	Realtime *Realtime
	// Tenants resolves a chain by its slug (a provider's webhook names the
	// chain it is about); it cannot create, change or suspend one.
	Tenants TenantLookup
	// Mail queues messages into the chain's outbox (inside the caller's
	// transaction) and sends them over SMTP with retries; see mail.go.
	Mail *Mailer

	a *App
}

// Enqueuer enqueues a tenant task (jobs.Jobs.Enqueue).
type Enqueuer interface {
	Enqueue(ctx context.Context, t tenants.Tenant, taskType string, payload any, opts ...asynq.Option) (*asynq.TaskInfo, error)
}

// TenantLookup resolves an active or suspended tenant by slug
// (tenants.Registry.Lookup).
type TenantLookup interface {
	Lookup(ctx context.Context, slug string) (tenants.Tenant, error)
}

func newCore(a *App) *Core {
	return &Core{Config: a.Config, Log: a.Log, Redis: a.Redis, Jobs: a.Jobs, Metrics: a.Metrics,
		Ledger: a.Ledger, Realtime: a.Realtime, Tenants: a.Tenants, Mail: a.Mail, a: a}
}

// RedisKey names a key or channel of this deployment (App.RedisKey).
func (c *Core) RedisKey(parts ...string) string { return c.a.RedisKey(parts...) }

// Tx runs fn in the tenant's scope (tenants.Tx): the one door to tenant data.
func (c *Core) Tx(ctx context.Context, t tenants.Tenant, fn func(tx *gorm.DB) error) error {
	return c.a.Tx(ctx, t, fn)
}

// TxWith is Tx with options (read-only, retried).
func (c *Core) TxWith(ctx context.Context, t tenants.Tenant, o tenants.TxOptions, fn func(tx *gorm.DB) error) error {
	return c.a.TxWith(ctx, t, o, fn)
}

// PgxTx runs fn in a pgx transaction in the tenant's scope, for hot paths.
func (c *Core) PgxTx(ctx context.Context, t tenants.Tenant, o tenants.TxOptions, fn func(tx *tenants.Pgx) error) error {
	return c.a.PgxTx(ctx, t, o, fn)
}

// PipedTx runs fn in a tenant transaction sent as pipelines, for hot paths.
func (c *Core) PipedTx(ctx context.Context, t tenants.Tenant, o tenants.TxOptions, fn func(p *tenants.Piped) error) error {
	return c.a.PipedTx(ctx, t, o, fn)
}

// PgxStatement runs one statement in the tenant's scope in one round trip.
func (c *Core) PgxStatement(ctx context.Context, t tenants.Tenant, o tenants.TxOptions, q string, args []any, scan func(pgx.Rows) error) error {
	return c.a.PgxStatement(ctx, t, o, q, args, scan)
}

// Now is the core's clock (App.Now).
func (c *Core) Now() time.Time { return c.a.Now() }

// Events returns the event directory. Registration order does not matter:
// it is read when called, and a module that declared Needs(EventDirectoryContract)
// never sees nil.
func (c *Core) Events() EventDirectory { return c.a.events }

// Venues returns the venue directory (nil when no module provides one; a
// module that declared Needs(VenueDirectoryContract) never sees nil), so a
// module can check a venue id it is handed (a staff member's home venues)
// without the owner's tables.
func (c *Core) Venues() VenueDirectory { return c.a.venues }

// Attendance returns the door count. Like Events, it is read when called;
// a module that declared Needs(AttendanceContract) never sees nil.
func (c *Core) Attendance() Attendance { return c.a.attendance }

// Holds returns the calendar holds (nil when no module provides them; a
// module that declared Needs(CalendarHoldsContract) never sees nil).
func (c *Core) Holds() CalendarHolds { return c.a.holds }

// TicketFacts returns the ticket facts, or nil when no module provides
// them: a caller that can work without them says what it used instead.
func (c *Core) TicketFacts() TicketFacts { return c.a.tickets }

// ChannelSales returns the channel sales (nil when no module provides them;
// a module that declared Needs(ChannelSalesContract) never sees nil).
func (c *Core) ChannelSales() ChannelSales { return c.a.channels }

// SigningKey derives a module's HMAC key for one purpose from the
// deployment's secret, so links signed for one purpose never verify for
// another, and the secret itself never leaves the core.
func (c *Core) SigningKey(purpose string) []byte { return c.a.signingKey(purpose) }

func (a *App) signingKey(purpose string) []byte {
	m := hmac.New(sha256.New, []byte(a.Config.SecretKey))
	m.Write([]byte("marquee signing key v1\x00" + purpose))
	return m.Sum(nil)
}

// Cancellations returns the modules told of event cancellations.
func (c *Core) Cancellations() []EventCancellations { return c.a.cancellations }

// Can reports whether the request's principal holds a chain-level permission.
func (c *Core) Can(g *gin.Context, object, action string) bool { return c.a.Can(g, object, action) }

// CanAnywhere reports whether the principal holds the permission at some venue.
func (c *Core) CanAnywhere(g *gin.Context, object, action string) bool {
	return c.a.CanAnywhere(g, object, action)
}

// CanAtVenue reports whether the principal holds the permission at a venue.
func (c *Core) CanAtVenue(g *gin.Context, venueID uuid.UUID, object, action string) bool {
	return c.a.CanAtVenue(g, venueID, object, action)
}

// UserByID reads a staff member of the chain (to name who acted, say).
func (c *Core) UserByID(ctx context.Context, t tenants.Tenant, id uuid.UUID) (User, error) {
	return c.a.UserByID(ctx, t, id)
}

// CSRFToken is the form token of a session (App.CSRFToken).
func (c *Core) CSRFToken(sessionID string) string { return c.a.CSRFToken(sessionID) }

// RenderPortal renders a page in the portal layout.
func (c *Core) RenderPortal(g *gin.Context, status int, title string, content template.HTML) {
	c.a.RenderPortal(g, status, title, content)
}

// RenderStorefront renders a page in the storefront layout.
func (c *Core) RenderStorefront(g *gin.Context, status int, title string, content template.HTML) {
	c.a.RenderStorefront(g, status, title, content)
}

// Idempotent honours Idempotency-Key on a route (App.Idempotent).
func (c *Core) Idempotent() gin.HandlerFunc { return c.a.Idempotent() }

// IdempotentBy is Idempotent with keys owned by owner(c) (App.IdempotentBy).
func (c *Core) IdempotentBy(owner func(*gin.Context) string) gin.HandlerFunc {
	return c.a.IdempotentBy(owner)
}

// Seeding is what a seed function may do beyond its module's Core: create
// the demo chain's staff and grant them roles, in that chain only. It exists
// only while demo data is seeded, so no request path can grant a role.
type Seeding struct {
	a *App
	t tenants.Tenant
}

// CreateUser adds a staff member to the chain being seeded.
func (s *Seeding) CreateUser(ctx context.Context, email, name, password string) (User, error) {
	return s.a.CreateUser(ctx, s.t, email, name, password)
}

// Assign grants a role in the chain being seeded.
func (s *Seeding) Assign(asg policies.Assignment) error {
	return s.a.Enforcer.Assign(s.t.Slug, asg)
}
