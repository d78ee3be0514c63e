package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/modules/inventory"
	"marquee/tenants"
)

// E2E is the whole purchase at saturation: hold → order (with its Stripe
// PaymentIntent) → signed payment webhook → tickets issued, by Concurrency
// clients through the API, next to the same three transactions' writes run
// straight against PostgreSQL (one tenant transaction each through the
// door, no API, no batching) by as many goroutines, in the same run.
type E2E struct {
	APIPerS   float64 `json:"api_purchases_per_second"`
	APIP50    float64 `json:"api_purchase_p50_ms"`
	APIP99    float64 `json:"api_purchase_p99_ms"`
	APIErrors int64   `json:"api_errors"`
	RawPerS   float64 `json:"raw_purchases_per_second"`
	RawP99    float64 `json:"raw_purchase_p99_ms"`
	RawErrors int64   `json:"raw_errors"`
	Ratio     float64 `json:"api_over_raw"`
	FirstErr  string  `json:"first_error,omitempty"`
	// What the database waited on while the API phase ran (samples of
	// pg_stat_activity every 20 ms: wait event, and the statements active),
	// and pg_stat_statements' top statements when the server loads it.
	Waits      []Count `json:"db_wait_samples"`
	Statements []Count `json:"db_active_statement_samples"`
	StatStmts  []Count `json:"pg_stat_statements_top_ms,omitempty"`
	StatNote   string  `json:"pg_stat_statements_note,omitempty"`
	Profile    string  `json:"cpu_profile,omitempty"` // pprof CPU profile of the process (server and harness) during the API phase
}

// Count is a named tally.
type Count struct {
	Name string  `json:"name"`
	N    float64 `json:"n"`
}

// e2e runs both phases and the profile.
func (h *Harness) e2e(ctx context.Context, rep *Report) error {
	seats := min(60000, max(2000, int(h.o.Phase.Seconds()*3000)))
	apiEvent, _, err := h.newEvent(ctx, "Purchase API", seats, 0, 3, 1000)
	if err != nil {
		return err
	}
	rawEvent, _, err := h.newEvent(ctx, "Purchase Raw", seats, 0, 4, 1000)
	if err != nil {
		return err
	}
	tokens := make([]string, h.o.Concurrency)
	for i := range tokens {
		res, err := h.call(ctx, "POST", h.slug, "/api/v1/buyer-sessions", "", nil)
		if err != nil || res.status != http.StatusCreated {
			return fmt.Errorf("buyer session: %v %s", err, res.body)
		}
		var s struct {
			Token string `json:"buyer_token"`
		}
		_ = json.Unmarshal(res.body, &s)
		tokens[i] = s.Token
	}
	e := &rep.E2E
	// The profile and the database sampler run while the API phase does.
	_ = os.MkdirAll(h.o.OutDir, 0o755)
	prof, perr := os.Create(filepath.Join(h.o.OutDir, "e2e-cpu.pprof"))
	if perr == nil && pprof.StartCPUProfile(prof) == nil {
		e.Profile = prof.Name()
	}
	statsOK := h.resetStatements(ctx, e)
	sctx, stopSampler := context.WithCancel(ctx)
	sampled := make(chan [2][]Count, 1)
	go func() { sampled <- h.sampleDB(sctx) }()
	n, lat, el, errs, ferr := h.phase(seats, func(g, i int) (bool, error) {
		return h.purchase(ctx, apiEvent, tokens[g], i)
	})
	stopSampler()
	if e.Profile != "" {
		pprof.StopCPUProfile()
	}
	if prof != nil {
		prof.Close()
	}
	s := <-sampled
	e.Waits, e.Statements = s[0], s[1]
	if statsOK {
		h.topStatements(ctx, e)
	}
	e.APIErrors = errs
	if ferr != nil {
		e.FirstErr = ferr.Error()
	}
	if n == 0 {
		return fmt.Errorf("no purchase through the API succeeded (first error: %v)", ferr)
	}
	e.APIPerS = float64(n) / el.Seconds()
	e.APIP50, e.APIP99 = percentile(lat, .5), percentile(lat, .99)

	raw, err := h.rawPurchaser(ctx, rawEvent)
	if err != nil {
		return err
	}
	n, lat, el, errs, ferr = h.phase(seats, func(_, i int) (bool, error) { return raw(ctx, i) })
	e.RawErrors = errs
	if ferr != nil && e.FirstErr == "" {
		e.FirstErr = ferr.Error()
	}
	if n == 0 {
		return fmt.Errorf("no raw purchase succeeded (first error: %v)", ferr)
	}
	e.RawPerS = float64(n) / el.Seconds()
	e.RawP99 = percentile(lat, .99)
	e.Ratio = e.APIPerS / e.RawPerS
	return nil
}

