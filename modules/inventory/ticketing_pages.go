package inventory

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/shopspring/decimal"

	"marquee/app"
	"marquee/policies"
)

// The ticketing editor: zones, tiers (prices as money in the venue's
// currency, sale windows in its timezone), channel quotas and hold minutes
// as a plain form, and the seat-map builder, which writes the layout JSON
// the API takes into the form. The form posts, the server validates (the
// truth) and redirects: back to the editor with what was typed and each
// refusal beside its field, or to the editor saying it is saved.

// ticketingForm is the editor's form as typed (kept for a refused post).
type ticketingForm struct {
	HoldMinutes string
	Capacity    string
	Zones       []zoneField
	Tiers       []tierField
	Quotas      map[string]string
	Layout      string
}

type zoneField struct{ Name, Kind, Capacity string }

type tierField struct {
	Name, Zone, Price, Fee, Starts, Ends, Max string
	Sold                                      bool `json:"-"` // locked in the page
}

// ticketingFailure is a refused post: the form and what was wrong, by field
// ("tier_price.1") or for the whole form ("").
type ticketingFailure struct {
	Form   ticketingForm
	Errors map[string]string
}

type ticketingView struct {
	Event    app.EventInfo
	When     string
	Closed   string
	CanWrite bool
	Form     ticketingForm
	Errors   map[string]string
	Saved    bool
	Currency string
	Step     string // the price input's step: 0.01, or 1 without minor units
	Timezone string
	Channels []string
	// Sold counts tickets held or sold; SoldTiers and SeatStates lock what
	// they cover in the page (the server refuses it anyway).
	Sold       int
	SoldTiers  map[string]bool
	SeatStates map[string]string // seat id -> held | sold
	Configured bool
	CSRF       string
}

// localInput is the datetime-local format of the form.
const localInput = "2006-01-02T15:04"

// minorExponent is how many decimals a currency's money has.
func minorExponent(currency string) int32 {
	if zeroDecimal[currency] {
		return 0
	}
	return 2
}

// parseMoney reads money as people type it ("55", "55.5", "55.50") into
// minor units of the currency.
func parseMoney(s, currency string) (int64, error) {
	s = strings.TrimSpace(strings.ReplaceAll(s, ",", ""))
	d, err := decimal.NewFromString(s)
	exp := minorExponent(currency)
	switch {
	case err != nil:
		return 0, fmt.Errorf("write the price as an amount, such as %s", map[bool]string{true: "55", false: "55.00"}[exp == 0])
	case d.IsNegative():
		return 0, errors.New("a price cannot be negative")
	case !d.Shift(exp).IsInteger():
		return 0, fmt.Errorf("%s has %d decimals at most", currency, exp)
	case d.Shift(exp).GreaterThan(decimal.NewFromInt(100_000_000)):
		return 0, fmt.Errorf("at most %s", Money(100_000_000, currency))
	}
	return d.Shift(exp).IntPart(), nil
}

// moneyInput writes minor units back as the form's decimal text.
func moneyInput(minor int64, currency string) string {
	return decimal.New(minor, -minorExponent(currency)).StringFixed(minorExponent(currency))
}

// ticketingEvent loads the event for the editor and says why it cannot be
// set up any more (over or cancelled).
func (m *Module) ticketingEvent(c *gin.Context, action string) (app.EventInfo, string, error) {
	ev, err := m.staffEvent(c, ObjInventory, action)
	if err != nil {
		return ev, "", err
	}
	switch {
	case ev.Status == "cancelled":
		return ev, "This event is cancelled: its tickets can no longer be set up or sold.", nil
	case ev.Status == "completed" || ev.EndsAt.Before(time.Now()):
		return ev, "This event is over: its tickets can no longer be set up or sold.", nil
	}
	return ev, "", nil
}

