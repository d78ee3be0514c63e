package calendar

import (
	"time"

	"github.com/google/uuid"
)

// EventView is an event as the API shows it: instants in UTC, each with its
// rendering in the venue's timezone.
type EventView struct {
	ID                uuid.UUID  `json:"id"`
	VenueID           uuid.UUID  `json:"venue_id"`
	StageID           *uuid.UUID `json:"stage_id"`
	Exclusive         bool       `json:"exclusive"`
	Title             string     `json:"title"`
	Category          string     `json:"category"`
	Status            Status     `json:"status"`
	PromoterID        *uuid.UUID `json:"promoter_id"`
	Timezone          string     `json:"timezone"`
	StartsAt          time.Time  `json:"starts_at"`
	EndsAt            time.Time  `json:"ends_at"`
	StartsAtLocal     string     `json:"starts_at_local"`
	EndsAtLocal       string     `json:"ends_at_local"`
	SetupMinutes      int        `json:"setup_minutes"`
	TeardownMinutes   int        `json:"teardown_minutes"`
	OccupiedFrom      time.Time  `json:"occupied_from"`
	OccupiedTo        time.Time  `json:"occupied_to"`
	OccupiedFromLocal string     `json:"occupied_from_local"`
	OccupiedToLocal   string     `json:"occupied_to_local"`
	HoldID            *uuid.UUID `json:"hold_id,omitempty"`
	Version           int        `json:"version"`
	CreatedAt         time.Time  `json:"created_at"`
	UpdatedAt         time.Time  `json:"updated_at"`
}

func viewEvent(e Event, tzName string) EventView {
	tz := timezoneOrUTC(tzName)
	w := e.Occupied()
	return EventView{
		ID: e.ID, VenueID: e.VenueID, StageID: e.StageID, Exclusive: e.Exclusive, Title: e.Title, Category: e.Category,
		Status: e.Status, PromoterID: e.PromoterID, Timezone: tzName,
		StartsAt: e.StartsAt.UTC(), EndsAt: e.EndsAt.UTC(), StartsAtLocal: local(e.StartsAt, tz), EndsAtLocal: local(e.EndsAt, tz),
		SetupMinutes: e.SetupMinutes, TeardownMinutes: e.TeardownMinutes,
		OccupiedFrom: w.From.UTC(), OccupiedTo: w.To.UTC(), OccupiedFromLocal: local(w.From, tz), OccupiedToLocal: local(w.To, tz),
		HoldID: e.HoldID, Version: e.Version, CreatedAt: e.CreatedAt.UTC(), UpdatedAt: e.UpdatedAt.UTC(),
	}
}

// HoldView is a hold as the API shows it, with its current rank.
type HoldView struct {
	ID                uuid.UUID  `json:"id"`
	VenueID           uuid.UUID  `json:"venue_id"`
	StageID           uuid.UUID  `json:"stage_id"`
	Title             string     `json:"title"`
	Category          string     `json:"category"`
	PromoterID        *uuid.UUID `json:"promoter_id"`
	Status            HoldStatus `json:"status"`
	Rank              int        `json:"rank,omitempty"`
	RankLabel         string     `json:"rank_label,omitempty"`
	Blocked           bool       `json:"blocked_by_event"`
	Timezone          string     `json:"timezone"`
	StartsAt          time.Time  `json:"starts_at"`
	EndsAt            time.Time  `json:"ends_at"`
	StartsAtLocal     string     `json:"starts_at_local"`
	EndsAtLocal       string     `json:"ends_at_local"`
	SetupMinutes      int        `json:"setup_minutes"`
	TeardownMinutes   int        `json:"teardown_minutes"`
	OccupiedFrom      time.Time  `json:"occupied_from"`
	OccupiedTo        time.Time  `json:"occupied_to"`
	OccupiedFromLocal string     `json:"occupied_from_local"`
	OccupiedToLocal   string     `json:"occupied_to_local"`
	ExpiresAt         *time.Time `json:"expires_at"`
	EventID           *uuid.UUID `json:"event_id,omitempty"`
	CreatedAt         time.Time  `json:"created_at"`
	ClosedAt          *time.Time `json:"closed_at,omitempty"`
}

func viewHold(h Hold, tzName string) HoldView {
	tz := timezoneOrUTC(tzName)
	w := h.Occupied()
	v := HoldView{
		ID: h.ID, VenueID: h.VenueID, StageID: h.StageID, Title: h.Title, Category: h.Category, PromoterID: h.PromoterID,
		Status: h.Status, Rank: h.Rank, Blocked: h.Blocked, Timezone: tzName,
		StartsAt: h.StartsAt.UTC(), EndsAt: h.EndsAt.UTC(), StartsAtLocal: local(h.StartsAt, tz), EndsAtLocal: local(h.EndsAt, tz),
		SetupMinutes: h.SetupMinutes, TeardownMinutes: h.TeardownMinutes,
		OccupiedFrom: w.From.UTC(), OccupiedTo: w.To.UTC(), OccupiedFromLocal: local(w.From, tz), OccupiedToLocal: local(w.To, tz),
		ExpiresAt: utcPtr(h.ExpiresAt), EventID: h.EventID, CreatedAt: h.CreatedAt.UTC(), ClosedAt: utcPtr(h.ClosedAt),
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
