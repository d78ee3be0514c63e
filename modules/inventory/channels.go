package inventory

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/modules/inventory/internal/catalogue"
	"marquee/modules/inventory/internal/model"
	"marquee/modules/inventory/internal/stock"
	"marquee/tenants"
)

// channelSales sells on outside channels (app.ChannelSales): the units of a
// GA tier's zone and of the channel's quota go straight into sold with the
// storefront's take (stock.TakeUnits: conditional increments under the
// shards' CHECK), pools before quotas as everywhere. The caller's
// transaction records the outside order, so the order and its units commit
// together or not at all.
type channelSales struct{ s *Service }

// ChannelSales returns the inventory's app.ChannelSales.
func (s *Service) ChannelSales() app.ChannelSales { return channelSales{s} }

// channelCounters finds the tier's GA pool and the channel's quota counter.
func channelCounters(tx *gorm.DB, sale app.ChannelSale) (pool, quota uuid.UUID, err error) {
	if sale.Quantity < 1 {
		return pool, quota, model.Invalid("quantity", "a channel sale is at least one ticket")
	}
	if !model.ValidChannel(sale.Channel) || sale.Channel == model.ChannelWeb || sale.Channel == model.ChannelBoxOffice {
		return pool, quota, model.Invalid("channel", "unknown outside channel %q", sale.Channel)
	}
	var rows []struct {
		Pool  *uuid.UUID `gorm:"column:pool"`
		Quota *uuid.UUID `gorm:"column:quota"`
	}
	if err = tx.Raw(`SELECT (SELECT c.id FROM inv_counters c WHERE c.kind = 'pool' AND c.zone_id = t.zone_id) AS pool,
			(SELECT c.id FROM inv_counters c WHERE c.kind = 'quota' AND c.event_id = t.event_id AND c.channel = ?) AS quota
		FROM inv_tiers t WHERE t.id = ? AND t.event_id = ?`, sale.Channel, sale.TierID, sale.EventID).Scan(&rows).Error; err != nil {
		return pool, quota, err
	}
	switch {
	case len(rows) == 0:
		return pool, quota, app.NotFound("tier")
	case rows[0].Pool == nil:
		return pool, quota, app.Conflict("tier_not_ga", "channels sell general-admission tiers only")
	case rows[0].Quota == nil:
		return *rows[0].Pool, quota, nil
	}
	return *rows[0].Pool, *rows[0].Quota, nil
}

// SellOnChannel implements app.ChannelSales.
func (c channelSales) SellOnChannel(tx *gorm.DB, sale app.ChannelSale) (bool, int, error) {
	pool, quota, err := channelCounters(tx, sale)
	if err != nil {
		return false, 0, err
	}
	if quota == uuid.Nil {
		return false, 0, nil // a channel without a quota sells nothing
	}
	// A savepoint: a take that fits the pool but not the quota leaves the
	// caller's transaction as it was.
	if err := tx.Exec(`SAVEPOINT channel_sale`).Error; err != nil {
		return false, 0, err
	}
	undo := func() error { return tx.Exec(`ROLLBACK TO SAVEPOINT channel_sale`).Error }
	if _, ok, _, err := stock.TakeUnits(tx, pool, sale.Quantity, stock.ColSold); err != nil || !ok {
		if err == nil {
			err = undo()
		}
		left, lerr := quotaFree(tx, quota)
		return false, left, firstErr(err, lerr)
	}
	_, ok, left, err := stock.TakeUnits(tx, quota, sale.Quantity, stock.ColSold)
	if err == nil && !ok {
		err = undo()
	}
	if err != nil || !ok {
		return false, left, err
	}
	if err := recordChannelSale(tx, sale, sale.Quantity); err != nil {
		return false, 0, err
	}
	return true, 0, tx.Exec(`RELEASE SAVEPOINT channel_sale`).Error
}

