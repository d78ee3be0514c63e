// Package eventbrite is a local stand-in for Eventbrite's API v3 following
// its shapes: organisation events, ticket classes (`quantity_total`,
// `quantity_sold`, `cost` in minor units), inventory tiers and event
// capacity (errors CAPACITY_TOTAL_TOO_SMALL and
// HOLD_QUANTITIES_EXCEEDS_REMAINING_CAPACITY), orders with attendees,
// `pagination.continuation`, Bearer auth with its error bodies, 429s, and
// thin webhooks (`{"config":{…},"api_url":…}`, headers X-Eventbrite-Event
// and X-Eventbrite-Delivery, no signature). Knobs make it slow, failing,
// overselling or drifting (an event cancelled on the site that the API
// still reports `live`, a known Eventbrite drift).
package eventbrite

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// TicketClass is a ticket type of an event.
type TicketClass struct {
	ID            string
	Name          string
	QuantityTotal int
	CostMinor     int64
	Currency      string
	SalesStart    time.Time // zero: on sale from publication
	SalesEnd      time.Time
	// Updates counts the changes of cost or sales window accepted.
	Updates int
}

// Event is an organisation's event.
type Event struct {
	ID, OrgID, Name string
	Start           time.Time
	Status          string // live, draft, started, ended, canceled
	Capacity        int
	Held            int // units held back on their side (holds)
	TicketClasses   []*TicketClass
	cancelledOnSite bool
}

// Attendee is one attendee row of an order.
type Attendee struct {
	ID            string `json:"id"`
	OrderID       string `json:"order_id"`
	EventID       string `json:"event_id"`
	TicketClassID string `json:"ticket_class_id"`
	Quantity      int    `json:"quantity"`
	Status        string `json:"status"` // Attending, Checked In, Not Attending
	CheckedIn     bool   `json:"checked_in"`
	Cancelled     bool   `json:"cancelled"`
	Refunded      bool   `json:"refunded"`
	Changed       string `json:"changed"`
	// Costs are the attendee's: base_price is what its ticket class cost
	// when bought ({currency, value in minor units, major_value, display}).
	Costs map[string]any `json:"costs"`
}

// Order is an Eventbrite order.
type Order struct {
	ID        string     `json:"id"`
	EventID   string     `json:"event_id"`
	Status    string     `json:"status"` // placed, refunded
	Changed   string     `json:"changed"`
	Created   string     `json:"created"`
	Costs     any        `json:"costs"`
	Attendees []Attendee `json:"attendees,omitempty"`
}

// Delivery is one webhook as sent.
type Delivery struct {
	ID     string
	Action string
	Body   []byte
	Status int // the answer our endpoint gave (0: not sent)
}

// Server is the fake.
type Server struct {
	*httptest.Server
	Token string
	Now   func() time.Time
	// WebhookURL receives the deliveries (set when the connector subscribes).
	WebhookURL string
	Client     *http.Client

	mu       sync.Mutex
	events   map[string]*Event
	orders   map[string]*Order
	seq      int
	failNext []int
	slow     time.Duration
	// Oversell lets buyers at Eventbrite buy past quantity_total.
	Oversell bool
	calls    int
}

