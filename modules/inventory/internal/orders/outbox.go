package orders

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/modules/inventory/internal/model"
	"marquee/tenants"
)

// Mail goes through the core's outbox (Core.Mail): written in the
// transaction of what it tells, once per order and purpose, and sent by the
// core's retried task.

// Kinds of inventory mail. MailTickets is composed with the order's PDF and
// wallet links when it is sent (the delivery room registers its composer).
const (
	MailTickets = "inventory.tickets"
	MailNotice  = "inventory.notice"
)

// queueMail queues one message about an order, once per purpose.
func (s *Service) queueMail(tx *gorm.DB, o model.Order, purpose, kind, subject, body string) (uuid.UUID, error) {
	id, _, err := s.d.App.Mail.Queue(tx, orderMail(o, purpose, kind, subject, body))
	return id, err
}

// orderMail is one message about an order, keyed by its purpose.
func orderMail(o model.Order, purpose, kind, subject, body string) app.MailMessage {
	return app.MailMessage{Key: "order:" + o.ID.String() + ":" + purpose, Kind: kind, Ref: o.ID.String(),
		To: o.Email, Subject: subject, Body: body}
}

// ticketsMail is the message that sends a paid order's n tickets.
func (s *Service) ticketsMail(t tenants.Tenant, o model.Order, n int) app.MailMessage {
	return orderMail(o, "tickets", MailTickets, "Your tickets",
		fmt.Sprintf("Hello %s,\n\nyour payment was received and %s ready. They are attached as a PDF, and your order page has them too:\n%s\n",
			o.Name, yourTickets(n), s.buyers.OrderPath(t, o.ID)))
}

// QueueTicketsMail queues the order's tickets mail again under a purpose
// (a resend bucket), in its own transaction.
func (s *Service) QueueTicketsMail(ctx context.Context, t tenants.Tenant, orderID uuid.UUID, purpose string) (uuid.UUID, bool, error) {
	var id uuid.UUID
	var fresh bool
	err := s.d.Tx(ctx, t, func(tx *gorm.DB) error {
		o, err := ReadOrder(tx, orderID, false)
		if err != nil {
			return err
		}
		id, fresh, err = s.d.App.Mail.Queue(tx, app.MailMessage{
			Key: "order:" + o.ID.String() + ":" + purpose, Kind: MailTickets, Ref: o.ID.String(), To: o.Email,
			Subject: "Your tickets (sent again)", Body: fmt.Sprintf("Hello %s,\n\nhere are your tickets again, attached as a PDF. Your order page has them too:\n%s\n", o.Name, s.buyers.OrderPath(t, o.ID)),
		})
		return err
	})
	return id, fresh, err
}

// EnqueueOutbox asks for every due message to be sent now (after a bulk
// change, an event's cancellation, queued many).
func (s *Service) EnqueueOutbox(ctx context.Context, t tenants.Tenant) {
	if err := s.d.App.Mail.DispatchQueued(ctx, t); err != nil {
		s.d.App.Log.Warn("mail not dispatched; the core's sweep sends it", "tenant", t.Slug, "err", err)
	}
}

// DrainOutbox sends up to limit due messages now and answers how many.
func (s *Service) DrainOutbox(ctx context.Context, t tenants.Tenant, limit int) (int, error) {
	return s.d.App.Mail.SendDue(ctx, t, limit)
}
