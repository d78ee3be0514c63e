package staffing

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/tenants"
)

// This file holds shift swaps. A person on a published shift to come asks
// a colleague (or any colleague who works the role) to take their place;
// one colleague accepts (a conditional UPDATE from asked to accepted: two
// colleagues accepting at once get one winner); a manager approves, and the
// place moves in one transaction that keeps every guarantee of an
// assignment: the giver's assignment is cancelled and the taker placed by
// the same conditional insert as any assignment (role, certification
// unexpired through the shift's end, hard rest and weekly-hours rules, and
// the exclusion constraint against overlapping shifts). A refusal there
// rolls the whole swap back: the giver keeps the shift.

// Swap statuses.
const (
	SwapAsked     = "asked"
	SwapAccepted  = "accepted"
	SwapApproved  = "approved"
	SwapRefused   = "refused"
	SwapWithdrawn = "withdrawn"
)

// Swap is a request that a colleague take a person's place on a shift.
type Swap struct {
	ID              uuid.UUID  `json:"id"`
	AssignmentID    uuid.UUID  `json:"assignment_id"`
	ShiftID         uuid.UUID  `json:"shift_id"`
	FromStaff       uuid.UUID  `json:"from_staff"`
	FromName        string     `json:"from_name"`
	ToStaff         *uuid.UUID `json:"to_staff,omitempty"` // absent: any colleague who works the role
	ToName          *string    `json:"to_name,omitempty"`
	Taker           *uuid.UUID `json:"taker,omitempty"`
	TakerName       *string    `json:"taker_name,omitempty"`
	Status          string     `json:"status"`
	NewAssignmentID *uuid.UUID `json:"new_assignment_id,omitempty"`
	RoleName        string     `json:"role_name"`
	VenueID         uuid.UUID  `json:"venue_id"`
	StartsAt        time.Time  `json:"starts_at"`
	EndsAt          time.Time  `json:"ends_at"`
	Timezone        string     `json:"timezone"`
	CreatedAt       time.Time  `json:"created_at"`
	AcceptedAt      *time.Time `json:"accepted_at,omitempty"`
	DecidedAt       *time.Time `json:"decided_at,omitempty"`
}

func (w *Swap) finish() {
	w.StartsAt, w.EndsAt, w.CreatedAt = w.StartsAt.UTC(), w.EndsAt.UTC(), w.CreatedAt.UTC()
	for _, p := range []**time.Time{&w.AcceptedAt, &w.DecidedAt} {
		if *p != nil {
			u := (*p).UTC()
			*p = &u
		}
	}
}

const swapSelect = `SELECT w.id, w.assignment_id, w.shift_id, w.from_staff, f.name AS from_name, w.to_staff, tos.name AS to_name,
	w.taker, tk.name AS taker_name, w.status, w.new_assignment_id, r.name AS role_name, s.venue_id,
	lower(s.during) AS starts_at, upper(s.during) AS ends_at, s.timezone, w.created_at, w.accepted_at, w.decided_at
FROM stf_swaps w JOIN stf_shifts s ON s.id = w.shift_id JOIN stf_roles r ON r.id = s.role_id JOIN stf_staff f ON f.id = w.from_staff
LEFT JOIN stf_staff tos ON tos.id = w.to_staff LEFT JOIN stf_staff tk ON tk.id = w.taker `

func readSwaps(tx *gorm.DB, where string, args ...any) ([]Swap, error) {
	var out []Swap
	err := tx.Raw(swapSelect+where, args...).Scan(&out).Error
	for i := range out {
		out[i].finish()
	}
	return app.NonNil(out), err
}

func readSwap(tx *gorm.DB, id uuid.UUID) (Swap, error) {
	ws, err := readSwaps(tx, `WHERE w.id = ?`, id)
	if err != nil {
		return Swap{}, err
	}
	if len(ws) == 0 {
		return Swap{}, app.NotFound("swap")
	}
	return ws[0], nil
}

