package calendar

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"marquee/app"
	"marquee/policies"
)

// eventPageView is one event in the portal: what it is, and the form that
// edits or moves it (title, category, stage or whole venue, times, setup
// and teardown, status). The database decides conflicts, as for a booking.
type eventPageView struct {
	Event      EventView
	Venue      Venue
	StageName  string
	When       string
	Occupied   string
	Stages     []Stage
	Categories []string
	Statuses   []Status
	Form       eventForm
	Version    int
	Error      string
	Field      string
	Conflicts  []conflictLine
	Flash      string
	CSRF       string
	CanEdit    bool
	CancelNote string
	Sold       int
	Week       string
	TZAbbrev   string
	Tickets    string
	Sale       string
	Presale    string
}

var eventFlashes = map[string]string{
	"saved": "Changes saved.",
}

func (m *Module) eventPage(c *gin.Context) {
	v, ok := m.formVenue(c)
	if !ok {
		return
	}
	eid, ok := app.PathID(c, "eventId", "event")
	if !ok {
		return
	}
	ctx, t := c.Request.Context(), app.TenantOf(c)
	e, err := m.svc.Event(ctx, t, v.ID, eid)
	if err != nil {
		app.Fail(c, err)
		return
	}
	loc := v.Location()
	view := eventPageView{Event: e, Venue: v, Categories: formCategories, Version: e.Version,
		When:     fmtRange(Window{e.StartsAt, e.EndsAt}, loc),
		Occupied: fmtRange(Window{e.OccupiedFrom, e.OccupiedTo}, loc),
		CSRF:     m.app.CSRFToken(app.PrincipalOf(c).SessionID.String()),
		CanEdit:  m.app.CanAtVenue(c, v.ID, ObjEvents, policies.Write) && !e.Status.Final(),
		Flash:    eventFlashes[c.Query("done")],
		Week:     weekOf(e.StartsAt, loc).Format("2006-01-02"),
		TZAbbrev: e.StartsAt.In(loc).Format("MST"),
		Tickets:  "/portal/inventory/" + e.ID.String(),
	}
	view.Statuses = append(view.Statuses, e.Status)
	view.Statuses = append(view.Statuses, transitions[e.Status]...)
	stages, err := m.svc.Stages(ctx, t, v.ID)
	if err != nil {
		app.Fail(c, err)
		return
	}
	view.Stages = stages
	view.StageName = "Whole venue (exclusive use)"
	stage := "exclusive"
	if e.StageID != nil {
		stage = e.StageID.String()
		for _, s := range stages {
			if s.ID == *e.StageID {
				view.StageName = s.Name
			}
		}
	}
	inLocal := func(t *time.Time) string {
		if t == nil {
			return ""
		}
		return t.In(loc).Format(localInput)
	}
	view.Form = eventForm{Title: e.Title, Category: e.Category, Stage: stage, Status: string(e.Status),
		Starts: e.StartsAt.In(loc).Format(localInput), Ends: e.EndsAt.In(loc).Format(localInput),
		Setup: fmt.Sprint(e.SetupMinutes), Teardown: fmt.Sprint(e.TeardownMinutes), Promoter: e.Promoter,
		OnSale: inLocal(e.Sale.OnSaleAt), PresaleStarts: inLocal(e.Sale.PresaleStartsAt), PresaleEnds: inLocal(e.Sale.PresaleEndsAt),
		PresaleCode: e.Sale.PresaleCode}
	view.Sale = saleSummary(e.Sale, e.Status, loc)
	if e.Sale.PresaleStartsAt != nil {
		view.Presale = fmt.Sprintf("Presale %s, code %s.", fmtRange(Window{*e.Sale.PresaleStartsAt, *e.Sale.PresaleEndsAt}, loc), e.Sale.PresaleCode)
	}
	if key := c.Query("form"); key != "" {
		var f formFailure
		if m.app.TakeForm(c, key, &f) {
			if f.Form != nil {
				view.Form = *f.Form
			}
			view.Error, view.Field, view.Conflicts = f.Error, f.Field, f.Conflicts
		}
	}
	rows := []agendaRow{{ID: e.ID.String(), Kind: "event", Final: e.Status.Final()}}
	if err := m.noteCancellations(ctx, t, rows); err != nil {
		app.Fail(c, err)
		return
	}
	view.CancelNote, view.Sold = rows[0].CancelNote, rows[0].Sold
	content, err := app.RenderTemplate(m.pages, "event", view)
	if err != nil {
		app.Fail(c, err)
		return
	}
	m.app.RenderPortal(c, http.StatusOK, e.Title, content)
}

