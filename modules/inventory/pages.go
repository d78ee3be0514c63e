package inventory

import (
	"embed"
	"fmt"
	"html/template"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"marquee/app"
	"marquee/policies"
)

//go:embed templates/*.html
var templateFS embed.FS

func parsePages() (*template.Template, error) {
	return template.New("inventory").Funcs(template.FuncMap{
		"money":  Money,
		"human":  func(s string) string { return strings.ReplaceAll(s, "_", " ") },
		"deref":  func(p *int64) int64 { return *p },
		"timeOf": func(p *time.Time) time.Time { return *p },
		// at shows a time in the venue's zone (stored UTC).
		"at": func(t time.Time, tz string) string {
			loc, err := app.Timezone(tz)
			if err != nil {
				loc = time.UTC
			}
			return t.In(loc).Format("Mon 2 Jan 15:04 MST")
		},
	}).ParseFS(templateFS, "templates/*.html")
}

// zeroDecimal lists currencies without minor units.
var zeroDecimal = map[string]bool{"JPY": true, "KRW": true, "VND": true, "CLP": true, "ISK": true, "HUF": false}

// Money formats minor units of a currency for people.
func Money(minor int64, currency string) string {
	if zeroDecimal[currency] {
		return fmt.Sprintf("%s %d", currency, minor)
	}
	sign := ""
	if minor < 0 {
		sign, minor = "-", -minor
	}
	return fmt.Sprintf("%s %s%d.%02d", currency, sign, minor/100, minor%100)
}

func localTime(ev app.EventInfo) string {
	loc, err := app.Timezone(ev.Timezone)
	if err != nil {
		loc = time.UTC
	}
	return ev.StartsAt.In(loc).Format("Mon 2 Jan 2006, 15:04 MST")
}

type storeEventsView struct {
	Items      []storeEventItem
	Category   string
	Categories []string
	From, To   string
	Venues     []venueOption
	VenueID    string
}

type venueOption struct {
	ID, Name string
}

type storeEventItem struct {
	CatalogueItem
	When  string
	Price string
}

func (m *Module) storeEventsPage(c *gin.Context) {
	f, err := catalogueFilter(c)
	if err != nil {
		app.Fail(c, err)
		return
	}
	f.Limit = 200
	if c.Query("status") == "" {
		// Buyers see sold-out events too (marked so), never past ones.
		f.Statuses = []string{"on_sale", "sold_out"}
	}
	if now := time.Now().UTC(); f.From.Before(now) {
		f.From = now
	}
	t := app.TenantOf(c)
	items, err := m.svc.Catalogue(c.Request.Context(), t, f)
	if err != nil {
		app.Fail(c, err)
		return
	}
	v := storeEventsView{Category: f.Category, From: c.Query("from"), To: c.Query("to"), VenueID: c.Query("venue_id")}
	seen := map[uuid.UUID]bool{}
	for _, it := range items {
		si := storeEventItem{CatalogueItem: it, When: localTime(it.EventInfo)}
		if it.Status == "sold_out" {
			si.Available = 0
		}
		if it.MinPrice != nil {
			si.Price = "from " + Money(*it.MinPrice, it.Currency)
		}
		v.Items = append(v.Items, si)
		if !seen[it.VenueID] {
			seen[it.VenueID] = true
			v.Venues = append(v.Venues, venueOption{ID: it.VenueID.String(), Name: it.VenueName})
		}
	}
	v.Categories = buyerCategories
	m.render(c, "store_events", "Events", v, false)
}

// buyerCategories are the calendar's event categories a buyer may filter
// by (a select: the values are exact, a typed "club night" matched nothing).
var buyerCategories = []string{"concert", "club_night", "comedy", "theatre", "festival", "other"}

type seatView struct {
	ID      string
	X, Y    float64
	State   string
	Zone    string
	Section string
	Label   string
	Price   string
	Tier    string
	TierID  string
	// Accessible marks a wheelchair-accessible seat (ringed on the map).
	Accessible bool
}

