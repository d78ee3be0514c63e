package calendar

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"marquee/app"
	"marquee/policies"
)

// Handlers read top to bottom: decode and validate, call the service,
// respond. Domain failures are *app.Error values passed to app.Fail.

func optionalID(field string, s *string) (*uuid.UUID, error) {
	if s == nil || *s == "" {
		return nil, nil
	}
	id, err := parseID(field, *s)
	if err != nil {
		return nil, err
	}
	return &id, nil
}

// ---- venues

type venueRequest struct {
	Name      *string  `json:"name"`
	Address   *string  `json:"address"`
	Timezone  *string  `json:"timezone"`
	Latitude  *float64 `json:"latitude"`
	Longitude *float64 `json:"longitude"`
	Capacity  *int     `json:"capacity"`
}

func (r venueRequest) input() VenueInput {
	return VenueInput(r)
}

func (m *Module) listVenues(c *gin.Context, _ app.None) (app.List[Venue], error) {
	vs, err := m.visibleVenues(c)
	return app.ListOf(vs), err
}

// visibleVenues lists the venues the principal may read: all of them for
// chain roles, their own for venue roles.
func (m *Module) visibleVenues(c *gin.Context) ([]Venue, error) {
	vs, err := m.svc.Venues(c.Request.Context(), app.TenantOf(c))
	if err != nil {
		return nil, err
	}
	if m.app.Can(c, ObjVenues, policies.Read) {
		return vs, nil
	}
	out := []Venue{}
	for _, v := range vs {
		if m.app.CanAtVenue(c, v.ID, ObjVenues, policies.Read) {
			out = append(out, v)
		}
	}
	return out, nil
}

func (m *Module) createVenue(c *gin.Context, req venueRequest) (Venue, error) {
	v, err := m.svc.CreateVenue(c.Request.Context(), app.TenantOf(c), req.input())
	if err == nil {
		c.Header("Location", "/api/v1/venues/"+v.ID.String())
	}
	return v, err
}

func (m *Module) getVenue(c *gin.Context, _ app.None) (Venue, error) {
	id, err := app.PathUUID(c, "venueId", "venue")
	if err != nil {
		return Venue{}, err
	}
	return m.svc.Venue(c.Request.Context(), app.TenantOf(c), id)
}

func (m *Module) updateVenue(c *gin.Context, req venueRequest) (Venue, error) {
	id, err := app.PathUUID(c, "venueId", "venue")
	if err != nil {
		return Venue{}, err
	}
	return m.svc.UpdateVenue(c.Request.Context(), app.TenantOf(c), id, req.input())
}

func (m *Module) deleteVenue(c *gin.Context, _ app.None) (app.None, error) {
	id, err := app.PathUUID(c, "venueId", "venue")
	if err != nil {
		return app.None{}, err
	}
	return app.None{}, m.svc.DeleteVenue(c.Request.Context(), app.TenantOf(c), id)
}

// ---- stages

type stageRequest struct {
	Name     *string `json:"name"`
	Capacity *int    `json:"capacity"`
	Type     *string `json:"type"`
}

func (r stageRequest) input() StageInput {
	return StageInput{Name: r.Name, Capacity: r.Capacity, Kind: r.Type}
}

func (m *Module) listStages(c *gin.Context, _ app.None) (app.List[Stage], error) {
	vid, err := app.PathUUID(c, "venueId", "venue")
	if err != nil {
		return app.List[Stage]{}, err
	}
	ss, err := m.svc.Stages(c.Request.Context(), app.TenantOf(c), vid)
	return app.ListOf(ss), err
}

func (m *Module) createStage(c *gin.Context, req stageRequest) (Stage, error) {
	vid, err := app.PathUUID(c, "venueId", "venue")
	if err != nil {
		return Stage{}, err
	}
	st, err := m.svc.CreateStage(c.Request.Context(), app.TenantOf(c), vid, req.input())
	if err == nil {
		c.Header("Location", fmt.Sprintf("/api/v1/venues/%s/stages/%s", vid, st.ID))
	}
	return st, err
}

