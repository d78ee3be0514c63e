package inventory_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"

	"marquee/app"
	"marquee/app/apptest"
	"marquee/modules/inventory"
	"marquee/policies"
	"marquee/tenants"
)

// snapshot is everything a refused request must leave untouched.
func (s *shop) snapshot(t testing.TB) string {
	t.Helper()
	var parts []string
	for _, q := range []string{
		`SELECT count(*) FROM inv_holds`, `SELECT count(*) FROM inv_orders`,
		`SELECT count(*) FROM inv_seats WHERE state <> 'available'`,
		`SELECT coalesce(sum(held * 1000 + sold), 0) FROM inv_counter_shards`,
		`SELECT coalesce(sum(holds * 1000 + units), 0) FROM inv_buyer_counters`,
	} {
		parts = append(parts, fmt.Sprint(s.count(t, q)))
	}
	return strings.Join(parts, "/")
}

// Bad input gets a clean problem document and changes nothing.
func TestBadInputChangesNothing(t *testing.T) {
	t.Parallel()
	s, ev, cfg := onSale(t, "badin", "Bad Input Night", simpleSetup(2, 10, 50, map[string]int{"web": 60}))
	env := s.env
	floor := tierID(t, cfg, "Floor")
	buyer := s.buyer(t)
	s.mustHold(t, ev, buyer, map[string]any{"seats": []string{"A-1-1"}}) // something to leave alone
	before := s.snapshot(t)

	huge := make([]string, 500)
	for i := range huge {
		huge[i] = fmt.Sprintf("A-1-%d", i+1)
	}
	// Every refused hold leaves the event's state as it was.
	unchanged := func(t testing.TB, _ *apptest.Env, _ apptest.Response) {
		t.Helper()
		if after := s.snapshot(t); after != before {
			t.Fatalf("state changed: %s -> %s", before, after)
		}
	}
	holds := "/api/v1/events/" + ev + "/holds"
	hold := func(name string, body any, status int, code string) apptest.Scenario {
		return apptest.Scenario{Name: name, Method: "POST", Path: holds, Tenant: s.slug, Body: body,
			Headers: map[string]string{"Idempotency-Key": uuid.NewString(), "X-Buyer-Token": buyer},
			Status:  status, Code: code, After: unchanged}
	}
	apptest.RunScenarios(t, env, []apptest.Scenario{
		hold("malformed", `{"seats": [`, 400, "invalid_json"),
		hold("not an object", `[]`, 400, "invalid_json"),
		hold("wrong type", `{"seats": "A-1-2"}`, 400, "invalid_json"),
		hold("quantity as string", map[string]any{"tier_id": floor, "quantity": "2"}, 400, "invalid_json"),
		hold("unknown field", map[string]any{"seats": []string{"A-1-2"}, "price": 0}, 400, "invalid_json"),
		hold("two values", `{"seats":["A-1-2"]}{"seats":["A-1-3"]}`, 400, "invalid_json"),
		hold("negative quantity", map[string]any{"tier_id": floor, "quantity": -3}, 400, "invalid_quantity"),
		hold("zero quantity", map[string]any{"tier_id": floor, "quantity": 0}, 400, "invalid_quantity"),
		hold("quantity over max per order", map[string]any{"tier_id": floor, "quantity": 11}, 400, "invalid_quantity"),
		hold("huge cart", map[string]any{"seats": huge}, 400, "invalid_seats"),
		hold("sql in seat id", map[string]any{"seats": []string{"A-1-2'; DROP TABLE inv_seats; --"}}, 400, "invalid_seats"),
		hold("sql-ish but valid form", map[string]any{"seats": []string{"OR1-1-1"}}, 409, "seats_unavailable"),
		hold("duplicate seat", map[string]any{"seats": []string{"A-1-2", "A-1-2"}}, 400, "invalid_seats"),
		hold("seats and quantity", map[string]any{"seats": []string{"A-1-2"}, "quantity": 1}, 400, "invalid_request"),
		hold("nothing", map[string]any{}, 400, "invalid_request"),
		hold("tier not uuid", map[string]any{"tier_id": "1 OR 1=1", "quantity": 1}, 400, "invalid_tier_id"),
		hold("unknown tier", map[string]any{"tier_id": uuid.NewString(), "quantity": 1}, 404, "not_found"),
		hold("reserved tier by quantity", map[string]any{"tier_id": tierID(t, cfg, "Stalls"), "quantity": 1}, 400, "invalid_tier_id"),
		hold("unknown channel", map[string]any{"seats": []string{"A-1-2"}, "channel": "black_market"}, 400, "invalid_channel"),
		hold("other channel as a buyer", map[string]any{"seats": []string{"A-1-2"}, "channel": "box_office"}, 403, "forbidden"),
		hold("partly taken cart", map[string]any{"seats": []string{"A-1-2", "A-1-1"}}, 409, "seats_unavailable"),
		hold("no such seat", map[string]any{"seats": []string{"Z-9-99"}}, 409, "seats_unavailable"),
		hold("text body", "seats=A-1-2", 400, "invalid_json"),
		// Header problems.
		{Name: "no idempotency key", Method: "POST", Path: holds, Tenant: s.slug, Body: map[string]any{"seats": []string{"A-1-2"}},
			Headers: map[string]string{"X-Buyer-Token": buyer}, Status: 400, Code: "idempotency_key_required", After: unchanged},
		{Name: "forged buyer token", Method: "POST", Path: holds, Tenant: s.slug, Body: map[string]any{"seats": []string{"A-1-2"}},
			Headers: map[string]string{"Idempotency-Key": uuid.NewString(), "X-Buyer-Token": "forged." + strings.Repeat("x", 43)},
			Status:  400, Code: "buyer_required", After: unchanged},
		{Name: "event id not a uuid", Method: "POST", Path: "/api/v1/events/not-a-uuid/holds", Tenant: s.slug, Body: map[string]any{"seats": []string{"A-1-2"}},
			Headers: map[string]string{"Idempotency-Key": uuid.NewString(), "X-Buyer-Token": buyer}, Status: http.StatusNotFound, After: unchanged},
		{Name: "unknown event", Method: "POST", Path: "/api/v1/events/" + uuid.NewString() + "/holds", Tenant: s.slug, Body: map[string]any{"seats": []string{"A-1-2"}},
			Headers: map[string]string{"Idempotency-Key": uuid.NewString(), "X-Buyer-Token": buyer}, Status: http.StatusNotFound, After: unchanged},
	})
	// Orders and setup.
	for _, c := range []struct {
		body any
		code string
	}{
		{map[string]any{"hold_id": "x", "buyer": map[string]string{"email": "a@b.co", "name": "A"}}, "invalid_hold_id"},
		{map[string]any{"hold_id": uuid.NewString(), "buyer": map[string]string{"email": "not an email", "name": "A"}}, "invalid_email"},
		{map[string]any{"hold_id": uuid.NewString(), "buyer": map[string]any{"email": 5}}, "invalid_json"},
	} {
		res := env.Do(t, "POST", s.slug, "/api/v1/orders", "", c.body, "Idempotency-Key", uuid.NewString(), "X-Buyer-Token", buyer)
		if res.Status != 400 || res.Code() != c.code {
			t.Fatalf("order %v: %d %s", c.body, res.Status, res.Body)
		}
	}
	for _, c := range []struct {
		body any
		code string
	}{
		{map[string]any{"zones": []any{}}, "invalid_zones"},
		{map[string]any{"zones": []map[string]any{{"name": "Z", "kind": "vip", "capacity": 1}}}, "invalid_zones"},
		{map[string]any{"zones": []map[string]any{{"name": "Z", "kind": "ga", "capacity": 10}},
			"tiers": []map[string]any{{"name": "T", "zone": "Z", "price": -1, "currency": "EUR"}}}, "invalid_tiers"},
		{map[string]any{"zones": []map[string]any{{"name": "Z", "kind": "ga", "capacity": 10}},
			"tiers": []map[string]any{{"name": "T", "zone": "Z", "price": 100, "currency": "euro"}}}, "invalid_tiers"},
		{map[string]any{"zones": []map[string]any{{"name": "Z", "kind": "reserved"}}, "tiers": []map[string]any{{"name": "T", "zone": "Z", "price": 1, "currency": "EUR"}},
			"layout": map[string]any{"sections": []map[string]any{{"name": "A;--", "zone": "Z", "rows": []map[string]any{{"label": "1", "seats": 2}}}}}}, "invalid_layout"},
	} {
		res := s.do(t, "PUT", "/api/v1/events/"+ev+"/inventory", c.body)
		if res.Status != 400 || res.Code() != c.code {
			t.Fatalf("setup %v: %d %s", c.body, res.Status, res.Body)
		}
	}
	// Reconfiguring once something is held is refused.
	res := s.do(t, "PUT", "/api/v1/events/"+ev+"/inventory", simpleSetup(1, 5, 0, nil))
	if res.Status != http.StatusConflict || res.Code() != "inventory_in_use" {
		t.Fatalf("reconfigure in use: %d %s", res.Status, res.Body)
	}
	if after := s.snapshot(t); after != before {
		t.Fatalf("state changed: %s -> %s", before, after)
	}
}

