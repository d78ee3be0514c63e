package holds

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"marquee/app"
	"marquee/modules/inventory/internal/model"
	"marquee/modules/inventory/internal/stock"
	"marquee/tenants"
)

// A batch runs in one pgx transaction; when it fails as a whole it is rerun
// (all shards locked, or one request at a time): this file.

// batchFault, when set (by tests only), runs inside each batch's open
// transaction after its first statement: it lets a test make a batch fail
// the way a bug would.
var batchFault atomic.Pointer[func(event uuid.UUID)]

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
			s.d.App.Log.Error("hold batch panicked", "tenant", t.Slug, "holds", len(jobs), "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
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
		s.d.App.Log.Warn("hold batch rerun one request at a time", "tenant", t.Slug, "holds", len(jobs), "err", err)
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
		s.stock.Changed(ctx, t, jobs[0].ev.ID, model.SeatStates(fx.seats, model.SeatHeld))
	}
}

// batchEffects is what a committed batch must tell the world.
type batchEffects struct {
	created   []uuid.UUID
	expiresAt time.Time
	seats     []string
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
	return s.d.PgxTx(ctx, t, func(tx *tenants.Pgx) error { return fn(&batchTx{tx: tx}) })
}

// query runs a statement with named arguments in the transaction.
func (tx *batchTx) query(q string, args pgx.NamedArgs) (pgx.Rows, error) {
	return tx.tx.Query(q, args)
}

// QueryShards runs a take's lock statement (stock.Querier).
func (tx *batchTx) QueryShards(q string, args pgx.NamedArgs) ([]stock.ShardFree, error) {
	rs, err := tx.query(q, args)
	if err != nil {
		return nil, err
	}
	var out []stock.ShardFree
	for rs.Next() {
		var sh stock.ShardFree
		if err = rs.Scan(&sh.Shard, &sh.Free); err != nil {
			break
		}
		out = append(out, sh)
	}
	rs.Close()
	return out, errors.Join(err, rs.Err())
}

// lookupKeysSQL is app.LookupKeysSQL with its argument named @keys.
var lookupKeysSQL = bindOne(app.LookupKeysSQL, "@keys")

// lookupKeys reads what is stored under keys (app.LookupKeysSQL) in the
// batch's transaction.
func (tx *batchTx) lookupKeys(keys []*app.IdempotencyKey) ([]app.KeyLookup, error) {
	slots, err := app.KeySlots(keys)
	if err != nil {
		return nil, err
	}
	var found []byte
	if err := tx.tx.QueryRow(lookupKeysSQL, pgx.NamedArgs{"keys": slots}).Scan(&found); err != nil {
		return nil, err
	}
	return app.ParseKeyLookup(keys, found)
}

// bindOne names the one ? placeholder of a statement the core shares
// (app.LookupKeysSQL, app.StoreKeysSQL), so it joins a statement with
// named arguments.
func bindOne(q, name string) string {
	if strings.Count(q, "?") != 1 {
		panic("inventory: statement does not have exactly one ? placeholder")
	}
	return strings.Replace(q, "?", name, 1)
}

// holdBatchTx decides and writes a batch inside one transaction: the
// reading statement (batch_read.go), the shard locks, the decision
// (batch_decide.go) and the writing statement (batch_write.go). It returns
// each job's outcome, in order; an error fails the whole batch.
func (s *Service) holdBatchTx(tx *batchTx, jobs []*holdJob, lockAll bool) ([]holdOutcome, batchEffects, error) {
	outs := make([]holdOutcome, len(jobs))
	var fx batchEffects
	eventID := jobs[0].ev.ID
	reqs := make([]HoldRequest, len(jobs))
	for i, j := range jobs {
		reqs[i] = j.req
	}

	// A key twice in one batch follows its first request.
	follows, keys := sameKeys(reqs, outs)
	asked := make([]bool, len(jobs))
	for i := range jobs {
		asked[i] = follows[i] < 0
	}
	subjects, seats, cartBuyers := batchSubjects(reqs, asked)
	cfg, err := readBatchConfig(tx, eventID, subjects, seats, cartBuyers, keys)
	if err != nil {
		return nil, fx, err
	}
	if f := batchFault.Load(); f != nil {
		(*f)(eventID)
	}
	if cfg == nil {
		for i := range outs {
			outs[i].err = model.ErrNoInventory()
		}
		return outs, fx, nil
	}
	todo := settleKeyed(outs, follows, cfg.keys)
	st, err := lockBatchState(tx, cfg, reqs, todo, lockAll)
	if err != nil {
		return nil, fx, err
	}
	fx.expiresAt = cfg.dbNow.Add(time.Duration(cfg.settings.HoldMinutes) * time.Minute)
	d := decide(cfg, st, reqs, todo, outs, eventID, s.d.Now(), fx.expiresAt)
	fx.created, fx.seats = d.created, d.seats
	// Keys were looked up before the locks. A retry of a request that a
	// concurrent batch has just served finds that batch's rows taken once
	// it holds the locks: before refusing it, look its key up again (the
	// other batch has committed by now) and replay the hold instead.
	if againIdx := refusedKeyed(reqs, todo, outs); len(againIdx) > 0 {
		again := make([]*app.IdempotencyKey, len(againIdx))
		for n, i := range againIdx {
			again[n] = reqs[i].Key
		}
		found, err := tx.lookupKeys(again)
		if err != nil {
			return nil, fx, err
		}
		for n, f := range found {
			outs[againIdx[n]].settle(f)
		}
	}
	followOutcomes(outs, follows)
	if len(fx.created) == 0 {
		return outs, fx, nil
	}
	responses, err := keyResponses(outs, d.keyed)
	if err != nil {
		return nil, fx, err
	}
	storeKeys := make([]*app.IdempotencyKey, len(d.keyed))
	for n, i := range d.keyed {
		storeKeys[n] = reqs[i].Key
	}
	if d.w.keys, err = app.KeyRecords(storeKeys, responses); err != nil {
		return nil, fx, err
	}
	d.w.keyCount = len(storeKeys)
	if err := d.w.apply(tx, cfg, st); err != nil {
		return nil, fx, err
	}
	return outs, fx, nil
}
