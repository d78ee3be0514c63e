package calendar

import (
	"context"
	"errors"
	"math"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/tenants"
)

// Service holds the calendar's rules. Each public method opens one tenant
// transaction and passes it to the store's small helpers.
type Service struct {
	app     *app.Core
	retries atomic.Int64
}

// NewService builds the calendar service on the core, and exports how many
// transactions PostgreSQL aborted as deadlock or serialization victims: the
// booking path is built so that this stays at zero under any race.
func NewService(a *app.Core) *Service {
	s := &Service{app: a}
	if a.Metrics != nil {
		a.Metrics.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "marquee_calendar_tx_retries_total",
			Help: "Calendar transactions run again after a deadlock or serialization failure.",
		}, func() float64 { return float64(s.retries.Load()) }))
	}
	return s
}

// Retries reports how many transactions were run again after PostgreSQL
// aborted them as a deadlock or serialization victim.
func (s *Service) Retries() int64 { return s.retries.Load() }

// tx runs fn in the tenant's scope. A transaction PostgreSQL aborted as a
// deadlock or serialization victim is run again (fn has no other effects);
// constraint violations come back as the API's errors.
func (s *Service) tx(ctx context.Context, t tenants.Tenant, fn func(tx *gorm.DB) error) error {
	const attempts = 4
	var err error
	for attempt := 1; ; attempt++ {
		err = s.app.Tx(ctx, t, fn)
		if !retryable(err) || attempt == attempts {
			break
		}
		s.retries.Add(1)
		s.app.Log.Warn("calendar transaction retried", "tenant", t.Slug, "attempt", attempt, "err", err)
	}
	return mapStoreError(err)
}

// ---- venues and stages

// VenueInput is a new venue or, with pointers unset, the fields a patch leaves alone.
type VenueInput struct {
	Name      *string
	Address   *string
	Timezone  *string
	Latitude  *float64
	Longitude *float64
	Capacity  *int
}

