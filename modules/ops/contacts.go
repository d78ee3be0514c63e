package ops

import (
	"context"
	"fmt"
	"net/mail"
	"strings"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/tenants"
)

// Contact is an address ops mails: capacity alerts, incident broadcasts or
// both, for every venue of the chain (VenueID nil) or one venue's events.
// The mail goes through the core's outbox, queued in the transaction of
// what it tells.
type Contact struct {
	ID        uuid.UUID  `json:"id"`
	VenueID   *uuid.UUID `json:"venue_id,omitempty"`
	Email     string     `json:"email"`
	Name      string     `json:"name"`
	Alerts    bool       `json:"alerts"`
	Incidents bool       `json:"incidents"`
}

// ContactInput is one contact of the list PUT replaces.
type ContactInput struct {
	VenueID *uuid.UUID `json:"venue_id,omitempty"`
	Email   string     `json:"email"`
	Name    string     `json:"name"`
	// Alerts and Incidents say what the contact is sent (both by default).
	Alerts    *bool `json:"alerts,omitempty"`
	Incidents *bool `json:"incidents,omitempty"`
}

const maxContacts = 200

// Mail kinds ops queues in the core's outbox.
const (
	MailCapacityAlert = "ops.capacity_alert"
	MailIncident      = "ops.incident"
)

