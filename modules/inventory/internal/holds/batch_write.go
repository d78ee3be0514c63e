package holds

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"marquee/app"
	"marquee/modules/inventory/internal/stock"
)

// A batch's writing statement: every grant of the batch in one round trip.

// batchWrite is every row a batch writes, in the shapes its one statement
// reads (JSON records).
type batchWrite struct {
	eventID  uuid.UUID
	seats    []seatWrite
	shardIdx map[stock.ShardKey]int
	shardsW  []shardWrite
	holds    []holdWrite
	lines    []lineWrite
	allocs   []allocWrite
	keys     string // app.KeyRecords of the granted requests' keys
	keyCount int
}

type seatWrite struct {
	ID     string    `json:"id"`
	HoldID uuid.UUID `json:"hold_id"`
}

type shardWrite struct {
	CounterID uuid.UUID `json:"counter_id"`
	Shard     int       `json:"shard"`
	Quantity  int       `json:"quantity"`
}

type holdWrite struct {
	ID          uuid.UUID `json:"id"`
	BuyerID     string    `json:"buyer_id"`
	ClientIP    string    `json:"client_ip"`
	DeviceID    string    `json:"device_id"`
	IPCounted   bool      `json:"ip_counted"`
	Cart        bool      `json:"cart"`
	Channel     string    `json:"channel"`
	Quantity    int       `json:"quantity"`
	AmountMinor int64     `json:"amount_minor"`
	Currency    string    `json:"currency"`
	ExpiresAt   time.Time `json:"expires_at"`
}

type lineWrite struct {
	HoldID    uuid.UUID `json:"hold_id"`
	Line      int       `json:"line"`
	TierID    uuid.UUID `json:"tier_id"`
	ZoneID    uuid.UUID `json:"zone_id"`
	SeatID    *string   `json:"seat_id"`
	Quantity  int       `json:"quantity"`
	UnitPrice int64     `json:"unit_price_minor"`
}

type allocWrite struct {
	HoldID    uuid.UUID `json:"hold_id"`
	CounterID uuid.UUID `json:"counter_id"`
	Shard     int       `json:"shard"`
	Quantity  int       `json:"quantity"`
}

type subjectWrite struct {
	Subject string `json:"subject"`
	Holds   int    `json:"holds"`
	Units   int    `json:"units"`
}

// shardAdd sums takes per shard: one UPDATE may change a row only once.
func (w *batchWrite) shardAdd(t stock.Take) {
	if w.shardIdx == nil {
		w.shardIdx = map[stock.ShardKey]int{}
	}
	if i, ok := w.shardIdx[t.ShardKey]; ok {
		w.shardsW[i].Quantity += t.Quantity
		return
	}
	w.shardIdx[t.ShardKey] = len(w.shardsW)
	w.shardsW = append(w.shardsW, shardWrite{CounterID: t.Counter, Shard: t.Shard, Quantity: t.Quantity})
}

// batchWriteSQL writes a batch in one statement. Each change repeats its
// condition, and the counts it returns must equal the rows sent: otherwise
// something changed under the decision and the batch is rolled back.
var batchWriteSQL = `WITH
seats AS (UPDATE inv_seats s SET state = 'held', hold_id = (@seat_holds::uuid[])[array_position(@seat_ids::text[], s.id)]
	WHERE s.event_id = @event AND s.id = ANY(@seat_ids::text[]) AND s.state = 'available' RETURNING 1),
shards AS (UPDATE inv_counter_shards s SET held = s.held + (@shard_qty::int[])[array_position(@shard_keys::text[], s.counter_id::text || ':' || s.shard)]
	WHERE s.counter_id = ANY(@shard_counters::uuid[]) AND s.shard = ANY(@shard_nums::int[])
		AND s.capacity - s.held - s.sold >= (@shard_qty::int[])[array_position(@shard_keys::text[], s.counter_id::text || ':' || s.shard)]
	RETURNING 1),
buyers AS (INSERT INTO inv_buyer_counters AS c (event_id, subject, holds, units)
	SELECT @event::uuid, r.subject, r.holds, r.units FROM jsonb_to_recordset(@subjects::jsonb) AS r(subject text, holds int, units int)
	ON CONFLICT (event_id, subject) DO UPDATE SET holds = c.holds + EXCLUDED.holds, units = c.units + EXCLUDED.units
	WHERE c.holds + EXCLUDED.holds <= (CASE WHEN c.subject LIKE 'ip:%' OR c.subject LIKE 'dev:%' THEN @max_ip_holds::int ELSE @max_buyer_holds::int END)
		AND c.units + EXCLUDED.units <= @max_buyer_tickets::int
	RETURNING 1),
holds AS (INSERT INTO inv_holds (id, event_id, buyer_id, client_ip, device_id, ip_counted, cart, channel, status, quantity, amount_minor, currency, expires_at)
	SELECT r.id, @event::uuid, r.buyer_id, r.client_ip, r.device_id, r.ip_counted, r.cart, r.channel, 'active', r.quantity, r.amount_minor, r.currency, r.expires_at
	FROM jsonb_to_recordset(@holds::jsonb) AS r(id uuid, buyer_id text, client_ip text, device_id text, ip_counted boolean, cart boolean, channel text,
		quantity int, amount_minor bigint, currency text, expires_at timestamptz)
	RETURNING 1),
lines AS (INSERT INTO inv_hold_lines (hold_id, line, tier_id, zone_id, seat_id, quantity, unit_price_minor)
	SELECT r.hold_id, r.line, r.tier_id, r.zone_id, r.seat_id, r.quantity, r.unit_price_minor
	FROM jsonb_to_recordset(@lines::jsonb) AS r(hold_id uuid, line int, tier_id uuid, zone_id uuid, seat_id text, quantity int, unit_price_minor bigint)
	RETURNING 1),
allocs AS (INSERT INTO inv_hold_allocs (hold_id, counter_id, shard, quantity)
	SELECT r.hold_id, r.counter_id, r.shard, r.quantity FROM jsonb_to_recordset(@allocs::jsonb) AS r(hold_id uuid, counter_id uuid, shard int, quantity int)
	RETURNING 1),
keys AS (` + bindOne(app.StoreKeysSQL, "@keys") + `)
SELECT (SELECT count(*) FROM seats) AS seats, (SELECT count(*) FROM shards) AS shards, (SELECT count(*) FROM buyers) AS buyers,
	(SELECT count(*) FROM holds) AS holds, (SELECT count(*) FROM lines) AS lines, (SELECT count(*) FROM allocs) AS allocs, (SELECT count(*) FROM keys) AS keys`

