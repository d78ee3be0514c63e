package staffing

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"marquee/app"
	"marquee/policies"
)

// Handlers of timesheets, rates and swaps.

type rateItem struct {
	RoleID      string `json:"role_id"`
	HourlyMinor int64  `json:"hourly_minor"`
	Currency    string `json:"currency"`
}

type ratesRequest struct {
	Rates []rateItem `json:"rates"`
}

func (m *Module) getRates(c *gin.Context, _ app.None) (app.List[Rate], error) {
	rs, err := m.svc.Rates(c.Request.Context(), app.TenantOf(c))
	return app.ListOf(rs), err
}

func (m *Module) putRates(c *gin.Context, req ratesRequest) (app.List[Rate], error) {
	ins := make([]RateInput, len(req.Rates))
	for i, r := range req.Rates {
		id, err := parseUUID("role_id", r.RoleID)
		if err != nil {
			return app.List[Rate]{}, err
		}
		ins[i] = RateInput{RoleID: id, HourlyMinor: r.HourlyMinor, Currency: r.Currency}
	}
	rs, err := m.svc.SetRates(c.Request.Context(), app.TenantOf(c), ins)
	return app.ListOf(rs), err
}

type clockRequest struct {
	// At is when it happened, for a lead recording it late (default: now).
	At *time.Time `json:"at"`
}

func userOf(c *gin.Context) *uuid.UUID {
	if p := app.PrincipalOf(c); p.Kind == app.KindUser {
		return &p.UserID
	}
	return nil
}

func (m *Module) leadClock(in bool) func(c *gin.Context, req clockRequest) (Timesheet, error) {
	return func(c *gin.Context, req clockRequest) (Timesheet, error) {
		v, err := venueID(c)
		if err != nil {
			return Timesheet{}, err
		}
		id, err := app.PathUUID(c, "assignmentId", "assignment")
		if err != nil {
			return Timesheet{}, err
		}
		cl := Clocking{VenueID: v, By: userOf(c), At: req.At}
		if in {
			return m.svc.CheckIn(c.Request.Context(), app.TenantOf(c), cl, id)
		}
		return m.svc.CheckOut(c.Request.Context(), app.TenantOf(c), cl, id)
	}
}

func (m *Module) selfClock(in bool) func(c *gin.Context, _ app.None) (Timesheet, error) {
	return func(c *gin.Context, _ app.None) (Timesheet, error) {
		st, err := m.me(c)
		if err != nil {
			return Timesheet{}, err
		}
		id, err := app.PathUUID(c, "assignmentId", "assignment")
		if err != nil {
			return Timesheet{}, err
		}
		cl := Clocking{StaffID: st.ID, By: userOf(c)}
		if in {
			return m.svc.CheckIn(c.Request.Context(), app.TenantOf(c), cl, id)
		}
		return m.svc.CheckOut(c.Request.Context(), app.TenantOf(c), cl, id)
	}
}

func (m *Module) listTimesheets(c *gin.Context, _ app.None) (app.List[Timesheet], error) {
	v, err := venueID(c)
	if err != nil {
		return app.List[Timesheet]{}, err
	}
	ev, err := parseUUID("event_id", c.Query("event_id"))
	if err != nil {
		return app.List[Timesheet]{}, err
	}
	ts, err := m.svc.EventTimesheets(c.Request.Context(), app.TenantOf(c), v, ev)
	return app.ListOf(ts), err
}

