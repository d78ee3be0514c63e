package staffing

import (
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"marquee/app"
	"marquee/policies"
)

// Handlers read top to bottom: decode and validate, call the service,
// respond. Routes declared SignedIn check finer permissions here: the
// directory at some venue, an event's venue, or nothing but who the caller
// is (their own schedule).

func (m *Module) canReadDirectory(c *gin.Context) error {
	if !m.app.CanAnywhere(c, ObjStaff, policies.Read) {
		return app.Forbidden("forbidden", "your roles do not allow reading staffing.staff")
	}
	return nil
}

// event reads the path's event and requires a permission at its venue.
func (m *Module) event(c *gin.Context, action string) (app.EventInfo, error) {
	id, err := app.PathUUID(c, "eventId", "event")
	if err != nil {
		return app.EventInfo{}, err
	}
	dir := m.app.Events()
	if dir == nil {
		return app.EventInfo{}, app.Unavailable("events_unavailable", 0, "no module provides events")
	}
	ev, err := dir.Event(c.Request.Context(), app.TenantOf(c), id)
	if err != nil {
		return ev, err
	}
	if !m.app.CanAtVenue(c, ev.VenueID, ObjShifts, action) {
		return ev, app.Forbidden("forbidden", "your roles do not allow "+action+" on staffing.shifts at this event's venue")
	}
	return ev, nil
}

// me is the signed-in user's staff record.
func (m *Module) me(c *gin.Context) (Staff, error) {
	p := app.PrincipalOf(c)
	if p.Kind != app.KindUser {
		return Staff{}, app.NotFound("staff member")
	}
	return m.svc.StaffByUser(c.Request.Context(), app.TenantOf(c), p.UserID)
}

// ---- certifications and roles

type certRequest struct {
	Key      string   `json:"key"`
	Name     string   `json:"name"`
	Includes []string `json:"includes"`
}

func (r certRequest) input() (CertInput, error) {
	inc, err := parseUUIDs("includes", r.Includes)
	return CertInput{Key: r.Key, Name: r.Name, Includes: inc}, err
}

func (m *Module) listCerts(c *gin.Context, _ app.None) (app.List[Certification], error) {
	if err := m.canReadDirectory(c); err != nil {
		return app.List[Certification]{}, err
	}
	list, err := m.svc.Certs(c.Request.Context(), app.TenantOf(c))
	return app.ListOf(list), err
}

func (m *Module) createCert(c *gin.Context, req certRequest) (Certification, error) {
	in, err := req.input()
	if err != nil {
		return Certification{}, err
	}
	return m.svc.SaveCert(c.Request.Context(), app.TenantOf(c), nil, in)
}

func (m *Module) updateCert(c *gin.Context, req certRequest) (Certification, error) {
	id, err := app.PathUUID(c, "certId", "certification")
	if err != nil {
		return Certification{}, err
	}
	in, err := req.input()
	if err != nil {
		return Certification{}, err
	}
	return m.svc.SaveCert(c.Request.Context(), app.TenantOf(c), &id, in)
}

func (m *Module) expiring(c *gin.Context, _ app.None) (app.List[Expiring], error) {
	if err := m.canReadDirectory(c); err != nil {
		return app.List[Expiring]{}, err
	}
	days := 30
	if v := c.Query("days"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 365 {
			return app.List[Expiring]{}, app.InvalidField("invalid_request", "days", "days is 1 to 365")
		}
		days = n
	}
	list, err := m.svc.ExpiringCerts(c.Request.Context(), app.TenantOf(c), days, uuid.Nil)
	return app.ListOf(list), err
}

type roleRequest struct {
	Key    string  `json:"key"`
	Name   *string `json:"name"`
	Signup *string `json:"signup"`
	// CertificationID: a certification's id, or "" to need none.
	CertificationID *string `json:"certification_id"`
}

func (r roleRequest) input() (RoleInput, error) {
	in := RoleInput{Key: r.Key, Name: r.Name, Signup: r.Signup}
	if r.CertificationID != nil {
		var id *uuid.UUID
		if *r.CertificationID != "" {
			v, err := parseUUID("certification_id", *r.CertificationID)
			if err != nil {
				return in, err
			}
			id = &v
		}
		in.CertID = &id
	}
	return in, nil
}