func (w *batchWrite) apply(tx *batchTx, cfg *batchConfig, st *batchState) error {
	var subjects []subjectWrite
	for _, subject := range slices.Sorted(maps.Keys(st.subjects)) {
		c := st.subjects[subject]
		if c.addHolds > 0 {
			subjects = append(subjects, subjectWrite{Subject: subject, Holds: c.addHolds, Units: c.addUnits})
		}
	}
	// Seats and shards are addressed by key arrays (= ANY): the same plan,
	// an index probe per key, serves every batch.
	seatIDs, seatHolds := make([]string, len(w.seats)), make([]string, len(w.seats))
	for i, st := range w.seats {
		seatIDs[i], seatHolds[i] = st.ID, st.HoldID.String()
	}
	shardKeys, shardCounters := make([]string, len(w.shardsW)), make([]string, len(w.shardsW))
	shardNums, shardQty := make([]int, len(w.shardsW)), make([]int, len(w.shardsW))
	for i, sh := range w.shardsW {
		shardKeys[i] = fmt.Sprintf("%s:%d", sh.CounterID, sh.Shard)
		shardCounters[i], shardNums[i], shardQty[i] = sh.CounterID.String(), sh.Shard, sh.Quantity
	}
	named := pgx.NamedArgs{"seat_ids": seatIDs, "seat_holds": seatHolds, "shard_keys": shardKeys, "shard_counters": shardCounters,
		"shard_nums": shardNums, "shard_qty": shardQty, "event": w.eventID, "max_ip_holds": cfg.settings.MaxIPHolds, "max_buyer_holds": cfg.settings.MaxBuyerHolds,
		"max_buyer_tickets": cfg.settings.MaxBuyerTickets}
	for name, rows := range map[string]any{"subjects": subjects, "holds": w.holds, "lines": w.lines, "allocs": w.allocs} {
		raw, err := json.Marshal(rows)
		if err != nil {
			return err
		}
		if string(raw) == "null" {
			raw = []byte("[]")
		}
		named[name] = string(raw)
	}
	named["keys"] = w.keys
	var got struct{ Seats, Shards, Buyers, Holds, Lines, Allocs, Keys int }
	rs, err := tx.query(batchWriteSQL, named)
	if err != nil {
		return cartRaced(err)
	}
	if rs.Next() {
		err = rs.Scan(&got.Seats, &got.Shards, &got.Buyers, &got.Holds, &got.Lines, &got.Allocs, &got.Keys)
	}
	rs.Close()
	if err = errors.Join(err, rs.Err()); err != nil {
		return cartRaced(err)
	}
	if got.Seats != len(w.seats) || got.Shards != len(w.shardsW) || got.Buyers != len(subjects) || got.Holds != len(w.holds) ||
		got.Lines != len(w.lines) || got.Allocs != len(w.allocs) || got.Keys != w.keyCount {
		return errBatchDisagrees
	}
	return nil
}

// cartRaced turns the one-cart index's refusal into a disagreement: another
// batch (another worker or instance) made this buyer's cart since this one
// read, and the request, run again, joins it.
func cartRaced(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" && pe.ConstraintName == "inv_holds_one_cart" {
		return errBatchDisagrees
	}
	return err
}
