package app_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"gorm.io/gorm"

	"marquee/app"
	"marquee/app/apptest"
)

// The ledger page shows a person the chain's ledger, newest first, filtered
// by kind and text, with money as money, a CSV download and the seal check;
// staff without the ledger's read permission get the portal's 403 page.
func TestLedgerPage(t *testing.T) {
	env, _ := startProbe(t)
	tn := env.Tenant(t, apptest.UniqueSlug("ledger-page"))
	appendEntries(t, env.App, tn, 120)
	if err := env.App.Tx(context.Background(), tn, func(tx *gorm.DB) error {
		_, err := env.App.Ledger.Append(tx, "ticket.refund", "order-refund-77", -250050, "USD", "refund of order 77")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	owner := portalSession(t, env, tn.Slug, ownerOf(tn))
	page := owner.get(t, "/portal/ledger")
	// Newest first: the refund heads the list, the oldest entry is on the next page.
	if i, j := strings.Index(page, "order-refund-77"), strings.Index(page, "order-119"); i < 0 || j < 0 || i > j {
		t.Fatal("the ledger page does not list the newest entries first")
	}
	if !strings.Contains(page, "USD -2,500.50") || !strings.Contains(page, "EUR 11.19") {
		t.Error("amounts are not shown as money")
	}
	if strings.Contains(page, "order-0<") || !strings.Contains(page, `id="ledger-older"`) {
		t.Error("the first page should stop at 100 entries and link to older ones")
	}
	page = owner.get(t, "/portal/ledger?kind=ticket.refund")
	if !strings.Contains(page, "order-refund-77") || strings.Contains(page, "order-119") {
		t.Error("the kind filter")
	}
	page = owner.get(t, "/portal/ledger?q=order-11")
	if !strings.Contains(page, "order-110") || strings.Contains(page, "order-42") {
		t.Error("the text filter")
	}
	if page = owner.get(t, "/portal/ledger?verify=1"); !strings.Contains(page, "all 121 entries are in order") {
		t.Error("the seal check does not report the whole ledger")
	}
	res, body := owner.do(t, http.MethodGet, "/portal/ledger.csv", nil)
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/csv") || strings.Count(body, "\n") != 122 {
		t.Errorf("CSV export: %d %s, %d lines", res.StatusCode, res.Header.Get("Content-Type"), strings.Count(body, "\n"))
	}
	env.User(t, tn, "door@"+tn.Slug+".test", "promoter", "")
	door := portalSession(t, env, tn.Slug, "door@"+tn.Slug+".test")
	res, body = door.do(t, http.MethodGet, "/portal/ledger", nil)
	if res.StatusCode != http.StatusForbidden || !strings.Contains(body, `id="error-page"`) || strings.Contains(body, "problem") {
		t.Errorf("door staff on the ledger: %d", res.StatusCode)
	}
	if got := app.FormatMoney(123456789, "JPY"); got != "JPY 123,456,789" {
		t.Errorf("JPY: %s", got)
	}
}
