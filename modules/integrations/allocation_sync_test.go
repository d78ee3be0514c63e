package integrations_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"marquee/app/apptest"
)

// A quota changed through the inventory's own route (PUT
// /events/{id}/quotas) reaches both channels at once, through the
// inventory's quotas hook and a task, not at a later sweep.
func TestQuotaRouteChangePushedToChannels(t *testing.T) {
	e := startEnv(t)
	c := newChain(t, e, 100, map[string]int{"web": 60, "ticketmaster": 20, "eventbrite": 20})
	apptest.MustStatus(t, c.allocate(t, "ticketmaster", 20), http.StatusOK)
	apptest.MustStatus(t, c.allocate(t, "eventbrite", 20), http.StatusOK)
	ctx, cancel := context.WithCancel(context.Background())
	worker := make(chan error, 1)
	go func() { worker <- e.App.RunWorker(ctx, false) }()
	t.Cleanup(func() { cancel(); <-worker })

	apptest.MustStatus(t, c.do(t, "PUT", "/api/v1/events/"+c.event.String()+"/quotas",
		map[string]int{"web": 60, "ticketmaster": 12, "eventbrite": 14}), http.StatusOK)
	apptest.Eventually(t, 20*time.Second, "both channels have the inventory's new quotas", func() bool {
		return c.tm.Allocated(c.tmEvent) == 12 && c.eb.QuantityTotal(c.ebClass) == 14
	})
	if n := c.count(t, `SELECT count(*) FROM int_listings WHERE event_id = ? AND push_state = 'pushed'`, c.event); n != 2 {
		t.Fatalf("%d listings pushed, want 2", n)
	}
	// The sweep finds nothing left to push: no call reaches Ticketmaster.
	calls := c.tm.Calls("partner")
	if err := e.mod.Service().SweepAllocations(context.Background(), c.t); err != nil || c.tm.Calls("partner") != calls {
		t.Fatalf("the sweep called Ticketmaster again (%v)", err)
	}
}

// The per-minute sweep is the safety net of the hook: a quota change whose
// task never ran (no worker here, as after a crash between the commit and
// the hook) reaches the channels at the next sweep, once.
func TestAllocationSweepPushesWhatTheHookMissed(t *testing.T) {
	e := startEnv(t)
	c := newChain(t, e, 100, map[string]int{"web": 60, "ticketmaster": 20, "eventbrite": 20})
	apptest.MustStatus(t, c.allocate(t, "ticketmaster", 20), http.StatusOK)
	apptest.MustStatus(t, c.allocate(t, "eventbrite", 20), http.StatusOK)
	apptest.MustStatus(t, c.do(t, "PUT", "/api/v1/events/"+c.event.String()+"/quotas",
		map[string]int{"web": 60, "ticketmaster": 9, "eventbrite": 20}), http.StatusOK)
	if got := c.tm.Allocated(c.tmEvent); got != 20 {
		t.Fatalf("Ticketmaster allocation %d before any task or sweep ran, want 20", got)
	}
	if err := e.mod.Service().SweepAllocations(context.Background(), c.t); err != nil {
		t.Fatal(err)
	}
	if got := c.tm.Allocated(c.tmEvent); got != 9 {
		t.Fatalf("Ticketmaster allocation %d after the sweep, want 9", got)
	}
	if got := c.eb.QuantityTotal(c.ebClass); got != 20 {
		t.Fatalf("Eventbrite quantity_total %d, want 20 (unchanged)", got)
	}
	calls := c.tm.Calls("partner")
	if err := e.mod.Service().SweepAllocations(context.Background(), c.t); err != nil || c.tm.Calls("partner") != calls {
		t.Fatalf("a second sweep called Ticketmaster again (%v)", err)
	}
}
