package ops

import (
	"embed"
	"html/template"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"marquee/app"
	"marquee/policies"
)

//go:embed templates/*.html
var templateFS embed.FS

func parsePages() (*template.Template, error) {
	return template.New("ops").ParseFS(templateFS, "templates/*.html")
}

// dashboardPage is an event's live dashboard: zones against capacity, the
// occupancy chart, revenue, the incident feed and a phone-sized report
// form. The page renders from the dashboard API and then follows the
// stream, resuming from the position the API gave it.
func (m *Module) dashboardPage(c *gin.Context) {
	ev, err := m.event(c, ObjDashboard, policies.Read)
	if err != nil {
		app.Fail(c, err)
		return
	}
	loc, err := app.Timezone(ev.Timezone)
	if err != nil {
		loc = time.UTC
	}
	data := struct {
		Event     app.EventInfo
		When      string
		CSRF      string
		CanReport bool
		CanHandle bool
	}{Event: ev, When: ev.StartsAt.In(loc).Format("Mon 2 Jan 15:04") + "–" + ev.EndsAt.In(loc).Format("15:04 MST"),
		CSRF:      m.app.CSRFToken(app.PrincipalOf(c).SessionID.String()),
		CanReport: m.app.CanAtVenue(c, ev.VenueID, ObjIncidents, policies.Write),
		CanHandle: m.app.CanAtVenue(c, ev.VenueID, ObjHandling, policies.Write)}
	content, err := app.RenderTemplate(m.pages, "dashboard", data)
	if err != nil {
		app.Fail(c, err)
		return
	}
	m.app.RenderPortal(c, http.StatusOK, "Live: "+ev.Title, content)
}

type nightRow struct {
	ID       uuid.UUID
	Title    string
	Venue    string
	When     string
	Live     bool
	Inside   int
	Capacity int
	Zones    int
}

// nightPage is the chain's night: every event around now at the venues
// the viewer may watch, with its crowd against capacity.
func (m *Module) nightPage(c *gin.Context) {
	ctx, t := c.Request.Context(), app.TenantOf(c)
	now := m.app.Now()
	evs, err := m.app.Events().Events(ctx, t, app.EventFilter{From: now.Add(-12 * time.Hour), To: now.Add(12 * time.Hour), Limit: 200})
	if err != nil {
		app.Fail(c, err)
		return
	}
	var rows []nightRow
	for _, ev := range evs {
		if ev.Status == "cancelled" || !m.app.CanAtVenue(c, ev.VenueID, ObjDashboard, policies.Read) {
			continue
		}
		loc, lerr := app.Timezone(ev.Timezone)
		if lerr != nil {
			loc = time.UTC
		}
		r := nightRow{ID: ev.ID, Title: ev.Title, Venue: ev.VenueName, When: ev.StartsAt.In(loc).Format("Mon 15:04 MST"), Live: liveWindow(ev, now)}
		zones, err := m.svc.Occupancy(ctx, t, ev)
		if err != nil {
			app.Fail(c, err)
			return
		}
		for _, z := range zones {
			r.Inside += z.Inside
			r.Capacity += z.Capacity
			r.Zones++
		}
		rows = append(rows, r)
	}
	content, err := app.RenderTemplate(m.pages, "night", struct{ Rows []nightRow }{rows})
	if err != nil {
		app.Fail(c, err)
		return
	}
	m.app.RenderPortal(c, http.StatusOK, "Live ops tonight", content)
}
