// Package stock is what an event has to sell and where it is: seats and
// the sharded counters of GA pools and channel quotas (one algorithm takes
// units from them, see take.go), the units each hold or order took, and the
// availability readers see (cached in Redis, live over SSE).
package stock

import (
	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/app"
)

// A counter (GA pool or channel quota) keeps its units in shards: rows with
// capacity, held and sold, and CHECK (held + sold <= capacity). Taking units
// is a conditional increment of one shard that has room; the CHECK is the
// backstop that makes overselling impossible even if a statement here were
// wrong. Lock order, everywhere: seats (by id), then pool shards, then quota
// shards (each in shard order when more than one is waited for), then buyer
// counters; so no two transactions wait on each other in a cycle.

// Alloc is units a hold or order took from one shard.
type Alloc struct {
	CounterID uuid.UUID `gorm:"column:counter_id"`
	Shard     int       `gorm:"column:shard"`
	Quantity  int       `gorm:"column:quantity"`
	Kind      string    `gorm:"column:kind"`
}

// HoldAllocs reads what a hold took, in lock order (pools before quotas,
// then counter and shard).
func HoldAllocs(tx *gorm.DB, holdID uuid.UUID) ([]Alloc, error) {
	var as []Alloc
	err := tx.Raw(`SELECT a.counter_id, a.shard, a.quantity, c.kind FROM inv_hold_allocs a JOIN inv_counters c ON c.id = a.counter_id
		WHERE a.hold_id = ? ORDER BY c.kind, a.counter_id, a.shard`, holdID).Scan(&as).Error
	return as, err
}

// SaveAllocs records units a hold took (adding to what it took from the same shard).
func SaveAllocs(tx *gorm.DB, holdID uuid.UUID, as []Alloc) error {
	for _, a := range as {
		if err := tx.Exec(`INSERT INTO inv_hold_allocs (hold_id, counter_id, shard, quantity) VALUES (?, ?, ?, ?)
			ON CONFLICT (hold_id, counter_id, shard) DO UPDATE SET quantity = inv_hold_allocs.quantity + EXCLUDED.quantity`,
			holdID, a.CounterID, a.Shard, a.Quantity).Error; err != nil {
			return err
		}
	}
	return nil
}

// MoveAllocs applies a hold's allocations to their shards: give back held
// units (release), turn held into sold (sale), or give back sold units
// (refund). The allocations go when the units go back.
func MoveAllocs(tx *gorm.DB, holdID uuid.UUID, set string, drop bool) error {
	as, err := HoldAllocs(tx, holdID)
	if err != nil {
		return err
	}
	for _, a := range as {
		if err := tx.Exec(`UPDATE inv_counter_shards SET `+set+` WHERE counter_id = ? AND shard = ?`,
			a.Quantity, a.Quantity, a.CounterID, a.Shard).Error; err != nil {
			return err
		}
	}
	if drop {
		return tx.Exec(`DELETE FROM inv_hold_allocs WHERE hold_id = ?`, holdID).Error
	}
	return nil
}

// The three moves of MoveAllocs (two placeholders each: the quantity twice).
const (
	ReleaseHeld = "held = held - ?, sold = sold + 0 * ?"
	SellHeld    = "held = held - ?, sold = sold + ?"
	ReturnSold  = "sold = sold - ?, held = held + 0 * ?"
)

// ShardsFor chooses how many shards a counter gets: enough that 64
// concurrent buyers rarely meet on one row, few enough that each shard can
// still serve a full order.
func ShardsFor(capacity int) int {
	n := capacity / 32
	switch {
	case n < 1:
		return 1
	case n > 16:
		return 16
	}
	return n
}

// CreateCounter adds a pool or quota of capacity units, split into shards.
func CreateCounter(tx *gorm.DB, eventID uuid.UUID, kind string, zoneID *uuid.UUID, channel *string, capacity int) error {
	id := uuid.Must(uuid.NewV7())
	if err := tx.Exec(`INSERT INTO inv_counters (id, event_id, kind, zone_id, channel, capacity) VALUES (?, ?, ?, ?, ?, ?)`,
		id, eventID, kind, zoneID, channel, capacity).Error; err != nil {
		return err
	}
	n := ShardsFor(capacity)
	for i := 0; i < n; i++ {
		share := capacity / n
		if i < capacity%n {
			share++
		}
		if err := tx.Exec(`INSERT INTO inv_counter_shards (counter_id, shard, capacity) VALUES (?, ?, ?)`, id, i, share).Error; err != nil {
			return err
		}
	}
	return nil
}

// ResizeCounter gives a counter a new capacity, spreading the free units
// over its shards again. Its shards are locked in order (as every path that
// waits on shards does), so no hold slips in between.
func ResizeCounter(tx *gorm.DB, counterID uuid.UUID, capacity int, what string) error {
	var shards []struct {
		Shard int `gorm:"column:shard"`
		Used  int `gorm:"column:used"`
	}
	if err := tx.Raw(`SELECT shard, held + sold AS used FROM inv_counter_shards WHERE counter_id = ? ORDER BY shard FOR UPDATE`, counterID).Scan(&shards).Error; err != nil {
		return err
	}
	used := 0
	for _, sh := range shards {
		used += sh.Used
	}
	if capacity < used {
		return app.Conflict("quota_below_sold", "%s already holds or sold %d; the quota cannot be lower", what, used)
	}
	free, n := capacity-used, len(shards)
	for i, sh := range shards {
		share := free / n
		if i < free%n {
			share++
		}
		if err := tx.Exec(`UPDATE inv_counter_shards SET capacity = ? WHERE counter_id = ? AND shard = ?`, sh.Used+share, counterID, sh.Shard).Error; err != nil {
			return err
		}
	}
	return tx.Exec(`UPDATE inv_counters SET capacity = ? WHERE id = ?`, capacity, counterID).Error
}