// New starts a fake Eventbrite accepting token.
func New(token string) *Server {
	s := &Server{Token: token, Now: time.Now, events: map[string]*Event{}, orders: map[string]*Order{}, Client: &http.Client{Timeout: 10 * time.Second}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v3/organizations/{org}/events/", s.guard(s.orgEvents))
	mux.HandleFunc("GET /v3/events/{id}/", s.guard(s.getEvent))
	mux.HandleFunc("POST /v3/events/{id}/", s.guard(s.updateEvent))
	mux.HandleFunc("GET /v3/events/{id}/ticket_classes/", s.guard(s.ticketClasses))
	mux.HandleFunc("POST /v3/events/{id}/ticket_classes/{tc}/", s.guard(s.updateTicketClass))
	mux.HandleFunc("POST /v3/events/{id}/inventory_tiers/{tc}/", s.guard(s.updateTicketClass))
	mux.HandleFunc("GET /v3/events/{id}/attendees/", s.guard(s.eventAttendees))
	mux.HandleFunc("GET /v3/events/{id}/attendees/{aid}/", s.guard(s.getAttendee))
	mux.HandleFunc("GET /v3/orders/{id}/", s.guard(s.getOrder))
	s.Server = httptest.NewServer(mux)
	return s
}

// FailNext makes the next requests answer these statuses with Eventbrite's error bodies.
func (s *Server) FailNext(statuses ...int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNext = append(s.failNext, statuses...)
}

// Slow delays every answer by d.
func (s *Server) Slow(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.slow = d
}

// Calls counts the API requests answered.
func (s *Server) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// AddEvent lists an event of an organisation.
func (s *Server) AddEvent(e Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e.Status == "" {
		e.Status = "live"
	}
	ev := e
	s.events[e.ID] = &ev
}

// CancelOnSite cancels the event on Eventbrite's site: its orders are
// refunded, yet (drift) its API status stays live.
func (s *Server) CancelOnSite(eventID string) []Delivery {
	s.mu.Lock()
	e := s.events[eventID]
	var ids []string
	if e != nil {
		e.cancelledOnSite = true
		for _, o := range s.orders {
			if o.EventID == eventID && o.Status == "placed" {
				ids = append(ids, o.ID)
			}
		}
	}
	s.mu.Unlock()
	sort.Strings(ids)
	var ds []Delivery
	for _, id := range ids {
		ds = append(ds, s.Refund(id))
	}
	return ds
}

func (s *Server) soldLocked(tc string) int {
	n := 0
	for _, o := range s.orders {
		if o.Status != "placed" {
			continue
		}
		for _, a := range o.Attendees {
			if a.TicketClassID == tc && !a.Refunded && !a.Cancelled {
				n += a.Quantity
			}
		}
	}
	return n
}

// Sold is what a ticket class sold on their side.
func (s *Server) Sold(ticketClassID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.soldLocked(ticketClassID)
}

// QuantityTotal is a ticket class's quantity_total as last pushed.
func (s *Server) QuantityTotal(ticketClassID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.events {
		for _, tc := range e.TicketClasses {
			if tc.ID == ticketClassID {
				return tc.QuantityTotal
			}
		}
	}
	return 0
}

func (s *Server) now() string { return s.Now().UTC().Format("2006-01-02T15:04:05Z") }

// PlaceOrder has a buyer at Eventbrite buy qty tickets of a ticket class
// (refused past quantity_total unless Oversell), then delivers the
// order.placed webhook. The delivery is returned even when refused (ok=false, no delivery).
func (s *Server) PlaceOrder(eventID, ticketClassID string, qty int) (Delivery, bool) {
	id, ok := s.Sell(eventID, ticketClassID, qty)
	if !ok {
		return Delivery{}, false
	}
	return s.Deliver("order.placed", s.OrderURL(id)), true
}

// OrderURL is an order's api_url.
func (s *Server) OrderURL(orderID string) string { return s.URL + "/v3/orders/" + orderID + "/" }

// Sell has a buyer at Eventbrite buy qty tickets of a ticket class, one
// attendee per ticket as Eventbrite lists them, without a delivery (a
// webhook lost or late); it returns the order's id.
func (s *Server) Sell(eventID, ticketClassID string, qty int) (string, bool) {
	s.mu.Lock()
	e := s.events[eventID]
	var tc *TicketClass
	if e != nil {
		for _, c := range e.TicketClasses {
			if c.ID == ticketClassID {
				tc = c
			}
		}
	}
	eventSold := 0
	if e != nil {
		for _, c := range e.TicketClasses {
			eventSold += s.soldLocked(c.ID)
		}
	}
	if tc == nil || (!s.Oversell && (s.soldLocked(tc.ID)+qty > tc.QuantityTotal || e.Capacity > 0 && eventSold+qty > e.Capacity)) {
		s.mu.Unlock()
		return "", false
	}
	s.seq++
	id := strconv.Itoa(1000000 + s.seq)
	o := &Order{ID: id, EventID: eventID, Status: "placed", Changed: s.now(), Created: s.now(),
		Costs: map[string]any{"gross": map[string]any{"currency": tc.Currency, "value": tc.CostMinor * int64(qty), "display": ""}}}
	for i := range qty {
		aid := "A" + id
		if i > 0 {
			aid = fmt.Sprintf("A%s-%d", id, i+1)
		}
		o.Attendees = append(o.Attendees, Attendee{ID: aid, OrderID: id, EventID: eventID, TicketClassID: tc.ID, Quantity: 1, Status: "Attending", Changed: s.now(),
			Costs: map[string]any{"base_price": money(tc.Currency, tc.CostMinor), "gross": money(tc.Currency, tc.CostMinor)}})
	}
	s.orders[id] = o
	s.mu.Unlock()
	return id, true
}

// RefundAttendee refunds one attendee (by its index in the order) on their
// side, the order staying placed (a partial refund), and delivers
// attendee.updated; cancel marks it cancelled instead of refunded.
func (s *Server) RefundAttendee(orderID string, i int, cancel bool) Delivery {
	s.mu.Lock()
	var ev, aid string
	if o := s.orders[orderID]; o != nil && i < len(o.Attendees) {
		a := &o.Attendees[i]
		if cancel {
			a.Cancelled = true
		} else {
			a.Refunded = true
		}
		a.Status, a.Changed, o.Changed = "Not Attending", s.now(), s.now()
		ev, aid = o.EventID, a.ID
	}
	s.mu.Unlock()
	return s.Deliver("attendee.updated", s.URL+"/v3/events/"+ev+"/attendees/"+aid+"/")
}

// Refund refunds an order on their side and delivers order.refunded.
func (s *Server) Refund(orderID string) Delivery {
	s.mu.Lock()
	if o := s.orders[orderID]; o != nil {
		o.Status, o.Changed = "refunded", s.now()
		for i := range o.Attendees {
			o.Attendees[i].Refunded, o.Attendees[i].Status, o.Attendees[i].Changed = true, "Not Attending", s.now()
		}
	}
	s.mu.Unlock()
	return s.Deliver("order.refunded", s.URL+"/v3/orders/"+orderID+"/")
}

// CheckIn checks an order's attendee in and delivers attendee.checked_in.
func (s *Server) CheckIn(orderID string) Delivery {
	s.mu.Lock()
	var ev, aid string
	if o := s.orders[orderID]; o != nil && len(o.Attendees) > 0 {
		o.Attendees[0].CheckedIn, o.Attendees[0].Status, o.Attendees[0].Changed = true, "Checked In", s.now()
		ev, aid = o.EventID, o.Attendees[0].ID
	}
	s.mu.Unlock()
	return s.Deliver("attendee.checked_in", s.URL+"/v3/events/"+ev+"/attendees/"+aid+"/")
}

var deliverySeq struct {
	sync.Mutex
	n int
}

// Deliver posts a thin webhook for apiURL to WebhookURL and records the answer.
func (s *Server) Deliver(action, apiURL string) Delivery {
	deliverySeq.Lock()
	deliverySeq.n++
	id := fmt.Sprintf("%d%06d", time.Now().Unix(), deliverySeq.n)
	deliverySeq.Unlock()
	body, _ := json.Marshal(map[string]any{
		"config":  map[string]any{"action": action, "user_id": "1234567890", "endpoint_url": s.WebhookURL, "webhook_id": "7654321"},
		"api_url": apiURL,
	})
	d := Delivery{ID: id, Action: action, Body: body}
	return s.Redeliver(d)
}

// Redeliver sends a delivery again (Eventbrite retries; replays).
func (s *Server) Redeliver(d Delivery) Delivery {
	if s.WebhookURL == "" {
		return d
	}
	req, err := http.NewRequest(http.MethodPost, s.WebhookURL, bytes.NewReader(d.Body))
	if err != nil {
		return d
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Eventbrite-Event", d.Action)
	req.Header.Set("X-Eventbrite-Delivery", d.ID)
	res, err := s.Client.Do(req)
	if err != nil {
		d.Status = -1
		return d
	}
	res.Body.Close()
	d.Status = res.StatusCode
	return d
}

// apiError is Eventbrite's error body.
func apiError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"status_code": status, "error": code, "error_description": desc})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) guard(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.calls++
		slow := s.slow
		var fail int
		if len(s.failNext) > 0 {
			fail, s.failNext = s.failNext[0], s.failNext[1:]
		}
		s.mu.Unlock()
		if slow > 0 {
			select {
			case <-time.After(slow):
			case <-r.Context().Done():
				return
			}
		}
		if r.Header.Get("Authorization") != "Bearer "+s.Token || fail == http.StatusUnauthorized {
			apiError(w, http.StatusUnauthorized, "INVALID_AUTH", "The OAuth token you provided was invalid.")
			return
		}
		switch {
		case fail == http.StatusTooManyRequests:
			w.Header().Set("Retry-After", "1")
			apiError(w, http.StatusTooManyRequests, "HIT_RATE_LIMIT", "Hourly rate limit has been reached for this token.")
			return
		case fail != 0:
			apiError(w, fail, "INTERNAL_ERROR", "An unexpected error occurred.")
			return
		}
		h(w, r)
	}
}

