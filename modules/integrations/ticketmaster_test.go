package integrations_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"marquee/app/apptest"
	"marquee/modules/integrations"
	"marquee/modules/integrations/fakes/ticketmaster"
)

// Polling reads every page of orders after the cursor, sells confirmed
// ones once, returns cancelled ones, and the catalogue is read to its last
// page; 429s are retried within the backoff budget, and past it the
// connector backs off and records the error.
func TestTicketmasterPolling(t *testing.T) {
	e := startEnv(t)
	c := newChain(t, e, 400, map[string]int{"web": 100, "ticketmaster": 250, "eventbrite": 50})
	apptest.MustStatus(t, c.allocate(t, "ticketmaster", 250), http.StatusOK)
	if got := c.tm.Allocated(c.tmEvent); got != 250 {
		t.Fatalf("Ticketmaster allocation %d after the push, want 250", got)
	}
	// 230 orders: three pages of 100 on the allocation channel.
	var orders []ticketmaster.Order
	for i := 0; i < 230; i++ {
		o, ok := c.tm.Sell(c.tmEvent, 1)
		if !ok {
			t.Fatal("their side refused a sale inside the allocation")
		}
		orders = append(orders, o)
	}
	c.tm.Book(c.tmEvent, 2) // booked, not confirmed: pending, not sold
	p := c.poll(t)
	if p.Pages != 3 || p.Sold != 230 || p.Orders != 231 {
		t.Fatalf("poll %+v, want 3 pages, 231 orders, 230 sold", p)
	}
	st := c.stock(t)
	if q := quotaOf(st, "ticketmaster"); q.Sold != 230 {
		t.Fatalf("ticketmaster sold %d in our books, want 230", q.Sold)
	}
	// Nothing new: an empty page; the cursor holds.
	if p2 := c.poll(t); p2.Orders != 0 || p2.Cursor != p.Cursor {
		t.Fatalf("second poll %+v, want nothing new at cursor %d", p2, p.Cursor)
	}
	// A cancellation returns the units once.
	c.tm.Move(orders[0].ID, ticketmaster.Cancelled)
	c.poll(t)
	c.poll(t)
	if q := quotaOf(c.stock(t), "ticketmaster"); q.Sold != 229 {
		t.Fatalf("after a cancellation ticketmaster sold %d, want 229", q.Sold)
	}
	var l integrations.ChannelsView
	res := c.do(t, "GET", "/api/v1/integrations/events/"+c.event.String()+"/channels", nil)
	res.JSON(t, &l)
	for _, li := range l.Listings {
		if li.Channel == "ticketmaster" && (li.TheirSold == nil || *li.TheirSold != 229 || li.TheirPending == nil || *li.TheirPending != 2) {
			t.Fatalf("their counts %v/%v, want 229 sold and 2 pending", li.TheirSold, li.TheirPending)
		}
	}

	// Discovery to its last page: 120 more events, 50 a page.
	for i := 0; i < 120; i++ {
		c.tm.AddEvent(ticketmaster.Event{ID: fmt.Sprintf("G5z%03d", i), Name: "Act", Start: time.Now().Add(time.Duration(i) * time.Hour)})
	}
	var cat integrations.ExternalEvents
	res = c.do(t, "GET", "/api/v1/integrations/connectors/"+c.tmConn.ID.String()+"/external-events", nil)
	apptest.MustStatus(t, res, http.StatusOK)
	res.JSON(t, &cat)
	if len(cat.Items) != 121 || cat.Pages != 3 {
		t.Fatalf("catalogue %d events in %d pages, want 121 in 3", len(cat.Items), cat.Pages)
	}

	// Two 429s: retried within the budget, the poll succeeds.
	c.tm.FailNext(http.StatusTooManyRequests, http.StatusTooManyRequests)
	start := time.Now()
	c.poll(t)
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("a poll through two 429s took %v, over the 3 s budget", took)
	}
	// More 429s than the budget allows: the poll fails within the budget,
	// the connector records the fault and backs off; the next poll skips.
	c.tm.FailNext(429, 429, 429, 429, 429, 429)
	start = time.Now()
	res = c.do(t, "POST", "/api/v1/integrations/connectors/"+c.tmConn.ID.String()+"/poll", nil)
	if took := time.Since(start); took > 3500*time.Millisecond {
		t.Fatalf("a refused poll took %v, over the budget", took)
	}
	apptest.MustStatus(t, res, http.StatusBadGateway)
	if res.Code() != "provider_unavailable" {
		t.Fatalf("code %s, want provider_unavailable", res.Code())
	}
	var con integrations.Connector
	res = c.do(t, "GET", "/api/v1/integrations/connectors/"+c.tmConn.ID.String(), nil)
	res.JSON(t, &con)
	if con.Health.BackoffUntil == nil || con.Health.LastError == nil || !strings.Contains(*con.Health.LastError, "policies.ratelimit.QuotaViolation") {
		t.Fatalf("health %+v, want a backoff and the quota fault", con.Health)
	}
	if con.Health.QuotaAllowed == nil || *con.Health.QuotaAllowed != 3600 || con.Health.QuotaAvailable == nil {
		t.Fatalf("quota %v/%v, want the Partner API's headers (3600 an hour)", con.Health.QuotaAvailable, con.Health.QuotaAllowed)
	}
	if p := c.poll(t); !strings.Contains(p.Skipped, "backing off") {
		t.Fatalf("poll during backoff: %+v, want skipped", p)
	}
}

