package integrations_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"marquee/app/apptest"
	"marquee/modules/integrations"
)

// Ticketmaster Discovery's 5,000 calls a day are counted apart from the
// connector's other calls and never passed: catalogue reads racing for the
// last three calls of the day make three calls, the others are refused
// (429 discovery_budget_spent) and recorded on the timeline; Partner
// polling neither counts against it nor is stopped by it.
func TestDiscoveryDailyBudget(t *testing.T) {
	e := startEnv(t)
	c := newChain(t, e, 100, map[string]int{"web": 60, "ticketmaster": 20, "eventbrite": 20})
	c.poll(t) // Partner calls: not Discovery's
	var con integrations.Connector
	res := c.do(t, "GET", "/api/v1/integrations/connectors/"+c.tmConn.ID.String(), nil)
	apptest.MustStatus(t, res, http.StatusOK)
	res.JSON(t, &con)
	if con.Health.DiscoveryCalls != 0 || con.Health.DayCalls == 0 {
		t.Fatalf("after a poll: Discovery %d calls, all %d; want 0 and some", con.Health.DiscoveryCalls, con.Health.DayCalls)
	}

	day := time.Now().UTC().Format("2006-01-02")
	c.count(t, `WITH u AS (UPDATE int_connectors SET discovery_day = ?::date, discovery_calls = ? WHERE id = ? RETURNING 1) SELECT count(*) FROM u`,
		day, integrations.DiscoveryPerDay-3, c.tmConn.ID)
	before := c.tm.Calls("discovery")
	const n = 8
	var wg sync.WaitGroup
	results := make(chan apptest.Response, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results <- e.Do(t, "GET", c.slug, "/api/v1/integrations/connectors/"+c.tmConn.ID.String()+"/external-events", c.tok, nil)
		}()
	}
	wg.Wait()
	close(results)
	refused := 0
	for r := range results {
		switch {
		case r.Status == http.StatusTooManyRequests && r.Code() == "discovery_budget_spent":
			refused++
		case r.Status != http.StatusOK:
			t.Errorf("catalogue read answered %d %s", r.Status, r.Body)
		}
	}
	if got := c.tm.Calls("discovery") - before; got != 3 {
		t.Fatalf("%d Discovery calls reached Ticketmaster, want the 3 left of the day", got)
	}
	if refused < n-3 {
		t.Fatalf("%d reads refused, want at least %d", refused, n-3)
	}
	res = c.do(t, "GET", "/api/v1/integrations/connectors/"+c.tmConn.ID.String(), nil)
	res.JSON(t, &con)
	if con.Health.DiscoveryCalls != integrations.DiscoveryPerDay {
		t.Fatalf("Discovery calls %d, want %d", con.Health.DiscoveryCalls, integrations.DiscoveryPerDay)
	}
	if got := c.count(t, `SELECT count(*) FROM int_syncs WHERE connector_id = ? AND kind = 'catalogue' AND NOT ok AND detail LIKE '%calls of today are used%'`, c.tmConn.ID); got != refused {
		t.Fatalf("%d skips on the timeline, want %d", got, refused)
	}
	// Polling goes on: the Partner API is not Discovery.
	if p := c.poll(t); p.Skipped != "" {
		t.Fatalf("poll skipped: %s", p.Skipped)
	}
	// The portal labels both counts.
	page := c.do(t, "GET", "/portal/channels", nil)
	apptest.MustStatus(t, page, http.StatusOK)
	if !strings.Contains(string(page.Body), "Discovery 5000 of 5000") {
		t.Fatalf("the channels page does not show Discovery's count apart")
	}
}
