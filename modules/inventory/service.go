package inventory

import (
	"context"
	"crypto/ed25519"
	"time"

	"gorm.io/gorm"

	"github.com/google/uuid"

	"marquee/app"
	"marquee/modules/inventory/internal/buyers"
	"marquee/modules/inventory/internal/catalogue"
	"marquee/modules/inventory/internal/delivery"
	"marquee/modules/inventory/internal/deps"
	"marquee/modules/inventory/internal/door"
	"marquee/modules/inventory/internal/holds"
	"marquee/modules/inventory/internal/limits"
	"marquee/modules/inventory/internal/orders"
	"marquee/modules/inventory/internal/pricing"
	"marquee/modules/inventory/internal/resale"
	"marquee/modules/inventory/internal/stock"
	"marquee/modules/inventory/internal/tickets"
	"marquee/modules/inventory/internal/transfer"
	"marquee/modules/inventory/internal/waitlist"
	"marquee/tenants"
)

// Service is the inventory's one door for its handlers, jobs, seed and
// tests (and the waiting room and bench, which hold the module): each
// method hands the call to the room that owns it (internal/…). The rooms
// share one *deps.Deps.
type Service struct {
	d         *deps.Deps
	stock     *stock.Service
	catalogue *catalogue.Service
	holds     *holds.Service
	orders    *orders.Service
	tickets   *tickets.Service
	buyers    *buyers.Signer
	door      *door.Service
	transfer  *transfer.Service
	resale    *resale.Service
	waitlist  *waitlist.Service
	links     transfer.Links
	delivery  *delivery.Service
	limits    *limits.Service
	pricing   *pricing.Service
}

// NewService builds the inventory's rooms on the core.
func NewService(a *app.Core) *Service {
	d := deps.New(a)
	st := stock.New(d)
	cat := catalogue.New(d, st)
	tk := tickets.New(d)
	by := buyers.New(a.Config.SecretKey)
	pr := pricing.New(d)
	pr.Event = cat.Event
	pr.Changed = func(ctx context.Context, t tenants.Tenant, eventID uuid.UUID) {
		st.Changed(ctx, t, eventID, nil) // cached availability carries prices
		a.OffersChanged(ctx, t, eventID)
	}
	s := &Service{d: d, stock: st, catalogue: cat, holds: holds.New(d, st, cat), orders: orders.New(d, st, cat, tk, by), tickets: tk, buyers: by,
		door: door.New(d, tk), transfer: transfer.New(d, tk), resale: resale.New(d, tk), waitlist: waitlist.New(d, st), links: transfer.NewLinks(a),
		delivery: delivery.New(d, nil, nil, by), limits: limits.New(d), pricing: pr}
	s.orders.SetResale(s.resale)
	s.orders.SetCardLimiter(s.limits)
	s.resale.Kick = func(ctx context.Context, t tenants.Tenant, _ uuid.UUID) { s.KickWaitlist(ctx, t) }
	s.waitlist.Link = s.WaitlistPath
	return s
}

// setGate notes the admission gate's way to free a done buyer's place.
func (s *Service) setGate(g AdmissionGate) {
	s.d.SetGate(g)
	s.pricing.Queue, _ = g.(pricing.QueueMeter) // the queue's length is a demand signal
}

// ---- catalogue

// Event returns the calendar's facts about an event, briefly cached.
func (s *Service) Event(ctx context.Context, t tenants.Tenant, id uuid.UUID) (app.EventInfo, error) {
	return s.catalogue.Event(ctx, t, id)
}

// Catalogue lists events with this module's prices and availability.
func (s *Service) Catalogue(ctx context.Context, t tenants.Tenant, f app.EventFilter) ([]CatalogueItem, error) {
	return s.catalogue.Catalogue(ctx, t, f)
}

// Configure replaces an event's whole inventory (before anything is held).
func (s *Service) Configure(ctx context.Context, t tenants.Tenant, ev app.EventInfo, in Setup) error {
	err := s.catalogue.Configure(ctx, t, ev, in)
	if err == nil {
		s.d.App.QuotasChanged(ctx, t, ev.ID) // the setup carries the quotas
	}
	return err
}

