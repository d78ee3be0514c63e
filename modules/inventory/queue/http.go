package queue

import (
	"context"
	"embed"
	"html/template"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"marquee/app"
	"marquee/modules/inventory"
	"marquee/policies"
)

// BuyerFunc identifies the anonymous buyer of a request; the storefront owns
// how (a signed buyer cookie or header).
type BuyerFunc func(c *gin.Context) (string, error)

// ObjWaitingRoom is the permission object of room settings.
const ObjWaitingRoom = "inventory.waiting_room"

//go:embed templates/*.html
var templatesFS embed.FS

var pages = template.Must(template.New("queue").Funcs(template.FuncMap{"money": inventory.Money}).ParseFS(templatesFS, "templates/*.html"))

// AdmitInterval is how often the admitter lets buyers through.
const AdmitInterval = 100 * time.Millisecond

// Register mounts the room's routes, its storefront page and its admitter on
// a module's registrar.
func Register(r *app.Registrar, room *Room, buyer BuyerFunc) {
	a := r.Core()
	h := &handlers{a: a, room: room, buyer: buyer}
	r.Grants(
		policies.Grant{Role: policies.RoleChainAdmin, Object: ObjWaitingRoom, Action: policies.Read},
		policies.Grant{Role: policies.RoleChainAdmin, Object: ObjWaitingRoom, Action: policies.Write},
		policies.Grant{Role: policies.RolePromoter, Object: ObjWaitingRoom, Action: policies.Read},
		policies.Grant{Role: policies.RolePromoter, Object: ObjWaitingRoom, Action: policies.Write},
		policies.Grant{Role: policies.RoleSupport, Object: ObjWaitingRoom, Action: policies.Read},
	)
	// Join and status read Redis and the room's cached settings only: light
	// routes, so the crowd in the queue does not take the chain's in-flight
	// slots from the buyers checking out.
	r.API(http.MethodPost, "/events/:eventId/queue", app.Public(), "Join an event's waiting room", app.Handle(h.join)).Light().NoBody()
	r.API(http.MethodGet, "/events/:eventId/queue/:queueToken", app.Public(), "Position in the waiting room, or the access token once admitted; with ?wait=N a queued buyer's request waits up to N seconds and answers the moment they are admitted",
		app.Handle(h.status).Query("wait", "seconds (0 to 25) to wait for admission before answering; 0 or absent answers at once")).Light()
	r.API(http.MethodDelete, "/events/:eventId/queue", app.Public(), "Leave the room after checkout (X-Queue-Token), freeing the slot for the next buyer", app.Handle(h.leave))
	r.API(http.MethodGet, "/events/:eventId/waiting-room", app.Require(ObjWaitingRoom, policies.Read), "Waiting room settings", app.Handle(h.getSettings))
	r.API(http.MethodGet, "/events/:eventId/waiting-room/state", app.Require(ObjWaitingRoom, policies.Read), "The room now: queue, active buyers, and the adaptive controller's rate, cap, last signals and decision",
		app.Handle(h.getState))
	r.API(http.MethodPut, "/events/:eventId/waiting-room", app.Require(ObjWaitingRoom, policies.Write), "Switch and tune the waiting room", app.Handle(h.putSettings))
	r.Storefront(http.MethodGet, "/events/:eventId/queue", app.Public(), h.page)
	registerSettingsPage(r, h)
	r.Background("waiting-room-admitter", func(ctx context.Context) error { return room.RunAdmitter(ctx, AdmitInterval) })
}

type handlers struct {
	a     *app.Core
	room  *Room
	buyer BuyerFunc
}

// event parses the event id and checks it exists, when an event directory is wired.
func (h *handlers) event(c *gin.Context) (uuid.UUID, error) {
	id, err := uuid.Parse(c.Param("eventId"))
	if err != nil {
		return uuid.Nil, app.NotFound("event")
	}
	if dir := h.a.Events(); dir != nil {
		if _, err := dir.Event(c.Request.Context(), app.TenantOf(c), id); err != nil {
			return uuid.Nil, err
		}
	}
	return id, nil
}

func (h *handlers) join(c *gin.Context, _ app.None) (Status, error) {
	event, err := app.PathUUID(c, "eventId", "event")
	if err != nil {
		return Status{}, err
	}
	buyer, err := h.buyer(c)
	if err != nil {
		return Status{}, err
	}
	st, err := h.room.Join(c.Request.Context(), app.TenantOf(c), event, buyer)
	if err == nil && st.State == "not_required" {
		// No open room: say so only for an event that exists. An open
		// room's event was checked when the room was configured, so a
		// join (50,000 in a few seconds) costs no database round trip.
		if _, err := h.event(c); err != nil {
			return Status{}, err
		}
	}
	return st, err
}

