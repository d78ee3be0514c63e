package staffing

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/tenants"
)

// This file holds shifts, their assignments and the publishing of a
// venue's day. The two invariants are the database's: the exclusion
// constraint stf_assignments_no_overlap keeps one person out of two
// overlapping shifts, and the conditional UPDATE of stf_shifts.filled
// (CHECK filled <= places) keeps a shift from being over-filled. Locks are
// always taken in one order — staff member, then shift, then assignment —
// so the paths below never wait on each other in a cycle.

// Service holds staffing's rules. Public methods open one tenant
// transaction each and hand it to unexported helpers.
type Service struct {
	app *app.Core
}

// NewService builds the staffing service on the core.
func NewService(a *app.Core) *Service { return &Service{app: a} }

// MaxShiftLength bounds one shift: longer blocks are split by managers.
const MaxShiftLength = 24 * time.Hour

// ShiftInput creates a shift.
type ShiftInput struct {
	EventID  uuid.UUID
	RoleID   uuid.UUID
	Zone     string
	StartsAt time.Time
	EndsAt   time.Time
	Places   int
}

func checkRange(start, end time.Time) error {
	switch {
	case start.IsZero():
		return app.InvalidField("invalid_request", "starts_at", "starts_at is required")
	case !end.After(start):
		return app.InvalidField("invalid_range", "ends_at", "ends_at must be after starts_at")
	case end.Sub(start) > MaxShiftLength:
		return app.InvalidField("invalid_range", "ends_at", "a shift lasts at most %d hours", int(MaxShiftLength.Hours()))
	}
	return nil
}

func checkPlaces(n int) error {
	if n < 0 || n > 1000 {
		return app.InvalidField("invalid_places", "places", "places is 0 to 1000")
	}
	return nil
}

// eventAt reads an event through the directory and checks it is at the
// venue (an event elsewhere is invalid input, not a hidden resource).
func (s *Service) eventAt(ctx context.Context, t tenants.Tenant, venueID, eventID uuid.UUID) (app.EventInfo, error) {
	dir := s.app.Events()
	if dir == nil {
		return app.EventInfo{}, app.Unavailable("events_unavailable", 0, "no module provides events")
	}
	ev, err := dir.Event(ctx, t, eventID)
	var ae *app.Error
	if errors.As(err, &ae) && ae.Kind == app.KindNotFound {
		return ev, app.InvalidField("unknown_event", "event_id", "no event %s in this chain", eventID)
	}
	if err != nil {
		return ev, err
	}
	if venueID != uuid.Nil && ev.VenueID != venueID {
		return ev, app.InvalidField("unknown_event", "event_id", "event %s is not at this venue", eventID)
	}
	return ev, nil
}

func localDay(at time.Time, tz string) string {
	loc, err := app.Timezone(tz)
	if err != nil {
		loc = time.UTC
	}
	return at.In(loc).Format(time.DateOnly)
}

// CreateShift adds a shift to an event at venueID.
func (s *Service) CreateShift(ctx context.Context, t tenants.Tenant, venueID uuid.UUID, in ShiftInput) (ShiftDetail, error) {
	if err := checkRange(in.StartsAt, in.EndsAt); err != nil {
		return ShiftDetail{}, err
	}
	if err := checkPlaces(in.Places); err != nil {
		return ShiftDetail{}, err
	}
	zone, err := textField("zone", in.Zone, 100, false)
	if err != nil {
		return ShiftDetail{}, err
	}
	ev, err := s.eventAt(ctx, t, venueID, in.EventID)
	if err != nil {
		return ShiftDetail{}, err
	}
	id := uuid.Must(uuid.NewV7())
	var out ShiftDetail
	err = s.app.Tx(ctx, t, func(tx *gorm.DB) error {
		res := tx.Exec(`INSERT INTO stf_shifts (id, event_id, venue_id, timezone, day, role_id, zone, during, places)
			SELECT ?, ?, ?, ?, ?::date, r.id, ?, tstzrange(?, ?, '[)'), ? FROM stf_roles r WHERE r.id = ?`,
			id, ev.ID, ev.VenueID, ev.Timezone, localDay(in.StartsAt, ev.Timezone), zone, in.StartsAt.UTC(), in.EndsAt.UTC(), in.Places, in.RoleID)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return app.InvalidField("unknown_role", "role_id", "no role %s in this chain", in.RoleID)
		}
		out, err = shiftDetail(tx, id)
		return err
	})
	return out, err
}

const shiftCols = `s.id, s.event_id, s.venue_id, s.timezone, to_char(s.day, 'YYYY-MM-DD') AS day, s.role_id, r.name AS role_name, s.zone,
	lower(s.during) AS starts_at, upper(s.during) AS ends_at, s.places, s.filled, s.status, s.version,
	EXISTS (SELECT 1 FROM stf_publications p WHERE p.venue_id = s.venue_id AND p.day = s.day) AS published`

const shiftFrom = ` FROM stf_shifts s JOIN stf_roles r ON r.id = s.role_id `

func utcShift(sh *Shift) { sh.StartsAt, sh.EndsAt = sh.StartsAt.UTC(), sh.EndsAt.UTC() }

func shiftDetail(tx *gorm.DB, id uuid.UUID) (ShiftDetail, error) {
	var ss []Shift
	if err := tx.Raw(`SELECT `+shiftCols+shiftFrom+`WHERE s.id = ?`, id).Scan(&ss).Error; err != nil {
		return ShiftDetail{}, err
	}
	if len(ss) == 0 {
		return ShiftDetail{}, app.NotFound("shift")
	}
	utcShift(&ss[0])
	d := ShiftDetail{Shift: ss[0]}
	as, err := shiftAssignments(tx, []uuid.UUID{id})
	d.Assignments = app.NonNil(as[id])
	return d, err
}

