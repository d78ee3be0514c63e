package ops

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"marquee/app"
	"marquee/policies"
	"marquee/tenants"
)

// Handlers read top to bottom: decode and validate, check the permission at
// the event's venue, call the service, respond.

// event reads the path's event and requires a permission at its venue.
func (m *Module) event(c *gin.Context, object, action string) (app.EventInfo, error) {
	id, err := app.PathUUID(c, "eventId", "event")
	if err != nil {
		return app.EventInfo{}, err
	}
	ev, err := m.app.Events().Event(c.Request.Context(), app.TenantOf(c), id)
	if err != nil {
		return ev, err
	}
	if !m.app.CanAtVenue(c, ev.VenueID, object, action) {
		return ev, app.Forbidden("forbidden", "your roles do not allow "+action+" on "+object+" at this event's venue")
	}
	return ev, nil
}

// actor is the signed-in user, if the principal is one.
func actor(c *gin.Context) *uuid.UUID {
	p := app.PrincipalOf(c)
	if p.Kind != app.KindUser {
		return nil
	}
	id := p.UserID
	return &id
}

// ---- occupancy

type zonesRequest struct {
	Zones []ZoneInput `json:"zones"`
}

func (m *Module) putZones(c *gin.Context, req zonesRequest) (app.List[Zone], error) {
	ev, err := m.event(c, ObjSettings, policies.Write)
	if err != nil {
		return app.List[Zone]{}, err
	}
	zones, err := m.svc.SetZones(c.Request.Context(), app.TenantOf(c), ev, req.Zones)
	return app.ListOf(zones), err
}

func (m *Module) getOccupancy(c *gin.Context, _ app.None) (app.List[ZoneOccupancy], error) {
	ev, err := m.event(c, ObjDashboard, policies.Read)
	if err != nil {
		return app.List[ZoneOccupancy]{}, err
	}
	zones, err := m.svc.Occupancy(c.Request.Context(), app.TenantOf(c), ev)
	return app.ListOf(zones), err
}

func (m *Module) postReading(c *gin.Context, req Reading) (ReadingResult, error) {
	ev, err := m.event(c, ObjOccupancy, policies.Write)
	if err != nil {
		return ReadingResult{}, err
	}
	return m.svc.PushReading(c.Request.Context(), app.TenantOf(c), ev, actor(c), req)
}

func (m *Module) report(c *gin.Context) {
	ev, err := m.event(c, ObjDashboard, policies.Read)
	if err != nil {
		app.Fail(c, err)
		return
	}
	format := c.DefaultQuery("format", "json")
	if format != "json" && format != "csv" && format != "pdf" {
		app.Fail(c, app.InvalidField("invalid_format", "format", "format is json, csv or pdf"))
		return
	}
	rep, err := m.svc.Report(c.Request.Context(), app.TenantOf(c), ev)
	if err != nil {
		app.Fail(c, err)
		return
	}
	name := fmt.Sprintf("occupancy-%s", ev.ID)
	switch format {
	case "csv":
		c.Header("Content-Disposition", `attachment; filename="`+name+`.csv"`)
		c.Status(http.StatusOK)
		c.Header("Content-Type", "text/csv; charset=utf-8")
		if err := rep.WriteCSV(c.Writer); err != nil {
			m.app.Log.Warn("ops: report csv", "err", err)
		}
	case "pdf":
		pdf, err := rep.PDF()
		if err != nil {
			app.Fail(c, err)
			return
		}
		c.Header("Content-Disposition", `attachment; filename="`+name+`.pdf"`)
		c.Data(http.StatusOK, "application/pdf", pdf)
	default:
		c.JSON(http.StatusOK, rep)
	}
}

// ---- dashboard

