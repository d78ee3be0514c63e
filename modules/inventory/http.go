package inventory

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"

	"marquee/app"
	"marquee/modules/inventory/internal/limits"
	"marquee/modules/inventory/internal/orders"
	"marquee/modules/inventory/internal/stock"
	"marquee/policies"
	"marquee/tenants"
)

// Handlers read top to bottom: decode and validate, call the service,
// respond. Domain failures are *app.Error values passed to app.Fail.

// BuyerCookie carries the signed anonymous buyer token on the storefront.
// DeviceCookie carries the signed device token: first-party, HttpOnly (a
// script on the page cannot read or copy it), set by the storefront's
// pages and by POST /buyer-sessions; API clients send the token that
// POST /buyer-sessions answers as DeviceHeader instead.
const (
	BuyerCookie  = "marquee_buyer"
	BuyerHeader  = "X-Buyer-Token"
	QueueHeader  = "X-Queue-Token"
	DeviceCookie = "marquee_device"
	DeviceHeader = "X-Device-Id"
)

// event reads the event of the path; staff routes then check the venue.
func (m *Module) event(c *gin.Context) (app.EventInfo, error) {
	id, err := app.PathUUID(c, "eventId", "event")
	if err != nil {
		return app.EventInfo{}, err
	}
	return m.svc.Event(c.Request.Context(), app.TenantOf(c), id)
}

// staffEvent reads the event of the path and requires a permission at its
// venue (chain roles hold it at every venue).
func (m *Module) staffEvent(c *gin.Context, object, action string) (app.EventInfo, error) {
	ev, err := m.event(c)
	if err != nil {
		return ev, err
	}
	if !m.app.CanAtVenue(c, ev.VenueID, object, action) {
		return ev, app.Forbidden("forbidden", "your roles do not allow "+action+" on "+object+" at this event's venue")
	}
	return ev, nil
}

// buyer returns the request's anonymous buyer id from its signed token.
func (m *Module) buyer(c *gin.Context) string {
	tok := c.GetHeader(BuyerHeader)
	if tok == "" {
		tok, _ = c.Cookie(BuyerCookie)
	}
	id, ok := m.svc.BuyerFromToken(app.TenantOf(c), tok)
	if !ok {
		return ""
	}
	return id
}

// device returns the request's device id from its signed token: the
// X-Device-Id header, else the device cookie. A header that is not a token
// of this chain is refused (an API client sent it on purpose); a cookie
// that is not is ignored (the storefront gives a new one), and the client
// is then counted by its address.
func (m *Module) device(c *gin.Context) (string, error) {
	if tok := c.GetHeader(DeviceHeader); tok != "" {
		id, ok := m.svc.DeviceFromToken(app.TenantOf(c), tok)
		if !ok {
			return "", app.InvalidField("invalid_device_token", "X-Device-Id", "X-Device-Id is not a device token of this chain; POST /api/v1/buyer-sessions gives one")
		}
		return id, nil
	}
	tok, _ := c.Cookie(DeviceCookie)
	id, _ := m.svc.DeviceFromToken(app.TenantOf(c), tok)
	return id, nil
}

// ensureDevice keeps the request's valid device token, or mints one (at
// most the chain's hold rate per address and minute, so that shedding a
// device's counts by dropping its cookie does not pay) and sets the cookie.
// It returns the token, "" when none was minted.
func (m *Module) ensureDevice(c *gin.Context) string {
	t := app.TenantOf(c)
	for _, tok := range []string{c.GetHeader(DeviceHeader), cookieOf(c, DeviceCookie)} {
		if _, ok := m.svc.DeviceFromToken(t, tok); ok {
			return tok
		}
	}
	if !m.svc.limits.MayMintDevice(c.Request.Context(), t, c.ClientIP()) {
		return ""
	}
	_, tok := m.svc.NewDeviceToken(t)
	http.SetCookie(c.Writer, &http.Cookie{Name: DeviceCookie, Value: tok, Path: "/", MaxAge: 400 * 24 * 3600,
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: c.Request.TLS != nil})
	return tok
}

func cookieOf(c *gin.Context, name string) string {
	v, _ := c.Cookie(name)
	return v
}

// staffAt reports whether a staff principal holds a permission at an event's venue.
func (m *Module) staffAt(c *gin.Context, eventID uuid.UUID, object, action string) bool {
	if !m.isStaff(c) {
		return false
	}
	ev, err := m.svc.Event(c.Request.Context(), app.TenantOf(c), eventID)
	return err == nil && m.app.CanAtVenue(c, ev.VenueID, object, action)
}

