package delivery

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/modules/inventory/internal/deps"
	"marquee/tenants"
)

// Service delivers tickets: the mail's PDF and wallet links, the passes
// and the pass web service.
type Service struct {
	d      *deps.Deps
	Apple  *PassSigner   // nil: no Apple Wallet
	Google *GoogleSigner // nil: no Google Wallet
	key    []byte        // signs pass authentication tokens and download links
	// Links names the public paths of an order and its tickets.
	Links Links
}

// Links builds the buyer-facing links of an order (the buyers room signs
// them).
type Links interface {
	OrderPath(t tenants.Tenant, orderID uuid.UUID) string
	OrderSignature(t tenants.Tenant, orderID uuid.UUID) string
}

// New returns the delivery service.
func New(d *deps.Deps, apple *PassSigner, google *GoogleSigner, links Links) *Service {
	return &Service{d: d, Apple: apple, Google: google, key: d.App.SigningKey("inventory wallet passes"), Links: links}
}

// Order is an order's delivery: the event and its tickets.
type Order struct {
	ID      uuid.UUID
	Email   string
	Name    string
	Status  string
	Event   Event
	Tickets []Ticket
}

type ticketRow struct {
	ID      uuid.UUID `gorm:"column:id"`
	OrderID uuid.UUID `gorm:"column:order_id"`
	EventID uuid.UUID `gorm:"column:event_id"`
	Zone    string    `gorm:"column:zone_name"`
	Tier    string    `gorm:"column:tier_name"`
	Seat    *string   `gorm:"column:seat_id"`
	Holder  string    `gorm:"column:holder_name"`
	Status  string    `gorm:"column:status"`
	Token   string    `gorm:"column:token"`
	// OrderStatus voids a ticket of a refunded order whatever its row says.
	OrderStatus string `gorm:"column:order_status"`
}

func (r ticketRow) ticket() Ticket {
	tk := Ticket{ID: r.ID, Token: r.Token, Zone: r.Zone, Tier: r.Tier, Holder: r.Holder, Status: r.Status}
	if r.Seat != nil {
		tk.Seat = *r.Seat
	}
	if r.OrderStatus == "refunded" {
		tk.Status = "void"
	}
	return tk
}

// event reads the event from the calendar, uncached: a pass must show a
// changed time or venue on the next fetch.
func (s *Service) event(ctx context.Context, t tenants.Tenant, id uuid.UUID) (Event, error) {
	ev, err := s.d.App.Events().Event(ctx, t, id)
	if err != nil {
		return Event{}, err
	}
	return Event{ID: ev.ID, Chain: t.Name, Title: ev.Title, Venue: ev.VenueName, Timezone: ev.Timezone, StartsAt: ev.StartsAt, EndsAt: ev.EndsAt,
		Latitude: ev.Latitude, Longitude: ev.Longitude}, nil
}

// Order reads an order's delivery: its event and every ticket it was
// issued (re-issued ones included, void).
func (s *Service) Order(ctx context.Context, t tenants.Tenant, orderID uuid.UUID) (Order, error) {
	var o Order
	var rows []ticketRow
	var orders []struct {
		ID      uuid.UUID `gorm:"column:id"`
		EventID uuid.UUID `gorm:"column:event_id"`
		Email   string    `gorm:"column:email"`
		Name    string    `gorm:"column:name"`
		Status  string    `gorm:"column:status"`
	}
	err := s.d.App.TxWith(ctx, t, tenants.TxOptions{ReadOnly: true}, func(tx *gorm.DB) error {
		if err := tx.Raw(`SELECT id, event_id, email, name, status FROM inv_orders WHERE id = ?`, orderID).Scan(&orders).Error; err != nil {
			return err
		}
		return tx.Raw(`SELECT tk.id, tk.order_id, tk.event_id, tk.zone_name, tk.tier_name, tk.seat_id, tk.holder_name, tk.status, tk.token, o.status AS order_status
			FROM inv_tickets tk JOIN inv_orders o ON o.id = tk.order_id WHERE tk.order_id = ? ORDER BY tk.seat_id NULLS LAST, tk.id`, orderID).Scan(&rows).Error
	})
	if err != nil {
		return o, err
	}
	if len(orders) == 0 {
		return o, app.NotFound("order")
	}
	o = Order{ID: orderID, Email: orders[0].Email, Name: orders[0].Name, Status: orders[0].Status}
	if o.Event, err = s.event(ctx, t, orders[0].EventID); err != nil {
		return o, err
	}
	for _, r := range rows {
		o.Tickets = append(o.Tickets, r.ticket())
	}
	return o, nil
}

