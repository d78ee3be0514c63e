package calendar

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"marquee/app"
	"marquee/policies"
	"marquee/tenants"
)

//go:embed templates/*.html
var templateFS embed.FS

func parsePages() (*template.Template, error) {
	return template.New("calendar").Funcs(template.FuncMap{
		"ordinal": ordinal,
		"human":   func(s string) string { return strings.ReplaceAll(s, "_", " ") },
	}).ParseFS(templateFS, "templates/*.html")
}

// The week view draws each venue day from 06:00 to 06:00 the next morning in
// the venue's timezone, so a late show stays in the column of its evening.
const dayStartHour = 6

// Categories offered by the portal form (the API accepts any slug).
var formCategories = []string{"concert", "club_night", "comedy", "theatre", "festival", "private_hire", "conference", "other"}

type dayHead struct {
	Label   string
	Date    string
	Today   bool
	Weekend bool
}

type block struct {
	ID      string
	Kind    string // event, exclusive or hold
	Class   string
	Style   template.CSS // position of the occupied window in its cell
	Show    template.CSS // position of the show inside the block
	Time    string
	Label   string
	Badge   string
	Tooltip string
	Cut     bool // continues from or into another day
	More    int  // holds queued behind this one in the cascade
	// What a drag needs: the show's start (venue time), its setup (the block
	// begins that much earlier) and the version the page was drawn from.
	Drag    bool
	Starts  string
	Setup   int
	Version int
}

type cell struct {
	Date    string // the venue day, YYYY-MM-DD (from 06:00)
	Today   bool
	Weekend bool
	Now     template.CSS
	Blocks  []block
}

type lane struct {
	StageID string // empty for the whole-venue lane of a venue without stages
	Name    string
	Sub     string
	Cells   []cell
}

type agendaRow struct {
	ID      string
	Kind    string
	When    string
	Stage   string
	Title   string
	Status  string
	Rank    string
	Window  string
	Blocked bool
	Final   bool
	// Sold and CancelNote say what cancelling the event undoes.
	Sold       int
	CancelNote string
	Promoter   string
	// Holds: a hold behind others may challenge them; a challenged hold
	// shows its deadline.
	CanChallenge bool
	Challenge    string
	sortKey      time.Time
	arrival      int
	isHold       bool
}

type eventForm struct {
	Title, Category, Stage, Starts, Ends, Status string
	Setup, Teardown, ExpiresHours                string
	Promoter                                     string
	OnSale, PresaleStarts, PresaleEnds           string
	PresaleCode                                  string
}

type conflictLine struct {
	Title, Where, Status, Window string
}

type calendarView struct {
	Venue      Venue
	Venues     []Venue
	TZ         string
	TZAbbrev   string
	WeekLabel  string
	Week       string
	Prev, Next string
	ThisWeek   string
	Days       []dayHead
	Hours      []string
	Lanes      []lane
	Agenda     []agendaRow
	Stages     []Stage
	Categories []string
	Statuses   []string
	Form       eventForm
	Error      string
	Conflicts  []conflictLine
	Flash      string
	CSRF       string
	CanBook    bool
	CanHold    bool
	SeeHolds   bool
	CanStages  bool
	LocalNow   string
}

// weekOf returns the Monday (venue time, at midnight) of the week holding day.
func weekOf(day time.Time, loc *time.Location) time.Time {
	d := day.In(loc)
	monday := time.Date(d.Year(), d.Month(), d.Day(), 0, 0, 0, 0, loc)
	return monday.AddDate(0, 0, -((int(monday.Weekday()) + 6) % 7))
}

// wallMinutes is how far t is into the venue day starting at dayStart, in
// wall-clock minutes (so grid lines stay put on daylight-saving days).
func wallMinutes(t, dayStart time.Time, loc *time.Location) float64 {
	lt := t.In(loc)
	y, m, d := dayStart.Date()
	ly, lm, ld := lt.Date()
	days := time.Date(ly, lm, ld, 0, 0, 0, 0, time.UTC).Sub(time.Date(y, m, d, 0, 0, 0, 0, time.UTC)).Hours() / 24
	return days*1440 + float64(lt.Hour()*60+lt.Minute()) + float64(lt.Second())/60 - dayStartHour*60
}

func clampPct(v float64) float64 {
	switch {
	case v < 0:
		return 0
	case v > 100:
		return 100
	}
	return v
}

// item is something drawn in a lane: an event or a hold.
type item struct {
	id, kind, class, title, badge, tooltip string
	show, occ                              Window
	column                                 int
	drag                                   bool
	setup, version                         int
}

