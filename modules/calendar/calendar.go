// Package calendar schedules a chain's venues: venues and their stages,
// events with setup and teardown buffers, and tentative ranked holds.
//
// Conflicts are decided by PostgreSQL alone. Every event that is not
// cancelled has one row in the occupancy table, and three exclusion
// constraints refuse overlapping rows on one stage, and any overlap at a
// venue involving an exclusive-use event. Rows are inserted with
// ON CONFLICT DO NOTHING, so a losing request costs one cheap statement and
// never waits on a deadlock; an empty result means the slot is taken, and
// the events in the way are then read for the 409 answer.
package calendar

import (
	"fmt"
	"regexp"
	"strings"
	"time"
	_ "time/tzdata" // venue timezones must load on hosts without a zoneinfo database
	"unicode"

	"github.com/google/uuid"

	"marquee/app"
)

// Limits of what the calendar accepts.
const (
	MaxBufferMinutes = 24 * 60             // setup or teardown
	MaxEventDuration = 31 * 24 * time.Hour // starts_at to ends_at
	MaxCalendarRange = 92 * 24 * time.Hour // one calendar read
	MaxHoldLifetime  = 365 * 24 * time.Hour
	maxCapacity      = 1_000_000
)

// Earliest and latest instants an event may touch: outside them the input is
// a typo, not a booking.
var (
	minTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
)

// Venue is a place of the chain, with its own timezone.
type Venue struct {
	ID        uuid.UUID `gorm:"column:id" json:"id"`
	Name      string    `gorm:"column:name" json:"name"`
	Address   string    `gorm:"column:address" json:"address"`
	Timezone  string    `gorm:"column:timezone" json:"timezone"`
	Latitude  *float64  `gorm:"column:latitude" json:"latitude"`
	Longitude *float64  `gorm:"column:longitude" json:"longitude"`
	Capacity  int       `gorm:"column:capacity" json:"capacity"`
	CreatedAt time.Time `gorm:"column:created_at" json:"created_at"`
	UpdatedAt time.Time `gorm:"column:updated_at" json:"updated_at"`
}

// Location returns the venue's timezone (UTC if it somehow fails to load).
func (v Venue) Location() *time.Location {
	loc, err := LoadTimezone(v.Timezone)
	if err != nil {
		return time.UTC
	}
	return loc
}

// Stage is a room or stage of a venue.
type Stage struct {
	ID        uuid.UUID `gorm:"column:id" json:"id"`
	VenueID   uuid.UUID `gorm:"column:venue_id" json:"venue_id"`
	Name      string    `gorm:"column:name" json:"name"`
	Capacity  int       `gorm:"column:capacity" json:"capacity"`
	Kind      string    `gorm:"column:kind" json:"type"`
	CreatedAt time.Time `gorm:"column:created_at" json:"created_at"`
	UpdatedAt time.Time `gorm:"column:updated_at" json:"updated_at"`
}

// Status is where an event stands.
type Status string

// Event states.
const (
	StatusDraft     Status = "draft"
	StatusConfirmed Status = "confirmed"
	StatusOnSale    Status = "on_sale"
	StatusSoldOut   Status = "sold_out"
	StatusCompleted Status = "completed"
	StatusCancelled Status = "cancelled"
)

// transitions lists the states each state may move to. Cancelled and
// completed are final; cancelling frees the event's window.
var transitions = map[Status][]Status{
	StatusDraft:     {StatusConfirmed, StatusCancelled},
	StatusConfirmed: {StatusDraft, StatusOnSale, StatusCancelled, StatusCompleted},
	StatusOnSale:    {StatusConfirmed, StatusSoldOut, StatusCompleted, StatusCancelled},
	StatusSoldOut:   {StatusOnSale, StatusCompleted, StatusCancelled},
	StatusCompleted: nil,
	StatusCancelled: nil,
}

// ValidStatus reports whether s names a state.
func ValidStatus(s Status) bool {
	_, ok := transitions[s]
	return ok
}

