// Package resale is the inventory's marketplace for tickets their holders
// cannot use: a listing is capped at what that ticket cost its buyer
// (Ticketmaster's Face Value Exchange: a cap on the tier's current price
// would invite early-bird arbitrage), the cap a chain setting up to
// MaxCapPercent (never uncapped); a buyer reserves a listing with a hold and
// pays through the normal order → PaymentIntent → webhook flow, and the
// payment's one transaction revokes the old ticket, issues the buyer's, and
// writes the seller's payout and the commission to the ledger
// (SettlePayment, called by the orders room).
//
// A listed ticket does not scan (the door answers "listed"), cannot be
// transferred, and is listed at most once (a partial unique index);
// delisting is one conditional update, effective at once.
package resale

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/modules/inventory/internal/deps"
	"marquee/modules/inventory/internal/holds"
	"marquee/modules/inventory/internal/model"
	"marquee/modules/inventory/internal/tickets"
	"marquee/modules/inventory/internal/transfer"
	"marquee/tenants"
)

// Limits of the chain's settings.
const (
	DefaultCapPercent    = 100
	MinCapPercent        = 50
	MaxCapPercent        = 120
	DefaultCommissionBps = 1500
	MaxCommissionBps     = 5000
	// FirstRefusal is how long the waiting list may hold a listing back
	// from the public at most (each entry gets its own offer window).
	FirstRefusal = 24 * time.Hour
)

// Listing states.
const (
	Listed   = "listed"
	Sold     = "sold"
	Delisted = "delisted"
)

// Service is the resale room.
type Service struct {
	d  *deps.Deps
	tk *tickets.Service
	// Kick asks for the event's waiting list to be served after a commit
	// (a listing under first refusal); set by the module.
	Kick func(ctx context.Context, t tenants.Tenant, eventID uuid.UUID)
}

// New returns the resale room.
func New(d *deps.Deps, tk *tickets.Service) *Service { return &Service{d: d, tk: tk} }

// Settings are the chain's resale rules.
type Settings struct {
	CapPercent    int  `json:"cap_percent"`
	CommissionBps int  `json:"commission_bps"`
	WaitlistFirst bool `json:"waitlist_first"`
}

// Validate checks the settings against the platform's limits.
func (s *Settings) Validate() error {
	if s.CapPercent < MinCapPercent || s.CapPercent > MaxCapPercent {
		return model.Invalid("cap_percent", "cap_percent must be %d to %d (percent of what the ticket cost its buyer)", MinCapPercent, MaxCapPercent)
	}
	if s.CommissionBps < 0 || s.CommissionBps > MaxCommissionBps {
		return model.Invalid("commission_bps", "commission_bps must be 0 to %d (basis points of the resale price)", MaxCommissionBps)
	}
	return nil
}

// ReadSettings reads the chain's settings in tx; no row means the defaults.
func ReadSettings(tx *gorm.DB) (Settings, error) {
	var rows []struct {
		Cap        int  `gorm:"column:cap_percent"`
		Commission int  `gorm:"column:commission_bps"`
		First      bool `gorm:"column:waitlist_first"`
	}
	if err := tx.Raw(`SELECT cap_percent, commission_bps, waitlist_first FROM inv_resale_settings WHERE id = 1`).Scan(&rows).Error; err != nil {
		return Settings{}, err
	}
	if len(rows) == 0 {
		return Settings{CapPercent: DefaultCapPercent, CommissionBps: DefaultCommissionBps}, nil
	}
	return Settings{CapPercent: rows[0].Cap, CommissionBps: rows[0].Commission, WaitlistFirst: rows[0].First}, nil
}

// GetSettings reads the chain's settings.
func (s *Service) GetSettings(ctx context.Context, t tenants.Tenant) (Settings, error) {
	var out Settings
	err := s.d.Tx(ctx, t, func(tx *gorm.DB) error {
		var err error
		out, err = ReadSettings(tx)
		return err
	})
	return out, err
}

