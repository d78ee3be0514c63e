package app_test

import (
	"context"
	"encoding/csv"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"gorm.io/gorm"

	"marquee/app"
	"marquee/app/apptest"
	"marquee/policies"
	"marquee/tenants"
)

func appendEntries(t *testing.T, a *app.App, tn tenants.Tenant, n int) {
	t.Helper()
	for i := range n {
		if err := a.Tx(context.Background(), tn, func(tx *gorm.DB) error {
			_, err := a.Ledger.Append(tx, "ticket.revenue", fmt.Sprintf("order-%d", i), int64(1000+i), "EUR", "=SUM(A1)")
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestLedgerIsAppendOnlyAndChained(t *testing.T) {
	env, _ := startProbe(t)
	tn := env.Tenant(t, apptest.UniqueSlug("ledger"))
	ctx := context.Background()

	// Concurrent appenders still produce one unbroken chain.
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				err := env.App.Tx(ctx, tn, func(tx *gorm.DB) error {
					_, err := env.App.Ledger.Append(tx, "bar.sale", fmt.Sprint(i), 450, "EUR", "")
					return err
				})
				if err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	// The database hashes (ledger_append) as Verify does, for any text and
	// sign: multi-byte memo and reference, a negative amount.
	if err := env.App.Tx(ctx, tn, func(tx *gorm.DB) error {
		_, err := env.App.Ledger.Append(tx, "ticket.refund", "commande:Zoë—🎫", -12345, "EUR", "remboursé: « café » ✓")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	res, err := env.App.Ledger.Verify(ctx, tn)
	if err != nil || !res.OK || res.Entries != 81 {
		t.Fatalf("verify after concurrent appends: %+v %v", res, err)
	}
	// A rolled-back business change takes its ledger entry with it.
	_ = env.App.Tx(ctx, tn, func(tx *gorm.DB) error {
		if _, err := env.App.Ledger.Append(tx, "refund", "r-1", -450, "EUR", ""); err != nil {
			return err
		}
		return fmt.Errorf("business rule failed")
	})
	if res, _ := env.App.Ledger.Verify(ctx, tn); res.Entries != 81 {
		t.Fatalf("rolled-back entry persisted: %+v", res)
	}
	// Bad amounts' currencies are refused.
	if err := env.App.Tx(ctx, tn, func(tx *gorm.DB) error {
		_, err := env.App.Ledger.Append(tx, "refund", "r-2", 1, "eur", "")
		return err
	}); err == nil {
		t.Fatal("lower-case currency accepted")
	}

	for _, stmt := range []string{
		"UPDATE ledger_entries SET amount_minor = 1 WHERE seq = 3",
		"DELETE FROM ledger_entries WHERE seq = 80",
		"TRUNCATE ledger_entries",
	} {
		err := env.App.Tx(ctx, tn, func(tx *gorm.DB) error { return tx.Exec(stmt).Error })
		if err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: got %v, want append-only refusal", stmt, err)
		}
	}
	// Tampering beneath the trigger (a superuser, a restore) is detected.
	if err := env.App.Tx(ctx, tn, func(tx *gorm.DB) error {
		if err := tx.Exec("ALTER TABLE ledger_entries DISABLE TRIGGER ledger_entries_no_update").Error; err != nil {
			return err
		}
		if err := tx.Exec("UPDATE ledger_entries SET amount_minor = amount_minor + 1 WHERE seq = 42").Error; err != nil {
			return err
		}
		return tx.Exec("ALTER TABLE ledger_entries ENABLE TRIGGER ledger_entries_no_update").Error
	}); err != nil {
		t.Fatal(err)
	}
	res, err = env.App.Ledger.Verify(ctx, tn)
	if err != nil || res.OK || res.BrokenAt != 42 {
		t.Fatalf("tampering not detected at 42: %+v %v", res, err)
	}
	owner := env.Login(t, tn.Slug, ownerOf(tn))
	verify := env.Do(t, http.MethodGet, tn.Slug, "/api/v1/ledger/verify", owner, nil)
	if !strings.Contains(string(verify.Body), `"ok":false`) || !strings.Contains(string(verify.Body), `"broken_at":42`) {
		t.Fatalf("verify endpoint: %s", verify.Body)
	}
}

func TestLedgerAPIAndExport(t *testing.T) {
	env, _ := startProbe(t)
	tn := env.Tenant(t, apptest.UniqueSlug("books"))
	appendEntries(t, env.App, tn, 5)
	env.User(t, tn, "fin@"+tn.Slug+".test", policies.RoleFinance, "")
	env.User(t, tn, "prom@"+tn.Slug+".test", policies.RolePromoter, "")
	fin := env.Login(t, tn.Slug, "fin@"+tn.Slug+".test")
	prom := env.Login(t, tn.Slug, "prom@"+tn.Slug+".test")

	wantStatus(t, env.Do(t, http.MethodGet, tn.Slug, "/api/v1/ledger", prom, nil), http.StatusForbidden, "forbidden")
	res := env.Do(t, http.MethodGet, tn.Slug, "/api/v1/ledger?limit=2", fin, nil)
	wantStatus(t, res, http.StatusOK, "")
	var page struct {
		Items []struct {
			Seq         int64
			AmountMinor int64 `json:"amount_minor"`
			Currency    string
		}
		Next string
	}
	res.JSON(t, &page)
	if len(page.Items) != 2 || page.Next != "2" || page.Items[1].AmountMinor != 1001 || page.Items[1].Currency != "EUR" {
		t.Fatalf("page: %s", res.Body)
	}
	csvRes := env.Do(t, http.MethodGet, tn.Slug, "/api/v1/ledger?format=csv", fin, nil)
	wantStatus(t, csvRes, http.StatusOK, "")
	rows, err := csv.NewReader(strings.NewReader(string(csvRes.Body))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 6 || rows[0][0] != "seq" || rows[5][5] != "1004" {
		t.Fatalf("csv: %v", rows)
	}
	if rows[1][7] != "'=SUM(A1)" {
		t.Fatalf("formula not defused in export: %q", rows[1][7])
	}
}