func (h *handlers) status(c *gin.Context, _ app.None) (Status, error) {
	event, err := app.PathUUID(c, "eventId", "event")
	if err != nil {
		return Status{}, err
	}
	buyer, err := h.buyer(c)
	if err != nil {
		return Status{}, err
	}
	wait := 0
	if v := c.Query("wait"); v != "" {
		if wait, err = strconv.Atoi(v); err != nil || wait < 0 || wait > int(MaxWait/time.Second) {
			return Status{}, app.InvalidField("invalid_request", "wait", "wait must be a whole number of seconds from 0 to 25")
		}
	}
	c.Header("Cache-Control", "no-store")
	if wait > 0 {
		// A waiting request does no work: it does not count against the
		// chain's in-flight bound (the room bounds waiters per instance).
		app.Park(c)
	}
	return h.room.StatusWait(c.Request.Context(), app.TenantOf(c), event, buyer, c.Param("queueToken"), time.Duration(wait)*time.Second)
}

func (h *handlers) leave(c *gin.Context, _ app.None) (app.None, error) {
	event, err := app.PathUUID(c, "eventId", "event")
	if err != nil {
		return app.None{}, err
	}
	return app.None{}, h.room.Leave(c.Request.Context(), app.TenantOf(c), event, c.GetHeader("X-Queue-Token"))
}

func (h *handlers) getSettings(c *gin.Context, _ app.None) (Settings, error) {
	event, err := h.event(c)
	if err != nil {
		return Settings{}, err
	}
	return h.room.Settings(c.Request.Context(), app.TenantOf(c), event)
}

// RoomState is a room as it runs now.
type RoomState struct {
	Settings Settings `json:"settings"`
	Queued   int64    `json:"queued"`  // buyers waiting
	Active   int64    `json:"active"`  // buyers shopping (slots in use)
	Waiting  int      `json:"waiting"` // status requests waiting for admission on the instance that answered
	// The adaptive controller (null before its first step, or when the room
	// is not adaptive): admission rate and cap now, the signals it saw last,
	// and what it decided.
	Control *Control `json:"control"`
}

func (h *handlers) getState(c *gin.Context, _ app.None) (RoomState, error) {
	event, err := h.event(c)
	if err != nil {
		return RoomState{}, err
	}
	return h.room.State(c.Request.Context(), app.TenantOf(c), event)
}

type settingsRequest struct {
	Enabled          bool       `json:"enabled"`
	OpensAt          *time.Time `json:"opens_at"`
	AdmitPerSecond   int        `json:"admit_per_second"`
	MaxActive        int        `json:"max_active"`
	IdleTimeout      int        `json:"idle_timeout_seconds"`
	AccessTTL        int        `json:"access_ttl_seconds"`
	FallbackFraction *float64   `json:"fallback_fraction"`
	Adaptive         *bool      `json:"adaptive"` // absent: on
}

func (h *handlers) putSettings(c *gin.Context, req settingsRequest) (Settings, error) {
	event, err := h.event(c)
	if err != nil {
		return Settings{}, err
	}
	s := DefaultSettings(event)
	s.Enabled, s.OpensAt = req.Enabled, req.OpensAt
	if req.AdmitPerSecond != 0 {
		s.AdmitPerSecond = req.AdmitPerSecond
	}
	if req.MaxActive != 0 {
		s.MaxActive = req.MaxActive
	}
	if req.IdleTimeout != 0 {
		s.IdleTimeout = req.IdleTimeout
	}
	if req.AccessTTL != 0 {
		s.AccessTTL = req.AccessTTL
	}
	if req.FallbackFraction != nil {
		s.FallbackFraction = *req.FallbackFraction
	}
	if req.Adaptive != nil {
		s.Adaptive = *req.Adaptive
	}
	return s, h.room.Configure(c.Request.Context(), app.TenantOf(c), s)
}

// page is the storefront's waiting page: it joins, then polls its position
// until admitted, keeps the access token for the hold, and moves on.
func (h *handlers) page(c *gin.Context) {
	event, err := h.event(c)
	if err != nil {
		app.Fail(c, err)
		return
	}
	title := "Waiting room"
	if dir := h.a.Events(); dir != nil {
		if info, err := dir.Event(c.Request.Context(), app.TenantOf(c), event); err == nil {
			title = info.Title
		}
	}
	var prices []inventory.PriceRange
	if h.room.Prices != nil {
		prices, _ = h.room.Prices(c.Request.Context(), app.TenantOf(c), event)
	}
	content, err := app.RenderTemplate(pages, "waiting", map[string]any{"EventID": event.String(), "Title": title, "Prices": prices})
	if err != nil {
		app.Fail(c, err)
		return
	}
	h.a.RenderStorefront(c, http.StatusOK, title, content)
}
