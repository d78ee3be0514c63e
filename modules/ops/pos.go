package ops

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/tenants"
)

// POS revenue arrives as Square-shaped webhooks on the chain's own host
// (POST /api/v1/webhooks/pos/{connectorId}): each chain subscribes its own
// Square account, whose signature key is the connector's, so the connector
// (and its key) is found in the chain's schema and no platform-wide
// registry is needed. The notification URL the signature covers is stored
// with the connector, byte for byte as subscribed: rebuilding it from the
// request would break behind a proxy that rewrites the host or scheme.
//
// A delivery is stored once by its event_id; payments and refunds are kept
// as their latest version (a stale version changes nothing, so arrival order
// does not matter), and the ledger receives the difference between what a
// new version counts and what the ledger holds for the object: a completed
// payment counts its amount, a completed refund minus its amount, anything
// else nothing. So a sale or refund reaches the ledger exactly once,
// whatever the duplicates and the order.

// Connector is a POS account of the chain. Its signature key is never returned.
type Connector struct {
	ID              uuid.UUID `json:"id"`
	Name            string    `json:"name"`
	Provider        string    `json:"provider"`
	MerchantID      string    `json:"merchant_id"`
	NotificationURL string    `json:"notification_url"`
	// APIURL is where the connector is polled (GET /v2/payments), when set.
	APIURL    *string       `json:"api_url,omitempty"`
	PolledAt  *time.Time    `json:"polled_at,omitempty"`
	PollError string        `json:"poll_error,omitempty"`
	Locations []POSLocation `json:"locations" gorm:"-"`
	CreatedAt time.Time     `json:"created_at"`
}

// POSLocation maps a POS location to a venue's bar or merch stand.
type POSLocation struct {
	LocationID string    `json:"location_id"`
	VenueID    uuid.UUID `json:"venue_id"`
	Stand      string    `json:"stand"`
	Category   string    `json:"category"` // bar, merch, food, other
}

// ConnectorInput connects a POS account.
type ConnectorInput struct {
	Name       string `json:"name"`
	Provider   string `json:"provider"` // square
	MerchantID string `json:"merchant_id"`
	// SignatureKey is the webhook subscription's signature key; it is
	// sealed at rest and never shown again.
	SignatureKey string `json:"signature_key"`
	// NotificationURL is the URL subscribed at the provider; by default
	// https://<chain host>/api/v1/webhooks/pos/<connector id>.
	NotificationURL string `json:"notification_url"`
	// APIURL and AccessToken turn on polling (both or neither): the
	// account's API base (https://connect.squareup.com) and a token that
	// may list payments. The token is sealed and never shown again.
	APIURL      string `json:"api_url,omitempty"`
	AccessToken string `json:"access_token,omitempty"`
}

// SquareEvent is the envelope of a Square webhook delivery.
type SquareEvent struct {
	MerchantID string `json:"merchant_id"`
	Type       string `json:"type"`
	EventID    string `json:"event_id"`
	CreatedAt  string `json:"created_at"`
	Data       struct {
		Type   string                     `json:"type"`
		ID     string                     `json:"id"`
		Object map[string]json.RawMessage `json:"object"`
	} `json:"data"`
}

// SquareMoney is an amount in minor units.
type SquareMoney struct {
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
}

// SquarePayment is the payment (or refund) object of a delivery.
type SquarePayment struct {
	ID          string      `json:"id"`
	Status      string      `json:"status"`
	Version     int64       `json:"version"`
	AmountMoney SquareMoney `json:"amount_money"`
	LocationID  string      `json:"location_id"`
	OrderID     string      `json:"order_id"`
	PaymentID   string      `json:"payment_id"` // refunds: the payment refunded
	CreatedAt   time.Time   `json:"created_at"`
	UpdatedAt   time.Time   `json:"updated_at"`
}

// WebhookResult says what a delivery did.
type WebhookResult struct {
	// Outcome: applied, duplicate (event_id seen), stale (an older version
	// than the one kept) or ignored (a type ops does not read).
	Outcome string `json:"outcome"`
	// LedgerMinor is what the ledger received for it (0: nothing).
	LedgerMinor int64 `json:"ledger_minor"`
}

// maxPOSBody bounds a delivery (Square's are a few kilobytes).
const maxPOSBody = 64 << 10