// CanMove reports whether an event may go from one state to another.
func CanMove(from, to Status) bool {
	if from == to {
		return true
	}
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// Final reports whether no change is possible any more.
func (s Status) Final() bool { return len(transitions[s]) == 0 }

// Event is a booking of a stage, or of the whole venue when Exclusive.
type Event struct {
	ID              uuid.UUID  `gorm:"column:id"`
	VenueID         uuid.UUID  `gorm:"column:venue_id"`
	StageID         *uuid.UUID `gorm:"column:stage_id"`
	Exclusive       bool       `gorm:"column:exclusive"`
	Title           string     `gorm:"column:title"`
	Category        string     `gorm:"column:category"`
	Status          Status     `gorm:"column:status"`
	PromoterID      *uuid.UUID `gorm:"column:promoter_id"`
	StartsAt        time.Time  `gorm:"column:starts_at"`
	EndsAt          time.Time  `gorm:"column:ends_at"`
	SetupMinutes    int        `gorm:"column:setup_minutes"`
	TeardownMinutes int        `gorm:"column:teardown_minutes"`
	Version         int        `gorm:"column:version"`
	HoldID          *uuid.UUID `gorm:"column:hold_id"`
	CreatedAt       time.Time  `gorm:"column:created_at"`
	UpdatedAt       time.Time  `gorm:"column:updated_at"`
	// Promoter is the promoter as billed (a company or person, often not a
	// user of the chain); PromoterID links a staff account when there is one.
	Promoter string `gorm:"column:promoter"`
	SaleSchedule
}

// SaleSchedule is when an event's tickets may be held: from OnSaleAt for
// everyone (nil: as soon as the event is on sale), and before that inside
// one presale window for buyers who give its code. Each tier's own sale
// window still applies inside it (the schedule bounds them).
type SaleSchedule struct {
	OnSaleAt        *time.Time `gorm:"column:on_sale_at"`
	PresaleStartsAt *time.Time `gorm:"column:presale_starts_at"`
	PresaleEndsAt   *time.Time `gorm:"column:presale_ends_at"`
	PresaleCode     *string    `gorm:"column:presale_code"`
}

var presaleCodeLike = regexp.MustCompile(`^[A-Z0-9-]{4,40}$`)

// check validates the schedule of an event ending at end, normalising the
// code (trimmed, upper case: codes are read out and typed by people).
func (s *SaleSchedule) check(end time.Time) error {
	hasPresale := s.PresaleStartsAt != nil || s.PresaleEndsAt != nil || s.PresaleCode != nil
	if s.OnSaleAt != nil && !s.OnSaleAt.Before(end) {
		return invalid("on_sale_at", "must be before the event ends")
	}
	if !hasPresale {
		return nil
	}
	switch {
	case s.OnSaleAt == nil:
		return invalid("on_sale_at", "a presale needs an on-sale time to end by")
	case s.PresaleStartsAt == nil || s.PresaleEndsAt == nil:
		return invalid("presale_starts_at", "a presale needs a start and an end")
	case !s.PresaleEndsAt.After(*s.PresaleStartsAt):
		return invalid("presale_ends_at", "must be after the presale starts")
	case s.PresaleEndsAt.After(*s.OnSaleAt):
		return invalid("presale_ends_at", "the presale ends by the on-sale time")
	case s.PresaleCode == nil:
		return invalid("presale_code", "a presale needs a code")
	}
	code := strings.ToUpper(strings.TrimSpace(*s.PresaleCode))
	if !presaleCodeLike.MatchString(code) {
		return invalid("presale_code", "4 to 40 letters, digits or dashes (e.g. FANCLUB-2031)")
	}
	s.PresaleCode = &code
	return nil
}

// Window is the time an event or hold keeps its stage busy: the show plus
// its setup and teardown buffers, half-open [From, To).
type Window struct{ From, To time.Time }

// Overlaps reports whether two half-open windows share an instant.
func (w Window) Overlaps(o Window) bool { return w.From.Before(o.To) && o.From.Before(w.To) }

func occupied(start, end time.Time, setup, teardown int) Window {
	return Window{
		From: start.Add(-time.Duration(setup) * time.Minute),
		To:   end.Add(time.Duration(teardown) * time.Minute),
	}
}

// Occupied is the event's window including its buffers.
func (e Event) Occupied() Window {
	return occupied(e.StartsAt, e.EndsAt, e.SetupMinutes, e.TeardownMinutes)
}

// HoldStatus is where a hold stands.
type HoldStatus string

// Hold states. A hold whose expires_at has passed reads as expired even
// before the expiry task or the sweeper has marked it.
const (
	HoldActive    HoldStatus = "active"
	HoldReleased  HoldStatus = "released"
	HoldConfirmed HoldStatus = "confirmed"
	HoldExpired   HoldStatus = "expired"
)

// Hold is a tentative claim on a stage and window.
type Hold struct {
	ID              uuid.UUID  `gorm:"column:id"`
	VenueID         uuid.UUID  `gorm:"column:venue_id"`
	StageID         uuid.UUID  `gorm:"column:stage_id"`
	Title           string     `gorm:"column:title"`
	Category        string     `gorm:"column:category"`
	PromoterID      *uuid.UUID `gorm:"column:promoter_id"`
	StartsAt        time.Time  `gorm:"column:starts_at"`
	EndsAt          time.Time  `gorm:"column:ends_at"`
	SetupMinutes    int        `gorm:"column:setup_minutes"`
	TeardownMinutes int        `gorm:"column:teardown_minutes"`
	Arrival         int64      `gorm:"column:arrival"`
	Status          HoldStatus `gorm:"column:status"`
	ExpiresAt       *time.Time `gorm:"column:expires_at"`
	EventID         *uuid.UUID `gorm:"column:event_id"`
	CreatedAt       time.Time  `gorm:"column:created_at"`
	ClosedAt        *time.Time `gorm:"column:closed_at"`
	Promoter        string     `gorm:"column:promoter"`
	// A challenged hold must confirm or release by ChallengeDeadline, or it
	// is released (CloseReason challenge_lapsed) for ChallengedBy's sake.
	ChallengedBy      *uuid.UUID `gorm:"column:challenged_by"`
	ChallengeDeadline *time.Time `gorm:"column:challenge_deadline"`
	CloseReason       *string    `gorm:"column:close_reason"`
	// Rank is 1 for the first live hold among those overlapping it on its
	// stage, 2 for the next, ...; 0 when the hold is no longer live.
	Rank int `gorm:"column:rank"`
	// Blocked reports that a live event occupies part of the hold's window.
	Blocked bool `gorm:"column:blocked"`
}

// Occupied is the hold's window including its buffers.
func (h Hold) Occupied() Window {
	return occupied(h.StartsAt, h.EndsAt, h.SetupMinutes, h.TeardownMinutes)
}

// LoadTimezone loads an IANA timezone, refusing the empty name and "Local"
// (which would silently mean the server's zone).
func LoadTimezone(name string) (*time.Location, error) {
	if name == "" || name == "Local" || strings.TrimSpace(name) != name || len(name) > 64 {
		return nil, fmt.Errorf("not an IANA timezone: %q", name)
	}
	return app.Timezone(name)
}

var slugLike = regexp.MustCompile(`^[a-z][a-z0-9_]{1,39}$`)

// invalid is the 400 answer for one bad field.
func invalid(field, format string, args ...any) *app.Error {
	return app.InvalidField("invalid_request", field, "%s: %s", field, fmt.Sprintf(format, args...))
}

// cleanText checks free text: trimmed, 1..max runes, no control characters.
// What passes is stored verbatim (SQL-looking text is just text).
func cleanText(field, s string, maxLen int, required bool) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		if required {
			return "", invalid(field, "is required")
		}
		return "", nil
	}
	if n := len([]rune(s)); n > maxLen {
		return "", invalid(field, "must be at most %d characters", maxLen)
	}
	for _, r := range s {
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			return "", invalid(field, "must not contain control characters or invalid UTF-8")
		}
	}
	return s, nil
}

