package search

import (
	"context"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/tenants"
)

// Trending ranks events by tickets sold in the last 24 hours. Each chain has
// one Redis sorted set per hour (event → tickets), incremented on every
// paid order; the ranking is the union of the last 24. Redis is only an
// accelerator: when the chain's marker is missing (Redis lost or flushed,
// or a day has passed) the sets are rebuilt from the tickets in the database.

const trendHours = 24

// A chain's trending keys share a hash tag ("<deployment>:srch:trend:{<tenant>}:…"):
// the ranking unions its 24 hourly sets in one command and the rebuild
// writes them with the marker in one transaction, which a Redis Cluster
// allows only within one slot. (They were "…:trend:<tenant>:…" before; the
// marker was renamed with them, so after the deploy the first ranking finds
// it missing and rebuilds from the database: nothing is lost.)
func trendTag(t tenants.Tenant) string { return "{" + t.Slug + "}" }

func (s *Service) hourKey(t tenants.Tenant, hour int64) string {
	return s.app.RedisKey("srch", "trend", trendTag(t), strconv.FormatInt(hour, 10))
}

func (s *Service) builtKey(t tenants.Tenant) string {
	return s.app.RedisKey("srch", "trend", trendTag(t), "built")
}
func (s *Service) dirtyKey(t tenants.Tenant) string { return s.app.RedisKey("srch", "dirty", t.Slug) }

func hourOf(at time.Time) int64 { return at.UTC().Unix() / 3600 }

// RecordSale counts a paid order in its hour and marks the event's document
// for a refresh (availability moved).
func (s *Service) RecordSale(ctx context.Context, t tenants.Tenant, sale app.TicketSale) {
	if sale.Quantity <= 0 {
		return
	}
	ctx = context.WithoutCancel(ctx)
	k := s.hourKey(t, hourOf(sale.At))
	pipe := s.app.Redis.Pipeline()
	pipe.ZIncrBy(ctx, k, float64(sale.Quantity), sale.EventID.String())
	pipe.Expire(ctx, k, (trendHours+2)*time.Hour)
	pipe.SAdd(ctx, s.dirtyKey(t), sale.EventID.String())
	if _, err := pipe.Exec(ctx); err != nil {
		s.app.Log.Warn("search: sale not counted in trending; the next rebuild recounts it", "tenant", t.Slug, "event", sale.EventID, "err", err)
	}
}

// TrendingItem is an event with its tickets sold in the last 24 hours.
type TrendingItem struct {
	Hit
	Sold24h int `json:"sold_24h"`
}

// Trending returns the top events by sales in the last 24 hours that
// buyers can still find.
func (s *Service) Trending(ctx context.Context, t tenants.Tenant, limit int) ([]TrendingItem, error) {
	if err := s.ensureTrending(ctx, t); err != nil {
		return nil, err
	}
	now := hourOf(time.Now())
	keys := make([]string, 0, trendHours)
	for h := now - trendHours + 1; h <= now; h++ {
		keys = append(keys, s.hourKey(t, h))
	}
	// A few more than asked: some may have started or stopped selling.
	zs, err := s.app.Redis.ZUnionWithScores(ctx, redis.ZStore{Keys: keys, Aggregate: "SUM"}).Result()
	if err != nil {
		return nil, err
	}
	sortByScore(zs)
	ids := make([]uuid.UUID, 0, len(zs))
	sold := map[uuid.UUID]int{}
	for _, z := range zs {
		id, err := uuid.Parse(z.Member.(string))
		if err != nil || z.Score <= 0 {
			continue
		}
		ids = append(ids, id)
		sold[id] = int(z.Score)
		if len(ids) >= limit*3 {
			break
		}
	}
	out := []TrendingItem{}
	if len(ids) == 0 {
		return out, nil
	}
	hits, err := s.docs(ctx, t, ids)
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		if h, ok := hits[id]; ok {
			decorate(&h, nil)
			out = append(out, TrendingItem{Hit: h, Sold24h: sold[id]})
			if len(out) == limit {
				break
			}
		}
	}
	return out, nil
}

func sortByScore(zs []redis.Z) {
	// Highest first; ties by id so the order is stable.
	for i := 1; i < len(zs); i++ {
		for j := i; j > 0; j-- {
			a, b := zs[j-1], zs[j]
			if a.Score > b.Score || (a.Score == b.Score && a.Member.(string) < b.Member.(string)) {
				break
			}
			zs[j-1], zs[j] = b, a
		}
	}
}