func (m *Module) portalTicketingPage(c *gin.Context) {
	ev, closed, err := m.ticketingEvent(c, policies.Read)
	if err != nil {
		app.Fail(c, err)
		return
	}
	ctx, t := c.Request.Context(), app.TenantOf(c)
	loc, err := app.Timezone(ev.Timezone)
	if err != nil {
		loc = time.UTC
	}
	v := ticketingView{Event: ev, When: localTime(ev), Closed: closed, CanWrite: m.app.CanAtVenue(c, ev.VenueID, ObjInventory, policies.Write),
		Saved: c.Query("done") == "saved", Timezone: loc.String(), Channels: []string{"web", "box_office", "ticketmaster", "eventbrite"},
		SoldTiers: map[string]bool{}, SeatStates: map[string]string{}, Errors: map[string]string{}}
	inv, err := m.svc.Inventory(ctx, t, ev.ID)
	switch e := (*app.Error)(nil); {
	case err == nil:
		v.Configured = true
	case errors.As(err, &e) && e.Code == "no_inventory":
	default:
		app.Fail(c, err)
		return
	}
	v.Currency = venueCurrency(ev.Timezone)
	if v.Configured {
		for _, z := range inv.Zones {
			v.Sold += z.Sold + z.Held
		}
		if v.Sold > 0 && len(inv.Tiers) > 0 {
			v.Currency = inv.Tiers[0].Currency // what tickets were sold in stays
		}
		states := v.SeatStates
		if av, err := m.svc.Availability(ctx, t, ev.ID); err == nil {
			for _, st := range av.Seats {
				if st.State != "available" {
					states[st.ID] = st.State
				}
			}
		}
		used, err := m.svc.catalogue.TiersInUse(ctx, t, ev.ID)
		if err != nil {
			app.Fail(c, err)
			return
		}
		for _, ti := range inv.Tiers {
			if used[ti.ID] {
				v.SoldTiers[strings.ToLower(ti.Name)] = true
			}
		}
	}
	v.Step = "0.01"
	if minorExponent(v.Currency) == 0 {
		v.Step = "1"
	}
	v.Form = ticketingForm{HoldMinutes: "10", Quotas: map[string]string{}}
	if v.Configured {
		v.Form.HoldMinutes = strconv.Itoa(inv.Settings.HoldMinutes)
		total := 0
		for _, z := range inv.Zones {
			total += z.Capacity
		}
		if inv.Settings.Capacity != total {
			v.Form.Capacity = strconv.Itoa(inv.Settings.Capacity)
		}
		zoneName := map[string]string{}
		for _, z := range inv.Zones {
			zoneName[z.ID.String()] = z.Name
			zf := zoneField{Name: z.Name, Kind: z.Kind}
			if z.Kind == KindGA {
				zf.Capacity = strconv.Itoa(z.Capacity)
			}
			v.Form.Zones = append(v.Form.Zones, zf)
		}
		for _, ti := range inv.Tiers {
			tf := tierField{Name: ti.Name, Zone: zoneName[ti.ZoneID.String()], Price: moneyInput(ti.PriceMinor-ti.FeeMinor, ti.Currency),
				Max: strconv.Itoa(ti.MaxPerOrder)}
			if ti.FeeMinor > 0 {
				tf.Fee = moneyInput(ti.FeeMinor, ti.Currency)
			}
			if ti.SaleStarts != nil {
				tf.Starts = ti.SaleStarts.In(loc).Format(localInput)
			}
			if ti.SaleEnds != nil {
				tf.Ends = ti.SaleEnds.In(loc).Format(localInput)
			}
			v.Form.Tiers = append(v.Form.Tiers, tf)
		}
		for _, ct := range inv.Counters {
			if ct.Channel != nil {
				v.Form.Quotas[*ct.Channel] = strconv.Itoa(ct.Capacity)
			}
		}
		layout, err := m.svc.BuiltLayout(ctx, t, ev.ID)
		if err != nil {
			app.Fail(c, err)
			return
		}
		if layout != nil {
			b, _ := json.MarshalIndent(layout, "", "  ")
			v.Form.Layout = string(b)
		}
	}
	if key := c.Query("form"); key != "" {
		var f ticketingFailure
		if m.app.TakeForm(c, key, &f) {
			v.Form, v.Errors, v.Saved = f.Form, f.Errors, false
			if v.Form.Quotas == nil {
				v.Form.Quotas = map[string]string{}
			}
			// The blank rows sent back are drawn once, below.
			if n := len(v.Form.Zones); n > 0 && v.Form.Zones[n-1].Name == "" && v.Form.Zones[n-1].Capacity == "" && v.Errors[fmt.Sprintf("zone_name.%d", n-1)] == "" {
				v.Form.Zones = v.Form.Zones[:n-1]
			}
			if n := len(v.Form.Tiers); n > 0 && v.Form.Tiers[n-1].Name == "" && v.Form.Tiers[n-1].Price == "" && v.Errors[fmt.Sprintf("tier_name.%d", n-1)] == "" {
				v.Form.Tiers = v.Form.Tiers[:n-1]
			}
		}
	}
	for i := range v.Form.Tiers {
		v.Form.Tiers[i].Sold = v.SoldTiers[strings.ToLower(v.Form.Tiers[i].Name)]
	}
	v.CSRF = m.app.CSRFToken(app.PrincipalOf(c).SessionID.String())
	// One blank row to add a zone or a tier without script.
	v.Form.Zones = append(v.Form.Zones, zoneField{Kind: KindGA})
	v.Form.Tiers = append(v.Form.Tiers, tierField{Max: "8"})
	m.render(c, "portal_ticketing", "Tickets: "+ev.Title, v, true)
}

