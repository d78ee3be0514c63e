package staffing

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/tenants"
)

// This file holds requirements per event and role — fixed, a ratio to
// attendance with a minimum, or a band of the venue's capacity (the
// security template) — and their recomputation as ticket sales move.

func isNoRows(err error) bool { return errors.Is(err, pgx.ErrNoRows) }

// Requirement rules.
const (
	RuleFixed = "fixed"
	RuleRatio = "ratio"
	RuleBand  = "band"
)

// Requirement sources: a manager's, or a built-in template the chain
// turned on (a manager's requirement for the same role wins).
const (
	SourceManual   = "manual"
	SourceCrowd    = "crowd_managers"
	SourceSecurity = "security_bands"
)

// Requirement is how many people of a role an event needs, and why.
type Requirement struct {
	EventID      uuid.UUID  `json:"event_id"`
	RoleID       uuid.UUID  `json:"role_id"`
	RoleName     string     `json:"role_name"`
	Source       string     `json:"source"`
	Rule         string     `json:"rule"`
	FixedCount   *int       `json:"fixed_count,omitempty"`
	PerAttendees *int       `json:"per_attendees,omitempty"`
	Minimum      int        `json:"minimum"`
	Required     int        `json:"required"`
	Attendance   int        `json:"attendance"`
	Basis        string     `json:"basis"` // sold, expected, capacity or none: what attendance is
	RaisedFrom   *int       `json:"raised_from,omitempty"`
	RaisedAt     *time.Time `json:"raised_at,omitempty"`
	ComputedAt   *time.Time `json:"computed_at,omitempty"`
}

// RequirementInput is a manager's requirement for one role.
type RequirementInput struct {
	RoleID       uuid.UUID
	Rule         string
	FixedCount   *int
	PerAttendees *int
	Minimum      int
}

func (in RequirementInput) check(i int) error {
	switch in.Rule {
	case RuleFixed:
		if in.FixedCount == nil || *in.FixedCount < 0 || *in.FixedCount > 10000 || in.PerAttendees != nil {
			return app.InvalidField("invalid_request", "requirements", "requirement %d: a fixed rule takes fixed_count 0 to 10000 and no per_attendees", i)
		}
	case RuleRatio:
		if in.PerAttendees == nil || *in.PerAttendees < 1 || *in.PerAttendees > 100000 || in.FixedCount != nil {
			return app.InvalidField("invalid_request", "requirements", "requirement %d: a ratio rule takes per_attendees 1 to 100000 and no fixed_count", i)
		}
	default:
		return app.InvalidField("invalid_request", "requirements", "requirement %d: rule is fixed or ratio", i)
	}
	if in.Minimum < 0 || in.Minimum > 10000 {
		return app.InvalidField("invalid_request", "requirements", "requirement %d: minimum is 0 to 10000", i)
	}
	return nil
}

func decodeBands(raw string) ([]Band, error) {
	var bs []Band
	if err := json.Unmarshal([]byte(raw), &bs); err != nil {
		return nil, err
	}
	return app.NonNil(bs), nil
}

func encodeBands(bs []Band) (string, error) {
	if len(bs) == 0 || len(bs) > 20 {
		return "", app.InvalidField("invalid_request", "security_bands", "security_bands has 1 to 20 bands")
	}
	for i, b := range bs {
		if b.FromCapacity < 0 || b.Count < 0 || b.Count > 10000 || (i > 0 && b.FromCapacity <= bs[i-1].FromCapacity) {
			return "", app.InvalidField("invalid_request", "security_bands", "bands rise by from_capacity, with count 0 to 10000")
		}
	}
	raw, err := json.Marshal(bs)
	return string(raw), err
}

// bandCount is the count of the highest band the capacity reaches.
func bandCount(bs []Band, capacity int) int {
	n := 0
	for _, b := range bs {
		if capacity >= b.FromCapacity {
			n = b.Count
		}
	}
	return n
}

// required computes a rule's figure for an attendance (ratio: at least the
// minimum, and one per started block of PerAttendees).
func required(rule string, fixed, per *int, minimum, attendance int) int {
	switch rule {
	case RuleFixed:
		return *fixed
	case RuleRatio:
		n := (attendance + *per - 1) / *per
		return max(minimum, n)
	}
	return minimum
}

