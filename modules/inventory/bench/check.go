package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/modules/inventory"
	"marquee/modules/inventory/internal/buyers"
	"marquee/tenants"
)

// accounts is what each buyer (by number) was told: the tickets of the order
// it sent, and those its payment confirmed; and how many answers were lost
// in transit and then recovered by a retry (a replayed order, a webhook the
// server had already taken).
type accounts struct {
	ordered, confirmed sync.Map // buyer number → int64 tickets
	lostRecovered      atomic.Int64
}

func (a *accounts) get(m *sync.Map, n int) int64 {
	v, _ := m.Load(n)
	t, _ := v.(int64)
	return t
}

// Faults are what went wrong on the way rather than in the database: the
// requests of the saturation phases that failed (left out of their rates
// and latencies), and why a run stopped early.
type Faults struct {
	SaturationErrors int64  `json:"saturation_api_errors"`
	RawErrors        int64  `json:"saturation_raw_errors"`
	FirstError       string `json:"first_error,omitempty"`
	Aborted          string `json:"aborted,omitempty"`
}

// finish checks the database, measures saturation unless the run was
// stopped, and reports. A run that stops early (cancelled, or a phase
// failing) still writes and prints what it measured, with the reason.
func (h *Harness) finish(ctx context.Context, rep *Report) (*Report, error) {
	fmt.Fprintln(h.out, "checking the database for double sales, oversells and lost payments")
	// The check reads what is there even when the run was cancelled.
	// Minutes, not one: after a large run the database is still busy with
	// the run's aftermath, and the per-seat checks read every seat.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Minute)
	defer cancel()
	var err error
	if rep.Checks, err = h.check(cctx); err != nil {
		err = fmt.Errorf("check: %w", err)
	} else if rep.Fairness, err = h.fairness(cctx); err != nil {
		err = fmt.Errorf("admission order: %w", err)
	} else if err = ctx.Err(); err == nil {
		fmt.Fprintf(h.out, "saturation: %d clients holding single seats for %s through the API, then the raw conditional UPDATE over %d connections\n",
			h.o.Concurrency, h.o.Phase, h.o.DBConns)
		if err = h.saturation(ctx, rep); err != nil {
			err = fmt.Errorf("saturation phase: %w", err)
		} else if h.o.E2E {
			fmt.Fprintf(h.out, "whole purchases: %d clients buying single seats for %s through the API (hold, order, signed webhook), then the same writes straight against PostgreSQL\n",
				h.o.Concurrency, h.o.Phase)
			if err = h.e2e(ctx, rep); err != nil {
				err = fmt.Errorf("purchase saturation phase: %w", err)
			}
		}
	}
	if err != nil {
		rep.Faults.Aborted = err.Error()
	}
	if werr := h.write(rep); werr != nil && err == nil {
		err = werr
	}
	h.print(rep)
	return rep, err
}

