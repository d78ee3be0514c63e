package queue

import (
	"context"
	"embed"
	"html/template"
	"net/http"
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
const AdmitInterval = 250 * time.Millisecond

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
	r.API(http.MethodPost, "/events/:eventId/queue", app.Public(), "Join an event's waiting room", app.Handle(h.join)).NoBody()
	r.API(http.MethodGet, "/events/:eventId/queue/:queueToken", app.Public(), "Position in the waiting room, or the access token once admitted", app.Handle(h.status))
	r.API(http.MethodDelete, "/events/:eventId/queue", app.Public(), "Leave the room after checkout (X-Queue-Token), freeing the slot for the next buyer", app.Handle(h.leave))
	r.API(http.MethodGet, "/events/:eventId/waiting-room", app.Require(ObjWaitingRoom, policies.Read), "Waiting room settings", app.Handle(h.getSettings))
	r.API(http.MethodPut, "/events/:eventId/waiting-room", app.Require(ObjWaitingRoom, policies.Write), "Switch and tune the waiting room", app.Handle(h.putSettings))
	r.Storefront(http.MethodGet, "/events/:eventId/queue", app.Public(), h.page)
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
	event, err := h.event(c)
	if err != nil {
		return Status{}, err
	}
	buyer, err := h.buyer(c)
	if err != nil {
		return Status{}, err
	}
	return h.room.Join(c.Request.Context(), app.TenantOf(c), event, buyer)
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
	c.Header("Cache-Control", "no-store")
	return h.room.StatusOf(c.Request.Context(), app.TenantOf(c), event, buyer, c.Param("queueToken"))
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

type settingsRequest struct {
	Enabled          bool       `json:"enabled"`
	OpensAt          *time.Time `json:"opens_at"`
	AdmitPerSecond   int        `json:"admit_per_second"`
	MaxActive        int        `json:"max_active"`
	IdleTimeout      int        `json:"idle_timeout_seconds"`
	AccessTTL        int        `json:"access_ttl_seconds"`
	FallbackFraction *float64   `json:"fallback_fraction"`
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