// SeatLabel names a seat for people: "Section A, Row 1, Seat 11".
func SeatLabel(section, row string, number int) string {
	return fmt.Sprintf("Section %s, Row %s, Seat %d", section, row, number)
}

// OrderRef is an order's short reference for people (its id's last eight
// hex digits; the leading ones of a UUIDv7 are a clock, shared by orders of
// the same minute).
func OrderRef(id uuid.UUID) string {
	h := strings.ToUpper(strings.ReplaceAll(id.String(), "-", ""))
	return h[len(h)-8:len(h)-4] + "-" + h[len(h)-4:]
}

// rowLabel names a row at its left end, for the zoomed map.
type rowLabel struct {
	Label string
	X, Y  float64
}

// sectionView is one section of the map: a button that zooms the map to it
// (section first on a phone), with its box in map units.
type sectionView struct {
	Name       string
	Zone       string
	Price      string
	Available  int
	X, Y, W, H float64 // seat centres' extent
	// The box drawn round the seats (and zoomed to), and its label's line.
	BoxX, BoxY, BoxW, BoxH, LabelY float64
}

type storeEventView struct {
	Event     app.EventInfo
	Prices    []PriceRange // demand-priced tiers, from their notice on
	When      string
	Tiers     []TierAvailability
	Seats     []seatView
	Sections  []sectionView
	Rows      []rowLabel
	Width     float64
	Height    float64
	ViewH     float64
	StageX    float64
	StageW    float64
	StageMid  float64
	HasSeats  bool
	Available int
	TestMode  bool
	// SoldOut: nothing left to buy (or the calendar says so); Past: the
	// event has started, so nothing is offered.
	SoldOut bool
	Past    bool
	Now     time.Time
	// Queue: the event's waiting room is in force; the page sends a buyer
	// without an access token to it before the map.
	Queue bool
	// PublishableKey turns on the Stripe.js card form (public by design).
	PublishableKey string
	StripeJS       string
	// Listings are resale tickets anyone may buy now.
	Listings []ResaleListing
	// The on-sale schedule, while it is still ahead: when the public on-sale
	// is, and until when a presale runs now (empty when none does).
	OnSaleLocal  string
	PresaleUntil string
	// Credentials is the fetch mode of the page's API calls: same-origin,
	// so the HttpOnly device cookie goes with them, unless the visitor is
	// signed in as staff (their session cookie would then ask for a CSRF
	// token; they buy as an anonymous buyer by token alone).
	Credentials string
}

// StripeJS is where Stripe requires Stripe.js to be loaded from (never a copy).
const StripeJS = "https://js.stripe.com/v3/"

// allowStripeJS adds the origins Stripe documents for Stripe.js and its
// Payment Element to the page's Content-Security-Policy: the script, its
// iframes (card fields, 3-D Secure challenges via hooks.stripe.com) and its
// API calls. Address autocomplete (maps.googleapis.com) is not used.
func allowStripeJS(c *gin.Context) {
	app.AllowPageSources(c, "script-src", "https://js.stripe.com", "https://*.js.stripe.com")
	app.AllowPageSources(c, "frame-src", "https://js.stripe.com", "https://*.js.stripe.com", "https://hooks.stripe.com")
	app.AllowPageSources(c, "connect-src", "https://api.stripe.com")
}

