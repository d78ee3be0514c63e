// Package transfer hands a ticket to someone else, once: a new ticket with
// a new token for the named person, the old token revoked in the same
// transaction (so online check-in refuses it at once and it is in the next
// revocation delta), both people told through the outbox, the transfer kept
// in inv_ticket_transfers.
//
// What decides is in PostgreSQL: the ticket row is locked (FOR UPDATE) while
// its state is judged, and the re-issue's conditional void (tickets.Reissue)
// lets exactly one of any number of racing transfers, resales and re-issues
// win; the losers change nothing.
package transfer

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"net/mail"
	"strings"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/modules/inventory/internal/deps"
	"marquee/modules/inventory/internal/model"
	"marquee/modules/inventory/internal/tickets"
	"marquee/tenants"
)

// Service is the transfer room.
type Service struct {
	d  *deps.Deps
	tk *tickets.Service
}

// New returns the transfer room over the ticket room (re-issue).
func New(d *deps.Deps, tk *tickets.Service) *Service { return &Service{d: d, tk: tk} }

// Record is one transfer, as history keeps it.
type Record struct {
	ID         uuid.UUID  `gorm:"column:id" json:"id"`
	EventID    uuid.UUID  `gorm:"column:event_id" json:"event_id"`
	FromTicket uuid.UUID  `gorm:"column:from_ticket" json:"from_ticket"`
	ToTicket   uuid.UUID  `gorm:"column:to_ticket" json:"to_ticket"`
	FromName   string     `gorm:"column:from_name" json:"from_name"`
	FromEmail  string     `gorm:"column:from_email" json:"from_email"`
	ToName     string     `gorm:"column:to_name" json:"to_name"`
	ToEmail    string     `gorm:"column:to_email" json:"to_email"`
	ByStaff    *uuid.UUID `gorm:"column:by_staff" json:"by_staff,omitempty"`
	CreatedAt  time.Time  `gorm:"column:created_at" json:"created_at"`
}

const recordCols = `id, event_id, from_ticket, to_ticket, from_name, from_email, to_name, to_email, by_staff, created_at`

// Recipient is who a ticket goes to.
type Recipient struct {
	Name  string `json:"name"`
	Email string `json:"email"`
}

// Validate trims and checks the recipient.
func (r *Recipient) Validate() error {
	r.Name, r.Email = strings.TrimSpace(r.Name), strings.TrimSpace(r.Email)
	if addr, err := mail.ParseAddress(r.Email); err != nil || addr.Address != r.Email || len(r.Email) > 254 {
		return model.Invalid("email", "the recipient's email address is not valid")
	}
	if r.Name == "" || len(r.Name) > 200 {
		return model.Invalid("name", "the recipient's name must be 1 to 200 characters")
	}
	return nil
}

// Holding is what the rules of transfer and resale read about a ticket,
// with its row locked.
type Holding struct {
	ID           uuid.UUID `gorm:"column:id"`
	OrderID      uuid.UUID `gorm:"column:order_id"`
	EventID      uuid.UUID `gorm:"column:event_id"`
	TierID       uuid.UUID `gorm:"column:tier_id"`
	Status       string    `gorm:"column:status"`
	Transferable bool      `gorm:"column:transferable"`
	HolderName   string    `gorm:"column:holder_name"`
	HolderEmail  string    `gorm:"column:holder_email"`
	CheckedIn    bool      `gorm:"column:checked_in"`
	Listed       bool      `gorm:"column:listed"`
}

