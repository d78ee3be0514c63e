// Package model holds the inventory's plain types, shared by its rooms
// (catalogue, stock, holds, orders, tickets): what an event sells, a hold,
// an order, a ticket, their states, and the domain errors with their codes.
// It knows no database and no transport.
package model

import (
	"context"
	"regexp"
	"time"

	"github.com/google/uuid"

	"marquee/app"
	"marquee/tenants"
)

// Sales channels. Each may have a quota; together they never exceed capacity.
const (
	ChannelWeb          = "web"
	ChannelBoxOffice    = "box_office"
	ChannelTicketmaster = "ticketmaster"
	ChannelEventbrite   = "eventbrite"
)

// Channels lists the sales channels.
var Channels = []string{ChannelWeb, ChannelBoxOffice, ChannelTicketmaster, ChannelEventbrite}

// ValidChannel says whether c is a sales channel.
func ValidChannel(c string) bool {
	for _, x := range Channels {
		if x == c {
			return true
		}
	}
	return false
}

// Zone kinds.
const (
	KindGA       = "ga"       // a pool of interchangeable places
	KindReserved = "reserved" // numbered seats from the seat map
)

// Seat states.
const (
	SeatAvailable = "available"
	SeatHeld      = "held"
	SeatSold      = "sold"
)

// Hold states: active, then exactly one of sold, released or expired.
const (
	HoldActive   = "active"
	HoldSold     = "sold"
	HoldReleased = "released"
	HoldExpired  = "expired"
)

// Order states: pending → paid → refunded; pending → failed (→ paid on a
// later successful attempt); pending → cancelled when its hold ends before
// it got a PaymentIntent (→ paid if a payment still arrives);
// pending|failed|cancelled → refunded when a payment came too late and its
// seats were gone.
const (
	OrderPending   = "pending"
	OrderPaid      = "paid"
	OrderFailed    = "failed"
	OrderRefunded  = "refunded"
	OrderCancelled = "cancelled"
)

// Limits of what one request may ask for.
const (
	MaxSeatsPerHold   = 50
	MaxSeatsPerLayout = 100_000
	DefaultHoldTTL    = 10 * time.Minute
)

// AdmissionGate decides whether a buyer may hold now: the virtual waiting
// room implements it. Check returns nil to admit, or an error passed to the
// client through app.Fail (an *app.Error such as 403 queue_required).
type AdmissionGate interface {
	Check(ctx context.Context, t tenants.Tenant, eventID uuid.UUID, buyerID string, accessToken string) error
}

// AdmissionRoom is an AdmissionGate that can say, before any hold is
// tried, whether the event's room is in force now: the storefront then sends
// the buyer to the queue before they pick seats, not after.
type AdmissionRoom interface {
	Required(ctx context.Context, t tenants.Tenant, eventID uuid.UUID) (bool, error)
}

// AdmissionLeaver is an AdmissionGate that keeps a place for each buyer it
// admits (the waiting room's active slots). The inventory calls LeaveBuyer
// when a buyer is done (their order paid, their last hold released), so
// the place goes to the next buyer at once, not after an idle timeout.
type AdmissionLeaver interface {
	LeaveBuyer(ctx context.Context, t tenants.Tenant, eventID uuid.UUID, buyerID string) error
}

// AdmissionMeter is an AdmissionGate that adapts how fast it admits to
// how the platform serves the buyers it let in: the inventory tells it how
// long each of an event's holds, orders and payments took, and whether the
// platform failed it (shed, overloaded, broken: not a buyer's refusal such
// as seats taken).
type AdmissionMeter interface {
	ObserveStep(t tenants.Tenant, eventID uuid.UUID, step string, took time.Duration, failed bool)
}