func fmtRange(w Window, loc *time.Location) string {
	a, b := w.From.In(loc), w.To.In(loc)
	if a.YearDay() == b.YearDay() && a.Year() == b.Year() {
		return a.Format("Mon 2 Jan 15:04") + "–" + b.Format("15:04")
	}
	return a.Format("Mon 2 Jan 15:04") + " – " + b.Format("Mon 2 Jan 15:04")
}

// buildLanes lays items out in day cells. Within a cell, overlapping items go
// side by side: events (and exclusive events) first, holds to their right.
func buildLanes(vc VenueCalendar, loc *time.Location, monday time.Time, seeHolds bool, now time.Time) []lane {
	var exclusive []item
	for _, e := range vc.ExclusiveEvents {
		exclusive = append(exclusive, eventItem(e, "Whole venue", loc))
	}
	var lanes []lane
	stages := vc.Stages
	if len(stages) == 0 {
		stages = []StageCalendar{{Stage: Stage{Name: "Whole venue", Kind: "venue"}}}
	}
	for _, sc := range stages {
		var events, holds []item
		events = append(events, exclusive...)
		for _, e := range sc.Events {
			events = append(events, eventItem(e, sc.Stage.Name, loc))
		}
		if seeHolds {
			for _, h := range sc.Holds {
				class := "hold rank-" + strconv.Itoa(min(h.Rank, 4))
				tip := fmt.Sprintf("%s hold: %s · %s · %s", h.RankLabel, h.Title, sc.Stage.Name, fmtRange(Window{h.StartsAt, h.EndsAt}, loc))
				if h.Promoter != "" {
					tip += " · promoter " + h.Promoter
				}
				if h.ChallengeDeadline != nil {
					class += " challenged"
					tip += " · " + challengeNote(h.ChallengeDeadline, loc)
				}
				holds = append(holds, item{id: h.ID.String(), kind: "hold", class: class,
					title: h.Title, badge: h.RankLabel, tooltip: tip,
					show: Window{h.StartsAt, h.EndsAt}, occ: Window{h.OccupiedFrom, h.OccupiedTo}})
			}
		}
		l := lane{Name: sc.Stage.Name, Sub: fmt.Sprintf("%s · capacity %d", strings.ReplaceAll(sc.Stage.Kind, "_", " "), sc.Stage.Capacity)}
		for d := 0; d < 7; d++ {
			day := monday.AddDate(0, 0, d)
			start := time.Date(day.Year(), day.Month(), day.Day(), dayStartHour, 0, 0, 0, loc)
			end := start.AddDate(0, 0, 1)
			cw := Window{start, end}
			c := cell{Date: day.Format("2006-01-02"), Weekend: day.Weekday() == time.Saturday || day.Weekday() == time.Sunday}
			if !now.Before(cw.From) && now.Before(cw.To) {
				c.Today = true
				c.Now = template.CSS(fmt.Sprintf("top:%.2f%%", clampPct(wallMinutes(now, start, loc)/14.4)))
			}
			ev := inCell(events, cw)
			hs := inCell(holds, cw)
			ne, nh := columns(ev), columns(hs)
			total := ne
			if nh > 0 {
				total++ // all holds share one region
			}
			for _, it := range ev {
				c.Blocks = append(c.Blocks, positioned(it, cw, start, loc, it.column, total, 0, 0))
			}
			// Overlapping holds cascade in their region, the first on top,
			// so its rank and title stay readable however many queue behind.
			for _, it := range hs {
				b := positioned(it, cw, start, loc, ne, total, it.column, nh)
				for _, o := range hs {
					if o.id != it.id && o.column > it.column && o.occ.Overlaps(it.occ) {
						b.More++
					}
				}
				c.Blocks = append(c.Blocks, b)
			}
			l.Cells = append(l.Cells, c)
		}
		if sc.Stage.ID != uuid.Nil {
			l.StageID = sc.Stage.ID.String()
		}
		lanes = append(lanes, l)
	}
	return lanes
}

func eventItem(e EventView, stage string, loc *time.Location) item {
	kind, class := "event", "event status-"+string(e.Status)
	if e.Exclusive {
		kind, class = "exclusive", class+" exclusive"
	}
	occ := Window{e.OccupiedFrom, e.OccupiedTo}
	tip := fmt.Sprintf("%s · %s · %s · %s (occupied %s)", e.Title, stage, strings.ReplaceAll(string(e.Status), "_", " "),
		fmtRange(Window{e.StartsAt, e.EndsAt}, loc), fmtRange(occ, loc))
	if e.Promoter != "" {
		tip += " · promoter " + e.Promoter
	}
	return item{id: e.ID.String(), kind: kind, class: class, title: e.Title, tooltip: tip,
		show: Window{e.StartsAt, e.EndsAt}, occ: occ,
		drag: !e.Status.Final(), setup: e.SetupMinutes, version: e.Version}
}

