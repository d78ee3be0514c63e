// Package inventory sells an event's capacity: zones, reserved seat maps,
// general-admission pools, ticket tiers and channel quotas; holds, orders
// paid through Stripe, and signed tickets.
//
// Correctness lives in PostgreSQL. A seat changes hands only through a
// conditional UPDATE (state = 'available' → 'held' → 'sold'), taken in seat
// id order so overlapping carts never deadlock; a cart is all-or-nothing
// because the transaction rolls back when fewer rows changed than seats were
// asked for. GA pools and channel quotas are counters split into shards
// whose CHECK (held + sold <= capacity) makes overselling impossible, and
// whose conditional increments pick an unlocked shard with room (SKIP LOCKED)
// so concurrent buyers do not queue on one hot row. Holds, orders and Stripe
// events move through their states with conditional updates and unique
// keys, so a retried request, a duplicated webhook or a racing expiry acts
// once. Redis only caches availability and carries live updates.
//
// This package is the module's face: what it registers (module.go), its
// HTTP handlers and pages, its jobs and seed, and the Service façade. The
// rules live in rooms under internal/, one per subdomain (see README.md):
// catalogue, stock, holds, orders, tickets, buyers, with their shared plain
// types in internal/model.
package inventory

import (
	"crypto/ed25519"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"marquee/modules/inventory/internal/catalogue"
	"marquee/modules/inventory/internal/door"
	"marquee/modules/inventory/internal/holds"
	"marquee/modules/inventory/internal/model"
	"marquee/modules/inventory/internal/orders"
	"marquee/modules/inventory/internal/stock"
	"marquee/modules/inventory/internal/tickets"
)

// The module's types, owned by its rooms, under the names its API, pages,
// tests and the waiting room use.
type (
	Settings         = model.Settings
	Zone             = model.Zone
	Tier             = model.Tier
	Hold             = model.Hold
	HoldLine         = model.HoldLine
	Order            = model.Order
	Ticket           = model.Ticket
	SeatState        = model.SeatState
	AdmissionGate    = model.AdmissionGate
	AdmissionLeaver  = model.AdmissionLeaver
	AdmissionRoom    = model.AdmissionRoom
	NotDueError      = model.NotDueError
	Setup            = catalogue.Setup
	ZoneInput        = catalogue.ZoneInput
	TierInput        = catalogue.TierInput
	SettingsPatch    = catalogue.SettingsPatch
	Layout           = catalogue.Layout
	LayoutSection    = catalogue.LayoutSection
	LayoutRow        = catalogue.LayoutRow
	SeatMap          = catalogue.SeatMap
	Inventory        = catalogue.Inventory
	ZoneView         = catalogue.ZoneView
	CounterView      = catalogue.CounterView
	SeatCounts       = catalogue.SeatCounts
	CatalogueItem    = catalogue.CatalogueItem
	Availability     = stock.Availability
	TierAvailability = stock.TierAvailability
	// BitmapAvailability is the compact availability form.
	BitmapAvailability = stock.BitmapAvailability
	HoldRequest        = holds.HoldRequest
	AddItemsRequest    = holds.AddItemsRequest
	TierQuantity       = holds.TierQuantity
	BuyerInfo          = orders.BuyerInfo
	WebhookResult      = orders.WebhookResult
	PartialRefund      = orders.PartialRefund
	TokenClaims        = tickets.TokenClaims
	// TicketClaims are what a v2 token says; TicketKey is one of an
	// event's verification keys; VerifiedTicket is a verified token of
	// either version.
	TicketClaims   = tickets.Claims
	TicketKey      = tickets.EventKey
	TicketHolder   = tickets.Holder
	VerifiedTicket = tickets.Verified
	Scan           = door.Scan
	ScanResult     = door.Result
	Passage        = door.Passage
	Checkin        = door.Checkin
	Attendance     = door.Attendance
	ZoneAttendance = door.ZoneAttendance
	Revocations    = door.Revocations
	Revocation     = door.Revocation
	DoorSettings   = door.Settings
	DoorGate       = door.Gate
	SyncBatch      = door.SyncBatch
	SyncScan       = door.SyncScan
	SyncResult     = door.SyncResult
	SyncDecision   = door.SyncDecision
	UnenforcedRule = door.UnenforcedRule
	DoorConflict   = door.Conflict
	ConflictReport = door.ConflictReport
	ConflictScan   = door.ConflictScan
	ManifestHeader = door.ManifestHeader
	ManifestRecord = door.ManifestRecord
)

// Offline scanning: the batch bound, the manifest's record states, and its
// decoder (for tests, the bench and tools).
const (
	MaxSyncScans             = door.MaxSyncScans
	ManifestStateValid       = door.ManifestValid
	ManifestStateInside      = door.ManifestInside
	ManifestStateOutside     = door.ManifestOutside
	ManifestStateRevoked     = door.ManifestRevoked
	ManifestRecordSize       = door.RecordSize
	RuleAdmittedElsewhere    = door.RuleAdmittedElsewhere
	RuleReentryOffline       = door.RuleReentry
	RuleRevokedAfterManifest = door.RuleRevokedAfterManifest
)

