// Package tickets issues an order's tickets: the offline-verifiable token
// format, each tenant's Ed25519 signing key (stored sealed), issuance in the
// payment's transaction, and QR rendering.
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

	"marquee/modules/inventory/internal/deps"
	"marquee/modules/inventory/internal/model"
	"marquee/tenants"
)

// Service issues tickets and keeps each tenant's signing key.
type Service struct {
	d    *deps.Deps
	keys sync.Map // tenant slug -> *signingKey
}

// New returns the ticket service.
func New(d *deps.Deps) *Service { return &Service{d: d} }

// Ticket tokens are verifiable offline: base64url(payload) "." base64url(sig),
// where sig is the tenant's Ed25519 signature over the payload bytes. The
// scanner needs only the public key (GET /api/v1/events/{id}/public-key).

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

func (s *Service) seal(t tenants.Tenant, plain []byte) ([]byte, error) {
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
	return gcm.Seal(nonce, nonce, plain, []byte(t.Slug)), nil
}

func (s *Service) open(t tenants.Tenant, sealed []byte) ([]byte, error) {
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
	return gcm.Open(nil, sealed[:gcm.NonceSize()], sealed[gcm.NonceSize():], []byte(t.Slug))
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
			sealed, err := s.seal(t, priv.Seed())
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
		seed, err := s.open(t, rows[0].Private)
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

// PublicKey returns the tenant's ticket-verification key.
func (s *Service) PublicKey(ctx context.Context, t tenants.Tenant) (ed25519.PublicKey, error) {
	k, err := s.signingKey(ctx, t, nil)
	if err != nil {
		return nil, err
	}
	return k.pub, nil
}

// Issue writes one ticket per seat or GA unit of a sold hold, in the
// payment's transaction tx.
func (s *Service) Issue(ctx context.Context, t tenants.Tenant, tx *gorm.DB, o model.Order) (int, error) {
	k, err := s.signingKey(ctx, t, tx)
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
			c := TokenClaims{Version: 1, Tenant: t.Slug, TicketID: id.String(), EventID: o.EventID.String(), Zone: l.ZoneName, IssuedAt: now.Unix()}
			if l.SeatID != nil {
				c.Seat = *l.SeatID
			}
			token, err := SignToken(k.priv, c)
			if err != nil {
				return n, err
			}
			if err := tx.Exec(`INSERT INTO inv_tickets (id, order_id, event_id, zone_id, zone_name, tier_id, tier_name, seat_id, holder_name, holder_email, status, token, issued_at)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'valid', ?, ?)`,
				id, o.ID, o.EventID, l.ZoneID, l.ZoneName, l.TierID, l.TierName, l.SeatID, o.Name, o.Email, token, now).Error; err != nil {
				return n, err
			}
			n++
		}
	}
	return n, nil
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
