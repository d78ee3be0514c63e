package inventory

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"path"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"marquee/app"
	"marquee/policies"
)

// The offline scanner (/portal/scanner) and the conflict report page. The
// scanner's files are served next to it, so its service worker (scope
// /portal/scanner) can keep them; jsQR is vendored from npm (jsqr@1.4.0,
// Apache-2.0, sha256 in DESIGN.md).

//go:embed static/scanner/*
var scannerFS embed.FS

// scannerFiles are the files the scanner page loads, by name.
var scannerFiles = map[string]string{
	"scanner.js":           "text/javascript; charset=utf-8",
	"jsqr-1.4.0.js":        "text/javascript; charset=utf-8",
	"sw.js":                "text/javascript; charset=utf-8",
	"manifest.webmanifest": "application/manifest+json",
}

type scannerEvent struct {
	ID    string `json:"id"`
	Title string `json:"title"`
	When  string `json:"when"`
}

// doorEvents lists the events whose door the principal may act on (obj/action at their venue).
func (m *Module) doorEvents(c *gin.Context, action string) ([]scannerEvent, error) {
	dir := m.app.Events()
	if dir == nil {
		return nil, app.Unavailable("events_unavailable", 0, "no module provides events")
	}
	evs, err := dir.Events(c.Request.Context(), app.TenantOf(c), app.EventFilter{Limit: 500})
	if err != nil {
		return nil, err
	}
	out := []scannerEvent{}
	for _, e := range evs {
		if m.app.CanAtVenue(c, e.VenueID, ObjDoor, action) {
			out = append(out, scannerEvent{ID: e.ID.String(), Title: e.Title, When: localTime(e)})
		}
	}
	return out, nil
}

type scannerView struct {
	Tenant     string
	EventsJSON string
}

func (m *Module) scannerPage(c *gin.Context) {
	if !m.app.CanAnywhere(c, ObjDoor, policies.Write) {
		app.Fail(c, app.Forbidden("forbidden", "your roles do not allow scanning tickets"))
		return
	}
	evs, err := m.doorEvents(c, policies.Write)
	if err != nil {
		app.Fail(c, err)
		return
	}
	js, err := json.Marshal(evs)
	if err != nil {
		app.Fail(c, err)
		return
	}
	app.SetPageManifest(c, "/portal/scanner/manifest.webmanifest")
	// The page may be served from the service worker's cache for hours.
	c.Header("Cache-Control", "no-cache")
	m.render(c, "portal_scanner", "Door scanner", scannerView{Tenant: app.TenantOf(c).Slug, EventsJSON: string(js)}, true)
}

func (m *Module) scannerFile(c *gin.Context) {
	name := path.Base(c.Param("file"))
	switch name {
	case "icon-192.png", "icon-512.png":
		size := 192
		if name == "icon-512.png" {
			size = 512
		}
		c.Header("Cache-Control", "public, max-age=3600")
		c.Data(http.StatusOK, "image/png", scannerIcon(size))
		return
	}
	ct, ok := scannerFiles[name]
	if !ok {
		app.Fail(c, app.NotFound("file"))
		return
	}
	b, err := scannerFS.ReadFile("static/scanner/" + name)
	if err != nil {
		app.Fail(c, err)
		return
	}
	if name == "sw.js" {
		// The worker lives under /portal/scanner/ but controls the page
		// /portal/scanner itself.
		c.Header("Service-Worker-Allowed", "/portal/scanner")
		c.Header("Cache-Control", "no-cache")
	} else {
		c.Header("Cache-Control", "public, max-age=300")
	}
	c.Data(http.StatusOK, ct, b)
}

var icons sync.Map

// scannerIcon draws the install icon: a ticket stub on the scanner's dark
// ground (generated, so no binary sits in the repository).
func scannerIcon(size int) []byte {
	if v, ok := icons.Load(size); ok {
		return v.([]byte)
	}
	img := image.NewRGBA(image.Rect(0, 0, size, size))
	bg, fg, ok := color.RGBA{0x11, 0x18, 0x27, 0xff}, color.RGBA{0xf7, 0xf6, 0xfb, 0xff}, color.RGBA{0x15, 0x80, 0x3d, 0xff}
	u := size / 16
	for y := range size {
		for x := range size {
			c := bg
			if x >= 3*u && x < 13*u && y >= 5*u && y < 11*u {
				c = fg
				if x >= 9*u && x < 9*u+u/2 { // the stub's perforation
					c = bg
				}
				if x >= 4*u && x < 8*u && y >= 6*u && y < 10*u {
					c = ok
				}
			}
			img.Set(x, y, c)
		}
	}
	var buf bytes.Buffer
	_ = png.Encode(&buf, img)
	icons.Store(size, buf.Bytes())
	return buf.Bytes()
}

type conflictsView struct {
	Events  []scannerEvent
	EventID string
	Report  *ConflictReport
	loc     *time.Location
}

// Local shows a time in the event's venue timezone.
func (v conflictsView) Local(t time.Time) string { return t.In(v.loc).Format("15:04:05") }

// Short is the end of an id (UUIDv7s of one sale share their beginning).
func (v conflictsView) Short(id uuid.UUID) string { s := id.String(); return s[len(s)-8:] }

// Apart says how far apart two scans were.
func (v conflictsView) Apart(ms int64) string {
	d := time.Duration(ms) * time.Millisecond
	switch {
	case d < time.Second:
		return fmt.Sprintf("%d ms", ms)
	case d < time.Hour:
		return d.Round(time.Second).String()
	}
	return d.Round(time.Minute).String()
}

func (m *Module) conflictsPage(c *gin.Context) {
	if !m.app.CanAnywhere(c, ObjDoor, policies.Read) {
		app.Fail(c, app.Forbidden("forbidden", "your roles do not allow reading the door"))
		return
	}
	evs, err := m.doorEvents(c, policies.Read)
	if err != nil {
		app.Fail(c, err)
		return
	}
	v := conflictsView{Events: evs, EventID: c.Query("event"), loc: time.UTC}
	if v.EventID == "" && len(evs) > 0 {
		v.EventID = evs[0].ID
	}
	if v.EventID != "" {
		id, err := uuid.Parse(v.EventID)
		if err != nil {
			app.Fail(c, invalid("event", "event is an event id"))
			return
		}
		ev, err := m.svc.Event(c.Request.Context(), app.TenantOf(c), id)
		if err != nil {
			app.Fail(c, err)
			return
		}
		if !m.app.CanAtVenue(c, ev.VenueID, ObjDoor, policies.Read) {
			app.Fail(c, app.Forbidden("forbidden", "your roles do not allow reading this event's door"))
			return
		}
		if loc, err := app.Timezone(ev.Timezone); err == nil {
			v.loc = loc
		}
		rep, err := m.svc.DoorConflicts(c.Request.Context(), app.TenantOf(c), id, 500)
		if err != nil {
			app.Fail(c, err)
			return
		}
		v.Report = &rep
	}
	m.render(c, "portal_conflicts", "Door conflicts", v, true)
}
