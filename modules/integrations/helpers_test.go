package integrations_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/app/apptest"
	"marquee/config"
	"marquee/modules/calendar"
	"marquee/modules/integrations"
	"marquee/modules/integrations/fakes/eventbrite"
	"marquee/modules/integrations/fakes/ticketmaster"
	"marquee/modules/inventory"
	"marquee/tenants"
)

var dbURL string

func TestMain(m *testing.M) { apptest.Main(m, "integrations", &dbURL) }

const (
	tmKey   = "tm-secret-api-key-7f3a9c"
	ebToken = "eb-secret-oauth-token-51d2e8"
)

// logBuffer collects the App's logs so tests can grep them for secrets.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type env struct {
	*apptest.Env
	mod  *integrations.Module
	inv  *inventory.Module
	logs *logBuffer
}

func startEnv(t testing.TB) *env {
	t.Helper()
	stripe := apptest.StripeMock(t)
	logs := &logBuffer{}
	mod, inv := integrations.New(), inventory.New()
	e := apptest.Start(t, dbURL, apptest.Options{
		DBMaxConns: 30,
		Logger:     slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Modules:    []app.Module{calendar.New(), inv, mod},
		Configure: func(c *config.Config) {
			c.StripeAPIURL = stripe
			c.StripeSecretKey = config.DevStripeSecretKey
			c.StripeWebhookSecret = "whsec_test_integrations"
			c.TrustedProxies = []string{"127.0.0.1/32"}
		},
	})
	mod.Service().Backoff = integrations.Backoff{Attempts: 4, Base: 20 * time.Millisecond, Budget: 3 * time.Second}
	mod.Service().DiscoveryPerSecond = 1000
	return &env{Env: e, mod: mod, inv: inv, logs: logs}
}

// chain is a tenant with an on-sale event: a GA zone Floor of capacity,
// quotas web/ticketmaster/eventbrite, fake providers and a connector and
// listing on each.
type chain struct {
	e         *env
	t         tenants.Tenant
	slug, tok string
	event     uuid.UUID
	tier      uuid.UUID
	tm        *ticketmaster.Server
	eb        *eventbrite.Server
	tmConn    integrations.Connector
	ebConn    integrations.Connector
	hookURL   string
	tmEvent   string
	ebEvent   string
	ebClass   string
}

var eventSeq atomic.Int64

