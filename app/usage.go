package app

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"gorm.io/gorm"

	"marquee/tenants"
)

// UsageFunc counts one figure of a tenant's usage for the support console,
// inside a read-only transaction in the tenant's scope. monthStart is the
// first instant of the current month (UTC).
type UsageFunc func(ctx context.Context, tx *gorm.DB, monthStart time.Time) (int64, error)

type usageFigure struct {
	module, label string
	fn            UsageFunc
}

// Usage adds a figure to every tenant's usage on the support console
// ("Venues", "Tickets sold this month"), so the core shows module data
// without knowing any module's tables.
func (r *Registrar) Usage(label string, fn UsageFunc) {
	r.app.usage = append(r.app.usage, usageFigure{module: r.module, label: label, fn: fn})
}

// requestTally counts each tenant's requests and server errors per hour in
// this process and adds them to Redis every few seconds (and when the
// console asks), so the console sums a day's traffic across every instance
// without a tenant label on the Prometheus metrics (1,000 tenants times
// every route would swamp them) or a Redis call per request.
type requestTally struct {
	mu     sync.Mutex
	counts map[tallyKey]int64
}

type tallyKey struct {
	hour  int64 // unix hour
	slug  string
	error bool
}

func newRequestTally() *requestTally { return &requestTally{counts: map[tallyKey]int64{}} }

func (r *requestTally) add(slug string, status int, at time.Time) {
	r.mu.Lock()
	r.counts[tallyKey{hour: at.Unix() / 3600, slug: slug, error: status >= 500}]++
	r.mu.Unlock()
}

// tallyTTL keeps an hour's counts for a day and an hour past it.
const tallyTTL = 25 * time.Hour

func (a *App) tallyKey(hour int64) string {
	return a.RedisKey("usage", "requests", strconv.FormatInt(hour, 10))
}

// flushTally adds this process's counts to Redis: per hour one hash whose
// fields are "<slug>" (requests) and "<slug>:5xx" (server errors).
func (a *App) flushTally(ctx context.Context) error {
	a.tally.mu.Lock()
	counts := a.tally.counts
	a.tally.counts = map[tallyKey]int64{}
	a.tally.mu.Unlock()
	if len(counts) == 0 {
		return nil
	}
	_, err := a.Redis.Pipelined(ctx, func(p redis.Pipeliner) error {
		hours := map[int64]bool{}
		for k, n := range counts {
			field := k.slug
			if k.error {
				p.HIncrBy(ctx, a.tallyKey(k.hour), k.slug+":5xx", n)
			}
			p.HIncrBy(ctx, a.tallyKey(k.hour), field, n)
			hours[k.hour] = true
		}
		for h := range hours {
			p.Expire(ctx, a.tallyKey(h), tallyTTL)
		}
		return nil
	})
	if err != nil { // put them back for the next flush
		a.tally.mu.Lock()
		for k, n := range counts {
			a.tally.counts[k] += n
		}
		a.tally.mu.Unlock()
	}
	return err
}

// flushTallyEvery flushes until ctx ends, then once more.
func (a *App) flushTallyEvery(ctx context.Context, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			_ = a.flushTally(fctx)
			cancel()
			return
		case <-tick.C:
			if err := a.flushTally(ctx); err != nil && ctx.Err() == nil {
				a.Log.Warn("request counts not flushed", "err", err)
			}
		}
	}
}

// RequestsLastDay sums a tenant's requests and server errors over the last
// 24 hours, from every instance's flushed counts.
func (a *App) RequestsLastDay(ctx context.Context, slug string) (requests, errors int64, err error) {
	if err := a.flushTally(ctx); err != nil {
		return 0, 0, err
	}
	now := a.Now().Unix() / 3600
	cmds := make([]*redis.SliceCmd, 0, 24)
	_, err = a.Redis.Pipelined(ctx, func(p redis.Pipeliner) error {
		for h := now - 23; h <= now; h++ {
			cmds = append(cmds, p.HMGet(ctx, a.tallyKey(h), slug, slug+":5xx"))
		}
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	for _, c := range cmds {
		vals := c.Val()
		for i, v := range vals {
			s, _ := v.(string)
			n, _ := strconv.ParseInt(s, 10, 64)
			if i == 0 {
				requests += n
			} else {
				errors += n
			}
		}
	}
	return requests, errors, nil
}

// UsageFigure is one labelled number of a tenant's usage.
type UsageFigure struct {
	Label string
	Value int64
	Err   string
}

// TenantUsage computes the modules' usage figures and the schema's size on
// its server.
func (a *App) TenantUsage(ctx context.Context, t tenants.Tenant) ([]UsageFigure, int64, error) {
	now := a.Now().UTC()
	month := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	out := make([]UsageFigure, 0, len(a.usage))
	for _, u := range a.usage {
		f := UsageFigure{Label: u.label}
		err := a.TxWith(ctx, t, tenants.TxOptions{ReadOnly: true}, func(tx *gorm.DB) error {
			n, err := u.fn(ctx, tx, month)
			f.Value = n
			return err
		})
		if err != nil {
			f.Err = err.Error()
		}
		out = append(out, f)
	}
	sv, err := a.Servers.For(t)
	if err != nil {
		return out, 0, err
	}
	var size int64
	err = sv.SQL.QueryRowContext(ctx, `SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'm')`, t.Schema).Scan(&size)
	return out, size, err
}