var (
	merchantPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,120}$`)
	categories      = []string{"bar", "merch", "food", "other"}
)

// sealer seals connector keys under a key derived from the deployment's
// secret for this purpose only.
func (s *Service) aead() cipher.AEAD {
	block, err := aes.NewCipher(s.app.SigningKey("ops pos connector signature keys v1"))
	if err != nil {
		panic(err) // a 32-byte key always makes a cipher
	}
	g, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	return g
}

func (s *Service) seal(connector uuid.UUID, key string) []byte {
	g := s.aead()
	nonce := make([]byte, g.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		panic(err)
	}
	// The connector id is the additional data: a sealed key copied to
	// another connector's row does not open.
	return g.Seal(nonce, nonce, []byte(key), connector[:])
}

func (s *Service) open(connector uuid.UUID, sealed []byte) ([]byte, error) {
	g := s.aead()
	if len(sealed) < g.NonceSize() {
		return nil, errors.New("ops: sealed key too short")
	}
	return g.Open(nil, sealed[:g.NonceSize()], sealed[g.NonceSize():], connector[:])
}

// CreateConnector connects a POS account and seals its signature key.
func (s *Service) CreateConnector(ctx context.Context, t tenants.Tenant, in ConnectorInput) (Connector, error) {
	if in.Provider == "" {
		in.Provider = "square"
	}
	switch {
	case strings.TrimSpace(in.Name) == "" || len(in.Name) > 120:
		return Connector{}, app.InvalidField("invalid_name", "name", "name is 1 to 120 characters")
	case in.Provider != "square":
		return Connector{}, app.InvalidField("invalid_request", "provider", "provider is square")
	case !merchantPattern.MatchString(in.MerchantID):
		return Connector{}, app.InvalidField("invalid_request", "merchant_id", "merchant_id is 1 to 120 letters, digits, . _ : -")
	case len(in.SignatureKey) < 16 || len(in.SignatureKey) > 200:
		return Connector{}, app.InvalidField("invalid_request", "signature_key", "signature_key is 16 to 200 characters")
	}
	if (in.APIURL == "") != (in.AccessToken == "") {
		return Connector{}, app.InvalidField("invalid_request", "api_url", "polling needs both api_url and access_token")
	}
	if in.APIURL != "" {
		u, err := url.Parse(in.APIURL)
		// Plain http only in development: the poller sends the token there.
		if err != nil || u.Host == "" || len(in.APIURL) > 500 || u.RawQuery != "" || !(u.Scheme == "https" || u.Scheme == "http" && s.app.Config.Development) {
			return Connector{}, app.InvalidField("invalid_request", "api_url", "api_url is an https URL of at most 500 characters, without a query")
		}
		if len(in.AccessToken) < 8 || len(in.AccessToken) > 500 {
			return Connector{}, app.InvalidField("invalid_request", "access_token", "access_token is 8 to 500 characters")
		}
	}
	id := newID()
	if in.NotificationURL == "" {
		in.NotificationURL = fmt.Sprintf("https://%s.%s/api/v1/webhooks/pos/%s", t.Slug, s.app.Config.BaseDomain, id)
	}
	if u, err := url.Parse(in.NotificationURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || len(in.NotificationURL) > 500 {
		return Connector{}, app.InvalidField("invalid_request", "notification_url", "notification_url is an http(s) URL of at most 500 characters")
	}
	var apiURL *string
	var token []byte
	if in.APIURL != "" {
		apiURL, token = &in.APIURL, s.seal(tokenSealID(id), in.AccessToken)
	}
	err := s.tx(ctx, t, func(tx *gorm.DB) error {
		return tx.Exec(`INSERT INTO ops_pos_connectors (id, name, provider, merchant_id, notification_url, key_sealed, api_url, token_sealed, poll_cursor)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			id, in.Name, in.Provider, in.MerchantID, in.NotificationURL, s.seal(id, in.SignatureKey), apiURL, token, s.app.Now().UTC()).Error
	})
	if err != nil {
		return Connector{}, err
	}
	return s.Connector(ctx, t, id)
}