// swapEligible is the SQL over a candidate colleague (st), a shift (s) and
// its role (r), with $1 the asker and $2 the server's clock: active, works
// the role, holds its certification unexpired now and through the shift's
// end, and holds no place on an overlapping shift. Approval checks every
// rule of an assignment again; this is what the colleague must meet to be
// asked by name.
const (
	swapRoleSQL = `st.active AND EXISTS (SELECT 1 FROM stf_staff_roles sr WHERE sr.staff_id = st.id AND sr.role_id = s.role_id)`
	swapCertSQL = `(r.cert_id IS NULL OR EXISTS (SELECT 1 FROM stf_cert_closure cl JOIN stf_staff_certs sc ON sc.cert_id = cl.cert_id AND sc.staff_id = st.id
		WHERE cl.satisfies_id = r.cert_id AND (sc.expires_on IS NULL OR ((sc.expires_on::timestamp AT TIME ZONE s.timezone) > $2
		                                                             AND (sc.expires_on::timestamp AT TIME ZONE s.timezone) >= upper(s.during)))))`
	swapFreeSQL = `NOT EXISTS (SELECT 1 FROM stf_assignments a WHERE a.staff_id = st.id AND a.status IN ('requested', 'assigned', 'confirmed') AND a.during && s.during)`
)

// Colleague is someone a person may ask by name to take a shift.
type Colleague struct {
	ID   uuid.UUID `json:"id"`
	Name string    `json:"name"`
}

// SwapCandidates lists, per shift, the colleagues of staffID who could be
// asked by name to take it, by name (at most 200 a shift).
func (s *Service) SwapCandidates(ctx context.Context, t tenants.Tenant, staffID uuid.UUID, shiftIDs []uuid.UUID) (map[uuid.UUID][]Colleague, error) {
	out := map[uuid.UUID][]Colleague{}
	if len(shiftIDs) == 0 {
		return out, nil
	}
	var rows []struct {
		ShiftID uuid.UUID
		ID      uuid.UUID
		Name    string
	}
	err := s.app.PgxTx(ctx, t, tenants.TxOptions{ReadOnly: true}, func(tx *tenants.Pgx) error {
		rs, err := tx.Query(`SELECT s.id, c.id, c.name FROM stf_shifts s JOIN stf_roles r ON r.id = s.role_id
			CROSS JOIN LATERAL (SELECT st.id, st.name FROM stf_staff st
				WHERE st.id <> $1 AND `+swapRoleSQL+` AND `+swapCertSQL+` AND `+swapFreeSQL+`
				ORDER BY st.name, st.id LIMIT 200) c
			WHERE s.id = ANY($3::uuid[]) ORDER BY s.id, c.name, c.id`, staffID, s.app.Now().UTC(), shiftIDs)
		if err != nil {
			return err
		}
		defer rs.Close()
		for rs.Next() {
			var r struct {
				ShiftID uuid.UUID
				ID      uuid.UUID
				Name    string
			}
			if err := rs.Scan(&r.ShiftID, &r.ID, &r.Name); err != nil {
				return err
			}
			rows = append(rows, r)
		}
		return rs.Err()
	})
	for _, r := range rows {
		out[r.ShiftID] = append(out[r.ShiftID], Colleague{ID: r.ID, Name: r.Name})
	}
	return out, err
}

