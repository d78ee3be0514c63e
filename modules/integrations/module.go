// Package integrations connects outside sales channels, Ticketmaster and
// Eventbrite, to the inventory: each sells only inside its channel quota,
// allocations are pushed out, sales come in (Eventbrite webhooks,
// Ticketmaster polling) through the inventory's conditional take, and
// reconciliation proves no channel oversold. See README.md.
package integrations

import (
	"context"
	"html/template"
	"net/http"
	"time"

	"gorm.io/gorm"

	"marquee/app"
	"marquee/jobs"
	"marquee/policies"
	"marquee/tenants"
)

// Module is the integrations feature module.
type Module struct {
	app   *app.Core
	svc   *Service
	pages *template.Template
	demo  *demoFakes
}

// New returns the integrations module, ready to register.
func New() *Module { return &Module{} }

// Name implements app.Module.
func (m *Module) Name() string { return "integrations" }

// Service returns the service (after Register).
func (m *Module) Service() *Service { return m.svc }

// ObjChannels is the object of the integrations' permissions: read sees
// connectors, listings, reconciliations and health; write connects
// accounts, links listings, sets allocations and reconciles.
const ObjChannels = "integrations.channels"

func grants() []policies.Grant {
	var g []policies.Grant
	add := func(action string, roles ...string) {
		for _, r := range roles {
			g = append(g, policies.Grant{Role: r, Object: ObjChannels, Action: action})
		}
	}
	add(policies.Read, policies.RoleChainAdmin, policies.RoleFinance, policies.RoleOpsLead, policies.RolePromoter, policies.RoleSupport)
	add(policies.Write, policies.RoleChainAdmin, policies.RoleSupport)
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
	r.Needs(app.ChannelSalesContract, app.EventDirectoryContract)
	r.Grants(grants()...)
	r.Usage("Channel connectors", func(ctx context.Context, tx *gorm.DB, _ time.Time) (n int64, err error) {
		return n, tx.Raw("SELECT count(*) FROM int_connectors").Scan(&n).Error
	})
	// Connector health on the support console: connectors whose last call failed.
	r.Usage("Channel connectors failing", func(ctx context.Context, tx *gorm.DB, _ time.Time) (n int64, err error) {
		return n, tx.Raw("SELECT count(*) FROM int_connectors WHERE last_error_at IS NOT NULL AND (last_success_at IS NULL OR last_error_at > last_success_at)").Scan(&n).Error
	})
	r.Usage("Channel oversells", func(ctx context.Context, tx *gorm.DB, _ time.Time) (n int64, err error) {
		return n, tx.Raw("SELECT count(*) FROM int_oversells").Scan(&n).Error
	})
	r.ConsolePanel("channel-connectors", "Channel connectors", consolePanel)

	read, write := app.Require(ObjChannels, policies.Read), app.Require(ObjChannels, policies.Write)
	r.API(http.MethodPost, "/integrations/connectors", write, "Connect a Ticketmaster or Eventbrite account: credentials are sealed and never returned; an Eventbrite connector's webhook URL (with its secret) is shown once",
		app.Handle(m.createConnector).Created())
	r.API(http.MethodGet, "/integrations/connectors", read, "The chain's connectors with their health (last success, last error, quota left)", app.Handle(m.listConnectors))
	r.API(http.MethodGet, "/integrations/connectors/:connectorId", read, "A connector and its health", app.Handle(m.getConnector))
	r.API(http.MethodGet, "/integrations/connectors/:connectorId/external-events", read, "The provider's catalogue, every page (Discovery for Ticketmaster, the organisation's events for Eventbrite)",
		app.Handle(m.externalEvents))
	r.API(http.MethodPost, "/integrations/connectors/:connectorId/listings", write, "Link an external event to our event and its channel quota, with the ticket-type to tier mapping",
		app.Handle(m.createListing).Created())
	r.API(http.MethodPost, "/integrations/connectors/:connectorId/poll", write, "Poll a Ticketmaster connector now (orders since the cursor, then availability)",
		app.Handle(m.pollNow)).NoBody()
	r.API(http.MethodGet, "/integrations/events/:eventId/channels", read, "An event's channels: stock, listings, latest reconciliation per channel, oversells, timeline of syncs",
		app.Handle(m.getChannels))
	r.API(http.MethodPut, "/integrations/events/:eventId/channels/:channel/allocation", write, "Set a channel's allocation: our quota first (never below what the channel sold), then pushed to the channel with retries",
		app.Handle(m.putAllocation))
	r.API(http.MethodPost, "/integrations/events/:eventId/reconcile", write, "Reconcile the event's channels now; final: true at sale close proves sold ≤ capacity and writes it to the ledger",
		app.Handle(m.reconcile).OptionalBody())
	r.API(http.MethodPost, "/webhooks/eventbrite/:connectorId/:secret", app.Public().EvenWhenSuspended(), "Eventbrite webhook (thin body; the path's secret is the connector's; api_url is fetched with our token)",
		app.Raw(m.webhook).Accepts("application/json", WebhookBody{}).Produces("application/json", WebhookResult{}))

	r.Portal(http.MethodGet, "/channels", read, m.channelsPage)
	r.Portal(http.MethodGet, "/channels/events/:eventId", read, m.eventPage)
	r.Nav("Channels", "/portal/channels", 45, read)

	r.Task(TaskPollTenant, func(ctx context.Context, t tenants.Tenant, _ []byte) error {
		now := m.app.Now()
		_, err := m.svc.EnqueuePolls(ctx, t, now)
		m.svc.alertOversells(ctx, t)
		// What the quotas hook missed (a crash after the inventory's
		// commit) is pushed within a minute.
		if serr := m.svc.SweepAllocations(ctx, t); serr != nil {
			m.svc.log().Warn("sweeping allocations failed", "tenant", t.Slug, "err", serr)
		}
		// Periodic reconciliation each quarter hour; the final one once a
		// sale has closed.
		if _, rerr := m.svc.EnqueueReconciliations(ctx, t, now); rerr != nil {
			m.svc.log().Warn("queueing reconciliations failed", "tenant", t.Slug, "err", rerr)
		}
		if now.Minute()%15 == 0 {
			// What the offers hook missed (a crash after the inventory's
			// commit) is pushed within a quarter of an hour.
			if serr := m.svc.sweepOffers(ctx, t); serr != nil {
				m.svc.log().Warn("sweeping offer pushes failed", "tenant", t.Slug, "err", serr)
			}
		}
		return err
	})
	r.Task(TaskOffers, m.svc.offersTask)
	r.OnOffersChanged(m.svc.offersChanged)
	r.Task(TaskPoll, func(ctx context.Context, t tenants.Tenant, payload []byte) error {
		id, err := decodeConnector(payload)
		if err != nil {
			return err
		}
		_, err = m.svc.Poll(ctx, t, id)
		if err == errNoConnector {
			return nil
		}
		return err
	})
	r.Task(TaskPush, m.svc.pushTask)
	r.Task(TaskAllocations, m.svc.allocationsTask)
	r.Task(TaskReconcile, m.svc.reconcileTask)
	r.OnQuotasChanged(m.svc.quotasChanged)
	r.Every(jobs.Periodic{Cron: "* * * * *", Type: TaskPollTenant, Queue: jobs.QueuePolling, Bucket: time.Minute})
	r.Seed(m.seed, "calendar", "inventory")
	r.Background("demo-sales", m.demoLoop)
	return nil
}