// Dashboard is everything on an event's live dashboard.
type Dashboard struct {
	Event DashboardEvent `json:"event"`
	// StreamSeq is the stream position this state includes: open the
	// stream with since=StreamSeq to get every change after it.
	StreamSeq int64           `json:"stream_seq"`
	Zones     []ZoneOccupancy `json:"zones"`
	// Revenue is present for those allowed ops.revenue:read at the venue.
	Revenue   *Revenue        `json:"revenue,omitempty"`
	Incidents IncidentSummary `json:"incidents"`
	Alerts    []Alert         `json:"alerts"`
	// Staffing is the event's staffing coverage from the staffing
	// module's contract; absent when no module provides it.
	Staffing *StaffingSummary `json:"staffing,omitempty"`
}

// StaffingSummary is an event's staffing coverage: totals and role by role.
type StaffingSummary struct {
	Required  int                `json:"required"`
	Assigned  int                `json:"assigned"`
	Confirmed int                `json:"confirmed"`
	Gap       int                `json:"gap"`
	Roles     []app.RoleCoverage `json:"roles"`
	// Unavailable: the staffing module did not answer; the rest of the
	// dashboard stands without it.
	Unavailable bool `json:"unavailable,omitempty"`
}

// DashboardEvent names the event.
type DashboardEvent struct {
	ID        uuid.UUID `json:"id"`
	Title     string    `json:"title"`
	VenueName string    `json:"venue_name"`
	Timezone  string    `json:"timezone"`
	StartsAt  time.Time `json:"starts_at"`
	EndsAt    time.Time `json:"ends_at"`
	Live      bool      `json:"live"`
}

func (m *Module) getDashboard(c *gin.Context, _ app.None) (Dashboard, error) {
	ev, err := m.event(c, ObjDashboard, policies.Read)
	if err != nil {
		return Dashboard{}, err
	}
	return m.svc.Dashboard(c.Request.Context(), app.TenantOf(c), ev,
		m.app.CanAtVenue(c, ev.VenueID, ObjRevenue, policies.Read), m.app.CanAtVenue(c, ev.VenueID, ObjHandling, policies.Read))
}

func (m *Module) getRevenue(c *gin.Context, _ app.None) (Revenue, error) {
	ev, err := m.event(c, ObjRevenue, policies.Read)
	if err != nil {
		return Revenue{}, err
	}
	return m.svc.RolledUpRevenue(c.Request.Context(), app.TenantOf(c), ev.ID)
}

// streamLifetime bounds a stream before the viewer is asked to come back
// (through every check a new request passes), spread so viewers do not
// return together.
const streamLifetime = 30 * time.Minute

