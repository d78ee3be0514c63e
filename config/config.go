// Package config holds the platform's configuration, its defaults and its
// loading from MARQUEE_* environment variables.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/redis/go-redis/v9"
)

// Config is everything a Marquee process needs to start. It is built once by
// Load and passed explicitly; nothing reads the environment after that.
type Config struct {
	DatabaseURL string // MARQUEE_DATABASE_URL: the control plane, and the "default" tenant server
	// DatabaseServers are the further PostgreSQL servers tenants may be
	// placed on, by name (MARQUEE_DATABASE_SERVERS: "name=url" pairs
	// separated by whitespace or commas). The registry records each
	// tenant's server by this name, so a name must keep meaning the same
	// server for as long as tenants live there.
	DatabaseServers map[string]string
	RedisURL        string // MARQUEE_REDIS_URL
	RedisCluster    string // MARQUEE_REDIS_CLUSTER: a Redis Cluster instead of RedisURL (RedisClusterOptions)
	HTTPAddr        string // MARQUEE_HTTP_ADDR
	BaseDomain      string // MARQUEE_BASE_DOMAIN: tenants live at {slug}.{BaseDomain}
	SecretKey       string // MARQUEE_SECRET_KEY: signs CSRF tokens and links
	// DeploymentID names this deployment's keys, queues and channels in
	// Redis (MARQUEE_DEPLOYMENT_ID); empty: the database's name. See Deployment.
	DeploymentID string

	// Development allows the built-in development secrets and the test-mode
	// payment step (MARQUEE_DEVELOPMENT; `demo` and `bench` set it).
	Development bool

	SessionTTL        time.Duration // MARQUEE_SESSION_TTL
	SupportVisitTTL   time.Duration // MARQUEE_SUPPORT_VISIT_TTL
	MaxBodyBytes      int64         // MARQUEE_MAX_BODY_BYTES
	MigrateParallel   int           // MARQUEE_MIGRATE_PARALLEL
	LogLevel          string        // MARQUEE_LOG_LEVEL
	ShutdownGrace     time.Duration // MARQUEE_SHUTDOWN_GRACE
	WorkerConcurrency int           // MARQUEE_WORKER_CONCURRENCY
	PasswordCost      int           // MARQUEE_PASSWORD_COST: bcrypt cost
	MaxInFlight       int           // MARQUEE_MAX_INFLIGHT: tenant requests served at once
	TenantMaxInFlight int           // MARQUEE_TENANT_MAX_INFLIGHT: of which one tenant may hold (about the DB pool size)
	ShedWait          time.Duration // MARQUEE_SHED_WAIT: how long a request may wait for a slot
	TrustedProxies    []string      // MARQUEE_TRUSTED_PROXIES: comma-separated CIDRs whose X-Forwarded-For is believed
	BodyReadTimeout   time.Duration // MARQUEE_BODY_READ_TIMEOUT: a request body must arrive within it
	StreamsPerClient  int           // MARQUEE_STREAMS_PER_CLIENT: live event streams one client address may hold open
	MetricsToken      string        // MARQUEE_METRICS_TOKEN: when set, /metrics asks for it as a bearer token

	// Stripe (one account for now; per-tenant accounts come with integrations).
	StripeAPIURL        string // MARQUEE_STRIPE_API_URL: empty means Stripe itself
	StripeSecretKey     string // MARQUEE_STRIPE_SECRET_KEY
	StripeWebhookSecret string // MARQUEE_STRIPE_WEBHOOK_SECRET
	// StripeRentalsWebhookSecret (MARQUEE_STRIPE_RENTALS_WEBHOOK_SECRET) is
	// the signing secret of the endpoint for venue rental deposits; empty:
	// the same as StripeWebhookSecret (one secret for both, as `stripe
	// listen` forwarding gives).
	StripeRentalsWebhookSecret string
	// StripePublishableKey (MARQUEE_STRIPE_PUBLISHABLE_KEY) is the pk_test_/pk_live_
	// key the storefront hands Stripe.js for the card form; it is public by design.
	StripePublishableKey string

	// Mail: the SMTP server every message goes through
	// (MARQUEE_SMTP_URL: smtp://[user:pass@]host:port[?tls=none|required]
	// or smtps://…; empty: mail stays queued, and `demo` starts a local
	// catcher) and the sender (MARQUEE_MAIL_FROM).
	SMTPURL  string
	MailFrom string

	// Apple Wallet: the Pass Type ID certificate and its key (PEM files),
	// Apple's WWDR intermediate (PEM), the pass type and team identifiers.
	// Unset: no Apple Wallet passes (demo generates throwaway ones).
	WalletPassTypeID string // MARQUEE_WALLET_PASS_TYPE_ID
	WalletTeamID     string // MARQUEE_WALLET_TEAM_ID
	WalletCertFile   string // MARQUEE_WALLET_CERT_FILE
	WalletKeyFile    string // MARQUEE_WALLET_KEY_FILE
	WalletWWDRFile   string // MARQUEE_WALLET_WWDR_FILE
	// Google Wallet: the issuer id, the service account's e-mail and its
	// RSA private key (PEM file). Unset: no Google Wallet links.
	GoogleWalletIssuerID       string // MARQUEE_GOOGLE_WALLET_ISSUER_ID
	GoogleWalletServiceAccount string // MARQUEE_GOOGLE_WALLET_SERVICE_ACCOUNT
	GoogleWalletKeyFile        string // MARQUEE_GOOGLE_WALLET_KEY_FILE

	// Object storage (contracts, invoices, photos): a directory on the
	// local disk (MARQUEE_OBJECTS_DIR; empty: the user's cache directory),
	// or an S3-compatible bucket when MARQUEE_OBJECTS_S3_ENDPOINT is set
	// ("https://host[:port]"; "http://" for a local server).
	ObjectsDir         string
	ObjectsS3Endpoint  string // MARQUEE_OBJECTS_S3_ENDPOINT
	ObjectsS3Bucket    string // MARQUEE_OBJECTS_S3_BUCKET
	ObjectsS3Region    string // MARQUEE_OBJECTS_S3_REGION
	ObjectsS3AccessKey string // MARQUEE_OBJECTS_S3_ACCESS_KEY
	ObjectsS3SecretKey string // MARQUEE_OBJECTS_S3_SECRET_KEY

	// E-signature provider for booking contracts (DocuSign's eSignature
	// REST API and Connect webhooks). Unset: contracts are signed with the
	// built-in click-to-sign only (`demo` starts a local fake provider).
	ESignURL       string // MARQUEE_ESIGN_URL: the REST base, e.g. https://demo.docusign.net/restapi
	ESignAccountID string // MARQUEE_ESIGN_ACCOUNT_ID: the account envelopes are sent from
	ESignToken     string // MARQUEE_ESIGN_TOKEN: the OAuth bearer token (a secret)
	// ESignConnectKeys (MARQUEE_ESIGN_CONNECT_KEYS, comma-separated) are the
	// HMAC keys Connect signs its deliveries with: several while one is
	// rotated, as Connect sends one X-DocuSign-Signature-N per active key.
	ESignConnectKeys []string
}

