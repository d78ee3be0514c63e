package inventory_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"
	"gorm.io/gorm"

	"marquee/app/apptest"
	"marquee/modules/inventory"
)

const webhookSecret = "whsec_test_inventory"

// platformWebhook posts a signed event to the platform's endpoint on the
// base host (no chain in the host, no X-Tenant).
func platformWebhook(t testing.TB, env *apptest.Env, payload []byte, signature string) apptest.Response {
	t.Helper()
	return env.Do(t, "POST", "", inventory.PlatformWebhookPath, "", payload, "Stripe-Signature", signature)
}

// paymentEvent signs a PaymentIntent event for an order, its metadata naming
// the chain slug (which may be another chain's, or nonsense).
func paymentEvent(t testing.TB, eventID, typ, slug string, o inventory.Order) ([]byte, string) {
	t.Helper()
	payload, header, err := inventory.TestWebhookEvent(webhookSecret, eventID, typ, *o.PaymentIntentID, o.AmountMinor, o.Currency, slug, o.ID)
	if err != nil {
		t.Fatal(err)
	}
	return payload, header
}

// signedEvent signs an arbitrary Stripe event around data.object.
func signedEvent(t testing.TB, eventID, typ string, object map[string]any) ([]byte, string) {
	t.Helper()
	payload, err := json.Marshal(map[string]any{"id": eventID, "object": "event", "api_version": stripe.APIVersion,
		"created": time.Now().Unix(), "type": typ, "livemode": false, "data": map[string]any{"object": object}})
	if err != nil {
		t.Fatal(err)
	}
	s := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: payload, Secret: webhookSecret, Timestamp: time.Now()})
	return s.Payload, s.Header
}

// schemaRows is every row of every table in the shop's schema, per table: two
// equal snapshots mean nothing was written.
func (s *shop) schemaRows(t testing.TB) map[string]string {
	t.Helper()
	out := map[string]string{}
	s.sql(t, func(tx *gorm.DB) error {
		var tables []string
		if err := tx.Raw(`SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`).Scan(&tables).Error; err != nil {
			return err
		}
		if len(tables) < 5 {
			return fmt.Errorf("snapshot sees only %d tables", len(tables))
		}
		for _, tb := range tables {
			var n int64
			var digest string
			q := fmt.Sprintf(`SELECT count(*), coalesce(md5(string_agg(r::text, ',' ORDER BY r::text)), '') FROM %q r`, tb)
			if err := tx.Raw(q).Row().Scan(&n, &digest); err != nil {
				return err
			}
			out[tb] = fmt.Sprintf("%d rows %s", n, digest)
		}
		return nil
	})
	return out
}

func sameSnapshot(t testing.TB, what string, before, after map[string]string) {
	t.Helper()
	for tb, v := range before {
		if after[tb] != v {
			t.Errorf("%s changed %s: %s → %s", what, tb, v, after[tb])
		}
	}
}

// pendingOrder is a chain's order for one seat, with its PaymentIntent.
func pendingOrder(t testing.TB, s *shop, ev, seat string) orderOut {
	t.Helper()
	b := s.buyer(t)
	o := s.order(t, b, s.mustHold(t, ev, b, map[string]any{"seats": []string{seat}}).ID)
	if o.PaymentIntentID == nil {
		t.Fatal("order without a PaymentIntent")
	}
	return o
}

func webhookOutcome(t testing.TB, res apptest.Response) string {
	t.Helper()
	mustStatus(t, res, http.StatusOK)
	var r inventory.WebhookResult
	res.JSON(t, &r)
	return r.Outcome
}

