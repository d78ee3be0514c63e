package booking_test

import (
	"net/http"
	"testing"
	"time"

	"marquee/app"
	"marquee/app/apptest"
	"marquee/config"
	"marquee/modules/booking"
	"marquee/modules/booking/esignfake"
	"marquee/modules/calendar"
)

// TestESignProviderFromConfig: with MARQUEE_ESIGN_* naming a provider (the
// local fake the demo runs) and nothing plugged in code, a contract goes
// to it; the fake signs for both parties and its Connect delivery, verified
// with the configured key, records both signatures and the contract is
// sealed. Without the configuration there is no provider.
func TestESignProviderFromConfig(t *testing.T) {
	const key = "connect-key-of-the-configured-account-0123"
	fake, err := esignfake.Start("127.0.0.1:0", "acct-cfg", "token-cfg", []byte(key))
	if err != nil {
		t.Fatal(err)
	}
	fake.AutoComplete = true
	fake.OnError = func(err error) { t.Errorf("Connect delivery: %v", err) }
	t.Cleanup(func() { _ = fake.Close() })
	env := apptest.Start(t, dbURL, apptest.Options{Modules: []app.Module{calendar.New(), booking.New()},
		Configure: func(c *config.Config) {
			c.ESignURL, c.ESignAccountID, c.ESignToken = fake.URL(), "acct-cfg", "token-cfg"
			c.ESignConnectKeys = []string{"an-older-rotated-key-0123456789abcdef", key}
		}})
	srv := env.App.Jobs.NewServer(2)
	if err := srv.Start(env.App.Jobs.Mux()); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	c := newChain(t, env, "esigncfg")
	fake.DeliverTo(env.Server.URL+"/api/v1/booking/esign/connect", func(tenant string) string { return tenant + ".localhost" })

	id := c.accepted(t, 8).ID.String()
	res := c.do(t, "PUT", "/api/v1/bookings/"+id+"/contract/esign", nil)
	mustStatus(t, res, http.StatusOK)
	if ct := decode[booking.ContractView](t, res.Body); ct.Provider != "esign" || ct.EnvelopeID == nil {
		t.Fatalf("sent contract: %+v", ct)
	}
	apptest.Eventually(t, 20*time.Second, "the provider's signatures arrive and the contract is sealed", func() bool {
		return c.contractOf(t, id).Status == booking.ContractSealed
	})
	ct := c.contractOf(t, id)
	if len(ct.Signatures) != 2 {
		t.Fatalf("signatures through the provider: %+v", ct.Signatures)
	}
	for _, s := range ct.Signatures {
		if s.Via != "docusign" || s.DocumentSHA256 != ct.SHA256 {
			t.Fatalf("a signature not through the provider, or over another document: %+v", s)
		}
	}

	// No configuration, no provider: the chain signs with click-to-sign.
	plain, _ := startEnv(t)
	c2 := newChain(t, plain, "esignnone")
	id2 := c2.accepted(t, 9).ID.String()
	mustProblem(t, c2.do(t, "PUT", "/api/v1/bookings/"+id2+"/contract/esign", nil), http.StatusConflict, "esign_not_configured")
}
