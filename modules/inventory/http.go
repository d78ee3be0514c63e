package inventory

import (
	"context"
	"encoding/base64"
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
	"marquee/modules/inventory/internal/orders"
	"marquee/modules/inventory/internal/stock"
	"marquee/policies"
	"marquee/tenants"
)

// Handlers read top to bottom: decode and validate, call the service,
// respond. Domain failures are *app.Error values passed to app.Fail.

// BuyerCookie carries the signed anonymous buyer token on the storefront.
const (
	BuyerCookie = "marquee_buyer"
	BuyerHeader = "X-Buyer-Token"
	QueueHeader = "X-Queue-Token"
)

// event reads the event of the path; staff routes then check the venue.
func (m *Module) event(c *gin.Context) (app.EventInfo, bool) {
	id, ok := app.PathID(c, "eventId", "event")
	if !ok {
		return app.EventInfo{}, false
	}
	ev, err := m.svc.Event(c.Request.Context(), app.TenantOf(c), id)
	if err != nil {
		app.Fail(c, err)
		return app.EventInfo{}, false
	}
	return ev, true
}

// staffEvent reads the event of the path and requires a permission at its
// venue (chain roles hold it at every venue).
func (m *Module) staffEvent(c *gin.Context, object, action string) (app.EventInfo, bool) {
	ev, ok := m.event(c)
	if !ok {
		return ev, false
	}
	if !m.app.CanAtVenue(c, ev.VenueID, object, action) {
		app.Fail(c, app.Forbidden("forbidden", "your roles do not allow "+action+" on "+object+" at this event's venue"))
		return ev, false
	}
	return ev, true
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

func (m *Module) catalogue(c *gin.Context) {
	f, err := catalogueFilter(c)
	if err != nil {
		app.Fail(c, err)
		return
	}
	items, err := m.svc.Catalogue(c.Request.Context(), app.TenantOf(c), f)
	if err != nil {
		app.Fail(c, err)
		return
	}
	out := gin.H{"items": app.NonNil(items)}
	if len(items) == f.Limit && f.Limit > 0 {
		out["next"] = items[len(items)-1].ID
	}
	c.JSON(http.StatusOK, out)
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
func (m *Module) respondInventory(c *gin.Context, eventID uuid.UUID) {
	inv, err := m.svc.Inventory(c.Request.Context(), app.TenantOf(c), eventID)
	if err != nil {
		app.Fail(c, err)
		return
	}
	c.JSON(http.StatusOK, inv)
}

func (m *Module) getInventory(c *gin.Context) {
	ev, ok := m.staffEvent(c, ObjInventory, policies.Read)
	if !ok {
		return
	}
	m.respondInventory(c, ev.ID)
}

func (m *Module) putInventory(c *gin.Context) {
	ev, ok := m.staffEvent(c, ObjInventory, policies.Write)
	if !ok {
		return
	}
	var in Setup
	if err := app.DecodeJSON(c, &in); err != nil {
		app.Fail(c, err)
		return
	}
	if err := m.svc.Configure(c.Request.Context(), app.TenantOf(c), ev, in); err != nil {
		app.Fail(c, err)
		return
	}
	m.respondInventory(c, ev.ID)
}

func (m *Module) putQuotas(c *gin.Context) {
	ev, ok := m.staffEvent(c, ObjInventory, policies.Write)
	if !ok {
		return
	}
	var in map[string]int
	if err := app.DecodeJSON(c, &in); err != nil {
		app.Fail(c, err)
		return
	}
	if err := m.svc.SetQuotas(c.Request.Context(), app.TenantOf(c), ev.ID, in); err != nil {
		app.Fail(c, err)
		return
	}
	m.respondInventory(c, ev.ID)
}

func (m *Module) patchSettings(c *gin.Context) {
	ev, ok := m.staffEvent(c, ObjInventory, policies.Write)
	if !ok {
		return
	}
	var in SettingsPatch
	if err := app.DecodeJSON(c, &in); err != nil {
		app.Fail(c, err)
		return
	}
	st, err := m.svc.UpdateSettings(c.Request.Context(), app.TenantOf(c), ev.ID, in)
	if err != nil {
		app.Fail(c, err)
		return
	}
	c.JSON(http.StatusOK, st)
}

// ---- public reads

func (m *Module) seatmap(c *gin.Context) {
	ev, ok := m.event(c)
	if !ok {
		return
	}
	sm, err := m.svc.SeatMap(c.Request.Context(), app.TenantOf(c), ev.ID)
	if err != nil {
		app.Fail(c, err)
		return
	}
	c.Header("Cache-Control", "public, max-age=60")
	c.JSON(http.StatusOK, sm)
}

func (m *Module) availability(c *gin.Context) {
	ev, ok := m.event(c)
	if !ok {
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

func (m *Module) stream(c *gin.Context) {
	ev, ok := m.event(c)
	if !ok {
		return
	}
	m.app.Realtime.ServeSSE(c, stock.Topic(ev.ID))
}

func (m *Module) publicKey(c *gin.Context) {
	ev, ok := m.event(c)
	if !ok {
		return
	}
	pub, err := m.svc.PublicKey(c.Request.Context(), app.TenantOf(c))
	if err != nil {
		app.Fail(c, err)
		return
	}
	c.Header("Content-Disposition", `attachment; filename="ticket-key-`+ev.ID.String()+`.json"`)
	c.JSON(http.StatusOK, gin.H{
		"algorithm":  "Ed25519",
		"public_key": base64.RawURLEncoding.EncodeToString(pub),
		"event_id":   ev.ID,
		"tenant":     app.TenantOf(c).Slug,
		"token":      "base64url(JSON claims) '.' base64url(Ed25519 signature over the claims bytes)",
	})
}

func (m *Module) buyerSession(c *gin.Context) {
	t := app.TenantOf(c)
	id, token := m.svc.NewBuyerToken(t)
	http.SetCookie(c.Writer, &http.Cookie{Name: BuyerCookie, Value: token, Path: "/", MaxAge: 30 * 24 * 3600,
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: c.Request.TLS != nil})
	c.JSON(http.StatusCreated, gin.H{"buyer_id": id, "buyer_token": token})
}

// ---- holds

type holdRequest struct {
	Seats    []string `json:"seats"`
	TierID   *string  `json:"tier_id"`
	Quantity int      `json:"quantity"`
	Channel  string   `json:"channel"`
}

func (m *Module) createHold(c *gin.Context) {
	id, ok := app.PathID(c, "eventId", "event")
	if !ok {
		return
	}
	t := app.TenantOf(c)
	buyer := m.buyer(c)
	if m.isStaff(c) && buyer == "" {
		buyer = "staff:" + app.PrincipalOf(c).UserID.String()
	}
	if m.gate != nil {
		if err := m.gate.Check(c.Request.Context(), t, id, buyer, c.GetHeader(QueueHeader)); err != nil {
			app.Fail(c, err)
			return
		}
	}
	var body holdRequest
	if err := app.DecodeJSON(c, &body); err != nil {
		app.Fail(c, err)
		return
	}
	key, err := app.KeyFrom(c, body, buyer, true)
	if err != nil {
		app.Fail(c, err)
		return
	}
	req := HoldRequest{Key: key, Seats: body.Seats, Quantity: body.Quantity, Channel: body.Channel, BuyerID: buyer, ClientIP: c.ClientIP()}
	if body.TierID != nil {
		tid, err := uuid.Parse(*body.TierID)
		if err != nil {
			app.Fail(c, invalid("tier_id", "tier_id must be a UUID"))
			return
		}
		req.TierID = &tid
	}
	if err := req.Validate(); err != nil {
		app.Fail(c, err)
		return
	}
	ev, err := m.svc.Event(c.Request.Context(), t, id)
	if err != nil {
		app.Fail(c, err)
		return
	}
	if req.Channel != ChannelWeb && !m.app.CanAtVenue(c, ev.VenueID, ObjOrders, policies.Write) {
		app.Fail(c, app.Forbidden("forbidden", "only staff may sell on the "+req.Channel+" channel"))
		return
	}
	// The hold waits in its event's batch queue, which bounds the work.
	app.Park(c)
	h, err := m.svc.CreateHold(c.Request.Context(), t, ev, req)
	if err != nil {
		app.Fail(c, err)
		return
	}
	c.Header("Location", "/api/v1/holds/"+h.ID.String())
	c.JSON(http.StatusCreated, h)
}

func (m *Module) getHold(c *gin.Context) {
	id, ok := app.PathID(c, "holdId", "hold")
	if !ok {
		return
	}
	h, err := m.svc.Hold(c.Request.Context(), app.TenantOf(c), id)
	if err == nil && h.BuyerID != m.buyer(c) && !m.staffAt(c, h.EventID, ObjOrders, policies.Read) {
		err = app.NotFound("hold")
	}
	if err != nil {
		app.Fail(c, err)
		return
	}
	c.JSON(http.StatusOK, h)
}

// myHoldsResponse is a buyer's active holds.
type myHoldsResponse struct {
	Holds []Hold `json:"holds"`
}

// myHolds answers GET /holds?mine[&event_id=…]: the requesting buyer's
// active holds (the buyer token names the buyer; nobody lists others').
func (m *Module) myHolds(c *gin.Context) {
	if _, mine := c.GetQuery("mine"); !mine {
		app.Fail(c, app.Invalid("mine_required", "ask for your own holds: GET /api/v1/holds?mine with X-Buyer-Token"))
		return
	}
	buyer := m.buyer(c)
	if buyer == "" {
		app.Fail(c, app.Invalid("buyer_required", "send X-Buyer-Token (POST /api/v1/buyer-sessions mints one)"))
		return
	}
	var event *uuid.UUID
	if raw := c.Query("event_id"); raw != "" {
		id, err := uuid.Parse(raw)
		if err != nil {
			app.Fail(c, invalid("event_id", "event_id is not an id"))
			return
		}
		event = &id
	}
	hs, err := m.svc.BuyerHolds(c.Request.Context(), app.TenantOf(c), buyer, event)
	if err != nil {
		app.Fail(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, myHoldsResponse{Holds: hs})
}

func (m *Module) releaseHold(c *gin.Context) {
	id, ok := app.PathID(c, "holdId", "hold")
	if !ok {
		return
	}
	staff := false
	if m.isStaff(c) {
		h, err := m.svc.Hold(c.Request.Context(), app.TenantOf(c), id)
		if err != nil {
			app.Fail(c, err)
			return
		}
		ev, err := m.svc.Event(c.Request.Context(), app.TenantOf(c), h.EventID)
		staff = err == nil && m.app.CanAtVenue(c, ev.VenueID, ObjOrders, policies.Write)
	}
	if err := m.svc.ReleaseHold(c.Request.Context(), app.TenantOf(c), id, m.buyer(c), staff); err != nil {
		app.Fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// ---- orders

type orderRequest struct {
	HoldID string    `json:"hold_id"`
	Buyer  BuyerInfo `json:"buyer"`
}

// orderView is an order as its buyer sees it.
type orderView struct {
	Order
	OrderURL string   `json:"order_url"`
	Tickets  []Ticket `json:"tickets,omitempty"`
	// ClientSecret is set for the order's buyer while the order can still be
	// paid: Stripe.js needs it to confirm the payment in their browser.
	ClientSecret *string `json:"client_secret,omitempty"`
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

func (m *Module) createOrder(c *gin.Context) {
	var req orderRequest
	if err := app.DecodeJSON(c, &req); err != nil {
		app.Fail(c, err)
		return
	}
	holdID, err := uuid.Parse(req.HoldID)
	if err != nil {
		app.Fail(c, invalid("hold_id", "hold_id must be a UUID"))
		return
	}
	buyer := m.buyer(c)
	if buyer == "" && m.isStaff(c) {
		buyer = "staff:" + app.PrincipalOf(c).UserID.String()
	}
	if buyer == "" {
		app.Fail(c, app.Invalid("buyer_required", "send X-Buyer-Token (POST /api/v1/buyer-sessions mints one)"))
		return
	}
	key, err := app.KeyFrom(c, req, buyer, true)
	if err != nil {
		app.Fail(c, err)
		return
	}
	t := app.TenantOf(c)
	o, err := m.svc.CreateOrderOnce(c.Request.Context(), t, holdID, buyer, req.Buyer, key)
	if err != nil {
		app.Fail(c, err)
		return
	}
	c.Header("Location", "/api/v1/orders/"+o.ID.String())
	c.JSON(http.StatusCreated, buyerView(o, m.svc.OrderPath(t, o.ID), nil))
}

// orderAccess reads the order of the path if the request may see it: a
// valid signed link (?sig=), its buyer, or staff allowed at its venue.
// byBuyer says it was the buyer (link or buyer token), not staff.
func (m *Module) orderAccess(c *gin.Context) (o Order, byBuyer, ok bool) {
	id, ok := app.PathID(c, "orderId", "order")
	if !ok {
		return Order{}, false, false
	}
	t := app.TenantOf(c)
	o, err := m.svc.Order(c.Request.Context(), t, id)
	if err != nil {
		app.Fail(c, err)
		return Order{}, false, false
	}
	if m.svc.OrderLinkOK(t, id, c.Query("sig")) || (o.BuyerID != "" && o.BuyerID == m.buyer(c)) {
		return o, true, true
	}
	if m.isStaff(c) {
		if ev, err := m.svc.Event(c.Request.Context(), t, o.EventID); err == nil && m.app.CanAtVenue(c, ev.VenueID, ObjOrders, policies.Read) {
			return o, false, true
		}
	}
	app.Fail(c, app.NotFound("order"))
	return Order{}, false, false
}

func (m *Module) getOrder(c *gin.Context) {
	o, byBuyer, ok := m.orderAccess(c)
	if !ok {
		return
	}
	t := app.TenantOf(c)
	tickets, err := m.svc.Tickets(c.Request.Context(), t, o.ID)
	if err != nil {
		app.Fail(c, err)
		return
	}
	v := orderView{Order: o, OrderURL: m.svc.OrderPath(t, o.ID), Tickets: tickets}
	if byBuyer {
		v = buyerView(o, v.OrderURL, tickets)
	}
	// The answer may carry the client secret: no shared cache keeps it.
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, v)
}

type refundRequest struct {
	Reason string `json:"reason"`
}

func (m *Module) refundOrder(c *gin.Context) {
	id, ok := app.PathID(c, "orderId", "order")
	if !ok {
		return
	}
	var req refundRequest
	if c.Request.ContentLength != 0 {
		if err := app.DecodeJSON(c, &req); err != nil {
			app.Fail(c, err)
			return
		}
	}
	t := app.TenantOf(c)
	o, err := m.svc.Order(c.Request.Context(), t, id)
	if err != nil {
		app.Fail(c, err)
		return
	}
	ev, err := m.svc.Event(c.Request.Context(), t, o.EventID)
	if err != nil {
		app.Fail(c, err)
		return
	}
	if !m.app.CanAtVenue(c, ev.VenueID, ObjOrders, policies.Write) {
		app.Fail(c, app.Forbidden("forbidden", "your roles do not allow refunds at this event's venue"))
		return
	}
	o, err = m.svc.RefundOrder(c.Request.Context(), t, id, req.Reason)
	if err != nil {
		app.Fail(c, err)
		return
	}
	c.JSON(http.StatusOK, o)
}

// ---- Stripe

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
func (m *Module) testPay(c *gin.Context) {
	o, _, ok := m.orderAccess(c)
	if !ok {
		return
	}
	var req testPayRequest
	if c.Request.ContentLength != 0 {
		if err := app.DecodeJSON(c, &req); err != nil {
			app.Fail(c, err)
			return
		}
	}
	if req.Outcome == "" {
		req.Outcome = "succeeded"
	}
	if req.Outcome != "succeeded" && req.Outcome != "failed" {
		app.Fail(c, invalid("outcome", "outcome is succeeded or failed"))
		return
	}
	if o.PaymentIntentID == nil {
		app.Fail(c, app.Conflict("no_payment_intent", "this order has nothing to pay"))
		return
	}
	t := app.TenantOf(c)
	if req.Outcome == "succeeded" {
		if err := m.svc.orders.ConfirmTestPayment(c.Request.Context(), *o.PaymentIntentID); err != nil {
			app.Fail(c, app.Upstream("payment_provider_unavailable", 0, "test payment not confirmed: %s", orders.StripeErrorSummary(err)))
			return
		}
	}
	payload, header, err := TestWebhookEvent(m.app.Config.StripeWebhookSecret, "evt_test_"+strings.ReplaceAll(uuid.NewString(), "-", ""),
		"payment_intent."+map[string]string{"succeeded": "succeeded", "failed": "payment_failed"}[req.Outcome],
		*o.PaymentIntentID, o.AmountMinor, o.Currency, t.Slug, o.ID)
	if err != nil {
		app.Fail(c, err)
		return
	}
	// Delivered as Stripe would: to the platform's endpoint, routed by the
	// metadata and checked against this chain's order.
	res, err := m.svc.HandlePlatformWebhook(c.Request.Context(), payload, header)
	if err != nil {
		app.Fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"test_mode": true, "result": res, "order_url": m.svc.OrderPath(t, o.ID)})
}

// TestWebhookEvent builds and signs a Stripe PaymentIntent event the way
// Stripe would deliver it (for tests and the test-mode pay step).
func TestWebhookEvent(secret, eventID, eventType, paymentIntentID string, amount int64, currency, tenant string, orderID uuid.UUID) ([]byte, string, error) {
	status := "succeeded"
	if eventType == "payment_intent.payment_failed" {
		status = "requires_payment_method"
	}
	evt := map[string]any{
		"id": eventID, "object": "event", "api_version": stripe.APIVersion, "created": time.Now().Unix(), "type": eventType,
		"livemode": false, "pending_webhooks": 1,
		"data": map[string]any{"object": map[string]any{
			"id": paymentIntentID, "object": "payment_intent", "amount": amount, "amount_received": amount,
			"currency": strings.ToLower(currency), "status": status,
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
