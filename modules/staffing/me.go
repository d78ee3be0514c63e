package staffing

import (
	"context"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/tenants"
)

// This file is the staff member's own side: their record, their published
// schedule, the shifts they may sign up for.

// StaffByUser finds the staff record of a signed-in user.
func (s *Service) StaffByUser(ctx context.Context, t tenants.Tenant, userID uuid.UUID) (Staff, error) {
	var out Staff
	err := s.app.TxWith(ctx, t, tenants.TxOptions{ReadOnly: true}, func(tx *gorm.DB) error {
		var err error
		out, err = staffByUser(tx, userID)
		return err
	})
	return out, err
}

func staffByUser(tx *gorm.DB, userID uuid.UUID) (Staff, error) {
	var ids []uuid.UUID
	if err := tx.Raw(`SELECT id FROM stf_staff WHERE user_id = ?`, userID).Scan(&ids).Error; err != nil {
		return Staff{}, err
	}
	if len(ids) == 0 {
		return Staff{}, app.NotFound("staff member")
	}
	list, err := loadStaff(tx, ids)
	if err != nil {
		return Staff{}, err
	}
	return list[0], nil
}

// Schedule is what a staff member sees: their shifts on published days
// (from a day ago on), the shifts they may still sign up for, and their
// certifications that run out within 30 days.
type Schedule struct {
	Staff    Staff      `json:"staff"`
	Shifts   []MyShift  `json:"shifts"`
	Open     []Shift    `json:"open_shifts"`
	Expiring []Expiring `json:"expiring"`
}

// MySchedule reads a staff member's schedule. Drafts are invisible: only
// shifts of published days are listed.
func (s *Service) MySchedule(ctx context.Context, t tenants.Tenant, st Staff) (Schedule, error) {
	return s.schedule(ctx, t, func(*gorm.DB) (Staff, error) { return st, nil })
}

// ScheduleOfUser is MySchedule for the staff record of a signed-in user,
// found in the same transaction: a whole chain's staff open their schedule
// at once when sign-ups open, so it is one transaction, not three.
func (s *Service) ScheduleOfUser(ctx context.Context, t tenants.Tenant, userID uuid.UUID) (Schedule, error) {
	return s.schedule(ctx, t, func(tx *gorm.DB) (Staff, error) { return staffByUser(tx, userID) })
}

func (s *Service) schedule(ctx context.Context, t tenants.Tenant, who func(tx *gorm.DB) (Staff, error)) (Schedule, error) {
	out := Schedule{Shifts: []MyShift{}, Open: []Shift{}}
	since := s.app.Now().UTC().Add(-24 * time.Hour)
	err := s.app.TxWith(ctx, t, tenants.TxOptions{ReadOnly: true}, func(tx *gorm.DB) error {
		out.Shifts, out.Open = []MyShift{}, []Shift{}
		st, err := who(tx)
		if err != nil {
			return err
		}
		out.Staff = st
		var mine []struct {
			AssignmentID     uuid.UUID
			AssignmentStatus string
			Shift
		}
		if err := tx.Raw(`SELECT a.id AS assignment_id, a.status AS assignment_status, `+shiftCols+shiftFrom+`
			JOIN stf_assignments a ON a.shift_id = s.id
			WHERE a.staff_id = ? AND upper(s.during) > ? AND a.status <> 'cancelled'
			  AND EXISTS (SELECT 1 FROM stf_publications p WHERE p.venue_id = s.venue_id AND p.day = s.day)
			ORDER BY lower(s.during), s.id LIMIT 200`, st.ID, since).Scan(&mine).Error; err != nil {
			return err
		}
		for _, m := range mine {
			utcShift(&m.Shift)
			out.Shifts = append(out.Shifts, MyShift{AssignmentID: m.AssignmentID, Status: m.AssignmentStatus, Shift: m.Shift})
		}
		if err := tx.Raw(`SELECT `+shiftCols+shiftFrom+`
			WHERE s.status = 'open' AND s.filled < s.places AND lower(s.during) > ? AND r.signup <> 'closed'
			  AND EXISTS (SELECT 1 FROM stf_staff_roles sr WHERE sr.staff_id = ? AND sr.role_id = s.role_id)
			  AND EXISTS (SELECT 1 FROM stf_publications p WHERE p.venue_id = s.venue_id AND p.day = s.day)
			  AND NOT EXISTS (SELECT 1 FROM stf_assignments a WHERE a.shift_id = s.id AND a.staff_id = ? AND a.status <> 'cancelled')
			  -- a shift the person could not take (they work then) is not offered
			  AND NOT EXISTS (SELECT 1 FROM stf_assignments a WHERE a.staff_id = ? AND a.during && s.during
			                  AND a.status IN ('requested', 'assigned', 'confirmed'))
			ORDER BY lower(s.during), s.id LIMIT 100`, s.app.Now().UTC(), st.ID, st.ID, st.ID).Scan(&out.Open).Error; err != nil {
			return err
		}
		for i := range out.Open {
			utcShift(&out.Open[i])
		}
		out.Expiring, err = s.expiring(tx, 30, st.ID)
		return err
	})
	if err != nil {
		return out, err
	}
	// Event titles and venue names come from the event directory.
	if dir := s.app.Events(); dir != nil {
		seen := map[uuid.UUID]app.EventInfo{}
		for i := range out.Shifts {
			id := out.Shifts[i].Shift.EventID
			ev, ok := seen[id]
			if !ok {
				if ev, err = dir.Event(ctx, t, id); err != nil {
					continue // a cancelled or removed event still shows its shift
				}
				seen[id] = ev
			}
			out.Shifts[i].EventTitle, out.Shifts[i].VenueName = ev.Title, ev.VenueName
		}
	}
	return out, nil
}
