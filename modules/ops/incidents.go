package ops

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/tenants"
)

// Incident is something staff reported during a show, with its handling.
type Incident struct {
	ID             uuid.UUID  `json:"id"`
	EventID        uuid.UUID  `json:"event_id"`
	Category       string     `json:"category"`
	Severity       string     `json:"severity"`
	Zone           string     `json:"zone"`
	Location       string     `json:"location"`
	Description    string     `json:"description"`
	Confidential   bool       `json:"confidential"`
	Status         string     `json:"status"` // open, acknowledged, resolved
	ReporterID     *uuid.UUID `json:"reporter_id,omitempty"`
	AssigneeID     *uuid.UUID `json:"assignee_id,omitempty"`
	ReportedAt     time.Time  `json:"reported_at"`
	AcknowledgedAt *time.Time `json:"acknowledged_at,omitempty"`
	ResolvedAt     *time.Time `json:"resolved_at,omitempty"`
	// Redacted: the incident is confidential and the caller may not read
	// it in full (description and notes are withheld).
	Redacted bool            `json:"redacted"`
	Timeline []TimelineEntry `json:"timeline,omitempty" gorm:"-"`
	// Photos attached (withheld, like the description, when redacted).
	Photos []Photo `json:"photos" gorm:"-"`
}

// TimelineEntry is one step of an incident's history; entries are only
// ever appended (the database refuses changes).
type TimelineEntry struct {
	ID      int64      `json:"id"`
	At      time.Time  `json:"at"`
	ActorID *uuid.UUID `json:"actor_id,omitempty"`
	Kind    string     `json:"kind"` // reported, acknowledged, assigned, note, resolved
	Body    string     `json:"body"`
}

// IncidentInput reports an incident.
type IncidentInput struct {
	Category     string `json:"category"`
	Severity     string `json:"severity"`
	Zone         string `json:"zone"`
	Location     string `json:"location"`
	Description  string `json:"description"`
	Confidential bool   `json:"confidential"`
}

var (
	incidentCategories = []string{"medical", "security", "crowd", "fire", "facilities", "guest_services", "other"}
	severities         = []string{"low", "medium", "high", "critical"}
)

// Validate implements app.Validator.
func (in IncidentInput) Validate() error {
	switch {
	case !slices.Contains(incidentCategories, in.Category):
		return app.InvalidField("invalid_category", "category", "category is one of %s", strings.Join(incidentCategories, ", "))
	case !slices.Contains(severities, in.Severity):
		return app.InvalidField("invalid_request", "severity", "severity is low, medium, high or critical")
	case len(in.Zone) > 80:
		return app.InvalidField("invalid_request", "zone", "zone is at most 80 characters")
	case len(in.Location) > 200:
		return app.InvalidField("invalid_request", "location", "location is at most 200 characters")
	case strings.TrimSpace(in.Description) == "" || len(in.Description) > 4000:
		return app.InvalidField("invalid_request", "description", "description is 1 to 4,000 characters")
	}
	return nil
}

const incidentColumns = `id, event_id, category, severity, zone, location, description, confidential, status, reporter_id, assignee_id,
	reported_at, acknowledged_at, resolved_at`

// redact withholds what a confidential incident says from those who may
// not read it in full.
func redact(i Incident, full bool) Incident {
	if i.Confidential && !full {
		i.Description, i.Redacted, i.Photos = "(confidential)", true, []Photo{}
		for k := range i.Timeline {
			if i.Timeline[k].Kind == "note" || i.Timeline[k].Kind == "resolved" || i.Timeline[k].Kind == "reported" || i.Timeline[k].Kind == "photo" {
				i.Timeline[k].Body = "(confidential)"
			}
		}
	}
	return i
}