// inCell returns the items whose occupied window touches the cell, with a
// column each such that overlapping items never share one.
func inCell(items []item, cw Window) []item {
	var out []item
	for _, it := range items {
		if it.occ.Overlaps(cw) {
			out = append(out, it)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].occ.From.Before(out[j].occ.From) })
	var ends []time.Time
	for i := range out {
		col := -1
		for c, end := range ends {
			if !end.After(out[i].occ.From) {
				col = c
				break
			}
		}
		if col < 0 {
			col = len(ends)
			ends = append(ends, time.Time{})
		}
		ends[col] = out[i].occ.To
		out[i].column = col
	}
	return out
}

func columns(items []item) int {
	n := 0
	for _, it := range items {
		n = max(n, it.column+1)
	}
	return n
}

// positioned places an item in its cell: column col of total equal columns,
// or, for holds (depth > 0), the cascade step k of depth in the holds' column.
func positioned(it item, cw Window, dayStart time.Time, loc *time.Location, col, total, k, depth int) block {
	top := clampPct(wallMinutes(it.occ.From, dayStart, loc) / 14.4)
	bottom := clampPct(wallMinutes(it.occ.To, dayStart, loc) / 14.4)
	height := max(bottom-top, 0.8)
	showTop := clampPct(wallMinutes(it.show.From, dayStart, loc) / 14.4)
	showBottom := clampPct(wallMinutes(it.show.To, dayStart, loc) / 14.4)
	rel := func(v float64) float64 { return clampPct((v - top) / height * 100) }
	width := 100 / float64(total)
	const step = 9 // px between cascaded holds
	style := fmt.Sprintf("top:%.2f%%;height:%.2f%%;left:%.2f%%;width:calc(%.2f%% - 3px)", top, height, float64(col)*width, width)
	if depth > 0 {
		style = fmt.Sprintf("top:%.2f%%;height:%.2f%%;left:calc(%.2f%% + %dpx);width:calc(%.2f%% - %dpx);z-index:%d",
			top, height, float64(col)*width, k*step, width, 3+(depth-1)*step, 20-k)
	}
	b := block{ID: it.id, Kind: it.kind, Class: it.class, Label: it.title, Badge: it.badge, Tooltip: it.tooltip,
		Style: template.CSS(style),
		Show:  template.CSS(fmt.Sprintf("top:%.2f%%;height:%.2f%%", rel(showTop), max(rel(showBottom)-rel(showTop), 0))),
		Cut:   it.occ.From.Before(cw.From) || it.occ.To.After(cw.To),
	}
	if it.kind != "hold" && !it.show.From.Before(cw.From) && it.show.From.Before(cw.To) {
		b.Time = it.show.From.In(loc).Format("15:04")
	}
	if it.drag {
		b.Drag, b.Starts, b.Setup, b.Version = true, it.show.From.In(loc).Format(localInput), it.setup, it.version
	}
	return b
}

func buildAgenda(vc VenueCalendar, loc *time.Location, seeHolds bool) []agendaRow {
	var rows []agendaRow
	stageName := map[uuid.UUID]string{}
	for _, sc := range vc.Stages {
		stageName[sc.Stage.ID] = sc.Stage.Name
	}
	addEvent := func(e EventView) {
		stage := "Whole venue (exclusive)"
		if e.StageID != nil {
			stage = stageName[*e.StageID]
		}
		rows = append(rows, agendaRow{ID: e.ID.String(), Kind: "event", When: fmtRange(Window{e.StartsAt, e.EndsAt}, loc),
			Stage: stage, Title: e.Title, Status: string(e.Status), Window: fmtRange(Window{e.OccupiedFrom, e.OccupiedTo}, loc),
			Final: e.Status.Final(), Promoter: e.Promoter, sortKey: e.StartsAt})
	}
	for _, e := range vc.ExclusiveEvents {
		addEvent(e)
	}
	for _, sc := range vc.Stages {
		for _, e := range sc.Events {
			addEvent(e)
		}
		if !seeHolds {
			continue
		}
		for _, h := range sc.Holds {
			rows = append(rows, agendaRow{ID: h.ID.String(), Kind: "hold", When: fmtRange(Window{h.StartsAt, h.EndsAt}, loc),
				Stage: sc.Stage.Name, Title: h.Title, Status: string(h.Status), Rank: h.RankLabel, Blocked: h.Blocked,
				Window: fmtRange(Window{h.OccupiedFrom, h.OccupiedTo}, loc), Promoter: h.Promoter,
				CanChallenge: h.Rank > 1, Challenge: challengeNote(h.ChallengeDeadline, loc),
				sortKey: h.StartsAt, arrival: h.Rank, isHold: true})
		}
	}
	sort.SliceStable(rows, func(i, j int) bool {
		if !rows[i].sortKey.Equal(rows[j].sortKey) {
			return rows[i].sortKey.Before(rows[j].sortKey)
		}
		if rows[i].isHold != rows[j].isHold {
			return !rows[i].isHold
		}
		return rows[i].arrival < rows[j].arrival
	})
	return rows
}