func (m *Module) isStaff(c *gin.Context) bool {
	k := app.PrincipalOf(c).Kind
	return k == app.KindUser || k == app.KindSupportVisit
}

// ---- public catalogue

func (m *Module) catalogue(c *gin.Context, _ app.None) (app.Page[CatalogueItem], error) {
	f, err := catalogueFilter(c)
	if err != nil {
		return app.Page[CatalogueItem]{}, err
	}
	items, err := m.svc.Catalogue(c.Request.Context(), app.TenantOf(c), f)
	out := app.Page[CatalogueItem]{Items: app.NonNil(items)}
	if len(items) == f.Limit && f.Limit > 0 {
		out.Next = items[len(items)-1].ID.String()
	}
	return out, err
}

func catalogueFilter(c *gin.Context) (app.EventFilter, error) {
	f := app.EventFilter{Statuses: []string{"on_sale"}, Limit: 50}
	if s := c.Query("status"); s != "" {
		for _, st := range strings.Split(s, ",") {
			if st != "on_sale" && st != "sold_out" {
				return f, invalid("status", "the public catalogue lists on_sale and sold_out events")
			}
		}
		f.Statuses = strings.Split(s, ",")
	}
	if v := c.Query("venue_id"); v != "" {
		id, err := uuid.Parse(v)
		if err != nil {
			return f, invalid("venue_id", "venue_id must be a UUID")
		}
		f.VenueID = id
	}
	f.Category = c.Query("category")
	if len(f.Category) > 40 {
		return f, invalid("category", "category is at most 40 characters")
	}
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"from", &f.From}, {"to", &f.To}} {
		if v := c.Query(p.name); v != "" {
			tm, err := time.Parse(time.RFC3339, v)
			if err != nil {
				if tm, err = time.Parse("2006-01-02", v); err != nil {
					return f, invalid(p.name, "%s must be a date (2006-01-02) or RFC 3339 time", p.name)
				}
			}
			*p.dst = tm
		}
	}
	if v := c.Query("after"); v != "" {
		id, err := uuid.Parse(v)
		if err != nil {
			return f, invalid("after", "after must be an event id")
		}
		f.After = id
	}
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 200 {
			return f, invalid("limit", "limit must be from 1 to 200")
		}
		f.Limit = n
	}
	return f, nil
}

// ---- setup (staff)

// respondInventory answers with an event's inventory as it now stands.
// staffInventory checks the permission at the event's venue and answers
// with its inventory as it stands after change (nil: a read).
func (m *Module) staffInventory(c *gin.Context, action string, change func(ev app.EventInfo) error) (Inventory, error) {
	ev, err := m.staffEvent(c, ObjInventory, action)
	if err != nil {
		return Inventory{}, err
	}
	if change != nil {
		if err := change(ev); err != nil {
			return Inventory{}, err
		}
	}
	return m.svc.Inventory(c.Request.Context(), app.TenantOf(c), ev.ID)
}

func (m *Module) getInventory(c *gin.Context, _ app.None) (Inventory, error) {
	return m.staffInventory(c, policies.Read, nil)
}

func (m *Module) putInventory(c *gin.Context, in Setup) (Inventory, error) {
	return m.staffInventory(c, policies.Write, func(ev app.EventInfo) error {
		return m.svc.Configure(c.Request.Context(), app.TenantOf(c), ev, in)
	})
}

// Quotas are channel quotas by channel name.
type Quotas map[string]int

func (m *Module) putQuotas(c *gin.Context, in Quotas) (Inventory, error) {
	return m.staffInventory(c, policies.Write, func(ev app.EventInfo) error {
		return m.svc.SetQuotas(c.Request.Context(), app.TenantOf(c), ev.ID, in)
	})
}

func (m *Module) patchSettings(c *gin.Context, in SettingsPatch) (Settings, error) {
	ev, err := m.staffEvent(c, ObjInventory, policies.Write)
	if err != nil {
		return Settings{}, err
	}
	return m.svc.UpdateSettings(c.Request.Context(), app.TenantOf(c), ev.ID, in)
}

// ---- public reads

