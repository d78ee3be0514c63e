// Package staffing is the staffing module: the chain's staff members with
// the roles they can work and the certifications they hold, requirements
// per event and role that follow ticket sales, shifts whose assignments the
// database keeps honest (nobody in two overlapping shifts, no shift
// over-filled), coverage per event and night, and publishing a venue's day
// with live changes pushed to the people they touch.
package staffing

import (
	"html/template"
	"net/http"
	"time"

	"marquee/app"
	"marquee/jobs"
	"marquee/policies"
)

// Module is the staffing feature module.
type Module struct {
	app   *app.Core
	svc   *Service
	pages *template.Template
}

// New returns the staffing module, ready to register.
func New() *Module { return &Module{} }

// Name implements app.Module.
func (m *Module) Name() string { return "staffing" }

// Service returns the staffing service (after Register).
func (m *Module) Service() *Service { return m.svc }

// Objects of staffing's permissions, in its namespace staffing.*.
const (
	ObjStaff    = "staffing.staff"    // staff members, roles, certifications (chain-wide)
	ObjShifts   = "staffing.shifts"   // shifts, assignments, requirements, coverage, publishing (per venue)
	ObjSettings = "staffing.settings" // the chain's rules and templates
	ObjPayroll  = "staffing.payroll"  // the chain-wide payroll (every venue's hours and pay)
)

// grants are the default permissions of each role: chain admins run the
// directory and the rules; venue managers and ops and security leads staff
// their venue's shows; promoters and finance read coverage. Staff members
// (policies.RoleStaffMember) get nothing here: their own schedule is theirs
// by who they are, not by a permission.
func grants() []policies.Grant {
	var g []policies.Grant
	add := func(object, action string, roles ...string) {
		for _, r := range roles {
			g = append(g, policies.Grant{Role: r, Object: object, Action: action})
		}
	}
	add(ObjStaff, policies.Read, policies.RoleChainAdmin, policies.RoleVenueManager, policies.RoleOpsLead, policies.RoleSecurityLead, policies.RoleSupport)
	add(ObjStaff, policies.Write, policies.RoleChainAdmin, policies.RoleSupport)
	add(ObjShifts, policies.Read, policies.RoleChainAdmin, policies.RoleFinance, policies.RolePromoter, policies.RoleVenueManager,
		policies.RoleOpsLead, policies.RoleSecurityLead, policies.RoleSupport)
	add(ObjShifts, policies.Write, policies.RoleChainAdmin, policies.RoleVenueManager, policies.RoleOpsLead, policies.RoleSecurityLead, policies.RoleSupport)
	add(ObjSettings, policies.Read, policies.RoleChainAdmin, policies.RoleSupport)
	add(ObjSettings, policies.Write, policies.RoleChainAdmin)
	// Chain roles only: a venue manager reads their venue's payroll through
	// staffing.shifts at that venue.
	add(ObjPayroll, policies.Read, policies.RoleChainAdmin, policies.RoleFinance)
	return g
}