// ReportIncident records an incident, mails the venue's incident contacts
// in the same transaction, and tells the event's dashboards.
func (s *Service) ReportIncident(ctx context.Context, t tenants.Tenant, ev app.EventInfo, reporter *uuid.UUID, in IncidentInput) (Incident, error) {
	if err := in.Validate(); err != nil {
		return Incident{}, err
	}
	now := s.app.Now().UTC().Truncate(time.Microsecond)
	inc := Incident{ID: newID(), EventID: ev.ID, Category: in.Category, Severity: in.Severity, Zone: in.Zone, Location: in.Location,
		Description: in.Description, Confidential: in.Confidential, Status: "open", ReporterID: reporter, ReportedAt: now}
	var mails []uuid.UUID
	err := s.tx(ctx, t, func(tx *gorm.DB) error {
		if err := tx.Exec(`INSERT INTO ops_incidents (id, event_id, venue_id, category, severity, zone, location, description, confidential, reporter_id, reported_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, inc.ID, ev.ID, ev.VenueID, in.Category, in.Severity, in.Zone, in.Location, in.Description,
			in.Confidential, reporter, now).Error; err != nil {
			return err
		}
		if err := appendTimeline(tx, inc.ID, now, reporter, "reported", in.Description); err != nil {
			return err
		}
		var err error
		mails, err = s.queueIncidentMail(tx, t, ev, inc)
		return err
	})
	if err != nil {
		return Incident{}, err
	}
	s.app.Mail.Dispatch(ctx, t, mails...)
	inc, err = s.Incident(ctx, t, ev.ID, inc.ID)
	if err == nil {
		// Viewers all get the redacted form; those allowed re-read it whole.
		s.publish(ctx, t, ev.ID, "incident", redact(withoutTimeline(inc), false))
	}
	return inc, err
}

func withoutTimeline(i Incident) Incident { i.Timeline = nil; return i }

func appendTimeline(tx *gorm.DB, incident uuid.UUID, at time.Time, actor *uuid.UUID, kind, body string) error {
	return tx.Exec(`INSERT INTO ops_incident_timeline (incident_id, at, actor_id, kind, body) VALUES (?, ?, ?, ?, ?)`, incident, at, actor, kind, body).Error
}

// Incidents lists an event's incidents, newest first (status filters).
func (s *Service) Incidents(ctx context.Context, t tenants.Tenant, event uuid.UUID, status string) ([]Incident, error) {
	var out []Incident
	err := s.tx(ctx, t, func(tx *gorm.DB) error {
		q := `SELECT ` + incidentColumns + ` FROM ops_incidents WHERE event_id = ?`
		args := []any{event}
		if status != "" {
			q, args = q+` AND status = ?`, append(args, status)
		}
		if err := tx.Raw(q+` ORDER BY reported_at DESC, id DESC LIMIT 500`, args...).Scan(&out).Error; err != nil {
			return err
		}
		ids := make([]uuid.UUID, len(out))
		for i := range out {
			ids[i] = out[i].ID
		}
		photos, err := photosOf(tx, event, ids)
		for i := range out {
			out[i].Photos = app.NonNil(photos[out[i].ID])
		}
		return err
	})
	return app.NonNil(out), err
}

// Incident reads one incident of an event with its timeline.
func (s *Service) Incident(ctx context.Context, t tenants.Tenant, event, id uuid.UUID) (Incident, error) {
	var out []Incident
	var tl []TimelineEntry
	var photos map[uuid.UUID][]Photo
	err := s.tx(ctx, t, func(tx *gorm.DB) error {
		if err := tx.Raw(`SELECT `+incidentColumns+` FROM ops_incidents WHERE event_id = ? AND id = ?`, event, id).Scan(&out).Error; err != nil {
			return err
		}
		if err := tx.Raw(`SELECT id, at, actor_id, kind, body FROM ops_incident_timeline WHERE incident_id = ? ORDER BY id`, id).Scan(&tl).Error; err != nil {
			return err
		}
		var err error
		photos, err = photosOf(tx, event, []uuid.UUID{id})
		return err
	})
	if err != nil {
		return Incident{}, err
	}
	if len(out) == 0 {
		return Incident{}, app.NotFound("incident")
	}
	out[0].Timeline = app.NonNil(tl)
	out[0].Photos = app.NonNil(photos[id])
	return out[0], nil
}

// IncidentChange is one step of handling: acknowledge, assign, note, resolve.
type IncidentChange struct {
	Kind     string
	Actor    *uuid.UUID
	Assignee *uuid.UUID
	Body     string
}

// ChangeIncident appends a step to an incident's timeline and moves its
// status; a resolved incident takes nothing more. The status moves with a
// conditional UPDATE, so two people resolving at once resolve it once.
func (s *Service) ChangeIncident(ctx context.Context, t tenants.Tenant, event, id uuid.UUID, ch IncidentChange) (Incident, error) {
	if len(ch.Body) > 4000 {
		return Incident{}, app.InvalidField("invalid_request", "text", "text is at most 4,000 characters")
	}
	if ch.Kind == "note" && strings.TrimSpace(ch.Body) == "" {
		return Incident{}, app.InvalidField("invalid_request", "text", "a note has text")
	}
	if ch.Assignee != nil {
		if _, err := s.app.UserByID(ctx, t, *ch.Assignee); err != nil {
			return Incident{}, app.InvalidField("unknown_user", "user_id", "user_id names no user of this chain")
		}
	}
	now := s.app.Now().UTC().Truncate(time.Microsecond)
	err := s.tx(ctx, t, func(tx *gorm.DB) error {
		var set string
		var args []any
		switch ch.Kind {
		case "acknowledged":
			set = `status = CASE WHEN status = 'open' THEN 'acknowledged' ELSE status END, acknowledged_at = coalesce(acknowledged_at, ?)`
			args = []any{now}
		case "assigned":
			set, args = `assignee_id = ?`, []any{ch.Assignee}
		case "resolved":
			set, args = `status = 'resolved', resolved_at = ?, acknowledged_at = coalesce(acknowledged_at, ?)`, []any{now, now}
		case "note":
			set = `status = status`
		}
		q := tx.Exec(`UPDATE ops_incidents SET `+set+` WHERE event_id = ? AND id = ? AND status <> 'resolved'`, append(args, event, id)...)
		if q.Error != nil {
			return q.Error
		}
		if q.RowsAffected == 0 {
			var n int64
			if err := tx.Raw(`SELECT count(*) FROM ops_incidents WHERE event_id = ? AND id = ?`, event, id).Scan(&n).Error; err != nil {
				return err
			}
			if n == 0 {
				return app.NotFound("incident")
			}
			return app.Conflict("incident_resolved", "the incident is resolved; its timeline is closed")
		}
		body := ch.Body
		if ch.Kind == "assigned" {
			body = ch.Assignee.String()
		}
		return appendTimeline(tx, id, now, ch.Actor, ch.Kind, body)
	})
	if err != nil {
		return Incident{}, err
	}
	inc, err := s.Incident(ctx, t, event, id)
	if err == nil {
		s.publish(ctx, t, event, "incident", redact(withoutTimeline(inc), false))
	}
	return inc, err
}

// IncidentSummary counts an event's incidents by status.
type IncidentSummary struct {
	Open         int        `json:"open"`
	Acknowledged int        `json:"acknowledged"`
	Resolved     int        `json:"resolved"`
	Recent       []Incident `json:"recent"`
}