// PDF renders an order's tickets.
func (s *Service) PDF(ctx context.Context, t tenants.Tenant, orderID uuid.UUID) ([]byte, error) {
	o, err := s.Order(ctx, t, orderID)
	if err != nil {
		return nil, err
	}
	return TicketsPDF(o.Event, o.ID, o.Tickets, s.d.App.Now())
}

// Compose is the tickets mail's composer: the PDF of all the order's
// tickets, and an HTML part with a link per ticket to add it to each wallet.
func (s *Service) Compose(base func(t tenants.Tenant) string, google func(ctx context.Context, t tenants.Tenant, ticketID uuid.UUID) string) app.MailComposer {
	return func(ctx context.Context, t tenants.Tenant, m app.QueuedMail) (app.ComposedMail, error) {
		orderID, err := uuid.Parse(m.Ref)
		if err != nil {
			return app.ComposedMail{}, fmt.Errorf("tickets mail for %q: not an order", m.Ref)
		}
		o, err := s.Order(ctx, t, orderID)
		if err != nil {
			return app.ComposedMail{}, err
		}
		pdf, err := TicketsPDF(o.Event, o.ID, o.Tickets, s.d.App.Now())
		if err != nil {
			return app.ComposedMail{}, err
		}
		html, err := s.mailHTML(t, base(t), o, func(id uuid.UUID) string { return google(ctx, t, id) })
		if err != nil {
			return app.ComposedMail{}, err
		}
		return app.ComposedMail{HTML: html, Attachments: []app.MailAttachment{{Name: "tickets-" + o.ID.String()[:8] + ".pdf", ContentType: "application/pdf", Data: pdf}}}, nil
	}
}

// PassToken is the authentication token of a pass: derived from its
// serial, so nothing is stored and it never changes (Apple allows no
// change to it).
func (s *Service) PassToken(t tenants.Tenant, serial uuid.UUID) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte("pass\x00" + t.Slug + "\x00" + serial.String()))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// PassTokenOK checks an "ApplePass <token>" header for a pass.
func (s *Service) PassTokenOK(t tenants.Tenant, serial uuid.UUID, header string) bool {
	tok, ok := strings.CutPrefix(header, "ApplePass ")
	return ok && subtle.ConstantTimeCompare([]byte(tok), []byte(s.PassToken(t, serial))) == 1
}

// ErrNoWallet answers when wallet signing is not configured.
var ErrNoWallet = app.Unavailable("wallet_not_configured", time.Hour, "wallet passes are not set up for this deployment")

// PassResult is a built pass and when its content last changed.
type PassResult struct {
	Pkpass   []byte
	Modified time.Time
}

