package staffing

import (
	"embed"
	"html/template"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/tenants"
)

//go:embed templates/*.html
var templateFS embed.FS

func parsePages() (*template.Template, error) {
	return template.New("staffing").ParseFS(templateFS, "templates/*.html")
}

// localWhen writes a range in its venue's zone, as staff read it.
func localWhen(from, to time.Time, tz string) string {
	loc, err := app.Timezone(tz)
	if err != nil {
		loc = time.UTC
	}
	return from.In(loc).Format("Mon 2 Jan 15:04") + "–" + to.In(loc).Format("15:04 MST")
}

type gridEvent struct {
	Coverage EventCoverage
	When     string
	Hours    []string
	Rows     []GridRow
}

type venueOption struct {
	ID       uuid.UUID
	Name     string
	Selected bool
}

// coveragePage is the night's coverage grid: per event, roles × hours,
// short hours in red.
func (m *Module) coveragePage(c *gin.Context) {
	date, venue, err := m.nightQuery(c)
	if err != nil {
		app.Fail(c, err)
		return
	}
	ctx, t := c.Request.Context(), app.TenantOf(c)
	night, err := m.svc.Night(ctx, t, date, venue)
	if err != nil {
		app.Fail(c, err)
		return
	}
	data := struct {
		Date   string
		Night  NightCoverage
		Events []gridEvent
		Venues []venueOption
	}{Date: night.Date, Night: night}
	err = m.app.TxWith(ctx, t, tenants.TxOptions{ReadOnly: true}, func(tx *gorm.DB) error {
		for _, ec := range night.Events {
			rows, hours, err := grid(tx, ec)
			if err != nil {
				return err
			}
			data.Events = append(data.Events, gridEvent{Coverage: ec, When: localWhen(ec.StartsAt, ec.EndsAt, ec.Timezone), Hours: hours, Rows: rows})
		}
		return nil
	})
	if err != nil {
		app.Fail(c, err)
		return
	}
	seen := map[uuid.UUID]bool{}
	for _, ec := range night.Events {
		if !seen[ec.VenueID] {
			seen[ec.VenueID] = true
			data.Venues = append(data.Venues, venueOption{ID: ec.VenueID, Name: ec.VenueName, Selected: ec.VenueID == venue})
		}
	}
	content, err := app.RenderTemplate(m.pages, "coverage", data)
	if err != nil {
		app.Fail(c, err)
		return
	}
	m.app.RenderPortal(c, http.StatusOK, "Staffing coverage", content)
}

type myShiftView struct {
	AssignmentID uuid.UUID
	Status       string
	Role, Title  string
	When, Venue  string
	Zone         string
	Clock        clockState
	Upcoming     bool
	Colleagues   []Colleague // who may be asked by name to take it
}

type openView struct {
	RoleName string
	When     string
	Free     int
}

// myPage is a staff member's schedule: published shifts with confirm and
// decline, and a stream that reloads it when a change reaches them.
func (m *Module) myPage(c *gin.Context) {
	data := struct {
		Staff    *Staff
		CSRF     string
		Shifts   []myShiftView
		Open     []openView
		Expiring []Expiring
		Swaps    []mySwapView
	}{CSRF: m.app.CSRFToken(app.PrincipalOf(c).SessionID.String())}
	st, err := m.me(c)
	if err == nil {
		var sc Schedule
		if sc, err = m.svc.MySchedule(c.Request.Context(), app.TenantOf(c), st); err != nil {
			app.Fail(c, err)
			return
		}
		data.Staff, data.Expiring = &st, sc.Expiring
		clocks, err := m.svc.myClocks(c.Request.Context(), app.TenantOf(c), st.ID)
		if err != nil {
			app.Fail(c, err)
			return
		}
		swaps, err := m.svc.MySwaps(c.Request.Context(), app.TenantOf(c), st.ID)
		if err != nil {
			app.Fail(c, err)
			return
		}
		now := m.app.Now()
		var swappable []uuid.UUID
		for _, s := range sc.Shifts {
			if s.Shift.StartsAt.After(now) && (s.Status == StatusAssigned || s.Status == StatusConfirmed) {
				swappable = append(swappable, s.Shift.ID)
			}
		}
		colleagues, err := m.svc.SwapCandidates(c.Request.Context(), app.TenantOf(c), st.ID, swappable)
		if err != nil {
			app.Fail(c, err)
			return
		}
		for _, s := range sc.Shifts {
			data.Shifts = append(data.Shifts, myShiftView{AssignmentID: s.AssignmentID, Status: s.Status, Role: s.Shift.RoleName, Title: s.EventTitle,
				When: localWhen(s.Shift.StartsAt, s.Shift.EndsAt, s.Shift.Timezone), Venue: s.VenueName, Zone: s.Shift.Zone,
				Clock: clocks[s.AssignmentID], Upcoming: s.Shift.StartsAt.After(now), Colleagues: colleagues[s.Shift.ID]})
		}
		for _, w := range swaps {
			data.Swaps = append(data.Swaps, mySwapView{Swap: w, When: localWhen(w.StartsAt, w.EndsAt, w.Timezone), Mine: w.FromStaff == st.ID})
		}
		for _, s := range sc.Open {
			data.Open = append(data.Open, openView{RoleName: s.RoleName, When: localWhen(s.StartsAt, s.EndsAt, s.Timezone), Free: s.Places - s.Filled})
		}
	}
	content, rerr := app.RenderTemplate(m.pages, "mine", data)
	if rerr != nil {
		app.Fail(c, rerr)
		return
	}
	m.app.RenderPortal(c, http.StatusOK, "My shifts", content)
}

// portalAnswer confirms or declines from the page's forms, then shows the
// schedule again.
func (m *Module) portalAnswer(confirm bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		if _, err := m.answer(c, confirm); err != nil {
			app.Fail(c, err)
			return
		}
		c.Redirect(http.StatusSeeOther, "/portal/staffing/me")
	}
}