// page cuts items by continuation (an offset, opaque to clients).
func page[T any](r *http.Request, items []T) ([]T, map[string]any) {
	size, _ := strconv.Atoi(r.URL.Query().Get("page_size"))
	if size <= 0 || size > 200 {
		size = 50
	}
	from, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Query().Get("continuation"), "c"))
	from = min(max(from, 0), len(items))
	to := min(from+size, len(items))
	p := map[string]any{"object_count": len(items), "page_number": from/size + 1, "page_size": size,
		"page_count": (len(items) + size - 1) / size, "has_more_items": to < len(items)}
	if to < len(items) {
		p["continuation"] = "c" + strconv.Itoa(to)
	}
	return items[from:to], p
}

func (s *Server) tcJSON(tc *TicketClass) map[string]any {
	sold := s.soldLocked(tc.ID)
	status := "AVAILABLE"
	if sold >= tc.QuantityTotal {
		status = "SOLD_OUT"
	}
	return map[string]any{"id": tc.ID, "name": tc.Name, "quantity_total": tc.QuantityTotal, "quantity_sold": sold,
		"cost":        money(tc.Currency, tc.CostMinor),
		"sales_start": ebTime(tc.SalesStart), "sales_end": ebTime(tc.SalesEnd), "on_sale_status": status,
		"inventory_tier_id": tc.ID}
}

