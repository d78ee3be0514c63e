package queue

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/app/apptest"
	"marquee/config"
	"marquee/modules/calendar"
	"marquee/modules/inventory"
)

// hotSale is an on-sale event behind a one-slot waiting room (a 60 s idle
// timeout), served by the real inventory and room.
type hotSale struct {
	env   *apptest.Env
	inv   *inventory.Module
	room  *Room
	clk   *clock
	slug  string
	event string
	tier  string
}

func newHotSale(t *testing.T) *hotSale {
	t.Helper()
	stripe := apptest.StripeMock(t)
	inv := inventory.New()
	wr := NewModule(inv)
	env := apptest.Start(t, dbURL, apptest.Options{Modules: []app.Module{calendar.New(), inv, wr}, Configure: func(c *config.Config) {
		c.StripeAPIURL = stripe
		c.StripeSecretKey = config.DevStripeSecretKey
		c.StripeWebhookSecret = "whsec_test_queue"
	}})
	clk := &clock{t: time.Now()}
	wr.Room().now = clk.now
	tn := env.Tenant(t, apptest.UniqueSlug("leave"))
	ev := onSaleBehindRoom(t, env, tn.Slug, "Leave", nil,
		map[string]any{"enabled": true, "admit_per_second": 1000, "max_active": 1, "idle_timeout_seconds": 60})
	return &hotSale{env: env, inv: inv, room: wr.Room(), clk: clk, slug: tn.Slug, event: ev.ID, tier: ev.Tier}
}

// buyer mints a buyer token and joins the queue with it.
func (h *hotSale) buyer(t *testing.T) (token string, place Status) {
	t.Helper()
	token = buyerToken(t, h.env, h.slug)
	res := h.env.Do(t, "POST", h.slug, "/api/v1/events/"+h.event+"/queue", "", nil, inventory.BuyerHeader, token)
	if res.Status != http.StatusOK {
		t.Fatalf("join: %d %s", res.Status, res.Body)
	}
	res.JSON(t, &place)
	return token, place
}

// status admits what the room can and reads a buyer's place.
func (h *hotSale) status(t *testing.T, token string, place Status) Status {
	t.Helper()
	h.clk.add(10 * time.Millisecond) // the admission rate accrues with time: 1000/s is one per millisecond
	if _, err := h.room.AdmitOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	res := h.env.Do(t, "GET", h.slug, "/api/v1/events/"+h.event+"/queue/"+place.QueueToken, "", nil, inventory.BuyerHeader, token)
	if res.Status != http.StatusOK {
		t.Fatalf("status: %d %s", res.Status, res.Body)
	}
	var st Status
	res.JSON(t, &st)
	return st
}

func (h *hotSale) hold(t *testing.T, token, access string) inventory.Hold {
	t.Helper()
	res := h.env.Do(t, "POST", h.slug, "/api/v1/events/"+h.event+"/holds", "", map[string]any{"tier_id": h.tier, "quantity": 1},
		inventory.BuyerHeader, token, inventory.QueueHeader, access, "Idempotency-Key", uuid.NewString())
	if res.Status != http.StatusCreated {
		t.Fatalf("hold: %d %s", res.Status, res.Body)
	}
	var hd inventory.Hold
	res.JSON(t, &hd)
	return hd
}

// first admits a buyer into the empty room and queues a second behind them
// (the room is full: one slot).
func (h *hotSale) first(t *testing.T) (aTok, aAccess, bTok string, bPlace Status) {
	t.Helper()
	aTok, aPlace := h.buyer(t)
	a := h.status(t, aTok, aPlace)
	if a.State != "admitted" {
		t.Fatalf("first buyer not admitted: %+v", a)
	}
	bTok, bPlace = h.buyer(t)
	if st := h.status(t, bTok, bPlace); st.State != "queued" {
		t.Fatalf("second buyer got in while the room was full: %+v", st)
	}
	return aTok, a.AccessToken, bTok, bPlace
}