// A chain's payment reported to the platform's endpoint pays that chain's
// order; the same event again is taken once; a forged one changes nothing;
// the endpoint is not served on a chain's host.
func TestPlatformWebhookSettlesTheChainsOrder(t *testing.T) {
	t.Parallel()
	env, inv := startEnv(t)
	a := newShop(t, env, inv, "plata")
	b := newShop(t, env, inv, "platb")
	ev := a.event(t, "Platform Night")
	a.configure(t, ev, simpleSetup(1, 5, 0, nil))
	o := pendingOrder(t, a, ev, "A-1-1")

	// Forged: signed with another secret. Refused before anything is read.
	beforeA, beforeB := a.schemaRows(t), b.schemaRows(t)
	payload, header, err := inventory.TestWebhookEvent("whsec_forged", "evt_plat_forged", "payment_intent.succeeded", *o.PaymentIntentID, o.AmountMinor, o.Currency, a.slug, o.ID)
	if err != nil {
		t.Fatal(err)
	}
	res := platformWebhook(t, env, payload, header)
	if res.Status != http.StatusBadRequest || res.Code() != "invalid_signature" {
		t.Fatalf("forged event: %d %s", res.Status, res.Body)
	}
	// A genuine signature over a changed body is a forgery too.
	payload, header = paymentEvent(t, "evt_plat_tampered", "payment_intent.succeeded", a.slug, o.Order)
	res = platformWebhook(t, env, bytes.Replace(payload, []byte(`"amount":`), []byte(`"amount":1`), 1), header)
	if res.Status != http.StatusBadRequest || res.Code() != "invalid_signature" {
		t.Fatalf("tampered event: %d %s", res.Status, res.Body)
	}
	sameSnapshot(t, "chain A after forged events", beforeA, a.schemaRows(t))
	sameSnapshot(t, "chain B after forged events", beforeB, b.schemaRows(t))

	// The endpoint belongs to the base host; a chain's host does not serve it.
	payload, header = paymentEvent(t, "evt_plat_1", "payment_intent.succeeded", a.slug, o.Order)
	if res := env.Do(t, "POST", a.slug, inventory.PlatformWebhookPath, "", payload, "Stripe-Signature", header); res.Status != http.StatusNotFound {
		t.Fatalf("platform endpoint on a chain host: %d %s", res.Status, res.Body)
	}

	if got := webhookOutcome(t, platformWebhook(t, env, payload, header)); got != "paid" {
		t.Fatalf("outcome %s, want paid", got)
	}
	if st := a.seatState(t, ev, "A-1-1"); st != "sold" {
		t.Fatalf("seat %s after payment", st)
	}
	if n := a.count(t, `SELECT count(*) FROM inv_tickets WHERE order_id = ? AND status = 'valid'`, o.ID); n != 1 {
		t.Fatalf("%d tickets after payment", n)
	}
	// The payment's ledger entry is chained after its commit (by the
	// process's sealer, any moment now): sealed here, so the snapshot
	// compares what replays could change.
	if _, err := env.App.Ledger.Seal(t.Context(), a.t); err != nil {
		t.Fatal(err)
	}
	afterPaid, afterB := a.schemaRows(t), b.schemaRows(t)
	sameSnapshot(t, "chain B after A's payment", beforeB, afterB)

	// Stripe delivers again: to the platform endpoint, and (during the
	// deprecation) to the chain's own route; both take it once.
	if got := webhookOutcome(t, platformWebhook(t, env, payload, header)); got != "duplicate" {
		t.Fatalf("replay: outcome %s, want duplicate", got)
	}
	if got := webhookOutcome(t, env.Do(t, "POST", a.slug, "/api/v1/webhooks/stripe", "", payload, "Stripe-Signature", header)); got != "duplicate" {
		t.Fatalf("replay on the chain route: outcome %s, want duplicate", got)
	}
	sameSnapshot(t, "chain A after replays", afterPaid, a.schemaRows(t))
	if n := a.count(t, `SELECT count(*) FROM inv_stripe_events WHERE id = 'evt_plat_1'`); n != 1 {
		t.Fatalf("event recorded %d times", n)
	}

	// A failed payment routes the same way: the order fails, its seat returns.
	o2 := pendingOrder(t, a, ev, "A-1-2")
	payload, header = paymentEvent(t, "evt_plat_fail", "payment_intent.payment_failed", a.slug, o2.Order)
	if got := webhookOutcome(t, platformWebhook(t, env, payload, header)); got != "failed" {
		t.Fatalf("failed payment: outcome %s", got)
	}
	if st := a.seatState(t, ev, "A-1-2"); st != "available" {
		t.Fatalf("seat %s after a failed payment", st)
	}
}