// docs reads the documents of events buyers can find, by id.
func (s *Service) docs(ctx context.Context, t tenants.Tenant, ids []uuid.UUID) (map[uuid.UUID]Hit, error) {
	var rows []struct {
		EventID   uuid.UUID `gorm:"column:event_id"`
		VenueID   uuid.UUID `gorm:"column:venue_id"`
		Title     string    `gorm:"column:title"`
		Artist    string    `gorm:"column:artist"`
		VenueName string    `gorm:"column:venue_name"`
		Category  string    `gorm:"column:category"`
		Status    string    `gorm:"column:status"`
		StartsAt  time.Time `gorm:"column:starts_at"`
		Timezone  string    `gorm:"column:timezone"`
		MinPrice  *int64    `gorm:"column:min_price"`
		MaxPrice  *int64    `gorm:"column:max_price"`
		RangeMin  *int64    `gorm:"column:range_min"`
		RangeMax  *int64    `gorm:"column:range_max"`
		Currency  *string   `gorm:"column:currency"`
		Available int       `gorm:"column:available"`
		Dynamic   bool      `gorm:"column:dynamic"`
	}
	err := s.app.TxWith(ctx, t, tenants.TxOptions{ReadOnly: true}, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT event_id, venue_id, title, artist, venue_name, category, status, starts_at, timezone, min_price, max_price, range_min, range_max, currency, available, dynamic
			FROM srch_documents WHERE event_id IN ? AND starts_at > now() AND status IN ?`, ids, public).Scan(&rows).Error
	})
	out := make(map[uuid.UUID]Hit, len(rows))
	for _, r := range rows {
		h := Hit{EventID: r.EventID, VenueID: r.VenueID, Title: r.Title, Artist: r.Artist, VenueName: r.VenueName, Category: r.Category,
			Status: r.Status, StartsAt: r.StartsAt, Timezone: r.Timezone, MinPrice: r.MinPrice, MaxPrice: r.MaxPrice, RangeMin: r.RangeMin, RangeMax: r.RangeMax,
			Available: r.Available, Dynamic: r.Dynamic}
		if r.Currency != nil {
			h.Currency = *r.Currency
		}
		out[r.EventID] = h
	}
	return out, err
}

// ensureTrending rebuilds the chain's hourly sets from the database when
// its marker is missing. One instance rebuilds at a time (a short lock);
// the others answer from what is there meanwhile.
func (s *Service) ensureTrending(ctx context.Context, t tenants.Tenant) error {
	n, err := s.app.Redis.Exists(ctx, s.builtKey(t)).Result()
	if err != nil || n == 1 {
		return err
	}
	return s.RebuildTrending(ctx, t)
}

// RebuildTrending recounts the last 24 hours' sales per event and hour from
// the seller's tickets into the hourly sets, and marks the chain rebuilt
// for a day.
func (s *Service) RebuildTrending(ctx context.Context, t tenants.Tenant) error {
	lock := s.app.RedisKey("srch", "trend", trendTag(t), "rebuilding")
	ok, err := s.app.Redis.SetNX(ctx, lock, "1", 30*time.Second).Result()
	if err != nil || !ok {
		return err
	}
	defer s.app.Redis.Del(context.WithoutCancel(ctx), lock)
	o := s.app.Offers()
	if o == nil {
		return nil
	}
	now := time.Now()
	first := hourOf(now) - trendHours + 1
	sales, err := o.SalesByHour(ctx, t, time.Unix(first*3600, 0))
	if err != nil {
		return err
	}
	pipe := s.app.Redis.TxPipeline()
	for h := first; h <= hourOf(now); h++ {
		pipe.Del(ctx, s.hourKey(t, h))
	}
	for _, sl := range sales {
		k := s.hourKey(t, hourOf(sl.Hour))
		pipe.ZIncrBy(ctx, k, float64(sl.Tickets), sl.EventID.String())
		pipe.Expire(ctx, k, (trendHours+2)*time.Hour)
	}
	pipe.Set(ctx, s.builtKey(t), now.UTC().Format(time.RFC3339), trendHours*time.Hour)
	_, err = pipe.Exec(ctx)
	return err
}

// RefreshDirty refreshes the documents of events that sold since the last
// round (their availability moved).
func (s *Service) RefreshDirty(ctx context.Context, t tenants.Tenant) (int, error) {
	members, err := s.app.Redis.SPopN(ctx, s.dirtyKey(t), 1000).Result()
	if err != nil {
		return 0, err
	}
	ids := make([]uuid.UUID, 0, len(members))
	for _, m := range members {
		if id, err := uuid.Parse(m); err == nil {
			ids = append(ids, id)
		}
	}
	return len(ids), s.Refresh(ctx, t, ids)
}