// portalUpdateEvent saves the event form: every field as one change, at
// the version the form was drawn from (a change made meanwhile by someone
// else is refused, not overwritten). A refusal goes back to the event page
// with what was typed (post/redirect/get).
func (m *Module) portalUpdateEvent(c *gin.Context) {
	v, ok := m.formVenue(c)
	if !ok {
		return
	}
	eid, ok := app.PathID(c, "eventId", "event")
	if !ok {
		return
	}
	form := readForm(c)
	back := func(err error) {
		f, err := describeFailure(err, v.Location(), &form)
		if err != nil {
			app.Fail(c, err)
			return
		}
		q := url.Values{}
		if key := m.app.StashForm(c, f); key != "" {
			q.Set("form", key)
		}
		c.Redirect(http.StatusSeeOther, fmt.Sprintf("/portal/venues/%s/events/%s?%s", v.ID, eid, q.Encode()))
	}
	start, end, setup, teardown, err := slotFromForm(c, v.Location())
	if err != nil {
		back(err)
		return
	}
	title, category, status := strings.TrimSpace(form.Title), form.Category, Status(form.Status)
	promoter := strings.TrimSpace(form.Promoter)
	schedule, err := scheduleFromForm(c, v.Location())
	if err != nil {
		back(err)
		return
	}
	p := EventPatch{Title: &title, Category: &category, Status: &status, StartsAt: &start, EndsAt: &end,
		SetupMinutes: &setup, TeardownMinutes: &teardown, Promoter: &promoter, Schedule: &schedule}
	if n, err := formInt(c, "version"); err == nil && n > 0 {
		p.IfVersion = n
	}
	if form.Stage == "exclusive" {
		yes := true
		p.Exclusive = &yes
	} else {
		stage, err := parseID("stage", form.Stage)
		if err != nil {
			back(invalid("stage", "choose a stage or the whole venue"))
			return
		}
		no := false
		p.StageID, p.Exclusive = &stage, &no
	}
	if _, err := m.svc.UpdateEvent(c.Request.Context(), app.TenantOf(c), v.ID, eid, p); err != nil {
		back(err)
		return
	}
	c.Redirect(http.StatusSeeOther, fmt.Sprintf("/portal/venues/%s/events/%s?done=saved", v.ID, eid))
}

// scheduleFromForm reads the on-sale fields of the event form, in venue
// time; an empty field is no time.
func scheduleFromForm(c *gin.Context, loc *time.Location) (SaleSchedule, error) {
	var s SaleSchedule
	for _, f := range []struct {
		name string
		dst  **time.Time
	}{{"on_sale", &s.OnSaleAt}, {"presale_starts", &s.PresaleStartsAt}, {"presale_ends", &s.PresaleEndsAt}} {
		if strings.TrimSpace(c.PostForm(f.name)) == "" {
			continue
		}
		t, err := formTime(c, f.name, loc)
		if err != nil {
			return s, err
		}
		*f.dst = &t
	}
	if code := strings.TrimSpace(c.PostForm("presale_code")); code != "" {
		s.PresaleCode = &code
	}
	return s, nil
}

// saleSummary says an event's on-sale schedule in words.
func saleSummary(s SaleView, status Status, loc *time.Location) string {
	at := func(t *time.Time) string { return t.In(loc).Format("Mon 2 Jan 2006 15:04 MST") }
	switch {
	case s.OnSaleAt == nil && status == StatusOnSale:
		return "On sale now (no on-sale time set)."
	case s.OnSaleAt == nil:
		return "No on-sale time set: tickets sell once the status is on sale."
	case status != StatusOnSale && status != StatusSoldOut:
		return "Public on-sale " + at(s.OnSaleAt) + ", once the status is on sale."
	}
	return "Public on-sale " + at(s.OnSaleAt) + "."
}
