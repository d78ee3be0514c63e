package calendar

import (
	"context"
	"html/template"
	"net/http"
	"time"

	"gorm.io/gorm"

	"marquee/app"
	"marquee/jobs"
	"marquee/policies"
)

// Module is the calendar feature module.
type Module struct {
	app   *app.Core
	svc   *Service
	pages *template.Template
}

// New returns the calendar module, ready to register.
func New() *Module { return &Module{} }

// Name implements app.Module.
func (m *Module) Name() string { return "calendar" }

// Service returns the calendar's service (after Register).
func (m *Module) Service() *Service { return m.svc }

// Objects the calendar's permissions are about, in its namespace calendar.*
// (named venues, events, holds before control migration 00070).
const (
	ObjVenues = "calendar.venues" // venues and their stages
	ObjEvents = "calendar.events" // events and calendar reads
	ObjHolds  = "calendar.holds"  // tentative holds
)

// grants are the default permissions of each role. Creating and deleting
// venues is checked chain-wide, so only owners (who hold "*") and chain
// admins can; editing a venue and its stages is checked at the venue, so a
// venue manager can do it at the venues assigned to them only.
func grants() []policies.Grant {
	var g []policies.Grant
	add := func(object, action string, roles ...string) {
		for _, r := range roles {
			g = append(g, policies.Grant{Role: r, Object: object, Action: action})
		}
	}
	readers := []string{policies.RoleChainAdmin, policies.RoleFinance, policies.RolePromoter, policies.RoleVenueManager,
		policies.RoleBoxOffice, policies.RoleOpsLead, policies.RoleSecurityLead, policies.RoleDoorStaff, policies.RoleSupport}
	add(ObjVenues, policies.Read, readers...)
	add(ObjEvents, policies.Read, readers...)
	add(ObjHolds, policies.Read, policies.RoleChainAdmin, policies.RoleFinance, policies.RolePromoter, policies.RoleVenueManager,
		policies.RoleBoxOffice, policies.RoleSupport)
	add(ObjVenues, policies.Write, policies.RoleChainAdmin, policies.RoleVenueManager, policies.RoleSupport)
	add(ObjEvents, policies.Write, policies.RoleChainAdmin, policies.RolePromoter, policies.RoleVenueManager, policies.RoleSupport)
	add(ObjHolds, policies.Write, policies.RoleChainAdmin, policies.RolePromoter, policies.RoleVenueManager, policies.RoleSupport)
	return g
}