// Settings are an event's inventory settings.
type Settings struct {
	EventID         uuid.UUID `gorm:"column:event_id" json:"event_id"`
	VenueID         uuid.UUID `gorm:"column:venue_id" json:"venue_id"`
	Capacity        int       `gorm:"column:capacity" json:"capacity"`
	HoldMinutes     int       `gorm:"column:hold_minutes" json:"hold_minutes"`
	MaxBuyerHolds   int       `gorm:"column:max_buyer_holds" json:"max_buyer_holds"`
	MaxBuyerTickets int       `gorm:"column:max_buyer_tickets" json:"max_buyer_tickets"`
	MaxIPHolds      int       `gorm:"column:max_ip_holds" json:"max_ip_holds"`
}

// Zone is an area of the event with its own capacity and access.
type Zone struct {
	ID       uuid.UUID `gorm:"column:id" json:"id"`
	Name     string    `gorm:"column:name" json:"name"`
	Kind     string    `gorm:"column:kind" json:"kind"`
	Capacity int       `gorm:"column:capacity" json:"capacity"`
	Sort     int       `gorm:"column:sort" json:"-"`
}

// Tier is a ticket type: a price in a zone, sold within a window.
type Tier struct {
	ID     uuid.UUID `gorm:"column:id" json:"id"`
	ZoneID uuid.UUID `gorm:"column:zone_id" json:"zone_id"`
	Name   string    `gorm:"column:name" json:"name"`
	// PriceMinor is the all-in price a buyer pays (fees included) when
	// read; FeeMinor the mandatory fees it includes.
	PriceMinor  int64      `gorm:"column:price_minor" json:"price"`
	FeeMinor    int64      `gorm:"column:fee_minor" json:"fee"`
	Currency    string     `gorm:"column:currency" json:"currency"`
	SaleStarts  *time.Time `gorm:"column:sale_starts" json:"sale_starts,omitempty"`
	SaleEnds    *time.Time `gorm:"column:sale_ends" json:"sale_ends,omitempty"`
	MaxPerOrder int        `gorm:"column:max_per_order" json:"max_per_order"`
	Sort        int        `gorm:"column:sort" json:"-"`
}

// OnSale reports whether the tier sells at now.
func (t Tier) OnSale(now time.Time) bool {
	return (t.SaleStarts == nil || !now.Before(*t.SaleStarts)) && (t.SaleEnds == nil || now.Before(*t.SaleEnds))
}

// Hold is seats or GA units kept for one buyer until ExpiresAt.
type Hold struct {
	ID          uuid.UUID  `json:"hold_id"`
	EventID     uuid.UUID  `json:"event_id"`
	Status      string     `json:"status"`
	Channel     string     `json:"channel"`
	Quantity    int        `json:"quantity"`
	AmountMinor int64      `json:"amount"`
	Currency    string     `json:"currency"`
	ExpiresAt   time.Time  `json:"expires_at"`
	Seats       []string   `json:"seats"`
	Lines       []HoldLine `json:"lines"`
	BuyerID     string     `json:"-"`
}

// HoldLine is one seat, or one GA tier's quantity, of a hold.
type HoldLine struct {
	TierID    uuid.UUID `gorm:"column:tier_id" json:"tier_id"`
	ZoneID    uuid.UUID `gorm:"column:zone_id" json:"zone_id"`
	SeatID    *string   `gorm:"column:seat_id" json:"seat_id,omitempty"`
	Quantity  int       `gorm:"column:quantity" json:"quantity"`
	UnitPrice int64     `gorm:"column:unit_price_minor" json:"unit_price"`
	TierName  string    `gorm:"-" json:"tier_name,omitempty"`
	ZoneName  string    `gorm:"-" json:"zone_name,omitempty"`
	// Line numbers the line within its hold when it is written.
	Line int `gorm:"-" json:"-"`
}

