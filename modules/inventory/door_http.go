package inventory

import (
	"encoding/base64"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"marquee/app"
	"marquee/modules/inventory/internal/tickets"
	"marquee/policies"
)

// Handlers of the door: keys, check-in, annul, the log, attendance,
// revocations, door settings. Scanning and reading the door are checked at
// the event's venue (inventory.door), so door staff, box office and ops
// leads act at their own venue only; changing the door's rules and keys is
// configuring the event (inventory.catalogue write).

// PublicKeyEntry is one of an event's verification keys.
type PublicKeyEntry struct {
	KeyID     int       `json:"key_id"`
	PublicKey string    `json:"public_key"`
	Current   bool      `json:"current"`
	CreatedAt time.Time `json:"created_at"`
}

// PublicKey is what verifies an event's ticket tokens offline: every key of
// the event (v2 tokens name theirs), the newest also in the top-level
// fields, and the chain's v1 key for tickets issued before v2.
type PublicKey struct {
	Algorithm string    `json:"algorithm"`
	PublicKey string    `json:"public_key"`
	KeyID     int       `json:"key_id"`
	EventID   uuid.UUID `json:"event_id"`
	Tenant    string    `json:"tenant"`
	// Token describes the v2 layout.
	Token     string           `json:"token"`
	Keys      []PublicKeyEntry `json:"keys"`
	LegacyKey string           `json:"legacy_key,omitempty"`
}

func (m *Module) publicKey(c *gin.Context, _ app.None) (PublicKey, error) {
	ev, err := m.event(c)
	if err != nil {
		return PublicKey{}, err
	}
	ctx, t := c.Request.Context(), app.TenantOf(c)
	keys, err := m.svc.TicketKeys(ctx, t, ev.ID)
	if err != nil {
		return PublicKey{}, err
	}
	legacy, err := m.svc.LegacyTicketKey(ctx, t)
	if err != nil {
		return PublicKey{}, err
	}
	out := PublicKey{Algorithm: "Ed25519", EventID: ev.ID, Tenant: t.Slug, Token: tickets.TokenV2Layout, Keys: []PublicKeyEntry{}}
	for i, k := range keys {
		e := PublicKeyEntry{KeyID: int(k.KeyID), PublicKey: base64.RawURLEncoding.EncodeToString(k.Public), Current: i == len(keys)-1, CreatedAt: k.CreatedAt.UTC()}
		out.Keys = append(out.Keys, e)
		if e.Current {
			out.PublicKey, out.KeyID = e.PublicKey, e.KeyID
		}
	}
	if legacy != nil {
		out.LegacyKey = base64.RawURLEncoding.EncodeToString(legacy)
	}
	c.Header("Content-Disposition", `attachment; filename="ticket-key-`+ev.ID.String()+`.json"`)
	return out, nil
}

type rotateKeyRequest struct {
	// Reissue re-issues every valid ticket under an older key (their old
	// tokens are revoked): after a key leak.
	Reissue bool `json:"reissue"`
}

// KeyRotation is what a rotation did.
type KeyRotation struct {
	KeyID    int `json:"key_id"`
	Reissued int `json:"reissued"`
}

func (m *Module) rotateKey(c *gin.Context, req rotateKeyRequest) (KeyRotation, error) {
	ev, err := m.staffEvent(c, ObjInventory, policies.Write)
	if err != nil {
		return KeyRotation{}, err
	}
	kid, n, err := m.svc.RotateTicketKey(c.Request.Context(), app.TenantOf(c), ev.ID, req.Reissue)
	return KeyRotation{KeyID: int(kid), Reissued: n}, err
}

// checkinRequest is one scan (pretix's redeem, one event).
type checkinRequest struct {
	Token string `json:"token"`
	// Type is entry (default) or exit.
	Type     string `json:"type"`
	Gate     string `json:"gate"`
	DeviceID string `json:"device_id"`
	// Nonce is the scan's own id, made by the device: a retry with the
	// same nonce gets the first answer and records nothing more.
	Nonce string `json:"nonce"`
	// ScannedAt is the device's time of the scan (default: now).
	ScannedAt *time.Time `json:"scanned_at"`
	// Force: the scan already happened offline (judged at scanned_at).
	Force bool `json:"force"`
}

// Bounds on a scan's device time: clocks drift, and offline scans arrive
// late, but not from next week or last month.
const (
	maxScanAhead = time.Hour
	maxScanAge   = 7 * 24 * time.Hour
)

func textField(field, v string, maxLen int) error {
	if l := len(v); l < 1 || l > maxLen {
		return invalid(field, "%s is 1 to %d characters", field, maxLen)
	}
	return nil
}

func (r checkinRequest) Validate() error {
	if r.Token == "" || len(r.Token) > 2048 {
		return app.InvalidField("invalid_ticket_token", "token", "token is the scanned ticket token (1 to 2,048 characters)")
	}
	if r.Type != "" && r.Type != ScanEntry && r.Type != ScanExit {
		return invalid("type", "type is entry or exit")
	}
	for _, f := range []struct {
		name, v string
		max     int
	}{{"gate", r.Gate, 40}, {"device_id", r.DeviceID, 64}, {"nonce", r.Nonce, 64}} {
		if err := textField(f.name, f.v, f.max); err != nil {
			return err
		}
	}
	if r.ScannedAt != nil {
		if d := time.Until(*r.ScannedAt); d > maxScanAhead || -d > maxScanAge {
			return invalid("scanned_at", "scanned_at is at most an hour ahead of the server and a week behind")
		}
	}
	return nil
}

