package app_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"marquee/app/apptest"
)

// Appends take no ledger lock: entries are inserted unsealed and chained
// after their commit. 8 appenders (some rolled back) race 2 readers that
// seal as they verify: afterwards the chain holds every committed entry
// exactly once, with seq 1..n and no gap, and verifies; the process's sealer
// chains entries nobody read.
func TestLedgerSealedAfterCommit(t *testing.T) {
	env, _ := startProbe(t)
	tn := env.Tenant(t, apptest.UniqueSlug("sealed"))
	ctx := context.Background()

	const appenders, each = 8, 25
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var readers sync.WaitGroup
	for range 2 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				res, err := env.App.Ledger.Verify(ctx, tn)
				if err != nil || !res.OK {
					t.Errorf("verify during the appends: %+v %v", res, err)
					return
				}
			}
		}()
	}
	for g := range appenders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				err := env.App.Tx(ctx, tn, func(tx *gorm.DB) error {
					if _, err := env.App.Ledger.Append(tx, "ticket.sale", fmt.Sprintf("order:%d-%d", g, i), int64(100*g+i), "EUR", "sale"); err != nil {
						return err
					}
					if i%5 == 4 {
						return fmt.Errorf("business rule failed") // rolled back with its entry
					}
					return nil
				})
				if err != nil && i%5 != 4 {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	readers.Wait()

	// Nobody reads now: the process's sealer chains these (and anything the
	// readers left).
	for i := range 10 {
		if err := env.App.Tx(ctx, tn, func(tx *gorm.DB) error {
			_, err := env.App.Ledger.Append(tx, "ticket.sale", fmt.Sprintf("order:late-%d", i), 1, "EUR", "")
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	want := int64(appenders*each*4/5 + 10)
	apptest.Eventually(t, 10*time.Second, "every entry sealed by the sealer", func() bool {
		var unsealed int64
		_ = env.App.Tx(ctx, tn, func(tx *gorm.DB) error {
			return tx.Raw(`SELECT count(*) FROM ledger_entries WHERE seq IS NULL`).Row().Scan(&unsealed)
		})
		return unsealed == 0
	})
	var n, maxSeq, refs int64
	if err := env.App.Tx(ctx, tn, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT count(*), coalesce(max(seq), 0), count(DISTINCT reference) FROM ledger_entries`).Row().Scan(&n, &maxSeq, &refs)
	}); err != nil {
		t.Fatal(err)
	}
	if n != want || maxSeq != want || refs != want {
		t.Fatalf("%d entries, last seq %d, %d references; want %d committed entries each once, seq 1..%d", n, maxSeq, refs, want, want)
	}
	res, err := env.App.Ledger.Verify(ctx, tn)
	if err != nil || !res.OK || res.Entries != want {
		t.Fatalf("verify: %+v %v", res, err)
	}

	// The database writes the time as Go's RFC3339Nano does (what the hash
	// covers): whole seconds, trailing zeros of the fraction.
	for _, at := range []string{"2026-12-06 19:00:00+00", "2026-12-06 19:00:00.1+00", "2026-12-06 19:00:00.000120+00", "2026-12-06 21:00:00.999999+02"} {
		var got string
		var ts time.Time
		if err := env.App.Tx(ctx, tn, func(tx *gorm.DB) error {
			return tx.Raw(`SELECT ledger_time_text(?::timestamptz), ?::timestamptz`, at, at).Row().Scan(&got, &ts)
		}); err != nil {
			t.Fatal(err)
		}
		if want := ts.UTC().Format(time.RFC3339Nano); got != want {
			t.Errorf("ledger_time_text(%s) = %s, Go writes %s", at, got, want)
		}
	}
	// Sealing is the one change an entry takes, once.
	for _, stmt := range []string{
		"UPDATE ledger_entries SET seq = NULL, prev_hash = NULL, hash = NULL WHERE seq = 2",
		"UPDATE ledger_entries SET seq = seq + 1000 WHERE seq = 3",
	} {
		if err := env.App.Tx(ctx, tn, func(tx *gorm.DB) error { return tx.Exec(stmt).Error }); err == nil {
			t.Errorf("%s accepted", stmt)
		}
	}
	if err := env.App.Tx(ctx, tn, func(tx *gorm.DB) error {
		if _, err := env.App.Ledger.Append(tx, "ticket.sale", "order:x", 1, "EUR", ""); err != nil {
			return err
		}
		return tx.Exec(`UPDATE ledger_entries SET amount_minor = 2 WHERE reference = 'order:x'`).Error
	}); err == nil {
		t.Error("an unsealed entry's amount was changed")
	}
}
