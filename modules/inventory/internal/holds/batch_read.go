package holds

import (
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"marquee/app"
	"marquee/modules/inventory/internal/model"
	"marquee/modules/inventory/internal/stock"
)

// A batch's reading statement and its shard locks: what the batch decides
// against.

// batchConfig is what a batch learns from its first statement: the event's
// settings and tiers, its buyers' counters (not locked: the writing
// statement's conditional upsert has the last word), what is stored under
// its requests' idempotency keys, and the requested seats still available
// (locked).
type batchConfig struct {
	settings  model.Settings
	quotas    map[string]uuid.UUID // channel → quota counter
	tiers     []model.TierRow
	dbNow     time.Time
	buyers    map[string][2]int    // subject → holds, units
	keys      []app.KeyLookup      // per job
	freeSeats map[string]uuid.UUID // requested seats still available, locked → zone
	carts     map[string]uuid.UUID // buyer → their active cart of the event
}

// batchSubjects names the buyer counters the asked requests may change
// (each buyer's, and each address's, used only if the event limits them),
// the seats they ask for, and the buyers whose cart they would join.
func batchSubjects(reqs []HoldRequest, asked []bool) (subjects, seats, cartBuyers []string) {
	subjectSet, seatSet, cartSet := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for i, r := range reqs {
		if asked[i] {
			subjectSet["b:"+r.BuyerID] = true
			if client := model.ClientSubject(r.DeviceID, r.ClientIP); client != "" {
				subjectSet[client] = true
			}
			for _, id := range r.Seats {
				seatSet[id] = true
			}
			if r.isCart() {
				cartSet[r.BuyerID] = true
			}
		}
	}
	return slices.Sorted(maps.Keys(subjectSet)), slices.Sorted(maps.Keys(seatSet)), slices.Sorted(maps.Keys(cartSet))
}

func readBatchConfig(tx *batchTx, eventID uuid.UUID, subjects, seats, cartBuyers []string, keys []*app.IdempotencyKey) (*batchConfig, error) {
	subjectsJSON, err := json.Marshal(append([]string{}, subjects...))
	if err != nil {
		return nil, err
	}
	seatsJSON, err := json.Marshal(append([]string{}, seats...)) // [] rather than null
	if err != nil {
		return nil, err
	}
	cartsJSON, err := json.Marshal(append([]string{}, cartBuyers...))
	if err != nil {
		return nil, err
	}
	slots, err := app.KeySlots(keys)
	if err != nil {
		return nil, err
	}
	// Configure locks every seat and shard of an event before it replaces
	// anything, so a configuration read here that is replaced meanwhile
	// finds its rows gone and sells nothing.
	//
	// One statement, one round trip: the subqueries are uncorrelated, so
	// each runs once. The seats subquery locks the requested seats that are
	// still available, in seat id order (the first locks of the batch).
	// Each row is a tier; the event's facts repeat on every row.
	c := &batchConfig{quotas: map[string]uuid.UUID{}, buyers: map[string][2]int{}, freeSeats: map[string]uuid.UUID{}, carts: map[string]uuid.UUID{}}
	var quotas, buyers, found, free, carts *string
	rs, err := tx.query(batchConfigSQL, pgx.NamedArgs{"event": eventID, "subjects": string(subjectsJSON), "keys": slots, "seats": string(seatsJSON),
		"cart_buyers": string(cartsJSON)})
	if err == nil {
		for rs.Next() {
			var tr model.TierRow
			st := &c.settings
			if err = rs.Scan(&st.EventID, &st.VenueID, &st.Capacity, &st.HoldMinutes, &st.MaxBuyerHolds, &st.MaxBuyerTickets, &st.MaxIPHolds,
				&quotas, &buyers, &found, &free, &carts, &tr.ID, &tr.ZoneID, &tr.Name, &tr.PriceMinor, &tr.Currency,
				&tr.SaleStarts, &tr.SaleEnds, &tr.MaxPerOrder, &tr.Sort, &tr.ZoneKind, &tr.ZoneName, &tr.PoolID, &c.dbNow); err != nil {
				break
			}
			c.tiers = append(c.tiers, tr)
		}
		rs.Close()
		err = errors.Join(err, rs.Err())
	}
	if err != nil {
		return nil, err
	}
	if len(c.tiers) == 0 {
		return nil, nil
	}
	for _, field := range []struct {
		raw *string
		out any
	}{{quotas, &c.quotas}, {buyers, &c.buyers}, {free, &c.freeSeats}, {carts, &c.carts}} {
		if field.raw != nil {
			if err := json.Unmarshal([]byte(*field.raw), field.out); err != nil {
				return nil, err
			}
		}
	}
	var foundJSON []byte
	if found != nil {
		foundJSON = []byte(*found)
	}
	if c.keys, err = app.ParseKeyLookup(keys, foundJSON); err != nil {
		return nil, err
	}
	return c, nil
}

