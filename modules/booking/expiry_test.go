package booking_test

import (
	"context"
	"testing"
	"time"

	"marquee/app/apptest"
	"marquee/jobs"
	"marquee/modules/booking"
)

// An offer nobody answers expires at its deadline through its own task on
// real Redis; one whose task was lost is expired by the sweeper; both are
// idempotent, and an answered offer never expires.
func TestOfferExpiry(t *testing.T) {
	env, mod := startEnv(t)
	c := newChain(t, env, "expiry")
	ctx := context.Background()
	srv := env.App.Jobs.NewServer(2)
	if err := srv.Start(env.App.Jobs.Mux()); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()

	// Far enough ahead that both offers are sent before it on a loaded
	// machine (the send refuses a deadline in the past).
	soon := time.Now().Add(8 * time.Second).UTC().Truncate(time.Second).Add(time.Second)
	lapse := c.act(t, c.create(t, c.artistA), "send", map[string]any{"respond_by": soon.Format(time.RFC3339)})
	answered := c.act(t, c.create(t, c.artistA), "send", map[string]any{"respond_by": soon.Format(time.RFC3339)})
	answered = c.agentAct(t, c.linkA, answered, "accept", nil)

	state := func(id string) booking.State {
		return decode[booking.Detail](t, c.do(t, "GET", "/api/v1/bookings/"+id, nil).Body).State
	}
	apptest.Eventually(t, 30*time.Second, "the offer expires at its deadline", func() bool { return state(lapse.ID.String()) == booking.Expired })
	got := decode[booking.Detail](t, c.do(t, "GET", "/api/v1/bookings/"+lapse.ID.String(), nil).Body)
	last := got.History[len(got.History)-1]
	if last.ActorKind != "system" || last.Action != "expire" || last.FromState != "offer_sent" || got.Awaiting != nil {
		t.Fatalf("expired offer: %+v", got)
	}
	// The answered offer's deadline passed too: its task does nothing.
	if done, err := mod.Service().ExpireOffer(ctx, c.t, answered.ID); err != nil || done {
		t.Fatalf("expiring an accepted offer: %v %v", done, err)
	}
	if s := state(answered.ID.String()); s != booking.Accepted {
		t.Fatalf("an accepted offer became %s", s)
	}
	// Again by hand: nothing more happens.
	if done, err := mod.Service().ExpireOffer(ctx, c.t, lapse.ID); err != nil || done {
		t.Fatalf("expire twice: %v %v", done, err)
	}
	// An expired offer cannot be accepted.
	if res := c.agent(t, c.linkA, "PUT", "/api/v1/agent/bookings/"+lapse.ID.String()+"/accept", map[string]any{"version": got.Version}); res.Code() != "invalid_transition" {
		t.Fatalf("accepting an expired offer: %d %s", res.Status, res.Body)
	}

	// A lapsed offer whose task never ran: the sweeper, fanned out per
	// tenant, expires it.
	srv.Shutdown()
	lost := c.act(t, c.create(t, c.artistA), "send", map[string]any{"respond_by": time.Now().Add(1500 * time.Millisecond).Format(time.RFC3339Nano)})
	apptest.Eventually(t, 5*time.Second, "the deadline passes", func() bool {
		var past bool
		_ = env.App.DB.Raw(`SELECT deadline <= now() FROM "`+c.t.Schema+`".bkg_bookings WHERE id = ?`, lost.ID).Row().Scan(&past)
		return past
	})
	if n, err := mod.Service().SweepOffers(ctx, c.t); err != nil || n != 1 {
		t.Fatalf("sweep: %d %v", n, err)
	}
	if n, err := mod.Service().SweepOffers(ctx, c.t); err != nil || n != 0 {
		t.Fatalf("second sweep: %d %v", n, err)
	}
	if s := state(lost.ID.String()); s != booking.Expired {
		t.Fatalf("swept offer is %s", s)
	}
	if _, err := env.App.Jobs.FanOut(ctx, booking.TaskOfferSweep, jobs.QueueDefault, time.Minute, time.Now()); err != nil {
		t.Fatalf("the sweeper does not fan out: %v", err)
	}
}
