// Package catalogue is what an event sells and on what terms: its zones,
// seat map (layout), tiers, channel quotas and settings; validating and
// writing a whole Setup; the staff's inventory view; the public catalogue;
// and the calendar's facts about events, briefly cached.
package catalogue

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/modules/inventory/internal/deps"
	"marquee/modules/inventory/internal/model"
	"marquee/modules/inventory/internal/stock"
	"marquee/tenants"
)

// Service configures events and answers what they sell.
type Service struct {
	d      *deps.Deps
	stock  *stock.Service
	events sync.Map // tenant/event -> cachedEvent
}

// New returns the catalogue service.
func New(d *deps.Deps, st *stock.Service) *Service { return &Service{d: d, stock: st} }

type cachedEvent struct {
	info app.EventInfo
	at   time.Time
}

// eventCacheTTL bounds how long an event's calendar facts (status, venue)
// are reused by the hold path. Inventory rows stay the authority on what
// can be sold; this only spares a calendar read per request.
const eventCacheTTL = 2 * time.Second

// ForgetEvent drops an event's cached facts (its status changed).
func (s *Service) ForgetEvent(t tenants.Tenant, eventID uuid.UUID) {
	s.events.Delete(deps.EventKey(t, eventID))
}

// Event returns the calendar's facts about an event, through the core's
// event directory (never the calendar's tables), briefly cached.
func (s *Service) Event(ctx context.Context, t tenants.Tenant, id uuid.UUID) (app.EventInfo, error) {
	if v, ok := s.events.Load(deps.EventKey(t, id)); ok {
		ce := v.(cachedEvent)
		if time.Since(ce.at) < eventCacheTTL {
			return ce.info, nil
		}
	}
	return s.freshEvent(ctx, t, id)
}

func (s *Service) freshEvent(ctx context.Context, t tenants.Tenant, id uuid.UUID) (app.EventInfo, error) {
	dir := s.d.App.Events()
	if dir == nil {
		return app.EventInfo{}, app.Unavailable("events_unavailable", 0, "no module provides events; inventory cannot look them up")
	}
	ev, err := dir.Event(ctx, t, id)
	if err != nil {
		var e *app.Error
		if errors.As(err, &e) && e.Kind == app.KindNotFound {
			return app.EventInfo{}, app.NotFound("event")
		}
		return app.EventInfo{}, err
	}
	s.events.Store(deps.EventKey(t, id), cachedEvent{info: ev, at: time.Now()})
	return ev, nil
}

// Setup is an event's whole inventory configuration.
type Setup struct {
	Capacity        *int           `json:"capacity"`
	HoldMinutes     *int           `json:"hold_minutes"`
	MaxBuyerHolds   *int           `json:"max_buyer_holds"`
	MaxBuyerTickets *int           `json:"max_buyer_tickets"`
	MaxIPHolds      *int           `json:"max_ip_holds"`
	Zones           []ZoneInput    `json:"zones"`
	Tiers           []TierInput    `json:"tiers"`
	Quotas          map[string]int `json:"quotas"`
	Layout          *Layout        `json:"layout"`
}

// ZoneInput declares a zone.
type ZoneInput struct {
	Name     string `json:"name"`
	Kind     string `json:"kind"`
	Capacity int    `json:"capacity"`
}

// TierInput declares a tier in a zone named by Zone.
type TierInput struct {
	Name        string     `json:"name"`
	Zone        string     `json:"zone"`
	Price       int64      `json:"price"` // the face price, before fees
	Fee         int64      `json:"fee"`   // mandatory fees per ticket, shown inside the all-in price
	Currency    string     `json:"currency"`
	SaleStarts  *time.Time `json:"sale_starts"`
	SaleEnds    *time.Time `json:"sale_ends"`
	MaxPerOrder int        `json:"max_per_order"`
}

// SettingsPatch changes hold duration and limits; nil fields stay.
type SettingsPatch struct {
	HoldMinutes     *int `json:"hold_minutes"`
	MaxBuyerHolds   *int `json:"max_buyer_holds"`
	MaxBuyerTickets *int `json:"max_buyer_tickets"`
	MaxIPHolds      *int `json:"max_ip_holds"`
}