// check reads the invariants back from the database.
func (h *Harness) check(ctx context.Context) (Checks, error) {
	var c Checks
	var bought []struct {
		Email   string `gorm:"column:email"`
		Tickets int64  `gorm:"column:tickets"`
	}
	q := func(tx *gorm.DB, dst *int64, sql string, args ...any) error {
		return tx.Raw(sql, args...).Row().Scan(dst)
	}
	err := h.a.TxWith(ctx, h.t, tenants.TxOptions{ReadOnly: true}, func(tx *gorm.DB) error {
		steps := []struct {
			dst *int64
			sql string
		}{
			{&c.SeatsSoldTwice, `SELECT count(*) FROM (SELECT seat_id FROM inv_tickets WHERE event_id = ? AND status = 'valid' AND seat_id IS NOT NULL
				GROUP BY seat_id HAVING count(*) > 1) d`},
			{&c.SeatStateMismatch, `SELECT count(*) FROM inv_seats s WHERE s.event_id = ? AND (s.state = 'sold') <>
				((SELECT count(*) FROM inv_tickets t WHERE t.event_id = s.event_id AND t.seat_id = s.id AND t.status = 'valid') = 1)`},
			{&c.CountersOverCapacity, `SELECT count(*) FROM inv_counters c WHERE c.event_id = ? AND
				(SELECT coalesce(sum(held + sold), 0) FROM inv_counter_shards s WHERE s.counter_id = c.id) > c.capacity`},
			{&c.GATicketsOverPool, `SELECT count(*) FROM inv_counters c WHERE c.event_id = ? AND c.kind = 'pool' AND
				(SELECT count(*) FROM inv_tickets t WHERE t.zone_id = c.zone_id AND t.status = 'valid') > c.capacity`},
			{&c.PaidWithoutTickets, `SELECT count(*) FROM inv_orders o WHERE o.event_id = ? AND o.status = 'paid' AND
				NOT EXISTS (SELECT 1 FROM inv_tickets t WHERE t.order_id = o.id AND t.status = 'valid')`},
			{&c.SucceededNotSettled, `SELECT count(*) FROM inv_stripe_events e JOIN inv_orders o ON o.id = e.order_id
				WHERE o.event_id = ? AND e.type = 'payment_intent.succeeded' AND o.status NOT IN ('paid', 'refunded')`},
			{&c.ValidTickets, `SELECT count(*) FROM inv_tickets WHERE event_id = ? AND status = 'valid'`},
			{&c.PendingWithoutPayment, `SELECT count(*) FROM inv_orders o JOIN inv_holds h ON h.id = o.hold_id
				WHERE o.event_id = ? AND o.status = 'pending' AND o.payment_intent_id IS NULL AND h.status <> 'active'`},
		}
		for _, s := range steps {
			if err := q(tx, s.dst, s.sql, h.event); err != nil {
				return err
			}
		}
		return tx.Raw(`SELECT o.email, count(*) AS tickets FROM inv_orders o JOIN inv_tickets t ON t.order_id = o.id AND t.status = 'valid'
			WHERE o.event_id = ? GROUP BY o.email`, h.event).Scan(&bought).Error
	})
	// Buyer by buyer: a confirmed purchase must be in the database as
	// confirmed; a purchase the buyer never heard of is a payment whose
	// answer was lost (the server committed it, the connection dropped),
	// reported apart, and must be the whole order.
	var inDB int64
	seen := map[int]bool{}
	for _, b := range bought {
		inDB += b.Tickets
		var n int
		if _, err := fmt.Sscanf(b.Email, "buyer%d@bench.test", &n); err != nil {
			c.TicketsNotAsBought++
			continue
		}
		seen[n] = true
		switch confirmed := h.acct.get(&h.acct.confirmed, n); {
		case confirmed == b.Tickets:
		case confirmed == 0 && b.Tickets == h.acct.get(&h.acct.ordered, n):
			c.PaidAnswerLost++
			c.PaidAnswerLostTickets += b.Tickets
		default:
			c.TicketsNotAsBought++
		}
	}
	h.acct.confirmed.Range(func(k, _ any) bool {
		if !seen[k.(int)] {
			c.ConfirmedNotInDatabase++
		}
		return true
	})
	c.AnswersLostRecovered = h.acct.lostRecovered.Load()
	c.OK = err == nil && c.SeatsSoldTwice == 0 && c.SeatStateMismatch == 0 && c.CountersOverCapacity == 0 &&
		c.GATicketsOverPool == 0 && c.PaidWithoutTickets == 0 && c.SucceededNotSettled == 0 && c.PendingWithoutPayment == 0 &&
		c.ValidTickets <= int64(h.o.Seats+h.o.GA) && c.ValidTickets == inDB &&
		c.ConfirmedNotInDatabase == 0 && c.TicketsNotAsBought == 0
	return c, err
}

