package booking

import (
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"marquee/app"
	"marquee/modules/booking/internal/settlement"
	"marquee/modules/booking/internal/terms"
	"marquee/policies"
)

// Handlers read top to bottom: decode and validate, call the service,
// respond. Staff act as the promoter; an agent, through their link, as the
// artist, and only on their artists' offers.

// staff is the signed-in staff member acting, and from where.
func (m *Module) staff(c *gin.Context) Actor {
	p := app.PrincipalOf(c)
	a := Actor{Kind: "staff", IP: c.ClientIP(), Party: Promoter}
	switch p.Kind {
	case app.KindSupportVisit:
		a.ID, a.Name = p.VisitID.String(), "support visit"
	default:
		a.ID = p.UserID.String()
		if u, err := m.app.UserByID(c.Request.Context(), app.TenantOf(c), p.UserID); err == nil {
			a.Name = u.Name + " <" + u.Email + ">"
		}
	}
	return a
}

// AgentTokenHeader carries an agent link's token.
const AgentTokenHeader = "X-Agent-Token"

// agentActor checks the request's agent link.
func (m *Module) agentActor(c *gin.Context) (Actor, error) {
	ag, err := m.svc.AgentFromLink(c.Request.Context(), app.TenantOf(c), c.GetHeader(AgentTokenHeader))
	if err != nil {
		return Actor{}, err
	}
	return Actor{Kind: "agent", ID: ag.ID.String(), Name: ag.Name + " <" + ag.Email + ">", IP: c.ClientIP(), Party: Artist, AgentID: ag.ID}, nil
}

func bookingID(c *gin.Context) (uuid.UUID, error) { return app.PathUUID(c, "bookingId", "booking") }

// ---- offers

type createRequest struct {
	ArtistID string      `json:"artist_id"`
	Title    string      `json:"title"`
	HoldID   *string     `json:"hold_id,omitempty"`
	EventID  *string     `json:"event_id,omitempty"`
	Terms    terms.Terms `json:"terms"`
}

func optionalID(field string, s *string) (*uuid.UUID, error) {
	if s == nil || *s == "" {
		return nil, nil
	}
	id, err := uuid.Parse(*s)
	if err != nil {
		return nil, app.InvalidField("invalid_request", field, "%s must be a UUID", field)
	}
	return &id, nil
}

func (m *Module) create(c *gin.Context, req createRequest) (Detail, error) {
	artist, err := uuid.Parse(req.ArtistID)
	if err != nil {
		return Detail{}, app.InvalidField("invalid_request", "artist_id", "artist_id must be an artist's id")
	}
	in := CreateInput{ArtistID: artist, Title: req.Title, Terms: req.Terms}
	if in.HoldID, err = optionalID("hold_id", req.HoldID); err != nil {
		return Detail{}, err
	}
	if in.EventID, err = optionalID("event_id", req.EventID); err != nil {
		return Detail{}, err
	}
	var by *uuid.UUID
	if p := app.PrincipalOf(c); p.Kind == app.KindUser {
		by = &p.UserID
	}
	d, err := m.svc.Create(c.Request.Context(), app.TenantOf(c), in, m.staff(c), by)
	if err == nil {
		c.Header("Location", "/api/v1/bookings/"+d.ID.String())
	}
	return d, err
}

func listFilter(c *gin.Context) (ListFilter, error) {
	f := ListFilter{Limit: 50}
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 200 {
			return f, app.InvalidField("invalid_limit", "limit", "limit must be an integer from 1 to 200")
		}
		f.Limit = n
	}
	if v := c.Query("after"); v != "" {
		id, err := uuid.Parse(v)
		if err != nil {
			return f, app.InvalidField("invalid_cursor", "after", "after must be a cursor returned by this list")
		}
		f.After = id
	}
	if v := c.Query("state"); v != "" {
		ok := false
		for _, s := range States {
			ok = ok || string(s) == v
		}
		if !ok {
			return f, app.InvalidField("invalid_state", "state", "state must be one of %v", States)
		}
		f.State = State(v)
	}
	if v := c.Query("artist_id"); v != "" {
		id, err := uuid.Parse(v)
		if err != nil {
			return f, app.InvalidField("invalid_request", "artist_id", "artist_id must be a UUID")
		}
		f.ArtistID = id
	}
	return f, nil
}

func (m *Module) listAs(c *gin.Context, actor Actor) (app.Page[Summary], error) {
	f, err := listFilter(c)
	if err != nil {
		return app.Page[Summary]{}, err
	}
	items, err := m.svc.List(c.Request.Context(), app.TenantOf(c), f, actor)
	out := app.Page[Summary]{Items: app.NonNil(items)}
	if len(items) == f.Limit {
		out.Next = items[len(items)-1].ID.String()
	}
	return out, err
}

