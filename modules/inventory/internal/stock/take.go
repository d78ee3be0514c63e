package stock

import (
	"math/rand/v2"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"gorm.io/gorm"
)

// Taking units from a sharded counter is one algorithm, used by the hold
// batch (pgx, many requests at once) and by every single-request path
// (gorm: cart additions, late payments):
//
//  1. lock shards, in a way that spreads concurrent takers: one shard with
//     room for all that is wanted, skipping shards others hold locked,
//     starting at a random shard (LockOneFree; the hold batch locks a
//     quarter of the counter's shards that way, LockSpread); failing that,
//     a taker that may wait waits for one shard with room (LockOneWaiting),
//     and last locks every shard of the counter in shard order (LockAll);
//  2. plan the take in Go against the locked shards' free units (Plan): the
//     first shard with room for all, looking from the shard after the one
//     the previous take used (so a batch's holds land on different rows),
//     else shard by shard; nothing when the locked shards hold too few;
//  3. write it with conditional increments that repeat the room condition
//     (capacity - held - sold >= n); the shards' CHECK is the backstop.
//
// The statements take named arguments (pgx.NamedArgs, and gorm's @name
// form), so both transaction kinds run the same text.

// ShardKey names one shard of a counter.
type ShardKey struct {
	Counter uuid.UUID
	Shard   int
}

// Take is units planned out of one shard.
type Take struct {
	ShardKey
	Quantity int
}

// Locked is what a transaction knows of the shards it holds locked: their
// order per counter and the units each has free, updated as takes are
// planned and applied. It is plain data: deciding against it needs no
// database.
type Locked struct {
	order map[uuid.UUID][]int
	free  map[ShardKey]int
	// next is where in order the next take of a counter starts looking.
	// A paid hold moves its units from held to sold on the shard rows it
	// took them from, under their locks; holds of one batch that share a
	// row make their payments queue on it, so takes go round the locked
	// shards instead of filling the first.
	next map[uuid.UUID]int
}

// NewLocked returns an empty state.
func NewLocked() *Locked {
	return &Locked{order: map[uuid.UUID][]int{}, free: map[ShardKey]int{}, next: map[uuid.UUID]int{}}
}

// Add records a locked shard and its free units (in lock order).
func (l *Locked) Add(counter uuid.UUID, shard, free int) {
	l.order[counter] = append(l.order[counter], shard)
	l.free[ShardKey{counter, shard}] = free
}

// Free is the units left in one locked shard.
func (l *Locked) Free(k ShardKey) int { return l.free[k] }

// Plan finds n units of a counter among its locked shards, spread over as
// few shards as it can: the first shard with room for all, counting from
// the one after the previous take's, else shard by shard. nil means not
// enough, with how many are left.
func (l *Locked) Plan(counter uuid.UUID, n int) ([]Take, int) {
	total, order := 0, l.order[counter]
	for i := range order {
		at := (l.next[counter] + i) % len(order)
		k := ShardKey{counter, order[at]}
		if l.free[k] >= n {
			l.next[counter] = at + 1
			return []Take{{k, n}}, 0
		}
		total += max(l.free[k], 0)
	}
	if total < n {
		return nil, total
	}
	var out []Take
	for _, sh := range l.order[counter] {
		k := ShardKey{counter, sh}
		if q := min(l.free[k], n); q > 0 {
			out = append(out, Take{k, q})
			n -= q
		}
		if n == 0 {
			break
		}
	}
	return out, 0
}

// Apply takes planned units out of the state.
func (l *Locked) Apply(takes []Take) {
	for _, t := range takes {
		l.free[t.ShardKey] -= t.Quantity
	}
}

// LockMode is how a taker locks a counter's shards.
type LockMode int

const (
	// LockOneFree locks one shard with room for n, skipping shards other
	// transactions hold locked; none may be found.
	LockOneFree LockMode = iota
	// LockOneWaiting waits for one shard with room for n.
	LockOneWaiting
	// LockAll locks every shard of the counter, in shard order.
	LockAll
	// LockSpread locks a quarter of the counter's shards (at least one)
	// that have room, skipping shards other transactions hold locked; they
	// may hold fewer than n units together, or none be found.
	LockSpread
)

