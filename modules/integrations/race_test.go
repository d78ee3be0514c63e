package integrations_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/app/apptest"
	"marquee/internal/channelsbench"
)

// raceResult is what a race of the storefront and both channels did.
type raceResult struct {
	webHeld              int
	tmSold, ebSold       int // in our books
	tmLatency, ebLatency []time.Duration
	tmRate, ebRate       float64 // units a second into our books
	elapsed              time.Duration
}

// race has the storefront (HTTP holds, one ticket each), Ticketmaster
// (their side selling, our poller polling concurrently) and Eventbrite
// (orders whose webhooks arrive concurrently) sell at once. Both channels
// sell past their quotas on their side, so the last units are contested.
func race(t testing.TB, e *env, c *chain, web, tmSales, ebSales int) raceResult {
	t.Helper()
	c.tm.Oversell, c.eb.Oversell = true, true
	// Eventbrite redelivers what was not answered 2xx (a serialization
	// retry exhausted under contention), as it does.
	c.eb.Client.Timeout = 30 * time.Second
	tokens := make([]string, web)
	for i := range tokens {
		res := e.Do(t, "POST", c.slug, "/api/v1/buyer-sessions", "", nil)
		apptest.MustStatus(t, res, http.StatusCreated)
		var b struct {
			BuyerToken string `json:"buyer_token"`
		}
		res.JSON(t, &b)
		tokens[i] = b.BuyerToken
	}
	var out raceResult
	var webHeld atomic.Int64
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	done := make(chan struct{})

	// The storefront.
	for i := 0; i < web; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			res, err := e.Try("POST", c.slug, "/api/v1/events/"+c.event.String()+"/holds", "", map[string]any{"tier_id": c.tier, "quantity": 1},
				"Idempotency-Key", uuid.NewString(), "X-Buyer-Token", tokens[i])
			switch {
			case err != nil:
				t.Error(err)
			case res.Status == http.StatusCreated:
				webHeld.Add(1)
			case res.Status == http.StatusConflict:
			default:
				t.Errorf("hold: %d %s", res.Status, res.Body)
			}
		}(i)
	}
	// Ticketmaster's buyers.
	for i := 0; i < tmSales; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.tm.Sell(c.tmEvent, 1)
		}()
	}
	// Eventbrite's buyers: each order's webhook is answered after our
	// inventory took it (or recorded the oversell).
	var ebLat []time.Duration
	for i := 0; i < ebSales; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t0 := time.Now()
			d, ok := c.eb.PlaceOrder(c.ebEvent, c.ebClass, 1)
			for tries := 0; ok && d.Status != http.StatusOK && tries < 5; tries++ {
				d = c.eb.Redeliver(d)
			}
			if !ok || d.Status != http.StatusOK {
				t.Errorf("eventbrite delivery answered %d", d.Status)
				return
			}
			mu.Lock()
			ebLat = append(ebLat, time.Since(t0))
			mu.Unlock()
		}()
	}
	// Our poller, twice at once (two workers racing on one connector).
	svc := e.mod.Service()
	var pollWG sync.WaitGroup
	var tmLat []time.Duration
	for w := 0; w < 2; w++ {
		pollWG.Add(1)
		go func() {
			defer pollWG.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				if _, err := svc.Poll(context.Background(), c.t, c.tmConn.ID); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	// Let the poller catch up with every Ticketmaster order.
	apptest.Eventually(t, 30*time.Second, "the poller reads every Ticketmaster order", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return c.count(t, `SELECT count(*) FROM int_orders o JOIN int_listings l ON l.id = o.listing_id WHERE l.channel = 'ticketmaster'`) >= tmSales
	})
	close(done)
	pollWG.Wait()
	out.elapsed = time.Since(start)
	st := c.stock(t)
	out.webHeld = int(webHeld.Load())
	out.tmSold, out.ebSold = quotaOf(st, "ticketmaster").Sold, quotaOf(st, "eventbrite").Sold
	// Ticketmaster: from their confirmation to our commit, both stamped.
	var secs []float64
	if err := c.e.App.Tx(context.Background(), c.t, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT extract(epoch FROM received_at - their_at)::float8 FROM int_orders WHERE connector_id = ? AND their_at IS NOT NULL`, c.tmConn.ID).Scan(&secs).Error
	}); err != nil {
		t.Fatal(err)
	}
	for _, s := range secs {
		tmLat = append(tmLat, time.Duration(s*float64(time.Second)))
	}
	out.tmLatency, out.ebLatency = tmLat, ebLat
	out.tmRate = float64(out.tmSold) / out.elapsed.Seconds()
	out.ebRate = float64(out.ebSold) / out.elapsed.Seconds()

	// The invariants, from the database.
	for _, q := range st.Channels {
		if q.Sold+q.Held > q.Quota {
			t.Errorf("%s: %d sold + %d held over its quota %d", q.Channel, q.Sold, q.Held, q.Quota)
		}
	}
	if st.Sold+st.Held > st.Capacity {
		t.Errorf("%d sold + %d held over capacity %d", st.Sold, st.Held, st.Capacity)
	}
	if quotaOf(st, "web").Held != out.webHeld {
		t.Errorf("web quota holds %d, the storefront granted %d", quotaOf(st, "web").Held, out.webHeld)
	}
	for ch, sold := range map[string]int{"ticketmaster": out.tmSold, "eventbrite": out.ebSold} {
		booked := c.count(t, `SELECT coalesce(sum(o.quantity), 0) FROM int_orders o JOIN int_listings l ON l.id = o.listing_id WHERE l.channel = ? AND o.status = 'sold'`, ch)
		if booked != sold {
			t.Errorf("%s: orders recorded as sold %d, quota sold %d", ch, booked, sold)
		}
	}
	if n := c.count(t, `SELECT count(*) FROM inv_counter_shards WHERE held + sold > capacity`); n != 0 {
		t.Errorf("%d shards over capacity", n)
	}
	return out
}

// The storefront and two channels race for the last tickets: no quota and
// not the capacity is passed, each channel sells exactly its quota (their
// side sold more: the excess is recorded as oversells, one per order).
func TestRaceStorefrontAndChannels(t *testing.T) {
	e := startEnv(t)
	c := newChain(t, e, 120, map[string]int{"web": 60, "ticketmaster": 30, "eventbrite": 30})
	apptest.MustStatus(t, c.allocate(t, "ticketmaster", 30), http.StatusOK)
	apptest.MustStatus(t, c.allocate(t, "eventbrite", 30), http.StatusOK)
	r := race(t, e, c, 80, 45, 45)
	if r.webHeld != 60 || r.tmSold != 30 || r.ebSold != 30 {
		t.Fatalf("web held %d, ticketmaster sold %d, eventbrite sold %d; want 60, 30, 30", r.webHeld, r.tmSold, r.ebSold)
	}
	if n := c.count(t, `SELECT coalesce(sum(quantity), 0) FROM int_oversells WHERE detected_by = 'sale'`); n != 30 {
		t.Fatalf("oversold units recorded %d, want 30 (15 per channel)", n)
	}
}

// BenchmarkChannels runs the race of `marquee bench channels`
// (channelsbench: the storefront and both channels for the last 1,000
// tickets) against a test server, and prints its figures. Run:
//
//	go test ./modules/integrations/ -run '^$' -bench BenchmarkChannels -benchtime 1x
func BenchmarkChannels(b *testing.B) {
	e := startEnv(b)
	for i := 0; i < b.N; i++ {
		o := channelsbench.Defaults()
		o.Slug = apptest.UniqueSlug("chbench")
		var out strings.Builder
		rep, err := channelsbench.Run(context.Background(), e.App, e.mod.Service(), e.Server.URL, o, &out, io.Discard)
		if err != nil {
			b.Fatal(err)
		}
		fmt.Print(out.String())
		if !rep.OK() {
			b.Fatalf("violations: %v", rep.Violations)
		}
	}
}
