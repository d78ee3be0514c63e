package inventory

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"marquee/app"
	"marquee/modules/inventory/internal/model"
	"marquee/modules/inventory/internal/orders"
	"marquee/policies"
)

type orderRow struct {
	Order
	Amount, Created string
}

type ordersPageView struct {
	Event                                 app.EventInfo
	When                                  string
	Rows                                  []orderRow
	Query, Status, Tier, Channel, SortKey string
	Tiers                                 []string
	Next, Base, Filters                   string
	Statuses                              []string
	Channels                              []string
	Sorts                                 []struct{ Key, Label string }
	Flash                                 string
}

const ordersPageSize = 50

// orderFilters reads the orders list's search, filters and sort from the
// query string (bounded; unknown values mean "any").
func orderFilters(c *gin.Context, eventID uuid.UUID) orders.OrderSearch {
	f := orders.OrderSearch{EventID: eventID, Text: strings.TrimSpace(c.Query("q")), Status: c.Query("status"), Tier: c.Query("tier"),
		Channel: c.Query("channel"), Sort: c.Query("sort"), Limit: ordersPageSize}
	if len(f.Text) > 100 {
		f.Text = f.Text[:100]
	}
	if len(f.Tier) > 80 {
		f.Tier = f.Tier[:80]
	}
	if !slices.Contains(orderStatuses, f.Status) {
		f.Status = ""
	}
	if !slices.Contains(model.Channels, f.Channel) {
		f.Channel = ""
	}
	known := false
	for _, s := range orders.OrderSorts {
		known = known || s.Key == f.Sort
	}
	if !known {
		f.Sort = "newest"
	}
	return f
}

var orderStatuses = []string{"paid", "pending", "refunded", "cancelled", "failed"}

// portalOrdersPage lists an event's orders: search by buyer name, e-mail,
// order id or seat, filter by status, tier and channel, sorted, a page at a
// time (keyset cursor); with the CSV export of what is listed.
func (m *Module) portalOrdersPage(c *gin.Context) {
	ev, err := m.staffEvent(c, ObjOrders, policies.Read)
	if err != nil {
		app.Fail(c, err)
		return
	}
	ctx, t := c.Request.Context(), app.TenantOf(c)
	f := orderFilters(c, ev.ID)
	v := ordersPageView{Event: ev, When: localTime(ev), Query: f.Text, Status: f.Status, Tier: f.Tier, Channel: f.Channel, SortKey: f.Sort,
		Statuses: orderStatuses, Channels: model.Channels, Sorts: orders.OrderSorts}
	f.After = c.Query("after")
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
	loc, _ := app.Timezone(ev.Timezone)
	if loc == nil {
		loc = time.UTC
	}
	for _, o := range list {
		v.Rows = append(v.Rows, orderRow{Order: o, Amount: app.FormatMoney(o.AmountMinor, o.Currency), Created: o.CreatedAt.In(loc).Format("2 Jan 2006 15:04")})
	}
	q := url.Values{}
	for k, val := range map[string]string{"q": f.Text, "status": f.Status, "tier": f.Tier, "channel": f.Channel} {
		if val != "" {
			q.Set(k, val)
		}
	}
	v.Filters = q.Encode() // what the CSV export takes
	if f.Sort != "newest" {
		q.Set("sort", f.Sort)
	}
	v.Base = q.Encode()
	if len(list) == ordersPageSize {
		q.Set("after", orders.Cursor(f.Sort, list[len(list)-1]))
		v.Next = fmt.Sprintf("/portal/inventory/%s/orders?%s", ev.ID, q.Encode())
	}
	m.render(c, "portal_orders", ev.Title+" · Orders", v, true)
}

type orderPageView struct {
	Event     app.EventInfo
	Order     Order
	Amount    string
	Remaining string // what a whole refund sends back (less any refunded tickets)
	Digits    int    // the currency's minor-unit digits, for the page's sum
	Tickets   []orderTicket
	// Refundable counts the valid tickets a refund per ticket may choose.
	Refundable int
	History    []string
	CanRefund  bool
	CSRF       string
	Flash      string
	Error      string
}

