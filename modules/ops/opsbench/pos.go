package opsbench

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"marquee/modules/ops/fakepos"
)

// POSOptions shape a POS webhook run.
type POSOptions struct {
	Sales   int // each created, then completed
	Senders int // deliveries in flight
}

// POSResult is what a run measured.
type POSResult struct {
	Sales, Deliveries  int
	Took               time.Duration
	PerSecond          float64
	P50, P99           time.Duration
	Ledger, WantLedger int64
	Shed               int // deliveries answered 503 (overloaded) and sent again
}

func (r POSResult) String() string {
	return fmt.Sprintf("POS: %d sales, %d deliveries (5%% redelivered, 5%% out of order) in %v: %.0f deliveries/s, p50 %v, p99 %v, %d shed (503) and sent again; ledger %d, expected %d",
		r.Sales, r.Deliveries, r.Took.Round(time.Millisecond), r.PerSecond, r.P50.Round(10*time.Microsecond), r.P99.Round(10*time.Microsecond), r.Shed, r.Ledger, r.WantLedger)
}

// POS sends Sales payments as Square would (created, then completed), 5%
// of them in reverse order and 5% with the completion delivered twice,
// from Senders senders as fast as the server takes them, then reads the
// ledger: it must hold exactly the sales. Locations are L-BAR and L-MERCH.
func POS(ctx context.Context, o POSOptions, pos *fakepos.POS, ledger func(ctx context.Context) (int64, error)) (POSResult, error) {
	var deliveries []fakepos.Delivery
	res := POSResult{Sales: o.Sales}
	before, err := ledger(ctx)
	if err != nil {
		return res, err
	}
	for i := range o.Sales {
		amount := int64(500 + i%900)
		p := fakepos.Payment{ID: fmt.Sprintf("B%d-%d", time.Now().UnixNano(), i), Status: "APPROVED", Version: 1,
			AmountMoney: fakepos.Money{Amount: amount, Currency: "EUR"}, LocationID: []string{"L-BAR", "L-MERCH"}[i%2]}
		a := pos.PaymentEvent(p)
		p.Status, p.Version = "COMPLETED", 2
		d := pos.PaymentEvent(p)
		res.WantLedger += amount
		switch i % 20 {
		case 0:
			deliveries = append(deliveries, d, a) // out of order
		case 1:
			deliveries = append(deliveries, a, d, d) // redelivered
		default:
			deliveries = append(deliveries, a, d)
		}
	}
	next := make(chan fakepos.Delivery)
	lat := make([][]time.Duration, o.Senders)
	errs := make(chan error, o.Senders)
	var wg sync.WaitGroup
	var retries atomic.Int64
	began := time.Now()
	for w := range o.Senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for d := range next {
				t0 := time.Now()
				status, body, err := pos.Send(ctx, d)
				// Shed under load (503): redelivered after a pause, as Square
				// retries a failed delivery; the latency counts the wait.
				for attempt := 1; err == nil && status == http.StatusServiceUnavailable && attempt < 200; attempt++ {
					retries.Add(1)
					time.Sleep(time.Duration(min(attempt, 10)) * 20 * time.Millisecond)
					status, body, err = pos.Send(ctx, d)
				}
				lat[w] = append(lat[w], time.Since(t0))
				if err == nil && status != http.StatusOK {
					err = fmt.Errorf("delivery: HTTP %d %s", status, body)
				}
				if err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		}()
	}
	for _, d := range deliveries {
		next <- d
	}
	close(next)
	wg.Wait()
	res.Took = time.Since(began)
	res.Shed = int(retries.Load())
	select {
	case err := <-errs:
		return res, err
	default:
	}
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	res.Deliveries, res.PerSecond = len(deliveries), float64(len(deliveries))/res.Took.Seconds()
	res.P50, res.P99 = all[len(all)/2], all[len(all)*99/100]
	after, err := ledger(ctx)
	res.Ledger = after - before
	return res, err
}