// Connectors lists the chain's POS connectors with their locations.
func (s *Service) Connectors(ctx context.Context, t tenants.Tenant) ([]Connector, error) {
	var out []Connector
	err := s.tx(ctx, t, func(tx *gorm.DB) error {
		if err := tx.Raw(`SELECT id, name, provider, merchant_id, notification_url, api_url, polled_at, poll_error, created_at FROM ops_pos_connectors ORDER BY created_at`).Scan(&out).Error; err != nil {
			return err
		}
		var locs []struct {
			ConnectorID uuid.UUID
			POSLocation
		}
		if err := tx.Raw(`SELECT connector_id, location_id, venue_id, stand, category FROM ops_pos_locations ORDER BY location_id`).Scan(&locs).Error; err != nil {
			return err
		}
		for i := range out {
			out[i].Locations = []POSLocation{}
			for _, l := range locs {
				if l.ConnectorID == out[i].ID {
					out[i].Locations = append(out[i].Locations, l.POSLocation)
				}
			}
		}
		return nil
	})
	return app.NonNil(out), err
}

// Connector reads one connector.
func (s *Service) Connector(ctx context.Context, t tenants.Tenant, id uuid.UUID) (Connector, error) {
	all, err := s.Connectors(ctx, t)
	if err != nil {
		return Connector{}, err
	}
	for _, c := range all {
		if c.ID == id {
			return c, nil
		}
	}
	return Connector{}, app.NotFound("POS connector")
}