// SetSettings replaces the chain's settings (listings made before keep the
// cap and commission they were made with).
func (s *Service) SetSettings(ctx context.Context, t tenants.Tenant, in Settings) (Settings, error) {
	if err := in.Validate(); err != nil {
		return Settings{}, err
	}
	err := s.d.Tx(ctx, t, func(tx *gorm.DB) error {
		return tx.Exec(`INSERT INTO inv_resale_settings (id, cap_percent, commission_bps, waitlist_first) VALUES (1, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET cap_percent = EXCLUDED.cap_percent, commission_bps = EXCLUDED.commission_bps,
			waitlist_first = EXCLUDED.waitlist_first, updated_at = now()`, in.CapPercent, in.CommissionBps, in.WaitlistFirst).Error
	})
	return in, err
}

// Listing is a ticket offered for resale.
type Listing struct {
	ID              uuid.UUID  `gorm:"column:id" json:"id"`
	EventID         uuid.UUID  `gorm:"column:event_id" json:"event_id"`
	TierID          uuid.UUID  `gorm:"column:tier_id" json:"tier_id"`
	TierName        string     `gorm:"column:tier_name" json:"tier"`
	ZoneName        string     `gorm:"column:zone_name" json:"zone"`
	SeatID          *string    `gorm:"column:seat_id" json:"seat,omitempty"`
	TicketID        uuid.UUID  `gorm:"column:ticket_id" json:"ticket_id"`
	SellerName      string     `gorm:"column:seller_name" json:"-"`
	SellerEmail     string     `gorm:"column:seller_email" json:"-"`
	PriceMinor      int64      `gorm:"column:price_minor" json:"price"`
	CapMinor        int64      `gorm:"column:cap_minor" json:"cap"`
	Currency        string     `gorm:"column:currency" json:"currency"`
	CommissionBps   int        `gorm:"column:commission_bps" json:"commission_bps"`
	Status          string     `gorm:"column:status" json:"status"`
	HoldID          *uuid.UUID `gorm:"column:hold_id" json:"-"`
	HeldUntil       *time.Time `gorm:"column:held_until" json:"held_until,omitempty"`
	WaitlistUntil   *time.Time `gorm:"column:waitlist_until" json:"waitlist_until,omitempty"`
	BuyerOrderID    *uuid.UUID `gorm:"column:buyer_order_id" json:"-"`
	NewTicketID     *uuid.UUID `gorm:"column:new_ticket_id" json:"-"`
	PayoutMinor     *int64     `gorm:"column:payout_minor" json:"payout,omitempty"`
	CommissionMinor *int64     `gorm:"column:commission_minor" json:"commission,omitempty"`
	CreatedAt       time.Time  `gorm:"column:created_at" json:"created_at"`
	ClosedAt        *time.Time `gorm:"column:closed_at" json:"closed_at,omitempty"`
	// Available: anyone may reserve it now (listed, public, not held).
	Available bool `gorm:"column:available" json:"available"`
}

const listingSelect = `SELECT l.id, l.event_id, l.tier_id, t.tier_name, t.zone_name, t.seat_id, l.ticket_id, l.seller_name, l.seller_email,
	l.price_minor, l.cap_minor, l.currency, l.commission_bps, l.status, l.hold_id, l.held_until, l.waitlist_until, l.buyer_order_id, l.new_ticket_id,
	l.payout_minor, l.commission_minor, l.created_at, l.closed_at,
	(l.status = 'listed' AND (l.waitlist_until IS NULL OR l.waitlist_until <= now()) AND (l.held_until IS NULL OR l.held_until <= now())) AS available
	FROM inv_resale_listings l JOIN inv_tickets t ON t.id = l.ticket_id`

// Errors of the marketplace.
var (
	ErrListedAlready = app.Conflict("ticket_listed", "this ticket is listed for resale already")
	ErrNotListed     = app.Conflict("listing_not_open", "this ticket has no open listing (sold or delisted already)")
	ErrUnavailable   = app.Conflict("listing_unavailable", "this listing is reserved by another buyer, sold or withdrawn")
)

