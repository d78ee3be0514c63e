package staffing

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/policies"
	"marquee/tenants"
)

// DemoStaffEmail signs in as a demo staff member (acme) who sees "my shifts".
const DemoStaffEmail = "crew@acme.test"

var demoFirst = []string{"Ava", "Ben", "Chloe", "Dev", "Elena", "Finn", "Grace", "Hugo", "Isla", "Jonas", "Kira", "Leo", "Maya", "Nico", "Olga", "Pablo", "Quinn", "Rosa", "Sami", "Tara"}
var demoLast = []string{"Okafor", "Brandt", "Nakamura", "Silva", "Haddad", "Kowalski", "Moreau"}

type demoRole struct {
	key, name, signup, cert string
	rule                    string
	n, minimum              int // fixed count, or per attendees with a minimum
}

// demoRoles are what a venue chain staffs a show with.
var demoRoles = []demoRole{
	{"security", "Security", SignupApprove, "sia", "", 0, 0}, // the capacity-band template
	{"crowd_manager", "Crowd manager", SignupClosed, "crowd", "", 0, 0},
	{"steward", "Steward", SignupOpen, "", RuleRatio, 100, 2},
	{"bar", "Bar", SignupOpen, "", RuleRatio, 150, 2},
	{"crew", "Stage crew", SignupOpen, "", RuleFixed, 4, 0},
	{"first_aid", "First aid", SignupOpen, "first_aid", RuleFixed, 1, 0},
}

// seed gives a demo chain its staff (about 60 at acme): certifications with
// the inclusion hierarchy and expiries (some within 30 days), roles, the
// crowd-manager and security templates turned on, and the coming weekend's
// events staffed — requirements, shifts, people, Friday and Saturday
// published, Sunday still a draft — plus the event that has sold tickets,
// whose security requirement rose with its sales past what was covered.
func (m *Module) seed(ctx context.Context, t tenants.Tenant, sd *app.Seeding) error {
	s := m.svc
	certs := map[string]uuid.UUID{}
	for _, c := range []struct {
		key, name string
		includes  []string
	}{{"first_aid", "First aid", nil}, {"senior_first_aid", "Senior first aider", []string{"first_aid"}},
		{"sia", "SIA door supervisor licence", nil}, {"crowd", "Crowd manager training", nil}} {
		var inc []uuid.UUID
		for _, k := range c.includes {
			inc = append(inc, certs[k])
		}
		cert, err := s.SaveCert(ctx, t, nil, CertInput{Key: c.key, Name: c.name, Includes: inc})
		if err != nil {
			return fmt.Errorf("staffing demo certification %s: %w", c.key, err)
		}
		certs[c.key] = cert.ID
	}
	roles := map[string]uuid.UUID{}
	for _, r := range demoRoles {
		name, signup := r.name, r.signup
		in := RoleInput{Key: r.key, Name: &name, Signup: &signup}
		if r.cert != "" {
			id := certs[r.cert]
			p := &id
			in.CertID = &p
		}
		role, err := s.SaveRole(ctx, t, nil, in)
		if err != nil {
			return fmt.Errorf("staffing demo role %s: %w", r.key, err)
		}
		roles[r.key] = role.ID
	}
	set, err := s.Settings(ctx, t)
	if err != nil {
		return err
	}
	crowd, security := roles["crowd_manager"], roles["security"]
	set.CrowdRoleID, set.SecurityRoleID = &crowd, &security
	if _, err := s.SaveSettings(ctx, t, set); err != nil {
		return fmt.Errorf("staffing demo settings: %w", err)
	}

	now := s.app.Now().UTC()
	evs, err := s.app.Events().Events(ctx, t, app.EventFilter{From: now.Add(-12 * time.Hour), To: now.Add(14 * 24 * time.Hour),
		Statuses: []string{"confirmed", "on_sale", "sold_out"}, Limit: 500})
	if err != nil {
		return err
	}
	var venues []uuid.UUID
	for _, ev := range evs {
		if !contains(uuidStrings(venues), ev.VenueID.String()) {
			venues = append(venues, ev.VenueID)
		}
	}
	staff, err := m.seedStaff(ctx, t, sd, venues, roles, certs, now)
	if err != nil {
		return err
	}
	weekend, salesEvent := demoWeekend(ctx, s, t, evs, now)
	for _, ev := range weekend {
		if err := m.seedEvent(ctx, t, ev, roles, staff, ev.ID == salesEvent); err != nil {
			return fmt.Errorf("staffing demo %s: %w", ev.Title, err)
		}
	}
	// Friday and Saturday are published; Sunday stays a draft.
	published := map[string]bool{}
	for _, ev := range weekend {
		day := localDay(ev.StartsAt, ev.Timezone)
		d, _ := time.Parse(time.DateOnly, day)
		if d.Weekday() == time.Sunday && ev.ID != salesEvent {
			continue
		}
		if k := ev.VenueID.String() + day; !published[k] {
			published[k] = true
			if _, err := s.Publish(ctx, t, ev.VenueID, day, nil); err != nil {
				return err
			}
		}
	}
	return m.seedTimesheetsAndSwap(ctx, t, roles, weekend)
}