// portalSaveTicketing reads the editor's form, converts money and local
// times, and configures (or, after sales, safely amends) the event.
func (m *Module) portalSaveTicketing(c *gin.Context) {
	ev, closed, err := m.ticketingEvent(c, policies.Write)
	if err != nil {
		app.Fail(c, err)
		return
	}
	form := readTicketingForm(c)
	back := func(errs map[string]string) {
		q := url.Values{}
		if key := m.app.StashForm(c, ticketingFailure{Form: form, Errors: errs}); key != "" {
			q.Set("form", key)
		}
		c.Redirect(http.StatusSeeOther, fmt.Sprintf("/portal/inventory/%s/ticketing?%s#editor", ev.ID, q.Encode()))
	}
	if closed != "" {
		back(map[string]string{"": closed})
		return
	}
	ctx, t := c.Request.Context(), app.TenantOf(c)
	currency := venueCurrency(ev.Timezone)
	if inv, err := m.svc.Inventory(ctx, t, ev.ID); err == nil {
		sold := 0
		for _, z := range inv.Zones {
			sold += z.Sold + z.Held
		}
		if sold > 0 && len(inv.Tiers) > 0 {
			currency = inv.Tiers[0].Currency
		}
	}
	setup, errs := form.setup(ev, currency)
	if len(errs) > 0 {
		back(errs)
		return
	}
	if err := m.svc.Configure(ctx, t, ev, setup); err != nil {
		var e *app.Error
		if !errors.As(err, &e) || (e.Kind != app.KindInvalid && e.Kind != app.KindConflict) {
			app.Fail(c, err)
			return
		}
		// The service's words, beside the part of the form they are about.
		field := ""
		switch e.Field {
		case "zones", "tiers", "layout", "quotas", "capacity", "hold_minutes":
			field = e.Field
		}
		msg := e.Detail
		if e.Kind == app.KindConflict {
			msg = "Not saved: " + e.Detail
		}
		back(map[string]string{field: msg})
		return
	}
	c.Redirect(http.StatusSeeOther, fmt.Sprintf("/portal/inventory/%s/ticketing?done=saved", ev.ID))
}

func readTicketingForm(c *gin.Context) ticketingForm {
	f := ticketingForm{HoldMinutes: strings.TrimSpace(c.PostForm("hold_minutes")), Capacity: strings.TrimSpace(c.PostForm("capacity")),
		Layout: c.PostForm("layout"), Quotas: map[string]string{}}
	names, kinds, caps := c.PostFormArray("zone_name"), c.PostFormArray("zone_kind"), c.PostFormArray("zone_capacity")
	at := func(vs []string, i int) string {
		if i < len(vs) {
			return strings.TrimSpace(vs[i])
		}
		return ""
	}
	for i := range names {
		f.Zones = append(f.Zones, zoneField{Name: at(names, i), Kind: at(kinds, i), Capacity: at(caps, i)})
	}
	tn := c.PostFormArray("tier_name")
	for i := range tn {
		f.Tiers = append(f.Tiers, tierField{Name: at(tn, i), Zone: at(c.PostFormArray("tier_zone"), i), Price: at(c.PostFormArray("tier_price"), i),
			Fee: at(c.PostFormArray("tier_fee"), i), Starts: at(c.PostFormArray("tier_starts"), i), Ends: at(c.PostFormArray("tier_ends"), i),
			Max: at(c.PostFormArray("tier_max"), i)})
	}
	for _, ch := range []string{"web", "box_office", "ticketmaster", "eventbrite"} {
		f.Quotas[ch] = strings.TrimSpace(c.PostForm("quota_" + ch))
	}
	return f
}