// SetQuotas sets an event's channel quotas.
func (s *Service) SetQuotas(ctx context.Context, t tenants.Tenant, eventID uuid.UUID, quotas map[string]int) error {
	err := s.catalogue.SetQuotas(ctx, t, eventID, quotas)
	if err == nil {
		// Outside channels hear of it (their allocation is pushed).
		s.d.App.QuotasChanged(ctx, t, eventID)
	}
	return err
}

// UpdateSettings changes an event's hold duration and limits.
func (s *Service) UpdateSettings(ctx context.Context, t tenants.Tenant, eventID uuid.UUID, p SettingsPatch) (Settings, error) {
	return s.catalogue.UpdateSettings(ctx, t, eventID, p)
}

// Inventory reads an event's configuration and counts.
func (s *Service) Inventory(ctx context.Context, t tenants.Tenant, eventID uuid.UUID) (Inventory, error) {
	return s.catalogue.Inventory(ctx, t, eventID)
}

// SeatMap reads the layout of an event.
func (s *Service) SeatMap(ctx context.Context, t tenants.Tenant, eventID uuid.UUID) (SeatMap, error) {
	return s.catalogue.SeatMap(ctx, t, eventID)
}

// ---- stock

// Availability reads the event's availability from the database.
func (s *Service) Availability(ctx context.Context, t tenants.Tenant, eventID uuid.UUID) (Availability, error) {
	return s.stock.Availability(ctx, t, eventID)
}

// AvailabilityJSON returns the event's availability document, cached.
func (s *Service) AvailabilityJSON(ctx context.Context, t tenants.Tenant, eventID uuid.UUID, bitmap bool) ([]byte, error) {
	return s.stock.AvailabilityJSON(ctx, t, eventID, bitmap)
}

// ---- holds

// CreateHold holds seats (all or none) or GA units for a buyer.
func (s *Service) CreateHold(ctx context.Context, t tenants.Tenant, ev app.EventInfo, req HoldRequest) (Hold, error) {
	began := time.Now()
	h, err := s.holds.CreateHold(ctx, t, ev, req)
	s.d.Observe(t, ev.ID, "hold", began, err)
	return h, err
}

// Hold reads a hold with its lines.
func (s *Service) Hold(ctx context.Context, t tenants.Tenant, id uuid.UUID) (Hold, error) {
	return s.holds.Hold(ctx, t, id)
}

// BuyerHolds lists a buyer's active holds, newest first.
func (s *Service) BuyerHolds(ctx context.Context, t tenants.Tenant, buyerID string, eventID *uuid.UUID) ([]Hold, error) {
	return s.holds.BuyerHolds(ctx, t, buyerID, eventID)
}

// ReleaseHold gives a hold's seats and units back.
func (s *Service) ReleaseHold(ctx context.Context, t tenants.Tenant, id uuid.UUID, buyerID string, asStaff bool) error {
	err := s.holds.ReleaseHold(ctx, t, id, buyerID, asStaff)
	if err == nil {
		s.KickWaitlist(ctx, t) // the units may be owed to a waiting list
	}
	return err
}

// ExpireHold expires a hold whose time is up (*NotDueError before).
func (s *Service) ExpireHold(ctx context.Context, t tenants.Tenant, id uuid.UUID) (bool, error) {
	return s.holds.ExpireHold(ctx, t, id)
}

// SweepHolds expires every lapsed hold of a tenant; it returns how many.
func (s *Service) SweepHolds(ctx context.Context, t tenants.Tenant, limit int) (int, error) {
	return s.holds.SweepHolds(ctx, t, limit)
}

// AddToHold adds seats and GA units to a buyer's active hold, all or none.
func (s *Service) AddToHold(ctx context.Context, t tenants.Tenant, holdID uuid.UUID, req AddItemsRequest) (Hold, error) {
	return s.holds.AddToHold(ctx, t, holdID, req)
}

