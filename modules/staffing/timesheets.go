package staffing

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/tenants"
)

// This file holds timesheets: people checked in and out of their shifts
// (by a lead at the venue, or by themselves), hourly rates per role, hours
// per person for payroll, and the labour cost of an event handed to other
// modules through app.LabourCosts.
//
// Rounding rule: each worked span (check-in to check-out) is rounded to the
// nearest quarter hour, a span of 7 min 30 s past a quarter rounding up;
// the rounded minutes are what payroll and costs count. A span's cost is
// its rounded minutes at its rate, rounded half up to the minor unit.

// RoundingMinutes is the step worked time is rounded to.
const RoundingMinutes = 15

// roundedMinutes rounds a worked span to the nearest RoundingMinutes.
func roundedMinutes(d time.Duration) int {
	step := int64(RoundingMinutes * 60)
	secs := int64(d / time.Second)
	if secs <= 0 {
		return 0
	}
	return int((secs+step/2)/step) * RoundingMinutes
}

// spanCost is what minutes cost at an hourly rate, half up in minor units.
func spanCost(minutes int, hourlyMinor int64) int64 {
	return (int64(minutes)*hourlyMinor + 30) / 60
}

// Rate is what an hour of a role costs.
type Rate struct {
	RoleID      uuid.UUID `json:"role_id"`
	RoleName    string    `json:"role_name"`
	HourlyMinor int64     `json:"hourly_minor"`
	Currency    string    `json:"currency"`
}

// RateInput sets one role's rate.
type RateInput struct {
	RoleID      uuid.UUID
	HourlyMinor int64
	Currency    string
}

var currencyPattern = regexp.MustCompile(`^[A-Z]{3}$`)

