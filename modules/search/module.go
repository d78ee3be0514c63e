// Package search is the storefront's event search and trending list. It
// keeps its own documents (srch_documents), one per event buyers can find,
// built from the calendar's events and venues and the inventory's all-in
// prices and availability through the core's contracts, never their
// tables: the owners' change hooks refresh a document after their commits,
// a per-minute job refreshes the events that sold, and an hourly job
// rebuilds everything. Queries run in the tenant's schema: full text with
// accent folding (unaccent) and typo tolerance (pg_trgm), distance from
// venue coordinates (earthdistance), signed keyset cursors. Trending is a
// Redis sorted set per chain and hour, counted on every paid order and
// rebuilt from the tickets when lost.
package search

import (
	"context"
	"html/template"
	"net/http"
	"time"

	"github.com/google/uuid"

	"marquee/app"
	"marquee/jobs"
	"marquee/policies"
	"marquee/tenants"
)

// Module is the search feature module.
type Module struct {
	app   *app.Core
	svc   *Service
	pages *template.Template
}

// New returns the search module, ready to register.
func New() *Module { return &Module{} }

// Name implements app.Module.
func (m *Module) Name() string { return "search" }

// Service returns the search service (after Register).
func (m *Module) Service() *Service { return m.svc }

// ObjListings is the storefront copy of events (artist line, description).
const ObjListings = "search.listings"

// Task types of search.
const (
	// TaskRefresh refreshes the documents of events that sold since the
	// last round (every minute).
	TaskRefresh = "search:refresh"
	// TaskRebuild rewrites every document and recounts trending (hourly).
	TaskRebuild = "search:rebuild"
)

func grants() []policies.Grant {
	var g []policies.Grant
	for _, r := range []string{policies.RoleChainAdmin, policies.RolePromoter, policies.RoleVenueManager, policies.RoleSupport} {
		g = append(g, policies.Grant{Role: r, Object: ObjListings, Action: policies.Read})
	}
	for _, r := range []string{policies.RoleChainAdmin, policies.RolePromoter, policies.RoleVenueManager} {
		g = append(g, policies.Grant{Role: r, Object: ObjListings, Action: policies.Write})
	}
	return g
}

// Register implements app.Module.
func (m *Module) Register(r *app.Registrar) error {
	m.app = r.Core()
	m.svc = NewService(m.app)
	pages, err := parsePages()
	if err != nil {
		return err
	}
	m.pages = pages
	r.Needs(app.EventDirectoryContract) // documents are built from the calendar's events
	r.Grants(grants()...)

	pub := app.Public()
	r.API(http.MethodGet, "/search/events", pub, "Search events buyers can find: text over title, artist, venue and description (accents folded, typos tolerated), dates, category, all-in price, availability, distance; relevance, date, price or distance order; signed cursor",
		app.Handle(m.search).
			Query("q", "words to find (at most 200 characters)").Query("from", "date or RFC 3339").Query("to", "date or RFC 3339").
			Query("category", "a category, e.g. concert").Query("min_price", "all-in, minor units").Query("max_price", "all-in, minor units").
			Query("available", "true: only events with tickets left").Query("near", "latitude,longitude").Query("radius_km", "above 0, at most 500 (50)").
			Query("sort", "relevance (with q), date, price or distance (with near)").Query("cursor", "next_cursor of the previous page").Query("limit", "1 to 50 (20)"))
	r.API(http.MethodGet, "/search/categories", pub, "The categories of events buyers can find now", app.Handle(m.categories))
	r.API(http.MethodGet, "/search/trending", pub, "Events ranked by tickets sold in the last 24 hours", app.Handle(m.trending).Query("limit", "1 to 20 (8)"))
	r.API(http.MethodGet, "/events/:eventId/listing", app.Require(ObjListings, policies.Read), "The event's storefront copy (artist line, description)", app.Handle(m.getListing))
	r.API(http.MethodPut, "/events/:eventId/listing", app.Require(ObjListings, policies.Write), "Set the event's storefront copy; searched with its title and venue", app.Handle(m.putListing))

	r.Storefront(http.MethodGet, "/search", pub, m.searchPage)
	// The storefront opens on search: the trending list above the search box.
	r.StorefrontHome("/search")

	r.OnEventsChanged(m.refreshHook)
	r.OnOffersChanged(m.refreshHook)
	r.OnTicketsSold(m.svc.RecordSale)

	r.Task(TaskRefresh, func(ctx context.Context, t tenants.Tenant, _ []byte) error {
		_, err := m.svc.RefreshDirty(ctx, t)
		return err
	})
	r.Task(TaskRebuild, func(ctx context.Context, t tenants.Tenant, _ []byte) error {
		if _, err := m.svc.Rebuild(ctx, t); err != nil {
			return err
		}
		return m.svc.RebuildTrending(ctx, t)
	})
	r.Every(jobs.Periodic{Cron: "* * * * *", Type: TaskRefresh, Queue: jobs.QueueDefault, Bucket: time.Minute})
	r.Every(jobs.Periodic{Cron: "17 * * * *", Type: TaskRebuild, Queue: jobs.QueueRollups, Bucket: time.Hour})
	r.Seed(m.seed, "calendar", "inventory")
	return nil
}

// refreshHook refreshes documents after an owner's commit. A failure is
// logged: the per-minute and hourly jobs repair what it missed.
func (m *Module) refreshHook(ctx context.Context, t tenants.Tenant, ids []uuid.UUID) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := m.svc.Refresh(ctx, t, ids); err != nil {
		m.app.Log.Warn("search: documents not refreshed; the rebuild catches up", "tenant", t.Slug, "events", describe(ids), "err", err)
	}
}