var flashes = map[string]string{
	"booked":      "Event booked.",
	"held":        "Hold placed.",
	"held_behind": "Hold placed behind a live hold on this date: it cannot confirm over it. Challenge the hold ahead to give it a deadline to confirm or release.",
	"released":    "Hold released; the holds behind it moved up.",
	"confirmed":   "Hold confirmed as an event.",
	"cancelled":   "Event cancelled; its window is free again.",
	"stage":       "Stage added.",
	"moved":       "Event moved.",
	"challenged":  "Challenge sent: the holds ahead must confirm or release by their deadline, or they are released.",
}

// calendarAt says which week to draw: the one holding date (YYYY-MM-DD in
// venue time), else the one holding instant, else this week.
type calendarAt struct {
	date    string
	instant time.Time
}

// formFailure is a refused submission carried to the page the browser is
// redirected to: what was typed, and what was wrong in words (a conflict
// names the events in the way).
type formFailure struct {
	Form      *eventForm     `json:"form,omitempty"`
	Error     string         `json:"error"`
	Field     string         `json:"field,omitempty"`
	Conflicts []conflictLine `json:"conflicts,omitempty"`
}

// describeFailure says a refusal for the page; an error that is not a
// refusal is the server's fault and is returned as such.
func describeFailure(err error, loc *time.Location, form *eventForm) (formFailure, error) {
	var e *app.Error
	if !errors.As(err, &e) {
		return formFailure{}, err
	}
	f := formFailure{Form: form, Error: e.Detail, Field: e.Field}
	if e.Code == "schedule_conflict" {
		f.Error = "Schedule conflict: this window is taken."
		bs, _ := e.Extra["conflicts"].([]BlockerView)
		for _, b := range bs {
			where := "whole venue (exclusive use)"
			if !b.Exclusive {
				where = b.StageName
			}
			f.Conflicts = append(f.Conflicts, conflictLine{Title: b.Title, Where: where,
				Status: strings.ReplaceAll(string(b.Status), "_", " "), Window: fmtRange(Window{b.OccupiedFrom, b.OccupiedTo}, loc)})
		}
	}
	return f, nil
}

// renderCalendar draws the week view of a venue; failure, when set, is a
// refused submission shown on the page.
func (m *Module) renderCalendar(c *gin.Context, venueID uuid.UUID, at calendarAt, status int, failure *formFailure) {
	ctx, t := c.Request.Context(), app.TenantOf(c)
	v, err := m.svc.Venue(ctx, t, venueID)
	if err != nil {
		app.Fail(c, err)
		return
	}
	loc := v.Location()
	now := time.Now()
	week := now
	if d, err := time.ParseInLocation("2006-01-02", at.date, loc); err == nil {
		week = d.Add(12 * time.Hour)
	} else if !at.instant.IsZero() {
		week = at.instant
	}
	monday := weekOf(week, loc)
	w := Window{time.Date(monday.Year(), monday.Month(), monday.Day(), dayStartHour, 0, 0, 0, loc), time.Time{}}
	w.To = w.From.AddDate(0, 0, 7)
	cals, err := m.svc.Calendar(ctx, t, []uuid.UUID{venueID}, w)
	if err != nil {
		app.Fail(c, err)
		return
	}
	vc := cals[0]
	venues, err := m.visibleVenues(c)
	if err != nil {
		app.Fail(c, err)
		return
	}
	view := calendarView{
		Venue: v, Venues: venues, TZ: v.Timezone, TZAbbrev: w.From.Format("MST"),
		Week: monday.Format("2006-01-02"), Prev: monday.AddDate(0, 0, -7).Format("2006-01-02"),
		Next: monday.AddDate(0, 0, 7).Format("2006-01-02"), ThisWeek: weekOf(now, loc).Format("2006-01-02"),
		Hours:      []string{"06:00", "12:00", "18:00", "00:00"},
		Categories: formCategories,
		Statuses:   []string{"draft", "confirmed", "on_sale"},
		CSRF:       m.app.CSRFToken(app.PrincipalOf(c).SessionID.String()),
		CanBook:    m.app.CanAtVenue(c, venueID, ObjEvents, policies.Write),
		CanHold:    m.app.CanAtVenue(c, venueID, ObjHolds, policies.Write),
		SeeHolds:   m.app.CanAtVenue(c, venueID, ObjHolds, policies.Read),
		CanStages:  m.app.CanAtVenue(c, venueID, ObjVenues, policies.Write),
		LocalNow:   now.In(loc).Format("Mon 2 Jan 15:04 MST"),
		Flash:      flashes[c.Query("done")],
	}
	sunday := monday.AddDate(0, 0, 6)
	view.WeekLabel = monday.Format("2 Jan") + " – " + sunday.Format("2 Jan 2006")
	for d := 0; d < 7; d++ {
		day := monday.AddDate(0, 0, d)
		// Today is the venue day (06:00 to 06:00) that holds now, as in the grid.
		start := time.Date(day.Year(), day.Month(), day.Day(), dayStartHour, 0, 0, 0, loc)
		view.Days = append(view.Days, dayHead{Label: day.Format("Mon 2 Jan"), Date: day.Format("2006-01-02"),
			Today:   !now.Before(start) && now.Before(start.AddDate(0, 0, 1)),
			Weekend: day.Weekday() == time.Saturday || day.Weekday() == time.Sunday})
	}
	view.Lanes = buildLanes(vc, loc, monday, view.SeeHolds, now)
	view.Agenda = buildAgenda(vc, loc, view.SeeHolds)
	if err := m.noteCancellations(ctx, t, view.Agenda); err != nil {
		app.Fail(c, err)
		return
	}
	for _, sc := range vc.Stages {
		view.Stages = append(view.Stages, sc.Stage)
	}
	if failure != nil && failure.Form != nil {
		view.Form = *failure.Form
	} else {
		view.Form = m.defaultForm(vc, monday, now, loc)
	}
	if failure != nil {
		view.Error, view.Conflicts = failure.Error, failure.Conflicts
	}
	content, err := app.RenderTemplate(m.pages, "calendar", view)
	if err != nil {
		app.Fail(c, err)
		return
	}
	m.app.RenderPortal(c, status, v.Name+" · Calendar", content)
}

