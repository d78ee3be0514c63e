package inventory_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/modules/inventory"
)

// A hold batch spreads its holds over several shards of a counter (so that
// their payments do not queue on one row). Under 40 buyers holding,
// releasing, letting holds lapse (swept) and paying at once, over a GA pool
// of 400 and a web quota of 300 of it: no shard and no counter ever holds
// more than its capacity (sampled all along), and afterwards every counter's
// held units are exactly its active holds' and its sold units its valid
// tickets.
func TestRaceSpreadShardsHoldReleaseExpirePay(t *testing.T) {
	// Serial: hundreds of requests at once: CPU-bound, and its 40 connections with another test's would crowd PostgreSQL.
	s, ev, cfg := onSale(t, "shardrace", "Shard Race", map[string]any{
		"zones":  []map[string]any{{"name": "Floor", "kind": "ga", "capacity": 400}},
		"tiers":  []map[string]any{{"name": "Floor", "zone": "Floor", "price": 2500, "currency": "EUR", "max_per_order": 10}},
		"quotas": map[string]int{"web": 300, "box_office": 100}, "max_ip_holds": 0, "max_buyer_holds": 50, "max_buyer_tickets": 500,
	})
	tier := tierID(t, cfg, "Floor")
	if n := s.count(t, `SELECT count(*) FROM inv_counter_shards sh JOIN inv_counters c ON c.id = sh.counter_id WHERE c.event_id = ? AND c.kind = 'pool'`, ev); n < 8 {
		t.Fatalf("the pool has %d shards; the test needs several to spread over", n)
	}

	// The sampler: capacity is never passed, by any shard or any counter.
	stop := make(chan struct{})
	var samples atomic.Int64
	var sampler sync.WaitGroup
	sampler.Add(1)
	go func() {
		defer sampler.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			over := s.count(t, `SELECT count(*) FROM inv_counters c
				WHERE c.event_id = ? AND (
					(SELECT sum(held + sold) FROM inv_counter_shards sh WHERE sh.counter_id = c.id) > c.capacity
					OR EXISTS (SELECT 1 FROM inv_counter_shards sh WHERE sh.counter_id = c.id AND (sh.held + sh.sold > sh.capacity OR sh.held < 0 OR sh.sold < 0)))`, ev)
			if over != 0 {
				t.Errorf("%d counters over capacity mid-race", over)
			}
			samples.Add(1)
		}
	}()

	const buyers, rounds = 40, 12
	tokens := make([]string, buyers)
	for i := range tokens {
		tokens[i] = s.buyer(t)
	}
	var granted, refused, paid, released, expired atomic.Int64
	parallel(buyers, func(i int) {
		rng := rand.New(rand.NewPCG(uint64(i), 99))
		for r := 0; r < rounds; r++ {
			qty := 1 + rng.IntN(4)
			res, err := s.hold(ev, tokens[i], map[string]any{"tier_id": tier, "quantity": qty})
			if err != nil {
				t.Error(err)
				return
			}
			switch {
			case res.Status == http.StatusCreated:
				granted.Add(1)
			case res.Status == http.StatusConflict && (res.Code() == "sold_out" || res.Code() == "quota_exceeded"):
				refused.Add(1)
				continue
			default:
				t.Errorf("hold: %d %s", res.Status, res.Body)
				return
			}
			var h inventory.Hold
			if err := json.Unmarshal(res.Body, &h); err != nil {
				t.Error(err)
				return
			}
			switch rng.IntN(4) {
			case 0: // released by its buyer
				rel, err := s.env.Try("DELETE", s.slug, "/api/v1/holds/"+h.ID.String(), "", nil, "X-Buyer-Token", tokens[i])
				if err != nil || rel.Status != http.StatusNoContent {
					t.Errorf("release: %v %d %s", err, rel.Status, rel.Body)
					return
				}
				released.Add(1)
			case 1: // lapses, and a sweep (this buyer's or another's) expires it
				s.dueIn(t, h.ID, 0)
				if _, err := s.inv.SweepHolds(t.Context(), s.t); err != nil {
					t.Error(err)
					return
				}
				expired.Add(1)
			case 2: // paid
				o := s.order(t, tokens[i], h.ID)
				pay := s.webhook(t, fmt.Sprintf("evt_shard_%s", uuid.NewString()), "payment_intent.succeeded", o.Order)
				if pay.Status != http.StatusOK {
					t.Errorf("payment: %d %s", pay.Status, pay.Body)
					return
				}
				paid.Add(1)
			default: // kept active: the buyer's one cart stays held, and the
				// next round is another buyer's (the same buyer's next hold
				// would join this cart)
				tokens[i] = s.buyer(t)
			}
		}
	})
	close(stop)
	sampler.Wait()
	t.Logf("holds granted %d, refused %d; paid %d, released %d, expired %d; %d capacity samples",
		granted.Load(), refused.Load(), paid.Load(), released.Load(), expired.Load(), samples.Load())
	if refused.Load() == 0 || paid.Load() == 0 || released.Load() == 0 || expired.Load() == 0 {
		t.Fatal("the race did not exercise sold-out, payments, releases and expiries all")
	}
	if samples.Load() < 5 {
		t.Fatalf("only %d capacity samples during the race", samples.Load())
	}

	// Lapsed holds a sweep skipped (another sweep had them locked) are
	// expired by now; one more sweep makes sure before counting.
	if _, err := s.inv.SweepHolds(t.Context(), s.t); err != nil {
		t.Fatal(err)
	}

	// Afterwards, counter by counter: held is what active holds took, sold
	// is the valid tickets, and the sum stays within capacity.
	var rows []struct {
		Kind     string
		Channel  *string
		Capacity int64
		ShardCap int64
		Held     int64
		Sold     int64
		Active   int64
		Tickets  int64
	}
	s.sql(t, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT c.kind, c.channel, c.capacity,
				(SELECT sum(capacity) FROM inv_counter_shards WHERE counter_id = c.id) AS shard_cap,
				(SELECT sum(held) FROM inv_counter_shards WHERE counter_id = c.id) AS held,
				(SELECT sum(sold) FROM inv_counter_shards WHERE counter_id = c.id) AS sold,
				(SELECT coalesce(sum(h.quantity), 0) FROM inv_holds h WHERE h.event_id = c.event_id AND h.status = 'active'
					AND (c.kind = 'pool' OR h.channel = c.channel)) AS active,
				(SELECT count(*) FROM inv_tickets k JOIN inv_orders o ON o.id = k.order_id JOIN inv_holds h ON h.id = o.hold_id
					WHERE k.event_id = c.event_id AND k.status = 'valid' AND (c.kind = 'pool' OR h.channel = c.channel)) AS tickets
			FROM inv_counters c WHERE c.event_id = ? ORDER BY c.kind, c.channel`, ev).Scan(&rows).Error
	})
	for _, r := range rows {
		name := r.Kind
		if r.Channel != nil {
			name += " " + *r.Channel
		}
		if r.ShardCap != r.Capacity || r.Held+r.Sold > r.Capacity || r.Held != r.Active || r.Sold != r.Tickets {
			t.Errorf("%s: capacity %d (shards %d), held %d (active holds %d), sold %d (valid tickets %d)",
				name, r.Capacity, r.ShardCap, r.Held, r.Active, r.Sold, r.Tickets)
		}
	}
	// The spreading itself: holds decided in one batch (they share their
	// expires_at, the batch's) took their pool units from several shards.
	var batches []struct {
		Holds  int64
		Shards int64
	}
	s.sql(t, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT count(DISTINCT h.id) AS holds, count(DISTINCT a.shard) AS shards
			FROM inv_hold_allocs a JOIN inv_holds h ON h.id = a.hold_id JOIN inv_counters c ON c.id = a.counter_id
			WHERE c.event_id = ? AND c.kind = 'pool' GROUP BY h.expires_at HAVING count(DISTINCT h.id) > 1`, ev).Scan(&batches).Error
	})
	spread := 0
	for _, b := range batches {
		if b.Shards > 1 {
			spread++
		}
	}
	t.Logf("batches of several holds still holding or sold: %d, spread over several pool shards: %d", len(batches), spread)
	// Each batch locks several shards with room, so nearly every batch of
	// several holds spreads (one that locked a single shard, a sold-out
	// counter's last, may not); with one shard per batch most did not.
	if len(batches) == 0 || spread*4 < len(batches)*3 {
		t.Errorf("%d of %d batches of several holds spread over several pool shards, want three quarters at least", spread, len(batches))
	}
}
