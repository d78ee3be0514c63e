package inventory

import (
	"html/template"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"marquee/app"
	"marquee/policies"
)

// afterSale reads, for an order page's tickets, their open listings and
// whether each may still be transferred.
func (m *Module) afterSale(c *gin.Context, tickets []Ticket) (map[uuid.UUID]ticketView, error) {
	ctx, t := c.Request.Context(), app.TenantOf(c)
	ids := make([]uuid.UUID, 0, len(tickets))
	for _, tk := range tickets {
		ids = append(ids, tk.ID)
	}
	open, err := m.svc.OpenListings(ctx, t, ids)
	if err != nil {
		return nil, err
	}
	flags, err := m.svc.TransferableTickets(ctx, t, ids)
	if err != nil {
		return nil, err
	}
	out := make(map[uuid.UUID]ticketView, len(tickets))
	for _, tk := range tickets {
		tv := ticketView{Ticket: tk, Transferable: tk.Status == "valid" && flags[tk.ID]}
		if l, ok := open[tk.ID]; ok {
			tv.Listing = &l
			tv.Transferable = false
		}
		out[tk.ID] = tv
	}
	return out, nil
}

type storeTicketView struct {
	Event  app.EventInfo
	When   string
	Ticket ticketView
	Holder string
}

// storeTicketPage is a ticket's own page (a transfer's recipient holds it
// by its signed link): the code, and resale.
func (m *Module) storeTicketPage(c *gin.Context) {
	h, err := m.holderOf(c)
	if err != nil {
		app.Fail(c, err)
		return
	}
	ctx, t := c.Request.Context(), app.TenantOf(c)
	ev, err := m.svc.Event(ctx, t, h.Ticket.EventID)
	if err != nil {
		app.Fail(c, err)
		return
	}
	after, err := m.afterSale(c, []Ticket{h.Ticket})
	if err != nil {
		app.Fail(c, err)
		return
	}
	tv := after[h.Ticket.ID]
	if tv.Status == "valid" {
		svg, err := QRSVG(tv.Token, 220)
		if err != nil {
			app.Fail(c, err)
			return
		}
		tv.QR = template.HTML(svg) // #nosec: generated from a bitmap, no input text in the markup
	}
	v := storeTicketView{Event: ev, When: localTime(ev), Ticket: tv}
	if sig := c.Query("tsig"); sig != "" {
		v.Holder = "tsig=" + sig
	} else if sig := c.Query("sig"); sig != "" {
		v.Holder = "sig=" + sig
	}
	c.Header("Cache-Control", "no-store")
	c.Header("Referrer-Policy", "no-referrer")
	m.render(c, "store_ticket", "Your ticket", v, false)
}

type storeWaitlistView struct {
	Event    app.EventInfo
	When     string
	Entry    WaitlistEntry
	Sig      string
	TestMode bool
	Amount   string
}

// storeWaitlistPage is a waiting-list entry's page: the place in line, or
// the offer with its deadline and a way to take it.
func (m *Module) storeWaitlistPage(c *gin.Context) {
	e, err := m.entryOf(c)
	if err != nil {
		app.Fail(c, err)
		return
	}
	ctx, t := c.Request.Context(), app.TenantOf(c)
	ev, err := m.svc.Event(ctx, t, e.EventID)
	if err != nil {
		app.Fail(c, err)
		return
	}
	v := storeWaitlistView{Event: ev, When: localTime(ev), Entry: e, Sig: c.Query("wsig"), TestMode: m.app.Config.TestModePayments()}
	if e.HoldID != nil && e.Status == "offered" {
		if h, err := m.svc.Hold(ctx, t, *e.HoldID); err == nil {
			v.Amount = Money(h.AmountMinor, h.Currency)
		}
	}
	c.Header("Cache-Control", "no-store")
	c.Header("Referrer-Policy", "no-referrer")
	m.render(c, "store_waitlist", "Waiting list", v, false)
}

type portalAfterSaleView struct {
	Event     app.EventInfo
	When      string
	Waitlist  []WaitlistEntry
	Listings  []ResaleListing
	Transfers []TransferRecord
	Offer     int
	Settings  ResaleSettings
}

// portalAfterSalePage lists an event's waiting lists, resale listings and
// transfers for staff.
func (m *Module) portalAfterSalePage(c *gin.Context) {
	ev, err := m.staffEvent(c, ObjOrders, policies.Read)
	if err != nil {
		app.Fail(c, err)
		return
	}
	ctx, t := c.Request.Context(), app.TenantOf(c)
	v := portalAfterSaleView{Event: ev, When: localTime(ev)}
	if v.Waitlist, err = m.svc.Waitlist(ctx, t, ev.ID); err == nil {
		if v.Listings, err = m.svc.ResaleListings(ctx, t, ev.ID, false); err == nil {
			if v.Transfers, err = m.svc.Transfers(ctx, t, ev.ID); err == nil {
				if v.Offer, err = m.svc.OfferMinutes(ctx, t, ev.ID); err == nil {
					v.Settings, err = m.svc.ResaleSettingsOf(ctx, t)
				}
			}
		}
	}
	if err != nil {
		app.Fail(c, err)
		return
	}
	m.render(c, "portal_aftersale", ev.Title+": after the sale", v, true)
}

// registerAfterSalePages adds the pages of transfer, resale and the
// waiting list.
func (m *Module) registerAfterSalePages(r *app.Registrar) {
	pub, signed := app.Public(), app.SignedIn()
	r.Storefront(http.MethodGet, "/tickets/:ticketId", pub, m.storeTicketPage)
	r.Storefront(http.MethodGet, "/waitlist/:entryId", pub, m.storeWaitlistPage)
	r.Portal(http.MethodGet, "/inventory/:eventId/after-sale", signed, m.portalAfterSalePage)
}
