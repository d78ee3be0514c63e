package tickets

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/modules/inventory/internal/deps"
	"marquee/tenants"
)

// An event's keys. v2 tokens are signed by the event's newest key; a
// rotation adds a key (older ones keep verifying the tickets they signed,
// and re-issuing those moves them to the new key). Verification reads
// public keys from a per-process cache, so a scan checks its signature
// before any database work once the event's keys are known.

// EventKey is one of an event's verification keys.
type EventKey struct {
	KeyID     uint16
	Public    ed25519.PublicKey
	CreatedAt time.Time
}

// keySet is an event's public keys as last read.
type keySet struct {
	keys   map[uint16]EventKey
	newest uint16
	read   time.Time
}

// keyReloadEvery bounds how often an unknown key id makes this process read
// an event's keys again (a rotation made by another instance shows up at
// the first scan of a token signed with the new key).
const keyReloadEvery = time.Second

type eventKeyRow struct {
	KID        int       `gorm:"column:kid"`
	Public     []byte    `gorm:"column:public_key"`
	PrivateEnc []byte    `gorm:"column:private_enc"`
	CreatedAt  time.Time `gorm:"column:created_at"`
}

func (s *Service) keyAAD(t tenants.Tenant, eventID uuid.UUID, kid int) []byte {
	return []byte(t.Slug + "/" + eventID.String() + "/" + strconv.Itoa(kid))
}