func parseID(field, s string) (uuid.UUID, error) {
	id, err := uuid.Parse(s)
	if err != nil || len(s) != 36 {
		return uuid.Nil, invalid(field, "must be a UUID")
	}
	return id, nil
}

// parseInstant reads an RFC 3339 time that carries its offset.
func parseInstant(field, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, invalid(field, "is required (RFC 3339 with offset, e.g. 2030-05-01T20:00:00-04:00)")
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, invalid(field, "must be RFC 3339 with an offset, e.g. 2030-05-01T20:00:00-04:00")
	}
	t = t.UTC().Truncate(time.Microsecond)
	if t.Before(minTime) || !t.Before(maxTime) {
		return time.Time{}, invalid(field, "must be between %d and %d", minTime.Year(), maxTime.Year()-1)
	}
	return t, nil
}

// checkSlot validates a show time and its buffers.
func checkSlot(start, end time.Time, setup, teardown int) error {
	if !end.After(start) {
		return invalid("ends_at", "must be after starts_at")
	}
	if end.Sub(start) > MaxEventDuration {
		return invalid("ends_at", "an event lasts at most %d days", int(MaxEventDuration.Hours()/24))
	}
	if setup < 0 || setup > MaxBufferMinutes {
		return invalid("setup_minutes", "must be 0 to %d", MaxBufferMinutes)
	}
	if teardown < 0 || teardown > MaxBufferMinutes {
		return invalid("teardown_minutes", "must be 0 to %d", MaxBufferMinutes)
	}
	return nil
}