// SetLocations maps POS locations to venues and stands (by location id;
// locations not named stay).
func (s *Service) SetLocations(ctx context.Context, t tenants.Tenant, connector uuid.UUID, locs []POSLocation) (Connector, error) {
	if len(locs) == 0 || len(locs) > 200 {
		return Connector{}, app.InvalidField("invalid_request", "locations", "give 1 to 200 locations")
	}
	for i, l := range locs {
		f := func(n string) string { return fmt.Sprintf("locations[%d].%s", i, n) }
		switch {
		case !merchantPattern.MatchString(l.LocationID):
			return Connector{}, app.InvalidField("invalid_request", f("location_id"), "location_id is 1 to 120 letters, digits, . _ : -")
		case !validZoneName(l.Stand):
			return Connector{}, app.InvalidField("invalid_request", f("stand"), "stand is 1 to 80 characters")
		case !slices.Contains(categories, l.Category):
			return Connector{}, app.InvalidField("invalid_category", f("category"), "category is bar, merch, food or other")
		}
		if v := s.app.Venues(); v != nil {
			ok, err := v.VenueExists(ctx, t, l.VenueID)
			if err != nil {
				return Connector{}, err
			}
			if !ok {
				return Connector{}, app.InvalidField("unknown_venue", f("venue_id"), "no venue %s in this chain", l.VenueID)
			}
		}
	}
	err := s.tx(ctx, t, func(tx *gorm.DB) error {
		var n int64
		if err := tx.Raw(`SELECT count(*) FROM ops_pos_connectors WHERE id = ?`, connector).Scan(&n).Error; err != nil {
			return err
		}
		if n == 0 {
			return app.NotFound("POS connector")
		}
		for _, l := range locs {
			if err := tx.Exec(`INSERT INTO ops_pos_locations (connector_id, location_id, venue_id, stand, category) VALUES (?, ?, ?, ?, ?)
				ON CONFLICT (connector_id, location_id) DO UPDATE SET venue_id = EXCLUDED.venue_id, stand = EXCLUDED.stand, category = EXCLUDED.category`,
				connector, l.LocationID, l.VenueID, l.Stand, l.Category).Error; err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return Connector{}, err
	}
	return s.Connector(ctx, t, connector)
}

// SquareSignature is the x-square-hmacsha256-signature of a body delivered
// to notificationURL: base64(HMAC-SHA256(key, notificationURL + body)).
func SquareSignature(key, notificationURL string, body []byte) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(notificationURL))
	m.Write(body)
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// posConnector is what a delivery needs of its connector: the sealed
// signature key, the URL it signs, the merchant, and the locations' stands.
type posConnector struct {
	id              uuid.UUID
	keySealed       []byte
	notificationURL string
	merchantID      string
	locations       map[string]POSLocation
}

// posConnectorSQL reads a connector with its locations in one statement
// (one round trip: a delivery's first, before its signature is checked).
const posConnectorSQL = `SELECT c.key_sealed, c.notification_url, c.merchant_id,
	coalesce((SELECT json_agg(json_build_object('location_id', l.location_id, 'venue_id', l.venue_id, 'stand', l.stand, 'category', l.category))
		FROM ops_pos_locations l WHERE l.connector_id = c.id), '[]')
	FROM ops_pos_connectors c WHERE c.id = $1`

// posConnector reads a connector for its deliveries (nil when none).
func (s *Service) posConnector(ctx context.Context, t tenants.Tenant, id uuid.UUID) (*posConnector, error) {
	var conn *posConnector
	err := s.app.PgxStatement(ctx, t, tenants.TxOptions{ReadOnly: true}, posConnectorSQL, []any{id}, func(rows pgx.Rows) error {
		for rows.Next() {
			c := &posConnector{id: id, locations: map[string]POSLocation{}}
			var locs []POSLocation
			if err := rows.Scan(&c.keySealed, &c.notificationURL, &c.merchantID, &locs); err != nil {
				return err
			}
			for _, l := range locs {
				c.locations[l.LocationID] = l
			}
			conn = c
		}
		return rows.Err()
	})
	return conn, err
}

// HandlePOSWebhook verifies a delivery's signature before reading it, then
// applies it once.
func (s *Service) HandlePOSWebhook(ctx context.Context, t tenants.Tenant, connector uuid.UUID, body []byte, signature string) (WebhookResult, error) {
	conn, err := s.posConnector(ctx, t, connector)
	if err != nil {
		return WebhookResult{}, err
	}
	if conn == nil {
		return WebhookResult{}, app.NotFound("POS connector")
	}
	key, err := s.open(connector, conn.keySealed)
	if err != nil {
		return WebhookResult{}, fmt.Errorf("ops: connector %s key does not open: %w", connector, err)
	}
	got, err := base64.StdEncoding.DecodeString(signature)
	want, _ := base64.StdEncoding.DecodeString(SquareSignature(string(key), conn.notificationURL, body))
	if err != nil || !hmac.Equal(got, want) {
		return WebhookResult{}, app.Unauthenticated("the x-square-hmacsha256-signature does not verify for this connector")
	}
	var evt SquareEvent
	if err := json.Unmarshal(body, &evt); err != nil || evt.EventID == "" || len(evt.EventID) > 200 || evt.Type == "" {
		return WebhookResult{}, app.Invalid("invalid_pos_event", "the body is not a Square event envelope with event_id and type")
	}
	// A key shared by two accounts (or a subscription moved between
	// them) must not book one merchant's sales under another's connector.
	if evt.MerchantID != conn.merchantID {
		return WebhookResult{}, app.Forbidden("pos_merchant_mismatch", "the event's merchant_id is not the merchant this connector is configured for")
	}
	return s.applyEvent(ctx, t, conn, evt, false)
}

// applyEvent applies a verified event once (by its event_id) through the
// version rule; webhooks and polling both come through here. listed says
// the object came from a provider's list without a version (polled
// refunds): it is ordered by its updated_at instead.
//
// The whole transaction is one statement, ops_pos_keep_unsealed (migration
// 00400), run alone in one round trip (PgxStatement): the idempotency
// insert, the object's locked read and update, and, when the counted amount
// changed, the ledger entry, inserted unsealed. It takes no ledger lock:
// deliveries of different objects commit side by side, and the core's
// sealer, poked after the commit, chains their entries.
func (s *Service) applyEvent(ctx context.Context, t tenants.Tenant, conn *posConnector, evt SquareEvent, listed bool) (WebhookResult, error) {
	obj, err := s.prepare(ctx, t, conn, evt)
	if err != nil {
		return WebhookResult{}, err
	}
	args := []any{conn.id, evt.EventID, evt.Type}
	if obj == nil {
		args = append(args, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil)
	} else {
		p := obj.p
		counted := int64(0)
		if p.Status == "COMPLETED" {
			counted = p.AmountMoney.Amount
		}
		var version *int64
		if !listed {
			version = &p.Version
		}
		var updated *time.Time
		if !p.UpdatedAt.IsZero() {
			updated = &p.UpdatedAt
		}
		ledgerKind := "pos.sale"
		if obj.kind == "refund" {
			ledgerKind = "pos.refund"
		}
		// The entry's amount is the difference the statement finds.
		entry, err := s.app.Ledger.NewEntry(ledgerKind, "pos:"+conn.id.String()+":"+p.ID, 0, p.AmountMoney.Currency,
			fmt.Sprintf("%s %s at %s (%s)", obj.category, obj.kind, obj.stand, p.ID))
		if err != nil {
			return WebhookResult{}, err
		}
		args = append(args, obj.kind, p.ID, version, p.Status, p.AmountMoney.Amount, counted, p.AmountMoney.Currency,
			p.LocationID, p.OrderID, obj.venue, obj.event, obj.stand, obj.category, obj.occurred, updated,
			entry.ID, entry.RecordedAt, entry.Kind, entry.Reference, entry.Memo)
	}
	var res WebhookResult
	err = s.app.PgxStatement(ctx, t, tenants.TxOptions{}, posKeepSQL, args, func(rows pgx.Rows) error {
		for rows.Next() {
			if err := rows.Scan(&res.Outcome, &res.LedgerMinor); err != nil {
				return err
			}
		}
		return rows.Err()
	})
	if err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "OP001" {
			return WebhookResult{}, app.Invalid("invalid_pos_event", "the %s changed currency", obj.kind)
		}
		return WebhookResult{}, err
	}
	if res.Outcome == "" {
		return WebhookResult{}, errors.New("ops: ops_pos_keep_unsealed returned no row")
	}
	if res.LedgerMinor != 0 {
		// Committed: the entry is chained now, not at the minute's sweep.
		s.app.Ledger.Committed(t)
		if obj.event != nil {
			s.revenue.changed(t, *obj.event)
		}
	}
	return res, nil
}

