package inventory

import (
	"context"
	"html/template"
	"net/http"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/jobs"
	"marquee/policies"
	"marquee/tenants"
)

// Objects the inventory's permissions are about.
const (
	ObjInventory = "inventory.catalogue" // zones, seat maps, tiers, quotas, settings (was "inventory" before control migration 00070)
	ObjOrders    = "inventory.orders"    // orders: read, refund (was "orders")
	ObjDoor      = "inventory.door"      // scan and annul (write); the log, attendance, revocations, door rules (read)
)

// Module is the inventory feature module.
type Module struct {
	app   *app.Core
	svc   *Service
	gate  AdmissionGate
	pages *template.Template
}

// Option configures the module.
type Option func(*Module)

// WithAdmissionGate puts a waiting room in front of holds: every hold request
// is checked by g first (nil: no waiting room).
func WithAdmissionGate(g AdmissionGate) Option { return func(m *Module) { m.gate = g } }

// New returns the inventory module, ready to register.
func New(opts ...Option) *Module {
	m := &Module{}
	for _, o := range opts {
		o(m)
	}
	return m
}

// SetAdmissionGate replaces the admission gate (before serving).
func (m *Module) SetAdmissionGate(g AdmissionGate) {
	m.gate = g
	if m.svc != nil {
		m.svc.setGate(g)
	}
}

// Name implements app.Module.
func (m *Module) Name() string { return "inventory" }

// Service returns the inventory service (after Register).
func (m *Module) Service() *Service { return m.svc }

// expirySweepEvery is the period of TaskExpirySweep.
const expirySweepEvery = 5 * time.Second

// Who may read the door (the log, attendance, revocations, its rules) and
// who may scan, by default; each at their venue only when the role is a
// venue role.
var (
	doorReaders = []string{policies.RoleChainAdmin, policies.RolePromoter, policies.RoleVenueManager, policies.RoleBoxOffice,
		policies.RoleOpsLead, policies.RoleSecurityLead, policies.RoleDoorStaff, policies.RoleSupport}
	doorWriters = []string{policies.RoleChainAdmin, policies.RoleVenueManager, policies.RoleBoxOffice, policies.RoleOpsLead, policies.RoleDoorStaff}
)

// grants are the default permissions of each role. Configuring inventory is
// checked at the event's venue, so a venue manager may configure the events
// of their own venues only; chain roles pass everywhere.
func grants() []policies.Grant {
	var g []policies.Grant
	add := func(object, action string, roles ...string) {
		for _, r := range roles {
			g = append(g, policies.Grant{Role: r, Object: object, Action: action})
		}
	}
	add(ObjInventory, policies.Read, policies.RoleChainAdmin, policies.RoleFinance, policies.RolePromoter,
		policies.RoleVenueManager, policies.RoleBoxOffice, policies.RoleOpsLead, policies.RoleSupport)
	add(ObjInventory, policies.Write, policies.RoleChainAdmin, policies.RolePromoter, policies.RoleVenueManager, policies.RoleSupport)
	add(ObjOrders, policies.Read, policies.RoleChainAdmin, policies.RoleFinance, policies.RoleVenueManager, policies.RoleBoxOffice, policies.RoleSupport)
	add(ObjOrders, policies.Write, policies.RoleChainAdmin, policies.RoleFinance, policies.RoleVenueManager, policies.RoleBoxOffice)
	// The door: control migration 00100 gives chains that existed before
	// the same defaults (TestDoorGrantsMigrationMatchesModule).
	add(ObjDoor, policies.Read, doorReaders...)
	add(ObjDoor, policies.Write, doorWriters...)
	return g
}

