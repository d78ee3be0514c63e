package inventory

import (
	"context"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"marquee/app"
	"marquee/policies"
	"marquee/tenants"
)

// After the sale: transfer, resale and the waiting list. A ticket's holder
// proves it with the order's signed link (?sig=), the buyer token that
// bought it, or, for a ticket received by transfer, the ticket's own signed
// link (?tsig=); staff with orders write at the event's venue may act too.

// hideGivenAway blanks the codes of an order's tickets that went to
// someone else by transfer: the order's buyer no longer holds them (the
// recipient has the ticket's own link), and it says whom each went to.
func (m *Module) hideGivenAway(ctx context.Context, t tenants.Tenant, tickets []Ticket) ([]Ticket, map[uuid.UUID]TransferRecord, error) {
	ids := make([]uuid.UUID, 0, len(tickets))
	for _, tk := range tickets {
		ids = append(ids, tk.ID)
	}
	received, err := m.svc.ReceivedTickets(ctx, t, ids)
	if err != nil || len(received) == 0 {
		return tickets, received, err
	}
	out := make([]Ticket, len(tickets))
	for i, tk := range tickets {
		if _, ok := received[tk.ID]; ok {
			tk.Token = ""
		}
		out[i] = tk
	}
	return out, received, nil
}

var errNoOffer = app.Conflict("no_offer", "this waiting-list entry has no open offer")

// holding is a ticket its holder (or staff) acts on.
type holding struct {
	Ticket Ticket
	Staff  *uuid.UUID
}

func (m *Module) holderOf(c *gin.Context) (holding, error) {
	id, err := app.PathUUID(c, "ticketId", "ticket")
	if err != nil {
		return holding{}, err
	}
	ctx, t := c.Request.Context(), app.TenantOf(c)
	tk, err := m.svc.Ticket(ctx, t, id)
	if err != nil {
		return holding{}, err
	}
	if m.svc.TicketLinkOK(t, id, c.Query("tsig")) {
		return holding{Ticket: tk}, nil
	}
	received, err := m.svc.ReceivedTickets(ctx, t, []uuid.UUID{id})
	if err != nil {
		return holding{}, err
	}
	if _, ok := received[id]; !ok {
		// The order's buyer holds the tickets of their order that they did
		// not give away.
		if o, err := m.svc.Order(ctx, t, tk.OrderID); err == nil &&
			(m.svc.OrderLinkOK(t, o.ID, c.Query("sig")) || (o.BuyerID != "" && o.BuyerID == m.buyer(c))) {
			return holding{Ticket: tk}, nil
		}
	}
	if m.staffAt(c, tk.EventID, ObjOrders, policies.Write) {
		uid := app.PrincipalOf(c).UserID
		return holding{Ticket: tk, Staff: &uid}, nil
	}
	return holding{}, app.NotFound("ticket")
}

func (m *Module) transferTicket(c *gin.Context, req TransferRecipient) (TransferResult, error) {
	h, err := m.holderOf(c)
	if err != nil {
		return TransferResult{}, err
	}
	return m.svc.TransferTicket(c.Request.Context(), app.TenantOf(c), h.Ticket.ID, req, h.Staff)
}

// holderTicketView is a ticket as its holder sees it.
type holderTicketView struct {
	Ticket
	TicketURL    string         `json:"ticket_url"`
	Transferable bool           `json:"transferable"`
	Listing      *ResaleListing `json:"listing,omitempty"`
}

func (m *Module) holderTicket(c *gin.Context, _ app.None) (holderTicketView, error) {
	h, err := m.holderOf(c)
	if err != nil {
		return holderTicketView{}, err
	}
	return m.holderTicketView(c, h.Ticket)
}

func (m *Module) holderTicketView(c *gin.Context, tk Ticket) (holderTicketView, error) {
	ctx, t := c.Request.Context(), app.TenantOf(c)
	v := holderTicketView{Ticket: tk, TicketURL: m.svc.TicketPath(t, tk.ID)}
	flags, err := m.svc.TransferableTickets(ctx, t, []uuid.UUID{tk.ID})
	if err != nil {
		return v, err
	}
	v.Transferable = tk.Status == "valid" && flags[tk.ID]
	open, err := m.svc.OpenListings(ctx, t, []uuid.UUID{tk.ID})
	if err != nil {
		return v, err
	}
	if l, ok := open[tk.ID]; ok {
		v.Listing = &l
		v.Transferable = false
	}
	c.Header("Cache-Control", "no-store")
	return v, nil
}

type listRequest struct {
	Price int64 `json:"price"`
}

func (m *Module) listTicket(c *gin.Context, req listRequest) (ResaleListing, error) {
	h, err := m.holderOf(c)
	if err != nil {
		return ResaleListing{}, err
	}
	return m.svc.ListForResale(c.Request.Context(), app.TenantOf(c), h.Ticket.ID, req.Price)
}

func (m *Module) delistTicket(c *gin.Context, _ app.None) (ResaleListing, error) {
	h, err := m.holderOf(c)
	if err != nil {
		return ResaleListing{}, err
	}
	return m.svc.Delist(c.Request.Context(), app.TenantOf(c), h.Ticket.ID)
}

func (m *Module) eventListings(c *gin.Context, _ app.None) (app.List[ResaleListing], error) {
	id, err := app.PathUUID(c, "eventId", "event")
	if err != nil {
		return app.List[ResaleListing]{}, err
	}
	// Staff see every listing (sold and withdrawn too); everyone else the
	// ones on sale now.
	public := !m.staffAt(c, id, ObjOrders, policies.Read)
	ls, err := m.svc.ResaleListings(c.Request.Context(), app.TenantOf(c), id, public)
	return app.List[ResaleListing]{Items: app.NonNil(ls)}, err
}