// readKeys loads an event's public keys (no private key is unsealed).
func (s *Service) readKeys(ctx context.Context, t tenants.Tenant, eventID uuid.UUID) (*keySet, error) {
	var rows []eventKeyRow
	err := s.d.App.TxWith(ctx, t, tenants.TxOptions{ReadOnly: true}, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT kid, public_key, created_at FROM inv_ticket_keys WHERE event_id = ? ORDER BY kid`, eventID).Scan(&rows).Error
	})
	if err != nil {
		return nil, err
	}
	ks := &keySet{keys: map[uint16]EventKey{}, read: time.Now()}
	for _, r := range rows {
		k := EventKey{KeyID: uint16(r.KID), Public: ed25519.PublicKey(r.Public), CreatedAt: r.CreatedAt}
		ks.keys[k.KeyID] = k
		ks.newest = max(ks.newest, k.KeyID)
	}
	if len(rows) > 0 {
		s.eventKeys.Store(deps.EventKey(t, eventID), ks)
	}
	return ks, nil
}

// publicKey returns the event's key kid, from the cache or, when the cache
// lacks it (first use, or a rotation elsewhere), from the database at most
// once per keyReloadEvery.
func (s *Service) publicKey(ctx context.Context, t tenants.Tenant, eventID uuid.UUID, kid uint16) (ed25519.PublicKey, error) {
	if v, ok := s.eventKeys.Load(deps.EventKey(t, eventID)); ok {
		ks := v.(*keySet)
		if k, ok := ks.keys[kid]; ok {
			return k.Public, nil
		}
		if time.Since(ks.read) < keyReloadEvery {
			return nil, ErrBadToken
		}
	}
	ks, err := s.readKeys(ctx, t, eventID)
	if err != nil {
		return nil, err
	}
	if k, ok := ks.keys[kid]; ok {
		return k.Public, nil
	}
	return nil, ErrBadToken
}

// EventKeys lists an event's verification keys, oldest first, creating the
// first one if the event has none yet (scanners fetch keys before doors,
// maybe before the first sale).
func (s *Service) EventKeys(ctx context.Context, t tenants.Tenant, eventID uuid.UUID) ([]EventKey, error) {
	ks, err := s.readKeys(ctx, t, eventID)
	if err != nil {
		return nil, err
	}
	if len(ks.keys) == 0 {
		if err := s.d.Tx(ctx, t, func(tx *gorm.DB) error {
			_, err := s.currentSigner(ctx, t, tx, eventID)
			return err
		}); err != nil {
			return nil, err
		}
		if ks, err = s.readKeys(ctx, t, eventID); err != nil {
			return nil, err
		}
	}
	out := make([]EventKey, 0, len(ks.keys))
	for id := uint16(1); id <= ks.newest; id++ {
		if k, ok := ks.keys[id]; ok {
			out = append(out, k)
		}
	}
	return out, nil
}

// signer is an event key with its private half, unsealed.
type signer struct {
	kid  uint16
	priv ed25519.PrivateKey
}

// currentSigner returns the event's newest key, unsealed, creating key 1
// when the event has none. It reads which key is newest in tx every time
// (a rotation on another instance counts at once); unsealed keys are
// cached by id.
func (s *Service) currentSigner(ctx context.Context, t tenants.Tenant, tx *gorm.DB, eventID uuid.UUID) (signer, error) {
	var rows []eventKeyRow
	read := func() error {
		return tx.Raw(`SELECT kid, public_key, private_enc, created_at FROM inv_ticket_keys WHERE event_id = ? ORDER BY kid DESC LIMIT 1`, eventID).Scan(&rows).Error
	}
	if err := read(); err != nil {
		return signer{}, err
	}
	if len(rows) == 0 {
		if err := s.insertKey(t, tx, eventID, 1); err != nil {
			return signer{}, err
		}
		if err := read(); err != nil {
			return signer{}, err
		}
		if len(rows) == 0 {
			return signer{}, errors.New("ticket key not stored")
		}
	}
	return s.unseal(t, eventID, rows[0])
}

func (s *Service) unseal(t tenants.Tenant, eventID uuid.UUID, r eventKeyRow) (signer, error) {
	ck := deps.EventKey(t, eventID) + "/" + strconv.Itoa(r.KID)
	if v, ok := s.signers.Load(ck); ok {
		return v.(signer), nil
	}
	seed, err := s.open(t, r.PrivateEnc, s.keyAAD(t, eventID, r.KID))
	if err != nil {
		return signer{}, fmt.Errorf("open ticket key %d of event %s: %w", r.KID, eventID, err)
	}
	sg := signer{kid: uint16(r.KID), priv: ed25519.NewKeyFromSeed(seed)}
	s.signers.Store(ck, sg)
	return sg, nil
}

// insertKey stores a new key pair under kid; when another transaction
// stored that kid first, theirs stands (the caller reads the newest back).
func (s *Service) insertKey(t tenants.Tenant, tx *gorm.DB, eventID uuid.UUID, kid int) error {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	sealed, err := s.seal(t, priv.Seed(), s.keyAAD(t, eventID, kid))
	if err != nil {
		return err
	}
	return tx.Exec(`INSERT INTO inv_ticket_keys (event_id, kid, public_key, private_enc) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`,
		eventID, kid, []byte(pub), sealed).Error
}

// RotateKey adds a new key to the event, which signs every ticket issued
// or re-issued from then on; it returns its id. Tokens signed by older keys
// keep verifying until their tickets are re-issued (ReissueOlder).
func (s *Service) RotateKey(ctx context.Context, t tenants.Tenant, eventID uuid.UUID) (uint16, error) {
	var kid int
	err := s.d.Tx(ctx, t, func(tx *gorm.DB) error {
		// Two rotations at once may pick the same id: the second insert does
		// nothing, and both answer the one key stored.
		if err := tx.Raw(`SELECT coalesce(max(kid), 0) FROM inv_ticket_keys WHERE event_id = ?`, eventID).Row().Scan(&kid); err != nil {
			return err
		}
		kid++
		if kid > 65535 {
			return errors.New("an event has at most 65,535 ticket keys")
		}
		return s.insertKey(t, tx, eventID, kid)
	})
	if err != nil {
		return 0, err
	}
	_, err = s.readKeys(ctx, t, eventID)
	return uint16(kid), err
}

// LegacyKey returns the tenant's v1 key (it verifies tokens issued before
// v2), or nil when the tenant never issued one. It never creates one.
func (s *Service) LegacyKey(ctx context.Context, t tenants.Tenant) (ed25519.PublicKey, error) {
	if v, ok := s.keys.Load(t.Slug); ok {
		return v.(*signingKey).pub, nil
	}
	var rows []struct {
		Public []byte `gorm:"column:public_key"`
	}
	err := s.d.App.TxWith(ctx, t, tenants.TxOptions{ReadOnly: true}, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT public_key FROM inv_signing_keys WHERE id = 1`).Scan(&rows).Error
	})
	if err != nil || len(rows) == 0 {
		return nil, err
	}
	return ed25519.PublicKey(rows[0].Public), nil
}