// ticket reads one ticket (a pass's serial).
func (s *Service) ticket(ctx context.Context, t tenants.Tenant, serial uuid.UUID) (ticketRow, error) {
	var rows []ticketRow
	err := s.d.App.TxWith(ctx, t, tenants.TxOptions{ReadOnly: true}, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT tk.id, tk.order_id, tk.event_id, tk.zone_name, tk.tier_name, tk.seat_id, tk.holder_name, tk.status, tk.token, o.status AS order_status
			FROM inv_tickets tk JOIN inv_orders o ON o.id = tk.order_id WHERE tk.id = ?`, serial).Scan(&rows).Error
	})
	if err == nil && len(rows) == 0 {
		err = app.NotFound("pass")
	}
	if err != nil {
		return ticketRow{}, err
	}
	return rows[0], nil
}

// pass builds a ticket's pass description as it is now.
func (s *Service) pass(ctx context.Context, t tenants.Tenant, base string, serial uuid.UUID) (Pass, error) {
	r, err := s.ticket(ctx, t, serial)
	if err != nil {
		return Pass{}, err
	}
	ev, err := s.event(ctx, t, r.EventID)
	if err != nil {
		return Pass{}, err
	}
	tk := r.ticket()
	return Pass{Serial: serial.String(), AuthToken: s.PassToken(t, serial), WebServiceURL: base + "/api/v1/wallet",
		Event: ev, Ticket: tk, Voided: tk.Status != "valid"}, nil
}

// Refresh records a pass's current content: its modification time moves
// only when the content changed (the event's time or venue, the ticket
// voided by a transfer, resale or refund). It answers that time.
func (s *Service) Refresh(ctx context.Context, t tenants.Tenant, base string, serial uuid.UUID) (Pass, time.Time, error) {
	if s.Apple == nil {
		return Pass{}, time.Time{}, ErrNoWallet
	}
	p, err := s.pass(ctx, t, base, serial)
	if err != nil {
		return Pass{}, time.Time{}, err
	}
	body, err := s.Apple.PassJSON(p)
	if err != nil {
		return Pass{}, time.Time{}, err
	}
	sum := sha256.Sum256(body)
	fp := hex.EncodeToString(sum[:])
	var at []time.Time
	err = s.d.App.Tx(ctx, t, func(tx *gorm.DB) error {
		// The conditional upsert decides: the time moves once per change.
		if err := tx.Raw(`INSERT INTO inv_wallet_passes (serial, fingerprint, modified_at) VALUES (?, ?, clock_timestamp())
			ON CONFLICT (serial) DO UPDATE SET fingerprint = EXCLUDED.fingerprint, modified_at = greatest(clock_timestamp(), inv_wallet_passes.modified_at + interval '1 microsecond')
			WHERE inv_wallet_passes.fingerprint <> EXCLUDED.fingerprint RETURNING modified_at`, serial, fp).Scan(&at).Error; err != nil {
			return err
		}
		if len(at) == 0 {
			return tx.Raw(`SELECT modified_at FROM inv_wallet_passes WHERE serial = ?`, serial).Scan(&at).Error
		}
		return nil
	})
	if err != nil {
		return Pass{}, time.Time{}, err
	}
	return p, at[0].UTC(), nil
}

// Pkpass builds a ticket's signed pass as it is now.
func (s *Service) Pkpass(ctx context.Context, t tenants.Tenant, base string, serial uuid.UUID) (PassResult, error) {
	p, at, err := s.Refresh(ctx, t, base, serial)
	if err != nil {
		return PassResult{}, err
	}
	b, err := s.Apple.Build(p)
	return PassResult{Pkpass: b, Modified: at}, err
}

// Register records a device's registration for a pass's updates; it
// answers whether it is new.
func (s *Service) Register(ctx context.Context, t tenants.Tenant, device, passType string, serial uuid.UUID, pushToken string) (bool, error) {
	if _, err := s.ticket(ctx, t, serial); err != nil {
		return false, err
	}
	var n int64
	err := s.d.App.Tx(ctx, t, func(tx *gorm.DB) error {
		res := tx.Exec(`INSERT INTO inv_wallet_registrations (device_id, pass_type_id, serial, push_token) VALUES (?, ?, ?, ?)
			ON CONFLICT (device_id, pass_type_id, serial) DO UPDATE SET push_token = EXCLUDED.push_token
			WHERE inv_wallet_registrations.push_token <> EXCLUDED.push_token`, device, passType, serial, pushToken)
		n = res.RowsAffected
		if res.Error != nil {
			return res.Error
		}
		var fresh []bool
		if err := tx.Raw(`SELECT created_at = now() FROM inv_wallet_registrations WHERE device_id = ? AND pass_type_id = ? AND serial = ?`, device, passType, serial).Scan(&fresh).Error; err != nil {
			return err
		}
		if len(fresh) == 1 && !fresh[0] {
			n = 0
		}
		return nil
	})
	return n == 1, err
}

// Unregister forgets a device's registration; it answers whether there was one.
func (s *Service) Unregister(ctx context.Context, t tenants.Tenant, device, passType string, serial uuid.UUID) (bool, error) {
	var n int64
	err := s.d.App.Tx(ctx, t, func(tx *gorm.DB) error {
		res := tx.Exec(`DELETE FROM inv_wallet_registrations WHERE device_id = ? AND pass_type_id = ? AND serial = ?`, device, passType, serial)
		n = res.RowsAffected
		return res.Error
	})
	return n == 1, err
}

// Updated is the answer to a device asking which of its passes changed.
type Updated struct {
	SerialNumbers []string `json:"serialNumbers"`
	LastUpdated   string   `json:"lastUpdated"`
}

// UpdatedSince answers which of the device's passes changed after the tag
// (the lastUpdated of the device's previous ask; empty: all). Each pass is
// refreshed first, so a changed event shows without any hook into the
// calendar's writes.
func (s *Service) UpdatedSince(ctx context.Context, t tenants.Tenant, base, device, passType, since string) (Updated, error) {
	var after time.Time
	if since != "" {
		ns, err := parseTag(since)
		if err != nil {
			return Updated{}, app.InvalidField("invalid_tag", "passesUpdatedSince", "passesUpdatedSince must be a lastUpdated this service answered")
		}
		after = ns
	}
	var serials []uuid.UUID
	if err := s.d.App.TxWith(ctx, t, tenants.TxOptions{ReadOnly: true}, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT serial FROM inv_wallet_registrations WHERE device_id = ? AND pass_type_id = ? ORDER BY serial LIMIT 500`, device, passType).Scan(&serials).Error
	}); err != nil {
		return Updated{}, err
	}
	out := Updated{SerialNumbers: []string{}}
	var last time.Time
	for _, serial := range serials {
		_, at, err := s.Refresh(ctx, t, base, serial)
		var ae *app.Error
		if errors.As(err, &ae) && ae.Kind == app.KindNotFound {
			continue
		}
		if err != nil {
			return Updated{}, err
		}
		if at.After(after) {
			out.SerialNumbers = append(out.SerialNumbers, serial.String())
		}
		if at.After(last) {
			last = at
		}
	}
	out.LastUpdated = formatTag(last)
	return out, nil
}