// RemoveSeat takes one seat out of a buyer's active hold.
func (s *Service) RemoveSeat(ctx context.Context, t tenants.Tenant, holdID uuid.UUID, seatID, buyerID string) (Hold, error) {
	return s.holds.RemoveSeat(ctx, t, holdID, seatID, buyerID)
}

// ---- orders

// CreateOrderOnce turns a buyer's live hold into a pending order with a
// PaymentIntent, under the request's Idempotency-Key.
func (s *Service) CreateOrderOnce(ctx context.Context, t tenants.Tenant, holdID uuid.UUID, buyerID string, b BuyerInfo, key *app.IdempotencyKey) (Order, error) {
	began := time.Now()
	o, err := s.orders.CreateOrderOnce(ctx, t, holdID, buyerID, b, key)
	s.d.Observe(t, o.EventID, "order", began, err) // a failed order names no event: only its time is lost
	return o, err
}

// CreateOrderWithoutPayment creates a pending order without a PaymentIntent
// (demo seeding and box-office cash sales).
func (s *Service) CreateOrderWithoutPayment(ctx context.Context, t tenants.Tenant, holdID uuid.UUID, buyerID string, b BuyerInfo) (Order, error) {
	return s.orders.CreateOrderWithoutPayment(ctx, t, holdID, buyerID, b)
}

// Order reads an order.
func (s *Service) Order(ctx context.Context, t tenants.Tenant, id uuid.UUID) (Order, error) {
	return s.orders.Order(ctx, t, id)
}

// SearchOrders lists an event's orders for the portal, newest first.
func (s *Service) SearchOrders(ctx context.Context, t tenants.Tenant, f orders.OrderSearch) ([]Order, error) {
	return s.orders.Search(ctx, t, f)
}

// Tickets lists an order's tickets.
func (s *Service) Tickets(ctx context.Context, t tenants.Tenant, orderID uuid.UUID) ([]Ticket, error) {
	return s.orders.Tickets(ctx, t, orderID)
}

// SalesByTier is what the event's tiers sold (app.TicketFacts).
func (s *Service) SalesByTier(ctx context.Context, t tenants.Tenant, eventID uuid.UUID) ([]app.TierSales, error) {
	return s.tickets.SalesByTier(ctx, t, eventID)
}

// RefundOrder refunds a paid order.
func (s *Service) RefundOrder(ctx context.Context, t tenants.Tenant, orderID uuid.UUID, reason string) (Order, error) {
	o, err := s.orders.RefundOrder(ctx, t, orderID, reason)
	if err == nil {
		s.KickWaitlist(ctx, t) // the refunded units may be owed to a waiting list
	}
	return o, err
}

// RefundTickets refunds some tickets of a paid order.
func (s *Service) RefundTickets(ctx context.Context, t tenants.Tenant, orderID uuid.UUID, ticketIDs []uuid.UUID, reason string) (PartialRefund, error) {
	r, err := s.orders.RefundTickets(ctx, t, orderID, ticketIDs, reason)
	if err == nil {
		s.KickWaitlist(ctx, t) // the refunded units may be owed to a waiting list
	}
	return r, err
}

// PartialRefunds lists an order's refunds of single tickets, oldest first.
func (s *Service) PartialRefunds(ctx context.Context, t tenants.Tenant, orderID uuid.UUID) ([]PartialRefund, error) {
	return s.orders.PartialRefunds(ctx, t, orderID)
}

// HandleWebhook settles a Stripe webhook delivered to a chain's own host.
func (s *Service) HandleWebhook(ctx context.Context, t tenants.Tenant, payload []byte, signature string) (WebhookResult, error) {
	return s.orders.HandleWebhook(ctx, t, payload, signature)
}

// HandlePlatformWebhook settles a Stripe webhook delivered to the platform.
func (s *Service) HandlePlatformWebhook(ctx context.Context, payload []byte, signature string) (WebhookResult, error) {
	return s.orders.HandlePlatformWebhook(ctx, payload, signature)
}

