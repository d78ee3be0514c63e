package staffing

import (
	"context"
	"sort"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/tenants"
)

// RoleCoverage is one role at one event: what is required against who is
// on its shifts.
type RoleCoverage struct {
	RoleID    uuid.UUID `json:"role_id"`
	RoleName  string    `json:"role_name"`
	Required  int       `json:"required"`
	Places    int       `json:"places"`    // places offered on open shifts
	Assigned  int       `json:"assigned"`  // assignments holding a place (assigned or confirmed)
	Confirmed int       `json:"confirmed"` // of which the person confirmed
	Requested int       `json:"requested"` // sign-up requests awaiting approval
	Gap       int       `json:"gap"`       // required - assigned, when positive
	// GapFromSales is the part of the gap that ticket sales made: the
	// requirement rose with attendance above what was already covered.
	GapFromSales int    `json:"gap_from_sales"`
	Basis        string `json:"basis,omitempty"`
	Attendance   int    `json:"attendance"`
}

// EventCoverage is one event's coverage, role by role.
type EventCoverage struct {
	EventID   uuid.UUID      `json:"event_id"`
	Title     string         `json:"title"`
	VenueID   uuid.UUID      `json:"venue_id"`
	VenueName string         `json:"venue_name"`
	Timezone  string         `json:"timezone"`
	StartsAt  time.Time      `json:"starts_at"`
	EndsAt    time.Time      `json:"ends_at"`
	Required  int            `json:"required"`
	Assigned  int            `json:"assigned"`
	Confirmed int            `json:"confirmed"`
	Gap       int            `json:"gap"`
	Roles     []RoleCoverage `json:"roles"`
}

// NightCoverage is the coverage of every event of a night, chain-wide or
// at one venue.
type NightCoverage struct {
	Date    string          `json:"date"`
	VenueID *uuid.UUID      `json:"venue_id,omitempty"`
	Events  []EventCoverage `json:"events"`
	Gap     int             `json:"gap"`
}

// coverageRows reads requirements and shift counts of events in one
// statement, and folds them per event and role.
func coverageRows(tx *gorm.DB, events []uuid.UUID) (map[uuid.UUID][]RoleCoverage, error) {
	var rows []struct {
		EventID    uuid.UUID
		RoleID     uuid.UUID
		RoleName   string
		Required   int
		RaisedFrom *int
		Basis      string
		Attendance int
		Places     int
		Assigned   int
		Confirmed  int
		Requested  int
	}
	err := tx.Raw(`
WITH sh AS (
    SELECT s.event_id, s.role_id, sum(s.places)::int AS places, sum(s.filled)::int AS assigned,
           coalesce(sum(c.confirmed), 0)::int AS confirmed, coalesce(sum(c.requested), 0)::int AS requested
    FROM stf_shifts s
    LEFT JOIN LATERAL (
        SELECT count(*) FILTER (WHERE a.status = 'confirmed') AS confirmed, count(*) FILTER (WHERE a.status = 'requested') AS requested
        FROM stf_assignments a WHERE a.shift_id = s.id AND a.status IN ('confirmed', 'requested')
    ) c ON true
    WHERE s.event_id = ANY(CAST(@events AS uuid[])) AND s.status = 'open'
    GROUP BY s.event_id, s.role_id
)
SELECT coalesce(q.event_id, sh.event_id) AS event_id, coalesce(q.role_id, sh.role_id) AS role_id, r.name AS role_name,
       coalesce(q.required, 0) AS required, q.raised_from, coalesce(q.basis, '') AS basis, coalesce(q.attendance, 0) AS attendance,
       coalesce(sh.places, 0) AS places, coalesce(sh.assigned, 0) AS assigned, coalesce(sh.confirmed, 0) AS confirmed,
       coalesce(sh.requested, 0) AS requested
FROM (SELECT * FROM stf_requirements WHERE event_id = ANY(CAST(@events AS uuid[]))) q
FULL JOIN sh ON sh.event_id = q.event_id AND sh.role_id = q.role_id
JOIN stf_roles r ON r.id = coalesce(q.role_id, sh.role_id)
ORDER BY r.name`, map[string]any{"events": uuidArray(events)}).Scan(&rows).Error
	out := map[uuid.UUID][]RoleCoverage{}
	for _, r := range rows {
		rc := RoleCoverage{RoleID: r.RoleID, RoleName: r.RoleName, Required: r.Required, Places: r.Places, Assigned: r.Assigned,
			Confirmed: r.Confirmed, Requested: r.Requested, Basis: r.Basis, Attendance: r.Attendance}
		rc.Gap = max(0, rc.Required-rc.Assigned)
		if r.RaisedFrom != nil {
			rc.GapFromSales = max(0, min(rc.Gap, rc.Required-max(*r.RaisedFrom, rc.Assigned)))
		}
		out[r.EventID] = append(out[r.EventID], rc)
	}
	return out, err
}

func fold(ev app.EventInfo, roles []RoleCoverage) EventCoverage {
	ec := EventCoverage{EventID: ev.ID, Title: ev.Title, VenueID: ev.VenueID, VenueName: ev.VenueName, Timezone: ev.Timezone,
		StartsAt: ev.StartsAt.UTC(), EndsAt: ev.EndsAt.UTC(), Roles: app.NonNil(roles)}
	for _, r := range roles {
		ec.Required += r.Required
		ec.Assigned += r.Assigned
		ec.Confirmed += r.Confirmed
		ec.Gap += r.Gap
	}
	return ec
}

