package calendar

import (
	"context"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/tenants"
)

// CheckRange validates a calendar range.
func CheckRange(w Window) error {
	if !w.To.After(w.From) {
		return invalid("to", "must be after from")
	}
	if w.To.Sub(w.From) > MaxCalendarRange {
		return invalid("to", "a calendar covers at most %d days", int(MaxCalendarRange.Hours()/24))
	}
	return nil
}

// Calendar reads what venues have scheduled in w: live events and holds,
// per stage, with exclusive events apart. venueIDs nil means every venue.
func (s *Service) Calendar(ctx context.Context, t tenants.Tenant, venueIDs []uuid.UUID, w Window) ([]VenueCalendar, error) {
	if err := CheckRange(w); err != nil {
		return nil, err
	}
	var out []VenueCalendar
	err := s.tx(ctx, t, func(tx *gorm.DB) error {
		vs, err := listVenues(tx, venueIDs)
		if err != nil {
			return err
		}
		if venueIDs != nil && len(vs) < len(venueIDs) {
			return app.NotFound("venue")
		}
		ids := make([]uuid.UUID, len(vs))
		for i, v := range vs {
			ids[i] = v.ID
		}
		stages, err := listStages(tx, ids)
		if err != nil {
			return err
		}
		events, err := liveEvents(tx, ids, w)
		if err != nil {
			return err
		}
		holds, err := liveHolds(tx, ids, w)
		if err != nil {
			return err
		}
		out = assemble(vs, stages, events, holds, w)
		return nil
	})
	return out, err
}

func assemble(vs []Venue, stages []Stage, events []Event, holds []Hold, w Window) []VenueCalendar {
	out := make([]VenueCalendar, len(vs))
	byVenue := map[uuid.UUID]*VenueCalendar{}
	lane := map[uuid.UUID]*StageCalendar{}
	for i, v := range vs {
		tz := v.Location()
		out[i] = VenueCalendar{Venue: v, Timezone: v.Timezone, From: w.From.UTC(), To: w.To.UTC(),
			FromLocal: local(w.From, tz), ToLocal: local(w.To, tz), Stages: []StageCalendar{}, ExclusiveEvents: []EventView{}}
		byVenue[v.ID] = &out[i]
	}
	for _, st := range stages {
		vc := byVenue[st.VenueID]
		vc.Stages = append(vc.Stages, StageCalendar{Stage: st, Events: []EventView{}, Holds: []HoldView{}})
	}
	for i := range out {
		for j := range out[i].Stages {
			lane[out[i].Stages[j].Stage.ID] = &out[i].Stages[j]
		}
	}
	for _, e := range events {
		vc := byVenue[e.VenueID]
		ev := viewEvent(e, vc.Timezone)
		if e.Exclusive {
			vc.ExclusiveEvents = append(vc.ExclusiveEvents, ev)
		} else if l := lane[*e.StageID]; l != nil {
			l.Events = append(l.Events, ev)
		}
	}
	for _, h := range holds {
		if l := lane[h.StageID]; l != nil {
			l.Holds = append(l.Holds, viewHold(h, byVenue[h.VenueID].Timezone))
		}
	}
	return out
}
