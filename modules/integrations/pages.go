package integrations

import (
	"embed"
	"fmt"
	"html/template"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/tenants"
)

//go:embed templates/*.html
var templateFS embed.FS

func parsePages() (*template.Template, error) {
	return template.New("integrations").Funcs(template.FuncMap{
		"ago": func(t *time.Time) string {
			if t == nil {
				return "never"
			}
			return t.UTC().Format("2 Jan 15:04:05 UTC")
		},
		"deref": func(p *int) string {
			if p == nil {
				return "–"
			}
			return fmt.Sprint(*p)
		},
		"str": func(p *string) string {
			if p == nil {
				return ""
			}
			return *p
		},
	}).ParseFS(templateFS, "templates/*.html")
}

type eventRow struct {
	ID       uuid.UUID
	Title    string
	When     string
	Channels string
}

// channelsPage is the connectors' health and the events listed on channels.
func (m *Module) channelsPage(c *gin.Context) {
	ctx, t := c.Request.Context(), app.TenantOf(c)
	cs, err := m.svc.Connectors(ctx, t)
	if err != nil {
		app.Fail(c, err)
		return
	}
	var listed []struct {
		EventID  uuid.UUID `gorm:"column:event_id"`
		Channels string    `gorm:"column:channels"`
	}
	if err := m.app.TxWith(ctx, t, tenants.TxOptions{ReadOnly: true}, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT event_id, string_agg(channel, ', ' ORDER BY channel) AS channels FROM int_listings GROUP BY event_id ORDER BY min(created_at) LIMIT 200`).Scan(&listed).Error
	}); err != nil {
		app.Fail(c, err)
		return
	}
	var rows []eventRow
	for _, l := range listed {
		ev, err := m.app.Events().Event(ctx, t, l.EventID)
		if err != nil {
			continue
		}
		loc, lerr := app.Timezone(ev.Timezone)
		if lerr != nil {
			loc = time.UTC
		}
		rows = append(rows, eventRow{ID: ev.ID, Title: ev.Title, When: ev.StartsAt.In(loc).Format("Mon 2 Jan 15:04 MST"), Channels: l.Channels})
	}
	content, err := app.RenderTemplate(m.pages, "channels", struct {
		Connectors []Connector
		Events     []eventRow
	}{cs, rows})
	if err != nil {
		app.Fail(c, err)
		return
	}
	m.app.RenderPortal(c, http.StatusOK, "Sales channels", content)
}

// eventPage is one event's channels: stock, reconciliation per channel,
// oversells and the timeline of syncs.
func (m *Module) eventPage(c *gin.Context) {
	ctx, t := c.Request.Context(), app.TenantOf(c)
	id, err := app.PathUUID(c, "eventId", "event")
	if err != nil {
		app.Fail(c, err)
		return
	}
	ev, err := m.app.Events().Event(ctx, t, id)
	if err != nil {
		app.Fail(c, err)
		return
	}
	v, err := m.svc.Channels(ctx, t, id)
	if err != nil {
		app.Fail(c, err)
		return
	}
	loc, lerr := app.Timezone(ev.Timezone)
	if lerr != nil {
		loc = time.UTC
	}
	type tl struct {
		Sync
		When string
	}
	var timeline []tl
	for _, s := range v.Timeline {
		timeline = append(timeline, tl{s, s.At.In(loc).Format("2 Jan 15:04:05 MST")})
	}
	content, err := app.RenderTemplate(m.pages, "event", struct {
		Event    app.EventInfo
		View     ChannelsView
		Timeline []tl
	}{ev, v, timeline})
	if err != nil {
		app.Fail(c, err)
		return
	}
	m.app.RenderPortal(c, http.StatusOK, "Channels: "+ev.Title, content)
}
