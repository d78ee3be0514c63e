package inventory_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/app/apptest"
	"marquee/config"
	"marquee/modules/calendar"
	"marquee/modules/inventory"
	"marquee/tenants"
)

// dbURL is the package's database. Every test starts its own App on it and
// its own chain, so tests run in parallel (t.Parallel) by default; Go runs
// the serial ones first, alone, then the parallel ones. A test stays serial,
// and says why, when it has a latency bound (a per-minute rate, a clock
// offset, a lateness), runs an Asynq worker on the deployment's queues
// (which serves every test's tasks), uses the process-wide batch fault hook,
// fires hundreds of requests at once, or drives a browser.
var dbURL string

func TestMain(m *testing.M) { apptest.Main(m, "inventory", &dbURL) }

// startEnv starts the app with the calendar and the inventory, talking to
// stripe-mock.
func startEnv(t testing.TB, opts ...inventory.Option) (*apptest.Env, *inventory.Module) {
	t.Helper()
	return startEnvConfig(t, nil, opts...)
}

// startEnvConfig is startEnv with a change to the configuration on top.
func startEnvConfig(t testing.TB, configure func(*config.Config), opts ...inventory.Option) (*apptest.Env, *inventory.Module) {
	t.Helper()
	return startEnvLogging(t, nil, configure, opts...)
}

// startEnvLogging is startEnvConfig with the app's logs sent to log (nil:
// the default).
func startEnvLogging(t testing.TB, log *slog.Logger, configure func(*config.Config), opts ...inventory.Option) (*apptest.Env, *inventory.Module) {
	t.Helper()
	return startEnvOn(t, dbURL, log, configure, opts...)
}

// startEnvOn is startEnvLogging on the database at url rather than the
// package's.
func startEnvOn(t testing.TB, url string, log *slog.Logger, configure func(*config.Config), opts ...inventory.Option) (*apptest.Env, *inventory.Module) {
	t.Helper()
	stripe := apptest.StripeMock(t)
	cal := calendar.New()
	inv := inventory.New(opts...)
	env := apptest.Start(t, url, apptest.Options{
		DBMaxConns: 40,
		Logger:     log,
		Modules:    []app.Module{cal, inv},
		Configure: func(c *config.Config) {
			c.StripeAPIURL = stripe
			c.StripeSecretKey = config.DevStripeSecretKey
			c.StripeWebhookSecret = "whsec_test_inventory"
			// Tests stand in for a proxy on loopback: their X-Forwarded-For
			// gives each simulated buyer an address of its own.
			c.TrustedProxies = []string{"127.0.0.1/32"}
			if configure != nil {
				configure(c)
			}
		},
	})
	return env, inv
}

// shop is a tenant with its owner signed in, a venue and a stage.
type shop struct {
	env   *apptest.Env
	inv   *inventory.Module
	t     tenants.Tenant
	slug  string
	tok   string
	venue string
	stage string
}

func newShop(t testing.TB, env *apptest.Env, inv *inventory.Module, prefix string) *shop {
	t.Helper()
	tn := env.Tenant(t, apptest.UniqueSlug(prefix))
	s := &shop{env: env, inv: inv, t: tn, slug: tn.Slug}
	s.tok = env.Login(t, tn.Slug, "owner@"+tn.Slug+".test")
	res := s.do(t, "POST", "/api/v1/venues", map[string]any{"name": "Main Hall", "address": "1 Main St", "timezone": "Europe/Berlin",
		"latitude": 52.5, "longitude": 13.4, "capacity": 200000})
	mustStatus(t, res, http.StatusCreated)
	var v struct{ ID string }
	res.JSON(t, &v)
	s.venue = v.ID
	res = s.do(t, "POST", "/api/v1/venues/"+s.venue+"/stages", map[string]any{"name": "Main Stage", "capacity": 200000, "type": "main"})
	mustStatus(t, res, http.StatusCreated)
	res.JSON(t, &v)
	s.stage = v.ID
	return s
}

var eventSeq atomic.Int64

// event books an on-sale event on its own day.
func (s *shop) event(t testing.TB, title string) string {
	t.Helper()
	start := time.Date(2032, 1, 1, 19, 0, 0, 0, time.UTC).AddDate(0, 0, int(eventSeq.Add(1)))
	res := s.do(t, "POST", "/api/v1/venues/"+s.venue+"/events", map[string]any{"stage_id": s.stage, "title": title, "category": "concert",
		"status": "on_sale", "starts_at": start.Format(time.RFC3339), "ends_at": start.Add(3 * time.Hour).Format(time.RFC3339)})
	mustStatus(t, res, http.StatusCreated)
	var e struct{ ID string }
	res.JSON(t, &e)
	return e.ID
}

func (s *shop) do(t testing.TB, method, path string, body any, headers ...string) apptest.Response {
	t.Helper()
	return s.env.Do(t, method, s.slug, path, s.tok, body, headers...)
}

func (s *shop) configure(t testing.TB, eventID string, setup any) inventory.Inventory {
	t.Helper()
	res := s.do(t, "PUT", "/api/v1/events/"+eventID+"/inventory", setup)
	mustStatus(t, res, http.StatusOK)
	var inv inventory.Inventory
	res.JSON(t, &inv)
	return inv
}