// Task types of staffing.
const (
	// TaskRecompute recomputes the requirements of a chain's coming events
	// from their ticket sales, every five minutes.
	TaskRecompute = "staffing:requirements-recompute"
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
	r.Needs(app.EventDirectoryContract) // shifts and requirements belong to the calendar's events
	r.ProvideStaffingCoverage(coverageContract{m})
	r.Grants(grants()...)

	read, write := policies.Read, policies.Write
	chain := func(obj, act string) app.Permission { return app.Require(obj, act) }
	atVenue := func(act string) app.Permission { return app.RequireAtVenue(ObjShifts, act, "venueId") }
	signed := app.SignedIn() // event routes check the event's venue in the handler; "me" routes are the caller's own

	r.API(http.MethodGet, "/staffing/certifications", signed, "List certifications (staffing.staff:read at some venue)", app.Handle(m.listCerts))
	r.API(http.MethodPost, "/staffing/certifications", chain(ObjStaff, write), "Add a certification, with those it includes", app.Handle(m.createCert).Created())
	r.API(http.MethodPut, "/staffing/certifications/:certId", chain(ObjStaff, write), "Rename a certification or change what it includes", app.Handle(m.updateCert))
	r.API(http.MethodGet, "/staffing/certifications/expiring", signed, "Certifications running out soon, soonest first (staffing.staff:read at some venue)",
		app.Handle(m.expiring).Query("days", "1 to 365 (30)"))
	r.API(http.MethodGet, "/staffing/roles", signed, "List roles (staffing.staff:read at some venue)", app.Handle(m.listRoles))
	r.API(http.MethodPost, "/staffing/roles", chain(ObjStaff, write), "Add a role: its sign-up policy and the certification it needs", app.Handle(m.createRole).Created())
	r.API(http.MethodPatch, "/staffing/roles/:roleId", chain(ObjStaff, write), "Change a role", app.Handle(m.updateRole))
	r.API(http.MethodGet, "/staffing/staff", signed, "List staff members (staffing.staff:read at some venue; cursor pagination)",
		app.Handle(m.listStaff).Query("venue_id", "home venue").Query("role_id", "can work this role").Query("after", "cursor").Query("limit", "1 to 200 (50)"))
	r.API(http.MethodPost, "/staffing/staff", chain(ObjStaff, write), "Add a staff member", app.Handle(m.createStaff).Created())
	r.API(http.MethodGet, "/staffing/staff/:staffId", signed, "Read a staff member (staffing.staff:read at some venue)", app.Handle(m.getStaff))
	r.API(http.MethodPatch, "/staffing/staff/:staffId", chain(ObjStaff, write), "Change a staff member (roles and certifications are replaced when given)", app.Handle(m.updateStaff))
	r.API(http.MethodGet, "/staffing/settings", chain(ObjSettings, read), "The chain's staffing rules and templates", app.Handle(m.getSettings))
	r.API(http.MethodPut, "/staffing/settings", chain(ObjSettings, write), "Set the chain's staffing rules and templates", app.Handle(m.putSettings))

	r.API(http.MethodPost, "/venues/:venueId/staffing/shifts", atVenue(write), "Add a shift to an event at the venue", app.Handle(m.createShift).Created())
	r.API(http.MethodGet, "/venues/:venueId/staffing/shifts", atVenue(read), "The venue's shifts with their people",
		app.Handle(m.listShifts).Query("day", "local date (YYYY-MM-DD)").Query("event_id", "only this event's"))
	r.API(http.MethodPatch, "/venues/:venueId/staffing/shifts/:shiftId", atVenue(write), "Move, resize or cancel a shift (its people are told on a published day)", app.Handle(m.updateShift))
	r.API(http.MethodPost, "/venues/:venueId/staffing/shifts/:shiftId/assignments", atVenue(write), "Put a staff member on a shift (409 shift_full, shift_overlap, certification_required, ...)", app.Handle(m.assign).Created())
	r.API(http.MethodPost, "/venues/:venueId/staffing/assignments/:assignmentId/approve", atVenue(write), "Approve a sign-up request, if a place is free", app.Handle(m.approve)).NoBody()
	r.API(http.MethodDelete, "/venues/:venueId/staffing/assignments/:assignmentId", atVenue(write), "Take a person off a shift", app.Handle(m.unassign))
	r.API(http.MethodPost, "/venues/:venueId/staffing/days/:day/publish", atVenue(write), "Publish the venue's day: staff see its shifts and hear of every change", app.Handle(m.publish)).NoBody()

	r.API(http.MethodGet, "/events/:eventId/staffing/requirements", signed, "An event's requirements as last computed (staffing.shifts:read at its venue)", app.Handle(m.getRequirements))
	r.API(http.MethodPut, "/events/:eventId/staffing/requirements", signed, "Set an event's requirements per role: fixed, or a ratio to attendance with a minimum (staffing.shifts:write at its venue)", app.Handle(m.putRequirements))
	r.API(http.MethodPut, "/events/:eventId/staffing/attendance", signed, "Set the attendance expected from doors on (staffing.shifts:write at its venue)", app.Handle(m.putAttendance))
	r.API(http.MethodPost, "/events/:eventId/staffing/requirements/recompute", signed, "Recompute an event's requirements from its ticket sales now (staffing.shifts:write at its venue)", app.Handle(m.recompute)).NoBody()
	r.API(http.MethodGet, "/events/:eventId/staffing/coverage", signed, "An event's coverage per role: required, assigned, confirmed, gap (staffing.shifts:read at its venue)", app.Handle(m.eventCoverage))
	r.API(http.MethodGet, "/staffing/coverage", signed, "Every event of a night, per role (chain-wide: staffing.shifts:read for the chain; venue_id: at that venue)",
		app.Handle(m.nightCoverage).Query("date", "the night (YYYY-MM-DD, the venues' local date)").Query("venue_id", "one venue only"))

	r.API(http.MethodGet, "/staffing/me", signed, "Your schedule: your shifts on published days, shifts open to you, certifications running out", app.Handle(m.mySchedule))
	r.API(http.MethodPost, "/staffing/me/shifts/:shiftId/signup", signed, "Sign up for a published shift (open roles: at once; approve roles: a request)", app.Handle(m.signUp).Created()).NoBody()
	r.API(http.MethodPost, "/staffing/me/assignments/:assignmentId/confirm", signed, "Confirm one of your shifts", app.Handle(m.confirm)).NoBody()
	r.API(http.MethodPost, "/staffing/me/assignments/:assignmentId/decline", signed, "Decline one of your shifts (its place is given back)", app.Handle(m.decline)).NoBody()
	r.APIStream("/staffing/me/stream", signed, "Your schedule's changes, live (server-sent events)", m.myStream)

	r.API(http.MethodGet, "/staffing/rates", chain(ObjSettings, read), "Hourly rates per role (minor units and currency)", app.Handle(m.getRates))
	r.API(http.MethodPut, "/staffing/rates", chain(ObjSettings, write), "Set the hourly rates of roles (check-ins from now on are paid at them)", app.Handle(m.putRates))
	r.API(http.MethodPost, "/venues/:venueId/staffing/assignments/:assignmentId/check-in", atVenue(write), "Check a person in on their shift (a lead; at: when, if recorded late)",
		app.Handle(m.leadClock(true)).OptionalBody())
	r.API(http.MethodPost, "/venues/:venueId/staffing/assignments/:assignmentId/check-out", atVenue(write), "Check a person out of their shift (a lead; at: when, if recorded late)",
		app.Handle(m.leadClock(false)).OptionalBody())
	r.API(http.MethodGet, "/venues/:venueId/staffing/timesheets", atVenue(read), "An event's people with their check-ins, rounded minutes and cost",
		app.Handle(m.listTimesheets).Query("event_id", "the event (required)"))
	r.API(http.MethodGet, "/venues/:venueId/staffing/payroll", atVenue(read), "Hours per person for payroll (CSV): check-ins on the venue's local dates from..to, each span rounded to the nearest 15 minutes",
		app.Raw(m.payroll).Produces("text/csv", "").Query("from", "first local date (YYYY-MM-DD)").Query("to", "last local date (YYYY-MM-DD), at most 93 days on"))
	r.API(http.MethodGet, "/staffing/payroll", chain(ObjPayroll, read), "The chain's hours per person and venue for payroll (CSV): each venue's check-ins on its own local dates from..to, spans rounded to the nearest 15 minutes",
		app.Raw(m.chainPayroll).Produces("text/csv", "").Query("from", "first local date (YYYY-MM-DD)").Query("to", "last local date (YYYY-MM-DD), at most 93 days on"))
	r.API(http.MethodGet, "/events/:eventId/staffing/labour-cost", signed, "The event's labour cost per currency from its timesheets (staffing.shifts:read at its venue)", app.Handle(m.labourCost))
	r.API(http.MethodPost, "/staffing/me/assignments/:assignmentId/check-in", signed, "Check yourself in on your shift (from two hours before it to its end)", app.Handle(m.selfClock(true))).NoBody()
	r.API(http.MethodPost, "/staffing/me/assignments/:assignmentId/check-out", signed, "Check yourself out of your shift", app.Handle(m.selfClock(false))).NoBody()
	r.API(http.MethodPost, "/staffing/me/assignments/:assignmentId/swap", signed, "Ask a colleague by name (who must be able to take it: role, certification, no overlapping shift; they are mailed) or anyone who works the role to take your place on a shift",
		app.Handle(m.askSwap).Created().OptionalBody())
	r.API(http.MethodGet, "/staffing/me/swaps", signed, "Swaps you asked for and those you may take", app.Handle(m.mySwaps))
	r.API(http.MethodPost, "/staffing/me/swaps/:swapId/accept", signed, "Take a colleague's shift (409 swap_taken when another colleague was first); a manager approves", app.Handle(m.mySwapAct(true))).NoBody()
	r.API(http.MethodPost, "/staffing/me/swaps/:swapId/withdraw", signed, "Take back a swap you asked for while nobody has taken it (409 swap_not_open once a colleague accepted: a manager decides it then)", app.Handle(m.mySwapAct(false))).NoBody()
	r.API(http.MethodGet, "/venues/:venueId/staffing/swaps", atVenue(read), "The venue's swaps of shifts to come, live ones first", app.Handle(m.venueSwaps))
	r.API(http.MethodPost, "/venues/:venueId/staffing/swaps/:swapId/approve", atVenue(write), "Approve an accepted swap: the place moves in one transaction under every rule of an assignment",
		app.Handle(m.decideSwap(true))).NoBody()
	r.API(http.MethodPost, "/venues/:venueId/staffing/swaps/:swapId/refuse", atVenue(write), "Refuse a swap", app.Handle(m.decideSwap(false))).NoBody()

	r.Portal(http.MethodGet, "/staffing", signed, m.coveragePage)
	r.Portal(http.MethodGet, "/staffing/me", signed, m.myPage)
	r.Portal(http.MethodPost, "/staffing/me/assignments/:assignmentId/confirm", signed, m.portalAnswer(true))
	r.Portal(http.MethodPost, "/staffing/me/assignments/:assignmentId/decline", signed, m.portalAnswer(false))
	m.registerPortalMore(r)
	r.Portal(http.MethodGet, "/staffing/payroll", signed, m.payrollPage) // chain roles: every venue; venue managers: theirs
	r.Portal(http.MethodGet, "/staffing/payroll.csv", signed, m.payrollCSV)
	r.Nav("Staffing", "/portal/staffing", 30, app.Require(ObjShifts, read))
	r.Nav("My shifts", "/portal/staffing/me", 31, signed)
	r.Nav("Payroll", "/portal/staffing/payroll", 32, app.Require(ObjPayroll, read))

	r.ProvideLabourCosts(m.svc) // booking's settlement reads labour as an expense through app.LabourCosts
	r.Task(TaskRecompute, m.recomputeTask)
	r.Task(TaskRecomputeEvent, m.recomputeEventTask)
	r.OnTicketsSold(m.svc.TicketsSold) // sales milestones (milestones.go); the periodic job stays the safety net
	r.Every(jobs.Periodic{Cron: "*/5 * * * *", Type: TaskRecompute, Queue: jobs.QueueRollups, Bucket: 5 * time.Minute})
	// The seed staffs the calendar's demo events. It finds the event with
	// sold tickets when the inventory's seed ran before it, which the
	// registration order of modules.All gives; naming "inventory" here would
	// make the module unusable without it (tests run it with a fake seller).
	r.Seed(m.seed, "calendar")
	return nil
}