// PaidFor is what a ticket cost its buyer, fees included: its line's share
// of the order's amount (a resale order holds one ticket: all of it).
func PaidFor(tx *gorm.DB, ticketID uuid.UUID) (int64, string, error) {
	var rows []struct {
		Paid     int64  `gorm:"column:paid"`
		Currency string `gorm:"column:currency"`
	}
	// The order's amount split over its tickets in proportion to their
	// prices (no fee is left out, none counted twice); a hold without
	// lines is a resale reservation of one ticket.
	if err := tx.Raw(`SELECT o.currency, floor(CASE WHEN lt.total IS NULL OR lt.total = 0 THEN o.amount_minor / greatest(coalesce(lt.n, 1), 1)
			ELSE (o.amount_minor * coalesce(mine.unit, 0)) / lt.total END)::bigint AS paid
		FROM inv_tickets t JOIN inv_orders o ON o.id = t.order_id
		LEFT JOIN LATERAL (SELECT sum(l.unit_price_minor * l.quantity) AS total, sum(l.quantity) AS n FROM inv_hold_lines l WHERE l.hold_id = o.hold_id) lt ON true
		LEFT JOIN LATERAL (SELECT l.unit_price_minor AS unit FROM inv_hold_lines l WHERE l.hold_id = o.hold_id AND l.tier_id = t.tier_id
			AND l.seat_id IS NOT DISTINCT FROM t.seat_id ORDER BY l.line LIMIT 1) mine ON true
		WHERE t.id = ?`, ticketID).Scan(&rows).Error; err != nil {
		return 0, "", err
	}
	if len(rows) == 0 {
		return 0, "", app.NotFound("ticket")
	}
	return rows[0].Paid, rows[0].Currency, nil
}

// List offers a valid ticket, never used at the door and not listed, at
// price (minor units, the ticket's currency), no more than the cap.
func (s *Service) List(ctx context.Context, t tenants.Tenant, ticketID uuid.UUID, price int64) (Listing, error) {
	if price <= 0 {
		return Listing{}, model.Invalid("price", "price must be a positive amount in minor units")
	}
	var out Listing
	first := false
	err := s.d.Tx(ctx, t, func(tx *gorm.DB) error {
		h, err := transfer.LockHolding(tx, ticketID)
		if err != nil {
			return err
		}
		switch {
		case h.Status != transfer.TicketValid:
			return transfer.NotValid()
		case h.CheckedIn:
			return transfer.ErrCheckedIn
		case h.Listed:
			return ErrListedAlready
		}
		paid, cur, err := PaidFor(tx, ticketID)
		if err != nil {
			return err
		}
		set, err := ReadSettings(tx)
		if err != nil {
			return err
		}
		capMinor := paid * int64(set.CapPercent) / 100
		if capMinor <= 0 {
			return app.Conflict("resale_free_ticket", "a ticket that cost nothing cannot be resold")
		}
		if price > capMinor {
			return app.InvalidField("price_above_cap", "price", "the price may be at most %d %s (%d%% of what this ticket cost)", capMinor, cur, set.CapPercent).
				With("cap", capMinor)
		}
		var waitUntil *time.Time
		if set.WaitlistFirst {
			var waiting bool
			if err := tx.Raw(`SELECT EXISTS (SELECT 1 FROM inv_waitlist WHERE tier_id = ? AND status = 'waiting')`, h.TierID).Row().Scan(&waiting); err != nil {
				return err
			}
			if waiting {
				u := time.Now().Add(FirstRefusal).UTC()
				waitUntil, first = &u, true
			}
		}
		id := uuid.Must(uuid.NewV7())
		if err := tx.Exec(`INSERT INTO inv_resale_listings (id, event_id, tier_id, ticket_id, seller_order_id, seller_name, seller_email,
				price_minor, cap_minor, currency, commission_bps, status, waitlist_until)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'listed', ?)`,
			id, h.EventID, h.TierID, h.ID, h.OrderID, h.HolderName, h.HolderEmail, price, capMinor, cur, set.CommissionBps, waitUntil).Error; err != nil {
			return err
		}
		if err := transfer.Mail(tx, &h.OrderID, h.HolderEmail, "Your ticket is listed for resale",
			fmt.Sprintf("Hello %s,\n\nyour ticket is listed at %s. Until it sells or you delist it, its code does not admit anyone. When it sells, you receive %s.\n",
				h.HolderName, money(price, cur), money(price-price*int64(set.CommissionBps)/10000, cur))); err != nil {
			return err
		}
		out, err = readListing(tx, id, false)
		return err
	})
	if err == nil && first && s.Kick != nil {
		s.Kick(ctx, t, out.EventID)
	}
	return out, err
}

