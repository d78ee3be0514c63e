// Package waitlist keeps a waiting list per tier and hands capacity that
// comes back (a hold expired or released, an order refunded or cancelled, a
// resale listing) to it strictly in join order.
//
// An offer is a real hold: the units are taken from the tier's pool (and
// the web quota) with the take every hold uses, under the counters' CHECK
// (held + sold <= capacity), so a unit can be in one offer or one hold at
// most, and a release is counted once however many runs see it. Offers are
// made by Serve, one run per tier at a time (the tier's line row locked),
// reading the free units the counters show: that is what makes concurrent
// releases and concurrent runs safe (Hi.Events #1072 counted a release
// twice; pretix #1238 mass-issued offers). Joins lock the same row, so
// places are numbered in commit order and a run never sees place 5 before
// place 4 has committed (pretix #2119 served the last in line first). An
// offer nobody takes lapses with its hold (the expiry task and sweep), and
// the next run offers the units to the next in line.
package waitlist

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
	"marquee/modules/inventory/internal/catalogue"
	"marquee/modules/inventory/internal/deps"
	"marquee/modules/inventory/internal/holds"
	"marquee/modules/inventory/internal/model"
	"marquee/modules/inventory/internal/resale"
	"marquee/modules/inventory/internal/stock"
	"marquee/modules/inventory/internal/transfer"
	"marquee/tenants"
)

// Entry states.
const (
	Waiting  = "waiting"
	Offered  = "offered"
	Accepted = "accepted"
	Lapsed   = "lapsed"
	Left     = "left"
)

// DefaultOfferMinutes is how long an offer is held unless the event says.
const DefaultOfferMinutes = 30

// Service is the waiting-list room.
type Service struct {
	d     *deps.Deps
	stock *stock.Service
	key   []byte
	// Link builds an entry's signed page (set by the module).
	Link func(t tenants.Tenant, entryID uuid.UUID) string
}

// New returns the waiting-list room.
func New(d *deps.Deps, st *stock.Service) *Service {
	return &Service{d: d, stock: st, key: d.App.SigningKey("inventory/waitlist-link"),
		Link: func(_ tenants.Tenant, id uuid.UUID) string { return "/waitlist/" + id.String() }}
}

// Sig signs an entry id: the entry's link is what lets its person see
// their place, take their offer or leave.
func (s *Service) Sig(t tenants.Tenant, entryID uuid.UUID) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(t.Slug + "\x00" + entryID.String()))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// SigOK checks an entry link's signature.
func (s *Service) SigOK(t tenants.Tenant, entryID uuid.UUID, sig string) bool {
	return sig != "" && subtle.ConstantTimeCompare([]byte(sig), []byte(s.Sig(t, entryID))) == 1
}

// BuyerID is the buyer an entry's offer hold belongs to.
func BuyerID(entryID uuid.UUID) string { return "waitlist:" + entryID.String() }

// Entry is one place in a tier's line.
type Entry struct {
	ID             uuid.UUID  `gorm:"column:id" json:"id"`
	EventID        uuid.UUID  `gorm:"column:event_id" json:"event_id"`
	TierID         uuid.UUID  `gorm:"column:tier_id" json:"tier_id"`
	TierName       string     `gorm:"column:tier_name" json:"tier"`
	Seq            int64      `gorm:"column:seq" json:"seq"`
	Email          string     `gorm:"column:email" json:"email"`
	Quantity       int        `gorm:"column:quantity" json:"quantity"`
	Status         string     `gorm:"column:status" json:"status"`
	HoldID         *uuid.UUID `gorm:"column:hold_id" json:"hold_id,omitempty"`
	ListingID      *uuid.UUID `gorm:"column:listing_id" json:"listing_id,omitempty"`
	OfferedAt      *time.Time `gorm:"column:offered_at" json:"offered_at,omitempty"`
	OfferExpiresAt *time.Time `gorm:"column:offer_expires_at" json:"offer_expires_at,omitempty"`
	CreatedAt      time.Time  `gorm:"column:created_at" json:"created_at"`
	// Position is the place in line among those still waiting (1: next);
	// 0 once the entry is not waiting.
	Position int `gorm:"column:position" json:"position"`
}