// Verified is what a verified token (either version) says.
type Verified struct {
	Version  int
	TicketID uuid.UUID
	EventID  uuid.UUID
	ZoneID   uuid.UUID // v2 only (a v1 token names its zone; the ticket row has its id)
	KeyID    uint16    // v2 only
	Validity Validity
}

// Verify checks a ticket token of tenant t, v2 against its event's keys
// and v1 against the tenant's key; ErrBadToken for anything forged,
// garbled, of another chain, or signed by a key the event does not have.
// With the keys cached it does no database work.
//
// A token that verified is remembered (verifiedCache): its next scans
// skip the signature check.
func (s *Service) Verify(ctx context.Context, t tenants.Tenant, token string) (Verified, error) {
	if len(token) > 2048 {
		return Verified{}, ErrBadToken
	}
	key := verifiedKey(t.Slug, token)
	if v, ok := s.verified.get(key); ok {
		return v, nil
	}
	v, err := s.verify(ctx, t, token)
	if err == nil {
		s.verified.put(key, v)
	}
	return v, err
}

func (s *Service) verify(ctx context.Context, t tenants.Tenant, token string) (Verified, error) {
	if IsV1(token) {
		return s.verifyV1(ctx, t, token)
	}
	c, b, err := ParseV2(token)
	if err != nil {
		return Verified{}, err
	}
	pub, err := s.publicKey(ctx, t, c.EventID, c.KeyID)
	if err != nil {
		return Verified{}, err
	}
	if !verifyV2Bytes(pub, t.Slug, b) {
		return Verified{}, ErrBadToken
	}
	return Verified{Version: TokenVersion2, TicketID: c.TicketID, EventID: c.EventID, ZoneID: c.ZoneID, KeyID: c.KeyID,
		Validity: Validity{From: c.NotBefore, Until: c.Expires}}, nil
}

func (s *Service) verifyV1(ctx context.Context, t tenants.Tenant, token string) (Verified, error) {
	pub, err := s.legacyKeyCached(ctx, t)
	if err != nil || pub == nil {
		if err == nil {
			err = ErrBadToken
		}
		return Verified{}, err
	}
	c, err := VerifyToken(pub, token)
	if err != nil || c.Tenant != t.Slug {
		return Verified{}, ErrBadToken
	}
	tid, err1 := uuid.Parse(c.TicketID)
	eid, err2 := uuid.Parse(c.EventID)
	if err1 != nil || err2 != nil {
		return Verified{}, ErrBadToken
	}
	return Verified{Version: 1, TicketID: tid, EventID: eid}, nil
}

// legacyKeys caches LegacyKey per tenant (a tenant without one is asked
// again at most once per keyReloadEvery).
type legacyEntry struct {
	pub  ed25519.PublicKey
	read time.Time
}

func (s *Service) legacyKeyCached(ctx context.Context, t tenants.Tenant) (ed25519.PublicKey, error) {
	if v, ok := s.legacy.Load(t.Slug); ok {
		e := v.(legacyEntry)
		if e.pub != nil || time.Since(e.read) < keyReloadEvery {
			return e.pub, nil
		}
	}
	pub, err := s.LegacyKey(ctx, t)
	if err != nil {
		return nil, err
	}
	s.legacy.Store(t.Slug, legacyEntry{pub: pub, read: time.Now()})
	return pub, nil
}

// keyCaches are the Service's per-process caches of keys.
type keyCaches struct {
	eventKeys sync.Map // tenant/event → *keySet
	signers   sync.Map // tenant/event/kid → signer
	legacy    sync.Map // tenant slug → legacyEntry
	verified  *verifiedCache
}

// SignWith signs claims with the event's key kid, whatever key is current:
// what someone holding a leaked old key could do (tests).
func (s *Service) SignWith(ctx context.Context, t tenants.Tenant, kid int, c Claims) (string, error) {
	var rows []eventKeyRow
	err := s.d.Tx(ctx, t, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT kid, public_key, private_enc, created_at FROM inv_ticket_keys WHERE event_id = ? AND kid = ?`, c.EventID, kid).Scan(&rows).Error
	})
	if err != nil || len(rows) == 0 {
		return "", errors.Join(err, ErrBadToken)
	}
	sg, err := s.unseal(t, c.EventID, rows[0])
	if err != nil {
		return "", err
	}
	c.KeyID = sg.kid
	return SignV2(sg.priv, t.Slug, c), nil
}