func (m *Module) getStage(c *gin.Context, _ app.None) (Stage, error) {
	vid, sid, err := stagePath(c)
	if err != nil {
		return Stage{}, err
	}
	return m.svc.Stage(c.Request.Context(), app.TenantOf(c), vid, sid)
}

// stagePath reads /venues/:venueId/stages/:stageId.
func stagePath(c *gin.Context) (venue, stage uuid.UUID, err error) {
	if venue, err = app.PathUUID(c, "venueId", "venue"); err != nil {
		return
	}
	stage, err = app.PathUUID(c, "stageId", "stage")
	return
}

func (m *Module) updateStage(c *gin.Context, req stageRequest) (Stage, error) {
	vid, sid, err := stagePath(c)
	if err != nil {
		return Stage{}, err
	}
	return m.svc.UpdateStage(c.Request.Context(), app.TenantOf(c), vid, sid, req.input())
}

func (m *Module) deleteStage(c *gin.Context, _ app.None) (app.None, error) {
	vid, sid, err := stagePath(c)
	if err != nil {
		return app.None{}, err
	}
	return app.None{}, m.svc.DeleteStage(c.Request.Context(), app.TenantOf(c), vid, sid)
}

// ---- events

type eventRequest struct {
	StageID         *string `json:"stage_id"`
	Exclusive       bool    `json:"exclusive"`
	Title           string  `json:"title"`
	Category        string  `json:"category"`
	Status          string  `json:"status"`
	PromoterID      *string `json:"promoter_id"`
	Promoter        string  `json:"promoter"`
	StartsAt        string  `json:"starts_at"`
	EndsAt          string  `json:"ends_at"`
	SetupMinutes    int     `json:"setup_minutes"`
	TeardownMinutes int     `json:"teardown_minutes"`
	saleRequest
}

// saleRequest is an event's on-sale schedule in a request: on_sale_at, and
// a presale window with its code. Sent in a change, these fields go
// together: any of them replaces the whole schedule ("" or absent: none).
type saleRequest struct {
	OnSaleAt        *string `json:"on_sale_at"`
	PresaleStartsAt *string `json:"presale_starts_at"`
	PresaleEndsAt   *string `json:"presale_ends_at"`
	PresaleCode     *string `json:"presale_code"`
}

func (r saleRequest) given() bool {
	return r.OnSaleAt != nil || r.PresaleStartsAt != nil || r.PresaleEndsAt != nil || r.PresaleCode != nil
}

func (r saleRequest) schedule() (SaleSchedule, error) {
	var s SaleSchedule
	for _, f := range []struct {
		name string
		src  *string
		dst  **time.Time
	}{{"on_sale_at", r.OnSaleAt, &s.OnSaleAt}, {"presale_starts_at", r.PresaleStartsAt, &s.PresaleStartsAt},
		{"presale_ends_at", r.PresaleEndsAt, &s.PresaleEndsAt}} {
		if f.src != nil && *f.src != "" {
			t, err := parseInstant(f.name, *f.src)
			if err != nil {
				return s, err
			}
			*f.dst = &t
		}
	}
	if r.PresaleCode != nil && *r.PresaleCode != "" {
		code := *r.PresaleCode
		s.PresaleCode = &code
	}
	return s, nil
}

func (r eventRequest) input() (EventInput, error) {
	in := EventInput{Exclusive: r.Exclusive, Title: r.Title, Category: r.Category, Status: Status(r.Status),
		SetupMinutes: r.SetupMinutes, TeardownMinutes: r.TeardownMinutes, Promoter: r.Promoter}
	var err error
	if in.Schedule, err = r.schedule(); err != nil {
		return in, err
	}
	if in.StageID, err = optionalID("stage_id", r.StageID); err != nil {
		return in, err
	}
	if in.PromoterID, err = optionalID("promoter_id", r.PromoterID); err != nil {
		return in, err
	}
	if in.StartsAt, err = parseInstant("starts_at", r.StartsAt); err != nil {
		return in, err
	}
	in.EndsAt, err = parseInstant("ends_at", r.EndsAt)
	return in, err
}