// Register implements app.Module.
func (m *Module) Register(r *app.Registrar) error {
	m.app = r.Core()
	m.svc = NewService(m.app)
	m.svc.setGate(m.gate)
	pages, err := parsePages()
	if err != nil {
		return err
	}
	m.pages = pages
	if err := m.registerDelivery(r); err != nil {
		return err
	}
	m.registerLimits(r)
	r.Grants(grants()...)
	r.Usage("Tickets sold this month", func(ctx context.Context, tx *gorm.DB, month time.Time) (n int64, err error) {
		return n, tx.Raw("SELECT count(*) FROM inv_tickets WHERE issued_at >= ? AND status = 'valid'", month).Scan(&n).Error
	})

	pub, signed := app.Public(), app.SignedIn()
	// Staff routes are SignedIn at the router and checked at the event's
	// venue in the handler (the venue is known only once the event is read).
	r.API(http.MethodGet, "/events", pub, "On-sale events with prices and availability (public catalogue)", app.Handle(m.catalogue).Query("status", "on_sale,sold_out").Query("venue_id", "").Query("category", "").Query("from", "date or RFC 3339").Query("to", "").Query("after", "cursor").Query("limit", "1 to 200 (50)"))
	r.API(http.MethodGet, "/events/:eventId/inventory", signed, "An event's inventory configuration and counts", app.Handle(m.getInventory))
	r.API(http.MethodPut, "/events/:eventId/inventory", signed, "Configure an event's zones, seat map, tiers, quotas and settings (after sales: only changes that keep every sold ticket as sold; inventory_in_use says what was refused)", app.Handle(m.putInventory))
	r.API(http.MethodPut, "/events/:eventId/quotas", signed, "Set channel quotas (their sum never exceeds capacity)", app.Handle(m.putQuotas))
	r.API(http.MethodPatch, "/events/:eventId/settings", signed, "Change hold duration and buyer limits", app.Handle(m.patchSettings))
	r.API(http.MethodGet, "/events/:eventId/seatmap", pub, "The seat map layout (public)", app.Handle(m.seatmap))
	r.API(http.MethodGet, "/events/:eventId/availability", pub, "Tier and seat availability, cached (public; ?format=bitmap for a compact form)", app.Raw(m.availability).Produces("application/json", AvailabilityDocument{}).Query("format", "full (default) or bitmap"))
	r.APIStream("/events/:eventId/stream", pub, "Live availability changes (server-sent events)", m.stream)
	r.API(http.MethodGet, "/events/:eventId/public-key", pub.EvenWhenSuspended(), "The Ed25519 keys that verify this event's ticket tokens offline (every key id, the newest on top, the chain's v1 key)", app.Handle(m.publicKey))
	r.API(http.MethodPost, "/events/:eventId/ticket-keys", signed, "Rotate the event's ticket key (optionally re-issuing every ticket under older keys, their tokens revoked)", app.Handle(m.rotateKey).Created())
	r.API(http.MethodPost, "/events/:eventId/checkins", signed, "Scan a ticket at the door (entry or exit); the answer is the result, retries with the same nonce get the first answer", app.Handle(m.checkIn))
	r.API(http.MethodPost, "/events/:eventId/checkins/:checkinId/annul", signed, "Undo a scan the turnstile did not let through (same device, within 15 minutes)", app.Handle(m.annulCheckin))
	r.API(http.MethodGet, "/events/:eventId/checkins", signed, "The event's entry/exit log, newest first", app.Handle(m.listCheckins).Query("before", "cursor: next of the previous page").Query("limit", "1 to 500 (100)"))
	r.API(http.MethodGet, "/events/:eventId/attendance", signed, "Door count per zone: sold, admitted, inside now, last scan", app.Handle(m.attendance))
	r.API(http.MethodGet, "/events/:eventId/revocations", signed, "Revoked ticket tokens after a sequence number (scanners sync the delta)", app.Handle(m.revocations).Query("since", "last seq seen (0)").Query("limit", "1 to 5000 (1000)"))
	r.API(http.MethodPost, "/events/:eventId/checkins/sync", signed, "Upload a device's offline scans (a batch with nonces, idempotent): the earliest admission of a ticket wins, the others are conflicts; the answer says per scan what was recorded and which rules could not be enforced offline", app.Handle(m.syncCheckins))
	r.API(http.MethodGet, "/events/:eventId/door-clock", signed, "The server's clock (UTC, milliseconds): a scanner measures its clock offset by this round trip before it syncs", app.Handle(m.doorClock))
	r.API(http.MethodGet, "/events/:eventId/checkin-conflicts", signed, "The conflict report: tickets let in by more than one scan (devices, gates, how far apart)", app.Handle(m.doorConflicts).Query("limit", "1 to 1000 (200)"))
	r.API(http.MethodGet, "/events/:eventId/door-manifest", signed, "The offline scanner's manifest: every ticket with its zone and state, binary (DESIGN.md), or the delta since a cursor", app.Raw(m.doorManifest).Produces(ManifestMediaType, "").Query("since", "the cursor of the previous manifest (delta)"))
	r.API(http.MethodGet, "/events/:eventId/door", signed, "The event's door rules: re-entry, token validity, gates and their zones", app.Handle(m.getDoorSettings))
	r.API(http.MethodPut, "/events/:eventId/door", signed, "Replace the event's door rules (validity applies to tokens issued from then on)", app.Handle(m.putDoorSettings))
	// After the sale: transfer once, the waiting list, capped resale.
	r.API(http.MethodGet, "/tickets/:ticketId", pub, "Read a ticket as its holder (order link ?sig=, ticket link ?tsig=, buyer token or staff)", app.Handle(m.holderTicket).Query("sig", "the order link's signature").Query("tsig", "the ticket link's signature"))
	r.API(http.MethodPost, "/tickets/:ticketId/transfer", pub, "Transfer a ticket to a name and e-mail, once: a new ticket and token, the old one revoked, both told", app.Handle(m.transferTicket).Created().Query("sig", "the order link's signature").Query("tsig", "the ticket link's signature"))
	r.API(http.MethodPost, "/tickets/:ticketId/resale", pub, "List a ticket for resale at no more than the cap (what it cost its buyer, per chain percentage)", app.Handle(m.listTicket).Created().Query("sig", "the order link's signature").Query("tsig", "the ticket link's signature"))
	r.API(http.MethodDelete, "/tickets/:ticketId/resale", pub, "Withdraw a ticket's resale listing at once", app.Handle(m.delistTicket).Query("sig", "the order link's signature").Query("tsig", "the ticket link's signature")).NoBody()
	r.API(http.MethodGet, "/events/:eventId/resale", pub, "Resale listings of an event (public: those on sale now; staff: all)", app.Handle(m.eventListings))
	r.API(http.MethodPost, "/resale/:listingId/holds", pub, "Reserve a resale listing (X-Buyer-Token): a hold to order and pay like any other", app.Handle(m.buyListing).Created()).NoBody()
	r.API(http.MethodGet, "/resale/settings", app.Require(ObjInventory, policies.Read), "The chain's resale rules: cap, commission, waiting list first", app.Handle(m.getResaleSettings))
	r.API(http.MethodPut, "/resale/settings", app.Require(ObjInventory, policies.Write), "Replace the chain's resale rules (cap 50-120% of what a ticket cost, commission in basis points)", app.Handle(m.putResaleSettings))
	r.API(http.MethodPost, "/events/:eventId/waitlist", pub, "Join a tier's waiting list (e-mail, quantity); the answer has the place in line and the entry's signed link", app.Handle(m.joinWaitlist).Created())
	r.API(http.MethodGet, "/events/:eventId/waitlist", signed, "An event's waiting lists in line order (staff)", app.Handle(m.eventWaitlist))
	r.API(http.MethodGet, "/events/:eventId/waitlist/settings", signed, "The event's waiting-list offer window", app.Handle(m.getWaitlistSettings))
	r.API(http.MethodPut, "/events/:eventId/waitlist/settings", signed, "Set the event's waiting-list offer window (minutes)", app.Handle(m.putWaitlistSettings))
	r.API(http.MethodGet, "/waitlist/:entryId", pub, "A waiting-list entry: place in line, status, offer (signed link ?wsig=)", app.Handle(m.getWaitlistEntry).Query("wsig", "the entry link's signature"))
	r.API(http.MethodDelete, "/waitlist/:entryId", pub, "Leave the waiting list (an open offer is released to the next in line)", app.Handle(m.leaveWaitlist).Query("wsig", "the entry link's signature")).NoBody()
	r.API(http.MethodPost, "/waitlist/:entryId/order", pub, "Take a waiting-list offer: an order and its PaymentIntent for the held tickets", app.Handle(m.orderOffer).Created().Query("wsig", "the entry link's signature"))
	r.API(http.MethodGet, "/events/:eventId/transfers", signed, "An event's ticket transfers, newest first (staff)", app.Handle(m.eventTransfers))
	r.API(http.MethodPost, "/buyer-sessions", pub, "Mint a signed anonymous buyer token", app.Handle(m.buyerSession).Created()).NoBody()
	r.API(http.MethodPost, "/events/:eventId/holds", pub, "Hold seats or GA tickets (Idempotency-Key required; X-Buyer-Token)", app.Handle(m.createHold).Created())
	r.API(http.MethodGet, "/holds", pub, "The requesting buyer's active holds (?mine, X-Buyer-Token; optional event_id)", app.Handle(m.myHolds).Query("mine", "required: your own holds").Query("event_id", "only this event's"))
	r.API(http.MethodGet, "/holds/:holdId", pub, "Read a hold (its buyer)", app.Handle(m.getHold))
	r.API(http.MethodDelete, "/holds/:holdId", pub, "Release a hold (its buyer)", app.Handle(m.releaseHold))
	r.API(http.MethodPost, "/holds/:holdId/items", pub, "Add seats or GA tickets to the buyer's active hold, all or none; its expiry is kept (Idempotency-Key required)", app.Handle(m.addHoldItems))
	r.API(http.MethodDelete, "/holds/:holdId/items/:seatId", pub, "Take one seat out of the buyer's active hold (not its last ticket)", app.Handle(m.removeHoldSeat))
	r.API(http.MethodPost, "/orders", pub, "Create an order and its Stripe PaymentIntent for a hold (Idempotency-Key required)", app.Handle(m.createOrder).Created())
	r.API(http.MethodGet, "/orders/:orderId", pub.EvenWhenSuspended(), "Read an order and its tickets (signed link or staff)", app.Handle(m.getOrder))
	r.API(http.MethodPost, "/orders/:orderId/refund", signed, "Refund a paid order: tickets void, inventory returned (Idempotency-Key required)", app.Handle(m.refundOrder).OptionalBody().Before(m.app.Idempotent()))
	r.API(http.MethodPost, "/orders/:orderId/refund-tickets", signed, "Refund some tickets of a paid order: those tickets void, their seats and units back on sale, their price back to the card; the others stay valid (Idempotency-Key required)", app.Handle(m.refundTickets).Created().Before(m.app.Idempotent()))
	if m.app.Config.TestModePayments() {
		// Only a development deployment with a test-mode key settles its own
		// payments; elsewhere the route does not exist.
		r.API(http.MethodPost, "/orders/:orderId/test-pay", pub, "TEST MODE ONLY: pay through stripe-mock and deliver the signed webhook locally", app.Handle(m.testPay).OptionalBody())
	}
	// Deprecated for the platform endpoint below; served for one release.
	r.API(http.MethodPost, "/webhooks/stripe", pub.EvenWhenSuspended(), "DEPRECATED (use the platform's POST /webhooks/stripe): Stripe webhook for this chain (signature verified)", app.Raw(m.stripeWebhook).Accepts("application/json", StripeEvent{}).Produces("application/json", WebhookResult{}))
	r.PlatformAPI(http.MethodPost, PlatformWebhookPath, pub, "Stripe webhook for every chain, on the base host (signature verified; routed by the PaymentIntent's metadata to the chain holding it)", app.Raw(m.platformStripeWebhook).Accepts("application/json", StripeEvent{}).Produces("application/json", WebhookResult{}))

	r.API(http.MethodGet, "/events/:eventId/pricing", signed, "The event's demand-pricing rules per tier and its price history, newest first (inventory read at its venue)",
		app.Handle(m.getPricing).Query("limit", "history rows, 1 to 500 (100)"))
	r.API(http.MethodPut, "/events/:eventId/tiers/:tierId/pricing", signed, "Turn demand pricing of a tier on or off within bounds: floor, ceiling, max step, min interval (inventory write at its venue; prices move 24 h after it is turned on)",
		app.Handle(m.putPriceRule))

	r.Storefront(http.MethodGet, "/events", pub, m.storeEventsPage)
	r.StorefrontHome("/events")
	r.Storefront(http.MethodGet, "/events/:eventId", pub, m.storeEventPage)
	r.Storefront(http.MethodGet, "/orders/:orderId", pub.EvenWhenSuspended(), m.storeOrderPage)
	r.Portal(http.MethodGet, "/inventory", signed, m.portalEventsPage)
	r.Portal(http.MethodGet, "/inventory/:eventId", signed, m.portalEventPage)
	r.Portal(http.MethodGet, "/inventory/:eventId/ticketing", signed, m.portalTicketingPage)
	r.Portal(http.MethodPost, "/inventory/:eventId/ticketing", signed, m.portalSaveTicketing)
	m.registerAfterSalePages(r)
	r.Portal(http.MethodGet, "/inventory/:eventId/orders", signed, m.portalOrdersPage)
	r.Portal(http.MethodGet, "/inventory/:eventId/orders/:orderId", signed, m.portalOrderPage)
	r.Portal(http.MethodPost, "/inventory/:eventId/orders/:orderId/refund", signed, m.portalRefundOrder)
	m.registerOrderOpsPages(r)
	r.Nav("Inventory", "/portal/inventory", 20, app.Require(ObjInventory, policies.Read))
	r.Portal(http.MethodGet, "/scanner", signed, m.scannerPage)
	r.Portal(http.MethodGet, "/scanner/conflicts", signed, m.conflictsPage)
	r.Portal(http.MethodGet, "/scanner/:file", pub, m.scannerFile) // the page's files (public: nothing secret, and the worker fetches them)
	r.Nav("Door scanner", "/portal/scanner", 25, app.Require(ObjDoor, policies.Write))
	r.Nav("Door conflicts", "/portal/scanner/conflicts", 26, app.Require(ObjDoor, policies.Read))

	// Returning seats and money goes on while a chain is suspended.
	r.TaskEvenWhenSuspended(TaskHoldExpire, m.expireTask)
	// The hold path caches an event's calendar facts (status, on-sale
	// schedule) for a moment; a change made here is seen at once.
	r.OnEventsChanged(func(_ context.Context, t tenants.Tenant, ids []uuid.UUID) {
		for _, id := range ids {
			m.svc.catalogue.ForgetEvent(t, id)
		}
	})
	r.Task(TaskHoldSweep, m.sweepTask)
	r.TaskEvenWhenSuspended(TaskRefund, m.refundTask)
	r.TaskEvenWhenSuspended(TaskEventCancel, m.cancelTaskRun)
	// Tasks queued by the release before mail moved to the core: each asks
	// the core to send what is due.
	r.TaskEvenWhenSuspended(TaskOutbox, m.outboxTask)
	r.Task(TaskExpirySweep, m.expirySweepTask)
	r.Task(TaskWaitlistServe, m.waitlistTask)
	r.Every(jobs.Periodic{Cron: "* * * * *", Type: TaskHoldSweep, Queue: jobs.QueueCritical, Bucket: time.Minute})
	// Seats of a hold whose task was lost come back within about this
	// period of its time (the sweep is one indexed query on an idle tenant).
	r.Every(jobs.Periodic{Cron: "@every " + expirySweepEvery.String(), Type: TaskExpirySweep, Queue: jobs.QueueCritical, Bucket: expirySweepEvery})
	r.Task(TaskReprice, m.repriceTask)
	r.Every(jobs.Periodic{Cron: "* * * * *", Type: TaskReprice, Queue: jobs.QueueDefault, Bucket: time.Minute})
	r.ProvideCancellations(m.svc.orders.Cancellations())
	r.ProvideAttendance(m.svc)
	r.ProvideTicketFacts(m.svc)                 // sold tickets per tier, for settlements
	r.ProvideTicketOffers(m.svc)                // all-in prices and availability, for search
	r.ProvideChannelSales(m.svc.ChannelSales()) // outside channels sell inside their quotas
	r.Needs(app.EventDirectoryContract)         // it sells for events it never owns
	r.Seed(m.seed, "calendar")                  // it sells the calendar's demo events
	return nil
}