func (m *Module) list(c *gin.Context, _ app.None) (app.Page[Summary], error) {
	return m.listAs(c, m.staff(c))
}

func (m *Module) get(c *gin.Context, _ app.None) (Detail, error) {
	id, err := bookingID(c)
	if err != nil {
		return Detail{}, err
	}
	return m.svc.Get(c.Request.Context(), app.TenantOf(c), id, Actor{Party: Promoter})
}

// versionRequest answers an offer (accept, contract) at the version read.
type versionRequest struct {
	Version int `json:"version"`
}

// offerRequest sends or counters: the version read, the terms to freeze
// (send: optional, the draft's otherwise) and by when to answer (RFC 3339;
// a week by default).
type offerRequest struct {
	Version   int          `json:"version"`
	Terms     *terms.Terms `json:"terms,omitempty"`
	RespondBy *string      `json:"respond_by,omitempty"`
}

// reasonRequest declines or cancels, saying why.
type reasonRequest struct {
	Version int    `json:"version"`
	Reason  string `json:"reason"`
}

func (r offerRequest) input() (TransitionInput, error) {
	in := TransitionInput{Version: r.Version, Terms: r.Terms}
	if r.RespondBy != nil {
		t, err := time.Parse(time.RFC3339, *r.RespondBy)
		if err != nil {
			return in, app.InvalidField("invalid_request", "respond_by", "respond_by must be an RFC 3339 time")
		}
		in.RespondBy = &t
	}
	return in, nil
}

func (m *Module) transition(c *gin.Context, actor Actor, action string, in TransitionInput) (Detail, error) {
	id, err := bookingID(c)
	if err != nil {
		return Detail{}, err
	}
	return m.svc.Transition(c.Request.Context(), app.TenantOf(c), id, action, in, actor)
}

func (m *Module) offer(c *gin.Context, actor Actor, action string, req offerRequest) (Detail, error) {
	in, err := req.input()
	if err != nil {
		return Detail{}, err
	}
	return m.transition(c, actor, action, in)
}

func (m *Module) send(c *gin.Context, req offerRequest) (Detail, error) {
	return m.offer(c, m.staff(c), ActSend, req)
}

func (m *Module) counter(c *gin.Context, req offerRequest) (Detail, error) {
	return m.offer(c, m.staff(c), ActCounter, req)
}

func (m *Module) accept(c *gin.Context, req versionRequest) (Detail, error) {
	return m.transition(c, m.staff(c), ActAccept, TransitionInput{Version: req.Version})
}

func (m *Module) decline(c *gin.Context, req reasonRequest) (Detail, error) {
	return m.transition(c, m.staff(c), ActDecline, TransitionInput{Version: req.Version, Reason: req.Reason})
}

func (m *Module) cancel(c *gin.Context, req reasonRequest) (Detail, error) {
	return m.transition(c, m.staff(c), ActCancel, TransitionInput{Version: req.Version, Reason: req.Reason})
}

func (m *Module) contract(c *gin.Context, req versionRequest) (Detail, error) {
	return m.transition(c, m.staff(c), ActContract, TransitionInput{Version: req.Version})
}

// actualsRequest is what happened at the show.
type actualsRequest struct {
	Version int `json:"version"`
	settlement.Actuals
}

func (m *Module) recordActuals(c *gin.Context, req actualsRequest) (Detail, error) {
	id, err := bookingID(c)
	if err != nil {
		return Detail{}, err
	}
	return m.svc.RecordActuals(c.Request.Context(), app.TenantOf(c), id, req.Version, req.Actuals, m.staff(c))
}

func versionNumber(c *gin.Context, field, s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		if field == "" {
			return 0, app.NotFound("terms version")
		}
		return 0, app.InvalidField("invalid_version", field, "%s must be a version number (1 or more)", field)
	}
	return n, nil
}

func (m *Module) versionAs(c *gin.Context, actor Actor) (Version, error) {
	id, err := bookingID(c)
	if err != nil {
		return Version{}, err
	}
	n, err := versionNumber(c, "", c.Param("n"))
	if err != nil {
		return Version{}, err
	}
	return m.svc.Version(c.Request.Context(), app.TenantOf(c), id, n, actor)
}

func (m *Module) version(c *gin.Context, _ app.None) (Version, error) {
	return m.versionAs(c, Actor{Party: Promoter})
}

func (m *Module) diffAs(c *gin.Context, actor Actor) (DiffView, error) {
	id, err := bookingID(c)
	if err != nil {
		return DiffView{}, err
	}
	from, err := versionNumber(c, "from", c.Query("from"))
	if err != nil {
		return DiffView{}, err
	}
	to, err := versionNumber(c, "to", c.Query("to"))
	if err != nil {
		return DiffView{}, err
	}
	return m.svc.Diff(c.Request.Context(), app.TenantOf(c), id, from, to, actor)
}

