package tickets

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"testing"
	"time"

	"github.com/google/uuid"
)

// The v2 layout: 164 characters, every claim back as signed, bound to its
// chain, and no byte changeable without the signature failing.
func TestTokenV2RoundTripAndTamper(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	c := Claims{KeyID: 7, EventID: uuid.New(), TicketID: uuid.Must(uuid.NewV7()), ZoneID: uuid.New(),
		NotBefore: time.Unix(1_900_000_000, 0).UTC(), Expires: time.Unix(1_900_086_400, 0).UTC()}
	tok := SignV2(priv, "acme", c)
	if len(tok) != TokenV2Chars || TokenV2Chars != 164 || IsV1(tok) {
		t.Fatalf("token %q: %d characters", tok, len(tok))
	}
	got, err := VerifyV2(pub, "acme", tok)
	if err != nil || got != c {
		t.Fatalf("claims %+v, %v; want %+v", got, err, c)
	}
	if _, err := VerifyV2(pub, "acme-2", tok); err == nil {
		t.Fatal("verified for another chain")
	}
	raw, _ := base64.RawURLEncoding.DecodeString(tok)
	for i := range raw {
		b := append([]byte(nil), raw...)
		b[i] ^= 0x40
		if _, err := VerifyV2(pub, "acme", base64.RawURLEncoding.EncodeToString(b)); err == nil {
			t.Fatalf("byte %d changed and the token still verified", i)
		}
	}
	for _, bad := range []string{"", tok[:163], tok + "A", tok[:100] + "." + tok[101:], "////" + tok[4:]} {
		if _, err := VerifyV2(pub, "acme", bad); err == nil {
			t.Fatalf("%q verified", bad)
		}
	}
	// Open ends stay open.
	open := SignV2(priv, "acme", Claims{KeyID: 1, EventID: c.EventID, TicketID: c.TicketID, ZoneID: c.ZoneID})
	if got, err := VerifyV2(pub, "acme", open); err != nil || !got.NotBefore.IsZero() || !got.Expires.IsZero() {
		t.Fatalf("open window: %+v %v", got, err)
	}
}

func TestValidityCheck(t *testing.T) {
	from, until := time.Unix(1000, 0), time.Unix(2000, 0)
	for _, tc := range []struct {
		v    Validity
		at   int64
		want string
	}{
		{Validity{}, 5, ""},
		{Validity{From: from}, 999, "not_yet_valid"},
		{Validity{From: from}, 1000, ""},
		{Validity{Until: until}, 1999, ""},
		{Validity{Until: until}, 2000, "expired"},
		{Validity{From: from, Until: until}, 1500, ""},
	} {
		if got := tc.v.Check(time.Unix(tc.at, 0)); got != tc.want {
			t.Errorf("%+v at %d: %q, want %q", tc.v, tc.at, got, tc.want)
		}
	}
}