func (s *Server) eventJSON(e *Event, expand string) map[string]any {
	out := map[string]any{"id": e.ID, "name": map[string]any{"text": e.Name, "html": e.Name}, "status": e.Status,
		"organization_id": e.OrgID, "capacity": e.Capacity, "start": map[string]any{"utc": e.Start.UTC().Format("2006-01-02T15:04:05Z"), "timezone": "UTC"},
		"resource_uri": s.URL + "/v3/events/" + e.ID + "/"}
	if strings.Contains(expand, "ticket_classes") {
		var tcs []any
		for _, tc := range e.TicketClasses {
			tcs = append(tcs, s.tcJSON(tc))
		}
		out["ticket_classes"] = tcs
	}
	return out
}

func (s *Server) orgEvents(w http.ResponseWriter, r *http.Request) {
	status := r.URL.Query().Get("status")
	s.mu.Lock()
	var evs []*Event
	for _, e := range s.events {
		if e.OrgID == r.PathValue("org") && (status == "" || status == "all" || status == e.Status) {
			evs = append(evs, e)
		}
	}
	sort.Slice(evs, func(i, j int) bool { return evs[i].ID < evs[j].ID })
	part, p := page(r, evs)
	items := []any{}
	for _, e := range part {
		items = append(items, s.eventJSON(e, r.URL.Query().Get("expand")))
	}
	s.mu.Unlock()
	writeJSON(w, map[string]any{"pagination": p, "events": items})
}

func (s *Server) getEvent(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.events[r.PathValue("id")]
	if e == nil {
		apiError(w, http.StatusNotFound, "NOT_FOUND", "The event you requested does not exist.")
		return
	}
	writeJSON(w, s.eventJSON(e, r.URL.Query().Get("expand")))
}