// orderTicket is a ticket on the order page, with what it cost.
type orderTicket struct {
	Ticket
	Seat       string // in words: "Section A, Row 1, Seat 11"
	Price      string
	PriceMinor int64
	Refundable bool
}

var orderFlashes = map[string]string{
	"refunded":         "Refunded: the tickets are void, their seats are back on sale and the buyer is told by e-mail.",
	"tickets-refunded": "Refunded the chosen tickets: they are void, their seats are back on sale, the buyer is told by e-mail; the other tickets stay valid.",
}

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
	loc, _ := app.Timezone(ev.Timezone)
	if loc == nil {
		loc = time.UTC
	}
	prices, err := m.svc.orders.TicketPrices(ctx, t, o.ID)
	if err != nil {
		app.Fail(c, err)
		return
	}
	v := orderPageView{Event: ev, Order: o, Amount: app.FormatMoney(o.AmountMinor, o.Currency),
		CanRefund: o.Status == "paid" && m.app.CanAtVenue(c, ev.VenueID, ObjOrders, policies.Write),
		CSRF:      m.app.CSRFToken(app.PrincipalOf(c).SessionID.String()), Flash: orderFlashes[c.Query("done")]}
	for _, k := range tickets {
		p, priced := prices[k.ID]
		ot := orderTicket{Ticket: k, PriceMinor: p, Refundable: priced && k.Status == "valid" && o.Status == "paid"}
		if priced {
			ot.Price = app.FormatMoney(p, o.Currency)
		}
		if k.SeatID != nil {
			ot.Seat = seatWords(*k.SeatID)
		}
		if ot.Refundable {
			v.Refundable++
		}
		v.Tickets = append(v.Tickets, ot)
	}
	v.History = append(v.History, "Placed "+o.CreatedAt.In(loc).Format("Mon 2 Jan 2006 15:04 MST"))
	if o.PaidAt != nil {
		v.History = append(v.History, "Paid "+o.PaidAt.In(loc).Format("Mon 2 Jan 2006 15:04 MST"))
	}
	parts, err := m.svc.PartialRefunds(ctx, t, o.ID)
	if err != nil {
		app.Fail(c, err)
		return
	}
	left := o.AmountMinor
	for _, p := range parts {
		left -= p.AmountMinor
		v.History = append(v.History, fmt.Sprintf("Refunded %d ticket(s), %s: %s", len(p.Tickets), app.FormatMoney(p.AmountMinor, p.Currency), p.Reason))
	}
	v.Remaining = app.FormatMoney(left, o.Currency)
	if one := app.FormatMoney(0, o.Currency); strings.Contains(one, ".") {
		v.Digits = len(one) - strings.Index(one, ".") - 1
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
	_, err := m.svc.RefundOrder(c.Request.Context(), app.TenantOf(c), o.ID, refundReason(c))
	m.afterRefund(c, o.EventID, o.ID, err, "refunded")
}

// refundReason is the reason a refund form gives, at most 500 bytes, cut
// between characters.
func refundReason(c *gin.Context) string {
	reason := strings.TrimSpace(c.PostForm("reason"))
	for len(reason) > 500 {
		_, size := utf8.DecodeLastRuneInString(reason)
		reason = reason[:len(reason)-size]
	}
	return reason
}

// afterRefund shows the order again (post/redirect/get): with done, or with
// the refusal in words; an error that is not a refusal is answered as such.
func (m *Module) afterRefund(c *gin.Context, eventID, orderID uuid.UUID, err error, done string) {
	back := fmt.Sprintf("/portal/inventory/%s/orders/%s", eventID, orderID)
	if err == nil {
		c.Redirect(http.StatusSeeOther, back+"?done="+done)
		return
	}
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

// seatWords names a seat id (A-1-11) for people: "Section A, Row 1, Seat 11".
func seatWords(id string) string {
	p := strings.SplitN(id, "-", 3)
	if len(p) != 3 {
		return id
	}
	return fmt.Sprintf("Section %s, Row %s, Seat %s", p[0], p[1], p[2])
}
