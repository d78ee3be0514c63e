package staffing

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/policies"
	"marquee/tenants"
)

// Portal pages of timesheets and swaps: the lead's page of an event (who is
// on, check in and out, the venue's swaps to approve) and the forms of
// "My shifts" (check in and out, offer a shift, take a colleague's).

type timesheetView struct {
	Timesheet
	When, In, Out string
	Hours         string
	Cost          string
}

type swapView struct {
	Swap
	When string
}

type mySwapView struct {
	Swap
	When string
	Mine bool // asked by the person; otherwise offered to them
}

// clockState is whether a person is checked in and out of a shift.
type clockState struct{ In, Out bool }

// myClocks reads the person's check-ins of shifts from a day ago on.
func (s *Service) myClocks(ctx context.Context, t tenants.Tenant, staffID uuid.UUID) (map[uuid.UUID]clockState, error) {
	var rows []struct {
		AssignmentID uuid.UUID
		Out          bool
	}
	err := s.app.TxWith(ctx, t, tenants.TxOptions{ReadOnly: true}, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT assignment_id, checked_out_at IS NOT NULL AS out FROM stf_timesheets WHERE staff_id = ? AND checked_in_at > ?`,
			staffID, s.app.Now().UTC().Add(-48*time.Hour)).Scan(&rows).Error
	})
	out := map[uuid.UUID]clockState{}
	for _, r := range rows {
		out[r.AssignmentID] = clockState{In: true, Out: r.Out}
	}
	return out, err
}

// localClock writes a time in the venue's zone.
func localClock(at *time.Time, tz string) string {
	if at == nil {
		return ""
	}
	loc, err := app.Timezone(tz)
	if err != nil {
		loc = time.UTC
	}
	return at.In(loc).Format("15:04")
}

func pad2(n int) string { return fmt.Sprintf("%02d", n) }

// timesheetsPage is the lead's page of one event.
func (m *Module) timesheetsPage(c *gin.Context) {
	ev, err := m.event(c, policies.Write)
	if err != nil {
		app.Fail(c, err)
		return
	}
	ctx, t := c.Request.Context(), app.TenantOf(c)
	ts, err := m.svc.EventTimesheets(ctx, t, ev.VenueID, ev.ID)
	if err != nil {
		app.Fail(c, err)
		return
	}
	swaps, err := m.svc.VenueSwaps(ctx, t, ev.VenueID)
	if err != nil {
		app.Fail(c, err)
		return
	}
	cost, err := m.svc.EventLabourCost(ctx, t, ev.ID)
	if err != nil {
		app.Fail(c, err)
		return
	}
	data := struct {
		Event  app.EventInfo
		When   string
		CSRF   string
		Rows   []timesheetView
		Swaps  []swapView
		Costs  []string
		Open   int
		Rounds int
	}{Event: ev, When: localWhen(ev.StartsAt, ev.EndsAt, ev.Timezone), CSRF: m.app.CSRFToken(app.PrincipalOf(c).SessionID.String()), Rounds: RoundingMinutes}
	for _, r := range ts {
		v := timesheetView{Timesheet: r, When: localWhen(r.StartsAt, r.EndsAt, r.Timezone), In: localClock(r.CheckedInAt, r.Timezone), Out: localClock(r.CheckedOutAt, r.Timezone)}
		if r.CheckedOutAt != nil {
			v.Hours = fmt.Sprintf("%d:%s", r.Minutes/60, pad2(r.Minutes%60))
		}
		if r.CostMinor != nil && r.Currency != nil {
			v.Cost = app.FormatMoney(*r.CostMinor, *r.Currency)
		}
		data.Rows = append(data.Rows, v)
	}
	for _, w := range swaps {
		data.Swaps = append(data.Swaps, swapView{Swap: w, When: localWhen(w.StartsAt, w.EndsAt, w.Timezone)})
	}
	for _, lc := range cost {
		data.Open += lc.Open
		if lc.Currency != "" {
			data.Costs = append(data.Costs, app.FormatMoney(lc.AmountMinor, lc.Currency))
		}
	}
	content, err := app.RenderTemplate(m.pages, "timesheets", data)
	if err != nil {
		app.Fail(c, err)
		return
	}
	m.app.RenderPortal(c, http.StatusOK, "Timesheets · "+ev.Title, content)
}

// portalLeadClock checks a person in or out from the lead's page.
func (m *Module) portalLeadClock(in bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		ev, err := m.event(c, policies.Write)
		if err != nil {
			app.Fail(c, err)
			return
		}
		id, err := app.PathUUID(c, "assignmentId", "assignment")
		if err != nil {
			app.Fail(c, err)
			return
		}
		cl := Clocking{VenueID: ev.VenueID, By: userOf(c)}
		if in {
			_, err = m.svc.CheckIn(c.Request.Context(), app.TenantOf(c), cl, id)
		} else {
			_, err = m.svc.CheckOut(c.Request.Context(), app.TenantOf(c), cl, id)
		}
		if err != nil {
			app.Fail(c, err)
			return
		}
		c.Redirect(http.StatusSeeOther, "/portal/staffing/events/"+ev.ID.String()+"/timesheets")
	}
}

// portalDecideSwap approves or refuses a swap from the lead's page.
func (m *Module) portalDecideSwap(approve bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		ev, err := m.event(c, policies.Write)
		if err != nil {
			app.Fail(c, err)
			return
		}
		id, err := app.PathUUID(c, "swapId", "swap")
		if err != nil {
			app.Fail(c, err)
			return
		}
		if approve {
			_, err = m.svc.ApproveSwap(c.Request.Context(), app.TenantOf(c), ev.VenueID, id, userOf(c))
		} else {
			_, err = m.svc.RefuseSwap(c.Request.Context(), app.TenantOf(c), ev.VenueID, id, userOf(c))
		}
		if err != nil {
			app.Fail(c, err)
			return
		}
		c.Redirect(http.StatusSeeOther, "/portal/staffing/events/"+ev.ID.String()+"/timesheets")
	}
}

// portalMine runs one of the person's own acts from "My shifts", then
// shows the schedule again.
func (m *Module) portalMine(act func(c *gin.Context, staffID, id uuid.UUID) error, param, what string) gin.HandlerFunc {
	return func(c *gin.Context) {
		st, err := m.me(c)
		if err != nil {
			app.Fail(c, err)
			return
		}
		id, err := app.PathUUID(c, param, what)
		if err != nil {
			app.Fail(c, err)
			return
		}
		if err := act(c, st.ID, id); err != nil {
			app.Fail(c, err)
			return
		}
		c.Redirect(http.StatusSeeOther, "/portal/staffing/me")
	}
}

func (m *Module) registerPortalMore(r *app.Registrar) {
	signed := app.SignedIn() // the event's venue (staffing.shifts:write) or the person's own, checked in the handler
	r.Portal(http.MethodGet, "/staffing/events/:eventId/timesheets", signed, m.timesheetsPage)
	r.Portal(http.MethodPost, "/staffing/events/:eventId/assignments/:assignmentId/check-in", signed, m.portalLeadClock(true))
	r.Portal(http.MethodPost, "/staffing/events/:eventId/assignments/:assignmentId/check-out", signed, m.portalLeadClock(false))
	r.Portal(http.MethodPost, "/staffing/events/:eventId/swaps/:swapId/approve", signed, m.portalDecideSwap(true))
	r.Portal(http.MethodPost, "/staffing/events/:eventId/swaps/:swapId/refuse", signed, m.portalDecideSwap(false))
	self := func(in bool) func(c *gin.Context, staffID, id uuid.UUID) error {
		return func(c *gin.Context, staffID, id uuid.UUID) error {
			cl := Clocking{StaffID: staffID, By: userOf(c)}
			var err error
			if in {
				_, err = m.svc.CheckIn(c.Request.Context(), app.TenantOf(c), cl, id)
			} else {
				_, err = m.svc.CheckOut(c.Request.Context(), app.TenantOf(c), cl, id)
			}
			return err
		}
	}
	r.Portal(http.MethodPost, "/staffing/me/assignments/:assignmentId/check-in", signed, m.portalMine(self(true), "assignmentId", "assignment"))
	r.Portal(http.MethodPost, "/staffing/me/assignments/:assignmentId/check-out", signed, m.portalMine(self(false), "assignmentId", "assignment"))
	r.Portal(http.MethodPost, "/staffing/me/assignments/:assignmentId/swap", signed, m.portalMine(func(c *gin.Context, staffID, id uuid.UUID) error {
		var colleague *uuid.UUID
		if v := c.PostForm("colleague_id"); v != "" {
			cid, err := parseUUID("colleague_id", v)
			if err != nil {
				return err
			}
			colleague = &cid
		}
		_, err := m.svc.AskSwap(c.Request.Context(), app.TenantOf(c), staffID, id, colleague)
		return err
	}, "assignmentId", "assignment"))
	r.Portal(http.MethodPost, "/staffing/me/swaps/:swapId/accept", signed, m.portalMine(func(c *gin.Context, staffID, id uuid.UUID) error {
		_, err := m.svc.AcceptSwap(c.Request.Context(), app.TenantOf(c), staffID, id)
		return err
	}, "swapId", "swap"))
	r.Portal(http.MethodPost, "/staffing/me/swaps/:swapId/withdraw", signed, m.portalMine(func(c *gin.Context, staffID, id uuid.UUID) error {
		_, err := m.svc.WithdrawSwap(c.Request.Context(), app.TenantOf(c), staffID, id)
		return err
	}, "swapId", "swap"))
}