// Rates lists the chain's hourly rates by role name.
func (s *Service) Rates(ctx context.Context, t tenants.Tenant) ([]Rate, error) {
	var out []Rate
	err := s.app.TxWith(ctx, t, tenants.TxOptions{ReadOnly: true}, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT rr.role_id, r.name AS role_name, rr.hourly_minor, rr.currency FROM stf_role_rates rr JOIN stf_roles r ON r.id = rr.role_id
			ORDER BY r.name, r.id`).Scan(&out).Error
	})
	return app.NonNil(out), err
}

// SetRates sets the rates of the roles given (others stay). Check-ins from
// now on are paid at them; earlier ones keep the rate they were made at.
func (s *Service) SetRates(ctx context.Context, t tenants.Tenant, ins []RateInput) ([]Rate, error) {
	if len(ins) == 0 || len(ins) > 200 {
		return nil, app.InvalidField("invalid_request", "rates", "rates holds 1 to 200 roles")
	}
	seen := map[uuid.UUID]bool{}
	for i, in := range ins {
		if in.HourlyMinor < 0 || in.HourlyMinor > 100000000 {
			return nil, app.InvalidField("invalid_request", "rates", "rate %d: hourly_minor is 0 to 100000000 (minor units)", i)
		}
		if !currencyPattern.MatchString(in.Currency) {
			return nil, app.InvalidField("invalid_request", "rates", "rate %d: currency is three capital letters (ISO 4217)", i)
		}
		if seen[in.RoleID] {
			return nil, app.InvalidField("invalid_request", "rates", "rate %d names its role twice", i)
		}
		seen[in.RoleID] = true
	}
	err := s.app.Tx(ctx, t, func(tx *gorm.DB) error {
		for _, in := range ins {
			res := tx.Exec(`INSERT INTO stf_role_rates (role_id, hourly_minor, currency) SELECT id, ?, ? FROM stf_roles WHERE id = ?
				ON CONFLICT (role_id) DO UPDATE SET hourly_minor = excluded.hourly_minor, currency = excluded.currency, updated_at = now()`,
				in.HourlyMinor, in.Currency, in.RoleID)
			if res.Error != nil {
				return res.Error
			}
			if res.RowsAffected == 0 {
				return app.InvalidField("unknown_role", "rates", "no role %s in this chain", in.RoleID)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s.Rates(ctx, t)
}

// Timesheet is one person's time on one shift.
type Timesheet struct {
	AssignmentID uuid.UUID  `json:"assignment_id"`
	ShiftID      uuid.UUID  `json:"shift_id"`
	StaffID      uuid.UUID  `json:"staff_id"`
	StaffName    string     `json:"staff_name"`
	RoleName     string     `json:"role_name"`
	Zone         string     `json:"zone"`
	Status       string     `json:"status"` // the assignment's
	StartsAt     time.Time  `json:"starts_at"`
	EndsAt       time.Time  `json:"ends_at"`
	Timezone     string     `json:"timezone"`
	CheckedInAt  *time.Time `json:"checked_in_at,omitempty"`
	CheckedOutAt *time.Time `json:"checked_out_at,omitempty"`
	Minutes      int        `json:"minutes"` // rounded (RoundingMinutes); 0 until checked out
	HourlyMinor  *int64     `json:"hourly_minor,omitempty"`
	Currency     *string    `json:"currency,omitempty"`
	CostMinor    *int64     `json:"cost_minor,omitempty"`
}

func (ts *Timesheet) finish() {
	ts.StartsAt, ts.EndsAt = ts.StartsAt.UTC(), ts.EndsAt.UTC()
	for _, p := range []**time.Time{&ts.CheckedInAt, &ts.CheckedOutAt} {
		if *p != nil {
			u := (*p).UTC()
			*p = &u
		}
	}
	if ts.CheckedInAt != nil && ts.CheckedOutAt != nil {
		ts.Minutes = roundedMinutes(ts.CheckedOutAt.Sub(*ts.CheckedInAt))
		if ts.HourlyMinor != nil {
			c := spanCost(ts.Minutes, *ts.HourlyMinor)
			ts.CostMinor = &c
		}
	}
}

const timesheetSelect = `SELECT a.id AS assignment_id, a.shift_id, a.staff_id, st.name AS staff_name, r.name AS role_name, s.zone, a.status,
	lower(s.during) AS starts_at, upper(s.during) AS ends_at, s.timezone, ts.checked_in_at, ts.checked_out_at, ts.hourly_minor, ts.currency
FROM stf_assignments a JOIN stf_shifts s ON s.id = a.shift_id JOIN stf_roles r ON r.id = s.role_id JOIN stf_staff st ON st.id = a.staff_id
LEFT JOIN stf_timesheets ts ON ts.assignment_id = a.id `

func readTimesheet(tx *gorm.DB, assignmentID uuid.UUID) (Timesheet, error) {
	var out []Timesheet
	if err := tx.Raw(timesheetSelect+`WHERE a.id = ?`, assignmentID).Scan(&out).Error; err != nil {
		return Timesheet{}, err
	}
	if len(out) == 0 {
		return Timesheet{}, app.NotFound("assignment")
	}
	out[0].finish()
	return out[0], nil
}

// EventTimesheets lists the people of an event's shifts at the venue with
// their check-ins: everyone holding a place, and anyone else who was
// checked in.
func (s *Service) EventTimesheets(ctx context.Context, t tenants.Tenant, venueID, eventID uuid.UUID) ([]Timesheet, error) {
	var out []Timesheet
	err := s.app.TxWith(ctx, t, tenants.TxOptions{ReadOnly: true}, func(tx *gorm.DB) error {
		return tx.Raw(timesheetSelect+`WHERE s.venue_id = ? AND s.event_id = ? AND s.status = 'open'
			AND (a.status IN ('assigned', 'confirmed') OR ts.assignment_id IS NOT NULL)
			ORDER BY lower(s.during), r.name, st.name, a.id LIMIT 2000`, venueID, eventID).Scan(&out).Error
	})
	for i := range out {
		out[i].finish()
	}
	return app.NonNil(out), err
}

// Clocking is a check-in or check-out: by a lead at a venue (VenueID set,
// At optional), or by the person themselves (StaffID set, now).
type Clocking struct {
	VenueID uuid.UUID
	StaffID uuid.UUID
	By      *uuid.UUID
	At      *time.Time
}

// SelfWindowBefore is how long before their shift staff may check
// themselves in.
const SelfWindowBefore = 2 * time.Hour

// leadSlack bounds a lead's recorded time around the shift.
const leadSlack = 12 * time.Hour

func (s *Service) clockTime(cl Clocking, sh Shift) (time.Time, error) {
	now := s.app.Now().UTC()
	if cl.StaffID != uuid.Nil {
		return now.Truncate(time.Second), nil
	}
	at := now.Truncate(time.Second)
	if cl.At != nil {
		at = cl.At.UTC().Truncate(time.Second)
	}
	if at.After(now.Add(time.Minute)) || at.Before(sh.StartsAt.Add(-leadSlack)) || at.After(sh.EndsAt.Add(leadSlack)) {
		return at, app.InvalidField("timesheet_invalid_time", "at", "at is not in the future and within 12 hours of the shift")
	}
	return at, nil
}

// lockForClocking locks the assignment (and its shift) for a check-in or
// check-out, checking who may clock it.
func lockForClocking(tx *gorm.DB, cl Clocking, id uuid.UUID) (lockedAssignment, error) {
	la, err := lockAssignment(tx, cl.VenueID, id)
	if err != nil {
		return la, err
	}
	if cl.StaffID != uuid.Nil && (la.StaffID != cl.StaffID || !la.Shift.Published) {
		return la, app.NotFound("assignment")
	}
	return la, nil
}

// CheckIn records that the person of an assignment started work.
func (s *Service) CheckIn(ctx context.Context, t tenants.Tenant, cl Clocking, id uuid.UUID) (Timesheet, error) {
	var out Timesheet
	err := s.app.TxWith(ctx, t, tenants.TxOptions{Retry: true}, func(tx *gorm.DB) error {
		la, err := lockForClocking(tx, cl, id)
		if err != nil {
			return err
		}
		if la.Status != StatusAssigned && la.Status != StatusConfirmed {
			return app.Conflict("timesheet_not_on_shift", "the assignment is %s", la.Status).With("assignment_status", la.Status)
		}
		at, err := s.clockTime(cl, la.Shift)
		if err != nil {
			return err
		}
		if cl.StaffID != uuid.Nil && (at.Before(la.Shift.StartsAt.Add(-SelfWindowBefore)) || !at.Before(la.Shift.EndsAt)) {
			return app.Conflict("timesheet_outside_window", "you can check in from %s", la.Shift.StartsAt.Add(-SelfWindowBefore).Format(time.RFC3339))
		}
		// The rate of the role now, copied: later rate changes do not
		// rewrite this shift's cost.
		res := tx.Exec(`INSERT INTO stf_timesheets (assignment_id, staff_id, shift_id, event_id, venue_id, checked_in_at, in_by, hourly_minor, currency)
			SELECT ?, ?, s.id, s.event_id, s.venue_id, ?, ?, rr.hourly_minor, rr.currency
			FROM stf_shifts s LEFT JOIN stf_role_rates rr ON rr.role_id = s.role_id WHERE s.id = ?
			ON CONFLICT (assignment_id) DO NOTHING`, la.ID, la.StaffID, at, cl.By, la.ShiftID)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return app.Conflict("timesheet_checked_in", "%s is checked in already", la.StaffName)
		}
		out, err = readTimesheet(tx, la.ID)
		return err
	})
	return out, err
}

// CheckOut records that the person of an assignment stopped work.
func (s *Service) CheckOut(ctx context.Context, t tenants.Tenant, cl Clocking, id uuid.UUID) (Timesheet, error) {
	var out Timesheet
	err := s.app.TxWith(ctx, t, tenants.TxOptions{Retry: true}, func(tx *gorm.DB) error {
		la, err := lockForClocking(tx, cl, id)
		if err != nil {
			return err
		}
		at, err := s.clockTime(cl, la.Shift)
		if err != nil {
			return err
		}
		var rows []struct {
			CheckedInAt  time.Time
			CheckedOutAt *time.Time
		}
		if err := tx.Raw(`SELECT checked_in_at, checked_out_at FROM stf_timesheets WHERE assignment_id = ? FOR UPDATE`, la.ID).Scan(&rows).Error; err != nil {
			return err
		}
		switch {
		case len(rows) == 0:
			return app.Conflict("timesheet_not_checked_in", "%s was never checked in on this shift", la.StaffName)
		case rows[0].CheckedOutAt != nil:
			return app.Conflict("timesheet_checked_out", "%s is checked out already", la.StaffName)
		case !at.After(rows[0].CheckedInAt):
			return app.InvalidField("timesheet_invalid_time", "at", "the check-out must come after the check-in at %s", rows[0].CheckedInAt.UTC().Format(time.RFC3339))
		}
		if err := tx.Exec(`UPDATE stf_timesheets SET checked_out_at = ?, out_by = ? WHERE assignment_id = ?`, at, cl.By, la.ID).Error; err != nil {
			return err
		}
		out, err = readTimesheet(tx, la.ID)
		return err
	})
	return out, err
}

// PayrollLine is one person's worked time in a period, in one currency.
type PayrollLine struct {
	StaffID     uuid.UUID `json:"staff_id"`
	StaffName   string    `json:"staff_name"`
	Email       string    `json:"email"`
	Shifts      int       `json:"shifts"`
	Minutes     int       `json:"minutes"`
	Currency    string    `json:"currency"` // empty: the role had no rate
	AmountMinor int64     `json:"amount_minor"`
}

// Payroll sums the closed timesheets of a venue whose check-in falls on
// the local dates from..to (inclusive, the venue's zone), per person and
// currency, by name.
func (s *Service) Payroll(ctx context.Context, t tenants.Tenant, venueID uuid.UUID, from, to string) ([]PayrollLine, error) {
	lines, err := s.payroll(ctx, t, &venueID, from, to)
	out := make([]PayrollLine, len(lines))
	for i, l := range lines {
		out[i] = l.PayrollLine
	}
	return out, err
}

// ChainPayrollLine is one person's worked time at one venue in a period,
// in one currency, with the venue's zone and the first and last local
// dates they checked in on there.
type ChainPayrollLine struct {
	VenueID   uuid.UUID `json:"venue_id"`
	VenueName string    `json:"venue_name"`
	Timezone  string    `json:"timezone"`
	FirstDay  string    `json:"first_day"`
	LastDay   string    `json:"last_day"`
	PayrollLine
}

// ChainPayroll is Payroll over every venue of the chain: each venue's
// check-ins counted on its own local dates from..to (a night in Tokyo and
// one in New York are on the dates their venues lived them), one line per
// venue, person and currency, by venue name then person. keep, when not
// nil, chooses the venues (a manager of some venues sees theirs only).
func (s *Service) ChainPayroll(ctx context.Context, t tenants.Tenant, from, to string, keep func(venueID uuid.UUID) bool) ([]ChainPayrollLine, error) {
	lines, err := s.payroll(ctx, t, nil, from, to)
	if err != nil || keep == nil {
		return lines, err
	}
	out := lines[:0]
	for _, l := range lines {
		if keep(l.VenueID) {
			out = append(out, l)
		}
	}
	return out, nil
}

// payroll sums closed timesheets of one venue (nil: all) whose check-in
// falls on from..to in the venue's local dates.
func (s *Service) payroll(ctx context.Context, t tenants.Tenant, venueID *uuid.UUID, from, to string) ([]ChainPayrollLine, error) {
	f, err1 := time.Parse(time.DateOnly, from)
	l, err2 := time.Parse(time.DateOnly, to)
	if err1 != nil || err2 != nil || l.Before(f) || l.Sub(f) > 92*24*time.Hour {
		return nil, app.Invalid("invalid_period", "from and to are dates (YYYY-MM-DD), from not after to, at most 93 days")
	}
	var rows []struct {
		VenueID, EventID, StaffID uuid.UUID
		Timezone, LocalDay        string
		StaffName, Email          string
		CheckedInAt, CheckedOutAt time.Time
		HourlyMinor               *int64
		Currency                  *string
	}
	err := s.app.TxWith(ctx, t, tenants.TxOptions{ReadOnly: true}, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT ts.venue_id, ts.event_id, s.timezone, to_char(ts.checked_in_at AT TIME ZONE s.timezone, 'YYYY-MM-DD') AS local_day,
				ts.staff_id, st.name AS staff_name, st.email, ts.checked_in_at, ts.checked_out_at, ts.hourly_minor, ts.currency
			FROM stf_timesheets ts JOIN stf_shifts s ON s.id = ts.shift_id JOIN stf_staff st ON st.id = ts.staff_id
			WHERE (?::uuid IS NULL OR ts.venue_id = ?) AND ts.checked_out_at IS NOT NULL
			  AND (ts.checked_in_at AT TIME ZONE s.timezone)::date BETWEEN ?::date AND ?::date`, venueID, venueID, from, to).Scan(&rows).Error
	})
	if err != nil {
		return nil, err
	}
	type key struct {
		venue, staff uuid.UUID
		currency     string
	}
	lines := map[key]*ChainPayrollLine{}
	venueEvent := map[uuid.UUID]uuid.UUID{} // one event per venue, to name it
	for _, r := range rows {
		k := key{r.VenueID, r.StaffID, ""}
		if r.Currency != nil {
			k.currency = *r.Currency
		}
		pl := lines[k]
		if pl == nil {
			pl = &ChainPayrollLine{VenueID: r.VenueID, Timezone: r.Timezone, FirstDay: r.LocalDay, LastDay: r.LocalDay,
				PayrollLine: PayrollLine{StaffID: r.StaffID, StaffName: r.StaffName, Email: r.Email, Currency: k.currency}}
			lines[k] = pl
		}
		venueEvent[r.VenueID] = r.EventID
		m := roundedMinutes(r.CheckedOutAt.Sub(r.CheckedInAt))
		pl.Shifts++
		pl.Minutes += m
		if r.HourlyMinor != nil {
			pl.AmountMinor += spanCost(m, *r.HourlyMinor)
		}
		pl.FirstDay, pl.LastDay = min(pl.FirstDay, r.LocalDay), max(pl.LastDay, r.LocalDay)
	}
	names := map[uuid.UUID]string{}
	if dir := s.app.Events(); dir != nil && venueID == nil {
		for v, ev := range venueEvent {
			if info, err := dir.Event(ctx, t, ev); err == nil {
				names[v] = info.VenueName
			}
		}
	}
	out := make([]ChainPayrollLine, 0, len(lines))
	for _, pl := range lines {
		pl.VenueName = names[pl.VenueID]
		out = append(out, *pl)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.VenueName != b.VenueName {
			return a.VenueName < b.VenueName
		}
		if a.VenueID != b.VenueID {
			return a.VenueID.String() < b.VenueID.String()
		}
		if a.StaffName != b.StaffName {
			return a.StaffName < b.StaffName
		}
		if a.StaffID != b.StaffID {
			return a.StaffID.String() < b.StaffID.String()
		}
		return a.Currency < b.Currency
	})
	return out, nil
}

