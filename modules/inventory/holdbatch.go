package inventory

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"marquee/app"
	"marquee/tenants"
)

// Holds are made in batches (group commit). Every hold request of an event
// joins its event's queue; a few workers per event and instance each take
// everything queued and decide it in one transaction: lock what the batch
// touches (seats, counter shards, buyer counters, in the global lock order),
// decide each request in arrival order against the locked state, then write
// every winner with one statement and commit once. A lone request is a batch
// of one and waits for nothing; under an on-sale's load a batch costs about
// the same ten statements whether it holds one seat or sixty, which is what
// lets the hold path keep up with the conditional UPDATE it rests on.
//
// Each request stays all-or-nothing on its own: a request that cannot be
// served changes nothing and does not affect its batch. The database keeps
// the last word: the writing statement repeats every condition (seat still
// available, shard has room, buyer under the limit) and the batch rolls back
// and is rerun one request at a time if any row disagrees with the decision.

const (
	// maxHoldBatch bounds one batch (and so one writing statement).
	maxHoldBatch = 64
	// holdWorkersPerEvent lets one batch run while the next one forms.
	holdWorkersPerEvent = 2
	// maxPendingHolds bounds one event's queue; beyond it requests are shed
	// with 503 (the HTTP layer stops counting requests parked here).
	maxPendingHolds = 2048
	// holdBatchTimeout bounds one batch's transaction; it does not follow
	// any one caller's context, so a buyer who hangs up cannot abort others.
	holdBatchTimeout = 15 * time.Second
)

// batchFault, when set (by tests only), runs inside each batch's open
// transaction after its first statement: it lets a test make a batch fail
// the way a bug would.
var batchFault atomic.Pointer[func(event uuid.UUID)]

// holdJob is one validated hold request waiting for its batch.
type holdJob struct {
	ctx  context.Context
	ev   app.EventInfo
	req  HoldRequest
	done chan holdOutcome // buffered: a worker never waits for a caller
}

type holdOutcome struct {
	hold     Hold
	replayed bool
	err      error
}

// settle answers the request from what its idempotency key holds: a refusal
// or a stored hold to replay. It reports false when the key holds nothing
// and the work is still to be done (the outcome is then left as it was).
func (o *holdOutcome) settle(f app.KeyLookup) bool {
	switch {
	case f.Err != nil:
		*o = holdOutcome{err: f.Err}
	case f.Replay != nil:
		*o = holdOutcome{replayed: true}
		o.err = json.Unmarshal(f.Replay, &o.hold)
	default:
		return false
	}
	return true
}

// holdQueue is one event's requests not yet taken by a worker. It lives in
// Service.holdQueues while it has work: the last worker to find it empty
// retires it, so events long past cost no memory.
type holdQueue struct {
	key     string
	mu      sync.Mutex
	pending []*holdJob
	workers int
	retired bool
}

// lockedHoldQueue returns the event's live queue, locked.
func (s *Service) lockedHoldQueue(key string) *holdQueue {
	for {
		v, _ := s.holdQueues.LoadOrStore(key, &holdQueue{key: key})
		q := v.(*holdQueue)
		q.mu.Lock()
		if !q.retired {
			return q
		}
		// Retired between the load and the lock; it is leaving the map.
		q.mu.Unlock()
	}
}

// submitHold queues a request and waits for its outcome. A caller that gives
// up (its context ends) is answered with its context's error; if its batch
// had already begun, the hold may exist and lapses at its expiry (a retry
// with the same Idempotency-Key gets it back).
func (s *Service) submitHold(ctx context.Context, t tenants.Tenant, ev app.EventInfo, req HoldRequest) (holdOutcome, error) {
	job := &holdJob{ctx: ctx, ev: ev, req: req, done: make(chan holdOutcome, 1)}
	q := s.lockedHoldQueue(eventKey(t, ev.ID))
	if len(q.pending) >= maxPendingHolds {
		q.mu.Unlock()
		return holdOutcome{}, errHoldsBusy
	}
	q.pending = append(q.pending, job)
	start := q.workers < holdWorkersPerEvent
	if start {
		q.workers++
	}
	q.mu.Unlock()
	if start {
		go s.drainHolds(t, q)
	}
	select {
	case out := <-job.done:
		return out, out.err
	case <-ctx.Done():
		return holdOutcome{}, ctx.Err()
	}
}