// An event whose metadata names a chain that does not hold its
// PaymentIntent, or names no chain the platform knows, or is about another
// kind of Stripe object, is answered 200 "ignored" (Stripe stops
// delivering) and touches no chain.
func TestPlatformWebhookIgnoresWhatNoChainHolds(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	env, inv := startEnvLogging(t, slog.New(slog.NewJSONHandler(&logs, nil)), nil)
	a := newShop(t, env, inv, "holda")
	b := newShop(t, env, inv, "holdb")
	evA, evB := a.event(t, "A Night"), b.event(t, "B Night")
	a.configure(t, evA, simpleSetup(1, 5, 0, nil))
	b.configure(t, evB, simpleSetup(1, 5, 0, nil))
	oa := pendingOrder(t, a, evA, "A-1-1")
	ob := pendingOrder(t, b, evB, "A-1-1")

	// B's order id with A's intent: B exists and holds an order of that id,
	// but not with this intent.
	onB := oa.Order
	onB.ID = ob.ID
	noMeta, noMetaSig := signedEvent(t, "evt_nometa", "payment_intent.succeeded", map[string]any{
		"id": *oa.PaymentIntentID, "object": "payment_intent", "amount": oa.AmountMinor, "currency": "eur", "status": "succeeded", "metadata": map[string]string{}})
	charge, chargeSig := signedEvent(t, "evt_charge", "charge.refunded", map[string]any{
		"id": "ch_123", "object": "charge", "amount": 100, "currency": "eur", "metadata": map[string]string{"tenant": a.slug, "order_id": oa.ID.String()}})

	cases := []struct {
		name       string
		payload    []byte
		sig        string
		crossChain bool // logged as an error: a forgery or a bug to look at
	}{
		{"metadata names B, the intent and order are A's", nil, "", true},
		{"B's order, A's intent", nil, "", true},
		{"unknown chain", nil, "", false},
		{"malformed chain", nil, "", false},
		{"malformed order", nil, "", false},
		{"no metadata", noMeta, noMetaSig, false},
		{"another kind of object", charge, chargeSig, false},
	}
	cases[0].payload, cases[0].sig = paymentEvent(t, "evt_cross_1", "payment_intent.succeeded", b.slug, oa.Order)
	cases[1].payload, cases[1].sig = paymentEvent(t, "evt_cross_2", "payment_intent.succeeded", b.slug, onB)
	cases[2].payload, cases[2].sig = paymentEvent(t, "evt_unknown", "payment_intent.succeeded", "no-such-chain", oa.Order)
	cases[3].payload, cases[3].sig = paymentEvent(t, "evt_malformed", "payment_intent.succeeded", "../Public; DROP", oa.Order)
	cases[4].payload, cases[4].sig = signedEvent(t, "evt_badorder", "payment_intent.succeeded", map[string]any{
		"id": *oa.PaymentIntentID, "object": "payment_intent", "amount": oa.AmountMinor, "currency": "eur", "status": "succeeded",
		"metadata": map[string]string{"tenant": a.slug, "order_id": "not-a-uuid"}})

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			beforeA, beforeB := a.schemaRows(t), b.schemaRows(t)
			errorsBefore := logs.count(`"level":"ERROR","msg":"stripe: event names a chain`)
			if got := webhookOutcome(t, platformWebhook(t, env, c.payload, c.sig)); got != "ignored" {
				t.Fatalf("outcome %s, want ignored", got)
			}
			sameSnapshot(t, "chain A", beforeA, a.schemaRows(t))
			sameSnapshot(t, "chain B", beforeB, b.schemaRows(t))
			if logged := logs.count(`"level":"ERROR","msg":"stripe: event names a chain`) - errorsBefore; c.crossChain && logged != 1 {
				t.Errorf("cross-chain event logged %d times", logged)
			}
		})
	}
	if a.seatState(t, evA, "A-1-1") != "held" || b.seatState(t, evB, "A-1-1") != "held" {
		t.Fatal("an ignored event moved a seat")
	}
	// A's own event still pays A afterwards: ignoring recorded nothing.
	payload, header := paymentEvent(t, "evt_cross_1", "payment_intent.succeeded", a.slug, oa.Order)
	if got := webhookOutcome(t, platformWebhook(t, env, payload, header)); got != "paid" {
		t.Fatalf("A's own event after the ignored ones: %s", got)
	}
}