func (m *Module) listRoles(c *gin.Context, _ app.None) (app.List[Role], error) {
	if err := m.canReadDirectory(c); err != nil {
		return app.List[Role]{}, err
	}
	list, err := m.svc.Roles(c.Request.Context(), app.TenantOf(c))
	return app.ListOf(list), err
}

func (m *Module) createRole(c *gin.Context, req roleRequest) (Role, error) {
	in, err := req.input()
	if err != nil {
		return Role{}, err
	}
	return m.svc.SaveRole(c.Request.Context(), app.TenantOf(c), nil, in)
}

func (m *Module) updateRole(c *gin.Context, req roleRequest) (Role, error) {
	id, err := app.PathUUID(c, "roleId", "role")
	if err != nil {
		return Role{}, err
	}
	if req.Key != "" {
		return Role{}, app.InvalidField("invalid_request", "key", "a role's key does not change")
	}
	in, err := req.input()
	if err != nil {
		return Role{}, err
	}
	return m.svc.SaveRole(c.Request.Context(), app.TenantOf(c), &id, in)
}

// ---- staff

type certGrantRequest struct {
	CertificationID string  `json:"certification_id"`
	ExpiresOn       *string `json:"expires_on"` // YYYY-MM-DD; absent or null: does not expire
}

type staffRequest struct {
	// UserID links the chain user the person signs in as ("" unlinks).
	UserID         *string             `json:"user_id"`
	Name           *string             `json:"name"`
	Email          *string             `json:"email"`
	Phone          *string             `json:"phone"`
	HomeVenues     *[]string           `json:"home_venues"`
	Active         *bool               `json:"active"`
	Roles          *[]string           `json:"roles"`
	Certifications *[]certGrantRequest `json:"certifications"`
}

func (r staffRequest) input() (StaffInput, error) {
	in := StaffInput{Name: r.Name, Email: r.Email, Phone: r.Phone, Active: r.Active}
	if r.UserID != nil {
		var id *uuid.UUID
		if *r.UserID != "" {
			v, err := parseUUID("user_id", *r.UserID)
			if err != nil {
				return in, err
			}
			id = &v
		}
		in.UserID = &id
	}
	if r.HomeVenues != nil {
		ids, err := parseUUIDs("home_venues", *r.HomeVenues)
		if err != nil {
			return in, err
		}
		in.HomeVenues = &ids
	}
	if r.Roles != nil {
		ids, err := parseUUIDs("roles", *r.Roles)
		if err != nil {
			return in, err
		}
		in.Roles = &ids
	}
	if r.Certifications != nil {
		grants := make([]CertGrant, 0, len(*r.Certifications))
		for _, g := range *r.Certifications {
			id, err := parseUUID("certifications", g.CertificationID)
			if err != nil {
				return in, err
			}
			cg := CertGrant{CertID: id}
			if g.ExpiresOn != nil {
				d, err := parseDate("certifications", *g.ExpiresOn)
				if err != nil {
					return in, err
				}
				cg.ExpiresOn = &d
			}
			grants = append(grants, cg)
		}
		in.Certs = &grants
	}
	return in, nil
}

func (m *Module) listStaff(c *gin.Context, _ app.None) (app.Page[Staff], error) {
	if err := m.canReadDirectory(c); err != nil {
		return app.Page[Staff]{}, err
	}
	f := StaffFilter{Limit: 50}
	var err error
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 200 {
			return app.Page[Staff]{}, app.InvalidField("invalid_limit", "limit", "limit must be an integer from 1 to 200")
		}
		f.Limit = n
	}
	if v := c.Query("after"); v != "" {
		if f.After, err = uuid.Parse(v); err != nil {
			return app.Page[Staff]{}, app.InvalidField("invalid_cursor", "after", "after must be a cursor returned by this list")
		}
	}
	if v := c.Query("venue_id"); v != "" {
		if f.VenueID, err = parseUUID("venue_id", v); err != nil {
			return app.Page[Staff]{}, err
		}
	}
	if v := c.Query("role_id"); v != "" {
		if f.RoleID, err = parseUUID("role_id", v); err != nil {
			return app.Page[Staff]{}, err
		}
	}
	items, err := m.svc.ListStaff(c.Request.Context(), app.TenantOf(c), f)
	out := app.Page[Staff]{Items: app.NonNil(items)}
	if len(items) == f.Limit {
		out.Next = items[len(items)-1].ID.String()
	}
	return out, err
}

