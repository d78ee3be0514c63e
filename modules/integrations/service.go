package integrations

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/tenants"
)

// Providers.
const (
	ProviderTicketmaster = "ticketmaster"
	ProviderEventbrite   = "eventbrite"
)

// Service is the integrations' business logic.
type Service struct {
	app  *app.Core
	keys *Keyring
	// HTTP is the client for provider calls (tests and the demo talk to
	// the fakes on loopback).
	HTTP    *http.Client
	Backoff Backoff
	// DiscoveryPerSecond paces catalogue calls per connector.
	DiscoveryPerSecond float64
	// OfferRetry is the delay before the n-th retry of a tier price or
	// sale-window push that failed for a transient reason.
	OfferRetry func(n int) time.Duration
	// Clock, if set, replaces the App's clock for maintenance windows and
	// offer pushes (tests).
	Clock    func() time.Time
	throttle throttle
}

// defaultOfferRetry doubles from 2 s up to 10 minutes.
func defaultOfferRetry(n int) time.Duration {
	return min(time.Duration(1<<min(n, 9))*2*time.Second, 10*time.Minute)
}

// throttle lets one thing through per key and second.
type throttle struct {
	mu   sync.Mutex
	last map[string]time.Time
}

func (th *throttle) allow(key string, now time.Time) bool {
	th.mu.Lock()
	defer th.mu.Unlock()
	if th.last == nil {
		th.last = map[string]time.Time{}
	}
	if now.Sub(th.last[key]) < time.Second {
		return false
	}
	th.last[key] = now
	return true
}

// NewService builds the service on the core.
func NewService(a *app.Core) *Service {
	return &Service{app: a, keys: NewKeyring(a.Config.SecretKey), HTTP: &http.Client{Timeout: 15 * time.Second},
		Backoff: DefaultBackoff, DiscoveryPerSecond: 5, OfferRetry: defaultOfferRetry}
}

func (s *Service) log() *slog.Logger { return s.app.Log.With("module", "integrations") }

// Connector is a chain's account at a provider. Its credentials are sealed
// and never returned.
type Connector struct {
	ID       uuid.UUID `json:"id" gorm:"column:id"`
	Provider string    `json:"provider" gorm:"column:provider"`
	Name     string    `json:"name" gorm:"column:name"`
	APIBase  string    `json:"api_base" gorm:"column:api_base"`
	Account  string    `json:"account" gorm:"column:account"`
	Timezone string    `json:"timezone" gorm:"column:timezone"`
	KeyID    string    `json:"key_id" gorm:"column:key_id"`
	Health   Health    `json:"health" gorm:"embedded"`
	// WebhookURL is the Eventbrite webhook endpoint with its secret, shown
	// once, when the connector is created.
	WebhookURL string    `json:"webhook_url,omitempty" gorm:"-"`
	CreatedAt  time.Time `json:"created_at" gorm:"column:created_at"`
}

// Health is a connector's last contact with its provider.
type Health struct {
	LastSuccessAt *time.Time `json:"last_success_at" gorm:"column:last_success_at"`
	LastErrorAt   *time.Time `json:"last_error_at" gorm:"column:last_error_at"`
	LastError     *string    `json:"last_error" gorm:"column:last_error"`
	// QuotaAllowed/QuotaAvailable: the Partner API's hourly quota as its
	// Ratelimit-Quota-* headers said last.
	QuotaAllowed   *int       `json:"quota_allowed" gorm:"column:quota_allowed"`
	QuotaAvailable *int       `json:"quota_available" gorm:"column:quota_available"`
	BackoffUntil   *time.Time `json:"backoff_until" gorm:"column:backoff_until"`
	// DayCalls counts every call to the provider today (UTC).
	DayCalls int `json:"day_calls" gorm:"column:day_calls"`
	// DiscoveryCalls counts today's Ticketmaster Discovery calls, of
	// DiscoveryPerDay (none is made past it).
	DiscoveryCalls int `json:"discovery_calls" gorm:"column:discovery_calls"`
}