func (m *Module) storeEventPage(c *gin.Context) {
	ev, err := m.event(c)
	if err != nil {
		app.Fail(c, err)
		return
	}
	// A person reads the status (sold out, cancelled): the calendar's own,
	// not the hold path's few-seconds cache.
	if dir := m.app.Events(); dir != nil {
		if fresh, err := dir.Event(c.Request.Context(), app.TenantOf(c), ev.ID); err == nil {
			ev = fresh
		}
	}
	if ev.Status == "cancelled" {
		app.Fail(c, app.Gone("event_cancelled",
			"This event was cancelled. Every ticket bought for it is refunded in full, and each buyer is told by email."))
		return
	}
	if ev.Status != "on_sale" && ev.Status != "sold_out" {
		app.Fail(c, app.NotFound("event"))
		return
	}
	ctx, t := c.Request.Context(), app.TenantOf(c)
	credentials := "omit"
	if !m.isStaff(c) {
		m.ensureDevice(c)
		credentials = "same-origin"
	}
	sm, err := m.svc.SeatMap(ctx, t, ev.ID)
	if err != nil {
		app.Fail(c, err)
		return
	}
	av, err := m.svc.Availability(ctx, t, ev.ID)
	if err != nil {
		app.Fail(c, err)
		return
	}
	state := make(map[string]string, len(av.Seats))
	for _, s := range av.Seats {
		state[s.ID] = s.State
	}
	zoneName := map[uuid.UUID]string{}
	for _, z := range sm.Zones {
		zoneName[z.ID] = z.Name
	}
	zoneTier := map[string]TierAvailability{}
	for _, ti := range av.Tiers {
		if ti.ZoneKind == KindReserved && ti.OnSale {
			if _, ok := zoneTier[ti.Zone]; !ok {
				zoneTier[ti.Zone] = ti
			}
		}
	}
	v := storeEventView{Event: ev, When: localTime(ev), Tiers: av.Tiers, Width: sm.Width + 10, Height: sm.Height + 10,
		HasSeats: len(sm.Seats) > 0, TestMode: m.app.Config.TestModePayments(),
		PublishableKey: m.app.Config.StripePublishableKey, StripeJS: StripeJS}
	if now := m.app.Now(); ev.OnSaleAt != nil && now.Before(*ev.OnSaleAt) {
		loc, err := app.Timezone(ev.Timezone)
		if err != nil {
			loc = time.UTC
		}
		v.OnSaleLocal = ev.OnSaleAt.In(loc).Format("Mon 2 Jan 2006, 15:04 MST")
		if ev.PresaleStartsAt != nil && !now.Before(*ev.PresaleStartsAt) && now.Before(*ev.PresaleEndsAt) {
			v.PresaleUntil = ev.PresaleEndsAt.In(loc).Format("Mon 2 Jan, 15:04 MST")
		}
	}
	if v.Prices, err = m.svc.PriceRanges(ctx, t, ev.ID); err != nil {
		app.Fail(c, err)
		return
	}
	if v.PublishableKey != "" {
		allowStripeJS(c)
	}
	v.ViewH = v.Height + 34
	v.StageW = max(40, v.Width*0.6)
	v.StageX = (v.Width - v.StageW) / 2
	v.StageMid = v.Width / 2
	index, rows := map[string]int{}, map[string]bool{}
	for _, s := range sm.Seats {
		zn := zoneName[s.ZoneID]
		ti := zoneTier[zn]
		sv := seatView{ID: s.ID, X: s.X + 5, Y: s.Y + 5, State: state[s.ID], Zone: zn, Section: s.Section,
			Label: SeatLabel(s.Section, s.Row, s.Number), Accessible: s.Accessible}
		if ti.ID != uuid.Nil {
			sv.Price, sv.Tier, sv.TierID = Money(ti.Price, ti.Currency), ti.Name, ti.ID.String()
		}
		v.Seats = append(v.Seats, sv)
		if rk := s.Section + "\x00" + s.Row; !rows[rk] {
			rows[rk] = true
			v.Rows = append(v.Rows, rowLabel{Label: s.Row, X: sv.X - 8, Y: sv.Y + 2})
		}
		i, ok := index[s.Section]
		if !ok {
			i = len(v.Sections)
			index[s.Section] = i
			v.Sections = append(v.Sections, sectionView{Name: s.Section, Zone: zn, Price: sv.Price, X: sv.X, Y: sv.Y})
		}
		sec := &v.Sections[i]
		// The box grows to cover every seat (seats are 10 units across).
		x0, y0 := min(sec.X, sv.X), min(sec.Y, sv.Y)
		sec.W, sec.H = max(sec.X+sec.W, sv.X)-x0, max(sec.Y+sec.H, sv.Y)-y0
		sec.X, sec.Y = x0, y0
		if sv.State == "available" {
			sec.Available++
		}
	}
	for i := range v.Sections {
		sec := &v.Sections[i]
		sec.BoxX, sec.BoxY, sec.BoxW, sec.BoxH, sec.LabelY = sec.X-7, sec.Y-7, sec.W+14, sec.H+14, sec.Y-9
	}
	for _, ti := range av.Tiers {
		v.Available += ti.Available
	}
	v.SoldOut = ev.Status == "sold_out" || v.Available == 0
	v.Now = time.Now()
	v.Past = !ev.StartsAt.After(v.Now)
	if room, ok := m.gate.(AdmissionRoom); ok && !v.SoldOut && !v.Past {
		// A room that cannot be read counts as on: the hold would be
		// refused without an access token anyway.
		on, err := room.Required(ctx, t, ev.ID)
		v.Queue = on || err != nil
	}
	if v.Listings, err = m.svc.ResaleListings(ctx, t, ev.ID, true); err != nil {
		app.Fail(c, err)
		return
	}
	v.Credentials = credentials
	m.render(c, "store_event", ev.Title, v, false)
}