// demoRates are the hourly rates of the demo roles, in minor units.
var demoRates = map[string]int64{"security": 2400, "crowd_manager": 2600, "steward": 1650, "bar": 1500, "crew": 1900, "first_aid": 2200}

// seedTimesheetsAndSwap gives the demo hourly rates, a few timesheet rows
// on the first published show of the weekend (as its lead will record
// them: most in at the shift's start, two checked out at its end, one a
// little late), and one swap a colleague accepted that waits for a
// manager.
func (m *Module) seedTimesheetsAndSwap(ctx context.Context, t tenants.Tenant, roles map[string]uuid.UUID, weekend []app.EventInfo) error {
	s := m.svc
	currency := "USD"
	if t.Slug != "acme" {
		currency = "EUR"
	}
	var rates []RateInput
	for k, r := range demoRates {
		rates = append(rates, RateInput{RoleID: roles[k], HourlyMinor: r, Currency: currency})
	}
	if _, err := s.SetRates(ctx, t, rates); err != nil {
		return fmt.Errorf("staffing demo rates: %w", err)
	}
	err := s.app.Tx(ctx, t, func(tx *gorm.DB) error {
		// The first published show at each of two venues, so the chain's
		// payroll has more than one venue.
		var evs []uuid.UUID
		if err := tx.Raw(`SELECT event_id FROM (SELECT DISTINCT ON (s.venue_id) s.event_id, lower(s.during) AS starts
			FROM stf_shifts s JOIN stf_publications p ON p.venue_id = s.venue_id AND p.day = s.day
			WHERE s.event_id = ANY(?::uuid[]) ORDER BY s.venue_id, lower(s.during)) f ORDER BY starts LIMIT 2`, uuidArray(eventIDs(weekend))).Scan(&evs).Error; err != nil {
			return err
		}
		for _, ev := range evs {
			if err := seedTimesheets(tx, ev); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("staffing demo timesheets: %w", err)
	}
	if err := m.seedNamedSwap(ctx, t); err != nil {
		return fmt.Errorf("staffing demo named swap: %w", err)
	}
	return m.seedAcceptedSwap(ctx, t)
}

// seedTimesheets records six people of a show: in at the start (one 12
// minutes late), the first two out at the shift's end.
func seedTimesheets(tx *gorm.DB, event uuid.UUID) error {
	return tx.Exec(`INSERT INTO stf_timesheets (assignment_id, staff_id, shift_id, event_id, venue_id, checked_in_at, checked_out_at, hourly_minor, currency)
			SELECT a.id, a.staff_id, s.id, s.event_id, s.venue_id,
			       lower(s.during) + CASE WHEN x.n = 3 THEN interval '12 minutes' ELSE interval '0' END,
			       CASE WHEN x.n <= 2 THEN upper(s.during) END, rr.hourly_minor, rr.currency
			FROM (SELECT a.id, row_number() OVER (ORDER BY a.assigned_at, a.id) AS n FROM stf_assignments a JOIN stf_shifts s ON s.id = a.shift_id
			      WHERE s.event_id = ? AND a.status IN ('assigned', 'confirmed')) x
			JOIN stf_assignments a ON a.id = x.id JOIN stf_shifts s ON s.id = a.shift_id LEFT JOIN stf_role_rates rr ON rr.role_id = s.role_id
			WHERE x.n <= 6 ON CONFLICT DO NOTHING`, event).Error
}

// seedNamedSwap offers a published shift to come to one named colleague
// who could take it, and leaves it asked: the colleague sees it on their
// page (and has its mail in the outbox).
func (m *Module) seedNamedSwap(ctx context.Context, t tenants.Tenant) error {
	s := m.svc
	var cands []struct {
		AssignmentID, StaffID, ShiftID uuid.UUID
	}
	if err := s.app.Tx(ctx, t, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT a.id AS assignment_id, a.staff_id, a.shift_id FROM stf_assignments a JOIN stf_shifts s ON s.id = a.shift_id
			JOIN stf_publications p ON p.venue_id = s.venue_id AND p.day = s.day
			WHERE a.status IN ('assigned', 'confirmed') AND lower(s.during) > ? ORDER BY lower(s.during) DESC, a.id LIMIT 5`, s.app.Now().UTC()).Scan(&cands).Error
	}); err != nil {
		return err
	}
	for _, c := range cands {
		colleagues, err := s.SwapCandidates(ctx, t, c.StaffID, []uuid.UUID{c.ShiftID})
		if err != nil {
			return err
		}
		for _, col := range colleagues[c.ShiftID] {
			if _, err := s.AskSwap(ctx, t, c.StaffID, c.AssignmentID, &col.ID); err == nil {
				return nil
			}
		}
	}
	return nil
}

// seedAcceptedSwap offers a published shift to come (the demo staff
// member's, if they have one) to anyone who works its role; the first
// colleague who qualifies takes it, and it waits for a manager.
func (m *Module) seedAcceptedSwap(ctx context.Context, t tenants.Tenant) error {
	s := m.svc
	var cands []struct {
		AssignmentID, StaffID, ShiftID, RoleID uuid.UUID
	}
	if err := s.app.Tx(ctx, t, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT a.id AS assignment_id, a.staff_id, a.shift_id, s.role_id FROM stf_assignments a JOIN stf_shifts s ON s.id = a.shift_id
			JOIN stf_staff st ON st.id = a.staff_id JOIN stf_publications p ON p.venue_id = s.venue_id AND p.day = s.day
			WHERE a.status IN ('assigned', 'confirmed') AND lower(s.during) > ? ORDER BY lower(st.email) = ? DESC, lower(s.during), a.id LIMIT 5`,
			s.app.Now().UTC(), DemoStaffEmail).Scan(&cands).Error
	}); err != nil {
		return err
	}
	for _, c := range cands {
		sw, err := s.AskSwap(ctx, t, c.StaffID, c.AssignmentID, nil)
		if err != nil {
			continue // a shift that cannot be offered: try the next
		}
		var colleagues []uuid.UUID
		if err := s.app.Tx(ctx, t, func(tx *gorm.DB) error {
			return tx.Raw(`SELECT sr.staff_id FROM stf_staff_roles sr JOIN stf_staff st ON st.id = sr.staff_id
				WHERE sr.role_id = ? AND sr.staff_id <> ? AND st.active AND NOT EXISTS (SELECT 1 FROM stf_assignments a
				  WHERE a.staff_id = sr.staff_id AND a.status IN ('requested', 'assigned', 'confirmed')
				    AND a.during && (SELECT during FROM stf_shifts WHERE id = ?)) ORDER BY st.name LIMIT 20`, c.RoleID, c.StaffID, c.ShiftID).Scan(&colleagues).Error
		}); err != nil {
			return err
		}
		for _, col := range colleagues {
			if _, err := s.AcceptSwap(ctx, t, col, sw.ID); err == nil {
				return nil
			}
		}
		return nil // asked, nobody could take it: still a pending swap
	}
	return nil
}