type assignmentRow struct {
	Assignment
	WarningList string
}

func shiftAssignments(tx *gorm.DB, shifts []uuid.UUID) (map[uuid.UUID][]Assignment, error) {
	var rows []assignmentRow
	err := tx.Raw(`SELECT a.id, a.shift_id, a.staff_id, st.name AS staff_name, a.status, a.by_manager,
			array_to_string(a.warnings, '|') AS warning_list, a.assigned_at
		FROM stf_assignments a JOIN stf_staff st ON st.id = a.staff_id
		WHERE a.shift_id = ANY(?::uuid[]) ORDER BY a.assigned_at, a.id`, uuidArray(shifts)).Scan(&rows).Error
	out := map[uuid.UUID][]Assignment{}
	for _, r := range rows {
		out[r.ShiftID] = append(out[r.ShiftID], r.assignment())
	}
	return out, err
}

func (r assignmentRow) assignment() Assignment {
	a := r.Assignment
	a.AssignedAt = a.AssignedAt.UTC()
	a.Warnings = []string{}
	if r.WarningList != "" {
		a.Warnings = strings.Split(r.WarningList, "|")
	}
	return a
}

// ShiftFilter selects a venue's shifts.
type ShiftFilter struct {
	Day     string    // local date; empty: any
	EventID uuid.UUID // zero: any
}

// VenueShifts lists a venue's shifts with their people, by start.
func (s *Service) VenueShifts(ctx context.Context, t tenants.Tenant, venueID uuid.UUID, f ShiftFilter) ([]ShiftDetail, error) {
	var out []ShiftDetail
	err := s.app.TxWith(ctx, t, tenants.TxOptions{ReadOnly: true}, func(tx *gorm.DB) error {
		q, args := `SELECT `+shiftCols+shiftFrom+`WHERE s.venue_id = ?`, []any{venueID}
		if f.Day != "" {
			q, args = q+` AND s.day = ?::date`, append(args, f.Day)
		}
		if f.EventID != uuid.Nil {
			q, args = q+` AND s.event_id = ?`, append(args, f.EventID)
		}
		var ss []Shift
		if err := tx.Raw(q+` ORDER BY lower(s.during), r.name, s.id LIMIT 2000`, args...).Scan(&ss).Error; err != nil {
			return err
		}
		ids := make([]uuid.UUID, len(ss))
		for i := range ss {
			utcShift(&ss[i])
			ids[i] = ss[i].ID
		}
		as, err := shiftAssignments(tx, ids)
		for _, sh := range ss {
			out = append(out, ShiftDetail{Shift: sh, Assignments: app.NonNil(as[sh.ID])})
		}
		return err
	})
	return app.NonNil(out), err
}

// ShiftPatch changes a shift; nil fields stay. Cancel cancels it and every
// assignment on it.
type ShiftPatch struct {
	StartsAt *time.Time
	EndsAt   *time.Time
	Places   *int
	Zone     *string
	Cancel   bool
}

// notice is one thing to tell a staff member: queued as mail in the
// core's outbox inside the change's transaction, pushed live after it
// commits.
type notice struct {
	StaffID      uuid.UUID `json:"staff_id"`
	Kind         string    `json:"kind"`
	ShiftID      uuid.UUID `json:"shift_id"`
	AssignmentID uuid.UUID `json:"assignment_id,omitempty"`
	StartsAt     time.Time `json:"starts_at"`
	EndsAt       time.Time `json:"ends_at"`
	Role         string    `json:"role"`
	Day          string    `json:"day"`
	Timezone     string    `json:"-"`
	Version      int       `json:"-"` // the shift's version: each move is its own message
}

// MailKindPrefix prefixes the kinds of staffing's mail (staffing.assigned,
// staffing.moved, ...).
const MailKindPrefix = "staffing."

var noticeSubjects = map[string]string{
	"published": "Your shift is scheduled",
	"assigned":  "You are on a shift",
	"moved":     "Your shift has moved",
	"cancelled": "Your shift is cancelled",
	"removed":   "You are off a shift",
	"approved":  "Your shift request is approved",
	"swapped":   "A shift swap went through",
}

// mail is the notice as a message. Its key names its purpose, so a retried
// transaction or a repeated publish queues it once; a move carries the
// shift's version, so each move is told.
func (n notice) mail(to string) app.MailMessage {
	key := fmt.Sprintf("shift:%s:%s:%s", n.ShiftID, n.Kind, n.AssignmentID)
	if n.Kind == "moved" {
		key += fmt.Sprintf(":v%d", n.Version)
	}
	loc, err := app.Timezone(n.Timezone)
	if err != nil {
		loc = time.UTC
	}
	from, to2 := n.StartsAt.In(loc), n.EndsAt.In(loc)
	body := fmt.Sprintf("%s\n\nRole: %s\nWhen: %s, %s to %s (%s)\n\nOpen \"My shifts\" in the portal to confirm or decline.\n",
		noticeSubjects[n.Kind], n.Role, from.Format("Monday 2 January 2006"), from.Format("15:04"), to2.Format("15:04"), loc.String())
	return app.MailMessage{Key: key, Kind: MailKindPrefix + n.Kind, Ref: n.AssignmentID.String(), To: to,
		Subject: noticeSubjects[n.Kind] + ": " + n.Role + " on " + n.Day, Body: body}
}