// Development Stripe credentials: test mode keys that stripe-mock accepts.
const (
	DevStripeSecretKey     = "sk_test_marqueelocaldev"
	DevStripeWebhookSecret = "whsec_marquee_local_development"
)

// DevSecretKey is the secret used when none is configured. It is only
// acceptable for local demos; Validate refuses it outside of them.
const DevSecretKey = "marquee-local-development-secret-do-not-use-in-production"

// Defaults returns the configuration used when no variable is set: the local
// PostgreSQL and Redis that deployments/local/services.sh provides.
func Defaults() Config {
	return Config{
		DatabaseURL:         "postgres://postgres:postgres@127.0.0.1:5432/marquee?sslmode=disable",
		RedisURL:            "redis://127.0.0.1:6379/0",
		HTTPAddr:            "127.0.0.1:8080",
		BaseDomain:          "localhost",
		SecretKey:           DevSecretKey,
		SessionTTL:          12 * time.Hour,
		SupportVisitTTL:     30 * time.Minute,
		MaxBodyBytes:        1 << 20,
		MigrateParallel:     4,
		LogLevel:            "info",
		ShutdownGrace:       20 * time.Second,
		WorkerConcurrency:   10,
		PasswordCost:        11,
		MaxInFlight:         128,
		TenantMaxInFlight:   16,
		ShedWait:            250 * time.Millisecond,
		BodyReadTimeout:     10 * time.Second,
		StreamsPerClient:    32,
		StripeSecretKey:     DevStripeSecretKey,
		StripeWebhookSecret: DevStripeWebhookSecret,
		MailFrom:            "Marquee Tickets <tickets@marquee.localhost>",
	}
}