// localInput is the value format of <input type="datetime-local">.
const localInput = "2006-01-02T15:04"

func (m *Module) calendarPage(c *gin.Context) {
	vid, ok := app.PathID(c, "venueId", "venue")
	if !ok {
		return
	}
	week := c.Query("week")
	if _, err := time.Parse("2006-01-02", week); week != "" && err != nil {
		app.Fail(c, app.InvalidField("invalid_week", "week", "week must be a date, YYYY-MM-DD"))
		return
	}
	var failure *formFailure
	if key := c.Query("form"); key != "" {
		var f formFailure
		if m.app.TakeForm(c, key, &f) {
			failure = &f
		}
	}
	m.renderCalendar(c, vid, calendarAt{date: week}, http.StatusOK, failure)
}

// defaultForm proposes a booking that fits: the first evening (20:00 to
// 23:00, from today on in this week) with a stage free for the show and
// its setup and teardown, so submitting it as it is does not collide.
func (m *Module) defaultForm(vc VenueCalendar, monday, now time.Time, loc *time.Location) eventForm {
	f := eventForm{Category: "concert", Setup: "120", Teardown: "60", Status: "confirmed"}
	free := func(sc StageCalendar, occ Window) bool {
		for _, e := range vc.ExclusiveEvents {
			if !e.Status.Final() && occ.Overlaps(Window{e.OccupiedFrom, e.OccupiedTo}) {
				return false
			}
		}
		for _, e := range sc.Events {
			if !e.Status.Final() && occ.Overlaps(Window{e.OccupiedFrom, e.OccupiedTo}) {
				return false
			}
		}
		for _, h := range sc.Holds {
			if occ.Overlaps(Window{h.OccupiedFrom, h.OccupiedTo}) {
				return false
			}
		}
		return true
	}
	first := time.Date(monday.Year(), monday.Month(), monday.Day(), 20, 0, 0, 0, loc)
	for d := 0; d < 7; d++ {
		start := first.AddDate(0, 0, d)
		if start.Before(now) {
			continue
		}
		occ := Window{start.Add(-2 * time.Hour), start.Add(4 * time.Hour)}
		for _, sc := range vc.Stages {
			if free(sc, occ) {
				f.Stage, f.Starts, f.Ends = sc.Stage.ID.String(), start.Format(localInput), start.Add(3*time.Hour).Format(localInput)
				return f
			}
		}
	}
	// A full week: propose the next week's Monday, which the page will
	// check again when it is shown.
	start := first.AddDate(0, 0, 7)
	f.Starts, f.Ends = start.Format(localInput), start.Add(3*time.Hour).Format(localInput)
	return f
}