// notify queues the notices' mail in the caller's transaction (staff
// without an email address are told live only) and answers the queued ids,
// dispatched after the commit.
func (s *Service) notify(tx *gorm.DB, ns []notice) ([]uuid.UUID, error) {
	if len(ns) == 0 {
		return nil, nil
	}
	ids := make([]uuid.UUID, len(ns))
	for i, n := range ns {
		ids[i] = n.StaffID
	}
	var rows []struct {
		ID    uuid.UUID
		Email string
	}
	if err := tx.Raw(`SELECT id, email FROM stf_staff WHERE id = ANY(?::uuid[]) AND email <> ''`, uuidArray(ids)).Scan(&rows).Error; err != nil {
		return nil, err
	}
	emails := map[uuid.UUID]string{}
	for _, r := range rows {
		emails[r.ID] = r.Email
	}
	var mails []uuid.UUID
	for _, n := range ns {
		to := emails[n.StaffID]
		if to == "" {
			continue
		}
		id, fresh, err := s.app.Mail.Queue(tx, n.mail(to))
		if err != nil {
			return nil, err
		}
		if fresh {
			mails = append(mails, id)
		}
	}
	return mails, nil
}

// notifyPgx is notify on the pgx path (the sign-up statement's transaction).
func (s *Service) notifyPgx(tx *tenants.Pgx, n notice) ([]uuid.UUID, error) {
	var to string
	if err := tx.QueryRow(`SELECT email FROM stf_staff WHERE id = $1`, n.StaffID).Scan(&to); err != nil || to == "" {
		return nil, err
	}
	id, fresh, err := s.app.Mail.QueuePgx(tx, n.mail(to))
	if err != nil || !fresh {
		return nil, err
	}
	return []uuid.UUID{id}, nil
}

// StaffTopic is the realtime topic of one staff member's schedule.
func StaffTopic(staffID uuid.UUID) string { return "staffing:staff:" + staffID.String() }

// tell sends committed notices to the staff members' open pages, on any
// server instance, and asks the core to send their mail now. The push is
// best effort: the page re-reads its schedule on each one, and the mail
// stays in the core's outbox until it is sent.
func (s *Service) tell(ctx context.Context, t tenants.Tenant, ns []notice, mails []uuid.UUID) {
	for _, n := range ns {
		if err := s.app.Realtime.Publish(context.WithoutCancel(ctx), t, StaffTopic(n.StaffID), "schedule", n); err != nil {
			s.app.Log.Warn("staffing: live update not sent", "tenant", t.Slug, "staff", n.StaffID, "err", err)
		}
	}
	if len(mails) > 0 {
		s.app.Mail.Dispatch(ctx, t, mails...)
	}
}

// lockShift reads a shift of the venue for a change (FOR UPDATE).
func lockShift(tx *gorm.DB, venueID, id uuid.UUID) (Shift, error) {
	var ss []Shift
	q := `SELECT ` + shiftCols + shiftFrom + `WHERE s.id = ?`
	args := []any{id}
	if venueID != uuid.Nil {
		q, args = q+` AND s.venue_id = ?`, append(args, venueID)
	}
	if err := tx.Raw(q+` FOR UPDATE OF s`, args...).Scan(&ss).Error; err != nil {
		return Shift{}, err
	}
	if len(ss) == 0 {
		return Shift{}, app.NotFound("shift")
	}
	utcShift(&ss[0])
	return ss[0], nil
}

// activeOn lists the active assignments of a shift: who a change touches.
func activeOn(tx *gorm.DB, shiftID uuid.UUID) ([]Assignment, error) {
	var rows []assignmentRow
	err := tx.Raw(`SELECT a.id, a.shift_id, a.staff_id, a.status FROM stf_assignments a
		WHERE a.shift_id = ? AND a.status IN ('requested', 'assigned', 'confirmed') ORDER BY a.id FOR UPDATE`, shiftID).Scan(&rows).Error
	out := make([]Assignment, len(rows))
	for i, r := range rows {
		out[i] = r.Assignment
	}
	return out, err
}