// EventCoverage reads one event's coverage.
func (s *Service) EventCoverage(ctx context.Context, t tenants.Tenant, ev app.EventInfo) (EventCoverage, error) {
	var rows map[uuid.UUID][]RoleCoverage
	err := s.app.TxWith(ctx, t, tenants.TxOptions{ReadOnly: true}, func(tx *gorm.DB) error {
		var err error
		rows, err = coverageRows(tx, []uuid.UUID{ev.ID})
		return err
	})
	return fold(ev, rows[ev.ID]), err
}

// nightEvents lists the live events whose local start date (at their
// venue) is date, at one venue or all.
func (s *Service) nightEvents(ctx context.Context, t tenants.Tenant, date time.Time, venueID uuid.UUID) ([]app.EventInfo, error) {
	dir := s.app.Events()
	if dir == nil {
		return nil, app.Unavailable("events_unavailable", 0, "no module provides events")
	}
	// Every zone's local day lies within 14 hours of the UTC day.
	f := app.EventFilter{From: date.Add(-14 * time.Hour), To: date.Add(38 * time.Hour), VenueID: venueID, Limit: 500,
		Statuses: []string{"draft", "confirmed", "on_sale", "sold_out", "completed"}}
	want := date.Format(time.DateOnly)
	var out []app.EventInfo
	for {
		evs, err := dir.Events(ctx, t, f)
		if err != nil {
			return nil, err
		}
		for _, ev := range evs {
			if localDay(ev.StartsAt, ev.Timezone) == want {
				out = append(out, ev)
			}
		}
		if len(evs) < f.Limit {
			return out, nil
		}
		f.After = evs[len(evs)-1].ID
	}
}

// Night reads the coverage of every event of a night, chain-wide or at
// one venue (venueID), by start time.
func (s *Service) Night(ctx context.Context, t tenants.Tenant, date time.Time, venueID uuid.UUID) (NightCoverage, error) {
	out := NightCoverage{Date: date.Format(time.DateOnly), Events: []EventCoverage{}}
	if venueID != uuid.Nil {
		out.VenueID = &venueID
	}
	evs, err := s.nightEvents(ctx, t, date, venueID)
	if err != nil || len(evs) == 0 {
		return out, err
	}
	ids := make([]uuid.UUID, len(evs))
	for i, ev := range evs {
		ids[i] = ev.ID
	}
	var rows map[uuid.UUID][]RoleCoverage
	err = s.app.TxWith(ctx, t, tenants.TxOptions{ReadOnly: true}, func(tx *gorm.DB) error {
		var err error
		rows, err = coverageRows(tx, ids)
		return err
	})
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].StartsAt.Before(evs[j].StartsAt) })
	for _, ev := range evs {
		ec := fold(ev, rows[ev.ID])
		out.Gap += ec.Gap
		out.Events = append(out.Events, ec)
	}
	return out, err
}

// GridCell is one role in one hour of an event: people on shift then.
type GridCell struct {
	Hour     string `json:"hour"` // local HH:00
	OnShift  int    `json:"on_shift"`
	Required int    `json:"required"`
	Short    bool   `json:"short"` // fewer on shift than required during the event
	During   bool   `json:"during"`
}

// GridRow is one role of an event's grid.
type GridRow struct {
	Role  RoleCoverage `json:"role"`
	Cells []GridCell   `json:"cells"`
}

// grid lays an event's coverage out by role × hour (venue time), from two
// hours before the start to one after the end: how many people of each
// role are on shift in each hour, short where fewer than required while
// the event runs.
func grid(tx *gorm.DB, ec EventCoverage) ([]GridRow, []string, error) {
	loc, err := app.Timezone(ec.Timezone)
	if err != nil {
		loc = time.UTC
	}
	from := ec.StartsAt.Add(-2 * time.Hour).Truncate(time.Hour)
	to := ec.EndsAt.Add(time.Hour)
	var shifts []struct {
		RoleID   uuid.UUID
		StartsAt time.Time
		EndsAt   time.Time
		Filled   int
	}
	if err := tx.Raw(`SELECT role_id, lower(during) AS starts_at, upper(during) AS ends_at, filled FROM stf_shifts
		WHERE event_id = ? AND status = 'open'`, ec.EventID).Scan(&shifts).Error; err != nil {
		return nil, nil, err
	}
	var hours []string
	for h := from; h.Before(to); h = h.Add(time.Hour) {
		hours = append(hours, h.In(loc).Format("15:04"))
	}
	rows := make([]GridRow, 0, len(ec.Roles))
	for _, rc := range ec.Roles {
		row := GridRow{Role: rc}
		for h := from; h.Before(to); h = h.Add(time.Hour) {
			// on shift for the whole hour's middle: a half-hour start counts
			// in the hour it covers most of
			mid := h.Add(30 * time.Minute)
			n := 0
			for _, sh := range shifts {
				if sh.RoleID == rc.RoleID && !mid.Before(sh.StartsAt) && mid.Before(sh.EndsAt) {
					n += sh.Filled
				}
			}
			during := mid.After(ec.StartsAt) && mid.Before(ec.EndsAt)
			row.Cells = append(row.Cells, GridCell{Hour: h.In(loc).Format("15:04"), OnShift: n, Required: rc.Required,
				During: during, Short: during && n < rc.Required})
		}
		rows = append(rows, row)
	}
	return rows, hours, nil
}