func checkRange(field string, v *int, lo, hi int) error {
	if v != nil && (*v < lo || *v > hi) {
		return model.Invalid(field, "%s must be from %d to %d", field, lo, hi)
	}
	return nil
}

func (p SettingsPatch) validate() error {
	return errors.Join(
		checkRange("hold_minutes", p.HoldMinutes, 1, 120),
		checkRange("max_buyer_holds", p.MaxBuyerHolds, 1, 1000),
		checkRange("max_buyer_tickets", p.MaxBuyerTickets, 1, 100000),
		checkRange("max_ip_holds", p.MaxIPHolds, 0, 1000000),
	)
}

func firstErr(err error) error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		if es := j.Unwrap(); len(es) > 0 {
			return es[0]
		}
	}
	return err
}

var (
	nameOK = func(s string) bool {
		return len(strings.TrimSpace(s)) >= 1 && len(s) <= 80 && s == strings.TrimSpace(s)
	}
	currencyOK = func(s string) bool {
		if len(s) != 3 {
			return false
		}
		for _, r := range s {
			if r < 'A' || r > 'Z' {
				return false
			}
		}
		return true
	}
)

// plan is a validated Setup, ready to write.
type plan struct {
	settings model.Settings
	zones    []model.Zone
	tiers    []model.Tier
	quotas   map[string]int
	seats    []SeatRow
}

