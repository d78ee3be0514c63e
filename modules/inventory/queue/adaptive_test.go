package queue

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"

	"marquee/app/apptest"
	"marquee/modules/inventory"
)

// healthy is a window in which buyers wait, the slots are used and every
// request was fast.
func healthy(c Control) Signals {
	return Signals{Requests: 100, Queued: 1000, Active: int64(c.Cap), Admitted: int64(c.Rate), Window: time.Second}
}

// The controller on synthetic signals: slow start to the ceiling, never
// above it; a cut by Backoff on latency or failures, never below the floor;
// additive growth after the first cut; nothing without demand; a lowered
// ceiling binds at once.
func TestControllerOnSyntheticSignals(t *testing.T) {
	now := time.Now()
	c := Initial(400, 200)
	if c.Rate != 100 || c.Cap != 50 || !c.SlowStart {
		t.Fatalf("initial %+v", c)
	}
	c = c.Step(healthy(c), 400, 200, now)
	if c.Rate != 200 || c.Cap != 100 || c.Decision != "increase: slow start" {
		t.Fatalf("slow start: %+v", c)
	}
	for range 5 {
		c = c.Step(healthy(c), 400, 200, now)
	}
	if c.Rate != 400 || c.Cap != 200 || c.SlowStart {
		t.Fatalf("at the ceiling: %+v", c)
	}
	// Latency: 6% of requests over the objective is a cut.
	slow := healthy(c)
	slow.Slow = 6
	c = c.Step(slow, 400, 200, now)
	if c.Rate != 280 || c.Cap != 140 || c.Decision != "decrease: latency over the objective" {
		t.Fatalf("cut on latency: %+v", c)
	}
	// 5% is within the objective (p95): additive growth, a twentieth of the ceiling.
	ok := healthy(c)
	ok.Slow = 5
	c = c.Step(ok, 400, 200, now)
	if c.Rate != 300 || c.Cap != 150 || c.Decision != "increase" {
		t.Fatalf("additive growth: %+v", c)
	}
	// Failures (shed, overloaded) over 1%: a cut, even with fast requests.
	failing := healthy(c)
	failing.Failed = 2
	c = c.Step(failing, 400, 200, now)
	if c.Rate != 210 || c.Cap != 105 || c.Decision != "decrease: requests failed" {
		t.Fatalf("cut on failures: %+v", c)
	}
	// No demand (nobody waits, or the slots are not used): hold.
	idle := healthy(c)
	idle.Queued = 0
	if n := c.Step(idle, 400, 200, now); n.Rate != c.Rate || n.Cap != c.Cap {
		t.Fatalf("grew without demand: %+v", n)
	}
	unused := healthy(c)
	unused.Active, unused.Admitted = int64(c.Cap/2), 0
	if n := c.Step(unused, 400, 200, now); n.Cap != c.Cap {
		t.Fatalf("grew with half the slots unused: %+v", n)
	}
	// Too few requests say nothing about latency.
	few := healthy(c)
	few.Requests, few.Slow = 5, 5
	if n := c.Step(few, 400, 200, now); n.Cap < c.Cap {
		t.Fatalf("cut on %d requests: %+v", few.Requests, n)
	}
	// Repeated trouble stops at the floor (a twentieth of the ceiling).
	bad := healthy(c)
	bad.Failed = 50
	for range 30 {
		c = c.Step(bad, 400, 200, now)
	}
	if c.Rate != 20 || c.Cap != 10 {
		t.Fatalf("floor: %+v", c)
	}
	// A chain lowering its ceiling binds at the next step.
	for range 30 {
		c = c.Step(healthy(c), 400, 200, now)
	}
	if c = c.Step(healthy(c), 100, 30, now); c.Rate != 100 || c.Cap != 30 {
		t.Fatalf("lowered ceiling: %+v", c)
	}
}

// Against a synthetic platform that serves up to `capacity` buyers at once
// within the objective and slows beyond (the share of slow requests growing
// with the excess), the controller settles around that capacity: below the
// configured ceiling, never above it, and back there after the platform
// loses half its capacity for a while (another chain's sale).
func TestControllerFindsThePlatformsCapacity(t *testing.T) {
	capacityAt := func(step int) float64 {
		if step >= 60 && step < 90 {
			return 150
		}
		return 300
	}
	plant := func(c Control, capacity float64) Signals {
		s := healthy(c)
		if excess := c.Cap - capacity; excess > 0 {
			s.Slow = int64(math.Min(100, 5+100*excess/capacity))
		}
		return s
	}
	c := Initial(2000, 1000)
	var sum [3]float64
	var n [3]int
	for step := range 120 {
		c = c.Step(plant(c, capacityAt(step)), 2000, 1000, time.Now())
		if c.Cap > 1000 || c.Rate > 2000 {
			t.Fatalf("step %d above the ceiling: %+v", step, c)
		}
		phase := map[bool]int{true: 0, false: 1}[step < 60]
		if step >= 90 {
			phase = 2
		}
		if step%60 >= 20 || phase == 2 { // after settling
			sum[phase] += c.Cap
			n[phase]++
		}
	}
	for i, want := range []float64{300, 150, 300} {
		mean := sum[i] / float64(n[i])
		if mean < 0.6*want || mean > 1.1*want {
			t.Errorf("phase %d: mean cap %.0f, platform serves %.0f", i, mean, want)
		}
	}
}