// Order is a buyer's purchase of one hold.
type Order struct {
	ID              uuid.UUID `gorm:"column:id" json:"order_id"`
	EventID         uuid.UUID `gorm:"column:event_id" json:"event_id"`
	HoldID          uuid.UUID `gorm:"column:hold_id" json:"hold_id"`
	BuyerID         string    `gorm:"column:buyer_id" json:"-"`
	Email           string    `gorm:"column:email" json:"email"`
	Name            string    `gorm:"column:name" json:"name"`
	AmountMinor     int64     `gorm:"column:amount_minor" json:"amount"`
	Currency        string    `gorm:"column:currency" json:"currency"`
	Status          string    `gorm:"column:status" json:"status"`
	PaymentIntentID *string   `gorm:"column:payment_intent_id" json:"payment_intent_id,omitempty"`
	// ClientSecret lets a browser confirm the PaymentIntent: it goes out
	// only through orderView, to the order's buyer (never to staff or logs).
	ClientSecret *string    `gorm:"column:client_secret" json:"-"`
	CreatedAt    time.Time  `gorm:"column:created_at" json:"created_at"`
	PaidAt       *time.Time `gorm:"column:paid_at" json:"paid_at,omitempty"`
	Note         string     `gorm:"column:note" json:"note,omitempty"`
}

// Ticket is one admission, with its signed QR token.
type Ticket struct {
	ID          uuid.UUID `gorm:"column:id" json:"id"`
	OrderID     uuid.UUID `gorm:"column:order_id" json:"order_id"`
	EventID     uuid.UUID `gorm:"column:event_id" json:"event_id"`
	ZoneID      uuid.UUID `gorm:"column:zone_id" json:"zone_id"`
	ZoneName    string    `gorm:"column:zone_name" json:"zone"`
	TierID      uuid.UUID `gorm:"column:tier_id" json:"tier_id"`
	TierName    string    `gorm:"column:tier_name" json:"tier"`
	SeatID      *string   `gorm:"column:seat_id" json:"seat,omitempty"`
	HolderName  string    `gorm:"column:holder_name" json:"holder_name"`
	HolderEmail string    `gorm:"column:holder_email" json:"holder_email"`
	Status      string    `gorm:"column:status" json:"status"`
	Token       string    `gorm:"column:token" json:"token"`
	IssuedAt    time.Time `gorm:"column:issued_at" json:"issued_at"`
	// Replaces and ReplacedBy link a re-issued ticket (transfer, zone
	// change, key rotation) and its successor.
	Replaces   *uuid.UUID `gorm:"column:replaces" json:"replaces,omitempty"`
	ReplacedBy *uuid.UUID `gorm:"column:replaced_by" json:"replaced_by,omitempty"`
}

// SeatIDPattern is the only form of seat id accepted anywhere: section, row
// and number joined by dashes (A-12-7).
var SeatIDPattern = regexp.MustCompile(`^[A-Za-z0-9]{1,12}-[A-Za-z0-9]{1,12}-[0-9]{1,5}$`)

// Domain errors with stable codes.
// ErrSeatsUnavailable refuses a hold: seats ids are no longer available.
func ErrSeatsUnavailable(ids []string) error {
	return app.Conflict("seats_unavailable", "some of the seats are no longer available; nothing was held").With("unavailable", ids)
}

// ErrSoldOut refuses a hold: fewer than asked of what are left.
func ErrSoldOut(what string, left int) error {
	return app.Conflict("sold_out", "not enough %s left; nothing was held", what).With("available", left)
}

// ErrQuota refuses a hold: the channel's quota is used up.
func ErrQuota(channel string) error {
	return app.Conflict("quota_exceeded", "the %s channel has no more tickets to sell; nothing was held", channel).With("channel", channel)
}

// ErrHoldLimit refuses a hold over a buyer or address limit.
func ErrHoldLimit(detail string) error {
	return app.RateLimited("hold_limit", time.Minute, "%s", detail)
}

// ErrNotOnSale refuses what is not on sale now.
func ErrNotOnSale(detail string) error {
	return app.Conflict("not_on_sale", "%s", detail)
}

// Invalid refuses a field of a request.
func Invalid(field, format string, args ...any) error {
	return app.InvalidField("invalid_"+field, field, format, args...)
}