// buyer mints a buyer token through the API.
func (s *shop) buyer(t testing.TB) string {
	t.Helper()
	res := s.env.Do(t, "POST", s.slug, "/api/v1/buyer-sessions", "", nil)
	mustStatus(t, res, http.StatusCreated)
	var b struct {
		BuyerToken string `json:"buyer_token"`
	}
	res.JSON(t, &b)
	return b.BuyerToken
}

// hold asks for a hold as a buyer (anonymous, from its own address).
func (s *shop) hold(eventID, buyerTok string, body any, extra ...string) (apptest.Response, error) {
	h := append([]string{"Idempotency-Key", uuid.NewString(), "X-Buyer-Token", buyerTok}, extra...)
	return s.env.Try("POST", s.slug, "/api/v1/events/"+eventID+"/holds", "", body, h...)
}

func (s *shop) mustHold(t testing.TB, eventID, buyerTok string, body any) inventory.Hold {
	t.Helper()
	res, err := s.hold(eventID, buyerTok, body)
	if err != nil {
		t.Fatal(err)
	}
	mustStatus(t, res, http.StatusCreated)
	var h inventory.Hold
	res.JSON(t, &h)
	return h
}

type orderOut struct {
	inventory.Order
	OrderURL     string             `json:"order_url"`
	Tickets      []inventory.Ticket `json:"tickets"`
	ClientSecret *string            `json:"client_secret"`
}

func (s *shop) order(t testing.TB, buyerTok string, holdID uuid.UUID) orderOut {
	t.Helper()
	res := s.env.Do(t, "POST", s.slug, "/api/v1/orders", "", map[string]any{"hold_id": holdID, "buyer": map[string]string{"email": "fan@example.com", "name": "A Fan"}},
		"Idempotency-Key", uuid.NewString(), "X-Buyer-Token", buyerTok)
	mustStatus(t, res, http.StatusCreated)
	var o orderOut
	res.JSON(t, &o)
	return o
}

// webhook posts a signed Stripe event for an order.
func (s *shop) webhook(t testing.TB, eventID, typ string, o inventory.Order) apptest.Response {
	t.Helper()
	res, err := s.tryWebhook(eventID, typ, o)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func (s *shop) tryWebhook(eventID, typ string, o inventory.Order) (apptest.Response, error) {
	pi := ""
	if o.PaymentIntentID != nil {
		pi = *o.PaymentIntentID
	}
	payload, header, err := inventory.TestWebhookEvent("whsec_test_inventory", eventID, typ, pi, o.AmountMinor, o.Currency, s.slug, o.ID)
	if err != nil {
		return apptest.Response{}, err
	}
	return s.env.Try("POST", s.slug, "/api/v1/webhooks/stripe", "", payload, "Stripe-Signature", header)
}

// sql runs a query in the shop's schema (for checks and test set-up only).
func (s *shop) sql(t testing.TB, fn func(tx *gorm.DB) error) {
	t.Helper()
	if err := s.env.App.Tx(context.Background(), s.t, fn); err != nil {
		t.Fatal(err)
	}
}

func (s *shop) count(t testing.TB, q string, args ...any) int64 {
	t.Helper()
	var n int64
	s.sql(t, func(tx *gorm.DB) error { return tx.Raw(q, args...).Row().Scan(&n) })
	return n
}

func mustStatus(t testing.TB, res apptest.Response, want int) {
	t.Helper()
	if res.Status != want {
		t.Fatalf("status %d, want %d: %s", res.Status, want, res.Body)
	}
}

// simpleSetup is an event with a reserved zone of rows×perRow seats in
// section A and a GA pool.
func simpleSetup(rows, perRow, ga int, quotas map[string]int) map[string]any {
	var rs []map[string]any
	for r := 1; r <= rows; r++ {
		rs = append(rs, map[string]any{"label": fmt.Sprint(r), "seats": perRow})
	}
	zones := []map[string]any{{"name": "Stalls", "kind": "reserved"}}
	tiers := []map[string]any{{"name": "Stalls", "zone": "Stalls", "price": 5000, "currency": "EUR", "max_per_order": 50}}
	if ga > 0 {
		zones = append(zones, map[string]any{"name": "Floor", "kind": "ga", "capacity": ga})
		tiers = append(tiers, map[string]any{"name": "Floor", "zone": "Floor", "price": 3000, "currency": "EUR", "max_per_order": 10})
	}
	setup := map[string]any{"zones": zones, "tiers": tiers, "max_ip_holds": 0, "max_buyer_holds": 5, "max_buyer_tickets": 60,
		"layout": map[string]any{"sections": []map[string]any{{"name": "A", "zone": "Stalls", "rows": rs}}}}
	if quotas != nil {
		setup["quotas"] = quotas
	}
	return setup
}

func tierID(t testing.TB, inv inventory.Inventory, name string) string {
	t.Helper()
	for _, ti := range inv.Tiers {
		if ti.Name == name {
			return ti.ID.String()
		}
	}
	t.Fatalf("no tier %s", name)
	return ""
}

// onSale starts an inventory app with a fresh chain and one event on sale,
// configured with setup: the shop, the event and its inventory.
func onSale(t testing.TB, prefix, title string, setup any) (*shop, string, inventory.Inventory) {
	t.Helper()
	env, inv := startEnv(t)
	s := newShop(t, env, inv, prefix)
	ev := s.event(t, title)
	return s, ev, s.configure(t, ev, setup)
}