// Load reads the environment on top of the defaults.
func Load() (Config, error) {
	return load(os.LookupEnv)
}

func load(lookup func(string) (string, bool)) (Config, error) {
	c := Defaults()
	var errs []error
	str := func(name string, dst *string) {
		if v, ok := lookup(name); ok && v != "" {
			*dst = v
		}
	}
	dur := func(name string, dst *time.Duration) {
		if v, ok := lookup(name); ok && v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				errs = append(errs, fmt.Errorf("%s: %q is not a positive duration", name, v))
				return
			}
			*dst = d
		}
	}
	integer := func(name string, dst *int) {
		if v, ok := lookup(name); ok && v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				errs = append(errs, fmt.Errorf("%s: %q is not a positive integer", name, v))
				return
			}
			*dst = n
		}
	}
	str("MARQUEE_DATABASE_URL", &c.DatabaseURL)
	str("MARQUEE_REDIS_URL", &c.RedisURL)
	str("MARQUEE_REDIS_CLUSTER", &c.RedisCluster)
	if c.RedisCluster != "" {
		if v, ok := lookup("MARQUEE_REDIS_URL"); ok && v != "" {
			// Two answers to "which Redis" would leave one of them unused
			// without anyone noticing.
			errs = append(errs, errors.New("MARQUEE_REDIS_URL and MARQUEE_REDIS_CLUSTER are both set: set the one this deployment uses"))
		}
		if _, err := RedisClusterOptions(c.RedisCluster); err != nil {
			errs = append(errs, fmt.Errorf("MARQUEE_REDIS_CLUSTER: %w", err))
		}
	}
	if v, ok := lookup("MARQUEE_DATABASE_SERVERS"); ok && strings.TrimSpace(v) != "" {
		servers, err := ParseServers(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("MARQUEE_DATABASE_SERVERS: %w", err))
		}
		c.DatabaseServers = servers
	}
	str("MARQUEE_HTTP_ADDR", &c.HTTPAddr)
	str("MARQUEE_BASE_DOMAIN", &c.BaseDomain)
	str("MARQUEE_SECRET_KEY", &c.SecretKey)
	str("MARQUEE_LOG_LEVEL", &c.LogLevel)
	str("MARQUEE_STRIPE_API_URL", &c.StripeAPIURL)
	str("MARQUEE_STRIPE_SECRET_KEY", &c.StripeSecretKey)
	str("MARQUEE_STRIPE_WEBHOOK_SECRET", &c.StripeWebhookSecret)
	str("MARQUEE_STRIPE_RENTALS_WEBHOOK_SECRET", &c.StripeRentalsWebhookSecret)
	str("MARQUEE_METRICS_TOKEN", &c.MetricsToken)
	str("MARQUEE_DEPLOYMENT_ID", &c.DeploymentID)
	str("MARQUEE_SMTP_URL", &c.SMTPURL)
	str("MARQUEE_MAIL_FROM", &c.MailFrom)
	str("MARQUEE_WALLET_PASS_TYPE_ID", &c.WalletPassTypeID)
	str("MARQUEE_WALLET_TEAM_ID", &c.WalletTeamID)
	str("MARQUEE_WALLET_CERT_FILE", &c.WalletCertFile)
	str("MARQUEE_WALLET_KEY_FILE", &c.WalletKeyFile)
	str("MARQUEE_WALLET_WWDR_FILE", &c.WalletWWDRFile)
	str("MARQUEE_GOOGLE_WALLET_ISSUER_ID", &c.GoogleWalletIssuerID)
	str("MARQUEE_GOOGLE_WALLET_SERVICE_ACCOUNT", &c.GoogleWalletServiceAccount)
	str("MARQUEE_GOOGLE_WALLET_KEY_FILE", &c.GoogleWalletKeyFile)
	str("MARQUEE_OBJECTS_DIR", &c.ObjectsDir)
	str("MARQUEE_OBJECTS_S3_ENDPOINT", &c.ObjectsS3Endpoint)
	str("MARQUEE_OBJECTS_S3_BUCKET", &c.ObjectsS3Bucket)
	str("MARQUEE_OBJECTS_S3_REGION", &c.ObjectsS3Region)
	str("MARQUEE_OBJECTS_S3_ACCESS_KEY", &c.ObjectsS3AccessKey)
	str("MARQUEE_OBJECTS_S3_SECRET_KEY", &c.ObjectsS3SecretKey)
	str("MARQUEE_ESIGN_URL", &c.ESignURL)
	str("MARQUEE_ESIGN_ACCOUNT_ID", &c.ESignAccountID)
	str("MARQUEE_ESIGN_TOKEN", &c.ESignToken)
	if v, ok := lookup("MARQUEE_ESIGN_CONNECT_KEYS"); ok {
		for _, k := range strings.Split(v, ",") {
			if k = strings.TrimSpace(k); k != "" {
				c.ESignConnectKeys = append(c.ESignConnectKeys, k)
			}
		}
	}
	errs = append(errs, c.checkESign())
	if c.DeploymentID != "" && !deploymentPattern.MatchString(c.DeploymentID) {
		errs = append(errs, fmt.Errorf("MARQUEE_DEPLOYMENT_ID: %q must match %s", c.DeploymentID, deploymentPattern))
	}
	if v, ok := lookup("MARQUEE_DEVELOPMENT"); ok && v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("MARQUEE_DEVELOPMENT: %q is not true or false", v))
		}
		c.Development = b
	}
	str("MARQUEE_STRIPE_PUBLISHABLE_KEY", &c.StripePublishableKey)
	errs = append(errs, c.checkPublishableKey())
	dur("MARQUEE_SESSION_TTL", &c.SessionTTL)
	dur("MARQUEE_SUPPORT_VISIT_TTL", &c.SupportVisitTTL)
	dur("MARQUEE_SHUTDOWN_GRACE", &c.ShutdownGrace)
	integer("MARQUEE_MIGRATE_PARALLEL", &c.MigrateParallel)
	integer("MARQUEE_WORKER_CONCURRENCY", &c.WorkerConcurrency)
	integer("MARQUEE_PASSWORD_COST", &c.PasswordCost)
	integer("MARQUEE_MAX_INFLIGHT", &c.MaxInFlight)
	integer("MARQUEE_TENANT_MAX_INFLIGHT", &c.TenantMaxInFlight)
	dur("MARQUEE_SHED_WAIT", &c.ShedWait)
	dur("MARQUEE_BODY_READ_TIMEOUT", &c.BodyReadTimeout)
	integer("MARQUEE_STREAMS_PER_CLIENT", &c.StreamsPerClient)
	if v, ok := lookup("MARQUEE_TRUSTED_PROXIES"); ok && v != "" {
		for _, p := range strings.Split(v, ",") {
			c.TrustedProxies = append(c.TrustedProxies, strings.TrimSpace(p))
		}
	}
	if c.PasswordCost < 10 || c.PasswordCost > 16 {
		errs = append(errs, errors.New("MARQUEE_PASSWORD_COST must be from 10 to 16"))
	}
	var body int
	integer("MARQUEE_MAX_BODY_BYTES", &body)
	if body > 0 {
		c.MaxBodyBytes = int64(body)
	}
	if len(c.SecretKey) < 32 {
		errs = append(errs, errors.New("MARQUEE_SECRET_KEY must be at least 32 characters"))
	}
	return c, errors.Join(errs...)
}