// drainHolds runs batches until the queue is empty.
func (s *Service) drainHolds(t tenants.Tenant, q *holdQueue) {
	for {
		q.mu.Lock()
		n := min(len(q.pending), maxHoldBatch)
		if n == 0 {
			q.workers--
			if q.workers == 0 {
				q.retired = true
				s.holdQueues.CompareAndDelete(q.key, q)
			}
			q.mu.Unlock()
			return
		}
		batch := slices.Clone(q.pending[:n])
		q.pending = slices.Delete(q.pending, 0, n)
		q.mu.Unlock()

		live := batch[:0]
		for _, j := range batch {
			if j.ctx.Err() != nil {
				j.done <- holdOutcome{err: j.ctx.Err()}
				continue
			}
			live = append(live, j)
		}
		if len(live) > 0 {
			s.runHoldBatch(t, live)
		}
	}
}

// errHoldsBusy refuses a hold the server cannot take on now.
var errHoldsBusy = app.Unavailable("overloaded", time.Second, "too many holds at once for this event; retry shortly")

// errBatchDisagrees says the writing statement found a row that no longer
// matches the batch's decision (a new buyer counter or an idempotency key
// written meanwhile by another instance): the batch is rolled back.
var errBatchDisagrees = errors.New("hold batch: a row changed under the decision")