// Tags are microseconds since the epoch: finer than HTTP dates, so two
// changes within a second are both seen.
func formatTag(t time.Time) string { return fmt.Sprintf("%d", t.UnixMicro()) }

func parseTag(s string) (time.Time, error) {
	var us int64
	if _, err := fmt.Sscanf(s, "%d", &us); err != nil || us < 0 || fmt.Sprintf("%d", us) != s {
		return time.Time{}, errors.New("bad tag")
	}
	return time.UnixMicro(us), nil
}

// GoogleSaveURL is the link that adds a ticket to Google Wallet.
func (s *Service) GoogleSaveURL(ctx context.Context, t tenants.Tenant, origin string, ticketID uuid.UUID) (string, error) {
	if s.Google == nil {
		return "", ErrNoWallet
	}
	r, err := s.ticket(ctx, t, ticketID)
	if err != nil {
		return "", err
	}
	ev, err := s.event(ctx, t, r.EventID)
	if err != nil {
		return "", err
	}
	tk := r.ticket()
	jwt, err := s.Google.SaveJWT(ev, tk, tk.Status != "valid", origin, s.d.App.Now())
	if err != nil {
		return "", err
	}
	return SaveURL(jwt), nil
}

// TicketLinkSig signs a ticket's wallet download link for the order's buyer.
func (s *Service) TicketLinkSig(t tenants.Tenant, ticketID uuid.UUID) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte("link\x00" + t.Slug + "\x00" + ticketID.String()))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:18])
}

// TicketLinkOK checks a ticket link's signature.
func (s *Service) TicketLinkOK(t tenants.Tenant, ticketID uuid.UUID, sig string) bool {
	return subtle.ConstantTimeCompare([]byte(sig), []byte(s.TicketLinkSig(t, ticketID))) == 1
}

// TicketLinks are the wallet links of one ticket.
func (s *Service) TicketLinks(t tenants.Tenant, base string, ticketID uuid.UUID) (apple, google string) {
	q := "?sig=" + s.TicketLinkSig(t, ticketID)
	if s.Apple != nil {
		apple = base + "/api/v1/tickets/" + ticketID.String() + "/wallet/apple" + q
	}
	if s.Google != nil {
		google = base + "/api/v1/tickets/" + ticketID.String() + "/wallet/google" + q
	}
	return apple, google
}
