package calendar

import (
	"time"

	"github.com/google/uuid"
)

// WindowView is the time of an event or hold as the API shows it: instants
// in UTC, each with its rendering in the venue's timezone, and the occupied
// window (setup and teardown included).
type WindowView struct {
	Timezone          string    `json:"timezone"`
	StartsAt          time.Time `json:"starts_at"`
	EndsAt            time.Time `json:"ends_at"`
	StartsAtLocal     string    `json:"starts_at_local"`
	EndsAtLocal       string    `json:"ends_at_local"`
	SetupMinutes      int       `json:"setup_minutes"`
	TeardownMinutes   int       `json:"teardown_minutes"`
	OccupiedFrom      time.Time `json:"occupied_from"`
	OccupiedTo        time.Time `json:"occupied_to"`
	OccupiedFromLocal string    `json:"occupied_from_local"`
	OccupiedToLocal   string    `json:"occupied_to_local"`
}

func viewWindow(startsAt, endsAt time.Time, setup, teardown int, occupied Window, tzName string) WindowView {
	tz := timezoneOrUTC(tzName)
	return WindowView{Timezone: tzName,
		StartsAt: startsAt.UTC(), EndsAt: endsAt.UTC(), StartsAtLocal: local(startsAt, tz), EndsAtLocal: local(endsAt, tz),
		SetupMinutes: setup, TeardownMinutes: teardown,
		OccupiedFrom: occupied.From.UTC(), OccupiedTo: occupied.To.UTC(), OccupiedFromLocal: local(occupied.From, tz), OccupiedToLocal: local(occupied.To, tz)}
}

// EventView is an event as the API shows it: instants in UTC, each with its
// rendering in the venue's timezone.
type EventView struct {
	ID         uuid.UUID  `json:"id"`
	VenueID    uuid.UUID  `json:"venue_id"`
	StageID    *uuid.UUID `json:"stage_id"`
	Exclusive  bool       `json:"exclusive"`
	Title      string     `json:"title"`
	Category   string     `json:"category"`
	Status     Status     `json:"status"`
	PromoterID *uuid.UUID `json:"promoter_id"`
	Promoter   string     `json:"promoter"`
	WindowView
	Sale      SaleView   `json:"sale"`
	HoldID    *uuid.UUID `json:"hold_id,omitempty"`
	Version   int        `json:"version"`
	CreatedAt time.Time  `json:"created_at"`
	UpdatedAt time.Time  `json:"updated_at"`
}

func viewEvent(e Event, tzName string) EventView {
	return EventView{
		ID: e.ID, VenueID: e.VenueID, StageID: e.StageID, Exclusive: e.Exclusive, Title: e.Title, Category: e.Category,
		Status: e.Status, PromoterID: e.PromoterID, Promoter: e.Promoter,
		WindowView: viewWindow(e.StartsAt, e.EndsAt, e.SetupMinutes, e.TeardownMinutes, e.Occupied(), tzName),
		Sale:       viewSale(e.SaleSchedule, tzName),
		HoldID:     e.HoldID, Version: e.Version, CreatedAt: e.CreatedAt.UTC(), UpdatedAt: e.UpdatedAt.UTC(),
	}
}

// SaleView is an event's on-sale schedule as staff see it (the presale code
// included: they hand it out). Nil times: no schedule, or no presale.
type SaleView struct {
	OnSaleAt             *time.Time `json:"on_sale_at"`
	OnSaleAtLocal        string     `json:"on_sale_at_local,omitempty"`
	PresaleStartsAt      *time.Time `json:"presale_starts_at"`
	PresaleStartsAtLocal string     `json:"presale_starts_at_local,omitempty"`
	PresaleEndsAt        *time.Time `json:"presale_ends_at"`
	PresaleEndsAtLocal   string     `json:"presale_ends_at_local,omitempty"`
	PresaleCode          string     `json:"presale_code,omitempty"`
}

