// Package tickets issues an order's tickets: the offline-verifiable token
// formats (v2: token.go; v1 below, still verified), each event's Ed25519
// keys (keys.go, stored sealed, rotatable), issuance in the payment's
// transaction, re-issue with revocation, and QR rendering.
package tickets

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/skip2/go-qrcode"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/modules/inventory/internal/deps"
	"marquee/modules/inventory/internal/model"
	"marquee/tenants"
)

// Service issues tickets and keeps each tenant's signing key.
type Service struct {
	d    *deps.Deps
	keys sync.Map // tenant slug -> *signingKey (v1)
	keyCaches
}

// New returns the ticket service.
func New(d *deps.Deps) *Service {
	return &Service{d: d, keyCaches: keyCaches{verified: newVerifiedCache(verifiedCap)}}
}

// Version 1 tokens (issued before v2, still verified at the door):
// base64url(JSON claims) "." base64url(sig), where sig is the tenant's
// Ed25519 signature over the claims bytes, under the tenant's one key.

// TokenClaims are what a ticket token says.
type TokenClaims struct {
	Version  int    `json:"v"`
	Tenant   string `json:"tn"`
	TicketID string `json:"tid"`
	EventID  string `json:"eid"`
	Zone     string `json:"z"`
	Seat     string `json:"s,omitempty"`
	IssuedAt int64  `json:"iat"`
}

// ErrBadToken is returned for a token that does not verify.
var ErrBadToken = errors.New("ticket token does not verify")

// SignToken signs claims with a private key.
func SignToken(priv ed25519.PrivateKey, c TokenClaims) (string, error) {
	payload, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	sig := ed25519.Sign(priv, payload)
	return base64.RawURLEncoding.EncodeToString(payload) + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

// VerifyToken checks a token against a public key and returns its claims.
func VerifyToken(pub ed25519.PublicKey, token string) (TokenClaims, error) {
	p, s, ok := strings.Cut(token, ".")
	if !ok || len(token) > 2048 {
		return TokenClaims{}, ErrBadToken
	}
	payload, err1 := base64.RawURLEncoding.DecodeString(p)
	sig, err2 := base64.RawURLEncoding.DecodeString(s)
	if err1 != nil || err2 != nil || len(sig) != ed25519.SignatureSize || !ed25519.Verify(pub, payload, sig) {
		return TokenClaims{}, ErrBadToken
	}
	var c TokenClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return TokenClaims{}, ErrBadToken
	}
	return c, nil
}

type signingKey struct {
	pub  ed25519.PublicKey
	priv ed25519.PrivateKey
}

// keyEncryptionKey derives the AES-256 key that encrypts a tenant's signing
// key at rest, from the platform secret and the tenant: a database dump
// alone does not yield any private key.
func (s *Service) keyEncryptionKey(t tenants.Tenant) []byte {
	m := hmac.New(sha256.New, []byte(s.d.App.Config.SecretKey))
	m.Write([]byte("marquee/inventory/ticket-signing-key/v1:" + t.Slug))
	return m.Sum(nil)
}