// AskSwap offers the caller's place on a shift to a colleague (nil: to any
// colleague who works the role). A colleague asked by name must be able to
// take it now (role, certification, no overlapping shift); they are told by
// mail through the core's outbox and on their open page.
func (s *Service) AskSwap(ctx context.Context, t tenants.Tenant, staffID, assignmentID uuid.UUID, colleague *uuid.UUID) (Swap, error) {
	if colleague != nil && *colleague == staffID {
		return Swap{}, app.InvalidField("unknown_staff", "colleague_id", "ask a colleague, not yourself")
	}
	now := s.app.Now().UTC()
	var out Swap
	var ns []notice
	var mails []uuid.UUID
	err := s.app.TxWith(ctx, t, tenants.TxOptions{Retry: true}, func(tx *gorm.DB) error {
		ns, mails = nil, nil
		la, err := lockAssignment(tx, uuid.Nil, assignmentID)
		if err != nil {
			return err
		}
		if la.StaffID != staffID || !la.Shift.Published {
			return app.NotFound("assignment")
		}
		if (la.Status != StatusAssigned && la.Status != StatusConfirmed) || la.Shift.Status != "open" || !la.Shift.StartsAt.After(now) {
			return app.Conflict("swap_not_yours", "the assignment is %s; only a place held on a shift to come can be swapped", la.Status)
		}
		var email string
		if colleague != nil {
			var ok []struct {
				Role, Cert, Free bool
				Email            string
			}
			// A check, not a lock: approval places the colleague under every
			// rule of an assignment, with their row locked.
			if err := tx.Raw(`SELECT `+strings.ReplaceAll(swapRoleSQL+` AS role, `+swapCertSQL+` AS cert, `+swapFreeSQL+` AS free`, "$2", "@now")+`, st.email
				FROM stf_staff st CROSS JOIN stf_shifts s JOIN stf_roles r ON r.id = s.role_id
				WHERE st.id = @colleague AND s.id = @shift`,
				map[string]any{"now": now, "colleague": *colleague, "shift": la.ShiftID}).Scan(&ok).Error; err != nil {
				return err
			}
			switch {
			case len(ok) == 0:
				return app.InvalidField("unknown_staff", "colleague_id", "no staff member %s in this chain", *colleague)
			case !ok[0].Role:
				return app.Conflict("not_qualified", "the colleague does not work the shift's role, or is inactive")
			case !ok[0].Cert:
				return app.Conflict("certification_required", "the colleague does not hold the role's certification unexpired through the shift's end")
			case !ok[0].Free:
				return app.Conflict("shift_overlap", "the colleague is on an overlapping shift")
			}
			email = ok[0].Email
		}
		id := uuid.Must(uuid.NewV7())
		res := tx.Exec(`INSERT INTO stf_swaps (id, assignment_id, shift_id, from_staff, to_staff, status, created_at)
			VALUES (?, ?, ?, ?, ?, 'asked', ?) ON CONFLICT (assignment_id) WHERE status IN ('asked', 'accepted') DO NOTHING`,
			id, la.ID, la.ShiftID, staffID, colleague, now)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return app.Conflict("swap_pending", "this shift has a swap asked or accepted already")
		}
		if out, err = readSwap(tx, id); err != nil {
			return err
		}
		if colleague == nil {
			return nil
		}
		n := notice{StaffID: *colleague, Kind: "swap_asked", ShiftID: la.ShiftID, AssignmentID: la.ID, StartsAt: out.StartsAt, EndsAt: out.EndsAt,
			Role: out.RoleName, Day: la.Shift.Day, Timezone: out.Timezone}
		ns = append(ns, n)
		if email == "" {
			return nil // told on their page only
		}
		mid, fresh, err := s.app.Mail.Queue(tx, swapAskedMail(out, n, email))
		if fresh {
			mails = append(mails, mid)
		}
		return err
	})
	if err == nil {
		s.tell(ctx, t, ns, mails)
	}
	return out, err
}

// swapAskedMail tells a colleague asked by name. Its key is the swap's, so
// a retried transaction queues it once.
func swapAskedMail(w Swap, n notice, to string) app.MailMessage {
	loc, err := app.Timezone(n.Timezone)
	if err != nil {
		loc = time.UTC
	}
	from, until := n.StartsAt.In(loc), n.EndsAt.In(loc)
	body := fmt.Sprintf("%s asks you to take their shift.\n\nRole: %s\nWhen: %s, %s to %s (%s)\n\nOpen \"My shifts\" in the portal to take it; a manager then approves the swap.\n",
		w.FromName, n.Role, from.Format("Monday 2 January 2006"), from.Format("15:04"), until.Format("15:04"), loc.String())
	return app.MailMessage{Key: "swap:" + w.ID.String() + ":asked", Kind: MailKindPrefix + "swap_asked", Ref: w.ID.String(), To: to,
		Subject: w.FromName + " asks you to take a shift: " + n.Role + " on " + n.Day, Body: body}
}