// UpdateShift moves, resizes or cancels a shift. Moving it moves its
// people's ranges too, so the exclusion constraint re-checks each of them:
// a move that would put someone in two shifts at once is refused whole.
// On a published day, everyone on the shift is told.
func (s *Service) UpdateShift(ctx context.Context, t tenants.Tenant, venueID, id uuid.UUID, p ShiftPatch) (ShiftDetail, error) {
	if p.Places != nil {
		if err := checkPlaces(*p.Places); err != nil {
			return ShiftDetail{}, err
		}
	}
	if p.Zone != nil {
		z, err := textField("zone", *p.Zone, 100, false)
		if err != nil {
			return ShiftDetail{}, err
		}
		p.Zone = &z
	}
	if p.StartsAt == nil && p.EndsAt == nil && p.Places == nil && p.Zone == nil && !p.Cancel {
		return ShiftDetail{}, app.Invalid("invalid_request", "the change is empty")
	}
	var out ShiftDetail
	var ns []notice
	var mails []uuid.UUID
	err := s.app.TxWith(ctx, t, tenants.TxOptions{Retry: true}, func(tx *gorm.DB) error {
		ns, mails = nil, nil
		sh, err := lockShift(tx, venueID, id)
		if err != nil {
			return err
		}
		if sh.Status == "cancelled" {
			return app.Conflict("shift_cancelled", "the shift is cancelled")
		}
		start, end := sh.StartsAt, sh.EndsAt
		if p.StartsAt != nil {
			start = p.StartsAt.UTC()
		}
		if p.EndsAt != nil {
			end = p.EndsAt.UTC()
		}
		if err := checkRange(start, end); err != nil {
			return err
		}
		people, err := activeOn(tx, id)
		if err != nil {
			return err
		}
		kind := "moved"
		switch {
		case p.Cancel:
			kind = "cancelled"
			if err := tx.Exec(`UPDATE stf_assignments SET status = 'cancelled', updated_at = now()
				WHERE shift_id = ? AND status IN ('requested', 'assigned', 'confirmed')`, id).Error; err != nil {
				return err
			}
			if err := tx.Exec(`UPDATE stf_shifts SET status = 'cancelled', filled = 0, version = version + 1, updated_at = now() WHERE id = ?`, id).Error; err != nil {
				return err
			}
		default:
			places, zone := sh.Places, sh.Zone
			if p.Places != nil {
				places = *p.Places
			}
			if p.Zone != nil {
				zone = *p.Zone
			}
			if places < sh.Filled {
				return app.Conflict("places_below_assigned", "%d people hold places on the shift; unassign some before lowering places to %d", sh.Filled, places)
			}
			day := localDay(start, sh.Timezone)
			if err := tx.Exec(`UPDATE stf_shifts SET during = tstzrange(?, ?, '[)'), day = ?::date, places = ?, zone = ?, version = version + 1, updated_at = now()
				WHERE id = ?`, start, end, day, places, zone, id).Error; err != nil {
				return err
			}
			if !start.Equal(sh.StartsAt) || !end.Equal(sh.EndsAt) {
				// The constraint re-checks each person against their other shifts.
				err := tx.Exec(`UPDATE stf_assignments SET during = tstzrange(?, ?, '[)'), updated_at = now()
					WHERE shift_id = ? AND status IN ('requested', 'assigned', 'confirmed')`, start, end, id).Error
				if code, _ := pgErr(err); code == pgExclusion {
					return app.Conflict("shift_overlap", "moving the shift would put someone on it in two shifts at once")
				}
				if err != nil {
					return err
				}
			} else {
				kind = "" // places or zone only: nothing staff must act on
			}
		}
		if out, err = shiftDetail(tx, id); err != nil {
			return err
		}
		if kind != "" {
			published, err := dayPublished(tx, sh.VenueID, sh.Day, out.Day)
			if err != nil || !published {
				return err
			}
			for _, a := range people {
				ns = append(ns, notice{StaffID: a.StaffID, Kind: kind, ShiftID: id, AssignmentID: a.ID, StartsAt: out.StartsAt, EndsAt: out.EndsAt, Role: out.RoleName, Day: out.Day,
					Timezone: out.Timezone, Version: out.Version})
			}
			mails, err = s.notify(tx, ns)
			return err
		}
		return nil
	})
	if err == nil {
		s.tell(ctx, t, ns, mails)
	}
	return out, err
}

// dayPublished reports whether any of the venue's days is published.
func dayPublished(tx *gorm.DB, venueID uuid.UUID, days ...string) (bool, error) {
	return exists(tx, `SELECT 1 FROM stf_publications WHERE venue_id = ? AND day = ANY(?::date[])`, venueID, "{"+strings.Join(days, ",")+"}")
}

// ---- assignment: the conditional write

// placement is one person going onto one shift.
type placement struct {
	shiftID, staffID uuid.UUID
	venueID          uuid.UUID // the shift must be at this venue (manager routes); zero: any
	self             bool      // the person signs up themselves: published shifts, the role's policy
	userID           uuid.UUID // set instead of staffID: the signed-in user's staff record
}

// eligibility are the rules a placement must pass, as SQL over the shift
// (alias slot: id, role_id, during, timezone), the settings (st) and the
// role (r), with $2 the staff member and $4 the server's clock. Written once,
// they are both the WHERE of the conditional insert and, when it refuses,
// the columns that say which rule did.
var eligibility = []struct{ name, sql string }{
	{"role", `EXISTS (SELECT 1 FROM stf_staff_roles sr WHERE sr.staff_id = $2 AND sr.role_id = slot.role_id)`},
	// A certification counts until its expiry day begins at the venue: it
	// must be unexpired now and through the shift's end.
	{"cert", `(r.cert_id IS NULL OR EXISTS (
		SELECT 1 FROM stf_cert_closure cl JOIN stf_staff_certs sc ON sc.cert_id = cl.cert_id AND sc.staff_id = $2
		WHERE cl.satisfies_id = r.cert_id
		  AND (sc.expires_on IS NULL OR ((sc.expires_on::timestamp AT TIME ZONE slot.timezone) > $4
		                              AND (sc.expires_on::timestamp AT TIME ZONE slot.timezone) >= upper(slot.during)))))`},
	// Overlaps are left to the exclusion constraint; this is the gap around.
	{"rest", `(st.rest_rule <> 'hard' OR NOT EXISTS (
		SELECT 1 FROM stf_assignments a WHERE a.staff_id = $2 AND a.status IN ('requested', 'assigned', 'confirmed')
		  AND a.during && tstzrange(lower(slot.during) - make_interval(mins => st.min_rest_minutes),
		                            upper(slot.during) + make_interval(mins => st.min_rest_minutes), '[)')
		  AND NOT a.during && slot.during))`},
	{"week", `(st.week_rule <> 'hard' OR (` + weekSeconds + `) + extract(epoch FROM upper(slot.during) - lower(slot.during)) <= st.max_week_minutes * 60)`},
}