func (m *Module) diff(c *gin.Context, _ app.None) (DiffView, error) {
	return m.diffAs(c, Actor{Party: Promoter})
}

func (m *Module) settlement(c *gin.Context, _ app.None) (SettlementView, error) {
	id, err := bookingID(c)
	if err != nil {
		return SettlementView{}, err
	}
	internal := false
	switch c.Query("view") {
	case "", "external":
	case "internal":
		if !m.app.Can(c, ObjSettlements, policies.Read) {
			return SettlementView{}, app.Forbidden("forbidden", "the internal settlement needs booking.settlements:read")
		}
		internal = true
	default:
		return SettlementView{}, app.InvalidField("invalid_request", "view", "view is external or internal")
	}
	return m.svc.SettlementAs(c.Request.Context(), app.TenantOf(c), id, internal, Actor{Party: Promoter})
}

// ---- agents and artists

type agentRequest struct {
	Name   string `json:"name"`
	Email  string `json:"email"`
	Agency string `json:"agency"`
}

func (m *Module) createAgent(c *gin.Context, req agentRequest) (Agent, error) {
	return m.svc.CreateAgent(c.Request.Context(), app.TenantOf(c), AgentInput(req))
}

func (m *Module) listAgents(c *gin.Context, _ app.None) (app.List[Agent], error) {
	as, err := m.svc.Agents(c.Request.Context(), app.TenantOf(c))
	return app.ListOf(as), err
}

type linkRequest struct {
	ValidHours int `json:"valid_hours"`
}

func (m *Module) createLink(c *gin.Context, req linkRequest) (AgentLink, error) {
	id, err := app.PathUUID(c, "agentId", "agent")
	if err != nil {
		return AgentLink{}, err
	}
	return m.svc.NewAgentLink(c.Request.Context(), app.TenantOf(c), id, time.Duration(req.ValidHours)*time.Hour)
}

type artistRequest struct {
	Name    string `json:"name"`
	AgentID string `json:"agent_id"`
}

func (m *Module) createArtist(c *gin.Context, req artistRequest) (ArtistRecord, error) {
	agent, err := uuid.Parse(req.AgentID)
	if err != nil {
		return ArtistRecord{}, app.InvalidField("invalid_request", "agent_id", "agent_id must be an agent's id")
	}
	return m.svc.CreateArtist(c.Request.Context(), app.TenantOf(c), req.Name, agent)
}

func (m *Module) listArtists(c *gin.Context, _ app.None) (app.List[ArtistRecord], error) {
	as, err := m.svc.Artists(c.Request.Context(), app.TenantOf(c))
	return app.ListOf(as), err
}

// ---- the agent's side

func (m *Module) agentList(c *gin.Context, _ app.None) (app.Page[Summary], error) {
	a, err := m.agentActor(c)
	if err != nil {
		return app.Page[Summary]{}, err
	}
	return m.listAs(c, a)
}

func (m *Module) agentGet(c *gin.Context, _ app.None) (Detail, error) {
	a, err := m.agentActor(c)
	if err != nil {
		return Detail{}, err
	}
	id, err := bookingID(c)
	if err != nil {
		return Detail{}, err
	}
	return m.svc.Get(c.Request.Context(), app.TenantOf(c), id, a)
}

func (m *Module) agentVersion(c *gin.Context, _ app.None) (Version, error) {
	a, err := m.agentActor(c)
	if err != nil {
		return Version{}, err
	}
	return m.versionAs(c, a)
}

func (m *Module) agentDiff(c *gin.Context, _ app.None) (DiffView, error) {
	a, err := m.agentActor(c)
	if err != nil {
		return DiffView{}, err
	}
	return m.diffAs(c, a)
}

func (m *Module) agentCounter(c *gin.Context, req offerRequest) (Detail, error) {
	a, err := m.agentActor(c)
	if err != nil {
		return Detail{}, err
	}
	return m.offer(c, a, ActCounter, req)
}

func (m *Module) agentAccept(c *gin.Context, req versionRequest) (Detail, error) {
	a, err := m.agentActor(c)
	if err != nil {
		return Detail{}, err
	}
	return m.transition(c, a, ActAccept, TransitionInput{Version: req.Version})
}

func (m *Module) agentDecline(c *gin.Context, req reasonRequest) (Detail, error) {
	a, err := m.agentActor(c)
	if err != nil {
		return Detail{}, err
	}
	return m.transition(c, a, ActDecline, TransitionInput{Version: req.Version, Reason: req.Reason})
}
