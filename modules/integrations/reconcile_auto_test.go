package integrations_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"marquee/app/apptest"
	"marquee/modules/integrations"
)

// Reconciliation runs by itself: each quarter hour one task per event with
// an open listing (queued once per quarter however often the tenant task
// runs), and once the sale has closed (the tier's sale_ends passed) the
// final one, which writes the proof to the ledger once and closes the
// listings, so nothing more is queued.
func TestReconciliationPeriodicAndFinalAtSaleClose(t *testing.T) {
	e := startEnv(t)
	c := newChain(t, e, 100, map[string]int{"web": 60, "ticketmaster": 20, "eventbrite": 20})
	apptest.MustStatus(t, c.allocate(t, "eventbrite", 20), http.StatusOK)
	if _, ok := c.eb.PlaceOrder(c.ebEvent, c.ebClass, 3); !ok {
		t.Fatal("order refused")
	}
	svc := e.mod.Service()
	ctx, cancel := context.WithCancel(context.Background())
	worker := make(chan error, 1)
	go func() { worker <- e.App.RunWorker(ctx, false) }()
	t.Cleanup(func() { cancel(); <-worker })

	quarter := time.Now().UTC().Truncate(integrations.ReconcileEvery).Add(integrations.ReconcileEvery)
	if n, err := svc.EnqueueReconciliations(context.Background(), c.t, quarter.Add(-time.Minute)); err != nil || n != 0 {
		t.Fatalf("off the quarter: %d queued (%v), want 0", n, err)
	}
	for range 3 {
		if _, err := svc.EnqueueReconciliations(context.Background(), c.t, quarter.Add(10*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	apptest.Eventually(t, 20*time.Second, "the periodic reconciliation of both channels", func() bool {
		return c.count(t, `SELECT count(*) FROM int_reconciliations WHERE event_id = ? AND NOT final`, c.event) >= 2
	})
	if n := c.count(t, `SELECT count(*) FROM int_reconciliations WHERE event_id = ? AND NOT final AND channel = 'eventbrite' AND our_sold = 3 AND their_sold = 3`, c.event); n != 1 {
		t.Fatalf("%d eventbrite reconciliations with 3 sold on both sides, want 1 (one task per quarter)", n)
	}

	// The sale closes: the tier's sale ended a minute ago.
	ended := time.Now().Add(-time.Minute)
	c.setTier(t, 2500, ended.Add(-24*time.Hour), ended)
	for range 3 {
		if _, err := svc.EnqueueReconciliations(context.Background(), c.t, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	apptest.Eventually(t, 20*time.Second, "the final reconciliation in the ledger", func() bool {
		return c.count(t, `SELECT count(*) FROM ledger_entries WHERE kind = 'channels.final_reconciliation'`) > 0
	})
	if n := c.count(t, `SELECT count(*) FROM int_listings WHERE event_id = ? AND closed_at IS NULL`, c.event); n != 0 {
		t.Fatalf("%d listings open after the final reconciliation", n)
	}
	if n, err := svc.EnqueueReconciliations(context.Background(), c.t, time.Now()); err != nil || n != 0 {
		t.Fatalf("after the final: %d queued (%v), want 0", n, err)
	}
	if n := c.count(t, `SELECT count(*) FROM ledger_entries WHERE kind = 'channels.final_reconciliation'`); n != 1 {
		t.Fatalf("%d final reconciliations in the ledger, want 1", n)
	}
}

// Final reconciliations racing (the automatic one and people pressing the
// button) write the proof once; the others answer reconciliation_final.
func TestFinalReconciliationOnceUnderRace(t *testing.T) {
	e := startEnv(t)
	c := newChain(t, e, 100, map[string]int{"web": 60, "ticketmaster": 20, "eventbrite": 20})
	const n = 8
	var wg sync.WaitGroup
	codes := make(chan int, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := e.Do(t, "POST", c.slug, "/api/v1/integrations/events/"+c.event.String()+"/reconcile", c.tok, map[string]bool{"final": true})
			if res.Status == http.StatusConflict && res.Code() != "reconciliation_final" {
				t.Errorf("conflict %s", res.Body)
			}
			codes <- res.Status
		}()
	}
	wg.Wait()
	close(codes)
	ok := 0
	for s := range codes {
		if s == http.StatusOK {
			ok++
		} else if s != http.StatusConflict {
			t.Errorf("status %d", s)
		}
	}
	if ok != 1 {
		t.Fatalf("%d final reconciliations succeeded, want 1", ok)
	}
	if got := c.count(t, `SELECT count(*) FROM ledger_entries WHERE kind = 'channels.final_reconciliation'`); got != 1 {
		t.Fatalf("%d proofs in the ledger, want 1", got)
	}
}
