package staffing

import (
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"marquee/app"
)

// Certification is a qualification staff hold (first aid, SIA licence,
// crowd management). Includes lists the certifications holding this one
// also satisfies: a senior first aider includes first aider.
type Certification struct {
	ID        uuid.UUID   `json:"id"`
	Key       string      `json:"key"`
	Name      string      `json:"name"`
	Includes  []uuid.UUID `json:"includes" gorm:"-"`
	CreatedAt time.Time   `json:"created_at"`
}

// Signup policies of a role: how staff get on its shifts by themselves.
const (
	SignupOpen    = "open"    // instant, while places last
	SignupApprove = "approve" // a request a manager approves
	SignupClosed  = "closed"  // managers assign
)

// Role is a job on a shift (security, bar, crowd manager), with its
// self sign-up policy and the certification it needs, if any.
type Role struct {
	ID        uuid.UUID  `json:"id"`
	Key       string     `json:"key"`
	Name      string     `json:"name"`
	Signup    string     `json:"signup"`
	CertID    *uuid.UUID `json:"certification_id,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
}

// HeldCert is a certification a staff member holds, and until when.
type HeldCert struct {
	CertID    uuid.UUID `json:"certification_id"`
	Key       string    `json:"key"`
	Name      string    `json:"name"`
	ExpiresOn *string   `json:"expires_on,omitempty"` // YYYY-MM-DD; absent: does not expire
}

// Staff is a member of the chain's staff.
type Staff struct {
	ID         uuid.UUID   `json:"id"`
	UserID     *uuid.UUID  `json:"user_id,omitempty"`
	Name       string      `json:"name"`
	Email      string      `json:"email"`
	Phone      string      `json:"phone"`
	HomeVenues []uuid.UUID `json:"home_venues" gorm:"-"`
	Active     bool        `json:"active"`
	Roles      []uuid.UUID `json:"roles" gorm:"-"`
	Certs      []HeldCert  `json:"certifications" gorm:"-"`
	CreatedAt  time.Time   `json:"created_at"`
	UpdatedAt  time.Time   `json:"updated_at"`
}

// Expiring is a certification that runs out soon.
type Expiring struct {
	StaffID   uuid.UUID `json:"staff_id"`
	StaffName string    `json:"staff_name"`
	CertID    uuid.UUID `json:"certification_id"`
	CertName  string    `json:"certification_name"`
	ExpiresOn string    `json:"expires_on"`
	DaysLeft  int       `json:"days_left"`
}

// Rule modes of the chain's settings.
const (
	RuleOff  = "off"
	RuleWarn = "warn"
	RuleHard = "hard"
)

// Band is one step of the security template: from this venue capacity on,
// Count security staff.
type Band struct {
	FromCapacity int `json:"from_capacity"`
	Count        int `json:"count"`
}

// Settings are the chain's staffing rules and templates.
type Settings struct {
	MinRestMinutes int        `json:"min_rest_minutes"`
	RestRule       string     `json:"rest_rule"`
	MaxWeekMinutes int        `json:"max_week_minutes"`
	WeekRule       string     `json:"week_rule"`
	CrowdRoleID    *uuid.UUID `json:"crowd_role_id"`
	CrowdMinimum   int        `json:"crowd_minimum"`
	CrowdPer       int        `json:"crowd_per"`
	SecurityRoleID *uuid.UUID `json:"security_role_id"`
	SecurityBands  []Band     `json:"security_bands" gorm:"-"`
}

// Assignment statuses. Requested, assigned and confirmed are active (they
// hold the person's time); assigned and confirmed also hold a place.
const (
	StatusRequested = "requested"
	StatusAssigned  = "assigned"
	StatusConfirmed = "confirmed"
	StatusDeclined  = "declined"
	StatusCancelled = "cancelled"
)

// Shift is a block of work of one role at an event's venue, [start, end).
type Shift struct {
	ID        uuid.UUID `json:"id"`
	EventID   uuid.UUID `json:"event_id"`
	VenueID   uuid.UUID `json:"venue_id"`
	Timezone  string    `json:"timezone"`
	Day       string    `json:"day"` // local date of the start at the venue
	RoleID    uuid.UUID `json:"role_id"`
	RoleName  string    `json:"role_name"`
	Zone      string    `json:"zone"`
	StartsAt  time.Time `json:"starts_at"`
	EndsAt    time.Time `json:"ends_at"`
	Places    int       `json:"places"`
	Filled    int       `json:"filled"`
	Status    string    `json:"status"`
	Published bool      `json:"published"`
	Version   int       `json:"version"`
}

// Assignment is one person on one shift.
type Assignment struct {
	ID         uuid.UUID `json:"id"`
	ShiftID    uuid.UUID `json:"shift_id"`
	StaffID    uuid.UUID `json:"staff_id"`
	StaffName  string    `json:"staff_name"`
	Status     string    `json:"status"`
	ByManager  bool      `json:"by_manager"`
	Warnings   []string  `json:"warnings" gorm:"-"`
	AssignedAt time.Time `json:"assigned_at"`
}

// ShiftDetail is a shift with its people.
type ShiftDetail struct {
	Shift
	Assignments []Assignment `json:"assignments"`
}

// MyShift is a published shift of the signed-in staff member.
type MyShift struct {
	AssignmentID uuid.UUID `json:"assignment_id"`
	Status       string    `json:"status"`
	Shift        Shift     `json:"shift"`
	EventTitle   string    `json:"event_title"`
	VenueName    string    `json:"venue_name"`
}

// textField checks a free-text field: trimmed, bounded, no control characters.
func textField(field, s string, max int, required bool) (string, error) {
	s = strings.TrimSpace(s)
	if required && s == "" {
		return "", app.InvalidField("invalid_request", field, "%s is required", field)
	}
	if utf8.RuneCountInString(s) > max {
		return "", app.InvalidField("invalid_request", field, "%s is at most %d characters", field, max)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return "", app.InvalidField("invalid_request", field, "%s holds a control character", field)
		}
	}
	return s, nil
}

var keyPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

func keyField(field, s string) (string, error) {
	if !keyPattern.MatchString(s) {
		return "", app.InvalidField("invalid_request", field, "%s is 1 to 63 of a-z, 0-9, _ and -, starting with a letter or digit", field)
	}
	return s, nil
}

func parseDate(field, s string) (time.Time, error) {
	d, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return time.Time{}, app.InvalidField("invalid_request", field, "%s must be a date (YYYY-MM-DD)", field)
	}
	return d, nil
}

func parseUUID(field, s string) (uuid.UUID, error) {
	id, err := uuid.Parse(s)
	if err != nil {
		return uuid.Nil, app.InvalidField("invalid_request", field, "%s must be a UUID", field)
	}
	return id, nil
}

func parseUUIDs(field string, ss []string) ([]uuid.UUID, error) {
	out := make([]uuid.UUID, 0, len(ss))
	for _, s := range ss {
		id, err := parseUUID(field, s)
		if err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, nil
}