// Register implements app.Module.
func (m *Module) Register(r *app.Registrar) error {
	m.app = r.Core()
	m.svc = NewService(m.app)
	pages, err := parsePages()
	if err != nil {
		return err
	}
	m.pages = pages
	r.ProvideVenues(m.svc)
	r.ProvideEvents(directory{m.svc})
	r.ProvideHolds(holdBook{m.svc})
	r.Grants(grants()...)
	r.Usage("Venues", func(ctx context.Context, tx *gorm.DB, _ time.Time) (n int64, err error) {
		return n, tx.Raw("SELECT count(*) FROM cal_venues").Scan(&n).Error
	})
	r.Usage("Events", func(ctx context.Context, tx *gorm.DB, _ time.Time) (n int64, err error) {
		return n, tx.Raw("SELECT count(*) FROM cal_events").Scan(&n).Error
	})

	const v = "venueId"
	atVenue := func(obj, act string) app.Permission { return app.RequireAtVenue(obj, act, v) }
	read, write := policies.Read, policies.Write

	r.API(http.MethodGet, "/venues", app.SignedIn(), "List the venues you may see", app.Handle(m.listVenues))
	r.API(http.MethodPost, "/venues", app.Require(ObjVenues, write), "Create a venue", app.Handle(m.createVenue).Created())
	r.API(http.MethodGet, "/venues/:venueId", atVenue(ObjVenues, read), "Read a venue", app.Handle(m.getVenue))
	r.API(http.MethodPatch, "/venues/:venueId", atVenue(ObjVenues, write), "Change a venue", app.Handle(m.updateVenue))
	r.API(http.MethodDelete, "/venues/:venueId", app.Require(ObjVenues, write), "Delete a venue without events", app.Handle(m.deleteVenue))

	r.API(http.MethodGet, "/venues/:venueId/stages", atVenue(ObjVenues, read), "List a venue's stages", app.Handle(m.listStages))
	r.API(http.MethodPost, "/venues/:venueId/stages", atVenue(ObjVenues, write), "Add a stage", app.Handle(m.createStage).Created())
	r.API(http.MethodGet, "/venues/:venueId/stages/:stageId", atVenue(ObjVenues, read), "Read a stage", app.Handle(m.getStage))
	r.API(http.MethodPatch, "/venues/:venueId/stages/:stageId", atVenue(ObjVenues, write), "Change a stage", app.Handle(m.updateStage))
	r.API(http.MethodDelete, "/venues/:venueId/stages/:stageId", atVenue(ObjVenues, write), "Delete a stage without events", app.Handle(m.deleteStage))

	r.API(http.MethodGet, "/venues/:venueId/events", atVenue(ObjEvents, read), "List a venue's events (cursor pagination)", app.Handle(m.listEvents).Query("after", "cursor").Query("limit", "1 to 200 (50)").Query("status", "").Query("from", "RFC 3339").Query("to", "RFC 3339"))
	r.API(http.MethodPost, "/venues/:venueId/events", atVenue(ObjEvents, write), "Book an event (409 schedule_conflict if the window is taken; Idempotency-Key honoured)", app.Handle(m.createEvent).Created())
	r.API(http.MethodGet, "/venues/:venueId/events/:eventId", atVenue(ObjEvents, read), "Read an event", app.Handle(m.getEvent))
	r.API(http.MethodPatch, "/venues/:venueId/events/:eventId", atVenue(ObjEvents, write), "Move, change or change the status of an event", app.Handle(m.updateEvent))

	r.API(http.MethodGet, "/venues/:venueId/holds", atVenue(ObjHolds, read), "List live holds with their ranks", app.Handle(m.listHolds).Query("from", "").Query("to", ""))
	r.API(http.MethodPost, "/venues/:venueId/holds", atVenue(ObjHolds, write), "Place a tentative hold (Idempotency-Key honoured)", app.Handle(m.createHold).Created())
	r.API(http.MethodGet, "/venues/:venueId/holds/:holdId", atVenue(ObjHolds, read), "Read a hold and its rank", app.Handle(m.getHold))
	r.API(http.MethodDelete, "/venues/:venueId/holds/:holdId", atVenue(ObjHolds, write), "Release a hold", app.Handle(m.releaseHold))
	r.API(http.MethodPost, "/venues/:venueId/holds/:holdId/release", atVenue(ObjHolds, write), "Release a hold", app.Handle(m.releaseHold)).NoBody()
	r.API(http.MethodPost, "/venues/:venueId/holds/:holdId/confirm", atVenue(ObjEvents, write), "Turn a hold into an event (Idempotency-Key honoured; 409 hold_outranked while a live hold ranks ahead)", app.Handle(m.confirmHold).Created().OptionalBody())
	r.API(http.MethodPost, "/venues/:venueId/holds/:holdId/challenge", atVenue(ObjHolds, write), "Challenge the holds ranking ahead: each must confirm or release by a deadline (48 h unless respond_within_hours), or is released", app.Handle(m.challengeHold).OptionalBody())

	r.API(http.MethodGet, "/venues/:venueId/calendar", atVenue(ObjEvents, read), "A venue's events and holds per stage in a range (at most 92 days)", app.Handle(m.venueCalendar).Query("from", "RFC 3339 or a date in the venue's zone").Query("to", ""))
	r.API(http.MethodGet, "/calendar", app.Require(ObjEvents, read), "Every venue's events and holds in a range (chain roles)", app.Handle(m.chainCalendar).Query("from", "RFC 3339 or a date (UTC)").Query("to", ""))

	r.Portal(http.MethodGet, "/venues", app.SignedIn(), m.venuesPage)
	r.Portal(http.MethodGet, "/calendar", app.SignedIn(), m.calendarHome)
	r.Portal(http.MethodGet, "/venues/:venueId/calendar", atVenue(ObjEvents, read), m.calendarPage)
	r.Portal(http.MethodPost, "/venues/:venueId/events", atVenue(ObjEvents, write), m.portalCreateEvent)
	r.Portal(http.MethodGet, "/venues/:venueId/events/:eventId", atVenue(ObjEvents, read), m.eventPage)
	r.Portal(http.MethodPost, "/venues/:venueId/events/:eventId", atVenue(ObjEvents, write), m.portalUpdateEvent)
	r.Portal(http.MethodPost, "/venues/:venueId/events/:eventId/cancel", atVenue(ObjEvents, write), m.portalCancelEvent)
	r.Portal(http.MethodPost, "/venues/:venueId/holds", atVenue(ObjHolds, write), m.portalCreateHold)
	r.Portal(http.MethodPost, "/venues/:venueId/holds/:holdId/release", atVenue(ObjHolds, write), m.portalReleaseHold)
	r.Portal(http.MethodPost, "/venues/:venueId/holds/:holdId/confirm", atVenue(ObjEvents, write), m.portalConfirmHold)
	r.Portal(http.MethodPost, "/venues/:venueId/holds/:holdId/challenge", atVenue(ObjHolds, write), m.portalChallengeHold)
	r.Portal(http.MethodPost, "/venues/:venueId/events/:eventId/move", atVenue(ObjEvents, write), m.portalMoveEvent)
	r.Portal(http.MethodPost, "/venues/:venueId/stages", atVenue(ObjVenues, write), m.portalCreateStage)
	r.Portal(http.MethodPost, "/venues", app.Require(ObjVenues, write), m.portalCreateVenue)
	r.Nav("Venues", "/portal/venues", 10, atVenue(ObjVenues, read))
	r.Nav("Calendar", "/portal/calendar", 11, atVenue(ObjEvents, read))

	r.Task(TaskHoldExpire, m.expireTask)
	r.Task(TaskHoldSweep, m.sweepTask)
	r.Task(TaskChallengeLapse, m.lapseTask)
	r.Every(jobs.Periodic{Cron: "* * * * *", Type: TaskHoldSweep, Queue: jobs.QueueCritical, Bucket: time.Minute})
	r.Seed(m.seed)
	return nil
}