func money(minor int64, cur string) string {
	return fmt.Sprintf("%d.%02d %s", minor/100, minor%100, cur)
}

func readListing(tx *gorm.DB, id uuid.UUID, lock bool) (Listing, error) {
	q := listingSelect + ` WHERE l.id = ?`
	if lock {
		q += ` FOR UPDATE OF l`
	}
	var ls []Listing
	if err := tx.Raw(q, id).Scan(&ls).Error; err != nil {
		return Listing{}, err
	}
	if len(ls) == 0 {
		return Listing{}, app.NotFound("listing")
	}
	return ls[0], nil
}

// Delist withdraws a ticket's open listing at once: the ticket scans
// again; a hold a buyer has on it is released (a payment still arriving
// for it is refunded).
func (s *Service) Delist(ctx context.Context, t tenants.Tenant, ticketID uuid.UUID) (Listing, error) {
	var out Listing
	err := s.d.Tx(ctx, t, func(tx *gorm.DB) error {
		var ids []struct {
			ID     uuid.UUID  `gorm:"column:id"`
			HoldID *uuid.UUID `gorm:"column:hold_id"`
		}
		if err := tx.Raw(`UPDATE inv_resale_listings SET status = 'delisted', closed_at = now() WHERE ticket_id = ? AND status = 'listed'
			RETURNING id, hold_id`, ticketID).Scan(&ids).Error; err != nil {
			return err
		}
		if len(ids) == 0 {
			return ErrNotListed
		}
		if ids[0].HoldID != nil {
			if _, _, err := holds.CloseHold(tx, *ids[0].HoldID, model.HoldReleased, false); err != nil {
				return err
			}
		}
		var err error
		out, err = readListing(tx, ids[0].ID, false)
		return err
	})
	return out, err
}

// Reserve holds an open listing for buyerID until until, in tx: the
// conditional update decides (only a listed one that nobody holds now), so
// of buyers racing for it one gets it. It returns the new hold's id, or
// ok=false. public: the listing must be out of the waiting list's first
// refusal (a waiting-list offer reserves it during it).
func Reserve(tx *gorm.DB, listingID uuid.UUID, buyerID string, until time.Time, public bool) (uuid.UUID, bool, error) {
	holdID := uuid.Must(uuid.NewV7())
	var ls []struct {
		EventID  uuid.UUID `gorm:"column:event_id"`
		Price    int64     `gorm:"column:price_minor"`
		Currency string    `gorm:"column:currency"`
	}
	q := `UPDATE inv_resale_listings SET hold_id = ?, held_until = ? WHERE id = ? AND status = 'listed'
		AND (held_until IS NULL OR held_until <= now())`
	if public {
		q += ` AND (waitlist_until IS NULL OR waitlist_until <= now())`
	}
	if err := tx.Raw(q+` RETURNING event_id, price_minor, currency`, holdID, until, listingID).Scan(&ls).Error; err != nil {
		return uuid.Nil, false, err
	}
	if len(ls) == 0 {
		return uuid.Nil, false, nil
	}
	if err := tx.Exec(`INSERT INTO inv_holds (id, event_id, buyer_id, channel, status, quantity, amount_minor, currency, expires_at)
		VALUES (?, ?, ?, 'web', 'active', 1, ?, ?, ?)`, holdID, ls[0].EventID, buyerID, ls[0].Price, ls[0].Currency, until).Error; err != nil {
		return uuid.Nil, false, err
	}
	if err := tx.Exec(`INSERT INTO inv_resale_holds (hold_id, listing_id) VALUES (?, ?)`, holdID, listingID).Error; err != nil {
		return uuid.Nil, false, err
	}
	return holdID, true, nil
}