// seal encrypts plain under the tenant's key-encryption key, bound to aad
// (what the key is: the tenant, or the tenant, event and key id), so a
// sealed key copied to another row does not open.
func (s *Service) seal(t tenants.Tenant, plain, aad []byte) ([]byte, error) {
	block, err := aes.NewCipher(s.keyEncryptionKey(t))
	if err != nil {
		return nil, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, gcm.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return gcm.Seal(nonce, nonce, plain, aad), nil
}

func (s *Service) open(t tenants.Tenant, sealed, aad []byte) ([]byte, error) {
	block, err := aes.NewCipher(s.keyEncryptionKey(t))
	if err != nil {
		return nil, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	if len(sealed) < gcm.NonceSize() {
		return nil, errors.New("sealed key too short")
	}
	return gcm.Open(nil, sealed[:gcm.NonceSize()], sealed[gcm.NonceSize():], aad)
}

// signingKey returns the tenant's key pair, creating it on first use (the
// first writer wins; everyone reads the stored row).
func (s *Service) signingKey(ctx context.Context, t tenants.Tenant, tx *gorm.DB) (*signingKey, error) {
	if v, ok := s.keys.Load(t.Slug); ok {
		return v.(*signingKey), nil
	}
	load := func(tx *gorm.DB) (*signingKey, error) {
		var rows []struct {
			Public  []byte `gorm:"column:public_key"`
			Private []byte `gorm:"column:private_enc"`
		}
		if err := tx.Raw(`SELECT public_key, private_enc FROM inv_signing_keys WHERE id = 1`).Scan(&rows).Error; err != nil {
			return nil, err
		}
		if len(rows) == 0 {
			pub, priv, err := ed25519.GenerateKey(rand.Reader)
			if err != nil {
				return nil, err
			}
			sealed, err := s.seal(t, priv.Seed(), []byte(t.Slug))
			if err != nil {
				return nil, err
			}
			if err := tx.Exec(`INSERT INTO inv_signing_keys (id, public_key, private_enc) VALUES (1, ?, ?) ON CONFLICT (id) DO NOTHING`, []byte(pub), sealed).Error; err != nil {
				return nil, err
			}
			if err := tx.Raw(`SELECT public_key, private_enc FROM inv_signing_keys WHERE id = 1`).Scan(&rows).Error; err != nil || len(rows) == 0 {
				return nil, fmt.Errorf("signing key not stored: %v", err)
			}
		}
		seed, err := s.open(t, rows[0].Private, []byte(t.Slug))
		if err != nil {
			return nil, fmt.Errorf("open signing key of %s: %w", t.Slug, err)
		}
		return &signingKey{pub: ed25519.PublicKey(rows[0].Public), priv: ed25519.NewKeyFromSeed(seed)}, nil
	}
	var k *signingKey
	var err error
	if tx != nil {
		k, err = load(tx)
	} else {
		err = s.d.App.Tx(ctx, t, func(tx *gorm.DB) error {
			k, err = load(tx)
			return err
		})
	}
	if err != nil {
		return nil, err
	}
	s.keys.Store(t.Slug, k)
	return k, nil
}

// issueContext is what every ticket of an event issued now is signed with:
// the event's newest key and the door's validity window.
type issueContext struct {
	signer   signer
	validity Validity
}

func (s *Service) issueContext(ctx context.Context, t tenants.Tenant, tx *gorm.DB, eventID uuid.UUID) (issueContext, error) {
	sg, err := s.currentSigner(ctx, t, tx, eventID)
	if err != nil {
		return issueContext{}, err
	}
	var rows []struct {
		From  *time.Time `gorm:"column:valid_from"`
		Until *time.Time `gorm:"column:valid_until"`
	}
	if err := tx.Raw(`SELECT valid_from, valid_until FROM inv_door_events WHERE event_id = ?`, eventID).Scan(&rows).Error; err != nil {
		return issueContext{}, err
	}
	ic := issueContext{signer: sg}
	if len(rows) == 1 {
		if rows[0].From != nil {
			ic.validity.From = *rows[0].From
		}
		if rows[0].Until != nil {
			ic.validity.Until = *rows[0].Until
		}
	}
	return ic, nil
}

func (ic issueContext) token(t tenants.Tenant, eventID, ticketID, zoneID uuid.UUID) string {
	return SignV2(ic.signer.priv, t.Slug, Claims{KeyID: ic.signer.kid, EventID: eventID, TicketID: ticketID, ZoneID: zoneID,
		NotBefore: ic.validity.From, Expires: ic.validity.Until})
}

// Issue writes one ticket per seat or GA unit of a sold hold, in the
// payment's transaction tx, each with a v2 token signed by the event's
// newest key.
func (s *Service) Issue(ctx context.Context, t tenants.Tenant, tx *gorm.DB, o model.Order) (int, error) {
	ic, err := s.issueContext(ctx, t, tx, o.EventID)
	if err != nil {
		return 0, err
	}
	var lines []struct {
		TierID   uuid.UUID `gorm:"column:tier_id"`
		TierName string    `gorm:"column:tier_name"`
		ZoneID   uuid.UUID `gorm:"column:zone_id"`
		ZoneName string    `gorm:"column:zone_name"`
		SeatID   *string   `gorm:"column:seat_id"`
		Quantity int       `gorm:"column:quantity"`
	}
	if err := tx.Raw(`SELECT l.tier_id, t.name AS tier_name, l.zone_id, z.name AS zone_name, l.seat_id, l.quantity
		FROM inv_hold_lines l JOIN inv_tiers t ON t.id = l.tier_id JOIN inv_zones z ON z.id = l.zone_id
		WHERE l.hold_id = ? ORDER BY l.line`, o.HoldID).Scan(&lines).Error; err != nil {
		return 0, err
	}
	now := time.Now().UTC().Truncate(time.Second)
	n := 0
	for _, l := range lines {
		for i := 0; i < l.Quantity; i++ {
			id := uuid.Must(uuid.NewV7())
			token := ic.token(t, o.EventID, id, l.ZoneID)
			if err := tx.Exec(`INSERT INTO inv_tickets (id, order_id, event_id, zone_id, zone_name, tier_id, tier_name, seat_id, holder_name, holder_email, status, token, issued_at, key_id)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'valid', ?, ?, ?)`,
				id, o.ID, o.EventID, l.ZoneID, l.ZoneName, l.TierID, l.TierName, l.SeatID, o.Name, o.Email, token, now, int(ic.signer.kid)).Error; err != nil {
				return n, err
			}
			n++
		}
	}
	return n, nil
}

// Holder names who a re-issued ticket is for (zero: the same holder).
type Holder struct {
	Name, Email string
	// OrderID moves the new ticket to another order (a resale buyer's);
	// zero keeps the old ticket's order.
	OrderID uuid.UUID
	// Transferable sets whether the new ticket may be transferred (a
	// transfer's is not: transfer once); nil carries the old one's over.
	Transferable *bool
}

// TicketCols are the columns of model.Ticket.
const TicketCols = `id, order_id, event_id, zone_id, zone_name, tier_id, tier_name, seat_id, holder_name, holder_email, status, token, issued_at, replaces, replaced_by`

// Reissue replaces a valid ticket, in tx, by a new one (new id, new token
// under the event's newest key; same order, zone, tier and seat; the new
// holder if given): the old ticket becomes void and points to the new, and
// the void puts its token on the event's revocation list (the trigger
// inv_tickets_revoke), all in tx. Transfer, resale and zone changes build on
// it. A ticket that is not valid any more answers 409 ticket_not_valid.
func (s *Service) Reissue(ctx context.Context, t tenants.Tenant, tx *gorm.DB, ticketID uuid.UUID, h Holder) (model.Ticket, error) {
	newID := uuid.Must(uuid.NewV7())
	var old []model.Ticket
	// The conditional void decides: of two re-issues racing, one finds the
	// ticket valid; the other changes nothing.
	if err := tx.Raw(`UPDATE inv_tickets SET status = 'void', voided_at = now(), replaced_by = ? WHERE id = ? AND status = 'valid' RETURNING `+TicketCols,
		newID, ticketID).Scan(&old).Error; err != nil {
		return model.Ticket{}, err
	}
	if len(old) == 0 {
		return model.Ticket{}, app.Conflict("ticket_not_valid", "the ticket is void or re-issued already; nothing was changed")
	}
	o := old[0]
	ic, err := s.issueContext(ctx, t, tx, o.EventID)
	if err != nil {
		return model.Ticket{}, err
	}
	if h.Name == "" {
		h.Name = o.HolderName
	}
	if h.Email == "" {
		h.Email = o.HolderEmail
	}
	if h.OrderID == uuid.Nil {
		h.OrderID = o.OrderID
	}
	var out []model.Ticket
	if err := tx.Raw(`INSERT INTO inv_tickets (id, order_id, event_id, zone_id, zone_name, tier_id, tier_name, seat_id, holder_name, holder_email, status, token, issued_at, key_id, replaces, transferable)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'valid', ?, date_trunc('second', now()), ?, ?,
			coalesce(?::boolean, (SELECT transferable FROM inv_tickets WHERE id = ?))) RETURNING `+TicketCols,
		newID, h.OrderID, o.EventID, o.ZoneID, o.ZoneName, o.TierID, o.TierName, o.SeatID, h.Name, h.Email,
		ic.token(t, o.EventID, newID, o.ZoneID), int(ic.signer.kid), o.ID, h.Transferable, o.ID).Scan(&out).Error; err != nil {
		return model.Ticket{}, err
	}
	return out[0], nil
}

// ReissueOlder re-issues up to limit valid tickets of the event whose
// tokens are signed by a key older than its newest (or are v1 tokens), each
// in the transaction of its batch; it returns how many. After a rotation,
// calling it until it answers 0 leaves no valid token under an old key.
func (s *Service) ReissueOlder(ctx context.Context, t tenants.Tenant, eventID uuid.UUID, limit int) (int, error) {
	n := 0
	err := s.d.Tx(ctx, t, func(tx *gorm.DB) error {
		n = 0
		var ids []uuid.UUID
		if err := tx.Raw(`SELECT id FROM inv_tickets WHERE event_id = ? AND status = 'valid'
			AND (key_id IS NULL OR key_id < (SELECT max(kid) FROM inv_ticket_keys WHERE event_id = ?)) ORDER BY id LIMIT ? FOR UPDATE SKIP LOCKED`,
			eventID, eventID, limit).Scan(&ids).Error; err != nil {
			return err
		}
		for _, id := range ids {
			if _, err := s.Reissue(ctx, t, tx, id, Holder{}); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}

// SignV1 signs a first-format token with the tenant's v1 key, creating it
// if needed: tokens issued before v2 are still in buyers' hands, and tests
// make such tokens to check they still scan.
func (s *Service) SignV1(ctx context.Context, t tenants.Tenant, c TokenClaims) (string, error) {
	k, err := s.signingKey(ctx, t, nil)
	if err != nil {
		return "", err
	}
	s.legacy.Delete(t.Slug)
	return SignToken(k.priv, c)
}

// QRSVG draws a QR code of text as an SVG document (crisp at any size).
func QRSVG(text string, size int) (string, error) {
	q, err := qrcode.New(text, qrcode.Medium)
	if err == nil {
		q.DisableBorder = true // drawn below, in the SVG's own units
	}
	if err != nil {
		return "", err
	}
	bm := q.Bitmap()
	n := len(bm)
	var b strings.Builder
	// Four modules of white around the code: the quiet zone scanners need.
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" class="qr" width="%d" height="%d" viewBox="-4 -4 %d %d" shape-rendering="crispEdges"><rect x="-4" y="-4" width="%d" height="%d" fill="#fff"/><path fill="#000" d="`,
		size, size, n+8, n+8, n+8, n+8)
	for y, row := range bm {
		for x, on := range row {
			if on {
				fmt.Fprintf(&b, "M%d %dh1v1h-1z", x, y)
			}
		}
	}
	b.WriteString(`"/></svg>`)
	return b.String(), nil
}
