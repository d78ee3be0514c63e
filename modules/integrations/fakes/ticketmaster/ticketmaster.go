// Package ticketmaster is a local stand-in for Ticketmaster, following the
// shapes of its public APIs: Discovery v2 (the catalogue: `_embedded`,
// `page`, `_links`, apikey in the query, ~5 req/s and 5,000 calls a day),
// the Partner API's availability (`tickets[].available/total`, the
// `Ratelimit-Quota-*` headers, 3,600 calls an hour, a nightly maintenance
// window 2–4 AM venue time), and an allocation channel modelled on its
// third-party integration API (our allocation per event, their orders
// booked → confirmed | released, confirmed → cancelled, paged by cursor,
// and a reconciliation count). Errors carry Apigee's fault bodies.
// Tests and the demo run it in process (httptest); knobs make it slow,
// failing, rate-limited or drifting on demand.
package ticketmaster

import (
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

// Order states on the allocation channel.
const (
	Booked    = "BOOKED"
	Confirmed = "CONFIRMED"
	Released  = "RELEASED"
	Cancelled = "CANCELLED"
)

// Event is one event listed on Ticketmaster.
type Event struct {
	ID, Name, VenueID, Timezone string
	Start                       time.Time
	Status                      string // onsale, offsale, canceled, postponed, rescheduled
	TicketTypeID                string
	FaceValue                   float64
	Currency                    string
	Allocated                   int // units we allocated to the channel
	Total                       int // their ticket count as Partner availability reports it
	// SalesStart and SalesEnd are the ticket type's on-sale window on the
	// channel (zero: open), as we last pushed it.
	SalesStart, SalesEnd time.Time
	// OfferUpdates counts the offer changes accepted.
	OfferUpdates int
}

// Order is one order on the allocation channel.
type Order struct {
	ID           string `json:"id"`
	EventID      string `json:"eventId"`
	TicketTypeID string `json:"ticketTypeId"`
	Quantity     int    `json:"quantity"`
	Status       string `json:"status"`
	Seq          int64  `json:"sequence"`
	Updated      string `json:"updated"`
	// FaceValue and Currency are the unit price the order was booked at
	// (the offer's, in major units as Ticketmaster writes prices).
	FaceValue float64 `json:"faceValue"`
	Currency  string  `json:"currency"`
}

// Server is the fake. Zero knobs: a healthy Ticketmaster.
type Server struct {
	*httptest.Server
	APIKey string
	Now    func() time.Time

	mu     sync.Mutex
	events map[string]*Event
	orders []*Order // in sequence order of their last change
	seq    int64
	nextID int

	// knobs
	failNext   []int         // statuses to answer to the next requests
	slow       time.Duration // added to every answer
	Drift      bool          // Partner availability answers from a stale cache
	Oversell   bool          // their side sells past our allocation
	staleTotal map[string]int
	perSecond  int // Discovery: requests per second (0: 5)
	perDay     int // Discovery: requests per day (0: 5000)
	perHour    int // Partner: requests per hour (0: 3600)
	secWindow  time.Time
	secCount   int
	dayCount   int
	hourWindow time.Time
	hourCount  int
	calls      map[string]int
}

// New starts a fake Ticketmaster accepting apiKey.
func New(apiKey string) *Server {
	s := &Server{APIKey: apiKey, Now: time.Now, events: map[string]*Event{}, calls: map[string]int{}, staleTotal: map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /discovery/v2/events.json", s.guard("discovery", s.discoveryList))
	mux.HandleFunc("GET /discovery/v2/events/{id}", s.guard("discovery", s.discoveryEvent))
	mux.HandleFunc("GET /partners/v1/events/{id}/availability", s.guard("partner", s.availability))
	mux.HandleFunc("PUT /partners/v1/events/{id}/allocation", s.guard("partner", s.putAllocation))
	mux.HandleFunc("GET /partners/v1/orders", s.guard("partner", s.listOrders))
	mux.HandleFunc("GET /partners/v1/events/{id}/reconciliation", s.guard("partner", s.reconciliation))
	mux.HandleFunc("PUT /partners/v1/events/{id}/offers/{ticketTypeId}", s.guard("partner", s.putOffer))
	mux.HandleFunc("GET /inventory-status/v1/availability", s.guard("status", s.inventoryStatus))
	s.Server = httptest.NewServer(mux)
	return s
}

// SetLimits changes the rate limits (0 keeps the real default).
func (s *Server) SetLimits(perSecond, perDay, perHour int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.perSecond, s.perDay, s.perHour = perSecond, perDay, perHour
}

// FailNext makes the next len(statuses) requests answer these statuses (429
// with the quota fault, 401 with the key fault, else a 5xx fault).
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

// Calls returns how many requests each API answered (including refusals).
func (s *Server) Calls(api string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[api]
}

// AddEvent lists an event.
func (s *Server) AddEvent(e Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e.Status == "" {
		e.Status = "onsale"
	}
	if e.Timezone == "" {
		e.Timezone = "UTC"
	}
	if e.TicketTypeID == "" {
		e.TicketTypeID = "TT-" + e.ID
	}
	if e.Currency == "" {
		e.Currency = "USD"
	}
	ev := e
	s.events[e.ID] = &ev
}

// Event returns a copy of a listed event (zero if unknown).
func (s *Server) Event(id string) Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.events[id]; e != nil {
		return *e
	}
	return Event{}
}

// Sold is what their side sold for the event (confirmed orders).
func (s *Server) Sold(eventID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.soldLocked(eventID)
}

func (s *Server) soldLocked(eventID string) int {
	n := 0
	for _, o := range s.orders {
		if o.EventID == eventID && (o.Status == Confirmed || o.Status == Booked) {
			n += o.Quantity
		}
	}
	return n
}

// Allocated is what we allocated to the channel for the event.
func (s *Server) Allocated(eventID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.events[eventID]; e != nil {
		return e.Allocated
	}
	return 0
}

func (s *Server) touch(o *Order, status string) {
	s.seq++
	o.Status, o.Seq, o.Updated = status, s.seq, s.Now().UTC().Format(time.RFC3339Nano)
	// keep the slice in sequence order of the last change
	for i, x := range s.orders {
		if x == o {
			s.orders = append(s.orders[:i], s.orders[i+1:]...)
			break
		}
	}
	s.orders = append(s.orders, o)
}

// Book books qty tickets on their side (a buyer at Ticketmaster). It is
// refused (ok=false) past our allocation unless Oversell is on.
func (s *Server) Book(eventID string, qty int) (Order, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.events[eventID]
	if e == nil || (!s.Oversell && s.soldLocked(eventID)+qty > e.Allocated) {
		return Order{}, false
	}
	s.nextID++
	o := &Order{ID: fmt.Sprintf("TM-%s-%d", eventID, s.nextID), EventID: eventID, TicketTypeID: e.TicketTypeID, Quantity: qty,
		FaceValue: e.FaceValue, Currency: e.Currency}
	s.touch(o, Booked)
	return *o, true
}

// Sell books and confirms qty tickets at once.
func (s *Server) Sell(eventID string, qty int) (Order, bool) {
	o, ok := s.Book(eventID, qty)
	if ok {
		o = s.Move(o.ID, Confirmed)
	}
	return o, ok
}

// Move changes an order's state (confirm, release, cancel).
func (s *Server) Move(orderID, status string) Order {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range s.orders {
		if o.ID == orderID {
			s.touch(o, status)
			return *o
		}
	}
	return Order{}
}

// Fault is Apigee's error body.
type Fault struct {
	Fault struct {
		Faultstring string `json:"faultstring"`
		Detail      struct {
			Errorcode string `json:"errorcode"`
		} `json:"detail"`
	} `json:"fault"`
}

func writeFault(w http.ResponseWriter, status int, text, code string) {
	var f Fault
	f.Fault.Faultstring, f.Fault.Detail.Errorcode = text, code
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(f)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	_ = json.NewEncoder(w).Encode(v)
}

// inMaintenance says whether any listed event's venue is in its nightly
// 2–4 AM window (the Partner API is down for all of them then).
func (s *Server) inMaintenance(eventID string) bool {
	e := s.events[eventID]
	if e == nil {
		return false
	}
	loc, err := time.LoadLocation(e.Timezone)
	if err != nil {
		loc = time.UTC
	}
	h := s.Now().In(loc).Hour()
	return h >= 2 && h < 4
}

// guard applies auth, the failure knobs and the rate limits of api.
func (s *Server) guard(api string, h func(w http.ResponseWriter, r *http.Request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		slow := s.slow
		s.calls[api]++
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
		key := r.URL.Query().Get("apikey")
		if key == "" {
			key = r.Header.Get("x-api-key")
		}
		if key != s.APIKey || fail == http.StatusUnauthorized {
			writeFault(w, http.StatusUnauthorized, "Invalid ApiKey", "oauth.v2.InvalidApiKey")
			return
		}
		if fail == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "1")
			writeFault(w, http.StatusTooManyRequests, "Rate limit quota violation. Quota limit  exceeded. Identifier : "+key, "policies.ratelimit.QuotaViolation")
			return
		}
		if fail != 0 {
			writeFault(w, fail, "Internal error", "messaging.adaptors.http.flow.ServiceUnavailable")
			return
		}
		s.mu.Lock()
		now := s.Now()
		var limited bool
		switch api {
		case "status": // the Inventory Status API: counted, not limited here
		case "discovery":
			perSec, perDay := or(s.perSecond, 5), or(s.perDay, 5000)
			if now.Truncate(time.Second) != s.secWindow {
				s.secWindow, s.secCount = now.Truncate(time.Second), 0
			}
			s.secCount++
			s.dayCount++
			limited = s.secCount > perSec || s.dayCount > perDay
		default:
			perHour := or(s.perHour, 3600)
			if now.Truncate(time.Hour) != s.hourWindow {
				s.hourWindow, s.hourCount = now.Truncate(time.Hour), 0
			}
			if s.hourCount < perHour {
				s.hourCount++
			} else {
				limited = true
			}
			w.Header().Set("Ratelimit-Quota-Allowed", strconv.Itoa(perHour))
			w.Header().Set("Ratelimit-Quota-Used", strconv.Itoa(s.hourCount))
			w.Header().Set("Ratelimit-Quota-Available", strconv.Itoa(perHour-s.hourCount))
			w.Header().Set("Ratelimit-Quota-Reset", strconv.FormatInt(s.hourWindow.Add(time.Hour).Unix(), 10))
		}
		maint := api == "partner" && s.inMaintenance(r.PathValue("id"))
		s.mu.Unlock()
		if limited {
			w.Header().Set("Retry-After", "1")
			writeFault(w, http.StatusTooManyRequests, "Rate limit quota violation. Quota limit  exceeded. Identifier : "+key, "policies.ratelimit.QuotaViolation")
			return
		}
		if maint {
			w.Header().Set("Retry-After", "3600")
			writeFault(w, http.StatusServiceUnavailable, "The service is in its nightly maintenance window", "maintenance.window")
			return
		}
		h(w, r)
	}
}

