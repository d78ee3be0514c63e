package integrations_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"marquee/app/apptest"
	"marquee/modules/integrations"
)

// A channel that sells past what we gave it is caught: at sale time (the
// order that does not fit is recorded as an oversell, alerted, never
// hidden) and by reconciliation (their count above the allocation).
// Allocations are never lowered below what the channel sold, and a final
// reconciliation writes the proof to the ledger.
func TestOversellAllocationAndFinalReconciliation(t *testing.T) {
	e := startEnv(t)
	c := newChain(t, e, 100, map[string]int{"web": 60, "ticketmaster": 20, "eventbrite": 20})
	apptest.MustStatus(t, c.allocate(t, "eventbrite", 10), http.StatusOK)
	apptest.MustStatus(t, c.allocate(t, "ticketmaster", 10), http.StatusOK)
	sub := e.App.Redis.Subscribe(context.Background(), e.App.RedisKey("rt", c.slug, integrations.TopicAlerts))
	defer sub.Close()
	if _, err := sub.Receive(context.Background()); err != nil { // subscribed before anything is published
		t.Fatal(err)
	}

	// Eventbrite sells 13 where we allowed 10.
	c.eb.Oversell = true
	for i := 0; i < 13; i++ {
		if d, ok := c.eb.PlaceOrder(c.ebEvent, c.ebClass, 1); !ok || d.Status != http.StatusOK {
			t.Fatalf("delivery %d answered %d", i, d.Status)
		}
	}
	// Ticketmaster sells 12 where we allowed 10.
	c.tm.Oversell = true
	for i := 0; i < 12; i++ {
		c.tm.Sell(c.tmEvent, 1)
	}
	c.poll(t)
	st := c.stock(t)
	if eb, tm := quotaOf(st, "eventbrite"), quotaOf(st, "ticketmaster"); eb.Sold != 10 || tm.Sold != 10 {
		t.Fatalf("our books: eventbrite %d, ticketmaster %d, want both 10 (their quotas)", eb.Sold, tm.Sold)
	}
	if n := c.count(t, `SELECT count(*) FROM int_oversells WHERE detected_by = 'sale'`); n != 5 {
		t.Fatalf("%d oversells recorded at sale time, want 5 (3 Eventbrite + 2 Ticketmaster)", n)
	}
	if n := c.count(t, `SELECT count(*) FROM int_oversells WHERE alerted_at IS NULL`); n != 0 {
		t.Fatalf("%d oversells not alerted", n)
	}
	select {
	case msg := <-sub.Channel():
		if !strings.Contains(msg.Payload, "channel_oversell") {
			t.Fatalf("alert %q", msg.Payload)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no oversell alert was published")
	}

	var rec integrations.EventReconciliation
	res := c.do(t, "POST", "/api/v1/integrations/events/"+c.event.String()+"/reconcile", map[string]bool{"final": false})
	apptest.MustStatus(t, res, http.StatusOK)
	res.JSON(t, &rec)
	for _, r := range rec.Channels {
		if !r.Drift || r.Cause == nil || !strings.Contains(*r.Cause, "channel oversell") || r.TheirSold == nil {
			t.Fatalf("%s: %+v, want drift caused by a channel oversell", r.Channel, r)
		}
		if *r.Delta != map[string]int{"eventbrite": 3, "ticketmaster": 2}[r.Channel] {
			t.Fatalf("%s delta %d", r.Channel, *r.Delta)
		}
	}
	if n := c.count(t, `SELECT count(*) FROM int_oversells WHERE detected_by = 'reconciliation'`); n != 2 {
		t.Fatalf("%d oversells found by reconciliation, want 2", n)
	}

	// Never lowered below what the channel sold: our quota refuses, naming the count.
	res = c.allocate(t, "eventbrite", 5)
	apptest.MustStatus(t, res, http.StatusConflict)
	if res.Code() != "quota_below_sold" || !strings.Contains(string(res.Body), "10") {
		t.Fatalf("lowering below sold: %s", res.Body)
	}
	// A transient failure of the push is retried within the call.
	c.tm.FailNext(http.StatusServiceUnavailable)
	apptest.MustStatus(t, c.allocate(t, "ticketmaster", 15), http.StatusOK)
	if c.tm.Allocated(c.tmEvent) != 15 {
		t.Fatalf("Ticketmaster allocation %d, want 15 after a retried push", c.tm.Allocated(c.tmEvent))
	}
	// Their side refuses a figure below what it sold (12 on Ticketmaster,
	// our quota 15 ≥ our 10): the refusal is the channel's, quoted.
	res = c.allocate(t, "ticketmaster", 11)
	apptest.MustStatus(t, res, http.StatusConflict)
	if res.Code() != "channel_refused_allocation" || !strings.Contains(string(res.Body), "12") {
		t.Fatalf("channel refusal: %s", res.Body)
	}

	// Final reconciliation: the proof goes to the ledger.
	res = c.do(t, "POST", "/api/v1/integrations/events/"+c.event.String()+"/reconcile", map[string]bool{"final": true})
	apptest.MustStatus(t, res, http.StatusOK)
	res.JSON(t, &rec)
	if !strings.Contains(rec.Proof, "sold 20 of capacity 100") {
		t.Fatalf("proof %q", rec.Proof)
	}
	if n := c.count(t, `SELECT count(*) FROM ledger_entries WHERE kind = 'channels.final_reconciliation' AND memo = ?`, rec.Proof); n != 1 {
		t.Fatalf("%d ledger entries with the proof, want 1", n)
	}
	if v, err := e.App.Ledger.Verify(context.Background(), c.t); err != nil || !v.OK {
		t.Fatalf("ledger does not verify: %+v %v", v, err)
	}
}

// An event cancelled on Eventbrite's site but still live in its API: every
// order refunded, the status still live: the drift's cause is named.
func TestEventbriteCancelledOnSiteDrift(t *testing.T) {
	e := startEnv(t)
	c := newChain(t, e, 100, map[string]int{"web": 60, "ticketmaster": 20, "eventbrite": 20})
	apptest.MustStatus(t, c.allocate(t, "eventbrite", 20), http.StatusOK)
	for i := 0; i < 4; i++ {
		c.eb.PlaceOrder(c.ebEvent, c.ebClass, 2)
	}
	// Their refunds reach us late: the webhook endpoint is unreachable.
	hook := c.eb.WebhookURL
	c.eb.WebhookURL = "http://127.0.0.1:1/unreachable"
	c.eb.CancelOnSite(c.ebEvent)
	c.eb.WebhookURL = hook
	var rec integrations.EventReconciliation
	res := c.do(t, "POST", "/api/v1/integrations/events/"+c.event.String()+"/reconcile", nil)
	apptest.MustStatus(t, res, http.StatusOK)
	res.JSON(t, &rec)
	var eb integrations.Reconciliation
	for _, r := range rec.Channels {
		if r.Channel == "eventbrite" {
			eb = r
		}
	}
	if !eb.Drift || *eb.Delta != -8 || eb.Cause == nil || !strings.Contains(*eb.Cause, "cancelled on their site") {
		t.Fatalf("before the refunds arrive: %+v", eb)
	}
	// The refunds arrive (Eventbrite retries); our books follow, the API still says live.
	ids, err := listOrderIDs(c)
	if err != nil || len(ids) != 4 {
		t.Fatalf("sold orders %v %v", ids, err)
	}
	for _, id := range ids {
		c.eb.Deliver("order.refunded", c.eb.URL+"/v3/orders/"+id+"/")
	}
	res = c.do(t, "POST", "/api/v1/integrations/events/"+c.event.String()+"/reconcile", nil)
	res.JSON(t, &rec)
	for _, r := range rec.Channels {
		if r.Channel == "eventbrite" {
			eb = r
		}
	}
	if eb.OurSold != 0 || *eb.TheirSold != 0 || eb.Drift {
		t.Fatalf("after the refunds: %+v", eb)
	}
}

func listOrderIDs(c *chain) ([]string, error) {
	var ids []string
	err := c.e.App.Tx(context.Background(), c.t, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT external_order_id FROM int_orders WHERE status = 'sold' ORDER BY 1`).Scan(&ids).Error
	})
	return ids, err
}