// idempotencyKey reads a POST's optional Idempotency-Key (see app.Once).
func idempotencyKey(c *gin.Context, req any) (*app.IdempotencyKey, error) {
	return app.KeyFrom(c, req, "", false)
}

// created sets the headers of a creation's answer (201, or its replay).
func created(c *gin.Context, location string, replayed bool) {
	c.Header("Location", location)
	if replayed {
		c.Header("Idempotent-Replayed", "true")
	}
}

func (m *Module) createEvent(c *gin.Context, req eventRequest) (EventView, error) {
	vid, err := app.PathUUID(c, "venueId", "venue")
	if err != nil {
		return EventView{}, err
	}
	in, err := req.input()
	if err != nil {
		return EventView{}, err
	}
	key, err := idempotencyKey(c, req)
	if err != nil {
		return EventView{}, err
	}
	ev, replayed, err := m.svc.CreateEvent(c.Request.Context(), app.TenantOf(c), vid, in, key)
	if err == nil {
		created(c, fmt.Sprintf("/api/v1/venues/%s/events/%s", vid, ev.ID), replayed)
	}
	return ev, err
}

func (m *Module) getEvent(c *gin.Context, _ app.None) (EventView, error) {
	vid, eid, err := eventPath(c)
	if err != nil {
		return EventView{}, err
	}
	return m.svc.Event(c.Request.Context(), app.TenantOf(c), vid, eid)
}

// eventPath reads /venues/:venueId/events/:eventId.
func eventPath(c *gin.Context) (venue, event uuid.UUID, err error) {
	if venue, err = app.PathUUID(c, "venueId", "venue"); err != nil {
		return
	}
	event, err = app.PathUUID(c, "eventId", "event")
	return
}

// cursors are opaque to clients: the (starts_at, id) of the last item.
func encodeCursor(startsAt time.Time, id uuid.UUID) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(startsAt.UnixMicro(), 10) + "_" + id.String()))
}

func decodeCursor(s string) (time.Time, uuid.UUID, error) {
	bad := app.InvalidField("invalid_cursor", "after", "after must be a cursor returned by this list")
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return time.Time{}, uuid.Nil, bad
	}
	us, idText, found := strings.Cut(string(raw), "_")
	n, err := strconv.ParseInt(us, 10, 64)
	if !found || err != nil {
		return time.Time{}, uuid.Nil, bad
	}
	id, err := uuid.Parse(idText)
	if err != nil {
		return time.Time{}, uuid.Nil, bad
	}
	return time.UnixMicro(n).UTC(), id, nil
}

func (m *Module) listEvents(c *gin.Context, _ app.None) (app.Page[EventView], error) {
	vid, err := app.PathUUID(c, "venueId", "venue")
	if err != nil {
		return app.Page[EventView]{}, err
	}
	f, err := eventFilter(c)
	if err != nil {
		return app.Page[EventView]{}, err
	}
	page, err := m.svc.Events(c.Request.Context(), app.TenantOf(c), vid, f)
	out := app.Page[EventView]{Items: app.NonNil(page.Items)}
	if page.Next != nil {
		out.Next = encodeCursor(page.Next.StartsAt, page.Next.ID)
	}
	return out, err
}

// eventFilter reads the list's query: limit, after, status, from, to.
func eventFilter(c *gin.Context) (EventFilter, error) {
	f := EventFilter{Limit: 50}
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 200 {
			return f, app.InvalidField("invalid_limit", "limit", "limit must be an integer from 1 to 200")
		}
		f.Limit = n
	}
	if v := c.Query("after"); v != "" {
		at, id, err := decodeCursor(v)
		if err != nil {
			return f, err
		}
		f.AfterStart, f.AfterID, f.HasCursor = at, id, true
	}
	if v := c.Query("status"); v != "" {
		if !ValidStatus(Status(v)) {
			return f, invalid("status", "unknown status %q", v)
		}
		f.Status = Status(v)
	}
	for _, q := range []struct {
		name string
		dst  **time.Time
	}{{"from", &f.From}, {"to", &f.To}} {
		if v := c.Query(q.name); v != "" {
			t, err := parseInstant(q.name, v)
			if err != nil {
				return f, err
			}
			*q.dst = &t
		}
	}
	return f, nil
}