// apply validates in over v (a new venue starts from the zero Venue).
func (in VenueInput) apply(v *Venue, creating bool) error {
	var err error
	if in.Name != nil || creating {
		if v.Name, err = cleanText("name", deref(in.Name), 200, true); err != nil {
			return err
		}
	}
	if in.Address != nil {
		if v.Address, err = cleanText("address", *in.Address, 500, false); err != nil {
			return err
		}
	}
	if in.Timezone != nil || creating {
		tz := deref(in.Timezone)
		if _, err := LoadTimezone(tz); err != nil {
			return invalid("timezone", "must be an IANA timezone such as America/New_York (not empty, not Local)")
		}
		v.Timezone = tz
	}
	if (in.Latitude == nil) != (in.Longitude == nil) {
		return invalid("latitude", "latitude and longitude go together")
	}
	if in.Latitude != nil {
		lat, lng := *in.Latitude, *in.Longitude
		if math.IsNaN(lat) || lat < -90 || lat > 90 {
			return invalid("latitude", "must be between -90 and 90")
		}
		if math.IsNaN(lng) || lng < -180 || lng > 180 {
			return invalid("longitude", "must be between -180 and 180")
		}
		v.Latitude, v.Longitude = &lat, &lng
	}
	if in.Capacity != nil || creating {
		c := 0
		if in.Capacity != nil {
			c = *in.Capacity
		}
		if c < 1 || c > maxCapacity {
			return invalid("capacity", "licensed capacity must be 1 to %d", maxCapacity)
		}
		v.Capacity = c
	}
	return nil
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// CreateVenue adds a venue.
func (s *Service) CreateVenue(ctx context.Context, t tenants.Tenant, in VenueInput) (Venue, error) {
	v := Venue{ID: uuid.Must(uuid.NewV7())}
	if err := in.apply(&v, true); err != nil {
		return Venue{}, err
	}
	err := s.tx(ctx, t, func(tx *gorm.DB) error { return insertVenue(tx, &v) })
	return v, err
}

// UpdateVenue changes the given fields of a venue.
func (s *Service) UpdateVenue(ctx context.Context, t tenants.Tenant, id uuid.UUID, in VenueInput) (Venue, error) {
	var v Venue
	err := s.tx(ctx, t, func(tx *gorm.DB) error {
		var err error
		if v, err = findVenue(tx, id, true); err != nil {
			return err
		}
		if err := in.apply(&v, false); err != nil {
			return err
		}
		return updateVenue(tx, &v)
	})
	if err == nil {
		s.venueChanged(ctx, t, id)
	}
	return v, err
}

// Venue reads one venue.
func (s *Service) Venue(ctx context.Context, t tenants.Tenant, id uuid.UUID) (Venue, error) {
	var v Venue
	err := s.tx(ctx, t, func(tx *gorm.DB) error {
		var err error
		v, err = findVenue(tx, id, false)
		return err
	})
	return v, err
}

// Venues lists every venue of the chain, by name.
func (s *Service) Venues(ctx context.Context, t tenants.Tenant) ([]Venue, error) {
	var vs []Venue
	err := s.tx(ctx, t, func(tx *gorm.DB) error {
		var err error
		vs, err = listVenues(tx, nil)
		return err
	})
	return vs, err
}

// VenueNames implements app.VenueLister: the chain's venues by name.
func (s *Service) VenueNames(ctx context.Context, t tenants.Tenant) ([]app.VenueName, error) {
	vs, err := s.Venues(ctx, t)
	out := make([]app.VenueName, len(vs))
	for i, v := range vs {
		out[i] = app.VenueName{ID: v.ID, Name: v.Name}
	}
	return out, err
}

// VenueExists implements app.VenueDirectory.
func (s *Service) VenueExists(ctx context.Context, t tenants.Tenant, id uuid.UUID) (bool, error) {
	_, err := s.Venue(ctx, t, id)
	var e *app.Error
	if errors.As(err, &e) && e.Kind == app.KindNotFound {
		return false, nil
	}
	return err == nil, err
}

// DeleteVenue removes a venue that has no events or holds.
func (s *Service) DeleteVenue(ctx context.Context, t tenants.Tenant, id uuid.UUID) error {
	return s.tx(ctx, t, func(tx *gorm.DB) error { return deleteVenue(tx, id) })
}

// StageInput is a new stage or a patch of one.
type StageInput struct {
	Name     *string
	Capacity *int
	Kind     *string
}

func (in StageInput) apply(st *Stage, v Venue, creating bool) error {
	var err error
	if in.Name != nil || creating {
		if st.Name, err = cleanText("name", deref(in.Name), 200, true); err != nil {
			return err
		}
	}
	if in.Capacity != nil || creating {
		c := deref(in.Capacity)
		if c < 0 || c > v.Capacity {
			return invalid("capacity", "must be 0 to the venue's licensed capacity (%d)", v.Capacity)
		}
		st.Capacity = c
	}
	if in.Kind != nil || creating {
		k := deref(in.Kind)
		if k == "" {
			k = "main"
		}
		if st.Kind, err = checkCategory("type", k); err != nil {
			return err
		}
	}
	return nil
}

// CreateStage adds a stage to a venue. Exclusive events already booked at
// the venue cover it at once: they conflict at venue level, not per stage.
func (s *Service) CreateStage(ctx context.Context, t tenants.Tenant, venueID uuid.UUID, in StageInput) (Stage, error) {
	st := Stage{ID: uuid.Must(uuid.NewV7()), VenueID: venueID}
	err := s.tx(ctx, t, func(tx *gorm.DB) error {
		v, err := findVenue(tx, venueID, false)
		if err != nil {
			return err
		}
		if err := in.apply(&st, v, true); err != nil {
			return err
		}
		return insertStage(tx, &st)
	})
	return st, err
}

// UpdateStage changes a stage's name, capacity or type.
func (s *Service) UpdateStage(ctx context.Context, t tenants.Tenant, venueID, id uuid.UUID, in StageInput) (Stage, error) {
	var st Stage
	err := s.tx(ctx, t, func(tx *gorm.DB) error {
		v, err := findVenue(tx, venueID, false)
		if err != nil {
			return err
		}
		if st, err = findStage(tx, venueID, id, true); err != nil {
			return err
		}
		if err := in.apply(&st, v, false); err != nil {
			return err
		}
		return updateStage(tx, &st)
	})
	return st, err
}

// Stage reads one stage of a venue.
func (s *Service) Stage(ctx context.Context, t tenants.Tenant, venueID, id uuid.UUID) (Stage, error) {
	var st Stage
	err := s.tx(ctx, t, func(tx *gorm.DB) error {
		var err error
		st, err = findStage(tx, venueID, id, false)
		return err
	})
	return st, err
}

// Stages lists the stages of a venue.
func (s *Service) Stages(ctx context.Context, t tenants.Tenant, venueID uuid.UUID) ([]Stage, error) {
	var ss []Stage
	err := s.tx(ctx, t, func(tx *gorm.DB) error {
		if _, err := findVenue(tx, venueID, false); err != nil {
			return err
		}
		var err error
		ss, err = listStages(tx, []uuid.UUID{venueID})
		return err
	})
	return ss, err
}

// DeleteStage removes a stage that has no events or holds.
func (s *Service) DeleteStage(ctx context.Context, t tenants.Tenant, venueID, id uuid.UUID) error {
	return s.tx(ctx, t, func(tx *gorm.DB) error { return deleteStage(tx, venueID, id) })
}

// ---- events

// EventInput is a new event.
type EventInput struct {
	StageID         *uuid.UUID
	Exclusive       bool
	Title           string
	Category        string
	Status          Status
	PromoterID      *uuid.UUID
	Promoter        string
	StartsAt        time.Time
	EndsAt          time.Time
	SetupMinutes    int
	TeardownMinutes int
	Schedule        SaleSchedule
}

// creatable are the states an event may be created in.
var creatable = map[Status]bool{StatusDraft: true, StatusConfirmed: true, StatusOnSale: true}

func (in EventInput) event(venueID uuid.UUID) (Event, error) {
	e := Event{ID: uuid.Must(uuid.NewV7()), VenueID: venueID, StageID: in.StageID, Exclusive: in.Exclusive,
		Status: in.Status, PromoterID: in.PromoterID, StartsAt: in.StartsAt, EndsAt: in.EndsAt,
		SetupMinutes: in.SetupMinutes, TeardownMinutes: in.TeardownMinutes, SaleSchedule: in.Schedule}
	var err error
	if e.Title, err = cleanText("title", in.Title, 200, true); err != nil {
		return Event{}, err
	}
	if e.Promoter, err = cleanText("promoter", in.Promoter, 200, false); err != nil {
		return Event{}, err
	}
	if err := e.SaleSchedule.check(e.EndsAt); err != nil {
		return Event{}, err
	}
	if e.Category, err = checkCategory("category", in.Category); err != nil {
		return Event{}, err
	}
	if e.Status == "" {
		e.Status = StatusDraft
	}
	if !creatable[e.Status] {
		return Event{}, invalid("status", "a new event is draft, confirmed or on_sale")
	}
	if err := checkPlacement(e.StageID, e.Exclusive); err != nil {
		return Event{}, err
	}
	return e, checkSlot(e.StartsAt, e.EndsAt, e.SetupMinutes, e.TeardownMinutes)
}

func checkPlacement(stage *uuid.UUID, exclusive bool) error {
	switch {
	case exclusive && stage != nil:
		return invalid("stage_id", "an exclusive event takes the whole venue: omit stage_id")
	case !exclusive && stage == nil:
		return invalid("stage_id", "is required unless exclusive is true")
	}
	return nil
}

// place inserts a new event through the exclusion constraints and returns
// the venue's timezone. On a conflict it answers 409 naming the events in
// the way; if those have meanwhile left, it tries again. A stage must belong
// to this venue: a conflict with another venue's event is never reported.
func place(tx *gorm.DB, e *Event) (string, error) {
	for attempt := 0; attempt < 3; attempt++ {
		tz, placed, err := insertEvent(tx, e)
		if err != nil || placed {
			return tz, err
		}
		r, err := explainRefusal(tx, e)
		switch {
		case err != nil:
			return "", err
		case !r.Found:
			return "", app.NotFound("venue")
		case !r.StageOK:
			return "", app.NotFound("stage")
		case len(r.Blockers) > 0:
			return "", conflictError(timezoneOrUTC(r.Timezone), r.Blockers)
		}
	}
	return "", conflictError(time.UTC, nil)
}

// CreateEvent books an event. Exactly one of many concurrent requests for
// overlapping windows succeeds; the others get 409 schedule_conflict naming
// it. With an idempotency key, a repeat returns the first response (replayed).
func (s *Service) CreateEvent(ctx context.Context, t tenants.Tenant, venueID uuid.UUID, in EventInput, k *app.IdempotencyKey) (EventView, bool, error) {
	e, err := in.event(venueID)
	if err != nil {
		return EventView{}, false, err
	}
	var out EventView
	var replayed bool
	err = s.tx(ctx, t, func(tx *gorm.DB) error {
		out = EventView{}
		var err error
		replayed, err = app.Once(tx, k, &out, func() error {
			tz, err := place(tx, &e)
			out = viewEvent(e, tz)
			return err
		})
		return err
	})
	if err == nil && !replayed {
		s.app.EventsChanged(ctx, t, out.ID) // search documents, after the commit
	}
	return out, replayed, err
}

// Event reads one event of a venue.
func (s *Service) Event(ctx context.Context, t tenants.Tenant, venueID, id uuid.UUID) (EventView, error) {
	var out EventView
	err := s.tx(ctx, t, func(tx *gorm.DB) error {
		v, err := findVenue(tx, venueID, false)
		if err != nil {
			return err
		}
		e, err := findEvent(tx, venueID, id, false)
		out = viewEvent(e, v.Timezone)
		return err
	})
	return out, err
}

// EventPage is one page of a venue's events.
type EventPage struct {
	Items []EventView
	Next  *Event // the last item, when more may follow
}

// Events lists a venue's events by start time, one page at a time.
func (s *Service) Events(ctx context.Context, t tenants.Tenant, venueID uuid.UUID, f EventFilter) (EventPage, error) {
	if f.Limit <= 0 || f.Limit > 200 {
		f.Limit = 50
	}
	var page EventPage
	err := s.tx(ctx, t, func(tx *gorm.DB) error {
		v, err := findVenue(tx, venueID, false)
		if err != nil {
			return err
		}
		es, err := listEvents(tx, venueID, f)
		if err != nil {
			return err
		}
		page.Items = make([]EventView, 0, len(es))
		for _, e := range es {
			page.Items = append(page.Items, viewEvent(e, v.Timezone))
		}
		if len(es) == f.Limit {
			page.Next = &es[len(es)-1]
		}
		return nil
	})
	return page, err
}

// EventPatch changes an event; nil fields stay as they are.
type EventPatch struct {
	StageID         *uuid.UUID // moving to a stage also ends exclusive use
	Exclusive       *bool
	Title           *string
	Category        *string
	Status          *Status
	PromoterID      *uuid.UUID
	ClearPromoter   bool
	Promoter        *string       // the promoter as billed; "" removes it
	Schedule        *SaleSchedule // replaces the whole on-sale schedule
	StartsAt        *time.Time
	EndsAt          *time.Time
	SetupMinutes    *int
	TeardownMinutes *int
	IfVersion       int // when > 0, the event must still be at this version
}

func (p EventPatch) empty() bool {
	return p.StageID == nil && p.Exclusive == nil && p.Title == nil && p.Category == nil && p.Status == nil &&
		p.PromoterID == nil && !p.ClearPromoter && p.Promoter == nil && p.Schedule == nil && p.StartsAt == nil && p.EndsAt == nil && p.SetupMinutes == nil && p.TeardownMinutes == nil
}

// apply validates p over e and reports whether the placement (stage, use or
// window) changed.
func (p EventPatch) apply(e *Event) (moved bool, err error) {
	old := *e
	if e.Status.Final() {
		return false, app.Conflict("event_final", "a %s event cannot change", e.Status)
	}
	if p.Title != nil {
		if e.Title, err = cleanText("title", *p.Title, 200, true); err != nil {
			return false, err
		}
	}
	if p.Category != nil {
		if e.Category, err = checkCategory("category", *p.Category); err != nil {
			return false, err
		}
	}
	if p.Status != nil {
		if !ValidStatus(*p.Status) {
			return false, invalid("status", "unknown status %q", *p.Status)
		}
		if !CanMove(e.Status, *p.Status) {
			return false, app.Conflict("invalid_transition", "an event cannot go from %s to %s", e.Status, *p.Status).
				With("from", e.Status).With("to", *p.Status).With("allowed", transitions[e.Status])
		}
		e.Status = *p.Status
	}
	if p.Promoter != nil {
		if e.Promoter, err = cleanText("promoter", *p.Promoter, 200, false); err != nil {
			return false, err
		}
	}
	if p.Schedule != nil {
		e.SaleSchedule = *p.Schedule
	}
	if p.ClearPromoter {
		e.PromoterID = nil
	} else if p.PromoterID != nil {
		e.PromoterID = p.PromoterID
	}
	switch {
	case p.StageID != nil && p.Exclusive != nil && *p.Exclusive:
		return false, invalid("stage_id", "an exclusive event takes the whole venue: omit stage_id")
	case p.StageID != nil:
		e.StageID, e.Exclusive = p.StageID, false
	case p.Exclusive != nil && *p.Exclusive:
		e.StageID, e.Exclusive = nil, true
	case p.Exclusive != nil && !*p.Exclusive && e.Exclusive:
		return false, invalid("stage_id", "is required to end exclusive use")
	}
	if p.StartsAt != nil {
		e.StartsAt = *p.StartsAt
	}
	if p.EndsAt != nil {
		e.EndsAt = *p.EndsAt
	}
	if p.SetupMinutes != nil {
		e.SetupMinutes = *p.SetupMinutes
	}
	if p.TeardownMinutes != nil {
		e.TeardownMinutes = *p.TeardownMinutes
	}
	if err := checkSlot(e.StartsAt, e.EndsAt, e.SetupMinutes, e.TeardownMinutes); err != nil {
		return false, err
	}
	if err := e.SaleSchedule.check(e.EndsAt); err != nil {
		return false, err
	}
	moved = e.Exclusive != old.Exclusive || !sameStage(e.StageID, old.StageID) || !e.StartsAt.Equal(old.StartsAt) ||
		!e.EndsAt.Equal(old.EndsAt) || e.SetupMinutes != old.SetupMinutes || e.TeardownMinutes != old.TeardownMinutes
	if moved && e.Status == StatusCompleted {
		return false, app.Conflict("event_final", "a completed event cannot move")
	}
	return moved, nil
}

func sameStage(a, b *uuid.UUID) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// UpdateEvent moves, retitles or changes the status of an event. A move goes
// through the same exclusion constraints as a new booking (409 when the new
// window is taken); cancelling frees the window at once.
func (s *Service) UpdateEvent(ctx context.Context, t tenants.Tenant, venueID, id uuid.UUID, p EventPatch) (EventView, error) {
	if p.empty() {
		return EventView{}, app.Invalid("invalid_request", "nothing to change")
	}
	var out EventView
	var cancelled bool
	err := s.tx(ctx, t, func(tx *gorm.DB) error {
		cancelled = false
		v, err := findVenue(tx, venueID, false)
		if err != nil {
			return err
		}
		// The event's row lock orders concurrent changes of this one event;
		// conflicts with other events are still the constraints' business.
		e, err := findEvent(tx, venueID, id, true)
		if err != nil {
			return err
		}
		if p.IfVersion > 0 && p.IfVersion != e.Version {
			return app.Conflict("version_mismatch", "the event changed meanwhile (now version %d)", e.Version)
		}
		moved, err := p.apply(&e)
		if err != nil {
			return err
		}
		if moved && !e.Exclusive {
			if _, err := findStage(tx, venueID, *e.StageID, false); err != nil {
				return err
			}
		}
		switch {
		case e.Status == StatusCancelled:
			if err := freePlacement(tx, e.ID); err != nil {
				return err
			}
			// What was sold for the event is undone by the modules that
			// sold it; they record that work in this transaction.
			for _, c := range s.app.Cancellations() {
				if err := c.EventCancelled(tx, t, e.ID); err != nil {
					return err
				}
			}
			cancelled = true
		case moved:
			e.Version++
			ok, err := movePlacement(tx, e)
			if err != nil {
				return err
			}
			if !ok {
				bs, err := blockersOf(tx, venueID, e.StageID, e.Exclusive, e.Occupied(), e.ID)
				if err != nil {
					return err
				}
				return conflictError(v.Location(), bs)
			}
		}
		if err := saveEvent(tx, &e); err != nil {
			return err
		}
		out = viewEvent(e, v.Timezone)
		return nil
	})
	if err == nil && cancelled {
		for _, c := range s.app.Cancellations() {
			c.StartCancellation(ctx, t, id)
		}
	}
	if err == nil {
		s.app.EventsChanged(ctx, t, id)
	}
	return out, err
}

// CancellationImpact asks the modules that sell for events what cancelling
// each of these events would undo.
func (s *Service) CancellationImpact(ctx context.Context, t tenants.Tenant, ids []uuid.UUID) (map[uuid.UUID]app.CancellationImpact, error) {
	out := map[uuid.UUID]app.CancellationImpact{}
	for _, c := range s.app.Cancellations() {
		m, err := c.CancellationImpact(ctx, t, ids)
		if err != nil {
			return nil, err
		}
		for id, im := range m {
			sum := out[id]
			sum.Tickets += im.Tickets
			sum.Orders += im.Orders
			out[id] = sum
		}
	}
	return out, nil
}

// venueChanged tells the listeners of event changes that the venue's
// upcoming events changed with it (name, coordinates, timezone).
func (s *Service) venueChanged(ctx context.Context, t tenants.Tenant, venueID uuid.UUID) {
	var ids []uuid.UUID
	err := s.tx(ctx, t, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT id FROM cal_events WHERE venue_id = ? AND ends_at > now()`, venueID).Scan(&ids).Error
	})
	if err != nil {
		s.app.Log.Warn("calendar: venue change not told to listeners; their rebuild catches up", "tenant", t.Slug, "venue", venueID, "err", err)
		return
	}
	s.app.EventsChanged(ctx, t, ids...)
}