// SetContacts replaces the chain's contacts. Everything is checked before
// anything is written.
func (s *Service) SetContacts(ctx context.Context, t tenants.Tenant, in []ContactInput) ([]Contact, error) {
	if len(in) > maxContacts {
		return nil, app.InvalidField("invalid_ops_contacts", "contacts", "at most %d contacts", maxContacts)
	}
	out := make([]Contact, 0, len(in))
	seen := map[string]bool{}
	for i, c := range in {
		field := fmt.Sprintf("contacts[%d]", i)
		addr, err := mail.ParseAddress(c.Email)
		if err != nil || addr.Address != c.Email || len(c.Email) > 254 {
			return nil, app.InvalidField("invalid_ops_contacts", field+".email", "email is not a valid address")
		}
		if len(c.Name) > 200 || strings.TrimSpace(c.Name) != c.Name {
			return nil, app.InvalidField("invalid_ops_contacts", field+".name", "name is at most 200 characters, without surrounding spaces")
		}
		scope := ""
		if c.VenueID != nil {
			scope = c.VenueID.String()
			if v := s.app.Venues(); v != nil {
				ok, err := v.VenueExists(ctx, t, *c.VenueID)
				if err != nil {
					return nil, err
				}
				if !ok {
					return nil, app.InvalidField("invalid_ops_contacts", field+".venue_id", "venue_id names no venue of this chain")
				}
			}
		}
		email := strings.ToLower(c.Email)
		if seen[scope+"/"+email] {
			return nil, app.InvalidField("invalid_ops_contacts", field+".email", "%s is listed twice for the same venue", email)
		}
		seen[scope+"/"+email] = true
		alerts, incidents := c.Alerts == nil || *c.Alerts, c.Incidents == nil || *c.Incidents
		if !alerts && !incidents {
			return nil, app.InvalidField("invalid_ops_contacts", field, "a contact receives alerts, incidents or both")
		}
		out = append(out, Contact{ID: newID(), VenueID: c.VenueID, Email: email, Name: c.Name, Alerts: alerts, Incidents: incidents})
	}
	err := s.tx(ctx, t, func(tx *gorm.DB) error {
		if err := tx.Exec(`DELETE FROM ops_contacts`).Error; err != nil {
			return err
		}
		for _, c := range out {
			if err := tx.Exec(`INSERT INTO ops_contacts (id, venue_id, email, name, alerts, incidents) VALUES (?, ?, ?, ?, ?, ?)`,
				c.ID, c.VenueID, c.Email, c.Name, c.Alerts, c.Incidents).Error; err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

// Contacts lists the chain's contacts.
func (s *Service) Contacts(ctx context.Context, t tenants.Tenant) ([]Contact, error) {
	var out []Contact
	err := s.app.TxWith(ctx, t, tenants.TxOptions{ReadOnly: true}, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT id, venue_id, email, name, alerts, incidents FROM ops_contacts ORDER BY venue_id NULLS FIRST, email`).Scan(&out).Error
	})
	return app.NonNil(out), err
}

// recipients are the addresses told of one kind of news at a venue, each
// once (a chain-wide contact also listed for the venue gets one mail).
func recipients(tx *gorm.DB, venue uuid.UUID, kind string) ([]Contact, error) {
	col := "alerts"
	if kind == MailIncident {
		col = "incidents"
	}
	var out []Contact
	err := tx.Raw(`SELECT DISTINCT ON (email) id, venue_id, email, name, alerts, incidents FROM ops_contacts
		WHERE (venue_id IS NULL OR venue_id = ?) AND `+col+` ORDER BY email, venue_id NULLS FIRST`, venue).Scan(&out).Error
	return out, err
}

// venueTime formats an instant in the venue's timezone for a mail.
func venueTime(at time.Time, tz string) string {
	if loc, err := app.Timezone(tz); err == nil {
		at = at.In(loc)
	}
	return at.Format("Mon 2 Jan 15:04 MST")
}

// queueAlertMail queues a capacity alert for the venue's alert contacts in
// tx, the alert's own transaction; it answers the messages to dispatch
// after the commit.
func (s *Service) queueAlertMail(tx *gorm.DB, t tenants.Tenant, ev app.EventInfo, a Alert) ([]uuid.UUID, error) {
	to, err := recipients(tx, ev.VenueID, MailCapacityAlert)
	if err != nil {
		return nil, err
	}
	var ids []uuid.UUID
	for _, c := range to {
		id, fresh, err := s.app.Mail.Queue(tx, app.MailMessage{
			Key:     "ops:alert:" + a.ID.String() + ":" + c.Email,
			Kind:    MailCapacityAlert,
			Ref:     ev.ID.String(),
			To:      c.Email,
			Subject: fmt.Sprintf("Capacity alert: %s at %d%% — %s", a.Zone, a.Percent, ev.Title),
			Body: fmt.Sprintf("%s at %s reached %d%% of its licensed capacity: %d inside of %d (source %s, %s).\n\nThe live dashboard: %s\n",
				a.Zone, ev.VenueName, a.Percent, a.Inside, a.Capacity, a.Source, venueTime(a.RaisedAt, ev.Timezone), s.dashboardURL(t, ev.ID)),
		})
		if err != nil {
			return nil, err
		}
		if fresh {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// queueIncidentMail tells the venue's incident contacts of a report, in the
// report's transaction. A confidential incident's mail says only that there
// is one: its details stay behind the dashboard's permissions.
func (s *Service) queueIncidentMail(tx *gorm.DB, t tenants.Tenant, ev app.EventInfo, inc Incident) ([]uuid.UUID, error) {
	to, err := recipients(tx, ev.VenueID, MailIncident)
	if err != nil {
		return nil, err
	}
	where := inc.Zone
	if inc.Location != "" {
		where = strings.TrimSpace(where + " " + inc.Location)
	}
	if where == "" {
		where = "location not given"
	}
	body := inc.Description
	if inc.Confidential {
		body = "(confidential: read it on the dashboard)"
	}
	var ids []uuid.UUID
	for _, c := range to {
		id, fresh, err := s.app.Mail.Queue(tx, app.MailMessage{
			Key:     "ops:incident:" + inc.ID.String() + ":" + c.Email,
			Kind:    MailIncident,
			Ref:     ev.ID.String(),
			To:      c.Email,
			Subject: fmt.Sprintf("Incident (%s, %s) — %s", inc.Category, inc.Severity, ev.Title),
			Body: fmt.Sprintf("%s incident, severity %s, at %s (%s), reported %s.\n\n%s\n\nThe live dashboard: %s\n",
				inc.Category, inc.Severity, ev.VenueName, where, venueTime(inc.ReportedAt, ev.Timezone), body, s.dashboardURL(t, ev.ID)),
		})
		if err != nil {
			return nil, err
		}
		if fresh {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// dashboardURL is the event's dashboard on the chain's own host.
func (s *Service) dashboardURL(t tenants.Tenant, event uuid.UUID) string {
	return fmt.Sprintf("https://%s.%s/portal/ops/events/%s", t.Slug, s.app.Config.BaseDomain, event)
}