type eventPatchRequest struct {
	StageID         *string `json:"stage_id"`
	Exclusive       *bool   `json:"exclusive"`
	Title           *string `json:"title"`
	Category        *string `json:"category"`
	Status          *string `json:"status"`
	PromoterID      *string `json:"promoter_id"` // "" removes the promoter
	Promoter        *string `json:"promoter"`    // the promoter as billed; "" removes it
	StartsAt        *string `json:"starts_at"`
	EndsAt          *string `json:"ends_at"`
	SetupMinutes    *int    `json:"setup_minutes"`
	TeardownMinutes *int    `json:"teardown_minutes"`
	Version         *int    `json:"version"` // optional: refuse the change if the event moved on
	saleRequest
}

func (r eventPatchRequest) patch() (EventPatch, error) {
	p := EventPatch{Exclusive: r.Exclusive, Title: r.Title, Category: r.Category, Promoter: r.Promoter,
		SetupMinutes: r.SetupMinutes, TeardownMinutes: r.TeardownMinutes, IfVersion: deref(r.Version)}
	if r.given() {
		s, err := r.schedule()
		if err != nil {
			return p, err
		}
		p.Schedule = &s
	}
	if r.Version != nil && *r.Version < 1 {
		return p, invalid("version", "must be a version this event had (1 or more)")
	}
	var err error
	if r.StageID != nil {
		if *r.StageID == "" {
			return p, invalid("stage_id", "must be a UUID; send exclusive: true for the whole venue")
		}
		if p.StageID, err = optionalID("stage_id", r.StageID); err != nil {
			return p, err
		}
	}
	if r.PromoterID != nil && *r.PromoterID == "" {
		p.ClearPromoter = true
	} else if p.PromoterID, err = optionalID("promoter_id", r.PromoterID); err != nil {
		return p, err
	}
	if r.Status != nil {
		s := Status(*r.Status)
		p.Status = &s
	}
	for _, f := range []struct {
		name string
		src  *string
		dst  **time.Time
	}{{"starts_at", r.StartsAt, &p.StartsAt}, {"ends_at", r.EndsAt, &p.EndsAt}} {
		if f.src != nil {
			t, err := parseInstant(f.name, *f.src)
			if err != nil {
				return p, err
			}
			*f.dst = &t
		}
	}
	return p, nil
}

func (m *Module) updateEvent(c *gin.Context, req eventPatchRequest) (EventView, error) {
	vid, eid, err := eventPath(c)
	if err != nil {
		return EventView{}, err
	}
	p, err := req.patch()
	if err != nil {
		return EventView{}, err
	}
	return m.svc.UpdateEvent(c.Request.Context(), app.TenantOf(c), vid, eid, p)
}

// ---- holds

type holdRequest struct {
	StageID         string  `json:"stage_id"`
	Title           string  `json:"title"`
	Category        string  `json:"category"`
	PromoterID      *string `json:"promoter_id"`
	Promoter        string  `json:"promoter"`
	StartsAt        string  `json:"starts_at"`
	EndsAt          string  `json:"ends_at"`
	SetupMinutes    int     `json:"setup_minutes"`
	TeardownMinutes int     `json:"teardown_minutes"`
	ExpiresAt       *string `json:"expires_at"`
}

