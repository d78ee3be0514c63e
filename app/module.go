package app

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/jobs"
	"marquee/policies"
	"marquee/tenants"
)

// Module is a feature module. Given the core, it registers what it brings:
// API routes with their permissions, portal and storefront pages, navigation,
// task handlers and schedules, default grants, and demo seed data.
//
// Register keeps r.Core() (the capabilities a module may use) for its
// handlers and jobs; it never sees the App. Contracts go through r: a
// module provides one (ProvideEvents…), declares those it cannot work
// without (Needs), and names the modules whose demo data its seed builds on
// (Seed(fn, "calendar")). A contract provided twice, a need nobody
// provides, or a seed order that names a missing module or makes a cycle
// fails New.
type Module interface {
	Name() string
	Register(r *Registrar) error
}

// Surface is where a route is mounted.
type Surface int

// Surfaces. Tenant surfaces answer only on a tenant host (or with X-Tenant);
// platform surfaces only on the base host.
const (
	SurfaceAPI        Surface = iota // /api/v1 on a tenant
	SurfacePortal                    // /portal on a tenant
	SurfaceStorefront                // / on a tenant
	SurfacePlatform                  // base host: console
	SurfaceGlobal                    // any host, no tenant: probes, metrics, static assets
)

func (s Surface) String() string {
	return [...]string{"api", "portal", "storefront", "platform", "global"}[s]
}

func (s Surface) prefix() string {
	return [...]string{"/api/v1", "/portal", "", "", ""}[s]
}

// Permission is what a route requires. Every route declares one; the router
// refuses a route without it.
type Permission struct {
	Object     string
	Action     string
	VenueParam string // path parameter holding the venue id; empty: chain level
	Kind       PermissionKind
	// DuringSuspension keeps the route served while its tenant is suspended
	// (see EvenWhenSuspended).
	DuringSuspension bool
}

// EvenWhenSuspended keeps a route answering while its chain is suspended:
// suspension stops new sales, sign-ins and changes, but people who already
// paid keep their orders and tickets, and payments already started are
// still settled. Only routes that read what a buyer owns or settle a started
// payment may say so.
func (p Permission) EvenWhenSuspended() Permission {
	p.DuringSuspension = true
	return p
}

// PermissionKind says how a permission is checked.
type PermissionKind int

// Kinds of permission.
const (
	permUnset       PermissionKind = iota
	PermPublic                     // anyone, signed in or not
	PermSignedIn                   // any principal of the tenant
	PermCasbin                     // Object/Action checked by the enforcer
	PermSupportOnly                // platform support staff on the console
)

// Public marks a route open to everyone (login, storefront, health).
func Public() Permission { return Permission{Kind: PermPublic} }

// SignedIn requires a principal of the request's tenant and nothing more.
func SignedIn() Permission { return Permission{Kind: PermSignedIn} }

// Require requires a chain-level permission.
func Require(object, action string) Permission {
	return Permission{Kind: PermCasbin, Object: object, Action: action}
}

// RequireAtVenue requires a permission at the venue named by a path parameter:
// chain roles pass at every venue, venue roles only at their own.
func RequireAtVenue(object, action, venueParam string) Permission {
	return Permission{Kind: PermCasbin, Object: object, Action: action, VenueParam: venueParam}
}

// SupportOnly requires a signed-in support staff member on the console.
func SupportOnly() Permission { return Permission{Kind: PermSupportOnly} }

func (p Permission) String() string {
	switch p.Kind {
	case PermPublic:
		return "public"
	case PermSignedIn:
		return "signed-in"
	case PermSupportOnly:
		return "support"
	case PermCasbin:
		if p.VenueParam != "" {
			return fmt.Sprintf("%s:%s@venue(:%s)", p.Object, p.Action, p.VenueParam)
		}
		return p.Object + ":" + p.Action
	}
	return "unset"
}

