package catalogue

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/modules/inventory/internal/model"
	"marquee/modules/inventory/internal/stock"
	"marquee/tenants"
)

// Once tickets of an event were held or sold, a new Setup no longer
// replaces the inventory: it is applied as an amendment that keeps every
// ticket as it was sold. Allowed: adding zones, seats and tiers; moving,
// re-labelling as accessible or re-zoning seats nobody holds; removing
// unsold seats, tiers and zones; raising capacities and quotas (lowering
// them down to what is held or sold); changing sale windows that have not
// opened, the prices of tiers that sold nothing, limits and hold minutes.
// Refused, in words: removing or renumbering a held or sold seat (its id is
// section-row-number), removing or re-kinding a zone that sold, changing a
// sold tier's price or zone, moving the start of a sale already open,
// capacities or quotas below what is held or sold, and another currency.

// refuse is the one conflict of an unsafe change after sales.
func refuse(format string, args ...any) error {
	return app.Conflict("inventory_in_use", format, args...)
}

type currentTier struct {
	ID          uuid.UUID  `gorm:"column:id"`
	ZoneID      uuid.UUID  `gorm:"column:zone_id"`
	Name        string     `gorm:"column:name"`
	PriceMinor  int64      `gorm:"column:price_minor"` // face price, before fees
	FeeMinor    int64      `gorm:"column:fee_minor"`
	Currency    string     `gorm:"column:currency"`
	SaleStarts  *time.Time `gorm:"column:sale_starts"`
	SaleEnds    *time.Time `gorm:"column:sale_ends"`
	MaxPerOrder int        `gorm:"column:max_per_order"`
}

type currentSeat struct {
	ID     string    `gorm:"column:id"`
	ZoneID uuid.UUID `gorm:"column:zone_id"`
	State  string    `gorm:"column:state"`
}

type currentCounter struct {
	ID       uuid.UUID  `gorm:"column:id"`
	Kind     string     `gorm:"column:kind"`
	ZoneID   *uuid.UUID `gorm:"column:zone_id"`
	Channel  *string    `gorm:"column:channel"`
	Capacity int        `gorm:"column:capacity"`
	Used     int        `gorm:"column:used"`
}

func sameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.Equal(*b)
}

func when(t *time.Time) string {
	if t == nil {
		return "from the start"
	}
	return t.UTC().Format("2 Jan 2006 15:04 UTC")
}