// Per-buyer and per-IP limits answer 429 hold_limit and change nothing.
func TestHoldLimits(t *testing.T) {
	t.Parallel()
	env, inv := startEnv(t)
	s := newShop(t, env, inv, "limits")
	ev := s.event(t, "Limits Night")
	setup := simpleSetup(2, 10, 100, nil)
	setup["max_buyer_holds"], setup["max_buyer_tickets"], setup["max_ip_holds"] = 2, 5, 3
	cfg := s.configure(t, ev, setup)
	floor := tierID(t, cfg, "Floor")
	b := s.buyer(t)
	ip := func(addr string) []string { return []string{"X-Forwarded-For", addr} }
	hold := func(buyer string, body any, addr string) (int, string) {
		res, err := s.hold(ev, buyer, body, ip(addr)...)
		if err != nil {
			t.Fatal(err)
		}
		return res.Status, res.Code()
	}
	if st, _ := hold(b, map[string]any{"tier_id": floor, "quantity": 2}, "203.0.113.1"); st != 201 {
		t.Fatalf("first hold %d", st)
	}
	// The second joins the buyer's cart (one hold of 4); a third asking
	// for 2 more would make 6 tickets, over the buyer's 5.
	if st, _ := hold(b, map[string]any{"tier_id": floor, "quantity": 2}, "203.0.113.1"); st != 201 {
		t.Fatalf("second hold %d", st)
	}
	if n := s.count(t, `SELECT count(*) FROM inv_holds WHERE event_id = ? AND status = 'active' AND quantity = 4`, ev); n != 1 {
		t.Fatalf("%d carts of 4 tickets after two holds of 2 by one buyer, want 1", n)
	}
	before := s.snapshot(t)
	if st, code := hold(b, map[string]any{"tier_id": floor, "quantity": 2}, "203.0.113.1"); st != 429 || code != "hold_limit" {
		t.Fatalf("third hold of one buyer: %d %s", st, code)
	}
	if after := s.snapshot(t); after != before {
		t.Fatalf("a refused hold changed state: %s -> %s", before, after)
	}
	// Ticket limit: a fresh buyer asking for more than 5 in total.
	b2 := s.buyer(t)
	if st, _ := hold(b2, map[string]any{"seats": []string{"A-1-1", "A-1-2", "A-1-3"}}, "203.0.113.2"); st != 201 {
		t.Fatalf("b2 first hold %d", st)
	}
	before = s.snapshot(t)
	if st, code := hold(b2, map[string]any{"seats": []string{"A-2-1", "A-2-2", "A-2-3"}}, "203.0.113.2"); st != 429 || code != "hold_limit" {
		t.Fatalf("b2 over ticket limit: %d %s", st, code)
	}
	if after := s.snapshot(t); after != before {
		t.Fatalf("a refused hold changed state: %s -> %s", before, after)
	}
	if s.seatState(t, ev, "A-2-1") != "available" {
		t.Fatal("seat of a refused hold was kept")
	}
	// Per IP: three holds from one address, the fourth refused.
	for i := 0; i < 2; i++ {
		if st, _ := hold(s.buyer(t), map[string]any{"tier_id": floor, "quantity": 1}, "198.51.100.7"); st != 201 {
			t.Fatalf("ip hold %d: %d", i, st)
		}
	}
	if st, _ := hold(s.buyer(t), map[string]any{"tier_id": floor, "quantity": 1}, "198.51.100.7"); st != 201 {
		t.Fatal("third ip hold refused")
	}
	if st, code := hold(s.buyer(t), map[string]any{"tier_id": floor, "quantity": 1}, "198.51.100.7"); st != 429 || code != "hold_limit" {
		t.Fatalf("fourth hold from one address: %d %s", st, code)
	}
}