// Route is one registered route, kept so that tests and the OpenAPI
// document can walk them.
type Route struct {
	Module  string
	Surface Surface
	Method  string
	Path    string // full path as mounted
	Perm    Permission
	Summary string
	// Stream marks a long-lived server-sent event stream: it is bounded per
	// client address instead of counting against the tenant's request slots.
	Stream bool
	// Light marks a route that does no database work (Redis and caches
	// only; a waiting room's join and status): it counts against the
	// server's in-flight bound but not its tenant's, which is sized to the
	// database pool, so a crowd waiting in a queue does not take the slots
	// its chain's buyers check out with.
	Light bool
	// NoBody says the route reads no request body: a non-empty one is
	// refused before any handler runs, without being read. GET, HEAD,
	// DELETE and OPTIONS routes take none; others declare it (NoBody).
	NoBody bool
	// Doc is what the OpenAPI document says about an API route's bodies.
	Doc      EndpointDoc
	handlers []gin.HandlerFunc
}

// Declared is a registered route, for declarations beyond its permission.
type Declared struct {
	app *App
	i   int
}

// NoBody declares that the route reads no request body (e.g. a POST that
// acts on its path alone): a non-empty body is refused with 400, or 413
// past the size limit, without reading it.
func (d Declared) NoBody() { d.app.routes[d.i].NoBody = true }

// Light declares a route that does no database work (see Route.Light): it
// is bounded by the server's in-flight bound only, not its tenant's.
func (d Declared) Light() Declared {
	d.app.routes[d.i].Light = true
	return d
}

func methodTakesNoBody(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodDelete || m == http.MethodOptions
}

// NavItem is a portal navigation entry, shown to those holding Perm.
type NavItem struct {
	Label string
	Path  string
	Perm  Permission
	Order int
}

// SeedFunc fills a demo tenant with a module's sample data. s creates the
// chain's demo staff and grants their roles.
type SeedFunc func(ctx context.Context, t tenants.Tenant, s *Seeding) error

// VenueDirectory is provided by the module that owns venues, so the core can
// check venue ids (role assignments) without knowing that module.
type VenueDirectory interface {
	VenueExists(ctx context.Context, t tenants.Tenant, id uuid.UUID) (bool, error)
}

// EventInfo is what other modules may know about a scheduled event. Times
// are UTC; Timezone is the venue's IANA zone for display.
type EventInfo struct {
	ID            uuid.UUID `json:"id"`
	VenueID       uuid.UUID `json:"venue_id"`
	VenueName     string    `json:"venue_name"`
	VenueCapacity int       `json:"venue_capacity"`
	Latitude      float64   `json:"latitude"`
	Longitude     float64   `json:"longitude"`
	Timezone      string    `json:"timezone"`
	Title         string    `json:"title"`
	Category      string    `json:"category"`
	Status        string    `json:"status"`
	StartsAt      time.Time `json:"starts_at"`
	EndsAt        time.Time `json:"ends_at"`
	Promoter      string    `json:"promoter,omitempty"`
	// The on-sale schedule: nil OnSaleAt means on sale as soon as the status
	// says so. A presale (window and code) always ends by OnSaleAt.
	OnSaleAt        *time.Time `json:"on_sale_at,omitempty"`
	PresaleStartsAt *time.Time `json:"presale_starts_at,omitempty"`
	PresaleEndsAt   *time.Time `json:"presale_ends_at,omitempty"`
	PresaleCode     string     `json:"-"` // never shown to buyers
}