// weekSeconds sums the person's other active shifts starting in the
// shift's week (Monday to Monday at its venue).
const weekSeconds = `SELECT coalesce(sum(extract(epoch FROM upper(a.during) - lower(a.during))), 0) FROM stf_assignments a
	WHERE a.staff_id = $2 AND a.status IN ('requested', 'assigned', 'confirmed') AND NOT a.during && slot.during
	  AND lower(a.during) >= (date_trunc('week', lower(slot.during) AT TIME ZONE slot.timezone) AT TIME ZONE slot.timezone)
	  AND lower(a.during) < ((date_trunc('week', lower(slot.during) AT TIME ZONE slot.timezone) + interval '7 days') AT TIME ZONE slot.timezone)`

func eligibilityWhere() string {
	parts := make([]string, len(eligibility))
	for i, e := range eligibility {
		parts[i] = e.sql
	}
	return strings.Join(parts, "\n  AND ")
}

// takePlace: the shift's counter moves by one only while a place is free;
// the statement that moves it inserts the assignment, and a refused insert
// (rules, or the exclusion constraint through ON CONFLICT DO NOTHING, so
// losers never deadlock or raise) rolls the counter back with the
// transaction. A request (approve policy) holds no place yet: it reads the
// shift without moving the counter.
var (
	placeSQL = `WITH slot AS (
    UPDATE stf_shifts SET filled = filled + 1, updated_at = now()
    WHERE id = $1 AND status = 'open' AND filled < places
    RETURNING id, role_id, during, timezone
)` + placeRest
	requestSQL = `WITH slot AS (
    SELECT id, role_id, during, timezone FROM stf_shifts WHERE id = $1 AND status = 'open' AND filled < places
)` + placeRest
	// The warn rules are read in the same statement (one round trip): a
	// placement's warnings are written with its row. The new row is not
	// visible to the statement's own reads, so only the person's other
	// shifts count.
	placeRest = `, ok AS (
    SELECT slot.id, slot.during,
           array_remove(ARRAY[
               CASE WHEN st.rest_rule <> 'warn' THEN NULL WHEN EXISTS (
                   SELECT 1 FROM stf_assignments a WHERE a.staff_id = $2 AND a.status IN ('requested', 'assigned', 'confirmed')
                     AND a.during && tstzrange(lower(slot.during) - make_interval(mins => st.min_rest_minutes),
                                               upper(slot.during) + make_interval(mins => st.min_rest_minutes), '[)'))
                    THEN format('less than %s minutes of rest before or after another shift', st.min_rest_minutes) END,
               CASE WHEN st.week_rule <> 'warn' THEN NULL WHEN (` + weekSeconds + `) + extract(epoch FROM upper(slot.during) - lower(slot.during)) > st.max_week_minutes * 60
                    THEN format('more than %s hours of work in the week', st.max_week_minutes / 60) END
           ], NULL) AS warnings
    FROM slot JOIN stf_roles r ON r.id = slot.role_id CROSS JOIN stf_settings st
    WHERE ` + eligibilityWhere() + `
), ins AS (
    INSERT INTO stf_assignments (id, shift_id, staff_id, during, status, by_manager, assigned_at, warnings)
    SELECT $3, ok.id, $2, ok.during, $5, $6, $4, ok.warnings FROM ok
    ON CONFLICT DO NOTHING
    RETURNING id, warnings
)
SELECT (SELECT count(*) FROM slot), (SELECT count(*) FROM ok), (SELECT count(*) FROM ins), coalesce((SELECT warnings FROM ins), '{}'),
       coalesce(sh.status, 'cancelled'), coalesce(sh.filled, 0), coalesce(sh.places, 0)
FROM (VALUES (1)) one LEFT JOIN stf_shifts sh ON sh.id = $1`
	diagnoseSQL = func() string {
		cols := make([]string, len(eligibility))
		for i, e := range eligibility {
			cols[i] = e.sql
		}
		return `SELECT ` + strings.Join(cols, ", ") + `, coalesce(c.name, '')
FROM stf_shifts slot JOIN stf_roles r ON r.id = slot.role_id LEFT JOIN stf_certs c ON c.id = r.cert_id CROSS JOIN stf_settings st
WHERE slot.id = $1 AND $3::uuid IS NOT NULL AND $4::timestamptz IS NOT NULL`
	}()
)

// placeResult is what the conditional insert answers: the place taken (0
// or 1), the rules passed, the row inserted, its warnings, and the shift's
// status and counter as the statement began (why no place was free).
type placeResult struct {
	took, ok, placed int
	warnings         []string
	status           string
	filled, places   int
}

// runPlace runs the conditional insert (placeSQL or requestSQL).
func runPlace(tx *tenants.Pgx, q string, shiftID, staffID, id uuid.UUID, now time.Time, status string, byManager bool) (placeResult, error) {
	var r placeResult
	err := tx.QueryRow(q, shiftID, staffID, id, now, status, byManager).
		Scan(&r.took, &r.ok, &r.placed, &r.warnings, &r.status, &r.filled, &r.places)
	return r, err
}

// errNotPlaced rolls back PlaceDirect's transaction when nobody was placed.
var errNotPlaced = errors.New("staffing: not placed")