// Configuration is for owners, chain admins, promoters and the venue's
// manager; a venue manager elsewhere and door staff are refused.
func TestConfigurationPermissions(t *testing.T) {
	t.Parallel()
	env, inv := startEnv(t)
	s := newShop(t, env, inv, "perms")
	ev := s.event(t, "Perm Night")
	res := s.do(t, "POST", "/api/v1/venues", map[string]any{"name": "Other Hall", "timezone": "UTC", "capacity": 100})
	var other struct{ ID string }
	res.JSON(t, &other)
	users := map[string]string{
		"admin@x.test": policies.RoleChainAdmin, "promo@x.test": policies.RolePromoter, "vm@x.test": policies.RoleVenueManager,
		"vm2@x.test": policies.RoleVenueManager, "door@x.test": policies.RoleDoorStaff, "fin@x.test": policies.RoleFinance,
	}
	for email, role := range users {
		venue := ""
		switch email {
		case "vm@x.test", "door@x.test":
			venue = s.venue
		case "vm2@x.test":
			venue = other.ID
		}
		env.User(t, s.t, email, role, venue)
	}
	for email, want := range map[string]int{"admin@x.test": 200, "promo@x.test": 200, "vm@x.test": 200, "vm2@x.test": 403, "door@x.test": 403, "fin@x.test": 403} {
		tok := env.Login(t, s.slug, email)
		res := env.Do(t, "PUT", s.slug, "/api/v1/events/"+ev+"/inventory", tok, simpleSetup(1, 4, 0, nil))
		if res.Status != want {
			t.Errorf("%s configuring: %d %s, want %d", email, res.Status, res.Body, want)
		}
		res = env.Do(t, "PUT", s.slug, "/api/v1/events/"+ev+"/quotas", tok, map[string]int{"web": 4})
		if res.Status != want {
			t.Errorf("%s setting quotas: %d, want %d", email, res.Status, want)
		}
	}
	res = env.Do(t, "PUT", s.slug, "/api/v1/events/"+ev+"/inventory", "", simpleSetup(1, 4, 0, nil))
	mustStatus(t, res, http.StatusUnauthorized)
	// The other tenant cannot see this event's inventory at all.
	o := newShop(t, env, inv, "permsother")
	res = o.do(t, "GET", "/api/v1/events/"+ev+"/inventory", nil)
	mustStatus(t, res, http.StatusNotFound)
	res = env.Do(t, "GET", o.slug, "/api/v1/events/"+ev+"/availability", "", nil)
	mustStatus(t, res, http.StatusNotFound)
}