// The lock statements of a take (step 1).
const (
	lockOneFreeSQL = `SELECT shard, capacity - held - sold AS free FROM inv_counter_shards
		WHERE counter_id = @counter AND capacity - held - sold >= @n
		ORDER BY (shard + @start) % 256 LIMIT 1 FOR UPDATE SKIP LOCKED`
	lockOneWaitingSQL = `SELECT shard, capacity - held - sold AS free FROM inv_counter_shards
		WHERE counter_id = @counter AND capacity - held - sold >= @n
		ORDER BY (shard + @start) % 256 LIMIT 1 FOR UPDATE`
	lockAllSQL = `SELECT shard, capacity - held - sold AS free FROM inv_counter_shards WHERE counter_id = @counter ORDER BY shard FOR UPDATE`
	// A quarter: the hold batch's other worker (and other instances, and
	// single takes) still find shards of their own without waiting.
	lockSpreadSQL = `SELECT shard, capacity - held - sold AS free FROM inv_counter_shards
		WHERE counter_id = @counter AND capacity - held - sold > 0
		ORDER BY (shard + @start) % 256
		LIMIT greatest(1, (SELECT count(*) FROM inv_counter_shards WHERE counter_id = @counter) / 4) FOR UPDATE SKIP LOCKED`
)

// ShardFree is a locked shard and its free units, as a lock statement returns them.
type ShardFree struct {
	Shard int `gorm:"column:shard"`
	Free  int `gorm:"column:free"`
}

// Querier runs a lock statement in a transaction: a gorm one (GormQuerier)
// or the hold batch's pgx one.
type Querier interface {
	QueryShards(q string, args pgx.NamedArgs) ([]ShardFree, error)
}

// Lock locks shards of a counter for a take of n units (see LockMode),
// records them in l and returns how many units they hold free.
func (l *Locked) Lock(db Querier, counter uuid.UUID, n int, mode LockMode) (int, error) {
	q, args := lockAllSQL, pgx.NamedArgs{"counter": counter}
	switch mode {
	case LockOneFree:
		q, args = lockOneFreeSQL, pgx.NamedArgs{"counter": counter, "n": n, "start": rand.IntN(256)}
	case LockOneWaiting:
		q, args = lockOneWaitingSQL, pgx.NamedArgs{"counter": counter, "n": n, "start": rand.IntN(256)}
	case LockSpread:
		q, args = lockSpreadSQL, pgx.NamedArgs{"counter": counter, "start": rand.IntN(256)}
	}
	shards, err := db.QueryShards(q, args)
	if err != nil {
		return 0, err
	}
	total := 0
	for _, sh := range shards {
		if _, seen := l.free[ShardKey{counter, sh.Shard}]; !seen {
			l.order[counter] = append(l.order[counter], sh.Shard)
		}
		l.free[ShardKey{counter, sh.Shard}] = sh.Free
		total += sh.Free
	}
	return total, nil
}

// GormQuerier runs lock statements in a gorm transaction.
type GormQuerier struct{ Tx *gorm.DB }

// QueryShards implements Querier.
func (g GormQuerier) QueryShards(q string, args pgx.NamedArgs) ([]ShardFree, error) {
	var out []ShardFree
	err := g.Tx.Raw(q, map[string]any(args)).Scan(&out).Error
	return out, err
}

// Columns a take may increment: units held for a buyer, or sold outright (a
// late payment taken again). Never user input.
const (
	ColHeld = "held"
	ColSold = "sold"
)

// TakeUnits takes n units of a counter into col in a gorm transaction
// (one request's take), returning where they came from, or ok=false and
// the units left when there are not enough.
func TakeUnits(tx *gorm.DB, counterID uuid.UUID, n int, col string) (allocs []Alloc, ok bool, left int, err error) {
	if col != ColHeld && col != ColSold {
		panic("inventory: take into " + col)
	}
	db := GormQuerier{tx}
	l := NewLocked()
	// One shard with room for all n, skipping shards other buyers have
	// locked right now, so concurrent takers spread over the shards
	// instead of queueing on one row.
	got, err := l.Lock(db, counterID, n, LockOneFree)
	if err != nil {
		return nil, false, 0, err
	}
	if got < n {
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
			// One shard could serve it: wait for one (a shard that fills
			// up meanwhile is skipped after the wait, and the next one
			// tried).
			if got, err = l.Lock(db, counterID, n, LockOneWaiting); err != nil {
				return nil, false, 0, err
			}
		}
		if got < n {
			// The units are spread over several shards: lock them all in
			// shard order and take what each has.
			if _, err = l.Lock(db, counterID, n, LockAll); err != nil {
				return nil, false, 0, err
			}
		}
	}
	takes, left := l.Plan(counterID, n)
	if takes == nil {
		return nil, false, left, nil
	}
	for _, t := range takes {
		res := tx.Exec(`UPDATE inv_counter_shards SET `+col+` = `+col+` + ? WHERE counter_id = ? AND shard = ? AND capacity - held - sold >= ?`,
			t.Quantity, counterID, t.Shard, t.Quantity)
		if res.Error != nil {
			return nil, false, 0, res.Error
		}
		if res.RowsAffected != 1 { // impossible under the lock; refuse rather than guess
			return nil, false, 0, nil
		}
		allocs = append(allocs, Alloc{CounterID: counterID, Shard: t.Shard, Quantity: t.Quantity})
	}
	l.Apply(takes)
	return allocs, true, 0, nil
}