// SaleGate decides whether a buyer may hold tickets of the event at now,
// by its on-sale schedule alone (the status and each tier's own sale window
// are checked by the seller): from OnSaleAt on, anyone; inside the presale
// window, a buyer who gives its code (compared without regard to case);
// otherwise nobody. It answers sale_not_started or presale_code_invalid.
func (e EventInfo) SaleGate(now time.Time, code string) error {
	if e.OnSaleAt == nil || !now.Before(*e.OnSaleAt) {
		return nil
	}
	inPresale := e.PresaleStartsAt != nil && e.PresaleEndsAt != nil && e.PresaleCode != "" &&
		!now.Before(*e.PresaleStartsAt) && now.Before(*e.PresaleEndsAt)
	loc, err := Timezone(e.Timezone)
	if err != nil {
		loc = time.UTC
	}
	if !inPresale {
		err := Conflict("sale_not_started", "Tickets go on sale %s.", e.OnSaleAt.In(loc).Format("Mon 2 Jan 2006, 15:04 MST")).
			With("on_sale_at", e.OnSaleAt.UTC())
		if e.PresaleStartsAt != nil && now.Before(*e.PresaleStartsAt) {
			err = err.With("presale_starts_at", e.PresaleStartsAt.UTC())
		}
		return err
	}
	given := sha256.Sum256([]byte(strings.ToUpper(strings.TrimSpace(code))))
	want := sha256.Sum256([]byte(e.PresaleCode))
	if code == "" || subtle.ConstantTimeCompare(given[:], want[:]) != 1 {
		return Forbidden("presale_code_invalid", fmt.Sprintf("This is the presale, until %s: enter the presale code you were given (or come back for the on-sale, %s).",
			e.PresaleEndsAt.In(loc).Format("Mon 2 Jan, 15:04 MST"), e.OnSaleAt.In(loc).Format("Mon 2 Jan, 15:04 MST"))).With("on_sale_at", e.OnSaleAt.UTC())
	}
	return nil
}

// EventFilter selects events from the EventDirectory. Zero fields do not filter.
type EventFilter struct {
	Statuses []string
	VenueID  uuid.UUID
	Category string
	From, To time.Time // events starting in [From, To)
	After    uuid.UUID // cursor: events ordered by (starts_at, id) after this one
	Limit    int       // default 50, at most 500
}

// EventDirectory is provided by the module that owns events, so that other
// modules (inventory, staffing, ops) can look them up without its tables.
type EventDirectory interface {
	// Event returns one event, or an *Error with Status 404.
	Event(ctx context.Context, t tenants.Tenant, id uuid.UUID) (EventInfo, error)
	// Events lists events ordered by start time.
	Events(ctx context.Context, t tenants.Tenant, f EventFilter) ([]EventInfo, error)
}

// CancellationImpact is what cancelling an event undoes in a module that
// sold for it, for the staff member confirming the cancellation.
type CancellationImpact struct {
	Tickets int // valid tickets that will be voided
	Orders  int // paid orders that will be refunded in full
}

// EventCancellations is provided by a module that sells for events
// (inventory), so the module that owns events can tell it of a cancellation
// without knowing it, and it never reads the owner's tables.
type EventCancellations interface {
	// CancellationImpact says, per event, what cancelling it would undo
	// (events with nothing to undo may be missing from the map).
	CancellationImpact(ctx context.Context, t tenants.Tenant, eventIDs []uuid.UUID) (map[uuid.UUID]CancellationImpact, error)
	// EventCancelled runs inside the transaction that cancels the event and
	// records the work the cancellation starts, so both commit or neither.
	// It may run more than once for one event (a retried transaction).
	EventCancelled(tx *gorm.DB, t tenants.Tenant, eventID uuid.UUID) error
	// StartCancellation runs after that commit. The recorded work resumes
	// by itself if this call is lost.
	StartCancellation(ctx context.Context, t tenants.Tenant, eventID uuid.UUID)
}

// ZoneAttendance is one zone's door count.
type ZoneAttendance struct {
	ZoneID   uuid.UUID `json:"zone_id"`
	Zone     string    `json:"zone"`
	Sold     int       `json:"sold"`     // valid tickets
	Admitted int       `json:"admitted"` // tickets admitted (each once, whatever its passages)
	// Inside counts tickets whose latest passage is an entry (each ticket's
	// entries minus exits: 0 or 1), never scans.
	Inside   int        `json:"inside"`
	LastScan *time.Time `json:"last_scan,omitempty"` // latest entry or exit
}

// EventAttendance is an event's door count, per zone and in total.
type EventAttendance struct {
	EventID  uuid.UUID        `json:"event_id"`
	Sold     int              `json:"sold"`
	Admitted int              `json:"admitted"`
	Inside   int              `json:"inside"`
	LastScan *time.Time       `json:"last_scan,omitempty"`
	Zones    []ZoneAttendance `json:"zones"`
	AsOf     time.Time        `json:"as_of"` // the database's time of the count
}