// purchase buys seat i of the event through the API as a buyer would:
// hold, order, then Stripe's signed webhook to the platform's endpoint.
func (h *Harness) purchase(ctx context.Context, event, buyerToken string, i int) (bool, error) {
	res, err := h.call(ctx, "POST", h.slug, "/api/v1/events/"+event+"/holds", "", map[string]any{"seats": []string{seatID(i)}},
		"Idempotency-Key", uuid.NewString(), inventory.BuyerHeader, buyerToken)
	if err != nil {
		return false, err
	}
	if res.status != http.StatusCreated {
		return false, fmt.Errorf("hold: %d %s", res.status, res.body)
	}
	var hold inventory.Hold
	_ = json.Unmarshal(res.body, &hold)
	res, err = h.call(ctx, "POST", h.slug, "/api/v1/orders", "", map[string]any{"hold_id": hold.ID,
		"buyer": map[string]string{"email": fmt.Sprintf("e2e%d@bench.test", i), "name": "E2E Buyer"}},
		inventory.BuyerHeader, buyerToken, "Idempotency-Key", "order-"+hold.ID.String())
	if err != nil {
		return false, err
	}
	var order inventory.Order
	if res.status != http.StatusCreated || json.Unmarshal(res.body, &order) != nil || order.PaymentIntentID == nil {
		return false, fmt.Errorf("order: %d %s", res.status, res.body)
	}
	payload, sig, err := inventory.TestWebhookEvent(h.a.Config.StripeWebhookSecret, "evt_e2e_"+strings.ReplaceAll(uuid.NewString(), "-", ""),
		"payment_intent.succeeded", *order.PaymentIntentID, order.AmountMinor, order.Currency, h.slug, order.ID)
	if err != nil {
		return false, err
	}
	res, err = h.call(ctx, "POST", "", inventory.PlatformWebhookPath, "", payload, "Stripe-Signature", sig)
	if err != nil {
		return false, err
	}
	if res.status != http.StatusOK || !strings.Contains(string(res.body), `"outcome":"paid"`) {
		return false, fmt.Errorf("pay: %d %s", res.status, res.body)
	}
	return true, nil
}