// ConnectorInput connects an account.
type ConnectorInput struct {
	Provider string `json:"provider"`
	Name     string `json:"name"`
	// APIBase is the provider's API root: https://app.ticketmaster.com or
	// https://www.eventbriteapi.com (a fake's on loopback in tests).
	APIBase string `json:"api_base"`
	// Account is the Eventbrite organisation id.
	Account string `json:"account"`
	// Timezone is the venues' zone, for Ticketmaster's maintenance window.
	Timezone string `json:"timezone"`
	// Credentials: {"api_key": …} for Ticketmaster, {"token": …} for
	// Eventbrite. Sealed at rest, never shown again.
	Credentials map[string]string `json:"credentials"`
}

var accountPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{0,64}$`)

// Validate implements app's request validation.
func (in ConnectorInput) Validate() error {
	switch in.Provider {
	case ProviderTicketmaster:
		if len(in.Credentials["api_key"]) < 8 || len(in.Credentials) != 1 {
			return app.InvalidField("invalid_channel_credentials", "credentials", "a Ticketmaster connector takes exactly {\"api_key\": …} (8 characters or more)")
		}
	case ProviderEventbrite:
		if len(in.Credentials["token"]) < 8 || len(in.Credentials) != 1 {
			return app.InvalidField("invalid_channel_credentials", "credentials", "an Eventbrite connector takes exactly {\"token\": …} (8 characters or more)")
		}
		if in.Account == "" {
			return app.InvalidField("invalid_connector", "account", "an Eventbrite connector names its organisation id")
		}
	default:
		return app.InvalidField("invalid_connector", "provider", "provider is ticketmaster or eventbrite")
	}
	if n := len(strings.TrimSpace(in.Name)); n < 1 || n > 120 {
		return app.InvalidField("invalid_connector", "name", "a name is 1 to 120 characters")
	}
	u, err := url.Parse(in.APIBase)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.RawQuery != "" {
		return app.InvalidField("invalid_connector", "api_base", "api_base is an http(s) URL without credentials or query")
	}
	if !accountPattern.MatchString(in.Account) {
		return app.InvalidField("invalid_connector", "account", "account is up to 64 letters, digits, - or _")
	}
	if in.Timezone != "" {
		if _, err := app.Timezone(in.Timezone); err != nil {
			return app.InvalidField("invalid_connector", "timezone", "unknown time zone")
		}
	}
	return nil
}

const connectorCols = `id, provider, name, api_base, account, timezone, key_id, created_at, last_success_at, last_error_at, last_error,
	quota_allowed, quota_available, backoff_until, CASE WHEN day = (now() AT TIME ZONE 'UTC')::date THEN day_calls ELSE 0 END AS day_calls,
	CASE WHEN discovery_day = (now() AT TIME ZONE 'UTC')::date THEN discovery_calls ELSE 0 END AS discovery_calls`

// CreateConnector seals the credentials and stores the connector. An
// Eventbrite connector gets a webhook path secret, shown once in WebhookURL.
func (s *Service) CreateConnector(ctx context.Context, t tenants.Tenant, in ConnectorInput, publicBase string) (Connector, error) {
	id := uuid.Must(uuid.NewV7())
	creds, _ := json.Marshal(in.Credentials)
	var out Connector
	err := s.app.Tx(ctx, t, func(tx *gorm.DB) error {
		gen := 1
		if err := tx.Raw(`SELECT coalesce(max(substring(key_id FROM '^g([0-9]+)-')::int), 1) FROM int_connectors`).Row().Scan(&gen); err != nil {
			return err
		}
		kid := s.keys.KeyID(gen)
		sealed, err := s.keys.Seal(kid, id[:], creds)
		if err != nil {
			return err
		}
		var secretHash []byte
		var secret string
		if in.Provider == ProviderEventbrite {
			b := make([]byte, 24)
			if _, err := rand.Read(b); err != nil {
				return err
			}
			secret = base64.RawURLEncoding.EncodeToString(b)
			h := sha256.Sum256([]byte(secret))
			secretHash = h[:]
		}
		tz := in.Timezone
		if tz == "" {
			tz = "UTC"
		}
		if err := tx.Exec(`INSERT INTO int_connectors (id, provider, name, api_base, account, timezone, credentials_sealed, key_id, path_secret_hash)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, id, in.Provider, strings.TrimSpace(in.Name), strings.TrimRight(in.APIBase, "/"), in.Account, tz, sealed, kid, secretHash).Error; err != nil {
			return err
		}
		out, err = loadConnector(tx, id)
		if secret != "" {
			out.WebhookURL = strings.TrimRight(publicBase, "/") + "/api/v1/webhooks/eventbrite/" + id.String() + "/" + secret
		}
		return err
	})
	return out, err
}