// A payment started before its chain was suspended is still settled when
// Stripe reports it to the platform's endpoint.
func TestPlatformWebhookSettlesSuspendedChain(t *testing.T) {
	t.Parallel()
	s, ev, _ := onSale(t, "platsusp", "Suspended Platform Night", simpleSetup(1, 5, 0, nil))
	env := s.env
	o := pendingOrder(t, s, ev, "A-1-3")
	if err := env.App.Tenants.Suspend(context.Background(), s.slug); err != nil {
		t.Fatal(err)
	}
	payload, header := paymentEvent(t, "evt_plat_susp", "payment_intent.succeeded", s.slug, o.Order)
	if got := webhookOutcome(t, platformWebhook(t, env, payload, header)); got != "paid" {
		t.Fatalf("suspended chain's payment: outcome %s", got)
	}
	if n := s.count(t, `SELECT count(*) FROM inv_tickets WHERE order_id = ? AND status = 'valid'`, o.ID); n != 1 {
		t.Fatalf("suspended chain's payment settled into %d tickets", n)
	}
}

// The per-chain route still settles for one release, says it is deprecated
// and where its successor is, and warns about it once an hour per chain.
func TestChainWebhookRouteIsDeprecated(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	env, inv := startEnvLogging(t, slog.New(slog.NewJSONHandler(&logs, nil)), nil)
	s := newShop(t, env, inv, "depr")
	other := newShop(t, env, inv, "deprother")
	ev := s.event(t, "Deprecated Night")
	s.configure(t, ev, simpleSetup(1, 5, 0, nil))
	o := pendingOrder(t, s, ev, "A-1-1")

	res := s.webhook(t, "evt_depr_1", "payment_intent.succeeded", o.Order)
	if got := webhookOutcome(t, res); got != "paid" {
		t.Fatalf("chain route: outcome %s", got)
	}
	if res.Header.Get("Deprecation") != "true" || res.Header.Get("Link") != `<https://localhost/webhooks/stripe>; rel="successor-version"` {
		t.Fatalf("chain route headers: Deprecation %q, Link %q", res.Header.Get("Deprecation"), res.Header.Get("Link"))
	}
	// Refusals say it too.
	res = env.Do(t, "POST", s.slug, "/api/v1/webhooks/stripe", "", []byte(`{}`), "Stripe-Signature", "t=1,v1=00")
	if res.Status != http.StatusBadRequest || res.Header.Get("Deprecation") != "true" {
		t.Fatalf("refused delivery: %d, Deprecation %q", res.Status, res.Header.Get("Deprecation"))
	}
	s.webhook(t, "evt_depr_1", "payment_intent.succeeded", o.Order)
	other.webhook(t, "evt_depr_other", "charge.refunded", o.Order)
	warning := `"msg":"stripe: webhook delivered to a chain's host`
	if n := logs.countWith(warning, `"tenant":"`+s.slug+`"`); n != 1 {
		t.Fatalf("%d deprecation warnings for one chain in an hour, want 1", n)
	}
	if n := logs.countWith(warning, `"tenant":"`+other.slug+`"`); n != 1 {
		t.Fatalf("%d deprecation warnings for another chain, want 1", n)
	}

	// The platform endpoint is in the OpenAPI document, with its permission
	// and the base host as its server.
	res = env.Do(t, "GET", s.slug, "/api/v1/openapi.json", "", nil)
	mustStatus(t, res, http.StatusOK)
	var doc struct {
		Paths map[string]struct {
			Servers []struct{ URL string } `json:"servers"`
			Post    *struct {
				Permission string `json:"x-permission"`
			} `json:"post"`
		} `json:"paths"`
	}
	res.JSON(t, &doc)
	item := doc.Paths[inventory.PlatformWebhookPath]
	if item.Post == nil || item.Post.Permission != "public" || len(item.Servers) != 1 || item.Servers[0].URL != "/" {
		t.Fatalf("openapi lists the platform webhook as %+v", item)
	}
}

// syncBuffer collects log lines written from many goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) count(s string) int { return b.countWith(s) }

// countWith counts the lines holding every one of parts.
func (b *syncBuffer) countWith(parts ...string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, line := range strings.Split(b.buf.String(), "\n") {
		all := line != ""
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			n++
		}
	}
	return n
}