func (in Setup) plan(ev app.EventInfo) (plan, error) {
	p := plan{settings: model.Settings{EventID: ev.ID, VenueID: ev.VenueID, Capacity: ev.VenueCapacity, HoldMinutes: 10,
		MaxBuyerHolds: 3, MaxBuyerTickets: 10, MaxIPHolds: 50}, quotas: map[string]int{}}
	if err := firstErr(errors.Join(
		checkRange("capacity", in.Capacity, 0, 1000000),
		SettingsPatch{in.HoldMinutes, in.MaxBuyerHolds, in.MaxBuyerTickets, in.MaxIPHolds}.validate(),
	)); err != nil {
		return p, err
	}
	set := func(dst *int, v *int) {
		if v != nil {
			*dst = *v
		}
	}
	set(&p.settings.Capacity, in.Capacity)
	set(&p.settings.HoldMinutes, in.HoldMinutes)
	set(&p.settings.MaxBuyerHolds, in.MaxBuyerHolds)
	set(&p.settings.MaxBuyerTickets, in.MaxBuyerTickets)
	set(&p.settings.MaxIPHolds, in.MaxIPHolds)
	if len(in.Zones) == 0 || len(in.Zones) > 50 {
		return p, model.Invalid("zones", "an event needs 1 to 50 zones")
	}
	byName := map[string]*model.Zone{}
	for i, z := range in.Zones {
		if !nameOK(z.Name) {
			return p, model.Invalid("zones", "zone %d: name must be 1 to 80 characters", i+1)
		}
		if z.Kind != model.KindGA && z.Kind != model.KindReserved {
			return p, model.Invalid("zones", "zone %q: kind must be ga or reserved", z.Name)
		}
		if z.Capacity < 0 || z.Capacity > 1000000 {
			return p, model.Invalid("zones", "zone %q: capacity must be from 0 to 1000000", z.Name)
		}
		if _, dup := byName[strings.ToLower(z.Name)]; dup {
			return p, model.Invalid("zones", "zone %q is declared twice", z.Name)
		}
		p.zones = append(p.zones, model.Zone{ID: uuid.Must(uuid.NewV7()), Name: z.Name, Kind: z.Kind, Capacity: z.Capacity, Sort: i})
		byName[strings.ToLower(z.Name)] = &p.zones[len(p.zones)-1]
	}
	// Re-point the map at the final slice (append may have moved it).
	for i := range p.zones {
		byName[strings.ToLower(p.zones[i].Name)] = &p.zones[i]
	}
	if in.Layout != nil {
		seats, err := in.Layout.seats(byName)
		if err != nil {
			return p, err
		}
		p.seats = seats
	}
	perZone := map[uuid.UUID]int{}
	for _, s := range p.seats {
		perZone[s.ZoneID]++
	}
	for i := range p.zones {
		z := &p.zones[i]
		if z.Kind != model.KindReserved {
			continue
		}
		n := perZone[z.ID]
		if z.Capacity == 0 {
			z.Capacity = n
		}
		if z.Capacity != n {
			return p, model.Invalid("zones", "reserved zone %q declares capacity %d but its seat map has %d seats", z.Name, z.Capacity, n)
		}
	}
	// The event's capacity is what its zones can sell, unless set lower;
	// never above the venue's licensed capacity.
	total := 0
	for _, z := range p.zones {
		total += z.Capacity
	}
	if in.Capacity == nil {
		p.settings.Capacity = total
	}
	if ev.VenueCapacity > 0 && p.settings.Capacity > ev.VenueCapacity {
		return p, model.Invalid("capacity", "capacity %d exceeds the venue's licensed capacity %d", p.settings.Capacity, ev.VenueCapacity)
	}
	if len(in.Tiers) == 0 || len(in.Tiers) > 100 {
		return p, model.Invalid("tiers", "an event needs 1 to 100 tiers")
	}
	tierNames := map[string]bool{}
	for i, ti := range in.Tiers {
		z, ok := byName[strings.ToLower(ti.Zone)]
		switch {
		case !nameOK(ti.Name):
			return p, model.Invalid("tiers", "tier %d: name must be 1 to 80 characters", i+1)
		case tierNames[strings.ToLower(ti.Name)]:
			return p, model.Invalid("tiers", "tier %q is declared twice", ti.Name)
		case !ok:
			return p, model.Invalid("tiers", "tier %q: no zone named %q", ti.Name, ti.Zone)
		case ti.Price < 0 || ti.Price > 100_000_000:
			return p, model.Invalid("tiers", "tier %q: price must be from 0 to 100000000 minor units", ti.Name)
		case ti.Fee < 0 || ti.Fee > 100_000_000:
			return p, model.Invalid("tiers", "tier %q: fee must be from 0 to 100000000 minor units", ti.Name)
		case !currencyOK(ti.Currency):
			return p, model.Invalid("tiers", "tier %q: currency must be an ISO 4217 code such as EUR", ti.Name)
		case ti.SaleStarts != nil && ti.SaleEnds != nil && !ti.SaleEnds.After(*ti.SaleStarts):
			return p, model.Invalid("tiers", "tier %q: sale_ends must be after sale_starts", ti.Name)
		case ti.MaxPerOrder < 0 || ti.MaxPerOrder > 100:
			return p, model.Invalid("tiers", "tier %q: max_per_order must be from 1 to 100", ti.Name)
		}
		tierNames[strings.ToLower(ti.Name)] = true
		max := ti.MaxPerOrder
		if max == 0 {
			max = 8
		}
		p.tiers = append(p.tiers, model.Tier{ID: uuid.Must(uuid.NewV7()), ZoneID: z.ID, Name: ti.Name, PriceMinor: ti.Price, FeeMinor: ti.Fee,
			Currency: ti.Currency, SaleStarts: ti.SaleStarts, SaleEnds: ti.SaleEnds, MaxPerOrder: max, Sort: i})
	}
	for ch, q := range in.Quotas {
		if !model.ValidChannel(ch) {
			return p, model.Invalid("quotas", "unknown channel %q (web, box_office, ticketmaster, eventbrite)", ch)
		}
		if q < 0 || q > 1000000 {
			return p, model.Invalid("quotas", "quota of %s must be from 0 to 1000000", ch)
		}
		p.quotas[ch] = q
	}
	return p, nil
}