// batchConfigSQL is a batch's first statement (see readBatchConfig).
var batchConfigSQL = `SELECT e.event_id, e.venue_id, e.capacity, e.hold_minutes, e.max_buyer_holds, e.max_buyer_tickets, e.max_ip_holds,
			(SELECT json_object_agg(c.channel, c.id) FROM inv_counters c WHERE c.event_id = @event AND c.kind = 'quota') AS quotas,
			(SELECT json_object_agg(b.subject, json_build_array(b.holds, b.units)) FROM inv_buyer_counters b
				WHERE b.event_id = @event AND b.subject = ANY(ARRAY(SELECT jsonb_array_elements_text(@subjects::jsonb)))) AS buyers,
			(` + bindOne(app.LookupKeysSQL, "@keys") + `) AS found_keys,
			(SELECT json_object_agg(l.id, l.zone_id) FROM (SELECT s.id, s.zone_id FROM inv_seats s
				WHERE s.event_id = @event AND s.id = ANY(ARRAY(SELECT jsonb_array_elements_text(@seats::jsonb))) AND s.state = 'available'
				ORDER BY s.id FOR UPDATE) l) AS free_seats,
			(SELECT json_object_agg(h.buyer_id, h.id) FROM inv_holds h WHERE h.event_id = @event AND h.status = 'active' AND h.cart
				AND h.buyer_id = ANY(ARRAY(SELECT jsonb_array_elements_text(@cart_buyers::jsonb)))) AS carts,
			t.id, t.zone_id, t.name, t.price_minor + t.fee_minor, t.currency, t.sale_starts, t.sale_ends, t.max_per_order, t.sort,
			z.kind AS zone_kind, z.name AS zone_name, p.id AS pool_id, now() AS db_now
		FROM inv_events e JOIN inv_tiers t ON t.event_id = e.event_id JOIN inv_zones z ON z.id = t.zone_id
		LEFT JOIN inv_counters p ON p.zone_id = t.zone_id AND p.kind = 'pool'
		WHERE e.event_id = @event ORDER BY t.sort`

// lockBatchState locks the shards the batch's requests could take from
// (pools, then quotas: the global lock order continues after the seats the
// first statement locked) and gathers the state the batch decides against.
func lockBatchState(tx *batchTx, cfg *batchConfig, reqs []HoldRequest, todo []bool, lockAll bool) (*batchState, error) {
	demand, subjects := batchDemand(cfg, reqs, todo)
	st := newBatchState(cfg)
	if err := lockShards(tx, st.shards, cfg, demand, lockAll); err != nil {
		return nil, err
	}
	for _, subject := range subjects {
		c := cfg.buyers[subject]
		st.subjects[subject] = &subjectCount{holds: c[0], units: c[1]}
	}
	return st, nil
}

// errNeedAllShards says the shards a batch could lock without waiting hold
// fewer units than it may need: it is run again waiting for every shard.
var errNeedAllShards = errors.New("hold batch: unlocked shards too small")

// lockShards locks counter shards for a batch (take.go's first step, for
// the whole batch's demand). Normally it takes, without waiting (SKIP
// LOCKED), a quarter of each counter's shards that have room, starting at
// a random one, so concurrent batches (of other workers and instances)
// each find shards of their own, and the batch's holds are spread over
// several rows (their payments lock the rows they took from: one row per
// batch made a batch's payments queue on it). If the shards it could lock
// hold too few units for the batch (a counter nearly sold out, or busy),
// it reports errNeedAllShards; run with lockAll, it waits for every shard,
// in order.
func lockShards(tx stock.Querier, locked *stock.Locked, cfg *batchConfig, demand map[uuid.UUID]int, lockAll bool) error {
	counters := slices.Collect(maps.Keys(demand))
	quota := map[uuid.UUID]bool{}
	for _, id := range cfg.quotas {
		quota[id] = true
	}
	slices.SortFunc(counters, func(a, b uuid.UUID) int {
		if quota[a] != quota[b] { // pools before quotas: the lock order
			if quota[b] {
				return -1
			}
			return 1
		}
		return slices.Compare(a[:], b[:])
	})
	mode := stock.LockSpread
	if lockAll {
		mode = stock.LockAll
	}
	for _, id := range counters {
		total, err := locked.Lock(tx, id, demand[id], mode)
		if err != nil {
			return err
		}
		if !lockAll && total < demand[id] {
			return errNeedAllShards
		}
	}
	return nil
}
