package app

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"marquee/jobs"
	"marquee/tenants"
)

// ledgerSealTask seals what an instance left unsealed (it died between an
// entry's commit and its seal), every minute, per tenant.
const ledgerSealTask = "core:ledger-seal"

// ledgerFollowUp is when a tenant sealed on a kick is sealed once more: a
// kick comes from Append, before its transaction commits, so the pass it
// starts may run before the entry is visible.
const ledgerFollowUp = time.Second

// ledgerSealer seals tenants' entries after their commits, in one goroutine
// per process: kicks coalesce, so a burst of payments is sealed in a few
// passes of many entries each, not one pass each.
type ledgerSealer struct {
	l       *Ledger
	log     *slog.Logger
	wake    chan struct{}
	mu      sync.Mutex
	pending map[string]tenants.Tenant // by slug: kicked since the last pass
}

func newLedgerSealer(l *Ledger, log *slog.Logger) *ledgerSealer {
	return &ledgerSealer{l: l, log: log, wake: make(chan struct{}, 1), pending: map[string]tenants.Tenant{}}
}

// kick asks for a pass over t's entries (never blocks).
func (s *ledgerSealer) kick(t tenants.Tenant) {
	s.mu.Lock()
	s.pending[t.Slug] = t
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// run seals kicked tenants until ctx ends; each tenant sealed on a kick is
// sealed again ledgerFollowUp later.
func (s *ledgerSealer) run(ctx context.Context) {
	followUp := map[string]tenants.Tenant{}
	timer := time.NewTimer(ledgerFollowUp)
	timer.Stop()
	timing := false
	for {
		var batch map[string]tenants.Tenant
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-s.wake:
			s.mu.Lock()
			batch, s.pending = s.pending, map[string]tenants.Tenant{}
			s.mu.Unlock()
			for slug, t := range batch {
				followUp[slug] = t
			}
			if !timing && len(followUp) > 0 {
				timer.Reset(ledgerFollowUp)
				timing = true
			}
		case <-timer.C:
			timing = false
			batch, followUp = followUp, map[string]tenants.Tenant{}
		}
		for _, t := range batch {
			if _, err := s.l.Seal(ctx, t); err != nil && ctx.Err() == nil {
				s.log.Warn("ledger entries not sealed yet; the sweep retries", "tenant", t.Slug, "err", err)
			}
		}
	}
}

// sealTask is the periodic sweep's work for one tenant.
func (l *Ledger) sealTask(ctx context.Context, t tenants.Tenant, _ []byte) error {
	_, err := l.Seal(ctx, t)
	return err
}

// registerLedgerSeal starts the process's sealer and the minute sweep.
func (a *App) registerLedgerSeal(ctx context.Context, r *Registrar) {
	a.Ledger.sealer = newLedgerSealer(a.Ledger, a.Log)
	go a.Ledger.sealer.run(ctx)
	r.TaskEvenWhenSuspended(ledgerSealTask, a.Ledger.sealTask)
	r.Every(jobs.Periodic{Cron: "* * * * *", Type: ledgerSealTask, Queue: jobs.QueueDefault, Bucket: time.Minute})
}
