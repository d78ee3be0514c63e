// Package ops is the live show-night dashboard: occupancy per event and zone
// merged from the door's scans, turnstile counters and manual counts, with
// capacity alerts and per-minute history for compliance reports; bar and
// merch revenue from POS webhooks into the ledger; incidents with an
// append-only timeline; and one live stream per event that several server
// instances serve from one Redis subscription each.
package ops

import (
	"html/template"
	"net/http"
	"time"

	"marquee/app"
	"marquee/jobs"
	"marquee/policies"
)

// Module is the ops feature module.
type Module struct {
	app   *app.Core
	svc   *Service
	pages *template.Template
	// wsWriteTimeout, when set, replaces the const of that name (tests).
	wsWriteTimeout time.Duration
}

// New returns the ops module, ready to register.
func New() *Module { return &Module{} }

// Name implements app.Module.
func (m *Module) Name() string { return "ops" }

// Service returns the ops service (after Register).
func (m *Module) Service() *Service { return m.svc }

// Objects of ops' permissions, in its namespace ops.*. Every one is checked
// at the event's venue (a venue role grants nothing at another venue).
const (
	ObjDashboard = "ops.dashboard" // read: the dashboard, occupancy, reports, the live stream
	ObjOccupancy = "ops.occupancy" // write: push turnstile and manual readings
	ObjIncidents = "ops.incidents" // read: the incident feed; write: report, add notes
	// ObjHandling is the incident handlers' object: write acknowledges,
	// assigns and resolves; read sees confidential incidents in full.
	ObjHandling = "ops.incident_handling"
	ObjSettings = "ops.settings" // write: zones, capacities and alert thresholds of an event
	ObjRevenue  = "ops.revenue"  // read: bar and merch revenue on the dashboard and its totals
	ObjPOS      = "ops.pos"      // chain-wide: POS connectors and their locations
)

// grants are the default permissions of each role: door staff push counts
// and report incidents; ops and security leads run the night; venue
// managers and chain admins everything at their venues; finance reads revenue.
func grants() []policies.Grant {
	var g []policies.Grant
	add := func(object, action string, roles ...string) {
		for _, r := range roles {
			g = append(g, policies.Grant{Role: r, Object: object, Action: action})
		}
	}
	leads := []string{policies.RoleChainAdmin, policies.RoleVenueManager, policies.RoleOpsLead, policies.RoleSecurityLead, policies.RoleSupport}
	staff := append([]string{policies.RoleDoorStaff}, leads...)
	add(ObjDashboard, policies.Read, staff...)
	add(ObjOccupancy, policies.Write, staff...)
	add(ObjIncidents, policies.Read, staff...)
	add(ObjIncidents, policies.Write, staff...)
	add(ObjHandling, policies.Read, leads...)
	add(ObjHandling, policies.Write, leads...)
	add(ObjSettings, policies.Write, policies.RoleChainAdmin, policies.RoleVenueManager, policies.RoleOpsLead, policies.RoleSupport)
	add(ObjRevenue, policies.Read, policies.RoleChainAdmin, policies.RoleFinance, policies.RoleVenueManager, policies.RoleOpsLead, policies.RoleSupport)
	add(ObjDashboard, policies.Read, policies.RoleFinance)
	add(ObjPOS, policies.Read, policies.RoleChainAdmin, policies.RoleFinance, policies.RoleSupport)
	add(ObjPOS, policies.Write, policies.RoleChainAdmin)
	return g
}

// Task types of ops.
const (
	// TaskSample samples every live event's occupancy once a minute: the
	// history row of the minute, capacity alerts for changes only the door
	// saw, and a push to the dashboards.
	TaskSample = "ops:occupancy-sample"
	// TaskRollup rolls POS revenue up into per-event totals every five minutes.
	TaskRollup = "ops:revenue-rollup"
)

