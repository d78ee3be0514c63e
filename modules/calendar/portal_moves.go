package calendar

import (
	"fmt"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"marquee/app"
)

// portalMoveEvent is where the week grid's drag-and-drop lands: the event
// keeps its length and buffers and takes the new start (venue time) and,
// when given, the stage of the lane it was dropped in, at the version the
// page was drawn from. It is the same change as the event form's move
// (Service.UpdateEvent, the exclusion constraints deciding), so a refusal
// comes back to the week in words and the page draws the event where it
// still is.
func (m *Module) portalMoveEvent(c *gin.Context) {
	v, ok := m.formVenue(c)
	if !ok {
		return
	}
	eid, ok := app.PathID(c, "eventId", "event")
	if !ok {
		return
	}
	ctx, t := c.Request.Context(), app.TenantOf(c)
	week := c.PostForm("week")
	loc := v.Location()
	e, err := m.svc.Event(ctx, t, v.ID, eid)
	if err != nil {
		app.Fail(c, err)
		return
	}
	start, err := formTime(c, "starts", loc)
	if err != nil {
		m.refuse(c, v, week, err, nil)
		return
	}
	end := start.Add(e.EndsAt.Sub(e.StartsAt))
	p := EventPatch{StartsAt: &start, EndsAt: &end}
	if n, err := formInt(c, "version"); err == nil && n > 0 {
		p.IfVersion = n
	}
	if stage := strings.TrimSpace(c.PostForm("stage")); stage != "" && !e.Exclusive {
		id, err := parseID("stage", stage)
		if err != nil {
			m.refuse(c, v, week, invalid("stage", "drop the event on a stage's lane"), nil)
			return
		}
		p.StageID = &id
	}
	moved, err := m.svc.UpdateEvent(ctx, t, v.ID, eid, p)
	if err != nil {
		f, err := describeFailure(err, loc, nil)
		if err != nil {
			app.Fail(c, err)
			return
		}
		f.Error = fmt.Sprintf("“%s” was not moved. %s", e.Title, f.Error)
		m.redirectFailure(c, v, week, f)
		return
	}
	doneRedirect(c, v, moved.StartsAt, "moved")
}

// portalChallengeHold challenges the holds ranking ahead of a hold (the
// default answer time), back to its week with what was done in words.
func (m *Module) portalChallengeHold(c *gin.Context) {
	v, ok := m.formVenue(c)
	if !ok {
		return
	}
	hid, ok := app.PathID(c, "holdId", "hold")
	if !ok {
		return
	}
	ch, err := m.svc.ChallengeHold(c.Request.Context(), app.TenantOf(c), v.ID, hid, 0)
	if err != nil {
		m.refuse(c, v, c.PostForm("week"), err, nil)
		return
	}
	doneRedirect(c, v, ch.Hold.StartsAt, "challenged")
}

// challengeNote says a challenged hold's deadline in the venue's time.
func challengeNote(deadline *time.Time, loc *time.Location) string {
	if deadline == nil {
		return ""
	}
	return "challenged: confirm or release by " + deadline.In(loc).Format("Mon 2 Jan 15:04")
}