type ticketView struct {
	Ticket
	QR template.HTML
	// After the sale: whom a given-away ticket went to, its open listing,
	// whether it may still be transferred.
	GivenTo      string
	Listing      *ResaleListing
	Transferable bool
	// Seat is the ticket's seat in words; N counts the tickets from 1.
	Seat string
	N    int
	// Apple and Google are the wallet links, when the wallets are set up.
	Apple  string
	Google string
}

type storeOrderView struct {
	Order   Order
	Ref     string
	Event   app.EventInfo
	When    string
	Tickets []ticketView
	Amount  string
	// Holder is the order link's signature query the page's buttons send.
	Holder string
	// PDF and Resend are the signed link's API paths.
	PDF, Resend string
}

func (m *Module) storeOrderPage(c *gin.Context) {
	o, _, err := m.orderAccess(c)
	if err != nil {
		app.Fail(c, err)
		return
	}
	ctx, t := c.Request.Context(), app.TenantOf(c)
	ev, err := m.svc.Event(ctx, t, o.EventID)
	if err != nil {
		app.Fail(c, err)
		return
	}
	tickets, err := m.svc.Tickets(ctx, t, o.ID)
	if err != nil {
		app.Fail(c, err)
		return
	}
	v := storeOrderView{Order: o, Ref: OrderRef(o.ID), Event: ev, When: localTime(ev), Amount: Money(o.AmountMinor, o.Currency)}
	if c.Query("sig") != "" {
		v.Holder = "sig=" + c.Query("sig")
	}
	if o.Status == "paid" {
		sig := "?sig=" + m.svc.buyers.OrderSignature(t, o.ID)
		v.PDF, v.Resend = "/api/v1/orders/"+o.ID.String()+"/tickets.pdf"+sig, "/api/v1/orders/"+o.ID.String()+"/resend"+sig
	}
	tickets, given, err := m.hideGivenAway(ctx, t, tickets)
	if err != nil {
		app.Fail(c, err)
		return
	}
	after, err := m.afterSale(c, tickets)
	if err != nil {
		app.Fail(c, err)
		return
	}
	labels := map[string]string{}
	for _, tk := range tickets {
		if tk.SeatID != nil {
			sm, err := m.svc.SeatMap(ctx, t, o.EventID)
			if err != nil {
				app.Fail(c, err)
				return
			}
			for _, s := range sm.Seats {
				labels[s.ID] = SeatLabel(s.Section, s.Row, s.Number)
			}
			break
		}
	}
	for i, tk := range tickets {
		tv := after[tk.ID]
		tv.N = i + 1
		if tk.SeatID != nil {
			tv.Seat = labels[*tk.SeatID]
		}
		if g, ok := given[tk.ID]; ok {
			tv.GivenTo = g.ToName
		}
		if tk.Status == "valid" && tk.Token != "" {
			tv.Apple, _ = m.svc.delivery.TicketLinks(t, "", tk.ID)
			if u, err := m.svc.delivery.GoogleSaveURL(ctx, t, m.publicBase(t), tk.ID); err == nil {
				tv.Google = u
			}
			svg, err := QRSVG(tk.Token, 220)
			if err != nil {
				app.Fail(c, err)
				return
			}
			tv.QR = template.HTML(svg) // #nosec: generated from a bitmap, no input text in the markup
		}
		v.Tickets = append(v.Tickets, tv)
	}
	c.Header("Cache-Control", "no-store")
	// The URL carries the order's signature (and, back from Stripe, the
	// payment's client secret until the page strips it): never a Referer.
	c.Header("Referrer-Policy", "no-referrer")
	m.render(c, "store_order", "Your order", v, false)
}