// rawPurchaser returns the raw baseline: the rows the three transactions
// write, written straight, three tenant transactions per seat through the
// door's pgx path (BEGIN and scope in one round trip): the hold (its row,
// its line, the seat held), the order (its row), the payment (the order
// paid, the ticket, the seat sold, the hold closed).
func (h *Harness) rawPurchaser(ctx context.Context, event string) (func(ctx context.Context, i int) (bool, error), error) {
	var tier, zone uuid.UUID
	err := h.a.TxWith(ctx, h.t, tenants.TxOptions{ReadOnly: true}, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT id, zone_id FROM inv_tiers WHERE event_id = ? LIMIT 1`, event).Row().Scan(&tier, &zone)
	})
	if err != nil {
		return nil, err
	}
	ev := uuid.MustParse(event)
	return func(ctx context.Context, i int) (bool, error) {
		hold, order, seat := uuid.New(), uuid.New(), seatID(i)
		held := false
		err := h.a.PgxTx(ctx, h.t, tenants.TxOptions{}, func(tx *tenants.Pgx) error {
			if _, err := tx.Exec(`INSERT INTO inv_holds (id, event_id, buyer_id, channel, status, quantity, amount_minor, currency, expires_at)
				VALUES ($1, $2, 'raw', 'web', 'active', 1, 6500, 'EUR', now() + interval '10 minutes')`, hold, ev); err != nil {
				return err
			}
			if _, err := tx.Exec(`INSERT INTO inv_hold_lines (hold_id, line, tier_id, zone_id, seat_id, quantity, unit_price_minor)
				VALUES ($1, 1, $2, $3, $4, 1, 6500)`, hold, tier, zone, seat); err != nil {
				return err
			}
			tag, err := tx.Exec(`UPDATE inv_seats SET state = 'held', hold_id = $1 WHERE event_id = $2 AND id = $3 AND state = 'available'`, hold, ev, seat)
			held = err == nil && tag.RowsAffected() == 1
			return err
		})
		if err != nil || !held {
			return false, err
		}
		err = h.a.PgxTx(ctx, h.t, tenants.TxOptions{}, func(tx *tenants.Pgx) error {
			_, err := tx.Exec(`INSERT INTO inv_orders (id, event_id, hold_id, buyer_id, email, name, amount_minor, currency, status)
				VALUES ($1, $2, $3, 'raw', 'raw@bench.test', 'Raw', 6500, 'EUR', 'pending')`, order, ev, hold)
			return err
		})
		if err != nil {
			return false, err
		}
		err = h.a.PgxTx(ctx, h.t, tenants.TxOptions{}, func(tx *tenants.Pgx) error {
			if _, err := tx.Exec(`UPDATE inv_orders SET status = 'paid', paid_at = now() WHERE id = $1 AND status = 'pending'`, order); err != nil {
				return err
			}
			if _, err := tx.Exec(`INSERT INTO inv_tickets (id, order_id, event_id, zone_id, zone_name, tier_id, tier_name, seat_id, holder_name, holder_email, status, token, issued_at)
				VALUES ($1, $2, $3, $4, 'Stalls', $5, 'Stalls', $6, 'Raw', 'raw@bench.test', 'valid', 'raw', now())`, uuid.New(), order, ev, zone, tier, seat); err != nil {
				return err
			}
			if _, err := tx.Exec(`UPDATE inv_seats SET state = 'sold', hold_id = NULL, order_id = $1 WHERE event_id = $2 AND id = $3 AND hold_id = $4`, order, ev, seat, hold); err != nil {
				return err
			}
			_, err := tx.Exec(`UPDATE inv_holds SET status = 'sold', closed_at = now() WHERE id = $1 AND status = 'active'`, hold)
			return err
		})
		return err == nil, err
	}, nil
}

// sampleDB samples what the run's database is doing every 20 ms until ctx
// ends: each active backend's wait (Lock:transactionid, IO:WALSync, …, or
// "CPU" when not waiting) and its statement.
func (h *Harness) sampleDB(ctx context.Context) [2][]Count {
	waits, stmts := map[string]float64{}, map[string]float64{}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return [2][]Count{top(waits, 10), top(stmts, 10)}
		case <-tick.C:
		}
		var rows []struct {
			Wait  string `gorm:"column:wait"`
			Query string `gorm:"column:query"`
		}
		err := h.a.TxWith(ctx, h.t, tenants.TxOptions{ReadOnly: true}, func(tx *gorm.DB) error {
			return tx.Raw(`SELECT coalesce(wait_event_type || ':' || wait_event, 'CPU') AS wait, left(regexp_replace(query, '\s+', ' ', 'g'), 90) AS query
				FROM pg_stat_activity WHERE datname = current_database() AND state = 'active' AND pid <> pg_backend_pid()`).Scan(&rows).Error
		})
		if err != nil {
			continue
		}
		for _, r := range rows {
			waits[r.Wait]++
			stmts[r.Query]++
		}
	}
}

// resetStatements clears pg_stat_statements before the phase, when the
// server loads it (shared_preload_libraries); it reports whether it does.
func (h *Harness) resetStatements(ctx context.Context, e *E2E) bool {
	var loaded bool
	err := h.a.TxWith(ctx, h.t, tenants.TxOptions{}, func(tx *gorm.DB) error {
		if err := tx.Raw(`SELECT current_setting('shared_preload_libraries') LIKE '%pg_stat_statements%'`).Row().Scan(&loaded); err != nil || !loaded {
			return err
		}
		if err := tx.Exec(`CREATE EXTENSION IF NOT EXISTS pg_stat_statements SCHEMA public`).Error; err != nil {
			return err
		}
		return tx.Exec(`SELECT public.pg_stat_statements_reset()`).Error
	})
	switch {
	case err != nil:
		e.StatNote = "pg_stat_statements: " + err.Error()
		return false
	case !loaded:
		e.StatNote = "pg_stat_statements is not in shared_preload_libraries on this server (deployments/local/services.sh enables it on a cluster it creates; an existing one needs a restart): wait sampling only"
		return false
	}
	return true
}

func (h *Harness) topStatements(ctx context.Context, e *E2E) {
	var rows []struct {
		Query string  `gorm:"column:query"`
		Total float64 `gorm:"column:total"`
	}
	_ = h.a.TxWith(ctx, h.t, tenants.TxOptions{ReadOnly: true}, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT left(regexp_replace(query, '\s+', ' ', 'g'), 90) AS query, total_exec_time AS total FROM public.pg_stat_statements
			WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) ORDER BY total_exec_time DESC LIMIT 10`).Scan(&rows).Error
	})
	for _, r := range rows {
		e.StatStmts = append(e.StatStmts, Count{r.Query, r.Total})
	}
}

