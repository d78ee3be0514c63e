package config_test

import (
	"strings"
	"testing"

	"marquee/config"
)

func TestCheckServingRefusesEachDevelopmentSecret(t *testing.T) {
	real := func() config.Config {
		c := config.Defaults()
		c.SecretKey = "a-real-secret-key-long-enough-0123456789"
		c.StripeSecretKey = "sk_live_realkey"
		c.StripeWebhookSecret = "whsec_real"
		return c
	}
	cases := []struct {
		name   string
		change func(*config.Config)
		want   string // "" means accepted
	}{
		{"all real", func(*config.Config) {}, ""},
		{"development secret key", func(c *config.Config) { c.SecretKey = config.DevSecretKey }, "MARQUEE_SECRET_KEY"},
		{"development Stripe key", func(c *config.Config) { c.StripeSecretKey = config.DevStripeSecretKey }, "MARQUEE_STRIPE_SECRET_KEY"},
		{"development webhook secret", func(c *config.Config) { c.StripeWebhookSecret = config.DevStripeWebhookSecret }, "MARQUEE_STRIPE_WEBHOOK_SECRET"},
		{"defaults in development mode", func(c *config.Config) { *c = config.Defaults(); c.Development = true }, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := real()
			tc.change(&c)
			err := c.CheckServing()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "MARQUEE_DEVELOPMENT")):
				t.Fatalf("err = %v, want it to name %s and MARQUEE_DEVELOPMENT", err, tc.want)
			}
		})
	}
}

func TestTestModePaymentsNeedDevelopmentAndATestKey(t *testing.T) {
	for _, tc := range []struct {
		dev  bool
		key  string
		want bool
	}{
		{true, "sk_test_x", true},
		{false, "sk_test_x", false},
		{true, "sk_live_x", false},
		{false, "sk_live_x", false},
	} {
		c := config.Config{Development: tc.dev, StripeSecretKey: tc.key}
		if got := c.TestModePayments(); got != tc.want {
			t.Errorf("development=%v key=%s: %v, want %v", tc.dev, tc.key, got, tc.want)
		}
	}
}

func TestDevelopmentVariable(t *testing.T) {
	t.Setenv("MARQUEE_DEVELOPMENT", "true")
	c, err := config.Load()
	if err != nil || !c.Development {
		t.Fatalf("MARQUEE_DEVELOPMENT=true: %v %v", c.Development, err)
	}
	t.Setenv("MARQUEE_DEVELOPMENT", "maybe")
	if _, err := config.Load(); err == nil {
		t.Fatal("MARQUEE_DEVELOPMENT=maybe accepted")
	}
}

func TestDeploymentNamesRedisAfterTheDatabase(t *testing.T) {
	for _, tc := range []struct{ id, url, want string }{
		{"", "postgres://u:p@db:5432/marquee?sslmode=disable", "marquee"},
		{"", "postgres://u:p@db:5432/Marquee_Bench", "marquee_bench"},
		{"", "host=db dbname=chains_eu user=x", "chains_eu"},
		{"", "postgres://db:5432/", "marquee"}, // no name given: the default
		{"eu-1", "postgres://u:p@db:5432/marquee", "eu-1"},
	} {
		c := config.Config{DeploymentID: tc.id, DatabaseURL: tc.url}
		if got := c.Deployment(); got != tc.want {
			t.Errorf("id %q, database %q: %q, want %q", tc.id, tc.url, got, tc.want)
		}
	}
	t.Setenv("MARQUEE_DEPLOYMENT_ID", "Bad:Name")
	if _, err := config.Load(); err == nil {
		t.Fatal("a deployment id with a colon accepted")
	}
}

func TestDatabaseServers(t *testing.T) {
	t.Setenv("MARQUEE_DATABASE_SERVERS", "second=postgres://u:p@db2:5432/m?sslmode=disable&a=b, third=postgres://db3/m")
	c, err := config.Load()
	if err != nil || len(c.DatabaseServers) != 2 || c.DatabaseServers["second"] != "postgres://u:p@db2:5432/m?sslmode=disable&a=b" {
		t.Fatalf("servers %v, %v", c.DatabaseServers, err)
	}
	for _, bad := range []string{"default=postgres://x/y", "Second=postgres://x/y", "second", "a=postgres://x/y a=postgres://x/z", "b=::not a url"} {
		if _, err := config.ParseServers(bad); err == nil {
			t.Errorf("ParseServers(%q) accepted", bad)
		}
	}
}