// LockHolding reads a ticket for a change of hands, its row locked until
// the transaction ends: a listing, a transfer and a purchase of the same
// ticket queue here, and each judges the state the one before it left.
//
// The lock is taken by a statement of its own, and the state read by the
// next: a scan holds the ticket's row FOR SHARE until it commits, and only
// a snapshot taken after the lock was granted sees that scan's entry (one
// statement would judge "used at the door" from before the wait).
func LockHolding(tx *gorm.DB, ticketID uuid.UUID) (Holding, error) {
	var locked []uuid.UUID
	if err := tx.Raw(`SELECT id FROM inv_tickets WHERE id = ? FOR UPDATE`, ticketID).Scan(&locked).Error; err != nil {
		return Holding{}, err
	}
	if len(locked) == 0 {
		return Holding{}, app.NotFound("ticket")
	}
	var hs []Holding
	if err := tx.Raw(`SELECT t.id, t.order_id, t.event_id, t.tier_id, t.status, t.transferable, t.holder_name, t.holder_email,
			EXISTS (SELECT 1 FROM inv_door_state s WHERE s.ticket_id = t.id AND s.entries > 0) AS checked_in,
			EXISTS (SELECT 1 FROM inv_resale_listings l WHERE l.ticket_id = t.id AND l.status = 'listed') AS listed
		FROM inv_tickets t WHERE t.id = ?`, ticketID).Scan(&hs).Error; err != nil {
		return Holding{}, err
	}
	if len(hs) == 0 {
		return Holding{}, app.NotFound("ticket")
	}
	return hs[0], nil
}

// TicketValid is the state of a ticket that admits its holder.
const TicketValid = "valid"

// Errors a change of hands answers.
var (
	ErrTransferred = app.Conflict("ticket_transferred", "this ticket was transferred to its holder and cannot be transferred again")
	ErrCheckedIn   = app.Conflict("ticket_checked_in", "this ticket was used at the door and cannot change hands")
	ErrListed      = app.Conflict("ticket_listed", "this ticket is listed for resale; delist it first")
)

// NotValid answers a ticket that is void or re-issued already.
func NotValid() error {
	return app.Conflict("ticket_not_valid", "the ticket is void or re-issued already; nothing was changed")
}

// Result is a transfer done: its record and the recipient's new ticket.
type Result struct {
	Transfer Record       `json:"transfer"`
	Ticket   model.Ticket `json:"ticket"`
}

// Transfer hands a valid, transferable ticket that was never used at the
// door and is not listed to the recipient, in one transaction: the new
// ticket (not transferable again), the old one void (revoked), the record
// and both mails. ticketURL builds the recipient's signed ticket link.
func (s *Service) Transfer(ctx context.Context, t tenants.Tenant, ticketID uuid.UUID, to Recipient, staff *uuid.UUID, ticketURL func(uuid.UUID) string) (Result, error) {
	if err := to.Validate(); err != nil {
		return Result{}, err
	}
	var res Result
	err := s.d.Tx(ctx, t, func(tx *gorm.DB) error {
		h, err := LockHolding(tx, ticketID)
		if err != nil {
			return err
		}
		switch {
		case h.Status != TicketValid:
			return NotValid()
		case !h.Transferable:
			return ErrTransferred
		case h.CheckedIn:
			return ErrCheckedIn
		case h.Listed:
			return ErrListed
		}
		if strings.EqualFold(h.HolderEmail, to.Email) {
			return model.Invalid("email", "the ticket is held by this address already")
		}
		no := false
		nt, err := s.tk.Reissue(ctx, t, tx, ticketID, tickets.Holder{Name: to.Name, Email: to.Email, Transferable: &no})
		if err != nil {
			return err
		}
		var recs []Record
		if err := tx.Raw(`INSERT INTO inv_ticket_transfers (id, event_id, from_ticket, to_ticket, from_name, from_email, to_name, to_email, by_staff)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING `+recordCols,
			uuid.Must(uuid.NewV7()), h.EventID, h.ID, nt.ID, h.HolderName, h.HolderEmail, to.Name, to.Email, staff).Scan(&recs).Error; err != nil {
			return err
		}
		if err := Mail(tx, &h.OrderID, h.HolderEmail, "Your ticket was transferred",
			fmt.Sprintf("Hello %s,\n\nyour %s ticket was transferred to %s. Your own code no longer admits anyone.\n", h.HolderName, nt.TierName, to.Name)); err != nil {
			return err
		}
		if err := Mail(tx, &h.OrderID, to.Email, "A ticket for you",
			fmt.Sprintf("Hello %s,\n\n%s transferred a %s ticket to you:\n%s\n", to.Name, h.HolderName, nt.TierName, ticketURL(nt.ID))); err != nil {
			return err
		}
		res = Result{Transfer: recs[0], Ticket: nt}
		return nil
	})
	return res, err
}

