package keyslot

import "testing"

// The specification's check value (CRC16/XMODEM of "123456789" is 0x31C3)
// and its hash tag rules; CLUSTER KEYSLOT agreement is tested against a
// real cluster in the app package.
func TestOf(t *testing.T) {
	for key, want := range map[string]int{
		"123456789":             0x31C3,
		"foo":                   12182,
		"{user1000}.following":  Of("user1000"),
		"{user1000}.followers":  Of("user1000"),
		"foo{{bar}}zap":         Of("{bar"), // the tag ends at the first }
		"foo{bar}{zap}":         Of("bar"),
		"d:wr:{acme:e1}:queue":  Of("acme:e1"),
		"d:{login}:ip:10.0.0.1": Of("login"),
	} {
		if got := Of(key); got != want {
			t.Errorf("Of(%q) = %d, want %d", key, got, want)
		}
	}
}
