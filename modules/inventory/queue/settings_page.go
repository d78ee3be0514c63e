package queue

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"marquee/app"
	"marquee/policies"
)

// registerSettingsPage adds the portal's waiting-room page of an event:
// the settings as a form (post/redirect/get) and the room's live figures,
// which the page refreshes every two seconds from the live route.
func registerSettingsPage(r *app.Registrar, h *handlers) {
	r.Portal(http.MethodGet, "/inventory/:eventId/waiting-room", app.Require(ObjWaitingRoom, policies.Read), h.settingsPage)
	r.Portal(http.MethodPost, "/inventory/:eventId/waiting-room", app.Require(ObjWaitingRoom, policies.Write), h.saveSettingsPage)
	r.Portal(http.MethodGet, "/inventory/:eventId/waiting-room/live", app.Require(ObjWaitingRoom, policies.Read), h.liveState)
}

// roomForm is the settings form as typed (kept when refused).
type roomForm struct {
	Enabled, Adaptive                                bool
	OpensAt                                          string // datetime-local, the venue's time
	AdmitPerSecond, MaxActive, IdleTimeout, Fraction string
	AccessTTL                                        string
	Error, Field                                     string
}

// liveFigures is what the page shows of the room now.
type liveFigures struct {
	Open      bool    `json:"open"`
	Queued    int64   `json:"queued"`
	Active    int64   `json:"active"`
	Rate      float64 `json:"rate"` // admissions per second now
	Cap       float64 `json:"cap"`  // active buyers at most now
	Adaptive  bool    `json:"adaptive"`
	Decision  string  `json:"decision"`
	UpdatedAt string  `json:"updated_at"`
	Wait      string  `json:"wait"` // how long the last in line waits, roughly, in words
}

func (h *handlers) live(c *gin.Context) (liveFigures, error) {
	event, err := h.event(c)
	if err != nil {
		return liveFigures{}, err
	}
	st, err := h.room.State(c.Request.Context(), app.TenantOf(c), event)
	if err != nil {
		return liveFigures{}, err
	}
	f := liveFigures{Open: st.Settings.Open(h.a.Now()), Queued: st.Queued, Active: st.Active, Adaptive: st.Settings.Adaptive,
		Rate: float64(st.Settings.AdmitPerSecond), Cap: float64(st.Settings.MaxActive), UpdatedAt: h.a.Now().UTC().Format(time.RFC3339)}
	if st.Settings.Adaptive && st.Control != nil {
		f.Rate, f.Cap, f.Decision = math.Round(st.Control.Rate*10)/10, math.Round(st.Control.Cap), st.Control.Decision
	}
	f.Wait = "no wait"
	if f.Rate > 0 && f.Queued > 0 {
		switch secs := math.Ceil(float64(f.Queued) / f.Rate); {
		case secs < 60:
			f.Wait = "under a minute"
		default:
			f.Wait = fmt.Sprintf("about %d minute(s)", int64(math.Ceil(secs/60)))
		}
	}
	return f, nil
}

