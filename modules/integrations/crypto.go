package integrations

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"golang.org/x/crypto/hkdf"
	"gorm.io/gorm"

	"marquee/tenants"
)

// Credentials are sealed with AES-256-GCM under a key derived with HKDF-SHA256
// from MARQUEE_SECRET_KEY. The key id stored next to each sealed value is
// "g<generation>-<fingerprint>": the generation counts rotations, the
// fingerprint (an HMAC of the secret, never the secret) says which secret
// derived it, so a rotation after MARQUEE_SECRET_KEY changed can still open
// values sealed under the previous secret (given as
// MARQUEE_PREVIOUS_SECRET_KEY to `marquee integrations rotate-key`). The
// connector id is the associated data: a sealed value copied to another
// connector does not open.

// Keyring derives and recognises credential keys.
type Keyring struct {
	secrets map[string]string // fingerprint → secret
	current string            // fingerprint of the current secret
}

// NewKeyring builds a keyring from the current secret and, optionally, the
// previous ones (for opening values sealed before the secret changed).
func NewKeyring(current string, previous ...string) *Keyring {
	k := &Keyring{secrets: map[string]string{}, current: fingerprint(current)}
	k.secrets[k.current] = current
	for _, p := range previous {
		if p != "" {
			k.secrets[fingerprint(p)] = p
		}
	}
	return k
}

func fingerprint(secret string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("marquee integrations key fingerprint v1"))
	return hex.EncodeToString(m.Sum(nil))[:12]
}

// KeyID names the current secret's key of a generation.
func (k *Keyring) KeyID(generation int) string {
	return "g" + strconv.Itoa(generation) + "-" + k.current
}

// Generation reads a key id's generation (0 if malformed).
func Generation(keyID string) int {
	g, _, _ := strings.Cut(strings.TrimPrefix(keyID, "g"), "-")
	n, _ := strconv.Atoi(g)
	return n
}

func (k *Keyring) aead(keyID string) (cipher.AEAD, error) {
	_, fp, ok := strings.Cut(keyID, "-")
	secret, known := k.secrets[fp]
	if !ok || !known {
		return nil, fmt.Errorf("integrations: credential key %s was derived from a secret this process does not have", keyID)
	}
	key := make([]byte, 32)
	if _, err := io.ReadFull(hkdf.New(sha256.New, []byte(secret), []byte("marquee/integrations"), []byte("credentials "+keyID)), key); err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// Seal seals plaintext under keyID for one connector.
func (k *Keyring) Seal(keyID string, connector []byte, plaintext []byte) ([]byte, error) {
	g, err := k.aead(keyID)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, g.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return g.Seal(nonce, nonce, plaintext, connector), nil
}

// Open opens a value sealed under keyID for one connector.
func (k *Keyring) Open(keyID string, connector []byte, sealed []byte) ([]byte, error) {
	g, err := k.aead(keyID)
	if err != nil {
		return nil, err
	}
	if len(sealed) < g.NonceSize() {
		return nil, errors.New("integrations: sealed credentials too short")
	}
	return g.Open(nil, sealed[:g.NonceSize()], sealed[g.NonceSize():], connector)
}

// RotateKeys re-seals every connector's credentials of a chain under the
// next key generation of the current secret, in one transaction (all or
// none). Values sealed under a previous secret open if the keyring has it.
// It returns how many connectors were re-sealed and the new key id.
func (s *Service) RotateKeys(ctx context.Context, t tenants.Tenant, previousSecrets ...string) (int, string, error) {
	keys := NewKeyring(s.app.Config.SecretKey, previousSecrets...)
	n, kid := 0, ""
	err := s.app.Tx(ctx, t, func(tx *gorm.DB) error {
		var rows []struct {
			ID     uuid.UUID `gorm:"column:id"`
			KeyID  string    `gorm:"column:key_id"`
			Sealed []byte    `gorm:"column:credentials_sealed"`
		}
		if err := tx.Raw(`SELECT id, key_id, credentials_sealed FROM int_connectors ORDER BY id FOR UPDATE`).Scan(&rows).Error; err != nil {
			return err
		}
		gen := 0
		for _, r := range rows {
			gen = max(gen, Generation(r.KeyID))
		}
		kid = keys.KeyID(gen + 1)
		for _, r := range rows {
			plain, err := keys.Open(r.KeyID, r.ID[:], r.Sealed)
			if err != nil {
				return fmt.Errorf("connector %s: %w", r.ID, err)
			}
			sealed, err := keys.Seal(kid, r.ID[:], plain)
			if err != nil {
				return err
			}
			if err := tx.Exec(`UPDATE int_connectors SET credentials_sealed = ?, key_id = ? WHERE id = ?`, sealed, kid, r.ID).Error; err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, kid, err
}
