package calendar

import (
	"context"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/tenants"
)

// directory answers other modules' questions about events (app.EventDirectory):
// they learn what they need without reading the calendar's tables.
type directory struct{ s *Service }

type eventInfoRow struct {
	ID            uuid.UUID `gorm:"column:id"`
	VenueID       uuid.UUID `gorm:"column:venue_id"`
	VenueName     string    `gorm:"column:venue_name"`
	VenueCapacity int       `gorm:"column:venue_capacity"`
	Latitude      float64   `gorm:"column:latitude"`
	Longitude     float64   `gorm:"column:longitude"`
	Timezone      string    `gorm:"column:timezone"`
	Title         string    `gorm:"column:title"`
	Category      string    `gorm:"column:category"`
	Status        string    `gorm:"column:status"`
	StartsAt      time.Time `gorm:"column:starts_at"`
	EndsAt        time.Time `gorm:"column:ends_at"`
	Promoter      string    `gorm:"column:promoter"`
	SaleSchedule
}

func (r eventInfoRow) info() app.EventInfo {
	return app.EventInfo{ID: r.ID, VenueID: r.VenueID, VenueName: r.VenueName, VenueCapacity: r.VenueCapacity,
		Latitude: r.Latitude, Longitude: r.Longitude, Timezone: r.Timezone, Title: r.Title, Category: r.Category,
		Status: r.Status, StartsAt: r.StartsAt.UTC(), EndsAt: r.EndsAt.UTC(), Promoter: r.Promoter,
		OnSaleAt: utcPtr(r.OnSaleAt), PresaleStartsAt: utcPtr(r.PresaleStartsAt), PresaleEndsAt: utcPtr(r.PresaleEndsAt),
		PresaleCode: deref(r.PresaleCode)}
}

const eventInfoQuery = `SELECT e.id, e.venue_id, v.name AS venue_name, v.capacity AS venue_capacity,
	coalesce(v.latitude, 0) AS latitude, coalesce(v.longitude, 0) AS longitude, v.timezone,
	e.title, e.category, e.status, e.starts_at, e.ends_at,
	e.promoter, e.on_sale_at, e.presale_starts_at, e.presale_ends_at, e.presale_code
	FROM cal_events e JOIN cal_venues v ON v.id = e.venue_id`

// Event implements app.EventDirectory.
func (d directory) Event(ctx context.Context, t tenants.Tenant, id uuid.UUID) (app.EventInfo, error) {
	var rows []eventInfoRow
	err := d.s.tx(ctx, t, func(tx *gorm.DB) error {
		return tx.Raw(eventInfoQuery+` WHERE e.id = ?`, id).Scan(&rows).Error
	})
	if err != nil {
		return app.EventInfo{}, err
	}
	if len(rows) == 0 {
		return app.EventInfo{}, app.NotFound("event")
	}
	return rows[0].info(), nil
}

// Events implements app.EventDirectory: events by start time, filtered.
func (d directory) Events(ctx context.Context, t tenants.Tenant, f app.EventFilter) ([]app.EventInfo, error) {
	if f.Limit <= 0 {
		f.Limit = 50
	}
	f.Limit = min(f.Limit, 500)
	q := eventInfoQuery + ` WHERE true`
	var args []any
	if len(f.Statuses) > 0 {
		q += ` AND e.status IN ?`
		args = append(args, f.Statuses)
	}
	if f.VenueID != uuid.Nil {
		q += ` AND e.venue_id = ?`
		args = append(args, f.VenueID)
	}
	if f.Category != "" {
		q += ` AND e.category = ?`
		args = append(args, f.Category)
	}
	if !f.From.IsZero() {
		q += ` AND e.starts_at >= ?`
		args = append(args, f.From)
	}
	if !f.To.IsZero() {
		q += ` AND e.starts_at < ?`
		args = append(args, f.To)
	}
	if f.After != uuid.Nil {
		q += ` AND (e.starts_at, e.id) > (SELECT starts_at, id FROM cal_events WHERE id = ?)`
		args = append(args, f.After)
	}
	q += ` ORDER BY e.starts_at, e.id LIMIT ?`
	args = append(args, f.Limit)
	var rows []eventInfoRow
	err := d.s.tx(ctx, t, func(tx *gorm.DB) error { return tx.Raw(q, args...).Scan(&rows).Error })
	out := make([]app.EventInfo, len(rows))
	for i, r := range rows {
		out[i] = r.info()
	}
	return out, err
}