// WritePayrollCSV writes payroll lines as CSV: hours with two decimals from
// the rounded minutes, amounts in minor units with their currency.
func WritePayrollCSV(w io.Writer, from, to string, lines []PayrollLine) error {
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"staff_id", "name", "email", "period_from", "period_to", "shifts", "minutes", "hours", "currency", "amount_minor"})
	for _, l := range lines {
		_ = cw.Write([]string{l.StaffID.String(), csvSafe(l.StaffName), csvSafe(l.Email), from, to, strconv.Itoa(l.Shifts), strconv.Itoa(l.Minutes),
			hours(l.Minutes), l.Currency, strconv.FormatInt(l.AmountMinor, 10)})
	}
	cw.Flush()
	return cw.Error()
}

// WriteChainPayrollCSV writes the chain's payroll as CSV: one row per venue,
// person and currency, with the venue's zone and the local dates of the
// person's first and last check-in there.
func WriteChainPayrollCSV(w io.Writer, from, to string, lines []ChainPayrollLine) error {
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"venue_id", "venue", "timezone", "staff_id", "name", "email", "period_from", "period_to", "first_day", "last_day",
		"shifts", "minutes", "hours", "currency", "amount_minor"})
	for _, l := range lines {
		_ = cw.Write([]string{l.VenueID.String(), csvSafe(l.VenueName), l.Timezone, l.StaffID.String(), csvSafe(l.StaffName), csvSafe(l.Email),
			from, to, l.FirstDay, l.LastDay, strconv.Itoa(l.Shifts), strconv.Itoa(l.Minutes), hours(l.Minutes), l.Currency, strconv.FormatInt(l.AmountMinor, 10)})
	}
	cw.Flush()
	return cw.Error()
}