// On the real stack: an adaptive room behind the real inventory starts at a
// quarter of its ceiling (its cap binds admissions), measures its buyers'
// real holds, orders and payments, and steps on them: the state route shows
// the window's requests and a decision that matches their latency, and
// admission follows the new cap.
func TestAdaptiveRoomOnTheRealStack(t *testing.T) {
	h := newHotSale(t)
	ctx := context.Background()
	owner := h.env.Login(t, h.slug, "owner@"+h.slug+".test")
	if res := h.env.Do(t, "PUT", h.slug, "/api/v1/events/"+h.event+"/waiting-room", owner,
		map[string]any{"enabled": true, "admit_per_second": 1000, "max_active": 40, "idle_timeout_seconds": 60}); res.Status != http.StatusOK {
		t.Fatalf("room: %d %s", res.Status, res.Body)
	}
	state := func() RoomState {
		t.Helper()
		res := h.env.Do(t, "GET", h.slug, "/api/v1/events/"+h.event+"/waiting-room/state", owner, nil)
		if res.Status != http.StatusOK {
			t.Fatalf("state: %d %s", res.Status, res.Body)
		}
		var st RoomState
		res.JSON(t, &st)
		return st
	}
	type buyer struct {
		tok   string
		place Status
	}
	var buyers []buyer
	for range 40 {
		tok, place := h.buyer(t)
		buyers = append(buyers, buyer{tok, place})
	}
	if st := h.status(t, buyers[0].tok, buyers[0].place); st.State != "admitted" {
		t.Fatalf("first buyer: %+v", st)
	}
	h.clk.add(time.Second)
	h.room.AdmitOnce(ctx)
	st := state()
	if st.Control == nil || st.Control.Cap != 10 || st.Control.Rate != 250 || st.Active != 10 || st.Queued != 30 {
		t.Fatalf("initial state: %+v control %+v", st, st.Control)
	}
	// The ten admitted buy: a hold, an order and a payment each (no
	// admitter step meanwhile, so one window holds them all).
	tn, _ := h.env.App.Tenants.Lookup(ctx, h.slug)
	for _, b := range buyers[:10] {
		buyerID, _ := h.inv.Service().BuyerFromToken(tn, b.tok)
		place, err := h.room.StatusOf(ctx, tn, uuid.MustParse(h.event), buyerID, b.place.QueueToken)
		if err != nil || place.State != "admitted" {
			t.Fatalf("admitted buyer: %+v %v", place, err)
		}
		access := place.AccessToken
		hd := h.hold(t, b.tok, access)
		res := h.env.Do(t, "POST", h.slug, "/api/v1/orders", "", map[string]any{"hold_id": hd.ID, "buyer": map[string]string{"email": "b@example.com", "name": "B"}},
			inventory.BuyerHeader, b.tok, "Idempotency-Key", uuid.NewString())
		if res.Status != http.StatusCreated {
			t.Fatalf("order: %d %s", res.Status, res.Body)
		}
		var o inventory.Order
		res.JSON(t, &o)
		payload, sig, _ := inventory.TestWebhookEvent("whsec_test_queue", "evt_adapt_"+uuid.NewString()[:8], "payment_intent.succeeded",
			*o.PaymentIntentID, o.AmountMinor, o.Currency, h.slug, o.ID)
		if res := h.env.Do(t, "POST", h.slug, "/api/v1/webhooks/stripe", "", payload, "Stripe-Signature", sig); res.Status != http.StatusOK {
			t.Fatalf("webhook: %d %s", res.Status, res.Body)
		}
	}
	k := h.room.keys(tn, uuid.MustParse(h.event))
	// The last observations reach Redis with the next flush.
	apptest.Eventually(t, 5*time.Second, "30 steps counted in the room's window", func() bool {
		h.room.flushPending()
		n, _ := strconv.Atoi(h.room.rdb.HGet(ctx, k.signal, "requests").Val())
		return n >= 30
	})
	// The next step (the controller's lock lets one step a second).
	apptest.Eventually(t, 5*time.Second, "a controller step on the window", func() bool {
		h.clk.add(100 * time.Millisecond)
		h.room.AdmitOnce(ctx)
		c := state().Control
		return c != nil && c.Signals.Requests >= 30
	})
	st = state()
	c := st.Control
	slow := float64(c.Signals.Slow) > SlowShare*float64(c.Signals.Requests)
	switch {
	case c.Signals.Requests != 30 || c.Signals.Failed != 0:
		t.Fatalf("window: %+v", c.Signals)
	case slow && (c.Cap != 7 || c.Decisions() != "decrease"):
		t.Fatalf("slow window (%d of %d over %v) but %+v", c.Signals.Slow, c.Signals.Requests, Objective, c)
	case !slow && (c.Cap != 20 || c.Decisions() != "increase"):
		t.Fatalf("fast window (%d of %d over %v) but %+v", c.Signals.Slow, c.Signals.Requests, Objective, c)
	}
	t.Logf("controller after real purchases: %s, rate %.0f, cap %.0f, mean %.1f ms", c.Decision, c.Rate, c.Cap, c.Signals.MeanMs)
	// Admission follows the new cap.
	h.clk.add(time.Second)
	h.room.AdmitOnce(ctx)
	if st := state(); st.Active != int64(math.Min(c.Cap, 30)) {
		t.Fatalf("active %d with cap %.0f: %s", st.Active, c.Cap, fmt.Sprint(st.Control))
	}
}