// liveState answers the page's refresh (JSON, never cached).
func (h *handlers) liveState(c *gin.Context) {
	if !strings.Contains(c.GetHeader("Accept"), "application/json") {
		// A person who opened the address: the page, not its data.
		c.Redirect(http.StatusSeeOther, strings.TrimSuffix(c.Request.URL.Path, "/live"))
		return
	}
	f, err := h.live(c)
	if err != nil {
		app.Fail(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, f)
}

type settingsPageView struct {
	Event    app.EventInfo
	When     string
	Form     roomForm
	Live     liveFigures
	CanWrite bool
	CSRF     string
	Flash    string
	Zone     string
}

func (h *handlers) settingsPage(c *gin.Context) {
	event, err := h.event(c)
	if err != nil {
		app.Fail(c, err)
		return
	}
	dir := h.a.Events()
	if dir == nil {
		app.Fail(c, app.Unavailable("events_unavailable", 0, "no module provides events"))
		return
	}
	ctx, t := c.Request.Context(), app.TenantOf(c)
	ev, err := dir.Event(ctx, t, event)
	if err != nil {
		app.Fail(c, err)
		return
	}
	s, err := h.room.Settings(ctx, t, event)
	if err != nil {
		app.Fail(c, err)
		return
	}
	loc, _ := app.Timezone(ev.Timezone)
	if loc == nil {
		loc = time.UTC
	}
	v := settingsPageView{Event: ev, When: ev.StartsAt.In(loc).Format("Mon 2 Jan 2006, 15:04 MST"), Zone: ev.Timezone,
		CanWrite: h.a.Can(c, ObjWaitingRoom, policies.Write), CSRF: h.a.CSRFToken(app.PrincipalOf(c).SessionID.String())}
	v.Form = roomForm{Enabled: s.Enabled, Adaptive: s.Adaptive, AdmitPerSecond: strconv.Itoa(s.AdmitPerSecond), MaxActive: strconv.Itoa(s.MaxActive),
		IdleTimeout: strconv.Itoa(s.IdleTimeout), AccessTTL: strconv.Itoa(s.AccessTTL), Fraction: strconv.FormatFloat(s.FallbackFraction*100, 'f', -1, 64)}
	if s.OpensAt != nil {
		v.Form.OpensAt = s.OpensAt.In(loc).Format("2006-01-02T15:04")
	}
	if key := c.Query("form"); key != "" {
		var kept roomForm
		if h.a.TakeForm(c, key, &kept) {
			v.Form = kept
		}
	}
	if c.Query("done") == "saved" {
		v.Flash = "Saved. Buyers arriving from now on meet the room as set here."
	}
	if v.Live, err = h.live(c); err != nil {
		app.Fail(c, err)
		return
	}
	content, err := app.RenderTemplate(pages, "portal_waiting_room", v)
	if err != nil {
		app.Fail(c, err)
		return
	}
	h.a.RenderPortal(c, http.StatusOK, ev.Title+" · Waiting room", content)
}

// saveSettingsPage checks the form field by field, saves, and shows the
// page again (post/redirect/get); a refused form comes back as typed, with
// the reason beside its field.
func (h *handlers) saveSettingsPage(c *gin.Context) {
	event, err := h.event(c)
	if err != nil {
		app.Fail(c, err)
		return
	}
	back := fmt.Sprintf("/portal/inventory/%s/waiting-room", event)
	f := roomForm{Enabled: c.PostForm("enabled") == "on", Adaptive: c.PostForm("adaptive") == "on", OpensAt: strings.TrimSpace(c.PostForm("opens_at")),
		AdmitPerSecond: strings.TrimSpace(c.PostForm("admit_per_second")), MaxActive: strings.TrimSpace(c.PostForm("max_active")),
		IdleTimeout: strings.TrimSpace(c.PostForm("idle_timeout")), AccessTTL: strings.TrimSpace(c.PostForm("access_ttl")),
		Fraction: strings.TrimSpace(c.PostForm("fallback_percent"))}
	refuse := func(field, msg string) {
		f.Field, f.Error = field, msg
		q := ""
		if key := h.a.StashForm(c, f); key != "" {
			q = "?form=" + key
		}
		c.Redirect(http.StatusSeeOther, back+q)
	}
	s := DefaultSettings(event)
	s.Enabled, s.Adaptive = f.Enabled, f.Adaptive
	whole := func(field, text string, lo, hi int, dst *int) bool {
		n, err := strconv.Atoi(text)
		if err != nil || n < lo || n > hi {
			refuse(field, fmt.Sprintf("a whole number from %d to %d", lo, hi))
			return false
		}
		*dst = n
		return true
	}
	if !whole("admit_per_second", f.AdmitPerSecond, 1, 100000, &s.AdmitPerSecond) || !whole("max_active", f.MaxActive, 1, 1000000, &s.MaxActive) ||
		!whole("idle_timeout", f.IdleTimeout, 10, 86400, &s.IdleTimeout) || !whole("access_ttl", f.AccessTTL, 30, 86400, &s.AccessTTL) {
		return
	}
	pct, err := strconv.ParseFloat(f.Fraction, 64)
	if err != nil || math.IsNaN(pct) || pct < 0 || pct >= 100 {
		refuse("fallback_percent", "a percentage from 0 to below 100")
		return
	}
	s.FallbackFraction = pct / 100
	if f.OpensAt != "" {
		tz := "UTC"
		if dir := h.a.Events(); dir != nil {
			if ev, err := dir.Event(c.Request.Context(), app.TenantOf(c), event); err == nil {
				tz = ev.Timezone
			}
		}
		loc, _ := app.Timezone(tz)
		if loc == nil {
			loc = time.UTC
		}
		at, err := time.ParseInLocation("2006-01-02T15:04", f.OpensAt, loc)
		if err != nil {
			refuse("opens_at", "a date and time, like 2030-05-01 10:00")
			return
		}
		at = at.UTC()
		s.OpensAt = &at
	}
	if err := h.room.Configure(c.Request.Context(), app.TenantOf(c), s); err != nil {
		var e *app.Error
		if !errors.As(err, &e) {
			app.Fail(c, err)
			return
		}
		refuse("", e.Detail)
		return
	}
	c.Redirect(http.StatusSeeOther, back+"?done=saved")
}