func (m *Module) createStaff(c *gin.Context, req staffRequest) (Staff, error) {
	in, err := req.input()
	if err != nil {
		return Staff{}, err
	}
	return m.svc.SaveStaff(c.Request.Context(), app.TenantOf(c), nil, in)
}

func (m *Module) getStaff(c *gin.Context, _ app.None) (Staff, error) {
	if err := m.canReadDirectory(c); err != nil {
		return Staff{}, err
	}
	id, err := app.PathUUID(c, "staffId", "staff member")
	if err != nil {
		return Staff{}, err
	}
	return m.svc.StaffMember(c.Request.Context(), app.TenantOf(c), id)
}

func (m *Module) updateStaff(c *gin.Context, req staffRequest) (Staff, error) {
	id, err := app.PathUUID(c, "staffId", "staff member")
	if err != nil {
		return Staff{}, err
	}
	in, err := req.input()
	if err != nil {
		return Staff{}, err
	}
	return m.svc.SaveStaff(c.Request.Context(), app.TenantOf(c), &id, in)
}

func (m *Module) getSettings(c *gin.Context, _ app.None) (Settings, error) {
	return m.svc.Settings(c.Request.Context(), app.TenantOf(c))
}

func (m *Module) putSettings(c *gin.Context, req Settings) (Settings, error) {
	return m.svc.SaveSettings(c.Request.Context(), app.TenantOf(c), req)
}

// ---- shifts

type shiftRequest struct {
	EventID  string    `json:"event_id"`
	RoleID   string    `json:"role_id"`
	Zone     string    `json:"zone"`
	StartsAt time.Time `json:"starts_at"`
	EndsAt   time.Time `json:"ends_at"`
	Places   int       `json:"places"`
}

func venueID(c *gin.Context) (uuid.UUID, error) { return app.PathUUID(c, "venueId", "venue") }

func (m *Module) createShift(c *gin.Context, req shiftRequest) (ShiftDetail, error) {
	v, err := venueID(c)
	if err != nil {
		return ShiftDetail{}, err
	}
	ev, err := parseUUID("event_id", req.EventID)
	if err != nil {
		return ShiftDetail{}, err
	}
	role, err := parseUUID("role_id", req.RoleID)
	if err != nil {
		return ShiftDetail{}, err
	}
	return m.svc.CreateShift(c.Request.Context(), app.TenantOf(c), v, ShiftInput{EventID: ev, RoleID: role, Zone: req.Zone,
		StartsAt: req.StartsAt, EndsAt: req.EndsAt, Places: req.Places})
}

func (m *Module) listShifts(c *gin.Context, _ app.None) (app.List[ShiftDetail], error) {
	v, err := venueID(c)
	if err != nil {
		return app.List[ShiftDetail]{}, err
	}
	var f ShiftFilter
	if d := c.Query("day"); d != "" {
		if _, err := parseDate("day", d); err != nil {
			return app.List[ShiftDetail]{}, err
		}
		f.Day = d
	}
	if e := c.Query("event_id"); e != "" {
		if f.EventID, err = parseUUID("event_id", e); err != nil {
			return app.List[ShiftDetail]{}, err
		}
	}
	list, err := m.svc.VenueShifts(c.Request.Context(), app.TenantOf(c), v, f)
	return app.ListOf(list), err
}

type shiftPatchRequest struct {
	StartsAt *time.Time `json:"starts_at"`
	EndsAt   *time.Time `json:"ends_at"`
	Places   *int       `json:"places"`
	Zone     *string    `json:"zone"`
	// Status "cancelled" cancels the shift and every assignment on it.
	Status *string `json:"status"`
}