func or(v, d int) int {
	if v == 0 {
		return d
	}
	return v
}

func (s *Server) eventJSON(e *Event) map[string]any {
	return map[string]any{
		"id": e.ID, "name": e.Name, "type": "event", "url": "https://www.ticketmaster.com/event/" + e.ID,
		"dates": map[string]any{"start": map[string]any{"dateTime": e.Start.UTC().Format(time.RFC3339)}, "timezone": e.Timezone,
			"status": map[string]any{"code": e.Status}},
		"sales":       map[string]any{"public": map[string]any{"startDateTime": e.Start.Add(-30 * 24 * time.Hour).UTC().Format(time.RFC3339)}},
		"priceRanges": []any{map[string]any{"type": "standard", "currency": e.Currency, "min": e.FaceValue, "max": e.FaceValue}},
		"_embedded":   map[string]any{"venues": []any{map[string]any{"id": e.VenueID, "name": "Venue " + e.VenueID}}},
		"_links":      map[string]any{"self": map[string]any{"href": "/discovery/v2/events/" + e.ID + "?locale=en-us"}},
	}
}

func (s *Server) discoveryList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	size, _ := strconv.Atoi(q.Get("size"))
	if size <= 0 || size > 200 {
		size = 20
	}
	page, _ := strconv.Atoi(q.Get("page"))
	s.mu.Lock()
	var evs []*Event
	for _, e := range s.events {
		if v := q.Get("venueId"); v == "" || v == e.VenueID {
			evs = append(evs, e)
		}
	}
	sort.Slice(evs, func(i, j int) bool {
		return evs[i].Start.Before(evs[j].Start) || evs[i].Start.Equal(evs[j].Start) && evs[i].ID < evs[j].ID
	})
	total := len(evs)
	pages := (total + size - 1) / size
	var items []any
	for i := page * size; i < min((page+1)*size, total); i++ {
		items = append(items, s.eventJSON(evs[i]))
	}
	s.mu.Unlock()
	link := func(p int) map[string]any {
		v := q
		v.Set("page", strconv.Itoa(p))
		v.Set("size", strconv.Itoa(size))
		v.Del("apikey")
		return map[string]any{"href": "/discovery/v2/events.json?" + v.Encode()}
	}
	links := map[string]any{"self": link(page), "first": link(0)}
	if page+1 < pages {
		links["next"] = link(page + 1)
	}
	if pages > 0 {
		links["last"] = link(pages - 1)
	}
	out := map[string]any{"_links": links, "page": map[string]any{"size": size, "totalElements": total, "totalPages": pages, "number": page}}
	if len(items) > 0 { // Discovery leaves _embedded out of an empty page
		out["_embedded"] = map[string]any{"events": items}
	}
	writeJSON(w, out)
}

