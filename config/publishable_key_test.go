package config

import (
	"strings"
	"testing"
)

func TestStripePublishableKey(t *testing.T) {
	cases := []struct {
		secret, publishable, err string
	}{
		{"", "", ""},
		{"", "pk_test_abc", ""},
		{"sk_live_abc", "pk_live_abc", ""},
		{"rk_live_abc", "pk_live_abc", ""},
		{"sk_live_abc", "", "required with a live"},
		{"", "sk_test_abc", "never a secret key"},
		{"sk_live_abc", "sk_live_abc", "never a secret key"},
		{"", "pk_live_abc", "both be test-mode or both live-mode"},
		{"sk_live_abc", "pk_test_abc", "both be test-mode or both live-mode"},
	}
	for _, tc := range cases {
		env := map[string]string{"MARQUEE_STRIPE_SECRET_KEY": tc.secret, "MARQUEE_STRIPE_PUBLISHABLE_KEY": tc.publishable}
		c, err := load(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
		if tc.err == "" {
			if err != nil || c.StripePublishableKey != tc.publishable {
				t.Errorf("%s/%s: %v, key %q", tc.secret, tc.publishable, err, c.StripePublishableKey)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s/%s: error %v, want %q", tc.secret, tc.publishable, err, tc.err)
		} else if tc.publishable != "" && strings.Contains(err.Error(), tc.publishable) {
			t.Errorf("the error repeats the key: %v", err)
		}
	}
}
