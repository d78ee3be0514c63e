package inventory

import (
	"encoding/csv"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"marquee/app"
	"marquee/modules/inventory/internal/orders"
	"marquee/policies"
)

// registerOrderOpsPages adds the portal's order tools beyond the list and
// the order page: refunds per ticket, the CSV export and sales overviews.
func (m *Module) registerOrderOpsPages(r *app.Registrar) {
	signed := app.SignedIn()
	r.Portal(http.MethodPost, "/inventory/:eventId/orders/:orderId/refund-tickets", signed, m.portalRefundTickets)
	r.Portal(http.MethodGet, "/inventory/:eventId/orders.csv", signed, m.portalOrdersCSV)
	r.Portal(http.MethodGet, "/inventory/:eventId/sales", signed, m.portalEventSales)
	r.Portal(http.MethodGet, "/sales", signed, m.portalChainSales)
	r.Nav("Sales", "/portal/sales", 21, app.Require(ObjOrders, policies.Read))
}

// portalRefundTickets refunds the ticked tickets of a paid order (the page
// asked for confirmation), then shows the order again (post/redirect/get).
func (m *Module) portalRefundTickets(c *gin.Context) {
	_, o, ok := m.staffOrder(c, policies.Write)
	if !ok {
		return
	}
	var ids []uuid.UUID
	for _, s := range c.PostFormArray("ticket") {
		if id, err := uuid.Parse(s); err == nil && len(ids) < orders.MaxTicketsPerRefund {
			ids = append(ids, id)
		}
	}
	var err error
	if len(ids) == 0 {
		err = app.Invalid("invalid_tickets", "tick at least one ticket to refund")
	} else {
		_, err = m.svc.RefundTickets(c.Request.Context(), app.TenantOf(c), o.ID, ids, refundReason(c))
	}
	m.afterRefund(c, o.EventID, o.ID, err, "tickets-refunded")
}

// csvSafe keeps a cell from being read as a formula by spreadsheets (a
// buyer's name is theirs to choose).
func csvSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// portalOrdersCSV exports the orders the list's search and filters select,
// one line per ticket (attendees), for staff who may read orders.
func (m *Module) portalOrdersCSV(c *gin.Context) {
	ev, err := m.staffEvent(c, ObjOrders, policies.Read)
	if err != nil {
		app.Fail(c, err)
		return
	}
	loc, _ := app.Timezone(ev.Timezone)
	if loc == nil {
		loc = time.UTC
	}
	f := orderFilters(c, ev.ID)
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '-'
	}, ev.Title)
	c.Header("Content-Type", "text/csv; charset=utf-8")
	c.Header("Content-Disposition", fmt.Sprintf(`attachment; filename="orders-%s-%s.csv"`, name, ev.StartsAt.In(loc).Format("2006-01-02")))
	c.Header("Cache-Control", "no-store")
	c.Status(http.StatusOK)
	w := csv.NewWriter(c.Writer)
	_ = w.Write([]string{"order_id", "placed_at", "paid_at", "buyer_name", "buyer_email", "order_status", "order_amount", "currency", "channel",
		"ticket_id", "tier", "zone", "seat", "holder_name", "holder_email", "ticket_status", "ticket_price"})
	minor := func(v int64, cur string) string { // the amount in the currency's unit, no symbol
		s := app.FormatMoney(v, cur)
		return strings.ReplaceAll(strings.TrimPrefix(s, cur+" "), ",", "")
	}
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return csvSafe(*p)
	}
	err = m.svc.orders.Attendees(c.Request.Context(), app.TenantOf(c), f, func(rows []orders.AttendeeRow) error {
		for _, r := range rows {
			paid, ticket, price := "", "", ""
			if r.PaidAt != nil {
				paid = r.PaidAt.In(loc).Format(time.RFC3339)
			}
			if r.TicketID != nil {
				ticket = r.TicketID.String()
			}
			if r.PriceMinor != nil {
				price = minor(*r.PriceMinor, r.Currency)
			}
			if err := w.Write([]string{r.OrderID.String(), r.CreatedAt.In(loc).Format(time.RFC3339), paid, csvSafe(r.Name), csvSafe(r.Email), r.OrderStatus,
				minor(r.OrderAmount, r.Currency), r.Currency, r.Channel, ticket, str(r.Tier), str(r.Zone), str(r.SeatID), str(r.HolderName), str(r.HolderEmail),
				str(r.TicketStatus), price}); err != nil {
				return err
			}
		}
		w.Flush()
		return w.Error()
	})
	if err != nil {
		// The header is out: the file ends early, and the log says why.
		m.app.Log.Error("orders export cut short", "event", ev.ID, "err", err)
	}
	w.Flush()
}