// setup turns the form into the API's Setup; errs names each field at fault.
func (f ticketingForm) setup(ev app.EventInfo, currency string) (Setup, map[string]string) {
	errs := map[string]string{}
	var s Setup
	whole := func(field, v string, lo, hi int, what string) *int {
		if v == "" {
			return nil
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < lo || n > hi {
			errs[field] = fmt.Sprintf("%s: a whole number from %d to %d", what, lo, hi)
			return nil
		}
		return &n
	}
	if f.HoldMinutes == "" {
		errs["hold_minutes"] = "How long a buyer's hold lasts, in minutes (1 to 120)"
	}
	s.HoldMinutes = whole("hold_minutes", f.HoldMinutes, 1, 120, "Minutes")
	s.Capacity = whole("capacity", f.Capacity, 1, 1000000, "Capacity")
	loc, err := app.Timezone(ev.Timezone)
	if err != nil {
		loc = time.UTC
	}
	zones := map[string]bool{}
	reserved := false
	for i, z := range f.Zones {
		if z.Name == "" && (z.Capacity == "" || z.Kind == KindReserved) {
			continue // a blank row
		}
		key := func(k string) string { return fmt.Sprintf("zone_%s.%d", k, i) }
		if z.Name == "" {
			errs[key("name")] = "Name the zone"
			continue
		}
		if zones[strings.ToLower(z.Name)] {
			errs[key("name")] = "Another zone has this name"
		}
		zones[strings.ToLower(z.Name)] = true
		zi := ZoneInput{Name: z.Name, Kind: z.Kind}
		switch z.Kind {
		case KindGA:
			if n := whole(key("capacity"), z.Capacity, 1, 1000000, "Places"); n != nil {
				zi.Capacity = *n
			} else if z.Capacity == "" {
				errs[key("capacity")] = "How many standing places"
			}
		case KindReserved:
			reserved = true // its capacity is its seats
		default:
			errs[key("kind")] = "Standing (general admission) or seated"
		}
		s.Zones = append(s.Zones, zi)
	}
	if len(s.Zones) == 0 {
		errs["zones"] = "Add at least one zone: a standing area or a seated one"
	}
	for i, ti := range f.Tiers {
		if ti.Name == "" && ti.Price == "" {
			continue
		}
		key := func(k string) string { return fmt.Sprintf("tier_%s.%d", k, i) }
		in := TierInput{Name: ti.Name, Zone: ti.Zone, Currency: currency}
		if ti.Name == "" {
			errs[key("name")] = "Name the tier"
		}
		if !zones[strings.ToLower(ti.Zone)] {
			errs[key("zone")] = "Choose one of the zones above"
		}
		if ti.Price == "" {
			errs[key("price")] = "Give the price (0 for free tickets)"
		} else if p, err := parseMoney(ti.Price, currency); err != nil {
			errs[key("price")] = strings.ToUpper(err.Error()[:1]) + err.Error()[1:]
		} else {
			in.Price = p
		}
		if ti.Fee != "" {
			if p, err := parseMoney(ti.Fee, currency); err != nil {
				errs[key("fee")] = strings.ToUpper(err.Error()[:1]) + err.Error()[1:]
			} else {
				in.Fee = p
			}
		}
		for _, w := range []struct {
			field, v string
			dst      **time.Time
		}{{"starts", ti.Starts, &in.SaleStarts}, {"ends", ti.Ends, &in.SaleEnds}} {
			if w.v == "" {
				continue
			}
			tm, err := time.ParseInLocation(localInput, w.v, loc)
			if err != nil {
				errs[key(w.field)] = "A date and time, such as 2031-05-01 10:00"
				continue
			}
			u := tm.UTC()
			*w.dst = &u
		}
		if in.SaleStarts != nil && in.SaleEnds != nil && !in.SaleEnds.After(*in.SaleStarts) {
			errs[key("ends")] = "The sale must end after it starts"
		}
		if in.SaleEnds != nil && in.SaleEnds.After(ev.EndsAt) {
			errs[key("ends")] = "The sale cannot end after the event does"
		}
		if n := whole(key("max"), ti.Max, 1, 100, "Tickets per order"); n != nil {
			in.MaxPerOrder = *n
		}
		s.Tiers = append(s.Tiers, in)
	}
	if len(s.Tiers) == 0 {
		errs["tiers"] = "Add at least one tier with its price"
	}
	s.Quotas = map[string]int{}
	for ch, v := range f.Quotas {
		if n := whole("quota_"+ch, v, 0, 1000000, "Tickets"); n != nil {
			s.Quotas[ch] = *n
		}
	}
	if strings.TrimSpace(f.Layout) != "" {
		var l Layout
		dec := json.NewDecoder(bytes.NewReader([]byte(f.Layout)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&l); err != nil {
			errs["layout"] = "The seat map could not be read; build it again or fix the JSON under Advanced"
		} else if reserved {
			s.Layout = &l
		}
	}
	if reserved && s.Layout == nil && errs["layout"] == "" {
		errs["layout"] = "A seated zone needs a seat map: add a section below"
	}
	return s, errs
}