func (m *Module) updateShift(c *gin.Context, req shiftPatchRequest) (ShiftDetail, error) {
	v, err := venueID(c)
	if err != nil {
		return ShiftDetail{}, err
	}
	id, err := app.PathUUID(c, "shiftId", "shift")
	if err != nil {
		return ShiftDetail{}, err
	}
	p := ShiftPatch{StartsAt: req.StartsAt, EndsAt: req.EndsAt, Places: req.Places, Zone: req.Zone}
	if req.Status != nil {
		if *req.Status != "cancelled" {
			return ShiftDetail{}, app.InvalidField("invalid_request", "status", "status can only become cancelled")
		}
		p.Cancel = true
	}
	return m.svc.UpdateShift(c.Request.Context(), app.TenantOf(c), v, id, p)
}

type assignRequest struct {
	StaffID string `json:"staff_id"`
}

func (m *Module) assign(c *gin.Context, req assignRequest) (Assignment, error) {
	v, err := venueID(c)
	if err != nil {
		return Assignment{}, err
	}
	shift, err := app.PathUUID(c, "shiftId", "shift")
	if err != nil {
		return Assignment{}, err
	}
	staff, err := parseUUID("staff_id", req.StaffID)
	if err != nil {
		return Assignment{}, err
	}
	return m.svc.Assign(c.Request.Context(), app.TenantOf(c), v, shift, staff)
}

func (m *Module) approve(c *gin.Context, _ app.None) (Assignment, error) {
	v, err := venueID(c)
	if err != nil {
		return Assignment{}, err
	}
	id, err := app.PathUUID(c, "assignmentId", "assignment")
	if err != nil {
		return Assignment{}, err
	}
	return m.svc.Approve(c.Request.Context(), app.TenantOf(c), v, id)
}

func (m *Module) unassign(c *gin.Context, _ app.None) (Assignment, error) {
	v, err := venueID(c)
	if err != nil {
		return Assignment{}, err
	}
	id, err := app.PathUUID(c, "assignmentId", "assignment")
	if err != nil {
		return Assignment{}, err
	}
	return m.svc.Unassign(c.Request.Context(), app.TenantOf(c), v, id)
}

func (m *Module) publish(c *gin.Context, _ app.None) (Publication, error) {
	v, err := venueID(c)
	if err != nil {
		return Publication{}, err
	}
	var by *uuid.UUID
	if p := app.PrincipalOf(c); p.Kind == app.KindUser {
		by = &p.UserID
	}
	return m.svc.Publish(c.Request.Context(), app.TenantOf(c), v, c.Param("day"), by)
}

// ---- requirements and coverage

type requirementRequest struct {
	RoleID       string `json:"role_id"`
	Rule         string `json:"rule"` // fixed or ratio
	FixedCount   *int   `json:"fixed_count"`
	PerAttendees *int   `json:"per_attendees"`
	Minimum      int    `json:"minimum"`
}

type requirementsRequest struct {
	Requirements []requirementRequest `json:"requirements"`
}

func (m *Module) getRequirements(c *gin.Context, _ app.None) (app.List[Requirement], error) {
	ev, err := m.event(c, policies.Read)
	if err != nil {
		return app.List[Requirement]{}, err
	}
	list, err := m.svc.Requirements(c.Request.Context(), app.TenantOf(c), ev.ID)
	return app.ListOf(list), err
}

func (m *Module) putRequirements(c *gin.Context, req requirementsRequest) (app.List[Requirement], error) {
	ev, err := m.event(c, policies.Write)
	if err != nil {
		return app.List[Requirement]{}, err
	}
	ins := make([]RequirementInput, 0, len(req.Requirements))
	for _, r := range req.Requirements {
		role, err := parseUUID("requirements", r.RoleID)
		if err != nil {
			return app.List[Requirement]{}, err
		}
		ins = append(ins, RequirementInput{RoleID: role, Rule: r.Rule, FixedCount: r.FixedCount, PerAttendees: r.PerAttendees, Minimum: r.Minimum})
	}
	list, err := m.svc.SetRequirements(c.Request.Context(), app.TenantOf(c), ev.ID, ins)
	return app.ListOf(list), err
}

type attendanceRequest struct {
	// Expected attendance from doors on; null clears it.
	Expected *int `json:"expected"`
}