// checkPublishableKey refuses a publishable key that is not one (a secret key
// pasted there would be served to every buyer) or whose mode differs from the
// secret key's, and a live secret key without one: nobody could pay by card.
func (c Config) checkPublishableKey() error {
	pk, sk := c.StripePublishableKey, c.StripeSecretKey
	live := strings.HasPrefix(sk, "sk_live_") || strings.HasPrefix(sk, "rk_live_")
	switch {
	case pk == "" && live:
		return errors.New("MARQUEE_STRIPE_PUBLISHABLE_KEY is required with a live Stripe secret key (the storefront's card form needs it)")
	case pk == "":
		return nil
	case !strings.HasPrefix(pk, "pk_test_") && !strings.HasPrefix(pk, "pk_live_"):
		return errors.New("MARQUEE_STRIPE_PUBLISHABLE_KEY must be a publishable key (pk_test_… or pk_live_…), never a secret key")
	case strings.HasPrefix(pk, "pk_live_") != live:
		return errors.New("MARQUEE_STRIPE_PUBLISHABLE_KEY and MARQUEE_STRIPE_SECRET_KEY must both be test-mode or both live-mode keys")
	}
	return nil
}

// checkESign refuses half a provider: with MARQUEE_ESIGN_URL set, envelopes
// need the account and token, and the webhook needs a key to verify
// deliveries (unverified ones would let anyone sign for a party). Errors
// name the variables, never their values.
func (c Config) checkESign() error {
	if c.ESignURL == "" {
		if c.ESignAccountID != "" || c.ESignToken != "" || len(c.ESignConnectKeys) > 0 {
			return errors.New("MARQUEE_ESIGN_ACCOUNT_ID, MARQUEE_ESIGN_TOKEN and MARQUEE_ESIGN_CONNECT_KEYS need MARQUEE_ESIGN_URL")
		}
		return nil
	}
	var errs []error
	if u, err := url.Parse(c.ESignURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		errs = append(errs, errors.New("MARQUEE_ESIGN_URL must be an http(s) URL (the provider's REST base)"))
	}
	if c.ESignAccountID == "" {
		errs = append(errs, errors.New("MARQUEE_ESIGN_ACCOUNT_ID is required with MARQUEE_ESIGN_URL"))
	}
	if c.ESignToken == "" {
		errs = append(errs, errors.New("MARQUEE_ESIGN_TOKEN is required with MARQUEE_ESIGN_URL"))
	}
	if len(c.ESignConnectKeys) == 0 {
		errs = append(errs, errors.New("MARQUEE_ESIGN_CONNECT_KEYS is required with MARQUEE_ESIGN_URL (the Connect HMAC keys; comma-separated while rotating)"))
	}
	for _, k := range c.ESignConnectKeys {
		if len(k) < 32 {
			errs = append(errs, errors.New("MARQUEE_ESIGN_CONNECT_KEYS: each key must be at least 32 characters"))
			break
		}
	}
	return errors.Join(errs...)
}