// salesLine is a row of a sales breakdown: tickets and revenue (one text
// per currency).
type salesLine struct {
	Name    string
	Sold    int64
	Revenue string
	money   map[string]int64
}

// salesBar is a bar of the sales chart (server-rendered SVG).
type salesBar struct {
	X, Y, W, H float64
	Label      string // the x-axis label, on some bars
	LabelX     float64
	Title      string // the tooltip
}

// salesView is a sales overview: of one event, or of the chain's events.
type salesView struct {
	Event                 *app.EventInfo
	When                  string
	Sold                  int64
	Revenue               string
	ByTier                []salesLine
	ByChannel             []salesLine
	ByEvent               []salesLine
	Bars                  []salesBar
	ChartMax              int64
	ChartFrom, ChartTo    string
	ChartUnit, ChartZone  string
	ChartW, ChartH, BaseY float64
	Range                 string
	Ranges                []struct{ Key, Label string }
	Empty                 bool
}

func addTo(lines map[string]*salesLine, name string, r orders.SalesRow) {
	l := lines[name]
	if l == nil {
		l = &salesLine{Name: name, money: map[string]int64{}}
		lines[name] = l
	}
	l.Sold += r.Sold
	l.money[r.Currency] += r.Revenue
}

func moneyText(m map[string]int64) string {
	curs := make([]string, 0, len(m))
	for c := range m {
		curs = append(curs, c)
	}
	sort.Strings(curs)
	parts := make([]string, len(curs))
	for i, c := range curs {
		parts[i] = app.FormatMoney(m[c], c)
	}
	if len(parts) == 0 {
		return "—"
	}
	return strings.Join(parts, " + ")
}

