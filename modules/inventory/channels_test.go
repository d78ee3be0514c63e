package inventory_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/app"
)

// Channel sales take from the tier's zone and the channel's quota with the
// storefront's conditional writes: many sales at once on two channels never
// pass either quota nor the zone, a refused sale takes nothing, a return
// gives the units back, and a quota cannot be set below what its channel
// sold (the error names the count).
func TestChannelSalesStayInsideQuotas(t *testing.T) {
	t.Parallel()
	env, inv := startEnv(t)
	s := newShop(t, env, inv, "chan")
	ev := s.event(t, "Channel Night")
	cfg := s.configure(t, ev, map[string]any{
		"zones":  []map[string]any{{"name": "Floor", "kind": "ga", "capacity": 100}},
		"tiers":  []map[string]any{{"name": "Floor", "zone": "Floor", "price": 2500, "currency": "USD"}},
		"quotas": map[string]int{"web": 55, "ticketmaster": 25, "eventbrite": 15}, "max_ip_holds": 0,
	})
	tier := uuid.MustParse(tierID(t, cfg, "Floor"))
	event := uuid.MustParse(ev)
	cs := inv.Service().ChannelSales()
	ctx := context.Background()

	var wg sync.WaitGroup
	var sold [2]atomic.Int64
	for i := 0; i < 60; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			ch, k := "ticketmaster", 0
			if i%2 == 1 {
				ch, k = "eventbrite", 1
			}
			err := env.App.Tx(ctx, s.t, func(tx *gorm.DB) error {
				ok, _, err := cs.SellOnChannel(tx, app.ChannelSale{EventID: event, TierID: tier, Channel: ch, Quantity: 1})
				if ok {
					sold[k].Add(1)
				}
				return err
			})
			if err != nil {
				t.Error(err)
			}
		}(i)
	}
	wg.Wait()
	if sold[0].Load() != 25 || sold[1].Load() != 15 {
		t.Fatalf("sold ticketmaster %d eventbrite %d, want 25 and 15 (each its whole quota, no more)", sold[0].Load(), sold[1].Load())
	}
	st, err := cs.ChannelStock(ctx, s.t, event)
	if err != nil {
		t.Fatal(err)
	}
	if st.Sold != 40 || st.Capacity != 100 {
		t.Fatalf("stock %+v, want 40 sold of 100", st)
	}
	for _, q := range st.Channels {
		if q.Sold > q.Quota {
			t.Errorf("channel %s sold %d over its quota %d", q.Channel, q.Sold, q.Quota)
		}
	}

	// A quota below what the channel sold is refused, naming the count.
	err = cs.SetChannelQuota(ctx, s.t, event, "ticketmaster", 10)
	var ae *app.Error
	if !errors.As(err, &ae) || ae.Code != "quota_below_sold" || ae.Kind != app.KindConflict {
		t.Fatalf("lowering below sold: %v, want 409 quota_below_sold", err)
	}
	if err := cs.SetChannelQuota(ctx, s.t, event, "ticketmaster", 30); err != nil {
		t.Fatal(err)
	}
	// A return gives units back to the zone and the quota.
	if err := env.App.Tx(ctx, s.t, func(tx *gorm.DB) error {
		return cs.ReturnOnChannel(tx, app.ChannelSale{EventID: event, TierID: tier, Channel: "eventbrite", Quantity: 5})
	}); err != nil {
		t.Fatal(err)
	}
	st, _ = cs.ChannelStock(ctx, s.t, event)
	for _, q := range st.Channels {
		want := map[string][2]int{"ticketmaster": {30, 25}, "eventbrite": {15, 10}, "web": {55, 0}}[q.Channel]
		if q.Quota != want[0] || q.Sold != want[1] {
			t.Errorf("channel %s quota %d sold %d, want %v", q.Channel, q.Quota, q.Sold, want)
		}
	}
	if n := s.count(t, `SELECT count(*) FROM inv_counter_shards WHERE held + sold > capacity`); n != 0 {
		t.Fatalf("%d shards over capacity", n)
	}
}