const entrySelect = `SELECT w.id, w.event_id, w.tier_id, t.name AS tier_name, w.seq, w.email, w.quantity, w.status, w.hold_id, w.listing_id,
	w.offered_at, w.offer_expires_at, w.created_at,
	CASE WHEN w.status = 'waiting' THEN (SELECT count(*) FROM inv_waitlist x WHERE x.tier_id = w.tier_id AND x.status = 'waiting' AND x.seq <= w.seq) ELSE 0 END AS position
	FROM inv_waitlist w JOIN inv_tiers t ON t.id = w.tier_id`

// JoinRequest is a place asked for.
type JoinRequest struct {
	TierID   string `json:"tier_id"`
	Email    string `json:"email"`
	Quantity int    `json:"quantity"`
}

// Validate trims and checks the request.
func (r *JoinRequest) Validate() error {
	r.Email = strings.TrimSpace(r.Email)
	if _, err := uuid.Parse(r.TierID); err != nil {
		return model.Invalid("tier_id", "tier_id must be the UUID of one of the event's tiers")
	}
	if addr, err := mail.ParseAddress(r.Email); err != nil || addr.Address != r.Email || len(r.Email) > 254 {
		return model.Invalid("email", "email address is not valid")
	}
	if r.Quantity < 1 || r.Quantity > 10 {
		return model.Invalid("quantity", "quantity must be 1 to 10")
	}
	return nil
}

type tierFacts struct {
	ZoneID      uuid.UUID `gorm:"column:zone_id"`
	Kind        string    `gorm:"column:kind"`
	Price       int64     `gorm:"column:price_minor"`
	Currency    string    `gorm:"column:currency"`
	MaxPerOrder int       `gorm:"column:max_per_order"`
	Name        string    `gorm:"column:name"`
}

func readTier(tx *gorm.DB, eventID, tierID uuid.UUID) (tierFacts, error) {
	var ts []tierFacts
	if err := tx.Raw(`SELECT t.zone_id, z.kind, t.price_minor, t.currency, t.max_per_order, t.name FROM inv_tiers t JOIN inv_zones z ON z.id = t.zone_id
		WHERE t.id = ? AND t.event_id = ?`, tierID, eventID).Scan(&ts).Error; err != nil {
		return tierFacts{}, err
	}
	if len(ts) == 0 {
		return tierFacts{}, app.NotFound("tier")
	}
	return ts[0], nil
}

// freeUnits is what the tier's pool has free now (committed).
func freeUnits(tx *gorm.DB, zoneID uuid.UUID) (int, error) {
	var n int
	err := tx.Raw(`SELECT coalesce(sum(s.capacity - s.held - s.sold), 0) FROM inv_counter_shards s JOIN inv_counters c ON c.id = s.counter_id
		WHERE c.kind = 'pool' AND c.zone_id = ?`, zoneID).Row().Scan(&n)
	return n, err
}

// Join puts an e-mail address in a GA tier's line for quantity tickets.
// The tier's line row is locked first: places are numbered and committed
// in one order. A tier with tickets on sale and nobody waiting answers 409
// tier_available (buy them instead); an address already in the line 409
// waitlist_joined.
func (s *Service) Join(ctx context.Context, t tenants.Tenant, eventID uuid.UUID, in JoinRequest) (Entry, error) {
	if err := in.Validate(); err != nil {
		return Entry{}, err
	}
	tierID := uuid.MustParse(in.TierID)
	var out Entry
	err := s.d.Tx(ctx, t, func(tx *gorm.DB) error {
		tf, err := readTier(tx, eventID, tierID)
		if err != nil {
			return err
		}
		if cancelled, err := catalogue.EventCancelled(tx, eventID); err != nil || cancelled {
			if err == nil {
				err = app.Gone("event_cancelled", "the event was cancelled")
			}
			return err
		}
		if tf.Kind != model.KindGA {
			return model.Invalid("tier_id", "the waiting list is for general-admission tiers")
		}
		if in.Quantity > tf.MaxPerOrder {
			return model.Invalid("quantity", "at most %d tickets of this tier per order", tf.MaxPerOrder)
		}
		var seq int64
		if err := tx.Raw(`INSERT INTO inv_waitlist_tiers AS w (tier_id, event_id, next_seq) VALUES (?, ?, 2)
			ON CONFLICT (tier_id) DO UPDATE SET next_seq = w.next_seq + 1 RETURNING next_seq - 1`, tierID, eventID).Row().Scan(&seq); err != nil {
			return err
		}
		var dup, waiting bool
		if err := tx.Raw(`SELECT EXISTS (SELECT 1 FROM inv_waitlist WHERE tier_id = ? AND lower(email) = lower(?) AND status IN ('waiting', 'offered')),
				EXISTS (SELECT 1 FROM inv_waitlist WHERE tier_id = ? AND status = 'waiting')`, tierID, in.Email, tierID).Row().Scan(&dup, &waiting); err != nil {
			return err
		}
		if dup {
			return app.Conflict("waitlist_joined", "this address is in the tier's waiting list already")
		}
		if !waiting {
			free, err := freeUnits(tx, tf.ZoneID)
			if err != nil {
				return err
			}
			if free >= in.Quantity {
				return app.Conflict("tier_available", "this tier has tickets on sale now; buy them instead")
			}
		}
		id := uuid.Must(uuid.NewV7())
		if err := tx.Exec(`INSERT INTO inv_waitlist (id, event_id, tier_id, seq, email, quantity, status) VALUES (?, ?, ?, ?, ?, ?, 'waiting')`,
			id, eventID, tierID, seq, in.Email, in.Quantity).Error; err != nil {
			return err
		}
		if err := transfer.Mail(tx, nil, in.Email, "You are on the waiting list",
			fmt.Sprintf("Hello,\n\nyou are on the waiting list for %d × %s. When tickets come back you get an offer held for you; your place:\n%s\n",
				in.Quantity, tf.Name, s.Link(t, id))); err != nil {
			return err
		}
		out, err = readEntry(tx, id)
		return err
	})
	return out, err
}