// posKeepSQL keeps a delivery (ops_pos_keep_unsealed, migration 00400).
const posKeepSQL = `SELECT o_outcome, o_ledger FROM ops_pos_keep_unsealed($1, $2, $3, $4, $5, $6, $7, $8, $9, $10,
	$11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23)`

// posObject is a delivery's payment or refund, with where it was sold and
// for which event, resolved before the transaction that applies it (the
// event directory has transactions of its own; nesting them inside ours
// would hold two connections per delivery).
type posObject struct {
	kind     string
	p        SquarePayment
	occurred time.Time
	venue    *uuid.UUID
	event    *uuid.UUID
	stand    string
	category string
}

// prepare reads a delivery's object and resolves its stand and event; nil
// for types ops does not read.
func (s *Service) prepare(ctx context.Context, t tenants.Tenant, conn *posConnector, evt SquareEvent) (*posObject, error) {
	var kind string
	switch evt.Type {
	case "payment.created", "payment.updated":
		kind = "payment"
	case "refund.created", "refund.updated":
		kind = "refund"
	default:
		return nil, nil
	}
	raw, ok := evt.Data.Object[kind]
	if !ok {
		return nil, app.Invalid("invalid_pos_event", "a %s event carries data.object.%s", evt.Type, kind)
	}
	o := &posObject{kind: kind}
	p := &o.p
	if err := json.Unmarshal(raw, p); err != nil || p.ID == "" || len(p.ID) > 200 || p.AmountMoney.Amount < 0 ||
		!currencyPattern.MatchString(p.AmountMoney.Currency) || len(p.LocationID) > 120 || len(p.OrderID) > 200 || len(p.Status) > 40 {
		return nil, app.Invalid("invalid_pos_event", "the %s has no id, a negative amount or no currency", kind)
	}
	o.occurred = p.CreatedAt
	if o.occurred.IsZero() {
		o.occurred = s.app.Now()
	}
	// Where and for which event: the location's stand, and the event live
	// at its venue when the sale happened.
	o.category, o.stand = "other", "unmapped:"+p.LocationID
	if l, ok := conn.locations[p.LocationID]; ok {
		venue := l.VenueID
		o.venue, o.stand, o.category = &venue, l.Stand, l.Category
		id, err := s.eventAt(ctx, t, venue, o.occurred)
		if err != nil {
			return nil, err
		}
		o.event = id
	}
	return o, nil
}

var currencyPattern = regexp.MustCompile(`^[A-Z]{3}$`)

// eventAt is the event live at a venue at an instant, if any.
func (s *Service) eventAt(ctx context.Context, t tenants.Tenant, venue uuid.UUID, at time.Time) (*uuid.UUID, error) {
	dir := s.app.Events()
	evs, err := dir.Events(ctx, t, app.EventFilter{VenueID: venue, From: at.Add(-24 * time.Hour), To: at.Add(3 * time.Hour), Limit: 50})
	if err != nil {
		return nil, err
	}
	for _, ev := range evs {
		if ev.Status != "cancelled" && liveWindow(ev, at) {
			id := ev.ID
			return &id, nil
		}
	}
	return nil, nil
}