// ParseManifest decodes a door manifest.
func ParseManifest(b []byte) (ManifestHeader, []ManifestRecord, error) { return door.ParseManifest(b) }

// Scan types and results at the door.
const (
	ScanEntry = door.Entry
	ScanExit  = door.Exit

	ResultAdmit           = door.Admit
	ResultExited          = door.Exited
	ResultAlreadyAdmitted = door.AlreadyAdmitted
	ResultNotInside       = door.NotInside
	ResultWrongZone       = door.WrongZone
	ResultWrongEvent      = door.WrongEvent
	ResultRevoked         = door.Revoked
	ResultNotYetValid     = door.NotYetValid
	ResultExpired         = door.Expired
	ResultListed          = door.Listed
	ResultInvalid         = door.Invalid
)

// CheckinStatement is the one statement a scan runs, and CheckinArgs its
// arguments: the bench drives it straight at the database for its raw
// baseline.
const CheckinStatement = door.ScanSQL

// CheckinArgs are CheckinStatement's arguments for a scan of ticketID
// judged pre ("" or a refusal decided before the database).
func CheckinArgs(sc Scan, ticketID uuid.UUID, pre string, id uuid.UUID, received time.Time) pgx.NamedArgs {
	return door.ScanArgs(sc, ticketID, pre, id, received)
}

// Sales channels, zone kinds, and the states of seats, holds and orders.
const (
	ChannelWeb          = model.ChannelWeb
	ChannelBoxOffice    = model.ChannelBoxOffice
	ChannelTicketmaster = model.ChannelTicketmaster
	ChannelEventbrite   = model.ChannelEventbrite

	KindGA       = model.KindGA
	KindReserved = model.KindReserved

	SeatAvailable = model.SeatAvailable
	SeatHeld      = model.SeatHeld
	SeatSold      = model.SeatSold

	HoldActive   = model.HoldActive
	HoldSold     = model.HoldSold
	HoldReleased = model.HoldReleased
	HoldExpired  = model.HoldExpired

	OrderPending   = model.OrderPending
	OrderPaid      = model.OrderPaid
	OrderFailed    = model.OrderFailed
	OrderRefunded  = model.OrderRefunded
	OrderCancelled = model.OrderCancelled

	MaxSeatsPerHold   = model.MaxSeatsPerHold
	MaxSeatsPerLayout = model.MaxSeatsPerLayout
	DefaultHoldTTL    = model.DefaultHoldTTL
	// StaffBuyerPrefix starts the buyer id of staff holding without a
	// buyer token; their holds are not carts (one per sale).
	StaffBuyerPrefix = holds.StaffBuyerPrefix
)

// Task types of the inventory.
const (
	TaskHoldExpire  = holds.TaskHoldExpire
	TaskHoldSweep   = holds.TaskHoldSweep
	TaskExpirySweep = holds.TaskExpirySweep
	TaskRefund      = orders.TaskRefund
	TaskEventCancel = orders.TaskEventCancel
	TaskOutbox      = orders.TaskOutbox
)

// Channels lists the sales channels.
var Channels = model.Channels

// ErrBadToken is returned for a ticket token that does not verify.
var ErrBadToken = tickets.ErrBadToken

// SignTicketV2 signs a v2 ticket token for tenant's chain.
func SignTicketV2(priv ed25519.PrivateKey, tenant string, c TicketClaims) string {
	return tickets.SignV2(priv, tenant, c)
}

// VerifyTicketV2 checks a v2 token against one of its event's keys, as an
// offline scanner does (ParseTicketV2 tells which event and key).
func VerifyTicketV2(pub ed25519.PublicKey, tenant, token string) (TicketClaims, error) {
	return tickets.VerifyV2(pub, tenant, token)
}

// ParseTicketV2 reads a v2 token's claims without verifying them.
func ParseTicketV2(token string) (TicketClaims, error) {
	c, _, err := tickets.ParseV2(token)
	return c, err
}

// SignToken signs v1 ticket claims with a private key.
func SignToken(priv ed25519.PrivateKey, c TokenClaims) (string, error) {
	return tickets.SignToken(priv, c)
}

// VerifyToken checks a ticket token against a public key and returns its claims.
func VerifyToken(pub ed25519.PublicKey, token string) (TokenClaims, error) {
	return tickets.VerifyToken(pub, token)
}

// QRSVG draws a QR code of text as an SVG document.
func QRSVG(text string, size int) (string, error) { return tickets.QRSVG(text, size) }

// invalid refuses a field of a request (the handlers' shorthand).
func invalid(field, format string, args ...any) error { return model.Invalid(field, format, args...) }