// updateEvent changes the event's capacity (the total across its tiers).
func (s *Server) updateEvent(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Event struct {
			Capacity *int `json:"capacity"`
		} `json:"event"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		apiError(w, http.StatusBadRequest, "ARGUMENTS_ERROR", "There are errors with your arguments: body")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.events[r.PathValue("id")]
	if e == nil {
		apiError(w, http.StatusNotFound, "NOT_FOUND", "The event you requested does not exist.")
		return
	}
	if in.Event.Capacity != nil {
		sold := 0
		for _, tc := range e.TicketClasses {
			sold += s.soldLocked(tc.ID)
		}
		if *in.Event.Capacity < sold {
			apiError(w, http.StatusBadRequest, "CAPACITY_TOTAL_TOO_SMALL", fmt.Sprintf("Capacity must be at least %d, the number of tickets sold.", sold))
			return
		}
		if *in.Event.Capacity < sold+e.Held {
			apiError(w, http.StatusBadRequest, "HOLD_QUANTITIES_EXCEEDS_REMAINING_CAPACITY", "The quantity held exceeds the remaining capacity.")
			return
		}
		e.Capacity = *in.Event.Capacity
	}
	writeJSON(w, s.eventJSON(e, ""))
}

// updateTicketClass changes a ticket class (`{"ticket_class": {…}}`: its
// quantity_total, cost "CUR,value" in minor units, sales_start, sales_end)
// or its inventory tier (`{"inventory_tier": {"quantity_total": …}}`).
// Refused as Eventbrite refuses: a malformed cost or date, another
// currency than the class's, a sales_end not after sales_start, a cost
// changed once tickets sold (400 ARGUMENTS_ERROR), a quantity below what
// sold (CAPACITY_TOTAL_TOO_SMALL).
func (s *Server) updateTicketClass(w http.ResponseWriter, r *http.Request) {
	var in map[string]struct {
		QuantityTotal *int    `json:"quantity_total"`
		Cost          *string `json:"cost"`
		SalesStart    *string `json:"sales_start"`
		SalesEnd      *string `json:"sales_end"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || len(in) != 1 {
		apiError(w, http.StatusBadRequest, "ARGUMENTS_ERROR", "There are errors with your arguments: body")
		return
	}
	var q *int
	var cost, start, end *string
	for _, v := range in {
		q, cost, start, end = v.QuantityTotal, v.Cost, v.SalesStart, v.SalesEnd
	}
	if cost != nil || start != nil || end != nil {
		s.updateOffer(w, r, cost, start, end)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.events[r.PathValue("id")]
	var tc *TicketClass
	if e != nil {
		for _, c := range e.TicketClasses {
			if c.ID == r.PathValue("tc") {
				tc = c
			}
		}
	}
	if tc == nil {
		apiError(w, http.StatusNotFound, "NOT_FOUND", "The ticket class you requested does not exist.")
		return
	}
	if q == nil || *q < 0 {
		apiError(w, http.StatusBadRequest, "ARGUMENTS_ERROR", "quantity_total is required")
		return
	}
	if sold := s.soldLocked(tc.ID); *q < sold {
		apiError(w, http.StatusBadRequest, "CAPACITY_TOTAL_TOO_SMALL", fmt.Sprintf("quantity_total must be at least %d, the number sold.", sold))
		return
	}
	tc.QuantityTotal = *q
	writeJSON(w, s.tcJSON(tc))
}

func (s *Server) ticketClasses(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.events[r.PathValue("id")]
	if e == nil {
		apiError(w, http.StatusNotFound, "NOT_FOUND", "The event you requested does not exist.")
		return
	}
	part, p := page(r, e.TicketClasses)
	items := []any{}
	for _, tc := range part {
		items = append(items, s.tcJSON(tc))
	}
	writeJSON(w, map[string]any{"pagination": p, "ticket_classes": items})
}

func (s *Server) eventAttendees(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var as []Attendee
	for _, o := range s.orders {
		if o.EventID == r.PathValue("id") {
			as = append(as, o.Attendees...)
		}
	}
	sort.Slice(as, func(i, j int) bool { return as[i].ID < as[j].ID })
	part, p := page(r, as)
	if part == nil {
		part = []Attendee{}
	}
	writeJSON(w, map[string]any{"pagination": p, "attendees": part})
}

func (s *Server) getAttendee(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range s.orders {
		for _, a := range o.Attendees {
			if a.ID == r.PathValue("aid") && a.EventID == r.PathValue("id") {
				writeJSON(w, a)
				return
			}
		}
	}
	apiError(w, http.StatusNotFound, "NOT_FOUND", "The attendee you requested does not exist.")
}

func (s *Server) getOrder(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.orders[r.PathValue("id")]
	if o == nil {
		apiError(w, http.StatusNotFound, "NOT_FOUND", "The order you requested does not exist.")
		return
	}
	out := *o
	if !strings.Contains(r.URL.Query().Get("expand"), "attendees") {
		out.Attendees = nil
	}
	writeJSON(w, out)
}

// Cancelled says whether the event was cancelled on the site (what the API hides).
func (s *Server) Cancelled(eventID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.events[eventID]
	return e != nil && e.cancelledOnSite
}

// ResetFailures drops the failures FailNext queued and not yet served.
func (s *Server) ResetFailures() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNext = nil
}