func TestRedisCluster(t *testing.T) {
	t.Setenv("MARQUEE_REDIS_CLUSTER", "10.0.0.1:6379, 10.0.0.2:6379,10.0.0.3:6380")
	c, err := config.Load()
	if err != nil || c.RedisCluster == "" {
		t.Fatalf("cluster %q, %v", c.RedisCluster, err)
	}
	o, err := config.RedisClusterOptions(c.RedisCluster)
	if err != nil || len(o.Addrs) != 3 || o.Addrs[2] != "10.0.0.3:6380" {
		t.Fatalf("options %+v, %v", o, err)
	}
	o, err = config.RedisClusterOptions("rediss://u:secret@10.0.0.1:6379?addr=10.0.0.2:6379&addr=10.0.0.3:6379")
	if err != nil || len(o.Addrs) != 3 || o.Password != "secret" || o.TLSConfig == nil {
		t.Fatalf("URL options %+v, %v", o, err)
	}
	for _, bad := range []string{"10.0.0.1", "10.0.0.1:0", "a:1,,b:2", ":6379", "http://x:1"} {
		if _, err := config.RedisClusterOptions(bad); err == nil {
			t.Errorf("RedisClusterOptions(%q) accepted", bad)
		}
	}
	// Both variables set: one of them would silently go unused.
	t.Setenv("MARQUEE_REDIS_URL", "redis://127.0.0.1:6379/0")
	if _, err := config.Load(); err == nil || !strings.Contains(err.Error(), "both set") {
		t.Fatalf("both set: %v", err)
	}
}

// The e-signature provider comes from the environment, whole or not at
// all, and a refusal names the variables without echoing their secrets.
func TestESignProviderFromEnvironment(t *testing.T) {
	const token, key1, key2 = "token-value-never-echoed", "connect-key-one-0123456789abcdef0123", "connect-key-two-0123456789abcdef0123"
	set := func(url, account, tok, keys string) {
		t.Setenv("MARQUEE_ESIGN_URL", url)
		t.Setenv("MARQUEE_ESIGN_ACCOUNT_ID", account)
		t.Setenv("MARQUEE_ESIGN_TOKEN", tok)
		t.Setenv("MARQUEE_ESIGN_CONNECT_KEYS", keys)
	}
	set("https://demo.docusign.net/restapi", "acct-1", token, key1+", "+key2)
	c, err := config.Load()
	if err != nil || c.ESignURL != "https://demo.docusign.net/restapi" || c.ESignAccountID != "acct-1" || c.ESignToken != token ||
		len(c.ESignConnectKeys) != 2 || c.ESignConnectKeys[0] != key1 || c.ESignConnectKeys[1] != key2 {
		t.Fatalf("loaded %+v, %v", c, err)
	}
	set("", "", "", "")
	if c, err := config.Load(); err != nil || c.ESignURL != "" || len(c.ESignConnectKeys) != 0 {
		t.Fatalf("no provider: %v %v", c.ESignURL, err)
	}
	for _, tc := range []struct {
		name, url, account, token, keys, want string
	}{
		{"no token", "https://x.test/restapi", "acct", "", key1, "MARQUEE_ESIGN_TOKEN"},
		{"no account", "https://x.test/restapi", "", token, key1, "MARQUEE_ESIGN_ACCOUNT_ID"},
		{"no connect key", "https://x.test/restapi", "acct", token, "", "MARQUEE_ESIGN_CONNECT_KEYS"},
		{"short connect key", "https://x.test/restapi", "acct", token, "short", "at least 32"},
		{"not a URL", "ftp://x.test", "acct", token, key1, "MARQUEE_ESIGN_URL"},
		{"token without URL", "", "", token, "", "need MARQUEE_ESIGN_URL"},
	} {
		set(tc.url, tc.account, tc.token, tc.keys)
		_, err := config.Load()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want it to name %s", tc.name, err, tc.want)
			continue
		}
		if strings.Contains(err.Error(), token) || strings.Contains(err.Error(), key1) {
			t.Errorf("%s: the error echoes a secret: %v", tc.name, err)
		}
	}
}

// Rental deposits have their own Stripe endpoint: its secret, or the
// platform's webhook secret when none is set.
func TestRentalsWebhookSecret(t *testing.T) {
	c := config.Config{StripeWebhookSecret: "whsec_orders"}
	if got := c.RentalsWebhookSecret(); got != "whsec_orders" {
		t.Fatalf("default: %q", got)
	}
	t.Setenv("MARQUEE_STRIPE_RENTALS_WEBHOOK_SECRET", "whsec_rentals")
	c, err := config.Load()
	if err != nil || c.RentalsWebhookSecret() != "whsec_rentals" {
		t.Fatalf("set: %q %v", c.RentalsWebhookSecret(), err)
	}
}