func readEntry(tx *gorm.DB, id uuid.UUID) (Entry, error) {
	var es []Entry
	if err := tx.Raw(entrySelect+` WHERE w.id = ?`, id).Scan(&es).Error; err != nil {
		return Entry{}, err
	}
	if len(es) == 0 {
		return Entry{}, app.NotFound("waitlist entry")
	}
	return es[0], nil
}

// Get reads an entry with its place in line.
func (s *Service) Get(ctx context.Context, t tenants.Tenant, id uuid.UUID) (Entry, error) {
	var out Entry
	err := s.d.Tx(ctx, t, func(tx *gorm.DB) error {
		var err error
		out, err = readEntry(tx, id)
		return err
	})
	return out, err
}

// ForEvent lists an event's entries in line order per tier.
func (s *Service) ForEvent(ctx context.Context, t tenants.Tenant, eventID uuid.UUID) ([]Entry, error) {
	out := []Entry{}
	err := s.d.Tx(ctx, t, func(tx *gorm.DB) error {
		return tx.Raw(entrySelect+` WHERE w.event_id = ? ORDER BY t.sort, t.name, w.seq LIMIT 2000`, eventID).Scan(&out).Error
	})
	return out, err
}

// Leave takes an entry out of the line; an open offer's hold is released
// (its units go to the next in line).
func (s *Service) Leave(ctx context.Context, t tenants.Tenant, id uuid.UUID) (Entry, error) {
	var out Entry
	err := s.d.Tx(ctx, t, func(tx *gorm.DB) error {
		var rows []struct {
			HoldID *uuid.UUID `gorm:"column:hold_id"`
		}
		if err := tx.Raw(`UPDATE inv_waitlist SET status = 'left', closed_at = now() WHERE id = ? AND status IN ('waiting', 'offered') RETURNING hold_id`, id).
			Scan(&rows).Error; err != nil {
			return err
		}
		if len(rows) == 0 {
			if _, err := readEntry(tx, id); err != nil {
				return err
			}
			return app.Conflict("waitlist_closed", "this entry is not waiting any more (its offer was taken or lapsed)")
		}
		if rows[0].HoldID != nil {
			if _, _, err := holds.CloseHold(tx, *rows[0].HoldID, model.HoldReleased, false); err != nil {
				return err
			}
		}
		var err error
		out, err = readEntry(tx, id)
		return err
	})
	return out, err
}