func viewSale(s SaleSchedule, tzName string) SaleView {
	tz := timezoneOrUTC(tzName)
	at := func(t *time.Time) string {
		if t == nil {
			return ""
		}
		return local(*t, tz)
	}
	return SaleView{OnSaleAt: utcPtr(s.OnSaleAt), OnSaleAtLocal: at(s.OnSaleAt),
		PresaleStartsAt: utcPtr(s.PresaleStartsAt), PresaleStartsAtLocal: at(s.PresaleStartsAt),
		PresaleEndsAt: utcPtr(s.PresaleEndsAt), PresaleEndsAtLocal: at(s.PresaleEndsAt), PresaleCode: deref(s.PresaleCode)}
}

// HoldView is a hold as the API shows it, with its current rank.
type HoldView struct {
	ID         uuid.UUID  `json:"id"`
	VenueID    uuid.UUID  `json:"venue_id"`
	StageID    uuid.UUID  `json:"stage_id"`
	Title      string     `json:"title"`
	Category   string     `json:"category"`
	PromoterID *uuid.UUID `json:"promoter_id"`
	Promoter   string     `json:"promoter"`
	Status     HoldStatus `json:"status"`
	Rank       int        `json:"rank,omitempty"`
	RankLabel  string     `json:"rank_label,omitempty"`
	Blocked    bool       `json:"blocked_by_event"`
	WindowView
	ExpiresAt *time.Time `json:"expires_at"`
	EventID   *uuid.UUID `json:"event_id,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	ClosedAt  *time.Time `json:"closed_at,omitempty"`
	// ChallengedBy is the hold behind that challenged this one: it must
	// confirm or release by ChallengeDeadline, or it is released.
	ChallengedBy      *uuid.UUID `json:"challenged_by,omitempty"`
	ChallengeDeadline *time.Time `json:"challenge_deadline,omitempty"`
	CloseReason       string     `json:"close_reason,omitempty"`
}

func viewHold(h Hold, tzName string) HoldView {
	v := HoldView{
		ID: h.ID, VenueID: h.VenueID, StageID: h.StageID, Title: h.Title, Category: h.Category, PromoterID: h.PromoterID,
		Promoter: h.Promoter, ChallengedBy: h.ChallengedBy, ChallengeDeadline: utcPtr(h.ChallengeDeadline), CloseReason: deref(h.CloseReason),
		Status: h.Status, Rank: h.Rank, Blocked: h.Blocked,
		WindowView: viewWindow(h.StartsAt, h.EndsAt, h.SetupMinutes, h.TeardownMinutes, h.Occupied(), tzName),
		ExpiresAt:  utcPtr(h.ExpiresAt), EventID: h.EventID, CreatedAt: h.CreatedAt.UTC(), ClosedAt: utcPtr(h.ClosedAt),
	}
	if v.Status != HoldActive {
		v.Rank = 0
	}
	if v.Rank > 0 {
		v.RankLabel = ordinal(v.Rank)
	}
	return v
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

func timezoneOrUTC(name string) *time.Location {
	loc, err := LoadTimezone(name)
	if err != nil {
		return time.UTC
	}
	return loc
}

// StageCalendar is one stage's lane of a calendar read.
type StageCalendar struct {
	Stage  Stage       `json:"stage"`
	Events []EventView `json:"events"`
	Holds  []HoldView  `json:"holds"`
}

// VenueCalendar is what a venue has scheduled in a range.
type VenueCalendar struct {
	Venue           Venue           `json:"venue"`
	Timezone        string          `json:"timezone"`
	From            time.Time       `json:"from"`
	To              time.Time       `json:"to"`
	FromLocal       string          `json:"from_local"`
	ToLocal         string          `json:"to_local"`
	Stages          []StageCalendar `json:"stages"`
	ExclusiveEvents []EventView     `json:"exclusive_events"`
}