func (m *Module) calendarHome(c *gin.Context) {
	vs, err := m.visibleVenues(c)
	if err != nil {
		app.Fail(c, err)
		return
	}
	if len(vs) == 0 {
		c.Redirect(http.StatusSeeOther, "/portal/venues")
		return
	}
	q := ""
	if week := c.Query("week"); week != "" {
		if _, err := time.Parse("2006-01-02", week); err == nil {
			q = "?week=" + week
		}
	}
	c.Redirect(http.StatusSeeOther, "/portal/venues/"+vs[0].ID.String()+"/calendar"+q)
}

type venueRow struct {
	Venue
	Stages   []Stage
	LocalNow string
}

func (m *Module) venuesPage(c *gin.Context) {
	ctx, t := c.Request.Context(), app.TenantOf(c)
	vs, err := m.visibleVenues(c)
	if err != nil {
		app.Fail(c, err)
		return
	}
	rows := make([]venueRow, 0, len(vs))
	for _, v := range vs {
		ss, err := m.svc.Stages(ctx, t, v.ID)
		if err != nil {
			app.Fail(c, err)
			return
		}
		rows = append(rows, venueRow{Venue: v, Stages: ss, LocalNow: time.Now().In(v.Location()).Format("Mon 15:04 MST")})
	}
	var f venueFailure
	if key := c.Query("form"); key == "" || !m.app.TakeForm(c, key, &f) {
		f = venueFailure{Form: venueForm{Timezone: "America/New_York"}}
	}
	m.renderVenues(c, http.StatusOK, rows, f.Error, f.Form)
}

// venueFailure is a refused venue form, carried to the venues page.
type venueFailure struct {
	Form  venueForm `json:"form"`
	Error string    `json:"error"`
}

type venueForm struct{ Name, Address, Timezone, Capacity string }

func (m *Module) renderVenues(c *gin.Context, status int, rows []venueRow, msg string, form venueForm) {
	content, err := app.RenderTemplate(m.pages, "venues", struct {
		Venues    []venueRow
		CanCreate bool
		CSRF      string
		Error     string
		Form      venueForm
		Zones     []zoneChoice
	}{rows, m.app.Can(c, ObjVenues, policies.Write), m.app.CSRFToken(app.PrincipalOf(c).SessionID.String()), msg, form,
		zoneOptions(form.Timezone, time.Now())})
	if err != nil {
		app.Fail(c, err)
		return
	}
	m.app.RenderPortal(c, status, "Venues", content)
}

// ---- form posts

func formInt(c *gin.Context, field string) (int, error) {
	s := strings.TrimSpace(c.PostForm(field))
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, invalid(field, "must be a whole number of minutes")
	}
	return n, nil
}

func formTime(c *gin.Context, field string, loc *time.Location) (time.Time, error) {
	t, err := time.ParseInLocation(localInput, c.PostForm(field), loc)
	if err != nil {
		return time.Time{}, invalid(field, "must be a date and time")
	}
	return t.UTC(), nil
}

func readForm(c *gin.Context) eventForm {
	return eventForm{Title: c.PostForm("title"), Category: c.PostForm("category"), Stage: c.PostForm("stage"),
		Starts: c.PostForm("starts"), Ends: c.PostForm("ends"), Status: c.PostForm("status"),
		Setup: c.PostForm("setup"), Teardown: c.PostForm("teardown"), ExpiresHours: c.PostForm("expires_hours"),
		Promoter: c.PostForm("promoter"), OnSale: c.PostForm("on_sale"), PresaleStarts: c.PostForm("presale_starts"),
		PresaleEnds: c.PostForm("presale_ends"), PresaleCode: c.PostForm("presale_code")}
}

// slotFromForm reads the shared fields of the booking form, in venue time.
func slotFromForm(c *gin.Context, loc *time.Location) (start, end time.Time, setup, teardown int, err error) {
	if start, err = formTime(c, "starts", loc); err != nil {
		return
	}
	if end, err = formTime(c, "ends", loc); err != nil {
		return
	}
	if setup, err = formInt(c, "setup"); err != nil {
		return
	}
	teardown, err = formInt(c, "teardown")
	return
}

func (m *Module) formVenue(c *gin.Context) (Venue, bool) {
	vid, ok := app.PathID(c, "venueId", "venue")
	if !ok {
		return Venue{}, false
	}
	v, err := m.svc.Venue(c.Request.Context(), app.TenantOf(c), vid)
	if err != nil {
		app.Fail(c, err)
		return Venue{}, false
	}
	return v, true
}