// recordChannelSale appends units sold (or, negative, returned) on a
// channel at its price (the tier's when the sale names none) to what
// SalesByTier sums: the counters know how many, not at what price.
func recordChannelSale(tx *gorm.DB, sale app.ChannelSale, units int) error {
	if sale.PriceMinor < 0 || sale.PriceMinor > 100000000 || (sale.PriceMinor > 0 && len(sale.Currency) != 3) {
		return model.Invalid("price", "a channel price is 0 to 100000000 minor units with its currency")
	}
	return tx.Exec(`INSERT INTO inv_channel_sales (event_id, tier_id, channel, quantity, price_minor, currency)
		SELECT t.event_id, t.id, ?, ?, CASE WHEN ? > 0 THEN ? ELSE t.price_minor END, CASE WHEN ? > 0 THEN ? ELSE t.currency END
		FROM inv_tiers t WHERE t.id = ?`, sale.Channel, units, sale.PriceMinor, sale.PriceMinor, sale.PriceMinor, sale.Currency, sale.TierID).Error
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

func quotaFree(tx *gorm.DB, quota uuid.UUID) (int, error) {
	var n int
	err := tx.Raw(`SELECT coalesce(sum(capacity - held - sold), 0) FROM inv_counter_shards WHERE counter_id = ?`, quota).Row().Scan(&n)
	return n, err
}

// ReturnOnChannel implements app.ChannelSales: sold units back to the
// pool, then the quota, shards locked in order.
func (c channelSales) ReturnOnChannel(tx *gorm.DB, sale app.ChannelSale) error {
	pool, quota, err := channelCounters(tx, sale)
	if err != nil {
		return err
	}
	for _, counter := range []uuid.UUID{pool, quota} {
		if counter == uuid.Nil {
			continue
		}
		var shards []struct {
			Shard int `gorm:"column:shard"`
			Sold  int `gorm:"column:sold"`
		}
		if err := tx.Raw(`SELECT shard, sold FROM inv_counter_shards WHERE counter_id = ? ORDER BY shard FOR UPDATE`, counter).Scan(&shards).Error; err != nil {
			return err
		}
		n := sale.Quantity
		for _, sh := range shards {
			q := min(sh.Sold, n)
			if q == 0 {
				continue
			}
			if err := tx.Exec(`UPDATE inv_counter_shards SET sold = sold - ? WHERE counter_id = ? AND shard = ? AND sold >= ?`, q, counter, sh.Shard, q).Error; err != nil {
				return err
			}
			n -= q
		}
		if n > 0 {
			return app.Conflict("channel_return_exceeds_sold", "the counter sold %d fewer than the %d returned", n, sale.Quantity)
		}
	}
	return recordChannelSale(tx, sale, -sale.Quantity)
}

// StockChanged implements app.ChannelSales.
func (c channelSales) StockChanged(ctx context.Context, t tenants.Tenant, eventID uuid.UUID) {
	c.s.stock.Changed(ctx, t, eventID, nil)
}

// ChannelStock implements app.ChannelSales.
func (c channelSales) ChannelStock(ctx context.Context, t tenants.Tenant, eventID uuid.UUID) (app.ChannelStock, error) {
	out := app.ChannelStock{EventID: eventID, Channels: []app.ChannelQuota{}, Tiers: []app.ChannelTier{}}
	err := c.s.d.Tx(ctx, t, func(tx *gorm.DB) error {
		st, err := catalogue.LoadSettings(tx, eventID)
		if err != nil {
			return err
		}
		out.Capacity = st.Capacity
		if err := tx.Raw(`SELECT
				coalesce((SELECT sum(s.held) FROM inv_counters c JOIN inv_counter_shards s ON s.counter_id = c.id WHERE c.event_id = @e AND c.kind = 'pool'), 0)
				+ (SELECT count(*) FROM inv_seats WHERE event_id = @e AND state = 'held') AS held,
				coalesce((SELECT sum(s.sold) FROM inv_counters c JOIN inv_counter_shards s ON s.counter_id = c.id WHERE c.event_id = @e AND c.kind = 'pool'), 0)
				+ (SELECT count(*) FROM inv_seats WHERE event_id = @e AND state = 'sold') AS sold`,
			map[string]any{"e": eventID}).Row().Scan(&out.Held, &out.Sold); err != nil {
			return err
		}
		if err := tx.Raw(`SELECT t.id, t.name, t.price_minor, t.currency, t.sale_starts, t.sale_ends FROM inv_tiers t JOIN inv_zones z ON z.id = t.zone_id
			WHERE t.event_id = ? AND z.kind = 'ga' ORDER BY t.sort`, eventID).Scan(&out.Tiers).Error; err != nil {
			return err
		}
		return tx.Raw(`SELECT c.channel, c.capacity AS quota, coalesce(sum(s.held), 0) AS held, coalesce(sum(s.sold), 0) AS sold
			FROM inv_counters c LEFT JOIN inv_counter_shards s ON s.counter_id = c.id
			WHERE c.event_id = ? AND c.kind = 'quota' GROUP BY c.id ORDER BY c.channel`, eventID).Scan(&out.Channels).Error
	})
	return out, err
}

// SetChannelQuota implements app.ChannelSales.
func (c channelSales) SetChannelQuota(ctx context.Context, t tenants.Tenant, eventID uuid.UUID, channel string, quota int) error {
	if !model.ValidChannel(channel) {
		return model.Invalid("channel", "unknown channel %q", channel)
	}
	if quota < 0 || quota > 1000000 {
		return model.Invalid("quotas", "a quota is from 0 to 1000000")
	}
	err := c.s.d.Tx(ctx, t, func(tx *gorm.DB) error {
		if _, err := catalogue.LoadSettings(tx, eventID); err != nil {
			return err
		}
		var ids []uuid.UUID
		if err := tx.Raw(`SELECT id FROM inv_counters WHERE event_id = ? AND kind = 'quota' AND channel = ? FOR UPDATE`, eventID, channel).Scan(&ids).Error; err != nil {
			return err
		}
		if len(ids) == 0 {
			ch := channel
			return stock.CreateCounter(tx, eventID, "quota", nil, &ch, quota)
		}
		return stock.ResizeCounter(tx, ids[0], quota, fmt.Sprintf("the %s channel", channel))
	})
	if err == nil {
		// No QuotasChanged: the caller is the channel's own module,
		// which pushes the figure itself.
		c.s.stock.Changed(ctx, t, eventID, nil)
	}
	return err
}