// money is Eventbrite's currency amount: value in minor units.
func money(currency string, minor int64) map[string]any {
	return map[string]any{"currency": currency, "value": minor, "major_value": fmt.Sprintf("%d.%02d", minor/100, minor%100),
		"display": fmt.Sprintf("%s %d.%02d", currency, minor/100, minor%100)}
}

func ebTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format("2006-01-02T15:04:05Z")
}

// updateOffer changes a ticket class's cost and sales window.
func (s *Server) updateOffer(w http.ResponseWriter, r *http.Request, cost, start, end *string) {
	var cur string
	var value int64 = -1
	if cost != nil {
		c, v, ok := strings.Cut(*cost, ",")
		n, err := strconv.ParseInt(v, 10, 64)
		if !ok || len(c) != 3 || err != nil || n < 0 {
			apiError(w, http.StatusBadRequest, "ARGUMENTS_ERROR", "There are errors with your arguments: cost - INVALID (a currency and a value in minor units, like USD,2000)")
			return
		}
		cur, value = c, n
	}
	parse := func(p *string) (*time.Time, bool) {
		if p == nil {
			return nil, true
		}
		t, err := time.Parse("2006-01-02T15:04:05Z", *p)
		return &t, err == nil
	}
	st, ok1 := parse(start)
	en, ok2 := parse(end)
	if !ok1 || !ok2 {
		apiError(w, http.StatusBadRequest, "ARGUMENTS_ERROR", "There are errors with your arguments: sales_start/sales_end - INVALID (UTC, like 2030-01-31T19:00:00Z)")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.events[r.PathValue("id")]
	var tc *TicketClass
	if e != nil {
		for _, c := range e.TicketClasses {
			if c.ID == r.PathValue("tc") {
				tc = c
			}
		}
	}
	if tc == nil {
		apiError(w, http.StatusNotFound, "NOT_FOUND", "The ticket class you requested does not exist.")
		return
	}
	newStart, newEnd := tc.SalesStart, tc.SalesEnd
	if st != nil {
		newStart = *st
	}
	if en != nil {
		newEnd = *en
	}
	switch {
	case value >= 0 && cur != tc.Currency:
		apiError(w, http.StatusBadRequest, "ARGUMENTS_ERROR", "There are errors with your arguments: cost - CURRENCY_MISMATCH (the event's currency is "+tc.Currency+")")
		return
	case value >= 0 && value != tc.CostMinor && s.soldLocked(tc.ID) > 0:
		apiError(w, http.StatusBadRequest, "ARGUMENTS_ERROR", "There are errors with your arguments: cost - CANNOT_CHANGE_COST_AFTER_SALES (tickets of this class have been sold)")
		return
	case !newStart.IsZero() && !newEnd.IsZero() && !newEnd.After(newStart):
		apiError(w, http.StatusBadRequest, "ARGUMENTS_ERROR", "There are errors with your arguments: sales_end - MUST_BE_AFTER_SALES_START")
		return
	}
	if value >= 0 {
		tc.CostMinor = value
	}
	tc.SalesStart, tc.SalesEnd = newStart, newEnd
	tc.Updates++
	writeJSON(w, s.tcJSON(tc))
}

// TicketClass returns a copy of a ticket class (zero if unknown).
func (s *Server) TicketClass(id string) TicketClass {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.events {
		for _, tc := range e.TicketClasses {
			if tc.ID == id {
				return *tc
			}
		}
	}
	return TicketClass{}
}

// SetCost sets a ticket class's cost as the organiser would on the site
// (before sales; the API refuses a change after).
func (s *Server) SetCost(ticketClassID string, minor int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.events {
		for _, tc := range e.TicketClasses {
			if tc.ID == ticketClassID {
				tc.CostMinor = minor
			}
		}
	}
}