// redisplay sends the browser back to the calendar, on the week the
// submission was about, with what was typed and what was wrong
// (post/redirect/get: reloading the page does not submit it again).
func (m *Module) redisplay(c *gin.Context, v Venue, err error, form eventForm) {
	week := c.PostForm("week")
	if at, perr := time.ParseInLocation(localInput, form.Starts, v.Location()); perr == nil {
		week = weekOf(at, v.Location()).Format("2006-01-02")
	}
	m.refuse(c, v, week, err, &form)
}

// refuse redirects to the calendar's week with a refusal to show.
func (m *Module) refuse(c *gin.Context, v Venue, week string, err error, form *eventForm) {
	f, err := describeFailure(err, v.Location(), form)
	if err != nil {
		app.Fail(c, err)
		return
	}
	m.redirectFailure(c, v, week, f)
}

// redirectFailure sends the browser to the week with a refusal to show.
func (m *Module) redirectFailure(c *gin.Context, v Venue, week string, f formFailure) {
	q := url.Values{}
	if _, perr := time.Parse("2006-01-02", week); perr == nil {
		q.Set("week", week)
	}
	if key := m.app.StashForm(c, f); key != "" {
		q.Set("form", key)
	}
	c.Redirect(http.StatusSeeOther, fmt.Sprintf("/portal/venues/%s/calendar?%s", v.ID, q.Encode()))
}

func doneRedirect(c *gin.Context, v Venue, at time.Time, what string) {
	week := weekOf(at, v.Location()).Format("2006-01-02")
	c.Redirect(http.StatusSeeOther, fmt.Sprintf("/portal/venues/%s/calendar?week=%s&done=%s", v.ID, week, url.QueryEscape(what)))
}

func (m *Module) portalCreateEvent(c *gin.Context) {
	v, ok := m.formVenue(c)
	if !ok {
		return
	}
	form := readForm(c)
	start, end, setup, teardown, err := slotFromForm(c, v.Location())
	if err != nil {
		m.redisplay(c, v, err, form)
		return
	}
	in := EventInput{Title: form.Title, Category: form.Category, Status: Status(form.Status), StartsAt: start, EndsAt: end,
		SetupMinutes: setup, TeardownMinutes: teardown, Promoter: form.Promoter}
	if form.Stage == "exclusive" {
		in.Exclusive = true
	} else if in.StageID, err = optionalID("stage", &form.Stage); err != nil || in.StageID == nil {
		m.redisplay(c, v, invalid("stage", "choose a stage or the whole venue"), form)
		return
	}
	if _, _, err := m.svc.CreateEvent(c.Request.Context(), app.TenantOf(c), v.ID, in, nil); err != nil {
		m.redisplay(c, v, err, form)
		return
	}
	doneRedirect(c, v, start, "booked")
}

func (m *Module) portalCreateHold(c *gin.Context) {
	v, ok := m.formVenue(c)
	if !ok {
		return
	}
	form := readForm(c)
	start, end, setup, teardown, err := slotFromForm(c, v.Location())
	if err != nil {
		m.redisplay(c, v, err, form)
		return
	}
	stage, err := parseID("stage", form.Stage)
	if err != nil {
		m.redisplay(c, v, invalid("stage", "a hold is on one stage: choose a stage"), form)
		return
	}
	in := HoldInput{StageID: stage, Title: form.Title, Category: form.Category, Promoter: form.Promoter, StartsAt: start, EndsAt: end,
		SetupMinutes: setup, TeardownMinutes: teardown}
	if h := strings.TrimSpace(form.ExpiresHours); h != "" {
		n, err := strconv.ParseFloat(h, 64)
		if err != nil || n <= 0 || n > MaxHoldLifetime.Hours() {
			m.redisplay(c, v, invalid("expires_hours", "must be a positive number of hours"), form)
			return
		}
		exp := time.Now().Add(time.Duration(n * float64(time.Hour))).UTC().Truncate(time.Second)
		in.ExpiresAt = &exp
	}
	h, _, err := m.svc.CreateHold(c.Request.Context(), app.TenantOf(c), v.ID, in, nil)
	if err != nil {
		m.redisplay(c, v, err, form)
		return
	}
	if h.Rank > 1 {
		doneRedirect(c, v, start, "held_behind")
		return
	}
	doneRedirect(c, v, start, "held")
}

func (m *Module) portalReleaseHold(c *gin.Context) {
	v, ok := m.formVenue(c)
	if !ok {
		return
	}
	hid, ok := app.PathID(c, "holdId", "hold")
	if !ok {
		return
	}
	h, err := m.svc.ReleaseHold(c.Request.Context(), app.TenantOf(c), v.ID, hid)
	if err != nil {
		m.refuse(c, v, c.PostForm("week"), err, nil)
		return
	}
	doneRedirect(c, v, h.StartsAt, "released")
}