// attendanceFor is the attendance requirements follow: the tickets sold
// until doors (the event's start), then the expected attendance a manager
// set (or the last count of sold tickets, if none was set).
func attendanceFor(now, doors time.Time, sold int, expected *int) (int, string) {
	if now.Before(doors) || expected == nil {
		return sold, "sold"
	}
	return *expected, "expected"
}

// SetRequirements replaces a manager's requirements of an event and
// recomputes them; template requirements of other roles stay.
func (s *Service) SetRequirements(ctx context.Context, t tenants.Tenant, eventID uuid.UUID, ins []RequirementInput) ([]Requirement, error) {
	if len(ins) > 100 {
		return nil, app.InvalidField("invalid_request", "requirements", "at most 100 requirements")
	}
	seen := map[uuid.UUID]bool{}
	for i, in := range ins {
		if err := in.check(i); err != nil {
			return nil, err
		}
		if seen[in.RoleID] {
			return nil, app.InvalidField("invalid_request", "requirements", "requirement %d names its role twice", i)
		}
		seen[in.RoleID] = true
	}
	ev, err := s.eventAt(ctx, t, uuid.Nil, eventID)
	if err != nil {
		return nil, err
	}
	err = s.app.Tx(ctx, t, func(tx *gorm.DB) error {
		if err := tx.Exec(`DELETE FROM stf_requirements WHERE event_id = ? AND source = 'manual'`, ev.ID).Error; err != nil {
			return err
		}
		for _, in := range ins {
			// A manager's requirement replaces a template's for its role,
			// and starts a new baseline (no gap "from sales" before it).
			res := tx.Exec(`INSERT INTO stf_requirements (event_id, role_id, source, rule, fixed_count, per_attendees, minimum)
				SELECT ?, id, 'manual', ?, ?, ?, ? FROM stf_roles WHERE id = ?
				ON CONFLICT (event_id, role_id) DO UPDATE SET source = 'manual', rule = excluded.rule, fixed_count = excluded.fixed_count,
					per_attendees = excluded.per_attendees, minimum = excluded.minimum, raised_from = NULL, raised_at = NULL, computed_at = NULL`,
				ev.ID, in.Rule, in.FixedCount, in.PerAttendees, in.Minimum, in.RoleID)
			if res.Error != nil {
				return res.Error
			}
			if res.RowsAffected == 0 {
				return app.InvalidField("unknown_role", "requirements", "no role %s in this chain", in.RoleID)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s.Recompute(ctx, t, ev.ID)
}

// SetExpected sets the attendance a manager expects (nil clears it) and
// recomputes the event's requirements.
func (s *Service) SetExpected(ctx context.Context, t tenants.Tenant, eventID uuid.UUID, expected *int) ([]Requirement, error) {
	if expected != nil && (*expected < 0 || *expected > 1000000) {
		return nil, app.InvalidField("invalid_request", "expected", "expected is 0 to 1000000")
	}
	if _, err := s.eventAt(ctx, t, uuid.Nil, eventID); err != nil {
		return nil, err
	}
	err := s.app.Tx(ctx, t, func(tx *gorm.DB) error {
		return tx.Exec(`INSERT INTO stf_attendance (event_id, expected) VALUES (?, ?)
			ON CONFLICT (event_id) DO UPDATE SET expected = excluded.expected`, eventID, expected).Error
	})
	if err != nil {
		return nil, err
	}
	return s.Recompute(ctx, t, eventID)
}

// Requirements reads an event's requirements as last computed.
func (s *Service) Requirements(ctx context.Context, t tenants.Tenant, eventID uuid.UUID) ([]Requirement, error) {
	var out []Requirement
	err := s.app.TxWith(ctx, t, tenants.TxOptions{ReadOnly: true}, func(tx *gorm.DB) error {
		var err error
		out, err = eventRequirements(tx, []uuid.UUID{eventID})
		return err
	})
	return out, err
}

func eventRequirements(tx *gorm.DB, events []uuid.UUID) ([]Requirement, error) {
	var out []Requirement
	err := tx.Raw(`SELECT q.event_id, q.role_id, r.name AS role_name, q.source, q.rule, q.fixed_count, q.per_attendees, q.minimum,
			q.required, q.attendance, q.basis, q.raised_from, q.raised_at, q.computed_at
		FROM stf_requirements q JOIN stf_roles r ON r.id = q.role_id WHERE q.event_id = ANY(?::uuid[]) ORDER BY q.event_id, r.name`, uuidArray(events)).Scan(&out).Error
	for i := range out {
		for _, p := range []**time.Time{&out[i].RaisedAt, &out[i].ComputedAt} {
			if *p != nil {
				u := (*p).UTC()
				*p = &u
			}
		}
	}
	return app.NonNil(out), err
}

// soldTickets sums an event's sold tickets (and comps) from the
// inventory's facts; ok is false when no module provides them.
func (s *Service) soldTickets(ctx context.Context, t tenants.Tenant, eventID uuid.UUID) (int, bool, error) {
	facts := s.app.TicketFacts()
	if facts == nil {
		return 0, false, nil
	}
	tiers, err := facts.SalesByTier(ctx, t, eventID)
	n := 0
	for _, tr := range tiers {
		n += tr.Sold + tr.Comps
	}
	return n, true, err
}

// Recompute recomputes an event's requirements from its attendance and
// the chain's templates. Before doors it reads the tickets sold; a figure
// that rises records what it rose from, which is how coverage tells a gap
// made by sales. Running it twice changes nothing the first did not.
func (s *Service) Recompute(ctx context.Context, t tenants.Tenant, eventID uuid.UUID) ([]Requirement, error) {
	ev, err := s.eventAt(ctx, t, uuid.Nil, eventID)
	if err != nil {
		return nil, err
	}
	return s.recompute(ctx, t, ev)
}

func (s *Service) recompute(ctx context.Context, t tenants.Tenant, ev app.EventInfo) ([]Requirement, error) {
	now := s.app.Now().UTC()
	sold, haveFacts, err := s.soldTickets(ctx, t, ev.ID)
	if err != nil {
		return nil, err
	}
	var out []Requirement
	var pers []int // the ratio rules' divisors: the sales milestones
	err = s.app.TxWith(ctx, t, tenants.TxOptions{Retry: true}, func(tx *gorm.DB) error {
		pers = nil
		// The event's attendance row, locked: recomputations of one event
		// (the job and a manager's) run one after the other.
		if err := tx.Exec(`INSERT INTO stf_attendance (event_id) VALUES (?) ON CONFLICT DO NOTHING`, ev.ID).Error; err != nil {
			return err
		}
		var att struct {
			Expected *int
			Sold     int
		}
		if err := tx.Raw(`SELECT expected, sold FROM stf_attendance WHERE event_id = ? FOR UPDATE`, ev.ID).Scan(&att).Error; err != nil {
			return err
		}
		// Sales after doors do not move the figure: the manager's expected
		// attendance does, if set; otherwise the count at doors stays.
		if haveFacts && now.Before(ev.StartsAt) {
			att.Sold = sold
			if err := tx.Exec(`UPDATE stf_attendance SET sold = ?, sold_at = ? WHERE event_id = ?`, sold, now, ev.ID).Error; err != nil {
				return err
			}
		}
		attendance, basis := attendanceFor(now, ev.StartsAt, att.Sold, att.Expected)
		set, err := readSettings(tx)
		if err != nil {
			return err
		}
		if err := applyTemplates(tx, ev, set); err != nil {
			return err
		}
		var rows []Requirement
		if err := tx.Raw(`SELECT role_id, source, rule, fixed_count, per_attendees, minimum, required, raised_from, computed_at
			FROM stf_requirements WHERE event_id = ? FOR UPDATE`, ev.ID).Scan(&rows).Error; err != nil {
			return err
		}
		for _, q := range rows {
			if q.Rule == RuleRatio && q.PerAttendees != nil {
				pers = append(pers, *q.PerAttendees)
			}
			n, a, b := required(q.Rule, q.FixedCount, q.PerAttendees, q.Minimum, attendance), attendance, basis
			if q.Rule == RuleBand {
				n, a, b = bandCount(set.SecurityBands, ev.VenueCapacity), ev.VenueCapacity, "capacity"
			}
			raisedFrom, raisedAt := q.RaisedFrom, (*time.Time)(nil)
			switch {
			case q.ComputedAt != nil && n > q.Required && q.Rule == RuleRatio:
				// The first rise of a series keeps its baseline: the gap
				// from sales is measured from where it was covered.
				if raisedFrom == nil {
					raisedFrom = &q.Required
				}
				raisedAt = &now
			case raisedFrom != nil && n <= *raisedFrom:
				raisedFrom = nil
			}
			if err := tx.Exec(`UPDATE stf_requirements SET required = ?, attendance = ?, basis = ?, raised_from = ?,
					raised_at = CASE WHEN ?::timestamptz IS NOT NULL THEN ?::timestamptz WHEN ?::integer IS NULL THEN NULL ELSE raised_at END,
					computed_at = ?
				WHERE event_id = ? AND role_id = ?`, n, a, b, raisedFrom, raisedAt, raisedAt, raisedFrom, now, ev.ID, q.RoleID).Error; err != nil {
				return err
			}
		}
		out, err = eventRequirements(tx, []uuid.UUID{ev.ID})
		return err
	})
	if err == nil && haveFacts && now.Before(ev.StartsAt) {
		s.armMilestones(ctx, t, ev.ID, sold, milestoneStep(pers, ev.VenueCapacity))
	}
	return out, err
}

// applyTemplates writes the requirements of the templates the chain turned
// on (never over a manager's for the same role) and drops those of
// templates turned off or moved to another role.
func applyTemplates(tx *gorm.DB, ev app.EventInfo, set Settings) error {
	for _, tpl := range []struct {
		source string
		role   *uuid.UUID
		rule   string
		per    *int
		min    int
	}{
		{SourceCrowd, set.CrowdRoleID, RuleRatio, &set.CrowdPer, set.CrowdMinimum},
		{SourceSecurity, set.SecurityRoleID, RuleBand, nil, 0},
	} {
		keep := uuid.Nil
		if tpl.role != nil {
			keep = *tpl.role
		}
		if err := tx.Exec(`DELETE FROM stf_requirements WHERE event_id = ? AND source = ? AND role_id <> ?`, ev.ID, tpl.source, keep).Error; err != nil {
			return err
		}
		if tpl.role == nil {
			continue
		}
		if err := tx.Exec(`INSERT INTO stf_requirements (event_id, role_id, source, rule, per_attendees, minimum) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (event_id, role_id) DO UPDATE SET rule = excluded.rule, per_attendees = excluded.per_attendees, minimum = excluded.minimum
			WHERE stf_requirements.source = excluded.source`, ev.ID, *tpl.role, tpl.source, tpl.rule, tpl.per, tpl.min).Error; err != nil {
			return err
		}
	}
	return nil
}

// RecomputeHorizon is how far ahead the periodic job recomputes.
const RecomputeHorizon = 60 * 24 * time.Hour

// RecomputeAll recomputes the requirements of every live event from 12
// hours ago to RecomputeHorizon ahead (the periodic job); it returns how
// many events it did.
func (s *Service) RecomputeAll(ctx context.Context, t tenants.Tenant) (int, error) {
	dir := s.app.Events()
	if dir == nil {
		return 0, nil
	}
	now := s.app.Now().UTC()
	f := app.EventFilter{From: now.Add(-12 * time.Hour), To: now.Add(RecomputeHorizon), Limit: 500,
		Statuses: []string{"draft", "confirmed", "on_sale", "sold_out"}}
	n := 0
	for {
		evs, err := dir.Events(ctx, t, f)
		if err != nil {
			return n, err
		}
		for _, ev := range evs {
			if _, err := s.recompute(ctx, t, ev); err != nil {
				return n, err
			}
			n++
		}
		if len(evs) < f.Limit {
			return n, nil
		}
		f.After = evs[len(evs)-1].ID
	}
}