// hours writes minutes as hours with two decimals.
func hours(minutes int) string { return fmt.Sprintf("%d.%02d", minutes/60, (minutes%60)*100/60) }

// csvSafe keeps a spreadsheet from reading a cell as a formula.
func csvSafe(s string) string {
	if s != "" && (s[0] == '=' || s[0] == '+' || s[0] == '-' || s[0] == '@') {
		return "'" + s
	}
	return s
}

// EventLabourCost implements app.LabourCosts: the event's closed
// timesheets at their rates, per currency (currency "" counts the minutes
// of roles without a rate, at no cost); people checked in and not out are
// counted in Open.
func (s *Service) EventLabourCost(ctx context.Context, t tenants.Tenant, eventID uuid.UUID) ([]app.LabourCost, error) {
	var rows []struct {
		StaffID      uuid.UUID
		CheckedInAt  time.Time
		CheckedOutAt *time.Time
		HourlyMinor  *int64
		Currency     *string
	}
	err := s.app.TxWith(ctx, t, tenants.TxOptions{ReadOnly: true}, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT staff_id, checked_in_at, checked_out_at, hourly_minor, currency FROM stf_timesheets WHERE event_id = ?`, eventID).Scan(&rows).Error
	})
	if err != nil {
		return nil, err
	}
	byCur := map[string]*app.LabourCost{}
	people := map[string]map[uuid.UUID]bool{}
	for _, r := range rows {
		cur := ""
		if r.Currency != nil {
			cur = *r.Currency
		}
		lc := byCur[cur]
		if lc == nil {
			lc = &app.LabourCost{Currency: cur}
			byCur[cur], people[cur] = lc, map[uuid.UUID]bool{}
		}
		people[cur][r.StaffID] = true
		if r.CheckedOutAt == nil {
			lc.Open++
			continue
		}
		m := roundedMinutes(r.CheckedOutAt.Sub(r.CheckedInAt))
		lc.Minutes += m
		if r.HourlyMinor != nil {
			lc.AmountMinor += spanCost(m, *r.HourlyMinor)
		}
	}
	out := make([]app.LabourCost, 0, len(byCur))
	for cur, lc := range byCur {
		lc.People = len(people[cur])
		out = append(out, *lc)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Currency < out[j].Currency })
	return out, nil
}

var _ app.LabourCosts = (*Service)(nil)