func (m *Module) portalConfirmHold(c *gin.Context) {
	v, ok := m.formVenue(c)
	if !ok {
		return
	}
	hid, ok := app.PathID(c, "holdId", "hold")
	if !ok {
		return
	}
	ctx, t := c.Request.Context(), app.TenantOf(c)
	h, err := m.svc.Hold(ctx, t, v.ID, hid)
	if err != nil {
		app.Fail(c, err)
		return
	}
	if _, _, err := m.svc.ConfirmHold(ctx, t, v.ID, hid, ConfirmInput{}, nil); err != nil {
		m.refuse(c, v, weekOf(h.StartsAt, v.Location()).Format("2006-01-02"), err, nil)
		return
	}
	doneRedirect(c, v, h.StartsAt, "confirmed")
}

// noteCancellations tells, on each event's Cancel button, what cancelling
// it undoes: with tickets sold, the confirmation says how many and what
// happens to them.
func (m *Module) noteCancellations(ctx context.Context, t tenants.Tenant, rows []agendaRow) error {
	var ids []uuid.UUID
	for _, r := range rows {
		if id, err := uuid.Parse(r.ID); err == nil && r.Kind == "event" && !r.Final {
			ids = append(ids, id)
		}
	}
	impact := map[uuid.UUID]app.CancellationImpact{}
	if len(ids) > 0 {
		var err error
		if impact, err = m.svc.CancellationImpact(ctx, t, ids); err != nil {
			return err
		}
	}
	for i := range rows {
		r := &rows[i]
		r.CancelNote = "Cancel this event? Its window becomes free."
		id, err := uuid.Parse(r.ID)
		if err != nil || r.Kind != "event" {
			continue
		}
		if im := impact[id]; im.Tickets > 0 || im.Orders > 0 {
			r.Sold = im.Tickets
			r.CancelNote = fmt.Sprintf("Cancel this event? %s sold in %s. "+
				"All of them will be voided, every paid order refunded in full through Stripe, open holds released, "+
				"the waiting room closed and each buyer told by email. This cannot be undone. Its window becomes free.",
				plural(im.Tickets, "ticket is", "tickets are"), plural(im.Orders, "paid order", "paid orders"))
		}
	}
	return nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

func (m *Module) portalCancelEvent(c *gin.Context) {
	v, ok := m.formVenue(c)
	if !ok {
		return
	}
	eid, ok := app.PathID(c, "eventId", "event")
	if !ok {
		return
	}
	cancelled := StatusCancelled
	e, err := m.svc.UpdateEvent(c.Request.Context(), app.TenantOf(c), v.ID, eid, EventPatch{Status: &cancelled})
	if err != nil {
		m.refuse(c, v, c.PostForm("week"), err, nil)
		return
	}
	doneRedirect(c, v, e.StartsAt, "cancelled")
}

func (m *Module) portalCreateStage(c *gin.Context) {
	v, ok := m.formVenue(c)
	if !ok {
		return
	}
	name, kind := c.PostForm("name"), c.PostForm("type")
	capacity, err := strconv.Atoi(strings.TrimSpace(c.PostForm("capacity")))
	if err != nil {
		capacity = -1
	}
	if _, err := m.svc.CreateStage(c.Request.Context(), app.TenantOf(c), v.ID, StageInput{Name: &name, Capacity: &capacity, Kind: &kind}); err != nil {
		m.refuse(c, v, c.PostForm("week"), err, nil)
		return
	}
	c.Redirect(http.StatusSeeOther, fmt.Sprintf("/portal/venues/%s/calendar?done=stage", v.ID))
}

func (m *Module) portalCreateVenue(c *gin.Context) {
	form := venueForm{Name: c.PostForm("name"), Address: c.PostForm("address"), Timezone: c.PostForm("timezone"), Capacity: c.PostForm("capacity")}
	capacity, err := strconv.Atoi(strings.TrimSpace(form.Capacity))
	if err != nil {
		capacity = 0
	}
	v, err := m.svc.CreateVenue(c.Request.Context(), app.TenantOf(c), VenueInput{Name: &form.Name, Address: &form.Address,
		Timezone: &form.Timezone, Capacity: &capacity})
	if err != nil {
		var e *app.Error
		if !errors.As(err, &e) {
			app.Fail(c, err)
			return
		}
		q := ""
		if key := m.app.StashForm(c, venueFailure{Form: form, Error: e.Detail}); key != "" {
			q = "?form=" + key
		}
		c.Redirect(http.StatusSeeOther, "/portal/venues"+q+"#venue-form")
		return
	}
	c.Redirect(http.StatusSeeOther, "/portal/venues/"+v.ID.String()+"/calendar")
}