// Mail writes one message to inventory's outbox, in tx (the outbox task
// sends it after the commit).
func Mail(tx *gorm.DB, orderID *uuid.UUID, to, subject, body string) error {
	return tx.Exec(`INSERT INTO inv_email_outbox (id, order_id, to_email, subject, body) VALUES (?, ?, ?, ?, ?)`,
		uuid.Must(uuid.NewV7()), orderID, to, subject, body).Error
}

// History lists an event's transfers, newest first.
func (s *Service) History(ctx context.Context, t tenants.Tenant, eventID uuid.UUID, limit int) ([]Record, error) {
	out := []Record{}
	err := s.d.Tx(ctx, t, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT `+recordCols+` FROM inv_ticket_transfers WHERE event_id = ? ORDER BY created_at DESC, id DESC LIMIT ?`, eventID, limit).Scan(&out).Error
	})
	return out, err
}

// Received reports which of the given tickets came to their holder by a
// transfer, and from whom: the order they sit in is not the holder's any
// more, so its page shows them without their codes.
func (s *Service) Received(ctx context.Context, t tenants.Tenant, ticketIDs []uuid.UUID) (map[uuid.UUID]Record, error) {
	out := map[uuid.UUID]Record{}
	if len(ticketIDs) == 0 {
		return out, nil
	}
	var recs []Record
	err := s.d.Tx(ctx, t, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT `+recordCols+` FROM inv_ticket_transfers WHERE to_ticket IN ?`, ticketIDs).Scan(&recs).Error
	})
	for _, r := range recs {
		out[r.ToTicket] = r
	}
	return out, err
}

// Transferable reads which of the tickets may still be transferred.
func (s *Service) Transferable(ctx context.Context, t tenants.Tenant, ids []uuid.UUID) (map[uuid.UUID]bool, error) {
	out := map[uuid.UUID]bool{}
	if len(ids) == 0 {
		return out, nil
	}
	var rows []struct {
		ID uuid.UUID `gorm:"column:id"`
		OK bool      `gorm:"column:transferable"`
	}
	err := s.d.Tx(ctx, t, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT id, transferable FROM inv_tickets WHERE id IN ?`, ids).Scan(&rows).Error
	})
	for _, r := range rows {
		out[r.ID] = r.OK
	}
	return out, err
}

// Ticket reads one ticket.
func (s *Service) Ticket(ctx context.Context, t tenants.Tenant, id uuid.UUID) (model.Ticket, error) {
	var ts []model.Ticket
	err := s.d.Tx(ctx, t, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT `+tickets.TicketCols+` FROM inv_tickets WHERE id = ?`, id).Scan(&ts).Error
	})
	if err == nil && len(ts) == 0 {
		err = app.NotFound("ticket")
	}
	if err != nil {
		return model.Ticket{}, err
	}
	return ts[0], nil
}

// Links signs ticket links: a transfer's recipient holds a ticket in an
// order that is not theirs, and this link (an HMAC of the ticket under a
// key of its own purpose) is what proves they hold it.
type Links struct{ key []byte }

// NewLinks returns the ticket-link signer.
func NewLinks(a *app.Core) Links { return Links{key: a.SigningKey("inventory/ticket-link")} }

// Sig signs a ticket id for the tenant.
func (l Links) Sig(t tenants.Tenant, ticketID uuid.UUID) string {
	m := hmac.New(sha256.New, l.key)
	m.Write([]byte(t.Slug + "\x00" + ticketID.String()))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// OK checks a ticket link's signature.
func (l Links) OK(t tenants.Tenant, ticketID uuid.UUID, sig string) bool {
	return sig != "" && subtle.ConstantTimeCompare([]byte(sig), []byte(l.Sig(t, ticketID))) == 1
}

// Path is the holder's ticket page.
func (l Links) Path(t tenants.Tenant, ticketID uuid.UUID) string {
	return "/tickets/" + ticketID.String() + "?tsig=" + l.Sig(t, ticketID)
}
