package app

import "testing"

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