func (m *Module) putAttendance(c *gin.Context, req attendanceRequest) (app.List[Requirement], error) {
	ev, err := m.event(c, policies.Write)
	if err != nil {
		return app.List[Requirement]{}, err
	}
	list, err := m.svc.SetExpected(c.Request.Context(), app.TenantOf(c), ev.ID, req.Expected)
	return app.ListOf(list), err
}

func (m *Module) recompute(c *gin.Context, _ app.None) (app.List[Requirement], error) {
	ev, err := m.event(c, policies.Write)
	if err != nil {
		return app.List[Requirement]{}, err
	}
	list, err := m.svc.recompute(c.Request.Context(), app.TenantOf(c), ev)
	return app.ListOf(list), err
}

func (m *Module) eventCoverage(c *gin.Context, _ app.None) (EventCoverage, error) {
	ev, err := m.event(c, policies.Read)
	if err != nil {
		return EventCoverage{}, err
	}
	return m.svc.EventCoverage(c.Request.Context(), app.TenantOf(c), ev)
}

// nightQuery reads ?date= and ?venue_id=, and checks the caller may see
// that scope: a venue needs staffing.shifts:read there, the chain needs it
// chain-wide.
func (m *Module) nightQuery(c *gin.Context) (time.Time, uuid.UUID, error) {
	date := m.app.Now().UTC().Truncate(24 * time.Hour)
	var err error
	if d := c.Query("date"); d != "" {
		if date, err = parseDate("date", d); err != nil {
			return date, uuid.Nil, err
		}
	}
	var venue uuid.UUID
	if v := c.Query("venue_id"); v != "" {
		if venue, err = parseUUID("venue_id", v); err != nil {
			return date, venue, err
		}
		if !m.app.CanAtVenue(c, venue, ObjShifts, policies.Read) {
			return date, venue, app.Forbidden("forbidden", "your roles do not allow read on staffing.shifts at this venue")
		}
		return date, venue, nil
	}
	if !m.app.Can(c, ObjShifts, policies.Read) {
		return date, venue, app.Forbidden("forbidden", "chain-wide coverage needs staffing.shifts:read for the chain; name a venue_id")
	}
	return date, venue, nil
}

func (m *Module) nightCoverage(c *gin.Context, _ app.None) (NightCoverage, error) {
	date, venue, err := m.nightQuery(c)
	if err != nil {
		return NightCoverage{}, err
	}
	return m.svc.Night(c.Request.Context(), app.TenantOf(c), date, venue)
}

// ---- the staff member's own

func (m *Module) mySchedule(c *gin.Context, _ app.None) (Schedule, error) {
	p := app.PrincipalOf(c)
	if p.Kind != app.KindUser {
		return Schedule{}, app.NotFound("staff member")
	}
	return m.svc.ScheduleOfUser(c.Request.Context(), app.TenantOf(c), p.UserID)
}

func (m *Module) signUp(c *gin.Context, _ app.None) (Assignment, error) {
	p := app.PrincipalOf(c)
	if p.Kind != app.KindUser {
		return Assignment{}, app.NotFound("staff member")
	}
	shift, err := app.PathUUID(c, "shiftId", "shift")
	if err != nil {
		return Assignment{}, err
	}
	return m.svc.SignUpAsUser(c.Request.Context(), app.TenantOf(c), p.UserID, shift)
}

func (m *Module) answer(c *gin.Context, confirm bool) (Assignment, error) {
	st, err := m.me(c)
	if err != nil {
		return Assignment{}, err
	}
	id, err := app.PathUUID(c, "assignmentId", "assignment")
	if err != nil {
		return Assignment{}, err
	}
	return m.svc.Answer(c.Request.Context(), app.TenantOf(c), st.ID, id, confirm)
}

func (m *Module) confirm(c *gin.Context, _ app.None) (Assignment, error) { return m.answer(c, true) }
func (m *Module) decline(c *gin.Context, _ app.None) (Assignment, error) { return m.answer(c, false) }

// myStream streams the caller's schedule changes (their topic only).
func (m *Module) myStream(c *gin.Context) {
	st, err := m.me(c)
	if err != nil {
		app.Fail(c, err)
		return
	}
	m.app.Realtime.ServeSSE(c, StaffTopic(st.ID))
}