// PaymentSucceeded marks an order paid, sells its hold and issues its tickets.
func (s *Service) PaymentSucceeded(ctx context.Context, t tenants.Tenant, stripeEventID, paymentIntentID string, amount int64, currency string, orderID uuid.UUID) (WebhookResult, error) {
	return s.orders.PaymentSucceeded(ctx, t, stripeEventID, paymentIntentID, amount, currency, orderID)
}

// SendRefund sends an order's recorded refund to Stripe if it was not sent.
func (s *Service) SendRefund(ctx context.Context, t tenants.Tenant, orderID uuid.UUID) error {
	return s.orders.SendRefund(ctx, t, orderID)
}

// SendReviewRefund refunds a payment under review unless done.
func (s *Service) SendReviewRefund(ctx context.Context, t tenants.Tenant, paymentIntentID string) error {
	return s.orders.SendReviewRefund(ctx, t, paymentIntentID)
}

// ResumeCancellations queues the job of every cancellation not done yet.
func (s *Service) ResumeCancellations(ctx context.Context, t tenants.Tenant) (int, error) {
	return s.orders.ResumeCancellations(ctx, t)
}

// SettleCancellation does what an event's cancellation owes.
func (s *Service) SettleCancellation(ctx context.Context, t tenants.Tenant, eventID uuid.UUID) (int, error) {
	return s.orders.SettleCancellation(ctx, t, eventID)
}

// DrainOutbox sends up to limit unsent mails.
func (s *Service) DrainOutbox(ctx context.Context, t tenants.Tenant, limit int) (int, error) {
	return s.orders.DrainOutbox(ctx, t, limit)
}

// ---- tickets and buyers

// TicketKeys lists an event's token-verification keys (v2), oldest first,
// creating the first when there is none yet.
func (s *Service) TicketKeys(ctx context.Context, t tenants.Tenant, eventID uuid.UUID) ([]TicketKey, error) {
	return s.tickets.EventKeys(ctx, t, eventID)
}

// LegacyTicketKey returns the chain's v1 key (nil if it never issued v1
// tokens): it verifies tickets issued before v2.
func (s *Service) LegacyTicketKey(ctx context.Context, t tenants.Tenant) (ed25519.PublicKey, error) {
	return s.tickets.LegacyKey(ctx, t)
}

// RotateTicketKey adds a newer key to the event; with reissue, every valid
// ticket under an older key is re-issued under it (old tokens revoked), in
// batches, and it returns how many.
func (s *Service) RotateTicketKey(ctx context.Context, t tenants.Tenant, eventID uuid.UUID, reissue bool) (uint16, int, error) {
	kid, err := s.tickets.RotateKey(ctx, t, eventID)
	if err != nil || !reissue {
		return kid, 0, err
	}
	total := 0
	for {
		n, err := s.tickets.ReissueOlder(ctx, t, eventID, 500)
		total += n
		if err != nil || n == 0 {
			return kid, total, err
		}
	}
}

// ReissueTicket replaces a valid ticket by a new one with a new token (for
// the holder h, or the same holder), revoking the old token, in one
// transaction. Transfer and resale build on it.
func (s *Service) ReissueTicket(ctx context.Context, t tenants.Tenant, ticketID uuid.UUID, h TicketHolder) (Ticket, error) {
	var out Ticket
	err := s.d.Tx(ctx, t, func(tx *gorm.DB) error {
		var err error
		out, err = s.tickets.Reissue(ctx, t, tx, ticketID, h)
		return err
	})
	return out, err
}

// VerifyTicketToken checks a token of the chain (either version) as the
// door does, from cached keys.
func (s *Service) VerifyTicketToken(ctx context.Context, t tenants.Tenant, token string) (VerifiedTicket, error) {
	return s.tickets.Verify(ctx, t, token)
}

// ---- the door

// CheckIn answers one scan at the door.
func (s *Service) CheckIn(ctx context.Context, t tenants.Tenant, sc Scan) (ScanResult, error) {
	return s.door.CheckIn(ctx, t, sc)
}