// A buyer whose order is paid leaves the room by the server's hand: the next
// buyer gets in at once, without any DELETE from the page and without
// waiting for the idle timeout.
func TestPaidBuyerFreesWaitingRoomSlot(t *testing.T) {
	h := newHotSale(t)
	aTok, aAccess, bTok, bPlace := h.first(t)
	hd := h.hold(t, aTok, aAccess)
	res := h.env.Do(t, "POST", h.slug, "/api/v1/orders", "", map[string]any{"hold_id": hd.ID, "buyer": map[string]string{"email": "a@example.com", "name": "A"}},
		inventory.BuyerHeader, aTok, "Idempotency-Key", uuid.NewString())
	if res.Status != http.StatusCreated {
		t.Fatalf("order: %d %s", res.Status, res.Body)
	}
	var o inventory.Order
	res.JSON(t, &o)
	if st := h.status(t, bTok, bPlace); st.State != "queued" {
		t.Fatalf("second buyer got in before the first paid: %+v", st)
	}
	payload, sig, err := inventory.TestWebhookEvent("whsec_test_queue", "evt_leave_"+uuid.NewString()[:8], "payment_intent.succeeded",
		*o.PaymentIntentID, o.AmountMinor, o.Currency, h.slug, o.ID)
	if err != nil {
		t.Fatal(err)
	}
	if res := h.env.Do(t, "POST", h.slug, "/api/v1/webhooks/stripe", "", payload, "Stripe-Signature", sig); res.Status != http.StatusOK {
		t.Fatalf("webhook: %d %s", res.Status, res.Body)
	}
	if st := h.status(t, bTok, bPlace); st.State != "admitted" {
		t.Fatalf("next buyer still waits after the first paid: %+v", st)
	}
}

// Releasing a hold while keeping another keeps the buyer's place; releasing
// the last one frees it for the next buyer.
func TestReleasingLastHoldFreesWaitingRoomSlot(t *testing.T) {
	h := newHotSale(t)
	ctx := context.Background()
	tn, err := h.env.App.Tenants.Lookup(ctx, h.slug)
	if err != nil {
		t.Fatal(err)
	}
	aTok, aAccess, bTok, bPlace := h.first(t)
	// A buyer's second hold on the storefront is one that is not their
	// cart (their next "new hold" would join the cart): h1 stands for such
	// a hold (a resale reservation, a waiting-list offer), made one here.
	h1 := h.hold(t, aTok, aAccess)
	if err := h.env.App.Tx(ctx, tn, func(tx *gorm.DB) error {
		return tx.Exec(`UPDATE inv_holds SET cart = false WHERE id = ?`, h1.ID).Error
	}); err != nil {
		t.Fatal(err)
	}
	h2 := h.hold(t, aTok, aAccess)
	if h2.ID == h1.ID {
		t.Fatal("the second hold joined a hold that is not a cart")
	}
	release := func(id uuid.UUID) {
		t.Helper()
		if res := h.env.Do(t, "DELETE", h.slug, "/api/v1/holds/"+id.String(), "", nil, inventory.BuyerHeader, aTok); res.Status != http.StatusNoContent {
			t.Fatalf("release: %d %s", res.Status, res.Body)
		}
	}
	release(h1.ID)
	if st := h.status(t, bTok, bPlace); st.State != "queued" {
		t.Fatalf("buyer with a hold left lost their place: %+v", st)
	}
	release(h2.ID)
	if st := h.status(t, bTok, bPlace); st.State != "admitted" {
		t.Fatalf("next buyer still waits after the first released everything: %+v", st)
	}
}

// A buyer who walks away leaves the room when their last hold expires, by
// the expiry task or by the sweeper: the next buyer gets in at once instead
// of after the idle timeout.
func TestExpiredLastHoldFreesWaitingRoomSlot(t *testing.T) {
	h := newHotSale(t)
	ctx := context.Background()
	tn, err := h.env.App.Tenants.Lookup(ctx, h.slug)
	if err != nil {
		t.Fatal(err)
	}
	lapse := func(id uuid.UUID) {
		t.Helper()
		if err := h.env.App.Tx(ctx, tn, func(tx *gorm.DB) error {
			return tx.Exec(`UPDATE inv_holds SET expires_at = now() - interval '1 second' WHERE id = ?`, id).Error
		}); err != nil {
			t.Fatal(err)
		}
	}
	aTok, aAccess, bTok, bPlace := h.first(t)
	a := h.hold(t, aTok, aAccess)
	lapse(a.ID)
	if expired, err := h.inv.Service().ExpireHold(ctx, tn, a.ID); err != nil || !expired {
		t.Fatalf("expire: %v %v", expired, err)
	}
	b := h.status(t, bTok, bPlace)
	if b.State != "admitted" {
		t.Fatalf("next buyer still waits after the first buyer's hold expired: %+v", b)
	}

	// The same through the sweeper (the hold's own task lost).
	cTok, cPlace := h.buyer(t)
	bHold := h.hold(t, bTok, b.AccessToken)
	if st := h.status(t, cTok, cPlace); st.State != "queued" {
		t.Fatalf("third buyer got in while the room was full: %+v", st)
	}
	lapse(bHold.ID)
	if n, err := h.inv.Service().SweepHolds(ctx, tn, 10); err != nil || n != 1 {
		t.Fatalf("sweep: %d %v", n, err)
	}
	if st := h.status(t, cTok, cPlace); st.State != "admitted" {
		t.Fatalf("next buyer still waits after the swept hold: %+v", st)
	}
}