// Register implements app.Module.
func (m *Module) Register(r *app.Registrar) error {
	m.app = r.Core()
	m.svc = NewService(m.app)
	pages, err := parsePages()
	if err != nil {
		return err
	}
	m.pages = pages
	r.Needs(app.EventDirectoryContract) // zones, readings and incidents belong to the calendar's events
	r.Grants(grants()...)

	read, write := policies.Read, policies.Write
	signed := app.SignedIn() // event routes check the permission at the event's venue in the handler

	r.API(http.MethodPut, "/events/:eventId/occupancy/zones", signed, "Set the event's zones: licensed capacity, alert thresholds, door zone, trusted source (ops.settings:write at its venue)",
		app.Handle(m.putZones))
	r.API(http.MethodGet, "/events/:eventId/occupancy", signed, "Occupancy per zone: the trusted source, its freshness, every source's count (ops.dashboard:read at its venue)",
		app.Handle(m.getOccupancy))
	r.API(http.MethodPost, "/events/:eventId/occupancy", signed, "Push a turnstile counter (cumulative count or delta) or a manual count (ops.occupancy:write at its venue)",
		app.Handle(m.postReading))
	r.API(http.MethodGet, "/events/:eventId/occupancy/report", signed, "Compliance report: occupancy per zone and minute with peaks and capacity (JSON, CSV or PDF; ops.dashboard:read at its venue)",
		app.Raw(m.report).Produces("application/json", Report{}).Produces("text/csv", "").Produces("application/pdf", "").Query("format", "json (default), csv or pdf"))
	r.API(http.MethodGet, "/events/:eventId/dashboard", signed, "The live dashboard: occupancy, revenue, incidents, alerts, and the stream position to resume from (ops.dashboard:read at its venue)",
		app.Handle(m.getDashboard))
	r.APIStream("/events/:eventId/dashboard/stream", signed, "The dashboard's changes, live (server-sent events with sequence ids; Last-Event-ID or since resumes without a gap)", m.stream)
	r.APIWebSocket("/events/:eventId/dashboard/ws", signed, "The dashboard's changes over a WebSocket: the same numbered messages as the stream, one per text frame; ?after=N resumes without a gap",
		[]app.QueryParam{{Name: "after", Description: "the last sequence number the viewer saw"}}, m.streamWS)
	r.API(http.MethodGet, "/events/:eventId/revenue", signed, "Bar and merch revenue of the event as last rolled up, per category and stand (ops.revenue:read at its venue)",
		app.Handle(m.getRevenue))

	r.API(http.MethodPost, "/events/:eventId/incidents", signed, "Report an incident (ops.incidents:write at its venue); everyone on the dashboard hears of it",
		app.Handle(m.reportIncident).Created())
	r.API(http.MethodGet, "/events/:eventId/incidents", signed, "The event's incidents, newest first (ops.incidents:read at its venue; confidential ones in full only with ops.incident_handling:read)",
		app.Handle(m.listIncidents).Query("status", "open, acknowledged or resolved"))
	r.API(http.MethodGet, "/events/:eventId/incidents/:incidentId", signed, "An incident with its timeline", app.Handle(m.getIncident))
	r.API(http.MethodPost, "/events/:eventId/incidents/:incidentId/acknowledge", signed, "Acknowledge an incident (ops.incident_handling:write)", app.Handle(m.ackIncident)).NoBody()
	r.API(http.MethodPost, "/events/:eventId/incidents/:incidentId/assign", signed, "Assign an incident to an owner (ops.incident_handling:write)", app.Handle(m.assignIncident))
	r.API(http.MethodPost, "/events/:eventId/incidents/:incidentId/notes", signed, "Add a note to an incident's timeline (ops.incidents:write)", app.Handle(m.noteIncident))
	r.API(http.MethodPost, "/events/:eventId/incidents/:incidentId/resolve", signed, "Resolve an incident (ops.incident_handling:write)", app.Handle(m.resolveIncident))

	r.API(http.MethodPost, "/events/:eventId/incidents/:incidentId/photos", signed, "Attach a photo to an incident: the body is the image (image/jpeg, png or webp, within the body limit; ops.incidents:write)",
		app.Raw(m.uploadPhoto).Accepts("image/jpeg", "").Produces("application/json", Photo{}).Created())
	r.API(http.MethodGet, "/events/:eventId/incidents/:incidentId/photos/:photoId", signed, "An incident's photo (ops.incidents:read at its venue; a confidential incident's only with ops.incident_handling:read)",
		app.Raw(m.getPhoto).Produces("image/jpeg", "").Produces("image/png", "").Produces("image/webp", ""))

	r.API(http.MethodPost, "/ops/pos/connectors", app.Require(ObjPOS, write), "Connect a POS account (Square): its signature key is sealed and never returned",
		app.Handle(m.createConnector).Created())
	r.API(http.MethodGet, "/ops/pos/connectors", app.Require(ObjPOS, read), "The chain's POS connectors and their locations", app.Handle(m.listConnectors))
	r.API(http.MethodPut, "/ops/pos/connectors/:connectorId/locations", app.Require(ObjPOS, write), "Map the connector's POS locations to venues and stands",
		app.Handle(m.putLocations))
	// The chain's own host: each chain subscribes its own Square account
	// with its own signature key, so the connector is found in the chain's
	// schema without a platform-wide registry (see pos.go).
	r.API(http.MethodPost, "/webhooks/pos/:connectorId", app.Public().EvenWhenSuspended(), "Square-shaped POS webhook (x-square-hmacsha256-signature over the notification URL and the raw body)",
		app.Raw(m.posWebhook).Accepts("application/json", SquareEvent{}).Produces("application/json", WebhookResult{}))

	r.API(http.MethodPut, "/ops/contacts", app.Require(ObjSettings, write), "Replace who ops mails capacity alerts and incident reports to (chain-wide or per venue)",
		app.Handle(m.putContacts))
	r.API(http.MethodGet, "/ops/contacts", app.Require(ObjSettings, write), "Who ops mails capacity alerts and incident reports to", app.Handle(m.listContacts))

	r.Portal(http.MethodGet, "/ops", signed, m.nightPage)
	r.Portal(http.MethodGet, "/ops/events/:eventId", signed, m.dashboardPage)
	r.Nav("Live ops", "/portal/ops", 40, app.Require(ObjDashboard, read))

	r.Task(TaskSample, m.sampleTask)
	r.Every(jobs.Periodic{Cron: "* * * * *", Type: TaskSample, Queue: jobs.QueueDefault, Bucket: time.Minute})
	r.Task(TaskRollup, m.rollupTask)
	r.Every(jobs.Periodic{Cron: "*/5 * * * *", Type: TaskRollup, Queue: jobs.QueueRollups, Bucket: 5 * time.Minute})
	r.Task(TaskPOSPolls, m.pollFanoutTask)
	r.Every(jobs.Periodic{Cron: "* * * * *", Type: TaskPOSPolls, Queue: jobs.QueuePolling, Bucket: pollEvery})
	r.Task(TaskPOSPoll, m.pollTask)
	// The seed picks the show the door's demo scanned when the inventory's
	// seed ran before it, which modules.All's order gives; naming
	// "inventory" here would make the module unusable without it (tests
	// run it with a fake door), as staffing found.
	r.Seed(m.seed, "calendar")
	return nil
}