func loadConnector(tx *gorm.DB, id uuid.UUID) (Connector, error) {
	var cs []Connector
	if err := tx.Raw(`SELECT `+connectorCols+` FROM int_connectors WHERE id = ?`, id).Scan(&cs).Error; err != nil {
		return Connector{}, err
	}
	if len(cs) == 0 {
		return Connector{}, app.NotFoundCode("connector_not_found", "no connector %s", id)
	}
	return cs[0], nil
}

// Connectors lists the chain's connectors with their health.
func (s *Service) Connectors(ctx context.Context, t tenants.Tenant) ([]Connector, error) {
	var cs []Connector
	err := s.app.TxWith(ctx, t, tenants.TxOptions{ReadOnly: true}, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT ` + connectorCols + ` FROM int_connectors ORDER BY created_at`).Scan(&cs).Error
	})
	return app.NonNil(cs), err
}

// Connector reads one connector.
func (s *Service) Connector(ctx context.Context, t tenants.Tenant, id uuid.UUID) (Connector, error) {
	var c Connector
	err := s.app.TxWith(ctx, t, tenants.TxOptions{ReadOnly: true}, func(tx *gorm.DB) error {
		var err error
		c, err = loadConnector(tx, id)
		return err
	})
	return c, err
}

// clientFor opens the connector's credentials into a client.
func (s *Service) clientFor(ctx context.Context, t tenants.Tenant, id uuid.UUID) (*client, Connector, error) {
	var row struct {
		Sealed []byte `gorm:"column:credentials_sealed"`
	}
	var c Connector
	err := s.app.TxWith(ctx, t, tenants.TxOptions{ReadOnly: true}, func(tx *gorm.DB) error {
		var err error
		if c, err = loadConnector(tx, id); err != nil {
			return err
		}
		return tx.Raw(`SELECT credentials_sealed FROM int_connectors WHERE id = ?`, id).Scan(&row).Error
	})
	if err != nil {
		return nil, c, err
	}
	plain, err := s.keys.Open(c.KeyID, id[:], row.Sealed)
	if err != nil {
		return nil, c, fmt.Errorf("integrations: connector %s credentials do not open: %w", id, err)
	}
	var creds map[string]string
	if err := json.Unmarshal(plain, &creds); err != nil {
		return nil, c, errors.New("integrations: sealed credentials are not a JSON object")
	}
	base, err := url.Parse(c.APIBase + "/")
	if err != nil {
		return nil, c, err
	}
	cl := &client{provider: c.Provider, base: base, http: s.HTTP, backoff: s.Backoff}
	switch c.Provider {
	case ProviderTicketmaster:
		cl.secret = creds["api_key"]
		cl.limiter = limiterFor(t.Slug+"/"+id.String(), s.DiscoveryPerSecond)
		cl.reserveDiscovery = func(ctx context.Context) error { return s.reserveDiscovery(ctx, t, id) }
	default:
		cl.secret = creds["token"]
	}
	return cl, c, nil
}

// DiscoveryPerDay is Ticketmaster Discovery's daily allowance per key.
const DiscoveryPerDay = 5000

// reserveDiscovery counts one Discovery call against the connector's day
// (UTC), refused once DiscoveryPerDay are used: one conditional UPDATE, so
// concurrent catalogue reads never pass it together. The refusal is
// recorded by the caller's health line (the timeline) and answered 429.
func (s *Service) reserveDiscovery(ctx context.Context, t tenants.Tenant, connector uuid.UUID) error {
	now := s.app.Now().UTC()
	day := now.Format("2006-01-02")
	var n int64
	if err := s.app.Tx(ctx, t, func(tx *gorm.DB) error {
		res := tx.Exec(`UPDATE int_connectors SET discovery_calls = CASE WHEN discovery_day = ?::date THEN discovery_calls + 1 ELSE 1 END, discovery_day = ?::date
			WHERE id = ? AND (discovery_day IS DISTINCT FROM ?::date OR discovery_calls < ?)`, day, day, connector, day, DiscoveryPerDay)
		n = res.RowsAffected
		return res.Error
	}); err != nil {
		return err
	}
	if n == 0 {
		next := now.Truncate(24 * time.Hour).Add(24 * time.Hour)
		return app.RateLimited("discovery_budget_spent", next.Sub(now), "Ticketmaster Discovery's %d calls of today are used; skipped until %s", DiscoveryPerDay, next.Format(time.RFC3339))
	}
	return nil
}

// checkPathSecret compares a webhook path's secret with the connector's.
func checkPathSecret(stored []byte, given string) bool {
	h := sha256.Sum256([]byte(given))
	return len(stored) == len(h) && subtle.ConstantTimeCompare(stored, h[:]) == 1
}

// health records a call's outcome on the connector (last success or error,
// quota, Discovery's daily count, the backoff after a refusal) and a line
// of the sync timeline.
func (s *Service) health(ctx context.Context, t tenants.Tenant, c *client, connector uuid.UUID, listing *uuid.UUID, kind, detail string, callErr error) {
	now := s.app.Now()
	// Successful webhooks come in bursts: the connector's row (which every
	// one would otherwise queue to update) and the timeline get one line a
	// second per connector; failures are always recorded.
	if callErr == nil && kind == "webhook" && !s.throttle.allow(t.Slug+"/"+connector.String(), now) {
		return
	}
	var q struct{ allowed, avail *int }
	if c != nil && c.quota.Known {
		q.allowed, q.avail = &c.quota.Allowed, &c.quota.Available
	}
	calls := 0
	if c != nil {
		calls = c.calls
	}
	err := s.app.Tx(ctx, t, func(tx *gorm.DB) error {
		if callErr == nil {
			if err := tx.Exec(`UPDATE int_connectors SET last_success_at = ?, backoff_until = NULL,
				quota_allowed = coalesce(?, quota_allowed), quota_available = coalesce(?, quota_available), quota_at = CASE WHEN ?::int IS NULL THEN quota_at ELSE ? END,
				day_calls = CASE WHEN day = ?::date THEN day_calls + ? ELSE ? END, day = ?::date WHERE id = ?`,
				now, q.allowed, q.avail, q.avail, now, now.UTC().Format("2006-01-02"), calls, calls, now.UTC().Format("2006-01-02"), connector).Error; err != nil {
				return err
			}
		} else {
			var backoff *time.Time
			var ae *apiError
			if errors.As(callErr, &ae) && ae.transient() {
				b := now.Add(max(ae.RetryAfter, time.Minute))
				backoff = &b
			}
			if err := tx.Exec(`UPDATE int_connectors SET last_error_at = ?, last_error = ?, backoff_until = coalesce(?, backoff_until),
				quota_allowed = coalesce(?, quota_allowed), quota_available = coalesce(?, quota_available),
				day_calls = CASE WHEN day = ?::date THEN day_calls + ? ELSE ? END, day = ?::date WHERE id = ?`,
				now, truncate(callErr.Error(), 500), backoff, q.allowed, q.avail, now.UTC().Format("2006-01-02"), calls, calls, now.UTC().Format("2006-01-02"), connector).Error; err != nil {
				return err
			}
			detail = detail + ": " + callErr.Error()
		}
		return tx.Exec(`INSERT INTO int_syncs (connector_id, listing_id, kind, ok, detail, calls, at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			connector, listing, kind, callErr == nil, truncate(detail, 1000), calls, now).Error
	})
	if err != nil {
		s.log().Warn("recording connector health failed", "connector", connector, "err", err)
	}
	if callErr != nil {
		// The error text is the provider's own (keys redacted by the client).
		s.log().Warn("provider call failed", "tenant", t.Slug, "connector", connector, "kind", kind, "err", callErr.Error())
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