// Buy reserves a public listing for a buyer for the event's hold time: the
// hold goes through POST /orders like any other.
func (s *Service) Buy(ctx context.Context, t tenants.Tenant, listingID uuid.UUID, buyerID string) (model.Hold, error) {
	var out model.Hold
	err := s.d.Tx(ctx, t, func(tx *gorm.DB) error {
		l, err := readListing(tx, listingID, false)
		if err != nil {
			return err
		}
		var minutes int
		if err := tx.Raw(`SELECT coalesce((SELECT hold_minutes FROM inv_events WHERE event_id = ?), 10)`, l.EventID).Row().Scan(&minutes); err != nil {
			return err
		}
		id, ok, err := Reserve(tx, listingID, buyerID, time.Now().Add(time.Duration(minutes)*time.Minute).UTC(), true)
		if err != nil {
			return err
		}
		if !ok {
			return ErrUnavailable
		}
		out, err = holds.ReadHold(tx, id)
		return err
	})
	return out, err
}

// ForEvent lists an event's listings: open ones (public: only those anyone
// may reserve now), newest first; all, for staff.
func (s *Service) ForEvent(ctx context.Context, t tenants.Tenant, eventID uuid.UUID, public bool) ([]Listing, error) {
	out := []Listing{}
	q := listingSelect + ` WHERE l.event_id = ?`
	if public {
		q += ` AND l.status = 'listed' AND t.status = 'valid' AND (l.waitlist_until IS NULL OR l.waitlist_until <= now()) AND (l.held_until IS NULL OR l.held_until <= now())`
	}
	err := s.d.Tx(ctx, t, func(tx *gorm.DB) error {
		return tx.Raw(q+` ORDER BY l.created_at DESC, l.id DESC LIMIT 500`, eventID).Scan(&out).Error
	})
	return out, err
}

// OpenFor reads the open listing of each of the given tickets (order pages
// show Delist instead of List).
func (s *Service) OpenFor(ctx context.Context, t tenants.Tenant, ticketIDs []uuid.UUID) (map[uuid.UUID]Listing, error) {
	out := map[uuid.UUID]Listing{}
	if len(ticketIDs) == 0 {
		return out, nil
	}
	var ls []Listing
	err := s.d.Tx(ctx, t, func(tx *gorm.DB) error {
		return tx.Raw(listingSelect+` WHERE l.ticket_id IN ? AND l.status = 'listed'`, ticketIDs).Scan(&ls).Error
	})
	for _, l := range ls {
		out[l.TicketID] = l
	}
	return out, err
}