// Configure replaces an event's whole inventory. Once anything was held or
// sold it amends it instead, keeping every ticket as sold and refusing (in
// words) what would change one (see amend).
func (s *Service) Configure(ctx context.Context, t tenants.Tenant, ev app.EventInfo, in Setup) error {
	p, err := in.plan(ev)
	if err != nil {
		return err
	}
	err = s.d.Tx(ctx, t, func(tx *gorm.DB) error {
		// Every hold takes row locks on the seats or pool shards it sells
		// before it commits. Locking all of them first means a hold in
		// flight either commits before the count below (and is counted) or
		// finds its rows gone afterwards (and sells nothing).
		if err := tx.Exec(`SELECT 1 FROM inv_seats WHERE event_id = ? ORDER BY id FOR UPDATE`, ev.ID).Error; err != nil {
			return err
		}
		if err := tx.Exec(`SELECT 1 FROM inv_counter_shards s JOIN inv_counters c ON c.id = s.counter_id
			WHERE c.event_id = ? ORDER BY c.kind, c.id, s.shard FOR UPDATE OF s`, ev.ID).Error; err != nil {
			return err
		}
		var used int64
		if err := tx.Raw(`SELECT count(*) FROM inv_holds WHERE event_id = ?`, ev.ID).Row().Scan(&used); err != nil {
			return err
		}
		if used > 0 {
			return amend(tx, ev.ID, p, in.Layout, s.d.Now())
		}
		layoutJSON, err := layoutText(in.Layout)
		if err != nil {
			return err
		}
		if err := tx.Exec(`DELETE FROM inv_events WHERE event_id = ?`, ev.ID).Error; err != nil {
			return err
		}
		st := p.settings
		if err := tx.Exec(`INSERT INTO inv_events (event_id, venue_id, capacity, hold_minutes, max_buyer_holds, max_buyer_tickets, max_ip_holds, layout)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?::jsonb)`, st.EventID, st.VenueID, st.Capacity, st.HoldMinutes, st.MaxBuyerHolds, st.MaxBuyerTickets, st.MaxIPHolds, layoutJSON).Error; err != nil {
			return err
		}
		for _, z := range p.zones {
			if err := tx.Exec(`INSERT INTO inv_zones (id, event_id, name, kind, capacity, sort) VALUES (?, ?, ?, ?, ?, ?)`,
				z.ID, ev.ID, z.Name, z.Kind, z.Capacity, z.Sort).Error; err != nil {
				return err
			}
			if z.Kind == model.KindGA {
				if err := stock.CreateCounter(tx, ev.ID, "pool", &z.ID, nil, z.Capacity); err != nil {
					return err
				}
			}
		}
		if err := insertSeats(tx, ev.ID, p.seats); err != nil {
			return err
		}
		for _, ti := range p.tiers {
			if err := tx.Exec(`INSERT INTO inv_tiers (id, event_id, zone_id, name, price_minor, fee_minor, currency, sale_starts, sale_ends, max_per_order, sort)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, ti.ID, ev.ID, ti.ZoneID, ti.Name, ti.PriceMinor, ti.FeeMinor, ti.Currency,
				ti.SaleStarts, ti.SaleEnds, ti.MaxPerOrder, ti.Sort).Error; err != nil {
				return err
			}
		}
		for _, ch := range model.Channels {
			if q, ok := p.quotas[ch]; ok {
				c := ch
				if err := stock.CreateCounter(tx, ev.ID, "quota", nil, &c, q); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err == nil {
		s.stock.Changed(ctx, t, ev.ID, nil)
	}
	return err
}

// SetQuotas sets the channel quotas of an event: listed channels get the
// given quota, unlisted ones none. A quota can never fall below what its
// channel already holds or sold; the database refuses quotas whose sum
// exceeds the event's capacity.
func (s *Service) SetQuotas(ctx context.Context, t tenants.Tenant, eventID uuid.UUID, quotas map[string]int) error {
	for ch, q := range quotas {
		if !model.ValidChannel(ch) {
			return model.Invalid("quotas", "unknown channel %q (web, box_office, ticketmaster, eventbrite)", ch)
		}
		if q < 0 || q > 1000000 {
			return model.Invalid("quotas", "quota of %s must be from 0 to 1000000", ch)
		}
	}
	err := s.d.Tx(ctx, t, func(tx *gorm.DB) error {
		if _, err := LoadSettings(tx, eventID); err != nil {
			return err
		}
		return setQuotas(tx, eventID, quotas)
	})
	if err == nil {
		s.stock.Changed(ctx, t, eventID, nil)
	}
	return err
}

// setQuotas gives listed channels their quota and removes the others,
// inside the caller's transaction.
func setQuotas(tx *gorm.DB, eventID uuid.UUID, quotas map[string]int) error {
	for _, ch := range model.Channels {
		var ids []struct {
			ID uuid.UUID `gorm:"column:id"`
		}
		if err := tx.Raw(`SELECT id FROM inv_counters WHERE event_id = ? AND kind = 'quota' AND channel = ? FOR UPDATE`, eventID, ch).Scan(&ids).Error; err != nil {
			return err
		}
		q, want := quotas[ch]
		switch {
		case len(ids) == 0 && want:
			c := ch
			if err := stock.CreateCounter(tx, eventID, "quota", nil, &c, q); err != nil {
				return err
			}
		case len(ids) == 1 && want:
			if err := stock.ResizeCounter(tx, ids[0].ID, q, ch); err != nil {
				return err
			}
		case len(ids) == 1 && !want:
			var used int64
			if err := tx.Raw(`SELECT coalesce(sum(held + sold), 0) FROM inv_counter_shards WHERE counter_id = ?`, ids[0].ID).Row().Scan(&used); err != nil {
				return err
			}
			if used > 0 {
				return app.Conflict("quota_in_use", "the %s channel already holds or sold %d tickets; set its quota instead of removing it", ch, used)
			}
			if err := tx.Exec(`DELETE FROM inv_counters WHERE id = ?`, ids[0].ID).Error; err != nil {
				return err
			}
		}
	}
	return nil
}

// UpdateSettings changes an event's hold duration and limits.
func (s *Service) UpdateSettings(ctx context.Context, t tenants.Tenant, eventID uuid.UUID, p SettingsPatch) (model.Settings, error) {
	if err := firstErr(p.validate()); err != nil {
		return model.Settings{}, err
	}
	var out model.Settings
	err := s.d.Tx(ctx, t, func(tx *gorm.DB) error {
		res := tx.Exec(`UPDATE inv_events SET hold_minutes = coalesce(?, hold_minutes), max_buyer_holds = coalesce(?, max_buyer_holds),
			max_buyer_tickets = coalesce(?, max_buyer_tickets), max_ip_holds = coalesce(?, max_ip_holds), updated_at = now()
			WHERE event_id = ?`, p.HoldMinutes, p.MaxBuyerHolds, p.MaxBuyerTickets, p.MaxIPHolds, eventID)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return app.NotFound("inventory")
		}
		var err error
		out, err = LoadSettings(tx, eventID)
		return err
	})
	return out, err
}

const settingsCols = `event_id, venue_id, capacity, hold_minutes, max_buyer_holds, max_buyer_tickets, max_ip_holds`

// LoadSettings reads an event's settings (no_inventory without them).
func LoadSettings(tx *gorm.DB, eventID uuid.UUID) (model.Settings, error) {
	var ss []model.Settings
	if err := tx.Raw(`SELECT `+settingsCols+` FROM inv_events WHERE event_id = ?`, eventID).Scan(&ss).Error; err != nil {
		return model.Settings{}, err
	}
	if len(ss) == 0 {
		return model.Settings{}, model.ErrNoInventory()
	}
	return ss[0], nil
}

// LoadZones reads an event's zones in order.
func LoadZones(tx *gorm.DB, eventID uuid.UUID) ([]model.Zone, error) {
	var zs []model.Zone
	err := tx.Raw(`SELECT id, name, kind, capacity, sort FROM inv_zones WHERE event_id = ? ORDER BY sort`, eventID).Scan(&zs).Error
	return zs, err
}

// LoadTiers reads an event's tiers in order.
func LoadTiers(tx *gorm.DB, eventID uuid.UUID) ([]model.Tier, error) {
	var ts []model.Tier
	err := tx.Raw(`SELECT id, zone_id, name, price_minor + fee_minor AS price_minor, fee_minor, currency, sale_starts, sale_ends, max_per_order, sort
		FROM inv_tiers WHERE event_id = ? ORDER BY sort`, eventID).Scan(&ts).Error
	return ts, err
}

// CounterView is a pool or quota with its totals.
type CounterView struct {
	ID       uuid.UUID  `gorm:"column:id" json:"id"`
	Kind     string     `gorm:"column:kind" json:"kind"`
	ZoneID   *uuid.UUID `gorm:"column:zone_id" json:"zone_id,omitempty"`
	Channel  *string    `gorm:"column:channel" json:"channel,omitempty"`
	Capacity int        `gorm:"column:capacity" json:"capacity"`
	Held     int        `gorm:"column:held" json:"held"`
	Sold     int        `gorm:"column:sold" json:"sold"`
	Shards   int        `gorm:"column:shards" json:"shards"`
}

func loadCounters(tx *gorm.DB, eventID uuid.UUID) ([]CounterView, error) {
	var cs []CounterView
	err := tx.Raw(`SELECT c.id, c.kind, c.zone_id, c.channel, c.capacity,
			coalesce(sum(s.held), 0) AS held, coalesce(sum(s.sold), 0) AS sold, count(s.shard) AS shards
		FROM inv_counters c LEFT JOIN inv_counter_shards s ON s.counter_id = c.id
		WHERE c.event_id = ? GROUP BY c.id ORDER BY c.kind, c.channel, c.id`, eventID).Scan(&cs).Error
	return cs, err
}

// Inventory is an event's configuration with its live counts.
type Inventory struct {
	Settings model.Settings `json:"settings"`
	Zones    []ZoneView     `json:"zones"`
	Tiers    []model.Tier   `json:"tiers"`
	Counters []CounterView  `json:"counters"`
	Seats    SeatCounts     `json:"seats"`
}

// ZoneView is a zone with its seat or pool counts.
type ZoneView struct {
	model.Zone
	Held int `json:"held"`
	Sold int `json:"sold"`
}

// SeatCounts counts seats by state.
type SeatCounts struct {
	Total     int `gorm:"column:total" json:"total"`
	Available int `gorm:"column:available" json:"available"`
	Held      int `gorm:"column:held" json:"held"`
	Sold      int `gorm:"column:sold" json:"sold"`
}

// Inventory reads an event's configuration and counts.
func (s *Service) Inventory(ctx context.Context, t tenants.Tenant, eventID uuid.UUID) (Inventory, error) {
	var out Inventory
	err := s.d.Tx(ctx, t, func(tx *gorm.DB) error {
		var err error
		if out.Settings, err = LoadSettings(tx, eventID); err != nil {
			return err
		}
		zones, err := LoadZones(tx, eventID)
		if err != nil {
			return err
		}
		if out.Tiers, err = LoadTiers(tx, eventID); err != nil {
			return err
		}
		if out.Counters, err = loadCounters(tx, eventID); err != nil {
			return err
		}
		var perZone []struct {
			ZoneID uuid.UUID `gorm:"column:zone_id"`
			Held   int       `gorm:"column:held"`
			Sold   int       `gorm:"column:sold"`
		}
		if err := tx.Raw(`SELECT zone_id, count(*) FILTER (WHERE state = 'held') AS held, count(*) FILTER (WHERE state = 'sold') AS sold
			FROM inv_seats WHERE event_id = ? GROUP BY zone_id`, eventID).Scan(&perZone).Error; err != nil {
			return err
		}
		for _, z := range zones {
			zv := ZoneView{Zone: z}
			for _, pz := range perZone {
				if pz.ZoneID == z.ID {
					zv.Held, zv.Sold = pz.Held, pz.Sold
				}
			}
			for _, c := range out.Counters {
				if c.ZoneID != nil && *c.ZoneID == z.ID {
					zv.Held, zv.Sold = c.Held, c.Sold
				}
			}
			out.Zones = append(out.Zones, zv)
		}
		return tx.Raw(`SELECT count(*) AS total, count(*) FILTER (WHERE state = 'available') AS available,
			count(*) FILTER (WHERE state = 'held') AS held, count(*) FILTER (WHERE state = 'sold') AS sold
			FROM inv_seats WHERE event_id = ?`, eventID).Scan(&out.Seats).Error
	})
	out.Zones, out.Tiers, out.Counters = app.NonNil(out.Zones), app.NonNil(out.Tiers), app.NonNil(out.Counters)
	return out, err
}