// runHoldBatch decides and writes one batch and answers its callers. A batch
// that fails as a whole (a database error, or a row that disagrees) is rerun
// one request at a time, so one request's trouble never fails another.
func (s *Service) runHoldBatch(t tenants.Tenant, jobs []*holdJob) {
	// A bug here must not take the process down with a request's worth of
	// state: the callers not yet answered get a 500, the worker goes on.
	defer func() {
		if r := recover(); r != nil {
			s.app.Log.Error("hold batch panicked", "tenant", t.Slug, "holds", len(jobs), "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			for _, j := range jobs {
				select {
				case j.done <- holdOutcome{err: errors.New("hold batch failed")}:
				default: // answered already
				}
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), holdBatchTimeout)
	defer cancel()
	var outs []holdOutcome
	var fx batchEffects
	var err error
	lockAll := false
	for attempt := 0; attempt < 4; attempt++ {
		err = s.batchTx(ctx, t, func(tx *batchTx) error {
			var e error
			outs, fx, e = s.holdBatchTx(tx, jobs, lockAll)
			return e
		})
		if errors.Is(err, errNeedAllShards) {
			lockAll = true
			continue
		}
		if err == nil || len(jobs) > 1 || !errors.Is(err, errBatchDisagrees) {
			break
		}
		// Alone and disagreeing: the other writer has committed now, and a
		// second look sees it (a replay, or a buyer now over the limit).
	}
	if err == nil {
		s.batchSizes.Observe(float64(len(jobs)))
	}
	if err != nil && len(jobs) > 1 {
		s.app.Log.Warn("hold batch rerun one request at a time", "tenant", t.Slug, "holds", len(jobs), "err", err)
		for _, j := range jobs {
			s.runHoldBatch(t, []*holdJob{j})
		}
		return
	}
	if err != nil {
		if errors.Is(err, errBatchDisagrees) {
			err = errHoldsBusy
		}
		jobs[0].done <- holdOutcome{err: err}
		return
	}
	// Effects outside the database, once per batch: one expiry task for
	// the batch's holds (they share their expiry time; the sweeper catches
	// any the task misses), queued before anyone is answered; then, after
	// the answers, one live update. The worker takes its next batch only
	// then, which lets that batch fill.
	if len(fx.created) > 0 {
		s.scheduleExpiry(ctx, t, fx.created, fx.expiresAt)
	}
	for i, j := range jobs {
		j.done <- outs[i]
	}
	if len(fx.created) > 0 {
		s.changed(ctx, t, jobs[0].ev.ID, seatStates(fx.seats, SeatHeld))
	}
}

// batchEffects is what a committed batch must tell the world.
type batchEffects struct {
	created   []uuid.UUID
	expiresAt time.Time
	seats     []string
}

// batchConfig is what a batch learns from its first statement: the event's
// settings and tiers, its buyers' counters (not locked: the writing
// statement's conditional upsert has the last word), what is stored under
// its requests' idempotency keys, and the requested seats still available
// (locked).
type batchConfig struct {
	settings  Settings
	quotas    map[string]uuid.UUID // channel → quota counter
	tiers     []tierRow
	dbNow     time.Time
	buyers    map[string][2]int    // subject → holds, units
	keys      []app.KeyLookup      // per job
	freeSeats map[string]uuid.UUID // requested seats still available, locked → zone
}

// batchSubjects names the buyer counters the asked requests may change
// (each buyer's, and each address's, used only if the event limits them),
// and the seats they ask for.
func batchSubjects(jobs []*holdJob, asked []bool) (subjects, seats []string) {
	subjectSet, seatSet := map[string]bool{}, map[string]bool{}
	for i, j := range jobs {
		if asked[i] {
			subjectSet["b:"+j.req.BuyerID] = true
			if j.req.ClientIP != "" {
				subjectSet["ip:"+j.req.ClientIP] = true
			}
			for _, id := range j.req.Seats {
				seatSet[id] = true
			}
		}
	}
	return slices.Sorted(maps.Keys(subjectSet)), slices.Sorted(maps.Keys(seatSet))
}

func readBatchConfig(tx *batchTx, eventID uuid.UUID, subjects, seats []string, keys []*app.IdempotencyKey) (*batchConfig, error) {
	subjectsJSON, err := json.Marshal(append([]string{}, subjects...))
	if err != nil {
		return nil, err
	}
	seatsJSON, err := json.Marshal(append([]string{}, seats...)) // [] rather than null
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
	c := &batchConfig{quotas: map[string]uuid.UUID{}, buyers: map[string][2]int{}, freeSeats: map[string]uuid.UUID{}}
	var quotas, buyers, found, free *string
	rs, err := tx.query(batchConfigSQL, eventID, eventID, string(subjectsJSON), slots, eventID, string(seatsJSON), eventID)
	if err == nil {
		for rs.Next() {
			var tr tierRow
			st := &c.settings
			if err = rs.Scan(&st.EventID, &st.VenueID, &st.Capacity, &st.HoldMinutes, &st.MaxBuyerHolds, &st.MaxBuyerTickets, &st.MaxIPHolds,
				&quotas, &buyers, &found, &free, &tr.ID, &tr.ZoneID, &tr.Name, &tr.PriceMinor, &tr.Currency,
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
	}{{quotas, &c.quotas}, {buyers, &c.buyers}, {free, &c.freeSeats}} {
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
var batchConfigSQL = dollars(`SELECT e.event_id, e.venue_id, e.capacity, e.hold_minutes, e.max_buyer_holds, e.max_buyer_tickets, e.max_ip_holds,
			(SELECT json_object_agg(c.channel, c.id) FROM inv_counters c WHERE c.event_id = ? AND c.kind = 'quota') AS quotas,
			(SELECT json_object_agg(b.subject, json_build_array(b.holds, b.units)) FROM inv_buyer_counters b
				WHERE b.event_id = ? AND b.subject = ANY(ARRAY(SELECT jsonb_array_elements_text(?::jsonb)))) AS buyers,
			(` + app.LookupKeysSQL + `) AS found_keys,
			(SELECT json_object_agg(l.id, l.zone_id) FROM (SELECT s.id, s.zone_id FROM inv_seats s
				WHERE s.event_id = ? AND s.id = ANY(ARRAY(SELECT jsonb_array_elements_text(?::jsonb))) AND s.state = 'available'
				ORDER BY s.id FOR UPDATE) l) AS free_seats,
			t.id, t.zone_id, t.name, t.price_minor, t.currency, t.sale_starts, t.sale_ends, t.max_per_order, t.sort,
			z.kind AS zone_kind, z.name AS zone_name, p.id AS pool_id, now() AS db_now
		FROM inv_events e JOIN inv_tiers t ON t.event_id = e.event_id JOIN inv_zones z ON z.id = t.zone_id
		LEFT JOIN inv_counters p ON p.zone_id = t.zone_id AND p.kind = 'pool'
		WHERE e.event_id = ? ORDER BY t.sort`)

// shardKey names one shard of a counter.
type shardKey struct {
	counter uuid.UUID
	shard   int
}

// batchState is the locked state a batch decides against, updated as each
// request is granted.
type batchState struct {
	freeSeats map[string]uuid.UUID // available seat → its zone
	shards    map[uuid.UUID][]int  // counter → its shards in order
	free      map[shardKey]int     // units left in a shard
	subjects  map[string]*subjectCount
}

type subjectCount struct {
	holds, units       int // as read
	addHolds, addUnits int // granted by this batch
}

// holdBatchTx decides and writes a batch inside one transaction. It returns
// each job's outcome, in order; an error fails the whole batch.
func (s *Service) holdBatchTx(tx *batchTx, jobs []*holdJob, lockAll bool) ([]holdOutcome, batchEffects, error) {
	outs := make([]holdOutcome, len(jobs))
	var fx batchEffects
	eventID := jobs[0].ev.ID

	// A key twice in one batch follows its first request.
	keys := make([]*app.IdempotencyKey, len(jobs))
	firstWithKey := map[string]int{}
	follows := make([]int, len(jobs))
	for i, j := range jobs {
		follows[i] = -1
		k := j.req.Key
		if k == nil {
			continue
		}
		if f, ok := firstWithKey[k.Slot()]; ok {
			follows[i] = f
			if !k.SameRequest(jobs[f].req.Key) {
				outs[i].err = app.ErrKeyReused
			}
			continue
		}
		firstWithKey[k.Slot()] = i
		keys[i] = k
	}
	asked := make([]bool, len(jobs))
	for i := range jobs {
		asked[i] = follows[i] < 0
	}
	subjects, seats := batchSubjects(jobs, asked)
	cfg, err := readBatchConfig(tx, eventID, subjects, seats, keys)
	if err != nil {
		return nil, fx, err
	}
	if f := batchFault.Load(); f != nil {
		(*f)(eventID)
	}
	if cfg == nil {
		for i := range outs {
			outs[i].err = app.NotFoundCode("no_inventory", "this event has no tickets configured")
		}
		return outs, fx, nil
	}
	todo := make([]bool, len(jobs))
	for i, f := range cfg.keys {
		if follows[i] < 0 && !outs[i].settle(f) {
			todo[i] = true // nothing stored under its key: to decide
		}
	}
	st, err := lockBatchState(tx, eventID, cfg, jobs, todo, lockAll)
	if err != nil {
		return nil, fx, err
	}
	w := &batchWrite{eventID: eventID}
	fx.expiresAt = cfg.dbNow.Add(time.Duration(cfg.settings.HoldMinutes) * time.Minute)
	var storeKeys []*app.IdempotencyKey
	var storeIdx []int
	now := s.now()
	for i, j := range jobs {
		if !todo[i] {
			continue
		}
		h, err := st.grant(cfg, j.req, eventID, now, fx.expiresAt, w)
		if err != nil {
			outs[i].err = err
			continue
		}
		outs[i].hold = h
		fx.created = append(fx.created, h.ID)
		fx.seats = append(fx.seats, h.Seats...)
		if j.req.Key != nil {
			storeKeys = append(storeKeys, j.req.Key)
			storeIdx = append(storeIdx, i)
		}
	}
	// Keys were looked up before the locks. A retry of a request that a
	// concurrent batch has just served finds that batch's rows taken once
	// it holds the locks: before refusing it, look its key up again (the
	// other batch has committed by now) and replay the hold instead.
	var again []*app.IdempotencyKey
	var againIdx []int
	for i, j := range jobs {
		if todo[i] && outs[i].err != nil && j.req.Key != nil {
			again, againIdx = append(again, j.req.Key), append(againIdx, i)
		}
	}
	if len(again) > 0 {
		found, err := tx.lookupKeys(again)
		if err != nil {
			return nil, fx, err
		}
		for n, f := range found {
			outs[againIdx[n]].settle(f)
		}
	}
	for i, f := range follows {
		if f >= 0 && outs[i].err == nil {
			outs[i] = outs[f]
			outs[i].replayed = outs[f].err == nil
		}
	}
	if len(fx.created) == 0 {
		return outs, fx, nil
	}
	responses := make([][]byte, len(storeKeys))
	for n, i := range storeIdx {
		if responses[n], err = json.Marshal(outs[i].hold); err != nil {
			return nil, fx, err
		}
	}
	if w.keys, err = app.KeyRecords(storeKeys, responses); err != nil {
		return nil, fx, err
	}
	w.keyCount = len(storeKeys)
	if err := w.apply(tx, cfg, st); err != nil {
		return nil, fx, err
	}
	return outs, fx, nil
}

// lockBatchState locks the shards the batch's requests could take from
// (pools, then quotas: the global lock order continues after the seats the
// first statement locked) and gathers the state the batch decides against.
func lockBatchState(tx *batchTx, eventID uuid.UUID, cfg *batchConfig, jobs []*holdJob, todo []bool, lockAll bool) (*batchState, error) {
	st := &batchState{freeSeats: cfg.freeSeats, shards: map[uuid.UUID][]int{}, free: map[shardKey]int{}, subjects: map[string]*subjectCount{}}
	demand := map[uuid.UUID]int{} // units the batch could take from a counter
	subjectSet := map[string]bool{}
	for i, j := range jobs {
		if !todo[i] {
			continue
		}
		if j.req.TierID != nil {
			if tr, ok := findTier(cfg.tiers, *j.req.TierID); ok && tr.PoolID != nil && len(j.req.Seats) == 0 {
				demand[*tr.PoolID] += j.req.Quantity
			}
		}
		if q, ok := cfg.quotas[j.req.Channel]; ok {
			demand[q] += max(len(j.req.Seats), j.req.Quantity)
		}
		subjectSet["b:"+j.req.BuyerID] = true
		if cfg.settings.MaxIPHolds > 0 && j.req.ClientIP != "" {
			subjectSet["ip:"+j.req.ClientIP] = true
		}
	}
	if err := st.lockShards(tx, cfg, demand, lockAll); err != nil {
		return nil, err
	}
	for subject := range subjectSet {
		c := cfg.buyers[subject]
		st.subjects[subject] = &subjectCount{holds: c[0], units: c[1]}
	}
	return st, nil
}

type shardFree struct{ Shard, Free int }

var (
	lockAllShardsSQL = dollars(`SELECT shard, capacity - held - sold AS free FROM inv_counter_shards WHERE counter_id = ? ORDER BY shard FOR UPDATE`)
	lockOneShardSQL  = dollars(`SELECT shard, capacity - held - sold AS free FROM inv_counter_shards
		WHERE counter_id = ? AND capacity - held - sold >= ?
		ORDER BY (shard + ?) % 256 LIMIT 1 FOR UPDATE SKIP LOCKED`)
)

// errNeedAllShards says the shards a batch could lock without waiting hold
// fewer units than it may need: it is run again waiting for every shard.
var errNeedAllShards = errors.New("hold batch: unlocked shards too small")

// lockShards locks counter shards for a batch. Normally it takes, without
// waiting (SKIP LOCKED), one shard of each counter with room for the whole
// batch, starting at a random one, so concurrent batches (of other workers
// and instances) each find a shard of their own. If no free shard has that
// much room (a counter nearly sold out, or busy), it reports
// errNeedAllShards; run with lockAll, it waits for every shard, in order.
func (st *batchState) lockShards(tx *batchTx, cfg *batchConfig, demand map[uuid.UUID]int, lockAll bool) error {
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
	for _, id := range counters {
		var shards []shardFree
		q, args := lockAllShardsSQL, []any{id}
		if !lockAll {
			q, args = lockOneShardSQL, []any{id, demand[id], rand.IntN(256)}
		}
		rs, err := tx.query(q, args...)
		if err != nil {
			return err
		}
		for rs.Next() {
			var sh shardFree
			if err = rs.Scan(&sh.Shard, &sh.Free); err != nil {
				break
			}
			shards = append(shards, sh)
		}
		rs.Close()
		if err = errors.Join(err, rs.Err()); err != nil {
			return err
		}
		total := 0
		for _, sh := range shards {
			st.shards[id] = append(st.shards[id], sh.Shard)
			st.free[shardKey{id, sh.Shard}] = sh.Free
			total += sh.Free
		}
		if !lockAll && total < demand[id] {
			return errNeedAllShards
		}
	}
	return nil
}

// grant decides one request against the batch's state. Granted, it takes
// what it holds out of the state and adds its rows to w; refused, it leaves
// both as they were and says why.
func (st *batchState) grant(cfg *batchConfig, req HoldRequest, eventID uuid.UUID, now, expiresAt time.Time, w *batchWrite) (Hold, error) {
	h := Hold{ID: uuid.Must(uuid.NewV7()), EventID: eventID, Status: HoldActive, Channel: req.Channel, BuyerID: req.BuyerID,
		Seats: []string{}, ExpiresAt: expiresAt}
	var lines []HoldLine
	var take []shardTake
	if len(req.Seats) > 0 {
		ids := slices.Clone(req.Seats)
		slices.Sort(ids)
		var missing []string
		for _, id := range ids {
			if _, ok := st.freeSeats[id]; !ok {
				missing = append(missing, id)
			}
		}
		if len(missing) > 0 {
			return Hold{}, errSeatsUnavailable(missing)
		}
		perTier := map[uuid.UUID]int{}
		for i, id := range ids {
			tr, err := seatTier(cfg.tiers, st.freeSeats[id], req.TierID, now)
			if err != nil {
				return Hold{}, err
			}
			perTier[tr.ID]++
			if perTier[tr.ID] > tr.MaxPerOrder {
				return Hold{}, invalid("seats", "at most %d %s tickets in one order", tr.MaxPerOrder, tr.Name)
			}
			seat := id
			lines = append(lines, HoldLine{TierID: tr.ID, ZoneID: tr.ZoneID, SeatID: &seat, Quantity: 1, UnitPrice: tr.PriceMinor,
				TierName: tr.Name, ZoneName: tr.ZoneName, lineNumber: i + 1})
			h.Seats = append(h.Seats, seat)
		}
	} else {
		tr, ok := findTier(cfg.tiers, *req.TierID)
		switch {
		case !ok:
			return Hold{}, app.NotFound("tier")
		case tr.ZoneKind != KindGA || tr.PoolID == nil:
			return Hold{}, invalid("tier_id", "tier %s sells reserved seats: hold seats by id", tr.Name)
		case !tr.OnSale(now):
			return Hold{}, errNotOnSale("tier " + tr.Name + " is not on sale now")
		case req.Quantity > tr.MaxPerOrder:
			return Hold{}, invalid("quantity", "at most %d %s tickets in one order", tr.MaxPerOrder, tr.Name)
		}
		got, left := st.plan(*tr.PoolID, req.Quantity)
		if got == nil {
			return Hold{}, errSoldOut(tr.ZoneName+" tickets", left)
		}
		take = got
		lines = append(lines, HoldLine{TierID: tr.ID, ZoneID: tr.ZoneID, Quantity: req.Quantity, UnitPrice: tr.PriceMinor,
			TierName: tr.Name, ZoneName: tr.ZoneName, lineNumber: 1})
	}
	for _, l := range lines {
		h.Quantity += l.Quantity
		h.AmountMinor += l.UnitPrice * int64(l.Quantity)
		if h.Currency == "" {
			h.Currency = tierCurrency(cfg.tiers, l.TierID)
		} else if h.Currency != tierCurrency(cfg.tiers, l.TierID) {
			return Hold{}, invalid("seats", "one hold cannot mix currencies")
		}
	}
	if q, ok := cfg.quotas[req.Channel]; ok {
		got, _ := st.plan(q, h.Quantity)
		if got == nil {
			return Hold{}, errQuota(req.Channel)
		}
		take = append(take, got...)
	}
	set := cfg.settings
	if h.Quantity > set.MaxBuyerTickets {
		return Hold{}, errHoldLimit(fmt.Sprintf("at most %d tickets per buyer for this event", set.MaxBuyerTickets))
	}
	buyer := st.subjects["b:"+req.BuyerID]
	if buyer.holds+buyer.addHolds+1 > set.MaxBuyerHolds || buyer.units+buyer.addUnits+h.Quantity > set.MaxBuyerTickets {
		return Hold{}, errHoldLimit(fmt.Sprintf("a buyer may keep %d holds and %d tickets for this event", set.MaxBuyerHolds, set.MaxBuyerTickets))
	}
	ipCounted := set.MaxIPHolds > 0 && req.ClientIP != ""
	var ip *subjectCount
	if ipCounted {
		ip = st.subjects["ip:"+req.ClientIP]
		if ip.holds+ip.addHolds+1 > set.MaxIPHolds {
			return Hold{}, errHoldLimit(fmt.Sprintf("too many active holds from your network for this event (%d)", set.MaxIPHolds))
		}
	}

	// Granted: take it out of the state and write it.
	buyer.addHolds++
	buyer.addUnits += h.Quantity
	if ip != nil {
		ip.addHolds++
	}
	for _, id := range h.Seats {
		delete(st.freeSeats, id)
		w.seats = append(w.seats, seatWrite{ID: id, HoldID: h.ID})
	}
	for _, t := range take {
		st.free[t.shardKey] -= t.quantity
		w.shardAdd(t)
		w.allocs = append(w.allocs, allocWrite{HoldID: h.ID, CounterID: t.counter, Shard: t.shard, Quantity: t.quantity})
	}
	w.holds = append(w.holds, holdWrite{ID: h.ID, BuyerID: req.BuyerID, ClientIP: req.ClientIP, IPCounted: ipCounted, Channel: req.Channel,
		Quantity: h.Quantity, AmountMinor: h.AmountMinor, Currency: h.Currency, ExpiresAt: expiresAt})
	for _, l := range lines {
		w.lines = append(w.lines, lineWrite{HoldID: h.ID, Line: l.lineNumber, TierID: l.TierID, ZoneID: l.ZoneID, SeatID: l.SeatID,
			Quantity: l.Quantity, UnitPrice: l.UnitPrice})
	}
	h.Lines = lines
	return h, nil
}

// shardTake is units planned out of one shard.
type shardTake struct {
	shardKey
	quantity int
}

// plan finds n units of a counter in the batch's state, spread over as few
// shards as it can: the first shard with room for all, else shard by shard.
// nil means not enough, with how many are left.
func (st *batchState) plan(counter uuid.UUID, n int) ([]shardTake, int) {
	free := func(k shardKey) int { return st.free[k] }
	total := 0
	for _, sh := range st.shards[counter] {
		k := shardKey{counter, sh}
		if free(k) >= n {
			return []shardTake{{k, n}}, 0
		}
		total += max(free(k), 0)
	}
	if total < n {
		return nil, total
	}
	var out []shardTake
	for _, sh := range st.shards[counter] {
		k := shardKey{counter, sh}
		if q := min(free(k), n); q > 0 {
			out = append(out, shardTake{k, q})
			n -= q
		}
		if n == 0 {
			break
		}
	}
	return out, 0
}

// batchWrite is every row a batch writes, in the shapes its one statement
// reads (JSON records).
type batchWrite struct {
	eventID  uuid.UUID
	seats    []seatWrite
	shardIdx map[shardKey]int
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
	IPCounted   bool      `json:"ip_counted"`
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
func (w *batchWrite) shardAdd(t shardTake) {
	if w.shardIdx == nil {
		w.shardIdx = map[shardKey]int{}
	}
	if i, ok := w.shardIdx[t.shardKey]; ok {
		w.shardsW[i].Quantity += t.quantity
		return
	}
	w.shardIdx[t.shardKey] = len(w.shardsW)
	w.shardsW = append(w.shardsW, shardWrite{CounterID: t.counter, Shard: t.shard, Quantity: t.quantity})
}

// batchWriteSQL writes a batch in one statement. Each change repeats its
// condition, and the counts it returns must equal the rows sent: otherwise
// something changed under the decision and the batch is rolled back.
var batchWriteSQL = dollars(`WITH
seats AS (UPDATE inv_seats s SET state = 'held', hold_id = (?::uuid[])[array_position(?::text[], s.id)]
	WHERE s.event_id = ? AND s.id = ANY(?::text[]) AND s.state = 'available' RETURNING 1),
shards AS (UPDATE inv_counter_shards s SET held = s.held + (?::int[])[array_position(?::text[], s.counter_id::text || ':' || s.shard)]
	WHERE s.counter_id = ANY(?::uuid[]) AND s.shard = ANY(?::int[])
		AND s.capacity - s.held - s.sold >= (?::int[])[array_position(?::text[], s.counter_id::text || ':' || s.shard)]
	RETURNING 1),
buyers AS (INSERT INTO inv_buyer_counters AS c (event_id, subject, holds, units)
	SELECT ?::uuid, r.subject, r.holds, r.units FROM jsonb_to_recordset(?::jsonb) AS r(subject text, holds int, units int)
	ON CONFLICT (event_id, subject) DO UPDATE SET holds = c.holds + EXCLUDED.holds, units = c.units + EXCLUDED.units
	WHERE c.holds + EXCLUDED.holds <= (CASE WHEN c.subject LIKE 'ip:%' THEN ?::int ELSE ?::int END)
		AND c.units + EXCLUDED.units <= ?::int
	RETURNING 1),
holds AS (INSERT INTO inv_holds (id, event_id, buyer_id, client_ip, ip_counted, channel, status, quantity, amount_minor, currency, expires_at)
	SELECT r.id, ?::uuid, r.buyer_id, r.client_ip, r.ip_counted, r.channel, 'active', r.quantity, r.amount_minor, r.currency, r.expires_at
	FROM jsonb_to_recordset(?::jsonb) AS r(id uuid, buyer_id text, client_ip text, ip_counted boolean, channel text,
		quantity int, amount_minor bigint, currency text, expires_at timestamptz)
	RETURNING 1),
lines AS (INSERT INTO inv_hold_lines (hold_id, line, tier_id, zone_id, seat_id, quantity, unit_price_minor)
	SELECT r.hold_id, r.line, r.tier_id, r.zone_id, r.seat_id, r.quantity, r.unit_price_minor
	FROM jsonb_to_recordset(?::jsonb) AS r(hold_id uuid, line int, tier_id uuid, zone_id uuid, seat_id text, quantity int, unit_price_minor bigint)
	RETURNING 1),
allocs AS (INSERT INTO inv_hold_allocs (hold_id, counter_id, shard, quantity)
	SELECT r.hold_id, r.counter_id, r.shard, r.quantity FROM jsonb_to_recordset(?::jsonb) AS r(hold_id uuid, counter_id uuid, shard int, quantity int)
	RETURNING 1),
keys AS (` + app.StoreKeysSQL + `)
SELECT (SELECT count(*) FROM seats) AS seats, (SELECT count(*) FROM shards) AS shards, (SELECT count(*) FROM buyers) AS buyers,
	(SELECT count(*) FROM holds) AS holds, (SELECT count(*) FROM lines) AS lines, (SELECT count(*) FROM allocs) AS allocs, (SELECT count(*) FROM keys) AS keys`)

// batchWriteParams are batchWriteSQL's placeholders, in order.
var batchWriteParams = []string{"seat_holds", "seat_ids", "event", "seat_ids", "shard_qty", "shard_keys", "shard_counters", "shard_nums", "shard_qty", "shard_keys", "event", "subjects", "max_ip_holds", "max_buyer_holds", "max_buyer_tickets", "event", "holds", "lines", "allocs", "keys"}

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
	named := map[string]any{"seat_ids": seatIDs, "seat_holds": seatHolds, "shard_keys": shardKeys, "shard_counters": shardCounters,
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
	args := make([]any, len(batchWriteParams))
	for i, name := range batchWriteParams {
		args[i] = named[name]
	}
	var got struct{ Seats, Shards, Buyers, Holds, Lines, Allocs, Keys int }
	rs, err := tx.query(batchWriteSQL, args...)
	if err != nil {
		return err
	}
	if rs.Next() {
		err = rs.Scan(&got.Seats, &got.Shards, &got.Buyers, &got.Holds, &got.Lines, &got.Allocs, &got.Keys)
	}
	rs.Close()
	if err = errors.Join(err, rs.Err()); err != nil {
		return err
	}
	if got.Seats != len(w.seats) || got.Shards != len(w.shardsW) || got.Buyers != len(subjects) || got.Holds != len(w.holds) ||
		got.Lines != len(w.lines) || got.Allocs != len(w.allocs) || got.Keys != w.keyCount {
		return errBatchDisagrees
	}
	return nil
}

// batchTx is a hold batch's transaction: the door's pgx transaction
// (tenants.Pgx), whose BEGIN travels with the tenant scoping in one round
// trip and whose statements are prepared once per connection.
type batchTx struct {
	tx *tenants.Pgx
}

// batchTx runs fn in one transaction scoped to t, retrying it whole when
// PostgreSQL picks it as a deadlock or serialization victim.
func (s *Service) batchTx(ctx context.Context, t tenants.Tenant, fn func(tx *batchTx) error) error {
	return mapStoreError(s.app.PgxTx(ctx, t, s.retried(t), func(tx *tenants.Pgx) error { return fn(&batchTx{tx: tx}) }))
}

// query runs a statement in the transaction.
func (tx *batchTx) query(q string, args ...any) (pgx.Rows, error) {
	return tx.tx.Query(q, args...)
}

var lookupKeysSQL = dollars(app.LookupKeysSQL)

// lookupKeys reads what is stored under keys (app.LookupKeysSQL) in the
// batch's transaction.
func (tx *batchTx) lookupKeys(keys []*app.IdempotencyKey) ([]app.KeyLookup, error) {
	slots, err := app.KeySlots(keys)
	if err != nil {
		return nil, err
	}
	var found []byte
	if err := tx.tx.QueryRow(lookupKeysSQL, slots).Scan(&found); err != nil {
		return nil, err
	}
	return app.ParseKeyLookup(keys, found)
}

// dollars numbers a statement's ? placeholders ($1, $2, …), as pgx takes
// them; the statements here have no ? of their own.
func dollars(q string) string {
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