// RedisClusterOptions reads MARQUEE_REDIS_CLUSTER: seed nodes separated by
// commas ("10.0.0.1:6379,10.0.0.2:6379"), or go-redis's cluster URL
// ("rediss://user:pass@10.0.0.1:6379?addr=10.0.0.2:6379") for credentials
// and TLS. The seeds only start discovery: the client learns every node
// and slot from the cluster itself.
func RedisClusterOptions(v string) (*redis.ClusterOptions, error) {
	v = strings.TrimSpace(v)
	if strings.Contains(v, "://") {
		o, err := redis.ParseClusterURL(v)
		if err != nil {
			return nil, err
		}
		return o, nil
	}
	o := &redis.ClusterOptions{}
	for _, addr := range strings.Split(v, ",") {
		addr = strings.TrimSpace(addr)
		host, port, err := net.SplitHostPort(addr)
		if err != nil || host == "" || port == "" {
			return nil, fmt.Errorf("%q is not host:port", addr)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("%q: bad port", addr)
		}
		o.Addrs = append(o.Addrs, addr)
	}
	return o, nil
}

// DefaultServer is the name of the server MARQUEE_DATABASE_URL points at.
const DefaultServer = "default"

// ServerPattern is the form of a database server's name.
var ServerPattern = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,30}$`)

// ParseServers reads "name=url" pairs separated by whitespace or commas.
// Only the first "=" of a pair separates, since a URL's query may hold more.
func ParseServers(v string) (map[string]string, error) {
	out := map[string]string{}
	for _, pair := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\t' }) {
		name, url, ok := strings.Cut(pair, "=")
		switch {
		case !ok || url == "":
			return nil, fmt.Errorf("%q is not name=url", pair)
		case !ServerPattern.MatchString(name):
			return nil, fmt.Errorf("server name %q must match %s", name, ServerPattern)
		case name == DefaultServer:
			return nil, fmt.Errorf("%q names MARQUEE_DATABASE_URL's server; give the others other names", name)
		case out[name] != "":
			return nil, fmt.Errorf("server %q named twice", name)
		}
		if _, err := pgconn.ParseConfig(url); err != nil {
			return nil, fmt.Errorf("server %s: %w", name, err)
		}
		out[name] = url
	}
	return out, nil
}

var (
	deploymentPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
	notDeploymentChar = regexp.MustCompile(`[^a-z0-9_-]+`)
)

// Deployment names this deployment in Redis: every key, queue and channel
// starts with it and a colon, so deployments sharing one Redis (a demo next
// to a bench, two stagings) never see each other's tasks or messages. One
// database is one deployment, so without MARQUEE_DEPLOYMENT_ID it is the
// database's name.
func (c Config) Deployment() string {
	if c.DeploymentID != "" {
		return c.DeploymentID
	}
	name := "marquee"
	if pc, err := pgconn.ParseConfig(c.DatabaseURL); err == nil && pc.Database != "" {
		name = pc.Database
	}
	name = strings.Trim(notDeploymentChar.ReplaceAllString(strings.ToLower(name), "_"), "_-")
	if len(name) > 63 {
		name = name[:63]
	}
	if name == "" {
		return "marquee"
	}
	return name
}

// RentalsWebhookSecret is the secret verifying Stripe's deliveries of
// venue rental deposits.
func (c Config) RentalsWebhookSecret() string {
	if c.StripeRentalsWebhookSecret != "" {
		return c.StripeRentalsWebhookSecret
	}
	return c.StripeWebhookSecret
}

// UsesDevSecret reports whether the built-in development secret is in use.
func (c Config) UsesDevSecret() bool { return c.SecretKey == DevSecretKey }

// CheckServing refuses the development secrets outside development mode:
// they are public (they are in this source), so with any of them anyone
// could forge payment webhooks, order links or waiting-room passes. The
// error names every variable to set.
func (c Config) CheckServing() error {
	if c.Development {
		return nil
	}
	var errs []error
	if c.SecretKey == DevSecretKey {
		errs = append(errs, errors.New("MARQUEE_SECRET_KEY is the public development key: set a random secret of at least 32 characters"))
	}
	if c.StripeSecretKey == DevStripeSecretKey {
		errs = append(errs, errors.New("MARQUEE_STRIPE_SECRET_KEY is the development key: set the platform's Stripe secret key"))
	}
	if c.StripeWebhookSecret == DevStripeWebhookSecret {
		errs = append(errs, errors.New("MARQUEE_STRIPE_WEBHOOK_SECRET is the public development secret: set the signing secret of the platform's Stripe webhook endpoint"))
	}
	if len(errs) > 0 {
		errs = append(errs, errors.New("(or set MARQUEE_DEVELOPMENT=true on a machine of your own; `marquee demo` does)"))
	}
	return errors.Join(errs...)
}

// TestModePayments reports whether the storefront may settle payments itself
// ("Pay (test mode)"): only with a Stripe test-mode key in development mode.
func (c Config) TestModePayments() bool {
	return c.Development && strings.HasPrefix(c.StripeSecretKey, "sk_test_")
}