func checkCategory(field, s string) (string, error) {
	if !slugLike.MatchString(s) {
		return "", invalid(field, "must be 2 to 40 lowercase letters, digits or underscores, starting with a letter (e.g. concert)")
	}
	return s, nil
}

// ordinal renders a rank: 1st, 2nd, 3rd, 4th, ...
func ordinal(n int) string {
	suffix := "th"
	switch {
	case n%100 >= 11 && n%100 <= 13:
	case n%10 == 1:
		suffix = "st"
	case n%10 == 2:
		suffix = "nd"
	case n%10 == 3:
		suffix = "rd"
	}
	return fmt.Sprintf("%d%s", n, suffix)
}

// conflictError is the 409 answer naming what is in the way.
func conflictError(tz *time.Location, blockers []Blocker) *app.Error {
	views := make([]BlockerView, 0, len(blockers))
	names := make([]string, 0, len(blockers))
	for _, b := range blockers {
		v := b.view(tz)
		views = append(views, v)
		where := "the whole venue"
		if !b.Exclusive {
			where = b.StageName
		}
		names = append(names, fmt.Sprintf("%q (%s, %s, occupied %s – %s)", b.Title, where, b.Status,
			v.OccupiedFromLocal, v.OccupiedToLocal))
	}
	detail := "the requested window overlaps another event"
	if len(names) > 0 {
		detail = "the requested window overlaps " + strings.Join(names, "; ")
	}
	return app.Conflict("schedule_conflict", "%s", detail).With("conflicts", views)
}

// Blocker is an event in the way of a placement.
type Blocker struct {
	EventID         uuid.UUID  `gorm:"column:id"`
	Title           string     `gorm:"column:title"`
	Status          Status     `gorm:"column:status"`
	StageID         *uuid.UUID `gorm:"column:stage_id"`
	StageName       string     `gorm:"column:stage_name"`
	Exclusive       bool       `gorm:"column:exclusive"`
	StartsAt        time.Time  `gorm:"column:starts_at"`
	EndsAt          time.Time  `gorm:"column:ends_at"`
	SetupMinutes    int        `gorm:"column:setup_minutes"`
	TeardownMinutes int        `gorm:"column:teardown_minutes"`
}

// BlockerView is a Blocker as the API shows it.
type BlockerView struct {
	EventID           uuid.UUID  `json:"event_id"`
	Title             string     `json:"title"`
	Status            Status     `json:"status"`
	StageID           *uuid.UUID `json:"stage_id"`
	StageName         string     `json:"stage_name,omitempty"`
	Exclusive         bool       `json:"exclusive"`
	StartsAt          time.Time  `json:"starts_at"`
	EndsAt            time.Time  `json:"ends_at"`
	OccupiedFrom      time.Time  `json:"occupied_from"`
	OccupiedTo        time.Time  `json:"occupied_to"`
	OccupiedFromLocal string     `json:"occupied_from_local"`
	OccupiedToLocal   string     `json:"occupied_to_local"`
}

func (b Blocker) view(tz *time.Location) BlockerView {
	w := occupied(b.StartsAt, b.EndsAt, b.SetupMinutes, b.TeardownMinutes)
	return BlockerView{EventID: b.EventID, Title: b.Title, Status: b.Status, StageID: b.StageID, StageName: b.StageName,
		Exclusive: b.Exclusive, StartsAt: b.StartsAt.UTC(), EndsAt: b.EndsAt.UTC(),
		OccupiedFrom: w.From.UTC(), OccupiedTo: w.To.UTC(),
		OccupiedFromLocal: local(w.From, tz), OccupiedToLocal: local(w.To, tz)}
}

func local(t time.Time, tz *time.Location) string { return t.In(tz).Format(time.RFC3339) }
