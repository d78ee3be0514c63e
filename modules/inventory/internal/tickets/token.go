package tickets

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/binary"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Ticket tokens, version 2: a fixed binary layout (after pretix's
// pretix_sig1), Ed25519-signed by one of the event's keys, base64url
// without padding. 123 bytes, 164 characters: about half of a v1 token, so
// the QR code is a smaller grid that scanners read from further away.
//
//	offset  size  field
//	     0     1  version, 0x02
//	     1     2  key id: which of the event's keys signed (uint16, big-endian)
//	     3    16  event id (UUID bytes)
//	    19    16  ticket id
//	    35    16  zone id
//	    51     4  not before, Unix seconds (uint32; 0: no bound)
//	    55     4  expires, Unix seconds (uint32; 0: no bound)
//	    59    64  Ed25519 signature over SigningContext(tenant) || bytes 0..58
//
// The tenant's slug is signed but not carried: a token verifies only for
// the chain it was issued by, and a scanner knows its chain. A v1 token
// (JSON claims "." signature) always contains a dot; a v2 token never does.
const (
	TokenVersion2 = 2
	v2BodyLen     = 59
	v2Len         = v2BodyLen + ed25519.SignatureSize
	// TokenV2Chars is the length of a v2 token's text.
	TokenV2Chars = (v2Len*8 + 5) / 6
)

// TokenV2Layout documents the format for the public-key endpoint.
const TokenV2Layout = "base64url(no padding) of 123 bytes: version 0x02 (1) | key id uint16 BE (2) | event id (16) | ticket id (16) | zone id (16) | " +
	"not before uint32 BE Unix s, 0 none (4) | expires uint32 BE Unix s, 0 none (4) | Ed25519 signature (64) over " +
	"\"marquee-ticket/2\\x00\" + tenant slug + \"\\x00\" + the first 59 bytes"

// Claims are what a v2 ticket token says.
type Claims struct {
	KeyID     uint16
	EventID   uuid.UUID
	TicketID  uuid.UUID
	ZoneID    uuid.UUID
	NotBefore time.Time // zero: valid from issue
	Expires   time.Time // zero: no end
}

// SigningContext is what precedes a v2 token's bytes under its signature:
// a domain separator, so no other Ed25519 message of ours can pass for a
// ticket, and the tenant, so a ticket verifies at its own chain only.
func SigningContext(tenant string) []byte {
	return []byte("marquee-ticket/2\x00" + tenant + "\x00")
}

func unixOrZero(t time.Time) uint32 {
	if t.IsZero() || t.Unix() <= 0 {
		return 0
	}
	if t.Unix() > int64(^uint32(0)) {
		return ^uint32(0)
	}
	return uint32(t.Unix())
}

func timeOrZero(s uint32) time.Time {
	if s == 0 {
		return time.Time{}
	}
	return time.Unix(int64(s), 0).UTC()
}

// SignV2 builds and signs a v2 token for tenant's chain.
func SignV2(priv ed25519.PrivateKey, tenant string, c Claims) string {
	b := make([]byte, v2BodyLen, v2Len)
	b[0] = TokenVersion2
	binary.BigEndian.PutUint16(b[1:3], c.KeyID)
	copy(b[3:19], c.EventID[:])
	copy(b[19:35], c.TicketID[:])
	copy(b[35:51], c.ZoneID[:])
	binary.BigEndian.PutUint32(b[51:55], unixOrZero(c.NotBefore))
	binary.BigEndian.PutUint32(b[55:59], unixOrZero(c.Expires))
	msg := append(SigningContext(tenant), b...)
	b = append(b, ed25519.Sign(priv, msg)...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// ParseV2 reads a v2 token's claims without checking its signature (the
// scanner needs the event and key id to pick the key). It returns the raw
// bytes for VerifyV2Bytes.
func ParseV2(token string) (Claims, []byte, error) {
	if len(token) != TokenV2Chars || strings.ContainsRune(token, '.') {
		return Claims{}, nil, ErrBadToken
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(token)
	if err != nil || len(b) != v2Len || b[0] != TokenVersion2 {
		return Claims{}, nil, ErrBadToken
	}
	var c Claims
	c.KeyID = binary.BigEndian.Uint16(b[1:3])
	copy(c.EventID[:], b[3:19])
	copy(c.TicketID[:], b[19:35])
	copy(c.ZoneID[:], b[35:51])
	c.NotBefore = timeOrZero(binary.BigEndian.Uint32(b[51:55]))
	c.Expires = timeOrZero(binary.BigEndian.Uint32(b[55:59]))
	return c, b, nil
}

// verifyV2Bytes checks the signature of a parsed v2 token.
func verifyV2Bytes(pub ed25519.PublicKey, tenant string, b []byte) bool {
	if len(pub) != ed25519.PublicKeySize || len(b) != v2Len {
		return false
	}
	return ed25519.Verify(pub, append(SigningContext(tenant), b[:v2BodyLen]...), b[v2BodyLen:])
}

// VerifyV2 checks a v2 token against one public key of its event and
// returns its claims (ErrBadToken for anything that does not verify).
func VerifyV2(pub ed25519.PublicKey, tenant, token string) (Claims, error) {
	c, b, err := ParseV2(token)
	if err != nil || !verifyV2Bytes(pub, tenant, b) {
		return Claims{}, ErrBadToken
	}
	return c, nil
}

// IsV1 says whether a token is in the first (JSON) format.
func IsV1(token string) bool { return strings.ContainsRune(token, '.') }

// Validity is the window a ticket admits in; zero ends are open.
type Validity struct {
	From, Until time.Time
}

// Check answers "" when at lies in the window, else "not_yet_valid" or
// "expired" (whole seconds: the token carries no finer times).
func (v Validity) Check(at time.Time) string {
	switch {
	case !v.From.IsZero() && at.Before(v.From):
		return "not_yet_valid"
	case !v.Until.IsZero() && !at.Before(v.Until):
		return "expired"
	}
	return ""
}