func (r holdRequest) input() (HoldInput, error) {
	in := HoldInput{Title: r.Title, Category: r.Category, Promoter: r.Promoter, SetupMinutes: r.SetupMinutes, TeardownMinutes: r.TeardownMinutes}
	var err error
	if r.StageID == "" {
		return in, invalid("stage_id", "is required: a hold is on one stage")
	}
	if in.StageID, err = parseID("stage_id", r.StageID); err != nil {
		return in, err
	}
	if in.PromoterID, err = optionalID("promoter_id", r.PromoterID); err != nil {
		return in, err
	}
	if in.StartsAt, err = parseInstant("starts_at", r.StartsAt); err != nil {
		return in, err
	}
	if in.EndsAt, err = parseInstant("ends_at", r.EndsAt); err != nil {
		return in, err
	}
	if r.ExpiresAt != nil && *r.ExpiresAt != "" {
		t, err := parseInstant("expires_at", *r.ExpiresAt)
		if err != nil {
			return in, err
		}
		in.ExpiresAt = &t
	}
	return in, nil
}

func (m *Module) createHold(c *gin.Context, req holdRequest) (HoldView, error) {
	vid, err := app.PathUUID(c, "venueId", "venue")
	if err != nil {
		return HoldView{}, err
	}
	in, err := req.input()
	if err != nil {
		return HoldView{}, err
	}
	key, err := idempotencyKey(c, req)
	if err != nil {
		return HoldView{}, err
	}
	h, replayed, err := m.svc.CreateHold(c.Request.Context(), app.TenantOf(c), vid, in, key)
	if err == nil {
		created(c, fmt.Sprintf("/api/v1/venues/%s/holds/%s", vid, h.ID), replayed)
	}
	return h, err
}

func (m *Module) getHold(c *gin.Context, _ app.None) (HoldView, error) {
	vid, hid, err := holdPath(c)
	if err != nil {
		return HoldView{}, err
	}
	return m.svc.Hold(c.Request.Context(), app.TenantOf(c), vid, hid)
}

// holdPath reads /venues/:venueId/holds/:holdId.
func holdPath(c *gin.Context) (venue, hold uuid.UUID, err error) {
	if venue, err = app.PathUUID(c, "venueId", "venue"); err != nil {
		return
	}
	hold, err = app.PathUUID(c, "holdId", "hold")
	return
}

func (m *Module) listHolds(c *gin.Context, _ app.None) (app.List[HoldView], error) {
	vid, err := app.PathUUID(c, "venueId", "venue")
	if err != nil {
		return app.List[HoldView]{}, err
	}
	now := time.Now().UTC()
	w := Window{From: now.Add(-24 * time.Hour), To: now.Add(365 * 24 * time.Hour)}
	if err := queryWindow(c, &w, time.UTC, 400*24*time.Hour); err != nil {
		return app.List[HoldView]{}, err
	}
	hs, err := m.svc.Holds(c.Request.Context(), app.TenantOf(c), vid, w)
	return app.ListOf(hs), err
}

func (m *Module) releaseHold(c *gin.Context, _ app.None) (HoldView, error) {
	vid, hid, err := holdPath(c)
	if err != nil {
		return HoldView{}, err
	}
	return m.svc.ReleaseHold(c.Request.Context(), app.TenantOf(c), vid, hid)
}

type confirmRequest struct {
	Title    string `json:"title"`
	Category string `json:"category"`
	Status   string `json:"status"`
}

func (m *Module) confirmHold(c *gin.Context, req confirmRequest) (EventView, error) {
	vid, hid, err := holdPath(c)
	if err != nil {
		return EventView{}, err
	}
	key, err := idempotencyKey(c, req)
	if err != nil {
		return EventView{}, err
	}
	in := ConfirmInput{Title: req.Title, Category: req.Category, Status: Status(req.Status)}
	ev, replayed, err := m.svc.ConfirmHold(c.Request.Context(), app.TenantOf(c), vid, hid, in, key)
	if err == nil {
		created(c, fmt.Sprintf("/api/v1/venues/%s/events/%s", vid, ev.ID), replayed)
	}
	return ev, err
}

// ---- calendar reads

// parseBound reads a range bound: RFC 3339 with offset, or a date
// (YYYY-MM-DD) taken as midnight in loc.
func parseBound(field, s string, loc *time.Location) (time.Time, error) {
	if d, err := time.ParseInLocation("2006-01-02", s, loc); err == nil {
		return d.UTC(), nil
	}
	return parseInstant(field, s)
}