// amend applies the validated plan p to an event whose tickets were held or
// sold, inside the caller's transaction (which has locked every seat and
// counter shard of the event, so no hold slips in while it decides).
func amend(tx *gorm.DB, eventID uuid.UUID, p plan, layout *Layout, now time.Time) error {
	zones, err := LoadZones(tx, eventID)
	if err != nil {
		return err
	}
	var tiers []currentTier
	if err := tx.Raw(`SELECT id, zone_id, name, price_minor, fee_minor, currency, sale_starts, sale_ends, max_per_order
		FROM inv_tiers WHERE event_id = ? ORDER BY sort`, eventID).Scan(&tiers).Error; err != nil {
		return err
	}
	var seats []currentSeat
	if err := tx.Raw(`SELECT id, zone_id, state FROM inv_seats WHERE event_id = ?`, eventID).Scan(&seats).Error; err != nil {
		return err
	}
	var counters []currentCounter
	if err := tx.Raw(`SELECT c.id, c.kind, c.zone_id, c.channel, c.capacity, coalesce(sum(s.held + s.sold), 0) AS used
		FROM inv_counters c LEFT JOIN inv_counter_shards s ON s.counter_id = c.id WHERE c.event_id = ? GROUP BY c.id`, eventID).Scan(&counters).Error; err != nil {
		return err
	}
	// A tier is in use once a live or paid hold has a line of it.
	var usedTiers []uuid.UUID
	if err := tx.Raw(`SELECT DISTINCT l.tier_id FROM inv_hold_lines l JOIN inv_holds h ON h.id = l.hold_id
		WHERE h.event_id = ? AND h.status IN ('active', 'sold')`, eventID).Scan(&usedTiers).Error; err != nil {
		return err
	}
	tierUsed := map[uuid.UUID]bool{}
	for _, id := range usedTiers {
		tierUsed[id] = true
	}

	// What each zone holds or sold, and in all.
	zoneUsed, total := map[uuid.UUID]int{}, 0
	for _, st := range seats {
		if st.State != model.SeatAvailable {
			zoneUsed[st.ZoneID]++
			total++
		}
	}
	pools := map[uuid.UUID]currentCounter{}
	quotas := map[string]currentCounter{}
	for _, c := range counters {
		switch {
		case c.Kind == "pool" && c.ZoneID != nil:
			pools[*c.ZoneID] = c
			zoneUsed[*c.ZoneID] += c.Used
			total += c.Used
		case c.Kind == "quota" && c.Channel != nil:
			quotas[*c.Channel] = c
		}
	}

	// Zones: kept ones by name keep their id; the plan's ids are re-pointed.
	current := map[string]model.Zone{}
	for _, z := range zones {
		current[strings.ToLower(z.Name)] = z
	}
	zoneID := map[uuid.UUID]uuid.UUID{} // plan id -> final id
	kept := map[uuid.UUID]bool{}
	for _, z := range p.zones {
		cur, ok := current[strings.ToLower(z.Name)]
		if !ok {
			zoneID[z.ID] = z.ID
			continue
		}
		if cur.Kind != z.Kind && zoneUsed[cur.ID] > 0 {
			return refuse("Zone %q has tickets held or sold, so it stays %s; add a new zone instead.", cur.Name, kindWords(cur.Kind))
		}
		if cur.Kind != z.Kind {
			// An unsold zone changing kind is replaced by a new one.
			zoneID[z.ID] = z.ID
			continue
		}
		zoneID[z.ID], kept[cur.ID] = cur.ID, true
		if used := zoneUsed[cur.ID]; z.Kind == model.KindGA && z.Capacity < used {
			return refuse("Zone %q has %d tickets held or sold, so its capacity cannot be lower than %d.", cur.Name, used, used)
		}
	}
	var dropZones []uuid.UUID
	dropped := map[uuid.UUID]bool{} // their seats and tiers go with them
	for _, z := range zones {
		if kept[z.ID] {
			continue
		}
		if zoneUsed[z.ID] > 0 {
			return refuse("Zone %q has %d tickets held or sold, so it cannot be removed or change kind.", z.Name, zoneUsed[z.ID])
		}
		dropZones = append(dropZones, z.ID)
		dropped[z.ID] = true
	}
	if p.settings.Capacity < total {
		return refuse("The event's capacity cannot be %d: %d tickets are already held or sold.", p.settings.Capacity, total)
	}

	// Tiers: by name. The currency is the one tickets were sold in.
	currency := ""
	for _, ti := range tiers {
		if tierUsed[ti.ID] {
			currency = ti.Currency
			break
		}
	}
	curTier := map[string]currentTier{}
	for _, ti := range tiers {
		curTier[strings.ToLower(ti.Name)] = ti
	}
	keptTier := map[uuid.UUID]bool{}
	for i := range p.tiers {
		nt := &p.tiers[i]
		nt.ZoneID = zoneID[nt.ZoneID]
		if currency != "" && nt.Currency != currency {
			return refuse("Tickets were sold in %s, so every tier's price stays in %s (tier %q asks for %s).", currency, currency, nt.Name, nt.Currency)
		}
		cur, ok := curTier[strings.ToLower(nt.Name)]
		if !ok || dropped[cur.ZoneID] {
			continue
		}
		keptTier[cur.ID] = true
		nt.ID = cur.ID
		if tierUsed[cur.ID] {
			switch {
			case nt.ZoneID != cur.ZoneID:
				return refuse("Tier %q has tickets held or sold, so it stays in its zone.", cur.Name)
			case nt.PriceMinor != cur.PriceMinor || nt.FeeMinor != cur.FeeMinor:
				return refuse("Tier %q has tickets held or sold, so its price and fees cannot change; add a new tier for a new price.", cur.Name)
			case nt.SaleEnds != nil && !sameTime(nt.SaleEnds, cur.SaleEnds) && nt.SaleEnds.Before(now):
				return refuse("Tier %q has tickets held or sold, so its sale cannot be made to have ended in the past.", cur.Name)
			}
		}
		opened := cur.SaleStarts == nil || !cur.SaleStarts.After(now)
		if !sameTime(nt.SaleStarts, cur.SaleStarts) && opened && tierUsed[cur.ID] {
			return refuse("Tier %q has been on sale since %s, so its sale start cannot move; its end still can.", cur.Name, when(cur.SaleStarts))
		}
	}
	var dropTiers []uuid.UUID
	for _, ti := range tiers {
		if keptTier[ti.ID] || dropped[ti.ZoneID] {
			continue
		}
		if tierUsed[ti.ID] {
			return refuse("Tier %q has tickets held or sold, so it cannot be removed.", ti.Name)
		}
		dropTiers = append(dropTiers, ti.ID)
	}

	// Seats: a held or sold seat stays, with its number and zone.
	planned := make(map[string]*SeatRow, len(p.seats))
	for i := range p.seats {
		p.seats[i].ZoneID = zoneID[p.seats[i].ZoneID]
		planned[p.seats[i].ID] = &p.seats[i]
	}
	var dropSeats []string
	existing := make(map[string]bool, len(seats))
	for _, st := range seats {
		if dropped[st.ZoneID] {
			continue
		}
		existing[st.ID] = true
		ns, ok := planned[st.ID]
		if st.State == model.SeatAvailable {
			if !ok {
				dropSeats = append(dropSeats, st.ID)
			}
			continue
		}
		if !ok {
			return refuse("%s is %s, so it cannot be removed or renumbered.", seatWords(st.ID), st.State)
		}
		if ns.ZoneID != st.ZoneID {
			return refuse("%s is %s, so it stays in its zone.", seatWords(st.ID), st.State)
		}
	}

	// Quotas: never below what a channel holds or sold.
	for ch, c := range quotas {
		q, want := p.quotas[ch]
		if c.Used > 0 && !want {
			return refuse("The %s channel has %d tickets held or sold, so its quota cannot be removed.", channelWords(ch), c.Used)
		}
		if want && q < c.Used {
			return refuse("The %s channel has %d tickets held or sold, so its quota cannot be lower than %d.", channelWords(ch), c.Used, c.Used)
		}
	}

	// Every refusal is above: from here on, write.
	layoutJSON, err := layoutText(layout)
	if err != nil {
		return err
	}
	st := p.settings
	// The capacity grows first (zone and quota sums are checked against it
	// row by row) and is set to its final value last.
	if err := tx.Exec(`UPDATE inv_events SET capacity = greatest(capacity, ?), hold_minutes = ?, max_buyer_holds = ?, max_buyer_tickets = ?,
		max_ip_holds = ?, layout = ?::jsonb, updated_at = now() WHERE event_id = ?`,
		st.Capacity, st.HoldMinutes, st.MaxBuyerHolds, st.MaxBuyerTickets, st.MaxIPHolds, layoutJSON, eventID).Error; err != nil {
		return err
	}
	if len(dropTiers) > 0 {
		if err := tx.Exec(`DELETE FROM inv_tiers WHERE id IN ?`, dropTiers).Error; err != nil {
			return err
		}
	}
	if len(dropZones) > 0 {
		if err := tx.Exec(`DELETE FROM inv_zones WHERE id IN ?`, dropZones).Error; err != nil {
			return err
		}
	}
	if len(dropSeats) > 0 {
		if err := tx.Exec(`DELETE FROM inv_seats WHERE event_id = ? AND id IN ?`, eventID, dropSeats).Error; err != nil {
			return err
		}
	}
	for _, z := range p.zones {
		id := zoneID[z.ID]
		if id != z.ID {
			if err := tx.Exec(`UPDATE inv_zones SET name = ?, capacity = ?, sort = ? WHERE id = ?`, z.Name, z.Capacity, z.Sort, id).Error; err != nil {
				return err
			}
			if pool, ok := pools[id]; ok && pool.Capacity != z.Capacity {
				if err := stock.ResizeCounter(tx, pool.ID, z.Capacity, "zone "+z.Name); err != nil {
					return err
				}
			}
			continue
		}
		if err := tx.Exec(`INSERT INTO inv_zones (id, event_id, name, kind, capacity, sort) VALUES (?, ?, ?, ?, ?, ?)`,
			z.ID, eventID, z.Name, z.Kind, z.Capacity, z.Sort).Error; err != nil {
			return err
		}
		if z.Kind == model.KindGA {
			if err := stock.CreateCounter(tx, eventID, "pool", &z.ID, nil, z.Capacity); err != nil {
				return err
			}
		}
	}
	// Seat order (the availability bitmap's) follows the new layout; the
	// old positions move out of the way first (ord is unique).
	if err := tx.Exec(`UPDATE inv_seats SET ord = -1 - ord WHERE event_id = ?`, eventID).Error; err != nil {
		return err
	}
	var fresh, moved []SeatRow
	for _, s := range p.seats {
		if existing[s.ID] {
			moved = append(moved, s)
		} else {
			fresh = append(fresh, s)
		}
	}
	if err := updateSeats(tx, eventID, moved); err != nil {
		return err
	}
	if err := insertSeats(tx, eventID, fresh); err != nil {
		return err
	}
	for _, ti := range p.tiers {
		if keptTier[ti.ID] {
			cur := curTier[strings.ToLower(ti.Name)]
			if err := tx.Exec(`UPDATE inv_tiers SET name = ?, zone_id = ?, fee_minor = ?, currency = ?, sale_starts = ?, sale_ends = ?, max_per_order = ?, sort = ?
				WHERE id = ?`, ti.Name, ti.ZoneID, ti.FeeMinor, ti.Currency, ti.SaleStarts, ti.SaleEnds, ti.MaxPerOrder, ti.Sort, ti.ID).Error; err != nil {
				return err
			}
			// Only a real change touches the price (a demand-priced tier's
			// bounds are checked on every write of it).
			if ti.PriceMinor != cur.PriceMinor {
				if err := tx.Exec(`UPDATE inv_tiers SET price_minor = ? WHERE id = ?`, ti.PriceMinor, ti.ID).Error; err != nil {
					return err
				}
			}
			continue
		}
		if err := tx.Exec(`INSERT INTO inv_tiers (id, event_id, zone_id, name, price_minor, fee_minor, currency, sale_starts, sale_ends, max_per_order, sort)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, ti.ID, eventID, ti.ZoneID, ti.Name, ti.PriceMinor, ti.FeeMinor, ti.Currency,
			ti.SaleStarts, ti.SaleEnds, ti.MaxPerOrder, ti.Sort).Error; err != nil {
			return err
		}
	}
	if err := setQuotas(tx, eventID, p.quotas); err != nil {
		return err
	}
	return tx.Exec(`UPDATE inv_events SET capacity = ? WHERE event_id = ?`, st.Capacity, eventID).Error
}

// updateSeats moves kept seats to their place in the new layout, in
// batches.
func updateSeats(tx *gorm.DB, eventID uuid.UUID, seats []SeatRow) error {
	const batch = 2000
	for start := 0; start < len(seats); start += batch {
		end := min(start+batch, len(seats))
		var sb strings.Builder
		sb.WriteString(`UPDATE inv_seats s SET zone_id = v.zone_id, ord = v.ord, x = v.x, y = v.y, accessible = v.accessible FROM (VALUES `)
		args := make([]any, 0, (end-start)*6+1)
		for i, s := range seats[start:end] {
			if i > 0 {
				sb.WriteString(",")
			}
			sb.WriteString("(?, ?::uuid, ?::integer, ?::real, ?::real, ?::boolean)")
			args = append(args, s.ID, s.ZoneID, s.Ord, s.X, s.Y, s.Accessible)
		}
		sb.WriteString(`) AS v (id, zone_id, ord, x, y, accessible) WHERE s.event_id = ? AND s.id = v.id`)
		args = append(args, eventID)
		if err := tx.Exec(sb.String(), args...).Error; err != nil {
			return err
		}
	}
	return nil
}

// layoutText is the layout as stored (nil: none).
func layoutText(l *Layout) (*string, error) {
	if l == nil {
		return nil, nil
	}
	b, err := json.Marshal(l)
	if err != nil {
		return nil, err
	}
	s := string(b)
	return &s, nil
}

func kindWords(kind string) string {
	if kind == model.KindGA {
		return "general admission"
	}
	return "reserved seating"
}

func channelWords(ch string) string { return strings.ReplaceAll(ch, "_", " ") }

// seatWords names a seat id ("A-1-11") for people.
func seatWords(id string) string {
	parts := strings.Split(id, "-")
	if len(parts) != 3 {
		return id
	}
	return fmt.Sprintf("Section %s, Row %s, Seat %s", parts[0], parts[1], parts[2])
}

// TiersInUse names the tiers with live or paid holds (their price, zone
// and open sale window stay as sold).
func (s *Service) TiersInUse(ctx context.Context, t tenants.Tenant, eventID uuid.UUID) (map[uuid.UUID]bool, error) {
	out := map[uuid.UUID]bool{}
	err := s.d.Tx(ctx, t, func(tx *gorm.DB) error {
		var ids []uuid.UUID
		if err := tx.Raw(`SELECT DISTINCT l.tier_id FROM inv_hold_lines l JOIN inv_holds h ON h.id = l.hold_id
			WHERE h.event_id = ? AND h.status IN ('active', 'sold')`, eventID).Scan(&ids).Error; err != nil {
			return err
		}
		for _, id := range ids {
			out[id] = true
		}
		return nil
	})
	return out, err
}
