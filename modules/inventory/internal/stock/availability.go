package stock

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"gorm.io/gorm"

	"marquee/modules/inventory/internal/deps"
	"marquee/modules/inventory/internal/model"
	"marquee/tenants"
)

// Service keeps the availability readers see: the cache and live updates.
type Service struct {
	d *deps.Deps
}

// New returns the stock service.
func New(d *deps.Deps) *Service { return &Service{d: d} }

// Availability is what a buyer can still get for an event.
type Availability struct {
	EventID uuid.UUID          `json:"event_id"`
	Tiers   []TierAvailability `json:"tiers"`
	Seats   []model.SeatState  `json:"seats"`
	AsOf    time.Time          `json:"as_of"`
}

// TierAvailability is one tier with how many tickets it can still sell on
// the web channel.
type TierAvailability struct {
	ID          uuid.UUID `json:"id"`
	Name        string    `json:"name"`
	Zone        string    `json:"zone"`
	ZoneKind    string    `json:"zone_kind"`
	Price       int64     `json:"price"` // all-in: every mandatory fee included
	Fee         int64     `json:"fee"`   // the fees included in Price
	Currency    string    `json:"currency"`
	Available   int       `json:"available"`
	MaxPerOrder int       `json:"max_per_order"`
	OnSale      bool      `json:"on_sale"`
}

// BitmapAvailability is the compact form: two bits per seat in map order
// (00 available, 01 held, 10 sold), base64, next to the tiers.
type BitmapAvailability struct {
	EventID   uuid.UUID          `json:"event_id"`
	Tiers     []TierAvailability `json:"tiers"`
	SeatCount int                `json:"seat_count"`
	Bitmap    string             `json:"bitmap"`
	Encoding  string             `json:"encoding"`
	AsOf      time.Time          `json:"as_of"`
}

// The availability cache. Every change bumps the event's version key
// (INCR) after its transaction commits, and readers look entries up under
// the version they read *before* reading the database. So:
//   - a reader that filled its entry from a snapshot older than a change
//     stored it under the old version, which no reader asks for once the
//     change's bump has happened: stale data is never served after the bump;
//   - between a commit and its bump (one Redis round trip) the old entry can
//     still be served; if the bump is lost (Redis down) entries die with
//     their short TTL. Either way the page may show a seat free that was
//     just taken for that instant, and the hold attempt is refused by the
//     database; a seat never shows as free for longer than cacheTTL.
//
// A seat's state can only be shown as taken when it is free again in the
// same bounded way (the change of release/expiry bumps the version too).
const cacheTTL = 10 * time.Second

func (s *Service) versionKey(t tenants.Tenant, eventID uuid.UUID) string {
	return s.d.App.RedisKey("inv", "avail-version", t.Slug, eventID.String())
}

func (s *Service) entryKey(t tenants.Tenant, eventID uuid.UUID, version, format string) string {
	return s.d.App.RedisKey("inv", "avail", t.Slug, eventID.String(), version, format)
}

// Topic is the realtime topic of an event's live availability.
func Topic(eventID uuid.UUID) string { return "inv:" + eventID.String() }

// Changed runs after a commit that changed an event's availability: bump
// the cache version, then tell open seat maps.
func (s *Service) Changed(ctx context.Context, t tenants.Tenant, eventID uuid.UUID, seats []model.SeatState) {
	ctx = context.WithoutCancel(ctx)
	if seats == nil {
		seats = []model.SeatState{}
	}
	// One round trip: the version bump, then the live update.
	pipe := s.d.App.Redis.Pipeline()
	pipe.Incr(ctx, s.versionKey(t, eventID))
	pipe.Expire(ctx, s.versionKey(t, eventID), 24*time.Hour)
	if err := s.d.App.Realtime.PublishIn(ctx, pipe, t, Topic(eventID), "availability", map[string]any{"seats": seats}); err != nil {
		s.d.App.Log.Warn("live availability not published", "tenant", t.Slug, "event", eventID, "err", err)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		s.d.App.Log.Warn("availability cache not invalidated nor live update sent; entries expire on their own", "tenant", t.Slug, "event", eventID, "err", err)
	}
}

// AvailabilityJSON returns the event's availability document, from the
// cache when it holds the current version.
func (s *Service) AvailabilityJSON(ctx context.Context, t tenants.Tenant, eventID uuid.UUID, bitmap bool) ([]byte, error) {
	format := "full"
	if bitmap {
		format = "bitmap"
	}
	version, err := s.d.App.Redis.Get(ctx, s.versionKey(t, eventID)).Result()
	cacheUp := err == nil || err == redis.Nil
	if err == redis.Nil {
		version = "0"
	}
	if cacheUp {
		if raw, err := s.d.App.Redis.Get(ctx, s.entryKey(t, eventID, version, format)).Bytes(); err == nil {
			return raw, nil
		}
	}
	av, err := s.Availability(ctx, t, eventID)
	if err != nil {
		return nil, err
	}
	var raw []byte
	if bitmap {
		raw, err = json.Marshal(av.bitmap())
	} else {
		raw, err = json.Marshal(av)
	}
	if err != nil {
		return nil, err
	}
	if cacheUp {
		s.d.App.Redis.Set(ctx, s.entryKey(t, eventID, version, format), raw, cacheTTL)
	}
	return raw, nil
}