func newChain(t testing.TB, e *env, capacity int, quotas map[string]int) *chain {
	t.Helper()
	tn := e.Tenant(t, apptest.UniqueSlug("int"))
	c := &chain{e: e, t: tn, slug: tn.Slug, tmEvent: "G5vYZ" + tn.Slug, ebEvent: "77" + strings.ReplaceAll(tn.Slug, "int-", ""), ebClass: "TC1"}
	c.tok = e.Login(t, tn.Slug, "owner@"+tn.Slug+".test")
	var v struct{ ID string }
	res := c.do(t, "POST", "/api/v1/venues", map[string]any{"name": "Hall", "timezone": "Europe/Berlin", "capacity": 200000})
	apptest.MustStatus(t, res, http.StatusCreated)
	res.JSON(t, &v)
	venue := v.ID
	res = c.do(t, "POST", "/api/v1/venues/"+venue+"/stages", map[string]any{"name": "Main", "capacity": 200000, "type": "main"})
	apptest.MustStatus(t, res, http.StatusCreated)
	res.JSON(t, &v)
	start := time.Date(2032, 1, 1, 19, 0, 0, 0, time.UTC).AddDate(0, 0, int(eventSeq.Add(1)))
	res = c.do(t, "POST", "/api/v1/venues/"+venue+"/events", map[string]any{"stage_id": v.ID, "title": "Channel Night", "category": "concert",
		"status": "on_sale", "starts_at": start.Format(time.RFC3339), "ends_at": start.Add(3 * time.Hour).Format(time.RFC3339)})
	apptest.MustStatus(t, res, http.StatusCreated)
	res.JSON(t, &v)
	c.event = uuid.MustParse(v.ID)
	res = c.do(t, "PUT", "/api/v1/events/"+v.ID+"/inventory", map[string]any{
		"zones":  []map[string]any{{"name": "Floor", "kind": "ga", "capacity": capacity}},
		"tiers":  []map[string]any{{"name": "Floor", "zone": "Floor", "price": 2500, "currency": "EUR", "max_per_order": 10}},
		"quotas": quotas, "max_ip_holds": 0, "max_buyer_holds": 5, "max_buyer_tickets": 10,
	})
	apptest.MustStatus(t, res, http.StatusOK)
	var inv inventory.Inventory
	res.JSON(t, &inv)
	c.tier = inv.Tiers[0].ID

	c.tm = ticketmaster.New(tmKey)
	c.eb = eventbrite.New(ebToken)
	t.Cleanup(c.tm.Close)
	t.Cleanup(c.eb.Close)
	c.tm.AddEvent(ticketmaster.Event{ID: c.tmEvent, Name: "Channel Night", VenueID: "KovZ1", Timezone: "Europe/Berlin", Start: start, FaceValue: 25, Currency: "EUR"})
	c.eb.AddEvent(eventbrite.Event{ID: c.ebEvent, OrgID: "org1", Name: "Channel Night", Start: start,
		TicketClasses: []*eventbrite.TicketClass{{ID: c.ebClass, Name: "GA", CostMinor: 2500, Currency: "EUR", SalesEnd: start}}})

	res = c.do(t, "POST", "/api/v1/integrations/connectors", map[string]any{"provider": "ticketmaster", "name": "TM", "api_base": c.tm.URL,
		"timezone": "Europe/Berlin", "credentials": map[string]string{"api_key": tmKey}})
	apptest.MustStatus(t, res, http.StatusCreated)
	res.JSON(t, &c.tmConn)
	res = c.do(t, "POST", "/api/v1/integrations/connectors", map[string]any{"provider": "eventbrite", "name": "EB", "api_base": c.eb.URL,
		"account": "org1", "credentials": map[string]string{"token": ebToken}})
	apptest.MustStatus(t, res, http.StatusCreated)
	res.JSON(t, &c.ebConn)
	// The webhook URL names the chain's host; tests reach it on loopback
	// with the tenant header, so Eventbrite's deliveries carry it too.
	c.hookURL = c.ebConn.WebhookURL
	c.eb.WebhookURL = e.Server.URL + c.ebConn.WebhookURL[strings.Index(c.ebConn.WebhookURL, "/api/"):]
	c.eb.Client = &http.Client{Transport: tenantHeader{slug: tn.Slug}, Timeout: 10 * time.Second}

	apptest.MustStatus(t, c.do(t, "POST", "/api/v1/integrations/connectors/"+c.tmConn.ID.String()+"/listings",
		map[string]any{"external_event_id": c.tmEvent, "event_id": c.event, "tiers": map[string]any{"TT-" + c.tmEvent: c.tier}}), http.StatusCreated)
	apptest.MustStatus(t, c.do(t, "POST", "/api/v1/integrations/connectors/"+c.ebConn.ID.String()+"/listings",
		map[string]any{"external_event_id": c.ebEvent, "event_id": c.event, "tiers": map[string]any{c.ebClass: c.tier}}), http.StatusCreated)
	return c
}

// tenantHeader adds X-Tenant to the fake Eventbrite's deliveries.
type tenantHeader struct{ slug string }

func (h tenantHeader) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Tenant", h.slug)
	return http.DefaultTransport.RoundTrip(r)
}

func (c *chain) do(t testing.TB, method, path string, body any, headers ...string) apptest.Response {
	t.Helper()
	return c.e.Do(t, method, c.slug, path, c.tok, body, headers...)
}

func (c *chain) allocate(t testing.TB, channel string, quota int) apptest.Response {
	t.Helper()
	return c.do(t, "PUT", "/api/v1/integrations/events/"+c.event.String()+"/channels/"+channel+"/allocation", map[string]int{"quota": quota})
}

func (c *chain) count(t testing.TB, q string, args ...any) int {
	t.Helper()
	var n int
	if err := c.e.App.Tx(context.Background(), c.t, func(tx *gorm.DB) error { return tx.Raw(q, args...).Row().Scan(&n) }); err != nil {
		t.Fatal(err)
	}
	return n
}

func (c *chain) stock(t testing.TB) app.ChannelStock {
	t.Helper()
	var v integrations.ChannelsView
	res := c.do(t, "GET", "/api/v1/integrations/events/"+c.event.String()+"/channels", nil)
	apptest.MustStatus(t, res, http.StatusOK)
	res.JSON(t, &v)
	return v.Stock
}

func quotaOf(st app.ChannelStock, channel string) app.ChannelQuota {
	for _, q := range st.Channels {
		if q.Channel == channel {
			return q
		}
	}
	return app.ChannelQuota{}
}

func (c *chain) poll(t testing.TB) integrations.PollResult {
	t.Helper()
	res := c.do(t, "POST", "/api/v1/integrations/connectors/"+c.tmConn.ID.String()+"/poll", nil)
	apptest.MustStatus(t, res, http.StatusOK)
	var p integrations.PollResult
	res.JSON(t, &p)
	return p
}