// payroll answers the venue's hours per person for a period, as CSV.
func (m *Module) payroll(c *gin.Context) {
	v, err := venueID(c)
	if err != nil {
		app.Fail(c, err)
		return
	}
	// The route lets in whoever reads shifts at the venue; pay is for
	// the chain's payroll roles and those who run the venue's staffing
	// (promoters read coverage chain-wide, not pay).
	if !m.app.Can(c, ObjPayroll, policies.Read) && !m.app.CanAtVenue(c, v, ObjShifts, policies.Write) {
		app.Fail(c, app.Forbidden("forbidden", "a venue's payroll is for the chain's payroll roles and those who run the venue's staffing"))
		return
	}
	from, to := c.Query("from"), c.Query("to")
	lines, err := m.svc.Payroll(c.Request.Context(), app.TenantOf(c), v, from, to)
	if err != nil {
		app.Fail(c, err)
		return
	}
	c.Header("Content-Disposition", `attachment; filename="payroll-`+from+`-`+to+`.csv"`)
	c.Header("Content-Type", "text/csv; charset=utf-8")
	c.Status(http.StatusOK)
	if err := WritePayrollCSV(c.Writer, from, to, lines); err != nil {
		m.app.Log.Warn("staffing: payroll csv", "err", err)
	}
}

func (m *Module) labourCost(c *gin.Context, _ app.None) (app.List[app.LabourCost], error) {
	ev, err := m.event(c, policies.Read)
	if err != nil {
		return app.List[app.LabourCost]{}, err
	}
	lc, err := m.svc.EventLabourCost(c.Request.Context(), app.TenantOf(c), ev.ID)
	return app.ListOf(lc), err
}

type swapRequest struct {
	// ColleagueID is the colleague asked; absent: any colleague who works
	// the shift's role.
	ColleagueID *string `json:"colleague_id"`
}

func (m *Module) askSwap(c *gin.Context, req swapRequest) (Swap, error) {
	st, err := m.me(c)
	if err != nil {
		return Swap{}, err
	}
	id, err := app.PathUUID(c, "assignmentId", "assignment")
	if err != nil {
		return Swap{}, err
	}
	var colleague *uuid.UUID
	if req.ColleagueID != nil {
		cid, err := parseUUID("colleague_id", *req.ColleagueID)
		if err != nil {
			return Swap{}, err
		}
		colleague = &cid
	}
	return m.svc.AskSwap(c.Request.Context(), app.TenantOf(c), st.ID, id, colleague)
}

func (m *Module) mySwaps(c *gin.Context, _ app.None) (app.List[Swap], error) {
	st, err := m.me(c)
	if err != nil {
		return app.List[Swap]{}, err
	}
	ws, err := m.svc.MySwaps(c.Request.Context(), app.TenantOf(c), st.ID)
	return app.ListOf(ws), err
}

func (m *Module) mySwapAct(accept bool) func(c *gin.Context, _ app.None) (Swap, error) {
	return func(c *gin.Context, _ app.None) (Swap, error) {
		st, err := m.me(c)
		if err != nil {
			return Swap{}, err
		}
		id, err := app.PathUUID(c, "swapId", "swap")
		if err != nil {
			return Swap{}, err
		}
		if accept {
			return m.svc.AcceptSwap(c.Request.Context(), app.TenantOf(c), st.ID, id)
		}
		return m.svc.WithdrawSwap(c.Request.Context(), app.TenantOf(c), st.ID, id)
	}
}

func (m *Module) venueSwaps(c *gin.Context, _ app.None) (app.List[Swap], error) {
	v, err := venueID(c)
	if err != nil {
		return app.List[Swap]{}, err
	}
	ws, err := m.svc.VenueSwaps(c.Request.Context(), app.TenantOf(c), v)
	return app.ListOf(ws), err
}

func (m *Module) decideSwap(approve bool) func(c *gin.Context, _ app.None) (Swap, error) {
	return func(c *gin.Context, _ app.None) (Swap, error) {
		v, err := venueID(c)
		if err != nil {
			return Swap{}, err
		}
		id, err := app.PathUUID(c, "swapId", "swap")
		if err != nil {
			return Swap{}, err
		}
		if approve {
			return m.svc.ApproveSwap(c.Request.Context(), app.TenantOf(c), v, id, userOf(c))
		}
		return m.svc.RefuseSwap(c.Request.Context(), app.TenantOf(c), v, id, userOf(c))
	}
}