// SettlePayment settles, inside the payment's transaction tx, an order
// whose hold reserved a listing: handled=false for any other order. If the
// listing is still the buyer's to buy (listed, and reserved by this hold or
// by nobody now), in this one transaction: the order paid, the hold sold,
// the seller's ticket revoked and the buyer's issued (tickets.Reissue into
// the buyer's order), the listing sold, the seller's payout and the
// commission on the ledger, both told. Otherwise refund says why the
// payment is to be refunded (the orders room does that).
func (s *Service) SettlePayment(ctx context.Context, t tenants.Tenant, tx *gorm.DB, o model.Order, paymentIntentID string) (handled bool, outcome, refund string, err error) {
	var lid []uuid.UUID
	if err := tx.Raw(`SELECT listing_id FROM inv_resale_holds WHERE hold_id = ?`, o.HoldID).Scan(&lid).Error; err != nil || len(lid) == 0 {
		return false, "", "", err
	}
	if o.Status == model.OrderPaid || o.Status == model.OrderRefunded {
		return true, "duplicate", "", nil
	}
	l, err := readListing(tx, lid[0], true)
	if err != nil {
		return true, "", "", err
	}
	mine := l.Status == Listed && (l.HeldUntil == nil || !l.HeldUntil.After(time.Now()) || (l.HoldID != nil && *l.HoldID == o.HoldID))
	if !mine {
		return true, "", "the ticket you reserved was sold to someone else or withdrawn before your payment arrived", nil
	}
	if err := tx.SavePoint("resale_settle").Error; err != nil {
		return true, "", "", err
	}
	yes := true
	nt, err := s.tk.Reissue(ctx, t, tx, l.TicketID, tickets.Holder{Name: o.Name, Email: o.Email, OrderID: o.ID, Transferable: &yes})
	var ae *app.Error
	if errors.As(err, &ae) && ae.Code == "ticket_not_valid" {
		// The seller's ticket was voided (its order refunded) under the
		// listing: nothing to sell.
		if err := tx.RollbackTo("resale_settle").Error; err != nil {
			return true, "", "", err
		}
		return true, "", "the ticket you reserved is no longer valid", nil
	}
	if err != nil {
		return true, "", "", err
	}
	if err := tx.Exec(`UPDATE inv_orders SET status = 'paid', paid_at = now(), closed_at = NULL, payment_intent_id = coalesce(NULLIF(?, ''), payment_intent_id)
		WHERE id = ?`, paymentIntentID, o.ID).Error; err != nil {
		return true, "", "", err
	}
	// A lapsed reservation is honoured when nobody else holds the listing
	// now (checked above): the hold is sold whatever state it reached.
	if err := tx.Exec(`UPDATE inv_holds SET status = 'sold', closed_at = now() WHERE id = ?`, o.HoldID).Error; err != nil {
		return true, "", "", err
	}
	commission := l.PriceMinor * int64(l.CommissionBps) / 10000
	payout := l.PriceMinor - commission
	if err := tx.Exec(`UPDATE inv_resale_listings SET status = 'sold', closed_at = now(), hold_id = ?, buyer_order_id = ?, new_ticket_id = ?,
		payout_minor = ?, commission_minor = ? WHERE id = ?`, o.HoldID, o.ID, nt.ID, payout, commission, l.ID).Error; err != nil {
		return true, "", "", err
	}
	if err := tx.Exec(`UPDATE inv_waitlist SET status = 'accepted', closed_at = now() WHERE hold_id = ? AND status IN ('offered', 'lapsed')`, o.HoldID).Error; err != nil {
		return true, "", "", err
	}
	if err := transfer.Mail(tx, &o.ID, o.Email, "Your ticket",
		fmt.Sprintf("Hello %s,\n\nyour payment was received and your resale ticket (%s) is ready.\n", o.Name, nt.TierName)); err != nil {
		return true, "", "", err
	}
	if err := transfer.Mail(tx, nil, l.SellerEmail, "Your ticket was sold",
		fmt.Sprintf("Hello %s,\n\nyour listed ticket sold for %s; %s is paid out to you (commission %s). Your old code no longer admits anyone.\n",
			l.SellerName, money(l.PriceMinor, l.Currency), money(payout, l.Currency), money(commission, l.Currency))); err != nil {
		return true, "", "", err
	}
	ref := "resale:" + l.ID.String()
	memo := fmt.Sprintf("ticket %s resold to order %s, payment %s", l.TicketID, o.ID, paymentIntentID)
	if _, err := s.d.App.Ledger.Append(tx, "resale.payout", ref, payout, l.Currency, "owed to the seller: "+memo); err != nil {
		return true, "", "", err
	}
	if _, err := s.d.App.Ledger.Append(tx, "resale.commission", ref, commission, l.Currency, fmt.Sprintf("commission %d bps: %s", l.CommissionBps, memo)); err != nil {
		return true, "", "", err
	}
	return true, "resale", "", nil
}