// The nightly maintenance window is 2–4 AM venue time; one task per
// connector and minute.
func TestTicketmasterMaintenanceAndTasks(t *testing.T) {
	berlin, _ := time.LoadLocation("Europe/Berlin")
	for _, tc := range []struct {
		at   time.Time
		want bool
	}{
		{time.Date(2032, 3, 1, 1, 59, 0, 0, berlin), false},
		{time.Date(2032, 3, 1, 2, 0, 0, 0, berlin), true},
		{time.Date(2032, 3, 1, 3, 59, 0, 0, berlin), true},
		{time.Date(2032, 3, 1, 4, 0, 0, 0, berlin), false},
	} {
		if got := integrations.InMaintenance(tc.at.UTC(), "Europe/Berlin"); got != tc.want {
			t.Errorf("%v: maintenance %v, want %v", tc.at, got, tc.want)
		}
	}
	e := startEnv(t)
	c := newChain(t, e, 100, map[string]int{"web": 50, "ticketmaster": 25, "eventbrite": 25})
	now := time.Now()
	n1, err := e.mod.Service().EnqueuePolls(context.Background(), c.t, now)
	if err != nil {
		t.Fatal(err)
	}
	n2, err := e.mod.Service().EnqueuePolls(context.Background(), c.t, now)
	if err != nil {
		t.Fatal(err)
	}
	if n1 != 1 || n2 != 0 {
		t.Fatalf("enqueued %d then %d polls in one minute, want 1 then 0 (one per connector and minute)", n1, n2)
	}
	// The fake refuses Partner calls in its window too.
	c.tm.Now = func() time.Time { return time.Date(2032, 3, 1, 2, 30, 0, 0, berlin) }
	c.tm.Sell(c.tmEvent, 1) // orders still list; availability is down
	res := c.do(t, "POST", "/api/v1/integrations/connectors/"+c.tmConn.ID.String()+"/poll", nil)
	if res.Status == http.StatusOK {
		t.Fatalf("poll in the provider's maintenance window answered 200: %s", res.Body)
	}
}

// Drift mode (Ticketmaster's counts served from a stale cache) shows as a
// delta with its cause; a slow provider fails the poll within the client's
// timeout and is recorded on the connector.
func TestTicketmasterDriftAndSlow(t *testing.T) {
	e := startEnv(t)
	c := newChain(t, e, 100, map[string]int{"web": 60, "ticketmaster": 20, "eventbrite": 20})
	apptest.MustStatus(t, c.allocate(t, "ticketmaster", 20), http.StatusOK)
	c.tm.Drift = true
	c.tm.Sell(c.tmEvent, 5)
	c.poll(t) // their cache now holds 5
	c.tm.Sell(c.tmEvent, 3)
	if p := c.poll(t); p.Sold != 3 {
		t.Fatalf("poll sold %d, want 3", p.Sold)
	}
	var rec integrations.EventReconciliation
	res := c.do(t, "POST", "/api/v1/integrations/events/"+c.event.String()+"/reconcile", nil)
	apptest.MustStatus(t, res, http.StatusOK)
	res.JSON(t, &rec)
	for _, r := range rec.Channels {
		if r.Channel != "ticketmaster" {
			continue
		}
		if r.OurSold != 8 || *r.Delta != -3 || r.Cause == nil || !strings.Contains(*r.Cause, "cached") {
			t.Fatalf("drift: %+v (cause %v)", r, r.Cause)
		}
	}

	svc := e.mod.Service()
	old := svc.HTTP
	svc.HTTP = &http.Client{Timeout: 200 * time.Millisecond}
	defer func() { svc.HTTP = old }()
	c.tm.Slow(time.Second)
	start := time.Now()
	res = c.do(t, "POST", "/api/v1/integrations/connectors/"+c.tmConn.ID.String()+"/poll", nil)
	c.tm.Slow(0)
	if res.Status != http.StatusBadGateway || time.Since(start) > 900*time.Millisecond {
		t.Fatalf("slow provider: %d after %v: %s", res.Status, time.Since(start), res.Body)
	}
	var con integrations.Connector
	c.do(t, "GET", "/api/v1/integrations/connectors/"+c.tmConn.ID.String(), nil).JSON(t, &con)
	if con.Health.LastError == nil || !strings.Contains(*con.Health.LastError, "Client.Timeout") {
		t.Fatalf("health after a slow provider: %+v", con.Health)
	}
}