// AnnulCheckin undoes a scan the turnstile did not let through.
func (s *Service) AnnulCheckin(ctx context.Context, t tenants.Tenant, eventID, checkinID uuid.UUID, deviceID string) (Checkin, error) {
	return s.door.Annul(ctx, t, eventID, checkinID, deviceID)
}

// Checkins lists an event's entry/exit log, newest first.
func (s *Service) Checkins(ctx context.Context, t tenants.Tenant, eventID uuid.UUID, before *uuid.UUID, limit int) ([]Checkin, error) {
	return s.door.Checkins(ctx, t, eventID, before, limit)
}

// Attendance counts an event's door per zone: sold, admitted, inside now,
// last scan. The ops module reads it through app.Attendance.
func (s *Service) Attendance(ctx context.Context, t tenants.Tenant, eventID uuid.UUID) (Attendance, error) {
	return s.door.Attendance(ctx, t, eventID)
}

// Revocations reads the delta of an event's revocation list after since.
func (s *Service) Revocations(ctx context.Context, t tenants.Tenant, eventID uuid.UUID, since int64, limit int) (Revocations, error) {
	return s.door.RevocationsSince(ctx, t, eventID, since, limit)
}

// DoorSettings reads an event's door rules.
func (s *Service) DoorSettings(ctx context.Context, t tenants.Tenant, eventID uuid.UUID) (DoorSettings, error) {
	return s.door.Settings(ctx, t, eventID)
}

// SetDoorSettings replaces an event's door rules.
func (s *Service) SetDoorSettings(ctx context.Context, t tenants.Tenant, in DoorSettings) (DoorSettings, error) {
	return s.door.SetSettings(ctx, t, in)
}

// SyncCheckins records a device's offline scans (earliest admission wins,
// the others conflicts).
func (s *Service) SyncCheckins(ctx context.Context, t tenants.Tenant, b SyncBatch) (SyncResult, error) {
	return s.door.Sync(ctx, t, b)
}

// DoorConflicts reads an event's conflict report.
func (s *Service) DoorConflicts(ctx context.Context, t tenants.Tenant, eventID uuid.UUID, limit int) (ConflictReport, error) {
	return s.door.Conflicts(ctx, t, eventID, limit)
}

// DoorManifest builds an event's offline manifest (whole, or the delta
// since a cursor it handed out).
func (s *Service) DoorManifest(ctx context.Context, t tenants.Tenant, eventID uuid.UUID, since string) ([]byte, ManifestHeader, error) {
	return s.door.Manifest(ctx, t, eventID, since)
}

// NewDeviceToken mints a device id and its signed token.
func (s *Service) NewDeviceToken(t tenants.Tenant) (id, token string) {
	return s.buyers.NewDeviceToken(t)
}

// DeviceFromToken checks a device token and returns its device id.
func (s *Service) DeviceFromToken(t tenants.Tenant, token string) (string, bool) {
	return s.buyers.DeviceFromToken(t, token)
}

// NewBuyerToken mints an anonymous buyer id and its signed token.
func (s *Service) NewBuyerToken(t tenants.Tenant) (id, token string) {
	return s.buyers.NewBuyerToken(t)
}

// BuyerFromToken checks a buyer token and returns its buyer id.
func (s *Service) BuyerFromToken(t tenants.Tenant, token string) (string, bool) {
	return s.buyers.BuyerFromToken(t, token)
}

// OrderLinkOK checks an order link's signature.
func (s *Service) OrderLinkOK(t tenants.Tenant, orderID uuid.UUID, sig string) bool {
	return s.buyers.OrderLinkOK(t, orderID, sig)
}

// OrderPath is the buyer's order page.
func (s *Service) OrderPath(t tenants.Tenant, orderID uuid.UUID) string {
	return s.buyers.OrderPath(t, orderID)
}

// BuiltLayout is an event's seat map as the layout it was built from.
func (s *Service) BuiltLayout(ctx context.Context, t tenants.Tenant, eventID uuid.UUID) (*Layout, error) {
	return s.catalogue.BuiltLayout(ctx, t, eventID)
}
