package app

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"gorm.io/gorm"

	"marquee/policies"
	"marquee/tenants"
)

// LedgerFilter narrows the ledger page: entries of one kind, whose
// reference or memo holds a text, recorded in a range of days (UTC), before
// a sequence number (the page's cursor; the newest come first).
type LedgerFilter struct {
	Kind, Text string
	From, To   time.Time
	BeforeSeq  int64
}

// Search returns up to limit entries matching f, newest first (the
// committed ones sealed first).
func (l *Ledger) Search(ctx context.Context, t tenants.Tenant, f LedgerFilter, limit int) ([]LedgerEntry, error) {
	if _, err := l.Seal(ctx, t); err != nil {
		return nil, err
	}
	var out []LedgerEntry
	err := l.servers.TxWith(ctx, t, tenants.TxOptions{ReadOnly: true}, func(tx *gorm.DB) error {
		q := tx.Table("ledger_entries").Select(ledgerColumns)
		if f.Kind != "" {
			q = q.Where("kind = ?", f.Kind)
		}
		if f.Text != "" {
			like := "%" + strings.NewReplacer(`\`, `\\`, "%", `\%`, "_", `\_`).Replace(f.Text) + "%"
			q = q.Where("(reference ILIKE ? OR memo ILIKE ?)", like, like)
		}
		if !f.From.IsZero() {
			q = q.Where("recorded_at >= ?", f.From)
		}
		if !f.To.IsZero() {
			q = q.Where("recorded_at < ?", f.To)
		}
		q = q.Where("seq IS NOT NULL") // one committed after the seal above waits for the next page
		if f.BeforeSeq > 0 {
			q = q.Where("seq < ?", f.BeforeSeq)
		}
		return q.Order("seq DESC").Limit(limit).Scan(&out).Error
	})
	return out, err
}

// ledgerKinds lists the kinds the ledger holds, for the page's filter.
func (l *Ledger) kinds(ctx context.Context, t tenants.Tenant) ([]string, error) {
	var out []string
	err := l.servers.TxWith(ctx, t, tenants.TxOptions{ReadOnly: true}, func(tx *gorm.DB) error {
		return tx.Raw("SELECT DISTINCT kind FROM ledger_entries ORDER BY kind").Scan(&out).Error
	})
	return out, err
}

type ledgerRow struct {
	LedgerEntry
	Amount string
	When   string
}

type ledgerTotal struct{ Currency, Amount string }

type ledgerPageView struct {
	Rows           []ledgerRow
	Kinds          []string
	Kind, Text     string
	From, To       string
	Next, Export   string
	Verified       *VerifyResult
	Totals         []ledgerTotal
	Error          string
	FilterQuery    string
	VerifyQuery    string
	ShowingNewest  bool
	PageEntryCount int
}

// FormatMoney writes minor units of a currency for people: "USD 1,234.50".
func FormatMoney(minor int64, currency string) string {
	digits := 2
	switch currency {
	case "JPY", "KRW", "VND", "CLP", "ISK", "UGX", "XAF", "XOF":
		digits = 0
	case "BHD", "KWD", "OMR", "JOD", "TND":
		digits = 3
	}
	sign := ""
	if minor < 0 {
		sign, minor = "-", -minor
	}
	unit := int64(1)
	for range digits {
		unit *= 10
	}
	whole := strconv.FormatInt(minor/unit, 10)
	for i := len(whole) - 3; i > 0; i -= 3 {
		whole = whole[:i] + "," + whole[i:]
	}
	if digits == 0 {
		return currency + " " + sign + whole
	}
	return fmt.Sprintf("%s %s%s.%0*d", currency, sign, whole, digits, minor%unit)
}

func (a *App) portalLedger(c *gin.Context) {
	ctx, t := c.Request.Context(), TenantOf(c)
	v := ledgerPageView{Kind: c.Query("kind"), Text: strings.TrimSpace(c.Query("q")), From: c.Query("from"), To: c.Query("to")}
	f := LedgerFilter{Kind: v.Kind, Text: v.Text}
	if len(f.Text) > 100 {
		f.Text = f.Text[:100]
	}
	if d, err := time.Parse("2006-01-02", v.From); err == nil {
		f.From = d
	} else if v.From != "" {
		v.Error = "The “from” date must be a date."
	}
	if d, err := time.Parse("2006-01-02", v.To); err == nil {
		f.To = d.AddDate(0, 0, 1)
	} else if v.To != "" {
		v.Error = "The “to” date must be a date."
	}
	if s, err := strconv.ParseInt(c.Query("before"), 10, 64); err == nil && s > 0 {
		f.BeforeSeq = s
	}
	const limit = 100
	entries, err := a.Ledger.Search(ctx, t, f, limit)
	if err != nil {
		Fail(c, err)
		return
	}
	if v.Kinds, err = a.Ledger.kinds(ctx, t); err != nil {
		Fail(c, err)
		return
	}
	totals := map[string]int64{}
	var currencies []string
	for _, e := range entries {
		v.Rows = append(v.Rows, ledgerRow{LedgerEntry: e, Amount: FormatMoney(e.AmountMinor, e.Currency),
			When: e.RecordedAt.UTC().Format("2006-01-02 15:04:05")})
		if _, ok := totals[e.Currency]; !ok {
			currencies = append(currencies, e.Currency)
		}
		totals[e.Currency] += e.AmountMinor
	}
	for _, cur := range currencies {
		v.Totals = append(v.Totals, ledgerTotal{Currency: cur, Amount: FormatMoney(totals[cur], cur)})
	}
	v.PageEntryCount = len(entries)
	base := url.Values{}
	for k, val := range map[string]string{"kind": v.Kind, "q": v.Text, "from": v.From, "to": v.To} {
		if val != "" {
			base.Set(k, val)
		}
	}
	v.FilterQuery = base.Encode()
	if len(entries) == limit {
		next := url.Values{}
		for k, val := range base {
			next[k] = val
		}
		next.Set("before", strconv.FormatInt(entries[len(entries)-1].Seq, 10))
		v.Next = "/portal/ledger?" + next.Encode()
	}
	v.ShowingNewest = f.BeforeSeq == 0
	if c.Query("verify") == "1" {
		r, err := a.Ledger.Verify(ctx, t)
		if err != nil {
			Fail(c, err)
			return
		}
		v.Verified = &r
	}
	vq := url.Values{}
	for k, val := range base {
		vq[k] = val
	}
	vq.Set("verify", "1")
	v.VerifyQuery = vq.Encode()
	content, err := RenderTemplate(coreTemplates, "ledger", v)
	if err != nil {
		Fail(c, err)
		return
	}
	a.RenderPortal(c, http.StatusOK, "Ledger", content)
}

// portalLedgerCSV is the ledger as a file, for a signed-in person's browser
// (the API's CSV wants a bearer token).
func (a *App) portalLedgerCSV(c *gin.Context) {
	a.ledgerCSV(c.Request.Context(), c)
}

func (a *App) registerLedgerPages(r *Registrar) {
	r.Portal(http.MethodGet, "/ledger", Require("ledger", policies.Read), a.portalLedger)
	r.Portal(http.MethodGet, "/ledger.csv", Require("ledger", policies.Read), a.portalLedgerCSV)
	r.Nav("Ledger", "/portal/ledger", 80, Require("ledger", policies.Read))
}