func eventIDs(evs []app.EventInfo) []uuid.UUID {
	out := make([]uuid.UUID, len(evs))
	for i, ev := range evs {
		out[i] = ev.ID
	}
	return out
}

func uuidStrings(ids []uuid.UUID) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id.String()
	}
	return out
}

// demoWeekend picks the coming weekend's events (Friday to Sunday at their
// venues) and the event with sold tickets (the inventory's demo sells one),
// which is staffed too wherever it falls.
func demoWeekend(ctx context.Context, s *Service, t tenants.Tenant, evs []app.EventInfo, now time.Time) ([]app.EventInfo, uuid.UUID) {
	friday := now.Truncate(24 * time.Hour)
	for friday.Weekday() != time.Friday {
		friday = friday.Add(24 * time.Hour)
	}
	days := map[string]bool{}
	for i := 0; i < 3; i++ {
		days[friday.AddDate(0, 0, i).Format(time.DateOnly)] = true
	}
	var out []app.EventInfo
	// The upcoming event with the most tickets sold: its sales raise the
	// security ratio (a guard per 12) past its minimum of 2, which a small
	// sold-out show's 20 tickets would not; the first event with any sales
	// could be one of those, depending on the day the demo is seeded.
	sales, most := uuid.Nil, 0
	var salesEvent app.EventInfo
	for _, ev := range evs {
		n, _, err := s.soldTickets(ctx, t, ev.ID)
		if err == nil && n > most && ev.StartsAt.After(now) {
			sales, most, salesEvent = ev.ID, n, ev
		}
	}
	for _, ev := range evs {
		if ev.ID != sales && days[localDay(ev.StartsAt, ev.Timezone)] {
			out = append(out, ev)
		}
	}
	if sales != uuid.Nil {
		out = append(out, salesEvent)
	}
	return out, sales
}