// PlaceDirect is the sign-up's conditional insert without HTTP, sessions or
// answers: the person's row lock, then the statement every assignment runs;
// a refusal rolls the transaction back. The sign-up storm bench runs it as
// its baseline; it reports whether the person was placed.
func (s *Service) PlaceDirect(ctx context.Context, t tenants.Tenant, shiftID, staffID uuid.UUID) (bool, error) {
	err := s.app.PgxTx(ctx, t, tenants.TxOptions{Retry: true}, func(tx *tenants.Pgx) error {
		if _, err := tx.Exec(`SELECT 1 FROM stf_staff WHERE id = $1 FOR UPDATE`, staffID); err != nil {
			return err
		}
		r, err := runPlace(tx, placeSQL, shiftID, staffID, uuid.Must(uuid.NewV7()), s.app.Now().UTC(), StatusAssigned, false)
		if err == nil && r.placed == 0 {
			return errNotPlaced
		}
		return err
	})
	if errors.Is(err, errNotPlaced) {
		return false, nil
	}
	return err == nil, err
}

// place puts a person on a shift: a manager's assignment, or a sign-up.
func (s *Service) place(ctx context.Context, t tenants.Tenant, p placement) (Assignment, error) {
	now := s.app.Now().UTC()
	id := uuid.Must(uuid.NewV7())
	var out Assignment
	var ns []notice
	var mails []uuid.UUID
	err := s.app.PgxTx(ctx, t, tenants.TxOptions{Retry: true}, func(tx *tenants.Pgx) error {
		ns, mails = nil, nil
		// The shift and the person are read in one statement, which also
		// takes the person's row lock: every change to a person takes it,
		// so two sign-ups of one person have their rest and weekly hours
		// checked one after the other (the placement below reads after it).
		who, by := p.staffID, "id"
		if p.userID != uuid.Nil {
			who, by = p.userID, "user_id" // a sign-up finds the person by who is signed in, in this transaction
		}
		var venue uuid.UUID
		var signup, roleName, day, tz string
		var published bool
		var start, end time.Time
		var staffID *uuid.UUID
		var active *bool
		var staffName *string
		err := tx.QueryRow(`SELECT s.venue_id, r.signup, r.name, to_char(s.day, 'YYYY-MM-DD'), lower(s.during), upper(s.during),
				EXISTS (SELECT 1 FROM stf_publications p WHERE p.venue_id = s.venue_id AND p.day = s.day), s.timezone,
				who.id, who.active, who.name
			FROM stf_shifts s JOIN stf_roles r ON r.id = s.role_id
			LEFT JOIN LATERAL (SELECT id, active, name FROM stf_staff WHERE `+by+` = $2 FOR UPDATE) who ON true
			WHERE s.id = $1`, p.shiftID, who).
			Scan(&venue, &signup, &roleName, &day, &start, &end, &published, &tz, &staffID, &active, &staffName)
		if isNoRows(err) || (err == nil && p.venueID != uuid.Nil && venue != p.venueID) || (err == nil && p.self && !published) {
			return app.NotFound("shift") // a draft day is not there for staff
		}
		if err != nil {
			return err
		}
		as := StatusAssigned
		if p.self {
			switch signup {
			case SignupClosed:
				return app.Forbidden("signup_closed", "shifts of role "+roleName+" are assigned by managers")
			case SignupApprove:
				as = StatusRequested
			}
		}
		if staffID == nil && p.userID != uuid.Nil {
			return app.NotFound("staff member")
		}
		if staffID == nil {
			return app.InvalidField("unknown_staff", "staff_id", "no staff member %s in this chain", p.staffID)
		}
		p.staffID = *staffID
		if !*active {
			return app.Conflict("not_qualified", "the staff member is inactive")
		}
		q := placeSQL
		if as == StatusRequested {
			q = requestSQL
		}
		r, err := runPlace(tx, q, p.shiftID, p.staffID, id, now, as, !p.self)
		if err != nil {
			return err
		}
		if r.placed == 0 {
			return s.refusal(tx, p, id, now, r)
		}
		warnings := app.NonNil(r.warnings)
		out = Assignment{ID: id, ShiftID: p.shiftID, StaffID: p.staffID, StaffName: *staffName, Status: as, ByManager: !p.self, Warnings: warnings, AssignedAt: now}
		if published && !p.self {
			n := notice{StaffID: p.staffID, Kind: "assigned", ShiftID: p.shiftID, AssignmentID: id, StartsAt: start.UTC(), EndsAt: end.UTC(), Role: roleName, Day: day, Timezone: tz}
			ns = append(ns, n)
			mails, err = s.notifyPgx(tx, n)
			return err
		}
		return nil
	})
	if err == nil {
		s.tell(ctx, t, ns, mails)
	}
	return out, err
}

// refusal says why the conditional write placed nobody, reading in the
// same transaction (a new statement sees what committed meanwhile). The
// caller returns it, which rolls back the counter the statement moved.
func (s *Service) refusal(tx *tenants.Pgx, p placement, id uuid.UUID, now time.Time, r placeResult) error {
	if r.took == 0 {
		st, filled, places := r.status, r.filled, r.places
		if st == "open" && filled < places {
			// The statement's own read predates a change that closed the
			// shift while it waited: read it again.
			if err := tx.QueryRow(`SELECT status, filled, places FROM stf_shifts WHERE id = $1`, p.shiftID).Scan(&st, &filled, &places); err != nil {
				return err
			}
		}
		if st == "cancelled" {
			return app.Conflict("shift_cancelled", "the shift is cancelled")
		}
		return app.Conflict("shift_full", "all %d places of the shift are taken", places).With("places", places)
	}
	if r.ok == 0 {
		var role, cert, rest, week bool
		var certName string
		if err := tx.QueryRow(diagnoseSQL, p.shiftID, p.staffID, id, now).Scan(&role, &cert, &rest, &week, &certName); err != nil {
			return err
		}
		switch {
		case !role:
			return app.Conflict("not_qualified", "the staff member does not work this shift's role")
		case !cert:
			return app.Conflict("certification_required", "the role needs %s, unexpired now and through the shift's end", certName)
		case !rest:
			return app.Conflict("rest_too_short", "the chain's minimum rest between shifts would be broken")
		case !week:
			return app.Conflict("week_hours_exceeded", "the chain's maximum hours in a week would be passed")
		}
		return app.Conflict("conflict", "the assignment was refused")
	}
	// The exclusion constraint refused the row: the person is on an
	// overlapping shift (committed: ON CONFLICT waited for it).
	var other uuid.UUID
	var from, to time.Time
	err := tx.QueryRow(`SELECT a.shift_id, lower(a.during), upper(a.during) FROM stf_assignments a
		WHERE a.staff_id = $1 AND a.status IN ('requested', 'assigned', 'confirmed')
		  AND a.during && (SELECT during FROM stf_shifts WHERE id = $2) LIMIT 1`, p.staffID, p.shiftID).Scan(&other, &from, &to)
	if isNoRows(err) {
		return app.Conflict("shift_overlap", "the staff member is on an overlapping shift")
	}
	if err != nil {
		return err
	}
	if other == p.shiftID {
		return app.Conflict("already_assigned", "the staff member is on this shift already")
	}
	return app.Conflict("shift_overlap", "the staff member is on an overlapping shift from %s to %s", from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339)).
		With("shift_id", other)
}