// MySwaps lists the live swaps a staff member asked for and those they may
// take (asked of them, or of anyone who works the role), then the last
// decided ones they were part of.
func (s *Service) MySwaps(ctx context.Context, t tenants.Tenant, staffID uuid.UUID) ([]Swap, error) {
	var out []Swap
	err := s.app.TxWith(ctx, t, tenants.TxOptions{ReadOnly: true}, func(tx *gorm.DB) error {
		var err error
		out, err = readSwaps(tx, `WHERE (w.from_staff = ? OR w.taker = ?
			   OR (w.status = 'asked' AND (w.to_staff = ? OR (w.to_staff IS NULL
			       AND EXISTS (SELECT 1 FROM stf_staff_roles sr WHERE sr.staff_id = ? AND sr.role_id = s.role_id)))))
			AND upper(s.during) > ?
			ORDER BY lower(s.during), w.created_at LIMIT 100`, staffID, staffID, staffID, staffID, s.app.Now().UTC())
		return err
	})
	return out, err
}

// AcceptSwap is a colleague taking a swap. Of colleagues accepting at once,
// the first UPDATE wins; the others find it accepted.
func (s *Service) AcceptSwap(ctx context.Context, t tenants.Tenant, staffID, swapID uuid.UUID) (Swap, error) {
	now := s.app.Now().UTC()
	var out Swap
	err := s.app.TxWith(ctx, t, tenants.TxOptions{Retry: true}, func(tx *gorm.DB) error {
		w, err := readSwap(tx, swapID)
		if err != nil {
			return err
		}
		if w.FromStaff == staffID || (w.ToStaff != nil && *w.ToStaff != staffID) {
			return app.NotFound("swap")
		}
		// Qualified now (role, certification through the shift's end): a
		// quick refusal; approval checks every rule again.
		var role, cert bool
		if err := tx.Raw(`SELECT EXISTS (SELECT 1 FROM stf_staff_roles sr JOIN stf_staff st ON st.id = sr.staff_id
				WHERE sr.staff_id = ? AND sr.role_id = s.role_id AND st.active),
			(r.cert_id IS NULL OR EXISTS (SELECT 1 FROM stf_cert_closure cl JOIN stf_staff_certs sc ON sc.cert_id = cl.cert_id AND sc.staff_id = ?
				WHERE cl.satisfies_id = r.cert_id AND (sc.expires_on IS NULL OR (sc.expires_on::timestamp AT TIME ZONE s.timezone) >= upper(s.during))))
			FROM stf_shifts s JOIN stf_roles r ON r.id = s.role_id WHERE s.id = ?`, staffID, staffID, w.ShiftID).Row().Scan(&role, &cert); err != nil {
			return err
		}
		if !role {
			if w.ToStaff == nil {
				return app.NotFound("swap") // not offered to people outside the role
			}
			return app.Conflict("not_qualified", "you do not work the shift's role")
		}
		if !cert {
			return app.Conflict("certification_required", "the role needs a certification you do not hold unexpired through the shift's end")
		}
		res := tx.Exec(`UPDATE stf_swaps SET status = 'accepted', taker = ?, accepted_at = ? WHERE id = ? AND status = 'asked'`, staffID, now, swapID)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			var st string
			if err := tx.Raw(`SELECT status FROM stf_swaps WHERE id = ?`, swapID).Row().Scan(&st); err != nil {
				return err
			}
			if st == SwapAccepted || st == SwapApproved {
				return app.Conflict("swap_taken", "another colleague accepted the swap first")
			}
			return app.Conflict("swap_not_open", "the swap is %s", st).With("swap_status", st)
		}
		out, err = readSwap(tx, swapID)
		return err
	})
	return out, err
}