func (m *Module) checkIn(c *gin.Context, req checkinRequest) (ScanResult, error) {
	ev, err := m.staffEvent(c, ObjDoor, policies.Write)
	if err != nil {
		return ScanResult{}, err
	}
	sc := Scan{EventID: ev.ID, Token: req.Token, Type: req.Type, Gate: req.Gate, DeviceID: req.DeviceID, Nonce: req.Nonce, Force: req.Force}
	if sc.Type == "" {
		sc.Type = ScanEntry
	}
	if req.ScannedAt != nil {
		sc.ScannedAt = *req.ScannedAt
	}
	if p := app.PrincipalOf(c); p.UserID != uuid.Nil {
		sc.StaffID = &p.UserID
	}
	return m.svc.CheckIn(c.Request.Context(), app.TenantOf(c), sc)
}

type annulRequest struct {
	DeviceID string `json:"device_id"`
}

func (r annulRequest) Validate() error { return textField("device_id", r.DeviceID, 64) }

func (m *Module) annulCheckin(c *gin.Context, req annulRequest) (Checkin, error) {
	ev, err := m.staffEvent(c, ObjDoor, policies.Write)
	if err != nil {
		return Checkin{}, err
	}
	id, err := app.PathUUID(c, "checkinId", "checkin")
	if err != nil {
		return Checkin{}, err
	}
	return m.svc.AnnulCheckin(c.Request.Context(), app.TenantOf(c), ev.ID, id, req.DeviceID)
}

// queryInt reads an optional integer query parameter within [lo, hi].
func queryInt(c *gin.Context, name string, def, lo, hi int64) (int64, error) {
	v := c.Query(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < lo || n > hi {
		return 0, invalid(name, "%s is an integer from %d to %d", name, lo, hi)
	}
	return n, nil
}

func (m *Module) listCheckins(c *gin.Context, _ app.None) (app.Page[Checkin], error) {
	ev, err := m.staffEvent(c, ObjDoor, policies.Read)
	if err != nil {
		return app.Page[Checkin]{}, err
	}
	limit, err := queryInt(c, "limit", 100, 1, 500)
	if err != nil {
		return app.Page[Checkin]{}, err
	}
	var before *uuid.UUID
	if v := c.Query("before"); v != "" {
		id, err := uuid.Parse(v)
		if err != nil {
			return app.Page[Checkin]{}, invalid("before", "before is a check-in id from the previous page")
		}
		before = &id
	}
	items, err := m.svc.Checkins(c.Request.Context(), app.TenantOf(c), ev.ID, before, int(limit))
	out := app.Page[Checkin]{Items: app.NonNil(items)}
	if len(items) == int(limit) {
		out.Next = items[len(items)-1].ID.String()
	}
	return out, err
}

func (m *Module) attendance(c *gin.Context, _ app.None) (Attendance, error) {
	ev, err := m.staffEvent(c, ObjDoor, policies.Read)
	if err != nil {
		return Attendance{}, err
	}
	c.Header("Cache-Control", "no-store")
	return m.svc.Attendance(c.Request.Context(), app.TenantOf(c), ev.ID)
}

func (m *Module) revocations(c *gin.Context, _ app.None) (Revocations, error) {
	ev, err := m.staffEvent(c, ObjDoor, policies.Read)
	if err != nil {
		return Revocations{}, err
	}
	since, err := queryInt(c, "since", 0, 0, 1<<62)
	if err != nil {
		return Revocations{}, err
	}
	limit, err := queryInt(c, "limit", 1000, 1, 5000)
	if err != nil {
		return Revocations{}, err
	}
	return m.svc.Revocations(c.Request.Context(), app.TenantOf(c), ev.ID, since, int(limit))
}

func (m *Module) getDoorSettings(c *gin.Context, _ app.None) (DoorSettings, error) {
	ev, err := m.staffEvent(c, ObjDoor, policies.Read)
	if err != nil {
		return DoorSettings{}, err
	}
	return m.svc.DoorSettings(c.Request.Context(), app.TenantOf(c), ev.ID)
}

// doorSettingsRequest replaces an event's door rules.
type doorSettingsRequest struct {
	Reentry    bool       `json:"reentry"`
	ValidFrom  *time.Time `json:"valid_from"`
	ValidUntil *time.Time `json:"valid_until"`
	// EveryoneOutAt: after it, everyone inside counts as out (curfew).
	EveryoneOutAt *time.Time `json:"everyone_out_at"`
	Gates         []DoorGate `json:"gates"`
}

func (r doorSettingsRequest) settings(eventID uuid.UUID) DoorSettings {
	return DoorSettings{EventID: eventID, Reentry: r.Reentry, ValidFrom: r.ValidFrom, ValidUntil: r.ValidUntil, EveryoneOutAt: r.EveryoneOutAt, Gates: r.Gates}
}

func (r doorSettingsRequest) Validate() error { return r.settings(uuid.Nil).Validate() }

func (m *Module) putDoorSettings(c *gin.Context, req doorSettingsRequest) (DoorSettings, error) {
	ev, err := m.staffEvent(c, ObjInventory, policies.Write)
	if err != nil {
		return DoorSettings{}, err
	}
	return m.svc.SetDoorSettings(c.Request.Context(), app.TenantOf(c), req.settings(ev.ID))
}