type demoPerson struct {
	id    uuid.UUID
	roles map[uuid.UUID]bool
	home  uuid.UUID
}

func (m *Module) seedStaff(ctx context.Context, t tenants.Tenant, sd *app.Seeding, venues []uuid.UUID, roles, certs map[string]uuid.UUID, now time.Time) ([]demoPerson, error) {
	n := 20
	if t.Slug == "acme" {
		n = 60
	}
	// The demo staff member who signs in: a steward and bar hand.
	var login *uuid.UUID
	if t.Slug == "acme" {
		u, err := sd.CreateUser(ctx, DemoStaffEmail, "Casey Crew", app.DemoPassword)
		var ae *app.Error
		if err != nil && !(errors.As(err, &ae) && ae.Code == "email_taken") {
			return nil, fmt.Errorf("demo staff user: %w", err)
		}
		if err == nil {
			if err := sd.Assign(policies.Assignment{UserID: u.ID.String(), Role: policies.RoleStaffMember}); err != nil {
				return nil, err
			}
			login = &u.ID
		}
	}
	date := func(days int) *time.Time {
		d := now.AddDate(0, 0, days).Truncate(24 * time.Hour)
		return &d
	}
	var out []demoPerson
	for i := 0; i < n; i++ {
		name := demoFirst[i%len(demoFirst)] + " " + demoLast[(i/len(demoFirst)+i)%len(demoLast)]
		email := fmt.Sprintf("staff%02d@%s.test", i+1, t.Slug)
		var rs []uuid.UUID
		var cs []CertGrant
		p := demoPerson{roles: map[uuid.UUID]bool{}}
		addRole := func(k string) { rs = append(rs, roles[k]); p.roles[roles[k]] = true }
		switch i % 6 {
		case 0, 1: // security with a licence; every fourth one runs out within 30 days
			addRole("security")
			addRole("steward")
			exp := date(400)
			if i%4 == 0 {
				exp = date(12 + i%15)
			}
			cs = append(cs, CertGrant{CertID: certs["sia"], ExpiresOn: exp})
		case 2: // crowd managers, also stewards
			addRole("crowd_manager")
			addRole("steward")
			cs = append(cs, CertGrant{CertID: certs["crowd"], ExpiresOn: date(300)})
		case 3:
			addRole("bar")
			addRole("steward")
		case 4:
			addRole("crew")
			addRole("bar")
		case 5: // medics: senior first aiders count as first aiders
			addRole("first_aid")
			addRole("steward")
			cert := certs["first_aid"]
			if i%12 == 5 {
				cert = certs["senior_first_aid"]
			}
			cs = append(cs, CertGrant{CertID: cert, ExpiresOn: date(20 + i)})
		}
		home := []uuid.UUID{}
		if len(venues) > 0 {
			p.home = venues[i%len(venues)]
			home = append(home, p.home)
		}
		in := StaffInput{Name: &name, Email: &email, HomeVenues: &home, Roles: &rs, Certs: &cs}
		if i == 3 && login != nil {
			in.UserID = &login
			casey := "Casey Crew"
			in.Name = &casey
		}
		st, err := m.svc.SaveStaff(ctx, t, nil, in)
		if err != nil {
			return nil, fmt.Errorf("demo staff %s: %w", name, err)
		}
		p.id = st.ID
		out = append(out, p)
	}
	return out, nil
}