func sortedLines(lines map[string]*salesLine) []salesLine {
	out := make([]salesLine, 0, len(lines))
	for _, l := range lines {
		l.Revenue = moneyText(l.money)
		out = append(out, *l)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Sold != out[j].Sold {
			return out[i].Sold > out[j].Sold
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// buildSales folds sales rows into totals, breakdowns and a chart of
// tickets sold per day (per week past 60 days) in loc.
func buildSales(rows []orders.SalesRow, loc *time.Location, zone string, eventName func(uuid.UUID) string) salesView {
	v := salesView{ChartW: 720, ChartH: 240, BaseY: 200, ChartZone: zone}
	tiers, channels, events := map[string]*salesLine{}, map[string]*salesLine{}, map[string]*salesLine{}
	total := map[string]int64{}
	perDay := map[time.Time]int64{}
	var first, last time.Time
	for _, r := range rows {
		v.Sold += r.Sold
		total[r.Currency] += r.Revenue
		addTo(tiers, r.Tier, r)
		addTo(channels, strings.ReplaceAll(r.Channel, "_", " "), r)
		if eventName != nil {
			addTo(events, eventName(r.EventID), r)
		}
		l := r.Hour.In(loc)
		day := time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, loc)
		perDay[day] += r.Sold
		if first.IsZero() || day.Before(first) {
			first = day
		}
		if day.After(last) {
			last = day
		}
	}
	v.Revenue = moneyText(total)
	v.ByTier, v.ByChannel = sortedLines(tiers), sortedLines(channels)
	if eventName != nil {
		v.ByEvent = sortedLines(events)
	}
	v.Empty = v.Sold == 0
	if v.Empty {
		return v
	}
	// At least a week on the axis, so one day of sales is not one wide slab.
	if last.Sub(first) < 6*24*time.Hour {
		last = first.AddDate(0, 0, 6)
	}
	// Buckets: days, or weeks (from the first day) when there are too many days.
	step := 1
	v.ChartUnit = "day"
	days := int(last.Sub(first).Hours()/24+0.5) + 1
	if days > 60 {
		step, v.ChartUnit = 7, "week"
	}
	var buckets []time.Time
	counts := map[time.Time]int64{}
	for d := first; !d.After(last); d = d.AddDate(0, 0, step) {
		buckets = append(buckets, d)
	}
	for day, n := range perDay {
		i := int(day.Sub(first).Hours()/24+0.5) / step
		counts[buckets[min(i, len(buckets)-1)]] += n
	}
	for _, b := range buckets {
		v.ChartMax = max(v.ChartMax, counts[b])
	}
	left, width := 48.0, v.ChartW-60
	slot := width / float64(len(buckets))
	labelEvery := max(1, len(buckets)/8)
	for i, b := range buckets {
		n := counts[b]
		h := float64(n) / float64(v.ChartMax) * (v.BaseY - 20)
		w := min(max(slot*0.8, 1), 56)
		bar := salesBar{X: left + float64(i)*slot + (slot-w)/2, W: w, Y: v.BaseY - h, H: h,
			Title: fmt.Sprintf("%s: %d ticket(s)", b.Format("Mon 2 Jan 2006"), n)}
		if step == 7 {
			bar.Title = fmt.Sprintf("Week of %s: %d ticket(s)", b.Format("2 Jan 2006"), n)
		}
		if i%labelEvery == 0 {
			bar.Label, bar.LabelX = b.Format("2 Jan"), bar.X+bar.W/2
		}
		v.Bars = append(v.Bars, bar)
	}
	v.ChartFrom, v.ChartTo = first.Format("2 Jan 2006"), last.Format("2 Jan 2006")
	return v
}

// portalEventSales is one event's sales: sold, revenue, by tier and
// channel, and over time.
func (m *Module) portalEventSales(c *gin.Context) {
	ev, err := m.staffEvent(c, ObjOrders, policies.Read)
	if err != nil {
		app.Fail(c, err)
		return
	}
	rows, err := m.svc.orders.Sales(c.Request.Context(), app.TenantOf(c), []uuid.UUID{ev.ID})
	if err != nil {
		app.Fail(c, err)
		return
	}
	loc, _ := app.Timezone(ev.Timezone)
	if loc == nil {
		loc = time.UTC
	}
	v := buildSales(rows, loc, ev.Timezone, nil)
	v.Event, v.When = &ev, localTime(ev)
	m.render(c, "portal_sales", ev.Title+" · Sales", v, true)
}

var salesRanges = []struct{ Key, Label string }{
	{"upcoming", "Upcoming events"}, {"past90", "Events of the last 90 days"}, {"year", "Events of the last 12 months and upcoming"},
}

// portalChainSales is the chain's sales over the events of a period that
// the member may see (their venues' with a venue role).
func (m *Module) portalChainSales(c *gin.Context) {
	if !m.app.CanAnywhere(c, ObjOrders, policies.Read) {
		app.Fail(c, app.Forbidden("forbidden", "your role does not allow you to see sales"))
		return
	}
	dir := m.app.Events()
	if dir == nil {
		app.Fail(c, app.Unavailable("events_unavailable", 0, "no module provides events"))
		return
	}
	ctx, t := c.Request.Context(), app.TenantOf(c)
	now := time.Now()
	rng := c.Query("range")
	f := app.EventFilter{Limit: 500}
	switch rng {
	case "past90":
		f.From, f.To = now.AddDate(0, 0, -90), now
	case "year":
		f.From = now.AddDate(-1, 0, 0)
	default:
		rng, f.From = "upcoming", now.Add(-6*time.Hour)
	}
	evs, err := dir.Events(ctx, t, f)
	if err != nil {
		app.Fail(c, err)
		return
	}
	names := map[uuid.UUID]string{}
	var ids []uuid.UUID
	for _, e := range evs {
		if !m.app.CanAtVenue(c, e.VenueID, ObjOrders, policies.Read) {
			continue
		}
		ids = append(ids, e.ID)
		loc, _ := app.Timezone(e.Timezone)
		if loc == nil {
			loc = time.UTC
		}
		names[e.ID] = e.Title + " · " + e.StartsAt.In(loc).Format("2 Jan 2006")
	}
	rows, err := m.svc.orders.Sales(ctx, t, ids)
	if err != nil {
		app.Fail(c, err)
		return
	}
	v := buildSales(rows, time.UTC, "UTC", func(id uuid.UUID) string { return names[id] })
	v.Range, v.Ranges = rng, salesRanges
	m.render(c, "portal_sales", "Sales", v, true)
}