// The public catalogue lists on-sale events with tickets, their lowest
// price and what is left.
func TestCatalogue(t *testing.T) {
	t.Parallel()
	env, inv := startEnv(t)
	s := newShop(t, env, inv, "cat")
	ev := s.event(t, "Catalogue Night")
	s.event(t, "No Tickets Yet")
	s.configure(t, ev, simpleSetup(2, 10, 30, nil))
	res := env.Do(t, "GET", s.slug, "/api/v1/events?status=on_sale", "", nil)
	mustStatus(t, res, http.StatusOK)
	var out struct {
		Items []inventory.CatalogueItem
	}
	res.JSON(t, &out)
	if len(out.Items) != 1 || out.Items[0].ID.String() != ev || *out.Items[0].MinPrice != 3000 || out.Items[0].Available != 50 || out.Items[0].Currency != "EUR" {
		t.Fatalf("catalogue: %s", res.Body)
	}
	res = env.Do(t, "GET", s.slug, "/api/v1/events?status=draft", "", nil)
	mustStatus(t, res, http.StatusBadRequest)
	res = env.Do(t, "GET", s.slug, "/api/v1/events?category=theatre", "", nil)
	res.JSON(t, &out)
	if len(out.Items) != 0 {
		t.Fatalf("category filter: %s", res.Body)
	}
	// The bitmap form carries the same seats.
	s.mustHold(t, ev, s.buyer(t), map[string]any{"seats": []string{"A-1-2"}})
	res = env.Do(t, "GET", s.slug, "/api/v1/events/"+ev+"/availability?format=bitmap", "", nil)
	mustStatus(t, res, http.StatusOK)
	var bm inventory.BitmapAvailability
	res.JSON(t, &bm)
	if bm.SeatCount != 20 || bm.Bitmap[:1] != "E" { // seat 2 held: 00 01 00 00 = 0x10 -> "E..."
		t.Fatalf("bitmap: %s", res.Body)
	}
}

