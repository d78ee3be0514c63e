package inventory

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"

	"marquee/jobs"
	"marquee/modules/inventory/internal/resale"
	"marquee/modules/inventory/internal/transfer"
	"marquee/modules/inventory/internal/waitlist"
	"marquee/tenants"
)

// After the sale: transfer (internal/transfer), the waiting list
// (internal/waitlist) and resale (internal/resale).

// The rooms' types under the module's names.
type (
	TransferRecord    = transfer.Record
	TransferRecipient = transfer.Recipient
	TransferResult    = transfer.Result
	ResaleSettings    = resale.Settings
	ResaleListing     = resale.Listing
	WaitlistEntry     = waitlist.Entry
	WaitlistJoin      = waitlist.JoinRequest
)

// TaskWaitlistServe makes the offers a tenant's waiting lists are owed now
// (queued after capacity comes back; the expiry sweep runs it too).
const TaskWaitlistServe = "inventory:waitlist-serve"

// TransferTicket hands a ticket to someone else, once.
func (s *Service) TransferTicket(ctx context.Context, t tenants.Tenant, ticketID uuid.UUID, to TransferRecipient, staff *uuid.UUID) (TransferResult, error) {
	res, err := s.transfer.Transfer(ctx, t, ticketID, to, staff, func(id uuid.UUID) string { return s.links.Path(t, id) })
	if err == nil {
		s.orders.EnqueueOutbox(ctx, t)
	}
	return res, err
}

// TicketPath is a ticket's own signed page (what a transfer's recipient
// gets).
func (s *Service) TicketPath(t tenants.Tenant, ticketID uuid.UUID) string {
	return s.links.Path(t, ticketID)
}

// TicketLinkOK checks a ticket link's signature.
func (s *Service) TicketLinkOK(t tenants.Tenant, ticketID uuid.UUID, sig string) bool {
	return s.links.OK(t, ticketID, sig)
}

// Ticket reads one ticket.
func (s *Service) Ticket(ctx context.Context, t tenants.Tenant, id uuid.UUID) (Ticket, error) {
	return s.transfer.Ticket(ctx, t, id)
}

// ReceivedTickets says which of the tickets came to their holder by
// transfer (their order's buyer no longer holds them).
func (s *Service) ReceivedTickets(ctx context.Context, t tenants.Tenant, ids []uuid.UUID) (map[uuid.UUID]TransferRecord, error) {
	return s.transfer.Received(ctx, t, ids)
}

// TransferableTickets reads which of the tickets may still be transferred.
func (s *Service) TransferableTickets(ctx context.Context, t tenants.Tenant, ids []uuid.UUID) (map[uuid.UUID]bool, error) {
	return s.transfer.Transferable(ctx, t, ids)
}

// Transfers lists an event's transfers, newest first.
func (s *Service) Transfers(ctx context.Context, t tenants.Tenant, eventID uuid.UUID) ([]TransferRecord, error) {
	return s.transfer.History(ctx, t, eventID, 500)
}

// ListForResale lists a ticket at price (minor units), at most the cap.
func (s *Service) ListForResale(ctx context.Context, t tenants.Tenant, ticketID uuid.UUID, price int64) (ResaleListing, error) {
	l, err := s.resale.List(ctx, t, ticketID, price)
	if err == nil {
		s.orders.EnqueueOutbox(ctx, t)
	}
	return l, err
}

// Delist withdraws a ticket's open listing at once.
func (s *Service) Delist(ctx context.Context, t tenants.Tenant, ticketID uuid.UUID) (ResaleListing, error) {
	l, err := s.resale.Delist(ctx, t, ticketID)
	if err == nil && l.HoldID != nil {
		s.KickWaitlist(ctx, t)
	}
	return l, err
}

// BuyResale reserves a public listing for a buyer (a hold for POST /orders).
func (s *Service) BuyResale(ctx context.Context, t tenants.Tenant, listingID uuid.UUID, buyerID string) (Hold, error) {
	return s.resale.Buy(ctx, t, listingID, buyerID)
}

// ResaleListings lists an event's listings (public: those anyone may buy now).
func (s *Service) ResaleListings(ctx context.Context, t tenants.Tenant, eventID uuid.UUID, public bool) ([]ResaleListing, error) {
	return s.resale.ForEvent(ctx, t, eventID, public)
}

// OpenListings reads the open listing of each ticket that has one.
func (s *Service) OpenListings(ctx context.Context, t tenants.Tenant, ids []uuid.UUID) (map[uuid.UUID]ResaleListing, error) {
	return s.resale.OpenFor(ctx, t, ids)
}

// ResaleSettingsOf reads the chain's resale rules.
func (s *Service) ResaleSettingsOf(ctx context.Context, t tenants.Tenant) (ResaleSettings, error) {
	return s.resale.GetSettings(ctx, t)
}