// Assign puts a staff member on a shift at venueID (a manager's act: the
// role's sign-up policy does not apply, every other rule does).
func (s *Service) Assign(ctx context.Context, t tenants.Tenant, venueID, shiftID, staffID uuid.UUID) (Assignment, error) {
	return s.place(ctx, t, placement{shiftID: shiftID, staffID: staffID, venueID: venueID})
}

// SignUp puts the signed-in staff member on a published shift, by the
// role's policy: instantly (open) or as a request (approve).
func (s *Service) SignUp(ctx context.Context, t tenants.Tenant, staffID, shiftID uuid.UUID) (Assignment, error) {
	return s.place(ctx, t, placement{shiftID: shiftID, staffID: staffID, self: true})
}

// SignUpAsUser is SignUp for the staff record of a signed-in user, found
// inside the sign-up's own transaction (one round of the database fewer on
// the storm's path).
func (s *Service) SignUpAsUser(ctx context.Context, t tenants.Tenant, userID, shiftID uuid.UUID) (Assignment, error) {
	return s.place(ctx, t, placement{shiftID: shiftID, userID: userID, self: true})
}

// lockedAssignment is an assignment read for a change, with its shift
// locked first (the lock order of this file).
type lockedAssignment struct {
	Assignment
	Shift Shift
}

func lockAssignment(tx *gorm.DB, venueID, id uuid.UUID) (lockedAssignment, error) {
	var shiftIDs []uuid.UUID
	if err := tx.Raw(`SELECT shift_id FROM stf_assignments WHERE id = ?`, id).Scan(&shiftIDs).Error; err != nil {
		return lockedAssignment{}, err
	}
	if len(shiftIDs) == 0 {
		return lockedAssignment{}, app.NotFound("assignment")
	}
	sh, err := lockShift(tx, venueID, shiftIDs[0])
	if err != nil {
		var ae *app.Error
		if errors.As(err, &ae) && ae.Kind == app.KindNotFound {
			return lockedAssignment{}, app.NotFound("assignment")
		}
		return lockedAssignment{}, err
	}
	var rows []assignmentRow
	if err := tx.Raw(`SELECT a.id, a.shift_id, a.staff_id, st.name AS staff_name, a.status, a.by_manager,
			array_to_string(a.warnings, '|') AS warning_list, a.assigned_at
		FROM stf_assignments a JOIN stf_staff st ON st.id = a.staff_id WHERE a.id = ? FOR UPDATE OF a`, id).Scan(&rows).Error; err != nil {
		return lockedAssignment{}, err
	}
	return lockedAssignment{Assignment: rows[0].assignment(), Shift: sh}, nil
}

// setStatus moves an assignment to a new status, moving the shift's
// counter with it when the place is taken or given back.
func setStatus(tx *gorm.DB, la lockedAssignment, to string) (Assignment, error) {
	holds := func(s string) bool { return s == StatusAssigned || s == StatusConfirmed }
	delta := 0
	switch {
	case holds(to) && !holds(la.Status):
		delta = 1
	case !holds(to) && holds(la.Status):
		delta = -1
	}
	if delta != 0 {
		// The shift row is locked: the counter check holds until commit.
		res := tx.Exec(`UPDATE stf_shifts SET filled = filled + ?, updated_at = now() WHERE id = ? AND filled + ? BETWEEN 0 AND places`, delta, la.ShiftID, delta)
		if res.Error != nil {
			return Assignment{}, res.Error
		}
		if res.RowsAffected == 0 {
			return Assignment{}, app.Conflict("shift_full", "all %d places of the shift are taken", la.Shift.Places)
		}
	}
	if err := tx.Exec(`UPDATE stf_assignments SET status = ?, updated_at = now() WHERE id = ?`, to, la.ID).Error; err != nil {
		return Assignment{}, err
	}
	a := la.Assignment
	a.Status = to
	return a, nil
}

// Approve turns a sign-up request into an assignment, if a place is free.
func (s *Service) Approve(ctx context.Context, t tenants.Tenant, venueID, id uuid.UUID) (Assignment, error) {
	return s.managerChange(ctx, t, venueID, id, StatusAssigned, "approved", []string{StatusRequested})
}