func (m *Module) seatmap(c *gin.Context, _ app.None) (SeatMap, error) {
	ev, err := m.event(c)
	if err != nil {
		return SeatMap{}, err
	}
	sm, err := m.svc.SeatMap(c.Request.Context(), app.TenantOf(c), ev.ID)
	if err == nil {
		c.Header("Cache-Control", "public, max-age=60")
	}
	return sm, err
}

// availability answers the cached document as stored (bytes, not decoded
// and encoded again): a raw endpoint.
func (m *Module) availability(c *gin.Context) {
	ev, err := m.event(c)
	if err != nil {
		app.Fail(c, err)
		return
	}
	format := c.Query("format")
	if format != "" && format != "bitmap" && format != "full" {
		app.Fail(c, invalid("format", "format is full or bitmap"))
		return
	}
	raw, err := m.svc.AvailabilityJSON(c.Request.Context(), app.TenantOf(c), ev.ID, format == "bitmap")
	if err != nil {
		app.Fail(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.Data(http.StatusOK, "application/json; charset=utf-8", raw)
}

// AvailabilityDocument is either form of the availability answer: the full
// one (tiers and every seat's state) or, with ?format=bitmap, the compact one
// (tiers, seat_count, bitmap, encoding).
type AvailabilityDocument struct {
	Availability
	SeatCount int    `json:"seat_count,omitempty"`
	Bitmap    string `json:"bitmap,omitempty"`
	Encoding  string `json:"encoding,omitempty"`
}

func (m *Module) stream(c *gin.Context) {
	ev, err := m.event(c)
	if err != nil {
		app.Fail(c, err)
		return
	}
	m.app.Realtime.ServeSSE(c, stock.Topic(ev.ID))
}

// BuyerSession is a new anonymous buyer and its signed token, and the
// device token to send as X-Device-Id (the one the request carried if it
// was valid; absent when this address asked for too many this minute).
type BuyerSession struct {
	BuyerID     string `json:"buyer_id"`
	BuyerToken  string `json:"buyer_token"`
	DeviceToken string `json:"device_token,omitempty"`
}

func (m *Module) buyerSession(c *gin.Context, _ app.None) (BuyerSession, error) {
	device := m.ensureDevice(c)
	id, token := m.svc.NewBuyerToken(app.TenantOf(c))
	http.SetCookie(c.Writer, &http.Cookie{Name: BuyerCookie, Value: token, Path: "/", MaxAge: 30 * 24 * 3600,
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: c.Request.TLS != nil})
	return BuyerSession{BuyerID: id, BuyerToken: token, DeviceToken: device}, nil
}

// ---- holds

type holdRequest struct {
	Seats    []string `json:"seats"`
	TierID   *string  `json:"tier_id"`
	Quantity int      `json:"quantity"`
	Channel  string   `json:"channel"`
	// PresaleCode is the code of the event's presale, needed before its
	// public on-sale (the calendar's on-sale schedule).
	PresaleCode string `json:"presale_code"`
}

func (m *Module) createHold(c *gin.Context, body holdRequest) (Hold, error) {
	id, err := app.PathUUID(c, "eventId", "event")
	if err != nil {
		return Hold{}, err
	}
	t := app.TenantOf(c)
	buyer := m.buyer(c)
	if m.isStaff(c) && buyer == "" {
		buyer = StaffBuyerPrefix + app.PrincipalOf(c).UserID.String()
	}
	device, err := m.device(c)
	if err != nil {
		return Hold{}, err
	}
	if m.gate != nil {
		if err := m.gate.Check(c.Request.Context(), t, id, buyer, c.GetHeader(QueueHeader)); err != nil {
			return Hold{}, err
		}
	}
	// The device's rate is checked while the request waits in its event's
	// batch queue, not before it: the Redis round trip then adds nothing to
	// the hold's latency (the batch drops a refused request undecided).
	var admit chan error
	if !m.isStaff(c) {
		admit = make(chan error, 1)
		ctx, ip := context.WithoutCancel(c.Request.Context()), c.ClientIP()
		go func() { admit <- m.svc.limits.Allow(ctx, t, "hold", device, ip) }()
	}
	key, err := app.KeyFrom(c, body, buyer, true)
	if err != nil {
		return Hold{}, err
	}
	req := HoldRequest{Key: key, Seats: body.Seats, Quantity: body.Quantity, Channel: body.Channel, BuyerID: buyer, ClientIP: c.ClientIP(), DeviceID: device,
		PresaleCode: body.PresaleCode}
	if admit != nil {
		req.Admit = admit
	}
	if body.TierID != nil {
		tid, err := uuid.Parse(*body.TierID)
		if err != nil {
			return Hold{}, invalid("tier_id", "tier_id must be a UUID")
		}
		req.TierID = &tid
	}
	if err := req.Validate(); err != nil {
		return Hold{}, err
	}
	ev, err := m.svc.Event(c.Request.Context(), t, id)
	if err != nil {
		return Hold{}, err
	}
	if req.Channel != ChannelWeb && !m.app.CanAtVenue(c, ev.VenueID, ObjOrders, policies.Write) {
		return Hold{}, app.Forbidden("forbidden", "only staff may sell on the "+req.Channel+" channel")
	}
	// The hold waits in its event's batch queue, which bounds the work.
	app.Park(c)
	h, err := m.svc.CreateHold(c.Request.Context(), t, ev, req)
	if err == nil {
		c.Header("Location", "/api/v1/holds/"+h.ID.String())
	}
	return h, err
}

func (m *Module) getHold(c *gin.Context, _ app.None) (Hold, error) {
	id, err := app.PathUUID(c, "holdId", "hold")
	if err != nil {
		return Hold{}, err
	}
	h, err := m.svc.Hold(c.Request.Context(), app.TenantOf(c), id)
	if err == nil && h.BuyerID != m.buyer(c) && !m.staffAt(c, h.EventID, ObjOrders, policies.Read) {
		err = app.NotFound("hold")
	}
	return h, err
}

// myHoldsResponse is a buyer's active holds.
type myHoldsResponse struct {
	Holds []Hold `json:"holds"`
}

// myHolds answers GET /holds?mine[&event_id=…]: the requesting buyer's
// active holds (the buyer token names the buyer; nobody lists others').
func (m *Module) myHolds(c *gin.Context, _ app.None) (myHoldsResponse, error) {
	if _, mine := c.GetQuery("mine"); !mine {
		return myHoldsResponse{}, app.Invalid("mine_required", "ask for your own holds: GET /api/v1/holds?mine with X-Buyer-Token")
	}
	buyer := m.buyer(c)
	if buyer == "" {
		return myHoldsResponse{}, app.Invalid("buyer_required", "send X-Buyer-Token (POST /api/v1/buyer-sessions mints one)")
	}
	var event *uuid.UUID
	if raw := c.Query("event_id"); raw != "" {
		id, err := uuid.Parse(raw)
		if err != nil {
			return myHoldsResponse{}, invalid("event_id", "event_id is not an id")
		}
		event = &id
	}
	hs, err := m.svc.BuyerHolds(c.Request.Context(), app.TenantOf(c), buyer, event)
	c.Header("Cache-Control", "no-store")
	return myHoldsResponse{Holds: app.NonNil(hs)}, err
}

func (m *Module) releaseHold(c *gin.Context, _ app.None) (app.None, error) {
	id, err := app.PathUUID(c, "holdId", "hold")
	if err != nil {
		return app.None{}, err
	}
	staff := false
	if m.isStaff(c) {
		h, err := m.svc.Hold(c.Request.Context(), app.TenantOf(c), id)
		if err != nil {
			return app.None{}, err
		}
		ev, err := m.svc.Event(c.Request.Context(), app.TenantOf(c), h.EventID)
		staff = err == nil && m.app.CanAtVenue(c, ev.VenueID, ObjOrders, policies.Write)
	}
	return app.None{}, m.svc.ReleaseHold(c.Request.Context(), app.TenantOf(c), id, m.buyer(c), staff)
}

// ---- orders

type orderRequest struct {
	HoldID string    `json:"hold_id"`
	Buyer  BuyerInfo `json:"buyer"`
	// Captcha answers the check a challenge_required refusal carried.
	Captcha *CaptchaSolution `json:"captcha,omitempty"`
}

// orderView is an order as its buyer sees it.
type orderView struct {
	Order
	OrderURL string   `json:"order_url"`
	Tickets  []Ticket `json:"tickets,omitempty"`
	// ClientSecret is set for the order's buyer while the order can still be
	// paid: Stripe.js needs it to confirm the payment in their browser.
	ClientSecret *string `json:"client_secret,omitempty"`
	// Mail is the order's mail and its delivery status (staff only: box
	// office sees a bounce and can send again).
	Mail []app.QueuedMail `json:"mail,omitempty"`
}

// buyerView is the order as its own buyer sees it, client secret included
// while there is something to pay.
func buyerView(o Order, orderURL string, tickets []Ticket) orderView {
	v := orderView{Order: o, OrderURL: orderURL, Tickets: tickets}
	if o.Status == OrderPending || o.Status == OrderFailed {
		v.ClientSecret = o.ClientSecret
	}
	return v
}

func (m *Module) createOrder(c *gin.Context, req orderRequest) (orderView, error) {
	holdID, err := uuid.Parse(req.HoldID)
	if err != nil {
		return orderView{}, invalid("hold_id", "hold_id must be a UUID")
	}
	buyer := m.buyer(c)
	if buyer == "" && m.isStaff(c) {
		buyer = StaffBuyerPrefix + app.PrincipalOf(c).UserID.String()
	}
	if buyer == "" {
		return orderView{}, app.Invalid("buyer_required", "send X-Buyer-Token (POST /api/v1/buyer-sessions mints one)")
	}
	key, err := app.KeyFrom(c, req, buyer, true)
	if err != nil {
		return orderView{}, err
	}
	t := app.TenantOf(c)
	if !m.isStaff(c) {
		ctx := c.Request.Context()
		device, err := m.device(c)
		if err != nil {
			return orderView{}, err
		}
		if err := m.svc.limits.Allow(ctx, t, "order", device, c.ClientIP()); err != nil {
			return orderView{}, err
		}
		human := false
		if req.Captcha != nil {
			if err := m.svc.limits.SolveCaptcha(ctx, t, buyer, device, *req.Captcha); err != nil {
				return orderView{}, err
			}
			human = true
		}
		check := limits.Checkout{HoldID: holdID, BuyerID: buyer, Email: req.Buyer.Email, IP: c.ClientIP(), DeviceID: device, Human: human}
		if _, err := m.svc.limits.CheckOrder(ctx, t, check); err != nil {
			return orderView{}, err
		}
	}
	o, err := m.svc.CreateOrderOnce(c.Request.Context(), t, holdID, buyer, req.Buyer, key)
	if err != nil {
		return orderView{}, err
	}
	c.Header("Location", "/api/v1/orders/"+o.ID.String())
	return buyerView(o, m.svc.OrderPath(t, o.ID), nil), nil
}

// orderAccess reads the order of the path if the request may see it: a
// valid signed link (?sig=), its buyer, or staff allowed at its venue.
// byBuyer says it was the buyer (link or buyer token), not staff.
func (m *Module) orderAccess(c *gin.Context) (o Order, byBuyer bool, err error) {
	id, err := app.PathUUID(c, "orderId", "order")
	if err != nil {
		return Order{}, false, err
	}
	t := app.TenantOf(c)
	if o, err = m.svc.Order(c.Request.Context(), t, id); err != nil {
		return Order{}, false, err
	}
	if m.svc.OrderLinkOK(t, id, c.Query("sig")) || (o.BuyerID != "" && o.BuyerID == m.buyer(c)) {
		return o, true, nil
	}
	if m.isStaff(c) {
		if ev, err := m.svc.Event(c.Request.Context(), t, o.EventID); err == nil && m.app.CanAtVenue(c, ev.VenueID, ObjOrders, policies.Read) {
			return o, false, nil
		}
	}
	return Order{}, false, app.NotFound("order")
}

func (m *Module) getOrder(c *gin.Context, _ app.None) (orderView, error) {
	o, byBuyer, err := m.orderAccess(c)
	if err != nil {
		return orderView{}, err
	}
	t := app.TenantOf(c)
	tickets, err := m.svc.Tickets(c.Request.Context(), t, o.ID)
	if err != nil {
		return orderView{}, err
	}
	v := orderView{Order: o, OrderURL: m.svc.OrderPath(t, o.ID), Tickets: tickets}
	if byBuyer {
		if tickets, _, err = m.hideGivenAway(c.Request.Context(), t, tickets); err != nil {
			return orderView{}, err
		}
		v = buyerView(o, v.OrderURL, tickets)
	} else if v.Mail, err = m.app.Mail.ByRef(c.Request.Context(), t, o.ID.String()); err != nil {
		return orderView{}, err
	}
	// The answer may carry the client secret: no shared cache keeps it.
	c.Header("Cache-Control", "no-store")
	return v, nil
}

type refundRequest struct {
	Reason string `json:"reason"`
}

func (m *Module) refundOrder(c *gin.Context, req refundRequest) (Order, error) {
	id, err := app.PathUUID(c, "orderId", "order")
	if err != nil {
		return Order{}, err
	}
	t := app.TenantOf(c)
	o, err := m.svc.Order(c.Request.Context(), t, id)
	if err != nil {
		return Order{}, err
	}
	ev, err := m.svc.Event(c.Request.Context(), t, o.EventID)
	if err != nil {
		return Order{}, err
	}
	if !m.app.CanAtVenue(c, ev.VenueID, ObjOrders, policies.Write) {
		return Order{}, app.Forbidden("forbidden", "your roles do not allow refunds at this event's venue")
	}
	return m.svc.RefundOrder(c.Request.Context(), t, id, req.Reason)
}

type refundTicketsRequest struct {
	Tickets []uuid.UUID `json:"tickets"`
	Reason  string      `json:"reason"`
}

// refundTickets refunds some tickets of a paid order; the rest stay valid.
func (m *Module) refundTickets(c *gin.Context, req refundTicketsRequest) (PartialRefund, error) {
	id, err := app.PathUUID(c, "orderId", "order")
	if err != nil {
		return PartialRefund{}, err
	}
	t := app.TenantOf(c)
	o, err := m.svc.Order(c.Request.Context(), t, id)
	if err != nil {
		return PartialRefund{}, err
	}
	ev, err := m.svc.Event(c.Request.Context(), t, o.EventID)
	if err != nil {
		return PartialRefund{}, err
	}
	if !m.app.CanAtVenue(c, ev.VenueID, ObjOrders, policies.Write) {
		return PartialRefund{}, app.Forbidden("forbidden", "your roles do not allow refunds at this event's venue")
	}
	return m.svc.RefundTickets(c.Request.Context(), t, id, req.Tickets, req.Reason)
}

// ---- Stripe

// StripeEvent is the part of a Stripe event delivery the webhook reads (the
// signature covers the raw body, so the handler reads it as bytes).
type StripeEvent struct {
	ID   string `json:"id"`
	Type string `json:"type"`
	Data struct {
		Object struct {
			ID       string            `json:"id"`
			Object   string            `json:"object"`
			Amount   int64             `json:"amount"`
			Currency string            `json:"currency"`
			Metadata map[string]string `json:"metadata"`
		} `json:"object"`
	} `json:"data"`
}

// maxWebhookBody bounds a Stripe event delivery.
const maxWebhookBody = 256 << 10

// PlatformWebhookPath is the platform's one Stripe webhook endpoint, on the
// base host: the URL to configure in Stripe's dashboard.
const PlatformWebhookPath = "/webhooks/stripe"

// deprecationNoticeEvery bounds the warnings about a chain still receiving
// webhooks on its own host.
const deprecationNoticeEvery = time.Hour

// stripeWebhook is the per-chain endpoint, kept for one release after the
// platform endpoint replaced it: it still settles, and says where to go.
func (m *Module) stripeWebhook(c *gin.Context) {
	t := app.TenantOf(c)
	c.Header("Deprecation", "true")
	c.Header("Link", "<https://"+m.app.Config.BaseDomain+PlatformWebhookPath+`>; rel="successor-version"`)
	m.noteDeprecatedWebhook(c.Request.Context(), t)
	payload, ok := readWebhookBody(c)
	if !ok {
		return
	}
	res, err := m.svc.HandleWebhook(c.Request.Context(), t, payload, c.GetHeader("Stripe-Signature"))
	if err != nil {
		app.Fail(c, err)
		return
	}
	c.JSON(http.StatusOK, res)
}

// noteDeprecatedWebhook warns that a chain's Stripe account still delivers to
// the per-chain route, at most once per chain per hour across instances (a
// Redis key claims the hour; without Redis, no warning rather than a flood).
func (m *Module) noteDeprecatedWebhook(ctx context.Context, t tenants.Tenant) {
	key := m.app.RedisKey("inv", "webhook-deprecated", t.Slug)
	if first, err := m.app.Redis.SetNX(ctx, key, 1, deprecationNoticeEvery).Result(); err != nil || !first {
		return
	}
	m.app.Log.Warn("stripe: webhook delivered to a chain's host; configure the platform endpoint in Stripe instead",
		"tenant", t.Slug, "successor", "https://"+m.app.Config.BaseDomain+PlatformWebhookPath)
}

// platformStripeWebhook is the platform's one Stripe endpoint: every chain's
// payments arrive here and are routed by the metadata the platform set.
func (m *Module) platformStripeWebhook(c *gin.Context) {
	payload, ok := readWebhookBody(c)
	if !ok {
		return
	}
	res, err := m.svc.HandlePlatformWebhook(c.Request.Context(), payload, c.GetHeader("Stripe-Signature"))
	if err != nil {
		app.Fail(c, err)
		return
	}
	c.JSON(http.StatusOK, res)
}

func readWebhookBody(c *gin.Context) ([]byte, bool) {
	payload, err := io.ReadAll(io.LimitReader(c.Request.Body, maxWebhookBody+1))
	if err != nil || len(payload) > maxWebhookBody {
		app.Fail(c, app.PayloadTooLarge("event too large"))
		return nil, false
	}
	return payload, true
}

type testPayRequest struct {
	Outcome string `json:"outcome"` // "succeeded" (default) or "failed"
}

// testPay is the storefront's "Pay (test mode)" step, for demos and tests
// only: it confirms the PaymentIntent at Stripe's test API (stripe-mock
// locally), then builds the event Stripe would send, signs it with the
// webhook secret, and hands it to the platform endpoint's verifying path. It does
// is registered only in development mode with a test-mode key.
// TestPayment is what the test-mode pay step did.
type TestPayment struct {
	TestMode bool          `json:"test_mode"`
	Result   WebhookResult `json:"result"`
	OrderURL string        `json:"order_url"`
}

func (m *Module) testPay(c *gin.Context, req testPayRequest) (TestPayment, error) {
	o, _, err := m.orderAccess(c)
	if err != nil {
		return TestPayment{}, err
	}
	if req.Outcome == "" {
		req.Outcome = "succeeded"
	}
	if req.Outcome != "succeeded" && req.Outcome != "failed" {
		return TestPayment{}, invalid("outcome", "outcome is succeeded or failed")
	}
	if o.PaymentIntentID == nil {
		return TestPayment{}, app.Conflict("no_payment_intent", "this order has nothing to pay")
	}
	t := app.TenantOf(c)
	if req.Outcome == "succeeded" {
		if err := m.svc.orders.ConfirmTestPayment(c.Request.Context(), *o.PaymentIntentID); err != nil {
			return TestPayment{}, app.Upstream("payment_provider_unavailable", 0, "test payment not confirmed: %s", orders.StripeErrorSummary(err))
		}
	}
	payload, header, err := TestWebhookEvent(m.app.Config.StripeWebhookSecret, "evt_test_"+strings.ReplaceAll(uuid.NewString(), "-", ""),
		"payment_intent."+map[string]string{"succeeded": "succeeded", "failed": "payment_failed"}[req.Outcome],
		*o.PaymentIntentID, o.AmountMinor, o.Currency, t.Slug, o.ID)
	if err != nil {
		return TestPayment{}, err
	}
	// Delivered as Stripe would: to the platform's endpoint, routed by the
	// metadata and checked against this chain's order.
	res, err := m.svc.HandlePlatformWebhook(c.Request.Context(), payload, header)
	return TestPayment{TestMode: true, Result: res, OrderURL: m.svc.OrderPath(t, o.ID)}, err
}

// TestWebhookEvent builds and signs a Stripe PaymentIntent event the way
// Stripe would deliver it (for tests and the test-mode pay step).
func TestWebhookEvent(secret, eventID, eventType, paymentIntentID string, amount int64, currency, tenant string, orderID uuid.UUID) ([]byte, string, error) {
	status, card := "succeeded", any("pm_card_visa") // Stripe's test card: stripe-mock answers its PaymentMethod
	if eventType == "payment_intent.payment_failed" {
		status, card = "requires_payment_method", nil
	}
	evt := map[string]any{
		"id": eventID, "object": "event", "api_version": stripe.APIVersion, "created": time.Now().Unix(), "type": eventType,
		"livemode": false, "pending_webhooks": 1,
		"data": map[string]any{"object": map[string]any{
			"id": paymentIntentID, "object": "payment_intent", "amount": amount, "amount_received": amount,
			"currency": strings.ToLower(currency), "status": status, "payment_method": card,
			"metadata": map[string]string{"tenant": tenant, "order_id": orderID.String()},
		}},
	}
	payload, err := json.Marshal(evt)
	if err != nil {
		return nil, "", err
	}
	signed := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: payload, Secret: secret, Timestamp: time.Now()})
	return signed.Payload, signed.Header, nil
}