// OfferMinutes reads an event's offer window.
func (s *Service) OfferMinutes(ctx context.Context, t tenants.Tenant, eventID uuid.UUID) (int, error) {
	n := DefaultOfferMinutes
	err := s.d.Tx(ctx, t, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT coalesce((SELECT offer_minutes FROM inv_waitlist_settings WHERE event_id = ?), ?)`, eventID, DefaultOfferMinutes).Row().Scan(&n)
	})
	return n, err
}

// SetOfferMinutes sets an event's offer window (offers made from then on).
func (s *Service) SetOfferMinutes(ctx context.Context, t tenants.Tenant, eventID uuid.UUID, minutes int) error {
	if minutes < 5 || minutes > 2880 {
		return model.Invalid("offer_minutes", "offer_minutes must be 5 to 2880")
	}
	return s.d.Tx(ctx, t, func(tx *gorm.DB) error {
		return tx.Exec(`INSERT INTO inv_waitlist_settings (event_id, offer_minutes) VALUES (?, ?)
			ON CONFLICT (event_id) DO UPDATE SET offer_minutes = EXCLUDED.offer_minutes, updated_at = now()`, eventID, minutes).Error
	})
}

// Served is what one run did.
type Served struct {
	Offers int
	Events []uuid.UUID
}

// ServeTenant runs Serve for every event with a line that may have
// something to do (waiting entries, or offers whose hold ended).
func (s *Service) ServeTenant(ctx context.Context, t tenants.Tenant) (int, error) {
	var events []uuid.UUID
	if err := s.d.Tx(ctx, t, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT DISTINCT event_id FROM inv_waitlist WHERE status IN ('waiting', 'offered')`).Scan(&events).Error
	}); err != nil {
		return 0, err
	}
	n := 0
	for _, ev := range events {
		k, err := s.Serve(ctx, t, ev)
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// Serve makes the offers an event's lines are owed now, one transaction
// per tier: it closes offers whose hold ended (taken: accepted; else
// lapsed), then, in place order, offers each waiting entry its quantity
// from the free units, stopping at the first it cannot serve whole (strict
// FIFO: nobody behind is served before them); then resale listings under
// the waiting list's first refusal go to the next in line one at a time.
func (s *Service) Serve(ctx context.Context, t tenants.Tenant, eventID uuid.UUID) (int, error) {
	var tiers []uuid.UUID
	if err := s.d.Tx(ctx, t, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT tier_id FROM inv_waitlist_tiers WHERE event_id = ? ORDER BY tier_id`, eventID).Scan(&tiers).Error
	}); err != nil {
		return 0, err
	}
	total := 0
	for _, tier := range tiers {
		n := 0
		err := s.d.Tx(ctx, t, func(tx *gorm.DB) error {
			var err error
			n, err = s.serveTier(ctx, t, tx, eventID, tier)
			return err
		})
		if err != nil {
			return total, err
		}
		total += n
	}
	if total > 0 {
		s.stock.Changed(ctx, t, eventID, nil)
	}
	return total, nil
}

func (s *Service) serveTier(_ context.Context, t tenants.Tenant, tx *gorm.DB, eventID, tierID uuid.UUID) (int, error) {
	// One run per tier at a time, after every join that committed.
	if err := tx.Exec(`SELECT 1 FROM inv_waitlist_tiers WHERE tier_id = ? FOR UPDATE`, tierID).Error; err != nil {
		return 0, err
	}
	if cancelled, err := catalogue.EventCancelled(tx, eventID); err != nil || cancelled {
		return 0, err // nothing is offered for a cancelled event
	}
	if err := tx.Exec(`UPDATE inv_waitlist w SET status = CASE WHEN h.status = 'sold' THEN 'accepted' ELSE 'lapsed' END, closed_at = now()
		FROM inv_holds h WHERE w.tier_id = ? AND w.status = 'offered' AND h.id = w.hold_id AND h.status <> 'active'`, tierID).Error; err != nil {
		return 0, err
	}
	var entries []Entry
	if err := tx.Raw(`SELECT id, quantity, email, seq FROM inv_waitlist WHERE tier_id = ? AND status = 'waiting' ORDER BY seq LIMIT 100`, tierID).
		Scan(&entries).Error; err != nil {
		return 0, err
	}
	if len(entries) == 0 {
		return 0, publishListings(tx, tierID)
	}
	tf, err := readTier(tx, eventID, tierID)
	if err != nil {
		return 0, err
	}
	minutes := DefaultOfferMinutes
	if err := tx.Raw(`SELECT coalesce((SELECT offer_minutes FROM inv_waitlist_settings WHERE event_id = ?), ?)`, eventID, DefaultOfferMinutes).Row().Scan(&minutes); err != nil {
		return 0, err
	}
	var pool, quota []uuid.UUID
	if err := tx.Raw(`SELECT id FROM inv_counters WHERE kind = 'pool' AND zone_id = ?`, tf.ZoneID).Scan(&pool).Error; err != nil || len(pool) == 0 {
		return 0, err
	}
	if err := tx.Raw(`SELECT id FROM inv_counters WHERE event_id = ? AND kind = 'quota' AND channel = 'web'`, eventID).Scan(&quota).Error; err != nil {
		return 0, err
	}
	offers := 0
	// First refusal of resale listings: one listing to the head of the
	// line at a time (the listing is one ticket; the entry is offered it
	// whatever quantity it asked for).
	var listings []uuid.UUID
	if err := tx.Raw(`SELECT id FROM inv_resale_listings WHERE tier_id = ? AND status = 'listed' AND waitlist_until > now()
		AND (held_until IS NULL OR held_until <= now()) ORDER BY created_at`, tierID).Scan(&listings).Error; err != nil {
		return 0, err
	}
	for _, e := range entries {
		until := time.Now().Add(time.Duration(minutes) * time.Minute).UTC()
		var holdID uuid.UUID
		var listing *uuid.UUID
		if len(listings) > 0 {
			id, ok, err := resale.Reserve(tx, listings[0], BuyerID(e.ID), until, false)
			if err != nil {
				return offers, err
			}
			if ok {
				holdID, listing = id, &listings[0]
			}
			listings = listings[1:]
		}
		if listing == nil {
			if err := tx.SavePoint("waitlist_offer").Error; err != nil {
				return offers, err
			}
			allocs, ok, _, err := stock.TakeUnits(tx, pool[0], e.Quantity, stock.ColHeld)
			if err != nil {
				return offers, err
			}
			if ok && len(quota) == 1 {
				var more []stock.Alloc
				more, ok, _, err = stock.TakeUnits(tx, quota[0], e.Quantity, stock.ColHeld)
				if err != nil {
					return offers, err
				}
				allocs = append(allocs, more...)
			}
			if !ok {
				// Not enough for the head of the line: nobody behind it
				// is served first.
				if err := tx.RollbackTo("waitlist_offer").Error; err != nil {
					return offers, err
				}
				break
			}
			holdID = uuid.Must(uuid.NewV7())
			if err := tx.Exec(`INSERT INTO inv_holds (id, event_id, buyer_id, channel, status, quantity, amount_minor, currency, expires_at)
				VALUES (?, ?, ?, 'web', 'active', ?, ?, ?, ?)`, holdID, eventID, BuyerID(e.ID), e.Quantity, tf.Price*int64(e.Quantity), tf.Currency, until).Error; err != nil {
				return offers, err
			}
			if err := tx.Exec(`INSERT INTO inv_hold_lines (hold_id, line, tier_id, zone_id, seat_id, quantity, unit_price_minor) VALUES (?, 1, ?, ?, NULL, ?, ?)`,
				holdID, tierID, tf.ZoneID, e.Quantity, tf.Price).Error; err != nil {
				return offers, err
			}
			if err := stock.SaveAllocs(tx, holdID, allocs); err != nil {
				return offers, err
			}
		}
		res := tx.Exec(`UPDATE inv_waitlist SET status = 'offered', hold_id = ?, listing_id = ?, offered_at = now(), offer_expires_at = ?
			WHERE id = ? AND status = 'waiting'`, holdID, listing, until, e.ID)
		if res.Error != nil {
			return offers, res.Error
		}
		if res.RowsAffected != 1 { // impossible under the line's lock; refuse rather than guess
			return offers, fmt.Errorf("waitlist: entry %s changed under the line lock", e.ID)
		}
		what := fmt.Sprintf("%d × %s", e.Quantity, tf.Name)
		if listing != nil {
			what = "1 resale ticket (" + tf.Name + ")"
		}
		if err := transfer.Mail(tx, nil, e.Email, "Tickets are held for you",
			fmt.Sprintf("Hello,\n\n%s are held for you until %s UTC. Buy them here:\n%s\nAfter that they go to the next person in line.\n",
				what, until.Format("2006-01-02 15:04"), s.Link(t, e.ID))); err != nil {
			return offers, err
		}
		offers++
	}
	return offers, publishListings(tx, tierID)
}

// publishListings gives a line's first-refusal listings to the public at
// once when nobody is waiting in it any more.
func publishListings(tx *gorm.DB, tierID uuid.UUID) error {
	return tx.Exec(`UPDATE inv_resale_listings SET waitlist_until = NULL WHERE tier_id = ? AND status = 'listed' AND waitlist_until > now()
		AND NOT EXISTS (SELECT 1 FROM inv_waitlist WHERE tier_id = ? AND status = 'waiting')`, tierID, tierID).Error
}