func (s *Server) discoveryEvent(w http.ResponseWriter, r *http.Request) {
	id := strings.TrimSuffix(r.PathValue("id"), ".json")
	s.mu.Lock()
	e := s.events[id]
	var out map[string]any
	if e != nil {
		out = s.eventJSON(e)
	}
	s.mu.Unlock()
	if e == nil {
		writeFault(w, http.StatusNotFound, "Resource not found with provided criteria (locale=en-us, id="+id+")", "DIS1004")
		return
	}
	writeJSON(w, out)
}

func (s *Server) availability(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.events[r.PathValue("id")]
	if e == nil {
		writeFault(w, http.StatusNotFound, "Event not found", "EVT404")
		return
	}
	total := max(e.Total, e.Allocated)
	sold := s.soldLocked(e.ID)
	if s.Drift {
		// The Partner API's data may be cached for long: drift mode answers
		// the count of the first read.
		if v, ok := s.staleTotal[e.ID]; ok {
			sold = v
		} else {
			s.staleTotal[e.ID] = sold
		}
	}
	writeJSON(w, map[string]any{
		"event": map[string]any{"id": e.ID, "name": e.Name},
		"tickets": []any{map[string]any{"available": total - sold, "total": total, "currentTicketLimit": 8,
			"inventory": []any{map[string]any{"section": "GA", "row": "", "seats": []any{}}},
			"offers":    []any{map[string]any{"ticketTypeId": e.TicketTypeID, "priceLevelId": "1", "currency": e.Currency, "faceValue": e.FaceValue}}}},
	})
}

