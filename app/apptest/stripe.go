package apptest

import (
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// StripeMock returns the address of the stripe-mock the tests pay against
// (MARQUEE_TEST_STRIPE_URL, else where deployments/local/services.sh starts
// it), failing the test at once if nothing answers there.
func StripeMock(t testing.TB) string {
	t.Helper()
	u := os.Getenv("MARQUEE_TEST_STRIPE_URL")
	if u == "" {
		u = "http://127.0.0.1:12111"
	}
	c, err := net.DialTimeout("tcp", strings.TrimPrefix(u, "http://"), 2*time.Second)
	if err != nil {
		t.Fatalf("stripe-mock is not running at %s (start it with deployments/local/services.sh --for-tests): %v", u, err)
	}
	c.Close()
	return u
}
