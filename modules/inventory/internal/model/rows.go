package model

import (
	"time"

	"github.com/google/uuid"

	"marquee/app"
)

// ErrNoInventory answers for an event without tickets configured.
func ErrNoInventory() error {
	return app.NotFoundCode("no_inventory", "this event has no tickets configured")
}

// TierRow is a tier with what a hold needs to know about its zone.
type TierRow struct {
	Tier
	ZoneKind string
	ZoneName string
	PoolID   *uuid.UUID
}

// FindTier returns the tier of id among tiers.
func FindTier(tiers []TierRow, id uuid.UUID) (TierRow, bool) {
	for _, t := range tiers {
		if t.ID == id {
			return t, true
		}
	}
	return TierRow{}, false
}

// TierCurrency is the currency of the tier of id ("" if unknown).
func TierCurrency(tiers []TierRow, id uuid.UUID) string {
	t, _ := FindTier(tiers, id)
	return t.Currency
}

// SeatTier picks the tier a seat sells at: the one asked for (it must be of
// the seat's zone), or the zone's first tier on sale.
func SeatTier(tiers []TierRow, zoneID uuid.UUID, want *uuid.UUID, now time.Time) (TierRow, error) {
	if want != nil {
		t, ok := FindTier(tiers, *want)
		switch {
		case !ok:
			return TierRow{}, app.NotFound("tier")
		case t.ZoneID != zoneID:
			return TierRow{}, Invalid("tier_id", "tier %s is not sold in every requested seat's zone", t.Name)
		case !t.OnSale(now):
			return TierRow{}, ErrNotOnSale("tier " + t.Name + " is not on sale now")
		}
		return t, nil
	}
	for _, t := range tiers {
		if t.ZoneID == zoneID && t.OnSale(now) {
			return t, nil
		}
	}
	return TierRow{}, ErrNotOnSale("no tier of this seat's zone is on sale now")
}

// NameLines fills in each line's tier and zone names, as a new hold shows them.
func NameLines(h *Hold, tiers []TierRow) {
	for i := range h.Lines {
		if tr, ok := FindTier(tiers, h.Lines[i].TierID); ok {
			h.Lines[i].TierName, h.Lines[i].ZoneName = tr.Name, tr.ZoneName
		}
	}
}

// HoldRow is a hold as stored.
type HoldRow struct {
	ID          uuid.UUID `gorm:"column:id"`
	EventID     uuid.UUID `gorm:"column:event_id"`
	BuyerID     string    `gorm:"column:buyer_id"`
	ClientIP    string    `gorm:"column:client_ip"`
	DeviceID    string    `gorm:"column:device_id"`
	IPCounted   bool      `gorm:"column:ip_counted"`
	Channel     string    `gorm:"column:channel"`
	Status      string    `gorm:"column:status"`
	Quantity    int       `gorm:"column:quantity"`
	AmountMinor int64     `gorm:"column:amount_minor"`
	Currency    string    `gorm:"column:currency"`
	ExpiresAt   time.Time `gorm:"column:expires_at"`
}

// HoldCols are HoldRow's columns, in a SELECT or RETURNING list.
const HoldCols = `id, event_id, buyer_id, client_ip, device_id, ip_counted, channel, status, quantity, amount_minor, currency, expires_at`

// OrderCols are Order's columns, in a SELECT or RETURNING list.
const OrderCols = `id, event_id, hold_id, buyer_id, email, name, amount_minor, currency, status, payment_intent_id, client_secret, created_at, paid_at, note`

// SeatState is one seat's state.
type SeatState struct {
	ID    string `gorm:"column:id" json:"id"`
	State string `gorm:"column:state" json:"state"`
}

// SeatStates gives every seat of ids the same state (a live update).
func SeatStates(ids []string, state string) []SeatState {
	out := make([]SeatState, len(ids))
	for i, id := range ids {
		out[i] = SeatState{ID: id, State: state}
	}
	return out
}

// Truncate shortens s to n bytes for an error message.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// NotDueError says a hold's expiry ran before its time; In is what is left.
type NotDueError struct{ In time.Duration }

func (e *NotDueError) Error() string { return "hold not due yet (due in " + e.In.String() + ")" }

// ClientSubject names the counter of a hold's client: its device when the
// request carried a signed device id, else its address. A device is the
// finer name (many buyers share an address behind one NAT); a client that
// sends no device is counted by its address.
func ClientSubject(deviceID, clientIP string) string {
	switch {
	case deviceID != "":
		return "dev:" + deviceID
	case clientIP != "":
		return "ip:" + clientIP
	}
	return ""
}

// ClientSubject names the counter the hold counts against (ClientSubject).
func (h HoldRow) ClientSubject() string { return ClientSubject(h.DeviceID, h.ClientIP) }