// Attendance is provided by the module that checks tickets in (inventory),
// so the live dashboard (ops) can count who is inside without its tables.
type Attendance interface {
	// Attendance counts an event's door; an event without tickets has
	// no zones and zero counts.
	Attendance(ctx context.Context, t tenants.Tenant, eventID uuid.UUID) (EventAttendance, error)
}

// HoldInfo is what other modules may know about a tentative calendar hold.
// Times are UTC. Status is active, released, expired or confirmed (then
// EventID names the event it became).
type HoldInfo struct {
	ID        uuid.UUID  `json:"id"`
	VenueID   uuid.UUID  `json:"venue_id"`
	StageID   uuid.UUID  `json:"stage_id"`
	Title     string     `json:"title"`
	Status    string     `json:"status"`
	Rank      int        `json:"rank"`
	StartsAt  time.Time  `json:"starts_at"`
	EndsAt    time.Time  `json:"ends_at"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	EventID   *uuid.UUID `json:"event_id,omitempty"`
}

// CalendarHolds is provided by the module that owns holds (calendar), so a
// module that negotiates a date (booking) can read a hold and turn it into
// an event without the calendar's tables.
type CalendarHolds interface {
	// Hold returns one hold, or an *Error of kind not found.
	Hold(ctx context.Context, t tenants.Tenant, id uuid.UUID) (HoldInfo, error)
	// ActiveHolds lists live holds starting from now on, by start time.
	ActiveHolds(ctx context.Context, t tenants.Tenant, limit int) ([]HoldInfo, error)
	// ConfirmHold books the hold's window as an event, inside the caller's
	// tenant transaction, so the event and the caller's change commit
	// together. A hold already confirmed returns its event (a retried
	// transaction); a released or expired one, or an event in the way, is
	// an *Error of kind conflict.
	ConfirmHold(tx *gorm.DB, t tenants.Tenant, id uuid.UUID, title string) (uuid.UUID, error)
}

// TierSales is what a module that sells tickets knows of one tier of an
// event after (or during) its sale.
type TierSales struct {
	Tier       string `json:"tier"`
	Sold       int    `json:"sold"`
	Comps      int    `json:"comps"`
	PriceMinor int64  `json:"price_minor"`
	Currency   string `json:"currency"`
	// Channel names the outside channel (ticketmaster, eventbrite) of a
	// row of units sold there at that channel's price; empty for the
	// seller's own sales. A tier may have several rows: readers sum by Tier.
	Channel string `json:"channel,omitempty"`
}

// TicketFacts is provided by the module that sells tickets (inventory), so
// a settlement can read sold tickets per tier without its tables.
type TicketFacts interface {
	// SalesByTier lists the event's tiers with what each sold; an event
	// without tickets has none.
	SalesByTier(ctx context.Context, t tenants.Tenant, eventID uuid.UUID) ([]TierSales, error)
}

// ChannelSale is units of one GA tier sold on an outside channel
// (Ticketmaster, Eventbrite) against that channel's quota.
type ChannelSale struct {
	EventID  uuid.UUID
	TierID   uuid.UUID
	Channel  string
	Quantity int
	// PriceMinor and Currency are what the channel sold one unit at (its
	// price may differ from ours); zero means the tier's price. A return
	// names the price of the sale it reverses.
	PriceMinor int64
	Currency   string
}

// ChannelQuota is one channel's quota of an event with what it holds and sold.
type ChannelQuota struct {
	Channel string `json:"channel"`
	Quota   int    `json:"quota"`
	Held    int    `json:"held"`
	Sold    int    `json:"sold"`
}

// ChannelStock is an event's capacity, what all its zones sold and held,
// and its channel quotas.
type ChannelStock struct {
	EventID  uuid.UUID      `json:"event_id"`
	Capacity int            `json:"capacity"`
	Held     int            `json:"held"`
	Sold     int            `json:"sold"`
	Channels []ChannelQuota `json:"channels"`
	// Tiers are the general-admission tiers channels may sell.
	Tiers []ChannelTier `json:"tiers"`
}

// ChannelTier is a GA tier a listing may map a channel's ticket type to.
type ChannelTier struct {
	ID         uuid.UUID `json:"id"`
	Name       string    `json:"name"`
	PriceMinor int64     `json:"price_minor"`
	Currency   string    `json:"currency"`
	// SaleStarts and SaleEnds bound the tier's sale (nil: open).
	SaleStarts *time.Time `json:"sale_starts"`
	SaleEnds   *time.Time `json:"sale_ends"`
}

// ChannelSales is provided by the module that sells tickets (inventory), so
// a module connecting outside channels sells inside their quotas with the
// same conditional writes as the storefront, without its tables.
type ChannelSales interface {
	// SellOnChannel takes the units from the tier's zone and the channel's
	// quota straight into sold, inside tx (the caller's tenant transaction,
	// so its record of the outside order commits with the units). ok=false
	// takes nothing: the zone or the quota has too few (left: what the
	// quota had), or the channel has no quota. A sale is also recorded at
	// the channel's price, so TicketFacts counts it.
	SellOnChannel(tx *gorm.DB, s ChannelSale) (ok bool, left int, err error)
	// ReturnOnChannel gives units sold on the channel back (a refund there).
	ReturnOnChannel(tx *gorm.DB, s ChannelSale) error
	// StockChanged tells the event's availability readers (cache, live
	// seat maps) of a change, after the transaction that sold committed.
	StockChanged(ctx context.Context, t tenants.Tenant, eventID uuid.UUID)
	// ChannelStock reads an event's capacity and channel quotas.
	ChannelStock(ctx context.Context, t tenants.Tenant, eventID uuid.UUID) (ChannelStock, error)
	// SetChannelQuota sets one channel's quota, the others unchanged;
	// refused (409 quota_below_sold) below what the channel holds or sold.
	SetChannelQuota(ctx context.Context, t tenants.Tenant, eventID uuid.UUID, channel string, quota int) error
}

// Registrar is what a module registers through.
type Registrar struct {
	app    *App
	module string
}

// Core gives a module the capabilities it may use (tenant transactions,
// jobs, realtime, ledger, logger, metrics, config, Redis, the event
// directory, identity checks), never the App itself.
func (r *Registrar) Core() *Core { return newCore(r.app) }

func (r *Registrar) add(s Surface, method, path string, perm Permission, summary string, h []gin.HandlerFunc) Declared {
	if perm.Kind == permUnset {
		panic(fmt.Sprintf("%s: route %s %s declares no permission", r.module, method, path))
	}
	if perm.Kind == PermCasbin && (perm.Object == "" || perm.Action == "") {
		panic(fmt.Sprintf("%s: route %s %s has an incomplete permission", r.module, method, path))
	}
	if s == SurfaceGlobal && perm.Kind != PermPublic {
		panic(fmt.Sprintf("%s: global route %s %s must be public", r.module, method, path))
	}
	if s == SurfacePlatform && perm.Kind != PermSupportOnly && perm.Kind != PermPublic {
		panic(fmt.Sprintf("%s: platform route %s %s may only be public or support-only", r.module, method, path))
	}
	if s != SurfacePlatform && s != SurfaceGlobal && perm.Kind == PermSupportOnly {
		panic(fmt.Sprintf("%s: tenant route %s %s cannot be support-only", r.module, method, path))
	}
	r.app.routes = append(r.app.routes, Route{
		Module: r.module, Surface: s, Method: method, Path: s.prefix() + path, Perm: perm, Summary: summary, handlers: h,
		NoBody: methodTakesNoBody(method),
	})
	return Declared{app: r.app, i: len(r.app.routes) - 1}
}

// API registers a route under /api/v1 on tenant hosts. Its endpoint (Handle
// or Raw) carries the request and response types the OpenAPI document is
// generated from.
func (r *Registrar) API(method, path string, perm Permission, summary string, ep Endpoint) Declared {
	d := r.add(SurfaceAPI, method, path, perm, summary, ep.handlers())
	r.app.routes[d.i].Doc = ep.doc
	return d
}

// APIStream registers a server-sent event stream under /api/v1 (GET). Streams
// stay open for minutes while idle, so they are limited per client address
// and never hold one of the tenant's in-flight request slots.
func (r *Registrar) APIStream(path string, perm Permission, summary string, h ...gin.HandlerFunc) Declared {
	d := r.add(SurfaceAPI, http.MethodGet, path, perm, summary, h)
	r.app.routes[d.i].Stream = true
	r.app.routes[d.i].Doc = EndpointDoc{Status: http.StatusOK, Produces: []Media{{"text/event-stream", reflect.TypeFor[string]()}}}
	return d
}

// APIWebSocket registers a WebSocket endpoint under /api/v1 (GET, answered
// 101 Switching Protocols). Like a server-sent event stream it lasts, so it
// is bounded per client address instead of taking the tenant's request
// slots; query documents its query parameters.
func (r *Registrar) APIWebSocket(path string, perm Permission, summary string, query []QueryParam, h ...gin.HandlerFunc) Declared {
	d := r.add(SurfaceAPI, http.MethodGet, path, perm, summary, h)
	r.app.routes[d.i].Stream = true
	r.app.routes[d.i].Doc = EndpointDoc{Status: http.StatusSwitchingProtocols, Query: query}
	return d
}

// Portal registers an admin portal page under /portal on tenant hosts.
func (r *Registrar) Portal(method, path string, perm Permission, h ...gin.HandlerFunc) Declared {
	return r.add(SurfacePortal, method, path, perm, "", h)
}

// Storefront registers a buyer-facing page on tenant hosts.
func (r *Registrar) Storefront(method, path string, perm Permission, h ...gin.HandlerFunc) Declared {
	return r.add(SurfaceStorefront, method, path, perm, "", h)
}

// Platform registers a route on the base host (console, probes).
func (r *Registrar) Platform(method, path string, perm Permission, h ...gin.HandlerFunc) Declared {
	return r.add(SurfacePlatform, method, path, perm, "", h)
}

// PlatformAPI registers a machine-to-machine route on the base host (a
// provider's webhook, e.g.). Unlike console pages it carries a summary and
// is listed in the OpenAPI document.
func (r *Registrar) PlatformAPI(method, path string, perm Permission, summary string, ep Endpoint) Declared {
	d := r.add(SurfacePlatform, method, path, perm, summary, ep.handlers())
	r.app.routes[d.i].Doc = ep.doc
	return d
}

// Global registers a public route answered on every host without a tenant.
func (r *Registrar) Global(method, path string, perm Permission, h ...gin.HandlerFunc) Declared {
	return r.add(SurfaceGlobal, method, path, perm, "", h)
}

// StorefrontHome makes path the landing page of every tenant's storefront.
func (r *Registrar) StorefrontHome(path string) { r.app.storefrontLanding = path }

// Nav adds a portal navigation entry.
func (r *Registrar) Nav(label, path string, order int, perm Permission) {
	r.app.nav = append(r.app.nav, NavItem{Label: label, Path: path, Perm: perm, Order: order})
}

// Task registers the handler of a tenant task type.
func (r *Registrar) Task(taskType string, h jobs.Handler) { r.app.Jobs.Handle(taskType, h) }

// TaskEvenWhenSuspended registers the handler of a task that settles what a
// tenant already started (expiring holds, refunds), so it runs while the
// tenant is suspended too.
func (r *Registrar) TaskEvenWhenSuspended(taskType string, h jobs.Handler) {
	r.app.Jobs.HandleEvenWhenSuspended(taskType, h)
}

// Every schedules a task type for every active tenant.
func (r *Registrar) Every(p jobs.Periodic) { r.app.Jobs.Every(p) }

// Grants adds default role permissions installed in every new tenant.
func (r *Registrar) Grants(g ...policies.Grant) { r.app.grants = append(r.app.grants, g...) }

// Seed adds demo data for a tenant.
//
// after names the modules whose seed data this module's needs (events to
// sell, venues to staff): their seeds run first. Naming a module that is not
// registered or seeds nothing, or a cycle, fails start-up.
func (r *Registrar) Seed(fn SeedFunc, after ...string) {
	r.app.seeds = append(r.app.seeds, moduleSeed{module: r.module, fn: fn, after: after})
}

// Background adds a long-running loop the worker process runs until it stops
// (for work finer-grained than cron, e.g. waiting-room admission). Every
// worker instance runs it, so it must be safe to run concurrently.
func (r *Registrar) Background(name string, fn func(ctx context.Context) error) {
	r.app.background = append(r.app.background, backgroundLoop{name: r.module + "/" + name, run: fn})
}

type backgroundLoop struct {
	name string
	run  func(ctx context.Context) error
}

// ProvideVenues makes this module the venue directory of the core. Only one
// module may: a second fails start-up.
func (r *Registrar) ProvideVenues(d VenueDirectory) {
	if r.provide(VenueDirectoryContract) {
		r.app.venues = d
	}
}

// ProvideEvents makes this module the event directory of the core. Only one
// module may: a second fails start-up.
func (r *Registrar) ProvideEvents(d EventDirectory) {
	if r.provide(EventDirectoryContract) {
		r.app.events = d
	}
}

// ProvideAttendance makes this module the core's door count. Only one
// module may: a second fails start-up.
func (r *Registrar) ProvideAttendance(a Attendance) {
	if r.provide(AttendanceContract) {
		r.app.attendance = a
	}
}

// ProvideHolds makes this module the calendar holds of the core. Only one
// module may: a second fails start-up.
func (r *Registrar) ProvideHolds(h CalendarHolds) {
	if r.provide(CalendarHoldsContract) {
		r.app.holds = h
	}
}

// ProvideTicketFacts makes this module the ticket facts of the core. Only
// one module may: a second fails start-up.
func (r *Registrar) ProvideTicketFacts(f TicketFacts) {
	if r.provide(TicketFactsContract) {
		r.app.tickets = f
	}
}

// ProvideChannelSales makes this module the channel sales of the core.
// Only one module may: a second fails start-up.
func (r *Registrar) ProvideChannelSales(c ChannelSales) {
	if r.provide(ChannelSalesContract) {
		r.app.channels = c
	}
}

// ProvideCancellations registers a module to be told of event cancellations.
// Several modules may be told; one module registering twice (and so being
// told twice) fails start-up.
func (r *Registrar) ProvideCancellations(c EventCancellations) {
	if slices.Contains(r.app.contracts.cancellers, r.module) {
		r.app.contracts.errs = append(r.app.contracts.errs,
			fmt.Errorf("module %s provides %s twice", r.module, EventCancellationsContract))
		return
	}
	r.app.contracts.cancellers = append(r.app.contracts.cancellers, r.module)
	if _, ok := r.app.contracts.providers[EventCancellationsContract]; !ok {
		r.app.contracts.providers[EventCancellationsContract] = r.module
	}
	r.app.cancellations = append(r.app.cancellations, c)
}

// Needs declares the contracts this module cannot work without. Start-up
// fails if, once every module has registered, one has no provider.
func (r *Registrar) Needs(cs ...Contract) {
	for _, c := range cs {
		r.app.contracts.needs = append(r.app.contracts.needs, need{module: r.module, contract: c})
	}
}

// provide records this module as the one provider of c; it reports false,
// and records the start-up error, when another module already is.
func (r *Registrar) provide(c Contract) bool {
	if prev, ok := r.app.contracts.providers[c]; ok {
		r.app.contracts.errs = append(r.app.contracts.errs,
			fmt.Errorf("module %s provides the %s, already provided by module %s", r.module, c, prev))
		return false
	}
	r.app.contracts.providers[c] = r.module
	return true
}

// Cancellations returns the modules told of event cancellations.
func (a *App) Cancellations() []EventCancellations { return a.cancellations }

// Attendance returns the door count (nil when no module provides one).
func (a *App) Attendance() Attendance { return a.attendance }

// Events returns the event directory (nil when no module provides one).
func (a *App) Events() EventDirectory { return a.events }

// Routes returns every registered route.
func (a *App) Routes() []Route { return append([]Route(nil), a.routes...) }