// SetResaleSettings replaces the chain's resale rules.
func (s *Service) SetResaleSettings(ctx context.Context, t tenants.Tenant, in ResaleSettings) (ResaleSettings, error) {
	return s.resale.SetSettings(ctx, t, in)
}

// JoinWaitlist puts an address in a tier's line.
func (s *Service) JoinWaitlist(ctx context.Context, t tenants.Tenant, eventID uuid.UUID, in WaitlistJoin) (WaitlistEntry, error) {
	e, err := s.waitlist.Join(ctx, t, eventID, in)
	if err == nil {
		s.orders.EnqueueOutbox(ctx, t)
	}
	return e, err
}

// WaitlistEntryOf reads an entry with its place in line.
func (s *Service) WaitlistEntryOf(ctx context.Context, t tenants.Tenant, id uuid.UUID) (WaitlistEntry, error) {
	return s.waitlist.Get(ctx, t, id)
}

// Waitlist lists an event's entries in line order.
func (s *Service) Waitlist(ctx context.Context, t tenants.Tenant, eventID uuid.UUID) ([]WaitlistEntry, error) {
	return s.waitlist.ForEvent(ctx, t, eventID)
}

// LeaveWaitlist takes an entry out of its line (its offer's hold released).
func (s *Service) LeaveWaitlist(ctx context.Context, t tenants.Tenant, id uuid.UUID) (WaitlistEntry, error) {
	e, err := s.waitlist.Leave(ctx, t, id)
	if err == nil && e.HoldID != nil {
		s.KickWaitlist(ctx, t)
	}
	return e, err
}

// WaitlistOrder turns an entry's open offer into a pending order with its
// PaymentIntent, for the entry's address and the given name.
func (s *Service) WaitlistOrder(ctx context.Context, t tenants.Tenant, id uuid.UUID, name string) (Order, error) {
	e, err := s.waitlist.Get(ctx, t, id)
	if err != nil {
		return Order{}, err
	}
	if e.Status != waitlist.Offered || e.HoldID == nil {
		return Order{}, errNoOffer
	}
	return s.orders.CreateOrder(ctx, t, *e.HoldID, waitlist.BuyerID(e.ID), BuyerInfo{Email: e.Email, Name: name})
}

// WaitlistSig signs an entry's link; WaitlistLinkOK checks one.
func (s *Service) WaitlistSig(t tenants.Tenant, id uuid.UUID) string { return s.waitlist.Sig(t, id) }

// WaitlistLinkOK checks an entry link's signature.
func (s *Service) WaitlistLinkOK(t tenants.Tenant, id uuid.UUID, sig string) bool {
	return s.waitlist.SigOK(t, id, sig)
}

// WaitlistPath is an entry's signed page.
func (s *Service) WaitlistPath(t tenants.Tenant, id uuid.UUID) string {
	return "/waitlist/" + id.String() + "?wsig=" + s.waitlist.Sig(t, id)
}

// OfferMinutes reads an event's waiting-list offer window.
func (s *Service) OfferMinutes(ctx context.Context, t tenants.Tenant, eventID uuid.UUID) (int, error) {
	return s.waitlist.OfferMinutes(ctx, t, eventID)
}

// SetOfferMinutes sets an event's waiting-list offer window.
func (s *Service) SetOfferMinutes(ctx context.Context, t tenants.Tenant, eventID uuid.UUID, minutes int) error {
	return s.waitlist.SetOfferMinutes(ctx, t, eventID, minutes)
}

// ServeWaitlist makes the offers an event's lines are owed now.
func (s *Service) ServeWaitlist(ctx context.Context, t tenants.Tenant, eventID uuid.UUID) (int, error) {
	n, err := s.waitlist.Serve(ctx, t, eventID)
	if n > 0 {
		s.orders.EnqueueOutbox(ctx, t)
	}
	return n, err
}

// ServeWaitlists makes the offers every line of the tenant is owed now.
func (s *Service) ServeWaitlists(ctx context.Context, t tenants.Tenant) (int, error) {
	n, err := s.waitlist.ServeTenant(ctx, t)
	if n > 0 {
		s.orders.EnqueueOutbox(ctx, t)
	}
	return n, err
}

// KickWaitlist asks for the tenant's lines to be served soon (after a
// commit that gave capacity back). One task at a time per tenant: a kick
// while one is queued is that one; a lost kick is the sweep's, seconds
// later.
func (s *Service) KickWaitlist(ctx context.Context, t tenants.Tenant) {
	_, err := s.d.App.Jobs.Enqueue(context.WithoutCancel(ctx), t, TaskWaitlistServe, struct{}{},
		asynq.TaskID("waitlist-serve:"+t.Slug), asynq.Queue(jobs.QueueCritical), asynq.Timeout(time.Minute))
	if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		s.d.App.Log.Warn("waiting list not kicked; the sweep serves it", "tenant", t.Slug, "err", err)
	}
}
