package inventory

import (
	"math/rand/v2"

	"github.com/google/uuid"
	"gorm.io/gorm"
)

// A counter (GA pool or channel quota) keeps its units in shards: rows with
// capacity, held and sold, and CHECK (held + sold <= capacity). Taking units
// is a conditional increment of one shard that has room; the CHECK is the
// backstop that makes overselling impossible even if a statement here were
// wrong. Lock order, everywhere: seats (by id), then pool shards, then quota
// shards (each in shard order when more than one is waited for), then buyer
// counters; so no two transactions wait on each other in a cycle.

// alloc is units a hold or order took from one shard.
type alloc struct {
	CounterID uuid.UUID `gorm:"column:counter_id"`
	Shard     int       `gorm:"column:shard"`
	Quantity  int       `gorm:"column:quantity"`
	Kind      string    `gorm:"column:kind"`
}

// Columns a take may increment: units held for a buyer, or sold outright (a
// late payment re-sold). Never user input.
const (
	colHeld = "held"
	colSold = "sold"
)

// take takes n units of a counter into col, returning where they came from,
// or ok=false and the units left when there are not enough.
func take(tx *gorm.DB, counterID uuid.UUID, n int, col string) (allocs []alloc, ok bool, left int, err error) {
	if col != colHeld && col != colSold {
		panic("inventory: take into " + col)
	}
	r := rand.IntN(256)
	// Fast path: one shard with room for all n, skipping shards other
	// buyers have locked right now, so concurrent holds spread over the
	// shards instead of queueing on one row.
	var got []struct {
		Shard int `gorm:"column:shard"`
	}
	err = tx.Raw(`UPDATE inv_counter_shards SET `+col+` = `+col+` + ?
		WHERE counter_id = ? AND capacity - held - sold >= ? AND shard = (
			SELECT shard FROM inv_counter_shards WHERE counter_id = ? AND capacity - held - sold >= ?
			ORDER BY (shard + ?) % 256 LIMIT 1 FOR UPDATE SKIP LOCKED)
		RETURNING shard`, n, counterID, n, counterID, n, r).Scan(&got).Error
	if err != nil || len(got) == 1 {
		return []alloc{{CounterID: counterID, Shard: firstShard(got), Quantity: n}}, err == nil, 0, err
	}
	// Nothing free and unlocked. Is there room at all (committed state)?
	var free struct {
		Total   int `gorm:"column:total"`
		Largest int `gorm:"column:largest"`
	}
	if err = tx.Raw(`SELECT coalesce(sum(capacity - held - sold), 0) AS total, coalesce(max(capacity - held - sold), 0) AS largest
		FROM inv_counter_shards WHERE counter_id = ?`, counterID).Scan(&free).Error; err != nil {
		return nil, false, 0, err
	}
	if free.Total < n {
		return nil, false, free.Total, nil
	}
	if free.Largest >= n {
		// One shard could serve it: wait for one (a shard that fills up
		// meanwhile is skipped after the wait, and the next one tried).
		err = tx.Raw(`UPDATE inv_counter_shards SET `+col+` = `+col+` + ?
			WHERE counter_id = ? AND capacity - held - sold >= ? AND shard = (
				SELECT shard FROM inv_counter_shards WHERE counter_id = ? AND capacity - held - sold >= ?
				ORDER BY (shard + ?) % 256 LIMIT 1 FOR UPDATE)
			RETURNING shard`, n, counterID, n, counterID, n, r).Scan(&got).Error
		if err != nil || len(got) == 1 {
			return []alloc{{CounterID: counterID, Shard: firstShard(got), Quantity: n}}, err == nil, 0, err
		}
	}
	// The units are spread over several shards: lock them all in shard
	// order and take what each has.
	var shards []struct {
		Shard int `gorm:"column:shard"`
		Free  int `gorm:"column:free"`
	}
	if err = tx.Raw(`SELECT shard, capacity - held - sold AS free FROM inv_counter_shards WHERE counter_id = ? ORDER BY shard FOR UPDATE`,
		counterID).Scan(&shards).Error; err != nil {
		return nil, false, 0, err
	}
	total := 0
	for _, s := range shards {
		total += s.Free
	}
	if total < n {
		return nil, false, total, nil
	}
	rem := n
	for _, s := range shards {
		if rem == 0 {
			break
		}
		q := min(s.Free, rem)
		if q <= 0 {
			continue
		}
		res := tx.Exec(`UPDATE inv_counter_shards SET `+col+` = `+col+` + ? WHERE counter_id = ? AND shard = ? AND capacity - held - sold >= ?`,
			q, counterID, s.Shard, q)
		if res.Error != nil {
			return nil, false, 0, res.Error
		}
		if res.RowsAffected != 1 { // impossible under the lock; refuse rather than guess
			return nil, false, 0, nil
		}
		allocs = append(allocs, alloc{CounterID: counterID, Shard: s.Shard, Quantity: q})
		rem -= q
	}
	return allocs, true, 0, nil
}

func firstShard(got []struct {
	Shard int `gorm:"column:shard"`
}) int {
	if len(got) == 0 {
		return 0
	}
	return got[0].Shard
}

// holdAllocs reads what a hold took, in lock order (pools before quotas,
// then counter and shard).
func holdAllocs(tx *gorm.DB, holdID uuid.UUID) ([]alloc, error) {
	var as []alloc
	err := tx.Raw(`SELECT a.counter_id, a.shard, a.quantity, c.kind FROM inv_hold_allocs a JOIN inv_counters c ON c.id = a.counter_id
		WHERE a.hold_id = ? ORDER BY c.kind, a.counter_id, a.shard`, holdID).Scan(&as).Error
	return as, err
}

func saveAllocs(tx *gorm.DB, holdID uuid.UUID, as []alloc) error {
	for _, a := range as {
		if err := tx.Exec(`INSERT INTO inv_hold_allocs (hold_id, counter_id, shard, quantity) VALUES (?, ?, ?, ?)
			ON CONFLICT (hold_id, counter_id, shard) DO UPDATE SET quantity = inv_hold_allocs.quantity + EXCLUDED.quantity`,
			holdID, a.CounterID, a.Shard, a.Quantity).Error; err != nil {
			return err
		}
	}
	return nil
}

// moveAllocs applies a hold's allocations to their shards: give back held
// units (release), turn held into sold (sale), or give back sold units
// (refund). The allocations go when the units go back.
func moveAllocs(tx *gorm.DB, holdID uuid.UUID, set string, drop bool) error {
	as, err := holdAllocs(tx, holdID)
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

// The three moves of moveAllocs (two placeholders each: the quantity twice).
const (
	releaseHeld = "held = held - ?, sold = sold + 0 * ?"
	sellHeld    = "held = held - ?, sold = sold + ?"
	returnSold  = "sold = sold - ?, held = held + 0 * ?"
)