// seedEvent sets an event's requirements, lays its shifts (one per role,
// doors minus an hour to the end plus one) and fills them from the staff
// who can work them, home venue first. For salesEvent, the security ratio's
// last computation is written as it stood before its tickets sold, then
// recomputed: the requirement rises past the people on shift, and coverage
// shows that gap as made by sales.
func (m *Module) seedEvent(ctx context.Context, t tenants.Tenant, ev app.EventInfo, roles map[string]uuid.UUID, staff []demoPerson, salesEvent bool) error {
	s := m.svc
	var ins []RequirementInput
	for _, r := range demoRoles {
		if r.rule == "" {
			continue
		}
		in := RequirementInput{RoleID: roles[r.key], Rule: r.rule, Minimum: r.minimum}
		n := r.n
		if r.rule == RuleFixed {
			in.FixedCount = &n
		} else {
			in.PerAttendees = &n
		}
		ins = append(ins, in)
	}
	if salesEvent {
		per := 12
		ins = append(ins, RequirementInput{RoleID: roles["security"], Rule: RuleRatio, PerAttendees: &per, Minimum: 2})
	}
	if _, err := s.SetRequirements(ctx, t, ev.ID, ins); err != nil {
		return err
	}
	if salesEvent {
		err := s.app.Tx(ctx, t, func(tx *gorm.DB) error {
			return tx.Exec(`UPDATE stf_requirements SET required = minimum, attendance = 0, computed_at = ? WHERE event_id = ? AND rule = 'ratio'`,
				s.app.Now().Add(-24*time.Hour), ev.ID).Error
		})
		if err != nil {
			return err
		}
	}
	// Shifts sized to the requirement as it stood, filled from the staff.
	reqs, err := s.Requirements(ctx, t, ev.ID)
	if err != nil {
		return err
	}
	start, end := ev.StartsAt.Add(-time.Hour), ev.EndsAt.Add(time.Hour)
	for _, q := range reqs {
		sh, err := s.CreateShift(ctx, t, ev.VenueID, ShiftInput{EventID: ev.ID, RoleID: q.RoleID, StartsAt: start, EndsAt: end, Places: q.Required})
		if err != nil {
			return err
		}
		filled := 0
		for pass := 0; pass < 2 && filled < q.Required; pass++ {
			for _, p := range staff {
				if filled >= q.Required {
					break
				}
				if !p.roles[q.RoleID] || (pass == 0) != (p.home == ev.VenueID) {
					continue
				}
				_, err := s.Assign(ctx, t, ev.VenueID, sh.ID, p.id)
				var ae *app.Error
				switch {
				case err == nil:
					filled++
				case !errors.As(err, &ae):
					return err // a refusal (on another show, say) tries the next person; a fault stops
				}
			}
		}
	}
	if salesEvent {
		_, err = s.Recompute(ctx, t, ev.ID)
	}
	return err
}