func (m *Module) buyListing(c *gin.Context, _ app.None) (Hold, error) {
	id, err := app.PathUUID(c, "listingId", "listing")
	if err != nil {
		return Hold{}, err
	}
	buyer := m.buyer(c)
	if buyer == "" {
		return Hold{}, app.Invalid("buyer_required", "send X-Buyer-Token (POST /api/v1/buyer-sessions mints one)")
	}
	return m.svc.BuyResale(c.Request.Context(), app.TenantOf(c), id, buyer)
}

func (m *Module) getResaleSettings(c *gin.Context, _ app.None) (ResaleSettings, error) {
	return m.svc.ResaleSettingsOf(c.Request.Context(), app.TenantOf(c))
}

func (m *Module) putResaleSettings(c *gin.Context, req ResaleSettings) (ResaleSettings, error) {
	return m.svc.SetResaleSettings(c.Request.Context(), app.TenantOf(c), req)
}

// waitlistView is an entry as its person sees it, with its signed link.
type waitlistView struct {
	WaitlistEntry
	URL string `json:"url"`
}

func (m *Module) joinWaitlist(c *gin.Context, req WaitlistJoin) (waitlistView, error) {
	ev, err := m.event(c)
	if err != nil {
		return waitlistView{}, err
	}
	t := app.TenantOf(c)
	e, err := m.svc.JoinWaitlist(c.Request.Context(), t, ev.ID, req)
	if err != nil {
		return waitlistView{}, err
	}
	return waitlistView{WaitlistEntry: e, URL: m.svc.WaitlistPath(t, e.ID)}, nil
}

// entryOf reads the path's entry for its person (signed link) or staff.
func (m *Module) entryOf(c *gin.Context) (WaitlistEntry, error) {
	id, err := app.PathUUID(c, "entryId", "waitlist entry")
	if err != nil {
		return WaitlistEntry{}, err
	}
	ctx, t := c.Request.Context(), app.TenantOf(c)
	e, err := m.svc.WaitlistEntryOf(ctx, t, id)
	if err != nil {
		return WaitlistEntry{}, err
	}
	if m.svc.WaitlistLinkOK(t, id, c.Query("wsig")) || m.staffAt(c, e.EventID, ObjOrders, policies.Write) {
		return e, nil
	}
	return WaitlistEntry{}, app.NotFound("waitlist entry")
}

func (m *Module) getWaitlistEntry(c *gin.Context, _ app.None) (waitlistView, error) {
	e, err := m.entryOf(c)
	if err != nil {
		return waitlistView{}, err
	}
	c.Header("Cache-Control", "no-store")
	return waitlistView{WaitlistEntry: e, URL: m.svc.WaitlistPath(app.TenantOf(c), e.ID)}, nil
}

func (m *Module) leaveWaitlist(c *gin.Context, _ app.None) (waitlistView, error) {
	e, err := m.entryOf(c)
	if err != nil {
		return waitlistView{}, err
	}
	t := app.TenantOf(c)
	if e, err = m.svc.LeaveWaitlist(c.Request.Context(), t, e.ID); err != nil {
		return waitlistView{}, err
	}
	return waitlistView{WaitlistEntry: e, URL: m.svc.WaitlistPath(t, e.ID)}, nil
}

type offerOrderRequest struct {
	Name string `json:"name"`
}

func (m *Module) orderOffer(c *gin.Context, req offerOrderRequest) (orderView, error) {
	e, err := m.entryOf(c)
	if err != nil {
		return orderView{}, err
	}
	t := app.TenantOf(c)
	o, err := m.svc.WaitlistOrder(c.Request.Context(), t, e.ID, req.Name)
	if err != nil {
		return orderView{}, err
	}
	c.Header("Cache-Control", "no-store")
	return buyerView(o, m.svc.OrderPath(t, o.ID), nil), nil
}

func (m *Module) eventWaitlist(c *gin.Context, _ app.None) (app.List[WaitlistEntry], error) {
	ev, err := m.staffEvent(c, ObjOrders, policies.Read)
	if err != nil {
		return app.List[WaitlistEntry]{}, err
	}
	es, err := m.svc.Waitlist(c.Request.Context(), app.TenantOf(c), ev.ID)
	return app.List[WaitlistEntry]{Items: app.NonNil(es)}, err
}

type waitlistSettings struct {
	OfferMinutes int `json:"offer_minutes"`
}

func (m *Module) getWaitlistSettings(c *gin.Context, _ app.None) (waitlistSettings, error) {
	ev, err := m.staffEvent(c, ObjInventory, policies.Read)
	if err != nil {
		return waitlistSettings{}, err
	}
	n, err := m.svc.OfferMinutes(c.Request.Context(), app.TenantOf(c), ev.ID)
	return waitlistSettings{OfferMinutes: n}, err
}

func (m *Module) putWaitlistSettings(c *gin.Context, req waitlistSettings) (waitlistSettings, error) {
	ev, err := m.staffEvent(c, ObjInventory, policies.Write)
	if err != nil {
		return waitlistSettings{}, err
	}
	return req, m.svc.SetOfferMinutes(c.Request.Context(), app.TenantOf(c), ev.ID, req.OfferMinutes)
}

func (m *Module) eventTransfers(c *gin.Context, _ app.None) (app.List[TransferRecord], error) {
	ev, err := m.staffEvent(c, ObjOrders, policies.Read)
	if err != nil {
		return app.List[TransferRecord]{}, err
	}
	rs, err := m.svc.Transfers(c.Request.Context(), app.TenantOf(c), ev.ID)
	return app.List[TransferRecord]{Items: app.NonNil(rs)}, err
}
