package app

import (
	"strings"
	"testing"

	"marquee/config"
	"marquee/internal/keyslot"
)

// Per-address limits count an IPv6 client by its /64 (one subscriber's
// usual allocation), an IPv4 client by its address.
func TestAddressBlock(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"203.0.113.7", "203.0.113.7"},
		{"2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"},
		{"2001:db8:1:2:bbbb:cccc:dddd:eeee", "2001:db8:1:2::/64"},
		{"2001:db8:1:3::1", "2001:db8:1:3::/64"},
		{"::ffff:203.0.113.7", "::ffff:203.0.113.7"},
		{"not an address", "not an address"},
	} {
		if got := addressBlock(tc.in); got != tc.want {
			t.Errorf("addressBlock(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// The attempt and success scripts take an attempt's three keys at once, so
// on a Redis Cluster they must share a slot, whatever the account and the
// address (an address's key spans accounts, hence one tag for all).
func TestSignInKeysShareOneSlot(t *testing.T) {
	a := &App{Config: config.Config{DeploymentID: "d1"}}
	slot := -1
	for _, c := range []struct{ scope, email, ip string }{
		{"acme", "owner@acme.test", "203.0.113.7"},
		{"globex", "x@globex.test", "2001:db8:1:2::1"},
		{"", "support@marquee.test", "198.51.100.1"},
	} {
		at := a.signInKeys(c.scope, c.email, c.ip)
		if len(at.keys) != 3 {
			t.Fatalf("%d keys", len(at.keys))
		}
		for _, k := range at.keys {
			if !strings.HasPrefix(k, "d1:") {
				t.Errorf("key %q lacks the deployment's prefix", k)
			}
			if slot == -1 {
				slot = keyslot.Of(k)
			}
			if got := keyslot.Of(k); got != slot {
				t.Errorf("key %q in slot %d, want %d with the others", k, got, slot)
			}
		}
	}
}