// stream serves an event's dashboard changes as server-sent events: an
// EventSource reconnects by itself and sends Last-Event-ID, which is all a
// gapless resume needs. streamWS (ws.go) serves the same stream over a
// WebSocket, from the same hub.
func (m *Module) stream(c *gin.Context) {
	ev, err := m.event(c, ObjDashboard, policies.Read)
	if err != nil {
		app.Fail(c, err)
		return
	}
	since := int64(-1)
	for _, v := range []string{c.GetHeader("Last-Event-ID"), c.Query("since")} {
		if v != "" {
			if since, err = streamPosition(v, "since"); err != nil {
				app.Fail(c, err)
				return
			}
			break
		}
	}
	ctx, t := c.Request.Context(), app.TenantOf(c)
	st, err := m.joinStream(ctx, t, ev.ID, since)
	if err != nil {
		app.Fail(c, err)
		return
	}
	defer st.leave()
	v, since, backlog, whole := st.viewer, st.since, st.backlog, st.whole
	w := c.Writer
	rc := http.NewResponseController(w)
	deadline := func() { _ = rc.SetWriteDeadline(time.Now().Add(20 * time.Second)) }
	deadline()
	_ = rc.SetReadDeadline(time.Time{})
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, "retry: 2000\n: connected at %d\n\n", since)
	last := since
	send := func(msg Message) {
		if msg.Seq <= last {
			return
		}
		fmt.Fprintf(w, "id: %d\ndata: %s\n\n", msg.Seq, msg.frame())
		last = msg.Seq
	}
	if !whole {
		// The history no longer reaches back to the viewer's position:
		// it reloads the dashboard and goes on from here.
		fmt.Fprintf(w, "data: {\"seq\":%d,\"type\":\"reset\",\"data\":null}\n\n", since)
	}
	for _, msg := range backlog {
		send(msg)
	}
	w.Flush()
	endOfLife := time.NewTimer(streamLifetime + time.Duration(rand.Int64N(int64(5*time.Minute))))
	defer endOfLife.Stop()
	heartbeat := time.NewTicker(15 * time.Second)
	defer heartbeat.Stop()
	for {
		deadline()
		select {
		case <-ctx.Done():
			return
		case <-m.app.Realtime.Draining():
			fmt.Fprintf(w, "retry: %d\n: server restarting\n\n", 1000+rand.IntN(4000))
			w.Flush()
			return
		case <-endOfLife.C:
			fmt.Fprintf(w, "retry: %d\n: stream ends; reconnect\n\n", 1000+rand.IntN(4000))
			w.Flush()
			return
		case <-v.Dropped:
			// Too slow: it comes back with Last-Event-ID and catches up
			// from the history.
			fmt.Fprint(w, "retry: 500\n: too slow; reconnect\n\n")
			w.Flush()
			return
		case <-heartbeat.C:
			// A stream is a request that lasts: it ends when its chain
			// stops being served, like every new request would.
			if cur, err := m.app.Tenants.Lookup(ctx, t.Slug); err != nil || cur.Status != tenants.StatusActive {
				fmt.Fprintf(w, "retry: %d\n: stream ends; reconnect\n\n", 1000+rand.IntN(4000))
				w.Flush()
				return
			}
			fmt.Fprint(w, ": heartbeat\n\n")
		case msg := <-v.C:
			send(msg)
			// drain what is already queued before flushing once
			for n := len(v.C); n > 0; n-- {
				send(<-v.C)
			}
		}
		w.Flush()
	}
}

// ---- incidents

func (m *Module) reportIncident(c *gin.Context, req IncidentInput) (Incident, error) {
	ev, err := m.event(c, ObjIncidents, policies.Write)
	if err != nil {
		return Incident{}, err
	}
	inc, err := m.svc.ReportIncident(c.Request.Context(), app.TenantOf(c), ev, actor(c), req)
	return redact(inc, m.app.CanAtVenue(c, ev.VenueID, ObjHandling, policies.Read) || !inc.Confidential), err
}

func (m *Module) listIncidents(c *gin.Context, _ app.None) (app.List[Incident], error) {
	ev, err := m.event(c, ObjIncidents, policies.Read)
	if err != nil {
		return app.List[Incident]{}, err
	}
	status := c.Query("status")
	if status != "" && status != "open" && status != "acknowledged" && status != "resolved" {
		return app.List[Incident]{}, app.InvalidField("invalid_status", "status", "status is open, acknowledged or resolved")
	}
	list, err := m.svc.Incidents(c.Request.Context(), app.TenantOf(c), ev.ID, status)
	full := m.app.CanAtVenue(c, ev.VenueID, ObjHandling, policies.Read)
	for i := range list {
		list[i] = redact(list[i], full)
	}
	return app.ListOf(list), err
}

func (m *Module) incident(c *gin.Context, object string) (app.EventInfo, uuid.UUID, error) {
	ev, err := m.event(c, object, policies.Write)
	if err != nil {
		return ev, uuid.Nil, err
	}
	id, err := app.PathUUID(c, "incidentId", "incident")
	return ev, id, err
}

func (m *Module) getIncident(c *gin.Context, _ app.None) (Incident, error) {
	ev, err := m.event(c, ObjIncidents, policies.Read)
	if err != nil {
		return Incident{}, err
	}
	id, err := app.PathUUID(c, "incidentId", "incident")
	if err != nil {
		return Incident{}, err
	}
	inc, err := m.svc.Incident(c.Request.Context(), app.TenantOf(c), ev.ID, id)
	return redact(inc, m.app.CanAtVenue(c, ev.VenueID, ObjHandling, policies.Read)), err
}