// queryWindow overrides w with the from/to query parameters and checks it.
func queryWindow(c *gin.Context, w *Window, loc *time.Location, maxLen time.Duration) error {
	length := w.To.Sub(w.From)
	var err error
	if v := c.Query("from"); v != "" {
		if w.From, err = parseBound("from", v, loc); err != nil {
			return err
		}
		w.To = w.From.Add(length)
	}
	if v := c.Query("to"); v != "" {
		if w.To, err = parseBound("to", v, loc); err != nil {
			return err
		}
	}
	if !w.To.After(w.From) {
		return invalid("to", "must be after from")
	}
	if w.To.Sub(w.From) > maxLen {
		return invalid("to", "the range covers at most %d days", int(maxLen.Hours()/24))
	}
	return nil
}

func startOfDay(t time.Time, loc *time.Location) time.Time {
	y, mo, d := t.In(loc).Date()
	return time.Date(y, mo, d, 0, 0, 0, 0, loc)
}

func (m *Module) venueCalendar(c *gin.Context, _ app.None) (VenueCalendar, error) {
	vid, err := app.PathUUID(c, "venueId", "venue")
	if err != nil {
		return VenueCalendar{}, err
	}
	ctx, t := c.Request.Context(), app.TenantOf(c)
	v, err := m.svc.Venue(ctx, t, vid)
	if err != nil {
		return VenueCalendar{}, err
	}
	loc := v.Location()
	from := startOfDay(time.Now(), loc)
	w := Window{From: from.UTC(), To: from.AddDate(0, 0, 7).UTC()}
	if err := queryWindow(c, &w, loc, MaxCalendarRange); err != nil {
		return VenueCalendar{}, err
	}
	cals, err := m.svc.Calendar(ctx, t, []uuid.UUID{vid}, w)
	if err != nil {
		return VenueCalendar{}, err
	}
	if !m.app.CanAtVenue(c, vid, ObjHolds, policies.Read) {
		withoutHolds(&cals[0])
	}
	return cals[0], nil
}

// ChainCalendar is every venue's calendar over one range.
type ChainCalendar struct {
	From   time.Time       `json:"from"`
	To     time.Time       `json:"to"`
	Venues []VenueCalendar `json:"venues"`
}

func (m *Module) chainCalendar(c *gin.Context, _ app.None) (ChainCalendar, error) {
	from := startOfDay(time.Now(), time.UTC)
	w := Window{From: from, To: from.AddDate(0, 0, 7)}
	if err := queryWindow(c, &w, time.UTC, MaxCalendarRange); err != nil {
		return ChainCalendar{}, err
	}
	cals, err := m.svc.Calendar(c.Request.Context(), app.TenantOf(c), nil, w)
	if err != nil {
		return ChainCalendar{}, err
	}
	if !m.app.Can(c, ObjHolds, policies.Read) {
		for i := range cals {
			withoutHolds(&cals[i])
		}
	}
	return ChainCalendar{From: w.From.UTC(), To: w.To.UTC(), Venues: app.NonNil(cals)}, nil
}

// withoutHolds strips holds from a calendar read by someone who may see the
// schedule but not the tentative bookings.
func withoutHolds(vc *VenueCalendar) {
	for i := range vc.Stages {
		vc.Stages[i].Holds = []HoldView{}
	}
}

type challengeRequest struct {
	RespondWithinHours int `json:"respond_within_hours"` // 1 to 336; 48 when absent
}

func (m *Module) challengeHold(c *gin.Context, req challengeRequest) (ChallengeView, error) {
	vid, hid, err := holdPath(c)
	if err != nil {
		return ChallengeView{}, err
	}
	if req.RespondWithinHours < 0 || req.RespondWithinHours > int(MaxChallengeWindow.Hours()) {
		return ChallengeView{}, invalid("respond_within_hours", "must be 1 to %d hours", int(MaxChallengeWindow.Hours()))
	}
	return m.svc.ChallengeHold(c.Request.Context(), app.TenantOf(c), vid, hid, time.Duration(req.RespondWithinHours)*time.Hour)
}