// phase runs work from o.Concurrency goroutines for o.Phase, or until limit
// requests are made (each seat asked once: a rate must not count refusals
// after the seats ran out); work gets its goroutine's number g and a
// request sequence number i.
func (h *Harness) phase(limit int, work func(g, i int) (bool, error)) (ok int64, lat []time.Duration, elapsed time.Duration, errs int64, firstErr error) {
	var next, good, bad atomic.Int64
	var mu sync.Mutex
	var once sync.Once
	deadline := time.Now().Add(h.o.Phase)
	start := time.Now()
	var wg sync.WaitGroup
	for g := range h.o.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for time.Now().Before(deadline) {
				i := int(next.Add(1) - 1)
				if i >= limit {
					break
				}
				t0 := time.Now()
				yes, err := work(g, i)
				if err != nil {
					// Left out of the rate and latencies, and counted.
					bad.Add(1)
					once.Do(func() { firstErr = err })
					continue
				}
				if yes {
					good.Add(1)
					mine = append(mine, time.Since(t0))
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	slices.Sort(lat)
	return good.Load(), lat, time.Since(start), bad.Load(), firstErr
}

// saturation measures single-seat holds through the API by o.Concurrency
// clients (no waiting room), then the same conditional UPDATE straight
// against PostgreSQL (one tenant transaction each, no API, no batching) by
// as many goroutines over the app's connections, on the same table, in the
// same run.
func (h *Harness) saturation(ctx context.Context, rep *Report) error {
	// Enough seats that the phase never runs out (60,000 for the default 5 s).
	seats := min(60000, max(2000, int(h.o.Phase.Seconds()*15000)))
	// A buyer per hold, minted in memory before the clock starts (as the
	// server's POST /buyer-sessions signs them): since one cart per buyer,
	// a buyer's second hold joins the first's cart and meets the
	// per-order maximum, so one buyer per client measured refusals.
	apiEvent, _, err := h.newEvent(ctx, "Saturation API", seats, 0, 1, 1000)
	if err != nil {
		return err
	}
	rawEvent, _, err := h.newEvent(ctx, "Saturation Raw", seats, 0, 2, 1000)
	if err != nil {
		return err
	}
	sessions := mintSessions(buyers.New(h.a.Config.SecretKey), h.t, seats)
	refused := atomic.Int64{}
	n, lat, el, errs, ferr := h.phase(seats, func(_, i int) (bool, error) {
		res, err := h.call(ctx, "POST", h.slug, "/api/v1/events/"+apiEvent+"/holds", "", map[string]any{"seats": []string{seatID(i)}},
			"Idempotency-Key", uuid.NewString(), inventory.BuyerHeader, sessions[i][0])
		if err != nil {
			return false, err
		}
		if res.status != http.StatusCreated && res.status != http.StatusServiceUnavailable {
			refused.Add(1)
		}
		return res.status == http.StatusCreated, nil
	})
	if r := refused.Load(); r > 0 {
		return fmt.Errorf("saturation: %d holds refused (each hold has a fresh buyer and a free seat: nothing should refuse them)", r)
	}
	rep.Faults.SaturationErrors = errs
	if ferr != nil {
		rep.Faults.FirstError = ferr.Error()
	}
	if n == 0 {
		return fmt.Errorf("no API hold succeeded (first error: %v)", ferr)
	}
	rep.SatHoldsPerS = float64(n) / el.Seconds()
	rep.SatHoldP50, rep.SatHoldP99 = percentile(lat, .5), percentile(lat, .99)

	// The very statement the hold transaction runs for a seat, each in its
	// own tenant transaction through the door's pgx path (BEGIN and scope in
	// one round trip, the statement prepared per connection), on the app's
	// pool: its connections are open already, as the server's are.
	const sql = `UPDATE inv_seats SET state = 'held', hold_id = $1 WHERE event_id = $2 AND id = $3 AND state = 'available'`
	n, lat, el, errs, ferr = h.phase(seats, func(_, i int) (bool, error) {
		held := false
		err := h.a.PgxTx(ctx, h.t, tenants.TxOptions{}, func(tx *tenants.Pgx) error {
			tag, err := tx.Exec(sql, uuid.New(), rawEvent, seatID(i))
			held = err == nil && tag.RowsAffected() == 1
			return err
		})
		return held, err
	})
	rep.Faults.RawErrors = errs
	if ferr != nil && rep.Faults.FirstError == "" {
		rep.Faults.FirstError = ferr.Error()
	}
	if n == 0 {
		return fmt.Errorf("no raw update succeeded (first error: %v)", ferr)
	}
	rep.RawHoldsPerS = float64(n) / el.Seconds()
	rep.RawP99 = percentile(lat, .99)
	rep.Ratio = rep.SatHoldsPerS / rep.RawHoldsPerS
	return nil
}

// write stores the report as JSON and the latency chart as SVG.
func (h *Harness) write(rep *Report) error {
	if err := os.MkdirAll(h.o.OutDir, 0o755); err != nil {
		return err
	}
	stamp := time.Now().UTC().Format("20060102-150405")
	rep.JSONPath = filepath.Join(h.o.OutDir, "onsale-"+stamp+".json")
	rep.ChartPath = filepath.Join(h.o.OutDir, "onsale-"+stamp+".svg")
	raw, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(rep.JSONPath, raw, 0o644); err != nil {
		return err
	}
	var lines []Line
	colors := map[string][2]string{"hold": {"#5b3fd1", "#b3a4f0"}, "order": {"#1e7a46", "#8fd1ab"}, "pay": {"#b3261e", "#eba39e"}}
	for _, step := range []string{"hold", "order", "pay"} {
		p50, p99 := h.rec.Buckets(step, time.Second)
		if p50 == nil {
			continue
		}
		lines = append(lines, Line{Name: step + " p50", Color: colors[step][0], Points: p50}, Line{Name: step + " p99", Color: colors[step][1], Points: p99})
	}
	return os.WriteFile(rep.ChartPath, []byte(SVGChart("Flash on-sale: latency per second", "milliseconds", lines)), 0o644)
}

func (h *Harness) print(rep *Report) {
	w := h.out
	fmt.Fprintf(w, "\n== on-sale: %s, event %s ==\n", rep.Tenant, rep.Event)
	fmt.Fprint(w, FormatTable(rep.Steps))
	fmt.Fprintf(w, "\nbuying phase %.1fs", rep.Wall)
	if rep.SoldOutAfter > 0 {
		fmt.Fprintf(w, ", sold out after %.1fs", rep.SoldOutAfter)
	}
	fmt.Fprintf(w, "\nadmitted %.1f/s   tickets sold %.1f/s   sold %d of %d (%.1f%%)   shed responses (429/503) %d\n",
		rep.AdmittedPerS, rep.TicketsPerS, rep.TicketsSold, rep.Capacity, 100*float64(rep.TicketsSold)/float64(max(rep.Capacity, 1)), rep.shedResponses)
	var outcomes []string
	for k, v := range rep.Outcomes {
		outcomes = append(outcomes, fmt.Sprintf("%s %d", k, v))
	}
	slices.Sort(outcomes)
	fmt.Fprintf(w, "buyers: %v\n", outcomes)
	c := rep.Checks
	verdict := "OK"
	if !c.OK {
		verdict = "FAILED"
	}
	fmt.Fprintf(w, "database check %s: seats sold twice %d, seat/ticket mismatches %d, counters over capacity %d, GA over pool %d, paid orders without tickets %d, succeeded payments unsettled %d, pending orders without payment after their hold %d, valid tickets %d (buyers counted %d)\n",
		verdict, c.SeatsSoldTwice, c.SeatStateMismatch, c.CountersOverCapacity, c.GATicketsOverPool, c.PaidWithoutTickets, c.SucceededNotSettled, c.PendingWithoutPayment, c.ValidTickets, rep.TicketsSold)
	fmt.Fprintf(w, "per buyer: confirmed purchases missing %d, other ticket counts %d; lost answers: paid orders whose buyer never heard %d (%d tickets), recovered by a retry %d\n",
		c.ConfirmedNotInDatabase, c.TicketsNotAsBought, c.PaidAnswerLost, c.PaidAnswerLostTickets, c.AnswersLostRecovered)
	fmt.Fprintln(w, rep.Fairness)
	if e := rep.Expiry; e.Expired > 0 || e.Active > 0 {
		fmt.Fprintf(w, "hold expiry: %d expired, seats back after their time p50 %.0f ms, p99 %.0f ms, max %.0f ms; due but still active %d\n",
			e.Expired, e.P50ms, e.P99ms, e.MaxMs, e.Active)
	}
	if len(rep.Room) > 0 {
		fmt.Fprintf(w, "waiting room (adaptive %v, ceilings %d/s, cap %d), every few seconds: ", h.o.Adaptive, h.o.AdmitPerSecond, h.o.MaxActive)
		step := max(1, len(rep.Room)/12)
		for i, s := range rep.Room {
			if i%step == 0 || i == len(rep.Room)-1 {
				fmt.Fprintf(w, "[%.0fs q%d a%d rate %.0f cap %.0f %s]", s.At, s.Queued, s.Active, s.Rate, s.Cap, strings.SplitN(s.Decision, ":", 2)[0])
			}
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "other tenant's catalogue p99: idle %.1f ms, during the on-sale %.1f ms (×%.2f)\n", rep.OtherIdleP99, rep.OtherBusyP99, rep.OtherBusyP99/max(rep.OtherIdleP99, 0.001))
	fmt.Fprintf(w, "saturated holds, %d clients: API %.0f/s (p50 %.1f ms, p99 %.1f ms)   raw conditional UPDATE %.0f/s (p99 %.1f ms)   API/raw = %.2f\n",
		h.o.Concurrency, rep.SatHoldsPerS, rep.SatHoldP50, rep.SatHoldP99, rep.RawHoldsPerS, rep.RawP99, rep.Ratio)
	h.printE2E(rep)
	if f := rep.Faults; f.SaturationErrors+f.RawErrors > 0 {
		fmt.Fprintf(w, "saturation requests failed (left out of the figures above): API %d, raw %d; first: %s\n", f.SaturationErrors, f.RawErrors, f.FirstError)
	}
	if rep.Faults.Aborted != "" {
		fmt.Fprintf(w, "RUN STOPPED EARLY: %s (the figures above are what it measured until then)\n", rep.Faults.Aborted)
	}
	fmt.Fprintf(w, "wrote %s and %s\n", rep.JSONPath, rep.ChartPath)
}

// ExpiryStats is how late expired holds returned their seats: each expired
// hold's closed_at (when its seats went back on sale, written by the
// transaction that returned them) against its expires_at.
type ExpiryStats struct {
	Expired int     `json:"expired_holds"`
	P50ms   float64 `json:"lateness_p50_ms"`
	P99ms   float64 `json:"lateness_p99_ms"`
	MaxMs   float64 `json:"lateness_max_ms"`
	Active  int     `json:"still_active_past_due"` // due holds not yet expired when measured
}

// expiries waits until every hold of the on-sale that is due has been
// expired (holds left by walked-away buyers lapse up to a hold's length
// after the buying phase; it waits at most that plus a minute), then
// measures how late each expiry was.
func (h *Harness) expiries(ctx context.Context) (ExpiryStats, error) {
	var st ExpiryStats
	lastDue := time.Now()
	if h.o.WalkAway > 0 {
		lastDue = lastDue.Add(time.Duration(max(h.o.HoldMinutes, 1)) * time.Minute)
	}
	for {
		var active, pastDue int64
		err := h.a.TxWith(ctx, h.t, tenants.TxOptions{ReadOnly: true}, func(tx *gorm.DB) error {
			return tx.Raw(`SELECT count(*) FILTER (WHERE status = 'active'), count(*) FILTER (WHERE status = 'active' AND expires_at <= now())
				FROM inv_holds WHERE event_id = ? AND status = 'active' AND expires_at <= ?`, h.event, lastDue).Row().Scan(&active, &pastDue)
		})
		if err != nil {
			return st, err
		}
		st.Active = int(pastDue)
		if active == 0 || time.Now().After(lastDue.Add(time.Minute)) {
			break
		}
		if sleep(ctx, 500*time.Millisecond) {
			return st, ctx.Err()
		}
	}
	var late []float64
	err := h.a.TxWith(ctx, h.t, tenants.TxOptions{ReadOnly: true}, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT extract(epoch FROM closed_at - expires_at) * 1000 FROM inv_holds
			WHERE event_id = ? AND status = 'expired' ORDER BY 1`, h.event).Scan(&late).Error
	})
	if err != nil || len(late) == 0 {
		return st, err
	}
	st.Expired = len(late)
	at := func(q float64) float64 { return late[min(len(late)-1, int(q*float64(len(late))))] }
	st.P50ms, st.P99ms, st.MaxMs = at(.5), at(.99), late[len(late)-1]
	return st, nil
}