// WithdrawSwap is the asker taking back a swap nobody has taken yet. Once
// a colleague accepted, it is a manager's to approve or refuse: an accept
// and a withdrawal racing have one outcome (both are conditional UPDATEs
// from asked; the second finds the first's status).
func (s *Service) WithdrawSwap(ctx context.Context, t tenants.Tenant, staffID, swapID uuid.UUID) (Swap, error) {
	return s.closeSwap(ctx, t, swapID, uuid.Nil, staffID, SwapWithdrawn, nil)
}

// RefuseSwap is a manager turning a live swap (asked or accepted) down.
func (s *Service) RefuseSwap(ctx context.Context, t tenants.Tenant, venueID, swapID uuid.UUID, by *uuid.UUID) (Swap, error) {
	return s.closeSwap(ctx, t, swapID, venueID, uuid.Nil, SwapRefused, by)
}

func (s *Service) closeSwap(ctx context.Context, t tenants.Tenant, swapID, venueID, staffID uuid.UUID, to string, by *uuid.UUID) (Swap, error) {
	var out Swap
	err := s.app.Tx(ctx, t, func(tx *gorm.DB) error {
		w, err := readSwap(tx, swapID)
		if err != nil {
			return err
		}
		if (venueID != uuid.Nil && w.VenueID != venueID) || (staffID != uuid.Nil && w.FromStaff != staffID) {
			return app.NotFound("swap")
		}
		from := []string{SwapAsked, SwapAccepted}
		if to == SwapWithdrawn {
			from = from[:1]
		}
		res := tx.Exec(`UPDATE stf_swaps SET status = ?, decided_at = ?, decided_by = ? WHERE id = ? AND status IN ?`,
			to, s.app.Now().UTC(), by, swapID, from)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			// A new statement sees what committed meanwhile (a colleague's accept).
			var st string
			if err := tx.Raw(`SELECT status FROM stf_swaps WHERE id = ?`, swapID).Row().Scan(&st); err != nil {
				return err
			}
			if st == SwapAccepted {
				return app.Conflict("swap_not_open", "a colleague has taken the swap; a manager approves or refuses it now").With("swap_status", st)
			}
			return app.Conflict("swap_not_open", "the swap is %s", st).With("swap_status", st)
		}
		out, err = readSwap(tx, swapID)
		return err
	})
	return out, err
}

// VenueSwaps lists a venue's swaps of shifts to come, live ones first.
func (s *Service) VenueSwaps(ctx context.Context, t tenants.Tenant, venueID uuid.UUID) ([]Swap, error) {
	var out []Swap
	err := s.app.TxWith(ctx, t, tenants.TxOptions{ReadOnly: true}, func(tx *gorm.DB) error {
		var err error
		out, err = readSwaps(tx, `WHERE s.venue_id = ? AND upper(s.during) > ?
			ORDER BY (w.status IN ('asked', 'accepted')) DESC, lower(s.during), w.created_at LIMIT 500`, venueID, s.app.Now().UTC())
		return err
	})
	return out, err
}

