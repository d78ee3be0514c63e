// Package buyers signs what an anonymous buyer carries: the buyer token that
// names them, the device token that names their browser or app, and the
// signature of their no-login order link.
package buyers

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"strings"

	"github.com/google/uuid"

	"marquee/tenants"
)

// Signer signs and checks buyer tokens and order links.
type Signer struct {
	secret []byte
}

// New returns a signer keyed by the platform secret.
func New(secretKey string) *Signer { return &Signer{secret: []byte(secretKey)} }

// Signed values: buyer tokens and order links are HMACs of the platform
// secret, bound to the tenant, so they need no storage.

func (s *Signer) mac(parts ...string) string {
	m := hmac.New(sha256.New, s.secret)
	m.Write([]byte(strings.Join(parts, "\x00")))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (s *Signer) macOK(got string, parts ...string) bool {
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(s.mac(parts...))) == 1
}

// NewBuyerToken mints an anonymous buyer id and its signed token.
func (s *Signer) NewBuyerToken(t tenants.Tenant) (id, token string) {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	id = base64.RawURLEncoding.EncodeToString(b)
	return id, s.BuyerToken(t, id)
}

// BuyerToken is the signed token of a buyer id.
func (s *Signer) BuyerToken(t tenants.Tenant, id string) string {
	return id + "." + s.mac("buyer", t.Slug, id)
}

// BuyerFromToken checks a buyer token and returns its buyer id.
func (s *Signer) BuyerFromToken(t tenants.Tenant, token string) (string, bool) {
	id, sig, ok := strings.Cut(token, ".")
	if !ok || len(id) < 8 || len(id) > 64 || !s.macOK(sig, "buyer", t.Slug, id) {
		return "", false
	}
	return id, true
}

// NewDeviceToken mints a device id and its signed token. Only the server
// mints them (the storefront's device cookie, POST /buyer-sessions), so a
// client cannot name a device of its own choosing, nor take another's
// counts by guessing an id: ids are 128 random bits.
func (s *Signer) NewDeviceToken(t tenants.Tenant) (id, token string) {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	id = base64.RawURLEncoding.EncodeToString(b)
	return id, id + "." + s.mac("device", t.Slug, id)
}

// DeviceFromToken checks a device token and returns its device id.
func (s *Signer) DeviceFromToken(t tenants.Tenant, token string) (string, bool) {
	id, sig, ok := strings.Cut(token, ".")
	if !ok || len(id) != 22 || !s.macOK(sig, "device", t.Slug, id) {
		return "", false
	}
	return id, true
}

// OrderSignature signs an order id for the buyer's no-login order link.
func (s *Signer) OrderSignature(t tenants.Tenant, orderID uuid.UUID) string {
	return s.mac("order", t.Slug, orderID.String())
}

// OrderLinkOK checks an order link's signature.
func (s *Signer) OrderLinkOK(t tenants.Tenant, orderID uuid.UUID, sig string) bool {
	return s.macOK(sig, "order", t.Slug, orderID.String())
}

// OrderPath is the buyer's order page.
func (s *Signer) OrderPath(t tenants.Tenant, orderID uuid.UUID) string {
	return "/orders/" + orderID.String() + "?sig=" + s.OrderSignature(t, orderID)
}