func (s *Server) putAllocation(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Quantity *int `json:"quantity"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Quantity == nil || *in.Quantity < 0 {
		writeFault(w, http.StatusBadRequest, "quantity must be a non-negative integer", "ALLOC400")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.events[r.PathValue("id")]
	if e == nil {
		writeFault(w, http.StatusNotFound, "Event not found", "EVT404")
		return
	}
	if sold := s.soldLocked(e.ID); *in.Quantity < sold {
		writeFault(w, http.StatusConflict, fmt.Sprintf("allocation %d is below the %d tickets sold", *in.Quantity, sold), "ALLOC409")
		return
	}
	e.Allocated = *in.Quantity
	writeJSON(w, map[string]any{"eventId": e.ID, "allocated": e.Allocated, "sold": s.soldLocked(e.ID)})
}

// listOrders pages through the orders changed after the cursor (a sequence
// number), oldest first: the poller's feed.
func (s *Server) listOrders(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	since, _ := strconv.ParseInt(q.Get("since"), 10, 64)
	size, _ := strconv.Atoi(q.Get("size"))
	if size <= 0 || size > 500 {
		size = 100
	}
	events := map[string]bool{}
	for _, id := range strings.Split(q.Get("eventId"), ",") {
		if id != "" {
			events[id] = true
		}
	}
	s.mu.Lock()
	var out []Order
	for _, o := range s.orders {
		if o.Seq > since && (len(events) == 0 || events[o.EventID]) {
			out = append(out, *o)
		}
	}
	s.mu.Unlock()
	more := len(out) > size
	if more {
		out = out[:size]
	}
	body := map[string]any{"_embedded": map[string]any{"orders": nonNil(out)}, "page": map[string]any{"size": size, "number": 0}}
	links := map[string]any{}
	if more {
		links["next"] = map[string]any{"href": fmt.Sprintf("/partners/v1/orders?since=%d&size=%d&eventId=%s", out[len(out)-1].Seq, size, q.Get("eventId"))}
	}
	body["_links"] = links
	writeJSON(w, body)
}

func nonNil(os []Order) []Order {
	if os == nil {
		return []Order{}
	}
	return os
}

func (s *Server) reconciliation(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.events[r.PathValue("id")]
	if e == nil {
		writeFault(w, http.StatusNotFound, "Event not found", "EVT404")
		return
	}
	var sold, pending int
	for _, o := range s.orders {
		if o.EventID != e.ID {
			continue
		}
		switch o.Status {
		case Confirmed:
			sold += o.Quantity
		case Booked:
			pending += o.Quantity
		}
	}
	if s.Drift {
		// Drift: the reconciliation answers from the same stale cache.
		if v, ok := s.staleTotal["rec:"+e.ID]; ok {
			sold = v
		} else {
			s.staleTotal["rec:"+e.ID] = sold
		}
	}
	writeJSON(w, map[string]any{"eventId": e.ID, "allocated": e.Allocated, "sold": sold, "pending": pending, "sequence": s.seq})
}

// ResetFailures drops the failures FailNext queued and not yet served.
func (s *Server) ResetFailures() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNext = nil
}

// putOffer changes a ticket type's price and on-sale window on the
// allocation channel: {"faceValue": 45.5, "currency": "EUR",
// "onsaleDateTime": RFC 3339, "offsaleDateTime": RFC 3339}. Refused like
// the Partner API refuses bad values: an unknown ticket type (404), a
// negative or over-precise price, another currency than the event's, a
// window that ends before it starts (400 with a fault body).
func (s *Server) putOffer(w http.ResponseWriter, r *http.Request) {
	var in struct {
		FaceValue *json.Number `json:"faceValue"`
		Currency  string       `json:"currency"`
		Onsale    *string      `json:"onsaleDateTime"`
		Offsale   *string      `json:"offsaleDateTime"`
	}
	dec := json.NewDecoder(r.Body)
	dec.UseNumber()
	if err := dec.Decode(&in); err != nil || in.FaceValue == nil {
		writeFault(w, http.StatusBadRequest, "faceValue is required", "OFFER400")
		return
	}
	value, err := strconv.ParseFloat(in.FaceValue.String(), 64)
	if dot := strings.IndexByte(in.FaceValue.String(), '.'); err != nil || value < 0 || dot >= 0 && len(in.FaceValue.String())-dot-1 > 2 {
		writeFault(w, http.StatusBadRequest, "faceValue must be a non-negative amount with at most 2 decimals", "OFFER400")
		return
	}
	var start, end time.Time
	for _, f := range []struct {
		in  *string
		out *time.Time
	}{{in.Onsale, &start}, {in.Offsale, &end}} {
		if f.in == nil || *f.in == "" {
			continue
		}
		if *f.out, err = time.Parse(time.RFC3339, *f.in); err != nil {
			writeFault(w, http.StatusBadRequest, "onsaleDateTime and offsaleDateTime are ISO 8601 date-times", "OFFER400")
			return
		}
	}
	if !start.IsZero() && !end.IsZero() && !end.After(start) {
		writeFault(w, http.StatusBadRequest, "offsaleDateTime must be after onsaleDateTime", "OFFER400")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.events[r.PathValue("id")]
	if e == nil || e.TicketTypeID != r.PathValue("ticketTypeId") {
		writeFault(w, http.StatusNotFound, "Ticket type not found", "OFFER404")
		return
	}
	if in.Currency != e.Currency {
		writeFault(w, http.StatusBadRequest, "currency must be the event's ("+e.Currency+")", "OFFER400")
		return
	}
	e.FaceValue, e.SalesStart, e.SalesEnd = value, start, end
	e.OfferUpdates++
	writeJSON(w, map[string]any{"eventId": e.ID, "ticketTypeId": e.TicketTypeID, "faceValue": e.FaceValue, "currency": e.Currency,
		"onsaleDateTime": timeOrNil(e.SalesStart), "offsaleDateTime": timeOrNil(e.SalesEnd)})
}

func timeOrNil(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(time.RFC3339)
}

// Inventory statuses (Inventory Status API).
const (
	StatusAvailable    = "TICKETS_AVAILABLE"
	StatusFewLeft      = "FEW_TICKETS_LEFT"
	StatusNotAvailable = "TICKETS_NOT_AVAILABLE"
	StatusUnknown      = "UNKNOWN"
)

// inventoryStatus answers the Inventory Status API:
// GET /inventory-status/v1/availability?events=ID1,ID2 →
// [{"eventId","status"}], one entry per id asked, in order; an id it does
// not know is UNKNOWN. Few tickets left is a tenth of the allocation or
// less. Drift mode answers from the same stale cache as availability.
func (s *Server) inventoryStatus(w http.ResponseWriter, r *http.Request) {
	ids := strings.Split(r.URL.Query().Get("events"), ",")
	if r.URL.Query().Get("events") == "" || len(ids) > 50 {
		writeFault(w, http.StatusBadRequest, "events takes 1 to 50 event ids", "INVSTATUS400")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]map[string]string, 0, len(ids))
	for _, id := range ids {
		e := s.events[id]
		status := StatusUnknown
		if e != nil {
			total := max(e.Total, e.Allocated)
			sold := s.soldLocked(id)
			if v, ok := s.staleTotal[id]; ok && s.Drift {
				sold = v
			}
			left := total - sold
			switch {
			case e.Status != "onsale" || left <= 0:
				status = StatusNotAvailable
			case left*10 <= total:
				status = StatusFewLeft
			default:
				status = StatusAvailable
			}
		}
		out = append(out, map[string]string{"eventId": id, "status": status})
	}
	writeJSON(w, out)
}

// RemoveEvent delists an event (their side no longer knows it).
func (s *Server) RemoveEvent(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.events, id)
}