func (a Availability) bitmap() BitmapAvailability {
	bits := make([]byte, (len(a.Seats)*2+7)/8)
	for i, st := range a.Seats {
		var v byte
		switch st.State {
		case model.SeatHeld:
			v = 1
		case model.SeatSold:
			v = 2
		}
		bits[i/4] |= v << (6 - 2*(i%4))
	}
	return BitmapAvailability{EventID: a.EventID, Tiers: a.Tiers, SeatCount: len(a.Seats),
		Bitmap: base64.StdEncoding.EncodeToString(bits), Encoding: "2 bits per seat in seat map order, high bits first: 0 available, 1 held, 2 sold", AsOf: a.AsOf}
}

// Availability reads the event's availability from the database.
func (s *Service) Availability(ctx context.Context, t tenants.Tenant, eventID uuid.UUID) (Availability, error) {
	av := Availability{EventID: eventID, Tiers: []TierAvailability{}, Seats: []model.SeatState{}}
	err := s.d.Tx(ctx, t, func(tx *gorm.DB) error {
		if err := configured(tx, eventID); err != nil {
			return err
		}
		if err := tx.Raw(`SELECT now()`).Row().Scan(&av.AsOf); err != nil {
			return err
		}
		var err error
		av.Tiers, err = tierAvailability(tx, eventID, s.d.Now())
		if err != nil {
			return err
		}
		return tx.Raw(`SELECT id, state FROM inv_seats WHERE event_id = ? ORDER BY ord`, eventID).Scan(&av.Seats).Error
	})
	return av, err
}

func tierAvailability(tx *gorm.DB, eventID uuid.UUID, now time.Time) ([]TierAvailability, error) {
	var rows []struct {
		ID          uuid.UUID  `gorm:"column:id"`
		Name        string     `gorm:"column:name"`
		PriceMinor  int64      `gorm:"column:price_minor"`
		FeeMinor    int64      `gorm:"column:fee_minor"`
		Currency    string     `gorm:"column:currency"`
		SaleStarts  *time.Time `gorm:"column:sale_starts"`
		SaleEnds    *time.Time `gorm:"column:sale_ends"`
		MaxPerOrder int        `gorm:"column:max_per_order"`
		ZoneKind    string     `gorm:"column:zone_kind"`
		ZoneName    string     `gorm:"column:zone_name"`
		Free        int        `gorm:"column:free"`
	}
	if err := tx.Raw(`SELECT t.id, t.zone_id, t.name, t.price_minor + t.fee_minor AS price_minor, t.fee_minor, t.currency, t.sale_starts, t.sale_ends, t.max_per_order, t.sort,
			z.kind AS zone_kind, z.name AS zone_name,
			CASE WHEN z.kind = 'ga' THEN
				(SELECT coalesce(sum(s.capacity - s.held - s.sold), 0) FROM inv_counters c JOIN inv_counter_shards s ON s.counter_id = c.id
				 WHERE c.zone_id = z.id AND c.kind = 'pool')
			ELSE (SELECT count(*) FROM inv_seats st WHERE st.event_id = t.event_id AND st.zone_id = z.id AND st.state = 'available')
			END AS free
		FROM inv_tiers t JOIN inv_zones z ON z.id = t.zone_id WHERE t.event_id = ? ORDER BY t.sort`, eventID).Scan(&rows).Error; err != nil {
		return nil, err
	}
	var quota []struct {
		Free int `gorm:"column:free"`
	}
	if err := tx.Raw(`SELECT coalesce(sum(s.capacity - s.held - s.sold), 0) AS free FROM inv_counters c JOIN inv_counter_shards s ON s.counter_id = c.id
		WHERE c.event_id = ? AND c.kind = 'quota' AND c.channel = 'web' GROUP BY c.id`, eventID).Scan(&quota).Error; err != nil {
		return nil, err
	}
	out := make([]TierAvailability, 0, len(rows))
	for _, r := range rows {
		free := r.Free
		if len(quota) == 1 {
			free = min(free, quota[0].Free)
		}
		out = append(out, TierAvailability{ID: r.ID, Name: r.Name, Zone: r.ZoneName, ZoneKind: r.ZoneKind, Price: r.PriceMinor, Fee: r.FeeMinor,
			Currency: r.Currency, Available: free, MaxPerOrder: r.MaxPerOrder, OnSale: model.Tier{SaleStarts: r.SaleStarts, SaleEnds: r.SaleEnds}.OnSale(now)})
	}
	return out, nil
}

// configured refuses an event without inventory (no_inventory).
func configured(tx *gorm.DB, eventID uuid.UUID) error {
	var n int64
	if err := tx.Raw(`SELECT count(*) FROM inv_events WHERE event_id = ?`, eventID).Row().Scan(&n); err != nil {
		return err
	}
	if n == 0 {
		return model.ErrNoInventory()
	}
	return nil
}