func (m *Module) change(c *gin.Context, object string, ch IncidentChange) (Incident, error) {
	ev, id, err := m.incident(c, object)
	if err != nil {
		return Incident{}, err
	}
	ch.Actor = actor(c)
	inc, err := m.svc.ChangeIncident(c.Request.Context(), app.TenantOf(c), ev.ID, id, ch)
	return redact(inc, m.app.CanAtVenue(c, ev.VenueID, ObjHandling, policies.Read)), err
}

func (m *Module) ackIncident(c *gin.Context, _ app.None) (Incident, error) {
	return m.change(c, ObjHandling, IncidentChange{Kind: "acknowledged"})
}

type assignRequest struct {
	UserID uuid.UUID `json:"user_id"`
}

func (m *Module) assignIncident(c *gin.Context, req assignRequest) (Incident, error) {
	if req.UserID == uuid.Nil {
		return Incident{}, app.InvalidField("invalid_user_id", "user_id", "user_id is a user's id")
	}
	return m.change(c, ObjHandling, IncidentChange{Kind: "assigned", Assignee: &req.UserID})
}

type noteRequest struct {
	Text string `json:"text"`
}

func (m *Module) noteIncident(c *gin.Context, req noteRequest) (Incident, error) {
	return m.change(c, ObjIncidents, IncidentChange{Kind: "note", Body: req.Text})
}

type resolveRequest struct {
	Resolution string `json:"resolution"`
}

func (m *Module) resolveIncident(c *gin.Context, req resolveRequest) (Incident, error) {
	return m.change(c, ObjHandling, IncidentChange{Kind: "resolved", Body: req.Resolution})
}

// ---- POS

func (m *Module) createConnector(c *gin.Context, req ConnectorInput) (Connector, error) {
	return m.svc.CreateConnector(c.Request.Context(), app.TenantOf(c), req)
}

func (m *Module) listConnectors(c *gin.Context, _ app.None) (app.List[Connector], error) {
	list, err := m.svc.Connectors(c.Request.Context(), app.TenantOf(c))
	return app.ListOf(list), err
}

type locationsRequest struct {
	Locations []POSLocation `json:"locations"`
}

func (m *Module) putLocations(c *gin.Context, req locationsRequest) (Connector, error) {
	id, err := app.PathUUID(c, "connectorId", "POS connector")
	if err != nil {
		return Connector{}, err
	}
	return m.svc.SetLocations(c.Request.Context(), app.TenantOf(c), id, req.Locations)
}

// posWebhook reads the raw body (the signature covers it byte for byte)
// under a size bound before anything else.
func (m *Module) posWebhook(c *gin.Context) {
	id, err := app.PathUUID(c, "connectorId", "POS connector")
	if err != nil {
		app.Fail(c, err)
		return
	}
	body, err := io.ReadAll(io.LimitReader(c.Request.Body, maxPOSBody+1))
	if err != nil || len(body) > maxPOSBody {
		app.Fail(c, app.PayloadTooLarge("a POS event is at most %d bytes", maxPOSBody))
		return
	}
	res, err := m.svc.HandlePOSWebhook(c.Request.Context(), app.TenantOf(c), id, body, c.GetHeader("x-square-hmacsha256-signature"))
	if err != nil {
		app.Fail(c, err)
		return
	}
	c.JSON(http.StatusOK, res)
}

// ---- contacts

type contactsRequest struct {
	Contacts []ContactInput `json:"contacts"`
}

func (m *Module) putContacts(c *gin.Context, req contactsRequest) (app.List[Contact], error) {
	out, err := m.svc.SetContacts(c.Request.Context(), app.TenantOf(c), req.Contacts)
	return app.ListOf(out), err
}

func (m *Module) listContacts(c *gin.Context, _ app.None) (app.List[Contact], error) {
	out, err := m.svc.Contacts(c.Request.Context(), app.TenantOf(c))
	return app.ListOf(out), err
}
