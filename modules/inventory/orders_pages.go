package inventory

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"marquee/app"
	"marquee/modules/inventory/internal/orders"
	"marquee/policies"
)

type orderRow struct {
	Order
	Amount, Created string
}

type ordersPageView struct {
	Event               app.EventInfo
	When                string
	Rows                []orderRow
	Query, Status, Tier string
	Tiers               []string
	Next, Base          string
	Statuses            []string
	Flash               string
}

const ordersPageSize = 50

// portalOrdersPage lists an event's orders: search by buyer name, e-mail,
// order id or seat, filter by status and tier, newest first, a page at a
// time (keyset cursor).
func (m *Module) portalOrdersPage(c *gin.Context) {
	ev, err := m.staffEvent(c, ObjOrders, policies.Read)
	if err != nil {
		app.Fail(c, err)
		return
	}
	ctx, t := c.Request.Context(), app.TenantOf(c)
	v := ordersPageView{Event: ev, When: localTime(ev), Query: strings.TrimSpace(c.Query("q")), Status: c.Query("status"), Tier: c.Query("tier"),
		Statuses: []string{"paid", "pending", "refunded", "cancelled", "failed"}}
	if len(v.Query) > 100 {
		v.Query = v.Query[:100]
	}
	f := orders.OrderSearch{EventID: ev.ID, Text: v.Query, Status: v.Status, Tier: v.Tier, Limit: ordersPageSize}
	if at, err := time.Parse(time.RFC3339Nano, c.Query("before")); err == nil {
		if id, err := uuid.Parse(c.Query("before_id")); err == nil {
			f.Before, f.BeforeID = &at, id
		}
	}
	list, err := m.svc.SearchOrders(ctx, t, f)
	if err != nil {
		app.Fail(c, err)
		return
	}
	if inv, err := m.svc.Inventory(ctx, t, ev.ID); err == nil {
		for _, tr := range inv.Tiers {
			v.Tiers = append(v.Tiers, tr.Name)
		}
	}
	loc, _ := time.LoadLocation(ev.Timezone)
	if loc == nil {
		loc = time.UTC
	}
	for _, o := range list {
		v.Rows = append(v.Rows, orderRow{Order: o, Amount: app.FormatMoney(o.AmountMinor, o.Currency), Created: o.CreatedAt.In(loc).Format("2 Jan 2006 15:04")})
	}
	q := url.Values{}
	for k, val := range map[string]string{"q": v.Query, "status": v.Status, "tier": v.Tier} {
		if val != "" {
			q.Set(k, val)
		}
	}
	v.Base = q.Encode()
	if len(list) == ordersPageSize {
		last := list[len(list)-1]
		q.Set("before", last.CreatedAt.UTC().Format(time.RFC3339Nano))
		q.Set("before_id", last.ID.String())
		v.Next = fmt.Sprintf("/portal/inventory/%s/orders?%s", ev.ID, q.Encode())
	}
	m.render(c, "portal_orders", ev.Title+" · Orders", v, true)
}

type orderPageView struct {
	Event     app.EventInfo
	Order     Order
	Amount    string
	Tickets   []Ticket
	History   []string
	CanRefund bool
	CSRF      string
	Flash     string
	Error     string
}

var orderFlashes = map[string]string{"refunded": "Refunded: the tickets are void, their seats are back on sale and the buyer is told by e-mail."}

// portalOrderPage shows one order: its tickets, its payment and what
// happened to it, with a refund for a paid order.
func (m *Module) portalOrderPage(c *gin.Context) {
	ev, o, ok := m.staffOrder(c, policies.Read)
	if !ok {
		return
	}
	ctx, t := c.Request.Context(), app.TenantOf(c)
	tickets, err := m.svc.Tickets(ctx, t, o.ID)
	if err != nil {
		app.Fail(c, err)
		return
	}
	loc, _ := time.LoadLocation(ev.Timezone)
	if loc == nil {
		loc = time.UTC
	}
	v := orderPageView{Event: ev, Order: o, Amount: app.FormatMoney(o.AmountMinor, o.Currency), Tickets: tickets,
		CanRefund: o.Status == "paid" && m.app.CanAtVenue(c, ev.VenueID, ObjOrders, policies.Write),
		CSRF:      m.app.CSRFToken(app.PrincipalOf(c).SessionID.String()), Flash: orderFlashes[c.Query("done")]}
	v.History = append(v.History, "Placed "+o.CreatedAt.In(loc).Format("Mon 2 Jan 2006 15:04 MST"))
	if o.PaidAt != nil {
		v.History = append(v.History, "Paid "+o.PaidAt.In(loc).Format("Mon 2 Jan 2006 15:04 MST"))
	}
	if o.Status != "paid" && o.Status != "pending" {
		v.History = append(v.History, "Now "+o.Status)
	}
	if o.Note != "" {
		v.History = append(v.History, "Note: "+o.Note)
	}
	if key := c.Query("form"); key != "" {
		var msg string
		if m.app.TakeForm(c, key, &msg) {
			v.Error = msg
		}
	}
	m.render(c, "portal_order", "Order "+o.ID.String()[:8], v, true)
}

// portalRefundOrder refunds a paid order in full (the page asked for
// confirmation), then shows the order again (post/redirect/get).
func (m *Module) portalRefundOrder(c *gin.Context) {
	_, o, ok := m.staffOrder(c, policies.Write)
	if !ok {
		return
	}
	back := fmt.Sprintf("/portal/inventory/%s/orders/%s", o.EventID, o.ID)
	reason := strings.TrimSpace(c.PostForm("reason"))
	if len(reason) > 500 {
		reason = reason[:500]
	}
	if _, err := m.svc.RefundOrder(c.Request.Context(), app.TenantOf(c), o.ID, reason); err != nil {
		var e *app.Error
		if !errors.As(err, &e) {
			app.Fail(c, err)
			return
		}
		q := ""
		if key := m.app.StashForm(c, "Not refunded: "+e.Detail); key != "" {
			q = "?form=" + key
		}
		c.Redirect(http.StatusSeeOther, back+q)
		return
	}
	c.Redirect(http.StatusSeeOther, back+"?done=refunded")
}

// staffOrder reads the path's order of the path's event, for staff holding
// the orders permission at its venue.
func (m *Module) staffOrder(c *gin.Context, action string) (app.EventInfo, Order, bool) {
	ev, err := m.staffEvent(c, ObjOrders, action)
	if err != nil {
		app.Fail(c, err)
		return ev, Order{}, false
	}
	id, err := app.PathUUID(c, "orderId", "order")
	if err != nil {
		app.Fail(c, err)
		return ev, Order{}, false
	}
	o, err := m.svc.Order(c.Request.Context(), app.TenantOf(c), id)
	if err == nil && o.EventID != ev.ID {
		err = app.NotFound("order")
	}
	if err != nil {
		app.Fail(c, err)
		return ev, Order{}, false
	}
	return ev, o, true
}