type portalEventsView struct {
	Items            []portalEventItem
	Query, Status    string
	VenueID, When    string
	Venues           []venueOption
	Statuses         []string
	Total, Shown     int
	NoneConfigurable bool
}

type portalEventItem struct {
	app.EventInfo
	When       string
	Configured bool
	Sold       int
	Capacity   int
	Pct        int
	Past       bool
}

// portalListLimit bounds the rows (each reads its event's counts).
const portalListLimit = 100

// portalEventsPage lists the events whose tickets the person may see:
// upcoming first (soonest at the top), or past ones (latest first), with
// search by title or venue, filters by status and venue, and how much of
// each is sold.
func (m *Module) portalEventsPage(c *gin.Context) {
	if !m.app.CanAnywhere(c, ObjInventory, policies.Read) {
		app.Fail(c, app.Forbidden("forbidden", "your role does not allow you to see ticketing"))
		return
	}
	dir := m.app.Events()
	if dir == nil {
		app.Fail(c, app.Unavailable("events_unavailable", 0, "no module provides events"))
		return
	}
	ctx, t := c.Request.Context(), app.TenantOf(c)
	v := portalEventsView{Query: strings.TrimSpace(c.Query("q")), Status: c.Query("status"), VenueID: c.Query("venue"), When: c.Query("when"),
		Statuses: []string{"draft", "confirmed", "on_sale", "sold_out", "completed", "cancelled"}}
	if v.When != "past" && v.When != "all" {
		v.When = "upcoming"
	}
	now := time.Now()
	f := app.EventFilter{Limit: 500}
	if v.Status != "" {
		f.Statuses = []string{v.Status}
	}
	if id, err := uuid.Parse(v.VenueID); err == nil {
		f.VenueID = id
	}
	switch v.When {
	case "upcoming":
		f.From = now.Add(-6 * time.Hour) // a show under way still counts as today's
	case "past":
		f.To = now
	}
	evs, err := dir.Events(ctx, t, f)
	if err != nil {
		app.Fail(c, err)
		return
	}
	seenVenue := map[uuid.UUID]bool{}
	q := strings.ToLower(v.Query)
	var rows []portalEventItem
	for _, e := range evs {
		if !m.app.CanAtVenue(c, e.VenueID, ObjInventory, policies.Read) {
			continue
		}
		if !seenVenue[e.VenueID] {
			seenVenue[e.VenueID] = true
			v.Venues = append(v.Venues, venueOption{ID: e.VenueID.String(), Name: e.VenueName})
		}
		if q != "" && !strings.Contains(strings.ToLower(e.Title), q) && !strings.Contains(strings.ToLower(e.VenueName), q) {
			continue
		}
		rows = append(rows, portalEventItem{EventInfo: e, When: localTime(e), Past: e.EndsAt.Before(now)})
	}
	if v.When == "past" {
		sort.SliceStable(rows, func(i, j int) bool { return rows[i].StartsAt.After(rows[j].StartsAt) })
	}
	v.Total = len(rows)
	if len(rows) > portalListLimit {
		rows = rows[:portalListLimit]
	}
	for i := range rows {
		inv, err := m.svc.Inventory(ctx, t, rows[i].ID)
		if err != nil {
			if e, ok := err.(*app.Error); ok && e.Code == "no_inventory" {
				continue
			}
			app.Fail(c, err)
			return
		}
		rows[i].Configured, rows[i].Capacity = true, inv.Settings.Capacity
		for _, z := range inv.Zones {
			rows[i].Sold += z.Sold
		}
		if rows[i].Capacity > 0 {
			rows[i].Pct = min(100, rows[i].Sold*100/rows[i].Capacity)
		}
	}
	v.Items, v.Shown = rows, len(rows)
	sort.Slice(v.Venues, func(i, j int) bool { return v.Venues[i].Name < v.Venues[j].Name })
	m.render(c, "portal_events", "Tickets", v, true)
}