// Unassign takes a person off a shift (a manager's act).
func (s *Service) Unassign(ctx context.Context, t tenants.Tenant, venueID, id uuid.UUID) (Assignment, error) {
	return s.managerChange(ctx, t, venueID, id, StatusCancelled, "removed", []string{StatusRequested, StatusAssigned, StatusConfirmed})
}

func (s *Service) managerChange(ctx context.Context, t tenants.Tenant, venueID, id uuid.UUID, to, kind string, from []string) (Assignment, error) {
	var out Assignment
	var ns []notice
	var mails []uuid.UUID
	err := s.app.TxWith(ctx, t, tenants.TxOptions{Retry: true}, func(tx *gorm.DB) error {
		ns, mails = nil, nil
		la, err := lockAssignment(tx, venueID, id)
		if err != nil {
			return err
		}
		if !contains(from, la.Status) {
			return app.Conflict("invalid_transition", "the assignment is %s", la.Status).With("assignment_status", la.Status)
		}
		if out, err = setStatus(tx, la, to); err != nil {
			return err
		}
		if la.Shift.Published {
			ns = []notice{{StaffID: la.StaffID, Kind: kind, ShiftID: la.ShiftID, AssignmentID: la.ID, StartsAt: la.Shift.StartsAt,
				EndsAt: la.Shift.EndsAt, Role: la.Shift.RoleName, Day: la.Shift.Day, Timezone: la.Shift.Timezone}}
			mails, err = s.notify(tx, ns)
			return err
		}
		return nil
	})
	if err == nil {
		s.tell(ctx, t, ns, mails)
	}
	return out, err
}

// Answer is a staff member's confirm or decline of their own assignment on
// a published shift. Declining gives the place back.
func (s *Service) Answer(ctx context.Context, t tenants.Tenant, staffID, id uuid.UUID, confirm bool) (Assignment, error) {
	var out Assignment
	err := s.app.TxWith(ctx, t, tenants.TxOptions{Retry: true}, func(tx *gorm.DB) error {
		la, err := lockAssignment(tx, uuid.Nil, id)
		if err != nil {
			return err
		}
		if la.StaffID != staffID || !la.Shift.Published {
			return app.NotFound("assignment")
		}
		to, from := StatusDeclined, []string{StatusRequested, StatusAssigned, StatusConfirmed}
		if confirm {
			to, from = StatusConfirmed, []string{StatusAssigned, StatusConfirmed}
		}
		if !contains(from, la.Status) {
			return app.Conflict("invalid_transition", "the assignment is %s", la.Status).With("assignment_status", la.Status)
		}
		out, err = setStatus(tx, la, to)
		return err
	})
	return out, err
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// Publication is a venue's published day.
type Publication struct {
	VenueID     uuid.UUID `json:"venue_id"`
	Day         string    `json:"day"`
	PublishedAt time.Time `json:"published_at"`
	Shifts      int       `json:"shifts"`
	Notified    int       `json:"notified"`
}

// Publish publishes a venue's day: its shifts become visible to staff, and
// everyone on them is told. Publishing twice changes nothing.
func (s *Service) Publish(ctx context.Context, t tenants.Tenant, venueID uuid.UUID, day string, by *uuid.UUID) (Publication, error) {
	if _, err := parseDate("day", day); err != nil {
		return Publication{}, err
	}
	out := Publication{VenueID: venueID, Day: day}
	var ns []notice
	var mails []uuid.UUID
	err := s.app.Tx(ctx, t, func(tx *gorm.DB) error {
		ns, mails = nil, nil
		res := tx.Exec(`INSERT INTO stf_publications (venue_id, day, published_at, published_by) VALUES (?, ?::date, ?, ?) ON CONFLICT DO NOTHING`,
			venueID, day, s.app.Now().UTC(), by)
		if res.Error != nil {
			return res.Error
		}
		if err := tx.Raw(`SELECT published_at FROM stf_publications WHERE venue_id = ? AND day = ?::date`, venueID, day).Row().Scan(&out.PublishedAt); err != nil {
			return err
		}
		out.PublishedAt = out.PublishedAt.UTC()
		if err := tx.Raw(`SELECT count(*) FROM stf_shifts WHERE venue_id = ? AND day = ?::date AND status = 'open'`, venueID, day).Row().Scan(&out.Shifts); err != nil {
			return err
		}
		if res.RowsAffected == 0 {
			return nil // published before: its people were told then
		}
		var rows []struct {
			StaffID, ShiftID, ID uuid.UUID
			StartsAt, EndsAt     time.Time
			Role, Timezone       string
		}
		if err := tx.Raw(`SELECT a.staff_id, a.shift_id, a.id, lower(s.during) AS starts_at, upper(s.during) AS ends_at, r.name AS role, s.timezone
			FROM stf_assignments a JOIN stf_shifts s ON s.id = a.shift_id JOIN stf_roles r ON r.id = s.role_id
			WHERE s.venue_id = ? AND s.day = ?::date AND s.status = 'open' AND a.status IN ('requested', 'assigned', 'confirmed')`, venueID, day).Scan(&rows).Error; err != nil {
			return err
		}
		for _, r := range rows {
			ns = append(ns, notice{StaffID: r.StaffID, Kind: "published", ShiftID: r.ShiftID, AssignmentID: r.ID, StartsAt: r.StartsAt.UTC(), EndsAt: r.EndsAt.UTC(), Role: r.Role, Day: day, Timezone: r.Timezone})
		}
		out.Notified = len(ns)
		var err error
		mails, err = s.notify(tx, ns)
		return err
	})
	if err == nil {
		s.tell(ctx, t, ns, mails)
	}
	return out, err
}