// ApproveSwap moves the place of an accepted swap from the giver to the
// taker, in one transaction. Locks follow the file order of shifts.go:
// staff members (by id), then the shift, then the assignment.
func (s *Service) ApproveSwap(ctx context.Context, t tenants.Tenant, venueID, swapID uuid.UUID, by *uuid.UUID) (Swap, error) {
	now := s.app.Now().UTC()
	newID := uuid.Must(uuid.NewV7())
	var ns []notice
	var mails []uuid.UUID
	var out Swap
	err := s.app.PgxTx(ctx, t, tenants.TxOptions{Retry: true}, func(tx *tenants.Pgx) error {
		ns, mails = nil, nil
		var w struct {
			assignment, shift, from, venue uuid.UUID
			taker                          *uuid.UUID
			status                         string
		}
		err := tx.QueryRow(`SELECT w.assignment_id, w.shift_id, w.from_staff, w.taker, w.status, s.venue_id
			FROM stf_swaps w JOIN stf_shifts s ON s.id = w.shift_id WHERE w.id = $1`, swapID).
			Scan(&w.assignment, &w.shift, &w.from, &w.taker, &w.status, &w.venue)
		if isNoRows(err) || (err == nil && w.venue != venueID) {
			return app.NotFound("swap")
		}
		if err != nil {
			return err
		}
		if w.status != SwapAccepted || w.taker == nil {
			return app.Conflict("swap_not_open", "the swap is %s; only an accepted swap can be approved", w.status).With("swap_status", w.status)
		}
		a, b := w.from, *w.taker
		if b.String() < a.String() {
			a, b = b, a
		}
		if _, err := tx.Exec(`SELECT 1 FROM stf_staff WHERE id IN ($1, $2) ORDER BY id FOR UPDATE`, a, b); err != nil {
			return err
		}
		var shiftStatus, roleName, day, tz, asgStatus string
		var start, end time.Time
		if err := tx.QueryRow(`SELECT s.status, r.name, to_char(s.day, 'YYYY-MM-DD'), s.timezone, lower(s.during), upper(s.during)
			FROM stf_shifts s JOIN stf_roles r ON r.id = s.role_id WHERE s.id = $1 FOR UPDATE OF s`, w.shift).
			Scan(&shiftStatus, &roleName, &day, &tz, &start, &end); err != nil {
			return err
		}
		if err := tx.QueryRow(`SELECT status FROM stf_assignments WHERE id = $1 FOR UPDATE`, w.assignment).Scan(&asgStatus); err != nil {
			return err
		}
		// The swap is re-read under the locks: a concurrent approval or
		// refusal that committed first wins.
		if err := tx.QueryRow(`SELECT status FROM stf_swaps WHERE id = $1 FOR UPDATE`, swapID).Scan(&w.status); err != nil {
			return err
		}
		if w.status != SwapAccepted {
			return app.Conflict("swap_not_open", "the swap is %s", w.status).With("swap_status", w.status)
		}
		if shiftStatus != "open" || (asgStatus != StatusAssigned && asgStatus != StatusConfirmed) || !start.After(now) {
			return app.Conflict("swap_not_open", "the shift or its assignment changed (%s, %s): the swap cannot go through", shiftStatus, asgStatus)
		}
		// The giver's place is given back, then taken by the taker through
		// the conditional insert every assignment goes through.
		if _, err := tx.Exec(`UPDATE stf_assignments SET status = 'cancelled', updated_at = now() WHERE id = $1`, w.assignment); err != nil {
			return err
		}
		if _, err := tx.Exec(`UPDATE stf_shifts SET filled = filled - 1, updated_at = now() WHERE id = $1`, w.shift); err != nil {
			return err
		}
		// Its warnings stay on the new assignment; the swap's answer does not carry them.
		r, err := runPlace(tx, placeSQL, w.shift, *w.taker, newID, now, StatusAssigned, true)
		if err != nil {
			return err
		}
		if r.placed == 0 {
			return s.refusal(tx, placement{shiftID: w.shift, staffID: *w.taker}, newID, now, r)
		}
		if _, err := tx.Exec(`UPDATE stf_swaps SET status = 'approved', new_assignment_id = $2, decided_at = $3, decided_by = $4 WHERE id = $1`,
			swapID, newID, now, by); err != nil {
			return err
		}
		for _, n := range []notice{
			{StaffID: w.from, Kind: "removed", ShiftID: w.shift, AssignmentID: w.assignment, StartsAt: start.UTC(), EndsAt: end.UTC(), Role: roleName, Day: day, Timezone: tz},
			{StaffID: *w.taker, Kind: "assigned", ShiftID: w.shift, AssignmentID: newID, StartsAt: start.UTC(), EndsAt: end.UTC(), Role: roleName, Day: day, Timezone: tz},
		} {
			ns = append(ns, n)
			ids, err := s.notifyPgx(tx, n)
			if err != nil {
				return err
			}
			mails = append(mails, ids...)
		}
		return nil
	})
	if err != nil {
		return Swap{}, err
	}
	s.tell(ctx, t, ns, mails)
	err = s.app.TxWith(ctx, t, tenants.TxOptions{ReadOnly: true}, func(tx *gorm.DB) error {
		out, err = readSwap(tx, swapID)
		return err
	})
	return out, err
}