type portalEventView struct {
	Event    app.EventInfo
	When     string
	Inv      *Inventory
	CanWrite bool
	// CanSetUp is false for an event that is over or cancelled: there is
	// nothing left to sell.
	CanSetUp bool
	Closed   string
	Sold     int
	Currency string
	Pricing  []pricingRow
	History  []PriceChange
}

// pricingRow is a tier with its demand-pricing rule (zero when it has none).
type pricingRow struct {
	Tier Tier
	Rule PriceRule
	Has  bool
}

func (m *Module) portalEventPage(c *gin.Context) {
	ev, err := m.staffEvent(c, ObjInventory, policies.Read)
	if err != nil {
		app.Fail(c, err)
		return
	}
	cur := venueCurrency(ev.Timezone)
	v := portalEventView{Event: ev, When: localTime(ev), CanWrite: m.app.CanAtVenue(c, ev.VenueID, ObjInventory, policies.Write),
		Currency: cur}
	switch {
	case ev.Status == "cancelled":
		v.Closed = "This event is cancelled: its tickets can no longer be set up or sold."
	case ev.Status == "completed" || ev.EndsAt.Before(time.Now()):
		v.Closed = "This event is over: its tickets can no longer be set up or sold."
	default:
		v.CanSetUp = v.CanWrite
	}
	inv, err := m.svc.Inventory(c.Request.Context(), app.TenantOf(c), ev.ID)
	if err == nil {
		v.Inv = &inv
		for _, z := range inv.Zones {
			v.Sold += z.Sold
		}
	} else if e, ok := err.(*app.Error); !ok || e.Code != "no_inventory" {
		app.Fail(c, err)
		return
	}
	if v.Inv != nil {
		pv, err := m.svc.Pricing(c.Request.Context(), app.TenantOf(c), ev.ID, 50)
		if err != nil {
			app.Fail(c, err)
			return
		}
		for _, ti := range v.Inv.Tiers {
			row := pricingRow{Tier: ti}
			for _, r := range pv.Rules {
				if r.TierID == ti.ID {
					row.Rule, row.Has = r, true
				}
			}
			v.Pricing = append(v.Pricing, row)
		}
		v.History = pv.History
	}
	m.render(c, "portal_event", ev.Title, v, true)
}

// venueCurrency is the currency a venue sells in, from where it is (its
// timezone): events carry no currency of their own until tiers name one.
func venueCurrency(tz string) string {
	switch {
	case tz == "Europe/London":
		return "GBP"
	case tz == "Europe/Zurich":
		return "CHF"
	case tz == "Europe/Stockholm":
		return "SEK"
	case tz == "Europe/Oslo":
		return "NOK"
	case tz == "Europe/Copenhagen":
		return "DKK"
	case tz == "Europe/Warsaw":
		return "PLN"
	case strings.HasPrefix(tz, "Europe/"):
		return "EUR"
	case tz == "Asia/Tokyo":
		return "JPY"
	case strings.HasPrefix(tz, "Australia/"):
		return "AUD"
	case tz == "America/Toronto" || tz == "America/Vancouver":
		return "CAD"
	}
	return "USD"
}

func (m *Module) render(c *gin.Context, name, title string, data any, portal bool) {
	content, err := app.RenderTemplate(m.pages, name, data)
	if err != nil {
		app.Fail(c, err)
		return
	}
	if portal {
		m.app.RenderPortal(c, http.StatusOK, title, content)
		return
	}
	m.app.RenderStorefront(c, http.StatusOK, title, content)
}