func top(m map[string]float64, n int) []Count {
	var out []Count
	for k, v := range m {
		out = append(out, Count{k, v})
	}
	slices.SortFunc(out, func(a, b Count) int {
		if a.N != b.N {
			if a.N > b.N {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out[:min(n, len(out))]
}

func (h *Harness) printE2E(rep *Report) {
	w, e := h.out, rep.E2E
	if e.APIPerS == 0 {
		return
	}
	fmt.Fprintf(w, "whole purchases (hold → order → signed webhook → tickets), %d clients: API %.1f/s (p50 %.1f ms, p99 %.1f ms)   raw three transactions %.1f/s (p99 %.1f ms)   API/raw = %.2f\n",
		h.o.Concurrency, e.APIPerS, e.APIP50, e.APIP99, e.RawPerS, e.RawP99, e.Ratio)
	if e.APIErrors+e.RawErrors > 0 {
		fmt.Fprintf(w, "purchases failed (left out): API %d, raw %d; first: %s\n", e.APIErrors, e.RawErrors, e.FirstErr)
	}
	var sb strings.Builder
	for _, c := range e.Waits {
		fmt.Fprintf(&sb, "  %-28s %6.0f\n", c.Name, c.N)
	}
	fmt.Fprintf(w, "database during the API phase, active backends by wait (20 ms samples):\n%s", sb.String())
	sb.Reset()
	for _, c := range e.Statements[:min(6, len(e.Statements))] {
		fmt.Fprintf(&sb, "  %6.0f  %s\n", c.N, c.Name)
	}
	fmt.Fprintf(w, "statements active most often:\n%s", sb.String())
	if len(e.StatStmts) > 0 {
		sb.Reset()
		for _, c := range e.StatStmts[:min(6, len(e.StatStmts))] {
			fmt.Fprintf(&sb, "  %8.0f ms  %s\n", c.N, c.Name)
		}
		fmt.Fprintf(w, "pg_stat_statements, total time:\n%s", sb.String())
	} else if e.StatNote != "" {
		fmt.Fprintln(w, e.StatNote)
	}
	if e.Profile != "" {
		fmt.Fprintf(w, "CPU profile of the API phase (server and harness in one process): go tool pprof -top %s\n", e.Profile)
	}
}