// An admission gate sees every hold first and can refuse it.
func TestAdmissionGate(t *testing.T) {
	t.Parallel()
	gate := &fakeGate{}
	env, inv := startEnv(t, inventory.WithAdmissionGate(gate))
	s := newShop(t, env, inv, "gate")
	ev := s.event(t, "Gate Night")
	s.configure(t, ev, simpleSetup(1, 5, 0, nil))
	b := s.buyer(t)
	res, _ := s.hold(ev, b, map[string]any{"seats": []string{"A-1-1"}})
	if res.Status != http.StatusForbidden || res.Code() != "queue_required" {
		t.Fatalf("no queue token: %d %s", res.Status, res.Body)
	}
	res, _ = s.hold(ev, b, map[string]any{"seats": []string{"A-1-1"}}, "X-Queue-Token", "let-me-in")
	mustStatus(t, res, http.StatusCreated)
	if gate.buyer == "" || gate.event.String() != ev {
		t.Fatalf("gate saw %q %s", gate.buyer, gate.event)
	}
}

type fakeGate struct {
	buyer string
	event uuid.UUID
}

func (g *fakeGate) Check(ctx context.Context, t tenants.Tenant, eventID uuid.UUID, buyerID, token string) error {
	g.buyer, g.event = buyerID, eventID
	if token != "let-me-in" {
		return app.Forbidden("queue_required", "join the waiting room first")
	}
	return nil
}

// Settings out of range answer 400 with the field's own listed code (under
// test an unlisted code panics) and change nothing.
func TestSettingsOutOfRange(t *testing.T) {
	t.Parallel()
	env, inv := startEnv(t)
	s := newShop(t, env, inv, "settingsrange")
	ev := s.event(t, "Settings Night")
	s.configure(t, ev, simpleSetup(1, 5, 10, nil))
	for field, v := range map[string]int{"hold_minutes": 0, "max_buyer_holds": 1001, "max_buyer_tickets": 0, "max_ip_holds": -1} {
		before := s.count(t, `SELECT hold_minutes * 1000000 + max_buyer_holds * 1000 + max_ip_holds FROM inv_events WHERE event_id = ?`, ev)
		res := s.do(t, "PATCH", "/api/v1/events/"+ev+"/settings", map[string]any{field: v})
		if res.Status != http.StatusBadRequest || res.Code() != "invalid_"+field || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/problem+json") {
			t.Errorf("%s = %d: %d %s", field, v, res.Status, res.Body)
		}
		if after := s.count(t, `SELECT hold_minutes * 1000000 + max_buyer_holds * 1000 + max_ip_holds FROM inv_events WHERE event_id = ?`, ev); after != before {
			t.Errorf("%s = %d changed the settings", field, v)
		}
	}
}