// RevenueLine is revenue of one category or stand in one currency.
type RevenueLine struct {
	Category     string `json:"category"`
	Stand        string `json:"stand,omitempty"`
	Currency     string `json:"currency"`
	SalesMinor   int64  `json:"sales_minor"`
	RefundsMinor int64  `json:"refunds_minor"`
	NetMinor     int64  `json:"net_minor"`
	Payments     int    `json:"payments"`
}

// Revenue is an event's bar and merch revenue.
type Revenue struct {
	Totals     []RevenueLine `json:"totals"` // per currency
	ByCategory []RevenueLine `json:"by_category"`
	ByStand    []RevenueLine `json:"by_stand"`
	// RolledUpAt is when the totals were last rolled up (live figures
	// come from the sales themselves; nil before the first rollup).
	RolledUpAt *time.Time `json:"rolled_up_at,omitempty"`
}

// revenueLines sums an event's payments and refunds per category and stand.
func revenueLines(tx *gorm.DB, event uuid.UUID) ([]RevenueLine, error) {
	var lines []RevenueLine
	err := tx.Raw(`SELECT category, stand, currency,
			coalesce(sum(counted_minor) FILTER (WHERE kind = 'payment'), 0) AS sales_minor,
			coalesce(sum(counted_minor) FILTER (WHERE kind = 'refund'), 0) AS refunds_minor,
			coalesce(sum(counted_minor) FILTER (WHERE kind = 'payment'), 0) - coalesce(sum(counted_minor) FILTER (WHERE kind = 'refund'), 0) AS net_minor,
			count(*) FILTER (WHERE kind = 'payment' AND counted_minor > 0) AS payments
		FROM ops_pos_objects WHERE event_id = ? GROUP BY category, stand, currency ORDER BY category, stand, currency`, event).Scan(&lines).Error
	return lines, err
}

// Revenue sums an event's sales live.
func (s *Service) Revenue(ctx context.Context, t tenants.Tenant, event uuid.UUID) (Revenue, error) {
	var lines []RevenueLine
	var rolled struct{ At *time.Time }
	err := s.tx(ctx, t, func(tx *gorm.DB) (err error) {
		if lines, err = revenueLines(tx, event); err != nil {
			return err
		}
		return tx.Raw(`SELECT max(rolled_up_at) AS at FROM ops_revenue_totals WHERE event_id = ?`, event).Scan(&rolled).Error
	})
	if err != nil {
		return Revenue{}, err
	}
	return summarize(lines, rolled.At), nil
}

func summarize(lines []RevenueLine, rolled *time.Time) Revenue {
	r := Revenue{Totals: []RevenueLine{}, ByCategory: []RevenueLine{}, ByStand: app.NonNil(lines), RolledUpAt: rolled}
	add := func(list []RevenueLine, key RevenueLine, l RevenueLine) []RevenueLine {
		for i := range list {
			if list[i].Category == key.Category && list[i].Currency == key.Currency {
				list[i].SalesMinor += l.SalesMinor
				list[i].RefundsMinor += l.RefundsMinor
				list[i].NetMinor += l.NetMinor
				list[i].Payments += l.Payments
				return list
			}
		}
		key.SalesMinor, key.RefundsMinor, key.NetMinor, key.Payments = l.SalesMinor, l.RefundsMinor, l.NetMinor, l.Payments
		return append(list, key)
	}
	for _, l := range lines {
		r.ByCategory = add(r.ByCategory, RevenueLine{Category: l.Category, Currency: l.Currency}, l)
		r.Totals = add(r.Totals, RevenueLine{Category: "all", Currency: l.Currency}, l)
	}
	return r
}

// RolledUpRevenue reads the totals as the last rollup wrote them.
func (s *Service) RolledUpRevenue(ctx context.Context, t tenants.Tenant, event uuid.UUID) (Revenue, error) {
	var lines []RevenueLine
	var rolled struct{ At *time.Time }
	err := s.tx(ctx, t, func(tx *gorm.DB) error {
		if err := tx.Raw(`SELECT category, stand, currency, sales_minor, refunds_minor, net_minor, payments FROM ops_revenue_totals
			WHERE event_id = ? ORDER BY category, stand, currency`, event).Scan(&lines).Error; err != nil {
			return err
		}
		return tx.Raw(`SELECT max(rolled_up_at) AS at FROM ops_revenue_totals WHERE event_id = ?`, event).Scan(&rolled).Error
	})
	if err != nil {
		return Revenue{}, err
	}
	return summarize(lines, rolled.At), nil
}
