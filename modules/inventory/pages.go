package inventory

import (
	"embed"
	"fmt"
	"html/template"
	"net/http"
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
		"money": Money,
		"human": func(s string) string { return strings.ReplaceAll(s, "_", " ") },
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
	loc, err := time.LoadLocation(ev.Timezone)
	if err != nil {
		loc = time.UTC
	}
	return ev.StartsAt.In(loc).Format("Mon 2 Jan 2006, 15:04 MST")
}

type storeEventsView struct {
	Items    []storeEventItem
	Category string
	From, To string
	Venues   []venueOption
	VenueID  string
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
		if it.MinPrice != nil {
			si.Price = "from " + Money(*it.MinPrice, it.Currency)
		}
		v.Items = append(v.Items, si)
		if !seen[it.VenueID] {
			seen[it.VenueID] = true
			v.Venues = append(v.Venues, venueOption{ID: it.VenueID.String(), Name: it.VenueName})
		}
	}
	m.render(c, "store_events", "Events", v, false)
}

type seatView struct {
	ID     string
	X, Y   float64
	State  string
	Zone   string
	Label  string
	Price  string
	Tier   string
	TierID string
}

type storeEventView struct {
	Event     app.EventInfo
	Prices    []PriceRange // demand-priced tiers, from their notice on
	When      string
	Tiers     []TierAvailability
	Seats     []seatView
	Sections  []sectionLabel
	Width     float64
	Height    float64
	ViewH     float64
	StageX    float64
	StageW    float64
	StageMid  float64
	HasSeats  bool
	Available int
	TestMode  bool
	// PublishableKey turns on the Stripe.js card form (public by design).
	PublishableKey string
	StripeJS       string
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

type sectionLabel struct {
	Name string
	X, Y float64
}

func (m *Module) storeEventPage(c *gin.Context) {
	ev, err := m.event(c)
	if err != nil {
		app.Fail(c, err)
		return
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
	lastSection := ""
	for _, s := range sm.Seats {
		zn := zoneName[s.ZoneID]
		ti := zoneTier[zn]
		sv := seatView{ID: s.ID, X: s.X + 5, Y: s.Y + 5, State: state[s.ID], Zone: zn,
			Label: fmt.Sprintf("Section %s, row %s, seat %d", s.Section, s.Row, s.Number)}
		if ti.ID != uuid.Nil {
			sv.Price, sv.Tier, sv.TierID = Money(ti.Price, ti.Currency), ti.Name, ti.ID.String()
		}
		v.Seats = append(v.Seats, sv)
		if s.Section != lastSection {
			lastSection = s.Section
			v.Sections = append(v.Sections, sectionLabel{Name: s.Section, X: s.X + 5, Y: s.Y - 6})
		}
	}
	for _, ti := range av.Tiers {
		v.Available += ti.Available
	}
	m.render(c, "store_event", ev.Title, v, false)
}

type ticketView struct {
	Ticket
	QR template.HTML
}

type storeOrderView struct {
	Order   Order
	Event   app.EventInfo
	When    string
	Tickets []ticketView
	Amount  string
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
	v := storeOrderView{Order: o, Event: ev, When: localTime(ev), Amount: Money(o.AmountMinor, o.Currency)}
	for _, tk := range tickets {
		tv := ticketView{Ticket: tk}
		if tk.Status == "valid" {
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
	Items []portalEventItem
}

type portalEventItem struct {
	app.EventInfo
	When string
}

func (m *Module) portalEventsPage(c *gin.Context) {
	if !m.app.CanAnywhere(c, ObjInventory, policies.Read) {
		app.Fail(c, app.Forbidden("forbidden", "your roles do not allow reading inventory"))
		return
	}
	dir := m.app.Events()
	if dir == nil {
		app.Fail(c, app.Unavailable("events_unavailable", 0, "no module provides events"))
		return
	}
	evs, err := dir.Events(c.Request.Context(), app.TenantOf(c), app.EventFilter{Limit: 500})
	if err != nil {
		app.Fail(c, err)
		return
	}
	var v portalEventsView
	for _, e := range evs {
		if m.app.CanAtVenue(c, e.VenueID, ObjInventory, policies.Read) {
			v.Items = append(v.Items, portalEventItem{EventInfo: e, When: localTime(e)})
		}
	}
	m.render(c, "portal_events", "Inventory", v, true)
}

type portalEventView struct {
	Event    app.EventInfo
	When     string
	Inv      *Inventory
	CanWrite bool
	Example  string
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
	v := portalEventView{Event: ev, When: localTime(ev), CanWrite: m.app.CanAtVenue(c, ev.VenueID, ObjInventory, policies.Write), Example: exampleSetup}
	inv, err := m.svc.Inventory(c.Request.Context(), app.TenantOf(c), ev.ID)
	if err == nil {
		v.Inv = &inv
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

const exampleSetup = `{
  "hold_minutes": 10,
  "zones": [
    {"name": "Stalls", "kind": "reserved"},
    {"name": "Standing", "kind": "ga", "capacity": 300}
  ],
  "layout": {"sections": [
    {"name": "A", "zone": "Stalls", "rows": [{"label": "1", "seats": 20}, {"label": "2", "seats": 20}]}
  ]},
  "tiers": [
    {"name": "Stalls", "zone": "Stalls", "price": 5500, "currency": "EUR", "max_per_order": 8},
    {"name": "Standing", "zone": "Standing", "price": 3500, "currency": "EUR", "max_per_order": 10}
  ],
  "quotas": {"web": 300, "box_office": 40}
}`

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
